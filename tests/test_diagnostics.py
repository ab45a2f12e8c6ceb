"""Diagnostics rules: each on hand-made histories at its edges, then on real Keras trainings."""

import json
import math

import keras_runs
import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag import diagnostics, run_records
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.diagnostics import classes as diag_classes
from tb_metricsdiag.diagnostics import requirements
from tb_metricsdiag.diagnostics import training as diag_training

FINDING_KEYS = {"rule", "severity", "title", "detail", "step", "evidence", "suggestion"}


def curve(values, start=0):
    values = np.asarray(values, dtype=np.float64)
    return np.arange(start, start + values.size), values


def make_history(**fields):
    """A RunHistory with the given fields; class names default to "0".."C-1"."""
    fields.setdefault("class_names", [])
    return run_records.RunHistory(run="run", **fields)


def healthy_curves(epochs=8):
    loss = 1.0 * 0.8 ** np.arange(epochs)
    return {"loss": curve(loss), "val_loss": curve(loss * 1.05), "accuracy": curve(1 - loss / 2)}


def confusion_series(*matrices):
    return {step: np.asarray(matrix, dtype=np.int64) for step, matrix in enumerate(matrices)}


def rules(findings, severity=None):
    return [f["rule"] for f in findings if severity is None or f["severity"] == severity]


def only(findings, rule):
    matching = [f for f in findings if f["rule"] == rule]
    assert len(matching) == 1, findings
    return matching[0]


def assert_well_formed(findings):
    for finding in findings:
        assert set(finding) == FINDING_KEYS
        assert finding["severity"] in diagnostics.SEVERITIES
        assert finding["step"] is None or isinstance(finding["step"], int)
        assert finding["suggestion"] and "\n" not in finding["suggestion"]
        json.dumps(finding, allow_nan=False)  # strict JSON: NaN must have become None
    ranks = [
        (diagnostics.SEVERITIES.index(f["severity"]), -1 if f["step"] is None else f["step"])
        for f in findings
    ]
    assert ranks == sorted(ranks)


# -- a healthy run, and a run with curves only -------------------------------------------


def test_healthy_hand_made_run_has_no_findings():
    good = [[45, 3, 2], [4, 44, 2], [1, 3, 46]]
    history = make_history(
        curves=healthy_curves(),
        confusions={
            "validation": confusion_series(good, good),
            "train": confusion_series(good, good),
        },
        label_distribution={"validation": np.array([50, 50, 50])},
        overlap={
            "duplicates": 0,
            "duplicate_share": 0.0,
            "validation_examples": 150,
            "train_examples": 600,
        },
        info={
            "loss": {"name": "sparse_categorical_crossentropy", "from_logits": False},
            "model": {"output_width": 3, "output_activation": "softmax"},
            "labels": {"format": "sparse", "num_classes": 3},
        },
    )
    assert diagnostics.diagnose(history) == []


def test_empty_history_and_curves_only_history_do_not_fail():
    assert diagnostics.diagnose(make_history()) == []
    assert diagnostics.diagnose(make_history(curves=healthy_curves())) == []


# -- overfitting ---------------------------------------------------------------------------


def overfitting_curves(val_loss, train_loss=None):
    train_loss = np.linspace(1.0, 0.2, len(val_loss)) if train_loss is None else train_loss
    return {"loss": curve(train_loss), "val_loss": curve(val_loss)}


def test_overfitting_fires_with_early_stopping_evidence():
    val_loss = [1.0, 0.8, 0.7, 0.65, 0.7, 0.75, 0.8, 0.85]
    findings = diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss)))
    finding = only(findings, "overfitting")
    evidence = finding["evidence"]
    assert finding["severity"] == "warning"
    assert evidence["best_epoch"] == int(np.argmin(val_loss)) == 3
    assert evidence["onset_epoch"] == finding["step"] == 4
    assert evidence["best_val_loss"] == pytest.approx(0.65)
    assert evidence["latest_val_loss"] == pytest.approx(0.85)
    assert evidence["generalization_loss"] == pytest.approx(100 * (0.85 / 0.65 - 1))
    train_loss = np.linspace(1.0, 0.2, 8)
    assert evidence["train_loss_change"] == pytest.approx(
        (train_loss[-1] - train_loss[3]) / train_loss[3]
    )


def test_overfitting_needs_patience_epochs_since_the_best():
    val_loss = [1.0, 0.8, 0.7, 0.6, 0.55, 0.7, 0.9]  # best epoch 4, only 2 epochs since
    assert diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss))) == []
    val_loss.append(1.0)  # now 3 epochs since the best
    assert rules(diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss)))) == [
        "overfitting"
    ]


def test_overfitting_min_delta_keeps_the_first_of_nearly_equal_minima():
    val_loss = [1.0, 0.6, 0.598, 0.7, 0.75, 0.8]  # 0.598 is not 1 % better than 0.6
    finding = only(
        diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss))), "overfitting"
    )
    assert finding["evidence"]["best_epoch"] == 1


def test_overfitting_ignores_noise_around_a_plateau():
    val_loss = [1.0, 0.6, 0.61, 0.595, 0.605, 0.61, 0.6, 0.612, 0.608]  # GL stays under 5 %
    assert diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss))) == []


def test_overfitting_needs_training_loss_to_keep_falling():
    val_loss = [1.0, 0.7, 0.8, 0.9, 1.0]
    train_loss = [1.0, 0.7, 0.7, 0.7, 0.7]
    assert diagnostics.diagnose(make_history(curves=overfitting_curves(val_loss, train_loss))) == []


# -- train/validation overlap ------------------------------------------------------------


@pytest.mark.parametrize(
    "duplicates, expected",
    [(0, None), (9, "info"), (10, "warning"), (49, "warning"), (50, "error"), (1000, "error")],
)
def test_overlap_severity_by_duplicate_share(duplicates, expected):
    overlap = {
        "duplicates": duplicates,
        "duplicate_share": duplicates / 1000,
        "validation_examples": 1000,
        "train_examples": 5000,
    }
    findings = diagnostics.diagnose(make_history(overlap=overlap))
    if expected is None:
        assert findings == []
    else:
        finding = only(findings, "train_val_overlap")
        assert finding["severity"] == expected
        assert finding["evidence"]["duplicate_share"] == duplicates / 1000


# -- suspicious validation -----------------------------------------------------------------


def test_near_perfect_validation_from_the_first_epoch():
    perfect = [[99, 1], [0, 100]]  # 99.5 %
    findings = diagnostics.diagnose(
        make_history(confusions={"validation": confusion_series(perfect)})
    )
    finding = only(findings, "suspicious_validation")
    assert finding["step"] == 0 and finding["evidence"]["first_val_accuracy"] == pytest.approx(
        0.995
    )
    almost = [[97, 3], [0, 100]]  # 98.5 %: a good model, not a suspicious one
    assert (
        diagnostics.diagnose(make_history(confusions={"validation": confusion_series(almost)}))
        == []
    )


def test_validation_better_than_training_at_every_epoch():
    val = [[40, 10], [10, 40]]  # 80 %
    train = [[37, 13], [13, 37]]  # 74 %
    confusions = {
        "validation": confusion_series(val, val, val),
        "train": confusion_series(train, train, train),
    }
    finding = only(
        diagnostics.diagnose(make_history(confusions=confusions)), "suspicious_validation"
    )
    assert finding["evidence"]["basis"] == "accuracy"
    assert finding["evidence"]["val_accuracy"] == pytest.approx(0.8)
    assert finding["evidence"]["train_accuracy"] == pytest.approx(0.74)
    close = [[38, 12], [12, 38]]  # 76 %: within the 5-point gap at one epoch
    confusions["train"] = confusion_series(train, close, train)
    assert diagnostics.diagnose(make_history(confusions=confusions)) == []


def test_suspicious_validation_is_left_to_the_overlap_rule():
    perfect = [[100, 0], [0, 100]]
    overlap = {
        "duplicates": 20,
        "duplicate_share": 0.1,
        "validation_examples": 200,
        "train_examples": 800,
    }
    findings = diagnostics.diagnose(
        make_history(confusions={"validation": confusion_series(perfect)}, overlap=overlap)
    )
    assert rules(findings) == ["train_val_overlap"]


def test_validation_loss_far_below_training_loss_without_counts():
    train_loss = [1.0, 0.9, 0.8, 0.7, 0.6]
    low = {"loss": curve(train_loss), "val_loss": curve(np.multiply(train_loss, 0.7))}
    assert rules(diagnostics.diagnose(make_history(curves=low))) == ["suspicious_validation"]
    dropout_like = {"loss": curve(train_loss), "val_loss": curve(np.multiply(train_loss, 0.85))}
    assert diagnostics.diagnose(make_history(curves=dropout_like)) == []


# -- accuracy paradox ----------------------------------------------------------------------


def fraud_confusion():
    """900 legitimate, 100 fraud: 93.5 % accuracy (baseline 90 %), 40 % fraud recall."""
    return np.array([[895, 5], [60, 40]])


def test_accuracy_paradox_high_accuracy_low_recall_matches_sklearn():
    confusion = fraud_confusion()
    history = make_history(
        class_names=["legit", "fraud"], confusions={"validation": {7: confusion}}
    )
    finding = only(diagnostics.diagnose(history), "accuracy_paradox")
    y_true = np.repeat([0, 0, 1, 1], confusion.ravel())
    y_pred = np.repeat([0, 1, 0, 1], confusion.ravel())
    evidence = finding["evidence"]
    assert finding["step"] == 7 and finding["title"].startswith("High accuracy")
    assert evidence["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert evidence["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y_true, y_pred)
    )
    assert evidence["worst_class"] == "fraud"
    assert evidence["worst_class_recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert evidence["baseline_accuracy"] == pytest.approx(0.9)


def test_accuracy_paradox_at_the_majority_baseline():
    confusion = [[90, 0], [10, 0]]  # always the majority: 90 %, the field notes' example
    finding = only(
        diagnostics.diagnose(make_history(confusions={"validation": {0: confusion}})),
        "accuracy_paradox",
    )
    assert finding["evidence"]["accuracy"] == finding["evidence"]["baseline_accuracy"] == 0.9
    assert finding["evidence"]["balanced_accuracy"] == 0.5
    assert finding["evidence"]["error_reduction_vs_baseline"] == 0.0
    edge = [[90, 0], [9, 1]]  # removes 1 of the baseline's 10 errors: 10 %, no longer "no better"
    finding = only(
        diagnostics.diagnose(make_history(confusions={"validation": {0: edge}})), "accuracy_paradox"
    )
    assert finding["title"].startswith("High accuracy")  # 91 % accuracy, 10 % recall of class 1


@pytest.mark.parametrize(
    "confusion",
    [
        [[970, 10], [6, 14]],  # 70 % fraud recall, 20 % fewer errors than the baseline: fine
        [[300, 0, 0], [0, 300, 0], [0, 3, 1]],  # 4 examples of class 2: too few to judge
        [[80, 20], [20, 80]],  # balanced and well above the baseline
    ],
)
def test_accuracy_paradox_does_not_fire(confusion):
    assert "accuracy_paradox" not in rules(
        diagnostics.diagnose(make_history(confusions={"validation": {0: confusion}}))
    )


# -- not learning --------------------------------------------------------------------------


def chance_confusions():
    return {"validation": {3: np.array([[26, 24], [25, 25]])}}


def test_not_learning_flat_loss_at_chance():
    history = make_history(
        curves={"loss": curve([0.7, 0.6931, 0.6932, 0.6931])}, confusions=chance_confusions()
    )
    finding = only(diagnostics.diagnose(history), "not_learning")
    assert finding["severity"] == "error"
    assert finding["evidence"]["balanced_accuracy"] == pytest.approx(0.51)
    assert finding["evidence"]["chance_level"] == 0.5


def test_not_learning_does_not_fire_while_loss_falls_or_above_chance():
    falling = make_history(
        curves={"loss": curve([0.7, 0.65, 0.6, 0.55])}, confusions=chance_confusions()
    )
    assert diagnostics.diagnose(falling) == []
    good = {"validation": {3: np.array([[40, 10], [10, 40]])}}
    flat_but_good = make_history(curves={"loss": curve([0.4, 0.4, 0.4, 0.4])}, confusions=good)
    assert diagnostics.diagnose(flat_but_good) == []
    too_short = make_history(curves={"loss": curve([0.69, 0.69])}, confusions=chance_confusions())
    assert diagnostics.diagnose(too_short) == []


# -- divergence ----------------------------------------------------------------------------


def test_divergence_reports_the_first_nonfinite_epoch():
    history = make_history(
        curves={
            "loss": curve([1.0, 0.9, math.nan, math.nan]),
            "val_loss": curve([1.0, 0.9, 5.0, math.inf]),
        }
    )
    finding = only(diagnostics.diagnose(history), "divergence")
    assert finding["severity"] == "error" and finding["step"] == 2
    assert finding["evidence"]["first_nonfinite_epoch"] == {"loss": 2, "val_loss": 3}


def test_divergence_on_nonfinite_predictions_event():
    events = [{"kind": "nonfinite_predictions", "count": 5, "message": "...", "step": 4}]
    finding = only(diagnostics.diagnose(make_history(events=events)), "divergence")
    assert finding["step"] == 4 and finding["evidence"]["nonfinite_predictions"] == 5


def test_divergence_on_explosive_growth_but_not_on_a_recovered_spike():
    exploding = make_history(curves={"loss": curve([1.0, 0.5, 0.8, 1.6, 40.0])})
    finding = only(diagnostics.diagnose(exploding), "divergence")
    assert finding["step"] == 3  # first epoch above 3x the lowest loss so far (0.5)
    assert finding["evidence"]["lowest_loss"] == 0.5
    spike = make_history(curves={"loss": curve([1.0, 0.5, 4.0, 0.45, 0.4])})
    assert diagnostics.diagnose(spike) == []


# -- loss mismatch -------------------------------------------------------------------------


def info(loss, from_logits=None, activation="softmax", width=3, label_format="sparse"):
    return {
        "loss": {"name": loss, "from_logits": from_logits},
        "model": {"output_width": width, "output_activation": activation},
        "labels": {"format": label_format, "num_classes": max(width, 2)},
    }


@pytest.mark.parametrize(
    "run_info, title_part",
    [
        (info("mse", label_format="one_hot"), "regression loss"),
        (info("mean_absolute_error"), "regression loss"),
        (info("Huber"), "regression loss"),
        (info("sparse_categorical_crossentropy", label_format="one_hot"), "one-hot labels"),
        (info("categorical_crossentropy", label_format="sparse"), "integer class labels"),
        (info("binary_crossentropy", label_format="one_hot"), "3-unit softmax"),
        (
            info("categorical_crossentropy", activation="sigmoid", width=1, label_format="binary"),
            "single output unit",
        ),
        (info("sparse_categorical_crossentropy", from_logits=True), "expects logits"),
        (
            info(
                "binary_crossentropy",
                from_logits=True,
                activation="sigmoid",
                width=1,
                label_format="binary",
            ),
            "expects logits",
        ),
        (
            info("SparseCategoricalCrossentropy", from_logits=False, activation="linear"),
            "output is linear",
        ),
    ],
)
def test_loss_mismatch_fires(run_info, title_part):
    finding = only(diagnostics.diagnose(make_history(info=run_info)), "loss_mismatch")
    assert finding["severity"] == "error" and title_part in finding["title"]
    assert finding["evidence"]["loss"] == run_info["loss"]["name"]


@pytest.mark.parametrize(
    "run_info",
    [
        info("sparse_categorical_crossentropy"),
        info("categorical_crossentropy", from_logits=False, label_format="one_hot"),
        info("sparse_categorical_crossentropy", from_logits=True, activation="linear"),
        info("binary_crossentropy", activation="sigmoid", width=1, label_format="binary"),
        info("binary_crossentropy", activation="sigmoid", label_format="one_hot"),  # multi-label
        info("categorical_hinge", label_format="one_hot"),
        info("sparse_categorical_crossentropy", activation=None),  # unknown activation
    ],
)
def test_loss_mismatch_silent_on_fitting_losses(run_info):
    assert diagnostics.diagnose(make_history(info=run_info)) == []


# -- info-level advice ---------------------------------------------------------------------


def test_accuracy_only_metric_on_imbalanced_labels():
    curves = {
        "loss": curve([1, 0.5]),
        "accuracy": curve([0.9, 0.95]),
        "val_accuracy": curve([0.9, 0.95]),
    }
    imbalanced = {"validation": np.array([800, 200])}
    finding = only(
        diagnostics.diagnose(make_history(curves=curves, label_distribution=imbalanced)),
        "accuracy_only_metric",
    )
    assert finding["severity"] == "info" and finding["evidence"]["imbalance_ratio"] == 4.0
    with_recall = dict(curves, recall=curve([0.2, 0.3]))
    assert (
        diagnostics.diagnose(make_history(curves=with_recall, label_distribution=imbalanced)) == []
    )
    balanced = {"validation": np.array([800, 201 * 4 - 1])}
    assert diagnostics.diagnose(make_history(curves=curves, label_distribution=balanced)) == []


def threshold_evaluation(y_true, scores, thresholds):
    """SplitEvaluation of a binary classifier from scores of class 1 (counts by brute force)."""
    tp = np.array(
        [
            [np.sum((1 - scores >= t) & (y_true == 0)) for t in thresholds],
            [np.sum((scores >= t) & (y_true == 1)) for t in thresholds],
        ]
    )
    fp = np.array(
        [
            [np.sum((1 - scores >= t) & (y_true == 1)) for t in thresholds],
            [np.sum((scores >= t) & (y_true == 0)) for t in thresholds],
        ]
    )
    confusion = skm.confusion_matrix(y_true, (scores >= 0.5).astype(int), labels=[0, 1])
    return run_records.SplitEvaluation(
        "validation", 5, ["neg", "pos"], confusion, thresholds, tp, fp
    )


def test_threshold_far_from_default_matches_sklearn_f1():
    rng = np.random.default_rng(0)
    y_true = (rng.random(2000) < 0.1).astype(int)
    scores = np.clip(0.05 + 0.3 * y_true + 0.1 * rng.normal(size=2000), 0, 1)  # positives near 0.35
    evaluation = threshold_evaluation(y_true, scores, np.linspace(0, 1, 101))
    history = make_history(class_names=["neg", "pos"], latest={"validation": evaluation})
    finding = only(diagnostics.diagnose(history), "threshold_far_from_default")
    evidence = finding["evidence"]
    best = evidence["best_threshold"]
    assert abs(best - 0.5) >= diag_classes.THRESHOLD_MIN_DISTANCE and finding["step"] == 5
    assert evidence["best_f1"] == pytest.approx(skm.f1_score(y_true, scores >= best))
    assert evidence["f1_at_default"] == pytest.approx(
        skm.f1_score(y_true, scores >= 0.5, zero_division=0)
    )
    grid_f1 = [skm.f1_score(y_true, scores >= t, zero_division=0) for t in np.linspace(0, 1, 101)]
    assert evidence["best_f1"] == pytest.approx(max(grid_f1))


def test_threshold_silent_for_a_calibrated_model_and_for_a_useless_one():
    rng = np.random.default_rng(1)
    y_true = (rng.random(1000) < 0.5).astype(int)
    good = np.clip(0.5 + 0.4 * (y_true - 0.5) + 0.1 * rng.normal(size=1000), 0, 1)
    useless = rng.random(1000)  # best "threshold" is 0: call everything positive
    for scores in (good, useless):
        evaluation = threshold_evaluation(y_true, scores, np.linspace(0, 1, 101))
        assert diagnostics.diagnose(make_history(latest={"validation": evaluation})) == []


# -- recording problems --------------------------------------------------------------------


def test_recording_problems_become_findings():
    events = [
        {"kind": "bad_batch", "message": "a batch gave outputs of shape (3,)", "step": 2},
        {"kind": "bad_batch", "message": "again", "step": 5},
        {"kind": "callback_error", "message": "OSError: disk full", "step": 4},
    ]
    history = make_history(
        events=events,
        problems=[run_records.DamagedData("metricsdiag/validation/confusion", [3], "bad shape")],
        overlap={"error": "could not hash the inputs"},
    )
    findings = diagnostics.diagnose(history)
    assert rules(findings) == ["recording_problem"] * 4
    assert_well_formed(findings)
    bad_batch = [f for f in findings if f["evidence"].get("kind") == "bad_batch"][0]
    assert bad_batch["step"] == 2 and bad_batch["evidence"]["count"] == 2


def test_findings_sorted_worst_first_and_json_safe():
    history = make_history(
        curves={"loss": curve([1.0, 0.5, math.nan]), "val_loss": curve([1.0, 0.6, 0.7])},
        confusions={"validation": {2: fraud_confusion()}},
        overlap={
            "duplicates": 3,
            "duplicate_share": 0.003,
            "validation_examples": 1000,
            "train_examples": 10,
        },
        info=info("mse"),
    )
    findings = diagnostics.diagnose(history)
    assert_well_formed(findings)
    assert rules(findings) == [
        "loss_mismatch",
        "divergence",
        "accuracy_paradox",
        "train_val_overlap",
    ]


# -- end to end: real Keras trainings --------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = keras_runs.train_all(tmp_path_factory)
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(runs.logdir))
    indices = reader.list_runs()
    findings = {
        run: diagnostics.diagnose(reader.history(run, index)) for run, index in indices.items()
    }
    return runs, findings


def serious(findings):
    return sorted(rules(findings, "error") + rules(findings, "warning"))


def test_e2e_every_run_is_read_and_well_formed(trained):
    runs, findings = trained
    assert set(findings) == set(runs.keras_histories)
    for run_findings in findings.values():
        assert_well_formed(run_findings)


def test_e2e_healthy_run_is_silent(trained):
    _, findings = trained
    assert serious(findings["healthy"]) == []


@pytest.mark.parametrize(
    "run, expected",
    [
        ("overfit", ["overfitting"]),
        ("keras_only_overfit", ["overfitting"]),
        ("leaky", ["train_val_overlap"]),
        ("fraud", ["accuracy_paradox"]),
        ("not_learning", ["not_learning"]),
        ("diverging", ["divergence"]),
        ("mse_loss", ["loss_mismatch"]),
        ("logits_mismatch", ["loss_mismatch"]),
    ],
)
def test_e2e_each_problem_run_gets_its_rule(trained, run, expected):
    _, findings = trained
    assert serious(findings[run]) == expected


def test_e2e_overfitting_evidence_matches_keras_history(trained):
    runs, findings = trained
    val_loss = np.asarray(runs.keras_histories["overfit"]["val_loss"])
    evidence = only(findings["overfit"], "overfitting")["evidence"]
    best = evidence["best_epoch"]
    assert val_loss[best] <= val_loss.min() * (1 + diag_training.OVERFIT_MIN_DELTA)
    assert evidence["best_val_loss"] == pytest.approx(val_loss[best], rel=1e-6)
    assert evidence["latest_val_loss"] == pytest.approx(val_loss[-1], rel=1e-6)
    assert only(findings["keras_only_overfit"], "overfitting")["evidence"] == evidence


def test_e2e_fraud_evidence_matches_sklearn(trained):
    runs, findings = trained
    y_true, y_pred = runs.validation["fraud"]
    evidence = only(findings["fraud"], "accuracy_paradox")["evidence"]
    assert evidence["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert evidence["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y_true, y_pred)
    )
    assert evidence["baseline_accuracy"] == pytest.approx(max(np.mean(y_true), 1 - np.mean(y_true)))
    assert evidence["worst_class"] == "fraud"
    assert evidence["worst_class_recall"] == pytest.approx(
        skm.recall_score(y_true, y_pred, zero_division=0)
    )
    assert "accuracy_only_metric" in rules(findings["fraud"], "info")


def test_e2e_leak_and_divergence_evidence(trained):
    _, findings = trained
    overlap = only(findings["leaky"], "train_val_overlap")
    assert overlap["severity"] == "error" and overlap["evidence"]["duplicate_share"] == 1.0
    divergence = only(findings["diverging"], "divergence")
    assert divergence["step"] == 0 and "nonfinite_loss" in divergence["evidence"]["signs"]


def _bins_of(confidence, correct):
    from tb_metricsdiag.core import calibration

    return calibration.calibration_bins(confidence, correct)


def test_miscalibrated_names_over_confidence_and_its_ece():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.85, 1.0, 4000)
    correct = rng.random(4000) < 0.6  # right 60 % of the time at ~92 % confidence
    history = make_history(
        class_names=["a", "b", "c"], calibration={"validation": {4: _bins_of(confidence, correct)}}
    )
    finding = only(diagnostics.diagnose(history), "miscalibrated")
    assert finding["step"] == 4 and finding["evidence"]["direction"] == "over"
    expected = abs(confidence.mean() - correct.mean())  # one-sided gap: ECE is the mean gap
    assert finding["evidence"]["ece"] == pytest.approx(expected, abs=0.01)
    assert "label smoothing" in finding["suggestion"]


def test_miscalibrated_under_confidence_and_when_it_stays_silent():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.4, 0.6, 4000)
    under = make_history(
        class_names=["a", "b", "c"],
        calibration={"validation": {0: _bins_of(confidence, rng.random(4000) < 0.95)}},
    )
    assert only(diagnostics.diagnose(under), "miscalibrated")["evidence"]["direction"] == "under"
    calibrated = rng.random(4000)
    fine = make_history(
        class_names=["a", "b", "c"],
        calibration={"validation": {0: _bins_of(calibrated, rng.random(4000) < calibrated)}},
    )
    assert "miscalibrated" not in rules(diagnostics.diagnose(fine))
    few = make_history(
        class_names=["a", "b"],
        calibration={"validation": {0: _bins_of(confidence[:100], np.ones(100, bool))}},
    )
    assert "miscalibrated" not in rules(diagnostics.diagnose(few))


def test_damaged_data_is_an_error_naming_tag_steps_and_why():
    """Data recorded but refused: one error naming each series, its steps and why, and the
    rules that needed it say "damaged" (not "not recorded") with the step that mends it."""
    logs = "metricsdiag/logs"
    confusion = "metricsdiag/validation/confusion"
    history = make_history()
    for step in (1, 2, 4):  # consecutive refusals of one series for one reason merge
        history.note_damage(run_records.DamagedData(logs, [step], "not JSON", "logs"))
    history.note_damage(
        run_records.DamagedData(confusion, None, "a negative count", "confusion", "validation")
    )
    history.note_damage(
        run_records.DamagedData("metricsdiag/run_info", [0], "x" * 10**6, "run_info")
    )
    findings, not_run = diagnostics.evaluate(history)
    problem = only(findings, "recording_problem")
    assert problem["severity"] == "error" and problem["step"] is None
    assert problem["evidence"]["count"] == 3
    assert problem["evidence"]["damaged"][:2] == [
        {"tag": logs, "steps": [1, 2, 4], "why": "not JSON"},
        {"tag": confusion, "steps": None, "why": "a negative count"},
    ]
    assert len(problem["evidence"]["damaged"][2]["why"]) == run_records.MAX_DAMAGE_REASON_CHARS
    assert "tag metricsdiag/logs, steps 1, 2, 4: not JSON" in problem["detail"]
    assert "tag metricsdiag/validation/confusion, every step: a negative count" in problem["detail"]
    reasons = {n["rule"]: n for n in not_run}
    assert reasons["overfitting"]["reason"] == (
        "the loss curve is damaged (tag metricsdiag/logs, steps 1, 2, 4: not JSON)"
    )
    assert reasons["accuracy_paradox"]["reason"] == (
        "the validation counts are damaged (tag metricsdiag/validation/confusion, every step:"
        " a negative count)"
    )
    assert reasons["loss_mismatch"]["reason"].startswith("the run information is damaged (tag")
    for rule in ("overfitting", "accuracy_paradox", "loss_mismatch", "not_learning"):
        assert reasons[rule]["how"] == requirements.REPAIR_DAMAGED
    # Untouched parts keep their own reasons.
    assert reasons["train_val_overlap"]["reason"].startswith("no train split")
    # No loss curve was recorded, but the events that could also let divergence run were.
    history = make_history()
    history.note_damage(run_records.DamagedData("metricsdiag/events", [2], "not JSON", "events"))
    reasons = {n["rule"]: n["reason"] for n in diagnostics.evaluate(history)[1]}
    assert reasons["divergence"] == (
        "the recorded events are damaged (tag metricsdiag/events, step 2: not JSON)"
    )
    assert reasons["overfitting"] == "no loss curve recorded"
    many = run_records.DamagedData(logs, list(range(0, 120, 2)), "x")
    assert many.steps_text() == "steps 0-118 (60 steps)"


def test_an_old_run_without_damage_has_no_error():
    """A run of an earlier format (no run information, no example records): rules that need
    more do not run, and nothing is an error."""
    history = make_history(
        class_names=["a", "b"],
        curves=healthy_curves(),
        confusions={"validation": confusion_series([[40, 10], [8, 42]])},
    )
    findings, not_run = diagnostics.evaluate(history)
    assert not rules(findings, "error") and "recording_problem" not in rules(findings)
    assert all("damaged" not in n["reason"] for n in not_run)

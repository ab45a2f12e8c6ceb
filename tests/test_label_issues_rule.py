"""The rule ``label_issues``: on hand-made histories at its edges, then end to end on real small
trainings recorded with the writers (scikit-learn models' out-of-sample probabilities through
`MetricsDiagWriter`, and one Keras training with the callback), read back from the event files.

Silent on a hard, cleanly labelled task with a calibrated model (where confident learning alone
flags many examples); fires when a share of the labels were flipped on a task the model learns
well, its evidence the count and share cleanlab finds on the same probabilities.
"""

import os

import numpy as np
import pytest
from cleanlab.filter import find_label_issues
from noisy_tasks import (
    calibrated_simulation,
    flipped,
    gaussian_classes,
    linear,
    make_classes,
    out_of_sample,
    quadratic,
)
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

from tb_metricsdiag import MetricsDiagWriter, diagnostics, run_records
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.core import label_issues, metrics
from tb_metricsdiag.diagnostics import label_quality, requirements

# -- hand-made histories --------------------------------------------------------------------


def figures_of(labels, probs):
    """``(LabelIssueFigures, confusion matrix)`` of one epoch, from the core's own functions."""
    flagged = label_issues.find_label_issues(labels, probs)
    bins = label_issues.top_label_bins(labels, probs)
    matrix = np.zeros((probs.shape[1],) * 2, np.int64)
    np.add.at(matrix, (labels, probs.argmax(axis=1)), 1)
    return run_records.LabelIssueFigures(int(flagged["count"]), labels.size, bins), matrix


def history_of(epochs, val_loss=None, multilabel=False):
    """A history whose validation split has ``epochs`` (``[(labels, probs)]``) at steps 0..."""
    history = run_records.RunHistory(run="run", class_names=[], multilabel=multilabel)
    if epochs:
        history.label_issues["validation"] = {}
        history.confusions["validation"] = {}
    for step, (labels, probs) in enumerate(epochs):
        figures, matrix = figures_of(labels, probs)
        history.label_issues["validation"][step] = figures
        history.confusions["validation"][step] = metrics.confusion_totals(matrix)
    if val_loss is not None:
        history.curves["val_loss"] = (np.arange(len(val_loss)), np.asarray(val_loss, float))
    return history


def findings_of(history, rule="label_issues"):
    findings, not_run = diagnostics.evaluate(history)
    return [f for f in findings if f["rule"] == rule], [n for n in not_run if n["rule"] == rule]


NOISY = calibrated_simulation(1, 5, 5.0, 4000, flip=0.08)
CLEAN = calibrated_simulation(1, 5, 5.0, 4000)
HARD = calibrated_simulation(2, 4, 1.5, 4000)


def test_fires_on_flipped_labels_with_the_statistics_evidence():
    [found], not_run = findings_of(history_of([NOISY]))
    assert not not_run
    figures, matrix = figures_of(*NOISY)
    verdict = label_issues.label_issue_test(figures.count, figures.bins, matrix)
    assert found["severity"] == "warning" and found["step"] == 0
    evidence = found["evidence"]
    assert evidence["count"] == figures.count
    assert evidence["share"] == pytest.approx(figures.count / NOISY[0].size)
    for key in ("noise_share", "p_value", "log_likelihood_ratio", "error_reduction"):
        assert evidence[key] == pytest.approx(verdict[key])
    assert evidence["material"] and evidence["beyond_uncertainty"] and evidence["trusted_model"]
    assert evidence["noise_share"] == pytest.approx(0.08, abs=0.025)
    assert "%d flagged" % figures.count in found["title"]


def test_silent_on_clean_and_on_hard_clean_labels():
    assert findings_of(history_of([CLEAN])) == ([], [])
    hard_figures, _ = figures_of(*HARD)
    assert hard_figures.share > 0.05  # confident learning alone flags many of them
    assert findings_of(history_of([HARD])) == ([], [])


def test_reads_the_best_epoch():
    # The noisy epoch is best by validation loss: it fires there, though the latest is clean.
    [found], _ = findings_of(history_of([CLEAN, NOISY, CLEAN], val_loss=[0.5, 0.3, 0.4]))
    assert found["step"] == 1
    assert label_quality.label_issue_step(history_of([CLEAN, NOISY], val_loss=[0.3, 0.5])) == 0
    assert findings_of(history_of([CLEAN, NOISY, CLEAN], val_loss=[0.5, 0.4, 0.3])) == ([], [])
    # Without a validation loss: the latest epoch.
    [found], _ = findings_of(history_of([CLEAN, NOISY]))
    assert found["step"] == 1


def test_not_run_says_why_and_how():
    history = history_of([])
    history.confusions["validation"] = {0: metrics.confusion_totals(np.eye(3, dtype=int))}
    _, [not_run] = findings_of(history)
    assert not_run["how"] == requirements.RECORD_EXAMPLES
    _, [not_run] = findings_of(history_of([], multilabel=True))
    assert "single-label" in not_run["reason"] and not_run["how"] is None
    _, [not_run] = findings_of(run_records.RunHistory(run="run", class_names=[]))
    assert not_run["reason"] == "no validation counts recorded"


# -- real trainings, written and read back ----------------------------------------------------


def mlp_epochs(x, labels, iterations):
    """Out-of-sample probabilities of an MLP trained for each number of ``iterations``."""
    return [
        out_of_sample(MLPClassifier((32,), max_iter=count, random_state=0), x, labels)
        for count in iterations
    ]


def record(logdir, name, labels, epochs):
    """The run ``name``: one validation evaluation per epoch, with its log loss."""
    num_classes = epochs[0].shape[1]
    with MetricsDiagWriter(os.path.join(logdir, name)) as writer:
        for step, probs in enumerate(epochs):
            writer.add_evaluation(labels, probs, step, from_logits=False)
            loss = log_loss(labels, probs, labels=range(num_classes))
            writer.add_logs({"val_loss": loss}, step)


@pytest.fixture(scope="module")
def trainings(tmp_path_factory):
    """``(findings and not_run by run, {run: (labels, probabilities per epoch)})``."""
    logdir = str(tmp_path_factory.mktemp("label_issue_runs"))
    given = {}
    # A hard task, clean labels: overlapping Gaussian classes, a linear model (~70% right).
    x, labels = gaussian_classes(2, 4, 1.5)
    given["hard_clean_linear"] = labels, [out_of_sample(linear(), x, labels)]
    x, labels = make_classes(2, 2, 0.5)
    given["hard_clean_mlp"] = labels, mlp_epochs(x, labels, (5, 60, 300))
    # Tasks the model learns well, with 8% of the labels flipped.
    x, labels = make_classes(3, 5, 2.5)
    noisy = flipped(3, labels, 5, 0.08)
    given["flipped_quadratic"] = noisy, [out_of_sample(quadratic(), x, noisy)]
    x, labels = make_classes(2, 5, 2.5)
    noisy = flipped(2, labels, 5, 0.08)
    given["flipped_mlp"] = noisy, mlp_epochs(x, noisy, (3, 40, 300))
    for name, (labels, epochs) in given.items():
        record(logdir, name, labels, epochs)
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(logdir))
    found = {}
    for run, index in reader.list_runs().items():
        findings, not_run = diagnostics.evaluate(reader.history(run, index))
        found[run] = (
            [f for f in findings if f["rule"] == "label_issues"],
            [n for n in not_run if n["rule"] == "label_issues"],
        )
    return found, given


@pytest.mark.parametrize("name", ["hard_clean_linear", "hard_clean_mlp"])
def test_real_trainings_on_hard_clean_tasks_stay_silent(trainings, name):
    found, given = trainings
    assert found[name] == ([], [])  # ran, and found nothing
    labels, epochs = given[name]
    flagged = find_label_issues(labels, epochs[-1], filter_by="confident_learning")
    if name == "hard_clean_linear":
        assert flagged.mean() > 0.05  # confident learning alone flags many


@pytest.mark.parametrize("name", ["flipped_quadratic", "flipped_mlp"])
def test_real_trainings_on_flipped_labels_fire_with_cleanlabs_count(trainings, name):
    found, given = trainings
    [finding], not_run = found[name]
    assert not not_run
    labels, epochs = given[name]
    losses = [log_loss(labels, probs, labels=range(probs.shape[1])) for probs in epochs]
    best = int(np.argmin(losses))  # the epochs' losses differ by far more than min_delta
    assert finding["step"] == best
    flagged = find_label_issues(labels, epochs[best], filter_by="confident_learning")
    assert finding["evidence"]["count"] == flagged.sum()
    assert finding["evidence"]["share"] == pytest.approx(flagged.mean(), abs=1e-12)
    assert finding["evidence"]["noise_share"] == pytest.approx(0.08, abs=0.03)


def keras_training(log_dir, seed, class_sep, flip):
    """A small Keras MLP trained 10 epochs on 2,000 examples of 4 `make_classification`
    classes, a share ``flip`` of the labels flipped, recorded by the callback's default mode
    on 2,000 validation examples; ``(given labels, true labels)`` of the validation rows."""
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(3)
    x, labels = make_classes(seed, 4, class_sep, n=4000)
    noisy = flipped(seed, labels, 4, flip)
    x, half = x.astype(np.float32), 2000
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    validation = (x[half:], noisy[half:])
    model.fit(
        x[:half],
        noisy[:half],
        validation_data=validation,
        epochs=10,
        batch_size=32,
        verbose=0,
        callbacks=[MetricsDiagCallback(log_dir, validation_data=validation)],
    )
    return noisy[half:], labels[half:]


def test_real_keras_trainings(tmp_path):
    """The Keras callback's default mode records label issues and the rule reads them: it
    fires on 10% flipped labels of separated classes, and stays silent on the clean labels of
    overlapping ones, of which confident learning flags more than the material share."""
    noisy, truth = keras_training(str(tmp_path / "flipped"), 4, 2.5, 0.1)
    keras_training(str(tmp_path / "hard_clean"), 4, 0.7, 0.0)
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(str(tmp_path)))
    found = {}
    for run, index in reader.list_runs().items():
        history = reader.history(run, index)
        findings, not_run = diagnostics.evaluate(history)
        assert not [n for n in not_run if n["rule"] == "label_issues"]
        found[run] = [f for f in findings if f["rule"] == "label_issues"], history
    [finding], _ = found["flipped"]
    assert finding["evidence"]["noise_share"] == pytest.approx(np.mean(noisy != truth), abs=0.03)
    assert finding["step"] == label_quality.label_issue_step(found["flipped"][1])
    quiet, history = found["hard_clean"]
    assert quiet == []
    figures = history.label_issues["validation"][label_quality.label_issue_step(history)]
    assert figures.share > label_issues.MIN_FLAGGED_SHARE

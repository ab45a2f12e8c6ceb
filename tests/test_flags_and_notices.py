"""What the tab says about a run, made honest (issue 23, section 3): per-class flags only where
the counts make a class clearly worse, each with its reason; a calibration direction only for
a material miscalibration; a "not checked" rule only with the step that would check it.

Every run is a real event file of `MetricsDiagWriter`, read through the plugin's routes; the
figures are checked against scikit-learn, statsmodels and NumPy.
"""

import re

import numpy as np
import pytest
import zoo
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint
from tensorboard.backend import application
from test_many_classes import reference_flags
from werkzeug import test as werkzeug_test

from tb_metricsdiag import MetricsDiagWriter, run_records
from tb_metricsdiag.core import overlap
from tb_metricsdiag.diagnostics import classes, confidence, requirements

# The two runs of the issue: a class at precision 0.90 in a 58-example, 3-class run whose other
# classes are predicted without a mistake...
SMALL_RUN = np.array([[19, 1, 0], [0, 18, 0], [0, 1, 19]])


def _accurate_run():
    """... and a 94 %-accurate, 10-class model of 540 examples (54 per class) whose class 8 has
    precision 0.85: 9 of its 60 predictions belong to the other classes, each of which makes 3
    or 4 mistakes.
    """
    matrix = np.zeros((10, 10), dtype=np.int64)
    others = [k for k in range(10) if k != 8]
    for k, mistakes in zip(others, [3, 3, 3, 3, 3, 3, 3, 4, 4]):
        matrix[k, 8] = 1
        for m in range(mistakes - 1):
            matrix[k, [j for j in others if j != k][(k + m) % 8]] += 1
        matrix[k, k] = 54 - mistakes
    matrix[8, 8] = 51
    matrix[8, others[:3]] = 1
    return matrix


ACCURATE_RUN = _accurate_run()

# A clearly bad class: precision 0.62 of 50 predictions where the others are at about 0.9.
BAD_CLASS_RUN = np.array([[45, 2, 8, 1], [3, 44, 7, 2], [2, 3, 31, 4], [0, 1, 4, 43]])
BAD_CLASS_NAMES = ["ant", "bee", "cicada", "dragonfly"]


def labels_and_scores(matrix, seed=0):
    """Labels and probabilities whose argmax gives exactly ``matrix`` (actual x predicted)."""
    actual, predicted = np.nonzero(matrix)
    counts = matrix[actual, predicted]
    y_true, y_pred = np.repeat(actual, counts), np.repeat(predicted, counts)
    order = np.random.default_rng(seed).permutation(len(y_true))
    y_true, y_pred = y_true[order], y_pred[order]
    classes_ = matrix.shape[0]
    scores = np.full((len(y_true), classes_), 0.4 / (classes_ - 1), dtype=np.float32)
    scores[np.arange(len(y_true)), y_pred] = 0.6
    return y_true, y_pred, scores


def _previous_rule_flags(matrix, counted_over):
    """The rule these runs were flagged by: a class's upper Wilson end under the median class's
    figure alone (its own uncertainty ignored), and 0.10 below it.
    """
    tp, trials = np.diag(matrix), matrix.sum(axis=counted_over)
    value = tp / trials
    median = np.median(value)
    upper = np.array([proportion_confint(t, n, method="wilson")[1] for t, n in zip(tp, trials)])
    return (upper < median) & (value <= median - classes.FLAG_MIN_GAP)


def calibration_data(n, sharpen, seed):
    """Binary labels drawn with probability p and the scores ``sigmoid(sharpen * logit(p))``:
    calibrated at 1, over-confident above 1.
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, size=n)
    y = (rng.random(n) < p).astype(np.int64)
    logit = np.log(p / (1 - p))
    return y, (1 / (1 + np.exp(-sharpen * logit))).astype(np.float32)


def _ece(y, score, bins=15):
    """The binary ECE in plain NumPy: positive-class score against the fraction of positives in
    15 equal-width bins, the last one closed.
    """
    index = np.minimum((score * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.sum() * abs(score[inside].mean() - y[inside].mean())
    return total / len(y)


CALIBRATION_RUNS = {
    "calibrated": (20_000, 1.0, 1),  # ECE about 0.01: the issue's "under-confident"
    "overconfident": (5000, 3.0, 2),
    "overconfident_small": (300, 3.0, 3),  # too few examples to judge
}


def write_runs(root):
    """The runs of these tests (and of the tab's, test_frontend_browser.py), under ``root``:
    ``small``, ``accurate``, ``bad_class``, the `CALIBRATION_RUNS`, ``with_overlap`` and
    ``without_overlap``.
    """
    for name, matrix, names in (
        ("small", SMALL_RUN, None),
        ("accurate", ACCURATE_RUN, None),
        ("bad_class", BAD_CLASS_RUN, BAD_CLASS_NAMES),
    ):
        y_true, _, scores = labels_and_scores(matrix)
        with MetricsDiagWriter(str(root / name), class_names=names) as writer:
            writer.add_evaluation(y_true, scores, step=0)
    for name, (n, sharpen, seed) in CALIBRATION_RUNS.items():
        y, score = calibration_data(n, sharpen, seed)
        with MetricsDiagWriter(str(root / name), class_names=["no", "yes"]) as writer:
            writer.add_evaluation(y, score, step=0)
    # A writer run with the duplicate check written as the README shows, and one without.
    rng = np.random.default_rng(4)
    x_train = rng.normal(size=(200, 5)).astype(np.float32)
    x_val = np.concatenate([x_train[:6], rng.normal(size=(94, 5)).astype(np.float32)])
    y_val = rng.integers(0, 3, size=100)
    scores = rng.dirichlet([1, 1, 1], size=100).astype(np.float32)
    for name, check in (("with_overlap", True), ("without_overlap", False)):
        with MetricsDiagWriter(str(root / name)) as writer:
            if check:
                writer.add_overlap(
                    overlap.duplicate_overlap(
                        overlap.example_digests([x_train]), overlap.example_digests([x_val])
                    )
                )
            writer.add_evaluation(y_val, scores, step=0)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("notices")
    write_runs(root)
    return str(root)


@pytest.fixture(scope="module")
def client(logdir):
    app = werkzeug_test.Client(application.TensorBoardWSGI([zoo.make_plugin(logdir)]))
    return lambda route, **params: zoo.client_get(app, route, params)


# -- the flags --------------------------------------------------------------------------------


@pytest.mark.parametrize("run, matrix", [("small", SMALL_RUN), ("accurate", ACCURATE_RUN)])
def test_the_issues_runs_are_not_flagged(client, run, matrix):
    y_true, y_pred, _ = labels_and_scores(matrix)
    precision = skm.precision_score(y_true, y_pred, average=None)
    if run == "small":  # the issue's figures, from scikit-learn
        assert len(y_true) == 58 and precision[1] == pytest.approx(0.90)
        weak = 1
    else:
        assert round(skm.accuracy_score(y_true, y_pred), 2) == 0.94
        assert precision[8] == pytest.approx(0.85)
        weak = 8
    # What was wrong: the class's interval against the median figure alone flagged it.
    assert np.flatnonzero(_previous_rule_flags(matrix, counted_over=0)).tolist() == [weak]
    status, body = client("/confusion", run=run, step=0)
    assert status == 200, body
    np.testing.assert_allclose([p["precision"] for p in body["per_class"]], precision)
    assert [p["flags"] for p in body["per_class"]] == [[]] * len(matrix)
    assert [p["flags"] for p in body["per_class"]] == reference_flags(matrix)
    assert [p["flag_reasons"] for p in body["per_class"]] == [[]] * len(matrix)


def test_a_clearly_bad_class_is_flagged_with_its_reason(client):
    matrix = BAD_CLASS_RUN
    y_true, y_pred, _ = labels_and_scores(matrix)
    precision = skm.precision_score(y_true, y_pred, average=None)
    assert precision[2] == pytest.approx(0.62)
    status, body = client("/confusion", run="bad_class", step=0)
    assert status == 200, body
    per = body["per_class"]
    assert [p["flags"] for p in per] == reference_flags(matrix) == [[], [], ["low_precision"], []]
    (reason,) = per[2]["flag_reasons"]
    # The reason's figures: the class's precision, interval and predictions; the median
    # class's (the better middle one of four: 'bee', 0.88) precision and interval; the gap.
    predicted, tp = matrix.sum(axis=0), np.diag(matrix)
    median = 1
    assert sorted(precision)[2] == precision[median]
    low, high = proportion_confint(tp[2], predicted[2], method="wilson")
    median_low, median_high = proportion_confint(tp[median], predicted[median], method="wilson")
    assert high < median_low  # the intervals do not overlap
    expected = (
        "precision %.3f (95%% CI %.3f\u2013%.3f over %d predictions) is clearly below the median"
        " class's %.3f (95%% CI %.3f\u2013%.3f, class 'bee'): the intervals do not overlap and"
        " the gap of %.3f is at least 0.10"
        % (
            precision[2],
            low,
            high,
            predicted[2],
            precision[median],
            median_low,
            median_high,
            precision[median] - precision[2],
        )
    )
    assert reason == expected


def test_served_intervals_equal_statsmodels_wilson(client):
    _, body = client("/confusion", run="bad_class", step=0)
    matrix = BAD_CLASS_RUN
    tp = np.diag(matrix)
    for k, entry in enumerate(body["per_class"]):
        for key, trials in (
            ("precision_interval", matrix.sum(axis=0)[k]),
            ("recall_interval", matrix.sum(axis=1)[k]),
        ):
            np.testing.assert_allclose(
                entry[key], proportion_confint(tp[k], trials, method="wilson"), atol=1e-12
            )


def test_flags_match_the_reference_on_random_matrices():
    """The rule against its statsmodels reimplementation, on matrices from a few classes of a
    few examples (mostly nothing judged) to many classes with a weak one.
    """
    rng = np.random.default_rng(7)
    fired = 0
    for _ in range(300):
        classes_ = int(rng.integers(2, 12))
        support = rng.integers(0, 80, size=classes_)
        skill = rng.uniform(0.3, 1.0, size=classes_)
        matrix = np.zeros((classes_, classes_), dtype=np.int64)
        for k in range(classes_):
            right = rng.binomial(support[k], skill[k])
            matrix[k, k] = right
            matrix[k] += np.bincount(
                rng.integers(0, classes_, size=support[k] - right), minlength=classes_
            )
        flags = classes.class_flags(matrix, ["c%d" % k for k in range(classes_)])
        assert [[f["flag"] for f in each] for each in flags] == reference_flags(matrix), matrix
        fired += sum(map(len, flags))
        for each in flags:
            for f in each:
                assert re.fullmatch(
                    r"(recall|precision) [0-9.]+ \(95% CI [0-9.]+\u2013[0-9.]+ over \d+"
                    r" (examples|predictions)\) is clearly below the median class's [0-9.]+"
                    r" \(95% CI [0-9.]+\u2013[0-9.]+, class 'c\d+'\): the intervals do not"
                    r" overlap and the gap of [0-9.]+ is at least 0\.10",
                    f["reason"],
                ), f["reason"]
    assert fired > 20  # the rule was exercised


def test_touching_intervals_are_told_apart_in_the_reason():
    # 52 of 60 against 52 of 52: upper end 0.9309 and lower end 0.9312, both 0.931 at 3 decimals.
    matrix = np.diag([52] * 10)
    matrix[8, 8] = 52
    matrix[:8, 8] = 1
    flags = classes.class_flags(matrix)
    (flag,) = flags[8]
    upper = proportion_confint(52, 60, method="wilson")[1]
    lower = proportion_confint(52, 52, method="wilson")[0]
    assert "%.3f" % upper == "%.3f" % lower and upper < lower
    assert "\u2013%.4f over 60 predictions" % upper in flag["reason"]
    assert "(95%% CI %.4f\u20131.0000" % lower in flag["reason"]


# -- the calibration direction ----------------------------------------------------------------


@pytest.mark.parametrize("run", sorted(CALIBRATION_RUNS))
def test_a_direction_only_for_a_material_miscalibration(client, run):
    n, sharpen, seed = CALIBRATION_RUNS[run]
    y, score = calibration_data(n, sharpen, seed)
    status, body = client("/calibration", run=run, step=0)
    assert status == 200, body
    ece = _ece(y, score)
    assert body["ece"] == pytest.approx(ece, abs=1e-6)
    material = (
        bool(ece >= confidence.MISCALIBRATION_ECE) and n >= confidence.MISCALIBRATION_MIN_EXAMPLES
    )
    assert body["miscalibrated"] is material
    if run == "calibrated":
        assert ece < 0.02 and body["direction"] is None  # not "under-confident"
    elif run == "overconfident":
        assert material and body["direction"] == "over"
    else:  # large, but over too few examples to judge: no direction, no finding
        assert ece >= confidence.MISCALIBRATION_ECE and body["direction"] is None
    _, diagnosis = client("/diagnostics", run=run)
    rules = [f["rule"] for f in diagnosis["findings"]]
    assert ("miscalibrated" in rules) is material


# -- "not checked" ----------------------------------------------------------------------------


def test_a_writer_run_without_the_overlap_check_is_told_how_to_add_it(client):
    _, body = client("/diagnostics", run="without_overlap")
    not_run = {n["rule"]: n for n in body["not_run"]}
    entry = not_run["train_val_overlap"]
    assert entry["reason"].startswith("no train split")
    assert "writer.add_overlap(" in entry["how"]
    # Every entry has a step or says it has none; the writer's loss curves have one.
    # Only an input the user may choose not to give (groups) is marked optional.
    assert all(set(n) - {"optional"} == {"rule", "reason", "how"} for n in body["not_run"])
    assert [n["rule"] for n in body["not_run"] if n.get("optional")] == ["weak_slice"]
    assert not_run["weak_slice"]["optional"] is True and "groups=" in not_run["weak_slice"]["how"]
    assert "writer.add_logs(" in not_run["overfitting"]["how"]


def test_the_text_report_says_how_to_run_what_was_not_checked(logdir, client, capsys):
    from tb_metricsdiag import cli

    cli.main(["report", logdir, "--run", "without_overlap"])
    out = capsys.readouterr().out
    _, body = client("/diagnostics", run="without_overlap")
    entry = {n["rule"]: n for n in body["not_run"]}["train_val_overlap"]
    assert "not run train_val_overlap: " + entry["reason"] in out
    assert "to check it: " + entry["how"] in out


def test_the_readmes_add_overlap_runs_the_check(client):
    _, body = client("/diagnostics", run="with_overlap")
    assert "train_val_overlap" not in {n["rule"] for n in body["not_run"]}
    (found,) = [f for f in body["findings"] if f["rule"] == "train_val_overlap"]
    assert found["evidence"]["duplicates"] == 6
    assert found["evidence"]["validation_examples"] == 100
    assert found["evidence"]["train_examples"] == 200


@pytest.mark.parametrize(
    "counting, expected",
    [
        ("prediction", "train_data=(x_train, y_train)"),
        ("keras_metric", "train_data=(x_train, y_train)"),
        ("lightning_forward", "train_sample="),
        ("writer", "writer.add_overlap("),
        (None, "train_sample= to the Lightning callback"),
    ],
)
def test_the_overlap_step_fits_the_writer(counting, expected):
    history = run_records.RunHistory(run="r", class_names=["a", "b"])
    history.info = {} if counting is None else {"counting": counting}
    assert expected in requirements.needs_overlap(history)["how"]

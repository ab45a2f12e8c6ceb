"""Many classes over many epochs: the run history keeps O(C) per epoch (`metrics.ConfusionTotals`),
and the diagnostics, ``/trajectories``, ``/curves`` and ``/compare`` still give what the dense
matrices give, checked against NumPy and scikit-learn.

The run is real event files of `MetricsDiagWriter`: 1,000 classes, `EPOCHS` epochs of a
validation and a (worse) train split, with Keras-style logs.
"""

import json
import os

import numpy as np
import pytest
from sklearn import metrics as skm
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

from tb_metricsdiag import MetricsDiagWriter, diagnostics, run_records
from tb_metricsdiag.backend import plugin as plugin_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.backend import views
from tb_metricsdiag.core import metrics
from tb_metricsdiag.format import confusion_counts, schema

PREFIX = "/data/plugin/metricsdiag"
CLASSES = 1000
EPOCHS = 20
EXAMPLES = 4000
HARD_CLASS = 3
HARD_EXAMPLES = 40  # enough for its recall to be judged (and flagged)
RUN = "wide"

# What the history may hold of the confusion counts: three int64 numbers per class and epoch,
# twice over for slack, per split. The dense matrices would be CLASSES / 6 times as much.
HISTORY_BOUND_BYTES = 2 * EPOCHS * CLASSES * 3 * 8 * 2

# Most bytes a default /compare answer of 1,000 classes may take (the matrices took 11 MB).
COMPARE_BOUND_BYTES = 1 << 20


def _evaluation(rng, skill):
    """Labels, logits and predictions of a model of ``skill``; `HARD_CLASS` mostly taken for
    the class after it.
    """
    labels = rng.integers(0, CLASSES, size=EXAMPLES)
    labels[:HARD_EXAMPLES] = HARD_CLASS
    logits = rng.normal(size=(EXAMPLES, CLASSES)).astype(np.float32)
    logits[np.arange(EXAMPLES), labels] += skill
    rows = np.flatnonzero(labels == HARD_CLASS)
    logits[rows, HARD_CLASS + 1] += 8
    return labels, logits, logits.argmax(axis=1)


def _matrix(labels, predicted):
    return skm.confusion_matrix(labels, predicted, labels=np.arange(CLASSES))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(root, {split: [dense reference matrix per epoch]}, logs)``."""
    root = str(tmp_path_factory.mktemp("history"))
    rng = np.random.default_rng(7)
    matrices, logs = {"validation": [], "train": []}, []
    with MetricsDiagWriter(os.path.join(root, RUN)) as writer:
        for step in range(EPOCHS):
            for split, skill in (("validation", 3.0 + 0.1 * step), ("train", 1.5 + 0.1 * step)):
                labels, logits, predicted = _evaluation(rng, skill)
                writer.add_evaluation(labels, logits, step=step, split=split, from_logits=True)
                matrices[split].append(_matrix(labels, predicted))
            step_logs = {"loss": 2.0 - 0.05 * step, "val_loss": 1.5 - 0.04 * step}
            writer.add_logs(step_logs, step)
            logs.append(step_logs)
    return root, matrices, logs


@pytest.fixture(scope="module")
def provider(run):
    root = run[0]
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0, "scalars": 0}
    )
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    return provider_lib.MultiplexerDataProvider(multiplexer, root)


@pytest.fixture(scope="module")
def client(run, provider):
    context = base_plugin.TBContext(logdir=run[0], data_provider=provider)
    plugin = plugin_lib.MetricsDiagLoader().load(context)
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin]))


@pytest.fixture(scope="module")
def history(provider):
    return reader_lib.Reader(provider).history(RUN)


def get(client, route, **params):
    response = client.get(PREFIX + route, query_string=params)
    return response.status_code, response.get_data(as_text=True)


def _dense_history(history, matrices):
    """A copy of ``history`` holding the dense reference matrices, as histories did before."""
    dense = run_records.RunHistory(**vars(history))
    dense.confusions = {split: dict(enumerate(each)) for split, each in matrices.items()}
    return dense


def test_history_holds_o_of_c_per_epoch(run, history):
    _, matrices, _ = run
    held = 0
    for split, reference in matrices.items():
        by_step = history.confusions[split]
        assert sorted(by_step) == list(range(EPOCHS))
        for step, matrix in enumerate(reference):
            totals = by_step[step]
            assert isinstance(totals, metrics.ConfusionTotals)
            np.testing.assert_array_equal(totals.diagonal, np.diag(matrix))
            np.testing.assert_array_equal(totals.actual, matrix.sum(axis=1))
            np.testing.assert_array_equal(totals.predicted, matrix.sum(axis=0))
            held += totals.nbytes
    assert held <= HISTORY_BOUND_BYTES
    # The latest step's whole matrix is kept once, in the latest evaluation.
    np.testing.assert_array_equal(
        history.latest["validation"].confusion, matrices["validation"][-1]
    )


def test_findings_equal_those_of_the_dense_matrices(run, history):
    _, matrices, _ = run
    findings, not_run = diagnostics.evaluate(history)
    reference = diagnostics.evaluate(_dense_history(history, matrices))
    assert json.dumps(views.diagnostics_view(RUN, findings, not_run)) == json.dumps(
        views.diagnostics_view(RUN, *reference)
    )
    by_rule = {each["rule"]: each for each in findings}
    # The run is built to fire these two: the hard class behind a high accuracy, and a
    # validation split better than training at every epoch.
    paradox = by_rule["accuracy_paradox"]["evidence"]
    latest = matrices["validation"][-1]
    labels = np.repeat(np.arange(CLASSES), latest.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(CLASSES), row) for row in latest])
    assert paradox["worst_class_index"] == HARD_CLASS
    assert paradox["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=1e-12)
    assert paradox["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(labels, predicted), abs=1e-12
    )
    suspicious = by_rule["suspicious_validation"]["evidence"]
    assert suspicious["basis"] == "accuracy"
    assert suspicious["train_accuracy"] == pytest.approx(
        np.trace(matrices["train"][-1]) / matrices["train"][-1].sum(), abs=1e-12
    )


def test_diagnostics_route_answers_the_same(client, run, history):
    _, matrices, _ = run
    code, body = get(client, "/diagnostics", run=RUN)
    assert code == 200
    reference = views.diagnostics_view(
        RUN, *diagnostics.evaluate(_dense_history(history, matrices)), history.trainings
    )
    assert json.loads(body) == json.loads(json.dumps(reference))


@pytest.mark.parametrize("split", ["validation", "train"])
def test_trajectories_equal_scikit_learn_per_epoch(client, run, split):
    _, matrices, _ = run
    code, body = get(client, "/trajectories", run=RUN, split=split)
    assert code == 200
    answer = json.loads(body)
    assert answer["steps"] == list(range(EPOCHS))
    by_index = {entry["index"]: entry for entry in answer["classes"]}
    assert sorted(by_index) == list(range(CLASSES))
    for step, matrix in enumerate(matrices[split]):
        labels = np.repeat(np.arange(CLASSES), matrix.sum(axis=1))
        predicted = np.concatenate([np.repeat(np.arange(CLASSES), row) for row in matrix])
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            labels, predicted, labels=np.arange(CLASSES), zero_division=np.nan
        )
        for name, reference in (("precision", precision), ("recall", recall), ("f1", f1)):
            got = np.array(
                [by_index[k][name][step] for k in range(CLASSES)], dtype=np.float64
            )  # None -> NaN
            np.testing.assert_allclose(got, reference, rtol=0, atol=1e-12, equal_nan=True)
    latest_f1 = [entry["f1"][-1] for entry in answer["classes"]]
    defined = [value for value in latest_f1 if value is not None]
    assert defined == sorted(defined)  # worst first, undefined last


def test_curves_are_the_logs(client, run):
    _, _, logs = run
    code, body = get(client, "/curves", run=RUN)
    assert code == 200
    curves = json.loads(body)["curves"]
    for key in ("loss", "val_loss"):
        assert curves[key]["steps"] == list(range(EPOCHS))
        np.testing.assert_allclose(curves[key]["values"], [each[key] for each in logs], rtol=1e-12)


def test_compare_at_1000_classes_sends_the_changed_cells(client, run):
    _, matrices, _ = run
    before, after = matrices["validation"][0], matrices["validation"][-1]
    code, body = get(client, "/compare", run=RUN, step=0, other_step=EPOCHS - 1)
    assert code == 200
    assert len(body) <= COMPARE_BOUND_BYTES
    answer = json.loads(body)
    assert answer["difference_form"] == "cells"
    assert answer["difference"] is None and answer["cells_truncated"] is False
    cells = answer["difference_cells"]
    counts = after - before
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = after / after.sum(axis=1, keepdims=True) - before / before.sum(
            axis=1, keepdims=True
        )
    sign = np.where(np.eye(CLASSES, dtype=bool), 1, -1)
    improvement = np.sign(np.nan_to_num(shares) * sign).astype(np.int64)
    rows, cols = np.nonzero((counts != 0) | (improvement != 0))  # row-major
    assert cells["rows"] == rows.tolist() and cells["cols"] == cols.tolist()
    assert cells["counts"] == counts[rows, cols].tolist()
    assert cells["improvement"] == improvement[rows, cols].tolist()
    np.testing.assert_allclose(
        np.array(cells["true"], dtype=np.float64), shares[rows, cols], rtol=0, atol=1e-15
    )
    # Supports differ between the epochs (other examples): some shares change at equal counts.
    assert len(rows) > np.count_nonzero(counts)
    per_class = {entry["name"]: entry for entry in answer["per_class"]}
    _, recall_after, _, _ = skm.precision_recall_fscore_support(
        np.repeat(np.arange(CLASSES), after.sum(axis=1)),
        np.concatenate([np.repeat(np.arange(CLASSES), row) for row in after]),
        labels=np.arange(CLASSES),
        zero_division=np.nan,
    )
    got = np.array([per_class[str(k)]["recall"] for k in range(CLASSES)], dtype=np.float64)
    np.testing.assert_allclose(got, recall_after, rtol=0, atol=1e-12, equal_nan=True)


def test_compare_full_matrix_on_request(client, run):
    _, matrices, _ = run
    before, after = matrices["train"][2], matrices["validation"][5]
    code, body = get(
        client,
        "/compare",
        run=RUN,
        split="train",
        step=2,
        other_split="validation",
        other_step=5,
        matrix="full",
    )
    assert code == 200
    answer = json.loads(body)
    assert answer["difference_form"] == "full" and answer["difference_cells"] is None
    np.testing.assert_array_equal(np.array(answer["difference"]["counts"]), after - before)


def test_compare_cells_keep_share_changes_and_truncate(monkeypatch):
    """Two splits of different supports: a cell of equal counts can change its share."""
    from tb_metricsdiag.core import comparison

    before = np.array([[2, 2, 0], [0, 4, 0], [1, 0, 3]])
    after = np.array([[4, 2, 2], [0, 4, 0], [1, 0, 3]])
    difference = comparison.confusion_difference(before, after)
    cells, truncated = comparison.difference_cells(difference)
    # (0, 1): 2 examples both times, but a share of 0.5 then 0.25: better.
    assert list(zip(cells["rows"].tolist(), cells["cols"].tolist())) == [(0, 0), (0, 1), (0, 2)]
    assert cells["counts"].tolist() == [2, 0, 2]
    assert cells["improvement"].tolist() == [0, 1, -1]
    assert not truncated
    kept, truncated = comparison.difference_cells(difference, limit=2)
    assert truncated and kept["counts"].tolist() == [2, 2]  # the largest changes, row-major


@pytest.mark.parametrize("value", ["cells", "FULL", "x" * 300])
def test_compare_matrix_parameter_is_validated(client, value):
    code, body = get(client, "/compare", run=RUN, matrix=value)
    assert code == 400 and "matrix must be" in body


def test_totals_of_encoded_and_dense_points_equal_numpy():
    """Format version 5 points are reduced from their cells; older dense ones after reading;
    a step written twice keeps its last point, whatever its form.
    """

    class Point:
        def __init__(self, step, value):
            self.step, self.numpy = step, value

    rng = np.random.default_rng(3)
    matrices = [rng.integers(0, 3, size=(6, 6)) * (rng.random((6, 6)) < 0.4) for _ in range(4)]
    encoded = [np.array(confusion_counts.encode_confusion(m), dtype=object) for m in matrices]
    points = [
        Point(0, encoded[0]),
        Point(1, matrices[1]),
        Point(2, encoded[2]),
        Point(1, encoded[3]),  # step 1 again, now encoded: this one counts
        Point(0, matrices[3]),  # step 0 again, dense
    ]
    totals = confusion_counts.confusion_totals(points)
    expected = {0: matrices[3], 1: matrices[3], 2: matrices[2]}
    assert sorted(totals) == [0, 1, 2]
    for step, matrix in expected.items():
        assert totals[step] == metrics.confusion_totals(matrix)
        np.testing.assert_array_equal(totals[step].actual, matrix.sum(axis=1))
        np.testing.assert_array_equal(totals[step].predicted, matrix.sum(axis=0))
    with pytest.raises(schema.FormatError, match="step 4"):
        confusion_counts.confusion_totals([Point(4, -np.ones((3, 3), dtype=np.int64))])


def test_metrics_of_totals_equal_scikit_learn():
    rng = np.random.default_rng(5)
    matrix = rng.integers(0, 20, size=(7, 7))
    matrix[2] = 0  # a class without examples
    labels = np.repeat(np.arange(7), matrix.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(7), row) for row in matrix])
    totals = metrics.confusion_totals(matrix)
    assert metrics.accuracy(totals) == pytest.approx(skm.accuracy_score(labels, predicted))
    assert metrics.balanced_accuracy(totals) == pytest.approx(
        skm.balanced_accuracy_score(labels, predicted)
    )
    assert metrics.majority_baseline_accuracy(totals) == matrix.sum(axis=1).max() / matrix.sum()
    per_class = metrics.per_class_metrics(totals)
    reference = skm.precision_recall_fscore_support(
        labels, predicted, labels=np.arange(7), zero_division=np.nan
    )
    for key, values in zip(("precision", "recall", "f1", "support"), reference):
        np.testing.assert_allclose(per_class[key], values, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        metrics.accuracies([totals, matrix]), [skm.accuracy_score(labels, predicted)] * 2
    )
    with pytest.raises(ValueError, match=r"\[C, C\]"):
        metrics.confusion_totals(np.zeros((2, 3)))

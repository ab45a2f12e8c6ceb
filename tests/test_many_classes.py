"""Many classes: the compact confusion matrix (format version 5) against scikit-learn, the
``/confusion`` answer's cells, confused pairs, column sums and flags against NumPy and
statsmodels, its parameters, older runs, damaged payloads and the size of an epoch on disk.

The runs are real event files of `MetricsDiagWriter` at 10, 100 and 1,000 classes.
"""

import glob
import json
import os
import re
import struct
import time

import numpy as np
import pytest
from conftest import read_events
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins import base_plugin
from tensorboard.summary.writer import event_file_writer
from tensorboard.util import tensor_util
from werkzeug import test as werkzeug_test

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.backend import plugin as plugin_lib
from tb_metricsdiag.backend import views
from tb_metricsdiag.core import metrics
from tb_metricsdiag.diagnostics import classes
from tb_metricsdiag.format import confusion_counts, metadata, schema
from tb_metricsdiag.writing import records

PREFIX = "/data/plugin/metricsdiag"
CONFUSION = schema.split_tag("validation", schema.KIND_CONFUSION)
EXAMPLES = {10: 2000, 100: 5000, 1000: 10_000}
EPOCHS = 2
BUDGET_BYTES_PER_EPOCH = 256 * 1024
EXAMPLE_RECORDS_BYTES_PER_EPOCH = 256 * 1024  # issue 25: at 10,000 examples x 1,000 classes


def _evaluation_data(num_classes, examples, step, seed=0, hard_class=None):
    """Labels and logits of a model that improves with ``step``; ``hard_class`` is mostly
    taken for the class after it.
    """
    rng = np.random.default_rng(seed + 1000 * step + num_classes)
    labels = rng.integers(0, num_classes, size=examples)
    logits = rng.normal(size=(examples, num_classes)).astype(np.float32)
    logits[np.arange(examples), labels] += 3.5 + step
    if hard_class is not None:
        rows = np.flatnonzero(labels == hard_class)
        logits[rows, (hard_class + 1) % num_classes] += 8
    return labels, logits


def _predicted(logits):
    return logits.argmax(axis=1)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """``(root, {num_classes: [(labels, logits)] per step})``: one run per class count."""
    root = str(tmp_path_factory.mktemp("many"))
    written = {}
    for num_classes, examples in EXAMPLES.items():
        with MetricsDiagWriter(os.path.join(root, "c%d" % num_classes)) as writer:
            for step in range(EPOCHS):
                labels, logits = _evaluation_data(num_classes, examples, step, hard_class=3)
                writer.add_evaluation(labels, logits, step=step, from_logits=True)
                written.setdefault(num_classes, []).append((labels, logits))
    _write_old_and_damaged_runs(root)
    return root, written


def _write_series(run_dir, tag, values, summary_metadata):
    os.makedirs(run_dir, exist_ok=True)
    writer = event_file_writer.EventFileWriter(run_dir)
    for step, value in enumerate(values):
        summary_value = summary_pb2.Summary.Value(
            tag=tag, metadata=summary_metadata, tensor=tensor_util.make_tensor_proto(value)
        )
        writer.add_event(
            event_pb2.Event(
                step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[summary_value])
            )
        )
    writer.close()


OLD_MATRIX = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]], dtype=np.uint8)


def _write_old_and_damaged_runs(root):
    # Format version 4: the dense integers, the content of that version.
    old = metadata.create_summary_metadata(schema.KIND_CONFUSION, "validation", ["a", "b", "c"])
    content = json.loads(old.plugin_data.content)
    assert content["version"] == 1 and "encoding" not in content
    content["version"] = 4
    old.plugin_data.content = json.dumps(content).encode()
    _write_series(os.path.join(root, "v4"), CONFUSION, [OLD_MATRIX], old)
    # Version 5 content, a damaged payload (a cell on the diagonal).
    record = records.confusion_matrix(np.eye(3, dtype=np.int64))
    damaged = struct.pack("<II", 3, 1) + b"BBB" + b"\1\1\1" + b"\0" + b"\1"
    _write_series(
        os.path.join(root, "damaged"),
        CONFUSION,
        [np.array(damaged, dtype=object)],
        record.metadata,
    )


@pytest.fixture(scope="module")
def client(logdir):
    root, _ = logdir
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=root, data_provider=provider_lib.MultiplexerDataProvider(multiplexer, root)
    )
    plugin = plugin_lib.MetricsDiagLoader().load(context)
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin]))


def get(client, route, **params):
    response = client.get(PREFIX + route, query_string=params)
    return response.status_code, json.loads(response.get_data(as_text=True))


def _expected(written, num_classes, step):
    labels, logits = written[num_classes][step]
    return skm.confusion_matrix(labels, _predicted(logits), labels=range(num_classes))


# -- storage ----------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", sorted(EXAMPLES))
def test_stored_matrix_decodes_to_sklearns(logdir, num_classes):
    root, written = logdir
    events = read_events(os.path.join(root, "c%d" % num_classes), decode=False)
    for step in range(EPOCHS):
        stored, content = events[CONFUSION][step]
        assert json.loads(content)["version"] == 5
        assert json.loads(content)["encoding"] == schema.CONFUSION_ENCODING
        decoded = confusion_counts.confusion_matrix(stored, "matrix", json.loads(content))
        np.testing.assert_array_equal(decoded, _expected(written, num_classes, step))


def test_encoding_round_trips_every_integer_width():
    rng = np.random.default_rng(0)
    for largest in (1, 300, 70_000, 2**40):
        matrix = rng.integers(0, largest + 1, size=(7, 7)) * (rng.random((7, 7)) < 0.3)
        payload = confusion_counts.encode_confusion(matrix)
        np.testing.assert_array_equal(
            confusion_counts.confusion_from_cells(
                *confusion_counts.decode_confusion_cells(payload)
            ),
            matrix,
        )
    for matrix in (np.zeros((1, 1), int), np.zeros((4, 4), int), np.eye(2, dtype=int) * 9):
        decoded = confusion_counts.confusion_from_cells(
            *confusion_counts.decode_confusion_cells(confusion_counts.encode_confusion(matrix))
        )
        np.testing.assert_array_equal(decoded, matrix)


def test_encoder_refuses_what_is_not_a_confusion_matrix():
    for bad in (np.ones((2, 3), int), np.array([[1, -1], [0, 0]]), np.ones((2, 2)) / 2):
        with pytest.raises(ValueError, match="confusion matrix"):
            confusion_counts.encode_confusion(bad)


def _payload(num_classes, cells, codes, *parts):
    return struct.pack("<II", num_classes, cells) + codes + b"".join(parts)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "malformed"),
        ("text", "malformed"),
        (b"\3\0\0\0\0\0\0", "malformed"),  # shorter than the header
        (_payload(0, 0, b"BBB"), "0 classes"),
        (_payload(5000, 0, b"BBB"), "5000 classes"),
        (_payload(2, 3, b"BBB", b"\0\0", b"\1\1\1", b"\1\1\1"), "more than a 2-class matrix"),
        (_payload(2, 0, b"xBB", b"\0\0"), "unknown integer type"),
        (_payload(2, 0, b"BBB", b"\0"), "expected 13"),  # a byte short
        (_payload(2, 0, b"BBB", b"\0\0\0"), "expected 13"),  # a byte over
        (_payload(2, 1, b"BBB", b"\0\0", b"\1", b"\0"), "zero counts"),
        (_payload(2, 1, b"qBB", struct.pack("<qq", -1, 0), b"\1", b"\1"), "negative"),
        (_payload(3, 2, b"BBB", b"\0\0\0", b"\2\0", b"\1\1"), "out of order"),
        (_payload(2, 1, b"BBB", b"\0\0", b"\4", b"\1"), "out of order"),  # past the end
        (_payload(3, 1, b"BBB", b"\0\0\0", b"\4", b"\1"), "on its diagonal"),
        (_payload(3, 2, b"BBB", b"\0\0\0", b"\1\7", b"\1\1"), "outside the matrix"),
    ],
)
def test_damaged_payloads_are_refused_clearly(payload, message):
    with pytest.raises(schema.FormatError, match=message):
        confusion_counts.decode_confusion_cells(payload)


def test_damaged_payload_is_a_clear_error_not_a_500(client):
    status, body = get(client, "/confusion", run="damaged")
    assert status == plugin_lib.UNREADABLE_DATA
    assert "on its diagonal" in body["error"]
    _, runs = get(client, "/runs")
    entry = {run["run"]: run for run in runs["runs"]}["damaged"]
    assert "on its diagonal" in entry["error"] and entry["steps"] == []


def test_an_unknown_confusion_encoding_is_refused():
    with pytest.raises(schema.FormatError, match="unknown encoding 'later'"):
        confusion_counts.confusion_matrix(
            np.array(b"", dtype=object), "matrix", {"encoding": "later"}
        )


def test_a_version_4_run_still_reads(client):
    status, body = get(client, "/confusion", run="v4")
    assert status == 200
    assert body["matrix"] == OLD_MATRIX.tolist() and body["matrix_form"] == "full"
    assert body["predicted_totals"] == OLD_MATRIX.sum(axis=0).tolist()


def test_a_reader_of_version_4_asks_for_an_upgrade(monkeypatch):
    content = records.confusion_matrix(np.eye(3, dtype=int)).metadata.plugin_data.content
    monkeypatch.setattr(metadata, "FORMAT_VERSION", 4)
    with pytest.raises(schema.FormatError, match="format version 5.*upgrade tb-metricsdiag"):
        metadata.parse_plugin_content(content)


def _bytes_per_epoch(log_dir, **options):
    """Bytes one more epoch of one split adds to the writer's event file at 1,000 classes x
    10,000 examples (the mean of two epochs after the first, which also writes run info)."""
    with MetricsDiagWriter(str(log_dir)) as writer:
        labels, logits = _evaluation_data(1000, 10_000, 0)
        writer.add_evaluation(labels, logits, step=0, from_logits=True, **options)
        writer.flush()
        [path] = glob.glob(os.path.join(str(log_dir), "events.out.tfevents.*"))
        before = os.path.getsize(path)
        for step in (1, 2):
            labels, logits = _evaluation_data(1000, 10_000, step)
            writer.add_evaluation(labels, logits, step=step, from_logits=True, **options)
        writer.flush()
        return (os.path.getsize(path) - before) / 2


def test_an_epoch_of_1000_classes_fits_the_budget(tmp_path):
    # The counts (confusion, threshold counts with AP and ROC AUC, calibration bins, headline
    # scalars) within their budget; the example records (cells' examples, label issues,
    # crossing samples) within theirs.
    counts = _bytes_per_epoch(tmp_path / "counts", example_ids=False)
    assert counts <= BUDGET_BYTES_PER_EPOCH
    # The dense integers alone were a megabyte (uint8 at a million cells).
    assert counts < 1_000_000 / 4
    records = _bytes_per_epoch(tmp_path / "records") - counts
    assert 0 < records <= EXAMPLE_RECORDS_BYTES_PER_EPOCH


# -- /confusion -------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", sorted(EXAMPLES))
def test_confusion_answer_against_numpy(client, logdir, num_classes):
    _, written = logdir
    expected = _expected(written, num_classes, 1)
    status, body = get(client, "/confusion", run="c%d" % num_classes, step=1)
    assert status == 200
    assert body["task"] == "multiclass"
    assert body["predicted_totals"] == expected.sum(axis=0).tolist()
    assert [entry["support"] for entry in body["per_class"]] == expected.sum(axis=1).tolist()
    _, full = get(client, "/confusion", run="c%d" % num_classes, step=1, matrix="full")
    assert full["matrix_form"] == "full" and full["matrix"] == expected.tolist()
    assert full["cells"] is None and full["cells_truncated"] is False
    if num_classes <= views.FULL_MATRIX_MAX_CLASSES:
        assert body["matrix_form"] == "full" and body["matrix"] == expected.tolist()
        assert body["normalized"]["true"] is not None
        return
    assert body["matrix_form"] == "cells"
    assert body["matrix"] is None and body["normalized"] is None
    assert body["cells_truncated"] is False
    cells = body["cells"]
    rebuilt = np.zeros_like(expected)
    rebuilt[cells["rows"], cells["cols"]] = cells["counts"]
    np.testing.assert_array_equal(rebuilt, np.asarray(full["matrix"]))
    rows, cols = np.nonzero(expected)  # row-major
    assert cells["rows"] == rows.tolist() and cells["cols"] == cols.tolist()
    assert min(cells["counts"]) > 0
    # A bounded answer: the whole matrix as JSON is megabytes.
    assert len(json.dumps(body)) < len(json.dumps(full)) / 10


def _reference_pairs(matrix, limit):
    """Off-diagonal cells by count descending, ties by (actual, predicted): a NumPy lexsort."""
    off = matrix * (1 - np.eye(matrix.shape[0], dtype=matrix.dtype))
    actual, predicted = np.nonzero(off)
    count = off[actual, predicted]
    order = np.lexsort((predicted, actual, -count))[:limit]
    support = matrix.sum(axis=1)
    return [
        {
            "actual": int(actual[k]),
            "predicted": int(predicted[k]),
            "count": int(count[k]),
            "share": count[k] / support[actual[k]],
        }
        for k in order
    ]


@pytest.mark.parametrize("num_classes, pairs", [(10, None), (100, 7), (1000, 1000)])
def test_confused_pairs_against_an_argsort(client, logdir, num_classes, pairs):
    _, written = logdir
    expected = _expected(written, num_classes, 0)
    params = {} if pairs is None else {"pairs": pairs}
    _, body = get(client, "/confusion", run="c%d" % num_classes, step=0, **params)
    reference = _reference_pairs(expected, views.DEFAULT_PAIRS if pairs is None else pairs)
    assert len(body["confused_pairs"]) == len(reference)
    for served, wanted in zip(body["confused_pairs"], reference):
        assert {k: served[k] for k in ("actual", "predicted", "count")} == {
            k: wanted[k] for k in ("actual", "predicted", "count")
        }
        assert served["share"] == pytest.approx(wanted["share"], rel=1e-12)
    # The hard class goes to the next one: the most confused pair.
    assert body["confused_pairs"][0]["actual"] == 3
    assert body["confused_pairs"][0]["predicted"] == 4


def test_pairs_ties_go_by_actual_then_predicted():
    matrix = np.array([[0, 2, 2], [2, 0, 1], [0, 3, 0]])
    actual, predicted, count, share = metrics.confused_pairs(matrix)
    assert list(zip(actual, predicted, count)) == [(2, 1, 3), (0, 1, 2), (0, 2, 2), (1, 0, 2),
                                                   (1, 2, 1)]  # fmt: skip
    np.testing.assert_allclose(share, [1, 0.5, 0.5, 2 / 3, 1 / 3])
    assert metrics.confused_pairs(np.diag([3, 4]))[0].size == 0


def test_cells_keep_the_largest_when_truncated():
    matrix = np.array([[5, 1, 0], [2, 0, 1], [0, 3, 9]])
    rows, cols, counts, truncated = metrics.nonzero_cells(matrix, limit=4)
    assert truncated
    # The largest four (9, 5, 3, 2), listed in row-major order.
    assert list(zip(rows, cols, counts)) == [(0, 0, 5), (1, 0, 2), (2, 1, 3), (2, 2, 9)]
    rows, cols, counts, truncated = metrics.nonzero_cells(matrix, limit=5)
    # Ties (the three counts of 1): the first in row-major order is kept.
    assert list(zip(rows, cols, counts)) == [(0, 0, 5), (0, 1, 1), (1, 0, 2), (2, 1, 3), (2, 2, 9)]
    assert truncated and not metrics.nonzero_cells(matrix)[3]


def test_truncated_cells_are_said(client, monkeypatch):
    monkeypatch.setattr(views, "MAX_CELLS", 50)
    _, body = get(client, "/confusion", run="c1000", step=0)
    assert body["cells_truncated"] is True and len(body["cells"]["counts"]) == 50


@pytest.mark.parametrize(
    "params, message",
    [
        ({"matrix": "dense"}, "matrix must be 'full'"),
        ({"matrix": "FULL"}, "matrix must be 'full'"),
        ({"pairs": "0"}, r"pairs must be an integer in \[1, 1000\]"),
        ({"pairs": "1001"}, r"pairs must be an integer in \[1, 1000\]"),
        ({"pairs": "-3"}, r"pairs must be an integer in \[1, 1000\]"),
        ({"pairs": "ten"}, "pairs must be an integer"),
        ({"pairs": "1e3"}, "pairs must be an integer"),
    ],
)
def test_bad_parameters_are_400_with_a_message(client, params, message):
    status, body = get(client, "/confusion", run="c10", **params)
    assert status == 400
    assert re.search(message, body["error"])


# -- flags ------------------------------------------------------------------------------


def reference_flags(matrix):
    """`FLAG_RULE` recomputed with statsmodels' Wilson intervals and Python's sorting: the
    median class (the upper middle one of the judged classes by figure, ties by lower end),
    and the classes whose interval lies wholly below its interval, at least `FLAG_MIN_GAP` lower.
    """
    tp = np.diag(matrix)
    flags = [[] for _ in tp]
    for name, trials in (
        (classes.FLAG_LOW_RECALL, matrix.sum(axis=1)),
        (classes.FLAG_LOW_PRECISION, matrix.sum(axis=0)),
    ):
        judged = [k for k in range(len(tp)) if trials[k] >= classes.MIN_JUDGED_SUPPORT]
        if len(judged) < 2:
            continue
        value = {k: tp[k] / trials[k] for k in judged}
        interval = {
            k: proportion_confint(tp[k], trials[k], alpha=0.05, method="wilson") for k in judged
        }
        median = sorted(judged, key=lambda k: (value[k], interval[k][0]))[len(judged) // 2]
        for k in judged:
            if (
                interval[k][1] < interval[median][0]
                and value[k] <= value[median] - classes.FLAG_MIN_GAP
            ):
                flags[k].append(name)
    return flags


@pytest.mark.parametrize("num_classes", sorted(EXAMPLES))
def test_flags_follow_the_documented_rule(client, logdir, num_classes):
    _, written = logdir
    expected = _expected(written, num_classes, 1)
    _, body = get(client, "/confusion", run="c%d" % num_classes, step=1)
    assert [entry["flags"] for entry in body["per_class"]] == reference_flags(expected)
    assert body["flag_rule"] == classes.FLAG_RULE
    assert [len(entry["flag_reasons"]) for entry in body["per_class"]] == [
        len(entry["flags"]) for entry in body["per_class"]
    ]
    # The hard class is flagged; the class its examples go to has low precision, except at
    # 1,000 classes: about 18 predictions, half of them right, against a median class of 9
    # predictions, whose interval reaches down to about 0.6.
    assert "low_recall" in body["per_class"][3]["flags"]
    assert ("low_precision" in body["per_class"][4]["flags"]) == (num_classes < 1000)


def test_a_decent_model_of_100_classes_is_not_all_flags(client, logdir):
    _, written = logdir
    _, body = get(client, "/confusion", run="c100", step=1)
    assert body["accuracy"] > 0.8
    # Every class has support of about 50: a fixed recall cut-off would be arbitrary, the
    # relative rule flags the hard class and few others.
    flagged = [k for k, entry in enumerate(body["per_class"]) if entry["flags"]]
    assert 3 in flagged and len(flagged) <= 5


def _flag_names(matrix):
    return [[each["flag"] for each in flags] for flags in classes.class_flags(matrix)]


def test_flags_on_the_fraud_case_and_on_equal_classes():
    fraud = np.array([[9700, 100], [176, 24]])  # fraud recall 0.12, precision 0.19
    assert _flag_names(fraud) == [[], ["low_recall", "low_precision"]]
    # Equal classes flag nothing; neither does a single judged class.
    assert _flag_names(np.full((5, 5), 10)) == [[]] * 5
    assert _flag_names(np.array([[3, 1], [1, 2]])) == [[], []]
    # A class never predicted: no precision to judge, and a recall of 0.
    never = np.array([[50, 0, 0], [0, 50, 0], [10, 10, 0]])
    assert _flag_names(never) == [[], [], ["low_recall"]]


def test_binary_task_and_full_form(tmp_path):
    matrix = np.array([[40, 10], [5, 45]])
    from tb_metricsdiag import run_records

    evaluation = run_records.SplitEvaluation("validation", 0, ["no", "yes"], matrix)
    view = views.confusion_view("run", evaluation)
    assert view["task"] == "binary" and view["matrix_form"] == "full"
    assert view["confused_pairs"] == [
        {"actual": 0, "predicted": 1, "count": 10, "share": 0.2},
        {"actual": 1, "predicted": 0, "count": 5, "share": 0.1},
    ]
    assert view["predicted_totals"] == [45, 55]

"""`MetricsDiagWriter`: counts against scikit-learn from NumPy, PyTorch and JAX inputs, the same
bytes as `tb_metricsdiag.summary` under tf.summary, training loops in PyTorch and JAX, and the
writer, backend and CLI in a process where TensorFlow cannot be imported.
"""

import glob
import json
import os
import textwrap

import numpy as np
import pytest
from conftest import read_events, stored_logs
from no_frameworks import EVERY_FRAMEWORK, TENSORFLOW, run_without
from sklearn import metrics as skm
from writer_checks import (
    assert_counts_match_sklearn,
    blobs,
    float32_softmax,
    four_class_logits,
    history_of,
)

from tb_metricsdiag import MetricsDiagWriter, diagnostics
from tb_metricsdiag.format import schema
from tb_metricsdiag.writing import event_writer

CONFUSION = schema.split_tag("validation", schema.KIND_CONFUSION)
CALIBRATION = schema.split_tag("validation", schema.KIND_CALIBRATION)
COUNTS = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
AP = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)
DISTRIBUTION = schema.split_tag("validation", schema.KIND_LABEL_DISTRIBUTION)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- counts from NumPy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return four_class_logits()


def test_multiclass_logits_and_probabilities(tmp_path, data):
    ids, logits = data
    probabilities = _softmax(logits.astype(np.float64)).astype(np.float32)
    with MetricsDiagWriter(tmp_path / "logits", class_names=list("abcd")) as writer:
        writer.add_evaluation(ids, logits, step=0)  # detected: values outside [0, 1]
        writer.add_evaluation(np.eye(4)[ids], logits, step=1, from_logits=True)  # one-hot
    with MetricsDiagWriter(tmp_path / "probabilities") as writer:
        writer.add_evaluation(ids.tolist(), probabilities.tolist(), step=5)  # lists: float64
    writer_scores = float32_softmax(logits)
    assert_counts_match_sklearn(str(tmp_path / "logits"), 0, ids, writer_scores)
    assert_counts_match_sklearn(str(tmp_path / "logits"), 1, ids, writer_scores)
    assert_counts_match_sklearn(
        str(tmp_path / "probabilities"), 5, ids, probabilities.astype(np.float64)
    )
    events = read_events(str(tmp_path / "logits"))
    assert events[DISTRIBUTION][0][0].tolist() == np.bincount(ids, minlength=4).tolist()
    assert sorted(events[DISTRIBUTION]) == [0]  # at a split's first evaluation only
    info = json.loads(events[schema.RUN_INFO_TAG][0][0].item())
    assert info["model"] == {
        "name": None,
        "output_width": 4,
        "output_activation": None,
        "outputs_are_logits": True,
    }
    assert info["labels"] == {"format": "sparse", "num_classes": 4, "class_names": list("abcd")}
    assert info["splits"] == {"validation": {"examples": 600}}
    assert info["counting"] == "writer"


@pytest.mark.parametrize("shape", ["flat", "column"])
def test_binary_single_unit(tmp_path, shape):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 * y + rng.uniform(0, 0.6, 400), 0, 1).astype(np.float32)
    p[:5] = [0.0, 1.0, 0.5, 0.25, 0.75]  # exactly on thresholds
    with MetricsDiagWriter(tmp_path, thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]) as writer:
        writer.add_evaluation(y.astype(np.float32), p if shape == "flat" else p[:, None], 2)
    scores = np.stack([1 - p, p], axis=1)
    assert_counts_match_sklearn(str(tmp_path), 2, y, scores, [0.0, 0.25, 0.5, 0.75, 1.0])


def test_logs_and_file(tmp_path):
    writer = MetricsDiagWriter(tmp_path)
    assert writer.add_logs({"loss": 0.41, "val_loss": np.float32(0.52), "note": "x"}, 0)
    assert writer.add_logs({"loss": float("nan"), "accuracy": np.array(0.83)}, 1)
    assert not writer.add_logs({"note": "x"}, 2)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.add_logs({"loss": 1.0}, 3)
    (path,) = glob.glob(str(tmp_path / "events.out.tfevents.*"))
    # events.out.tfevents.<time>.<host>.<pid>.<n>.metricsdiag: never a TensorBoard writer's name
    assert os.path.basename(path).split(".")[-3] == str(os.getpid())
    assert path.endswith(event_writer.EVENT_FILE_MARK)
    from tensorboard.backend.event_processing import event_file_loader

    first = next(iter(event_file_loader.EventFileLoader(path).Load()))
    assert first.file_version == "brain.Event:2"
    events = read_events(str(tmp_path))
    assert stored_logs(events, 0) == pytest.approx({"loss": 0.41, "val_loss": 0.52}, rel=1e-6)
    logs = stored_logs(events, 1)
    assert np.isnan(logs["loss"]) and logs["accuracy"] == pytest.approx(0.83)
    assert sorted(events[schema.LOGS_TAG]) == [0, 1]


def test_counts_made_elsewhere(tmp_path, data):
    """`add_counts` of counts summed over two halves (as across processes) stores the counts
    of the whole, with the threshold-grid AP those counts give.
    """
    from tb_metricsdiag.core import counting, labels

    ids, logits = data
    scores, predicted = labels.scores_and_predictions(logits, True)
    summed = counting.ClassificationCounts(4, counting.default_thresholds(), keep_scores=False)
    for half in (slice(0, 250), slice(250, None)):
        part = counting.ClassificationCounts(4, counting.default_thresholds(), keep_scores=False)
        part.update(ids[half], scores[half], predicted[half])
        summed.add(part.confusion, part.tp, part.fp, part.invalid)
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_counts(summed, 4, "train")
        writer.add_counts(summed, 4, "test")  # a held-out set of its own
        for split in ("test set", "test/x"):
            with pytest.raises(ValueError, match="a split name is 1 to 64 characters"):
                writer.add_counts(summed, 5, split)
    events = read_events(str(tmp_path))
    train = {kind: schema.split_tag("train", kind) for kind in schema.PER_CLASS_KINDS}
    whole = counting.ClassificationCounts(4, counting.default_thresholds())
    whole.update(ids, scores, predicted)
    np.testing.assert_array_equal(events[train["confusion"]][4][0], whole.confusion)
    np.testing.assert_array_equal(
        events[schema.split_tag("test", schema.KIND_CONFUSION)][4][0], whole.confusion
    )
    np.testing.assert_array_equal(events[train["threshold_counts"]][4][0][:, 0], whole.tp)
    np.testing.assert_array_equal(events[train["threshold_counts"]][4][0][:, 1], whole.fp)
    np.testing.assert_array_equal(
        events[train["average_precision"]][4][0], summed.average_precision()
    )
    assert events[train["label_distribution"]][4][0].tolist() == np.bincount(ids).tolist()
    assert "threshold_grid" in events[train["threshold_counts"]][4][1].decode()


def test_an_evaluation_checked_by_a_callback_is_written_as_add_evaluation_writes(tmp_path, data):
    """`add_checked_evaluation` (the callbacks' way in) stores what `add_evaluation` stores for
    the same inputs, names and task from the evaluation's layout, and refuses another task.
    """
    from tb_metricsdiag.writing import inputs

    ids, logits = data
    evaluation = inputs.check_evaluation(ids, logits, "a callback", class_names=list("abcd"))
    with MetricsDiagWriter(tmp_path / "checked") as writer:
        counts = writer.add_checked_evaluation(evaluation, 3)
        assert writer.class_names == list("abcd") and writer.num_classes == 4
        binary = inputs.check_evaluation([0, 1], np.array([0.2, 0.9]), "a callback")
        with pytest.raises(ValueError, match=r"2 classes \(multi_label=False\) after 4"):
            writer.add_checked_evaluation(binary, 4)
    with MetricsDiagWriter(tmp_path / "direct", class_names=list("abcd")) as writer:
        writer.add_evaluation(ids, logits, 3)
    checked, direct = read_events(str(tmp_path / "checked")), read_events(str(tmp_path / "direct"))
    assert set(checked) == set(direct)
    for tag in checked:
        if tag != schema.RUN_INFO_TAG:
            np.testing.assert_array_equal(checked[tag][3][0], direct[tag][3][0])
            assert checked[tag][3][1] == direct[tag][3][1]
    np.testing.assert_array_equal(checked[CONFUSION][3][0], counts.confusion)
    assert_counts_match_sklearn(str(tmp_path / "checked"), 3, ids, float32_softmax(logits))


# -- PyTorch and JAX inputs -------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_jax_arrays(tmp_path, data, dtype):
    jnp = pytest.importorskip("jax.numpy")
    import jax

    ids, logits = data
    outputs = jnp.asarray(logits).astype(dtype)
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_evaluation(jnp.asarray(ids), outputs, step=0)
        probabilities = jax.nn.softmax(outputs.astype("float32"))
        writer.add_evaluation(jnp.asarray(ids), probabilities, 1, from_logits=False)
    widened = np.asarray(outputs.astype("float32"))
    assert_counts_match_sklearn(str(tmp_path), 0, ids, float32_softmax(widened))
    probabilities = np.asarray(jax.nn.softmax(outputs.astype("float32")))
    assert_counts_match_sklearn(str(tmp_path), 1, ids, probabilities)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_probabilities_are_counted_exactly(tmp_path, monkeypatch, dtype):
    """float16 / bfloat16 probabilities widen to float32 values of few bit patterns, counted by
    a histogram of their values (no sort): the same confusion, threshold counts and AP as
    scikit-learn and brute force on the widened scores."""
    from tb_metricsdiag.core import _ranking

    if dtype == "bfloat16":
        half = pytest.importorskip("ml_dtypes").bfloat16
    else:
        half = np.float16
    ids, logits = four_class_logits(n=30_000)
    probabilities = float32_softmax(logits).astype(half)
    spacings = []
    spacing = _ranking._histogram_spacing
    monkeypatch.setattr(
        _ranking, "_histogram_spacing", lambda *a: spacings.append(spacing(*a)) or spacings[-1]
    )
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_evaluation(ids, probabilities, step=0, from_logits=False)
    assert spacings and spacings[0] is not None
    assert_counts_match_sklearn(str(tmp_path), 0, ids, probabilities.astype(np.float32))


# -- the same bytes as tf.summary -------------------------------------------------------


def _values(log_dir):
    from tensorboard.backend.event_processing import event_file_loader

    result = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                result.setdefault(value.tag, []).append((event.step, value.SerializeToString()))
    return result


def test_same_bytes_as_tf_summary(tmp_path, data):
    tf = pytest.importorskip("tensorflow")
    from tb_metricsdiag import summary

    ids, logits = data
    rng = np.random.default_rng(3)
    p = rng.uniform(size=300)  # float64 binary scores
    y = (p + rng.normal(0, 0.3, 300) > 0.5).astype(int)
    logs = {"loss": 0.41, "val_loss": np.float32(0.52), "diverged": float("inf"), "s": "x"}
    names = ["cat", "dog", "bird", "fish"]
    with MetricsDiagWriter(tmp_path / "writer", class_names=names) as writer:
        for step in (0, 7):
            writer.add_evaluation(ids, logits, step, from_logits=True)
            writer.add_evaluation(ids[:100], logits[:100] * 2, step, "train", from_logits=True)
            writer.add_logs(logs, step)
    with MetricsDiagWriter(tmp_path / "binary_writer", thresholds=[0.1, 0.5, 0.9]) as writer:
        writer.add_evaluation(y, p, 3)
    tf_writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with tf_writer.as_default():
        for step in (0, 7):
            summary.write_evaluation(ids, logits, step, class_names=names, from_logits=True)
            summary.write_evaluation(
                ids[:100], logits[:100] * 2, step, "train", class_names=names, from_logits=True
            )
            summary.write_logs(logs, step)
        summary.write_evaluation(y, p, 3, "validation", thresholds=[0.1, 0.5, 0.9])
    tf_writer.flush()
    ours = _values(str(tmp_path / "writer"))
    binary = _values(str(tmp_path / "binary_writer"))
    theirs = _values(str(tmp_path / "tf"))
    # The binary evaluation's counts and headline scalars are the last of their tags in tf.
    tails = [tag for tag in binary if tag in theirs]
    assert {COUNTS, CONFUSION, CALIBRATION, "metricsdiag/validation/accuracy"} <= set(tails)
    for tag in tails:
        assert theirs[tag][-1:] == binary[tag]
        theirs[tag] = theirs[tag][:-1]
        if not theirs[tag]:  # the binary run's class names "0" and "1"
            del theirs[tag]
    for tag, values in theirs.items():
        assert ours[tag] == values, tag
    # Beside them, the writer's own run information and label distributions, and the example
    # records it keeps by default (tests/test_example_records.py).
    assert set(ours) - set(theirs) == {
        schema.RUN_INFO_TAG,
        DISTRIBUTION,
        schema.split_tag("train", schema.KIND_LABEL_DISTRIBUTION),
    } | {
        schema.split_tag(split, kind)
        for split in ("validation", "train")
        for kind in (schema.KIND_EXAMPLES, schema.KIND_LABEL_ISSUES, schema.KIND_CROSSINGS)
    }


def test_records_as_tf_summary_stores_them(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from tb_metricsdiag import summary

    info = {"model": {"output_width": 3}, "note": "é"}
    overlap = {"duplicates": 2, "validation_examples": 10}
    problems = [{"kind": "bad_batch", "message": "x"}]
    with MetricsDiagWriter(tmp_path / "writer") as writer:
        writer.add_run_info(info)
        writer.add_overlap(overlap)
        writer.add_events(problems, 4)
    tf_writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with tf_writer.as_default():
        summary.write_run_info(info)
        summary.write_overlap(overlap)
        summary.write_events(problems, 4)
        summary.write_label_distribution([5, 0, 70000], 0, "train")
        summary.write_average_precision([0.5, np.nan], 2)
    tf_writer.flush()
    theirs = _values(str(tmp_path / "tf"))
    ours = _values(str(tmp_path / "writer"))
    for tag in (schema.RUN_INFO_TAG, schema.OVERLAP_TAG, schema.EVENTS_TAG):
        assert ours[tag] == theirs[tag]
    # Every dtype a record holds: int64, float64 (with NaN), and string scalars of bytes (the
    # encoded confusion matrices, in each width of their integers).
    from tensorboard.compat.proto import summary_pb2

    from tb_metricsdiag.writing import event_writer, records

    for record, tag in (
        (records.label_distribution([5, 0, 70000], "train"), "train/label_distribution"),
        (records.average_precision([0.5, np.nan]), "validation/average_precision"),
    ):
        stored = summary_pb2.Summary.Value.FromString(theirs[schema.TAG_PREFIX + tag][0][1])
        assert stored.tensor == event_writer.tensor_proto(record.value)
    for matrix in (
        [[1, 2], [3, 4]],
        [[300, 0], [0, 1]],
        [[70000, 0], [0, 1]],
        [[2**40, 0], [0, 1]],
    ):
        record = records.confusion_matrix(matrix)
        expected = tf.make_tensor_proto(record.value).SerializeToString()
        assert event_writer.tensor_proto(record.value).SerializeToString() == expected


# -- errors -----------------------------------------------------------------------------


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="strictly ascending"):
        MetricsDiagWriter(tmp_path, thresholds=[0.5, 0.1])
    writer = MetricsDiagWriter(tmp_path, class_names=["a", "b"])
    probabilities = np.full((4, 3), 1 / 3)
    with pytest.raises(
        ValueError, match="class_names has 2 names but the model predicts 3 classes"
    ):
        writer.add_evaluation([0, 1, 2, 0], probabilities, 0)
    with pytest.raises(ValueError, match=r"expected the model's outputs \[n, C\]"):
        writer.add_evaluation([0, 1], np.ones((2, 2, 2)), 0)
    with pytest.raises(ValueError, match="does not match y_score"):
        writer.add_evaluation([0, 1, 1], np.ones(2) / 2, 0)
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        writer.add_evaluation([0, 3], np.array([0.2, 0.9]), 0)  # one sigmoid unit: binary
    with pytest.raises(ValueError, match="do not fit a model with 2 output"):
        writer.add_evaluation(np.zeros((2, 3)), np.full((2, 2), 0.5), 0)
    with pytest.raises(ValueError, match="no examples"):
        writer.add_evaluation([], np.zeros((0, 2)), 0)
    with pytest.raises(ValueError, match="step must be an integer"):
        writer.add_evaluation([0, 1], np.array([0.2, 0.9]), 1.5)
    for split in ("", "a/b", "x" * 65, None):
        with pytest.raises(ValueError, match="a split name is 1 to 64 characters"):
            writer.add_evaluation([0, 1], np.array([0.2, 0.9]), 0, split=split)
    writer.add_evaluation([0, 1], np.array([0.2, 0.9]), 0)  # binary, probabilities
    with pytest.raises(ValueError, match="1 at the first evaluation"):
        writer.add_evaluation([0, 1], np.full((2, 3), 1 / 3), 1)
    with pytest.raises(ValueError, match="pass from_logits=True"):
        writer.add_evaluation([0, 1], np.array([-2.0, 3.0]), 1)
    writer.add_evaluation([0, 1], np.array([-2.0, 3.0]), 1, from_logits=True)
    writer.close()
    events = read_events(str(tmp_path))
    assert sorted(events[CONFUSION]) == [0, 1]  # only the calls that succeeded


def test_nonfinite_scores_are_left_out_and_reported(tmp_path):
    scores = np.array([[0.2, 0.8], [np.nan, 0.5], [0.9, 0.1]])
    with MetricsDiagWriter(tmp_path) as writer:
        result = writer.add_evaluation([1, 0, 0], scores, 3)
    assert result.invalid == 1 and result.count == 2
    events = read_events(str(tmp_path))
    (problem,) = json.loads(events[schema.EVENTS_TAG][3][0].item())
    assert problem["kind"] == "nonfinite_predictions" and problem["count"] == 1


# -- training loops ---------------------------------------------------------------------


def test_jax_loop(tmp_path):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, y = blobs(1)
    x_train, y_train, x_val, y_val = x[:360], y[:360], x[360:], y[360:]
    key = jax.random.PRNGKey(0)
    params = {"w": 0.1 * jax.random.normal(key, (6, 3)), "b": jnp.zeros(3)}

    def logits_of(params, x):
        return x @ params["w"] + params["b"]

    def loss_of(params, x, y):
        return -jnp.mean(jax.nn.log_softmax(logits_of(params, x))[jnp.arange(y.shape[0]), y])

    step = jax.jit(
        lambda p, x, y: jax.tree_util.tree_map(
            lambda v, g: v - 0.5 * g, p, jax.grad(loss_of)(p, x, y)
        )
    )
    predictions = {}
    with MetricsDiagWriter(tmp_path) as writer:
        for epoch in range(4):
            params = step(params, x_train, y_train)
            logits = jax.jit(logits_of)(params, x_val)
            writer.add_evaluation(y_val, logits, step=epoch)
            writer.add_logs(
                {
                    "loss": loss_of(params, x_train, y_train),
                    "val_loss": loss_of(params, x_val, y_val),
                },
                epoch,
            )
            predictions[epoch] = np.asarray(logits)
    for epoch, logits in predictions.items():
        assert_counts_match_sklearn(str(tmp_path), epoch, y_val, float32_softmax(logits))
    history = history_of(str(tmp_path))
    assert history.curves["loss"][0].tolist() == [0, 1, 2, 3]
    diagnostics.diagnose(history)


# -- without TensorFlow -----------------------------------------------------------------

_WRITE_AND_SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tb_metricsdiag
    from tb_metricsdiag import MetricsDiagWriter, cli

    log_dir = {log_dir!r}
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + 2 * np.eye(3)[ids]
    with MetricsDiagWriter(log_dir + "/run") as writer:
        for epoch in range(3):
            writer.add_evaluation(ids, logits * (epoch + 1), epoch)
            writer.add_logs({{"loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1)}}, epoch)

    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test
    from tb_metricsdiag.backend import logdir, plugin

    context = base_plugin.TBContext(logdir=log_dir, data_provider=logdir.provider_for_logdir(log_dir))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin.MetricsDiagLoader().load(context)]))
    prefix = "/data/plugin/metricsdiag"
    out = {{}}
    for route in ("/runs", "/confusion?run=run&step=2", "/diagnostics?run=run"):
        response = client.get(prefix + route)
        out[route] = [response.status_code, json.loads(response.get_data(as_text=True))]
    status = cli.main(["report", log_dir, "--format", "json", "--fail-on", "error"])
    hidden = [m for m in sys.modules if m.split(".")[0] in {hidden!r}]
    print("RESULT" + json.dumps({{"routes": out, "status": status, "imported": hidden}}))
    """
)


@pytest.mark.parametrize("hide", [TENSORFLOW, EVERY_FRAMEWORK], ids=["no_tf", "no_framework"])
def test_writer_backend_and_cli_without_tensorflow(tmp_path, hide):
    code = _WRITE_AND_SERVE.format(log_dir=str(tmp_path), hidden=list(EVERY_FRAMEWORK))
    result = run_without(code, hide=hide)
    line = [line for line in result.stdout.splitlines() if line.startswith("RESULT")][0]
    found = json.loads(line[len("RESULT") :])
    assert found["imported"] == []  # not TensorFlow, nor torch / JAX where installed
    routes = found["routes"]
    assert all(code == 200 for code, _ in routes.values()), routes
    assert [run["run"] for run in routes["/runs"][1]["runs"]] == ["run"]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + 2 * np.eye(3)[ids]
    expected = skm.confusion_matrix(ids, (logits * 3).argmax(1), labels=range(3))
    assert routes["/confusion?run=run&step=2"][1]["matrix"] == expected.tolist()
    assert found["status"] in (0, 1)
    report = json.loads(result.stdout.split("RESULT")[0])
    assert [r["run"] for r in report["runs"]] == ["run"]


def test_tensorboard_serves_the_writers_run_without_tensorflow(tmp_path):
    """A real ``tensorboard`` process with the Rust data server (``--load_fast=true``; the
    Python loader is served in-process above), TensorFlow hidden.
    """
    from tensorboard_server import get_json, serving, wait_for

    run_without(_WRITE_AND_SERVE.format(log_dir=str(tmp_path), hidden=[]), hide=TENSORFLOW)
    with serving(tmp_path, load_fast="true") as url:
        body = wait_for(url, "/data/plugin/metricsdiag/runs", lambda answer: answer.get("runs"))
        assert [run["run"] for run in body["runs"]] == ["run"]
        confusion = get_json(url, "/data/plugin/metricsdiag/confusion?run=run&step=2")
        assert confusion["total"] == 200


def test_writer_imports_no_framework_where_they_are_installed(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from tb_metricsdiag import MetricsDiagWriter\n"
        "with MetricsDiagWriter(%r) as w:\n"
        "    w.add_evaluation([0, 1, 1], np.array([0.2, 0.7, 0.4]), 0)\n"
        "    w.add_logs({'loss': 0.5}, 0)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)))"
        % (str(tmp_path), EVERY_FRAMEWORK)
    )
    env = dict(os.environ, PYTHONPATH=str(os.path.dirname(os.path.dirname(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_new_writer_per_epoch_keeps_every_epoch(tmp_path):
    """Twelve writers in a row into one directory, one epoch each: the file names sort in the
    order they were written (TensorBoard reads a directory's files in name order, and a file
    read out of order purges the later steps), so every epoch is read back."""
    ids, logits = four_class_logits(60)
    paths = []
    for epoch in range(12):
        with MetricsDiagWriter(tmp_path) as writer:
            writer.add_evaluation(ids, logits, step=epoch)
            writer.add_logs({"loss": 1.0 / (epoch + 1)}, step=epoch)
            paths.append(writer.path)
    assert sorted(paths) == paths
    history = history_of(str(tmp_path))
    assert history.curves["loss"][0].tolist() == list(range(12))
    assert sorted(history.confusions["validation"]) == list(range(12))
    assert history.trainings == 1 and not history.problems

"""The Keras callback on TensorFlow, JAX and PyTorch, in both modes, against scikit-learn on each
backend's own ``predict`` outputs; and the configuration mistakes, on each backend.

The backend is fixed per process: one subprocess per backend (`keras_backend_run`), all started
at once, trains the fixture once with a callback in each mode. JAX and PyTorch train with
TensorFlow hidden (`no_frameworks`) and array data: they need no TensorFlow.
"""

import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_events
from no_frameworks import environment_without
from sklearn import metrics as skm

from tb_metricsdiag.core import calibration
from tb_metricsdiag.format import schema, threshold_grid

BACKENDS = ["tensorflow", "jax", "torch"]
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "keras_backend_run.py")
TIMEOUT = 600
# The backends that train with TensorFlow hidden, once the TensorFlow-free writer is there.
WITHOUT_TENSORFLOW = ("jax", "torch")


def _writer_available():
    try:
        from tb_metricsdiag import MetricsDiagWriter  # noqa: F401
    except ImportError:
        return False
    return True


def _environment(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, HERE, env.get("PYTHONPATH")) if p)
    return env


def run_each_backend(root, script, hidden_arguments=()):
    """Run ``script OUT_DIR`` once per backend, all at once, each in its ``root/BACKEND``
    directory (JAX and PyTorch with TensorFlow hidden and ``hidden_arguments``, once the
    TensorFlow-free writer is there); returns {backend: its output directory}."""
    processes = {}
    hide = _writer_available()
    with contextlib.ExitStack() as stack:
        for backend in BACKENDS:
            out = root / backend
            out.mkdir()
            env, arguments = _environment(backend), [str(out)]
            if hide and backend in WITHOUT_TENSORFLOW:
                env = stack.enter_context(environment_without(("tensorflow",), env))
                arguments += list(hidden_arguments)
            processes[backend] = subprocess.Popen(
                [sys.executable, script] + arguments,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        for backend, process in processes.items():
            output, _ = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, "%s run failed:\n%s" % (backend, output[-6000:])
    return {backend: str(root / backend) for backend in BACKENDS}


@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory):
    """{backend: its output directory}, every backend trained in parallel."""
    return run_each_backend(tmp_path_factory.mktemp("backends"), SCRIPT, ["--arrays-only"])


def _run(backend_runs, backend):
    out = backend_runs[backend]
    with open(os.path.join(out, "process.json")) as f:
        process = json.load(f)
    assert process["backend"] == backend
    if _writer_available() and backend in WITHOUT_TENSORFLOW:
        assert not process["tensorflow"]
    outputs = np.load(os.path.join(out, "predictions.npz"))["outputs"]
    modes = {mode: read_events(os.path.join(out, mode)) for mode in ("predict", "metric")}
    return outputs, modes


def _labels():
    from keras_backend_run import fixture_data

    return fixture_data()[3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_equal_sklearn_on_the_backends_predictions(backend_runs, backend):
    from keras_backend_run import CLASSES, EPOCHS

    outputs, modes = _run(backend_runs, backend)
    labels = _labels()
    events = modes["predict"]
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    counts_tag = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
    ap_tag = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)
    assert sorted(events[confusion_tag]) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        scores = outputs[epoch].astype(np.float32)
        np.testing.assert_array_equal(
            events[confusion_tag][epoch][0],
            skm.confusion_matrix(labels, scores.argmax(axis=1), labels=range(CLASSES)),
        )
        tensor, content = events[counts_tag][epoch]
        thresholds = threshold_grid.decode_thresholds(json.loads(content)["thresholds"])
        for k in range(CLASSES):
            reached = scores[:, k][:, None] >= thresholds[None, :]
            positive = (labels == k)[:, None]
            np.testing.assert_array_equal(tensor[k, 0], (reached & positive).sum(axis=0))
            np.testing.assert_array_equal(tensor[k, 1], (reached & ~positive).sum(axis=0))
        expected_ap = [
            skm.average_precision_score(labels == k, scores[:, k]) for k in range(CLASSES)
        ]
        np.testing.assert_allclose(events[ap_tag][epoch][0], expected_ap, rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_example_records_on_each_backend(backend_runs, backend):
    """The default mode's example records against brute force on the backend's own outputs
    (written with tf.summary on TensorFlow, with MetricsDiagWriter on JAX and PyTorch); none in
    the metric mode."""
    from example_checks import check_cells
    from keras_backend_run import CLASSES, EPOCHS

    from tb_metricsdiag.format import example_records

    outputs, modes = _run(backend_runs, backend)
    labels = _labels()
    rows = np.arange(labels.size)
    tag = schema.split_tag("validation", schema.KIND_EXAMPLES)
    assert sorted(modes["predict"][tag]) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        scores = outputs[epoch].astype(np.float32)
        predicted = scores.argmax(axis=1)
        stored = example_records.decode_examples(modes["predict"][tag][epoch][0].item())
        check_cells(
            stored, labels, predicted, scores[rows, predicted], scores[rows, labels], CLASSES
        )
        np.testing.assert_array_equal(stored.correct, predicted == labels)
    assert not any(t.rsplit("/", 1)[1] in schema.EXAMPLE_KINDS for t in modes["metric"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_metric_mode_counts_equal_the_prediction_pass(backend_runs, backend):
    from keras_backend_run import EPOCHS

    _, modes = _run(backend_runs, backend)
    for kind in (schema.KIND_CONFUSION, schema.KIND_THRESHOLD_COUNTS):
        tag = schema.split_tag("validation", kind)
        for epoch in range(EPOCHS):
            np.testing.assert_array_equal(
                modes["metric"][tag][epoch][0], modes["predict"][tag][epoch][0]
            )
    info = json.loads(modes["metric"][schema.RUN_INFO_TAG][0][0].item())
    assert info["keras_backend"] == backend and info["counting"] == "keras_metric"
    # The metric mode's training counts are made from every training batch.
    train_confusion = modes["metric"][schema.split_tag("train", schema.KIND_CONFUSION)]
    assert all(matrix.sum() == 600 for matrix, _ in train_confusion.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_metric_mode_calibration_equals_torchmetrics(backend_runs, torchmetrics, backend):
    from keras_backend_run import CLASSES, EPOCHS

    outputs, modes = _run(backend_runs, backend)
    labels = _labels()
    tag = schema.split_tag("validation", schema.KIND_CALIBRATION)
    for epoch in range(EPOCHS):
        probabilities = outputs[epoch].astype(np.float32)
        bins = {mode: modes[mode][tag][epoch][0] for mode in ("predict", "metric")}
        # Counts and correct counts agree exactly; the confidence sums to float32 rounding.
        np.testing.assert_array_equal(bins["metric"][[0, 2]], bins["predict"][[0, 2]])
        np.testing.assert_allclose(bins["metric"][1], bins["predict"][1], rtol=1e-6)
        for norm in calibration.NORMS:
            reference = torchmetrics(
                "MulticlassCalibrationError",
                (probabilities, labels),
                num_classes=CLASSES,
                n_bins=15,
                norm=norm,
            )
            for mode, values in bins.items():
                ours = calibration.calibration_error(*values, norm=norm)
                assert ours == pytest.approx(reference, abs=1e-6), (mode, norm)


@pytest.mark.parametrize("backend", BACKENDS)
def test_multilabel_counts_in_both_modes_equal_sklearn(backend_runs, backend):
    from keras_backend_run import EPOCHS, multilabel_data

    out = backend_runs[backend]
    outputs = np.load(os.path.join(out, "ml_predictions.npz"))["outputs"]
    y_val = multilabel_data()[3]
    modes = {mode: read_events(os.path.join(out, mode)) for mode in ("ml_predict", "ml_metric")}
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    match_tag = schema.split_tag("validation", schema.KIND_EXACT_MATCH)
    counts_tag = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
    for epoch in range(EPOCHS):
        predicted = outputs[epoch].astype(np.float32) >= 0.5
        expected = skm.multilabel_confusion_matrix(y_val, predicted)
        exact = int(skm.accuracy_score(y_val, predicted, normalize=False))
        for mode, events in modes.items():
            assert json.loads(events[confusion_tag][epoch][1])["task"] == "multilabel"
            np.testing.assert_array_equal(events[confusion_tag][epoch][0], expected, mode)
            assert events[match_tag][epoch][0].tolist() == [exact, y_val.shape[0]], mode
        np.testing.assert_array_equal(
            modes["ml_metric"][counts_tag][epoch][0], modes["ml_predict"][counts_tag][epoch][0]
        )


ERRORS = {
    "regression": ["regression model", "whole class ids"],
    "validation_split": ["validation_split", "validation_data=\\(x_val, y_val\\)", "metric\\(\\)"],
    "labels_do_not_fit": ["labels of shape \\(300, 5\\) do not fit a model with 3 output"],
    "wrong_rank": ["outputs of shape \\[batch, classes\\]", "\\(300, 2, 4\\)"],
    "unbatched": ["batch it"],
    "repeated": ["repeats forever", "validation_steps=N", "take\\(N\\)"],
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_configuration_mistakes_name_the_fix(backend_runs, backend):
    import re

    with open(os.path.join(backend_runs[backend], "errors.json")) as f:
        errors = json.load(f)
    expected = set(ERRORS)
    if _writer_available() and backend in WITHOUT_TENSORFLOW:
        expected -= {"unbatched", "repeated"}  # tf.data cases: TensorFlow is hidden there
    assert set(errors) == expected
    for case in expected:
        patterns = ERRORS[case]
        assert errors[case] is not None, "%s trained without an error" % case
        for pattern in patterns:
            assert re.search(pattern, errors[case]), (case, errors[case])


def test_every_backend_writes_the_same_summaries(backend_runs):
    """The same tags on each backend (tf.summary or MetricsDiagWriter), each at the same steps."""
    written = {}
    for backend in BACKENDS:
        _, modes = _run(backend_runs, backend)
        written[backend] = {
            mode: {tag: sorted(points) for tag, points in events.items()}
            for mode, events in modes.items()
        }
    assert written["jax"] == written["tensorflow"] == written["torch"]
    label_tag = schema.split_tag("validation", schema.KIND_LABEL_DISTRIBUTION)
    assert written["tensorflow"]["predict"][label_tag] == [0]


_PADDING_SCRIPT = """
import keras, numpy as np
from tb_metricsdiag.writing import keras_prediction
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
traces = []
step = model.predict_step
model.predict_step = lambda *args: traces.append(1) or step(*args)
x = np.random.default_rng(0).normal(size=(700, 3)).astype(np.float32)
predictor = keras_prediction.Predictor(model, 256, automatic=True)
outputs = np.concatenate([predictor.predict(x[i : i + 256]) for i in range(0, 700, 256)])
expected = keras.ops.convert_to_numpy(model(x))
print(len(traces), predictor.batch_size, float(np.abs(outputs - expected).max()), outputs.shape)
"""


def test_jax_predicts_every_batch_in_one_shape():
    """On JAX each batch shape compiles anew: the last, short batch is padded to the batch
    size and its padding's outputs dropped, so a pass traces the predict step once; the batch
    size given stays (no automatic growth, which would compile again)."""
    env = environment_without(("tensorflow",), _environment("jax"))
    with env as environment:
        result = subprocess.run(
            [sys.executable, "-c", _PADDING_SCRIPT],
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    assert result.returncode == 0, result.stderr
    traces, batch_size, difference, shape = result.stdout.strip().splitlines()[-1].split(" ", 3)
    assert (int(traces), int(batch_size), shape) == (1, 256, "(700, 4)")
    assert float(difference) < 1e-6

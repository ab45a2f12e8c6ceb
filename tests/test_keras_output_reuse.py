"""The Keras callback takes its validation outputs from Keras's own validation pass where that
pass covered its rows (`keras_output_reuse`), and predicts them itself where not; on each
backend, every record equals what `MetricsDiagWriter` writes from the model's own ``predict``
outputs (itself checked against scikit-learn), and no log, History or ``evaluate`` sees the
patch.

One subprocess per backend (`keras_output_reuse_run`), all started at once; JAX and PyTorch
with TensorFlow hidden, as in `test_keras_backends`.
"""

import json
import os

import numpy as np
import pytest
from conftest import read_events
from test_keras_backends import BACKENDS, run_each_backend
from writer_checks import assert_counts_match_sklearn

from tb_metricsdiag.format import schema

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_output_reuse_run.py")
# The rows of each batch the callback predicts itself per case (its batches of 64 of the 300
# validation rows), over the 2 epochs: [] when both were taken from Keras's pass. Where the
# outputs cannot be taken at all (steps_per_execution), the probe predicts a batch before the fit.
PREDICTED = {
    "reused": [],
    "every_other_epoch": [64, 64, 64, 64, 44],  # epoch 0 had no validation pass
    "steps_per_execution": [64] + [64, 64, 64, 64, 44] * 2,
    "other_inputs": [64, 64, 64, 64, 44] * 2,
}
KERAS_KEYS = ["accuracy", "loss"]


@pytest.fixture(scope="module")
def reuse_runs(tmp_path_factory):
    """{backend: its output directory}, every backend run in parallel."""
    return run_each_backend(tmp_path_factory.mktemp("output_reuse"), SCRIPT)


def _cases(backend):
    return [
        case
        for case in PREDICTED
        if not (backend == "torch" and case == "steps_per_execution")  # refused by Keras
    ]


def _result(reuse_runs, backend, case):
    with open(os.path.join(reuse_runs[backend], case, "result.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_are_taken_only_where_keras_validated_the_same_rows(reuse_runs, backend):
    for case in _cases(backend):
        assert _result(reuse_runs, backend, case)["predicted_rows"] == PREDICTED[case], case


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_record_equals_the_writers_on_the_models_predictions(reuse_runs, backend):
    """Counts, AP, example records and slices, taken or predicted, equal the writer's of
    ``model.predict``'s outputs at every epoch; the counts against scikit-learn too."""
    from keras_output_reuse_run import EPOCHS, data

    labels = data()[3]
    for case in _cases(backend):
        root = os.path.join(reuse_runs[backend], case)
        outputs = np.load(os.path.join(root, "outputs.npz"))["outputs"]
        callback = read_events(os.path.join(root, "callback"), decode=False)
        reference = read_events(os.path.join(root, "reference"), decode=False)
        compared = [tag for tag in reference if tag.startswith(schema.split_tag("validation", ""))]
        assert schema.split_tag("validation", schema.KIND_SLICES) in compared
        assert schema.split_tag("validation", schema.KIND_EXAMPLES) in compared
        for tag in compared:
            assert sorted(callback[tag]) == sorted(reference[tag]), (case, tag)
            for step, (value, _) in reference[tag].items():
                ours = callback[tag][step][0]
                if value.dtype.kind == "f":  # calibration's confidence sums, summed per batch
                    np.testing.assert_allclose(ours, value, rtol=1e-12, err_msg=(case, tag))
                else:
                    np.testing.assert_array_equal(ours, value, (case, tag, step))
        for epoch in range(EPOCHS):
            assert_counts_match_sklearn(
                os.path.join(root, "callback"), epoch, labels, outputs[epoch].astype(np.float32)
            )


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_log_sees_the_outputs_and_the_model_is_put_back(reuse_runs, backend):
    for case in _cases(backend):
        result = _result(reuse_runs, backend, case)
        assert result["callback_keys"] == KERAS_KEYS + ["val_" + k for k in KERAS_KEYS], case
        assert result["history_keys"] == result["callback_keys"], case
        assert result["evaluate_keys"] == KERAS_KEYS, case
        assert result["evaluate_again_equal"], case
        assert result["patched_attributes"] == [] and result["test_function_cleared"], case


def _small_fit(callbacks):
    """The fixture MLP, fit with its validation arrays."""
    import keras
    from keras_backend_run import BATCH, fixture_data, fixture_model

    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = fixture_data()
    model = fixture_model()
    fit_options = {"batch_size": BATCH, "verbose": 0, "callbacks": callbacks}  # one epoch
    model.fit(x, y, validation_data=(x_val, y_val), **fit_options)
    return model


def test_batches_past_the_waiting_bound_are_checked_at_once(tmp_path, monkeypatch):
    """With no room to wait (PENDING_BYTES 0) each batch is read as it comes: the same outputs
    taken, nothing predicted."""
    from keras_backend_run import BATCH, fixture_data

    from tb_metricsdiag import MetricsDiagCallback
    from tb_metricsdiag.writing import keras_output_reuse, keras_prediction

    monkeypatch.setattr(keras_output_reuse, "PENDING_BYTES", 0)
    checked = []  # after each batch taken: the batches checked so far in the pass
    take = keras_output_reuse.OutputReuse.take

    def counted_take(self, batch):
        take(self, batch)
        checked.append(len(self._batches))

    monkeypatch.setattr(keras_output_reuse.OutputReuse, "take", counted_take)
    monkeypatch.setattr(keras_prediction.Predictor, "predict", lambda *a: pytest.fail("predicted"))

    x_val, y_val = fixture_data()[2:]
    callback = MetricsDiagCallback(str(tmp_path), validation_data=(x_val, y_val))
    model = _small_fit([callback])
    assert checked == [1, 2, 3, 4, 5]  # 300 rows in batches of 64, each checked as it came
    scores = model.predict(x_val, batch_size=BATCH, verbose=0)
    assert_counts_match_sklearn(str(tmp_path), 0, y_val, scores.astype(np.float32))


def test_a_fit_that_raised_leaves_clean_logs_and_the_next_fit_takes_it_off(tmp_path):
    import keras
    from keras_backend_run import fixture_data

    from tb_metricsdiag import MetricsDiagCallback

    class Stop(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            assert "_metricsdiag_validation_batch" not in logs
            raise RuntimeError("stopped in the validation pass")

    x_val, y_val = fixture_data()[2:]
    callback = MetricsDiagCallback(str(tmp_path / "a"), validation_data=(x_val, y_val))
    with pytest.raises(RuntimeError, match="stopped"):
        _small_fit([callback, Stop()])
    model = callback.model
    assert "compute_metrics" in vars(model)  # left by the fit that raised
    evaluated = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    assert sorted(evaluated) == KERAS_KEYS
    again = MetricsDiagCallback(str(tmp_path / "b"), validation_data=(x_val, y_val))
    again.set_model(model)
    again.on_train_begin()
    again.on_train_end()
    assert "compute_metrics" not in vars(model) and "test_step" not in vars(model)
    assert sorted(model.evaluate(x_val, y_val, verbose=0, return_dict=True)) == KERAS_KEYS

"""One training per Keras backend, for `test_keras_backends` (the backend is fixed per process).

Run as ``KERAS_BACKEND=jax python keras_backend_run.py OUT_DIR [--arrays-only]``: trains the
fixture MLP once with a callback in each mode (its own prediction pass in ``OUT_DIR/predict``,
`MetricsDiagCallback.metric` in ``OUT_DIR/metric``), saves the model's own ``predict`` outputs
of every epoch (``predictions.npz``), and the message of each configuration mistake
(``errors.json``; the ``tf.data`` ones only where TensorFlow can be imported); and a
multi-label model in both modes (``ml_`` before each name).
"""

import json
import os
import sys

import keras
import numpy as np

from tb_metricsdiag import MetricsDiagCallback

EPOCHS = 2
BATCH = 64
CLASSES = 3
LABELS = 4


def fixture_data():
    """Three overlapping blobs: training and validation arrays, float32 inputs."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=1.5, size=(CLASSES, 8))
    y = rng.integers(0, CLASSES, size=900)
    x = (centers[y] + rng.normal(size=(900, 8))).astype(np.float32)
    return x[:600], y[:600], x[600:], y[600:]


def fixture_model(units=CLASSES, activation="softmax", loss="sparse_categorical_crossentropy"):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile("adam", loss, metrics=["accuracy"])
    return model


class Recorder(keras.callbacks.Callback):
    """The model's own ``predict`` outputs of the validation set at every epoch end."""

    def __init__(self, x_val):
        super().__init__()
        self.x_val = x_val
        self.outputs = []

    def on_epoch_end(self, epoch, logs=None):
        self.outputs.append(self.model.predict(self.x_val, batch_size=BATCH, verbose=0))


def fit_both_modes(out_dir, prefix, data, units, activation, loss, metrics=()):
    """Train the fixture MLP once with a callback in each mode (``OUT_DIR/{prefix}predict``, its
    own prediction pass; ``OUT_DIR/{prefix}metric``, `MetricsDiagCallback.metric`) and save the
    model's ``predict`` outputs of every epoch (``{prefix}predictions.npz``).
    """
    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = data
    model = fixture_model(units, activation, loss)
    predicting = MetricsDiagCallback(
        os.path.join(out_dir, prefix + "predict"), validation_data=(x_val, y_val), batch_size=BATCH
    )
    counting = MetricsDiagCallback(
        os.path.join(out_dir, prefix + "metric"), validation_data=(x_val, y_val)
    )
    model.compile("adam", loss, metrics=list(metrics) + [counting.metric()])
    recorder = Recorder(x_val)
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        validation_batch_size=BATCH,
        batch_size=BATCH,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[predicting, counting, recorder],
    )
    np.savez(os.path.join(out_dir, prefix + "predictions.npz"), outputs=np.stack(recorder.outputs))


def multilabel_data():
    """Four labels of the fixture inputs, multi-hot (rows with none, one or several set)."""
    x, _, x_val, _ = fixture_data()
    weights = np.random.default_rng(1).normal(size=(8, LABELS))
    cut = np.array([0.0, 0.5, 1.0, 1.8])
    return (
        x,
        (x @ weights > cut).astype(np.float32),
        x_val,
        (x_val @ weights > cut).astype(np.float32),
    )


def _reshaping_model():
    """A model whose outputs are ``[batch, 2, 4]``: not a classifier's."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Reshape((2, 4))])
    model.compile("adam", "mse")
    return model


def _message(callback, model, x, y, **fit_kwargs):
    """The ValueError of a short fit with ``callback``, or None when it trained."""
    try:
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[callback], **fit_kwargs)
    except ValueError as error:
        return str(error)
    return None


def configuration_errors(out_dir, arrays_only):
    x, y, x_val, y_val = fixture_data()
    log_dir = os.path.join(out_dir, "errors")
    target = x_val[:, 0] * 3.5
    errors = {
        "regression": _message(
            MetricsDiagCallback(log_dir, validation_data=(x_val, target)),
            fixture_model(1, None, "mse"),
            x,
            x[:, 0] * 3.5,
        ),
        "validation_split": _message(
            MetricsDiagCallback(log_dir), fixture_model(), x, y, validation_split=0.2
        ),
        "labels_do_not_fit": _message(
            MetricsDiagCallback(log_dir, validation_data=(x_val, np.eye(5)[y_val])),
            fixture_model(),
            x,
            y,
        ),
        "wrong_rank": _message(
            MetricsDiagCallback(log_dir, validation_data=(x_val, y_val)),
            _reshaping_model(),
            x,
            x.reshape(-1, 2, 4),
        ),
    }
    if not arrays_only:
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val))
        for name, data in [("unbatched", dataset), ("repeated", dataset.batch(BATCH).repeat())]:
            errors[name] = _message(
                MetricsDiagCallback(log_dir, validation_data=data), fixture_model(), x, y
            )
    with open(os.path.join(out_dir, "errors.json"), "w") as f:
        json.dump(errors, f)


def main():
    out_dir = sys.argv[1]
    arrays_only = "--arrays-only" in sys.argv
    fit_both_modes(
        out_dir,
        "",
        fixture_data(),
        CLASSES,
        "softmax",
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # A sigmoid per label with binary_crossentropy: a multi-label model, detected as one.
    fit_both_modes(out_dir, "ml_", multilabel_data(), LABELS, "sigmoid", "binary_crossentropy")
    configuration_errors(out_dir, arrays_only)
    with open(os.path.join(out_dir, "process.json"), "w") as f:
        json.dump(
            {"backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules}, f
        )


if __name__ == "__main__":
    main()

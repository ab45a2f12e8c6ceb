"""Small fits whose validation outputs the Keras callback takes from Keras's own validation pass
(`keras_output_reuse`) or, where it cannot, predicts; for `test_keras_output_reuse`.

Run as ``KERAS_BACKEND=jax python keras_output_reuse_run.py OUT_DIR``. Per case, in
``OUT_DIR/CASE``: the callback's run (``callback/``), the same evaluations written by
`MetricsDiagWriter` from the model's own ``predict`` outputs of every epoch (``reference/``),
and ``result.json``: the rows of every batch the callback's `Predictor` predicted, the log
keys handed to the other callbacks, those of History (``fit``'s return) and of an
``evaluate`` after the fit, and what of the patch the model still holds.
"""

import json
import os
import sys

import keras
import numpy as np
from keras_backend_run import BATCH, Recorder, fixture_data, fixture_model

from tb_metricsdiag import MetricsDiagCallback, MetricsDiagWriter
from tb_metricsdiag.writing import keras_prediction

EPOCHS = 2


def data():
    """`keras_backend_run`'s blobs (600 training and 300 validation rows, the last batch of 64
    short) and a slice key of the validation rows."""
    groups = {"half": np.where(np.arange(300) % 2, "odd", "even")}
    return fixture_data() + (groups,)


def model(steps_per_execution=1):
    keras.utils.set_random_seed(0)
    network = fixture_model()
    if steps_per_execution != 1:
        network.compile(
            "adam",
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=steps_per_execution,
        )
    return network


class SeenKeys(keras.callbacks.Callback):
    """Every log key the other callbacks are handed during the fit."""

    def __init__(self):
        super().__init__()
        self.keys = set()

    def _see(self, logs):
        self.keys.update(logs or {})

    def on_test_batch_end(self, batch, logs=None):
        self._see(logs)

    def on_test_end(self, logs=None):
        self._see(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._see(logs)


def predicted_rows():
    """A list that gets the rows of every batch the callback's `Predictor` predicts."""
    rows = []
    predict = keras_prediction.Predictor.predict

    def counted(self, x):
        rows.append(len(keras.tree.flatten(x)[0]))
        return predict(self, x)

    keras_prediction.Predictor.predict = counted
    return rows


CASES = {
    # The callback's rows are fit's: Keras's outputs are taken, nothing predicted.
    "reused": {},
    # No validation pass at epoch 0: the callback predicts it; epoch 1's outputs are taken.
    "every_other_epoch": {"validation_freq": 2},
    # Keras hands one batch's logs per execution: the callback predicts every epoch.
    "steps_per_execution": {"steps_per_execution": 2},
    # fit validates on other inputs with the same labels: the callback predicts its own rows.
    "other_inputs": {"other_inputs": True},
}


def run_case(out_dir, name, options, rows):
    x, y, x_val, y_val, groups = data()
    network = model(options.get("steps_per_execution", 1))
    root = os.path.join(out_dir, name)
    callback = MetricsDiagCallback(
        os.path.join(root, "callback"),
        validation_data=(x_val, y_val),
        groups=groups,
        batch_size=BATCH,  # where it predicts, the batches of the reference's predict
    )
    outputs, seen = Recorder(x_val), SeenKeys()
    fit_x_val = x_val + 1.0 if options.get("other_inputs") else x_val
    del rows[:]
    history = network.fit(
        x,
        y,
        validation_data=(fit_x_val, y_val),
        validation_freq=options.get("validation_freq", 1),
        validation_batch_size=BATCH,
        batch_size=BATCH,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[callback, outputs, seen],
    )
    predicted = list(rows)
    writer = MetricsDiagWriter(os.path.join(root, "reference"))
    for epoch, scores in enumerate(outputs.outputs):
        writer.add_evaluation(y_val, scores, epoch, groups=groups)
    writer.close()
    evaluated = network.evaluate(x_val, y_val, batch_size=BATCH, verbose=0, return_dict=True)
    again = network.evaluate(x_val, y_val, batch_size=BATCH, verbose=0, return_dict=True)
    np.savez(os.path.join(root, "outputs.npz"), outputs=np.stack(outputs.outputs))
    result = {
        "predicted_rows": predicted,
        "history_keys": sorted(history.history),
        "callback_keys": sorted(seen.keys),
        "evaluate_keys": sorted(evaluated),
        "evaluate_again_equal": evaluated == again,
        "patched_attributes": sorted(
            n for n in ("test_step", "compute_metrics") if n in vars(network)
        ),
        "test_function_cleared": getattr(network.test_function, "_metricsdiag_reuse", False)
        is False,
    }
    with open(os.path.join(root, "result.json"), "w") as f:
        json.dump(result, f)


def main():
    out_dir = sys.argv[1]
    rows = predicted_rows()
    for name, options in CASES.items():
        if name == "steps_per_execution" and keras.backend.backend() == "torch":
            continue  # Keras refuses steps_per_execution > 1 on PyTorch
        run_case(out_dir, name, options, rows)
    with open(os.path.join(out_dir, "process.json"), "w") as f:
        json.dump({"backend": keras.backend.backend()}, f)


if __name__ == "__main__":
    main()

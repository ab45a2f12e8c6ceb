"""Shared fixtures: real Keras trainings with the real callback, run once per test session.

`callback_runs` trains three tiny classifiers (binary sigmoid, multi-class logits, one-hot
softmax fed by a tf.data pipeline) into one logdir and records, beside the callback, the
model's own predictions at every epoch: the independent reference the tests compare against.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses
import glob
import json

import background_commands
import numpy as np
import pytest

# TensorFlow in this process, PyTorch in a second one: tests/framework_processes.py.
pytest_plugins = ("framework_processes",)


def pytest_collection_finish(session):
    background_commands.start_if_collected(session)  # minutes each: beside the other tests


def pytest_unconfigure(config):
    background_commands.stop_all(config)


EPOCHS = 3


def documented_thresholds():
    """The default threshold grid as docs/format.md defines it, computed here independently:
    0, then sigmoid(z) for 199 logits z evenly spaced over [-9, 9] with the distance to the
    nearer of 0 and 1 rounded to 3 significant digits, then 1."""
    logits = np.linspace(-9.0, 9.0, 199)
    distance = np.array([float("%.3g" % q) for q in 1 / (1 + np.exp(np.abs(logits)))])
    # The distances have at most 6 decimals, and so have 1 minus them: round() to 6 decimals
    # gives the float nearest that decimal.
    inside = [q if z <= 0 else round(1 - q, 6) for z, q in zip(logits, distance)]
    return np.array([0.0] + inside + [1.0])


PREDICT_BATCH = 512


@dataclasses.dataclass
class TrainedRun:
    name: str
    log_dir: str
    class_names: list
    x_val: np.ndarray
    y_val_ids: np.ndarray  # actual class ids of the validation examples
    x_train_sample: np.ndarray
    y_train_sample_ids: np.ndarray
    outputs_are_logits: bool
    predictions: dict  # epoch -> {"validation": raw outputs, "train": raw outputs}
    logs: dict  # epoch -> Keras logs
    duplicates: int  # validation rows copied from the training sample


def to_scores(outputs, from_logits):
    """Per-class scores as the documented convention defines them (labels.py), in NumPy."""
    outputs = np.asarray(outputs)
    if outputs.shape[1] == 1:
        p = outputs[:, 0]
        if from_logits:
            p = 1 / (1 + np.exp(-p))
        return np.stack([1 - p, p], axis=1), (p >= 0.5).astype(int)
    if from_logits:
        e = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs = e / e.sum(axis=1, keepdims=True)
    return outputs, outputs.argmax(axis=1)


def read_events(log_dir, decode=True):
    """{tag: {step: (ndarray, plugin content bytes)}} of every event file directly in log_dir.

    With ``decode``, encoded confusion matrices (format version 5) are given as their
    ``[C, C]`` integers (`confusion_counts.decode_confusion_cells`), encoded threshold counts as their
    ``[C, 2, T]`` integers (`threshold_counts.decode_threshold_counts`), and an average precision stored with them (format
    version 3) under the average-precision tag of its split, where version 2 wrote it; without,
    as the stored bytes.
    """
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.util import tensor_util

    from tb_metricsdiag.format import confusion_counts, schema, threshold_counts

    result = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                array = tensor_util.make_ndarray(value.tensor)
                content = value.metadata.plugin_data.content
                ours = value.metadata.plugin_data.plugin_name == schema.PLUGIN_NAME
                parsed = json.loads(content) if ours else {}
                if decode and parsed.get("encoding") == schema.THRESHOLD_COUNTS_ENCODING:
                    array, average_precision, _ = threshold_counts.decode_threshold_counts(
                        array.item(),
                        len(parsed["class_names"]),
                        with_average_precision="average_precision" in parsed,
                        with_roc_auc="roc_auc" in parsed,
                    )
                    if average_precision is not None:
                        ap_tag = schema.split_tag(parsed["split"], schema.KIND_AVERAGE_PRECISION)
                        result.setdefault(ap_tag, {})[event.step] = (average_precision, content)
                if decode and parsed.get("encoding") == schema.CONFUSION_ENCODING:
                    array = confusion_counts.confusion_from_cells(
                        *confusion_counts.decode_confusion_cells(array.item())
                    )
                result.setdefault(value.tag, {})[event.step] = (array, content)
    return result


def stored_logs(events, step):
    """``{key: float}`` of the Keras logs written at ``step`` (`read_events` output), decoded
    independently of the reader: plain JSON, with the three spellings of non-finite values."""
    text = events["metricsdiag/logs"][step][0].item().decode("utf-8")
    spelled = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
    return {key: spelled.get(value, value) for key, value in json.loads(text).items()}


def _train(name, root, make_model, data, class_names, fit_kwargs=None, train_sample_dup=0):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(7)
    x, y, x_val, y_val, ids, val_ids = data
    if train_sample_dup:
        # Copy some training rows into validation: the overlap check must count exactly these.
        x_val = x_val.copy()
        x_val[:train_sample_dup] = x[:train_sample_dup]
        y_val = y_val.copy()
        y_val[:train_sample_dup] = y[:train_sample_dup]
        val_ids = val_ids.copy()
        val_ids[:train_sample_dup] = ids[:train_sample_dup]
    sample = slice(0, 256)
    model, logits, validation = make_model(x_val, y_val)
    log_dir = os.path.join(root, name)
    record = TrainedRun(
        name,
        log_dir,
        class_names,
        x_val,
        val_ids,
        x[sample],
        ids[sample],
        logits,
        {},
        {},
        train_sample_dup,
    )

    class Reference(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record.predictions[epoch] = {
                "validation": self.model.predict(x_val, batch_size=PREDICT_BATCH, verbose=0),
                "train": self.model.predict(x[sample], batch_size=PREDICT_BATCH, verbose=0),
            }
            record.logs[epoch] = dict(logs)

    callback = MetricsDiagCallback(
        log_dir,
        validation_data=validation,
        train_data=(x[sample], y[sample]),
        class_names=class_names,
    )
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        batch_size=64,
        verbose=0,
        callbacks=[callback, Reference(), keras.callbacks.TensorBoard(log_dir)],
        # The callback takes Keras's validation outputs (keras_output_reuse): in the batches of
        # the reference's predict, they are the same to the last bit.
        validation_batch_size=PREDICT_BATCH,
        **(fit_kwargs or {}),
    )
    return record


def _blobs(num_classes, n_train=900, n_val=300, features=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.2, size=(num_classes, features))

    def draw(n):
        ids = rng.integers(0, num_classes, size=n)
        return (centers[ids] + rng.normal(size=(n, features))).astype(np.float32), ids

    x, ids = draw(n_train)
    x_val, val_ids = draw(n_val)
    return x, ids, x_val, val_ids


@pytest.fixture(scope="session")
def callback_runs(tmp_path_factory):
    """{name: TrainedRun} for 'binary', 'multiclass' and 'onehot', all under one logdir."""
    import keras
    import tensorflow as tf

    root = str(tmp_path_factory.mktemp("logdir"))
    runs = {}

    x, ids, x_val, val_ids = _blobs(2, seed=1)

    def binary_model(xv, yv):
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        return model, False, (xv, yv)

    runs["binary"] = _train(
        "binary",
        root,
        binary_model,
        (x, ids.astype(np.float32), x_val, val_ids.astype(np.float32), ids, val_ids),
        ["legit", "fraud"],
        train_sample_dup=20,
    )

    x, ids, x_val, val_ids = _blobs(3, seed=2)

    def logits_model(xv, yv):
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
        )
        model.compile(
            "adam",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model, True, (xv, yv)

    runs["multiclass"] = _train(
        "multiclass",
        root,
        logits_model,
        (x, ids, x_val, val_ids, ids, val_ids),
        ["cat", "dog", "bird"],
    )

    x, ids, x_val, val_ids = _blobs(4, seed=3)
    onehot, onehot_val = np.eye(4, dtype=np.float32)[ids], np.eye(4, dtype=np.float32)[val_ids]

    def softmax_model(xv, yv):
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(4, activation="softmax"),
            ]
        )
        model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
        return model, False, tf.data.Dataset.from_tensor_slices((xv, yv)).batch(PREDICT_BATCH)

    runs["onehot"] = _train(
        "onehot",
        root,
        softmax_model,
        (x, onehot, x_val, onehot_val, ids, val_ids),
        None,
    )
    return root, runs


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """The logdir of good, damaged, crafted and hostile runs (`zoo.build_zoo`)."""
    import zoo as zoo_lib

    logdir = str(tmp_path_factory.mktemp("zoo"))
    zoo_lib.build_zoo(logdir)
    return logdir


@pytest.fixture(scope="session")
def client(zoo):
    """A werkzeug client of the plugin over the zoo (the Python loader's provider)."""
    import zoo as zoo_lib
    from tensorboard.backend import application
    from werkzeug import test as werkzeug_test

    return werkzeug_test.Client(application.TensorBoardWSGI([zoo_lib.make_plugin(zoo)]))


@pytest.fixture(scope="session")
def torchmetrics():
    """TorchMetrics' classification metrics as a reference, computed in a process without
    TensorFlow (`torchmetrics_reference.TorchMetrics`)."""
    from torchmetrics_reference import TorchMetrics

    reference = TorchMetrics()
    yield reference
    reference.close()

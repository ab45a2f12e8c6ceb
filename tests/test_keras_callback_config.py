"""Configuration mistakes fail at on_train_begin with a clear ValueError; later trouble is
recorded as an event and training goes on."""

import json

import numpy as np
import pytest
from conftest import read_events
from sklearn.metrics import confusion_matrix as sklearn_confusion

from tb_metricsdiag.format import schema


@pytest.fixture(scope="module")
def small():
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=64)

    def model(units=3, activation="softmax", loss="sparse_categorical_crossentropy"):
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=activation)])
        m.compile("adam", loss)
        return m

    return x, y, model


def _fit(model, x, y, callback, epochs=1):
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[callback])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "needs validation_data"),
        ({"validation_data": "nope"}, "tuple \\(x, y\\)"),
        ({"validation_data": "x_y_mismatch"}, "x has 64 examples but y has shape"),
        ({"validation_data": "empty"}, "empty"),
        (
            {"validation_data": "ok", "class_names": ["a", "b"]},
            "class_names has 2 names but the model predicts 3",
        ),
        ({"validation_data": "out_of_range"}, r"class ids in \[0, 3\)"),
        ({"validation_data": "ok", "thresholds": [0.5, 0.1]}, "ascending"),
        ({"validation_data": "ok", "batch_size": 0}, "batch_size"),
    ],
)
def test_configuration_errors_raise_at_train_begin(small, tmp_path, kwargs, message):
    from tb_metricsdiag import MetricsDiagCallback

    x, y, make_model = small
    data = {
        "ok": (x, y),
        "nope": "nope",
        "x_y_mismatch": (x, y[:10]),
        "empty": (x[:0], y[:0]),
        "out_of_range": (x, y + 1),
    }
    if "validation_data" in kwargs:
        kwargs = dict(kwargs, validation_data=data[kwargs["validation_data"]])
    with pytest.raises(ValueError, match=message):
        _fit(make_model(), x, y, MetricsDiagCallback(str(tmp_path), **kwargs))


def test_regression_model_is_refused(small, tmp_path):
    from tb_metricsdiag import MetricsDiagCallback

    x, _, make_model = small
    target = x[:, 0] * 3.5  # continuous targets on a single linear unit
    with pytest.raises(ValueError, match="whole class ids"):
        _fit(
            make_model(1, None, "mse"),
            x,
            target,
            MetricsDiagCallback(str(tmp_path), validation_data=(x, target)),
        )


def test_multi_output_model_is_refused(small, tmp_path):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    x, y, _ = small
    inputs = keras.Input((4,))
    model = keras.Model(
        inputs,
        [
            keras.layers.Dense(3, activation="softmax")(inputs),
            keras.layers.Dense(2, activation="softmax")(inputs),
        ],
    )
    model.compile("adam", ["sparse_categorical_crossentropy"] * 2)
    with pytest.raises(ValueError, match="single classification output"):
        model.fit(
            x,
            [y, y % 2],
            epochs=1,
            verbose=0,
            callbacks=[MetricsDiagCallback(str(tmp_path), validation_data=(x, y))],
        )


def test_nan_predictions_are_recorded_not_raised(small, tmp_path):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    x, y, make_model = small
    model = make_model()

    class PoisonWeights(keras.callbacks.Callback):
        # Runs before the diagnostics callback at epoch 1: the model turns to NaN mid-training.
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                for weight in self.model.weights:
                    weight.assign(np.full(weight.shape, np.nan, dtype=np.float32))

    callback = MetricsDiagCallback(str(tmp_path), validation_data=(x, y))
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[PoisonWeights(), callback])
    events = read_events(str(tmp_path))
    recorded = {
        step: json.loads(value[0].item()) for step, value in events[schema.EVENTS_TAG].items()
    }
    assert sorted(recorded) == [1, 2]
    assert recorded[1][0]["kind"] == "nonfinite_predictions" and recorded[1][0]["count"] == 64
    # Epoch 0 was healthy and fully counted.
    assert events[schema.split_tag("validation", "confusion")][0][0].sum() == 64


def test_metric_mode_counts_what_validation_split_validates_on(small, tmp_path):
    from tb_metricsdiag import MetricsDiagCallback

    x, y, make_model = small
    model = make_model()
    callback = MetricsDiagCallback(str(tmp_path))  # no validation_data: Keras's split is counted
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[callback.metric()])
    model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0, callbacks=[callback])
    events = read_events(str(tmp_path))
    validation = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0]
    # Keras validates on the last quarter, with the weights of the epoch's end.
    predicted = model.predict(x[48:], verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(validation, sklearn_confusion(y[48:], predicted, labels=range(3)))
    assert events[schema.split_tag("train", schema.KIND_CONFUSION)][0][0].sum() == 48


def test_validation_steps_bound_a_repeating_dataset(small, tmp_path):
    import tensorflow as tf

    from tb_metricsdiag import MetricsDiagCallback

    x, y, make_model = small
    repeated = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()
    callback = MetricsDiagCallback(str(tmp_path), validation_data=repeated, validation_steps=3)
    model = make_model()
    _fit(model, x, y, callback)
    events = read_events(str(tmp_path))
    confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0]
    predicted = model.predict(x[:48], verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(confusion, sklearn_confusion(y[:48], predicted, labels=range(3)))

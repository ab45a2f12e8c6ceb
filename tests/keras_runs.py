"""Small real Keras trainings shared by the end-to-end tests: each is built to show one problem.

`train_all` trains every run once per test session into one logdir and returns a `Runs`
record; tests read it back with the CLI or the reader. Tiny models and data keep the whole
set to a few seconds of CPU per run.
"""

import dataclasses
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NUM_FEATURES = 8


@dataclasses.dataclass
class Runs:
    logdir: str
    keras_histories: dict  # run name -> keras History.history
    validation: dict  # run name -> (y_true ids, y_pred ids) at the end of training


_CACHE = {}


def _dense_model(keras, width, activation, hidden=16):
    return keras.Sequential(
        [
            keras.Input((NUM_FEATURES,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(width, activation=activation),
        ]
    )


def _linear_labels(rng, x, num_classes, noise):
    weights = rng.normal(size=(NUM_FEATURES, num_classes))
    return np.argmax(x @ weights + noise * rng.normal(size=(x.shape[0], num_classes)), axis=1)


def _features(rng, n):
    return rng.normal(size=(n, NUM_FEATURES)).astype("float32")


def train_all(tmp_path_factory):
    """Train every run once per session; returns `Runs`."""
    if "runs" in _CACHE:
        return _CACHE["runs"]
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    logdir = str(tmp_path_factory.mktemp("keras_runs"))
    histories, validation = {}, {}

    def fit(
        name,
        model,
        loss,
        x,
        y,
        x_val,
        y_val,
        *,
        epochs,
        optimizer,
        train_data=None,
        class_names=None,
        keras_tensorboard_only=False,
        metrics=("accuracy",),
        batch_size=32,
    ):
        model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
        run_dir = os.path.join(logdir, name)
        if keras_tensorboard_only:
            callbacks = [keras.callbacks.TensorBoard(run_dir)]
        else:
            callbacks = [
                MetricsDiagCallback(
                    run_dir,
                    validation_data=(x_val, y_val),
                    train_data=train_data,
                    class_names=class_names,
                )
            ]
        history = model.fit(
            x,
            y,
            validation_data=(x_val, y_val),
            epochs=epochs,
            batch_size=batch_size,
            callbacks=callbacks,
            verbose=0,
        )
        histories[name] = history.history
        outputs = model.predict(x_val, verbose=0)
        y_ids = np.argmax(y_val, axis=1) if y_val.ndim == 2 else y_val.astype(int)
        if outputs.shape[1] == 1:
            predicted = (outputs[:, 0] >= 0.5).astype(int)
        else:
            predicted = np.argmax(outputs, axis=1)
        validation[name] = (y_ids, predicted)

    rng = np.random.default_rng(0)

    # Healthy: three learnable classes with some label noise, enough data, a few epochs.
    keras.utils.set_random_seed(1)
    x = _features(rng, 900)
    y = _linear_labels(rng, x, 3, noise=0.3)
    fit(
        "healthy",
        _dense_model(keras, 3, "softmax"),
        "sparse_categorical_crossentropy",
        x[:600],
        y[:600],
        x[600:],
        y[600:],
        epochs=8,
        optimizer=keras.optimizers.Adam(0.01),
        train_data=(x[:300], y[:300]),
        class_names=["red", "green", "blue"],
    )

    # Overfitting: 40 noisy examples, a wide model, many epochs.
    keras.utils.set_random_seed(2)
    x = _features(rng, 340)
    y = (x[:, 0] + 0.5 * rng.normal(size=340) > 0).astype(int)
    for name, tensorboard_only in (("overfit", False), ("keras_only_overfit", True)):
        keras.utils.set_random_seed(2)
        fit(
            name,
            _dense_model(keras, 2, "softmax", hidden=256),
            "sparse_categorical_crossentropy",
            x[:40],
            y[:40],
            x[40:],
            y[40:],
            epochs=20,
            optimizer=keras.optimizers.Adam(0.01),
            keras_tensorboard_only=tensorboard_only,
            batch_size=40,
        )

    # Leaky: the validation rows are copies of training rows.
    keras.utils.set_random_seed(3)
    x = _features(rng, 400)
    y = _linear_labels(rng, x, 2, noise=0.3)
    fit(
        "leaky",
        _dense_model(keras, 2, "softmax"),
        "sparse_categorical_crossentropy",
        x,
        y,
        x[:150],
        y[:150],
        epochs=3,
        optimizer=keras.optimizers.Adam(0.01),
        train_data=(x, y),
    )

    # Fraud-like: 4 % positives, barely separable, one sigmoid unit; accuracy looks great.
    keras.utils.set_random_seed(4)
    x = _features(rng, 1500)
    y = (rng.random(1500) < 0.04).astype("float32")
    x[:, 0] += 0.8 * y
    fit(
        "fraud",
        _dense_model(keras, 1, "sigmoid"),
        "binary_crossentropy",
        x[:1000],
        y[:1000],
        x[1000:],
        y[1000:],
        epochs=4,
        optimizer=keras.optimizers.Adam(0.01),
        class_names=["legit", "fraud"],
    )

    # Not learning: labels unrelated to the inputs and a zero learning rate.
    keras.utils.set_random_seed(5)
    x = _features(rng, 800)
    y = np.arange(800) % 2
    fit(
        "not_learning",
        _dense_model(keras, 2, "softmax"),
        "sparse_categorical_crossentropy",
        x[:400],
        y[:400],
        x[400:],
        y[400:],
        epochs=4,
        optimizer=keras.optimizers.SGD(0.0),
    )

    # Diverging: a huge learning rate on large inputs.
    keras.utils.set_random_seed(6)
    x = _features(rng, 400) * 100.0
    y = _linear_labels(rng, x, 3, noise=0.3)
    fit(
        "diverging",
        _dense_model(keras, 3, "softmax"),
        "sparse_categorical_crossentropy",
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        epochs=4,
        optimizer=keras.optimizers.SGD(1e6),
    )

    # Wrong losses: mean squared error on a softmax, and from_logits=True after a softmax.
    keras.utils.set_random_seed(7)
    x = _features(rng, 400)
    y = _linear_labels(rng, x, 3, noise=0.3)
    one_hot = np.eye(3, dtype="float32")[y]
    fit(
        "mse_loss",
        _dense_model(keras, 3, "softmax"),
        "mse",
        x[:300],
        one_hot[:300],
        x[300:],
        one_hot[300:],
        epochs=3,
        optimizer=keras.optimizers.Adam(0.01),
    )
    fit(
        "logits_mismatch",
        _dense_model(keras, 3, "softmax"),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        epochs=3,
        optimizer=keras.optimizers.Adam(0.01),
    )

    _CACHE["runs"] = Runs(logdir, histories, validation)
    return _CACHE["runs"]

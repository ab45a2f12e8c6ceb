"""Callback overhead: wall time of ``model.fit`` with and without recording, as ratios.

The setting of issue 7: a 10-class MLP on 50,000 examples of 64 features, 10,000 validation
examples, batch 256, ``keras.callbacks.TensorBoard`` in every variant. Variants:

- ``baseline``: TensorBoard alone;
- ``callback``: + `MetricsDiagCallback` at its defaults (its own prediction pass, exact AP);
- ``metric``: + `MetricsDiagCallback` with ``callback.metric()`` in ``compile(metrics=...)``
  (counts made inside Keras's own steps, no extra pass; threshold-grid AP);
- ``image_recipe``: + the common recipe: predict, scikit-learn ``confusion_matrix``, a
  matplotlib figure rendered to PNG and logged with ``tf.summary.image`` every epoch.

Every variant trains a fresh model from the same seed. The variants run interleaved, in a
rotating order, ``--repeats`` times in this one process, after a warm-up fit; the overhead is
the ratio of median fit times to the baseline's.

Run: ``python bench/overhead.py`` (``--quick``: 2 epochs, 2 repeats).
"""

import argparse
import io
import os
import statistics
import tempfile
import time

import numpy as np

from _common import describe_machine

TRAIN_EXAMPLES = 50_000
VALIDATION_EXAMPLES = 10_000
FEATURES = 64
CLASSES = 10
HIDDEN_UNITS = 256
BATCH_SIZE = 256
EPOCHS, QUICK_EPOCHS = 5, 2
REPEATS, QUICK_REPEATS = 3, 2
TARGET_OVERHEAD = 0.03
VARIANTS = ("baseline", "callback", "metric", "image_recipe")


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.6, size=(CLASSES, FEATURES))

    def draw(n):
        ids = rng.integers(0, CLASSES, size=n)
        return (centers[ids] + rng.normal(size=(n, FEATURES))).astype(np.float32), ids

    return draw(TRAIN_EXAMPLES) + draw(VALIDATION_EXAMPLES)


def make_model(metrics):
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"] + metrics)
    return model


def image_recipe_callback(log_dir, x_val, y_val):
    """The widespread confusion-matrix-as-image recipe, written out plainly."""
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf
    from sklearn.metrics import confusion_matrix

    writer = tf.summary.create_file_writer(os.path.join(log_dir, "cm"))

    class ConfusionImage(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            predicted = np.argmax(self.model.predict(x_val, batch_size=BATCH_SIZE, verbose=0), axis=1)
            matrix = confusion_matrix(y_val, predicted, labels=range(CLASSES))
            figure = plt.figure(figsize=(8, 8))
            plt.imshow(matrix, interpolation="nearest", cmap=plt.cm.Blues)
            plt.colorbar()
            plt.xticks(range(CLASSES))
            plt.yticks(range(CLASSES))
            for i in range(CLASSES):
                for j in range(CLASSES):
                    plt.text(j, i, str(matrix[i, j]), ha="center", va="center")
            plt.ylabel("actual")
            plt.xlabel("predicted")
            buffer = io.BytesIO()
            plt.savefig(buffer, format="png")
            plt.close(figure)
            image = tf.image.decode_png(buffer.getvalue(), channels=4)[None]
            with writer.as_default():
                tf.summary.image("confusion_matrix", image, step=epoch)

    return ConfusionImage()


def fit_seconds(variant, data, epochs, root, run):
    """Wall time of one ``model.fit`` of ``variant`` (model building excluded)."""
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    x, y, x_val, y_val = data
    log_dir = os.path.join(root, "%s-%d" % (variant, run))
    callbacks = [keras.callbacks.TensorBoard(log_dir)]
    metrics = []
    if variant in ("callback", "metric"):
        recorder = MetricsDiagCallback(log_dir, validation_data=(x_val, y_val))
        callbacks.append(recorder)
        if variant == "metric":
            metrics.append(recorder.metric())
    elif variant == "image_recipe":
        callbacks.append(image_recipe_callback(log_dir, x_val, y_val))
    model = make_model(metrics)
    start = time.perf_counter()
    model.fit(
        x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=BATCH_SIZE,
        callbacks=callbacks, verbose=0,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="%d epochs, %d repeats" % (QUICK_EPOCHS, QUICK_REPEATS))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args()
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    print(describe_machine())
    data = make_data()
    times = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as root:
        fit_seconds("baseline", data, 1, root, -1)  # warm-up: TensorFlow start-up costs
        for run in range(repeats):
            order = VARIANTS[run % len(VARIANTS):] + VARIANTS[:run % len(VARIANTS)]
            for variant in order:
                times[variant].append(fit_seconds(variant, data, epochs, root, run))
    base = statistics.median(times["baseline"])
    print("%d train / %d validation examples, %d features, %d classes, batch %d, %d epochs, %d repeats"
          % (TRAIN_EXAMPLES, VALIDATION_EXAMPLES, FEATURES, CLASSES, BATCH_SIZE, epochs, repeats))
    for variant in VARIANTS:
        median = statistics.median(times[variant])
        print("  %-12s median fit %6.2f s (min %6.2f)  overhead %+6.1f%%  (%+.3f s/epoch)%s" % (
            variant, median, min(times[variant]), 100 * (median / base - 1), (median - base) / epochs,
            "" if variant == "baseline" else
            ("  target <= %.0f%%: %s" % (100 * TARGET_OVERHEAD, "met" if median / base - 1 <= TARGET_OVERHEAD else "missed"))
            if variant in ("callback", "metric") else "",
        ))


if __name__ == "__main__":
    main()

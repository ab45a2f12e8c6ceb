"""Callback overhead: wall time of ``model.fit`` with and without recording, as ratios.

The target setting: a 10-class MLP on 50,000 examples of 64 features, 10,000 validation
examples, batch 256, ``keras.callbacks.TensorBoard`` in every variant. Variants:

- ``baseline``: TensorBoard alone;
- ``callback``: + `MetricsDiagCallback` at its defaults (its own prediction pass, exact AP);
- ``metric``: + `MetricsDiagCallback` with ``callback.metric()`` in ``compile(metrics=...)``
  (counts made inside Keras's own steps, no extra pass; threshold-grid AP);
- ``image_recipe``: + the common recipe: predict, scikit-learn ``confusion_matrix``, a
  matplotlib figure rendered to PNG and logged with ``tf.summary.image`` every epoch;
- ``groups`` (with ``--groups N``, which runs only it, ``baseline`` and ``callback``): the
  callback with ``groups=`` of one key of N values drawn at random over the validation rows
  (slices, issue 26). Its cost is timed where it is spent: the slices' own work in each
  ``on_epoch_end`` (every ``EpochSlices.update`` and its ``record``), against the baseline's
  epoch; the difference of the two variants' ``on_epoch_end`` is printed too, but it scatters
  more than the cost on a shared machine.

Every variant trains a fresh model from the same seed. The variants run interleaved, in a
rotating order, ``--repeats`` times in this one process, after a warm-up fit; the overhead is
the ratio of median fit times to the baseline's. Fit times on a shared machine are noisy (the
same fit scatters by ±20% here, and the process's CPU time no less), so steadier figures are
printed as well: the time the callback spends in its own hooks (its ``on_epoch_end`` from the
second epoch on, against the baseline's epoch time; its one-off ``on_train_begin``; all of
them over a fit, against the baseline's fit), and the in-graph cost of one `CountsMetric`
update per batch, against ``SparseCategoricalAccuracy``'s, timed in a ``tf.function`` loop.

It runs on the Keras backend of ``KERAS_BACKEND``; ``--backends tensorflow,jax,torch`` runs it
once per backend, each in a subprocess of its own (the backend is fixed per process). The
image recipe, which needs ``tf.summary.image``, and the in-graph metric timing (a
``tf.function`` loop) are TensorFlow's only.

Run: ``python bench/overhead.py`` (``--quick``: 2 epochs, 2 repeats).
"""

import argparse
import importlib.util
import io
import os
import statistics
import subprocess
import sys
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
EPOCHS, QUICK_EPOCHS = 10, 2
REPEATS, QUICK_REPEATS = 5, 2
TARGET_OVERHEAD = 0.03
VARIANTS = ("baseline", "callback", "metric", "image_recipe")
TENSORFLOW_ONLY_VARIANTS = ("image_recipe",)
RECORDING_VARIANTS = ("callback", "metric", "groups")
METRIC_UPDATES = 500


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
            predicted = np.argmax(
                self.model.predict(x_val, batch_size=BATCH_SIZE, verbose=0), axis=1
            )
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


def timed_callback_class():
    """`MetricsDiagCallback` recording the wall time of its hooks in ``hook_seconds``."""
    from tb_metricsdiag import MetricsDiagCallback

    class TimedCallback(MetricsDiagCallback):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.hook_seconds = {"on_train_begin": [], "on_epoch_end": []}

        def _timed(self, hook, *args):
            start = time.perf_counter()
            getattr(super(), hook)(*args)
            self.hook_seconds[hook].append(time.perf_counter() - start)

        def on_train_begin(self, logs=None):
            self._timed("on_train_begin", logs)

        def on_epoch_end(self, epoch, logs=None):
            self._timed("on_epoch_end", epoch, logs)

    return TimedCallback


def timed_slices_class(seconds):
    """`slice_recorder.EpochSlices` appending each epoch's own wall time (its updates and its
    record) to ``seconds``."""
    from tb_metricsdiag.writing import slice_recorder

    class TimedSlices(slice_recorder.EpochSlices):
        spent = 0.0

        def update(self, *args):
            start = time.perf_counter()
            super().update(*args)
            self.spent += time.perf_counter() - start

        def record(self, *args):
            start = time.perf_counter()
            result = super().record(*args)
            seconds.append(self.spent + time.perf_counter() - start)
            return result

    return TimedSlices


def fit_seconds(variant, data, epochs, root, run, hooks, groups=None):
    """Wall time of one ``model.fit`` of ``variant`` (model building excluded); the hook times
    of a recording variant are appended to ``hooks[hook]``; ``groups``: the ``groups`` variant's."""
    import keras

    x, y, x_val, y_val = data
    log_dir = os.path.join(root, "%s-%d" % (variant, run))
    callbacks = [keras.callbacks.TensorBoard(log_dir)]
    metrics = []
    recorder = None
    if variant in RECORDING_VARIANTS:
        recorder = timed_callback_class()(
            log_dir, validation_data=(x_val, y_val), groups=groups if variant == "groups" else None
        )
        callbacks.append(recorder)
        if variant == "metric":
            metrics.append(recorder.metric())
    elif variant == "image_recipe":
        callbacks.append(image_recipe_callback(log_dir, x_val, y_val))
    model = make_model(metrics)
    start = time.perf_counter()
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    if recorder is not None:
        hooks["on_train_begin"].extend(recorder.hook_seconds["on_train_begin"])
        hooks["on_epoch_end"].extend(recorder.hook_seconds["on_epoch_end"][1:])  # steady state
        hooks["whole_fit"].append(sum(map(sum, recorder.hook_seconds.values())))
    return seconds


def metric_update_seconds():
    """(CountsMetric, SparseCategoricalAccuracy) seconds per in-graph update of one batch."""
    import keras
    import tensorflow as tf

    from tb_metricsdiag.writing.keras_metric import CountsMetric

    rng = np.random.default_rng(0)
    y = tf.constant(rng.integers(0, CLASSES, size=BATCH_SIZE))
    scores = tf.constant(rng.dirichlet(np.ones(CLASSES), size=BATCH_SIZE).astype(np.float32))
    result = []
    for metric in (CountsMetric(from_logits=False), keras.metrics.SparseCategoricalAccuracy()):
        metric.update_state(y, scores)

        @tf.function
        def loop():
            for _ in tf.range(METRIC_UPDATES):
                metric.update_state(y, scores)

        loop()
        best = min(timeit_once(loop) for _ in range(3))
        result.append(best / METRIC_UPDATES)
    return result


def timeit_once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_per_backend(args):
    """This script once per Keras backend of ``args.backends``, each in a subprocess with
    ``KERAS_BACKEND`` set and the other arguments of ``args``.
    """
    arguments = ["--quick"] if args.quick else []
    for name in ("epochs", "repeats", "groups"):
        if getattr(args, name):
            arguments += ["--" + name, str(getattr(args, name))]
    for backend in args.backends.split(","):
        print("=== KERAS_BACKEND=%s" % backend, flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([sys.executable, os.path.abspath(__file__)] + arguments, env=env, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="%d epochs, %d repeats" % (QUICK_EPOCHS, QUICK_REPEATS)
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument(
        "--backends", help="comma-separated Keras backends, each run in a subprocess of its own"
    )
    parser.add_argument(
        "--groups", type=int, help="run the groups variant with one key of this many values"
    )
    args = parser.parse_args()
    if args.backends:
        run_per_backend(args)
        return
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    if epochs < 2:
        parser.error("--epochs must be at least 2: the steady figures leave the first epoch out")
    import keras

    backend = keras.backend.backend()
    variants = tuple(
        v for v in VARIANTS if backend == "tensorflow" or v not in TENSORFLOW_ONLY_VARIANTS
    )
    groups = None
    if args.groups:
        variants = ("baseline", "callback", "groups")
        slices = np.random.default_rng(2).integers(0, args.groups, VALIDATION_EXAMPLES)
        groups = {"slice": slices}
        from tb_metricsdiag.writing import slice_recorder

        slice_seconds = []
        slice_recorder.EpochSlices = timed_slices_class(slice_seconds)
    if importlib.util.find_spec("matplotlib") is None:
        print("(matplotlib is not installed: no image_recipe variant)")
        variants = tuple(v for v in variants if v != "image_recipe")
    print(describe_machine())
    print("Keras %s, backend %s" % (keras.__version__, backend))
    data = make_data()
    wall = {variant: [] for variant in variants}
    hooks = {
        variant: {"on_train_begin": [], "on_epoch_end": [], "whole_fit": []} for variant in variants
    }
    with tempfile.TemporaryDirectory() as root:
        fit_seconds("baseline", data, 1, root, -1, hooks["baseline"])  # the backend's start-up
        for run in range(repeats):
            order = variants[run % len(variants) :] + variants[: run % len(variants)]
            for variant in order:
                wall[variant].append(
                    fit_seconds(variant, data, epochs, root, run, hooks[variant], groups)
                )
    base = statistics.median(wall["baseline"])
    print(
        "%d train / %d validation examples, %d features, %d classes, batch %d, %d epochs, %d repeats"
        % (TRAIN_EXAMPLES, VALIDATION_EXAMPLES, FEATURES, CLASSES, BATCH_SIZE, epochs, repeats)
    )
    for variant in variants:
        median = statistics.median(wall[variant])
        print(
            "  %-12s median fit %6.2f s (min %6.2f)  overhead %+6.1f%%%s"
            % (
                variant,
                median,
                min(wall[variant]),
                100 * (median / base - 1),
                "  target <= %.0f%%: %s"
                % (
                    100 * TARGET_OVERHEAD,
                    "met" if median / base - 1 <= TARGET_OVERHEAD else "missed",
                )
                if variant in RECORDING_VARIANTS
                else "",
            )
        )
    epoch = base / epochs
    print("steady figures (baseline epoch %.3f s):" % epoch)
    for variant in (v for v in RECORDING_VARIANTS if v in variants):
        end = statistics.median(hooks[variant]["on_epoch_end"])
        whole = statistics.median(hooks[variant]["whole_fit"])
        print(
            "  %-12s on_epoch_end %6.1f ms = %5.1f%% of an epoch; on_train_begin %.0f ms once;"
            " all hooks %.2f s = %.1f%% of a baseline fit"
            % (
                variant,
                1000 * end,
                100 * end / epoch,
                1000 * statistics.median(hooks[variant]["on_train_begin"]),
                whole,
                100 * whole / base,
            )
        )
    if groups is not None:
        added = [
            g - c
            for g, c in zip(hooks["groups"]["on_epoch_end"], hooks["callback"]["on_epoch_end"])
        ]
        print(
            "  groups of %d values add %.1f ms to on_epoch_end = %.2f%% of an epoch (median of"
            " paired epochs)"
            % (args.groups, 1000 * statistics.median(added), 100 * statistics.median(added) / epoch)
        )
        own = statistics.median(slice_seconds)
        print(
            "  the slices' own work: %.1f ms an epoch (median of %d, best %.1f) = %.2f%% of an"
            " epoch  target <= 1%%: %s"
            % (
                1000 * own,
                len(slice_seconds),
                1000 * min(slice_seconds),
                100 * own / epoch,
                "met" if own / epoch <= 0.01 else "missed",
            )
        )
    if backend != "tensorflow" or "metric" not in variants:
        return
    counts_update, accuracy_update = metric_update_seconds()
    steps = -(-TRAIN_EXAMPLES // BATCH_SIZE) - (-VALIDATION_EXAMPLES // BATCH_SIZE)
    print(
        "  CountsMetric update %.3f ms/batch (SparseCategoricalAccuracy %.3f ms): %d batches an"
        " epoch -> %.1f ms = %.1f%% of an epoch"
        % (
            1000 * counts_update,
            1000 * accuracy_update,
            steps,
            1000 * counts_update * steps,
            100 * counts_update * steps / epoch,
        )
    )


if __name__ == "__main__":
    main()

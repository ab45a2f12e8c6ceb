"""Callback overhead: the share of ``model.fit`` spent in the callback's hooks, and paired fits.

The target setting: a 10-class MLP on 50,000 examples of 64 features, 10,000 validation
examples, batch 256, ``keras.callbacks.TensorBoard`` in every variant. Variants:

- ``baseline``: TensorBoard alone;
- ``callback``: + `MetricsDiagCallback` at its defaults (its own prediction pass, exact AP);
- ``metric``: + `MetricsDiagCallback` with ``callback.metric()`` in ``compile(metrics=...)``
  (counts made inside Keras's own steps, no extra pass; threshold-grid AP);
- ``image_recipe``: + the common recipe: predict, scikit-learn ``confusion_matrix``, a
  matplotlib figure rendered to PNG and logged with ``tf.summary.image`` every epoch;
- ``groups``: the callback with ``groups=`` of one key of ``--groups`` values (default
  20) drawn at random over the validation rows (slices, issue 26), example records on (the
  default): every record the default mode writes. ``--groups N`` runs only it, ``baseline``
  and ``callback``, and times the slices where they are spent: the slices' own work in each
  ``on_epoch_end`` (every ``EpochSlices.update`` and its ``record``), against the baseline's
  epoch; the difference of the two variants' ``on_epoch_end`` is printed too, but it scatters
  more than the cost on a shared machine.

Every variant trains a fresh model from the same seed. The variants run interleaved, in a
rotating order, ``--repeats`` times in this one process, after a warm-up fit. Three figures per
recording variant, each the median over the repeats:

- the hooks' own time: wall time spent inside every hook of the callback (``on_train_begin``
  with its one-off work, each ``on_epoch_end``, ...) and inside its taking of each batch of
  Keras's validation outputs (``_take_validation_batch``, called from Keras's test function,
  `keras_output_reuse`) over the fit, as a share of that fit's wall time: the target's figure
  (at most 3%);
- the same in CPU time of the process (``time.process_time``): the least sensitive to other
  loads on a shared machine, which stretch the wall time of whatever they overlap;
- the paired wall (and CPU) time of the fit against the baseline's fit of the same repeat.

Fit times on a shared machine are noisy (the same fit scatters by ±20% here), so the paired
figure scatters more than the cost it measures; the own-time shares are the ones to read. Also
printed: the callback's ``on_epoch_end`` from the second epoch on against the baseline's epoch
time, its one-off ``on_train_begin``, the load average before and after, and the in-graph cost
of one `CountsMetric` update per batch, against ``SparseCategoricalAccuracy``'s, timed in a
``tf.function`` loop.

It runs on the Keras backend of ``KERAS_BACKEND``; ``--backends tensorflow,jax,torch`` runs it
once per backend, each in a subprocess of its own (the backend is fixed per process). The
image recipe, which needs ``tf.summary.image``, and the in-graph metric timing (a
``tf.function`` loop) are TensorFlow's only. The torch backend's subprocess cannot import
TensorFlow (TensorFlow and the CUDA build of PyTorch crash in one process), so it runs without
``keras.callbacks.TensorBoard`` (in every variant), and PyTorch in ``--torch-threads`` threads
(default 1: on a shared machine idle OpenMP threads spin against the load).

Run: ``python bench/overhead.py`` (``--quick``: 2 epochs, 2 repeats). The issue's figure (the
hooks' share of a 4-epoch fit, records and a slice key on, each backend): ``--backends
tensorflow,jax,torch --epochs 4 --repeats 3 --variants groups``.
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

import _common
import numpy as np
from _common import HookClock, describe_machine, load_average, print_shares, wall_and_cpu

TRAIN_EXAMPLES = 50_000
VALIDATION_EXAMPLES = 10_000
FEATURES = 64
CLASSES = 10
HIDDEN_UNITS = 256
BATCH_SIZE = 256
EPOCHS, QUICK_EPOCHS = 10, 2
REPEATS, QUICK_REPEATS = 5, 2
TARGET_OVERHEAD = 0.03
VARIANTS = ("baseline", "callback", "groups", "metric", "image_recipe")
GROUP_VALUES = 20  # values of the groups variant's slice key, unless --groups says
TENSORFLOW_ONLY_VARIANTS = ("image_recipe",)
RECORDING_VARIANTS = ("callback", "metric", "groups")
METRIC_UPDATES = 500
# Set by --backends in the torch backend's subprocess: TensorFlow is hidden there.
HIDE_VARIABLE = "TB_METRICSDIAG_BENCH_HIDE"


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


def timed_callback(log_dir, x_val, y_val, groups):
    """``(callback, clock, epoch_ends)``: `MetricsDiagCallback` with every hook it overrides
    timed by ``clock`` (`HookClock`), and each ``on_epoch_end``'s ``[wall, CPU]`` seconds
    appended to ``epoch_ends``."""
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    callback = MetricsDiagCallback(log_dir, validation_data=(x_val, y_val), groups=groups)
    epoch_ends = []
    on_epoch_end = callback.on_epoch_end
    count_taken_epochs()

    def timed_epoch_end(epoch, logs=None):
        start = wall_and_cpu()
        on_epoch_end(epoch, logs)
        epoch_ends.append(wall_and_cpu() - start)

    callback.on_epoch_end = timed_epoch_end
    clock = HookClock()
    clock.wrap_hooks(callback, keras.callbacks.Callback, names=("_take_validation_batch",))
    return callback, clock, epoch_ends


TAKEN = {"taken": 0}  # epoch ends that found Keras's validation outputs


def count_taken_epochs():
    """Count in `TAKEN` the epoch ends that found Keras's validation outputs (once a process)."""
    try:
        from tb_metricsdiag.writing import keras_output_reuse
    except ImportError:  # code before the reuse (a comparison with an older checkout)
        return
    outputs = keras_output_reuse.OutputReuse.outputs
    if getattr(outputs, "counted", False):
        return

    def counted(self):
        result = outputs(self)
        TAKEN["taken"] += result is not None
        return result

    counted.counted = True
    keras_output_reuse.OutputReuse.outputs = counted


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


def fit_seconds(variant, data, epochs, root, run, hooks, groups):
    """``[wall, CPU]`` seconds of one ``model.fit`` of ``variant`` (model building excluded);
    for a recording variant, appends to ``hooks``: ``"fit"`` the fit's seconds, ``"own"`` the
    seconds inside the callback's hooks, ``"on_train_begin"`` and ``"on_epoch_end"`` (from the
    second epoch on) theirs. ``groups``: the ``groups`` variant's."""
    import keras

    x, y, x_val, y_val = data
    log_dir = os.path.join(root, "%s-%d" % (variant, run))
    callbacks = []
    if importlib.util.find_spec("tensorflow") is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir))
    metrics = []
    recorder = clock = None
    if variant in RECORDING_VARIANTS:
        recorder, clock, epoch_ends = timed_callback(
            log_dir, x_val, y_val, groups if variant == "groups" else None
        )
        callbacks.append(recorder)
        if variant == "metric":
            metrics.append(recorder.metric())
        train_begin = recorder.on_train_begin

        def timed_train_begin(logs=None):
            start = wall_and_cpu()
            train_begin(logs)
            hooks["on_train_begin"].append(wall_and_cpu() - start)

        recorder.on_train_begin = timed_train_begin
    elif variant == "image_recipe":
        callbacks.append(image_recipe_callback(log_dir, x_val, y_val))
    model = make_model(metrics)
    taken_before = TAKEN["taken"]
    start = wall_and_cpu()
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = wall_and_cpu() - start
    if recorder is not None:
        hooks["taken"] += TAKEN["taken"] - taken_before
        hooks["fit"].append(seconds)
        hooks["own"].append(clock.seconds())
        hooks["on_epoch_end"].extend(epoch_ends[1:])  # steady state
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
    ``KERAS_BACKEND`` set and the other arguments of ``args``; TensorFlow hidden in the torch
    backend's.
    """
    arguments = ["--quick"] if args.quick else []
    for name in ("epochs", "repeats", "groups", "variants", "torch_threads"):
        if getattr(args, name):
            arguments += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    for backend in args.backends.split(","):
        print("=== KERAS_BACKEND=%s" % backend, flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        if backend == "torch":
            env[HIDE_VARIABLE] = "tensorflow"
        subprocess.run([sys.executable, os.path.abspath(__file__)] + arguments, env=env, check=True)


def _median(pairs):
    """The median ``[wall, CPU]`` of ``[wall, CPU]`` pairs."""
    return np.median(np.asarray(pairs), axis=0)


def report_recording(variant, wall, hooks, epochs):
    """Print a recording variant's figures (module docstring)."""
    own = np.asarray(hooks["own"]) / np.asarray(hooks["fit"])  # [repeat, (wall, CPU)]
    paired = np.asarray(wall[variant]) / np.asarray(wall["baseline"]) - 1
    print("  %s:" % variant)
    print_shares("fit", own, paired, indent="    ", target=TARGET_OVERHEAD)
    base_epoch = _median(wall["baseline"]) / epochs
    end = _median(hooks["on_epoch_end"])
    print(
        "    on_epoch_end %.1f ms wall, %.1f ms CPU (%.1f%% of a baseline epoch's wall, %.1f%% of"
        " its CPU); on_train_begin %.0f ms wall, %.0f ms CPU once; all hooks %.2f s wall per fit;"
        " Keras's validation outputs taken at %d of %d epoch ends"
        % (
            1000 * end[0],
            1000 * end[1],
            100 * end[0] / base_epoch[0],
            100 * end[1] / base_epoch[1],
            1000 * _median(hooks["on_train_begin"])[0],
            1000 * _median(hooks["on_train_begin"])[1],
            _median(hooks["own"])[0],
            hooks["taken"],
            epochs * len(hooks["fit"]),
        )
    )


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
        "--groups",
        type=int,
        help="run only baseline, callback and groups, with one key of this many values, and"
        " time the slices' own work (default for the groups variant: %d values)" % GROUP_VALUES,
    )
    parser.add_argument(
        "--variants",
        help="comma-separated variants to run (baseline always runs): %s" % (VARIANTS,),
    )
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="PyTorch threads on the torch backend"
    )
    args = parser.parse_args()
    if args.backends:
        run_per_backend(args)
        return
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    if epochs < 2:
        parser.error("--epochs must be at least 2: the steady figures leave the first epoch out")
    if os.environ.get(HIDE_VARIABLE):
        _common.hide_packages(os.environ[HIDE_VARIABLE].split(","))
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.torch_threads)
    variants = tuple(
        v for v in VARIANTS if backend == "tensorflow" or v not in TENSORFLOW_ONLY_VARIANTS
    )
    if args.variants:
        chosen = {"baseline"} | set(args.variants.split(","))
        variants = tuple(v for v in variants if v in chosen)
    slices = np.random.default_rng(2).integers(0, args.groups or GROUP_VALUES, VALIDATION_EXAMPLES)
    groups = {"slice": slices}
    if args.groups:
        variants = ("baseline", "callback", "groups")
        from tb_metricsdiag.writing import slice_recorder

        slice_seconds = []
        slice_recorder.EpochSlices = timed_slices_class(slice_seconds)
    if importlib.util.find_spec("matplotlib") is None:
        print("(matplotlib is not installed: no image_recipe variant)")
        variants = tuple(v for v in variants if v != "image_recipe")
    print(describe_machine())
    print(
        "Keras %s, backend %s%s; %s"
        % (
            keras.__version__,
            backend,
            " (%d threads, no TensorBoard callback: TensorFlow hidden)" % args.torch_threads
            if backend == "torch"
            else "",
            load_average(),
        ),
        flush=True,
    )
    data = make_data()
    wall = {variant: [] for variant in variants}
    hooks = {
        variant: {"on_train_begin": [], "on_epoch_end": [], "own": [], "fit": [], "taken": 0}
        for variant in variants
    }
    with tempfile.TemporaryDirectory() as root:
        fit_seconds("baseline", data, 1, root, -1, hooks["baseline"], groups)  # start-up
        for run in range(repeats):
            order = variants[run % len(variants) :] + variants[: run % len(variants)]
            for variant in order:
                wall[variant].append(
                    fit_seconds(variant, data, epochs, root, run, hooks[variant], groups)
                )
    print(
        "%d train / %d validation examples, %d features, %d classes, batch %d, %d epochs, %d"
        " repeats, groups: one key of %d values; after: %s"
        % (
            TRAIN_EXAMPLES,
            VALIDATION_EXAMPLES,
            FEATURES,
            CLASSES,
            BATCH_SIZE,
            epochs,
            repeats,
            args.groups or GROUP_VALUES,
            load_average(),
        )
    )
    base = _median(wall["baseline"])
    for variant in variants:
        median = _median(wall[variant])
        print(
            "  %-12s median fit %6.2f s wall (min %6.2f), %6.2f s CPU: %+6.1f%% / %+6.1f%% of"
            " the baseline's"
            % (
                variant,
                median[0],
                min(w for w, _ in wall[variant]),
                median[1],
                100 * (median[0] / base[0] - 1),
                100 * (median[1] / base[1] - 1),
            )
        )
    print("the recording variants (baseline epoch %.3f s wall):" % (base[0] / epochs))
    for variant in (v for v in RECORDING_VARIANTS if v in variants):
        report_recording(variant, wall, hooks[variant], epochs)
    if args.groups:
        added = [
            g[0] - c[0]
            for g, c in zip(hooks["groups"]["on_epoch_end"], hooks["callback"]["on_epoch_end"])
        ]
        epoch = base[0] / epochs
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
    epoch = base[0] / epochs
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

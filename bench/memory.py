"""Memory: peak resident memory the callback adds while recording one epoch.

A 1,000,000-example validation set (32 float32 features, 10 classes) is given to
`MetricsDiagCallback`; the script runs ``on_train_begin`` and one ``on_epoch_end`` (the
prediction pass, the counts and the writes) and samples the process's resident set size
meanwhile. The input arrays exist before the measurement starts and are not counted. The floor
is what exact AP needs: the float32 scores of every example (``n x C x 4`` bytes) and their
labels. In the Keras-metric mode (`MetricsDiagCallback.metric`) the per-epoch state is fixed:
``C x (C + 2 x 202) + 1`` int64 counters, whatever the number of examples.

Then `MetricsDiagWriter.add_evaluation` alone, at 1M examples and 10 and 100 classes, with
its example records (the default) and without (``example_ids=False``): the peak of NumPy's and
Python's allocations inside the call, by ``tracemalloc`` (NumPy reports its arrays to it), so
memory the allocator kept from an earlier call does not hide any; the float32 scores and the
labels exist before and are not counted.

Run: ``python bench/memory.py`` (``--quick``: 100,000 examples; ``--only writer|callback``).
"""

import argparse
import tempfile
import tracemalloc

import numpy as np
from _common import PeakRss, describe_machine, mib

EXAMPLES = 1_000_000
QUICK_EXAMPLES = 100_000
FEATURES = 32
CLASSES = 10
THRESHOLDS = 201
WRITER_CLASSES = (10, 100)


def writer_peak(log_dir, y, scores, records):
    """Peak bytes allocated inside one `MetricsDiagWriter.add_evaluation` (a warm writer)."""
    from tb_metricsdiag import MetricsDiagWriter

    with MetricsDiagWriter(log_dir) as writer:
        writer.add_evaluation(y, scores, 0, example_ids=None if records else False)
        tracemalloc.start()
        writer.add_evaluation(y, scores, 1, example_ids=None if records else False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def measure_writer(n):
    print("MetricsDiagWriter.add_evaluation, %d examples (peak allocated inside the call):" % n)
    rng = np.random.default_rng(0)
    for classes in WRITER_CLASSES:
        y = rng.integers(0, classes, size=n)
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        logits[np.arange(n), y] += 2
        scores = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        del logits
        floor = scores.nbytes
        line = "  %3d classes (scores %.0f MiB):" % (classes, mib(floor))
        for records in (False, True):
            with tempfile.TemporaryDirectory() as log_dir:
                peak = writer_peak(log_dir, y, scores, records)
            line += " records %s +%.1f MiB (%.2fx the scores);" % (
                "on" if records else "off",
                mib(peak),
                peak / floor,
            )
        print(line.rstrip(";"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="%d examples" % QUICK_EXAMPLES)
    parser.add_argument("--only", choices=("writer", "callback"))
    args = parser.parse_args()
    n = QUICK_EXAMPLES if args.quick else EXAMPLES
    print(describe_machine())
    if args.only != "callback":
        measure_writer(n)
    if args.only != "writer":
        measure_callback(n)


def measure_callback(n):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    rng = np.random.default_rng(0)
    x_val = rng.normal(size=(n, FEATURES)).astype(np.float32)
    y_val = rng.integers(0, CLASSES, size=n)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.predict(x_val[:1024], verbose=0)  # TensorFlow's own start-up allocations
    with tempfile.TemporaryDirectory() as log_dir:
        callback = MetricsDiagCallback(log_dir, validation_data=(x_val, y_val))
        callback.set_model(model)
        with PeakRss() as begin:
            callback.on_train_begin()
        with PeakRss() as epoch:
            callback.on_epoch_end(0, {"loss": 1.0})
        with PeakRss() as second_epoch:
            callback.on_epoch_end(1, {"loss": 1.0})
        callback.on_train_end()
    floor = n * CLASSES * 4 + n
    print(
        "validation examples: %d x %d features (inputs %.0f MiB, not counted), %d classes"
        % (n, FEATURES, mib(x_val.nbytes), CLASSES)
    )
    print("  on_train_begin: peak +%.1f MiB" % mib(begin.peak - begin.start))
    print(
        "  on_epoch_end (prediction pass + counts + exact AP + writes): peak +%.1f MiB, epoch 2 +%.1f MiB"
        % (mib(epoch.peak - epoch.start), mib(second_epoch.peak - second_epoch.start))
    )
    print("  floor for exact AP (float32 scores + 1-byte labels): %.1f MiB" % mib(floor))
    print(
        "  Keras-metric mode state: %.1f KiB, independent of the number of examples"
        % ((CLASSES * (CLASSES + 2 * (THRESHOLDS + 1)) + 1) * 8 / 1024)
    )


if __name__ == "__main__":
    main()

"""Memory: peak resident memory the callback adds while recording one epoch.

A 1,000,000-example validation set (32 float32 features, 10 classes) is given to
`MetricsDiagCallback`; the script runs ``on_train_begin`` and one ``on_epoch_end`` (the
prediction pass, the counts and the writes) and samples the process's resident set size
meanwhile. The input arrays exist before the measurement starts and are not counted. The floor
is what exact AP needs: the float32 scores of every example (``n x C x 4`` bytes) and their
labels. In the Keras-metric mode (`MetricsDiagCallback.metric`) the per-epoch state is fixed:
``C x (C + 2 x 202) + 1`` int64 counters, whatever the number of examples.

Run: ``python bench/memory.py`` (``--quick``: 100,000 examples).
"""

import argparse
import tempfile

import numpy as np
from _common import PeakRss, describe_machine, mib

EXAMPLES = 1_000_000
QUICK_EXAMPLES = 100_000
FEATURES = 32
CLASSES = 10
THRESHOLDS = 201


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="%d examples" % QUICK_EXAMPLES)
    args = parser.parse_args()
    n = QUICK_EXAMPLES if args.quick else EXAMPLES
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    print(describe_machine())
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

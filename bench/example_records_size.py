"""What the example records cost: bytes per epoch and split, a 20-epoch run with image
previews, and their time as a share of the overhead benchmark's epoch.

1. Bytes per epoch and split without previews: one evaluation written by `MetricsDiagWriter`
   with its example records (the default) and once more with ``example_ids=False``; the
   difference in the event file's size is what the records add (the examples, the label
   issues and the crossing samples), each record's share is listed too. At 10,000 examples x 10 classes (target: at most
   64 KB) and x 1,000 classes (at most 256 KB), for a good model (accuracy about 0.9) and a
   weak one (about 0.5), with 5% of the labels wrong.
2. A 20-epoch run at 10,000 x 10 with 28 x 28 image previews (target: at most 8 MB in all):
   the model improves from accuracy 0.5 to 0.95, and its scores change every epoch, so the kept
   examples change too. Previews of incompressible noise (the worst case for PNG) and of
   smooth strokes (digit-like).
3. Time at 10,000 validation examples x 10 classes (target: at most 1% of the overhead
   benchmark's epoch, `bench/overhead.py`): the records' own work (`EpochExamples` fed the
   epoch, encoded, `ExampleRecorder.records`) timed alone, and the callback's ``on_epoch_end``
   with the records and without (``example_ids=False``) on the overhead benchmark's model and
   data (both predicting in batches of 2,048), against that benchmark's baseline epoch
   (``keras.callbacks.TensorBoard`` alone).

    python bench/example_records_size.py [--skip-fit] [--repeats 20]
"""

import argparse
import collections
import glob
import os
import statistics
import tempfile
import time

import numpy as np
from _common import describe_machine

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import counting
from tb_metricsdiag.core import crossings as crossings_lib
from tb_metricsdiag.core.labels import scores_and_predictions
from tb_metricsdiag.format import crossings, schema
from tb_metricsdiag.writing import example_recorder, inputs

N = 10_000
EPOCHS = 20
IMAGE_SIDE = 28
FIT_EPOCHS = 5
PREDICTION_BATCH = 2048


def labels_of(n, classes, seed, noise=0.05):
    """``(true classes, given labels)``: ``noise`` of the given labels replaced by another
    class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    given = np.where(rng.random(n) < noise, (truth + rng.integers(1, classes, n)) % classes, truth)
    return truth, given


def logits_of(truth, classes, accuracy, seed):
    """float32 logits of a model that favours the true class about ``accuracy`` of the time."""
    rng = np.random.default_rng(seed)
    n = truth.size
    favoured = np.where(rng.random(n) < accuracy, truth, rng.integers(0, classes, n))
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    logits[np.arange(n), favoured] += np.float32(2.0 + np.log(classes))
    return logits


def bytes_by_kind(log_dir):
    """``{kind: bytes}`` of the events in ``log_dir`` (each event's serialized size plus the
    12 bytes of its record's framing), and the files' total size."""
    from tensorboard.backend.event_processing import event_file_loader

    sizes = collections.Counter()
    paths = glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    for path in paths:
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                sizes[value.tag.rsplit("/", 1)[-1]] += event.ByteSize() + 16
    return sizes, sum(os.path.getsize(path) for path in paths)


def epoch_bytes(classes, accuracy, root):
    """``(bytes the records add to one epoch, {kind: bytes})``."""
    truth, given = labels_of(N, classes, seed=classes)
    logits = logits_of(truth, classes, accuracy, seed=classes)
    totals = {}
    for records in (True, False):
        log_dir = os.path.join(root, "%d-%s-%s" % (classes, accuracy, records))
        with MetricsDiagWriter(log_dir) as writer:
            writer.add_evaluation(given, logits, 0, example_ids=None if records else False)
        totals[records] = bytes_by_kind(log_dir)
    kinds = {kind: totals[True][0][kind] for kind in schema.EXAMPLE_KINDS if totals[True][0][kind]}
    return totals[True][1] - totals[False][1], kinds


def structured_images(n, rng):
    """Digit-like 28 x 28 uint8 images: a few smooth strokes on black."""
    grid = np.linspace(-1, 1, IMAGE_SIDE)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.zeros((n, IMAGE_SIDE, IMAGE_SIDE))
    for _ in range(3):
        cx, cy, angle = (
            rng.uniform(-0.5, 0.5, n),
            rng.uniform(-0.5, 0.5, n),
            rng.uniform(0, np.pi, n),
        )
        distance = np.abs(
            (xx[None] - cx[:, None, None]) * np.sin(angle)[:, None, None]
            - (yy[None] - cy[:, None, None]) * np.cos(angle)[:, None, None]
        )
        images = np.maximum(images, np.exp(-((distance / 0.08) ** 2)))
    return (images * 255).astype(np.uint8)


def run_bytes(images, root, name):
    """``({kind: bytes}, total)`` of a 20-epoch run of 10,000 x 10 with ``images`` previews."""
    log_dir = os.path.join(root, name)
    truth, given = labels_of(N, 10, seed=100)
    with MetricsDiagWriter(log_dir) as writer:
        for epoch in range(EPOCHS):
            accuracy = 0.5 + 0.45 * epoch / (EPOCHS - 1)
            logits = logits_of(truth, 10, accuracy, seed=100 + epoch)
            writer.add_evaluation(given, logits, epoch, previews=images)
    return bytes_by_kind(log_dir)


def records_seconds(repeats):
    """Seconds of the records' own work for one epoch of 10,000 x 10 (best, median)."""
    truth, given = labels_of(N, 10, seed=1)
    scores, predicted = scores_and_predictions(logits_of(truth, 10, 0.9, seed=1), True)
    layout = inputs.new_layout(10, "bench", from_logits=True)
    recorder = example_recorder.ExampleRecorder()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch = example_recorder.EpochExamples(layout, N)
        epoch.update(np.arange(N), given, scores, predicted)
        recorder.records("validation", epoch)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def crossings_seconds(repeats):
    """Seconds of the crossing samples' part of the records (best, median): an epoch of
    10,000 x 10 sampled (`core.crossings.CrossingSamples`) and encoded."""
    truth, given = labels_of(N, 10, seed=1)
    scores, _ = scores_and_predictions(logits_of(truth, 10, 0.9, seed=1), True)
    positives = given[:, None] == np.arange(10)
    thresholds = counting.default_thresholds()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        samples = crossings_lib.CrossingSamples(10, thresholds, max_bins=crossings.sampled_bins(10))
        samples.update(np.arange(N), scores, positives)
        crossings.encode_crossings(samples, N, False)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def _timed_epoch_ends(callback):
    """A list to which each ``callback.on_epoch_end`` call appends its wall seconds."""
    seconds, on_epoch_end = [], callback.on_epoch_end

    def timed(epoch, logs=None):
        start = time.perf_counter()
        on_epoch_end(epoch, logs)
        seconds.append(time.perf_counter() - start)

    callback.on_epoch_end = timed
    return seconds


def fit_shares(root):
    """Median seconds of a baseline epoch and of the callback's ``on_epoch_end`` with and
    without example records, on the overhead benchmark's model and data."""
    import keras
    from overhead import BATCH_SIZE, make_data, make_model

    from tb_metricsdiag import MetricsDiagCallback

    x, y, x_val, y_val = make_data()

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.began)

    result = {}
    for variant in ("baseline", "records", "no_records", "records", "no_records", "baseline"):
        log_dir = os.path.join(root, "fit-%s-%d" % (variant, len(result)))
        clock = EpochClock()
        callbacks = [keras.callbacks.TensorBoard(log_dir), clock]
        recorder = None
        if variant != "baseline":
            # One prediction batch size for both: the automatic one is timed at train begin
            # and may differ between fits, which would move on_epoch_end more than the records.
            options = {"batch_size": PREDICTION_BATCH}
            if variant == "no_records":
                options["example_ids"] = False
            recorder = MetricsDiagCallback(log_dir, validation_data=(x_val, y_val), **options)
            recorder.epoch_end_seconds = _timed_epoch_ends(recorder)
            callbacks.append(recorder)
        make_model([]).fit(
            x,
            y,
            validation_data=(x_val, y_val),
            epochs=FIT_EPOCHS,
            batch_size=BATCH_SIZE,
            callbacks=callbacks,
            verbose=0,
        )
        steady = clock.seconds[1:] if recorder is None else recorder.epoch_end_seconds[1:]
        result.setdefault(variant, []).extend(steady)
    return {variant: statistics.median(values) for variant, values in result.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-fit", action="store_true", help="no model.fit timing (part 3)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(describe_machine())
    with tempfile.TemporaryDirectory() as root:
        print("\n1. Bytes per epoch and split, no previews (10,000 examples, 5% labels wrong)")
        for classes, budget in ((10, 64 << 10), (1000, 256 << 10)):
            for accuracy in (0.9, 0.5):
                added, kinds = epoch_bytes(classes, accuracy, root)
                print(
                    "   %4d classes, accuracy %.1f: %7d bytes (%5.1f KB; target %d KB) %s"
                    % (classes, accuracy, added, added / 1024, budget >> 10, dict(kinds))
                )
        print("\n2. A 20-epoch run of 10,000 x 10 with 28 x 28 image previews (target 8 MB)")
        rng = np.random.default_rng(0)
        for name, images in (
            ("noise", rng.integers(0, 256, (N, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)),
            ("strokes", structured_images(N, rng)),
        ):
            kinds, total = run_bytes(images, root, name)
            print(
                "   %-7s: %9d bytes (%.2f MB) in all; previews %d bytes, examples %d, label"
                " issues %d, crossing samples %d, everything else %d"
                % (
                    name,
                    total,
                    total / 1e6,
                    kinds[schema.KIND_PREVIEWS],
                    kinds[schema.KIND_EXAMPLES],
                    kinds[schema.KIND_LABEL_ISSUES],
                    kinds[schema.KIND_CROSSINGS],
                    total - sum(kinds[kind] for kind in schema.EXAMPLE_KINDS),
                )
            )
        print("\n3. Time at 10,000 validation examples x 10 classes")
        best, median = records_seconds(args.repeats)
        print("   the records' own work: best %.2f ms, median %.2f ms" % (best * 1e3, median * 1e3))
        best, median = crossings_seconds(args.repeats)
        print(
            "   of which the crossing samples (sampled and encoded): best %.2f ms, median %.2f ms"
            % (best * 1e3, median * 1e3)
        )
        if not args.skip_fit:
            medians = fit_shares(root)
            epoch = medians["baseline"]
            added = medians["records"] - medians["no_records"]
            print(
                "   baseline epoch %.0f ms; on_epoch_end %.1f ms with the records, %.1f ms"
                " without: +%.2f ms = %.2f%% of the epoch (the records' own work alone: %.2f%%)"
                % (
                    epoch * 1e3,
                    medians["records"] * 1e3,
                    medians["no_records"] * 1e3,
                    added * 1e3,
                    100 * added / epoch,
                    100 * median / epoch,
                )
            )


if __name__ == "__main__":
    main()

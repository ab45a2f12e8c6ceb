"""Size on disk: bytes of event file per epoch and split for 2, 10 and 100 classes.

Each epoch of one split is what `MetricsDiagCallback` writes for it: the confusion matrix, the
threshold counts (201 thresholds) and the average precision (inside the counts since format
version 3), through the real writers (`tb_metricsdiag.summary.write_evaluation`). The Keras
``logs`` are measured apart (`summary.write_logs`, one summary per epoch for the whole run, not
per split). Sizes are the growth of the event file per epoch, so the file header and the step-0
run description do not count. The threshold counts are stored encoded
(`threshold_counts.encode_threshold_counts`: bucket counts, zlib); their size is printed beside that of
the plain integers (uint16 at 2,000 examples), which format version 1 stored.

Run: ``python bench/disk_size.py`` (``--quick``: fewer epochs; the size per epoch is the same).
"""

import argparse
import glob
import os
import tempfile

import numpy as np
from _common import describe_machine

from tb_metricsdiag import summary
from tb_metricsdiag.core import counting as counts
from tb_metricsdiag.core import labels
from tb_metricsdiag.format import integer_counts, threshold_counts

CLASS_COUNTS = (2, 10, 100)
EXAMPLES = 2000
THRESHOLDS = 201
EPOCHS = 50
QUICK_EPOCHS = 10
TARGET_BYTES_AT_10_CLASSES = 20 * 1000
LOGS = {"loss": 0.5, "val_loss": 0.6, "accuracy": 0.8, "val_accuracy": 0.75}


def event_bytes(log_dir):
    return sum(
        os.path.getsize(p) for p in glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    )


def bytes_per_epoch(log_dir, epochs, write_epoch):
    """Growth of the event file in ``log_dir`` per call of ``write_epoch(step)``."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        write_epoch(0)  # the first write of each tag also carries the writer's header
        writer.flush()
        first = event_bytes(log_dir)
        for step in range(1, epochs + 1):
            write_epoch(step)
        writer.flush()
    writer.close()
    return (event_bytes(log_dir) - first) / epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="%d epochs instead of %d" % (QUICK_EPOCHS, EPOCHS)
    )
    args = parser.parse_args()
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    rng = np.random.default_rng(0)
    print(describe_machine())
    print(
        "event-file bytes per epoch and split (confusion + 201-threshold counts + AP), %d epochs"
        % epochs
    )
    with tempfile.TemporaryDirectory() as root:
        for num_classes in CLASS_COUNTS:
            y = rng.integers(0, num_classes, size=EXAMPLES)
            logits = rng.normal(size=(EXAMPLES, num_classes)).astype(np.float32)
            size = bytes_per_epoch(
                os.path.join(root, "c%d" % num_classes),
                epochs,
                lambda step: summary.write_evaluation(y, logits, step=step, from_logits=True),
            )
            # The threshold counts as integers (the smallest type that holds them) and encoded.
            scores, _ = labels.scores_and_predictions(logits, True)
            tp, fp = counts.threshold_counts(y, scores, counts.default_thresholds(THRESHOLDS))
            stacked = np.stack([tp, fp], axis=1)
            integers = integer_counts.compact_ints(stacked).nbytes
            encoded = len(threshold_counts.encode_threshold_counts(stacked))
            note = ""
            if num_classes == 10:
                note = "  (target <= %d: %s)" % (
                    TARGET_BYTES_AT_10_CLASSES,
                    "met" if size <= TARGET_BYTES_AT_10_CLASSES else "MISSED",
                )
            print(
                "  %3d classes: %8.0f bytes/epoch/split (threshold counts: %d bytes encoded,"
                " %d as integers)%s" % (num_classes, size, encoded, integers, note)
            )
        size = bytes_per_epoch(
            os.path.join(root, "logs"), epochs, lambda step: summary.write_logs(LOGS, step=step)
        )
        print("  Keras logs, %d values: %.0f bytes/epoch" % (len(LOGS), size))


if __name__ == "__main__":
    main()

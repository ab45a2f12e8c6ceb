"""Exact figures against scikit-learn: one `MetricsDiagWriter.add_evaluation` against the same
figures from scikit-learn.

Ours is one call of `MetricsDiagWriter.add_evaluation` on a warm writer: it checks the inputs
(and that they are still probabilities), predicts the arg-max, counts the confusion matrix, the
calibration bins and, from one sort (or one histogram) per class, the threshold counts at 201
thresholds, the exact AP and the exact ROC AUC of every class, and writes them to its event
file; timed with its example records (on by default) and without (``example_ids=False``).
scikit-learn computes the arg-max, ``confusion_matrix`` and, per class, ``precision_recall_curve``,
``average_precision_score`` and ``roc_auc_score`` (binary: the positive class only, as a
binary scikit-learn user would). Data sets: 2M binary scores (``[n, 2] = [1 - p, p]``, one
sigmoid unit, ``p`` uniform float32: multiples of 2^-24, so every ``1 - p`` is exact), the
same as float16 values, the sigmoid of normal logits (full-precision ``p``: below 0.5
distinct ``p`` round to one ``1 - p``), and 500k rows of 10-class softmax scores.

Timed in this process, interleaved (scikit-learn, ours without records, ours with), best and
median of ``--repeats``, wall time and this process's CPU time (threads included: steadier on
a loaded machine). Before timing, the stored AP and ROC AUC are checked against scikit-learn
to 1e-12 and the threshold counts against the streamed counts (`ClassificationCounts` with
``keep_scores=False``).

Run: ``python bench/throughput.py`` (``--quick``: a tenth of the data; ``--repeats N``;
``--only binary,ten``: some data sets).
"""

import argparse
import statistics
import tempfile
import time

import numpy as np
from _common import describe_machine
from sklearn import metrics as skm

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import counting as counts

BINARY_EXAMPLES = 2_000_000
MULTICLASS_EXAMPLES = 500_000
MULTICLASS_CLASSES = 10
QUICK_FACTOR = 10
TOLERANCE = 1e-12


def binary_data(n, rng):
    p = rng.random(n, dtype=np.float32)
    y = (rng.random(n) < p).astype(np.int64)  # calibrated: a realistic, non-trivial AP
    return y, np.stack([1 - p, p], axis=1)


def half_data(n, rng):
    y, scores = binary_data(n, rng)
    return y, scores.astype(np.float16)


def sigmoid_data(n, rng):
    p = (1 / (1 + np.exp(-rng.normal(0, 3, n)))).astype(np.float32)
    y = (rng.random(n) < p).astype(np.int64)
    return y, np.stack([1 - p, p], axis=1)


def multiclass_data(n, num_classes, rng):
    y = rng.integers(0, num_classes, size=n)
    logits = rng.normal(size=(n, num_classes)).astype(np.float32)
    logits[np.arange(n), y] += 1.5
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def sklearn_figures(y, scores, classes):
    predicted = scores.argmax(axis=1)
    skm.confusion_matrix(y, predicted)
    return [
        (
            skm.precision_recall_curve(y == k, scores[:, k]),
            skm.average_precision_score(y == k, scores[:, k]),
            skm.roc_auc_score(y == k, scores[:, k]),
        )
        for k in classes
    ]


def check(result, y, scores, classes):
    """The writer's exact AP and ROC AUC against scikit-learn, its threshold counts against
    the streamed counts; returns the largest difference from scikit-learn."""
    streamed = counts.ClassificationCounts(scores.shape[1], result.thresholds, keep_scores=False)
    streamed.update(y, scores.astype(np.float32), scores.argmax(axis=1))
    np.testing.assert_array_equal(result.tp, streamed.tp)
    np.testing.assert_array_equal(result.fp, streamed.fp)
    np.testing.assert_array_equal(result.confusion, streamed.confusion)
    ap, auc = result.average_precision(), result.roc_auc()
    error = 0.0
    for k, (_, expected_ap, expected_auc) in zip(classes, sklearn_figures(y, scores, classes)):
        error = max(error, abs(ap[k] - expected_ap), abs(auc[k] - expected_auc))
    assert error <= TOLERANCE, "AP or ROC AUC differs from scikit-learn by %g" % error
    return error


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(name, y, scores, classes, repeats, log_dir):
    with MetricsDiagWriter(log_dir) as writer:
        error = check(writer.add_evaluation(y, scores, 0), y, scores, classes)
        print(
            "%s: %d examples x %d classes, %s (max |AP, ROC AUC - sklearn| = %.1e)"
            % (name, scores.shape[0], scores.shape[1], scores.dtype, error)
        )
        variants = {
            "scikit-learn": lambda: sklearn_figures(y, scores, classes),
            "ours, example records off": lambda: writer.add_evaluation(
                y, scores, 1, example_ids=False
            ),
            "ours, example records on": lambda: writer.add_evaluation(y, scores, 1),
        }
        times = {label: [] for label in variants}
        for _ in range(repeats):
            for label, fn in variants.items():
                times[label].append(timed(fn))
    reference = times["scikit-learn"]
    for label, measured in times.items():
        line = "  %-27s" % label
        for kind, index in (("wall", 0), ("cpu", 1)):
            values = [m[index] for m in measured]
            best, median = min(values), statistics.median(values)
            line += " %s best %7.1f ms, median %7.1f ms" % (kind, best * 1e3, median * 1e3)
            if label != "scikit-learn":
                sk = [m[index] for m in reference]
                line += " (%.1fx / %.1fx)" % (min(sk) / best, statistics.median(sk) / median)
            line += ";"
        print(line.rstrip(";"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the examples")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", default="binary,half,sigmoid,ten", help="data sets, of " + ",".join(DATA_SETS)
    )
    args = parser.parse_args()
    scale = QUICK_FACTOR if args.quick else 1
    print(describe_machine())
    with tempfile.TemporaryDirectory() as log_dir:
        for name in args.only.split(","):
            rng = np.random.default_rng(0)  # the same data whichever data sets run
            title, make, classes = DATA_SETS[name]
            y, scores = make(scale, rng)
            run(title, y, scores, classes, args.repeats, log_dir + "/" + name)


# name: (title, (scale, rng) -> (y, scores), classes checked against scikit-learn)
DATA_SETS = {
    "binary": ("binary", lambda scale, rng: binary_data(BINARY_EXAMPLES // scale, rng), [1]),
    "half": (
        "binary, float16 scores",
        lambda scale, rng: half_data(BINARY_EXAMPLES // scale, rng),
        [1],
    ),
    "sigmoid": (
        "binary, sigmoid of normal logits",
        lambda scale, rng: sigmoid_data(BINARY_EXAMPLES // scale, rng),
        [1],
    ),
    "ten": (
        "10-class",
        lambda scale, rng: multiclass_data(MULTICLASS_EXAMPLES // scale, MULTICLASS_CLASSES, rng),
        range(MULTICLASS_CLASSES),
    ),
}


if __name__ == "__main__":
    main()

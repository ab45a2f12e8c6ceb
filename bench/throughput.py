"""Counting throughput: confusion + threshold counts + AP against scikit-learn.

Two data sets, those of the throughput target: 10 million binary scores (a single sigmoid
unit, so scores ``[n, 2] = [1 - p, p]``) and 1 million 10-class softmax rows. Ours computes the confusion
matrix, the one-vs-rest counts at 201 thresholds and the exact AP of every class, as the
callback does (`tb_metricsdiag.core.counting.ClassificationCounts`: the scores kept, then one sort per
class for both the threshold counts and the AP); scikit-learn computes ``confusion_matrix`` and
``precision_recall_curve`` (for the positive class in the binary case, every class otherwise).
Both are timed warm, in this process, best and median of ``--repeats``, on the same
predicted ids (the argmax is the model-output side, not counting, and left out of both); ours
is timed with the AP of the classes computed one after the other (1 thread) and, where
`_ranking.AVERAGE_PRECISION_THREADS` is more, that many at a time, and without the AP (the
linear-time streaming counts alone, which must equal the others). The AP values are checked against
``sklearn.metrics.average_precision_score`` to 1e-12.

Run: ``python bench/throughput.py`` (``--quick``: a tenth of the data).
"""

import argparse

import numpy as np
from _common import best_and_median, copy_bandwidth, describe_machine
from sklearn import metrics as skm

from tb_metricsdiag.core import _ranking
from tb_metricsdiag.core import counting as counts

BINARY_EXAMPLES = 10_000_000
MULTICLASS_EXAMPLES = 1_000_000
MULTICLASS_CLASSES = 10
QUICK_FACTOR = 10
AP_TOLERANCE = 1e-12


def binary_data(n, rng):
    p = rng.random(n, dtype=np.float32)
    y = (rng.random(n) < p).astype(np.int64)  # calibrated: a realistic, non-trivial AP
    return y, np.stack([1 - p, p], axis=1)


def multiclass_data(n, num_classes, rng):
    y = rng.integers(0, num_classes, size=n)
    logits = rng.normal(size=(n, num_classes)).astype(np.float32)
    logits[np.arange(n), y] += 1.5
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def counts_only(y, scores, predicted):
    """The streaming path (the Keras metric's, and the callback's without kept scores):
    confusion and threshold counts batch by batch, nothing kept."""
    result = counts.ClassificationCounts(
        scores.shape[1], counts.default_thresholds(), keep_scores=False
    )
    result.update(y, scores, predicted)
    return result.confusion, result.tp, result.fp


def counts_and_ap(y, scores, predicted):
    """The default path (the callback's and `summary.write_evaluation`'s): scores kept, then
    the threshold counts and the exact AP from one sort per class."""
    result = counts.ClassificationCounts(scores.shape[1], counts.default_thresholds())
    result.update(y, scores, predicted)
    return result.confusion, result.tp, result.fp, result.average_precision()


def sklearn_reference(y, scores, predicted, classes):
    skm.confusion_matrix(y, predicted)
    for k in classes:
        skm.precision_recall_curve(y == k, scores[:, k])


def run(name, y, scores, sklearn_classes, repeats, bandwidth):
    predicted = scores.argmax(axis=1)
    *exact_counts, ap = counts_and_ap(y, scores, predicted)
    for exact, streamed in zip(exact_counts, counts_only(y, scores, predicted)):
        np.testing.assert_array_equal(exact, streamed)
    expected = [skm.average_precision_score(y == k, scores[:, k]) for k in range(scores.shape[1])]
    error = float(np.max(np.abs(ap - expected)))
    assert error <= AP_TOLERANCE, "AP differs from scikit-learn by %g" % error
    print(
        "%s: %d examples x %d classes (max |AP - sklearn| = %.1e)"
        % (name, scores.shape[0], scores.shape[1], error)
    )
    sk_best, sk_median = best_and_median(
        lambda: sklearn_reference(y, scores, predicted, sklearn_classes), repeats
    )
    print(
        "  scikit-learn confusion_matrix + precision_recall_curve (%d class(es)): best %.3f s, median %.3f s"
        % (len(sklearn_classes), sk_best, sk_median)
    )
    threads = _ranking.AVERAGE_PRECISION_THREADS
    runs = [
        ("counts + exact AP, %d thread%s" % (t, "s"[: t > 1]), counts_and_ap, t)
        for t in sorted({threads, 1}, reverse=True)
    ]
    for label, fn, t in runs + [("counts only", counts_only, 1)]:
        _ranking.AVERAGE_PRECISION_THREADS = t
        best, median = best_and_median(lambda: fn(y, scores, predicted), repeats)
        rate = scores.size / best
        print(
            "  tb_metricsdiag %-28s (all %d classes): best %.3f s, median %.3f s -> %.1fx / %.1fx"
            " sklearn; %.0f M scores/s = %.2f GB/s, %.1f%% of copy bandwidth"
            % (
                label,
                scores.shape[1],
                best,
                median,
                sk_best / best,
                sk_median / median,
                rate / 1e6,
                rate * 4 / 1e9,
                100 * rate * 4 / bandwidth,
            )
        )
    _ranking.AVERAGE_PRECISION_THREADS = threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the examples")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scale = QUICK_FACTOR if args.quick else 1
    rng = np.random.default_rng(0)
    print(describe_machine())
    bandwidth = copy_bandwidth()
    print("memory bandwidth (NumPy copy, read + write): %.1f GB/s" % (bandwidth / 1e9))
    y, scores = binary_data(BINARY_EXAMPLES // scale, rng)
    run("binary", y, scores, [1], args.repeats, bandwidth)
    y, scores = multiclass_data(MULTICLASS_EXAMPLES // scale, MULTICLASS_CLASSES, rng)
    run("10-class", y, scores, range(MULTICLASS_CLASSES), args.repeats, bandwidth)


if __name__ == "__main__":
    main()

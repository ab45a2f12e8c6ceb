"""What calibration and the exact ROC AUC add to counting one epoch.

Times, on the callback's real path (`ClassificationCounts` with kept scores: confusion, the
threshold counts, exact AP and exact ROC AUC from one sort per class), the calibration
binning of an epoch's scores on its own, for a validation set of each size given; the
target is at most 0.5 ms per epoch at 10 classes and 10,000 examples.

    python bench/calibration_cost.py [--examples 10000 1000000] [--classes 10] [--repeats 20]
"""

import argparse

import numpy as np
from _common import best_and_median, describe_machine

from tb_metricsdiag.core import calibration, counting


def _scores(n, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes)).astype(np.float32) + 2 * np.eye(num_classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs.astype(np.float32), probs.argmax(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(describe_machine())
    for n in args.examples:
        y, scores, predicted = _scores(n, args.classes)
        repeats = max(3, args.repeats if n <= 100_000 else args.repeats // 5)

        def binning():
            calibration.calibration_bins(*calibration.confidence_and_correct(y, scores, predicted))

        def whole_epoch():
            counts = counting.ClassificationCounts(args.classes, counting.default_thresholds())
            counts.update(y, scores, predicted)
            counts.tp, counts.average_precision(), counts.roc_auc()

        bin_best, bin_median = best_and_median(binning, repeats)
        all_best, all_median = best_and_median(whole_epoch, repeats)
        print(
            "%9d x %d: calibration binning best %.3f ms, median %.3f ms; whole epoch's counts "
            "(confusion, threshold counts, exact AP and ROC AUC, binning) best %.1f ms, "
            "median %.1f ms (binning %.1f %% of it)"
            % (
                n,
                args.classes,
                1e3 * bin_best,
                1e3 * bin_median,
                1e3 * all_best,
                1e3 * all_median,
                100 * bin_median / all_median,
            )
        )


if __name__ == "__main__":
    main()

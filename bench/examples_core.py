"""What the examples core costs per epoch: `CellExamples` and confident learning.

For each size (examples x classes) of a validation set, with a model that favours the true
class 80% of the time and 5% of the given labels wrong, times on one core:

- `CellExamples.update` with the whole epoch in one batch (what the writers do at an epoch's
  end), and in batches of 10,000 (a streaming writer); the kept examples it ends with, and
  those left after the per-epoch budget (`DEFAULT_EPOCH_BUDGET`);
- `LabelIssues` (confident learning and the top-label bins in one pass, then flagging the
  candidates) and `label_issue_test` (the fit behind the rule), where the ``[n, C]``
  probabilities fit in `--max-probabilities` values;

and the peak resident memory of one `CellExamples.update` with the largest epoch.

    python bench/examples_core.py [--sizes 10000x10 10000x1000 1000000x10 1000000x1000]
                                  [--repeats 5] [--max-probabilities 20000000]
"""

import argparse

import numpy as np
from _common import PeakRss, best_and_median, describe_machine, mib

from tb_metricsdiag.core.counting import confusion_matrix
from tb_metricsdiag.core.examples import DEFAULT_EPOCH_BUDGET, CellExamples
from tb_metricsdiag.core.label_issues import LabelIssues, label_issue_test

STREAM_BATCH = 10_000


def _rows(n, num_classes, seed=0):
    """``(truth, labels, favoured)``: the true classes, the given labels (5% replaced at
    random) and the class the model favours (the true one 80% of the time)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, num_classes, n)
    favoured = np.where(rng.random(n) < 0.8, truth, rng.integers(0, num_classes, n))
    labels = np.where(rng.random(n) < 0.05, rng.integers(0, num_classes, n), truth)
    return labels, favoured, rng


def _probabilities(favoured, num_classes, rng):
    """float32 softmax probabilities ``[n, C]`` whose argmax is mostly ``favoured``."""
    n = favoured.size
    logits = rng.normal(size=(n, num_classes)).astype(np.float32)
    logits[np.arange(n), favoured] += np.float32(3.0 + np.log(num_classes))
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def _cell_inputs(labels, favoured, rng):
    """What `CellExamples` takes, without an ``[n, C]`` matrix: the prediction, the
    probability of the predicted class and of the given one."""
    score = rng.uniform(0.3, 1.0, labels.size).astype(np.float32)
    true_score = np.where(
        labels == favoured, score, (rng.random(labels.size) * (1 - score)).astype(np.float32)
    )
    return favoured, score, true_score


def _accumulate(num_classes, labels, predicted, score, true_score, batch):
    acc = CellExamples(num_classes)
    for begin in range(0, labels.size, batch):
        part = slice(begin, begin + batch)
        acc.update(
            np.arange(begin, begin + labels[part].size),
            labels[part],
            predicted[part],
            score[part],
            true_score[part],
        )
    return acc


def _flag(num_classes, labels, probs):
    issues = LabelIssues(num_classes)
    issues.update(np.arange(labels.size), labels, probs)
    return issues.result(), issues.top_label_bins()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["10000x10", "10000x1000", "1000000x10", "1000000x1000"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-probabilities", type=int, default=20_000_000)
    args = parser.parse_args()
    print(describe_machine())
    for size in args.sizes:
        n, num_classes = (int(part) for part in size.split("x"))
        labels, favoured, rng = _rows(n, num_classes)
        predicted, score, true_score = _cell_inputs(labels, favoured, rng)
        repeats = args.repeats if n <= 100_000 else max(1, args.repeats // 2)
        whole_best, whole_median = best_and_median(
            lambda: _accumulate(num_classes, labels, predicted, score, true_score, n), repeats
        )
        stream_best, stream_median = best_and_median(
            lambda: _accumulate(num_classes, labels, predicted, score, true_score, STREAM_BATCH),
            repeats,
        )
        acc = _accumulate(num_classes, labels, predicted, score, true_score, n)
        kept = acc.examples()
        budgeted = acc.examples(budget=DEFAULT_EPOCH_BUDGET)
        print(
            "%9d x %4d: CellExamples one batch best %.1f ms (median %.1f), in batches of %d "
            "best %.1f ms (median %.1f); kept %d examples of %d cells, %d after the budget of "
            "%d (per-cell limit %s)"
            % (
                n,
                num_classes,
                1e3 * whole_best,
                1e3 * whole_median,
                STREAM_BATCH,
                1e3 * stream_best,
                1e3 * stream_median,
                kept["position"].size,
                np.unique(kept["true"] * num_classes + kept["pred"]).size,
                budgeted["position"].size,
                DEFAULT_EPOCH_BUDGET,
                budgeted["limit"],
            )
        )
        if n * num_classes > args.max_probabilities:
            print("%17s confident learning skipped: %d probabilities" % ("", n * num_classes))
            continue
        probs = _probabilities(favoured, num_classes, rng)
        flag_best, flag_median = best_and_median(lambda: _flag(num_classes, labels, probs), repeats)
        issues, bins = _flag(num_classes, labels, probs)
        matrix = confusion_matrix(labels, probs.argmax(axis=1), num_classes)
        test_best, test_median = best_and_median(
            lambda: label_issue_test(issues["count"], bins, matrix), repeats
        )
        print(
            "%17s LabelIssues best %.1f ms (median %.1f), %d flagged; label_issue_test best "
            "%.1f ms (median %.1f)"
            % (
                "",
                1e3 * flag_best,
                1e3 * flag_median,
                issues["count"],
                1e3 * test_best,
                1e3 * test_median,
            )
        )
    with PeakRss() as rss:
        _accumulate(num_classes, labels, predicted, score, true_score, n)
    print(
        "peak memory of one CellExamples update at %s: %.1f MiB above the %.1f MiB before"
        % (size, mib(rss.peak - rss.start), mib(rss.start))
    )


if __name__ == "__main__":
    main()

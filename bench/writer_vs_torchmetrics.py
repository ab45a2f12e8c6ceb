"""The writer's counting against TorchMetrics, in one process on the same scores.

What a PyTorch user would reach for to get what `MetricsDiagWriter.add_evaluation` records:
TorchMetrics' ``MulticlassConfusionMatrix`` + ``MulticlassPrecisionRecallCurve(thresholds=201)``
(the binned curve) + ``MulticlassAveragePrecision`` (exact, ``thresholds=None``). Ours is the
writer's counting path (`inputs.check_evaluation` and `Evaluation.counts`: argmax, confusion matrix, one-vs-rest counts
at 201 thresholds, exact AP of every class). Both start from the same float32 probabilities
``[n, 10]`` and integer labels, already in memory (NumPy for ours, a CPU torch tensor for
TorchMetrics), and are timed warm, best and median of ``--repeats``. The results are checked
against each other: the confusion matrices equal, the recall at every threshold equal, the APs
within 1e-5 (TorchMetrics computes in float32).

Run: ``python bench/writer_vs_torchmetrics.py`` (``--n 100000`` for a quick run: TorchMetrics'
binned curve is the slow part at 1M rows).
"""

import argparse

import numpy as np
from _common import best_and_median, describe_machine

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.writing import inputs

CLASSES = 10
NUM_THRESHOLDS = 201


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, CLASSES, n)
    logits = rng.normal(size=(n, CLASSES)).astype(np.float32) + 1.5 * np.eye(CLASSES)[ids]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return ids, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _ours(ids, scores):
    evaluation = inputs.check_evaluation(ids, scores, "bench", from_logits=False)
    result = evaluation.counts(counts_lib.default_thresholds(NUM_THRESHOLDS))
    return result.confusion, result.tp, result.fp, result.average_precision()


def _torchmetrics_parts():
    """``{label: (class name, constructor)}`` of the three TorchMetrics metrics."""
    from torchmetrics import classification

    return {
        "confusion matrix": (
            "MulticlassConfusionMatrix",
            lambda: classification.MulticlassConfusionMatrix(num_classes=CLASSES),
        ),
        "binned PR curve, %d thresholds" % NUM_THRESHOLDS: (
            "MulticlassPrecisionRecallCurve",
            lambda: classification.MulticlassPrecisionRecallCurve(
                num_classes=CLASSES, thresholds=NUM_THRESHOLDS
            ),
        ),
        "exact AP": (
            "MulticlassAveragePrecision",
            lambda: classification.MulticlassAveragePrecision(
                num_classes=CLASSES, average=None, thresholds=None
            ),
        ),
    }


def _timed(label, fn, repeats):
    best, median = best_and_median(fn, repeats)
    return label, best, median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples (rows of scores)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--torchmetrics-repeats", type=int, default=1, help="repeats of the slow TorchMetrics run"
    )
    args = parser.parse_args()

    import torch
    import torchmetrics

    ids, scores = _data(args.n)
    preds, target = torch.from_numpy(scores), torch.from_numpy(ids)
    print(describe_machine())
    print(
        "n = %d, %d classes, %d thresholds; torch %s, torchmetrics %s, %d torch threads"
        % (
            args.n,
            CLASSES,
            NUM_THRESHOLDS,
            torch.__version__,
            torchmetrics.__version__,
            torch.get_num_threads(),
        )
    )

    rows = [_timed("tb-metricsdiag writer (all three)", lambda: _ours(ids, scores), args.repeats)]
    computed, total = {}, [0.0, 0.0]
    for label, (name, make) in _torchmetrics_parts().items():

        def run(name=name, make=make):
            metric = make()
            metric.update(preds, target)
            computed[name] = metric.compute()

        row = _timed("torchmetrics %s (%s)" % (name, label), run, args.torchmetrics_repeats)
        rows.append(row)
        total = [total[0] + row[1], total[1] + row[2]]
    rows.append(("torchmetrics, all three", total[0], total[1]))

    confusion, tp, _, ap = _ours(ids, scores)
    np.testing.assert_array_equal(confusion, computed["MulticlassConfusionMatrix"].numpy())
    tm_recall = computed["MulticlassPrecisionRecallCurve"][1].numpy()[
        :, :NUM_THRESHOLDS
    ]  # + end point
    np.testing.assert_allclose(tp / confusion.sum(axis=1)[:, None], tm_recall, rtol=1e-6)
    np.testing.assert_allclose(ap, computed["MulticlassAveragePrecision"].numpy(), atol=1e-5)
    print("results agree: confusion equal, recall at every threshold equal, AP within 1e-5")

    width = max(len(label) for label, _, _ in rows)
    print("\n%-*s  %10s  %10s" % (width, "what (update + compute)", "best s", "median s"))
    for label, best, median in rows:
        print("%-*s  %10.3f  %10.3f" % (width, label, best, median))
    print("\nspeed-up (best, all three): %.0fx" % (total[0] / rows[0][1]))


if __name__ == "__main__":
    main()

"""What a threshold grid resolves: best F1 and the recall >= 0.9 operating point from the stored
counts, against the exact optimum over every distinct score (scikit-learn's PR curve).

Models (seeded, 3 seeds each): "clustered", a logistic model of a 2%-positive problem whose
scores cluster below 0.1 (one feature shifted by 2 for a positive, score ``sigmoid(-7 + 1.2 x)``,
100,000 examples), and "balanced", logistic regression trained on 8 Gaussian features (three
shifted by 1 for a positive), scored on 50,000 fresh examples. The grid's points are chosen as
the PR view chooses them (`operating_points.best_f1_index`, `min_recall_index`); the exact
optimum is the best F1 and the best precision at recall >= 0.9 over every distinct score. The
figures are the largest shortfall over the seeds. ``--sweep`` adds 201-value logit grids of
other ranges (the measurement behind `counting.DEFAULT_LOGIT_RANGE`).

Run: ``python bench/threshold_grid.py`` (about 10 s; ``--sweep`` about 30 s).
"""

import argparse

import numpy as np
from _common import describe_machine
from sklearn import linear_model
from sklearn import metrics as skm

from tb_metricsdiag.core import counting, metrics, operating_points

MIN_RECALL = 0.9
SEEDS = 3
SWEEP_RANGES = (6, 7, 8, 10, 12)


def clustered(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(100_000) < 0.02).astype(np.int64)
    x = rng.normal(2.0 * y, 1.0)
    return y, (1 / (1 + np.exp(7 - 1.2 * x))).astype(np.float32)


def balanced(seed):
    rng = np.random.default_rng(seed)

    def draw(n):
        y = (rng.random(n) < 0.5).astype(np.int64)
        x = rng.normal(size=(n, 8))
        x[:, :3] += y[:, None]
        return x, y

    x, y = draw(50_000)
    model = linear_model.LogisticRegression(max_iter=1000).fit(x, y)
    x, y = draw(50_000)
    return y, model.predict_proba(x)[:, 1].astype(np.float32)


def exact_optimum(y, score):
    precision, recall, _ = skm.precision_recall_curve(y, score)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return np.nanmax(f1), precision[recall >= MIN_RECALL].max()


def grid_points(y, score, grid):
    counts = counting.ClassificationCounts(2, grid, keep_scores=False)
    counts.update(y, np.stack([1 - score, score], axis=1), (score >= 0.5).astype(np.int64))
    tp, fp, positives = counts.tp[1], counts.fp[1], int(y.sum())
    f1 = metrics.f1_score(tp, fp, positives - tp)
    precision, recall = metrics.pr_curve(tp, fp, positives)
    at_recall = operating_points.min_recall_index(recall, MIN_RECALL)
    return f1[operating_points.best_f1_index(f1)], precision[at_recall], grid[at_recall]


def logit_grid(logit_range):
    inside = 1 / (1 + np.exp(-np.linspace(-logit_range, logit_range, 199)))
    return np.concatenate([[0.0], inside, [1.0]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also logit grids of other ranges")
    args = parser.parse_args()
    print(describe_machine())
    grids = {
        "evenly spaced (201)": np.linspace(0, 1, 201),
        "default, logit (201)": counting.default_thresholds(),
    }
    if args.sweep:
        grids.update(("logit [-%d, %d]" % (r, r), logit_grid(r)) for r in SWEEP_RANGES)
    models = {"clustered": clustered, "balanced": balanced}
    cases = {
        (name, seed): (y, score, exact_optimum(y, score))
        for name, model in models.items()
        for seed in range(SEEDS)
        for y, score in [model(seed)]
    }
    print("largest shortfall against the exact optimum over %d seeds:" % SEEDS)
    for grid_name, grid in grids.items():
        for name in models:
            f1_gap = precision_gap = 0.0
            thresholds = []
            for seed in range(SEEDS):
                y, score, (best_f1, best_precision) = cases[(name, seed)]
                f1, precision, threshold = grid_points(y, score, grid)
                f1_gap = max(f1_gap, best_f1 - f1)
                precision_gap = max(precision_gap, best_precision - precision)
                thresholds.append(threshold)
            print(
                "  %-22s %-9s best F1 %.4f, precision at recall >= %.1f %.4f"
                " (recall threshold %s)"
                % (
                    grid_name,
                    name,
                    f1_gap,
                    MIN_RECALL,
                    precision_gap,
                    ", ".join(operating_points.format_threshold(t) for t in thresholds),
                )
            )


if __name__ == "__main__":
    main()

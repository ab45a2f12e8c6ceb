"""Seeded models the threshold-grid tests and `bench/threshold_grid.py` share, and how both
score a grid: its best F1 and recall >= `MIN_RECALL` point against the exact optimum.
"""

import numpy as np
from sklearn import linear_model
from sklearn import metrics as skm

from tb_metricsdiag.core import counting, metrics, operating_points

MIN_RECALL = 0.9


def clustered_model(seed):
    """A seeded logistic model of a 2%-positive fraud problem: one feature shifted by 2 for a
    positive, score ``sigmoid(-7 + 1.2 x)`` (float32): 99% of the scores lie below 0.03."""
    rng = np.random.default_rng(seed)
    y = (rng.random(100_000) < 0.02).astype(np.int64)
    x = rng.normal(2.0 * y, 1.0)
    return y, (1 / (1 + np.exp(7 - 1.2 * x))).astype(np.float32)


def balanced_model(seed):
    """A healthy balanced model: logistic regression trained on 8 Gaussian features, three of
    them shifted by 1 for a positive, scored on fresh examples."""
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
    """Best F1 and the best precision at recall >= `MIN_RECALL` over every distinct score."""
    precision, recall, _ = skm.precision_recall_curve(y, score)
    precision, recall = precision[:-1], recall[:-1]  # the last point is no threshold
    with np.errstate(invalid="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return np.nanmax(f1), precision[recall >= MIN_RECALL].max()


def grid_operating_points(y, score, grid, keep_scores=False):
    """``(best F1, precision, threshold)`` of the recall >= `MIN_RECALL` point from a grid's
    stored counts, chosen as the PR view chooses them (`operating_points`)."""
    result = counting.ClassificationCounts(2, grid, keep_scores=keep_scores)
    result.update(y, np.stack([1 - score, score], axis=1), (score >= 0.5).astype(np.int64))
    tp, fp, positives = result.tp[1], result.fp[1], int(y.sum())
    f1 = metrics.f1_score(tp, fp, positives - tp)
    precision, recall = metrics.pr_curve(tp, fp, positives)
    at_recall = operating_points.min_recall_index(recall, MIN_RECALL)
    return f1[operating_points.best_f1_index(f1)], precision[at_recall], grid[at_recall]

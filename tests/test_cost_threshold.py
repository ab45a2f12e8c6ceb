"""The cost-based operating point of `/pr` and its ROC figures, against brute force on the counts."""

import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag import run_records
from tb_metricsdiag.backend import curve_views
from tb_metricsdiag.core import counting, labels


def _evaluation(y, p, thresholds=None):
    """A binary `SplitEvaluation` of scores ``p`` of class 1, counted as the writers count."""
    thresholds = counting.default_thresholds() if thresholds is None else thresholds
    scores, predicted = labels.scores_and_predictions(np.asarray(p)[:, None], from_logits=False)
    counts = counting.ClassificationCounts(2, thresholds)
    counts.update(y, scores, predicted)
    evaluation = run_records.SplitEvaluation("validation", 3, ["legit", "fraud"], counts.confusion)
    evaluation.thresholds, evaluation.tp, evaluation.fp = counts.thresholds, counts.tp, counts.fp
    return evaluation, scores


def _calibrated(levels=1000, per_level=1000):
    """Scores at the middle of ``levels`` equal bins, each level with exactly its share of
    positives: perfectly calibrated scores."""
    s = (np.arange(levels) + 0.5) / levels
    positives = np.round(s * per_level).astype(int)
    y = np.concatenate([np.r_[np.ones(k, int), np.zeros(per_level - k, int)] for k in positives])
    return y, np.repeat(s, per_level).astype(np.float32)


def test_fn_cost_ten_puts_the_threshold_at_the_stored_value_nearest_one_eleventh():
    y, p = _calibrated()
    evaluation, _ = _evaluation(y, p)
    view = curve_views.pr_view("run", evaluation, 1, fn_cost=10.0, fp_cost=1.0)
    point = view["min_cost"]
    thresholds = evaluation.thresholds
    assert point["threshold"] == thresholds[np.argmin(np.abs(thresholds - 1 / 11))]
    # Brute force over every stored threshold, from the scores themselves.
    costs = [
        10 * np.sum((p < t) & (y == 1)) + np.sum((p >= t) & (y == 0))
        for t in thresholds.astype(np.float32)
    ]
    assert point["index"] == int(np.flatnonzero(costs == np.min(costs))[-1])
    assert point["cost"] == pytest.approx(np.min(costs) / y.size)
    default = int(np.argmin(np.abs(thresholds - 0.5)))
    assert point["cost_at_default"] == pytest.approx(costs[default] / y.size)
    assert point["cost_saved"] == pytest.approx((costs[default] - np.min(costs)) / y.size)
    assert point["matrix"] == [[point["tn"], point["fp"]], [point["fn"], point["tp"]]]


def test_equal_costs_and_no_costs():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 5000)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1).astype(np.float32)
    evaluation, _ = _evaluation(y, p)
    assert curve_views.pr_view("run", evaluation, 1)["min_cost"] is None
    point = curve_views.pr_view("run", evaluation, 1, fn_cost=1.0, fp_cost=1.0)["min_cost"]
    # Equal costs minimise the errors: the most accurate stored threshold.
    errors = [np.sum((p >= t) != (y == 1)) for t in evaluation.thresholds.astype(np.float32)]
    assert point["fn"] + point["fp"] == min(errors)


def test_roc_of_the_view_is_the_grid_roc_of_the_counts():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 3000)
    p = rng.random(3000).astype(np.float32) ** (1 + y)
    thresholds = counting.default_thresholds(11)
    evaluation, _ = _evaluation(y, 1 - p, thresholds)
    view = curve_views.pr_view("run", evaluation, 1)
    bucket = ((1 - p)[:, None] >= thresholds.astype(np.float32)).sum(axis=1)
    assert view["roc_auc"] == pytest.approx(skm.roc_auc_score(y, bucket), abs=1e-12)
    assert view["roc_auc_method"] == "threshold_grid"
    negatives = np.sum(y == 0)
    np.testing.assert_allclose(view["fpr"], np.array(view["fp"]) / negatives)

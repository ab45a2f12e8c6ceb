"""ROC from the counts: exact AUC against scikit-learn's roc_auc_score, the grid AUC against the
exact AUC of the scores rounded down to the grid, and the rates at each stored threshold."""

import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag.core import counting, metrics


def _case(seed, n, num_classes, dtype, ties=False, negative=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    scores = rng.random((n, num_classes)) + 0.3 * np.eye(num_classes)[y]
    if ties:
        scores = np.round(scores, 1)
    if negative:
        scores = scores - 0.7
    return y, scores.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties, negative", [(False, False), (True, False), (True, True)])
def test_exact_roc_auc_equals_scikit_learn_one_vs_rest(dtype, ties, negative):
    y, scores = _case(3, 5000, 4, dtype, ties, negative)
    counts = counting.ClassificationCounts(4, counting.default_thresholds())
    counts.update(y, scores, scores.argmax(axis=1))
    expected = [skm.roc_auc_score(y == k, scores[:, k]) for k in range(4)]
    np.testing.assert_allclose(counts.roc_auc(), expected, rtol=0, atol=1e-9)


def test_exact_roc_auc_over_several_pieces_and_a_class_without_positives():
    y, scores = _case(5, 3 * 65536 + 17, 3, np.float32, ties=True)
    y[y == 2] = 0  # class 2 has no positive: AUC undefined
    counts = counting.ClassificationCounts(3, counting.default_thresholds())
    for begin in range(0, y.size, 10000):
        batch = slice(begin, begin + 10000)
        counts.update(y[batch], scores[batch], scores[batch].argmax(axis=1))
    auc = counts.roc_auc()
    for k in range(2):
        assert auc[k] == pytest.approx(skm.roc_auc_score(y == k, scores[:, k]), abs=1e-9)
    assert np.isnan(auc[2])


def test_grid_roc_auc_is_the_exact_auc_of_scores_rounded_down_to_the_grid():
    y, scores = _case(11, 4000, 3, np.float64)
    thresholds = counting.default_thresholds(21)
    counts = counting.ClassificationCounts(3, thresholds, keep_scores=False)
    counts.update(y, scores, scores.argmax(axis=1))
    # A score's bucket: the number of thresholds it reaches (an order-preserving rounding down).
    bucket = (scores[..., None] >= thresholds).sum(axis=-1)
    expected = [skm.roc_auc_score(y == k, bucket[:, k]) for k in range(3)]
    np.testing.assert_allclose(counts.roc_auc(), expected, rtol=0, atol=1e-12)


def test_rates_at_each_threshold_are_exact_counts():
    y, scores = _case(2, 999, 2, np.float32)
    thresholds = counting.default_thresholds()
    tp, fp = counting.threshold_counts(y, scores, thresholds)
    positives = int((y == 1).sum())
    fpr, tpr = metrics.roc_curve(tp[1], fp[1], positives, y.size - positives)
    reached = scores[:, 1].astype(np.float64)[:, None] >= thresholds
    np.testing.assert_allclose(fpr, reached[y == 0].sum(axis=0) / (y.size - positives), rtol=1e-15)
    np.testing.assert_allclose(tpr, reached[y == 1].sum(axis=0) / positives, rtol=1e-15)
    assert np.all(np.isnan(metrics.roc_curve(tp[1], fp[1], 0, 0)[1]))

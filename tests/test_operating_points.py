"""Operating-point choices against a brute-force scan, on random curves with NaN and ties."""

import math

import numpy as np
import pytest

from tb_metricsdiag.core import operating_points


def _brute_best_f1(f1):
    best = None
    for index, value in enumerate(f1):
        if not math.isnan(value) and (best is None or value >= f1[best]):
            best = index
    return best


def _brute_min_recall(recall, goal):
    chosen = None
    for index, value in enumerate(recall):
        if not math.isnan(value) and value >= goal:
            chosen = index
    return chosen


def _brute_min_precision(precision, goal):
    for index, value in enumerate(precision):
        if not math.isnan(value) and value >= goal:
            return index
    return None


def _random_curve(rng, size):
    # Few distinct values, so that ties are frequent; some NaN; sometimes all NaN.
    values = rng.integers(0, 5, size=size) / 4.0
    values[rng.random(size) < 0.2] = np.nan
    if rng.random() < 0.1:
        values[:] = np.nan
    return values


@pytest.mark.parametrize("seed", range(200))
def test_operating_points_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 12))
    curve = _random_curve(rng, size)
    goal = float(rng.choice([0.0, 0.25, 0.5, 0.6, 1.0]))
    assert operating_points.best_f1_index(curve) == _brute_best_f1(list(curve))
    assert operating_points.min_recall_index(curve, goal) == _brute_min_recall(list(curve), goal)
    assert operating_points.min_precision_index(curve, goal) == _brute_min_precision(
        list(curve), goal
    )


def test_ties_and_unreachable_goals():
    assert operating_points.best_f1_index([0.5, 0.8, 0.8, np.nan]) == 2
    assert operating_points.best_f1_index([np.nan, np.nan]) is None
    assert operating_points.min_recall_index([1.0, 0.9, 0.5, 0.0], 0.9) == 1
    assert operating_points.min_recall_index([0.8, 0.5], 0.9) is None
    assert operating_points.min_precision_index([0.5, 0.7, 0.9, np.nan], 0.7) == 1
    assert operating_points.min_precision_index([0.5, np.nan], 0.6) is None


def test_returns_python_ints():
    assert type(operating_points.best_f1_index(np.array([0.1, 0.2]))) is int
    assert type(operating_points.min_recall_index(np.array([1.0]), 0.5)) is int
    assert type(operating_points.min_precision_index(np.array([1.0]), 0.5)) is int

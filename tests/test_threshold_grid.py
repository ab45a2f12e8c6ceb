"""The default threshold grid: its definition, exact counts on it in both counting modes, and
what it resolves, measured against every distinct score (scikit-learn's PR curve)."""

import json
import os
import shutil
import subprocess

import grid_models
import numpy as np
import pytest
from conftest import documented_thresholds

from tb_metricsdiag.core import _bucketing, operating_points
from tb_metricsdiag.core import counting as counts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAP = 0.01  # the largest F1 / precision shortfall against the exact optimum the grid may have
OLD_GRID = np.linspace(0.0, 1.0, 201)  # the grid before: evenly spaced in [0, 1]


def test_default_grid_is_the_documented_one():
    grid = counts.default_thresholds()
    assert grid.dtype == np.float64 and grid.shape == (counts.DEFAULT_NUM_THRESHOLDS,) == (201,)
    np.testing.assert_array_equal(grid, documented_thresholds())
    assert np.all(np.diff(grid) > 0)
    assert grid[0] == 0.0 and grid[-1] == 1.0 and grid[100] == 0.5
    assert (grid[1], grid[-2]) == (0.000123, 0.999877)
    # Symmetric: t and 1 - t, as decimals.
    np.testing.assert_array_equal(np.round(grid + grid[::-1], 9), np.ones(201))
    # Evenly spaced in logit over [-9, 9] to within an eighth of a step.
    inside = grid[1:-1]
    logits = np.log(inside / (1 - inside))
    step = 18 / 198
    assert np.max(np.abs(logits - np.linspace(-9, 9, 199))) <= step / 8


@pytest.mark.parametrize("size", [2, 3, 4, 5, 11, 21, 200, 1001, 2001])
def test_default_grid_of_any_size(size):
    grid = counts.default_thresholds(size)
    assert grid.shape == (size,) and np.all(np.diff(grid) > 0)
    assert grid[0] == 0.0 and grid[-1] == 1.0
    assert (0.5 in grid) == (size % 2 == 1)
    if size > 4:
        inside = grid[1:-1]
        step = 18 / (size - 3)
        logits = np.log(inside / (1 - inside))
        assert np.max(np.abs(logits - np.linspace(-9, 9, size - 2))) <= step / 8
    np.testing.assert_array_equal(counts.validate_thresholds(grid), grid)


def test_default_grid_refuses_fewer_than_two():
    with pytest.raises(ValueError, match="at least 2"):
        counts.default_thresholds(1)


def _adversarial_scores(thresholds, dtype, rng):
    """Every threshold, its edge in ``dtype`` and their neighbours there, signed zeros, 1,
    subnormals, tiny and huge values, infinities, NaN, and logits spread far beyond the grid."""
    info = np.finfo(dtype)
    edges = counts.comparison_edges(thresholds, dtype)
    near = np.concatenate(
        [
            thresholds.astype(dtype),
            edges,
            np.nextafter(edges, dtype(-np.inf)),
            np.nextafter(edges, dtype(np.inf)),
            np.nextafter(thresholds.astype(dtype), dtype(-np.inf)),
        ]
    )
    special = np.array(
        [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, info.smallest_subnormal, -info.smallest_subnormal]
        + [info.tiny, info.tiny / 3, 1 - info.epsneg, info.max, -info.max, np.inf, -np.inf]
        + [np.nan],
        dtype=dtype,
    )
    with np.errstate(over="ignore"):
        spread = (1 / (1 + np.exp(-rng.normal(0, 12, 20000)))).astype(dtype)
    return np.concatenate([near, special, spread, rng.random(20000).astype(dtype)])


def _brute_force_bucket(scores, thresholds):
    with np.errstate(invalid="ignore"):  # NumPy compares float32 with float64 exactly
        return (scores[:, None] >= thresholds[None, :]).sum(axis=1)


GRIDS = [
    counts.default_thresholds(),
    counts.default_thresholds(11),
    counts.default_thresholds(2001),
    1 / (1 + np.exp(-np.linspace(-5, 5, 50))),  # logit-spaced, without 0 and 1
    np.concatenate([[-0.5], 1 / (1 + np.exp(-np.linspace(-3, 3, 7))), [2.0]]),
]


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bucket_on_logit_grids_is_exact(grid, dtype):
    # float32 takes the prefix table where each prefix holds one edge at most (a coarse grid).
    expected = {"_bucket_by_logit", "_bucket_by_prefix" if dtype == np.float32 else None}
    assert _bucketing._bucketing(grid, dtype).func.__name__ in expected
    if grid.size == counts.DEFAULT_NUM_THRESHOLDS:
        assert _bucketing._bucketing(grid, dtype).func.__name__ == "_bucket_by_logit"
    scores = _adversarial_scores(grid, dtype, np.random.default_rng(0))
    np.testing.assert_array_equal(
        counts.threshold_bucket(scores, grid), _brute_force_bucket(scores, grid)
    )


@pytest.mark.parametrize(
    "grid",
    [
        1 / (1 + np.exp(-np.linspace(-20, 20, 401))),  # edges near 1 collide in float32
        np.concatenate([[0.0], 1 / (1 + np.exp(-np.linspace(-9, 9, 199)))[::2], [0.3]]),
        np.array([0.0, 1e-42, 2e-42, 1e-41]),  # subnormal edges: their logarithms are loose
    ],
)
def test_grids_unfit_for_the_logit_guess_are_searched_and_exact(grid):
    grid = np.sort(grid)
    assert _bucketing._bucketing(grid, np.float32).func.__name__ == "_bucket_by_search"
    scores = _adversarial_scores(grid, np.float32, np.random.default_rng(1))
    np.testing.assert_array_equal(
        counts.threshold_bucket(scores, grid), _brute_force_bucket(scores, grid)
    )


@pytest.mark.parametrize("keep_scores", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_counts_on_the_default_grid_are_exact_in_both_modes(keep_scores, dtype):
    grid = counts.default_thresholds()
    rng = np.random.default_rng(2)
    column = _adversarial_scores(grid, dtype, rng)
    column = column[np.isfinite(column)]  # non-finite rows are left out of every count
    scores = np.stack([column, rng.permutation(column), rng.permutation(column)], axis=1)
    ids = rng.integers(0, 3, size=column.size)
    result = counts.ClassificationCounts(3, grid, keep_scores=keep_scores)
    half = column.size // 2
    for part in (slice(0, half), slice(half, None)):
        result.update(ids[part], scores[part], scores[part].argmax(axis=1))
    for k in range(3):
        reached = scores[:, k][:, None] >= grid[None, :]
        own = (ids == k)[:, None]
        np.testing.assert_array_equal(result.tp[k], (reached & own).sum(axis=0))
        np.testing.assert_array_equal(result.fp[k], (reached & ~own).sum(axis=0))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("keep_scores", [True, False])
def test_default_grid_resolves_a_model_clustered_near_zero(seed, keep_scores):
    y, score = grid_models.clustered_model(seed)
    assert 0.015 < y.mean() < 0.025 and np.quantile(score, 0.99) < 0.1
    best_f1, best_precision = grid_models.exact_optimum(y, score)
    f1, precision, _ = grid_models.grid_operating_points(
        y, score, counts.default_thresholds(), keep_scores
    )
    assert best_f1 - GAP <= f1 <= best_f1
    assert best_precision - GAP <= precision <= best_precision
    # The evenly spaced grid misses it: its highest threshold with recall >= 0.9 is 0, which
    # flags every example (precision = the share of positives).
    _, old_precision, _ = grid_models.grid_operating_points(y, score, OLD_GRID, keep_scores)
    assert old_precision == pytest.approx(y.mean())
    assert old_precision < best_precision - 3 * GAP


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("keep_scores", [True, False])
def test_default_grid_resolves_a_balanced_model(seed, keep_scores):
    y, score = grid_models.balanced_model(seed)
    best_f1, best_precision = grid_models.exact_optimum(y, score)
    f1, precision, _ = grid_models.grid_operating_points(
        y, score, counts.default_thresholds(), keep_scores
    )
    assert best_f1 - GAP <= f1 <= best_f1
    assert best_precision - GAP <= precision <= best_precision


def test_every_default_threshold_reads_as_its_own_text():
    grid = counts.default_thresholds()
    texts = [operating_points.format_threshold(t) for t in grid]
    assert len(set(texts)) == grid.size  # the slider's label tells every stored threshold apart
    # The default values are short decimals: the text is the value itself.
    assert [float(text) for text in texts] == grid.tolist()
    assert texts[:3] == ["0.000", "0.000123", "0.000135"] and texts[100] == "0.500"


@pytest.mark.skipif(not shutil.which("node"), reason="needs Node.js to run the frontend module")
def test_frontend_writes_thresholds_as_the_backend_does():
    values = counts.default_thresholds().tolist() + [0.005, 0.3, 0.995, 1e-12, -0.5, 2.0]
    module = os.path.join(ROOT, "frontend", "dom.js")
    script = "import(%s).then(m => console.log(JSON.stringify(%s.map(m.fmtThreshold))))" % (
        json.dumps("file://" + module),
        json.dumps(values),
    )
    output = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == [operating_points.format_threshold(t) for t in values]

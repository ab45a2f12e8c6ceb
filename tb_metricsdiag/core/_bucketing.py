"""Which thresholds each score reaches: the bucketing behind the streamed threshold counts.

Private to `counting`. Exact for every score: the comparison is made in the scores' own dtype
against the thresholds rounded up into it (`comparison_edges`).
"""

import functools
import sys

import numpy as np

from tb_metricsdiag.core._blocks import BLOCK as _BLOCK


def _evenly_spaced_step(thresholds):
    """The spacing of an evenly spaced grid, or None when the grid is irregular."""
    if thresholds.size < 2:
        return None
    step = (thresholds[-1] - thresholds[0]) / (thresholds.size - 1)
    expected = thresholds[0] + step * np.arange(thresholds.size)
    return step if np.allclose(thresholds, expected, rtol=0, atol=step * 1e-6) else None


_LOGIT_GUESS_SLACK = 0.5
"""How far (in grid steps) the logit guess of `_bucket_by_logit` may be from a score's place:
lowered by this much it is never above the bucket and at most one below, so one step up
corrects it."""

_LOG_ERROR_ULPS = 8
"""A generous bound on the error of the guess's log of the odds, ``log(s / (1 - s))``, in units
of the dtype's epsilon times the logit's magnitude (at least 1): the difference and the
quotient each add half an epsilon of relative error, NumPy's vectorised ``log`` at most 4 ulp."""


def _logit_spacing(thresholds, edges, dtype):
    """``(scale, offset, top)`` for `_bucket_by_logit`, or None when the grid is not evenly
    spaced in logit closely enough for its guess.

    The grid may start with one threshold ``<= 0`` and end with one ``>= 1``; the edges
    between (`comparison_edges` in ``dtype``) must lie in (0, 1) with logits within
    `_LOGIT_GUESS_SLACK` of a step of evenly spaced ones, counting the rounding of the guess
    itself (`_LOG_ERROR_ULPS`, and a few epsilons of the bucket index). The guess of a score of
    logit ``z`` is ``z * scale + offset``: its place among the inside edges, in steps, plus the
    thresholds before them, less the slack; ``top`` is the bucket of the last inside edge.
    """
    head = int(np.count_nonzero(thresholds <= 0))
    tail = int(np.count_nonzero(thresholds >= 1))
    inside = edges[head : edges.size - tail].astype(np.float64)
    if head > 1 or tail > 1 or inside.size < 2 or inside.size > 1 << 20:
        return None
    if inside[0] <= 0 or inside[-1] >= 1:  # an edge rounded up to 1 in the dtype
        return None
    logits = np.log(inside) - np.log1p(-inside)
    step = (logits[-1] - logits[0]) / (inside.size - 1)
    if not step > 0 or not 1.0 / step < np.finfo(dtype).max:
        return None
    # The logarithm of a subnormal score is not accurate to a few ulp: such scores must lie
    # steps below the first edge, where the guess is clipped to the bottom anyway.
    if inside[0] * np.exp(-2 * step) < np.finfo(dtype).tiny:
        return None
    deviation = np.max(np.abs(logits - (logits[0] + step * np.arange(inside.size)))) / step
    # Where it matters (a score within a step of the inside edges) a score's logit is at most
    # `reach` in size; scaling and shifting it adds a few epsilons of the bucket index.
    epsilon = float(np.finfo(dtype).eps)
    reach = max(abs(logits[0]), abs(logits[-1])) + step + 1
    rounding = _LOG_ERROR_ULPS * epsilon * reach / step + 4 * epsilon * (edges.size + 2)
    if deviation + rounding > _LOGIT_GUESS_SLACK:
        return None
    offset = head + 1 - _LOGIT_GUESS_SLACK - logits[0] / step
    return dtype.type(1.0 / step), dtype.type(offset), head + inside.size


def _comparable_dtype(dtype):
    """The dtype scores of ``dtype`` are compared in exactly: float32 stays float32 (the Keras
    default, half the memory traffic), everything else becomes float64 (exact for float16,
    integers up to 2**53 and float64 itself).
    """
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _comparable_scores(scores):
    """``scores`` in `_comparable_dtype` (no copy when they already are)."""
    scores = np.asarray(scores)
    return scores.astype(_comparable_dtype(scores.dtype), copy=False)


def comparison_edges(thresholds, dtype):
    """Thresholds rounded up into ``dtype``, so that ``s >= edges[j]`` equals ``s >= thresholds[j]``
    for every ``s`` of that dtype.

    A float32 score reaches a float64 threshold exactly when it reaches the smallest float32 at
    or above it, so counting stays exact with the comparison done in float32 (here and in the
    Keras metric, `keras_metric`).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    edges = thresholds.astype(dtype)
    below = edges < thresholds
    edges[below] = np.nextafter(edges[below], np.inf, dtype=dtype)
    return edges


def threshold_bucket(scores, thresholds):
    """Number of thresholds each score reaches: ``b = #{j : scores >= thresholds[j]}``.

    So ``scores >= thresholds[j]`` exactly when ``b > j``. +inf reaches every threshold and NaN
    none (``b = 0``), as the comparison says. Exact for every score: the comparison is made in
    the scores' own dtype against the thresholds rounded up into it (`comparison_edges`), block
    by block so the temporaries stay in cache (`_bucketing` tells how).
    """
    scores = _comparable_scores(scores)
    bucket_of = _bucketing(thresholds, scores.dtype)
    flat = scores.reshape(-1)
    result = np.empty(flat.shape, dtype=np.intp)
    for begin in range(0, flat.size, _BLOCK):
        result[begin : begin + _BLOCK] = bucket_of(flat[begin : begin + _BLOCK])
    return result.reshape(scores.shape)


def _bucketing(thresholds, dtype):
    """A function from a block of scores of ``dtype`` to their `threshold_bucket`.

    float32 scores use a table indexed by the top bits of each score (`_float32_prefix_table`);
    where the grid is too fine for it, and for float64, a grid evenly spaced in the score
    (`_bucket_evenly`) or in its logit (`_bucket_by_logit`, the default grid) guesses the
    bucket arithmetically and corrects it by one step against the edges; any other grid, or
    one too fine for the scores' precision, searches the edges. Made once per grid and dtype:
    the callback counts batch after batch on the same grid.
    """
    thresholds = np.ascontiguousarray(thresholds, dtype=np.float64)
    return _cached_bucketing(thresholds.tobytes(), np.dtype(dtype).str)


@functools.lru_cache(maxsize=4)
def _cached_bucketing(threshold_bytes, dtype_name):
    thresholds = np.frombuffer(threshold_bytes, dtype=np.float64)
    dtype = np.dtype(dtype_name)
    edges = comparison_edges(thresholds, dtype)
    if dtype == np.float32:
        table = _float32_prefix_table(edges)
        if table is not None:
            return functools.partial(_bucket_by_prefix, *table)
    step = _evenly_spaced_step(thresholds)
    # The arithmetic guess must land within one bucket of the truth: the edges' rounding
    # moves them by at most 1/16 of a step, the guess's own rounding (a few 2**-24 relative)
    # by less than 1/8 of a bucket, and the scale is finite. Finer grids are searched.
    if (
        step is not None
        and thresholds.size <= 1 << 20
        and step >= 16 * np.spacing(np.abs(edges).max())
        and 1.0 / step < np.finfo(dtype).max
    ):
        return functools.partial(
            _bucket_evenly, _lookup(edges, dtype), dtype.type(edges[0]), dtype.type(1.0 / step)
        )
    logit = _logit_spacing(thresholds, edges, dtype)
    if logit is not None:
        return functools.partial(_bucket_by_logit, _lookup(edges, dtype), *logit)
    return functools.partial(_bucket_by_search, edges)


def _lookup(edges, dtype):
    """``lookup[b] = edges[b - 1]``; beyond the ends -inf (always reached) and NaN (never
    reached, not even by +inf): the one-step corrections need no bounds checks.
    """
    return np.concatenate([[-np.inf], edges, [np.nan]]).astype(dtype)


def _float32_prefix_table(edges):
    """``(base, edge)`` indexed by the top 16 bits of a float32 (sign, exponent and 7 mantissa
    bits), or None when some prefix holds more than one of the float32 ``edges``.

    A prefix covers an interval of floats, ``[low, high]`` in value order. ``base`` is the
    bucket of ``low``, ``edge`` the one edge in ``(low, high]`` or NaN (reached by no score)
    where there is none, so a score's bucket is ``base + (score >= edge)``. Prefixes of NaNs
    only get bucket 0. The prefix of +inf also holds signalling NaNs: it gets the bucket of
    +inf, and `_bucket_by_prefix` sends those NaNs to 0.
    """
    first = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    last = first | np.uint32(0xFFFF)
    # For negative prefixes `last` is the lower end; fmin and fmax skip the NaNs that share a
    # prefix with an infinity.
    low = np.fmin(first.view(np.float32), last.view(np.float32))
    high = np.fmax(first.view(np.float32), last.view(np.float32))
    base = np.searchsorted(edges, low, side="right")
    inside = np.searchsorted(edges, high, side="right") - base
    only_nan = np.isnan(low)
    base[only_nan] = 0
    inside[only_nan] = 0
    if inside.max() > 1:
        return None
    edge = np.full(first.shape, np.nan, dtype=np.float32)
    one = inside == 1
    edge[one] = edges[base[one]]
    base = base.astype(np.intp)
    base.flags.writeable = edge.flags.writeable = False
    return base, edge


# Index of the 16 high bits of a float32 among its two uint16 halves.
_HIGH_HALF = 1 if sys.byteorder == "little" else 0


_FLOAT32_INFINITY_BITS = 0x7F800000


def _bucket_by_prefix(base, edge, block):
    """`threshold_bucket` of a float32 block with `_float32_prefix_table`'s ``base, edge``."""
    block = np.ascontiguousarray(block)
    prefix = block.view(np.uint16)[..., _HIGH_HALF::2].astype(np.intp)
    bucket = base.take(prefix)
    bucket += block >= edge.take(prefix)
    # A positive NaN (bits above +inf's) may be a signalling NaN given +inf's bucket.
    if block.size and block.view(np.int32).max() > _FLOAT32_INFINITY_BITS:
        bucket[np.isnan(block)] = 0
    return bucket


def _bucket_evenly(lookup, origin, scale, block):
    """`threshold_bucket` on an evenly spaced grid: the arithmetic guess can be one too high
    or one too low at a boundary, and ``lookup`` (see `_lookup`) corrects it.
    """
    size = lookup.size - 2
    with np.errstate(over="ignore", invalid="ignore"):  # huge scores, signalling NaNs
        guess = (block - origin) * scale
    # fmax/fmin rather than clip: they turn NaN into -1, bucket 0, which reaches nothing.
    np.fmax(guess, -1, out=guess)
    np.fmin(guess, size - 1, out=guess)
    bucket = guess.astype(np.intp)
    bucket += 1
    bucket -= lookup[bucket] > block
    bucket += lookup[bucket + 1] <= block
    return bucket


def _bucket_by_logit(lookup, scale, offset, top, block):
    """`threshold_bucket` on a grid evenly spaced in logit (`_logit_spacing`): a guess from the
    score's logit that is the bucket or one below, raised by one comparison with ``lookup``
    (see `_lookup`) where the score reaches the next edge.

    Scores are first clipped into [0, 1]: below 0 the logit is -inf, above 1 +inf, and the
    comparison, with the score itself, settles the thresholds at or beyond 0 and 1. The guess is
    clipped to [0, top], NaN to 0 (the arithmetic has quieted signalling NaNs, which ``fmax``
    does not always drop), and truncated: floored. A NaN score reaches no threshold.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        clipped = np.clip(block, 0, 1)
        # log of the odds: one logarithm (log1p of -score is many times slower in float32).
        guess = np.subtract(1, clipped)
        np.divide(clipped, guess, out=guess)
        np.log(guess, out=guess)
        guess *= scale
        guess += offset
    np.fmax(guess, 0, out=guess)
    np.minimum(guess, top, out=guess)
    bucket = guess.astype(np.intp)
    bucket += lookup[1:].take(bucket) <= block
    return bucket


def _bucket_by_search(edges, block):
    """`threshold_bucket` on any ascending grid, by binary search."""
    bucket = np.searchsorted(edges, block, side="right")
    bucket[np.isnan(block)] = 0  # searchsorted places NaN after every edge
    return bucket

"""From labels and scores to counts: the numeric core the callback, writers and tests share.

Pure NumPy. Everything here is linear in the number of examples (bucketing scores against the
threshold grid replaces a sort per threshold) except `average_precision`, which is exact and
therefore sorts once per class.

Conventions: ``y_true`` holds integer class ids in ``[0, C)``; ``scores`` is ``[n, C]`` with the
score of each class (one-vs-rest), ``y_pred`` the predicted class ids.
"""

import concurrent.futures
import functools
import os
import sys

import numpy as np

DEFAULT_NUM_THRESHOLDS = 201

# Elements per block of the blocked loops: their temporaries stay in the CPU cache.
_BLOCK = 1 << 16
_FLOAT32_SIGN = np.uint32(1 << 31)

# Classes whose exact AP is computed at once, each in its own thread: NumPy's sort and
# array loops release the GIL. 1 computes them one after the other in the calling thread.
AVERAGE_PRECISION_THREADS = min(2, os.cpu_count() or 1)
# Fewer examples than this are computed in the calling thread: a class then sorts in about a
# millisecond or less, and starting threads and sharing the GIL cost more than they save
# (10,000 x 10 scores: 1.1 ms in one thread, 1.6-2.6 ms in two).
_THREADED_EXAMPLES = 1 << 18


def default_thresholds(num_thresholds=DEFAULT_NUM_THRESHOLDS):
    """``num_thresholds`` evenly spaced thresholds from 0 to 1 inclusive (TensorBoard's grid)."""
    if int(num_thresholds) < 2:
        raise ValueError("num_thresholds must be at least 2, got %r" % (num_thresholds,))
    return np.linspace(0.0, 1.0, int(num_thresholds))


def validate_thresholds(thresholds):
    """Return ``thresholds`` as a float64 array, checking it is finite and strictly ascending."""
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim != 1 or values.size < 1:
        raise ValueError("thresholds must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(values)):
        raise ValueError("thresholds must be finite numbers")
    if np.any(np.diff(values) <= 0):
        raise ValueError("thresholds must be strictly ascending")
    return values


def _ids_in_range(ids, num_classes):
    """Whether every id is in ``[0, num_classes)``.

    Integer ids are checked in one pass: read as unsigned, a negative id is larger than any
    class id, so the maximum alone decides.
    """
    if ids.dtype.kind in "iu" and ids.dtype.isnative:
        return int(ids.view("u%d" % ids.dtype.itemsize).max()) < num_classes
    return ids.min() >= 0 and ids.max() < num_classes


def _check_ids(ids, num_classes, what):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError("%s must be a 1-D array of class ids, got shape %s" % (what, ids.shape))
    if ids.size and not _ids_in_range(ids, num_classes):
        raise ValueError(
            "%s holds class ids outside [0, %d): found %d..%d"
            % (what, num_classes, ids.min(), ids.max())
        )
    return ids.astype(np.int64, copy=False)


# NumPy 1.25 gave ufunc.at a fast path: since, adding ones in place beats bincount (no
# min/max pass, no histogram to add); before, it is many times slower.
_UFUNC_AT_IS_FAST = np.lib.NumpyVersion(np.__version__) >= "1.25.0"


def _count_into(histogram, index):
    """``histogram[i] += #{index == i}``; ``index`` is intp, within the histogram."""
    if _UFUNC_AT_IS_FAST:
        np.add.at(histogram, index, 1)
    else:
        histogram += np.bincount(index, minlength=histogram.size)


def confusion_matrix(y_true, y_pred, num_classes):
    """Confusion matrix ``M[i, j]`` = number of examples of actual class i predicted as j.

    Same result as ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(C))``: a
    histogram of ``i * C + j``, block by block so the index array stays in cache. Two classes
    are counted without a histogram: its four bins are hit in long runs, which serialises the
    increments, while three counts of agreeing flags fill the matrix.
    """
    y_true = _check_ids(y_true, num_classes, "y_true")
    y_pred = _check_ids(y_pred, num_classes, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred differ in length: %d vs %d" % (y_true.size, y_pred.size))
    if num_classes == 2:
        return _binary_confusion_matrix(y_true, y_pred)
    flat = np.zeros(num_classes * num_classes, dtype=np.int64)
    index = np.empty(min(y_true.size, _BLOCK), dtype=np.intp)
    for begin in range(0, y_true.size, _BLOCK):
        block = index[:y_true[begin:begin + _BLOCK].size]
        np.multiply(y_true[begin:begin + _BLOCK], num_classes, out=block)
        block += y_pred[begin:begin + _BLOCK]
        _count_into(flat, block)
    return flat.reshape(num_classes, num_classes)


def _binary_confusion_matrix(y_true, y_pred):
    """`confusion_matrix` of ids in {0, 1} from the counts of actual 1s, predicted 1s and both."""
    actual = predicted = both = 0
    for begin in range(0, y_true.size, _BLOCK):
        is_actual = y_true[begin:begin + _BLOCK] == 1
        is_predicted = y_pred[begin:begin + _BLOCK] == 1
        actual += np.count_nonzero(is_actual)
        predicted += np.count_nonzero(is_predicted)
        both += np.count_nonzero(is_actual & is_predicted)
    return np.array(
        [
            [y_true.size - actual - predicted + both, predicted - both],
            [actual - both, both],
        ],
        dtype=np.int64,
    )


def label_distribution(y_true, num_classes):
    """Number of examples of each actual class, shape ``[C]``."""
    return np.bincount(_check_ids(y_true, num_classes, "y_true"), minlength=num_classes)


def _evenly_spaced_step(thresholds):
    """The spacing of an evenly spaced grid, or None when the grid is irregular."""
    if thresholds.size < 2:
        return None
    step = (thresholds[-1] - thresholds[0]) / (thresholds.size - 1)
    expected = thresholds[0] + step * np.arange(thresholds.size)
    return step if np.allclose(thresholds, expected, rtol=0, atol=step * 1e-6) else None


def _comparable_dtype(dtype):
    """The dtype scores of ``dtype`` are compared in exactly: float32 stays float32 (the Keras
    default, half the memory traffic), everything else becomes float64 (exact for float16,
    integers up to 2**53 and float64 itself)."""
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
        result[begin:begin + _BLOCK] = bucket_of(flat[begin:begin + _BLOCK])
    return result.reshape(scores.shape)


def _bucketing(thresholds, dtype):
    """A function from a block of scores of ``dtype`` to their `threshold_bucket`.

    float32 scores use a table indexed by the top bits of each score (`_float32_prefix_table`);
    where the grid is too fine for it, and for float64, an evenly spaced grid computes the
    bucket arithmetically and corrects it by one step against the edges (`_bucket_evenly`),
    any other grid, or one too fine for the scores' precision, searches the edges. Made once
    per grid and dtype: the callback counts batch after batch on the same grid.
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
        # lookup[b] = edges[b - 1]; beyond the ends -inf (always reached) and NaN (never
        # reached, not even by +inf): no bounds checks needed.
        lookup = np.concatenate([[-np.inf], edges, [np.nan]]).astype(dtype)
        return functools.partial(
            _bucket_evenly, lookup, dtype.type(edges[0]), dtype.type(1.0 / step)
        )
    return functools.partial(_bucket_by_search, edges)


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
    or one too low at a boundary, and ``lookup`` (see `_cached_bucketing`) corrects it."""
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


def _bucket_by_search(edges, block):
    """`threshold_bucket` on any ascending grid, by binary search."""
    bucket = np.searchsorted(edges, block, side="right")
    bucket[np.isnan(block)] = 0  # searchsorted places NaN after every edge
    return bucket


def threshold_counts_from_histograms(every, positives):
    """TP and FP ``[C, T]`` from per-class bucket histograms ``[C, T + 1]``.

    ``every[k, b]`` counts the examples whose class-k score is in bucket ``b`` (see
    `threshold_bucket`), ``positives[k, b]`` those of them that are of class k. The count at
    threshold j is the number of buckets above j: a reverse cumulative sum.
    """
    every = np.asarray(every, dtype=np.int64)
    positives = np.asarray(positives, dtype=np.int64)
    tp = np.cumsum(positives[:, ::-1], axis=1)[:, ::-1][:, 1:]
    fp = np.cumsum((every - positives)[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return tp, fp


def threshold_counts(y_true, scores, thresholds):
    """One-vs-rest true and false positives of ``score >= t`` for every class and threshold.

    Args:
      y_true: int class ids, shape ``[n]``.
      scores: float scores, shape ``[n, C]``; a NaN reaches no threshold, +inf every one.
      thresholds: ascending floats, shape ``[T]``.

    Returns:
      ``(tp, fp)``, int64 arrays of shape ``[C, T]``: ``tp[k, j]`` counts examples of class k with
      ``scores[:, k] >= thresholds[j]``; ``fp[k, j]`` the examples of other classes that do.
      TN and FN follow from the class totals: ``fn = P_k - tp``, ``tn = (n - P_k) - fp``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError("scores must have shape [n, C], got %s" % (scores.shape,))
    n, num_classes = scores.shape
    y_true = _check_ids(y_true, num_classes, "y_true")
    if y_true.size != n:
        raise ValueError("y_true and scores differ in length: %d vs %d" % (y_true.size, n))
    thresholds = validate_thresholds(thresholds)
    bucket_of = _bucketing(thresholds, _comparable_dtype(scores.dtype))
    width = thresholds.size + 1
    every = np.zeros(num_classes * width, dtype=np.int64)
    positives = np.zeros(num_classes * width, dtype=np.int64)
    rows = max(1, min(n, _BLOCK // num_classes))
    # A block's buckets are flattened row by row: class k's histogram starts at k * width, and
    # row i's own class sits at i * C + y_i. Flat arrays, because NumPy loops over a
    # broadcast inner dimension of 2 (the binary case) many times slower.
    offsets = np.tile(np.arange(num_classes, dtype=np.intp) * width, rows)
    row_starts = np.arange(0, rows * num_classes, num_classes, dtype=np.intp)
    for begin in range(0, n, rows):
        block = _comparable_scores(scores[begin:begin + rows])
        buckets = bucket_of(block).reshape(-1)
        buckets += offsets[:buckets.size]
        _count_into(every, buckets)
        # Each example is a positive for exactly one class: its own.
        own = buckets.take(row_starts[:block.shape[0]] + y_true[begin:begin + rows])
        _count_into(positives, own)
    return threshold_counts_from_histograms(
        every.reshape(num_classes, width), positives.reshape(num_classes, width)
    )


def average_precision(y_true, scores):
    """Exact one-vs-rest average precision of every class, shape ``[C]`` (float64).

    AP = sum over distinct score thresholds of ``(R_n - R_{n-1}) * P_n``: step-wise and not
    interpolated, the definition of ``sklearn.metrics.average_precision_score``. Each positive
    adds ``1/P`` of recall at the precision of its own score (ties share one threshold), so
    ``AP = mean over positives i of #{positives >= s_i} / #{examples >= s_i}``: one sort per class.

    A class with no positive example has no recall to average over: its AP is NaN (reported as
    null). scikit-learn returns 0.0 with a warning there.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError("scores must have shape [n, C], got %s" % (scores.shape,))
    num_classes = scores.shape[1]
    y_true = _check_ids(y_true, num_classes, "y_true")
    if y_true.size != scores.shape[0]:
        raise ValueError("y_true and scores differ in length: %d vs %d" % (y_true.size, scores.shape[0]))
    return _exact_counts([(y_true, scores)], num_classes, np.empty(0))[2]


def _exact_counts(pieces, num_classes, thresholds):
    """``(tp, fp, ap)`` of the examples of ``pieces``, a list of ``(ids [m], scores [m, C])``:
    the `threshold_counts` at ``thresholds`` (``[C, T]``, T may be 0) and the exact
    `average_precision` (``[C]``).

    float32 scores are sorted as one integer key per example (`_float32_sort_keys`), several
    times faster than an argsort; the sorted keys then give the AP (`_precision_sum`) and, by
    a binary search per threshold, the threshold counts at almost no extra cost. Other dtypes
    are compared in float64 and counted the same way on sorted scores (`_other_class_counts`).
    Each class is computed on its own (one column of keys or scores at a time), from
    `_THREADED_EXAMPLES` examples on `AVERAGE_PRECISION_THREADS` classes at once.
    """
    n = sum(ids.size for ids, _ in pieces)
    if all(scores.dtype == np.float32 for _, scores in pieces):
        # Negative scores (or NaNs with the sign bit) need the sign in the key: 64-bit keys.
        wide = any(
            scores.size and scores.view(np.uint32).max() > _FLOAT32_SIGN for _, scores in pieces
        )
        edge_keys = _float32_keys(comparison_edges(thresholds, np.float32), wide)
        of_class = functools.partial(_float32_class_counts, pieces, n, wide, edge_keys)
    else:
        of_class = functools.partial(_other_class_counts, pieces, thresholds)
    if AVERAGE_PRECISION_THREADS > 1 and num_classes > 1 and n >= _THREADED_EXAMPLES:
        with concurrent.futures.ThreadPoolExecutor(AVERAGE_PRECISION_THREADS) as pool:
            per_class = list(pool.map(of_class, range(num_classes)))
    else:
        per_class = [of_class(k) for k in range(num_classes)]
    tp, fp, ap = zip(*per_class) if per_class else ((), (), ())
    shape = (num_classes, thresholds.size)
    return (
        np.array(tp, dtype=np.int64).reshape(shape),
        np.array(fp, dtype=np.int64).reshape(shape),
        np.array(ap, dtype=np.float64),
    )


def _float32_class_counts(pieces, n, wide, edge_keys, k):
    """Class k's ``(tp [T], fp [T], ap)`` from its sorted `_float32_sort_keys`.

    A score reaches an edge exactly when its key is at or above the edge's key with the lowest
    bit 0 (`_float32_keys`), so the examples reaching threshold j are those from
    ``searchsorted(keys, edge_keys[j])`` on.
    """
    keys, positives = _float32_sort_keys(pieces, k, n, wide)
    keys.sort()
    reach_from = np.searchsorted(keys, edge_keys, side="left")
    precision_sum, positives_below = _precision_sum(keys, positives, reach_from)
    tp = positives - positives_below
    fp = (n - reach_from) - tp
    return tp, fp, precision_sum / positives if positives else np.nan


def _other_class_counts(pieces, thresholds, k):
    """Class k's ``(tp [T], fp [T], ap)`` for scores other than float32, compared in float64.

    The AP is the same sum as `_precision_sum`, by binary search: with every score sorted and
    the positives' scores sorted, the first of a run of equal positive scores ``v`` has
    ``#{positives < v}`` positives and ``#{examples < v}`` examples below it.
    """
    column = np.concatenate([_comparable_scores(scores[:, k]) for _, scores in pieces])
    positive_scores = np.sort(column[np.concatenate([ids == k for ids, _ in pieces])])
    positives = positive_scores.size
    column.sort()  # a copy made by concatenate
    reached = column.size - np.searchsorted(column, thresholds, side="left")
    tp = positives - np.searchsorted(positive_scores, thresholds, side="left")
    if positives == 0:
        return tp, reached - tp, np.nan
    run_starts = np.flatnonzero(
        np.concatenate([[True], positive_scores[1:] != positive_scores[:-1]])
    )
    lengths = np.diff(run_starts, append=positives)
    examples_below = np.searchsorted(column, positive_scores[run_starts], side="left")
    precision = (positives - run_starts) / (column.size - examples_below)
    return tp, reached - tp, float((lengths * precision).sum()) / positives


def _float32_keys(values, wide):
    """Order-preserving unsigned integers of float32 ``values``, shifted left by one (the free
    lowest bit carries the label in `_float32_sort_keys`).

    Without negative values (``wide`` False) the bits of a value, shifted left by one, are in
    order and fit 32 bits: the sign bit is shifted out, so -0.0 becomes +0.0. Otherwise
    (uint64) they are mapped to an order-preserving unsigned integer first: every bit of a
    negative flipped, only the sign bit of the rest (after -0.0 is made +0.0). Negative values
    given with ``wide`` False (thresholds, which every non-negative score reaches) become 0.
    """
    values = np.asarray(values, dtype=np.float32)
    if not wide:
        keys = np.left_shift(values.view(np.uint32), 1)
        keys[values < 0] = 0
        return keys
    bits = (values + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into +0.0
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones for negatives, else 0
    flip |= _FLOAT32_SIGN
    return (bits ^ flip).astype(np.uint64) << np.uint64(1)


def _float32_sort_keys(pieces, k, n, wide):
    """``(keys, positives)``: one integer per example, `_float32_keys` of class k's score with
    in the lowest bit 0 for the class's own examples (``positives`` of them), 1 for the others:
    ascending keys are ascending scores with, among equal scores, the positives first. Built
    block by block into one buffer.
    """
    keys = np.empty(n, dtype=np.uint64 if wide else np.uint32)
    filled = positives = 0
    for ids, scores in pieces:
        column = scores[:, k]
        for begin in range(0, ids.size, _BLOCK):
            negative = ids[begin:begin + _BLOCK] != k
            part = keys[filled:filled + negative.size]
            if wide:
                part[:] = _float32_keys(column[begin:begin + _BLOCK], wide)
            else:
                np.left_shift(column[begin:begin + _BLOCK].view(np.uint32), 1, out=part)
            np.bitwise_or(part, negative, out=part)
            filled += part.size
            positives += negative.size - np.count_nonzero(negative)
    return keys, positives


def _precision_sum(keys, total_positives, marks):
    """``(sum, below)``: the sum over the positives of ``#{positives >= s} / #{examples >= s}``,
    s the positive's score, and the number of positives before each of the ascending
    positions ``marks``.

    ``keys`` are one class's sorted `_float32_sort_keys`: ascending scores, positives (the even
    keys) first among equal scores, and two positives have equal scores exactly when their
    keys are equal. So the first positive of a run of equal scores starts its group: the
    examples at or above its score are those from its position on, the positives those from
    its rank among positives on, and the rest of the run shares its precision. Followed block
    by block, so beyond the keys only a few blocks of memory are used.
    """
    n = keys.size
    below = np.full(marks.size, total_positives, dtype=np.int64)  # marks at n: every positive
    total = 0.0
    positives_before = 0  # positives in the blocks before
    last_key = None  # key of the last positive seen, and the precision of its run
    run_precision = 0.0
    for begin in range(0, n, _BLOCK):
        block = keys[begin:begin + _BLOCK]
        where = np.flatnonzero((block & 1) == 0)
        first, last = np.searchsorted(marks, [begin, begin + block.size])
        below[first:last] = positives_before + np.searchsorted(where, marks[first:last] - begin)
        if where.size == 0:
            continue
        values = block[where]
        starts_run = np.empty(where.size, dtype=bool)
        starts_run[0] = last_key is None or values[0] != last_key
        np.not_equal(values[1:], values[:-1], out=starts_run[1:])
        heads = np.flatnonzero(starts_run)  # ranks among the block's positives
        continued = heads[0] if heads.size else where.size  # the previous block's last run
        total += continued * run_precision
        if heads.size:
            lengths = np.diff(heads, append=where.size)
            precision = (total_positives - positives_before - heads) / (n - begin - where[heads])
            total += float((lengths * precision).sum())
            run_precision = float(precision[-1])
        last_key = values[-1]
        positives_before += where.size
    return total, below


def average_precision_from_counts(tp, fp, positives):
    """Average precision of every class from threshold counts, shape ``[C]`` (float64).

    The same step-wise sum as `average_precision`, over the thresholds of the grid instead of
    every distinct score: it equals the exact AP of the scores rounded down to the grid (and
    ignores scores below the first threshold). Used when the scores themselves were not kept.
    NaN for a class with no positive.
    """
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    positives = np.asarray(positives, dtype=np.float64)
    gained = tp - np.concatenate([tp[:, 1:], np.zeros((tp.shape[0], 1))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        return np.where(positives > 0, (gained * precision).sum(axis=1) / positives, np.nan)


# How the average precision of a `ClassificationCounts` is computed.
AP_EXACT = "exact"  # from every score (`average_precision`)
AP_THRESHOLD_GRID = "threshold_grid"  # from the threshold counts (`average_precision_from_counts`)


class ClassificationCounts:
    """Accumulates one split's counts batch by batch (confusion, threshold counts, AP scores).

    With ``keep_scores`` (the default) the scores needed for exact AP are kept (``n x C``, in
    the dtype they come in: float32 from Keras), and the threshold counts and the AP are made
    together from them when first read (`_exact_counts`: one sort per class gives both).
    Without, batches are counted as they arrive, nothing grows with the number of examples and
    the AP is the threshold-grid AP (`average_precision_from_counts`). Rows with a non-finite
    score are counted in ``invalid`` and left out of everything else.
    """

    def __init__(self, num_classes, thresholds, keep_scores=True):
        self.num_classes = int(num_classes)
        self.thresholds = validate_thresholds(thresholds)
        self.keep_scores = bool(keep_scores)
        size = (self.num_classes, self.thresholds.size)
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._added_tp = np.zeros(size, dtype=np.int64)  # counts made elsewhere or streamed
        self._added_fp = np.zeros(size, dtype=np.int64)
        self.invalid = 0
        self._label_dtype = np.min_scalar_type(self.num_classes - 1)
        self._kept = []  # (ids, scores) pieces of about _BLOCK rows or more
        self._arriving = []  # the batches since, merged into a piece at _BLOCK rows
        self._arriving_rows = 0
        self._exact = None  # (tp, fp, ap) of the kept scores, until the next update

    def update(self, y_true, scores, y_pred):
        """Count one batch: ids ``[b]``, scores ``[b, C]``, predicted ids ``[b]``."""
        scores = np.asarray(scores)
        finite = np.isfinite(scores)
        if not finite.all():
            # Per row only now: a reduction along a short row is many times slower.
            finite = finite.all(axis=1)
            self.invalid += int((~finite).sum())
            y_true, scores, y_pred = y_true[finite], scores[finite], y_pred[finite]
        self.confusion += confusion_matrix(y_true, y_pred, self.num_classes)
        if not self.keep_scores:
            tp, fp = threshold_counts(y_true, scores, self.thresholds)
            self.add(0, tp, fp)
            return
        self._arriving.append((np.asarray(y_true).astype(self._label_dtype), scores))
        self._arriving_rows += scores.shape[0]
        if self._arriving_rows >= _BLOCK:
            self._merge_arriving()
        self._exact = None

    def _merge_arriving(self):
        # Few large pieces: the exact counts loop over them class by class. A single batch is
        # kept as it is, not copied.
        if len(self._arriving) == 1:
            self._kept.append(self._arriving[0])
        elif self._arriving:
            self._kept.append(tuple(np.concatenate(parts) for parts in zip(*self._arriving)))
        self._arriving, self._arriving_rows = [], 0

    def _exact_counts(self):
        if self._exact is None:
            self._merge_arriving()
            self._exact = _exact_counts(self._kept, self.num_classes, self.thresholds)
        return self._exact

    def add(self, confusion, tp, fp, invalid=0):
        """Add counts made elsewhere (e.g. by the Keras metric, `keras_metric`)."""
        self.confusion += confusion
        self._added_tp += tp
        self._added_fp += fp
        self.invalid += int(invalid)

    @property
    def tp(self):
        """True positives ``[C, T]`` of ``score >= threshold`` (see `threshold_counts`)."""
        if not self.keep_scores:
            return self._added_tp
        return self._added_tp + self._exact_counts()[0]

    @property
    def fp(self):
        """False positives ``[C, T]`` of ``score >= threshold`` (see `threshold_counts`)."""
        if not self.keep_scores:
            return self._added_fp
        return self._added_fp + self._exact_counts()[1]

    @property
    def count(self):
        """Number of valid examples counted."""
        return int(self.confusion.sum())

    @property
    def average_precision_method(self):
        """`AP_EXACT` when the scores are kept, `AP_THRESHOLD_GRID` otherwise."""
        return AP_EXACT if self.keep_scores else AP_THRESHOLD_GRID

    def average_precision(self):
        """AP per class over every valid example seen so far (see `average_precision_method`).

        The exact AP is computed one class at a time, so at most one column of sort keys is
        held on top of the kept scores.
        """
        if not self.keep_scores:
            return average_precision_from_counts(self.tp, self.fp, self.confusion.sum(axis=1))
        return self._exact_counts()[2].copy()

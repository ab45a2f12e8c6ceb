"""Exact threshold counts and average precision from sorted scores.

Private to `counting`: one sort per class gives both the exact average precision and, by a
binary search per threshold, the counts at every stored threshold.
"""

import concurrent.futures
import functools
import os

import numpy as np

from tb_metricsdiag.core import calibration as calibration_lib
from tb_metricsdiag.core._blocks import BLOCK as _BLOCK
from tb_metricsdiag.core._blocks import count_into as _count_into
from tb_metricsdiag.core._blocks import is_complement as _is_complement
from tb_metricsdiag.core._bucketing import _comparable_scores, comparison_edges

_FLOAT32_SIGN = np.uint32(1 << 31)


# Classes whose exact AP is computed at once, each in its own thread: NumPy's sort and
# array loops release the GIL. 1 computes them one after the other in the calling thread.
AVERAGE_PRECISION_THREADS = min(2, os.cpu_count() or 1)


# Fewer examples than this are computed in the calling thread: a class then sorts so fast that
# starting threads and sharing the GIL cost more than they save (docs/benchmarks.md).
_THREADED_EXAMPLES = 1 << 18


def _is_positive(labels, k):
    """Which rows of ``labels`` are positives of class k: class ids ``[m]`` equal to k, or
    multi-hot rows ``[m, K]`` (bool) with label k set.
    """
    return labels == k if labels.ndim == 1 else labels[:, k]


def _exact_counts(pieces, num_classes, thresholds, with_calibration=False, complementary=None):
    """``(tp, fp, ap, auc)`` of the examples of ``pieces``, a list of ``(labels, scores [m, C])``
    with ``labels`` class ids ``[m]`` or multi-hot bool rows ``[m, C]`` (`_is_positive`):
    the `threshold_counts` at ``thresholds`` (``[C, T]``, T may be 0), the exact
    `average_precision` and the exact one-vs-rest ROC AUC (`_roc_auc`), each ``[C]``.
    ``with_calibration`` (two classes, class ids): a fifth element, the calibration bins of
    the class-1 scores against the 1s (`calibration.calibration_bins`), from class 1's sorted
    keys where the scores are sorted and in [0, 1] (`_sorted_key_calibration`).
    ``complementary``: whether every row of two float32 columns is a sigmoid's ``[1 - p, p]``
    (`_complementary`), when already known; None to find out.

    float32 scores are sorted as one integer key per example (`_float32_sort_keys`), faster
    than an argsort; the sorted keys then give the AP (`_precision_sum`) and, by
    a binary search per threshold, the threshold counts at almost no extra cost. Scores of few
    distinct values (float16 or bfloat16 outputs, quantised scores: `_histogram_spacing`) are
    counted in a histogram of their values instead, with no sort at all. Other dtypes
    are compared in float64 and counted the same way on sorted scores (`_other_class_counts`).
    Each class is computed on its own (one column of keys or scores at a time), from
    `_THREADED_EXAMPLES` examples on `AVERAGE_PRECISION_THREADS` classes at once.
    """
    n = sum(len(labels) for labels, _ in pieces)
    counts = _exact_class_counts(
        pieces, num_classes, thresholds, n, with_calibration, complementary
    )
    if with_calibration and len(counts) == 4:
        counts += (_calibration_of_class_one(pieces),)
    return counts


def _exact_class_counts(pieces, num_classes, thresholds, n, with_calibration, complementary):
    """`_exact_counts`, with the calibration bins as a fifth element where they come from the
    sorted keys.
    """
    if all(scores.dtype == np.float32 for _, scores in pieces):
        # Negative scores (or NaNs with the sign bit) need the sign in the key: 64-bit keys.
        wide = any(
            scores.size and scores.view(np.uint32).max() > _FLOAT32_SIGN for _, scores in pieces
        )
        edges = comparison_edges(thresholds, np.float32)
        spacing = None if wide else _histogram_spacing(pieces, n)
        if spacing is not None:
            of_class = functools.partial(_histogram_class_counts, pieces, n, spacing, edges)
        else:
            edge_keys = _float32_keys(edges, wide)
            if num_classes == 2 and not wide and all(labels.ndim == 1 for labels, _ in pieces):
                per_class, bins = _binary_float32_counts(
                    pieces, n, edge_keys, with_calibration, complementary
                )
                counts = _stacked(per_class, thresholds.size)
                return counts if bins is None else counts + (bins,)
            of_class = functools.partial(_float32_class_counts, pieces, n, wide, edge_keys)
    else:
        of_class = functools.partial(_other_class_counts, pieces, thresholds)
    if _threaded(num_classes, n):
        with concurrent.futures.ThreadPoolExecutor(AVERAGE_PRECISION_THREADS) as pool:
            per_class = list(pool.map(of_class, range(num_classes)))
    else:
        per_class = [of_class(k) for k in range(num_classes)]
    return _stacked(per_class, thresholds.size)


def _threaded(num_classes, n):
    return AVERAGE_PRECISION_THREADS > 1 and num_classes > 1 and n >= _THREADED_EXAMPLES


def _stacked(per_class, num_thresholds):
    """``(tp [C, T], fp [C, T], ap [C], auc [C])`` of each class's ``(tp, fp, ap, auc)``."""
    num_classes = len(per_class)
    tp, fp, ap, auc = zip(*per_class) if per_class else ((), (), (), ())
    shape = (num_classes, num_thresholds)
    return (
        np.array(tp, dtype=np.int64).reshape(shape),
        np.array(fp, dtype=np.int64).reshape(shape),
        np.array(ap, dtype=np.float64),
        np.array(auc, dtype=np.float64),
    )


def _float32_class_counts(pieces, n, wide, edge_keys, k):
    """Class k's ``(tp [T], fp [T], ap, auc)`` from its sorted `_float32_sort_keys`.

    A score reaches an edge exactly when its key is at or above the edge's key with the lowest
    bit 0 (`_float32_keys`), so the examples reaching threshold j are those from
    ``searchsorted(keys, edge_keys[j])`` on.
    """
    keys, positives = _float32_sort_keys(pieces, k, n, wide)
    keys.sort()
    return _sorted_key_counts(keys, positives, edge_keys)


def _sorted_key_counts(keys, positives, edge_keys, with_auc=True):
    """`_float32_class_counts` of one class's sorted keys, ``positives`` of them even; the
    ROC AUC left NaN unless ``with_auc``.
    """
    n = keys.size
    reach_from = np.searchsorted(keys, edge_keys, side="left")
    precision_sum, positives_below, wins = _precision_sum(keys, positives, reach_from, with_auc)
    tp = positives - positives_below
    fp = (n - reach_from) - tp
    negatives = n - positives
    auc = wins / (float(positives) * negatives) if with_auc and positives and negatives else np.nan
    return tp, fp, precision_sum / positives if positives else np.nan, auc


def _binary_float32_counts(pieces, n, edge_keys, with_calibration, complementary=None):
    """`_float32_class_counts` of both classes of a binary problem: class ids ``[m]`` and
    non-negative float32 scores ``[m, 2]``; ``(a list of two (tp, fp, ap, auc), bins)``,
    ``bins`` the `_sorted_key_calibration` of class 1's keys when ``with_calibration`` and
    the scores are at most 1, else None.

    A sigmoid's ``[1 - p, p]`` needs one sort: when every row's class-0 score is the float32
    ``1 - p`` of its class-1 score (`_complementary`), class 0's sorted keys follow from class
    1's (`_complement_keys`); when no two class-1 scores round to one ``1 - p``, the two
    classes' rankings are each other's reverse and class 0's ROC AUC is class 1's. Otherwise
    each class is sorted on its own. With threads, the check runs while class 1's keys are
    sorted, and each class's pass over its keys in its own thread. ``complementary``: the
    check's answer when known already (`labels.two_column_scores`), None to check.
    """
    known = complementary

    def sorted_one():
        keys, positives = _float32_sort_keys(pieces, 1, n, False)
        keys.sort()
        return keys, positives

    def zero(complementary, keys, positives):
        if not complementary:
            return _float32_class_counts(pieces, n, False, edge_keys, 0), False
        derived, one_to_one = _complement_keys(keys)
        return _sorted_key_counts(derived, n - positives, edge_keys, not one_to_one), one_to_one

    def bins(keys):
        if with_calibration and (not n or keys[-1] >> 1 <= _ONE_BITS):
            return _sorted_key_calibration(keys, calibration_lib.DEFAULT_NUM_BINS)
        return None

    def class_one(keys, positives):
        return _sorted_key_counts(keys, positives, edge_keys), bins(keys)

    if not _threaded(2, n):
        keys, positives = sorted_one()
        one, calibration = class_one(keys, positives)
        complementary = _complementary(pieces) if known is None else known
        counts, reversed_ranking = zero(complementary, keys, positives)
    else:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            sorting = pool.submit(sorted_one)
            complementary = _complementary(pieces) if known is None else known
            keys, positives = sorting.result() if complementary else (None, None)
            # Queued after the sort: the one worker runs class 1's pass (with the ties, the
            # longer) and the calibration bins while this thread runs class 0's (its own keys
            # and sort when the scores are not complementary).
            pending = pool.submit(lambda: class_one(*sorting.result()))
            counts, reversed_ranking = zero(complementary, keys, positives)
            one, calibration = pending.result()
    if reversed_ranking:  # the same pairs won and tied, positives and negatives swapped
        counts = counts[:3] + one[3:]
    return [counts, one], calibration


_ONE_BITS = np.float32(1).view(np.uint32)


@functools.lru_cache(maxsize=4)
def _calibration_edges(num_bins):
    """The smallest float32 ``x`` of each bin ``b >= 1`` of `calibration.calibration_bins`,
    which bins ``x`` by the float32 product ``x * num_bins`` rounded down: ``[num_bins - 1]``.
    """
    scale = np.float32(num_bins)
    edges = []
    for b in range(1, num_bins):
        x = np.float32(b / num_bins)
        while x * scale >= b:
            x = np.nextafter(x, np.float32(0))
        while x * scale < b:
            x = np.nextafter(x, np.float32(2))
        edges.append(x)
    return np.array(edges, dtype=np.float32)


def _sorted_key_calibration(keys, num_bins):
    """`calibration.calibration_bins` of the scores of one class's sorted 32-bit keys (scores
    in [0, 1]) against its positives: ``(count, confidence_sum, correct)``, each ``[B]``.

    A bin is a run of the sorted keys, from the first at or above its edge's key: its count
    is the run's length, its correct ones the run's even keys, its confidence sum the run's
    scores summed in float64, block by block.
    """
    n = keys.size
    edge_keys = np.left_shift(_calibration_edges(num_bins).view(np.uint32), 1)
    bounds = np.concatenate([[0], np.searchsorted(keys, edge_keys, side="left"), [n]])
    count = np.diff(bounds).astype(np.int64)
    confidence_sum = np.zeros(num_bins, dtype=np.float64)
    negatives = np.zeros(num_bins, dtype=np.int64)
    work = np.empty(min(n, _BLOCK), dtype=np.uint32)
    for begin in range(0, n, _BLOCK):
        block = keys[begin : begin + _BLOCK]
        part = work[: block.size]
        local = np.clip(bounds - begin, 0, block.size)
        filled = np.flatnonzero(local[1:] > local[:-1])
        np.right_shift(block, 1, out=part)
        scores = part.view(np.float32)
        for b in filled:
            confidence_sum[b] += scores[local[b] : local[b + 1]].sum(dtype=np.float64)
        np.bitwise_and(block, 1, out=part)
        for b in filled:
            negatives[b] += np.count_nonzero(part[local[b] : local[b + 1]])
    return count, confidence_sum, count - negatives


def _calibration_of_class_one(pieces):
    """`calibration.calibration_bins` of every piece's class-1 scores against its 1s."""
    bins = [
        calibration_lib.calibration_bins(scores[:, 1], labels == 1) for labels, scores in pieces
    ]
    if not bins:
        return calibration_lib.calibration_bins(np.empty(0, np.float32), np.empty(0, bool))
    return tuple(np.sum(parts, axis=0) for parts in zip(*bins))


def _complementary(pieces):
    """Whether every row's class-0 score equals ``1 - s`` in float32, ``s`` its class-1
    score: a single sigmoid unit's ``[1 - p, p]``. Block by block; most other scores (a
    2-unit softmax's) differ in the first block already.
    """
    for _, scores in pieces:
        complement = np.empty(min(scores.shape[0], _BLOCK), dtype=np.float32)
        for begin in range(0, scores.shape[0], _BLOCK):
            block = scores[begin : begin + _BLOCK]
            if not _is_complement(block[:, 0], block[:, 1], complement[: block.shape[0]]):
                return False
    return True


def _complement_keys(keys):
    """Class 0's sorted `_float32_sort_keys` from class 1's ``keys`` (sorted) when every
    class-0 score is the float32 ``1 - s`` of the class-1 score ``s`` (`_complementary`), the
    class ids 0 and 1.

    ``1 - s`` rounded to float32 falls as ``s`` rises, so class 1's keys backwards give class
    0's scores in ascending order, and each example's label bit is flipped (a class-1 positive
    is a class-0 negative). Among equal scores the class-1 keys put the class-0 positives last,
    so backwards first, as class 0's keys must. Only where rounding merges distinct ``s`` into
    one ``1 - s`` (below 0.5) may a negative then come before a positive of the same score:
    a stable sort (timsort: linear on ascending runs) mends those few places.

    Returns ``(keys, one_to_one)``: ``one_to_one`` when every class-1 score ``s`` is ``1 - (1 -
    s)`` in float32, so that no two distinct ``s`` share a ``1 - s``.
    """
    n = keys.size
    derived = np.empty_like(keys)
    size = min(n, _BLOCK)
    bits = np.empty(size, dtype=keys.dtype)
    complement = np.empty(size, dtype=np.float32)
    undone = np.empty(size, dtype=np.float32)
    one = np.float32(1)
    one_to_one = True
    # Each block forwards (contiguous operands: vector loops), written backwards at the end.
    for begin in range(0, n, _BLOCK):
        block = keys[begin : begin + _BLOCK]
        m = block.size
        scores = np.right_shift(block, 1, out=bits[:m]).view(np.float32)
        np.subtract(one, scores, out=complement[:m])
        if one_to_one:
            np.subtract(one, complement[:m], out=undone[:m])
            one_to_one = np.array_equal(undone[:m], scores)
        derived_bits = np.left_shift(complement[:m].view(keys.dtype), 1, out=bits[:m])
        derived_bits |= 1
        derived_bits ^= block & 1
        np.copyto(derived[n - begin - m : n - begin], derived_bits[::-1])
    # One-to-one, no two scores merged: the keys are in order already.
    if not one_to_one and (derived[1:] < derived[:-1]).any():
        derived.sort(kind="stable")
    return derived, one_to_one


# A histogram of the scores' values replaces the sort when they fall in at most this many bins
# (and no more than there are examples): float16 scores in [0, 1] span about 2^17, bfloat16
# ones about 2^14.
_HISTOGRAM_BINS = 1 << 20

# Scores in [0, 1] span 2^30 bit patterns: more than `_HISTOGRAM_BINS` unless each is a multiple
# of 2^10, so a set bit among the lowest 10 rules the histogram out.
_FEW_VALUES_MASK = (1 << 10) - 1


def _histogram_spacing(pieces, n):
    """``(shift, low, bins)`` when the non-negative float32 scores of ``pieces`` take few
    distinct bit patterns: every score's bits are a multiple of ``2**shift`` (the trailing
    zero bits all of them share; 13 for float16 values, 16 for bfloat16 ones), and ``bits >>
    shift`` lies in ``[low, low + bins)`` with ``bins`` at most `_HISTOGRAM_BINS` and ``n``.
    None otherwise (full float32 precision: the scores are sorted).
    """
    scores = [s.view(np.uint32) for _, s in pieces if s.size]
    if not scores:
        return None
    # Full-precision scores show it in their first rows already: no pass over them all.
    if int(np.bitwise_or.reduce(scores[0][:_BLOCK], axis=None)) & _FEW_VALUES_MASK:
        return None
    common = int(np.bitwise_or.reduce([np.bitwise_or.reduce(s, axis=None) for s in scores]))
    if common == 0:
        return 0, 0, 1  # every score is +0.0
    shift = (common & -common).bit_length() - 1
    low = min(int(s.min()) for s in scores) >> shift
    bins = (max(int(s.max()) for s in scores) >> shift) - low + 1
    return (shift, low, bins) if bins <= min(_HISTOGRAM_BINS, n) else None


def _histogram_class_counts(pieces, n, spacing, edges, k):
    """Class k's ``(tp [T], fp [T], ap, auc)`` from histograms of its scores' values
    (`_histogram_spacing`): bin b holds the score of bits ``(low + b) << shift``, ascending in
    value. The AP and the ROC AUC are the sums of `_precision_sum` with a bin for each run of
    equal scores; a threshold is reached by the bins from the first whose score is at or above
    its float32 edge.
    """
    shift, low, bins = spacing
    every = np.zeros(bins, dtype=np.int64)
    positive = np.zeros(bins, dtype=np.int64)
    for labels, scores in pieces:
        column = scores[:, k]
        for begin in range(0, len(labels), _BLOCK):
            index = (column[begin : begin + _BLOCK].view(np.uint32) >> shift).astype(np.intp)
            index -= low
            _count_into(every, index)
            _count_into(positive, index[_is_positive(labels[begin : begin + _BLOCK], k)])
    at_or_above = np.cumsum(every[::-1])[::-1]
    positives_at_or_above = np.cumsum(positive[::-1])[::-1]
    # Non-negative edges: the first bin at or above each; a negative edge is reached by all.
    edge_bits = np.maximum(edges, 0).astype(np.float32).view(np.uint32).astype(np.int64)
    reach_from = np.clip(-((-edge_bits) >> shift) - low, 0, bins)
    tp = np.append(positives_at_or_above, 0)[reach_from]
    fp = np.append(at_or_above, 0)[reach_from] - tp
    positives = int(positive.sum())
    negatives = n - positives
    if positives == 0:
        return tp, fp, np.nan, np.nan
    filled = np.flatnonzero(positive)
    hits = positive[filled]
    ap = float((hits * (positives_at_or_above[filled] / at_or_above[filled])).sum()) / positives
    if negatives == 0:
        return tp, fp, ap, np.nan
    negative = every - positive
    negatives_below = np.cumsum(negative) - negative
    # Twice the wins, in integers: each pair won counts 2, each tie 1.
    twice_wins = int((hits * (2 * negatives_below[filled] + negative[filled])).sum())
    return tp, fp, ap, twice_wins / (2.0 * positives * negatives)


def _other_class_counts(pieces, thresholds, k):
    """Class k's ``(tp [T], fp [T], ap, auc)`` for scores other than float32, compared in float64.

    The AP is the same sum as `_precision_sum`, by binary search: with every score sorted and
    the positives' scores sorted, the first of a run of equal positive scores ``v`` has
    ``#{positives < v}`` positives and ``#{examples < v}`` examples below it.
    """
    column = np.concatenate([_comparable_scores(scores[:, k]) for _, scores in pieces])
    positive_scores = np.sort(
        column[np.concatenate([_is_positive(labels, k) for labels, _ in pieces])]
    )
    positives = positive_scores.size
    column.sort()  # a copy made by concatenate
    reached = column.size - np.searchsorted(column, thresholds, side="left")
    tp = positives - np.searchsorted(positive_scores, thresholds, side="left")
    if positives == 0:
        return tp, reached - tp, np.nan, np.nan
    run_starts = np.flatnonzero(
        np.concatenate([[True], positive_scores[1:] != positive_scores[:-1]])
    )
    lengths = np.diff(run_starts, append=positives)
    examples_below = np.searchsorted(column, positive_scores[run_starts], side="left")
    precision = (positives - run_starts) / (column.size - examples_below)
    ap = float((lengths * precision).sum()) / positives
    return tp, reached - tp, ap, _roc_auc(column, positive_scores)


def _roc_auc(values, positive_values):
    """Exact ROC AUC from the ascending ``values`` of every example and the ascending values
    of the positives among them: the probability that a positive scores above a negative,
    ties counting one half (the Mann-Whitney statistic; scikit-learn's ``roc_auc_score``).
    NaN without positives or without negatives.
    """
    positives = positive_values.size
    negatives = values.size - positives
    if positives == 0 or negatives == 0:
        return np.nan
    run_starts = np.flatnonzero(
        np.concatenate([[True], positive_values[1:] != positive_values[:-1]])
    )
    lengths = np.diff(run_starts, append=positives)
    heads = positive_values[run_starts]
    below = np.searchsorted(values, heads, side="left")
    equal = np.searchsorted(values, heads, side="right") - below - lengths
    negatives_below = below - run_starts
    wins = float((lengths * (negatives_below + 0.5 * equal)).sum())
    return wins / (float(positives) * float(negatives))


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
    for labels, scores in pieces:
        column = scores[:, k]
        for begin in range(0, len(labels), _BLOCK):
            negative = ~_is_positive(labels[begin : begin + _BLOCK], k)
            part = keys[filled : filled + negative.size]
            if wide:
                part[:] = _float32_keys(column[begin : begin + _BLOCK], wide)
            else:
                np.left_shift(column[begin : begin + _BLOCK].view(np.uint32), 1, out=part)
            np.bitwise_or(part, negative, out=part)
            filled += part.size
            positives += negative.size - np.count_nonzero(negative)
    return keys, positives


def _precision_sum(keys, total_positives, marks, with_wins=True):
    """``(sum, below, wins)``: the sum over the positives of ``#{positives >= s} /
    #{examples >= s}``, s the positive's score; the number of positives before each of the
    ascending positions ``marks``; and the Mann-Whitney count of (positive, negative) pairs the
    positive wins, a tie counting one half (the ROC AUC times positives times negatives); not
    counted (None) unless ``with_wins``.

    The negatives below a positive are the examples before it minus the positives before it
    (negatives of an equal score come after the positives), and its tied negatives, if any,
    follow the last positive of its score: only those runs need a binary search.

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
    last_key = None  # key of the last positive seen, and the precision of its score
    run_precision = 0.0
    position_sum = 0  # of the positives, to count the negatives below them
    ties = 0  # (positive, negative) pairs of equal scores
    for begin in range(0, n, _BLOCK):
        block = keys[begin : begin + _BLOCK]
        where = np.flatnonzero((block & 1) == 0)
        first, last = np.searchsorted(marks, [begin, begin + block.size])
        below[first:last] = positives_before + np.searchsorted(where, marks[first:last] - begin)
        if where.size == 0:
            continue
        values = block[where]
        if with_wins:
            position_sum += begin * where.size + int(where.sum())
            ties += _tied_pairs(keys, begin, begin + block.size)
        remaining = total_positives - positives_before
        # Each positive's precision as if it were the first of its score, then the others of a
        # score (few: equal float32 scores) given their first's: a search within the block.
        # In float64 from the start: int64 operands would each be converted for the division.
        examples_at_or_above = where.astype(np.float64)
        np.subtract(n - begin, examples_at_or_above, out=examples_at_or_above)
        precision = np.arange(remaining, remaining - where.size, -1, dtype=np.float64)
        precision /= examples_at_or_above
        total += float(precision.sum())
        followers = np.flatnonzero(values[1:] == values[:-1])
        if followers.size:
            followers += 1
            leaders = np.searchsorted(values, values[followers], side="left")
            total += float((precision[leaders] - precision[followers]).sum())
        leader = np.searchsorted(values, values[-1], side="left")  # of the block's last score
        if last_key is not None and values[0] == last_key:  # the last block's score goes on
            continued = np.searchsorted(values, last_key, side="right")
            total += int(continued) * (run_precision - float(precision[0]))
            if leader > 0:
                run_precision = float(precision[leader])
        else:
            run_precision = float(precision[leader])
        last_key = values[-1]
        positives_before += where.size
    if not with_wins:
        return total, below, None
    below_pairs = position_sum - total_positives * (total_positives - 1) // 2
    return total, below, below_pairs + 0.5 * ties


def _tied_pairs(keys, begin, end):
    """Pairs of a positive and a negative of equal score, counted at the scores whose last
    positive lies in ``keys[begin:end]`` (sorted `_float32_sort_keys`).

    A positive key directly followed by its score's negative key (the two differ in the lowest
    bit only) ends its score's positives; those positives times the negatives after them are
    the tied pairs of that score. Most such scores have one positive and one negative (the
    keys either side differ); the longer runs are searched in the block (in the CPU cache),
    in all the keys only when one may reach past it.
    """
    block = keys[begin : end + 1]  # and the key after it
    ends = np.flatnonzero((block[1:] ^ block[:-1]) == 1)
    if ends.size == 0:
        return 0
    tied = block[ends]
    one = tied.dtype.type(1)
    inside = (ends > 0) & (ends + 2 < block.size)
    longer = ~inside
    longer[inside] = (block[ends[inside] - 1] == tied[inside]) | (
        block[ends[inside] + 2] == tied[inside] | one
    )
    ends, tied = ends[longer], tied[longer]
    pairs = longer.size - ends.size  # one positive and one negative each
    first = np.searchsorted(block, tied, side="left")
    after = np.searchsorted(block, tied | one, side="right")
    spill = (first == 0) | (after == block.size)
    if spill.any():
        first[spill] = np.searchsorted(keys, tied[spill], side="left") - begin
        after[spill] = np.searchsorted(keys, tied[spill] | one, side="right") - begin
    return pairs + int(((ends + 1 - first) * (after - ends - 1)).sum())

"""From labels and scores to counts: the numeric core the callback, writers and tests share.

Pure NumPy. Everything here is linear in the number of examples (bucketing scores against the
threshold grid replaces a sort per threshold) except `average_precision`, which is exact and
therefore sorts once per class.

Conventions: ``y_true`` holds integer class ids in ``[0, C)``; ``scores`` is ``[n, C]`` with the
score of each class (one-vs-rest), ``y_pred`` the predicted class ids. Where the rows fall
into groups (the slices of a group key), ``groups`` holds each row's group id in
``[0, num_groups)`` and every count gains a leading ``[num_groups]`` dimension: one pass counts
every group (`check_groups`).
"""

import functools
import math

import numpy as np

from tb_metricsdiag.core import calibration as calibration_lib
from tb_metricsdiag.core import metrics as metrics_lib
from tb_metricsdiag.core._blocks import BLOCK as _BLOCK
from tb_metricsdiag.core._blocks import count_into as _count_into
from tb_metricsdiag.core._bucketing import (  # noqa: F401 (comparison_edges, threshold_bucket: public)
    _bucketing,
    _comparable_dtype,
    _comparable_scores,
    comparison_edges,
    threshold_bucket,
)
from tb_metricsdiag.core._groups import check_groups  # public
from tb_metricsdiag.core._ranking import _exact_counts

DEFAULT_NUM_THRESHOLDS = 201

DEFAULT_LOGIT_RANGE = 9.0
"""The default grid's thresholds inside (0, 1) have logits evenly spaced over ``[-9, 9]``:
wide enough for the tails where a rare class's operating points lie, narrow enough that the
201 values stay dense where most operating points lie (docs/format.md, "The default
thresholds", gives the measurements).
"""

# Beyond, sigmoid(L) is 1.0 in float64 and the grid would not be strictly ascending.
MAX_LOGIT_RANGE = 30.0

_ROUNDING_SHIFT = 1 / 8
"""Rounding a default threshold to a short decimal moves its logit by at most this share of
the grid's logit step, so the grid stays evenly spaced in logit to within it."""


def default_thresholds(num_thresholds=DEFAULT_NUM_THRESHOLDS):
    """The default threshold grid: `logit_thresholds` over `DEFAULT_LOGIT_RANGE`.

    >>> default_thresholds()[[0, 1, 2, 99, 100, 101, 199, 200]].tolist()
    [0.0, 0.000123, 0.000135, 0.477, 0.5, 0.523, 0.999877, 1.0]
    """
    return logit_thresholds(num_thresholds, DEFAULT_LOGIT_RANGE)


def logit_thresholds(num_thresholds, logit_range):
    """A threshold grid of 0, 1, and ``num_thresholds - 2`` values evenly spaced in logit
    between them (``sigmoid(z)``, ``z`` evenly spaced over ``[-L, L]``, L = ``logit_range``);
    float64, strictly ascending. The format stores such a grid as its two parameters
    (`threshold_grid.encode_thresholds`), so this definition is part of it (``docs/format.md``).

    Why logit spacing: the threshold grid is fixed for a run, and a model's scores for a rare
    class cluster near 0 (and those of the common class near 1). Evenly spaced values in
    [0, 1] put a handful of thresholds where a 2%-positive model's scores lie; in logit the
    spacing is relative, the same share of ``t`` near 0 and of ``1 - t`` near 1.

    Each value inside (0, 1) is rounded to a few significant digits of its distance to the
    nearer end, as few as keep each logit within `_ROUNDING_SHIFT` of a step of its place (3 for
    201 thresholds, more for finer grids): the grid reads as short decimals (0.000123,
    0.5, 0.999877), is the same on every platform, and stays symmetric (``t`` and ``1 - t``).
    An odd ``num_thresholds`` holds 0.5 exactly, the default decision threshold.
    """
    # Kept: every summary of threshold counts compares its grid with this one (and a reader
    # rebuilds it), and making it formats each value in Python.
    return _logit_grid(int(num_thresholds), float(logit_range)).copy()


@functools.lru_cache(maxsize=8)
def _logit_grid(num_thresholds, logit_range):
    """`logit_thresholds`, made once per grid (callers get a copy)."""
    if not 0 < logit_range <= MAX_LOGIT_RANGE:
        raise ValueError("logit_range must be in (0, %g], got %r" % (MAX_LOGIT_RANGE, logit_range))
    if num_thresholds < 2:
        raise ValueError("num_thresholds must be at least 2, got %r" % (num_thresholds,))
    inside = num_thresholds - 2
    if inside < 2:
        return np.array([0.0] + [0.5] * inside + [1.0])
    logits = np.linspace(-logit_range, logit_range, inside)
    step = 2 * logit_range / (inside - 1)
    # Rounding the distance q <= 1/2 to d significant digits moves it by at most 5 * 10**-d of
    # itself, and its logit by at most twice that.
    digits = max(1, int(np.ceil(1 - np.log10(_ROUNDING_SHIFT * step))))
    values = [_short_decimal(z, digits) for z in logits.tolist()]
    return np.array([0.0] + values + [1.0])


def _short_decimal(logit, digits):
    """``sigmoid(logit)`` with its distance to the nearer of 0 and 1 rounded to ``digits``
    significant digits, as the float64 nearest that decimal.
    """
    mantissa, exponent = ("%.*e" % (digits - 1, 1.0 / (1.0 + math.exp(abs(logit))))).split("e")
    distance = float(mantissa + "e" + exponent)
    if logit <= 0:
        return distance
    # 1 minus the distance has as many decimals as the distance; the float64 difference is
    # far closer to that decimal than half its last place, so rounding there recovers it.
    decimals = digits - 1 - int(exponent)
    return float("%.*f" % (decimals, 1.0 - distance))


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


def confusion_matrix(y_true, y_pred, num_classes, groups=None, num_groups=None):
    """Confusion matrix ``M[i, j]`` = number of examples of actual class i predicted as j;
    with ``groups`` (`check_groups`), one per group: ``[G, C, C]``.

    Same result as ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(C))``: a
    histogram of ``i * C + j``, block by block so the index array stays in cache. Two classes
    are counted without a histogram (ungrouped): its four bins are hit in long runs, which
    serialises the increments, while three counts of agreeing flags fill the matrix.

    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], num_classes=3)
    array([[1, 0, 0],
           [0, 0, 1],
           [0, 1, 1]])
    """
    y_true = _check_ids(y_true, num_classes, "y_true")
    y_pred = _check_ids(y_pred, num_classes, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "y_true and y_pred differ in length: %d vs %d" % (y_true.size, y_pred.size)
        )
    groups = check_groups(groups, num_groups, y_true.size)
    if num_classes == 2 and groups is None:
        return _binary_confusion_matrix(y_true, y_pred)
    cells = num_classes * num_classes
    shape = (
        (num_classes, num_classes)
        if groups is None
        else (int(num_groups), num_classes, num_classes)
    )
    flat = np.zeros(int(np.prod(shape)), dtype=np.int64)
    index = np.empty(min(y_true.size, _BLOCK), dtype=np.intp)
    for begin in range(0, y_true.size, _BLOCK):
        block = index[: y_true[begin : begin + _BLOCK].size]
        np.multiply(y_true[begin : begin + _BLOCK], num_classes, out=block)
        block += y_pred[begin : begin + _BLOCK]
        if groups is not None:
            block += groups[begin : begin + _BLOCK] * cells
        _count_into(flat, block)
    return flat.reshape(shape)


def _binary_confusion_matrix(y_true, y_pred):
    """`confusion_matrix` of ids in {0, 1} from the counts of actual 1s, predicted 1s and both."""
    # Ids are 0 or 1 here (checked): the non-zero ones are the 1s, and a bitwise and of two
    # ids is 1 exactly when both are. Block by block: each block is read once, from the cache.
    actual = predicted = both = 0
    for begin in range(0, y_true.size, _BLOCK):
        actual_block = y_true[begin : begin + _BLOCK]
        predicted_block = y_pred[begin : begin + _BLOCK]
        actual += np.count_nonzero(actual_block)
        predicted += np.count_nonzero(predicted_block)
        both += np.count_nonzero(actual_block & predicted_block)
    return np.array(
        [
            [y_true.size - actual - predicted + both, predicted - both],
            [actual - both, both],
        ],
        dtype=np.int64,
    )


def all_finite(values):
    """Whether every value of a float array is finite: its minimum and maximum are (a NaN
    makes both NaN), two passes with no temporary the size of ``values``.
    """
    values = np.asarray(values)
    if not values.size or values.dtype.kind not in "fc":
        return True
    return bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def label_distribution(y_true, num_classes):
    """Number of examples of each actual class, shape ``[C]``."""
    return np.bincount(_check_ids(y_true, num_classes, "y_true"), minlength=num_classes)


def label_positives(y_true, num_labels):
    """Rows with each label set, ``[K]``, of multi-hot labels ``[n, K]`` (0/1 or bool)."""
    return check_multi_hot(y_true, num_labels, "labels").sum(axis=0, dtype=np.int64)


def threshold_counts_from_histograms(every, positives):
    """TP and FP ``[..., C, T]`` from per-class bucket histograms ``[..., C, T + 1]``.

    ``every[k, b]`` counts the examples whose class-k score is in bucket ``b`` (see
    `threshold_bucket`), ``positives[k, b]`` those of them that are of class k. The count at
    threshold j is the number of buckets above j: a reverse cumulative sum.
    """
    every = np.asarray(every, dtype=np.int64)
    positives = np.asarray(positives, dtype=np.int64)
    tp = np.cumsum(positives[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    fp = np.cumsum((every - positives)[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    return tp, fp


def check_multi_hot(labels, num_labels, what):
    """Multi-hot labels ``[n, K]`` of 0/1 (or bool) values as a bool array; ValueError
    naming ``what`` for another shape or other values.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != num_labels:
        raise ValueError(
            "%s must be multi-hot rows of shape [n, %d], got %s" % (what, num_labels, labels.shape)
        )
    if labels.dtype != bool:
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise ValueError("%s must hold only 0 and 1 (multi-hot labels)" % what)
        labels = labels.astype(bool)
    return labels


def _checked_labels(y_true, num_classes):
    """``y_true`` as class ids ``[n]`` (int64) or, when 2-D, multi-hot rows ``[n, C]`` (bool)."""
    if np.ndim(y_true) == 2:
        return check_multi_hot(y_true, num_classes, "y_true")
    return _check_ids(y_true, num_classes, "y_true")


def threshold_counts(y_true, scores, thresholds, groups=None, num_groups=None):
    """One-vs-rest true and false positives of ``score >= t`` for every class and threshold.

    Args:
      y_true: int class ids, shape ``[n]``; or multi-hot rows ``[n, C]`` (0/1 or bool), where
        each label is a binary problem of its own (multi-label).
      scores: float scores, shape ``[n, C]``; a NaN reaches no threshold, +inf every one.
      thresholds: ascending floats, shape ``[T]``.
      groups: optional group ids ``[n]`` (`check_groups`): the counts of each group.
      num_groups: the number of groups, with ``groups``.

    Returns:
      ``(tp, fp)``, int64 arrays of shape ``[C, T]`` (grouped: ``[G, C, T]``): ``tp[k, j]``
      counts the positives of class k (examples of class k, or with label k set) with
      ``scores[:, k] >= thresholds[j]``; ``fp[k, j]`` the other examples that reach it. TN and FN follow from the class's
      positives ``P_k``: ``fn = P_k - tp``, ``tn = (n - P_k) - fp``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError("scores must have shape [n, C], got %s" % (scores.shape,))
    n, num_classes = scores.shape
    labels = _checked_labels(y_true, num_classes)
    if labels.shape[0] != n:
        raise ValueError("y_true and scores differ in length: %d vs %d" % (labels.shape[0], n))
    thresholds = validate_thresholds(thresholds)
    groups = check_groups(groups, num_groups, n)
    bucket_of = _bucketing(thresholds, _comparable_dtype(scores.dtype))
    width = thresholds.size + 1
    histograms = num_classes if groups is None else int(num_groups) * num_classes
    every = np.zeros(histograms * width, dtype=np.int64)
    positives = np.zeros(histograms * width, dtype=np.int64)
    rows = max(1, min(n, _BLOCK // num_classes))
    # A block's buckets are flattened row by row: class k's histogram starts at k * width, and
    # row i's own class sits at i * C + y_i. Flat arrays, because NumPy loops over a
    # broadcast inner dimension of 2 (the binary case) many times slower.
    offsets = np.tile(np.arange(num_classes, dtype=np.intp) * width, rows)
    row_starts = np.arange(0, rows * num_classes, num_classes, dtype=np.intp)
    for begin in range(0, n, rows):
        block = _comparable_scores(scores[begin : begin + rows])
        buckets = bucket_of(block).reshape(-1)
        buckets += offsets[: buckets.size]
        if groups is not None:  # group g's histograms follow the g groups before it
            buckets += np.repeat(groups[begin : begin + rows] * (num_classes * width), num_classes)
        _count_into(every, buckets)
        if labels.ndim == 2:  # a row is a positive of each label it has
            own = buckets[labels[begin : begin + rows].reshape(-1)]
        else:  # a row is a positive of exactly one class: its own
            own = buckets.take(row_starts[: block.shape[0]] + labels[begin : begin + rows])
        _count_into(positives, own)
    shape = (num_classes, width) if groups is None else (int(num_groups), num_classes, width)
    return threshold_counts_from_histograms(every.reshape(shape), positives.reshape(shape))


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
        raise ValueError(
            "y_true and scores differ in length: %d vs %d" % (y_true.size, scores.shape[0])
        )
    return _exact_counts([(y_true, scores)], num_classes, np.empty(0))[2]


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


class _ScoredCounts:
    """What single-label and multi-label counts share: threshold counts, AP and ROC AUC
    (exact from kept scores, or from streamed threshold counts), invalid rows and calibration
    bins. A subclass counts its own decisions (`ClassificationCounts.confusion`,
    `MultiLabelCounts.matrices`) and tells its `positives` and `count`.

    With ``num_groups``, the rows of each batch come with their group ids (`check_groups`) and
    every count is per group, ``[G, ...]``: streamed only (no kept scores, so no exact AP), and
    the AP, ROC AUC and `add` are of ungrouped counts only.
    """

    def __init__(self, num_classes, thresholds, keep_scores, num_groups=None):
        self.num_classes = int(num_classes)
        self.thresholds = validate_thresholds(thresholds)
        self.keep_scores = bool(keep_scores)
        self.num_groups = None if num_groups is None else int(num_groups)
        self._group_shape = () if num_groups is None else (self.num_groups,)
        if self.keep_scores and self._group_shape:
            raise ValueError("grouped counts are streamed: keep_scores must be False")
        size = self._group_shape + (self.num_classes, self.thresholds.size)
        self._added_tp = np.zeros(size, dtype=np.int64)  # counts made elsewhere or streamed
        self._added_fp = np.zeros(size, dtype=np.int64)
        self.invalid = 0
        self._kept = []  # (labels, scores) pieces of about _BLOCK rows or more
        self._arriving = []  # the batches since, merged into a piece at _BLOCK rows
        self._arriving_rows = 0
        self._exact = None  # (tp, fp, ap, auc[, bins]) of the kept scores, until the next update
        self._added_calibration = tuple(
            np.zeros(self._group_shape + (calibration_lib.DEFAULT_NUM_BINS,), dtype=dtype)
            for dtype in (np.int64, np.float64, np.int64)
        )  # (count, confidence_sum, correct) per bin, of the rows not kept for later
        # A kept binary model's bins (its class-1 scores against the 1s) are counted from the
        # same sorted keys as its exact counts (`_ranking._exact_counts`), not batch by batch.
        self._calibration_kept = False

    @property
    def calibration(self):
        """``(count, confidence_sum, correct)`` per bin (`calibration.calibration_bins` of
        every valid example counted).
        """
        if not self._calibration_kept:
            return self._added_calibration
        return tuple(a + b for a, b in zip(self._added_calibration, self._exact_counts()[4]))

    def _ungrouped(self, what):
        if self._group_shape:
            raise ValueError("%s is of ungrouped counts only" % what)

    def _finite_rows(self, scores, groups, *arrays):
        """``(scores, groups, arrays...)`` of the rows whose scores are all finite; the rows
        left out are counted in ``invalid``. ``groups`` is checked (`check_groups`) when the
        counts are grouped, None otherwise.
        """
        if (groups is None) != (self.num_groups is None):
            raise ValueError("grouped counts take each row's group, ungrouped counts none")
        groups = check_groups(groups, self.num_groups, scores.shape[0])
        if all_finite(scores):
            return (scores, groups) + arrays
        # Per row only now: a reduction along a short row is many times slower.
        finite = np.isfinite(scores).all(axis=1)
        self.invalid += int((~finite).sum())
        groups = None if groups is None else groups[finite]
        return (scores[finite], groups) + tuple(a[finite] for a in arrays)

    def _count_scores(self, labels, scores, groups=None):
        """Threshold counts of one batch: streamed now, or the scores kept for exact counts."""
        if not self.keep_scores:
            tp, fp = threshold_counts(labels, scores, self.thresholds, groups, self.num_groups)
            self._added_tp += tp
            self._added_fp += fp
            return
        self._arriving.append((labels, scores))
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
            self._exact = _exact_counts(
                self._kept, self.num_classes, self.thresholds, self._calibration_kept
            )
        return self._exact

    def _add_counts(self, tp, fp, invalid, calibration):
        self._added_tp += tp
        self._added_fp += fp
        self.invalid += int(invalid)
        if calibration is not None:
            self._add_calibration(calibration)

    def _add_calibration(self, bins):
        for total, part in zip(self._added_calibration, bins):
            total += part

    @property
    def positives(self):
        """Positives of each class ``[C]`` (the one-vs-rest P of the threshold counts)."""
        raise NotImplementedError

    @property
    def count(self):
        """Number of valid examples counted."""
        raise NotImplementedError

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
    def average_precision_method(self):
        """`AP_EXACT` when the scores are kept, `AP_THRESHOLD_GRID` otherwise."""
        return AP_EXACT if self.keep_scores else AP_THRESHOLD_GRID

    def average_precision(self):
        """AP per class over every valid example seen so far (see `average_precision_method`).

        The exact AP is computed one class at a time, so at most one column of sort keys is
        held on top of the kept scores.
        """
        self._ungrouped("the average precision")
        if not self.keep_scores:
            return average_precision_from_counts(self.tp, self.fp, self.positives)
        return self._exact_counts()[2].copy()

    def roc_auc(self):
        """One-vs-rest ROC AUC per class, computed as the AP is (`average_precision_method`):
        exact from every score, or from the threshold grid (`metrics.roc_auc_from_counts`).
        """
        self._ungrouped("the ROC AUC")
        if not self.keep_scores:
            positives = self.positives
            return metrics_lib.roc_auc_from_counts(
                self.tp, self.fp, positives, self.count - positives
            )
        return self._exact_counts()[3].copy()


class ClassificationCounts(_ScoredCounts):
    """Accumulates one split's counts batch by batch (confusion, threshold counts, AP scores).

    With ``keep_scores`` (the default) the scores needed for exact AP are kept (``n x C``, in
    the dtype they come in: float32 from Keras), and the threshold counts and the AP are made
    together from them when first read (`_exact_counts`: one sort per class gives both).
    Without, batches are counted as they arrive, nothing grows with the number of examples and
    the AP is the threshold-grid AP (`average_precision_from_counts`). Rows with a non-finite
    score are counted in ``invalid`` and left out of everything else. Either way the scores are
    also binned for calibration (``calibration``: `calibration.calibration_bins` of the batches;
    a binary model's kept scores are binned from the sorted keys of its exact counts).

    >>> counts = ClassificationCounts(num_classes=2, thresholds=[0.25, 0.5, 0.75])
    >>> scores = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.3, float("nan")]])
    >>> counts.update(np.array([0, 1, 0, 1]), scores, np.array([0, 0, 1, 0]))
    >>> counts.confusion
    array([[1, 1],
           [1, 0]])
    >>> counts.invalid, counts.count
    (1, 3)
    >>> counts.tp[1], counts.fp[1]  # class 1 at thresholds 0.25, 0.5, 0.75
    (array([1, 0, 0]), array([1, 1, 0]))
    >>> counts.average_precision()  # class 0: (1/1 + 2/3) / 2
    array([0.83333333, 0.5       ])
    """

    def __init__(self, num_classes, thresholds, keep_scores=True, num_groups=None):
        super().__init__(num_classes, thresholds, keep_scores, num_groups)
        self.confusion = np.zeros(
            self._group_shape + (self.num_classes, self.num_classes), dtype=np.int64
        )
        self._label_dtype = np.min_scalar_type(self.num_classes - 1)
        self._calibration_kept = self.keep_scores and self.num_classes == 2

    def update(self, y_true, scores, y_pred, groups=None):
        """Count one batch: ids ``[b]``, scores ``[b, C]``, predicted ids ``[b]`` (and with
        ``num_groups``, the rows' group ids ``[b]``).
        """
        scores, groups, y_true, y_pred = self._finite_rows(
            np.asarray(scores), groups, np.asarray(y_true), np.asarray(y_pred)
        )
        self.confusion += confusion_matrix(
            y_true, y_pred, self.num_classes, groups, self.num_groups
        )
        if not self._calibration_kept:
            self._add_calibration(
                calibration_lib.calibration_bins(
                    *calibration_lib.confidence_and_correct(y_true, scores, y_pred),
                    groups=groups,
                    num_groups=self.num_groups,
                )
            )
        self._count_scores(y_true.astype(self._label_dtype), scores, groups)

    def add(self, confusion, tp, fp, invalid=0, calibration=None):
        """Add counts made elsewhere (e.g. by the Keras metric, `keras_metric`); ``calibration``
        is ``(count, confidence_sum, correct)`` per bin, as `calibration.calibration_bins`.
        """
        self._ungrouped("add")
        self.confusion += confusion
        self._add_counts(tp, fp, invalid, calibration)

    @property
    def positives(self):
        """Examples of each actual class ``[C]`` (``[G, C]``): the confusion matrix's row sums."""
        return self.confusion.sum(axis=-1)

    @property
    def count(self):
        """Number of valid examples counted (grouped: ``[G]``)."""
        if self._group_shape:
            return self.confusion.sum(axis=(1, 2))
        return int(self.confusion.sum())


def multilabel_confusion_matrix(y_true, y_pred, groups=None, num_groups=None):
    """One ``[[tn, fp], [fn, tp]]`` per label, shape ``[K, 2, 2]``, of multi-hot rows; with
    ``groups`` (`check_groups`), per group: ``[G, K, 2, 2]``.

    Same result as ``sklearn.metrics.multilabel_confusion_matrix`` on ``[n, K]`` 0/1 arrays.

    >>> multilabel_confusion_matrix([[1, 0], [1, 1], [0, 1]], [[1, 1], [0, 1], [0, 1]])
    array([[[1, 0],
            [1, 1]],
    <BLANKLINE>
           [[0, 1],
            [0, 2]]])
    """
    y_true = np.asarray(y_true)
    num_labels = y_true.shape[1] if y_true.ndim == 2 else -1
    y_true = check_multi_hot(y_true, num_labels, "y_true")
    y_pred = check_multi_hot(y_pred, num_labels, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "y_true and y_pred differ in shape: %s vs %s" % (y_true.shape, y_pred.shape)
        )
    groups = check_groups(groups, num_groups, y_true.shape[0])
    actual, predicted, both = (
        _set_per_label(flags, groups, num_groups) for flags in (y_true, y_pred, y_true & y_pred)
    )
    rows = y_true.shape[0] if groups is None else np.bincount(groups, minlength=num_groups)[:, None]
    tn = rows - actual - predicted + both
    stacked = np.stack([tn, predicted - both, actual - both, both], axis=-1)
    return stacked.reshape(stacked.shape[:-1] + (2, 2))


def _set_per_label(flags, groups, num_groups):
    """Rows with each label set: ``[K]`` of multi-hot ``flags`` ``[n, K]``, or per group
    ``[G, K]``.
    """
    if groups is None:
        return flags.sum(axis=0, dtype=np.int64)
    num_labels = flags.shape[1]
    cells = groups[:, None] * num_labels + np.arange(num_labels)
    return np.bincount(cells[flags], minlength=int(num_groups) * num_labels).reshape(-1, num_labels)


class MultiLabelCounts(_ScoredCounts):
    """Accumulates one split's multi-label counts: ``K`` independent labels, each decided at
    ``score >= DECISION_THRESHOLD``.

    ``matrices`` holds one ``[[tn, fp], [fn, tp]]`` per label (`multilabel_confusion_matrix`),
    ``exact_matches`` the rows whose whole predicted label set equals the actual one (subset
    accuracy = exact_matches / count). The threshold counts, AP and ROC AUC are per label, as
    `ClassificationCounts` makes them per class (kept scores: exact; else streamed). The
    calibration bins pool every (row, label) pair as one binary prediction: the label's
    probability against whether the label is set.

    >>> counts = MultiLabelCounts(num_labels=2, thresholds=[0.5])
    >>> counts.update(np.array([[1, 0], [1, 1]]), np.array([[0.9, 0.4], [0.2, 0.7]]))
    >>> counts.matrices[0], counts.exact_matches
    (array([[0, 0],
           [1, 1]]), 1)
    """

    DECISION_THRESHOLD = 0.5

    def __init__(self, num_labels, thresholds, keep_scores=True, num_groups=None):
        super().__init__(num_labels, thresholds, keep_scores, num_groups)
        self.matrices = np.zeros(self._group_shape + (self.num_classes, 2, 2), dtype=np.int64)
        self.exact_matches = np.zeros(self._group_shape, np.int64) if self._group_shape else 0
        self._rows = np.zeros(self._group_shape, np.int64) if self._group_shape else 0

    def update(self, y_true, scores, groups=None):
        """Count one batch: multi-hot labels ``[b, K]`` (0/1 or bool), probabilities ``[b, K]``
        (and with ``num_groups``, the rows' group ids ``[b]``).
        """
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != self.num_classes:
            raise ValueError(
                "scores must have shape [n, %d], got %s" % (self.num_classes, scores.shape)
            )
        labels = check_multi_hot(y_true, self.num_classes, "y_true")
        if labels.shape[0] != scores.shape[0]:
            raise ValueError(
                "y_true and scores differ in length: %d vs %d" % (labels.shape[0], scores.shape[0])
            )
        scores, groups, labels = self._finite_rows(scores, groups, labels)
        predicted = scores >= scores.dtype.type(self.DECISION_THRESHOLD)
        self.matrices += multilabel_confusion_matrix(labels, predicted, groups, self.num_groups)
        exact = (predicted == labels).all(axis=1)
        if self._group_shape:
            self.exact_matches += np.bincount(groups[exact], minlength=self.num_groups)
            self._rows += np.bincount(groups, minlength=self.num_groups)
        else:
            self.exact_matches += int(exact.sum())
            self._rows += labels.shape[0]
        self._add_calibration(
            calibration_lib.calibration_bins(
                scores, labels, groups=groups, num_groups=self.num_groups
            )
        )
        self._count_scores(labels, scores, groups)

    def add(self, matrices, tp, fp, exact_matches, invalid=0, calibration=None):
        """Add counts made elsewhere (e.g. by the Keras metric): ``matrices`` ``[K, 2, 2]``,
        threshold counts ``[K, T]``, the rows matched exactly, and as `ClassificationCounts.add`.
        """
        self._ungrouped("add")
        matrices = np.asarray(matrices, dtype=np.int64)
        self.matrices += matrices
        self.exact_matches += int(exact_matches)
        self._rows += int(matrices[0].sum()) if matrices.shape[0] else 0
        self._add_counts(tp, fp, invalid, calibration)

    @property
    def positives(self):
        """Rows with each label set ``[K]`` (``[G, K]``): ``fn + tp`` of its matrix."""
        return self.matrices[..., 1, :].sum(axis=-1)

    @property
    def count(self):
        """Number of valid rows counted (grouped: ``[G]``)."""
        return self._rows

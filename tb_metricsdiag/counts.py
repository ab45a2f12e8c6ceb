"""From labels and scores to counts: the numeric core the callback, writers and tests share.

Pure NumPy. Everything here is linear in the number of examples (bucketing scores against the
threshold grid replaces a sort per threshold) except `average_precision`, which is exact and
therefore sorts once per class.

Conventions: ``y_true`` holds integer class ids in ``[0, C)``; ``scores`` is ``[n, C]`` with the
score of each class (one-vs-rest), ``y_pred`` the predicted class ids.
"""

import numpy as np

DEFAULT_NUM_THRESHOLDS = 201


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


def _check_ids(ids, num_classes, what):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError("%s must be a 1-D array of class ids, got shape %s" % (what, ids.shape))
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(
            "%s holds class ids outside [0, %d): found %d..%d"
            % (what, num_classes, ids.min(), ids.max())
        )
    return ids.astype(np.int64, copy=False)


def confusion_matrix(y_true, y_pred, num_classes):
    """Confusion matrix ``M[i, j]`` = number of examples of actual class i predicted as j.

    Same result as ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(C))``, in
    one ``bincount``.
    """
    y_true = _check_ids(y_true, num_classes, "y_true")
    y_pred = _check_ids(y_pred, num_classes, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred differ in length: %d vs %d" % (y_true.size, y_pred.size))
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


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


def threshold_bucket(scores, thresholds):
    """Number of thresholds each score reaches: ``b = #{j : scores >= thresholds[j]}``.

    So ``scores >= thresholds[j]`` exactly when ``b > j``. On an evenly spaced grid the bucket
    is computed arithmetically and then corrected by one step either way against the real
    threshold values, so the comparison stays exact whatever the rounding; other grids use a
    binary search.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    scores = np.asarray(scores)
    step = _evenly_spaced_step(thresholds)
    if step is None:
        return np.searchsorted(thresholds, scores, side="right")
    size = thresholds.size
    guess = np.floor((scores - thresholds[0]) * (1.0 / step)) + 1.0
    bucket = np.clip(guess, 0, size).astype(np.int64)
    # Correct the arithmetic guess: it can be one too high or one too low at a boundary.
    too_high = bucket > 0
    too_high[too_high] = thresholds[bucket[too_high] - 1] > scores[too_high]
    bucket -= too_high
    too_low = bucket < size
    too_low[too_low] = thresholds[bucket[too_low]] <= scores[too_low]
    bucket += too_low
    return bucket


def threshold_counts(y_true, scores, thresholds):
    """One-vs-rest true and false positives of ``score >= t`` for every class and threshold.

    Args:
      y_true: int class ids, shape ``[n]``.
      scores: float scores, shape ``[n, C]``; must be finite.
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
    width = thresholds.size + 1
    buckets = threshold_bucket(scores, thresholds)  # [n, C]
    offsets = np.arange(num_classes, dtype=np.int64) * width
    every = np.bincount((buckets + offsets).ravel(), minlength=num_classes * width)
    # Each example is a positive for exactly one class: its own.
    own = buckets[np.arange(n), y_true] + y_true * width
    positives = np.bincount(own, minlength=num_classes * width)
    every = every.reshape(num_classes, width)
    positives = positives.reshape(num_classes, width)
    # Reverse cumulative sums: count of buckets > j, for j = 0..T-1.
    tp = np.cumsum(positives[:, ::-1], axis=1)[:, ::-1][:, 1:]
    fp = np.cumsum((every - positives)[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return tp, fp


def average_precision(y_true, scores):
    """Exact one-vs-rest average precision of every class, shape ``[C]`` (float64).

    AP = sum over distinct score thresholds of ``(R_n - R_{n-1}) * P_n``: step-wise and not
    interpolated, the definition of ``sklearn.metrics.average_precision_score``. Each positive
    adds ``1/P`` of recall at the precision of its own score (ties share one threshold), so
    ``AP = mean over positives i of #{positives >= s_i} / #{examples >= s_i}``.

    A class with no positive example has no recall to average over: its AP is NaN (reported as
    null). scikit-learn returns 0.0 with a warning there.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError("scores must have shape [n, C], got %s" % (scores.shape,))
    num_classes = scores.shape[1]
    y_true = _check_ids(y_true, num_classes, "y_true")
    result = np.full(num_classes, np.nan)
    for k in range(num_classes):
        column = scores[:, k]
        positive_scores = np.sort(column[y_true == k])
        if positive_scores.size == 0:
            continue
        every_sorted = np.sort(column)
        at_or_above = column.size - np.searchsorted(every_sorted, positive_scores, side="left")
        positives_at_or_above = positive_scores.size - np.searchsorted(
            positive_scores, positive_scores, side="left"
        )
        result[k] = np.mean(positives_at_or_above / at_or_above)
    return result


class ClassificationCounts:
    """Accumulates one split's counts batch by batch (confusion, threshold counts, AP scores).

    Counts are additive, so batches are counted as they arrive and only the scores needed for
    exact AP are kept (``n x C``, in the dtype they come in: float32 from Keras). Rows with a non-finite score are counted in
    ``invalid`` and left out of everything else.
    """

    def __init__(self, num_classes, thresholds):
        self.num_classes = int(num_classes)
        self.thresholds = validate_thresholds(thresholds)
        size = (self.num_classes, self.thresholds.size)
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.tp = np.zeros(size, dtype=np.int64)
        self.fp = np.zeros(size, dtype=np.int64)
        self.invalid = 0
        self._labels = []
        self._scores = []

    def update(self, y_true, scores, y_pred):
        """Count one batch: ids ``[b]``, scores ``[b, C]``, predicted ids ``[b]``."""
        scores = np.asarray(scores)
        finite = np.all(np.isfinite(scores), axis=1)
        if not finite.all():
            self.invalid += int((~finite).sum())
            y_true, scores, y_pred = y_true[finite], scores[finite], y_pred[finite]
        self.confusion += confusion_matrix(y_true, y_pred, self.num_classes)
        tp, fp = threshold_counts(y_true, scores, self.thresholds)
        self.tp += tp
        self.fp += fp
        self._labels.append(np.asarray(y_true, dtype=np.int64))
        self._scores.append(scores)

    @property
    def count(self):
        """Number of valid examples counted."""
        return int(self.confusion.sum())

    def average_precision(self):
        """Exact AP per class over every valid example seen so far."""
        if not self._labels:
            return np.full(self.num_classes, np.nan)
        return average_precision(np.concatenate(self._labels), np.concatenate(self._scores))

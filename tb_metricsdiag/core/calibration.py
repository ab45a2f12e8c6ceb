"""Calibration: whether the scores can be read as probabilities. Pure NumPy.

Scores are summarised per split and epoch in `DEFAULT_NUM_BINS` equal-width bins over [0, 1]:
for each bin the number of examples, the sum of their confidences and how many of them are
"correct". Those three numbers are additive (batches, processes), small (a few hundred bytes)
and enough for a reliability diagram, the expected and the maximum calibration error.

Conventions, as TorchMetrics' ``BinaryCalibrationError`` / ``MulticlassCalibrationError``:

- multi-class: the top-label confidence (the largest class probability) against whether the
  predicted class is the actual one;
- binary (two classes): the positive-class probability against whether the example is
  positive, so a bin's accuracy is its fraction of positives.

Bin ``b`` holds the confidences in ``[b / B, (b + 1) / B)``, the last bin also 1.0 (TorchMetrics
gives exactly 1.0 a bin of its own). Confidences outside [0, 1] go to the nearest end bin.
"""

import numpy as np

from tb_metricsdiag.core._blocks import BLOCK as _BLOCK
from tb_metricsdiag.core._groups import check_groups

DEFAULT_NUM_BINS = 15

NORMS = ("l1", "max")


def bin_edges(num_bins=DEFAULT_NUM_BINS):
    """The ``num_bins + 1`` ascending edges of the bins, from 0 to 1."""
    if int(num_bins) < 1:
        raise ValueError("num_bins must be at least 1, got %r" % (num_bins,))
    return np.linspace(0.0, 1.0, int(num_bins) + 1)


def confidence_and_correct(y_true, scores, y_pred):
    """``(confidence [n], correct [n] bool)`` of one batch, by the module's conventions.

    Args:
      y_true: actual class ids ``[n]``.
      scores: class probabilities ``[n, C]``.
      y_pred: predicted class ids ``[n]`` (the argmax of ``scores``): the confidence is the
        score of the predicted class, the top-label confidence without a second pass over the
        rows (a reduction along short rows is slow in NumPy).
    """
    scores = np.asarray(scores)
    y_true = np.asarray(y_true)
    if scores.ndim != 2 or scores.shape[0] != y_true.shape[0]:
        raise ValueError("scores must have shape [n, C] for n labels, got %s" % (scores.shape,))
    if scores.shape[1] == 2:
        return scores[:, 1], y_true == 1
    y_pred = np.asarray(y_pred, dtype=np.intp)
    return np.take_along_axis(scores, y_pred[:, None], axis=1)[:, 0], y_pred == y_true


def calibration_bins(confidence, correct, num_bins=DEFAULT_NUM_BINS, groups=None, num_groups=None):
    """Per-bin ``(count, confidence_sum, correct)``: int64, float64 and int64 arrays ``[B]``.

    ``count[b]`` is the number of confidences in bin ``b``, ``confidence_sum[b]`` their sum (in
    float64) and ``correct[b]`` how many of them are correct. NaN confidences are left out, and
    confidences outside [0, 1] count as the nearest end of the interval. With ``groups``, the
    group of each row of ``confidence`` (``[n]`` for ``[n]`` or ``[n, K]`` confidences,
    `counting.check_groups`): the bins of each group: ``[G, B]`` arrays.
    """
    confidence = np.asarray(confidence)
    if groups is not None and confidence.ndim == 2:  # every confidence of a row in its group
        groups = np.repeat(np.asarray(groups), confidence.shape[1])
    confidence = confidence.reshape(-1)
    if not np.issubdtype(confidence.dtype, np.floating):
        confidence = confidence.astype(np.float64)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if confidence.shape != correct.shape:
        raise ValueError(
            "confidence and correct differ in length: %d vs %d" % (confidence.size, correct.size)
        )
    groups = check_groups(groups, num_groups, confidence.size)
    num_bins = int(num_bins)
    # In the scores' own precision (float32 from most models): half the memory traffic; block
    # by block, so the bin indices stay in the CPU cache. A column of wider rows (a binary
    # model's [1 - p, p]) is read once, into a contiguous block.
    scale = confidence.dtype.type(num_bins)
    shape = (num_bins, 2) if groups is None else (int(num_groups), num_bins, 2)
    size = int(np.prod(shape))
    pairs = np.zeros(size, dtype=np.int64)
    sums = np.zeros(size, dtype=np.float64)
    index = np.empty(min(confidence.size, _BLOCK), dtype=np.intp)
    strided = confidence.strides[0] != confidence.itemsize
    gathered = np.empty_like(index, confidence.dtype) if strided else None
    for begin in range(0, confidence.size, _BLOCK):
        part = confidence[begin : begin + _BLOCK]
        if strided:
            part = gathered[: part.size]
            part[...] = confidence[begin : begin + _BLOCK]
        right = correct[begin : begin + _BLOCK]
        group = None if groups is None else groups[begin : begin + _BLOCK]
        part, right, group = _probabilities(part, right, group)
        block = index[: part.size]
        np.multiply(part, scale, out=block, casting="unsafe")  # floor for >= 0
        np.minimum(block, num_bins - 1, out=block)  # 1.0 belongs to the last bin
        # Bin b's examples at 2b (wrong) and 2b + 1 (correct): one histogram gives both counts.
        block <<= 1
        block += right
        if group is not None:  # group g's bins follow the g groups before it
            block += group * (2 * num_bins)
        pairs += np.bincount(block, minlength=size)
        sums += np.bincount(block, weights=part, minlength=size)
    pairs, sums = pairs.reshape(shape), sums.reshape(shape)
    return pairs.sum(axis=-1), sums.sum(axis=-1), pairs[..., 1].copy()


def _probabilities(confidence, correct, groups):
    """One block's ``(confidence, correct, groups)`` without its NaN confidences, the others
    clipped to [0, 1] (scores that are not probabilities). The minimum is NaN exactly when a
    confidence is: one pass finds both.
    """
    lowest = confidence.min() if confidence.size else 0.0
    if np.isnan(lowest):
        keep = ~np.isnan(confidence)
        confidence, correct = confidence[keep], correct[keep]
        groups = None if groups is None else groups[keep]
        lowest = confidence.min() if confidence.size else 0.0
    if confidence.size and (lowest < 0 or confidence.max() > 1):
        confidence = np.clip(confidence, 0, 1)
    return confidence, correct, groups


def bin_accuracy_and_confidence(count, confidence_sum, correct):
    """``(accuracy [B], mean confidence [B])`` of each bin; NaN for an empty bin."""
    count = np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(count > 0, np.asarray(correct) / count, np.nan)
        mean_confidence = np.where(count > 0, np.asarray(confidence_sum) / count, np.nan)
    return accuracy, mean_confidence


def calibration_error(count, confidence_sum, correct, norm="l1"):
    """The calibration error of binned scores.

    ``"l1"`` is the expected calibration error (ECE): the mean over examples of the gap
    ``|accuracy - confidence|`` of their bin, i.e. the bins' gaps weighted by their share of
    examples. ``"max"`` is the maximum calibration error (MCE): the largest gap of a non-empty
    bin. NaN when no example was binned.
    """
    if norm not in NORMS:
        raise ValueError("norm must be one of %s, got %r" % (NORMS, norm))
    count = np.asarray(count, dtype=np.int64)
    total = int(count.sum())
    if total == 0:
        return float("nan")
    accuracy, mean_confidence = bin_accuracy_and_confidence(count, confidence_sum, correct)
    gap = np.abs(accuracy - mean_confidence)
    filled = count > 0
    if norm == "max":
        return float(gap[filled].max())
    return float((gap[filled] * count[filled]).sum() / total)


def confidence_direction(count, confidence_sum, correct, binary=False):
    """``"over"`` when the scores claim more certainty than they deliver, ``"under"`` when
    less, None without examples.

    Multi-class (top-label confidence): over-confident when the example-weighted mean
    confidence is above the accuracy. Binary (positive-class probability): over-confident when
    the probabilities are too extreme, i.e. above the fraction of positives in the bins above
    0.5 and below it in the bins below 0.5, weighted by the bins' examples.
    """
    count = np.asarray(count, dtype=np.float64)
    if count.sum() == 0:
        return None
    gap = np.asarray(confidence_sum, dtype=np.float64) - np.asarray(correct, dtype=np.float64)
    if binary:
        _, mean_confidence = bin_accuracy_and_confidence(count, confidence_sum, correct)
        gap = gap * np.sign(np.nan_to_num(mean_confidence - 0.5))
    return "over" if gap.sum() > 0 else "under"

"""Stored histograms, checked: the examples per actual class (label distribution) and the
examples, confidence sum and correct examples per confidence bin (calibration).

Pure NumPy; a problem with what is read is a `FormatError`.
"""

import numpy as np

from tb_metricsdiag.format.integer_counts import check_non_negative
from tb_metricsdiag.format.schema import MAX_CALIBRATION_BINS, MAX_CLASSES, FormatError


def label_distribution(datum):
    """The ``[C]`` int64 examples per class of a label-distribution datum.

    Raises:
      FormatError: not a vector of at most `MAX_CLASSES` non-negative integers.
    """
    counts = np.asarray(datum.numpy)
    if counts.ndim != 1 or not 1 <= counts.size <= MAX_CLASSES or counts.dtype.kind not in "iu":
        raise FormatError(
            "label distribution of shape %s and type %s, expected [C] integers"
            % (counts.shape, counts.dtype)
        )
    check_non_negative(counts, "label distribution")
    return counts.astype(np.int64)


def calibration_bins_of(value):
    """``(count [B], confidence_sum [B], correct [B])`` of a stored `schema.KIND_CALIBRATION`
    tensor ``[3, B]`` (count and correct as int64, the sum as float64).

    Raises:
      FormatError: the tensor is not ``[3, B]`` numbers with ``0 <= correct <= count``
        (whole numbers) and ``0 <= confidence_sum <= count``.
    """
    values = np.asarray(value)
    if values.ndim != 2 or values.shape[0] != 3 or not 1 <= values.shape[1] <= MAX_CALIBRATION_BINS:
        raise FormatError("calibration bins of shape %s, expected [3, B]" % (values.shape,))
    if values.dtype.kind not in "iuf":
        raise FormatError("calibration bins hold %s values, expected numbers" % values.dtype)
    values = values.astype(np.float64)
    count, confidence_sum, correct = values
    if not np.all(np.isfinite(values)) or np.any(count != np.round(count)):
        raise FormatError("calibration bins hold non-finite or fractional counts")
    if np.any(correct != np.round(correct)) or np.any((correct < 0) | (correct > count)):
        raise FormatError("calibration bins count more correct examples than examples")
    if np.any((confidence_sum < 0) | (confidence_sum > count * (1 + 1e-9))):
        raise FormatError("calibration bins hold confidences outside [0, 1]")
    return count.astype(np.int64), confidence_sum, correct.astype(np.int64)

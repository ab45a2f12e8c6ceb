"""The threshold grid of the stored threshold counts: encoded into plugin content (a list, an
evenly spaced grid, or the default grid spaced in logit) and decoded from it, checked.

Pure NumPy; a problem with what is read is a `FormatError`.
"""

import numpy as np

from tb_metricsdiag.core import counting
from tb_metricsdiag.format.schema import MAX_COUNT_VALUES, MAX_LOGIT_GRID, FormatError


def encode_thresholds(thresholds):
    """An evenly spaced grid (``numpy.linspace(start, stop, num)``, bit for bit) is stored as
    those three numbers, the default grid spaced in logit (`counting.logit_thresholds` over
    `counting.DEFAULT_LOGIT_RANGE`, bit for bit) as ``{"logit_range", "num"}`` (format version
    5), not the values of every summary; any other grid as the list of values.
    """
    values = np.asarray(thresholds, dtype=np.float64)
    if values.size >= 2:
        start, stop = float(values[0]), float(values[-1])
        if np.array_equal(values, np.linspace(start, stop, values.size)):
            return {"start": start, "stop": stop, "num": int(values.size)}
        logit_range = counting.DEFAULT_LOGIT_RANGE
        if values.size <= MAX_LOGIT_GRID and np.array_equal(
            values, counting.logit_thresholds(values.size, logit_range)
        ):
            return {"logit_range": logit_range, "num": int(values.size)}
    return [float(t) for t in values]


def is_logit_grid(encoded):
    """Whether stored thresholds are in the logit form of `encode_thresholds` (version 5)."""
    return isinstance(encoded, dict) and "logit_range" in encoded


def decode_thresholds(encoded, expected_size=None):
    """The threshold array stored in plugin content (list, linspace or logit form).

    With ``expected_size`` (the T of the stored counts), a grid of any other size is refused
    before it is built, so a corrupt ``num`` cannot make the reader allocate without bound.
    """
    try:
        if isinstance(encoded, dict):
            num = encoded["num"]
            if (
                not isinstance(num, int)
                or isinstance(num, bool)
                or not 1 <= num <= MAX_COUNT_VALUES
            ):
                raise ValueError(
                    "num must be an integer in [1, %d], got %r" % (MAX_COUNT_VALUES, num)
                )
            if expected_size is not None and num != expected_size:
                raise FormatError(
                    "metricsdiag thresholds: %d values stored, %d expected" % (num, expected_size)
                )
            if is_logit_grid(encoded):
                if num > MAX_LOGIT_GRID:
                    raise ValueError(
                        "a logit grid of %d values, more than %d" % (num, MAX_LOGIT_GRID)
                    )
                logit_range = encoded["logit_range"]
                if not isinstance(logit_range, (int, float)) or isinstance(logit_range, bool):
                    raise ValueError("logit_range must be a number, got %r" % (logit_range,))
                values = counting.logit_thresholds(num, float(logit_range))
            else:
                values = np.linspace(float(encoded["start"]), float(encoded["stop"]), num)
        else:
            values = np.asarray(encoded, dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError("metricsdiag thresholds are malformed: %s" % error) from error
    if expected_size is not None and values.shape != (expected_size,):
        raise FormatError(
            "metricsdiag thresholds: %s values stored, %d expected" % (values.shape, expected_size)
        )
    if (
        values.ndim != 1
        or values.size < 1
        or not np.all(np.isfinite(values))
        or np.any(np.diff(values) <= 0)
    ):
        raise FormatError("metricsdiag thresholds must be finite and strictly ascending")
    return values

"""Stored integer counts: the smallest integer type that holds them, the one-byte code that
names it in an encoded payload, and the check that decoded counts are not negative.

Shared by the encoded threshold counts (`threshold_counts`) and the encoded confusion matrices
(`confusion_counts`). Pure NumPy.
"""

import numpy as np

from tb_metricsdiag.format.schema import FormatError

# A one-byte code naming the dtype of the values that follow it in an encoded payload,
# little-endian (the first byte of encoded threshold counts; the three type codes of an
# encoded confusion matrix).
DTYPE_OF_CODE = {
    b"B": np.dtype("u1"),
    b"H": np.dtype("<u2"),
    b"i": np.dtype("<i4"),
    b"q": np.dtype("<i8"),
}


# The code of each item size that `compact_ints` gives.
CODE_OF_ITEMSIZE = {dtype.itemsize: code for code, dtype in DTYPE_OF_CODE.items()}


# The types `compact_ints` tries, smallest first, with their largest value (made once: the
# encoders call it for every small array they store).
_COMPACT_TYPES = tuple(
    (dtype, int(np.iinfo(dtype).max)) for dtype in (np.uint8, np.uint16, np.int32)
)


def compact_ints(values):
    """Integers in the smallest of uint8, uint16, int32 and int64 that holds them all (int64
    when one is negative): stored counts take a quarter or half the bytes of int32.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and values.min() < 0:
        return values
    largest = int(values.max()) if values.size else 0
    for dtype, most in _COMPACT_TYPES:
        if largest <= most:
            return values.astype(dtype)
    return values


def check_non_negative(counts, what):
    """Refuse decoded ``counts`` (named ``what`` in the message) that hold a negative count."""
    if counts.size and counts.min() < 0:
        raise FormatError("%s holds negative counts" % what)

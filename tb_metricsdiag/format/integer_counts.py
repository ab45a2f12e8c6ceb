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
# encoders call it for every small array they store); int64 after them.
_COMPACT_TYPES = tuple(
    (dtype, int(np.iinfo(dtype).max)) for dtype in (np.uint8, np.uint16, np.int32)
)
_STORED_TYPES = tuple(DTYPE_OF_CODE.values())  # the same types, little-endian, and int64
_LARGEST = np.array([most for _, most in _COMPACT_TYPES], dtype=np.int64)


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


def packed_segments(values, bounds):
    """``[(type code, bytes)]``, one per segment ``values[bounds[s]:bounds[s + 1]]``: each
    segment as `compact_ints` stores it alone (the smallest type that holds it, little-endian),
    with one reduction and one conversion per type for all the segments together: the writers
    store many small arrays per epoch (every slice's), where NumPy's cost is per call.

    Args:
      values: integers ``[N]``.
      bounds: ``[S + 1]`` ascending, from 0 to ``N``.
    """
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    bounds = np.asarray(bounds, dtype=np.int64)
    sizes = np.diff(bounds)
    starts = bounds[:-1][sizes > 0]
    largest = np.zeros(sizes.size, dtype=np.int64)
    negative = np.zeros(sizes.size, dtype=bool)
    if starts.size:  # empty segments add nothing between their neighbours' starts
        largest[sizes > 0] = np.maximum.reduceat(values, starts)
        negative[sizes > 0] = np.minimum.reduceat(values, starts) < 0
    kinds = np.searchsorted(_LARGEST, largest)  # 0..2: the first type that holds it, 3: int64
    kinds[negative] = len(_COMPACT_TYPES)
    converted, parts = {}, []
    for kind, begin, end in zip(kinds.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
        if kind not in converted:
            converted[kind] = values.astype(_STORED_TYPES[kind])
        parts.append((CODE_OF_ITEMSIZE[_STORED_TYPES[kind].itemsize], converted[kind][begin:end]))
    return [(code, part.tobytes()) for code, part in parts]


def check_non_negative(counts, what):
    """Refuse decoded ``counts`` (named ``what`` in the message) that hold a negative count."""
    if counts.size and counts.min() < 0:
        raise FormatError("%s holds negative counts" % what)

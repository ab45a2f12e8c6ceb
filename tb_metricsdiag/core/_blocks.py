"""The block size of the core's blocked loops, and the histogram update, class-id range
check and complement test they share.
"""

import numpy as np

# Elements per block of the blocked loops: their temporaries stay in the CPU cache.
BLOCK = 1 << 16

# NumPy 1.25 gave ufunc.at a fast path: since, adding ones in place beats bincount (no
# min/max pass, no histogram to add); before, it is many times slower.
UFUNC_AT_IS_FAST = np.lib.NumpyVersion(np.__version__) >= "1.25.0"


def count_into(histogram, index):
    """``histogram[i] += #{index == i}``; ``index`` is intp, within the histogram."""
    if UFUNC_AT_IS_FAST:
        np.add.at(histogram, index, 1)
    else:
        histogram += np.bincount(index, minlength=histogram.size)


def ids_in_range(ids, num_classes):
    """Whether every id of the numeric array ``ids`` is in ``[0, num_classes)``.

    Integer ids are checked in one pass: read as unsigned, a negative id is larger than any
    class id, so the maximum alone decides.
    """
    if ids.dtype.kind in "iu" and ids.dtype.isnative:
        return int(ids.view("u%d" % ids.dtype.itemsize).max()) < num_classes
    return ids.min() >= 0 and ids.max() < num_classes


def is_complement(first, second, out):
    """Whether every ``first[i]`` equals the float32 ``1 - second[i]`` (a sigmoid's ``[1 - p,
    p]``), ``out`` a float32 buffer of their length for the complement.
    """
    return bool(np.array_equal(first, np.subtract(np.float32(1), second, out=out)))

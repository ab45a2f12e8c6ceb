"""The block size of the core's blocked loops, and the histogram update they share."""

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

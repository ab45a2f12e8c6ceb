"""The block size of the core's blocked loops."""

# Elements per block of the blocked loops: their temporaries stay in the CPU cache.
BLOCK = 1 << 16

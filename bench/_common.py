"""Helpers shared by the benchmark scripts: timing, resident memory, machine description."""

import os
import platform
import statistics
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Measure the checkout these scripts sit in, whatever copy of the package is installed.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np

# Bytes per pass of the memory-bandwidth probe: far larger than any CPU cache.
_BANDWIDTH_BYTES = 256 << 20
_RSS_SAMPLE_SECONDS = 0.005


def best_and_median(fn, repeats):
    """Run ``fn`` ``repeats`` times; return (min, median) wall seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def copy_bandwidth(repeats=5):
    """Best memory bandwidth of a large NumPy copy, bytes per second (read + write)."""
    source = np.ones(_BANDWIDTH_BYTES, dtype=np.uint8)
    target = np.empty_like(source)
    best, _ = best_and_median(lambda: np.copyto(target, source), repeats)
    return 2 * source.nbytes / best


def rss_bytes():
    """Resident set size of this process now, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Context manager sampling the resident set size; ``peak`` is its maximum inside."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(_RSS_SAMPLE_SECONDS)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def describe_machine():
    """One line: CPU count, Python and NumPy versions."""
    return "machine: %d CPU(s), Python %s, NumPy %s, %s" % (
        os.cpu_count(),
        platform.python_version(),
        np.__version__,
        platform.platform(),
    )


def mib(n):
    return n / float(1 << 20)

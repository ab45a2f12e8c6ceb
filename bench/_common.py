"""Helpers shared by the benchmark scripts: timing, resident memory, machine description."""

import functools
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


def load_average():
    """``"load average 1.23 / 1.50 / 1.70 (1, 5, 15 min) on N CPUs"``: how shared the machine
    was (the benchmarks state it beside their figures)."""
    one, five, fifteen = os.getloadavg()
    return "load average %.2f / %.2f / %.2f (1, 5, 15 min) on %d CPUs" % (
        one,
        five,
        fifteen,
        os.cpu_count(),
    )


def wall_and_cpu():
    """``[wall seconds, CPU seconds of this process]`` now: CPU time stays near its value on a
    shared machine whose other loads stretch the wall time."""
    return np.array([time.perf_counter(), time.process_time()])


class HookClock:
    """Wall and CPU seconds (`wall_and_cpu`) spent inside wrapped callables (a callback's
    hooks), less the time of ``exclude`` ones called from inside them (a user function the
    callback wraps). Nested calls of wrapped callables count once.
    """

    def __init__(self):
        self._depth = 0
        self.reset()

    def reset(self):
        self.inside = np.zeros(2)
        self.excluded = np.zeros(2)

    def timed(self, fn, exclude=False):
        @functools.wraps(fn)  # its signature stays readable (Transformers inspects it)
        def timed(*args, **kwargs):
            self._depth += 1
            start = wall_and_cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if exclude:
                    self.excluded += wall_and_cpu() - start
                elif self._depth == 0:
                    self.inside += wall_and_cpu() - start

        return timed

    def wrap_hooks(self, callback, base, names=()):
        """Time every hook of ``callback`` (an instance) that its class overrides from
        ``base`` (methods named ``on_*``, and ``names``), by replacing it on the instance."""
        for name in dir(type(callback)):
            if not (name.startswith("on_") or name in names):
                continue
            if getattr(type(callback), name) is getattr(base, name, None):
                continue
            setattr(callback, name, self.timed(getattr(callback, name)))
        return callback

    def seconds(self):
        """``[wall, CPU]`` seconds inside the wrapped callables, less the excluded ones."""
        return self.inside - self.excluded


def hide_packages(packages):
    """Make ``packages`` (top-level names) unimportable in this process, as if not installed:
    TensorFlow and the CUDA build of PyTorch crash when both are imported into one process,
    and Keras, Lightning's logger and Transformers import TensorFlow where they find it. A
    ``None`` in `sys.modules` makes ``import`` raise ModuleNotFoundError and
    `importlib.util.find_spec` return None, for the package and its submodules. Call before
    anything imports them."""
    loaded = [name for name in packages if sys.modules.get(name) is not None]
    if loaded:
        raise RuntimeError("already imported, cannot be hidden: %s" % loaded)
    for name in packages:
        sys.modules[name] = None


def print_shares(what, own, paired, indent="  ", target=0.03):
    """Print the overhead figures of a callback measured over repeats: ``own``, ``[repeat,
    (wall, CPU)]`` seconds inside its hooks as fractions of the same ``what`` (a fit); and
    ``paired``, ``[repeat, (wall, CPU)]`` the ``what`` with the callback over the one without it
    in the same repeat, less 1. Medians over the repeats, each repeat's figure beside them."""
    own, paired = np.asarray(own), np.asarray(paired)
    share = np.median(own, axis=0)

    def runs(values, digits):
        return ", ".join("%.*f" % (digits, 100 * v) for v in values)

    print(
        "%sthe hooks' own time: %.2f%% of the %s's wall time (runs: %s), %.2f%% of its CPU"
        " time (runs: %s)  target <= %.0f%%: %s"
        % (
            indent,
            100 * share[0],
            what,
            runs(own[:, 0], 2),
            100 * share[1],
            runs(own[:, 1], 2),
            100 * target,
            "met" if max(share) <= target else "missed",
        )
    )
    print(
        "%spaired %s with / without the callback: wall %+.1f%% (runs: %s), CPU %+.1f%% (runs:"
        " %s)"
        % (
            indent,
            what,
            100 * np.median(paired[:, 0]),
            runs(paired[:, 0], 1),
            100 * np.median(paired[:, 1]),
            runs(paired[:, 1], 1),
        )
    )

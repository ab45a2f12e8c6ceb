"""Bounded, thread-safe caches of what the plugin reads from TensorBoard's data provider.

The data provider API has no "read one step": answering ``/pr`` for one epoch means reading the
run's whole threshold-count series (the largest series by far: docs/benchmarks.md). The
series only change when TensorBoard loads new events, which moves their ``max_step`` /
``max_wall_time`` in the (cheap) listing, so a series read once is kept
under a key made of exactly those: a new epoch is a new key, never a stale answer. Entries are
evicted least recently used first once their total size passes ``max_bytes``, so memory stays
bounded however many runs the logdir holds. Series of `BULK_SERIES_BYTES` or more (threshold
counts) have a budget of their own, so that scrubbing through the PR curves of a few runs
cannot evict the small series (confusion matrices, scalars) that ``/runs`` and
``/diagnostics`` read for every run.

Values *derived* from series (the checked steps of ``/runs``, the findings of
``/diagnostics``) are kept the same way, under keys that hold the `series_key` of every series
they were computed from, in a budget of their own: they are small and costly to recompute, and
reading a few large series must not evict them. Derived values of `BULK_SERIES_BYTES` or more
(decoded example records, an id table, a run's previews) have one more budget, so that
browsing the examples of a few runs cannot evict the findings of every run.

The listings themselves are kept for `LISTING_MAX_AGE_S`: each provider call to the Rust data
server waits on gRPC latency about as long as a whole answer should take (docs/benchmarks.md),
and TensorBoard itself only loads new events every few seconds (``--reload_interval``).

The keys include the experiment id but not the request's authentication context: one cache
serves one TensorBoard, as TensorBoard's own loaders do.
"""

import collections
import threading
import time

DEFAULT_MAX_BYTES = 48 * 1024 * 1024
DEFAULT_MAX_BULK_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_DERIVED_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BULK_DERIVED_BYTES = 24 * 1024 * 1024
BULK_SERIES_BYTES = 128 * 1024

LISTING_MAX_AGE_S = 1.0
MAX_LISTINGS = 16  # (experiment, listing kind, plugin) triples kept

# Python object overhead per stored point (datum object, step, wall time, a scalar's value),
# beyond its array.
_POINT_OVERHEAD_BYTES = 120


def series_key(experiment_id, run, tag, series, downsample=None):
    """Cache key of one series, from its listing entry (a `TimeSeries` of the provider), as
    read with ``downsample`` points (None: every point).
    """
    return (experiment_id, run, tag, series.max_step, series.max_wall_time, downsample)


def _size_of(points):
    """Approximate bytes held by ``points``, the datums of one series.

    Scalar datums are the per-point overhead alone. A tensor datum adds its array and, for a
    string tensor (an object array: the encoded threshold counts, JSON documents), the bytes
    of its strings, which the array's ``nbytes`` leaves out.
    """
    if isinstance(points, Exception):  # a series refused as unreadable: its message
        return _POINT_OVERHEAD_BYTES + len(str(points))
    size = len(points) * _POINT_OVERHEAD_BYTES
    if not points or getattr(points[0], "numpy", None) is None:
        return size  # scalars: one series holds one kind of datum
    for point in points:
        value = point.numpy
        size += value.nbytes
        if value.dtype == object:
            size += sum(len(item) for item in value.flat)
    return size


class _Lru:
    """Thread-safe mapping bounded by the total size of its values, least recently used out
    first. A value larger than the whole budget is not kept.
    """

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self._entries = collections.OrderedDict()  # key -> (value, size)
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self):
        return self._bytes

    def get(self, key):
        """The value under ``key``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value, size):
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted


class SeriesCache:
    """Series points by `series_key`, values derived from them, and recent listings.

    ``max_bytes`` bounds the series under ``bulk_series_bytes``, ``max_bulk_bytes`` the others,
    ``max_derived_bytes`` the derived values under ``bulk_series_bytes``,
    ``max_bulk_derived_bytes`` the others.
    """

    def __init__(
        self,
        max_bytes=DEFAULT_MAX_BYTES,
        max_derived_bytes=DEFAULT_MAX_DERIVED_BYTES,
        max_bulk_bytes=DEFAULT_MAX_BULK_BYTES,
        bulk_series_bytes=BULK_SERIES_BYTES,
        max_bulk_derived_bytes=DEFAULT_MAX_BULK_DERIVED_BYTES,
    ):
        self._series = _Lru(max_bytes)
        self._bulk_series = _Lru(max_bulk_bytes)
        self._bulk_series_bytes = int(bulk_series_bytes)
        self._derived = _Lru(max_derived_bytes)
        self._bulk_derived = _Lru(max_bulk_derived_bytes)
        self._listings = collections.OrderedDict()  # key -> (monotonic time, listing)
        self._lock = threading.Lock()

    @property
    def size_bytes(self):
        """Bytes of series points held (derived values not included)."""
        return self._series.size_bytes + self._bulk_series.size_bytes

    def get(self, key):
        """The cached points of ``key`` (a `series_key`), or None."""
        points = self._series.get(key)
        return points if points is not None else self._bulk_series.get(key)

    def put(self, key, points):
        """Keep ``points`` under ``key`` unless they alone exceed the whole budget of their size."""
        size = _size_of(points)
        lru = self._bulk_series if size >= self._bulk_series_bytes else self._series
        lru.put(key, points, size)

    def get_derived(self, key):
        """The value derived from series that is kept under ``key``, or None."""
        value = self._derived.get(key)
        return value if value is not None else self._bulk_derived.get(key)

    def put_derived(self, key, value, size):
        """Keep ``value`` (about ``size`` bytes), unless it alone exceeds the derived budget
        of its size.

        ``key`` must hold the `series_key` of every series ``value`` was computed from (and
        whatever else it depends on), so that new data makes a new key.
        """
        lru = self._bulk_derived if size >= self._bulk_series_bytes else self._derived
        lru.put(key, value, size)

    def fresh_listing(self, key):
        """The listing under ``key`` if fetched less than `LISTING_MAX_AGE_S` ago, else None."""
        with self._lock:
            entry = self._listings.get(key)
        if entry is not None and time.monotonic() - entry[0] < LISTING_MAX_AGE_S:
            return entry[1]
        return None

    def listing(self, key, fetch):
        """`fresh_listing` of ``key``, else ``fetch()`` (a provider ``list_*`` call), kept for
        the next requests.
        """
        value = self.fresh_listing(key)
        if value is not None:
            return value
        fetched_at = time.monotonic()
        value = fetch()
        with self._lock:
            self._listings[key] = (fetched_at, value)
            self._listings.move_to_end(key)
            while len(self._listings) > MAX_LISTINGS:
                self._listings.popitem(last=False)
        return value

"""The data provider as a source of series: listings and points of metricsdiag tensors and of
scalars, cached across requests when given a cache, read with as few provider calls as
possible and those made at once, every tensor checked before it is built (`tensor_guard`).
No decoding: what the points mean is `record_decoding`'s.
"""

import concurrent.futures
import dataclasses
import functools

from tensorboard import context as tb_context
from tensorboard.data import provider as provider_lib

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import tensor_guard
from tb_metricsdiag.format import schema

# Large enough that the provider returns every stored point of a series (no downsampling).
READ_ALL = 1 << 30

# Points read of a series of which only the latest is used: the provider keeps the last one.
LATEST = 1


@dataclasses.dataclass
class SeriesRead:
    """One provider read: ``read`` (``read_tensors`` or ``read_scalars``) of the series in
    ``listing`` (``{run: {tag: TimeSeries}}``), ``downsample`` points each (None: all).
    """

    read: object
    plugin_name: str
    listing: dict
    downsample: int = None
    key_of: object = None  # for curves: (run, tag) -> Keras log key


class ProviderSource:
    """Reads series from ``provider`` for one request (``ctx``) and experiment."""

    def __init__(self, provider, ctx=None, experiment_id="", cache=None):
        tensor_guard.install()
        self.restarts = {}  # (run, tag) -> restart of the series read (`_latest_training`)
        self._provider = provider
        self._ctx = ctx if ctx is not None else tb_context.RequestContext()
        self._eid = experiment_id
        self._cache = cache  # a `cache.SeriesCache` shared across requests, or None

    def listing(self, list_series, plugin_name, runs=None, tags=None):
        """The provider's listing ``{run: {tag: TimeSeries}}`` (``list_series`` is
        ``list_tensors`` or ``list_scalars``), limited to ``runs`` and ``tags`` when given.

        With a cache, one recent listing of the whole experiment answers every request for a
        moment (see `cache.LISTING_MAX_AGE_S`) and is filtered here.
        """
        if self._cache is None:
            run_tag_filter = None
            if runs is not None or tags is not None:
                run_tag_filter = provider_lib.RunTagFilter(runs=runs, tags=tags)
            return list_series(
                self._ctx,
                experiment_id=self._eid,
                plugin_name=plugin_name,
                run_tag_filter=run_tag_filter,
            )
        listing = self._cache.listing(
            self._listing_key(list_series, plugin_name),
            lambda: list_series(self._ctx, experiment_id=self._eid, plugin_name=plugin_name),
        )
        if runs is not None:  # looked up, not scanned: a request for one run of thousands
            listing = {run: listing[run] for run in runs if run in listing}
        if tags is None:  # callers only read listings: the cached one is not copied
            return listing
        tags = set(tags)
        return {
            run: {tag: series for tag, series in run_tags.items() if tag in tags}
            for run, run_tags in listing.items()
        }

    def listing_of_runs(self, list_series, plugin_name, runs, label):
        """The provider's listing of ``runs`` alone, asked for with a run filter: for a listing
        whose whole would be large (the ``scalars`` of a logdir, every run's headline scalars
        included) when only a few runs of it are needed. With a cache, kept under ``label``
        like a whole listing (`cache.LISTING_MAX_AGE_S`), then filtered to ``runs``.
        """
        fetch = functools.partial(
            list_series,
            self._ctx,
            experiment_id=self._eid,
            plugin_name=plugin_name,
            run_tag_filter=provider_lib.RunTagFilter(runs=runs),
        )
        if self._cache is None:
            return fetch()
        listing = self._cache.listing(self._listing_key(list_series, plugin_name) + (label,), fetch)
        return {run: listing[run] for run in runs if run in listing}

    def _listing_key(self, list_series, plugin_name):
        """Cache key of the whole experiment's listing by ``list_series`` for ``plugin_name``."""
        return (self._eid, list_series.__name__, plugin_name)

    def refresh_listings(self, kinds):
        """Fetch at once the listings of ``kinds`` (``(list_series, plugin_name)`` pairs) that
        the cache holds no fresh copy of, so that a request needing several waits once.
        """
        if self._cache is None:
            return
        expired = [
            functools.partial(self.listing, list_series, plugin_name)
            for list_series, plugin_name in kinds
            if self._cache.fresh_listing(self._listing_key(list_series, plugin_name)) is None
        ]
        _concurrently(expired)

    def read_many(self, reads):
        """``[{run: {tag: points}}]``: the points of the series listed in each `SeriesRead`,
        or, for a series holding a tensor that `tensor_guard` refused, a `schema.FormatError`
        (kept in the cache like points, so the series is not read again until it changes).
        Of a series written by several trainings, only the latest training's points are given
        (`_latest_training`); where it restarted is kept for `restart_of`.

        Series found in the cache under their current listing are not read again. The rest are
        read with one provider call per `SeriesRead`, the calls made at once (`_concurrently`).
        """
        results, pending, calls = [], [], []
        for read in reads:
            result, missing = {}, []
            for run, tags in read.listing.items():
                for tag, series in tags.items():
                    key = cache_lib.series_key(self._eid, run, tag, series, read.downsample)
                    points = self._cache.get(key) if self._cache is not None else None
                    if points is None:
                        missing.append((run, tag, key))
                    else:
                        result.setdefault(run, {})[tag] = self._latest(run, tag, points)
            results.append(result)
            if missing:
                pending.append((result, missing))
                calls.append(
                    functools.partial(
                        _checked_read,
                        read.read,
                        self._ctx,
                        experiment_id=self._eid,
                        plugin_name=read.plugin_name,
                        downsample=read.downsample or READ_ALL,
                        run_tag_filter=provider_lib.RunTagFilter(
                            runs=sorted({run for run, _, _ in missing}),
                            tags=sorted({tag for _, tag, _ in missing}),
                        ),
                    )
                )
        for (result, missing), data in zip(pending, _concurrently(calls)):
            for run, tag, key in missing:
                points = data.get(run, {}).get(tag, [])
                if self._cache is not None:
                    self._cache.put(key, points)
                result.setdefault(run, {})[tag] = self._latest(run, tag, points)
        return results

    def _latest(self, run, tag, points):
        """The latest training's ``points`` of a series, its restart kept (`_latest_training`)."""
        if isinstance(points, schema.FormatError):
            return points
        points, restart = _latest_training(points)
        if restart is not None:
            self.restarts[(run, tag)] = restart
        return points

    def restart_of(self, run):
        """``(trainings, {"step", "previous_last_step"})`` of the series of ``run`` read so far
        that restarted most often, or ``(1, None)``.
        """
        found = [restart for (name, _), restart in self.restarts.items() if name == run]
        if not found:
            return 1, None
        trainings, step, previous = max(found)
        return trainings, {"step": step, "previous_last_step": previous}


def _concurrently(calls):
    """The results of ``calls`` (functions of no argument), in order, made at once.

    Why: every call to TensorBoard's Rust data server (``--load_fast``) waits for a delayed
    acknowledgement, whatever its size, unless it is tiny (docs/benchmarks.md, latency): the server leaves Nagle's algorithm on for its
    sockets, so the body of an answer waits for the client's delayed acknowledgement of the
    headers sent just before. Calls in flight together wait for the same acknowledgement.
    """
    if len(calls) < 2:
        return [call() for call in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def _checked_read(read, *args, **kwargs):
    """``read(*args, **kwargs)`` (a provider's ``read_tensors`` or ``read_scalars``) with every
    tensor checked before it is built (`tensor_guard`); a series holding a refused tensor
    becomes the `schema.FormatError` saying why.
    """
    with tensor_guard.checking():
        data = read(*args, **kwargs)
    for tags in data.values():
        for tag, points in tags.items():
            for point in points:
                # A tensor datum holds the placeholder array; a scalar datum its one item.
                refused = tensor_guard.refusal(getattr(point, "numpy", None))
                if isinstance(getattr(point, "value", None), tensor_guard.Refusal):
                    refused = point.value
                if refused is not None:
                    tags[tag] = schema.FormatError("%s at step %d" % (refused.reason, point.step))
                    break
    return data


def _latest_training(points):
    """``(points, restart)``: the points of a series from where the latest training began,
    and ``(trainings, first step, last step before)`` of that restart, or None.

    A training written into a log_dir that already holds one starts its steps again: a point
    whose step is lower than the one before it and at most the first step of the training
    so far begins a new training. A step lower than the one before but above that first step
    is a point written out of order (or rewritten), not a restart.
    """
    if len(points) < 2:
        return points, None
    starts, first = [], points[0].step
    for index in range(1, len(points)):
        step = points[index].step
        if step < points[index - 1].step and step <= first:
            starts.append(index)
            first = step
    if not starts:
        return points, None
    last = starts[-1]
    return points[last:], (len(starts) + 1, int(points[last].step), int(points[last - 1].step))

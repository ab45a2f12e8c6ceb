"""The caches: bounded by bytes, least recently used out first, and never stale; and the
reads they leave: few, made at once."""

import threading

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.data import provider as provider_lib
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import provider_source
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.format import metadata, schema, threshold_counts


class _Point:
    def __init__(self, nbytes):
        self.numpy = np.zeros(nbytes, dtype=np.uint8)


def _points(nbytes, count=1):
    return [_Point(nbytes) for _ in range(count)]


def test_evicts_least_recently_used_within_the_byte_budget():
    cache = cache_lib.SeriesCache(max_bytes=3000)
    for key in "abc":
        cache.put(key, _points(800))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", _points(800))
    assert cache.get("b") is None and cache.get("a") is not None
    assert cache.size_bytes <= 3000


def test_an_entry_larger_than_the_budget_is_not_kept():
    cache = cache_lib.SeriesCache(max_bytes=1000)
    cache.put("small", _points(100))
    cache.put("huge", _points(5000))
    assert cache.get("huge") is None and cache.get("small") is not None


def test_large_series_cannot_evict_small_ones():
    cache = cache_lib.SeriesCache(max_bytes=3000, max_bulk_bytes=12_000, bulk_series_bytes=2000)
    cache.put("confusion a", _points(800))
    cache.put("confusion b", _points(800))
    for run in range(5):  # threshold counts of five runs: more than their own budget holds
        cache.put("counts %d" % run, _points(5000))
    assert cache.get("confusion a") is not None and cache.get("confusion b") is not None
    assert cache.get("counts 0") is None and cache.get("counts 4") is not None
    assert cache.size_bytes <= 3000 + 12_000


def test_string_points_count_their_bytes_and_large_ones_have_the_bulk_budget():
    # Encoded threshold counts come back from the providers as 0-d object arrays of bytes,
    # whose nbytes (one pointer) says nothing of the payload.
    payload = threshold_counts.encode_threshold_counts(np.arange(10 * 2 * 201).reshape(10, 2, 201))
    value = np.array(payload, dtype=object)
    assert value.nbytes < 100 < len(payload)
    series = [provider_lib.TensorDatum(step=step, wall_time=0.0, numpy=value) for step in range(50)]
    cache = cache_lib.SeriesCache(max_bytes=50 * len(payload), bulk_series_bytes=10 * len(payload))
    cache.put("counts", series)
    assert cache.size_bytes >= 50 * len(payload)
    cache.put("confusion", _points(100))
    assert (
        cache.get("counts") is not None and cache.get("confusion") is not None
    )  # separate budgets


class _CountingProvider:
    """Wraps a data provider and counts the reads that reach it."""

    def __init__(self, inner):
        self._inner = inner
        self.reads = 0

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if not name.startswith("read_"):
            return attribute

        def counted(*args, **kwargs):
            self.reads += 1
            return attribute(*args, **kwargs)

        return counted


def test_cached_reads_give_the_same_answers_with_fewer_provider_reads(callback_runs):
    root, _ = callback_runs
    provider = _CountingProvider(logdir_lib.provider_for_logdir(root))
    shared = cache_lib.SeriesCache()
    uncached = reader_lib.Reader(provider)

    def read_everything(reader):
        result = reader.evaluation("multiclass", "validation", 1)
        return result, reader.history("multiclass")

    before = provider.reads
    expected, expected_history = read_everything(uncached)
    reads_uncached = provider.reads - before
    read_everything(reader_lib.Reader(provider, cache=shared))  # fills the cache
    before = provider.reads
    cached, cached_history = read_everything(reader_lib.Reader(provider, cache=shared))
    assert provider.reads - before == 0 < reads_uncached
    np.testing.assert_array_equal(cached.confusion, expected.confusion)
    np.testing.assert_array_equal(cached.tp, expected.tp)
    assert sorted(cached_history.curves) == sorted(expected_history.curves)


class _GatheringProvider(_CountingProvider):
    """Holds every call whose name starts with ``prefix`` until ``expected`` of them are in
    flight together: calls made one after another end in `threading.BrokenBarrierError` after
    ``timeout`` seconds."""

    def __init__(self, inner, expected, prefix="read_", timeout=10):
        super().__init__(inner)
        self.barrier = threading.Barrier(expected, timeout=timeout)
        self.prefix = prefix

    def __getattr__(self, name):
        attribute = super().__getattr__(name)
        if not name.startswith(self.prefix):
            return attribute

        def gathered(*args, **kwargs):
            self.barrier.wait()
            return attribute(*args, **kwargs)

        return gathered


def test_a_cold_history_read_makes_its_two_provider_reads_at_once(callback_runs):
    """Whole series (the logs of the curves among them) and latest points: one round trip of
    waiting, not two. (Runs written before format version 3 add a read of scalars to these.)"""
    root, _ = callback_runs
    provider = _GatheringProvider(logdir_lib.provider_for_logdir(root), expected=2)
    history = reader_lib.Reader(provider, cache=cache_lib.SeriesCache()).history("binary")
    assert provider.reads == 2
    assert history.curves and history.latest["validation"].tp is not None


def test_the_expired_listings_a_run_needs_are_fetched_at_once(callback_runs):
    """Metricsdiag tensors, Keras scalars and metricsdiag scalars: one wait, not three."""
    root, _ = callback_runs
    provider = _GatheringProvider(logdir_lib.provider_for_logdir(root), expected=3, prefix="list_")
    reader = reader_lib.Reader(provider, cache=cache_lib.SeriesCache())
    assert reader.run_index("binary").has_counts


class _RecordingProvider(_CountingProvider):
    """Records the runs and the ``(tag, downsample)`` pairs of every read."""

    def __init__(self, inner):
        super().__init__(inner)
        self.series_read = []
        self.runs_read = []

    def __getattr__(self, name):
        attribute = super().__getattr__(name)
        if not name.startswith("read_"):
            return attribute

        def recorded(*args, **kwargs):
            self.runs_read.extend(kwargs["run_tag_filter"].runs)
            self.series_read.extend(
                (tag, kwargs["downsample"]) for tag in kwargs["run_tag_filter"].tags
            )
            return attribute(*args, **kwargs)

        return recorded


def test_history_reads_one_point_of_the_threshold_counts_and_agrees_with_a_whole_read(
    callback_runs,
):
    root, _ = callback_runs
    provider = _RecordingProvider(logdir_lib.provider_for_logdir(root))
    history = reader_lib.Reader(provider, cache=cache_lib.SeriesCache()).history("multiclass")
    downsample = dict(provider.series_read)
    for split in schema.SPLITS:
        assert (
            downsample[schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS)]
            == provider_source.LATEST
        )
        assert (
            downsample[schema.split_tag(split, schema.KIND_CONFUSION)] == provider_source.READ_ALL
        )
        whole = reader_lib.Reader(provider).evaluation("multiclass", split)
        latest = history.latest[split]
        assert latest.step == whole.step
        for field in ("confusion", "thresholds", "tp", "fp", "average_precision"):
            np.testing.assert_array_equal(getattr(latest, field), getattr(whole, field))


class _MemoryProvider:
    """A data provider over ``{run: {tag: (TimeSeries, [TensorDatum])}}``; ``read_tensors``
    keeps the last ``downsample`` points, as TensorBoard's providers do."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.downsamples = []

    def list_tensors(self, ctx, *, experiment_id, plugin_name, run_tag_filter=None):
        return {
            run: {tag: series for tag, (series, _) in tags.items()}
            for run, tags in self.tensors.items()
        }

    def read_tensors(self, ctx, *, experiment_id, plugin_name, downsample, run_tag_filter):
        self.downsamples.append(downsample)
        return {
            run: {
                tag: points[-downsample:]
                for tag, (_, points) in tags.items()
                if tag in run_tag_filter.tags
            }
            for run, tags in self.tensors.items()
            if run in run_tag_filter.runs
        }

    def list_scalars(self, ctx, *, experiment_id, plugin_name, run_tag_filter=None):
        return {}

    def read_scalars(self, ctx, *, experiment_id, plugin_name, downsample, run_tag_filter):
        return {}


def _series(kind, steps, values, thresholds=None):
    summary_metadata = metadata.create_summary_metadata(kind, "validation", ["a", "b"], thresholds)
    series = provider_lib.TensorTimeSeries(
        max_step=max(steps),
        max_wall_time=float(len(steps)),
        display_name="",
        description="",
        plugin_content=summary_metadata.plugin_data.content,
    )
    points = [
        provider_lib.TensorDatum(step=step, wall_time=float(i), numpy=value)
        for i, (step, value) in enumerate(zip(steps, values))
    ]
    return series, points


def test_a_latest_point_at_another_step_than_the_latest_matrix_is_read_whole():
    """Threshold counts whose last point is not the latest step (written out of order): the
    history reads them whole and finds the counts of the latest step, as `evaluation` does."""
    counts_steps = [0, 2, 1]
    counts = [np.full((2, 2, 3), step, np.int64) for step in counts_steps]
    provider = _MemoryProvider(
        {
            "run": {
                schema.split_tag("validation", schema.KIND_CONFUSION): _series(
                    schema.KIND_CONFUSION, [0, 1, 2], [np.eye(2, dtype=np.int64)] * 3
                ),
                schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS): _series(
                    schema.KIND_THRESHOLD_COUNTS, counts_steps, counts, thresholds=[0.1, 0.5, 0.9]
                ),
            }
        }
    )
    history = reader_lib.Reader(provider, cache=cache_lib.SeriesCache()).history("run")
    latest = history.latest["validation"]
    assert latest.step == 2 and not history.problems
    np.testing.assert_array_equal(latest.tp, np.full((2, 3), 2))
    assert (
        provider_source.LATEST in provider.downsamples
        and provider_source.READ_ALL in provider.downsamples
    )


# -- derived values: kept while their series are unchanged, recomputed when one changes ---


def _write_epochs(run_dir, steps, logs_only=False):
    import tensorflow as tf

    from tb_metricsdiag import summary

    rng = np.random.default_rng(len(steps))
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for step in steps:
            if not logs_only:
                for split in schema.SPLITS:
                    # Better than chance, so that a rising val_loss can be overfitting.
                    labels = rng.integers(0, 3, size=30)
                    summary.write_evaluation(
                        labels,
                        0.5 * rng.dirichlet(np.ones(3), size=30) + 0.5 * np.eye(3)[labels],
                        step=step,
                        split=split,
                        class_names=["a", "b", "c"],
                    )
            summary.write_logs({"loss": 1.0 / (step + 1), "val_loss": 0.5 + step}, step=step)
    writer.close()


@pytest.fixture
def live_logdir(tmp_path, monkeypatch):
    """A logdir of two runs with a multiplexer the test reloads, listings never reused."""
    monkeypatch.setattr(cache_lib, "LISTING_MAX_AGE_S", 0.0)
    for run in ("first", "second"):
        _write_epochs(str(tmp_path / run), range(3))
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    return tmp_path, multiplexer, data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))


def test_checked_steps_are_kept_until_their_run_changes(live_logdir):
    root, multiplexer, inner = live_logdir
    provider = _RecordingProvider(inner)
    shared = cache_lib.SeriesCache(max_bytes=0)  # no points kept: only the checked steps can answer

    def steps_by_run():
        provider.series_read.clear()
        provider.runs_read.clear()
        reader = reader_lib.Reader(provider, cache=shared)
        return reader.steps_by_run(list(reader.list_runs().values()))

    assert steps_by_run() == {"first": ([0, 1, 2], 1), "second": ([0, 1, 2], 1)}
    assert sorted(provider.runs_read) == ["first", "second"]
    assert steps_by_run() == {"first": ([0, 1, 2], 1), "second": ([0, 1, 2], 1)}
    assert provider.runs_read == []
    _write_epochs(str(root / "second"), [3])
    multiplexer.Reload()
    assert steps_by_run() == {"first": ([0, 1, 2], 1), "second": ([0, 1, 2, 3], 1)}
    assert provider.runs_read == ["second"]  # the changed run alone


def test_diagnostics_are_recomputed_only_when_a_series_of_the_run_changes(live_logdir, monkeypatch):
    root, multiplexer, provider = live_logdir
    from tb_metricsdiag import diagnostics
    from tb_metricsdiag.backend import plugin as plugin_lib

    diagnosed = []
    evaluate = diagnostics.evaluate
    monkeypatch.setattr(
        plugin_lib.diagnostics,
        "evaluate",
        lambda history: diagnosed.append(history.run) or evaluate(history),
    )
    plugin = plugin_lib.MetricsDiagLoader().load(
        base_plugin.TBContext(logdir=str(root), data_provider=provider)
    )
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]))

    def findings(run):
        response = client.get("/data/plugin/metricsdiag/diagnostics", query_string={"run": run})
        assert response.status_code == 200
        return response.get_json()["findings"]

    first = findings("first")
    assert findings("first") == first and findings("second") is not None
    assert diagnosed == ["first", "second"]
    # Only a scalar moves: the rising validation loss of three more epochs is overfitting.
    _write_epochs(str(root / "first"), range(3, 6), logs_only=True)
    multiplexer.Reload()
    assert "overfitting" in [finding["rule"] for finding in findings("first")]
    assert findings("second") is not None
    assert diagnosed == ["first", "second", "first"]


def test_derived_values_stay_within_their_own_budget():
    cache = cache_lib.SeriesCache(max_bytes=10_000, max_derived_bytes=1000)
    for key in "abc":
        cache.put_derived(key, key * 3, 400)
    assert cache.get_derived("a") is None and cache.get_derived("c") == "ccc"
    cache.put_derived("huge", "x", 5000)
    assert cache.get_derived("huge") is None
    cache.put("points", _points(100))
    assert cache.get("points") is not None and cache.get_derived("c") == "ccc"


def test_new_data_changes_the_key():
    listing = provider_lib.TensorTimeSeries(
        max_step=3, max_wall_time=10.0, plugin_content=b"", description="", display_name=""
    )
    grown = provider_lib.TensorTimeSeries(
        max_step=4, max_wall_time=11.0, plugin_content=b"", description="", display_name=""
    )
    assert cache_lib.series_key("e", "r", "t", listing) != cache_lib.series_key(
        "e", "r", "t", grown
    )

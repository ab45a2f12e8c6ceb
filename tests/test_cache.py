"""The series cache: bounded by bytes, least recently used out first, and never stale."""

import numpy as np
from tensorboard.data import provider as provider_lib

from tb_metricsdiag import cache as cache_lib
from tb_metricsdiag import reader as reader_lib


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
    provider = _CountingProvider(reader_lib.provider_for_logdir(root))
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


def test_a_cold_history_read_costs_one_tensor_and_one_scalar_round_trip(callback_runs):
    root, _ = callback_runs
    provider = _CountingProvider(reader_lib.provider_for_logdir(root))
    reader_lib.Reader(provider, cache=cache_lib.SeriesCache()).history("binary")
    assert provider.reads == 2


def test_new_data_changes_the_key():
    listing = provider_lib.TensorTimeSeries(
        max_step=3, max_wall_time=10.0, plugin_content=b"", description="", display_name=""
    )
    grown = provider_lib.TensorTimeSeries(
        max_step=4, max_wall_time=11.0, plugin_content=b"", description="", display_name=""
    )
    assert cache_lib.series_key("e", "r", "t", listing) != cache_lib.series_key("e", "r", "t", grown)



def test_derived_values_stay_within_their_own_budget():
    cache = cache_lib.SeriesCache(max_bytes=10_000, max_derived_bytes=1000)
    for key in "abc":
        cache.put_derived(key, key * 3, 400)
    assert cache.get_derived("a") is None and cache.get_derived("c") == "ccc"
    cache.put_derived("huge", "x", 5000)
    assert cache.get_derived("huge") is None
    cache.put("points", _points(100))
    assert cache.get("points") is not None and cache.get_derived("c") == "ccc"

"""Crossing samples (`core.crossings`, `format.crossings`): the first examples by position of
every curve, bin and polarity against a NumPy brute force, streaming and merging equal to one
batch, the byte budget keeping the bins nearest 0.5, and damaged payloads refused.
"""

import struct

import numpy as np
import pytest
from example_checks import crossing_slots, stored_slots

from tb_metricsdiag.core import counting
from tb_metricsdiag.core import crossings as crossings_lib
from tb_metricsdiag.format import crossings as crossings_format
from tb_metricsdiag.format.schema import FormatError


def _task(rng, n, classes, multi_label=False, dtype=np.float64):
    """``(scores [n, C] of ``dtype``, positives [n, C])`` of a softmax (or sigmoid) model."""
    logits = rng.normal(size=(n, classes)) * 2.5
    if multi_label:
        positives = rng.random((n, classes)) < 0.3
        return (1 / (1 + np.exp(-(logits + 2 * positives)))).astype(dtype), positives
    labels = rng.integers(0, classes, n)
    logits[np.arange(n), labels] += 2.0
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = (scores / scores.sum(axis=1, keepdims=True)).astype(dtype)
    return scores, labels[:, None] == np.arange(classes)


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_first_positions_per_bin_matchcrossing_slots(multi_label, k):
    rng = np.random.default_rng(7 + k)
    scores, positives = _task(rng, 3000, 5, multi_label)
    thresholds = counting.default_thresholds()
    samples = crossings_lib.CrossingSamples(5, thresholds, k=k)
    samples.update(np.arange(3000), scores, positives)
    result = samples.result()
    assert stored_slots(result) == crossing_slots(scores, positives, thresholds, k)
    # Each stored float32 score is the example's, within one float32 step, inside its bin.
    exact = scores[result["position"], result["curve"]]
    np.testing.assert_allclose(result["score"], exact, rtol=2**-23, atol=0)
    assert np.array_equal(crossings_lib.bins_of(result["score"], thresholds), result["bin"])
    assert np.array_equal(result["positive"], positives[result["position"], result["curve"]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float32: compared in float32
def test_streaming_in_any_batches_and_merging_equal_one_batch(dtype):
    rng = np.random.default_rng(3)
    scores, positives = _task(rng, 5000, 7, dtype=dtype)
    thresholds = counting.default_thresholds()
    whole = crossings_lib.CrossingSamples(7, thresholds)
    whole.update(np.arange(5000), scores, positives)
    streamed = crossings_lib.CrossingSamples(7, thresholds)
    order = rng.permutation(5000)  # batches in no particular order of positions
    for batch in np.array_split(order, 37):
        streamed.update(batch, scores[batch], positives[batch])
    # Few large batches in no order: each is sampled in several chunks, and the floors of
    # bins filled by an earlier batch's later positions must not turn its rows away.
    large = crossings_lib.CrossingSamples(7, thresholds)
    for batch in np.array_split(rng.permutation(5000), 3):
        large.update(batch, scores[batch], positives[batch])
    halves = [crossings_lib.CrossingSamples(7, thresholds) for _ in range(2)]
    for rank, half in enumerate(halves):  # two processes, interleaved positions
        mine = np.arange(rank, 5000, 2)
        for batch in np.array_split(mine, 5):
            half.update(batch, scores[batch], positives[batch])
    halves[0].merge(halves[1])
    ascending = crossings_lib.CrossingSamples(7, thresholds)  # each curve's floor kept between
    for batch in np.array_split(np.arange(5000), 23):  # batches, raised as its bins fill
        ascending.update(batch, scores[batch], positives[batch])
    expected = whole.result()
    assert stored_slots(expected) == crossing_slots(scores, positives, thresholds, 2)
    for other in (streamed.result(), large.result(), halves[0].result(), ascending.result()):
        for name in expected:
            assert np.array_equal(other[name], expected[name]), name


def test_only_the_first_scanned_rows_are_sampled():
    rng = np.random.default_rng(4)
    scores, positives = _task(rng, 900, 3)
    thresholds = np.linspace(0, 1, 11)
    samples = crossings_lib.CrossingSamples(3, thresholds, scanned_rows=500)
    samples.update(np.arange(900), scores, positives)
    result = samples.result()
    assert result["position"].max() < 500
    assert stored_slots(result) == crossing_slots(scores, positives, thresholds, 2, scanned=500)


def test_round_trip_and_budget_keeps_the_bins_nearest_one_half():
    rng = np.random.default_rng(5)
    scores, positives = _task(rng, 4000, 10)
    thresholds = counting.default_thresholds()
    samples = crossings_lib.CrossingSamples(10, thresholds)
    samples.update(np.arange(4000), scores, positives)
    full = samples.result()
    whole = crossings_format.decode_crossings(
        crossings_format.encode_crossings(samples, 4000, False, budget=10**9)
    )
    whole.check_grid(thresholds)
    assert (whole.first_bin, whole.num_bins) == (0, thresholds.size)
    for name in full:
        assert np.array_equal(getattr(whole, name), full[name]), name
    payload = crossings_format.encode_crossings(samples, 4000, False, budget=3000)
    assert len(payload) <= 3000
    trimmed = crossings_format.decode_crossings(payload)
    trimmed.check_grid(thresholds)
    center = int(np.searchsorted(thresholds, 0.5, side="right") - 1)
    low, high = trimmed.first_bin, trimmed.first_bin + trimmed.num_bins
    assert low <= center < high and abs((center - low) - (high - 1 - center)) <= 1
    inside = (full["bin"] >= low) & (full["bin"] < high)
    assert np.array_equal(trimmed.position, full["position"][inside])
    # One bin more would not have fitted.
    wider = crossings_lib.nearest_bins(center, thresholds.size, trimmed.num_bins + 1)
    more = (full["bin"] >= wider[0]) & (full["bin"] < wider[0] + wider[1])
    assert more.sum() > inside.sum()
    # The span of a curve lists its samples in [t_low, t_high) of one polarity.
    position, score = trimmed.span(3, center - 2, center + 2, True)
    assert np.all(positives[position, 3])
    assert np.all((score >= thresholds[center - 2]) & (score < thresholds[center + 2]))


def _payload():
    rng = np.random.default_rng(6)
    scores, positives = _task(rng, 300, 3)
    samples = crossings_lib.CrossingSamples(3, np.linspace(0, 1, 21))
    samples.update(np.arange(300), scores, positives)
    return crossings_format.encode_crossings(samples, 300, False)


_HEADER = struct.calcsize("<BBIIIIIBIII")


def _with_header_field(payload, offset, fmt, value):
    return payload[:offset] + struct.pack(fmt, value) + payload[offset + struct.calcsize(fmt) :]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p[:-1],
        lambda p: p + b"\x00",
        lambda p: b"\x02" + p[1:],  # layout
        lambda p: _with_header_field(p, 2, "<I", 1),  # one class
        lambda p: _with_header_field(p, 2, "<I", 10**6),  # classes beyond the limit
        lambda p: _with_header_field(p, 6, "<I", 10),  # fewer rows than positions
        lambda p: _with_header_field(p, 10, "<I", 10),  # fewer scanned rows than positions
        lambda p: _with_header_field(p, 22, "<B", 0),  # k = 0
        lambda p: _with_header_field(p, 27, "<I", 10**6),  # bins beyond the grid
        lambda p: _with_header_field(p, 31, "<I", 10**9),  # samples beyond the slots
        lambda p: p[: _HEADER + 1] + b"\xff" * 4 + p[_HEADER + 5 :],  # slot bits
        lambda p: p[:-4] + struct.pack("<f", float("nan")),  # a score
    ],
)
def test_damaged_payloads_are_refused(damage):
    payload = _payload()
    crossings_format.decode_crossings(payload).check_grid(np.linspace(0, 1, 21))
    with pytest.raises(FormatError):
        crossings_format.decode_crossings(damage(payload)).check_grid(np.linspace(0, 1, 21))


def test_scores_outside_their_bins_and_other_grids_are_refused():
    payload = _payload()
    stored = crossings_format.decode_crossings(payload)
    with pytest.raises(FormatError, match="another threshold grid"):
        stored.check_grid(np.linspace(0, 1, 11))
    with pytest.raises(FormatError, match="another threshold grid"):
        stored.check_grid(np.linspace(0, 0.9, 21))
    # The first score moved one bin up: positions and bits still check, the bin does not.
    at = len(payload) - 4 * stored.score.size
    moved = np.float32(stored.score[0] + 0.05)
    damaged = payload[:at] + struct.pack("<f", moved) + payload[at + 4 :]
    with pytest.raises(FormatError, match="outside its bin"):
        crossings_format.decode_crossings(damaged).check_grid(np.linspace(0, 1, 21))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampling_fewer_bins_keeps_those_bins_samples(dtype):
    # The bins nearest 0.5 sampled alone (`max_bins`, as the writers' `sampled_bins`) hold what
    # they hold when every bin is sampled; scores outside them are never kept.
    rng = np.random.default_rng(11)
    scores, positives = _task(rng, 4000, 6, dtype=dtype)
    thresholds = counting.default_thresholds()
    every = crossings_lib.CrossingSamples(6, thresholds)
    few = crossings_lib.CrossingSamples(6, thresholds, max_bins=9)
    for batch in np.array_split(np.arange(4000), 7):
        every.update(batch, scores[batch], positives[batch])
        few.update(batch, scores[batch], positives[batch])
    assert few.num_bins == 9 and few.first_bin > 0
    expected, got = every.result(), few.result()
    inside = (expected["bin"] >= few.first_bin) & (expected["bin"] < few.first_bin + 9)
    assert inside.sum() and not inside.all()
    for name in expected:
        assert np.array_equal(got[name], expected[name][inside]), name
    assert crossings_format.sampled_bins(10) >= crossings_format.MIN_SAMPLED_BINS

"""Crossing samples as stored (``metricsdiag/{split}/crossings``, `schema.KIND_CROSSINGS`): per
epoch and split, for every curve (class one-vs-rest; label, multi-label), every bin between two
stored thresholds and both polarities, the first few examples by position with their score
(`core.crossings.CrossingSamples`). With the threshold counts of the same step they answer
which examples change their decision when a curve's threshold moves (the ``/crossings``
route): the counts are exact, the examples a sample.

Little-endian, a string scalar:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1 | flags: bit 0 set for a multi-label task |
| 2-5 | ``C`` curves (classes, or labels), uint32 |
| 6-9 | ``n``, uint32: the split's rows, positions ``0..n-1`` (as the examples record's) |
| 10-13 | ``R``, uint32: only positions below ``R`` were sampled (`core.crossings.SCANNED_ROWS`) |
| 14-17 | ``T``, uint32: the thresholds of the grid (the threshold counts') |
| 18-21 | CRC-32 of the grid's ``T`` float64 values (little-endian): the grid the bins are of |
| 22 | ``k``, uint8: samples per curve, bin and polarity at most |
| 23-26 | ``B0``, uint32: the first bin stored |
| 27-30 | ``W``, uint32: the bins stored, ``B0 .. B0 + W - 1`` |
| 31-34 | ``S``, uint32: the samples |
| 35 | type code of the positions (``B``, ``H``, ``i``, ``q``) |
| 36- | ``ceil(C x W x 2 x k / 8)`` bytes of slot bits (`numpy.packbits`): per curve, bin and polarity (negatives first), ``k`` bits, the first ``m`` set for ``m`` samples; the ``S`` positions and then the ``S`` float32 scores, slot by slot, ascending positions inside each |

- Bin ``j`` holds the scores that reach exactly ``j + 1`` thresholds (``t_j <= score <
  t_{j+1}``; the last bin ``score >= t_{T-1}``), compared as the counts compare
  (`counting.threshold_bucket`). A curve's score is its class's (label's) probability; a
  positive is an example of that class (with that label).
- The samples of a slot are its first ``m <= k`` examples by position among the rows at
  positions below ``R`` (whatever the batches). A score is the example's float32, moved by at
  most one float32 step into its bin where rounding to float32 left it.
- Budget (`default_budget`): `BASE_BUDGET` bytes up to `BASE_CURVES` curves,
  `BUDGET_PER_CURVE` more per further curve, at most `MAX_BUDGET`. What does not fit drops
  the bins farthest from the default threshold 0.5 first (``B0``, ``W`` say which bins are
  kept, for every curve alike): a span outside them is counted exactly but lists nothing.

Checked on read (`decode_crossings`), before anything is allocated: every size against the
`schema` limits and the payload's exact length; then the slot bits (each slot's samples a
prefix, as many as ``S``, the padding bits clear), positions inside ``0..min(n, R)-1`` and
ascending inside each slot, finite scores; with the grid (`StoredCrossings.check_grid`, where
the threshold counts are read): the same grid, and every score inside its bin. Pure NumPy; a
problem is a `FormatError`.
"""

import dataclasses
import struct
import zlib

import numpy as np

from tb_metricsdiag.core import crossings as crossings_lib
from tb_metricsdiag.format import packed
from tb_metricsdiag.format.integer_counts import compact_ints
from tb_metricsdiag.format.schema import (
    MAX_CLASSES,
    MAX_COUNT_VALUES,
    MAX_SPLIT_EXAMPLES,
    FormatError,
)

LAYOUT = 1

_MULTI_LABEL = 1

_HEADER = "<BBIIIIIBIII"  # layout, flags, C, n, R, T, grid CRC, k, B0, W, S

MAX_SAMPLES_PER_BIN = 16
"""The most samples per slot a reader accepts (`core.crossings.SAMPLES_PER_BIN` is 2)."""

BASE_BUDGET = 12_000
"""Bytes per epoch and split up to `BASE_CURVES` curves: at 10,000 examples x 10 classes the
example records stay within the contract's 64 KB (docs/benchmarks.md, section 14)."""

BASE_CURVES = 10

BUDGET_PER_CURVE = 4
"""Bytes more per curve beyond `BASE_CURVES`: 16 KB at 1,000 classes, where the whole epoch
(counts and every example record) must stay within 256 KB and the cells' examples take most
(docs/benchmarks.md, section 14); the bins nearest 0.5 still fit."""

MAX_BUDGET = 16_000
"""The most bytes per epoch and split, however many curves."""


def default_budget(num_curves):
    """The bytes one epoch's crossing samples of a split may take (module docstring)."""
    extra = max(0, int(num_curves) - BASE_CURVES) * BUDGET_PER_CURVE
    return min(MAX_BUDGET, BASE_BUDGET + extra)


MIN_SAMPLED_BINS = 32
"""Bins sampled at least (`sampled_bins`), where few samples fill them (many classes)."""


def sampled_bins(num_curves, k=crossings_lib.SAMPLES_PER_BIN):
    """How many bins nearest 0.5 are worth sampling for `default_budget`: twice the bins whose
    slots the budget holds all filled, at least `MIN_SAMPLED_BINS`, and never more than the
    budget's slot bits alone allow (the bins kept are usually those, and a few more).
    """
    budget = default_budget(num_curves)
    slots_per_bin = int(num_curves) * 2 * int(k)
    filled = budget // (slots_per_bin * (2 + 4))  # uint16 positions and float32 scores
    return int(min(budget * 8 // slots_per_bin, max(2 * filled, MIN_SAMPLED_BINS)))


def grid_checksum(thresholds):
    """The CRC-32 of a threshold grid's float64 values (little-endian)."""
    return zlib.crc32(np.ascontiguousarray(thresholds, dtype="<f8").tobytes())


def _position_bytes(kept):
    return compact_ints(kept["position"].max(initial=0)).itemsize


def _kept_width(samples, kept, budget):
    """The most bins nearest the default threshold whose samples fit ``budget`` bytes."""
    total_bins = samples.thresholds.size
    center = crossings_lib.center_bin(samples.thresholds)
    per_bin = np.bincount(kept["bin"], minlength=total_bins)
    before = np.concatenate([[0], np.cumsum(per_bin)])
    widths = np.arange(samples.num_bins + 1)
    firsts = np.clip(center - widths // 2, 0, total_bins - widths)
    entries = before[firsts + widths] - before[firsts]
    slot_bytes = -(-samples.num_curves * widths * 2 * samples.k // 8)
    sample_bytes = entries * (_position_bytes(kept) + 4)
    cost = struct.calcsize(_HEADER) + 1 + slot_bytes + sample_bytes
    return int(np.flatnonzero(cost <= budget).max(initial=0))


def stored_samples(samples, budget=None):
    """``(kept, first, width)``: the samples (`core.crossings.CrossingSamples.result`) of the
    ``width`` bins from ``first`` that are stored within ``budget`` bytes (`default_budget`
    when None), those nearest 0.5 first.
    """
    kept = samples.result()
    budget = default_budget(samples.num_curves) if budget is None else int(budget)
    width = _kept_width(samples, kept, budget)
    first, width = crossings_lib.nearest_bins(
        crossings_lib.center_bin(samples.thresholds), samples.thresholds.size, width
    )
    inside = (kept["bin"] >= first) & (kept["bin"] < first + width)
    return {name: values[inside] for name, values in kept.items()}, first, width


def encode_crossings(samples, num_rows, multi_label, budget=None, stored=None):
    """The stored bytes of one epoch's crossing samples of a split.

    Args:
      samples: the epoch's `core.crossings.CrossingSamples`.
      num_rows: ``n``, the split's rows.
      multi_label: whether the curves are labels.
      budget: at most this many bytes (`default_budget` when None): the bins farthest from
        0.5 are dropped first.
      stored: `stored_samples` of ``samples`` within ``budget``, when already chosen.
    """
    kept, first, width = stored_samples(samples, budget) if stored is None else stored
    if kept["position"].size and kept["position"].max() >= num_rows:
        raise ValueError("samples beyond the %d rows" % num_rows)
    groups = (kept["curve"] * width + kept["bin"] - first) * 2 + kept["positive"]
    slots = np.zeros((samples.num_curves * width * 2, samples.k), dtype=bool)
    per_group = np.bincount(groups, minlength=slots.shape[0])
    slots[:] = np.arange(samples.k) < per_group[:, None]
    code, positions = packed.packed_ints(kept["position"])
    header = struct.pack(
        _HEADER,
        LAYOUT,
        _MULTI_LABEL if multi_label else 0,
        samples.num_curves,
        num_rows,
        samples.scanned_rows,
        samples.thresholds.size,
        grid_checksum(samples.thresholds),
        samples.k,
        first,
        width,
        kept["position"].size,
    )
    return b"".join(
        [
            header,
            code,
            np.packbits(slots.reshape(-1)).tobytes(),
            positions,
            packed.packed_floats(kept["score"]),
        ]
    )


@dataclasses.dataclass(frozen=True)
class StoredCrossings:
    """One epoch's crossing samples of a split, decoded and checked (`decode_crossings`).

    Attributes:
      num_classes: ``C`` curves (classes; labels where ``multi_label``).
      num_rows: ``n``; scanned_rows: ``R`` (positions below it were sampled).
      num_thresholds: ``T``; checksum: the grid's CRC-32 (`grid_checksum`).
      per_bin: ``k``; first_bin, num_bins: the bins stored (``B0``, ``W``).
      curve, bin, positive, position, score: ``[S]`` the samples, slot by slot.
    """

    num_classes: int
    multi_label: bool
    num_rows: int
    scanned_rows: int
    num_thresholds: int
    checksum: int
    per_bin: int
    first_bin: int
    num_bins: int
    curve: np.ndarray
    bin: np.ndarray
    positive: np.ndarray
    position: np.ndarray
    score: np.ndarray

    def check_grid(self, thresholds, what="stored crossing samples"):
        """Refuse (`FormatError`) samples of another grid than ``thresholds`` (the threshold
        counts'), or with a score outside its bin.
        """
        thresholds = np.asarray(thresholds, dtype=np.float64)
        if thresholds.size != self.num_thresholds or grid_checksum(thresholds) != self.checksum:
            raise FormatError(
                "%s: sampled on another threshold grid (%d values) than the threshold counts'"
                " (%d)" % (what, self.num_thresholds, thresholds.size)
            )
        if np.any(crossings_lib.bins_of(self.score, thresholds) != self.bin):
            raise FormatError("%s: a score outside its bin" % what)

    def covers(self, low, high):
        """Whether bins ``low .. high - 1`` are all stored."""
        return self.first_bin <= low and high <= self.first_bin + self.num_bins

    def span(self, curve, low, high, positive):
        """``(position, score)``: the samples of ``curve`` of one polarity in bins ``low ..
        high - 1`` (the scores in ``[t_low, t_high)``), by bin and position.
        """
        chosen = (
            (self.curve == curve)
            & (self.positive == bool(positive))
            & (self.bin >= low)
            & (self.bin < high)
        )
        return self.position[chosen], self.score[chosen].astype(np.float64)


def decode_crossings(payload, what="stored crossing samples"):
    """The `StoredCrossings` of `encode_crossings` bytes.

    Raises:
      FormatError: anything but such a payload (the module docstring lists the checks).
    """
    cursor = packed.Cursor(payload, what)
    header = cursor.unpack(_HEADER, "header")
    layout, flags, curves, rows, scanned, thresholds, checksum, k, first, width, count = header
    if layout != LAYOUT or flags & ~_MULTI_LABEL:
        cursor.fail(
            "unknown layout %d or flags %d (this reader knows layout %d)" % (layout, flags, LAYOUT)
        )
    multi_label = bool(flags & _MULTI_LABEL)
    if not (1 if multi_label else 2) <= curves <= MAX_CLASSES:
        cursor.fail("%d curves, expected %d to %d" % (curves, 1 if multi_label else 2, MAX_CLASSES))
    if rows > MAX_SPLIT_EXAMPLES or scanned < 1 or not 1 <= k <= MAX_SAMPLES_PER_BIN:
        cursor.fail(
            "%d rows (at most %d), %d scanned, %d samples per bin (1 to %d)"
            % (rows, MAX_SPLIT_EXAMPLES, scanned, k, MAX_SAMPLES_PER_BIN)
        )
    if not 1 <= thresholds <= MAX_COUNT_VALUES or first + width > thresholds:
        cursor.fail("bins %d to %d of %d thresholds" % (first, first + width, thresholds))
    bits = curves * width * 2 * k
    (position_type,) = cursor.codes(1, "type code")
    slot_bytes = cursor.array(np.uint8, -(-bits // 8), "slot bits")
    if count > bits:
        cursor.fail("%d samples in %d slots" % (count, bits))
    position = cursor.ints(position_type, count, "positions")
    score = cursor.array("<f4", count, "scores").astype(np.float32)
    cursor.done()
    slots = np.unpackbits(slot_bytes)
    if np.any(slots[bits:]):
        cursor.fail("padding bits set")
    slots = slots[:bits].reshape(-1, k).astype(bool)
    if np.any(slots[:, 1:] & ~slots[:, :-1]) or int(slots.sum()) != count:
        cursor.fail("slot bits that are not a prefix per slot, or not %d samples" % count)
    groups = np.repeat(np.arange(slots.shape[0]), slots.sum(axis=1))
    if count and (position.min() < 0 or position.max() >= min(rows, scanned)):
        cursor.fail("positions outside the %d sampled rows" % min(rows, scanned))
    if np.any((groups[1:] == groups[:-1]) & (position[1:] <= position[:-1])):
        cursor.fail("samples of a slot out of position order")
    if not np.all(np.isfinite(score)):
        cursor.fail("scores that are not finite")
    return StoredCrossings(
        curves,
        multi_label,
        rows,
        scanned,
        thresholds,
        checksum,
        k,
        first,
        width,
        groups // 2 // max(width, 1),
        groups // 2 % max(width, 1) + first,
        (groups % 2).astype(bool),
        position,
        score,
    )

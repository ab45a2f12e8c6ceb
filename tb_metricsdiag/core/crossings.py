"""Which examples cross a moved threshold: per curve, per bin between two stored thresholds and
per polarity, the first few examples by position with their score. Pure NumPy.

A **curve** is one class one-vs-rest (single-label: every class, binary runs included; its
score is the class's probability) or one label (multi-label: the label's probability). Moving
the threshold of a curve from ``t_a`` to ``t_b`` (``a < b``, both on the stored grid) changes
the decision of exactly the examples whose score lies in ``[t_a, t_b)``: the positives among
them go TP -> FN, the negatives FP -> TN (and back when it moves down). Their exact numbers
are differences of the stored threshold counts; *which* examples they are needs per-example
scores, which the records do not keep. `CrossingSamples` keeps a sample that any such span
can list from:

- a **bin** is the interval between two consecutive thresholds of the grid, ``t_j <= score <
  t_{j+1}``, and the last one ``score >= t_{T-1}``: bin ``j`` holds the scores that reach
  exactly ``j + 1`` thresholds (`counting.threshold_bucket`, the counts' own comparison, so
  a bin's examples are exactly those the counts of its two thresholds differ by);
- per (curve, bin, polarity) it keeps the first `SAMPLES_PER_BIN` examples **by position**
  (the lowest positions win, whatever the batches: streaming equals one batch), with the
  score as float32 (nudged by at most one float32 step into its bin where rounding moved it
  out; an example whose bin holds no float32 is not kept);
- only positions below `SCANNED_ROWS` are looked at, which bounds the cost per epoch;
- it keeps the bins nearest the default threshold 0.5 (`MAX_STATE_SLOTS` bounds its memory
  at many classes x fine grids; all 201 bins of the default grid at 2,048 classes).

A span's listed examples are then the samples of its bins: at most ``SAMPLES_PER_BIN`` per
bin and polarity, lower positions first. Updating costs O(rows x curves) comparisons: a
negative below its curve's floor (the lowest bin whose negatives are not all taken) is turned
away at once, which is most of a softmax's scores once the first rows have filled the bins near
0; the others are bucketed, and first occurrences found by a reversed fancy assignment, no sort
of the rows. The state is O(curves x bins x `SAMPLES_PER_BIN`).
"""

import numpy as np

from tb_metricsdiag.core import counting

SAMPLES_PER_BIN = 2
"""Examples kept per curve, bin and polarity: two per bin list about two per threshold step,
enough to see what a step of the slider moves without storing the scores."""

SCANNED_ROWS = 1 << 16
"""Only the rows at positions ``0..65535`` are sampled: the cost per epoch stays bounded
however large the split (a split of a million rows costs what one of 65,536 does)."""

MAX_STATE_SLOTS = 1 << 21
"""Slots (curve x bin x polarity x sample) kept while an epoch is sampled, at most: 16 MB of
positions and scores. The default grid's 202 bins fit up to 2,048 classes; finer grids keep
the bins nearest 0.5."""

# Rows are sampled in chunks of at most this many entries (rows x curves), growing from the
# first: the temporaries of a chunk stay small, and the floors raised after each small first
# chunk turn away most entries of the later, larger ones.
_CHUNK_ENTRIES = 1 << 18
_FIRST_CHUNK_ENTRIES = 1 << 11

DEFAULT_THRESHOLD = 0.5
"""The decision threshold the kept bins are centred on (the one the PR panel starts at)."""


def bins_of(scores, thresholds):
    """The bin of each score: ``j`` for ``thresholds[j] <= score < thresholds[j + 1]``, ``T - 1``
    for scores reaching the last threshold, -1 for scores below the first (and NaN).
    """
    return counting.threshold_bucket(scores, thresholds) - 1


def center_bin(thresholds):
    """The bin holding `DEFAULT_THRESHOLD` (0 when it lies below the grid)."""
    # A float64 compared with float64 thresholds: the counts' comparison, without bucketing.
    place = np.searchsorted(np.asarray(thresholds, dtype=np.float64), DEFAULT_THRESHOLD, "right")
    return max(0, int(place) - 1)


def nearest_bins(center, num_bins, width):
    """``(first, count)``: the ``width`` bins (at most ``num_bins``) nearest bin ``center``,
    contiguous; below it first where both sides are equally near.
    """
    width = max(0, min(int(width), int(num_bins)))
    first = min(max(0, center - width // 2), num_bins - width)
    return first, width


class CrossingSamples:
    """The first `SAMPLES_PER_BIN` examples by position of every curve, bin and polarity,
    accumulated batch by batch (and mergeable across processes).

    Args:
      num_curves: ``C`` classes one-vs-rest (``K`` labels, multi-label).
      thresholds: the run's threshold grid (ascending, as the counts').
      k: samples per curve, bin and polarity.
      scanned_rows: only positions below this are sampled.
      max_bins: at most this many bins are sampled, those nearest 0.5 (None: as many as
        `MAX_STATE_SLOTS` allows): the bins a stored budget could never hold cost nothing.

    >>> samples = CrossingSamples(2, [0.0, 0.25, 0.5, 0.75, 1.0], k=1)
    >>> samples.update([0, 1, 2], [[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]],
    ...                [[True, False], [False, True], [True, False]])
    >>> kept = samples.result()
    >>> [(int(c), int(b), bool(p), int(r)) for c, b, p, r in zip(
    ...     kept["curve"], kept["bin"], kept["positive"], kept["position"])]
    [(0, 1, False, 1), (0, 2, True, 0), (1, 1, False, 0), (1, 2, True, 1)]
    """

    def __init__(
        self, num_curves, thresholds, k=SAMPLES_PER_BIN, scanned_rows=SCANNED_ROWS, max_bins=None
    ):
        self.num_curves, self.k = int(num_curves), int(k)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        if self.num_curves < 1 or self.k < 1 or self.thresholds.ndim != 1:
            raise ValueError("crossing samples need curves, k >= 1 and a threshold list")
        self.scanned_rows = int(scanned_rows)
        total_bins = self.thresholds.size
        width = MAX_STATE_SLOTS // (self.num_curves * 2 * self.k)
        if max_bins is not None:
            width = min(width, int(max_bins))
        self.first_bin, self.num_bins = nearest_bins(center_bin(self.thresholds), total_bins, width)
        if self.num_bins == 0:
            raise ValueError("too many curves for crossing samples: %d" % self.num_curves)
        groups = self.num_curves * self.num_bins * 2
        # Row 1 + g: group g's (curve, bin, polarity) samples' positions, ascending; unused
        # slots hold `scanned_rows`, beyond every sampled position. Row 0 takes the entries of
        # bins not kept: its -1 is before every position, so none enters it.
        self._position = np.full((groups + 1, self.k), self.scanned_rows, dtype=np.int64)
        self._position[0] = -1
        self._score = np.zeros((groups + 1, self.k), dtype=np.float32)
        # The row of each bucket (`counting.threshold_bucket`) of curve 0's negatives: far
        # below 0 for the bins not kept, which stays below 0 and is clipped to row 0.
        kept = np.arange(-1, self.thresholds.size) - self.first_bin
        self._bucket_rows = np.where((kept >= 0) & (kept < self.num_bins), 1 + 2 * kept, -(1 << 40))
        self._curve_offsets = np.arange(self.num_curves) * (2 * self.num_bins)
        self._scratch = None  # made at the first update, never shared (`__getstate__`)
        edges = counting.comparison_edges(self.thresholds, np.float32)
        # Each bin's float32 scores: [low, high] (the last bin has no top).
        self._low = edges
        self._high = np.append(np.nextafter(edges[1:], -np.inf, dtype=np.float32), np.inf)
        # Per curve, the lowest threshold of the bins whose negatives can still enter
        # (`_negative_floors`): most scores of a softmax are near 0, in bins filled by the
        # first rows, and are turned away by one comparison instead of being bucketed.
        # The floors hold while the rows come after every row seen so far (`_seen_up_to`).
        self._floor_bins = np.full(self.num_curves, self.first_bin)
        self._seen_up_to = -1

    def __getstate__(self):
        # What another process merges: the samples, not the scratch space.
        return {**self.__dict__, "_scratch": None}

    def update(self, positions, scores, positives):
        """Add one batch.

        Args:
          positions: ``[n]`` the rows' positions (distinct, never given before).
          scores: ``[n, C]`` each row's score of every curve (finite rows only).
          positives: ``[n, C]`` whether the row is an example of that class (label).
        """
        positions = np.asarray(positions, dtype=np.int64)
        scanned = positions < self.scanned_rows
        if not scanned.any():
            return
        scores = np.asarray(scores)
        positives = np.asarray(positives, dtype=bool)
        if not scanned.all():
            positions, scores, positives = positions[scanned], scores[scanned], positives[scanned]
        if np.any(np.diff(positions) < 0):
            order = np.argsort(positions, kind="stable")
            positions, scores, positives = positions[order], scores[order], positives[order]
        # Rows before some already seen: a full bin may hold positions after them, so no
        # floors for this batch (the next batch after every row seen raises them again).
        interleaved = positions[0] <= self._seen_up_to
        if interleaved:
            self._floor_bins[:] = self.first_bin
        self._seen_up_to = max(self._seen_up_to, int(positions[-1]))
        # Small chunks first: the first rows fill most groups, whose negatives are then turned
        # away from later chunks by a comparison with their curve's floor.
        begin, entries = 0, _FIRST_CHUNK_ENTRIES
        while begin < positions.size:
            chunk = slice(begin, begin + max(1, entries // self.num_curves))
            self._update_rows(positions[chunk], scores[chunk], positives[chunk])
            if not interleaved:
                self._raise_floors()
            begin, entries = chunk.stop, min(2 * entries, _CHUNK_ENTRIES)

    def _update_rows(self, positions, scores, positives):
        """`update` of a chunk of rows in ascending positions."""
        floors, top = self._negative_floors(scores.dtype)
        candidate = scores >= floors[:-1]
        candidate |= positives & (scores >= floors[-1])
        if top is not None:
            candidate &= scores < top
        rows, curves = np.nonzero(candidate)
        if not rows.size:
            return
        values = scores[rows, curves]
        # Each entry's row (curve, bin, polarity); bins outside the kept ones: row 0.
        groups = self._bucket_rows.take(counting.threshold_bucket(values, self.thresholds))
        groups += positives[rows, curves]
        groups += self._curve_offsets.take(curves)
        rows = positions.take(rows)
        # Only entries before a group's last sample can enter it (row 0 for negative rows).
        candidate = rows < self._position[:, -1].take(groups, mode="clip")
        groups, rows, values = groups[candidate], rows[candidate], values[candidate]
        if not rows.size:
            return
        for _ in range(self.k):
            first = self._first_of_groups(groups)
            self._insert(groups[first], rows[first], values[first])
            groups, rows, values = groups[~first], rows[~first], values[~first]
            if not groups.size:
                break

    def _raise_floors(self):
        """Move each curve's floor up past the bins, from its lowest kept one, whose negative
        samples are all taken: no later negative entry below it can enter.
        """
        negatives = self._position[1::2, -1].reshape(self.num_curves, self.num_bins)
        open_bins = negatives >= self.scanned_rows  # a slot still free
        first_open = np.where(open_bins.any(axis=1), open_bins.argmax(axis=1), self.num_bins)
        self._floor_bins = self.first_bin + first_open

    def _negative_floors(self, dtype):
        """``(floors, top)`` in the dtype of the scores: ``floors[:C]`` each curve's floor (a
        negative below it falls in a bin whose negatives are full or not kept; ``inf`` when no
        bin can take more), ``floors[C]`` the lowest kept bin's threshold (below it no score
        is kept), and ``top`` the threshold above the kept bins (None: they reach the last).
        """
        exact = self._low if dtype == np.float32 else self.thresholds
        padded = np.append(exact, np.inf).astype(np.float32 if dtype == np.float32 else np.float64)
        end = self.first_bin + self.num_bins
        bins = np.append(np.minimum(self._floor_bins, end), self.first_bin)
        return padded[bins], (padded[end] if end < self.thresholds.size else None)

    def _first_of_groups(self, groups):
        """Whether each entry is the first of its group (entries in position order)."""
        if self._scratch is None:
            self._scratch = np.zeros(self._position.shape[0], dtype=np.intp)
        index = np.arange(groups.size)
        # Written in reverse, each group's slot ends up holding its first entry.
        self._scratch[groups[::-1]] = index[::-1]
        return self._scratch[groups] == index

    def _insert(self, groups, rows, values):
        """Put one candidate into each of the distinct rows ``groups``: its samples stay the
        ``k`` lowest positions, ascending.
        """
        bins = (groups - 1) // 2 % self.num_bins + self.first_bin
        stored = np.clip(values.astype(np.float32), self._low[bins], self._high[bins])
        fits = self._low[bins] <= self._high[bins]  # a bin narrower than float32 holds none
        groups, rows, stored = groups[fits], rows[fits], stored[fits]
        # Mostly the rows come in ascending positions: each candidate follows its group's
        # samples, into the first free slot.
        current = self._position[groups]
        filled = np.count_nonzero(current < self.scanned_rows, axis=1)
        last = current[np.arange(groups.size), np.maximum(filled - 1, 0)]
        after = (filled < self.k) & ((filled == 0) | (rows > last))
        self._position[groups[after], filled[after]] = rows[after]
        self._score[groups[after], filled[after]] = stored[after]
        if after.all():
            return
        groups, rows, stored = groups[~after], rows[~after], stored[~after]
        positions = np.concatenate([self._position[groups], rows[:, None]], axis=1)
        scores = np.concatenate([self._score[groups], stored[:, None]], axis=1)
        order = np.argsort(positions, axis=1, kind="stable")[:, : self.k]
        self._position[groups] = np.take_along_axis(positions, order, axis=1)
        self._score[groups] = np.take_along_axis(scores, order, axis=1)

    def merge(self, other):
        """Add another process's samples (of other positions, the same grid and curves)."""
        if (
            other.num_curves != self.num_curves
            or other.k != self.k
            or other.first_bin != self.first_bin
            or other.num_bins != self.num_bins
            or not np.array_equal(other.thresholds, self.thresholds)
        ):
            raise ValueError("crossing samples of another task or threshold grid")
        self._seen_up_to = self.scanned_rows  # the other's rows interleave: floors start over
        for level in range(self.k):
            filled = np.flatnonzero(other._position[:, level] >= 0)
            filled = filled[other._position[filled, level] < other.scanned_rows]
            if filled.size:
                self._insert(filled, other._position[filled, level], other._score[filled, level])

    def result(self):
        """Every sample: ``[S]`` arrays ``curve``, ``bin`` (on the whole grid), ``positive``,
        ``position`` and ``score`` (float32), by curve, bin, polarity (negatives first) and
        position.
        """
        groups, slots = np.nonzero(self._position[1:] < self.scanned_rows)
        return {
            "curve": groups // 2 // self.num_bins,
            "bin": groups // 2 % self.num_bins + self.first_bin,
            "positive": (groups % 2).astype(bool),
            "position": self._position[groups + 1, slots],
            "score": self._score[groups + 1, slots],
        }

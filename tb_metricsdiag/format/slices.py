"""Slices as stored (format version 7): per epoch and split, for every group key and value, what
the split stores overall (confusion counts, threshold counts, calibration bins) and the top
examples of every confusion cell of the slice, in one string scalar
(``metricsdiag/{split}/slices``, `schema.KIND_SLICES`). Its plugin content carries the class
names and the threshold grid, as the threshold counts'.

A slice is a key and one of its values (``country=fr``); a key's values past its cap share the
slice `schema.OTHER_SLICE`. Examples are named by position, as in the example records
(`example_records`); cells are numbered as there.

Layout, little-endian:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1 | flags: bit 0 multi-label, bit 1 with examples |
| 2-5 | ``C`` classes (``K`` labels), uint32 |
| 6-9 | ``T`` thresholds, uint32 |
| 10-13 | ``B`` calibration bins, uint32 |
| 14-17 | ``n``, uint32: the split's rows at this step |
| 18-21 | ``L``, uint32: examples kept per cell of a slice at most |
| 22 | ``S`` keys, uint8 |
| 23- | the ``S`` key names (`packed.encode_strings`); ``S`` uint16 numbers of values; every key's values, key after key (`packed.encode_strings`); then each slice, key after key, value after value; then, with examples, the group values of the examples kept (below) |

A slice: its counts (single-label: uint32 length, then `confusion_counts.encode_confusion`;
multi-label: a type code, the ``[K, 2, 2]`` counts, and the exact matches, uint32); uint32
length, then its threshold counts (`threshold_counts.encode_threshold_counts` of ``[C, 2, T]``,
without AP); its calibration bins ``[3, B]`` float64; with examples, ``E`` (uint32), a type
code and the ``E`` kept positions, their scores and true scores (uint16 codes, `encode_scores`): the first
``min(count, L)`` of every non-empty cell, cell by cell in the contract's order (the cells and
their counts are those of the slice's counts).

The group values of kept examples: ``P`` (uint32), a type code and ``P`` positions, ascending
(every example the split's example records keep, `example_records`); for each key a type code and
``P`` indices into that key's values.

Checked on read (`decode_slices`), before anything is allocated: every size against the
`schema` limits (the threshold counts and matrices of all the slices together as well) and the
payload's exact length; then key names, values (unique per key, `schema.MAX_GROUP_VALUE_CHARS`),
counts that fit the rows, calibration bins (`histograms.calibration_bins_of`), the kept examples
(`example_records.check_kept`). Pure NumPy; a problem is a `FormatError`.
"""

import dataclasses
import re
import struct

import numpy as np

from tb_metricsdiag.format import confusion_counts, example_records, histograms, packed
from tb_metricsdiag.format import threshold_counts as threshold_counts_lib
from tb_metricsdiag.format.integer_counts import packed_segments
from tb_metricsdiag.format.schema import (
    MAX_CALIBRATION_BINS,
    MAX_CLASSES,
    MAX_COUNT_VALUES,
    MAX_GROUP_KEYS,
    MAX_GROUP_VALUE_CHARS,
    MAX_GROUP_VALUES,
    MAX_KEPT_EXAMPLES,
    MAX_LOGIT_GRID,
    MAX_SPLIT_EXAMPLES,
    MAX_TENSOR_ELEMENTS,
)

LAYOUT = 1

_MULTI_LABEL, _EXAMPLES = 1, 2
_HEADER = "<BBIIIIIB"  # layout, flags, C, T, B, n, L, S
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


@dataclasses.dataclass(frozen=True)
class StoredSlice:
    """One slice's counts, decoded and checked.

    Attributes:
      confusion: ``[C, C]`` int64 (None, multi-label).
      matrices: ``[K, 2, 2]`` int64 (multi-label, else None); ``exact_matches`` with them.
      tp, fp: ``[C, T]`` int64 threshold counts.
      calibration: ``(count, confidence_sum, correct)`` of ``B`` bins.
      examples: the slice's kept examples (`example_records.StoredExamples`, without
        correctness: a slice's examples answer which examples fall in a cell), or None.
    """

    confusion: np.ndarray
    matrices: np.ndarray
    exact_matches: int
    tp: np.ndarray
    fp: np.ndarray
    calibration: tuple
    examples: object


@dataclasses.dataclass(frozen=True)
class StoredSlices:
    """One epoch's slices of a split (`decode_slices`).

    Attributes:
      num_classes, multi_label, num_rows: as the example records'.
      keys: ``{key: [value, ...]}`` in stored order.
      slices: ``{(key, value): StoredSlice}``.
      example_positions: ``[P]`` ascending positions whose group values are stored.
      example_codes: ``{key: [P]}`` indices into ``keys[key]``.
    """

    num_classes: int
    multi_label: bool
    num_rows: int
    keys: dict
    slices: dict
    example_positions: np.ndarray
    example_codes: dict

    def groups_at(self, positions):
        """``[{key: value} or None]``: the group values of each position, None where not
        stored.
        """
        positions = np.asarray(positions, dtype=np.int64)
        stored = self.example_positions
        if stored.size == 0:
            return [None] * positions.size
        at = np.minimum(np.searchsorted(stored, positions), stored.size - 1)
        found = stored[at] == positions
        result = []
        for row, hit in zip(at.tolist(), found.tolist()):
            result.append(
                {key: self.keys[key][int(codes[row])] for key, codes in self.example_codes.items()}
                if hit
                else None
            )
        return result


SCORE_STEPS = 65535
"""A slice's kept scores are stored in steps of 1/65535 (uint16, to 7.6e-6): half the bytes of
float32, and rounding keeps their order within a cell (equal ones may become ties)."""


def encode_scores(scores):
    """uint16 codes of probabilities (`SCORE_STEPS`), little-endian bytes."""
    codes = np.rint(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0) * SCORE_STEPS)
    return codes.astype("<u2").tobytes()


def decode_scores(codes):
    """The probabilities (float64) of `encode_scores` codes."""
    return np.asarray(codes, dtype=np.float64) / SCORE_STEPS


def _uint32(value):
    return struct.pack("<I", int(value))


def encode_slices(layout, keys, slices, example_groups=None):
    """The stored bytes of one epoch's slices of a split.

    Every slice's parts are encoded together (`confusion_counts.encode_each_confusion`,
    `threshold_counts.encode_each_threshold_counts`, `integer_counts.packed_segments`): the
    bytes are those of each slice encoded alone, for a fixed number of NumPy calls however
    many slices there are.

    Args:
      layout: ``{"num_classes", "multi_label", "thresholds", "bins", "num_rows", "per_cell"}``
        (``thresholds`` and ``bins`` are their numbers; ``per_cell`` None without examples).
      keys: ``[(key, [value, ...])]``.
      slices: the ``S`` slices, key after key and value after value, stacked: ``confusion``
        ``[S, C, C]`` (or ``matrices`` ``[S, K, 2, 2]`` and ``exact_matches`` ``[S]``),
        ``tp``, ``fp`` ``[S, C, T]``, ``calibration`` ``[S, 3, B]``, and with examples
        ``kept``: ``slice`` (ascending), ``position``, ``score`` and ``true_score`` of every
        kept example, each slice's in cell order (`core.examples.CellExamples.examples`).
      example_groups: with examples, ``(positions [P] ascending, {key: codes [P]})``.
    """
    multi_label, with_examples = layout["multi_label"], layout["per_cell"] is not None
    flags = (_MULTI_LABEL if multi_label else 0) | (_EXAMPLES if with_examples else 0)
    parts = [
        struct.pack(
            _HEADER,
            LAYOUT,
            flags,
            layout["num_classes"],
            layout["thresholds"],
            layout["bins"],
            layout["num_rows"],
            layout["per_cell"] or 0,
            len(keys),
        ),
        packed.encode_strings([key for key, _ in keys]),
        np.array([len(values) for _, values in keys], dtype="<u2").tobytes(),
        packed.encode_strings([value for _, values in keys for value in values]),
    ]
    tp = np.asarray(slices["tp"])
    num_slices = tp.shape[0]
    if multi_label:
        matrices = np.asarray(slices["matrices"]).reshape(num_slices, -1)
        counts = [
            code + data + _uint32(exact)
            for (code, data), exact in zip(
                packed_segments(matrices, np.arange(num_slices + 1) * matrices.shape[1]),
                np.asarray(slices["exact_matches"]).tolist(),
            )
        ]
    else:
        counts = [
            _uint32(len(matrix)) + matrix
            for matrix in confusion_counts.encode_each_confusion(slices["confusion"])
        ]
    thresholds = [
        _uint32(len(payload)) + payload
        for payload in threshold_counts_lib.encode_each_threshold_counts(tp, slices["fp"])
    ]
    calibration = np.asarray(slices["calibration"], dtype="<f8").reshape(num_slices, -1)
    examples = [b""] * num_slices
    if with_examples:
        kept = slices["kept"]
        bounds = np.searchsorted(kept["slice"], np.arange(num_slices + 1))
        positions = packed_segments(kept["position"], bounds)
        scores = [encode_scores(kept[name]) for name in ("score", "true_score")]
        examples = [
            _uint32(end - begin)
            + code
            + data
            + b"".join(codes[2 * begin : 2 * end] for codes in scores)
            for (code, data), begin, end in zip(
                positions, bounds[:-1].tolist(), bounds[1:].tolist()
            )
        ]
    for one in zip(counts, thresholds, calibration, examples):
        parts += [one[0], one[1], one[2].tobytes(), one[3]]
    if with_examples:
        positions, codes = example_groups
        code, data = packed.packed_ints(positions)
        parts += [_uint32(len(positions)), code, data]
        for key, _ in keys:
            parts += list(packed.packed_ints(codes[key]))
    return b"".join(parts)


def decode_slices(payload, what="stored slices"):
    """The `StoredSlices` of `encode_slices` bytes.

    Raises:
      FormatError: anything but such a payload (the module docstring lists the checks).
    """
    cursor = packed.Cursor(payload, what)
    version, flags, classes, thresholds, bins, rows, per_cell, num_keys = cursor.unpack(
        _HEADER, "header"
    )
    if version != LAYOUT or flags & ~(_MULTI_LABEL | _EXAMPLES):
        cursor.fail(
            "unknown layout %d or flags %d (this reader knows layout %d)" % (version, flags, LAYOUT)
        )
    multi_label, with_examples = bool(flags & _MULTI_LABEL), bool(flags & _EXAMPLES)
    if not (1 if multi_label else 2) <= classes <= MAX_CLASSES:
        cursor.fail("%d classes, expected at most %d" % (classes, MAX_CLASSES))
    if not 1 <= thresholds <= MAX_LOGIT_GRID or not 1 <= bins <= MAX_CALIBRATION_BINS:
        cursor.fail("%d thresholds and %d calibration bins" % (thresholds, bins))
    if rows > MAX_SPLIT_EXAMPLES or num_keys > MAX_GROUP_KEYS or (with_examples and per_cell < 1):
        cursor.fail("%d rows, %d keys, %d examples per cell" % (rows, num_keys, per_cell))
    keys = _strings(cursor, num_keys, 64, "key names")
    if any(not _KEY.match(key) for key in keys) or len(set(keys)) != len(keys):
        cursor.fail("key names that are not names, or repeated")
    counts = cursor.ints("<u2", num_keys, "numbers of values")
    if counts.size and (counts.min() < 1 or counts.max() > MAX_GROUP_VALUES):
        cursor.fail("a key of %d values (1 to %d)" % (counts.max(), MAX_GROUP_VALUES))
    total = int(counts.sum())
    cells = classes * 4 if multi_label else classes * classes
    if total * 2 * classes * thresholds > MAX_COUNT_VALUES or total * cells > MAX_TENSOR_ELEMENTS:
        cursor.fail("%d slices of %d classes and %d thresholds" % (total, classes, thresholds))
    values = _strings(cursor, total, 4 * MAX_GROUP_VALUE_CHARS, "values")
    key_values, start = {}, 0
    for key, count in zip(keys, counts.tolist()):
        key_values[key] = values[start : start + count]
        start += count
        if len(set(key_values[key])) != count:
            cursor.fail("key %r lists a value twice" % key)
    stored, kept_in_all = {}, 0
    for key in keys:
        for value in key_values[key]:
            one = _slice(
                cursor,
                classes,
                thresholds,
                bins,
                rows,
                per_cell,
                multi_label,
                with_examples,
                "slice %s=%s" % (key, value),
            )
            kept_in_all += 0 if one.examples is None else one.examples.position.size
            if kept_in_all > MAX_KEPT_EXAMPLES:
                cursor.fail("more than %d kept examples" % MAX_KEPT_EXAMPLES)
            stored[(key, value)] = one
    positions, codes = np.empty(0, np.int64), {}
    if with_examples:
        (size,) = cursor.unpack("<I", "examples with group values")
        if size > min(rows, MAX_KEPT_EXAMPLES):
            cursor.fail("%d examples with group values of %d rows" % (size, rows))
        (dtype,) = cursor.codes(1, "positions")
        positions = cursor.ints(dtype, size, "positions")
        if size and (
            positions.min() < 0 or positions.max() >= rows or np.any(np.diff(positions) < 1)
        ):
            cursor.fail("positions with group values out of order or outside the rows")
        for key in keys:
            (dtype,) = cursor.codes(1, "group values of %s" % key)
            codes[key] = cursor.ints(dtype, size, "group values of %s" % key)
            if size and (codes[key].min() < 0 or codes[key].max() >= len(key_values[key])):
                cursor.fail("group values of %s outside its values" % key)
    cursor.done()
    return StoredSlices(classes, multi_label, rows, key_values, stored, positions, codes)


def _strings(cursor, count, max_bytes, part):
    data, starts, lengths = packed.decode_strings(
        cursor, count, max_bytes, MAX_GROUP_VALUE_CHARS, part
    )
    return [
        data[begin : begin + size].decode("utf-8")
        for begin, size in zip(starts.tolist(), lengths.tolist())
    ]


def _slice(cursor, classes, thresholds, bins, rows, per_cell, multi_label, with_examples, what):
    confusion, matrices, exact = None, None, None
    if multi_label:
        (dtype,) = cursor.codes(1, what + " counts")
        matrices = cursor.ints(dtype, classes * 4, what + " counts").reshape(classes, 2, 2)
        (exact,) = cursor.unpack("<I", what + " exact matches")
        slice_rows = int(matrices[0].sum())
        if (
            matrices.min() < 0
            or np.any(matrices.sum(axis=(1, 2)) != slice_rows)
            or exact > slice_rows
        ):
            cursor.fail("%s: labels counting different numbers of rows" % what)
        flat = matrices.reshape(-1)
    else:
        (size,) = cursor.unpack("<I", what + " counts")
        raw = cursor.raw(size, what + " counts")
        cells_of = confusion_counts.decode_confusion_cells(raw, what + " counts")
        if cells_of[0].size != classes:
            cursor.fail(
                "%s: a matrix of %d classes, expected %d" % (what, cells_of[0].size, classes)
            )
        confusion = confusion_counts.confusion_from_cells(*cells_of)
        slice_rows = int(confusion.sum())
        flat = confusion.reshape(-1)
    if slice_rows > rows:
        cursor.fail("%s: %d examples, more than the %d rows" % (what, slice_rows, rows))
    (size,) = cursor.unpack("<I", what + " threshold counts")
    counts, _, _ = threshold_counts_lib.decode_threshold_counts(
        cursor.raw(size, what + " threshold counts"), classes, num_thresholds=thresholds
    )
    if counts.max(initial=0) > slice_rows:
        cursor.fail("%s: threshold counts beyond its %d examples" % (what, slice_rows))
    calibration = histograms.calibration_bins_of(
        cursor.array("<f8", 3 * bins, what + " calibration").reshape(3, bins)
    )
    examples = None
    if with_examples:
        (kept,) = cursor.unpack("<I", what + " examples")
        cells = np.flatnonzero(flat)
        sizes = np.minimum(flat[cells], per_cell)
        if kept != int(sizes.sum()):
            cursor.fail(
                "%s: %d kept examples, the counts and L make %d" % (what, kept, sizes.sum())
            )
        (dtype,) = cursor.codes(1, what + " positions")
        position = cursor.ints(dtype, kept, what + " positions")
        score = decode_scores(cursor.array("<u2", kept, what + " scores"))
        true_score = decode_scores(cursor.array("<u2", kept, what + " true scores"))
        numbers = np.repeat(cells, sizes)
        example_records.check_kept(
            cursor, numbers, position, score, true_score, rows, classes, multi_label
        )
        examples = example_records.StoredExamples(
            classes,
            multi_label,
            rows,
            per_cell,
            cells,
            flat[cells],
            np.cumsum(sizes) - sizes,
            position,
            score,
            true_score,
            np.empty(0, np.uint8),
            np.empty(0, np.uint8),
        )
    return StoredSlice(
        confusion, matrices, exact, counts[:, 0], counts[:, 1], calibration, examples
    )

"""Example records as stored (format version 6): per epoch and split, which examples fall in
each confusion cell (`schema.KIND_EXAMPLES`) and which given labels confident learning flags
(`schema.KIND_LABEL_ISSUES`). The ids and previews they refer to are `example_ids` and
`previews`.

Examples are named by **position**: the row's index ``0..n-1`` in the order the writer was
given the split's rows at that step; the split's id table (`example_ids`) turns positions into
ids. A cell is numbered as `core.examples.CellExamples` numbers it: ``true * C + pred`` for
``C`` classes (a binary task is 2 classes), ``label * 4 + true * 2 + pred`` for ``K`` labels
of a multi-label task.

**Examples** (``metricsdiag/{split}/examples``), little-endian, a string scalar:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1 | flags: bit 0 set for a multi-label task |
| 2-5 | ``C`` classes (``K`` labels), uint32 |
| 6-9 | ``n``, uint32: the split's rows at this step, positions ``0..n-1`` |
| 10-13 | ``m``, uint32: the non-empty cells |
| 14-17 | ``L``, uint32: examples kept per cell at most |
| 18-21 | ``E``, uint32: examples kept in all, ``sum(min(count, L))`` over the cells |
| 22-24 | type codes (``B``, ``H``, ``i``, ``q``, as the encoded confusion matrices') of the cell gaps, the cell counts and the positions |
| 25- | ``m`` gaps between the cells' numbers, ascending (the first is the first number); their ``m`` counts (each at least 1); the ``E`` kept positions, cell by cell in the contract's order; their ``E`` scores and then ``E`` true scores, float32; ``ceil(n / 8)`` bytes of correctness bits; ``n`` confidence codes, uint8 |

- The kept examples of a cell are its first ``min(count, L)`` in the contract's order: off the
  diagonal (errors) ``score`` (the probability of the predicted class; multi-label: of the
  predicted value of the label) descending, on the diagonal ascending; equal scores, the lower
  position first. ``true_score`` is the probability of the actual class (value).
- Correctness: bit ``i`` (`core.examples.pack_correctness`: ``np.packbits``, the first example
  in the most significant bit) is 1 when example ``i`` was predicted right (multi-label: every
  label right). Rows whose scores were NaN or infinite (left out of every count, as from the
  confusion matrix) and rows of a batch that could not be read are in no cell and 0 here.
- Confidence (`encode_confidence`): per example, the logit of the probability of its predicted
  class (multi-label: the smallest over its labels of the probability of the predicted
  value) in steps of `CONFIDENCE_LOGIT_STEP` from `CONFIDENCE_LOGIT_LOW`: what orders the
  examples that flipped between two evaluations (`core.examples.flips`), most confident first.
  0 for the rows in no cell.
- The counts are the split's confusion counts at this step (those of the confusion tag).

**Label issues** (``metricsdiag/{split}/label_issues``, single-label tasks only), a string
scalar:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1-4 | ``C``, uint32 |
| 5-8 | ``n``, uint32: the split's rows (positions ``0..n-1``) |
| 9-12 | ``N``, uint32: the examples confident learning saw (rows with finite scores) |
| 13-16 | ``F``, uint32: the examples it flagged |
| 17-20 | ``M``, uint32: the flagged examples listed, the first ``M`` of them |
| 21-24 | ``B``, uint32: top-label bins |
| 25-28 | type codes of the positions, the class ids (given and suggested), the bin counts and the bins' right counts |
| 29- | ``M`` positions, ``M`` given classes, ``M`` suggested classes, ``M`` given scores and ``M`` suggested scores (float32); ``B`` bin counts, ``B`` right counts, ``B`` logit sums (float64) |

- The flagged set is `core.label_issues.LabelIssues`' (cleanlab 2.x's confident learning);
  listed the least likely given label first (``given_score`` ascending, equal scores the lower
  position first). ``share = F / N``.
- The bins are `core.label_issues.top_label_bins` of the ``N`` examples: with ``F`` and the
  confusion matrix of the same step, the inputs of `core.label_issues.label_issue_test` (the
  rule ``label_issues``).

Checked on read (`decode_examples`, `decode_label_issues`), before anything is allocated: every
size against the `schema` limits and the payload's exact length; then every value: cells
ascending and inside the matrix, counts that fit the rows, positions inside ``0..n-1`` and
unique, the kept examples of each cell in the contract's order, scores in [0, 1], flagged
examples no more than the examples, listed ones in their order with a suggestion other than the
given class, bins that add up to ``N``. Pure NumPy; a problem is a `FormatError`.
"""

import dataclasses
import struct

import numpy as np

from tb_metricsdiag.core import examples as examples_lib
from tb_metricsdiag.core import label_issues as label_issues_lib
from tb_metricsdiag.format import packed
from tb_metricsdiag.format.schema import (
    MAX_CLASSES,
    MAX_KEPT_EXAMPLES,
    MAX_LISTED_LABEL_ISSUES,
    MAX_SPLIT_EXAMPLES,
    MAX_TOP_LABEL_BINS,
)

LAYOUT = 1

_MULTI_LABEL = 1

_EXAMPLES_HEADER = "<BBIIIII"  # layout, flags, C, n, m, L, E
_LABEL_ISSUES_HEADER = "<BIIIIII"  # layout, C, n, N, F, M, B

CONFIDENCE_LOGIT_LOW = -8.0
"""The logit of confidence code 0. A predicted class is at least as likely as ``1 / C``, whose
logit is above -8 up to 2,980 classes (`schema.MAX_CLASSES` is 2,048)."""

CONFIDENCE_LOGIT_STEP = 0.125
"""One confidence code is an eighth of a logit (the odds 1.13 times higher): 255 codes reach
a logit of 23.9, beyond the most confident float32 probability below 1 (16.6)."""


def encode_confidence(probability):
    """uint8 codes of probabilities (`CONFIDENCE_LOGIT_LOW`, `CONFIDENCE_LOGIT_STEP`), rounded
    to the nearest code; 0 and 1 go to the end codes.
    """
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    codes = np.rint((logit - CONFIDENCE_LOGIT_LOW) / CONFIDENCE_LOGIT_STEP)
    return np.clip(codes, 0, 255).astype(np.uint8)


def decode_confidence(codes):
    """The probabilities (float64) the confidence codes stand for: the sigmoid of each code's
    logit.
    """
    logit = CONFIDENCE_LOGIT_LOW + CONFIDENCE_LOGIT_STEP * np.asarray(codes, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-logit))


# -- examples -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoredExamples:
    """One epoch's examples of a split, decoded and checked (`decode_examples`).

    Attributes:
      num_classes: ``C`` classes (``K`` labels, multi-label).
      multi_label: whether cells are per label.
      num_rows: ``n``: positions are ``0..n-1`` (the size of the split's id table).
      per_cell: ``L``, examples kept per cell at most.
      cells: ``[m]`` the non-empty cells' numbers, ascending; ``counts``: their examples.
      starts: ``[m]`` where each cell's kept examples begin in ``position``.
      position, score, true_score: ``[E]`` the kept examples, cell by cell in order.
    """

    num_classes: int
    multi_label: bool
    num_rows: int
    per_cell: int
    cells: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    position: np.ndarray
    score: np.ndarray
    true_score: np.ndarray
    _bits: np.ndarray
    _confidence: np.ndarray

    def cell_number(self, true, pred, label=None):
        """The number of cell (``true``, ``pred``) (of ``label``, multi-label).

        Raises:
          ValueError: classes, values or a label outside the task.
        """
        bound = 2 if self.multi_label else self.num_classes
        for name, value in (("true", true), ("pred", pred)):
            if not 0 <= int(value) < bound:
                raise ValueError("%s must be in [0, %d), got %r" % (name, bound, value))
        if not self.multi_label:
            if label is not None:
                raise ValueError("label is for multi-label tasks only")
            return int(true) * self.num_classes + int(pred)
        if label is None or not 0 <= int(label) < self.num_classes:
            raise ValueError("label must be in [0, %d), got %r" % (self.num_classes, label))
        return int(label) * 4 + int(true) * 2 + int(pred)

    def cell(self, true, pred, label=None):
        """The cell's ``count`` (all its examples) and its kept examples in the contract's
        order: ``[min(count, per_cell)]`` arrays ``position``, ``score``, ``true_score``.
        """
        number = self.cell_number(true, pred, label)
        at = int(np.searchsorted(self.cells, number))
        if at == self.cells.size or self.cells[at] != number:
            empty = np.empty(0)
            return {
                "count": 0,
                "position": empty.astype(np.int64),
                "score": empty,
                "true_score": empty,
            }
        kept = slice(self.starts[at], self.starts[at] + min(self.counts[at], self.per_cell))
        return {
            "count": int(self.counts[at]),
            "position": self.position[kept],
            "score": self.score[kept],
            "true_score": self.true_score[kept],
        }

    def examples(self):
        """Every kept example: ``[E]`` arrays ``true``, ``pred`` (and ``label``, multi-label),
        ``rank`` (0 for the first of its cell), ``position``, ``score``, ``true_score``.
        """
        sizes = np.minimum(self.counts, self.per_cell)
        numbers = np.repeat(self.cells, sizes)
        result = {"rank": np.arange(numbers.size) - np.repeat(self.starts, sizes)}
        if self.multi_label:
            result.update(label=numbers // 4, true=(numbers // 2) % 2, pred=numbers % 2)
        else:
            result.update(true=numbers // self.num_classes, pred=numbers % self.num_classes)
        result.update(position=self.position, score=self.score, true_score=self.true_score)
        return result

    @property
    def correct(self):
        """``[n]`` whether each example was predicted right (False for rows in no cell)."""
        return examples_lib.unpack_correctness(self._bits, self.num_rows)

    @property
    def confidence(self):
        """``[n]`` each example's confidence as a probability (`decode_confidence`)."""
        return decode_confidence(self._confidence)

    @property
    def confidence_codes(self):
        """``[n]`` the stored confidence codes (uint8)."""
        return self._confidence


def encode_examples(cell_examples, num_rows, correct, confidence, budget=None):
    """The stored bytes of one epoch's examples of a split.

    Args:
      cell_examples: the epoch's `core.examples.CellExamples`.
      num_rows: ``n``, the split's rows (positions ``0..n-1``; rows not given to
        ``cell_examples`` are in no cell).
      correct: ``[n]`` booleans, whether each row was predicted right.
      confidence: ``[n]`` `encode_confidence` codes.
      budget: at most this many examples in all (`core.examples.per_cell_limit`), None for
        every kept one.
    """
    kept = cell_examples.examples(budget)
    per_cell = cell_examples.k if kept["limit"] is None else min(cell_examples.k, kept["limit"])
    matrix = cell_examples.confusion_matrix().reshape(-1)
    cells = np.flatnonzero(matrix)
    if cell_examples.multi_label:
        numbers = kept["label"] * 4 + kept["true"] * 2 + kept["pred"]
    else:
        numbers = kept["true"] * cell_examples.num_classes + kept["pred"]
    if not np.array_equal(numbers, np.repeat(cells, np.minimum(matrix[cells], per_cell))):
        raise ValueError("kept examples do not fit the counts per cell")
    correct, confidence = np.asarray(correct, dtype=bool), np.asarray(confidence)
    if correct.shape != (num_rows,) or confidence.shape != (num_rows,):
        raise ValueError("correctness and confidence need one value per row, %d" % num_rows)
    if kept["position"].size and kept["position"].max() >= num_rows:
        raise ValueError("kept positions beyond the %d rows" % num_rows)
    parts = [
        packed.packed_ints(part)
        for part in (np.diff(cells, prepend=0), matrix[cells], kept["position"])
    ]
    header = struct.pack(
        _EXAMPLES_HEADER,
        LAYOUT,
        _MULTI_LABEL if cell_examples.multi_label else 0,
        cell_examples.num_classes,
        num_rows,
        cells.size,
        per_cell,
        kept["position"].size,
    )
    return b"".join(
        [header, b"".join(code for code, _ in parts), b"".join(data for _, data in parts)]
        + [packed.packed_floats(np.clip(kept[name], 0.0, 1.0)) for name in ("score", "true_score")]
        + [examples_lib.pack_correctness(correct).tobytes(), confidence.astype(np.uint8).tobytes()]
    )


def decode_examples(payload, what="stored examples"):
    """The `StoredExamples` of `encode_examples` bytes.

    Raises:
      FormatError: anything but such a payload (the module docstring lists the checks).
    """
    cursor = packed.Cursor(payload, what)
    layout, flags, classes, rows, num_cells, per_cell, kept = cursor.unpack(
        _EXAMPLES_HEADER, "header"
    )
    if layout != LAYOUT or flags & ~_MULTI_LABEL:
        cursor.fail(
            "unknown layout %d or flags %d (this reader knows layout %d)" % (layout, flags, LAYOUT)
        )
    multi_label = bool(flags & _MULTI_LABEL)
    if not (1 if multi_label else 2) <= classes <= MAX_CLASSES:
        cursor.fail(
            "%d classes, expected %d to %d" % (classes, 1 if multi_label else 2, MAX_CLASSES)
        )
    if rows > MAX_SPLIT_EXAMPLES or kept > MAX_KEPT_EXAMPLES or per_cell < 1:
        cursor.fail(
            "%d rows (at most %d), %d kept examples (at most %d), %d per cell"
            % (rows, MAX_SPLIT_EXAMPLES, kept, MAX_KEPT_EXAMPLES, per_cell)
        )
    cells_in_matrix = classes * 4 if multi_label else classes * classes
    if num_cells > min(cells_in_matrix, rows * (classes if multi_label else 1)):
        cursor.fail("%d non-empty cells of %d rows and %d classes" % (num_cells, rows, classes))
    gap_type, count_type, position_type = cursor.codes(3, "type codes")
    gaps = cursor.ints(gap_type, num_cells, "cell gaps")
    counts = cursor.ints(count_type, num_cells, "cell counts")
    position = cursor.ints(position_type, kept, "positions")
    score = cursor.array("<f4", kept, "scores").astype(np.float64)
    true_score = cursor.array("<f4", kept, "true scores").astype(np.float64)
    bits = cursor.array(np.uint8, (rows + 7) // 8, "correctness bits")
    confidence = cursor.array(np.uint8, rows, "confidence codes")
    cursor.done()
    cells = _cells(cursor, gaps, cells_in_matrix)
    _check_counts(cursor, cells, counts, rows, classes, multi_label)
    sizes = np.minimum(counts, per_cell)
    if int(sizes.sum()) != kept:
        cursor.fail(
            "%d kept examples, but the cells and L = %d make %d" % (kept, per_cell, sizes.sum())
        )
    numbers = np.repeat(cells, sizes)
    check_kept(cursor, numbers, position, score, true_score, rows, classes, multi_label)
    return StoredExamples(
        classes,
        multi_label,
        rows,
        per_cell,
        cells,
        counts,
        np.cumsum(sizes) - sizes,
        position,
        score,
        true_score,
        bits,
        confidence,
    )


def _cells(cursor, gaps, cells_in_matrix):
    if gaps.size and (gaps[0] < 0 or gaps[1:].min(initial=1) < 1 or gaps.max() >= cells_in_matrix):
        cursor.fail("cells out of order or outside the matrix")
    cells = np.cumsum(gaps)  # each gap below the cells of the matrix: no overflow
    if cells.size and cells[-1] >= cells_in_matrix:
        cursor.fail("a cell outside the matrix")
    return cells


def _check_counts(cursor, cells, counts, rows, classes, multi_label):
    if counts.size and counts.min() < 1:
        cursor.fail("a listed cell without examples")
    if not multi_label:
        if counts.sum() > rows:
            cursor.fail("cells of %d examples in all, more than the %d rows" % (counts.sum(), rows))
        return
    per_label = np.bincount(cells // 4, weights=counts, minlength=classes)
    if per_label.size and (per_label.max() > rows or np.any(per_label != per_label[0])):
        cursor.fail("labels counting different numbers of rows, or more than the %d rows" % rows)


def check_kept(cursor, numbers, position, score, true_score, rows, classes, multi_label):
    """Refuse (``cursor.fail``) kept examples whose cell ``numbers``, ``position`` and scores
    break the contract: positions outside the ``rows``, scores outside [0, 1], right ones
    with two scores, a cell out of order, an example kept twice. Also the slices' check.
    """
    if position.size and (position.min() < 0 or position.max() >= rows):
        cursor.fail("positions outside the %d rows" % rows)
    for values in (score, true_score):
        if values.size and not (values.min() >= 0 and values.max() <= 1):  # NaN fails too
            cursor.fail("scores outside [0, 1]")
    diagonal = (
        (numbers // 2) % 2 == numbers % 2
        if multi_label
        else numbers // classes == numbers % classes
    )
    if np.any(score[diagonal] != true_score[diagonal]):
        cursor.fail("examples predicted right whose two scores differ")
    # Scores equal in float32 may be in any order of positions (ties in any order).
    key = np.where(diagonal, score, -score)
    if np.any((numbers[1:] == numbers[:-1]) & (key[1:] < key[:-1])):
        cursor.fail("kept examples out of the contract's order")
    # A row is in one cell (multi-label: one cell of each label).
    cell_rows = numbers // 4 * rows + position if multi_label else position
    if packed.has_repeats(cell_rows):
        cursor.fail("an example kept twice")


# -- label issues -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoredLabelIssues:
    """One epoch's label issues of a split, decoded and checked (`decode_label_issues`).

    Attributes:
      num_classes: ``C``.
      num_rows: ``n``: positions are ``0..n-1``.
      examples: ``N``, the examples confident learning saw.
      count: ``F``, the examples flagged (exact).
      position, given, suggested, given_score, suggested_score: ``[M]`` the first ``M``
        flagged examples, the least likely given label first.
      bins: `core.label_issues.top_label_bins` of the ``N`` examples (``count``,
        ``correct``, ``logit_sum``).
    """

    num_classes: int
    num_rows: int
    examples: int
    count: int
    position: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    given_score: np.ndarray
    suggested_score: np.ndarray
    bins: dict

    @property
    def share(self):
        """``count / examples`` (None without examples)."""
        return self.count / self.examples if self.examples else None


def encode_label_issues(num_rows, result, bins, listed):
    """The stored bytes of one epoch's label issues of a split.

    Args:
      num_rows: ``n``, the split's rows (positions ``0..n-1``).
      result: `core.label_issues.LabelIssues.result` (``num_rows`` there: the examples it saw).
      bins: the same examples' `core.label_issues.top_label_bins`.
      listed: list at most this many flagged examples (the first, least likely given label).
    """
    classes = result["thresholds"].size
    listed = min(int(listed), result["count"])
    position_code, positions = packed.packed_ints(result["position"][:listed])
    # The given classes, then the suggested ones, in one type.
    class_code, classes_listed = packed.packed_ints(
        np.concatenate([result["given"][:listed], result["suggested"][:listed]])
    )
    count_code, bin_counts = packed.packed_ints(bins["count"])
    correct_code, bin_correct = packed.packed_ints(bins["correct"])
    header = struct.pack(
        _LABEL_ISSUES_HEADER,
        LAYOUT,
        classes,
        num_rows,
        result["num_rows"],
        result["count"],
        listed,
        bins["count"].size,
    )
    return b"".join(
        [
            header,
            position_code,
            class_code,
            count_code,
            correct_code,
            positions,
            classes_listed,
            packed.packed_floats(np.clip(result["given_score"][:listed], 0.0, 1.0)),
            packed.packed_floats(np.clip(result["suggested_score"][:listed], 0.0, 1.0)),
            bin_counts,
            bin_correct,
            packed.packed_floats(bins["logit_sum"], "<f8"),
        ]
    )


def decode_label_issues(payload, what="stored label issues"):
    """The `StoredLabelIssues` of `encode_label_issues` bytes.

    Raises:
      FormatError: anything but such a payload (the module docstring lists the checks), a
        list longer than the split among them.
    """
    cursor = packed.Cursor(payload, what)
    layout, classes, rows, examples, count, listed, num_bins = cursor.unpack(
        _LABEL_ISSUES_HEADER, "header"
    )
    if layout != LAYOUT:
        cursor.fail("unknown layout %d (this reader knows %d)" % (layout, LAYOUT))
    if not 2 <= classes <= MAX_CLASSES:
        cursor.fail("%d classes, expected 2 to %d" % (classes, MAX_CLASSES))
    if not listed <= count <= examples <= rows <= MAX_SPLIT_EXAMPLES:
        cursor.fail(
            "%d listed of %d flagged of %d examples of %d rows: a list longer than the"
            " split, or more rows than %d" % (listed, count, examples, rows, MAX_SPLIT_EXAMPLES)
        )
    if listed > MAX_LISTED_LABEL_ISSUES or not 1 <= num_bins <= MAX_TOP_LABEL_BINS:
        cursor.fail(
            "%d listed (at most %d), %d bins (1 to %d)"
            % (listed, MAX_LISTED_LABEL_ISSUES, num_bins, MAX_TOP_LABEL_BINS)
        )
    position_type, class_type, count_type, correct_type = cursor.codes(4, "type codes")
    position = cursor.ints(position_type, listed, "positions")
    given = cursor.ints(class_type, listed, "given classes")
    suggested = cursor.ints(class_type, listed, "suggested classes")
    given_score = cursor.array("<f4", listed, "given scores").astype(np.float64)
    suggested_score = cursor.array("<f4", listed, "suggested scores").astype(np.float64)
    bins = {
        "count": cursor.ints(count_type, num_bins, "bin counts"),
        "correct": cursor.ints(correct_type, num_bins, "bin right counts"),
        "logit_sum": cursor.array("<f8", num_bins, "bin logit sums").astype(np.float64),
    }
    cursor.done()
    if listed:
        if position.min() < 0 or position.max() >= rows or packed.has_repeats(position):
            cursor.fail("positions outside the %d rows, or repeated" % rows)
        if min(given.min(), suggested.min()) < 0 or max(given.max(), suggested.max()) >= classes:
            cursor.fail("classes outside [0, %d)" % classes)
        if np.any(given == suggested):
            cursor.fail("a label issue suggesting its given class")
        for values in (given_score, suggested_score):
            if not (values.min() >= 0 and values.max() <= 1):
                cursor.fail("scores outside [0, 1]")
        if np.any(np.diff(given_score) < 0):
            cursor.fail("label issues out of order (given score ascending)")
    _check_bins(cursor, bins, examples)
    return StoredLabelIssues(
        classes,
        rows,
        examples,
        count,
        position,
        given,
        suggested,
        given_score,
        suggested_score,
        bins,
    )


def _check_bins(cursor, bins, examples):
    count, correct, logit_sum = bins["count"], bins["correct"], bins["logit_sum"]
    if count.min() < 0 or count.sum() != examples:
        cursor.fail("top-label bins of %d examples, expected %d" % (count.sum(), examples))
    if correct.min() < 0 or np.any(correct > count):
        cursor.fail("top-label bins with more right than examples")
    low, high = label_issues_lib.TOP_LABEL_LOGIT_RANGE
    # Each logit is clipped to the range, so a bin's sum lies within its count times its ends.
    if not (
        np.all(logit_sum >= low * count - 1e-6 * count)
        and np.all(logit_sum <= high * count + 1e-6 * count)
    ):
        cursor.fail(
            "top-label bins with logit sums outside %s" % (label_issues_lib.TOP_LABEL_LOGIT_RANGE,)
        )

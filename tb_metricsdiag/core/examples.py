"""Which examples fall where: the top examples of every confusion cell, which examples each
epoch got right, and which of them changed between two epochs. Pure NumPy.

Examples are named by **positions**: integer indices ``>= 0`` into an id table the writer
keeps (the ids themselves, strings or integers, stay out of the core). A cell is a pair
(actual, predicted) of class ids; a multi-label task has one 2 x 2 matrix per label, and a cell
is (label, actual in {0, 1}, predicted in {0, 1}).

Order inside a cell (the public contract, "Examples"):

- off the diagonal (errors): the most confident errors first, ``score`` (the probability of
  the predicted class) descending;
- on the diagonal (right): the least confident first, ``score`` ascending;
- equal scores: the lower position first, so what is kept does not depend on how the rows
  were split into batches.

`CellExamples` keeps, batch by batch, the first ``k`` examples of every non-empty cell in that
order (exactly the top ``k`` of the whole cell), the number of examples per cell (the
confusion matrix) and whether each example was right. Its state is O(non-empty cells x k):
the kept examples, at most as many candidates of later batches waiting to be merged (at
least `_PENDING_ROWS`), and one byte per example for correctness.

Budget per epoch (`DEFAULT_EPOCH_BUDGET`): `per_cell_limit` caps the examples written for one
epoch and split. It lowers a common per-cell limit ``L``, so the deepest ranks of the fullest
cells go first, but never below `MIN_EXAMPLES_PER_CELL` (the contract's ``min(count, 10)``
per cell). When even that floor exceeds the budget, the floor wins and the budget is
exceeded: at most ``10 x non-empty cells`` examples and never more than the examples
evaluated (10,000 examples: 10,000 at most, even at 1,000 classes).

Correctness is one bit per example in position order (`pack_correctness`, NumPy's
``packbits``, most significant bit first): 1,250 bytes for 10,000 examples. `flips` matches
two epochs (or runs) by id and lists the examples that became wrong or right.
"""

import numpy as np

from tb_metricsdiag.core._groups import check_groups

MIN_EXAMPLES_PER_CELL = 10
"""The contract's floor: every non-empty cell lists at least ``min(count, 10)`` examples."""

DEFAULT_EXAMPLES_PER_CELL = 25
"""Examples kept per cell by default, as Comet's ``max_examples_per_cell``: enough to page
through a cell's worst cases without reading the whole validation set."""

DEFAULT_EPOCH_BUDGET = 2500
"""Examples written per epoch and split by default. At about 16 bytes an example (an int64
position and two float32 scores) that is 40 KB, which leaves room within the contract's 64 KB
(10,000 examples, 10 classes: at most 100 cells x 25 = 2,500 kept anyway) for the correctness
bits (1.25 KB) and the label issues. At 1,000 classes the floor of 10 per cell can exceed it:
then at most 10,000 examples (160 KB) for 10,000 examples evaluated, within the 256 KB."""

# A cell and an order-preserving 32-bit key share one uint64 sort key.
_KEY_BITS = 32
_MAX_CELLS = 1 << 32
_SIGN_BIT = np.uint32(0x80000000)
# Per-position correctness: not evaluated yet, wrong, right.
_UNSEEN, _WRONG, _RIGHT = -1, 0, 1
# Integers spanning up to this many times their number are counted with a histogram (one
# pass), wider ones with a sort.
_HISTOGRAM_SPAN = 4
# Candidates of batches wait to be merged into the kept examples until there are as many as
# kept examples, and at least this many: each merge then costs about what the batches added.
_PENDING_ROWS = 1 << 16
# Batches of at least this many rows are thinned with a sample of every _THIN_STRIDE-th row
# before the sort: sorting a million rows costs more than the rest of an update.
_THIN_MIN_ROWS = 1 << 16
_THIN_STRIDE = 16


class CellExamples:
    """The top examples of every confusion cell, the counts per cell and per-example
    correctness, accumulated batch by batch (and mergeable across processes).

    Args:
      num_classes: ``C >= 2`` classes (a binary task is 2), or ``K >= 1`` labels with
        ``multi_label=True``.
      k: examples kept per non-empty cell, at least `MIN_EXAMPLES_PER_CELL`.
      multi_label: each row has ``K`` labels, each actual and predicted in {0, 1}.
      num_groups: the rows fall into this many groups (the slices of a group key), each row's
        given to `update` (`counting.check_groups`): a cell is then a group's cell, and the
        counts are per group. None: ungrouped.

    >>> acc = CellExamples(2, k=10)
    >>> acc.update([0, 1, 2, 3], [0, 0, 1, 1], [0, 1, 1, 1], [0.9, 0.6, 0.7, 0.95],
    ...            [0.9, 0.4, 0.7, 0.95])
    >>> acc.confusion_matrix().tolist()
    [[1, 1], [0, 2]]
    >>> acc.cell_examples(1, 1)["position"].tolist()  # least confident right ones first
    [2, 3]
    >>> unpack_correctness(acc.correctness_bits(), acc.num_rows).tolist()
    [True, False, True, True]
    """

    def __init__(
        self, num_classes, k=DEFAULT_EXAMPLES_PER_CELL, multi_label=False, num_groups=None
    ):
        num_classes, k = int(num_classes), int(k)
        self.multi_label = bool(multi_label)
        if num_classes < (1 if self.multi_label else 2):
            raise ValueError(
                "num_classes must be at least %d, got %d" % (1 if multi_label else 2, num_classes)
            )
        if k < MIN_EXAMPLES_PER_CELL:
            raise ValueError(
                "k must be at least %d (the contract lists min(count, %d) examples per cell), "
                "got %d" % (MIN_EXAMPLES_PER_CELL, MIN_EXAMPLES_PER_CELL, k)
            )
        self.num_classes, self.k = num_classes, k
        self.num_groups = None if num_groups is None else int(num_groups)
        # A group's cells follow the cells of the groups before it.
        self.group_cells = num_classes * 4 if self.multi_label else num_classes * num_classes
        self.num_cells = self.group_cells * (self.num_groups or 1)
        if self.num_cells > _MAX_CELLS:
            raise ValueError("too many classes for per-cell examples: %d" % num_classes)
        # The kept examples, sorted by (cell, order key, position); at most k per cell.
        self._kept = {
            "cell": np.empty(0, np.int64),
            "key": np.empty(0, np.float64),
            "position": np.empty(0, np.int64),
            "score": np.empty(0, np.float64),
            "true_score": np.empty(0, np.float64),
        }
        # The non-empty cells, ascending, and their counts.
        self._count_cells = np.empty(0, np.int64)
        self._counts = np.empty(0, np.int64)
        # Batches' candidates and counts not merged yet: merging each batch into a large
        # state would cost the state's size per batch.
        self._pending, self._pending_counts, self._pending_rows = [], [], 0
        self._rows = np.full(0, _UNSEEN, np.int8)

    @property
    def num_rows(self):
        """One more than the largest position seen: the length of the correctness vector."""
        seen = np.flatnonzero(self._rows != _UNSEEN)
        return int(seen[-1]) + 1 if seen.size else 0

    def update(self, positions, y_true, y_pred, score, true_score, groups=None):
        """Add one batch.

        Args:
          positions: ``[n]`` distinct integers ``>= 0``, never given before: the rows' indices
            in the writer's id table.
          y_true: actual class ids ``[n]`` in ``[0, C)``; multi-label: ``[n, K]`` of 0 and 1.
          y_pred: predicted class ids, shaped as ``y_true``.
          score: the probability of the predicted class (multi-label: of the predicted value
            of each label, ``p`` for 1 and ``1 - p`` for 0), finite, shaped as ``y_pred``.
          true_score: the probability of the actual class (value), shaped as ``y_true``.
          groups: with ``num_groups``, the group ids of the rows ``[n]``.

        Raises:
          ValueError: shapes, class ids, positions (negative, repeated, or seen in an earlier
            batch), scores (NaN, infinite) or groups that do not fit; nothing is added then.
        """
        positions = _positions(positions)
        n = positions.size
        shape = (n, self.num_classes) if self.multi_label else (n,)
        bound = 2 if self.multi_label else self.num_classes
        y_true = _class_ids(y_true, shape, bound, "y_true")
        y_pred = _class_ids(y_pred, shape, bound, "y_pred")
        score = _scores(score, shape, "score")
        true_score = _scores(true_score, shape, "true_score")
        if (groups is None) != (self.num_groups is None):
            raise ValueError("grouped examples take each row's group, ungrouped ones none")
        groups = check_groups(groups, self.num_groups, n)
        if n == 0:
            return
        self._check_new_positions(positions)
        right = y_true == y_pred
        if self.multi_label:
            cells = (np.arange(self.num_classes, dtype=np.int64) * 4) + y_true * 2 + y_pred
            row_right = right.all(axis=1)
            positions_per_entry = np.repeat(positions, self.num_classes)
            cells, right, score, true_score = (
                a.reshape(-1) for a in (cells, right, score, true_score)
            )
        else:
            cells = y_true * self.num_classes + y_pred
            row_right, positions_per_entry = right, positions
        if groups is not None:  # every cell of a row (each of its labels) in the row's group
            cells = cells + np.repeat(groups * self.group_cells, cells.size // n)
        self._rows[positions] = np.where(row_right, _RIGHT, _WRONG)
        keys = np.where(right, score, -score)
        chosen, batch_cells, batch_counts = _batch_candidates(cells, keys, self.k)
        self._pending_counts.append((batch_cells, batch_counts))
        self._pending.append(
            {
                "cell": cells[chosen],
                "key": keys[chosen],
                "position": positions_per_entry[chosen],
                "score": score[chosen],
                "true_score": true_score[chosen],
            }
        )
        self._pending_rows += chosen.size
        if self._pending_rows >= max(self._kept["cell"].size, _PENDING_ROWS):
            self._flush()

    def merge(self, other):
        """Add everything ``other`` accumulated (another process's rows, say) to this one.

        Raises:
          ValueError: ``other`` counts other classes or keeps another ``k``, or both saw a
            position.
        """
        if (other.num_classes, other.k, other.multi_label, other.num_groups) != (
            self.num_classes,
            self.k,
            self.multi_label,
            self.num_groups,
        ):
            raise ValueError(
                "only accumulators of the same classes and k, grouped alike, can be merged"
            )
        theirs = np.flatnonzero(other._rows != _UNSEEN)
        if theirs.size:
            self._check_new_positions(theirs)
            self._rows[theirs] = other._rows[theirs]
        other._flush()
        self._pending_counts.append((other._count_cells, other._counts))
        self._pending.append(other._kept)
        self._flush()

    def confusion_matrix(self):
        """The counts per cell: ``[C, C]`` (``M[i, j]``: actual i predicted as j), or
        multi-label ``[K, 2, 2]`` (``[[tn, fp], [fn, tp]]`` per label), int64; grouped, one
        per group: ``[G, C, C]`` or ``[G, K, 2, 2]``.
        """
        self._flush()
        counts = np.zeros(self.num_cells, np.int64)
        counts[self._count_cells] = self._counts
        shape = (self.num_classes, 2, 2) if self.multi_label else (self.num_classes,) * 2
        return counts.reshape(shape if self.num_groups is None else (self.num_groups,) + shape)

    def cell_examples(self, true, pred, label=None, group=None):
        """The kept examples of one cell, in the contract's order.

        Args:
          true: the cell's actual class (multi-label: 0 or 1).
          pred: its predicted class (multi-label: 0 or 1).
          label: the label index, for a multi-label task only.
          group: the group of the cell, for grouped examples only.

        Returns:
          A dict of ``count`` (the cell's examples, all of them) and ``[m]`` arrays
          ``position``, ``score``, ``true_score`` (``m = min(count, k)``).
        """
        cell = self._cell_id(true, pred, label, group)
        self._flush()
        kept = self._kept["cell"]
        begin, end = np.searchsorted(kept, [cell, cell + 1])
        at = np.searchsorted(self._count_cells, cell)
        counted = at < self._count_cells.size and self._count_cells[at] == cell
        result = {"count": int(self._counts[at]) if counted else 0}
        for name in ("position", "score", "true_score"):
            result[name] = self._kept[name][begin:end].copy()
        return result

    def examples(self, budget=None):
        """Every kept example, cell by cell, best first within each cell.

        Args:
          budget: at most this many examples in all (`per_cell_limit`), None for all kept.

        Returns:
          A dict of ``[m]`` arrays ``true``, ``pred`` (and ``label`` for a multi-label task,
          ``group`` for grouped examples), ``rank`` (0 for the first of its cell), ``position``, ``score`` and ``true_score``,
          sorted by cell then rank; and ``limit``: the per-cell limit the budget imposed, None
          when it imposed none.
        """
        self._flush()
        cells = self._kept["cell"]
        starts, sizes = _runs(cells)
        rank = np.arange(cells.size) - np.repeat(starts, sizes)
        limit = None if budget is None else per_cell_limit(sizes, budget)
        keep = slice(None) if limit is None else rank < limit
        result = {"rank": rank[keep], "limit": limit}
        result.update(self._decode(cells[keep]))
        for name in ("position", "score", "true_score"):
            result[name] = self._kept[name][keep]
        return result

    def correctness_bits(self):
        """Whether each example was right, one bit per position ``0..num_rows-1``, packed
        (`pack_correctness`); a multi-label example is right when all its labels are.

        Raises:
          ValueError: a position below `num_rows` was never given: the positions must number
            the evaluated examples ``0..n-1``.
        """
        rows = self._rows[: self.num_rows]
        missing = np.flatnonzero(rows == _UNSEEN)
        if missing.size:
            raise ValueError(
                "no example was given at %d of the positions 0..%d (the first: %d); positions "
                "must number the evaluated examples 0..n-1"
                % (missing.size, rows.size - 1, missing[0])
            )
        return pack_correctness(rows == _RIGHT)

    def _cell_id(self, true, pred, label, group):
        bound = 2 if self.multi_label else self.num_classes
        for name, value in (("true", true), ("pred", pred)):
            if not 0 <= int(value) < bound:
                raise ValueError("%s must be in [0, %d), got %r" % (name, bound, value))
        if self.num_groups is None:
            if group is not None:
                raise ValueError("group is for grouped examples only")
            first = 0
        elif group is None or not 0 <= int(group) < self.num_groups:
            raise ValueError(
                "group must be in [0, %d) for grouped examples, got %r" % (self.num_groups, group)
            )
        else:
            first = int(group) * self.group_cells
        if self.multi_label:
            if label is None or not 0 <= int(label) < self.num_classes:
                raise ValueError(
                    "label must be in [0, %d) for a multi-label task, got %r"
                    % (self.num_classes, label)
                )
            return first + int(label) * 4 + int(true) * 2 + int(pred)
        if label is not None:
            raise ValueError("label is for multi-label tasks only")
        return first + int(true) * self.num_classes + int(pred)

    def _decode(self, cells):
        decoded = {} if self.num_groups is None else {"group": cells // self.group_cells}
        cells = cells % self.group_cells
        if self.multi_label:
            decoded.update(label=cells // 4, true=(cells // 2) % 2, pred=cells % 2)
        else:
            decoded.update(true=cells // self.num_classes, pred=cells % self.num_classes)
        return decoded

    def _check_new_positions(self, positions):
        top = int(positions.max()) + 1
        if top > self._rows.size:
            grown = np.full(max(top, 2 * self._rows.size), _UNSEEN, np.int8)
            grown[: self._rows.size] = self._rows
            self._rows = grown
        if np.any(self._rows[positions] != _UNSEEN):
            again = positions[self._rows[positions] != _UNSEEN]
            raise ValueError(
                "positions given before: %s; each example is given once per epoch"
                % again[:5].tolist()
            )

    def _flush(self):
        """Merge the pending batches into the counts and the kept examples."""
        if not self._pending_counts:
            return
        cells = np.concatenate([self._count_cells] + [c for c, _ in self._pending_counts])
        counts = np.concatenate([self._counts] + [n for _, n in self._pending_counts])
        order = np.argsort(cells, kind="stable")
        starts, _ = _runs(cells[order])
        self._count_cells = cells[order][starts]
        self._counts = np.add.reduceat(counts[order], starts) if starts.size else counts
        new = {name: np.concatenate([p[name] for p in self._pending]) for name in self._kept}
        order = np.argsort(_sort_keys(new["cell"], new["key"]))
        self._keep_top({name: values[order] for name, values in new.items()})
        self._pending, self._pending_counts, self._pending_rows = [], [], 0

    def _keep_top(self, new):
        """Merge ``new`` candidates (sorted by `_sort_keys`) into the kept examples (sorted
        exactly); keep the first k of each cell.
        """
        kept_keys = _sort_keys(self._kept["cell"], self._kept["key"])
        new_keys = _sort_keys(new["cell"], new["key"])
        # Both are sorted: each new row's place in the merged order, in one binary search.
        slots = np.searchsorted(kept_keys, new_keys, side="right") + np.arange(new_keys.size)
        merged_keys = np.empty(kept_keys.size + new_keys.size, np.uint64)
        is_new = np.zeros(merged_keys.size, bool)
        merged_keys[slots], is_new[slots] = new_keys, True
        merged_keys[~is_new] = kept_keys
        both = {}
        for name, values in self._kept.items():
            both[name] = np.empty(merged_keys.size, values.dtype)
            both[name][slots], both[name][~is_new] = new[name], values
        _break_ties(merged_keys, both)
        starts, sizes = _runs(both["cell"])
        rank = np.arange(both["cell"].size) - np.repeat(starts, sizes)
        chosen = rank < self.k
        self._kept = {name: values[chosen] for name, values in both.items()}


def _sort_keys(cells, keys):
    """One uint64 per row that sorts as (cell, key): the cell in the high 32 bits, the key
    rounded to float32 as an order-preserving integer in the low 32. Rounding never reverses
    an order, so only rows of equal sort keys may be out of their exact order.
    """
    with np.errstate(over="ignore"):  # beyond float32's range: +-inf, order kept
        rounded = keys.astype(np.float32) + np.float32(0)  # -0.0 becomes +0.0
    bits = rounded.view(np.uint32)
    # Negative floats: all bits flipped; the others: the sign bit set. Then the unsigned
    # order is the float order.
    ordered = np.where(bits & _SIGN_BIT, ~bits, bits | _SIGN_BIT)
    return (cells.astype(np.uint64) << np.uint64(_KEY_BITS)) | ordered


def _break_ties(sort_keys, rows):
    """Put rows sorted by ``sort_keys`` into their exact order (cell, key, position), in place:
    only the runs of equal sort keys need sorting.
    """
    tied = np.flatnonzero(sort_keys[1:] == sort_keys[:-1])
    if tied.size == 0:
        return
    slots = np.union1d(tied, tied + 1)  # ascending, whole runs
    exact = np.lexsort((rows["position"][slots], rows["key"][slots], sort_keys[slots]))
    for values in rows.values():
        values[slots] = values[slots][exact]


def _batch_candidates(cells, keys, k):
    """The rows of a batch that can be among the first ``k`` of their cell, sorted by
    `_sort_keys`, and the batch's counts per cell.

    Every row whose sort key is at most that of the k-th row of its cell (ties included) is
    a candidate: they hold the exact first ``k``. A large batch is first thinned with a
    sample (`_thin`), so that only a few rows per cell are sorted.

    Returns:
      ``(rows, cells, counts)``: indices of the candidate rows; the batch's non-empty cells,
      ascending, and their counts.
    """
    sort_keys = _sort_keys(cells, keys)
    thinned = cells.size >= _THIN_MIN_ROWS
    if thinned:
        batch_cells, counts = _counts(cells)
        rows = _thin(sort_keys, cells, k)
        order = rows[np.argsort(sort_keys[rows])]
    else:
        order = np.argsort(sort_keys)
    sorted_keys = sort_keys[order]
    starts, sizes = _runs(sorted_keys >> np.uint64(_KEY_BITS))
    if not thinned:
        batch_cells, counts = cells[order[starts]], sizes
    full = sizes > k
    if not full.any():
        return order, batch_cells, counts
    kept = sizes.copy()
    last = sorted_keys[starts[full] + k - 1]
    kept[full] = np.searchsorted(sorted_keys, last, side="right") - starts[full]
    rank = np.arange(order.size) - np.repeat(starts, sizes)
    return order[rank < np.repeat(kept, sizes)], batch_cells, counts


def _thin(sort_keys, cells, k):
    """The rows whose sort key is at most the k-th smallest of their cell in a sample of
    every `_THIN_STRIDE`-th row: the sample's rows are the batch's, so at least ``k`` rows of
    every cell pass and the first ``k`` among them; cells with fewer than ``k`` sampled rows
    pass whole.
    """
    sample = np.sort(sort_keys[::_THIN_STRIDE])
    starts, sizes = _runs(sample >> np.uint64(_KEY_BITS))
    full = sizes >= k
    sample_cells = sample[starts] >> np.uint64(_KEY_BITS)
    # Cells not in the sample have fewer than k rows in it: like the cells not full, no bound.
    no_bound = np.iinfo(np.uint64).max
    bounds = np.full(sample_cells.size, no_bound, np.uint64)
    bounds[full] = sample[starts[full] + k - 1]
    if int(cells.max()) < _HISTOGRAM_SPAN * cells.size:
        table = np.full(int(cells.max()) + 1, no_bound, np.uint64)
        table[sample_cells.astype(np.int64)] = bounds
        bound = table[cells]
    else:
        where = np.minimum(np.searchsorted(sample_cells, cells), sample_cells.size - 1)
        bound = np.where(sample_cells[where] == cells, bounds[where], no_bound)
    return np.flatnonzero(sort_keys <= bound)


def _counts(values):
    """``(distinct values ascending, their counts)`` of non-negative integers."""
    if int(values.max()) < _HISTOGRAM_SPAN * values.size:
        histogram = np.bincount(values)
        present = np.flatnonzero(histogram)
        return present, histogram[present]
    return np.unique(values, return_counts=True)


def _runs(sorted_values):
    """``(starts, sizes)`` of the runs of equal values in a sorted array."""
    if sorted_values.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    change = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    return starts, np.diff(np.append(starts, sorted_values.size))


def per_cell_limit(kept_per_cell, budget, floor=MIN_EXAMPLES_PER_CELL):
    """The per-cell limit that fits ``budget`` examples in all, or None when all fit.

    The largest ``L >= floor`` with ``sum(min(kept, L)) <= budget``: cutting every cell to
    ``L`` drops the deepest ranks of the fullest cells first. When even ``L = floor`` exceeds
    the budget the floor is returned anyway: the contract's ``min(count, 10)`` per cell comes
    before the budget.

    >>> per_cell_limit([25, 25, 3], budget=40)
    18
    >>> per_cell_limit([25, 25, 3], budget=10), per_cell_limit([25, 25, 3], budget=60)
    (10, None)
    """
    kept = np.sort(np.asarray(kept_per_cell, dtype=np.int64))
    if int(budget) < 0:
        raise ValueError("budget must be >= 0, got %r" % (budget,))
    if kept.sum() <= budget:
        return None
    limits = np.arange(int(floor), int(kept[-1]) + 1)
    # sum(min(kept, L)) for every L: the cells below L in full, the others L each.
    below = np.searchsorted(kept, limits, side="left")
    totals = np.concatenate([[0], np.cumsum(kept)])[below] + limits * (kept.size - below)
    fitting = limits[totals <= budget]
    return int(fitting[-1]) if fitting.size else int(floor)


def pack_correctness(correct):
    """Per-example right (True) or wrong as bits, 8 to a byte, first example in the most
    significant bit (``np.packbits``); `unpack_correctness` reverses it.

    >>> pack_correctness([True, False, True]).tolist()
    [160]
    """
    correct = np.asarray(correct)
    if correct.ndim != 1 or correct.dtype.kind not in "bui":
        raise ValueError("correct must be a 1-D array of booleans")
    return np.packbits(correct.astype(bool))


def unpack_correctness(bits, num_rows):
    """The ``[num_rows]`` booleans `pack_correctness` packed."""
    bits = np.asarray(bits)
    num_rows = int(num_rows)
    if bits.dtype != np.uint8 or bits.ndim != 1 or bits.size != (num_rows + 7) // 8:
        raise ValueError(
            "correctness bits of %d examples are %d bytes of uint8, got %s of %s"
            % (num_rows, (num_rows + 7) // 8, bits.shape, bits.dtype)
        )
    return np.unpackbits(bits, count=num_rows).astype(bool)


def flips(before_ids, before_correct, after_ids, after_correct, after_score, limit=None):
    """The examples two evaluations got differently, matched by id.

    Args:
      before_ids: ``[n]`` ids (integers, or strings), unique: the same id names the same
        example in both evaluations.
      before_correct: ``[n]`` whether each example was right before.
      after_ids: ``[m]`` ids, as ``before_ids``.
      after_correct: ``[m]`` whether each example is right after.
      after_score: ``[m]`` the "after" probability of its predicted class: the order.
      limit: list at most this many of each kind (the counts stay exact); None for all.

    Returns:
      A dict of ``matched`` (ids in both) and, for ``became_wrong`` (right before, wrong
      after) and ``became_right`` (the reverse), a dict of ``count`` and ``[l]`` arrays
      ``after_index``, ``before_index``, ``id`` and ``score`` (``after_score``), the most
      confident first (equal scores: the lower after index first).

    >>> result = flips([7, 8, 9], [True, True, False], [9, 8, 5], [True, False, True],
    ...                [0.8, 0.9, 0.7])
    >>> result["became_wrong"]["id"].tolist(), result["became_right"]["id"].tolist()
    ([8], [9])
    """
    before_ids = _ids(before_ids, "before_ids")
    after_ids = _ids(after_ids, "after_ids")
    if (before_ids.dtype.kind in "US") != (after_ids.dtype.kind in "US"):
        raise ValueError("before_ids and after_ids must both be integers or both be strings")
    before_correct = _flags(before_correct, before_ids.size, "before_correct")
    after_correct = _flags(after_correct, after_ids.size, "after_correct")
    after_score = _scores(after_score, after_ids.shape, "after_score")
    if limit is not None and int(limit) < 0:
        raise ValueError("limit must be >= 0 or None, got %r" % (limit,))
    before_order = np.argsort(before_ids, kind="stable")
    before_sorted = before_ids[before_order]
    _check_unique(before_sorted, "before_ids")
    _check_unique(np.sort(after_ids), "after_ids")
    where = np.searchsorted(before_sorted, after_ids)
    inside = where < before_sorted.size
    matched = np.zeros(after_ids.size, bool)
    matched[inside] = before_sorted[where[inside]] == after_ids[inside]
    after_index = np.flatnonzero(matched)
    before_index = before_order[where[matched]]
    was, now = before_correct[before_index], after_correct[after_index]
    result = {"matched": int(after_index.size)}
    for name, changed in (("became_wrong", was & ~now), ("became_right", ~was & now)):
        listed_after, listed_before = after_index[changed], before_index[changed]
        order = np.lexsort((listed_after, -after_score[listed_after]))[:limit]
        result[name] = {
            "count": int(listed_after.size),
            "after_index": listed_after[order],
            "before_index": listed_before[order],
            "id": after_ids[listed_after[order]],
            "score": after_score[listed_after[order]],
        }
    return result


def _positions(positions):
    positions = np.asarray(positions)
    if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
        raise ValueError("positions must be a 1-D array of integers")
    positions = positions.astype(np.int64, copy=False)
    if positions.size and positions.min() < 0:
        raise ValueError("positions must be >= 0, found %d" % positions.min())
    if _has_repeats(positions):
        raise ValueError("positions repeat within the batch; each example is given once")
    return positions


def _has_repeats(values):
    if values.size < 2:
        return False
    low, high = int(values.min()), int(values.max())
    if high - low < _HISTOGRAM_SPAN * values.size:
        return bool(np.bincount(values - low).max() > 1)
    ordered = np.sort(values)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _class_ids(ids, shape, bound, name):
    ids = _numbers(ids, shape, "biu", name, "integer class ids").astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= bound):
        raise ValueError(
            "%s holds values outside [0, %d): found %d..%d" % (name, bound, ids.min(), ids.max())
        )
    return ids


def _scores(values, shape, name):
    values = _numbers(values, shape, "fiu", name, "numbers").astype(np.float64, copy=False)
    # NaN makes the minimum NaN: one pass each finds NaN and the infinities.
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise ValueError("%s holds NaN or infinite values" % name)
    return values


def _numbers(values, shape, kinds, name, what):
    """``values`` as an array of ``shape`` whose dtype is of one of ``kinds``."""
    values = np.asarray(values)
    if values.shape != shape:
        raise ValueError("%s must have shape %s, got %s" % (name, shape, values.shape))
    if values.size and values.dtype.kind not in kinds:
        raise ValueError("%s must hold %s, got %s" % (name, what, values.dtype))
    return values


def _ids(ids, name):
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iuUS"):
        raise ValueError("%s must be a 1-D array of integers or strings" % name)
    return ids


def _flags(flags, size, name):
    flags = np.asarray(flags)
    if flags.shape != (size,) or (flags.size and flags.dtype.kind not in "bui"):
        raise ValueError("%s must be %d booleans, got %s" % (name, size, flags.shape))
    return flags.astype(bool)


def _check_unique(sorted_ids, name):
    repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if repeated.size:
        raise ValueError("%s repeat: %s; each id names one example" % (name, repeated[:5].tolist()))

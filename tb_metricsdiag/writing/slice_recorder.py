"""Slices as every writer records them: per group key and value, the counts the split records
overall and the top examples of every cell (`format.slices`).

`SliceValues` decides, for one split of a run, which values of each key get a slice of their
own: at most `MAX_VALUES_PER_KEY` per key, the rest pooled as `schema.OTHER_SLICE`. Values are
admitted at each evaluation while the key has room, the most frequent of that evaluation first
(equal counts: the first to appear first), and a value once admitted stays: so the values kept
are the most frequent of the split's first evaluation, and a slice names the same rows at every
epoch of a fixed validation set (a value never moves between its own slice and the pool).

`EpochSlices` takes one split's evaluation batch by batch (as `example_recorder.EpochExamples`)
and encodes it. Each key's slices are counted in one pass, whatever their number: one `counting`
accumulator of the layout grouped by slice (``num_groups``: confusion, threshold and calibration
counts per slice; no kept scores: the threshold counts are the buckets', no AP) and, with example
records, one `core.examples.CellExamples` keyed by slice and cell, of the contract's floor
(`core.examples.MIN_EXAMPLES_PER_CELL` per cell), so that ``/examples`` lists at least
``min(count, 10)`` examples of any cell within any slice; and the group values of every example
the split's example records keep (an example kept in a slice is in that slice).
`MetricsDiagWriter` and the Keras callback share both, and so does every writer that hands
``groups`` to `inputs.check_evaluation` and its `inputs.Evaluation` to
`MetricsDiagWriter.add_checked_evaluation`.

Framework-free: NumPy, `core/` and `format/` only.
"""

import numpy as np

from tb_metricsdiag.core import examples as examples_lib
from tb_metricsdiag.format import schema
from tb_metricsdiag.format import slices as slices_lib
from tb_metricsdiag.writing import example_recorder, records

MAX_VALUES_PER_KEY = 256
"""Values of a key with a slice of their own (the contract's cap); the rest share one pool."""

SLICE_EXAMPLES_PER_CELL = examples_lib.MIN_EXAMPLES_PER_CELL
"""Examples kept per cell of a slice: the contract's floor, ``min(count, 10)``."""

# Rows are given to the keys' accumulators in blocks of this many scores at least: one
# accumulator call per key and block, whatever the writer's batches.
_BLOCK_VALUES = 1 << 22


class SliceValues:
    """The values of each key with a slice of their own, for one split of a run (module
    docstring).

    Args:
      limit: values per key with a slice of their own.
    """

    def __init__(self, limit=MAX_VALUES_PER_KEY):
        self.limit = int(limit)
        self._kept = {}  # key -> {value: slice index}, in order of admission

    def slice_codes(self, groups):
        """``{key: [n] slice index}`` of an evaluation's ``groups`` (`inputs.check_groups`'
        ``{key: GroupColumn}``), admitting new values while a key has room; `limit` stands for
        the pool.
        """
        result = {}
        for key, column in groups.items():
            kept = self._kept.setdefault(key, {})
            frequency = np.bincount(column.codes, minlength=len(column.values))
            for code in np.argsort(-frequency, kind="stable").tolist():
                if len(kept) >= self.limit:
                    break
                kept.setdefault(column.values[code], len(kept))
            lookup = np.array([kept.get(value, self.limit) for value in column.values])
            result[key] = lookup[column.codes] if lookup.size else column.codes
        return result

    def value_of(self, key, index):
        """The value (as shown) of slice ``index`` of ``key``: `schema.OTHER_SLICE` for the
        pool.
        """
        if index == self.limit:
            return schema.OTHER_SLICE
        return list(self._kept[key])[index]


class EpochSlices:
    """One split's slices at one step, fed batch by batch.

    Args:
      layout: the run's `inputs.Layout`.
      thresholds: the writer's threshold grid.
      values: the split's `SliceValues`.
      codes: ``{key: [num_rows] slice index}`` (`SliceValues.slice_codes`) of the split's rows.
      with_examples: whether to keep the examples of every cell of every slice.
    """

    def __init__(self, layout, thresholds, values, codes, with_examples=True):
        self.layout, self.thresholds, self.values = layout, thresholds, values
        self.codes = codes
        self.num_rows = next(iter(codes.values())).size if codes else 0
        self.with_examples = bool(with_examples)
        self._keys = {}  # key -> (counts, cells) of every slice of the key, once it has rows
        self._pending, self._pending_values = [], 0

    def update(self, positions, targets, scores, predicted=None):
        """Add one batch, as `example_recorder.EpochExamples.update` takes it."""
        positions = np.asarray(positions, dtype=np.int64)
        batch = example_recorder.finite_rows(positions, targets, scores, predicted)
        self._pending.append(batch)
        self._pending_values += scores.size
        if self._pending_values >= _BLOCK_VALUES:
            self._feed()

    def _feed(self):
        if not self._pending:
            return
        if len(self._pending) == 1:
            positions, targets, scores, predicted = self._pending[0]
        else:
            positions, targets, scores, predicted = (
                None if parts[0] is None else np.concatenate(parts) for parts in zip(*self._pending)
            )
        self._pending, self._pending_values = [], 0
        if positions.size == 0:
            return
        columns = None
        if self.with_examples:
            columns = example_recorder.cell_columns(
                targets, scores, predicted, self.layout.multi_label
            )
        for key, codes in self.codes.items():
            slices = codes[positions]
            counts, cells = self._accumulators(key)
            if predicted is None:
                counts.update(targets, scores, groups=slices)
            else:
                counts.update(targets, scores, predicted, groups=slices)
            if cells is not None:
                cells.update(positions, *columns[:4], groups=slices)

    def _accumulators(self, key):
        found = self._keys.get(key)
        if found is None:
            # Slice indices are the key's values in order of admission, the pool last.
            num_slices = int(self.codes[key].max()) + 1
            cells = None
            if self.with_examples:
                cells = examples_lib.CellExamples(
                    self.layout.num_classes,
                    k=SLICE_EXAMPLES_PER_CELL,
                    multi_label=self.layout.multi_label,
                    num_groups=num_slices,
                )
            counts = self.layout.new_counts(
                self.thresholds, keep_scores=False, num_groups=num_slices
            )
            found = self._keys[key] = (counts, cells)
        return found

    def _present(self, key):
        """The indices of ``key``'s slices with rows counted, ascending."""
        return np.flatnonzero(self._keys[key][0].count)

    def payload(self, overall_positions=None):
        """The encoded slices (`format.slices.encode_slices`); ``overall_positions``: the
        examples kept by the split's example records, whose group values are stored too.
        """
        self._feed()
        keys, parts = [], []
        for key, (counts, cells) in self._keys.items():
            present = self._present(key)
            first = sum(len(values) for _, values in keys)  # the key's first slice, overall
            keys.append((key, [self.values.value_of(key, index) for index in present.tolist()]))
            one = {
                "tp": counts.tp[present],
                "fp": counts.fp[present],
                "calibration": np.stack(counts.calibration, axis=1)[present],
            }
            if self.layout.multi_label:
                one.update(
                    matrices=counts.matrices[present], exact_matches=counts.exact_matches[present]
                )
            else:
                one["confusion"] = counts.confusion[present]
            if cells is not None:  # sorted by cell: a slice's cells are together
                kept = cells.examples()
                one["kept"] = {
                    "slice": first + np.searchsorted(present, kept["group"]),
                    **{name: kept[name] for name in ("position", "score", "true_score")},
                }
            parts.append(one)
        slices = _stacked(parts)
        example_groups = None
        if self.with_examples:
            # Sorted and deduplicated (a multi-label example is kept once per label): NumPy
            # 2's hashing `np.unique` costs more than this sort at these sizes.
            positions = np.sort(
                np.asarray([] if overall_positions is None else overall_positions, np.int64)
            )
            positions = positions[
                np.append(True, positions[1:] != positions[:-1])[: positions.size]
            ]
            example_groups = (positions, self._stored_codes(keys, positions))
        layout = {
            "num_classes": self.layout.num_classes,
            "multi_label": self.layout.multi_label,
            "thresholds": self.thresholds.size,
            "bins": slices["calibration"].shape[2] if parts else 1,
            "num_rows": self.num_rows,
            "per_cell": SLICE_EXAMPLES_PER_CELL if self.with_examples else None,
        }
        return slices_lib.encode_slices(layout, keys, slices, example_groups)

    def _stored_codes(self, keys, positions):
        """``{key: [P]}`` each position's index among the key's stored values."""
        result = {}
        for key, _ in keys:
            indices = self._present(key)
            lookup = np.zeros(self.codes[key].max() + 1, dtype=np.int64)
            lookup[indices] = np.arange(indices.size)
            result[key] = lookup[self.codes[key][positions]]
        return result

    def record(self, split, class_names, overall_positions=None):
        """The `records.Record` of the slices (`records.slices`); None when no row was
        counted (every score NaN or infinite).
        """
        self._feed()
        if not self._keys:
            return None
        return records.slices(
            self.payload(overall_positions), split, class_names, self.thresholds, list(self._keys)
        )


def _stacked(parts):
    """One dict of every key's stacked slices (`format.slices.encode_slices`), key after key."""
    if len(parts) == 1:
        return parts[0]
    result = {}
    for name in parts[0] if parts else ():
        if name == "kept":
            result[name] = {
                field: np.concatenate([part[name][field] for part in parts])
                for field in parts[0][name]
            }
        else:
            result[name] = np.concatenate([part[name] for part in parts])
    return result

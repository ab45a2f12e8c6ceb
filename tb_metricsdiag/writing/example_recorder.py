"""Example records as every writer makes them: which examples fall in each confusion cell, which
were right, which given labels look wrong, the split's ids and the examples' previews.

`EpochExamples` takes one split's evaluation at one step, batch by batch (the rows' positions,
class ids, scores and predictions, as `inputs.Layout.converted` gives them), and encodes it
(`format.example_records`). `ExampleRecorder` keeps what a run has written across evaluations
(the id table of each split, the previews stored) and turns an `EpochExamples` into its records.
`MetricsDiagWriter` and the Keras callback share both, so they write the same bytes for the same
rows.

Caps (docs/format.md, "Example records"):

- per epoch and split, `core.examples.DEFAULT_EPOCH_BUDGET` kept examples (the deepest ranks of
  the fullest cells dropped first, never fewer than 10 per non-empty cell) and
  `LISTED_LABEL_ISSUES` listed label issues (the most likely given labels dropped first; the
  count stays exact), and `format.crossings.default_budget` bytes of crossing samples (the
  bins farthest from the threshold 0.5 dropped first; only the rows at positions below
  `core.crossings.SCANNED_ROWS` sampled);
- per run, previews of at most `PREVIEW_LIMIT` distinct examples and `PREVIEW_BYTES` bytes.
  An evaluation previews its new kept examples in order of rank (every cell's first example,
  then every cell's second, ...; the listed label issues by their rank in the list after the
  cells' examples of the same rank; the crossing samples last, those of the bins nearest 0.5
  first); what does not fit is dropped: the deepest ranks of an
  epoch first, then everything newly kept in later epochs (shown without a preview).

Framework-free: NumPy, `core/` and `format/` only.
"""

import numpy as np

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import crossings as crossings_lib
from tb_metricsdiag.core import examples as examples_lib
from tb_metricsdiag.core import label_issues as label_issues_lib
from tb_metricsdiag.format import crossings, example_ids, example_records, previews, schema
from tb_metricsdiag.writing import records, thumbnails

LISTED_LABEL_ISSUES = 1000
"""Label issues listed per epoch and split (the contract lists at least 100): at 12 bytes each,
12 KB, a fifth of the 64 KB an epoch may take at 10,000 examples."""

PREVIEW_LIMIT = 4096
"""Most distinct examples with a preview per run (all splits together)."""

PREVIEW_BYTES = 6 << 20
"""Most bytes of previews per run: with the records of 20 epochs at 10,000 examples x 10
classes, a run with 28 x 28 image previews stays within 8 MB (docs/benchmarks.md)."""

# Rows are given to confident learning in blocks of this many values (and at least
# _MIN_BLOCK_ROWS rows): the same blocks whatever the batches, so that float sums, and the
# bytes written, do not depend on how a writer's rows were batched.
_BLOCK_VALUES = 1 << 22
_MIN_BLOCK_ROWS = 1 << 10


def finite_rows(positions, targets, scores, predicted):
    """The rows of a batch whose scores are all finite (the counts leave the others out)."""
    if counts_lib.all_finite(scores):
        return positions, targets, scores, predicted
    finite = np.isfinite(scores).all(axis=1)
    predicted = None if predicted is None else predicted[finite]
    return positions[finite], targets[finite], scores[finite], predicted


def cell_columns(targets, scores, predicted, multi_label):
    """What `core.examples.CellExamples` takes of a batch of finite rows: ``(actual,
    predicted, score, true_score, right, confidence)`` (multi-label: per label, 0/1 values,
    the probability of the predicted and of the actual value; a row is right when every label
    is, its confidence the least of its labels').
    """
    if multi_label:
        decided = scores >= scores.dtype.type(counts_lib.MultiLabelCounts.DECISION_THRESHOLD)
        actual = np.asarray(targets) > 0
        score = np.where(decided, scores, 1 - scores)
        true_score = np.where(actual, scores, 1 - scores)
        return (
            actual.astype(np.int64),
            decided.astype(np.int64),
            score,
            true_score,
            (decided == actual).all(axis=1),
            score.min(axis=1),
        )
    rows = np.arange(scores.shape[0])
    score, true_score = scores[rows, predicted], scores[rows, targets]
    return targets, predicted, score, true_score, predicted == targets, score


class EpochExamples:
    """One split's evaluation at one step, fed batch by batch.

    Args:
      layout: the run's `inputs.Layout` (classes, multi-label).
      num_rows: the split's rows: positions are ``0..num_rows-1``.
      label_issues: whether confident learning runs (single-label tasks); it keeps the
        candidate rows' probabilities, so counting processes that merge fixed-size states
        (`shareable_cells`, `merge_cells`) leave it out.
      thresholds: the run's threshold grid (the counts'), which the crossing samples' bins
        are of; None for `counting.default_thresholds`.
    """

    def __init__(self, layout, num_rows, label_issues=True, thresholds=None):
        self.num_rows = int(num_rows)
        self.multi_label = layout.multi_label
        self.cells = examples_lib.CellExamples(layout.num_classes, multi_label=self.multi_label)
        if thresholds is None:
            thresholds = counts_lib.default_thresholds()
        self.crossings = crossings_lib.CrossingSamples(
            layout.num_classes, thresholds, max_bins=crossings.sampled_bins(layout.num_classes)
        )
        self.issues = None
        if label_issues and not self.multi_label:
            self.issues = label_issues_lib.LabelIssues(layout.num_classes)
        self._right = np.zeros(self.num_rows, dtype=bool)
        self._confidence = np.zeros(self.num_rows, dtype=np.uint8)
        self._pending, self._pending_rows = [], 0
        self._listed = None  # the listed label issues' positions, once finished
        self._crossing_positions = np.empty(0, dtype=np.int64)  # once encoded
        self._block_rows = max(_MIN_BLOCK_ROWS, _BLOCK_VALUES // layout.num_classes)

    def update(self, positions, targets, scores, predicted=None):
        """Add one batch.

        Args:
          positions: ``[b]`` the rows' positions, given once each.
          targets: class ids ``[b]`` (multi-hot rows ``[b, K]``), as
            `inputs.Layout.converted` gives them.
          scores: probabilities ``[b, C]`` (``[b, K]``); rows with a NaN or infinite score
            are left out, as the counts leave them out.
          predicted: predicted class ids ``[b]`` (None, multi-label).

        Raises:
          ValueError: positions outside the split's rows, or given before.
        """
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.num_rows):
            raise ValueError("positions outside the split's %d rows" % self.num_rows)
        positions, targets, scores, predicted = finite_rows(positions, targets, scores, predicted)
        self._add_crossings(positions, targets, scores)
        columns = cell_columns(targets, scores, predicted, self.multi_label)
        actual, decided, score, true_score, right, confidence = columns
        batch = (
            positions,
            actual,
            decided,
            score,
            true_score,
            None if self.multi_label else scores,
        )
        self._right[positions] = right
        self._confidence[positions] = example_records.encode_confidence(confidence)
        self._pending.append(batch)
        self._pending_rows += positions.size
        if self._pending_rows >= self._block_rows:
            self._feed(final=False)

    def _add_crossings(self, positions, targets, scores):
        """Give the batch's sampled rows (`core.crossings.SCANNED_ROWS`) to the crossing
        samples: each curve's score and whether the row is a positive of it.
        """
        scanned = positions < self.crossings.scanned_rows
        if not scanned.any():
            return
        if not scanned.all():
            positions, targets, scores = positions[scanned], targets[scanned], scores[scanned]
        if self.multi_label:
            positives = np.asarray(targets) > 0
        else:
            positives = np.asarray(targets)[:, None] == np.arange(scores.shape[1])
        self.crossings.update(positions, scores, positives)

    def _feed(self, final):
        """Give the pending rows to the accumulators in whole blocks (all of them when
        ``final``).
        """
        if not self._pending:
            return
        if len(self._pending) == 1:  # one batch (the writer's whole epoch): no copy
            columns = list(self._pending[0])
        else:
            columns = [
                None if parts[0] is None else np.concatenate(parts) for parts in zip(*self._pending)
            ]
        total = columns[0].size
        fed = total if final else total - total % self._block_rows
        for begin in range(0, fed, self._block_rows):
            block = slice(begin, min(begin + self._block_rows, fed))
            positions, targets, predicted, score, true_score, probabilities = (
                None if column is None else column[block] for column in columns
            )
            self.cells.update(positions, targets, predicted, score, true_score)
            if self.issues is not None:
                self._add_issues(positions, targets, probabilities)
        rest = [None if column is None else column[fed:] for column in columns]
        self._pending = [tuple(rest)] if fed < total else []
        self._pending_rows = total - fed

    def _add_issues(self, positions, targets, probabilities):
        try:
            self.issues.update(positions, targets, probabilities)
        except ValueError:
            # Outputs declared probabilities (from_logits=False) that stray outside [0, 1]:
            # confident learning reads them as the nearest probabilities.
            self.issues.update(positions, targets, np.clip(probabilities, 0.0, 1.0))

    def per_row(self):
        """``(right, confidence)``: the arrays of one value per row (bool, uint8 codes) that
        the examples record stores, for a caller that sums them across processes in place
        (each process fills only its own rows).
        """
        return self._right, self._confidence

    def shareable_cells(self):
        """The kept examples and the counts per cell so far, without the per-row state
        (`core.examples.CellExamples.without_rows`), and the crossing samples: what another
        process `merge_cells`.
        """
        self._feed(final=True)
        return self.cells.without_rows(), self.crossings

    def merge_cells(self, cells):
        """Add another process's `shareable_cells` (of other positions) to this epoch's."""
        self._feed(final=True)
        cell_examples, crossing_samples = cells
        self.cells.merge(cell_examples)
        self.crossings.merge(crossing_samples)

    def crossings_payload(self):
        """The encoded crossing samples of the epoch (`format.crossings`); their positions,
        the bins nearest the threshold 0.5 first, are then the last in `preview_order`.
        """
        stored = crossings.stored_samples(self.crossings)
        kept = stored[0]
        center = crossings_lib.center_bin(self.crossings.thresholds)
        nearest = np.argsort(np.abs(kept["bin"] - center), kind="stable")
        self._crossing_positions = kept["position"][nearest]
        return crossings.encode_crossings(
            self.crossings, self.num_rows, self.multi_label, stored=stored
        )

    def finish(self, budget, listed):
        """``(examples payload, label issues payload or None)``: the encoded records
        (`format.example_records`) of the epoch.
        """
        self._feed(final=True)
        examples_payload = example_records.encode_examples(
            self.cells, self.num_rows, self._right, self._confidence, budget
        )
        self._listed = np.empty(0, dtype=np.int64)
        if self.issues is None:
            return examples_payload, None
        result = self.issues.result()
        self._listed = result["position"][:listed]
        return examples_payload, example_records.encode_label_issues(
            self.num_rows, result, self.issues.top_label_bins(), listed
        )

    def preview_order(self, budget):
        """The positions of the kept examples, the listed label issues (after `finish`) and
        the crossing samples (after `crossings_payload`), in the order they get previews
        (`ExampleRecorder`): by rank, the cells' examples before the label issues of the same
        rank, then the crossing samples; each position once.
        """
        kept = self.cells.examples(budget)
        ranks = np.concatenate([kept["rank"], np.arange(self._listed.size)])
        order = np.argsort(ranks, kind="stable")
        ranked = np.concatenate([kept["position"], self._listed])[order]
        ordered = np.concatenate([ranked, self._crossing_positions])
        _, first = np.unique(ordered, return_index=True)
        return ordered[np.sort(first)]


class ExampleRecorder:
    """A run's example records across its evaluations.

    Args:
      budget: kept examples per epoch and split (`core.examples.per_cell_limit`).
      listed_label_issues: label issues listed per epoch and split.
      preview_limit, preview_bytes: the run's caps on previews (module docstring).
    """

    def __init__(
        self,
        budget=examples_lib.DEFAULT_EPOCH_BUDGET,
        listed_label_issues=LISTED_LABEL_ISSUES,
        preview_limit=PREVIEW_LIMIT,
        preview_bytes=PREVIEW_BYTES,
    ):
        self.budget, self.listed_label_issues = budget, listed_label_issues
        self.preview_limit, self.preview_bytes = preview_limit, preview_bytes
        self._ids = {}  # split -> the ids its latest table holds (None: positions)
        self._previewed = {}  # split -> ids with a stored preview
        self.previews_stored, self.preview_bytes_stored = 0, 0

    def records(self, split, epoch, ids=None, preview_values=None):
        """The records of one evaluation: its examples, its label issues (single-label), the
        split's id table when it changed, and the previews of its newly kept examples. The
        recorder's state moves on once they are all made.

        Args:
          split: the split's name.
          epoch: the evaluation's `EpochExamples`.
          ids: one id per row (an int64 or str array, `inputs.check_example_ids`), or None for
            the positions.
          preview_values: one preview per row (strings, or images: anything indexable by
            position), or None.

        Raises:
          ValueError: ids whose table would be larger than the format stores.
        """
        if (
            ids is not None
            and ids.dtype.kind in "iu"
            and np.array_equal(ids, np.arange(epoch.num_rows))
        ):
            ids = None  # the positions themselves: no table
        examples_payload, issues_payload = epoch.finish(self.budget, self.listed_label_issues)
        written = [records.example_record(schema.KIND_EXAMPLES, examples_payload, split)]
        if issues_payload is not None:
            written.append(records.example_record(schema.KIND_LABEL_ISSUES, issues_payload, split))
        written.append(
            records.example_record(schema.KIND_CROSSINGS, epoch.crossings_payload(), split)
        )
        table = self._changed_table(split, ids, epoch.num_rows)
        if table is not None:
            written.append(records.example_record(schema.KIND_EXAMPLE_IDS, table, split))
        new_previews = None
        if preview_values is not None:
            new_previews = self._new_previews(
                split, ids, preview_values, epoch.preview_order(self.budget)
            )
            if new_previews[0]:
                payload = previews.encode_previews(*new_previews)
                written.append(records.example_record(schema.KIND_PREVIEWS, payload, split))
        # Everything is made: the state moves on.
        self._ids[split] = ids
        if new_previews:
            self._previewed.setdefault(split, set()).update(new_previews[0])
            self.previews_stored += len(new_previews[0])
            self.preview_bytes_stored += sum(len(data) for _, data in new_previews[1])
        return written

    def _changed_table(self, split, ids, num_rows):
        """The id table's payload when it differs from the split's latest one, else None."""
        last = self._ids.get(split)
        if ids is None:
            changed = last is not None
        else:
            changed = (
                last is None or last.dtype.kind != ids.dtype.kind or not np.array_equal(last, ids)
            )
        if not changed:
            return None
        return example_ids.encode_example_ids(ids, num_rows)

    def _new_previews(self, split, ids, preview_values, order):
        """``(ids, previews)`` of the examples in ``order`` without a stored preview, as many
        as the caps allow.
        """
        done = self._previewed.get(split, set())
        count, size = self.previews_stored, self.preview_bytes_stored
        chosen, stored = [], []
        keys = order.tolist() if ids is None else ids[order].tolist()
        for key, position in zip(keys, order.tolist()):
            if count >= self.preview_limit:
                break
            if key in done:
                continue
            preview = thumbnails.stored_preview(preview_values[position])
            if size + len(preview[1]) > self.preview_bytes:
                break
            chosen.append(key)
            stored.append(preview)
            count, size = count + 1, size + len(preview[1])
        return chosen, stored

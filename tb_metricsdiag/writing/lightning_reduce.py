"""The Lightning callback's counts mode: each process counts its own validation rows and the
fixed-size counts are summed across processes, so no process ever holds the others' rows.

`LocalCounts` counts one process's rows of one epoch, chunk by chunk, leaving out the row
``DistributedSampler`` repeated (`is_padding`); `reduce_counts` sums the processes' counts
(a collective: every process calls it at the end of the epoch) into what global rank 0 writes:

- the confusion counts, threshold counts, calibration bins and non-finite rows: all-reduced
  (summed) tensors of fixed size (``C x C``, ``C x T``, 3 x 15);
- the example records, when every process's rows are named by their dataset index (a
  ``DistributedSampler``, or one process): the per-cell top examples of each process (at most
  ``k`` per cell: `core.examples.CellExamples.without_rows`) merged on rank 0, and each
  example's correctness and confidence code summed into one byte-array per row (each process
  fills its own rows). Label issues need every row's probabilities, so they are not recorded.

Rank 0 then holds ``O(C x T + C x C x k)`` for the counts, plus two bytes per validation example
for the records (``example_ids=False`` leaves those out), whatever the rows and the processes.
The AP and ROC AUC come from the threshold counts (`counting.AP_THRESHOLD_GRID`, marked so in
the records), as in the Keras metric mode.
"""

import dataclasses

import numpy as np
import torch

from tb_metricsdiag.core import events
from tb_metricsdiag.writing import callback_writing, example_recorder, inputs, lightning_distributed
from tb_metricsdiag.writing.callback_writing import REDUCE_COUNTS, WHO
from tb_metricsdiag.writing.lightning_batches import NAMES, SPLIT

BUFFER_VALUES = 1 << 20
"""Counts mode: a process counts its kept batches once they hold this many values (4 MB of
float32; as the Transformers callback's `batch_eval_metrics` buffer), so that its memory stays
bounded (the chunk and its conversions) and the device is waited for once per chunk."""


def is_padding(share, local_rows):
    """Which of a process's rows ``local_rows`` (their indices in its share) are the examples
    its ``DistributedSampler`` repeated: row ``j`` of rank ``r`` is position ``r + j W`` of the
    padded index list, whose positions from the dataset's size on are repeats
    (`lightning_distributed.sampler_padding`).
    """
    if share.get("num_replicas") is None or share["drop_last"]:
        return np.zeros(local_rows.size, dtype=bool)
    padded = share["sampler_rank"] + local_rows * share["num_replicas"]
    return padded >= share["dataset_size"]


class LocalCounts:
    """One process's counts of one validation epoch, chunk by chunk.

    Args:
      layout: the stage's `inputs.Layout` (``from_logits`` decided).
      thresholds: the threshold grid.
      share: this process's `lightning_distributed.sampler_share` (``rows`` is not read).
      positions: the dataset index of each of this process's rows (``[num_samples]``), or
        None when the rows are not named (no example records).
      num_rows: the validation set's examples, when ``positions`` is given.
    """

    def __init__(self, layout, thresholds, share, positions=None, num_rows=None):
        self.layout = layout
        self.counts = layout.new_counts(thresholds, keep_scores=False)
        self.share = share
        self.positions = positions
        self.examples = None
        if positions is not None:
            self.examples = example_recorder.EpochExamples(
                layout, num_rows, label_issues=False, thresholds=thresholds
            )
        self.rows = 0  # rows seen, padding included
        self.padding = 0

    def update(self, labels, outputs):
        """Count a chunk of this process's rows (raw labels and outputs, NumPy, in order).

        Raises:
          ValueError: rows that do not fit the layout (`inputs.Layout.converted`); nothing is
            counted then.
        """
        local = np.arange(self.rows, self.rows + len(outputs))
        kept = ~is_padding(self.share, local)
        if not kept.all():
            labels, outputs, local = labels[kept], outputs[kept], local[kept]
        converted = self.layout.count(self.counts, labels, outputs)
        self.rows += kept.size
        self.padding += int(kept.size - kept.sum())
        if self.examples is not None:
            if local.size and local[-1] >= self.positions.size:
                raise ValueError(
                    "more validation rows (%d) than the sampler handed out (%d)"
                    % (local[-1] + 1, self.positions.size)
                )
            self.examples.update(self.positions[local], *converted)


def _summed(array, device):
    """``array`` summed over every process (a fixed-size all-reduce), as NumPy."""
    tensor = torch.as_tensor(np.ascontiguousarray(array)).to(device)
    torch.distributed.all_reduce(tensor)
    return tensor.cpu().numpy()


def reduce_counts(local, device, with_examples):
    """Sum the processes' `LocalCounts` (a collective): ``(counts, examples)`` of the whole
    epoch on every process (`counting.ClassificationCounts` / `MultiLabelCounts` without kept
    scores, and an `example_recorder.EpochExamples` or None) ; only global rank 0 merges the
    examples.

    Args:
      local: this process's `LocalCounts`.
      device: the device this process group's collectives take.
      with_examples: whether every process named its rows (decided together by the caller).
    """
    counts = local.counts
    total = local.layout.new_counts(counts.thresholds, keep_scores=False)
    calibration = tuple(_summed(part, device) for part in counts.calibration)
    tp, fp = _summed(counts.tp, device), _summed(counts.fp, device)
    invalid = int(_summed(np.array([counts.invalid], np.int64), device)[0])
    if local.layout.multi_label:
        matrices = _summed(counts.matrices, device)
        exact = int(_summed(np.array([counts.exact_matches], np.int64), device)[0])
        total.add(matrices, tp, fp, exact, invalid, calibration)
    else:
        total.add(_summed(counts.confusion, device), tp, fp, invalid, calibration)
    if not with_examples:
        return total, None
    examples = local.examples
    right, confidence = examples.per_row()
    right[:] = _summed(right.astype(np.uint8), device) > 0
    confidence[:] = _summed(confidence, device)
    rank_zero = torch.distributed.get_rank() == 0
    cells = [None] * torch.distributed.get_world_size() if rank_zero else None
    torch.distributed.gather_object(examples.shareable_cells(), cells, dst=0)
    if not rank_zero:
        return total, None
    for rank, other in enumerate(cells):
        if rank != 0:
            examples.merge_cells(other)
    return total, examples


def too_large_to_gather(kept_scores):
    """``reduce="auto"``: whether an epoch's scores (``kept_scores``: this process's
    tensors), all processes together, exceed `callback_writing.GATHER_LIMIT_VALUES`; a
    collective.
    """
    mine = sum(scores.numel() for scores in kept_scores)
    values = [None] * lightning_distributed.world_size()
    torch.distributed.all_gather_object(values, mine)
    return sum(values) > callback_writing.GATHER_LIMIT_VALUES


def new_local_counts(trainer, layout, thresholds, labels, scores, *, from_logits, named):
    """An epoch's `LocalCounts` for this process, from its first chunk of rows (NumPy): the
    layout's ``from_logits`` decided by that chunk unless known; its rows named by their
    dataset index when ``named`` and the dataloader tells them.
    """
    if layout.from_logits is None:
        layout = inputs.check_evaluation(
            labels, scores, WHO, layout=layout, from_logits=from_logits, names=NAMES
        ).layout
    loader = lightning_distributed.first_dataloader(trainer)
    share = lightning_distributed.sampler_share(loader, 0)
    positions = num_rows = None
    if named:
        positions, num_rows = lightning_distributed.dataset_indices(loader)
    return LocalCounts(layout, thresholds, share, positions, num_rows)


def reduced(local, layout, thresholds, named, problems):
    """The epoch's counts summed over the processes: ``(counts, cells, distributed, layout)``
    (``cells``: the merged `example_recorder.EpochExamples`, or None; ``distributed``: the run
    description's part; ``layout``: the one the counts were made with). A collective under
    DDP: every process calls it, ``local`` None where it had no rows. A problem (examples
    not named, processes that took the outputs differently) is appended to ``problems``.

    Args:
      local: this process's `LocalCounts`, or None.
      layout: the stage's `inputs.Layout`.
      thresholds: the PR thresholds.
      named: whether the example records were asked for (``example_ids`` not False).
      problems: the epoch's events, added to.
    """
    world = lightning_distributed.world_size()
    mine = {
        "from_logits": None if local is None else local.layout.from_logits,
        "named": local is not None and local.examples is not None,
        "rows": 0 if local is None else local.rows,
        "padding": 0 if local is None else local.padding,
    }
    if world == 1:
        everyone = [mine]
    else:
        everyone = [None] * world
        torch.distributed.all_gather_object(everyone, mine)
    decided = {each["from_logits"] for each in everyone} - {None}
    distributed = {
        "world_size": world,
        "reduce": REDUCE_COUNTS,
        "rows": [each["rows"] for each in everyone],
        "padding_removed": sum(each["padding"] for each in everyone),
    }
    if not decided:
        return None, None, distributed, layout  # no process had a row
    if local is None:  # a process without rows still takes part in the sums
        layout = dataclasses.replace(layout, from_logits=min(decided))
        local = LocalCounts(layout, thresholds, {"num_replicas": None})
    if world == 1:
        counts, cells = local.counts, local.examples
    else:
        # Every process must name its rows (a process without rows names none).
        with_examples = all(each["named"] for each in everyone)
        counts, cells = reduce_counts(
            local, lightning_distributed.collective_device(), with_examples
        )
    if cells is None and named:
        problems.append(
            events.bad_batch(
                SPLIT,
                "the example records were left out: counted by each process, the examples"
                " are named by their dataset index, which only a DistributedSampler (or one"
                " process over a sized dataset) tells",
            )
        )
    if len(decided) > 1:
        problems.append(
            events.bad_batch(
                SPLIT,
                "the processes took the validation outputs differently (logits on some,"
                " probabilities on others): pass from_logits=True or False; the epoch's"
                " counts were left out",
            )
        )
        return None, None, distributed, local.layout
    return counts, cells, distributed, local.layout

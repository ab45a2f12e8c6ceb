"""The Lightning callback's rows of every process: gathered to every process, with the examples
``DistributedSampler`` repeated to even out the processes' shares removed, and put back in the
dataset's order when every sampler says which dataset index each row is (`sampler_indices`).

`gather` is called by every process at the end of a validation epoch (a collective: all must
take part); `sampler_padding` decides which rows are padding from what each process's sampler
says (`sampler_share`). The rows' `RowExamples` (ids, previews, groups) travel with them.
"""

import collections.abc
import itertools

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler


class RowExamples(collections.namedtuple("RowExamples", "ids previews groups")):
    """What names and shows a batch's (an epoch's) rows: ids (None: positions), previews and
    groups (``{key: values}``), each None when not given; NumPy, as `inputs` checks them.
    """

    @staticmethod
    def concatenated(parts):
        """One `RowExamples` of the rows of ``parts`` in order (each part given alike)."""
        first = parts[0]
        ids = None if first.ids is None else np.concatenate([p.ids for p in parts])
        previews = None if first.previews is None else np.concatenate([p.previews for p in parts])
        groups = None
        if first.groups is not None:
            groups = {key: np.concatenate([p.groups[key] for p in parts]) for key in first.groups}
        return RowExamples(ids, previews, groups)

    def given(self):
        """Which of ids, previews and groups (by key) are given: equal for every batch."""
        return (
            self.ids is not None,
            self.previews is not None,
            None if self.groups is None else tuple(self.groups),
        )

    def taken(self, index):
        """The rows at ``index`` (an array of positions, or a slice)."""
        return RowExamples(
            None if self.ids is None else self.ids[index],
            None if self.previews is None else self.previews[index],
            None if self.groups is None else {k: v[index] for k, v in self.groups.items()},
        )


# -- DistributedSampler's padding ---------------------------------------------------------------


def sampler_padding(shares):
    """Rows to drop from each process's rows: ``(drop, problem)``.

    ``DistributedSampler`` (without ``drop_last``) pads its index list to
    ``total_size = ceil(N / W) * W`` by appending its first ``total_size - N`` indices again,
    and hands process ``r`` the positions ``r, r + W, r + 2W, ...``. The padded positions are
    the last ``total_size - N`` of the list, all in its last row, so each process ``r >=
    W - (total_size - N)`` gets one duplicate: its last example, which it sees only when it
    ran over its whole share.

    Args:
      shares: one dict per process, in rank order: ``rows`` (rows it collected), and, when its
        sampler is a ``DistributedSampler``, ``sampler_rank``, ``num_replicas``,
        ``num_samples`` (its share), ``total_size``, ``dataset_size`` (N) and ``drop_last``.

    Returns:
      ``drop``: the number of trailing rows to drop from each process's rows (0 or 1), and
      ``problem``: None, or why the rows are kept as they are (not a ``DistributedSampler``,
      or figures that do not add up), for an event.
    """
    world = len(shares)
    keep_all = [0] * world
    if any(share.get("num_replicas") is None for share in shares):
        return keep_all, (
            "the validation sampler is not a DistributedSampler on every process, so the"
            " callback cannot tell which examples the %d processes share; their counts are"
            " summed as they are (if every process reads the whole validation set, each"
            " example counts %d times)" % (world, world)
        )
    first = shares[0]
    dataset_size, total_size = first["dataset_size"], first["total_size"]
    consistent = (
        all(share["num_replicas"] == world for share in shares)
        and [share["sampler_rank"] for share in shares] == list(range(world))
        and all(
            (share["dataset_size"], share["total_size"], share["drop_last"])
            == (dataset_size, total_size, first["drop_last"])
            for share in shares
        )
        and sum(share["num_samples"] for share in shares) == total_size
        and all(share["rows"] <= share["num_samples"] for share in shares)
    )
    if not consistent:
        return keep_all, (
            "the validation samplers' figures do not add up (%s); the processes' counts are"
            " summed as they are and may count some examples twice"
            % "; ".join(
                "rank %d: %d rows of a share of %s"
                % (rank, share["rows"], share.get("num_samples"))
                for rank, share in enumerate(shares)
            )
        )
    padding = 0 if first["drop_last"] else total_size - dataset_size
    if not 0 <= padding < world:
        return keep_all, (
            "the validation sampler pads %d examples to %d, more than one per process; the"
            " processes' counts are summed as they are" % (dataset_size, total_size)
        )
    drop = [
        int(rank >= world - padding and share["rows"] == share["num_samples"])
        for rank, share in enumerate(shares)
    ]
    return drop, None


def sampler_share(dataloader, rows):
    """What `sampler_padding` needs to know of this process's validation sampler."""
    share = {"rows": int(rows)}
    sampler = _distributed_sampler(dataloader)
    if sampler is not None:
        try:
            share.update(
                sampler_rank=int(sampler.rank),
                num_replicas=int(sampler.num_replicas),
                num_samples=len(sampler),
                total_size=int(sampler.total_size),
                dataset_size=len(sampler.dataset),
                drop_last=bool(sampler.drop_last),
            )
        except (AttributeError, TypeError):  # a subclass without these: not checkable
            share = {"rows": int(rows)}
    return share


def _distributed_sampler(dataloader):
    """The ``DistributedSampler`` of a dataloader (or of its batch sampler), else None."""
    sampler = getattr(dataloader, "sampler", None)
    if not isinstance(sampler, DistributedSampler):
        sampler = getattr(getattr(dataloader, "batch_sampler", None), "sampler", None)
    return sampler if isinstance(sampler, DistributedSampler) else None


def dataset_indices(dataloader):
    """``(positions, num_rows)``: the dataset index of each row this process's validation
    dataloader yields, and the dataset's size; ``(None, None)`` when they cannot be told.

    With a ``DistributedSampler``, the indices it hands out (its share, padding included):
    unshuffled, rank ``r``'s row ``j`` is position ``r + j W`` of the index list ``0..N-1``
    padded with its first entries, so index ``(r + j W) mod N`` (computed, not listed: the
    sampler's own iteration makes a Python int per example); shuffled, as it iterates. In one
    process, the rows' order in a sized dataset (``0..n-1``).
    """
    sampler = _distributed_sampler(dataloader)
    try:
        size = len(dataloader.dataset)
    except (AttributeError, TypeError):
        return None, None
    if sampler is not None and not sampler.shuffle and size:
        share = np.arange(len(sampler), dtype=np.int64) * int(sampler.num_replicas)
        return (share + int(sampler.rank)) % size, size
    if sampler is not None:
        return np.fromiter(iter(sampler), dtype=np.int64), size
    if world_size() == 1:
        return np.arange(size, dtype=np.int64), size
    return None, None


def first_dataloader(trainer):
    loaders = trainer.val_dataloaders
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    if isinstance(loaders, collections.abc.Mapping):
        return next(iter(loaders.values()), None)
    return loaders


# -- gathering across processes ---------------------------------------------------------------


def gather(trainer, labels, scores, digests=None, examples=None, with_indices=True):
    """Every process's rows on every process, the sampler's padding removed: ``(labels,
    scores, examples, distributed, problem, digests)`` with NumPy arrays (None when no process
    has a row), their `RowExamples` (None when not given), a description for the run info,
    None or why the padding could not be checked, and the validation inputs' digests of every
    process (the duplicate check's; None unless every process gave one per row).

    When every process's sampler is a ``DistributedSampler`` whose figures add up, the rows
    (with their examples and digests) come back in the dataset's order: each process's rows
    are the dataset indices its sampler handed out (`sampler_indices`; ``with_indices``), so
    a row's position is its index in the dataset, as in one process.
    """
    world = torch.distributed.get_world_size()
    loader = first_dataloader(trainer)
    share = sampler_share(loader, 0 if scores is None else len(scores))
    share["layout"] = None if scores is None else _layout(labels, scores)
    share["digests"] = digests
    share["examples"] = None if examples is None else tuple(examples)
    share["indices"] = sampler_indices(loader, share["rows"]) if with_indices else None
    shares = [None] * world
    torch.distributed.all_gather_object(shares, share)
    layouts = {s["layout"] for s in shares if s["layout"] is not None}
    if not layouts:
        return None, None, None, {"world_size": world}, None, None
    if len(layouts) > 1:
        raise ValueError(
            "the processes' validation outputs differ in shape or dtype: %s"
            % [s["layout"] for s in shares]
        )
    (labels_layout, scores_layout), rows = layouts.pop(), [s["rows"] for s in shares]
    device = collective_device()
    parts_labels = _all_gather_rows(labels, rows, labels_layout, device)
    parts_scores = _all_gather_rows(scores, rows, scores_layout, device)
    drop, problem = sampler_padding(shares)
    kept = [slice(0, n - d) for n, d in zip(rows, drop)]
    labels = np.concatenate([part[k] for part, k in zip(parts_labels, kept)])
    scores = np.concatenate([part[k] for part, k in zip(parts_scores, kept)])
    distributed = {"world_size": world, "rows": rows, "padding_removed": int(sum(drop))}
    if all(s["examples"] is not None for s in shares if s["rows"]):
        examples = RowExamples.concatenated(
            [RowExamples(*s["examples"]).taken(k) for s, k in zip(shares, kept) if s["rows"]]
        )
    else:
        examples = None
    digests = None
    if all(s["digests"] is not None and len(s["digests"]) == s["rows"] for s in shares):
        digests = [d for s, k in zip(shares, kept) for d in s["digests"][k]]
    order = None
    if problem is None and all(s["indices"] is not None for s in shares):
        indices = np.concatenate(
            [np.asarray(s["indices"], np.int64)[k] for s, k in zip(shares, kept)]
        )
        order = np.argsort(indices, kind="stable")
        if not np.array_equal(indices[order], np.arange(indices.size)):
            order = None  # not every example once (a pass cut short): the processes' order
    if order is not None:
        labels, scores = labels[order], scores[order]
        examples = None if examples is None else examples.taken(order)
        digests = None if digests is None else [digests[i] for i in order]
        distributed["order"] = "dataset"
    return labels, scores, examples, distributed, problem, digests


def sampler_indices(dataloader, rows):
    """The dataset indices of this process's first ``rows`` validation rows, as its
    ``DistributedSampler`` hands them out (its iteration is fixed by its epoch and seed), or
    None for another sampler.
    """
    sampler = _distributed_sampler(dataloader)
    if sampler is None:
        return None
    indices = list(itertools.islice(iter(sampler), rows))
    return indices if len(indices) == rows else None


def _layout(*tensors):
    """``((shape past the batch, dtype name), ...)``: what must agree across processes."""
    return tuple((tuple(t.shape[1:]), str(t.dtype).rsplit(".", 1)[-1]) for t in tensors)


def collective_device():
    """The device collectives of this process group take: CUDA for NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_gather_rows(local, rows, layout, device):
    """Each process's ``local`` rows (``rows[r]`` of them) as NumPy arrays, in rank order:
    padded to the longest share for ``all_gather``, then cut back.
    """
    trailing, dtype = layout
    padded = torch.zeros((max(rows),) + trailing, dtype=getattr(torch, dtype), device=device)
    if local is not None and len(local):
        padded[: len(local)] = local.to(device)
    parts = [torch.empty_like(padded) for _ in rows]
    torch.distributed.all_gather(parts, padded)
    return [part[:n].cpu().numpy() for part, n in zip(parts, rows)]


def world_size():
    """Processes of the default process group (1 when none is initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1

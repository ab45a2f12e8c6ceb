"""The Lightning callback's rows of every process: gathered to every process in rank order, with
the examples ``DistributedSampler`` repeated to even out the processes' shares removed.

`gather` is called by every process at the end of a validation epoch (a collective: all must
take part); `sampler_padding` decides which rows are padding from what each process's sampler
says (`sampler_share`).
"""

import collections.abc

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

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
    sampler = getattr(dataloader, "sampler", None)
    if not isinstance(sampler, DistributedSampler):
        sampler = getattr(getattr(dataloader, "batch_sampler", None), "sampler", None)
    if isinstance(sampler, DistributedSampler):
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


def _first_dataloader(trainer):
    loaders = trainer.val_dataloaders
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    if isinstance(loaders, collections.abc.Mapping):
        return next(iter(loaders.values()), None)
    return loaders


# -- gathering across processes ---------------------------------------------------------------


def gather(trainer, labels, scores, digests=None):
    """Every process's rows on every process, the sampler's padding removed: ``(labels,
    scores, distributed, problem, digests)`` with NumPy arrays (None when no process has a
    row), a description for the run info, None or why the padding could not be checked, and
    the validation inputs' digests of every process (the duplicate check's; None unless every
    process gave one per row).
    """
    world = torch.distributed.get_world_size()
    share = sampler_share(_first_dataloader(trainer), 0 if scores is None else len(scores))
    share["layout"] = None if scores is None else _layout(labels, scores)
    share["digests"] = digests
    shares = [None] * world
    torch.distributed.all_gather_object(shares, share)
    layouts = {s["layout"] for s in shares if s["layout"] is not None}
    if not layouts:
        return None, None, {"world_size": world}, None, None
    if len(layouts) > 1:
        raise ValueError(
            "the processes' validation outputs differ in shape or dtype: %s"
            % [s["layout"] for s in shares]
        )
    (labels_layout, scores_layout), rows = layouts.pop(), [s["rows"] for s in shares]
    device = _collective_device()
    parts_labels = _all_gather_rows(labels, rows, labels_layout, device)
    parts_scores = _all_gather_rows(scores, rows, scores_layout, device)
    drop, problem = sampler_padding(shares)
    labels = np.concatenate([part[: len(part) - d] for part, d in zip(parts_labels, drop)])
    scores = np.concatenate([part[: len(part) - d] for part, d in zip(parts_scores, drop)])
    distributed = {"world_size": world, "rows": rows, "padding_removed": int(sum(drop))}
    digests = None
    if all(s["digests"] is not None and len(s["digests"]) == s["rows"] for s in shares):
        digests = [d for s, n in zip(shares, drop) for d in s["digests"][: s["rows"] - n]]
    return labels, scores, distributed, problem, digests


def _layout(*tensors):
    """``((shape past the batch, dtype name), ...)``: what must agree across processes."""
    return tuple((tuple(t.shape[1:]), str(t.dtype).rsplit(".", 1)[-1]) for t in tensors)


def _collective_device():
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

"""Rank 0's peak memory under Lightning DDP against the validation set's size: the rows gathered
(``reduce="rows"``) or each process's counts summed (``reduce="counts"``).

Two gloo processes on the CPU (``Trainer(accelerator="cpu", devices=2, strategy="ddp")``), a
linear model of 16 features to 100 classes, one training batch, then one validation epoch of N
rows (batch 20,000), each made from its index (nothing of the set is held in memory). Global rank 0 reports its peak resident memory (``ru_maxrss``) above its resident
memory once the model and the trainer were set up, before the fit: what the validation epoch,
the callback and the writing added. One fresh pair of processes per (mode, N); mode ``none`` is the same fit without the callback
(what Lightning and the sampler add by themselves: ``DistributedSampler`` lists its indices as
Python ints, about 36 bytes per row, while it iterates).

Run: ``python bench/lightning_reduce_memory.py [--rows 100000 500000 ...] [--modes counts rows none]``
(Lightning starts the second process by running this file again, with ``--worker``).
"""

import time
import warnings

import _reduce_memory
from _reduce_memory import BATCH, CLASSES, FEATURES, features_of, index_rows, report, rss_mib

warnings.filterwarnings("ignore")


def worker(rows, mode, out_dir):
    import lightning.pytorch as pl
    import torch

    from tb_metricsdiag.lightning import MetricsDiagCallback

    class Linear(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(FEATURES, CLASSES)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            return {"scores": self(x), "labels": y}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def loader(dataset, batch_size):
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=features_of)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[] if mode == "none" else [MetricsDiagCallback(out_dir, reduce=mode)],
    )
    module = Linear()
    before = rss_mib()
    started = time.perf_counter()
    trainer.fit(module, loader(index_rows(64), 64), loader(index_rows(rows), BATCH))
    if trainer.is_global_zero:
        report(mode, rows, before, started)


def main():
    _reduce_memory.main(
        __file__,
        worker,
        _reduce_memory.python_command,
        ("counts", "rows", "none"),
        ("counts", "rows"),
    )


if __name__ == "__main__":
    main()

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

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

FEATURES = 16
CLASSES = 100
BATCH = 20_000

warnings.filterwarnings("ignore")


def _rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(rows, mode, out_dir):
    import _common  # noqa: F401  (puts the checkout first on sys.path)
    import lightning.pytorch as pl
    import torch

    from tb_metricsdiag.lightning import MetricsDiagCallback

    class Rows(torch.utils.data.Dataset):
        """Row ``i`` is its index; `batch_of` makes its features and label from it."""

        def __len__(self):
            return rows

        def __getitem__(self, index):
            return index

    def batch_of(indices):
        index = torch.tensor(indices, dtype=torch.float32)[:, None]
        x = torch.sin(index * 0.37 + torch.arange(FEATURES) * 1.3)
        return x, torch.tensor(indices) % CLASSES

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
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=batch_of)

    class Train(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, index):
            return index

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
    before = _rss_mib()
    started = time.perf_counter()
    trainer.fit(module, loader(Train(), 64), loader(Rows(), BATCH))
    if trainer.is_global_zero:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            json.dumps(
                {
                    "mode": mode,
                    "rows": rows,
                    "peak_above_start_mib": round(peak - before, 1),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 500_000, 1_000_000, 2_000_000]
    )
    parser.add_argument("--modes", nargs="+", default=["counts", "rows"])
    parser.add_argument("--worker", nargs=3)
    args = parser.parse_args()
    if args.worker:
        rows, mode, out_dir = args.worker
        worker(int(rows), mode, out_dir)
        return
    from _common import describe_machine

    print(describe_machine())
    for mode in args.modes:
        for rows in args.rows:
            with tempfile.TemporaryDirectory() as out_dir:
                env = dict(os.environ, OMP_NUM_THREADS="1")
                done = subprocess.run(
                    [
                        sys.executable,
                        os.path.abspath(__file__),
                        "--worker",
                        str(rows),
                        mode,
                        out_dir,
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                print("%s %d: failed (%d)\n%s" % (mode, rows, done.returncode, done.stderr[-2000:]))
                continue
            print(lines[-1], flush=True)


if __name__ == "__main__":
    main()

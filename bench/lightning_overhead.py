"""Lightning callback overhead: wall time per epoch of the same module with and without
`tb_metricsdiag.lightning.MetricsDiagCallback`.

The setting of the Keras overhead bench (bench/overhead.py): a 10-class MLP on 50,000 examples
of 64 features, 10,000 validation examples, batch 256, a ``TensorBoardLogger`` in both
variants. The callback runs at its defaults: one extra ``forward(x)`` per validation batch, the
exact AP. Each variant trains a fresh module from the same seed; the variants alternate,
``--repeats`` times in this one process, after a warm-up fit. An epoch's time is from
``on_train_epoch_start`` to ``on_train_epoch_end`` (its validation included), over the epochs
after the first; the figure is the median over the runs of each run's median epoch.

Run: ``python bench/lightning_overhead.py`` (``--quick``: smaller data, 2 repeats).
"""

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np
from _common import describe_machine

TRAIN_EXAMPLES = 50_000
VALIDATION_EXAMPLES = 10_000
FEATURES = 64
CLASSES = 10
HIDDEN_UNITS = 256
BATCH_SIZE = 256

warnings.filterwarnings("ignore")


def _module(pl, torch):
    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(FEATURES, HIDDEN_UNITS),
                torch.nn.ReLU(),
                torch.nn.Linear(HIDDEN_UNITS, CLASSES),
            )

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
            self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    return MLP()


def _loaders(torch, train_examples, validation_examples):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(FEATURES, CLASSES))

    def split(n):
        x = rng.normal(size=(n, FEATURES)).astype("float32")
        y = (x @ weights + rng.normal(size=(n, CLASSES))).argmax(1)
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        return dataset

    train, validation = split(train_examples), split(validation_examples)
    return (
        lambda: torch.utils.data.DataLoader(train, batch_size=BATCH_SIZE, shuffle=True),
        lambda: torch.utils.data.DataLoader(validation, batch_size=BATCH_SIZE),
    )


def _fit(pl, torch, loaders, epochs, with_callback):
    """Seconds of each training epoch (validation included)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from tb_metricsdiag.lightning import MetricsDiagCallback

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.seconds = []

        def on_train_epoch_start(self, trainer, pl_module):
            self._start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.seconds.append(time.perf_counter() - self._start)

    timer = EpochTimer()
    callbacks = [MetricsDiagCallback(), timer] if with_callback else [timer]
    pl.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as root:
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=epochs,
            logger=TensorBoardLogger(root, name="run"),
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(_module(pl, torch), loaders[0](), loaders[1]())
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import logging

    import lightning.pytorch as pl
    import torch

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    train, validation = TRAIN_EXAMPLES, VALIDATION_EXAMPLES
    if args.quick:
        train, validation, args.repeats, args.epochs = train // 5, validation // 5, 2, 3
    loaders = _loaders(torch, train, validation)
    print(describe_machine())
    print(
        "MLP %d-%d-%d, %d train / %d validation examples, batch %d, %d epochs, %d repeats, torch"
        " %s, %d threads"
        % (
            FEATURES,
            HIDDEN_UNITS,
            CLASSES,
            train,
            validation,
            BATCH_SIZE,
            args.epochs,
            args.repeats,
            torch.__version__,
            torch.get_num_threads(),
        )
    )
    _fit(pl, torch, loaders, 2, with_callback=True)  # warm-up
    epochs = {False: [], True: []}
    for repeat in range(args.repeats):
        for with_callback in (False, True) if repeat % 2 == 0 else (True, False):
            seconds = _fit(pl, torch, loaders, args.epochs, with_callback)
            epochs[with_callback].append(statistics.median(seconds[1:]))
    baseline = statistics.median(epochs[False])
    recorded = statistics.median(epochs[True])
    print("without the callback: %.3f s per epoch (runs: %s)" % (baseline, _list(epochs[False])))
    print("with the callback:    %.3f s per epoch (runs: %s)" % (recorded, _list(epochs[True])))
    print("overhead: %+.1f%% of an epoch" % (100.0 * (recorded / baseline - 1.0)))


def _list(values):
    return ", ".join("%.3f" % v for v in values)


if __name__ == "__main__":
    main()

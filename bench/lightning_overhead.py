"""Lightning callback overhead: the share of ``trainer.fit`` that
`tb_metricsdiag.lightning.MetricsDiagCallback` takes, measured as bench/overhead.py measures the
Keras callback.

The setting of the Keras overhead bench: a 10-class MLP on 50,000 examples of 64 features,
10,000 validation examples (validated every epoch), batch 256, a ``TensorBoardLogger`` in both
variants, ``--epochs`` epochs (default 4). The callback runs at its defaults: the scores
of the module's own call in ``validation_step`` (no extra forward pass), the exact AP, example
records; and ``validation_step`` returns ``{"groups": {"slice": ...}}``, one key of 20 values
(the slices), in both variants.
Each variant trains a fresh module from the same seed; the variants alternate, ``--repeats``
times in this one process, after a warm-up fit. Figures, each the median over the repeats:

- the hooks' own time: wall time inside every hook of the callback (``setup``, each
  ``on_validation_batch_end``, ``on_train_epoch_end`` with the counting and the writes, ...,
  and the forward hooks it puts on the module during validation) over the fit, as a share of
  that fit's wall time;
- the same in CPU time of the process (``time.process_time``), the least sensitive to other
  loads on a shared machine;
- the paired wall and CPU time of the fit with the callback against the fit without it in
  the same repeat (noisier than the cost it measures on a shared machine).

PyTorch runs ``--threads`` threads (default 1: on a shared machine idle OpenMP threads spin
against the load).

Run: ``python bench/lightning_overhead.py`` (``--quick``: a fifth of the data, 2 repeats).
"""

import argparse
import tempfile
import warnings

import _common
import numpy as np
from _common import HookClock, describe_machine, load_average, print_shares, wall_and_cpu

TRAIN_EXAMPLES = 50_000
VALIDATION_EXAMPLES = 10_000
FEATURES = 64
CLASSES = 10
HIDDEN_UNITS = 256
BATCH_SIZE = 256
SLICE_VALUES = 20

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
            # One slice key: a value of each row drawn from its inputs (fixed per row).
            return {"groups": {"slice": (x[:, 0].abs() * 1e4).long() % SLICE_VALUES}}

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
    """``([wall, CPU] seconds of the fit, [wall, CPU] seconds inside the callback's hooks or
    None)``."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from tb_metricsdiag.lightning import MetricsDiagCallback

    clock = HookClock()
    callbacks = []
    if with_callback:
        callback = clock.wrap_hooks(MetricsDiagCallback(), pl.Callback, names=("setup", "teardown"))
        # The hooks that note the module's own calls run inside validation_step: theirs too.
        noted = callback._module_output
        noted.started, noted.ended = clock.timed(noted.started), clock.timed(noted.ended)
        callbacks.append(callback)
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
        module, train, validation = _module(pl, torch), loaders[0](), loaders[1]()
        start = wall_and_cpu()
        trainer.fit(module, train, validation)
        seconds = wall_and_cpu() - start
    return seconds, clock.seconds() if with_callback else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (several spin on a shared machine)"
    )
    args = parser.parse_args()
    import logging

    # TensorFlow and the CUDA build of PyTorch crash in one process; the logger imports
    # TensorFlow where it finds it.
    _common.hide_packages(("tensorflow",))
    import lightning.pytorch as pl
    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("tb_metricsdiag").setLevel(logging.ERROR)
    train, validation = TRAIN_EXAMPLES, VALIDATION_EXAMPLES
    if args.quick:
        train, validation, args.repeats = train // 5, validation // 5, 2
    loaders = _loaders(torch, train, validation)
    print(describe_machine())
    print(
        "MLP %d-%d-%d, %d train / %d validation examples, batch %d, %d epochs, %d repeats, torch"
        " %s, %d threads, lightning %s; one slice key of %d values; %s"
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
            pl.__version__,
            SLICE_VALUES,
            load_average(),
        ),
        flush=True,
    )
    _fit(pl, torch, loaders, 2, with_callback=True)  # warm-up
    fits = {False: [], True: []}
    own = []
    for repeat in range(args.repeats):
        for with_callback in (False, True) if repeat % 2 == 0 else (True, False):
            seconds, hooks = _fit(pl, torch, loaders, args.epochs, with_callback)
            fits[with_callback].append(seconds)
            if hooks is not None:
                own.append(hooks / seconds)
    plain, recorded, own = np.array(fits[False]), np.array(fits[True]), np.array(own)
    paired = recorded / plain - 1
    print("after: %s" % load_average())
    print(
        "fit without the callback: %.2f s wall (runs: %s), %.2f s CPU"
        % (np.median(plain[:, 0]), _list(plain[:, 0]), np.median(plain[:, 1]))
    )
    print(
        "fit with the callback:    %.2f s wall (runs: %s), %.2f s CPU"
        % (np.median(recorded[:, 0]), _list(recorded[:, 0]), np.median(recorded[:, 1]))
    )
    print_shares("fit", own, paired, indent="")


def _list(values, digits=3):
    return ", ".join("%.*f" % (digits, v) for v in values)


if __name__ == "__main__":
    main()

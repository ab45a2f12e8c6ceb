"""Tiny PyTorch Lightning classifiers trained with `MetricsDiagCallback`, for test_lightning.py.

Run as a script, it trains one with ``Trainer(accelerator="cpu", devices=N, strategy="ddp")``
(Lightning starts the other processes by running this file again) and prints, from global rank
0, one JSON line: the run's directory, the final module's outputs on the validation set and its
labels, and which frameworks the process imported. ``indexed`` gives the validation batches
their rows' indices, so that ``validation_step`` returns ids, previews and groups; REDUCE is
the callback's ``reduce`` (``auto:LIMIT`` sets `callback_writing.GATHER_LIMIT_VALUES`)::

    python tests/lightning_runs.py OUT_DIR DEVICES LEARNING_RATE [indexed] [REDUCE]
"""

import json
import sys
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from process_group import leave_process_group
from torch import nn
from torch.nn import functional

from tb_metricsdiag.lightning import MetricsDiagCallback

VAL_SIZE = 101  # odd: DistributedSampler pads it for 2 processes
BATCH_SIZE = 16
FEATURES = 4

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


def data(n, seed, classes):
    """``(x, y)``: ``n`` examples of ``classes`` classes that a small MLP learns in a few epochs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    signal = x[:, 0] + 0.5 * x[:, 1] + 0.5 * rng.normal(size=n)
    edges = [0.0] if classes == 2 else np.linspace(-1, 1, classes - 1)
    return x, np.digitize(signal, edges).astype("int64")


class Classifier(pl.LightningModule):
    """An MLP: logits ``[batch, C]``, or ``[batch]`` (one logit) for two classes. It counts
    its ``validation_step`` calls and its forward calls in eval mode (validation's and any the
    callback makes), so that tests see whether the callback ran an extra forward pass.
    """

    def __init__(self, classes=3, lr=0.05, hidden=16, sync_dist=False):
        super().__init__()
        self.save_hyperparameters()
        self.validation_steps = 0
        self.eval_forward_calls = 0
        self.net = nn.Sequential(
            nn.Linear(FEATURES, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1 if classes == 2 else classes),
        )

    def forward(self, x):
        self.eval_forward_calls += not self.training
        out = self.net(x)
        return out[:, 0] if self.hparams.classes == 2 else out

    def _loss(self, out, y):
        if self.hparams.classes == 2:
            return functional.binary_cross_entropy_with_logits(out, y.float())
        return functional.cross_entropy(out, y)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self._loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=self.hparams.sync_dist)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, *index = batch  # (x, y, index) batches: the rows' ids, previews and groups too
        self.validation_steps += 1
        out = self(x)
        predicted = (out > 0).long() if self.hparams.classes == 2 else out.argmax(1)
        sync = self.hparams.sync_dist
        self.log("val_loss", self._loss(out, y), sync_dist=sync)
        self.log("val_acc", (predicted == y).float().mean(), sync_dist=sync)
        if index:
            return {"scores": out, "labels": y, **row_examples(index[0])}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def row_examples(index):
    """What `Classifier.validation_step` returns for the dataset rows ``index``: string ids,
    text previews and two groups, each a function of the row's index."""
    index = index.tolist()
    return {
        "ids": ["ex-%04d" % (7919 * i % 10007) for i in index],
        "previews": ["the text of row %d" % i for i in index],
        "groups": {"parity": [i % 2 for i in index], "third": ["t%d" % (i % 3) for i in index]},
    }


def loader(x, y, shuffle=False, batch_size=BATCH_SIZE, indexed=False):
    """A DataLoader of ``(x, y)`` batches, or ``(x, y, index)`` with ``indexed``."""
    tensors = [torch.from_numpy(x), torch.from_numpy(y)]
    if indexed:
        tensors.append(torch.arange(len(x)))
    dataset = torch.utils.data.TensorDataset(*tensors)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def fit(
    root,
    module,
    train,
    validation,
    epochs,
    devices=1,
    strategy="auto",
    callback=None,
    extra_callbacks=(),
    logger=True,
    indexed=False,
):
    """Train ``module`` on ``(x, y)`` pairs; returns the trainer. The TensorBoardLogger writes to
    ``root/run/version_0``, where the callback writes by default.
    """
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_epochs=epochs,
        logger=TensorBoardLogger(root, name="run", version=0) if logger else False,
        default_root_dir=root,
        callbacks=[callback or MetricsDiagCallback(), *extra_callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, loader(*train, shuffle=True), loader(*validation, indexed=indexed))
    if devices > 1:
        leave_process_group()
    return trainer


def outputs(module, x):
    """The module's outputs on ``x``, in the validation loader's batches, as NumPy."""
    module.eval()
    with torch.no_grad():
        batches = [module(xb) for xb, _ in loader(x, np.zeros(len(x), "int64"))]
    return torch.cat(batches).numpy()


def main(out_dir, devices, lr, indexed=False, reduce=None):
    torch.manual_seed(0)
    module = Classifier(classes=3, lr=lr, sync_dist=True)
    train, validation = data(64, 1, 3), data(VAL_SIZE, 2, 3)
    if reduce and reduce.startswith("auto:"):  # "auto:LIMIT": reduce above LIMIT values
        from tb_metricsdiag.writing import callback_writing

        reduce, limit = reduce.split(":")
        callback_writing.GATHER_LIMIT_VALUES = int(limit)
    callback = MetricsDiagCallback(**({"reduce": reduce} if reduce else {}))
    trainer = fit(
        out_dir,
        module,
        train,
        validation,
        epochs=2,
        devices=devices,
        strategy="ddp",
        callback=callback,
        indexed=indexed,
    )
    if trainer.is_global_zero:
        frameworks = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras"})
        result = {
            "log_dir": trainer.logger.log_dir,
            "world_size": trainer.world_size,
            "validation_steps": module.validation_steps,
            "eval_forward_calls": module.eval_forward_calls,
            "outputs": outputs(module, validation[0]).tolist(),
            "labels": validation[1].tolist(),
            "frameworks": frameworks,
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        indexed=sys.argv[4:5] == ["indexed"],  # or "plain"
        reduce=sys.argv[5] if len(sys.argv) > 5 else None,
    )

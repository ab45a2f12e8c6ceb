"""Data and a recorder for the Lightning duplicate-check tests (test_lightning_overlap.py and
its DDP script, lightning_overlap_ddp.py): NumPy, Lightning and `lightning_runs` only, so that
the DDP processes start quickly.
"""

import lightning.pytorch as pl
import lightning_runs as runs
import numpy as np

COPIED = 20  # validation rows copied byte for byte from the training rows


def overlap_data():
    """``(train, validation)`` pairs: 64 training rows; 101 validation rows of which the first
    `COPIED` are training rows and one more is a training row off by one float32 step (not a
    byte-for-byte duplicate).
    """
    x, y = runs.data(64, 1, 3)
    x_val, y_val = runs.data(runs.VAL_SIZE, 2, 3)
    x_val[:COPIED], y_val[:COPIED] = x[:COPIED], y[:COPIED]
    x_val[COPIED] = np.nextafter(x[COPIED], np.float32(np.inf))
    return (x, y), (x_val, y_val)


def duplicates_of(train_x, val_x):
    """Validation rows equal, value for value, to some training row (NumPy broadcasting)."""
    return int((val_x[:, None, :] == train_x[None, :, :]).all(axis=2).any(axis=1).sum())


class FirstEpochInputs(pl.Callback):
    """The inputs of the first epoch's training batches, in the order they were trained on."""

    def __init__(self):
        self.batches = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.batches.append(batch[0].numpy().copy())

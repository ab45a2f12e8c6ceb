"""A two-process DDP fit with ``MetricsDiagCallback(train_sample=1000)`` on the data of
`overlap_runs`, for test_lightning_overlap.py's DDP test. Lightning starts the second process by running
this file again. Global rank 0 prints one JSON line: the run's directory and the inputs of the
training batches it trained on in the first epoch (the examples it hashed)::

    python tests/torch_process/lightning_overlap_ddp.py OUT_DIR
"""

import json
import sys

import lightning_runs as runs
import torch
from overlap_runs import FirstEpochInputs, overlap_data

from tb_metricsdiag.lightning import MetricsDiagCallback


def main(out_dir):
    train, validation = overlap_data()
    recorder = FirstEpochInputs()
    torch.manual_seed(0)
    trainer = runs.fit(
        out_dir,
        runs.Classifier(classes=3, sync_dist=True),
        train,
        validation,
        epochs=1,
        devices=2,
        strategy="ddp",
        callback=MetricsDiagCallback(train_sample=1000),
        extra_callbacks=[recorder],
    )
    if trainer.is_global_zero:
        rows = [row.tolist() for batch in recorder.batches for row in batch]
        print(json.dumps({"log_dir": trainer.logger.log_dir, "trained_on": rows}))


if __name__ == "__main__":
    main(sys.argv[1])

"""Process zero's peak memory under the Transformers Trainer's DDP against the eval set's size:
the whole gathered evaluation (``reduce="rows"``) or each gathered batch counted as it comes
(``reduce="counts"``, ``batch_eval_metrics=True``).

Two gloo processes on the CPU (``torchrun --nproc_per_node 2``), a linear model of 16 features
to 100 classes, one ``trainer.evaluate()`` of N rows (eval batch 20,000 per process), each row
made from its index by the data collator (nothing of the set is held in memory). Process zero
reports its peak resident memory (``ru_maxrss``) above its resident memory once the Trainer was
set up, before ``evaluate``: what the evaluation loop, the callback and the writing added. One
fresh pair of processes per (mode, N). Two baselines without the callback: ``none-rows`` (the
Trainer alone, with a ``compute_metrics`` that reads nothing: it holds the whole gathered
evaluation for it) and ``none-counts`` (the same with ``batch_eval_metrics=True``).

Run: ``python bench/transformers_reduce_memory.py [--rows 100000 500000 ...] [--modes counts
rows none-counts none-rows]`` (each pair of processes runs this file under
``torch.distributed.run`` with ``--worker``).
"""

import time
import warnings

import _reduce_memory
from _reduce_memory import BATCH, CLASSES, FEATURES, features_of, index_rows, report, rss_mib

MODES = ("counts", "rows", "none-counts", "none-rows")

warnings.filterwarnings("ignore")


def worker(rows, mode, out_dir):
    import torch
    import torch.distributed as dist
    import transformers

    from tb_metricsdiag.transformers import MetricsDiagCallback

    def batch_of(indices):
        x, labels = features_of(indices)
        return {"x": x, "labels": labels}

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(FEATURES, CLASSES)

        def forward(self, x, labels=None):
            logits = self.net(x)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    def nothing(eval_prediction, compute_result=None):
        return {}

    torch.manual_seed(0)
    torch.set_num_threads(1)
    batched = mode in ("counts", "none-counts")
    callback = (
        None if mode.startswith("none") else MetricsDiagCallback(log_dir=out_dir, reduce=mode)
    )
    args = transformers.TrainingArguments(
        output_dir=out_dir,
        per_device_eval_batch_size=BATCH,
        batch_eval_metrics=batched,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        ddp_backend="gloo",
        dataloader_drop_last=False,
    )
    trainer = transformers.Trainer(
        model=Linear(),
        args=args,
        data_collator=batch_of,
        eval_dataset=index_rows(rows),
        compute_metrics=nothing if callback is None else callback.compute_metrics(nothing),
        callbacks=[] if callback is None else [callback],
    )
    before = rss_mib()
    started = time.perf_counter()
    trainer.evaluate()
    dist.barrier()
    dist.destroy_process_group()
    if args.process_index == 0:
        report(mode, rows, before, started)


def main():
    _reduce_memory.main(__file__, worker, _reduce_memory.torchrun_command, MODES, MODES)


if __name__ == "__main__":
    main()

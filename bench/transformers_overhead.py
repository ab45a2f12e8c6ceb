"""Transformers callback overhead: the share of ``trainer.evaluate()`` that
`tb_metricsdiag.transformers.MetricsDiagCallback` takes.

A BERT of 2 layers, hidden size 64 and 4 heads, built from its config (random weights: a
forward pass costs the same whatever they are), classifies 2,000 eval sequences of 32 tokens
into 10 classes, eval batch 64, on the CPU. Two Trainers evaluate the same model and data in
this one process: a plain one with an accuracy ``compute_metrics``, and one with the callback
(``compute_metrics=cb.compute_metrics(accuracy)``, ``callbacks=[cb]``) writing into a
temporary directory. Two figures per mode:

- the callback's own time: the time inside its hooks (``on_log``, ``on_evaluate``, ...) and
  inside the ``compute_metrics`` wrapper apart from the accuracy function, per ``evaluate()``,
  as a share of the plain ``evaluate()``;
- the difference of the medians of ``evaluate()`` with and without the callback, the variants
  alternating, ``--repeats`` times each after a warm-up of both.

Each as wall time and as CPU time of the process (``time.process_time``: on a shared machine
other loads stretch the wall time of both variants unevenly, much less their CPU time). PyTorch
runs one thread (``--threads``): idle OpenMP threads spin, and on a loaded machine that spinning
counts as CPU time of ``evaluate()``.

Modes: the whole evaluation at once (the default: exact AP from every score) and
``batch_eval_metrics=True`` (counted batch by batch, nothing kept).

Run: ``python bench/transformers_overhead.py`` (``--quick``: 500 examples, 3 repeats).
"""

import argparse
import functools
import logging
import os
import tempfile
import time
import warnings

import numpy as np
from _common import describe_machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLES = 2_000
LENGTH = 32
CLASSES = 10
VOCAB = 1_000
EVAL_BATCH = 64

warnings.filterwarnings("ignore")


def _now():
    """``(wall seconds, CPU seconds of this process)``: CPU time stays near its value on a
    shared machine whose other loads stretch the wall time."""
    return np.array([time.perf_counter(), time.process_time()])


class _Clock:
    """Wall and CPU seconds spent inside wrapped callables, less the time of ``exclude``
    ones called from inside them."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.inside = np.zeros(2)
        self.excluded = np.zeros(2)

    def timed(self, fn, exclude=False):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = _now()
            try:
                return fn(*args, **kwargs)
            finally:
                if exclude:
                    self.excluded += _now() - start
                else:
                    self.inside += _now() - start

        return timed

    def callback_seconds(self):
        return self.inside - self.excluded


def _model(transformers):
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=LENGTH,
        num_labels=CLASSES,
    )
    return transformers.BertForSequenceClassification(config).eval()


def _dataset(examples):
    import torch

    rng = np.random.default_rng(0)
    tokens = torch.from_numpy(rng.integers(0, VOCAB, (examples, LENGTH)))
    labels = torch.from_numpy(rng.integers(0, CLASSES, examples))

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return examples

        def __getitem__(self, index):
            return {"input_ids": tokens[index], "labels": labels[index]}

    return Tokens()


def _accuracy(eval_prediction, compute_result=None):
    predicted = np.asarray(eval_prediction.predictions).argmax(-1)
    return {"accuracy": float((predicted == np.asarray(eval_prediction.label_ids)).mean())}


def _trainer(transformers, model, data, output_dir, batched, clock):
    """A Trainer of ``model`` on ``data``; with the callback (timed by ``clock``) unless
    ``clock`` is None."""
    args = transformers.TrainingArguments(
        output_dir=output_dir,
        per_device_eval_batch_size=EVAL_BATCH,
        batch_eval_metrics=batched,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    if clock is None:
        trainer = transformers.Trainer(
            model=model, args=args, eval_dataset=data, compute_metrics=_accuracy
        )
        trainer.remove_callback(transformers.PrinterCallback)  # no log lines
        return trainer
    from tb_metricsdiag.transformers import MetricsDiagCallback

    callback = MetricsDiagCallback(log_dir=os.path.join(output_dir, "run"))
    for name in dir(callback):
        if name.startswith("on_"):
            setattr(callback, name, clock.timed(getattr(callback, name)))
    accuracy = clock.timed(_accuracy, exclude=True)
    compute_metrics = clock.timed(callback.compute_metrics(accuracy))
    trainer = transformers.Trainer(
        model=model,
        args=args,
        eval_dataset=data,
        compute_metrics=compute_metrics,
        callbacks=[callback],
    )
    trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def _measure(transformers, model, data, batched, repeats):
    """``{"plain", "with", "own"}``: per evaluate(), ``[wall, CPU]`` seconds of the plain
    Trainer, of the one with the callback, and of the callback itself."""
    with tempfile.TemporaryDirectory() as root:
        clock = _Clock()
        plain = _trainer(transformers, model, data, os.path.join(root, "plain"), batched, None)
        recorded = _trainer(transformers, model, data, os.path.join(root, "cb"), batched, clock)
        plain.evaluate()  # warm-up of both
        recorded.evaluate()
        runs = {"plain": [], "with": [], "own": []}
        for repeat in range(repeats):
            for trainer in (plain, recorded) if repeat % 2 == 0 else (recorded, plain):
                clock.reset()
                start = _now()
                trainer.evaluate()
                runs["plain" if trainer is plain else "with"].append(_now() - start)
                if trainer is recorded:
                    runs["own"].append(clock.callback_seconds())
        return {name: np.array(values) for name, values in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (several spin on a shared machine)"
    )
    args = parser.parse_args()
    import torch
    import transformers

    torch.set_num_threads(args.threads)

    transformers.logging.set_verbosity_error()
    logging.getLogger("tb_metricsdiag").setLevel(logging.ERROR)
    examples = EXAMPLES
    if args.quick:
        examples, args.repeats = 500, 3
    model, data = _model(transformers), _dataset(examples)
    print(describe_machine())
    print(
        "BERT 2 layers, hidden 64, %d classes; %d eval examples of %d tokens, batch %d; %d"
        " repeats; torch %s (%d threads), transformers %s"
        % (
            CLASSES,
            examples,
            LENGTH,
            EVAL_BATCH,
            args.repeats,
            torch.__version__,
            torch.get_num_threads(),
            transformers.__version__,
        )
    )
    for batched in (False, True):
        runs = _measure(transformers, model, data, batched, args.repeats)
        median = {name: np.median(values, axis=0) for name, values in runs.items()}
        print("%s:" % ("batch_eval_metrics=True" if batched else "whole evaluation"))
        for name, title in (("plain", "plain Trainer"), ("with", "with the callback")):
            print(
                "  %-18s %.3f s wall (runs: %s), %.3f s CPU per evaluate()"
                % (title + ":", median[name][0], _list(runs[name][:, 0]), median[name][1])
            )
        print(
            "  the callback's own: %.4f s wall (runs: %s) = %.2f%% of the plain evaluate();"
            " %.4f s CPU = %.2f%%"
            % (
                median["own"][0],
                _list(runs["own"][:, 0], 4),
                100 * median["own"][0] / median["plain"][0],
                median["own"][1],
                100 * median["own"][1] / median["plain"][1],
            )
        )
        print(
            "  difference of the medians: %+.2f%% wall, %+.2f%% CPU"
            % tuple(100 * (median["with"] / median["plain"] - 1))
        )


def _list(values, digits=3):
    return ", ".join("%.*f" % (digits, v) for v in values)


if __name__ == "__main__":
    main()

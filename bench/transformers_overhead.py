"""Transformers callback overhead: the share of ``trainer.evaluate()`` that
`tb_metricsdiag.transformers.MetricsDiagCallback` takes.

A BERT of 2 layers, hidden size 64 and 4 heads, built from its config (random weights: a
forward pass costs the same whatever they are), classifies 2,000 eval sequences of 32 tokens
into 10 classes, eval batch 64, on the CPU. Two Trainers evaluate the same model and data in
this one process: a plain one with an accuracy ``compute_metrics``, and one with the callback
(``compute_metrics=cb.compute_metrics(accuracy)``, ``callbacks=[cb]``) writing into a
temporary directory. Two figures per mode:

- the callback's own time: wall time inside its hooks (``on_log``, ``on_evaluate``, ...) and
  inside the ``compute_metrics`` wrapper apart from the accuracy function, per ``evaluate()``,
  as a share of the plain ``evaluate()`` (the medians; and the fastest runs of each, the least
  disturbed on a shared machine);
- the difference of the medians of ``evaluate()`` with and without the callback, the variants
  alternating, ``--repeats`` times each after a warm-up of both.

Modes: the whole evaluation at once (the default: exact AP from every score) and
``batch_eval_metrics=True`` (counted batch by batch, nothing kept).

Run: ``python bench/transformers_overhead.py`` (``--quick``: 500 examples, 3 repeats).
"""

import argparse
import functools
import logging
import os
import statistics
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


class _Clock:
    """Wall seconds spent inside wrapped callables, less the time of ``excluded`` ones called
    from inside them."""

    def __init__(self):
        self.seconds = 0.0
        self.excluded = 0.0

    def timed(self, fn, exclude=False):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                if exclude:
                    self.excluded += spent
                else:
                    self.seconds += spent

        return timed

    def callback_seconds(self):
        return self.seconds - self.excluded


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
    """``(plain seconds, with-callback seconds, callback's own seconds)`` per evaluate()."""
    with tempfile.TemporaryDirectory() as root:
        clock = _Clock()
        plain = _trainer(transformers, model, data, os.path.join(root, "plain"), batched, None)
        recorded = _trainer(transformers, model, data, os.path.join(root, "cb"), batched, clock)
        plain.evaluate()  # warm-up of both
        recorded.evaluate()
        times, own = {plain: [], recorded: []}, []
        for repeat in range(repeats):
            for trainer in (plain, recorded) if repeat % 2 == 0 else (recorded, plain):
                clock.seconds = clock.excluded = 0.0
                start = time.perf_counter()
                trainer.evaluate()
                times[trainer].append(time.perf_counter() - start)
            own.append(clock.callback_seconds())
        return times[plain], times[recorded], own


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import torch
    import transformers

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
        plain, recorded, own = _measure(transformers, model, data, batched, args.repeats)
        baseline, with_callback = statistics.median(plain), statistics.median(recorded)
        own_median = statistics.median(own)
        print("%s:" % ("batch_eval_metrics=True" if batched else "whole evaluation"))
        print("  plain Trainer:      %.3f s per evaluate() (runs: %s)" % (baseline, _list(plain)))
        print(
            "  with the callback:  %.3f s per evaluate() (runs: %s)"
            % (with_callback, _list(recorded))
        )
        print(
            "  callback's own time: %.4f s per evaluate() (runs: %s) = %.2f%% of the plain"
            " evaluate() (medians); fastest runs: %.2f%%"
            % (
                own_median,
                _list(own, 4),
                100.0 * own_median / baseline,
                100 * min(own) / min(plain),
            )
        )
        print("  difference of the medians: %+.2f%%" % (100.0 * (with_callback / baseline - 1)))


def _list(values, digits=3):
    return ", ".join("%.*f" % (digits, v) for v in values)


if __name__ == "__main__":
    main()

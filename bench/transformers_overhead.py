"""Transformers callback overhead: the share of ``trainer.train()`` (an evaluation every epoch)
and of ``trainer.evaluate()`` that `tb_metricsdiag.transformers.MetricsDiagCallback` takes.

Training, measured as bench/overhead.py measures the Keras callback: the same model trains
``--epochs`` epochs (default 4) on 2,000 sequences, batch 64, ``eval_strategy="epoch"`` on the
2,000 eval sequences, with and without the callback (example records on, the default, and
``groups=["slice"]``: one eval dataset column of 20 values, which a data collator keeps from
the model), a fresh model from the same seed each time, alternating, ``--repeats`` times after a
warm-up of both. Figures: the callback's own time (its hooks and its ``compute_metrics``
wrapper apart from the accuracy function) as a share of the same ``train()``'s wall and CPU
time, and the paired ``train()`` with / without, medians over the repeats.

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

Evaluation modes: the whole evaluation at once (the default: exact AP from every score) and
``batch_eval_metrics=True`` (counted batch by batch, nothing kept).

Run: ``python bench/transformers_overhead.py`` (``--quick``: 500 examples, 3 repeats; ``--only
train`` or ``--only evaluate``).
"""

import argparse
import logging
import os
import tempfile
import warnings

import _common
import numpy as np
from _common import HookClock, describe_machine, load_average, print_shares, wall_and_cpu

os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLES = 2_000
LENGTH = 32
CLASSES = 10
VOCAB = 1_000
EVAL_BATCH = 64
TRAIN_BATCH = 64
SLICE_VALUES = 20

warnings.filterwarnings("ignore")


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


def _dataset(examples, seed=0):
    """Sequences of random tokens with random labels, and a ``slice`` column of
    `SLICE_VALUES` values (`_without_slice` keeps it from the model)."""
    import torch

    rng = np.random.default_rng(seed)
    tokens = torch.from_numpy(rng.integers(0, VOCAB, (examples, LENGTH)))
    labels = torch.from_numpy(rng.integers(0, CLASSES, examples))
    slices = rng.integers(0, SLICE_VALUES, examples).tolist()

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return examples

        def __getitem__(self, index):
            return {"input_ids": tokens[index], "labels": labels[index], "slice": slices[index]}

    return Tokens()


def _without_slice(rows):
    """The default collation of ``rows`` without their ``slice`` column (no model input)."""
    import transformers

    return transformers.default_data_collator(
        [{name: value for name, value in row.items() if name != "slice"} for row in rows]
    )


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
            model=model,
            args=args,
            eval_dataset=data,
            compute_metrics=_accuracy,
            data_collator=_without_slice,
        )
        trainer.remove_callback(transformers.PrinterCallback)  # no log lines
        return trainer
    from tb_metricsdiag.transformers import MetricsDiagCallback

    callback = MetricsDiagCallback(log_dir=os.path.join(output_dir, "run"))
    clock.wrap_hooks(callback, transformers.TrainerCallback)
    accuracy = clock.timed(_accuracy, exclude=True)
    compute_metrics = clock.timed(callback.compute_metrics(accuracy))
    trainer = transformers.Trainer(
        model=model,
        args=args,
        eval_dataset=data,
        compute_metrics=compute_metrics,
        callbacks=[callback],
        data_collator=_without_slice,
    )
    trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def _train(transformers, data, output_dir, epochs, clock):
    """``[wall, CPU]`` seconds of one ``trainer.train()`` of a fresh model, evaluating every
    epoch; with the callback (example records, one slice key), timed by ``clock``, unless
    ``clock`` is None."""
    train, evaluation = data
    args = transformers.TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        per_device_train_batch_size=TRAIN_BATCH,
        per_device_eval_batch_size=EVAL_BATCH,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    compute_metrics, callbacks = _accuracy, []
    if clock is not None:
        from tb_metricsdiag.transformers import MetricsDiagCallback

        callback = MetricsDiagCallback(log_dir=os.path.join(output_dir, "run"), groups=["slice"])
        callbacks.append(clock.wrap_hooks(callback, transformers.TrainerCallback))
        compute_metrics = clock.timed(
            callback.compute_metrics(clock.timed(_accuracy, exclude=True))
        )
    trainer = transformers.Trainer(
        model=_model(transformers).train(),
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        data_collator=_without_slice,
    )
    trainer.remove_callback(transformers.PrinterCallback)
    start = wall_and_cpu()
    trainer.train()
    return wall_and_cpu() - start


def _measure_train(transformers, data, epochs, repeats):
    """``{"plain", "with", "own"}``: per ``train()``, ``[wall, CPU]`` seconds without the
    callback, with it, and of the callback itself."""
    with tempfile.TemporaryDirectory() as root:
        clock = HookClock()
        _train(transformers, data, os.path.join(root, "warm-plain"), 1, None)
        _train(transformers, data, os.path.join(root, "warm-cb"), 1, clock)
        runs = {"plain": [], "with": [], "own": []}
        for repeat in range(repeats):
            for recorded in (False, True) if repeat % 2 == 0 else (True, False):
                clock.reset()
                name = "with" if recorded else "plain"
                directory = os.path.join(root, "%s-%d" % (name, repeat))
                runs[name].append(
                    _train(transformers, data, directory, epochs, clock if recorded else None)
                )
                if recorded:
                    runs["own"].append(clock.seconds())
        return {name: np.array(values) for name, values in runs.items()}


def _report_train(runs):
    own = runs["own"] / runs["with"]
    paired = runs["with"] / runs["plain"] - 1
    print(
        "  train() without the callback: %.2f s wall (runs: %s), %.2f s CPU; with: %.2f s wall"
        " (runs: %s), %.2f s CPU"
        % (
            np.median(runs["plain"][:, 0]),
            _list(runs["plain"][:, 0]),
            np.median(runs["plain"][:, 1]),
            np.median(runs["with"][:, 0]),
            _list(runs["with"][:, 0]),
            np.median(runs["with"][:, 1]),
        )
    )
    print_shares("train()", own, paired)


def _measure(transformers, model, data, batched, repeats):
    """``{"plain", "with", "own"}``: per evaluate(), ``[wall, CPU]`` seconds of the plain
    Trainer, of the one with the callback, and of the callback itself."""
    with tempfile.TemporaryDirectory() as root:
        clock = HookClock()
        plain = _trainer(transformers, model, data, os.path.join(root, "plain"), batched, None)
        recorded = _trainer(transformers, model, data, os.path.join(root, "cb"), batched, clock)
        plain.evaluate()  # warm-up of both
        recorded.evaluate()
        runs = {"plain": [], "with": [], "own": []}
        for repeat in range(repeats):
            for trainer in (plain, recorded) if repeat % 2 == 0 else (recorded, plain):
                clock.reset()
                start = wall_and_cpu()
                trainer.evaluate()
                runs["plain" if trainer is plain else "with"].append(wall_and_cpu() - start)
                if trainer is recorded:
                    runs["own"].append(clock.seconds())
        return {name: np.array(values) for name, values in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (several spin on a shared machine)"
    )
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the train() figure")
    parser.add_argument("--only", choices=("train", "evaluate"), help="one of the two figures")
    args = parser.parse_args()
    # TensorFlow and the CUDA build of PyTorch crash in one process; Transformers imports
    # TensorFlow where it finds it.
    _common.hide_packages(("tensorflow",))
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
    if args.only != "evaluate":
        print(
            "train(), %d epochs, an evaluation each (%s):" % (args.epochs, load_average()),
            flush=True,
        )
        runs = _measure_train(
            transformers, (_dataset(examples, seed=1), data), args.epochs, args.repeats
        )
        _report_train(runs)
        print("  after: %s" % load_average(), flush=True)
    for batched in (False, True) if args.only != "train" else ():
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

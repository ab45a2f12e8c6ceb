"""What the Transformers callback learns of the ``Trainer`` that Transformers does not hand a
callback: the Trainer's `CallbackHandler` or the Trainer itself above a callback's method
(`caller`), the eval dataset that ``Trainer.evaluate`` is evaluating (`evaluated_dataset`), and
the directory its own ``TensorBoardCallback`` writes to (`trainer_log_dir`).
"""

import inspect
import os

from transformers.trainer_callback import CallbackHandler

# How many frames above one of its methods the callback looks for the Trainer's
# `CallbackHandler` (or, above the `compute_metrics` wrapper, the Trainer): Transformers hands a
# callback neither, and the Trainer's `TensorBoardCallback` is among the handler's callbacks.
CALLER_FRAMES = 4


def trainer_log_dir(args, callbacks):
    """The directory of the Trainer's own ``TensorBoardCallback`` among ``callbacks``, else
    ``args.output_dir/runs``.

    That callback's writer knows its directory once made (``tb_writer.get_logdir()``); before,
    Transformers 5 keeps it as ``logging_dir`` (``TENSORBOARD_LOGGING_DIR``, else
    ``output_dir/runs/<time>_<host>``, set at train begin) and Transformers 4 reads
    ``args.logging_dir``.
    """
    from transformers.integrations import TensorBoardCallback

    for callback in callbacks or ():
        if not isinstance(callback, TensorBoardCallback):
            continue
        get_logdir = getattr(getattr(callback, "tb_writer", None), "get_logdir", None)
        candidates = [
            get_logdir() if callable(get_logdir) else None,
            getattr(callback, "logging_dir", None),  # Transformers 5
            getattr(args, "logging_dir", None),  # Transformers 4
            os.environ.get("TENSORBOARD_LOGGING_DIR"),
        ]
        for directory in candidates:
            if directory:
                return os.path.expanduser(os.fspath(directory))
        from transformers.integrations.integration_utils import default_logdir

        return os.path.join(args.output_dir, default_logdir())
    return os.path.join(args.output_dir or ".", "runs")


def caller(callback, matches):
    """The nearest ``self`` of a method that called one of ``callback``'s, within
    `CALLER_FRAMES` frames, for which ``matches(owner)`` holds; or None.
    """
    frame = inspect.currentframe().f_back.f_back
    for _ in range(CALLER_FRAMES):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if owner is not None and owner is not callback and matches(owner):
            return owner
        frame = frame.f_back
    return None


# How many frames above ``on_evaluate`` `evaluated_dataset` looks for ``Trainer.evaluate``
# (through the `CallbackHandler`, and a subclass's ``evaluate`` calling the Trainer's).
EVALUATE_FRAMES = 8


def evaluated_dataset():
    """``(trainer, dataset)`` of the ``Trainer.evaluate`` call that the caller runs in, within
    `EVALUATE_FRAMES` frames: its ``eval_dataset`` (given as a dataset, or as the name of one
    of ``trainer.eval_dataset``'s); or None.

    The Trainer hands callbacks neither the dataset nor the trainer, and it evaluates the
    dataset's rows in order (a sequential sampler; across processes Accelerate's
    ``gather_for_metrics`` puts the batches back in order and drops the repeats).
    """
    frame = inspect.currentframe().f_back
    for _ in range(EVALUATE_FRAMES):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if (
            frame.f_code.co_name == "evaluate"
            and is_trainer(owner)
            and "eval_dataset" in frame.f_locals
        ):
            dataset = frame.f_locals["eval_dataset"]
            if isinstance(dataset, str):
                dataset = owner.eval_dataset[dataset]
            return owner, dataset
        frame = frame.f_back
    return None


def is_handler(owner):
    return isinstance(owner, CallbackHandler)


def is_trainer(owner):
    return isinstance(getattr(owner, "callback_handler", None), CallbackHandler)

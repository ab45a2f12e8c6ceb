"""The Transformers ``Trainer``'s names, as the callback reads them: which split an evaluation
is (`split_of`, from its metrics' prefix) and its logged values under Keras's log keys
(`evaluation_logs`, `training_logs`), which the diagnostics read. Imports no framework.
"""

import numpy as np

from tb_metricsdiag.format import schema
from tb_metricsdiag.writing.callback_writing import WHO

# `Trainer.evaluate`'s default metric prefix: an evaluation under it is the split "validation".
VALIDATION_PREFIX = "eval"

# Keras's prefix of validation values in `logs`.
KERAS_VALIDATION = "val_"

# Every evaluation's metrics hold ``<prefix>_runtime`` (Transformers' `speed_metrics`): the key
# that tells the prefix, and so the split.
RUNTIME = "runtime"

# The Trainer's own figures of an evaluation (time, speed), not the model's: not logged.
TRAINER_FIGURES = frozenset(
    {
        RUNTIME,
        "samples_per_second",
        "steps_per_second",
        "model_preparation_time",
        "jit_compilation_time",
    }
)

# Written by the Trainer with every log, not a value of the model.
EPOCH = "epoch"


def split_of(metrics):
    """``(prefix, split)`` of an evaluation's metrics (``Trainer.evaluate``'s ``metrics``).

    The prefix is the ``metric_key_prefix``: the shortest ``P`` with a ``P_runtime`` key (every
    key of the evaluation starts with it). ``eval`` is the split ``validation``; ``eval_NAME``
    (one eval dataset of a dict) the split ``NAME``; any other prefix (``evaluate(...,
    metric_key_prefix="test")``) names the split itself.

    Raises:
      ValueError: no ``P_runtime`` key, or a split that is no split name
        (`schema.is_split_name`).
    """
    suffix = "_" + RUNTIME
    prefixes = [key[: -len(suffix)] for key in metrics if key.endswith(suffix)]
    if not prefixes or not all(prefixes):
        raise ValueError(
            "%s: cannot tell which evaluation these metrics are of (no <prefix>_runtime key in"
            " %s)" % (WHO, sorted(metrics))
        )
    prefix = min(prefixes, key=len)
    if prefix == VALIDATION_PREFIX:
        return prefix, "validation"
    split = prefix[len(VALIDATION_PREFIX) + 1 :] if prefix.startswith("eval_") else prefix
    if not schema.is_split_name(split):
        raise ValueError(
            "%s: the evaluation with metric prefix %r would be the split %r, but a split name"
            " is 1 to 64 letters, digits, _ . or -: rename the eval dataset's key (or the"
            " metric_key_prefix)" % (WHO, prefix, split)
        )
    return prefix, split


def evaluation_logs(metrics, prefix, split):
    """An evaluation's metrics under Keras's names: ``(logs, origin)``.

    ``PREFIX_NAME`` becomes ``val_NAME`` for the split ``validation`` (``eval_loss`` ->
    ``val_loss``, ``eval_accuracy`` -> ``val_accuracy``), else ``SPLIT_NAME``
    (``eval_ood_loss`` -> ``ood_loss``). The Trainer's own figures (`TRAINER_FIGURES`), the
    epoch and values that are not numbers are left out. ``origin`` maps each key to the
    Trainer's name.
    """
    head = KERAS_VALIDATION if split == "validation" else split + "_"
    logs, origin = {}, {}
    for key, value in metrics.items():
        if not key.startswith(prefix + "_") or not _is_number(value):
            continue
        name = key[len(prefix) + 1 :]
        if name in TRAINER_FIGURES:
            continue
        logs[head + name], origin[head + name] = float(value), key
    return logs, origin


def training_logs(logs):
    """A training log (``loss``, ``grad_norm``, ``learning_rate``, ...) under Keras's names,
    which are the Trainer's: ``(logs, origin)``.

    Logs with a ``*_runtime`` key are an evaluation's (written at ``on_evaluate``), a
    prediction's, or the summary at the end of training (``train_loss`` is the mean over the
    whole training, not a point of the loss curve): they give nothing here.
    """
    if any(key.endswith("_" + RUNTIME) for key in logs):
        return {}, {}
    kept = {key: float(value) for key, value in logs.items() if key != EPOCH and _is_number(value)}
    return kept, {key: key for key in kept}


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))

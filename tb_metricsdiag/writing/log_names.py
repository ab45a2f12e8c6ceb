"""A framework's logged metric names as Keras's epoch log keys, so every writer's curves read
alike (``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``): `keras_logs`.

Lightning logs ``train_loss``, ``val/acc``, ``loss_epoch``; Transformers' ``Trainer`` logs
``eval_loss``; the diagnostics and the tab read Keras's keys (``val_`` + a validation metric's
name, a training metric's name as it is). Which words mark a validation metric is the caller's
(`VALIDATION_WORDS` by default). Framework-free: a logged value may be a number or a
one-element tensor of any framework (`arrays.to_numpy` reads it without importing the
framework).
"""

import functools
import re

import numpy as np

from tb_metricsdiag.writing import arrays

# The words that mark a metric's split, as a prefix or a suffix joined by one of ``_ / . -``
# (case ignored): what Lightning users write, and Keras's own ``val_``.
VALIDATION_WORDS = ("val", "valid", "validation")
TRAIN_WORDS = ("train", "training")


@functools.lru_cache(maxsize=8)
def _patterns(validation_words):
    """``(prefixed, suffixed)``: a name with a split word before or after it."""
    words = "|".join(re.escape(word) for word in validation_words + TRAIN_WORDS)
    return (
        re.compile(r"(%s)[_/.\-](.+)" % words, re.IGNORECASE),
        re.compile(r"(.+?)[_/.\-](%s)" % words, re.IGNORECASE),
    )


def split_of_name(name, validation_words=VALIDATION_WORDS):
    """``(base, "validation" | "train" | None)``: a name's split word (as a prefix or suffix
    joined by ``_ / . -``) taken off.

    >>> split_of_name("val/acc"), split_of_name("loss_train"), split_of_name("f1")
    (('acc', 'validation'), ('loss', 'train'), ('f1', None))
    >>> split_of_name("eval_loss", validation_words=("eval",))
    ('loss', 'validation')
    """
    validation_words = tuple(word.lower() for word in validation_words)
    prefixed, suffixed = _patterns(validation_words)
    for pattern, word, rest in ((prefixed, 1, 2), (suffixed, 2, 1)):
        match = pattern.fullmatch(name)
        if match:
            split = "validation" if match.group(word).lower() in validation_words else "train"
            return match.group(rest), split
    return name, None


def keras_logs(metrics, validation_names, stale_names=(), validation_words=VALIDATION_WORDS):
    """A framework's logged metrics (Lightning's ``callback_metrics``) as Keras's epoch
    ``logs``: ``(logs, origin)``.

    Args:
      metrics: ``{name: value}``; values with one element (tensors, numbers) are kept.
      validation_names: names logged by this epoch's validation (their values are new).
      stale_names: names logged by an earlier validation but not this epoch's, left out (an
        epoch without validation keeps the last validation's values in ``callback_metrics``).
      validation_words: the words that mark a validation metric's name (`VALIDATION_WORDS`;
        Transformers' ``Trainer`` writes ``eval``).

    The rules, in order:

    - a metric logged with ``on_step=True, on_epoch=True`` comes as ``name``, ``name_step``
      and ``name_epoch``: the epoch value is kept, under ``name``;
    - a validation metric is ``val_`` + its name without its split word (``val_loss``,
      ``valid/acc``, ``loss/val``, or any name logged in ``validation_step``: ``val_loss``,
      ``val_acc``); one named for validation that this epoch's validation did not log is left
      out (stale);
    - a training metric loses its split word (``train_loss`` -> ``loss``);
    - when two names give the same key, an epoch value beats a step value, then a name that is
      already the key beats one that is not, then the first name in sorted order wins.

    Returns:
      ``logs`` ``{key: float}`` and ``origin`` ``{key: the logged name}``.
    """
    validation_names = set(validation_names)
    stale_names = set(stale_names)
    epoch_names = {name[: -len("_epoch")] for name in metrics if name.endswith("_epoch")}
    candidates = {}  # key -> [(rank, name, value)]
    for name in sorted(metrics):
        if name.endswith(("_step", "_epoch")) and name.rsplit("_", 1)[0] in epoch_names:
            continue  # the epoch value is also under the plain name
        value = _number(metrics[name])
        if value is None or name in stale_names:
            continue
        base, split = split_of_name(name, validation_words)
        if name in validation_names and split is None:
            split = "validation"
        if split == "validation" and name not in validation_names:
            continue
        key = ("val_" + base) if split == "validation" else base
        rank = (name not in epoch_names, name != key)
        candidates.setdefault(key, []).append((rank, name, value))
    logs, origin = {}, {}
    for key, found in candidates.items():
        _, name, value = min(found)
        logs[key], origin[key] = value, name
    return logs, origin


def _number(value):
    """``value`` as a float when it is a number or a one-element tensor / array (of any
    framework, read by `arrays.to_numpy`), else None. Booleans and strings are no numbers.
    """
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    try:
        array = arrays.to_numpy(value, "a logged metric")
    except arrays.UnreadableTensorError:
        return None
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(-1)[0])

"""`MetricsDiagCallback` for the Hugging Face Transformers ``Trainer``: what the Keras callback
records, at every evaluation, from the predictions the Trainer already gathered.

``compute_metrics`` is the one hook that sees an evaluation's predictions and labels (gathered
across processes by Accelerate's ``gather_for_metrics``, which drops the examples the
distributed sampler repeated), so the callback wraps it (`MetricsDiagCallback.compute_metrics`):
the wrapper counts them through `inputs` (the one input path of every writer) and calls the
user's function as the Trainer would. ``on_evaluate``, which follows, tells the split (from the
metrics' prefix) and the step (``state.global_step``), and the world's process zero writes the
counts, the Trainer's logged values under Keras's names (`evaluation_logs`, `training_logs`) and
the run description with `MetricsDiagWriter`.

A configuration mistake raises a ValueError naming the fix during the first evaluation (all of
its eval datasets); once training went on past it, nothing the callback meets ends the training:
problems become events (`core/events.py`) that the diagnostics report.
"""

import collections.abc
import dataclasses
import inspect
import logging
import os

import numpy as np
import torch
import transformers
from transformers.trainer_callback import CallbackHandler

from tb_metricsdiag.core import events
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.format import schema
from tb_metricsdiag.writing import arrays, example_recorder, inputs, records
from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

logger = logging.getLogger(__name__)

WHO = "MetricsDiagCallback"

# What the callback calls the Trainer's labels and outputs in its messages (`inputs.NAMES`).
NAMES = ("label_ids", "predictions")

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

# How many frames above one of its methods the callback looks for the Trainer's
# `CallbackHandler` (or, above the `compute_metrics` wrapper, the Trainer): Transformers hands a
# callback neither, and the Trainer's `TensorBoardCallback` is among the handler's callbacks.
CALLER_FRAMES = 4

# With ``batch_eval_metrics``, batches are counted together once their outputs hold this many
# values (4 MB of float32), or at the evaluation's last batch: counting has a fixed cost per
# call that small batches would pay each, and memory stays bounded whatever the eval set.
BATCH_BUFFER_VALUES = 1 << 20

# `counting` of the run description: the two ways the Trainer hands over predictions.
COUNTING_WHOLE = "transformers_compute_metrics"
COUNTING_BATCHES = "transformers_batch_eval_metrics"

_NO_PREDICTIONS = (
    "MetricsDiagCallback: this evaluation handed the callback no predictions. Pass"
    " compute_metrics=cb.compute_metrics(your_compute_metrics_or_None) to the Trainer beside"
    " callbacks=[cb], give the eval dataset its labels, and leave prediction_loss_only off"
)


# -- the Trainer's logged names -> Keras's log keys -------------------------------------------


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


# -- where the Trainer's TensorBoardCallback writes ---------------------------------------------


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


def _caller(callback, matches):
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
    """``(trainer, dataset)`` of the ``Trainer.evaluate`` call that the caller runs in: its
    ``eval_dataset`` (a dataset, or the name of one of ``trainer.eval_dataset``'s), within
    `EVALUATE_FRAMES` frames; or None.

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
            and _is_trainer(owner)
            and "eval_dataset" in frame.f_locals
        ):
            return owner, frame.f_locals["eval_dataset"]
        frame = frame.f_back
    return None


# The keys of `MetricsDiagCallback.columns` that are not groups ("(" is no group key).
_IDS, _PREVIEWS = "(ids)", "(previews)"


def _checked_columns(example_ids, previews, groups):
    """``{what: column}`` of the dataset columns the callback reads: `_IDS`, `_PREVIEWS` and
    each group key; ValueError naming the forms they take.
    """
    columns = {}
    if example_ids not in (None, False):
        if not isinstance(example_ids, str) or not example_ids:
            raise ValueError(
                "%s: example_ids must be the name of an eval dataset column of ids (e.g."
                " 'id'), None (the rows' positions) or False (no example records), got %r"
                % (WHO, example_ids)
            )
        columns[_IDS] = example_ids
    if previews is not None:
        if example_ids is False:
            raise ValueError(
                "%s: previews need example records, which example_ids=False turns off: drop"
                " one of them" % WHO
            )
        if not isinstance(previews, str) or not previews:
            raise ValueError(
                "%s: previews must be the name of an eval dataset column of texts (e.g."
                " 'text'), got %r" % (WHO, previews)
            )
        columns[_PREVIEWS] = previews
    if groups is not None:
        if isinstance(groups, (list, tuple)):
            groups = {column: column for column in groups}
        if (
            not isinstance(groups, collections.abc.Mapping)
            or not groups
            or not all(isinstance(c, str) and c for c in groups.values())
        ):
            raise ValueError(
                "%s: groups must be a list of eval dataset columns (e.g. ['language']) or"
                " {key: column}, got %r" % (WHO, groups)
            )
        inputs.check_groups({key: [] for key in groups}, 0, "%s: groups" % WHO)  # the keys
        columns.update(groups)
    return columns


def _label_column(dataset, label_names):
    """The dataset's label column (the Trainer's ``label_names``, else ``labels`` or
    ``label``), or None when it has none that can be read cheaply.
    """
    names = getattr(dataset, "column_names", None)
    if names is None:
        try:
            first = dataset[0] if len(dataset) else None
        except Exception:  # not indexable by position: no label check
            return None
        names = list(first) if isinstance(first, collections.abc.Mapping) else []
    for name in list(label_names or ()) + ["labels", "label"]:
        if name in names:
            return name
    return None


def dataset_columns(dataset, columns):
    """``{column: [value per row]}`` of an eval dataset: a ``datasets.Dataset`` (by its
    columns), or any dataset of ``len(dataset)`` rows that are dicts (read row by row;
    scalar tensors and NumPy scalars as Python values).

    Raises:
      ValueError: a column the dataset does not have, naming those it has.
    """
    names = getattr(dataset, "column_names", None)
    if names is not None:
        missing = [column for column in columns if column not in names]
        if missing:
            raise ValueError(
                "%s: the eval dataset has no column %r (its columns: %s)"
                % (WHO, missing[0], sorted(names))
            )
        return {column: list(dataset[column]) for column in columns}
    values = {column: [] for column in columns}
    for index in range(len(dataset)):
        row = dataset[index]
        if not isinstance(row, collections.abc.Mapping):
            raise ValueError(
                "%s: the eval dataset's rows are %s, not dicts, so it has no columns to read"
                " example_ids, previews or groups from" % (WHO, type(row).__name__)
            )
        for column in columns:
            if column not in row:
                raise ValueError(
                    "%s: the eval dataset has no column %r (row %d has %s)"
                    % (WHO, column, index, sorted(row))
                )
            value = row[column]
            if getattr(value, "ndim", None) == 0:
                value = value.item()  # a scalar tensor or NumPy scalar
            values[column].append(value)
    return values


def _check_same_rows(labels, evaluation, column):
    """ValueError unless the dataset's label column equals the evaluation's labels, row by
    row: the columns read belong to the rows evaluated, in their order.
    """
    given = np.asarray([np.asarray(label, dtype=np.float64) for label in labels])
    targets = np.asarray(evaluation.targets, dtype=np.float64)
    if given.shape[0] != targets.shape[0]:
        raise ValueError(
            "%s: the eval dataset has %d rows but the evaluation %d: its columns cannot be"
            " matched to the predictions" % (WHO, given.shape[0], targets.shape[0])
        )
    if given.size != targets.size or not np.array_equal(given.reshape(targets.shape), targets):
        raise ValueError(
            "%s: the eval dataset's %r column differs from the evaluation's labels, so its"
            " rows were not evaluated in order (a custom sampler or dataloader?): the columns"
            " cannot be matched to the predictions; leave example_ids, previews and groups"
            " out" % (WHO, column)
        )


def _is_handler(owner):
    return isinstance(owner, CallbackHandler)


def _is_trainer(owner):
    return isinstance(getattr(owner, "callback_handler", None), CallbackHandler)


def _class_names_of(config):
    """``config.id2label``'s names in label order, or None when they are Transformers'
    defaults (``LABEL_0``, ...) or not one per label id from 0.
    """
    id2label = getattr(config, "id2label", None) or {}
    try:
        names = [str(id2label[i]) for i in range(len(id2label))]
    except KeyError:
        return None
    if not names or names == ["LABEL_%d" % i for i in range(len(names))]:
        return None
    return names


# -- the callback -----------------------------------------------------------------------------


class _Pending:
    """One evaluation from the ``compute_metrics`` wrapper until ``on_evaluate`` counts (the
    whole evaluation) or writes (counted batch by batch) it.
    """

    def __init__(self, batched):
        self.batched = batched
        # The whole evaluation's EvalPrediction: ``Trainer.evaluate`` holds its arrays until
        # after ``on_evaluate`` anyway, and a ``trainer.predict`` is dropped uncounted.
        self.prediction = None
        self.counts = None  # `counting.ClassificationCounts` / `MultiLabelCounts`
        self.evaluation = None  # the whole evaluation's `inputs.Evaluation`, once checked
        self.records = False  # whether its example records are written
        self.batches = []  # batched: (labels, outputs) not counted yet (`BATCH_BUFFER_VALUES`)
        self.buffered = 0  # output values in ``batches``
        self.rows = 0  # batched: rows taken so far (the next batch's first position)
        # batched: the `example_recorder.EpochExamples` of the rows counted (positions in the
        # eval dataset; no label issues, which need every row's scores), or None.
        self.examples = None
        self.problems = []  # messages of batches left out
        self.error = None  # a mistake of the first evaluation's batches, raised at on_evaluate
        self.complete = False  # batched: the last batch (compute_result=True) was counted


class MetricsDiagCallback(transformers.TrainerCallback):
    """Writes, at every evaluation of a ``transformers.Trainer``, confusion matrices, PR
    threshold counts, AP, calibration, the logged values and the run description.

    Pass it twice: ``compute_metrics=cb.compute_metrics(fn)`` (the hook that sees the
    predictions) and ``callbacks=[cb]`` (the steps, the splits, the logs).

    Args:
      class_names: one name per class (per label, multi-label); default the model's
        ``config.id2label`` when it names them (not ``LABEL_0``...), else ``"0"``..``"C-1"``.
      log_dir: directory of the run's event files; default the Trainer's own
        ``TensorBoardCallback``'s (`trainer_log_dir`), so the run sits beside its scalars,
        else ``output_dir/runs``.
      thresholds: ascending score thresholds of the PR counts; default
        `counting.default_thresholds`.
      from_logits: whether the predictions are logits; default (None) detected at the first
        evaluation (a Transformers head gives logits; ``preprocess_logits_for_metrics`` may
        give probabilities).
      multi_label: whether each label is its own binary task (multi-hot labels); default the
        model's ``config.problem_type == "multi_label_classification"``, else detected from
        the first evaluation's labels.
      scalars: whether each evaluation also writes its headline scalars (accuracy, balanced
        accuracy, macro F1, ECE, per-class recall and precision) under ``metricsdiag/<split>/``
        for TensorBoard's own Scalars and HParams dashboards (`records.headline_scalars`).
      example_ids: the eval dataset's column of example ids (one per row: integers, or
        strings of 1 to 128 characters, unique), e.g. ``"id"``; None (default): the rows'
        positions in the eval dataset; False: no example records. The Trainer keeps such a
        column from the model (``remove_unused_columns`` drops it from the batches), so the
        callback reads it from the dataset being evaluated, whose rows the Trainer evaluates
        in order (`evaluated_dataset`).
      previews: the eval dataset's column of text previews (strings), e.g. ``"text"``.
      groups: the eval dataset's columns to slice by: a list of column names (each its own
        key) or ``{key: column}``.

    Ids, previews and groups are read once per eval dataset; the dataset's label column
    (``label_names``, else ``labels`` or ``label``), when it has one, must equal the
    evaluation's labels row by row, which proves the rows are read in the order they were
    evaluated. A column missing or of the wrong kind raises a ValueError at the first
    evaluation; later, that evaluation's example records are left out, with an event. With
    ``batch_eval_metrics=True`` no scores are kept: the example records then name the rows by
    their positions and hold no label issues (giving ``example_ids``, ``previews`` or
    ``groups`` then raises).

    Predictions may be a tensor or array ``[n, C]`` (``[n]`` / ``[n, 1]``: one binary logit)
    or a tuple whose first element is that (the model's first output: its logits), as the
    Trainer or ``preprocess_logits_for_metrics`` gives them. Under DDP every process gets the
    whole evaluation, gathered; the world's process zero alone counts (after the first
    evaluation) and writes. With ``batch_eval_metrics=True`` each batch is counted as it comes
    and nothing is kept (the AP then comes from the threshold counts).
    """

    def __init__(
        self,
        class_names=None,
        log_dir=None,
        *,
        thresholds=None,
        from_logits=None,
        multi_label=None,
        example_ids=None,
        previews=None,
        groups=None,
        scalars=True,
    ):
        super().__init__()
        self.columns = _checked_columns(example_ids, previews, groups)
        self.example_ids = example_ids
        if log_dir is not None and (
            not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir)
        ):
            raise ValueError(
                "%s: log_dir must be a non-empty path or None (the Trainer's TensorBoard"
                " directory), got %r" % (WHO, log_dir)
            )
        inputs.check_from_logits(from_logits, WHO)
        inputs.check_multi_label(multi_label, WHO, detect=True)
        inputs.check_scalars(scalars, WHO)
        self.scalars = scalars
        self.class_names = inputs.check_class_names(class_names, WHO)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.thresholds = records.checked_thresholds(thresholds, WHO)
        self.from_logits = from_logits
        self.multi_label = multi_label
        self._layout = None  # inputs.Layout: fixed by the first evaluation
        self._pending = None  # _Pending
        self._evaluated = False
        self._first_evaluation = True  # until a training step follows the first evaluation
        self._writes = True  # the world's process zero (known at the Trainer's first event)
        self._world_size = 1
        self._model = None
        self._callbacks = None  # the Trainer's callbacks, for its TensorBoardCallback
        self._log_dir = self.log_dir
        self._writer = None
        # TensorBoard's data server keeps the last point a series has at a step: every write of
        # the logs (the events) at a step holds all those written before at that step.
        self._logs_step, self._step_logs = None, {}
        self._events_step, self._step_events = None, []
        self._logs_from = {}  # Keras log key -> the Trainer's name
        self._split_examples = {}  # split -> examples, for the run description
        self._counting = None
        self._described = None  # (log_dir, splits) of the run description last written
        self._dataset_columns = {}  # split -> (dataset, {column: values}) read from it

    @property
    def run_dir(self):
        """The directory of the run's event files: ``log_dir``, or once the callback first
        wrote, the directory it found (`trainer_log_dir`); None before.
        """
        return self._log_dir

    # -- the compute_metrics wrapper ------------------------------------------------------

    def compute_metrics(self, fn=None):
        """Wrap the Trainer's ``compute_metrics`` (``fn``, or None for none): the wrapper counts
        the predictions for this callback, then returns what ``fn`` returns, unchanged (an
        empty dict without ``fn``).

        With ``batch_eval_metrics=True`` the Trainer calls it once per batch with
        ``compute_result``, and ``fn`` must take ``compute_result`` too, as Transformers
        requires.
        """
        if isinstance(fn, transformers.EvalPrediction):
            raise ValueError(
                "%s: the Trainer called cb.compute_metrics itself: pass"
                " compute_metrics=cb.compute_metrics(your_compute_metrics_or_None), the"
                " function it returns" % WHO
            )
        if fn is not None and not callable(fn):
            raise ValueError(
                "%s.compute_metrics: expected your compute_metrics function or None, got %r"
                % (WHO, fn)
            )

        def compute_metrics(eval_prediction, compute_result=None):
            self._take(eval_prediction, compute_result, fn)
            if fn is None:
                return {}
            if compute_result is None:
                return fn(eval_prediction)
            return fn(eval_prediction, compute_result=compute_result)

        return compute_metrics

    def _take(self, eval_prediction, compute_result, fn):
        """Keep one evaluation for ``on_evaluate``, or count one batch of it (with
        ``batch_eval_metrics``); never raises but for a wrong setup.
        """
        batched = compute_result is not None
        pending = self._pending
        if pending is None or pending.batched != batched or pending.complete:
            if self._first_evaluation:
                self._check_wiring(batched, fn)
            pending = self._pending = _Pending(batched)
        pending.complete = bool(compute_result)
        if not self._writes and not self._first_evaluation:
            return  # another process: the first evaluation checked, process zero counts
        if not batched:
            pending.prediction = eval_prediction
        elif pending.error is None:
            try:
                labels, outputs = _labels_and_outputs(eval_prediction)
                if self._layout is None:
                    self._first_layout(labels, outputs, batched=True)
                if pending.rows == 0 and self.example_ids is not False:
                    pending.examples = self._batch_examples()
                pending.batches.append((labels, outputs, pending.rows))
                pending.rows += len(outputs)
                pending.buffered += outputs.size
            except ValueError as error:
                self._left_out(pending, error)
            except Exception as error:  # recording never ends the training
                logger.exception("%s: a batch could not be counted", WHO)
                pending.problems.append("%s: %s" % (type(error).__name__, error))
            if compute_result or pending.buffered >= BATCH_BUFFER_VALUES:
                self._count_batches(pending)

    def _left_out(self, pending, error):
        """A batch that does not fit: raised at ``on_evaluate`` during the first evaluation,
        else an event.
        """
        if self._first_evaluation:
            pending.error = pending.error or error
        else:
            logger.warning("%s: %s", WHO, error)
            pending.problems.append(str(error))

    def _check_wiring(self, batched, fn):
        trainer = _caller(self, _is_trainer)
        if trainer is not None and not any(
            callback is self for callback in trainer.callback_handler.callbacks
        ):
            raise ValueError(
                "%s: compute_metrics=cb.compute_metrics(...) is set but the Trainer does not"
                " have the callback: pass callbacks=[cb] too" % WHO
            )
        if batched and self.columns:
            raise ValueError(
                "%s: with batch_eval_metrics=True nothing of the evaluation is kept, so the"
                " example records name the rows by their positions: leave example_ids,"
                " previews and groups out, or batch_eval_metrics off" % WHO
            )
        if batched and fn is not None and not _takes_compute_result(fn):
            raise ValueError(
                "%s: with batch_eval_metrics=True your compute_metrics must take a"
                " compute_result argument (Transformers calls it once per batch), as"
                " def compute_metrics(eval_prediction, compute_result): ..." % WHO
            )

    def _first_layout(self, labels, outputs, batched):
        """Fix the run's layout from the first evaluation (batch) counted."""
        self._check_task()
        width = 1 if outputs.ndim == 1 else outputs.shape[1]
        multi_label = self._multi_label(labels, width)
        evaluation = inputs.check_evaluation(
            labels,
            outputs,
            WHO,
            multi_label=multi_label,
            from_logits=self.from_logits,
            class_names=self._class_names(width, multi_label),
            names=NAMES,
        )
        self._layout = evaluation.layout
        self._counting = COUNTING_BATCHES if batched else COUNTING_WHOLE
        return evaluation

    def _count_batches(self, pending):
        """Count the buffered batches together; when one does not fit, one by one, leaving
        that one out.
        """
        batches, pending.batches, pending.buffered = pending.batches, [], 0
        if not batches:
            return
        if pending.counts is None:
            pending.counts = self._layout.new_counts(self.thresholds, keep_scores=False)
        try:
            labels = np.concatenate([labels for labels, _, _ in batches])
            outputs = np.concatenate([outputs for _, outputs, _ in batches])
            converted = self._layout.count(pending.counts, labels, outputs)
            positions = np.concatenate(
                [np.arange(first, first + len(o)) for _, o, first in batches]
            )
            self._add_examples(pending, positions, converted)
            return
        except ValueError:
            pass  # refused before anything was counted: find the batches that do not fit
        except Exception as error:  # recording never ends the training
            logger.exception("%s: %d batches could not be counted", WHO, len(batches))
            pending.problems.append("%s: %s" % (type(error).__name__, error))
            return
        for labels, outputs, first in batches:
            try:
                converted = self._layout.count(pending.counts, labels, outputs)
                self._add_examples(pending, np.arange(first, first + len(outputs)), converted)
            except ValueError as error:
                self._left_out(
                    pending,
                    ValueError(
                        "%s: a batch of %s of shape %s and %s of shape %s was left out: %s"
                        % (WHO, NAMES[0], labels.shape, NAMES[1], outputs.shape, error)
                    ),
                )
            except Exception as error:  # recording never ends the training
                logger.exception("%s: a batch could not be counted", WHO)
                pending.problems.append("%s: %s" % (type(error).__name__, error))

    def _batch_examples(self):
        """An `example_recorder.EpochExamples` for an evaluation counted batch by batch: its
        rows are the positions of the dataset being evaluated (`evaluated_dataset`), or None
        when its size cannot be told.
        """
        found = evaluated_dataset()
        if found is None:
            return None
        trainer, dataset = found
        if isinstance(dataset, str):
            dataset = trainer.eval_dataset[dataset]
        try:
            size = len(dataset)
        except TypeError:  # an iterable dataset: no positions to name
            return None
        return example_recorder.EpochExamples(
            self._layout, size, label_issues=False, thresholds=self.thresholds
        )

    def _add_examples(self, pending, positions, converted):
        """Give a counted chunk's rows to the evaluation's example records; rows beyond the
        dataset's end (it was not the dataset evaluated) give the records up, with a problem.
        """
        if pending.examples is None:
            return
        try:
            pending.examples.update(positions, *converted)
        except ValueError as error:
            pending.examples = None
            pending.problems.append("the example records were left out: %s" % (error,))

    def _check_whole(self, eval_prediction):
        """The `inputs.Evaluation` of one whole evaluation (exact AP: its scores are kept
        while counted), without ids, previews and groups.
        """
        labels, outputs = _labels_and_outputs(eval_prediction)
        if self._layout is None:
            return self._first_layout(labels, outputs, batched=False)
        return inputs.check_evaluation(
            labels, outputs, WHO, layout=self._layout, from_logits=self.from_logits, names=NAMES
        )

    def _with_columns(self, evaluation, split):
        """``evaluation`` with the ids, previews and groups of the dataset being evaluated
        (`self.columns`), checked as every writer checks them; ValueError naming the fix.
        """
        if not self.columns:
            return evaluation
        found = evaluated_dataset()
        if found is None:
            raise ValueError(
                "%s: cannot find the eval dataset that Trainer.evaluate is evaluating, to read"
                " its columns %s: evaluate with Trainer.evaluate (or trainer.train's"
                " evaluations), or leave example_ids, previews and groups out"
                % (WHO, sorted(set(self.columns.values())))
            )
        trainer, dataset = found
        if isinstance(dataset, str):
            dataset = trainer.eval_dataset[dataset]
        cached = self._dataset_columns.get(split)
        if cached is None or cached[0] is not dataset:
            wanted = sorted(set(self.columns.values()))
            label_column = _label_column(dataset, getattr(trainer, "label_names", None))
            values = dataset_columns(dataset, wanted + ([label_column] if label_column else []))
            cached = self._dataset_columns[split] = (dataset, values, label_column)
        _, values, label_column = cached
        n = evaluation.size
        if label_column is not None:
            _check_same_rows(values[label_column], evaluation, label_column)
        elif len(next(iter(values.values()))) != n:
            raise ValueError(
                "%s: the eval dataset has %d rows but the evaluation %d: the columns cannot be"
                " matched to the predictions" % (WHO, len(next(iter(values.values()))), n)
            )
        groups = {
            key: values[column]
            for key, column in self.columns.items()
            if key not in (_IDS, _PREVIEWS)
        }
        return dataclasses.replace(
            evaluation,
            example_ids=inputs.check_example_ids(
                values.get(self.columns.get(_IDS)), n, "%s: example_ids" % WHO
            ),
            previews=inputs.check_previews(
                values.get(self.columns.get(_PREVIEWS)), n, "%s: previews" % WHO
            ),
            groups=inputs.check_groups(groups or None, n, "%s: groups" % WHO),
        )

    def _check_task(self):
        config = getattr(self._model, "config", None)
        problem_type = getattr(config, "problem_type", None)
        if problem_type == "regression":
            raise ValueError(
                "%s: the model is a regression head (problem_type='regression', num_labels=%s):"
                " the callback records classifiers. Leave it out of a regression run; for a"
                " classifier give the model num_labels >= 2 (or one logit per label with"
                " problem_type='multi_label_classification')"
                % (WHO, getattr(config, "num_labels", "?"))
            )

    def _multi_label(self, labels, width):
        if self.multi_label is not None:
            return self.multi_label
        config = getattr(self._model, "config", None)
        if getattr(config, "problem_type", None) == "multi_label_classification":
            return width > 1  # one logit of one label: a binary task
        return bool(labels_lib.looks_multi_hot(labels, width))

    def _class_names(self, width, multi_label):
        """The class names given, else the model's ``id2label`` when they fit the outputs."""
        if self.class_names is not None:
            return self.class_names
        names = _class_names_of(getattr(self._model, "config", None))
        classes = width if multi_label else labels_lib.num_classes_from_output_width(width)
        return names if names is not None and len(names) == classes else None

    # -- the Trainer's events -------------------------------------------------------------

    def _remember(self, args, state, kwargs):
        """What each event tells: the model, this process's rank, the Trainer's callbacks."""
        self._writes = bool(state.is_world_process_zero)
        self._world_size = int(getattr(args, "world_size", 1) or 1)
        if kwargs.get("model") is not None:
            self._model = kwargs["model"]
        if self._callbacks is None:
            handler = _caller(self, _is_handler)
            if handler is not None:
                self._callbacks = handler.callbacks

    def on_init_end(self, args, state, control, **kwargs):
        self._remember(args, state, kwargs)

    def on_train_begin(self, args, state, control, **kwargs):
        self._remember(args, state, kwargs)
        if self.log_dir is None and self._log_dir is not None:
            # A new training may write elsewhere (a hyperparameter search's trial).
            self._close()
            self._log_dir = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self._evaluated:
            self._first_evaluation = False

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._pending = None  # trainer.predict() is not an evaluation

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._remember(args, state, kwargs)
        if not state.is_world_process_zero or not logs:
            return
        values, origin = training_logs(logs)
        if not values:
            return
        try:
            self._write_logs(self._open_writer(args), values, origin, state.global_step)
        except Exception as error:  # recording never ends the training
            logger.exception("%s: the logs of step %d could not be written", WHO, state.global_step)
            self._write_problems([events.callback_error(error)], args, state.global_step)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        pending, self._pending = self._pending, None
        self._remember(args, state, kwargs)
        first, self._evaluated = self._first_evaluation, True
        if pending is not None and pending.batched:
            self._count_batches(pending)  # batches after the last compute_result=True, if any
        if pending is not None and pending.error is not None:
            raise pending.error  # set during the first evaluation only
        if first and (pending is None or pending.prediction is None and pending.counts is None):
            raise ValueError(_NO_PREDICTIONS)
        metrics = dict(metrics or {})
        try:
            prefix, split = split_of(metrics)
        except ValueError as error:
            if first:
                raise
            if state.is_world_process_zero:
                self._write_problems([events.callback_error(error)], args, state.global_step)
            return
        problems = (
            [events.bad_batch(split, message) for message in pending.problems] if pending else []
        )
        if pending is not None and pending.prediction is not None:
            try:
                pending.evaluation = self._check_whole(pending.prediction)
            except ValueError as error:
                if first:
                    raise
                problems.append(
                    events.bad_batch(split, "the evaluation was left out: %s" % (error,))
                )
            except Exception as error:  # recording never ends the training
                logger.exception("%s: the evaluation could not be counted", WHO)
                problems.append(events.callback_error(error))
            pending.prediction = None
        if pending is not None and pending.evaluation is not None:
            pending.records = self.example_ids is not False
            try:
                pending.evaluation = self._with_columns(pending.evaluation, split)
            except ValueError as error:
                if first:
                    raise
                pending.records = False
                problems.append(
                    events.bad_batch(split, "the example records were left out: %s" % (error,))
                )
        if state.is_world_process_zero:
            self._record(args, state.global_step, split, prefix, metrics, pending, problems)

    def on_train_end(self, args, state, control, **kwargs):
        self._close()

    # -- writing: process zero, never raises ----------------------------------------------

    def _record(self, args, step, split, prefix, metrics, pending, problems):
        """Write an evaluation (``pending``: a whole `inputs.Evaluation`, or counts made
        batch by batch; None for none) and its logs.
        """
        try:
            writer = self._open_writer(args)
            counts = None
            if pending is not None and pending.evaluation is not None:
                self._split_examples[split] = pending.evaluation.size
                self._describe(writer)
                counts = writer.add_checked_evaluation(
                    pending.evaluation, step, split, example_records=pending.records
                )
            elif pending is not None and pending.counts is not None:
                counts = pending.counts
                self._split_examples[split] = int(counts.count + counts.invalid)
                self._describe(writer)
                writer.add_counts(counts, step, split, examples=pending.examples)
            if counts is not None:
                if counts.invalid:  # the writer wrote this event with the counts
                    self._step_events_at(step).append(
                        events.nonfinite_predictions(split, counts.invalid)
                    )
            logs, origin = evaluation_logs(metrics, prefix, split)
            if logs:
                self._write_logs(writer, logs, origin, step)
        except Exception as error:
            logger.exception("%s: the evaluation at step %d could not be recorded", WHO, step)
            problems.append(events.callback_error(error))
        self._write_problems(problems, args, step)
        if self._writer is not None:
            self._writer.flush()

    def _open_writer(self, args):
        """The run's `MetricsDiagWriter`, opened (again) when it has none or was opened for
        other class names or another task than the layout's (before the first evaluation).
        """
        layout = self._layout
        if self._writer is not None and layout is not None:
            names = self._writer.class_names or labels_lib.default_class_names(layout.num_classes)
            if self._writer.multi_label != layout.multi_label or names != list(layout.class_names):
                self._close()
        if self._writer is None:
            if self._log_dir is None:
                self._log_dir = trainer_log_dir(args, self._callbacks)
            self._writer = MetricsDiagWriter(
                self._log_dir,
                class_names=None if layout is None else list(layout.class_names),
                thresholds=self.thresholds,
                multi_label=False if layout is None else layout.multi_label,
                scalars=self.scalars,
            )
        return self._writer

    def _write_logs(self, writer, values, origin, step):
        """Write ``values`` with every value written before at ``step``."""
        if self._logs_step != step:
            self._logs_step, self._step_logs = step, {}
        self._step_logs.update(values)
        self._logs_from.update(origin)
        writer.add_logs(self._step_logs, step)

    def _describe(self, writer):
        """Write the run description when a split is new, or the directory is."""
        described = (self._log_dir, tuple(sorted(self._split_examples)))
        if described == self._described:
            return
        layout, config = self._layout, getattr(self._model, "config", None)
        info = records.describe_run(
            output_width=layout.output_width,
            outputs_are_logits=layout.from_logits,
            label_format=layout.label_format,
            class_names=layout.class_names,
            split_examples=self._split_examples,
            num_thresholds=self.thresholds.size,
            counting=self._counting,
            model_name=None if self._model is None else type(self._model).__name__,
            metrics=sorted(self._logs_from),
            versions={"torch": torch.__version__, "transformers": transformers.__version__},
        )
        info["logs_from"] = dict(self._logs_from)  # Keras log key -> the Trainer's name
        info["problem_type"] = getattr(config, "problem_type", None)
        info["distributed"] = {"world_size": self._world_size}
        writer.add_run_info(info)
        self._described = described

    def _step_events_at(self, step):
        if self._events_step != step:
            self._events_step, self._step_events = step, []
        return self._step_events

    def _write_problems(self, problems, args, step):
        """Write ``problems`` (events) with every event written before at ``step``."""
        if not problems:
            return
        for problem in problems:
            logger.warning("%s, step %d: %s", WHO, step, problem["message"])
        written = self._step_events_at(step)
        written.extend(problems)
        try:
            self._open_writer(args).add_events(written, step)
        except Exception:
            logger.exception("%s: could not write the events of step %d", WHO, step)

    def _close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


def _labels_and_outputs(eval_prediction):
    """The labels and the scores (the first output) of an ``EvalPrediction``, as NumPy."""
    predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(predictions, list):
        raise ValueError(
            "%s: the predictions are a list of batches (eval_do_concat_batches=False): leave"
            " eval_do_concat_batches on, or count batch by batch with batch_eval_metrics=True" % WHO
        )
    while isinstance(predictions, tuple) and predictions:
        predictions = predictions[0]  # the model's first output: its logits
    if isinstance(labels, (tuple, list)):
        if len(labels) != 1:
            raise ValueError(
                "%s: the labels come as %d arrays (several label_names); the callback counts"
                " one label column: give the Trainer one" % (WHO, len(labels))
            )
        labels = labels[0]
    outputs = arrays.to_numpy(predictions, "%s: %s" % (WHO, NAMES[1]))
    if outputs.dtype.kind in "biu":
        raise ValueError(
            "%s: the predictions are integers (class ids?), not scores: the callback needs the"
            " logits or probabilities. Return them from preprocess_logits_for_metrics (e.g. a"
            " tuple (logits, logits.argmax(-1)): the first element is counted)" % WHO
        )
    return arrays.to_numpy(labels, "%s: %s" % (WHO, NAMES[0])), outputs


def _takes_compute_result(fn):
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True  # not introspectable: let the call tell
    return "compute_result" in parameters or any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


__all__ = [
    "MetricsDiagCallback",
    "evaluation_logs",
    "split_of",
    "trainer_log_dir",
    "training_logs",
]

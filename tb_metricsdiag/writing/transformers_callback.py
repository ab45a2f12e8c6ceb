"""`MetricsDiagCallback` for the Hugging Face Transformers ``Trainer``: what the Keras callback
records, at every evaluation, from the predictions the Trainer already gathered.

``compute_metrics`` is the one hook that sees an evaluation's predictions and labels (gathered
across processes by Accelerate's ``gather_for_metrics``, which drops the examples the
distributed sampler repeated), so the callback wraps it (`MetricsDiagCallback.compute_metrics`):
the wrapper counts them through `inputs` (the one input path of every writer) and calls the
user's function as the Trainer would. ``on_evaluate``, which follows, tells the split (from the
metrics' prefix) and the step (``state.global_step``), and the world's process zero writes the
counts, the Trainer's logged values under Keras's names and the run description with
`MetricsDiagWriter`.

The parts: `transformers_predictions` (what the wrapper receives, the layout, an evaluation
kept or counted batch by batch until ``on_evaluate``), `transformers_columns` (ids, previews
and groups read from the eval dataset), `transformers_names` (the split of an evaluation, the
logged names), `transformers_trainer` (the Trainer, its eval dataset and its TensorBoard
directory, which Transformers does not hand a callback) and `callback_writing` (the writer,
shared with the Lightning callback); this module holds the Trainer's events and the writing.

A configuration mistake raises a ValueError naming the fix during the first evaluation (all of
its eval datasets); once training went on past it, nothing the callback meets ends the training:
problems become events (`core/events.py`) that the diagnostics report.
"""

import logging
import os

import torch
import transformers

from tb_metricsdiag.core import events
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import (
    callback_writing,
    example_recorder,
    inputs,
    transformers_names,
    transformers_predictions,
)
from tb_metricsdiag.writing.callback_writing import REDUCE_AUTO, REDUCE_COUNTS, REDUCE_ROWS, WHO
from tb_metricsdiag.writing.transformers_columns import DatasetColumns
from tb_metricsdiag.writing.transformers_predictions import (
    COUNTING_BATCHES,
    COUNTING_WHOLE,
    NAMES,
    PendingEvaluation,
)
from tb_metricsdiag.writing.transformers_trainer import (
    caller,
    evaluated_dataset,
    is_handler,
    is_trainer,
    trainer_log_dir,
)

logger = logging.getLogger(__name__)

_NO_PREDICTIONS = (
    "MetricsDiagCallback: this evaluation handed the callback no predictions. Pass"
    " compute_metrics=cb.compute_metrics(your_compute_metrics_or_None) to the Trainer beside"
    " callbacks=[cb], give the eval dataset its labels, and leave prediction_loss_only off"
)


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
      reduce: how an evaluation reaches the callback. ``"rows"``: whole, as the Trainer
        gathered it for ``compute_metrics`` (exact AP, label issues, ids, previews, groups;
        the Trainer holds every score on every process). ``"counts"``: batch by batch, each
        batch counted as the Trainer gathers it, which needs ``batch_eval_metrics=True``
        (a ValueError naming the fix when the Trainer is made or starts training without it):
        process zero then holds the fixed-size counts and one batch whatever the eval set, the
        AP comes from the threshold grid, the examples are named by their position and no
        label issues are recorded. ``"auto"`` (default): as ``batch_eval_metrics`` says,
        with a warning, once, when a whole evaluation holds more than
        `callback_writing.GATHER_LIMIT_VALUES` scores.

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
        reduce=REDUCE_AUTO,
        scalars=True,
    ):
        super().__init__()
        self.columns = DatasetColumns(example_ids, previews, groups)
        if reduce not in (REDUCE_AUTO, REDUCE_ROWS, REDUCE_COUNTS):
            raise ValueError(
                "%s: reduce must be 'auto' (as batch_eval_metrics says), 'rows' (the whole"
                " gathered evaluation) or 'counts' (each gathered batch counted as it comes),"
                " got %r" % (WHO, reduce)
            )
        if reduce == REDUCE_COUNTS and self.columns:
            raise ValueError(
                "%s: reduce='counts' keeps no rows, so the example records name them by their"
                " positions: leave example_ids, previews and groups out, or use reduce='rows'" % WHO
            )
        self.reduce = reduce
        self.example_ids = example_ids
        self.class_names, self.thresholds = callback_writing.checked_options(
            log_dir,
            "the Trainer's TensorBoard directory",
            from_logits=from_logits,
            multi_label=multi_label,
            scalars=scalars,
            class_names=class_names,
            thresholds=thresholds,
        )
        self.scalars = scalars
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.from_logits = from_logits
        self.multi_label = multi_label
        self._layout = None  # inputs.Layout: fixed by the first evaluation
        self._pending = None  # `PendingEvaluation`
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
        self._said_too_large = False  # reduce="auto": the warning of a large evaluation given

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
            pending = self._pending = PendingEvaluation(batched, self._first_evaluation)
        pending.complete = bool(compute_result)
        if not self._writes and not self._first_evaluation:
            return  # another process: the first evaluation checked, process zero counts
        if not batched:
            pending.prediction = eval_prediction
        elif pending.error is None:
            try:
                labels, outputs = transformers_predictions.labels_and_outputs(eval_prediction)
                if self._layout is None:
                    self._first_layout(labels, outputs, batched=True)
                if pending.rows == 0 and self.example_ids is not False:
                    pending.examples = self._batch_examples()
                pending.add_batch(labels, outputs)
            except ValueError as error:
                pending.left_out(error)
            except Exception as error:  # recording never ends the training
                logger.exception("%s: a batch could not be counted", WHO)
                pending.failed(error)
            if compute_result or pending.buffered >= transformers_predictions.BATCH_BUFFER_VALUES:
                pending.count_batches(self._layout, self.thresholds)

    def _check_wiring(self, batched, fn):
        self._check_reduce(batched)
        trainer = caller(self, is_trainer)
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
        if batched and fn is not None and not transformers_predictions.takes_compute_result(fn):
            raise ValueError(
                "%s: with batch_eval_metrics=True your compute_metrics must take a"
                " compute_result argument (Transformers calls it once per batch), as"
                " def compute_metrics(eval_prediction, compute_result): ..." % WHO
            )

    def _first_layout(self, labels, outputs, batched):
        """Fix the run's layout from the first evaluation (batch) counted."""
        evaluation = transformers_predictions.first_evaluation(
            self._model,
            labels,
            outputs,
            class_names=self.class_names,
            multi_label=self.multi_label,
            from_logits=self.from_logits,
        )
        self._layout = evaluation.layout
        self._counting = COUNTING_BATCHES if batched else COUNTING_WHOLE
        return evaluation

    def _batch_examples(self):
        """An `example_recorder.EpochExamples` for an evaluation counted batch by batch: its
        rows are the positions of the dataset being evaluated (`evaluated_dataset`), or None
        when its size cannot be told.
        """
        found = evaluated_dataset()
        if found is None:
            return None
        _, dataset = found
        try:
            size = len(dataset)
        except TypeError:  # an iterable dataset: no positions to name
            return None
        return example_recorder.EpochExamples(
            self._layout, size, label_issues=False, thresholds=self.thresholds
        )

    def _check_whole(self, eval_prediction):
        """The `inputs.Evaluation` of one whole evaluation (exact AP: its scores are kept
        while counted), without ids, previews and groups.
        """
        labels, outputs = transformers_predictions.labels_and_outputs(eval_prediction)
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
        return self.columns.attach(evaluation, split, evaluated_dataset())

    # -- the Trainer's events -------------------------------------------------------------

    def _remember(self, args, state, kwargs):
        """What each event tells: the model, this process's rank, the Trainer's callbacks."""
        self._writes = bool(state.is_world_process_zero)
        self._world_size = int(getattr(args, "world_size", 1) or 1)
        if kwargs.get("model") is not None:
            self._model = kwargs["model"]
        if self._callbacks is None:
            handler = caller(self, is_handler)
            if handler is not None:
                self._callbacks = handler.callbacks

    def _check_reduce(self, batched):
        """ValueError unless ``reduce`` fits how the Trainer hands the evaluation over
        (``batched``: its ``batch_eval_metrics``), naming the fix.
        """
        if self.reduce == REDUCE_COUNTS and not batched:
            raise ValueError(
                "%s: reduce='counts' counts each batch as the Trainer gathers it, which the"
                " Trainer does only with batch_eval_metrics=True: pass"
                " TrainingArguments(..., batch_eval_metrics=True) (your compute_metrics then"
                " takes compute_result), or reduce='rows'" % WHO
            )
        if self.reduce == REDUCE_ROWS and batched:
            raise ValueError(
                "%s: reduce='rows' counts the whole gathered evaluation, but"
                " batch_eval_metrics=True hands it over batch by batch: leave"
                " batch_eval_metrics off, or use reduce='counts'" % WHO
            )

    def on_init_end(self, args, state, control, **kwargs):
        self._remember(args, state, kwargs)
        self._check_reduce(bool(getattr(args, "batch_eval_metrics", False)))

    def on_train_begin(self, args, state, control, **kwargs):
        self._remember(args, state, kwargs)
        self._check_reduce(bool(getattr(args, "batch_eval_metrics", False)))
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
        values, origin = transformers_names.training_logs(logs)
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
            pending.count_batches(
                self._layout, self.thresholds
            )  # batches after the last compute_result=True, if any
        if pending is not None and pending.error is not None:
            raise pending.error  # set during the first evaluation only
        if first and (pending is None or pending.prediction is None and pending.counts is None):
            raise ValueError(_NO_PREDICTIONS)
        metrics = dict(metrics or {})
        try:
            prefix, split = transformers_names.split_of(metrics)
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
                self._say_if_too_large(pending.evaluation)
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
            logs, origin = transformers_names.evaluation_logs(metrics, prefix, split)
            if logs:
                self._write_logs(writer, logs, origin, step)
        except Exception as error:
            logger.exception("%s: the evaluation at step %d could not be recorded", WHO, step)
            problems.append(events.callback_error(error))
        self._write_problems(problems, args, step)
        if self._writer is not None:
            self._writer.flush()

    def _say_if_too_large(self, evaluation):
        """``reduce="auto"``: warn, once, of a whole evaluation too large to hold on every
        process (`callback_writing.GATHER_LIMIT_VALUES`), naming the counts mode.
        """
        if self.reduce != REDUCE_AUTO or self._said_too_large:
            return
        values = evaluation.size * self._layout.output_width
        if values > callback_writing.GATHER_LIMIT_VALUES:
            self._said_too_large = True
            logger.warning(
                "%s: this evaluation's %d scores are held whole on every process (the Trainer"
                " gathers them for compute_metrics); with TrainingArguments(...,"
                " batch_eval_metrics=True) and reduce='counts' each gathered batch is counted as"
                " it comes, and process zero's memory stays flat",
                WHO,
                values,
            )

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
            self._writer = callback_writing.layout_writer(
                self._log_dir, layout, self.thresholds, self.scalars
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
        info = callback_writing.describe_layout(
            layout,
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
        written = self._step_events_at(step)
        written.extend(problems)
        callback_writing.write_problems(
            lambda: self._open_writer(args), problems, written, step, "step"
        )

    def _close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


__all__ = ["MetricsDiagCallback"]

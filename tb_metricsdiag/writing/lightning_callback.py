"""`MetricsDiagCallback` for PyTorch Lightning: what the Keras callback records, from a
``LightningModule`` left as it is.

Per validation batch the callback takes the module's scores and the labels
(`lightning_batches`: a ``scores_and_labels`` callable, else a ``{"scores", "labels"}`` dict returned by
``validation_step``, else, for an ``(x, y)`` batch, the output of the module's own call in
``validation_step`` (`lightning_batches.ModuleOutput`: forward hooks put on the module for
each validation epoch) or, when that is not one tensor of the batch's rows, one extra
``forward(x)``) and keeps them on their device, with the batch's ids, previews and groups (a ``validation_step`` dict's, or the
``example_ids`` / ``previews`` callables'); at the end of the validation epoch they are gathered
across processes (`lightning_distributed.gather`, without the rows ``DistributedSampler``
repeated, in the dataset's order) and global rank 0 writes them through `MetricsDiagWriter`,
with ``trainer.callback_metrics`` under Keras's names (`log_names.keras_logs`) and, once, the
run description. In the counts mode (``reduce``; `lightning_reduce`) each process counts its
own rows in chunks instead, and the fixed-size counts are summed across processes. The
writer, its run description and the events are made as the Transformers callback's
(`callback_writing`); this module holds the hooks and what rank 0 writes when.

The first validation batch (the sanity check's, when there is one) is checked on the writers'
one input path (`inputs.check_evaluation`, its groups by `inputs.check_groups`) and fixes the
stage's `inputs.Layout`; a mistake raises a ``ValueError`` naming the fix. Later batches are
checked by their shapes only (`inputs.Layout.check_shapes`, once per shape; groups by their
row counts), so nothing waits for the device; each epoch's rows are checked once more, values
and groups included, when rank 0 counts them. After the first batch nothing the callback
meets ends the training: problems become events the diagnostics report.

With ``train_sample``, the train/validation duplicate check (`overlap`) runs once per ``fit``
(`lightning_overlap.OverlapCheck`): the inputs of the first training batches (or the given
training inputs) and of the first validation epoch are hashed, and rank 0 writes the result
after that epoch.
"""

import collections
import logging
import os

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl

from tb_metricsdiag.core import events
from tb_metricsdiag.writing import (
    callback_writing,
    lightning_batches,
    lightning_distributed,
    lightning_overlap,
    lightning_reduce,
    log_names,
)
from tb_metricsdiag.writing.callback_writing import REDUCE_AUTO, REDUCE_COUNTS, REDUCE_ROWS
from tb_metricsdiag.writing.lightning_batches import FROM_FORWARD, SPLIT, concatenated, numpy_of
from tb_metricsdiag.writing.lightning_distributed import RowExamples

logger = logging.getLogger(__name__)


class _Validation(
    collections.namedtuple(
        "_Validation", "epoch labels scores examples problems distributed counts cells"
    )
):
    """One validation epoch on rank 0 until written: its gathered rows (NumPy; None when
    none) and their `RowExamples` (None: no example records), or, reduced as counts, its
    ``counts`` and ``cells`` (`example_recorder.EpochExamples`, or None).
    """


class MetricsDiagCallback(pl.Callback):
    """Writes per-epoch confusion matrices, PR threshold counts, AP and the logged metrics.

    Args:
      log_dir: directory of the run's event files; default the ``TensorBoardLogger``'s
        ``log_dir`` (the run then sits beside that logger's scalars), else
        ``trainer.default_root_dir``.
      class_names: one name per class; default ``"0"``..``"C-1"``.
      thresholds: ascending score thresholds of the PR counts; default
        `counting.default_thresholds` (201 values spaced in logit).
      from_logits: whether the scores are logits; default (None) detected from the first
        epoch's values (outside [0, 1], or rows that do not sum to 1).
      scores_and_labels: ``f(module, batch, outputs) -> (scores, labels)`` for a module whose
        validation batches are not ``(x, y)`` or whose ``forward`` does not return the scores
        (``outputs`` is what ``validation_step`` returned).
      multi_label: whether the module is multi-label (one sigmoid score or logit per label,
        multi-hot labels ``[batch, K]``; each label counted on its own, as
        `MetricsDiagWriter` with ``multi_label=True``); default (None) detected from the first
        validation batch: labels of the scores' shape whose 0/1 rows set more or fewer than
        one label. Give True when a batch of one label per row can come first.
      train_sample: turns on the train/validation duplicate check (the ``train_val_overlap``
        rule): an int N hashes the inputs of the first N training examples of the first epoch
        as they are trained on (a shuffled dataloader makes them a random sample; an epoch of
        fewer than N examples is checked whole), or the training inputs themselves (a tensor
        or NumPy array, or ``(x, y)``). The validation inputs of the first validation epoch
        are hashed too, and the duplicates are written after it. Batches must be ``(x, y)``
        (``x`` a tensor, or a tuple / list / dict of tensors); inputs are compared byte for
        byte, so random augmentations hide duplicates. Cost: one hash per example, a copy of
        the inputs to the CPU, about 100 bytes of memory per training example hashed; never
        an extra pass over the data. A problem (batches not ``(x, y)``, inputs laid out
        unlike the validation ones) is recorded for the diagnostics, never raised.
      example_ids: the validation examples' ids for the example records (which examples fall
        in each confusion cell, flips, label issues): None (default) takes the ``"ids"`` of
        a dict returned by ``validation_step`` when it has them, else the examples' indices
        in the validation dataset (under DDP, as its ``DistributedSampler`` hands them out);
        a callable ``f(module, batch, outputs) -> ids`` (one per row, integers or strings
        of 1 to 128 characters, unique in the epoch); False: no example records.
      previews: ``f(module, batch, outputs) -> previews`` (one per row: strings, or images
        ``[b, H, W]`` / ``[b, H, W, 1 | 3]`` of uint8 or floats in [0, 1]); default the
        ``"previews"`` of a dict returned by ``validation_step``, else none.
      reduce: how the processes' rows come together under DDP. ``"rows"``: every process's
        scores are gathered to every process and global rank 0 counts them (exact AP, label
        issues). ``"counts"``: each process counts its own rows as they come (in chunks of
        `lightning_reduce.BUFFER_VALUES` values) and the fixed-size counts are summed
        (`lightning_reduce`): the confusion counts, threshold counts, calibration bins and the
        top examples of each cell, so rank 0 holds O(C x T) whatever the rows and the
        processes; the AP then comes from the threshold grid (marked so, as in the Keras
        metric mode), label issues are not recorded, and the examples are named by their
        dataset index (ids, previews and groups need ``"rows"``). ``"auto"`` (default):
        ``"rows"``, until an epoch's scores hold more than
        `callback_writing.GATHER_LIMIT_VALUES` values; that epoch and the later ones are then
        reduced as counts (never when ``validation_step`` gives ids, previews or groups).
        One process always counts its own rows exactly (``"counts"`` then only streams them).
      scalars: whether each evaluation also writes its headline scalars (accuracy, balanced
        accuracy, macro F1, ECE, per-class recall and precision) under ``metricsdiag/<split>/``
        for TensorBoard's own Scalars and HParams dashboards (`records.headline_scalars`).

    A dict returned by ``validation_step`` may also hold ``"groups"``: ``{key: one value per
    row}`` (strings, integers or booleans; the contract's Slices). Ids, previews and groups
    are checked at the first validation batch (a ValueError naming the fix), travel with
    their rows across processes, and are checked once more, for the whole epoch, when rank 0
    writes it (duplicate ids then leave that epoch's example records out, with an event).

    Where the scores come from, per validation batch: ``scores_and_labels`` when given; else
    the ``"scores"`` and ``"labels"`` of a dict returned by ``validation_step`` (no extra
    pass); else, for an ``(x, y)`` batch, what the module's own call in ``validation_step``
    returned (``self(x)``, noted by forward hooks the callback puts on the module during each
    validation epoch; no extra pass) when that is one call giving a tensor of the batch's
    rows, otherwise (several calls, as in test-time augmentation; ``self.net(x)``; other
    outputs) ``module(x)``, one extra forward pass (in eval mode and without gradients, as
    Lightning runs validation). Only the first
    validation dataloader is counted; the sanity-check pass is checked, never written. The
    rows stay on their device until the epoch ends.
    """

    def __init__(
        self,
        log_dir=None,
        class_names=None,
        *,
        thresholds=None,
        from_logits=None,
        scores_and_labels=None,
        multi_label=None,
        train_sample=None,
        example_ids=None,
        previews=None,
        reduce=REDUCE_AUTO,
        scalars=True,
    ):
        super().__init__()
        self.log_dir = log_dir
        self.class_names = class_names
        self.thresholds = thresholds
        self.from_logits = from_logits
        self.scores_and_labels = scores_and_labels
        self.multi_label = multi_label
        self.train_sample = train_sample
        self.example_ids = example_ids
        self.previews = previews
        self.reduce = reduce
        self.scalars = scalars
        self._class_names = None  # checked (`inputs.check_class_names`) at setup
        self._overlap = None  # the `lightning_overlap.OverlapCheck` of the current fit
        self._thresholds = None
        self._log_dir = None
        self._writer = None
        # The module's own output in validation_step, noted while a validation epoch runs.
        self._module_output = lightning_batches.ModuleOutput()
        self._start_stage()
        self._scores, self._labels, self._examples, self._problems = [], [], [], []
        self._names_before = {}

    def _start_stage(self):
        """Forget what the last ``fit`` / ``validate`` learnt of the module and its data."""
        # The `inputs.Layout` of the first batch; its from_logits, unless given, is decided by
        # the first epoch counted (more rows than one batch of a model not trained yet).
        self._layout = None
        self._accepted_shapes = set()  # `lightning_batches.check_batch`'s
        self._source = None  # FROM_CALLABLE / FROM_STEP_OUTPUTS / FROM_FORWARD
        self._examples_given = None  # `RowExamples.given` of the first batch
        self._large = False  # reduce="auto": an epoch was too large to gather
        self._streaming = False  # this epoch's rows are counted by each process
        self._local = None  # this epoch's `lightning_reduce.LocalCounts`
        self._model_name = None
        self._info_written = False
        self._pending = None  # rank 0: a `_Validation` not written yet
        self._validated_epoch = None
        self._validation_names = set()  # metrics the last validation logged
        self._ever_validation_names = set()
        self._logs_from = {}

    # -- configuration --------------------------------------------------------------------

    def _check_configuration(self):
        self._class_names, self._thresholds = callback_writing.checked_options(
            self.log_dir,
            "the TensorBoardLogger's directory",
            from_logits=self.from_logits,
            multi_label=self.multi_label,
            scalars=self.scalars,
            class_names=self.class_names,
            thresholds=self.thresholds,
        )
        if self.scores_and_labels is not None and not callable(self.scores_and_labels):
            raise ValueError(
                "MetricsDiagCallback: scores_and_labels must be a callable"
                " f(module, batch, outputs) -> (scores, labels)"
            )
        if not (self.example_ids in (None, False) or callable(self.example_ids)):
            raise ValueError(
                "MetricsDiagCallback: example_ids must be None (the validation_step's 'ids',"
                " else the dataset indices), a callable f(module, batch, outputs) -> ids, or"
                " False (no example records), got %r" % (self.example_ids,)
            )
        if self.previews is not None and not callable(self.previews):
            raise ValueError(
                "MetricsDiagCallback: previews must be None or a callable"
                " f(module, batch, outputs) -> one preview per row, got %r" % (self.previews,)
            )
        if self.reduce not in (REDUCE_AUTO, REDUCE_ROWS, REDUCE_COUNTS):
            raise ValueError(
                "MetricsDiagCallback: reduce must be 'auto', 'rows' (gather the rows) or"
                " 'counts' (sum each process's counts), got %r" % (self.reduce,)
            )
        if self.reduce == REDUCE_COUNTS and self.previews is not None:
            raise ValueError(
                "MetricsDiagCallback: reduce='counts' names the examples by their dataset index"
                " and keeps no previews: use reduce='rows' for previews"
            )
        if self.example_ids is False and self.previews is not None:
            raise ValueError(
                "MetricsDiagCallback: previews need example records, which example_ids=False"
                " turns off: drop one of them"
            )
        return lightning_overlap.checked_train_sample(self.train_sample)

    def _resolve_log_dir(self, trainer):
        if self.log_dir is not None:
            return os.fspath(self.log_dir)
        for candidate in trainer.loggers:
            if any(c.__name__ == "TensorBoardLogger" for c in type(candidate).__mro__):
                return candidate.log_dir
        return trainer.default_root_dir

    def setup(self, trainer, pl_module, stage):
        train_sample = self._check_configuration()
        self._start_stage()
        # The duplicate check belongs to a fit (trainer.validate trains on nothing).
        fit_with_check = stage == "fit" and self.train_sample is not None
        self._overlap = lightning_overlap.OverlapCheck(*train_sample) if fit_with_check else None
        self._model_name = type(pl_module).__name__
        self._log_dir = self._resolve_log_dir(trainer) if trainer.is_global_zero else None

    # -- per batch ------------------------------------------------------------------------

    def _gives_examples(self):
        """Whether the batches give ids, previews or groups (the first batch's, once seen)."""
        given = self._examples_given
        return given is not None and (given[0] or given[1] or given[2] is not None)

    def on_validation_epoch_start(self, trainer, pl_module):
        self._scores, self._labels, self._examples, self._problems = [], [], [], []
        if self.scores_and_labels is None and self._source in (None, FROM_FORWARD):
            self._module_output.attach(pl_module)  # scores may come from forward(x)
        self._local = None
        self._streaming = self.reduce == REDUCE_COUNTS or (
            self._large and not self._gives_examples()
        )
        self._names_before = dict(trainer.callback_metrics)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        try:
            if dataloader_idx == 0:
                self._validation_batch(trainer, pl_module, outputs, batch, batch_idx)
        finally:
            self._module_output.forget()  # the module's calls of this batch, whatever they gave

    def _validation_batch(self, trainer, pl_module, outputs, batch, batch_idx):
        first = self._layout is None
        try:
            scores, labels, source = lightning_batches.batch_scores(
                self.scores_and_labels, pl_module, batch, outputs, self._module_output
            )
            if isinstance(scores, torch.Tensor) and scores.ndim and not len(scores):
                return  # no rows: nothing to check or count
            if first:
                self._layout = lightning_batches.first_layout(
                    scores,
                    labels,
                    source,
                    multi_label=self.multi_label,
                    from_logits=self.from_logits,
                    class_names=self._class_names,
                )
                self._source = source
                labels = lightning_batches.as_tensor(labels, scores.device)
            else:
                labels = lightning_batches.check_batch(
                    self._layout, scores, labels, self._accepted_shapes
                )
            examples = lightning_batches.batch_examples(
                self.example_ids, self.previews, pl_module, batch, outputs, len(labels), first
            )
            if first:
                self._examples_given = examples.given()
                if self.reduce == REDUCE_COUNTS and self._gives_examples():
                    raise ValueError(
                        "reduce='counts' names the examples by their dataset index and records"
                        " no previews or slices: leave ids, previews and groups out of"
                        " validation_step's dict, or use reduce='rows'"
                    )
            elif examples.given() != self._examples_given:
                raise ValueError(
                    "its ids, previews or groups (given: %s) are not given as in the first"
                    " batch (%s)" % (examples.given(), self._examples_given)
                )
        except Exception as error:
            if first:
                raise  # the first batch: a mistake raises
            self._problems.append(  # recording never ends the training
                events.bad_batch(SPLIT, "validation batch %d was left out: %s" % (batch_idx, error))
            )
            return
        if trainer.sanity_checking:
            return
        scores, labels = lightning_batches.kept_rows(self._layout, scores, labels)
        self._scores.append(scores)
        self._labels.append(labels)
        self._examples.append(examples)
        if self._streaming and sum(s.numel() for s in self._scores) >= (
            lightning_reduce.BUFFER_VALUES
        ):
            self._count_kept(trainer)
        overlap = self._overlap
        if overlap is not None and not overlap.validation_done and overlap.problem is None:
            try:
                overlap.add_validation_batch(batch)
            except Exception as error:  # recording never ends the training
                overlap.fail(error)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        overlap = self._overlap
        if (
            overlap is not None
            and trainer.is_global_zero
            and overlap.wants_train_batch(trainer.current_epoch)
        ):
            try:
                overlap.add_train_batch(batch)
            except Exception as error:  # recording never ends the training
                overlap.fail(error)

    # -- per epoch: never raises ----------------------------------------------------------

    def on_validation_epoch_end(self, trainer, pl_module):
        self._module_output.remove()
        if trainer.sanity_checking:
            return
        self._validation_names = {
            name
            for name, value in trainer.callback_metrics.items()
            if self._names_before.get(name) is not value  # a new value: logged by validation
        }
        self._ever_validation_names |= self._validation_names
        self._validated_epoch = trainer.current_epoch
        problems, labels, scores, distributed = list(self._problems), None, None, None
        overlap = self._overlap
        digests = None
        if overlap is not None and not overlap.validation_done:
            overlap.validation_done = True
            digests = overlap.validation_digests
            if overlap.problem is not None or len(digests) != sum(map(len, self._scores)):
                digests = None  # unusable: every process must still take part in the gathering
        examples = None
        if self._examples:
            try:
                examples = RowExamples.concatenated(self._examples)
            except Exception as error:  # e.g. previews of other sizes than the first batch's
                message = "the example records of epoch %d were left out: %s"
                problems.append(events.bad_batch(SPLIT, message % (trainer.current_epoch, error)))
        counts = cells = None
        try:
            world = lightning_distributed.world_size()
            if not self._streaming and self.reduce == REDUCE_AUTO and world > 1:
                self._streaming = self._too_large_to_gather()
            if self._streaming:
                counts, cells, distributed = self._reduced(trainer, problems)
                labels = scores = examples = None
            elif world > 1:
                labels, scores = concatenated(self._labels), concatenated(self._scores)
                gathered = lightning_distributed.gather(
                    trainer, labels, scores, digests, examples, self.example_ids is not False
                )
                labels, scores, examples, distributed, problem, digests = gathered
                if problem:
                    problems.append(events.distributed_counts(SPLIT, problem))
            else:
                labels = numpy_of(concatenated(self._labels))
                scores = numpy_of(concatenated(self._scores))
        except Exception as error:
            logger.exception("MetricsDiagCallback: the validation outputs could not be gathered")
            problems.append(events.callback_error(error))
            labels = scores = digests = examples = None
        if overlap is not None and digests is None:
            overlap.fail("the validation inputs of every process could not be gathered")
        elif overlap is not None:
            overlap.validation_digests = digests
        self._scores, self._labels, self._examples, self._problems = [], [], [], []
        if self.example_ids is False:
            examples = None
        if trainer.is_global_zero:
            self._pending = _Validation(
                trainer.current_epoch,
                labels,
                scores,
                examples,
                problems,
                distributed,
                counts,
                cells,
            )
        if trainer.state.fn != "fit":  # trainer.validate(): no training epoch end to wait for
            self._flush(trainer, with_train_logs=False)

    # -- counts mode (`lightning_reduce`) ---------------------------------------------------

    def _too_large_to_gather(self):
        """``reduce="auto"``: whether this epoch is too large to gather (a collective); then
        later epochs stream too.
        """
        too_large = lightning_reduce.too_large_to_gather(self._scores)
        self._large = too_large and not self._gives_examples()
        return self._large

    def _count_kept(self, trainer):
        """Count the kept batches into this epoch's `LocalCounts` and let them go."""
        labels, scores = concatenated(self._labels), concatenated(self._scores)
        self._labels, self._scores = [], []
        if labels is None:
            return
        labels, scores = numpy_of(labels), numpy_of(scores)
        try:
            if self._local is None:
                self._local = lightning_reduce.new_local_counts(
                    trainer,
                    self._layout,
                    self._thresholds,
                    labels,
                    scores,
                    from_logits=self.from_logits,
                    named=self.example_ids is not False,
                )
            self._local.update(labels, scores)
        except ValueError as error:
            self._problems.append(
                events.bad_batch(
                    SPLIT, "%d validation rows were left out: %s" % (len(labels), error)
                )
            )
        except Exception as error:  # recording never ends the training
            logger.exception("MetricsDiagCallback: validation rows could not be counted")
            self._problems.append(events.callback_error(error))

    def _reduced(self, trainer, problems):
        """The epoch's counts summed over the processes: ``(counts, cells, distributed)``;
        a collective under DDP (every process calls it, with or without rows).
        """
        self._count_kept(trainer)
        counts, cells, distributed, self._layout = lightning_reduce.reduced(
            self._local, self._layout, self._thresholds, self.example_ids is not False, problems
        )
        return counts, cells, distributed

    def on_train_epoch_end(self, trainer, pl_module):
        self._flush(trainer, with_train_logs=True)

    def _epoch_logs(self, trainer, with_train_logs):
        """This epoch's Keras-named logs (`log_names.keras_logs`), and which metric each came
        from.
        """
        validated = self._validated_epoch == trainer.current_epoch
        names = self._validation_names if validated else set()
        metrics = trainer.callback_metrics
        if not with_train_logs:
            metrics = {name: value for name, value in metrics.items() if name in names}
        return log_names.keras_logs(metrics, names, self._ever_validation_names - names)

    def _flush(self, trainer, with_train_logs):
        """Rank 0: write the pending evaluation and this epoch's logs; never raises."""
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        pending, self._pending = self._pending, None
        problems = list(pending.problems) if pending else []
        try:
            logs, origin = self._epoch_logs(trainer, with_train_logs)
            self._logs_from.update(origin)
            writer = self._open_writer()
            if pending is not None and pending.labels is not None and len(pending.labels):
                problems.extend(self._write_evaluation(writer, pending))
            elif pending is not None and pending.counts is not None and pending.counts.count:
                self._write_run_info(writer, pending)
                writer.add_counts(pending.counts, pending.epoch, SPLIT, examples=pending.cells)
            self._write_overlap(writer)
            if logs:
                writer.add_logs(logs, epoch)
        except Exception as error:
            logger.exception("MetricsDiagCallback: epoch %d could not be recorded", epoch)
            problems.append(events.callback_error(error))
        self._write_problems(problems, epoch)
        if self._writer is not None:
            self._writer.flush()

    def _write_evaluation(self, writer, pending):
        """Check and write a `_Validation` (the run description first, once); returns the
        problems. The first epoch counted decides ``from_logits`` when it was not given.
        """
        evaluation, with_examples, problems = lightning_batches.epoch_evaluation(
            pending, self._layout, self.from_logits
        )
        if evaluation is None:
            return problems
        self._layout = evaluation.layout
        self._write_run_info(writer, pending)
        writer.add_checked_evaluation(
            evaluation, pending.epoch, split=SPLIT, example_records=with_examples
        )
        return problems

    def _write_overlap(self, writer, last_chance=False):
        """Rank 0: write the duplicate check once its validation digests are in (or, at the
        end of the fit, that no validation epoch came).
        """
        overlap = self._overlap
        if overlap is None or overlap.written:
            return
        if overlap.validation_done:
            writer.add_overlap(overlap.result())
        elif last_chance:
            writer.add_overlap({"error": "no validation epoch ran, so nothing was compared"})
        else:
            return
        overlap.written = True

    def _write_problems(self, problems, epoch):
        if problems:
            callback_writing.write_problems(self._open_writer, problems, problems, epoch, "epoch")

    def _write_run_info(self, writer, pending):
        """The run description, once, before the first evaluation written."""
        if not self._info_written:
            writer.add_run_info(self._run_info(pending))
            self._info_written = True

    def _open_writer(self):
        if self._writer is None:
            # Classes, their names and the task come with each checked evaluation's layout
            # (and with the layout of the first batch, for counts summed across processes).
            self._writer = callback_writing.layout_writer(
                self._log_dir, self._layout, self._thresholds, self.scalars
            )
        return self._writer

    def _run_info(self, pending):
        info = callback_writing.describe_layout(
            self._layout,
            split_examples={
                SPLIT: (
                    len(pending.labels)
                    if pending.labels is not None
                    else pending.counts.count + pending.counts.invalid
                )
            },
            num_thresholds=self._thresholds.size,
            counting="lightning_" + self._source,
            model_name=self._model_name,
            metrics=sorted(self._logs_from),
            versions={"torch": torch.__version__, "lightning": pl.__version__},
        )
        info["logs_from"] = dict(self._logs_from)  # Keras log key -> Lightning's metric name
        info["distributed"] = pending.distributed or {"world_size": 1}
        return info

    # -- the end --------------------------------------------------------------------------

    def _close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def on_fit_end(self, trainer, pl_module):
        if self._pending is not None:  # a validation after the last training epoch ended
            self._flush(trainer, with_train_logs=False)
        if trainer.is_global_zero and self._overlap is not None and not self._overlap.written:
            try:
                self._write_overlap(self._open_writer(), last_chance=True)
            except Exception:
                logger.exception("MetricsDiagCallback: could not write the overlap check")

    def teardown(self, trainer, pl_module, stage):
        self._module_output.remove()
        self._close()

    def on_exception(self, trainer, pl_module, exception):
        self._module_output.remove()
        self._close()


__all__ = ["MetricsDiagCallback"]

"""`MetricsDiagCallback` for PyTorch Lightning: what the Keras callback records, from a
``LightningModule`` left as it is.

Per validation batch the callback takes the module's scores and the labels (`_batch_scores`:
a ``scores_and_labels`` callable, else a ``{"scores", "labels"}`` dict returned by
``validation_step``, else one extra ``forward(x)`` of an ``(x, y)`` batch) and keeps them on
their device; at the end of the validation epoch they are gathered across processes
(`lightning_distributed.gather`, without the rows ``DistributedSampler`` repeated) and global
rank 0 writes them through `MetricsDiagWriter`, with ``trainer.callback_metrics`` under Keras's
names (`log_names.keras_logs`) and, once, the run description.

The first validation batch (the sanity check's, when there is one) is checked on the writers'
one input path (`inputs.check_evaluation`) and fixes the stage's `inputs.Layout`; a mistake
raises a ``ValueError`` naming the fix. Later batches are checked by their shapes only
(`inputs.Layout.check_shapes`), so nothing waits for the device; each epoch's rows are checked
once more, values included, when rank 0 counts them. After the first batch nothing the callback
meets ends the training: problems become events the diagnostics report.

With ``train_sample``, the train/validation duplicate check (`overlap`) runs once per ``fit``
(`lightning_overlap.OverlapCheck`): the inputs of the first training batches (or the given
training inputs) and of the first validation epoch are hashed, and rank 0 writes the result
after that epoch.
"""

import collections.abc
import dataclasses
import logging
import os

import numpy as np
import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl

from tb_metricsdiag.core import events
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import (
    arrays,
    inputs,
    lightning_distributed,
    lightning_overlap,
    log_names,
    records,
)
from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

logger = logging.getLogger(__name__)

SPLIT = "validation"
WHO = "MetricsDiagCallback"
# What the callback calls a batch's labels and scores in its messages (`inputs.NAMES`).
NAMES = ("labels", "scores")

# Where the scores of a batch come from (`MetricsDiagCallback.scores_and_labels`, the run info).
FROM_CALLABLE = "scores_and_labels"
FROM_STEP_OUTPUTS = "validation_step_outputs"
FROM_FORWARD = "forward"
_SOURCE_TEXT = {
    FROM_FORWARD: "the module's forward(x)",
    FROM_STEP_OUTPUTS: "validation_step's 'scores'",
    FROM_CALLABLE: "scores_and_labels",
}

_HOW_TO_GIVE_SCORES = (
    "return {'scores': outputs, 'labels': y} from validation_step (no extra forward pass), or"
    " pass MetricsDiagCallback(scores_and_labels=lambda module, batch, outputs: (scores, labels))"
)


# -- the callback -----------------------------------------------------------------------------


class _Validation(
    collections.namedtuple("_Validation", "epoch labels scores problems distributed")
):
    """One validation epoch's gathered rows (NumPy; None when none), on rank 0, until written."""


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
      scalars: whether each evaluation also writes its headline scalars (accuracy, balanced
        accuracy, macro F1, ECE, per-class recall and precision) under ``metricsdiag/<split>/``
        for TensorBoard's own Scalars and HParams dashboards (`records.headline_scalars`).

    Where the scores come from, per validation batch: ``scores_and_labels`` when given; else
    the ``"scores"`` and ``"labels"`` of a dict returned by ``validation_step`` (no extra
    pass); else ``module(x)`` of an ``(x, y)`` batch, one extra forward pass per validation
    batch (in eval mode and without gradients, as Lightning runs validation). Only the first
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
        self.scalars = scalars
        self._class_names = None  # checked (`inputs.check_class_names`) at setup
        self._overlap = None  # the `lightning_overlap.OverlapCheck` of the current fit
        self._thresholds = None
        self._log_dir = None
        self._writer = None
        self._start_stage()
        self._scores, self._labels, self._problems = [], [], []
        self._names_before = {}

    def _start_stage(self):
        """Forget what the last ``fit`` / ``validate`` learnt of the module and its data."""
        # The `inputs.Layout` of the first batch; its from_logits, unless given, is decided by
        # the first epoch counted (more rows than one batch of a model not trained yet).
        self._layout = None
        self._source = None  # FROM_CALLABLE / FROM_STEP_OUTPUTS / FROM_FORWARD
        self._model_name = None
        self._info_written = False
        self._pending = None  # rank 0: a `_Validation` not written yet
        self._validated_epoch = None
        self._validation_names = set()  # metrics the last validation logged
        self._ever_validation_names = set()
        self._logs_from = {}

    # -- configuration --------------------------------------------------------------------

    def _check_configuration(self):
        if self.log_dir is not None and (
            not isinstance(self.log_dir, (str, os.PathLike)) or not os.fspath(self.log_dir)
        ):
            raise ValueError(
                "MetricsDiagCallback: log_dir must be a non-empty path or None (the"
                " TensorBoardLogger's directory), got %r" % (self.log_dir,)
            )
        inputs.check_from_logits(self.from_logits, WHO)
        inputs.check_multi_label(self.multi_label, WHO, detect=True)
        inputs.check_scalars(self.scalars, WHO)
        if self.scores_and_labels is not None and not callable(self.scores_and_labels):
            raise ValueError(
                "MetricsDiagCallback: scores_and_labels must be a callable"
                " f(module, batch, outputs) -> (scores, labels)"
            )
        self._class_names = inputs.check_class_names(self.class_names, WHO)
        self._thresholds = records.checked_thresholds(self.thresholds, WHO)
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

    def _batch_scores(self, pl_module, batch, outputs):
        """``(scores, labels, source)`` of one validation batch."""
        if self.scores_and_labels is not None:
            found = self.scores_and_labels(pl_module, batch, outputs)
            if not isinstance(found, (tuple, list)) or len(found) != 2:
                raise ValueError(
                    "MetricsDiagCallback: scores_and_labels must return (scores, labels), got"
                    " a %s" % type(found).__name__
                )
            return found[0], found[1], FROM_CALLABLE
        if isinstance(outputs, collections.abc.Mapping) and "scores" in outputs:
            if "labels" not in outputs:
                raise ValueError(
                    "MetricsDiagCallback: validation_step returned 'scores' without 'labels':"
                    " return {'scores': outputs, 'labels': y}"
                )
            return outputs["scores"], outputs["labels"], FROM_STEP_OUTPUTS
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            what = type(batch).__name__
            if isinstance(batch, (tuple, list, collections.abc.Mapping)):
                what = "%s of %d items" % (what, len(batch))
            raise ValueError(
                "MetricsDiagCallback: validation batches are a %s, not (x, y), so the callback"
                " cannot tell the inputs from the labels: %s" % (what, _HOW_TO_GIVE_SCORES)
            )
        x, y = batch
        with torch.no_grad():
            scores = pl_module(x)
        return scores, y, FROM_FORWARD

    def _first_layout(self, scores, labels, source):
        """The stage's `inputs.Layout`, from its first batch checked as every writer's first
        evaluation (`inputs.check_evaluation`); ValueError naming the fix. ``from_logits``
        stays undecided unless given.
        """
        where = _SOURCE_TEXT[source]
        if not isinstance(scores, torch.Tensor):
            raise ValueError(
                "%s: %s gave a %s, not one tensor of scores: %s"
                % (WHO, where, type(scores).__name__, _HOW_TO_GIVE_SCORES)
            )
        multi_label = self.multi_label
        if multi_label is None:
            width = int(scores.shape[1]) if scores.ndim == 2 else 1
            multi_label = labels_lib.looks_multi_hot(arrays.to_numpy(labels, "labels"), width)
        try:
            evaluation = inputs.check_evaluation(
                labels,
                scores,
                WHO,
                multi_label=multi_label,
                from_logits=self.from_logits,
                class_names=self._class_names,
                names=NAMES,
            )
        except ValueError as error:
            hint = ": if it does not give the class scores, " + _HOW_TO_GIVE_SCORES
            raise ValueError(
                "%s. The scores came from %s%s"
                % (error, where, hint if source == FROM_FORWARD else "")
            ) from error
        return dataclasses.replace(evaluation.layout, from_logits=self.from_logits)

    def _check_batch(self, scores, labels):
        """A later batch's labels as a tensor beside its scores; ValueError for scores that
        are no tensor, or shapes unlike the first batch's (`inputs.Layout.check_shapes`: the
        values are read when the epoch is counted).
        """
        if not isinstance(scores, torch.Tensor):
            raise ValueError("the scores are a %s, not a tensor" % type(scores).__name__)
        labels = _as_tensor(labels, scores.device)
        self._layout.check_shapes(labels, scores, WHO, NAMES)
        label_format = self._layout.format_of(labels)
        if label_format != self._layout.label_format:
            raise ValueError(
                "%s labels of shape %s after %s labels in the first batch: the epoch's batches"
                " are put together, so their labels must come in one format"
                % (label_format, tuple(labels.shape), self._layout.label_format)
            )
        return labels

    def on_validation_epoch_start(self, trainer, pl_module):
        self._scores, self._labels, self._problems = [], [], []
        self._names_before = dict(trainer.callback_metrics)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if dataloader_idx != 0:
            return
        first = self._layout is None
        try:
            scores, labels, source = self._batch_scores(pl_module, batch, outputs)
            if isinstance(scores, torch.Tensor) and scores.ndim and not len(scores):
                return  # no rows: nothing to check or count
            if first:
                self._layout, self._source = self._first_layout(scores, labels, source), source
                labels = _as_tensor(labels, scores.device)
            else:
                labels = self._check_batch(scores, labels)
        except Exception as error:
            if first:
                raise  # the first batch: a mistake raises
            self._problems.append(  # recording never ends the training
                events.bad_batch(SPLIT, "validation batch %d was left out: %s" % (batch_idx, error))
            )
            return
        if trainer.sanity_checking:
            return
        scores = scores.detach()
        if scores.ndim == 1:
            scores = scores[:, None]
        if scores.dtype in (torch.float16, torch.bfloat16) or not scores.is_floating_point():
            scores = scores.float()  # NumPy has no bfloat16
        if self._layout.label_format in (labels_lib.SPARSE, labels_lib.BINARY):
            labels = labels.reshape(-1)  # [n] and [n, 1] alike, so that batches concatenate
        self._scores.append(scores)
        self._labels.append(labels.detach())
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
        try:
            labels, scores = _concatenated(self._labels), _concatenated(self._scores)
            if lightning_distributed.world_size() > 1:
                labels, scores, distributed, problem, digests = lightning_distributed.gather(
                    trainer, labels, scores, digests
                )
                if problem:
                    problems.append(events.distributed_counts(SPLIT, problem))
            else:
                labels, scores = _numpy(labels), _numpy(scores)
        except Exception as error:
            logger.exception("MetricsDiagCallback: the validation outputs could not be gathered")
            problems.append(events.callback_error(error))
            labels = scores = digests = None
        if overlap is not None and digests is None:
            overlap.fail("the validation inputs of every process could not be gathered")
        elif overlap is not None:
            overlap.validation_digests = digests
        self._scores, self._labels, self._problems = [], [], []
        if trainer.is_global_zero:
            self._pending = _Validation(
                trainer.current_epoch, labels, scores, problems, distributed
            )
        if trainer.state.fn != "fit":  # trainer.validate(): no training epoch end to wait for
            self._flush(trainer, with_train_logs=False)

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
        try:
            evaluation = inputs.check_evaluation(
                pending.labels,
                pending.scores,
                WHO,
                layout=self._layout,
                from_logits=self.from_logits,
                names=NAMES,
            )
        except ValueError as error:
            return [
                events.bad_batch(
                    SPLIT,
                    "the validation outputs of epoch %d could not be counted: %s"
                    % (pending.epoch, error),
                )
            ]
        self._layout = evaluation.layout
        if not self._info_written:
            writer.add_run_info(self._run_info(pending))
            self._info_written = True
        writer.add_checked_evaluation(evaluation, pending.epoch, split=SPLIT)
        return []

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
        if not problems:
            return
        for problem in problems:
            logger.warning("MetricsDiagCallback, epoch %d: %s", epoch, problem["message"])
        try:
            self._open_writer().add_events(problems, epoch)
        except Exception:
            logger.exception("MetricsDiagCallback: could not write the events of epoch %d", epoch)

    def _open_writer(self):
        if self._writer is None:
            # Classes, their names and the task come with each checked evaluation's layout.
            self._writer = MetricsDiagWriter(
                self._log_dir, thresholds=self._thresholds, scalars=self.scalars
            )
        return self._writer

    def _run_info(self, pending):
        layout = self._layout
        info = records.describe_run(
            output_width=layout.output_width,
            outputs_are_logits=layout.from_logits,
            label_format=layout.label_format,
            class_names=list(layout.class_names),
            split_examples={SPLIT: len(pending.labels)},
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
        self._close()

    def on_exception(self, trainer, pl_module, exception):
        self._close()


# -- tensors ----------------------------------------------------------------------------------


def _as_tensor(value, device):
    if isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(np.asarray(value), device=device)


def _concatenated(parts):
    return torch.cat(parts) if parts else None


def _numpy(tensor):
    return None if tensor is None else tensor.cpu().numpy()


__all__ = ["MetricsDiagCallback"]

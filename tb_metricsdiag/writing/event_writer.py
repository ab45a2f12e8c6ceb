"""`MetricsDiagWriter`: metricsdiag data from any training loop, with NumPy and TensorBoard only.

::

    with MetricsDiagWriter(log_dir, class_names=["cat", "dog", "bird"]) as writer:
        for epoch in range(epochs):
            ...  # train
            writer.add_evaluation(y_val, model(x_val), step=epoch)
            writer.add_logs({"loss": loss, "val_loss": val_loss}, step=epoch)

It writes the records of `records` (what the Keras callback and `tb_metricsdiag.summary` write)
as ``Summary`` protos into an event file of its own, framed as TensorBoard's `RecordWriter` frames
them, on a plain file (`record_framing`: TensorBoard's `EventFileWriter` imports TensorFlow when
TensorFlow is installed, and its `RecordWriter` checksums in a Python loop without it).
Labels and scores may be NumPy arrays, lists, or PyTorch / JAX / TensorFlow tensors on any device
(`arrays.to_numpy`); no framework is imported.
"""

import itertools
import os
import socket
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.compat.tensorflow_stub import dtypes
from tensorboard.util import tensor_util

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import events
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.format import schema
from tb_metricsdiag.writing import (
    arrays,
    example_recorder,
    inputs,
    record_framing,
    records,
    slice_recorder,
)

# The first event of every event file: the version of the record format, as TensorFlow writes it.
FILE_VERSION = "brain.Event:2"

_file_numbers = itertools.count()  # the last part of an event file's name, as TensorBoard's


def tensor_proto(value):
    """The ``TensorProto`` ``tf.summary.write`` stores for a `records.Record` value: numbers
    as their little-endian bytes in ``tensor_content``, strings as ``string_val``.
    """
    value = np.asarray(value)
    if value.dtype == object:
        return tensor_util.make_tensor_proto(value)
    little_endian = value.astype(value.dtype.newbyteorder("<"), copy=False)
    return tensor_pb2.TensorProto(
        dtype=dtypes.as_dtype(value.dtype).as_datatype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in value.shape]
        ),
        tensor_content=little_endian.tobytes(),
    )


def summary_of(written):
    """One ``Summary`` of the `records.Record` list ``written``, a value per record."""
    return summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=record.tag, metadata=record.metadata, tensor=tensor_proto(record.value)
            )
            for record in written
        ]
    )


# Part of every file name: TensorBoard's own writers in the same directory (a TensorBoardLogger,
# keras.callbacks.TensorBoard) name their files by the same second, host, pid and counter.
EVENT_FILE_MARK = ".metricsdiag"


def _event_file_name(filename_suffix=""):
    # The counter is zero-padded: TensorBoard reads a directory's files in name order, and an
    # unpadded 10 would sort before 9 (a file read late purges the steps after its own).
    return "events.out.tfevents.%010d.%s.%d.%06d%s%s" % (
        time.time(),
        socket.gethostname(),
        os.getpid(),
        next(_file_numbers),
        EVENT_FILE_MARK,
        filename_suffix,
    )


class MetricsDiagWriter:
    """Writes a run's metricsdiag data, for any framework: needs only NumPy and TensorBoard.

    Args:
      log_dir: directory of this run's event files (TensorBoard names the run after it);
        created if missing.
      class_names: one name per class; default ``"0"``..``"C-1"``. Checked against the model's
        outputs at the first `add_evaluation`.
      thresholds: ascending score thresholds of the PR counts; default
        `counting.default_thresholds` (201 values spaced in logit).
      multi_label: a multi-label model: ``y_true`` multi-hot rows ``[n, K]`` (0/1, any number
        of labels set) and one sigmoid output per label; each label is counted as its own
        binary problem, predicted at probability >= 0.5 (`counting.MultiLabelCounts`).
        ``class_names`` then names the K labels.
      scalars: whether each evaluation also writes its headline scalars (accuracy, balanced
        accuracy, macro F1, ECE, per-class recall and precision: `records.headline_scalars`)
        under ``metricsdiag/<split>/`` for TensorBoard's own Scalars and HParams dashboards.
      filename_suffix: appended to the event file's name (after `EVENT_FILE_MARK`, which
        keeps it apart from TensorBoard's own writers' files in the same directory).

    The number of classes is taken from the outputs at the first `add_evaluation` and every
    later call must fit it; mistakes raise ValueError saying what to change. Nothing is written
    for a call that raises. Use it as a context manager, or call `close`.
    """

    def __init__(
        self,
        log_dir,
        class_names=None,
        thresholds=None,
        multi_label=False,
        filename_suffix="",
        scalars=True,
    ):
        inputs.check_multi_label(multi_label, "MetricsDiagWriter")
        inputs.check_scalars(scalars, "MetricsDiagWriter")
        self.multi_label = multi_label
        self.scalars = scalars
        self.log_dir = os.fspath(log_dir)
        self._class_names = inputs.check_class_names(class_names, "MetricsDiagWriter")
        self.thresholds = records.checked_thresholds(thresholds, "MetricsDiagWriter")
        self.layout = None  # inputs.Layout: fixed by the first evaluation
        self._split_examples = {}  # split -> examples at its first evaluation
        self._run_info_given = False
        self._examples = example_recorder.ExampleRecorder()
        self._slice_values = {}  # split -> slice_recorder.SliceValues
        os.makedirs(self.log_dir, exist_ok=True)
        self.path = os.path.join(self.log_dir, _event_file_name(filename_suffix))
        self._records = record_framing.RecordWriter(open(self.path, "wb"))
        self._write_event(event_pb2.Event(wall_time=time.time(), file_version=FILE_VERSION))
        self._records.flush()

    # -- the public interface -------------------------------------------------------------

    @property
    def num_classes(self):
        """Number of classes (of labels, multi-label), known from the first `add_evaluation`
        (None before).
        """
        return None if self.layout is None else self.layout.num_classes

    @property
    def class_names(self):
        """The class names written (None before the first `add_evaluation` without names)."""
        return self._class_names if self.layout is None else list(self.layout.class_names)

    def add_evaluation(
        self,
        y_true,
        y_score,
        step,
        split="validation",
        from_logits=None,
        example_ids=None,
        previews=None,
        groups=None,
    ):
        """Count one split's evaluation and write it at ``step``.

        Writes the confusion matrix and the threshold counts with the exact AP, as the Keras
        callback does; at a split's first evaluation also its label distribution and, unless
        `add_run_info` was called first, a run description of what the writer has seen. Unless
        ``example_ids=False``, also its example records (docs/format.md, "Example records"):
        the first examples of every confusion cell, which examples were right, the label
        issues confident learning flags (single-label tasks), the id table when the ids are
        not the positions, and the previews of newly kept examples.

        Args:
          y_true: class ids ``[n]``, one-hot rows ``[n, C]``, or 0/1 ``[n]`` with ``y_score``
            of shape ``[n]`` or ``[n, 1]`` (binary); with ``multi_label``, multi-hot rows
            ``[n, K]``. Any array-like or tensor.
          y_score: the model's outputs ``[n, C]``, or ``[n]`` / ``[n, 1]`` (one sigmoid unit):
            probabilities or logits. Any array-like or tensor, on any device.
          step: the step (epoch) to write at, an integer.
          split: ``"validation"``, ``"train"``, or any name of 1 to 64 characters from
            ``[A-Za-z0-9_.-]`` (``"test"``, ``"ood"``): one split per evaluated set.
          from_logits: whether ``y_score`` holds logits; None detects it at the first
            evaluation (`labels.looks_like_logits`) and keeps that decision.
          example_ids: one id per row, integers or strings of 1 to 128 characters, unique, the
            same id for the same example at every step; None: the row's position ``0..n-1``;
            False: no example records for this evaluation.
          previews: one preview per row, stored for the examples kept: strings (the first
            1,000 characters), or images ``[n, H, W]`` / ``[n, H, W, 1 | 3]`` (uint8, or floats
            in [0, 1]) stored as PNG thumbnails of at most 64 x 64 pixels. Each example's
            preview is stored once per run, within the run's cap
            (`example_recorder.PREVIEW_LIMIT` examples, `example_recorder.PREVIEW_BYTES`).
          groups: ``{key: one value per row}`` (at most 8 keys, each a name of letters,
            digits and ``_``; values strings of 1 to 128 characters, integers or booleans,
            shown as strings): per key and value, the confusion counts, threshold counts,
            calibration bins and the top examples of every cell of that slice
            (`slice_recorder`; a split's 256 most frequent values per key get a slice each,
            the rest share ``"(other)"``).

        Returns:
          The `counting.ClassificationCounts` (`counting.MultiLabelCounts` with
          ``multi_label``) that was written.

        Raises:
          ValueError: outputs or labels that do not fit (the message names the fix), a
            number of classes other than at the first evaluation, a bad split name, ids or
            previews that do not fit the rows; nothing is written then.
        """
        who = "MetricsDiagWriter.add_evaluation"
        step = self._checked_step(step)
        _check_split(split)
        recording = example_ids is not False
        if not recording and previews is not None:
            raise ValueError(
                "%s: previews need example records, which example_ids=False turns off: drop"
                " one of them" % who
            )
        evaluation = inputs.check_evaluation(
            y_true,
            y_score,
            who,
            layout=self.layout,
            multi_label=self.multi_label,
            from_logits=from_logits,
            class_names=self._class_names,
            example_ids=example_ids if recording else None,
            previews=previews,
            groups=groups,
        )
        return self._write_evaluation(evaluation, step, split, recording)

    def add_checked_evaluation(self, evaluation, step, split="validation", example_records=True):
        """Count and write an `inputs.Evaluation` as `add_evaluation` does, checking nothing
        again: for the package's callbacks, which check their inputs where they receive them
        (`inputs.check_evaluation`). The evaluation's layout carries the classes, their names
        and the task (the writer's ``class_names`` and ``multi_label`` are not read); the first
        one's becomes the writer's. Its example records are written unless
        ``example_records=False``, named by the evaluation's ``example_ids`` (None: positions),
        with its ``previews``; its ``groups``, when given, as slices (`slice_recorder`).

        Returns:
          The counts written, as `add_evaluation`.

        Raises:
          ValueError: an evaluation of another number of classes or task than the writer's
            first, or an unknown split.
        """
        step = self._checked_step(step)
        _check_split(split)
        first, layout = self.layout, evaluation.layout
        if first is not None and (first.num_classes, first.multi_label) != (
            layout.num_classes,
            layout.multi_label,
        ):
            raise ValueError(
                "MetricsDiagWriter.add_checked_evaluation: %d classes (multi_label=%s) after %d"
                " (multi_label=%s) in the first evaluation: one run holds one model's outputs"
                % (layout.num_classes, layout.multi_label, first.num_classes, first.multi_label)
            )
        return self._write_evaluation(evaluation, step, split, example_records)

    def _write_evaluation(self, evaluation, step, split, recording):
        """Count ``evaluation`` and write it, with its example records when ``recording``;
        the records are all made before anything is written.
        """
        result = evaluation.counts(self.thresholds)
        example_records, overall_positions = [], None
        if recording:
            examples = example_recorder.EpochExamples(
                evaluation.layout, evaluation.size, thresholds=self.thresholds
            )
            examples.update(
                np.arange(evaluation.size),
                evaluation.targets,
                evaluation.scores,
                evaluation.predicted,
            )
            example_records = self._examples.records(
                split, examples, evaluation.example_ids, evaluation.previews
            )
            overall_positions = examples.cells.examples(self._examples.budget)["position"]
        if evaluation.groups:
            values = self._slice_values.setdefault(split, slice_recorder.SliceValues())
            epoch = slice_recorder.EpochSlices(
                evaluation.layout,
                self.thresholds,
                values,
                values.slice_codes(evaluation.groups),
                with_examples=recording,
            )
            epoch.update(
                np.arange(evaluation.size),
                evaluation.targets,
                evaluation.scores,
                evaluation.predicted,
            )
            record = epoch.record(split, evaluation.layout.class_names, overall_positions)
            example_records += [] if record is None else [record]
        if self.layout is None:
            self.layout = evaluation.layout
            self.multi_label = self.layout.multi_label
        new_split = split not in self._split_examples
        written = self._counts_records(result, split) + example_records
        if new_split and not self._run_info_given:
            written.insert(1, records.run_info(self._describe()))
        self._write_records(written, step)
        return result

    def add_counts(self, counts, step, split="validation", examples=None):
        """Write counts made elsewhere: a `counting.ClassificationCounts` (e.g. summed across
        processes) of this writer's classes, at ``step``, as `add_evaluation` writes its own
        (with the label distribution at a split's first counts); with ``examples``, an
        `example_recorder.EpochExamples` of the same rows (merged across processes), their
        example records (ids: the positions).

        Raises:
          ValueError: counts of another number of classes than the writer's, or than
            ``class_names``.
        """
        step = self._checked_step(step)
        _check_split(split)
        expected = (
            counts_lib.MultiLabelCounts if self.multi_label else counts_lib.ClassificationCounts
        )
        if not isinstance(counts, expected):
            raise ValueError(
                "MetricsDiagWriter.add_counts: expected a counting.%s (multi_label=%s), got %s"
                % (expected.__name__, self.multi_label, type(counts).__name__)
            )
        if self.num_classes is not None and counts.num_classes != self.num_classes:
            raise ValueError(
                "MetricsDiagWriter.add_counts: counts of %d classes, the writer's data has %d"
                % (counts.num_classes, self.num_classes)
            )
        written = self._counts_records(counts, split)
        if examples is not None:
            written += self._examples.records(split, examples)
        self._write_records(written, step)

    def _counts_records(self, result, split):
        """The records of ``result``: at a split's first counts its label distribution first,
        then the counts, then the event of any non-finite score left out.
        """
        written = []
        if split not in self._split_examples:
            self._split_examples[split] = int(result.count + result.invalid)
            written.append(records.label_distribution(result.positives, split, self.class_names))
        written.extend(records.counts(result, split, self.class_names, self.scalars))
        if result.invalid:
            written.append(records.events([events.nonfinite_predictions(split, result.invalid)]))
        return written

    def add_logs(self, logs, step):
        """Write the numeric values of ``logs`` (``{"loss": 0.41, "val_loss": 0.52, ...}``:
        the names Keras uses) as the run's curves at ``step``. Values may be Python or NumPy
        numbers or scalar tensors; others are skipped; NaN and infinity are kept.

        Returns:
          False when no value was numeric (nothing written), else True.
        """
        step = self._checked_step(step)
        values = {}
        for key, value in dict(logs or {}).items():
            try:
                values[key] = arrays.to_numpy(value, "logs[%r]" % (key,))
            except arrays.UnreadableTensorError:
                continue  # not a number: skipped, as stored_json.encode_logs skips it
        record = records.logs(values)
        if record is None:
            return False
        self._write_records([record], step)
        return True

    def add_run_info(self, info):
        """Write the run description the diagnostics read (``records.describe_run`` builds one
        in the Keras callback's layout: model output width / activation / logits, loss, label
        format, class names, split sizes, counting method, versions).

        Called before the first `add_evaluation`, it replaces the writer's own description.
        """
        self._run_info_given = True
        self._write_records([records.run_info(to_json_value(info))], 0)

    def write_records(self, written, step):
        """Write `records.Record` summaries as they are, at ``step``: for the package's Keras
        callback, which makes its own records (the same it writes with ``tf.summary``).
        """
        self._write_records(list(written), self._checked_step(step))

    def add_overlap(self, overlap):
        """Write the result of `overlap.duplicate_overlap` (train/validation duplicates)."""
        self._write_records([records.overlap(to_json_value(overlap))], 0)

    def add_events(self, events, step):
        """Write problems met while recording at ``step``: dicts with ``kind`` and ``message``."""
        self._write_records([records.events(to_json_value(list(events)))], self._checked_step(step))

    def flush(self):
        """Write what is buffered to disk."""
        if not self._records.closed:
            self._records.flush()

    def close(self):
        """Flush and close the event file. Safe to call more than once."""
        if not self._records.closed:
            self._records.flush()
            self._records.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _checked_step(step):
        try:
            value = None if isinstance(step, bool) else arrays.to_numpy(step, "step")
        except arrays.UnreadableTensorError:
            value = None
        if value is None or value.shape != () or value.dtype.kind not in "iu" or value < 0:
            raise ValueError(
                "MetricsDiagWriter: step must be an integer >= 0 (the epoch), got %r" % (step,)
            )
        return int(value)

    def _describe(self):
        return records.describe_run(
            output_width=self.layout.output_width,
            outputs_are_logits=self.layout.from_logits,
            label_format=self.layout.label_format,
            class_names=self.class_names,
            split_examples=self._split_examples,
            num_thresholds=self.thresholds.size,
            counting="writer",
            versions={"numpy": np.__version__},
        )

    def _write_records(self, written, step):
        if self._records.closed:
            raise ValueError("MetricsDiagWriter: the writer is closed")
        # One event per step, as the Keras callback writes its records: framing and checksums
        # are paid per event, and TensorBoard reads each value of an event as its own.
        if written:
            self._write_event(
                event_pb2.Event(wall_time=time.time(), step=step, summary=summary_of(written))
            )

    def _write_event(self, event):
        self._records.write(event.SerializeToString())


def _check_split(split):
    if not schema.is_split_name(split):
        raise ValueError(
            "MetricsDiagWriter: a split name is %s (e.g. 'validation', 'train', 'test'), got %r"
            % (schema.SPLIT_NAME_RULE, split)
        )

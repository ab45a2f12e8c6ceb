"""TensorFlow summary writers for metricsdiag data.

These are the functions `MetricsDiagCallback` itself uses. In a custom training loop, call them
inside ``with writer.as_default():`` like any ``tf.summary`` op::

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        summary.write_evaluation(y_val, model(x_val), step=epoch, from_logits=True)
        summary.write_logs({"loss": loss, "val_loss": val_loss}, step=epoch)

Each returns True when a default writer was present and the summary was written, as
``tf.summary.write`` does. The layout is documented in ``docs/format.md``.
"""

import json

import numpy as np
import tensorflow as tf

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.format import codecs, metadata, schema

__all__ = [
    "write_average_precision",
    "write_calibration",
    "write_confusion_matrix",
    "write_counts",
    "write_evaluation",
    "write_events",
    "write_label_distribution",
    "write_logs",
    "write_overlap",
    "write_run_info",
    "write_threshold_counts",
]


def _class_names(class_names, num_classes):
    if class_names is None:
        return labels_lib.default_class_names(num_classes)
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(
            "class_names has %d names but the data has %d classes" % (len(names), num_classes)
        )
    return names


def _write(tag, tensor, step, summary_metadata):
    return tf.summary.write(tag, tensor, step=step, metadata=summary_metadata.SerializeToString())


def _write_json(tag, kind, value, step):
    text = json.dumps(value, sort_keys=True, allow_nan=False, default=str)
    return _write(tag, tf.constant(text), step, metadata.create_summary_metadata(kind))


def write_confusion_matrix(matrix, step=None, split="validation", class_names=None):
    """Write a ``[C, C]`` confusion matrix (row = actual class, column = predicted class)."""
    matrix = np.asarray(matrix)
    names = _class_names(class_names, matrix.shape[0])
    md = metadata.create_summary_metadata(schema.KIND_CONFUSION, split, names)
    return _write(
        schema.split_tag(split, schema.KIND_CONFUSION), codecs.compact_ints(matrix), step, md
    )


def write_threshold_counts(
    tp,
    fp,
    thresholds,
    step=None,
    split="validation",
    class_names=None,
    average_precision=None,
    average_precision_method=counts_lib.AP_EXACT,
):
    """Write one-vs-rest TP and FP ``[C, T]`` of ``score >= thresholds[j]`` as one ``[C, 2, T]``,
    stored as `codecs.encode_threshold_counts` bytes (a string scalar).

    ``average_precision`` (``[C]``, NaN for a class with no positive), when given, is stored in
    the same summary, with its method (as for `write_average_precision`).
    """
    tp, fp = np.asarray(tp), np.asarray(fp)
    thresholds = counts_lib.validate_thresholds(thresholds)
    if tp.shape != fp.shape or tp.ndim != 2 or tp.shape[1] != thresholds.size:
        raise ValueError("tp and fp must both have shape [C, %d]" % thresholds.size)
    names = _class_names(class_names, tp.shape[0])
    # Encoded first: it refuses an average precision that does not fit the classes.
    payload = codecs.encode_threshold_counts(np.stack([tp, fp], axis=1), average_precision)
    md = metadata.create_summary_metadata(
        schema.KIND_THRESHOLD_COUNTS,
        split,
        names,
        thresholds=thresholds,
        encoding=schema.THRESHOLD_COUNTS_ENCODING,
        average_precision=None if average_precision is None else average_precision_method,
    )
    return _write(
        schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS), tf.constant(payload), step, md
    )


def write_average_precision(
    values, step=None, split="validation", class_names=None, method=counts_lib.AP_EXACT
):
    """Write the AP of each class, ``[C]`` float64 (NaN for a class with no positive).

    ``method`` is stored with it: `counts.AP_EXACT` (from every score) or
    `counts.AP_THRESHOLD_GRID` (from the threshold counts, the Keras-metric mode). This is a
    summary of its own; `write_counts` stores the AP inside the threshold counts instead (one
    summary fewer per epoch), and a reader takes the AP from there when both are present.
    """
    values = np.asarray(values, dtype=np.float64)
    names = _class_names(class_names, values.shape[0])
    md = metadata.create_summary_metadata(
        schema.KIND_AVERAGE_PRECISION, split, names, method=method
    )
    return _write(schema.split_tag(split, schema.KIND_AVERAGE_PRECISION), values, step, md)


def write_calibration(bins, step=None, split="validation"):
    """Write calibration bins ``(count, confidence_sum, correct)`` (`calibration.calibration_bins`)
    as one ``[3, B]`` float64 tensor.
    """
    values = np.stack([np.asarray(part, dtype=np.float64) for part in bins])
    md = metadata.create_summary_metadata(schema.KIND_CALIBRATION, split)
    return _write(schema.split_tag(split, schema.KIND_CALIBRATION), values, step, md)


def write_label_distribution(label_counts, step=None, split="validation", class_names=None):
    """Write the number of examples of each actual class, ``[C]``."""
    label_counts = np.asarray(label_counts)
    names = _class_names(class_names, label_counts.shape[0])
    md = metadata.create_summary_metadata(schema.KIND_LABEL_DISTRIBUTION, split, names)
    tag = schema.split_tag(split, schema.KIND_LABEL_DISTRIBUTION)
    return _write(tag, label_counts.astype(np.int64), step, md)


def write_counts(counts, step=None, split="validation", class_names=None):
    """Write everything a `counts.ClassificationCounts` holds: the confusion matrix, the
    threshold counts with the AP in one summary, and the calibration bins.
    """
    written = write_confusion_matrix(counts.confusion, step, split, class_names)
    write_threshold_counts(
        counts.tp,
        counts.fp,
        counts.thresholds,
        step,
        split,
        class_names,
        counts.average_precision(),
        counts.average_precision_method,
    )
    if counts.calibration[0].any():  # counts made elsewhere may come without bins
        write_calibration(counts.calibration, step, split)
    return written


def write_evaluation(
    y_true,
    y_score,
    step=None,
    split="validation",
    class_names=None,
    thresholds=None,
    from_logits=False,
):
    """Count and write one split's evaluation at ``step``: the custom-training-loop entry point.

    Args:
      y_true: integer class ids ``[n]``, one-hot rows ``[n, C]``, or 0/1 for a single unit.
      y_score: model outputs ``[n, C]`` or ``[n, 1]`` (a single sigmoid unit), a NumPy array or
        tensor; probabilities, or logits with ``from_logits=True``.
      step: the step (epoch) to write at; None takes ``tf.summary``'s default step.
      split: ``"validation"`` or ``"train"``.
      class_names: one name per class; default ``"0"``..``"C-1"``.
      thresholds: ascending thresholds for the PR counts; default 201 evenly spaced in [0, 1].
      from_logits: whether ``y_score`` holds logits.

    Returns:
      The `counting.ClassificationCounts` that was written.
    """
    outputs = np.asarray(y_score)
    width = 1 if outputs.ndim == 1 else outputs.shape[-1]
    num_classes = labels_lib.num_classes_from_output_width(width)
    label_format = labels_lib.detect_label_format(np.asarray(y_true), width)
    ids = labels_lib.class_ids(np.asarray(y_true), label_format, num_classes)
    scores, predicted = labels_lib.scores_and_predictions(outputs, from_logits)
    if thresholds is None:
        thresholds = counts_lib.default_thresholds()
    result = counts_lib.ClassificationCounts(num_classes, thresholds)
    result.update(ids, scores, predicted)
    write_counts(result, step, split, class_names)
    return result


def write_logs(logs, step=None):
    """Write the numeric values of a Keras ``logs`` dict, all in one summary
    (``metricsdiag/logs``, a JSON object: `codecs.encode_logs`).

    Non-numeric values are skipped; NaN and infinity are kept, since they are the evidence of a
    diverging run. One summary rather than a scalar per value: TensorBoard keeps every point
    of this plugin, and its cost of keeping them is per point. Returns False when nothing was
    written (no numeric value).
    """
    text = codecs.encode_logs(logs)
    if text is None:
        return False
    md = metadata.create_summary_metadata(schema.KIND_LOGS)
    return _write(schema.LOGS_TAG, tf.constant(text), step, md)


def write_run_info(info, step=0):
    """Write the JSON description of the run: model, loss, labels, data sizes (see format.md)."""
    return _write_json(schema.RUN_INFO_TAG, schema.KIND_RUN_INFO, info, step)


def write_overlap(overlap, step=0):
    """Write the result of `overlap.duplicate_overlap` as JSON."""
    return _write_json(schema.OVERLAP_TAG, schema.KIND_OVERLAP, overlap, step)


def write_events(events, step=None):
    """Write a JSON list of problems met while recording (each a dict with at least
    ``kind`` and ``message``), e.g. NaN predictions or a batch that could not be read.
    """
    return _write_json(schema.EVENTS_TAG, schema.KIND_EVENTS, list(events), step)

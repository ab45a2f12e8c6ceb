"""TensorFlow summary writers for metricsdiag data.

They write the records of `records`, the same that `MetricsDiagCallback` and
`MetricsDiagWriter` write. In a custom training loop, call them inside
``with writer.as_default():`` like any ``tf.summary`` op::

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        summary.write_evaluation(y_val, model(x_val), step=epoch, from_logits=True)
        summary.write_logs({"loss": loss, "val_loss": val_loss}, step=epoch)

Each returns True when a default writer was present and the summary was written, as
``tf.summary.write`` does. The layout is documented in ``docs/format.md``.
"""

import tensorflow as tf

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.writing import inputs, records

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


def _write(record, step):
    """Write one `records.Record` with ``tf.summary.write``."""
    return tf.summary.write(
        record.tag, record.value, step=step, metadata=record.metadata.SerializeToString()
    )


def write_confusion_matrix(matrix, step=None, split="validation", class_names=None):
    """Write a ``[C, C]`` confusion matrix (row = actual class, column = predicted class)."""
    return _write(records.confusion_matrix(matrix, split, class_names), step)


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
    stored as `threshold_counts.encode_threshold_counts` bytes (a string scalar).

    ``average_precision`` (``[C]``, NaN for a class with no positive), when given, is stored in
    the same summary, with its method (as for `write_average_precision`).
    """
    record = records.threshold_counts(
        tp, fp, thresholds, split, class_names, average_precision, average_precision_method
    )
    return _write(record, step)


def write_average_precision(
    values, step=None, split="validation", class_names=None, method=counts_lib.AP_EXACT
):
    """Write the AP of each class, ``[C]`` float64 (NaN for a class with no positive).

    ``method`` is stored with it: `counts.AP_EXACT` (from every score) or
    `counts.AP_THRESHOLD_GRID` (from the threshold counts, the Keras-metric mode). This is a
    summary of its own; `write_counts` stores the AP inside the threshold counts instead (one
    summary fewer per epoch), and a reader takes the AP from there when both are present.
    """
    return _write(records.average_precision(values, split, class_names, method), step)


def write_calibration(bins, step=None, split="validation"):
    """Write calibration bins ``(count, confidence_sum, correct)`` (`calibration.calibration_bins`)
    as one ``[3, B]`` float64 tensor.
    """
    return _write(records.calibration(bins, split), step)


def write_label_distribution(label_counts, step=None, split="validation", class_names=None):
    """Write the number of examples of each actual class, ``[C]``."""
    return _write(records.label_distribution(label_counts, split, class_names), step)


def write_counts(counts, step=None, split="validation", class_names=None, scalars=True):
    """Write everything a `counting.ClassificationCounts` holds: the confusion matrix, the
    threshold counts with the AP in one summary, and the calibration bins; and, unless
    ``scalars`` is False, the headline scalars (`records.headline_scalars`).
    """
    written = [
        _write(record, step) for record in records.counts(counts, split, class_names, scalars)
    ]
    return written[0]


def write_evaluation(
    y_true,
    y_score,
    step=None,
    split="validation",
    class_names=None,
    thresholds=None,
    from_logits=False,
    scalars=True,
):
    """Count and write one split's evaluation at ``step``: the custom-training-loop entry point.

    Args:
      y_true: integer class ids ``[n]``, one-hot rows ``[n, C]``, or 0/1 for a single unit.
      y_score: model outputs ``[n, C]`` or ``[n, 1]`` (a single sigmoid unit), a NumPy array or
        tensor; probabilities, or logits with ``from_logits=True``.
      step: the step (epoch) to write at; None takes ``tf.summary``'s default step.
      split: ``"validation"`` or ``"train"``.
      class_names: one name per class; default ``"0"``..``"C-1"``.
      thresholds: ascending thresholds for the PR counts; default
        `counting.default_thresholds` (201 values spaced in logit).
      from_logits: whether ``y_score`` holds logits.
      scalars: whether to write the headline scalars too (`write_counts`).

    Returns:
      The `counting.ClassificationCounts` that was written.
    """
    who = "summary.write_evaluation"
    inputs.check_scalars(scalars, who)
    evaluation = inputs.check_evaluation(
        y_true, y_score, who, from_logits=from_logits, class_names=class_names
    )
    result = evaluation.counts(records.checked_thresholds(thresholds, who))
    write_counts(result, step, split, list(evaluation.layout.class_names), scalars)
    return result


def write_logs(logs, step=None):
    """Write the numeric values of a Keras ``logs`` dict, all in one summary
    (``metricsdiag/logs``, a JSON object: `stored_json.encode_logs`).

    Non-numeric values are skipped; NaN and infinity are kept, since they are the evidence of a
    diverging run. One summary rather than a scalar per value: TensorBoard keeps every point
    of this plugin, and its cost of keeping them is per point. Returns False when nothing was
    written (no numeric value).
    """
    record = records.logs(logs)
    if record is None:
        return False
    return _write(record, step)


def write_run_info(info, step=0):
    """Write the JSON description of the run: model, loss, labels, data sizes (see format.md)."""
    return _write(records.run_info(info), step)


def write_overlap(overlap, step=0):
    """Write the result of `overlap.duplicate_overlap` as JSON."""
    return _write(records.overlap(overlap), step)


def write_events(events, step=None):
    """Write a JSON list of problems met while recording (each a dict with at least
    ``kind`` and ``message``), e.g. NaN predictions or a batch that could not be read.
    """
    return _write(records.events(events), step)

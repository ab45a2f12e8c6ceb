"""What every metricsdiag writer writes, framework-free: ``(tag, value, metadata)`` records.

One definition of each summary: `tf_summary` writes these records with ``tf.summary.write``,
`event_writer.MetricsDiagWriter` as ``Summary`` protos into its own event file, so the two
store the same tags, metadata and tensors. A record's value is a NumPy array: integers in
the dtype they are stored in, float64, or a 0-d object array holding ``bytes`` for a string
tensor (JSON text, encoded threshold counts). The layout is documented in ``docs/format.md``.
Pure NumPy and protobuf.
"""

import collections
import json
import platform

import numpy as np

from tb_metricsdiag import version
from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import headline
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.format import confusion_counts, integer_counts, metadata, schema, stored_json
from tb_metricsdiag.format import threshold_counts as threshold_counts_lib

Record = collections.namedtuple("Record", ["tag", "value", "metadata"])
Record.__doc__ = """One summary: its tag, its value (a NumPy array) and its ``SummaryMetadata``."""


def string_value(data):
    """A string tensor's value: ``data`` (str as UTF-8, or bytes) in a 0-d object array."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return np.array(data, dtype=object)


def checked_class_names(class_names, num_classes):
    """``class_names`` as strings, or the default names; ValueError when they do not fit."""
    if class_names is None:
        return labels_lib.default_class_names(num_classes)
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(
            "class_names has %d names but the data has %d classes" % (len(names), num_classes)
        )
    return names


def checked_thresholds(thresholds, writer):
    """``thresholds`` (None: `counting.default_thresholds`) as a checked float64 array; a
    ValueError that names ``writer`` (the class the user configured) when they are not.
    """
    if thresholds is None:
        return counts_lib.default_thresholds()
    try:
        return counts_lib.validate_thresholds(thresholds)
    except ValueError as error:
        raise ValueError("%s: %s" % (writer, error)) from error


def json_record(tag, kind, value):
    """A string summary of ``value`` as sorted, strict JSON."""
    text = json.dumps(value, sort_keys=True, allow_nan=False, default=str)
    return Record(tag, string_value(text), metadata.create_summary_metadata(kind))


def confusion_matrix(matrix, split="validation", class_names=None):
    """A ``[C, C]`` confusion matrix (row = actual class, column = predicted class), stored as
    `confusion_counts.encode_confusion` bytes (a string scalar; format version 5).
    """
    # Refuses a matrix that is not [C, C] counts.
    payload = confusion_counts.encode_confusion(matrix)
    names = checked_class_names(class_names, np.shape(matrix)[0])
    md = metadata.create_summary_metadata(
        schema.KIND_CONFUSION, split, names, encoding=schema.CONFUSION_ENCODING
    )
    return Record(schema.split_tag(split, schema.KIND_CONFUSION), string_value(payload), md)


def multilabel_confusion(matrices, exact_matches, split="validation", class_names=None):
    """The per-label ``[[tn, fp], [fn, tp]]`` ``[K, 2, 2]`` of a multi-label split, under the
    confusion tag (marked `schema.TASK_MULTILABEL`), and the exact-match counts ``[2]`` (rows
    whose predicted label set is the actual one, rows): two records.
    """
    matrices = np.asarray(matrices, dtype=np.int64)
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 2):
        raise ValueError("matrices must have shape [K, 2, 2], got %s" % (matrices.shape,))
    names = checked_class_names(class_names, matrices.shape[0])
    rows = int(matrices[0].sum()) if matrices.shape[0] else 0
    md = metadata.create_summary_metadata(
        schema.KIND_CONFUSION, split, names, task=schema.TASK_MULTILABEL
    )
    return [
        Record(
            schema.split_tag(split, schema.KIND_CONFUSION),
            integer_counts.compact_ints(matrices),
            md,
        ),
        Record(
            schema.split_tag(split, schema.KIND_EXACT_MATCH),
            np.array([int(exact_matches), rows], dtype=np.int64),
            metadata.create_summary_metadata(schema.KIND_EXACT_MATCH, split),
        ),
    ]


def threshold_counts(
    tp,
    fp,
    thresholds,
    split="validation",
    class_names=None,
    average_precision=None,
    average_precision_method=counts_lib.AP_EXACT,
    roc_auc=None,
):
    """One-vs-rest TP and FP ``[C, T]`` of ``score >= thresholds[j]`` as one ``[C, 2, T]``,
    stored as `format.threshold_counts.encode_threshold_counts` bytes (a string scalar).

    ``average_precision`` (``[C]``, NaN for a class with no positive), when given, is stored in
    the same summary, with its method (as in `average_precision`); so is ``roc_auc`` (``[C]``,
    computed by the same method; only with an average precision).
    """
    tp, fp = np.asarray(tp), np.asarray(fp)
    thresholds = counts_lib.validate_thresholds(thresholds)
    if tp.shape != fp.shape or tp.ndim != 2 or tp.shape[1] != thresholds.size:
        raise ValueError("tp and fp must both have shape [C, %d]" % thresholds.size)
    names = checked_class_names(class_names, tp.shape[0])
    # Encoded first: it refuses an average precision that does not fit the classes.
    payload = threshold_counts_lib.encode_threshold_counts(
        np.stack([tp, fp], axis=1), average_precision, roc_auc
    )
    md = metadata.create_summary_metadata(
        schema.KIND_THRESHOLD_COUNTS,
        split,
        names,
        thresholds=thresholds,
        encoding=schema.THRESHOLD_COUNTS_ENCODING,
        average_precision=None if average_precision is None else average_precision_method,
        roc_auc=None if roc_auc is None else average_precision_method,
    )
    return Record(schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS), string_value(payload), md)


def average_precision(values, split="validation", class_names=None, method=counts_lib.AP_EXACT):
    """The AP of each class, ``[C]`` float64 (NaN for a class with no positive), as a summary
    of its own, with its ``method`` (`counting.AP_EXACT` or `counting.AP_THRESHOLD_GRID`).
    `counts` stores the AP inside the threshold counts instead.
    """
    values = np.asarray(values, dtype=np.float64)
    names = checked_class_names(class_names, values.shape[0])
    md = metadata.create_summary_metadata(
        schema.KIND_AVERAGE_PRECISION, split, names, method=method
    )
    return Record(schema.split_tag(split, schema.KIND_AVERAGE_PRECISION), values, md)


def label_distribution(label_counts, split="validation", class_names=None):
    """The number of examples of each actual class, ``[C]`` int64."""
    label_counts = np.asarray(label_counts)
    names = checked_class_names(class_names, label_counts.shape[0])
    md = metadata.create_summary_metadata(schema.KIND_LABEL_DISTRIBUTION, split, names)
    tag = schema.split_tag(split, schema.KIND_LABEL_DISTRIBUTION)
    return Record(tag, label_counts.astype(np.int64), md)


def calibration(bins, split="validation"):
    """Calibration bins ``(count, confidence_sum, correct)`` (`calibration.calibration_bins`)
    as one ``[3, B]`` float64 tensor.
    """
    values = np.stack([np.asarray(part, dtype=np.float64) for part in bins])
    md = metadata.create_summary_metadata(schema.KIND_CALIBRATION, split)
    return Record(schema.split_tag(split, schema.KIND_CALIBRATION), values, md)


def headline_scalars(result, split="validation", class_names=None):
    """The headline scalars of a `counting.ClassificationCounts` or `counting.MultiLabelCounts`
    (`headline.headline_figures`), as TensorBoard scalars (float32, as ``tf.summary.scalar``
    writes them) under `schema.headline_tag`: ``accuracy``, ``balanced_accuracy``,
    ``macro_f1``, ``ece`` and, for at most `headline.PER_CLASS_LIMIT` classes, ``recall/<class
    name>`` and ``precision/<class name>``. An undefined figure (NaN: a class never predicted
    has no precision, counts without calibration bins no ECE, a multi-label split no balanced
    accuracy) is not written: a chart of it would only show a gap.
    """
    if isinstance(result, counts_lib.MultiLabelCounts):
        decisions, exact_matches = result.matrices, result.exact_matches
    else:
        decisions, exact_matches = result.confusion, None
    bins = result.calibration if result.calibration[0].any() else None
    figures = headline.headline_figures(decisions, bins, exact_matches)
    values = [(schema.headline_tag(split, name), figures[name]) for name in schema.HEADLINE_FIGURES]
    names = checked_class_names(class_names, len(figures["recall"]))
    if len(names) <= headline.PER_CLASS_LIMIT:
        values += [
            (schema.headline_tag(split, figure, name), value)
            for figure in schema.HEADLINE_PER_CLASS
            for name, value in zip(names, figures[figure])
        ]
    md = metadata.create_scalar_metadata()
    return [Record(tag, np.float32(value), md) for tag, value in values if not np.isnan(value)]


def counts(result, split="validation", class_names=None, scalars=True):
    """The records of a `counting.ClassificationCounts` (the confusion matrix) or a
    `counting.MultiLabelCounts` (`multilabel_confusion`), then the threshold counts with the
    AP, then the calibration bins (when the counts have them: counts made elsewhere may come
    without), then, unless ``scalars`` is False, the `headline_scalars`: every writer writes
    them with the split's other records, at the same step.
    """
    if isinstance(result, counts_lib.MultiLabelCounts):
        written = multilabel_confusion(result.matrices, result.exact_matches, split, class_names)
    else:
        written = [confusion_matrix(result.confusion, split, class_names)]
    written += [
        threshold_counts(
            result.tp,
            result.fp,
            result.thresholds,
            split,
            class_names,
            result.average_precision(),
            result.average_precision_method,
            result.roc_auc(),
        )
    ]
    if result.calibration[0].any():
        written.append(calibration(result.calibration, split))
    if scalars:
        written.extend(headline_scalars(result, split, class_names))
    return written


def example_record(kind, payload, split="validation"):
    """One example record (format version 6): ``payload``, the encoded bytes of a kind of
    `schema.EXAMPLE_KINDS` (`format.example_records`, `format.example_ids`,
    `format.previews`), as a string scalar under the split's tag of that kind.
    """
    if kind not in schema.EXAMPLE_KINDS:
        raise ValueError("not a kind of example record: %r" % (kind,))
    md = metadata.create_summary_metadata(kind, split)
    return Record(schema.split_tag(split, kind), string_value(payload), md)


def slices(payload, split, class_names, thresholds, keys):
    """One epoch's slices of a split (format version 7): ``payload``, the bytes of
    `format.slices.encode_slices`, as a string scalar; its plugin content names the classes,
    the threshold grid (as the threshold counts') and the group ``keys``.
    """
    md = metadata.create_summary_metadata(
        schema.KIND_SLICES,
        split,
        [str(name) for name in class_names],
        thresholds=thresholds,
        slice_keys=keys,
    )
    return Record(schema.split_tag(split, schema.KIND_SLICES), string_value(payload), md)


def logs(values):
    """The numeric values of a Keras-style ``logs`` dict in one summary
    (`stored_json.encode_logs`), or None when no value is numeric.
    """
    text = stored_json.encode_logs(values)
    if text is None:
        return None
    return Record(
        schema.LOGS_TAG, string_value(text), metadata.create_summary_metadata(schema.KIND_LOGS)
    )


def run_info(info):
    """The JSON description of the run (model, loss, labels, data sizes: see `describe_run`)."""
    return json_record(schema.RUN_INFO_TAG, schema.KIND_RUN_INFO, info)


def overlap(result):
    """The result of `overlap.duplicate_overlap` as JSON."""
    return json_record(schema.OVERLAP_TAG, schema.KIND_OVERLAP, result)


def events(problems):
    """A JSON list of problems met while recording, each a dict with ``kind`` and ``message``."""
    return json_record(schema.EVENTS_TAG, schema.KIND_EVENTS, list(problems))


def describe_run(
    *,
    output_width,
    outputs_are_logits,
    label_format,
    class_names,
    split_examples,
    num_thresholds,
    counting,
    model_name=None,
    output_activation=None,
    loss_name=None,
    loss_from_logits=None,
    metrics=None,
    versions=None,
):
    """The run description the diagnostics read (`run_info`), in the Keras callback's layout.

    Args:
      output_width: number of output units of the model (1: a single sigmoid unit).
      outputs_are_logits: whether the outputs were taken as logits.
      label_format: `labels.SPARSE`, `labels.ONE_HOT`, `labels.BINARY` or `labels.MULTI_HOT`
        (multi-label: ``num_classes`` is then the number of labels, the output width).
      class_names: one name per class.
      split_examples: ``{split: number of examples}``.
      num_thresholds: number of thresholds of the PR counts.
      counting: how the counts were made, e.g. ``"prediction"``, ``"keras_metric"``,
        ``"writer"``.
      model_name: the model's name, where known.
      output_activation: the last layer's activation (``"softmax"``, ``"linear"``...).
      loss_name: the training loss (the loss-mismatch diagnosis needs it), where known.
      loss_from_logits: the loss's ``from_logits``, where known.
      metrics: names of the metrics the model was compiled with.
      versions: ``{package: version}`` of the framework (Python's is added).
    """
    return {
        "tb_metricsdiag_version": version.VERSION,
        "model": {
            "name": model_name,
            "output_width": int(output_width),
            "output_activation": output_activation,
            "outputs_are_logits": bool(outputs_are_logits),
        },
        "loss": {"name": loss_name, "from_logits": loss_from_logits},
        "metrics": list(metrics or []),
        "labels": {
            "format": label_format,
            "num_classes": int(output_width)
            if label_format == labels_lib.MULTI_HOT
            else labels_lib.num_classes_from_output_width(output_width),
            "class_names": [str(name) for name in class_names],
        },
        "splits": {split: {"examples": int(n)} for split, n in split_examples.items()},
        "thresholds": {"count": int(num_thresholds)},
        "counting": counting,
        "versions": dict(versions or {}, python=platform.python_version()),
    }

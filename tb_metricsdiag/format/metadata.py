"""The ``SummaryMetadata`` proto every metricsdiag summary carries, and its plugin content
parsed back into a dict, checked.

Free of TensorFlow: every writer (the `tf.summary` functions and the framework-free writer)
builds its metadata here. The layout is documented in ``docs/format.md``.
"""

import json

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata

from tb_metricsdiag.core import labels
from tb_metricsdiag.format import threshold_grid
from tb_metricsdiag.format.schema import (
    EXAMPLE_KINDS,
    FORMAT_VERSION,
    KIND_CONFUSION,
    KIND_EXACT_MATCH,
    KIND_LOGS,
    KIND_SCALAR,
    KIND_SLICES,
    MAX_CLASSES,
    MAX_PLUGIN_CONTENT_BYTES,
    PLUGIN_NAME,
    FormatError,
)
from tb_metricsdiag.format.stored_json import decode_json


def create_scalar_metadata():
    """The ``SummaryMetadata`` of a headline scalar: TensorBoard's own scalars plugin (as
    ``tf.summary.scalar`` writes it), so its Scalars and HParams dashboards chart it.
    """
    return scalar_metadata.create_summary_metadata(display_name=None, description=None)


def create_summary_metadata(
    kind,
    split=None,
    class_names=None,
    thresholds=None,
    key=None,
    method=None,
    encoding=None,
    average_precision=None,
    roc_auc=None,
    task=None,
    slice_keys=None,
):
    """Build the ``SummaryMetadata`` proto for one metricsdiag summary.

    The plugin content is a small JSON object: ``version`` (the lowest format version that
    reads the summary), ``kind``, and where they apply ``split``, ``class_names``,
    ``thresholds`` (ascending floats), ``key`` (the Keras log name of a scalar), ``method``
    (how an average precision was computed: ``"exact"`` from every score, or
    ``"threshold_grid"`` from the threshold counts; absent means exact), ``encoding`` (of
    the stored value: `THRESHOLD_COUNTS_ENCODING` of threshold counts, `CONFUSION_ENCODING` of
    confusion matrices; absent means the tensor as it is) and ``average_precision`` / ``roc_auc`` (on encoded threshold counts that carry them: how
    each was computed, ``"exact"`` or ``"threshold_grid"``) and ``task`` (on the confusion
    counts of a multi-label run: `schema.TASK_MULTILABEL`; absent means single-label) and
    ``slice_keys`` (on slices: the group keys, so that a listing says them). Storing
    them with each summary lets a reader interpret a tensor with nothing else at hand.
    """
    content = {
        "version": _lowest_reader_version(kind, encoding, average_precision, roc_auc, task),
        "kind": kind,
    }
    if split is not None:
        content["split"] = split
    if class_names is not None:
        content["class_names"] = [str(name) for name in class_names]
    if thresholds is not None:
        content["thresholds"] = threshold_grid.encode_thresholds(thresholds)
        if threshold_grid.is_logit_grid(content["thresholds"]):
            content["version"] = max(content["version"], 5)
    if key is not None:
        content["key"] = key
    if method is not None:
        content["method"] = method
    if encoding is not None:
        content["encoding"] = encoding
    if average_precision is not None:
        content["average_precision"] = average_precision
    if roc_auc is not None:
        content["roc_auc"] = roc_auc
    if task is not None:
        content["task"] = task
    if slice_keys is not None:
        content["slice_keys"] = list(slice_keys)
    data_class = (
        summary_pb2.DATA_CLASS_SCALAR if kind == KIND_SCALAR else summary_pb2.DATA_CLASS_TENSOR
    )
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, separators=(",", ":")).encode("utf-8"),
        ),
        data_class=data_class,
    )


def _lowest_reader_version(kind, encoding, average_precision, roc_auc, task):
    if kind == KIND_SLICES:
        return 7
    if kind in EXAMPLE_KINDS:
        return 6
    if task is not None or kind == KIND_EXACT_MATCH or kind == KIND_CONFUSION and encoding:
        return 5
    if roc_auc is not None:
        return 4
    if kind == KIND_LOGS or average_precision is not None:
        return 3
    return 1 if encoding is None else 2


def parse_plugin_content(content):
    """Decode the plugin content of a metricsdiag summary into a dict.

    Raises:
      FormatError: the content is not a metricsdiag JSON object, or it was written by a newer
        format version than this reader knows.
    """
    try:
        content = bytes(content)
    except TypeError as error:
        raise FormatError("metricsdiag summary metadata is not bytes: %s" % error) from error
    parsed = decode_json(content, "metricsdiag summary metadata", MAX_PLUGIN_CONTENT_BYTES)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("kind"), str):
        raise FormatError("metricsdiag summary metadata has no 'kind'")
    version = parsed.get("version")
    if not isinstance(version, int) or version < 1:
        raise FormatError("metricsdiag summary metadata has no valid 'version'")
    if version > FORMAT_VERSION:
        raise FormatError(
            "written by a newer tb-metricsdiag (format version %d; this one reads up to %d):"
            " upgrade tb-metricsdiag" % (version, FORMAT_VERSION)
        )
    names = parsed.get("class_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) > MAX_CLASSES
        or not all(isinstance(name, str) for name in names)
    ):
        raise FormatError(
            "metricsdiag class names must be a list of at most %d strings" % MAX_CLASSES
        )
    return parsed


def listed_content(plugin_content):
    """A series' plugin content as a dict (`parse_plugin_content`), or {} when it cannot be
    read (the reads that follow report why).
    """
    try:
        return parse_plugin_content(plugin_content)
    except FormatError:
        return {}


def class_names_of(content, num_classes):
    """The class names of plugin content, or the defaults when they do not fit."""
    return labels.names_or_default(content.get("class_names"), num_classes)

"""The ``SummaryMetadata`` proto every metricsdiag summary carries.

Free of TensorFlow: every writer (the `tf.summary` functions and the framework-free writer)
builds its metadata here. The layout is documented in ``docs/format.md``.
"""

import json

from tensorboard.compat.proto import summary_pb2

from tb_metricsdiag.format import codecs
from tb_metricsdiag.format.schema import KIND_CONFUSION, KIND_LOGS, KIND_SCALAR, PLUGIN_NAME


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
):
    """Build the ``SummaryMetadata`` proto for one metricsdiag summary.

    The plugin content is a small JSON object: ``version`` (the lowest format version that
    reads the summary), ``kind``, and where they apply ``split``, ``class_names``,
    ``thresholds`` (ascending floats), ``key`` (the Keras log name of a scalar), ``method``
    (how an average precision was computed: ``"exact"`` from every score, or
    ``"threshold_grid"`` from the threshold counts; absent means exact), ``encoding`` (of
    the stored value: `THRESHOLD_COUNTS_ENCODING` of threshold counts, `CONFUSION_ENCODING` of
    confusion matrices; absent means the tensor as it is) and ``average_precision`` / ``roc_auc`` (on encoded threshold counts that carry them: how
    each was computed, ``"exact"`` or ``"threshold_grid"``). Storing
    them with each summary lets a reader interpret a tensor with nothing else at hand.
    """
    content = {
        "version": _lowest_reader_version(kind, encoding, average_precision, roc_auc),
        "kind": kind,
    }
    if split is not None:
        content["split"] = split
    if class_names is not None:
        content["class_names"] = [str(name) for name in class_names]
    if thresholds is not None:
        content["thresholds"] = codecs.encode_thresholds(thresholds)
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


def _lowest_reader_version(kind, encoding, average_precision, roc_auc):
    if kind == KIND_CONFUSION and encoding is not None:
        return 5
    if roc_auc is not None:
        return 4
    if kind == KIND_LOGS or average_precision is not None:
        return 3
    return 1 if encoding is None else 2

"""Plugin name, tag layout and summary metadata of the metricsdiag plugin.

Everything here is free of TensorFlow: the writers (which need TensorFlow), the TensorBoard
backend and the command line all agree on the format through this module alone. The layout
is documented in ``docs/format.md``.
"""

import json

import numpy as np

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "metricsdiag"

# Bumped when the meaning of a stored tensor changes. Readers accept every version up to this
# one and reject newer ones with a clear message rather than misreading them.
FORMAT_VERSION = 1

TAG_PREFIX = PLUGIN_NAME + "/"

SPLITS = ("validation", "train")

# Kinds of summary, stored in the plugin content of every tag.
KIND_CONFUSION = "confusion"  # int [C, C]: row = actual class, column = predicted class
KIND_THRESHOLD_COUNTS = "threshold_counts"  # int [C, 2, T]: TP and FP of `score >= t`
KIND_AVERAGE_PRECISION = "average_precision"  # float64 [C]; NaN where undefined
KIND_LABEL_DISTRIBUTION = "label_distribution"  # int [C]: examples per actual class
KIND_SCALAR = "scalar"  # float scalar: one value of Keras's epoch `logs`
KIND_RUN_INFO = "run_info"  # string scalar: JSON object (model, loss, labels, data sizes)
KIND_OVERLAP = "overlap"  # string scalar: JSON object (train/validation duplicate check)
KIND_EVENTS = "events"  # string scalar: JSON list of problems recorded during training

PER_CLASS_KINDS = (
    KIND_CONFUSION,
    KIND_THRESHOLD_COUNTS,
    KIND_AVERAGE_PRECISION,
    KIND_LABEL_DISTRIBUTION,
)


def split_tag(split, kind):
    """Tag of a per-split summary, e.g. ``metricsdiag/validation/confusion``."""
    return "%s%s/%s" % (TAG_PREFIX, split, kind)


def scalar_tag(key):
    """Tag of one Keras log value, e.g. ``metricsdiag/logs/val_loss``."""
    return "%slogs/%s" % (TAG_PREFIX, key)


RUN_INFO_TAG = TAG_PREFIX + KIND_RUN_INFO
OVERLAP_TAG = TAG_PREFIX + KIND_OVERLAP
EVENTS_TAG = TAG_PREFIX + KIND_EVENTS


class FormatError(ValueError):
    """Stored metricsdiag data that this version cannot read."""


def create_summary_metadata(
    kind, split=None, class_names=None, thresholds=None, key=None, method=None
):
    """Build the ``SummaryMetadata`` proto for one metricsdiag summary.

    The plugin content is a small JSON object: ``version``, ``kind``, and where they apply
    ``split``, ``class_names``, ``thresholds`` (ascending floats), ``key`` (the Keras log
    name of a scalar) and ``method`` (how an average precision was computed: ``"exact"`` from
    every score, or ``"threshold_grid"`` from the threshold counts; absent means exact). Storing them with each summary lets a reader interpret a tensor with
    nothing else at hand.
    """
    content = {"version": FORMAT_VERSION, "kind": kind}
    if split is not None:
        content["split"] = split
    if class_names is not None:
        content["class_names"] = [str(name) for name in class_names]
    if thresholds is not None:
        content["thresholds"] = _encode_thresholds(thresholds)
    if key is not None:
        content["key"] = key
    if method is not None:
        content["method"] = method
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


def _encode_thresholds(thresholds):
    """An evenly spaced grid (``numpy.linspace(start, stop, num)``, bit for bit) is stored as
    those three numbers, 2 KB less per summary; any other grid as the list of values."""
    values = np.asarray(thresholds, dtype=np.float64)
    if values.size >= 2:
        start, stop = float(values[0]), float(values[-1])
        if np.array_equal(values, np.linspace(start, stop, values.size)):
            return {"start": start, "stop": stop, "num": int(values.size)}
    return [float(t) for t in values]


def decode_thresholds(encoded, expected_size=None):
    """The threshold array stored in plugin content (list or linspace form).

    With ``expected_size`` (the T of the stored counts), a grid of any other size is refused
    before it is built, so a corrupt ``num`` cannot make the reader allocate without bound.
    """
    try:
        if isinstance(encoded, dict):
            num = encoded["num"]
            if not isinstance(num, int) or isinstance(num, bool) or num < 1:
                raise ValueError("num must be a positive integer, got %r" % (num,))
            if expected_size is not None and num != expected_size:
                raise FormatError(
                    "metricsdiag thresholds: %d values stored, %d expected" % (num, expected_size)
                )
            values = np.linspace(float(encoded["start"]), float(encoded["stop"]), num)
        else:
            values = np.asarray(encoded, dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError("metricsdiag thresholds are malformed: %s" % error)
    if expected_size is not None and values.shape != (expected_size,):
        raise FormatError(
            "metricsdiag thresholds: %s values stored, %d expected" % (values.shape, expected_size)
        )
    if values.ndim != 1 or values.size < 1 or not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
        raise FormatError("metricsdiag thresholds must be finite and strictly ascending")
    return values


def parse_plugin_content(content):
    """Decode the plugin content of a metricsdiag summary into a dict.

    Raises:
      FormatError: the content is not a metricsdiag JSON object, or it was written by a newer
        format version than this reader knows.
    """
    try:
        parsed = json.loads(bytes(content).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        raise FormatError("metricsdiag summary metadata is not valid JSON: %s" % error)
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
    return parsed

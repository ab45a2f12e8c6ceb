"""Names of the event-file format: plugin name, format version, tags, kinds and `FormatError`.

The layout is documented in ``docs/format.md``. Free of TensorFlow and protobuf.
"""

import re

PLUGIN_NAME = "metricsdiag"


# Bumped when the meaning of a stored tensor changes. Readers accept every version up to this
# one and reject newer ones with a clear message rather than misreading them. Each summary
# carries the lowest version that reads it, so a reader of version 1 still reads everything
# but the threshold counts of version 2 (`THRESHOLD_COUNTS_ENCODING`) and the logs of version 3
# (`KIND_LOGS`); a reader of version 4 all but the encoded confusion matrices of version 5
# (`CONFUSION_ENCODING`) and the multi-label counts (`TASK_MULTILABEL`, `KIND_EXACT_MATCH`).
FORMAT_VERSION = 5


TAG_PREFIX = PLUGIN_NAME + "/"


SPLITS = ("validation", "train")


# Any split a writer may write besides `SPLITS` (a held-out set of its own: ``test``, ``ood``,
# one per eval dataset): 1 to 64 letters, digits, ``_``, ``.`` or ``-``, one part of a tag.
SPLIT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")


def is_split_name(split):
    """Whether ``split`` may name a split (`SPLIT_NAME`; `SPLITS` are such names)."""
    return isinstance(split, str) and SPLIT_NAME.match(split) is not None


# Kinds of summary, stored in the plugin content of every tag.
KIND_CONFUSION = "confusion"  # int [C, C] or encoded: row = actual class, column = predicted


KIND_THRESHOLD_COUNTS = "threshold_counts"  # int [C, 2, T]: TP and FP of `score >= t` (encoded)


KIND_AVERAGE_PRECISION = "average_precision"  # float64 [C]; NaN where undefined


KIND_LABEL_DISTRIBUTION = "label_distribution"  # int [C]: examples per actual class


KIND_LOGS = "logs"  # string scalar: JSON object of Keras's epoch `logs` (format version 3)


KIND_SCALAR = "scalar"  # float scalar: one value of Keras's epoch `logs` (before version 3)


KIND_RUN_INFO = "run_info"  # string scalar: JSON object (model, loss, labels, data sizes)


KIND_OVERLAP = "overlap"  # string scalar: JSON object (train/validation duplicate check)


KIND_CALIBRATION = "calibration"  # float64 [3, B]: per bin count, confidence sum, correct


# int [2]: rows whose predicted label set equals the actual one, and rows (multi-label)
KIND_EXACT_MATCH = "exact_match"


# The tasks a run's counts describe. A multi-label run stores, under the confusion tag (with
# ``"task": TASK_MULTILABEL`` in its plugin content), one ``[[tn, fp], [fn, tp]]`` per label:
# int [K, 2, 2] (format version 5).
TASK_BINARY = "binary"
TASK_MULTICLASS = "multiclass"
TASK_MULTILABEL = "multilabel"


def task_of(num_classes, multilabel):
    """The task of counts of ``num_classes`` classes (labels, when ``multilabel``)."""
    if multilabel:
        return TASK_MULTILABEL
    return TASK_BINARY if num_classes == 2 else TASK_MULTICLASS


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
    """Tag of one Keras log value, e.g. ``metricsdiag/logs/val_loss``, as written before format
    version 3 (which writes them all in one `LOGS_TAG` series).
    """
    return "%slogs/%s" % (TAG_PREFIX, key)


LOGS_TAG = TAG_PREFIX + KIND_LOGS


RUN_INFO_TAG = TAG_PREFIX + KIND_RUN_INFO


OVERLAP_TAG = TAG_PREFIX + KIND_OVERLAP


EVENTS_TAG = TAG_PREFIX + KIND_EVENTS


class FormatError(ValueError):
    """Stored metricsdiag data that this version cannot read."""


# Bounds on what a reader decodes. Everything in an event file is untrusted (a logdir is often
# shared), so a reader refuses, with a `FormatError`, whatever passes these before decoding it
# rather than letting it take the memory or the stack of the process that serves every run.

MAX_CLASSES = 2048
"""Most classes of a stored matrix or list of class names (a 2048 x 2048 int64 matrix is 32
MB). A declared size above it is refused before anything is allocated."""


MAX_COUNT_VALUES = 1 << 24
"""Most integers of one point of threshold counts (``C x 2 x T``: 128 MB as int64)."""


MAX_TENSOR_ELEMENTS = 1 << 24
"""Most elements of one stored tensor of this plugin, checked on its declared shape."""


MAX_PLUGIN_CONTENT_BYTES = 1 << 20
"""Largest plugin content (the JSON of a summary's metadata: class names, thresholds)."""


MAX_TEXT_BYTES = 4 << 20
"""Largest stored JSON text (run information, logs, recorded events)."""


MAX_JSON_DEPTH = 16
"""Deepest nesting of arrays and objects accepted in stored JSON: what this plugin writes is at
most a few levels deep, and a decoder's stack grows with the depth."""


MAX_LOGIT_GRID = 100_001
"""Most values of a stored logit grid: each is made in Python (`counting.logit_thresholds`)."""


MAX_CALIBRATION_BINS = 1000
"""The most calibration bins a stored summary may declare."""


# How threshold counts are stored since format version 2 (`encode_threshold_counts`). Version
# 1 stored the ``[C, 2, T]`` integers as they are; readers still read that. Since version 3 the
# payload also carries the average precision of each class (the content's
# ``"average_precision"`` then names how it was computed), which versions 1 and 2 wrote as a
# summary of its own.
THRESHOLD_COUNTS_ENCODING = "zlib_bucket_deltas"


# How a confusion matrix is stored since format version 5 when that is smaller than its dense
# integers (`confusion_counts.encode_confusion`): the diagonal, then the nonzero cells off it.
# Matrices stored dense (every matrix before version 5, and small ones since) still say version 1.
CONFUSION_ENCODING = "diagonal_sparse_cells"

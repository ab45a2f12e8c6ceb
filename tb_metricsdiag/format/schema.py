"""Names of the event-file format: plugin name, format version, tags, kinds, split names and
`FormatError`.

The layout is documented in ``docs/format.md``. Free of TensorFlow and protobuf.
"""

import re

PLUGIN_NAME = "metricsdiag"


# Bumped when the meaning of a stored tensor changes. Readers accept every version up to this
# one and reject newer ones with a clear message rather than misreading them. Each summary
# carries the lowest version that reads it, so a reader of version 1 still reads everything
# but the threshold counts of version 2 (`THRESHOLD_COUNTS_ENCODING`) and the logs of version 3
# (`KIND_LOGS`); a reader of version 4 all but the encoded confusion matrices of version 5
# (`CONFUSION_ENCODING`) and the multi-label counts (`TASK_MULTILABEL`, `KIND_EXACT_MATCH`); a
# reader of version 5 all but the example records of version 6 (`EXAMPLE_KINDS`); a reader of
# version 6 all but the slices of version 7 (`KIND_SLICES`).
FORMAT_VERSION = 7


TAG_PREFIX = PLUGIN_NAME + "/"


SPLITS = ("validation", "train")
"""The splits every writer knows by name (the Keras callback's ``validation_data`` and
``train_data``); any other name that `is_split_name` accepts is a split too (``test``, ``ood``)."""


SPLIT_NAME_RULE = "1 to 64 characters from A-Z, a-z, 0-9, '_', '.' and '-'"

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")


def is_split_name(name):
    """Whether ``name`` is a split name (`SPLIT_NAME_RULE`): ``validation``, ``train``, ``test``,
    ``ood``, ``eval_short``... It is one path segment of the split's tags (`split_tag`).
    """
    return isinstance(name, str) and _SPLIT_NAME.match(name) is not None


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


# Example records (format version 6, `format/example_records.py`, `format/example_ids.py`,
# `format/previews.py`), all string scalars of encoded bytes:
# per epoch, the kept examples of every confusion cell, the counts per cell and per-example
# correctness and confidence
KIND_EXAMPLES = "examples"
# per epoch, the examples confident learning flags and the label-noise statistic's inputs
KIND_LABEL_ISSUES = "label_issues"
# the split's example ids, at the first step and wherever they change
KIND_EXAMPLE_IDS = "example_ids"
# thumbnails and texts of kept examples, each stored once per run
KIND_PREVIEWS = "previews"
# per epoch, per curve, bin between two thresholds and polarity, the first examples by position
# with their scores: which examples cross a moved threshold (`format/crossings.py`)
KIND_CROSSINGS = "crossings"

EXAMPLE_KINDS = (
    KIND_EXAMPLES,
    KIND_LABEL_ISSUES,
    KIND_EXAMPLE_IDS,
    KIND_PREVIEWS,
    KIND_CROSSINGS,
)


# Slices (format version 7, `format/slices.py`): per epoch, per group key and value, the
# confusion counts, threshold counts, calibration bins and top examples of every cell
KIND_SLICES = "slices"

OTHER_SLICE = "(other)"
"""The value of a key's pooled slice: the rows whose value is past the key's cap of values."""

PER_CLASS_KINDS = (
    KIND_CONFUSION,
    KIND_THRESHOLD_COUNTS,
    KIND_AVERAGE_PRECISION,
    KIND_LABEL_DISTRIBUTION,
)


def split_tag(split, kind):
    """Tag of a per-split summary, e.g. ``metricsdiag/validation/confusion``."""
    return "%s%s/%s" % (TAG_PREFIX, split, kind)


HEADLINE_FIGURES = ("accuracy", "balanced_accuracy", "macro_f1", "ece")
"""The headline scalars of a split (`core.headline.headline_figures`), beside ``recall/<class>``
and ``precision/<class>``: TensorBoard scalars (plugin ``scalars``), not metricsdiag data."""

HEADLINE_PER_CLASS = ("recall", "precision")


def headline_tag(split, figure, class_name=None):
    """The tag of a headline scalar: ``metricsdiag/<split>/<figure>``, or per class
    ``metricsdiag/<split>/<figure>/<class name>``. Stored under TensorBoard's own scalars plugin,
    so the metricsdiag series (`split_tag`, same prefix) never meet them in a listing.
    """
    tag = "%s%s/%s" % (TAG_PREFIX, split, figure)
    return tag if class_name is None else "%s/%s" % (tag, class_name)


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


MAX_SPLIT_EXAMPLES = 1 << 24
"""Most examples of one split's evaluation in an example record: its correctness bits, its
confidences and its id table have one entry per example (16.8 million: 2 MB of bits and 16 MB
of confidences per epoch). A declared number above it is refused before anything is read."""


MAX_KEPT_EXAMPLES = 1 << 20
"""Most kept examples of one epoch's record (the writers keep at most 10 per non-empty cell
when their budget is exceeded: 10,000 at 1,000 classes of 10,000 examples)."""


MAX_LISTED_LABEL_ISSUES = 1 << 20
"""Most label issues listed in one epoch's record (the writers list at most a few thousand)."""


MAX_TOP_LABEL_BINS = 1000
"""Most bins of the stored `label_issues.top_label_bins` (the writers store 92)."""


MAX_EXAMPLE_ID_CHARS = 128
"""Longest example id: a string of 1 to 128 characters (the contract), or an integer."""


MAX_GROUP_KEYS = 8
"""Most group keys of a slices record (the contract's cap on ``groups``)."""

MAX_GROUP_VALUES = 257
"""Most slices of one key in a slices record: 256 values and the pool `OTHER_SLICE`."""

MAX_GROUP_VALUE_CHARS = 128
"""Longest group value as shown (its ``str``): writers refuse longer ones."""

MAX_EXAMPLE_ID_BYTES = 4 * MAX_EXAMPLE_ID_CHARS
"""Longest example id in UTF-8 (4 bytes a character at most)."""


MAX_ID_TABLE_BYTES = 64 << 20
"""Largest stored id table (one split's ids; a million ids of up to 60 characters)."""


MAX_ID_KEY_BYTES = 64 << 20
"""Most bytes of the keys that string ids are matched by: one fixed-width key per id, as wide
as the longest id plus one byte, rounded up to 8 (`example_ids.ExampleIds.keys`). Ids of
similar lengths fit whenever their table does; a table of a million short ids and one long id,
which would take 520 MB to match, is refused."""


MAX_PREVIEW_TEXT_CHARS = 1000
"""Longest text preview: writers keep the first 1,000 characters."""


MAX_THUMBNAIL_SIDE = 64
"""Widest and tallest image preview, in pixels: writers shrink larger images to fit."""


MAX_THUMBNAIL_BYTES = 1 << 15
"""Largest stored thumbnail (a PNG of at most 64 x 64 RGB pixels, 12 KB unfiltered)."""


MAX_PREVIEWS_PER_POINT = 1 << 16
"""Most previews in one stored point."""


MAX_PREVIEW_POINT_BYTES = 16 << 20
"""Largest stored point of previews."""


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

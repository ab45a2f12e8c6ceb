"""Plugin name, tag layout and summary metadata of the metricsdiag plugin.

Everything here is free of TensorFlow: the writers (which need TensorFlow), the TensorBoard
backend and the command line all agree on the format through this module alone. The layout
is documented in ``docs/format.md``.
"""

import json
import zlib

import numpy as np

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "metricsdiag"

# Bumped when the meaning of a stored tensor changes. Readers accept every version up to this
# one and reject newer ones with a clear message rather than misreading them. Each summary
# carries the lowest version that reads it, so a reader of version 1 still reads everything
# but the threshold counts of version 2 (`THRESHOLD_COUNTS_ENCODING`) and the logs of version 3
# (`KIND_LOGS`).
FORMAT_VERSION = 3

TAG_PREFIX = PLUGIN_NAME + "/"

SPLITS = ("validation", "train")

# Kinds of summary, stored in the plugin content of every tag.
KIND_CONFUSION = "confusion"  # int [C, C]: row = actual class, column = predicted class
KIND_THRESHOLD_COUNTS = "threshold_counts"  # int [C, 2, T]: TP and FP of `score >= t` (encoded)
KIND_AVERAGE_PRECISION = "average_precision"  # float64 [C]; NaN where undefined
KIND_LABEL_DISTRIBUTION = "label_distribution"  # int [C]: examples per actual class
KIND_LOGS = "logs"  # string scalar: JSON object of Keras's epoch `logs` (format version 3)
KIND_SCALAR = "scalar"  # float scalar: one value of Keras's epoch `logs` (before version 3)
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
    """Tag of one Keras log value, e.g. ``metricsdiag/logs/val_loss``, as written before format
    version 3 (which writes them all in one `LOGS_TAG` series)."""
    return "%slogs/%s" % (TAG_PREFIX, key)


LOGS_TAG = TAG_PREFIX + KIND_LOGS
RUN_INFO_TAG = TAG_PREFIX + KIND_RUN_INFO
OVERLAP_TAG = TAG_PREFIX + KIND_OVERLAP
EVENTS_TAG = TAG_PREFIX + KIND_EVENTS


class FormatError(ValueError):
    """Stored metricsdiag data that this version cannot read."""


# How threshold counts are stored since format version 2 (`encode_threshold_counts`). Version
# 1 stored the ``[C, 2, T]`` integers as they are; readers still read that. Since version 3 the
# payload also carries the average precision of each class (the content's
# ``"average_precision"`` then names how it was computed), which versions 1 and 2 wrote as a
# summary of its own.
THRESHOLD_COUNTS_ENCODING = "zlib_bucket_deltas"
# First byte of an encoded payload: the dtype of its values, little-endian.
_DELTA_DTYPES = {b"B": np.dtype("u1"), b"H": np.dtype("<u2"), b"i": np.dtype("<i4"), b"q": np.dtype("<i8")}
_DELTA_CODES = {dtype.itemsize: code for code, dtype in _DELTA_DTYPES.items()}  # as compact_ints


def compact_ints(values):
    """Integers in the smallest of uint8, uint16, int32 and int64 that holds them all (int64
    when one is negative): stored counts take a quarter or half the bytes of int32."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and values.min() < 0:
        return values
    largest = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def encode_threshold_counts(counts, average_precision=None):
    """The stored bytes of threshold counts ``[C, 2, T]`` (TP and FP at ascending thresholds),
    and of ``average_precision`` ``[C]`` when given.

    The counts at each threshold minus those at the next (the examples of each bucket between
    two thresholds; the last threshold keeps its count), in the smallest integer type that
    holds them (`compact_ints`), compressed with zlib, after one byte naming that type.
    Cumulative counts repeat themselves across thresholds and buckets are mostly small or
    empty: at 10 classes and 201 thresholds this is 3 to 7 times smaller than the counts.
    TensorBoard keeps every epoch of them in memory for this plugin and reads them all at
    start-up, so their size is start-up time. The average precision follows the zlib stream
    as ``C`` little-endian float64: one summary per epoch rather than two, since TensorBoard's
    cost of keeping every point is per point. Lossless: `decode_threshold_counts` inverts it.
    """
    counts = np.asarray(counts, dtype=np.int64)
    deltas = counts.copy()
    deltas[..., :-1] -= counts[..., 1:]
    values = compact_ints(deltas)
    code = _DELTA_CODES[values.itemsize]
    payload = code + zlib.compress(values.astype(_DELTA_DTYPES[code]).tobytes())
    if average_precision is not None:
        average_precision = np.asarray(average_precision, dtype="<f8")
        if average_precision.shape != counts.shape[:1]:
            raise ValueError("average precision of shape %s does not fit %d classes"
                             % (average_precision.shape, counts.shape[0]))
        payload += average_precision.tobytes()
    return payload


def decode_threshold_counts(payload, num_classes, with_average_precision=False):
    """``(counts, average_precision)`` from bytes of `encode_threshold_counts`: ``[C, 2, T]``
    int64 threshold counts and, ``with_average_precision``, ``[C]`` float64 (else None). What a
    payload can decode to is bounded by zlib's own ratio (at most about 1032 bytes a byte).

    Raises:
      FormatError: the payload is not such bytes, or does not hold ``[num_classes, 2, T]``
        (and ``[num_classes]`` average precisions when expected).
    """
    if not isinstance(payload, bytes) or len(payload) < 2 or payload[:1] not in _DELTA_DTYPES:
        raise FormatError("encoded threshold counts are malformed")
    dtype = _DELTA_DTYPES[payload[:1]]
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(payload[1:])
    except zlib.error as error:
        raise FormatError("encoded threshold counts are not valid zlib data: %s" % error)
    if not inflate.eof:
        raise FormatError("encoded threshold counts are truncated")
    trailing = inflate.unused_data
    expected = 8 * num_classes if with_average_precision else 0
    if len(trailing) != expected:
        raise FormatError(
            "encoded threshold counts are followed by %d bytes, expected %d (%s)"
            % (len(trailing), expected,
               "%d average precisions" % num_classes if with_average_precision else "nothing")
        )
    average_precision = None
    if with_average_precision:
        average_precision = np.frombuffer(trailing, dtype="<f8").astype(np.float64)
    row = 2 * num_classes * dtype.itemsize
    if num_classes < 1 or not raw or len(raw) % row:
        raise FormatError(
            "encoded threshold counts of %d bytes do not fit %d classes" % (len(raw), num_classes)
        )
    deltas = np.frombuffer(raw, dtype=dtype).astype(np.int64).reshape(num_classes, 2, -1)
    # Counts at a threshold: the buckets from there up.
    return np.cumsum(deltas[..., ::-1], axis=-1)[..., ::-1], average_precision


def create_summary_metadata(
    kind, split=None, class_names=None, thresholds=None, key=None, method=None, encoding=None,
    average_precision=None,
):
    """Build the ``SummaryMetadata`` proto for one metricsdiag summary.

    The plugin content is a small JSON object: ``version`` (the lowest format version that
    reads the summary), ``kind``, and where they apply ``split``, ``class_names``,
    ``thresholds`` (ascending floats), ``key`` (the Keras log name of a scalar), ``method``
    (how an average precision was computed: ``"exact"`` from every score, or
    ``"threshold_grid"`` from the threshold counts; absent means exact), ``encoding`` (of
    the stored value: `THRESHOLD_COUNTS_ENCODING`; absent means the tensor as it is) and
    ``average_precision`` (on encoded threshold counts that carry it: its method). Storing
    them with each summary lets a reader interpret a tensor with nothing else at hand.
    """
    content = {"version": _lowest_reader_version(kind, encoding, average_precision), "kind": kind}
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
    if encoding is not None:
        content["encoding"] = encoding
    if average_precision is not None:
        content["average_precision"] = average_precision
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


def _lowest_reader_version(kind, encoding, average_precision):
    if kind == KIND_LOGS or average_precision is not None:
        return 3
    return 1 if encoding is None else 2


# How `encode_logs` spells the values strict JSON has no number for.
_NON_FINITE_LOGS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def encode_logs(logs):
    """The JSON text of a `KIND_LOGS` summary: ``{key: number}`` of the numeric values of
    ``logs`` (a Keras ``logs`` dict), NaN and infinities as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, so that the JSON stays strict. Values that are not one
    number are left out. None when no value is."""
    values = {}
    for key, value in (logs or {}).items():
        try:
            number = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
        if np.isnan(number):
            values[str(key)] = "NaN"
        elif np.isinf(number):
            values[str(key)] = "Infinity" if number > 0 else "-Infinity"
        else:
            values[str(key)] = number
    if not values:
        return None
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def decode_logs(text):
    """``{key: float}`` of a `KIND_LOGS` summary's JSON text (`encode_logs`).

    Raises:
      FormatError: the text is not a JSON object whose values are numbers or the spellings
        of `encode_logs` for NaN and the infinities.
    """
    try:
        document = json.loads(text)
    except ValueError as error:
        raise FormatError("stored logs are not JSON: %s" % error)
    if not isinstance(document, dict):
        raise FormatError("stored logs are a JSON %s, expected an object" % type(document).__name__)
    values = {}
    for key, value in document.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = float(value)
        elif isinstance(value, str) and value in _NON_FINITE_LOGS:
            values[key] = _NON_FINITE_LOGS[value]
        else:
            raise FormatError("stored log %r is %r, expected a number" % (key, value))
    return values


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

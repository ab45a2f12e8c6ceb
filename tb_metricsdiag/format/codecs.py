"""Every encoder and decoder of stored metricsdiag values, and the checks on what is read.

Writers encode with these functions; the reader decodes with them. Nothing here trusts what
it decodes: every shape and size is checked, and a problem is a `FormatError`. Pure NumPy.
"""

import json
import re
import zlib

import numpy as np

from tb_metricsdiag.core import counting, labels, metrics
from tb_metricsdiag.format.schema import (
    CONFUSION_ENCODING,
    FORMAT_VERSION,
    MAX_CLASSES,
    MAX_COUNT_VALUES,
    MAX_JSON_DEPTH,
    MAX_PLUGIN_CONTENT_BYTES,
    MAX_TEXT_BYTES,
    TASK_MULTILABEL,
    THRESHOLD_COUNTS_ENCODING,
    FormatError,
)

# Most values of a stored logit grid: each is made in Python (`counting.logit_thresholds`).
MAX_LOGIT_GRID = 100_001

# A JSON string, escapes included: removed before the nesting of the rest is measured.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')

# First byte of an encoded payload: the dtype of its values, little-endian.
_DELTA_DTYPES = {
    b"B": np.dtype("u1"),
    b"H": np.dtype("<u2"),
    b"i": np.dtype("<i4"),
    b"q": np.dtype("<i8"),
}


_DELTA_CODES = {dtype.itemsize: code for code, dtype in _DELTA_DTYPES.items()}  # as compact_ints


def compact_ints(values):
    """Integers in the smallest of uint8, uint16, int32 and int64 that holds them all (int64
    when one is negative): stored counts take a quarter or half the bytes of int32.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and values.min() < 0:
        return values
    largest = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def encode_threshold_counts(counts, average_precision=None, roc_auc=None):
    """The stored bytes of threshold counts ``[C, 2, T]`` (TP and FP at ascending thresholds),
    of ``average_precision`` ``[C]`` when given, and then of ``roc_auc`` ``[C]`` (format version
    4; only with an average precision).

    The counts at each threshold minus those at the next (the examples of each bucket between
    two thresholds; the last threshold keeps its count), in the smallest integer type that
    holds them (`compact_ints`), compressed with zlib, after one byte naming that type.
    Cumulative counts repeat themselves across thresholds and buckets are mostly small or
    empty, so this is several times smaller than the counts (docs/benchmarks.md, disk size).
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
            raise ValueError(
                "average precision of shape %s does not fit %d classes"
                % (average_precision.shape, counts.shape[0])
            )
        payload += average_precision.tobytes()
    if roc_auc is not None:
        roc_auc = np.asarray(roc_auc, dtype="<f8")
        if average_precision is None or roc_auc.shape != counts.shape[:1]:
            raise ValueError(
                "ROC AUC of shape %s does not fit %d classes with an average precision"
                % (roc_auc.shape, counts.shape[0])
            )
        payload += roc_auc.tobytes()
    return payload


def decode_threshold_counts(
    payload, num_classes, with_average_precision=False, num_thresholds=None, with_roc_auc=False
):
    """``(counts, average_precision, roc_auc)`` from bytes of `encode_threshold_counts`:
    ``[C, 2, T]`` int64 threshold counts and, ``with_average_precision`` / ``with_roc_auc``,
    ``[C]`` float64 each (else None).

    The size the counts must inflate to is known before inflating (``C x 2 x T`` values of the
    type the first byte names; without ``num_thresholds``, at most `MAX_COUNT_VALUES` values):
    at most that many bytes are inflated, so a payload crafted to inflate to gigabytes costs
    what a genuine one does.

    Raises:
      FormatError: the payload is not such bytes, inflates to more than that, or does not
        hold ``[num_classes, 2, T]`` (and ``[num_classes]`` average precisions when expected).
    """
    if not isinstance(payload, bytes) or len(payload) < 2 or payload[:1] not in _DELTA_DTYPES:
        raise FormatError("encoded threshold counts are malformed")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise FormatError(
            "threshold counts of %d classes, expected 1 to %d" % (num_classes, MAX_CLASSES)
        )
    dtype = _DELTA_DTYPES[payload[:1]]
    values = MAX_COUNT_VALUES if num_thresholds is None else 2 * num_classes * num_thresholds
    expected_bytes = values * dtype.itemsize
    inflate = zlib.decompressobj()
    try:
        # One byte more than expected tells a payload that inflates too far.
        raw = inflate.decompress(payload[1:], expected_bytes + 1)
    except zlib.error as error:
        raise FormatError("encoded threshold counts are not valid zlib data: %s" % error) from error
    if len(raw) > expected_bytes:
        raise FormatError(
            "encoded threshold counts inflate to more than the %d bytes of %d values"
            % (expected_bytes, values)
        )
    if not inflate.eof:
        raise FormatError("encoded threshold counts are truncated")
    trailing = inflate.unused_data
    vectors = int(bool(with_average_precision)) + int(bool(with_roc_auc))
    expected = 8 * num_classes * vectors
    if len(trailing) != expected:
        raise FormatError(
            "encoded threshold counts are followed by %d bytes, expected %d (%s)"
            % (
                len(trailing),
                expected,
                " and ".join(
                    "%d %s" % (num_classes, what)
                    for what, wanted in (
                        ("average precisions", with_average_precision),
                        ("ROC AUCs", with_roc_auc),
                    )
                    if wanted
                )
                or "nothing",
            )
        )
    per_class = (
        np.frombuffer(trailing, dtype="<f8").astype(np.float64).reshape(vectors, num_classes)
    )
    average_precision = per_class[0] if with_average_precision else None
    roc_auc = per_class[-1] if with_roc_auc else None
    row = 2 * num_classes * dtype.itemsize
    if not raw or len(raw) % row or (num_thresholds is not None and len(raw) != expected_bytes):
        raise FormatError(
            "encoded threshold counts of %d bytes do not fit %d classes" % (len(raw), num_classes)
        )
    deltas = np.frombuffer(raw, dtype=dtype).astype(np.int64).reshape(num_classes, 2, -1)
    # Counts at a threshold: the buckets from there up.
    return np.cumsum(deltas[..., ::-1], axis=-1)[..., ::-1], average_precision, roc_auc


def decode_json(text, what, max_bytes=MAX_TEXT_BYTES):
    """The JSON value of ``text`` (str or UTF-8 bytes), of at most ``max_bytes`` bytes and
    `MAX_JSON_DEPTH` levels of arrays and objects, both checked before decoding.

    Raises:
      FormatError: ``text`` is larger or deeper than that, not UTF-8, or not JSON.
    """
    if len(text) > max_bytes:
        raise FormatError(
            "%s of %d bytes, more than the %d accepted" % (what, len(text), max_bytes)
        )
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError("%s is not UTF-8: %s" % (what, error)) from error
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise FormatError(
            "%s is nested %d levels deep, more than the %d accepted" % (what, depth, MAX_JSON_DEPTH)
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FormatError("%s: not JSON (%s)" % (what, error)) from error


def _json_depth(text):
    """Deepest nesting of ``[`` and ``{`` in JSON ``text``, brackets inside strings left out;
    without recursion, so any depth is measured.
    """
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    if skeleton.size == 0:
        return 0
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(max(0, np.cumsum(steps).max()))


# How `encode_logs` spells the values strict JSON has no number for.
_NON_FINITE_LOGS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def encode_logs(logs):
    """The JSON text of a `KIND_LOGS` summary: ``{key: number}`` of the numeric values of
    ``logs`` (a Keras ``logs`` dict), NaN and infinities as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, so that the JSON stays strict. Values that are not one
    number are left out. None when no value is.
    """
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
    document = decode_json(text, "stored logs")
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


def encode_thresholds(thresholds):
    """An evenly spaced grid (``numpy.linspace(start, stop, num)``, bit for bit) is stored as
    those three numbers, the default grid spaced in logit (`counting.logit_thresholds` over
    `counting.DEFAULT_LOGIT_RANGE`, bit for bit) as ``{"logit_range", "num"}`` (format version
    5), not the values of every summary; any other grid as the list of values.
    """
    values = np.asarray(thresholds, dtype=np.float64)
    if values.size >= 2:
        start, stop = float(values[0]), float(values[-1])
        if np.array_equal(values, np.linspace(start, stop, values.size)):
            return {"start": start, "stop": stop, "num": int(values.size)}
        logit_range = counting.DEFAULT_LOGIT_RANGE
        if values.size <= MAX_LOGIT_GRID and np.array_equal(
            values, counting.logit_thresholds(values.size, logit_range)
        ):
            return {"logit_range": logit_range, "num": int(values.size)}
    return [float(t) for t in values]


def is_logit_grid(encoded):
    """Whether stored thresholds are in the logit form of `encode_thresholds` (version 5)."""
    return isinstance(encoded, dict) and "logit_range" in encoded


def decode_thresholds(encoded, expected_size=None):
    """The threshold array stored in plugin content (list, linspace or logit form).

    With ``expected_size`` (the T of the stored counts), a grid of any other size is refused
    before it is built, so a corrupt ``num`` cannot make the reader allocate without bound.
    """
    try:
        if isinstance(encoded, dict):
            num = encoded["num"]
            if (
                not isinstance(num, int)
                or isinstance(num, bool)
                or not 1 <= num <= MAX_COUNT_VALUES
            ):
                raise ValueError(
                    "num must be an integer in [1, %d], got %r" % (MAX_COUNT_VALUES, num)
                )
            if expected_size is not None and num != expected_size:
                raise FormatError(
                    "metricsdiag thresholds: %d values stored, %d expected" % (num, expected_size)
                )
            if is_logit_grid(encoded):
                if num > MAX_LOGIT_GRID:
                    raise ValueError(
                        "a logit grid of %d values, more than %d" % (num, MAX_LOGIT_GRID)
                    )
                logit_range = encoded["logit_range"]
                if not isinstance(logit_range, (int, float)) or isinstance(logit_range, bool):
                    raise ValueError("logit_range must be a number, got %r" % (logit_range,))
                values = counting.logit_thresholds(num, float(logit_range))
            else:
                values = np.linspace(float(encoded["start"]), float(encoded["stop"]), num)
        else:
            values = np.asarray(encoded, dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError("metricsdiag thresholds are malformed: %s" % error) from error
    if expected_size is not None and values.shape != (expected_size,):
        raise FormatError(
            "metricsdiag thresholds: %s values stored, %d expected" % (values.shape, expected_size)
        )
    if (
        values.ndim != 1
        or values.size < 1
        or not np.all(np.isfinite(values))
        or np.any(np.diff(values) <= 0)
    ):
        raise FormatError("metricsdiag thresholds must be finite and strictly ascending")
    return values


def listed_content(plugin_content):
    """A series' plugin content as a dict (`parse_plugin_content`), or {} when it cannot be
    read (the reads that follow report why).
    """
    try:
        return parse_plugin_content(plugin_content)
    except FormatError:
        return {}


def stored_threshold_counts(content, datum, num_classes):
    """(thresholds [T], tp [C, T], fp [C, T], average precision [C] or None, ROC AUC [C] or
    None) of one threshold-counts datum: encoded bytes (format version 2, with the AP since
    version 3 and the ROC AUC since version 4: `decode_threshold_counts`) or the ``[C, 2, T]``
    integers themselves (version 1).

    The thresholds are read first: with C they give the size of the counts, checked against
    `MAX_COUNT_VALUES` before the counts are decoded. Counts must be non-negative and must not
    grow with the threshold (``score >= t`` holds for fewer examples as ``t`` rises).
    """
    values = np.asarray(datum.numpy)
    encoding = content.get("encoding")
    if encoding is not None and encoding != THRESHOLD_COUNTS_ENCODING:
        raise FormatError("threshold counts in an unknown encoding %r" % (encoding,))
    thresholds = decode_thresholds(content.get("thresholds"))
    if 2 * num_classes * thresholds.size > MAX_COUNT_VALUES:
        raise FormatError(
            "threshold counts of %d classes at %d thresholds: more than %d values"
            % (num_classes, thresholds.size, MAX_COUNT_VALUES)
        )
    average_precision = roc_auc = None
    if encoding == THRESHOLD_COUNTS_ENCODING:
        if values.shape != ():
            raise FormatError(
                "encoded threshold counts of shape %s, expected a scalar" % (values.shape,)
            )
        values, average_precision, roc_auc = decode_threshold_counts(
            values.item(),
            num_classes,
            with_average_precision="average_precision" in content,
            num_thresholds=thresholds.size,
            with_roc_auc="roc_auc" in content,
        )
    elif values.ndim != 3 or values.shape[:2] != (num_classes, 2):
        raise FormatError(
            "threshold counts of shape %s do not fit %d classes" % (values.shape, num_classes)
        )
    elif not np.issubdtype(values.dtype, np.integer):
        raise FormatError("threshold counts hold %s values, expected integers" % values.dtype)
    if values.shape[2] != thresholds.size:
        raise FormatError(
            "metricsdiag thresholds: %d values stored, %d expected"
            % (thresholds.size, values.shape[2])
        )
    values = values.astype(np.int64)
    if values.size and values.min() < 0:
        raise FormatError("threshold counts hold negative counts")
    if np.any(values[..., 1:] > values[..., :-1]):
        raise FormatError("threshold counts grow with the threshold")
    return thresholds, values[:, 0, :], values[:, 1, :], average_precision, roc_auc


# Bytes before the values of an encoded confusion matrix: C and K as little-endian uint32, then
# the type codes of the diagonal, the gaps and the counts.
_CONFUSION_HEADER = 11


def encode_confusion(matrix):
    """The stored bytes of a ``[C, C]`` confusion matrix of non-negative integers (format
    version 5, `CONFUSION_ENCODING`): its diagonal and its nonzero cells off the diagonal.

    Layout: ``C`` and ``K`` (the number of nonzero off-diagonal cells) as little-endian
    uint32; three type codes (as `encode_threshold_counts`'s first byte: ``B``, ``H``, ``i``
    or ``q``) of the three arrays that follow, each in the smallest of those types that holds
    it (`compact_ints`): the ``C`` diagonal counts; the ``K`` gaps between the row-major
    positions ``i * C + j`` of the off-diagonal nonzero cells in ascending order (the first
    gap is the first position itself); their ``K`` counts. A matrix is mostly zeros once
    classes are many (at most one nonzero cell per misclassified example), and the gaps are
    small numbers, so 1,000 classes take kilobytes where the dense integers took a megabyte.
    No compression: the size of everything is known from the header, so a decoder checks it
    before reading anything. Lossless: `decode_confusion_cells` inverts it.

    Raises:
      ValueError: ``matrix`` is not square, or holds negative or non-integer counts.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError("a confusion matrix must have shape [C, C], got %s" % (matrix.shape,))
    if matrix.dtype.kind not in "iu" or (matrix.size and matrix.min() < 0):
        raise ValueError("a confusion matrix holds non-negative integer counts")
    matrix = matrix.astype(np.int64)
    num_classes = matrix.shape[0]
    positions = np.flatnonzero(matrix)  # row-major, ascending
    positions = positions[positions % (num_classes + 1) != 0]  # cell (i, i) is i * (C + 1)
    gaps = np.diff(positions, prepend=0)
    parts = [compact_ints(part) for part in (np.diag(matrix), gaps, matrix.flat[positions])]
    header = np.array([num_classes, positions.size], dtype="<u4").tobytes()
    codes = b"".join(_DELTA_CODES[part.itemsize] for part in parts)
    return (
        header
        + codes
        + b"".join(part.astype(part.dtype.newbyteorder("<")).tobytes() for part in parts)
    )


def decode_confusion_cells(payload, what="confusion matrix"):
    """``(diagonal [C], rows [K], cols [K], counts [K])`` (int64) of `encode_confusion` bytes:
    the diagonal, and the off-diagonal nonzero cells in row-major order.

    The header's ``C`` and ``K`` are checked (``1 <= C <= MAX_CLASSES``, ``K <= C (C - 1)``)
    and the payload's length must be exactly what they and the type codes make, before any
    value is read; then every count must be non-negative (positive off the diagonal) and every
    position inside the matrix, off its diagonal and after the one before.

    Raises:
      FormatError: the payload is anything else.
    """
    if not isinstance(payload, bytes) or len(payload) < _CONFUSION_HEADER:
        raise FormatError("encoded %s is malformed" % what)
    num_classes, cells = (int(value) for value in np.frombuffer(payload[:8], dtype="<u4"))
    if not 1 <= num_classes <= MAX_CLASSES:
        raise FormatError(
            "encoded %s of %d classes, expected 1 to %d" % (what, num_classes, MAX_CLASSES)
        )
    if cells > num_classes * (num_classes - 1):
        raise FormatError(
            "encoded %s has %d cells off the diagonal, more than a %d-class matrix holds"
            % (what, cells, num_classes)
        )
    codes = [payload[8 + k : 9 + k] for k in range(3)]
    if any(code not in _DELTA_DTYPES for code in codes):
        raise FormatError("encoded %s names an unknown integer type" % what)
    dtypes = [_DELTA_DTYPES[code] for code in codes]
    sizes = (num_classes, cells, cells)
    expected = _CONFUSION_HEADER + sum(size * dtype.itemsize for size, dtype in zip(sizes, dtypes))
    if len(payload) != expected:
        raise FormatError(
            "encoded %s of %d bytes, expected %d for %d classes and %d cells"
            % (what, len(payload), expected, num_classes, cells)
        )
    parts, offset = [], _CONFUSION_HEADER
    for size, dtype in zip(sizes, dtypes):
        parts.append(
            np.frombuffer(payload, dtype=dtype, count=size, offset=offset).astype(np.int64)
        )
        offset += size * dtype.itemsize
    diagonal, gaps, counts = parts
    cells_in_matrix = num_classes * num_classes
    if diagonal.min() < 0 or (cells and counts.min() < 1):
        raise FormatError(
            "encoded %s holds negative counts, or zero counts off the diagonal" % what
        )
    if cells and (gaps[0] < 0 or gaps[1:].min(initial=1) < 1 or gaps.max() >= cells_in_matrix):
        raise FormatError("encoded %s lists its cells out of order or outside the matrix" % what)
    positions = np.cumsum(gaps)  # each gap below C^2: no overflow
    rows, cols = np.divmod(positions, num_classes)
    if cells and (positions[-1] >= cells_in_matrix or np.any(rows == cols)):
        raise FormatError("encoded %s lists a cell outside the matrix or on its diagonal" % what)
    return diagonal, rows, cols, counts


def confusion_from_cells(diagonal, rows, cols, counts):
    """The ``[C, C]`` int64 matrix of a diagonal and off-diagonal cells (as
    `decode_confusion_cells` gives them).
    """
    num_classes = len(diagonal)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix[np.arange(num_classes), np.arange(num_classes)] = diagonal
    matrix[rows, cols] = counts
    return matrix


def _encoded_payload(value, what):
    """The stored item of an encoded confusion datum's value, a string scalar: bytes, unless
    damaged (`decode_confusion_cells` refuses anything else).
    """
    if value.shape != ():
        raise FormatError("encoded %s of shape %s, expected a scalar" % (what, value.shape))
    return value.item()


def _check_confusion_content(content):
    encoding = (content or {}).get("encoding")
    if encoding is not None and encoding != CONFUSION_ENCODING:
        raise FormatError("confusion matrices in an unknown encoding %r" % (encoding,))


def confusion_matrix(value, what, content=None):
    """The ``[C, C]`` int64 confusion matrix of a stored value: `encode_confusion` bytes (format
    version 5), or the integers as a tensor (before). Each point says which by its value (a
    string scalar or an integer matrix), since a series keeps the plugin content of its first
    point only: a run continued by a newer writer holds both.

    Raises:
      FormatError: ``content`` names another encoding, or the value is neither of those.
    """
    _check_confusion_content(content)
    matrix = np.asarray(value)
    if matrix.dtype.kind in "OSV":
        return confusion_from_cells(*decode_confusion_cells(_encoded_payload(matrix, what), what))
    _check_confusion_shape(matrix, what)
    # Signed or unsigned integers (dtype kinds "i", "u"); checked for every stored matrix of a
    # run, so the cheapest test (np.issubdtype costs ten times more).
    if matrix.dtype.kind not in "iu":
        raise FormatError("%s holds %s values, expected integers" % (what, matrix.dtype))
    _check_non_negative(matrix, what)
    return matrix.astype(np.int64)


def _check_confusion_shape(matrix, what):
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise FormatError("%s has shape %s, expected [C, C]" % (what, matrix.shape))
    if matrix.shape[0] > MAX_CLASSES:
        raise FormatError("%s has %d classes, more than %d" % (what, matrix.shape[0], MAX_CLASSES))


def _check_non_negative(counts, what):
    if counts.size and counts.min() < 0:
        raise FormatError("%s holds negative counts" % what)


def confusion_matrices(data, content=None):
    """``{step: int64 [C, C]}`` of confusion data, each matrix checked as by `confusion_matrix`.

    A run holds hundreds of matrices and the diagnostics read them all: when they share one
    shape and integer type they are stacked, checked and converted at once (the matrices are
    views of one array), else one by one, which also names the step of a bad one.
    """
    _check_confusion_content(content)
    try:
        stacked = np.stack([np.asarray(datum.numpy) for datum in data])
    except ValueError:  # no data, or matrices of different shapes
        stacked = None
    if stacked is None or stacked.ndim != 3 or stacked.dtype.kind not in "iu":
        return {
            datum.step: confusion_matrix(datum.numpy, "confusion matrix at step %d" % datum.step)
            for datum in data
        }
    _check_confusion_shape(stacked[0], "confusion matrix at step %d" % data[0].step)
    if stacked.min() < 0:  # which step, only when one is bad
        for datum, matrix in zip(data, stacked):
            _check_non_negative(matrix, "confusion matrix at step %d" % datum.step)
    return dict(zip((datum.step for datum in data), stacked.astype(np.int64)))


def confusion_steps(data, content=None):
    """Ascending distinct steps of confusion data, each point checked to hold a valid matrix
    (as by `confusion_matrices`); encoded points are checked without building their matrix.
    """
    _check_confusion_content(content)
    dense, steps = [], set()
    for datum in data:
        what = "confusion matrix at step %d" % datum.step
        value = np.asarray(datum.numpy)
        if value.dtype.kind in "OSV":
            decode_confusion_cells(_encoded_payload(value, what), what)
            steps.add(datum.step)
        else:
            dense.append(datum)
    return sorted(steps.union(confusion_matrices(dense)))


def totals_from_cells(diagonal, rows, cols, counts):
    """The `metrics.ConfusionTotals` of a diagonal and off-diagonal cells (as
    `decode_confusion_cells` gives them), without the matrix: each row and column sum is its
    diagonal count plus its cells' counts.
    """
    num_classes = len(diagonal)
    return metrics.ConfusionTotals(
        diagonal,
        diagonal + np.bincount(rows, weights=counts, minlength=num_classes).astype(np.int64),
        diagonal + np.bincount(cols, weights=counts, minlength=num_classes).astype(np.int64),
    )


def confusion_totals(data, content=None):
    """``{step: metrics.ConfusionTotals}`` of confusion data, each point checked as by
    `confusion_matrices`: an encoded point (format version 5) is reduced from its cells
    (`totals_from_cells`) without building its matrix; the dense points (before) are reduced
    after they are read, in one pass over their stack.

    Exact: the totals of ``confusion_matrices(data)[step]`` (`metrics.confusion_totals`).
    """
    _check_confusion_content(content)
    encoded, dense = {}, []
    for index, datum in enumerate(data):
        what = "confusion matrix at step %d" % datum.step
        value = np.asarray(datum.numpy)
        if value.dtype.kind in "OSV":
            cells = decode_confusion_cells(_encoded_payload(value, what), what)
            encoded[index] = totals_from_cells(*cells)
        else:
            dense.append(datum)
    matrices = confusion_matrices(dense) if dense else {}
    steps = list(matrices)
    try:
        reduced = metrics.stacked_confusion_totals([matrices[step] for step in steps])
    except ValueError:  # no matrix, or matrices of different sizes
        reduced = [metrics.confusion_totals(matrices[step]) for step in steps]
    by_step = dict(zip(steps, reduced))
    # A step written twice keeps its last point, as `confusion_matrices` does.
    return {
        datum.step: encoded[index] if index in encoded else by_step[datum.step]
        for index, datum in enumerate(data)
    }


def is_multilabel(content):
    """Whether confusion plugin content describes a multi-label run (`schema.TASK_MULTILABEL`)."""
    return content.get("task") == TASK_MULTILABEL


def multilabel_matrices(data):
    """``{step: int64 [K, 2, 2]}``: the per-label ``[[tn, fp], [fn, tp]]`` of a multi-label run's
    confusion data, each checked: integers, non-negative, at most `MAX_CLASSES` labels, and
    every label's four counts summing to the same number of rows.
    """
    result = {}
    for datum in data:
        what = "multi-label confusion counts at step %d" % datum.step
        matrices = np.asarray(datum.numpy)
        if matrices.ndim != 3 or matrices.shape[1:] != (2, 2) or matrices.shape[0] < 1:
            raise FormatError("%s have shape %s, expected [K, 2, 2]" % (what, matrices.shape))
        if matrices.shape[0] > MAX_CLASSES:
            raise FormatError(
                "%s have %d labels, more than %d" % (what, matrices.shape[0], MAX_CLASSES)
            )
        if matrices.dtype.kind not in "iu":
            raise FormatError("%s hold %s values, expected integers" % (what, matrices.dtype))
        _check_non_negative(matrices, what)
        matrices = matrices.astype(np.int64)
        rows = matrices.sum(axis=(1, 2))
        if np.any(rows != rows[0]):
            raise FormatError("%s count different numbers of rows per label" % what)
        result[datum.step] = matrices
    return result


def decision_totals(content, data):
    """``{step: counts}`` of a confusion series as a run's history keeps them, at most O(C)
    each: `multilabel_matrices` for a multi-label run (``[K, 2, 2]`` already is), else
    `confusion_totals`.
    """
    if is_multilabel(content):
        return multilabel_matrices(data)
    return confusion_totals(data, content)


def decision_steps(content, data):
    """Ascending distinct steps of a confusion series, each point checked (as by
    `decision_totals`; `confusion_steps` for a single-label run).
    """
    if is_multilabel(content):
        return sorted(multilabel_matrices(data))
    return confusion_steps(data, content)


def exact_matches(value, rows):
    """The number of rows matched exactly, from an `schema.KIND_EXACT_MATCH` value, checked
    against ``rows`` (the rows of the run's multi-label counts at the same step).
    """
    value = np.asarray(value)
    if value.shape != (2,) or value.dtype.kind not in "iu":
        raise FormatError("exact-match counts of shape %s, expected [2] integers" % (value.shape,))
    matched, counted = int(value[0]), int(value[1])
    if counted != rows or not 0 <= matched <= counted:
        raise FormatError(
            "exact-match counts (%d of %d rows) do not fit the %d rows of the label counts"
            % (matched, counted, rows)
        )
    return matched


def class_names_of(content, num_classes):
    """The class names of plugin content, or the defaults when they do not fit."""
    return labels.names_or_default(content.get("class_names"), num_classes)


def text_of(datum):
    """The text of a string datum (a scalar, or the first element of a string tensor)."""
    value = np.asarray(datum.numpy)
    if value.size == 0:
        raise FormatError("stored text is an empty tensor")
    raw = value.item() if value.shape == () else value.reshape(-1)[0]
    try:
        return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError as error:
        raise FormatError("stored text is not UTF-8: %s" % error) from error


def json_of(datum):
    """The JSON value of a string datum (run information, overlap, events), bounded as by
    `decode_json`.
    """
    return decode_json(text_of(datum), "stored JSON")


def label_distribution(datum):
    """The ``[C]`` int64 examples per class of a label-distribution datum.

    Raises:
      FormatError: not a vector of at most `MAX_CLASSES` non-negative integers.
    """
    counts = np.asarray(datum.numpy)
    if counts.ndim != 1 or not 1 <= counts.size <= MAX_CLASSES or counts.dtype.kind not in "iu":
        raise FormatError(
            "label distribution of shape %s and type %s, expected [C] integers"
            % (counts.shape, counts.dtype)
        )
    _check_non_negative(counts, "label distribution")
    return counts.astype(np.int64)


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


# The most calibration bins a stored summary may declare.
MAX_CALIBRATION_BINS = 1000


def calibration_bins_of(value):
    """``(count [B], confidence_sum [B], correct [B])`` of a stored `schema.KIND_CALIBRATION`
    tensor ``[3, B]`` (count and correct as int64, the sum as float64).

    Raises:
      FormatError: the tensor is not ``[3, B]`` numbers with ``0 <= correct <= count``
        (whole numbers) and ``0 <= confidence_sum <= count``.
    """
    values = np.asarray(value)
    if values.ndim != 2 or values.shape[0] != 3 or not 1 <= values.shape[1] <= MAX_CALIBRATION_BINS:
        raise FormatError("calibration bins of shape %s, expected [3, B]" % (values.shape,))
    if values.dtype.kind not in "iuf":
        raise FormatError("calibration bins hold %s values, expected numbers" % values.dtype)
    values = values.astype(np.float64)
    count, confidence_sum, correct = values
    if not np.all(np.isfinite(values)) or np.any(count != np.round(count)):
        raise FormatError("calibration bins hold non-finite or fractional counts")
    if np.any(correct != np.round(correct)) or np.any((correct < 0) | (correct > count)):
        raise FormatError("calibration bins count more correct examples than examples")
    if np.any((confidence_sum < 0) | (confidence_sum > count * (1 + 1e-9))):
        raise FormatError("calibration bins hold confidences outside [0, 1]")
    return count.astype(np.int64), confidence_sum, correct.astype(np.int64)

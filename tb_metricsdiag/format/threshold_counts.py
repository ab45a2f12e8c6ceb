"""Threshold counts (TP and FP of ``score >= t`` per class and threshold) as stored: encoded as
bucket deltas in zlib with the average precision and ROC AUC after them, decoded with every
size bounded before anything is inflated, and checked against their plugin content.

Pure NumPy; a problem with what is read is a `FormatError`.
"""

import zlib

import numpy as np

from tb_metricsdiag.format.integer_counts import DTYPE_OF_CODE, packed_segments
from tb_metricsdiag.format.schema import (
    MAX_CLASSES,
    MAX_COUNT_VALUES,
    THRESHOLD_COUNTS_ENCODING,
    FormatError,
)
from tb_metricsdiag.format.threshold_grid import decode_thresholds

COMPRESSION_LEVEL = 6
"""zlib's level for bucket deltas of more than `FAST_COMPRESSION_BYTES` (any level decodes
alike): at 1,000 classes its bytes are those TensorBoard reads at start-up."""

FAST_COMPRESSION_LEVEL, FAST_COMPRESSION_BYTES = 3, 1 << 16
"""zlib's level for bucket deltas of at most this many bytes (up to about 100 classes, and
every slice's): an epoch stores many such payloads (20 slices: 20), and level 3 compresses
them in half the time of level 6 for about 4-8% more bytes (10 classes: 2,489 bytes against
2,404; 20 slices' 17.3 KB against 16.0 KB; docs/benchmarks.md, section 22)."""


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
    (payload,) = encode_each_threshold_counts(counts[None, :, 0], counts[None, :, 1])
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


def encode_each_threshold_counts(tp, fp):
    """`encode_threshold_counts` (without AP) of each of ``S`` slices' threshold counts, from
    their TP and FP ``[S, C, T]``: a list of ``S`` payloads, the deltas and their types found
    for all at once.
    """
    tp, fp = np.asarray(tp, dtype=np.int64), np.asarray(fp, dtype=np.int64)
    deltas = np.empty(tp.shape[:2] + (2,) + tp.shape[2:], dtype=np.int64)  # [S, C, 2, T]
    for part, counts in enumerate((tp, fp)):
        np.subtract(counts[..., :-1], counts[..., 1:], out=deltas[:, :, part, :-1])
        deltas[:, :, part, -1] = counts[..., -1]
    per_item = deltas[0].size if deltas.shape[0] else 0
    packed = packed_segments(deltas, np.arange(deltas.shape[0] + 1) * per_item)
    return [
        code
        + zlib.compress(
            data,
            FAST_COMPRESSION_LEVEL if len(data) <= FAST_COMPRESSION_BYTES else COMPRESSION_LEVEL,
        )
        for code, data in packed
    ]


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
    if not isinstance(payload, bytes) or len(payload) < 2 or payload[:1] not in DTYPE_OF_CODE:
        raise FormatError("encoded threshold counts are malformed")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise FormatError(
            "threshold counts of %d classes, expected 1 to %d" % (num_classes, MAX_CLASSES)
        )
    dtype = DTYPE_OF_CODE[payload[:1]]
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

"""The grouped encoders (every slice's parts encoded together) against each part encoded alone
by a plain NumPy reference written here from the documented layouts: the same bytes, and
decoding gives back every count."""

import zlib

import numpy as np
import pytest

from tb_metricsdiag.format import confusion_counts, integer_counts, threshold_counts

_TYPES = ((255, "B", "u1"), (65535, "H", "<u2"), (2**31 - 1, "i", "<i4"))


def _reference_packed(values):
    """``(code, bytes)`` of integers in the smallest type that holds them (int64 when one is
    negative), as the formats describe it."""
    values = np.asarray(values, dtype=np.int64)
    if not (values.size and values.min() < 0):
        largest = values.max() if values.size else 0
        for most, code, dtype in _TYPES:
            if largest <= most:
                return code.encode(), values.astype(dtype).tobytes()
    return b"q", values.astype("<i8").tobytes()


def _reference_confusion(matrix):
    """A confusion matrix's stored bytes: C and K, three type codes, the diagonal, the gaps
    between the row-major positions of the nonzero cells off it, their counts."""
    num_classes = matrix.shape[0]
    off = matrix.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    positions = np.flatnonzero(off)
    gaps = np.diff(positions, prepend=0)
    parts = [_reference_packed(part) for part in (np.diag(matrix), gaps, off.flat[positions])]
    header = np.array([num_classes, positions.size], dtype="<u4").tobytes()
    return header + b"".join(code for code, _ in parts) + b"".join(data for _, data in parts)


@pytest.mark.parametrize("seed", range(6))
def test_packed_segments_are_each_segment_packed_alone(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 6, size=12)
    sizes[rng.integers(0, 12, 3)] = 0  # empty segments between others
    scale = rng.choice([3, 300, 70_000, 2**33], size=12)
    segments = [rng.integers(0, s + 1, size) for s, size in zip(scale, sizes)]
    if seed % 2:
        segments[int(np.argmax(sizes))][0] = -5  # a negative: int64
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    values = np.concatenate(segments)
    packed = integer_counts.packed_segments(values, bounds)
    assert packed == [_reference_packed(segment) for segment in segments]


@pytest.mark.parametrize("num_classes", [1, 2, 10, 60])
def test_each_confusion_matrix_encodes_as_alone(num_classes):
    rng = np.random.default_rng(num_classes)
    matrices = rng.integers(0, 3, (7, num_classes, num_classes)) * rng.integers(
        0, 2, (7, num_classes, num_classes)
    )
    matrices[1] = 0  # an empty slice
    matrices[2] *= 100_000  # wider types
    np.fill_diagonal(matrices[3], 0)  # nothing on the diagonal
    payloads = confusion_counts.encode_each_confusion(matrices)
    assert payloads == [_reference_confusion(matrix) for matrix in matrices]
    for matrix, payload in zip(matrices, payloads):
        assert payload == confusion_counts.encode_confusion(matrix)
        cells = confusion_counts.decode_confusion_cells(payload)
        assert np.array_equal(confusion_counts.confusion_from_cells(*cells), matrix)


def test_each_confusion_refuses_what_encode_confusion_refuses():
    with pytest.raises(ValueError, match="non-negative integer"):
        confusion_counts.encode_each_confusion(-np.ones((2, 3, 3), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        confusion_counts.encode_each_confusion(np.zeros((2, 3, 4), dtype=int))


@pytest.mark.parametrize("classes, largest", [(10, 200), (10, 70_000), (200, 300)])
def test_each_slices_threshold_counts_encode_as_alone(classes, largest):
    rng = np.random.default_rng(classes + largest)
    shape = (5, classes, 2, 201)
    counts = np.sort(rng.integers(0, largest + 1, shape), axis=-1)[..., ::-1]
    counts[0] = 0
    payloads = threshold_counts.encode_each_threshold_counts(counts[:, :, 0], counts[:, :, 1])
    for one, payload in zip(counts, payloads):
        deltas = one - np.concatenate([one[..., 1:], np.zeros_like(one[..., :1])], axis=-1)
        code, data = _reference_packed(deltas)
        assert payload[:1] == code
        assert zlib.decompress(payload[1:]) == data  # any zlib level decodes alike
        assert payload == threshold_counts.encode_threshold_counts(one)
        decoded, _, _ = threshold_counts.decode_threshold_counts(payload, classes)
        assert np.array_equal(decoded, one)


def test_small_payloads_use_the_fast_level_and_large_ones_the_default():
    rng = np.random.default_rng(0)
    small = np.sort(rng.integers(0, 200, (10, 2, 201)), axis=-1)[..., ::-1]
    large = np.sort(rng.integers(0, 200, (400, 2, 201)), axis=-1)[..., ::-1]  # 160 KB of uint8
    for counts, level in (
        (small, threshold_counts.FAST_COMPRESSION_LEVEL),
        (large, threshold_counts.COMPRESSION_LEVEL),
    ):
        deltas = counts - np.concatenate([counts[..., 1:], counts[..., :1] * 0], axis=-1)
        expected = zlib.compress(deltas.astype("u1").tobytes(), level)
        assert threshold_counts.encode_threshold_counts(counts)[1:] == expected

"""The writer's TFRecord framing: its NumPy CRC-32C against TensorBoard's own, and its records
against TensorBoard's `RecordWriter` byte for byte."""

import io

import numpy as np
import pytest
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.summary.writer import record_writer

from tb_metricsdiag.writing import record_framing


@pytest.mark.parametrize(
    "size", [0, 1, 3, 4, 4095, 4096, 4097, 4099, 5000, 65_536, 65_537, 100_003, 1_000_001]
)
def test_crc32c_equals_tensorboards(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert record_framing.crc32c(data) == pywrap_tensorflow.crc32c(data)
    assert record_framing.masked_crc32c(data) == pywrap_tensorflow.masked_crc32c(data)


def test_crc32c_of_known_values():
    # The CRC-32C check value (RFC 3720, iSCSI), and 32 bytes of zeros / of ones (its B.4).
    assert record_framing.crc32c(b"123456789") == 0xE3069283
    assert record_framing.crc32c(bytes(32)) == 0x8A9136AA
    assert record_framing.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert record_framing.crc32c(bytes(1 << 20)) == pywrap_tensorflow.crc32c(bytes(1 << 20))


def test_records_are_tensorboards_bytes():
    ours, theirs = io.BytesIO(), io.BytesIO()
    for size in (0, 10, 5000, 300_000):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        record_framing.RecordWriter(ours).write(data)
        record_writer.RecordWriter(theirs).write(data)
    assert ours.getvalue() == theirs.getvalue()

"""The writer's TFRecord framing: its NumPy CRC-32C against TensorBoard's own, and its records
against TensorBoard's `RecordWriter` byte for byte."""

import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.summary.writer import record_writer

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.format import record_checksum
from tb_metricsdiag.writing import record_framing


@pytest.mark.parametrize(
    "size",
    [0, 1, 3, 4, 1023, 1024, 1025, 2047, 4095, 4096, 4097, 4099, 5000, 13_274, 65_536, 65_537]
    + [100_003, 1_000_001],
)
def test_crc32c_equals_tensorboards(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert record_checksum.crc32c(data) == pywrap_tensorflow.crc32c(data)
    assert record_checksum.masked_crc32c(data) == pywrap_tensorflow.masked_crc32c(data)


def test_crc32c_of_known_values():
    # The CRC-32C check value (RFC 3720, iSCSI), and 32 bytes of zeros / of ones (its B.4).
    assert record_checksum.crc32c(b"123456789") == 0xE3069283
    assert record_checksum.crc32c(bytes(32)) == 0x8A9136AA
    assert record_checksum.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert record_checksum.crc32c(bytes(1 << 20)) == pywrap_tensorflow.crc32c(bytes(1 << 20))


def test_records_are_tensorboards_bytes():
    ours, theirs = io.BytesIO(), io.BytesIO()
    for size in (0, 10, 5000, 300_000):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        record_framing.RecordWriter(ours).write(data)
        record_writer.RecordWriter(theirs).write(data)
    assert ours.getvalue() == theirs.getvalue()


_READ_BOTH_WAYS = """
import contextlib, json, sys, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from tensorboard import context
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.format import record_checksum, schema

sizes = []
numpy_checksum = record_checksum.masked_crc32c
record_checksum.masked_crc32c = lambda data: sizes.append(len(data)) or numpy_checksum(data)
loop_checksum = stub.masked_crc32c


def points(provider):
    ctx = context.RequestContext()
    found = provider.read_tensors(
        ctx, experiment_id="", plugin_name=schema.PLUGIN_NAME, downsample=10**6
    )
    return {
        run: {tag: [[p.step, repr(p.numpy.tolist())] for p in data] for tag, data in tags.items()}
        for run, tags in found.items()
    }


fast = points(logdir_lib.provider_for_logdir(sys.argv[1]))
assert stub.masked_crc32c is loop_checksum, "TensorBoard's checksum was not put back"
logdir_lib.numpy_record_checksums = contextlib.nullcontext  # TensorBoard's loop alone
slow = points(logdir_lib.provider_for_logdir(sys.argv[1]))
print(json.dumps({"same": fast == slow, "largest": max(sizes), "points": fast}))
"""


def test_report_reads_records_with_the_numpy_checksum_and_refuses_a_damaged_one(tmp_path):
    """`tb-metricsdiag report` without TensorFlow (TensorBoard's stub reader) checks records
    with the NumPy CRC-32C, large ones included: it reads exactly what TensorBoard's own
    checksum loop reads, and a record with a flipped byte is refused by both."""
    rng = np.random.default_rng(0)
    for run in ("good", "damaged"):
        with MetricsDiagWriter(str(tmp_path / run)) as writer:
            for step in range(3):
                p = rng.random(20_000).astype(np.float32)
                writer.add_evaluation((rng.random(20_000) < p).astype(int), p, step)
    (path,) = (tmp_path / "damaged").iterdir()
    data = bytearray(path.read_bytes())
    position, records = 0, []
    while position < len(data):
        (length,) = struct.unpack("<Q", data[position : position + 8])
        records.append((length, position + 12))
        position += 16 + length
    # A later step's event (each step's records are one event of tens of KB), so that the
    # steps before it are still read.
    length, start = max(records[2:])
    assert length > 4 * record_checksum._SMALL
    data[start + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = subprocess.run(
        [sys.executable, "-c", _READ_BOTH_WAYS, str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["same"] and read["largest"] >= length
    good, damaged = read["points"]["good"], read["points"]["damaged"]
    assert sum(map(len, damaged.values())) < sum(map(len, good.values()))

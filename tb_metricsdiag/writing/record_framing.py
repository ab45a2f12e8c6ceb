"""TFRecord framing of event files, with the NumPy CRC-32C of `format.record_checksum`.

TensorBoard's own `RecordWriter` computes the CRC in a Python loop when TensorFlow is not
installed, which made the checksum of an epoch's example records at 2M examples (2.3 MB) take
most of `MetricsDiagWriter.add_evaluation`.
"""

import struct

from tb_metricsdiag.format.record_checksum import masked_crc32c


class RecordWriter:
    """Writes TFRecord-framed records to a binary file object, as TensorBoard's
    `RecordWriter` does (the same bytes), with `crc32c`.
    """

    def __init__(self, file):
        self._file = file

    def write(self, data):
        header = struct.pack("<Q", len(data))
        self._file.write(
            header
            + struct.pack("<I", masked_crc32c(header))
            + data
            + struct.pack("<I", masked_crc32c(data))
        )

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()

    @property
    def closed(self):
        return self._file.closed

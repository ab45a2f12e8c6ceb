"""The CRC-32C of TFRecord framing (event files), fast enough for large records.

Each record of an event file is ``length (uint64) | masked CRC-32C of the length | data |
masked CRC-32C of the data``. TensorBoard without TensorFlow computes the CRC in a Python loop
(about 1 MB/s on the development machine), both when it writes (`writing.record_framing`) and
when it reads (`backend.logdir`): the example records of a large evaluation are megabytes.

`crc32c` computes the same checksum with NumPy: the data is cut into equal chunks whose CRCs
advance together, four bytes a step (the table-driven "slicing by 4" update, over every chunk
at once), and the chunks' CRCs are then merged pairwise, the left one advanced over the
right one's length by a linear map of the 32-bit register (CRC is linear over GF(2)). The
chunk lengths are powers of two, so the few maps needed are made once and cached, and the
initial register of all ones goes into the first four bytes, where it acts alike: a record of
a few kilobytes (most of an epoch's) costs a fixed number of NumPy steps, no new map.
"""

import functools

import numpy as np

_POLYNOMIAL = 0x82F63B78  # CRC-32C (Castagnoli), bit-reflected
_MASK_DELTA = 0xA282EAD8  # TFRecord's masking constant
_SMALL = 1 << 10  # shorter data is checksummed byte by byte: the chunking costs more there


def _byte_table():
    """The CRC register after shifting in one byte ``i`` (and eight zero bits), per ``i``."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLYNOMIAL), table >> 1)
    return table.astype(np.uint32)


_TABLE = _byte_table()
_TABLE_LIST = _TABLE.tolist()


@functools.lru_cache(maxsize=1)
def _slicing_tables():
    """``tables[j][b]``: the register contribution of byte ``b`` followed by ``j`` zero bytes."""
    tables = [_TABLE]
    for _ in range(3):
        previous = tables[-1]
        tables.append((previous >> 8) ^ _TABLE[previous & 0xFF])
    return tables


def _advance_columns(zero_bytes):
    """The images of the register's 32 bits after ``zero_bytes`` zero bytes, ``[32]`` uint32
    (the columns of that linear map), by squaring the one-byte map.
    """
    columns = np.uint32(1) << np.arange(32, dtype=np.uint32)
    step = (columns >> 8) ^ _TABLE[columns & 0xFF]  # one zero byte
    result = columns
    while zero_bytes:
        if zero_bytes & 1:
            result = _apply_columns(step, result)
        step = _apply_columns(step, step)
        zero_bytes >>= 1
    return result


def _apply_columns(columns, values):
    """The linear map with ``columns`` applied to each uint32 of ``values``."""
    bits = (values[..., None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)
    return np.bitwise_xor.reduce(bits * columns, axis=-1).astype(np.uint32)


@functools.lru_cache(maxsize=64)
def _advance_tables(zero_bytes):
    """``[4, 256]`` tables of the map of `_advance_columns`, one per byte of the register."""
    columns = _advance_columns(zero_bytes).reshape(4, 8)
    byte_bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1
    return np.stack(
        [np.bitwise_xor.reduce(byte_bits * part, axis=1).astype(np.uint32) for part in columns]
    )


def _advance(values, zero_bytes):
    """Each CRC register of ``values`` advanced over ``zero_bytes`` zero bytes."""
    tables = _advance_tables(zero_bytes)
    result = tables[0][values & 0xFF]
    for j in range(1, 4):
        result ^= tables[j][(values >> np.uint32(8 * j)) & 0xFF]
    return result


def _crc32c_small(data):
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data):
    """The CRC-32C of ``data`` (bytes), as TensorBoard's ``crc32c``."""
    size = len(data)
    if size < _SMALL:
        return _crc32c_small(data)
    # About 2 * sqrt(size) chunks of 4 * words bytes (words a power of two): few NumPy steps,
    # each over many chunks. Zeros in front change no CRC that starts from a zero register,
    # so the data is padded there to whole chunks, and the chunks' registers to a power of
    # two; the initial register of ones is xor-ed into the data's first four bytes instead.
    words = 1 << max(0, (int(size**0.5) // 8).bit_length() - 1)
    chunk = 4 * words
    count = -(-size // chunk)
    padded = np.zeros(count * chunk, dtype=np.uint8)
    padded[padded.size - size :] = np.frombuffer(data, dtype=np.uint8)
    padded[padded.size - size : padded.size - size + 4] ^= 0xFF
    # [words, count]: step j reads the j-th little-endian word of every chunk.
    columns = np.ascontiguousarray(padded.view("<u4").reshape(count, words).T)
    t0, t1, t2, t3 = _slicing_tables()
    crc = np.zeros(count, dtype=np.uint32)
    byte = np.empty(count, dtype=np.uint32)
    for word in columns:
        crc ^= word
        np.bitwise_and(crc, 0xFF, out=byte)
        high = t3[byte]
        np.right_shift(crc, 8, out=byte)
        byte &= 0xFF
        high ^= t2[byte]
        np.right_shift(crc, 16, out=byte)
        byte &= 0xFF
        high ^= t1[byte]
        crc >>= 24
        high ^= t0[crc]
        crc = high
    # Merge neighbours: the left chunk's register runs on over the right chunk's bytes.
    crc = np.concatenate([np.zeros((1 << (count - 1).bit_length()) - count, np.uint32), crc])
    length = chunk
    while crc.size > 1:
        crc = _advance(crc[0::2], length) ^ crc[1::2]
        length *= 2
    return int(crc[0]) ^ 0xFFFFFFFF


def masked_crc32c(data):
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF

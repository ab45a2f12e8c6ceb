"""Packed payloads: consecutive little-endian arrays, read by a cursor that checks each length
against what is left before it reads, and tables of UTF-8 strings checked without decoding them
one by one.

Shared by the example records (`example_records`), the id tables (`example_ids`) and the previews
(`previews`). Pure NumPy; a problem with what is read is a `FormatError`.
"""

import struct

import numpy as np

from tb_metricsdiag.format.integer_counts import CODE_OF_ITEMSIZE, DTYPE_OF_CODE, compact_ints
from tb_metricsdiag.format.schema import FormatError


def packed_ints(values):
    """``(type code, bytes)`` of integers in the smallest type that holds them (`compact_ints`),
    little-endian.
    """
    values = compact_ints(values)
    return CODE_OF_ITEMSIZE[values.itemsize], values.astype(
        values.dtype.newbyteorder("<")
    ).tobytes()


def packed_floats(values, dtype="<f4"):
    """The bytes of ``values`` as little-endian floats (float32 unless ``dtype`` says)."""
    return np.asarray(values, dtype=dtype).tobytes()


def has_repeats(values):
    """Whether two of ``values`` (1-D) are equal: a sort and a comparison of neighbours (NumPy
    2's hashing ``np.unique`` takes tens of times longer on a million integers).
    """
    ordered = np.sort(values)
    return bool(np.any(ordered[1:] == ordered[:-1]))


class Cursor:
    """Reads a payload front to back. Every read checks that the payload holds what it asks
    for, so a declared size larger than the payload is refused before anything is allocated;
    arrays are views of the payload (`np.frombuffer`), converted only by the caller.

    Args:
      payload: the stored bytes (anything else is refused).
      what: what the payload is, for messages (``"stored examples at step 3"``).
    """

    def __init__(self, payload, what):
        if not isinstance(payload, bytes):
            raise FormatError("%s: expected bytes, got %s" % (what, type(payload).__name__))
        self.payload, self.what, self.offset = payload, what, 0

    @property
    def left(self):
        """Bytes not read yet."""
        return len(self.payload) - self.offset

    def fail(self, problem):
        """Raise the `FormatError` of ``problem`` with what the payload is."""
        raise FormatError("%s: %s" % (self.what, problem))

    def need(self, size, part):
        """Refuse unless ``size`` more bytes are left (``part`` names them in the message)."""
        if size > self.left:
            self.fail(
                "%s needs %d bytes, %d are left: truncated or damaged" % (part, size, self.left)
            )

    def unpack(self, layout, part):
        """The values of a `struct` ``layout`` (little-endian fields)."""
        size = struct.calcsize(layout)
        self.need(size, part)
        values = struct.unpack_from(layout, self.payload, self.offset)
        self.offset += size
        return values

    def codes(self, count, part):
        """``count`` one-byte type codes (`integer_counts.DTYPE_OF_CODE`) as dtypes."""
        self.need(count, part)
        codes = [self.payload[self.offset + k : self.offset + k + 1] for k in range(count)]
        if any(code not in DTYPE_OF_CODE for code in codes):
            self.fail("%s names an unknown integer type" % part)
        self.offset += count
        return [DTYPE_OF_CODE[code] for code in codes]

    def array(self, dtype, count, part):
        """``count`` values of ``dtype`` (a view of the payload)."""
        dtype = np.dtype(dtype)
        self.need(count * dtype.itemsize, part)
        values = np.frombuffer(self.payload, dtype=dtype, count=count, offset=self.offset)
        self.offset += count * dtype.itemsize
        return values

    def ints(self, dtype, count, part):
        """``count`` integers of ``dtype`` as int64."""
        return self.array(dtype, count, part).astype(np.int64)

    def raw(self, size, part):
        """``size`` bytes."""
        self.need(size, part)
        data = self.payload[self.offset : self.offset + size]
        self.offset += size
        return data

    def done(self):
        """Refuse bytes left over: a payload holds exactly what its header declares."""
        if self.left:
            self.fail("%d bytes follow the declared content" % self.left)


# -- tables of UTF-8 strings --------------------------------------------------------------


def encode_strings(texts):
    """The stored bytes of a list of strings: the type code and the byte length of each in
    UTF-8 (`packed_ints`), then their UTF-8 bytes one after the other.
    """
    encoded = [text.encode("utf-8") for text in texts]
    code, lengths = packed_ints([len(item) for item in encoded])
    return code + lengths + b"".join(encoded)


def decode_strings(cursor, count, max_bytes, max_chars, part, check_lengths=None):
    """``(data, starts, lengths)`` of `encode_strings` bytes of ``count`` strings, each of 1 to
    ``max_bytes`` bytes and 1 to ``max_chars`` characters of valid UTF-8: their bytes, and where
    each starts in them and how long it is. ``check_lengths(lengths)``, when given, may refuse
    the lengths before the bytes are read.

    Checked without decoding them one by one: the bytes as a whole must be UTF-8 and no string
    may start with a continuation byte (then each string is UTF-8 on its own, as UTF-8
    sequences never straddle such a boundary); the characters of each are its bytes that are
    not continuation bytes.
    """
    (dtype,) = cursor.codes(1, part + " lengths")
    lengths = cursor.ints(dtype, count, part + " lengths")
    if count and (lengths.min() < 1 or lengths.max() > max_bytes):
        cursor.fail(
            "%s of %d to %d bytes, expected 1 to %d"
            % (part, lengths.min(), lengths.max(), max_bytes)
        )
    if check_lengths is not None:
        check_lengths(lengths)
    data = cursor.raw(int(lengths.sum()), part)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        cursor.fail("%s are not UTF-8: %s" % (part, error))
    starts = np.cumsum(lengths) - lengths
    raw = np.frombuffer(data, dtype=np.uint8)
    continuation = (raw & 0xC0) == 0x80
    if count and continuation[starts].any():
        cursor.fail("%s are not UTF-8 each on their own" % part)
    if count:
        # Counted in int16 (a string has at most `max_bytes` bytes): a million short strings
        # take 9 MB of bytes, which as int64 would be 72 MB.
        chars = lengths - np.add.reduceat(continuation, starts, dtype=np.int16)
        if chars.max() > max_chars:
            cursor.fail(
                "%s hold up to %d characters, more than %d" % (part, chars.max(), max_chars)
            )
    return data, starts, lengths

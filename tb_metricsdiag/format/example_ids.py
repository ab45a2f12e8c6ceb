"""A split's example ids as stored (format version 6, `schema.KIND_EXAMPLE_IDS`): the table
that turns the positions of the example records into the ids the user gave.

Every example record names examples by **position**: the row's index ``0..n-1`` in the order
the writer was given the split's rows. When the ids are those positions (the default), no
table is stored. Otherwise the writer stores the table at the first step, and again at every
step where it changes; a reader takes, for a step, the latest table at or before it, and
positions when there is none.

Payload (little-endian), a string scalar:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1 | ``p`` (the positions ``0..n-1``: nothing follows), ``q`` (int64 ids) or ``s`` (strings) |
| 2-5 | ``n``, uint32: the number of ids |
| 6- | ``q``: ``n`` int64; ``s``: a type code (``B``, ``H``) and the byte length of each id in UTF-8 in that type, then the ids' UTF-8 bytes one after the other |

Checked on read (`decode_example_ids`): ``n`` at most `schema.MAX_SPLIT_EXAMPLES`, and the
number of rows the reader expects where it knows it, and the payload exactly as long as ``n``
and the lengths make it (before anything is read); strings of 1 to `schema.MAX_EXAMPLE_ID_CHARS`
characters of valid UTF-8, whose matching keys take at most `schema.MAX_ID_KEY_BYTES`; every id
unique. Pure NumPy; a problem is a `FormatError`.
"""

import dataclasses
import struct

import numpy as np

from tb_metricsdiag.format import packed
from tb_metricsdiag.format.schema import (
    MAX_EXAMPLE_ID_BYTES,
    MAX_EXAMPLE_ID_CHARS,
    MAX_ID_KEY_BYTES,
    MAX_ID_TABLE_BYTES,
    MAX_SPLIT_EXAMPLES,
    FormatError,
)

LAYOUT = 1

POSITIONS, INTEGERS, STRINGS = b"p", b"q", b"s"

_HEADER = "<cI"  # kind, n

# A string id's matching key ends with this byte: NumPy's fixed-width bytes drop trailing NUL
# bytes, so without it "a" and "a\0" would be one key.
_KEY_END = b"\x01"


@dataclasses.dataclass(frozen=True)
class ExampleIds:
    """Decoded ids of ``size`` examples, by position.

    Attributes:
      kind: `POSITIONS` (the id of position ``i`` is ``i``), `INTEGERS` or `STRINGS`.
      size: the number of ids.
    """

    kind: bytes
    size: int
    _integers: np.ndarray = None
    _strings: tuple = None  # (UTF-8 bytes, starts, lengths)

    @classmethod
    def positions(cls, size):
        """The default ids of ``size`` examples: their positions."""
        return cls(POSITIONS, int(size))

    def ids_at(self, positions):
        """The ids (Python ints or strs) at ``positions`` (integers in ``[0, size)``)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if positions.size and (positions.min() < 0 or positions.max() >= self.size):
            raise IndexError("positions outside the %d ids" % self.size)
        if self.kind == POSITIONS:
            return positions.tolist()
        if self.kind == INTEGERS:
            return self._integers[positions].tolist()
        data, starts, lengths = self._strings
        return [
            data[start : start + length].decode("utf-8")
            for start, length in zip(starts[positions].tolist(), lengths[positions].tolist())
        ]

    def keys(self):
        """One key per position that equals another's exactly when their ids are equal: the
        ids themselves (int64) for integers and positions, fixed-width bytes for strings. What
        `examples.flips` matches two evaluations by (both keys of the same kind: integer ids
        never match string ids). Memory: ``size x`` the longest id's bytes for strings.
        """
        if self.kind == POSITIONS:
            return np.arange(self.size, dtype=np.int64)
        if self.kind == INTEGERS:
            return self._integers
        data, starts, lengths = self._strings
        return _string_keys(data, starts, lengths)

    @property
    def are_strings(self):
        return self.kind == STRINGS


def _key_width(lengths):
    """The width of the strings' matching keys: the longest plus `_KEY_END`, rounded up to 8."""
    return -(-(int(lengths.max()) + 1 if lengths.size else 1) // 8) * 8


def _key_table(data, starts, lengths):
    """uint8 ``[n, w]``: each string's bytes, then `_KEY_END`, then zeros; ``w`` (`_key_width`)
    a multiple of 8.
    """
    table = np.zeros((lengths.size, _key_width(lengths)), dtype=np.uint8)
    raw = np.frombuffer(data, dtype=np.uint8)
    # The strings of each length at once, as rows of a sliding window over the bytes: a copy
    # of their bytes, where indexing every byte would take 24 bytes of indices per byte.
    # Lengths are at most MAX_EXAMPLE_ID_BYTES: as uint16, NumPy sorts them by radix.
    order = np.argsort(lengths.astype(np.uint16), kind="stable")
    bounds = np.flatnonzero(np.diff(lengths[order])) + 1
    for rows in np.split(order, bounds) if order.size else ():
        length = int(lengths[rows[0]])
        table[rows, :length] = np.lib.stride_tricks.sliding_window_view(raw, length)[starts[rows]]
    table[np.arange(lengths.size), lengths] = _KEY_END[0]
    return table


def _string_keys(data, starts, lengths):
    table = _key_table(data, starts, lengths)
    return table.view("S%d" % table.shape[1]).reshape(-1)


# A 64-bit FNV-style mix of a key's words: equal keys hash alike, and a repeat is looked for
# exactly only among equal hashes (sorting a million fixed-width byte strings takes seconds).
_HASH_PRIME = np.uint64(0x100000001B3)


def _strings_repeat(data, starts, lengths):
    """Whether two of the strings are equal."""
    table = _key_table(data, starts, lengths)
    hashes = np.zeros(lengths.size, dtype=np.uint64)
    for column in table.view("<u8").T:
        hashes = (hashes ^ column) * _HASH_PRIME  # wraps around, as a hash should
    ordered = np.sort(hashes)  # a sort of values: several times faster than an argsort
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return False
    suspects = table[np.isin(hashes, repeated)]
    return packed.has_repeats(suspects.view("S%d" % table.shape[1]).reshape(-1))


def _key_bytes_problem(size, lengths):
    """Why string ids of ``lengths`` cannot be matched (`ExampleIds.keys` would take more than
    `MAX_ID_KEY_BYTES`), or None.
    """
    key_bytes = size * _key_width(lengths)
    if key_bytes <= MAX_ID_KEY_BYTES:
        return None
    return "%d ids of up to %d bytes would take %d bytes to match, more than %d" % (
        size,
        int(lengths.max()),
        key_bytes,
        MAX_ID_KEY_BYTES,
    )


def encode_ids(ids):
    """The stored bytes of ids (kind, count, values; the layout above from byte 1): an integer
    array as `INTEGERS`, strings as `STRINGS`.

    Raises:
      ValueError: ids of another type, or strings outside 1 to `MAX_EXAMPLE_ID_CHARS`
        characters.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError("ids must be one-dimensional, got shape %s" % (ids.shape,))
    if ids.size and ids.dtype.kind in "iu":
        return struct.pack(_HEADER, INTEGERS, ids.size) + ids.astype("<i8").tobytes()
    if ids.size == 0 or ids.dtype.kind in "UO":
        texts = [str(value) for value in ids.tolist()]
        if any(not 1 <= len(text) <= MAX_EXAMPLE_ID_CHARS for text in texts):
            raise ValueError("string ids must be 1 to %d characters" % MAX_EXAMPLE_ID_CHARS)
        problem = _key_bytes_problem(
            len(texts), np.array([len(text.encode("utf-8")) for text in texts], np.int64)
        )
        if problem is not None:
            raise ValueError("string ids: %s; give ids of more similar lengths" % problem)
        return struct.pack(_HEADER, STRINGS, ids.size) + packed.encode_strings(texts)
    raise ValueError("ids must be integers or strings, got %s" % ids.dtype)


def decode_ids(cursor, part, positions_allowed=True, size_expected=None):
    """The `ExampleIds` of `encode_ids` bytes at ``cursor`` (`packed.Cursor`), each checked;
    ``size_expected``, when given, is the number of ids there must be (checked first).
    """
    kind, size = cursor.unpack(_HEADER, part + " header")
    if size > MAX_SPLIT_EXAMPLES:
        cursor.fail("%d %s, more than %d" % (size, part, MAX_SPLIT_EXAMPLES))
    if size_expected is not None and size != size_expected:
        cursor.fail("holds %d ids for %d rows" % (size, size_expected))
    if kind == POSITIONS and positions_allowed:
        return ExampleIds.positions(size)
    if kind == INTEGERS:
        values = cursor.array("<i8", size, part).astype(np.int64)
        if packed.has_repeats(values):
            cursor.fail("%s repeat an id" % part)
        return ExampleIds(INTEGERS, size, _integers=values)
    if kind == STRINGS:

        def check_lengths(lengths):
            problem = _key_bytes_problem(size, lengths)
            if problem is not None:
                cursor.fail("%s: %s" % (part, problem))

        strings = packed.decode_strings(
            cursor, size, MAX_EXAMPLE_ID_BYTES, MAX_EXAMPLE_ID_CHARS, part, check_lengths
        )
        if size and _strings_repeat(*strings):
            cursor.fail("%s repeat an id" % part)
        return ExampleIds(STRINGS, size, _strings=strings)
    cursor.fail("%s of unknown kind %r" % (part, kind))


def encode_example_ids(ids=None, size=None):
    """The stored bytes of a split's id table: ``ids`` (integers or strings, one per position),
    or with ``ids=None`` the positions of ``size`` examples.

    Raises:
      ValueError: the table would be larger than `MAX_ID_TABLE_BYTES` (the message names the
        fix), or ids that `encode_ids` refuses.
    """
    if ids is None:
        return bytes([LAYOUT]) + struct.pack(_HEADER, POSITIONS, int(size))
    payload = bytes([LAYOUT]) + encode_ids(ids)
    if len(payload) > MAX_ID_TABLE_BYTES:
        raise ValueError(
            "the example ids take %d bytes, more than the %d stored per split: give shorter ids"
            " (or integers)" % (len(payload), MAX_ID_TABLE_BYTES)
        )
    return payload


def decode_example_ids(payload, what="stored example ids", size_expected=None):
    """The `ExampleIds` of an id table's payload (`encode_example_ids`), of ``size_expected``
    ids when given (checked before the ids are read).

    Raises:
      FormatError: anything but such a payload (the module docstring lists the checks).
    """
    if isinstance(payload, bytes) and len(payload) > MAX_ID_TABLE_BYTES:
        raise FormatError("%s of %d bytes, more than %d" % (what, len(payload), MAX_ID_TABLE_BYTES))
    cursor = packed.Cursor(payload, what)
    (layout,) = cursor.unpack("<B", "layout")
    if layout != LAYOUT:
        cursor.fail("unknown layout %d (this reader knows %d)" % (layout, LAYOUT))
    ids = decode_ids(cursor, "ids", size_expected=size_expected)
    cursor.done()
    return ids

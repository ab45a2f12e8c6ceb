"""Previews of kept examples as stored (format version 6, `schema.KIND_PREVIEWS`): texts of at
most 1,000 characters and images as PNG thumbnails of at most 64 x 64 pixels.

An example's preview does not change, so a writer stores it once per run, at the step where the
example is first kept (a listed example of a confusion cell or a listed label issue), and never
again; a reader merges the points of the series (an id stored twice keeps the later one).

Payload (little-endian), a string scalar:

| bytes | content |
|---|---|
| 0 | layout, 1 |
| 1- | the ids of the ``m`` previews, as an id table stores them (`example_ids.encode_ids`: ``q`` int64 or ``s`` strings, never ``p``) |
| then | ``m`` kind bytes: ``t`` (text) or ``i`` (image) |
| then | a type code and the byte length of each preview in that type, then their bytes one after the other: a text's UTF-8, an image's PNG |

The PNG (`encode_png`): 8-bit grey (colour type 0) or RGB (type 2), not interlaced, one IDAT
chunk of zlib data whose every row has filter type 0 (none); signature, IHDR, IDAT, IEND and
nothing else.

Checked on read (`decode_previews`): the payload at most `schema.MAX_PREVIEW_POINT_BYTES`, ``m``
at most `schema.MAX_PREVIEWS_PER_POINT`, unique ids; texts UTF-8 of at most
`schema.MAX_PREVIEW_TEXT_CHARS` characters; images at most `schema.MAX_THUMBNAIL_BYTES`, whose
header declares at most `schema.MAX_THUMBNAIL_SIDE` pixels a side before anything is inflated,
with valid chunk checksums, inflating to exactly their rows (at most one byte more is ever
inflated). Pure NumPy and the standard library; a problem is a `FormatError`.
"""

import base64
import struct
import zlib

import numpy as np

from tb_metricsdiag.format import example_ids, packed
from tb_metricsdiag.format.schema import (
    MAX_PREVIEW_POINT_BYTES,
    MAX_PREVIEW_TEXT_CHARS,
    MAX_PREVIEWS_PER_POINT,
    MAX_THUMBNAIL_BYTES,
    MAX_THUMBNAIL_SIDE,
    FormatError,
)

LAYOUT = 1

TEXT, IMAGE = b"t", b"i"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_GREY, _RGB = 0, 2
_CHANNELS = {_GREY: 1, _RGB: 3}
_IHDR = ">IIBBBBB"  # width, height, bit depth, colour type, compression, filter, interlace

# The UTF-8 of a text preview is at most 4 bytes a character.
_MAX_TEXT_BYTES = 4 * MAX_PREVIEW_TEXT_CHARS


def text_preview(text):
    """The stored bytes of a text preview: its first `MAX_PREVIEW_TEXT_CHARS` characters."""
    return str(text)[:MAX_PREVIEW_TEXT_CHARS].encode("utf-8")


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels):
    """A PNG of ``pixels``: uint8 ``[h, w]`` (grey) or ``[h, w, 3]`` (RGB), each side 1 to
    `MAX_THUMBNAIL_SIDE`.
    """
    pixels = np.asarray(pixels)
    grey = pixels.ndim == 2
    if pixels.dtype != np.uint8 or not (grey or pixels.ndim == 3 and pixels.shape[2] == 3):
        raise ValueError(
            "a thumbnail is uint8 [h, w] or [h, w, 3], got %s %s" % (pixels.dtype, pixels.shape)
        )
    height, width = pixels.shape[:2]
    if not (1 <= height <= MAX_THUMBNAIL_SIDE and 1 <= width <= MAX_THUMBNAIL_SIDE):
        raise ValueError(
            "a thumbnail is at most %d pixels a side, got %d x %d"
            % (MAX_THUMBNAIL_SIDE, width, height)
        )
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # filter byte 0: none
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(_IHDR, width, height, 8, _GREY if grey else _RGB, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def decode_png(data, what="thumbnail"):
    """The pixels (uint8 ``[h, w]`` or ``[h, w, 3]``) of an `encode_png` PNG, checked as the
    module docstring says.

    Raises:
      FormatError: anything else.
    """
    if not isinstance(data, bytes) or len(data) > MAX_THUMBNAIL_BYTES:
        raise FormatError("%s is not a PNG of at most %d bytes" % (what, MAX_THUMBNAIL_BYTES))
    cursor = packed.Cursor(data, what)
    if cursor.raw(len(PNG_SIGNATURE), "PNG signature") != PNG_SIGNATURE:
        cursor.fail("not a PNG")
    chunks = []
    for expected in (b"IHDR", b"IDAT", b"IEND"):
        size, kind = cursor.unpack(">I4s", "PNG chunk header")
        if kind != expected:
            cursor.fail("PNG chunk %r where %r belongs" % (kind, expected))
        body = cursor.raw(size, "PNG chunk %r" % kind)
        (crc,) = cursor.unpack(">I", "PNG chunk checksum")
        if crc != zlib.crc32(kind + body):
            cursor.fail("PNG chunk %r has a wrong checksum" % kind)
        chunks.append(body)
    cursor.done()
    header, compressed, end = chunks
    if len(header) != struct.calcsize(_IHDR) or end:
        cursor.fail("malformed PNG header or end")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(_IHDR, header)
    if not (1 <= width <= MAX_THUMBNAIL_SIDE and 1 <= height <= MAX_THUMBNAIL_SIDE):
        cursor.fail(
            "a PNG of %d x %d pixels, more than %d a side" % (width, height, MAX_THUMBNAIL_SIDE)
        )
    if depth != 8 or colour not in _CHANNELS or (compression, filtering, interlace) != (0, 0, 0):
        cursor.fail("a PNG other than 8-bit grey or RGB, not interlaced")
    row = 1 + width * _CHANNELS[colour]
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(compressed, row * height + 1)
    except zlib.error as error:
        cursor.fail("PNG data that is not zlib: %s" % error)
    if len(raw) != row * height or not inflate.eof or inflate.unused_data:
        cursor.fail("PNG data that does not hold %d rows of %d bytes" % (height, row))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, row)
    if rows[:, 0].any():
        cursor.fail("PNG rows filtered (only filter type 0 is written)")
    pixels = rows[:, 1:]
    return pixels if colour == _GREY else pixels.reshape(height, width, 3)


def encode_previews(ids, previews):
    """The stored bytes of one point of previews.

    Args:
      ids: ``[m]`` ids (integers or strings), unique.
      previews: ``m`` pairs ``(kind, data)``: (`TEXT`, `text_preview` bytes) or (`IMAGE`,
        `encode_png` bytes).
    """
    kinds = b"".join(kind for kind, _ in previews)
    if len(kinds) != len(previews) or set(kinds) - set(TEXT + IMAGE):
        raise ValueError("preview kinds must be TEXT or IMAGE")
    if len(previews) != len(ids):
        raise ValueError("one preview per id: %d ids, %d previews" % (len(ids), len(previews)))
    code, lengths = packed.packed_ints([len(data) for _, data in previews])
    return (
        bytes([LAYOUT])
        + example_ids.encode_ids(ids)
        + kinds
        + code
        + lengths
        + b"".join(data for _, data in previews)
    )


def decode_previews(payload, what="stored previews"):
    """``{id: preview}`` of one point of previews: ``preview`` is ``{"text": str}`` or
    ``{"image": "data:image/png;base64,..."}`` (the contract's ``preview`` of an example), ids
    Python ints or strs.

    Raises:
      FormatError: anything but an `encode_previews` payload (the module docstring lists the
        checks).
    """
    if isinstance(payload, bytes) and len(payload) > MAX_PREVIEW_POINT_BYTES:
        raise FormatError(
            "%s of %d bytes, more than %d" % (what, len(payload), MAX_PREVIEW_POINT_BYTES)
        )
    cursor = packed.Cursor(payload, what)
    (layout,) = cursor.unpack("<B", "layout")
    if layout != LAYOUT:
        cursor.fail("unknown layout %d (this reader knows %d)" % (layout, LAYOUT))
    ids = example_ids.decode_ids(cursor, "preview ids", positions_allowed=False)
    if ids.size > MAX_PREVIEWS_PER_POINT:
        cursor.fail("%d previews, more than %d" % (ids.size, MAX_PREVIEWS_PER_POINT))
    kinds = cursor.raw(ids.size, "preview kinds")
    (dtype,) = cursor.codes(1, "preview lengths")
    lengths = cursor.ints(dtype, ids.size, "preview lengths")
    if ids.size and lengths.min() < 1:
        cursor.fail("an empty preview")
    # Sizes before bytes: a text or an image declared larger than any is refused unread.
    largest = np.where(
        np.frombuffer(kinds, np.uint8) == TEXT[0], _MAX_TEXT_BYTES, MAX_THUMBNAIL_BYTES
    )
    if np.any(lengths > largest):
        cursor.fail(
            "a text over %d characters or an image over %d bytes"
            % (MAX_PREVIEW_TEXT_CHARS, MAX_THUMBNAIL_BYTES)
        )
    result, keys = {}, ids.ids_at(np.arange(ids.size))
    for key, kind, length in zip(keys, kinds, lengths.tolist()):
        data = cursor.raw(length, "preview of %r" % (key,))
        result[key] = _preview(kind, data, key, cursor)
    cursor.done()
    return result


def _preview(kind, data, key, cursor):
    if kind == TEXT[0]:
        try:
            text = data.decode("utf-8") if len(data) <= _MAX_TEXT_BYTES else None
        except UnicodeDecodeError:
            cursor.fail("the text preview of %r is not UTF-8" % (key,))
        if text is None or len(text) > MAX_PREVIEW_TEXT_CHARS:
            cursor.fail(
                "the text preview of %r is over %d characters" % (key, MAX_PREVIEW_TEXT_CHARS)
            )
        return {"text": text}
    if kind == IMAGE[0]:
        decode_png(data, "the image preview of %r" % (key,))
        return {"image": "data:image/png;base64," + base64.b64encode(data).decode("ascii")}
    cursor.fail("a preview of unknown kind %r" % bytes([kind]))

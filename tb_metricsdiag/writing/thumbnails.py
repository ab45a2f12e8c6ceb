"""Previews as the writers store them: images shrunk to thumbnails of at most 64 x 64 pixels
(PNG, `format.previews.encode_png`), texts cut to 1,000 characters. Pure NumPy.
"""

import math

import numpy as np

from tb_metricsdiag.format import previews as previews_format
from tb_metricsdiag.format.schema import MAX_PREVIEW_TEXT_CHARS, MAX_THUMBNAIL_SIDE


def thumbnails(images):
    """Thumbnails of a batch of images: uint8 ``[b, h, w]`` (grey) or ``[b, h, w, 3]`` (RGB), at
    most `MAX_THUMBNAIL_SIDE` pixels a side.

    Args:
      images: ``[b, H, W]``, ``[b, H, W, 1]`` or ``[b, H, W, 3]``, uint8 or floats in [0, 1].

    Images larger than that are shrunk by the smallest whole factor ``f`` that fits them: each
    pixel is the mean of an ``f x f`` block (the last row and column repeated to fill the
    blocks at the edges), so thin strokes fade rather than vanish. Floats become
    ``round(255 x)``.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    height, width = images.shape[1:3]
    factor = math.ceil(max(height, width) / MAX_THUMBNAIL_SIDE)
    scale = 255.0 if images.dtype.kind == "f" else 1.0
    if factor > 1:
        padding = [(0, 0), (0, -height % factor), (0, -width % factor)]
        padding += [(0, 0)] * (images.ndim - 3)
        blocks = np.pad(images, padding, mode="edge").astype(np.float64)
        shape = (blocks.shape[0], blocks.shape[1] // factor, factor, blocks.shape[2] // factor)
        images = blocks.reshape(shape + (factor,) + blocks.shape[3:]).mean(axis=(2, 4))
    elif images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    return np.clip(np.rint(images * scale), 0, 255).astype(np.uint8)


def thumbnail(image):
    """The thumbnail of one image ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (`thumbnails`)."""
    return thumbnails(np.asarray(image)[None])[0]


def compact_previews(previews):
    """One batch of checked previews (`inputs.check_previews`) as a writer may keep them until
    they are stored: a list of thumbnails (`thumbnails`) or of texts cut to
    `MAX_PREVIEW_TEXT_CHARS` characters.
    """
    if previews.dtype == object:
        return [str(text)[:MAX_PREVIEW_TEXT_CHARS] for text in previews.tolist()]
    return list(thumbnails(previews))


def stored_preview(value):
    """``(kind, bytes)`` of one example's preview as `format.previews.encode_previews` takes it:
    a string as text, an image array (`thumbnail`) as PNG.
    """
    if isinstance(value, (str, bytes)):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return previews_format.TEXT, previews_format.text_preview(value)
    return previews_format.IMAGE, previews_format.encode_png(thumbnail(value))

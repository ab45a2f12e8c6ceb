"""Previews as the writers store them: images shrunk to thumbnails of at most 64 x 64 pixels
(PNG, `format.previews.encode_png`), texts cut to 1,000 characters. Pure NumPy.
"""

import math

import numpy as np

from tb_metricsdiag.format import previews as previews_format
from tb_metricsdiag.format.schema import MAX_THUMBNAIL_SIDE


def thumbnail(image):
    """The thumbnail of one image: uint8 ``[h, w]`` (grey) or ``[h, w, 3]`` (RGB), at most
    `MAX_THUMBNAIL_SIDE` pixels a side.

    Args:
      image: ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``, uint8 or floats in [0, 1].

    An image larger than that is shrunk by the smallest whole factor ``f`` that fits it: each
    pixel is the mean of an ``f x f`` block (the last row and column repeated to fill the
    blocks at the edges), so thin strokes fade rather than vanish. Floats become
    ``round(255 x)``.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    height, width = image.shape[:2]
    factor = math.ceil(max(height, width) / MAX_THUMBNAIL_SIDE)
    scale = 255.0 if image.dtype.kind == "f" else 1.0
    if factor > 1:
        padding = [(0, -height % factor), (0, -width % factor)] + [(0, 0)] * (image.ndim - 2)
        blocks = np.pad(image, padding, mode="edge").astype(np.float64)
        shape = (blocks.shape[0] // factor, factor, blocks.shape[1] // factor, factor)
        image = blocks.reshape(shape + blocks.shape[2:]).mean(axis=(1, 3))
    elif image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.clip(np.rint(image * scale), 0, 255).astype(np.uint8)


def stored_preview(value):
    """``(kind, bytes)`` of one example's preview as `format.previews.encode_previews` takes it:
    a string as text, an image array (`thumbnail`) as PNG.
    """
    if isinstance(value, (str, bytes)):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return previews_format.TEXT, previews_format.text_preview(value)
    return previews_format.IMAGE, previews_format.encode_png(thumbnail(value))

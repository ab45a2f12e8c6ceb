"""Exact-duplicate check between training and validation examples. Pure NumPy + hashlib.

Each example's input bytes (every input array of a multi-input model, in order) are hashed with
BLAKE2b-128; a validation example counts as leaked when its digest occurs among the training
digests. 128 bits make an accidental collision practically impossible, so no byte comparison
follows.
"""

import hashlib

import numpy as np


def example_digests(arrays):
    """One 16-byte digest per example of a list of arrays that share their first dimension."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    if not arrays:
        return []
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError("input arrays differ in their number of examples")
    # Flatten each array to rows of bytes and join them, so one example is one byte string.
    rows = np.concatenate([a.reshape(n, -1).view(np.uint8).reshape(n, -1) for a in arrays], axis=1)
    width = rows.shape[1]
    data = rows.tobytes()
    blake2b = hashlib.blake2b
    return (
        [
            blake2b(data[start : start + width], digest_size=16).digest()
            for start in range(0, n * width, width)
        ]
        if width
        else [b""] * n
    )


def duplicate_overlap(train_digests, validation_digests):
    """How many validation examples also occur, byte for byte, in the training examples.

    Returns a dict: ``validation_examples``, ``train_examples``, ``duplicates`` (validation
    examples whose bytes occur in training), ``duplicate_share`` (duplicates / validation
    examples, None when there are none), ``method``.
    """
    train = set(train_digests)
    duplicates = sum(1 for digest in validation_digests if digest in train)
    total = len(validation_digests)
    return {
        "validation_examples": total,
        "train_examples": len(train_digests),
        "duplicates": duplicates,
        "duplicate_share": duplicates / total if total else None,
        "method": "blake2b-128 of each example's input bytes",
    }

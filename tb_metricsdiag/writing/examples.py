"""The examples a callback predicts: ``(x, y)`` arrays or a ``tf.data.Dataset``, read as NumPy."""

import numpy as np
import tensorflow as tf

from tb_metricsdiag.core import overlap as overlap_lib


class Examples:
    """Examples given as ``(x, y)`` / ``(x, y, sample_weight)`` arrays or a ``tf.data.Dataset``
    of such batches, read batch by batch as NumPy (sample weights are ignored).
    """

    def __init__(self, data, name):
        self.name = name
        self.dataset = None
        self.x = self.y = None
        if isinstance(data, tf.data.Dataset):
            self.dataset = data
            return
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(
                "%s must be a tuple (x, y) of arrays or a tf.data.Dataset of (x, y) batches,"
                " got %s" % (name, type(data).__name__)
            )
        self.x = tf.nest.map_structure(np.asarray, data[0])
        self.y = np.asarray(data[1])
        lengths = {a.shape[0] if a.ndim else None for a in tf.nest.flatten(self.x)}
        if len(lengths) != 1 or None in lengths:
            raise ValueError("%s: the input arrays differ in their number of examples" % name)
        (length,) = lengths
        if self.y.ndim == 0 or self.y.shape[0] != length:
            raise ValueError(
                "%s: x has %d examples but y has shape %s" % (name, length, self.y.shape)
            )
        if length == 0:
            raise ValueError("%s is empty" % name)

    def batches(self, batch_size):
        """Yield ``(x, y)`` batches, y as a NumPy array."""
        if self.dataset is not None:
            for element in self.dataset:
                if not isinstance(element, (tuple, list)) or len(element) < 2:
                    raise ValueError("%s: dataset elements must be (x, y) tuples" % self.name)
                yield element[0], np.asarray(element[1])
            return
        for start in range(0, self.y.shape[0], batch_size):
            batch = slice(start, start + batch_size)
            yield tf.nest.map_structure(lambda a, batch=batch: a[batch], self.x), self.y[batch]

    def first_batch(self, batch_size):
        for batch in self.batches(batch_size):
            return batch
        raise ValueError("%s is empty" % self.name)

    def all_labels(self, batch_size):
        if self.y is not None:
            return self.y
        return np.concatenate([y for _, y in self.batches(batch_size)])

    def digests(self, batch_size):
        """BLAKE2b digest of each example's input bytes (see `overlap`)."""
        if self.dataset is None:
            return overlap_lib.example_digests(tf.nest.flatten(self.x))
        digests = []
        for x, _ in self.batches(batch_size):
            digests.extend(overlap_lib.example_digests([np.asarray(a) for a in tf.nest.flatten(x)]))
        return digests

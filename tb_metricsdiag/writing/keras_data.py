"""The examples a callback predicts: ``(x, y)`` arrays or a ``tf.data.Dataset``, read as NumPy.

Array data needs neither TensorFlow nor any Keras backend in particular (structures of inputs
are walked with ``keras.tree``). A ``tf.data.Dataset`` is recognised only when TensorFlow is
already imported, which it is wherever one was made.
"""

import sys

import numpy as np
from keras import tree

from tb_metricsdiag.core import overlap as overlap_lib


def _dataset_class():
    """``tf.data.Dataset``, or None when TensorFlow is not imported (no dataset can exist)."""
    tf = sys.modules.get("tensorflow")
    data = getattr(tf, "data", None)
    return getattr(data, "Dataset", None)


def is_dataset(data):
    """Whether ``data`` is a ``tf.data.Dataset`` (without importing TensorFlow)."""
    dataset_class = _dataset_class()
    return dataset_class is not None and isinstance(data, dataset_class)


def _check_dataset(dataset, name, steps):
    """The checks a Dataset can have before it is read: elements ``(x, y)``, batched, and
    finite (or bounded by ``steps``); returns the dataset to read (``steps`` batches of it).
    """
    import tensorflow as tf

    spec = dataset.element_spec
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
        raise ValueError(
            "%s: the dataset's elements must be (x, y) or (x, y, sample_weight) tuples, got %s"
            % (name, spec)
        )
    label_spec = spec[1]
    if isinstance(label_spec, tf.TensorSpec) and label_spec.shape.rank == 0:
        raise ValueError(
            "%s: the dataset yields single examples (its labels are scalars): batch it, e.g."
            " %s.batch(256)" % (name, name)
        )
    if steps is not None:
        return dataset.take(steps)
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "%s repeats forever (.repeat()), so the callback would never finish reading it:"
            " pass the dataset without .repeat(), or bound it with .take(N) or %s_steps=N"
            % (name, name.replace("_data", ""))
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        raise ValueError(
            "%s has an unknown number of batches (it may repeat forever): bound it with"
            " .take(N) or %s_steps=N, or declare its size with"
            " tf.data.experimental.assert_cardinality(N)" % (name, name.replace("_data", ""))
        )
    return dataset


class Examples:
    """Examples given as ``(x, y)`` / ``(x, y, sample_weight)`` arrays or a ``tf.data.Dataset``
    of such batches, read batch by batch as NumPy (sample weights are ignored).

    Args:
      data: the arrays or the Dataset.
      name: the argument's name, for the messages (``"validation_data"``).
      steps: read at most this many batches of a Dataset (needed for one that repeats).
    """

    def __init__(self, data, name, steps=None):
        self.name = name
        self.dataset = None
        self.x = self.y = None
        if is_dataset(data):
            self.dataset = _check_dataset(data, name, steps)
            return
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(
                "%s must be a tuple (x, y) of arrays or a tf.data.Dataset of (x, y) batches,"
                " got %s" % (name, type(data).__name__)
            )
        self.x = tree.map_structure(np.asarray, data[0])
        self.y = np.asarray(data[1])
        lengths = {a.shape[0] if a.ndim else None for a in tree.flatten(self.x)}
        if len(lengths) != 1 or None in lengths:
            raise ValueError("%s: the input arrays differ in their number of examples" % name)
        (length,) = lengths
        if self.y.ndim == 0 or self.y.shape[0] != length:
            raise ValueError(
                "%s: x has %d examples but y has shape %s" % (name, length, self.y.shape)
            )
        if length == 0:
            raise ValueError("%s is empty" % name)

    def batches(self, batch_size, as_numpy=False, start=0):
        """Yield ``(x, y)`` batches, y as a NumPy array; a Dataset's x as tensors unless
        ``as_numpy`` (arrays are always NumPy, from row ``start`` on).
        """
        if self.dataset is not None:
            for element in self.dataset:
                x = tree.map_structure(np.asarray, element[0]) if as_numpy else element[0]
                yield x, np.asarray(element[1])
            return
        for begin in range(start, self.y.shape[0], batch_size):
            batch = slice(begin, begin + batch_size)
            yield tree.map_structure(lambda a, batch=batch: a[batch], self.x), self.y[batch]

    def first_batch(self, batch_size, as_numpy=False):
        for batch in self.batches(batch_size, as_numpy):
            return batch
        raise ValueError("%s is empty" % self.name)

    def all_labels(self, batch_size):
        if self.y is not None:
            return self.y
        return np.concatenate([y for _, y in self.batches(batch_size)])

    def digests(self, batch_size):
        """BLAKE2b digest of each example's input bytes (see `overlap`)."""
        if self.dataset is None:
            return overlap_lib.example_digests(tree.flatten(self.x))
        digests = []
        for x, _ in self.batches(batch_size, as_numpy=True):
            digests.extend(overlap_lib.example_digests(tree.flatten(x)))
        return digests

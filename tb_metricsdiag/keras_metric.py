"""`CountsMetric`: confusion and threshold counts accumulated inside Keras's own steps.

Added in ``compile(metrics=[...])`` (usually through `MetricsDiagCallback.metric`), it counts
every batch of Keras's train and test steps, as ``keras.metrics.AUC`` does: each score is
dropped into its threshold bucket and the buckets are added up per class, so memory is fixed by
``classes x thresholds`` and the callback needs no prediction pass of its own.

The counts are those of `counts.threshold_counts` and `counts.confusion_matrix` bit for bit: a
float32 score is compared with the thresholds rounded up to float32
(`counts.comparison_edges`), which is the exact ``score >= t``. The comparison is made on
order-preserving integer keys of the float bits (`_order_keys`), because TensorFlow's CPU
kernels treat subnormal floats as zero, which would make e.g. -1e-45 reach a threshold of 0. Scores follow the conventions of
`labels` (a single unit ``p`` gives ``[1 - p, p]``; logits go through sigmoid / softmax, here
Keras's own, which may differ from NumPy's in the last bit).

No scores are kept, so the average precision of this mode is computed from the threshold
counts (`counts.average_precision_from_counts`).
"""

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from tb_metricsdiag import counts as counts_lib
from tb_metricsdiag import labels as labels_lib

COUNT_DTYPE = "int64"
_LOW_31_BITS = 0x7FFFFFFF


def _order_keys(bits):
    """Signed int32 keys of float32 bit patterns, ordered as the floats are: negatives (sign
    bit set, negative as int32) get their magnitude bits flipped. -0.0 becomes -1, +0.0 0."""
    return ops.bitwise_xor(bits, ops.bitwise_and(ops.right_shift(bits, 31), _LOW_31_BITS))


def _edge_keys(thresholds):
    """int32 keys ``e`` with ``key(s) >= e`` exactly when ``s >= thresholds`` for float32 ``s``."""
    edges = counts_lib.comparison_edges(thresholds, np.float32)
    keys = np.asarray(_order_keys(edges.view(np.int32)))
    # -0.0 (key -1) reaches a threshold of 0 too.
    return np.where(edges == 0, np.int32(-1), keys).astype(np.int32)


class CountsMetric(keras.metrics.Metric):
    """Per-class confusion and threshold-bucket counts of every batch Keras evaluates.

    Args:
      thresholds: ascending thresholds; default 201 evenly spaced values in [0, 1].
      from_logits: whether the model outputs logits. `MetricsDiagCallback` sets it at the
        start of training from its own detection when left as None.
      output_width: the model's number of output units (1 for a single sigmoid unit);
        default taken from the first batch.
      name: name of the metric. Its ``result()`` is an empty dict, so it adds nothing to
        Keras's ``logs`` or progress bar.

    The state is read with `counts`. Rows with a non-finite score, or a label outside the
    classes, are left out of the counts and counted in ``invalid``.
    """

    def __init__(self, thresholds=None, from_logits=None, output_width=None, name="metricsdiag", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if thresholds is None:
            thresholds = counts_lib.default_thresholds()
        self.thresholds = counts_lib.validate_thresholds(thresholds)
        self._edge_keys = _edge_keys(self.thresholds)  # eagerly: NumPy, outside any graph
        self.from_logits = from_logits
        self.num_classes = None
        self.output_width = None
        if output_width is not None:
            self._build_counts(output_width)

    def _build_counts(self, output_width):
        self.output_width = int(output_width)
        self.num_classes = labels_lib.num_classes_from_output_width(output_width)
        width = self.thresholds.size + 1
        zeros = keras.initializers.Zeros()
        self.confusion = self.add_variable((self.num_classes, self.num_classes), zeros, COUNT_DTYPE, name="confusion")
        self.every = self.add_variable((self.num_classes, width), zeros, COUNT_DTYPE, name="bucket_counts")
        self.positives = self.add_variable((self.num_classes, width), zeros, COUNT_DTYPE, name="positive_bucket_counts")
        self.invalid = self.add_variable((), zeros, COUNT_DTYPE, name="invalid")

    def _scores(self, y_pred):
        """Per-class float32 scores ``[b, C]`` and predicted ids ``[b]``."""
        y_pred = ops.cast(y_pred, "float32")
        if self.output_width == 1:
            p = ops.reshape(y_pred, (-1,))
            if self.from_logits:
                p = ops.sigmoid(p)
            return ops.stack([1 - p, p], axis=1), ops.cast(p >= 0.5, "int32")
        scores = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        return scores, ops.cast(ops.argmax(scores, axis=-1), "int32")

    def _class_ids(self, y_true):
        """Class ids ``[b]`` from sparse ids, one-hot rows, or 0/1 of a single unit."""
        if self.output_width > 1 and len(y_true.shape) == 2 and y_true.shape[-1] == self.output_width:
            return ops.cast(ops.argmax(y_true, axis=-1), "int32")
        return ops.cast(ops.round(ops.reshape(ops.cast(y_true, "float32"), (-1,))), "int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Count one batch; ``sample_weight`` is ignored (counts are counts of examples)."""
        y_pred = ops.convert_to_tensor(y_pred)
        if self.num_classes is None:
            self._build_counts(1 if len(y_pred.shape) == 1 else y_pred.shape[-1])
        scores, predicted = self._scores(y_pred)
        ids = self._class_ids(ops.convert_to_tensor(y_true))
        num_classes = self.num_classes
        width = self.thresholds.size + 1
        valid = ops.all(ops.isfinite(scores), axis=1) & (ids >= 0) & (ids < num_classes)
        weights = ops.cast(valid, "int32")
        ids = ops.where(valid, ids, 0)
        predicted = ops.where(valid, predicted, 0)
        keys = _order_keys(tf.bitcast(ops.reshape(scores, (-1,)), tf.int32))
        buckets = ops.reshape(
            ops.searchsorted(ops.convert_to_tensor(self._edge_keys), keys, side="right"),
            (-1, num_classes),
        )
        buckets = ops.minimum(ops.cast(buckets, "int32"), width - 1)  # NaN rows: weight 0
        buckets = buckets + ops.arange(num_classes, dtype="int32") * width
        own = ops.take_along_axis(buckets, ops.expand_dims(ids, 1), axis=1)[:, 0]
        row_weights = ops.repeat(weights, num_classes)

        def histogram(values, value_weights, length):
            counted = ops.bincount(values, weights=value_weights, minlength=length)
            return ops.cast(counted[:length], COUNT_DTYPE)

        self.confusion.assign_add(
            ops.reshape(histogram(ids * num_classes + predicted, weights, num_classes**2), (num_classes, num_classes))
        )
        self.every.assign_add(ops.reshape(histogram(ops.reshape(buckets, (-1,)), row_weights, num_classes * width), (num_classes, width)))
        self.positives.assign_add(ops.reshape(histogram(own, weights, num_classes * width), (num_classes, width)))
        self.invalid.assign_add(ops.cast(ops.size(weights) - ops.sum(weights), COUNT_DTYPE))

    def result(self):
        """Nothing for Keras's logs: the counts are read with `counts`."""
        return {}

    def counts(self):
        """The state as a `counts.ClassificationCounts` (threshold-grid AP), or None before any
        batch was counted."""
        if self.num_classes is None:
            return None
        result = counts_lib.ClassificationCounts(self.num_classes, self.thresholds, keep_scores=False)
        tp, fp = counts_lib.threshold_counts_from_histograms(
            np.asarray(self.every.numpy()), np.asarray(self.positives.numpy())
        )
        result.add(np.asarray(self.confusion.numpy()), tp, fp, int(self.invalid.numpy()))
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            thresholds=[float(t) for t in self.thresholds],
            from_logits=self.from_logits,
            output_width=self.output_width,
        )
        return config

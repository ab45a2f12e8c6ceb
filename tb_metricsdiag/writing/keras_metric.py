"""`CountsMetric`: confusion and threshold counts accumulated inside Keras's own steps.

Added in ``compile(metrics=[...])`` (usually through `MetricsDiagCallback.metric`), it counts
every batch of Keras's train and test steps, as ``keras.metrics.AUC`` does: each score is
dropped into its threshold bucket and the buckets are added up per class, so memory is fixed by
``classes x thresholds`` and the callback needs no prediction pass of its own.

The counts are those of `counts.threshold_counts` and `counts.confusion_matrix` bit for bit: a
float32 score is compared with the thresholds rounded up to float32
(`counts.comparison_edges`), which is the exact ``score >= t``. Everything is written in
``keras.ops``, so it runs inside the compiled steps of every Keras backend. Some CPU kernels
(TensorFlow's, XLA's) treat subnormal floats as zero, which would make e.g. -1e-45 reach a
threshold of 0: the float comparison (one binary search, ``ops.searchsorted``) is therefore
corrected for negative subnormal scores, and a grid with subnormal thresholds is compared on
order-preserving integer keys of the float bits instead (`_order_keys`). The argmax of the
predicted class may see subnormal scores as zero for the same reason.
Scores follow the conventions of `labels` (a single unit ``p`` gives ``[1 - p, p]``; logits go
through sigmoid / softmax, here Keras's own, which may differ from NumPy's in the last bit).
Scores are counted as float32 whatever the model's dtype.

No scores are kept, so the average precision of this mode is computed from the threshold
counts (`counts.average_precision_from_counts`).
"""

import keras
import numpy as np
from keras import ops

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import labels as labels_lib

_LOW_31_BITS = 0x7FFFFFFF
# The int32 bit patterns of the negative subnormal float32 values, 0x80000001..0x807FFFFF.
_NEGATIVE_SUBNORMAL_BITS = (-0x7FFFFFFF, -0x7F800001)


def _order_keys(bits):
    """Signed int32 keys of float32 bit patterns, ordered as the floats are: negatives (sign
    bit set, negative as int32) get their magnitude bits flipped. -0.0 becomes -1, +0.0 0.
    """
    return ops.bitwise_xor(bits, ops.bitwise_and(ops.right_shift(bits, 31), _LOW_31_BITS))


def _edge_keys(edges):
    """int32 keys ``e`` with ``key(s) >= e`` exactly when ``s >= edges`` for float32 ``s`` and
    the float32 comparison edges of the thresholds (`counts.comparison_edges`).
    """
    keys = np.asarray(_order_keys(edges.view(np.int32)))
    # -0.0 (key -1) reaches a threshold of 0 too.
    return np.where(edges == 0, np.int32(-1), keys).astype(np.int32)


def _count_dtype():
    """int64, or int32 on JAX without x64 (which has no int64): that bounds what one epoch
    counts (the metric is reset every epoch) to 2**31 - 1 examples per histogram entry.
    """
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.read("jax_enable_x64"):
            return "int32"
    return "int64"


def _count_slots(slots, length):
    """How often each of ``0..length-1`` occurs in the int32 ``slots``, as `_count_dtype`.

    An integer segment sum (exact, and traceable with a fixed length on every backend), except
    on PyTorch, whose Keras segment sum adds in float32: there ``bincount`` (int64, exact).
    """
    if keras.backend.backend() == "torch":
        return ops.cast(ops.bincount(slots, minlength=length), "int64")
    ones = ops.ones_like(slots, dtype=_count_dtype())
    return ops.segment_sum(ones, slots, num_segments=length)


class CountsMetric(keras.metrics.Metric):
    """Per-class confusion and threshold-bucket counts of every batch Keras evaluates.

    Args:
      thresholds: ascending thresholds; default
        `counting.default_thresholds` (201 values spaced in logit).
      from_logits: whether the model outputs logits. `MetricsDiagCallback` sets it at the
        start of training from its own detection; None counts the outputs as probabilities.
      output_width: the model's number of output units (1 for a single sigmoid unit);
        default taken from the first batch.
      name: name of the metric. Its ``result()`` is an empty dict, so it adds nothing to
        Keras's ``logs`` or progress bar.

    The state is read with `counts`. Rows with a non-finite score, or a label outside the
    classes, are left out of the counts and counted in its ``invalid``.
    """

    def __init__(
        self, thresholds=None, from_logits=None, output_width=None, name="metricsdiag", dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        if thresholds is None:
            thresholds = counts_lib.default_thresholds()
        self.thresholds = counts_lib.validate_thresholds(thresholds)
        # Made here, outside any graph.
        edges = counts_lib.comparison_edges(self.thresholds, np.float32)
        self._edges = edges
        # Bucketize compares as floats, which is exact for every score except subnormals (see
        # the module docstring); with subnormal thresholds the integer keys are used instead.
        subnormal = (edges != 0) & (np.abs(edges) < np.finfo(np.float32).tiny)
        self._edge_keys = _edge_keys(edges) if subnormal.any() else None
        # A negative subnormal score reaches exactly the negative thresholds: as many as come
        # before a threshold of 0, when there is one (otherwise the float comparison is right).
        zero = np.flatnonzero(edges == 0)
        self._negative_subnormal_bucket = int(zero[0]) if zero.size else None
        self.from_logits = from_logits
        self.num_classes = None
        self.output_width = None
        if output_width is not None:
            self._build_counts(output_width)

    def _build_counts(self, output_width):
        self.output_width = int(output_width)
        self.num_classes = labels_lib.num_classes_from_output_width(output_width)
        # One flat histogram, so that a batch costs one segment sum and one update (layout: see
        # `_sections`), and one slot for the invalid rows.
        self.histogram = self.add_variable(
            (self._sections()[-1] + 1,),
            keras.initializers.Zeros(),
            _count_dtype(),
            name="histogram",
        )

    def _sections(self):
        """Offsets in ``histogram`` of the confusion matrix ``[C, C]``, the bucket counts of
        each class's own examples ``[C, T + 1]``, those of the other examples ``[C, T + 1]``,
        and the discard slot where each invalid row puts its ``C + 1`` entries.
        """
        confusion = self.num_classes**2
        buckets = self.num_classes * (self.thresholds.size + 1)
        return 0, confusion, confusion + buckets, confusion + 2 * buckets

    def _slot_offsets(self):
        """``[C, 1 + C]`` int32: row ``i`` holds, for an example of class ``i``, where its
        confusion row starts, then where each class's bucket counts start: its own class's in
        the own section, the others' in the other section.
        """
        _, own_at, other_at, _ = self._sections()
        starts = (self.thresholds.size + 1) * np.arange(self.num_classes)
        buckets = np.tile(other_at + starts, (self.num_classes, 1))
        buckets[np.diag_indices(self.num_classes)] = own_at + starts
        confusion_rows = self.num_classes * np.arange(self.num_classes)[:, None]
        return np.concatenate([confusion_rows, buckets], axis=1).astype(np.int32)

    def _buckets(self, scores):
        """Number of thresholds each score reaches, int32 ``[b, C]`` (`counts.threshold_bucket`)."""
        # The bits are viewed in [b, C], whose last dimension is static (TensorFlow's view
        # needs that in a graph); the binary searches take one flat vector.
        bits = ops.reshape(ops.view(scores, "int32"), (-1,))
        if self._edge_keys is not None:
            edges, values = ops.convert_to_tensor(self._edge_keys), _order_keys(bits)
        else:
            edges, values = ops.convert_to_tensor(self._edges), ops.reshape(scores, (-1,))
        buckets = ops.cast(ops.searchsorted(edges, values, side="right"), "int32")
        if self._edge_keys is None and self._negative_subnormal_bucket is not None:
            low, high = _NEGATIVE_SUBNORMAL_BITS
            negative_subnormal = ops.logical_and(bits >= low, bits <= high)
            buckets = ops.where(negative_subnormal, self._negative_subnormal_bucket, buckets)
        return ops.reshape(buckets, ops.shape(scores))

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
        if (
            self.output_width > 1
            and len(y_true.shape) == 2
            and y_true.shape[-1] == self.output_width
        ):
            return ops.cast(ops.argmax(y_true, axis=-1), "int32")
        y_true = ops.reshape(y_true, (-1,))
        if not keras.backend.is_int_dtype(y_true.dtype):
            y_true = ops.round(y_true)
        return ops.cast(y_true, "int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Count one batch; ``sample_weight`` is ignored (counts are counts of examples).

        Each valid row adds ``1 + C`` entries to the histogram (its confusion cell, and its
        bucket in every class, in the own or the other section), an invalid row ``1 + C`` to
        the discard slot; one integer segment sum adds them all (`_count_slots`). Every op
        counts: this runs in each of Keras's train and test steps.
        """
        y_pred = ops.convert_to_tensor(y_pred)
        if self.num_classes is None:
            self._build_counts(1 if len(y_pred.shape) == 1 else y_pred.shape[-1])
        scores, predicted = self._scores(y_pred)
        ids = self._class_ids(ops.convert_to_tensor(y_true))
        discard = self._sections()[-1]
        known_class = ops.logical_and(ids >= 0, ids < self.num_classes)
        valid = ops.logical_and(ops.all(ops.isfinite(scores), axis=1), known_class)
        ids = ops.where(valid, ids, 0)
        # Predicted class and buckets side by side, moved to their slots by one row of offsets.
        columns = ops.concatenate([predicted[:, None], self._buckets(scores)], axis=1)
        offsets = ops.take(ops.convert_to_tensor(self._slot_offsets()), ids, axis=0)
        slots = ops.where(valid[:, None], columns + offsets, discard)
        self.histogram.assign_add(_count_slots(ops.reshape(slots, (-1,)), discard + 1))

    def result(self):
        """Nothing for Keras's logs: the counts are read with `counts`."""
        return {}

    def counts(self):
        """The state as a `counts.ClassificationCounts` (threshold-grid AP), or None before any
        batch was counted.
        """
        if self.num_classes is None:
            return None
        histogram = ops.convert_to_numpy(self.histogram).astype(np.int64)
        confusion_at, own_at, other_at, discard = self._sections()
        buckets = (self.num_classes, self.thresholds.size + 1)
        own = histogram[own_at:other_at].reshape(buckets)
        every = own + histogram[other_at:discard].reshape(buckets)
        tp, fp = counts_lib.threshold_counts_from_histograms(every, own)
        result = counts_lib.ClassificationCounts(
            self.num_classes, self.thresholds, keep_scores=False
        )
        confusion = histogram[confusion_at:own_at].reshape(self.num_classes, self.num_classes)
        result.add(confusion, tp, fp, histogram[discard] // (self.num_classes + 1))
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            thresholds=[float(t) for t in self.thresholds],
            from_logits=self.from_logits,
            output_width=self.output_width,
        )
        return config

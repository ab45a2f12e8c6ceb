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
counts (`counts.average_precision_from_counts`). The calibration bins are counted too
(`calibration.calibration_bins`: the same bin of each confidence, computed in float32 as there;
the confidence sums add float32 batch sums in float64, or float32 on JAX without x64).

A multi-label model (``multi_label``: one sigmoid per label, multi-hot labels) is counted per
label as `counting.MultiLabelCounts` counts it: each label's ``[[tn, fp], [fn, tp]]`` at
probability >= 0.5, its threshold buckets, the rows whose whole label set is right, and every
(row, label) probability in the calibration bins.
"""

import keras
import numpy as np
from keras import ops

from tb_metricsdiag.core import calibration as calibration_lib
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


def _sum_dtype():
    """float64, or float32 on JAX without x64, for the calibration bins' confidence sums."""
    return "float32" if _count_dtype() == "int32" else "float64"


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
    """Per-class confusion, threshold-bucket and calibration counts of every batch Keras
    evaluates.

    Args:
      thresholds: ascending thresholds; default
        `counting.default_thresholds` (201 values spaced in logit).
      from_logits: whether the model outputs logits. `MetricsDiagCallback` sets it at the
        start of training from its own detection; None counts the outputs as probabilities.
      output_width: the model's number of output units (1 for a single sigmoid unit);
        default taken from the first batch.
      multi_label: whether the model is multi-label (one sigmoid per label, multi-hot
        labels); `MetricsDiagCallback` sets it at the start of training.
      name: name of the metric. Its ``result()`` is an empty dict, so it adds nothing to
        Keras's ``logs`` or progress bar.

    The state is read with `counts()`. Rows with a non-finite score, or a label outside the
    classes (not 0/1, multi-label), are left out of the counts and counted in its ``invalid``.
    """

    def __init__(
        self,
        thresholds=None,
        from_logits=None,
        output_width=None,
        name="metricsdiag",
        dtype=None,
        multi_label=False,
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
        self.multi_label = bool(multi_label)
        self.num_classes = None
        self.output_width = None
        if output_width is not None:
            self._build_counts(output_width)

    def _build_counts(self, output_width):
        self.output_width = int(output_width)
        self.num_classes = (
            self.output_width
            if self.multi_label
            else labels_lib.num_classes_from_output_width(output_width)
        )
        # One flat histogram, so that a batch costs one segment sum and one update (layout: see
        # `_sections`), and one slot for the invalid rows.
        self.histogram = self.add_variable(
            (self._sections()["discard"] + 1,),
            keras.initializers.Zeros(),
            _count_dtype(),
            name="histogram",
        )
        self.confidence_sums = self.add_variable(
            (calibration_lib.DEFAULT_NUM_BINS,),
            keras.initializers.Zeros(),
            _sum_dtype(),
            name="confidence_sums",
        )

    def _sections(self):
        """Offsets in ``histogram``: the decisions (the confusion matrix ``[C, C]``, or ``[K, 2,
        2]`` per label), the bucket counts of each class's own examples ``[C, T + 1]``, those of
        the other examples ``[C, T + 1]``, the calibration bins' counts ``[B]`` and correct
        ones ``[B]``, a spare slot (where what does not count goes: an incorrect prediction's
        correct entry, a row not matched exactly), the rows matched exactly (multi-label), and
        the discard slot where each invalid row puts all its `_entries_per_row`.
        """
        decisions = 4 * self.num_classes if self.multi_label else self.num_classes**2
        buckets = self.num_classes * (self.thresholds.size + 1)
        bins = calibration_lib.DEFAULT_NUM_BINS
        own = decisions
        other = own + buckets
        bin_count = other + buckets
        bin_correct = bin_count + bins
        spare = bin_correct + bins
        return {
            "decisions": 0,
            "own": own,
            "other": other,
            "bin_count": bin_count,
            "bin_correct": bin_correct,
            "spare": spare,
            "exact": spare + 1,
            "discard": spare + 2,
        }

    def _entries_per_row(self):
        """Histogram entries of one row: single-label its confusion cell, its bucket in every
        class, its calibration bin and correct entry; multi-label those per label, and its
        exact-match entry.
        """
        if self.multi_label:
            return 4 * self.num_classes + 1
        return self.num_classes + 3

    def _bucket_offsets(self):
        """``[C, C]`` int32: row ``i`` holds, for an example of class ``i``, where each class's
        bucket counts start: its own class's in the own section, the others' in the other
        section.
        """
        sections = self._sections()
        starts = (self.thresholds.size + 1) * np.arange(self.num_classes)
        buckets = np.tile(sections["other"] + starts, (self.num_classes, 1))
        buckets[np.diag_indices(self.num_classes)] = sections["own"] + starts
        return buckets.astype(np.int32)

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

    @staticmethod
    def _calibration_bin(confidence):
        """The calibration bin of each float32 confidence, int32, as
        `calibration.calibration_bins` computes it (clipped to [0, 1], scaled in float32,
        truncated).
        """
        bins = calibration_lib.DEFAULT_NUM_BINS
        scaled = ops.clip(confidence, 0.0, 1.0) * np.float32(bins)
        return ops.clip(ops.cast(scaled, "int32"), 0, bins - 1)

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

        Each valid row adds `_entries_per_row` entries to the histogram, an invalid row as many
        to the discard slot; one integer segment sum adds them all (`_count_slots`), one float
        segment sum the confidences of the calibration bins. Every op counts: this runs in each
        of Keras's train and test steps.
        """
        y_pred = ops.convert_to_tensor(y_pred)
        if self.num_classes is None:
            self._build_counts(1 if len(y_pred.shape) == 1 else y_pred.shape[-1])
        if self.multi_label:
            slots, valid, bins, confidence = self._multilabel_slots(
                ops.convert_to_tensor(y_true), y_pred
            )
        else:
            slots, valid, bins, confidence = self._slots(ops.convert_to_tensor(y_true), y_pred)
        discard = self._sections()["discard"]
        slots = ops.where(valid[:, None], slots, discard)
        self.histogram.assign_add(_count_slots(ops.reshape(slots, (-1,)), discard + 1))
        weights = ops.where(valid[:, None], confidence, 0.0)
        sums = ops.segment_sum(
            ops.reshape(weights, (-1,)),
            ops.reshape(bins, (-1,)),
            num_segments=calibration_lib.DEFAULT_NUM_BINS,
        )
        self.confidence_sums.assign_add(ops.cast(sums, _sum_dtype()))

    def _slots(self, y_true, y_pred):
        """Single-label: ``(slots [b, C + 3], valid [b], bins [b, 1], confidence [b, 1])``."""
        sections = self._sections()
        scores, predicted = self._scores(y_pred)
        ids = self._class_ids(y_true)
        known_class = ops.logical_and(ids >= 0, ids < self.num_classes)
        valid = ops.logical_and(ops.all(ops.isfinite(scores), axis=1), known_class)
        ids = ops.where(valid, ids, 0)
        # As `calibration.confidence_and_correct`: two classes, the positive-class score and
        # whether the example is positive; more, the predicted class's score and whether right.
        if self.num_classes == 2:
            confidence, correct = scores[:, 1], ids == 1
        else:
            confidence = ops.take_along_axis(scores, predicted[:, None], axis=1)[:, 0]
            correct = predicted == ids
        confidence = ops.where(valid, confidence, 0.0)
        bins = self._calibration_bin(confidence)
        columns = [
            (ids * self.num_classes + predicted)[:, None],
            self._buckets(scores) + ops.take(ops.convert_to_tensor(self._bucket_offsets()), ids, 0),
            (bins + sections["bin_count"])[:, None],
            ops.where(correct, bins + sections["bin_correct"], sections["spare"])[:, None],
        ]
        return ops.concatenate(columns, axis=1), valid, bins[:, None], confidence[:, None]

    def _multilabel_slots(self, y_true, y_pred):
        """Multi-label: ``(slots [b, 4K + 1], valid [b], bins [b, K], confidence [b, K])``."""
        sections = self._sections()
        scores = ops.cast(y_pred, "float32")
        if self.from_logits:
            scores = ops.sigmoid(scores)
        labels = ops.cast(ops.reshape(y_true, ops.shape(scores)), "float32")
        valid = ops.logical_and(
            ops.all(ops.isfinite(scores), axis=1),
            ops.all(ops.logical_or(labels == 0, labels == 1), axis=1),
        )
        actual = ops.cast(labels == 1, "int32")
        predicted = ops.cast(scores >= 0.5, "int32")
        label = np.arange(self.num_classes, dtype=np.int32)[None, :]
        starts = ops.convert_to_tensor((self.thresholds.size + 1) * label)
        label = ops.convert_to_tensor(label)
        own = ops.where(actual == 1, sections["own"], sections["other"])
        confidence = ops.where(valid[:, None], scores, 0.0)
        bins = self._calibration_bin(confidence)
        exact = ops.all(actual == predicted, axis=1)
        columns = [
            4 * label + 2 * actual + predicted,  # [[tn, fp], [fn, tp]] of each label
            self._buckets(scores) + own + starts,
            bins + sections["bin_count"],
            ops.where(actual == 1, bins + sections["bin_correct"], sections["spare"]),
            ops.where(exact, sections["exact"], sections["spare"])[:, None],
        ]
        return ops.concatenate(columns, axis=1), valid, bins, confidence

    def result(self):
        """Nothing for Keras's logs: the counts are read with `counts()`."""
        return {}

    def counts(self):
        """The state as a `counting.ClassificationCounts` (`counting.MultiLabelCounts`,
        multi-label) with threshold-grid AP, or None before any batch was counted.
        """
        if self.num_classes is None:
            return None
        histogram = ops.convert_to_numpy(self.histogram).astype(np.int64)
        at = self._sections()
        buckets = (self.num_classes, self.thresholds.size + 1)
        own = histogram[at["own"] : at["other"]].reshape(buckets)
        every = own + histogram[at["other"] : at["bin_count"]].reshape(buckets)
        tp, fp = counts_lib.threshold_counts_from_histograms(every, own)
        calibration = (
            histogram[at["bin_count"] : at["bin_correct"]],
            ops.convert_to_numpy(self.confidence_sums).astype(np.float64),
            histogram[at["bin_correct"] : at["spare"]],
        )
        invalid = histogram[at["discard"]] // self._entries_per_row()
        decisions = histogram[at["decisions"] : at["own"]]
        if self.multi_label:
            result = counts_lib.MultiLabelCounts(
                self.num_classes, self.thresholds, keep_scores=False
            )
            matrices = decisions.reshape(self.num_classes, 2, 2)
            result.add(matrices, tp, fp, histogram[at["exact"]], invalid, calibration)
            return result
        result = counts_lib.ClassificationCounts(
            self.num_classes, self.thresholds, keep_scores=False
        )
        confusion = decisions.reshape(self.num_classes, self.num_classes)
        result.add(confusion, tp, fp, invalid, calibration)
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            thresholds=[float(t) for t in self.thresholds],
            from_logits=self.from_logits,
            output_width=self.output_width,
            multi_label=self.multi_label,
        )
        return config

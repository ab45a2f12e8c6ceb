"""Label formats and model outputs, turned into class ids and per-class scores. Pure NumPy.

Keras classifiers come with three label formats and two output conventions:

- labels: ``"sparse"`` integer ids (shape ``[n]`` or ``[n, 1]``), ``"one_hot"`` rows
  (``[n, C]``), or ``"binary"`` 0/1 for a single sigmoid unit; multi-label tasks have
  ``"multi_hot"`` rows (``[n, K]``, any number of labels set), each label its own binary
  problem (`multilabel_scores`);
- outputs: probabilities, or logits (turned into probabilities with a sigmoid or softmax).

Everything downstream sees ``C >= 2`` classes: a single sigmoid unit ``p`` becomes the two
class scores ``[1 - p, p]`` and predicts class 1 exactly when ``p >= 0.5``.
"""

import numpy as np

from tb_metricsdiag.core._blocks import BLOCK as _BLOCK
from tb_metricsdiag.core._blocks import ids_in_range as _ids_in_range
from tb_metricsdiag.core._blocks import is_complement as _is_complement

SPARSE = "sparse"
ONE_HOT = "one_hot"
BINARY = "binary"
MULTI_HOT = "multi_hot"  # multi-label: [n, K] rows of 0/1, any number of labels set


def default_class_names(num_classes):
    """The names of classes given none: ``"0"``..``"C-1"``.

    >>> default_class_names(3)
    ['0', '1', '2']
    """
    return [str(i) for i in range(num_classes)]


def names_or_default(names, num_classes):
    """``names`` as strings when it is a list of one name per class, else
    `default_class_names` (what a reader does with names it cannot use).
    """
    if isinstance(names, (list, tuple)) and len(names) == num_classes:
        return [str(name) for name in names]
    return default_class_names(num_classes)


def default_class(num_classes, multi_label=False):
    """The class shown first where one class is picked (a PR curve): the positive class 1 of
    a binary task, else class 0 (the first label of a multi-label task).

    >>> default_class(2), default_class(10), default_class(2, multi_label=True)
    (1, 0, 0)
    """
    return 1 if num_classes == 2 and not multi_label else 0


def num_classes_from_output_width(width):
    """Number of classes a model with ``width`` output units predicts (1 unit: binary)."""
    width = int(width)
    if width < 1:
        raise ValueError("the model has no output units")
    return 2 if width == 1 else width


def detect_label_format(labels, output_width):
    """Which of the three label formats ``labels`` are in, for a model of ``output_width``.
    Only the shape is read (an array, a list, or a tensor on any device).
    """
    shape = tuple(np.shape(labels))
    if len(shape) == 2 and shape[1] == output_width and output_width > 1:
        return ONE_HOT
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return BINARY if output_width == 1 else SPARSE
    raise ValueError(
        "labels of shape %s do not fit a model with %d output unit(s): expected integer class"
        " ids [n], one-hot rows [n, %d], or 0/1 for a single sigmoid unit"
        % (shape, output_width, output_width)
    )


def class_ids(labels, label_format, num_classes):
    """Integer class ids ``[n]`` from labels in ``label_format``.

    Raises ValueError for labels that are not whole numbers in ``[0, num_classes)``, NaN, or
    one-hot rows with no maximum (all zero).
    """
    labels = np.asarray(labels)
    if (
        labels.dtype == object
        or not np.issubdtype(labels.dtype, np.number)
        and labels.dtype != bool
    ):
        raise ValueError("labels must be numeric, got dtype %s" % labels.dtype)
    whole = labels.dtype.kind in "biu"  # integers and bools: finite whole numbers already
    if labels.size and not whole and not np.all(np.isfinite(labels)):
        raise ValueError("labels contain NaN or infinite values")
    if label_format == ONE_HOT:
        if labels.size and np.any(labels.max(axis=1) <= 0):
            raise ValueError("one-hot labels contain a row with no positive entry")
        return np.argmax(labels, axis=1).astype(np.int64)
    flat = labels.reshape(-1)
    ids = flat.astype(np.int64, copy=False)
    if flat.size and not whole and np.any(ids != flat):
        raise ValueError(
            "labels must be whole class ids; found %r (for a single sigmoid unit use 0/1)"
            % (flat[ids != flat][0],)
        )
    if ids.size and not _ids_in_range(ids, num_classes):
        raise ValueError(
            "labels must be class ids in [0, %d); found values from %d to %d"
            % (num_classes, ids.min(), ids.max())
        )
    return ids


def _sigmoid(x):
    # Split by sign so that exp never overflows.
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _softmax(x):
    shifted = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=1, keepdims=True)


def scores_and_predictions(outputs, from_logits, two_columns=None):
    """Per-class scores ``[n, C]`` and predicted ids ``[n]`` from raw model outputs.

    The dtype of ``outputs`` is kept (float32 from Keras), so a score compared with a
    threshold is the number the model produced. Rows with NaN stay NaN; counting skips them.

    Args:
      outputs: ``[n, 1]`` / ``[n]`` (single sigmoid unit) or ``[n, C]``.
      from_logits: whether ``outputs`` are logits (sigmoid / softmax is applied here).
      two_columns: `two_column_scores` of these very ``outputs`` (two columns), or None:
        probabilities' predicted ids are its own, not found again.

    Returns:
      ``(scores, predicted)``: a single unit ``p`` gives the scores ``[1 - p, p]`` and predicts
      class 1 when ``p >= 0.5``; ``C`` units give their own scores and predict the arg-max.
      Two classes' predicted ids are uint8, more classes' int64.

    Raises:
      ValueError: ``outputs`` is not of shape ``[n]``, ``[n, 1]`` or ``[n, C]``.

    >>> scores, predicted = scores_and_predictions(np.array([0.2, 0.5, 0.9]), from_logits=False)
    >>> scores[:, 1], predicted
    (array([0.2, 0.5, 0.9]), array([0, 1, 1], dtype=uint8))
    """
    outputs = np.asarray(outputs)
    if not np.issubdtype(outputs.dtype, np.floating):
        outputs = outputs.astype(np.float32)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.ndim != 2:
        raise ValueError("model outputs must have shape [n, C], got %s" % (outputs.shape,))
    if outputs.shape[1] == 1:
        p = outputs[:, 0]
        if from_logits:
            p = _sigmoid(p)
        scores = np.stack([1 - p, p], axis=1)
        with np.errstate(invalid="ignore"):
            predicted = (p >= 0.5).view(np.uint8)
        return scores, predicted
    if from_logits:
        scores = _softmax(outputs)
        return scores, _row_argmax(scores)
    if two_columns is not None:
        return outputs, two_columns.predicted
    return outputs, _row_argmax(outputs)


def _row_argmax(scores):
    """The first largest score's column of each row ``[n]``: int64, or uint8 for two columns
    (a binary model's ids, 1 byte each). Rows with a NaN keep the arg-max of
    ``nan_to_num(nan=-inf)``; counting skips them as invalid anyway.
    """
    if scores.shape[1] == 2:
        return _two_column_argmax(scores)
    if scores.size and np.isnan(scores.min()):
        return _argmax_nan_lowest(scores).astype(np.int64)
    return np.argmax(scores, axis=1).astype(np.int64)


def _argmax_nan_lowest(scores):
    """``np.argmax`` along rows with each NaN taken as -inf (argmax alone would take a NaN
    for the maximum).
    """
    return np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)


def _two_column_argmax(scores):
    """`_row_argmax` of two columns: column 1 where ``s1 > s0`` (ties go to column 0, the first
    maximum), one comparison per row instead of a reduction along rows of two. Block by block:
    a block's NaN check reads it from the cache, and only a block with a NaN is redone.
    """
    predicted = np.empty(scores.shape[0], dtype=bool)
    for begin in range(0, scores.shape[0], _BLOCK):
        block = scores[begin : begin + _BLOCK]
        out = predicted[begin : begin + _BLOCK]
        np.greater(block[:, 1], block[:, 0], out=out)
        if np.isnan(block.min()):  # a NaN loses no comparison, but is -inf to the arg-max
            out[:] = _argmax_nan_lowest(block)
    return predicted.view(np.uint8)


def _row_sums(values):
    """The sum of each row of ``values`` ``[n, C]``: a matrix-vector product (BLAS), many times
    faster than NumPy's reduction along short rows, in float32 for float32 and float16 values
    (rounding error at most ``C`` float32 epsilons, 6e-5 at 1,000 classes), else float64.
    """
    dtype = np.float64 if values.dtype == np.float64 else np.float32
    values = values.astype(dtype, copy=False)
    if values.shape[1] == 2:  # one addition beats a product of width 2
        return values[:, 0] + values[:, 1]
    return values @ np.ones(values.shape[1], dtype=dtype)


def multi_hot_rows(labels):
    """How many rows of ``[n, C]`` 0/1 labels do not have exactly one label set: one-hot rows
    have exactly one; a multi-label task's rows may have any number. Labels of other values
    (soft, label-smoothed targets) are no multi-hot rows: 0.

    >>> multi_hot_rows([[1, 0], [1, 1], [0, 0]]), multi_hot_rows([[0.9, 0.1], [0.1, 0.9]])
    (2, 0)
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] < 2:
        return 0
    if labels.dtype != bool and not (
        np.issubdtype(labels.dtype, np.number) and np.isin(labels, (0, 1)).all()
    ):
        return 0
    return int(np.count_nonzero(np.count_nonzero(labels, axis=1) != 1))


def looks_multi_hot(labels, output_width):
    """Whether ``labels`` are a multi-label model's: one 0/1 column per output unit (more than
    one) and some row setting more or fewer than one label (`multi_hot_rows`).
    """
    shape = np.shape(labels)
    return (
        output_width > 1
        and len(shape) == 2
        and shape[1] == output_width
        and multi_hot_rows(labels) > 0
    )


def multilabel_scores(outputs, from_logits):
    """Per-label probabilities ``[n, K]`` of a multi-label model's outputs (a sigmoid each when
    ``from_logits``), in their own float dtype. A label is predicted when its probability is
    at least 0.5 (`counting.MultiLabelCounts`).
    """
    outputs = np.asarray(outputs)
    if not np.issubdtype(outputs.dtype, np.floating):
        outputs = outputs.astype(np.float32)
    if outputs.ndim != 2:
        raise ValueError("multi-label outputs must have shape [n, K], got %s" % (outputs.shape,))
    return _sigmoid(outputs) if from_logits else outputs


def looks_like_logits(outputs, row_sum_tolerance=1e-3, multi_label=False, two_columns=None):
    """Whether raw model ``outputs`` can only be logits, not probabilities.

    They are logits when a finite value lies outside [0, 1], or, for ``C > 1`` outputs per row
    of a single-label model, a row of finite values does not sum to 1 within
    ``row_sum_tolerance`` (softmax rows do; independent sigmoids of ``multi_label`` need not).
    Outputs with no finite value are taken as probabilities (nothing shows otherwise).
    ``two_columns``: `two_column_scores` of these very outputs with this tolerance (a
    single-label model's two columns), which has found all this already.
    """
    if two_columns is not None:
        if two_columns.finite_low is not None and not (
            0 <= two_columns.finite_low and two_columns.finite_high <= 1
        ):
            return True
        return two_columns.rows_off_one
    outputs = np.asarray(outputs)
    if not np.issubdtype(outputs.dtype, np.floating):
        outputs = outputs.astype(np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if not outputs.size:
        return False
    # The minimum and the maximum are finite exactly when every value is: then two fast
    # passes in the outputs' own dtype decide the range, and every row is summed.
    low, high = outputs.min(), outputs.max()
    if np.isfinite(low) and np.isfinite(high):
        if low < 0 or high > 1:
            return True
        rows = outputs
    else:
        finite = outputs[np.isfinite(outputs)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            return True
        rows = None
    if multi_label or outputs.ndim != 2 or outputs.shape[1] < 2:
        return False
    if rows is None:
        rows = outputs[np.isfinite(outputs).all(axis=1)]
    return _some_row_sum_off_one(rows, row_sum_tolerance)


def _some_row_sum_off_one(rows, tolerance):
    """Whether a row's sum differs from 1 by more than ``tolerance``: block by block, so the
    sums stay in the CPU cache, stopping at the first block that has one.
    """
    step = max(1, _BLOCK // max(1, rows.shape[1]))
    for begin in range(0, rows.shape[0], step):
        sums = _row_sums(rows[begin : begin + step])
        sums -= 1
        if np.abs(sums, out=sums).max() > tolerance:
            return True
    return False


# The row sums of float32 complements ``[1 - p, p]``, p in [0, 1], are within this of 1: the
# float32 ``1 - p`` is exact for p >= 0.5 and within 2^-25 below, and the float32 sum rounds
# to 1 or a neighbour of 1 (2^-24 away at most).
_COMPLEMENT_ROW_SUM_ERROR = 2.0**-24


class TwoColumnScores:
    """What one pass over a single-label model's two columns of float scores ``[n, 2]`` finds
    (`two_column_scores`), for the checks and counts that would each read them again.

    Attributes:
      all_finite: whether every score is finite.
      finite_low, finite_high: the smallest and largest finite score (None when none is).
      rows_off_one: whether a row of finite scores sums to 1 off by more than the tolerance
        it was found with (`looks_like_logits`).
      predicted: `_row_argmax` of the scores (uint8).
      complementary: float32 scores only: whether every row's first score is the float32
        ``1 - s`` of its second ``s`` (a sigmoid's ``[1 - p, p]``); False for other dtypes.
    """

    __slots__ = (
        "all_finite",
        "finite_low",
        "finite_high",
        "rows_off_one",
        "predicted",
        "complementary",
    )

    def __init__(self, all_finite, finite_low, finite_high, rows_off_one, predicted, complementary):
        self.all_finite = all_finite
        self.finite_low = finite_low
        self.finite_high = finite_high
        self.rows_off_one = rows_off_one
        self.predicted = predicted
        self.complementary = complementary


def two_column_scores(scores, row_sum_tolerance):
    """`TwoColumnScores` of float ``scores`` ``[n, 2]`` (a single-label model's), block by
    block: each block's two columns are copied apart once (comparisons of strided columns
    run several times slower than of contiguous ones), and every check reads them from the
    cache. A block with a non-finite score takes the row-by-row paths of `looks_like_logits`
    and `_row_argmax`; the row sums of complementary float32 scores in [0, 1] are not added
    (`_COMPLEMENT_ROW_SUM_ERROR`).
    """
    n = scores.shape[0]
    predicted = np.empty(n, dtype=bool)
    size = min(n, _BLOCK)
    first, second = np.empty(size, scores.dtype), np.empty(size, scores.dtype)
    complement = np.empty(size, scores.dtype)
    complementary = scores.dtype == np.float32
    sums_needed = not (complementary and row_sum_tolerance >= _COMPLEMENT_ROW_SUM_ERROR)
    all_finite, rows_off_one, lows, highs = True, False, [], []
    for begin in range(0, n, _BLOCK):
        block = scores[begin : begin + _BLOCK]
        m = block.shape[0]
        s0, s1 = first[:m], second[:m]
        np.copyto(s0, block[:, 0])
        np.copyto(s1, block[:, 1])
        out = predicted[begin : begin + m]
        np.greater(s1, s0, out=out)
        low, high = block.min(), block.max()
        finite = bool(np.isfinite(low) and np.isfinite(high))
        if not finite:
            all_finite = False
            if np.isnan(low) or np.isnan(high):  # a NaN loses no comparison, is -inf to arg-max
                out[:] = _argmax_nan_lowest(block)
            values = block[np.isfinite(block)]
            low, high = (values.min(), values.max()) if values.size else (None, None)
        if low is not None:
            lows.append(low)
            highs.append(high)
        if complementary:
            complementary = _is_complement(s0, s1, complement[:m])
        if rows_off_one or (
            not sums_needed and complementary and finite and 0 <= low and high <= 1
        ):
            continue
        rows = block if finite else block[np.isfinite(block).all(axis=1)]
        rows_off_one = _some_row_sum_off_one(rows, row_sum_tolerance)
    return TwoColumnScores(
        all_finite,
        min(lows) if lows else None,
        max(highs) if highs else None,
        rows_off_one,
        predicted.view(np.uint8),
        complementary,
    )

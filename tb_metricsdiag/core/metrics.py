"""Classification metrics from counts: one pure NumPy function per metric.

Every ratio whose denominator is zero is undefined and returned as NaN, never silently 0 or 1;
the JSON layers turn NaN into ``null``. This matches scikit-learn's ``zero_division=np.nan``.
"""

import math

import numpy as np


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def precision(tp, fp):
    """TP / (TP + FP): of the examples predicted positive, the share that is positive.

    Undefined (NaN) when nothing is predicted positive.

    >>> precision([3, 0], [1, 0])
    array([0.75,  nan])
    """
    return _ratio(tp, np.add(tp, fp))


def recall(tp, fn):
    """TP / (TP + FN): of the positive examples, the share found. NaN when there is none."""
    return _ratio(tp, np.add(tp, fn))


def f1_score(tp, fp, fn):
    """2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall.

    Written on counts so that it stays defined (0) when precision is undefined but positives
    were missed, as scikit-learn does since 1.3. NaN only when TP + FP + FN = 0.
    """
    tp = np.asarray(tp, dtype=np.float64)
    return _ratio(2 * tp, 2 * tp + np.add(fp, fn))


class ConfusionTotals:
    """The O(C) reduction of a ``[C, C]`` confusion matrix: its ``diagonal`` (examples of each
    class predicted as it), ``actual`` (row sums: each class's examples, its support) and
    ``predicted`` (column sums: the examples predicted as each class), ``[C]`` int64 arrays.

    Everything that counts a class against the rest follows from them: accuracy, each class's
    TP (the diagonal), FP (predicted - TP) and FN (actual - TP), hence precision, recall, F1,
    balanced accuracy and the majority baseline. The metric functions of this module take
    either form; which cell holds the errors (confused pairs, the matrix itself) needs the
    matrix. A run's history keeps these per epoch: 3 C numbers where the matrix holds C².
    """

    __slots__ = ("diagonal", "actual", "predicted")

    def __init__(self, diagonal, actual, predicted):
        self.diagonal = np.asarray(diagonal, dtype=np.int64)
        self.actual = np.asarray(actual, dtype=np.int64)
        self.predicted = np.asarray(predicted, dtype=np.int64)
        if not self.diagonal.ndim == 1 or not (
            self.diagonal.shape == self.actual.shape == self.predicted.shape
        ):
            raise ValueError(
                "confusion totals need three [C] arrays, got shapes %s, %s and %s"
                % (self.diagonal.shape, self.actual.shape, self.predicted.shape)
            )

    @property
    def num_classes(self):
        return self.diagonal.shape[0]

    @property
    def nbytes(self):
        """Bytes of the three arrays."""
        return self.diagonal.nbytes + self.actual.nbytes + self.predicted.nbytes

    @property
    def total(self):
        """Examples counted."""
        return int(self.actual.sum())

    def __eq__(self, other):
        return isinstance(other, ConfusionTotals) and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in self.__slots__
        )

    def __repr__(self):
        return "ConfusionTotals(diagonal=%r, actual=%r, predicted=%r)" % (
            self.diagonal,
            self.actual,
            self.predicted,
        )


def confusion_totals(confusion):
    """The `ConfusionTotals` of a ``[C, C]`` confusion matrix (row = actual), or ``confusion``
    itself when it already is one.
    """
    if isinstance(confusion, ConfusionTotals):
        return confusion
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError("a confusion matrix must have shape [C, C], got %s" % (confusion.shape,))
    return ConfusionTotals(np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0))


def stacked_confusion_totals(matrices):
    """`ConfusionTotals` of each matrix of an ``[E, C, C]`` stack, in one pass over it."""
    matrices = np.asarray(matrices)
    diagonals = np.diagonal(matrices, axis1=1, axis2=2)
    actual, predicted = matrices.sum(axis=2), matrices.sum(axis=1)
    return [ConfusionTotals(*parts) for parts in zip(diagonals, actual, predicted)]


def _class_decisions(confusion):
    """``(tp, fp, fn)`` ``[C]`` of each class of a ``[C, C]`` confusion matrix (or its
    `ConfusionTotals`), or of each label of ``[K, 2, 2]`` multi-label counts.
    """
    if not isinstance(confusion, ConfusionTotals) and np.ndim(confusion) == 3:
        confusion = np.asarray(confusion)
        return confusion[:, 1, 1], confusion[:, 0, 1], confusion[:, 1, 0]
    totals = confusion_totals(confusion)
    tp = totals.diagonal
    return tp, totals.predicted - tp, totals.actual - tp


def per_class_metrics(confusion):
    """Precision, recall, F1 and support of each class from a ``[C, C]`` confusion matrix (or
    its `ConfusionTotals`), or
    of each label from multi-label ``[K, 2, 2]`` counts (one ``[[tn, fp], [fn, tp]]`` per label,
    `counting.multilabel_confusion_matrix`).

    Returns a dict of ``[C]`` arrays: ``precision``, ``recall``, ``f1`` (float, NaN where
    undefined), ``support`` (int: examples of the actual class, rows with the label set) and
    ``predicted`` (int: examples predicted as the class, rows with the label predicted).
    """
    tp, fp, fn = _class_decisions(confusion)
    support = tp + fn
    return {
        "predicted": tp + fp,
        "precision": precision(tp, fp),
        "recall": recall(tp, fn),
        "f1": f1_score(tp, fp, fn),
        "support": support,
    }


def hamming_loss(matrices):
    """Share of wrong (row, label) decisions of multi-label ``[K, 2, 2]`` counts: the false
    positives and false negatives of every label over rows times labels (scikit-learn's
    ``hamming_loss`` on multi-label data). NaN without rows.

    >>> hamming_loss([[[3, 1], [0, 4]], [[5, 0], [2, 1]]])
    0.1875
    """
    matrices = np.asarray(matrices)
    wrong = matrices[:, 0, 1].sum() + matrices[:, 1, 0].sum()
    return float(_ratio(wrong, matrices.sum()))


def pooled_label_confusion(matrices):
    """The ``[2, 2]`` sum of multi-label ``[K, 2, 2]`` counts over labels: every (row, label)
    decision as one binary example, whose accuracy is ``1 - hamming_loss``.
    """
    return np.asarray(matrices).sum(axis=0)


def accuracy(confusion):
    """Share of examples on the diagonal of a ``[C, C]`` confusion matrix (or its
    `ConfusionTotals`). NaN for an empty matrix.

    >>> accuracy([[8, 2], [1, 9]])
    0.85
    """
    totals = confusion_totals(confusion)
    return float(_ratio(totals.diagonal.sum(), totals.actual.sum()))


def accuracies(confusions):
    """`accuracy` of each confusion matrix (or `ConfusionTotals`) of a sequence, as a float
    array.

    In one vectorized pass when they have one shape: the diagnostics run this over every epoch
    of a run, where one `accuracy` call per matrix was slow (docs/benchmarks.md).
    """
    confusions = [confusion_totals(confusion) for confusion in confusions]
    try:
        diagonals = np.stack([totals.diagonal for totals in confusions])
        actual = np.stack([totals.actual for totals in confusions])
    except ValueError:  # none, or of different sizes
        return np.array([accuracy(totals) for totals in confusions], dtype=np.float64)
    return _ratio(diagonals.sum(axis=1), actual.sum(axis=1))


def balanced_accuracy(confusion):
    """Mean recall over the classes that occur (scikit-learn's ``balanced_accuracy_score``) of
    a ``[C, C]`` confusion matrix (or its `ConfusionTotals`).

    Classes without examples are left out of the mean, as scikit-learn does; NaN when no class
    occurs.

    >>> balanced_accuracy([[90, 0], [10, 0]])  # accuracy 0.9, but class 1 is never found
    0.5
    """
    totals = confusion_totals(confusion)
    per_class = recall(totals.diagonal, totals.actual - totals.diagonal)
    occurring = per_class[~np.isnan(per_class)]
    return float(occurring.mean()) if occurring.size else float("nan")


def majority_baseline_accuracy(confusion):
    """Accuracy of always predicting the most frequent actual class (``DummyClassifier``), from
    a ``[C, C]`` confusion matrix (or its `ConfusionTotals`).

    >>> majority_baseline_accuracy([[90, 0], [10, 0]])
    0.9
    """
    support = confusion_totals(confusion).actual
    return float(_ratio(support.max() if support.size else 0, support.sum()))


def macro_average(per_class):
    """Unweighted mean of per-class values over the classes where the value is defined (not
    NaN), as scikit-learn averages with ``average="macro", zero_division=np.nan``; NaN when it
    is defined for none.
    """
    per_class = np.asarray(per_class, dtype=np.float64)
    defined = per_class[~np.isnan(per_class)]
    return float(defined.mean()) if defined.size else float("nan")


def macro_f1(confusion):
    """`macro_average` of the per-class F1 (scikit-learn's
    ``f1_score(average="macro", zero_division=np.nan)``).

    >>> macro_f1([[90, 0], [10, 0]])  # class 0: F1 = 180 / 190; class 1: F1 = 0
    0.47368421052631576
    """
    return macro_average(per_class_metrics(confusion)["f1"])


# The standard normal quantile of a two-sided 95% interval, Phi^-1(0.975).
Z_95 = 1.959963984540054


def wilson_interval(successes, trials, z=Z_95):
    """Wilson score interval of a proportion ``successes / trials``: ``(lower, upper)`` arrays.

    With ``p = successes / trials``, ``n = trials``::

        centre    = (p + z²/(2n)) / (1 + z²/n)
        halfwidth = z / (1 + z²/n) · sqrt(p(1 − p)/n + z²/(4n²))
        interval  = [centre − halfwidth, centre + halfwidth]

    ``z`` defaults to the 95% two-sided quantile. Unlike the normal ("Wald") interval it stays
    inside [0, 1] and does not collapse to a point at ``p = 0`` or ``p = 1``: with no success
    the lower end is exactly 0, with every trial a success the upper end is exactly 1 (both
    clipped to those values against rounding). NaN for both ends when ``trials`` is 0: the
    proportion is undefined. Equal to statsmodels' ``proportion_confint(method="wilson")``.
    """
    successes = np.asarray(successes, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    p = _ratio(successes, trials)
    n = np.where(trials > 0, trials, np.nan)
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    halfwidth = z / denominator * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lower = np.where(successes == 0, 0.0, np.clip(centre - halfwidth, 0.0, 1.0))
    upper = np.where(successes == trials, 1.0, np.clip(centre + halfwidth, 0.0, 1.0))
    undefined = np.isnan(p)
    return np.where(undefined, np.nan, lower), np.where(undefined, np.nan, upper)


def bonferroni_z(alpha, comparisons):
    """The normal quantile of two-sided intervals that hold together with probability at least
    ``1 - alpha`` over ``comparisons`` of them (Bonferroni: each at level ``alpha /
    comparisons``), ``Phi^-1(1 - alpha / (2 comparisons))``; `Z_95` for one at 0.05.

    Solved by bisection of ``erfc(z / sqrt(2)) = alpha / comparisons`` (the two-sided tail),
    to the last bit of a float.

    >>> round(bonferroni_z(0.05, 1), 4), round(bonferroni_z(0.05, 100), 4)
    (1.96, 3.4808)
    """
    if not 0 < alpha < 1 or comparisons < 1:
        raise ValueError(
            "need 0 < alpha < 1 and at least one comparison, got %r and %r" % (alpha, comparisons)
        )
    tail = alpha / comparisons
    low, high = 0.0, 40.0  # erfc(40 / sqrt(2)) underflows to 0: below any tail
    while True:
        middle = (low + high) / 2
        if middle in (low, high):
            return middle
        if math.erfc(middle / math.sqrt(2)) > tail:
            low = middle
        else:
            high = middle


def error_reduction_vs_baseline(confusion):
    """Share of the majority baseline's errors that the classifier avoids:
    ``(accuracy - baseline) / (1 - baseline)``; 0 when the baseline makes no error.
    """
    baseline = majority_baseline_accuracy(confusion)
    if not baseline < 1:
        return 0.0
    return (accuracy(confusion) - baseline) / (1.0 - baseline)


NORMALIZATIONS = ("true", "pred", "all")


def normalize_confusion(confusion, by):
    """Confusion matrix as shares: ``by="true"`` divides each row by the actual-class total
    (cells are recall-like), ``"pred"`` each column by the predicted total (precision-like),
    ``"all"`` by the grand total. Rows or columns with no examples are NaN.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if by == "true":
        return _ratio(confusion, confusion.sum(axis=1, keepdims=True))
    if by == "pred":
        return _ratio(confusion, confusion.sum(axis=0, keepdims=True))
    if by == "all":
        return _ratio(confusion, confusion.sum())
    raise ValueError("normalization must be one of %s, got %r" % (NORMALIZATIONS, by))


def binary_counts(tp, fp, positives, total):
    """All four one-vs-rest counts from TP and FP at each threshold and the class totals.

    Returns a dict of int arrays ``tp``, ``fp``, ``tn``, ``fn`` shaped like ``tp``.
    """
    tp = np.asarray(tp, dtype=np.int64)
    fp = np.asarray(fp, dtype=np.int64)
    return {"tp": tp, "fp": fp, "tn": (total - positives) - fp, "fn": positives - tp}


def pr_curve(tp, fp, positives):
    """Precision and recall at each threshold from one class's TP/FP counts.

    Precision is NaN at thresholds that no example reaches (0/0); recall is NaN when the class
    has no positive example.
    """
    return precision(tp, fp), recall(tp, np.asarray(positives) - np.asarray(tp))


def roc_curve(tp, fp, positives, negatives):
    """False and true positive rates at each threshold from one class's TP/FP counts.

    ``fpr = fp / negatives`` and ``tpr = tp / positives``; NaN when the class has no negative
    (fpr) or no positive (tpr) example.
    """
    return _ratio(fp, np.full(np.shape(fp), negatives)), _ratio(
        tp, np.full(np.shape(tp), positives)
    )


def roc_auc_from_counts(tp, fp, positives, negatives):
    """ROC AUC of every class from threshold counts ``[C, T]`` and class totals ``[C]``.

    The trapezoidal area under the points of the stored thresholds, closed by (0, 0) above the
    last threshold and (1, 1) below the first: it treats the examples between two thresholds
    as tied, so it equals the exact AUC of the scores rounded down to the grid. NaN for a class
    with no positive or no negative example.
    """
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    positives = np.asarray(positives, dtype=np.float64)[:, None]
    negatives = np.asarray(negatives, dtype=np.float64)[:, None]
    ones, zeros = np.ones((tp.shape[0], 1)), np.zeros((tp.shape[0], 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.concatenate([ones, tp / positives, zeros], axis=1)
        fpr = np.concatenate([ones, fp / negatives, zeros], axis=1)
    # Thresholds ascend, so the rates descend: the area is minus the signed trapezoid sum.
    area = -np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    return np.where((positives[:, 0] > 0) & (negatives[:, 0] > 0), area, np.nan)


def per_class_intervals(confusion, z=Z_95):
    """Wilson intervals (`wilson_interval`) of each class's precision and recall from a
    ``[C, C]`` confusion matrix (or ``[K, 2, 2]`` multi-label counts, per label): precision is
    TP of the predicted total, recall TP of the actual total (the support).

    Returns a dict ``{"precision": (lower, upper), "recall": (lower, upper)}`` of ``[C]``
    arrays, NaN where the proportion is undefined.
    """
    tp, fp, fn = _class_decisions(confusion)
    return {
        "precision": wilson_interval(tp, tp + fp, z),
        "recall": wilson_interval(tp, tp + fn, z),
    }


def nonzero_cells(confusion, limit=None):
    """The nonzero cells of a ``[C, C]`` confusion matrix in row-major order: ``(rows, cols,
    counts, truncated)``, int64 arrays and a bool.

    With ``limit``, at most that many: the largest counts, ties by row-major position (the
    first kept), listed in row-major order all the same; ``truncated`` says whether any was
    left out.
    """
    confusion = np.asarray(confusion)
    positions = np.flatnonzero(confusion)
    counts = confusion.reshape(-1)[positions].astype(np.int64)
    truncated = limit is not None and positions.size > limit
    if truncated:
        # A stable sort of the negated counts keeps the earlier of equal ones first.
        kept = np.sort(np.argsort(-counts, kind="stable")[:limit])
        positions, counts = positions[kept], counts[kept]
    rows, cols = np.divmod(positions, confusion.shape[1])
    return rows.astype(np.int64), cols.astype(np.int64), counts, bool(truncated)


def confused_pairs(confusion, limit=None):
    """The most confused pairs of a ``[C, C]`` confusion matrix: the cells off the diagonal
    with a count above 0, largest count first, ties by (actual, predicted) ascending, at most
    ``limit`` of them.

    Returns ``(actual, predicted, count, share)`` arrays: ``share`` is the count over the
    actual class's support (its row sum), the share of that class's examples taken for the
    predicted one; never undefined, since a counted cell's row holds at least that count.
    """
    confusion = np.asarray(confusion)
    rows, cols, counts, _ = nonzero_cells(confusion)
    off = rows != cols
    rows, cols, counts = rows[off], cols[off], counts[off]
    order = np.argsort(-counts, kind="stable")[:limit]  # row-major already: ties stay in order
    rows, cols, counts = rows[order], cols[order], counts[order]
    support = confusion.sum(axis=1)
    return rows, cols, counts, counts / support[rows]

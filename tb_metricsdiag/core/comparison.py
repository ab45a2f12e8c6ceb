"""Comparing two evaluations of one task (two epochs, or two runs): what got better, what worse.

Pure NumPy. "Before" and "after" are confusion matrices over the same classes, in the same
order; every difference is after minus before.
"""

import numpy as np

from tb_metricsdiag.core import metrics

PER_CLASS_METRICS = ("precision", "recall", "f1")


def confusion_difference(before, after):
    """The signed differences of two ``[C, C]`` confusion matrices and which cells improved.

    Returns:
      A dict of ``counts`` (int: after - before), ``true`` (the difference of the
      row-normalised matrices: shares of each actual class; NaN where a class has no example in
      either) and ``improvement`` (+1 where the row-normalised change is for the better, -1
      where for the worse, 0 where unchanged or undefined): more of an actual class on the
      diagonal is better, more of it anywhere else worse.

    Raises:
      ValueError: the matrices differ in shape.
    """
    before, after = np.asarray(before, dtype=np.int64), np.asarray(after, dtype=np.int64)
    if before.shape != after.shape or before.ndim != 2 or before.shape[0] != before.shape[1]:
        raise ValueError(
            "confusion matrices of shapes %s and %s cannot be compared"
            % (before.shape, after.shape)
        )
    shares = metrics.normalize_confusion(after, "true") - metrics.normalize_confusion(
        before, "true"
    )
    sign = np.where(np.eye(before.shape[0], dtype=bool), 1.0, -1.0)
    improvement = np.sign(np.nan_to_num(shares) * sign).astype(np.int64)
    return {"counts": after - before, "true": shares, "improvement": improvement}


def difference_cells(difference, limit=None):
    """The cells of a `confusion_difference` that changed: where the counts differ, or the
    row-normalised shares do (they can at equal counts when a class's support differs, e.g.
    two splits), in row-major order.

    Returns:
      ``(cells, truncated)``: ``cells`` a dict of ``[N]`` arrays ``rows``, ``cols``,
      ``counts``, ``true`` and ``improvement`` (the values of those cells, as in the
      difference); with ``limit``, at most that many, those of the largest count changes (in
      absolute value; ties by row-major position, the first kept), and ``truncated`` says
      whether any was left out.
    """
    counts, improvement = difference["counts"], difference["improvement"]
    changed = (counts != 0) | (improvement != 0)
    # One more than the size of the change, so that a change of shares alone is kept too.
    magnitude = np.where(changed, np.abs(counts) + 1, 0)
    rows, cols, _, truncated = metrics.nonzero_cells(magnitude, limit)
    cells = {"rows": rows, "cols": cols}
    cells.update((key, difference[key][rows, cols]) for key in ("counts", "true", "improvement"))
    return cells, truncated


def per_class_changes(before, after, ap_before=None, ap_after=None):
    """Precision, recall, F1 (and AP where both are given) of each class before and after.

    Returns:
      A dict of ``[C]`` arrays: for each metric ``m`` in `PER_CLASS_METRICS` (and ``ap``),
      ``m`` (after), ``m_before`` and ``m_change`` (after - before, NaN where either is
      undefined); and ``support`` and ``support_before``.
    """
    old, new = metrics.per_class_metrics(before), metrics.per_class_metrics(after)
    changes = {"support": new["support"], "support_before": old["support"]}
    pairs = [(name, old[name], new[name]) for name in PER_CLASS_METRICS]
    if ap_before is not None and ap_after is not None:
        pairs.append(("ap", np.asarray(ap_before, np.float64), np.asarray(ap_after, np.float64)))
    for name, value_before, value_after in pairs:
        changes[name] = value_after
        changes[name + "_before"] = value_before
        changes[name + "_change"] = value_after - value_before
    return changes


def trajectories(matrices):
    """Per-class precision, recall and F1 over a sequence of confusion matrices ``[C, C]``, or
    of their `metrics.ConfusionTotals` (all they need), or of multi-label ``[K, 2, 2]`` counts.

    Returns:
      A dict of ``[E, C]`` float arrays ``precision``, ``recall``, ``f1`` (E matrices; NaN
      where undefined).
    """
    stacked = [metrics.per_class_metrics(matrix) for matrix in matrices]
    return {
        name: np.array([m[name] for m in stacked], dtype=np.float64) for name in PER_CLASS_METRICS
    }


def worst_first(values):
    """Class indices ordered from the lowest latest value to the highest, undefined last."""
    values = np.asarray(values, dtype=np.float64)
    return np.argsort(np.where(np.isnan(values), np.inf, values), kind="stable")

"""The headline figures of one evaluation: the few numbers a sweep of runs is sorted by.

One definition, read by both ends: the writers store them as TensorBoard scalars
(`writing/records.py` `headline_scalars`), so TensorBoard's own Scalars and HParams dashboards
can chart and sort runs by them, and ``/overview`` lists them per run (`backend/overview.py`),
both from the same counts with the functions of `metrics` and `calibration`.
"""

import numpy as np

from tb_metricsdiag.core import calibration, metrics

PER_CLASS_LIMIT = 20
"""Most classes whose recall and precision are written as scalars: above it a chart per class
would bury TensorBoard's Scalars dashboard (and each scalar series costs the server memory)."""


def headline_figures(decisions, calibration_bins=None, exact_matches=None):
    """Accuracy, balanced accuracy, macro F1, ECE and each class's recall and precision.

    Args:
      decisions: a ``[C, C]`` confusion matrix (or its `metrics.ConfusionTotals`), or the
        multi-label ``[K, 2, 2]`` counts (one ``[[tn, fp], [fn, tp]]`` per label).
      calibration_bins: ``(count, confidence_sum, correct)`` of `calibration.calibration_bins`,
        or None (no ``ece``).
      exact_matches: multi-label only: the rows whose whole label set was predicted.

    Returns:
      A dict: ``accuracy`` (multi-label: the subset accuracy, NaN without ``exact_matches``),
      ``balanced_accuracy`` (NaN multi-label: scikit-learn's ``balanced_accuracy_score`` has no
      multi-label form), ``macro_f1`` (over classes or labels), ``ece`` (NaN without bins),
      ``recall`` and ``precision`` (``[C]``, NaN where undefined); every float NaN where
      undefined.

    >>> figures = headline_figures([[8, 2], [2, 8]])
    >>> figures["accuracy"], figures["balanced_accuracy"], figures["recall"].tolist()
    (0.8, 0.8, [0.8, 0.8])
    """
    multilabel = not isinstance(decisions, metrics.ConfusionTotals) and np.ndim(decisions) == 3
    per_class = metrics.per_class_metrics(decisions)
    if multilabel:
        rows = int(np.asarray(decisions)[0].sum()) if len(decisions) else 0
        accuracy = exact_matches / rows if rows and exact_matches is not None else float("nan")
        balanced_accuracy = float("nan")
    else:
        accuracy = metrics.accuracy(decisions)
        balanced_accuracy = metrics.balanced_accuracy(decisions)
    ece = float("nan")
    if calibration_bins is not None:
        ece = calibration.calibration_error(*calibration_bins)
    return {
        "accuracy": accuracy,
        "balanced_accuracy": balanced_accuracy,
        "macro_f1": metrics.macro_average(per_class["f1"]),
        "ece": ece,
        "recall": per_class["recall"],
        "precision": per_class["precision"],
    }


def worst_class(recall):
    """Index of the class with the lowest recall among those that occur (ties: the first), or
    None when no class has a defined recall.

    >>> worst_class([0.9, float("nan"), 0.4, 0.4])
    2
    """
    recall = np.asarray(recall, dtype=np.float64)
    defined = np.flatnonzero(~np.isnan(recall))
    if defined.size == 0:
        return None
    return int(defined[np.argmin(recall[defined])])

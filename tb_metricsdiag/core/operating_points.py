"""Operating points on a precision-recall curve: which threshold to pick for a goal.

Each function takes the per-threshold metrics of one class (thresholds ascending, NaN where a
metric is undefined) and returns the index of the chosen threshold, or None when no threshold
meets the goal. Undefined (NaN) values never qualify.
"""

import numpy as np


def best_f1_index(f1):
    """Index of the threshold with the highest F1.

    Ties go to the highest threshold: among equally good points it flags the fewest examples.

    Parameters
    ----------
    f1 : array-like of shape (n_thresholds,)
        F1 at each ascending threshold; NaN where undefined.

    Returns:
    -------
    index : int or None
        None when F1 is undefined at every threshold.
    """
    f1 = np.asarray(f1, dtype=np.float64)
    defined = ~np.isnan(f1)
    if not defined.any():
        return None
    best = np.max(f1[defined])
    return int(np.flatnonzero(defined & (f1 == best))[-1])


def min_recall_index(recall, min_recall):
    """Index of the highest threshold whose recall is at least ``min_recall``.

    Recall falls as the threshold rises, so this is the most precise point that still finds
    the requested share of positives.

    Parameters
    ----------
    recall : array-like of shape (n_thresholds,)
        Recall at each ascending threshold; NaN where undefined.
    min_recall : float
        The required recall, in [0, 1].

    Returns:
    -------
    index : int or None
        None when no threshold reaches ``min_recall``.
    """
    return _last(np.asarray(recall, dtype=np.float64) >= min_recall)


def min_precision_index(precision, min_precision):
    """Index of the lowest threshold whose precision is at least ``min_precision``.

    The lowest such threshold finds the most positives while keeping the requested precision.

    Parameters
    ----------
    precision : array-like of shape (n_thresholds,)
        Precision at each ascending threshold; NaN where no example reaches the threshold.
    min_precision : float
        The required precision, in [0, 1].

    Returns:
    -------
    index : int or None
        None when no threshold reaches ``min_precision``.
    """
    qualifying = np.flatnonzero(np.asarray(precision, dtype=np.float64) >= min_precision)
    return int(qualifying[0]) if qualifying.size else None


def _last(mask):
    qualifying = np.flatnonzero(mask)
    return int(qualifying[-1]) if qualifying.size else None

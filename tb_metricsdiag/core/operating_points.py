"""Operating points on a precision-recall curve: which threshold to pick for a goal.

Each function takes the per-threshold metrics of one class (thresholds ascending, NaN where a
metric is undefined) and returns the index of the chosen threshold, or None when no threshold
meets the goal. Undefined (NaN) values never qualify.
"""

import math

import numpy as np

DEFAULT_THRESHOLD = 0.5
"""The threshold a classifier's scores are usually cut at: what a chosen threshold is
measured against (the cost at it, the distance from it)."""

THRESHOLD_MAX_DECIMALS = 9
"""Decimals beyond which `format_threshold` writes a threshold near 0 in exponent form."""


def best_f1_index(f1):
    """Index of the threshold with the highest F1.

    Ties go to the highest threshold: among equally good points it flags the fewest examples.

    Args:
      f1: array-like of shape ``(n_thresholds,)``, F1 at each ascending threshold; NaN
        where undefined.

    Returns:
      The index as an int, or None when F1 is undefined at every threshold.

    >>> best_f1_index([0.5, 0.8, 0.8, float("nan")])
    2
    >>> best_f1_index([float("nan")]) is None
    True
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

    Args:
      recall: array-like of shape ``(n_thresholds,)``, recall at each ascending threshold;
        NaN where undefined.
      min_recall: the required recall, in [0, 1].

    Returns:
      The index as an int, or None when no threshold reaches ``min_recall``.

    >>> min_recall_index([1.0, 0.9, 0.6, 0.2], 0.9)
    1
    """
    return _last(np.asarray(recall, dtype=np.float64) >= min_recall)


def min_precision_index(precision, min_precision):
    """Index of the lowest threshold whose precision is at least ``min_precision``.

    The lowest such threshold finds the most positives while keeping the requested precision.

    Args:
      precision: array-like of shape ``(n_thresholds,)``, precision at each ascending
        threshold; NaN where no example reaches the threshold.
      min_precision: the required precision, in [0, 1].

    Returns:
      The index as an int, or None when no threshold reaches ``min_precision``.

    >>> min_precision_index([0.5, 0.7, 0.95, float("nan")], 0.9)
    2
    """
    qualifying = np.flatnonzero(np.asarray(precision, dtype=np.float64) >= min_precision)
    return int(qualifying[0]) if qualifying.size else None


def min_cost_index(fn, fp, fn_cost, fp_cost):
    """Index of the threshold with the lowest expected cost ``fn_cost * FN + fp_cost * FP``.

    Ties go to the highest threshold, as for `best_f1_index`. With calibrated scores the
    optimum lies near ``fp_cost / (fp_cost + fn_cost)``: there a positive's expected cost of
    being missed equals a negative's of being flagged.

    Args:
      fn: false negatives at each ascending threshold.
      fp: false positives at each ascending threshold.
      fn_cost: the cost of one false negative, >= 0.
      fp_cost: the cost of one false positive, >= 0.

    Returns:
      The index, or None when there is no threshold.
    """
    cost = fn_cost * np.asarray(fn, dtype=np.float64) + fp_cost * np.asarray(fp, dtype=np.float64)
    if cost.size == 0:
        return None
    return int(np.flatnonzero(cost == cost.min())[-1])


def nearest_index(thresholds, value):
    """Index of the stored threshold nearest ``value`` (the lower one of two as near)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return int(np.argmin(np.abs(thresholds - value)))


def _last(mask):
    qualifying = np.flatnonzero(mask)
    return int(qualifying[-1]) if qualifying.size else None


def format_threshold(threshold):
    """A threshold as text: 3 decimals, or 3 significant digits of its distance to the nearer of
    0 and 1 where that needs more (``0.000123``, ``0.0227``, ``0.999877``), trailing zeros past
    the third decimal dropped; the default grid is spaced in logit, so ``0.000`` would name a
    dozen stored thresholds. The frontend's ``fmtThreshold`` writes the same text.

    >>> [format_threshold(t) for t in (0.0, 0.5, 0.000123, 0.005, 0.999877, 1e-12)]
    ['0.000', '0.500', '0.000123', '0.005', '0.999877', '1.00e-12']
    """
    threshold = float(threshold)
    distance = min(abs(threshold), abs(1 - threshold))
    if not distance > 0 or not math.isfinite(distance):
        return "%.3f" % threshold
    digits = max(3, 2 - math.floor(math.log10(distance)))
    if digits > THRESHOLD_MAX_DECIMALS and abs(threshold) < 0.5:
        mantissa, exponent = ("%.2e" % threshold).split("e")
        return "%se%d" % (mantissa, int(exponent))
    whole, _, decimals = ("%.*f" % (min(digits, THRESHOLD_MAX_DECIMALS), threshold)).partition(".")
    return whole + "." + decimals.rstrip("0").ljust(3, "0")

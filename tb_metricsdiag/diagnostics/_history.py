"""What the rules read of a `RunHistory`: curves, confusion series, names. Private to the rules."""

import numpy as np

from tb_metricsdiag.core import labels, metrics


def curve(history, key):
    """``(steps, values)`` of a Keras log curve, or None when the run has none."""
    curve = history.curves.get(key)
    if curve is None or len(curve[0]) == 0:
        return None
    return np.asarray(curve[0], dtype=np.int64), np.asarray(curve[1], dtype=np.float64)


def aligned(history, first_key, second_key):
    """Steps where both curves have a finite value, and the two value arrays there."""
    first, second = curve(history, first_key), curve(history, second_key)
    if first is None or second is None:
        return None
    steps, first_index, second_index = np.intersect1d(first[0], second[0], return_indices=True)
    a, b = first[1][first_index], second[1][second_index]
    finite = np.isfinite(a) & np.isfinite(b)
    return steps[finite], a[finite], b[finite]


def confusion_series(history, split):
    """``(steps, totals)`` of a split's confusion counts, ascending, each step's a
    `metrics.ConfusionTotals` (the history keeps those, O(C) per epoch; a dense matrix put in a
    history is reduced here), or None.

    A multi-label run's per-label counts come pooled (`metrics.pooled_label_confusion`): every
    (row, label) decision one binary example, so the rules on accuracy read the share of right
    label decisions (1 - Hamming loss). The per-label rules read `label_counts`.
    """
    by_step = history.confusions.get(split) or {}
    if not by_step:
        return None
    steps = sorted(by_step)
    counts = [by_step[step] for step in steps]
    if history.multilabel:
        counts = [metrics.pooled_label_confusion(matrices) for matrices in counts]
    return steps, [metrics.confusion_totals(each) for each in counts]


def label_counts(history, split="validation"):
    """``(step, [K, 2, 2])`` of a multi-label run's latest per-label counts, or None (also for
    a single-label run).
    """
    by_step = history.confusions.get(split) or {}
    if not history.multilabel or not by_step:
        return None
    step = max(by_step)
    return step, np.asarray(by_step[step])


def latest_totals(history, split="validation"):
    """``(step, metrics.ConfusionTotals)`` of a split's latest step (`confusion_series`), or
    None.
    """
    series = confusion_series(history, split)
    if series is None:
        return None
    steps, totals = series
    return steps[-1], totals[-1]


def class_names(history, num_classes):
    return labels.names_or_default(list(history.class_names or []), num_classes)


def duplicate_share(history):
    overlap = history.overlap or {}
    share = overlap.get("duplicate_share")
    return float(share) if isinstance(share, (int, float)) else None

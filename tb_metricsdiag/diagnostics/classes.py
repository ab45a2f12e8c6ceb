"""Rules on per-class figures: the per-class flags, the accuracy paradox, accuracy as the only
metric, a decision threshold far from 0.5.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

import math

import numpy as np

from tb_metricsdiag.core import metrics, operating_points
from tb_metricsdiag.diagnostics import _history
from tb_metricsdiag.diagnostics.findings import finding

PARADOX_MIN_ERROR_REDUCTION = 0.1
"""Accuracy is "no better" than the majority-class baseline when it removes less than 10 % of
the baseline's errors: (accuracy - baseline) / (1 - baseline) < 0.1. Measured against the
baseline's error rate, since at 98 % majority a useful model may add only a point or two."""


PARADOX_HIGH_ACCURACY = 0.9
"""Accuracy from which a badly recalled class is hidden by a good-looking headline figure."""


PARADOX_LOW_RECALL = 0.5
"""Recall below which a class counts as mostly missed."""


MIN_JUDGED_SUPPORT = 5
"""Examples a class needs before its recall is judged (fewer is noise), by the accuracy paradox
and the per-class flags; and predictions it needs before its precision is."""


FLAG_MIN_GAP = 0.1
"""How far below the median class a class's recall (precision) must be to be flagged: a
smaller gap is not worth a flag, however many examples make it certain."""


FLAG_LOW_RECALL = "low_recall"
FLAG_LOW_PRECISION = "low_precision"


FLAG_RULE = (
    "Flagged when a class's recall (precision) is clearly below the median class's: their 95%%"
    " Wilson intervals do not overlap (the class's upper end is under the median class's lower"
    " end) and it is at least %.2f lower. The median class is the middle one, by that figure,"
    " of the classes with at least %d examples (predictions); of an even number, the better of"
    " the two middle ones." % (FLAG_MIN_GAP, MIN_JUDGED_SUPPORT)
)
"""`class_flags`'s rule in words (shown beside the flags)."""


IMBALANCE_RATIO = 4.0
"""Largest over smallest class count from which labels count as imbalanced (80/20 binary)."""


ACCURACY_METRICS = frozenset(
    {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"}
)


NON_METRIC_LOG_KEYS = frozenset({"loss", "learning_rate", "lr"})


THRESHOLD_MIN_DISTANCE = 0.2
"""The best-F1 threshold is "far" from 0.5 when it is at least 0.2 away from it ..."""


THRESHOLD_MIN_F1_GAIN = 0.05
"""... and its F1 beats by at least 0.05 both the F1 at 0.5 and the F1 of calling every
example positive (a threshold of 0 wins F1 on a model that separates nothing)."""


THRESHOLD_MIN_POSITIVES = 5
"""Positive validation examples needed before a threshold is recommended."""


def _median_class(values, lower, judged):
    """The index of the median class of the ``judged`` ones by ``values`` (ties by the lower
    end of the interval), the upper median of an even number; None below two judged classes.
    """
    candidates = np.flatnonzero(judged)
    if candidates.size < 2:
        return None
    order = np.lexsort((lower[candidates], values[candidates]))
    return int(candidates[order[candidates.size // 2]])


def _clearly_below(values, interval, judged):
    """``(below, median)``: where ``values`` are clearly below the median class's
    (`FLAG_RULE`): judged, the upper end of their ``interval`` under the median class's lower
    end, and `FLAG_MIN_GAP` under its value; and that class's index (None: nothing judged).
    """
    lower, upper = interval
    median = _median_class(values, lower, judged)
    if median is None:
        return np.zeros(values.shape, dtype=bool), None
    with np.errstate(invalid="ignore"):
        below = judged & (upper < lower[median]) & (values <= values[median] - FLAG_MIN_GAP)
    return below, median


def _decimals(upper, lower):
    """Decimals that tell ``upper`` from ``lower`` apart: 3, as the tab shows figures, or more
    where 3 would print the class's upper end and the median class's lower end alike.
    """
    decimals = 3
    while decimals < 6 and "%.*f" % (decimals, upper) == "%.*f" % (decimals, lower):
        decimals += 1
    return decimals


def _flag_reason(metric, counted_over, figures, k, median, name, unit):
    """Why class ``k`` was flagged, in words: its figure, interval and count, and the figure
    and interval of the median class (``name``) it is clearly below.
    """
    value, (lower, upper), counts = figures
    decimals = _decimals(upper[k], lower[median])

    def shown(x):
        return "%.*f" % (decimals, x)

    return (
        "%s %s (95%% CI %s\u2013%s over %d %s) is clearly below the median %s's %s (95%% CI"
        " %s\u2013%s, %s %r): the intervals do not overlap and the gap of %s is at least %.2f"
        % (
            metric,
            shown(value[k]),
            shown(lower[k]),
            shown(upper[k]),
            counts[k],
            counted_over,
            unit,
            shown(value[median]),
            shown(lower[median]),
            shown(upper[median]),
            unit,
            name,
            shown(value[median] - value[k]),
            FLAG_MIN_GAP,
        )
    )


def class_flags(confusion, class_names=None):
    """The flags of each class of a ``[C, C]`` confusion matrix or its
    `metrics.ConfusionTotals` (each label of multi-label ``[K, 2, 2]`` counts): a list per
    class of ``{"flag", "reason"}``, ``flag`` `FLAG_LOW_RECALL` or `FLAG_LOW_PRECISION` by
    `FLAG_RULE`, ``reason`` why it fired (the figure, its interval, the median class's figure
    and interval; ``class_names`` name that class, default its index).

    The classes are judged against each other, not against a fixed cut-off: at hundreds of
    classes many fall under any fixed figure, and on a hard task every class may. A class is
    flagged when its figure is below the median class's by more than the uncertainty of both:
    their 95% Wilson intervals (`metrics.per_class_intervals`) do not overlap, so that a class
    of 20 examples at 0.90 is not flagged against a median class of 20 at 1.00, which is just
    as uncertain; and by at least `FLAG_MIN_GAP`. Recall is judged on the classes with at least
    `MIN_JUDGED_SUPPORT` examples, precision on those with at least that many predictions (a
    class never predicted has no precision, and a recall of 0). A matrix with one judged class
    flags nothing.
    """
    per_class = metrics.per_class_metrics(confusion)
    intervals = metrics.per_class_intervals(confusion)
    label_counts = not isinstance(confusion, metrics.ConfusionTotals) and np.ndim(confusion) == 3
    unit = "label" if label_counts else "class"
    names = class_names if class_names is not None else list(range(len(per_class["support"])))
    flags = [[] for _ in range(len(per_class["support"]))]
    for flag, metric, counted_over, counts in (
        (FLAG_LOW_RECALL, "recall", "examples", per_class["support"]),
        (FLAG_LOW_PRECISION, "precision", "predictions", per_class["predicted"]),
    ):
        figures = (per_class[metric], intervals[metric], counts)
        below, median = _clearly_below(
            per_class[metric], intervals[metric], counts >= MIN_JUDGED_SUPPORT
        )
        for k in np.flatnonzero(below).tolist():
            reason = _flag_reason(metric, counted_over, figures, k, median, names[median], unit)
            flags[k].append({"flag": flag, "reason": reason})
    return flags


def has_flag(flags, flag):
    """Whether ``flag`` is among one class's `class_flags`."""
    return any(each["flag"] == flag for each in flags)


def no_better_than_majority(confusion):
    """Whether accuracy removes less than `PARADOX_MIN_ERROR_REDUCTION` of the majority
    baseline's errors: the one definition of "no better than always predicting the majority
    class" (the rule below and the tab's summary use it).
    """
    return bool(metrics.error_reduction_vs_baseline(confusion) < PARADOX_MIN_ERROR_REDUCTION)


def check_accuracy_paradox(history):
    """Accuracy no better than the majority baseline on imbalanced labels (balanced ones are
    left to `check_not_learning`), or high accuracy hiding a class with very low recall (the
    fraud case: 98 % accuracy, 12 % fraud recall): below `PARADOX_LOW_RECALL`, and flagged
    low recall by `class_flags`, so that at many classes of a few examples each one class
    unlucky in its sample is not taken for a hidden one. A multi-label run is judged label by label
    (`_label_paradox`), each label a binary task of its own.
    """
    labels = _history.label_counts(history)
    if labels is not None:
        return _label_paradox(history, *labels)
    latest = _history.latest_totals(history)
    if latest is None:
        return []
    step, totals = latest
    found = _paradox(totals, _history.class_names(history, totals.num_classes))
    return [] if found is None else [_paradox_finding(step, *found)]


def _label_paradox(history, step, matrices):
    """The accuracy paradox of the worst label: each label's ``[[tn, fp], [fn, tp]]`` is the
    confusion matrix of "label absent" against "label set", judged by `_paradox`; of the
    labels it fires on, the one whose worst class is recalled least is reported.
    """
    names = _history.class_names(history, matrices.shape[0])
    fired = []
    for name, matrix in zip(names, matrices):
        found = _paradox(matrix, ["not " + name, name], subject="Label %r accuracy" % name)
        if found is not None:
            found[2].update(label=name, scope="label")
            fired.append(found)
    if not fired:
        return []
    title, detail, evidence = min(fired, key=lambda found: found[2]["worst_class_recall"])
    evidence["labels_affected"] = [found[2]["label"] for found in fired]
    return [_paradox_finding(step, "Label %r: %s" % (evidence["label"], title), detail, evidence)]


def _paradox(confusion, names, subject="Validation accuracy"):
    """``(title, detail, evidence)`` of the accuracy paradox in one confusion matrix (or its
    `metrics.ConfusionTotals`, all it needs), or None. ``subject`` names the accuracy in the
    detail.
    """
    confusion = metrics.confusion_totals(confusion)
    accuracy = metrics.accuracy(confusion)
    baseline = metrics.majority_baseline_accuracy(confusion)
    if math.isnan(accuracy):
        return None
    per_class = metrics.per_class_metrics(confusion)
    judged = (per_class["support"] >= MIN_JUDGED_SUPPORT) & ~np.isnan(per_class["recall"])
    if not judged.any():
        return None
    recalls = np.where(judged, per_class["recall"], np.inf)
    flagged = np.array([has_flag(flags, FLAG_LOW_RECALL) for flags in class_flags(confusion)])
    # The hidden class is the worst of the flagged ones; without one, the worst judged.
    worst = int(np.argmin(np.where(flagged, recalls, np.inf) if flagged.any() else recalls))
    evidence = {
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "worst_class": names[worst],
        "worst_class_index": worst,
        "worst_class_recall": per_class["recall"][worst],
        "worst_class_support": per_class["support"][worst],
        "num_classes": confusion.num_classes,
    }
    support = per_class["support"]
    imbalanced = support.max() >= IMBALANCE_RATIO * max(support.min(), 1)
    evidence["error_reduction_vs_baseline"] = metrics.error_reduction_vs_baseline(confusion)
    if imbalanced and no_better_than_majority(confusion):
        title = "Accuracy is no better than always predicting the majority class"
        detail = (
            "%s %.2f %% vs %.2f %% for always predicting the most frequent "
            "class; balanced accuracy is %.2f %%."
            % (subject, 100 * accuracy, 100 * baseline, 100 * evidence["balanced_accuracy"])
        )
    elif (
        accuracy >= PARADOX_HIGH_ACCURACY and flagged[worst] and recalls[worst] < PARADOX_LOW_RECALL
    ):
        title = "High accuracy hides a class with low recall"
        detail = (
            "%s is %.2f %%, but only %.1f %% of class %r (%d examples) are "
            "found; balanced accuracy is %.2f %%."
            % (
                subject,
                100 * accuracy,
                100 * recalls[worst],
                names[worst],
                per_class["support"][worst],
                100 * evidence["balanced_accuracy"],
            )
        )
    else:
        return None
    return title, detail, evidence


def _paradox_finding(step, title, detail, evidence):
    return finding(
        "accuracy_paradox",
        "warning",
        title=title,
        detail=detail,
        step=step,
        evidence=evidence,
        suggestion="Judge the model by per-class recall, balanced accuracy or PR-AUC; rebalance with "
        "class_weight or resampling, or move the decision threshold.",
    )


def check_accuracy_only_metric(history):
    """Accuracy the only metric tracked while the labels are imbalanced."""
    distribution = history.label_distribution.get("validation")
    if distribution is None:
        distribution = history.label_distribution.get("train")
    if distribution is None or np.asarray(distribution).size < 2:
        return []
    distribution = np.asarray(distribution)
    if distribution.min() <= 0:
        ratio = math.inf
    else:
        ratio = distribution.max() / distribution.min()
    tracked = sorted(
        {key[len("val_") :] if key.startswith("val_") else key for key in history.curves}
        - NON_METRIC_LOG_KEYS
    )
    if ratio < IMBALANCE_RATIO or not tracked or not set(tracked) <= ACCURACY_METRICS:
        return []
    return [
        finding(
            "accuracy_only_metric",
            "info",
            title="Accuracy is the only metric on imbalanced labels",
            detail="The largest class is %s times the smallest, and the run tracks only %s."
            % ("infinitely many" if math.isinf(ratio) else "%.1f" % ratio, ", ".join(tracked)),
            step=None,
            evidence={
                "tracked_metrics": tracked,
                "class_counts": distribution,
                "imbalance_ratio": ratio,
                "imbalance_threshold": IMBALANCE_RATIO,
            },
            suggestion="Also track precision, recall and PR-AUC, e.g. metrics=[keras.metrics.Recall(), "
            "keras.metrics.AUC(curve='PR')].",
        )
    ]


def check_threshold_far_from_default(history):
    """Binary classifier whose best-F1 threshold is far from 0.5 and clearly better there."""
    evaluation = history.latest.get("validation")
    if (
        evaluation is None
        or evaluation.tp is None
        or evaluation.fp is None
        or evaluation.thresholds is None
        or evaluation.multilabel
        or evaluation.confusion.shape != (2, 2)
    ):
        return []
    positives = int(evaluation.confusion[1].sum())
    if positives < THRESHOLD_MIN_POSITIVES:
        return []
    thresholds = np.asarray(evaluation.thresholds, dtype=np.float64)
    tp = np.asarray(evaluation.tp[1], dtype=np.int64)
    fp = np.asarray(evaluation.fp[1], dtype=np.int64)
    f1 = metrics.f1_score(tp, fp, positives - tp)
    if np.all(np.isnan(f1)):
        return []
    best = operating_points.best_f1_index(f1)
    f1 = np.where(np.isnan(f1), -1.0, f1)
    best_f1 = f1[best]
    default = operating_points.nearest_index(thresholds, operating_points.DEFAULT_THRESHOLD)
    distance = abs(thresholds[best] - operating_points.DEFAULT_THRESHOLD)
    gain = best_f1 - f1[default]
    total = int(evaluation.confusion.sum())
    all_positive_f1 = float(metrics.f1_score(positives, total - positives, 0))
    if (
        distance < THRESHOLD_MIN_DISTANCE
        or gain < THRESHOLD_MIN_F1_GAIN
        or best_f1 < all_positive_f1 + THRESHOLD_MIN_F1_GAIN
    ):
        return []
    precision, recall = metrics.pr_curve(tp[best], fp[best], positives)
    names = _history.class_names(history, 2)
    return [
        finding(
            "threshold_far_from_default",
            "info",
            title="A decision threshold of %s gives a clearly better F1 than 0.5"
            % operating_points.format_threshold(thresholds[best]),
            detail="For class %r the F1 score is %.3f at threshold %s against %.3f at %s."
            % (
                names[1],
                best_f1,
                operating_points.format_threshold(thresholds[best]),
                f1[default],
                operating_points.format_threshold(thresholds[default]),
            ),
            step=evaluation.step,
            evidence={
                "positive_class": names[1],
                "best_threshold": thresholds[best],
                "best_f1": best_f1,
                "precision_at_best": precision,
                "recall_at_best": recall,
                "default_threshold": thresholds[default],
                "f1_at_default": f1[default],
                "f1_all_positive": all_positive_f1,
                "positives": positives,
            },
            suggestion="Pick the operating threshold on validation data (e.g. %s) instead of 0.5."
            % operating_points.format_threshold(thresholds[best]),
        )
    ]

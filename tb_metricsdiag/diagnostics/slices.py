"""The rule on slices: a group of the validation rows (one country, one device) on which a class
is recalled, or predicted, clearly worse than on the rest of the split.

Each slice is compared with the rest of its split: the split's counts minus the slice's, i.e.
the rows not in the slice. A run with many slices makes many comparisons, and some would look
bad by chance alone; the test is therefore made at a family-wise level (`FAMILY_ALPHA` for the
whole run, split over the comparisons by Bonferroni). The thresholds are documented here and in
``docs/diagnostics.md`` ("weak_slice").
"""

import numpy as np

from tb_metricsdiag.core import metrics
from tb_metricsdiag.diagnostics.findings import finding

WEAK_SLICE_SPLIT = "validation"
"""The split judged: its predictions are out-of-sample."""

MIN_SLICE_ROWS = 30
"""Rows a slice needs before it is judged; also the default of ``report --min-slice-size``
(`gates.MIN_SLICE_SIZE`)."""

MIN_TRIALS = 10
"""Examples behind each figure compared, in the slice and in the rest: the class's examples for
its recall, the predictions of the class for its precision."""

MIN_GAP = 0.1
"""How far the slice's figure must be under the rest's: a smaller gap is not worth a warning,
however many rows make it certain."""

FAMILY_ALPHA = 0.001
"""The chance, at most, that a run whose slices all share the same rates gets a warning: each
comparison is made with Wilson intervals at level ``FAMILY_ALPHA / comparisons``
(`metrics.bonferroni_z`). At 0.05, one run in 30 to 100 of equal rates got a warning in the
tests (Wilson intervals of 10 to 20 examples cover a little less than they claim); at 0.001
none of thousands did, while a slice of 100 examples of a class recalled 50% against 90%
elsewhere still fires."""

METRICS = ("recall", "precision")
"""The figures compared, with the counts behind them (`TRIALS`)."""

TRIALS = {"recall": "support", "precision": "predicted"}

MAX_ALSO_WEAK = 10
"""Other weak slices of the same key listed in a finding's evidence."""


def _candidates(overall, slices):
    """``(names, own, rows)`` of the slices judged: recorded at the step of ``overall``, with at
    least `MIN_SLICE_ROWS` rows, whose counts fit in the split's (never more than the split
    holds: damaged counts are left out). ``names`` lists their ``(key, value)``, ``own`` stacks
    their counts (``[S, C, C]`` or ``[S, K, 2, 2]``), ``rows`` their row counts.
    """
    total = np.asarray(overall.decision_counts, dtype=np.int64)
    names, own, rows = [], [], []
    for key in sorted(slices):
        for value in sorted(slices[key]):
            evaluation = slices[key][value]
            if evaluation.step != overall.step or evaluation.total < MIN_SLICE_ROWS:
                continue
            counts = np.asarray(evaluation.decision_counts, dtype=np.int64)
            if counts.shape != total.shape or np.any(counts > total):
                continue
            names.append((key, value))
            own.append(counts)
            rows.append(evaluation.total)
    return names, np.array(own, dtype=np.int64).reshape(-1, *total.shape), np.array(rows)


def _as_classes(stack):
    """Counts of S slices, ``[S, C, C]`` (or ``[S, K, 2, 2]``), as the counts of S·C classes
    (labels) that `metrics.per_class_metrics` and `metrics.per_class_intervals` read: one pass
    over every slice, in the order slice by slice, class by class.
    """
    if stack.ndim == 4:
        return stack.reshape(-1, 2, 2)
    diagonal = np.diagonal(stack, axis1=1, axis2=2)
    return metrics.ConfusionTotals(
        diagonal.reshape(-1), stack.sum(axis=2).reshape(-1), stack.sum(axis=1).reshape(-1)
    )


def _side(figures, intervals, metric, i, rows):
    """One side of a comparison: entry ``i`` of the ``metric`` of `metrics.per_class_metrics`
    ``figures`` with the counts behind it, its ``intervals`` entry and the side's ``rows``.
    """
    trials = int(figures[TRIALS[metric]][i])
    figure = float(figures[metric][i])
    lower, upper = intervals[metric]
    return {
        "figure": figure,
        "successes": int(round(figure * trials)),
        "trials": trials,
        "interval": [float(lower[i]), float(upper[i])],
        "rows": int(rows),
    }


def weak_slices(overall, slices, class_names):
    """The comparisons where a slice is clearly worse than the rest of its split, worst first,
    and the number of comparisons made: ``(weak, comparisons)``.

    For each slice of `_candidates`, each class (label) and each metric of `METRICS`, with at
    least `MIN_TRIALS` examples behind the figure in the slice and in the rest (the split's
    counts minus the slice's), the slice is weak when its figure is at least `MIN_GAP` under
    the rest's and its Wilson interval lies wholly under the rest's, both at
    ``z = bonferroni_z(FAMILY_ALPHA, comparisons)``.

    Args:
      overall: the split's `run_records.SplitEvaluation` at its latest step.
      slices: ``{key: {value: SplitEvaluation}}`` of that split (`RunHistory.slices`).
      class_names: the class (label) names.

    Returns:
      ``weak``: dicts ``{"key", "value", "class", "class_index", "metric", "gap", "slice",
      "rest"}``, ``slice`` and ``rest`` each ``{"figure", "successes", "trials", "interval",
      "rows"}`` (the figure is ``successes / trials``; the interval at the adjusted ``z``);
      ``comparisons``: how many were made (the Bonferroni divisor).
    """
    names, own, rows = _candidates(overall, slices)
    rest = np.asarray(overall.decision_counts, dtype=np.int64) - own
    sides = [_as_classes(own), _as_classes(rest)]
    figures = [metrics.per_class_metrics(side) for side in sides]
    judged = {
        metric: np.flatnonzero(
            (figures[0][TRIALS[metric]] >= MIN_TRIALS) & (figures[1][TRIALS[metric]] >= MIN_TRIALS)
        )
        for metric in METRICS
    }
    comparisons = sum(len(indices) for indices in judged.values())
    if not comparisons:
        return [], 0
    z = metrics.bonferroni_z(FAMILY_ALPHA, comparisons)
    intervals = [metrics.per_class_intervals(side, z) for side in sides]
    num_classes = len(class_names)
    weak = []
    for metric, indices in judged.items():
        own_figures, rest_figures = figures[0][metric][indices], figures[1][metric][indices]
        gap = rest_figures - own_figures
        apart = intervals[0][metric][1][indices] < intervals[1][metric][0][indices]
        for i in indices[(gap >= MIN_GAP) & apart].tolist():
            s, k = divmod(i, num_classes)
            weak.append(
                {
                    "key": names[s][0],
                    "value": names[s][1],
                    "class": class_names[k],
                    "class_index": k,
                    "metric": metric,
                    "gap": float(figures[1][metric][i] - figures[0][metric][i]),
                    "slice": _side(figures[0], intervals[0], metric, i, rows[s]),
                    "rest": _side(figures[1], intervals[1], metric, i, overall.total - rows[s]),
                }
            )
    weak.sort(key=lambda entry: -entry["gap"])
    return weak, comparisons


def check_weak_slice(history):
    """A slice clearly worse than the rest of the validation split on a class's recall or
    precision (`weak_slices`), at the split's latest step: one finding per key, naming its
    worst slice and listing the others.
    """
    overall = history.latest.get(WEAK_SLICE_SPLIT)
    slices = history.slices.get(WEAK_SLICE_SPLIT) or {}
    if overall is None or not slices:
        return []
    weak, comparisons = weak_slices(overall, slices, list(overall.class_names))
    z = metrics.bonferroni_z(FAMILY_ALPHA, comparisons) if comparisons else None
    findings = []
    for key in sorted({entry["key"] for entry in weak}):
        of_key = [entry for entry in weak if entry["key"] == key]
        findings.append(_finding(overall.step, of_key, comparisons, z))
    return findings


def _percent(x):
    return "%.0f%%" % (100 * x)


def _finding(step, of_key, comparisons, z):
    worst, others = of_key[0], of_key[1:]
    own, rest = worst["slice"], worst["rest"]
    where = "%s=%s" % (worst["key"], worst["value"])
    verb = {"recall": "recalled", "precision": "predicted with precision"}[worst["metric"]]
    counted = {"recall": "examples", "precision": "predictions"}[worst["metric"]]
    detail = (
        "At epoch %d, on the %d validation rows with %s, class %s is %s %s (%d of %d %s,"
        " interval %s to %s) against %s on the other %d rows (%d of %d, interval %s to %s)."
        " The gap is %.0f points and the intervals, widened for the %d comparisons of slices,"
        " classes and metrics made (Bonferroni, z = %.2f), do not overlap."
        % (
            step,
            own["rows"],
            where,
            worst["class"],
            verb,
            _percent(own["figure"]),
            own["successes"],
            own["trials"],
            counted,
            _percent(own["interval"][0]),
            _percent(own["interval"][1]),
            _percent(rest["figure"]),
            rest["rows"],
            rest["successes"],
            rest["trials"],
            _percent(rest["interval"][0]),
            _percent(rest["interval"][1]),
            100 * worst["gap"],
            comparisons,
            z,
        )
    )
    if others:
        detail += " %d more weak slice(s) of %s: %s." % (
            len(others),
            worst["key"],
            ", ".join(
                "%s=%s (%s of %s)" % (e["key"], e["value"], e["metric"], e["class"])
                for e in others[:MAX_ALSO_WEAK]
            ),
        )
    evidence = {
        "split": WEAK_SLICE_SPLIT,
        "key": worst["key"],
        "value": worst["value"],
        "class": worst["class"],
        "class_index": worst["class_index"],
        "metric": worst["metric"],
        "gap": worst["gap"],
        "slice": own,
        "rest": rest,
        "weak_slices": len(of_key),
        "also_weak": [
            {
                "value": e["value"],
                "class": e["class"],
                "metric": e["metric"],
                "slice_figure": e["slice"]["figure"],
                "rest_figure": e["rest"]["figure"],
            }
            for e in others[:MAX_ALSO_WEAK]
        ],
        "comparisons": comparisons,
        "z": z,
        "family_alpha": FAMILY_ALPHA,
        "min_slice_rows": MIN_SLICE_ROWS,
        "min_trials": MIN_TRIALS,
        "min_gap": MIN_GAP,
    }
    return finding(
        "weak_slice",
        "warning",
        title="Slice %s: %s of %s %s against %s on the rest"
        % (
            where,
            worst["metric"],
            worst["class"],
            _percent(own["figure"]),
            _percent(rest["figure"]),
        ),
        detail=detail,
        step=step,
        evidence=evidence,
        suggestion="Look at the %s rows (the tab's slice selector, /slices): collect or label more"
        " data like them, reweight or oversample them in training, check them for a shift in the"
        " inputs or the labels, or give them a threshold of their own; gate them in CI with"
        " tb-metricsdiag report --require '%s[%s]@%s >= ...'."
        % (where, worst["metric"], worst["class"], where),
    )

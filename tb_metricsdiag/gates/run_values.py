"""What a run offers the requirements (`GateInputs`), which of its classes a requirement
checks, and a metric's value on it. Pure: no I/O.
"""

import dataclasses

import numpy as np

from tb_metricsdiag.core import labels, metrics
from tb_metricsdiag.gates.language import EVERY_CLASS, MACRO, METRICS, GateError

# Why a metric cannot be checked on a run that lacks its data, by `Metric.needs`.
MISSING_DATA = {
    "average_precision": "has no average precision recorded (written without threshold counts,"
    " or they could not be read)",
    "calibration": "has no calibration data (written before calibration bins were recorded,"
    " or without them), so ece cannot be checked",
    "label_issues": "has no label issues recorded (a run written without example records, a"
    " multi-label run, or records that cannot be read), so label_issue_share cannot be checked",
    "single_label": "is multi-label: balanced_accuracy is defined for single-label classes;"
    " check recall[*] or recall[macro] per label instead",
}


@dataclasses.dataclass
class GateInputs:
    """What one run offers at one step: the confusion matrix (``[C, C]``, row = actual; or a
    multi-label run's ``[K, 2, 2]`` per-label counts, with ``exact_matches``, the rows whose
    label set is predicted exactly), the class names, the per-class average precision (``[C]``,
    or None when not recorded) and the expected calibration error (None when the run has no
    calibration bins at that step) and the label issues (``(flagged, examples)``: how many
    examples confident learning flags of how many it saw; None when not recorded). A
    multi-label run's ``accuracy`` is the subset accuracy. ``slices``: ``{key: {value:
    GateInputs}}``, the slices at that step of the keys the requirements name (an empty dict
    when the run has none; a slice has no label issues).
    """

    run: str
    step: int
    class_names: list
    confusion: np.ndarray
    average_precision: np.ndarray = None
    ece: float = None
    exact_matches: int = None
    label_issues: tuple = None
    slices: dict = None

    @property
    def rows(self):
        """Examples counted (rows, multi-label)."""
        confusion = np.asarray(self.confusion)
        return int(confusion[0].sum() if self.exact_matches is not None else confusion.sum())


class NotApplicable(Exception):
    """A requirement that does not apply to a run (`class_indices`); the message says why."""


def class_indices(requirement, inputs):
    """``[(class label for the report, index or MACRO or None)]`` a requirement checks on a run.

    Raises:
      NotApplicable: the requirement names a class the run lacks, or means the positive class
        (no class given) of a run that is not binary.
    """
    metric = METRICS[requirement.metric]
    names = list(inputs.class_names)
    if not metric.per_class:
        return [(None, None)]
    if requirement.cls is None:
        if len(names) != 2:
            raise NotApplicable(
                "run has %d classes; %s without a class means a binary run's positive class"
                % (len(names), requirement.metric)
            )
        index = labels.default_class(2)
        return [(names[index], index)]
    if requirement.cls == EVERY_CLASS:
        return list(zip(names, range(len(names))))
    if requirement.cls == MACRO:
        return [(MACRO, MACRO)]
    if requirement.cls in names:
        return [(requirement.cls, names.index(requirement.cls))]
    raise NotApplicable("run has no class %r" % (requirement.cls,))


def metric_value(metric, inputs, index):
    """``(value, lower, upper)`` of ``metric`` on ``inputs`` for class ``index`` (an int,
    `MACRO`, or None for a metric of the whole run). ``lower``/``upper`` is the Wilson 95%
    interval (`metrics.wilson_interval`) where the value is a proportion of counts (accuracy,
    a class's precision and recall, the label issue share), else None. NaN where undefined.

    Raises:
      GateError: the run lacks the data the metric needs (`MISSING_DATA`); the message lacks
        the expression, which the caller adds.
    """
    confusion = np.asarray(inputs.confusion)
    if metric == "label_issue_share":
        if inputs.label_issues is None:
            raise GateError(MISSING_DATA["label_issues"])
        flagged, examples = inputs.label_issues
        lower, upper = metrics.wilson_interval(flagged, examples)
        share = flagged / examples if examples else float("nan")
        return float(share), float(lower), float(upper)
    if metric == "ece":
        if inputs.ece is None:
            raise GateError(MISSING_DATA["calibration"])
        return float(inputs.ece), None, None
    multilabel = inputs.exact_matches is not None
    if metric == "accuracy":
        right, rows = (inputs.exact_matches if multilabel else np.trace(confusion)), inputs.rows
        lower, upper = metrics.wilson_interval(right, rows)
        return float(right / rows) if rows else float("nan"), float(lower), float(upper)
    if metric == "balanced_accuracy":
        if multilabel:
            raise GateError(MISSING_DATA["single_label"])
        return metrics.balanced_accuracy(confusion), None, None
    if metric == "ap":
        if inputs.average_precision is None:
            raise GateError(MISSING_DATA["average_precision"])
        per_class = np.asarray(inputs.average_precision, dtype=np.float64)
        if index == MACRO:
            return metrics.macro_average(per_class), None, None
        return float(per_class[index]), None, None
    per_class = metrics.per_class_metrics(confusion)
    if index == MACRO:
        return metrics.macro_average(per_class[metric]), None, None
    intervals = metrics.per_class_intervals(confusion)
    if metric in intervals:
        lower, upper = intervals[metric]
        return float(per_class[metric][index]), float(lower[index]), float(upper[index])
    return float(per_class[metric][index]), None, None

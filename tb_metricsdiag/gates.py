"""The gate language of ``tb-metricsdiag report --require``: parse, then evaluate. Pure: no I/O.

A requirement is ``METRIC[CLASS] OP BOUND`` or ``METRIC OP BOUND`` (spaces allowed), either
optionally scoped to slices with ``@KEY=VALUE`` before ``OP``:

- ``METRIC``: one of `METRICS`. ``accuracy``, ``balanced_accuracy``, ``ece`` and
  ``label_issue_share`` (the share of examples whose given label confident learning flags, as
  ``/label_issues`` gives it) are one number per run and take no class; ``precision``,
  ``recall``, ``f1`` and ``ap`` are per class.
- ``CLASS``: a class name, ``*`` (every class must pass: one result per class) or ``macro``
  (the unweighted mean over the classes where the metric is defined, scikit-learn's
  ``average="macro", zero_division=np.nan``). A per-class metric without a class means the
  positive class of a binary run (scikit-learn's default ``average="binary"``); on a run of
  more classes it is a usage error asking for one.
- ``@KEY=VALUE``: the slice of the rows recorded with that group value (``groups=``), its
  metric computed from the slice's own counts as the run's is from the run's; ``@KEY=*``: every
  value of the key with at least ``min_slice_size`` rows (one result per value; smaller slices
  are *skipped*: listed, never failed). A named value is checked whatever its size.
- ``OP``: ``>=``, ``>``, ``<=`` or ``<``.
- ``BOUND``: a number in [0, 1], or ``baseline``, ``baseline + X``, ``baseline - X``: the same
  metric (and class) of the baseline run, shifted by ``X``.

A requirement that names a class applies to the runs that have that class; on the others it
is *not applicable* (``"passed": None``, ``"applicable": False``), which is no failure: a
folder may mix runs of different tasks. A per-class metric without a class applies likewise to
the binary runs only. It is a usage error only when it applies to none of the runs checked
(`check_applicable`). A requirement on a slice key or value a run lacks is not applicable there
likewise.

Every problem a user can fix (a malformed expression, an unknown metric, a class no run has,
data a run does not have) raises `GateError`, whose message quotes the expression: the command
line turns it into exit status 2. A value that is undefined (0/0, e.g. the precision of a class
that is never predicted) fails its requirement: nothing shows the bound is met.
"""

import dataclasses
import difflib
import operator
import re

import numpy as np

from tb_metricsdiag.core import labels, metrics
from tb_metricsdiag.diagnostics import slices as weak_slice_rule

# Comparison operators, longest first so that ">=" is not read as ">".
OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}

# The ``CLASS`` forms that are not class names.
EVERY_CLASS = "*"
MACRO = "macro"

# The ``VALUE`` of ``@KEY=VALUE`` that means every value of the key.
EVERY_VALUE = "*"

MIN_SLICE_SIZE = weak_slice_rule.MIN_SLICE_ROWS
"""Rows a slice needs to be checked by ``@KEY=*`` (``--min-slice-size``), those the rule
``weak_slice`` needs to judge one: fewer, and its figures are too uncertain to gate on."""

BASELINE = "baseline"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric the gate language knows: ``per_class`` (takes a class) and ``needs`` (the
    data it is computed from: ``"confusion"``, ``"average_precision"``, ``"calibration"`` or
    ``"label_issues"``).
    """

    name: str
    per_class: bool
    needs: str = "confusion"


METRICS = {
    metric.name: metric
    for metric in (
        Metric("accuracy", per_class=False),
        Metric("balanced_accuracy", per_class=False),
        Metric("precision", per_class=True),
        Metric("recall", per_class=True),
        Metric("f1", per_class=True),
        Metric("ap", per_class=True, needs="average_precision"),
        Metric("ece", per_class=False, needs="calibration"),
        Metric("label_issue_share", per_class=False, needs="label_issues"),
    )
}

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

_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\[(?P<cls>.*)\])?\s*"
    r"(?P<op>>=|<=|>|<)\s*"
    r"(?P<bound>.*?)\s*$",
    re.DOTALL,
)
# The same with ``@SLICE`` after the class (the class up to the first "]" followed by "@"):
# tried first, so that a slice value may hold "]"; the bound holds no comparison character,
# so that a value may.
_SLICE_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\[(?P<cls>.*?)\])?\s*"
    r"@(?P<slice>.*)"
    r"(?P<op>>=|<=|>|<)\s*"
    r"(?P<bound>[^<>=]*?)\s*$",
    re.DOTALL,
)
_RELATIVE_BOUND = re.compile(r"^baseline\s*(?:(?P<sign>[+-])\s*(?P<offset>.+))?$")


class GateError(ValueError):
    """A requirement that cannot be parsed or checked: a usage error (exit status 2)."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One parsed ``--require`` expression.

    ``cls`` is None (no class given), `EVERY_CLASS`, `MACRO` or a class name. The bound is
    ``number`` when ``relative`` is False, else the baseline's value plus ``number``.
    ``slice_key`` and ``slice_value`` (`EVERY_VALUE` or a value) scope it to slices, or are
    None.
    """

    expr: str
    metric: str
    cls: object
    op: str
    number: float
    relative: bool = False
    slice_key: str = None
    slice_value: str = None


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


def _quoted(expr):
    return "--require %r" % (expr,)


def closest_names(name, names, limit=3):
    """Up to ``limit`` of ``names`` closest to ``name`` (difflib), possibly none."""
    return difflib.get_close_matches(name, names, n=limit, cutoff=0.5)


def _no_such_name(name, names, what="classes"):
    """The end of a message about a class (or slice key, value: ``what``) ``name`` not among
    ``names``.
    """
    close = closest_names(name, names)
    if close:
        return "closest: %s" % ", ".join(repr(n) for n in close)
    shown = ", ".join(repr(n) for n in names[:10])
    return "the %s are %s%s" % (what, shown, ", ..." if len(names) > 10 else "")


def _number(text, expr, what):
    try:
        value = float(text)
    except ValueError:
        raise GateError("%s: %s %r is not a number" % (_quoted(expr), what, text)) from None
    if not np.isfinite(value):
        raise GateError("%s: %s must be a finite number, got %r" % (_quoted(expr), what, text))
    return value


def parse_requirement(expr):
    """The `Requirement` of ``expr``.

    Raises:
      GateError: malformed, an unknown metric, a class on a metric that takes none, or a bound
        outside [0, 1] (metrics are fractions: write 0.9, not 90).
    """
    match = _SLICE_EXPRESSION.match(expr) or _EXPRESSION.match(expr)
    if match is None:
        raise GateError(
            "%s: not of the form METRIC[CLASS] OP NUMBER, e.g. 'recall[fraud] >= 0.9', or"
            " METRIC[CLASS]@KEY=VALUE OP NUMBER for slices, e.g. 'recall[fraud]@country=BR >="
            " 0.9' (OP one of %s)" % (_quoted(expr), ", ".join(OPERATORS))
        )
    name, cls, op, bound = match.group("metric", "cls", "op", "bound")
    slice_key, slice_value = (
        _parse_slice(match.group("slice"), expr) if match.re is _SLICE_EXPRESSION else (None, None)
    )
    metric = METRICS.get(name)
    if metric is None:
        close = closest_names(name.lower(), list(METRICS))
        raise GateError(
            "%s: unknown metric %r; the metrics are %s%s"
            % (
                _quoted(expr),
                name,
                ", ".join(METRICS),
                " (closest: %s)" % ", ".join(close) if close else "",
            )
        )
    if cls is not None:
        cls = cls.strip()
        if not cls:
            raise GateError("%s: empty class name in []" % _quoted(expr))
        if not metric.per_class:
            raise GateError(
                "%s: %s is one number per run and takes no [class]" % (_quoted(expr), name)
            )
    if slice_key is not None and metric.needs == "label_issues":
        raise GateError(
            "%s: %s is not recorded per slice; check it on the whole run" % (_quoted(expr), name)
        )
    if not bound:
        raise GateError("%s: a number is missing after %s" % (_quoted(expr), op))
    relative = _RELATIVE_BOUND.match(bound)
    if relative:
        offset = relative.group("offset")
        number = 0.0 if offset is None else _number(offset, expr, "the offset")
        if not 0 <= number <= 1:
            raise GateError(
                "%s: the offset %s from the baseline is outside [0, 1]; metrics are fractions"
                " (write 0.02, not 2)" % (_quoted(expr), offset)
            )
        if relative.group("sign") == "-":
            number = -number
    else:
        number = _number(bound, expr, "the bound")
        if not 0 <= number <= 1:
            raise GateError(
                "%s: the bound %s is outside [0, 1]; metrics are fractions (write 0.9, not 90)"
                % (_quoted(expr), bound)
            )
    return Requirement(
        expr,
        name,
        cls,
        op,
        number,
        relative=bool(relative),
        slice_key=slice_key,
        slice_value=slice_value,
    )


def _parse_slice(text, expr):
    """``(key, value)`` of the ``KEY=VALUE`` after ``@`` (split at the first ``=``, each
    trimmed of spaces), value `EVERY_VALUE` for every value.
    """
    key, equals, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not equals:
        raise GateError(
            "%s: the slice %r is not KEY=VALUE, e.g. '@country=BR', or '@country=*' for every"
            " value" % (_quoted(expr), text.strip())
        )
    if not key:
        raise GateError("%s: the slice key before '=' is empty" % _quoted(expr))
    if not value:
        raise GateError(
            "%s: the slice value after '%s=' is empty (write @%s=* for every value)"
            % (_quoted(expr), key, key)
        )
    return key, value


def parse_requirements(exprs):
    """`parse_requirement` of each expression, in order."""
    return [parse_requirement(expr) for expr in exprs]


def slice_keys(requirements):
    """The slice keys the requirements name, sorted."""
    return sorted({r.slice_key for r in requirements if r.slice_key is not None})


def needs_average_precision(requirements):
    """Whether any requirement reads the average precision (the largest series to read)."""
    return any(METRICS[r.metric].needs == "average_precision" for r in requirements)


def needs_label_issues(requirements):
    """Whether any requirement reads the label issues (example records, read only then)."""
    return any(METRICS[r.metric].needs == "label_issues" for r in requirements)


class NotApplicable(Exception):
    """A requirement that does not apply to a run (`_class_indices`); the message says why."""


def _class_indices(requirement, inputs):
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


def _slice_targets(requirement, inputs, min_slice_size):
    """``[(slice, GateInputs or None)]`` a requirement checks on a run: ``[(None, inputs)]``
    without ``@KEY=VALUE``; else per value checked, ``{"key", "value", "support"}`` (support:
    the slice's rows) and the slice's inputs, None for a slice of ``@KEY=*`` with fewer than
    ``min_slice_size`` rows (skipped).

    Raises:
      NotApplicable: the run has no slices, none by that key, or not that value.
    """
    key, wanted = requirement.slice_key, requirement.slice_value
    if key is None:
        return [(None, inputs)]
    if not inputs.slices:
        raise NotApplicable("run has no slices at step %d" % inputs.step)
    by_value = inputs.slices.get(key)
    if by_value is None:
        raise NotApplicable("run has no slices by key %r" % (key,))
    if wanted != EVERY_VALUE and wanted not in by_value:
        raise NotApplicable("run has no slice %s=%r" % (key, wanted))
    targets = []
    for value in sorted(by_value) if wanted == EVERY_VALUE else [wanted]:
        scoped = by_value[value]
        small = wanted == EVERY_VALUE and scoped.rows < min_slice_size
        targets.append(
            ({"key": key, "value": value, "support": scoped.rows}, None if small else scoped)
        )
    return targets


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


def _passes(op, value, bound):
    """Whether ``value OP bound``; False when either is NaN (undefined)."""
    if value is None or np.isnan(value) or np.isnan(bound):
        return False
    return bool(OPERATORS[op](value, bound))


def _finite_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)


def evaluate(requirement, inputs, baseline=None, by_interval=False, min_slice_size=MIN_SLICE_SIZE):
    """The results of one requirement on one run: one dict per class (and slice) checked.

    Each result has ``expr``, ``metric``, ``class`` (the class name, ``"macro"``, or None for a
    metric of the whole run), ``op``, ``bound``, ``value``, ``passed``, ``applicable`` (True),
    ``step``, and, where the value is a proportion, ``lower`` and ``upper`` (its Wilson 95%
    interval); with a ``baseline`` (`GateInputs` of the baseline run), ``baseline`` (its value
    of the same metric, class and slice) and ``baseline_step``. Undefined values are None and
    fail. A requirement on slices adds ``slice``: ``{"key", "value", "support"}`` (the value
    computed on that slice's counts alone, the baseline's on the baseline's same slice).

    A requirement that does not apply to the run (a class, slice key or value the run lacks:
    `_class_indices`, `_slice_targets`) gives one result with ``applicable`` False,
    ``passed`` and ``value`` None and ``reason`` (why): no failure. A slice of ``@KEY=*``
    with fewer than ``min_slice_size`` rows gives one result likewise, with ``skipped`` True
    and its ``slice``.

    With ``by_interval``, a requirement on a proportion fails only when its whole interval is
    on the wrong side of the bound: ``>=``/``>`` compare the interval's upper end, ``<=``/``<``
    its lower end (said in ``judged_on``: ``"upper"`` or ``"lower"``); values without an
    interval compare as they are.

    Raises:
      GateError: the run (or the baseline run) lacks the class, slice or data of the metric, a
        class is missing on a per-class metric of a run with more than two classes, or the
        bound refers to a baseline and none is given.
    """
    if requirement.relative and baseline is None:
        raise GateError(
            "%s: the bound refers to the baseline; give one with --baseline RUN"
            % _quoted(requirement.expr)
        )
    common = {
        "expr": requirement.expr,
        "metric": requirement.metric,
        "op": requirement.op,
        "step": int(inputs.step),
    }
    unchecked = dict(
        common,
        **{"class": requirement.cls, "value": None, "passed": None},
        bound=None if requirement.relative else requirement.number,
        applicable=False,
    )
    try:
        targets = _slice_targets(requirement, inputs, min_slice_size)
        classes = _class_indices(requirement, inputs)
    except NotApplicable as reason:
        return [dict(unchecked, reason=str(reason))]
    results = []
    for where, scoped in targets:
        if scoped is None:
            results.append(
                dict(
                    unchecked,
                    skipped=True,
                    reason="slice %s=%s has %d rows, fewer than the minimum slice size %d"
                    % (where["key"], where["value"], where["support"], min_slice_size),
                    slice=where,
                )
            )
            continue
        for label, index in classes:
            result = _result(requirement, scoped, baseline, by_interval, label, index, where)
            results.append(dict(common, **result))
    return results


def _result(requirement, inputs, baseline, by_interval, label, index, where):
    """The result fields (`evaluate`) of one class ``label`` (``index``) on ``inputs`` (the
    run's, or the slice ``where``'s).
    """
    value, lower, upper = _value_or_error(requirement, inputs, index)
    result = {"class": label}
    bound = requirement.number
    if baseline is not None:
        baseline_value = _baseline_value(requirement, baseline, label, index, where)
        result["baseline"] = _finite_or_none(baseline_value)
        result["baseline_step"] = int(baseline.step)
        if requirement.relative:
            bound = baseline_value + requirement.number
    judged = value
    if by_interval and lower is not None and not np.isnan(lower):
        end = "upper" if requirement.op in (">=", ">") else "lower"
        judged = upper if end == "upper" else lower
        result["judged_on"] = end
    result.update(
        bound=_finite_or_none(bound),
        value=_finite_or_none(value),
        passed=_passes(requirement.op, judged, bound),
        applicable=True,
    )
    if lower is not None:
        result.update(lower=_finite_or_none(lower), upper=_finite_or_none(upper))
    if where is not None:
        result["slice"] = where
    return result


def _value_or_error(requirement, inputs, index):
    try:
        return metric_value(requirement.metric, inputs, index)
    except GateError as error:
        raise GateError(
            "%s: run %r at step %d %s" % (_quoted(requirement.expr), inputs.run, inputs.step, error)
        ) from None


def _baseline_value(requirement, baseline, label, index, where):
    """The baseline run's value of the requirement's metric for the class ``label``, on the
    same slice ``where`` (None: the whole run).
    """
    if where is not None:
        scoped = (baseline.slices or {}).get(where["key"], {}).get(where["value"])
        if scoped is None:
            raise GateError(
                "%s: the baseline run %r has no slice %s=%r"
                % (_quoted(requirement.expr), baseline.run, where["key"], where["value"])
            )
        baseline = scoped
    if index is not None and index != MACRO:
        names = list(baseline.class_names)
        if label not in names:
            raise GateError(
                "%s: the baseline run %r has no class %r; %s"
                % (_quoted(requirement.expr), baseline.run, label, _no_such_name(label, names))
            )
        index = names.index(label)
    return _value_or_error(requirement, baseline, index)[0]


def evaluate_all(
    requirements, inputs, baseline=None, by_interval=False, min_slice_size=MIN_SLICE_SIZE
):
    """`evaluate` of every requirement on one run, the results in order."""
    return [
        result
        for requirement in requirements
        for result in evaluate(requirement, inputs, baseline, by_interval, min_slice_size)
    ]


def check_applicable(requirements, results, class_names, slice_values=None):
    """Raise a usage error for the first requirement that applied to none of the runs checked
    (a slice skipped for its size counts as applied: the key is there).

    Args:
      requirements: the `Requirement` list.
      results: the results (`evaluate`) of every run checked, in any order.
      class_names: every class name of the runs checked (for the closest names).
      slice_values: ``{key: set of values}`` of the slices of every run checked.

    Raises:
      GateError: a requirement that names a class, a slice key or a slice value no run has
        (quoting it and the closest names), or a per-class metric without a class where no
        run is binary.
    """
    applied = {
        result["expr"] for result in results if result["applicable"] or result.get("skipped")
    }
    slice_values = slice_values or {}
    for requirement in requirements:
        if requirement.expr in applied:
            continue
        key, value = requirement.slice_key, requirement.slice_value
        if key is not None and key not in slice_values:
            if not slice_values:
                raise GateError(
                    "%s: no run checked has slices at the step checked (record them with"
                    " groups={%r: one value per row})" % (_quoted(requirement.expr), key)
                )
            raise GateError(
                "%s: no run checked has slices by key %r; %s"
                % (_quoted(requirement.expr), key, _no_such_name(key, sorted(slice_values), "keys"))
            )
        if key is not None and value != EVERY_VALUE and value not in slice_values[key]:
            raise GateError(
                "%s: no run checked has a slice %s=%r; %s"
                % (
                    _quoted(requirement.expr),
                    key,
                    value,
                    _no_such_name(value, sorted(slice_values[key]), "values of %s" % key),
                )
            )
        if requirement.cls is None:
            raise GateError(
                "%s: %s is per class and no run checked is binary: write %s[NAME], %s[*] or"
                " %s[macro]" % (_quoted(requirement.expr), *(requirement.metric,) * 4)
            )
        raise GateError(
            "%s: no run checked has a class %r; %s"
            % (
                _quoted(requirement.expr),
                requirement.cls,
                _no_such_name(requirement.cls, sorted(class_names)),
            )
        )


def margin(result):
    """How far a result is on the right side of its bound (negative: the wrong side), for
    sorting worst first; -inf when undefined.
    """
    if result["value"] is None or result["bound"] is None:
        return float("-inf")
    difference = result["value"] - result["bound"]
    return difference if result["op"] in (">=", ">") else -difference

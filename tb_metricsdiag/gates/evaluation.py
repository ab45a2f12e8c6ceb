"""Requirements checked on a run: one result per class (and slice) checked, and whether each
requirement applied to any run. Pure: no I/O.
"""

import numpy as np

from tb_metricsdiag.gates.language import MACRO, OPERATORS, GateError, no_such_name, quoted
from tb_metricsdiag.gates.run_values import NotApplicable, class_indices, metric_value
from tb_metricsdiag.gates.slices import (
    MIN_SLICE_SIZE,
    baseline_slice,
    check_slice_exists,
    slice_targets,
)


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
    `class_indices`, `slice_targets`) gives one result with ``applicable`` False,
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
            % quoted(requirement.expr)
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
        targets = slice_targets(requirement, inputs, min_slice_size)
        classes = class_indices(requirement, inputs)
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
            "%s: run %r at step %d %s" % (quoted(requirement.expr), inputs.run, inputs.step, error)
        ) from None


def _baseline_value(requirement, baseline, label, index, where):
    """The baseline run's value of the requirement's metric for the class ``label``, on the
    same slice ``where`` (None: the whole run).
    """
    if where is not None:
        baseline = baseline_slice(requirement, baseline, where)
    if index is not None and index != MACRO:
        names = list(baseline.class_names)
        if label not in names:
            raise GateError(
                "%s: the baseline run %r has no class %r; %s"
                % (quoted(requirement.expr), baseline.run, label, no_such_name(label, names))
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
        check_slice_exists(requirement, slice_values)
        if requirement.cls is None:
            raise GateError(
                "%s: %s is per class and no run checked is binary: write %s[NAME], %s[*] or"
                " %s[macro]" % (quoted(requirement.expr), *(requirement.metric,) * 4)
            )
        raise GateError(
            "%s: no run checked has a class %r; %s"
            % (
                quoted(requirement.expr),
                requirement.cls,
                no_such_name(requirement.cls, sorted(class_names)),
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

"""Requirements scoped to slices (``@KEY=VALUE``, ``@KEY=*``): which slices of a run one
checks, the baseline's same slice, and whether a slice named applies to any run. Pure: no I/O.
"""

from tb_metricsdiag.diagnostics import slices as weak_slice_rule
from tb_metricsdiag.gates.language import EVERY_VALUE, GateError, no_such_name, quoted
from tb_metricsdiag.gates.run_values import NotApplicable

MIN_SLICE_SIZE = weak_slice_rule.MIN_SLICE_ROWS
"""Rows a slice needs to be checked by ``@KEY=*`` (``--min-slice-size``), those the rule
``weak_slice`` needs to judge one: fewer, and its figures are too uncertain to gate on."""


def slice_targets(requirement, inputs, min_slice_size):
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


def baseline_slice(requirement, baseline, where):
    """The `GateInputs` of the baseline run's slice ``where`` (``{"key", "value"}``).

    Raises:
      GateError: the baseline run has no such slice.
    """
    scoped = (baseline.slices or {}).get(where["key"], {}).get(where["value"])
    if scoped is None:
        raise GateError(
            "%s: the baseline run %r has no slice %s=%r"
            % (quoted(requirement.expr), baseline.run, where["key"], where["value"])
        )
    return scoped


def check_slice_exists(requirement, slice_values):
    """Raise a usage error when ``requirement`` names a slice key or value that no run checked
    has (`evaluation.check_applicable`, for a requirement that applied to none).

    Args:
      requirement: the `Requirement`.
      slice_values: ``{key: set of values}`` of the slices of every run checked.

    Raises:
      GateError: quoting the requirement and the closest keys or values.
    """
    key, value = requirement.slice_key, requirement.slice_value
    if key is not None and key not in slice_values:
        if not slice_values:
            raise GateError(
                "%s: no run checked has slices at the step checked (record them with"
                " groups={%r: one value per row})" % (quoted(requirement.expr), key)
            )
        raise GateError(
            "%s: no run checked has slices by key %r; %s"
            % (quoted(requirement.expr), key, no_such_name(key, sorted(slice_values), "keys"))
        )
    if key is not None and value != EVERY_VALUE and value not in slice_values[key]:
        raise GateError(
            "%s: no run checked has a slice %s=%r; %s"
            % (
                quoted(requirement.expr),
                key,
                value,
                no_such_name(value, sorted(slice_values[key]), "values of %s" % key),
            )
        )

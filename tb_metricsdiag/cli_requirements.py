"""``report --require`` and ``--baseline``: what each requirement needs read of a run (its
validation counts at a step, the AP, ECE, label issues, slices) as `gates.GateInputs`, and the
requirements checked on every run, a problem the user can fix being a `UsageError`.
"""

import contextlib
import dataclasses
import os

from tb_metricsdiag import cli_runs, gates
from tb_metricsdiag.cli_runs import GATE_SPLIT, UsageError, open_logdir
from tb_metricsdiag.report_formats import safe_text


@contextlib.contextmanager
def gate_errors_as_usage_errors():
    """A `gates.GateError` raised inside, as the `UsageError` of its message."""
    try:
        yield
    except gates.GateError as error:
        raise UsageError(safe_text(error)) from error


@dataclasses.dataclass(frozen=True)
class GateNeeds:
    """What the requirements read of a run besides its counts (`gate_needs`)."""

    average_precision: bool
    label_issues: bool
    ece_of_slices: bool
    slice_keys: tuple


def gate_needs(requirements):
    """The `GateNeeds` of ``requirements``."""
    return GateNeeds(
        average_precision=gates.needs_average_precision(requirements),
        label_issues=gates.needs_label_issues(requirements),
        ece_of_slices=any(r.metric == "ece" and r.slice_key for r in requirements),
        slice_keys=tuple(gates.slice_keys(requirements)),
    )


def _inputs_of(evaluation, run, step, **extra):
    """`gates.GateInputs` of a `SplitEvaluation`'s counts and AP (``extra``: the other fields)."""
    return gates.GateInputs(
        run=run,
        step=step,
        class_names=list(evaluation.class_names),
        confusion=evaluation.decision_counts,
        average_precision=evaluation.average_precision,
        exact_matches=evaluation.exact_matches,
        **extra,
    )


def _gate_inputs(reader, run, step, needs):
    """`gates.GateInputs` of ``run``'s validation split at ``step`` (None: the latest), with
    what the requirements need (`GateNeeds`): the AP, the label issues, the slices of their
    keys.

    Raises:
      UsageError: the run has no validation counts at ``step``, or they cannot be read.
    """
    from tensorboard import errors

    from tb_metricsdiag.format import schema

    try:
        evaluation = reader.evaluation(run, GATE_SPLIT, step, with_pr=needs.average_precision)
    except errors.NotFoundError as error:
        where = "cannot check the requirements" if step is None else "--step %d" % step
        raise UsageError("%s: %s" % (where, safe_text(error))) from error
    except schema.FormatError as error:
        raise UsageError(
            "cannot check the requirements on run %s: %s" % (safe_text(run), safe_text(error))
        ) from error
    return _inputs_of(
        evaluation,
        run,
        evaluation.step,
        ece=_expected_calibration_error(reader, run, evaluation.step),
        label_issues=_label_issue_counts(reader, run, evaluation.step)
        if needs.label_issues
        else None,
        slices=_slice_inputs(reader, run, evaluation.step, needs) if needs.slice_keys else None,
    )


def _slice_inputs(reader, run, step, needs):
    """``{key: {value: GateInputs}}`` of ``run``'s validation slices at ``step``: each slice's
    own counts, with its AP (of its threshold counts) and ECE where the requirements read them
    (on the keys of ``needs``); an empty dict when the run has no slices at that step. Every
    key is there, so that a key no requirement names can be named as the closest.

    Raises:
      UsageError: the stored slices cannot be read.
    """
    from tensorboard import errors

    from tb_metricsdiag.backend import record_decoding
    from tb_metricsdiag.core import calibration
    from tb_metricsdiag.format import schema

    try:
        _, by_key = reader.slices(run, GATE_SPLIT, step)
    except errors.NotFoundError:  # no slices (UnknownSlice), or none at that step
        return {}
    except schema.FormatError as error:
        raise UsageError(
            "cannot check the requirements on the slices of run %s: %s"
            % (safe_text(run), safe_text(error))
        ) from error
    found = {}
    for key, by_value in by_key.items():
        named = key in needs.slice_keys
        for value, evaluation in by_value.items():
            if named and needs.average_precision and evaluation.tp is not None:
                evaluation = record_decoding.with_grid_ap(evaluation)
            ece = None
            if named and needs.ece_of_slices:
                _, bins = reader.calibration(run, GATE_SPLIT, step, slice=(key, value))
                ece = calibration.calibration_error(*bins)
            found.setdefault(key, {})[value] = _inputs_of(
                evaluation, "%s (slice %s=%s)" % (run, key, value), step, ece=ece
            )
    return found


def _label_issue_counts(reader, run, step):
    """``(flagged, examples)`` of ``run``'s validation label issues at ``step``, or None
    without readable ones.
    """
    from tensorboard import errors

    from tb_metricsdiag.format import schema

    try:
        issues = reader.label_issues(run, GATE_SPLIT, step).issues
    except (errors.NotFoundError, schema.FormatError):
        return None
    return issues.count, issues.examples


def _expected_calibration_error(reader, run, step):
    """The validation ECE of ``run`` at ``step``, or None without readable calibration bins."""
    from tensorboard import errors

    from tb_metricsdiag.core import calibration
    from tb_metricsdiag.format import schema

    try:
        _, bins = reader.calibration(run, GATE_SPLIT, step)
    except (errors.NotFoundError, schema.FormatError):
        return None
    return calibration.calibration_error(*bins)


def baseline_inputs(spec, reader, indices, requirements):
    """``(GateInputs, run name under LOGDIR or None)`` of ``--baseline``: a run under LOGDIR,
    else a logdir (local or URL) holding exactly one run with validation counts.
    """
    needs = gate_needs(requirements)
    if spec in indices:
        return _gate_inputs(reader, spec, None, needs), spec
    if not (cli_runs.scheme_of(spec) or os.path.exists(spec)):
        closest = gates.closest_names(spec, sorted(indices))
        raise UsageError(
            "--baseline %s: no run of that name under LOGDIR%s, and no logdir at that path"
            % (safe_text(spec), "" if not closest else " (closest: %s)" % ", ".join(closest))
        )
    other_reader, other_indices = open_logdir(spec)
    runs = [run for run, index in other_indices.items() if GATE_SPLIT in index.splits]
    if len(runs) != 1:
        raise UsageError(
            "--baseline %s: a baseline logdir must hold one run with validation counts, it"
            " holds %d" % (safe_text(spec), len(runs))
        )
    inputs = _gate_inputs(other_reader, runs[0], None, needs)
    inputs.run = spec if runs[0] == cli_runs.folder_name(spec) else "%s (%s)" % (spec, runs[0])
    return inputs, None


def check_requirements(
    reports,
    reader,
    indices,
    requirements,
    step,
    baseline,
    by_interval,
    min_slice_size=gates.MIN_SLICE_SIZE,
):
    """Add ``"requirements"`` (`gates.evaluate_all`) to each report of a run with validation
    counts, ``"requirements_skipped"`` (why) to the others.

    A requirement that does not apply to a run (a class, slice key or value it lacks) is
    listed as not applicable there (`gates.evaluate`); a slice of ``@KEY=*`` with fewer than
    ``min_slice_size`` rows as skipped.

    Raises:
      UsageError: a requirement cannot be checked on a run or applies to none
        (`gates.GateError`), or no run has validation counts.
    """
    needs = gate_needs(requirements)
    checked, class_names, slice_values = [], set(), {}
    for report in reports:
        index = indices[report["run"]]
        if GATE_SPLIT not in index.splits:
            report["requirements_skipped"] = "no %s counts" % GATE_SPLIT
            continue
        inputs = _gate_inputs(reader, report["run"], step, needs)
        with gate_errors_as_usage_errors():
            report["requirements"] = gates.evaluate_all(
                requirements, inputs, baseline, by_interval, min_slice_size
            )
        checked.extend(report["requirements"])
        class_names.update(inputs.class_names)
        for key, by_value in (inputs.slices or {}).items():
            slice_values.setdefault(key, set()).update(by_value)
    if not checked:
        raise UsageError(
            "no run has %s counts to check --require on (runs written by"
            " keras.callbacks.TensorBoard alone have none)" % GATE_SPLIT
        )
    with gate_errors_as_usage_errors():
        gates.check_applicable(requirements, checked, class_names, slice_values)

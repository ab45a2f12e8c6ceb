"""``tb-metricsdiag report LOGDIR``: the diagnostics of every run, without a TensorBoard server.

Exit status: 0 when no finding is at or above ``--fail-on`` (default ``error``) and every
``--require`` holds, 1 when a finding is or a requirement fails, 2 for a usage error (a
requirement that cannot be checked, a ``--run`` that selects nothing) or a LOGDIR that does not
exist, cannot be read or holds no runs.

LOGDIR may be any path TensorBoard reads: a local directory, ``s3://bucket/prefix`` or
``gs://bucket/prefix`` (see `console_main` for which file-system layer reads which).
"""

import argparse
import dataclasses
import importlib.util
import os
import sys
import types

from tb_metricsdiag import cli_runs, diagnostics, gates, html_report, report_formats
from tb_metricsdiag.cli_runs import SILENT, UsageError, open_logdir
from tb_metricsdiag.report_formats import SEVERITY_RANK, safe_text

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

FORMATS = ("text", "json", "markdown", "junit", "csv", "html")

# The split and the file-system schemes the requirements and logdirs use.
GATE_SPLIT = "validation"
TENSORFLOW_FREE_SCHEMES = ("", "s3")


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s: %s (see %s --help)" % (self.prog, message, self.prog))


def _parser():
    parser = _ArgumentParser(
        prog="tb-metricsdiag",
        description="Diagnose classifiers from the event files under a TensorBoard logdir: any"
        " model the tb-metricsdiag writers record (the Keras and Lightning callbacks,"
        " MetricsDiagWriter in any training loop).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="print the findings of every run under LOGDIR",
        description="Print the findings of every run under LOGDIR.",
    )
    report.add_argument("logdir", metavar="LOGDIR", help="directory TensorBoard would serve")
    report.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="GLOB",
        help="report only the runs whose name (as listed) matches GLOB, e.g. 'sweep/*'"
        " (repeatable; fnmatch: * ? [seq])",
    )
    report.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output format (default: text); markdown for a CI job summary, junit for CI test"
        " reports, csv for per-class metrics per run and split, html for one self-contained page"
        " with each run's findings, requirements, confusion matrix, PR curves, calibration and"
        " curves (a CI artifact)",
    )
    report.add_argument(
        "--output",
        metavar="FILE",
        help="write the report to FILE instead of standard output",
    )
    report.add_argument(
        "--fail-on",
        choices=tuple(SEVERITY_RANK),
        default="error",
        help="exit with status 1 when a finding is at or above this severity (default: error)",
    )
    report.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="EXPR",
        help="a requirement every run with counts must meet, e.g. 'recall[fraud] >= 0.9',"
        " 'f1[*] >= 0.6', 'ap[macro] > 0.8', 'recall[fraud] >= baseline - 0.02'"
        " (repeatable; a failed one exits with status 1)",
    )
    report.add_argument(
        "--step",
        type=int,
        metavar="N",
        help="check the requirements, list the examples and report the csv metrics, at step N"
        " (default: each run's latest validation step; csv: each split's latest step)",
    )
    report.add_argument(
        "--examples",
        type=int,
        metavar="N",
        help="list per run the N most confident validation errors and the first N label"
        " issues (the least likely given label first), at the latest step or --step"
        " (text, json and markdown; runs recorded with example records)",
    )
    report.add_argument(
        "--baseline",
        metavar="RUN",
        help="compare each requirement with this run (a run under LOGDIR, which is then not"
        " checked itself, or a logdir holding one run), at its latest validation step",
    )
    report.add_argument(
        "--min-slice-size",
        type=int,
        metavar="N",
        help="check a requirement on METRIC@KEY=* only on the slices of at least N rows; smaller"
        " ones are listed as skipped (default: %d)" % gates.MIN_SLICE_SIZE,
    )
    report.add_argument(
        "--by-interval",
        action="store_true",
        help="fail a requirement on a proportion (accuracy, a class's precision or recall) only"
        " when its whole Wilson 95%% interval is on the wrong side of the bound",
    )
    return parser


def collect_reports(reader, indices, progress=SILENT):
    """``[{"run", "findings", "not_run"}]`` for every run of ``indices`` (`open_logdir`), sorted
    by run (``not_run``: the rules that could not run, ``[{"rule", "reason", "how"}]``).
    """
    reports = []
    for done, run in enumerate(sorted(indices), 1):
        try:
            findings, not_run = diagnostics.evaluate(reader.history(run, indices[run]))
        except Exception as error:  # One unreadable run must not hide the others.
            findings, not_run = [_unreadable_run_finding(error)], []
        reports.append({"run": run, "findings": findings, "not_run": not_run})
        progress.runs("diagnosed", done, len(indices))
    return reports


def _unreadable_run_finding(error):
    return diagnostics.finding(
        "recording_problem",
        "error",
        title="The run could not be read",
        detail="%s: %s" % (type(error).__name__, error),
        evidence={"error": type(error).__name__},
        suggestion="Check that the event files are complete and were written by a compatible"
        " tb-metricsdiag version.",
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
    return gates.GateInputs(
        run=run,
        step=evaluation.step,
        class_names=list(evaluation.class_names),
        confusion=evaluation.matrices if evaluation.multilabel else evaluation.confusion,
        average_precision=evaluation.average_precision,
        ece=_expected_calibration_error(reader, run, evaluation.step),
        exact_matches=evaluation.exact_matches,
        label_issues=_label_issue_counts(reader, run, evaluation.step)
        if needs.label_issues
        else None,
        slices=_slice_inputs(reader, run, evaluation.step, needs) if needs.slice_keys else None,
    )


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
            found.setdefault(key, {})[value] = gates.GateInputs(
                run="%s (slice %s=%s)" % (run, key, value),
                step=step,
                class_names=list(evaluation.class_names),
                confusion=evaluation.matrices if evaluation.multilabel else evaluation.confusion,
                average_precision=evaluation.average_precision,
                ece=ece,
                exact_matches=evaluation.exact_matches,
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


def _baseline_inputs(spec, reader, indices, requirements):
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
        try:
            report["requirements"] = gates.evaluate_all(
                requirements, inputs, baseline, by_interval, min_slice_size
            )
        except gates.GateError as error:
            raise UsageError(safe_text(error)) from error
        checked.extend(report["requirements"])
        class_names.update(inputs.class_names)
        for key, by_value in (inputs.slices or {}).items():
            slice_values.setdefault(key, set()).update(by_value)
    if not checked:
        raise UsageError(
            "no run has %s counts to check --require on (runs written by"
            " keras.callbacks.TensorBoard alone have none)" % GATE_SPLIT
        )
    try:
        gates.check_applicable(requirements, checked, class_names, slice_values)
    except gates.GateError as error:
        raise UsageError(safe_text(error)) from error


def per_class_rows(reader, indices, step, problems):
    """``[{"run", "split", "step", "class", "precision", "recall", "f1", "support"}]``: every
    class (label) of every split with counts of every run of ``indices``, at ``step`` (None:
    each split's latest), sorted by run; per-class metrics as `/confusion` gives them
    (`metrics.per_class_metrics`, NaN where undefined). A split without ``step`` is left out;
    so is one whose counts cannot be read, said in ``problems`` (a list of lines), so that one
    damaged run does not hide the others.

    Raises:
      UsageError: a run with counts has none at ``step``.
    """
    from tensorboard import errors

    from tb_metricsdiag.core import metrics
    from tb_metricsdiag.format import schema

    rows = []
    for run in sorted(indices):
        splits = indices[run].splits
        found = 0
        for split in splits:
            try:
                evaluation = reader.evaluation(run, split, step, with_pr=False)
            except errors.NotFoundError:
                continue  # no counts at that step in this split
            except schema.FormatError as error:
                found += 1
                problems.append(
                    "tb-metricsdiag: left out the %s counts of run %s, which cannot be read: %s"
                    % (safe_text(split), safe_text(run), safe_text(error))
                )
                continue
            found += 1
            counts = evaluation.matrices if evaluation.multilabel else evaluation.confusion
            per_class = metrics.per_class_metrics(counts)
            for k, name in enumerate(evaluation.class_names):
                rows.append(
                    {
                        "run": run,
                        "split": split,
                        "step": evaluation.step,
                        "class": name,
                        **{key: per_class[key][k] for key in report_formats.CSV_COLUMNS[4:]},
                    }
                )
        if splits and not found and step is not None:
            raise UsageError(
                "--step %d: run %s has no counts at that step" % (step, safe_text(run))
            )
    return rows


# The most examples ``--examples`` lists of each kind per run (the label issues the writers
# store per epoch).
MAX_EXAMPLES = 1000

# Formats that list ``--examples``.
EXAMPLE_FORMATS = ("text", "json", "markdown")


def collect_examples(reports, reader, indices, limit, step):
    """Add ``"examples"`` to each report of a run with validation example records: at ``step``
    (None: the latest), ``{"split", "step", "errors", "label_issues"}`` with the ``limit`` most
    confident errors (`example_views.confident_errors_view`) and the first ``limit`` label issues
    (`example_views.label_issues_view`; None for a multi-label run, with ``label_issues_skipped``);
    the other reports get ``"examples_skipped"`` (why, and how to record them).
    """
    from tensorboard import errors

    from tb_metricsdiag.backend import example_views
    from tb_metricsdiag.format import schema

    for report in reports:
        run = report["run"]
        if GATE_SPLIT not in indices[run].splits:
            report["examples_skipped"] = "no %s counts" % GATE_SPLIT
            continue
        try:
            records = reader.examples(run, GATE_SPLIT, step)
            previews = reader.previews(run, GATE_SPLIT)
        except (errors.NotFoundError, schema.FormatError) as error:
            report["examples_skipped"] = str(error)
            _note_damaged_records(report, error)
            continue
        found = {"split": GATE_SPLIT, "step": records.step}
        found["errors"] = _without_run(
            example_views.confident_errors_view(run, records, previews, limit)
        )
        try:
            issues = reader.label_issues(run, GATE_SPLIT, records.step)
            found["label_issues"] = _without_run(
                example_views.label_issues_view(run, issues, previews, limit)
            )
        except (errors.NotFoundError, schema.FormatError) as error:
            # Damaged label issues are already an error of the diagnostics, which read them.
            found["label_issues"], found["label_issues_skipped"] = None, str(error)
        for problem in previews[1]:
            _note_damaged_records(report, schema.FormatError(problem))
        report["examples"] = found


def _note_damaged_records(report, error):
    """A damaged run fails CI: example records or previews refused (not merely absent) are an
    error among the run's findings.
    """
    from tb_metricsdiag.diagnostics import recording
    from tb_metricsdiag.format import schema

    if isinstance(error, schema.FormatError):
        report["findings"] = diagnostics.sort_findings(
            report["findings"] + [recording.damaged_example_records(str(error))]
        )


def _without_run(view):
    """A route's document without what the report says once per run: its run, split, step."""
    return {key: value for key, value in view.items() if key not in ("run", "split", "step")}


def exit_status(reports, fail_on):
    """1 when a finding is at or above the ``fail_on`` severity or a requirement failed,
    else 0.
    """
    threshold = SEVERITY_RANK[fail_on]
    failed = any(
        SEVERITY_RANK[finding["severity"]] >= threshold
        for report in reports
        for finding in report["findings"]
    )
    failed = failed or report_formats.requirement_totals(reports)[1] > 0
    return EXIT_FINDINGS if failed else EXIT_OK


def _report(args, progress):
    """``(output, exit status)`` of the ``report`` command. Raises `UsageError`."""
    try:
        requirements = gates.parse_requirements(args.require)
    except gates.GateError as error:
        raise UsageError(safe_text(error)) from error
    if not requirements and args.baseline is not None:
        raise UsageError("--baseline applies to --require: give at least one")
    if args.min_slice_size is not None:
        if not any(r.slice_value == gates.EVERY_VALUE for r in requirements):
            raise UsageError(
                "--min-slice-size applies to --require METRIC@KEY=* OP NUMBER: give one"
            )
        if args.min_slice_size < 1:
            raise UsageError("--min-slice-size must be at least 1, got %d" % args.min_slice_size)
    if args.examples is not None:
        if not 1 <= args.examples <= MAX_EXAMPLES:
            raise UsageError(
                "--examples must be between 1 and %d, got %d" % (MAX_EXAMPLES, args.examples)
            )
        if args.format not in EXAMPLE_FORMATS:
            raise UsageError(
                "--examples is listed by --format %s, not %s"
                % (", ".join(EXAMPLE_FORMATS), args.format)
            )
    if (
        not requirements
        and args.step is not None
        and args.format != "csv"
        and args.examples is None
    ):
        raise UsageError(
            "--step applies to --require (give at least one), --examples and --format csv"
        )
    skipped = []
    keep = () if args.baseline is None else (args.baseline,)
    reader, indices = open_logdir(args.logdir, skipped, args.run, progress, keep)
    baseline, baseline_doc = None, None
    if args.baseline is not None:
        baseline, own_run = _baseline_inputs(args.baseline, reader, indices, requirements)
        baseline_doc = {"run": baseline.run, "step": baseline.step}
        if own_run is not None:  # the baseline is compared with, not checked
            indices = {run: index for run, index in indices.items() if run != own_run}
            if not indices:
                raise UsageError("LOGDIR holds no run besides the baseline %s" % own_run)
    reports = collect_reports(reader, indices, progress)
    if args.examples is not None:
        collect_examples(reports, reader, indices, args.examples, args.step)
    if requirements:
        check_requirements(
            reports,
            reader,
            indices,
            requirements,
            args.step,
            baseline,
            args.by_interval,
            gates.MIN_SLICE_SIZE if args.min_slice_size is None else args.min_slice_size,
        )
    if args.format == "json":
        output = report_formats.format_json(reports, baseline_doc, skipped)
    elif args.format == "markdown":
        output = report_formats.format_markdown(reports, baseline_doc)
    elif args.format == "junit":
        output = report_formats.format_junit(reports, args.fail_on)
    elif args.format == "html":
        runs = html_report.collect_runs(reader, indices, reports, progress)
        output = html_report.format_html(runs, args.logdir, skipped)
    elif args.format == "csv":
        problems = []
        output = report_formats.format_csv(per_class_rows(reader, indices, args.step, problems))
        progress.clear()
        for problem in problems:
            print(problem, file=sys.stderr)
    else:
        output = report_formats.format_text(
            reports, color=cli_runs.use_color(sys.stdout), baseline=baseline_doc, skipped=skipped
        )
    return output, exit_status(reports, args.fail_on)


def main(argv=None):
    """Run the command line; returns the exit status (console scripts pass it to sys.exit)."""
    parser = _parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit:  # --help
            return exit.code if isinstance(exit.code, int) else EXIT_USAGE
        if args.command is None:
            raise UsageError(
                "tb-metricsdiag: a command is needed, e.g. tb-metricsdiag report LOGDIR"
            )
        progress = cli_runs.Progress(sys.stderr)
        try:
            output, status = _report(args, progress)
        finally:
            progress.clear()
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as handle:
                handle.write(output)
        except OSError as error:
            print(
                "tb-metricsdiag: cannot write --output %s: %s"
                % (safe_text(args.output), safe_text(error.strerror or error)),
                file=sys.stderr,
            )
            return EXIT_USAGE
        return status
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return status


def _tensorflow_free(paths):
    """Whether TensorBoard's TensorFlow-free file layer should read ``paths``: local paths and
    ``s3://`` (with boto3) it reads itself; any other scheme goes to TensorFlow's file systems
    when TensorFlow is installed (TensorFlow reads ``gs://`` natively; the stub would need
    fsspec's gcsfs).
    """
    with_tensorflow = importlib.util.find_spec("tensorflow") is not None
    for path in paths:
        scheme = cli_runs.scheme_of(path)
        if scheme == "s3" and importlib.util.find_spec("boto3") is None:
            return False  # TensorFlow with tensorflow-io may still read it
        if scheme not in TENSORFLOW_FREE_SCHEMES and with_tensorflow:
            return False
    return True


def console_main():
    """Console-script entry point: `main`, reading with TensorBoard's TensorFlow-free file layer
    where it can (`_tensorflow_free`).

    TensorBoard reads event files with its own stub when the module
    ``tensorboard.compat.notf`` exists (its documented no-TensorFlow switch). That stub reads
    local paths and ``s3://`` (through boto3: credentials as boto3 finds them, another endpoint
    in ``S3_ENDPOINT``), which TensorFlow itself no longer reads without tensorflow-io; and
    importing TensorFlow only to read files would add seconds to every CI call. Other schemes
    (``gs://``, ``hdfs://``) go through TensorFlow's file systems when it is installed, else
    through the stub's fsspec fallback.
    """
    args = sys.argv[1:]
    paths = []
    if not {"-h", "--help"} & set(args):
        try:
            known, _ = _parser().parse_known_args(args)
            paths = [getattr(known, "logdir", None), getattr(known, "baseline", None)]
        except UsageError:  # main reports it
            pass
    if _tensorflow_free([path for path in paths if path]):
        sys.modules.setdefault(
            "tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf")
        )
    else:  # TensorFlow's C++ log lines (credentials lookups, CPU features) are not the report's
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return main(args)


if __name__ == "__main__":
    sys.exit(console_main())

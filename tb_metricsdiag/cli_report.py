"""What ``tb-metricsdiag report`` computes once its options are checked: the runs read, each
diagnosed (`collect_reports`), its requirements checked and examples listed, and the output
of the format asked for (`build_report`).
"""

import sys

from tb_metricsdiag import cli_runs, diagnostics, gates, html_report, report_formats
from tb_metricsdiag.cli_examples import collect_examples
from tb_metricsdiag.cli_requirements import baseline_inputs, check_requirements
from tb_metricsdiag.cli_runs import SILENT, UsageError, open_logdir
from tb_metricsdiag.report_formats import safe_text


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
            per_class = metrics.per_class_metrics(evaluation.decision_counts)
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


def build_report(args, requirements, progress=SILENT):
    """``(output, reports)`` of the ``report`` command with the parsed arguments ``args`` and
    ``requirements`` (checked by the command line): the output of ``args.format`` and the
    reports it was made of (`collect_reports`, with requirements and examples).

    Raises:
      UsageError: LOGDIR (or the baseline) cannot be read or holds no runs, or a requirement
        cannot be checked.
    """
    skipped = []
    keep = () if args.baseline is None else (args.baseline,)
    reader, indices = open_logdir(args.logdir, skipped, args.run, progress, keep)
    baseline, baseline_doc = None, None
    if args.baseline is not None:
        baseline, own_run = baseline_inputs(args.baseline, reader, indices, requirements)
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
    return output, reports

"""``report --examples``: per run, the most confident validation errors and the label issues
at a step, read from the example records, as the routes give them.
"""

from tb_metricsdiag import diagnostics
from tb_metricsdiag.cli_runs import GATE_SPLIT

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

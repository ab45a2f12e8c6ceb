"""The text output of the report: for a terminal or a CI log. Pure: no I/O."""

from tb_metricsdiag.report_formats.common import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
    at_epoch,
    interval,
    number,
    safe_text,
    subject,
    summary_line,
    verdict,
)
from tb_metricsdiag.report_formats.examples import (
    error_cells,
    errors_heading,
    issue_cells,
    issues_heading,
    preview_text,
)

ANSI_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
ANSI_RESET = "\033[0m"

TEXT_VERDICTS = {PASSED: "PASS", FAILED: "FAIL", NOT_APPLICABLE: "N/A ", SKIPPED: "SKIP"}


def text_result(result):
    if verdict(result) in (NOT_APPLICABLE, SKIPPED):
        return "%s: %s, %s" % (
            safe_text(subject(result)),
            verdict(result),
            safe_text(result["reason"]),
        )
    text = "%s: %s" % (safe_text(subject(result)), number(result["value"]))
    if "slice" in result:
        text += " on %d rows" % result["slice"]["support"]
    if result.get("lower") is not None:
        text += " (95%% interval %s)" % interval(result)
    text += ", bound %s" % number(result["bound"])
    if "baseline" in result:
        text += ", baseline %s" % number(result["baseline"])
    if "judged_on" in result:
        text += ", judged on the interval's %s end" % result["judged_on"]
    return text


def text_examples(report):
    """The text lines of a report's examples (`format_text`)."""
    if "examples_skipped" in report:
        return ["  examples not listed: %s" % safe_text(report["examples_skipped"])]
    found = report.get("examples")
    if found is None:
        return []
    lines = ["  examples at epoch %d (%s):" % (found["step"], safe_text(found["split"]))]
    lines.append("    %s:" % errors_heading(found["errors"]))
    for example in found["errors"]["examples"]:
        cells = [safe_text(cell) for cell in error_cells(example)]
        lines.append("      %s  %s  %s  %s" % (*cells, safe_text(preview_text(example["preview"]))))
    issues = found["label_issues"]
    if issues is None:
        lines.append("    label issues not listed: %s" % safe_text(found["label_issues_skipped"]))
        return lines
    lines.append("    %s:" % issues_heading(issues))
    for example in issues["examples"]:
        key, given, suggested = (safe_text(cell) for cell in issue_cells(example))
        lines.append(
            "      %s  given %s, suggested %s  %s"
            % (key, given, suggested, safe_text(preview_text(example["preview"])))
        )
    return lines


def format_text(reports, color=False, baseline=None, skipped=()):
    """Human-readable report: runs in order, findings worst first, the rules that could not
    run, requirements, examples, what the walk for runs skipped (`logdir.find_runs`), a
    summary.
    """

    def paint(severity, text):
        return ANSI_COLORS[severity] + text + ANSI_RESET if color else text

    lines = []
    if baseline is not None:
        lines += ["baseline run %s at step %d" % (safe_text(baseline["run"]), baseline["step"]), ""]
    for report in reports:
        lines.append("run %s" % safe_text(report["run"]))
        if not report["findings"]:
            lines.append("  no findings")
        for finding in report["findings"]:
            lines.append(
                "  %s %s%s: %s"
                % (
                    paint(finding["severity"], finding["severity"].upper().ljust(7)),
                    safe_text(finding["rule"]),
                    at_epoch(finding),
                    safe_text(finding["title"]),
                )
            )
            lines.append("          %s" % safe_text(finding["detail"]))
            lines.append("          fix: %s" % safe_text(finding["suggestion"]))
        for not_run in report.get("not_run", ()):
            lines.append(
                "  not run %s: %s" % (safe_text(not_run["rule"]), safe_text(not_run["reason"]))
            )
            if not_run.get("how"):
                lines.append("          to check it: %s" % safe_text(not_run["how"]))
        if "requirements_skipped" in report:
            lines.append(
                "  requirements not checked: %s" % safe_text(report["requirements_skipped"])
            )
        results = report.get("requirements", ())
        if results:
            lines.append("  requirements at step %d:" % results[0]["step"])
        for result in results:
            shown = TEXT_VERDICTS[verdict(result)]
            shown = paint("error", shown) if verdict(result) == FAILED else shown
            lines.append("    %s %s" % (shown, text_result(result)))
        lines += text_examples(report)
        lines.append("")
    for entry in skipped:
        shown = ", ".join(safe_text(path) for path in entry["paths"])
        more = entry["count"] - len(entry["paths"])
        lines.append(
            "skipped %d %s: %s%s"
            % (entry["count"], entry["reason"], shown, " and %d more" % more if more else "")
        )
    lines.append(summary_line(reports))
    return "\n".join(lines) + "\n"

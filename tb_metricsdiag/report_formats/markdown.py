"""The Markdown output of the report: GitHub-flavoured, for a CI job summary. Pure: no I/O."""

import string

from tb_metricsdiag.report_formats.common import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
    interval,
    number,
    safe_text,
    slice_text,
    summary_line,
    verdict,
    worst_first_findings,
    worst_first_results,
)
from tb_metricsdiag.report_formats.examples import (
    error_cells,
    errors_heading,
    issue_cells,
    issues_heading,
    preview_text,
)

# Markdown escapes (`markdown_text`), each with a backslash (CommonMark escapes any ASCII
# punctuation). Always: the cell separator and the code-span quote.
MARKDOWN_ALWAYS = set("|`")
# Delimiters that act only in pairs (emphasis, strikethrough, GitHub's math): escaped where a
# text holds two or more of one; an underscore inside a word never acts and stays as it is.
MARKDOWN_PAIRED = set("*_~$")
# What may follow "<" to open HTML (a tag, a closing tag, a comment or declaration, a
# processing instruction) or an autolink; "<" before a space, a digit or "=" is just less-than.
HTML_OPENERS = "/!?"
ASCII_PUNCTUATION = set(string.punctuation)


def markdown_text(value):
    """``value`` as the text of one GitHub-flavoured Markdown table cell: on one line, with
    only what could break the table or add markup escaped (a pipe, a backtick, a backslash
    before punctuation, "<" that could open HTML or an autolink, "&" that could start an
    entity, "](" of a link or image, delimiters that could pair), so that ordinary text and
    expressions (``balanced_accuracy >= 0.7``, ``f1[*] < 0.6``) read as they are.
    """
    text = safe_text(value)
    paired = {char for char in MARKDOWN_PAIRED if text.count(char) > 1}
    out = []
    for position, char in enumerate(text):
        before = text[position - 1] if position else " "
        after = text[position + 1] if position + 1 < len(text) else " "
        escape = (
            char in MARKDOWN_ALWAYS
            or (char == "\\" and after in ASCII_PUNCTUATION)
            or (char == "<" and (after.isalpha() or after in HTML_OPENERS))
            or (char == "&" and (after.isalnum() or after == "#"))
            or (char == "]" and after == "(")
            or (char in paired and not (char == "_" and before.isalnum() and after.isalnum()))
        )
        out.append("\\" + char if escape else char)
    return "".join(out)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


MARKDOWN_VERDICTS = {PASSED: "pass", FAILED: "**FAIL**", NOT_APPLICABLE: "n/a", SKIPPED: "skipped"}


def format_markdown(reports, baseline=None):
    """A GitHub-flavoured Markdown report for a CI job summary: a summary line, then the
    requirements and the findings as tables, worst first (failed requirements by how far they
    miss their bound; findings by severity), then the examples of each run, when asked for.
    """
    checked = any("requirements" in report for report in reports)
    lines = ["## tb-metricsdiag report", "", summary_line(reports), ""]
    if baseline is not None:
        lines += [
            "Baseline: run %s at step %d" % (markdown_text(baseline["run"]), baseline["step"]),
            "",
        ]
    if checked:
        sliced = any("slice" in result for _, result in worst_first_results(reports))
        header = ["result", "run", "requirement", "class"] + (["slice", "rows"] if sliced else [])
        header += ["step", "value", "95% interval", "bound"]
        header += ["baseline"] if baseline is not None else []
        rows = []
        for run, result in worst_first_results(reports):
            where = result.get("slice")
            row = [
                MARKDOWN_VERDICTS[verdict(result)],
                markdown_text(run),
                markdown_text(result["expr"]),
                "" if result["class"] is None else markdown_text(result["class"]),
            ]
            if sliced:
                row += ["", ""] if where is None else [markdown_text(slice_text(where))]
                row += [] if where is None else [str(where["support"])]
            row += [
                str(result["step"]),
                number(result["value"])
                if result["applicable"]
                else markdown_text("%s: %s" % (verdict(result), result["reason"])),
                interval(result),
                number(result["bound"]),
            ]
            if baseline is not None:
                row.append(number(result.get("baseline")))
            rows.append(row)
        lines += ["### Requirements", ""] + _table(header, rows) + [""]
        skipped = [report for report in reports if "requirements_skipped" in report]
        for report in skipped:
            lines.append(
                "- run %s not checked: %s"
                % (markdown_text(report["run"]), markdown_text(report["requirements_skipped"]))
            )
        lines += [""] if skipped else []
    findings = worst_first_findings(reports)
    lines += ["### Findings", ""]
    if findings:
        rows = [
            [
                finding["severity"],
                markdown_text(run),
                markdown_text(finding["rule"]),
                "" if finding["step"] is None else str(finding["step"]),
                markdown_text(finding["title"]),
                markdown_text(finding["suggestion"]),
            ]
            for run, finding in findings
        ]
        lines += _table(["severity", "run", "rule", "epoch", "title", "fix"], rows)
    else:
        lines.append("No findings.")
    examples = markdown_examples(reports)
    if examples:
        lines += ["", "### Examples", ""] + examples[:-1]
    return "\n".join(lines) + "\n"


def markdown_examples(reports):
    """The Markdown lines of the examples of every report (`format_markdown`)."""
    lines = []
    for report in reports:
        if "examples_skipped" in report:
            lines += [
                "- run %s: examples not listed: %s"
                % (markdown_text(report["run"]), markdown_text(report["examples_skipped"])),
                "",
            ]
            continue
        found = report.get("examples")
        if found is None:
            continue
        run = markdown_text(report["run"])
        lines += [
            "#### Run %s, epoch %d (%s): %s"
            % (run, found["step"], markdown_text(found["split"]), errors_heading(found["errors"])),
            "",
        ]
        rows = [
            [markdown_text(cell) for cell in error_cells(example)]
            + [markdown_text(preview_text(example["preview"]))]
            for example in found["errors"]["examples"]
        ]
        lines += _table(["id", "actual -> predicted", "score", "preview"], rows) + [""]
        issues = found["label_issues"]
        if issues is None:
            lines += [
                "Label issues not listed: %s" % markdown_text(found["label_issues_skipped"]),
                "",
            ]
            continue
        lines += ["Run %s: %s" % (run, markdown_text(issues_heading(issues))), ""]
        rows = [
            [markdown_text(cell) for cell in issue_cells(example)]
            + [markdown_text(preview_text(example["preview"]))]
            for example in issues["examples"]
        ]
        lines += _table(["id", "given", "suggested", "preview"], rows) + [""]
    return lines

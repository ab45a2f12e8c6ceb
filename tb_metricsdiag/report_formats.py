"""The outputs of ``tb-metricsdiag report``: text, JSON, Markdown, JUnit XML and CSV. Pure: no
I/O.

Each function takes the reports (``[{"run", "findings"}]``, with ``"requirements"`` (results of
`gates.evaluate`) when requirements were given, or ``"requirements_skipped"`` (why the run was
not checked); with ``"examples"`` (``{"split", "step", "errors", "label_issues"}``: the most
confident errors and the label issues, as the command line collects them) or
``"examples_skipped"`` when examples were asked for) and returns the whole output as one
string; `format_csv` takes per-class rows.
Every string from a run (its name, class names, finding texts) is untrusted: it is escaped for
the output's syntax, and control characters are printed as escapes (`safe_text`).
"""

import csv
import io
import json
import socket
import string
import time
import unicodedata
import xml.etree.ElementTree as ElementTree

from tb_metricsdiag import diagnostics, gates

# Ranks for --fail-on: a finding fails the run when its rank is at least the option's.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(reversed(diagnostics.SEVERITIES))}

ANSI_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
ANSI_RESET = "\033[0m"

# Unicode categories printed as escapes: control, format, surrogate, private, unassigned,
# and the line / paragraph separators.
UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")

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

DIGITS = 3  # decimals of the metric values in text and Markdown


def safe_text(value):
    """``value`` as one printable line: control characters (newlines included) escaped."""
    out = []
    for char in str(value):
        if unicodedata.category(char) in UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(
                "\\x%02x" % code
                if code < 0x100
                else "\\u%04x" % code
                if code < 0x10000
                else "\\U%08x" % code
            )
        else:
            out.append(char)
    return "".join(out)


def _number(value):
    return "n/a" if value is None else "%.*f" % (DIGITS, value)


def _interval(result):
    if result.get("lower") is None:
        return ""
    return "%s–%s" % (_number(result["lower"]), _number(result["upper"]))


def _slice_text(where):
    """``KEY=VALUE`` of a result's slice."""
    return "%s=%s" % (where["key"], where["value"])


def _subject(result):
    """The requirement and what the expression does not name: the class checked (for ``*``,
    or no class) and the slice (for ``@KEY=*``).
    """
    cls, where = result["class"], result.get("slice")
    compact = result["expr"].replace(" ", "")
    named = []
    if cls is not None and ("[%s]" % cls).replace(" ", "") not in compact:
        named.append(cls)
    if where is not None and ("@%s" % _slice_text(where)).replace(" ", "") not in compact:
        named.append(_slice_text(where))
    return "%s [%s]" % (result["expr"], ", ".join(named)) if named else result["expr"]


PASSED, FAILED, NOT_APPLICABLE, SKIPPED = "passed", "failed", "not applicable", "skipped"


def verdict(result):
    """`PASSED`, `FAILED`, `NOT_APPLICABLE` or `SKIPPED` (a slice under the minimum size)."""
    if result.get("skipped"):
        return SKIPPED
    if not result["applicable"]:
        return NOT_APPLICABLE
    return PASSED if result["passed"] else FAILED


def requirement_totals(reports):
    """``(passed, failed, not applicable)`` counts of the requirement results of every run
    (slices skipped for their size are none of them: `skipped_slices`).
    """
    verdicts = [verdict(result) for report in reports for result in report.get("requirements", ())]
    return verdicts.count(PASSED), verdicts.count(FAILED), verdicts.count(NOT_APPLICABLE)


def skipped_slices(reports):
    """How many slices of ``@KEY=*`` requirements were skipped for their size, in every run."""
    return sum(
        verdict(result) == SKIPPED
        for report in reports
        for result in report.get("requirements", ())
    )


def _requirement_summary(reports):
    """``requirements: P passed, F failed`` (and ``, N not applicable``, ``, K slices skipped``
    where there are).
    """
    passed, failed, not_applicable = requirement_totals(reports)
    skipped = skipped_slices(reports)
    summary = "requirements: %d passed, %d failed" % (passed, failed)
    summary += ", %d not applicable" % not_applicable if not_applicable else ""
    return summary + (", %d slices skipped" % skipped if skipped else "")


def _worst_first_findings(reports):
    rows = [(report["run"], finding) for report in reports for finding in report["findings"]]
    return sorted(rows, key=lambda row: -SEVERITY_RANK[row[1]["severity"]])


# Order of the requirement results in a report: failed, passed, not applicable.
VERDICT_ORDER = {False: 0, True: 1, None: 2}


def _worst_first_results(reports):
    rows = [
        (report["run"], result) for report in reports for result in report.get("requirements", ())
    ]
    return sorted(rows, key=lambda row: (VERDICT_ORDER[row[1]["passed"]], gates.margin(row[1])))


# -- examples ---------------------------------------------------------------------------------

# Characters of a text preview shown in text and Markdown reports.
PREVIEW_CHARS = 60


def _preview_text(preview):
    """A short text of an example's preview: its text's start, ``[image]``, or nothing."""
    if not preview:
        return ""
    if "text" in preview:
        text = preview["text"]
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return "[image]"


def _error_cells(example):
    """``(id, actual -> predicted, scores)`` texts of one of the most confident errors."""
    where = "%s -> %s" % (example["true_name"], example["pred_name"])
    if "class" in example:
        where = "%s: %s" % (example["class_name"], where)
    scores = "%s (true %s)" % (_number(example["score"]), _number(example["true_score"]))
    return str(example["id"]), where, scores


def _issue_cells(example):
    """``(id, given, suggested)`` texts of one label issue."""
    return (
        str(example["id"]),
        "%s %s" % (example["given_name"], _number(example["given_score"])),
        "%s %s" % (example["suggested_name"], _number(example["suggested_score"])),
    )


def _errors_heading(errors):
    if not errors["count"]:
        return "no errors"
    listed = len(errors["examples"])
    return "the %d most confident of %d errors" % (listed, errors["count"])


def _issues_heading(issues):
    if not issues["count"]:
        return "no label issues among %d examples" % issues["examples_seen"]
    share = "%.1f%%" % (100 * issues["share"])
    return "%d label issues among %d examples (%s), the least likely given label first" % (
        issues["count"],
        issues["examples_seen"],
        share,
    )


def _text_examples(report):
    """The text lines of a report's examples (`format_text`)."""
    if "examples_skipped" in report:
        return ["  examples not listed: %s" % safe_text(report["examples_skipped"])]
    found = report.get("examples")
    if found is None:
        return []
    lines = ["  examples at epoch %d (%s):" % (found["step"], safe_text(found["split"]))]
    lines.append("    %s:" % _errors_heading(found["errors"]))
    for example in found["errors"]["examples"]:
        cells = [safe_text(cell) for cell in _error_cells(example)]
        lines.append(
            "      %s  %s  %s  %s" % (*cells, safe_text(_preview_text(example["preview"])))
        )
    issues = found["label_issues"]
    if issues is None:
        lines.append("    label issues not listed: %s" % safe_text(found["label_issues_skipped"]))
        return lines
    lines.append("    %s:" % _issues_heading(issues))
    for example in issues["examples"]:
        key, given, suggested = (safe_text(cell) for cell in _issue_cells(example))
        lines.append(
            "      %s  given %s, suggested %s  %s"
            % (key, given, suggested, safe_text(_preview_text(example["preview"])))
        )
    return lines


def _markdown_examples(reports):
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
            % (run, found["step"], markdown_text(found["split"]), _errors_heading(found["errors"])),
            "",
        ]
        rows = [
            [markdown_text(cell) for cell in _error_cells(example)]
            + [markdown_text(_preview_text(example["preview"]))]
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
        lines += ["Run %s: %s" % (run, markdown_text(_issues_heading(issues))), ""]
        rows = [
            [markdown_text(cell) for cell in _issue_cells(example)]
            + [markdown_text(_preview_text(example["preview"]))]
            for example in issues["examples"]
        ]
        lines += _table(["id", "given", "suggested", "preview"], rows) + [""]
    return lines


# -- text -------------------------------------------------------------------------------------

TEXT_VERDICTS = {PASSED: "PASS", FAILED: "FAIL", NOT_APPLICABLE: "N/A ", SKIPPED: "SKIP"}


def _text_result(result):
    if verdict(result) in (NOT_APPLICABLE, SKIPPED):
        return "%s: %s, %s" % (
            safe_text(_subject(result)),
            verdict(result),
            safe_text(result["reason"]),
        )
    text = "%s: %s" % (safe_text(_subject(result)), _number(result["value"]))
    if "slice" in result:
        text += " on %d rows" % result["slice"]["support"]
    if result.get("lower") is not None:
        text += " (95%% interval %s)" % _interval(result)
    text += ", bound %s" % _number(result["bound"])
    if "baseline" in result:
        text += ", baseline %s" % _number(result["baseline"])
    if "judged_on" in result:
        text += ", judged on the interval's %s end" % result["judged_on"]
    return text


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
    totals = dict.fromkeys(SEVERITY_RANK, 0)
    for report in reports:
        lines.append("run %s" % safe_text(report["run"]))
        if not report["findings"]:
            lines.append("  no findings")
        for finding in report["findings"]:
            totals[finding["severity"]] += 1
            where = "" if finding["step"] is None else " (epoch %d)" % finding["step"]
            lines.append(
                "  %s %s%s: %s"
                % (
                    paint(finding["severity"], finding["severity"].upper().ljust(7)),
                    safe_text(finding["rule"]),
                    where,
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
            lines.append("    %s %s" % (shown, _text_result(result)))
        lines += _text_examples(report)
        lines.append("")
    for entry in skipped:
        shown = ", ".join(safe_text(path) for path in entry["paths"])
        more = entry["count"] - len(entry["paths"])
        lines.append(
            "skipped %d %s: %s%s"
            % (entry["count"], entry["reason"], shown, " and %d more" % more if more else "")
        )
    summary = "%d run(s): %s" % (
        len(reports),
        ", ".join("%d %s" % (totals[s], s) for s in diagnostics.SEVERITIES),
    )
    if any("requirements" in report for report in reports):
        summary += "; " + _requirement_summary(reports)
    lines.append(summary)
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------------


def format_json(reports, baseline=None, skipped=()):
    """``{"runs": [{"run", "findings", "not_run", ...}], "skipped": [{"reason", "count",
    "paths"}]}`` as strict JSON, with ``"baseline": {"run", "step"}`` when a baseline run was
    compared with.
    """
    document = {"runs": reports, "skipped": list(skipped)}
    if baseline is not None:
        document["baseline"] = baseline
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


# -- Markdown ---------------------------------------------------------------------------------


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
    totals = dict.fromkeys(SEVERITY_RANK, 0)
    for _, finding in _worst_first_findings(reports):
        totals[finding["severity"]] += 1
    checked = any("requirements" in report for report in reports)
    summary = "%d run(s): %s" % (
        len(reports),
        ", ".join("%d %s" % (totals[s], s) for s in diagnostics.SEVERITIES),
    )
    if checked:
        summary += "; " + _requirement_summary(reports)
    lines = ["## tb-metricsdiag report", "", summary, ""]
    if baseline is not None:
        lines += [
            "Baseline: run %s at step %d" % (markdown_text(baseline["run"]), baseline["step"]),
            "",
        ]
    if checked:
        sliced = any("slice" in result for _, result in _worst_first_results(reports))
        header = ["result", "run", "requirement", "class"] + (["slice", "rows"] if sliced else [])
        header += ["step", "value", "95% interval", "bound"]
        header += ["baseline"] if baseline is not None else []
        rows = []
        for run, result in _worst_first_results(reports):
            where = result.get("slice")
            row = [
                MARKDOWN_VERDICTS[verdict(result)],
                markdown_text(run),
                markdown_text(result["expr"]),
                "" if result["class"] is None else markdown_text(result["class"]),
            ]
            if sliced:
                row += ["", ""] if where is None else [markdown_text(_slice_text(where))]
                row += [] if where is None else [str(where["support"])]
            row += [
                str(result["step"]),
                _number(result["value"])
                if result["applicable"]
                else markdown_text("%s: %s" % (verdict(result), result["reason"])),
                _interval(result),
                _number(result["bound"]),
            ]
            if baseline is not None:
                row.append(_number(result.get("baseline")))
            rows.append(row)
        lines += ["### Requirements", ""] + _table(header, rows) + [""]
        skipped = [report for report in reports if "requirements_skipped" in report]
        for report in skipped:
            lines.append(
                "- run %s not checked: %s"
                % (markdown_text(report["run"]), markdown_text(report["requirements_skipped"]))
            )
        lines += [""] if skipped else []
    findings = _worst_first_findings(reports)
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
    examples = _markdown_examples(reports)
    if examples:
        lines += ["", "### Examples", ""] + examples[:-1]
    return "\n".join(lines) + "\n"


# -- JUnit XML --------------------------------------------------------------------------------


def format_junit(reports, fail_on="error"):
    """JUnit XML for CI systems that read test reports: one ``testsuite`` per run, holding one
    ``testcase`` per requirement result (failed: a ``failure``; not applicable: ``skipped``)
    and one per finding at or above ``fail_on`` (always a ``failure``). The attributes the common JUnit schemas require
    are set: ``testsuites``/``testsuite`` ``name``, ``tests``, ``failures``, ``errors``,
    ``skipped``, ``time`` (and ``timestamp``, ``hostname``); ``testcase`` ``name``,
    ``classname``, ``time``; ``failure`` ``message`` and ``type``.
    """
    threshold = SEVERITY_RANK[fail_on]
    root = ElementTree.Element("testsuites", name="tb-metricsdiag")
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    all_tests = all_failures = all_skipped = 0
    for report in reports:
        run = safe_text(report["run"])
        suite = ElementTree.SubElement(
            root, "testsuite", name=run, timestamp=timestamp, hostname=socket.gethostname()
        )
        tests = failures = skipped = 0
        for result in report.get("requirements", ()):
            case = ElementTree.SubElement(
                suite,
                "testcase",
                name=safe_text(_subject(result)),
                classname="tb-metricsdiag.requirements",
                time="0",
            )
            tests += 1
            if not result["applicable"]:
                skipped += 1
                ElementTree.SubElement(
                    case,
                    "skipped",
                    message=safe_text("%s: %s" % (verdict(result), result["reason"])),
                )
            elif not result["passed"]:
                failures += 1
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    message=safe_text(
                        "%s: %s is not %s %s"
                        % (
                            _subject(result),
                            _number(result["value"]),
                            result["op"],
                            _number(result["bound"]),
                        )
                    ),
                    type="requirement",
                )
                failure.text = _text_result(result)
        for finding in report["findings"]:
            if SEVERITY_RANK[finding["severity"]] < threshold:
                continue
            where = "" if finding["step"] is None else " (epoch %d)" % finding["step"]
            case = ElementTree.SubElement(
                suite,
                "testcase",
                name=safe_text("%s%s" % (finding["rule"], where)),
                classname="tb-metricsdiag.findings",
                time="0",
            )
            tests += 1
            failures += 1
            failure = ElementTree.SubElement(
                case,
                "failure",
                message=safe_text(finding["title"]),
                type="%s finding" % finding["severity"],
            )
            # safe_text also drops what XML 1.0 cannot hold (most control characters).
            failure.text = "%s\nfix: %s" % (
                safe_text(finding["detail"]),
                safe_text(finding["suggestion"]),
            )
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        suite.set("time", "0")
        all_tests += tests
        all_failures += failures
        all_skipped += skipped
    root.set("tests", str(all_tests))
    root.set("failures", str(all_failures))
    root.set("errors", "0")
    root.set("skipped", str(all_skipped))
    root.set("time", "0")
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


# -- CSV --------------------------------------------------------------------------------------

# The columns of `format_csv`, in order.
CSV_COLUMNS = ("run", "split", "step", "class", "precision", "recall", "f1", "support")

# What a spreadsheet takes for a formula at the start of a cell.
FORMULA_STARTS = ("=", "+", "-", "@")


def csv_text(value):
    """``value`` as a CSV text cell: control characters escaped (`safe_text`), and a leading
    character a spreadsheet would run as a formula neutralised with a quote, as spreadsheets
    themselves mark text (numbers such as ``-1`` are left as they are).
    """
    text = safe_text(value)
    if text.startswith(FORMULA_STARTS):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _csv_number(value):
    """A metric for a CSV cell: the shortest text that reads back as the same float; empty
    where undefined (None or NaN).
    """
    if value is None or value != value:
        return ""
    return repr(float(value))


def format_csv(rows):
    """CSV (RFC 4180 quoting, a header row first) of per-class rows ``{"run", "split", "step",
    "class", "precision", "recall", "f1", "support"}``: one per run, split and class.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                csv_text(row["run"]),
                csv_text(row["split"]),
                int(row["step"]),
                csv_text(row["class"]),
                _csv_number(row["precision"]),
                _csv_number(row["recall"]),
                _csv_number(row["f1"]),
                int(row["support"]),
            ]
        )
    return out.getvalue()

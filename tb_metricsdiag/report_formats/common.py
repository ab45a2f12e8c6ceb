"""What every output of the report shares: untrusted text made printable (`safe_text`), the
numbers of a result, the verdict of each requirement result and their totals, the order in which
findings and results are listed, and the summary line. Pure: no I/O.
"""

import unicodedata

from tb_metricsdiag import diagnostics, gates

# Ranks for --fail-on: a finding fails the run when its rank is at least the option's.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(reversed(diagnostics.SEVERITIES))}

# Unicode categories printed as escapes: control, format, surrogate, private, unassigned,
# and the line / paragraph separators.
UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")

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


def number(value):
    return "n/a" if value is None else "%.*f" % (DIGITS, value)


def interval(result):
    if result.get("lower") is None:
        return ""
    return "%s–%s" % (number(result["lower"]), number(result["upper"]))


def slice_text(where):
    """``KEY=VALUE`` of a result's slice."""
    return "%s=%s" % (where["key"], where["value"])


def subject(result):
    """The requirement and what the expression does not name: the class checked (for ``*``,
    or no class) and the slice (for ``@KEY=*``).
    """
    cls, where = result["class"], result.get("slice")
    compact = result["expr"].replace(" ", "")
    named = []
    if cls is not None and ("[%s]" % cls).replace(" ", "") not in compact:
        named.append(cls)
    if where is not None and ("@%s" % slice_text(where)).replace(" ", "") not in compact:
        named.append(slice_text(where))
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


def requirement_summary(reports):
    """``requirements: P passed, F failed`` (and ``, N not applicable``, ``, K slices skipped``
    where there are).
    """
    passed, failed, not_applicable = requirement_totals(reports)
    skipped = skipped_slices(reports)
    summary = "requirements: %d passed, %d failed" % (passed, failed)
    summary += ", %d not applicable" % not_applicable if not_applicable else ""
    return summary + (", %d slices skipped" % skipped if skipped else "")


def worst_first_findings(reports):
    rows = [(report["run"], finding) for report in reports for finding in report["findings"]]
    return sorted(rows, key=lambda row: -SEVERITY_RANK[row[1]["severity"]])


# Order of the requirement results in a report: failed, passed, not applicable.
VERDICT_ORDER = {False: 0, True: 1, None: 2}


def worst_first_results(reports):
    rows = [
        (report["run"], result) for report in reports for result in report.get("requirements", ())
    ]
    return sorted(rows, key=lambda row: (VERDICT_ORDER[row[1]["passed"]], gates.margin(row[1])))


def summary_line(reports):
    """``N run(s): E error, W warning, I info``, and `requirement_summary` where requirements
    were checked.
    """
    totals = dict.fromkeys(SEVERITY_RANK, 0)
    for report in reports:
        for finding in report["findings"]:
            totals[finding["severity"]] += 1
    summary = "%d run(s): %s" % (
        len(reports),
        ", ".join("%d %s" % (totals[s], s) for s in diagnostics.SEVERITIES),
    )
    if any("requirements" in report for report in reports):
        summary += "; " + requirement_summary(reports)
    return summary


def at_epoch(finding):
    """`` (epoch N)`` of a finding that refers to an epoch, else nothing."""
    return "" if finding["step"] is None else " (epoch %d)" % finding["step"]

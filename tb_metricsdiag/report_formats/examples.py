"""The examples of a report (``--examples``) as cells of text, shared by the text and the
Markdown outputs. Pure: no I/O.
"""

from tb_metricsdiag.report_formats.common import number

# Characters of a text preview shown in text and Markdown reports.
PREVIEW_CHARS = 60


def preview_text(preview):
    """A short text of an example's preview: its text's start, ``[image]``, or nothing."""
    if not preview:
        return ""
    if "text" in preview:
        text = preview["text"]
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return "[image]"


def error_cells(example):
    """``(id, actual -> predicted, scores)`` texts of one of the most confident errors."""
    where = "%s -> %s" % (example["true_name"], example["pred_name"])
    if "class" in example:
        where = "%s: %s" % (example["class_name"], where)
    scores = "%s (true %s)" % (number(example["score"]), number(example["true_score"]))
    return str(example["id"]), where, scores


def issue_cells(example):
    """``(id, given, suggested)`` texts of one label issue."""
    return (
        str(example["id"]),
        "%s %s" % (example["given_name"], number(example["given_score"])),
        "%s %s" % (example["suggested_name"], number(example["suggested_score"])),
    )


def errors_heading(errors):
    if not errors["count"]:
        return "no errors"
    listed = len(errors["examples"])
    return "the %d most confident of %d errors" % (listed, errors["count"])


def issues_heading(issues):
    if not issues["count"]:
        return "no label issues among %d examples" % issues["examples_seen"]
    share = "%.1f%%" % (100 * issues["share"])
    return "%d label issues among %d examples (%s), the least likely given label first" % (
        issues["count"],
        issues["examples_seen"],
        share,
    )

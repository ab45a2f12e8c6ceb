"""The CSV output of the report: per-class metrics per run and split. Pure: no I/O."""

import csv
import io

from tb_metricsdiag.report_formats.common import safe_text

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

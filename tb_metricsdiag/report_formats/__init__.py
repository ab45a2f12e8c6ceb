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

One module per output (`text`, `json_output`, `markdown`, `junit`, `csv_output`); what they
share is in `common` (`safe_text`, the verdicts and their totals, the summary line) and
`examples` (the cells of ``--examples``).
"""

from tb_metricsdiag.report_formats.common import (
    SEVERITY_RANK,
    requirement_totals,
    safe_text,
    skipped_slices,
    verdict,
)
from tb_metricsdiag.report_formats.csv_output import CSV_COLUMNS, csv_text, format_csv
from tb_metricsdiag.report_formats.json_output import format_json
from tb_metricsdiag.report_formats.junit import format_junit
from tb_metricsdiag.report_formats.markdown import format_markdown, markdown_text
from tb_metricsdiag.report_formats.text import format_text

__all__ = [
    "CSV_COLUMNS",
    "SEVERITY_RANK",
    "csv_text",
    "format_csv",
    "format_json",
    "format_junit",
    "format_markdown",
    "format_text",
    "markdown_text",
    "requirement_totals",
    "safe_text",
    "skipped_slices",
    "verdict",
]

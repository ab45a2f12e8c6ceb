r"""``report --format html``: the report as one self-contained HTML file.

The file shows what the tab shows of each run's latest epoch, drawn by the tab's own modules
(``frontend/report.js`` creates the panels and feeds them), from the documents the routes
would answer (`views`), computed here and embedded as JSON. It loads nothing: the modules are
embedded as text and `frontend/report_loader.js` makes each one a ``blob:`` module whose
imports name the others' ``blob:`` URLs, in dependency order. The Content-Security-Policy
lets only that loader (by its hash) and those ``blob:`` modules run, only the embedded
stylesheet (by its hash) style the page, and only ``data:`` images (previews) show; nothing
else may load.

Every embedded text is JSON inside ``<script type="application/json">`` with ``<``, ``>`` and
``&`` written as ``\u003c`` etc., so no run or class name can close the element; the modules
put every text into the page with ``textContent``.
"""

import base64
import functools
import hashlib
import html
import json
import os
import posixpath
import re

from tb_metricsdiag import version
from tb_metricsdiag.backend import curve_views, static_files, views
from tb_metricsdiag.core.json_values import to_json_value

ENTRY_MODULE = "report.js"
LOADER_MODULE = "report_loader.js"
STYLESHEET = "style.css"

MAX_PR_CLASSES = 30
"""Most classes of a run whose PR answers are embedded (one per class, its whole threshold
grid): above, only the default class's and those of the classes the findings name, so that a
run of many classes keeps the file small (docs/benchmarks.md gives the size per class)."""

# The prefix of an embedded module's name in the import specifiers the loader replaces.
MODULE_PREFIX = "md:"

# A static import's relative specifier, as the tab's modules write them (one statement may
# span lines; tests/test_frontend_static.py checks the same form).
_IMPORT = re.compile(r"""^(\s*import\s[^;]*?from\s+)(["'])(\.[^"']+)\2""", re.M | re.S)

# The split the report shows: validation, else the run's first split with counts.
REPORT_SPLIT = "validation"

CLASSES_NAMED_BY_FINDINGS = ("class_index", "worst_class_index")


def _answer(compute):
    """``{"doc": compute()}``, or ``{"error": message, "status": 404 | 422 | 400 | 500}``
    where the route would have failed: one unreadable part leaves the others of the run.
    """
    from tensorboard import errors

    from tb_metricsdiag.format import schema

    try:
        return {"doc": compute()}
    except errors.PublicError as error:
        return {"error": str(error), "status": error.http_code}
    except schema.FormatError as error:
        return {"error": "unreadable metricsdiag data: %s" % error, "status": 422}
    except Exception as error:  # One broken run must not end the report.
        return {"error": "%s: %s" % (type(error).__name__, error), "status": 500}


def _pr_classes(entry, diagnostics):
    """The classes whose PR answers the report embeds: all up to `MAX_PR_CLASSES`, else the
    default class and those the findings name by index.
    """
    count = len(entry["class_names"])
    if count <= MAX_PR_CLASSES:
        return list(range(count))
    chosen = {entry["default_class"] or 0}
    for finding in diagnostics.get("findings", ()):
        for key in CLASSES_NAMED_BY_FINDINGS:
            value = (finding.get("evidence") or {}).get(key)
            if isinstance(value, int) and 0 <= value < count:
                chosen.add(value)
    return sorted(chosen)


def run_documents(reader, index, kept, report):
    """Everything the report shows of one run: the route answers of its latest epoch.

    Args:
      reader: the `reader.Reader` of the logdir.
      index: the run's `RunIndex`.
      kept: the run's ``(steps, trainings)`` of `Reader.steps_by_run`, or the
        `schema.FormatError` why they cannot be read.
      report: the run's report of ``cli_report.collect_reports`` (findings, rules not run) with
        ``requirements`` or ``requirements_skipped`` when requirements were checked.

    Returns:
      ``{"entry", "diagnostics", "requirements", "requirements_skipped", "curves",
      "confusion", "pr": {class index: answer}, "calibration"}``: ``entry`` the ``/runs``
      entry, ``diagnostics`` the ``/diagnostics`` answer; the others each ``{"doc"}`` or
      ``{"error", "status"}`` (`_answer`), ``pr`` and the epoch's answers only for a run
      with counts.
    """
    run = index.run
    error = None
    if isinstance(kept, Exception):
        kept, error = ([], 1), "unreadable metricsdiag data: %s" % kept
    steps, trainings = kept
    entry = views.run_entry(index, steps, error, trainings)
    diagnostics = views.diagnostics_view(run, report["findings"], report["not_run"], trainings)
    found = {
        "entry": entry,
        "diagnostics": diagnostics,
        "requirements": to_json_value(report.get("requirements")),
        "requirements_skipped": report.get("requirements_skipped"),
        "curves": _answer(lambda: curve_views.curves_view(run, reader.history(run, index))),
        "pr": {},
    }
    if error is not None or not (index.has_counts and steps and index.splits):
        return found
    split = REPORT_SPLIT if REPORT_SPLIT in index.splits else index.splits[0]
    # One read of the epoch serves the confusion and every class's PR answer.
    evaluation = _answer(lambda: reader.evaluation(run, split, None))
    found["confusion"] = (
        evaluation
        if "error" in evaluation
        else _answer(lambda: views.confusion_view(run, evaluation["doc"]))
    )
    for class_index in _pr_classes(entry, diagnostics):
        if "error" in evaluation:  # the same failure for every class: said once
            found["pr"][str(class_index)] = evaluation
            break
        found["pr"][str(class_index)] = _answer(
            functools.partial(_pr_view, run, evaluation["doc"], class_index)
        )

    def calibration():
        step, bins = reader.calibration(run, split, None)
        return curve_views.calibration_view(
            run, split, step, bins, curve_views.binary_calibration(index.task)
        )

    found["calibration"] = _answer(calibration)
    return found


def _pr_view(run, evaluation, class_index):
    return curve_views.pr_view(run, evaluation, curve_views.pr_class(run, evaluation, class_index))


def collect_runs(reader, indices, reports, progress=None):
    """`run_documents` of every run of ``reports`` (sorted by run, as `cli_report.collect_reports`
    makes them). A run whose data cannot be read is listed with its error.
    """
    runs = sorted(indices)
    kept_by_run = reader.steps_by_run([indices[run] for run in runs])
    documents = []
    for done, report in enumerate(reports, 1):
        run = report["run"]
        kept = kept_by_run.get(run, ([], 1))
        try:
            documents.append(run_documents(reader, indices[run], kept, report))
        except Exception as error:  # One broken run must not end the report.
            message = "%s: %s" % (type(error).__name__, error)
            documents.append(
                {
                    "entry": views.run_entry(indices[run], [], message),
                    "diagnostics": views.diagnostics_view(run, report["findings"]),
                    "pr": {},
                }
            )
        if progress is not None:
            progress.runs("drawn", done, len(reports))
    return documents


def script_json(value):
    r"""``value`` as JSON text safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` (and
    the JavaScript line separators) as ``\u`` escapes, so that no text closes the element.
    """
    text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, "\\u%04x" % ord(char))
    return text


def _read(root, name):
    with open(os.path.join(root, *name.split("/")), encoding="utf-8") as handle:
        return handle.read()


def embedded_modules(root, entry=ENTRY_MODULE):
    """``[{"path", "source"}]``: ``entry`` and every module it imports, those imported first
    (the entry last), each relative import specifier written as ``"md:<path>"`` (the path
    from ``root``) for the loader to replace with that module's ``blob:`` URL.
    """
    ordered, seen = [], set()

    def visit(name, trail):
        if name in seen:
            return
        if name in trail:
            raise ValueError("the tab's modules import each other in a cycle: %s" % name)
        source = _read(root, name)
        imports = []

        def rewrite(match):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), match.group(3)))
            imports.append(target)
            # Double quotes, as the loader looks for them (JSON.stringify).
            return match.group(1) + json.dumps(MODULE_PREFIX + target)

        source = _IMPORT.sub(rewrite, source)
        for target in imports:
            visit(target, trail | {name})
        seen.add(name)
        ordered.append({"path": name, "source": source})

    visit(entry, frozenset())
    return ordered


def _sha256(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def format_html(runs, title, skipped=(), root=None):
    """The report page: ``runs`` (`collect_runs`) drawn by the tab's modules under ``root``
    (default: the installed frontend), titled ``title`` (e.g. the logdir), with the walk's
    ``skipped`` paths (`logdir.find_runs`).
    """
    root = root or static_files.frontend_dir()
    loader = _read(root, LOADER_MODULE)
    style = _read(root, STYLESHEET)
    if re.search(r"</style", style, re.I):
        raise ValueError("%s would close its <style> element" % STYLESHEET)
    if re.search(r"</script|<!--", loader, re.I):
        raise ValueError("%s would close its <script> element" % LOADER_MODULE)
    report = {
        "title": title,
        "version": version.VERSION,
        "runs": runs,
        "skipped": list(skipped),
    }
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src %s blob:" % _sha256(loader),
            "style-src %s" % _sha256(style),
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="%s">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="tb-metricsdiag %s">\n'
        "<title>%s</title>\n"
        "<style>%s</style>\n"
        "</head>\n<body>\n"
        '<main id="metricsdiag-root" class="md-app">'
        "<noscript>This report draws its views with JavaScript.</noscript></main>\n"
        '<script type="application/json" id="metricsdiag-report">%s</script>\n'
        '<script type="application/json" id="metricsdiag-modules">%s</script>\n'
        '<script type="module">%s</script>\n'
        "</body>\n</html>\n"
        % (
            html.escape(policy),
            html.escape(version.VERSION),
            html.escape("Metrics diagnostics: %s" % title),
            style,
            script_json(report),
            script_json(embedded_modules(root)),
            loader,
        )
    )

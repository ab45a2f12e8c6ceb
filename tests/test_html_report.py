"""`report --format html`: one self-contained page, opened from a file:// URL in real Chromium
with every request but the file's own blocked, whose figures are the routes' answers (the
plugin in-process over the same logdir) and scikit-learn's, and whose hostile names stay text.
"""

import json
import os
import re
import shutil

import gate_runs
import numpy as np
import pytest
import zoo as zoo_lib
from conftest import to_scores
from sklearn import metrics as skm
from tensorboard.backend import application
from werkzeug import test as werkzeug_test

from tb_metricsdiag import cli, html_report
from tb_metricsdiag.format import schema

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("the HTML report tests need Debian's chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python")

HOSTILE = "</script><img src=x onerror=alert(1)>"
HOSTILE_RUN = HOSTILE  # its "/" makes it a nested folder: the run name keeps it
HOSTILE_CLASSES = ["legit", "x</script><img src=y onerror=alert(2)>&amp;"]
GATE_RUNS = {
    "fraud": gate_runs.RUNS["fraud"],
    "animals": gate_runs.RUNS["animals"],
    HOSTILE_RUN: (HOSTILE_CLASSES, 300, [0.7, 0.3], (0.5, 1.0, 2.0)),
}
KERAS_RUN = "multiclass"  # a Keras training of conftest's callback_runs: loss curves
UNREADABLE_RUN = "future"  # written by a newer tb-metricsdiag
REQUIREMENT = "recall[*] >= 0.5"
TOL = 0.0006  # three decimals on the page


def write_future_run(logdir):
    """A run whose counts a newer format version wrote: unreadable here."""
    event = zoo_lib.tensor_event(
        0,
        schema.split_tag("validation", schema.KIND_CONFUSION),
        np.eye(2, dtype=np.int32),
        zoo_lib.plugin_md(
            schema.KIND_CONFUSION,
            "validation",
            overrides={"version": schema.FORMAT_VERSION + 1},
        ),
    )
    zoo_lib.write_run(logdir, UNREADABLE_RUN, [zoo_lib.file_version(), zoo_lib.framed(event)])


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, callback_runs):
    root = tmp_path_factory.mktemp("html-report")
    gates = gate_runs.write_gate_logdir(root, GATE_RUNS)
    keras_root, trained = callback_runs
    shutil.copytree(os.path.join(keras_root, KERAS_RUN), root / KERAS_RUN)
    write_future_run(str(root))
    return str(root), gates, trained[KERAS_RUN]


def write_report(logdir, path, *options):
    """``(the page's text, exit status)`` of ``report LOGDIR --format html --output path``."""
    status = cli.main(["report", logdir, "--format", "html", "--output", str(path), *options])
    with open(path, encoding="utf-8") as handle:
        return handle.read(), status


@pytest.fixture(scope="module")
def report(logdir, tmp_path_factory):
    """``(path of the page, its text, exit status)`` of every run."""
    path = str(tmp_path_factory.mktemp("page") / "report.html")
    return (path, *write_report(logdir[0], path))


@pytest.fixture(scope="module")
def routes(logdir):
    """``get(route, **params)``: the routes' JSON over the same logdir (the Python loader)."""
    client = werkzeug_test.Client(application.TensorBoardWSGI([zoo_lib.make_plugin(logdir[0])]))

    def get(route, **params):
        status, body = zoo_lib.client_get(client, route, params)
        assert status == 200, body
        return body

    return get


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, path, runs):
    """The page at ``path`` opened from its file:// URL once its ``runs`` sections are drawn;
    every other request is recorded (``page.requests``) and aborted; console errors and
    warnings, page errors, dialogs and CSP violations are recorded too.
    """
    url = "file://" + path
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.requests, pg.problems, pg.dialogs = [], [], []

    def route(request_route):
        request = request_route.request
        if request.url == url:
            request_route.continue_()
        else:
            pg.requests.append(request.url)
            request_route.abort()

    pg.route("**/*", route)
    pg.on("request", lambda r: r.url == url or pg.requests.append(r.url))
    pg.on("console", lambda m: m.type in ("error", "warning") and pg.problems.append(m.text))
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    pg.goto(url)
    pg.wait_for_function(
        "n => document.querySelectorAll('.run-report').length === n", arg=runs, timeout=20000
    )
    return pg


def assert_loaded_nothing(pg):
    assert pg.requests == []
    assert pg.problems == []
    assert pg.evaluate("window.__violations") == []
    assert pg.dialogs == []


@pytest.fixture(scope="module")
def page(report, browser):
    pg = open_page(browser, report[0], len(GATE_RUNS) + 2)
    yield pg
    pg.close()


def section(page, run):
    """The locator of ``run``'s section (matched on the heading's text, not as markup)."""
    index = page.evaluate(
        "run => [...document.querySelectorAll('.run-report > .run-name')]"
        ".findIndex(h => h.textContent === run)",
        run,
    )
    assert index >= 0, run
    return page.locator(".run-report").nth(index)


def shown_number(locator):
    return float(locator.inner_text().replace(",", ""))


# -- the file ------------------------------------------------------------------------------


def test_the_page_is_one_file_that_loads_nothing(report, page):
    _, text, _ = report
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src &#x27;none&#x27;" in policy
    assert "script-src &#x27;sha256-" in policy and "unsafe" not in policy
    # No address anywhere that a browser could fetch.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert_loaded_nothing(page)


def test_stdout_and_output_give_the_same_page(report, logdir, capsys):
    status = cli.main(["report", logdir[0], "--format", "html"])
    out, _ = capsys.readouterr()
    assert status == report[2]
    assert out == report[1]


def test_exit_status_is_the_other_formats(report, logdir, capsys):
    status = cli.main(["report", logdir[0], "--format", "json"])
    capsys.readouterr()
    assert status == report[2]


def test_an_unwritable_output_is_a_usage_error(logdir, tmp_path, capsys):
    target = tmp_path / "missing" / "report.html"
    status = cli.main(["report", logdir[0], "--format", "html", "--output", str(target)])
    _, err = capsys.readouterr()
    assert status == cli.EXIT_USAGE
    assert "cannot write --output" in err and "Traceback" not in err
    assert not target.exists()


def test_script_json_cannot_close_its_element():
    text = html_report.script_json({"name": HOSTILE, "&": "<!-- \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": HOSTILE, "&": "<!-- \u2028"}


def test_every_module_is_embedded_before_its_importers():
    modules = html_report.embedded_modules(
        os.path.join(os.path.dirname(__file__), "..", "frontend")
    )
    order = [m["path"] for m in modules]
    assert order[-1] == html_report.ENTRY_MODULE
    assert {"dom.js", "panels/pr.js", "charts/pr_chart.js", "heatmap.js"} <= set(order)
    for k, module in enumerate(modules):
        for target in re.findall(r'from\s+"md:([^"]+)"', module["source"]):
            assert target in order[:k], (module["path"], target)
        assert not re.search(r"""from\s+["']\.""", module["source"]), module["path"]


# -- the numbers -----------------------------------------------------------------------------


def reference(logdir, run):
    """``(y_true, scores)`` of ``run``'s latest validation step, from the model outputs."""
    _, gates, trained = logdir
    if run == KERAS_RUN:
        last = max(trained.predictions)
        scores, _ = to_scores(trained.predictions[last]["validation"], trained.outputs_are_logits)
        return trained.y_val_ids, scores
    gate = gates.runs[run]
    return gate.y_true, gate.scores[max(gate.scores)]


@pytest.mark.parametrize("run", ["fraud", "animals", HOSTILE_RUN, KERAS_RUN])
def test_confusion_and_per_class_figures_are_the_routes_and_sklearns(page, routes, logdir, run):
    y_true, scores = reference(logdir, run)
    names = routes("/runs")["runs"]
    entry = next(e for e in names if e["run"] == run)
    confusion = routes("/confusion", run=run)
    k = len(entry["class_names"])
    expected = skm.confusion_matrix(y_true, scores.argmax(axis=1), labels=range(k))
    assert confusion["matrix"] == expected.tolist()
    where = section(page, run)
    for i in range(k):
        for j in range(k):
            cell = where.locator(f'table.confusion td.cell[data-row="{i}"][data-col="{j}"] .count')
            assert shown_number(cell) == expected[i, j]
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, scores.argmax(axis=1), labels=range(k), zero_division=np.nan
    )
    for i, figures in enumerate(confusion["per_class"]):
        row = where.locator(f'tr[data-class="{i}"]')
        for key, reference_value in (
            ("precision", precision[i]),
            ("recall", recall[i]),
            ("f1", f1[i]),
        ):
            value = shown_number(row.locator(f'td[data-metric="{key}"]'))
            assert value == pytest.approx(figures[key], abs=TOL)
            assert value == pytest.approx(reference_value, abs=TOL)
    accuracy = shown_number(where.locator('.summary-cards [data-metric="accuracy"]'))
    assert accuracy == pytest.approx(skm.accuracy_score(y_true, scores.argmax(axis=1)), abs=TOL)
    assert accuracy == pytest.approx(confusion["accuracy"], abs=TOL)


@pytest.mark.parametrize("run", ["animals", KERAS_RUN])
def test_ece_is_the_routes(page, routes, run):
    calibration = routes("/calibration", run=run)
    shown = shown_number(section(page, run).locator('[data-metric="ece"]'))
    assert shown == pytest.approx(calibration["ece"], abs=TOL)


def test_the_loss_curves_are_the_logged_losses(page, logdir):
    trained = logdir[2]
    titles = (
        section(page, KERAS_RUN)
        .locator(".curves-body svg circle title")
        .evaluate_all("titles => titles.map((t) => t.textContent)")
    )
    assert titles
    for epoch, logs in trained.logs.items():
        for key, label in (("loss", "train loss"), ("val_loss", "validation loss")):
            assert f"{label}, epoch {epoch}: {logs[key]:.4f}" in titles


def test_moving_the_threshold_shows_the_routes_counts(page, routes, logdir):
    run = "animals"
    y_true, scores = reference(logdir, run)
    where = section(page, run)
    for class_index in (0, 2):
        where.locator(".pr-body").first.wait_for()
        where.locator("select[aria-label='Class for the PR curve']").select_option(str(class_index))
        pr = routes("/pr", run=run, **{"class": class_index})
        slider = where.locator("input[type=range][aria-label='Decision threshold']")
        assert int(slider.input_value()) == pr["best_f1"]["index"]
        for _ in range(5):
            slider.focus()
            page.keyboard.press("ArrowLeft")
        index = int(slider.input_value())
        assert index == pr["best_f1"]["index"] - 5
        threshold = pr["thresholds"][index]
        predicted = scores[:, class_index] >= threshold
        positive = y_true == class_index
        expected = {
            "tp": int((predicted & positive).sum()),
            "fp": int((predicted & ~positive).sum()),
            "fn": int((~predicted & positive).sum()),
            "tn": int((~predicted & ~positive).sum()),
        }
        table = where.locator(".op-matrix table")
        for key, value in expected.items():
            assert value == pr[key][index]
            cell = table.locator(f'td[data-metric="{key}"] .tbt-count')
            assert shown_number(cell) == value
        for key in ("precision", "recall", "f1"):
            shown = shown_number(where.locator(f'.op-stats [data-metric="{key}"]'))
            assert shown == pytest.approx(pr[key][index], abs=TOL)


# -- bad input -------------------------------------------------------------------------------


def test_hostile_names_stay_text(page, report):
    _, text, _ = report
    assert HOSTILE not in text and "<img" not in text
    assert page.dialogs == []
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    where = section(page, HOSTILE_RUN)
    assert where.locator("h2.run-name").inner_text() == HOSTILE
    heads = where.locator("table.confusion th.row-name").all_inner_texts()
    assert heads == HOSTILE_CLASSES
    assert page.locator(".run-index a", has_text="onerror").inner_text() == HOSTILE


def test_an_unreadable_run_shows_its_error_and_leaves_the_others(page):
    where = section(page, UNREADABLE_RUN)
    notice = where.locator(".notice.error").first.inner_text()
    assert "cannot be read" in notice and "newer tb-metricsdiag" in notice
    assert "newer tb-metricsdiag" in where.locator(".finding").first.inner_text()
    for run in ("fraud", "animals", KERAS_RUN):
        assert section(page, run).locator("table.confusion").count() == 1


def test_requirements_are_shown_with_their_verdicts(browser, logdir, tmp_path, capsys):
    # A requirement on a run that cannot be read is a usage error: the readable runs only.
    selected = [option for run in ("fraud", "animals", KERAS_RUN) for option in ("--run", run)]
    options = ["--require", REQUIREMENT, *selected]
    text, status = write_report(logdir[0], tmp_path / "gated.html", *options)
    json_status = cli.main(["report", logdir[0], "--format", "json", *options])
    runs = json.loads(capsys.readouterr()[0])["runs"]
    assert status == json_status
    pg = open_page(browser, str(tmp_path / "gated.html"), 3)
    try:
        assert_loaded_nothing(pg)
        for found in runs:
            rows = section(pg, found["run"]).locator(".requirements-table tbody tr")
            assert rows.count() == len(found["requirements"])
            verdicts = sorted(v.upper() for v in rows.locator(".verdict").all_inner_texts())
            verdict = {True: "PASS", False: "FAIL", None: "N/A"}
            assert verdicts == sorted(verdict[r["passed"]] for r in found["requirements"])
            values = [shown_number(v) for v in rows.locator('[data-metric="value"]').all()]
            assert sorted(values) == pytest.approx(
                sorted(r["value"] for r in found["requirements"]), abs=TOL
            )
    finally:
        pg.close()


def test_the_zoo_of_damaged_and_hostile_runs_draws_every_run(zoo, browser, tmp_path):
    # Truncated, corrupt, crafted and future runs, names full of markup and control characters:
    # each run gets its section, the unreadable ones their error, and nothing runs or loads.
    path = tmp_path / "zoo.html"
    text, status = write_report(zoo, path)
    assert status in (cli.EXIT_OK, cli.EXIT_FINDINGS)
    runs = [run["entry"]["run"] for run in read_report(text)["runs"]]
    assert set(zoo_lib.HOSTILE_RUNS) <= set(runs)
    assert zoo_lib.UNREADABLE <= set(runs)
    pg = open_page(browser, str(path), len(runs))
    try:
        assert_loaded_nothing(pg)
        assert pg.evaluate("document.querySelectorAll('img').length") == 0
        shown = pg.evaluate(
            "[...document.querySelectorAll('.run-report > .run-name')].map((h) => h.textContent)"
        )
        assert shown == runs
        for run in zoo_lib.UNREADABLE:
            assert section(pg, run).locator(".notice.error").count() == 1
        for run in zoo_lib.GOOD:
            assert section(pg, run).locator(".notice.error").count() == 0, run
    finally:
        pg.close()


def read_report(text):
    """The report document a page embeds."""
    found = re.search(
        r'<script type="application/json" id="metricsdiag-report">(.*?)</script>', text, re.S
    )
    return json.loads(found.group(1))


def test_slice_requirements_show_their_slice_and_skipped_ones(browser, tmp_path, capsys):
    from tb_metricsdiag import MetricsDiagWriter

    rng = np.random.default_rng(0)
    group = np.array([HOSTILE] * 200 + ["small"] * 12 + ["b"] * 150, dtype=object)
    y = rng.integers(0, 2, len(group))
    logits = rng.normal(size=(len(group), 2))
    logits[np.arange(len(group)), y] += 2.0
    with MetricsDiagWriter(str(tmp_path / "logs" / "sliced")) as writer:
        writer.add_evaluation(y, logits, 0, from_logits=True, groups={"g": list(group)})
    options = ["--require", "recall[*]@g=* >= 0.5"]
    text, status = write_report(str(tmp_path / "logs"), tmp_path / "sliced.html", *options)
    assert cli.main(["report", str(tmp_path / "logs"), "--format", "json", *options]) == status
    (found,) = json.loads(capsys.readouterr()[0])["runs"]
    pg = open_page(browser, str(tmp_path / "sliced.html"), 1)
    try:
        assert_loaded_nothing(pg)
        rows = section(pg, "sliced").locator(".requirements-table tbody tr")
        shown = sorted(
            zip(
                rows.locator(".slice").all_inner_texts(),
                [v.lower() for v in rows.locator(".verdict").all_inner_texts()],
            )
        )
        verdict = {True: "pass", False: "fail", None: "skipped"}
        assert shown == sorted(
            ("g=%s (%d rows)" % (r["slice"]["value"], r["slice"]["support"]), verdict[r["passed"]])
            for r in found["requirements"]
        )
        assert ("g=small (12 rows)", "skipped") in shown
        assert ("g=%s (200 rows)" % HOSTILE, "pass") in shown  # the markup stays text
    finally:
        pg.close()

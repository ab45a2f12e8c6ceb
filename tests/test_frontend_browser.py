"""Browser tests of the Metrics Diagnostics tab against a real `tensorboard` process.

Tiny Keras models are trained once for this module with the real MetricsDiagCallback; a real
TensorBoard serves them with this checkout's plugin (PYTHONPATH), and headless Debian chromium
(Playwright) opens the tab. The numbers on screen are compared with the JSON the backend serves.

Screenshots go to test-artifacts/ (gitignored).
"""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not os.path.exists(CHROMIUM):
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright for Python")
pytest.importorskip("tensorflow", reason="browser tests train a tiny model with TensorFlow/Keras")

import zoo  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tb_metricsdiag.core import operating_points  # noqa: E402

XSS_RUN = "<img src=x onerror=alert(1)>"
XSS_CLASSES = ["<b>bold</b>", "<img src=y onerror=alert(2)>", "a & b"]
CLEAN_RUN = "clean"
CLEAN_CLASSES = ["cat", "dog", "bird"]
KERAS_ONLY_RUN = "kerasonly"
MULTILABEL_RUN = "tagger"
MULTILABEL_NAMES = ["sky", "<i>water</i>", "rare"]
EPOCHS = 5
TOL = 0.0006  # three decimals on screen


# ---------------------------------------------------------------------------------------------
# Fixtures: training, TensorBoard, browser


def _blobs(seed, n_train=240, n_val=90, classes=3, features=4):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.9, size=(classes, features))

    def draw(n):
        ids = rng.integers(0, classes, size=n)
        return (centers[ids] + rng.normal(size=(n, features))).astype("float32"), ids

    return draw(n_train) + draw(n_val)


def _train(log_dir, class_names, seed, with_callback=True):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(seed)
    x, y, x_val, y_val = _blobs(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.03), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    callbacks = [keras.callbacks.TensorBoard(log_dir)]
    if with_callback:
        callbacks.insert(
            0,
            MetricsDiagCallback(
                log_dir,
                validation_data=(x_val, y_val),
                train_data=(x[:120], y[:120]),
                class_names=class_names,
            ),
        )
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        batch_size=32,
        verbose=0,
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = tmp_path_factory.mktemp("tb-frontend")
    _train(str(root / CLEAN_RUN), CLEAN_CLASSES, seed=3)
    _train(str(root / XSS_RUN), XSS_CLASSES, seed=4)
    _train(str(root / KERAS_ONLY_RUN), None, seed=5, with_callback=False)
    _write_multilabel(str(root / MULTILABEL_RUN))
    return str(root)


def _write_multilabel(log_dir, epochs=2):
    """A multi-label run written with the framework-free writer from seeded scores."""
    import numpy as np

    from tb_metricsdiag import MetricsDiagWriter

    rng = np.random.default_rng(9)
    y = (rng.random((400, 3)) < [0.5, 0.2, 0.04]).astype(np.int64)
    with MetricsDiagWriter(log_dir, class_names=MULTILABEL_NAMES, multi_label=True) as writer:
        for epoch in range(epochs):
            logits = (1 + epoch) * (2 * y - 1) + rng.normal(size=y.shape)
            writer.add_evaluation(y, (1 / (1 + np.exp(-logits))).astype(np.float32), epoch)
            writer.add_logs({"loss": 0.5 - 0.1 * epoch, "val_loss": 0.55 - 0.1 * epoch}, epoch)


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _serve(logdir, runs, tmp_path_factory):
    """Serves `logdir` with a real `tensorboard` process (this checkout's plugin, TensorBoard's
    default loader) until the plugin lists `runs` with epochs (`zoo.tensorboard_serving`);
    yields {"base", "api"} and stops the process."""
    log_path = tmp_path_factory.mktemp("tb-log") / "tensorboard.log"

    def ready(get):
        status, body = get("/runs")
        return status == 200 and set(runs) <= {r["run"] for r in body["runs"] if r.get("steps")}

    with zoo.tensorboard_serving(logdir, "auto", str(log_path), ready) as (base, _):
        yield {"base": base, "api": base + zoo.PREFIX}


@pytest.fixture(scope="module")
def server(logdir, tmp_path_factory):
    yield from _serve(logdir, [CLEAN_RUN, XSS_RUN], tmp_path_factory)


# Many classes, written with MetricsDiagWriter from seeded scores (tests/many_classes.py).
MANY_RUN = "many100"
THOUSAND_RUN = "many1000"


@pytest.fixture(scope="module")
def many_server(tmp_path_factory):
    import many_classes

    root = tmp_path_factory.mktemp("tb-many")
    many_classes.write_run(str(root / MANY_RUN), classes=100, examples=2000, seed=11)
    many_classes.write_run(str(root / THOUSAND_RUN), classes=1000, examples=10000, seed=12)
    yield from _serve(str(root), [MANY_RUN, THOUSAND_RUN], tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.dialogs = []
    pg.errors = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    # A doctored route's handler may still be fetching when the test ends: let it go quietly.
    pg.unroute_all(behavior="ignoreErrors")
    context.close()


def api_json(server, route, **params):
    return _get(
        server["api"] + "/" + route + ("?" + urllib.parse.urlencode(params) if params else "")
    )


def open_tab(page, server, run=None):
    page.goto("about:blank")  # a fresh document, not a same-page hash change
    page.goto(server["base"] + "/#metricsdiag")
    page.wait_for_selector("iframe", timeout=30000)
    frame = None
    deadline = time.time() + 30
    while frame is None and time.time() < deadline:
        handle = page.query_selector("iframe")
        frame = handle.content_frame() if handle else None
        if frame is None:
            time.sleep(0.2)
    assert frame is not None, "the tab's iframe never loaded"
    frame.wait_for_selector("select[aria-label='Run'] option", state="attached", timeout=30000)
    if run is not None:
        frame.select_option("select[aria-label='Run']", value=run)
    return frame


def open_tab_without_runs(page, server):
    page.goto("about:blank")  # a fresh document, not a same-page hash change
    page.goto(server["base"] + "/#metricsdiag")
    page.wait_for_selector("iframe", timeout=30000)
    frame = page.query_selector("iframe").content_frame()
    frame.wait_for_selector(".md-app", timeout=30000)
    return frame


def wait_matrix(frame, step=None):
    frame.wait_for_selector(".confusion td.cell", timeout=20000)
    if step is not None:
        frame.wait_for_function(
            "s => document.querySelector('.epoch-label').textContent.trim().startsWith(String(s) + ' ')"
            " && document.querySelector('.caption') && !document.querySelector('.matrix-wrap.loading')",
            arg=step,
            timeout=20000,
        )


def num(text):
    text = text.strip().replace(",", "")
    if text in ("\u2014", ""):
        return None
    digits = re.sub(r"[^0-9.+-]", "", text)
    return float(digits) if digits else None


def assert_close(screen, expected, what):
    if expected is None:
        assert screen is None, "%s: expected undefined (—), screen shows %r" % (what, screen)
    else:
        assert screen is not None and abs(screen - expected) <= TOL, (
            "%s: screen %r vs server %r" % (what, screen, expected)
        )


def read_matrix(frame):
    return frame.eval_on_selector_all(
        ".confusion td.cell",
        "cells => cells.map(c => [Number(c.dataset.row), Number(c.dataset.col), c.querySelector('.main').textContent, (c.querySelector('.sub') || {}).textContent || null])",
    )


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name), full_page=True)


# ---------------------------------------------------------------------------------------------
# Tests


def test_confusion_matrix_and_metrics_match_the_server(page, server):
    frame = open_tab(page, server, run=CLEAN_RUN)
    info = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)
    assert info["steps"], "the clean run should have counts"
    latest = info["steps"][-1]
    wait_matrix(frame, latest)
    data = api_json(server, "confusion", run=CLEAN_RUN, split="validation", step=latest)

    cells = read_matrix(frame)
    n = len(data["matrix"])
    assert len(cells) == n * n
    for i, j, main, _ in cells:
        assert num(main) == data["matrix"][i][j], "cell %d,%d" % (i, j)

    assert_close(num(frame.text_content("[data-metric='accuracy']")), data["accuracy"], "accuracy")
    assert_close(
        num(frame.text_content("[data-metric='balanced_accuracy']")),
        data["balanced_accuracy"],
        "balanced accuracy",
    )
    assert num(frame.text_content("[data-metric='total']")) == data["total"]

    headers = frame.eval_on_selector_all(".confusion .row-name", "e => e.map(x => x.textContent)")
    assert headers == data["class_names"]
    cols = frame.eval_on_selector_all(".confusion .col-name", "e => e.map(x => x.textContent)")
    assert cols == data["class_names"]

    rows = frame.eval_on_selector_all(
        ".per-class tbody tr",
        "rows => rows.map(r => Object.fromEntries([...r.querySelectorAll('[data-metric]')].map(c => [c.dataset.metric, c.textContent])))",
    )
    assert len(rows) == len(data["per_class"])
    for row, expected in zip(rows, data["per_class"]):
        for key in ("precision", "recall", "f1"):
            assert_close(num(row[key]), expected[key], "%s %s" % (expected["name"], key))
        assert num(row["support"]) == expected["support"]
    # Each precision and recall carries its served Wilson interval as a tooltip.
    titles = frame.eval_on_selector_all(
        ".per-class tbody tr",
        "rows => rows.map(r => [r.querySelector('[data-metric=precision]').title,"
        " r.querySelector('[data-metric=recall]').title])",
    )
    for (precision_title, recall_title), expected in zip(titles, data["per_class"]):
        for title, key in ((precision_title, "precision"), (recall_title, "recall")):
            lower, upper = expected[key + "_interval"]
            if lower is None:
                assert title == ""
            else:
                assert title == "95%% Wilson interval %.3f\u2013%.3f" % (lower, upper), key

    # Normalised by true class: ratios shown, the choice remembered across reloads.
    # Keyboard: focus the radio button and press Space.
    frame.focus("input[type=radio][value='true']")
    page.keyboard.press("Space")
    frame.wait_for_selector(".confusion.mode-true")
    for i, j, main, sub in read_matrix(frame):
        expected = data["normalized"]["true"][i][j]
        if expected is None:
            assert num(main) is None
        else:
            assert abs(num(main) - expected) <= 0.0051, "normalized cell %d,%d" % (i, j)
        assert num(sub) == data["matrix"][i][j]
    assert frame.evaluate("localStorage.getItem('metricsdiag.normalize')") == "true"
    shot(page, "confusion-normalized.png")

    frame = open_tab(page, server, run=CLEAN_RUN)
    frame.wait_for_selector(".confusion.mode-true", timeout=20000)
    assert frame.is_checked("input[type=radio][value='true']")
    frame.focus("input[type=radio][value='counts']")
    page.keyboard.press("Space")
    frame.wait_for_selector(".confusion.mode-counts")
    assert not page.errors, page.errors


def open_at_first_epoch(page, server):
    """The tab on CLEAN_RUN, moved with the keyboard from the latest epoch to the first."""
    frame = open_tab(page, server, run=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    frame.focus("input[aria-label='Epoch']")
    page.keyboard.press("Home")
    wait_matrix(frame, steps[0])
    return frame, steps


def test_epoch_slider_and_play(page, server):
    frame, steps = open_at_first_epoch(page, server)
    data = api_json(server, "confusion", run=CLEAN_RUN, split="validation", step=steps[0])
    for i, j, main, _ in read_matrix(frame):
        assert num(main) == data["matrix"][i][j]
    page.keyboard.press("ArrowRight")
    wait_matrix(frame, steps[1])

    # The train split of the same epoch.
    frame.select_option("select[aria-label='Split']", value="train")
    train = api_json(server, "confusion", run=CLEAN_RUN, split="train", step=steps[1])
    frame.wait_for_function(
        "total => document.querySelector(\"[data-metric='total']\").textContent.replace(/,/g, '') === String(total)",
        arg=train["total"],
        timeout=20000,
    )
    frame.select_option("select[aria-label='Split']", value="validation")

    # Play runs through to the last epoch and stops.
    frame.click("button[aria-label='Play through epochs']")
    wait_matrix(frame, steps[-1])
    frame.wait_for_selector("button.play[aria-pressed='false']", timeout=20000)
    assert not page.errors, page.errors


def read_operating_point(frame):
    return frame.evaluate(
        """() => {
            const out = {index: Number(document.querySelector("input[aria-label='Decision threshold']").value),
                         threshold: document.querySelector('.thr-value').textContent};
            for (const el of document.querySelectorAll('.op-stats [data-metric], .op-table [data-metric]'))
                out[el.dataset.metric] = (el.querySelector('.tbt-count') || el).textContent;
            return out;
        }"""
    )


def assert_operating_point(op, pr):
    i = op["index"]
    assert_close(num(op["threshold"]), pr["thresholds"][i], "threshold")
    for key in ("precision", "recall", "f1"):
        assert_close(num(op[key]), pr[key][i], key)
    for key in ("tp", "fp", "tn", "fn"):
        assert num(op[key]) == pr[key][i], key


def test_threshold_updates_precision_recall_and_counts(page, server):
    frame = open_tab(page, server, run=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    frame.wait_for_selector(".pr-body:not(.loading) .pr-chart", timeout=30000)
    frame.select_option("select[aria-label='Class for the PR curve']", value="1")
    frame.wait_for_function(
        "() => document.querySelector('.op-table th[scope=col]').textContent === 'predicted dog'",
        timeout=20000,
    )
    pr = api_json(server, "pr", run=CLEAN_RUN, split="validation", step=steps[-1], **{"class": 1})
    assert_close(num(frame.text_content(".pill")), pr["average_precision"], "average precision")

    first = read_operating_point(frame)
    if pr.get("best_f1"):
        assert first["index"] == pr["best_f1"]["index"]
    assert_operating_point(first, pr)

    # Keyboard on the slider.
    frame.focus("input[aria-label='Decision threshold']")
    page.keyboard.press("Home")
    low = read_operating_point(frame)
    assert low["index"] == 0
    assert_operating_point(low, pr)
    for _ in range(150):
        page.keyboard.press("ArrowRight")
    high = read_operating_point(frame)
    assert high["index"] == 150
    assert_operating_point(high, pr)
    assert (low["tp"], low["fp"]) != (high["tp"], high["fp"])

    # Arrow keys on the focused chart.
    frame.focus(".pr-chart")
    page.keyboard.press("ArrowLeft")
    assert read_operating_point(frame)["index"] == 149

    # Dragging on the curve: pressing near the curve's top-left picks a high threshold point.
    box = frame.query_selector(".pr-chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.1, steps=5)
    page.mouse.up()
    dragged = read_operating_point(frame)
    assert dragged["index"] != 149
    assert_operating_point(dragged, pr)

    # Threshold for a target recall comes from the backend's min_recall answer.
    frame.fill("input[aria-label='Threshold for recall \u2265']", "0.9")
    frame.press("input[aria-label='Threshold for recall \u2265']", "Enter")
    target = api_json(
        server,
        "pr",
        run=CLEAN_RUN,
        split="validation",
        step=steps[-1],
        min_recall="0.9",
        **{"class": 1},
    )
    frame.wait_for_selector(".target-result, .warn-text", timeout=20000)
    # The panel was rebuilt with the answer; keyboard focus stays in the input.
    assert (
        frame.evaluate("document.activeElement.getAttribute('aria-label')")
        == "Threshold for recall \u2265"
    )
    if target["at_recall"]:
        text = frame.text_content(".target-result")
        assert ("threshold %s" % _fmt_threshold(target["at_recall"]["threshold"])) in text
        frame.click("button[aria-label='Use the threshold for Threshold for recall \u2265']")
        op = read_operating_point(frame)
        assert op["index"] == target["at_recall"]["index"]
        assert num(op["recall"]) >= 0.9
    shot(page, "pr-curve.png")
    assert not page.errors, page.errors


def test_findings_and_curves(page, server):
    frame = open_tab(page, server, run=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    findings = api_json(server, "diagnostics", run=CLEAN_RUN)["findings"]
    frame.wait_for_selector(".finding, .all-good", timeout=20000)
    items = frame.query_selector_all(".finding")
    assert len(items) == len(findings)
    rank = {"error": 0, "warning": 1, "info": 2}
    shown = [
        next(s for s in ("error", "warning", "info") if s in item.get_attribute("class"))
        for item in items
    ]
    assert shown == sorted(shown, key=rank.get)
    titles = {f["title"] for f in findings}
    assert {item.query_selector("h3").text_content() for item in items} == titles

    frame.wait_for_selector(".curves-body .line-chart .series", timeout=20000)
    curves = api_json(server, "curves", run=CLEAN_RUN)["curves"]
    assert "loss" in curves and "val_loss" in curves
    assert frame.query_selector_all(".curves-body .line-chart")

    with_step = [f for f in findings if isinstance(f.get("step"), int)]
    if with_step:
        target = with_step[0]["step"]
        expected = min(steps, key=lambda s: abs(s - target))
        frame.click(".finding.clickable button")
        wait_matrix(frame, expected)
    else:
        # No finding with an epoch: clicking a loss chart jumps to an epoch instead.
        chart = frame.query_selector(".curves-body .line-chart")
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        chart.click(position={"x": box["width"] * 56 / 520, "y": box["height"] / 2})
        wait_matrix(frame, steps[0])
    assert not page.errors, page.errors


def test_finding_naming_a_class_links_to_its_pr_curve(page, server):
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    finding = {
        "rule": "threshold_far_from_default",
        "severity": "info",
        "title": "A better threshold",
        "detail": "d",
        "step": steps[0],
        "suggestion": "s",
        "evidence": {"positive_class": "bird", "best_threshold": 0.3},
    }
    page.route(
        re.compile(r".*/data/plugin/metricsdiag/diagnostics.*"),
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"run": CLEAN_RUN, "findings": [finding]}),
        ),
    )
    frame = open_tab(page, server, run=CLEAN_RUN)
    wait_matrix(frame, steps[-1])
    frame.click("button:has-text('Show threshold 0.300 on the PR curve')")
    wait_matrix(frame, steps[0])
    frame.wait_for_function(
        "() => document.querySelector('.op-table th[scope=col]').textContent === 'predicted bird'",
        timeout=20000,
    )
    pr = api_json(server, "pr", run=CLEAN_RUN, split="validation", step=steps[0], **{"class": 2})
    op = read_operating_point(frame)
    assert op["index"] == min(
        range(len(pr["thresholds"])), key=lambda i: abs(pr["thresholds"][i] - 0.3)
    )
    assert_operating_point(op, pr)
    assert not page.errors, page.errors


def test_live_refresh_keeps_selections(page, server):
    frame, steps = open_at_first_epoch(page, server)
    frame.select_option("select[aria-label='Class for the PR curve']", value="2")
    frame.wait_for_function(
        "() => document.querySelector('.op-table th[scope=col]').textContent === 'predicted bird'",
        timeout=20000,
    )
    frame.focus("input[aria-label='Decision threshold']")
    page.keyboard.press("Home")
    for _ in range(40):
        page.keyboard.press("ArrowRight")

    # TensorBoard's data changes: a new run appears. The tab re-reads /runs (every 30 s, and
    # when it becomes visible again) and keeps what the user had chosen.
    def add_run(route):
        response = route.fetch()
        body = response.json()
        body["runs"].append(
            {"run": "zz-new-run", "steps": [], "splits": [], "class_names": [], "has_counts": False}
        )
        route.fulfill(response=response, body=json.dumps(body))

    page.route(re.compile(r".*/data/plugin/metricsdiag/runs.*"), add_run)
    reload_button = page.query_selector(".reload-button")
    if reload_button is not None:
        reload_button.click()  # TensorBoard's own reload
    else:
        frame.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    frame.wait_for_selector(
        "select[aria-label='Run'] option[value='zz-new-run']", state="attached", timeout=20000
    )
    assert frame.eval_on_selector("select[aria-label='Run']", "e => e.value") == CLEAN_RUN
    assert frame.text_content(".epoch-label").strip().startswith("%d " % steps[0])
    assert (
        frame.eval_on_selector("select[aria-label='Class for the PR curve']", "e => e.value") == "2"
    )
    assert read_operating_point(frame)["index"] == 40
    assert not page.errors, page.errors


def test_html_in_run_and_class_names_stays_text(page, server):
    frame = open_tab(page, server, run=XSS_RUN)
    frame.wait_for_function(
        "names => [...document.querySelectorAll('.confusion .row-name')].map(e => e.textContent).join('|') === names.join('|')",
        arg=XSS_CLASSES,
        timeout=20000,
    )
    frame.wait_for_selector(".pr-body:not(.loading) .pr-chart", timeout=30000)
    frame.wait_for_selector(".finding, .all-good", timeout=20000)
    assert frame.query_selector_all("img") == []
    assert frame.query_selector_all("b") == []
    options = frame.eval_on_selector_all(
        "select[aria-label='Run'] option", "o => o.map(x => x.textContent)"
    )
    assert XSS_RUN in options
    per_class = frame.eval_on_selector_all(
        ".per-class tbody th button", "e => e.map(x => x.textContent)"
    )
    assert per_class == XSS_CLASSES
    pr_options = frame.eval_on_selector_all(
        "select[aria-label='Class for the PR curve'] option", "o => o.map(x => x.textContent)"
    )
    assert pr_options == XSS_CLASSES
    assert page.query_selector_all("img[src=x]") == []
    page.wait_for_timeout(300)
    assert page.dialogs == []
    shot(page, "xss-run.png")
    assert not page.errors, page.errors


def test_run_without_counts_and_failed_requests(page, server):
    runs = {r["run"]: r for r in api_json(server, "runs")["runs"]}
    frame = open_tab(page, server)
    # A run written by keras.callbacks.TensorBoard alone: curves, and a note instead of counts.
    assert KERAS_ONLY_RUN in runs and not runs[KERAS_ONLY_RUN]["has_counts"]
    frame.select_option("select[aria-label='Run']", value=KERAS_ONLY_RUN)
    frame.wait_for_selector(".notice-area .notice", timeout=20000)
    assert "no confusion counts" in frame.text_content(".notice-area .notice")
    assert frame.is_hidden(".layout-grid")
    frame.wait_for_selector(".curves-body .line-chart .series", timeout=20000)

    # A failing request shows the server's own message, as text.
    message = "no step 99 for run <b>clean</b>"
    page.route(
        re.compile(r".*/data/plugin/metricsdiag/confusion.*"),
        lambda route: route.fulfill(
            status=404, content_type="application/json", body=json.dumps({"error": message})
        ),
    )
    frame = open_tab(page, server, run=CLEAN_RUN)
    frame.wait_for_selector(".matrix-wrap .notice.error", timeout=20000)
    assert message in frame.text_content(".matrix-wrap .notice.error")
    assert frame.query_selector_all("b") == []

    # No runs at all: a helpful empty state instead of empty panels.
    page.route(
        re.compile(r".*/data/plugin/metricsdiag/runs.*"),
        lambda route: route.fulfill(
            status=200, content_type="application/json", body='{"runs": []}'
        ),
    )
    frame = open_tab_without_runs(page, server)
    frame.wait_for_selector(".notice-area .notice", timeout=20000)
    assert "No metricsdiag data" in frame.text_content(".notice-area .notice")
    assert frame.is_hidden(".layout-grid")
    assert not page.errors, page.errors


def _switch_theme(pg, frame, menu, theme):
    """Pick ``theme`` ("dark" / "light") in TensorBoard's own theme menu (or, where this
    TensorBoard has none, toggle its body class) and wait for the tab to follow."""
    if menu is not None:
        menu.click()
        pg.click("[role=menuitem]:has-text('%s')" % theme.capitalize())
    else:
        action = "add" if theme == "dark" else "remove"
        pg.evaluate("document.body.classList.%s('dark-mode')" % action)
    frame.wait_for_function(
        "() => document.documentElement.dataset.theme === '%s'" % theme, timeout=20000
    )
    pg.wait_for_timeout(300)


def test_dark_theme_screenshot(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 2400}, color_scheme="dark")
    pg = context.new_page()
    try:
        frame = open_tab(pg, server, run=CLEAN_RUN)
        wait_matrix(frame)
        frame.wait_for_selector(".pr-body:not(.loading) .pr-chart", timeout=30000)
        frame.wait_for_selector(".curves-body .line-chart .series", timeout=20000)
        parent_dark = pg.evaluate("document.body.classList.contains('dark-mode')")
        theme = frame.evaluate("document.documentElement.dataset.theme")
        assert theme == ("dark" if parent_dark else "light")
        # Follows TensorBoard's own theme setting, live.
        menu = pg.query_selector("button[aria-label='Menu for changing light or dark theme']")
        for theme in ("dark", "light"):
            _switch_theme(pg, frame, menu, theme)
            shot(pg, "tab-%s.png" % theme)
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# The tab shows what the routes define, drops stale answers, and cleans up after itself


def _patch_json(page, route_name, change):
    """Serves route `route_name` with `change(body, url)` applied to the real answer."""

    def handler(route):
        response = route.fetch()
        body = response.json()
        change(body, route.request.url)
        route.fulfill(response=response, body=json.dumps(body))

    pattern = _route_pattern(route_name)
    page.route(pattern, handler)
    return pattern


def _route_pattern(route_name):
    return re.compile(r".*/data/plugin/metricsdiag/%s(\?.*)?$" % route_name)


def test_summary_cards_show_the_served_figures(page, server):
    # Doctored answers: the tab must show the route's macro F1, majority baseline and verdict,
    # not figures of its own from the per-class list.
    def change(body, url):
        body["macro_f1"] = 0.4242
        body["majority_baseline"] = 0.1357
        body["no_better_than_majority"] = "run=" + CLEAN_RUN in url

    patched = _patch_json(page, "confusion", change)
    frame = open_tab(page, server, run=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    assert frame.text_content("[data-metric='macro_f1']") == "0.424"
    assert frame.text_content("[data-metric='majority_baseline']") == "0.136"
    warn = frame.query_selector(".stat.warn")
    assert warn is not None and warn.query_selector("[data-metric='accuracy']") is not None
    assert "majority class" in warn.text_content()

    # The real answer: exactly the served figures, and the warning only when flagged.
    page.unroute(patched)
    frame = open_tab(page, server, run=CLEAN_RUN)
    wait_matrix(frame, steps[-1])
    data = api_json(server, "confusion", run=CLEAN_RUN, split="validation", step=steps[-1])
    assert_close(num(frame.text_content("[data-metric='macro_f1']")), data["macro_f1"], "macro F1")
    assert_close(
        num(frame.text_content("[data-metric='majority_baseline']")),
        data["majority_baseline"],
        "majority baseline",
    )
    assert (frame.query_selector(".stat.warn") is not None) == data["no_better_than_majority"]
    assert not page.errors, page.errors


def _boxes(frame, selector):
    return frame.eval_on_selector_all(
        selector,
        "els => els.map(e => { const b = e.getBBox(); return [b.x, b.y, b.width, b.height]; })",
    )


def _overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_curve_markers_follow_the_routes_and_labels_stay_clear(page, server):
    curves = api_json(server, "curves", run=CLEAN_RUN)
    # A best epoch other than the arg-min of val_loss (and other than the real one) proves
    # the tab shows the served one; an onset right next to it makes the labels compete.
    steps = curves["curves"]["val_loss"]["steps"]
    values = curves["curves"]["val_loss"]["values"]
    arg_min = steps[values.index(min(values))]
    best = next(s for s in steps[:-1] if s not in (arg_min, curves["best_epoch"]))
    onset = best + 1
    _patch_json(page, "curves", lambda body, url: body.update(best_epoch=best))
    overfitting = {
        "rule": "overfitting",
        "severity": "warning",
        "title": "Overfitting",
        "detail": "d",
        "step": onset,
        "suggestion": "s",
        "evidence": {"best_epoch": best, "onset_epoch": onset},
    }
    _patch_json(page, "diagnostics", lambda body, url: body.update(findings=[overfitting]))
    frame = open_tab(page, server, run=CLEAN_RUN)
    frame.wait_for_selector(".curves-body .line-chart .marker.onset", timeout=20000)
    labels = frame.eval_on_selector_all(
        ".curves-body .line-chart .marker text", "e => e.map(x => x.textContent)"
    )
    assert labels.count("best epoch %d" % best) == len(
        frame.query_selector_all(".curves-body .line-chart")
    )
    assert "overfitting onset %d" % onset in labels

    for chart in range(len(frame.query_selector_all(".curves-body .line-chart"))):
        scope = ".curve-panel:nth-child(%d) .line-chart" % (chart + 1)
        # The best-epoch line stands where the data points of that epoch are.
        line_x = frame.eval_on_selector(
            scope + " .marker.best line", "e => Number(e.getAttribute('x1'))"
        )
        dots_x = frame.eval_on_selector_all(
            scope + " .dots circle",
            "(cs, s) => cs.filter(c => c.textContent.includes('epoch ' + s + ':')).map(c => Number(c.getAttribute('cx')))",
            best,
        )
        assert dots_x and all(abs(x - line_x) < 0.01 for x in dots_x)
        # Labels: above every data point, and not on top of each other.
        boxes = _boxes(frame, scope + " .marker text")
        top_of_data = min(
            frame.eval_on_selector_all(
                scope + " .dots circle", "cs => cs.map(c => Number(c.getAttribute('cy')))"
            )
        )
        plot_top = frame.eval_on_selector(
            scope + " .marker line", "e => Number(e.getAttribute('y1'))"
        )
        assert plot_top <= top_of_data
        for box in boxes:
            assert box[1] + box[3] <= plot_top + 0.5, (box, plot_top)
        assert len(boxes) == 2 and not _overlap(boxes[0], boxes[1]), boxes
    frame.query_selector(".curves-body").scroll_into_view_if_needed()
    shot(page, "curve-markers.png")
    assert not page.errors, page.errors


def test_threshold_label_stays_above_the_curve(page, server):
    frame = open_tab(page, server, run=CLEAN_RUN)
    frame.wait_for_selector(".pr-body:not(.loading) .pr-chart .cursor-label", timeout=30000)
    frame.focus("input[aria-label='Decision threshold']")
    for key in ("Home", "End"):
        page.keyboard.press(key)
        (label,) = _boxes(frame, ".pr-chart .cursor-label")
        plot_top = frame.eval_on_selector_all(
            ".pr-chart .axes line.axis",
            "ls => Math.min(...ls.map(l => Number(l.getAttribute('y2'))))",
        )
        width = frame.eval_on_selector(".pr-chart", "e => e.viewBox.baseVal.width")
        assert label[1] + label[3] <= plot_top + 0.5, (label, plot_top)
        assert 0 <= label[0] and label[0] + label[2] <= width
    assert not page.errors, page.errors


def test_stale_answers_are_dropped(page, server):
    # The first run's matrix is held back until the user has picked another run; when it comes
    # in at last, the tab must keep showing the run picked last.
    held = []

    def hold(route):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(route.request.url).query)
        if query.get("run") == [XSS_RUN] and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(_route_pattern("confusion"), hold)
    frame = open_tab(page, server, run=XSS_RUN)
    deadline = time.time() + 20
    while not held and time.time() < deadline:
        page.wait_for_timeout(100)
    assert held, "the tab never asked for the first run's matrix"
    frame.select_option("select[aria-label='Run']", value=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    stale = api_json(server, "confusion", run=XSS_RUN, split="validation")
    try:
        held[0].fulfill(status=200, content_type="application/json", body=json.dumps(stale))
    except Exception:  # noqa: BLE001 - the tab may have aborted the request: also fine
        pass
    page.wait_for_timeout(500)
    data = api_json(server, "confusion", run=CLEAN_RUN, split="validation", step=steps[-1])
    rows = frame.eval_on_selector_all(".confusion .row-name", "e => e.map(x => x.textContent)")
    assert rows == CLEAN_CLASSES
    for i, j, main, _ in read_matrix(frame):
        assert num(main) == data["matrix"][i][j]
    assert num(frame.text_content("[data-metric='total']")) == data["total"]
    assert frame.eval_on_selector("select[aria-label='Run']", "e => e.value") == CLEAN_RUN
    assert not page.errors, page.errors


def test_optional_route_keys_are_shown(page, server):
    def runs(body, url):
        for entry in body["runs"]:
            if entry["run"] == CLEAN_RUN:
                entry["trainings"] = 3

    _patch_json(page, "runs", runs)
    exact = _patch_json(page, "pr", lambda body, url: body.update(average_precision_method="exact"))
    skipped = [
        {
            "rule": "train_val_overlap",
            "reason": "no <b>training</b> fingerprints",
            "how": "pass <i>train_data</i>",
        },
        {"rule": "threshold_far_from_default", "reason": "nothing to do", "how": None},
    ]
    _patch_json(page, "diagnostics", lambda body, url: body.update(findings=[], not_run=skipped))
    frame = open_tab(page, server, run=CLEAN_RUN)
    frame.wait_for_selector(".not-run", timeout=20000)
    notice = frame.text_content(".notice-area")
    assert "3 trainings" in notice and "latest" in notice
    text = frame.text_content(".findings")
    assert "Not checked:" in text and "train_val_overlap" in text
    assert (
        "no <b>training</b> fingerprints" in text and "To check it: pass <i>train_data</i>" in text
    )
    # A rule nothing would enable is not listed.
    assert "threshold_far_from_default" not in text
    # No findings while a rule was skipped never reads as "no problems".
    assert frame.query_selector(".all-good") is None
    assert frame.query_selector_all("b") == []
    frame.wait_for_function(
        "() => /^AP [0-9.]+ \\(exact\\)$/.test(document.querySelector('.pill').textContent)",
        timeout=20000,
    )
    page.unroute(exact)
    _patch_json(
        page, "pr", lambda body, url: body.update(average_precision_method="threshold_grid")
    )
    frame.select_option("select[aria-label='Class for the PR curve']", value="2")
    frame.wait_for_function(
        "() => document.querySelector('.pill').textContent.endsWith('(from the threshold grid)')",
        timeout=20000,
    )
    assert not page.errors, page.errors


# Tracks, in the tab's iframe and in TensorBoard's page, the listeners (on anything but
# elements), intervals, timeouts and observers that functions of the tab's realm hold.
INSTRUMENT = """() => {
  const w = document.querySelector('iframe').contentWindow;
  const live = { listeners: new Map(), intervals: new Set(), timeouts: new Set(), observers: new Set() };
  window.__mdLive = live;
  const mine = (fn) => fn instanceof w.Function;
  for (const realm of [window, w]) {
    const proto = realm.EventTarget.prototype;
    const add = proto.addEventListener, remove = proto.removeEventListener;
    const key = (target, type, fn, options) => {
      const capture = typeof options === 'boolean' ? options : Boolean(options && options.capture);
      return [target, type, fn, capture];
    };
    const find = (k) => [...live.listeners.keys()].find((x) => x.every((v, i) => v === k[i]));
    proto.addEventListener = function (type, fn, options) {
      const element = this instanceof w.Element || this instanceof Element;
      if (!element && typeof fn === 'function' && mine(fn)) {
        const signal = options && options.signal;
        if (!(signal && signal.aborted) && !find(key(this, type, fn, options))) {
          const k = key(this, type, fn, options);
          live.listeners.set(k, type);
          if (signal) add.call(signal, 'abort', () => live.listeners.delete(find(k)));
        }
      }
      return add.call(this, type, fn, options);
    };
    proto.removeEventListener = function (type, fn, options) {
      const found = find(key(this, type, fn, options));
      if (found) live.listeners.delete(found);
      return remove.call(this, type, fn, options);
    };
  }
  const { setInterval, clearInterval, setTimeout, clearTimeout } = w;
  w.setInterval = (fn, ms, ...a) => { const id = setInterval.call(w, fn, ms, ...a); live.intervals.add(id); return id; };
  w.clearInterval = (id) => { live.intervals.delete(id); return clearInterval.call(w, id); };
  w.setTimeout = (fn, ms, ...a) => {
    const id = setTimeout.call(w, (...b) => { live.timeouts.delete(id); fn(...b); }, ms, ...a);
    live.timeouts.add(id);
    return id;
  };
  w.clearTimeout = (id) => { live.timeouts.delete(id); return clearTimeout.call(w, id); };
  const mo = w.MutationObserver.prototype, observe = mo.observe, disconnect = mo.disconnect;
  mo.observe = function (...a) { live.observers.add(this); return observe.apply(this, a); };
  mo.disconnect = function () { live.observers.delete(this); return disconnect.call(this); };
}"""

LIVE = """() => { const l = window.__mdLive; return {
  listeners: [...l.listeners.values()].sort(), intervals: l.intervals.size,
  timeouts: l.timeouts.size, observers: l.observers.size }; }"""


def test_destroy_removes_every_listener_timer_and_observer(page, server):
    frame = open_tab(page, server, run=CLEAN_RUN)
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    wait_matrix(frame, steps[-1])
    page.evaluate(INSTRUMENT)
    # A second render() replaces the tab TensorBoard rendered (destroying it) with one whose
    # listeners the instrumentation sees from the start.
    frame.evaluate("async () => { window.__mdApp = (await import('./index.js')).render(); }")
    wait_matrix(frame, steps[-1])
    frame.wait_for_selector(".curves-body .line-chart .series", timeout=20000)
    frame.click("button[aria-label='Play through epochs']")  # a play timer too
    held = page.evaluate(LIVE)
    assert held["intervals"] == 1  # the poll
    assert held["observers"] == 1  # the theme follows TensorBoard's body class
    assert {"visibilitychange", "pagehide", "change", "click"} <= set(held["listeners"]), held
    # run, split, slice (hidden: no groups), PR class, trajectory metric, comparison run and epoch
    assert len(frame.query_selector_all(".md-app select")) == 7

    requests = []
    page.on(
        "request",
        lambda r: requests.append(r.url) if "/data/plugin/metricsdiag/" in r.url else None,
    )
    frame.evaluate("window.__mdApp.destroy()")
    assert page.evaluate(LIVE) == {"listeners": [], "intervals": 0, "timeouts": 0, "observers": 0}
    assert frame.eval_on_selector("#metricsdiag-root", "e => e.childElementCount") == 0

    # Nothing the tab listened to makes it act any more: no request, no theme change.
    theme = frame.evaluate("document.documentElement.dataset.theme")
    frame.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    reload_button = page.query_selector(".reload-button")
    if reload_button is not None:
        reload_button.click()
    page.evaluate("document.body.classList.toggle('dark-mode')")
    page.emulate_media(color_scheme="dark" if theme == "light" else "light")
    page.wait_for_timeout(1200)
    assert frame.evaluate("document.documentElement.dataset.theme") == theme
    assert requests == []
    assert not page.errors, page.errors


# ---------------------------------------------------------------------------------------------
# ROC, cost-based threshold, calibration, trajectories and comparison


def _fmt(x, digits=3):
    return "\u2014" if x is None else "%.*f" % (digits, x)


def _fmt_threshold(x):
    return "\u2014" if x is None else operating_points.format_threshold(x)


THRESHOLD_SLIDER = "input[aria-label='Decision threshold']"
FN_COST = "input[aria-label='Cost of a false negative']"
FP_COST = "input[aria-label='Cost of a false positive']"


def _type_costs(frame, fn, fp):
    """Types both costs of the PR panel and commits them as a user does: Tab out of the first
    (which commits it with the other's old text), then, once that answer is drawn (a redraw
    between Playwright's select-all and its typing would add to the old text), Enter."""
    frame.fill(FN_COST, fn)
    frame.press(FN_COST, "Tab")
    frame.wait_for_selector(".pr-body:not(.loading) " + FP_COST, timeout=30000)
    frame.fill(FP_COST, fp)
    frame.press(FP_COST, "Enter")


def _route_min_cost(server, step, fn_cost, fp_cost):
    """`/pr`'s lowest-cost point of class 0 of the clean run at ``step`` for these costs."""
    return api_json(
        server,
        "pr",
        run=CLEAN_RUN,
        split="validation",
        step=step,
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        **{"class": 0},
    )["min_cost"]


def _min_cost_text(point):
    """The PR panel's sentence about the route's `min_cost` point."""
    return "Lowest cost at threshold %s: %s per example (%s at %s, saves %s)" % (
        _fmt_threshold(point["threshold"]),
        _fmt(point["cost"], 4),
        _fmt(point["cost_at_default"], 4),
        _fmt_threshold(point["default_threshold"]),
        _fmt(point["cost_saved"], 4),
    )


def test_roc_view_and_cost_threshold(page, server):
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    latest = steps[-1]
    frame = open_tab(page, server, run=CLEAN_RUN)
    wait_matrix(frame, latest)
    # The first run's curve stays (dimmed) until the picked run's answer: wait for that answer.
    frame.wait_for_selector(".pr-body:not(.loading) .pr-chart", timeout=30000)
    pr = api_json(server, "pr", run=CLEAN_RUN, split="validation", step=latest, **{"class": 0})

    # ROC: the AUC labelled with its method (exact: the callback kept the scores), FPR on x,
    # the chance line, the same cursor.
    assert pr["roc_auc_method"] == "exact"
    assert frame.text_content(".roc-auc") == "ROC AUC %s (exact)" % _fmt(pr["roc_auc"])
    frame.click("label:has(input[data-mode='roc'])")
    frame.wait_for_selector(".pr-chart .chance", timeout=30000)
    titles = frame.eval_on_selector_all(".pr-chart .axis-title", "e => e.map(x => x.textContent)")
    assert titles == ["False positive rate", "True positive rate (recall)"]
    index = int(frame.input_value("input[aria-label='Decision threshold']"))
    if pr.get("best_f1"):
        assert index == pr["best_f1"]["index"]
    frame.press(".pr-chart", "ArrowLeft")
    index -= 1 if index > 0 else 0
    frame.wait_for_function(
        "i => document.querySelector(\"input[aria-label='Decision threshold']\").value === String(i)",
        arg=index,
        timeout=30000,
    )
    text = frame.get_attribute(".pr-chart", "aria-valuetext")
    assert text == "threshold %s, true positive rate (recall) %s, false positive rate %s" % (
        _fmt_threshold(pr["thresholds"][index]),
        _fmt(pr["recall"][index]),
        _fmt(pr["fpr"][index]),
    )
    # The dot sits at (fpr, recall) of that threshold.
    dot = frame.evaluate(
        "() => { const c = document.querySelector('.pr-chart .handle');"
        " return [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]; }"
    )
    assert abs(dot[0] - (50 + pr["fpr"][index] * 394)) < 0.01
    assert abs(dot[1] - (356 - 42 - pr["recall"][index] * 284)) < 0.01

    # Costs: the lowest-cost point as the route finds it, marked, with its counts and saving.
    def check_min_cost(fn, fp):
        want = _route_min_cost(server, latest, fn, fp)
        expect(frame.locator(".pr-body:not(.loading) .min-cost-text")).to_have_text(
            _min_cost_text(want), timeout=30000
        )
        cells = frame.eval_on_selector_all(
            ".cost-matrix td",
            "e => Object.fromEntries(e.map(x => [x.dataset.metric, x.textContent]))",
        )
        (tn, fp_), (fn_, tp) = want["matrix"]
        assert cells == {
            "tn": "TN %d" % tn,
            "fp": "FP %d" % fp_,
            "fn": "FN %d" % fn_,
            "tp": "TP %d" % tp,
        }
        assert frame.query_selector(".pr-chart .op.min-cost") is not None
        return want

    _type_costs(frame, "10", "1")
    first = check_min_cost(10, 1)
    _type_costs(frame, "1", "10")
    second = check_min_cost(1, 10)
    assert second["threshold"] >= first["threshold"]
    frame.click("button[aria-label='Move the threshold to the lowest-cost point']")
    expect(frame.locator(THRESHOLD_SLIDER)).to_have_value(str(second["index"]), timeout=30000)
    assert frame.text_content(".thr-value") == _fmt_threshold(second["threshold"])

    # A negative cost is refused in the input and sends nothing.
    frame.fill(FP_COST, "-1")
    frame.press(FP_COST, "Enter")
    assert frame.evaluate("s => !document.querySelector(s).checkValidity()", FP_COST)
    assert frame.text_content(".min-cost-text").startswith(
        "Lowest cost at threshold %s:" % _fmt_threshold(second["threshold"])
    )

    # Costs are kept per run and class while the tab is open.
    frame.select_option("select[aria-label='Class for the PR curve']", value="1")
    expect(frame.locator(".pr-body:not(.loading) .op-table th[scope=col]").first).to_have_text(
        "predicted dog", timeout=30000
    )
    expect(frame.locator(FN_COST)).to_have_value("")
    frame.select_option("select[aria-label='Class for the PR curve']", value="0")
    expect(frame.locator(".pr-body:not(.loading) .min-cost-text")).to_have_text(
        _min_cost_text(second), timeout=30000
    )
    expect(frame.locator(FN_COST)).to_have_value("1")
    expect(frame.locator(FP_COST)).to_have_value("10")
    assert not page.errors, page.errors


def test_an_answer_landing_while_a_cost_is_typed_keeps_the_text(page, server):
    # The answer to committed costs is held until the user has typed another false-positive
    # cost; the redraw it brings must keep that text in the focused input (it once came back
    # as the committed value), and committing the text asks the route for it.
    latest = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"][-1]
    frame = open_tab(page, server, run=CLEAN_RUN)
    wait_matrix(frame, latest)
    frame.wait_for_selector(".pr-body:not(.loading) .pr-chart", timeout=30000)
    held = []

    def hold(route):
        if "fn_cost=" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route(_route_pattern("pr"), hold)
    _type_costs(frame, "2", "3")
    deadline = time.time() + 30
    while not held and time.time() < deadline:
        page.wait_for_timeout(50)
    assert held, "committing the costs asked the route nothing"
    frame.fill(FP_COST, "7")  # typed, not committed yet
    committed = held.pop(0)
    assert "fn_cost=2" in committed.request.url and "fp_cost=3" in committed.request.url
    committed.continue_()

    # The held answer is drawn: the typed text and the focus are still there.
    expect(frame.locator(".min-cost-text")).to_have_text(
        _min_cost_text(_route_min_cost(server, latest, 2, 3)), timeout=30000
    )
    expect(frame.locator(FP_COST)).to_have_value("7")
    expect(frame.locator(FP_COST)).to_be_focused()
    for route in held:  # what the redraw committed meanwhile (Chrome's change on removal)
        route.continue_()
    page.unroute_all(behavior="ignoreErrors")
    frame.press(FP_COST, "Enter")
    expect(frame.locator(".pr-body:not(.loading) .min-cost-text")).to_have_text(
        _min_cost_text(_route_min_cost(server, latest, 2, 7)), timeout=30000
    )
    expect(frame.locator(FN_COST)).to_have_value("2")
    expect(frame.locator(FP_COST)).to_have_value("7")
    assert not page.errors, page.errors


def test_calibration_trajectories_and_comparison(page, server):
    steps = next(r for r in api_json(server, "runs")["runs"] if r["run"] == CLEAN_RUN)["steps"]
    latest = steps[-1]
    frame = open_tab(page, server, run=CLEAN_RUN)
    wait_matrix(frame, latest)

    # Calibration: ECE, MCE, direction and the examples per bin as served.
    cal = api_json(server, "calibration", run=CLEAN_RUN, split="validation", step=latest)
    frame.wait_for_selector(".cal-stat", timeout=20000)
    assert frame.text_content("[data-metric='ece']") == _fmt(cal["ece"])
    assert frame.text_content("[data-metric='mce']") == _fmt(cal["mce"])
    direction = cal["direction"] + "-confident" if cal["direction"] else "\u2014"
    assert frame.text_content("[data-metric='direction']") == direction
    counts = frame.eval_on_selector_all(".bin-count", "e => e.map(x => Number(x.textContent))")
    assert counts == [b["count"] for b in cal["bins"]]
    bars = frame.eval_on_selector_all(".reliability .bar", "e => e.length")
    assert bars == sum(b["accuracy"] is not None for b in cal["bins"])

    # Trajectories: worst classes first, a value as served, clicks set the class and the epoch.
    traj = api_json(server, "trajectories", run=CLEAN_RUN, split="validation")
    frame.wait_for_selector(".traj-legend button", timeout=20000)
    names = frame.eval_on_selector_all(".traj-legend button", "e => e.map(x => x.textContent)")
    assert names == [c["name"] for c in traj["classes"]]
    frame.select_option("select[aria-label='Metric of the per-class trajectories']", value="f1")
    worst = traj["classes"][0]
    title = frame.text_content(".trajectories-body .dots circle:last-child title")
    assert title == "%s, epoch %d: %s" % (
        worst["name"],
        traj["steps"][-1],
        _fmt(worst["f1"][-1], 4),
    )
    last = traj["classes"][-1]
    frame.click(".traj-legend button[data-class='%d']" % last["index"])
    frame.wait_for_function(
        "c => document.querySelector(\"select[aria-label='Class for the PR curve']\").value === String(c)",
        arg=last["index"],
        timeout=30000,
    )
    # A panel that is still loading changes the layout under a click made by position.
    frame.wait_for_function(
        "() => !document.querySelector('.loading, .loading-text')", timeout=20000
    )
    frame.click(".trajectories-body .dots circle", force=True)  # the first class's first epoch
    wait_matrix(frame, traj["steps"][0])

    # Back to the latest epoch: compare it with the first one (the default "before").
    frame.press("input[aria-label='Epoch']", "End")
    wait_matrix(frame, latest)
    cmp_ = api_json(
        server,
        "compare",
        run=CLEAN_RUN,
        split="validation",
        step=steps[0],
        other_run=CLEAN_RUN,
        other_step=latest,
    )
    frame.wait_for_function(
        "t => (document.querySelector('.compare-what') || {}).textContent?.includes(t)",
        arg="after: %s, epoch %d" % (CLEAN_RUN, latest),
        timeout=20000,
    )
    for i, p in enumerate(cmp_["per_class"]):
        cell = frame.text_content(".compare-table tr[data-class='%d'] td[data-metric='recall']" % i)
        change = p["recall_change"]
        assert cell == "%s \u2192 %s (%s)" % (
            _fmt(p["recall_before"]),
            _fmt(p["recall"]),
            ("+" if change > 0 else "") + _fmt(change),
        )
    diff = cmp_["difference"]
    for i, row in enumerate(diff["counts"]):
        for j, v in enumerate(row):
            sel = ".diff-matrix td[data-row='%d'][data-col='%d']" % (i, j)
            assert frame.text_content(sel) == ("+" if v > 0 else "") + str(v)
            want = {1: "better", -1: "worse"}.get(diff["improvement"][i][j], "same")
            assert want in frame.get_attribute(sel, "class").split()
    frame.click("label:has-text('Row-normalised')")
    v = diff["true"][0][0]
    frame.wait_for_function(
        "t => document.querySelector(\".diff-matrix td[data-row='0'][data-col='0']\").textContent === t",
        arg=("+" if v > 0 else "") + _fmt(v),
        timeout=30000,
    )
    assert len(frame.query_selector_all(".compare-pr .pr-line")) == 2

    # The other run as "before": its names stay text, and no markup runs.
    frame.select_option("select[aria-label='Run to compare with']", value=XSS_RUN)
    frame.wait_for_function(
        "t => (document.querySelector('.compare-what') || {}).textContent?.startsWith(t)",
        arg="Before: %s" % XSS_RUN,
        timeout=20000,
    )
    assert frame.query_selector_all("img") == [] and frame.query_selector_all("b") == []
    assert page.dialogs == []

    # A run written before calibration was recorded: a muted note, not an error.
    page.route(
        _route_pattern("calibration"),
        lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"error": "no calibration"}'
        ),
    )
    frame.select_option("select[aria-label='Run']", value=XSS_RUN)
    frame.wait_for_selector(".calibration-body p.muted", timeout=20000)
    assert "without calibration" in frame.text_content(".calibration-body")
    assert frame.query_selector(".calibration-body .notice.error") is None
    shot(page, "panels.png")
    assert not page.errors, page.errors


def test_multilabel_run_shows_each_labels_matrix(page, server):
    frame = open_tab(page, server, run=MULTILABEL_RUN)
    frame.wait_for_selector(".label-card .tbt-count", timeout=20000)
    data = api_json(server, "confusion", run=MULTILABEL_RUN)
    assert data["task"] == "multilabel" and data["matrix"] is None
    cards = frame.eval_on_selector_all(
        ".label-card",
        """cards => cards.map(c => ({
            name: c.querySelector('.label-name').textContent,
            cells: Object.fromEntries([...c.querySelectorAll('.tbt-cell')].map(
                v => [v.dataset.metric, v.querySelector('.tbt-count').textContent])),
            injected: c.querySelector('.label-name *') !== null}))""",
    )
    assert [card["name"] for card in cards] == MULTILABEL_NAMES
    assert not any(card["injected"] for card in cards)  # label names stay text
    for card, ((tn, fp), (fn, tp)) in zip(cards, data["matrices"]):
        assert {k: num(v) for k, v in card["cells"].items()} == {
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "tn": tn,
        }
    assert_close(num(frame.text_content("[data-metric='accuracy']")), data["accuracy"], "subset")
    assert_close(
        num(frame.text_content("[data-metric='hamming_loss']")), data["hamming_loss"], "hamming"
    )
    assert "Subset accuracy" in frame.text_content(".summary-cards")
    # The PR panel shows label 0's own curve: its positives are the rows with the label set.
    pr = api_json(server, "pr", run=MULTILABEL_RUN, **{"class": 0})
    assert pr["positives"] == data["per_class"][0]["support"]
    frame.wait_for_selector(".op-stats [data-metric]", timeout=20000)
    op = read_operating_point(frame)
    assert_operating_point(op, pr)
    # The comparison with the first epoch: per-label changes, the subset accuracy.
    cmp_ = api_json(server, "compare", run=MULTILABEL_RUN, step=0, other_step=1)
    frame.wait_for_function(
        "t => (document.querySelector('.compare-what') || {}).textContent?.includes(t)",
        arg="subset accuracy %s \u2192 %s"
        % (_fmt(cmp_["accuracy"]["before"]), _fmt(cmp_["accuracy"]["after"])),
        timeout=20000,
    )
    for i, p in enumerate(cmp_["per_class"]):
        cell = frame.text_content(".compare-table tr[data-class='%d'] td[data-metric='recall']" % i)
        assert cell.startswith("%s \u2192 %s" % (_fmt(p["recall_before"]), _fmt(p["recall"])))
    shot(page, "multilabel.png")


# ---------------------------------------------------------------------------------------------
# Many classes


def _top_pairs(matrix, limit):
    """The off-diagonal cells with count > 0, largest first, ties by (actual, predicted)."""
    import numpy as np

    m = np.asarray(matrix)
    support = m.sum(axis=1)
    pairs = [
        (int(m[i, j]), i, j) for i in range(len(m)) for j in range(len(m)) if i != j and m[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(i, j, count, count / support[i]) for count, i, j in pairs[:limit]]


def _per_class_rows(frame):
    return frame.eval_on_selector_all(
        ".per-class tbody tr",
        "rows => rows.map(r => [Number(r.dataset.class),"
        " [...r.querySelectorAll('.flag')].map(f => [f.dataset.flag, f.title])])",
    )


def _order(per, key, descending=False):
    """Class indices by `key`, undefined last, ties in class order (the table's sort)."""
    defined = [i for i, p in enumerate(per) if p[key] is not None]
    undefined = [i for i, p in enumerate(per) if p[key] is None]
    defined.sort(key=lambda i: (-per[i][key] if descending else per[i][key], i))
    return defined + undefined


def _inside(box, outer, slack=1.0):
    return (
        box["x"] >= outer["x"] - slack
        and box["y"] >= outer["y"] - slack
        and box["x"] + box["width"] <= outer["x"] + outer["width"] + slack
        and box["y"] + box["height"] <= outer["y"] + outer["height"] + slack
    )


def test_a_hundred_classes_heatmap_pairs_and_per_class_table(page, many_server):
    frame = open_tab(page, many_server, run=MANY_RUN)
    frame.wait_for_selector("canvas.heatmap[data-classes='100']", timeout=30000)
    full = api_json(many_server, "confusion", run=MANY_RUN, matrix="full")
    default = api_json(many_server, "confusion", run=MANY_RUN)
    names, per, matrix = full["class_names"], default["per_class"], full["matrix"]
    assert len(names) == 100 and len(matrix) == 100

    # The overview fits its panel; a click on the block of (actual 50, predicted 51) opens the
    # classes around it as a table of the served counts, and picks class 50 for the PR curve.
    canvas = frame.query_selector("canvas.heatmap")
    box = canvas.bounding_box()
    assert box["width"] <= frame.query_selector(".matrix-wrap").bounding_box()["width"]
    assert frame.eval_on_selector("canvas.heatmap", "c => c.dataset.classesPerBlock") == "1"
    side = box["width"] / 100
    canvas.hover(position={"x": 51.5 * side, "y": 50.5 * side})
    readout = frame.text_content(".heatmap-readout")
    share = matrix[50][51] / sum(matrix[50])
    assert readout == "actual %s \u2192 predicted %s: %d (%.1f%% of actual %s)" % (
        names[50],
        names[51],
        matrix[50][51],
        100 * share,
        names[50],
    )
    canvas.click(position={"x": 51.5 * side, "y": 50.5 * side})
    frame.wait_for_selector(".region .confusion td.cell")
    frame.wait_for_function(
        "() => document.querySelector(\"select[aria-label='Class for the PR curve']\").value === '50'"
    )
    cells = frame.eval_on_selector_all(
        ".region .confusion td.cell",
        "cs => cs.map(c => [Number(c.dataset.row), Number(c.dataset.col), c.textContent])",
    )
    assert len(cells) == 25 * 25
    assert {i for i, _, _ in cells} == set(range(38, 63))
    for i, j, text in cells:
        assert num(text) == matrix[i][j], (i, j)
    # A block of one cell opens that cell's examples, as /examples lists them.
    _check_examples_of(frame, many_server, MANY_RUN, names, 50, 51)

    # Scrolled to its far corner, the table keeps its column and row names in view.
    scroller = frame.query_selector(".region .scroll")
    scrolled = scroller.evaluate(
        "s => { s.scrollTop = s.scrollHeight; s.scrollLeft = s.scrollWidth;"
        " return [s.scrollTop, s.scrollLeft]; }"
    )
    assert scrolled[0] > 0 and scrolled[1] > 0, "the region table should overflow its box"
    outer = scroller.bounding_box()
    last_col = frame.query_selector(".region .confusion thead .col-name[data-col='62']")
    last_row = frame.query_selector_all(".region .confusion tbody .row-name")[-1]
    assert last_row.text_content() == names[62]
    assert _inside(last_col.bounding_box(), outer), "column names scrolled out of view"
    assert _inside(last_row.bounding_box(), outer), "row names scrolled out of view"
    shot(page, "many-classes-region.png")

    # The most confused pairs on screen are the top pairs of the served matrix.
    expected = _top_pairs(matrix, 20)
    rows = frame.eval_on_selector_all(
        ".pairs tbody tr",
        "rows => rows.map(r => [Number(r.dataset.actual), Number(r.dataset.predicted),"
        " r.querySelector('.pair').textContent, r.querySelector(\"[data-metric='count']\").textContent,"
        " r.querySelector(\"[data-metric='share']\").textContent])",
    )
    assert len(rows) == len(expected) == 20
    for (i, j, label, count, share_text), (ei, ej, ecount, eshare) in zip(rows, expected):
        assert (i, j, num(count)) == (ei, ej, ecount)
        assert label == "%s \u2192 %s" % (names[ei], names[ej])
        assert share_text == "%.1f%%" % (100 * eshare)
    first = frame.query_selector(".pairs tbody tr .pair")
    first.click()
    frame.wait_for_function(
        "v => document.querySelector(\"select[aria-label='Class for the PR curve']\").value === v",
        arg=str(expected[0][0]),
    )

    # The per-class table: the worst F1 first, the served flags with the served reasons.
    shown = _per_class_rows(frame)
    assert [i for i, _ in shown] == _order(per, "f1")
    for i, flags in shown:
        assert [f for f, _ in flags] == per[i]["flags"], names[i]
        assert [title for _, title in flags] == per[i]["flag_reasons"], names[i]
    flagged = sum(bool(p["flags"]) for p in per)
    assert 0 < flagged < len(per) // 2, "flags should single out the worst classes"

    # Search narrows it; sorting orders it.
    frame.fill("input[aria-label='Filter the per-class table by class name']", "marmot")
    frame.wait_for_function("() => document.querySelectorAll('.per-class tbody tr').length < 30")
    assert [i for i, _ in _per_class_rows(frame)] == [
        i for i in _order(per, "f1") if "marmot" in names[i]
    ]
    frame.fill("input[aria-label='Filter the per-class table by class name']", "")
    frame.click(".per-class button[data-sort='support']")
    assert [i for i, _ in _per_class_rows(frame)] == _order(per, "support")
    frame.click(".per-class button[data-sort='support']")
    assert [i for i, _ in _per_class_rows(frame)] == _order(per, "support", descending=True)
    assert (
        frame.get_attribute(".per-class th:has(button[data-sort='support'])", "aria-sort")
        == "descending"
    )
    frame.click(".per-class button[data-sort='recall']")
    assert [i for i, _ in _per_class_rows(frame)] == _order(per, "recall")

    # The PR class picker has a search box: Enter picks the first match.
    search = "input[aria-label='Search: Class for the PR curve']"
    frame.fill(search, names[42])
    frame.press(search, "Enter")
    frame.wait_for_function(
        "() => document.querySelector(\"select[aria-label='Class for the PR curve']\").value === '42'"
    )
    assert frame.eval_on_selector_all(
        "select[aria-label='Class for the PR curve'] option", "o => o.map(x => x.textContent)"
    ) == [names[42]]
    assert not page.errors, page.errors


def test_a_thousand_classes_heatmap_fits_and_shows(page, many_server):
    # How fast it shows is a benchmark's question (bench/render_time.py), not a test's.
    # about:blank has no storage of its own: only the tab's documents take the run.
    page.add_init_script(
        "try { localStorage.setItem('metricsdiag.run', %s); } catch (err) {}"
        % json.dumps(THOUSAND_RUN)
    )
    page.goto("about:blank")
    page.goto(many_server["base"] + "/#metricsdiag")
    page.wait_for_selector("iframe", timeout=30000)
    frame = None
    while frame is None:
        handle = page.query_selector("iframe")
        frame = handle.content_frame() if handle else None
    frame.wait_for_selector("canvas.heatmap[data-classes='1000']", timeout=30000)

    canvas = frame.query_selector("canvas.heatmap")
    assert (
        canvas.bounding_box()["width"]
        <= frame.query_selector(".matrix-wrap").bounding_box()["width"]
    )
    assert int(canvas.get_attribute("data-classes-per-block")) > 1
    painted = canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++; return n; }"
    )
    assert painted > 1000, "the heatmap should be drawn"
    data = api_json(many_server, "confusion", run=THOUSAND_RUN)
    if data.get("matrix_form") == "cells":
        frame.click("button:has-text('Load full matrix')")
        frame.wait_for_function(
            "() => !document.querySelector('.matrix-form') && document.querySelector('canvas.heatmap')"
        )
    assert len(frame.query_selector_all(".per-class tbody tr")) == 1000
    shot(page, "thousand-classes.png")

    # A click on a block of k x k classes opens the examples of its largest cell (the first in
    # row order among equal counts): the block off the diagonal with the most examples.
    import numpy as np

    full = api_json(many_server, "confusion", run=THOUSAND_RUN, matrix="full")
    names, matrix = full["class_names"], np.array(full["matrix"])
    k = int(canvas.get_attribute("data-classes-per-block"))
    size = -(-1000 // k)
    padded = np.zeros((size * k, size * k), dtype=np.int64)
    padded[:1000, :1000] = matrix
    sums = padded.reshape(size, k, size, k).sum(axis=(1, 3))
    np.fill_diagonal(sums, -1)
    a, b = (int(x) for x in np.unravel_index(np.argmax(sums), sums.shape))
    block = matrix[a * k : (a + 1) * k, b * k : (b + 1) * k]
    assert block.max() > 0
    i, j = np.unravel_index(np.argmax(block), block.shape)
    true, pred = a * k + int(i), b * k + int(j)
    # A panel that is still loading changes the layout under a click made by position.
    frame.wait_for_function(
        "() => !document.querySelector('.loading, .loading-text')", timeout=30000
    )
    side = canvas.bounding_box()["width"] / size
    canvas.click(position={"x": (b + 0.5) * side, "y": (a + 0.5) * side})
    _check_examples_of(frame, many_server, THOUSAND_RUN, names, true, pred)
    # Another nonzero cell of the region table the click opened lists its own.
    cells = frame.eval_on_selector_all(
        ".region .confusion td.cell",
        "cs => cs.map(c => [Number(c.dataset.row), Number(c.dataset.col)])",
    )
    other = max((matrix[r, c], r, c) for r, c in cells if (r, c) != (true, pred))
    assert other[0] > 0
    frame.click(".region .confusion td.cell[data-row='%d'][data-col='%d']" % other[1:])
    _check_examples_of(frame, many_server, THOUSAND_RUN, names, *other[1:])
    assert not page.errors, page.errors


def _check_examples_of(frame, server, run, names, true, pred):
    """The examples panel shows cell (true, pred) of `run`'s latest epoch as /examples does."""
    import test_frontend_browser_examples as examples  # it imports this module

    examples.wait_cell(frame, names[true], names[pred])
    doc = api_json(server, "examples", run=run, true=true, pred=pred)
    assert doc["count"] > 0
    examples.assert_same_examples(examples.read_examples(frame), doc)
    assert frame.text_content(".examples-wrap .cell-count") == "{:,}".format(doc["count"])


# ---------------------------------------------------------------------------------------------
# Flags that say why they fired, a calibration direction only when material, "Not checked"
# only with the step that would check it (the MetricsDiagWriter runs of
# test_flags_and_notices.py)

NOTICE_RUNS = ["small", "bad_class", "calibrated", "overconfident", "without_overlap"]


@pytest.fixture(scope="module")
def notices_server(tmp_path_factory):
    import test_flags_and_notices as notices

    root = tmp_path_factory.mktemp("tb-notices")
    notices.write_runs(root)
    _write_damaged(str(root), DAMAGED_RUN)
    yield from _serve(str(root), NOTICE_RUNS + [DAMAGED_RUN], tmp_path_factory)


# A run whose latest threshold counts inflate past their size and whose latest logs are not
# UTF-8: both refused, the rest served.
DAMAGED_RUN = "damaged"


def _write_damaged(logdir, run):
    import numpy as np

    from tb_metricsdiag.format import schema

    bad_logs = zoo.tensor_event(
        1, schema.LOGS_TAG, np.array(b"\xff", dtype=object), zoo.plugin_md(schema.KIND_LOGS)
    )
    bomb = zoo.encoded_counts_event(1, "validation", zoo.deflate_bomb(4 << 20), None)
    chunks = [zoo.file_version()] + zoo.step_records(0, 2, encoded=True)
    chunks += zoo.step_records(1, 2)[:1] + [zoo.framed(bomb), zoo.framed(bad_logs)]
    zoo.write_run(logdir, run, chunks)


def _flag_rows(frame):
    return frame.eval_on_selector_all(
        ".per-class tbody tr",
        "rows => rows.map(r => ({cls: Number(r.dataset.class),"
        " flags: [...r.querySelectorAll('.flag')].map(f => [f.dataset.flag, f.title]),"
        " reasons: [...r.querySelectorAll('.flag-reason')].map(e => e.textContent),"
        " cells: Object.fromEntries([...r.querySelectorAll('td.flagged')]"
        ".map(td => [td.dataset.metric, td.title]))}))",
    )


def test_a_flag_shows_why_it_fired(page, notices_server):
    frame = open_tab(page, notices_server, run="bad_class")
    frame.wait_for_selector(".per-class .flag", timeout=20000)
    per = api_json(notices_server, "confusion", run="bad_class")["per_class"]
    rows = _flag_rows(frame)
    assert sorted(row["cls"] for row in rows) == list(range(len(per)))
    for row in rows:
        entry = per[row["cls"]]
        assert [f for f, _ in row["flags"]] == entry["flags"]
        assert [title for _, title in row["flags"]] == entry["flag_reasons"]
        assert row["reasons"] == entry["flag_reasons"]
    (flagged,) = [row for row in rows if row["flags"]]
    (reason,) = per[2]["flag_reasons"]
    assert flagged["cls"] == 2 and flagged["cells"] == {"precision": reason}
    assert reason.startswith("precision 0.620 (95% CI ") and "median class's 0.880" in reason
    # The reason is on screen, not only in a tooltip.
    assert frame.is_visible(".per-class tr[data-class='2'] .flag-reason")
    shot(page, "flag-reason.png")

    # The 58-example run: a class at precision 0.90 is not flagged.
    frame.select_option("select[aria-label='Run']", value="small")
    frame.wait_for_function(
        "() => document.querySelectorAll('.per-class tbody tr').length === 3", timeout=20000
    )
    assert all(
        not p["flags"] for p in api_json(notices_server, "confusion", run="small")["per_class"]
    )
    assert frame.query_selector_all(".per-class .flag, .per-class .flag-reason") == []
    assert not page.errors, page.errors


def test_a_calibration_direction_only_when_material(page, notices_server):
    for run, shown in (("calibrated", "\u2014"), ("overconfident", "over-confident")):
        cal = api_json(notices_server, "calibration", run=run, split="validation", step=0)
        assert cal["miscalibrated"] is (run == "overconfident")
        frame = open_tab(page, notices_server, run=run)
        frame.wait_for_function(
            "e => document.querySelector(\"[data-metric='ece']\")?.textContent === e",
            arg=_fmt(cal["ece"]),
            timeout=20000,
        )
        assert frame.text_content("[data-metric='direction']") == shown, run
    assert not page.errors, page.errors


def test_not_checked_comes_with_the_step_that_checks_it(page, notices_server):
    diagnosis = api_json(notices_server, "diagnostics", run="without_overlap")
    actionable = [n for n in diagnosis["not_run"] if n["how"]]
    assert any(n["rule"] == "train_val_overlap" for n in actionable)
    frame = open_tab(page, notices_server, run="without_overlap")
    frame.wait_for_selector(".not-run .not-run-how", timeout=20000)
    items = frame.eval_on_selector_all(
        ".not-run-item",
        "items => items.map(i => [i.dataset.rule, i.querySelector('.not-run-how').textContent])",
    )
    # One item per reason and step, its rules together, in the order of the served list.
    groups = {}
    for n in actionable:
        groups.setdefault((n["reason"], n["how"]), []).append(n["rule"])
    assert items == [
        [" ".join(rules), "To check %s: %s." % ("them" if len(rules) > 1 else "it", how)]
        for (_, how), rules in groups.items()
    ]
    assert ["divergence not_learning overfitting", "train_val_overlap", "weak_slice"] == sorted(
        rules for rules, _ in items
    )
    assert "writer.add_overlap(" in dict(items)["train_val_overlap"]
    shot(page, "not-checked.png")
    assert not page.errors, page.errors


def test_a_damaged_run_shows_its_error_and_why_rules_did_not_run(page, notices_server):
    """The tab shows what the report says of a damaged run: the error naming each refused
    series (tag, steps, why), and the rules that needed it as damaged, not as unrecorded."""
    diagnosis = api_json(notices_server, "diagnostics", run=DAMAGED_RUN)
    [error] = [f for f in diagnosis["findings"] if f["severity"] == "error"]
    counts_tag = "metricsdiag/validation/threshold_counts"
    assert "tag %s, step 1: encoded threshold counts inflate" % counts_tag in error["detail"]
    assert "tag metricsdiag/logs, step 1: stored text is not UTF-8" in error["detail"]
    reasons = {n["rule"]: n for n in diagnosis["not_run"]}
    threshold = reasons["threshold_far_from_default"]
    assert threshold["reason"].startswith(
        "the validation threshold counts are damaged (tag %s, step 1:" % counts_tag
    )
    frame = open_tab(page, notices_server, run=DAMAGED_RUN)
    frame.wait_for_selector(".finding.error", timeout=20000)
    assert frame.text_content(".finding.error h3") == error["title"]
    assert frame.text_content(".finding.error .detail") == error["detail"]
    assert frame.text_content(".findings-summary .badge.error") == "1 error"
    item = frame.wait_for_selector(
        ".not-run-item[data-rule~='threshold_far_from_default']", timeout=20000
    )
    text = item.text_content()
    assert "(%s)." % threshold["reason"] in text and threshold["how"] in text, text
    shot(page, "damaged-run.png")
    assert not page.errors, page.errors

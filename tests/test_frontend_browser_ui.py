"""Browser tests of the tab's comparison, many-class, calibration, curve and 2x2 views.

Runs written with `MetricsDiagWriter` from seeded scores (and, where Lightning is installed, one
trained with the real Lightning callback in a subprocess of its own: its logged ``val_acc``) are served by a
real ``tensorboard`` process with this checkout's plugin; headless Debian chromium (Playwright)
opens the tab. What the tab shows is compared with what the routes serve. The browser, the page
and the TensorBoard helpers are those of test_frontend_browser.py.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import many_classes
import numpy as np
import pytest
import test_frontend_browser as tab
from test_frontend_browser import browser, page  # noqa: F401 (fixtures)

DIGITS = "digits"  # 10 classes named "0".."9", epochs 0..3
DIGITS_RENAMED = "digits_renamed"  # 10 classes named "zero".."nine", epochs 0..2
WINE = "wine"  # 3 classes, epochs 0..1
MANY = "many100"  # 100 classes, epochs 0..2: the difference is sent as full matrices
WIDE = "many150"  # 150 classes, epochs 0..1: the difference is sent as cells
BINARY = "binary"
BINARY_NAMES = ["benign", "malignant"]
MULTILABEL = "tagger"
LIGHTNING = "lightning/run/version_0"  # tests/lightning_runs.py's run directory
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

RUN_SELECT = "select[aria-label='Run to compare with']"
EPOCH_SELECT = "select[aria-label='Epoch to compare with']"
PR_CLASS = "select[aria-label='Class for the PR curve']"
ADD_CLASS = "input[aria-label='Add a class to the per-class trajectories']"
LINES = 10  # the worst classes the trajectories chart draws (panels/trajectories.js)
CHART_WIDTH = 520  # the drawn width of a line chart (charts/line_chart.js lineChart)


# ---------------------------------------------------------------------------------------------
# Runs and TensorBoard


def _write_classes(log_dir, classes, epochs, seed, names=None, examples=600):
    from tb_metricsdiag import MetricsDiagWriter

    with MetricsDiagWriter(log_dir, class_names=names) as writer:
        for step in range(epochs):
            y_true, y_score = many_classes.scores(classes, examples, seed + step)
            writer.add_evaluation(y_true, y_score, step, from_logits=False)


def _write_binary(log_dir, epochs=2):
    from tb_metricsdiag import MetricsDiagWriter

    rng = np.random.default_rng(5)
    with MetricsDiagWriter(log_dir, class_names=BINARY_NAMES) as writer:
        for step in range(epochs):
            y = (rng.random(400) < 0.4).astype(np.int64)
            logits = (1 + step) * (2 * y - 1) + rng.normal(size=400)
            writer.add_evaluation(y, (1 / (1 + np.exp(-logits))).astype(np.float32), step)


def _start_lightning_run(root):
    """Starts tests/torch_process/lightning_runs.py training a 3-class module with the real
    callback into `root`/lightning, in a process of its own (this one has TensorFlow, which must
    not meet PyTorch: tests/framework_processes.py)."""
    env = dict(os.environ, PYTHONPATH=tab.ROOT)
    script = os.path.join(tab.ROOT, "tests", "torch_process", "lightning_runs.py")
    return subprocess.Popen(
        [sys.executable, script, os.path.join(root, "lightning"), "1", "0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _lightning_written(process):
    """Whether the Lightning run was written: False where Lightning or PyTorch is missing."""
    output = process.communicate(timeout=300)[0].decode(errors="replace")
    if process.returncode == 0:
        return True
    missing = re.search(r"No module named '(lightning|torch)'", output)
    assert missing, output[-3000:]
    return False


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tb-ui"))
    lightning = _start_lightning_run(root)
    _write_classes(os.path.join(root, DIGITS), 10, epochs=4, seed=20)
    _write_classes(os.path.join(root, DIGITS_RENAMED), 10, epochs=3, seed=30, names=DIGIT_WORDS)
    _write_classes(os.path.join(root, WINE), 3, epochs=2, seed=40, names=["a", "b", "c"])
    names = many_classes.class_names
    _write_classes(os.path.join(root, MANY), 100, 3, seed=50, names=names(100), examples=2000)
    _write_classes(os.path.join(root, WIDE), 150, 2, seed=60, names=names(150), examples=3000)
    _write_binary(os.path.join(root, BINARY))
    tab._write_multilabel(os.path.join(root, MULTILABEL))
    # TensorBoard starts while Lightning trains, and reads its run when it is there.
    serving = tab._serve(
        root, [DIGITS, DIGITS_RENAMED, WINE, MANY, WIDE, BINARY, MULTILABEL], tmp_path_factory
    )
    server = next(serving)
    if _lightning_written(lightning):
        deadline = time.monotonic() + 60
        while LIGHTNING not in {r["run"] for r in tab.api_json(server, "runs")["runs"]}:
            assert time.monotonic() < deadline, "TensorBoard did not read the Lightning run"
            time.sleep(0.5)
    yield server
    next(serving, None)  # stops TensorBoard


@pytest.fixture
def ui_page(page):  # noqa: F811 (the fixture imported above)
    return page


def route_error(server, route, **params):
    """The `error` message of a route's 4xx answer."""
    url = server["api"] + "/" + route + "?" + urllib.parse.urlencode(params)
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(url, timeout=10)
    assert 400 <= failed.value.code < 500
    return json.loads(failed.value.read().decode("utf-8"))["error"]


def wait_text(frame, selector, text, how="includes"):
    """Waits until the text of `selector` `how` ("includes", "startsWith", "===") `text`."""
    test = "t === x" if how == "===" else "t.%s(x)" % how
    frame.wait_for_function(
        "([s, x]) => { const e = document.querySelector(s); const t = e ? e.textContent : '';"
        " return %s; }" % test,
        arg=[selector, text],
        timeout=20000,
    )


def open_run(pg, server, run):
    frame = tab.open_tab(pg, server, run=run)
    frame.wait_for_selector(".summary-cards .stat", timeout=30000)
    return frame


def client_point_to_page(pg, point):
    box = pg.query_selector("iframe").bounding_box()
    return box["x"] + point[0], box["y"] + point[1]


# ---------------------------------------------------------------------------------------------
# Comparison


def test_comparison_shows_why_runs_do_not_compare_and_keeps_the_before_epoch(ui_page, ui_server):
    frame = open_run(ui_page, ui_server, DIGITS)
    tab.wait_matrix(frame, 3)
    frame.select_option(PR_CLASS, value="8")
    wait_text(frame, ".compare-pr-title", "PR curves of class \u201c8\u201d")
    requests = []
    ui_page.on("request", lambda r: requests.append(r.url))

    # A 3-class run as "before": the route's reason, not a complaint about class 8.
    frame.select_option(RUN_SELECT, value=WINE)
    expected = route_error(ui_server, "compare", run=WINE, step=0, other_run=DIGITS, other_step=3)
    assert "'wine' has 3 classes and 'digits' 10" in expected
    wait_text(frame, ".compare-body .notice.error", expected)
    assert frame.text_content(".compare-body .notice.error") == "Could not compare." + expected
    asked = [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query) for u in requests]
    assert not [q for q in asked if q.get("run") == [WINE] and q.get("class") == ["8"]]

    # The "before" epoch stays when the other run has it.
    frame.select_option(RUN_SELECT, value=DIGITS)
    frame.select_option(EPOCH_SELECT, value="2")
    wait_text(frame, ".compare-what", "Before: %s, epoch 2 " % DIGITS, "startsWith")
    assert frame.query_selector(".compare-renamed") is None  # one run: the same names
    frame.select_option(RUN_SELECT, value=DIGITS_RENAMED)
    wait_text(frame, ".compare-what", "Before: %s, epoch 2 " % DIGITS_RENAMED, "startsWith")
    assert frame.input_value(EPOCH_SELECT) == "2"

    # Two runs of the same class count whose names differ: a warning naming them.
    listed = "; ".join(
        "class %d is \u201c%s\u201d in %s and \u201c%d\u201d in %s"
        % (i, DIGIT_WORDS[i], DIGITS_RENAMED, i, DIGITS)
        for i in range(3)
    )
    assert frame.text_content(".compare-renamed") == (
        "The two runs name their classes differently."
        "Classes are compared by index: %s; 7 more differ." % listed
    )
    cmp_ = tab.api_json(
        ui_server, "compare", run=DIGITS_RENAMED, step=2, other_run=DIGITS, other_step=3
    )
    row = frame.text_content(".compare-table tr[data-class='8'] td[data-metric='recall']")
    p = cmp_["per_class"][8]
    assert row.startswith("%.3f \u2192 %.3f" % (p["recall_before"], p["recall"]))

    # A run without that epoch: its first one.
    frame.select_option(RUN_SELECT, value=WINE)
    wait_text(frame, ".compare-body .notice.error", "'wine' has 3 classes")
    assert frame.input_value(EPOCH_SELECT) == "0"
    assert not ui_page.errors, ui_page.errors


# ---------------------------------------------------------------------------------------------
# 100 classes and more


def _dot_titles(frame, class_index):
    return frame.eval_on_selector_all(
        ".trajectories-body .dots[data-class='%d'] circle title" % class_index,
        "ts => ts.map(t => t.textContent)",
    )


def _highlighted(frame):
    return frame.evaluate(
        "() => { const svg = document.querySelector('.trajectories-body svg.line-chart');"
        " return {on: svg.classList.contains('has-highlight'),"
        " lines: [...svg.querySelectorAll('path.series.highlighted')].map(p => Number(p.dataset.class)),"
        " legend: [...document.querySelectorAll('.traj-legend li.highlighted')].map(li => Number(li.dataset.class)),"
        " readout: document.querySelector('.traj-readout').textContent}; }"
    )


# A point of the hit line of a class, in the iframe's client coordinates, where that line is
# the element under the pointer (other lines may cross it elsewhere).
POINT_ON_LINE = """c => {
  const path = document.querySelector(`.trajectories-body path.series-hit[data-class='${c}']`);
  path.scrollIntoView({block: 'center'});
  const length = path.getTotalLength();
  const ctm = path.getScreenCTM();
  for (let k = 1; k < 200; k++) {
    const p = path.getPointAtLength((length * k) / 200);
    const q = new DOMPoint(p.x, p.y).matrixTransform(ctm);
    if (document.elementFromPoint(q.x, q.y) === path) return [q.x, q.y];
  }
  return null;
}"""


def test_trajectories_draw_the_worst_classes_highlight_and_add_by_name(ui_page, ui_server):
    traj = tab.api_json(ui_server, "trajectories", run=MANY, split="validation")
    classes = traj["classes"]
    assert len(classes) == 100 and traj["steps"] == [0, 1, 2]
    frame = open_run(ui_page, ui_server, MANY)
    wait_text(frame, ".trajectories-body .caption", "of the worst latest F1 of 100")

    # The worst 10 by the route's order, each line with the served values.
    drawn = frame.eval_on_selector_all(
        ".trajectories-body path.series", "ps => ps.map(p => Number(p.dataset.class))"
    )
    assert drawn == [c["index"] for c in classes[:LINES]]
    names = frame.eval_on_selector_all(
        ".traj-legend button.link", "bs => bs.map(b => b.textContent)"
    )
    assert names == [c["name"] for c in classes[:LINES]]
    colours = frame.eval_on_selector_all(
        ".trajectories-body path.series", "ps => ps.map(p => getComputedStyle(p).stroke)"
    )
    assert len(set(colours)) == LINES, colours
    for c in classes[:LINES]:
        assert _dot_titles(frame, c["index"]) == [
            "%s, epoch %d: %s" % (c["name"], s, tab._fmt(v, 4))
            for s, v in zip(traj["steps"], c["recall"])
        ]

    # Pointing at a legend entry highlights its line and reads its values.
    third = classes[2]
    frame.hover(".traj-legend li[data-class='%d'] button.link" % third["index"])
    state = _highlighted(frame)
    assert state["on"] and state["lines"] == [third["index"]]
    assert state["legend"] == [third["index"]]
    assert state["readout"] == "%s: recall %s at epoch 0 \u2192 %s at epoch 2" % (
        third["name"],
        tab._fmt(third["recall"][0]),
        tab._fmt(third["recall"][-1]),
    )
    dimmed = frame.eval_on_selector_all(
        ".trajectories-body path.series:not(.highlighted)",
        "ps => ps.map(p => Number(getComputedStyle(p).opacity))",
    )
    assert dimmed and all(o < 0.5 for o in dimmed)

    # Pointing at a line highlights that line; leaving the chart clears it.
    sixth = classes[5]
    point = frame.evaluate(POINT_ON_LINE, sixth["index"])
    assert point is not None, "no point of the line is free of the others"
    ui_page.mouse.move(*client_point_to_page(ui_page, point))
    state = _highlighted(frame)
    assert state["lines"] == [sixth["index"]] and state["legend"] == [sixth["index"]]
    ui_page.mouse.move(1, 1)
    assert not _highlighted(frame)["on"]

    # A class found by name joins the chart, and leaves it again.
    best = classes[-1]
    frame.fill(ADD_CLASS, best["name"].upper())
    frame.press(ADD_CLASS, "Enter")
    frame.wait_for_function(
        "n => document.querySelectorAll('.trajectories-body path.series').length === n",
        arg=LINES + 1,
    )
    assert (
        frame.eval_on_selector(
            ".trajectories-body path.series:last-of-type", "p => Number(p.dataset.class)"
        )
        == best["index"]
    )
    frame.select_option("select[aria-label='Metric of the per-class trajectories']", value="f1")
    assert _dot_titles(frame, best["index"]) == [
        "%s, epoch %d: %s" % (best["name"], s, tab._fmt(v, 4))
        for s, v in zip(traj["steps"], best["f1"])
    ]
    frame.click("button[aria-label='Remove %s from the chart']" % best["name"])
    assert len(frame.query_selector_all(".trajectories-body path.series")) == LINES
    frame.fill(ADD_CLASS, "no-such-class")
    frame.press(ADD_CLASS, "Enter")
    assert (
        frame.text_content(".traj-find-note") == "No class is named like \u201cno-such-class\u201d."
    )
    tab.shot(ui_page, "trajectories-100.png")
    assert not ui_page.errors, ui_page.errors


def _block_pixel(frame, selector, row, col):
    """[r, g, b, a] at the centre of cell (row, col) of the heatmap canvas (one class a block)."""
    return frame.eval_on_selector(
        selector,
        "(c, [i, j]) => { const n = Number(c.dataset.classes); const w = c.width / n;"
        " return [...c.getContext('2d').getImageData(Math.floor((j + 0.5) * w),"
        " Math.floor((i + 0.5) * w), 1, 1).data]; }",
        [row, col],
    )


def _check_difference_cell(frame, names, i, j, change, improvement):
    """Points at cell (i, j) of the difference heatmap: its readout, and its colour."""
    canvas = frame.query_selector("canvas.diff-heatmap")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    side = box["width"] / len(names)
    canvas.hover(position={"x": (j + 0.5) * side, "y": (i + 0.5) * side})
    verdict = {1: "better", -1: "worse"}.get(improvement, "unchanged")
    assert frame.text_content(".compare-body .heatmap-readout") == (
        "actual %s \u2192 predicted %s: %s (%s)"
        % (names[i], names[j], ("+" if change > 0 else "") + str(change), verdict)
    )
    r, g, b, a = _block_pixel(frame, "canvas.diff-heatmap", i, j)
    assert a > 0
    if improvement > 0:
        assert g > r, (r, g, b)  # green
    else:
        assert r > g, (r, g, b)  # red


def test_difference_heatmap_above_thirty_classes(ui_page, ui_server):
    cmp_ = tab.api_json(ui_server, "compare", run=MANY, step=0, other_run=MANY, other_step=2)
    assert cmp_["difference_form"] == "full"
    names = cmp_["class_names"]
    counts = np.array(cmp_["difference"]["counts"])
    improvement = np.array(cmp_["difference"]["improvement"])
    frame = open_run(ui_page, ui_server, MANY)
    frame.wait_for_selector("canvas.diff-heatmap[data-classes='100']", timeout=30000)
    assert frame.get_attribute("canvas.diff-heatmap", "data-classes-per-block") == "1"
    assert frame.query_selector(".compare-body table.diff-matrix") is None

    off = ~np.eye(100, dtype=bool)

    def first(where):
        return tuple(int(x) for x in np.argwhere(where)[0])

    worse = first(off & (improvement < 0) & (counts != 0))
    better = first(off & (improvement > 0) & (counts != 0))
    for i, j in (worse, better):
        _check_difference_cell(frame, names, i, j, int(counts[i, j]), int(improvement[i, j]))
    same = first(off & (improvement == 0) & (counts == 0))
    assert _block_pixel(frame, "canvas.diff-heatmap", *same)[3] == 0

    # A click opens the 25 x 25 classes around the block with the served changes, and picks its
    # actual class for both PR curves.
    i, j = better
    canvas = frame.query_selector("canvas.diff-heatmap")
    side = canvas.bounding_box()["width"] / 100
    canvas.click(position={"x": (j + 0.5) * side, "y": (i + 0.5) * side})
    frame.wait_for_selector(".compare-body .region .diff-matrix td", timeout=30000)
    cells = frame.eval_on_selector_all(
        ".compare-body .region .diff-matrix td",
        "cs => cs.map(c => [Number(c.dataset.row), Number(c.dataset.col), c.textContent,"
        " c.classList.contains('better') ? 1 : c.classList.contains('worse') ? -1 : 0])",
    )
    assert len(cells) == 25 * 25
    assert any(r == i and c == j for r, c, _, _ in cells)
    for r, c, text, verdict in cells:
        v = int(counts[r, c])
        assert text == ("+" if v > 0 else "") + str(v), (r, c)
        assert verdict == improvement[r, c], (r, c)
    frame.wait_for_function(
        "v => document.querySelector(\"select[aria-label='Class for the PR curve']\").value === v",
        arg=str(i),
    )
    wait_text(frame, ".compare-pr-title", "\u201c%s\u201d" % names[i])

    # 150 classes: the answer sends the changed cells only, drawn the same way.
    frame.select_option("select[aria-label='Run']", value=WIDE)
    frame.wait_for_selector("canvas.diff-heatmap[data-classes='150']", timeout=30000)
    wide = tab.api_json(ui_server, "compare", run=WIDE, step=0, other_run=WIDE, other_step=1)
    assert wide["difference_form"] == "cells" and wide["difference"] is None
    cells = wide["difference_cells"]
    for verdict in (-1, 1):
        k = next(
            k
            for k, (r, c) in enumerate(zip(cells["rows"], cells["cols"]))
            if r != c and cells["improvement"][k] == verdict and cells["counts"][k] != 0
        )
        _check_difference_cell(
            frame,
            wide["class_names"],
            cells["rows"][k],
            cells["cols"][k],
            cells["counts"][k],
            verdict,
        )
    tab.shot(ui_page, "difference-heatmap.png")
    assert not ui_page.errors, ui_page.errors


def _bottom(box):
    return box["y"] + box["height"]


def test_no_empty_space_under_the_heatmap(ui_page, ui_server):
    frame = open_run(ui_page, ui_server, MANY)
    frame.wait_for_selector("canvas.heatmap[data-classes='100']", timeout=30000)
    frame.wait_for_selector(".pairs tbody tr", timeout=20000)
    card = frame.query_selector("section.matrix-card").bounding_box()
    side = frame.query_selector(".side-column").bounding_box()
    content = frame.query_selector(".matrix-wrap > .caption").bounding_box()
    # The matrix card ends under its caption (its padding), the column beside it with it.
    assert _bottom(card) - _bottom(content) <= 24, (card, content)
    assert abs(_bottom(side) - _bottom(card)) <= 1, (side, card)
    assert side["x"] > card["x"] + card["width"], "the column should stand beside the matrix"
    # Both cards of the column show rows; the per-class table scrolls inside its card.
    per_class = frame.query_selector(".table-wrap .scroll")
    assert per_class.evaluate("s => s.scrollHeight > s.clientHeight + 100")
    assert per_class.bounding_box()["height"] > 200
    assert frame.query_selector(".pairs-wrap").bounding_box()["height"] > 150
    last = frame.query_selector_all(".per-class tbody tr")[-1]
    last.scroll_into_view_if_needed()
    assert tab._inside(last.bounding_box(), per_class.bounding_box())
    tab.shot(ui_page, "many-classes-layout.png")

    # Ten classes: the matrix is a table and the column beside it keeps its natural height.
    frame.select_option("select[aria-label='Run']", value=DIGITS)
    tab.wait_matrix(frame, 3)
    frame.wait_for_function("() => !document.querySelector('.matrix-card.many-classes')")
    per_class = frame.query_selector(".table-wrap .scroll")
    assert per_class.evaluate("s => s.scrollHeight <= s.clientHeight + 1")
    assert not ui_page.errors, ui_page.errors


# ---------------------------------------------------------------------------------------------
# Calibration, training curves, 2x2 tables


def _reliability_titles(frame):
    frame.wait_for_selector(".reliability .axis-title", timeout=20000)
    return frame.eval_on_selector_all(
        ".reliability .axis-title", "ts => ts.map(t => t.textContent)"
    )


def test_reliability_axes_say_what_the_bins_hold(ui_page, ui_server):
    frame = open_run(ui_page, ui_server, BINARY)
    for run, titles in (
        (BINARY, ["Predicted probability", "Fraction of positives"]),
        (DIGITS, ["Confidence (top class)", "Accuracy"]),
        (MULTILABEL, ["Predicted probability", "Fraction of labels set"]),
    ):
        frame.select_option("select[aria-label='Run']", value=run)
        frame.wait_for_function(
            "y => [...document.querySelectorAll('.reliability .axis-title')]"
            ".some(t => t.textContent === y)",
            arg=titles[1],
            timeout=20000,
        )
        assert _reliability_titles(frame) == titles
        cal = tab.api_json(ui_server, "calibration", run=run)
        bars = frame.eval_on_selector_all(".reliability .bar", "bs => bs.length")
        assert bars == sum(b["accuracy"] is not None for b in cal["bins"])
        if run == BINARY:
            caption = frame.text_content(".calibration-body .caption")
            assert "bars: fraction of positives (class \u201cmalignant\u201d) per bin" in caption
    assert not ui_page.errors, ui_page.errors


def _chart_scales(frame):
    """Each training-curve chart: [rendered width, viewBox width, tick label font px]."""
    return frame.eval_on_selector_all(
        ".curves-body svg.line-chart",
        "svgs => svgs.map(s => [s.getBoundingClientRect().width, s.viewBox.baseVal.width,"
        " s.querySelector('.axes text').getBoundingClientRect().height])",
    )


def test_every_logged_series_is_charted_at_its_drawn_size(browser, ui_server):  # noqa: F811
    served = {r["run"] for r in tab.api_json(ui_server, "runs")["runs"]}
    if LIGHTNING not in served:
        pytest.skip("Lightning or PyTorch is not installed")
    curves = tab.api_json(ui_server, "curves", run=LIGHTNING)["curves"]
    assert {"loss", "val_loss", "val_acc"} <= set(curves)
    context = browser.new_context(viewport={"width": 1900, "height": 1000})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    try:
        frame = tab.open_tab(pg, ui_server, run=LIGHTNING)
        frame.wait_for_selector(".curve-panel[data-quantity='acc'] .series", timeout=20000)
        quantities = frame.eval_on_selector_all(
            ".curve-panel", "fs => fs.map(f => f.dataset.quantity)"
        )
        # Loss first, then every other logged quantity by name; the route's ECE too.
        assert quantities == ["loss", "acc", "ece"]
        titles = frame.eval_on_selector_all(
            ".curve-panel[data-quantity='acc'] .dots.val circle title",
            "ts => ts.map(t => t.textContent)",
        )
        assert titles == [
            "validation acc, epoch %d: %s" % (s, tab._fmt(v, 4))
            for s, v in zip(curves["val_acc"]["steps"], curves["val_acc"]["values"])
        ]
        assert "Other logged series" not in frame.text_content(".curves-body")

        # Drawn at its own width on a wide screen: text keeps its size.
        scales = _chart_scales(frame)
        assert len(scales) == 3
        for width, view, font in scales:
            assert abs(width - view) <= 0.5 and view == CHART_WIDTH, scales
            assert font < 16, scales

        # A run with a single chart does not stretch it either.
        frame.select_option("select[aria-label='Run']", value=MANY)
        frame.wait_for_function(
            "() => document.querySelectorAll('.curves-body svg.line-chart').length === 1"
            " && document.querySelector(\".curve-panel[data-quantity='ece']\")",
            timeout=20000,
        )
        ((width, view, font),) = _chart_scales(frame)
        assert abs(width - CHART_WIDTH) <= 0.5 and font < 16
        assert not pg.errors, pg.errors
    finally:
        context.close()


# The headings, the cells in document order and their places of the 2x2 table `selector`,
# once it is laid out (panels draw it again as answers arrive).
READ_TWO_BY_TWO = """s => {
  const t = document.querySelector(s);
  const cells = t ? [...t.querySelectorAll('td.tbt-cell')] : [];
  if (cells.length !== 4 || cells.some(c => !c.getBoundingClientRect().width)) return null;
  return {
    cols: [...t.querySelectorAll('thead th[scope=col]')].map(x => x.textContent),
    rows: [...t.querySelectorAll('tbody th[scope=row]')].map(x => x.textContent),
    cells: cells.map(c => {
      const b = c.getBoundingClientRect();
      return [c.dataset.metric, c.querySelector('.tbt-label').textContent,
              c.querySelector('.tbt-count').textContent, b.x, b.y];
    }),
  };
}"""


def _two_by_two(frame, selector):
    table = frame.wait_for_function(READ_TWO_BY_TWO, arg=selector, timeout=20000).json_value()
    cells = {key: (label, text, x, y) for key, label, text, x, y in table["cells"]}
    assert [key for key, *_ in table["cells"]] == ["tp", "fn", "fp", "tn"]
    assert {key: label for key, (label, *_) in cells.items()} == {
        "tp": "TP",
        "fn": "FN",
        "fp": "FP",
        "tn": "TN",
    }
    # TP top left, FN top right, FP bottom left, TN bottom right.
    x = {key: cell[2] for key, cell in cells.items()}
    y = {key: cell[3] for key, cell in cells.items()}
    assert abs(x["tp"] - x["fp"]) < 1 and abs(x["fn"] - x["tn"]) < 1 and x["tp"] < x["fn"] - 10
    assert abs(y["tp"] - y["fn"]) < 1 and abs(y["fp"] - y["tn"]) < 1 and y["tp"] < y["fp"] - 10
    counts = {key: tab.num(cell[1]) for key, cell in cells.items()}
    return table["cols"], table["rows"], counts


def test_every_two_by_two_has_one_labelled_layout(ui_page, ui_server):
    frame = open_run(ui_page, ui_server, BINARY)
    wait_text(frame, ".op-table thead", "predicted malignant")
    pr = tab.api_json(ui_server, "pr", run=BINARY)
    assert pr["class"] == 1
    headings = (
        ["predicted malignant", "predicted benign"],
        ["actual malignant", "actual benign"],
    )
    cols, rows, counts = _two_by_two(frame, ".op-table")
    assert (cols, rows) == headings
    i = int(frame.input_value("input[aria-label='Decision threshold']"))
    assert counts == {key: pr[key][i] for key in ("tp", "fn", "fp", "tn")}

    # The counts at the lowest-cost threshold: the same layout, the route's matrix.
    tab._type_costs(frame, "5", "1")
    frame.wait_for_selector(".pr-body:not(.loading) .cost-matrix td.tbt-cell", timeout=30000)
    cost = tab.api_json(ui_server, "pr", run=BINARY, fn_cost=5, fp_cost=1)["min_cost"]
    cols, rows, counts = _two_by_two(frame, ".cost-matrix")
    assert (cols, rows) == headings
    (tn, fp), (fn, tp) = cost["matrix"]
    assert counts == {"tp": tp, "fn": fn, "fp": fp, "tn": tn}

    # Each label of a multi-label run: the same layout.
    frame.select_option("select[aria-label='Run']", value=MULTILABEL)
    frame.wait_for_selector(".label-card .tbt-cell", timeout=20000)
    data = tab.api_json(ui_server, "confusion", run=MULTILABEL)
    for k, ((tn, fp), (fn, tp)) in enumerate(data["matrices"]):
        cols, rows, counts = _two_by_two(frame, ".label-card[data-label='%d'] table" % k)
        assert (cols, rows) == (["predicted", "not predicted"], ["set", "absent"])
        assert counts == {"tp": tp, "fn": fn, "fp": fp, "tn": tn}
    # and its operating point: the rows with the label over those without it.
    wait_text(frame, ".op-table tbody", "%s set" % tab.MULTILABEL_NAMES[0])
    pr = tab.api_json(ui_server, "pr", run=MULTILABEL, **{"class": 0})
    cols, rows, counts = _two_by_two(frame, ".op-table")
    name = tab.MULTILABEL_NAMES[0]
    assert (cols, rows) == (["predicted", "not predicted"], [name + " set", name + " absent"])
    i = int(frame.input_value("input[aria-label='Decision threshold']"))
    assert counts == {key: pr[key][i] for key in ("tp", "fn", "fp", "tn")}
    tab.shot(ui_page, "two-by-two.png")
    assert not ui_page.errors, ui_page.errors

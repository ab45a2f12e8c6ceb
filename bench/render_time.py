"""Render time of the tab: seconds from opening TensorBoard's page on the tab to the confusion
panel showing data, at 10, 100 and 1,000 classes.

For each class count one run of one validation epoch of ``EXAMPLES`` examples is written with
`MetricsDiagWriter` from seeded scores (``tests/many_classes.py``, as the browser tests use);
``tensorboard`` serves them (`backend_latency.Server`, ``--load_fast=false``). Headless Debian
chromium (Playwright) opens ``/#metricsdiag`` in a fresh browser context per load with the run
preselected (the tab's remembered run, in localStorage), and the clock stops when the confusion
panel shows the run's data: its table (up to 30 classes) or its heatmap, drawn. One unmeasured
load per run first (TensorBoard's own page and the browser's caches warm up), then ``--loads``
measured loads; printed: median, fastest and slowest, from opening TensorBoard's page and from
the start of the tab's own document (TensorBoard's iframe; its own clock), and the size of the
``/confusion`` answer.

The runs overview (``--overview LOGDIR``, a logdir of many runs, e.g. the one
``bench/overview.py --logdir LOGDIR`` writes): the tab opened on that logdir, the clock from
the end of the ``/overview`` answer's transfer (its resource timing, the tab's own clock) to the
frame that shows the table with one row per run: parsing, sorting and drawing the table.

Run: ``python bench/render_time.py`` (``--loads N``; ``--quick``: 3 loads; ``--overview LOGDIR``
measures the runs overview instead, with both loaders).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from _common import REPO_ROOT, describe_machine
from backend_latency import ROUTE_PREFIX, Server, get, plugin_runs_ready

sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
import many_classes  # noqa: E402 (the browser tests' runs)

CLASS_COUNTS = (10, 100, 1000)
EXAMPLES = 10_000
LOADS, QUICK_LOADS = 7, 3
TARGET_S = 2.0
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 1000}
# Shown data: the run's own table cells, or its heatmap once drawn for its class count.
# Returns the tab document's own clock then (ms since its navigation started), else false.
SHOWN = (
    "n => { const c = document.querySelector('canvas.heatmap');"
    " const shown = n > 30 ? c && c.dataset.classes === String(n)"
    " : document.querySelectorAll('.confusion td.cell').length === n * n"
    " && !document.querySelector('.matrix-wrap.loading');"
    " return shown ? performance.now() : false; }"
)


def load_seconds(browser, base, run, classes):
    """(seconds from navigating to TensorBoard's page on the tab, seconds from the start of the
    tab's own document) until the confusion panel shows `run`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(
        "try { localStorage.setItem('metricsdiag.run', %s); } catch (err) {}" % json.dumps(run)
    )
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(base + "/#metricsdiag")
        frame = None
        while frame is None:
            handle = page.wait_for_selector("iframe", timeout=60000)
            frame = handle.content_frame()
        tab_ms = frame.wait_for_function(SHOWN, arg=classes, timeout=60000, polling="raf")
        return time.perf_counter() - start, tab_ms.json_value() / 1000
    finally:
        context.close()


# The table drawn with one row per run: the tab's clock then and the end of the /overview
# answer's transfer, else false.
OVERVIEW_DRAWN = (
    "n => { if (document.querySelectorAll('.runs-table tbody tr').length !== n) return false;"
    " const answer = performance.getEntriesByType('resource')"
    ".filter(r => r.name.includes('/overview')).pop();"
    " return answer ? [performance.now(), answer.responseEnd] : false; }"
)
TARGET_OVERVIEW_S = 1.0


def overview_seconds(browser, base, runs):
    """Seconds from the end of the /overview answer's transfer to the table of ``runs`` rows."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(base + "/#metricsdiag")
        frame = None
        while frame is None:
            frame = page.wait_for_selector("iframe", timeout=60000).content_frame()
        drawn, answered = frame.wait_for_function(
            OVERVIEW_DRAWN, arg=runs, timeout=120000, polling="raf"
        ).json_value()
        return (drawn - answered) / 1000
    finally:
        context.close()


def measure_overview(logdir, loads):
    """The table's drawing time over a logdir of `bench/overview.py`, with both loaders."""
    import overview
    from playwright.sync_api import sync_playwright

    runs = sum(
        any(name.startswith("events.out.tfevents") for name in files)
        for _, _, files in os.walk(logdir)
    )

    for load_fast in ("true", "false"):
        with Server(logdir, load_fast, with_plugin=True) as server:
            server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(runs, overview.EPOCHS))
            get(server.base, ROUTE_PREFIX + "/overview")  # cold: read and diagnosed once
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                overview_seconds(browser, server.base, runs)  # unmeasured
                times = [overview_seconds(browser, server.base, runs) for _ in range(loads)]
                browser.close()
            print("| --load_fast=%s | %d | %s |" % (load_fast, runs, spread(times)))
    print("target: the table drawn within %.0f s of the data" % TARGET_OVERVIEW_S)


def spread(times):
    return "%.2f s (%.2f, %.2f)" % (statistics.median(times), min(times), max(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--overview", metavar="LOGDIR", default=None)
    args = parser.parse_args()
    loads = args.loads or (QUICK_LOADS if args.quick else LOADS)
    from playwright.sync_api import sync_playwright

    print(describe_machine())
    if args.overview:
        print("| loader | runs | table drawn after the answer: median (fastest, slowest) |")
        print("|---|---|---|")
        measure_overview(args.overview, loads)
        return
    with tempfile.TemporaryDirectory() as logdir:
        runs = {}
        for classes in CLASS_COUNTS:
            run = "classes%d" % classes
            many_classes.write_run(os.path.join(logdir, run), classes, EXAMPLES, seed=classes)
            runs[run] = classes
        with Server(logdir, "false", with_plugin=True) as server:
            server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(len(runs), 1))
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                print(
                    "| classes | from opening TensorBoard: median (fastest, slowest)"
                    " | from the tab's document: median (fastest, slowest) | `/confusion` answer |"
                )
                print("|---|---|---|---|")
                for run, classes in runs.items():
                    _, body, _ = get(server.base, ROUTE_PREFIX + "/confusion?run=" + run)
                    size = len(json.dumps(body))
                    load_seconds(browser, server.base, run, classes)  # unmeasured
                    pairs = [load_seconds(browser, server.base, run, classes) for _ in range(loads)]
                    print(
                        "| %s | %s | %s | %.0f KB, %s |"
                        % (
                            f"{classes:,}",
                            spread([page for page, _ in pairs]),
                            spread([tab for _, tab in pairs]),
                            size / 1000,
                            body.get("matrix_form", "full"),
                        )
                    )
                browser.close()
    print("target: data on screen within %.0f s at 1,000 classes" % TARGET_S)


if __name__ == "__main__":
    main()

"""Makes docs/screenshot.png, the README's picture of the tab, from the demo.

Trains the demo (``demo/run_demo.py --quick --no-serve``) into a temporary directory, serves it
with TensorBoard and this checkout's plugin, and opens the tab in headless Debian chromium
(Playwright) on the ``overfitting_digits`` run at its latest epoch, with the ROC curve of its
worst class (the lowest latest F1) and the comparison of that epoch with the best one (by
validation loss). It saves the top of the tab
(run, epoch, findings, summary) above its newer panels: ROC, calibration, per-class
trajectories and the comparison. The two parts are joined in the browser, so nothing beyond
Playwright is needed.

Usage::

    python demo/screenshot.py [--out docs/screenshot.png] [--logdir DIR] [--chromium PATH]

``--logdir`` uses demo runs already written there instead of training them again.
"""

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "demo", "run_demo.py")
RUN = "overfitting_digits"
DEMO_RUNS = 6
WIDTH = 1280  # CSS pixels: the tab's two-column layout
STARTUP_TIMEOUT_S = 120
PANEL_TIMEOUT_MS = 60000
# CSS pixels kept around each part: within the tab's 14 px gap between cards, clear of the
# border and shadow of the card before.
MARGIN = 10


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


def train_demo(logdir):
    subprocess.run(
        [sys.executable, DEMO, "--quick", "--no-serve", "--logdir", logdir],
        check=True,
        env=dict(os.environ, PYTHONPATH=REPO),
    )


def start_tensorboard(logdir, log):
    """A ``tensorboard`` process on a free port serving `logdir` with this checkout's plugin,
    once the plugin lists every demo run with its epochs: (process, base URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            runs = get_json(base + "/data/plugin/metricsdiag/runs")["runs"]
            if sum(bool(r.get("steps")) for r in runs) >= DEMO_RUNS:
                return process, base
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    process.kill()
    log.seek(0)
    raise SystemExit("TensorBoard did not serve the demo runs:\n" + log.read().decode()[-3000:])


def open_tab(page, base):
    """The tab's frame on RUN, its panels drawn, the ROC view of the worst class and the
    comparison with the best epoch chosen."""
    page.goto(base + "/#metricsdiag")
    frame = None
    while frame is None:
        frame = page.wait_for_selector("iframe", timeout=PANEL_TIMEOUT_MS).content_frame()
    frame.wait_for_selector("select[aria-label='Run'] option", state="attached")
    frame.select_option("select[aria-label='Run']", value=RUN)
    for selector in (".confusion td.cell", ".cal-stat", ".traj-legend li", ".compare-what"):
        frame.wait_for_selector(selector, timeout=PANEL_TIMEOUT_MS)
    api = base + "/data/plugin/metricsdiag/"
    worst = get_json(api + "trajectories?run=" + RUN)["classes"][0]
    frame.select_option("select[aria-label='Class for the PR curve']", value=str(worst["index"]))
    frame.wait_for_function(
        "t => (document.querySelector('.compare-pr-title') || {}).textContent?.includes(t)",
        arg="\u201c%s\u201d" % worst["name"],
        timeout=PANEL_TIMEOUT_MS,
    )
    frame.click("label:has(input[data-mode='roc'])")
    frame.wait_for_selector(".pr-chart .chance", timeout=PANEL_TIMEOUT_MS)
    best = get_json(api + "curves?run=" + RUN)["best_epoch"]
    frame.select_option("select[aria-label='Epoch to compare with']", value=str(best))
    frame.wait_for_function(
        "t => (document.querySelector('.compare-what') || {}).textContent?.startsWith(t)",
        arg="Before: %s, epoch %d " % (RUN, best),
        timeout=PANEL_TIMEOUT_MS,
    )
    return frame


def part_boxes(page, frame):
    """The page's boxes (x, y, width, height) of the two parts: from the top of the page to the
    summary cards, and from the PR / ROC card to the comparison card."""
    offset = page.query_selector("iframe").bounding_box()

    def edges(selector):
        box = frame.query_selector(selector).bounding_box()  # page coordinates
        return box["y"], box["y"] + box["height"]

    top = (0, 0, WIDTH, edges(".summary-cards")[1] + MARGIN)
    first = edges("section[aria-labelledby='md-pr-body-title']")[0]
    last = edges("section[aria-labelledby='md-compare-body-title']")[1]
    assert offset["x"] == 0, offset
    return [top, (0, first - MARGIN, WIDTH, last - first + 2 * MARGIN)]


def screenshot(out, logdir, chromium):
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryFile() as log:
        process, base = start_tensorboard(logdir, log)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": 1000}, color_scheme="light"
                )
                page = context.new_page()
                frame = open_tab(page, base)
                # Tall enough for the whole tab: every panel is laid out and drawn at once.
                height = frame.evaluate("document.documentElement.scrollHeight")
                top = page.query_selector("iframe").bounding_box()["y"]
                page.set_viewport_size({"width": WIDTH, "height": int(top + height + 40)})
                page.mouse.move(0, 0)
                frame.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
                parts = []
                for x, y, width, height in part_boxes(page, frame):
                    clip = {"x": x, "y": y, "width": width, "height": height}
                    parts.append(base64.b64encode(page.screenshot(clip=clip)).decode("ascii"))
                # Joined as two images in a page of their own.
                joined = context.new_page()
                joined.set_viewport_size({"width": WIDTH, "height": 1000})
                joined.set_content(
                    "<body style='margin:0;background:#f3f4f6'>"
                    + "".join(
                        "<img style='display:block' src='data:image/png;base64,%s'>" % part
                        for part in parts
                    )
                    + "</body>"
                )
                joined.wait_for_function(
                    "() => [...document.images].every(i => i.complete && i.naturalWidth)"
                )
                joined.screenshot(path=out, full_page=True)
                browser.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        default=os.path.join(REPO, "docs", "screenshot.png"),
        help="where to save the PNG (default: docs/screenshot.png)",
    )
    parser.add_argument(
        "--logdir", help="demo runs already written (default: train them into a temporary dir)"
    )
    parser.add_argument(
        "--chromium", default="/usr/bin/chromium", help="the browser (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.logdir:
        screenshot(args.out, args.logdir, args.chromium)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            logdir = os.path.join(tmp, "demo-runs")
            train_demo(logdir)
            screenshot(args.out, logdir, args.chromium)
    print("Saved %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

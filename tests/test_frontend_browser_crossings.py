"""Browser tests of the PR panel's examples crossing a moved threshold (``/crossings``).

Runs written with `MetricsDiagWriter` from seeded probabilities (10 classes with text previews
that hold markup, and 1,000 classes) are served by a real TensorBoard with this checkout's
plugin; headless Debian chromium opens the tab, moves the threshold, and the counts and ids the
panel lists are compared with NumPy on the probabilities the writer was given.
"""

import numpy as np
import pytest
import test_frontend_browser as tab
from test_frontend_browser import browser, page  # noqa: F401 (fixtures)

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import counting

TEXT_RUN = "texts"
MANY_RUN = "many1000"
ROWS = 500
MANY_ROWS = 1500
HOSTILE_TEXT = "<b>bold</b><img src=x onerror=alert(9)>"
GRID = counting.default_thresholds()
START = int(np.argmin(np.abs(GRID - 0.5)))


def _written(path, classes, rows, rng, previews=None):
    """One evaluation of a softmax model; ``(labels, probabilities float32, ids)``."""
    labels = rng.integers(0, classes, size=rows)
    logits = rng.normal(size=(rows, classes)) * 1.5
    logits[np.arange(rows), labels] += 2.0 + np.log(classes)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    ids = ["row-%04d" % i for i in range(rows)]
    names = ["<i>c%d</i>" % k if k == 0 else "class%d" % k for k in range(classes)]
    with MetricsDiagWriter(path, class_names=names) as writer:
        writer.add_evaluation(
            labels, probs, 0, from_logits=False, example_ids=ids, previews=previews
        )
    return labels, probs, ids


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb-crossings")
    rng = np.random.default_rng(31)
    texts = ["%s text %d" % (HOSTILE_TEXT, i) for i in range(ROWS)]
    written = {
        TEXT_RUN: _written(str(root / TEXT_RUN), 10, ROWS, rng, texts) + (texts,),
        MANY_RUN: _written(str(root / MANY_RUN), 1000, MANY_ROWS, rng) + (None,),
    }
    for served in tab._serve(str(root), list(written), tmp_path_factory):
        served["written"] = written
        yield served


def _expected(written, curve, index, stored_bins):
    """NumPy: per polarity the exact count of scores in the span and the ids of the first two
    rows of each bin in it that the writer stored (``stored_bins``: the first and last)."""
    labels, probs, ids = written[:3]
    scores, positives = probs[:, curve], labels == curve
    low, high = min(START, index), max(START, index)
    inside = (scores >= GRID[low]) & (scores < GRID[high])
    bins = np.searchsorted(GRID, scores, side="right") - 1
    expected = {}
    for key, mine in (("positives", positives), ("negatives", ~positives)):
        first = set()
        for j in range(max(low, stored_bins[0]), min(high, stored_bins[1] + 1)):
            first.update(np.flatnonzero((bins == j) & mine)[:2].tolist())
        expected[key] = (int((inside & mine).sum()), sorted(ids[r] for r in first))
    return expected


def _move(frame, index):
    """Puts the threshold slider at ``index`` as a user's drag would (input events)."""
    frame.eval_on_selector(
        "input[aria-label='Decision threshold']",
        "(el, i) => { el.value = String(i); el.dispatchEvent(new Event('input')); }",
        index,
    )


def _read(frame):
    """``{polarity: (count text, [ids], [scores], [preview texts])}`` once the panel shows the
    crossings to the threshold on the slider (its output's text), loaded."""
    frame.wait_for_function(
        "() => { const box = document.querySelector('.crossings');"
        " const to = document.querySelector('output.thr-value')?.textContent;"
        " return box && !box.classList.contains('loading')"
        " && box.querySelector('.crossings-title')?.textContent.endsWith(' to ' + to)"
        " && box.querySelector('.crossing-positives .crossing-count'); }",
        timeout=30000,
    )
    result = {}
    for key in ("positives", "negatives"):
        group = ".crossings .crossing-%s" % key
        count = frame.text_content(group + " .crossing-count")
        ids = frame.eval_on_selector_all(
            group + " td.example-id", "cells => cells.map(c => c.textContent)"
        )
        scores = frame.eval_on_selector_all(
            group + " td[data-metric='score']", "cells => cells.map(c => Number(c.textContent))"
        )
        texts = frame.eval_on_selector_all(
            group + " td.preview", "cells => cells.map(c => c.textContent)"
        )
        result[key] = (count, ids, scores, texts)
    return result


def _open(page, server, run):  # noqa: F811 (the page fixture's name)
    frame = tab.open_tab(page, server, run=run)
    frame.wait_for_selector("input[aria-label='Decision threshold']", timeout=30000)
    # The crossings start at the stored threshold nearest 0.5: its text names the start.
    _move(frame, START)
    frame.wait_for_selector(".crossings .crossings-note", timeout=10000)
    start_text = frame.text_content("output.thr-value")
    assert frame.text_content(".crossings-title") == "Examples crossing from %s to %s" % (
        start_text,
        start_text,
    )
    return frame


def _check(frame, server, run, index, verbs):
    written = server["written"][run]
    curve = int(
        frame.eval_on_selector("select[aria-label='Class for the PR curve']", "s => s.value")
    )
    _move(frame, index)
    assert (
        frame.eval_on_selector("input[aria-label='Decision threshold']", "el => Number(el.value)")
        == index
    )
    shown = _read(frame)
    # What the route answers for the same move, as the tab asked it.
    body = tab.api_json(
        server,
        "crossings",
        run=run,
        step=0,
        **{"class": curve, "from": GRID[START], "to": GRID[index]},
    )
    stored_bins = np.searchsorted(GRID, body["stored_range"])
    expected = _expected(written, curve, index, stored_bins)
    labels, probs, ids = written[:3]
    row_of = {key: row for row, key in enumerate(ids)}
    for key, verb in zip(("positives", "negatives"), verbs):
        count, listed, scores, texts = shown[key]
        assert count == "%s %s, %d listed" % (format(expected[key][0], ","), verb, len(listed))
        assert len(listed) <= expected[key][0]
        assert sorted(listed) == expected[key][1]
        rows = [row_of[key_] for key_ in listed]
        np.testing.assert_allclose(scores, probs[rows, curve], atol=6e-5)
        if written[3] is not None:  # text previews stay text
            assert all(text in (written[3][r], "") for text, r in zip(texts, rows))
    assert body["positives"]["count"] == expected["positives"][0]
    assert body["negatives"]["count"] == expected["negatives"][0]
    caption = frame.text_content(".crossings .caption")
    low, high = sorted((START, index))
    whole_span = stored_bins[0] <= low and high - 1 <= stored_bins[1]
    assert body["complete"] == whole_span
    assert caption.endswith("." if whole_span else "are sampled.")
    return shown, whole_span


def test_moving_the_threshold_lists_the_crossing_examples(page, server):  # noqa: F811
    frame = _open(page, server, TEXT_RUN)
    # Up: positives now missed, false alarms removed; then down past the start.
    up, _ = _check(frame, server, TEXT_RUN, START + 25, ("missed", "removed"))
    assert up["positives"][1] and up["negatives"][1]
    # Two quick moves: only the last one's answer is shown.
    _move(frame, START + 5)
    down, _ = _check(frame, server, TEXT_RUN, START - 30, ("found", "new"))
    assert down["negatives"][1]
    # Markup in previews and class names stays text.
    assert frame.query_selector(".crossings b, .crossings img[onerror]") is None
    assert any(HOSTILE_TEXT in text for text in down["negatives"][3])
    # Back at the start: nothing crosses.
    _move(frame, START)
    frame.wait_for_selector(".crossings .crossings-note", timeout=10000)
    assert "Move the threshold away" in frame.text_content(".crossings")
    assert not page.errors and not page.dialogs


def test_crossings_at_a_thousand_classes(page, server):  # noqa: F811
    frame = _open(page, server, MANY_RUN)
    # At 1,000 classes the budget keeps a few steps around 0.5: a long move is counted
    # exactly, and lists the samples of the steps kept.
    shown, whole_span = _check(frame, server, MANY_RUN, START - 40, ("found", "new"))
    assert not whole_span
    assert int(shown["negatives"][0].split()[0].replace(",", "")) > 0  # counted beyond the kept
    assert not page.errors and not page.dialogs

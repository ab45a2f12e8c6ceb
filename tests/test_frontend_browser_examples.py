"""Browser tests of the tab's examples of a confusion cell and its label issues.

Runs written with `MetricsDiagWriter` (10 classes, a tenth of the given labels flipped, text
previews of which some hold markup, image previews, and one run without example records) are
served by a real TensorBoard with this checkout's plugin; headless Debian chromium opens the
tab. What the tab lists is compared with the routes' own answers (`/examples`,
`/label_issues`), and markup in previews and class names must stay text.
"""

import example_checks
import numpy as np
import pytest
import test_frontend_browser as tab
from test_frontend_browser import browser, page  # noqa: F401 (fixtures)
from test_frontend_browser_ui import route_error, ui_page  # noqa: F401 (ui_page: a fixture)

from tb_metricsdiag import MetricsDiagWriter

TEXT_RUN = "texts"
IMAGE_RUN = "images"
PLAIN_RUN = "plain"
AFTER_RUN = "texts_after"
TAGS_RUN = "tags"
TAG_NAMES = ["<i>sky</i>", "sea", "sand"]
CLASSES = 10
ROWS = 400
STEPS = 2
HOSTILE_NAME = "<img src=x onerror=alert(7)>"
TEXT_NAMES = [HOSTILE_NAME, "<b>one</b>"] + ["word%d" % k for k in range(2, CLASSES)]
IMAGE_NAMES = ["digit%d" % k for k in range(CLASSES)]
HOSTILE_TEXT = "<script>alert(8)</script><b>bold</b>"


def _probabilities(rng, labels, skill):
    logits = rng.normal(size=(labels.size, CLASSES))
    logits[np.arange(labels.size), labels] += skill
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def _labels(rng):
    """(true classes, given labels): a tenth of the given labels flipped."""
    truth = rng.integers(0, CLASSES, size=ROWS)
    given = truth.copy()
    flipped = rng.random(ROWS) < 0.1
    given[flipped] = (truth[flipped] + 1 + rng.integers(0, CLASSES - 1, flipped.sum())) % CLASSES
    return truth, given


def _write(path, names, previews, rng, example_ids=None, labels=None):
    """STEPS evaluations of one validation set whose given labels are 10% flipped (`labels`:
    the (truth, given) of another run, for the same examples); returns (given, [probabilities
    of each step])."""
    truth, given = _labels(rng) if labels is None else labels
    written = []
    with MetricsDiagWriter(path, class_names=names) as writer:
        for step in range(STEPS):
            written.append(_probabilities(rng, truth, 1.5 + step))
            writer.add_evaluation(
                given,
                written[-1],
                step,
                from_logits=False,
                example_ids=example_ids,
                previews=previews,
            )
    return truth, given, written


def _write_multilabel(path, rng):
    """A multi-label run with example records (ids the positions) and text previews."""
    labels = (rng.random((ROWS, len(TAG_NAMES))) < 0.35).astype(np.int64)
    with MetricsDiagWriter(path, class_names=TAG_NAMES, multi_label=True) as writer:
        for step in range(STEPS):
            logit = rng.normal(size=labels.shape) + (2 * labels - 1) * (0.7 + step)
            scores = (1 / (1 + np.exp(-logit))).astype(np.float32)
            writer.add_evaluation(
                labels,
                scores,
                step,
                from_logits=False,
                previews=["tagged %d" % i for i in range(ROWS)],
            )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb-examples")
    rng = np.random.default_rng(2025)
    texts = ["%s review #%d" % (HOSTILE_TEXT, i) for i in range(ROWS)]
    ids = ["row-%03d" % i for i in range(ROWS)]
    before = _write(str(root / TEXT_RUN), TEXT_NAMES, texts, rng, example_ids=ids)
    images = rng.integers(0, 256, size=(ROWS, 12, 12), dtype=np.uint8)
    _write(str(root / IMAGE_RUN), IMAGE_NAMES, images, rng)
    _write(str(root / PLAIN_RUN), IMAGE_NAMES, None, rng, example_ids=False)
    # The same examples (ids, labels, previews) evaluated by another model.
    after = _write(str(root / AFTER_RUN), TEXT_NAMES, texts, rng, ids, labels=before[:2])
    _write_multilabel(str(root / TAGS_RUN), rng)
    runs = [TEXT_RUN, IMAGE_RUN, PLAIN_RUN, AFTER_RUN, TAGS_RUN]
    for served in tab._serve(str(root), runs, tmp_path_factory):
        served["written"] = {TEXT_RUN: before, AFTER_RUN: after, "ids": ids}
        yield served


def _open(pg, server, run, names):
    """The tab's frame once it shows the confusion table of `run` (known by its class names)."""
    frame = tab.open_tab(pg, server, run=run)
    frame.wait_for_function(
        "names => { const heads = [...document.querySelectorAll('.confusion th.row-name')];"
        " return heads.length === names.length && heads.every((th, k) => th.textContent === names[k])"
        " && !document.querySelector('.matrix-wrap.loading'); }",
        arg=names,
        timeout=30000,
    )
    return frame


def _largest_error_cell(server, run, actual=None):
    """The off-diagonal cell with the largest count at the last step (in row `actual`)."""
    doc = tab.api_json(server, "confusion", run=run, step=STEPS - 1)
    matrix = np.array(doc["matrix"])
    np.fill_diagonal(matrix, -1)
    if actual is not None:
        return actual, int(np.argmax(matrix[actual]))
    true, pred = np.unravel_index(np.argmax(matrix), matrix.shape)
    return int(true), int(pred)


def wait_cell(frame, true_name, pred_name):
    """Waits until the examples panel shows the cell of these class names, loaded."""
    frame.wait_for_function(
        "([t, p]) => document.querySelector('.examples-wrap .cell-true')?.textContent === t"
        " && document.querySelector('.examples-wrap .cell-pred')?.textContent === p",
        arg=[true_name, pred_name],
        timeout=20000,
    )


def read_examples(frame):
    frame.wait_for_selector(".examples-wrap table.examples tbody tr", timeout=20000)
    return frame.eval_on_selector_all(
        ".examples-wrap table.examples tbody tr",
        "rows => rows.map(r => ({id: r.querySelector('.example-id').textContent,"
        " score: r.querySelector('[data-metric=score]').textContent,"
        " trueScore: r.querySelector('[data-metric=true_score]').textContent,"
        " trueName: r.querySelector('.true-name').textContent,"
        " predName: r.querySelector('.pred-name').textContent,"
        " text: (r.querySelector('.preview-text') || {}).textContent || null,"
        " image: (r.querySelector('img.preview-image') || {}).src || null,"
        " elements: r.querySelector('.preview').querySelectorAll('*').length}))",
    )


def assert_same_examples(shown, doc):
    assert [row["id"] for row in shown] == [str(e["id"]) for e in doc["examples"]]
    assert doc["examples"], "the cell should have examples"
    for row, expected in zip(shown, doc["examples"]):
        tab.assert_close(tab.num(row["score"]), expected["score"], "score")
        tab.assert_close(tab.num(row["trueScore"]), expected["true_score"], "true score")
        assert row["trueName"] == doc["true_name"]
        assert row["predName"] == doc["pred_name"]


def _assert_no_markup_ran(pg, frame):
    assert pg.dialogs == [] and pg.errors == []
    assert frame.query_selector_all(".examples-wrap b, .examples-wrap script") == []
    assert frame.query_selector_all(".label-issues-wrap b, .label-issues-wrap script") == []


def test_a_cell_lists_its_examples_with_text_previews_as_text(ui_page, server):  # noqa: F811 (the fixture)
    true, pred = _largest_error_cell(server, TEXT_RUN, actual=TEXT_NAMES.index(HOSTILE_NAME))
    frame = _open(ui_page, server, TEXT_RUN, TEXT_NAMES)
    frame.click(".confusion td.cell[data-row='%d'][data-col='%d']" % (true, pred))
    shown = read_examples(frame)
    doc = tab.api_json(server, "examples", run=TEXT_RUN, step=STEPS - 1, true=true, pred=pred)
    assert_same_examples(shown, doc)
    assert frame.text_content(".examples-wrap .cell-count") == str(doc["count"])
    assert frame.text_content(".examples-wrap .cell-true") == TEXT_NAMES[true]
    texts = [row["text"] for row in shown]
    assert texts == [e["preview"]["text"] for e in doc["examples"]]
    assert all(text.startswith(HOSTILE_TEXT) for text in texts)
    # Markup in a preview is text: one <span> per preview, nothing inside it.
    assert all(row["elements"] == 1 and row["image"] is None for row in shown)
    _assert_no_markup_ran(ui_page, frame)

    # A confused pair's button opens its examples too (the largest pair: another cell).
    pair = tab.api_json(server, "confusion", run=TEXT_RUN, step=STEPS - 1)["confused_pairs"][0]
    assert (pair["actual"], pair["predicted"]) != (true, pred)
    frame.click(
        ".pairs tr[data-actual='%d'][data-predicted='%d'] .pair-examples"
        % (pair["actual"], pair["predicted"])
    )
    wait_cell(frame, TEXT_NAMES[pair["actual"]], TEXT_NAMES[pair["predicted"]])
    shown = read_examples(frame)
    doc = tab.api_json(
        server,
        "examples",
        run=TEXT_RUN,
        step=STEPS - 1,
        true=pair["actual"],
        pred=pair["predicted"],
    )
    assert_same_examples(shown, doc)
    assert frame.query_selector_all(".examples-wrap img") == []
    _assert_no_markup_ran(ui_page, frame)


def test_image_previews_are_data_uri_images(ui_page, server):  # noqa: F811 (the fixture)
    true, pred = _largest_error_cell(server, IMAGE_RUN)
    frame = _open(ui_page, server, IMAGE_RUN, IMAGE_NAMES)
    frame.click(".confusion td.cell[data-row='%d'][data-col='%d']" % (true, pred))
    wait_cell(frame, IMAGE_NAMES[true], IMAGE_NAMES[pred])
    shown = read_examples(frame)
    doc = tab.api_json(server, "examples", run=IMAGE_RUN, step=STEPS - 1, true=true, pred=pred)
    assert_same_examples(shown, doc)
    images = [row["image"] for row in shown]
    assert images == [e["preview"]["image"] for e in doc["examples"]]
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # Every image decoded (a damaged data URI would leave naturalWidth 0).
    widths = frame.eval_on_selector_all(
        ".examples-wrap img.preview-image", "imgs => imgs.map(i => i.complete && i.naturalWidth)"
    )
    assert widths and all(w == 12 for w in widths), widths


def test_label_issues_match_the_route(ui_page, server):  # noqa: F811 (the fixture)
    frame = _open(ui_page, server, TEXT_RUN, TEXT_NAMES)
    frame.wait_for_selector(".label-issues-wrap table.label-issues tbody tr", timeout=20000)
    doc = tab.api_json(server, "label_issues", run=TEXT_RUN, step=STEPS - 1)
    assert doc["count"] > 0 and doc["examples"]
    assert frame.text_content(".label-issues-wrap .issue-count") == str(doc["count"])
    assert frame.text_content(".label-issues-wrap .issue-share") == "%.1f%%" % (doc["share"] * 100)
    rows = frame.eval_on_selector_all(
        ".label-issues-wrap tbody tr",
        "rows => rows.map(r => [r.querySelector('.example-id').textContent,"
        " r.querySelector('.given-name').textContent, r.querySelector('.suggested-name').textContent,"
        " r.querySelector('[data-metric=given_score]').textContent,"
        " r.querySelector('[data-metric=suggested_score]').textContent,"
        " r.querySelector('.preview').textContent])",
    )
    expected = doc["examples"]
    assert [r[0] for r in rows] == [str(e["id"]) for e in expected]
    for row, e in zip(rows, expected):
        assert row[1] == TEXT_NAMES[e["given"]] == e["given_name"]
        assert row[2] == TEXT_NAMES[e["suggested"]] == e["suggested_name"]
        tab.assert_close(tab.num(row[3]), e["given_score"], "given score")
        tab.assert_close(tab.num(row[4]), e["suggested_score"], "suggested score")
        assert row[5] == e["preview"]["text"]
    _assert_no_markup_ran(ui_page, frame)


def test_a_run_without_example_records_shows_the_routes_message(ui_page, server):  # noqa: F811 (the fixture)
    message = route_error(server, "examples", run=PLAIN_RUN, true=0, pred=1)
    assert message
    issues_message = route_error(server, "label_issues", run=PLAIN_RUN)
    assert issues_message
    frame = _open(ui_page, server, PLAIN_RUN, IMAGE_NAMES)
    frame.wait_for_function(
        "text => document.querySelector('.label-issues-wrap')?.textContent.includes(text)",
        arg=issues_message,
        timeout=20000,
    )
    frame.click(".confusion td.cell[data-row='0'][data-col='1']")
    frame.wait_for_selector(".examples-wrap .notice.error", timeout=20000)
    assert message in frame.text_content(".examples-wrap .notice.error")
    frame.click("button[title='Close the examples of this cell']")
    frame.wait_for_selector(".examples-wrap", state="hidden", timeout=30000)
    assert ui_page.errors == []


def test_flips_since_the_epoch_before_match_the_route(ui_page, server):  # noqa: F811 (the fixture)
    frame = _open(ui_page, server, TEXT_RUN, TEXT_NAMES)
    frame.wait_for_selector(".flips-wrap .flips-part", timeout=20000)
    doc = tab.api_json(server, "flips", run=TEXT_RUN, step=STEPS - 1)
    assert doc["before"]["step"] == STEPS - 2
    assert doc["became_wrong"]["examples"] and doc["became_right"]["examples"]
    for kind in ("became_wrong", "became_right"):
        part = ".flips-wrap [data-kind=%s]" % kind
        assert frame.text_content(part + " .flip-count") == str(doc[kind]["count"])
        rows = frame.eval_on_selector_all(
            part + " tbody tr",
            "rows => rows.map(r => [r.querySelector('.example-id').textContent,"
            " r.querySelector('.true-name').textContent, r.querySelector('.pred-name').textContent,"
            " r.querySelector('.before-pred-name').textContent,"
            " r.querySelector('[data-metric=score]').textContent,"
            " r.querySelector('[data-metric=before_score]').textContent,"
            " r.querySelector('.preview').textContent])",
        )
        expected = doc[kind]["examples"]
        assert [r[0] for r in rows] == [str(e["id"]) for e in expected]

        def name(index):
            return "\u2014" if index is None else TEXT_NAMES[index]

        for row, e in zip(rows, expected):
            assert row[1:4] == [name(e["true"]), name(e["pred"]), name(e["before_pred"])]
            tab.assert_close(tab.num(row[4]), e["score"], "score")
            tab.assert_close(tab.num(row[5]), e["before_score"], "score before")
            assert row[6] == e["preview"]["text"]
    assert frame.query_selector_all(".flips-wrap b, .flips-wrap script") == []
    assert ui_page.dialogs == [] and ui_page.errors == []

    # The first epoch has none before it: the route's message.
    message = route_error(server, "flips", run=TEXT_RUN, step=0)
    assert message
    frame.focus("input[aria-label='Epoch']")
    ui_page.keyboard.press("Home")
    frame.wait_for_function(
        "text => document.querySelector('.flips-wrap')?.textContent.includes(text)",
        arg=message,
        timeout=20000,
    )


def test_a_multilabel_cards_counts_open_their_examples(ui_page, server):  # noqa: F811 (the fixture)
    frame = tab.open_tab(ui_page, server, run=TAGS_RUN)
    card = ".label-card[data-label='0']"
    frame.wait_for_selector(card + " td.tbt-cell[data-metric='fn']", timeout=30000)
    confusion = tab.api_json(server, "confusion", run=TAGS_RUN)
    # [[tn, fp], [fn, tp]] of label 0; a false negative is the label set, not predicted.
    for metric, true, pred, heads in (
        ("fn", 1, 0, ("set", "not predicted")),
        ("tp", 1, 1, ("set", "predicted")),
    ):
        assert confusion["matrices"][0][true][pred] > 0
        frame.click("%s td.tbt-cell[data-metric='%s']" % (card, metric))
        wait_cell(frame, *heads)
        frame.wait_for_function(
            "n => document.querySelector('.examples-wrap .cell-label')?.textContent === n",
            arg=TAG_NAMES[0],
        )
        shown = read_examples(frame)
        doc = tab.api_json(
            server, "examples", run=TAGS_RUN, **{"class": 0, "true": true, "pred": pred}
        )
        assert doc["count"] == confusion["matrices"][0][true][pred]
        assert frame.text_content(".examples-wrap .cell-count") == str(doc["count"])
        assert [row["id"] for row in shown] == [str(e["id"]) for e in doc["examples"]]
        assert [row["text"] for row in shown] == [e["preview"]["text"] for e in doc["examples"]]
        for row, expected in zip(shown, doc["examples"]):
            tab.assert_close(tab.num(row["score"]), expected["score"], "score")
            tab.assert_close(tab.num(row["trueScore"]), expected["true_score"], "true score")
            assert (row["trueName"], row["predName"]) == heads
    # The label's name is text (markup in it made no element).
    assert frame.query_selector_all(".examples-wrap i, .label-cards i") == []
    assert ui_page.errors == []


def _flipped(given, before, after, ids):
    """{kind: (ids, their "after" confidence codes)} of the examples whose argmax became wrong
    or right between two evaluations of the same rows (NumPy, from the written
    probabilities)."""
    right_before = np.argmax(before, axis=1) == given
    right_after = np.argmax(after, axis=1) == given
    codes = example_checks.confidence_codes(after.max(axis=1))
    out = {}
    for kind, rows in (
        ("became_wrong", np.flatnonzero(right_before & ~right_after)),
        ("became_right", np.flatnonzero(~right_before & right_after)),
    ):
        out[kind] = {ids[r]: int(codes[r]) for r in rows}
    return out


def test_flips_between_two_runs_match_the_route_and_numpy(ui_page, server):  # noqa: F811 (the fixture)
    _, given, before = server["written"][TEXT_RUN]
    _, _, after = server["written"][AFTER_RUN]
    expected = _flipped(given, before[0], after[STEPS - 1], server["written"]["ids"])
    frame = _open(ui_page, server, AFTER_RUN, TEXT_NAMES)
    frame.wait_for_selector(".compare-flips-wrap .flips-part", timeout=20000)
    # "Before": the other run at its first epoch.
    frame.select_option("select[aria-label='Run to compare with']", value=TEXT_RUN)
    caption = "%s epoch 0 \u2192 %s epoch %d" % (TEXT_RUN, AFTER_RUN, STEPS - 1)
    frame.wait_for_function(
        "c => document.querySelector('.compare-flips-wrap .caption')?.textContent.startsWith(c)",
        arg=caption,
        timeout=20000,
    )
    doc = tab.api_json(
        server, "flips", run=AFTER_RUN, step=STEPS - 1, other_run=TEXT_RUN, other_step=0
    )
    assert (doc["before"]["run"], doc["after"]["run"]) == (TEXT_RUN, AFTER_RUN)
    for kind, codes in expected.items():
        assert codes, "the two runs should differ on some examples: %s" % kind
        part = ".compare-flips-wrap [data-kind=%s]" % kind
        assert (
            frame.text_content(part + " .flip-count") == str(len(codes)) == str(doc[kind]["count"])
        )
        shown = frame.eval_on_selector_all(
            part + " tbody tr", "rows => rows.map(r => r.querySelector('.example-id').textContent)"
        )
        listed = [str(e["id"]) for e in doc[kind]["examples"]]
        assert shown == listed and len(listed) >= min(len(codes), 10)
        # The listed ones are flipped examples, the most confident of them (by their code).
        assert set(listed) <= set(codes)
        unlisted = [code for key, code in codes.items() if key not in set(listed)]
        assert not unlisted or min(codes[key] for key in listed) >= max(unlisted)
    assert frame.query_selector_all(".compare-flips-wrap b, .compare-flips-wrap script") == []
    assert ui_page.dialogs == [] and ui_page.errors == []

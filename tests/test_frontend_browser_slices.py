"""Browser tests of the tab's slices: the slice table of each group key and the slice picker
that scopes the confusion matrix, the PR curve, the calibration and the examples.

A run written by `MetricsDiagWriter` with `groups=` (a `country` key with a slice that the
model does worse on, a slice too small to trust and a value holding markup; a boolean
`mobile` key) and a run without groups are served by a real TensorBoard with this checkout's
plugin; headless Debian chromium opens the tab. Every figure of the tables is recomputed with
scikit-learn (and the intervals with statsmodels) on that slice's rows, and the scoped
confusion matrix and examples with NumPy on the slice's rows.
"""

import json
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import test_frontend_browser as tab
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)
from test_frontend_browser import browser, page  # noqa: F401 (fixtures)
from test_frontend_browser_ui import ui_page  # noqa: F401 (a fixture)

from tb_metricsdiag import MetricsDiagWriter

proportion = pytest.importorskip("statsmodels.stats.proportion")

SLICED_RUN = "sliced"
PLAIN_RUN = "plain"
NAMES = ["cat", "dog", "<b>bird</b>", "fish"]
ROWS = 900
STEPS = 2
HOSTILE = "<img src=x onerror=alert(1)>"
# Rows of each country: "DE" is the weak slice, "LU" smaller than the tab's minimum (30).
COUNTRIES = {"FR": 330, "DE": 260, "US": 250, HOSTILE: 40, "LU": 20}
WEAK = "DE"
MIN_SLICE_SIZE = 30


def _evaluation(rng):
    """(labels, probabilities, {key: values}) of one step: the model is worse on WEAK."""
    countries = np.repeat(list(COUNTRIES), list(COUNTRIES.values()))
    rng.shuffle(countries)
    labels = rng.integers(0, len(NAMES), size=ROWS)
    skill = np.where(countries == WEAK, 0.4, 2.2)
    logits = rng.normal(size=(ROWS, len(NAMES)))
    logits[np.arange(ROWS), labels] += skill
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    groups = {"country": countries.tolist(), "mobile": (rng.random(ROWS) < 0.3).tolist()}
    return labels, probs, groups


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb-slices")
    rng = np.random.default_rng(26)
    written = {}
    with MetricsDiagWriter(str(root / SLICED_RUN), class_names=NAMES) as writer:
        for step in range(STEPS):
            labels, probs, groups = _evaluation(rng)
            writer.add_evaluation(labels, probs, step, from_logits=False, groups=groups)
            written[step] = (labels, probs, groups)
    with MetricsDiagWriter(str(root / PLAIN_RUN), class_names=NAMES) as writer:
        labels, probs, _ = _evaluation(rng)
        writer.add_evaluation(labels, probs, 0, from_logits=False)
    for served in tab._serve(str(root), [SLICED_RUN, PLAIN_RUN], tmp_path_factory):
        served["written"] = written[STEPS - 1]
        yield served


def _rows(server, key, value):
    """(labels, predicted classes, row positions) of one slice at the last step."""
    labels, probs, groups = server["written"]
    shown = np.array([str(v) for v in groups[key]])
    rows = np.flatnonzero(shown == value)
    return labels[rows], np.argmax(probs[rows], axis=1), rows


def _expected_row(server, key, value):
    """The figures of a slice's table row, from scikit-learn and statsmodels."""
    y, p, rows = _rows(server, key, value)
    classes = list(range(len(NAMES)))
    recalls = recall_score(y, p, labels=classes, average=None, zero_division=np.nan)
    worst = int(np.nanargmin(recalls))
    found = int(np.sum((y == worst) & (p == worst)))
    low, high = proportion.proportion_confint(found, int(np.sum(y == worst)), method="wilson")
    return {
        "support": rows.size,
        "accuracy": accuracy_score(y, p),
        "balanced_accuracy": balanced_accuracy_score(y, p),
        "macro_f1": f1_score(y, p, labels=classes, average="macro", zero_division=np.nan),
        "worst": (NAMES[worst], recalls[worst], "%.3f\u2013%.3f" % (low, high)),
    }


def _table(frame, key):
    return frame.eval_on_selector_all(
        ".slices-wrap table[data-key='%s'] tbody tr" % key,
        "rows => rows.map(r => ({value: r.querySelector('.slice-value').textContent,"
        " small: r.classList.contains('small-slice'), opacity: getComputedStyle(r).opacity,"
        " selected: r.getAttribute('aria-selected'),"
        " cells: Object.fromEntries([...r.querySelectorAll('td[data-metric]')].map("
        "   td => [td.dataset.metric, td.textContent])),"
        " worst: r.querySelector('.worst-class') && [r.querySelector('.worst-class').textContent,"
        "   r.querySelector('.worst-value').textContent,"
        "   r.querySelector('.worst-interval').textContent]}))",
    )


def _open(pg, server, run=SLICED_RUN):
    frame = tab.open_tab(pg, server, run=run)
    tab.wait_matrix(frame, STEPS - 1)
    return frame


def _wait_tables(frame):
    for key, count in (("country", len(COUNTRIES)), ("mobile", 2)):
        frame.wait_for_function(
            "([k, n]) => document.querySelectorAll("
            "`.slices-wrap table[data-key='${k}'] tbody tr`).length === n"
            " && !document.querySelector('.slices-wrap.loading')",
            arg=[key, count],
            timeout=30000,
        )


def test_slice_tables_match_scikit_learn_and_sort(ui_page, server):  # noqa: F811 (the fixture)
    frame = _open(ui_page, server)
    _wait_tables(frame)
    for key in ("country", "mobile"):
        shown = _table(frame, key)
        values = [row["value"] for row in shown]
        expected = {value: _expected_row(server, key, value) for value in values}
        assert sorted(values) == sorted(COUNTRIES if key == "country" else ["True", "False"])
        # The route's order: the worst macro F1 first.
        assert values == sorted(values, key=lambda v: expected[v]["macro_f1"])
        for row in shown:
            figures = expected[row["value"]]
            assert tab.num(row["cells"]["support"]) == figures["support"]
            for metric in ("accuracy", "balanced_accuracy", "macro_f1"):
                tab.assert_close(tab.num(row["cells"][metric]), figures[metric], metric)
            name, recall, interval = figures["worst"]
            assert row["worst"][0] == name
            tab.assert_close(tab.num(row["worst"][1]), recall, "worst recall")
            assert row["worst"][2] == interval
            small = figures["support"] < MIN_SLICE_SIZE
            assert row["small"] == small and (float(row["opacity"]) < 1) == small, row
    assert _table(frame, "country")[0]["value"] == WEAK
    assert [r["value"] for r in _table(frame, "country") if r["small"]] == ["LU"]

    # Sorting: support ascending, then descending; by value.
    sort = ".slices-wrap table[data-key='country'] button[data-sort='%s']"
    frame.click(sort % "support")
    ascending = sorted(COUNTRIES, key=COUNTRIES.get)
    assert [r["value"] for r in _table(frame, "country")] == ascending
    frame.click(sort % "support")
    assert [r["value"] for r in _table(frame, "country")] == ascending[::-1]
    th = ".slices-wrap table[data-key='country'] th:has(button[data-sort='support'])"
    assert frame.get_attribute(th, "aria-sort") == "descending"
    frame.click(sort % "macro_f1")
    shown = _table(frame, "country")
    f1s = [tab.num(r["cells"]["macro_f1"]) for r in shown]
    assert f1s == sorted(f1s)
    # The other key's table kept the route's order.
    mobile = [r["value"] for r in _table(frame, "mobile")]
    assert mobile == sorted(mobile, key=lambda v: _expected_row(server, "mobile", v)["macro_f1"])

    # The value with markup is text, in the table and in the picker.
    assert HOSTILE in [r["value"] for r in shown]
    assert frame.query_selector_all(".slices-wrap img, .slice-field img, .slices-wrap b") == []
    options = frame.eval_on_selector_all(
        "select[aria-label='Slice'] option", "os => os.map(o => o.textContent)"
    )
    assert options[0] == "All rows"
    assert "country = %s (%d)" % (HOSTILE, COUNTRIES[HOSTILE]) in options
    assert ui_page.dialogs == [] and ui_page.errors == []


def _scoped_requests(pg):
    """The plugin routes the page asks for from now on, as (route, params)."""
    asked = []

    def record(request):
        if "/data/plugin/metricsdiag/" in request.url:
            url = urlparse(request.url)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            asked.append((url.path.rsplit("/", 1)[-1], params))

    pg.on("request", record)
    return asked


def _option(key, value):
    """The picker's option value of a slice (JSON, as the tab writes it)."""
    return json.dumps([key, value], separators=(",", ":"))


def _last(asked, route):
    """The parameters of the last request of `route` among `asked`."""
    return [params for name, params in asked if name == route][-1]


def _wait_matrix_of(frame, expected):
    frame.wait_for_function(
        "m => { if (document.querySelector('.matrix-wrap.loading')) return false;"
        " const cells = [...document.querySelectorAll('.confusion td.cell')];"
        " return cells.length === m.length * m.length && cells.every(c =>"
        "   Number(c.querySelector('.main').textContent.replace(/,/g, ''))"
        "   === m[Number(c.dataset.row)][Number(c.dataset.col)]); }",
        arg=expected,
        timeout=30000,
    )


def _slice_matrix(server, key, value):
    y, p, _ = _rows(server, key, value)
    return confusion_matrix(y, p, labels=list(range(len(NAMES)))).tolist()


def test_a_slice_scopes_the_panels(ui_page, server):  # noqa: F811 (the fixture)
    frame = _open(ui_page, server)
    _wait_tables(frame)
    asked = _scoped_requests(ui_page)

    # A click on a row selects its slice: the confusion matrix is the slice's own.
    frame.click(".slices-wrap table[data-key='country'] tr[data-value='%s'] td.num" % WEAK)
    _wait_matrix_of(frame, _slice_matrix(server, "country", WEAK))
    assert frame.eval_on_selector("select[aria-label='Slice']", "s => s.value") == _option(
        "country", WEAK
    )
    selected = [r["value"] for r in _table(frame, "country") if r["selected"] == "true"]
    assert selected == [WEAK]
    # Every scoped route was asked for the slice.
    frame.wait_for_function("() => !document.querySelector('.loading, .loading-text')")
    for route in ("confusion", "pr", "calibration"):
        slices = [params.get("slice") for name, params in asked if name == route]
        # (The comparison asks /pr for every row; the PR panel for the slice.)
        assert "country=" + WEAK in slices, (route, slices)
        assert route == "pr" or set(slices) == {"country=" + WEAK}, (route, slices)
    # The summary and per-class table show the slice's figures.
    y, p, rows = _rows(server, "country", WEAK)
    tab.assert_close(
        tab.num(frame.text_content(".summary-cards [data-metric='accuracy']")),
        accuracy_score(y, p),
        "accuracy",
    )
    supports = frame.eval_on_selector_all(
        ".per-class tbody tr",
        "rows => rows.map(r => [Number(r.dataset.class),"
        " Number(r.querySelector('[data-metric=support]').textContent)])",
    )
    assert sorted(map(tuple, supports)) == [(k, int(np.sum(y == k))) for k in range(len(NAMES))]

    # A cell's examples are the slice's: its count, rows of the slice in that cell.
    true, pred = 0, 1
    frame.click(".confusion td.cell[data-row='%d'][data-col='%d']" % (true, pred))
    frame.wait_for_function(
        "() => document.querySelector('.examples-wrap .cell-slice')?.textContent === 'country = DE'"
        " && document.querySelector('.examples-wrap .cell-count')",
        timeout=20000,
    )
    in_cell = set(rows[(y == true) & (p == pred)].tolist())
    assert frame.text_content(".examples-wrap .cell-count") == str(len(in_cell))
    ids = frame.eval_on_selector_all(
        ".examples-wrap tbody .example-id", "cs => cs.map(c => Number(c.textContent))"
    )
    assert ids and set(ids) <= in_cell and len(ids) >= min(len(in_cell), 10)
    assert _last(asked, "examples")["slice"] == "country=" + WEAK
    tab.shot(ui_page, "slices.png")

    # The picker selects the value with markup: still text, its matrix its own.
    frame.select_option("select[aria-label='Slice']", value=_option("country", HOSTILE))
    _wait_matrix_of(frame, _slice_matrix(server, "country", HOSTILE))
    selected = [r["value"] for r in _table(frame, "country") if r["selected"] == "true"]
    assert selected == [HOSTILE]
    frame.wait_for_function(
        "v => document.querySelector('.examples-wrap .cell-slice')?.textContent === v",
        arg="country = " + HOSTILE,
        timeout=20000,
    )
    # A boolean key's value.
    frame.click(".slices-wrap table[data-key='mobile'] tr[data-value='True'] .slice-value")
    _wait_matrix_of(frame, _slice_matrix(server, "mobile", "True"))

    # "All rows" shows every row again, and the route was asked without a slice.
    frame.select_option("select[aria-label='Slice']", value="")
    labels, probs, _ = server["written"]
    everything = confusion_matrix(labels, np.argmax(probs, axis=1), labels=[0, 1, 2, 3])
    _wait_matrix_of(frame, everything.tolist())
    assert "slice" not in _last(asked, "confusion")
    assert frame.query_selector_all(".slices-wrap tr[aria-selected='true']") == []
    assert ui_page.dialogs == [] and ui_page.errors == []

    # A run without groups has neither the picker nor the tables.
    frame.select_option("select[aria-label='Run']", value=PLAIN_RUN)
    tab.wait_matrix(frame, 0)
    frame.wait_for_selector(".slice-field", state="hidden", timeout=20000)
    frame.wait_for_selector(".slices-wrap", state="hidden", timeout=20000)
    assert "slice" not in _last(asked, "confusion")

"""Browser tests of the tab's runs overview (shown when the logdir has more than one run).

Runs written with `MetricsDiagWriter` from seeded scores (one named with markup, one that
cannot be read) are served by a real TensorBoard with this checkout's plugin; headless Debian
chromium opens the tab. The table is compared with ``/overview`` and, for one run, with
scikit-learn on the same predictions; clicking a row opens its run.
"""

import numpy as np
import pytest
import test_frontend_browser as tab
from sklearn import metrics as skm
from test_frontend_browser import browser, page  # noqa: F401 (fixtures)
from zoo import file_version, framed, plugin_md, tensor_event, write_run

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.format import schema

NAMES = ["cat", "dog", "bird"]
ROWS = 300
VAL_LOSS = [0.9, 0.6, 0.7, 0.8]  # best at step 1
GOOD_RUN = "alpha"
HOSTILE_RUN = "<img src=x onerror=alert(1)>"
OTHER_RUN = "beta"
BROKEN_RUN = "newer"


def _write(path, rng, skill):
    evaluations = {}
    with MetricsDiagWriter(path, class_names=NAMES) as writer:
        for step, val_loss in enumerate(VAL_LOSS):
            labels = rng.integers(0, 3, size=ROWS)
            scores = rng.dirichlet(np.ones(3), size=ROWS)
            scores[np.arange(ROWS), labels] += skill * (step + 1)
            scores /= scores.sum(axis=1, keepdims=True)
            writer.add_evaluation(labels, scores, step, example_ids=False)
            writer.add_logs({"loss": 1.0 / (step + 1), "val_loss": val_loss}, step)
            evaluations[step] = (labels, scores)
    return evaluations


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb-overview")
    rng = np.random.default_rng(8)
    evaluations = _write(str(root / GOOD_RUN), rng, 0.3)
    _write(str(root / HOSTILE_RUN), rng, 0.1)
    _write(str(root / OTHER_RUN), rng, 0.2)
    newer = plugin_md(schema.KIND_CONFUSION, "validation", ["n", "p"], overrides={"version": 99})
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    write_run(
        str(root),
        BROKEN_RUN,
        [file_version(), framed(tensor_event(0, tag, np.array([[1, 2], [3, 4]]), newer))],
    )
    for served in tab._serve(str(root), [GOOD_RUN, HOSTILE_RUN, OTHER_RUN], tmp_path_factory):
        served["evaluations"] = evaluations
        yield served


def _rows(frame):
    frame.wait_for_selector(".runs-table tbody tr", timeout=30000)
    return frame.eval_on_selector_all(
        ".runs-table tbody tr",
        "rows => rows.map(r => ({run: r.dataset.run, name: r.querySelector('.run-name').textContent,"
        " error: (r.querySelector('.run-error') || {}).textContent || null,"
        " cells: Object.fromEntries([...r.querySelectorAll('[data-column]')]"
        ".map(c => [c.dataset.column, c.textContent])),"
        " markup: r.querySelector('th').querySelectorAll('*').length}))",
    )


def test_the_table_shows_overview_and_sklearn_figures(page, server):  # noqa: F811
    frame = tab.open_tab(page, server)
    rows = _rows(frame)
    doc = tab.api_json(server, "overview")
    assert [row["run"] for row in rows] == [entry["run"] for entry in doc["runs"]]
    assert sorted(row["run"] for row in rows) == sorted(
        [GOOD_RUN, HOSTILE_RUN, OTHER_RUN, BROKEN_RUN]
    )
    by_run = {row["run"]: row for row in rows}
    # Markup in a run name is text: the name cell holds one button and no other element.
    assert by_run[HOSTILE_RUN]["name"] == HOSTILE_RUN
    assert by_run[HOSTILE_RUN]["markup"] == 1
    assert page.dialogs == [] and page.errors == []
    # The unreadable run shows its error; the others their figures.
    broken = next(entry for entry in doc["runs"] if entry["run"] == BROKEN_RUN)
    assert by_run[BROKEN_RUN]["error"] == broken["error"]
    for entry in doc["runs"]:
        if entry["run"] == BROKEN_RUN:
            continue
        cells = by_run[entry["run"]]["cells"]
        assert cells["best_step"] == str(entry["best_step"])
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "ece"):
            assert cells[key] == "%.3f" % entry[key], (entry["run"], key)
        worst = entry["worst_class"]
        assert cells["worst_class"] == "%s %.3f" % (worst["name"], worst["recall"])
        assert cells["warnings"] == str(entry["findings"]["warning"])
    # One run against scikit-learn on the predictions written, at its best epoch (step 1).
    labels, scores = server["evaluations"][1]
    predicted = scores.argmax(axis=1)
    cells = by_run[GOOD_RUN]["cells"]
    assert cells["best_step"] == "1"
    assert cells["accuracy"] == "%.3f" % skm.accuracy_score(labels, predicted)
    assert cells["balanced_accuracy"] == "%.3f" % skm.balanced_accuracy_score(labels, predicted)
    assert cells["macro_f1"] == "%.3f" % skm.f1_score(labels, predicted, average="macro")
    recall = skm.recall_score(labels, predicted, average=None)
    assert cells["worst_class"] == "%s %.3f" % (NAMES[int(np.argmin(recall))], recall.min())


def test_sort_filter_and_open_a_run(page, server):  # noqa: F811
    frame = tab.open_tab(page, server)
    _rows(frame)
    doc = tab.api_json(server, "overview")
    readable = [entry for entry in doc["runs"] if "error" not in entry]
    # Accuracy, highest first on the first click; the unreadable run last.
    frame.click(".runs-table button[data-sort='accuracy']")
    order = [row["run"] for row in _rows(frame)]
    expected = [e["run"] for e in sorted(readable, key=lambda e: -e["accuracy"])] + [BROKEN_RUN]
    assert order == expected
    frame.click(".runs-table button[data-sort='accuracy']")
    order = [row["run"] for row in _rows(frame)]
    assert order == expected[:-1][::-1] + [BROKEN_RUN]
    # The filter narrows the rows by run name.
    frame.fill(".run-filter", "ALP")
    frame.wait_for_function("() => document.querySelectorAll('.runs-table tbody tr').length === 1")
    assert [row["run"] for row in _rows(frame)] == [GOOD_RUN]
    frame.fill(".run-filter", "")
    # Clicking a row opens its run; the row is marked as the one open.
    frame.click(".runs-table tr[data-run='%s'] td[data-column='accuracy']" % OTHER_RUN)
    frame.wait_for_function(
        "run => document.querySelector(\"select[aria-label='Run']\").value === run"
        " && document.querySelector('.runs-table tr[aria-current=true]')?.dataset.run === run",
        arg=OTHER_RUN,
        timeout=20000,
    )
    # The unreadable run opens too, and does not break the table.
    frame.click(".runs-table tr[data-run='%s'] .run-name" % BROKEN_RUN)
    frame.wait_for_function(
        "run => document.querySelector(\"select[aria-label='Run']\").value === run",
        arg=BROKEN_RUN,
        timeout=20000,
    )
    assert len(_rows(frame)) == 4
    assert page.errors == []


def test_hidden_with_one_run(page, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("tb-one-run")
    _write(str(root / GOOD_RUN), np.random.default_rng(1), 0.3)
    for served in tab._serve(str(root), [GOOD_RUN], tmp_path_factory):
        frame = tab.open_tab(page, served)
        frame.wait_for_selector(".confusion td.cell", timeout=30000)
        assert frame.eval_on_selector(".runs-overview", "el => el.closest('section').hidden"), (
            "the overview shows with one run"
        )

"""Slices (issue 26): ``groups=`` recorded by `MetricsDiagWriter` and the Keras callback, read
back by the reader and served by the routes (in process, and by a real TensorBoard on both
loaders). Every per-slice figure is checked against scikit-learn / NumPy on that slice's rows,
the Wilson intervals against statsmodels.
"""

import os
import re

import numpy as np
import pytest
from conftest import read_events
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint
from tensorboard.backend import application
from werkzeug import test as werkzeug_test
from zoo import XSS, client_get, http_get, make_plugin, tensorboard_serving

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import calibration as calibration_lib
from tb_metricsdiag.core import counting
from tb_metricsdiag.format import schema
from tb_metricsdiag.format import slices as slices_lib
from tb_metricsdiag.writing import inputs, slice_recorder

CLASSES = 3
ROWS = 900
STEPS = 2
HOSTILE = XSS + ' "q" 日本'


def _task(seed, n=ROWS, classes=CLASSES):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    return y, (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _groups(seed, n=ROWS):
    rng = np.random.default_rng(seed)
    site = rng.choice([0, 1, 2, 3], size=n, p=[0.5, 0.3, 0.15, 0.05])
    device = np.array(["phone", "desktop", HOSTILE], dtype=object)[rng.integers(0, 3, n)]
    return {"site": site, "device": list(device), "flag": rng.random(n) < 0.3}


def _shown(values):
    return np.array([str(v) for v in values], dtype=object)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("slices"))
    truth = {}
    with MetricsDiagWriter(os.path.join(logdir, "writer")) as writer:
        for step in range(STEPS):
            y, p = _task(step)
            groups = _groups(step)
            writer.add_evaluation(y, p, step, groups=groups)
            truth[("writer", step)] = (y, p, groups)
    # 300 values of one key: the 256 most frequent of the first call get a slice each.
    rng = np.random.default_rng(9)
    many = rng.zipf(1.3, size=4000) % 300
    y, p = _task(5, n=4000)
    with MetricsDiagWriter(os.path.join(logdir, "pooled")) as writer:
        writer.add_evaluation(y, p, 0, groups={"shop": many})
    truth[("pooled", 0)] = (y, p, {"shop": many})
    truth[("keras", STEPS - 1)] = _keras_run(logdir)
    return logdir, truth


def _keras_run(logdir):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 4)).astype("float32")
    y = np.argmax(x[:, :CLASSES] + 0.5 * rng.normal(size=(400, CLASSES)), axis=1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    groups = {"half": np.where(np.arange(300) < 100, "a", "b"), "odd": np.arange(300) % 2 == 1}
    callback = MetricsDiagCallback(
        os.path.join(logdir, "keras"), validation_data=(x[100:], y[100:]), groups=groups
    )
    model.fit(x[:100], y[:100], epochs=STEPS, verbose=0, callbacks=[callback])
    p = model.predict(x[100:], verbose=0)
    return y[100:], p, groups


@pytest.fixture(scope="module")
def get(written):
    logdir, _ = written
    client = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(logdir)]))
    return lambda route, params=None: client_get(client, route, params)


def _stored(y, p, groups, overall):
    """The decoded slices `slice_recorder.EpochSlices` encodes of one evaluation."""
    evaluation = inputs.check_evaluation(y, p, "test", groups=groups)
    values = slice_recorder.SliceValues()
    epoch = slice_recorder.EpochSlices(
        evaluation.layout,
        counting.default_thresholds(),
        values,
        values.slice_codes(evaluation.groups),
    )
    epoch.update(np.arange(y.size), evaluation.targets, evaluation.scores, evaluation.predicted)
    return epoch.payload(overall)


def _rows(truth, key, value):
    y, p, groups = truth
    return _shown(groups[key]) == value


def _check_slice_figures(entry, y, pred, names):
    cm = skm.confusion_matrix(y, pred, labels=range(len(names)))
    assert entry["support"] == y.size
    assert entry["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert entry["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    f1 = skm.f1_score(y, pred, labels=range(len(names)), average=None, zero_division=np.nan)
    assert entry["macro_f1"] == pytest.approx(np.nanmean(f1))
    precision, recall, _, support = skm.precision_recall_fscore_support(
        y, pred, labels=range(len(names)), zero_division=np.nan
    )
    for k, row in enumerate(entry["per_class"]):
        assert row["support"] == support[k]
        assert row["recall"] == pytest.approx(recall[k], nan_ok=True)
        assert row["precision"] == pytest.approx(precision[k], nan_ok=True)
        tp = cm[k, k]
        for name, total in (("recall", cm[k].sum()), ("precision", cm[:, k].sum())):
            if total:
                low, high = proportion_confint(tp, total, method="wilson")
                assert row[name + "_interval"] == pytest.approx([low, high])
            else:
                assert row[name + "_interval"] == [None, None]


@pytest.mark.parametrize("key", ["site", "device", "flag"])
def test_slices_route_against_sklearn_and_statsmodels(get, written, key):
    _, truth = written
    y, p, groups = truth[("writer", STEPS - 1)]
    status, body = get("/slices", {"run": "writer", "key": key})
    assert status == 200, body
    assert body["step"] == STEPS - 1 and body["key"] == key
    values = sorted(set(_shown(groups[key])))
    assert sorted(entry["value"] for entry in body["slices"]) == values
    macro = [entry["macro_f1"] for entry in body["slices"]]
    assert macro == sorted(macro)  # worst first
    for entry in body["slices"]:
        rows = _rows((y, p, groups), key, entry["value"])
        _check_slice_figures(entry, y[rows], p[rows].argmax(axis=1), ["0", "1", "2"])
    if key == "device":
        assert HOSTILE in values  # a plain JSON string, as given


def test_confusion_pr_calibration_of_a_slice(get, written):
    _, truth = written
    y, p, groups = truth[("writer", 0)]
    for key, value in (("site", "1"), ("device", HOSTILE), ("flag", "True")):
        rows = _rows((y, p, groups), key, value)
        params = {"run": "writer", "step": 0, "slice": "%s=%s" % (key, value)}
        status, body = get("/confusion", params)
        assert status == 200, body
        expected = skm.confusion_matrix(y[rows], p[rows].argmax(axis=1), labels=range(CLASSES))
        assert body["matrix"] == expected.tolist()
        assert body["macro_f1"] == pytest.approx(
            skm.f1_score(y[rows], p[rows].argmax(axis=1), average="macro")
        )
        status, body = get("/pr", dict(params, **{"class": 2}))
        assert status == 200, body
        grid = counting.default_thresholds()
        positive = y[rows] == 2
        scores = p[rows][:, 2].astype(np.float64)
        at = np.searchsorted(grid, body["best_f1"]["threshold"])
        assert grid[at] == body["best_f1"]["threshold"]
        tp = np.array([(positive & (p[rows][:, 2] >= np.float32(t))).sum() for t in grid])
        fp = np.array([(~positive & (p[rows][:, 2] >= np.float32(t))).sum() for t in grid])
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        assert body["best_f1"]["recall"] == pytest.approx(tp[at] / positive.sum())
        assert body["best_f1"]["precision"] == pytest.approx(precision[at])
        assert body["positives"] == int(positive.sum())
        assert scores.size == rows.sum()
        status, body = get("/calibration", params)
        assert status == 200, body
        count, confidence_sum, correct = calibration_lib.calibration_bins(
            p[rows].max(axis=1), p[rows].argmax(axis=1) == y[rows], len(body["bins"])
        )
        assert [b["count"] for b in body["bins"]] == count.tolist()
        filled = count > 0
        accuracy = [b["accuracy"] for b in body["bins"]]
        assert np.array(accuracy, dtype=float)[filled] == pytest.approx(
            correct[filled] / count[filled]
        )


def test_threshold_counts_of_every_slice_are_exact(written):
    """Stored threshold counts of each slice against NumPy's ``score >= t`` on its rows."""
    _, truth = written
    y, p, groups = truth[("writer", 1)]
    stored = slices_lib.decode_slices(_stored(y, p, groups, np.arange(50)))
    grid = counting.default_thresholds().astype(np.float32)
    for (key, value), one in stored.slices.items():
        rows = _rows((y, p, groups), key, value)
        above = p[rows][:, :, None] >= grid[None, None, :]
        positive = (y[rows][:, None] == np.arange(CLASSES))[:, :, None]
        assert np.array_equal(one.tp, (above & positive).sum(axis=0))
        assert np.array_equal(one.fp, (above & ~positive).sum(axis=0))
    assert stored.groups_at([0])[0] == {k: str(_shown(v)[0]) for k, v in groups.items()}


def test_examples_of_a_slice_cell(get, written):
    _, truth = written
    y, p, groups = truth[("writer", 1)]
    pred = p.argmax(axis=1)
    for key, value in (("site", "3"), ("device", "phone")):
        rows = _rows((y, p, groups), key, value)
        expected = skm.confusion_matrix(y[rows], pred[rows], labels=range(CLASSES))
        for true in range(CLASSES):
            for predicted in range(CLASSES):
                status, body = get(
                    "/examples",
                    {
                        "run": "writer",
                        "slice": "%s=%s" % (key, value),
                        "true": true,
                        "pred": predicted,
                    },
                )
                assert status == 200, body
                assert body["count"] == expected[true, predicted]
                listed = [example["id"] for example in body["examples"]]
                assert len(listed) >= min(body["count"], 10)
                cell = np.flatnonzero(rows & (y == true) & (pred == predicted))
                assert set(listed) <= set(cell.tolist())
                score = p[cell, predicted]
                order = np.sort(score)[::-1] if true != predicted else np.sort(score)
                top = order[: len(listed)]
                assert [e["score"] for e in body["examples"]] == pytest.approx(top, abs=1e-4)
                for example in body["examples"]:
                    assert example["groups"][key] == value
    status, body = get("/examples", {"run": "writer", "true": 0, "pred": 1})
    assert status == 200
    for example in body["examples"]:
        assert example["groups"] == {k: str(_shown(v)[example["id"]]) for k, v in groups.items()}


def test_other_pools_the_values_past_the_cap(get, written):
    _, truth = written
    y, p, groups = truth[("pooled", 0)]
    shop = groups["shop"]
    status, body = get("/slices", {"run": "pooled", "key": "shop"})
    assert status == 200, body
    values, counts = np.unique(shop, return_counts=True)
    first = np.array([np.flatnonzero(shop == v)[0] for v in values])
    order = np.lexsort((first, -counts))  # most frequent first, then first appearance
    kept = {str(v) for v in values[order[:256]]}
    listed = {entry["value"]: entry for entry in body["slices"]}
    assert set(listed) == kept | {schema.OTHER_SLICE}
    pooled = ~np.isin(shop, values[order[:256]])
    assert listed[schema.OTHER_SLICE]["support"] == pooled.sum()
    assert listed[schema.OTHER_SLICE]["pooled"] is True
    _check_slice_figures(listed[schema.OTHER_SLICE], y[pooled], p[pooled].argmax(axis=1), "012")


def test_keras_callback_records_slices(get, written):
    _, truth = written
    y, p, groups = truth[("keras", STEPS - 1)]
    runs = {entry["run"]: entry for entry in get("/runs")[1]["runs"]}
    assert runs["keras"]["slice_keys"] == {"validation": ["half", "odd"]}
    assert runs["writer"]["slice_keys"] == {"validation": ["site", "device", "flag"]}
    for key in ("half", "odd"):
        status, body = get("/slices", {"run": "keras", "key": key})
        assert status == 200, body
        for entry in body["slices"]:
            rows = _rows((y, p, groups), key, entry["value"])
            # The callback's own float32 probabilities may differ in the last bit from these.
            pred = p[rows].argmax(axis=1)
            assert entry["support"] == rows.sum()
            assert entry["accuracy"] == pytest.approx(skm.accuracy_score(y[rows], pred), abs=0.01)


def test_unknown_and_malformed_slices(get):
    cases = [
        ({"run": "writer", "slice": "site=9"}, 404),
        ({"run": "writer", "slice": "nokey=1"}, 404),
        ({"run": "writer", "slice": "site"}, 400),
        ({"run": "writer", "slice": "1bad=x"}, 400),
        ({"run": "writer", "slice": "site=" + "x" * 500}, 400),
    ]
    for route in ("/confusion", "/pr", "/calibration"):
        for params, code in cases:
            status, body = get(route, params)
            assert status == code, (route, params, body)
            assert "error" in body
    status, _ = get("/examples", {"run": "writer", "slice": "site=9", "true": 0, "pred": 0})
    assert status == 404
    assert get("/slices", {"run": "writer", "key": "nokey"})[0] == 404
    assert get("/slices", {"run": "writer"})[0] == 400
    assert get("/slices", {"run": "writer", "key": "</script>"})[0] == 400
    assert get("/slices", {"run": "nope", "key": "site"})[0] == 404
    assert get("/slices", {"run": "pooled", "key": "site"})[0] == 404


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"site": [1, 2]}, "one value per example"),
        ({"site": [[1], [2], [3]]}, "strings, integers or booleans"),
        ({"site": [{}, {}, {}]}, "strings, integers or booleans"),
        ({"1site": [1, 2, 3]}, "group key"),
        ({"k%d" % i: [1, 2, 3] for i in range(9)}, "at most 8"),
        ({"site": [1.5, 2.5, 3.5]}, "strings, integers or booleans"),
        ({"site": ["a", "x" * 10_000_000, "b"]}, "1 to 128 characters"),
        ({"site": ["a", schema.OTHER_SLICE, "b"]}, "(other)"),
    ],
)
def test_bad_groups_raise_at_the_first_call(tmp_path, groups, message):
    y, p = _task(0, n=3)
    with MetricsDiagWriter(str(tmp_path)) as writer:
        with pytest.raises(ValueError, match="MetricsDiagWriter.*" + re.escape(message)):
            writer.add_evaluation(y, p, 0, groups=groups)


def test_size_of_twenty_slices_at_ten_classes():
    """The issue's budget: at most 128 KB per epoch and split for 20 slices at 10 classes,
    even for a model no better than chance (every row kept in some cell of its slice).
    """
    for strength in (0.0, 2.0):
        rng = np.random.default_rng(1)
        n = 10_000
        y = rng.integers(0, 10, n)
        logits = rng.normal(size=(n, 10))
        logits[np.arange(n), y] += strength
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        payload = _stored(y, p, {"g": rng.integers(0, 20, n)}, np.arange(2500))
        assert len(payload) <= 128 * 1024
        assert len(slices_lib.decode_slices(payload).slices) == 20


def test_a_version_6_reader_refuses_slices_and_reads_the_rest(tmp_path, monkeypatch):
    from tb_metricsdiag.format import metadata

    y, p = _task(0)
    with MetricsDiagWriter(str(tmp_path)) as writer:
        writer.add_evaluation(y, p, 0, groups=_groups(0))
    events = read_events(str(tmp_path), decode=False)
    _, content = events[schema.split_tag("validation", schema.KIND_SLICES)][0]
    assert metadata.parse_plugin_content(content)["version"] == 7
    monkeypatch.setattr(metadata, "FORMAT_VERSION", 6)
    with pytest.raises(schema.FormatError, match="format version 7"):
        metadata.parse_plugin_content(content)
    _, confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0]
    assert metadata.parse_plugin_content(confusion)["version"] == 5  # still read


def test_damaged_slices_are_refused():
    y, p = _task(0)
    payload = _stored(y, p, _groups(0), np.arange(10))
    for damaged in (payload[:-1], payload + b"x", payload[:40], b"\x02" + payload[1:]):
        with pytest.raises(schema.FormatError):
            slices_lib.decode_slices(damaged)


# -- through a real tensorboard -----------------------------------------------------------


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def served(request, written, tmp_path_factory):
    logdir, _ = written

    def loaded(get_served):
        runs = {e["run"]: e for e in get_served("/runs")[1]["runs"]}
        return {"writer", "pooled", "keras"} <= set(runs) and len(runs["writer"]["steps"]) == STEPS

    log_path = str(tmp_path_factory.mktemp("tb_slices_log") / "tensorboard.log")
    with tensorboard_serving(logdir, request.param, log_path, loaded) as (base, _):
        yield lambda route, params=None: http_get(base, route, params)


def test_real_tensorboard_serves_the_same_answers(served, get):
    queries = [
        ("/slices", {"run": "writer", "key": "device"}),
        ("/slices", {"run": "keras", "key": "odd"}),
        ("/confusion", {"run": "writer", "slice": "device=" + HOSTILE}),
        ("/pr", {"run": "writer", "slice": "site=2", "class": 1}),
        ("/calibration", {"run": "writer", "slice": "flag=False", "step": 0}),
        ("/examples", {"run": "writer", "slice": "site=0", "true": 1, "pred": 0}),
        ("/slices", {"run": "writer", "key": "zzz"}),
        ("/confusion", {"run": "writer", "slice": "bad"}),
    ]
    for route, params in queries:
        assert served(route, params) == get(route, params), (route, params)

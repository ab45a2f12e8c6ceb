"""The routes of example records, ``/examples``, ``/flips`` and ``/label_issues``, on runs that
`MetricsDiagWriter` and the Keras callback wrote: every number against NumPy brute force, the
flagged sets against cleanlab, damaged records and hostile parameters, through the Python
loader in-process and through a real ``tensorboard`` with both loaders.
"""

import base64
import io
import os
import urllib.parse

import example_runs
import hostile_examples
import numpy as np
import pytest
from cleanlab.filter import find_label_issues
from conftest import to_scores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn import metrics as skm
from tensorboard.backend import application
from werkzeug import test as werkzeug_test
from zoo import XSS, client_get, http_get, make_plugin, tensorboard_serving

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import example_views
from tb_metricsdiag.diagnostics import requirements
from tb_metricsdiag.format import schema
from tb_metricsdiag.writing import records

ROUTES = ["/examples", "/flips", "/label_issues"]
LONG_TEXT = "x" * 1500
HOSTILE_TEXT = XSS + ' "quotes" \n\x00 日本語 🙂'


DAMAGES = {
    "damaged_examples": ("examples", lambda payload: records.string_value(payload[:-5])),
    "garbage_examples": ("examples", lambda payload: records.string_value(b"\x01" * 40)),
    "numeric_examples": ("examples", lambda payload: np.arange(6, dtype=np.int32)),
    "damaged_ids": ("example_ids", lambda payload: records.string_value(payload[:-3])),
    "damaged_previews": ("previews", lambda payload: records.string_value(payload[:-2])),
    "damaged_label_issues": ("label_issues", lambda payload: records.string_value(b"\x01\x02")),
}


def _write_damaged(logdir, name, rng):
    kind, damage = DAMAGES[name]
    with example_runs.TamperingWriter(os.path.join(logdir, name), {kind: damage}) as writer:
        for step in range(2):
            labels = rng.integers(0, 3, size=200)
            writer.add_evaluation(
                labels,
                example_runs.probabilities(rng, labels, 3, 2.0),
                step,
                from_logits=False,
                example_ids=["e%d" % i for i in range(200)],
                previews=["preview %d" % i for i in range(200)],
            )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(logdir, {name: WrittenRun})."""
    logdir = str(tmp_path_factory.mktemp("example_runs"))
    rng = np.random.default_rng(25)
    ids = ["img-%04d" % i for i in range(example_runs.ROWS)]
    # Every third text is long (cut to 1,000 characters), every third hostile.
    texts = [(LONG_TEXT, HOSTILE_TEXT, "text")[i % 3] + " of " + key for i, key in enumerate(ids)]
    images = rng.integers(0, 256, size=(example_runs.ROWS, 28, 28), dtype=np.uint8)
    runs = {
        "strings": example_runs.write_multiclass(logdir, "strings", ids, rng, previews=texts),
        "strings_again": example_runs.write_multiclass(
            logdir, "strings_again", ids, rng, splits=("validation",)
        ),
        "integers": example_runs.write_multiclass(
            logdir, "integers", list(range(example_runs.ROWS)), rng, splits=("validation",)
        ),
        "binary": example_runs.write_binary(logdir, "binary", rng, images),
        "multilabel": example_runs.write_multilabel(logdir, "multilabel", rng),
    }
    example_runs.write_without_examples(logdir, "plain", rng)
    for name in DAMAGES:
        _write_damaged(logdir, name, rng)
    return logdir, runs


@pytest.fixture(scope="module")
def get(written):
    client = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(written[0])]))
    return lambda route, params=None: client_get(client, route, params or {})


def _text_of(preview):
    assert set(preview) == {"text"}
    return preview["text"]


def _pixels_of(preview):
    assert set(preview) == {"image"}
    prefix = "data:image/png;base64,"
    assert preview["image"].startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(preview["image"][len(prefix) :]))))


def _check_cell(run, evaluation, body, true, pred, label=None):
    count, rows, score, true_score = example_runs.cell_reference(run, evaluation, true, pred, label)
    assert body["count"] == count
    listed = body["examples"]
    assert len(listed) >= min(count, 10)
    assert [e["id"] for e in listed] == [evaluation.ids[r] for r in rows[: len(listed)]]
    np.testing.assert_allclose([e["score"] for e in listed], score[: len(listed)], atol=1e-7)
    np.testing.assert_allclose(
        [e["true_score"] for e in listed], true_score[: len(listed)], atol=1e-7
    )
    return listed, rows


# -- /examples ----------------------------------------------------------------------------


def test_runs_list_every_split(get):
    status, body = get("/runs")
    assert status == 200
    splits = {entry["run"]: entry["splits"] for entry in body["runs"]}
    assert splits["strings"] == ["validation", "test"]
    assert splits["strings_again"] == ["validation"]


@pytest.mark.parametrize("split", ["validation", "test"])
def test_every_cell_of_every_step_against_brute_force(get, written, split):
    run = written[1]["strings"]
    texts = set()
    for step in range(example_runs.STEPS):
        evaluation = run.evaluations[(split, step)]
        predicted = np.argmax(evaluation.scores, axis=1)
        matrix = skm.confusion_matrix(evaluation.labels, predicted, labels=range(3))
        status, confusion = get("/confusion", {"run": "strings", "split": split, "step": step})
        assert status == 200 and confusion["matrix"] == matrix.tolist()
        for true in range(3):
            for pred in range(3):
                status, body = get(
                    "/examples",
                    {"run": "strings", "split": split, "step": step, "true": true, "pred": pred},
                )
                assert status == 200, body
                assert (body["run"], body["split"], body["step"]) == ("strings", split, step)
                assert (body["true"], body["pred"]) == (true, pred)
                assert (body["true_name"], body["pred_name"]) == (
                    run.class_names[true],
                    run.class_names[pred],
                )
                # The count is /confusion's cell; the list its top in the contract's order.
                assert body["count"] == matrix[true, pred]
                listed, rows = _check_cell(run, evaluation, body, true, pred)
                for entry, row in zip(listed, rows):
                    texts.add(_text_of(entry["preview"]))
                    assert _text_of(entry["preview"]) == evaluation.previews[row][:1000]
    # Long texts cut to 1,000 characters, hostile ones verbatim.
    assert LONG_TEXT[:1000] in texts
    assert any(text.startswith(HOSTILE_TEXT) for text in texts)


def test_defaults_are_validation_at_the_latest_step(get, written):
    status, body = get("/examples", {"run": "strings", "true": 0, "pred": 1})
    assert status == 200
    assert (body["split"], body["step"]) == ("validation", example_runs.STEPS - 1)


def test_binary_single_sigmoid_cells_and_image_previews(get, written):
    run = written[1]["binary"]
    images = None
    for step in range(example_runs.STEPS):
        evaluation = run.evaluations[("validation", step)]
        images = evaluation.previews
        predicted = (evaluation.scores >= np.float32(0.5)).astype(int)
        matrix = skm.confusion_matrix(evaluation.labels, predicted, labels=[0, 1])
        for true in range(2):
            for pred in range(2):
                status, body = get(
                    "/examples", {"run": "binary", "step": step, "true": true, "pred": pred}
                )
                assert status == 200, body
                assert body["count"] == matrix[true, pred]
                listed, rows = _check_cell(run, evaluation, body, true, pred)
                for entry, row in zip(listed, rows):
                    assert isinstance(entry["id"], int)
                    if entry["preview"] is not None:
                        np.testing.assert_array_equal(_pixels_of(entry["preview"]), images[row])
    assert images is not None


def test_multilabel_cells_take_a_label(get, written):
    run = written[1]["multilabel"]
    for step in range(example_runs.STEPS):
        evaluation = run.evaluations[("validation", step)]
        matrices = skm.multilabel_confusion_matrix(
            evaluation.labels, (evaluation.scores >= np.float32(0.5)).astype(int)
        )
        for label in range(4):
            for true in range(2):
                for pred in range(2):
                    status, body = get(
                        "/examples",
                        {
                            "run": "multilabel",
                            "step": step,
                            "class": label,
                            "true": true,
                            "pred": pred,
                        },
                    )
                    assert status == 200, body
                    assert body["class"] == label
                    assert body["class_name"] == run.class_names[label]
                    assert body["count"] == matrices[label, true, pred]
                    _check_cell(run, evaluation, body, true, pred, label)
    assert get("/examples", {"run": "multilabel", "true": 0, "pred": 1})[0] == 400
    assert get("/examples", {"run": "multilabel", "class": 4, "true": 0, "pred": 1})[0] == 400
    assert get("/examples", {"run": "multilabel", "class": 0, "true": 2, "pred": 1})[0] == 400
    status, body = get("/label_issues", {"run": "multilabel"})
    assert status == 404 and "single-label" in body["error"]


# -- /flips -------------------------------------------------------------------------------


def _flips_reference(runs, before, after):
    """``{kind: [(id, confidence after)]}`` by brute force over the ids in both evaluations,
    ``before`` and ``after`` each ``(run name, split, step)`` of ``runs``."""
    before_run, after_run = runs[before[0]], runs[after[0]]
    before, after = before_run.evaluations[before[1:]], after_run.evaluations[after[1:]]
    index_before = {key: i for i, key in enumerate(before.ids)}
    right_before = example_runs.correct_rows(before_run, before)
    right_after = example_runs.correct_rows(after_run, after)
    confidence = example_runs.top_confidence(after_run, after)
    result = {"became_wrong": [], "became_right": []}
    for row, key in enumerate(after.ids):
        if key not in index_before:
            continue
        was, now = right_before[index_before[key]], right_after[row]
        if was and not now:
            result["became_wrong"].append((key, confidence[row]))
        elif now and not was:
            result["became_right"].append((key, confidence[row]))
    return result


def _logit(p):
    p = min(max(float(p), 1e-7), 1 - 1e-7)
    return np.log(p / (1 - p))


def _check_flips(body, reference, limit):
    for kind, expected in reference.items():
        served = body[kind]
        assert served["count"] == len(expected)
        listed = served["examples"]
        assert len(listed) == min(len(expected), limit)
        by_id = dict(expected)
        assert len({e["id"] for e in listed}) == len(listed)
        assert {e["id"] for e in listed} <= set(by_id)
        scores = [e["score"] for e in listed]
        assert scores == sorted(scores, reverse=True)
        # Stored to an eighth of a logit: within 1/16 logit of the true confidence.
        for entry in listed:
            assert abs(_logit(by_id[entry["id"]]) - _logit(entry["score"])) <= 1 / 16 + 1e-6
        # The most confident first: nothing left out is more confident by a step or more.
        if listed and len(listed) < len(expected):
            left_out = set(by_id) - {e["id"] for e in listed}
            most = max(_logit(by_id[key]) for key in left_out)
            least = min(_logit(by_id[e["id"]]) for e in listed)
            assert most <= least + 1 / 8 + 1e-6


@pytest.mark.parametrize("limit", [None, 7])
def test_flips_between_steps_of_a_run(get, written, limit):
    run = written[1]["strings"]
    params = {"run": "strings"} if limit is None else {"run": "strings", "limit": limit}
    status, body = get("/flips", params)
    assert status == 200, body
    last = example_runs.STEPS - 1
    assert body["after"] == {"run": "strings", "split": "validation", "step": last}
    assert body["before"] == {"run": "strings", "split": "validation", "step": last - 1}
    assert body["matched"] == example_runs.ROWS
    reference = _flips_reference(
        written[1], ("strings", "validation", last - 1), ("strings", "validation", last)
    )
    _check_flips(body, reference, limit or example_views.DEFAULT_LISTED)
    after = run.evaluations[("validation", last)]
    row_of = {key: row for row, key in enumerate(after.ids)}
    predicted = np.argmax(after.scores, axis=1)
    for entry in body["became_wrong"]["examples"] + body["became_right"]["examples"]:
        row = row_of[entry["id"]]
        if entry["pred"] is not None:  # known where the "after" kept the example
            assert (entry["true"], entry["pred"]) == (after.labels[row], predicted[row])
        assert (
            _text_of(entry["preview"]) == after.previews[row][:1000] if entry["preview"] else True
        )


def test_flips_between_two_runs_match_by_id_and_any_steps(get, written):
    runs = written[1]
    status, body = get(
        "/flips", {"run": "strings_again", "step": 1, "other_run": "strings", "other_step": 0}
    )
    assert status == 200, body
    assert body["before"] == {"run": "strings", "split": "validation", "step": 0}
    reference = _flips_reference(
        runs, ("strings", "validation", 0), ("strings_again", "validation", 1)
    )
    _check_flips(body, reference, example_views.DEFAULT_LISTED)
    # Another split of the other run, by name.
    status, body = get(
        "/flips", {"run": "strings", "other_run": "strings", "other_split": "test", "other_step": 2}
    )
    assert status == 200
    reference = _flips_reference(runs, ("strings", "test", 2), ("strings", "validation", 2))
    _check_flips(body, reference, example_views.DEFAULT_LISTED)


def test_flips_errors(get):
    status, body = get("/flips", {"run": "strings", "other_run": "integers"})
    assert status == 400 and "cannot be matched" in body["error"]
    status, body = get("/flips", {"run": "strings", "step": 0})
    assert status == 404 and "before step 0" in body["error"]
    assert get("/flips", {"run": "strings", "other_step": 17})[0] == 404
    assert get("/flips", {"run": "strings", "limit": 0})[0] == 400
    assert get("/flips", {"run": "strings", "limit": example_views.MAX_LISTED + 1})[0] == 400


def test_flips_of_a_multilabel_run(get, written):
    status, body = get("/flips", {"run": "multilabel", "step": 2, "other_step": 0})
    assert status == 200
    reference = _flips_reference(
        written[1], ("multilabel", "validation", 0), ("multilabel", "validation", 2)
    )
    _check_flips(body, reference, example_views.DEFAULT_LISTED)


# -- /label_issues ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["strings", "integers", "binary"])
def test_label_issues_are_cleanlabs_every_step(get, written, name):
    run = written[1][name]
    for step in range(example_runs.STEPS):
        evaluation = run.evaluations[("validation", step)]
        probs, _ = example_runs.class_scores(run, evaluation)
        flagged = find_label_issues(
            evaluation.labels, probs.astype(np.float64), filter_by="confident_learning"
        )
        status, body = get(
            "/label_issues", {"run": name, "step": step, "limit": example_views.MAX_LISTED}
        )
        assert status == 200, body
        assert body["count"] == flagged.sum()
        assert body["share"] == pytest.approx(flagged.mean(), abs=1e-12)
        listed = body["examples"]
        assert len(listed) == min(flagged.sum(), example_views.MAX_LISTED)
        assert {e["id"] for e in listed} == {evaluation.ids[r] for r in np.flatnonzero(flagged)}
        row_of = {key: row for row, key in enumerate(evaluation.ids)}
        rows = np.array([row_of[e["id"]] for e in listed], dtype=np.int64)
        given_scores = probs[rows, evaluation.labels[rows]]
        np.testing.assert_allclose([e["given_score"] for e in listed], given_scores, atol=1e-7)
        assert np.all(np.diff(given_scores) >= 0)  # the least likely given label first
        # Suggested: a class other than the given one that the model is confident of.
        thresholds = np.array(
            [probs[evaluation.labels == k, k].mean() for k in range(probs.shape[1])]
        )
        for entry, row in zip(listed, rows):
            assert entry["given"] == evaluation.labels[row]
            assert entry["given_name"] == run.class_names[entry["given"]]
            assert entry["suggested"] != entry["given"]
            assert probs[row, entry["suggested"]] >= thresholds[entry["suggested"]] - 1e-6
            assert entry["suggested_score"] == pytest.approx(
                probs[row, entry["suggested"]], abs=1e-7
            )
        # The default lists the contract's 100 at least.
        _, default = get("/label_issues", {"run": name, "step": step})
        assert len(default["examples"]) == min(flagged.sum(), 100)


def test_label_issue_previews(get, written):
    run = written[1]["strings"]
    _, body = get("/label_issues", {"run": "strings"})
    evaluation = run.evaluations[("validation", example_runs.STEPS - 1)]
    row_of = {key: row for row, key in enumerate(evaluation.ids)}
    with_preview = [e for e in body["examples"] if e["preview"] is not None]
    assert with_preview
    for entry in with_preview:
        assert _text_of(entry["preview"]) == evaluation.previews[row_of[entry["id"]]][:1000]


# -- errors -------------------------------------------------------------------------------


def test_a_run_without_example_records_says_how_to_record_them(get):
    for route, params in (
        ("/examples", {"true": 0, "pred": 0}),
        ("/flips", {}),
        ("/label_issues", {}),
    ):
        status, body = get(route, dict(params, run="plain"))
        assert status == 404, (route, body)
        assert "without example records" in body["error"]
        assert requirements.RECORD_EXAMPLES in body["error"]


@pytest.mark.parametrize(
    "route, params, expected",
    [
        ("/examples", {"run": "strings", "pred": 0}, 400),
        ("/examples", {"run": "strings", "true": 0}, 400),
        ("/examples", {"run": "strings", "true": "x", "pred": 0}, 400),
        ("/examples", {"run": "strings", "true": 3, "pred": 0}, 400),
        ("/examples", {"run": "strings", "true": 0, "pred": -1}, 400),
        ("/examples", {"run": "strings", "true": 0, "pred": 0, "class": 0}, 400),
        ("/examples", {"run": "strings", "true": 0, "pred": 0, "split": "a/b"}, 400),
        ("/examples", {"run": "strings", "true": 0, "pred": 0, "split": "x" * 65}, 400),
        ("/examples", {"run": "strings", "true": 0, "pred": 0, "split": "ood"}, 404),
        ("/examples", {"run": "strings", "true": 0, "pred": 0, "step": 99}, 404),
        ("/examples", {"run": "nope", "true": 0, "pred": 0}, 404),
        ("/examples", {"true": 0, "pred": 0}, 400),
        ("/label_issues", {"run": "strings", "step": 99}, 404),
        ("/label_issues", {"run": "strings", "limit": "-3"}, 400),
        ("/label_issues", {"run": "nope"}, 404),
        ("/flips", {"run": "nope"}, 404),
        ("/flips", {"run": "strings", "other_run": "nope"}, 404),
        ("/flips", {"run": "strings", "other_split": "b@d"}, 400),
    ],
)
def test_bad_parameters(get, route, params, expected):
    status, body = get(route, params)
    assert status == expected, body
    assert isinstance(body["error"], str)


def test_damaged_records_are_4xx_and_the_good_runs_unaffected(get, written):
    status, body = get("/runs")
    assert status == 200
    listed = {entry["run"] for entry in body["runs"]}
    assert set(DAMAGES) <= listed
    for name in ("damaged_examples", "garbage_examples", "numeric_examples", "damaged_ids"):
        for route, params in (("/examples", {"true": 0, "pred": 1}), ("/flips", {})):
            status, body = get(route, dict(params, run=name))
            assert status == 422, (name, route, body)
            assert "unreadable metricsdiag data" in body["error"]
        assert get("/confusion", {"run": name})[0] == 200
        assert get("/diagnostics", {"run": name})[0] == 200
    # Damaged previews: the examples without them, and the problem said.
    status, body = get("/examples", {"run": "damaged_previews", "step": 1, "true": 0, "pred": 0})
    assert status == 200
    assert body["preview_problems"] and all(e["preview"] is None for e in body["examples"])
    # Damaged label issues: that route 422, the rest fine, the history says what it skipped.
    assert get("/label_issues", {"run": "damaged_label_issues"})[0] == 422
    assert get("/examples", {"run": "damaged_label_issues", "true": 0, "pred": 0})[0] == 200
    status, body = get("/diagnostics", {"run": "damaged_label_issues"})
    assert status == 200
    [problem] = [f for f in body["findings"] if f["rule"] == "recording_problem"]
    assert problem["severity"] == "error"
    tag = schema.split_tag("validation", schema.KIND_LABEL_ISSUES)
    assert all(d["tag"] == tag and d["steps"] for d in problem["evidence"]["damaged"]), problem
    [not_run] = [each for each in body["not_run"] if each["rule"] == "label_issues"]
    assert not_run["reason"].startswith("the validation label issues are damaged (tag %s" % tag)
    for good in ("strings", "binary", "multilabel"):
        assert (
            get(
                "/examples",
                {"run": good, "true": 0, "pred": 0, "class": 0}
                if good == "multilabel"
                else {"run": good, "true": 0, "pred": 0},
            )[0]
            == 200
        )


_KEYS = st.sampled_from(list(hostile_examples.PARAMETERS) + ["x"])
_VALUES = st.one_of(
    st.sampled_from(
        [
            "strings",
            "binary",
            "multilabel",
            "plain",
            "integers",
            "damaged_examples",
            "damaged_ids",
            "damaged_previews",
            "validation",
            "test",
            "0",
            "1",
            "2",
            "-1",
            "99",
            "1000",
            "1001",
            "",
            "nope",
            XSS,
            "\x00",
            "a/b",
            "x" * 70,
            "1e3",
            "NaN",
            "9" * 40,
        ]
    ),
    st.integers(min_value=-(2**66), max_value=2**66).map(str),
    st.text(max_size=10),
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    pairs=st.lists(st.tuples(_KEYS, _VALUES), max_size=7),
)
def test_property_any_query_is_answered_without_5xx(get, route, pairs):
    params = {}
    for key, value in pairs:
        params.setdefault(key, value)
    status, body = get(route, params)  # client_get fails on a 5xx
    assert status in (200, 400, 404, 422), (params, status, body)
    if status != 200:
        assert isinstance(body["error"], str)


# -- a real Keras training ----------------------------------------------------------------


def test_examples_of_real_keras_trainings(callback_runs):
    """The Keras callback's records: each cell of each epoch against the predictions of the
    trained model (softmax of the logits for the logits run, one sigmoid for the binary one)."""
    root, runs = callback_runs
    client = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(root)]))
    for name, run in runs.items():
        for epoch, predictions in run.predictions.items():
            scores, predicted = to_scores(predictions["validation"], run.outputs_are_logits)
            labels = run.y_val_ids
            matrix = skm.confusion_matrix(labels, predicted, labels=range(scores.shape[1]))
            for true in range(scores.shape[1]):
                for pred in range(scores.shape[1]):
                    status, body = client_get(
                        client,
                        "/examples",
                        {"run": name, "step": epoch, "true": true, "pred": pred},
                    )
                    assert status == 200, body
                    assert body["count"] == matrix[true, pred]
                    rows = np.flatnonzero((labels == true) & (predicted == pred))
                    served = np.array([e["id"] for e in body["examples"]], dtype=np.int64)
                    assert len(served) >= min(rows.size, 10)
                    assert set(served) <= set(rows.tolist())
                    # Scores: the model's, to float32 (the callback predicts in its own pass).
                    np.testing.assert_allclose(
                        [e["score"] for e in body["examples"]], scores[served, pred], atol=2e-6
                    )
                    order = np.sort(scores[rows, pred])
                    expected = order[: len(served)] if true == pred else order[::-1][: len(served)]
                    np.testing.assert_allclose(
                        [e["score"] for e in body["examples"]], expected, atol=2e-6
                    )
            status, body = client_get(
                client, "/label_issues", {"run": name, "step": epoch, "limit": 1000}
            )
            assert status == 200
            flagged = find_label_issues(
                labels, scores.astype(np.float64), filter_by="confident_learning"
            )
            # The callback's own float32 probabilities may differ from these in the last bit.
            assert abs(body["count"] - int(flagged.sum())) <= 1


# -- through a real tensorboard -----------------------------------------------------------


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def server(request, written, tmp_path_factory):
    logdir, runs = written

    def every_run_loaded(get):
        steps = {entry["run"]: len(entry["steps"]) for entry in get("/runs")[1]["runs"]}
        return all(steps.get(name) == example_runs.STEPS for name in runs) and set(DAMAGES) <= set(
            steps
        )

    log_path = str(tmp_path_factory.mktemp("tb_examples_log") / "tensorboard.log")
    with tensorboard_serving(logdir, request.param, log_path, every_run_loaded) as (base, _):
        yield lambda route, params=None: http_get(base, route, params), runs


def test_real_tensorboard_serves_the_same_answers(server, get):
    served, runs = server
    queries = [
        ("/examples", {"run": "strings", "split": "test", "step": 1, "true": 2, "pred": 0}),
        ("/examples", {"run": "strings", "true": 1, "pred": 1}),
        ("/examples", {"run": "binary", "step": 0, "true": 1, "pred": 0}),
        ("/examples", {"run": "multilabel", "class": 2, "true": 1, "pred": 0}),
        ("/flips", {"run": "strings"}),
        ("/flips", {"run": "strings_again", "other_run": "strings", "other_step": 0}),
        ("/label_issues", {"run": "strings", "limit": 1000}),
        ("/label_issues", {"run": "binary", "step": 1}),
    ]
    for route, params in queries:
        status, body = served(route, params)
        assert status == 200, (route, params, body)
        assert (status, body) == get(route, params)  # the in-process answer, checked above
    run = runs["strings"]
    evaluation = run.evaluations[("test", 1)]
    _, body = served("/examples", queries[0][1])
    _check_cell(run, evaluation, body, 2, 0)


def test_real_tensorboard_errors(server):
    served, _ = server
    status, body = served("/examples", {"run": "plain", "true": 0, "pred": 0})
    assert status == 404 and "without example records" in body["error"]
    assert served("/examples", {"run": "strings", "true": 9, "pred": 0})[0] == 400
    assert served("/examples", {"run": "damaged_examples", "true": 0, "pred": 0})[0] == 422
    assert served("/label_issues", {"run": "damaged_label_issues"})[0] == 422
    assert served("/flips", {"run": "strings", "other_run": "integers"})[0] == 400
    quoted = urllib.parse.quote(XSS)
    assert served("/examples?run=" + quoted, None)[0] in (400, 404)


# -- caching ------------------------------------------------------------------------------


def test_a_step_is_decoded_once_and_the_cache_stays_bounded(written, monkeypatch):
    """The cells of a step already read are answered from the decoded record in the cache;
    a new step is decoded; the large derived values have a bounded budget of their own."""
    from tb_metricsdiag.backend import record_decoding

    decoded = []
    decode = record_decoding._EPOCH_RECORD_DECODERS[schema.KIND_EXAMPLES]
    monkeypatch.setitem(
        record_decoding._EPOCH_RECORD_DECODERS,
        schema.KIND_EXAMPLES,
        lambda payload, what: decoded.append(what) or decode(payload, what),
    )
    client = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(written[0])]))
    for true, pred in ((0, 0), (0, 1), (2, 1)):
        assert (
            client_get(client, "/examples", {"run": "strings", "true": true, "pred": pred})[0]
            == 200
        )
    assert len(decoded) == 1
    assert (
        client_get(client, "/examples", {"run": "strings", "step": 0, "true": 0, "pred": 0})[0]
        == 200
    )
    assert len(decoded) == 2

    small = cache_lib.SeriesCache(max_bulk_derived_bytes=3 * cache_lib.BULK_SERIES_BYTES)
    for key in range(5):
        small.put_derived(("big", key), key, cache_lib.BULK_SERIES_BYTES)
        small.put_derived(("small", key), key, 100)
    assert [small.get_derived(("big", key)) for key in range(5)] == [None, None, 2, 3, 4]
    assert [small.get_derived(("small", key)) for key in range(5)] == list(range(5))

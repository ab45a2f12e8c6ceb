"""``/crossings`` on runs that `MetricsDiagWriter` wrote: the counts against NumPy counts of the
scores in the span and against ``/pr``'s, every listed example in the span with the right
polarity and exactly the first samples by position of each bin, the 404 / 400 / 422 answers,
through the Python loader in-process and through a real ``tensorboard`` with both loaders.
"""

import os

import example_runs
import numpy as np
import pytest
from tensorboard.backend import application
from werkzeug import test as werkzeug_test
from zoo import client_get, http_get, make_plugin, tensorboard_serving

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import counting
from tb_metricsdiag.core import crossings as crossings_lib
from tb_metricsdiag.writing import records

COARSE_GRID = np.linspace(0.0, 1.0, 21)


class _WithoutCrossings(example_runs.TamperingWriter):
    """A writer as one before crossing samples: every other example record, no crossings."""

    def _write_records(self, written, step):
        kept = [record for record in written if not record.tag.endswith("/crossings")]
        super()._write_records(kept, step)


def _write_older(logdir, rng):
    with _WithoutCrossings(os.path.join(logdir, "older"), {}) as writer:
        labels = rng.integers(0, 3, size=100)
        writer.add_evaluation(labels, example_runs.probabilities(rng, labels, 3, 2.0), 0)


def _write_coarse(logdir, rng):
    """A run on a grid of its own (21 evenly spaced thresholds), one step."""
    run = example_runs.WrittenRun("coarse", "multiclass", ["a", "b", "c", "d"], {})
    labels = rng.integers(0, 4, size=example_runs.ROWS)
    scores = example_runs.probabilities(rng, labels, 4, 1.5)
    with MetricsDiagWriter(
        os.path.join(logdir, "coarse"), thresholds=COARSE_GRID, class_names=run.class_names
    ) as writer:
        writer.add_evaluation(labels, scores, 0, from_logits=False)
    run.evaluations[("validation", 0)] = example_runs.Evaluation(
        labels, scores, list(range(example_runs.ROWS))
    )
    return run


def _damaged(payload):
    """The samples with their first score moved far out of its bin (to 2.0)."""
    at = len(payload) - 4
    return records.string_value(payload[:at] + np.float32(2.0).tobytes())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(logdir, {name: WrittenRun})."""
    logdir = str(tmp_path_factory.mktemp("crossing_runs"))
    rng = np.random.default_rng(2025)
    ids = ["img-%04d" % i for i in range(example_runs.ROWS)]
    texts = ["text of %s" % key for key in ids]
    images = rng.integers(0, 256, size=(example_runs.ROWS, 28, 28), dtype=np.uint8)
    runs = {
        "strings": example_runs.write_multiclass(logdir, "strings", ids, rng, previews=texts),
        "binary": example_runs.write_binary(logdir, "binary", rng, images),
        "multilabel": example_runs.write_multilabel(logdir, "multilabel", rng),
        "coarse": _write_coarse(logdir, rng),
    }
    example_runs.write_without_examples(logdir, "plain", rng)
    _write_older(logdir, rng)
    with example_runs.TamperingWriter(
        os.path.join(logdir, "damaged"), {"crossings": lambda p: _damaged(p)}
    ) as writer:
        labels = rng.integers(0, 3, size=200)
        writer.add_evaluation(labels, example_runs.probabilities(rng, labels, 3, 2.0), 0)
    return logdir, runs


@pytest.fixture(scope="module")
def get(written):
    client = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(written[0])]))
    return lambda route, params=None: client_get(client, route, params or {})


def _curve(run, evaluation, curve):
    """``(scores float32 [n], positives [n])`` of one curve, as the writer was given them."""
    if run.kind == "multilabel":
        return evaluation.scores[:, curve], evaluation.labels[:, curve] > 0
    probs, _ = example_runs.class_scores(run, evaluation)
    return probs[:, curve], evaluation.labels == curve


def _check(run, evaluation, body, grid, curve, start, end, pr):
    """Everything of one answer against NumPy (and ``/pr``'s counts)."""
    scores, positives = _curve(run, evaluation, curve)
    first = int(np.argmin(np.abs(grid - start)))
    second = int(np.argmin(np.abs(grid - end)))
    low, high = min(first, second), max(first, second)
    assert (body["from"], body["to"]) == (grid[first], grid[second])
    assert body["direction"] == ("up" if second > first else "down" if second < first else "none")
    inside = (scores >= grid[low]) & (scores < grid[high])
    bins = np.searchsorted(grid, scores, side="right") - 1
    row_of = {key: row for row, key in enumerate(evaluation.ids)}
    for polarity, mine, counts in (
        ("positives", positives, pr["tp"]),
        ("negatives", ~positives, pr["fp"]),
    ):
        group = body[polarity]
        assert group["count"] == int((inside & mine).sum())
        assert group["count"] == abs(counts[first] - counts[second])
        rows = [row_of[e["id"]] for e in group["examples"]]
        assert group["listed"] == len(rows)
        listed = np.array([e["score"] for e in group["examples"]])
        np.testing.assert_array_equal(listed, scores[rows].astype(np.float64))
        assert np.all(inside[rows]) and np.all(mine[rows])
        # Exactly the first two rows of each bin of the span (the whole span is stored here).
        assert body["complete"]
        expected = set()
        for j in range(low, high):
            expected.update(np.flatnonzero((bins == j) & mine)[:2].tolist())
        assert set(rows) == expected
        # The nearest to the threshold moved from first.
        steps = np.diff(listed) if body["direction"] == "up" else -np.diff(listed)
        assert np.all(steps >= 0)
        if isinstance(evaluation.previews, list):  # texts: each stored one is the row's
            previews = [e["preview"] for e in group["examples"]]
            assert not rows or any(previews)
            for row, preview in zip(rows, previews):
                assert preview in (None, {"text": evaluation.previews[row]})


@pytest.mark.parametrize(
    "name, split, step, curve, start, end",
    [
        ("strings", "validation", 2, 0, 0.5, 0.9),
        ("strings", "test", 1, 2, 0.8, 0.2),
        ("strings", "validation", 0, 1, 0.3, 0.3),
        ("binary", "validation", 1, 1, 0.5, 0.15),
        ("binary", "validation", 2, 0, 0.1, 0.6),
        ("multilabel", "validation", 2, 3, 0.25, 0.75),
        ("coarse", "validation", 0, 3, 0.52, 0.12),
    ],
)
def test_crossings_match_numpy_and_pr(get, written, name, split, step, curve, start, end):
    run = written[1][name]
    evaluation = run.evaluations[(split, step)]
    grid = COARSE_GRID if name == "coarse" else counting.default_thresholds()
    params = {"run": name, "split": split, "step": step, "class": curve}
    status, pr = get("/pr", params)
    assert status == 200, pr
    status, body = get("/crossings", dict(params, **{"from": start, "to": end}))
    assert status == 200, body
    assert body["class"] == curve and body["class_name"] == run.class_names[curve]
    assert body["per_bin"] == crossings_lib.SAMPLES_PER_BIN
    _check(run, evaluation, body, grid, curve, start, end, pr)


def test_limit_and_defaults(get, written):
    status, body = get("/crossings", {"run": "binary", "from": 0.9, "to": 0.05, "limit": 3})
    assert status == 200, body
    assert body["class"] == 1 and body["step"] == example_runs.STEPS - 1
    assert body["positives"]["listed"] == 3 < body["positives"]["count"]
    assert body["positives"]["from_cell"] == "fn" and body["positives"]["to_cell"] == "tp"
    assert body["negatives"]["from_cell"] == "tn" and body["negatives"]["to_cell"] == "fp"


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"run": "plain", "from": 0.5, "to": 0.6}, 404, "without example records"),
        ({"run": "older", "from": 0.5, "to": 0.6}, 404, "no crossing samples"),
        ({"run": "nope", "from": 0.5, "to": 0.6}, 404, "nope"),
        ({"run": "strings", "from": 0.5, "to": 0.6, "step": 99}, 404, "99"),
        ({"run": "strings", "from": 0.5}, 400, "'to'"),
        ({"run": "strings", "from": "x", "to": 0.5}, 400, "from must be a number"),
        ({"run": "strings", "from": 1.5, "to": 0.5}, 400, "from must be a number"),
        ({"run": "strings", "from": "nan", "to": 0.5}, 400, "from must be a number"),
        ({"run": "strings", "from": 0.2, "to": 0.5, "class": 3}, 400, "class"),
        ({"run": "strings", "from": 0.2, "to": 0.5, "limit": 0}, 400, "limit"),
        ({"run": "strings", "from": 0.2, "to": 0.5, "slice": "g=a"}, 400, "takes no slice"),
        ({"run": "damaged", "from": 0.2, "to": 0.5}, 422, "outside its bin"),
    ],
)
def test_errors(get, params, status, words):
    got, body = get("/crossings", params)
    assert got == status, body
    assert words in body["error"], body


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def served(request, written, tmp_path_factory):
    logdir, runs = written

    def every_run_loaded(get):
        steps = {entry["run"]: len(entry["steps"]) for entry in get("/runs")[1]["runs"]}
        return all(steps.get(name) for name in list(runs) + ["damaged", "older"]) and all(
            steps[name] == example_runs.STEPS for name in ("strings", "binary", "multilabel")
        )

    log_path = str(tmp_path_factory.mktemp("tb_crossings_log") / "tensorboard.log")
    with tensorboard_serving(logdir, request.param, log_path, every_run_loaded) as (base, _):
        yield lambda route, params=None: http_get(base, route, params)


def test_real_tensorboard_serves_the_same_answers(served, get, written):
    queries = [
        {"run": "strings", "split": "test", "step": 1, "class": 2, "from": 0.8, "to": 0.2},
        {"run": "binary", "from": 0.5, "to": 0.15},
        {"run": "multilabel", "class": 3, "from": 0.25, "to": 0.75},
    ]
    for params in queries:
        status, body = served("/crossings", params)
        assert status == 200, (params, body)
        assert (status, body) == get("/crossings", params)
    params = queries[0]
    run = written[1]["strings"]
    pr = served("/pr", {key: params[key] for key in ("run", "split", "step", "class")})[1]
    grid = counting.default_thresholds()
    _check(run, run.evaluations[("test", 1)], body_of(served, params), grid, 2, 0.8, 0.2, pr)
    assert served("/crossings", {"run": "older", "from": 0.5, "to": 0.6})[0] == 404
    assert served("/crossings", {"run": "damaged", "from": 0.2, "to": 0.5})[0] == 422
    assert served("/crossings", {"run": "strings", "from": 0.2})[0] == 400


def body_of(served, params):
    status, body = served("/crossings", params)
    assert status == 200, body
    return body

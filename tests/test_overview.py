"""``/overview`` (contract: "Many runs at once"): one entry per run with its figures at the best
step, against scikit-learn on the same predictions, with a real ``tensorboard`` and both
loaders; a run that cannot be read has its error and leaves the others whole.
"""

import numpy as np
import pytest
from headline_reference import draw_binary, draw_multiclass, draw_multilabel, ece
from sklearn import metrics as skm
from zoo import (
    file_version,
    framed,
    http_get,
    plugin_md,
    tensor_event,
    tensorboard_serving,
    write_run,
)

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.format import schema

ROWS = 300
NAMES = ["cat", "dog", "bird"]
# The validation loss of the multi-class run: best (EarlyStopping's choice) at step 2.
VAL_LOSS = [0.9, 0.7, 0.5, 0.55, 0.6]


def _multiclass(rng, step):
    return draw_multiclass(rng, ROWS, 0.15 * (step + 1))


def _binary(rng, step):
    return draw_binary(rng, ROWS)


def _multilabel(rng, step):
    return draw_multilabel(rng, ROWS)


def _expected(task, names, labels, scores):
    """The figures of one evaluation by scikit-learn (ECE in NumPy)."""
    if task == "multilabel":
        predicted = (scores >= 0.5).astype(int)
        recall = skm.recall_score(labels, predicted, average=None, zero_division=np.nan)
        figures = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "balanced_accuracy": None,
            "macro_f1": skm.f1_score(labels, predicted, average="macro", zero_division=np.nan),
            "ece": ece(scores.ravel(), labels.ravel()),
        }
    else:
        if scores.ndim == 1:
            predicted, confidence, correct = (scores >= 0.5).astype(int), scores, labels == 1
        else:
            predicted = scores.argmax(axis=1)
            confidence, correct = scores.max(axis=1), predicted == labels
        recall = skm.recall_score(labels, predicted, average=None, zero_division=np.nan)
        figures = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "balanced_accuracy": skm.balanced_accuracy_score(labels, predicted),
            "macro_f1": skm.f1_score(labels, predicted, average="macro", zero_division=np.nan),
            "ece": ece(confidence, correct),
        }
    worst = int(np.argmin(recall))
    figures["worst_class"] = {"name": names[worst], "recall": recall[worst]}
    return figures


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """(logdir, {run: (task, best step, steps, figures at the best step)})."""
    root = tmp_path_factory.mktemp("overview_logdir")
    rng = np.random.default_rng(17)
    expected = {}
    for run, draw, kwargs, task, names in (
        ("sweep/multiclass", _multiclass, {"class_names": NAMES}, "multiclass", NAMES),
        ("sweep/binary", _binary, {"class_names": ["neg", "pos"]}, "binary", ["neg", "pos"]),
        ("sweep/multilabel", _multilabel, {"multi_label": True}, "multilabel", list("0123")),
    ):
        evaluations = {}
        with MetricsDiagWriter(root / run, **kwargs) as writer:
            for step in range(len(VAL_LOSS)):
                evaluations[step] = draw(rng, step)
                writer.add_evaluation(*evaluations[step], step, example_ids=False)
                if task == "multiclass":  # the others have no loss: their latest step counts
                    writer.add_logs({"loss": 1.0 / (step + 1), "val_loss": VAL_LOSS[step]}, step)
        best = 2 if task == "multiclass" else len(VAL_LOSS) - 1
        expected[run] = (task, best, _expected(task, names, *evaluations[best]))
    # A run written by a newer tb-metricsdiag: unreadable, listed with its error.
    newer = plugin_md(schema.KIND_CONFUSION, "validation", ["n", "p"], overrides={"version": 99})
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    write_run(
        str(root),
        "sweep/newer",
        [file_version(), framed(tensor_event(0, tag, np.array([[1, 2], [3, 4]]), newer))],
    )
    return str(root), expected


def _ready(expected):
    def ready(get):
        status, body = get("/runs")
        steps = {entry["run"]: entry["steps"] for entry in body["runs"]}
        return status == 200 and all(len(steps.get(run, [])) == len(VAL_LOSS) for run in expected)

    return ready


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def get(request, logdir, tmp_path_factory):
    root, expected = logdir
    log_path = str(tmp_path_factory.mktemp("tensorboard_log") / "tensorboard.log")
    with tensorboard_serving(root, request.param, log_path, _ready(expected)) as (base, _):
        yield lambda route, params=None: http_get(base, route, params)


def test_figures_at_the_best_step_equal_sklearn(get, logdir):
    _, expected = logdir
    status, body = get("/overview")
    assert status == 200
    entries = {entry["run"]: entry for entry in body["runs"]}
    assert sorted(entries) == sorted(expected) + ["sweep/newer"]
    for run, (task, best, figures) in expected.items():
        entry = entries[run]
        assert entry["task"] == task
        assert entry["steps"] == list(range(len(VAL_LOSS)))
        assert entry["best_step"] == best
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "ece"):
            assert entry[key] == pytest.approx(figures[key], abs=1e-12), (run, key)
        assert entry["worst_class"]["name"] == figures["worst_class"]["name"]
        assert entry["worst_class"]["recall"] == pytest.approx(figures["worst_class"]["recall"])
        # The figures of /confusion at that step, the best epoch of /curves.
        status, confusion = get("/confusion", {"run": run, "step": best})
        assert entry["accuracy"] == pytest.approx(confusion["accuracy"])
        assert entry["macro_f1"] == pytest.approx(confusion["macro_f1"])
        status, curves = get("/curves", {"run": run})
        assert entry["best_epoch"] == curves["best_epoch"]
        status, diagnosis = get("/diagnostics", {"run": run})
        severities = [finding["severity"] for finding in diagnosis["findings"]]
        assert entry["findings"] == {s: severities.count(s) for s in ("error", "warning", "info")}


def test_an_unreadable_run_has_its_error_and_the_others_are_whole(get, logdir):
    status, body = get("/overview")
    assert status == 200
    newer = [entry for entry in body["runs"] if entry["run"] == "sweep/newer"]
    assert len(newer) == 1
    assert "newer" in newer[0]["error"] or "version" in newer[0]["error"]
    assert "accuracy" not in newer[0]
    assert all("error" not in entry for entry in body["runs"] if entry is not newer[0])


def test_split_parameter(get):
    status, body = get("/overview", {"split": "train"})
    assert status == 200 and body == {"runs": []}  # no run has a train split
    status, body = get("/overview", {"split": "no/such"})
    assert status == 400 and "split" in body["error"]

"""Headline scalars (contract: "Headline scalars"), read back through TensorBoard's own scalars
plugin with both loaders and compared with scikit-learn on the same predictions: written by
`MetricsDiagWriter` (multi-class, binary, multi-label, many classes, ``scalars=False``) and by
the Keras callback (`callback_runs`, the session's real trainings). Lightning and Transformers:
tests/torch_process/test_headline_scalars_torch.py.
"""

import os
import shutil
import time

import numpy as np
import pytest
from conftest import to_scores
from headline_reference import (
    check_headline_scalars,
    draw_binary,
    draw_multiclass,
    draw_multilabel,
    scalars_route,
)
from zoo import http_get, tensorboard_serving

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import headline

STEPS = 3
ROWS = 240
NAMES = ["cat", "dog", "bird"]
MANY = headline.PER_CLASS_LIMIT + 5


def _multiclass(rng, step):
    labels, scores = draw_multiclass(rng, ROWS, 0.2 * (step + 1))
    if step == 0:
        scores[:, 2] = 0  # "bird" is never predicted: its precision is undefined, not written
    return labels, scores / scores.sum(axis=1, keepdims=True)  # probabilities, not logits


def _binary(rng, step):
    return draw_binary(rng, ROWS)


def _multilabel(rng, step):
    return draw_multilabel(rng, ROWS)


def _many(rng, step):
    return draw_multiclass(rng, ROWS, 0.1, classes=MANY)


# run -> (draw, writer keyword arguments, task)
WRITER_RUNS = {
    "writer_multiclass": (_multiclass, {"class_names": NAMES}, "multiclass"),
    "writer_binary": (_binary, {"class_names": ["neg", "pos"]}, "binary"),
    "writer_multilabel": (_multilabel, {"multi_label": True}, "multilabel"),
    "writer_many": (_many, {}, "multiclass"),
    "writer_off": (_multiclass, {"class_names": NAMES, "scalars": False}, "multiclass"),
}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, callback_runs):
    """(logdir, {run: (class names, task, {split: {step: (labels, probabilities)}})}): the
    writer's runs and a copy of the session's Keras runs."""
    root = tmp_path_factory.mktemp("headline_logdir")
    rng = np.random.default_rng(5)
    reference = {}
    for run, (draw, kwargs, task) in WRITER_RUNS.items():
        steps = {}
        with MetricsDiagWriter(root / run, **kwargs) as writer:
            for step in range(STEPS):
                labels, scores = draw(rng, step)
                writer.add_evaluation(labels, scores, step, example_ids=False)
                steps[step] = (labels, scores)
        names = writer.class_names
        reference[run] = (names, task, {"validation": steps})
    keras_root, runs = callback_runs
    for name in ("binary", "multiclass"):
        trained = runs[name]
        shutil.copytree(trained.log_dir, root / ("keras_" + name))
        splits = {"validation": {}, "train": {}}
        for epoch, predictions in trained.predictions.items():
            for split, labels in (
                ("validation", trained.y_val_ids),
                ("train", trained.y_train_sample_ids),
            ):
                probabilities, _ = to_scores(predictions[split], trained.outputs_are_logits)
                splits[split][epoch] = (labels, probabilities)
        task = "binary" if len(trained.class_names) == 2 else "multiclass"
        reference["keras_" + name] = (trained.class_names, task, splits)
    return str(root), reference


def _every_run_listed(reference):
    def ready(get):
        status, body = get("/runs")
        steps = {entry["run"]: entry["steps"] for entry in body["runs"]}
        return status == 200 and all(
            len(steps.get(run, [])) == len(splits["validation"])
            for run, (_, _, splits) in reference.items()
        )

    return ready


def scalars_getter(base):
    """``(route, params) -> (status, body)`` of TensorBoard's own scalars plugin."""
    return lambda route, params=None: scalars_route(base, route, params)


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def served(request, logdir, tmp_path_factory):
    root, reference = logdir
    log_path = str(tmp_path_factory.mktemp("tensorboard_log") / "tensorboard.log")
    with tensorboard_serving(root, request.param, log_path, _every_run_listed(reference)) as (
        base,
        _,
    ):
        scalars = scalars_getter(base)
        deadline = time.monotonic() + 60
        while True:  # the scalars load with the rest; wait for the last step of each run
            _, tags = scalars("/tags")
            if all(
                len(splits["validation"]) - 1
                in _steps(scalars, run, "metricsdiag/validation/accuracy", tags)
                for run, (_, _, splits) in reference.items()
                if run != "writer_off"
            ):
                break
            assert time.monotonic() < deadline, tags
            time.sleep(0.5)
        yield base, reference


def _steps(scalars, run, tag, tags):
    if tag not in (tags or {}).get(run, {}):
        return set()
    status, points = scalars("/scalars", {"run": run, "tag": tag})
    return {step for _, step, _ in points} if status == 200 else set()


@pytest.mark.parametrize("run", sorted(WRITER_RUNS) + ["keras_binary", "keras_multiclass"])
def test_scalars_equal_sklearn(served, run):
    base, reference = served
    names, task, splits = reference[run]
    scalars = scalars_getter(base)
    listed = set(scalars("/tags")[1].get(run, {}))
    if run == "writer_off":
        assert listed == set()  # nor any other scalar
        return
    for split, steps in splits.items():
        expected_tags = check_headline_scalars(
            lambda tag: scalars("/scalars", {"run": run, "tag": tag}), split, names, task, steps
        )
        ours = {tag for tag in listed if tag.startswith("metricsdiag/%s/" % split)}
        assert ours == expected_tags
        if len(names) > headline.PER_CLASS_LIMIT:
            assert not any("/recall/" in tag or "/precision/" in tag for tag in ours)


def test_the_tab_ignores_the_scalars(served):
    """The plugin's own readers skip the scalars: the runs, their splits and curves are those
    written, and a Keras run's curves are still its Keras scalars."""
    base, reference = served
    get = lambda route, params=None: http_get(base, route, params)  # noqa: E731
    status, body = get("/runs")
    assert status == 200
    by_run = {entry["run"]: entry for entry in body["runs"]}
    assert set(reference) <= set(by_run)
    for run, (_, task, splits) in reference.items():
        assert by_run[run]["splits"] == list(splits), run
        assert by_run[run]["task"] == task
        status, curves = get("/curves", {"run": run})
        assert status == 200
        assert not any(key.startswith("metricsdiag") for key in curves["curves"])
    status, curves = get("/curves", {"run": "keras_multiclass"})
    assert {"loss", "val_loss"} <= set(curves["curves"])
    status, findings = get("/diagnostics", {"run": "keras_multiclass"})
    assert status == 200
    assert not [f for f in findings["findings"] if f["rule"] == "recording_problem"]


def test_scalars_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="scalars must be True"):
        MetricsDiagWriter(os.fspath(tmp_path), scalars="no")

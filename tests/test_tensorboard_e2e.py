"""A real ``tensorboard`` serving the plugin, with the Rust data server and the Python loader.

The logdir is written with the public summary writers in a plain `tf.summary` loop, more
epochs than either loader keeps by default, so that the loader's flag fix is exercised too.
"""

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import to_scores
from sklearn import metrics as skm
from zoo import tensorboard_serving

STEPS = 15
EXAMPLES = 120
RUNS = {"binary15": (2, ["neg", "pos"]), "three15": (3, None)}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(logdir, {run: {step: (labels, raw outputs)}}) written with tb_metricsdiag.summary."""
    import tensorflow as tf

    from tb_metricsdiag import summary

    logdir = str(tmp_path_factory.mktemp("e2e_logdir"))
    rng = np.random.default_rng(11)
    reference = {}
    for run, (num_classes, class_names) in RUNS.items():
        reference[run] = {}
        writer = tf.summary.create_file_writer(os.path.join(logdir, run))
        with writer.as_default():
            for step in range(STEPS):
                labels = rng.integers(0, num_classes, size=EXAMPLES)
                if num_classes == 2:
                    outputs = np.clip(0.3 * labels + rng.random(EXAMPLES) * 0.7, 0, 1)[:, None]
                else:
                    outputs = rng.dirichlet(np.ones(num_classes), size=EXAMPLES)
                    outputs[np.arange(EXAMPLES), labels] += 0.3
                    outputs /= outputs.sum(axis=1, keepdims=True)
                outputs = outputs.astype(np.float32)
                summary.write_evaluation(labels, outputs, step=step, class_names=class_names)
                summary.write_logs({"loss": 1.0 / (step + 1)}, step=step)
                reference[run][step] = (labels, outputs)
        writer.close()
    return logdir, reference


def _get(base, path):
    """(status, parsed JSON body) of a GET on the server."""
    try:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _every_step_served(get):
    status, body = get("/runs")
    steps = {entry["run"]: entry["steps"] for entry in body["runs"]}
    return status == 200 and all(len(steps.get(run, [])) == STEPS for run in RUNS)


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def server(request, written, tmp_path_factory):
    logdir, reference = written
    log_path = str(tmp_path_factory.mktemp("tensorboard_log") / "tensorboard.log")
    with tensorboard_serving(logdir, request.param, log_path, _every_step_served) as (base, _):
        yield base, reference


def test_plugin_is_listed_with_its_frontend(server):
    base, _ = server
    status, listing = _get(base, "/data/plugins_listing")
    assert status == 200
    entry = listing["metricsdiag"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Metrics Diagnostics"
    # The listing turns es_module_path into the full route of the iframe's module.
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/metricsdiag/index.js",
    }


def test_every_step_is_served(server):
    base, _ = server
    status, body = _get(base, "/data/plugin/metricsdiag/runs")
    assert status == 200
    entries = {entry["run"]: entry for entry in body["runs"]}
    for run in RUNS:
        assert entries[run]["steps"] == list(range(STEPS))
    status, curves = _get(base, "/data/plugin/metricsdiag/curves?run=binary15")
    assert curves["curves"]["loss"]["steps"] == list(range(STEPS))


@pytest.mark.parametrize("run", sorted(RUNS))
def test_numbers_equal_sklearn_at_every_step(server, run):
    base, reference = server
    num_classes = RUNS[run][0]
    for step, (labels, outputs) in reference[run].items():
        scores, predicted = to_scores(outputs, from_logits=False)
        status, body = _get(base, "/data/plugin/metricsdiag/confusion?run=%s&step=%d" % (run, step))
        assert status == 200, body
        assert (
            body["matrix"]
            == skm.confusion_matrix(labels, predicted, labels=range(num_classes)).tolist()
        )
        assert body["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=1e-12)
        k = step % num_classes
        status, pr = _get(
            base, "/data/plugin/metricsdiag/pr?run=%s&step=%d&class=%d" % (run, step, k)
        )
        assert status == 200, pr
        thresholds = np.asarray(pr["thresholds"])
        at_or_above = scores[:, k][None, :] >= thresholds[:, None]
        assert pr["tp"] == (at_or_above & (labels == k)).sum(axis=1).tolist()
        assert pr["fp"] == (at_or_above & (labels != k)).sum(axis=1).tolist()
        assert pr["average_precision"] == pytest.approx(
            skm.average_precision_score(labels == k, scores[:, k]), abs=1e-6
        )


def test_errors_through_the_real_server(server):
    base, _ = server
    assert _get(base, "/data/plugin/metricsdiag/confusion")[0] == 400
    assert _get(base, "/data/plugin/metricsdiag/confusion?run=nope")[0] == 404
    assert _get(base, "/data/plugin/metricsdiag/pr?run=binary15&class=5")[0] == 400

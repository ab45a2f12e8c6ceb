"""HTTP routes over a MultiplexerDataProvider, every number against scikit-learn / NumPy.

The data are the callback's event files from `callback_runs` (real Keras trainings) plus a
second logdir of hand-written runs: a broken one, one from a newer format, one with counts but
no threshold counts, and a Keras-only run.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import EPOCHS, documented_thresholds, to_scores
from sklearn import metrics as skm
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins import base_plugin
from tensorboard.summary.writer import event_file_writer
from tensorboard.util import tensor_util
from werkzeug import test as werkzeug_test

from tb_metricsdiag.backend import plugin as plugin_lib
from tb_metricsdiag.backend import static_files
from tb_metricsdiag.format import metadata, schema

PREFIX = "/data/plugin/metricsdiag"
TRAINED = ["binary", "multiclass", "onehot"]
MIN_RECALL, MIN_PRECISION = 0.9, 0.8


# -- hand-written runs ------------------------------------------------------------------


def _write(run_dir, step, tag, array, summary_metadata):
    _write_series(run_dir, tag, [array], summary_metadata, first_step=step)


def _write_series(run_dir, tag, arrays, summary_metadata, first_step=0):
    """One event file holding ``arrays`` at consecutive steps. One file, not one per step:
    TensorBoard reads a directory's files in name order, where a writer counter of 10 sorts
    before 9, and a step read after a later one purges the later one."""
    writer = event_file_writer.EventFileWriter(run_dir)
    for step, array in enumerate(arrays, start=first_step):
        value = summary_pb2.Summary.Value(
            tag=tag, tensor=tensor_util.make_tensor_proto(array), metadata=summary_metadata
        )
        writer.add_event(
            event_pb2.Event(
                step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[value])
            )
        )
    writer.close()


def _confusion_metadata(version=schema.FORMAT_VERSION):
    md = metadata.create_summary_metadata(schema.KIND_CONFUSION, "validation", ["a", "b"])
    content = json.loads(md.plugin_data.content)
    content["version"] = version
    md.plugin_data.content = json.dumps(content).encode()
    return md


def _keras_scalar_metadata():
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )


def _write_hand_made_runs(root):
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    _write_series(
        os.path.join(root, "confusion_only"),
        confusion_tag,
        [np.array([[5, 1], [2, 7]], np.int32)] * 2,
        _confusion_metadata(),
    )
    _write(
        os.path.join(root, "malformed"),
        0,
        confusion_tag,
        np.zeros((2, 3), np.int32),
        _confusion_metadata(),
    )
    _write(
        os.path.join(root, "future"),
        0,
        confusion_tag,
        np.eye(2, dtype=np.int32),
        _confusion_metadata(version=schema.FORMAT_VERSION + 1),
    )
    for subrun, values in (("train", [0.9, 0.5, 0.3]), ("validation", [1.0, 0.7, float("nan")])):
        _write_series(
            os.path.join(root, "keras_only", subrun),
            "epoch_loss",
            [np.array(value, np.float32) for value in values],
            _keras_scalar_metadata(),
        )


# -- fixtures ---------------------------------------------------------------------------


def _strict_json(response):
    def refuse(constant):
        raise AssertionError("non-strict JSON constant %s" % constant)

    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def _make_plugin(logdirs):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0}
    )
    for logdir in logdirs:
        multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = provider_lib.MultiplexerDataProvider(multiplexer, logdirs[0])
    context = base_plugin.TBContext(logdir=logdirs[0], data_provider=provider)
    return plugin_lib.MetricsDiagLoader().load(context)


@pytest.fixture(scope="module")
def runs(callback_runs):
    return callback_runs[1]


@pytest.fixture(scope="module")
def client(callback_runs, tmp_path_factory):
    extra = str(tmp_path_factory.mktemp("hand_made"))
    _write_hand_made_runs(extra)
    plugin = _make_plugin([callback_runs[0], extra])
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin]))


def get(client, route, **params):
    response = client.get(PREFIX + route, query_string=params)
    return response.status_code, _strict_json(response)


def _labels(run, split):
    return run.y_val_ids if split == "validation" else run.y_train_sample_ids


def _reference(run, split, epoch):
    scores, predicted = to_scores(run.predictions[epoch][split], run.outputs_are_logits)
    return _labels(run, split), scores, predicted


def _close(served, expected, tolerance=1e-9):
    served = np.array([np.nan if v is None else v for v in np.ravel(served)], dtype=np.float64)
    np.testing.assert_allclose(
        served, np.ravel(expected).astype(np.float64), rtol=0, atol=tolerance, equal_nan=True
    )


# -- plugin object and loader -----------------------------------------------------------


def test_plugin_metadata(client, callback_runs):
    plugin = _make_plugin([callback_runs[0]])
    assert plugin.plugin_name == "metricsdiag"
    assert plugin.is_active() is False
    assert tuple(plugin.data_plugin_names()) == ("metricsdiag",)
    frontend = plugin.frontend_metadata()
    assert frontend.es_module_path == "/index.js"
    assert frontend.tab_name == "Metrics Diagnostics"
    assert "/index.js" in plugin.get_plugin_apps()


@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, {"metricsdiag": 0}),
        ({"scalars": 7}, {"scalars": 7, "metricsdiag": 0}),
        ({"metricsdiag": 5}, {"metricsdiag": 5}),
        (None, {"metricsdiag": 0}),
    ],
)
def test_fix_flags_keeps_every_sample_unless_the_user_chose(given, expected):
    flags = argparse.Namespace(samples_per_plugin=given)
    plugin_lib.MetricsDiagLoader().fix_flags(flags)
    assert flags.samples_per_plugin == expected


def test_importing_the_plugin_does_not_import_tensorflow():
    code = (
        "import sys, tb_metricsdiag.backend.plugin, tb_metricsdiag.backend.views, tb_metricsdiag.backend.reader\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "assert not heavy, heavy[:5]\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


# -- /runs ------------------------------------------------------------------------------


def test_routes_live_under_the_plugin_prefix(client):
    assert client.get(PREFIX + "/runs").status_code == 200
    assert client.get("/runs").status_code == 404


def test_runs_lists_every_training_run_sorted(client, runs):
    code, body = get(client, "/runs")
    assert code == 200
    entries = {entry["run"]: entry for entry in body["runs"]}
    assert [entry["run"] for entry in body["runs"]] == sorted(entries)
    for name in TRAINED:
        entry = entries[name]
        assert entry["steps"] == list(range(EPOCHS))
        assert entry["splits"] == ["validation", "train"]
        assert entry["class_names"] == (runs[name].class_names or ["0", "1", "2", "3"])
        assert entry["has_counts"] is True
        assert entry["default_class"] == (1 if len(entry["class_names"]) == 2 else 0)
        assert entry["task"] == ("binary" if len(entry["class_names"]) == 2 else "multiclass")
        assert entry["slice_keys"] == {}  # written without groups
    assert entries["keras_only"] == {
        "run": "keras_only",
        "steps": [],
        "splits": [],
        "class_names": [],
        "has_counts": False,
        "default_class": None,
        "task": None,
        "trainings": 1,
        "slice_keys": {},
    }
    assert entries["confusion_only"]["steps"] == [0, 1]
    assert "error" not in entries["confusion_only"]
    assert "newer" in entries["future"]["error"] and entries["future"]["steps"] == []
    assert not any(name.endswith(("/train", "/validation")) for name in entries)
    assert get(client, "/runs") == (code, body)  # the same from the kept steps and errors


# -- /confusion -------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_confusion_matches_sklearn_every_epoch(client, runs, name, split):
    run = runs[name]
    for epoch in range(EPOCHS):
        code, body = get(client, "/confusion", run=name, split=split, step=epoch)
        assert code == 200, body
        labels, _, predicted = _reference(run, split, epoch)
        classes = list(range(len(body["class_names"])))
        expected = skm.confusion_matrix(labels, predicted, labels=classes)
        assert (body["run"], body["split"], body["step"]) == (name, split, epoch)
        assert body["matrix"] == expected.tolist()
        assert body["total"] == len(labels)
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            labels, predicted, labels=classes, zero_division=np.nan
        )
        assert [c["name"] for c in body["per_class"]] == body["class_names"]
        _close([c["precision"] for c in body["per_class"]], precision)
        _close([c["recall"] for c in body["per_class"]], recall)
        _close([c["f1"] for c in body["per_class"]], f1)
        assert [c["support"] for c in body["per_class"]] == support.tolist()
        _close(body["accuracy"], skm.accuracy_score(labels, predicted))
        _close(body["balanced_accuracy"], skm.balanced_accuracy_score(labels, predicted))
        _close(
            body["macro_f1"],
            skm.f1_score(labels, predicted, labels=classes, average="macro", zero_division=np.nan),
        )
        baseline = np.bincount(labels, minlength=len(classes)).max() / len(labels)
        _close(body["majority_baseline"], baseline)
        accuracy = skm.accuracy_score(labels, predicted)
        reduction = (accuracy - baseline) / (1 - baseline) if baseline < 1 else 0.0
        assert body["no_better_than_majority"] == (reduction < 0.1)
        _close(
            body["normalized"]["true"],
            skm.confusion_matrix(labels, predicted, labels=classes, normalize="true"),
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            by_column = expected / expected.sum(axis=0, keepdims=True)
        _close(body["normalized"]["pred"], by_column)


def test_confusion_defaults_to_validation_at_the_latest_step(client):
    code, body = get(client, "/confusion", run="multiclass")
    assert code == 200
    assert (body["split"], body["step"]) == ("validation", EPOCHS - 1)


# -- /pr --------------------------------------------------------------------------------


def _brute_force_points(thresholds, tp, fp, positives, negatives):
    """Operating points by scanning every threshold in plain Python."""
    rows = []
    for i, _t in enumerate(thresholds):
        p = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else math.nan
        r = tp[i] / positives if positives else math.nan
        denominator = 2 * tp[i] + fp[i] + (positives - tp[i])
        rows.append((i, p, r, 2 * tp[i] / denominator if denominator else math.nan))
    defined = [row for row in rows if not math.isnan(row[3])]
    best = max(defined, key=lambda row: (row[3], row[0]))[0] if defined else None
    at_recall = [row[0] for row in rows if not math.isnan(row[2]) and row[2] >= MIN_RECALL]
    at_precision = [row[0] for row in rows if not math.isnan(row[1]) and row[1] >= MIN_PRECISION]
    return best, (at_recall[-1] if at_recall else None), (at_precision[0] if at_precision else None)


def _check_point(point, index, body):
    if index is None:
        assert point is None
        return
    assert point["index"] == index
    assert point["threshold"] == body["thresholds"][index]
    for key in ("precision", "recall", "f1", "tp", "fp", "tn", "fn"):
        assert point[key] == body[key][index], key
    assert point["matrix"] == [[point["tn"], point["fp"]], [point["fn"], point["tp"]]]


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_pr_matches_exact_counts_and_sklearn(client, runs, name, split):
    run = runs[name]
    for epoch in range(EPOCHS):
        labels, scores, _ = _reference(run, split, epoch)
        for k in range(scores.shape[1]):
            code, body = get(
                client,
                "/pr",
                run=name,
                split=split,
                step=epoch,
                **{"class": k},
                min_recall=MIN_RECALL,
                min_precision=MIN_PRECISION,
            )
            assert code == 200, body
            assert (body["class"], body["class_name"]) == (k, (run.class_names or "0123")[k])
            thresholds = np.asarray(body["thresholds"])
            np.testing.assert_array_equal(thresholds, documented_thresholds())
            actual = labels == k
            at_or_above = scores[:, k][None, :] >= thresholds[:, None]
            tp = (at_or_above & actual).sum(axis=1)
            fp = (at_or_above & ~actual).sum(axis=1)
            positives, negatives = int(actual.sum()), int((~actual).sum())
            assert (body["positives"], body["negatives"]) == (positives, negatives)
            assert body["tp"] == tp.tolist() and body["fp"] == fp.tolist()
            assert body["fn"] == (positives - tp).tolist()
            assert body["tn"] == (negatives - fp).tolist()
            with np.errstate(invalid="ignore", divide="ignore"):
                _close(body["precision"], np.where(tp + fp > 0, tp / (tp + fp), np.nan))
                _close(body["recall"], tp / positives)
                _close(body["f1"], 2 * tp / (2 * tp + fp + positives - tp))
            _close(
                body["average_precision"],
                skm.average_precision_score(actual, scores[:, k]),
                tolerance=1e-6,
            )
            best, at_recall, at_precision = _brute_force_points(
                thresholds, tp, fp, positives, negatives
            )
            _check_point(body["best_f1"], best, body)
            _check_point(body["at_recall"], at_recall, body)
            _check_point(body["at_precision"], at_precision, body)


@pytest.mark.parametrize("name, expected_class", [("binary", 1), ("multiclass", 0), ("onehot", 0)])
def test_pr_default_class_and_absent_goals(client, name, expected_class):
    code, body = get(client, "/pr", run=name)
    assert code == 200
    assert (body["class"], body["split"], body["step"]) == (
        expected_class,
        "validation",
        EPOCHS - 1,
    )
    assert body["at_recall"] is None and body["at_precision"] is None
    assert body["best_f1"] is not None


def test_pr_min_cost_point_matches_brute_force_on_the_served_counts(client):
    code, body = get(client, "/pr", run="binary", fn_cost="5", fp_cost="1")
    assert code == 200
    costs = [5 * fn + fp for fn, fp in zip(body["fn"], body["fp"])]
    best = max(i for i, c in enumerate(costs) if c == min(costs))
    point = body["min_cost"]
    assert point["index"] == best and point["threshold"] == body["thresholds"][best]
    total = body["positives"] + body["negatives"]
    assert point["cost"] == pytest.approx(min(costs) / total)
    assert len(body["fpr"]) == len(body["thresholds"]) and 0 <= body["roc_auc"] <= 1


@pytest.mark.parametrize("name", TRAINED)
def test_pr_roc_auc_is_exact_and_equals_scikit_learn(client, runs, name):
    run = runs[name]
    labels, scores, _ = _reference(run, "validation", EPOCHS - 1)
    for k in range(scores.shape[1]):
        code, body = get(client, "/pr", run=name, **{"class": k})
        assert code == 200, body
        assert body["roc_auc_method"] == "exact"
        _close(body["roc_auc"], skm.roc_auc_score(labels == k, scores[:, k]))


def test_pr_unreachable_goal_is_null(client):
    code, body = get(client, "/pr", run="binary", min_precision=1, min_recall=1)
    assert code == 200
    if max(p for p in body["precision"] if p is not None) < 1:
        assert body["at_precision"] is None
    else:
        assert body["at_precision"]["precision"] == 1
    assert body["at_recall"]["recall"] == 1


# -- /calibration -----------------------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_calibration_bins_and_errors_equal_torchmetrics(client, runs, torchmetrics, name, split):
    run = runs[name]
    code, body = get(client, "/calibration", run=name, split=split, step=1)
    assert code == 200, body
    assert (body["run"], body["split"], body["step"]) == (name, split, 1)
    labels, scores, predicted = _reference(run, split, 1)
    if scores.shape[1] == 2:
        confidence, correct = scores[:, 1], labels == 1
        metric = "BinaryCalibrationError"
        target, preds, kwargs = labels, scores[:, 1], {}
    else:
        confidence, correct = scores.max(axis=1), predicted == labels
        metric = "MulticlassCalibrationError"
        target, preds, kwargs = labels, scores, {"num_classes": scores.shape[1]}
    bins = body["bins"]
    assert len(bins) == 15 and bins[0]["lower"] == 0 and bins[-1]["upper"] == 1
    index = np.minimum((confidence.astype(np.float64) * 15).astype(int), 14)
    assert [b["count"] for b in bins] == np.bincount(index, minlength=15).tolist()
    for b, entry in enumerate(bins):
        if entry["count"]:
            _close(entry["accuracy"], correct[index == b].mean())
            _close(entry["confidence"], confidence[index == b].mean(), tolerance=1e-6)
        else:
            assert entry["accuracy"] is None and entry["confidence"] is None
    for key, norm in (("ece", "l1"), ("mce", "max")):
        reference = torchmetrics(
            metric, (preds, target.astype(np.int64)), n_bins=15, norm=norm, **kwargs
        )
        _close(body[key], reference, tolerance=1e-6)


def test_calibration_errors_and_ece_curves(client):
    assert get(client, "/calibration", run="nope")[0] == 404
    assert get(client, "/calibration", run="binary", step="99")[0] == 404
    assert get(client, "/calibration", run="binary", split="x")[0] == 404
    assert get(client, "/calibration", run="binary", split="x/y")[0] == 400
    assert get(client, "/calibration", run="keras_only")[0] == 404
    code, curves = get(client, "/curves", run="binary")
    val_ece = curves["curves"]["val_ece"]
    assert val_ece["steps"] == list(range(EPOCHS))
    for step, value in zip(val_ece["steps"], val_ece["values"]):
        assert value == get(client, "/calibration", run="binary", step=step)[1]["ece"]


# -- /compare and /trajectories ---------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
def test_compare_two_epochs_against_scikit_learn(client, runs, name):
    run = runs[name]
    code, body = get(client, "/compare", run=name, step=0, other_step=EPOCHS - 1)
    assert code == 200, body
    assert body["before"] == {"run": name, "split": "validation", "step": 0}
    assert body["after"] == {"run": name, "split": "validation", "step": EPOCHS - 1}
    labels, before_scores, before = _reference(run, "validation", 0)
    _, after_scores, after = _reference(run, "validation", EPOCHS - 1)
    classes = list(range(len(body["class_names"])))
    old = skm.confusion_matrix(labels, before, labels=classes)
    new = skm.confusion_matrix(labels, after, labels=classes)
    assert body["difference"]["counts"] == (new - old).tolist()
    shares = skm.confusion_matrix(labels, after, labels=classes, normalize="true") - (
        skm.confusion_matrix(labels, before, labels=classes, normalize="true")
    )
    _close(body["difference"]["true"], shares)
    better = np.where(np.eye(len(classes), dtype=bool), shares, -shares)
    assert body["difference"]["improvement"] == np.sign(np.round(better, 15)).astype(int).tolist()
    for metric, reference in (("recall", skm.recall_score), ("precision", skm.precision_score)):
        kwargs = {"labels": classes, "average": None, "zero_division": np.nan}
        _close([c[metric] for c in body["per_class"]], reference(labels, after, **kwargs))
        _close(
            [c[metric + "_change"] for c in body["per_class"]],
            reference(labels, after, **kwargs) - reference(labels, before, **kwargs),
        )
    ap_before = [skm.average_precision_score(labels == k, before_scores[:, k]) for k in classes]
    ap_after = [skm.average_precision_score(labels == k, after_scores[:, k]) for k in classes]
    _close([c["ap_before"] for c in body["per_class"]], ap_before)
    _close([c["ap_change"] for c in body["per_class"]], np.subtract(ap_after, ap_before))
    _close(body["macro_f1"]["after"], skm.f1_score(labels, after, average="macro"))


def test_compare_two_runs_and_refuses_different_classes(client):
    code, body = get(client, "/compare", run="multiclass", other_run="onehot")
    assert code == 400 and "classes" in body["error"]
    code, body = get(client, "/compare", run="binary", split="train", other_split="validation")
    assert code == 200 and body["before"]["split"] == "train"
    assert get(client, "/compare", run="binary", other_run="nope")[0] == 404
    assert get(client, "/compare", run="binary", other_split="test")[0] == 404
    assert get(client, "/compare", run="binary", other_split="te st")[0] == 400
    assert get(client, "/compare", run="binary", other_step="x")[0] == 400


@pytest.mark.parametrize("name", TRAINED)
def test_trajectories_are_per_class_metrics_of_every_epoch_worst_first(client, runs, name):
    run = runs[name]
    code, body = get(client, "/trajectories", run=name, split="train")
    assert code == 200, body
    assert body["steps"] == list(range(EPOCHS))
    classes = list(range(len(body["classes"])))
    recalls = []
    for epoch in range(EPOCHS):
        labels, _, predicted = _reference(run, "train", epoch)
        recalls.append(
            skm.recall_score(labels, predicted, labels=classes, average=None, zero_division=np.nan)
        )
    for entry in body["classes"]:
        _close(entry["recall"], np.array(recalls)[:, entry["index"]])
    latest_f1 = [np.nan if c["f1"][-1] is None else c["f1"][-1] for c in body["classes"]]
    defined = [v for v in latest_f1 if not np.isnan(v)]
    assert defined == sorted(defined)
    assert get(client, "/trajectories", run="keras_only")[0] == 404
    assert get(client, "/trajectories", run=name, split="nope")[0] == 404
    assert get(client, "/trajectories", run=name, split="no/pe")[0] == 400


# -- /curves and /diagnostics -----------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
def test_curves_are_the_keras_logs(client, runs, name):
    code, body = get(client, "/curves", run=name)
    assert code == 200 and body["run"] == name
    logs = runs[name].logs
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        curve = body["curves"][key]
        assert curve["steps"] == list(range(EPOCHS))
        _close(curve["values"], [logs[epoch][key] for epoch in range(EPOCHS)], tolerance=1e-6)
    # The best epoch as EarlyStopping(min_delta=1 %, relative) keeps it: a later epoch must
    # improve on the best so far by more than 1 % of it.
    best = 0
    for epoch in range(1, EPOCHS):
        if logs[epoch]["val_loss"] < logs[best]["val_loss"] * (1 - 0.01):
            best = epoch
    assert body["best_epoch"] == best


def test_curves_of_a_keras_only_run_with_nan_as_null(client):
    code, body = get(client, "/curves", run="keras_only")
    assert code == 200
    assert body["curves"]["loss"]["steps"] == [0, 1, 2]
    _close(body["curves"]["loss"]["values"], [0.9, 0.5, 0.3], tolerance=1e-6)
    assert body["curves"]["val_loss"]["values"][2] is None


@pytest.mark.parametrize("name", TRAINED + ["keras_only"])
def test_diagnostics_shape(client, name):
    code, body = get(client, "/diagnostics", run=name)
    assert code == 200
    assert body["run"] == name and isinstance(body["findings"], list)
    for finding in body["findings"]:
        assert {"rule", "severity", "title", "detail", "step", "evidence"} <= set(finding)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route, params, expected",
    [
        ("/confusion", {}, 400),
        ("/confusion", {"run": ""}, 400),
        ("/confusion", {"run": "binary", "step": "x"}, 400),
        ("/confusion", {"run": "binary", "step": "1.0"}, 400),
        ("/confusion", {"run": "binary", "step": "1\n"}, 400),
        ("/confusion", {"run": "binary", "split": "test"}, 404),
        ("/confusion", {"run": "binary", "split": "../train"}, 400),
        ("/confusion", {"run": "nope"}, 404),
        ("/confusion", {"run": "binary", "step": "99"}, 404),
        ("/confusion", {"run": "binary", "step": "-1"}, 404),
        ("/confusion", {"run": "keras_only"}, 404),
        ("/confusion", {"run": "confusion_only", "split": "train"}, 404),
        ("/confusion", {"run": "malformed"}, 422),
        ("/confusion", {"run": "future"}, 422),
        ("/pr", {}, 400),
        ("/pr", {"run": "binary", "class": "2"}, 400),
        ("/pr", {"run": "binary", "class": "-1"}, 400),
        ("/pr", {"run": "binary", "class": "one"}, 400),
        ("/pr", {"run": "binary", "min_recall": "1.5"}, 400),
        ("/pr", {"run": "binary", "min_recall": "nan"}, 400),
        ("/pr", {"run": "binary", "min_precision": "-0.1"}, 400),
        ("/pr", {"run": "binary", "min_precision": "high"}, 400),
        ("/pr", {"run": "binary", "fn_cost": "10"}, 400),
        ("/pr", {"run": "binary", "fn_cost": "-1", "fp_cost": "1"}, 400),
        ("/pr", {"run": "binary", "fn_cost": "inf", "fp_cost": "1"}, 400),
        ("/pr", {"run": "binary", "fn_cost": "10", "fp_cost": "nan"}, 400),
        ("/pr", {"run": "binary", "split": "x"}, 404),
        ("/pr", {"run": "binary", "split": ""}, 400),
        ("/pr", {"run": "nope"}, 404),
        ("/pr", {"run": "binary", "step": "7"}, 404),
        ("/pr", {"run": "confusion_only"}, 404),
        ("/curves", {}, 400),
        ("/curves", {"run": "nope"}, 404),
        ("/diagnostics", {}, 400),
        ("/diagnostics", {"run": "nope"}, 404),
        ("/no-such-route", {}, 404),
    ],
)
def test_errors_are_json_with_the_right_status(client, route, params, expected):
    code, body = get(client, route, **params)
    assert code == expected
    assert isinstance(body["error"], str) and body["error"]


def test_a_broken_run_does_not_break_the_others(client):
    assert get(client, "/confusion", run="future")[0] == 422
    assert get(client, "/confusion", run="confusion_only", step=1)[0] == 200
    assert get(client, "/runs")[0] == 200


# -- static files -----------------------------------------------------------------------


@pytest.fixture()
def static_client(callback_runs, tmp_path, monkeypatch):
    root = tmp_path / "frontend"
    (root / "lib").mkdir(parents=True)
    (root / "index.js").write_text("export function render() {}\n")
    (root / "lib" / "style.css").write_text("body {}\n")
    (root / "__init__.py").write_text("")
    (root / ".hidden.js").write_text("")
    (tmp_path / "secret.js").write_text("TOP-SECRET-CONTENT")
    (root / "escape.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setattr(static_files, "frontend_dir", lambda: str(root))
    plugin = _make_plugin([callback_runs[0]])
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin]))


def test_static_files_are_served_with_their_content_type(static_client):
    response = static_client.get(PREFIX + "/index.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.get_data(as_text=True) == "export function render() {}\n"
    response = static_client.get(PREFIX + "/lib/style.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/__init__.py",
        "/.hidden.js",
        "/escape.js",
        "/missing.js",
        "/../secret.js",
        "/lib/../../secret.js",
        "/%2e%2e/secret.js",
        "/lib//style.css",
        "/lib\\style.css",
        "/lib/",
        "/",
        "/%00.js",
    ],
)
def test_static_route_refuses_traversal_and_unknown_files(static_client, path):
    response = static_client.get(PREFIX + path)
    assert response.status_code == 404
    assert "TOP-SECRET-CONTENT" not in response.get_data(as_text=True)


def test_frontend_dir_falls_back_to_the_source_checkout():
    folder = static_files.frontend_dir()
    assert os.path.basename(folder) == "frontend"
    assert os.path.isfile(os.path.join(folder, "__init__.py"))


def test_real_index_js_is_served_once_it_exists(client):
    response = client.get(PREFIX + "/index.js")
    exists = os.path.isfile(os.path.join(static_files.frontend_dir(), "index.js"))
    assert response.status_code == (200 if exists else 404)

"""Multi-label classifiers end to end: counts, stored runs, routes, rules, the CLI gates and the
Keras callback (both counting modes), every number against scikit-learn or TorchMetrics.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import sklearn.metrics as skm

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import calibration, counting

LABELS = ["cat", "dog", "<b>bird</b>", "rare"]
RATES = (0.5, 0.3, 0.1, 0.03)


def _case(seed=0, n=800, rates=RATES, separation=1.5):
    """Multi-hot labels ``[n, K]`` (some rows with no label) and float32 probabilities, with
    ties (scores rounded to two decimals) and scores exactly at 0.5."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(rates))) < rates).astype(np.int64)
    logits = rng.normal(size=y.shape) + separation * (2 * y - 1)
    p = np.round(1 / (1 + np.exp(-logits)), 2).astype(np.float32)
    p[:5, 0] = 0.5
    return y, p


def _thresholds():
    return counting.default_thresholds()


def _brute_force_counts(y, p, thresholds):
    reached = p.T.astype(np.float64)[:, :, None] >= thresholds[None, None, :]
    positive = y.T[:, :, None].astype(bool)
    return (reached & positive).sum(axis=1), (reached & ~positive).sum(axis=1)


@pytest.mark.parametrize("keep_scores", [True, False])
def test_counts_equal_scikit_learn(keep_scores):
    y, p = _case()
    counts = counting.MultiLabelCounts(len(LABELS), _thresholds(), keep_scores=keep_scores)
    for begin in range(0, y.shape[0], 300):
        counts.update(y[begin : begin + 300], p[begin : begin + 300])
    predicted = p >= 0.5
    assert counts.matrices.tolist() == skm.multilabel_confusion_matrix(y, predicted).tolist()
    assert counts.exact_matches / counts.count == pytest.approx(skm.accuracy_score(y, predicted))
    tp, fp = _brute_force_counts(y, p, _thresholds())
    assert np.array_equal(counts.tp, tp) and np.array_equal(counts.fp, fp)
    assert counts.positives.tolist() == y.sum(axis=0).tolist()
    if keep_scores:
        reference_ap = [skm.average_precision_score(y[:, k], p[:, k]) for k in range(y.shape[1])]
        reference_auc = [skm.roc_auc_score(y[:, k], p[:, k]) for k in range(y.shape[1])]
        assert np.allclose(counts.average_precision(), reference_ap, rtol=0, atol=1e-12)
        assert np.allclose(counts.roc_auc(), reference_auc, rtol=0, atol=1e-12)


def test_rows_with_a_non_finite_score_are_left_out():
    y, p = _case(n=50)
    p[3, 1] = np.nan
    counts = counting.MultiLabelCounts(len(LABELS), _thresholds())
    counts.update(y, p)
    keep = np.arange(50) != 3
    assert counts.invalid == 1 and counts.count == 49
    assert (
        counts.matrices.tolist()
        == skm.multilabel_confusion_matrix(y[keep], p[keep] >= 0.5).tolist()
    )


def test_bad_labels_are_refused_with_a_message():
    counts = counting.MultiLabelCounts(2, _thresholds())
    with pytest.raises(ValueError, match="only 0 and 1"):
        counts.update(np.array([[0, 2]]), np.array([[0.1, 0.9]]))
    with pytest.raises(ValueError, match=r"shape \[n, 2\]"):
        counts.update(np.array([1, 0]), np.array([[0.1, 0.9], [0.2, 0.3]]))


def test_pooled_calibration_equals_torchmetrics_binary_calibration_error(torchmetrics):
    rng = np.random.default_rng(3)
    y = (rng.random((3000, 4)) < RATES).astype(np.int64)
    p = np.clip(rng.beta(2, 5, y.shape) + 0.45 * y, 0, 0.999).astype(np.float32)
    edges = calibration.bin_edges()
    near = np.min(np.abs(p[..., None] - edges), axis=-1) < 1e-5
    p = np.where(near, p + 2e-5, p).astype(np.float32)
    counts = counting.MultiLabelCounts(4, _thresholds(), keep_scores=False)
    counts.update(y, p)
    for norm in calibration.NORMS:
        reference = torchmetrics(
            "BinaryCalibrationError", (p.reshape(-1), y.reshape(-1)), n_bins=15, norm=norm
        )
        ours = calibration.calibration_error(*counts.calibration, norm=norm)
        assert ours == pytest.approx(reference, abs=1e-6), norm


def _history(logdir, run):
    from tb_metricsdiag.cli_runs import open_logdir

    reader, indices = open_logdir(str(logdir))
    return reader.history(run, indices[run])


# -- a run written by the framework-free writer, read back through the routes ---------------


@pytest.fixture(scope="module")
def writer_run(tmp_path_factory):
    """A multi-label run of two epochs, and its labels and probabilities; beside it a run of
    the same model's logits."""
    logdir = tmp_path_factory.mktemp("multilabel")
    y0, p0 = _case(seed=1, separation=0.8)
    y1, p1 = _case(seed=1, separation=2.0)
    with MetricsDiagWriter(logdir / "tagger", class_names=LABELS, multi_label=True) as writer:
        writer.add_evaluation(y0, p0, 0)
        writer.add_logs({"loss": 0.6, "val_loss": 0.62}, 0)
        writer.add_evaluation(y1, p1, 1)
        writer.add_logs({"loss": 0.4, "val_loss": 0.41}, 1)
    logits = np.random.default_rng(2).normal(size=y1.shape).astype(np.float32) * 3
    with MetricsDiagWriter(logdir / "logits", class_names=LABELS, multi_label=True) as writer:
        writer.add_evaluation(y1, logits, 0)  # values outside [0, 1]: detected as logits
    with MetricsDiagWriter(logdir / "single", class_names=LABELS) as writer:
        writer.add_evaluation(p1.argmax(axis=1), p1 / p1.sum(axis=1, keepdims=True), 0)
    return str(logdir), {0: (y0, p0), 1: (y1, p1), "logits": (y1, logits)}


def test_logits_are_decided_at_zero(ml_client, writer_run):
    y, logits = writer_run[1]["logits"]
    status, body = _get(ml_client, "/confusion", run="logits")
    assert status == 200
    assert body["matrices"] == skm.multilabel_confusion_matrix(y, logits >= 0).tolist()


@pytest.fixture(scope="module")
def ml_client(writer_run):
    import zoo as zoo_lib
    from tensorboard.backend import application
    from werkzeug import test as werkzeug_test

    return werkzeug_test.Client(application.TensorBoardWSGI([zoo_lib.make_plugin(writer_run[0])]))


def _get(client, route, **params):
    import zoo as zoo_lib

    return zoo_lib.client_get(client, route, params)


def test_runs_name_the_task(ml_client):
    status, body = _get(ml_client, "/runs")
    assert status == 200
    entry = {run["run"]: run for run in body["runs"]}["tagger"]
    assert entry["task"] == "multilabel" and entry["class_names"] == LABELS
    assert entry["steps"] == [0, 1] and entry["default_class"] == 0


@pytest.mark.parametrize("step", [0, 1])
def test_confusion_route_equals_scikit_learn(ml_client, writer_run, step):
    y, p = writer_run[1][step]
    predicted = p >= 0.5
    status, body = _get(ml_client, "/confusion", run="tagger", step=step)
    assert status == 200
    assert body["task"] == "multilabel" and body["matrix"] is None
    assert body["matrices"] == skm.multilabel_confusion_matrix(y, predicted).tolist()
    assert body["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-12)
    assert body["hamming_loss"] == pytest.approx(skm.hamming_loss(y, predicted), abs=1e-12)
    assert body["total"] == y.shape[0]
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted, zero_division=np.nan
    )
    for k, entry in enumerate(body["per_class"]):
        assert entry["name"] == LABELS[k] and entry["support"] == support[k]
        for key, reference in (("precision", precision), ("recall", recall), ("f1", f1)):
            assert entry[key] == pytest.approx(reference[k], abs=1e-12), (key, k)
    assert body["macro_f1"] == pytest.approx(
        skm.f1_score(y, predicted, average="macro", zero_division=np.nan), abs=1e-12
    )
    assert body["label_accuracy"] == pytest.approx(1 - skm.hamming_loss(y, predicted), abs=1e-12)
    # Each label's Wilson 95% intervals, against statsmodels on the label's own counts.
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for k, entry in enumerate(body["per_class"]):
        tp = int((predicted[:, k] & (y[:, k] == 1)).sum())
        for key, trials in (
            ("recall_interval", int(y[:, k].sum())),
            ("precision_interval", int(predicted[:, k].sum())),
        ):
            expected = proportion.proportion_confint(tp, trials, method="wilson")
            assert entry[key] == pytest.approx(list(expected), abs=1e-12), (key, k)


@pytest.mark.parametrize("label", range(len(LABELS)))
def test_pr_route_is_each_labels_own_curve(ml_client, writer_run, label):
    y, p = writer_run[1][1]
    status, body = _get(ml_client, "/pr", run="tagger", step=1, **{"class": label})
    assert status == 200
    positives = int(y[:, label].sum())
    assert body["positives"] == positives and body["negatives"] == y.shape[0] - positives
    reached = p[:, label].astype(np.float64)[:, None] >= np.asarray(body["thresholds"])[None, :]
    positive = y[:, label][:, None] == 1
    assert body["tp"] == (reached & positive).sum(axis=0).tolist()
    assert body["fp"] == (reached & ~positive).sum(axis=0).tolist()
    assert body["fn"] == (~reached & positive).sum(axis=0).tolist()
    assert body["tn"] == (~reached & ~positive).sum(axis=0).tolist()
    assert body["average_precision"] == pytest.approx(
        skm.average_precision_score(y[:, label], p[:, label]), abs=1e-9
    )
    assert body["roc_auc"] == pytest.approx(skm.roc_auc_score(y[:, label], p[:, label]), abs=1e-9)


def test_calibration_route_pools_the_labels(ml_client, writer_run):
    y, p = writer_run[1][1]
    status, body = _get(ml_client, "/calibration", run="tagger")
    assert status == 200 and body["step"] == 1
    count, confidence_sum, correct = calibration.calibration_bins(p.reshape(-1), y.reshape(-1))
    assert [b["count"] for b in body["bins"]] == count.tolist()
    assert body["ece"] == pytest.approx(
        calibration.calibration_error(count, confidence_sum, correct), abs=1e-12
    )
    # The same bins and ECE in plain NumPy: every (row, label) probability, 15 bins over [0, 1].
    flat_p, flat_y = p.reshape(-1), y.reshape(-1)
    index = np.minimum((flat_p * np.float32(15)).astype(np.int64), 14)
    counts = np.bincount(index, minlength=15)
    assert [b["count"] for b in body["bins"]] == counts.tolist()
    filled = counts > 0
    gaps = np.abs(
        np.bincount(index, weights=flat_y, minlength=15)[filled]
        - np.bincount(index, weights=flat_p.astype(np.float64), minlength=15)[filled]
    )
    assert body["ece"] == pytest.approx(gaps.sum() / counts.sum(), abs=1e-12)


def test_trajectories_and_compare(ml_client, writer_run):
    status, body = _get(ml_client, "/trajectories", run="tagger")
    assert status == 200 and body["steps"] == [0, 1]
    by_name = {entry["name"]: entry for entry in body["classes"]}
    for step in (0, 1):
        y, p = writer_run[1][step]
        recall = skm.recall_score(y, p >= 0.5, average=None, zero_division=np.nan)
        for k, name in enumerate(LABELS):
            assert by_name[name]["recall"][step] == pytest.approx(recall[k], abs=1e-12)
    status, body = _get(ml_client, "/compare", run="tagger", step=0, other_step=1)
    assert status == 200 and body["difference_form"] == "labels" and body["difference"] is None
    (y0, p0), (y1, p1) = writer_run[1][0], writer_run[1][1]
    assert (
        body["matrices_difference"]
        == (
            skm.multilabel_confusion_matrix(y1, p1 >= 0.5)
            - skm.multilabel_confusion_matrix(y0, p0 >= 0.5)
        ).tolist()
    )
    recall0 = skm.recall_score(y0, p0 >= 0.5, average=None, zero_division=np.nan)
    recall1 = skm.recall_score(y1, p1 >= 0.5, average=None, zero_division=np.nan)
    for k, entry in enumerate(body["per_class"]):
        assert entry["recall_change"] == pytest.approx(recall1[k] - recall0[k], abs=1e-12)
    assert body["accuracy"]["before"] == pytest.approx(skm.accuracy_score(y0, p0 >= 0.5))
    assert body["accuracy"]["after"] == pytest.approx(skm.accuracy_score(y1, p1 >= 0.5))
    assert body["hamming_loss"]["after"] == pytest.approx(skm.hamming_loss(y1, p1 >= 0.5))
    assert body["hamming_loss"]["before"] == pytest.approx(skm.hamming_loss(y0, p0 >= 0.5))
    for key, (y_k, p_k) in (("before", (y0, p0)), ("after", (y1, p1))):
        expected = skm.f1_score(y_k, p_k >= 0.5, average="macro", zero_division=np.nan)
        assert body["macro_f1"][key] == pytest.approx(expected, abs=1e-12)
    status, body = _get(ml_client, "/compare", run="tagger", other_run="logits")
    assert status == 200  # another run of the same labels
    # A multi-label run against a single-label one: 400 naming both tasks.
    status, body = _get(ml_client, "/compare", run="tagger", other_run="single")
    assert status == 400 and "multilabel" in body["error"] and "multiclass" in body["error"]


def test_diagnostics_judge_labels_and_the_cli_gates_per_label(writer_run):
    logdir = writer_run[0]
    y, p = writer_run[1][1]
    recall = skm.recall_score(y, p >= 0.5, average=None)
    subset = skm.accuracy_score(y, p >= 0.5)
    result = subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", logdir, "--format", "json"]
        + ["--require", "recall[rare] >= 0.0", "--require", "accuracy >= %.6f" % (subset + 0.01)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    run = {run["run"]: run for run in json.loads(result.stdout)["runs"]}["tagger"]
    by_expr = {r["expr"]: r for r in run["requirements"]}
    assert by_expr["recall[rare] >= 0.0"]["value"] == pytest.approx(recall[3], abs=1e-12)
    assert by_expr["recall[rare] >= 0.0"]["passed"] is True
    assert by_expr["accuracy >= %.6f" % (subset + 0.01)]["value"] == pytest.approx(subset)
    assert by_expr["accuracy >= %.6f" % (subset + 0.01)]["passed"] is False
    refused = subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", logdir]
        + ["--require", "balanced_accuracy >= 0.5"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "multi-label" in refused.stderr


def test_accuracy_paradox_on_a_rare_label(tmp_path):
    from tb_metricsdiag import diagnostics

    rng = np.random.default_rng(5)
    n = 1000
    y = (rng.random((n, 3)) < [0.5, 0.4, 0.02]).astype(np.int64)
    p = np.where(y == 1, 0.9, 0.1).astype(np.float32)
    p[:, 2] = 0.05  # the rare label is never predicted: 98 % label accuracy, 0 recall
    with MetricsDiagWriter(
        tmp_path / "run", class_names=["a", "b", "fraud"], multi_label=True
    ) as w:
        w.add_evaluation(y, p, 0)
    history = _history(tmp_path, "run")
    findings = [f for f in diagnostics.diagnose(history) if f["rule"] == "accuracy_paradox"]
    assert len(findings) == 1
    evidence = findings[0]["evidence"]
    assert evidence["label"] == "fraud" and evidence["worst_class"] == "fraud"
    assert evidence["worst_class_recall"] == 0.0
    assert evidence["accuracy"] == pytest.approx(skm.accuracy_score(y[:, 2], p[:, 2] >= 0.5))


def test_writer_errors_name_the_fix(tmp_path):
    with MetricsDiagWriter(tmp_path, multi_label=True) as writer:
        with pytest.raises(ValueError, match=r"multi_label=True.*\[n, K\]"):
            writer.add_evaluation(np.array([0, 1, 1]), np.array([[0.2, 0.8]] * 3), 0)
        with pytest.raises(ValueError, match="only 0 and 1"):
            writer.add_evaluation(np.array([[0, 3]]), np.array([[0.2, 0.8]]), 0)
    with pytest.raises(ValueError, match="multi_label must be True or False"):
        MetricsDiagWriter(tmp_path, multi_label="yes")


# -- Keras: a multi-label model trained for real, both counting modes -----------------------


def _train_keras(root, *, metric_mode, activation="sigmoid", loss="binary_crossentropy"):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(1200, 6)).astype("float32")
    weights = rng.normal(size=(6, 4))
    # Every row has at least one label: the case once taken for one-hot rows.
    y = (x @ weights + rng.normal(size=(1200, 4)) > [0.0, 0.5, 1.0, 1.8]).astype("float32")
    y[y.sum(axis=1) == 0, 0] = 1
    x_val, y_val = x[900:], y[900:]
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(4, activation=activation),
        ]
    )
    callback = MetricsDiagCallback(
        str(root), validation_data=(x_val, y_val), class_names=["a", "b", "c", "d"]
    )
    metrics = [callback.metric()] if metric_mode else []
    model.compile("adam", loss, metrics=metrics)
    model.fit(
        x[:900],
        y[:900],
        validation_data=(x_val, y_val),
        epochs=2,
        batch_size=64,
        callbacks=[callback],
        verbose=0,
    )
    return model, x_val, y_val


@pytest.mark.parametrize("metric_mode", [False, True])
def test_keras_multilabel_counts_equal_scikit_learn(tmp_path, metric_mode):
    import zoo as zoo_lib
    from tensorboard.backend import application
    from werkzeug import test as werkzeug_test

    model, x_val, y_val = _train_keras(tmp_path / "run", metric_mode=metric_mode)
    p = model.predict(x_val, verbose=0).astype(np.float32)
    predicted = p >= 0.5
    client = werkzeug_test.Client(application.TensorBoardWSGI([zoo_lib.make_plugin(str(tmp_path))]))
    status, body = _get(client, "/confusion", run="run", step=1)
    assert status == 200 and body["task"] == "multilabel"
    assert body["matrices"] == skm.multilabel_confusion_matrix(y_val, predicted).tolist()
    assert body["accuracy"] == pytest.approx(skm.accuracy_score(y_val, predicted))
    status, pr = _get(client, "/pr", run="run", step=1, **{"class": 2})
    reached = p[:, 2].astype(np.float64)[:, None] >= np.asarray(pr["thresholds"])[None, :]
    assert pr["tp"] == (reached & (y_val[:, 2][:, None] == 1)).sum(axis=0).tolist()
    if not metric_mode:
        assert pr["average_precision"] == pytest.approx(
            skm.average_precision_score(y_val[:, 2], p[:, 2]), abs=1e-9
        )
    status, cal = _get(client, "/calibration", run="run", step=1)
    count, _, correct = calibration.calibration_bins(p.reshape(-1), y_val.reshape(-1))
    assert [b["count"] for b in cal["bins"]] == count.tolist()


def test_keras_softmax_on_multi_hot_labels_is_a_loss_mismatch(tmp_path):
    from tb_metricsdiag import diagnostics

    _train_keras(
        tmp_path / "run", metric_mode=False, activation="softmax", loss="categorical_crossentropy"
    )
    history = _history(tmp_path, "run")
    assert history.multilabel
    mismatch = [f for f in diagnostics.diagnose(history) if f["rule"] == "loss_mismatch"]
    assert any("Multi-hot labels" in f["title"] for f in mismatch)


def test_which_labels_look_multi_hot():
    from tb_metricsdiag.core import labels

    one_hot = np.eye(3)[[0, 2, 1]]
    multi_hot = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    smoothed = np.where(one_hot == 1, 0.9, 0.05)  # label smoothing: soft targets, not tags
    assert labels.looks_multi_hot(multi_hot, 3) and labels.looks_multi_hot(multi_hot > 0, 3)
    assert not labels.looks_multi_hot(one_hot, 3)
    assert not labels.looks_multi_hot(smoothed, 3)
    assert not labels.looks_multi_hot(multi_hot, 4)  # another width: not this model's labels
    assert not labels.looks_multi_hot(np.array([1, 0, 1]), 1)

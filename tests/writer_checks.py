"""Checks shared by the writer's tests in both test processes (tests/framework_processes.py):
the stored counts of a run against scikit-learn and brute force, and small inputs."""

import json

import numpy as np
import pytest
from conftest import documented_thresholds, read_events
from sklearn import metrics as skm

from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.format import schema

CONFUSION = schema.split_tag("validation", schema.KIND_CONFUSION)
COUNTS = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
AP = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)


def assert_counts_match_sklearn(log_dir, step, ids, scores, thresholds=None):
    """The stored confusion, threshold counts and AP at ``step`` against scikit-learn and brute
    force, for class ids ``[n]`` and class scores ``[n, C]`` (probabilities, in the dtype the
    writer compared: float32 or float64).
    """
    events = read_events(log_dir)
    num_classes = scores.shape[1]
    predicted = scores.argmax(axis=1) if num_classes > 2 else (scores[:, 1] >= 0.5).astype(int)
    np.testing.assert_array_equal(
        events[CONFUSION][step][0], skm.confusion_matrix(ids, predicted, labels=range(num_classes))
    )
    stored, content = events[COUNTS][step]
    grid = documented_thresholds() if thresholds is None else np.asarray(thresholds)
    assert np.array_equal(schema_thresholds(content), grid)
    for k in range(num_classes):
        reached = scores[:, k][:, None] >= grid[None, :]  # exact: the scores' own values
        np.testing.assert_array_equal(stored[k, 0], (reached & (ids == k)[:, None]).sum(0))
        np.testing.assert_array_equal(stored[k, 1], (reached & (ids != k)[:, None]).sum(0))
        expected_ap = skm.average_precision_score(ids == k, scores[:, k])
        assert events[AP][step][0][k] == pytest.approx(expected_ap, rel=1e-9, abs=1e-12)


def schema_thresholds(content):
    from tb_metricsdiag.format import threshold_grid

    return threshold_grid.decode_thresholds(json.loads(content)["thresholds"])


def float32_softmax(logits):
    from tb_metricsdiag.core import labels

    return labels.scores_and_predictions(logits, True)[0]


def four_class_logits(n=600):
    """``(ids, logits)``: ``n`` examples of 4 classes, float32 logits that mostly rank right."""
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 4, n)
    logits = (rng.normal(size=(n, 4)) + 2 * np.eye(4)[ids]).astype(np.float32)
    return ids, logits


def blobs(seed, n=480, classes=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, n)
    x = rng.normal(size=(n, 6)) + 1.5 * np.eye(classes, 6)[ids]
    return x.astype(np.float32), ids


def history_of(log_dir):
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(log_dir))
    indices = reader.list_runs()
    (run,) = indices
    return reader.history(run, indices[run])

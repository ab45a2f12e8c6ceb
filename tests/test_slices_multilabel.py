"""Multi-label slices (issue 26): each slice's per-label 2 x 2 counts, exact matches, threshold
counts and calibration bins, written by `MetricsDiagWriter` and read back by the `Reader`,
against scikit-learn and NumPy on that slice's rows.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.core import counting

LABELS = 4
ROWS = 1200


def _task(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((ROWS, LABELS)) < [0.5, 0.3, 0.1, 0.02]).astype(int)
    p = 1 / (1 + np.exp(-(2.5 * (y - 0.5) + rng.normal(size=y.shape))))
    p[rng.random(ROWS) < 0.01, 1] = np.nan  # rows left out of every count
    groups = {
        "site": rng.choice(["a", "b", "c", "d"], ROWS, p=[0.5, 0.3, 0.15, 0.05]),
        "flag": rng.random(ROWS) < 0.2,
    }
    return y, p.astype(np.float32), groups


@pytest.fixture(scope="module")
def read(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("slices_multilabel"))
    truth = {}
    with MetricsDiagWriter(logdir, multi_label=True) as writer:
        for step in range(2):
            truth[step] = _task(step)
            y, p, groups = truth[step]
            writer.add_evaluation(y, p, step, groups=groups)
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(logdir))
    return reader, truth


@pytest.mark.parametrize("step", [0, 1])
def test_each_slice_against_sklearn_on_its_rows(read, step):
    reader, truth = read
    y, p, groups = truth[step]
    assert reader.slice_keys(".", "validation", step) == {
        "site": ["a", "b", "c", "d"],
        "flag": ["False", "True"],
    }
    finite = np.isfinite(p).all(axis=1)
    grid = counting.default_thresholds().astype(np.float32)
    checked = 0
    for key, values in groups.items():
        shown = np.array([str(v) for v in values])
        for value in sorted(set(shown)):
            rows = finite & (shown == value)
            one = reader.evaluation(".", "validation", step, slice=(key, value))
            expected = skm.multilabel_confusion_matrix(y[rows], p[rows] >= 0.5)
            assert one.matrices.tolist() == expected.tolist(), (key, value)
            assert one.exact_matches == int(((p[rows] >= 0.5) == y[rows]).all(axis=1).sum())
            above = p[rows][:, :, None] >= grid
            positive = y[rows][:, :, None] == 1
            assert np.array_equal(one.tp, (above & positive).sum(axis=0))
            assert np.array_equal(one.fp, (above & ~positive).sum(axis=0))
            # Every (row, label) pair is one binary prediction, in 15 equal-width bins.
            confidence = p[rows].astype(np.float64).ravel()
            at = np.minimum(np.floor(confidence * 15), 14).astype(int)
            set_ = y[rows].ravel() == 1
            _, (count, confidence_sum, correct) = reader.calibration(
                ".", "validation", step, slice=(key, value)
            )
            assert count.tolist() == np.bincount(at, minlength=15).tolist()
            assert correct.tolist() == np.bincount(at[set_], minlength=15).tolist()
            expected_sum = np.bincount(at, weights=confidence, minlength=15)
            np.testing.assert_allclose(confidence_sum, expected_sum, rtol=1e-9)
            checked += 1
    assert checked == 6

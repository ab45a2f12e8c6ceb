"""A single-label model's two columns of scores read once (`labels.two_column_scores`): the
logit check, the arg-max, the finiteness and the complement check it shares must equal what
NumPy and scikit-learn find, row for row, NaN and infinite rows, ties and every float dtype
included; and the binary counts that take 1-byte ids must refuse the labels they refused."""

import ml_dtypes
import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import counting
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import inputs

TOLERANCE = inputs.ROW_SUM_TOLERANCE


def _numpy_reference(scores, tolerance):
    """What each check finds, computed directly with NumPy over the whole array."""
    finite_values = scores[np.isfinite(scores)]
    finite_rows = scores[np.isfinite(scores).all(axis=1)].astype(
        np.float64 if scores.dtype == np.float64 else np.float32
    )
    sums = finite_rows[:, 0] + finite_rows[:, 1]
    with np.errstate(invalid="ignore"):
        complementary = scores.dtype == np.float32 and bool(
            np.all(np.float32(1) - scores[:, 1] == scores[:, 0])
        )
    return {
        "all_finite": bool(np.isfinite(scores).all()),
        "finite_low": finite_values.min() if finite_values.size else None,
        "finite_high": finite_values.max() if finite_values.size else None,
        "rows_off_one": bool((np.abs(sums - 1) > tolerance).any()),
        "predicted": np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1),
        "complementary": complementary,
    }


def _cases():
    rng = np.random.default_rng(3)
    p = rng.random(1000, dtype=np.float32)
    sigmoid = np.stack([1 - p, p], axis=1)
    softmax = rng.dirichlet([1, 1], 1000).astype(np.float32)
    ties = np.full((1000, 2), 0.5, dtype=np.float32)
    ties[::3] = [0.25, 0.75]
    logits = rng.normal(0, 3, (1000, 2)).astype(np.float32)
    holes = sigmoid.copy()
    holes[[5, 300, 301, 302, 999]] = [
        [np.nan, 0.7],  # arg-max of nan_to_num(-inf): column 1
        [0.7, np.nan],
        [np.nan, np.nan],
        [np.inf, -np.inf],  # 1 - (-inf) is +inf: complementary, though not finite
        [-np.inf, 0.2],
    ]
    off_sum = sigmoid.copy()
    off_sum[700] = [0.2, 0.5]  # one row off by 0.3, in a later block
    half = np.stack([1 - p, p], axis=1).astype(np.float16)
    return {
        "sigmoid": sigmoid,
        "softmax": softmax,
        "ties": ties,
        "logits": logits,
        "nonfinite": holes,
        "one row off one": off_sum,
        "float64 sigmoid": np.stack([1 - p.astype(np.float64), p.astype(np.float64)], axis=1),
        "float16": half,
        "bfloat16 widened": half.astype(ml_dtypes.bfloat16).astype(np.float32),
        "all NaN": np.full((10, 2), np.nan, dtype=np.float32),
        "empty": np.empty((0, 2), dtype=np.float32),
    }


@pytest.mark.parametrize("block", [64, 1 << 16])
@pytest.mark.parametrize("name", list(_cases()))
def test_one_pass_finds_what_numpy_finds(monkeypatch, name, block):
    monkeypatch.setattr(labels_lib, "_BLOCK", block)  # NaN in some blocks, not in others
    scores = _cases()[name]
    found = labels_lib.two_column_scores(scores, TOLERANCE)
    expected = _numpy_reference(scores, TOLERANCE)
    for field in ("all_finite", "finite_low", "finite_high", "rows_off_one", "complementary"):
        assert getattr(found, field) == expected[field], field
    assert found.predicted.dtype == np.uint8
    np.testing.assert_array_equal(found.predicted, expected["predicted"])
    np.testing.assert_array_equal(found.predicted, labels_lib._row_argmax(scores))
    if scores.dtype != np.float16:  # the writer's own inputs are never float16 (widened)
        assert labels_lib.looks_like_logits(scores, TOLERANCE, two_columns=found) == (
            labels_lib.looks_like_logits(scores, TOLERANCE)
        )


def test_complementary_rows_sum_to_one_within_the_bound():
    # Why the row sums of complementary float32 scores need not be added.
    p = np.arange(0, 1 << 24, 37, dtype=np.float32) / np.float32(1 << 24)
    p = np.concatenate([p, np.random.default_rng(0).random(10**6, dtype=np.float32), [1.0]])
    sums = (np.float32(1) - p) + p
    assert np.abs(sums.astype(np.float64) - 1).max() <= labels_lib._COMPLEMENT_ROW_SUM_ERROR


def _writer_figures(log_dir, y, scores):
    with MetricsDiagWriter(str(log_dir)) as writer:
        writer.add_evaluation(y, scores, 0, example_ids=False)  # the run's layout
        return writer.add_evaluation(y, scores, 1, example_ids=False)


@pytest.mark.parametrize(
    "name", ["sigmoid", "softmax", "ties", "nonfinite", "float64 sigmoid", "float16"]
)
def test_writer_counts_equal_sklearn(tmp_path, name):
    scores = _cases()[name]
    y = (np.random.default_rng(1).random(scores.shape[0]) < 0.4).astype(np.int64)
    result = _writer_figures(tmp_path, y, scores)
    wide = scores.astype(np.float32 if scores.dtype == np.float16 else scores.dtype)
    finite = np.isfinite(wide).all(axis=1)
    assert result.invalid == int((~finite).sum())
    y_kept, kept = y[finite], wide[finite]
    np.testing.assert_array_equal(
        result.confusion,
        skm.confusion_matrix(y_kept, np.argmax(kept, axis=1), labels=[0, 1]),
    )
    for k in (0, 1):
        positive = y_kept == k
        assert result.average_precision()[k] == pytest.approx(
            skm.average_precision_score(positive, kept[:, k]), abs=1e-12
        )
        assert result.roc_auc()[k] == pytest.approx(
            skm.roc_auc_score(positive, kept[:, k]), abs=1e-12
        )
    streamed = counting.ClassificationCounts(2, result.thresholds, keep_scores=False)
    streamed.update(y_kept, kept, np.argmax(kept, axis=1))
    np.testing.assert_array_equal(result.tp, streamed.tp)
    np.testing.assert_array_equal(result.fp, streamed.fp)


def test_a_logit_pair_after_probabilities_is_refused_as_before(tmp_path):
    scores = _cases()["sigmoid"]
    y = np.arange(scores.shape[0]) % 2
    with MetricsDiagWriter(str(tmp_path)) as writer:
        writer.add_evaluation(y, scores, 0, example_ids=False)
        for bad in (_cases()["logits"], _cases()["one row off one"]):
            with pytest.raises(ValueError, match="from_logits=True"):
                writer.add_evaluation(y, bad, 1, example_ids=False)


@pytest.mark.parametrize("labels", [[0, 1, 2], [0, -1, 1], [0, 1, 257], [0, 1, 1.5]])
def test_binary_labels_outside_the_classes_are_refused(tmp_path, labels):
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    with MetricsDiagWriter(str(tmp_path)) as writer:
        with pytest.raises(ValueError, match="labels must be"):
            writer.add_evaluation(np.array(labels), scores, 0, example_ids=False)
    # The counts alone refuse them before narrowing them to one byte (257 would become 1).
    whole = np.array(labels).astype(np.int64)
    if np.array_equal(whole, labels):
        with pytest.raises(ValueError, match="outside"):
            counting.ClassificationCounts(2, [0.5]).update(whole, scores, np.array([0, 1, 0]))


def test_batches_with_and_without_the_one_pass_are_counted_alike():
    scores = _cases()["sigmoid"]
    softmax = _cases()["softmax"]
    y = (np.random.default_rng(2).random(scores.shape[0]) < 0.5).astype(np.int64)
    thresholds = counting.default_thresholds()
    for second, with_pass in ((scores, (True, False)), (softmax, (True, True))):
        counts = counting.ClassificationCounts(2, thresholds)
        for batch, given in zip((scores, second), with_pass):
            two_columns = labels_lib.two_column_scores(batch, TOLERANCE) if given else None
            counts.update(y, batch, np.argmax(batch, axis=1), two_columns=two_columns)
        every = np.concatenate([scores, second])
        both = np.concatenate([y, y])
        for k in (0, 1):
            assert counts.average_precision()[k] == pytest.approx(
                skm.average_precision_score(both == k, every[:, k]), abs=1e-12
            )
            assert counts.roc_auc()[k] == pytest.approx(
                skm.roc_auc_score(both == k, every[:, k]), abs=1e-12
            )

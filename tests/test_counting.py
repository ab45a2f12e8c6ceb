"""The NumPy core against scikit-learn and brute force, including ties and boundary scores."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from tb_metricsdiag.core import _blocks, _bucketing, _ranking, labels, metrics
from tb_metricsdiag.core import counting as counts
from tb_metricsdiag.core._blocks import BLOCK


def _brute_force_counts(y_true, scores, thresholds):
    reached = scores[:, :, None] >= thresholds[None, None, :]  # [n, C, T]
    positive = (y_true[:, None] == np.arange(scores.shape[1])[None, :])[:, :, None]
    return (reached & positive).sum(axis=0), (reached & ~positive).sum(axis=0)


def _random_case(seed, n, num_classes, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=n)
    logits = rng.normal(size=(n, num_classes)) + 2 * np.eye(num_classes)[y]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, scores.astype(dtype)


@pytest.mark.parametrize("num_classes", [2, 3, 10])
@pytest.mark.parametrize("n", [2000, 150_000])  # one block and several
def test_confusion_matrix_equals_sklearn(num_classes, n):
    y, scores = _random_case(num_classes, n, num_classes)
    predicted = scores.argmax(axis=1)
    np.testing.assert_array_equal(
        counts.confusion_matrix(y, predicted, num_classes),
        skm.confusion_matrix(y, predicted, labels=range(num_classes)),
    )


@pytest.mark.parametrize("ufunc_at", [True, False])
def test_histograms_with_or_without_ufunc_at(monkeypatch, ufunc_at):
    monkeypatch.setattr(_blocks, "UFUNC_AT_IS_FAST", ufunc_at)
    y, scores = _random_case(4, 70_000, 3)
    predicted = scores.argmax(axis=1)
    np.testing.assert_array_equal(
        counts.confusion_matrix(y, predicted, 3),
        skm.confusion_matrix(y, predicted, labels=range(3)),
    )
    thresholds = counts.default_thresholds(11)
    tp, fp = counts.threshold_counts(y, scores, thresholds)
    expected_tp, expected_fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(tp, expected_tp)
    np.testing.assert_array_equal(fp, expected_fp)


@pytest.mark.parametrize(
    "thresholds",
    [
        counts.default_thresholds(),
        counts.default_thresholds(11),
        np.array([0.0, 0.1, 0.35, 0.5, 0.9, 0.999]),  # irregular grid: binary search path
        np.linspace(-1, 2, 31),  # evenly spaced beyond [0, 1]
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_counts_are_exact_including_scores_on_thresholds(thresholds, dtype):
    y, scores = _random_case(1, 3000, 4, dtype)
    # Put scores exactly on (and one ulp around) threshold values: the boundary cases.
    on_grid = thresholds[np.random.default_rng(2).integers(0, thresholds.size, 600)].astype(dtype)
    scores[:600, 0] = on_grid
    scores[600:1200, 1] = np.nextafter(on_grid, dtype(-np.inf))
    scores[1200:1800, 2] = np.nextafter(on_grid, dtype(np.inf))
    tp, fp = counts.threshold_counts(y, scores, thresholds)
    expected_tp, expected_fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(tp, expected_tp)
    np.testing.assert_array_equal(fp, expected_fp)


def _brute_force_bucket(scores, thresholds):
    # NumPy compares a float32 score with a float64 threshold exactly (in float64).
    return (scores.reshape(-1)[:, None] >= thresholds[None, :]).sum(axis=1).reshape(scores.shape)


def _hard_scores(thresholds, dtype):
    """Scores on, one ulp below and above every threshold (as given and rounded into dtype),
    signed zeros, subnormals, extremes, infinities and NaNs, quiet and signalling."""
    info = np.finfo(dtype)
    values = np.concatenate([thresholds.astype(dtype), counts.comparison_edges(thresholds, dtype)])
    special = np.array(
        [
            0.0,
            -0.0,
            info.smallest_subnormal,
            -info.smallest_subnormal,
            info.tiny,
            info.max,
            -info.max,
            np.inf,
            -np.inf,
            np.nan,
            -np.nan,
        ],
        dtype=dtype,
    )
    values = np.concatenate(
        [values, np.nextafter(values, dtype(-np.inf)), np.nextafter(values, dtype(np.inf)), special]
    )
    if dtype == np.float32:
        # NaNs whose top 16 bits are those of +inf / -inf (signalling, small payloads).
        values = np.concatenate(
            [values, np.uint32([0x7F800001, 0x7F80FFFF, 0xFF800001]).view(dtype)]
        )
    return values


@pytest.mark.parametrize(
    "thresholds, float32_method",
    [
        (counts.default_thresholds(), "_bucket_by_logit"),  # many edges per prefix near 1
        (np.linspace(0, 1, 201), "_bucket_by_prefix"),
        (
            np.array([-3.5, -1e-30, 0.0, 1e-40, 0.1, 0.35, 0.5, 0.9, 0.999, 7.0]),
            "_bucket_by_prefix",
        ),
        (np.linspace(0, 1, 1001), "_bucket_evenly"),  # several edges per prefix near 1
        (np.array([0.5, 0.5001, 0.5002, 0.75]), "_bucket_by_search"),  # irregular and fine
        (np.array([0.25]), "_bucket_by_prefix"),
        (0.1 + np.arange(4) * 1e-12, "_bucket_by_search"),  # finer than float32: equal edges
        (np.arange(4) * 1e-42, "_bucket_by_search"),  # subnormal steps: 1 / step overflows float32
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_bucket_is_exact_on_hard_scores(thresholds, float32_method, dtype):
    if dtype == np.float32:
        assert _bucketing._bucketing(thresholds, dtype).func.__name__ == float32_method
    scores = _hard_scores(thresholds, dtype)
    with np.errstate(invalid="ignore"):
        expected = _brute_force_bucket(scores, thresholds)
    np.testing.assert_array_equal(counts.threshold_bucket(scores, thresholds), expected)
    assert expected[np.isnan(scores)].max() == 0
    assert expected[scores == np.inf].min() == thresholds.size
    # Blocks: a block with NaNs among ordinary scores, and a 2-D layout.
    many = np.resize(scores, (3 * BLOCK // 7, 7))
    np.testing.assert_array_equal(
        counts.threshold_bucket(many, thresholds), _brute_force_bucket(many, thresholds)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-2, 2, width=32), min_size=1, max_size=40, unique=True),
    st.integers(0, 2**32 - 1),
)
def test_threshold_bucket_property(threshold_values, seed):
    thresholds = np.sort(np.array(threshold_values, dtype=np.float64))
    thresholds = thresholds[np.concatenate([[True], np.diff(thresholds) > 0])]  # -0.0 == 0.0
    rng = np.random.default_rng(seed)
    scores = _hard_scores(thresholds, np.float32)
    scores = np.concatenate([scores, rng.uniform(-2.5, 2.5, 200).astype(np.float32)])
    np.testing.assert_array_equal(
        counts.threshold_bucket(scores, thresholds), _brute_force_bucket(scores, thresholds)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(2, 5),
    st.integers(0, 2**32 - 1),
    st.sampled_from([3, 5, 201]),
)
def test_counts_and_ap_property(n, num_classes, seed, num_thresholds):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=n)
    # Coarse scores make ties between examples and with thresholds common.
    scores = np.round(rng.random((n, num_classes)), 1).astype(np.float32)
    thresholds = counts.default_thresholds(num_thresholds)
    tp, fp = counts.threshold_counts(y, scores, thresholds)
    expected_tp, expected_fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(tp, expected_tp)
    np.testing.assert_array_equal(fp, expected_fp)
    ap = counts.average_precision(y, scores)
    for k in range(num_classes):
        if (y == k).any():
            assert ap[k] == pytest.approx(
                skm.average_precision_score(y == k, scores[:, k]), abs=1e-12
            )
        else:
            assert np.isnan(ap[k])


def _tied_case(n, num_classes, dtype, negative, seed=3):
    """Coarse scores (runs of ties across block boundaries), signed zeros, a rare class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes - 1, size=n)
    y[rng.integers(0, n, 3)] = num_classes - 1  # three positives only
    scores = np.round(rng.random((n, num_classes)) + 0.3 * np.eye(num_classes)[y], 3)
    if negative:
        scores -= 0.5
    scores[rng.random((n, num_classes)) < 0.05] = 0.0
    scores[rng.random((n, num_classes)) < 0.05] = -0.0
    return y, scores.astype(dtype)


@pytest.mark.parametrize(
    "dtype, negative",
    [
        (np.float32, False),  # 32-bit keys
        (np.float32, True),  # 64-bit keys
        (np.float64, False),  # sort and binary search
        (np.float16, True),
    ],
)
def test_average_precision_equals_sklearn_on_every_path(dtype, negative):
    y, scores = _tied_case(3 * BLOCK + 123, 4, dtype, negative)
    ap = counts.average_precision(y, scores)
    for k in range(4):
        assert ap[k] == pytest.approx(skm.average_precision_score(y == k, scores[:, k]), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 80),
    st.integers(0, 2**32 - 1),
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from([0.0, 0.5]),
)
def test_average_precision_property(n, seed, dtype, shift):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    # Few distinct scores, -0.0 among them (ties with 0.0); a shift makes some negative.
    scores = np.round(rng.random((n, 3)), 1) - shift
    scores = np.where(rng.random((n, 3)) < 0.2, -0.0, scores).astype(dtype)
    ap = counts.average_precision(y, scores)
    for k in range(3):
        if (y == k).any():
            assert ap[k] == pytest.approx(
                skm.average_precision_score(y == k, scores[:, k]), abs=1e-12
            )
        else:
            assert np.isnan(ap[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_average_precision_is_the_same_in_one_thread_or_several(monkeypatch, dtype):
    y, scores = _tied_case(2 * BLOCK, 5, dtype, False)
    monkeypatch.setattr(_ranking, "AVERAGE_PRECISION_THREADS", 1)
    alone = counts.average_precision(y, scores)
    monkeypatch.setattr(_ranking, "AVERAGE_PRECISION_THREADS", 3)
    monkeypatch.setattr(_ranking, "_THREADED_EXAMPLES", 0)
    np.testing.assert_array_equal(counts.average_precision(y, scores), alone)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_average_precision_of_a_class_without_positives_is_nan(dtype):
    y = np.array([0, 0, 2, 2])
    scores = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.0, 0.5, 0.5]], dtype)
    ap = counts.average_precision(y, scores)
    assert np.isnan(ap[1]) and ap[0] == pytest.approx(
        skm.average_precision_score(y == 0, scores[:, 0])
    )
    assert np.isnan(counts.average_precision(np.zeros(0, int), np.zeros((0, 3), dtype))).all()


@pytest.mark.parametrize("batch", [1000, 4096, 70_000])
def test_kept_batches_give_the_ap_of_all_scores(batch):
    y, scores = _tied_case(2 * BLOCK + 77, 3, np.float32, False)
    result = counts.ClassificationCounts(3, counts.default_thresholds())
    for begin in range(0, y.size, batch):
        part = slice(begin, begin + batch)
        result.update(y[part], scores[part], scores[part].argmax(axis=1))
        if begin == batch:  # asking midway changes nothing
            result.average_precision()
    np.testing.assert_array_equal(result.average_precision(), counts.average_precision(y, scores))


_KEPT_SCORE_GRIDS = [
    counts.default_thresholds(),
    np.array([-3.5, -1e-30, 0.0, 1e-40, 0.1, 0.35, 0.5, 0.9, 0.999, 7.0]),
    np.array([0.5, 0.5001, 0.5002, 0.75]),
    0.1 + np.arange(4) * 1e-12,  # finer than float32: equal edges
]


@pytest.mark.parametrize("thresholds", _KEPT_SCORE_GRIDS)
@pytest.mark.parametrize(
    "dtype, negative",
    [
        (np.float32, False),  # 32-bit keys
        (np.float32, True),  # 64-bit keys
        (np.float64, True),  # sort and binary search
        (np.float16, False),
    ],
)
def test_kept_scores_give_the_threshold_counts_of_brute_force(thresholds, dtype, negative):
    """With the scores kept, the threshold counts come from the sorted keys of the exact AP:
    they must equal the streamed counts and brute force, on finite hard scores (on, just below
    and above every threshold) and runs of ties across blocks, batch by batch."""
    hard = _hard_scores(thresholds, dtype)
    hard = hard[np.isfinite(hard)]
    y, scores = _tied_case(2 * BLOCK + 77, 3, dtype, negative)
    scores[: hard.size, 0] = hard
    scores[-hard.size :, 2] = hard[::-1]
    if not negative:
        scores = np.where(scores < 0, 0, scores).astype(dtype)  # -0.0 stays
    predicted = scores.argmax(axis=1)
    kept = counts.ClassificationCounts(3, thresholds)
    streamed = counts.ClassificationCounts(3, thresholds, keep_scores=False)
    for begin in range(0, y.size, 5000):
        part = slice(begin, begin + 5000)
        kept.update(y[part], scores[part], predicted[part])
        streamed.update(y[part], scores[part], predicted[part])
    tp, fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(kept.tp, tp)
    np.testing.assert_array_equal(kept.fp, fp)
    np.testing.assert_array_equal(streamed.tp, tp)
    np.testing.assert_array_equal(streamed.fp, fp)
    np.testing.assert_array_equal(kept.confusion, streamed.confusion)
    np.testing.assert_array_equal(kept.average_precision(), counts.average_precision(y, scores))


def test_kept_scores_are_recounted_after_each_update():
    y, scores = _random_case(9, 3000, 4)
    thresholds = counts.default_thresholds()
    result = counts.ClassificationCounts(4, thresholds)
    result.update(y[:1000], scores[:1000], scores[:1000].argmax(axis=1))
    first = _brute_force_counts(y[:1000], scores[:1000], thresholds)
    np.testing.assert_array_equal(result.tp, first[0])
    result.update(y[1000:], scores[1000:], scores[1000:].argmax(axis=1))
    tp, fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(result.tp, tp)
    np.testing.assert_array_equal(result.fp, fp)
    assert counts.ClassificationCounts(4, thresholds).tp.shape == (4, thresholds.size)


def test_average_precision_field_notes_example():
    # scikit-learn's documented example: AP 0.8333, not the trapezoidal 0.7917.
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    ap = counts.average_precision(y, np.stack([1 - s, s], axis=1))
    assert ap[1] == pytest.approx(0.8333333333333333)


def test_accumulating_batches_equals_counting_once():
    y, scores = _random_case(5, 1000, 3)
    predicted = scores.argmax(axis=1)
    whole = counts.ClassificationCounts(3, counts.default_thresholds())
    whole.update(y, scores, predicted)
    batched = counts.ClassificationCounts(3, counts.default_thresholds())
    for start in range(0, 1000, 128):
        part = slice(start, start + 128)
        batched.update(y[part], scores[part], predicted[part])
    np.testing.assert_array_equal(whole.confusion, batched.confusion)
    np.testing.assert_array_equal(whole.tp, batched.tp)
    np.testing.assert_array_equal(whole.fp, batched.fp)
    np.testing.assert_array_equal(whole.average_precision(), batched.average_precision())


def test_nonfinite_rows_are_left_out_and_counted():
    y, scores = _random_case(6, 100, 3)
    scores[[3, 50]] = np.nan
    scores[7, 1] = np.inf
    result = counts.ClassificationCounts(3, counts.default_thresholds())
    _, predicted = labels.scores_and_predictions(scores, from_logits=False)
    result.update(y, scores, predicted)
    assert result.invalid == 3 and result.count == 97
    keep = np.ones(100, bool)
    keep[[3, 7, 50]] = False
    np.testing.assert_array_equal(
        result.confusion, skm.confusion_matrix(y[keep], scores[keep].argmax(1), labels=range(3))
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0.5, 0.2], "ascending"),
        ([0.1, np.nan], "finite"),
        ([], "non-empty"),
    ],
)
def test_bad_thresholds_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        counts.validate_thresholds(bad)


@pytest.mark.parametrize("bad", [[0, 3], [0, -1], np.int32([0, -1]), np.uint8([0, 3]), [0.0, 3.0]])
def test_out_of_range_ids_are_rejected(bad):
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        counts.confusion_matrix(bad, [0, 1], 3)


def test_metrics_match_sklearn_with_undefined_ratios():
    y = np.array([0, 0, 1, 1, 2, 2, 0])
    predicted = np.array([0, 1, 1, 1, 1, 1, 0])  # class 2 never predicted; class 3 never occurs
    confusion = counts.confusion_matrix(y, predicted, 4)
    per_class = metrics.per_class_metrics(confusion)
    p, r, f, s = skm.precision_recall_fscore_support(
        y, predicted, labels=range(4), zero_division=np.nan
    )
    np.testing.assert_array_equal(per_class["support"], s)
    np.testing.assert_allclose(per_class["precision"], p, equal_nan=True)
    np.testing.assert_allclose(per_class["recall"], r, equal_nan=True)
    np.testing.assert_allclose(per_class["f1"], f, equal_nan=True)
    assert metrics.accuracy(confusion) == pytest.approx(skm.accuracy_score(y, predicted))
    assert metrics.balanced_accuracy(confusion[:3, :3]) == pytest.approx(
        skm.balanced_accuracy_score(y, predicted)
    )
    for by in metrics.NORMALIZATIONS:
        np.testing.assert_allclose(
            np.nan_to_num(metrics.normalize_confusion(confusion[:3, :3], by)),
            skm.confusion_matrix(y, predicted, normalize=by),
        )


def test_accuracies_of_many_matrices_equal_accuracy_of_each():
    rng = np.random.default_rng(3)
    same_size = [rng.integers(0, 20, size=(4, 4)) for _ in range(50)] + [np.zeros((4, 4), int)]
    mixed = [np.eye(2, dtype=int), np.ones((3, 3), int)]
    for matrices in (same_size, mixed, []):
        expected = np.array([metrics.accuracy(m) for m in matrices], dtype=np.float64)
        np.testing.assert_array_equal(metrics.accuracies(matrices), expected)  # NaN == NaN here


def test_majority_baseline_is_the_accuracy_paradox_figure():
    y = np.array([0] * 9 + [1])
    confusion = counts.confusion_matrix(y, np.zeros(10, int), 2)
    assert metrics.majority_baseline_accuracy(confusion) == pytest.approx(0.9)
    assert metrics.accuracy(confusion) == pytest.approx(0.9)
    assert metrics.balanced_accuracy(confusion) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "raw, output_width, expected_format, expected_ids",
    [
        ([0, 2, 1], 3, labels.SPARSE, [0, 2, 1]),
        ([[0], [2]], 3, labels.SPARSE, [0, 2]),
        ([[0, 0, 1], [1, 0, 0]], 3, labels.ONE_HOT, [2, 0]),
        ([0.0, 1.0, 1.0], 1, labels.BINARY, [0, 1, 1]),
    ],
)
def test_label_formats(raw, output_width, expected_format, expected_ids):
    fmt = labels.detect_label_format(np.array(raw), output_width)
    assert fmt == expected_format
    ids = labels.class_ids(np.array(raw), fmt, labels.num_classes_from_output_width(output_width))
    np.testing.assert_array_equal(ids, expected_ids)


@pytest.mark.parametrize(
    "raw, output_width, message",
    [
        ([0, 3], 3, r"class ids in \[0, 3\)"),
        ([0.5, 1.0], 1, "whole class ids"),
        ([0, np.nan], 3, "NaN"),
        ([[0, 0, 0]], 3, "no positive entry"),
        ([[0, 1]], 3, "do not fit"),
    ],
)
def test_bad_labels_are_rejected_clearly(raw, output_width, message):
    with pytest.raises(ValueError, match=message):
        array = np.array(raw)
        fmt = labels.detect_label_format(array, output_width)
        labels.class_ids(array, fmt, labels.num_classes_from_output_width(output_width))


def test_logits_become_probabilities():
    logits = np.array([[2.0, -1.0, 0.5], [-1000.0, 1000.0, 0.0]], dtype=np.float32)
    scores, predicted = labels.scores_and_predictions(logits, from_logits=True)
    e = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose(scores[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_array_equal(predicted, [0, 1])
    single, predicted = labels.scores_and_predictions(np.array([[0.0], [-800.0], [3.0]]), True)
    np.testing.assert_allclose(single[:, 1], [0.5, 0.0, 1 / (1 + np.exp(-3.0))])
    np.testing.assert_array_equal(predicted, [1, 0, 1])  # p >= 0.5 predicts the positive class


# -- grouped counts (the slices of a group key, counted in one pass) -------------------------


def _grouped_case(seed, n, num_classes, num_groups):
    y, scores = _random_case(seed, n, num_classes)
    groups = np.random.default_rng(seed + 1).integers(0, num_groups, n)
    groups[groups == num_groups - 2] = 0  # a group without rows
    return y, scores, groups


@pytest.mark.parametrize("num_classes", [2, 3, 10])
@pytest.mark.parametrize("n", [3000, 150_000])  # one block and several
def test_grouped_counts_equal_each_groups_own(num_classes, n):
    y, scores, groups = _grouped_case(num_classes + n, n, num_classes, num_groups=7)
    y_pred = scores.argmax(axis=1)
    grid = counts.default_thresholds()
    matrices = counts.confusion_matrix(y, y_pred, num_classes, groups, 7)
    tp, fp = counts.threshold_counts(y, scores, grid, groups, 7)
    bins = counts.calibration_lib.calibration_bins(
        *counts.calibration_lib.confidence_and_correct(y, scores, y_pred),
        groups=groups,
        num_groups=7,
    )
    assert matrices.shape == (7, num_classes, num_classes) and tp.shape == (7, num_classes, 201)
    for g in range(7):
        rows = groups == g
        if rows.any():
            expected = skm.confusion_matrix(y[rows], y_pred[rows], labels=range(num_classes))
            assert np.array_equal(matrices[g], expected)
        else:  # scikit-learn refuses no rows
            assert not matrices[g].any() and g == 5
        brute_tp, brute_fp = _brute_force_counts(y[rows], scores[rows], grid)
        assert np.array_equal(tp[g], brute_tp) and np.array_equal(fp[g], brute_fp)
        own = counts.calibration_lib.calibration_bins(
            *counts.calibration_lib.confidence_and_correct(y[rows], scores[rows], y_pred[rows])
        )
        for grouped_part, own_part in zip(bins, own):
            assert np.array_equal(grouped_part[g], own_part)


def test_grouped_accumulators_equal_one_accumulator_per_group():
    grid = counts.default_thresholds()
    rng = np.random.default_rng(5)
    y, scores, groups = _grouped_case(5, 2000, 4, num_groups=5)
    scores[rng.choice(2000, 20, replace=False), 1] = np.nan  # invalid rows
    labels = (rng.random((2000, 3)) < 0.4).astype(int)
    probabilities = rng.random((2000, 3)).astype(np.float32)
    probabilities[:15, 2] = np.inf
    for grouped, make, batch in (
        (
            counts.ClassificationCounts(4, grid, keep_scores=False, num_groups=5),
            lambda: counts.ClassificationCounts(4, grid, keep_scores=False),
            lambda rows: (y[rows], scores[rows], np.nan_to_num(scores[rows]).argmax(axis=1)),
        ),
        (
            counts.MultiLabelCounts(3, grid, keep_scores=False, num_groups=5),
            lambda: counts.MultiLabelCounts(3, grid, keep_scores=False),
            lambda rows: (labels[rows], probabilities[rows]),
        ),
    ):
        own = [make() for _ in range(5)]
        for begin in range(0, 2000, 300):
            rows = np.arange(begin, min(begin + 300, 2000))
            grouped.update(*batch(rows), groups=groups[rows])
            for g in range(5):
                own[g].update(*batch(rows[groups[rows] == g]))
        assert grouped.invalid == sum(o.invalid for o in own) > 0
        assert grouped.count.tolist() == [o.count for o in own]
        for g, o in enumerate(own):
            assert np.array_equal(grouped.tp[g], o.tp) and np.array_equal(grouped.fp[g], o.fp)
            assert np.array_equal(grouped.positives[g], o.positives)
            for grouped_part, own_part in zip(grouped.calibration, o.calibration):
                assert np.array_equal(grouped_part[g], own_part)
            if isinstance(o, counts.MultiLabelCounts):
                assert np.array_equal(grouped.matrices[g], o.matrices)
                assert grouped.exact_matches[g] == o.exact_matches
            else:
                assert np.array_equal(grouped.confusion[g], o.confusion)


def test_grouped_multilabel_matrices_equal_sklearn_per_group():
    rng = np.random.default_rng(8)
    y_true = rng.random((500, 4)) < 0.3
    y_pred = rng.random((500, 4)) < 0.4
    groups = rng.integers(0, 3, 500)
    grouped = counts.multilabel_confusion_matrix(y_true, y_pred, groups, 3)
    for g in range(3):
        expected = skm.multilabel_confusion_matrix(y_true[groups == g], y_pred[groups == g])
        assert np.array_equal(grouped[g], expected)


def test_bad_groups_are_refused():
    grid = counts.default_thresholds()
    y, scores = _random_case(0, 10, 3)
    with pytest.raises(ValueError, match="keep_scores must be False"):
        counts.ClassificationCounts(3, grid, num_groups=2)
    grouped = counts.ClassificationCounts(3, grid, keep_scores=False, num_groups=2)
    for groups, message in (
        (None, "each row's group"),
        (np.zeros(9, int), "10 integer group ids"),
        (np.full(10, 2), r"outside \[0, 2\)"),
        (np.zeros(10), "integer group ids"),
    ):
        with pytest.raises(ValueError, match=message):
            grouped.update(y, scores, scores.argmax(axis=1), groups=groups)
    assert grouped.count.tolist() == [0, 0]
    with pytest.raises(ValueError, match="ungrouped counts only"):
        grouped.average_precision()
    with pytest.raises(ValueError, match="each row's group"):
        counts.ClassificationCounts(3, grid).update(y, scores, y, groups=np.zeros(10, int))
    with pytest.raises(ValueError, match="num_groups"):
        counts.confusion_matrix(y, y, 3, groups=np.zeros(10, int))


def _few_valued_scores(origin, n, num_classes, seed=0, first_scores=()):
    """Probabilities of few distinct float32 values, as a float16 or bfloat16 model's outputs
    (or quantised ones) give them: labels, scores ``[n, C]`` float32, with ties galore; the
    first scores of class 0 are ``first_scores`` (in [0, 1]) in that precision."""
    y, scores = _random_case(seed, n, num_classes)
    scores[: len(first_scores), 0] = first_scores
    if origin == "float16":
        scores = scores.astype(np.float16).astype(np.float32)
    elif origin == "bfloat16":  # a bfloat16 is the top 16 bits of a float32
        scores = (scores.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    else:  # quantised to 1/256
        scores = (np.round(scores * 256) / 256).astype(np.float32)
    return y, scores


@pytest.mark.parametrize("origin", ["float16", "bfloat16", "quantised"])
@pytest.mark.parametrize("thresholds", _KEPT_SCORE_GRIDS[:3])
def test_few_valued_scores_are_counted_in_a_histogram_exactly(monkeypatch, origin, thresholds):
    """float16 / bfloat16 / quantised scores take few values: they are counted by a histogram
    of their values, not sorted. Threshold counts equal brute force (scores on every edge
    included), the AP and ROC AUC scikit-learn, and all of it the sorted path's."""
    hard = _hard_scores(thresholds, np.float32)
    y, scores = _few_valued_scores(
        origin, 2 * BLOCK + 77, 3, first_scores=hard[~np.signbit(hard) & (hard <= 1)]
    )
    assert _ranking._histogram_spacing([(y, scores)], y.size) is not None
    histogram = counts.ClassificationCounts(3, thresholds)
    histogram.update(y, scores, scores.argmax(axis=1))
    tp, fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(histogram.tp, tp)
    np.testing.assert_array_equal(histogram.fp, fp)
    for k in range(3):
        assert histogram.average_precision()[k] == pytest.approx(
            skm.average_precision_score(y == k, scores[:, k]), abs=1e-12
        )
        assert histogram.roc_auc()[k] == pytest.approx(
            skm.roc_auc_score(y == k, scores[:, k]), abs=1e-12
        )
    monkeypatch.setattr(_ranking, "_HISTOGRAM_BINS", 0)  # the sorted path, for comparison
    assert _ranking._histogram_spacing([(y, scores)], y.size) is None
    sorted_ = counts.ClassificationCounts(3, thresholds)
    sorted_.update(y, scores, scores.argmax(axis=1))
    np.testing.assert_array_equal(sorted_.tp, histogram.tp)
    np.testing.assert_array_equal(sorted_.fp, histogram.fp)
    np.testing.assert_allclose(
        sorted_.average_precision(), histogram.average_precision(), atol=1e-12
    )
    np.testing.assert_allclose(sorted_.roc_auc(), histogram.roc_auc(), atol=1e-12)


def test_histogram_edge_cases_match_sklearn():
    """All scores +0.0 (one bin); a class without positives (NaN AP and AUC); a class whose
    examples are all positive (NaN AUC); scores in several kept batches."""
    zeros = np.zeros((300, 2), dtype=np.float32)
    y = np.arange(300) % 2
    tp, fp, ap, auc = _ranking._exact_counts([(y, zeros)], 2, np.array([0.0, 0.5]))
    np.testing.assert_array_equal(tp, [[150, 0], [150, 0]])
    np.testing.assert_array_equal(fp, [[150, 0], [150, 0]])
    np.testing.assert_allclose(ap, [0.5, 0.5])
    np.testing.assert_allclose(auc, [0.5, 0.5])
    y, scores = _few_valued_scores("bfloat16", 5000, 3, seed=4)
    y[y == 1] = 0
    pieces = [(y[:2000], scores[:2000]), (y[2000:], scores[2000:])]
    assert _ranking._histogram_spacing(pieces, y.size) is not None
    _, _, ap, auc = _ranking._exact_counts(pieces, 3, np.empty(0))
    assert np.isnan(ap[1]) and np.isnan(auc[1])
    for k in (0, 2):
        assert ap[k] == pytest.approx(skm.average_precision_score(y == k, scores[:, k]), abs=1e-12)
        assert auc[k] == pytest.approx(skm.roc_auc_score(y == k, scores[:, k]), abs=1e-12)
    ones = np.zeros(300, dtype=np.int64)
    _, _, ap, auc = _ranking._exact_counts([(ones, scores[:300])], 3, np.empty(0))
    assert ap[0] == 1.0 and np.isnan(auc[0])


@pytest.mark.parametrize("positives", [BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 5])
@pytest.mark.parametrize("distinct", [1, 3, 40])
def test_sorted_keys_with_runs_across_block_borders_match_sklearn(monkeypatch, positives, distinct):
    """The sorted path's pass over the keys, block by block: runs of one score many blocks long,
    a score's positives ending exactly at a block's border (its negatives in the next block),
    positives shared by a score across blocks. AP, ROC AUC and threshold counts equal
    scikit-learn and brute force."""
    monkeypatch.setattr(_ranking, "_HISTOGRAM_BINS", 0)  # no histogram: the keys are sorted
    rng = np.random.default_rng(distinct)
    n = 3 * BLOCK + 7
    values = np.sort(rng.random(distinct)).astype(np.float32)
    p = values[np.sort(rng.integers(0, distinct, size=n))]
    if distinct == 1:  # one score: the positives (first among the keys) end at `positives`
        y = np.where(np.arange(n) < positives, 1, 0)
    else:
        y = (rng.random(n) < 0.5).astype(np.int64)
        y[:positives] = 1
    scores = np.stack([rng.random(n).astype(np.float32), p], axis=1)
    thresholds = np.concatenate([[0.0], values.astype(np.float64), [1.0]])
    thresholds = np.unique(thresholds)
    tp, fp, ap, auc = _ranking._exact_counts([(y, scores)], 2, thresholds)
    expected_tp, expected_fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(tp, expected_tp)
    np.testing.assert_array_equal(fp, expected_fp)
    for k in range(2):
        assert ap[k] == pytest.approx(skm.average_precision_score(y == k, scores[:, k]), abs=1e-12)
        assert auc[k] == pytest.approx(skm.roc_auc_score(y == k, scores[:, k]), abs=1e-12)


@pytest.mark.parametrize("grouped", [False, True])
def test_calibration_bins_of_a_strided_column_with_nan_and_out_of_range_blocks(grouped):
    """`calibration_bins` block by block on a column of ``[n, 2]`` rows (read through a
    contiguous copy): NaN confidences left out and values outside [0, 1] clipped in the blocks
    that have them, others untouched; equal to a brute-force NumPy reference."""
    rng = np.random.default_rng(7)
    n = 3 * BLOCK + 11
    rows = rng.random((n, 2)).astype(np.float32)
    rows[BLOCK + 5 : BLOCK + 40, 1] = np.nan  # the second block: NaNs
    rows[2 * BLOCK + 3, 1] = -0.25  # the third: out of range
    rows[2 * BLOCK + 4, 1] = 1.75
    rows[7, 1] = 1.0  # the first: exactly 1, the last bin
    confidence, correct = rows[:, 1], rng.random(n) < 0.6
    groups = rng.integers(0, 3, size=n) if grouped else None
    count, confidence_sum, right = counts.calibration_lib.calibration_bins(
        confidence, correct, groups=groups, num_groups=3 if grouped else None
    )
    keep = ~np.isnan(confidence)
    values = np.clip(confidence[keep], 0, 1)
    bins = np.minimum((values * np.float32(15)).astype(np.int64), 14)
    cells = bins if groups is None else groups[keep] * 15 + bins
    size = 15 if groups is None else 45
    shape = (15,) if groups is None else (3, 15)
    np.testing.assert_array_equal(count, np.bincount(cells, minlength=size).reshape(shape))
    np.testing.assert_array_equal(
        right, np.bincount(cells[correct[keep]], minlength=size).reshape(shape)
    )
    np.testing.assert_allclose(
        confidence_sum,
        np.bincount(cells, weights=values.astype(np.float64), minlength=size).reshape(shape),
        rtol=1e-12,
    )


def _assert_exact(y, scores, thresholds, tp, fp, ap, auc):
    """Threshold counts equal brute force; AP and ROC AUC scikit-learn (NaN without positives,
    and for the ROC AUC without negatives)."""
    expected_tp, expected_fp = _brute_force_counts(y, scores, thresholds)
    np.testing.assert_array_equal(tp, expected_tp)
    np.testing.assert_array_equal(fp, expected_fp)
    for k in range(scores.shape[1]):
        positive = y == k
        if positive.any():
            assert ap[k] == pytest.approx(
                skm.average_precision_score(positive, scores[:, k]), abs=1e-12
            )
        else:
            assert np.isnan(ap[k])
        if positive.any() and not positive.all():
            assert auc[k] == pytest.approx(skm.roc_auc_score(positive, scores[:, k]), abs=1e-12)
        else:
            assert np.isnan(auc[k])


def _sigmoid_scores(case, n, rng):
    """``(y, [1 - p, p])`` float32 of a single sigmoid unit, with both labels present."""
    if case == "uniform":  # multiples of 2^-24: every 1 - p exact, one-to-one
        p = rng.random(n, dtype=np.float32)
    elif case == "full_precision":  # below 0.5 distinct p round to one 1 - p
        p = (1 / (1 + np.exp(-rng.normal(0, 3, n)))).astype(np.float32)
    elif case == "tiny":  # most 1 - p round to 1.0 or a few values below it
        p = (rng.random(n) * 1e-6).astype(np.float32)
    elif case == "coarse":  # long runs of ties, across blocks, with 0 and 1
        p = np.round(rng.random(n), 2).astype(np.float32)
    else:  # two neighbouring p of one 1 - p: a merged group many blocks long
        low = np.float32(0.3) + np.arange(4, dtype=np.float32) * np.spacing(np.float32(0.3))
        merged = np.flatnonzero((1 - low[1:]) == (1 - low[:-1]))[0]
        p = rng.choice(np.append(low[merged : merged + 2], np.float32(0.7)), n)
    y = (rng.random(n) < np.clip(p * 1e5 if case == "tiny" else p, 0.05, 0.95)).astype(np.int64)
    return y, np.stack([1 - p, p], axis=1)


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("case", ["uniform", "full_precision", "tiny", "coarse", "merged_runs"])
def test_complementary_binary_scores_match_sklearn_and_the_general_path(
    monkeypatch, case, threaded
):
    """A sigmoid's ``[1 - p, p]``: class 0's sorted keys come from class 1's (one sort), mended
    where rounding merges distinct p into one 1 - p. Threshold counts equal brute force, AP and
    ROC AUC scikit-learn, and all of it the path that sorts each class on its own."""
    monkeypatch.setattr(_ranking, "_HISTOGRAM_BINS", 0)
    if threaded:
        monkeypatch.setattr(_ranking, "_THREADED_EXAMPLES", 0)
        monkeypatch.setattr(_ranking, "AVERAGE_PRECISION_THREADS", 2)
    rng = np.random.default_rng(11)
    y, scores = _sigmoid_scores(case, 3 * BLOCK + 11, rng)
    pieces = [(y[:5000], scores[:5000]), (y[5000:], scores[5000:])]
    assert _ranking._complementary(pieces)
    thresholds = np.unique(np.concatenate([counts.default_thresholds(), [0.3, 0.7]]))
    exact = _ranking._exact_counts(pieces, 2, thresholds)
    _assert_exact(y, scores, thresholds, *exact)
    monkeypatch.setattr(_ranking, "_complementary", lambda pieces: False)
    general = _ranking._exact_counts(pieces, 2, thresholds)
    for ours, theirs in zip(exact, general):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", ["uniform", "full_precision", "tiny", "merged_runs"])
def test_class_zero_keys_from_class_one_keys_equal_its_own_sorted_keys(case):
    """`_complement_keys` gives exactly the keys a sort of class 0's own would; it calls the
    complement one-to-one exactly when no two distinct p share a float32 1 - p."""
    rng = np.random.default_rng(5)
    y, scores = _sigmoid_scores(case, 2 * BLOCK + 3, rng)
    n = y.size
    own, _ = _ranking._float32_sort_keys([(y, scores)], 0, n, False)
    ones, _ = _ranking._float32_sort_keys([(y, scores)], 1, n, False)
    ones.sort()
    derived, one_to_one = _ranking._complement_keys(ones)
    np.testing.assert_array_equal(derived, np.sort(own))
    p = np.unique(scores[:, 1])
    assert one_to_one == (np.unique(np.float32(1) - p).size == p.size)
    assert one_to_one == (case == "uniform")


@pytest.mark.parametrize("positives", ["all", "none"])
def test_complementary_scores_of_one_label_only(monkeypatch, positives):
    """Every example of class 1 (or none): the AP of the class without positives and both ROC
    AUCs are NaN, the rest equals scikit-learn."""
    monkeypatch.setattr(_ranking, "_HISTOGRAM_BINS", 0)
    rng = np.random.default_rng(2)
    p = (1 / (1 + np.exp(-rng.normal(0, 3, BLOCK + 9)))).astype(np.float32)
    y = np.full(p.size, 1 if positives == "all" else 0)
    scores = np.stack([1 - p, p], axis=1)
    thresholds = counts.default_thresholds()
    _assert_exact(y, scores, thresholds, *_ranking._exact_counts([(y, scores)], 2, thresholds))


def test_two_columns_that_are_not_complementary_are_sorted_each():
    """A 2-unit softmax's columns (and a [1 - p, p] with one row changed, or a NaN) are not
    complementary: each class is sorted on its own, still exact."""
    y, scores = _random_case(8, 2 * BLOCK + 5, 2)
    assert not _ranking._complementary([(y, scores)])
    p = scores[:, 1]
    sigmoid = np.stack([1 - p, p], axis=1)
    assert _ranking._complementary([(y, sigmoid)])
    for row, value in ((BLOCK + 17, np.nextafter(sigmoid[BLOCK + 17, 0], 2)), (3, np.nan)):
        changed = sigmoid.copy()
        changed[row, 0] = value
        assert not _ranking._complementary([(y, changed)])
    changed = sigmoid.copy()
    changed[BLOCK + 17, 0] = np.nextafter(changed[BLOCK + 17, 0], np.float32(2))
    thresholds = counts.default_thresholds()
    _assert_exact(y, changed, thresholds, *_ranking._exact_counts([(y, changed)], 2, thresholds))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_complementary_scores_of_few_values_by_the_sorted_path(monkeypatch, dtype):
    """float16 / bfloat16 sigmoid outputs widened to float32 through the sorted path (the
    histogram turned off): exact against scikit-learn."""
    monkeypatch.setattr(_ranking, "_HISTOGRAM_BINS", 0)
    rng = np.random.default_rng(9)
    p = rng.random(2 * BLOCK + 1, dtype=np.float32)
    if dtype == "float16":
        p = p.astype(np.float16).astype(np.float32)
    else:
        p = (p.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    y = (rng.random(p.size) < p).astype(np.int64)
    scores = np.stack([1 - p, p], axis=1)
    assert _ranking._complementary([(y, scores)])
    thresholds = counts.default_thresholds()
    _assert_exact(y, scores, thresholds, *_ranking._exact_counts([(y, scores)], 2, thresholds))


def test_complementary_scores_with_nonfinite_rows_left_out():
    """`ClassificationCounts` leaves NaN / inf rows of a [1 - p, p] out (counted invalid);
    the rest go through the complementary path and equal scikit-learn on the finite rows."""
    rng = np.random.default_rng(4)
    y, scores = _sigmoid_scores("full_precision", BLOCK + 100, rng)
    scores[[5, BLOCK + 50]] = [[np.nan, np.nan], [-np.inf, np.inf]]
    result = counts.ClassificationCounts(2, counts.default_thresholds())
    result.update(y, scores, labels._row_argmax(scores))
    assert result.invalid == 2
    finite = np.isfinite(scores).all(axis=1)
    _assert_exact(
        y[finite],
        scores[finite],
        counts.default_thresholds(),
        result.tp,
        result.fp,
        result.average_precision(),
        result.roc_auc(),
    )


def _binned_by_numpy(confidence, correct, num_bins=15):
    """Calibration bins by brute force: NaN left out, clipped to [0, 1], bin of the float32
    product rounded down, the last bin holding 1.0; sums in float64."""
    keep = ~np.isnan(confidence)
    values = np.clip(confidence[keep], 0, 1)
    bins = np.minimum((values * values.dtype.type(num_bins)).astype(np.int64), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    sums = np.bincount(bins, weights=values.astype(np.float64), minlength=num_bins)
    return count, sums, np.bincount(bins[correct[keep]], minlength=num_bins)


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("case", ["edges", "uniform", "above_one", "float16", "softmax"])
def test_binary_calibration_bins_from_the_sorted_keys_equal_numpy(monkeypatch, case, threaded):
    """A kept binary model's calibration bins come from class 1's sorted keys: scores on every
    bin edge and one float32 below it, 0, -0.0 and 1.0, in several kept batches, equal a
    brute-force NumPy binning; scores above 1 (clipped), float16 scores (no sort) and a
    2-unit softmax's (not complementary) too, through the other paths."""
    if threaded:
        monkeypatch.setattr(_ranking, "_THREADED_EXAMPLES", 0)
        monkeypatch.setattr(_ranking, "AVERAGE_PRECISION_THREADS", 2)
    rng = np.random.default_rng(21)
    n = 2 * BLOCK + 33
    if case == "softmax":
        y, scores = _random_case(6, n, 2)
    else:
        p = rng.random(n, dtype=np.float32)
        if case == "edges":
            edges = _ranking._calibration_edges(15)
            special = np.concatenate([edges, np.nextafter(edges, np.float32(0)), [0, -0.0, 1]])
            p[: 20 * special.size] = np.tile(special.astype(np.float32), 20)
            rng.shuffle(p)
        elif case == "above_one":
            p *= np.float32(1.25)
        elif case == "float16":
            p = p.astype(np.float16)
        y = (rng.random(n) < np.clip(p, 0, 1)).astype(np.int64)
        scores = np.stack([1 - p, p], axis=1)
    result = counts.ClassificationCounts(2, counts.default_thresholds())
    for batch in np.array_split(np.arange(n), 5):
        result.update(y[batch], scores[batch], labels._row_argmax(scores[batch]))
    count, sums, correct = _binned_by_numpy(scores[:, 1], y == 1)
    np.testing.assert_array_equal(result.calibration[0], count)
    np.testing.assert_array_equal(result.calibration[2], correct)
    np.testing.assert_allclose(result.calibration[1], sums, rtol=1e-12)
    streamed = counts.ClassificationCounts(2, counts.default_thresholds(), keep_scores=False)
    streamed.update(y, scores, labels._row_argmax(scores))
    np.testing.assert_array_equal(result.calibration[0], streamed.calibration[0])
    np.testing.assert_allclose(result.calibration[1], streamed.calibration[1], rtol=1e-12)

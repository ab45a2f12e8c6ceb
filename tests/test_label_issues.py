"""`tb_metricsdiag.core.label_issues`: the flagged set against cleanlab 2.x on the same
probabilities, and the label-noise statistic on simulated and real (scikit-learn) models.

cleanlab (AGPL) is a test-only reference (setup.py's "test" extra): imported inside the tests
that compare with it, never by the package.
"""

import math
import warnings

import numpy as np
import pytest
from noisy_tasks import (
    calibrated_simulation,
    flipped,
    gaussian_classes,
    linear,
    make_classes,
    mlp,
    out_of_sample,
    quadratic,
    softmax,
)
from scipy import optimize, special, stats
from sklearn.metrics import confusion_matrix

from tb_metricsdiag.core import label_issues
from tb_metricsdiag.core.label_issues import (
    MAX_NOISE_SHARE,
    MAX_P_VALUE,
    MIN_NOISE_SHARE,
    NOISE_SHARE_STEP,
    RECALIBRATION_MAX_INTERCEPT,
    RECALIBRATION_MAX_SLOPE,
    RECALIBRATION_MIN_SLOPE,
    TOP_LABEL_BIN_WIDTH,
    TOP_LABEL_LOGIT_RANGE,
    LabelIssues,
    find_label_issues,
    fit_label_noise,
    label_issue_test,
    top_label_bins,
)

# -- The flagged set against cleanlab ----------------------------------------------------------


def cleanlab_flags(labels, probs):
    from cleanlab.filter import find_label_issues as cleanlab_find

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cleanlab_find(labels, probs, filter_by="confident_learning", n_jobs=1)


def cleanlab_guesses(labels, probs, rows):
    """cleanlab's confident-joint guess of each row, by the per-row rule its documentation
    gives, with cleanlab's own thresholds."""
    from cleanlab.count import get_confident_thresholds

    thresholds = get_confident_thresholds(labels, probs)
    guesses = []
    for row in probs[rows]:
        confident = row >= thresholds - 1e-6
        guesses.append(np.argmax(confident) if confident.sum() == 1 else np.argmax(row))
    return np.array(guesses, dtype=np.int64), thresholds


def check_against_cleanlab(labels, probs):
    """Our flags, suggestions, scores and order against cleanlab on float64 probabilities."""
    probs64 = np.asarray(probs, dtype=np.float64)
    result = find_label_issues(labels, probs)
    flagged = np.zeros(labels.size, bool)
    flagged[result["position"]] = True
    expected = cleanlab_flags(labels, probs64)
    np.testing.assert_array_equal(flagged, expected)
    assert result["count"] == expected.sum() and result["num_rows"] == labels.size
    rows = result["position"]
    guesses, thresholds = cleanlab_guesses(labels, probs64, rows)
    np.testing.assert_allclose(result["thresholds"], thresholds, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(result["suggested"], guesses)
    np.testing.assert_array_equal(result["given"], labels[rows])
    assert np.all(result["suggested"] != result["given"])
    np.testing.assert_array_equal(result["given_score"], probs64[rows, labels[rows]])
    np.testing.assert_array_equal(result["suggested_score"], probs64[rows, guesses])
    # The least likely given label first; ties by position.
    given = probs64[rows, labels[rows]]
    np.testing.assert_array_equal(rows, rows[np.lexsort((rows, given))])
    return result


def random_case(rng):
    """Probabilities from softmax logits of a random scale: very confident (near one-hot) to
    very uncertain (near uniform), with ties (rounded logits or probabilities) now and then,
    and labels that leave some classes without examples."""
    num_classes = int(rng.integers(2, 51))
    n = int(rng.integers(5, 400))
    logits = rng.normal(size=(n, num_classes)) * math.exp(rng.uniform(-3, 3.5))
    if rng.random() < 0.3:
        logits = np.round(logits)
    probs = softmax(logits)
    if rng.random() < 0.2:
        probs = np.round(probs, 2)
    used = num_classes if rng.random() < 0.6 else max(2, int(rng.integers(1, num_classes + 1)))
    # Labels agree with the model's top class mostly, as from a model that learned something.
    top = probs.argmax(axis=1)
    labels = np.where(rng.random(n) < rng.random(), top, rng.integers(0, used, n))
    labels = np.where(labels < used, labels, rng.integers(0, used, n))
    return labels.astype(np.int64), probs


def test_flags_match_cleanlab_on_random_cases():
    rng = np.random.default_rng(0)
    checked = flagged = 0
    for _ in range(250):
        labels, probs = random_case(rng)
        if np.unique(labels).size < 2:  # cleanlab wants two classes
            continue
        flagged += check_against_cleanlab(labels, probs)["count"]
        checked += 1
    assert checked > 200 and flagged > 1000  # the comparison is not vacuous


@pytest.mark.parametrize(
    "case",
    [
        "binary",
        "binary_sigmoid_ties",
        "very_confident",
        "one_hot",
        "uniform",
        "duplicate_rows",
        "absent_classes",
        "one_class_labelled",
        "float32",
        "fifty_classes",
        "label_ties_with_top",
    ],
)
def test_flags_match_cleanlab_on_structured_cases(case):
    rng = np.random.default_rng(1)
    n, num_classes = 300, 5
    logits = rng.normal(size=(n, num_classes)) * 3
    labels = rng.integers(0, num_classes, n)
    if case == "binary":
        num_classes, logits, labels = 2, rng.normal(size=(n, 2)) * 4, rng.integers(0, 2, n)
    elif case == "binary_sigmoid_ties":
        positive = np.round(rng.random(n), 1)  # one sigmoid output, many equal values
        probs = np.stack([1 - positive, positive], axis=1)
        check_against_cleanlab(rng.integers(0, 2, n), probs)
        return
    elif case == "very_confident":
        logits = logits * 20
    elif case == "one_hot":
        probs = np.eye(num_classes)[rng.integers(0, num_classes, n)]
        check_against_cleanlab(labels, probs)
        return
    elif case == "uniform":
        probs = np.full((n, num_classes), 1.0 / num_classes)
        probs[:10] = softmax(logits[:10])
        check_against_cleanlab(labels, probs)
        return
    elif case == "duplicate_rows":
        logits = np.repeat(logits[:30], 10, axis=0)
    elif case == "absent_classes":
        labels = rng.choice([1, 3], n)  # classes 0, 2 and 4 have no example
    elif case == "one_class_labelled":
        labels = np.zeros(n, np.int64)  # cleanlab accepts all-zero labels
    elif case == "float32":
        check_against_cleanlab(labels, softmax(logits).astype(np.float32))
        return
    elif case == "fifty_classes":
        num_classes = 50
        logits = rng.normal(size=(2000, 50)) * 4
        labels = np.where(rng.random(2000) < 0.8, logits.argmax(axis=1), rng.integers(0, 50, 2000))
    elif case == "label_ties_with_top":
        # The given label's probability equals the top one, before and after it: the
        # tolerance and the first-of-equal-maxima rule decide.
        probs = np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.45, 0.45, 0.1]] * 40)
        probs[::7] = [0.1, 0.1, 0.8]
        labels = np.tile([1, 1, 0], 40)
        check_against_cleanlab(labels, probs)
        return
    check_against_cleanlab(np.asarray(labels), softmax(logits))


def test_batches_and_merges_give_the_one_pass_result():
    rng = np.random.default_rng(2)
    labels, probs = random_case(rng)
    while np.unique(labels).size < 2:
        labels, probs = random_case(rng)
    whole = find_label_issues(labels, probs)
    positions = np.arange(labels.size)
    order = rng.permutation(labels.size)
    first, second = LabelIssues(probs.shape[1]), LabelIssues(probs.shape[1])
    for part, accumulator in (
        (order[: labels.size // 3], first),
        (order[labels.size // 3 :], second),
    ):
        for piece in np.array_split(part, 4):
            accumulator.update(positions[piece], labels[piece], probs[piece])
    first.merge(second)
    merged = first.result()
    for key in ("position", "given", "suggested", "given_score", "suggested_score"):
        np.testing.assert_array_equal(merged[key], whole[key])
    assert merged["count"] == whole["count"] > 0 and merged["share"] == whole["share"]
    # Sums in another order: equal to the last bits.
    np.testing.assert_allclose(merged["thresholds"], whole["thresholds"], rtol=1e-12)


def test_small_blocks_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    probs = softmax(rng.normal(size=(1000, 7)) * 3)
    labels = np.where(rng.random(1000) < 0.8, probs.argmax(axis=1), rng.integers(0, 7, 1000))
    whole = find_label_issues(labels, probs)
    monkeypatch.setattr(label_issues, "_BLOCK_VALUES", 50)  # 7 rows a block
    blocked = find_label_issues(labels, probs)
    for key in ("position", "suggested", "given_score"):
        np.testing.assert_array_equal(blocked[key], whole[key])
    assert whole["count"] > 20


def test_no_examples():
    result = LabelIssues(3).result()
    assert result["count"] == 0 and result["num_rows"] == 0 and math.isnan(result["share"])
    np.testing.assert_array_equal(result["thresholds"], [2.0, 2.0, 2.0])


@pytest.mark.parametrize(
    "labels, probs, message",
    [
        ([0, 3], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], r"outside \[0, 3\)"),
        ([0, 1], [[0.5, 0.5, 0.0]], r"shape \[2, 3\]"),
        ([0, 1], [[0.5, 0.5, 0.0], [np.nan, 0.5, 0.5]], "probabilities in"),
        ([0, 1], [[2.0, -1.0, 0.0], [0.5, 0.5, 0.0]], "apply a softmax"),
        ([0.5, 1], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], "integer class ids"),
        ([[0], [1]], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], "1-D array"),
    ],
)
def test_bad_input_is_rejected(labels, probs, message):
    accumulator = LabelIssues(3)
    with pytest.raises(ValueError, match=message):
        accumulator.update([0, 1], labels, probs)
    assert accumulator.num_rows == 0


def test_positions_and_configuration_errors():
    with pytest.raises(ValueError, match="repeat"):
        LabelIssues(2).update([1, 1], [0, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="differ in length"):
        LabelIssues(2).update([1], [0, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="at least 2"):
        LabelIssues(1)
    with pytest.raises(ValueError, match="same classes"):
        LabelIssues(2).merge(LabelIssues(3))
    with pytest.raises(ValueError, match=r"shape \[n, C\]"):
        find_label_issues([0], [0.5, 0.5])


# -- Top-label bins and the fit ------------------------------------------------------------------


def test_top_label_bins_match_a_loop():
    rng = np.random.default_rng(4)
    probs = softmax(rng.normal(size=(500, 4)) * rng.uniform(0.1, 30, (500, 1)))
    probs[:5] = [1.0, 0.0, 0.0, 0.0]  # confidence 1: the last bin
    labels = rng.integers(0, 4, 500)
    bins = top_label_bins(labels, probs)
    low, high = TOP_LABEL_LOGIT_RANGE
    num_bins = round((high - low) / TOP_LABEL_BIN_WIDTH)
    count, correct, logit_sum = np.zeros(num_bins), np.zeros(num_bins), np.zeros(num_bins)
    for row, label in zip(probs, labels):
        top = int(np.argmax(row))
        confidence = row[top]
        logit = high if confidence >= 1 else math.log(confidence / (1 - confidence))
        logit = min(max(logit, low), high)
        index = min(int(math.floor((logit - low) / TOP_LABEL_BIN_WIDTH)), num_bins - 1)
        count[index] += 1
        correct[index] += top == label
        logit_sum[index] += logit
    np.testing.assert_array_equal(bins["count"], count)
    np.testing.assert_array_equal(bins["correct"], correct)
    np.testing.assert_allclose(bins["logit_sum"], logit_sum, rtol=1e-12)
    # The accumulator bins the same examples the same way.
    accumulator = LabelIssues(4)
    accumulator.update(np.arange(500), labels, probs)
    for key, values in accumulator.top_label_bins().items():
        np.testing.assert_array_equal(values, bins[key])


def binned_loglik(theta, share, bins, num_classes):
    """The binned log-likelihood of `fit_label_noise`, written with SciPy."""
    count = bins["count"][bins["count"] > 0].astype(float)
    correct = bins["correct"][bins["count"] > 0].astype(float)
    logit = bins["logit_sum"][bins["count"] > 0] / count
    h = special.expit(theta[0] + theta[1] * logit)
    p = share / (num_classes - 1) + (1 - share - share / (num_classes - 1)) * h
    return float(np.sum(special.xlogy(correct, p) + special.xlogy(count - correct, 1 - p)))


def scipy_loglik(bins, num_classes, share):
    """The best log-likelihood at one noise share: L-BFGS-B from two starts."""
    bounds = [
        (-RECALIBRATION_MAX_INTERCEPT, RECALIBRATION_MAX_INTERCEPT),
        (RECALIBRATION_MIN_SLOPE, RECALIBRATION_MAX_SLOPE),
    ]
    with np.errstate(all="ignore"):
        return max(
            -optimize.minimize(
                lambda t: -binned_loglik(t, share, bins, num_classes),
                start,
                method="L-BFGS-B",
                bounds=bounds,
            ).fun
            for start in ([0.0, 1.0], [0.9, 3.0])
        )


@pytest.mark.parametrize(
    "num_classes, separation, flip", [(2, 3.0, 0.0), (10, 4.0, 0.08), (5, 1.5, 0.05)]
)
def test_fit_reaches_the_maximum_scipy_finds(num_classes, separation, flip):
    labels, probs = calibrated_simulation(5, num_classes, separation, 3000, flip=flip)
    bins = top_label_bins(labels, probs)
    fit = fit_label_noise(bins, num_classes)
    # Each share's maximum as SciPy finds it: the clean one, ours, and every 4th of the grid.
    clean = scipy_loglik(bins, num_classes, 0.0)
    ours = binned_loglik([fit["intercept"], fit["slope"]], fit["noise_share"], bins, num_classes)
    assert ours == pytest.approx(scipy_loglik(bins, num_classes, fit["noise_share"]), abs=1e-4)
    assert fit["log_likelihood_ratio"] == pytest.approx(max(0.0, 2 * (ours - clean)), abs=1e-3)
    for share in np.arange(0, MAX_NOISE_SHARE, 4 * NOISE_SHARE_STEP):
        assert scipy_loglik(bins, num_classes, share) <= ours + 1e-4
    fitted_clean = [fit["clean_intercept"], fit["clean_slope"]]
    assert binned_loglik(fitted_clean, 0.0, bins, num_classes) == pytest.approx(clean, abs=1e-4)
    # The p-value is half a chi-square(1) tail.
    assert fit["p_value"] == pytest.approx(
        stats.chi2.sf(fit["log_likelihood_ratio"], 1) / 2, rel=1e-9, abs=1e-300
    )


def test_fit_without_examples():
    empty = {key: np.zeros_like(value) for key, value in top_label_bins([0], [[1.0, 0]]).items()}
    fit = fit_label_noise(empty, 3)
    assert fit["examples"] == 0 and fit["p_value"] == 1.0 and fit["noise_share"] == 0.0


# -- The verdict: silent on ambiguity, firing on flipped labels ----------------------------------


def verdict(labels, probs):
    num_classes = probs.shape[1]
    flagged = find_label_issues(labels, probs)["count"]
    matrix = confusion_matrix(labels, probs.argmax(axis=1), labels=range(num_classes))
    return label_issue_test(flagged, top_label_bins(labels, probs), matrix)


def assert_silent_statistic(result):
    """Silent on the statistic itself, whatever the model-quality condition says."""
    assert not result["fires"]
    assert not (result["material"] and result["beyond_uncertainty"]), result


@pytest.mark.parametrize(
    "num_classes, separation, temperature",
    [
        (2, 1.0, 1.0),  # hard: 70% accuracy, errors near the boundary
        (2, 3.0, 1.0),
        (10, 2.0, 1.0),  # hard: 60%
        (10, 4.0, 1.0),
        (100, 6.0, 1.0),
        (10, 4.0, 0.5),  # over-confident (temperature 2): miscalibrated, not noisy
        (10, 2.0, 0.5),
        (10, 2.0, 2.0),  # under-confident
        (2, 1.0, 0.5),
    ],
)
def test_silent_on_clean_labels_of_a_calibrated_or_recalibrated_model(
    num_classes, separation, temperature
):
    for seed in range(3):
        labels, probs = calibrated_simulation(seed, num_classes, separation, 5000, temperature)
        result = verdict(labels, probs)
        assert_silent_statistic(result)
        assert result["share"] > 0 or separation > 3  # confident learning flags some anyway


@pytest.mark.parametrize(
    "num_classes, separation, flip",
    [(2, 3.0, 0.05), (2, 3.0, 0.1), (10, 4.0, 0.05), (10, 4.0, 0.1), (100, 6.0, 0.05)],
)
def test_fires_on_flipped_labels_of_a_task_the_model_learns_well(num_classes, separation, flip):
    for seed in range(3):
        labels, probs = calibrated_simulation(seed, num_classes, separation, 5000, flip=flip)
        result = verdict(labels, probs)
        assert result["fires"], result
        assert result["p_value"] <= MAX_P_VALUE and result["trusted_model"]
        assert result["noise_share"] == pytest.approx(flip, abs=0.025)


def test_silent_when_the_model_is_too_weak_to_trust():
    labels, probs = calibrated_simulation(0, 2, 1.0, 5000, flip=0.1)  # 65% accuracy
    result = verdict(labels, probs)
    assert not result["trusted_model"] and not result["fires"]


# -- Real small trainings (scikit-learn, out-of-sample probabilities) ---------------------------


@pytest.mark.parametrize("seed", [2, 3])
def test_real_trainings_on_clean_overlapping_classes_stay_silent(seed):
    x, labels = gaussian_classes(seed, 4, 1.5)  # about 70% accuracy
    result = verdict(labels, out_of_sample(linear(), x, labels))
    assert_silent_statistic(result)
    assert result["share"] > 0.05  # confident learning alone flags many
    x, labels = make_classes(seed, 2, 0.5)
    assert_silent_statistic(verdict(labels, out_of_sample(quadratic(), x, labels)))


def test_a_real_neural_network_on_clean_overlapping_classes_stays_silent():
    x, labels = make_classes(2, 2, 0.5)
    assert_silent_statistic(verdict(labels, out_of_sample(mlp(), x, labels)))


@pytest.mark.parametrize("seed, model", [(2, quadratic), (3, quadratic), (2, mlp)])
def test_real_trainings_on_flipped_labels_fire(seed, model):
    x, labels = make_classes(seed, 5, 2.5)
    noisy = flipped(seed, labels, 5, 0.08)
    result = verdict(noisy, out_of_sample(model(), x, noisy))
    assert result["fires"], result
    assert result["noise_share"] == pytest.approx(np.mean(noisy != labels), abs=0.03)


@pytest.mark.parametrize("seed", [2, 3])
def test_a_real_linear_model_on_many_flipped_classes_fires(seed):
    x, labels = gaussian_classes(seed, 10, 6.0)
    noisy = flipped(seed, labels, 10, 0.05)
    result = verdict(noisy, out_of_sample(linear(), x, noisy))
    assert result["fires"] and result["noise_share"] >= MIN_NOISE_SHARE, result


@pytest.mark.parametrize("batch", [None, 7])
def test_a_poor_models_candidates_equal_cleanlab_kept_whole_or_copied(batch):
    """A model wrong on most rows makes most rows candidates: their block is kept whole (a
    view, no copy) instead of copied row by row. Either way the flags equal cleanlab's."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 6, size=4000)
    probs = rng.dirichlet(np.full(6, 0.4), size=labels.size).astype(np.float32)
    issues = LabelIssues(6)
    size = batch or labels.size
    for begin in range(0, labels.size, size):
        part = slice(begin, begin + size)
        issues.update(np.arange(labels.size)[part], labels[part], probs[part])
    kept_whole = [len(chosen) < len(labels_) for _, labels_, _, chosen in issues._candidates]
    assert any(kept_whole) and (batch is None or not all(kept_whole))
    flagged = np.zeros(labels.size, bool)
    flagged[issues.result()["position"]] = True
    np.testing.assert_array_equal(flagged, cleanlab_flags(labels, probs.astype(np.float64)))

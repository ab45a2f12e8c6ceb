"""Calibration bins, ECE and MCE against TorchMetrics' calibration errors on the same scores."""

import numpy as np
import pytest
import torch
from torchmetrics import classification

from tb_metricsdiag.core import calibration, counting, labels


def _away_from_edges(values, num_bins=calibration.DEFAULT_NUM_BINS, margin=1e-5):
    """Values moved off the bin edges, where TorchMetrics' float32 edges may bin differently."""
    edges = calibration.bin_edges(num_bins)
    near = np.min(np.abs(values[..., None] - edges), axis=-1) < margin
    return np.where(near, values + 2 * margin, values)


def _multiclass_case(seed, n=3000, num_classes=5, sharpness=3.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes)) + sharpness * np.eye(num_classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs.astype(np.float32)


@pytest.mark.parametrize("seed, sharpness", [(0, 3.0), (1, 0.5), (2, 8.0)])
def test_multiclass_ece_and_mce_equal_torchmetrics(seed, sharpness):
    y, probs = _multiclass_case(seed, sharpness=sharpness)
    counts = counting.ClassificationCounts(probs.shape[1], counting.default_thresholds())
    for begin in range(0, y.size, 700):  # several batches: the bins add up
        batch = slice(begin, begin + 700)
        counts.update(y[batch], probs[batch], probs[batch].argmax(axis=1))
    for norm in calibration.NORMS:
        reference = classification.MulticlassCalibrationError(
            num_classes=probs.shape[1], n_bins=15, norm=norm
        )(torch.from_numpy(probs), torch.from_numpy(y))
        ours = calibration.calibration_error(*counts.calibration, norm=norm)
        assert ours == pytest.approx(float(reference), abs=1e-6), norm


@pytest.mark.parametrize("positive_rate", [0.5, 0.02])
def test_binary_ece_and_mce_equal_torchmetrics(positive_rate):
    rng = np.random.default_rng(7)
    n = 4000
    y = (rng.random(n) < positive_rate).astype(np.int64)
    p = _away_from_edges(np.clip(rng.beta(2, 5, n) + 0.4 * y, 0, 0.999)).astype(np.float32)
    scores, predicted = labels.scores_and_predictions(p[:, None], from_logits=False)
    counts = counting.ClassificationCounts(2, counting.default_thresholds(), keep_scores=False)
    counts.update(y, scores, predicted)
    for norm in calibration.NORMS:
        reference = classification.BinaryCalibrationError(n_bins=15, norm=norm)(
            torch.from_numpy(p), torch.from_numpy(y)
        )
        ours = calibration.calibration_error(*counts.calibration, norm=norm)
        assert ours == pytest.approx(float(reference), abs=1e-6), norm


def test_bins_are_half_open_and_the_last_one_closed():
    confidence = np.array([0.0, 1 / 15, 0.5, 14 / 15 - 1e-9, 14 / 15, 1.0, np.nan])
    count, total, correct = calibration.calibration_bins(confidence, [1, 0, 1, 1, 0, 1, 1])
    assert count.tolist() == [1, 1] + [0] * 5 + [1] + [0] * 5 + [1, 2]
    assert correct[-1] == 1 and correct[0] == 1 and correct[1] == 0
    assert total[-1] == pytest.approx(14 / 15 + 1.0)


def test_perfectly_calibrated_bins_have_no_error_and_empty_input_is_nan():
    count = np.array([10, 0, 10])
    assert calibration.calibration_error(count, [1.0, 0.0, 9.0], [1, 0, 9]) == 0.0
    assert calibration.calibration_error(count, [1.0, 0.0, 9.0], [1, 0, 9], norm="max") == 0.0
    assert np.isnan(calibration.calibration_error([0, 0], [0.0, 0.0], [0, 0]))
    with pytest.raises(ValueError, match="norm"):
        calibration.calibration_error(count, [1.0, 0, 9.0], [1, 0, 9], norm="l2")


def test_direction_names_over_and_under_confidence():
    # Top-label: confidence 0.9 but half right is over-confident; 0.6 and all right is under.
    assert calibration.confidence_direction([10], [9.0], [5]) == "over"
    assert calibration.confidence_direction([10], [6.0], [10]) == "under"
    # Binary: probabilities too extreme on both sides are over-confident.
    assert calibration.confidence_direction([10, 10], [0.5, 9.5], [3, 7], binary=True) == "over"
    assert calibration.confidence_direction([10, 10], [3.0, 7.0], [0, 10], binary=True) == "under"
    assert calibration.confidence_direction([0], [0.0], [0]) is None

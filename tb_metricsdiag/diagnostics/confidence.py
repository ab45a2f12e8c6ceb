"""The rule on the scores as probabilities: a model that ranks well can still be miscalibrated.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

import numpy as np

from tb_metricsdiag.core import calibration
from tb_metricsdiag.diagnostics.findings import finding

MISCALIBRATION_ECE = 0.1
"""Expected calibration error (15 bins) from which the scores are called miscalibrated: on
average a score is 10 points away from the accuracy of the scores like it."""

MISCALIBRATION_MIN_EXAMPLES = 500
"""Validation examples needed before calibration is judged."""

MISCALIBRATION_MIN_PER_BIN = 20
"""Mean examples per non-empty bin needed: with fewer, a bin's accuracy is mostly noise and
the ECE of a calibrated model is large by chance."""


def material_ece(count, confidence_sum, correct):
    """The expected calibration error of calibration bins when the miscalibration is material:
    at least `MISCALIBRATION_ECE`, over at least `MISCALIBRATION_MIN_EXAMPLES` examples and
    `MISCALIBRATION_MIN_PER_BIN` per non-empty bin; else None. The one test of "miscalibrated":
    `check_miscalibrated` fires on it, and ``/calibration`` names a direction only when it holds.
    """
    count = np.asarray(count)
    examples, filled = int(count.sum()), int(np.count_nonzero(count))
    if examples < MISCALIBRATION_MIN_EXAMPLES or examples < MISCALIBRATION_MIN_PER_BIN * filled:
        return None
    ece = calibration.calibration_error(count, confidence_sum, correct, "l1")
    return ece if ece >= MISCALIBRATION_ECE else None


def check_miscalibrated(history):
    """Validation ECE at the latest epoch large, with enough examples per bin to trust it."""
    series = history.calibration.get("validation") or {}
    if not series:
        return []
    step = max(series)
    count, confidence_sum, correct = series[step]
    ece = material_ece(count, confidence_sum, correct)
    if ece is None:
        return []
    examples, filled = int(count.sum()), int(np.count_nonzero(count))
    mce = calibration.calibration_error(count, confidence_sum, correct, "max")
    # Binary and multi-label bins hold positive-class (per-label) probabilities.
    binary = history.multilabel or len(history.class_names or []) == 2
    direction = calibration.confidence_direction(count, confidence_sum, correct, binary=binary)
    if direction == "over":
        what = "over-confident: its scores claim more certainty than its accuracy backs"
        fix = (
            "Fit a temperature on validation data (temperature scaling, T > 1 softens the "
            "scores), or train with label smoothing (e.g. label_smoothing=0.1)."
        )
    else:
        what = "under-confident: it is right more often than its scores say"
        fix = (
            "Fit a temperature on validation data (temperature scaling, T < 1 sharpens the "
            "scores); less label smoothing or regularisation also sharpens them."
        )
    return [
        finding(
            "miscalibrated",
            "warning",
            title="The scores are not calibrated probabilities (ECE %.3f)" % ece,
            detail="At epoch %d the model is %s: the expected calibration error over %d "
            "validation examples is %.3f and the worst bin is off by %.3f."
            % (step, what, examples, ece, mce),
            step=step,
            evidence={
                "ece": ece,
                "mce": mce,
                "direction": direction,
                "examples": examples,
                "filled_bins": filled,
                "num_bins": int(count.size),
                "ece_threshold": MISCALIBRATION_ECE,
            },
            suggestion=fix,
        )
    ]

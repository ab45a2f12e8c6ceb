"""Rules that read a training run's history and say what is wrong with the classifier.

Pure Python and NumPy: no TensorFlow, no HTTP. `diagnose` takes the `reader.RunHistory` of
one training run and returns its findings, each a dict::

    {"rule", "severity", "title", "detail", "step", "evidence", "suggestion"}

``severity`` is ``"info"``, ``"warning"`` or ``"error"``; ``step`` is the 0-based epoch the
finding refers to, or None for the run as a whole; ``evidence`` holds the figures behind the
finding (JSON-safe: NaN and infinity become None).

Each rule is one small function. A rule that needs data the run does not hold (counts, the
callback's run information, a curve) returns nothing: a logdir written by
``keras.callbacks.TensorBoard`` alone gets only the curve rules. The thresholds are constants
of the rules' modules, documented there and in ``docs/diagnostics.md``; they are chosen so that a healthy
run (both losses falling, every class recalled well) gets no warning and no error.
"""

from tb_metricsdiag.diagnostics.classes import (
    check_accuracy_only_metric,
    check_accuracy_paradox,
    check_threshold_far_from_default,
)
from tb_metricsdiag.diagnostics.confidence import check_miscalibrated
from tb_metricsdiag.diagnostics.configuration import check_loss_mismatch
from tb_metricsdiag.diagnostics.findings import SEVERITIES, finding, sort_findings
from tb_metricsdiag.diagnostics.leakage import check_suspicious_validation, check_train_val_overlap
from tb_metricsdiag.diagnostics.recording import check_recording_problems
from tb_metricsdiag.diagnostics.training import (
    check_divergence,
    check_not_learning,
    check_overfitting,
)

__all__ = ["RULES", "SEVERITIES", "diagnose", "finding", "sort_findings"]

RULES = (
    check_divergence,
    check_loss_mismatch,
    check_not_learning,
    check_train_val_overlap,
    check_suspicious_validation,
    check_overfitting,
    check_accuracy_paradox,
    check_miscalibrated,
    check_accuracy_only_metric,
    check_threshold_far_from_default,
    check_recording_problems,
)


def diagnose(history):
    """All findings of one training run, worst first.

    Args:
      history: the `reader.RunHistory` of what was recorded for the run; missing parts make
        the rules that need them skip.

    Returns:
      A list of findings, dicts with keys ``rule``, ``severity``, ``title``, ``detail``,
      ``step``, ``evidence`` and ``suggestion``, sorted by `sort_findings`.
    """
    findings = []
    for rule in RULES:
        findings.extend(rule(history))
    return sort_findings(findings)

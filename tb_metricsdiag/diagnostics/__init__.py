"""Rules that read a training run's history and say what is wrong with the classifier.

Pure Python and NumPy: no TensorFlow, no HTTP. `diagnose` takes the `run_records.RunHistory` of
one training run and returns its findings, each a dict::

    {"rule", "severity", "title", "detail", "step", "evidence", "suggestion"}

``severity`` is ``"info"``, ``"warning"`` or ``"error"``; ``step`` is the 0-based epoch the
finding refers to, or None for the run as a whole; ``evidence`` holds the figures behind the
finding (JSON-safe: NaN and infinity become None).

Each rule is one small function. What it needs of the run (counts, the callback's run
information, a curve) is its requirement (`requirements`), checked first: a rule whose
requirement is not met does not run, and `evaluate` says why and what would let it run
(``not_run``) instead of the silence that would read as "no problem". The thresholds are
constants of the rules' modules, documented there and in ``docs/diagnostics.md``; they are
chosen so that a healthy run (both losses falling, every class recalled well) gets no warning
and no error.
"""

from tb_metricsdiag.diagnostics import requirements as needs
from tb_metricsdiag.diagnostics.classes import (
    check_accuracy_only_metric,
    check_accuracy_paradox,
    check_threshold_far_from_default,
)
from tb_metricsdiag.diagnostics.confidence import check_miscalibrated
from tb_metricsdiag.diagnostics.configuration import check_loss_mismatch
from tb_metricsdiag.diagnostics.findings import SEVERITIES, finding, sort_findings
from tb_metricsdiag.diagnostics.label_quality import check_label_issues
from tb_metricsdiag.diagnostics.leakage import check_suspicious_validation, check_train_val_overlap
from tb_metricsdiag.diagnostics.recording import check_recording_problems, check_restarted_training
from tb_metricsdiag.diagnostics.slices import check_weak_slice
from tb_metricsdiag.diagnostics.training import (
    check_divergence,
    check_not_learning,
    check_overfitting,
)

__all__ = [
    "RULES",
    "REQUIREMENTS",
    "SEVERITIES",
    "diagnose",
    "evaluate",
    "finding",
    "sort_findings",
]

RULES = (
    check_divergence,
    check_loss_mismatch,
    check_not_learning,
    check_train_val_overlap,
    check_suspicious_validation,
    check_overfitting,
    check_accuracy_paradox,
    check_miscalibrated,
    check_label_issues,
    check_weak_slice,
    check_accuracy_only_metric,
    check_threshold_far_from_default,
    check_recording_problems,
    check_restarted_training,
)

# rule function -> (rule id, requirement); rules absent here always run.
REQUIREMENTS = {
    check_divergence: ("divergence", needs.needs_loss_or_events),
    check_loss_mismatch: ("loss_mismatch", needs.needs_run_info),
    check_not_learning: (
        "not_learning",
        needs.all_of(needs.needs_curves("loss"), needs.needs_validation_counts),
    ),
    check_train_val_overlap: ("train_val_overlap", needs.needs_overlap),
    check_overfitting: ("overfitting", needs.needs_curves("loss", "val_loss")),
    check_accuracy_paradox: ("accuracy_paradox", needs.needs_validation_counts),
    check_accuracy_only_metric: ("accuracy_only_metric", needs.needs_label_distribution),
    check_threshold_far_from_default: ("threshold_far_from_default", needs.needs_threshold_counts),
    check_label_issues: ("label_issues", needs.needs_label_issues),
    check_weak_slice: ("weak_slice", needs.needs_validation_slices),
}


def diagnose(history):
    """All findings of one training run, worst first.

    Args:
      history: the `run_records.RunHistory` of what was recorded for the run; missing parts make
        the rules that need them skip.

    Returns:
      A list of findings, dicts with keys ``rule``, ``severity``, ``title``, ``detail``,
      ``step``, ``evidence`` and ``suggestion``, sorted by `sort_findings`.
    """
    return evaluate(history)[0]


def evaluate(history):
    """``(findings, not_run)``: `diagnose`'s findings, and the rules that could not run,
    ``[{"rule", "reason", "how"}]`` in the order of `RULES` (`REQUIREMENTS`): why, and the step
    that would let the rule run (`requirements.unmet`; None where none would).
    """
    findings, not_run = [], []
    for rule in RULES:
        rule_id, requirement = REQUIREMENTS.get(rule, (None, None))
        missing = requirement(history) if requirement is not None else None
        if missing is not None:
            not_run.append({"rule": rule_id, **missing})
            continue
        findings.extend(rule(history))
    return sort_findings(findings), not_run

"""A finding: what every rule (and the CLI, for a run it cannot read) reports, and their order."""

from tb_metricsdiag.core.json_values import to_json_value

SEVERITIES = ("error", "warning", "info")
"""The severities of a finding, worst first."""


def finding(rule, severity, *, title, detail, step=None, evidence=None, suggestion=None):
    """One finding as every rule (and the CLI, for a run it cannot read) reports it.

    Args:
      rule: the stable rule id (``"overfitting"``, ...).
      severity: one of `SEVERITIES`.
      title: one line saying what is wrong.
      detail: the figures behind it, in words.
      step: the epoch the finding refers to, or None for the whole run.
      evidence: the figures behind it (made JSON-safe: NaN and infinity become None).
      suggestion: what to do about it.
    """
    if severity not in SEVERITIES:
        raise ValueError("severity must be one of %s, got %r" % (SEVERITIES, severity))
    return {
        "rule": rule,
        "severity": severity,
        "title": title,
        "detail": detail,
        "step": None if step is None else int(step),
        "evidence": to_json_value(evidence),
        "suggestion": suggestion,
    }


def sort_findings(findings):
    """Worst first: by severity (error, warning, info), then by step (run-wide findings,
    step None, first), then by rule id.
    """
    return sorted(
        findings,
        key=lambda f: (
            SEVERITIES.index(f["severity"]),
            -1 if f["step"] is None else f["step"],
            f["rule"],
        ),
    )

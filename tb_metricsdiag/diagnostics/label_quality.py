"""The rule on the given labels: more of them look wrong than the model's uncertainty explains.

The statistic is `core.label_issues.label_issue_test` (its thresholds are documented there and
in ``docs/diagnostics.md``, "label_issues"); this rule picks the epoch it is read at and says
what it found.
"""

from tb_metricsdiag.core import label_issues
from tb_metricsdiag.diagnostics import training
from tb_metricsdiag.diagnostics.findings import finding

LABEL_ISSUES_SPLIT = "validation"
"""The split judged: its predictions are out-of-sample, so a confident disagreement with a
given label says something about the label (on the training split the model has fitted the
labels, wrong ones included)."""


def label_issue_step(history):
    """The epoch the rule reads: the best epoch (`training.best_epoch`, the weights
    ``EarlyStopping(restore_best_weights=True)`` keeps) when it has label issues recorded, else
    the latest epoch that has them; None without any.
    """
    series = history.label_issues.get(LABEL_ISSUES_SPLIT) or {}
    confusions = history.confusions.get(LABEL_ISSUES_SPLIT) or {}
    steps = sorted(set(series) & set(confusions))
    if not steps:
        return None
    best = training.best_epoch(history)
    return best if best in steps else steps[-1]


def check_label_issues(history):
    """Validation labels that look wrong, beyond what the model's uncertainty explains, from a
    model good enough to be trusted (`label_issues.label_issue_test`), at `label_issue_step`.
    """
    step = label_issue_step(history)
    if step is None:
        return []
    figures = history.label_issues[LABEL_ISSUES_SPLIT][step]
    verdict = label_issues.label_issue_test(
        figures.count, figures.bins, history.confusions[LABEL_ISSUES_SPLIT][step]
    )
    if not verdict["fires"]:
        return []
    evidence = {key: value for key, value in verdict.items() if key != "fires"}
    return [
        finding(
            "label_issues",
            "warning",
            title="About %.1f%% of the validation labels look wrong (%d flagged)"
            % (100 * verdict["share"], verdict["count"]),
            detail="At epoch %d confident learning flags %d of %d validation examples (%.1f%%)"
            " whose given label the model confidently disputes. That is more than its own"
            " uncertainty explains: even where it is surest, it disagrees with about %.1f%% of"
            " the labels as if they had been replaced at random (likelihood-ratio test, p ="
            " %.2g), and it avoids %.0f%% of the majority baseline's errors, so its"
            " disagreement is worth a look."
            % (
                step,
                verdict["count"],
                verdict["examples"],
                100 * verdict["share"],
                100 * verdict["noise_share"],
                verdict["p_value"],
                100 * verdict["error_reduction"],
            ),
            step=step,
            evidence=dict(
                evidence,
                split=LABEL_ISSUES_SPLIT,
                min_flagged_share=label_issues.MIN_FLAGGED_SHARE,
                max_p_value=label_issues.MAX_P_VALUE,
            ),
            suggestion="Review the flagged examples, the least likely given label first (the"
            " tab's label issues, the /label_issues route, or tb-metricsdiag report --examples"
            " N): relabel those that are wrong, or drop them, and retrain. Wrong validation"
            " labels also understate the model's accuracy.",
        )
    ]

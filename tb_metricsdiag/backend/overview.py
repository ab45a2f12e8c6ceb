"""``/overview``: one line per run for sweeps of hundreds of runs. Pure: no HTTP, no I/O.

Each run's figures are those of one evaluation, at its best step: the ``/curves``
``best_epoch`` (`training_rules.best_epoch`, EarlyStopping's choice on the validation loss)
where the split has counts at that step, else the split's latest step. They are the headline
figures the writers also store as scalars (`core.headline.headline_figures`), from the counts
the run's history keeps, so the table, the scalars and ``/confusion`` agree.
"""

from tb_metricsdiag.core import headline, labels
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.diagnostics import training as training_rules
from tb_metricsdiag.diagnostics.findings import SEVERITIES


def best_step(history, split):
    """The step whose figures stand for ``split`` of the run: `training_rules.best_epoch` when
    the split has counts there, else its latest step with counts; None without counts.
    """
    steps = history.confusions.get(split) or {}
    if not steps:
        return None
    best = training_rules.best_epoch(history)
    return best if best in steps else max(steps)


def finding_counts(findings):
    """``{severity: number of findings}`` for every severity (`findings.SEVERITIES`)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
    return counts


def run_entry(index, history, split, step, findings, exact_matches=None):
    """One run's ``/overview`` entry: its figures at ``step`` of ``split``.

    Args:
      index: the run's `run_records.RunIndex`.
      history: its `run_records.RunHistory` (counts per step, calibration bins per step).
      split: the split the figures are of.
      step: `best_step` of the history.
      findings: the run's findings (``/diagnostics``'s ``findings``).
      exact_matches: multi-label runs: the rows whose label set was predicted exactly at
        ``step`` (the subset accuracy's numerator); None otherwise.

    Returns:
      ``{"run", "task", "split", "steps", "best_step", "best_epoch", "accuracy",
      "balanced_accuracy", "macro_f1", "worst_class": {"name", "recall"} or null, "ece",
      "findings": {"error", "warning", "info"}}``: ``best_epoch`` is the ``/curves`` one
      (null without a validation loss), ``worst_class`` the class (label) of the lowest recall
      among those that occur; undefined figures are null (``balanced_accuracy`` of a
      multi-label run always, as in the headline scalars).
    """
    figures = headline.headline_figures(
        history.confusions[split][step],
        history.calibration.get(split, {}).get(step),
        exact_matches,
    )
    worst = headline.worst_class(figures["recall"])
    # A run whose class count changed midway: that step's classes get the default names, as
    # /confusion gives them.
    names = labels.names_or_default(index.class_names, len(figures["recall"]))
    return to_json_value(
        {
            "run": index.run,
            "task": index.task,
            "split": split,
            "steps": sorted(history.confusions[split]),
            "best_step": step,
            "best_epoch": training_rules.best_epoch(history),
            "accuracy": figures["accuracy"],
            "balanced_accuracy": figures["balanced_accuracy"],
            "macro_f1": figures["macro_f1"],
            "worst_class": None
            if worst is None
            else {"name": names[worst], "recall": figures["recall"][worst]},
            "ece": figures["ece"],
            "findings": finding_counts(findings),
        }
    )


def error_entry(run, split, message):
    """The entry of a run that could not be read: its name and why, no figures."""
    return {"run": run, "split": split, "error": message}


def overview_view(entries):
    """``/overview``: the entries, sorted by run name."""
    return {"runs": sorted(entries, key=lambda entry: entry["run"])}

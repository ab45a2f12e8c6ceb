"""The rules on the recording itself: data that could not be read (an error: the run is
damaged), problems the writers met, several trainings written into one log_dir.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

from tb_metricsdiag.core import events
from tb_metricsdiag.diagnostics.findings import finding

MAX_MESSAGES_IN_EVIDENCE = 5


def check_recording_problems(history):
    """Data that could not be read, and problems the callback met while recording."""
    findings = []
    if history.problems:
        findings.append(_damaged_data(history.problems))
    for kind in events.RECORDING_PROBLEMS:
        met = [e for e in history.events if e.get("kind") == kind]
        if not met:
            continue
        first_step = min(int(e.get("step", 0)) for e in met)
        findings.append(
            finding(
                "recording_problem",
                "warning",
                title="The callback met %d %s event(s) while recording" % (len(met), kind),
                detail="From epoch %d on, some counts are missing or incomplete: %s"
                % (first_step, met[0].get("message", "")),
                step=first_step,
                evidence={
                    "kind": kind,
                    "count": len(met),
                    "first_epoch": first_step,
                    "messages": [str(e.get("message", "")) for e in met[:MAX_MESSAGES_IN_EVIDENCE]],
                },
                suggestion="Check validation_data / train_data shapes and labels; see the training log "
                "for the full error.",
            )
        )
    overlap_error = (history.overlap or {}).get("error")
    if overlap_error:
        findings.append(
            finding(
                "recording_problem",
                "info",
                title="The train/validation overlap check could not run",
                detail=str(overlap_error),
                step=None,
                evidence={"kind": "overlap_error"},
                suggestion="Give the check the training inputs as the model gets them, laid out as"
                " the validation inputs (arrays or tensors of (x, y) batches), so that their"
                " bytes can be compared.",
            )
        )
    return findings


_REPAIR = (
    "Restore the damaged event files from a good copy or record the run again; data written by"
    " a newer tb-metricsdiag needs that version (pip install -U tb-metricsdiag)."
)


def damaged_example_records(why):
    """The error of a run whose example records (read by ``report --examples``, not by the
    rules) were refused: ``why`` names them, their step and the reason.
    """
    return finding(
        "recording_problem",
        "error",
        title="The run's example records are damaged",
        detail="Skipped: %s." % why,
        step=None,
        evidence={"damaged": [{"why": why}], "count": 1},
        suggestion=_REPAIR,
    )


def _damaged_data(damaged):
    """The error of a run whose stored data was refused, wholly or in part (``damaged``, a list
    of `run_records.DamagedData`): a damaged run must not pass as a healthy one, since the
    rules skip what it could not read.
    """
    shown = damaged[:MAX_MESSAGES_IN_EVIDENCE]
    more = len(damaged) - len(shown)
    return finding(
        "recording_problem",
        "error",
        title="The run's recorded data is damaged: %d refused part(s) were skipped" % len(damaged),
        detail="Skipped: %s%s. The diagnostics that need what was skipped did not run, and the"
        " others saw only what could be read."
        % (
            "; ".join(damage.describe() for damage in shown),
            "; and %d more" % more if more else "",
        ),
        step=None,
        evidence={
            "damaged": [damage.as_evidence() for damage in shown],
            "count": len(damaged),
        },
        suggestion=_REPAIR,
    )


def check_restarted_training(history):
    """Several trainings written into one log_dir: the steps start again part-way through.

    The reader keeps the latest training's points only (`run_records.RunHistory.trainings`), so the
    other findings are about that training; this one says so.
    """
    if history.trainings < 2 or not history.restart:
        return []
    step, previous = history.restart["step"], history.restart["previous_last_step"]
    return [
        finding(
            "restarted_training",
            "warning",
            title="%d trainings were written into this run" % history.trainings,
            detail="The steps start again at epoch %d after epoch %d: model.fit was run again with "
            "the same log_dir. Only the latest training (from that point on) is shown and "
            "diagnosed." % (step, previous),
            step=step,
            evidence={
                "trainings": history.trainings,
                "restart_step": step,
                "previous_last_step": previous,
                "shown": "latest",
            },
            suggestion="Give each training a log_dir of its own (e.g. with a timestamp), or delete "
            "the old one before training again.",
        )
    ]

"""What each rule needs of a run, why it could not run when the run lacks it, and what would
let it run.

A requirement is a small function of the `run_records.RunHistory` returning None when the rule can
run, else `unmet`: the reason it cannot (``reason``) and the concrete step that would record
what it needs (``how``), for the writer that recorded the run (`recorded_by`), or None when no
step would. `diagnose` checks a rule's requirement before running it and reports ``{"rule",
"reason", "how"}`` instead of the silence that would read as "no problem"; the tab shows only
those with a step, since a notice nobody can act on is noise. Rules themselves stay free of
these checks.
"""

from tb_metricsdiag.diagnostics import _history
from tb_metricsdiag.run_records import Part

# Who recorded a run (`recorded_by`), from its run information's ``counting``.
KERAS, LIGHTNING, WRITER = "keras", "lightning", "writer"
_KERAS_COUNTING = ("prediction", "keras_metric")
_LIGHTNING_COUNTING_PREFIX = "lightning_"

_RECORD_THE_RUN = (
    "record the run with tb_metricsdiag's MetricsDiagCallback (Keras or Lightning) or"
    " MetricsDiagWriter"
)


def recorded_by(history):
    """`KERAS`, `LIGHTNING` or `WRITER`: which of the package's writers recorded the run
    (its run information's ``counting``); None when unknown (no run information, or another
    writer).
    """
    counting = (history.info or {}).get("counting")
    if counting in _KERAS_COUNTING:
        return KERAS
    if isinstance(counting, str) and counting.startswith(_LIGHTNING_COUNTING_PREFIX):
        return LIGHTNING
    if counting == WRITER:
        return WRITER
    return None


def unmet(reason, how=None, optional=False):
    """A requirement not met: ``{"reason", "how"}`` (``how`` None where no step would help),
    with ``"optional": True`` where what is missing is an input the user may choose not to give
    (slices): the run is then not less checked than it was asked to be.
    """
    missing = {"reason": reason, "how": how}
    if optional:
        missing["optional"] = True
    return missing


REPAIR_DAMAGED = (
    "restore the damaged event files from a good copy, or record the run again (see the"
    " recording_problem error)"
)
"""The step of a rule whose data was recorded but refused as damaged."""


def _damaged(history, what, kind, split=None, key=None):
    """The unmet requirement of a rule whose ``what`` (``"the loss curve is"``) was recorded but
    refused (`run_records.RunHistory.damage_of`), naming the tag, the steps and why; None when
    nothing that could have held it was refused.
    """
    damage = history.damage_of(kind, split, key)
    if damage is None:
        return None
    return unmet("%s damaged (%s)" % (what, damage.describe()), REPAIR_DAMAGED)


def _step(history, keras=None, lightning=None, writer=None, unknown=_RECORD_THE_RUN):
    """The step, for the writer that recorded the run, that records what a rule needs."""
    return {KERAS: keras, LIGHTNING: lightning, WRITER: writer}.get(recorded_by(history), unknown)


_LOG_LOSSES = {
    "keras": None,  # model.fit logs the loss whenever it trains
    "lightning": (
        "log the losses in the LightningModule: self.log('train_loss', loss, on_epoch=True)"
        " in training_step and self.log('val_loss', loss) in validation_step"
    ),
    "writer": "log the losses at each step: writer.add_logs({'loss': ..., 'val_loss': ...}, step)",
}


def needs_curves(*keys):
    """A requirement of the Keras log curves ``keys`` (``"loss"``, ``"val_loss"``)."""

    def requirement(history):
        for key in keys:
            if _history.curve(history, key) is None:
                return _missing_curve(history, key)
        return None

    return requirement


def _missing_curve(history, key):
    damaged = _damaged(history, "the %s curve is" % key, Part.CURVE, key=key)
    if damaged is not None:
        return damaged
    keras_validation = "pass validation_data=(x_val, y_val) to model.fit"
    if key.startswith("val_") and "validation" in history.confusions:
        if recorded_by(history) == KERAS:
            return unmet(
                "no %s curve: the validation data went to the callback only; pass it to"
                " model.fit(validation_data=...) as well" % key,
                keras_validation + " as well",
            )
        return unmet("no %s curve recorded" % key, _step(history, **_LOG_LOSSES))
    if key.startswith("val_") and recorded_by(history) == KERAS:
        return unmet("no %s curve: model.fit had no validation data" % key, keras_validation)
    return unmet("no %s curve recorded" % key, _step(history, **_LOG_LOSSES))


def needs_validation_counts(history):
    """The validation confusion matrices the callback writes."""
    if "validation" not in history.confusions:
        damaged = _damaged(history, "the validation counts are", Part.COUNTS, "validation")
        if damaged is not None:
            return damaged
        return unmet(
            "no validation counts recorded",
            _step(
                history,
                keras="pass validation_data=(x_val, y_val) to MetricsDiagCallback",
                lightning="give the Trainer validation data: trainer.fit(module, train_loader,"
                " val_loader)",
                writer="call writer.add_evaluation(y_val, y_score, step) (split 'validation',"
                " the default)",
            ),
        )
    return None


def needs_threshold_counts(history):
    """The validation threshold counts at the latest step."""
    evaluation = history.latest.get("validation")
    if evaluation is None:
        return (
            needs_validation_counts(history)
            or _damaged(
                history,
                "the latest validation counts are",
                Part.COUNTS,
                "validation",
            )
            or unmet("no validation counts at the latest epoch")
        )
    if evaluation.tp is None:
        return _damaged(
            history,
            "the validation threshold counts are",
            Part.THRESHOLD_COUNTS,
            "validation",
        ) or unmet("no validation threshold counts at the latest epoch")
    return None


def needs_loss_or_events(history):
    """A ``loss`` curve, or events of the callback (such as NaN predictions)."""
    if history.events:
        return None
    missing = needs_curves("loss")(history)
    if missing is None or missing["how"] == REPAIR_DAMAGED:
        return missing
    return _damaged(history, "the recorded events are", Part.EVENTS) or missing


def needs_run_info(history):
    """The callback's run information (model, loss, labels)."""
    if not history.info:
        damaged = _damaged(history, "the run information is", Part.RUN_INFO)
        if damaged is not None:
            return damaged
        return unmet(
            "no run information: the run was not written by MetricsDiagCallback",
            _RECORD_THE_RUN,
        )
    return None


def needs_overlap(history):
    """The train/validation duplicate check, which needs a train split."""
    if history.overlap is None:
        damaged = _damaged(history, "the train/validation duplicate check is", Part.OVERLAP)
        if damaged is not None:
            return damaged
        return unmet(
            "no train split: no train/validation duplicate check was recorded",
            _step(
                history,
                keras="pass train_data=(x_train, y_train) to MetricsDiagCallback (a sample of"
                " the training set will do)",
                lightning="pass MetricsDiagCallback(train_sample=10000) to hash that many"
                " training examples as they are trained on",
                writer="call writer.add_overlap(overlap.duplicate_overlap("
                "overlap.example_digests([x_train]), overlap.example_digests([x_val]))),"
                " overlap being tb_metricsdiag.core.overlap",
                unknown="pass train_data= to the Keras callback, train_sample= to the Lightning"
                " callback, or call writer.add_overlap(...) with a MetricsDiagWriter",
            ),
        )
    return None


def needs_label_distribution(history):
    """The label distribution of a split."""
    if not history.label_distribution:
        return _damaged(history, "the label distribution is", Part.LABEL_DISTRIBUTION) or unmet(
            "no label distribution recorded", _step(history)
        )
    return None


RECORD_EXAMPLES = (
    "record the run again with this tb-metricsdiag (format version 6): MetricsDiagWriter,"
    " the Keras callback in its default mode (callback.metric() cannot see the examples) and"
    " the Lightning and Transformers callbacks write example records by default, unless"
    " example_ids=False"
)
"""How to record example records (which examples fall where, label issues): the step of the
rule ``label_issues`` and of the routes' 404 for a run written without them."""


def needs_label_issues(history):
    """The validation label issues of the example records (single-label runs)."""
    recorded = history.label_issues.get("validation")
    if recorded:
        return None
    damaged = _damaged(history, "the validation label issues are", Part.LABEL_ISSUES, "validation")
    if damaged is not None:
        return damaged
    if history.multilabel:
        return unmet("label issues are found for single-label tasks only")
    missing = needs_validation_counts(history)
    if missing is not None:
        return missing
    return unmet("no label issues recorded: the run has no example records", RECORD_EXAMPLES)


def needs_validation_slices(history):
    """Slices of the validation split (rows recorded with ``groups=``) at its latest step."""
    if history.slices.get("validation"):
        return None
    missing = needs_validation_counts(history) or _damaged(
        history, "the validation slices are", Part.SLICES, "validation"
    )
    if missing is not None:
        return missing
    return unmet(
        "no validation slices recorded",
        _step(
            history,
            keras="pass groups={'country': values, ...} (one value per row of validation_data)"
            " to MetricsDiagCallback",
            lightning="return groups={'country': values, ...} (one value per row of the batch)"
            " in validation_step's dict, beside its scores and labels",
            writer="pass groups={'country': values, ...} (one value per row) to"
            " writer.add_evaluation(y_val, y_score, step, groups=...)",
            unknown="record the run with groups={key: one value per row} through"
            " MetricsDiagWriter or the Keras, Lightning or Transformers callback",
        ),
        optional=True,
    )


def all_of(*requirements):
    """A requirement met when every one of ``requirements`` is (the first unmet otherwise)."""

    def requirement(history):
        for each in requirements:
            missing = each(history)
            if missing is not None:
                return missing
        return None

    return requirement

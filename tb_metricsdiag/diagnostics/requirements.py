"""What each rule needs of a run, and why it could not run when the run lacks it.

A requirement is a small function of the `reader.RunHistory` returning None when the rule can
run, else the reason it cannot, in words a user can act on. `diagnose` checks a rule's
requirement before running it and reports the reason as ``{"rule", "reason"}`` instead of
the silence that would read as "no problem". Rules themselves stay free of these checks.
"""

from tb_metricsdiag.diagnostics import _history


def needs_curves(*keys):
    """A requirement of the Keras log curves ``keys`` (``"loss"``, ``"val_loss"``)."""

    def requirement(history):
        for key in keys:
            if _history.curve(history, key) is None:
                return _missing_curve_reason(history, key)
        return None

    return requirement


def _missing_curve_reason(history, key):
    if key.startswith("val_") and "validation" in history.confusions:
        return (
            "no %s curve: the validation data went to the callback only; pass it to"
            " model.fit(validation_data=...) as well" % key
        )
    if key.startswith("val_"):
        return "no %s curve: model.fit had no validation data" % key
    return "no %s curve recorded" % key


def needs_validation_counts(history):
    """The validation confusion matrices the callback writes."""
    if "validation" not in history.confusions:
        return "no validation counts: the callback got no validation data"
    return None


def needs_threshold_counts(history):
    """The validation threshold counts at the latest step."""
    evaluation = history.latest.get("validation")
    if evaluation is None:
        return needs_validation_counts(history) or "no validation counts at the latest epoch"
    if evaluation.tp is None:
        return "no validation threshold counts at the latest epoch"
    return None


def needs_loss_or_events(history):
    """A ``loss`` curve, or events of the callback (such as NaN predictions)."""
    return None if history.events else needs_curves("loss")(history)


def needs_run_info(history):
    """The callback's run information (model, loss, labels)."""
    if not history.info:
        return "no run information: the run was not written by MetricsDiagCallback"
    return None


def needs_overlap(history):
    """The train/validation duplicate check, which needs a train split."""
    if history.overlap is None:
        return (
            "no train split: the callback got no train_data, so no train/validation duplicate"
            " check ran"
        )
    return None


def needs_label_distribution(history):
    """The label distribution of a split."""
    if not history.label_distribution:
        return "no label distribution recorded"
    return None


def all_of(*requirements):
    """A requirement met when every one of ``requirements`` is (the first reason otherwise)."""

    def requirement(history):
        for each in requirements:
            reason = each(history)
            if reason is not None:
                return reason
        return None

    return requirement

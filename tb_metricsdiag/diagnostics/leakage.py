"""Rules on leaked validation data: train/validation overlap, suspiciously good validation.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

import numpy as np

from tb_metricsdiag.core import metrics
from tb_metricsdiag.diagnostics import _history
from tb_metricsdiag.diagnostics.findings import finding

OVERLAP_WARNING_SHARE = 0.01
"""Share of validation examples duplicated in training from which the overlap is a warning."""


OVERLAP_ERROR_SHARE = 0.05
"""Share from which it is an error (deepchecks' default condition fails above 5 %)."""


SUSPICIOUS_NEAR_PERFECT_ACCURACY = 0.99
"""Validation accuracy at the first epoch that counts as near perfect."""


SUSPICIOUS_MIN_EPOCHS = 3
"""Epochs needed before "validation better than training throughout" is judged."""


SUSPICIOUS_ACCURACY_GAP = 0.05
"""Validation accuracy above the (inference-mode) training accuracy by this much at every
epoch is suspicious. Both come from the callback's own predictions at the epoch's end, so
dropout and the within-epoch averaging of Keras's training metrics play no part."""


SUSPICIOUS_LOSS_RATIO = 0.8
"""Without training-side counts: validation loss below 80 % of the training loss at every
epoch after the first. Keras's training loss is averaged over the epoch with dropout active,
so only a large, lasting gap counts, and the first epoch is left out."""


def check_train_val_overlap(history):
    """Validation examples that also occur, byte for byte, in the training data."""
    overlap = history.overlap or {}
    share = _history.duplicate_share(history)
    duplicates = overlap.get("duplicates")
    if share is None or not duplicates:
        return []
    if share >= OVERLAP_ERROR_SHARE:
        severity = "error"
    elif share >= OVERLAP_WARNING_SHARE:
        severity = "warning"
    else:
        severity = "info"
    return [
        finding(
            "train_val_overlap",
            severity,
            title="%.1f %% of validation examples also occur in the training data" % (100 * share),
            detail="%d of %d validation examples are byte-identical to one of the %d training examples "
            "checked; validation figures overstate how the model does on new data. When "
            "only a sample of the training set was checked, the true share can be higher."
            % (duplicates, overlap.get("validation_examples", 0), overlap.get("train_examples", 0)),
            step=None,
            evidence={
                "duplicates": duplicates,
                "duplicate_share": share,
                "validation_examples": overlap.get("validation_examples"),
                "train_examples": overlap.get("train_examples"),
                "warning_share": OVERLAP_WARNING_SHARE,
                "error_share": OVERLAP_ERROR_SHARE,
            },
            suggestion="Remove duplicates before splitting (or split by group, e.g. patient or source), "
            "then re-validate.",
        )
    ]


def check_suspicious_validation(history):
    """Validation near perfect from the first epoch, or clearly better than training at every
    epoch, while no train/validation overlap explains it.
    """
    share = _history.duplicate_share(history)
    if share is not None and share >= OVERLAP_WARNING_SHARE:
        return []  # `train_val_overlap` already explains it
    evidence = {"duplicate_share": share}
    validation = _history.confusion_series(history, "validation")
    if validation is not None:
        first_step, first_matrix = validation[0][0], validation[1][0]
        first_accuracy = metrics.accuracy(first_matrix)
        if first_accuracy >= SUSPICIOUS_NEAR_PERFECT_ACCURACY:
            return [
                finding(
                    "suspicious_validation",
                    "warning",
                    title="Validation accuracy is near perfect from the first epoch",
                    detail="Validation accuracy was %.2f %% already after epoch %d. Check the validation "
                    "data for leaked labels, target-derived features or duplicates of training "
                    "examples." % (100 * first_accuracy, first_step),
                    step=first_step,
                    evidence=dict(
                        evidence,
                        first_epoch=first_step,
                        first_val_accuracy=first_accuracy,
                        near_perfect=SUSPICIOUS_NEAR_PERFECT_ACCURACY,
                    ),
                    suggestion="Look for a feature that encodes the label and for shared entities between "
                    "the splits.",
                )
            ]
    gap = _validation_better_throughout(history)
    if gap is None:
        return []
    basis, steps, train_values, val_values = gap
    evidence.update(
        basis=basis,
        epochs=len(steps),
        first_epoch=steps[0],
        latest_epoch=steps[-1],
        **{"train_" + basis: train_values[-1], "val_" + basis: val_values[-1]},
    )
    return [
        finding(
            "suspicious_validation",
            "warning",
            title="Validation is clearly better than training at every epoch",
            detail="At each of %d epochs the validation %s (now %.4g) beat the training %s (now %.4g) "
            "by a wide margin. The splits may differ in difficulty or share information."
            % (len(steps), basis, val_values[-1], basis, train_values[-1]),
            step=None,
            evidence=evidence,
            suggestion="Check that both splits come from the same distribution and that no entity is "
            "shared between them.",
        )
    ]


def _validation_better_throughout(history):
    """``(basis, steps, train, validation)`` when validation beats training at every epoch."""
    train = _history.confusion_series(history, "train")
    validation = _history.confusion_series(history, "validation")
    if train is not None and validation is not None:
        val_by_step = dict(zip(*validation))
        steps = [step for step in train[0] if step in val_by_step]
        if len(steps) < SUSPICIOUS_MIN_EPOCHS:
            return None
        train_acc = metrics.accuracies([m for s, m in zip(*train) if s in val_by_step])
        val_acc = metrics.accuracies([val_by_step[s] for s in steps])
        if np.all(val_acc > train_acc + SUSPICIOUS_ACCURACY_GAP):
            return "accuracy", steps, train_acc, val_acc
        return None
    aligned = _history.aligned(history, "loss", "val_loss")
    if aligned is None or aligned[0].size < SUSPICIOUS_MIN_EPOCHS + 1:
        return None
    steps, train_loss, val_loss = (values[1:] for values in aligned)
    if np.all(val_loss < SUSPICIOUS_LOSS_RATIO * train_loss):
        return "loss", list(steps), train_loss, val_loss
    return None

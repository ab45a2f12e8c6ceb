"""Rules on the training curves: overfitting, a model that does not learn, divergence.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

import numpy as np

from tb_metricsdiag.core import events, metrics
from tb_metricsdiag.diagnostics import _history
from tb_metricsdiag.diagnostics.findings import finding

OVERFIT_PATIENCE = 3
"""Epochs after the best validation loss without an improvement before overfitting is called
(Keras ``EarlyStopping(patience=3)``; losslint asks for 3 rising evaluations)."""


OVERFIT_MIN_DELTA = 0.01
"""Relative improvement of the validation loss (1 %) that counts as a new best epoch, like
``EarlyStopping(min_delta=...)`` but relative, so it fits any loss scale."""


OVERFIT_MIN_GENERALIZATION_LOSS = 5.0
"""Prechelt's GL = 100 * (val_loss / best val_loss - 1), here of the mean validation loss over
the last `OVERFIT_PATIENCE` epochs, must reach 5 (%): a sustained rise, not one noisy epoch."""


OVERFIT_MIN_TRAIN_IMPROVEMENT = 0.01
"""Training loss must have fallen by at least 1 % since the best epoch (losslint's figure):
when both losses rise, the run is diverging or unstable, not overfitting."""


NOT_LEARNING_MIN_EPOCHS = 3
"""Epochs needed before a run is called not learning."""


NOT_LEARNING_MAX_DECREASE = 0.01
"""The training loss counts as flat when it fell by less than 1 % over the second half of
the run (losslint's stagnation figure)."""


NOT_LEARNING_CHANCE_MARGIN = 0.05
"""Balanced accuracy within 0.05 of chance (1 / classes) counts as chance level. Balanced
accuracy is used because it is at chance both for random guesses and for always predicting
the majority class, whatever the class balance."""


DIVERGENCE_GROWTH_FACTOR = 3.0
"""Training loss that ends above 3 times its lowest value has grown explosively."""


DIVERGENCE_LOSS_CURVES = ("loss", "val_loss")


DIVERGENCE_CHANCE_FACTOR = 10.0
"""A cross-entropy loss above 10 times the chance level ln(C) (the loss of predicting 1 / C
for every class) is far worse than guessing: the weights have blown up, almost always a
learning rate too high. Keras's cross-entropy of a confidently wrong prediction is bounded
by -ln(1e-7) = 16.1, so a loss above that can only come from the weights, never the data."""


CROSS_ENTROPY = "crossentropy"
"""Loss names (lower case, without ``_``) containing this are cross-entropies."""


def chance_loss(history):
    """ln(C), the cross-entropy of predicting 1 / C for each of the C classes, when the run
    is known to use a cross-entropy loss (its run information, or no information: a
    classifier) and C is known; else None.
    """
    info = history.info or {}
    name = str((info.get("loss") or {}).get("name") or CROSS_ENTROPY).lower().replace("_", "")
    if CROSS_ENTROPY not in name:
        return None
    latest = _history.latest_totals(history)
    num_classes = (info.get("labels") or {}).get("num_classes")
    if latest is not None:
        num_classes = latest[1].num_classes
    if not isinstance(num_classes, int) or num_classes < 2:
        return None
    return float(np.log(num_classes))


def loss_far_above_chance(history):
    """``(step, loss, chance)`` of the first epoch whose finite training loss is above
    `DIVERGENCE_CHANCE_FACTOR` x `chance_loss` and that stays above it to the end, else None.
    """
    chance = chance_loss(history)
    loss = _history.curve(history, "loss")
    if chance is None or loss is None:
        return None
    steps, values = loss
    finite = np.isfinite(values)
    if not finite.any() or not values[finite][-1] > DIVERGENCE_CHANCE_FACTOR * chance:
        return None
    above = finite & (values > DIVERGENCE_CHANCE_FACTOR * chance)
    # The first epoch of the last unbroken stretch above the bound.
    below = np.flatnonzero(finite & ~above)
    first = int(below[-1]) + 1 if below.size else int(np.argmax(above))
    return int(steps[first]), float(values[first]), chance


def at_chance(history):
    """True when the latest validation balanced accuracy is within
    `NOT_LEARNING_CHANCE_MARGIN` of chance (1 / C); False when above it or unknown.
    """
    latest = _history.latest_totals(history)
    if latest is None:
        return False
    totals = latest[1]
    balanced = metrics.balanced_accuracy(totals)
    return bool(balanced <= 1.0 / totals.num_classes + NOT_LEARNING_CHANCE_MARGIN)


def best_epoch_index(val_loss):
    """Index of the best validation loss, as ``EarlyStopping(min_delta=...,
    restore_best_weights=True)`` would restore it: a later epoch is better only when it
    improves on the best so far by more than `OVERFIT_MIN_DELTA` (relative). None when there
    is no finite value.

    The one definition of "the best epoch": the overfitting rule and the routes use it.
    """
    val_loss = np.asarray(val_loss, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(val_loss))
    if finite.size == 0:
        return None
    best = int(finite[0])
    for i in finite[1:]:
        if val_loss[i] < val_loss[best] - OVERFIT_MIN_DELTA * abs(val_loss[best]):
            best = int(i)
    return best


def best_epoch(history):
    """The step of the best validation loss (`best_epoch_index`), or None without one."""
    curve = _history.curve(history, "val_loss")
    if curve is None:
        return None
    index = best_epoch_index(curve[1])
    return None if index is None else int(curve[0][index])


def check_overfitting(history):
    """Validation loss rising for `OVERFIT_PATIENCE` epochs since its best while training loss
    keeps falling.

    The best epoch is the one ``EarlyStopping(patience, min_delta, restore_best_weights=True)``
    would restore, with `OVERFIT_MIN_DELTA` as a relative min_delta. Never called while the
    validation balanced accuracy is at chance (`at_chance`): a model no better than guessing
    has memorised nothing; `not_learning` or `divergence` say what is wrong.
    """
    if at_chance(history):
        return []
    aligned = _history.aligned(history, "loss", "val_loss")
    if aligned is None or aligned[0].size < OVERFIT_PATIENCE + 1:
        return []
    steps, train_loss, val_loss = aligned
    best = best_epoch_index(val_loss)
    epochs_since_best = val_loss.size - 1 - best
    if epochs_since_best < OVERFIT_PATIENCE or val_loss[best] <= 0:
        return []
    recent_val_loss = float(val_loss[-OVERFIT_PATIENCE:].mean())
    sustained_gl = 100.0 * (recent_val_loss / val_loss[best] - 1.0)
    train_change = (
        (train_loss[-1] - train_loss[best]) / abs(train_loss[best]) if train_loss[best] else 0.0
    )
    if (
        sustained_gl < OVERFIT_MIN_GENERALIZATION_LOSS
        or train_change > -OVERFIT_MIN_TRAIN_IMPROVEMENT
    ):
        return []
    rising = np.nonzero(val_loss[best + 1 :] > val_loss[best] * (1.0 + OVERFIT_MIN_DELTA))[0]
    onset = best + 1 + int(rising[0]) if rising.size else best + 1
    latest_gl = 100.0 * (val_loss[-1] / val_loss[best] - 1.0)
    return [
        finding(
            "overfitting",
            "warning",
            title="Validation loss has risen for %d epochs while training loss fell"
            % epochs_since_best,
            detail="Validation loss was lowest at epoch %d (%.4g) and is now %.4g (GL %.1f %%), while "
            "training loss went from %.4g to %.4g. The model is memorising the training data."
            % (
                steps[best],
                val_loss[best],
                val_loss[-1],
                latest_gl,
                train_loss[best],
                train_loss[-1],
            ),
            step=int(steps[onset]),
            evidence={
                "best_epoch": steps[best],
                "onset_epoch": steps[onset],
                "latest_epoch": steps[-1],
                "epochs_since_best": epochs_since_best,
                "best_val_loss": val_loss[best],
                "latest_val_loss": val_loss[-1],
                "generalization_loss": latest_gl,
                "recent_generalization_loss": sustained_gl,
                "train_loss_at_best": train_loss[best],
                "latest_train_loss": train_loss[-1],
                "train_loss_change": train_change,
                "patience": OVERFIT_PATIENCE,
                "min_delta": OVERFIT_MIN_DELTA,
            },
            suggestion="Keep the weights of epoch %d: EarlyStopping(monitor='val_loss', patience=%d, "
            "restore_best_weights=True); or add regularisation / data."
            % (steps[best], OVERFIT_PATIENCE),
        )
    ]


def check_not_learning(history):
    """Training loss flat over the second half of the run and balanced accuracy at chance."""
    loss = _history.curve(history, "loss")
    latest = _history.latest_totals(history)
    if loss is None or latest is None or loss[0].size < NOT_LEARNING_MIN_EPOCHS:
        return []
    steps, values = loss
    if not np.all(np.isfinite(values)) or loss_far_above_chance(history) is not None:
        return []  # `divergence` reports it, with the advice for a loss that blew up
    half = values[(values.size - 1) // 2 :]
    decrease = (half[0] - half.min()) / abs(half[0]) if half[0] else 0.0
    step, totals = latest
    balanced = metrics.balanced_accuracy(totals)
    chance = 1.0 / totals.num_classes
    if decrease >= NOT_LEARNING_MAX_DECREASE or not balanced <= chance + NOT_LEARNING_CHANCE_MARGIN:
        return []
    return [
        finding(
            "not_learning",
            "error",
            title="The model is not learning",
            detail="Training loss went from %.4g to %.4g (%.2f %% lower over the second half of the "
            "run) and validation balanced accuracy is %.2f %%, chance being %.2f %%."
            % (values[0], values[-1], 100 * decrease, 100 * balanced, 100 * chance),
            step=None,
            evidence={
                "first_loss": values[0],
                "latest_loss": values[-1],
                "second_half_loss_decrease": decrease,
                "accuracy": metrics.accuracy(totals),
                "balanced_accuracy": balanced,
                "chance_level": chance,
                "epochs": steps.size,
                "evaluated_epoch": step,
            },
            suggestion="Check the learning rate (not 0, not tiny), that labels match their inputs, and "
            "that inputs are scaled; try overfitting a small batch first.",
        )
    ]


def check_divergence(history):
    """Loss NaN or infinite, predictions NaN or infinite, training loss grown explosively, or
    a cross-entropy far above chance level (`loss_far_above_chance`).

    Reports the first bad epoch across all four signs.
    """
    signs = []
    first_nonfinite = {}  # loss curve -> first epoch with a NaN or infinite value
    for key in DIVERGENCE_LOSS_CURVES:
        curve = _history.curve(history, key)
        if curve is not None and not np.all(np.isfinite(curve[1])):
            first_nonfinite[key] = int(curve[0][np.argmin(np.isfinite(curve[1]))])
    if first_nonfinite:
        signs.append(
            (
                min(first_nonfinite.values()),
                "nonfinite_loss",
                {"first_nonfinite_epoch": first_nonfinite},
            )
        )
    nonfinite_events = [e for e in history.events if e.get("kind") == events.NONFINITE_PREDICTIONS]
    if nonfinite_events:
        first = min(nonfinite_events, key=lambda e: e.get("step", 0))
        signs.append(
            (
                int(first.get("step", 0)),
                "nonfinite_predictions",
                {"nonfinite_predictions": first.get("count")},
            )
        )
    loss = _history.curve(history, "loss")
    if loss is not None:
        steps, values = loss
        finite = np.isfinite(values)
        if finite.sum() >= 2:
            running_min = np.minimum.accumulate(np.where(finite, values, np.inf))
            lowest = running_min[-1]
            latest = values[finite][-1]
            if lowest > 0 and latest > DIVERGENCE_GROWTH_FACTOR * lowest:
                grown = np.nonzero(finite & (values > DIVERGENCE_GROWTH_FACTOR * running_min))[0]
                signs.append(
                    (
                        int(steps[grown[0]]),
                        "explosive_growth",
                        {"lowest_loss": lowest, "latest_finite_loss": latest},
                    )
                )
    far = loss_far_above_chance(history)
    if far is not None:
        step, value, chance = far
        signs.append(
            (
                step,
                "loss_far_above_chance",
                {
                    "loss_above_chance": value,
                    "chance_loss": chance,
                    "chance_factor": DIVERGENCE_CHANCE_FACTOR,
                    "latest_loss": float(_history.curve(history, "loss")[1][-1]),
                },
            )
        )
    if not signs:
        return []
    first_step = min(step for step, _, _ in signs)
    evidence = {
        "first_bad_epoch": first_step,
        "signs": sorted({kind for _, kind, _ in signs}),
        "growth_factor": DIVERGENCE_GROWTH_FACTOR,
    }
    for _, _, figures in signs:
        evidence.update(figures)
    return [
        finding(
            "divergence",
            "error",
            title="Training diverged",
            detail="From epoch %d on the run shows %s."
            % (first_step, ", ".join(kind.replace("_", " ") for kind in evidence["signs"])),
            step=first_step,
            evidence=evidence,
            suggestion="The learning rate is most likely too high: lower it (e.g. 10x), clip gradients "
            "(clipnorm=1.0) and check the inputs for NaN or huge values.",
        )
    ]

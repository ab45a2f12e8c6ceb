"""Rules that read a training run's history and say what is wrong with the classifier.

Pure Python and NumPy: no TensorFlow, no HTTP. `diagnose` takes the `reader.RunHistory` of
one training run and returns its findings, each a dict::

    {"rule", "severity", "title", "detail", "step", "evidence", "suggestion"}

``severity`` is ``"info"``, ``"warning"`` or ``"error"``; ``step`` is the 0-based epoch the
finding refers to, or None for the run as a whole; ``evidence`` holds the figures behind the
finding (JSON-safe: NaN and infinity become None).

Each rule is one small function. A rule that needs data the run does not hold (counts, the
callback's run information, a curve) returns nothing: a logdir written by
``keras.callbacks.TensorBoard`` alone gets only the curve rules. The thresholds are module
constants, documented here and in ``docs/diagnostics.md``; they are chosen so that a healthy
run (both losses falling, every class recalled well) gets no warning and no error.
"""

import math
import re

import numpy as np

from tb_metricsdiag import metrics
from tb_metricsdiag.json_values import to_json_value

SEVERITIES = ("error", "warning", "info")  # worst first

# -- overfitting (Keras EarlyStopping semantics plus Prechelt's generalisation loss) --------

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

# -- train/validation overlap (deepchecks TrainTestSamplesMix allows up to 5 %) ------------

OVERLAP_WARNING_SHARE = 0.01
"""Share of validation examples duplicated in training from which the overlap is a warning."""

OVERLAP_ERROR_SHARE = 0.05
"""Share from which it is an error (deepchecks' default condition fails above 5 %)."""

# -- suspicious validation ---------------------------------------------------------------

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

# -- accuracy paradox ----------------------------------------------------------------------

PARADOX_MIN_ERROR_REDUCTION = 0.1
"""Accuracy is "no better" than the majority-class baseline when it removes less than 10 % of
the baseline's errors: (accuracy - baseline) / (1 - baseline) < 0.1. Measured against the
baseline's error rate, since at 98 % majority a useful model may add only a point or two."""

PARADOX_HIGH_ACCURACY = 0.9
"""Accuracy from which a badly recalled class is hidden by a good-looking headline figure."""

PARADOX_LOW_RECALL = 0.5
"""Recall below which a class counts as mostly missed."""

PARADOX_MIN_SUPPORT = 5
"""Validation examples a class needs before its recall is judged (fewer is noise)."""

# -- not learning --------------------------------------------------------------------------

NOT_LEARNING_MIN_EPOCHS = 3
"""Epochs needed before a run is called not learning."""

NOT_LEARNING_MAX_DECREASE = 0.01
"""The training loss counts as flat when it fell by less than 1 % over the second half of
the run (losslint's stagnation figure)."""

NOT_LEARNING_CHANCE_MARGIN = 0.05
"""Balanced accuracy within 0.05 of chance (1 / classes) counts as chance level. Balanced
accuracy is used because it is at chance both for random guesses and for always predicting
the majority class, whatever the class balance."""

# -- divergence ----------------------------------------------------------------------------

DIVERGENCE_GROWTH_FACTOR = 3.0
"""Training loss that ends above 3 times its lowest value has grown explosively."""

DIVERGENCE_LOSS_CURVES = ("loss", "val_loss")

# -- loss mismatch -------------------------------------------------------------------------

REGRESSION_LOSSES = frozenset(
    {
        "mse", "meansquarederror", "mae", "meanabsoluteerror", "mape",
        "meanabsolutepercentageerror", "msle", "meansquaredlogarithmicerror", "huber",
        "huberloss", "logcosh", "logcoshloss",
    }
)
SPARSE_CATEGORICAL_LOSSES = frozenset({"sparsecategoricalcrossentropy"})
CATEGORICAL_LOSSES = frozenset({"categoricalcrossentropy", "categoricalfocalcrossentropy"})
BINARY_LOSSES = frozenset({"binarycrossentropy", "binaryfocalcrossentropy"})
PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})

# -- info-level advice ---------------------------------------------------------------------

IMBALANCE_RATIO = 4.0
"""Largest over smallest class count from which labels count as imbalanced (80/20 binary)."""

ACCURACY_METRICS = frozenset(
    {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"}
)
NON_METRIC_LOG_KEYS = frozenset({"loss", "learning_rate", "lr"})

DEFAULT_THRESHOLD = 0.5
THRESHOLD_MIN_DISTANCE = 0.2
"""The best-F1 threshold is "far" from 0.5 when it is at least 0.2 away from it ..."""

THRESHOLD_MIN_F1_GAIN = 0.05
"""... and its F1 beats by at least 0.05 both the F1 at 0.5 and the F1 of calling every
example positive (a threshold of 0 wins F1 on a model that separates nothing)."""

THRESHOLD_MIN_POSITIVES = 5
"""Positive validation examples needed before a threshold is recommended."""

RECORDING_EVENT_KINDS = ("callback_error", "bad_batch")
MAX_MESSAGES_IN_EVIDENCE = 5


# -- helpers ------------------------------------------------------------------------------


def finding(rule, severity, title, detail, step, evidence, suggestion):
    """One finding as every rule (and the CLI, for a run it cannot read) reports it."""
    return {
        "rule": rule,
        "severity": severity,
        "title": title,
        "detail": detail,
        "step": None if step is None else int(step),
        "evidence": to_json_value(evidence),
        "suggestion": suggestion,
    }


def _curve(history, key):
    """``(steps, values)`` of a Keras log curve, or None when the run has none."""
    curve = history.curves.get(key)
    if curve is None or len(curve[0]) == 0:
        return None
    return np.asarray(curve[0], dtype=np.int64), np.asarray(curve[1], dtype=np.float64)


def _aligned(history, first_key, second_key):
    """Steps where both curves have a finite value, and the two value arrays there."""
    first, second = _curve(history, first_key), _curve(history, second_key)
    if first is None or second is None:
        return None
    steps, first_index, second_index = np.intersect1d(first[0], second[0], return_indices=True)
    a, b = first[1][first_index], second[1][second_index]
    finite = np.isfinite(a) & np.isfinite(b)
    return steps[finite], a[finite], b[finite]


def _confusion_series(history, split):
    """``(steps, matrices)`` of a split's confusion matrices, ascending, or None."""
    by_step = history.confusions.get(split) or {}
    if not by_step:
        return None
    steps = sorted(by_step)
    return steps, [np.asarray(by_step[step]) for step in steps]


def _latest_confusion(history, split="validation"):
    series = _confusion_series(history, split)
    if series is None:
        return None
    steps, matrices = series
    return steps[-1], matrices[-1]


def _class_names(history, num_classes):
    names = list(history.class_names or [])
    if len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return names


def _normalized_loss_name(name):
    return re.sub(r"[^a-z0-9]", "", str(name or "").lower())


def _duplicate_share(history):
    overlap = history.overlap or {}
    share = overlap.get("duplicate_share")
    return float(share) if isinstance(share, (int, float)) else None


# -- rules ----------------------------------------------------------------------------------


def check_overfitting(history):
    """Validation loss rising for `OVERFIT_PATIENCE` epochs since its best while training loss
    keeps falling.

    The best epoch is the one ``EarlyStopping(patience, min_delta, restore_best_weights=True)``
    would restore, with `OVERFIT_MIN_DELTA` as a relative min_delta.
    """
    aligned = _aligned(history, "loss", "val_loss")
    if aligned is None or aligned[0].size < OVERFIT_PATIENCE + 1:
        return []
    steps, train_loss, val_loss = aligned
    best = 0
    for i in range(1, val_loss.size):
        if val_loss[i] < val_loss[best] - OVERFIT_MIN_DELTA * abs(val_loss[best]):
            best = i
    epochs_since_best = val_loss.size - 1 - best
    if epochs_since_best < OVERFIT_PATIENCE or val_loss[best] <= 0:
        return []
    recent_val_loss = float(val_loss[-OVERFIT_PATIENCE:].mean())
    sustained_gl = 100.0 * (recent_val_loss / val_loss[best] - 1.0)
    train_change = (train_loss[-1] - train_loss[best]) / abs(train_loss[best]) if train_loss[best] else 0.0
    if sustained_gl < OVERFIT_MIN_GENERALIZATION_LOSS or train_change > -OVERFIT_MIN_TRAIN_IMPROVEMENT:
        return []
    rising = np.nonzero(val_loss[best + 1 :] > val_loss[best] * (1.0 + OVERFIT_MIN_DELTA))[0]
    onset = best + 1 + int(rising[0]) if rising.size else best + 1
    latest_gl = 100.0 * (val_loss[-1] / val_loss[best] - 1.0)
    return [
        finding(
            "overfitting",
            "warning",
            "Validation loss has risen for %d epochs while training loss fell" % epochs_since_best,
            "Validation loss was lowest at epoch %d (%.4g) and is now %.4g (GL %.1f %%), while "
            "training loss went from %.4g to %.4g. The model is memorising the training data."
            % (steps[best], val_loss[best], val_loss[-1], latest_gl, train_loss[best], train_loss[-1]),
            int(steps[onset]),
            {
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
            "Keep the weights of epoch %d: EarlyStopping(monitor='val_loss', patience=%d, "
            "restore_best_weights=True); or add regularisation / data." % (steps[best], OVERFIT_PATIENCE),
        )
    ]


def check_train_val_overlap(history):
    """Validation examples that also occur, byte for byte, in the training data."""
    overlap = history.overlap or {}
    share = _duplicate_share(history)
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
            "%.1f %% of validation examples also occur in the training data" % (100 * share),
            "%d of %d validation examples are byte-identical to one of the %d training examples "
            "checked; validation figures overstate how the model does on new data. When "
            "train_data was a sample of the training set, the true share can be higher."
            % (duplicates, overlap.get("validation_examples", 0), overlap.get("train_examples", 0)),
            None,
            {
                "duplicates": duplicates,
                "duplicate_share": share,
                "validation_examples": overlap.get("validation_examples"),
                "train_examples": overlap.get("train_examples"),
                "warning_share": OVERLAP_WARNING_SHARE,
                "error_share": OVERLAP_ERROR_SHARE,
            },
            "Remove duplicates before splitting (or split by group, e.g. patient or source), "
            "then re-validate.",
        )
    ]


def check_suspicious_validation(history):
    """Validation near perfect from the first epoch, or clearly better than training at every
    epoch, while no train/validation overlap explains it."""
    share = _duplicate_share(history)
    if share is not None and share >= OVERLAP_WARNING_SHARE:
        return []  # `train_val_overlap` already explains it
    evidence = {"duplicate_share": share}
    validation = _confusion_series(history, "validation")
    if validation is not None:
        first_step, first_matrix = validation[0][0], validation[1][0]
        first_accuracy = metrics.accuracy(first_matrix)
        if first_accuracy >= SUSPICIOUS_NEAR_PERFECT_ACCURACY:
            return [
                finding(
                    "suspicious_validation",
                    "warning",
                    "Validation accuracy is near perfect from the first epoch",
                    "Validation accuracy was %.2f %% already after epoch %d. Check the validation "
                    "data for leaked labels, target-derived features or duplicates of training "
                    "examples." % (100 * first_accuracy, first_step),
                    first_step,
                    dict(evidence, first_epoch=first_step, first_val_accuracy=first_accuracy,
                         near_perfect=SUSPICIOUS_NEAR_PERFECT_ACCURACY),
                    "Look for a feature that encodes the label and for shared entities between "
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
            "Validation is clearly better than training at every epoch",
            "At each of %d epochs the validation %s (now %.4g) beat the training %s (now %.4g) "
            "by a wide margin. The splits may differ in difficulty or share information."
            % (len(steps), basis, val_values[-1], basis, train_values[-1]),
            None,
            evidence,
            "Check that both splits come from the same distribution and that no entity is "
            "shared between them.",
        )
    ]


def _validation_better_throughout(history):
    """``(basis, steps, train, validation)`` when validation beats training at every epoch."""
    train = _confusion_series(history, "train")
    validation = _confusion_series(history, "validation")
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
    aligned = _aligned(history, "loss", "val_loss")
    if aligned is None or aligned[0].size < SUSPICIOUS_MIN_EPOCHS + 1:
        return None
    steps, train_loss, val_loss = (values[1:] for values in aligned)
    if np.all(val_loss < SUSPICIOUS_LOSS_RATIO * train_loss):
        return "loss", list(steps), train_loss, val_loss
    return None


def check_accuracy_paradox(history):
    """Accuracy no better than the majority baseline on imbalanced labels (balanced ones are
    left to `check_not_learning`), or high accuracy hiding a class with very low recall (the
    fraud case: 98 % accuracy, 12 % fraud recall)."""
    latest = _latest_confusion(history)
    if latest is None:
        return []
    step, confusion = latest
    accuracy = metrics.accuracy(confusion)
    baseline = metrics.majority_baseline_accuracy(confusion)
    if math.isnan(accuracy):
        return []
    per_class = metrics.per_class_metrics(confusion)
    judged = (per_class["support"] >= PARADOX_MIN_SUPPORT) & ~np.isnan(per_class["recall"])
    if not judged.any():
        return []
    recalls = np.where(judged, per_class["recall"], np.inf)
    worst = int(np.argmin(recalls))
    names = _class_names(history, confusion.shape[0])
    evidence = {
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "worst_class": names[worst],
        "worst_class_index": worst,
        "worst_class_recall": per_class["recall"][worst],
        "worst_class_support": per_class["support"][worst],
        "num_classes": confusion.shape[0],
    }
    support = per_class["support"]
    imbalanced = support.max() >= IMBALANCE_RATIO * max(support.min(), 1)
    error_reduction = (accuracy - baseline) / (1.0 - baseline) if baseline < 1 else 0.0
    evidence["error_reduction_vs_baseline"] = error_reduction
    if imbalanced and error_reduction < PARADOX_MIN_ERROR_REDUCTION:
        title = "Accuracy is no better than always predicting the majority class"
        detail = (
            "Validation accuracy %.2f %% vs %.2f %% for always predicting the most frequent "
            "class; balanced accuracy is %.2f %%."
            % (100 * accuracy, 100 * baseline, 100 * evidence["balanced_accuracy"])
        )
    elif accuracy >= PARADOX_HIGH_ACCURACY and recalls[worst] < PARADOX_LOW_RECALL:
        title = "High accuracy hides a class with low recall"
        detail = (
            "Validation accuracy is %.2f %%, but only %.1f %% of class %r (%d examples) are "
            "found; balanced accuracy is %.2f %%."
            % (100 * accuracy, 100 * recalls[worst], names[worst], per_class["support"][worst],
               100 * evidence["balanced_accuracy"])
        )
    else:
        return []
    return [
        finding(
            "accuracy_paradox",
            "warning",
            title,
            detail,
            step,
            evidence,
            "Judge the model by per-class recall, balanced accuracy or PR-AUC; rebalance with "
            "class_weight or resampling, or move the decision threshold.",
        )
    ]


def check_not_learning(history):
    """Training loss flat over the second half of the run and balanced accuracy at chance."""
    loss = _curve(history, "loss")
    latest = _latest_confusion(history)
    if loss is None or latest is None or loss[0].size < NOT_LEARNING_MIN_EPOCHS:
        return []
    steps, values = loss
    if not np.all(np.isfinite(values)):
        return []  # `divergence` reports it
    half = values[(values.size - 1) // 2 :]
    decrease = (half[0] - half.min()) / abs(half[0]) if half[0] else 0.0
    step, confusion = latest
    balanced = metrics.balanced_accuracy(confusion)
    chance = 1.0 / confusion.shape[0]
    if decrease >= NOT_LEARNING_MAX_DECREASE or not balanced <= chance + NOT_LEARNING_CHANCE_MARGIN:
        return []
    return [
        finding(
            "not_learning",
            "error",
            "The model is not learning",
            "Training loss went from %.4g to %.4g (%.2f %% lower over the second half of the "
            "run) and validation balanced accuracy is %.2f %%, chance being %.2f %%."
            % (values[0], values[-1], 100 * decrease, 100 * balanced, 100 * chance),
            None,
            {
                "first_loss": values[0],
                "latest_loss": values[-1],
                "second_half_loss_decrease": decrease,
                "accuracy": metrics.accuracy(confusion),
                "balanced_accuracy": balanced,
                "chance_level": chance,
                "epochs": steps.size,
                "evaluated_epoch": step,
            },
            "Check the learning rate (not 0, not tiny), that labels match their inputs, and "
            "that inputs are scaled; try overfitting a small batch first.",
        )
    ]


def check_divergence(history):
    """Loss NaN or infinite, predictions NaN or infinite, or training loss grown explosively.

    Reports the first bad epoch across all three signs.
    """
    signs = []
    first_nonfinite = {}  # loss curve -> first epoch with a NaN or infinite value
    for key in DIVERGENCE_LOSS_CURVES:
        curve = _curve(history, key)
        if curve is not None and not np.all(np.isfinite(curve[1])):
            first_nonfinite[key] = int(curve[0][np.argmin(np.isfinite(curve[1]))])
    if first_nonfinite:
        signs.append((min(first_nonfinite.values()), "nonfinite_loss",
                      {"first_nonfinite_epoch": first_nonfinite}))
    nonfinite_events = [e for e in history.events if e.get("kind") == "nonfinite_predictions"]
    if nonfinite_events:
        first = min(nonfinite_events, key=lambda e: e.get("step", 0))
        signs.append((int(first.get("step", 0)), "nonfinite_predictions",
                      {"nonfinite_predictions": first.get("count")}))
    loss = _curve(history, "loss")
    if loss is not None:
        steps, values = loss
        finite = np.isfinite(values)
        if finite.sum() >= 2:
            running_min = np.minimum.accumulate(np.where(finite, values, np.inf))
            lowest = running_min[-1]
            latest = values[finite][-1]
            if lowest > 0 and latest > DIVERGENCE_GROWTH_FACTOR * lowest:
                grown = np.nonzero(finite & (values > DIVERGENCE_GROWTH_FACTOR * running_min))[0]
                signs.append((int(steps[grown[0]]), "explosive_growth",
                              {"lowest_loss": lowest, "latest_finite_loss": latest}))
    if not signs:
        return []
    first_step = min(step for step, _, _ in signs)
    evidence = {"first_bad_epoch": first_step, "signs": sorted({kind for _, kind, _ in signs}),
                "growth_factor": DIVERGENCE_GROWTH_FACTOR}
    for _, _, figures in signs:
        evidence.update(figures)
    return [
        finding(
            "divergence",
            "error",
            "Training diverged",
            "From epoch %d on the run shows %s." % (
                first_step, ", ".join(kind.replace("_", " ") for kind in evidence["signs"])),
            first_step,
            evidence,
            "Lower the learning rate (e.g. 10x), clip gradients (clipnorm=1.0) and check the "
            "inputs for NaN or huge values.",
        )
    ]


def check_loss_mismatch(history):
    """Loss that does not fit the labels or the output layer, from the callback's run info."""
    info = history.info or {}
    loss = info.get("loss") or {}
    model = info.get("model") or {}
    labels = info.get("labels") or {}
    name = _normalized_loss_name(loss.get("name"))
    if not name:
        return []
    loss_name = loss.get("name")
    label_format = labels.get("format")
    width = model.get("output_width")
    activation = model.get("output_activation")
    from_logits = bool(loss.get("from_logits"))
    evidence = {
        "loss": loss_name,
        "from_logits": loss.get("from_logits"),
        "output_activation": activation,
        "output_width": width,
        "label_format": label_format,
    }
    problems = []  # (title, suggestion)
    if name in REGRESSION_LOSSES:
        problems.append((
            "A regression loss (%s) trains a classifier" % loss_name,
            "Use sparse_categorical_crossentropy (integer labels), categorical_crossentropy "
            "(one-hot) or binary_crossentropy (one sigmoid unit).",
        ))
    if name in SPARSE_CATEGORICAL_LOSSES and label_format == "one_hot":
        problems.append((
            "sparse_categorical_crossentropy is used with one-hot labels",
            "Use categorical_crossentropy, or pass integer class ids (argmax of the one-hot rows).",
        ))
    if name in CATEGORICAL_LOSSES and label_format == "sparse":
        problems.append((
            "categorical_crossentropy is used with integer class labels",
            "Use sparse_categorical_crossentropy, or one-hot encode the labels.",
        ))
    if name in BINARY_LOSSES and width and width > 1 and activation == "softmax":
        problems.append((
            "binary_crossentropy is used on a %d-unit softmax output" % width,
            "Use categorical_crossentropy (one-hot) or sparse_categorical_crossentropy "
            "(integer labels) with a softmax output.",
        ))
    if width == 1 and name in SPARSE_CATEGORICAL_LOSSES | CATEGORICAL_LOSSES:
        problems.append((
            "A categorical (softmax) loss is used on a single output unit",
            "Use binary_crossentropy with one sigmoid unit, or two softmax units.",
        ))
    if name in SPARSE_CATEGORICAL_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES:
        if from_logits and activation in PROBABILITY_ACTIVATIONS:
            problems.append((
                "The loss expects logits (from_logits=True) but the output goes through %s"
                % activation,
                "Drop the %s activation from the last layer, or set from_logits=False." % activation,
            ))
        elif not from_logits and activation == "linear":
            problems.append((
                "The output is linear (logits) but the loss expects probabilities "
                "(from_logits=False)",
                "Set from_logits=True in the loss, or add a softmax / sigmoid activation.",
            ))
    return [
        finding("loss_mismatch", "error", title,
                "Loss %r with %s labels, a %s-unit output and %s activation, from_logits=%s."
                % (loss_name, label_format, width, activation, loss.get("from_logits")),
                None, evidence, suggestion)
        for title, suggestion in problems
    ]


def check_accuracy_only_metric(history):
    """Accuracy the only metric tracked while the labels are imbalanced."""
    distribution = history.label_distribution.get("validation")
    if distribution is None:
        distribution = history.label_distribution.get("train")
    if distribution is None or np.asarray(distribution).size < 2:
        return []
    distribution = np.asarray(distribution)
    if distribution.min() <= 0:
        ratio = math.inf
    else:
        ratio = distribution.max() / distribution.min()
    tracked = sorted({
        key[len("val_"):] if key.startswith("val_") else key for key in history.curves
    } - NON_METRIC_LOG_KEYS)
    if ratio < IMBALANCE_RATIO or not tracked or not set(tracked) <= ACCURACY_METRICS:
        return []
    return [
        finding(
            "accuracy_only_metric",
            "info",
            "Accuracy is the only metric on imbalanced labels",
            "The largest class is %s times the smallest, and the run tracks only %s."
            % ("infinitely many" if math.isinf(ratio) else "%.1f" % ratio, ", ".join(tracked)),
            None,
            {"tracked_metrics": tracked, "class_counts": distribution, "imbalance_ratio": ratio,
             "imbalance_threshold": IMBALANCE_RATIO},
            "Also track precision, recall and PR-AUC, e.g. metrics=[keras.metrics.Recall(), "
            "keras.metrics.AUC(curve='PR')].",
        )
    ]


def check_threshold_far_from_default(history):
    """Binary classifier whose best-F1 threshold is far from 0.5 and clearly better there."""
    evaluation = history.latest.get("validation")
    if (
        evaluation is None
        or evaluation.tp is None
        or evaluation.fp is None
        or evaluation.thresholds is None
        or evaluation.confusion.shape != (2, 2)
    ):
        return []
    positives = int(evaluation.confusion[1].sum())
    if positives < THRESHOLD_MIN_POSITIVES:
        return []
    thresholds = np.asarray(evaluation.thresholds, dtype=np.float64)
    tp = np.asarray(evaluation.tp[1], dtype=np.int64)
    fp = np.asarray(evaluation.fp[1], dtype=np.int64)
    f1 = metrics.f1_score(tp, fp, positives - tp)
    if np.all(np.isnan(f1)):
        return []
    f1 = np.where(np.isnan(f1), -1.0, f1)
    best_f1 = f1.max()
    candidates = np.nonzero(f1 == best_f1)[0]
    best = int(candidates[np.argmin(np.abs(thresholds[candidates] - DEFAULT_THRESHOLD))])
    default = int(np.argmin(np.abs(thresholds - DEFAULT_THRESHOLD)))
    distance = abs(thresholds[best] - DEFAULT_THRESHOLD)
    gain = best_f1 - f1[default]
    total = int(evaluation.confusion.sum())
    all_positive_f1 = float(metrics.f1_score(positives, total - positives, 0))
    if (
        distance < THRESHOLD_MIN_DISTANCE
        or gain < THRESHOLD_MIN_F1_GAIN
        or best_f1 < all_positive_f1 + THRESHOLD_MIN_F1_GAIN
    ):
        return []
    precision, recall = metrics.pr_curve(tp[best], fp[best], positives)
    names = _class_names(history, 2)
    return [
        finding(
            "threshold_far_from_default",
            "info",
            "A decision threshold of %.2f gives a clearly better F1 than 0.5" % thresholds[best],
            "For class %r the F1 score is %.3f at threshold %.2f against %.3f at %.2f."
            % (names[1], best_f1, thresholds[best], f1[default], thresholds[default]),
            evaluation.step,
            {
                "positive_class": names[1],
                "best_threshold": thresholds[best],
                "best_f1": best_f1,
                "precision_at_best": precision,
                "recall_at_best": recall,
                "default_threshold": thresholds[default],
                "f1_at_default": f1[default],
                "f1_all_positive": all_positive_f1,
                "positives": positives,
            },
            "Pick the operating threshold on validation data (e.g. %.2f) instead of 0.5."
            % thresholds[best],
        )
    ]


def check_recording_problems(history):
    """Data that could not be read, and problems the callback met while recording."""
    findings = []
    if history.problems:
        findings.append(
            finding(
                "recording_problem",
                "warning",
                "Some of the run's data could not be read",
                "%d stored item(s) are malformed or of an unknown format; the diagnostics "
                "skip them." % len(history.problems),
                None,
                {"problems": history.problems[:MAX_MESSAGES_IN_EVIDENCE], "count": len(history.problems)},
                "Check that the writer and this package have matching versions.",
            )
        )
    for kind in RECORDING_EVENT_KINDS:
        events = [e for e in history.events if e.get("kind") == kind]
        if not events:
            continue
        first_step = min(int(e.get("step", 0)) for e in events)
        findings.append(
            finding(
                "recording_problem",
                "warning",
                "The callback met %d %s event(s) while recording" % (len(events), kind),
                "From epoch %d on, some counts are missing or incomplete: %s"
                % (first_step, events[0].get("message", "")),
                first_step,
                {"kind": kind, "count": len(events), "first_epoch": first_step,
                 "messages": [str(e.get("message", "")) for e in events[:MAX_MESSAGES_IN_EVIDENCE]]},
                "Check validation_data / train_data shapes and labels; see the training log "
                "for the full error.",
            )
        )
    overlap_error = (history.overlap or {}).get("error")
    if overlap_error:
        findings.append(
            finding(
                "recording_problem",
                "info",
                "The train/validation overlap check could not run",
                str(overlap_error),
                None,
                {"kind": "overlap_error"},
                "Pass train_data as NumPy arrays so their bytes can be compared.",
            )
        )
    return findings


RULES = (
    check_divergence,
    check_loss_mismatch,
    check_not_learning,
    check_train_val_overlap,
    check_suspicious_validation,
    check_overfitting,
    check_accuracy_paradox,
    check_accuracy_only_metric,
    check_threshold_far_from_default,
    check_recording_problems,
)


def sort_findings(findings):
    """Worst first: by severity (error, warning, info), then by step (run-wide findings,
    step None, first), then by rule id."""
    return sorted(
        findings,
        key=lambda f: (
            SEVERITIES.index(f["severity"]),
            -1 if f["step"] is None else f["step"],
            f["rule"],
        ),
    )


def diagnose(history):
    """All findings of one training run, worst first.

    Parameters
    ----------
    history : reader.RunHistory
        What was recorded for the run; missing parts make the rules that need them skip.

    Returns
    -------
    list of dict
        Findings with keys ``rule``, ``severity``, ``title``, ``detail``, ``step``,
        ``evidence`` and ``suggestion``, sorted by `sort_findings`.
    """
    findings = []
    for rule in RULES:
        findings.extend(rule(history))
    return sort_findings(findings)

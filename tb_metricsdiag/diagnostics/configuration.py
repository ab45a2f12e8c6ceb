"""The rule on the model's configuration: a loss that does not fit the task.

Each threshold is a module constant, documented here and in ``docs/diagnostics.md``.
"""

from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.core.losses import (
    BINARY_LOSSES,
    CATEGORICAL_LOSSES,
    REGRESSION_LOSSES,
    SPARSE_CATEGORICAL_LOSSES,
    normalized_loss_name,
)
from tb_metricsdiag.diagnostics.findings import finding

PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})


def check_loss_mismatch(history):
    """Loss that does not fit the labels or the output layer, from the callback's run info."""
    info = history.info or {}
    loss = info.get("loss") or {}
    model = info.get("model") or {}
    labels = info.get("labels") or {}
    name = normalized_loss_name(loss.get("name"))
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
        problems.append(
            (
                "A regression loss (%s) trains a classifier" % loss_name,
                "Use sparse_categorical_crossentropy (integer labels), categorical_crossentropy "
                "(one-hot) or binary_crossentropy (one sigmoid unit).",
            )
        )
    if name in SPARSE_CATEGORICAL_LOSSES and label_format == labels_lib.ONE_HOT:
        problems.append(
            (
                "sparse_categorical_crossentropy is used with one-hot labels",
                "Use categorical_crossentropy, or pass integer class ids (argmax of the one-hot rows).",
            )
        )
    if name in CATEGORICAL_LOSSES and label_format == labels_lib.SPARSE:
        problems.append(
            (
                "categorical_crossentropy is used with integer class labels",
                "Use sparse_categorical_crossentropy, or one-hot encode the labels.",
            )
        )
    if label_format == labels_lib.MULTI_HOT and (
        name in SPARSE_CATEGORICAL_LOSSES | CATEGORICAL_LOSSES or activation == "softmax"
    ):
        problems.append(
            (
                "Multi-hot labels (several labels per example) are trained with a softmax or"
                " categorical loss",
                "Give each label its own sigmoid unit (Dense(K, activation='sigmoid')) and "
                "train with binary_crossentropy: a softmax makes the labels compete for one "
                "probability mass.",
            )
        )
    elif name in BINARY_LOSSES and width and width > 1 and activation == "softmax":
        problems.append(
            (
                "binary_crossentropy is used on a %d-unit softmax output" % width,
                "Use categorical_crossentropy (one-hot) or sparse_categorical_crossentropy "
                "(integer labels) with a softmax output.",
            )
        )
    if width == 1 and name in SPARSE_CATEGORICAL_LOSSES | CATEGORICAL_LOSSES:
        problems.append(
            (
                "A categorical (softmax) loss is used on a single output unit",
                "Use binary_crossentropy with one sigmoid unit, or two softmax units.",
            )
        )
    if name in SPARSE_CATEGORICAL_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES:
        if from_logits and activation in PROBABILITY_ACTIVATIONS:
            problems.append(
                (
                    "The loss expects logits (from_logits=True) but the output goes through %s"
                    % activation,
                    "Drop the %s activation from the last layer, or set from_logits=False."
                    % activation,
                )
            )
        elif not from_logits and activation == "linear":
            problems.append(
                (
                    "The output is linear (logits) but the loss expects probabilities "
                    "(from_logits=False)",
                    "Set from_logits=True in the loss, or add a softmax / sigmoid activation.",
                )
            )
    return [
        finding(
            "loss_mismatch",
            "error",
            title=title,
            detail="Loss %r with %s labels, a %s-unit output and %s activation, from_logits=%s."
            % (loss_name, label_format, width, activation, loss.get("from_logits")),
            step=None,
            evidence=evidence,
            suggestion=suggestion,
        )
        for title, suggestion in problems
    ]

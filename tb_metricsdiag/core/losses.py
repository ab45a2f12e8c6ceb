"""Families of Keras loss names: which task a training loss belongs to. Pure Python.

Names are compared normalised (`normalized_loss_name`): ``"binary_crossentropy"``,
``"BinaryCrossentropy"`` and ``"binary-crossentropy"`` are the same loss.
"""

REGRESSION_LOSSES = frozenset(
    {
        "mse",
        "meansquarederror",
        "mae",
        "meanabsoluteerror",
        "mape",
        "meanabsolutepercentageerror",
        "msle",
        "meansquaredlogarithmicerror",
        "huber",
        "huberloss",
        "logcosh",
        "logcoshloss",
    }
)


SPARSE_CATEGORICAL_LOSSES = frozenset({"sparsecategoricalcrossentropy"})


CATEGORICAL_LOSSES = frozenset({"categoricalcrossentropy", "categoricalfocalcrossentropy"})


BINARY_LOSSES = frozenset({"binarycrossentropy", "binaryfocalcrossentropy"})


def normalized_loss_name(name):
    """``name`` lower-cased without separators; "" for None.

    >>> normalized_loss_name("Binary_CrossEntropy")
    'binarycrossentropy'
    """
    return "".join(c for c in str(name or "").lower() if c.isascii() and c.isalnum())


def is_multilabel_loss(name, output_width):
    """Whether a loss on ``output_width`` units trains a multi-label model: a binary loss
    (`BINARY_LOSSES`: one sigmoid per unit) on more than one output unit.
    """
    return output_width > 1 and normalized_loss_name(name) in BINARY_LOSSES

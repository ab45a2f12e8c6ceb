"""The Lightning callback's train/validation duplicate check (``train_sample``): the inputs of
the first training batches (or the given training inputs) and of the first validation epoch,
hashed example by example (`overlap.example_digests`) and compared
(`overlap.duplicate_overlap`). One `OverlapCheck` per ``fit``; `checked_train_sample` checks
the callback's ``train_sample`` argument.
"""

import collections.abc

import numpy as np
import torch

from tb_metricsdiag.core import overlap as overlap_lib

_TRAIN_SAMPLE_FORMS = (
    "a number of training examples to hash as they are trained on (an int >= 1), the training"
    " inputs (a tensor or NumPy array, one row per example), or (x, y)"
)


def checked_train_sample(train_sample):
    """``train_sample`` as ``(count, inputs)``, one of them None; raises ValueError naming the
    forms it takes.
    """
    if train_sample is None:
        return None, None
    if isinstance(train_sample, int) and not isinstance(train_sample, bool):
        if train_sample >= 1:
            return train_sample, None
    else:
        inputs = train_sample
        if isinstance(train_sample, (tuple, list)) and len(train_sample) == 2:
            inputs = train_sample[0]  # (x, y)
        try:
            leaves = _input_leaves(inputs)
        except TypeError:
            leaves = []
        rows = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
        if leaves and len(rows) == 1 and rows.pop():
            return None, inputs
    raise ValueError(
        "MetricsDiagCallback: train_sample must be %s; got %s"
        % (_TRAIN_SAMPLE_FORMS, _described(train_sample))
    )


def _described(value):
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return "a %s of shape %s" % (type(value).__name__, tuple(value.shape))
    return repr(value) if isinstance(value, (int, float, str)) else "a %s" % type(value).__name__


def _input_leaves(inputs):
    """The tensors or arrays of a model's inputs, in order: one, or a tuple / list / dict (by
    key) of them. Raises TypeError for anything else.
    """
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        return [inputs]
    if isinstance(inputs, collections.abc.Mapping):
        return [a for key in sorted(inputs, key=str) for a in _input_leaves(inputs[key])]
    if isinstance(inputs, (tuple, list)) and inputs:
        return [a for each in inputs for a in _input_leaves(each)]
    raise TypeError("inputs of type %s cannot be hashed" % type(inputs).__name__)


def _input_arrays(inputs):
    """`_input_leaves` as NumPy arrays on the CPU (bfloat16 as the int16 of the same bytes:
    NumPy has no bfloat16).
    """
    arrays = []
    for leaf in _input_leaves(inputs):
        if isinstance(leaf, torch.Tensor):
            leaf = leaf.detach()
            leaf = (leaf.view(torch.int16) if leaf.dtype == torch.bfloat16 else leaf).cpu().numpy()
        arrays.append(leaf)
    return arrays


def _batch_input_arrays(batch, which):
    """The input arrays of an ``(x, y)`` batch; ValueError for another batch."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            "the %s batches are a %s, not (x, y), so their inputs cannot be told from their"
            " labels" % (which, type(batch).__name__)
        )
    return _input_arrays(batch[0])


def _layout_of(arrays):
    """What must agree for two examples' bytes to be comparable: each input's shape past the
    batch and dtype.
    """
    return tuple((tuple(a.shape[1:]), a.dtype.str) for a in arrays)


def _layout_text(layout):
    return ", ".join("%s %s" % (np.dtype(dtype).name, list(shape)) for shape, dtype in layout)


class OverlapCheck:
    """The state of one ``fit``'s train/validation duplicate check (`MetricsDiagCallback`'s
    ``train_sample``): training digests from the first training epoch's batches (up to
    ``count``) or from the given ``inputs``, validation digests from the first validation
    epoch's batches, and the first problem met (the check then records only that).
    """

    def __init__(self, count, inputs):
        self.count, self.inputs = count, inputs
        self.first_epoch = None  # the epoch this fit started at (a resumed fit starts late)
        self.train_digests, self.train_layout = [], None
        self.validation_digests, self.validation_layout = [], None
        self.validation_done = False  # the first validation epoch's digests are complete
        self.written = False
        self.problem = None

    def wants_train_batch(self, epoch):
        """Whether a training batch of ``epoch`` is still to be hashed: the first epoch's,
        until ``count`` examples.
        """
        if self.first_epoch is None:
            self.first_epoch = epoch
        return (
            self.count is not None
            and epoch == self.first_epoch
            and len(self.train_digests) < self.count
            and self.problem is None
        )

    def add_train_batch(self, batch):
        arrays = _batch_input_arrays(batch, "training")
        kept = min(len(arrays[0]), self.count - len(self.train_digests))
        arrays = [a[:kept] for a in arrays]
        self.train_layout = self.train_layout or _layout_of(arrays)
        self.train_digests.extend(overlap_lib.example_digests(arrays))

    def add_validation_batch(self, batch):
        arrays = _batch_input_arrays(batch, "validation")
        self.validation_layout = self.validation_layout or _layout_of(arrays)
        self.validation_digests.extend(overlap_lib.example_digests(arrays))

    def fail(self, error):
        if self.problem is None:
            self.problem = "the overlap check could not hash the inputs: %s" % error

    def result(self):
        """The record `MetricsDiagWriter.add_overlap` writes: `overlap.duplicate_overlap`'s
        result and where the training examples came from, or ``{"error"}``.
        """
        if self.problem is None and self.inputs is not None:
            try:
                arrays = _input_arrays(self.inputs)
                self.train_layout = _layout_of(arrays)
                self.train_digests = overlap_lib.example_digests(arrays)
            except (TypeError, ValueError) as error:
                self.fail(error)
        if self.problem is None and not self.train_digests:
            self.problem = "no training batch was hashed before the first validation"
        if (
            self.problem is None
            and self.validation_layout is not None
            and self.train_layout != self.validation_layout
        ):
            self.problem = (
                "the training inputs (%s per example) are not laid out as the validation"
                " inputs (%s), so their bytes can never match: give train_sample the inputs"
                " as the validation dataloader yields them"
                % (_layout_text(self.train_layout), _layout_text(self.validation_layout))
            )
        if self.problem is not None:
            return {"error": self.problem}
        result = overlap_lib.duplicate_overlap(self.train_digests, self.validation_digests)
        if self.count is not None:
            result["train_sample"] = {"source": "training batches", "requested": self.count}
        else:
            result["train_sample"] = {"source": "train_sample inputs"}
        return result

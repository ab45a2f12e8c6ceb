"""The Lightning callback's rows of one validation batch: where its scores and labels come
from (`batch_scores`: a ``scores_and_labels`` callable, ``validation_step``'s dict, the
module's own call in ``validation_step`` noted by `ModuleOutput`, or one extra
``forward(x)``), its ids, previews and groups (`batch_examples`), the stage's layout
fixed by the first batch (`first_layout`), later batches checked by their shapes alone
(`check_batch`, nothing waits for the device), the rows as kept until the epoch ends
(`kept_rows`), on their device, and an epoch's rows checked once more, values included, when
rank 0 counts them (`epoch_evaluation`).
"""

import collections.abc
import dataclasses

import numpy as np
import torch

from tb_metricsdiag.core import events
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import arrays, inputs
from tb_metricsdiag.writing.callback_writing import WHO
from tb_metricsdiag.writing.lightning_distributed import RowExamples

# The one split the Lightning callback records: its validation batches'.
SPLIT = "validation"

# What the callback calls a batch's labels and scores in its messages (`inputs.NAMES`).
NAMES = ("labels", "scores")

# Where the scores of a batch come from (`MetricsDiagCallback.scores_and_labels`, the run info).
FROM_CALLABLE = "scores_and_labels"
FROM_STEP_OUTPUTS = "validation_step_outputs"
FROM_FORWARD = "forward"
_SOURCE_TEXT = {
    FROM_FORWARD: "the module's forward(x)",
    FROM_STEP_OUTPUTS: "validation_step's 'scores'",
    FROM_CALLABLE: "scores_and_labels",
}

_HOW_TO_GIVE_SCORES = (
    "return {'scores': outputs, 'labels': y} from validation_step (no extra forward pass), or"
    " pass MetricsDiagCallback(scores_and_labels=lambda module, batch, outputs: (scores, labels))"
)


def batch_scores(scores_and_labels, pl_module, batch, outputs, module_output=None):
    """``(scores, labels, source)`` of one validation batch (``outputs``: what
    ``validation_step`` returned; ``module_output``: the epoch's `ModuleOutput`, whose
    tensor, when it has one for this batch, spares the extra ``forward(x)``); ValueError
    naming the fix.
    """
    if scores_and_labels is not None:
        found = scores_and_labels(pl_module, batch, outputs)
        if not isinstance(found, (tuple, list)) or len(found) != 2:
            raise ValueError(
                "MetricsDiagCallback: scores_and_labels must return (scores, labels), got"
                " a %s" % type(found).__name__
            )
        return found[0], found[1], FROM_CALLABLE
    if isinstance(outputs, collections.abc.Mapping) and "scores" in outputs:
        if "labels" not in outputs:
            raise ValueError(
                "MetricsDiagCallback: validation_step returned 'scores' without 'labels':"
                " return {'scores': outputs, 'labels': y}"
            )
        return outputs["scores"], outputs["labels"], FROM_STEP_OUTPUTS
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        what = type(batch).__name__
        if isinstance(batch, (tuple, list, collections.abc.Mapping)):
            what = "%s of %d items" % (what, len(batch))
        raise ValueError(
            "MetricsDiagCallback: validation batches are a %s, not (x, y), so the callback"
            " cannot tell the inputs from the labels: %s" % (what, _HOW_TO_GIVE_SCORES)
        )
    x, y = batch
    scores = None if module_output is None else module_output.take(_rows(y))
    if scores is None:
        with torch.no_grad():
            scores = pl_module(x)
    return scores, y, FROM_FORWARD


class ModuleOutput:
    """What the module's own ``__call__`` returned inside one ``validation_step``, so that
    the callback can count the module's scores without running ``forward(x)`` once more.

    While `attach`ed (a validation epoch), a forward pre-hook and a forward hook on the
    ``LightningModule`` note every call of it. `take` gives the batch's output only when it
    is unambiguous: exactly one call that made no call of the module inside it (under DDP
    Lightning runs ``validation_step`` itself through the module's ``__call__``: that call
    encloses the user's one and is not counted, unless it returned another tensor), that
    returned a tensor of the batch's rows (an enclosing call may return that same tensor). Otherwise (test-time augmentation calling the module several
    times, no call at all, ``self.net(x)``, other outputs) the callback runs ``forward(x)`` as
    before. The output is kept detached, and for one batch only.
    """

    def __init__(self):
        self._handles = ()
        self.forget()

    def forget(self):
        """Forget the calls noted so far (at the end of each batch, whatever its source)."""
        self._open = []  # the start numbers of the calls under way
        self._starts = 0
        self._leaves = 0  # calls that made no call of the module inside them
        self._output = None  # the last leaf call's tensor
        self._ambiguous = False

    def attach(self, module):
        self.remove()
        try:
            self._handles = (
                module.register_forward_pre_hook(self.started),
                module.register_forward_hook(self.ended),
            )
        except Exception:  # a module that takes no hooks: one extra forward per batch
            self.remove()

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._handles = ()
        self.forget()

    def started(self, module, args):
        self._open.append(self._starts)
        self._starts += 1

    def ended(self, module, args, output):
        if not self._open:  # a call under way when the hooks came: not this batch's
            return
        tensor = isinstance(output, torch.Tensor)
        if self._open.pop() + 1 == self._starts:  # no call started inside this one
            self._leaves += 1
            self._output = output.detach() if tensor else None
        elif tensor and not self._is_output(output):
            self._ambiguous = True  # a forward that calls the module itself: which is it?

    def _is_output(self, tensor):
        """Whether ``tensor`` is the noted output (an enclosing call passing it on, as a
        ``validation_step`` returning its logits under DDP); never raises (a hook in the
        module's call).
        """
        noted = self._output
        try:
            return (
                noted is not None
                and tensor.data_ptr() == noted.data_ptr()
                and tensor.shape == noted.shape
                and tensor.dtype == noted.dtype
            )
        except Exception:  # a tensor without storage (sparse, meta): not comparable
            return False

    def take(self, rows):
        """The output of the module's one call since the last `take` when it is a tensor of
        ``rows`` rows, else None; forgets what it noted either way.
        """
        output = self._output
        usable = (
            self._leaves == 1
            and not self._ambiguous
            and not self._open
            and output is not None
            and output.ndim
            and rows is not None
            and output.shape[0] == rows
        )
        self.forget()
        return output if usable else None


def _rows(labels):
    """The rows of a batch's labels, or None when they have none to tell."""
    if isinstance(labels, torch.Tensor):
        return int(labels.shape[0]) if labels.ndim else None
    try:
        return len(labels)
    except TypeError:
        return None


def batch_examples(given_ids, given_previews, pl_module, batch, outputs, rows, first):
    """The `RowExamples` of one validation batch of ``rows`` rows (``given_ids`` and
    ``given_previews``: the callback's ``example_ids`` and ``previews``), checked
    (`inputs.check_example_ids`, `check_previews`; groups by `inputs.check_groups` in the
    ``first`` batch, later by their row counts alone, `_checked_group_rows`: their values
    are checked with the epoch's, `epoch_evaluation`); ValueError naming the fix.
    """
    if given_ids is False:
        return RowExamples(None, None, None)
    step = outputs if isinstance(outputs, collections.abc.Mapping) else {}
    if callable(given_ids):
        ids, ids_from = given_ids(pl_module, batch, outputs), "example_ids"
    else:
        ids, ids_from = step.get("ids"), "validation_step's 'ids'"
    if callable(given_previews):
        previews, previews_from = given_previews(pl_module, batch, outputs), "previews"
    else:
        previews, previews_from = step.get("previews"), "validation_step's 'previews'"
    groups = step.get("groups")
    if groups is not None:
        if first:  # a mistake raises before training starts
            inputs.check_groups(groups, rows, "%s: validation_step's 'groups'" % WHO)
        groups = _checked_group_rows(_host_groups(groups), rows)
    return RowExamples(
        inputs.check_example_ids(_host(ids), rows, "%s: %s" % (WHO, ids_from)),
        inputs.check_previews(_host(previews), rows, "%s: %s" % (WHO, previews_from)),
        groups,  # as given (`inputs.GroupColumn`s do not concatenate): checked per epoch
    )


def first_layout(scores, labels, source, *, multi_label, from_logits, class_names):
    """The stage's `inputs.Layout`, from its first batch checked as every writer's first
    evaluation (`inputs.check_evaluation`); ValueError naming the fix. ``from_logits``
    stays undecided unless given.
    """
    where = _SOURCE_TEXT[source]
    if not isinstance(scores, torch.Tensor):
        raise ValueError(
            "%s: %s gave a %s, not one tensor of scores: %s"
            % (WHO, where, type(scores).__name__, _HOW_TO_GIVE_SCORES)
        )
    if multi_label is None:
        width = int(scores.shape[1]) if scores.ndim == 2 else 1
        multi_label = labels_lib.looks_multi_hot(arrays.to_numpy(labels, "labels"), width)
    try:
        evaluation = inputs.check_evaluation(
            labels,
            scores,
            WHO,
            multi_label=multi_label,
            from_logits=from_logits,
            class_names=class_names,
            names=NAMES,
        )
    except ValueError as error:
        hint = ": if it does not give the class scores, " + _HOW_TO_GIVE_SCORES
        raise ValueError(
            "%s. The scores came from %s%s" % (error, where, hint if source == FROM_FORWARD else "")
        ) from error
    return dataclasses.replace(evaluation.layout, from_logits=from_logits)


def check_batch(layout, scores, labels, accepted):
    """A later batch's labels as a tensor beside its scores; ValueError for scores that are
    no tensor, or shapes unlike the first batch's (`inputs.Layout.check_shapes`: the values
    are read when the epoch is counted). ``accepted``: the stage's set of the shapes past the
    rows of batches found right; a batch shaped as one of them, of as many labels as scores,
    is not checked again (each check depends on the shapes alone).
    """
    if not isinstance(scores, torch.Tensor):
        raise ValueError("the scores are a %s, not a tensor" % type(scores).__name__)
    labels = as_tensor(labels, scores.device)
    shapes = (scores.ndim, scores.shape[1:], labels.ndim, labels.shape[1:])
    if shapes in accepted and scores.shape[0] == labels.shape[0]:
        return labels
    layout.check_shapes(labels, scores, WHO, NAMES)
    label_format = layout.format_of(labels)
    if label_format != layout.label_format:
        raise ValueError(
            "%s labels of shape %s after %s labels in the first batch: the epoch's batches"
            " are put together, so their labels must come in one format"
            % (label_format, tuple(labels.shape), layout.label_format)
        )
    accepted.add(shapes)
    return labels


def kept_rows(layout, scores, labels):
    """A batch's ``(scores, labels)`` as the epoch keeps them, on their device: detached,
    scores ``[n, width]`` in a float type NumPy has, labels of one class id ``[n]``, so that
    the batches concatenate.
    """
    scores = scores.detach()
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.dtype in (torch.float16, torch.bfloat16) or not scores.is_floating_point():
        scores = scores.float()  # NumPy has no bfloat16
    if layout.label_format in (labels_lib.SPARSE, labels_lib.BINARY):
        labels = labels.reshape(-1)  # [n] and [n, 1] alike, so that batches concatenate
    return scores, labels.detach()


def epoch_evaluation(epoch_rows, layout, from_logits):
    """An epoch's rows, gathered on rank 0 (``epoch_rows``: its labels, scores, `RowExamples`
    or None, and epoch), checked once more, values included, as one evaluation:
    ``(evaluation, with_examples, problems)``; the evaluation None (with a problem) when the
    rows cannot be counted, ``with_examples`` False (with a problem) when their ids, previews or
    groups, checked together (ids unique across batches and processes), do not fit.
    """
    try:
        evaluation = inputs.check_evaluation(
            epoch_rows.labels,
            epoch_rows.scores,
            WHO,
            layout=layout,
            from_logits=from_logits,
            names=NAMES,
        )
    except ValueError as error:
        message = "the validation outputs of epoch %d could not be counted: %s"
        return None, False, [events.bad_batch(SPLIT, message % (epoch_rows.epoch, error))]
    examples = epoch_rows.examples
    if examples is None:
        return evaluation, False, []
    try:
        n = evaluation.size
        evaluation = dataclasses.replace(
            evaluation,
            example_ids=inputs.check_example_ids(examples.ids, n, WHO),
            previews=inputs.check_previews(examples.previews, n, WHO),
            groups=inputs.check_groups(examples.groups, n, WHO),
        )
    except ValueError as error:
        message = "the example records of epoch %d were left out: %s"
        return evaluation, False, [events.bad_batch(SPLIT, message % (epoch_rows.epoch, error))]
    return evaluation, True, []


def as_tensor(value, device):
    """``value`` (labels) as a tensor, on ``device`` unless it is one already."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(np.asarray(value), device=device)


def _host(values):
    """Ids or previews as `inputs` takes them: a tensor on the CPU (NumPy), else as given."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values


def _host_groups(groups):
    """Groups as arrays on the CPU, to be concatenated across batches (lists as Python
    objects, as `inputs.check_groups` takes them).
    """
    if not isinstance(groups, collections.abc.Mapping):
        return groups  # `inputs.check_groups` names the fix
    hosted = {}
    for key, values in groups.items():
        if isinstance(values, (list, tuple)):
            array = np.empty(len(values), dtype=object)
            array[:] = values
            hosted[key] = array
        else:
            hosted[key] = _host(values)
    return hosted


def _checked_group_rows(groups, rows):
    """Hosted groups (`_host_groups`) when they are a dict of one value per row, so that the
    epoch's batches line up when put together; ValueError otherwise.
    """
    if not isinstance(groups, collections.abc.Mapping):
        raise ValueError(
            "validation_step's 'groups' are a %s, not a dict {key: one value per row}"
            % type(groups).__name__
        )
    for key, values in groups.items():
        shape = getattr(values, "shape", None)
        if shape is None or len(shape) != 1 or shape[0] != rows:
            raise ValueError(
                "validation_step's groups[%r] has shape %s: give one value per row, %d in all"
                % (key, shape, rows)
            )
    return groups


def concatenated(parts):
    """The kept tensors of an epoch as one, or None when there are none."""
    return torch.cat(parts) if parts else None


def numpy_of(tensor):
    """A tensor (or None) on the CPU, as NumPy."""
    return None if tensor is None else tensor.cpu().numpy()

"""Where the Lightning callback takes a module's scores when ``validation_step`` returns no
``{"scores", "labels"}``: the output of the module's own call in ``validation_step``
(`lightning_batches.ModuleOutput`, no extra forward pass), else one extra ``forward(x)``.
Counts against scikit-learn and TorchMetrics on the module's own outputs; forward passes
counted by the module.
"""

import lightning_runs as runs
import numpy as np
import pytest
import torch
from conftest import read_events, to_scores
from sklearn import metrics as skm
from torchmetrics.functional.classification import multiclass_confusion_matrix

from tb_metricsdiag.format import schema
from tb_metricsdiag.writing.lightning_batches import ModuleOutput

CLASSES = 3
CONFUSION = schema.split_tag("validation", schema.KIND_CONFUSION)
AP = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)


class _Calls(runs.Classifier):
    """A module whose ``validation_step`` scores its batch by ``score(self, x)`` and returns
    nothing for the callback."""

    def __init__(self, score):
        super().__init__(classes=CLASSES)
        self.score = score

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.validation_steps += 1
        self.log("val_loss", self._loss(self.score(self, x), y))


def _fit(root, module, epochs=1):
    torch.manual_seed(0)
    train, validation = runs.data(64, 1, CLASSES), runs.data(runs.VAL_SIZE, 2, CLASSES)
    trainer = runs.fit(str(root), module, train, validation, epochs)
    calls = module.eval_forward_calls, module.validation_steps
    return trainer, validation, calls


def _check_counts(log_dir, epoch, labels, outputs):
    """The written confusion and AP against scikit-learn and TorchMetrics on ``outputs``."""
    events = read_events(log_dir)
    probabilities, predicted = to_scores(outputs, from_logits=True)
    confusion = skm.confusion_matrix(labels, predicted, labels=range(CLASSES))
    np.testing.assert_array_equal(events[CONFUSION][epoch][0], confusion)
    reference = multiclass_confusion_matrix(
        torch.from_numpy(outputs), torch.from_numpy(labels), num_classes=CLASSES
    )
    np.testing.assert_array_equal(events[CONFUSION][epoch][0], reference.numpy())
    ap = [skm.average_precision_score(labels == k, probabilities[:, k]) for k in range(CLASSES)]
    np.testing.assert_allclose(events[AP][epoch][0], ap, rtol=1e-12)


def test_the_module_s_own_call_is_counted_without_an_extra_forward(tmp_path):
    """``validation_step`` calls ``self(x)`` once: the callback counts that output (the counts
    of the final module's outputs), and the module ran one forward pass per validation step
    (the sanity check's included), none for the callback. The hooks are gone after the fit."""
    module = _Calls(lambda self, x: self(x))
    trainer, (x, y), (calls, steps) = _fit(tmp_path, module, epochs=2)
    assert steps == 2 + 2 * 7  # the sanity check's 2 batches, then 7 of 16 rows per epoch
    assert calls == steps
    _check_counts(trainer.logger.log_dir, 1, y, runs.outputs(module, x))
    assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize(
    "name, score, own_calls",
    [
        # Test-time augmentation: two calls, neither is forward(x)'s scores alone.
        ("twice", lambda self, x: (self(x) + self(x * 0.5)) / 2, 2),
        # The network called directly: the module's hooks see no call.
        ("no call", lambda self, x: self.net(x), 0),
        # One call, but not of the batch's rows.
        ("other rows", lambda self, x: self(torch.cat([x, x]))[: len(x)], 1),
    ],
)
def test_other_calls_fall_back_to_one_extra_forward(tmp_path, name, score, own_calls):
    """When the module's own calls do not give one output of the batch's rows, the callback
    runs ``forward(x)`` itself: its counts are those of the module's outputs on ``x``."""
    module = _Calls(score)
    trainer, (x, y), (calls, steps) = _fit(tmp_path, module)
    assert calls == (own_calls + 1) * steps, name
    _check_counts(trainer.logger.log_dir, 0, y, runs.outputs(module, x))


def test_one_call_of_other_inputs_is_what_the_callback_counts(tmp_path):
    """The callback counts what the module's one call in ``validation_step`` gave, whatever
    its inputs (here ``x / 2``): the scores validation computed, not a second pass on ``x``."""
    module = _Calls(lambda self, x: self(x / 2))
    trainer, (x, y), (calls, steps) = _fit(tmp_path, module)
    assert calls == steps
    _check_counts(trainer.logger.log_dir, 0, y, runs.outputs(module, x / 2))


def test_the_hooks_go_when_validation_raises(tmp_path):
    def fail(self, x):
        self(x)
        raise RuntimeError("validation failed")

    module = _Calls(fail)
    with pytest.raises(RuntimeError, match="validation failed"):
        _fit(tmp_path, module)
    assert not module._forward_hooks and not module._forward_pre_hooks


class _Redirected(torch.nn.Module):
    """A linear model whose call with ``step=True`` calls the model again inside it, as
    Lightning runs ``validation_step`` through DDP's ``forward``."""

    def __init__(self, step_returns):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.step_returns = step_returns

    def forward(self, x, step=False):
        if not step:
            return self.linear(x)
        out = self(x)
        if self.step_returns == "dict":
            return {"loss": out.sum()}
        return out if self.step_returns == "same" else out * 2


def test_module_output_takes_only_an_unambiguous_output():
    torch.manual_seed(0)
    model, x = _Redirected("dict"), torch.randn(5, 4)
    noted = ModuleOutput()
    noted.attach(model)
    out = model(x)  # gradients on: what is kept is detached
    taken = noted.take(5)
    assert taken is not None and not taken.requires_grad
    torch.testing.assert_close(taken, out.detach())
    assert noted.take(5) is None  # forgotten once taken
    model(x)
    assert noted.take(4) is None  # not the batch's rows
    model(x), model(x)
    assert noted.take(5) is None  # two calls
    model(x)
    noted.forget()
    assert noted.take(5) is None
    model(x, step=True)  # an enclosing call giving a dict: the inner call's output
    torch.testing.assert_close(noted.take(5), model.linear(x).detach())
    model.step_returns = "same"
    model(x, step=True)  # an enclosing call passing the inner call's tensor on
    torch.testing.assert_close(noted.take(5), model.linear(x).detach())
    model.step_returns = "other"
    model(x, step=True)  # an enclosing call giving another tensor: which is the output?
    assert noted.take(5) is None
    noted.remove()
    assert not model._forward_hooks and not model._forward_pre_hooks
    model(x)
    assert noted.take(5) is None

"""The validation outputs of Keras's own validation pass, taken for the Keras callback.

Inside ``model.fit`` Keras validates every epoch (``validation_data=``): its ``test_step``
computes the model's outputs ``y_pred`` of every validation batch and hands them, with the
batch's ``x`` and ``y``, to ``model.compute_metrics``. When the callback's ``validation_data``
holds the same rows, predicting them again at the epoch end doubles that forward pass. So, for
the length of a fit, `OutputReuse.install` patches the model instance (on every backend):

- its ``compute_metrics`` adds ``(x, y, y_pred)`` under `CAPTURED_KEY` to the logs it returns,
  only while the test step runs (not in the train step, which calls it too);
- its ``test_function`` is made again (``make_test_function(force=True)``) from that step and
  wrapped in a Python function that pops the key off the logs before Keras sees them: no
  callback, History, progress bar, ``val_`` log or ``evaluate`` dict ever holds it;
- each popped batch goes to ``sink`` (the callback calls `OutputReuse.take`), which keeps its
  tensors; at the pass's end (``on_test_end``, when Keras has waited for its last step) their
  ``x`` and ``y`` are compared with the callback's own rows at the same positions (exactly, on
  the host) and the outputs kept as NumPy. Reading each batch at once would wait for its step,
  and JAX runs the steps asynchronously.

At the epoch end `OutputReuse.outputs` gives the pass's outputs only when the pass covered
every row of the callback's ``validation_data`` once, in order, with equal inputs and labels;
otherwise (``validation_freq`` skipped the epoch, other validation data, ``validation_steps``
cut the pass short, a ``test_step`` of the user's that never calls ``compute_metrics``) it
gives None and the callback predicts the rows itself, as it did before. After one pass with
other data the check stops for the fit (its data stays other). `OutputReuse.remove` puts the
model back at train end: the instance's own attributes go, and ``test_function`` is None, so
the next ``evaluate`` makes Keras's own; a fit that raised leaves it until the next train begin
of a callback, which takes it off first (`remove_leftovers`); meanwhile the test function still
pops the key. With two such callbacks in one fit, the later one's patch replaces the earlier
one's, which then predicts.

Not installed (`blocked_reason`) where the check could not see every row of each batch:
``steps_per_execution`` above 1 (Keras returns the logs of one batch per execution), several
replicas or a JAX distribution (the outputs are split across devices), ``torch.compile`` (a
Python flag read inside a compiled step), a ``test_step`` or ``compute_metrics`` already set
on the instance by someone else.
"""

import logging

import keras
import numpy as np
from keras import tree

logger = logging.getLogger(__name__)

CAPTURED_KEY = "_metricsdiag_validation_batch"
PENDING_BYTES = 64 << 20
"""Most bytes of a pass's inputs and labels (counted at the callback's own arrays' size) whose
tensors wait for the pass's end before they are read and checked; past this, the batches
waiting are checked at once (on JAX a wait for the step)."""
_PATCHED = ("compute_metrics", "test_step")


def blocked_reason(model):
    """Why `OutputReuse` cannot be installed on ``model``, or None when it can."""
    if getattr(model, "steps_per_execution", 1) != 1:
        return "steps_per_execution is %s" % model.steps_per_execution
    if not callable(getattr(model, "compute_metrics", None)) or not callable(
        getattr(model, "make_test_function", None)
    ):
        return "the model has no compute_metrics or make_test_function"
    for name in _PATCHED:
        value = vars(model).get(name)
        if value is not None and not getattr(value, "_metricsdiag_reuse", False):
            return "the model instance has its own %s" % name
    backend = keras.backend.backend()
    if backend == "tensorflow":
        strategy = getattr(model, "distribute_strategy", None)
        if strategy is not None and strategy.num_replicas_in_sync != 1:
            return "%d replicas" % strategy.num_replicas_in_sync
    elif backend == "jax":
        if keras.distribution.distribution() is not None:
            return "a JAX distribution"
    elif backend == "torch" and getattr(model, "jit_compile", False):
        return "torch.compile (jit_compile=True)"
    return None


class OutputReuse:
    """Keras's validation outputs of one fit, checked against the callback's rows.

    Args:
      model: the model being fit.
      x, y: the callback's ``validation_data`` arrays (``x`` a structure of arrays).
      sink: called with each batch's ``(x, y, y_pred)`` as Keras computed them (tensors of the
        backend); the callback passes a function that calls `take`, so that time spent there is
        the callback's own.
    """

    def __init__(self, model, x, y, sink):
        self.model = model
        self._x = tree.flatten(x)
        self._y = y
        self._sink = sink
        self._capturing = False  # set while the patched test step runs (or traces)
        self._active = False  # between `begin_pass` and `end_pass`
        self._mismatched = False  # a pass saw other data: no more checks this fit
        self._position = 0
        self._batches = []  # the outputs of the batches checked, as NumPy
        self._pending = []  # (x, y, y_pred) of the batches not yet checked, as tensors
        self._pending_rows = 0
        self._row_bytes = sum(a[:1].nbytes for a in self._x) + y[:1].nbytes
        self._complete = False
        self.installed = False

    # -- the model's patch ----------------------------------------------------------------

    def install(self):
        """Patch the model (module docstring); on any error the model is put back as it was
        and the error raised.
        """
        model = self.model
        remove_leftovers(model)
        test_step, compute_metrics = model.test_step, model.compute_metrics
        reuse = self

        def capturing_test_step(*args, **kwargs):
            reuse._capturing = True
            try:
                return test_step(*args, **kwargs)
            finally:
                reuse._capturing = False

        def capturing_compute_metrics(x, y, y_pred, *args, **kwargs):
            logs = compute_metrics(x, y, y_pred, *args, **kwargs)
            if (
                reuse._capturing
                and isinstance(logs, dict)
                and y is not None
                and not isinstance(y_pred, (list, tuple, dict))
            ):
                logs = dict(logs)
                logs[CAPTURED_KEY] = (x, y, y_pred)
            return logs

        try:
            for function, name in (
                (capturing_test_step, "test_step"),
                (capturing_compute_metrics, "compute_metrics"),
            ):
                function._metricsdiag_reuse = True
                object.__setattr__(model, name, function)
            model.make_test_function(force=True)
            made = model.test_function

            def test_function(*args, **kwargs):
                result = made(*args, **kwargs)
                # JAX returns (logs, state); TensorFlow and PyTorch the logs.
                logs = result[0] if isinstance(result, tuple) else result
                if isinstance(logs, dict):
                    captured = logs.pop(CAPTURED_KEY, None)
                    if captured is not None and reuse._active and not reuse._mismatched:
                        reuse._sink(captured)
                return result

            test_function._metricsdiag_reuse = True
            model.test_function = test_function
        except Exception:
            remove_leftovers(model)
            raise
        self.installed = True

    def remove(self):
        """Put the model back (module docstring); nothing when not installed."""
        if self.installed:
            remove_leftovers(self.model)
            self.installed = False
        self._batches, self._pending = [], []

    # -- the passes -----------------------------------------------------------------------

    def begin_pass(self):
        """A validation pass of the fit starts (``on_test_begin``)."""
        self._active = True
        self._position, self._batches, self._complete = 0, [], False
        self._pending, self._pending_rows = [], 0

    def end_pass(self):
        """The pass ended (``on_test_end``): complete when it covered every row."""
        if self._active:
            self._check_pending()
            self._complete = not self._mismatched and self._position == len(self._y)
            if not self._complete:
                self._batches = []
        self._active = False

    def new_epoch(self):
        """Forget the last epoch's pass (``on_epoch_begin``): a skipped pass stays None."""
        self._active, self._complete, self._batches = False, False, []
        self._pending, self._pending_rows = [], 0

    def take(self, captured):
        """One batch of the pass, kept as the backend's tensors until the pass ends (or
        `PENDING_BYTES` of them wait): reading a tensor on the host waits for its step, which
        on JAX, whose steps run asynchronously, would stall the pass at every batch.
        """
        self._pending.append(captured)
        self._pending_rows += int(captured[1].shape[0])
        if self._pending_rows * self._row_bytes > PENDING_BYTES:
            self._check_pending()

    def _check_pending(self):
        """Check the batches waiting (`_check`), in order; any error abandons the pass."""
        pending, self._pending, self._pending_rows = self._pending, [], 0
        try:
            for captured in pending:
                if self._mismatched:
                    return
                self._check(*captured)
        except Exception:  # The epoch end then predicts the rows itself.
            logger.debug("a validation batch could not be checked", exc_info=True)
            self.abandon()

    def _check(self, x, y, y_pred):
        """One batch: its outputs kept when its labels and inputs are the callback's rows at
        this position; the pass abandoned otherwise.
        """
        y = np.asarray(keras.ops.convert_to_numpy(y))
        start, end = self._position, self._position + (len(y) if y.ndim else 0)
        if not y.ndim or end > len(self._y) or not np.array_equal(y, self._y[start:end]):
            self.abandon()
            return
        leaves = tree.flatten(x)
        if len(leaves) != len(self._x):
            self.abandon()
            return
        for leaf, expected in zip(leaves, self._x):
            leaf = np.asarray(keras.ops.convert_to_numpy(leaf))
            expected = expected[start:end]
            if leaf.shape != expected.shape or not np.array_equal(
                leaf, expected.astype(leaf.dtype, copy=False)
            ):
                self.abandon()
                return
        self._batches.append(np.asarray(keras.ops.convert_to_numpy(y_pred)))
        self._position = end

    def abandon(self):
        """Give the pass up, and the checks for the rest of the fit (other data, or a batch
        that could not be read).
        """
        self._mismatched, self._batches = True, []
        self._pending, self._pending_rows = [], 0

    def outputs(self):
        """This epoch's outputs of the callback's validation rows, in order, or None when
        the epoch's validation pass did not cover them (module docstring).
        """
        if not self._complete or not self._batches:
            return None
        outputs = self._batches[0] if len(self._batches) == 1 else np.concatenate(self._batches)
        self._batches, self._complete = [], False
        return outputs


def remove_leftovers(model):
    """Take an earlier patch off ``model`` (one a fit that raised left behind)."""
    attributes = vars(model)
    patched = [n for n in _PATCHED if getattr(attributes.get(n), "_metricsdiag_reuse", False)]
    for name in patched:
        object.__delattr__(model, name)
    if patched or getattr(attributes.get("test_function"), "_metricsdiag_reuse", False):
        model.test_function = None

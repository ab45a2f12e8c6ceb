"""How the Keras callback predicts: batch by batch, through the model's own predict step.

On PyTorch `Predictor.predict` runs ``predict_on_batch`` (the backend's predict step). On JAX it
compiles the model's ``predict_step`` itself and runs it on the variable values read once per
pass (``predict_on_batch`` reads, donates and writes them back at every batch). On TensorFlow
it calls a concrete function of the model's ``predict_step`` per input signature, which skips
``predict_on_batch``'s per-call dispatch (a noticeable part of a small model's prediction
time), and under a strategy with several replicas Keras's ``predict``, which splits each batch
across them. `Predictor.probe` checks the first batch before training starts. With
``automatic`` batches, `Predictor.batches` times the first batch of the first pass over array
data (the smaller of its wall and process CPU time, so that other loads on the machine do not
keep the batches small) and picks the batch size of the rest from it (no prediction of its
own). On JAX, where each new batch shape is compiled anew (longer than a small model's whole
pass), the batch size stays and a short last batch is padded to the batch size: one
compilation per fit.
"""

import time

import keras
import numpy as np
from keras import tree

DEFAULT_BATCH_SIZE = 512
# batch_size=None grows the batches of array data for models that predict a batch of
# DEFAULT_BATCH_SIZE in well under AUTOMATIC_BATCH_SECONDS: on a small model the fixed cost of
# each call, not the model, is most of the prediction pass. Larger models, whose memory per
# batch matters, keep DEFAULT_BATCH_SIZE.
AUTOMATIC_BATCH_SECONDS = 0.02
MAX_AUTOMATIC_BATCH_SIZE = 4096
# Input signatures (shapes past the batch, dtypes) given their own concrete prediction
# function; inputs whose shapes keep changing go through predict_on_batch past this.
MAX_SIGNATURES = 8


def _tensorflow():
    """TensorFlow when it is the Keras backend, else None (nothing else here needs it)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


class Predictor:
    """Predicts a model's outputs batch by batch (one per `MetricsDiagCallback` fit).

    Args:
      model: the Keras model being fit.
      batch_size: the batch size of predictions on array data.
    """

    def __init__(self, model, batch_size=DEFAULT_BATCH_SIZE, automatic=False):
        self.model = model
        self.batch_size = batch_size
        self._forward_functions = {}  # input signature -> concrete predict_step (`predict`)
        self._pads = keras.backend.backend() == "jax"  # each batch shape compiles anew
        self._padded_rows = 0  # the rows short batches are padded to (the most seen)
        # The batch size is still to be judged from a timed batch (`batches`), and that batch's
        # seconds once `predict` has timed it.
        self._sizing = bool(automatic) and not self._pads
        self._timing = False
        self._timed_seconds = None
        self._jax_step = None  # `_jax_predict`'s compiled predict step, made at first use
        self._jax_state = None  # the model's variable values for this pass (`batches`)

    def strategy(self):
        """The TensorFlow distribution strategy of the model, or None on other backends."""
        tf = _tensorflow()
        if tf is None:
            return None
        return getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()

    def predict(self, x):
        """Model outputs for one batch, through the model's own ``predict_step``.

        On PyTorch `predict_on_batch`; on JAX the compiled ``predict_step`` (`_jax_predict`).
        On TensorFlow, under a strategy with several replicas `predict` splits the batch
        across them (`predict_on_batch` would hand each replica the whole batch); on one
        device, a concrete function of ``predict_step`` (`_forward_function`) when there is
        one for the batch, else `predict_on_batch`.
        """
        if self._timing:
            self._timing = False
            wall, cpu = time.perf_counter(), time.process_time()
            outputs = self._predict(x)
            # Other processes' load stretches the wall time, the backend's threads working
            # in parallel the CPU time: the smaller is the nearer to the batch's own cost (a
            # loaded machine judged by wall time alone kept small models at small batches,
            # whose per-call cost is what growing the batch saves).
            self._timed_seconds = min(time.perf_counter() - wall, time.process_time() - cpu)
            return outputs
        return self._predict(x)

    def _predict(self, x):
        strategy = self.strategy()
        if strategy is None:
            if self._pads:
                return self._padded_predict(x)
            return tree.map_structure(np.asarray, self.model.predict_on_batch(x))
        if strategy.num_replicas_in_sync > 1:
            return self.model.predict(x, batch_size=self.batch_size, verbose=0)
        forward = self._forward_function(x)
        if forward is None:
            return self.model.predict_on_batch(x)
        return tree.map_structure(np.asarray, forward((x,)))

    def _padded_predict(self, x):
        """``predict_on_batch`` of ``x`` padded with zero rows to the most rows seen, so that
        every batch has one shape (one compilation); the outputs of the padding are dropped.
        """
        leaves = tree.flatten(x)
        if not leaves or not all(isinstance(a, np.ndarray) and a.ndim for a in leaves):
            return tree.map_structure(np.asarray, self.model.predict_on_batch(x))
        rows = leaves[0].shape[0]
        self._padded_rows = max(self._padded_rows, rows)
        missing = self._padded_rows - rows
        if missing:
            x = tree.map_structure(
                lambda a: np.concatenate([a, np.zeros((missing,) + a.shape[1:], a.dtype)]), x
            )
        outputs = self._jax_predict(x)
        return tree.map_structure(lambda a: np.asarray(a)[:rows], outputs)

    def _jax_predict(self, x):
        """The model's ``predict_step`` of ``x``, compiled once per batch shape, on the
        variable values read once per pass (`batches`): ``predict_on_batch`` reads them for
        every batch, donates them to the step and writes them back, a per-call cost that is a
        sixth of a small model's pass. ``predict_on_batch`` itself under a JAX distribution, or
        for a model that does not compile its steps.
        """
        if (
            not getattr(self.model, "jit_compile", False)
            or getattr(self.model, "run_eagerly", False)
            or keras.distribution.distribution() is not None
        ):
            return self.model.predict_on_batch(x)
        if self._jax_step is None:
            import jax

            model = self.model
            self._jax_step = jax.jit(lambda state, x: model.predict_step(state, (x,))[0])
        if self._jax_state is None:
            self._jax_state = (
                [v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables],
            )
        return self._jax_step(self._jax_state, x)

    def _forward_function(self, x):
        """The concrete ``predict_step`` of the input signature of ``x`` (dense arrays and
        tensors, any batch size), or None for other inputs (sparse or ragged tensors, Python
        lists) and past `MAX_SIGNATURES`.

        The same graph as `predict_on_batch` without its per-call dispatch, a noticeable part
        of the prediction time of a small model.
        """
        tf = _tensorflow()
        leaves = tf.nest.flatten(x)
        if not all(isinstance(a, (np.ndarray, tf.Tensor)) for a in leaves):
            return None
        try:
            specs = [
                tf.TensorSpec((None,) + tuple(a.shape[1:]), tf.as_dtype(a.dtype)) for a in leaves
            ]
        except TypeError:  # a dtype TensorFlow has no equivalent of
            return None
        signature = tuple(specs)
        forward = self._forward_functions.get(signature)
        if forward is None and len(self._forward_functions) < MAX_SIGNATURES:
            step = tf.function(
                self.model.predict_step, jit_compile=bool(getattr(self.model, "jit_compile", False))
            )
            structure = tf.nest.pack_sequence_as(x, specs)
            forward = self._forward_functions[signature] = step.get_concrete_function((structure,))
        return forward

    def batches(self, examples):
        """``examples.batches`` in the callback's batch size; a Dataset's inputs as NumPy on
        the backends other than TensorFlow.

        While the batch size is to be judged (``automatic``), array data of more than one
        batch starts with a batch of `DEFAULT_BATCH_SIZE` rows that `predict` times; the rest
        comes in the batch size that time gives (`grown_batch_size`).
        """
        as_numpy = self.strategy() is None
        self._jax_state = None  # the variables may have changed since the last pass
        if not self._sizing or examples.y is None or examples.y.shape[0] <= DEFAULT_BATCH_SIZE:
            yield from examples.batches(self.batch_size, as_numpy=as_numpy)
            return
        self._timing, self._timed_seconds = True, None
        yield examples.first_batch(DEFAULT_BATCH_SIZE, as_numpy=as_numpy)
        self._timing = False
        if self._timed_seconds is not None:
            self.batch_size = grown_batch_size(self._timed_seconds)
            self._sizing = False
        yield from examples.batches(self.batch_size, as_numpy=as_numpy, start=DEFAULT_BATCH_SIZE)

    def probe(self, examples):
        """(output width, outputs of the first batch); a clear error for what Keras itself
        would fail on with a shape error deep inside the model.
        """
        x, _ = next(iter(self.batches(examples)), (None, None))
        if x is None:
            raise ValueError("MetricsDiagCallback: %s is empty" % examples.name)
        self._check_batched(x, examples)
        outputs = self.predict(x)
        if isinstance(outputs, (list, tuple, dict)):
            raise ValueError(
                "MetricsDiagCallback supports models with a single classification output;"
                " this model has %d outputs" % len(tree.flatten(outputs))
            )
        outputs = np.asarray(outputs)
        if outputs.ndim not in (1, 2):
            raise ValueError(
                "MetricsDiagCallback expects outputs of shape [batch, classes]; the model"
                " returns shape %s" % (outputs.shape,)
            )
        return 1 if outputs.ndim == 1 else outputs.shape[1], outputs

    def _check_batched(self, x, examples):
        """Refuse a Dataset of single examples: inputs one dimension short of the model's."""
        inputs = getattr(self.model, "inputs", None) if examples.dataset is not None else None
        if not inputs or len(tree.flatten(x)) != len(inputs):
            return
        for leaf, model_input in zip(tree.flatten(x), inputs):
            if len(getattr(leaf, "shape", ())) + 1 == len(model_input.shape):
                raise ValueError(
                    "MetricsDiagCallback: %s yields single examples (inputs of shape %s for a"
                    " model that takes %s): batch it, e.g. dataset.batch(256)"
                    % (examples.name, tuple(leaf.shape), tuple(model_input.shape))
                )


def grown_batch_size(seconds):
    """The batch size for ``batch_size=None`` once a batch of `DEFAULT_BATCH_SIZE` rows took
    ``seconds`` to predict (after the probe, which traced the function): `DEFAULT_BATCH_SIZE`
    doubled (up to `MAX_AUTOMATIC_BATCH_SIZE`) while a batch would still predict within
    `AUTOMATIC_BATCH_SECONDS`.
    """
    size = DEFAULT_BATCH_SIZE
    seconds_per_example = seconds / DEFAULT_BATCH_SIZE
    while size < MAX_AUTOMATIC_BATCH_SIZE and 2 * size * seconds_per_example <= (
        AUTOMATIC_BATCH_SECONDS
    ):
        size *= 2
    return size

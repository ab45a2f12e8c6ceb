"""Labels and scores from any framework as NumPy arrays, without importing the framework.

A tensor is recognised by the module of its type (``torch``, ``jax`` / ``jaxlib``,
``tensorflow``) and read through its own methods, so none of those frameworks is imported
here: a PyTorch user's process never loads TensorFlow, and the other way round. Floats
narrower than float32 (float16, bfloat16) become float32, which holds each of their values
exactly, so a score reaches a threshold exactly when the original did.
"""

import numpy as np


class UnreadableTensorError(ValueError):
    """A tensor that cannot be turned into a NumPy array here; the message names the fix."""


def _framework(value):
    return type(value).__module__.split(".")[0]


def _torch_to_numpy(value, what):
    tensor = value.detach()
    device = str(getattr(tensor, "device", "cpu"))
    if device == "meta":
        raise UnreadableTensorError(
            "%s is a torch tensor on the 'meta' device, which holds no values: pass the"
            " tensor computed on a real device" % what
        )
    try:
        if device != "cpu":
            tensor = tensor.cpu()
        if getattr(tensor, "is_sparse", False):
            tensor = tensor.to_dense()
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.float()  # NumPy has no bfloat16; float32 holds both exactly
        return tensor.numpy()
    except (RuntimeError, TypeError, NotImplementedError) as error:
        raise UnreadableTensorError(
            "%s, a torch tensor on device %r, could not be read (%s): move it to the CPU with"
            " .detach().cpu() and pass that" % (what, device, error)
        ) from error


def _jax_to_numpy(value, what):
    try:
        # Copies the array from its device (jax.device_get does the same).
        return np.asarray(value)
    except Exception as error:  # jax's own errors (a tracer under jit) are not ValueErrors
        name = type(error).__name__
        if "Tracer" in name or "Tracer" in type(value).__name__:
            raise UnreadableTensorError(
                "%s is a JAX tracer (%s): add_evaluation needs concrete values; call it"
                " outside jax.jit / jax.grad, on the arrays the jitted function returns"
                % (what, name)
            ) from error
        raise UnreadableTensorError(
            "%s, a JAX array, could not be read (%s: %s): pass jax.device_get(array)"
            % (what, name, error)
        ) from error


def _tensorflow_to_numpy(value, what):
    if not hasattr(value, "numpy"):
        raise UnreadableTensorError(
            "%s is a symbolic TensorFlow tensor (inside tf.function): call the writer"
            " eagerly, outside tf.function, on the tensors it returns" % what
        )
    try:
        return value.numpy()
    except Exception as error:  # TensorFlow's own errors
        raise UnreadableTensorError(
            "%s, a TensorFlow tensor, could not be read (%s: %s): call the writer eagerly"
            " and pass tensor.numpy()" % (what, type(error).__name__, error)
        ) from error


_READERS = {
    "torch": _torch_to_numpy,
    "jax": _jax_to_numpy,
    "jaxlib": _jax_to_numpy,
    "tensorflow": _tensorflow_to_numpy,
}


def to_numpy(value, what="value", objects=False):
    """``value`` (a NumPy array, a list, a scalar, or a PyTorch / JAX / TensorFlow tensor on
    any device) as a NumPy array. Floats narrower than float32 are widened to float32.

    Args:
      value: the array-like to read.
      what: its name in error messages (``"y_score"``).
      objects: whether an array of Python objects (mixed strings and numbers: example ids,
        group values) is allowed; else only numbers and strings are.

    Raises:
      UnreadableTensorError: a tensor that cannot be read here (a torch tensor on the meta
        device, a JAX tracer, a symbolic TensorFlow tensor), or a value NumPy cannot hold
        as numbers; the message says what to pass instead.
    """
    reader = _READERS.get(_framework(value))
    if reader is not None:
        array = np.asarray(reader(value, what))
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise UnreadableTensorError(
                "%s of type %s could not be read as an array (%s): pass a NumPy array, a list"
                " of numbers, or a tensor" % (what, type(value).__name__, error)
            ) from error
    if array.dtype.kind == "f" and array.dtype.itemsize < 4 or array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    if array.dtype == object and not objects:
        raise UnreadableTensorError(
            "%s could not be read as an array of numbers (it holds %s objects): pass a NumPy"
            " array or a tensor" % (what, type(array.flat[0]).__name__ if array.size else "no")
        )
    return array

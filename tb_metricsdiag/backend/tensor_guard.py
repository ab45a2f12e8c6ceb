"""Checks a stored tensor's declared shape against its content before TensorBoard builds it.

Both of TensorBoard's loaders hand tensors to plugins as arrays that they build with
``tensorboard.util.tensor_util.make_ndarray``, in the thread that calls ``read_tensors``: the
Python loader from the protos it kept, the client of the Rust data server from the protos it
received. ``make_ndarray`` trusts the declared shape: a proto of shape ``[100000, 100000]``
holding one value becomes an array of 10^10 copies of it. There is no hook before that call,
so `install` wraps it: while `checking` is active in a thread (the reader's reads of this
plugin's tensors), a proto whose declared size does not match its content, or exceeds
`schema.MAX_TENSOR_ELEMENTS`, becomes a small placeholder (`refusal`) instead of an array. Other
plugins' reads, and other threads, get ``make_ndarray`` unchanged.
"""

import contextlib
import threading

import numpy as np
from tensorboard.compat.proto import types_pb2
from tensorboard.util import tensor_util

from tb_metricsdiag.format import schema

# The repeated field holding the values of each dtype when there is no tensor_content.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}

_ITEMSIZES = {
    types_pb2.DT_FLOAT: 4,
    types_pb2.DT_DOUBLE: 8,
    types_pb2.DT_HALF: 2,
    types_pb2.DT_BFLOAT16: 2,
    types_pb2.DT_INT32: 4,
    types_pb2.DT_UINT8: 1,
    types_pb2.DT_UINT16: 2,
    types_pb2.DT_INT16: 2,
    types_pb2.DT_INT8: 1,
    types_pb2.DT_INT64: 8,
    types_pb2.DT_UINT32: 4,
    types_pb2.DT_UINT64: 8,
    types_pb2.DT_BOOL: 1,
}

_state = threading.local()
_install_lock = threading.Lock()


class Refusal:
    """Why a stored tensor was not built: the one item of the placeholder array `refusal`."""

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return "Refusal(%r)" % (self.reason,)


def refusal(datum_numpy):
    """The `Refusal` a datum's array stands for, or None for a genuine array."""
    if (
        isinstance(datum_numpy, np.ndarray)
        and datum_numpy.dtype == object
        and datum_numpy.shape == ()
        and isinstance(datum_numpy.item(), Refusal)
    ):
        return datum_numpy.item()
    return None


def problem_of(tensor):
    """Why ``tensor`` (a ``TensorProto``) must not be built, or None when it may.

    Its declared number of elements must be at most `schema.MAX_TENSOR_ELEMENTS` and equal to
    what its content holds (``tensor_content`` bytes, or the values of its dtype's field).
    """
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    if any(size < 0 for size in dims):
        return "a stored tensor declares a negative dimension %s" % (dims,)
    declared = 1
    for size in dims:
        declared *= size  # Python integers: no overflow, whatever the dims
    if declared > schema.MAX_TENSOR_ELEMENTS:
        return "a stored tensor declares shape %s, more than %d elements" % (
            dims,
            schema.MAX_TENSOR_ELEMENTS,
        )
    if tensor.tensor_content:
        itemsize = _ITEMSIZES.get(tensor.dtype)
        if itemsize is not None and len(tensor.tensor_content) != declared * itemsize:
            return "a stored tensor declares shape %s but holds %d bytes" % (
                dims,
                len(tensor.tensor_content),
            )
        return None
    field = _VALUE_FIELDS.get(tensor.dtype)
    if field is None:
        return None  # make_ndarray refuses the dtype itself
    stored = len(getattr(tensor, field))
    if stored != declared:
        return "a stored tensor declares shape %s but holds %d values" % (dims, stored)
    return None


def _checked_make_ndarray(tensor, _original=None):
    if getattr(_state, "active", False):
        problem = problem_of(tensor)
        if problem is not None:
            return np.array(Refusal(problem), dtype=object)
    return _original(tensor)


def install():
    """Wrap ``tensor_util.make_ndarray`` once per process (idempotent, thread-safe)."""
    with _install_lock:
        current = tensor_util.make_ndarray
        if getattr(current, "_tb_metricsdiag_guard", False):
            return

        def make_ndarray(tensor):
            return _checked_make_ndarray(tensor, current)

        make_ndarray._tb_metricsdiag_guard = True
        make_ndarray.__doc__ = current.__doc__
        tensor_util.make_ndarray = make_ndarray


@contextlib.contextmanager
def checking():
    """Within this block, in this thread, tensors are checked before they are built."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous

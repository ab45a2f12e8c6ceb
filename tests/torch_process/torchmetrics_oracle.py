"""TorchMetrics for the tests of the TensorFlow process, from a process of its own.

`torchmetrics_reference.TorchMetrics` starts this script (tests/framework_processes.py says why
TorchMetrics may not be imported beside TensorFlow). It reads pickled requests from standard
input, ``(name, kwargs, arrays)``: a metric class of ``torchmetrics.classification``, its
constructor's arguments and its inputs as NumPy arrays; and writes for each, pickled, either
``("value", the metric's value as a number or nested list)`` or ``("error", message)``.
"""

import pickle
import sys

import numpy as np
import torch
from torchmetrics import classification


def answer(name, kwargs, arrays):
    metric = getattr(classification, name)(**kwargs)
    value = metric(*(torch.from_numpy(np.ascontiguousarray(array)) for array in arrays))
    return value.tolist()


def main():
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = ("value", answer(*request))
        except Exception as error:  # noqa: BLE001 (the test that asked reports it)
            reply = ("error", "%s: %s" % (type(error).__name__, error))
        pickle.dump(reply, replies)
        replies.flush()


if __name__ == "__main__":
    main()

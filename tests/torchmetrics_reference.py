"""TorchMetrics as an independent reference in the TensorFlow test process.

TorchMetrics needs PyTorch, which never shares a process with TensorFlow here
(tests/framework_processes.py), so its metrics are computed by
``tests/torch_process/torchmetrics_oracle.py`` in a long-lived process of its own, started at
the first question. The ``torchmetrics`` fixture of conftest.py is one `TorchMetrics` per session.
"""

import os
import pickle
import subprocess
import sys

ORACLE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "torch_process", "torchmetrics_oracle.py"
)


class TorchMetrics:
    """``reference("BinaryCalibrationError", (preds, target), n_bins=15)`` is the value of
    ``torchmetrics.classification.BinaryCalibrationError(n_bins=15)(preds, target)``."""

    def __init__(self):
        self._process = None

    def __call__(self, name, arrays, **kwargs):
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, ORACLE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        pickle.dump((name, kwargs, tuple(arrays)), self._process.stdin)
        self._process.stdin.flush()
        try:
            kind, value = pickle.load(self._process.stdout)
        except EOFError:
            raise RuntimeError("the TorchMetrics process exited (see its output above)") from None
        if kind == "error":
            raise RuntimeError("TorchMetrics %s%r: %s" % (name, kwargs, value))
        return value

    def close(self):
        if self._process is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
            self._process = None

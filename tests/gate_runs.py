"""A small logdir for the gate tests, written with `tb_metricsdiag.summary.write_evaluation`
under ``tf.summary``, and the model outputs behind it: the reference the tests recompute every
metric from with scikit-learn; and the command line as the gate tests call it.
"""

import dataclasses
import json
import os

import numpy as np

from tb_metricsdiag import cli

STEPS = (0, 1, 2)


@dataclasses.dataclass
class GateRun:
    name: str
    class_names: list
    y_true: np.ndarray
    scores: dict  # step -> [n, C] probabilities

    def predicted(self, step):
        return self.scores[step].argmax(axis=1)


@dataclasses.dataclass
class GateLogdir:
    logdir: str
    runs: dict  # name -> GateRun


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# name -> (class names, examples, share of each class, separation at each step)
RUNS = {
    "fraud": (["legit", "fraud"], 400, [0.85, 0.15], (0.5, 1.5, 2.5)),
    "animals": (["cat", "dog", "bird"], 300, [0.5, 0.3, 0.2], (0.5, 1.2, 2.0)),
    "production": (["legit", "fraud"], 400, [0.85, 0.15], (0.4, 1.0, 2.2)),
}


def write_gate_logdir(root, runs=RUNS, seed=0):
    """Write the runs of ``runs`` under ``root``; returns the `GateLogdir`."""
    import tensorflow as tf

    from tb_metricsdiag import summary

    rng = np.random.default_rng(seed)
    result = {}
    for name, (class_names, n, shares, separations) in runs.items():
        num_classes = len(class_names)
        y_true = rng.choice(num_classes, size=n, p=shares)
        noise = rng.normal(size=(n, num_classes))
        run = GateRun(name, class_names, y_true, {})
        writer = tf.summary.create_file_writer(os.path.join(root, name))
        with writer.as_default():
            for step, separation in zip(STEPS, separations):
                scores = _softmax(noise + separation * np.eye(num_classes)[y_true])
                run.scores[step] = scores
                summary.write_evaluation(y_true, scores, step=step, class_names=class_names)
        writer.close()
        result[name] = run
    return GateLogdir(str(root), result)


def run_cli(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``tb-metricsdiag`` with ``argv``, in process."""
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def requirement_results(capsys, logdir, exprs, *options):
    """``(exit status, {run: its JSON report})`` of ``report LOGDIR --require`` each of
    ``exprs``; the status must be 0 or 1.
    """
    argv = ["report", logdir, "--format", "json"]
    for expr in exprs:
        argv += ["--require", expr]
    status, out, err = run_cli(capsys, *argv, *options)
    assert status in (0, 1), err
    return status, {run["run"]: run for run in json.loads(out)["runs"]}

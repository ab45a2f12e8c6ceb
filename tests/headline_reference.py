"""The headline scalars a run should hold, computed independently with scikit-learn (and the
ECE in NumPy), and the check of what TensorBoard's own scalars route serves against them.
Shared by the TensorFlow and the PyTorch test processes: imports no framework.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

PER_CLASS_LIMIT = 20  # the contract's "at most 20 classes"
ECE_BINS = 15
# Stored as float32, as tf.summary.scalar stores them.
TOLERANCE = 1e-6


def ece(confidence, correct):
    """Expected calibration error over 15 equal-width bins, the last one closed."""
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    bins = np.clip(np.floor(confidence * ECE_BINS).astype(int), 0, ECE_BINS - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(confidence[inside].mean() - correct[inside].mean())
    return total / confidence.size


def draw_multiclass(rng, rows, skill, classes=3):
    """``(labels, probabilities [rows, classes])`` of a model of some ``skill``."""
    labels = rng.integers(0, classes, size=rows)
    scores = rng.dirichlet(np.ones(classes), size=rows)
    scores[np.arange(rows), labels] += skill
    return labels, scores / scores.sum(axis=1, keepdims=True)


def draw_binary(rng, rows):
    """``(0/1 labels, positive-class probabilities [rows])``."""
    labels = rng.integers(0, 2, size=rows)
    return labels, np.clip(0.3 * labels + rng.random(rows) * 0.7, 0, 1)


def draw_multilabel(rng, rows, labels_per_row=4):
    """``(multi-hot labels, probabilities)`` of ``labels_per_row`` labels."""
    labels = (rng.random((rows, labels_per_row)) < 0.4).astype(int)
    return labels, np.clip(0.35 * labels + rng.random((rows, labels_per_row)) * 0.65, 0, 1)


def expected_scalars(split, names, task, labels, probabilities):
    """``{tag: value}`` of one split at one step: scikit-learn on the same predictions.

    ``probabilities``: ``[n, C]`` class probabilities, ``[n]`` of the positive class (binary),
    or ``[n, K]`` per label (multi-label).
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    prefix = "metricsdiag/%s/" % split
    classes = list(range(len(names)))
    if task == "multilabel":
        predicted = (probabilities >= 0.5).astype(int)
        figures = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "macro_f1": skm.f1_score(labels, predicted, average="macro", zero_division=np.nan),
            "ece": ece(probabilities, labels),
        }
        recall = skm.recall_score(labels, predicted, average=None, zero_division=np.nan)
        precision = skm.precision_score(labels, predicted, average=None, zero_division=np.nan)
    else:
        if probabilities.ndim == 1:
            probabilities = np.stack([1 - probabilities, probabilities], axis=1)
        if len(names) == 2:
            predicted = (probabilities[:, 1] >= 0.5).astype(int)
            confidence, correct = probabilities[:, 1], labels == 1
        else:
            predicted = probabilities.argmax(axis=1)
            confidence, correct = probabilities.max(axis=1), predicted == labels
        figures = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "balanced_accuracy": skm.balanced_accuracy_score(labels, predicted),
            "macro_f1": skm.f1_score(
                labels, predicted, labels=classes, average="macro", zero_division=np.nan
            ),
            "ece": ece(confidence, correct),
        }
        recall = skm.recall_score(
            labels, predicted, labels=classes, average=None, zero_division=np.nan
        )
        precision = skm.precision_score(
            labels, predicted, labels=classes, average=None, zero_division=np.nan
        )
    expected = {prefix + key: float(value) for key, value in figures.items()}
    if len(names) <= PER_CLASS_LIMIT:
        for figure, values in (("recall", recall), ("precision", precision)):
            expected.update(
                {"%s%s/%s" % (prefix, figure, name): float(v) for name, v in zip(names, values)}
            )
    # An undefined figure (a class never predicted has no precision) is not written.
    return {tag: value for tag, value in expected.items() if not np.isnan(value)}


def headline_tags(split, names, task):
    """Every tag a split can hold (its defined figures are a subset)."""
    prefix = "metricsdiag/%s/" % split
    tags = {prefix + name for name in ("accuracy", "balanced_accuracy", "macro_f1", "ece")}
    if task == "multilabel":
        tags.discard(prefix + "balanced_accuracy")
    if len(names) <= PER_CLASS_LIMIT:
        tags |= {"%s%s/%s" % (prefix, f, name) for f in ("recall", "precision") for name in names}
    return tags


def check_headline_scalars(get_scalars, split, names, task, steps):
    """Check every headline scalar of ``split`` against `expected_scalars` at every step.

    Args:
      get_scalars: ``tag -> (status, [[wall_time, step, value]])`` (TensorBoard's own
        ``/data/plugin/scalars/scalars`` route of one run).
      steps: ``{step: (labels, probabilities)}``.

    Returns:
      The set of tags that hold at least one value.
    """
    expected = {
        step: expected_scalars(split, names, task, labels, probabilities)
        for step, (labels, probabilities) in steps.items()
    }
    written = set().union(*(set(figures) for figures in expected.values()))
    assert written <= headline_tags(split, names, task)
    for tag in sorted(headline_tags(split, names, task)):
        status, points = get_scalars(tag)
        served = {} if status != 200 else {step: value for _, step, value in points}
        for step, figures in expected.items():
            if tag in figures:
                approx = pytest.approx(figures[tag], abs=TOLERANCE, rel=TOLERANCE)
                assert served.get(step) == approx, (tag, step, served)
            else:
                assert step not in served, (tag, step, served)
    return written


def scalars_route(url, route, params=None):
    """``(status, body)`` of TensorBoard's own scalars plugin at ``url``."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    address = url + "/data/plugin/scalars" + route
    if params:
        address += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(address, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def check_through_tensorboard(logdir, expected):
    """Serve ``logdir`` with each loader and check every run's headline scalars there.

    Args:
      expected: ``{run: (class names, task, {split: {step: (labels, probabilities)}})}``.
    """
    import time

    from tensorboard_server import STARTUP_TIMEOUT_S, serving

    for load_fast in ("true", "false"):
        with serving(logdir, load_fast=load_fast) as url:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not _loaded(url, expected):
                assert time.monotonic() < deadline, scalars_route(url, "/tags")
                time.sleep(0.5)
            listed = scalars_route(url, "/tags")[1]
            for run, (names, task, splits) in expected.items():
                for split, steps in splits.items():
                    written = check_headline_scalars(
                        lambda tag, run=run: scalars_route(
                            url, "/scalars", {"run": run, "tag": tag}
                        ),
                        split,
                        names,
                        task,
                        steps,
                    )
                    prefix = "metricsdiag/%s/" % split
                    assert written <= {tag for tag in listed[run] if tag.startswith(prefix)}


def _loaded(url, expected):
    """Whether every split's accuracy scalar of every run has its last expected step."""
    for run, (_, _, splits) in expected.items():
        for split, steps in splits.items():
            status, points = scalars_route(
                url, "/scalars", {"run": run, "tag": "metricsdiag/%s/accuracy" % split}
            )
            if status != 200 or max(steps) not in {step for _, step, _ in points}:
                return False
    return True

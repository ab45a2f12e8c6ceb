"""Runs with many classes for the tab's browser tests and its render-time benchmark.

Written with `tb_metricsdiag.MetricsDiagWriter` from seeded NumPy scores (no training): each
class has a skill of its own (a few classes are much worse than the rest) and a neighbour it is
mixed up with, so the worst classes and the most confused pairs are well defined.
"""

import numpy as np

# Logit added to an example's true class: most classes are learnt, a few hardly at all.
_SKILL_RANGE = (1.5, 5.0)
_HARD_SHARE = 0.05
_HARD_SKILL = 0.3
# Logit added to the class each class is mixed up with (its index plus one, wrapping).
_NEIGHBOUR_PULL = 2.0


def class_names(classes):
    """Readable, distinct names of different lengths: ``"c0-fox"``, ``"c1-marmot"``, ..."""
    animals = ["fox", "marmot", "heron", "ibex", "newt", "okapi", "lynx", "tapir"]
    return ["c%d-%s" % (i, animals[i % len(animals)]) for i in range(classes)]


def scores(classes, examples, seed):
    """(y_true [examples] int, y_score [examples, classes] float32 softmax probabilities)."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, size=examples)
    skill = rng.uniform(*_SKILL_RANGE, size=classes)
    skill[rng.random(classes) < _HARD_SHARE] = _HARD_SKILL
    logits = rng.normal(size=(examples, classes)).astype(np.float32)
    rows = np.arange(examples)
    logits[rows, y_true] += skill[y_true]
    logits[rows, (y_true + 1) % classes] += _NEIGHBOUR_PULL * rng.random(examples)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return y_true, probs


def write_run(log_dir, classes, examples, seed, epochs=1):
    """Writes `epochs` validation evaluations of a `classes`-class run into `log_dir`."""
    from tb_metricsdiag import MetricsDiagWriter

    with MetricsDiagWriter(log_dir, class_names=class_names(classes)) as writer:
        for step in range(epochs):
            y_true, y_score = scores(classes, examples, seed + step)
            writer.add_evaluation(y_true, y_score, step, split="validation", from_logits=False)

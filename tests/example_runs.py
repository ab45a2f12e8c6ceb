"""Runs written with example records by `MetricsDiagWriter` (no framework), and the NumPy
brute force that the routes' answers are checked against.

Every run keeps what it was given (labels, probabilities, ids, previews per split and step),
so a test can recompute each cell's examples, the flips and the label issues on its own.
"""

import dataclasses
import os

import numpy as np

from tb_metricsdiag import MetricsDiagWriter

STEPS = 3
ROWS = 600


class TamperingWriter(MetricsDiagWriter):
    """A `MetricsDiagWriter` that replaces the payload of some kinds of example records:
    ``damages`` maps a kind (``"examples"``, ``"example_ids"``, ...) to a function of the
    written payload (bytes) returning the value to write instead.
    """

    def __init__(self, log_dir, damages, **kwargs):
        self._damages = damages
        super().__init__(log_dir, **kwargs)

    def _write_records(self, written, step):
        changed = []
        for record in written:
            damage = self._damages.get(record.tag.rsplit("/", 1)[-1])
            if damage is not None:
                record = record._replace(value=damage(record.value.item()))
            changed.append(record)
        super()._write_records(changed, step)


@dataclasses.dataclass
class Evaluation:
    """One split at one step as the writer was given it (probabilities, float32)."""

    labels: np.ndarray  # [n] class ids, or [n, K] multi-hot
    scores: np.ndarray  # [n, C] probabilities, [n] one sigmoid, or [n, K] multi-label
    ids: list  # one per row (the positions when the writer was given none)
    previews: object = None


@dataclasses.dataclass
class WrittenRun:
    name: str
    kind: str  # "multiclass", "binary" (one sigmoid output) or "multilabel"
    class_names: list
    evaluations: dict  # (split, step) -> Evaluation


def probabilities(rng, labels, num_classes, skill):
    """Softmax rows, float32, whose true class gets ``skill`` more logit."""
    logits = rng.normal(size=(labels.size, num_classes))
    logits[np.arange(labels.size), labels] += skill
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def write_multiclass(logdir, name, ids, rng, previews=None, splits=("validation", "test")):
    """A 3-class run: ``STEPS`` evaluations of each split, the rows in a new random order at
    every step (ids follow their rows), a model that learns the true classes better at every
    step, and 8% of the given labels flipped to another class.
    """
    names = ["cat", "dog", "bird"]
    run = WrittenRun(name, "multiclass", names, {})
    truth = rng.integers(0, 3, size=ROWS)
    given_labels = truth.copy()
    flipped = rng.random(ROWS) < 0.08
    given_labels[flipped] = (truth[flipped] + 1) % 3
    with MetricsDiagWriter(os.path.join(logdir, name), class_names=names) as writer:
        for step in range(STEPS):
            for split in splits:
                order = rng.permutation(ROWS)
                given = given_labels[order]
                scores = probabilities(rng, truth[order], 3, 1.0 + 1.5 * step)
                row_ids = [ids[i] for i in order]
                row_previews = None if previews is None else [previews[i] for i in order]
                writer.add_evaluation(
                    given,
                    scores,
                    step,
                    split=split,
                    from_logits=False,
                    example_ids=row_ids,
                    previews=row_previews,
                )
                run.evaluations[(split, step)] = Evaluation(given, scores, row_ids, row_previews)
            writer.add_logs({"loss": 1.0 / (step + 1), "val_loss": 1.1 / (step + 1)}, step)
    return run


def write_binary(logdir, name, rng, images):
    """One sigmoid output, integer ids 1000 + row, grey image previews."""
    run = WrittenRun(name, "binary", ["legit", "fraud"], {})
    ids = np.arange(1000, 1000 + ROWS)
    with MetricsDiagWriter(os.path.join(logdir, name), class_names=run.class_names) as writer:
        for step in range(STEPS):
            labels = (rng.random(ROWS) < 0.4).astype(np.int64)
            logit = rng.normal(size=ROWS) + (2 * labels - 1) * (0.5 + 0.5 * step)
            scores = (1 / (1 + np.exp(-logit))).astype(np.float32)
            writer.add_evaluation(
                labels, scores, step, from_logits=False, example_ids=ids, previews=images
            )
            run.evaluations[("validation", step)] = Evaluation(labels, scores, ids.tolist(), images)
    return run


def write_multilabel(logdir, name, rng, labels_count=4):
    """Four independent sigmoid labels, ids the positions (none given)."""
    names = ["red", "green", "blue", "gray"]
    run = WrittenRun(name, "multilabel", names, {})
    with MetricsDiagWriter(os.path.join(logdir, name), multi_label=True, class_names=names) as w:
        for step in range(STEPS):
            labels = (rng.random((ROWS, labels_count)) < 0.3).astype(np.int64)
            logit = rng.normal(size=labels.shape) + (2 * labels - 1) * (0.5 + step)
            scores = (1 / (1 + np.exp(-logit))).astype(np.float32)
            w.add_evaluation(labels, scores, step, from_logits=False)
            run.evaluations[("validation", step)] = Evaluation(labels, scores, list(range(ROWS)))
    return run


def write_without_examples(logdir, name, rng):
    with MetricsDiagWriter(os.path.join(logdir, name)) as writer:
        for step in range(2):
            labels = rng.integers(0, 3, size=100)
            writer.add_evaluation(
                labels, probabilities(rng, labels, 3, 2.0), step, example_ids=False
            )


# -- brute force --------------------------------------------------------------------------


def class_scores(run, evaluation):
    """``(probs [n, C] float32, predicted [n])`` of a single-label evaluation."""
    scores = evaluation.scores
    if run.kind == "binary":
        probs = np.stack([np.float32(1) - scores, scores], axis=1)
        return probs, (scores >= np.float32(0.5)).astype(np.int64)
    return scores, np.argmax(scores, axis=1)


def cell_reference(run, evaluation, true, pred, label=None):
    """``(count, [row], [score], [true score])`` of a cell, every example in the contract's
    order (errors: score descending; right: ascending; equal scores: the lower row first).
    """
    if run.kind == "multilabel":
        column = evaluation.scores[:, label]
        decided = (column >= np.float32(0.5)).astype(np.int64)
        actual = evaluation.labels[:, label]
        rows = np.flatnonzero((actual == true) & (decided == pred))
        score = np.where(decided[rows] == 1, column[rows], np.float32(1) - column[rows])
        true_score = np.where(actual[rows] == 1, column[rows], np.float32(1) - column[rows])
    else:
        probs, predicted = class_scores(run, evaluation)
        rows = np.flatnonzero((evaluation.labels == true) & (predicted == pred))
        score, true_score = probs[rows, pred], probs[rows, true]
    key = score if true == pred else -score
    order = np.lexsort((rows, key))
    return rows.size, rows[order], score[order], true_score[order]


def correct_rows(run, evaluation):
    """``[n]`` whether each row was predicted right (multi-label: every label)."""
    if run.kind == "multilabel":
        decided = (evaluation.scores >= np.float32(0.5)).astype(np.int64)
        return (decided == evaluation.labels).all(axis=1)
    return class_scores(run, evaluation)[1] == evaluation.labels


def top_confidence(run, evaluation):
    """``[n]`` the probability of each row's predicted class (multi-label: the smallest over
    its labels of the probability of the predicted value)."""
    if run.kind == "multilabel":
        scores = evaluation.scores
        return np.where(scores >= np.float32(0.5), scores, 1 - scores).min(axis=1)
    probs, predicted = class_scores(run, evaluation)
    return probs[np.arange(predicted.size), predicted]

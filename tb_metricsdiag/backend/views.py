"""The JSON documents of the HTTP API, built from `reader` results. No HTTP, no I/O.

Every function returns plain Python (dicts, lists, int, float, str, None) ready for strict
JSON: undefined ratios (NaN) and infinities become ``None``. The shapes are pinned in
``CONTRACT.md``; extra keys are documented here.
"""

import numpy as np

from tb_metricsdiag.core import labels, metrics
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.diagnostics import classes as class_rules
from tb_metricsdiag.format import schema


def run_entry(index, steps, error=None, trainings=1):
    """One entry of ``/runs``.

    Args:
      index: the run's `run_records.RunIndex`.
      steps: list of int, the steps with a confusion matrix (validation, else the first
        split with counts).
      error: optional str, why the run's data could not be read; the entry then has an
        ``error`` key.
      trainings: int, the trainings written into the run (steps restarting); ``steps`` are the
        latest one's.
    """
    entry = {
        "run": index.run,
        "steps": list(steps),
        "splits": list(index.splits),
        "class_names": list(index.class_names),
        "has_counts": bool(index.has_counts),
        "task": index.task,
        "default_class": labels.default_class(len(index.class_names), index.multilabel)
        if index.class_names
        else None,
        "trainings": int(trainings),
        "slice_keys": {split: list(keys) for split, keys in index.slice_keys.items()},
    }
    if error is not None:
        entry["error"] = error
    return entry


def runs_view(entries):
    """``/runs``: the entries of `run_entry`, sorted by run name."""
    return {"runs": sorted(entries, key=lambda entry: entry["run"])}


FULL_MATRIX_MAX_CLASSES = 100
"""Most classes whose ``/confusion`` answer holds the whole matrix unless asked for
(``matrix=full``): above, the nonzero cells (a million numbers as JSON are megabytes)."""


MAX_CELLS = 100_000
"""Most nonzero cells a ``"cells"`` answer lists (the largest ones)."""


DEFAULT_PAIRS = 20
"""Confused pairs a ``/confusion`` answer lists unless ``pairs`` says otherwise."""


MAX_PAIRS = 1000
"""Most confused pairs a request may ask for."""


MATRIX_FULL, MATRIX_CELLS = "full", "cells"


def per_class_rows(names, columns):
    """One entry per class, ``{"name", key: value}``, from ``{key: [C] values}``: each column
    converted to JSON at once, for a thousand classes are a thousand entries.
    """
    columns = {key: to_json_value(values) for key, values in columns.items()}
    return [
        dict(zip(columns, values), name=str(name))
        for name, *values in zip(names, *columns.values())
    ]


def _per_class_columns(confusion):
    """Precision, recall, F1, support and their Wilson 95% intervals per class, as columns
    ``{key: [C] values}`` (intervals ``[C, 2]``), of ``[C, C]`` or ``[K, 2, 2]`` counts.
    """
    per_class = metrics.per_class_metrics(confusion)
    intervals = metrics.per_class_intervals(confusion)
    return {
        "precision": per_class["precision"],
        "recall": per_class["recall"],
        "f1": per_class["f1"],
        "support": per_class["support"],
        "precision_interval": np.stack(intervals["precision"], axis=1),
        "recall_interval": np.stack(intervals["recall"], axis=1),
    }


def _per_class_entries(names, confusion):
    """The ``per_class`` entries of `confusion_view` from ``[C, C]`` (or multi-label ``[K, 2,
    2]``) counts.
    """
    flags = class_rules.class_flags(confusion, names)
    return per_class_rows(
        names,
        {
            **_per_class_columns(confusion),
            "flags": [[each["flag"] for each in of_class] for of_class in flags],
            "flag_reasons": [[each["reason"] for each in of_class] for of_class in flags],
        },
    )


def subset_accuracy(evaluation):
    """The share of a multi-label evaluation's rows whose whole label set is right (None
    without rows).
    """
    return evaluation.exact_matches / evaluation.total if evaluation.total else None


def multilabel_confusion_view(run, evaluation):
    """``/confusion`` of a multi-label split: ``matrices`` (one ``[[tn, fp], [fn, tp]]`` per
    label, scikit-learn's ``multilabel_confusion_matrix`` layout), ``per_class`` per label (as
    `confusion_view`, flags included), ``accuracy`` the subset accuracy (rows whose whole label
    set is right), ``hamming_loss``, ``label_accuracy`` (1 - Hamming loss), ``macro_f1`` over the
    labels, ``total`` rows; ``matrix`` and ``normalized`` are null.
    """
    matrices = evaluation.matrices
    view = to_json_value(
        {
            "run": run,
            "split": evaluation.split,
            "step": evaluation.step,
            "task": evaluation.task,
            "class_names": evaluation.class_names,
            "matrix": None,
            "normalized": None,
            "matrices": matrices,
            "flag_rule": class_rules.FLAG_RULE,
            "accuracy": subset_accuracy(evaluation),
            "hamming_loss": metrics.hamming_loss(matrices),
            "label_accuracy": metrics.accuracy(metrics.pooled_label_confusion(matrices)),
            "macro_f1": metrics.macro_f1(matrices),
            "total": evaluation.total,
        }
    )
    view["per_class"] = _per_class_entries(evaluation.class_names, matrices)
    return view


def confusion_view(run, evaluation, full_matrix=False, pairs=DEFAULT_PAIRS):
    """``/confusion``: the confusion matrix of one split at one step and what follows from it.

    Args:
      run: the run's name.
      evaluation: a `run_records.SplitEvaluation`.
      full_matrix: whether to send the whole matrix whatever the number of classes.
      pairs: int, the most confused pairs listed, ``1 <= pairs <= MAX_PAIRS``.

    Beyond the contract: ``matrix_form``: ``"full"`` (at most `FULL_MATRIX_MAX_CLASSES`
    classes, or ``full_matrix``: ``matrix`` is the ``[C][C]`` list and ``normalized`` holds
    ``true`` (rows sum to 1) and ``pred`` (columns sum to 1)) or ``"cells"`` (``matrix`` and
    ``normalized`` null, ``cells`` ``{"rows", "cols", "counts"}`` the nonzero cells in
    row-major order, at most `MAX_CELLS`, the largest, with ``cells_truncated``; in the full
    form ``cells`` is null and ``cells_truncated`` false); ``predicted_totals`` (column sums);
    ``confused_pairs`` (`metrics.confused_pairs`: ``[{"actual", "predicted", "count",
    "share"}]``); each ``per_class`` entry's ``precision_interval`` and ``recall_interval``
    (``[lower, upper]``, the Wilson 95% interval of `metrics.per_class_intervals`; nulls where
    undefined), ``flags`` (`class_rules.class_flags`) and ``flag_reasons`` (why each flag
    fired, in words, in the order of ``flags``), with ``flag_rule`` (the rule in words);
    ``task``; ``balanced_accuracy``, ``macro_f1``, ``majority_baseline`` (the accuracy
    of always predicting the largest class), ``no_better_than_majority``
    (`class_rules.no_better_than_majority`) and ``total``. A multi-label split is answered by
    `multilabel_confusion_view`.
    """
    if evaluation.multilabel:
        return multilabel_confusion_view(run, evaluation)
    confusion = evaluation.confusion
    num_classes = confusion.shape[0]
    full = full_matrix or num_classes <= FULL_MATRIX_MAX_CLASSES
    cells, truncated = None, False
    if not full:
        rows, cols, counts, truncated = metrics.nonzero_cells(confusion, MAX_CELLS)
        cells = {"rows": rows, "cols": cols, "counts": counts}
    actual, predicted, counts, shares = (
        to_json_value(values) for values in metrics.confused_pairs(confusion, pairs)
    )
    view = to_json_value(
        {
            "run": run,
            "split": evaluation.split,
            "step": evaluation.step,
            "class_names": evaluation.class_names,
            "task": evaluation.task,
            "matrix_form": MATRIX_FULL if full else MATRIX_CELLS,
            "cells_truncated": truncated,
            "flag_rule": class_rules.FLAG_RULE,
            "accuracy": metrics.accuracy(confusion),
            "balanced_accuracy": metrics.balanced_accuracy(confusion),
            "macro_f1": metrics.macro_f1(confusion),
            "majority_baseline": metrics.majority_baseline_accuracy(confusion),
            "no_better_than_majority": class_rules.no_better_than_majority(confusion),
            "total": confusion.sum(),
        }
    )
    # The large parts, converted array by array: walking them again would cost more than
    # everything else of the answer.
    view.update(
        matrix=to_json_value(confusion) if full else None,
        normalized={
            by: to_json_value(metrics.normalize_confusion(confusion, by)) for by in ("true", "pred")
        }
        if full
        else None,
        cells=None if cells is None else {key: to_json_value(v) for key, v in cells.items()},
        predicted_totals=to_json_value(confusion.sum(axis=0)),
        confused_pairs=[
            {"actual": a, "predicted": p, "count": c, "share": share}
            for a, p, c, share in zip(actual, predicted, counts, shares)
        ],
        per_class=_per_class_entries(evaluation.class_names, confusion),
    )
    return view


def diagnostics_view(run, findings, not_run=(), trainings=1):
    """``/diagnostics``: the findings of the diagnostics engine, as strict JSON.

    Beyond the contract: ``not_run``, the rules that could not run, why, and the step that
    would let them run (``[{"rule", "reason", "how"}]``, ``how`` null where no step would: no
    problem found is not the same as not looked), and ``trainings``, the
    number of trainings written into the run (the findings are about the latest).
    """
    return to_json_value(
        {"run": run, "findings": list(findings), "not_run": list(not_run), "trainings": trainings}
    )


def slices_view(run, split, step, key, slices):
    """``/slices``: the figures of every slice of one group key at one step, worst first.

    Args:
      run: the run's name.
      split: the split.
      step: the step of the slices.
      key: the group key.
      slices: ``{value: SplitEvaluation}`` of that key (`reader.Reader.slices`).

    Returns:
      ``{"run", "split", "step", "key", "slices": [{"value", "support", "accuracy",
      "balanced_accuracy", "macro_f1", "per_class": [{"name", "precision", "recall", "f1",
      "support", "recall_interval", "precision_interval"}]}]}``, the lowest ``macro_f1`` first
      (undefined ones last; equal ones by value). ``support`` is the slice's rows; the
      intervals are Wilson 95% (`metrics.per_class_intervals`), ``[lower, upper]`` or nulls.
      Multi-label: ``accuracy`` is the subset accuracy, ``balanced_accuracy`` null, and
      ``per_class`` is per label. Extra: ``task``, ``class_names``, each slice's ``pooled``
      (true for `schema.OTHER_SLICE`, the values past the key's cap).
    """
    entries = []
    for value, evaluation in slices.items():
        counts = evaluation.decision_counts
        entry = to_json_value(
            {
                "value": value,
                "pooled": value == schema.OTHER_SLICE,
                "support": evaluation.total,
                "accuracy": subset_accuracy(evaluation)
                if evaluation.multilabel
                else metrics.accuracy(counts),
                "balanced_accuracy": None
                if evaluation.multilabel
                else metrics.balanced_accuracy(counts),
                "macro_f1": metrics.macro_f1(counts),
            }
        )
        entry["per_class"] = per_class_rows(evaluation.class_names, _per_class_columns(counts))
        entries.append(entry)
    entries.sort(key=lambda e: (e["macro_f1"] is None, e["macro_f1"] or 0.0, e["value"]))
    first = next(iter(slices.values()), None)
    return {
        "run": run,
        "split": split,
        "step": int(step),
        "key": key,
        "task": None if first is None else first.task,
        "class_names": [] if first is None else list(first.class_names),
        "slices": entries,
    }

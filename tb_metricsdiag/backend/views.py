"""The JSON documents of the HTTP API, built from `reader` results. No HTTP, no I/O.

Every function returns plain Python (dicts, lists, int, float, str, None) ready for strict
JSON: undefined ratios (NaN) and infinities become ``None``. The shapes are pinned in
``CONTRACT.md``; extra keys are documented here.
"""

import numpy as np
from tensorboard import errors

from tb_metricsdiag.core import (
    calibration,
    comparison,
    counting,
    labels,
    metrics,
    operating_points,
)
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.diagnostics import classes as class_rules
from tb_metricsdiag.diagnostics import confidence as confidence_rules
from tb_metricsdiag.diagnostics import training as training_rules
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

# The `difference_form` of a multi-label comparison: per-label 2x2 differences.
DIFFERENCE_LABELS = "labels"


def _per_class_rows(names, columns):
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
    return _per_class_rows(
        names,
        {
            **_per_class_columns(confusion),
            "flags": [[each["flag"] for each in of_class] for of_class in flags],
            "flag_reasons": [[each["reason"] for each in of_class] for of_class in flags],
        },
    )


def _subset_accuracy(evaluation):
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
            "accuracy": _subset_accuracy(evaluation),
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


def pr_class(run, evaluation, requested_class=None):
    """The class a ``/pr`` answer is about: ``requested_class``, or the run's default class
    (`labels.default_class`) when None.

    Raises:
      schema.FormatError: the evaluation's threshold counts cannot be read.
      errors.NotFoundError: the evaluation has no threshold counts.
      errors.InvalidArgumentError: ``requested_class`` is not a class of the evaluation.
    """
    if evaluation.counts_problem is not None:
        raise schema.FormatError(evaluation.counts_problem)
    if evaluation.tp is None:
        raise errors.NotFoundError(
            "run %r has no threshold counts for %r at step %d"
            % (run, evaluation.split, evaluation.step)
        )
    num_classes = evaluation.num_classes
    if requested_class is None:
        return labels.default_class(num_classes, evaluation.multilabel)
    if not 0 <= requested_class < num_classes:
        raise errors.InvalidArgumentError(
            "class must be an index in [0, %d), got %d" % (num_classes, requested_class)
        )
    return requested_class


def pr_view(
    run, evaluation, class_index, min_recall=None, min_precision=None, fn_cost=None, fp_cost=None
):
    """``/pr``: one class's one-vs-rest precision-recall curve and chosen operating points.

    Args:
      run: the run's name.
      evaluation: a `run_records.SplitEvaluation` with threshold counts (``evaluation.tp`` is
        not None).
      class_index: int, the positive class, ``0 <= class_index < C``.
      min_recall: optional float in [0, 1], the goal of the ``at_recall`` operating point;
        that point is ``None`` when the goal is absent or unreachable.
      min_precision: optional float in [0, 1], the same for ``at_precision``.
      fn_cost: optional float >= 0, the cost of a false negative.
      fp_cost: optional float >= 0, the cost of a false positive. With both costs,
        ``min_cost`` is the operating point of the lowest expected cost, with ``cost`` (per
        example), and ``cost_at_default`` and ``cost_saved`` against the stored threshold
        nearest 0.5; otherwise it is ``None``.

    Returns:
      A dict of parallel per-threshold lists (thresholds ascending) ``thresholds``,
      ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``tn``, ``fn`` and ``fpr`` (the ROC's
      true positive rate is ``recall``); the class's ``average_precision``, ``roc_auc`` and
      ``roc_auc_method``, ``positives``, ``negatives``; and the operating points
      ``best_f1``, ``at_recall``, ``at_precision``, ``min_cost``, each ``{"index",
      "threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn", "matrix": [[tn, fp],
      [fn, tp]]}``.
    """
    # A label's own positives and negatives (multi-label), or the class's one-vs-rest ones.
    positives = evaluation.positives(class_index)
    total = evaluation.total
    counts = metrics.binary_counts(
        evaluation.tp[class_index], evaluation.fp[class_index], positives, total
    )
    precision, recall = metrics.pr_curve(counts["tp"], counts["fp"], positives)
    curve = dict(
        counts,
        thresholds=evaluation.thresholds,
        precision=precision,
        recall=recall,
        f1=metrics.f1_score(counts["tp"], counts["fp"], counts["fn"]),
        fpr=metrics.roc_curve(counts["tp"], counts["fp"], positives, total - positives)[0],
    )
    if evaluation.roc_auc is not None:
        roc_auc, roc_auc_method = evaluation.roc_auc[class_index], evaluation.roc_auc_method
    else:  # written before format version 4: from the stored grid
        roc_auc_method = counting.AP_THRESHOLD_GRID
        roc_auc = metrics.roc_auc_from_counts(
            curve["tp"][None], curve["fp"][None], [positives], [total - positives]
        )[0]
    average_precision = None
    if evaluation.average_precision is not None:
        average_precision = evaluation.average_precision[class_index]

    def point(index):
        if index is None:
            return None
        values = {
            key: curve[key][index] for key in ("precision", "recall", "f1", "tp", "fp", "tn", "fn")
        }
        values.update(
            index=index,
            threshold=curve["thresholds"][index],
            matrix=[[values["tn"], values["fp"]], [values["fn"], values["tp"]]],
        )
        return values

    view = {
        "run": run,
        "split": evaluation.split,
        "step": evaluation.step,
        "class": class_index,
        "class_name": evaluation.class_names[class_index],
        "average_precision": average_precision,
        "average_precision_method": evaluation.average_precision_method
        if average_precision is not None
        else None,
        "positives": positives,
        "negatives": total - positives,
        "best_f1": point(operating_points.best_f1_index(curve["f1"])),
        "at_recall": point(
            None if min_recall is None else operating_points.min_recall_index(recall, min_recall)
        ),
        "at_precision": point(
            None
            if min_precision is None
            else operating_points.min_precision_index(precision, min_precision)
        ),
        "roc_auc": roc_auc,
        "roc_auc_method": roc_auc_method,
        "min_cost": None,
    }
    if fn_cost is not None and fp_cost is not None and total:
        best = operating_points.min_cost_index(curve["fn"], curve["fp"], fn_cost, fp_cost)
        default = operating_points.nearest_index(
            evaluation.thresholds, operating_points.DEFAULT_THRESHOLD
        )

        def cost(index):
            return (fn_cost * curve["fn"][index] + fp_cost * curve["fp"][index]) / total

        view["min_cost"] = dict(
            point(best),
            cost=cost(best),
            cost_at_default=cost(default),
            default_threshold=evaluation.thresholds[default],
            cost_saved=cost(default) - cost(best),
            fn_cost=fn_cost,
            fp_cost=fp_cost,
        )
    view.update(curve)
    return to_json_value(view)


def curves_view(run, history):
    """``/curves``: every per-epoch Keras log value of the run, keyed as in ``logs``, the ECE
    of the calibration bins (``val_ece``, ``ece``; a logged value of that name wins), and
    ``best_epoch``: the epoch of the best validation loss (`training_rules.best_epoch`).
    """
    return to_json_value(
        {
            "run": run,
            "best_epoch": training_rules.best_epoch(history),
            "curves": {
                key: {"steps": steps, "values": values}
                for key, (steps, values) in sorted(
                    {**_ece_curves(history), **history.curves}.items()
                )
            },
        }
    )


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


def compare_view(before, after, full_matrix=False):
    """``/compare``: two evaluations of the same classes, ``after`` against ``before``.

    Args:
      before: ``(run, run_records.SplitEvaluation)`` compared against.
      after: ``(run, run_records.SplitEvaluation)`` compared.
      full_matrix: whether to send the difference matrices whatever the number of classes.

    Returns:
      ``{"before", "after"}`` (each ``{"run", "split", "step"}``), ``class_names``,
      ``difference`` (`comparison.confusion_difference`: ``counts``, ``true``,
      ``improvement``), ``per_class`` (for each class its ``name``, and ``precision``,
      ``recall``, ``f1``, ``ap`` after, before and their change, with ``support`` before and
      after), and ``accuracy`` / ``balanced_accuracy`` / ``macro_f1`` before and after.
      ``difference_form`` says how the difference is sent, as ``/confusion``'s
      ``matrix_form``: ``"full"`` (at most `FULL_MATRIX_MAX_CLASSES` classes, or
      ``full_matrix``: ``difference`` holds the three ``[C][C]`` lists, ``difference_cells``
      is null) or ``"cells"`` (``difference`` null; ``difference_cells`` the cells that changed,
      `comparison.difference_cells`: ``{"rows", "cols", "counts", "true", "improvement"}``, at
      most `MAX_CELLS`, with ``cells_truncated``).
    """
    (_, old), (_, new) = before, after
    figures = (
        ("accuracy", lambda e: metrics.accuracy(e.confusion)),
        ("balanced_accuracy", lambda e: metrics.balanced_accuracy(e.confusion)),
        ("macro_f1", lambda e: metrics.macro_f1(e.confusion)),
    )
    view, per_class = _comparison(before, after, lambda e: e.confusion, figures)
    difference = comparison.confusion_difference(old.confusion, new.confusion)
    full = full_matrix or new.num_classes <= FULL_MATRIX_MAX_CLASSES
    cells, truncated = (None, False) if full else comparison.difference_cells(difference, MAX_CELLS)
    view.update(
        difference_form=MATRIX_FULL if full else MATRIX_CELLS,
        difference=difference if full else None,
        difference_cells=cells,
        cells_truncated=truncated,
    )
    view = to_json_value(view)
    view["per_class"] = per_class
    return view


def multilabel_compare_view(before, after):
    """``/compare`` of two multi-label evaluations of the same labels: ``per_class`` per label
    (as `compare_view`), ``accuracy`` (subset accuracy), ``hamming_loss`` and ``macro_f1``
    before and after, ``difference_form`` ``"labels"`` with ``matrices_difference`` (after -
    before of each label's ``[[tn, fp], [fn, tp]]``); ``difference`` is null.
    """
    (_, old), (_, new) = before, after
    figures = (
        ("accuracy", _subset_accuracy),
        ("hamming_loss", lambda e: metrics.hamming_loss(e.matrices)),
        ("macro_f1", lambda e: metrics.macro_f1(e.matrices)),
    )
    view, per_class = _comparison(before, after, lambda e: e.matrices, figures)
    view.update(
        task=new.task,
        difference_form=DIFFERENCE_LABELS,
        difference=None,
        matrices_difference=new.matrices - old.matrices,
    )
    view = to_json_value(view)
    view["per_class"] = per_class
    return view


def _comparison(before, after, counts_of, figures):
    """What every comparison holds: ``(view, per_class)``, the view's ``before`` / ``after``
    (run, split, step), ``class_names`` and each of ``figures`` (``(name, f(evaluation))``)
    before and after, and the per-class changes of the counts ``counts_of(evaluation)``
    (`comparison.per_class_changes`) as entries.
    """
    (run_before, old), (run_after, new) = before, after
    changes = comparison.per_class_changes(
        counts_of(old), counts_of(new), old.average_precision, new.average_precision
    )
    view = {
        "before": {"run": run_before, "split": old.split, "step": old.step},
        "after": {"run": run_after, "split": new.split, "step": new.step},
        "class_names": new.class_names,
        **{name: {"before": figure(old), "after": figure(new)} for name, figure in figures},
    }
    return view, _per_class_rows(new.class_names, changes)


def trajectories_view(run, history, split):
    """``/trajectories``: each class's precision, recall and F1 at every epoch of a split.

    Returns:
      ``{"run", "split", "steps", "classes"}``; ``classes`` is one entry per class, worst
      latest F1 first: ``{"index", "name", "precision", "recall", "f1"}`` with one value per
      step (null where undefined).
    """
    by_step = history.confusions.get(split) or {}
    steps = sorted(by_step)
    series = comparison.trajectories([by_step[step] for step in steps]) if steps else {}
    num_classes = series["f1"].shape[1] if steps else 0
    names = labels.names_or_default(history.class_names, num_classes)
    order = comparison.worst_first(series["f1"][-1]).tolist() if steps else []
    # Each metric converted at once, one row per class: not a thousand small arrays each.
    per_class = {name: to_json_value(values.T) for name, values in series.items()}
    view = to_json_value({"run": run, "split": split, "steps": steps})
    view["classes"] = [
        {
            "index": k,
            "name": names[k],
            **{name: rows[k] for name, rows in per_class.items()},
        }
        for k in order
    ]
    return view


def binary_calibration(task):
    """Whether the calibration bins of a run of ``task`` hold one probability per example and
    label (binary: the positive class's; multi-label: every label's, against whether it is
    set) rather than the top class's confidence.
    """
    return task in (schema.TASK_BINARY, schema.TASK_MULTILABEL)


def calibration_view(run, split, step, bins, binary=False):
    """``/calibration``: a reliability diagram's data for one split at one step.

    Args:
      run: the run's name.
      split: the split.
      step: the step of the bins.
      bins: ``(count, confidence_sum, correct)`` per bin (`calibration.calibration_bins`).
      binary: whether the run has two classes (the bins then hold positive-class scores).

    Returns:
      ``{"run", "split", "step", "bins", "ece", "mce"}``: ``bins`` one
      ``{"lower", "upper", "count", "confidence", "accuracy"}`` per equal-width bin over
      [0, 1] (mean confidence and accuracy null when empty); extra ``examples``,
      ``miscalibrated`` (whether the miscalibration is material,
      `confidence_rules.material_ece`: what the ``miscalibrated`` rule judges) and
      ``direction`` (``"over"`` / ``"under"`` confident, `calibration.confidence_direction`;
      null unless ``miscalibrated``: at an ECE of 0.01 a direction means nothing).
    """
    count, confidence_sum, correct = bins
    miscalibrated = confidence_rules.material_ece(count, confidence_sum, correct) is not None
    edges = calibration.bin_edges(count.size)
    accuracy, confidence = calibration.bin_accuracy_and_confidence(count, confidence_sum, correct)
    return to_json_value(
        {
            "run": run,
            "split": split,
            "step": step,
            "bins": [
                {
                    "lower": edges[b],
                    "upper": edges[b + 1],
                    "count": count[b],
                    "confidence": confidence[b],
                    "accuracy": accuracy[b],
                }
                for b in range(count.size)
            ],
            "examples": count.sum(),
            "ece": calibration.calibration_error(count, confidence_sum, correct, "l1"),
            "mce": calibration.calibration_error(count, confidence_sum, correct, "max"),
            "miscalibrated": miscalibrated,
            "direction": calibration.confidence_direction(
                count, confidence_sum, correct, binary=binary
            )
            if miscalibrated
            else None,
        }
    )


def _ece_curves(history):
    """``{"val_ece": (steps, values), "ece": ...}`` of the calibration series: the validation
    and training ECE over the epochs, named as Keras names its validation metrics.
    """
    curves = {}
    for split, key in (("validation", "val_ece"), ("train", "ece")):
        series = history.calibration.get(split) or {}
        if series:
            steps = sorted(series)
            values = [calibration.calibration_error(*series[step]) for step in steps]
            curves[key] = (steps, values)
    return curves


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
                "accuracy": _subset_accuracy(evaluation)
                if evaluation.multilabel
                else metrics.accuracy(counts),
                "balanced_accuracy": None
                if evaluation.multilabel
                else metrics.balanced_accuracy(counts),
                "macro_f1": metrics.macro_f1(counts),
            }
        )
        entry["per_class"] = _per_class_rows(evaluation.class_names, _per_class_columns(counts))
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

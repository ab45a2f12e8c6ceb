"""The JSON documents of ``/pr``, ``/curves`` and ``/calibration``: curves over thresholds,
epochs and confidence, from `reader` results. No HTTP, no I/O (see `views`).
"""

from tensorboard import errors

from tb_metricsdiag.core import calibration, counting, labels, metrics, operating_points
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.diagnostics import confidence as confidence_rules
from tb_metricsdiag.diagnostics import training as training_rules
from tb_metricsdiag.format import schema


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

"""The JSON documents of the HTTP API, built from `reader` results. No HTTP, no I/O.

Every function returns plain Python (dicts, lists, int, float, str, None) ready for strict
JSON: undefined ratios (NaN) and infinities become ``None``. The shapes are pinned in
``CONTRACT.md``; extra keys are documented here.
"""

from tb_metricsdiag.core import labels, metrics, operating_points
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.diagnostics import classes as class_rules
from tb_metricsdiag.diagnostics import training as training_rules


def run_entry(index, steps, error=None, trainings=1):
    """One entry of ``/runs``.

    Parameters
    ----------
    index : reader.RunIndex
    steps : list of int
        Steps with a confusion matrix (validation, else the first split with counts).
    error : str, optional
        Why the run's data could not be read; the entry then has an ``error`` key.
    trainings : int
        Trainings written into the run (steps restarting); ``steps`` are the latest one's.
    """
    entry = {
        "run": index.run,
        "steps": list(steps),
        "splits": list(index.splits),
        "class_names": list(index.class_names),
        "has_counts": bool(index.has_counts),
        "default_class": labels.default_class(len(index.class_names)),
        "trainings": int(trainings),
    }
    if error is not None:
        entry["error"] = error
    return entry


def runs_view(entries):
    """``/runs``: the entries of `run_entry`, sorted by run name."""
    return {"runs": sorted(entries, key=lambda entry: entry["run"])}


def confusion_view(run, evaluation):
    """``/confusion``: the confusion matrix of one split at one step and what follows from it.

    Beyond the contract: ``normalized`` (``true``: rows sum to 1, ``pred``: columns sum to 1),
    ``balanced_accuracy``, ``macro_f1``, ``majority_baseline`` (the accuracy of always
    predicting the largest class), ``no_better_than_majority`` (`class_rules.no_better_than_majority`)
    and ``total``.
    """
    confusion = evaluation.confusion
    per_class = metrics.per_class_metrics(confusion)
    return to_json_value(
        {
            "run": run,
            "split": evaluation.split,
            "step": evaluation.step,
            "class_names": evaluation.class_names,
            "matrix": confusion,
            "normalized": {
                "true": metrics.normalize_confusion(confusion, "true"),
                "pred": metrics.normalize_confusion(confusion, "pred"),
            },
            "per_class": [
                {
                    "name": name,
                    "precision": per_class["precision"][i],
                    "recall": per_class["recall"][i],
                    "f1": per_class["f1"][i],
                    "support": per_class["support"][i],
                }
                for i, name in enumerate(evaluation.class_names)
            ],
            "accuracy": metrics.accuracy(confusion),
            "balanced_accuracy": metrics.balanced_accuracy(confusion),
            "macro_f1": metrics.macro_f1(confusion),
            "majority_baseline": metrics.majority_baseline_accuracy(confusion),
            "no_better_than_majority": class_rules.no_better_than_majority(confusion),
            "total": confusion.sum(),
        }
    )


def pr_view(run, evaluation, class_index, min_recall=None, min_precision=None):
    """``/pr``: one class's one-vs-rest precision-recall curve and chosen operating points.

    Parameters
    ----------
    run : str
    evaluation : reader.SplitEvaluation
        With threshold counts (``evaluation.tp`` is not None).
    class_index : int
        The positive class, ``0 <= class_index < C``.
    min_recall, min_precision : float in [0, 1], optional
        Goals for the ``at_recall`` and ``at_precision`` operating points; ``None`` when absent
        or unreachable.

    Returns:
    -------
    view : dict
        Parallel per-threshold lists (thresholds ascending) ``thresholds``, ``precision``,
        ``recall``, ``f1``, ``tp``, ``fp``, ``tn``, ``fn``; the class's ``average_precision``,
        ``positives``, ``negatives``; and the operating points ``best_f1``, ``at_recall``,
        ``at_precision``, each ``{"index", "threshold", "precision", "recall", "f1", "tp",
        "fp", "tn", "fn", "matrix": [[tn, fp], [fn, tp]]}``.
    """
    positives = int(evaluation.confusion[class_index].sum())
    total = int(evaluation.confusion.sum())
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
    )
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
    }
    view.update(curve)
    return to_json_value(view)


def curves_view(run, history):
    """``/curves``: every per-epoch Keras log value of the run, keyed as in ``logs``, and
    ``best_epoch``: the epoch of the best validation loss (`training_rules.best_epoch`).
    """
    return to_json_value(
        {
            "run": run,
            "best_epoch": training_rules.best_epoch(history),
            "curves": {
                key: {"steps": steps, "values": values}
                for key, (steps, values) in sorted(history.curves.items())
            },
        }
    )


def diagnostics_view(run, findings, not_run=(), trainings=1):
    """``/diagnostics``: the findings of the diagnostics engine, as strict JSON.

    Beyond the contract: ``not_run``, the rules that could not run and why (``[{"rule",
    "reason"}]``: no problem found is not the same as not looked), and ``trainings``, the
    number of trainings written into the run (the findings are about the latest).
    """
    return to_json_value(
        {"run": run, "findings": list(findings), "not_run": list(not_run), "trainings": trainings}
    )

"""The JSON documents of ``/compare`` and ``/trajectories``: evaluations compared, two at a
time or over the epochs, from `reader` results. No HTTP, no I/O (see `views`).
"""

from tb_metricsdiag.backend.views import (
    FULL_MATRIX_MAX_CLASSES,
    MATRIX_CELLS,
    MATRIX_FULL,
    MAX_CELLS,
    per_class_rows,
    subset_accuracy,
)
from tb_metricsdiag.core import comparison, labels, metrics
from tb_metricsdiag.core.json_values import to_json_value

# The `difference_form` of a multi-label comparison: per-label 2x2 differences.
DIFFERENCE_LABELS = "labels"


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
        ("accuracy", subset_accuracy),
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
    return view, per_class_rows(new.class_names, changes)


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

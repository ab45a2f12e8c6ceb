"""The JSON documents of the routes of example records (``/examples``, ``/flips``,
``/label_issues``, ``/crossings``) and of ``report --examples``, built from `reader` results. No HTTP, no I/O.

As `views`: plain Python ready for strict JSON, the shapes pinned in ``CONTRACT.md``, extra
keys documented here and in ``docs/api.md``. An example's ``preview`` comes from
`reader.Reader.previews`' ``({id: preview}, problems)``: None where none was stored.
"""

import numpy as np

from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.format import schema

MAX_LISTED = 1000
"""Most examples a ``/flips`` or ``/label_issues`` answer may be asked to list (``limit``)."""

DEFAULT_LISTED = 100
"""Examples of each kind a ``/flips`` or ``/label_issues`` answer lists unless ``limit`` says
otherwise: the contract's floor of ``/label_issues`` (``min(count, 100)``), ten times that of
``/flips``."""


def _previews_of(ids, previews):
    """The preview of each id (None where none was stored), from `Reader.previews`' dict."""
    return [previews.get(key) for key in ids]


def examples_view(run, records, true, pred, label, previews, groups_at=None):
    """``/examples``: the examples of one confusion cell at one step.

    Args:
      run: the run's name.
      records: the split's `run_records.SplitExamples` at the step.
      true: the cell's actual class (multi-label: value, 0 or 1), inside the task.
      pred: its predicted class (value), inside the task.
      label: the label of a multi-label cell, else None.
      previews: `Reader.previews`' ``({id: preview}, problems)``.
      groups_at: ``groups_at(positions)``, each kept example's group values
        (`format.slices.StoredSlices.groups_at`), or None without slices.

    Returns:
      ``{"run", "split", "step", "true", "pred", "count", "examples": [{"id", "score",
      "true_score", "preview"}]}``: ``count`` the cell's examples (its confusion count),
      ``examples`` the kept ones in the contract's order (every kept one: at least
      ``min(count, 10)``). Extra: ``task``, ``class`` (the label, multi-label; else null),
      ``true_name`` and ``pred_name`` (multi-label: ``class_name``), ``kept_per_cell`` (the
      most examples kept per cell at that step), ``preview_problems`` (previews that could
      not be read); with slices, each example's ``groups`` (``{key: value}``, null where not
      stored).
    """
    stored = records.examples
    cell = stored.cell(true, pred, label)
    ids = records.ids.ids_at(cell["position"])
    names = records.class_names
    view = {
        "run": run,
        "split": records.split,
        "step": records.step,
        "task": records.task,
        "true": true,
        "pred": pred,
        "class": label,
        "count": cell["count"],
        "kept_per_cell": stored.per_cell,
        "preview_problems": previews[1],
    }
    if records.multilabel:
        view["class_name"] = names[label]
    else:
        view.update(true_name=names[true], pred_name=names[pred])
    view = to_json_value(view)
    view["examples"] = [
        {"id": key, "score": score, "true_score": true_score, "preview": preview}
        for key, score, true_score, preview in zip(
            ids,
            to_json_value(cell["score"]),
            to_json_value(cell["true_score"]),
            _previews_of(ids, previews[0]),
        )
    ]
    if groups_at is not None:
        for example, groups in zip(view["examples"], groups_at(cell["position"])):
            example["groups"] = groups
    return view


def _kept_cells(stored, positions):
    """``(true, pred)``: two lists, one entry per position, the cell of that example where
    ``stored`` (`format.example_records.StoredExamples`) kept it, else None (multi-label:
    always None, a row falls in one cell per label).
    """
    positions = np.asarray(positions, dtype=np.int64)
    kept = stored.examples()
    if stored.multi_label or kept["position"].size == 0:
        return [None] * positions.size, [None] * positions.size
    order = np.argsort(kept["position"])
    at = order[
        np.minimum(np.searchsorted(kept["position"], positions, sorter=order), order.size - 1)
    ]
    found = (kept["position"][at] == positions).tolist()
    return tuple(
        [value if hit else None for value, hit in zip(kept[name][at].tolist(), found)]
        for name in ("true", "pred")
    )


def flips_view(before, after, flipped, previews):
    """``/flips``: the examples two evaluations got differently, matched by id.

    Args:
      before: ``(run, run_records.SplitExamples)``, the earlier evaluation.
      after: ``(run, run_records.SplitExamples)``, the later one.
      flipped: `core.examples.flips` of the two (``after_index`` and ``before_index`` are
        positions), the listed ones limited.
      previews: `Reader.previews`' ``({id: preview}, problems)`` of the "after" split.

    Returns:
      ``{"before": {"run", "split", "step"}, "after": {...}, "became_wrong": {"count",
      "examples"}, "became_right": {...}}``; each example ``{"id", "score", "before_score",
      "true", "pred", "before_pred", "preview"}``, the most confident first: ``score`` and
      ``before_score`` are the probability of the class predicted after and before (stored
      to an eighth of a logit); ``true``, ``pred`` and ``before_pred`` are known where that
      evaluation kept the example (null otherwise, and in multi-label runs). Extra:
      ``matched`` (ids in both), ``preview_problems``.
    """
    (before_run, old), (after_run, new) = before, after
    view = to_json_value(
        {
            "before": {"run": before_run, "split": old.split, "step": old.step},
            "after": {"run": after_run, "split": new.split, "step": new.step},
            "matched": flipped["matched"],
            "preview_problems": previews[1],
        }
    )
    old_confidence, new_confidence = old.examples.confidence, new.examples.confidence
    for kind in ("became_wrong", "became_right"):
        listed = flipped[kind]
        ids = new.ids.ids_at(listed["after_index"])
        true, pred = _kept_cells(new.examples, listed["after_index"])
        before_pred = _kept_cells(old.examples, listed["before_index"])[1]
        view[kind] = {
            "count": listed["count"],
            "examples": [
                {
                    "id": key,
                    "score": score,
                    "before_score": before_score,
                    "true": each_true,
                    "pred": each_pred,
                    "before_pred": each_before_pred,
                    "preview": preview,
                }
                for key, score, before_score, each_true, each_pred, each_before_pred, preview in zip(
                    ids,
                    to_json_value(new_confidence[listed["after_index"]]),
                    to_json_value(old_confidence[listed["before_index"]]),
                    true,
                    pred,
                    before_pred,
                    _previews_of(ids, previews[0]),
                )
            ],
        }
    return view


def confident_errors_view(run, records, previews, limit):
    """The most confident errors of one split at one step, over every cell (the command
    line's ``report --examples``).

    Args:
      run: the run's name.
      records: the split's `run_records.SplitExamples` at the step.
      previews: `Reader.previews`' ``({id: preview}, problems)``.
      limit: list at most this many.

    Returns:
      ``{"run", "split", "step", "count", "kept_per_cell", "examples": [{"id", "true",
      "pred", "true_name", "pred_name", "score", "true_score", "preview"}]}``: ``count`` the
      errors (multi-label: wrong label decisions) at that step; ``examples`` the most
      confident of the kept ones first (``score`` descending, equal scores in cell order),
      exactly the most confident errors of the step when ``limit`` is at most
      ``kept_per_cell``; multi-label entries add ``class`` and ``class_name`` (the label) and
      name ``true`` / ``pred`` by their values.
    """
    stored = records.examples
    kept = stored.examples()
    errors = np.flatnonzero(kept["true"] != kept["pred"])
    chosen = errors[np.argsort(-kept["score"][errors], kind="stable")][: int(limit)]
    ids = records.ids.ids_at(kept["position"][chosen])
    names = records.class_names
    diagonal = (
        stored.cells // 2 % 2 == stored.cells % 2
        if stored.multi_label
        else stored.cells // stored.num_classes == stored.cells % stored.num_classes
    )
    entries = []
    for at, key, preview in zip(chosen.tolist(), ids, _previews_of(ids, previews[0])):
        true, pred = int(kept["true"][at]), int(kept["pred"][at])
        entry = {"id": key, "true": true, "pred": pred}
        if stored.multi_label:
            label = int(kept["label"][at])
            entry.update(
                {"class": label, "class_name": names[label]},
                true_name=str(true),
                pred_name=str(pred),
            )
        else:
            entry.update(true_name=names[true], pred_name=names[pred])
        entry.update(
            score=to_json_value(kept["score"][at]),
            true_score=to_json_value(kept["true_score"][at]),
            preview=preview,
        )
        entries.append(entry)
    view = to_json_value(
        {
            "run": run,
            "split": records.split,
            "step": records.step,
            "count": stored.counts[~diagonal].sum(),
            "kept_per_cell": stored.per_cell,
        }
    )
    view["examples"] = entries
    return view


def label_issues_view(run, records, previews, limit=DEFAULT_LISTED):
    """``/label_issues``: the examples whose given label confident learning flags.

    Args:
      run: the run's name.
      records: the split's `run_records.SplitLabelIssues` at the step.
      previews: `Reader.previews`' ``({id: preview}, problems)``.
      limit: list at most this many (``1 <= limit <= MAX_LISTED``; the stored list may hold
        fewer).

    Returns:
      ``{"run", "split", "step", "count", "share", "examples": [{"id", "given", "suggested",
      "given_score", "suggested_score", "preview"}]}``, the least likely given label first.
      Extra: ``examples_seen`` (the examples confident learning saw: ``share`` is ``count``
      over them), ``listed`` (how many the writer stored, of ``count``), each example's
      ``given_name`` and ``suggested_name``, ``class_names``, ``preview_problems``.
    """
    issues = records.issues
    shown = slice(0, min(int(limit), issues.position.size))
    ids = records.ids.ids_at(issues.position[shown])
    names = records.class_names
    given, suggested = to_json_value(issues.given[shown]), to_json_value(issues.suggested[shown])
    view = to_json_value(
        {
            "run": run,
            "split": records.split,
            "step": records.step,
            "count": issues.count,
            "share": issues.share,
            "examples_seen": issues.examples,
            "listed": issues.position.size,
            "class_names": names,
            "preview_problems": previews[1],
        }
    )
    view["examples"] = [
        {
            "id": key,
            "given": each_given,
            "suggested": each_suggested,
            "given_name": names[each_given],
            "suggested_name": names[each_suggested],
            "given_score": given_score,
            "suggested_score": suggested_score,
            "preview": preview,
        }
        for key, each_given, each_suggested, given_score, suggested_score, preview in zip(
            ids,
            given,
            suggested,
            to_json_value(issues.given_score[shown]),
            to_json_value(issues.suggested_score[shown]),
            _previews_of(ids, previews[0]),
        )
    ]
    return view


# What a moved threshold does to each polarity: (cell before, cell after) when it moves up
# (fewer examples reach it) and when it moves down.
_CROSSING_CELLS = {
    "up": {"positives": ("tp", "fn"), "negatives": ("fp", "tn")},
    "down": {"positives": ("fn", "tp"), "negatives": ("tn", "fp")},
    "none": {"positives": ("tp", "tp"), "negatives": ("fp", "fp")},
}


def snapped_index(thresholds, value):
    """The index of the stored threshold nearest ``value`` (the lower one on a tie), as the PR
    panel snaps its slider.
    """
    return int(np.argmin(np.abs(np.asarray(thresholds, dtype=np.float64) - float(value))))


def crossings_view(run, evaluation, class_index, records, start, end, previews, limit):
    """``/crossings``: the examples whose decision changes when the threshold of one curve
    (class one-vs-rest; label, multi-label) moves from ``start`` to ``end``.

    Args:
      run: the run's name.
      evaluation: the split's `run_records.SplitEvaluation` at the step (threshold counts).
      class_index: the curve (`curve_views.pr_class`).
      records: the split's `run_records.SplitCrossings` at the same step.
      start: the threshold moved from, snapped to the nearest stored one (`snapped_index`).
      end: the threshold moved to, snapped alike.
      previews: `Reader.previews`' ``({id: preview}, problems)``.
      limit: list at most this many examples of each polarity.

    Returns:
      ``{"run", "split", "step", "class", "class_name", "task", "from", "to", "from_index",
      "to_index", "direction", "positives", "negatives", "complete", "sampled_rows",
      "per_bin", "stored_range", "preview_problems"}``: ``direction`` is ``up``, ``down`` or
      ``none``; ``positives`` / ``negatives`` are ``{"count", "listed", "from_cell",
      "to_cell", "examples": [{"id", "score", "preview"}]}``: ``count`` the exact number of
      examples of that polarity with a score in ``[min, max)`` of the two thresholds (the
      difference of the threshold counts), ``examples`` the stored samples among them (the
      first ``per_bin`` by position of each bin between two thresholds, among the first
      ``sampled_rows`` rows), the nearest to ``from`` first. ``complete`` is false where part
      of the span lies outside the bins stored (``stored_range``: the lowest and highest
      threshold of the bins kept, null without any).

    Raises:
      schema.FormatError: samples of another grid or task than the threshold counts'.
    """
    stored = records.crossings
    thresholds = evaluation.thresholds
    what = "stored crossing samples of %r at step %d" % (records.split, records.step)
    stored.check_grid(thresholds, what)
    if stored.num_classes != evaluation.num_classes or stored.multi_label != evaluation.multilabel:
        raise schema.FormatError(
            "%s: %d curves (multi-label %s), the threshold counts have %d (%s)"
            % (
                what,
                stored.num_classes,
                stored.multi_label,
                evaluation.num_classes,
                evaluation.multilabel,
            )
        )
    first, second = snapped_index(thresholds, start), snapped_index(thresholds, end)
    low, high = min(first, second), max(first, second)
    direction = "up" if second > first else "down" if second < first else "none"
    counts = {
        "positives": evaluation.tp[class_index],
        "negatives": evaluation.fp[class_index],
    }
    view = to_json_value(
        {
            "run": run,
            "split": records.split,
            "step": records.step,
            "class": class_index,
            "class_name": records.class_names[class_index],
            "task": evaluation.task,
            "from": thresholds[first],
            "to": thresholds[second],
            "from_index": first,
            "to_index": second,
            "direction": direction,
            "complete": stored.covers(low, high),
            "sampled_rows": min(stored.num_rows, stored.scanned_rows),
            "per_bin": stored.per_bin,
            "stored_range": (
                [thresholds[stored.first_bin], thresholds[stored.first_bin + stored.num_bins - 1]]
                if stored.num_bins
                else None
            ),
            "preview_problems": previews[1],
        }
    )
    for polarity, cumulative in counts.items():
        position, score = stored.span(class_index, low, high, polarity == "positives")
        # The examples nearest the threshold the move starts from cross first.
        order = np.argsort(-score if direction == "down" else score, kind="stable")[: int(limit)]
        ids = records.ids.ids_at(position[order])
        before, after = _CROSSING_CELLS[direction][polarity]
        view[polarity] = to_json_value(
            {
                "count": int(cumulative[low] - cumulative[high]),
                "listed": int(order.size),
                "from_cell": before,
                "to_cell": after,
            }
        )
        view[polarity]["examples"] = [
            {"id": key, "score": value, "preview": preview}
            for key, value, preview in zip(
                ids, to_json_value(score[order]), _previews_of(ids, previews[0])
            )
        ]
    return view

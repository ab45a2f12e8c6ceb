"""What the reader's provider reads become: the run records (`run_records`) decoded from
listings and points. Pure functions of what they are given, no provider access, so each is
tested on hand-made points; the bytes of each point are decoded and checked in `format/`.
"""

import numpy as np
from tensorboard import errors

from tb_metricsdiag.backend.keras_subruns import KERAS_EPOCH_PREFIX, keras_parent
from tb_metricsdiag.core import counting
from tb_metricsdiag.format import (
    confusion_counts,
    crossings,
    example_ids,
    example_records,
    histograms,
    metadata,
    previews,
    schema,
    slices,
    stored_json,
    threshold_grid,
)
from tb_metricsdiag.run_records import DamagedData, LabelIssueFigures, RunIndex, SplitEvaluation

# The AP method of series that do not name one (format versions 1 and 2): exact.
_DEFAULT_AP_METHOD = counting.AP_EXACT


def split_names(tags):
    """The splits with confusion counts among a run's metricsdiag ``tags``: `schema.SPLITS`
    first, in their order, then every other split name (`schema.is_split_name`) sorted.
    """
    prefix, suffix = schema.TAG_PREFIX, "/" + schema.KIND_CONFUSION
    found = {
        tag[len(prefix) : -len(suffix)]
        for tag in tags
        if tag.startswith(prefix) and tag.endswith(suffix)
    }
    found = {split for split in found if schema.is_split_name(split)}
    known = [split for split in schema.SPLITS if split in found]
    return known + sorted(found - set(known))


def run_indexes(tensors, keras_scalars, listed_content=metadata.listed_content):
    """``{run: RunIndex}`` from a listing of metricsdiag tensors and one of ``scalars``;
    ``listed_content`` parses a confusion series' plugin content (`metadata.listed_content`).
    """
    result = {}
    for run, tags in tensors.items():
        splits, names, multilabel = [], [], False
        for split in split_names(tags):
            series = tags[schema.split_tag(split, schema.KIND_CONFUSION)]
            splits.append(split)
            if not names:
                content = listed_content(series.plugin_content)
                names = list(content.get("class_names") or [])
                multilabel = confusion_counts.is_multilabel(content)
        result[run] = RunIndex(run, splits, names, {}, multilabel, _slice_keys(tags, splits))
    for run, tags in keras_scalars.items():
        parent = keras_parent(run)
        if parent is None or not any(t.startswith(KERAS_EPOCH_PREFIX) for t in tags):
            continue
        name, split = parent
        index = result.setdefault(name, RunIndex(name, [], [], {}))
        index.keras_subruns[split] = run
    return result


def _slice_keys(tags, splits):
    """``{split: [key, ...]}`` of the splits with slices, from their listed plugin content."""
    result = {}
    for split in splits:
        series = tags.get(schema.split_tag(split, schema.KIND_SLICES))
        if series is None:
            continue
        keys = metadata.listed_content(series.plugin_content).get("slice_keys")
        if isinstance(keys, list) and all(isinstance(key, str) for key in keys):
            result[split] = keys[: schema.MAX_GROUP_KEYS]
    return result


def readable_points(points):
    """``points``, or raise the `schema.FormatError` a refused series is read as."""
    if isinstance(points, schema.FormatError):
        raise points
    return points


def damaged(tag, content, steps, error, key=None):
    """The `DamagedData` of ``steps`` (None: every step) of the metricsdiag series ``tag``,
    refused for ``error``; ``content`` is its parsed metadata (None where that could not be
    read: the kind and split are then taken from the tag's name).
    """
    if content is None:
        kind, split = _kind_and_split(tag)
    else:
        kind, split = content.get("kind"), content.get("split")
    if kind == schema.KIND_SCALAR and key is None and content is not None:
        key = content.get("key")
    steps = None if steps is None else sorted(set(int(step) for step in steps))
    return DamagedData(tag, steps, str(error), kind, split, key)


def _kind_and_split(tag):
    """``(kind, split)`` of a metricsdiag tag by its name (`schema.split_tag`, `schema.LOGS_TAG`,
    ...); ``(None, None)`` for a name of no known layout.
    """
    if not tag.startswith(schema.TAG_PREFIX):
        return None, None
    parts = tag[len(schema.TAG_PREFIX) :].split("/")
    if parts[0] == schema.KIND_LOGS:
        return (schema.KIND_LOGS, None) if len(parts) == 1 else (schema.KIND_SCALAR, None)
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2 and schema.is_split_name(parts[0]):
        return parts[1], parts[0]
    return None, None


def split_evaluation(run, split, step, found, counts_of):
    """The `SplitEvaluation` of ``split`` at ``step`` (None: the latest) from ``found``,
    ``{tag: (content, points)}`` holding at least the split's confusion matrices;
    ``counts_of(run, tag, content, datum, num_classes)`` decodes a point of threshold counts.
    """
    content, data = found[schema.split_tag(split, schema.KIND_CONFUSION)]
    data = readable_points(data)
    by_step = {datum.step: datum for datum in data}
    if not by_step:
        raise errors.NotFoundError("run %r has no %r data yet" % (run, split))
    if step is None:
        step = max(by_step)
    if step not in by_step:
        raise errors.NotFoundError("run %r has no %r data at step %d" % (run, split, step))
    if confusion_counts.is_multilabel(content):
        matrices = confusion_counts.multilabel_matrices([by_step[step]])[step]
        num_classes = matrices.shape[0]
        names = metadata.class_names_of(content, num_classes)
        result = SplitEvaluation(split, step, names, None, matrices=matrices)
        result.exact_matches = _exact_matches(run, split, step, found, int(matrices[0].sum()))
    else:
        confusion = confusion_counts.confusion_matrix(
            by_step[step].numpy, "confusion matrix", content
        )
        num_classes = confusion.shape[0]
        names = metadata.class_names_of(content, num_classes)
        result = SplitEvaluation(split, step, names, confusion)
    counts_tag = schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS)
    if counts_tag in found:
        counts_content, counts_data = found[counts_tag]
        # Unreadable counts leave the confusion matrix usable; /pr reports the problem.
        try:
            datum = point_at_step(readable_points(counts_data), step)
            if datum is not None:
                (
                    result.thresholds,
                    result.tp,
                    result.fp,
                    result.average_precision,
                    result.roc_auc,
                ) = counts_of(run, counts_tag, counts_content, datum, num_classes)
                if result.average_precision is not None:
                    result.average_precision_method = str(counts_content["average_precision"])
                if result.roc_auc is not None:
                    result.roc_auc_method = str(counts_content["roc_auc"])
        except schema.FormatError as error:
            result.counts_problem = str(error)
    ap_tag = schema.split_tag(split, schema.KIND_AVERAGE_PRECISION)
    if result.average_precision is None and ap_tag in found:  # written before format version 3
        ap_content, ap_data = found[ap_tag]
        datum = None if isinstance(ap_data, schema.FormatError) else point_at_step(ap_data, step)
        if datum is not None:
            values = np.asarray(datum.numpy)
            if values.shape == (num_classes,) and values.dtype.kind == "f":
                result.average_precision = values.astype(np.float64)
                result.average_precision_method = str(ap_content.get("method", _DEFAULT_AP_METHOD))
    return result


def _exact_matches(run, split, step, found, rows):
    """The exact-match count of a multi-label split at ``step``
    (`confusion_counts.exact_matches`).
    """
    tag = schema.split_tag(split, schema.KIND_EXACT_MATCH)
    datum = point_at_step(readable_points(found[tag][1]), step) if tag in found else None
    if datum is None:
        raise errors.NotFoundError(
            "run %r has multi-label %r counts without exact-match counts at step %d"
            % (run, split, step)
        )
    return confusion_counts.exact_matches(datum.numpy, rows)


def calibration_series(tag, content, data):
    """``({step: bins}, [DamagedData])`` of the calibration series ``tag``; a malformed point
    is skipped, and said.
    """
    series, skipped = {}, []
    for datum in data:
        try:
            series[datum.step] = histograms.calibration_bins_of(datum.numpy)
        except schema.FormatError as error:
            skipped.append(damaged(tag, content, [datum.step], error))
    return series, skipped


def scalar_curves(data, key_of):
    """``({key: (steps, values)}, [DamagedData])`` of scalar points ``{run: {tag: points}}``,
    keyed by ``key_of(run, tag)`` (`_curve`); a refused series is left out, and said.
    """
    curves, problems = {}, []
    for run, tags in data.items():
        for tag, points in tags.items():
            if isinstance(points, schema.FormatError):
                problems.append(
                    DamagedData(
                        "%s (run %s)" % (tag, run),
                        None,
                        str(points),
                        schema.KIND_SCALAR,
                        key=key_of(run, tag),
                    )
                )
                continue
            curves[key_of(run, tag)] = _curve(
                np.fromiter((point.step for point in points), np.int64, len(points)),
                np.fromiter((point.value for point in points), np.float64, len(points)),
            )
    return curves, problems


def logs_curves(tag, content, data):
    """``({key: (steps, values)}, [DamagedData])`` of the logs series ``tag``
    (`schema.KIND_LOGS`: one JSON object of Keras's logs per point), each key over the points
    that hold it (`_curve`). A point that cannot be read is skipped, and said.
    """
    columns, problems = {}, []
    for datum in data:
        try:
            logs = stored_json.decode_logs(stored_json.text_of(datum))
        except schema.FormatError as error:
            problems.append(damaged(tag, content, [datum.step], error))
            continue
        for key, number in logs.items():
            steps, values = columns.setdefault(key, ([], []))
            steps.append(datum.step)
            values.append(number)
    curves = {
        key: _curve(np.asarray(steps, np.int64), np.asarray(values, np.float64))
        for key, (steps, values) in columns.items()
    }
    return curves, problems


def _curve(steps, values):
    """``(steps, values)`` ascending by step, of a step written twice the last value."""
    if np.any(steps[1:] <= steps[:-1]):
        # The first of each step in the reversed order is the last one written.
        steps, last = np.unique(steps[::-1], return_index=True)
        values = values[::-1][last]
    return steps, values


def checked_steps(content, data):
    """Ascending distinct steps of confusion data, each checked
    (`confusion_counts.decision_steps`).
    """
    return confusion_counts.decision_steps(content, readable_points(data))


def point_at_step(data, step):
    for datum in reversed(data):
        if datum.step == step:
            return datum
    return None


# -- example records (format version 6) --------------------------------------------------


def payload_of(datum, what):
    """The bytes of a string scalar datum: an example record's payload."""
    value = np.asarray(datum.numpy)
    if value.shape != () or not isinstance(value.item(), bytes):
        raise schema.FormatError("%s is not a string scalar" % what)
    return value.item()


# The decoder of each kind of per-epoch example record.
_EPOCH_RECORD_DECODERS = {
    schema.KIND_EXAMPLES: example_records.decode_examples,
    schema.KIND_LABEL_ISSUES: example_records.decode_label_issues,
    schema.KIND_SLICES: slices.decode_slices,
    schema.KIND_CROSSINGS: crossings.decode_crossings,
}


def epoch_record_at(kind, data, step, what):
    """``(step, record)``: the point of an epoch's example record of ``kind``
    (`schema.KIND_EXAMPLES`: a `StoredExamples`; `schema.KIND_LABEL_ISSUES`: a
    `StoredLabelIssues`; `schema.KIND_SLICES`: a `slices.StoredSlices`) at ``step`` (None: the latest), decoded (`example_records`).

    Raises:
      tensorboard.errors.NotFoundError: no point at that step.
      schema.FormatError: the point is refused or damaged.
    """
    data = readable_points(data)
    if not data:
        raise errors.NotFoundError("%s: none written yet" % what)
    step = max(datum.step for datum in data) if step is None else step
    datum = point_at_step(data, step)
    if datum is None:
        raise errors.NotFoundError("%s: none at step %d" % (what, step))
    label = "%s at step %d" % (what, step)
    return step, _EPOCH_RECORD_DECODERS[kind](payload_of(datum, label), label)


def id_table_step(data, step):
    """The step of the id table in force at ``step``: the latest point at or before it, or
    None (the ids are then the positions).
    """
    steps = [datum.step for datum in readable_points(data) if datum.step <= step]
    return max(steps) if steps else None


def ids_of(data, table_step, num_rows, what):
    """The `example_ids.ExampleIds` of ``num_rows`` rows from the id table at ``table_step``
    (`id_table_step`; None: the positions).

    Raises:
      schema.FormatError: a damaged table, or one of another number of rows.
    """
    if table_step is None:
        return example_ids.ExampleIds.positions(num_rows)
    label = "%s at step %d" % (what, table_step)
    datum = point_at_step(readable_points(data), table_step)
    return example_ids.decode_example_ids(payload_of(datum, label), label, num_rows)


def merged_previews(data, what):
    """``({id: preview}, problems)`` of every point of a previews series (an id stored twice:
    the later point's); a point that cannot be read is left out, and said in ``problems``.
    """
    if isinstance(data, schema.FormatError):
        return {}, ["%s: %s" % (what, data)]
    merged, problems = {}, []
    for datum in sorted(data, key=lambda datum: datum.step):
        label = "%s at step %d" % (what, datum.step)
        try:
            merged.update(previews.decode_previews(payload_of(datum, label), label))
        except schema.FormatError as error:
            problems.append(str(error))
    return merged, problems


def label_issue_figures(tag, content, data):
    """``({step: LabelIssueFigures}, [DamagedData])`` of the label issues series ``tag``; a
    point that cannot be read is skipped, and said.
    """
    series, skipped = {}, []
    label = "stored label issues"
    for datum in data:
        try:
            stored = example_records.decode_label_issues(payload_of(datum, label), label)
        except schema.FormatError as error:
            skipped.append(damaged(tag, content, [datum.step], error))
            continue
        series[datum.step] = LabelIssueFigures(stored.count, stored.examples, stored.bins)
    return series, skipped


# -- slices (format version 7) ------------------------------------------------------------


def slice_evaluations(split, step, content, stored):
    """``{key: {value: SplitEvaluation}}`` of one epoch's `slices.StoredSlices`, each with
    its counts, the threshold grid of the plugin ``content`` and its threshold counts (no AP:
    `with_grid_ap` adds it).

    Raises:
      schema.FormatError: a grid that does not fit the stored threshold counts.
    """
    names = metadata.class_names_of(content, stored.num_classes)
    grid, result = None, {}
    for (key, value), one in stored.slices.items():
        if grid is None:
            grid = threshold_grid.decode_thresholds(content.get("thresholds"), one.tp.shape[1])
        evaluation = SplitEvaluation(
            split,
            step,
            names,
            one.confusion,
            thresholds=grid,
            tp=one.tp,
            fp=one.fp,
            matrices=one.matrices,
            exact_matches=one.exact_matches,
        )
        result.setdefault(key, {})[value] = evaluation
    return result


def with_grid_ap(evaluation):
    """``evaluation`` with the threshold-grid AP of its threshold counts (a slice keeps no
    scores for the exact one).
    """
    positives = np.array([evaluation.positives(k) for k in range(evaluation.num_classes)])
    evaluation.average_precision = counting.average_precision_from_counts(
        evaluation.tp, evaluation.fp, positives
    )
    evaluation.average_precision_method = counting.AP_THRESHOLD_GRID
    return evaluation

"""What `reader.Reader.history` reads of a run, and how the points it read fill a `RunHistory`:
the metricsdiag tags of the history, the kinds used whole, the reads of the training curves
(the callback's logs, else the epoch scalars of ``keras.callbacks.TensorBoard``'s sub-runs),
and the per-kind decoding of the points into the history, damage noted rather than raised.
No TensorFlow, no HTTP; the reads are described (`SeriesRead`), not made.
"""

from tb_metricsdiag.backend.keras_subruns import KERAS_EPOCH_PREFIX, KERAS_SUBRUNS
from tb_metricsdiag.backend.provider_source import SeriesRead
from tb_metricsdiag.backend.record_decoding import (
    calibration_series,
    damaged,
    epoch_record_at,
    label_issue_figures,
    logs_curves,
    readable_points,
    slice_evaluations,
)
from tb_metricsdiag.format import confusion_counts, histograms, schema, stored_json

WHOLE_KINDS = (
    schema.KIND_CONFUSION,
    schema.KIND_EVENTS,
    schema.KIND_LOGS,
    schema.KIND_CALIBRATION,
    schema.KIND_LABEL_ISSUES,
)
"""Kinds of which the history uses every point; of the others it reads the latest only."""


def history_tags(index):
    """The metricsdiag tags the history of the run of ``index`` (a `RunIndex`) reads."""
    tags = [schema.RUN_INFO_TAG, schema.OVERLAP_TAG, schema.EVENTS_TAG, schema.LOGS_TAG]
    for split in index.splits or schema.SPLITS:
        tags.extend(schema.split_tag(split, kind) for kind in schema.PER_CLASS_KINDS)
        tags.append(schema.split_tag(split, schema.KIND_CALIBRATION))
        tags.append(schema.split_tag(split, schema.KIND_EXACT_MATCH))
        tags.append(schema.split_tag(split, schema.KIND_LABEL_ISSUES))
        tags.append(schema.split_tag(split, schema.KIND_SLICES))
    return tags


# -- curves -----------------------------------------------------------------------------


def metricsdiag_curves(source, provider, run):
    """The `SeriesRead` of the Keras logs the callback wrote beside the counts of ``run``
    (listed through ``source``, a `provider_source.ProviderSource` over ``provider``).
    """
    prefix = schema.scalar_tag("")
    return _curve_read(
        source, provider, schema.PLUGIN_NAME, [run], prefix, lambda _, tag: tag[len(prefix) :]
    )


def keras_curves(source, provider, index):
    """The `SeriesRead` of the epoch scalars of ``keras.callbacks.TensorBoard``'s sub-runs of
    the run of ``index``.
    """
    key_prefix = {subrun: KERAS_SUBRUNS[split] for split, subrun in index.keras_subruns.items()}
    return _curve_read(
        source,
        provider,
        "scalars",
        sorted(key_prefix),
        KERAS_EPOCH_PREFIX,
        lambda run, tag: key_prefix[run] + tag[len(KERAS_EPOCH_PREFIX) :],
    )


def _curve_read(source, provider, plugin_name, runs, prefix, key_of):
    """A `SeriesRead` of the scalars of ``runs`` whose tag starts with ``prefix`` and maps to a
    (non-empty) Keras log key ``key_of(run, tag)``.
    """
    listing = {}
    if runs:
        for run, tags in source.listing(provider.list_scalars, plugin_name, runs=runs).items():
            wanted = {
                tag: series
                for tag, series in tags.items()
                if tag.startswith(prefix) and key_of(run, tag)
            }
            if wanted:
                listing[run] = wanted
    return SeriesRead(provider.read_scalars, plugin_name, listing, key_of=key_of)


# -- points into the history ------------------------------------------------------------


def fill_points(found, history):
    """Fill ``history`` (a `RunHistory`) from ``found`` (``{tag: (content, points)}``): every
    point of the kinds in `WHOLE_KINDS`, the latest point of the others. A series or point that
    cannot be read is noted in the history as `DamagedData`, and the others are still read.
    """
    for tag, (content, data) in found.items():
        if not data:
            continue
        kind, split = content.get("kind"), content.get("split")
        skipped = []
        try:
            data = readable_points(data)
            if kind == schema.KIND_RUN_INFO:
                history.info = stored_json.json_of(data[-1])
            elif kind == schema.KIND_OVERLAP:
                history.overlap = stored_json.json_of(data[-1])
            elif kind == schema.KIND_EVENTS:
                skipped = _fill_events(tag, content, data, history)
            elif kind == schema.KIND_LOGS:
                history.curves, skipped = logs_curves(tag, content, data)
            elif kind == schema.KIND_LABEL_DISTRIBUTION:
                history.label_distribution[split] = histograms.label_distribution(data[-1])
            elif kind == schema.KIND_CONFUSION:
                history.confusions[split] = confusion_counts.decision_totals(content, data)
                history.multilabel = history.multilabel or confusion_counts.is_multilabel(content)
            elif kind == schema.KIND_CALIBRATION:
                history.calibration[split], skipped = calibration_series(tag, content, data)
            elif kind == schema.KIND_LABEL_ISSUES:
                history.label_issues[split], skipped = label_issue_figures(tag, content, data)
            elif kind == schema.KIND_SLICES:
                step, stored = epoch_record_at(kind, data, None, "stored slices of %r" % split)
                history.slices[split] = slice_evaluations(split, step, content, stored)
        except schema.FormatError as error:
            # A series refused whole, or one read whole (`WHOLE_KINDS`) that a point spoils, is
            # skipped at every step; of the others only the latest point is read.
            whole = isinstance(data, schema.FormatError) or kind in WHOLE_KINDS
            skipped = [damaged(tag, content, None if whole else [data[-1].step], error)]
        for damage in skipped:
            history.note_damage(damage)


def _fill_events(tag, content, data, history):
    """Add the recorded events of every point of ``data`` to ``history``; the `DamagedData` of
    the points that cannot be read.
    """
    skipped = []
    for datum in data:
        try:
            recorded = stored_json.json_of(datum)
        except schema.FormatError as error:
            skipped.append(damaged(tag, content, [datum.step], error))
            continue
        if isinstance(recorded, list):
            history.events.extend(
                dict(event, step=datum.step) for event in recorded if isinstance(event, dict)
            )
    return skipped

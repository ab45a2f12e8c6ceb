"""A run's example records (format version 6) read for `reader.Reader`: which examples fall in
each confusion cell, the label issues, the split's ids and the previews, decoded by
`record_decoding` and kept in the cache under their series' listing, so that the cells of a
step already read are answered without decoding it again. No TensorFlow, no HTTP.
"""

import dataclasses

import numpy as np
from tensorboard import errors

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend.provider_source import SeriesRead
from tb_metricsdiag.backend.record_decoding import (
    epoch_record_at,
    id_table_step,
    ids_of,
    merged_previews,
    readable_points,
)
from tb_metricsdiag.diagnostics import requirements
from tb_metricsdiag.format import example_ids, metadata, schema
from tb_metricsdiag.run_records import SplitCrossings, SplitExamples, SplitLabelIssues

# First elements of the cache keys of decoded id tables, of the step of the table in force at
# a step, of the steps with examples, and of previews (those of the epoch records are their
# kind).
_IDS, _TABLE_STEP, _STEPS, _PREVIEWS = "ids", "table_step", "example_steps", "previews"

# Bytes a decoded record holds beyond its arrays (Python objects, its key).
_RECORD_OVERHEAD_BYTES = 1024

# Python objects of one decoded preview (its dict, its id) beyond its text.
_PREVIEW_OVERHEAD_BYTES = 300


class ExampleReader:
    """Reads example records through ``source`` (the reader's `provider_source.ProviderSource`)
    from ``provider`` for one request and experiment; ``run_index(run)`` is the reader's, which
    raises NotFoundError for an unknown run.
    """

    def __init__(self, source, provider, experiment_id, cache, run_index):
        self._source = source
        self._provider = provider
        self._eid = experiment_id
        self._cache = cache  # a `cache.SeriesCache` shared across requests, or None
        self._run_index = run_index

    def examples(self, run, split, step=None):
        """The `SplitExamples` of ``split`` at ``step`` (default: the latest step): which
        examples fall in each confusion cell, which were right, and their ids.

        Decoded records are kept in the cache under their series' listing, so that the cells
        of one step are answered without decoding it again.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step, or a run written
            without example records (the message says how to record them).
          schema.FormatError: the stored records are damaged or inconsistent.
        """
        return self._split_record(run, split, schema.KIND_EXAMPLES, step, SplitExamples)

    def label_issues(self, run, split, step=None):
        """The `SplitLabelIssues` of ``split`` at ``step`` (default: the latest step).

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step, a run written without
            example records, or a multi-label split (label issues are single-label).
          schema.FormatError: the stored records are damaged or inconsistent.
        """
        return self._split_record(run, split, schema.KIND_LABEL_ISSUES, step, SplitLabelIssues)

    def crossings(self, run, split, step):
        """The `SplitCrossings` of ``split`` at ``step``.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step, or a run written
            without crossing samples (the message says how to record them).
          schema.FormatError: the stored samples are damaged or inconsistent.
        """
        return self._split_record(run, split, schema.KIND_CROSSINGS, step, SplitCrossings)

    def _split_record(self, run, split, kind, step, make):
        """``make(split, step, class names, record, ids)`` of the split's epoch record of
        ``kind`` at ``step``, with the id table and the class names in force there.
        """
        listing, step, record = self._epoch_record(run, split, kind, step)
        ids = self._ids(run, split, listing, step, record.num_rows)
        names = self._class_names(listing, split, record.num_classes)
        return make(split, step, names, record, ids)

    def _epoch_record(self, run, split, kind, step):
        """``(listing, step, record)``: the split's listing (`_example_listing`) and its
        epoch record of ``kind`` at ``step`` (None: the latest), decoded
        (`record_decoding.epoch_record_at`) or from the cache.
        """
        listing = self._example_listing(run, split, kind)
        tag = schema.split_tag(split, kind)
        what = "stored %s of %r" % (kind.replace("_", " "), split)
        step, record = self._decoded(
            (kind,) + self._key(run, tag, listing[tag]) + (step,),
            lambda: epoch_record_at(kind, self._points(run, tag, listing[tag]), step, what),
            lambda found: _record_size(found[1]),
        )
        return listing, step, record

    def slices(self, run, split, step=None):
        """``(content, step, slices.StoredSlices)``: ``split``'s slices at ``step`` (default:
        the latest step with slices), with their plugin content (class names, thresholds);
        None when the split has no slices.

        Raises:
          tensorboard.errors.NotFoundError: no such run or split, or no slices at that step.
          schema.FormatError: the stored slices are damaged or inconsistent.
        """
        tag = schema.split_tag(split, schema.KIND_SLICES)
        series = self._tensor_listing(run, [tag]).get(tag)
        if series is None:
            index = self._run_index(run)  # raises NotFoundError for an unknown run
            if split not in index.splits:
                raise errors.NotFoundError("run %r has no %r data" % (run, split))
            return None
        step, stored = self._decoded(
            (schema.KIND_SLICES,) + self._key(run, tag, series) + (step,),
            lambda: epoch_record_at(
                schema.KIND_SLICES,
                self._points(run, tag, series),
                step,
                "stored slices of %r" % split,
            ),
            lambda found: _record_size(found[1]),
        )
        return metadata.listed_content(series.plugin_content), step, stored

    def example_steps(self, run, split):
        """The ascending steps at which ``split`` of ``run`` has example records.

        Raises:
          tensorboard.errors.NotFoundError: as `examples`.
        """
        listing = self._example_listing(run, split, schema.KIND_EXAMPLES)
        tag = schema.split_tag(split, schema.KIND_EXAMPLES)
        return self._decoded(
            (_STEPS,) + self._key(run, tag, listing[tag]),
            lambda: sorted(
                {datum.step for datum in readable_points(self._points(run, tag, listing[tag]))}
            ),
            lambda steps: _RECORD_OVERHEAD_BYTES + 40 * len(steps),
        )

    def previews(self, run, split):
        """``({id: preview}, problems)``: the previews stored for ``split`` of ``run`` (each
        ``{"text": str}`` or ``{"image": "data:image/png;base64,..."}``; an empty dict
        without any), and why any point of them could not be read.
        """
        tag = schema.split_tag(split, schema.KIND_PREVIEWS)
        series = self._tensor_listing(run, [tag]).get(tag)
        if series is None:
            return {}, []
        return self._decoded(
            (_PREVIEWS,) + self._key(run, tag, series),
            lambda: merged_previews(self._points(run, tag, series), "previews of %r" % split),
            _previews_size,
        )

    def _tensor_listing(self, run, tags):
        """``{tag: TimeSeries}`` of those metricsdiag ``tags`` of ``run`` that exist."""
        return self._source.listing(
            self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run], tags=list(tags)
        ).get(run, {})

    def _example_listing(self, run, split, kind):
        """The listing of ``split``'s series of ``kind`` (an example record), of its id
        table and of its confusion matrices (class names).

        Raises:
          tensorboard.errors.NotFoundError: the run, the split or the records are absent.
        """
        tags = [
            schema.split_tag(split, each)
            for each in (kind, schema.KIND_EXAMPLE_IDS, schema.KIND_CONFUSION, schema.KIND_EXAMPLES)
        ]
        listing = self._tensor_listing(run, tags)
        if tags[0] in listing:
            return listing
        if not listing:
            index = self._run_index(run)  # raises NotFoundError for an unknown run
            if split not in index.splits:
                raise errors.NotFoundError("run %r has no %r data" % (run, split))
        if kind == schema.KIND_LABEL_ISSUES and tags[3] in listing:
            raise errors.NotFoundError(
                "run %r has no label issues for %r: confident learning flags labels of"
                " single-label tasks only, from every example's scores (which Lightning's"
                " reduce='counts' and Transformers' batch_eval_metrics do not keep)" % (run, split)
            )
        if kind == schema.KIND_CROSSINGS and tags[3] in listing:
            raise errors.NotFoundError(
                "run %r has example records for %r but no crossing samples (which examples"
                " cross a moved threshold; a tb-metricsdiag older than them wrote it): %s"
                % (run, split, requirements.RECORD_EXAMPLES)
            )
        raise errors.NotFoundError(
            "run %r was written without example records for %r: %s"
            % (run, split, requirements.RECORD_EXAMPLES)
        )

    def _ids(self, run, split, listing, step, num_rows):
        """The split's `ExampleIds` in force at ``step``, ``num_rows`` of them."""
        tag = schema.split_tag(split, schema.KIND_EXAMPLE_IDS)
        series = listing.get(tag)
        if series is None:  # no table: the ids are the positions
            return example_ids.ExampleIds.positions(num_rows)
        key = self._key(run, tag, series)
        # Which table is in force at each step is kept too: a step answered before reads no
        # point of the series (a table of a million ids is megabytes of points).
        (table_step,) = self._decoded(
            (_TABLE_STEP,) + key + (step,),
            lambda: (id_table_step(self._points(run, tag, series), step),),
            lambda _: _RECORD_OVERHEAD_BYTES,
        )
        return self._decoded(
            (_IDS,) + key + (table_step, num_rows),
            lambda: ids_of(
                self._points(run, tag, series), table_step, num_rows, "stored ids of %r" % split
            ),
            _record_size,
        )

    @staticmethod
    def _class_names(listing, split, num_classes):
        """The split's class names (of its confusion matrices), or the default ones."""
        series = listing.get(schema.split_tag(split, schema.KIND_CONFUSION))
        content = metadata.listed_content(series.plugin_content) if series is not None else {}
        return metadata.class_names_of(content, num_classes)

    def _key(self, run, tag, series):
        return cache_lib.series_key(self._eid, run, tag, series)

    def _points(self, run, tag, series):
        """Every point of one series (or the `schema.FormatError` it is refused as)."""
        [data] = self._source.read_many(
            [SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: {tag: series}})]
        )
        return data.get(run, {}).get(tag, [])

    def _decoded(self, key, decode, size_of):
        """``decode()``, kept in the cache under ``key`` (about ``size_of(value)`` bytes). A
        refusal (`schema.FormatError`) is kept too, so that a damaged record is not decoded
        again until its series changes.
        """
        value = self._cache.get_derived(key) if self._cache is not None else None
        if value is None:
            try:
                value = decode()
                size = size_of(value)
            except schema.FormatError as error:
                value = schema.FormatError(str(error))  # kept without its traceback
                size = _RECORD_OVERHEAD_BYTES + len(str(error))
            if self._cache is not None:
                self._cache.put_derived(key, value, size)
        if isinstance(value, schema.FormatError):
            raise value
        return value


def _held_bytes(value):
    """Approximate bytes held by a decoded record (`example_records`, `example_ids`): its
    arrays and byte strings, in its fields, dicts and tuples.
    """
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, (tuple, list)):
        return sum(_held_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_held_bytes(item) for item in value.values())
    if dataclasses.is_dataclass(value):
        return sum(_held_bytes(getattr(value, field.name)) for field in dataclasses.fields(value))
    return 0


def _record_size(record):
    """Approximate bytes of a decoded record with its key."""
    return _RECORD_OVERHEAD_BYTES + _held_bytes(record)


def _previews_size(found):
    """Approximate bytes of `ExampleReader.previews`' merged previews."""
    merged, problems = found
    text = sum(len(next(iter(preview.values()))) for preview in merged.values())
    return _RECORD_OVERHEAD_BYTES + text + _PREVIEW_OVERHEAD_BYTES * len(merged) + len(problems)

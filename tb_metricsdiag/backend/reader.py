"""Reads metricsdiag data through a TensorBoard data provider. No TensorFlow, no HTTP.

`Reader` is the one entry point of the plugin's routes and of the command line: it says what
to read for each question (a run's index, an evaluation, the whole history), reads it through
`provider_source` and builds the run records (`run_records`) with `record_decoding`.

The backend reads through the provider TensorBoard hands it (the Rust data server or the
Python loader); the command line builds a provider over the event files itself
(`logdir.provider_for_logdir`). Both therefore see the same data through the same code.

A *training run* is what one `model.fit` wrote: the metricsdiag run at ``log_dir``, plus the
``log_dir/train`` and ``log_dir/validation`` runs that ``keras.callbacks.TensorBoard`` writes
beside it (`keras_subruns`). A logdir written by Keras's callback alone still yields training
runs (with curves, but no counts).
"""

import dataclasses

import numpy as np
from tensorboard import errors

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import history_reads
from tb_metricsdiag.backend.example_reader import ExampleReader
from tb_metricsdiag.backend.keras_subruns import KERAS_SUBRUNS, keras_subrun
from tb_metricsdiag.backend.provider_source import LATEST, ProviderSource, SeriesRead
from tb_metricsdiag.backend.record_decoding import (
    checked_steps,
    damaged,
    point_at_step,
    run_indexes,
    scalar_curves,
    slice_evaluations,
    split_evaluation,
    with_grid_ap,
)
from tb_metricsdiag.diagnostics import requirements
from tb_metricsdiag.format import (
    histograms,
    metadata,
    schema,
    threshold_counts,
)
from tb_metricsdiag.run_records import RunHistory

# Runs read per provider call by `Reader.steps_by_run`.
RUNS_PER_READ = 64

# The series of a `SplitEvaluation`, confusion matrices first.
_EVALUATION_KINDS = (
    schema.KIND_CONFUSION,
    schema.KIND_THRESHOLD_COUNTS,
    schema.KIND_AVERAGE_PRECISION,
    schema.KIND_EXACT_MATCH,
)

# First element of the cache keys of a run's checked steps (`Reader.steps_by_run`).
_CHECKED_STEPS = "checked_steps"

# First element of the cache keys of threshold counts found unreadable (`Reader._counts_of`).
_BAD_COUNTS = "bad_counts"


class UnknownSlice(errors.NotFoundError, LookupError):
    """A slice (``key``, ``value``) a run's split does not have, or a split without slices:
    the routes answer 404.
    """


class Reader:
    """Reads training runs from ``provider`` for one request (``ctx``) and experiment."""

    def __init__(self, provider, ctx=None, experiment_id="", cache=None):
        self._source = ProviderSource(provider, ctx, experiment_id, cache)
        self._provider = provider
        self._eid = experiment_id
        self._cache = cache  # a `cache.SeriesCache` shared across requests, or None
        self._examples = ExampleReader(self._source, provider, experiment_id, cache, self.run_index)

    # -- listing ------------------------------------------------------------------------

    def list_runs(self):
        """``{run: RunIndex}`` of every training run, from metadata only."""
        self._source.refresh_listings(
            [
                (self._provider.list_tensors, schema.PLUGIN_NAME),
                (self._provider.list_scalars, "scalars"),
            ]
        )
        return run_indexes(
            self._source.listing(self._provider.list_tensors, schema.PLUGIN_NAME),
            self._source.listing(self._provider.list_scalars, "scalars"),
        )

    def runs_with_counts(self):
        """``{run: RunIndex}`` of the runs with metricsdiag data (`list_runs` less the runs of
        ``keras.callbacks.TensorBoard`` alone), their Keras sub-runs found in a listing of those
        sub-runs alone (`keras_subrun_listing`): the whole logdir's scalars are not listed.
        """
        self._source.refresh_listings([(self._provider.list_tensors, schema.PLUGIN_NAME)])
        tensors = self._source.listing(self._provider.list_tensors, schema.PLUGIN_NAME)
        # The runs of a sweep share their plugin content (their class names): each distinct
        # content is parsed and checked once per request, not once per run.
        parsed = {}

        def listed_content(content):
            if content not in parsed:
                parsed[content] = metadata.listed_content(content)
            return parsed[content]

        return run_indexes(tensors, self.keras_subrun_listing(tensors), listed_content)

    def keras_subrun_listing(self, tensors=None, runs=None):
        """The ``scalars`` listing of the Keras sub-runs (``run/train``, ``run/validation``) of
        the runs with metricsdiag data (``tensors``: their listing; default the cached one),
        limited to ``runs`` when given: listed by run name, since the logdir's scalars (every
        run's headline scalars among them) may be tens of thousands of series.
        """
        if tensors is None:
            tensors = self._source.listing(self._provider.list_tensors, schema.PLUGIN_NAME)
        candidates = sorted(keras_subrun(run, split) for run in tensors for split in KERAS_SUBRUNS)
        listing = self._source.listing_of_runs(
            self._provider.list_scalars, "scalars", candidates, "keras_subruns"
        )
        if runs is None:
            return listing
        return {run: listing[run] for run in runs if run in listing}

    def run_index(self, run):
        """The `RunIndex` of ``run``, from the listings of that run and its Keras sub-runs.

        Also refreshes the listing of the curves' scalars with the others: the reads of a run
        that follow (`history`, `history_key`) need it.
        """
        self._source.refresh_listings(
            [
                (self._provider.list_tensors, schema.PLUGIN_NAME),
                (self._provider.list_scalars, "scalars"),
                (self._provider.list_scalars, schema.PLUGIN_NAME),
            ]
        )
        index = run_indexes(
            self._source.listing(self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run]),
            self._source.listing(
                self._provider.list_scalars,
                "scalars",
                runs=[keras_subrun(run, split) for split in KERAS_SUBRUNS],
            ),
        ).get(run)
        if index is None:
            raise errors.NotFoundError("no metricsdiag run named %r" % (run,))
        return index

    # -- reading tensors ----------------------------------------------------------------

    def _read(self, run, tags):
        """``{tag: (content dict, [TensorDatum])}`` for the tags of ``run`` that exist."""
        listing = self._source.listing(
            self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run], tags=list(tags)
        ).get(run, {})
        if not listing:
            return {}
        [data] = self._source.read_many(
            [SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: listing})]
        )
        data = data.get(run, {})
        return {
            tag: (metadata.parse_plugin_content(series.plugin_content), data.get(tag, []))
            for tag, series in listing.items()
        }

    def steps_by_run(self, indexes, chunk=RUNS_PER_READ):
        """``{run: (steps, trainings) or FormatError}``: the ascending steps at which each
        run's first split with counts has a confusion matrix in its latest training, each matrix
        checked (`record_decoding.checked_steps`), and the number of trainings written into the run.

        With a cache, a run's checked steps are kept under its series' listing: ``/runs`` then
        reads and checks only the runs that changed. The others are read ``chunk`` at a time,
        one provider call per chunk rather than one per run (each call to the Rust data server
        costs a gRPC round trip), the chunks bounding what one request holds in memory.
        """
        wanted = {
            index.run: schema.split_tag(index.splits[0], schema.KIND_CONFUSION)
            for index in indexes
            if index.splits
        }
        runs, result = sorted(wanted), {}
        for start in range(0, len(runs), chunk):
            batch = runs[start : start + chunk]
            listing = self._source.listing(
                self._provider.list_tensors,
                schema.PLUGIN_NAME,
                runs=batch,
                tags=sorted({wanted[run] for run in batch}),
            )
            unread = {}  # run -> (tag, series, key of its checked steps)
            for run in batch:
                tag = wanted[run]
                series = listing.get(run, {}).get(tag)
                if series is None:
                    result[run] = ([], 1)
                    continue
                key = (_CHECKED_STEPS,) + cache_lib.series_key(self._eid, run, tag, series)
                kept = self._cache.get_derived(key) if self._cache is not None else None
                if kept is None:
                    unread[run] = (tag, series, key)
                else:
                    result[run] = _steps_of(kept)
            [data] = self._source.read_many(
                [
                    SeriesRead(
                        self._provider.read_tensors,
                        schema.PLUGIN_NAME,
                        {run: {tag: series} for run, (tag, series, _) in unread.items()},
                    )
                ]
            )
            for run, (tag, series, key) in unread.items():
                try:
                    content = metadata.parse_plugin_content(series.plugin_content)
                    steps = checked_steps(content, data.get(run, {}).get(tag, []))
                    trainings = self._source.restarts.get((run, tag), (1,))[0]
                    # The number of trainings rides in the last element: one array kept.
                    kept = np.asarray(steps + [trainings], np.int64)
                except schema.FormatError as error:
                    kept = schema.FormatError(str(error))  # kept without its traceback
                if self._cache is not None:
                    self._cache.put_derived(key, kept, _kept_steps_size(kept))
                result[run] = _steps_of(kept)
        return result

    def evaluation(self, run, split, step=None, with_pr=True, slice=None):  # noqa: A002
        """The `SplitEvaluation` of ``split`` at ``step`` (default: the latest step).

        ``with_pr=False`` reads the confusion matrices alone, without the threshold counts (by
        far the largest series) and AP, when only the matrix is needed. ``slice=(key,
        value)``: that slice's own evaluation (its counts and threshold counts, no AP), from
        the split's slices at ``step`` (default: the latest step with slices).

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          UnknownSlice: no such slice (or no slices) in the split.
          schema.FormatError: the stored data is inconsistent or of an unknown version.
        """
        if slice is not None:
            step, by_key = self.slices(run, split, step)
            flat = {
                (key, value): one for key, values in by_key.items() for value, one in values.items()
            }
            return with_grid_ap(dataclasses.replace(_slice_of(flat, slice, run, split)))
        kinds = [schema.KIND_CONFUSION, schema.KIND_EXACT_MATCH]
        if with_pr:
            kinds += [schema.KIND_THRESHOLD_COUNTS, schema.KIND_AVERAGE_PRECISION]
        found = self._read(run, [schema.split_tag(split, kind) for kind in kinds])
        if schema.split_tag(split, schema.KIND_CONFUSION) not in found:
            self.run_index(run)  # raises NotFoundError for an unknown run
            raise errors.NotFoundError("run %r has no %r data" % (run, split))
        return split_evaluation(run, split, step, found, self._counts_of)

    def _counts_of(self, run, tag, content, datum, num_classes):
        """`threshold_counts.stored_threshold_counts` of one point; a point found unreadable is
        remembered (in the cache, under the point's step and wall time) and refused again
        without being decoded.
        """
        key = (_BAD_COUNTS, self._eid, run, tag, datum.step, datum.wall_time, num_classes)
        known = self._cache.get_derived(key) if self._cache is not None else None
        if known is not None:
            raise schema.FormatError(known)
        try:
            return threshold_counts.stored_threshold_counts(content, datum, num_classes)
        except schema.FormatError as error:
            if self._cache is not None:
                self._cache.put_derived(key, str(error), 400 + len(str(error)))
            raise

    def calibration(self, run, split, step=None, slice=None):  # noqa: A002
        """``(step, bins)`` of a split's calibration bins at ``step`` (default: the latest);
        ``slice=(key, value)``: that slice's, as `evaluation`.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          UnknownSlice: no such slice (or no slices) in the split.
          schema.FormatError: the stored bins are malformed.
        """
        if slice is not None:
            _, step, stored = self._stored_slices(run, split, step)
            return step, _slice_of(stored.slices, slice, run, split).calibration
        tag = schema.split_tag(split, schema.KIND_CALIBRATION)
        found = self._read(run, [tag])
        if tag not in found or not found[tag][1]:
            self.run_index(run)  # raises NotFoundError for an unknown run
            raise errors.NotFoundError("run %r has no %r calibration data" % (run, split))
        data = found[tag][1]
        if step is None:
            step = max(datum.step for datum in data)
        datum = point_at_step(data, step)
        if datum is None:
            raise errors.NotFoundError(
                "run %r has no %r calibration data at step %d" % (run, split, step)
            )
        return step, histograms.calibration_bins_of(datum.numpy)

    # -- slices (format version 7) ------------------------------------------------------

    def _stored_slices(self, run, split, step):
        """``(content, step, slices.StoredSlices)`` of ``split`` at ``step``; UnknownSlice
        when the split has none.
        """
        found = self._examples.slices(run, split, step)
        if found is None:
            raise UnknownSlice(
                "run %r has no slices for %r: pass groups={key: one value per example} to"
                " the writer to record them" % (run, split)
            )
        return found

    def slice_keys(self, run, split, step=None):
        """``{key: [value, ...]}`` of ``split``'s slices at ``step`` (default: the latest
        step with slices); an empty dict when the split has none.

        Raises:
          tensorboard.errors.NotFoundError: no such run or split, or no slices at ``step``.
        """
        found = self._examples.slices(run, split, step)
        return {} if found is None else {key: list(v) for key, v in found[2].keys.items()}

    def slices(self, run, split, step=None):
        """``(step, {key: {value: SplitEvaluation}})`` of ``split``'s slices at ``step``.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          UnknownSlice: the split has no slices.
        """
        content, step, stored = self._stored_slices(run, split, step)
        return step, slice_evaluations(split, step, content, stored)

    def slices_key(self, run, split):
        """A key of ``split``'s slices series (it changes with the series), or None without
        one: a document derived from them is kept under it.
        """
        tag = schema.split_tag(split, schema.KIND_SLICES)
        series = (
            self._source.listing(
                self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run], tags=[tag]
            )
            .get(run, {})
            .get(tag)
        )
        return None if series is None else cache_lib.series_key(self._eid, run, tag, series)

    def slice_examples(self, run, split, step, slice):  # noqa: A002
        """``(SplitExamples, groups_at)``: the examples of ``slice=(key, value)`` at ``step``
        (default: the latest step with slices), with the split's ids at that step, and each
        example's group values (those stored, `StoredSlices.groups_at`, and the slice's own).

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step, or a run written
            without example records.
          UnknownSlice: no such slice (or no slices) in the split.
        """
        _, step, stored = self._stored_slices(run, split, step)
        one = _slice_of(stored.slices, slice, run, split)
        records = self._examples.examples(run, split, step)
        if one.examples is None:
            raise errors.NotFoundError(
                "run %r was written without example records for %r: %s"
                % (run, split, requirements.RECORD_EXAMPLES)
            )
        key, value = _slice_key(slice)

        def groups_at(positions):
            # Every example of the slice has its value; the others where stored.
            return [dict(found or {}, **{key: value}) for found in stored.groups_at(positions)]

        return dataclasses.replace(records, examples=one.examples), groups_at

    def example_groups(self, run, split, step):
        """``groups_at(positions)`` of the split's slices at ``step`` (`StoredSlices.groups_at`:
        each kept example's group values), or None without slices at that step.

        Raises:
          schema.FormatError: the slices are damaged (`/examples` then answers without the
            group values, and says why in ``group_problems``).
        """
        try:
            found = self._examples.slices(run, split, step)
        except errors.NotFoundError:
            return None
        return None if found is None else found[2].groups_at

    # -- example records ----------------------------------------------------------------

    def examples(self, run, split, step=None):
        """`example_reader.ExampleReader.examples`: the `SplitExamples` of ``split`` at
        ``step`` (default: the latest).
        """
        return self._examples.examples(run, split, step)

    def crossings(self, run, split, step):
        """`example_reader.ExampleReader.crossings`: the `SplitCrossings` of ``split`` at
        ``step``.
        """
        return self._examples.crossings(run, split, step)

    def label_issues(self, run, split, step=None):
        """`example_reader.ExampleReader.label_issues`: the `SplitLabelIssues` of ``split`` at
        ``step`` (default: the latest).
        """
        return self._examples.label_issues(run, split, step)

    def example_steps(self, run, split):
        """`example_reader.ExampleReader.example_steps`: the steps with example records."""
        return self._examples.example_steps(run, split)

    def previews(self, run, split):
        """`example_reader.ExampleReader.previews`: ``({id: preview}, problems)``."""
        return self._examples.previews(run, split)

    # -- whole history, for the diagnostics ---------------------------------------------

    def history(self, run, index=None):
        """The `RunHistory` of one training run (counts, curves, run info, events).

        Its series are read in at most three provider calls, made at once: the series used
        whole (confusion matrices, events, logs), the latest point of the others (run
        information, threshold counts, ...), and the scalars of the curves where the run has no
        logs series (written before format version 3, or by Keras's callback alone).
        """
        index = index or self.run_index(run)
        history = RunHistory(run=run, class_names=list(index.class_names))
        tensors, contents = {}, {}
        with_metricsdiag = index.has_counts or not index.keras_subruns
        if with_metricsdiag:
            tensors = self._source.listing(
                self._provider.list_tensors,
                schema.PLUGIN_NAME,
                runs=[run],
                tags=history_reads.history_tags(index),
            ).get(run, {})
            for tag, series in list(tensors.items()):
                try:
                    contents[tag] = metadata.parse_plugin_content(series.plugin_content)
                except schema.FormatError as error:  # that series is skipped, the others read
                    history.note_damage(damaged(tag, None, None, error))
                    del tensors[tag]
        curves = SeriesRead(self._provider.read_scalars, schema.PLUGIN_NAME, {})
        if schema.LOGS_TAG not in tensors:
            if with_metricsdiag:
                curves = history_reads.metricsdiag_curves(self._source, self._provider, run)
            if not curves.listing:
                curves = history_reads.keras_curves(self._source, self._provider, index)
        whole = {
            tag: s
            for tag, s in tensors.items()
            if contents[tag].get("kind") in history_reads.WHOLE_KINDS
        }
        latest = {tag: s for tag, s in tensors.items() if tag not in whole}
        whole_data, latest_data, curve_data = self._source.read_many(
            [
                SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: whole}),
                SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: latest}, LATEST),
                curves,
            ]
        )
        data = {**whole_data.get(run, {}), **latest_data.get(run, {})}
        found = {tag: (contents[tag], data.get(tag, [])) for tag in tensors}
        if curves.listing:
            history.curves, unreadable = scalar_curves(curve_data, curves.key_of)
            for damage in unreadable:
                history.note_damage(damage)
        self._fill_history(run, found, history)
        history.trainings, history.restart = self._source.restart_of(run)
        return history

    def history_key(self, run, index):
        """A key of everything `history` reads for ``run``: it changes whenever any of those
        series changes (the listing of every metricsdiag series of the run and of the scalars
        of the run and its Keras sub-runs), so a value derived from the history can be kept.
        """
        key = [
            index.run,
            tuple(index.splits),
            tuple(index.class_names),
            tuple(sorted(index.keras_subruns.items())),
        ]
        subruns = sorted(index.keras_subruns.values())
        if not subruns:
            keras_listing = {}
        elif index.has_counts:  # its sub-runs are among those `keras_subrun_listing` lists
            keras_listing = self.keras_subrun_listing(runs=subruns)
        else:
            keras_listing = self._source.listing(self._provider.list_scalars, "scalars", subruns)
        for listing in (
            self._source.listing(self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run]),
            self._source.listing(self._provider.list_scalars, schema.PLUGIN_NAME, runs=[run]),
            keras_listing,
        ):
            for listed_run, tags in sorted(listing.items()):
                key.extend(
                    cache_lib.series_key(self._eid, listed_run, tag, series)
                    for tag, series in sorted(tags.items())
                )
        return tuple(key)

    def _fill_history(self, run, found, history):
        """Fill ``history`` from ``found`` (``{tag: (content, points)}``,
        `history_reads.fill_points`), then each split's latest evaluation.
        """
        history_reads.fill_points(found, history)
        for split in list(history.confusions):
            confusion_tag = schema.split_tag(split, schema.KIND_CONFUSION)
            try:
                latest = history.latest[split] = self._latest_evaluation(run, split, found)
                if latest.counts_problem is not None:
                    history.note_damage(
                        damaged(
                            schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS),
                            None,
                            [latest.step],
                            latest.counts_problem,
                        )
                    )
            except (schema.FormatError, errors.NotFoundError) as error:
                content = found.get(confusion_tag, (None,))[0]
                history.note_damage(damaged(confusion_tag, content, None, error))

    def _latest_evaluation(self, run, split, found):
        """`evaluation` of ``split`` at its latest step from the history's reads, which hold only
        the latest point of the threshold counts and AP; those are read whole when that point
        is not at the latest step of the confusion matrices (a step written out of order).
        """
        tags = [schema.split_tag(split, kind) for kind in _EVALUATION_KINDS]
        if tags[0] not in found:
            return self.evaluation(run, split)
        evaluation = split_evaluation(
            run, split, None, {tag: found[tag] for tag in tags if tag in found}, self._counts_of
        )
        for tag in tags[1:]:
            points = found.get(tag, (None, []))[1]
            if isinstance(points, list) and points and points[-1].step != evaluation.step:
                return self.evaluation(run, split)
        return evaluation


def _steps_of(kept):
    """``(steps, trainings)`` or the error that `Reader.steps_by_run` keeps as ``kept``: an
    int64 array of the steps and then the trainings (a fifth of the memory of a list of Python
    ints), or a `schema.FormatError`.
    """
    if not isinstance(kept, np.ndarray):
        return kept
    return kept[:-1].tolist(), int(kept[-1])


def _kept_steps_size(kept):
    """Approximate bytes of what `Reader.steps_by_run` keeps, with its key (a few hundred)."""
    return 400 + (kept.nbytes if isinstance(kept, np.ndarray) else 600)


def _slice_key(slice):  # noqa: A002
    """``slice`` as a ``(key, value)`` tuple of strings."""
    key, value = slice
    return str(key), str(value)


def _slice_of(by_slice, slice, run, split):  # noqa: A002
    """``by_slice[(key, value)]``, or UnknownSlice naming what the split has."""
    key, value = _slice_key(slice)
    if (key, value) in by_slice:
        return by_slice[(key, value)]
    keys = sorted({known for known, _ in by_slice})
    if key not in keys:
        raise UnknownSlice(
            "run %r has no slices of key %r for %r (keys: %s)"
            % (run, key[:100], split, ", ".join(keys))
        )
    raise UnknownSlice("run %r has no slice %s=%r for %r" % (run, key, value[:100], split))

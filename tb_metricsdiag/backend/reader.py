"""Reads metricsdiag data through a TensorBoard data provider. No TensorFlow, no HTTP.

The backend reads through the provider TensorBoard hands it (the Rust data server or the
Python loader); the command line builds a provider over the event files itself
(`provider_for_logdir`). Both therefore see the same data through the same code.

A *training run* is what one `model.fit` wrote: the metricsdiag run at ``log_dir``, plus the
``log_dir/train`` and ``log_dir/validation`` runs that ``keras.callbacks.TensorBoard`` writes
beside it. A logdir written by Keras's callback alone still yields training runs (with
curves, but no counts).
"""

import collections
import concurrent.futures
import dataclasses
import functools
import os

import numpy as np
from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider as provider_lib

from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import tensor_guard
from tb_metricsdiag.format import (
    confusion_counts,
    histograms,
    metadata,
    schema,
    stored_json,
    threshold_counts,
)

# Large enough that the provider returns every stored point of a series (no downsampling).
READ_ALL = 1 << 30

# Points read of a series of which only the latest is used: the provider keeps the last one.
LATEST = 1

# Runs read per provider call by `Reader.steps_by_run`.
RUNS_PER_READ = 64

# Kinds of which `Reader.history` uses every point; of the others it reads the latest only.
_WHOLE_KINDS = (
    schema.KIND_CONFUSION,
    schema.KIND_EVENTS,
    schema.KIND_LOGS,
    schema.KIND_CALIBRATION,
)

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

# The AP method of series that do not name one (format versions 1 and 2): exact.
_DEFAULT_AP_METHOD = "exact"

# Keras TensorBoard's sub-runs, and the prefix its validation metrics get in `logs`.
KERAS_SUBRUNS = {"train": "", "validation": "val_"}
KERAS_EPOCH_PREFIX = "epoch_"


@dataclasses.dataclass
class RunIndex:
    """What a training run holds, from tag metadata alone (no tensor data read)."""

    run: str
    splits: list  # splits with counts, "validation" first
    class_names: list
    keras_subruns: dict  # split -> TensorBoard run name of keras.callbacks.TensorBoard's data
    multilabel: bool = False  # the counts are per label (`confusion_counts.is_multilabel`)

    @property
    def task(self):
        """The task of the run's counts (`schema.task_of`); None without counts."""
        if not self.class_names:
            return None
        return schema.task_of(len(self.class_names), self.multilabel)

    @property
    def has_counts(self):
        return bool(self.splits)


@dataclasses.dataclass
class SplitEvaluation:
    """One split at one step: the confusion matrix (per-label matrices, multi-label) and, where
    stored, threshold counts and AP.
    """

    split: str
    step: int
    class_names: list
    confusion: np.ndarray  # [C, C] int64; row = actual, column = predicted; None multi-label
    thresholds: np.ndarray = None  # [T] ascending
    tp: np.ndarray = None  # [C, T] int64
    fp: np.ndarray = None  # [C, T] int64
    average_precision: np.ndarray = None  # [C] float64, NaN where undefined
    average_precision_method: str = None  # "exact" or "threshold_grid", with the AP
    roc_auc: np.ndarray = None  # [C] float64, one-vs-rest, NaN where undefined (format 4)
    roc_auc_method: str = None  # how it was computed, as the AP
    counts_problem: str = None  # why stored threshold counts could not be read, if they were not
    matrices: np.ndarray = None  # multi-label: [K, 2, 2] int64, [[tn, fp], [fn, tp]] per label
    exact_matches: int = None  # multi-label: rows whose label set is predicted exactly

    @property
    def multilabel(self):
        return self.matrices is not None

    @property
    def num_classes(self):
        """Classes (labels, multi-label) of the counts."""
        return len(self.class_names)

    @property
    def task(self):
        """The task of the counts (`schema.task_of`)."""
        return schema.task_of(self.num_classes, self.multilabel)

    @property
    def total(self):
        """Examples counted."""
        return int(self.matrices[0].sum() if self.multilabel else self.confusion.sum())

    def positives(self, k):
        """Positives of class (label) k: its examples, or the rows with label k set."""
        return int(self.matrices[k, 1].sum() if self.multilabel else self.confusion[k].sum())


@dataclasses.dataclass
class RunHistory:
    """Everything the diagnostics read for one training run."""

    run: str
    class_names: list
    info: dict = None  # the callback's run information (model, loss, labels), if written
    overlap: dict = None  # the train/validation duplicate check, if run
    label_distribution: dict = dataclasses.field(default_factory=dict)  # split -> [C]
    # Keras log key ("loss", "val_loss", "accuracy", ...) -> (steps, values), ascending steps
    curves: dict = dataclasses.field(default_factory=dict)
    # split -> {step: metrics.ConfusionTotals} (diagonal, row and column sums: O(C) per epoch,
    # `confusion_counts.decision_totals`), or {step: [K, 2, 2]} per label in a multi-label run;
    # the full matrix of the latest step is in `latest`
    confusions: dict = dataclasses.field(default_factory=dict)
    multilabel: bool = False
    # split -> {step: (count, confidence_sum, correct)}, see `calibration.calibration_bins`
    calibration: dict = dataclasses.field(default_factory=dict)
    latest: dict = dataclasses.field(default_factory=dict)  # split -> SplitEvaluation
    events: list = dataclasses.field(default_factory=list)  # recorded problems, with "step"
    problems: list = dataclasses.field(default_factory=list)  # data that could not be read
    # Trainings written into the run (`_latest_training`); only the latest one's points are kept.
    trainings: int = 1
    restart: dict = None  # {"step", "previous_last_step"} where the latest training began


@dataclasses.dataclass
class _SeriesRead:
    """One provider read: ``read`` (``read_tensors`` or ``read_scalars``) of the series in
    ``listing`` (``{run: {tag: TimeSeries}}``), ``downsample`` points each (None: all).
    """

    read: object
    plugin_name: str
    listing: dict
    downsample: int = None
    key_of: object = None  # for curves: (run, tag) -> Keras log key


def provider_for_logdir(logdir, runs=None, progress=None):
    """A data provider over the event files under ``logdir``, keeping every point.

    ``runs`` (``{run name: path}``, the path a run's directory or its one event file) names
    the runs to load; without it TensorBoard's own walk of ``logdir`` finds them (`walk_runs`).
    ``progress``, when given, is called as ``progress(runs read, runs found)`` after each run
    is read.
    """
    from tensorboard.backend.event_processing import (
        data_provider,
        directory_watcher,
        plugin_event_multiplexer,
    )

    if runs is None:
        runs = walk_runs(logdir)
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0, "scalars": 0}
    )
    multiplexer.Reload()  # from now on, AddRun reads each run as it is added
    for done, (name, path) in enumerate(sorted(runs.items()), 1):
        try:
            multiplexer.AddRun(path, name)
        except (OSError, directory_watcher.DirectoryDeletedError):
            pass  # as in TensorBoard's own Reload: the run keeps what was read, the others load
        if progress is not None:
            progress(done, len(runs))
    return data_provider.MultiplexerDataProvider(multiplexer, logdir)


def walk_runs(logdir):
    """``{run name: directory}`` of the runs under ``logdir`` (a local path or any URL
    TensorBoard's file-system layer reads), found and named by TensorBoard's own walk
    (`find_runs` is the bounded walk of local directories).
    """
    from tensorboard.backend.event_processing import io_wrapper

    logdir = os.path.expanduser(logdir)  # as TensorBoard's own walk
    return {
        os.path.relpath(directory, logdir).replace(os.sep, "/"): directory
        for directory in io_wrapper.GetLogdirSubdirectories(logdir)
    }


# Deepest directory below LOGDIR that the walk for runs enters.
MAX_WALK_DEPTH = 32

# Paths named per reason in what the walk skipped; the rest are counted.
SKIPPED_PATHS_SHOWN = 5

SKIPPED_EMPTY = "empty event file"
SKIPPED_WALKED = "directory already walked (a symlink into it or a loop)"
SKIPPED_DEEP = "directory deeper than %d levels" % MAX_WALK_DEPTH
SKIPPED_UNREADABLE = "unreadable directory"


def find_runs(logdir):
    """``({run name: path}, skipped)``: the runs under ``logdir``, as TensorBoard names them
    (the directory relative to ``logdir``, ``"."`` for ``logdir`` itself), and what the walk
    left out, ``[{"reason", "count", "paths"}]`` (at most `SKIPPED_PATHS_SHOWN` paths each).

    The walk is breadth first and bounded: symlinked directories are followed, but a
    directory (by its real path) is entered once, so links back into the logdir cannot make
    it loop, and never deeper than `MAX_WALK_DEPTH`. Empty event files are skipped. A run's
    path is its one non-empty event file when it has one, else its directory: TensorBoard's
    loader of a directory lists the directory again for each of its event files, so a
    directory of thousands of (empty) files would take time quadratic in their number.
    """
    runs, skipped = {}, collections.defaultdict(list)
    walked = set()
    queue = collections.deque([(logdir, 0)])
    while queue:
        path, depth = queue.popleft()
        real = os.path.realpath(path)
        if real in walked:
            skipped[SKIPPED_WALKED].append(path)
            continue
        walked.add(real)
        try:
            with os.scandir(path) as scan:
                entries = sorted(scan, key=lambda entry: (entry.is_symlink(), entry.name))
        except OSError:
            skipped[SKIPPED_UNREADABLE].append(path)
            continue
        event_files = []
        for entry in entries:
            try:
                if entry.is_dir():
                    if depth + 1 > MAX_WALK_DEPTH:
                        skipped[SKIPPED_DEEP].append(entry.path)
                    else:
                        queue.append((entry.path, depth + 1))
                elif "tfevents" in entry.name and entry.is_file():
                    if entry.stat().st_size == 0:
                        skipped[SKIPPED_EMPTY].append(entry.path)
                    else:
                        event_files.append(entry.path)
            except OSError:
                skipped[SKIPPED_UNREADABLE].append(entry.path)
        if event_files:
            name = os.path.relpath(path, logdir).replace(os.sep, "/")
            runs[name] = event_files[0] if len(event_files) == 1 else path
    return runs, [
        {"reason": reason, "count": len(paths), "paths": paths[:SKIPPED_PATHS_SHOWN]}
        for reason, paths in sorted(skipped.items())
    ]


def keras_parent(run):
    """(parent run, split) for a run named like Keras's sub-runs, else None."""
    head, _, tail = run.rpartition("/")
    if tail in KERAS_SUBRUNS:
        return head or ".", tail
    return None


def _keras_subrun(parent, split):
    """The run name `keras_parent` maps to (``parent``, ``split``)."""
    return split if parent == "." else parent + "/" + split


def _run_indexes(tensors, keras_scalars):
    """``{run: RunIndex}`` from a listing of metricsdiag tensors and one of ``scalars``."""
    result = {}
    for run, tags in tensors.items():
        splits, names, multilabel = [], [], False
        for split in schema.SPLITS:
            series = tags.get(schema.split_tag(split, schema.KIND_CONFUSION))
            if series is None:
                continue
            splits.append(split)
            if not names:
                content = metadata.listed_content(series.plugin_content)
                names = list(content.get("class_names") or [])
                multilabel = confusion_counts.is_multilabel(content)
        result[run] = RunIndex(run, splits, names, {}, multilabel)
    for run, tags in keras_scalars.items():
        parent = keras_parent(run)
        if parent is None or not any(t.startswith(KERAS_EPOCH_PREFIX) for t in tags):
            continue
        name, split = parent
        index = result.setdefault(name, RunIndex(name, [], [], {}))
        index.keras_subruns[split] = run
    return result


def _history_tags(index):
    """The metricsdiag tags `Reader.history` reads."""
    tags = [schema.RUN_INFO_TAG, schema.OVERLAP_TAG, schema.EVENTS_TAG, schema.LOGS_TAG]
    for split in index.splits or schema.SPLITS:
        tags.extend(schema.split_tag(split, kind) for kind in schema.PER_CLASS_KINDS)
        tags.append(schema.split_tag(split, schema.KIND_CALIBRATION))
        tags.append(schema.split_tag(split, schema.KIND_EXACT_MATCH))
    return tags


class Reader:
    """Reads training runs from ``provider`` for one request (``ctx``) and experiment."""

    def __init__(self, provider, ctx=None, experiment_id="", cache=None):
        tensor_guard.install()
        self._restarts = {}  # (run, tag) -> restart of the series read (`_latest_training`)
        self._provider = provider
        self._ctx = ctx if ctx is not None else tb_context.RequestContext()
        self._eid = experiment_id
        self._cache = cache  # a `cache.SeriesCache` shared across requests, or None

    def _listing(self, list_series, plugin_name, runs=None, tags=None):
        """The provider's listing ``{run: {tag: TimeSeries}}`` (``list_series`` is
        ``list_tensors`` or ``list_scalars``), limited to ``runs`` and ``tags`` when given.

        With a cache, one recent listing of the whole experiment answers every request for a
        moment (see `cache.LISTING_MAX_AGE_S`) and is filtered here.
        """
        if self._cache is None:
            run_tag_filter = None
            if runs is not None or tags is not None:
                run_tag_filter = provider_lib.RunTagFilter(runs=runs, tags=tags)
            return list_series(
                self._ctx,
                experiment_id=self._eid,
                plugin_name=plugin_name,
                run_tag_filter=run_tag_filter,
            )
        listing = self._cache.listing(
            self._listing_key(list_series, plugin_name),
            lambda: list_series(self._ctx, experiment_id=self._eid, plugin_name=plugin_name),
        )
        if runs is not None:  # looked up, not scanned: a request for one run of thousands
            listing = {run: listing[run] for run in runs if run in listing}
        if tags is None:  # callers only read listings: the cached one is not copied
            return listing
        tags = set(tags)
        return {
            run: {tag: series for tag, series in run_tags.items() if tag in tags}
            for run, run_tags in listing.items()
        }

    def _listing_key(self, list_series, plugin_name):
        """Cache key of the whole experiment's listing by ``list_series`` for ``plugin_name``."""
        return (self._eid, list_series.__name__, plugin_name)

    def _refresh_listings(self, kinds):
        """Fetch at once the listings of ``kinds`` (``(list_series, plugin_name)`` pairs) that
        the cache holds no fresh copy of, so that a request needing several waits once.
        """
        if self._cache is None:
            return
        expired = [
            functools.partial(self._listing, list_series, plugin_name)
            for list_series, plugin_name in kinds
            if self._cache.fresh_listing(self._listing_key(list_series, plugin_name)) is None
        ]
        _concurrently(expired)

    def _read_many(self, reads):
        """``[{run: {tag: points}}]``: the points of the series listed in each `_SeriesRead`,
        or, for a series holding a tensor that `tensor_guard` refused, a `schema.FormatError`
        (kept in the cache like points, so the series is not read again until it changes).
        Of a series written by several trainings, only the latest training's points are given
        (`_latest_training`); where it restarted is kept for `restart_of`.

        Series found in the cache under their current listing are not read again. The rest are
        read with one provider call per `_SeriesRead`, the calls made at once (`_concurrently`).
        """
        results, pending, calls = [], [], []
        for read in reads:
            result, missing = {}, []
            for run, tags in read.listing.items():
                for tag, series in tags.items():
                    key = cache_lib.series_key(self._eid, run, tag, series, read.downsample)
                    points = self._cache.get(key) if self._cache is not None else None
                    if points is None:
                        missing.append((run, tag, key))
                    else:
                        result.setdefault(run, {})[tag] = self._latest(run, tag, points)
            results.append(result)
            if missing:
                pending.append((result, missing))
                calls.append(
                    functools.partial(
                        _checked_read,
                        read.read,
                        self._ctx,
                        experiment_id=self._eid,
                        plugin_name=read.plugin_name,
                        downsample=read.downsample or READ_ALL,
                        run_tag_filter=provider_lib.RunTagFilter(
                            runs=sorted({run for run, _, _ in missing}),
                            tags=sorted({tag for _, tag, _ in missing}),
                        ),
                    )
                )
        for (result, missing), data in zip(pending, _concurrently(calls)):
            for run, tag, key in missing:
                points = data.get(run, {}).get(tag, [])
                if self._cache is not None:
                    self._cache.put(key, points)
                result.setdefault(run, {})[tag] = self._latest(run, tag, points)
        return results

    def _latest(self, run, tag, points):
        """The latest training's ``points`` of a series, its restart kept (`_latest_training`)."""
        if isinstance(points, schema.FormatError):
            return points
        points, restart = _latest_training(points)
        if restart is not None:
            self._restarts[(run, tag)] = restart
        return points

    def restart_of(self, run):
        """``(trainings, {"step", "previous_last_step"})`` of the series of ``run`` read so far
        that restarted most often, or ``(1, None)``.
        """
        found = [restart for (name, _), restart in self._restarts.items() if name == run]
        if not found:
            return 1, None
        trainings, step, previous = max(found)
        return trainings, {"step": step, "previous_last_step": previous}

    # -- listing ------------------------------------------------------------------------

    def list_runs(self):
        """``{run: RunIndex}`` of every training run, from metadata only."""
        self._refresh_listings(
            [
                (self._provider.list_tensors, schema.PLUGIN_NAME),
                (self._provider.list_scalars, "scalars"),
            ]
        )
        return _run_indexes(
            self._listing(self._provider.list_tensors, schema.PLUGIN_NAME),
            self._listing(self._provider.list_scalars, "scalars"),
        )

    def run_index(self, run):
        """The `RunIndex` of ``run``, from the listings of that run and its Keras sub-runs.

        Also refreshes the listing of the curves' scalars with the others: the reads of a run
        that follow (`history`, `history_key`) need it.
        """
        self._refresh_listings(
            [
                (self._provider.list_tensors, schema.PLUGIN_NAME),
                (self._provider.list_scalars, "scalars"),
                (self._provider.list_scalars, schema.PLUGIN_NAME),
            ]
        )
        index = _run_indexes(
            self._listing(self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run]),
            self._listing(
                self._provider.list_scalars,
                "scalars",
                runs=[_keras_subrun(run, split) for split in KERAS_SUBRUNS],
            ),
        ).get(run)
        if index is None:
            raise errors.NotFoundError("no metricsdiag run named %r" % (run,))
        return index

    # -- reading tensors ----------------------------------------------------------------

    def _read(self, run, tags):
        """``{tag: (content dict, [TensorDatum])}`` for the tags of ``run`` that exist."""
        listing = self._listing(
            self._provider.list_tensors, schema.PLUGIN_NAME, runs=[run], tags=list(tags)
        ).get(run, {})
        if not listing:
            return {}
        [data] = self._read_many(
            [_SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: listing})]
        )
        data = data.get(run, {})
        return {
            tag: (metadata.parse_plugin_content(series.plugin_content), data.get(tag, []))
            for tag, series in listing.items()
        }

    def steps_by_run(self, indexes, chunk=RUNS_PER_READ):
        """``{run: (steps, trainings) or FormatError}``: the ascending steps at which each
        run's first split with counts has a confusion matrix in its latest training, each matrix
        checked (`_checked_steps`), and the number of trainings written into the run.

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
            listing = self._listing(
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
            [data] = self._read_many(
                [
                    _SeriesRead(
                        self._provider.read_tensors,
                        schema.PLUGIN_NAME,
                        {run: {tag: series} for run, (tag, series, _) in unread.items()},
                    )
                ]
            )
            for run, (tag, series, key) in unread.items():
                try:
                    content = metadata.parse_plugin_content(series.plugin_content)
                    steps = _checked_steps(content, data.get(run, {}).get(tag, []))
                    trainings = self._restarts.get((run, tag), (1,))[0]
                    # The number of trainings rides in the last element: one array kept.
                    kept = np.asarray(steps + [trainings], np.int64)
                except schema.FormatError as error:
                    kept = schema.FormatError(str(error))  # kept without its traceback
                if self._cache is not None:
                    self._cache.put_derived(key, kept, _kept_steps_size(kept))
                result[run] = _steps_of(kept)
        return result

    def evaluation(self, run, split, step=None, with_pr=True):
        """The `SplitEvaluation` of ``split`` at ``step`` (default: the latest step).

        ``with_pr=False`` reads the confusion matrices alone, without the threshold counts (by
        far the largest series) and AP, when only the matrix is needed.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          schema.FormatError: the stored data is inconsistent or of an unknown version.
        """
        kinds = [schema.KIND_CONFUSION, schema.KIND_EXACT_MATCH]
        if with_pr:
            kinds += [schema.KIND_THRESHOLD_COUNTS, schema.KIND_AVERAGE_PRECISION]
        found = self._read(run, [schema.split_tag(split, kind) for kind in kinds])
        if schema.split_tag(split, schema.KIND_CONFUSION) not in found:
            self.run_index(run)  # raises NotFoundError for an unknown run
            raise errors.NotFoundError("run %r has no %r data" % (run, split))
        return _evaluation(run, split, step, found, self._counts_of)

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

    def calibration(self, run, split, step=None):
        """``(step, bins)`` of a split's calibration bins at ``step`` (default: the latest).

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          schema.FormatError: the stored bins are malformed.
        """
        tag = schema.split_tag(split, schema.KIND_CALIBRATION)
        found = self._read(run, [tag])
        if tag not in found or not found[tag][1]:
            self.run_index(run)  # raises NotFoundError for an unknown run
            raise errors.NotFoundError("run %r has no %r calibration data" % (run, split))
        data = found[tag][1]
        if step is None:
            step = max(datum.step for datum in data)
        datum = _at_step(data, step)
        if datum is None:
            raise errors.NotFoundError(
                "run %r has no %r calibration data at step %d" % (run, split, step)
            )
        return step, histograms.calibration_bins_of(datum.numpy)

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
            tensors = self._listing(
                self._provider.list_tensors,
                schema.PLUGIN_NAME,
                runs=[run],
                tags=_history_tags(index),
            ).get(run, {})
            try:
                contents = {
                    tag: metadata.parse_plugin_content(series.plugin_content)
                    for tag, series in tensors.items()
                }
            except schema.FormatError as error:
                history.problems.append(str(error))
                tensors, with_metricsdiag = {}, False
        curves = _SeriesRead(self._provider.read_scalars, schema.PLUGIN_NAME, {})
        if schema.LOGS_TAG not in tensors:
            curves = self._metricsdiag_curves(run) if with_metricsdiag else curves
            if not curves.listing:
                curves = self._keras_curves(index)
        whole = {tag: s for tag, s in tensors.items() if contents[tag].get("kind") in _WHOLE_KINDS}
        latest = {tag: s for tag, s in tensors.items() if tag not in whole}
        whole_data, latest_data, curve_data = self._read_many(
            [
                _SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: whole}),
                _SeriesRead(self._provider.read_tensors, schema.PLUGIN_NAME, {run: latest}, LATEST),
                curves,
            ]
        )
        data = {**whole_data.get(run, {}), **latest_data.get(run, {})}
        found = {tag: (contents[tag], data.get(tag, [])) for tag in tensors}
        if curves.listing:
            history.curves, unreadable = _curves(curve_data, curves.key_of)
            history.problems.extend(unreadable)
        self._fill_history(run, found, history)
        history.trainings, history.restart = self.restart_of(run)
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
        for list_series, plugin_name, runs in (
            (self._provider.list_tensors, schema.PLUGIN_NAME, [run]),
            (self._provider.list_scalars, schema.PLUGIN_NAME, [run]),
            (self._provider.list_scalars, "scalars", sorted(index.keras_subruns.values())),
        ):
            for listed_run, tags in sorted(
                self._listing(list_series, plugin_name, runs=runs).items()
            ):
                key.extend(
                    cache_lib.series_key(self._eid, listed_run, tag, series)
                    for tag, series in sorted(tags.items())
                )
        return tuple(key)

    def _fill_history(self, run, found, history):
        """Fill ``history`` from ``found`` (``{tag: (content, points)}``): only the latest
        point of the kinds outside `_WHOLE_KINDS`.
        """
        for tag, (content, data) in found.items():
            if not data:
                continue
            kind, split = content.get("kind"), content.get("split")
            try:
                data = _points(data)
                if kind == schema.KIND_RUN_INFO:
                    history.info = stored_json.json_of(data[-1])
                elif kind == schema.KIND_OVERLAP:
                    history.overlap = stored_json.json_of(data[-1])
                elif kind == schema.KIND_EVENTS:
                    for datum in data:
                        history.events.extend(
                            dict(event, step=datum.step)
                            for event in stored_json.json_of(datum)
                            if isinstance(event, dict)
                        )
                elif kind == schema.KIND_LOGS:
                    history.curves, skipped = _logs_curves(data)
                    history.problems.extend(skipped)
                elif kind == schema.KIND_LABEL_DISTRIBUTION:
                    history.label_distribution[split] = histograms.label_distribution(data[-1])
                elif kind == schema.KIND_CONFUSION:
                    history.confusions[split] = confusion_counts.decision_totals(content, data)
                    history.multilabel = history.multilabel or confusion_counts.is_multilabel(
                        content
                    )
                elif kind == schema.KIND_CALIBRATION:
                    history.calibration[split] = _calibration_series(data, history.problems)
            except schema.FormatError as error:
                history.problems.append("%s: %s" % (tag, error))
        for split in list(history.confusions):
            try:
                history.latest[split] = self._latest_evaluation(run, split, found)
                if history.latest[split].counts_problem is not None:
                    history.problems.append(
                        "%s: %s" % (split, history.latest[split].counts_problem)
                    )
            except (schema.FormatError, errors.NotFoundError) as error:
                history.problems.append("%s: %s" % (split, error))

    def _latest_evaluation(self, run, split, found):
        """`evaluation` of ``split`` at its latest step from the history's reads, which hold only
        the latest point of the threshold counts and AP; those are read whole when that point
        is not at the latest step of the confusion matrices (a step written out of order).
        """
        tags = [schema.split_tag(split, kind) for kind in _EVALUATION_KINDS]
        if tags[0] not in found:
            return self.evaluation(run, split)
        evaluation = _evaluation(
            run, split, None, {tag: found[tag] for tag in tags if tag in found}, self._counts_of
        )
        for tag in tags[1:]:
            points = found.get(tag, (None, []))[1]
            if isinstance(points, list) and points and points[-1].step != evaluation.step:
                return self.evaluation(run, split)
        return evaluation

    # -- curves -------------------------------------------------------------------------

    def _metricsdiag_curves(self, run):
        """The `_SeriesRead` of the Keras logs the callback wrote beside the counts."""
        prefix = schema.scalar_tag("")
        return self._curve_read(
            schema.PLUGIN_NAME, [run], prefix, lambda _, tag: tag[len(prefix) :]
        )

    def _keras_curves(self, index):
        """The `_SeriesRead` of the epoch scalars of ``keras.callbacks.TensorBoard``'s sub-runs."""
        key_prefix = {subrun: KERAS_SUBRUNS[split] for split, subrun in index.keras_subruns.items()}
        return self._curve_read(
            "scalars",
            sorted(key_prefix),
            KERAS_EPOCH_PREFIX,
            lambda run, tag: key_prefix[run] + tag[len(KERAS_EPOCH_PREFIX) :],
        )

    def _curve_read(self, plugin_name, runs, prefix, key_of):
        """A `_SeriesRead` of the scalars of ``runs`` whose tag starts with ``prefix`` and maps
        to a (non-empty) Keras log key ``key_of(run, tag)``.
        """
        listing = {}
        if runs:
            for run, tags in self._listing(
                self._provider.list_scalars, plugin_name, runs=runs
            ).items():
                wanted = {
                    tag: series
                    for tag, series in tags.items()
                    if tag.startswith(prefix) and key_of(run, tag)
                }
                if wanted:
                    listing[run] = wanted
        return _SeriesRead(self._provider.read_scalars, plugin_name, listing, key_of=key_of)


def _concurrently(calls):
    """The results of ``calls`` (functions of no argument), in order, made at once.

    Why: every call to TensorBoard's Rust data server (``--load_fast``) waits for a delayed
    acknowledgement, whatever its size, unless it is tiny (docs/benchmarks.md, latency): the server leaves Nagle's algorithm on for its
    sockets, so the body of an answer waits for the client's delayed acknowledgement of the
    headers sent just before. Calls in flight together wait for the same acknowledgement.
    """
    if len(calls) < 2:
        return [call() for call in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def _checked_read(read, *args, **kwargs):
    """``read(*args, **kwargs)`` (a provider's ``read_tensors`` or ``read_scalars``) with every
    tensor checked before it is built (`tensor_guard`); a series holding a refused tensor
    becomes the `schema.FormatError` saying why.
    """
    with tensor_guard.checking():
        data = read(*args, **kwargs)
    for tags in data.values():
        for tag, points in tags.items():
            for point in points:
                # A tensor datum holds the placeholder array; a scalar datum its one item.
                refused = tensor_guard.refusal(getattr(point, "numpy", None))
                if isinstance(getattr(point, "value", None), tensor_guard.Refusal):
                    refused = point.value
                if refused is not None:
                    tags[tag] = schema.FormatError("%s at step %d" % (refused.reason, point.step))
                    break
    return data


def _points(points):
    """``points``, or raise the `schema.FormatError` a refused series is read as."""
    if isinstance(points, schema.FormatError):
        raise points
    return points


def _evaluation(run, split, step, found, counts_of):
    """The `SplitEvaluation` of ``split`` at ``step`` (None: the latest) from ``found``,
    ``{tag: (content, points)}`` holding at least the split's confusion matrices;
    ``counts_of(run, tag, content, datum, num_classes)`` decodes a point of threshold counts.
    """
    content, data = found[schema.split_tag(split, schema.KIND_CONFUSION)]
    data = _points(data)
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
            datum = _at_step(_points(counts_data), step)
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
        datum = None if isinstance(ap_data, schema.FormatError) else _at_step(ap_data, step)
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
    datum = _at_step(_points(found[tag][1]), step) if tag in found else None
    if datum is None:
        raise errors.NotFoundError(
            "run %r has multi-label %r counts without exact-match counts at step %d"
            % (run, split, step)
        )
    return confusion_counts.exact_matches(datum.numpy, rows)


def _calibration_series(data, problems):
    """``{step: bins}`` of a calibration series; a malformed point is skipped into ``problems``."""
    series = {}
    for datum in data:
        try:
            series[datum.step] = histograms.calibration_bins_of(datum.numpy)
        except schema.FormatError as error:
            problems.append("calibration at step %d: %s" % (datum.step, error))
    return series


def _curves(data, key_of):
    """``({key: (steps, values)}, problems)`` of scalar points ``{run: {tag: points}}``, keyed
    by ``key_of(run, tag)`` (`_curve`); a refused series is left out and said in ``problems``.
    """
    curves, problems = {}, []
    for run, tags in data.items():
        for tag, points in tags.items():
            if isinstance(points, schema.FormatError):
                problems.append("%s: %s" % (tag, points))
                continue
            curves[key_of(run, tag)] = _curve(
                np.fromiter((point.step for point in points), np.int64, len(points)),
                np.fromiter((point.value for point in points), np.float64, len(points)),
            )
    return curves, problems


def _logs_curves(data):
    """``({key: (steps, values)}, problems)`` of a logs series (`schema.KIND_LOGS`: one JSON
    object of Keras's logs per point), each key over the points that hold it (`_curve`). A
    point that cannot be read is skipped, and said in ``problems``.
    """
    columns, problems = {}, []
    for datum in data:
        try:
            logs = stored_json.decode_logs(stored_json.text_of(datum))
        except schema.FormatError as error:
            problems.append("logs at step %d: %s" % (datum.step, error))
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


def _steps_of(kept):
    """``(steps, trainings)`` or the error that `Reader.steps_by_run` keeps as ``kept``: an
    int64 array of the steps and then the trainings (a fifth of the memory of a list of Python
    ints), or a `schema.FormatError`.
    """
    if not isinstance(kept, np.ndarray):
        return kept
    return kept[:-1].tolist(), int(kept[-1])


def _latest_training(points):
    """``(points, restart)``: the points of a series from where the latest training began,
    and ``(trainings, first step, last step before)`` of that restart, or None.

    A training written into a log_dir that already holds one starts its steps again: a point
    whose step is lower than the one before it and at most the first step of the training
    so far begins a new training. A step lower than the one before but above that first step
    is a point written out of order (or rewritten), not a restart.
    """
    if len(points) < 2:
        return points, None
    starts, first = [], points[0].step
    for index in range(1, len(points)):
        step = points[index].step
        if step < points[index - 1].step and step <= first:
            starts.append(index)
            first = step
    if not starts:
        return points, None
    last = starts[-1]
    return points[last:], (len(starts) + 1, int(points[last].step), int(points[last - 1].step))


def _kept_steps_size(kept):
    """Approximate bytes of what `Reader.steps_by_run` keeps, with its key (a few hundred)."""
    return 400 + (kept.nbytes if isinstance(kept, np.ndarray) else 600)


def _checked_steps(content, data):
    """Ascending distinct steps of confusion data, each checked
    (`confusion_counts.decision_steps`).
    """
    return confusion_counts.decision_steps(content, _points(data))


def _at_step(data, step):
    for datum in reversed(data):
        if datum.step == step:
            return datum
    return None

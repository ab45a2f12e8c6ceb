"""Reads metricsdiag data through a TensorBoard data provider. No TensorFlow, no HTTP.

The backend reads through the provider TensorBoard hands it (the Rust data server or the
Python loader); the command line builds a provider over the event files itself
(`provider_for_logdir`). Both therefore see the same data through the same code.

A *training run* is what one `model.fit` wrote: the metricsdiag run at ``log_dir``, plus the
``log_dir/train`` and ``log_dir/validation`` runs that ``keras.callbacks.TensorBoard`` writes
beside it. A logdir written by Keras's callback alone still yields training runs (with
curves, but no counts).
"""

import dataclasses
import json

import numpy as np
from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider as provider_lib

from tb_metricsdiag import cache as cache_lib
from tb_metricsdiag import metadata

# Large enough that the provider returns every stored point: the plugin never downsamples.
READ_ALL = 1 << 30

# Runs read per provider call by `Reader.steps_by_run`.
RUNS_PER_READ = 64

# Keras TensorBoard's sub-runs, and the prefix its validation metrics get in `logs`.
KERAS_SUBRUNS = {"train": "", "validation": "val_"}
KERAS_EPOCH_PREFIX = "epoch_"


@dataclasses.dataclass
class RunIndex:
    """What a training run holds, from tag metadata alone (no tensor data read)."""

    run: str
    splits: list  # splits with counts, "validation" first
    class_names: list
    has_counts: bool
    keras_subruns: dict  # split -> TensorBoard run name of keras.callbacks.TensorBoard's data


@dataclasses.dataclass
class SplitEvaluation:
    """One split at one step: the confusion matrix and, where stored, threshold counts and AP."""

    split: str
    step: int
    class_names: list
    confusion: np.ndarray  # [C, C] int64; row = actual, column = predicted
    thresholds: np.ndarray = None  # [T] ascending
    tp: np.ndarray = None  # [C, T] int64
    fp: np.ndarray = None  # [C, T] int64
    average_precision: np.ndarray = None  # [C] float64, NaN where undefined
    counts_problem: str = None  # why stored threshold counts could not be read, if they were not


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
    confusions: dict = dataclasses.field(default_factory=dict)  # split -> {step: [C, C]}
    latest: dict = dataclasses.field(default_factory=dict)  # split -> SplitEvaluation
    events: list = dataclasses.field(default_factory=list)  # recorded problems, with "step"
    problems: list = dataclasses.field(default_factory=list)  # data that could not be read


def provider_for_logdir(logdir):
    """A data provider over the event files under ``logdir``, keeping every point."""
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={metadata.PLUGIN_NAME: 0, "scalars": 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, logdir)


def _keras_parent(run):
    """(parent run, split) for a run named like Keras's sub-runs, else None."""
    head, _, tail = run.rpartition("/")
    if tail in KERAS_SUBRUNS:
        return head or ".", tail
    return None


class Reader:
    """Reads training runs from ``provider`` for one request (``ctx``) and experiment."""

    def __init__(self, provider, ctx=None, experiment_id="", cache=None):
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
                self._ctx, experiment_id=self._eid, plugin_name=plugin_name,
                run_tag_filter=run_tag_filter,
            )
        listing = self._cache.listing(
            (self._eid, list_series.__name__, plugin_name),
            lambda: list_series(self._ctx, experiment_id=self._eid, plugin_name=plugin_name),
        )
        runs = None if runs is None else set(runs)
        tags = None if tags is None else set(tags)
        return {
            run: {tag: series for tag, series in run_tags.items() if tags is None or tag in tags}
            for run, run_tags in listing.items()
            if runs is None or run in runs
        }

    def _read_listed(self, read, plugin_name, listing):
        """``{run: {tag: points}}`` of the series in ``listing`` (``{run: {tag: TimeSeries}}``).

        Series found in the cache under their current listing are not read again; the rest
        are read in one provider call (``read`` is ``read_tensors`` or ``read_scalars``).
        """
        result, missing = {}, []
        for run, tags in listing.items():
            for tag, series in tags.items():
                key = cache_lib.series_key(self._eid, run, tag, series)
                points = self._cache.get(key) if self._cache is not None else None
                if points is None:
                    missing.append((run, tag, key))
                else:
                    result.setdefault(run, {})[tag] = points
        if missing:
            data = read(
                self._ctx,
                experiment_id=self._eid,
                plugin_name=plugin_name,
                downsample=READ_ALL,
                run_tag_filter=provider_lib.RunTagFilter(
                    runs=sorted({run for run, _, _ in missing}),
                    tags=sorted({tag for _, tag, _ in missing}),
                ),
            )
            for run, tag, key in missing:
                points = data.get(run, {}).get(tag, [])
                if self._cache is not None:
                    self._cache.put(key, points)
                result.setdefault(run, {})[tag] = points
        return result

    # -- listing ------------------------------------------------------------------------

    def list_runs(self):
        """``{run: RunIndex}`` of every training run, from metadata only."""
        tensors = self._listing(self._provider.list_tensors, metadata.PLUGIN_NAME)
        result = {}
        for run, tags in tensors.items():
            splits, names = [], []
            for split in metadata.SPLITS:
                series = tags.get(metadata.split_tag(split, metadata.KIND_CONFUSION))
                if series is None:
                    continue
                splits.append(split)
                if not names:
                    names = self._class_names(series.plugin_content)
            result[run] = RunIndex(run, splits, names, bool(splits), {})
        keras_scalars = self._listing(self._provider.list_scalars, "scalars")
        for run, tags in keras_scalars.items():
            parent = _keras_parent(run)
            if parent is None or not any(t.startswith(KERAS_EPOCH_PREFIX) for t in tags):
                continue
            name, split = parent
            index = result.setdefault(name, RunIndex(name, [], [], False, {}))
            index.keras_subruns[split] = run
        return result

    def run_index(self, run):
        index = self.list_runs().get(run)
        if index is None:
            raise errors.NotFoundError("no metricsdiag run named %r" % (run,))
        return index

    @staticmethod
    def _class_names(plugin_content):
        try:
            return list(metadata.parse_plugin_content(plugin_content).get("class_names") or [])
        except metadata.FormatError:
            return []

    # -- reading tensors ----------------------------------------------------------------

    def _read(self, run, tags):
        """``{tag: (content dict, [TensorDatum])}`` for the tags of ``run`` that exist."""
        listing = self._listing(
            self._provider.list_tensors, metadata.PLUGIN_NAME, runs=[run], tags=list(tags)
        ).get(run, {})
        if not listing:
            return {}
        data = self._read_listed(
            self._provider.read_tensors, metadata.PLUGIN_NAME, {run: listing}
        ).get(run, {})
        return {
            tag: (metadata.parse_plugin_content(series.plugin_content), data.get(tag, []))
            for tag, series in listing.items()
        }

    def steps(self, run, split):
        """Ascending steps at which ``split`` of ``run`` has a confusion matrix.

        Raises:
          metadata.FormatError: a stored matrix is not a square integer matrix.
        """
        tag = metadata.split_tag(split, metadata.KIND_CONFUSION)
        _, data = self._read(run, [tag]).get(tag, (None, []))
        return _checked_steps(data)

    def steps_by_run(self, indexes, chunk=RUNS_PER_READ):
        """``{run: steps or FormatError}``: `steps` of each run's first split with counts.

        The runs are read ``chunk`` at a time, two provider calls per chunk rather than two
        per run: the Rust data server answers each call over gRPC, so ``/runs`` stays fast
        over thousands of runs, and the chunks bound what one request holds in memory.
        """
        wanted = {
            index.run: metadata.split_tag(index.splits[0], metadata.KIND_CONFUSION)
            for index in indexes
            if index.splits
        }
        runs, result = sorted(wanted), {}
        for start in range(0, len(runs), chunk):
            batch = runs[start:start + chunk]
            listing = self._listing(
                self._provider.list_tensors,
                metadata.PLUGIN_NAME,
                runs=batch,
                tags=sorted({wanted[run] for run in batch}),
            )
            wanted_listing = {
                run: {wanted[run]: tags[wanted[run]]}
                for run, tags in listing.items()
                if wanted.get(run) in tags
            }
            data = self._read_listed(
                self._provider.read_tensors, metadata.PLUGIN_NAME, wanted_listing
            )
            for run in batch:
                tag = wanted[run]
                try:
                    series = listing.get(run, {}).get(tag)
                    if series is not None:
                        metadata.parse_plugin_content(series.plugin_content)
                    result[run] = _checked_steps(data.get(run, {}).get(tag, []))
                except metadata.FormatError as error:
                    result[run] = error
        return result

    def evaluation(self, run, split, step=None, threshold_counts=True):
        """The `SplitEvaluation` of ``split`` at ``step`` (default: the latest step).

        ``threshold_counts=False`` skips the threshold counts, by far the largest series,
        when only the confusion matrix and AP are needed.

        Raises:
          tensorboard.errors.NotFoundError: no such run, split or step.
          metadata.FormatError: the stored data is inconsistent or of an unknown version.
        """
        kinds = [metadata.KIND_CONFUSION, metadata.KIND_AVERAGE_PRECISION]
        if threshold_counts:
            kinds.append(metadata.KIND_THRESHOLD_COUNTS)
        found = self._read(run, [metadata.split_tag(split, kind) for kind in kinds])
        confusion_tag = metadata.split_tag(split, metadata.KIND_CONFUSION)
        if confusion_tag not in found:
            if not self._read(run, [metadata.RUN_INFO_TAG]) and run not in self.list_runs():
                raise errors.NotFoundError("no metricsdiag run named %r" % (run,))
            raise errors.NotFoundError("run %r has no %r data" % (run, split))
        content, data = found[confusion_tag]
        by_step = {datum.step: datum for datum in data}
        if not by_step:
            raise errors.NotFoundError("run %r has no %r data yet" % (run, split))
        if step is None:
            step = max(by_step)
        if step not in by_step:
            raise errors.NotFoundError("run %r has no %r data at step %d" % (run, split, step))
        confusion = _matrix(by_step[step].numpy, "confusion matrix")
        num_classes = confusion.shape[0]
        names = _names(content, num_classes)
        result = SplitEvaluation(split, step, names, confusion)
        counts_tag = metadata.split_tag(split, metadata.KIND_THRESHOLD_COUNTS)
        if counts_tag in found:
            counts_content, counts_data = found[counts_tag]
            datum = _at_step(counts_data, step)
            if datum is not None:
                # Unreadable counts leave the confusion matrix usable; /pr reports the problem.
                try:
                    result.thresholds, result.tp, result.fp = _threshold_counts(
                        counts_content, datum, num_classes
                    )
                except metadata.FormatError as error:
                    result.counts_problem = str(error)
        ap_tag = metadata.split_tag(split, metadata.KIND_AVERAGE_PRECISION)
        if ap_tag in found:
            datum = _at_step(found[ap_tag][1], step)
            if datum is not None and np.asarray(datum.numpy).shape == (num_classes,):
                result.average_precision = np.asarray(datum.numpy, dtype=np.float64)
        return result

    # -- whole history, for the diagnostics ---------------------------------------------

    def history(self, run, index=None):
        """The `RunHistory` of one training run (counts, curves, run info, events)."""
        index = index or self.run_index(run)
        history = RunHistory(run=run, class_names=list(index.class_names))
        if index.has_counts or not index.keras_subruns:
            self._read_metricsdiag_history(run, index, history)
        if not history.curves:
            self._read_keras_curves(index, history)
        return history

    def _read_metricsdiag_history(self, run, index, history):
        tags = [metadata.RUN_INFO_TAG, metadata.OVERLAP_TAG, metadata.EVENTS_TAG]
        # Every per-split kind in this one read, the ones `evaluation` needs below included:
        # with a cache, that later call then costs the provider no second round trip.
        for split in index.splits or metadata.SPLITS:
            tags.extend(metadata.split_tag(split, kind) for kind in metadata.PER_CLASS_KINDS)
        try:
            found = self._read(run, tags)
        except metadata.FormatError as error:
            history.problems.append(str(error))
            return
        for tag, (content, data) in found.items():
            if not data:
                continue
            kind, split = content.get("kind"), content.get("split")
            try:
                if kind == metadata.KIND_RUN_INFO:
                    history.info = _json(data[-1])
                elif kind == metadata.KIND_OVERLAP:
                    history.overlap = _json(data[-1])
                elif kind == metadata.KIND_EVENTS:
                    for datum in data:
                        history.events.extend(
                            dict(event, step=datum.step) for event in _json(datum) if isinstance(event, dict)
                        )
                elif kind == metadata.KIND_LABEL_DISTRIBUTION:
                    history.label_distribution[split] = np.asarray(data[-1].numpy, dtype=np.int64)
                elif kind == metadata.KIND_CONFUSION:
                    history.confusions[split] = {
                        datum.step: _matrix(datum.numpy, "confusion matrix") for datum in data
                    }
            except metadata.FormatError as error:
                history.problems.append("%s: %s" % (tag, error))
        for split in list(history.confusions):
            try:
                history.latest[split] = self.evaluation(run, split)
                if history.latest[split].counts_problem is not None:
                    history.problems.append("%s: %s" % (split, history.latest[split].counts_problem))
            except (metadata.FormatError, errors.NotFoundError) as error:
                history.problems.append("%s: %s" % (split, error))
        history.curves = self._read_scalars(
            run, metadata.PLUGIN_NAME, lambda tag: tag[len(metadata.scalar_tag("")):]
            if tag.startswith(metadata.scalar_tag("")) else None
        )

    def _read_keras_curves(self, index, history):
        for split, subrun in index.keras_subruns.items():
            prefix = KERAS_SUBRUNS[split]
            history.curves.update(
                self._read_scalars(
                    subrun, "scalars", lambda tag: prefix + tag[len(KERAS_EPOCH_PREFIX):]
                    if tag.startswith(KERAS_EPOCH_PREFIX) else None
                )
            )

    def _read_scalars(self, run, plugin_name, key_of_tag):
        """``{key: (steps, values)}`` of the scalars of ``run`` whose tag maps to a key."""
        listing = self._listing(self._provider.list_scalars, plugin_name, runs=[run]).get(run, {})
        wanted = {tag: series for tag, series in listing.items() if key_of_tag(tag)}
        if not wanted:
            return {}
        data = self._read_listed(
            self._provider.read_scalars, plugin_name, {run: wanted}
        ).get(run, {})
        curves = {}
        for tag, points in data.items():
            latest = {point.step: point.value for point in points}  # a re-run step: last wins
            steps = sorted(latest)
            curves[key_of_tag(tag)] = (
                np.asarray(steps, dtype=np.int64),
                np.asarray([latest[s] for s in steps], dtype=np.float64),
            )
        return curves


def _threshold_counts(content, datum, num_classes):
    """(thresholds [T], tp [C, T], fp [C, T]) of one threshold-counts datum."""
    values = np.asarray(datum.numpy)
    if values.ndim != 3 or values.shape[:2] != (num_classes, 2):
        raise metadata.FormatError(
            "threshold counts of shape %s do not fit %d classes" % (values.shape, num_classes)
        )
    if not np.issubdtype(values.dtype, np.integer):
        raise metadata.FormatError("threshold counts hold %s values, expected integers" % values.dtype)
    thresholds = metadata.decode_thresholds(content.get("thresholds"), expected_size=values.shape[2])
    return thresholds, values[:, 0, :].astype(np.int64), values[:, 1, :].astype(np.int64)


def _checked_steps(data):
    """Ascending distinct steps of confusion data, each checked to be a valid matrix."""
    for datum in data:
        _matrix(datum.numpy, "confusion matrix at step %d" % datum.step)
    return sorted({datum.step for datum in data})


def _at_step(data, step):
    for datum in reversed(data):
        if datum.step == step:
            return datum
    return None


def _matrix(value, what):
    matrix = np.asarray(value)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise metadata.FormatError("%s has shape %s, expected [C, C]" % (what, matrix.shape))
    if not np.issubdtype(matrix.dtype, np.integer):
        raise metadata.FormatError("%s holds %s values, expected integers" % (what, matrix.dtype))
    return matrix.astype(np.int64)


def _names(content, num_classes):
    names = content.get("class_names")
    if isinstance(names, list) and len(names) == num_classes:
        return [str(name) for name in names]
    return [str(i) for i in range(num_classes)]


def _json(datum):
    value = np.asarray(datum.numpy)
    raw = value.item() if value.shape == () else value.reshape(-1)[0]
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, ValueError) as error:
        raise metadata.FormatError("stored JSON is malformed: %s" % error)

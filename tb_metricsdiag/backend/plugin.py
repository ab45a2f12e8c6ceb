"""The TensorBoard plugin: HTTP routes under ``/data/plugin/metricsdiag``. No TensorFlow.

Each JSON route parses and checks its query parameters, reads through `reader.Reader` over the
data provider TensorBoard hands in (the Rust data server or the Python loader alike), and
answers with the document `views` builds, as strict JSON. Errors are JSON too,
``{"error": message}``:

- 400: a missing or malformed parameter (no ``run``, a non-integer ``step``, a ``split`` that
  is not a split name, a ``class`` out of range, ``min_recall`` / ``min_precision`` outside
  [0, 1], ``from`` / ``to`` of ``/crossings`` missing or outside [0, 1] (or a ``slice`` there),
  ``matrix`` other than ``full``, ``pairs`` outside [1, 1000], ``true`` / ``pred`` of
  ``/examples`` missing or outside the task, ``limit`` outside [1, 1000], two runs whose
  example ids cannot be matched, a ``slice`` that is not ``KEY=VALUE``, a ``key`` of
  ``/slices`` missing or not a group key);
- 404: an unknown run, split or step, a run written without example records (the message
  says how to record them), an unknown slice key or value (`reader.UnknownSlice`), or a route
  or static file that does not exist;
- 422: the run exists but its stored data cannot be read (malformed, or written by a newer
  tb-metricsdiag). Only that run is affected: ``/runs`` lists it with an ``error`` key.

Every request lists the run's series from the provider (a listing is reused for at most a
second); series whose listing has not changed since they were last read come from a bounded
cache (`cache.SeriesCache`), and so do the documents derived from them (the checked steps of
``/runs``, the findings of ``/diagnostics``), so the answers follow a training run as it
writes new epochs while scrubbing through epochs stays fast.
"""

import functools
import json
import re

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_metricsdiag import diagnostics
from tb_metricsdiag.backend import cache as cache_lib
from tb_metricsdiag.backend import (
    comparison_views,
    curve_views,
    example_views,
    overview,
    static_files,
    views,
)
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.core import examples as examples_lib
from tb_metricsdiag.format import schema

ROUTE_PREFIX = "/data/plugin/%s/" % schema.PLUGIN_NAME
TAB_NAME = "Metrics Diagnostics"
UNREADABLE_DATA = 422
JSON = "application/json"

# First elements of the cache keys of `/diagnostics` and `/slices` documents and `/overview`
# entries.
_DIAGNOSTICS, _SLICES, _OVERVIEW = "diagnostics", "slices_view", "overview"

# At most 18 digits: every such number fits an int64 step, and Python never has to convert a
# huge decimal string (which raises ValueError past 4,300 digits).
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class MetricsDiagLoader(base_plugin.TBLoader):
    """Loads `MetricsDiagPlugin`; makes TensorBoard keep every step of metricsdiag data."""

    def fix_flags(self, flags):
        """Keep all samples of the plugin unless the user chose ``--samples_per_plugin``.

        TensorBoard's default keeps 10 (Python loader) or 100 (Rust server) points per
        series of an unknown plugin, which would silently drop epochs.
        """
        samples_per_plugin = getattr(flags, "samples_per_plugin", None)
        if samples_per_plugin is None:
            samples_per_plugin = {}
            flags.samples_per_plugin = samples_per_plugin
        samples_per_plugin.setdefault(schema.PLUGIN_NAME, 0)

    def load(self, context):
        return MetricsDiagPlugin(context)


def _json_route(handler):
    """Wrap ``handler(self, request) -> dict`` into a WSGI app answering strict JSON."""

    @functools.wraps(handler)
    @wrappers.Request.application
    def route(self, request):
        try:
            body, code = handler(self, request), 200
        except errors.PublicError as error:
            body, code = {"error": str(error)}, error.http_code
        except schema.FormatError as error:
            body, code = {"error": "unreadable metricsdiag data: %s" % error}, UNREADABLE_DATA
        return http_util.Respond(request, json.dumps(body, allow_nan=False), JSON, code=code)

    return route


class MetricsDiagPlugin(base_plugin.TBPlugin):
    """Confusion matrices, PR trade-offs, curves and diagnoses of classifier training runs."""

    plugin_name = schema.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        self._series_cache = cache_lib.SeriesCache()
        self._static_root = static_files.frontend_dir()

    def get_plugin_apps(self):
        return {
            "/runs": self._serve_runs,
            "/confusion": self._serve_confusion,
            "/pr": self._serve_pr,
            "/curves": self._serve_curves,
            "/diagnostics": self._serve_diagnostics,
            "/compare": self._serve_compare,
            "/calibration": self._serve_calibration,
            "/trajectories": self._serve_trajectories,
            "/examples": self._serve_examples,
            "/flips": self._serve_flips,
            "/label_issues": self._serve_label_issues,
            "/crossings": self._serve_crossings,
            "/slices": self._serve_slices,
            "/overview": self._serve_overview,
            "/index.js": self._serve_static,
            "/*": self._serve_static,
        }

    def is_active(self):
        return False  # TensorBoard activates the tab from data_plugin_names()

    def data_plugin_names(self):
        return (schema.PLUGIN_NAME,)

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    def _reader(self, request):
        return reader_lib.Reader(
            self._data_provider,
            plugin_util.context(request.environ),
            plugin_util.experiment_id(request.environ),
            cache=self._series_cache,
        )

    @_json_route
    def _serve_runs(self, request):
        reader = self._reader(request)
        indexes = list(reader.list_runs().values())
        steps_by_run = reader.steps_by_run(indexes)
        entries = []
        for index in indexes:
            kept, error = steps_by_run.get(index.run, ([], 1)), None
            if isinstance(kept, schema.FormatError):
                kept, error = ([], 1), "unreadable metricsdiag data: %s" % kept
            steps, trainings = kept
            entries.append(views.run_entry(index, steps, error, trainings))
        return views.runs_view(entries)

    @_json_route
    def _serve_confusion(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        full_matrix = _full_matrix(request)
        pairs = _optional_int(request, "pairs")
        if pairs is not None and not 1 <= pairs <= views.MAX_PAIRS:
            raise errors.InvalidArgumentError(
                "pairs must be an integer in [1, %d], got %d" % (views.MAX_PAIRS, pairs)
            )
        evaluation = self._reader(request).evaluation(
            run, split, step, with_pr=False, slice=_slice(request)
        )
        return views.confusion_view(
            run,
            evaluation,
            full_matrix=full_matrix,
            pairs=views.DEFAULT_PAIRS if pairs is None else pairs,
        )

    @_json_route
    def _serve_pr(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        requested_class = _optional_int(request, "class")
        min_recall = _fraction(request, "min_recall")
        min_precision = _fraction(request, "min_precision")
        fn_cost, fp_cost = _cost(request, "fn_cost"), _cost(request, "fp_cost")
        if (fn_cost is None) != (fp_cost is None):
            raise errors.InvalidArgumentError("give both fn_cost and fp_cost, or neither")
        evaluation = self._reader(request).evaluation(run, split, step, slice=_slice(request))
        class_index = curve_views.pr_class(run, evaluation, requested_class)
        return curve_views.pr_view(
            run, evaluation, class_index, min_recall, min_precision, fn_cost, fp_cost
        )

    @_json_route
    def _serve_curves(self, request):
        run = _run(request)
        return curve_views.curves_view(run, self._reader(request).history(run))

    @_json_route
    def _serve_calibration(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        reader = self._reader(request)
        step, bins = reader.calibration(run, split, step, slice=_slice(request))
        binary = curve_views.binary_calibration(reader.run_index(run).task)
        return curve_views.calibration_view(run, split, step, bins, binary)

    @_json_route
    def _serve_compare(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        other_run, other_split, other_step = _other(request, run, split)
        full_matrix = _full_matrix(request)
        reader = self._reader(request)
        before = reader.evaluation(run, split, step, with_pr=True)
        after = reader.evaluation(other_run, other_split, other_step, with_pr=True)
        if before.multilabel != after.multilabel:
            raise errors.InvalidArgumentError(
                "%r is %s and %r %s: only evaluations of one task compare"
                % (run, before.task, other_run, after.task)
            )
        if before.num_classes != after.num_classes:
            raise errors.InvalidArgumentError(
                "%r has %d classes and %r %d: only evaluations of the same classes compare"
                % (run, before.num_classes, other_run, after.num_classes)
            )
        if before.multilabel:
            return comparison_views.multilabel_compare_view((run, before), (other_run, after))
        return comparison_views.compare_view((run, before), (other_run, after), full_matrix)

    @_json_route
    def _serve_trajectories(self, request):
        run, split = _run(request), _split(request)
        reader = self._reader(request)
        index = reader.run_index(run)
        if split not in index.splits:
            raise errors.NotFoundError("run %r has no %r data" % (run, split))
        return comparison_views.trajectories_view(run, reader.history(run, index), split)

    @_json_route
    def _serve_diagnostics(self, request):
        run = _run(request)
        reader = self._reader(request)
        index = reader.run_index(run)
        return self._diagnosis(reader, index, reader.history_key(run, index))

    def _diagnosis(self, reader, index, history_key, history=None):
        """The ``/diagnostics`` document of a run, kept under ``history_key`` (the listing of
        every series the history reads): recomputed (the rules over every epoch, after a read)
        only when one of them has changed. ``history``: the run's, when already read.
        """
        key = (_DIAGNOSTICS,) + history_key
        view = self._series_cache.get_derived(key)
        if view is None:
            history = history or reader.history(index.run, index)
            findings, not_run = diagnostics.evaluate(history)
            view = views.diagnostics_view(index.run, findings, not_run, history.trainings)
            self._series_cache.put_derived(key, view, _cached_size(view))
        return view

    @_json_route
    def _serve_overview(self, request):
        split = _split(request)
        reader = self._reader(request)
        indexes = reader.runs_with_counts().values()
        return overview.overview_view(
            [
                self._overview_entry(reader, index, split)
                for index in indexes
                if split in index.splits
            ]
        )

    def _overview_entry(self, reader, index, split):
        """A run's `overview.run_entry`, kept under its history's key; a run whose data cannot
        be read gets `overview.error_entry` instead, and the others are unaffected.
        """
        try:
            history_key = reader.history_key(index.run, index)
            key = (_OVERVIEW, split) + history_key
            entry = self._series_cache.get_derived(key)
            if entry is None:
                entry = self._read_overview_entry(reader, index, split, history_key)
                self._series_cache.put_derived(key, entry, _cached_size(entry))
            return entry
        except (schema.FormatError, errors.PublicError) as error:
            return overview.error_entry(index.run, split, "unreadable metricsdiag data: %s" % error)

    def _read_overview_entry(self, reader, index, split, history_key):
        history = reader.history(index.run, index)
        step = overview.best_step(history, split)
        if step is None:
            return overview.error_entry(
                index.run,
                split,
                "unreadable metricsdiag data: %s"
                % (
                    "; ".join(damage.describe() for damage in history.problems)
                    or "no readable %r counts" % split
                ),
            )
        exact_matches = None
        if history.multilabel:
            exact_matches = reader.evaluation(index.run, split, step, with_pr=False).exact_matches
        findings = self._diagnosis(reader, index, history_key, history)["findings"]
        return overview.run_entry(index, history, split, step, findings, exact_matches)

    @_json_route
    def _serve_examples(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        true, pred = _required_int(request, "true"), _required_int(request, "pred")
        label = _optional_int(request, "class")
        chosen = _slice(request)
        reader = self._reader(request)
        group_problems = []
        if chosen is None:
            records = reader.examples(run, split, step)
            try:
                groups_at = reader.example_groups(run, split, records.step)
            except schema.FormatError as error:  # the examples without their group values
                groups_at, group_problems = None, [str(error)]
        else:
            records, groups_at = reader.slice_examples(run, split, step, chosen)
        bound = 2 if records.multilabel else records.examples.num_classes
        for name, value in (("true", true), ("pred", pred)):
            if not 0 <= value < bound:
                raise errors.InvalidArgumentError(
                    "%s must be %s in [0, %d), got %d"
                    % (name, "a value" if records.multilabel else "a class index", bound, value)
                )
        if records.multilabel and label is None:
            raise errors.InvalidArgumentError(
                "the 'class' parameter (a label index) is required for a multi-label run"
            )
        if records.multilabel and not 0 <= label < records.examples.num_classes:
            raise errors.InvalidArgumentError(
                "class must be a label index in [0, %d), got %d"
                % (records.examples.num_classes, label)
            )
        if not records.multilabel and label is not None:
            raise errors.InvalidArgumentError(
                "the 'class' parameter is for multi-label runs; a cell of %r is true and pred"
                % (run,)
            )
        view = example_views.examples_view(
            run, records, true, pred, label, reader.previews(run, split), groups_at
        )
        if chosen is not None:
            view["slice"] = {"key": chosen[0], "value": chosen[1]}
        if group_problems:
            view["group_problems"] = group_problems
        return view

    @_json_route
    def _serve_flips(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        other_run, other_split, other_step = _other(request, run, split)
        limit = _limit(request)
        reader = self._reader(request)
        after = reader.examples(run, split, step)
        if other_step is None and (other_run, other_split) == (run, split):
            earlier = [s for s in reader.example_steps(run, split) if s < after.step]
            if not earlier:
                raise errors.NotFoundError(
                    "run %r has no %r example records before step %d to compare with: give"
                    " other_step or other_run" % (run, split, after.step)
                )
            other_step = earlier[-1]
        before = reader.examples(other_run, other_split, other_step)
        try:
            flipped = examples_lib.flips(
                before.ids.keys(),
                before.examples.correct,
                after.ids.keys(),
                after.examples.correct,
                after.examples.confidence,
                limit,
            )
        except ValueError as error:
            raise errors.InvalidArgumentError(
                "the examples of %r and %r cannot be matched: %s" % (other_run, run, error)
            ) from error
        return example_views.flips_view(
            (other_run, before), (run, after), flipped, reader.previews(run, split)
        )

    @_json_route
    def _serve_label_issues(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        limit = _limit(request)
        reader = self._reader(request)
        records = reader.label_issues(run, split, step)
        return example_views.label_issues_view(run, records, reader.previews(run, split), limit)

    @_json_route
    def _serve_crossings(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        if _slice(request) is not None:
            raise errors.InvalidArgumentError(
                "/crossings takes no slice: crossing samples are stored for the whole split"
                " (leave out the 'slice' parameter)"
            )
        requested_class = _optional_int(request, "class")
        start, end = _required_fraction(request, "from"), _required_fraction(request, "to")
        limit = _limit(request)
        reader = self._reader(request)
        evaluation = reader.evaluation(run, split, step)
        class_index = curve_views.pr_class(run, evaluation, requested_class)
        records = reader.crossings(run, split, evaluation.step)
        return example_views.crossings_view(
            run, evaluation, class_index, records, start, end, reader.previews(run, split), limit
        )

    @_json_route
    def _serve_slices(self, request):
        run, split, step = _run(request), _split(request), _optional_int(request, "step")
        key = request.args.get("key")
        if not key:
            raise errors.InvalidArgumentError("the 'key' parameter (a group key) is required")
        if not _SLICE_KEY.fullmatch(key):
            raise errors.InvalidArgumentError(
                "key must be a group key (letters, digits and _), got %r" % _shorten(key)
            )
        reader = self._reader(request)
        # Kept under the series' listing: recomputed only when the slices change.
        series_key = reader.slices_key(run, split)
        cache_key = None if series_key is None else (_SLICES,) + series_key + (step, key)
        view = None if cache_key is None else self._series_cache.get_derived(cache_key)
        if view is None:
            step, by_key = reader.slices(run, split, step)
            if key not in by_key:
                raise reader_lib.UnknownSlice(
                    "run %r has no slices of key %r for %r (keys: %s)"
                    % (run, key, split, ", ".join(sorted(by_key)))
                )
            view = views.slices_view(run, split, step, key, by_key[key])
            if cache_key is not None:
                self._series_cache.put_derived(cache_key, view, _cached_size(view))
        return view

    @wrappers.Request.application
    def _serve_static(self, request):
        found = None
        if request.path.startswith(ROUTE_PREFIX):
            found = static_files.resolve(self._static_root, request.path[len(ROUTE_PREFIX) :])
        if found is None:
            body = json.dumps({"error": "no such file: %s" % request.path})
            return http_util.Respond(request, body, JSON, code=404)
        path, content_type = found
        with open(path, "rb") as handle:
            return http_util.Respond(request, handle.read(), content_type)


def _cached_size(document):
    """Approximate bytes a cached JSON ``document`` holds with its key: a few bytes of Python
    objects per character of JSON, and a dozen series keys (docs/benchmarks.md, memory).
    """
    return 2048 + 4 * len(json.dumps(document))


def _run(request):
    run = request.args.get("run")
    if not run:
        raise errors.InvalidArgumentError("the 'run' parameter is required")
    return run


def _split(request, name="split", default="validation"):
    split = request.args.get(name, default)
    if not schema.is_split_name(split):
        raise errors.InvalidArgumentError(
            "%s must be a split name (%s), got %r" % (name, schema.SPLIT_NAME_RULE, _shorten(split))
        )
    return split


_SLICE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _slice(request):
    """The optional ``slice=KEY=VALUE`` (split at the first ``=``) as ``(key, value)``, or
    None; a malformed one is a 400.
    """
    text = request.args.get("slice")
    if text is None or text == "":
        return None
    key, equals, value = text.partition("=")
    if not equals or not _SLICE_KEY.fullmatch(key) or not 1 <= len(value) <= _MAX_SLICE_VALUE:
        raise errors.InvalidArgumentError(
            "slice must be KEY=VALUE (a group key of letters, digits and _, and one of its"
            " values, 1 to %d characters), got %r" % (_MAX_SLICE_VALUE, _shorten(text))
        )
    return key, value


_MAX_SLICE_VALUE = schema.MAX_GROUP_VALUE_CHARS


def _limit(request):
    """The optional ``limit`` of listed examples, in [1, `example_views.MAX_LISTED`]."""
    limit = _optional_int(request, "limit")
    if limit is None:
        return example_views.DEFAULT_LISTED
    if not 1 <= limit <= example_views.MAX_LISTED:
        raise errors.InvalidArgumentError(
            "limit must be an integer in [1, %d], got %d" % (example_views.MAX_LISTED, limit)
        )
    return limit


def _other(request, run, split):
    """``(other_run, other_split, other_step)`` of a comparison: ``other_run`` (default ``run``),
    ``other_split`` (default ``split``), ``other_step`` (None when absent).
    """
    other_run = request.args.get("other_run") or run
    return (
        other_run,
        _split(request, "other_split", default=split),
        _optional_int(request, "other_step"),
    )


def _full_matrix(request):
    """Whether ``matrix=full`` asks for the whole matrices; anything else but absent is a 400."""
    matrix = request.args.get("matrix")
    if matrix not in (None, "", views.MATRIX_FULL):
        raise errors.InvalidArgumentError(
            "matrix must be %r (the whole matrix) or absent, got %r"
            % (views.MATRIX_FULL, _shorten(matrix))
        )
    return matrix == views.MATRIX_FULL


def _optional_int(request, name):
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not _INTEGER.fullmatch(value):
        raise errors.InvalidArgumentError(
            "%s must be an integer of at most 18 digits, got %r" % (name, _shorten(value))
        )
    return int(value)


def _required_int(request, name):
    value = _optional_int(request, name)
    if value is None:
        raise errors.InvalidArgumentError("the '%s' parameter is required" % name)
    return value


def _number(request, name, upper):
    """The optional number ``name`` of the query, in ``[0, upper]`` (NaN is in no interval)."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 <= number <= upper:
        raise errors.InvalidArgumentError(
            "%s must be a number in [0, %g], got %r" % (name, upper, _shorten(value))
        )
    return number


def _fraction(request, name):
    return _number(request, name, 1)


def _required_fraction(request, name):
    value = _fraction(request, name)
    if value is None:
        raise errors.InvalidArgumentError(
            "the '%s' parameter (a threshold in [0, 1]) is required" % name
        )
    return value


# The largest cost accepted: costs are relative, and bounded ones keep every sum finite.
MAX_COST = 1e12


def _cost(request, name):
    return _number(request, name, MAX_COST)


def _shorten(value, limit=100):
    """``value`` cut to ``limit`` characters for an error message."""
    return value if len(value) <= limit else value[:limit] + "..."

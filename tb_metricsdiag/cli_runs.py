"""Which runs ``tb-metricsdiag report`` reads: the logdir checked and walked (local, or any URL
TensorBoard's file-system layer reads), the run at the logdir itself named after its folder,
``--run`` patterns applied before anything is read, and the progress line shown meanwhile.
"""

import difflib
import fnmatch
import os
import time

from tb_metricsdiag.report_formats import safe_text

# The split whose counts the requirements check and whose examples ``--examples`` lists.
GATE_SPLIT = "validation"


class UsageError(Exception):
    """A problem with the command line or the LOGDIR, reported in one line with exit 2."""


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def use_color(stream):
    return _is_terminal(stream) and not os.environ.get("NO_COLOR")


# Seconds between two rewrites of the progress line.
PROGRESS_INTERVAL_S = 0.1


class Progress:
    """How far the report is, as one line on ``stream`` rewritten in place ("read 40 of 300
    runs") and cleared when done, as pip and TensorBoard users expect of a long read; nothing
    at all where ``stream`` is not a terminal (a CI log, a file).
    """

    def __init__(self, stream):
        self._stream = stream if _is_terminal(stream) else None
        self._width = 0
        self._last = float("-inf")

    def say(self, text):
        """Show ``text`` in place of the line shown."""
        if self._stream is None:
            return
        line = "tb-metricsdiag: %s" % text
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)

    def runs(self, verb, done, total):
        """Show ``VERB done of total runs``, at most every `PROGRESS_INTERVAL_S` but the last."""
        now = time.monotonic()
        if done < total and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        self.say("%s %d of %d runs" % (verb, done, total))

    def clear(self):
        """Remove the line, so that what is printed next starts on a clean line."""
        if self._stream is not None and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


# No progress shown (a baseline logdir, callers of `open_logdir` that want none).
SILENT = Progress(None)


def scheme_of(path):
    """The file-system scheme of ``path`` (``"s3"`` of ``s3://b/x``), ``""`` for a local path."""
    head, separator, _ = str(path).partition("://")
    return head.lower() if separator else ""


def _check_local_logdir(logdir):
    if not os.path.exists(logdir):
        raise UsageError("LOGDIR %s does not exist" % safe_text(logdir))
    if not os.path.isdir(logdir):
        raise UsageError("LOGDIR %s is not a directory" % safe_text(logdir))
    try:
        os.listdir(logdir)
    except OSError as error:
        raise UsageError(
            "cannot read LOGDIR %s: %s" % (safe_text(logdir), error.strerror or error)
        ) from error


def _check_remote_logdir(logdir):
    """The checks of `_check_local_logdir` through TensorBoard's file-system layer."""
    from tensorboard.compat import tf  # TensorFlow's tf.io.gfile, or TensorBoard's stub

    try:
        exists = tf.io.gfile.exists(logdir)
    except Exception as error:  # missing bucket, no credentials, no network, no file system
        raise UsageError(_cannot_read(logdir, error)) from error
    if not exists:
        raise UsageError("LOGDIR %s does not exist" % safe_text(logdir))


# Hints added to a remote logdir's read error, by scheme.
REMOTE_HINTS = {
    "s3": " (s3:// is read with boto3: credentials as boto3 finds them, another endpoint in"
    " S3_ENDPOINT; TensorFlow itself reads s3:// only with tensorflow-io)",
    "gs": " (gs:// is read by TensorFlow's GCS file system, or without TensorFlow by gcsfs:"
    " credentials in GOOGLE_APPLICATION_CREDENTIALS)",
}


def _cannot_read(logdir, error):
    """The one-line message of a logdir that could not be read, the error's lines joined."""
    message = "cannot read LOGDIR %s: %s: %s" % (
        safe_text(logdir),
        type(error).__name__,
        safe_text(" ".join(str(error).split())),
    )
    return message + REMOTE_HINTS.get(scheme_of(logdir), "")


def open_logdir(logdir, skipped=None, patterns=(), progress=SILENT, keep=()):
    """``(reader, {run: RunIndex})`` of the runs under ``logdir`` (a local path or any URL
    TensorBoard's file-system layer reads), or of those that ``patterns`` select (`select_runs`).

    A local logdir is walked by `logdir_lib.find_runs` (bounded: links and loops entered once,
    empty event files skipped); ``skipped``, a list when given, receives what it left out. The
    run at ``logdir`` itself is named after its folder (`named_after_folder`). Only the runs a
    pattern may select are read, and those named in ``keep`` (a baseline run), whether a
    pattern selects them or not; ``progress`` (a `Progress`) shows how many.

    Raises:
      UsageError: ``logdir`` does not exist, is not a readable directory, or holds no runs; a
        pattern selects none.
    """
    if scheme_of(logdir):
        _check_remote_logdir(logdir)
    else:
        _check_local_logdir(logdir)
    # The backend imports TensorBoard: only when needed.
    from tb_metricsdiag.backend import logdir as logdir_lib
    from tb_metricsdiag.backend import reader as reader_lib

    progress.say("looking for runs under %s" % safe_text(logdir))
    try:
        if scheme_of(logdir):
            runs = logdir_lib.walk_runs(logdir)
        else:
            runs, walk_skipped = logdir_lib.find_runs(logdir)
            if skipped is not None:
                skipped.extend(walk_skipped)
    except Exception as error:  # A broken logdir must end in one line, not a traceback.
        raise UsageError(_cannot_read(logdir, error)) from error
    runs = named_after_folder(logdir, runs)
    if patterns and runs:  # read only what a pattern may select: a Keras sub-run by its run
        listed = {name: _training_run(name) for name in runs}
        wanted = set(select_runs(set(listed.values()), patterns)).union(keep)
        runs = {name: path for name, path in runs.items() if listed[name] in wanted}
    try:
        provider = logdir_lib.provider_for_logdir(
            logdir, runs, lambda done, total: progress.runs("read", done, total)
        )
        reader = reader_lib.Reader(provider)
        indices = reader.list_runs()
    except Exception as error:  # A broken logdir must end in one line, not a traceback.
        raise UsageError(_cannot_read(logdir, error)) from error
    if not indices:
        raise UsageError(
            "LOGDIR %s holds no TensorBoard runs%s"
            % (safe_text(logdir), " that --run selects" if patterns else "")
        )
    if patterns:
        wanted = set(select_runs(indices, patterns)).union(keep)
        indices = {run: index for run, index in indices.items() if run in wanted}
    return reader, indices


def _training_run(name):
    """The run that the run directory ``name`` is listed as: its own, or for a Keras sub-run
    (``x/train``) the training run it belongs to (``x``).
    """
    from tb_metricsdiag.backend import keras_subruns

    parent = keras_subruns.keras_parent(name)
    return name if parent is None else parent[0]


def folder_name(logdir):
    """The last part of ``logdir``'s path (``b`` of ``s3://bucket/a/b/``, the current
    directory's name for ``.``), or None for a root.
    """
    if scheme_of(logdir):
        path = str(logdir).partition("://")[2].rstrip("/")
    else:
        path = os.path.abspath(logdir)
    return path.rpartition("/")[2].rpartition(os.sep)[2] or None


def named_after_folder(logdir, runs):
    """``runs`` (``{run name: path}``, as TensorBoard names them) with the run at ``logdir``
    itself (TensorBoard's ``.``) and its Keras sub-runs named after the folder: ``report
    runs/fraud`` reports ``fraud``, not ``.``. Unchanged where that name is another run's.
    """
    folder = folder_name(logdir)
    own = {name for name in runs if _training_run(name) == "."}
    others = {_training_run(name) for name in runs} - {"."}
    if not own or folder is None or folder in others:
        return runs
    return {
        (folder if name == "." else "%s/%s" % (folder, name)) if name in own else name: path
        for name, path in runs.items()
    }


# Run names listed when a --run pattern matches none, and no name is close to it.
RUNS_LISTED = 10

# Similarity (difflib's ratio) from which a run name counts as close to a --run pattern.
CLOSE_RUN_RATIO = 0.6


def select_runs(names, patterns):
    """The names of ``names`` that one of ``patterns`` matches (`fnmatch.fnmatchcase`: ``*``
    matches across ``/`` too), sorted.

    Raises:
      UsageError: a pattern matches none; the message names the closest runs, else the first.
    """
    names = sorted(names)
    selected = set()
    for pattern in patterns:
        matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise UsageError(
                "--run %s: %s" % (safe_text(repr(pattern)), _no_such_run(pattern, names))
            )
        selected.update(matched)
    return sorted(selected)


def _no_such_run(pattern, names):
    """The end of a message about a --run ``pattern`` that matches none of ``names``."""
    literal = "".join(char for char in pattern if char not in "*?[]!").lower()

    def likeness(name):  # the whole name, or its start (a pattern often ends in *); any case
        name = name.lower()
        return max(
            difflib.SequenceMatcher(None, literal, candidate).ratio()
            for candidate in (name, name[: len(literal)])
        )

    ranked = sorted(names, key=likeness, reverse=True)[:3]
    close = [name for name in ranked if likeness(name) >= CLOSE_RUN_RATIO]
    if close:
        return "no run matches; closest: %s" % ", ".join(safe_text(name) for name in close)
    shown = ", ".join(safe_text(name) for name in names[:RUNS_LISTED])
    more = " (%d in all)" % len(names) if len(names) > RUNS_LISTED else ""
    return "no run matches; the runs are %s%s" % (shown, more)

"""The runs under a logdir and a data provider over them: what the command line reads instead
of a running TensorBoard (`tb-metricsdiag report`). A local logdir is walked by `find_runs`
(bounded), any other (a URL) by TensorBoard's own walk (`walk_runs`).
"""

import collections
import contextlib
import os

from tb_metricsdiag.format import record_checksum, schema


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
    with numpy_record_checksums():
        for done, (name, path) in enumerate(sorted(runs.items()), 1):
            try:
                multiplexer.AddRun(path, name)
            except (OSError, directory_watcher.DirectoryDeletedError):
                pass  # as TensorBoard's own Reload: the run keeps what was read, others load
            if progress is not None:
                progress(done, len(runs))
    return data_provider.MultiplexerDataProvider(multiplexer, logdir)


@contextlib.contextmanager
def numpy_record_checksums():
    """While open, TensorBoard's TensorFlow-free record reader checks each record's masked
    CRC-32C with `record_checksum` (NumPy) instead of its Python loop (about 1 MB/s): the same
    checksum of the same framing, so a damaged record still fails its check and is reported.

    That reader looks the function up in its module at every record, so it is swapped there
    for the while and put back after. With TensorFlow's own reader (TensorFlow installed and
    not switched off) nothing changes.
    """
    from tensorboard.compat import tf

    if tf.__version__ != "stub":
        yield
        return
    reader = tf.pywrap_tensorflow
    original = reader.masked_crc32c
    reader.masked_crc32c = record_checksum.masked_crc32c
    try:
        yield
    finally:
        reader.masked_crc32c = original


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

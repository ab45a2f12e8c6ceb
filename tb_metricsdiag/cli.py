"""``tb-metricsdiag report LOGDIR``: the diagnostics of every run, without a TensorBoard server.

Exit status: 0 when no finding is at or above ``--fail-on`` (default ``error``), 1 when one
is, 2 for a usage error or a LOGDIR that does not exist, cannot be read or holds no runs.
"""

import argparse
import collections
import json
import os
import sys
import types
import unicodedata

from tb_metricsdiag import diagnostics

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

# Ranks for --fail-on: a finding fails the run when its rank is at least the option's.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(reversed(diagnostics.SEVERITIES))}

ANSI_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
ANSI_RESET = "\033[0m"


class UsageError(Exception):
    """A problem with the command line or the LOGDIR, reported in one line with exit 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s: %s (see %s --help)" % (self.prog, message, self.prog))


def _parser():
    parser = _ArgumentParser(
        prog="tb-metricsdiag",
        description="Diagnose Keras classifiers from the event files under a TensorBoard logdir.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="print the findings of every run under LOGDIR",
        description="Print the findings of every run under LOGDIR.",
    )
    report.add_argument("logdir", metavar="LOGDIR", help="directory TensorBoard would serve")
    report.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    report.add_argument(
        "--fail-on",
        choices=tuple(SEVERITY_RANK),
        default="error",
        help="exit with status 1 when a finding is at or above this severity (default: error)",
    )
    return parser


# Unicode categories printed as escapes: control, format, surrogate, private, unassigned,
# and the line / paragraph separators.
UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def safe_text(value):
    """``value`` as one printable line: control characters (newlines included) escaped."""
    out = []
    for char in str(value):
        if unicodedata.category(char) in UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(
                "\\x%02x" % code
                if code < 0x100
                else "\\u%04x" % code
                if code < 0x10000
                else "\\U%08x" % code
            )
        else:
            out.append(char)
    return "".join(out)


def _use_color(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


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


def collect_reports(logdir, skipped=None):
    """``[{"run", "findings", "not_run"}]`` for every run under ``logdir``, sorted by run name
    (``not_run``: the rules that could not run, ``[{"rule", "reason"}]``).

    ``skipped``, a list when given, receives what the walk for runs left out (`find_runs`).

    Raises:
      UsageError: ``logdir`` does not exist, is not a readable directory, or holds no runs.
    """
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
    from tb_metricsdiag.backend import reader as reader_lib  # imports TensorBoard: only when needed

    try:
        runs, walk_skipped = find_runs(logdir)
        if skipped is not None:
            skipped.extend(walk_skipped)
        reader = reader_lib.Reader(reader_lib.provider_for_logdir(logdir, runs))
        indices = reader.list_runs()
    except Exception as error:  # A broken logdir must end in one line, not a traceback.
        raise UsageError(
            "cannot read LOGDIR %s: %s" % (safe_text(logdir), safe_text(error))
        ) from error
    if not indices:
        raise UsageError("LOGDIR %s holds no TensorBoard runs" % safe_text(logdir))
    reports = []
    for run in sorted(indices):
        try:
            findings, not_run = diagnostics.evaluate(reader.history(run, indices[run]))
        except Exception as error:  # One unreadable run must not hide the others.
            findings, not_run = [_unreadable_run_finding(error)], []
        reports.append({"run": run, "findings": findings, "not_run": not_run})
    return reports


def _unreadable_run_finding(error):
    return diagnostics.finding(
        "recording_problem",
        "error",
        title="The run could not be read",
        detail="%s: %s" % (type(error).__name__, error),
        evidence={"error": type(error).__name__},
        suggestion="Check that the event files are complete and were written by a compatible"
        " tb-metricsdiag version.",
    )


def format_text(reports, color=False, skipped=()):
    """Human-readable report: runs in order, findings worst first, the rules that could not
    run, what the walk for runs skipped (`find_runs`), one summary line.
    """

    def paint(severity, text):
        return ANSI_COLORS[severity] + text + ANSI_RESET if color else text

    lines = []
    totals = dict.fromkeys(SEVERITY_RANK, 0)
    for report in reports:
        lines.append("run %s" % safe_text(report["run"]))
        if not report["findings"]:
            lines.append("  no findings")
        for finding in report["findings"]:
            totals[finding["severity"]] += 1
            where = "" if finding["step"] is None else " (epoch %d)" % finding["step"]
            lines.append(
                "  %s %s%s: %s"
                % (
                    paint(finding["severity"], finding["severity"].upper().ljust(7)),
                    safe_text(finding["rule"]),
                    where,
                    safe_text(finding["title"]),
                )
            )
            lines.append("          %s" % safe_text(finding["detail"]))
            lines.append("          fix: %s" % safe_text(finding["suggestion"]))
        for not_run in report.get("not_run", ()):
            lines.append(
                "  not run %s: %s" % (safe_text(not_run["rule"]), safe_text(not_run["reason"]))
            )
        lines.append("")
    for entry in skipped:
        shown = ", ".join(safe_text(path) for path in entry["paths"])
        more = entry["count"] - len(entry["paths"])
        lines.append(
            "skipped %d %s: %s%s"
            % (entry["count"], entry["reason"], shown, " and %d more" % more if more else "")
        )
    lines.append(
        "%d run(s): %s"
        % (len(reports), ", ".join("%d %s" % (totals[s], s) for s in diagnostics.SEVERITIES))
    )
    return "\n".join(lines) + "\n"


def format_json(reports, skipped=()):
    """``{"runs": [{"run", "findings", "not_run"}], "skipped": [{"reason", "count", "paths"}]}``
    as strict JSON.
    """
    return json.dumps({"runs": reports, "skipped": list(skipped)}, indent=2, allow_nan=False) + "\n"


def exit_status(reports, fail_on):
    """1 when a finding is at or above the ``fail_on`` severity, else 0."""
    threshold = SEVERITY_RANK[fail_on]
    failed = any(
        SEVERITY_RANK[finding["severity"]] >= threshold
        for report in reports
        for finding in report["findings"]
    )
    return EXIT_FINDINGS if failed else EXIT_OK


def main(argv=None):
    """Run the command line; returns the exit status (console scripts pass it to sys.exit)."""
    parser = _parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit:  # --help
            return exit.code if isinstance(exit.code, int) else EXIT_USAGE
        if args.command is None:
            raise UsageError(
                "tb-metricsdiag: a command is needed, e.g. tb-metricsdiag report LOGDIR"
            )
        skipped = []
        reports = collect_reports(args.logdir, skipped)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        output = format_json(reports, skipped)
    else:
        output = format_text(reports, color=_use_color(sys.stdout), skipped=skipped)
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return exit_status(reports, args.fail_on)


def console_main():
    """Console-script entry point: `main`, without importing TensorFlow for a local LOGDIR.

    TensorBoard reads local event files with its own stub when the module
    ``tensorboard.compat.notf`` exists (its documented no-TensorFlow switch); importing
    TensorFlow only to read files would add seconds to every CI call. Remote logdirs
    (``gs://`` and the like) still go through TensorFlow's file systems.
    """
    args = sys.argv[1:]
    if not any("://" in arg for arg in args):
        sys.modules.setdefault(
            "tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf")
        )
    return main(args)


if __name__ == "__main__":
    sys.exit(console_main())

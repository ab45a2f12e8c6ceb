"""``tb-metricsdiag report LOGDIR``: the diagnostics of every run, without a TensorBoard server.

Exit status: 0 when no finding is at or above ``--fail-on`` (default ``error``), 1 when one
is, 2 for a usage error or a LOGDIR that does not exist, cannot be read or holds no runs.
"""

import argparse
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


def collect_reports(logdir):
    """``[{"run", "findings"}]`` for every run under ``logdir``, sorted by run name.

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
        reader = reader_lib.Reader(reader_lib.provider_for_logdir(logdir))
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
            findings = diagnostics.diagnose(reader.history(run, indices[run]))
        except Exception as error:  # One unreadable run must not hide the others.
            findings = [_unreadable_run_finding(error)]
        reports.append({"run": run, "findings": findings})
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


def format_text(reports, color=False):
    """Human-readable report: runs in order, findings worst first, one summary line."""

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
        lines.append("")
    lines.append(
        "%d run(s): %s"
        % (len(reports), ", ".join("%d %s" % (totals[s], s) for s in diagnostics.SEVERITIES))
    )
    return "\n".join(lines) + "\n"


def format_json(reports):
    """``{"runs": [{"run", "findings"}]}`` as strict JSON."""
    return json.dumps({"runs": reports}, indent=2, allow_nan=False) + "\n"


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
        reports = collect_reports(args.logdir)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        output = format_json(reports)
    else:
        output = format_text(reports, color=_use_color(sys.stdout))
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

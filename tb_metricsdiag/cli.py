"""``tb-metricsdiag report LOGDIR``: the diagnostics of every run, without a TensorBoard server.

Exit status: 0 when no finding is at or above ``--fail-on`` (default ``error``) and every
``--require`` holds, 1 when a finding is or a requirement fails, 2 for a usage error (a
requirement that cannot be checked, a ``--run`` that selects nothing) or a LOGDIR that does not
exist, cannot be read or holds no runs.

LOGDIR may be any path TensorBoard reads: a local directory, ``s3://bucket/prefix`` or
``gs://bucket/prefix`` (see `console_main` for which file-system layer reads which).

This module is the command line's face: its arguments and how they combine, the exit status,
where the output goes. What the report reads and prints is `cli_report`'s; the requirements
are read and checked by `cli_requirements`, the examples listed by `cli_examples`, the runs
found by `cli_runs`.
"""

import argparse
import importlib.util
import os
import sys
import types

from tb_metricsdiag import cli_report, cli_runs, gates, report_formats
from tb_metricsdiag.cli_examples import EXAMPLE_FORMATS, MAX_EXAMPLES
from tb_metricsdiag.cli_requirements import gate_errors_as_usage_errors
from tb_metricsdiag.cli_runs import UsageError
from tb_metricsdiag.report_formats import SEVERITY_RANK, safe_text

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

FORMATS = ("text", "json", "markdown", "junit", "csv", "html")

# The file-system schemes TensorBoard's TensorFlow-free layer reads (`_tensorflow_free`).
TENSORFLOW_FREE_SCHEMES = ("", "s3")


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s: %s (see %s --help)" % (self.prog, message, self.prog))


def _parser():
    parser = _ArgumentParser(
        prog="tb-metricsdiag",
        description="Diagnose classifiers from the event files under a TensorBoard logdir: any"
        " model the tb-metricsdiag writers record (the Keras and Lightning callbacks,"
        " MetricsDiagWriter in any training loop).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="print the findings of every run under LOGDIR",
        description="Print the findings of every run under LOGDIR.",
    )
    report.add_argument("logdir", metavar="LOGDIR", help="directory TensorBoard would serve")
    report.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="GLOB",
        help="report only the runs whose name (as listed) matches GLOB, e.g. 'sweep/*'"
        " (repeatable; fnmatch: * ? [seq])",
    )
    report.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output format (default: text); markdown for a CI job summary, junit for CI test"
        " reports, csv for per-class metrics per run and split, html for one self-contained page"
        " with each run's findings, requirements, confusion matrix, PR curves, calibration and"
        " curves (a CI artifact)",
    )
    report.add_argument(
        "--output",
        metavar="FILE",
        help="write the report to FILE instead of standard output",
    )
    report.add_argument(
        "--fail-on",
        choices=tuple(SEVERITY_RANK),
        default="error",
        help="exit with status 1 when a finding is at or above this severity (default: error)",
    )
    report.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="EXPR",
        help="a requirement every run with counts must meet, e.g. 'recall[fraud] >= 0.9',"
        " 'f1[*] >= 0.6', 'ap[macro] > 0.8', 'recall[fraud] >= baseline - 0.02'"
        " (repeatable; a failed one exits with status 1)",
    )
    report.add_argument(
        "--step",
        type=int,
        metavar="N",
        help="check the requirements, list the examples and report the csv metrics, at step N"
        " (default: each run's latest validation step; csv: each split's latest step)",
    )
    report.add_argument(
        "--examples",
        type=int,
        metavar="N",
        help="list per run the N most confident validation errors and the first N label"
        " issues (the least likely given label first), at the latest step or --step"
        " (text, json and markdown; runs recorded with example records)",
    )
    report.add_argument(
        "--baseline",
        metavar="RUN",
        help="compare each requirement with this run (a run under LOGDIR, which is then not"
        " checked itself, or a logdir holding one run), at its latest validation step",
    )
    report.add_argument(
        "--min-slice-size",
        type=int,
        metavar="N",
        help="check a requirement on METRIC@KEY=* only on the slices of at least N rows; smaller"
        " ones are listed as skipped (default: %d)" % gates.MIN_SLICE_SIZE,
    )
    report.add_argument(
        "--by-interval",
        action="store_true",
        help="fail a requirement on a proportion (accuracy, a class's precision or recall) only"
        " when its whole Wilson 95%% interval is on the wrong side of the bound",
    )
    return parser


def _checked_requirements(args):
    """The parsed ``--require`` of ``args``, once every option is checked against the others.

    Raises:
      UsageError: a malformed requirement, or an option that needs another or is out of range.
    """
    with gate_errors_as_usage_errors():
        requirements = gates.parse_requirements(args.require)
    if not requirements and args.baseline is not None:
        raise UsageError("--baseline applies to --require: give at least one")
    if args.min_slice_size is not None:
        if not any(r.slice_value == gates.EVERY_VALUE for r in requirements):
            raise UsageError(
                "--min-slice-size applies to --require METRIC@KEY=* OP NUMBER: give one"
            )
        if args.min_slice_size < 1:
            raise UsageError("--min-slice-size must be at least 1, got %d" % args.min_slice_size)
    if args.examples is not None:
        if not 1 <= args.examples <= MAX_EXAMPLES:
            raise UsageError(
                "--examples must be between 1 and %d, got %d" % (MAX_EXAMPLES, args.examples)
            )
        if args.format not in EXAMPLE_FORMATS:
            raise UsageError(
                "--examples is listed by --format %s, not %s"
                % (", ".join(EXAMPLE_FORMATS), args.format)
            )
    if (
        not requirements
        and args.step is not None
        and args.format != "csv"
        and args.examples is None
    ):
        raise UsageError(
            "--step applies to --require (give at least one), --examples and --format csv"
        )
    return requirements


def exit_status(reports, fail_on):
    """1 when a finding is at or above the ``fail_on`` severity or a requirement failed,
    else 0.
    """
    threshold = SEVERITY_RANK[fail_on]
    failed = any(
        SEVERITY_RANK[finding["severity"]] >= threshold
        for report in reports
        for finding in report["findings"]
    )
    failed = failed or report_formats.requirement_totals(reports)[1] > 0
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
        requirements = _checked_requirements(args)
        progress = cli_runs.Progress(sys.stderr)
        try:
            output, reports = cli_report.build_report(args, requirements, progress)
        finally:
            progress.clear()
        status = exit_status(reports, args.fail_on)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as handle:
                handle.write(output)
        except OSError as error:
            print(
                "tb-metricsdiag: cannot write --output %s: %s"
                % (safe_text(args.output), safe_text(error.strerror or error)),
                file=sys.stderr,
            )
            return EXIT_USAGE
        return status
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return status


def _tensorflow_free(paths):
    """Whether TensorBoard's TensorFlow-free file layer should read ``paths``: local paths and
    ``s3://`` (with boto3) it reads itself; any other scheme goes to TensorFlow's file systems
    when TensorFlow is installed (TensorFlow reads ``gs://`` natively; the stub would need
    fsspec's gcsfs).
    """
    with_tensorflow = importlib.util.find_spec("tensorflow") is not None
    for path in paths:
        scheme = cli_runs.scheme_of(path)
        if scheme == "s3" and importlib.util.find_spec("boto3") is None:
            return False  # TensorFlow with tensorflow-io may still read it
        if scheme not in TENSORFLOW_FREE_SCHEMES and with_tensorflow:
            return False
    return True


def console_main():
    """Console-script entry point: `main`, reading with TensorBoard's TensorFlow-free file layer
    where it can (`_tensorflow_free`).

    TensorBoard reads event files with its own stub when the module
    ``tensorboard.compat.notf`` exists (its documented no-TensorFlow switch). That stub reads
    local paths and ``s3://`` (through boto3: credentials as boto3 finds them, another endpoint
    in ``S3_ENDPOINT``), which TensorFlow itself no longer reads without tensorflow-io; and
    importing TensorFlow only to read files would add seconds to every CI call. Other schemes
    (``gs://``, ``hdfs://``) go through TensorFlow's file systems when it is installed, else
    through the stub's fsspec fallback.
    """
    args = sys.argv[1:]
    paths = []
    if not {"-h", "--help"} & set(args):
        try:
            known, _ = _parser().parse_known_args(args)
            paths = [getattr(known, "logdir", None), getattr(known, "baseline", None)]
        except UsageError:  # main reports it
            pass
    if _tensorflow_free([path for path in paths if path]):
        sys.modules.setdefault(
            "tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf")
        )
    else:  # TensorFlow's C++ log lines (credentials lookups, CPU features) are not the report's
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return main(args)


if __name__ == "__main__":
    sys.exit(console_main())

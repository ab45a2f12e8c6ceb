"""Size of ``report --format html``: the page's fixed part, and what each run and class adds.

Part 1: runs written with `MetricsDiagWriter` (framework-free) at 2, 10, 30 and 100 classes,
2,000 validation examples, 10 epochs of counts and logs, the default threshold grid: the bytes
one run adds to the page (its embedded answers as the page holds them: `html_report.script_json`)
and where they go (the PR answers, one per class up to `html_report.MAX_PR_CLASSES`; the
confusion answer; the rest). Part 2, with ``--logdir`` (e.g. the demo's, ``python
demo/run_demo.py --no-serve``): the whole page of that logdir and each run's share.

Run: ``python bench/html_report_size.py [--logdir DIR]``.
"""

import argparse
import os
import tempfile

import numpy as np
from _common import describe_machine

from tb_metricsdiag import MetricsDiagWriter, cli_report, html_report
from tb_metricsdiag.cli_runs import open_logdir

CLASS_COUNTS = (2, 10, 30, 100)
EXAMPLES = 2000
EPOCHS = 10


def write_run(root, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, size=EXAMPLES)
    names = ["class_%d" % k for k in range(num_classes)]
    with MetricsDiagWriter(os.path.join(root, "c%d" % num_classes), class_names=names) as writer:
        for epoch in range(EPOCHS):
            logits = rng.normal(size=(EXAMPLES, num_classes))
            logits[np.arange(EXAMPLES), y_true] += 0.3 * (epoch + 1)
            writer.add_evaluation(y_true, logits, step=epoch, from_logits=True)
            writer.add_logs({"loss": 1.0 / (epoch + 1), "val_loss": 1.1 / (epoch + 1)}, epoch)


def runs_of(logdir):
    reader, indices = open_logdir(logdir)
    reports = cli_report.collect_reports(reader, indices)
    return html_report.collect_runs(reader, indices, reports)


def size(value):
    return len(html_report.script_json(value).encode("utf-8"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", help="also measure the page of this logdir, run by run")
    args = parser.parse_args()
    print(describe_machine())
    empty = len(html_report.format_html([], "x").encode("utf-8"))
    print("\nthe page without runs (modules, stylesheet, loader): %d bytes" % empty)

    print("\n| classes | run | per class | PR answers | confusion | rest |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for num_classes in CLASS_COUNTS:
            write_run(root, num_classes)
        for run in runs_of(root):
            classes = len(run["entry"]["class_names"])
            total, pr, confusion = size(run), size(run["pr"]), size(run["confusion"])
            print(
                "| %d | %d | %d | %d (%d classes) | %d | %d |"
                % (
                    classes,
                    total,
                    total // classes,
                    pr,
                    len(run["pr"]),
                    confusion,
                    total - pr - confusion,
                )
            )
    if args.logdir:
        runs = runs_of(args.logdir)
        page = len(html_report.format_html(runs, args.logdir).encode("utf-8"))
        print("\n%s: %d bytes in all\n" % (args.logdir, page))
        print("| run | classes | bytes |")
        print("|---|---|---|")
        for run in runs:
            print(
                "| %s | %d | %d |"
                % (run["entry"]["run"], len(run["entry"]["class_names"]), size(run))
            )


if __name__ == "__main__":
    main()

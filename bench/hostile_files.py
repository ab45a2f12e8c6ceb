"""Damaged and crafted files: what refusing them costs, and what ``report`` says of them.

The logdir is the hostile-input tests' zoo (`tests/zoo.py`: good runs beside damaged and
crafted ones, and `tests/hostile_examples.py`: crafted example records: a million ids, 10 MB
strings, invalid UTF-8, a PNG declaring 65,535 x 65,535 pixels, a label-issue list longer than
the split). Measured, on a ``tensorboard`` of each loader (``--load_fast=true``: the Rust data
server; ``false``: the Python loader):

- every route of every crafted example run: the first answer (cold: the run's series read and
  its records decoded or refused) and the median of ``--repeats`` more (warm: a refusal is
  kept, and answered without decoding again), with the status;
- the server's resident memory before and after three sweeps of those routes;

and ``tb-metricsdiag report`` over the zoo, as CI runs it (its console entry point, in a process
of its own): exit status (1: the damaged runs are errors), seconds, and the runs with an
error.

Run: ``python bench/hostile_files.py`` (``--repeats N``, default 5; ``--logdir DIR`` keeps the
zoo there and reuses it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _common

sys.path.insert(0, os.path.join(_common.REPO_ROOT, "tests"))

import hostile_examples  # noqa: E402
import zoo  # noqa: E402


def _ready(get):
    runs = zoo.runs_of(get)
    return all(
        len(runs.get(run, {}).get("steps", [])) == hostile_examples.STEPS
        for run in [hostile_examples.GOOD_RUN] + sorted(hostile_examples.CRAFTED)
    )


def _resident(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _routes():
    for run in [hostile_examples.GOOD_RUN] + sorted(hostile_examples.CRAFTED):
        for route in hostile_examples.ROUTES:
            yield run, route, hostile_examples._params(run, route)


def _serve_and_measure(logdir, load_fast, repeats):
    log_path = os.path.join(tempfile.mkdtemp(), "tensorboard.log")
    with zoo.tensorboard_serving(logdir, load_fast, log_path, _ready) as (base, process):
        rows = []
        for run, route, params in _routes():
            started = time.perf_counter()
            status, _ = zoo.http_get(base, route, params)
            cold = time.perf_counter() - started
            warm = []
            for _ in range(repeats):
                started = time.perf_counter()
                zoo.http_get(base, route, params)
                warm.append(time.perf_counter() - started)
            rows.append((run, route, status, cold, statistics.median(warm)))
        before = _resident(process.pid)
        for _ in range(3):
            hostile_examples.example_sweep(lambda r, p: zoo.http_get(base, r, p))
        return rows, before, _resident(process.pid)


def _report(logdir):
    """``(exit status, seconds, runs, runs with an error)`` of ``tb-metricsdiag report`` as CI
    runs it: its console entry point in a process of its own (TensorBoard's TensorFlow-free
    file layer)."""
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tb_metricsdiag import cli; sys.exit(cli.console_main())",
            "report",
            logdir,
            "--format",
            "json",
        ],
        env=dict(os.environ, PYTHONPATH=_common.REPO_ROOT),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    runs = json.loads(result.stdout)["runs"]
    errors = [r["run"] for r in runs if any(f["severity"] == "error" for f in r["findings"])]
    return result.returncode, elapsed, len(runs), errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--logdir", default=None)
    args = parser.parse_args()
    logdir = args.logdir or tempfile.mkdtemp(prefix="hostile_zoo_")
    if not os.path.exists(os.path.join(logdir, "good")):
        started = time.perf_counter()
        zoo.build_zoo(logdir)
        print("zoo written in %.1f s: %s" % (time.perf_counter() - started, logdir))
    status, elapsed, count, errors = _report(logdir)
    print(
        "report: exit %d in %.2f s over %d runs; %d with an error: %s"
        % (status, elapsed, count, len(errors), ", ".join(sorted(errors)))
    )
    for load_fast in ("true", "false"):
        rows, before, after = _serve_and_measure(logdir, load_fast, args.repeats)
        print("\n--load_fast=%s" % load_fast)
        print("| run | route | status | first (ms) | then, median (ms) |")
        print("|---|---|---|---|---|")
        for run, route, status, cold, warm in rows:
            print("| %s | %s | %d | %.0f | %.1f |" % (run, route, status, 1e3 * cold, 1e3 * warm))
        slowest = max(rows, key=lambda row: row[3])
        print(
            "slowest first answer: %s %s %.0f ms; resident memory %+.1f MB over three sweeps"
            " (%.0f MB before)"
            % (slowest[0], slowest[1], 1e3 * slowest[3], (after - before) / 1e6, before / 1e6)
        )


if __name__ == "__main__":
    main()

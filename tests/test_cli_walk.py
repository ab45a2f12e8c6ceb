"""``report`` over awkward logdirs: symlink loops, thousands of empty event files, crafted runs
beside good ones. Each finishes in seconds with bounded memory and says what it skipped."""

import json
import os
import subprocess
import sys
import time

from zoo import WORKTREE, build_crafted_runs, good_run

from tb_metricsdiag.backend import logdir as logdir_lib

# Seconds a report of these logdirs may take (TensorBoard's own walk never ends on a loop).
REPORT_BUDGET_S = 60

# Peak resident memory of the report process, at most.
REPORT_MEMORY_BUDGET = 1 << 30


def report(logdir, *options):
    """(exit status, stdout, seconds, peak resident bytes) of ``report LOGDIR`` in a process."""
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            # The report's own peak, at exit, from its memory map's high-water mark: both
            # RUSAGE_CHILDREN (the largest child this process ever waited for) and the child's
            # ru_maxrss (Linux keeps the forking parent's across exec) count the test process.
            "import atexit, sys\n"
            "def peak():\n"
            "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
            "    sys.stderr.write('peak_kib %s\\n' % status)\n"
            "atexit.register(peak)\n"
            "from tb_metricsdiag import cli\n"
            "sys.exit(cli.console_main())",
            "report",
            logdir,
            *options,
        ],
        env=dict(os.environ, PYTHONPATH=WORKTREE),
        capture_output=True,
        text=True,
        timeout=REPORT_BUDGET_S * 3,
    )
    elapsed = time.monotonic() - started
    assert result.returncode in (0, 1), result.stderr
    (peak_kib,) = [
        int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("peak_kib ")
    ]
    peak = peak_kib * 1024
    return result.returncode, result.stdout, elapsed, peak


def test_symlink_loops_are_walked_once_and_said(tmp_path):
    logdir = str(tmp_path)
    good_run(logdir, "good", 2, ["neg", "pos"])
    os.symlink(".", os.path.join(logdir, "a"))
    os.symlink(".", os.path.join(logdir, "b"))
    os.symlink("..", os.path.join(logdir, "good", "up"))
    _, out, elapsed, peak = report(logdir, "--format", "json")
    assert elapsed < REPORT_BUDGET_S and peak < REPORT_MEMORY_BUDGET
    body = json.loads(out)
    assert [run["run"] for run in body["runs"]] == ["good"]
    [walked] = [s for s in body["skipped"] if s["reason"] == logdir_lib.SKIPPED_WALKED]
    assert walked["count"] == 3 and len(walked["paths"]) == 3, walked


def test_directories_deeper_than_the_bound_are_said(tmp_path):
    deep = os.path.join(str(tmp_path), *["d"] * (logdir_lib.MAX_WALK_DEPTH + 1))
    good_run(deep, "run", 2)
    good_run(str(tmp_path), "shallow", 2)
    runs, skipped = logdir_lib.find_runs(str(tmp_path))
    assert list(runs) == ["shallow"]
    assert skipped == [{"reason": logdir_lib.SKIPPED_DEEP, "count": 1, "paths": [deep]}]


def test_thousands_of_empty_event_files_are_skipped_fast(tmp_path):
    logdir = str(tmp_path)
    good_run(logdir, "good", 2, ["neg", "pos"])
    empties = os.path.join(logdir, "empties")
    os.makedirs(empties)
    for i in range(5000):
        open(os.path.join(empties, "events.out.tfevents.%d.host" % i), "wb").close()
    # An empty file beside the good run's: the run is still read, from its one real file.
    open(os.path.join(logdir, "good", "events.out.tfevents.0.empty"), "wb").close()
    _, out, elapsed, peak = report(logdir)
    assert elapsed < REPORT_BUDGET_S and peak < REPORT_MEMORY_BUDGET
    assert "run good\n" in out and "run empties" not in out
    assert "skipped 5001 %s:" % logdir_lib.SKIPPED_EMPTY in out, out[-500:]
    assert "and 4996 more" in out


def test_crafted_runs_are_named_and_the_good_ones_reported(tmp_path):
    logdir = str(tmp_path)
    good_run(logdir, "good", 2, ["neg", "pos"])
    build_crafted_runs(logdir)
    status, out, elapsed, peak = report(logdir, "--format", "json", "--fail-on", "warning")
    assert elapsed < REPORT_BUDGET_S and peak < REPORT_MEMORY_BUDGET
    runs = {run["run"]: run for run in json.loads(out)["runs"]}
    assert status == 1  # the damaged runs are errors
    assert {f["rule"] for f in runs["good"]["findings"]} <= {"overfitting", "not_learning"}
    for run in ("deep_names", "huge_shape", "negative_confusion", "bomb", "deep_json"):
        rules = {f["rule"] for f in runs[run]["findings"]}
        assert "recording_problem" in rules, (run, runs[run])
    assert any(n["rule"] == "loss_mismatch" for n in runs["good"]["not_run"])


def test_csv_of_crafted_runs_keeps_the_good_ones_and_names_the_others(tmp_path):
    import csv
    import io

    from zoo import CRAFTED_UNREADABLE

    logdir = str(tmp_path)
    good_run(logdir, "good", 2, ["neg", "pos"])
    build_crafted_runs(logdir)
    result = subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", logdir, "--format", "csv"],
        env=dict(os.environ, PYTHONPATH=WORKTREE),
        capture_output=True,
        text=True,
        timeout=REPORT_BUDGET_S * 3,
    )
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["run"], row["class"]) for row in rows if row["run"] == "good"] == [
        ("good", "neg"),
        ("good", "pos"),
    ]
    assert not CRAFTED_UNREADABLE & {row["run"] for row in rows}
    said = [line for line in result.stderr.splitlines() if "cannot be read" in line]
    assert sorted(line.split(" run ")[1].split(",")[0] for line in said) == sorted(
        CRAFTED_UNREADABLE
    ), said

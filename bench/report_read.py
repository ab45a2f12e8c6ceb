"""How fast `tb-metricsdiag report` reads event files without TensorFlow: TensorBoard's
stub reader, its records checked with the NumPy CRC-32C (`backend.logdir.numpy_record_checksums`)
against TensorBoard's own Python loop.

A logdir of ``--runs`` runs, each ``--steps`` evaluations of ``--examples`` binary scores
written by `MetricsDiagWriter` with their example records (tens to hundreds of KB a record),
is read by `logdir.provider_for_logdir` (what `report` reads through) both ways, interleaved,
in a process that switches TensorFlow off as the console script does; best and median of
``--repeats``, wall and CPU time, and MB per second of event files.

Run: ``python bench/report_read.py`` (``--quick``: a tenth of the examples).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from _common import REPO_ROOT, describe_machine

from tb_metricsdiag import MetricsDiagWriter

_READ = """
import contextlib, statistics, sys, time, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from tb_metricsdiag.backend import logdir as logdir_lib

logdir, repeats = sys.argv[1], int(sys.argv[2])
ways = {"numpy": logdir_lib.numpy_record_checksums, "loop": contextlib.nullcontext}
swap = logdir_lib.numpy_record_checksums
times = {name: [] for name in ways}
for _ in range(repeats):
    for name, checksums in ways.items():
        logdir_lib.numpy_record_checksums = checksums
        wall, cpu = time.perf_counter(), time.process_time()
        logdir_lib.provider_for_logdir(logdir)
        times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
for name, measured in times.items():
    walls, cpus = [m[0] for m in measured], [m[1] for m in measured]
    print(name, min(walls), statistics.median(walls), min(cpus), statistics.median(cpus))
"""


def write_logdir(logdir, runs, steps, examples):
    rng = np.random.default_rng(0)
    for run in range(runs):
        with MetricsDiagWriter(os.path.join(logdir, "run%d" % run)) as writer:
            for step in range(steps):
                p = rng.random(examples).astype(np.float32)
                writer.add_evaluation((rng.random(examples) < p).astype(int), p, step)
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(logdir)
        for name in names
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--examples", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tenth of the examples")
    args = parser.parse_args()
    examples = args.examples // 10 if args.quick else args.examples
    print(describe_machine())
    with tempfile.TemporaryDirectory() as logdir:
        size = write_logdir(logdir, args.runs, args.steps, examples)
        result = subprocess.run(
            [sys.executable, "-c", _READ, logdir, str(args.repeats)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
            check=True,
        )
    print(
        "%d runs x %d steps of %d binary examples with example records: %.2f MB of event files"
        % (args.runs, args.steps, examples, size / 1e6)
    )
    measured = {}
    for line in result.stdout.splitlines():
        name, *values = line.split()
        measured[name] = [float(v) for v in values]
    for name, label in (("loop", "TensorBoard's CRC loop"), ("numpy", "NumPy CRC-32C")):
        wall, wall_median, cpu, cpu_median = measured[name]
        print(
            "  %-22s wall best %7.3f s (median %7.3f), cpu best %7.3f s (median %7.3f): %.2f MB/s"
            % (label, wall, wall_median, cpu, cpu_median, size / 1e6 / wall)
        )
    print("  speed-up (wall, best): %.1fx" % (measured["loop"][0] / measured["numpy"][0]))


if __name__ == "__main__":
    main()

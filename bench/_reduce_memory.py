"""What the DDP memory benchmarks (`lightning_reduce_memory.py`, `transformers_reduce_memory.py`)
share: the evaluation set made from row indices, process zero's memory figures, and the driver
that runs one fresh pair of processes per (mode, rows) and prints each worker's JSON line."""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import describe_machine, rss_bytes

FEATURES = 16
CLASSES = 100
BATCH = 20_000


def rss_mib():
    """This process's resident memory now, MiB."""
    return rss_bytes() / 2**20


def peak_mib():
    """This process's peak resident memory so far (``ru_maxrss``), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def index_rows(rows):
    """A dataset of ``rows`` rows whose row ``i`` is ``i``: `features_of` makes the batch."""
    import torch

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return rows

        def __getitem__(self, index):
            return index

    return Rows()


def features_of(indices):
    """``(x, labels)`` of the rows ``indices``: `FEATURES` features and a label made from each
    index, so that nothing of the set is held in memory."""
    import torch

    index = torch.tensor(indices, dtype=torch.float32)[:, None]
    x = torch.sin(index * 0.37 + torch.arange(FEATURES) * 1.3)
    return x, torch.tensor(indices) % CLASSES


def run_each(command_of, modes, rows_list):
    """For each mode and number of rows, run ``command_of(rows, mode, out_dir)`` (argv, in a
    fresh temporary directory) and print the last JSON line it wrote, or why it failed."""
    print(describe_machine())
    for mode in modes:
        for rows in rows_list:
            with tempfile.TemporaryDirectory() as out_dir:
                env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
                done = subprocess.run(
                    command_of(rows, mode, out_dir),
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=out_dir,
                )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                print("%s %d: failed (%d)\n%s" % (mode, rows, done.returncode, done.stderr[-2000:]))
                continue
            print(lines[-1], flush=True)


def python_command(script, *arguments):
    """``python SCRIPT ARGUMENTS...`` with this interpreter."""
    return [sys.executable, os.path.abspath(script)] + [str(a) for a in arguments]


def torchrun_command(script, *arguments):
    """``SCRIPT ARGUMENTS...`` in two processes under ``torch.distributed.run``."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return launcher + ["--nproc_per_node", "2"] + python_command(script, *arguments)[1:]


def report(mode, rows, before_mib, started):
    """Print process zero's JSON line: its peak memory above ``before_mib`` and the seconds
    since ``started`` (`time.perf_counter`)."""
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": rows,
                "peak_above_start_mib": round(peak_mib() - before_mib, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


def main(script, worker, launcher, modes, default_modes):
    """A benchmark's command line: ``--worker ROWS MODE OUT_DIR`` runs ``worker`` (one process
    of a pair), else `run_each` over ``--rows`` and ``--modes``, each pair started by
    ``launcher`` (`python_command` or `torchrun_command`) running ``script`` with ``--worker``."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 500_000, 1_000_000, 2_000_000]
    )
    parser.add_argument("--modes", nargs="+", choices=modes, default=list(default_modes))
    parser.add_argument("--worker", nargs=3)
    args = parser.parse_args()
    if args.worker:
        rows, mode, out_dir = args.worker
        worker(int(rows), mode, out_dir)
    else:
        run_each(
            lambda rows, mode, out_dir: launcher(script, "--worker", rows, mode, out_dir),
            args.modes,
            args.rows,
        )

"""``/overview`` at sweep scale: warm answers at `RUNS` runs x `EPOCHS` epochs, both loaders.

A logdir of `RUNS` runs (in `GROUPS` sweep folders) of `EPOCHS` epochs each: `DISTINCT` of them
written with `MetricsDiagWriter`, the others copies of their files under their own names (what
``/overview`` costs goes with the runs and their series, not with their numbers) (`CLASSES` classes, a validation evaluation of `EXAMPLES` examples and the
Keras-style ``loss`` / ``val_loss`` logs per epoch, headline scalars included), then served by
``tensorboard`` (`backend_latency.Server`) with both loaders once every run lists every epoch.
Measured per loader: the first ``/overview`` (cold: every run's history read and diagnosed),
then ``--requests`` warm ones (median, p95), against the `TARGET_WARM_MS` target, and the size
of the answer.

Run: ``python bench/overview.py`` (``--quick``: 50 runs; ``--logdir DIR`` keeps the written
logdir and reuses it; ``--loaders true`` or ``false`` for one loader).
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request

import numpy as np
from _common import describe_machine, percentile
from backend_latency import ROUTE_PREFIX, Server, get, plugin_runs_ready

RUNS, QUICK_RUNS = 500, 50
DISTINCT = 100  # runs written; the others are copies of their files (the answer's cost is per run)
EPOCHS = 50
GROUPS = 10
CLASSES = 10
EXAMPLES = 200
REQUESTS = 30
TARGET_WARM_MS = 200
LOADERS = ("true", "false")
COMPLETE_MARKER = "COMPLETE"


def run_name(index):
    return "sweep%02d/run%04d" % (index % GROUPS, index)


def write_run(log_dir, seed):
    """One run of `EPOCHS` epochs: a model that learns at its own rate, and its losses."""
    from tb_metricsdiag import MetricsDiagWriter

    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.5, 3.0)
    names = ["class_%d" % k for k in range(CLASSES)]
    with MetricsDiagWriter(log_dir, class_names=names) as writer:
        for epoch in range(EPOCHS):
            skill = rate * epoch / EPOCHS
            labels = rng.integers(0, CLASSES, size=EXAMPLES)
            logits = rng.normal(size=(EXAMPLES, CLASSES))
            logits[np.arange(EXAMPLES), labels] += 3 * skill
            writer.add_evaluation(labels, logits, epoch, from_logits=True, example_ids=False)
            val_loss = 2.0 / (1 + skill) + 0.02 * max(0, epoch - EPOCHS // 2)  # overfits late
            writer.add_logs({"loss": 2.0 / (1 + 1.2 * skill), "val_loss": val_loss}, epoch)


def write_logdir(logdir, runs):
    """Writes ``runs`` runs into ``logdir`` (reused when written before at this size)."""
    from tb_metricsdiag.format import schema

    marker = os.path.join(logdir, COMPLETE_MARKER)
    description = "%d %d format %d" % (runs, EPOCHS, schema.FORMAT_VERSION)
    if os.path.exists(marker):
        with open(marker) as handle:
            if handle.read() == description:
                print("reusing %s (%d runs x %d epochs)" % (logdir, runs, EPOCHS))
                return
        raise SystemExit("%s holds another logdir: remove it or pick another" % logdir)
    if os.listdir(logdir):
        raise SystemExit("%s is not empty: give an empty or new directory" % logdir)
    distinct = min(runs, DISTINCT)
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(
            pool.map(
                write_run,
                [os.path.join(logdir, run_name(i)) for i in range(distinct)],
                range(distinct),
                chunksize=8,
            )
        )
    for i in range(distinct, runs):
        shutil.copytree(
            os.path.join(logdir, run_name(i % distinct)), os.path.join(logdir, run_name(i))
        )
    with open(marker, "w") as handle:
        handle.write(description)


def measure(logdir, load_fast, runs, requests):
    """(cold seconds, [warm seconds], answer bytes, entries with an error) of one loader."""
    with Server(logdir, load_fast, with_plugin=True) as server:
        server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(runs, EPOCHS))
        started = time.perf_counter()
        with urllib.request.urlopen(
            server.base + ROUTE_PREFIX + "/overview", timeout=1800
        ) as answer:
            status, body = answer.status, json.loads(answer.read())
        cold = time.perf_counter() - started
        if status != 200 or len(body["runs"]) != runs:
            raise RuntimeError("/overview answered %d with %s" % (status, str(body)[:500]))
        warm = [get(server.base, ROUTE_PREFIX + "/overview")[2] for _ in range(requests)]
        errors = sum("error" in entry for entry in body["runs"])
        return cold, warm, len(json.dumps(body)), errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--loaders", choices=LOADERS, nargs="*", default=list(LOADERS))
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args()
    runs = QUICK_RUNS if args.quick else RUNS
    print(describe_machine())
    with tempfile.TemporaryDirectory() as scratch:
        logdir = args.logdir or scratch
        os.makedirs(logdir, exist_ok=True)
        write_logdir(logdir, runs)
        print("%d runs x %d epochs, %d classes" % (runs, EPOCHS, CLASSES))
        print("| loader | cold `/overview` | warm median | warm p95 | answer |")
        print("|---|---|---|---|---|")
        for load_fast in args.loaders:
            cold, warm, size, errors = measure(logdir, load_fast, runs, args.requests)
            assert errors == 0, "%d runs could not be read" % errors
            print(
                "| --load_fast=%s | %.2f s | %.0f ms | %.0f ms | %.0f KB |"
                % (
                    load_fast,
                    cold,
                    1000 * statistics.median(warm),
                    1000 * percentile(warm, 95),
                    size / 1000,
                )
            )
    print(
        "target: warm /overview within %d ms at %d runs x %d epochs"
        % (TARGET_WARM_MS, RUNS, EPOCHS)
    )


if __name__ == "__main__":
    main()

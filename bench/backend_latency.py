"""Backend latency: TensorBoard start-up and warm answers of the metricsdiag routes.

A synthetic logdir of 100 runs x 300 epochs x 10 classes (validation and train evaluation of
200 examples plus four Keras log scalars per epoch) is written with the real writers
(`tb_metricsdiag.summary.write_evaluation` and `write_logs`), then served by ``tensorboard``
(through `_tensorboard_app`) with both loaders (``--load_fast=true``: the Rust data server;
``false``: the Python loader). Measured:

- start-up: seconds from launching the process to the first answer of TensorBoard's own
  ``/data/runs`` listing every run, without and with the plugin, in ``--launches`` pairs of
  launches after one unmeasured launch (which fills the page cache). Single launches scatter
  by tens of percent on a shared machine, more than the 10% target, so the figure is the
  median of the pairs' ratios with a bootstrap 95% interval, and the verdict says "met" or
  "missed" only when the whole interval agrees. Also, with the plugin, the seconds to the first
  ``/data/plugin/metricsdiag/runs`` that lists every run with every step (all data loaded);
- latency: median and p95 of ``/runs``, ``/confusion``, ``/pr`` and ``/diagnostics`` (random
  run, step and class each time) once everything is loaded: ``--requests`` per route, or as
  many as fit in ``ROUTE_BUDGET_S`` when the route is slow.

Example records (``--only examples``, a logdir of its own): `EXAMPLE_RUNS` runs x
`EXAMPLE_EPOCHS` epochs of `EXAMPLE_CLASSES` classes x `EXAMPLE_ROWS` validation examples
with string ids and text previews, written by `MetricsDiagWriter`; median and p95 of warm
``/examples`` (a random run, step and non-empty cell each time; warm: each step answered once
before), ``/flips`` and ``/label_issues`` with both loaders, against the 50 ms target of
``/examples``.

Run: ``python bench/backend_latency.py`` (``--quick``: 10 runs x 50 epochs, fewer requests;
``--logdir DIR`` keeps the written logdir there, and that of the example records in
``DIR_examples``, and reuses them on the next run; ``--only
startup|latency|examples`` measures one of the three).
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
from _common import REPO_ROOT, describe_machine, percentile

RUNS, QUICK_RUNS = 100, 10
EPOCHS, QUICK_EPOCHS = 300, 50
REQUESTS, QUICK_REQUESTS = 100, 30
# Pairs of start-up launches per loader: a Rust start takes ~0.7 s, a Python one ~4 s.
LAUNCHES = {"true": 40, "false": 15}
QUICK_LAUNCHES = 2
BOOTSTRAP_RESAMPLES = 10_000
CLASSES = 10
EXAMPLES = 200
WRITERS = 2
STARTUP_TIMEOUT_S = 600
ROUTE_BUDGET_S = 60
POLL_S = 0.02  # start-up resolution: a tenth of a second would be 10% of a Rust start
TARGET_MEDIAN_MS = 50
TARGET_STARTUP_RATIO = 1.10
ROUTE_PREFIX = "/data/plugin/metricsdiag"
LOADERS = ("true", "false")
EXAMPLE_RUNS, EXAMPLE_EPOCHS, EXAMPLE_CLASSES, EXAMPLE_ROWS = 4, 10, 1000, 10_000
APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_tensorboard_app.py")
COMPLETE_MARKER = "COMPLETE"


def write_run(log_dir, epochs, seed):
    """One run written as `MetricsDiagCallback` would: evaluations and logs every epoch."""
    import tensorflow as tf

    from tb_metricsdiag import summary

    rng = np.random.default_rng(seed)
    names = ["class_%d" % k for k in range(CLASSES)]
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for epoch in range(epochs):
            skill = epoch / epochs
            for split in ("validation", "train"):
                labels = rng.integers(0, CLASSES, size=EXAMPLES)
                logits = rng.normal(size=(EXAMPLES, CLASSES)).astype(np.float32)
                logits[np.arange(EXAMPLES), labels] += 3 * skill
                summary.write_evaluation(
                    labels, logits, step=epoch, split=split, class_names=names, from_logits=True
                )
            loss = 2.0 / (1 + skill)
            summary.write_logs(
                {
                    "loss": loss,
                    "val_loss": loss * 1.1,
                    "accuracy": skill,
                    "val_accuracy": skill * 0.9,
                },
                step=epoch,
            )
    writer.close()


def write_logdir(logdir, runs, epochs):
    from tb_metricsdiag.format import schema

    marker = os.path.join(logdir, COMPLETE_MARKER)
    # Reused only if written at this size and in this format version.
    description = "%d %d format %d" % (runs, epochs, schema.FORMAT_VERSION)
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == description:
                print("reusing %s (%d runs x %d epochs)" % (logdir, runs, epochs))
                return
        # Written by this script at another size or format: written again from scratch.
        os.remove(marker)
        for name in os.listdir(logdir):
            if name.startswith("run_"):
                shutil.rmtree(os.path.join(logdir, name))
    if os.listdir(logdir):
        raise SystemExit(
            "%s holds files this script did not write; give an empty directory" % logdir
        )
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(WRITERS) as pool:
        jobs = [
            pool.submit(write_run, os.path.join(logdir, "run_%03d" % r), epochs, r)
            for r in range(runs)
        ]
        for job in jobs:
            job.result()
    with open(marker, "w") as f:
        f.write(description)
    size = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(logdir) for f in files
    )
    print(
        "wrote %d runs x %d epochs x %d classes in %.0f s: %.0f MB"
        % (runs, epochs, CLASSES, time.perf_counter() - start, size / 1e6)
    )


def write_example_run(log_dir, seed):
    """One run of `MetricsDiagWriter` evaluations with example records (ids, text previews)."""
    from tb_metricsdiag import MetricsDiagWriter

    rng = np.random.default_rng(seed)
    ids = ["example-%05d" % i for i in range(EXAMPLE_ROWS)]
    texts = ["the text of example %d" % i for i in range(EXAMPLE_ROWS)]
    with MetricsDiagWriter(log_dir) as writer:
        for epoch in range(EXAMPLE_EPOCHS):
            labels = rng.integers(0, EXAMPLE_CLASSES, size=EXAMPLE_ROWS)
            logits = rng.normal(size=(EXAMPLE_ROWS, EXAMPLE_CLASSES)).astype(np.float32)
            logits[np.arange(EXAMPLE_ROWS), labels] += 2 + 0.4 * epoch
            writer.add_evaluation(
                labels, logits, epoch, from_logits=True, example_ids=ids, previews=texts
            )
            writer.add_logs({"loss": 1.0 / (epoch + 1), "val_loss": 1.1 / (epoch + 1)}, epoch)


def write_example_logdir(logdir):
    from tb_metricsdiag.format import schema

    marker = os.path.join(logdir, COMPLETE_MARKER)
    description = "examples %d %d %d %d format %d" % (
        EXAMPLE_RUNS,
        EXAMPLE_EPOCHS,
        EXAMPLE_CLASSES,
        EXAMPLE_ROWS,
        schema.FORMAT_VERSION,
    )
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == description:
                print("reusing %s" % logdir)
                return
        raise SystemExit("%s holds another logdir; give an empty directory" % logdir)
    if os.listdir(logdir):
        raise SystemExit("%s holds files this script did not write; give an empty one" % logdir)
    start = time.perf_counter()
    for r in range(EXAMPLE_RUNS):
        write_example_run(os.path.join(logdir, "run_%03d" % r), r)
    with open(marker, "w") as f:
        f.write(description)
    print(
        "wrote %d runs x %d epochs x %d classes x %d examples with example records in %.0f s"
        % (EXAMPLE_RUNS, EXAMPLE_EPOCHS, EXAMPLE_CLASSES, EXAMPLE_ROWS, time.perf_counter() - start)
    )


def example_latencies(base, requests, rng):
    """{route: (seconds, statuses)} of warm ``/examples``, ``/flips``, ``/label_issues``."""
    names = ["run_%03d" % r for r in range(EXAMPLE_RUNS)]

    def query(route, **params):
        return "%s%s?%s" % (ROUTE_PREFIX, route, urllib.parse.urlencode(params))

    cells = {}
    for run in names:
        for step in range(EXAMPLE_EPOCHS):
            _, body, _ = get(base, query("/confusion", run=run, step=step))
            cells[(run, step)] = list(zip(body["cells"]["rows"], body["cells"]["cols"]))
            get(base, query("/examples", run=run, step=step, true=0, pred=0))  # warm the step
            get(base, query("/label_issues", run=run, step=step))
            get(base, query("/flips", run=run, step=step, other_step=max(step - 1, 0)))

    def cell():
        run, step = names[rng.integers(len(names))], int(rng.integers(EXAMPLE_EPOCHS))
        true, pred = cells[(run, step)][rng.integers(len(cells[(run, step)]))]
        return query("/examples", run=run, step=step, true=true, pred=pred)

    def run_step(route, **extra):
        run, step = names[rng.integers(len(names))], int(rng.integers(1, EXAMPLE_EPOCHS))
        return query(route, run=run, step=step, **extra)

    makers = {
        "/examples": cell,
        "/label_issues": lambda: run_step("/label_issues"),
        "/flips": lambda: run_step("/flips"),
    }
    return timed_requests(base, makers, requests)


def measure_examples(logdir, requests, rng):
    os.makedirs(logdir, exist_ok=True)
    write_example_logdir(logdir)
    for load_fast in LOADERS:
        print("--load_fast=%s, example records" % load_fast)
        with Server(logdir, load_fast, with_plugin=True) as server:
            loaded = server.wait_for(
                ROUTE_PREFIX + "/runs", plugin_runs_ready(EXAMPLE_RUNS, EXAMPLE_EPOCHS)
            )
            print("  every step of every run served %.2f s after launch" % loaded)
            for route, (times, statuses) in example_latencies(server.base, requests, rng).items():
                print("  %-13s %s" % (route, latency_summary(times, statuses)))


SLICE_RUNS, SLICE_EPOCHS, SLICE_CLASSES, SLICE_ROWS, SLICE_VALUES = 2, 5, 10, 10_000, 20


def write_slice_logdir(logdir):
    """Runs of `MetricsDiagWriter` evaluations with one group key of 20 values (issue 26)."""
    from tb_metricsdiag import MetricsDiagWriter

    for r in range(SLICE_RUNS):
        rng = np.random.default_rng(r)
        sites = rng.integers(0, SLICE_VALUES, size=SLICE_ROWS)
        with MetricsDiagWriter(os.path.join(logdir, "run_%03d" % r)) as writer:
            for epoch in range(SLICE_EPOCHS):
                labels = rng.integers(0, SLICE_CLASSES, size=SLICE_ROWS)
                logits = rng.normal(size=(SLICE_ROWS, SLICE_CLASSES)).astype(np.float32)
                logits[np.arange(SLICE_ROWS), labels] += 1 + 0.4 * epoch
                writer.add_evaluation(
                    labels, logits, epoch, from_logits=True, groups={"site": sites}
                )


def measure_slices(logdir, requests, rng):
    """Warm ``/slices`` (20 slices at 10 classes) on both loaders."""
    os.makedirs(logdir, exist_ok=True)
    write_slice_logdir(logdir)
    names = ["run_%03d" % r for r in range(SLICE_RUNS)]

    def query(**params):
        return "%s/slices?%s" % (ROUTE_PREFIX, urllib.parse.urlencode(params))

    for load_fast in LOADERS:
        print("--load_fast=%s, slices" % load_fast)
        with Server(logdir, load_fast, with_plugin=True) as server:
            server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(SLICE_RUNS, SLICE_EPOCHS))
            for run in names:
                for step in range(SLICE_EPOCHS):
                    get(server.base, query(run=run, step=step, key="site"))  # warm

            def pick():
                run = names[rng.integers(len(names))]
                return query(run=run, step=int(rng.integers(SLICE_EPOCHS)), key="site")

            for route, (times, statuses) in timed_requests(
                server.base, {"/slices": pick}, requests
            ).items():
                print("  %-13s %s" % (route, latency_summary(times, statuses)))


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(base, path):
    """(status, parsed JSON or None, seconds) of one GET."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            body, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    seconds = time.perf_counter() - start
    try:
        return status, json.loads(body), seconds
    except ValueError:
        return status, None, seconds


class Server:
    """A ``tensorboard`` process on a free port, ended on exit."""

    def __init__(self, logdir, load_fast, with_plugin):
        self.base = "http://127.0.0.1:%d" % _free_port()
        command = [
            sys.executable,
            APP,
            "with" if with_plugin else "without",
            "--logdir",
            logdir,
            "--host",
            "127.0.0.1",
            "--port",
            self.base.rsplit(":", 1)[1],
            "--load_fast",
            load_fast,
        ]
        env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        self.log = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_for(self, path, ready):
        """Seconds since launch until ``ready(status, body)`` holds for ``path``."""
        deadline = self.started + STARTUP_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, body, _ = get(self.base, path)
                if ready(status, body):
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(POLL_S)
        self.log.seek(0)
        raise RuntimeError(
            "tensorboard never answered %s:\n%s" % (path, self.log.read()[-3000:].decode())
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        self.log.close()


def core_runs_ready(runs):
    return lambda status, body: status == 200 and isinstance(body, list) and len(body) >= runs


def plugin_runs_ready(runs, epochs):
    def ready(status, body):
        if status != 200 or not body:
            return False
        entries = body.get("runs", [])
        return len(entries) >= runs and all(len(e.get("steps", [])) == epochs for e in entries)

    return ready


def startup_seconds(logdir, load_fast, runs, launches):
    """``[(without, with)]``: seconds to a ``/data/runs`` listing every run, one pair of
    launches after another (which of the two goes first alternates), after one unmeasured
    launch. Pairs, because this machine's speed drifts over minutes: each pair compares two
    launches made under nearly the same conditions."""
    with Server(logdir, load_fast, with_plugin=False) as server:
        server.wait_for("/data/runs", core_runs_ready(runs))
    pairs = []
    for launch in range(launches):
        seconds = {}
        for with_plugin in (False, True) if launch % 2 == 0 else (True, False):
            with Server(logdir, load_fast, with_plugin) as server:
                seconds[with_plugin] = server.wait_for("/data/runs", core_runs_ready(runs))
        pairs.append((seconds[False], seconds[True]))
    return pairs


def ratio_and_interval(pairs, rng, resamples=BOOTSTRAP_RESAMPLES):
    """The median of the pairs' ratios (with / without) and a bootstrap 95% interval of it."""
    ratios = np.array([with_plugin / alone for alone, with_plugin in pairs])
    picks = rng.integers(0, ratios.size, size=(resamples, ratios.size))
    medians = np.median(ratios[picks], axis=1)
    return float(np.median(ratios)), tuple(np.percentile(medians, [2.5, 97.5]))


def startup_verdict(interval, target=TARGET_STARTUP_RATIO):
    low, high = interval
    if high <= target:
        return "met"
    if low > target:
        return "missed"
    return "undecided at this noise (more --launches)"


def route_latencies(base, runs, epochs, requests, rng):
    """{route: [seconds]} of warm requests with random parameters."""
    names = ["run_%03d" % r for r in range(runs)]

    def query(route, **params):
        return "%s%s?%s" % (ROUTE_PREFIX, route, urllib.parse.urlencode(params))

    makers = {
        "/runs": lambda: ROUTE_PREFIX + "/runs",
        "/confusion": lambda: query(
            "/confusion", run=rng.choice(names), step=int(rng.integers(epochs))
        ),
        "/pr": lambda: query(
            "/pr",
            run=rng.choice(names),
            step=int(rng.integers(epochs)),
            **{"class": int(rng.integers(CLASSES))},
        ),
        "/diagnostics": lambda: query("/diagnostics", run=rng.choice(names)),
    }
    for make in makers.values():
        get(base, make())  # first answer of each route: caches warm
    return timed_requests(base, makers, requests)


def timed_requests(base, makers, requests):
    """{route: (seconds, statuses)} of ``requests`` requests per route (``makers``: route ->
    a function making a request's path), or as many as fit in `ROUTE_BUDGET_S`.
    """
    result = {}
    for route, make in makers.items():
        times, statuses = [], set()
        deadline = time.perf_counter() + ROUTE_BUDGET_S
        while len(times) < requests and time.perf_counter() < deadline:
            status, _, seconds = get(base, make())
            times.append(seconds)
            statuses.add(status)
        result[route] = (times, statuses)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--logdir", help="where to write (and later reuse) the synthetic logdir")
    parser.add_argument("--requests", type=int, help="requests per route")
    parser.add_argument("--launches", type=int, help="pairs of start-up launches per loader")
    parser.add_argument(
        "--only", choices=("startup", "latency", "examples", "slices"), help="measure only this"
    )
    args = parser.parse_args()
    runs = QUICK_RUNS if args.quick else RUNS
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    requests = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    print(describe_machine())
    with tempfile.TemporaryDirectory() as scratch:
        if args.only in (None, "slices"):
            measure_slices(scratch + "/slices", requests, np.random.default_rng(0))
            if args.only == "slices":
                return
        if args.only in (None, "examples"):
            # Beside --logdir, not in it: that one holds the latency logdir alone.
            logdir = args.logdir.rstrip("/") + "_examples" if args.logdir else scratch + "/examples"
            measure_examples(logdir, requests, np.random.default_rng(0))
            if args.only == "examples":
                return
        logdir = args.logdir or os.path.join(scratch, "logdir")
        os.makedirs(logdir, exist_ok=True)
        write_logdir(logdir, runs, epochs)
        rng = np.random.default_rng(0)
        for load_fast in LOADERS:
            print("--load_fast=%s" % load_fast)
            if args.only != "latency":
                launches = args.launches or (QUICK_LAUNCHES if args.quick else LAUNCHES[load_fast])
                pairs = startup_seconds(logdir, load_fast, runs, launches)
                alone, first = zip(*pairs)
                ratio, interval = ratio_and_interval(pairs, rng)
                print(
                    "  start-up to /data/runs listing every run, launch pairs: %d; median %.2f s"
                    " without the plugin (%s), %.2f s with it (%s)"
                    % (
                        launches,
                        percentile(alone, 50),
                        " ".join("%.2f" % s for s in alone),
                        percentile(first, 50),
                        " ".join("%.2f" % s for s in first),
                    )
                )
                print(
                    "  ratio with/without: median of the pairs %.3f, 95%% interval %.3f-%.3f; target"
                    " <= %.2f: %s"
                    % (
                        ratio,
                        interval[0],
                        interval[1],
                        TARGET_STARTUP_RATIO,
                        startup_verdict(interval),
                    )
                )
            if args.only == "startup":
                continue
            with Server(logdir, load_fast, with_plugin=True) as server:
                loaded = server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(runs, epochs))
                print("  every step of every run served %.2f s after launch" % loaded)
                for route, (times, statuses) in route_latencies(
                    server.base, runs, epochs, requests, rng
                ).items():
                    print("  %-13s %s" % (route, latency_summary(times, statuses)))


def latency_summary(times, statuses):
    """Median and p95 of request ``times`` (seconds), their count and HTTP statuses, and
    whether the median is over `TARGET_MEDIAN_MS`, as one line's text.
    """
    median = 1000 * percentile(times, 50)
    return "median %7.1f ms  p95 %7.1f ms  (%d requests, HTTP %s)%s" % (
        median,
        1000 * percentile(times, 95),
        len(times),
        ",".join(str(s) for s in sorted(statuses)),
        "" if median <= TARGET_MEDIAN_MS else "  over the %d ms target" % TARGET_MEDIAN_MS,
    )


if __name__ == "__main__":
    main()

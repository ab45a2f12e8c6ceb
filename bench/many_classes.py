"""Many classes: bytes per epoch on disk and warm ``/confusion`` and ``/pr`` at 10, 100 and 1,000
classes, on both of TensorBoard's loaders.

For each class count, ``RUNS`` runs of ``EPOCHS`` validation epochs of ``EXAMPLES`` examples are
written with `MetricsDiagWriter` (a model that improves over the epochs: logits with the true
class raised). Measured:

- storage: the growth of a run's event file per epoch of one split (the confusion matrix, the
  threshold counts with AP and ROC AUC, the calibration bins, their metadata), beside what the
  confusion matrix alone takes encoded (format version 5) and as the dense integers (before);
- latency: ``tensorboard`` serving the logdir (`backend_latency.Server`, ``--load_fast=true``
  and ``false``); once every step of every run is served, the median and p95 of ``--requests``
  answers of ``/confusion`` (default answer: cells above 100 classes) and ``/pr`` (a random run,
  step and class each time), after one unmeasured answer of each; and the size of one answer.

- in process (the plugin's WSGI app over TensorBoard's Python loader, no server): the bytes of
  the confusion counts a run's history holds over its epochs (every split), and the median of
  ``--requests`` warm answers of ``/trajectories``, ``/diagnostics`` (its answer is kept, so
  the history and the rules are also timed uncached: ``history+rules``) and ``/compare`` (the
  first epoch against the last, default answer: the changed cells above 100 classes), with the
  size of one answer.

Run: ``python bench/many_classes.py`` (``--quick``: 1,000 classes only, fewer requests;
``--in-process``: only the storage and the in-process measurements).
"""

import argparse
import glob
import os
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
from _common import describe_machine, percentile
from backend_latency import ROUTE_PREFIX, Server, get, latency_summary, plugin_runs_ready

from tb_metricsdiag import MetricsDiagWriter, diagnostics
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.format import confusion_counts, integer_counts, schema

CLASS_COUNTS = (10, 100, 1000)
EXAMPLES = 10_000
RUNS = 2
EPOCHS = 10
REQUESTS, QUICK_REQUESTS = 60, 20
TARGET_BYTES = 256 * 1024
LOADERS = ("true", "false")


def evaluation(rng, num_classes, skill):
    labels = rng.integers(0, num_classes, size=EXAMPLES)
    logits = rng.normal(size=(EXAMPLES, num_classes)).astype(np.float32)
    logits[np.arange(EXAMPLES), labels] += skill
    return labels, logits


def write_runs(root, num_classes):
    """Writes the runs; returns (bytes per epoch, encoded confusion bytes, dense bytes)."""
    rng = np.random.default_rng(num_classes)
    growth = []
    for run in range(RUNS):
        with MetricsDiagWriter(os.path.join(root, "run_%d" % run)) as writer:
            path = None
            for step in range(EPOCHS):
                labels, logits = evaluation(rng, num_classes, 2 + 0.3 * step)
                writer.add_evaluation(labels, logits, step=step, from_logits=True)
                writer.flush()
                if path is None:
                    [path] = glob.glob(os.path.join(root, "run_%d" % run, "events.*"))
                    before = os.path.getsize(path)  # after the header and run description
            growth.append((os.path.getsize(path) - before) / (EPOCHS - 1))
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, logits.argmax(axis=1)), 1)
    encoded = len(confusion_counts.encode_confusion(matrix))
    return float(np.mean(growth)), encoded, integer_counts.compact_ints(matrix).nbytes


def latencies(base, num_classes, requests, rng):
    def query(route, **params):
        params.update(run="run_%d" % rng.integers(RUNS), step=int(rng.integers(EPOCHS)))
        return "%s%s?%s" % (ROUTE_PREFIX, route, urllib.parse.urlencode(params))

    makers = {
        "/confusion": lambda: query("/confusion"),
        "/pr": lambda: query("/pr", **{"class": int(rng.integers(num_classes))}),
    }
    result = {}
    for route, make in makers.items():
        path = make()
        get(base, path)  # caches warm
        with urllib.request.urlopen(base + path, timeout=60) as response:
            size = len(response.read())
        times, statuses = [], set()
        for _ in range(requests):
            status, _, seconds = get(base, make())
            times.append(seconds)
            statuses.add(status)
        result[route] = (times, statuses, size)
    return result


def _held_bytes(history):
    """Bytes of the confusion counts ``history`` holds (arrays, or O(C) totals: `nbytes`)."""
    return sum(
        counts.nbytes for by_step in history.confusions.values() for counts in by_step.values()
    )


def in_process(root, requests):
    """``(history bytes, {route: (times, size)})`` over the plugin's WSGI app, in process."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_metricsdiag.backend import plugin as plugin_lib

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0, "scalars": 0}
    )
    multiplexer.AddRunsFromDirectory(root)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, root)
    plugin = plugin_lib.MetricsDiagLoader().load(
        base_plugin.TBContext(logdir=root, data_provider=provider)
    )
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]))
    held = _held_bytes(reader_lib.Reader(provider).history("run_0"))

    def history_and_rules():
        diagnostics.evaluate(reader_lib.Reader(provider).history("run_0"))
        return b""

    def route(path, **params):
        def call():
            response = client.get(ROUTE_PREFIX + path, query_string=dict(params, run="run_0"))
            assert response.status_code == 200, response.get_data(as_text=True)
            return response.get_data()

        return call

    calls = {
        "/trajectories": route("/trajectories"),
        "/diagnostics": route("/diagnostics"),
        "history+rules": history_and_rules,
        "/compare": route("/compare", step=0, other_step=EPOCHS - 1),
    }
    result = {}
    for name, call in calls.items():
        size = len(call())  # warm
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        result[name] = (times, size)
    return held, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    requests = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    print(describe_machine())
    print("%d runs x %d validation epochs x %d examples per class count" % (RUNS, EPOCHS, EXAMPLES))
    rng = np.random.default_rng(0)
    for num_classes in (1000,) if args.quick else CLASS_COUNTS:
        with tempfile.TemporaryDirectory() as root:
            per_epoch, encoded, dense = write_runs(root, num_classes)
            print(
                "%4d classes: %8.0f bytes/epoch/split (target <= %d: %s); confusion %d bytes"
                " encoded, %d dense"
                % (
                    num_classes,
                    per_epoch,
                    TARGET_BYTES,
                    "met" if per_epoch <= TARGET_BYTES else "MISSED",
                    encoded,
                    dense,
                )
            )
            held, routes = in_process(root, requests)
            print(
                "  history of one run (%d epochs, validation): %d bytes of confusion counts"
                % (EPOCHS, held)
            )
            for name, (times, size) in routes.items():
                print(
                    "  in process          %-14s median %7.1f ms  p95 %7.1f ms  %8d bytes  (%d)"
                    % (
                        name,
                        1000 * percentile(times, 50),
                        1000 * percentile(times, 95),
                        size,
                        len(times),
                    )
                )
            if args.in_process:
                continue
            for load_fast in LOADERS:
                with Server(root, load_fast, with_plugin=True) as server:
                    server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(RUNS, EPOCHS))
                    for route, (times, statuses, size) in latencies(
                        server.base, num_classes, requests, rng
                    ).items():
                        print(
                            "  --load_fast=%-5s %-10s %8d bytes  %s"
                            % (load_fast, route, size, latency_summary(times, statuses))
                        )


if __name__ == "__main__":
    main()

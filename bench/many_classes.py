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

Run: ``python bench/many_classes.py`` (``--quick``: 1,000 classes only, fewer requests).
"""

import argparse
import glob
import os
import tempfile
import urllib.parse
import urllib.request

import numpy as np
from _common import describe_machine, percentile
from backend_latency import ROUTE_PREFIX, Server, get, plugin_runs_ready

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.format import codecs

CLASS_COUNTS = (10, 100, 1000)
EXAMPLES = 10_000
RUNS = 2
EPOCHS = 10
REQUESTS, QUICK_REQUESTS = 60, 20
TARGET_BYTES = 256 * 1024
TARGET_MEDIAN_MS = 50
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
    encoded = len(codecs.encode_confusion(matrix))
    return float(np.mean(growth)), encoded, codecs.compact_ints(matrix).nbytes


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int)
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
            for load_fast in LOADERS:
                with Server(root, load_fast, with_plugin=True) as server:
                    server.wait_for(ROUTE_PREFIX + "/runs", plugin_runs_ready(RUNS, EPOCHS))
                    for route, (times, statuses, size) in latencies(
                        server.base, num_classes, requests, rng
                    ).items():
                        median = 1000 * percentile(times, 50)
                        print(
                            "  --load_fast=%-5s %-10s median %6.1f ms  p95 %6.1f ms  %8d bytes"
                            "  (%d requests, HTTP %s)%s"
                            % (
                                load_fast,
                                route,
                                median,
                                1000 * percentile(times, 95),
                                size,
                                len(times),
                                ",".join(str(s) for s in sorted(statuses)),
                                ""
                                if median <= TARGET_MEDIAN_MS
                                else "  over the %d ms target" % TARGET_MEDIAN_MS,
                            )
                        )


if __name__ == "__main__":
    main()

"""The writer's own work for one epoch, in process CPU time: what every callback (Keras,
Lightning, Transformers) and `MetricsDiagWriter` spend after the evaluation's rows are in hand.

One `MetricsDiagWriter.add_checked_evaluation` of 10,000 rows x 10 classes of float32 softmax
scores (a model that favours the true class for 80% of the rows, 5% of the labels wrong), with
example records on (crossing samples included) and one slice key of 20 values, written to an
event file; the evaluation is checked once beforehand (`inputs.check_evaluation`, the input
checks are not part of this work). The first write (label distribution, run description) is
left out; then `--repeats` steady epochs, each timed with `time.process_time`. The parts are
timed the same way, each on its own: the counting (`Evaluation.counts`), the example records,
the slices, the counts' records and the framing of one epoch's records.

``--compare PATH`` runs the same measurement on the checkout at PATH (e.g. a worktree of main)
in a child process, alternating with this checkout's, ``--rounds`` times each, so both see the
same load; ``--profile`` prints a cProfile of the steady epochs instead.

    python bench/epoch_write.py [--repeats 30] [--rounds 3] [--compare /tmp/main-checkout]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import REPO_ROOT  # noqa: F401  (puts this checkout first on sys.path)

NUM_ROWS, NUM_CLASSES, SLICE_VALUES = 10_000, 10, 20


def _data(seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, NUM_CLASSES, NUM_ROWS)
    favoured = np.where(rng.random(NUM_ROWS) < 0.8, truth, rng.integers(0, NUM_CLASSES, NUM_ROWS))
    labels = np.where(rng.random(NUM_ROWS) < 0.05, rng.integers(0, NUM_CLASSES, NUM_ROWS), truth)
    logits = rng.normal(0.0, 1.0, (NUM_ROWS, NUM_CLASSES))
    logits[np.arange(NUM_ROWS), favoured] += 2.5
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)
    groups = {"slice": ["region_%02d" % value for value in rng.integers(0, SLICE_VALUES, NUM_ROWS)]}
    return labels, scores, groups


def _cpu(fn):
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(repeats, profile=False):
    """``{part: [CPU seconds]}`` of ``repeats`` steady epochs of this process's checkout."""
    import numpy as np

    from tb_metricsdiag.writing import example_recorder, inputs, slice_recorder
    from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

    labels, scores, groups = _data()
    times = {
        name: []
        for name in ("epoch", "counting", "example records", "slices", "counts records", "framing")
    }
    with tempfile.TemporaryDirectory() as log_dir:
        writer = MetricsDiagWriter(log_dir)
        framing_writer = MetricsDiagWriter(os.path.join(log_dir, "framing"))
        evaluation = inputs.check_evaluation(labels, scores, "bench", groups=groups)
        writer.add_checked_evaluation(evaluation, step=0)  # the first write: run description
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for step in range(1, repeats + 1):
                writer.add_checked_evaluation(evaluation, step=step)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return None
        thresholds, layout = writer.thresholds, evaluation.layout
        positions = np.arange(evaluation.size)
        for step in range(1, repeats + 1):
            times["epoch"].append(
                _cpu(lambda: writer.add_checked_evaluation(evaluation, step=step))  # noqa: B023
            )
            result = [None]
            times["counting"].append(
                _cpu(lambda: result.__setitem__(0, evaluation.counts(thresholds)))
            )
            kept, epoch_records = [None], []

            def example_records():
                examples = example_recorder.EpochExamples(
                    layout, evaluation.size, thresholds=thresholds
                )
                examples.update(
                    positions, evaluation.targets, evaluation.scores, evaluation.predicted
                )
                epoch_records.extend(writer._examples.records("validation", examples))
                kept[0] = examples.cells.examples(writer._examples.budget)["position"]

            times["example records"].append(_cpu(example_records))
            values = slice_recorder.SliceValues()

            def slices():
                epoch = slice_recorder.EpochSlices(
                    layout, thresholds, values, values.slice_codes(evaluation.groups)
                )
                epoch.update(positions, evaluation.targets, evaluation.scores, evaluation.predicted)
                epoch_records.append(epoch.record("validation", layout.class_names, kept[0]))

            times["slices"].append(_cpu(slices))
            written = [None]
            times["counts records"].append(
                _cpu(
                    lambda: written.__setitem__(0, writer._counts_records(result[0], "validation"))
                )
            )
            all_records = written[0] + epoch_records
            times["framing"].append(
                _cpu(lambda: framing_writer._write_records(all_records, step))  # noqa: B023
            )
        writer.close()
        framing_writer.close()
    return times


def _summary(times):
    return {
        name: (min(values) * 1e3, statistics.median(values) * 1e3) for name, values in times.items()
    }


def _print(label, summary):
    print("  %s" % label)
    for name, (best, median) in summary.items():
        print("    %-16s best %7.2f ms   median %7.2f ms (CPU)" % (name, best, median))


def _child(checkout, repeats):
    """The same measurement on the checkout at ``checkout``, in a child process."""
    env = dict(os.environ, PYTHONPATH=checkout)
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--json", "--repeats", str(repeats)],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit("the measurement of %s failed:\n%s" % (checkout, done.stderr))
    return json.loads(done.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", metavar="PATH", help="a second checkout, e.g. main's")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare and not os.path.isdir(os.path.join(args.compare, "tb_metricsdiag")):
        parser.error("--compare: %s holds no tb_metricsdiag package" % args.compare)
    if os.environ.get("PYTHONPATH"):  # a child of --compare: that checkout first
        sys.path.insert(0, os.environ["PYTHONPATH"])
    if args.profile:
        measure(args.repeats, profile=True)
        return
    if args.json:
        print(json.dumps(_summary(measure(args.repeats))))
        return
    print(
        "one epoch's writer work, %d rows x %d classes, one key of %d slice values, example"
        " records on; %d epochs per round; load average %s"
        % (NUM_ROWS, NUM_CLASSES, SLICE_VALUES, args.repeats, os.getloadavg())
    )
    checkouts = [("this", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    if args.compare:
        checkouts.append(("compare", os.path.abspath(args.compare)))
    for round_index in range(args.rounds):
        for label, checkout in checkouts:
            summary = _child(checkout, args.repeats)
            _print(
                "round %d, %s (%s), load %.1f"
                % (round_index + 1, label, checkout, os.getloadavg()[0]),
                summary,
            )


if __name__ == "__main__":
    main()

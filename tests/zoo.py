"""The "zoo" of the hostile-input tests: event files written record by record, good runs beside
every kind of damage and hostile name, and the checks that the in-process plugin and real
TensorBoard servers (both loaders) must pass on it.

Events are written without TensorFlow (`record_writer.RecordWriter`), so the tests know each
record's bytes and can truncate, corrupt or craft exactly one.
"""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import hostile_examples
import numpy as np
import pytest
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins import base_plugin
from tensorboard.summary.writer import record_writer
from tensorboard.util import tensor_util

from tb_metricsdiag.backend import plugin as plugin_lib
from tb_metricsdiag.format import metadata, schema, threshold_counts

PREFIX = "/data/plugin/metricsdiag"
JSON_ROUTES = ["/runs", "/confusion", "/pr", "/curves", "/diagnostics"]
WORKTREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP_TIMEOUT_S = 120
THRESHOLDS = np.linspace(0.0, 1.0, 11)
GOOD_STEPS = 5

XSS = "<img src=x onerror=alert(1)>"
HOSTILE_CLASSES = [
    XSS,
    "say \"hi\" & 'bye' \\ </script>",
    "line\nbreak\r\ttab\x00nul",
    "L" * 10000,
    "ünïcødé ✓ 日本語 🙂 \u202eevil",
]
HOSTILE_KEY = "<b>loss</b>\"'\n"
HOSTILE_RUNS = [
    XSS,
    "quote\"s 'run' `tick`",
    "new\nline run",
    "日本語 🙂 run",
    "a&run=b#c%2F?d",
    "long/" + "N" * 200 + "/" + "M" * 200,
]


# -- writing events ---------------------------------------------------------------------


def framed(event):
    """The framed TFRecord bytes of one event."""
    buffer = io.BytesIO()
    record_writer.RecordWriter(buffer).write(event.SerializeToString())
    return buffer.getvalue()


def file_version():
    return framed(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2"))


def tensor_event(step, tag, array, summary_metadata):
    """An event of one summary value: ``array``, or a ``TensorProto`` taken as it is."""
    tensor = array if isinstance(array, tensor_pb2.TensorProto) else None
    if tensor is None:
        tensor = tensor_util.make_tensor_proto(array)
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=summary_metadata)
    return event_pb2.Event(
        step=step, wall_time=1000.0 + step, summary=summary_pb2.Summary(value=[value])
    )


def plugin_md(
    kind, split=None, class_names=None, thresholds=None, key=None, overrides=None, encoding=None
):
    md = metadata.create_summary_metadata(
        kind, split, class_names, thresholds, key, encoding=encoding
    )
    if overrides:
        content = json.loads(md.plugin_data.content)
        content.update(overrides)
        md.plugin_data.content = json.dumps(content).encode()
    return md


def step_counts(step, num_classes, seed=0):
    """(confusion [C, C], threshold counts [C, 2, T], AP [C]) of one epoch of `step_records`."""
    rng = np.random.default_rng(seed * 1000 + step)
    confusion = rng.integers(0, 20, size=(num_classes, num_classes)).astype(np.int32)
    tp = np.sort(rng.integers(0, 10, size=(num_classes, THRESHOLDS.size)), axis=1)[:, ::-1]
    fp = np.sort(rng.integers(0, 10, size=(num_classes, THRESHOLDS.size)), axis=1)[:, ::-1]
    return confusion, np.stack([tp, fp], axis=1).astype(np.int32), rng.random(num_classes)


def encoded_counts_event(
    step,
    split,
    counts_value,
    class_names,
    encoding=schema.THRESHOLD_COUNTS_ENCODING,
    with_average_precision=False,
):
    """A threshold-counts event of format version 2 (3 ``with_average_precision``) holding
    ``counts_value`` bytes."""
    md = plugin_md(schema.KIND_THRESHOLD_COUNTS, split, class_names, THRESHOLDS, encoding=encoding)
    if with_average_precision:
        md = metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            split,
            class_names,
            THRESHOLDS,
            encoding=encoding,
            average_precision="exact",
        )
    return tensor_event(
        step,
        schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS),
        np.array(counts_value, dtype=object),
        md,
    )


def step_records(
    step, num_classes, class_names=None, split="validation", seed=0, extra=(), encoded=False
):
    """Records of one epoch of a consistent run: confusion, threshold counts, AP, logs, as the
    current format writes them (``encoded``: version 3's counts with the AP inside, one JSON
    logs series) or as version 1 did (integer counts, a series of AP, a scalar a log value)."""
    confusion, counts, average_precision = step_counts(step, num_classes, seed)
    records = [
        tensor_event(
            step,
            schema.split_tag(split, schema.KIND_CONFUSION),
            confusion,
            plugin_md(schema.KIND_CONFUSION, split, class_names),
        )
    ]
    if encoded:
        records.append(
            encoded_counts_event(
                step,
                split,
                threshold_counts.encode_threshold_counts(counts, average_precision),
                class_names,
                with_average_precision=True,
            )
        )
    else:
        records += [
            tensor_event(
                step,
                schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS),
                counts,
                plugin_md(schema.KIND_THRESHOLD_COUNTS, split, class_names, THRESHOLDS),
            ),
            tensor_event(
                step,
                schema.split_tag(split, schema.KIND_AVERAGE_PRECISION),
                average_precision,
                plugin_md(schema.KIND_AVERAGE_PRECISION, split, class_names),
            ),
        ]
    keys = ("loss", "val_loss") + tuple(extra)
    if encoded:
        logs = json.dumps({key: 1.0 / (step + 1) for key in keys})
        records.append(
            tensor_event(
                step,
                schema.LOGS_TAG,
                np.array(logs.encode(), dtype=object),
                plugin_md(schema.KIND_LOGS),
            )
        )
    else:
        for key in keys:
            records.append(
                tensor_event(
                    step,
                    schema.scalar_tag(key),
                    np.float32(1.0 / (step + 1)),
                    plugin_md(schema.KIND_SCALAR, key=key),
                )
            )
    return [framed(event) for event in records]


def write_run(logdir, run, chunks, name="events.out.tfevents.1000.reliab"):
    run_dir = os.path.join(logdir, *run.split("/"))
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, name)
    with open(path, "wb") as handle:
        handle.write(b"".join(chunks))
    return path


def good_run(
    logdir, run, num_classes=2, class_names=None, steps=GOOD_STEPS, extra=(), encoded=False
):
    chunks = [file_version()]
    for step in range(steps):
        chunks += step_records(step, num_classes, class_names, extra=extra, encoded=encoded)
    return write_run(logdir, run, chunks)


def build_zoo(logdir):
    """Good runs, damaged runs and hostile names; returns {run: expectation}."""
    good_run(logdir, "good", 2, ["neg", "pos"])
    good_run(logdir, "good3", 3, encoded=True)  # "good" keeps format version 1's counts

    # A run still being written: the last record is cut in half.
    chunks = [file_version()]
    for step in range(3):
        chunks += step_records(step, 2)
    half = step_records(3, 2)[0]
    write_run(logdir, "truncated", chunks + [half[: len(half) // 2]])

    # A corrupt record (a flipped payload byte: CRC mismatch) in the middle of the file.
    chunks = [file_version()]
    for step in range(4):
        records = step_records(step, 2)
        if step == 2:
            bad = bytearray(records[0])
            bad[len(bad) // 2] ^= 0xFF
            records[0] = bytes(bad)
        chunks += records
    write_run(logdir, "corrupt", chunks)

    # An empty events file, and one of random bytes.
    write_run(logdir, "empty", [])
    write_run(logdir, "garbage", [np.random.default_rng(3).bytes(4096)])

    # Written by a newer tb-metricsdiag.
    newer = schema.FORMAT_VERSION + 1
    event = tensor_event(
        0,
        schema.split_tag("validation", schema.KIND_CONFUSION),
        np.eye(2, dtype=np.int32),
        plugin_md(schema.KIND_CONFUSION, "validation", overrides={"version": newer}),
    )
    write_run(logdir, "future", [file_version(), framed(event)])

    # Only train-side counts.
    chunks = [file_version()]
    for step in range(3):
        chunks += step_records(step, 2, split="train")
    write_run(logdir, "train_only", chunks)

    # The class count changes midway: 3 classes for steps 0-1, 4 for steps 2-3.
    chunks = [file_version()]
    for step in range(4):
        classes = 3 if step < 2 else 4
        chunks += step_records(step, classes, ["c%d" % i for i in range(classes)])
    write_run(logdir, "class_change", chunks)

    # Threshold counts whose shape does not fit the confusion matrix.
    chunks = [file_version(), step_records(0, 2)[0]]
    counts = np.zeros((3, 2, THRESHOLDS.size), np.int32)
    chunks.append(
        framed(
            tensor_event(
                0,
                schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
                counts,
                plugin_md(schema.KIND_THRESHOLD_COUNTS, "validation", None, THRESHOLDS),
            )
        )
    )
    write_run(logdir, "counts_mismatch", chunks)

    # A threshold grid that claims a trillion points (must not be materialised).
    chunks = [file_version(), step_records(0, 2)[0]]
    chunks.append(
        framed(
            tensor_event(
                0,
                schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
                counts[:2],
                plugin_md(
                    schema.KIND_THRESHOLD_COUNTS,
                    "validation",
                    None,
                    THRESHOLDS,
                    overrides={"thresholds": {"start": 0.0, "stop": 1.0, "num": 10**12}},
                ),
            )
        )
    )
    write_run(logdir, "huge_grid", chunks)

    # Encoded threshold counts that are not zlib data, and counts in an encoding from the future.
    for run, payload, encoding in (
        ("bad_payload", b"H" + b"not zlib", schema.THRESHOLD_COUNTS_ENCODING),
        ("unknown_encoding", b"H", "zstd_something"),
    ):
        chunks = [file_version(), step_records(0, 2)[0]]
        chunks.append(framed(encoded_counts_event(0, "validation", payload, None, encoding)))
        write_run(logdir, run, chunks)

    # Good counts, but logs that are not a JSON object of numbers.
    chunks = [file_version()]
    for step, text in enumerate((b'{"loss": 0.5}', b'{"loss": "high"}', b"\xff")):
        chunks += step_records(step, 2)[:3]
        chunks.append(
            framed(
                tensor_event(
                    step, schema.LOGS_TAG, np.array(text, dtype=object), plugin_md(schema.KIND_LOGS)
                )
            )
        )
    write_run(logdir, "bad_logs", chunks)

    # A confusion "matrix" of strings, and malformed JSON in run info / events.
    bad = [
        tensor_event(
            0,
            schema.split_tag("validation", schema.KIND_CONFUSION),
            np.array([["a", "b"], ["c", "d"]], dtype=object),
            plugin_md(schema.KIND_CONFUSION, "validation"),
        ),
        tensor_event(
            0,
            schema.RUN_INFO_TAG,
            np.array(b"{not json", dtype=object),
            plugin_md(schema.KIND_RUN_INFO),
        ),
        tensor_event(
            0, schema.EVENTS_TAG, np.array(b"\xff\xfe", dtype=object), plugin_md(schema.KIND_EVENTS)
        ),
    ]
    write_run(logdir, "bad_tensors", [file_version()] + [framed(e) for e in bad])

    for run in HOSTILE_RUNS:
        good_run(logdir, run, len(HOSTILE_CLASSES), HOSTILE_CLASSES, steps=2, extra=(HOSTILE_KEY,))
    build_crafted_runs(logdir)
    hostile_examples.build_hostile_example_runs(logdir)


# Bytes the `bomb` run's threshold counts inflate to, from a payload a thousandth of that.
BOMB_INFLATED_BYTES = 256 << 20

# Levels of nesting of the deep JSON documents of the crafted runs.
DEEP = 100_000


def deflate_bomb(inflated_bytes=BOMB_INFLATED_BYTES):
    """Encoded threshold counts (uint16 deltas) whose zlib stream inflates to
    ``inflated_bytes`` zeros, compressed in chunks so that the zeros are never held."""
    deflate = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [deflate.compress(chunk) for _ in range(inflated_bytes // len(chunk))]
    return b"H" + b"".join(parts) + deflate.flush()


def deep_json(depth=DEEP):
    return "[" * depth + "]" * depth


def build_crafted_runs(logdir):
    """Runs crafted to exhaust memory or the stack of a reader that trusts them; each beside
    a good run in the zoo. Their expectations are `CRAFTED_UNREADABLE` and `CRAFTED_NO_PR`."""
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    confusion_md = plugin_md(schema.KIND_CONFUSION, "validation")

    # Threshold counts of 2 classes x 11 thresholds that inflate to hundreds of MB.
    chunks = [file_version()] + step_records(0, 2)[:1]
    chunks.append(framed(encoded_counts_event(0, "validation", deflate_bomb(), None)))
    write_run(logdir, "bomb", chunks)

    # Threshold counts that are negative, and counts that grow with the threshold.
    for run, counts in (
        ("negative_counts", -np.ones((2, 2, THRESHOLDS.size), np.int32)),
        ("growing_counts", np.tile(np.arange(THRESHOLDS.size, dtype=np.int32), (2, 2, 1))),
    ):
        event = tensor_event(
            0,
            schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
            counts,
            plugin_md(schema.KIND_THRESHOLD_COUNTS, "validation", None, THRESHOLDS),
        )
        write_run(logdir, run, [file_version()] + step_records(0, 2)[:1] + [framed(event)])

    # Class names nested DEEP levels in the plugin content of the confusion matrices.
    deep_md = plugin_md(schema.KIND_CONFUSION, "validation")
    content = json.loads(deep_md.plugin_data.content)
    deep_md.plugin_data.content = (
        json.dumps(content)[:-1] + ', "class_names": ' + deep_json() + "}"
    ).encode()
    event = tensor_event(0, confusion_tag, np.eye(2, dtype=np.int32), deep_md)
    write_run(logdir, "deep_names", [file_version(), framed(event)])

    # Good counts; deep JSON in the run information, the logs and the recorded events.
    chunks = [file_version()] + step_records(0, 2, encoded=True)
    for tag, kind in (
        (schema.RUN_INFO_TAG, schema.KIND_RUN_INFO),
        (schema.LOGS_TAG, schema.KIND_LOGS),
        (schema.EVENTS_TAG, schema.KIND_EVENTS),
    ):
        text = np.array(deep_json().encode(), dtype=object)
        chunks.append(framed(tensor_event(1, tag, text, plugin_md(kind))))
    write_run(logdir, "deep_json", chunks)

    # A confusion matrix declaring [100000, 100000] that holds one value.
    huge = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_INT32,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=100_000)] * 2
        ),
        int_val=[1],
    )
    write_run(
        logdir,
        "huge_shape",
        [file_version(), framed(tensor_event(0, confusion_tag, huge, confusion_md))],
    )

    # Negative counts in a confusion matrix.
    negative = np.array([[5, -2], [1, 3]], np.int32)
    write_run(
        logdir,
        "negative_confusion",
        [file_version(), framed(tensor_event(0, confusion_tag, negative, confusion_md))],
    )

    # A hundred thousand class names for a 2 x 2 matrix.
    many_md = plugin_md(schema.KIND_CONFUSION, "validation", ["x"] * 100_000)
    write_run(
        logdir,
        "many_names",
        [
            file_version(),
            framed(tensor_event(0, confusion_tag, np.eye(2, dtype=np.int32), many_md)),
        ],
    )

    # Two trainings in one log_dir: steps 0-3, then 0-1 again, each epoch's matrix its own.
    chunks = [file_version()]
    for step in range(4):
        chunks += step_records(step, 2, seed=1, encoded=True)
    for step in range(2):
        chunks += step_records(step, 2, seed=2, encoded=True)
    write_run(logdir, "restarted", chunks)

    # Version 3 counts whose AP was computed on the threshold grid.
    confusion, counts, average_precision = step_counts(0, 2)
    md = metadata.create_summary_metadata(
        schema.KIND_THRESHOLD_COUNTS,
        "validation",
        None,
        THRESHOLDS,
        encoding=schema.THRESHOLD_COUNTS_ENCODING,
        average_precision="threshold_grid",
    )
    event = tensor_event(
        0,
        schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
        np.array(threshold_counts.encode_threshold_counts(counts, average_precision), dtype=object),
        md,
    )
    write_run(logdir, "grid_ap", [file_version()] + step_records(0, 2)[:1] + [framed(event)])


# Crafted runs that /runs lists with an "error" (and no steps), and /confusion answers 422.
CRAFTED_UNREADABLE = {"deep_names", "huge_shape", "negative_confusion", "many_names"}
# Crafted runs whose confusion matrices are served but whose threshold counts are refused.
CRAFTED_NO_PR = {"bomb", "negative_counts", "growing_counts"}


# Runs whose every JSON route must answer 200, with the steps /runs must list.
GOOD = {
    "good": range(5),
    "good3": range(5),
    "train_only": range(3),
    "class_change": range(4),
    "truncated": range(3),
    "bad_logs": range(3),
}
# Runs whose stored data is unreadable: /runs lists them with an "error".
UNREADABLE = {"future", "bad_tensors"}


# -- the plugin in-process --------------------------------------------------------------


def make_plugin(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = provider_lib.MultiplexerDataProvider(multiplexer, logdir)
    context = base_plugin.TBContext(logdir=logdir, data_provider=provider)
    return plugin_lib.MetricsDiagLoader().load(context)


def strict_json(body):
    def refuse(constant):
        raise AssertionError("non-strict JSON constant %s" % constant)

    return json.loads(body, parse_constant=refuse)


def client_get(client, route, params=None, raw_query=None):
    """(status, JSON body) of a GET through the werkzeug client; JSON is checked strictly."""
    if raw_query is not None:
        response = client.get(PREFIX + route + "?" + raw_query)
    else:
        response = client.get(PREFIX + route, query_string=params or {})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    return response.status_code, strict_json(response.get_data(as_text=True))


def runs_of(get):
    status, body = get("/runs", {})
    assert status == 200, body
    return {entry["run"]: entry for entry in body["runs"]}


# -- 2. damaged event files -------------------------------------------------------------


def check_damaged_logdir(get):
    """The assertions shared by the in-process client and the real servers."""
    runs = runs_of(get)
    for run, steps in GOOD.items():
        assert runs[run]["steps"] == list(steps), (run, runs.get(run))
        assert "error" not in runs[run]
        for route in JSON_ROUTES[1:]:
            params = {"run": run}
            if run == "train_only" and route in ("/confusion", "/pr"):
                params["split"] = "train"
            status, body = get(route, params)
            assert status == 200, (run, route, body)
    # A run still being written shows its complete epochs; a corrupt record loses at most
    # the epochs from it on, or (the Rust server does not check a record's payload, and the
    # flipped byte makes a count negative) the run is reported damaged at that step.
    corrupt = runs["corrupt"]
    assert set(corrupt["steps"]) >= {0, 1} or "at step 2" in corrupt.get("error", ""), corrupt
    for run in UNREADABLE:
        assert "error" in runs[run] and runs[run]["steps"] == [], runs[run]
        status, body = get("/confusion", {"run": run})
        assert status == 422 and "metricsdiag" in body["error"]
    assert "newer tb-metricsdiag" in runs["future"]["error"]
    for run in ("empty", "garbage"):
        assert run not in runs or runs[run]["steps"] == []
        assert get("/confusion", {"run": run})[0] == 404
    # The class count changes: each step is read with its own shape.
    assert get("/confusion", {"run": "class_change", "step": 1})[1]["class_names"] == [
        "c0",
        "c1",
        "c2",
    ]
    late = get("/confusion", {"run": "class_change", "step": 3})[1]
    assert len(late["matrix"]) == 4 and len(late["class_names"]) == 4
    status, body = get("/pr", {"run": "class_change", "step": 3, "class": 3})
    assert status == 200 and len(body["tp"]) == THRESHOLDS.size
    # Threshold counts that do not fit: the confusion matrix still shows, /pr says why not.
    assert get("/confusion", {"run": "counts_mismatch"})[0] == 200
    for run in ("counts_mismatch", "huge_grid", "bad_payload", "unknown_encoding"):
        assert get("/confusion", {"run": run})[0] == 200
        status, body = get("/pr", {"run": run})
        assert status == 422 and "threshold" in body["error"], (run, body)
    # Both storage formats of the threshold counts read back as written.
    for run, num_classes in (("good", 2), ("good3", 3)):
        for step in (0, GOOD_STEPS - 1):
            _, counts, average_precision = step_counts(step, num_classes)
            for k in range(num_classes):
                status, body = get("/pr", {"run": run, "step": step, "class": k})
                assert status == 200 and body["tp"] == counts[k, 0].tolist(), (run, step, k)
                assert body["fp"] == counts[k, 1].tolist()
                assert body["average_precision"] == average_precision[k]
    # Both storage formats of the logs give the same curves; damaged logs are reported, and
    # the rest of the run still answers.
    for run in ("good", "good3"):
        curves = get("/curves", {"run": run})[1]["curves"]
        for key in ("loss", "val_loss"):
            assert curves[key]["steps"] == list(range(GOOD_STEPS)), (run, curves)
            np.testing.assert_allclose(
                curves[key]["values"], 1.0 / np.arange(1, GOOD_STEPS + 1), rtol=1e-6
            )
    status, body = get("/diagnostics", {"run": "bad_logs"})
    [damaged] = [f for f in body["findings"] if "damaged" in f["evidence"]]
    assert status == 200 and damaged["severity"] == "error", body
    said = damaged["evidence"]["damaged"]
    assert {"tag": schema.LOGS_TAG, "steps": [1], "why": said[0]["why"]} in said, said
    assert "expected a number" in said[0]["why"], said
    assert said[1]["steps"] == [2] and "not UTF-8" in said[1]["why"], said
    assert "tag metricsdiag/logs, step 1: stored log 'loss'" in damaged["detail"], damaged
    curves = get("/curves", {"run": "bad_logs"})[1]["curves"]
    assert curves == {"loss": {"steps": [0], "values": [0.5]}}, curves  # the readable point kept
    for run in ("train_only",):
        assert get("/confusion", {"run": run})[0] == 404  # no validation split
    for run in (
        list(GOOD) + sorted(UNREADABLE) + ["counts_mismatch", "huge_grid", "corrupt", "bad_payload"]
    ):
        assert get("/diagnostics", {"run": run})[0] in (200, 422)
        assert get("/curves", {"run": run})[0] in (200, 422)


# -- 4. hostile text --------------------------------------------------------------------


def check_hostile_text(get):
    runs = runs_of(get)
    for run in HOSTILE_RUNS:
        assert run in runs, (run[:40], sorted(runs)[:20])
        assert runs[run]["class_names"] == HOSTILE_CLASSES
        assert runs[run]["steps"] == [0, 1]
        status, body = get("/confusion", {"run": run})
        assert status == 200 and body["run"] == run
        assert body["class_names"] == HOSTILE_CLASSES
        assert [entry["name"] for entry in body["per_class"]] == HOSTILE_CLASSES
        for k, name in enumerate(HOSTILE_CLASSES):
            status, body = get("/pr", {"run": run, "class": k})
            assert status == 200 and body["class_name"] == name and body["run"] == run
        status, body = get("/curves", {"run": run})
        assert status == 200 and body["run"] == run and HOSTILE_KEY in body["curves"]
        status, body = get("/diagnostics", {"run": run})
        assert status == 200 and body["run"] == run


# -- 2/3/4 through a real tensorboard ---------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(base, route, params=None):
    url = base + PREFIX + route
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    assert status < 500, raw[:2000]
    return status, strict_json(raw.decode("utf-8"))


@contextlib.contextmanager
def tensorboard_serving(logdir, load_fast, log_path, ready):
    """A real ``tensorboard`` process serving ``logdir`` with this checkout's plugin
    (``--load_fast`` ``load_fast``, its output in ``log_path``), once ``ready(get)`` holds for
    ``get(route, params)`` (`http_get`); ``(base URL, process)``, the process killed on exit.
    The test fails with the end of the log when it exits or is not ready in
    `STARTUP_TIMEOUT_S`.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        logdir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load_fast",
        load_fast,
        "--reload_interval",
        "1",
    ]
    env = dict(os.environ, PYTHONPATH=WORKTREE, TF_CPP_MIN_LOG_LEVEL="3")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                with open(log_path, "rb") as handle:
                    pytest.fail(
                        "tensorboard did not load %s:\n%s"
                        % (logdir, handle.read()[-3000:].decode(errors="replace"))
                    )
            try:
                if ready(lambda route, params=None: http_get(base, route, params)):
                    break
            except (OSError, ValueError, AssertionError):
                pass
            time.sleep(0.3)
        yield base, process
    finally:
        process.kill()
        process.wait()


# A route's answer for a crafted run, in seconds, at most (it must not decode what it refuses).
CRAFTED_ROUTE_BUDGET_S = 1.0


def check_crafted_runs(get):
    """Every route answers every crafted run within `CRAFTED_ROUTE_BUDGET_S`: a 422 (or the
    run's ``error`` in ``/runs``) for what cannot be read, 200 for the rest of the run and for
    the good runs beside it.
    """

    def timed(route, params):
        started = time.monotonic()
        status, body = get(route, params)
        elapsed = time.monotonic() - started
        assert elapsed < CRAFTED_ROUTE_BUDGET_S, (route, params, elapsed)
        return status, body

    started = time.monotonic()
    runs = runs_of(get)
    assert time.monotonic() - started < CRAFTED_ROUTE_BUDGET_S
    for run in ("good", "good3"):
        assert "error" not in runs[run]
    for run in CRAFTED_UNREADABLE:
        assert "error" in runs[run] and runs[run]["steps"] == [], (run, runs[run])
        assert len(json.dumps(runs[run])) < 2000, run  # no hundred thousand names
        status, body = timed("/confusion", {"run": run})
        assert status == 422 and "metricsdiag" in body["error"], (run, body)
        for route in ("/pr", "/curves", "/diagnostics"):
            assert timed(route, {"run": run})[0] in (200, 422), (run, route)
    reasons = {run: runs[run]["error"] for run in CRAFTED_UNREADABLE}
    assert "nested" in reasons["deep_names"], reasons
    assert "declares shape [100000, 100000]" in reasons["huge_shape"], reasons
    assert "negative" in reasons["negative_confusion"], reasons
    assert "class names" in reasons["many_names"], reasons
    for run in CRAFTED_NO_PR:
        assert runs[run]["steps"] == [0] and "error" not in runs[run], (run, runs[run])
        assert timed("/confusion", {"run": run})[0] == 200
        for _ in range(3):  # refused each time, never decoded at length
            status, body = timed("/pr", {"run": run})
            assert status == 422 and "threshold counts" in body["error"], (run, body)
        assert timed("/curves", {"run": run})[0] == 200
        assert timed("/diagnostics", {"run": run})[0] == 200
    assert "inflate to more than" in timed("/pr", {"run": "bomb"})[1]["error"]
    assert "negative" in timed("/pr", {"run": "negative_counts"})[1]["error"]
    assert "grow" in timed("/pr", {"run": "growing_counts"})[1]["error"]
    # Deep JSON in run information, logs and events: said as problems, the rest served.
    assert runs["deep_json"]["steps"] == [0]
    status, body = timed("/diagnostics", {"run": "deep_json"})
    damaged = [d for f in body["findings"] for d in f["evidence"].get("damaged") or []]
    assert status == 200 and sum("nested" in d["why"] for d in damaged) >= 3, body
    assert {d["tag"] for d in damaged} == {schema.LOGS_TAG, schema.RUN_INFO_TAG, schema.EVENTS_TAG}
    status, body = timed("/curves", {"run": "deep_json"})
    assert status == 200 and body["curves"]["loss"]["steps"] == [0], body
    assert timed("/pr", {"run": "deep_json"})[0] == 200


def check_restarts_and_ap_methods(get, sees_restarts=True):
    """A run of two trainings shows the latest (and, ``sees_restarts``, says so); /pr names
    each AP's method. The Rust data server drops the points of the earlier training itself
    when the steps go back, so through it the restart cannot be seen (``sees_restarts``
    False): the latest training is still what is served.
    """
    entry = runs_of(get)["restarted"]
    assert entry["steps"] == [0, 1] and entry["trainings"] == (2 if sees_restarts else 1), entry
    assert runs_of(get)["good"]["trainings"] == 1
    for step in (0, 1):
        status, body = get("/confusion", {"run": "restarted", "step": step})
        assert status == 200 and body["matrix"] == step_counts(step, 2, seed=2)[0].tolist()
        _, counts, average_precision = step_counts(step, 2, seed=2)
        status, body = get("/pr", {"run": "restarted", "step": step, "class": 1})
        assert body["tp"] == counts[1, 0].tolist() and body["fp"] == counts[1, 1].tolist()
    assert get("/confusion", {"run": "restarted", "step": 3})[0] == 404  # the first training's
    status, body = get("/diagnostics", {"run": "restarted"})
    restarts = [f for f in body["findings"] if f["rule"] == "restarted_training"]
    if sees_restarts:
        [restart] = restarts
        assert restart["severity"] == "warning" and restart["step"] == 0, restart
        assert restart["evidence"]["trainings"] == 2
        assert restart["evidence"]["previous_last_step"] == 3
    assert body["trainings"] == len(restarts) + 1
    curves = get("/curves", {"run": "restarted"})[1]["curves"]
    assert curves["loss"]["steps"] == [0, 1], curves
    for run, method in (("good", "exact"), ("good3", "exact"), ("grid_ap", "threshold_grid")):
        status, body = get("/pr", {"run": run})
        assert status == 200 and body["average_precision_method"] == method, (run, body)
    # A rule that cannot run says why: the zoo's runs have no run information.
    not_run = {n["rule"]: n["reason"] for n in get("/diagnostics", {"run": "good"})[1]["not_run"]}
    assert "no run information" in not_run["loss_mismatch"], not_run
    assert "no train split" in not_run["train_val_overlap"], not_run


def crafted_sweep(get):
    """Every route of every crafted run, once."""
    for run in sorted(CRAFTED_UNREADABLE | CRAFTED_NO_PR | {"deep_json"}):
        for route in JSON_ROUTES:
            get(route, {"run": run})

"""Reliability and security: hostile HTTP input, damaged event files, live reloads, hostile
text and large logdirs (issue 8).

One logdir (the "zoo") holds good runs beside every kind of damage and hostile name. It is
served twice: by the plugin over a `MultiplexerDataProvider` in a werkzeug client (fast, used
for the exhaustive and property-based checks), and by a real ``tensorboard`` subprocess with
the Rust data server (``--load_fast=true``), which reads event files with its own code.

Events are written without TensorFlow, record by record (`record_writer.RecordWriter`), so the
tests know each record's bytes and can truncate or corrupt exactly one. The heavier scale
variant runs only with ``TB_METRICSDIAG_HEAVY=1``.
"""

import gc
import io
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins import base_plugin
from tensorboard.summary.writer import record_writer
from tensorboard.util import tensor_util
from werkzeug import test as werkzeug_test

from tb_metricsdiag.backend import plugin as plugin_lib
from tb_metricsdiag.backend import static_files
from tb_metricsdiag.format import codecs, metadata, schema

PREFIX = "/data/plugin/metricsdiag"
JSON_ROUTES = ["/runs", "/confusion", "/pr", "/curves", "/diagnostics"]
WORKTREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP_TIMEOUT_S = 60
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


def _record(event):
    """The framed TFRecord bytes of one event."""
    buffer = io.BytesIO()
    record_writer.RecordWriter(buffer).write(event.SerializeToString())
    return buffer.getvalue()


def _file_version():
    return _record(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2"))


def _tensor_event(step, tag, array, summary_metadata):
    value = summary_pb2.Summary.Value(
        tag=tag, tensor=tensor_util.make_tensor_proto(array), metadata=summary_metadata
    )
    return event_pb2.Event(
        step=step, wall_time=1000.0 + step, summary=summary_pb2.Summary(value=[value])
    )


def _md(
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


def _step_counts(step, num_classes, seed=0):
    """(confusion [C, C], threshold counts [C, 2, T], AP [C]) of one epoch of `_step_records`."""
    rng = np.random.default_rng(seed * 1000 + step)
    confusion = rng.integers(0, 20, size=(num_classes, num_classes)).astype(np.int32)
    tp = np.sort(rng.integers(0, 10, size=(num_classes, THRESHOLDS.size)), axis=1)[:, ::-1]
    fp = np.sort(rng.integers(0, 10, size=(num_classes, THRESHOLDS.size)), axis=1)[:, ::-1]
    return confusion, np.stack([tp, fp], axis=1).astype(np.int32), rng.random(num_classes)


def _encoded_counts_event(
    step,
    split,
    counts_value,
    class_names,
    encoding=schema.THRESHOLD_COUNTS_ENCODING,
    with_average_precision=False,
):
    """A threshold-counts event of format version 2 (3 ``with_average_precision``) holding
    ``counts_value`` bytes."""
    md = _md(schema.KIND_THRESHOLD_COUNTS, split, class_names, THRESHOLDS, encoding=encoding)
    if with_average_precision:
        md = metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            split,
            class_names,
            THRESHOLDS,
            encoding=encoding,
            average_precision="exact",
        )
    return _tensor_event(
        step,
        schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS),
        np.array(counts_value, dtype=object),
        md,
    )


def _step_records(
    step, num_classes, class_names=None, split="validation", seed=0, extra=(), encoded=False
):
    """Records of one epoch of a consistent run: confusion, threshold counts, AP, logs, as the
    current format writes them (``encoded``: version 3's counts with the AP inside, one JSON
    logs series) or as version 1 did (integer counts, a series of AP, a scalar a log value)."""
    confusion, counts, average_precision = _step_counts(step, num_classes, seed)
    records = [
        _tensor_event(
            step,
            schema.split_tag(split, schema.KIND_CONFUSION),
            confusion,
            _md(schema.KIND_CONFUSION, split, class_names),
        )
    ]
    if encoded:
        records.append(
            _encoded_counts_event(
                step,
                split,
                codecs.encode_threshold_counts(counts, average_precision),
                class_names,
                with_average_precision=True,
            )
        )
    else:
        records += [
            _tensor_event(
                step,
                schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS),
                counts,
                _md(schema.KIND_THRESHOLD_COUNTS, split, class_names, THRESHOLDS),
            ),
            _tensor_event(
                step,
                schema.split_tag(split, schema.KIND_AVERAGE_PRECISION),
                average_precision,
                _md(schema.KIND_AVERAGE_PRECISION, split, class_names),
            ),
        ]
    keys = ("loss", "val_loss") + tuple(extra)
    if encoded:
        logs = json.dumps({key: 1.0 / (step + 1) for key in keys})
        records.append(
            _tensor_event(
                step, schema.LOGS_TAG, np.array(logs.encode(), dtype=object), _md(schema.KIND_LOGS)
            )
        )
    else:
        for key in keys:
            records.append(
                _tensor_event(
                    step,
                    schema.scalar_tag(key),
                    np.float32(1.0 / (step + 1)),
                    _md(schema.KIND_SCALAR, key=key),
                )
            )
    return [_record(event) for event in records]


def _write_run(logdir, run, chunks, name="events.out.tfevents.1000.reliab"):
    run_dir = os.path.join(logdir, *run.split("/"))
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, name)
    with open(path, "wb") as handle:
        handle.write(b"".join(chunks))
    return path


def _good_run(
    logdir, run, num_classes=2, class_names=None, steps=GOOD_STEPS, extra=(), encoded=False
):
    chunks = [_file_version()]
    for step in range(steps):
        chunks += _step_records(step, num_classes, class_names, extra=extra, encoded=encoded)
    return _write_run(logdir, run, chunks)


def _build_zoo(logdir):
    """Good runs, damaged runs and hostile names; returns {run: expectation}."""
    _good_run(logdir, "good", 2, ["neg", "pos"])
    _good_run(logdir, "good3", 3, encoded=True)  # "good" keeps format version 1's counts

    # A run still being written: the last record is cut in half.
    chunks = [_file_version()]
    for step in range(3):
        chunks += _step_records(step, 2)
    half = _step_records(3, 2)[0]
    _write_run(logdir, "truncated", chunks + [half[: len(half) // 2]])

    # A corrupt record (a flipped payload byte: CRC mismatch) in the middle of the file.
    chunks = [_file_version()]
    for step in range(4):
        records = _step_records(step, 2)
        if step == 2:
            bad = bytearray(records[0])
            bad[len(bad) // 2] ^= 0xFF
            records[0] = bytes(bad)
        chunks += records
    _write_run(logdir, "corrupt", chunks)

    # An empty events file, and one of random bytes.
    _write_run(logdir, "empty", [])
    _write_run(logdir, "garbage", [np.random.default_rng(3).bytes(4096)])

    # Written by a newer tb-metricsdiag.
    newer = schema.FORMAT_VERSION + 1
    event = _tensor_event(
        0,
        schema.split_tag("validation", schema.KIND_CONFUSION),
        np.eye(2, dtype=np.int32),
        _md(schema.KIND_CONFUSION, "validation", overrides={"version": newer}),
    )
    _write_run(logdir, "future", [_file_version(), _record(event)])

    # Only train-side counts.
    chunks = [_file_version()]
    for step in range(3):
        chunks += _step_records(step, 2, split="train")
    _write_run(logdir, "train_only", chunks)

    # The class count changes midway: 3 classes for steps 0-1, 4 for steps 2-3.
    chunks = [_file_version()]
    for step in range(4):
        classes = 3 if step < 2 else 4
        chunks += _step_records(step, classes, ["c%d" % i for i in range(classes)])
    _write_run(logdir, "class_change", chunks)

    # Threshold counts whose shape does not fit the confusion matrix.
    chunks = [_file_version(), _step_records(0, 2)[0]]
    counts = np.zeros((3, 2, THRESHOLDS.size), np.int32)
    chunks.append(
        _record(
            _tensor_event(
                0,
                schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
                counts,
                _md(schema.KIND_THRESHOLD_COUNTS, "validation", None, THRESHOLDS),
            )
        )
    )
    _write_run(logdir, "counts_mismatch", chunks)

    # A threshold grid that claims a trillion points (must not be materialised).
    chunks = [_file_version(), _step_records(0, 2)[0]]
    chunks.append(
        _record(
            _tensor_event(
                0,
                schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS),
                counts[:2],
                _md(
                    schema.KIND_THRESHOLD_COUNTS,
                    "validation",
                    None,
                    THRESHOLDS,
                    overrides={"thresholds": {"start": 0.0, "stop": 1.0, "num": 10**12}},
                ),
            )
        )
    )
    _write_run(logdir, "huge_grid", chunks)

    # Encoded threshold counts that are not zlib data, and counts in an encoding from the future.
    for run, payload, encoding in (
        ("bad_payload", b"H" + b"not zlib", schema.THRESHOLD_COUNTS_ENCODING),
        ("unknown_encoding", b"H", "zstd_something"),
    ):
        chunks = [_file_version(), _step_records(0, 2)[0]]
        chunks.append(_record(_encoded_counts_event(0, "validation", payload, None, encoding)))
        _write_run(logdir, run, chunks)

    # Good counts, but logs that are not a JSON object of numbers.
    chunks = [_file_version()]
    for step, text in enumerate((b'{"loss": 0.5}', b'{"loss": "high"}', b"\xff")):
        chunks += _step_records(step, 2)[:3]
        chunks.append(
            _record(
                _tensor_event(
                    step, schema.LOGS_TAG, np.array(text, dtype=object), _md(schema.KIND_LOGS)
                )
            )
        )
    _write_run(logdir, "bad_logs", chunks)

    # A confusion "matrix" of strings, and malformed JSON in run info / events.
    bad = [
        _tensor_event(
            0,
            schema.split_tag("validation", schema.KIND_CONFUSION),
            np.array([["a", "b"], ["c", "d"]], dtype=object),
            _md(schema.KIND_CONFUSION, "validation"),
        ),
        _tensor_event(
            0, schema.RUN_INFO_TAG, np.array(b"{not json", dtype=object), _md(schema.KIND_RUN_INFO)
        ),
        _tensor_event(
            0, schema.EVENTS_TAG, np.array(b"\xff\xfe", dtype=object), _md(schema.KIND_EVENTS)
        ),
    ]
    _write_run(logdir, "bad_tensors", [_file_version()] + [_record(e) for e in bad])

    for run in HOSTILE_RUNS:
        _good_run(logdir, run, len(HOSTILE_CLASSES), HOSTILE_CLASSES, steps=2, extra=(HOSTILE_KEY,))


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


def _make_plugin(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={schema.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = provider_lib.MultiplexerDataProvider(multiplexer, logdir)
    context = base_plugin.TBContext(logdir=logdir, data_provider=provider)
    return plugin_lib.MetricsDiagLoader().load(context)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("zoo"))
    _build_zoo(logdir)
    return logdir


@pytest.fixture(scope="module")
def client(zoo):
    return werkzeug_test.Client(application.TensorBoardWSGI([_make_plugin(zoo)]))


def _strict(body):
    def refuse(constant):
        raise AssertionError("non-strict JSON constant %s" % constant)

    return json.loads(body, parse_constant=refuse)


def _get(client, route, params=None, raw_query=None):
    """(status, JSON body) of a GET through the werkzeug client; JSON is checked strictly."""
    if raw_query is not None:
        response = client.get(PREFIX + route + "?" + raw_query)
    else:
        response = client.get(PREFIX + route, query_string=params or {})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    return response.status_code, _strict(response.get_data(as_text=True))


def _runs(get):
    status, body = get("/runs", {})
    assert status == 200, body
    return {entry["run"]: entry for entry in body["runs"]}


# -- 1. hostile HTTP parameters ---------------------------------------------------------

BAD_INTS = [
    "",
    "x",
    "1.5",
    "1e3",
    " 1",
    "1 ",
    "+1",
    "0x10",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "٣",
    "１",
    "9" * 5000,
    "-" + "9" * 40,
    "9" * 19,
    "99999999999999999999",
    "1,2",
    "[1]",
    "\x00",
    "%00",
    "../../etc/passwd",
    XSS,
    "🙂",
]
BAD_FRACTIONS = [
    "",
    "x",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-0.1",
    "1.0000001",
    "1e999",
    "0x1p-1",
    "1_0",
    "½",
    "9" * 5000,
    XSS,
]


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_missing_and_unknown_run(client, route):
    get = lambda r, p: _get(client, r, p)  # noqa: E731
    if route == "/runs":
        assert get(route, {"run": "../../etc/passwd"})[0] == 200
        return
    assert get(route, {})[0] == 400
    assert get(route, {"run": ""})[0] == 400
    for run in [
        "nope",
        "../good",
        "good/..",
        "/etc/passwd",
        "good\x00",
        XSS + "?",
        "x" * 100000,
        "🙂",
        "good/train",
        ".",
    ]:
        status, body = get(route, {"run": run})
        assert status == 404, (run[:50], status, body)
        assert isinstance(body["error"], str)


@pytest.mark.parametrize("name", ["step", "class"])
@pytest.mark.parametrize("value", BAD_INTS, ids=lambda v: ascii(v)[:24])
def test_malformed_integers_are_400_or_404(client, name, value):
    route = "/pr" if name == "class" else "/confusion"
    status, body = _get(client, route, {"run": "good", name: value})
    if value == "":
        assert status == 200  # an empty value means the default
    elif value in ("9" * 19, "99999999999999999999") or value.startswith("-9"):
        # Well-formed but out of range: no such step (404) or class (400).
        assert status in (400, 404), body
    else:
        assert status == 400, (value[:40], body)
        assert name in body["error"]


@pytest.mark.parametrize("value", BAD_FRACTIONS, ids=lambda v: ascii(v)[:24])
@pytest.mark.parametrize("name", ["min_recall", "min_precision"])
def test_malformed_fractions_are_400(client, name, value):
    status, body = _get(client, "/pr", {"run": "good", name: value})
    assert status == (200 if value == "" else 400), (value[:40], body)


def test_negative_and_out_of_range_numbers(client):
    assert _get(client, "/confusion", {"run": "good", "step": "-1"})[0] == 404
    assert _get(client, "/confusion", {"run": "good", "step": "5"})[0] == 404
    assert _get(client, "/confusion", {"run": "good", "step": "-0"})[0] == 200
    assert _get(client, "/pr", {"run": "good", "class": "-1"})[0] == 400
    assert _get(client, "/pr", {"run": "good", "class": "2"})[0] == 400
    assert _get(client, "/pr", {"run": "good3", "class": "2"})[0] == 200
    for split in ["", "VALIDATION", "test", "validation/../train", XSS, "train\x00"]:
        assert _get(client, "/confusion", {"run": "good", "split": split})[0] == 400


def test_repeated_parameters_use_the_first(client):
    status, body = _get(client, "/confusion", raw_query="run=good&run=nope&step=1&step=x")
    assert status == 200 and body["run"] == "good" and body["step"] == 1
    status, _ = _get(client, "/confusion", raw_query="run=nope&run=good")
    assert status == 404


@pytest.mark.parametrize(
    "raw",
    [
        "run=%ff%fe&step=1",
        "run=good&step=%ff",
        "run=%00",
        "run",
        "=&&&==",
        "%",
        "%zz=1",
        "run=good;step=1",
        "run=good&step=1&" + "junk=" + "j" * 200000,
        "&".join("k%d=v" % i for i in range(5000)) + "&run=good",
        "run=good%26step%3D1",
        "run=good#fragment",
        "run[]=good",
        "run=%F0%9F%99%82",
    ],
    ids=lambda raw: raw[:30],
)
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_raw_malformed_query_strings(client, route, raw):
    status, _ = _get(client, route, raw_query=raw)
    assert status in (200, 400, 404)


_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "good",
            "good3",
            "train_only",
            "validation",
            "train",
            "0",
            "1",
            "-1",
            "4",
            "0.5",
            "NaN",
            "inf",
            "1e308",
            "9" * 5000,
            "../..",
            XSS,
            "\x00",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_KEYS = st.sampled_from(
    ["run", "split", "step", "class", "min_recall", "min_precision", "experiment", "x", ""]
)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(JSON_ROUTES),
    pairs=st.lists(st.tuples(_KEYS, _VALUES), max_size=6),
    raw_suffix=st.text(alphabet="%&=#;+?/\\ab0", max_size=8),
)
def test_property_any_query_string_is_answered_without_5xx(client, route, pairs, raw_suffix):
    query = urllib.parse.urlencode(pairs) + ("&" if pairs else "") + raw_suffix
    status, body = _get(client, route, raw_query=query)
    assert status in (200, 400, 404), (query[:200], status, body)
    if status != 200:
        assert isinstance(body["error"], str)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "..",
                    ".",
                    "",
                    "%2e%2e",
                    "%2f",
                    "..%2f",
                    "%5c",
                    "index.js",
                    "setup.py",
                    "etc",
                    "passwd",
                    "%00",
                    "~",
                    ".git",
                    "config",
                ]
            ),
            st.text(max_size=12),
        ),
        max_size=6,
    )
)
def test_property_static_paths_never_leave_the_static_folder(client, path):
    quoted = "/".join(urllib.parse.quote(p, safe="%~.") for p in path)
    response = client.get(PREFIX + "/" + quoted)
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        body = response.get_data()
        root = os.path.realpath(static_files.frontend_dir())
        served = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        assert any(open(f, "rb").read() == body for f in served)


@pytest.mark.parametrize(
    "path",
    [
        "/../../setup.py",
        "/%2e%2e/%2e%2e/setup.py",
        "/..%2f..%2fsetup.py",
        "/..%5c..%5csetup.py",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/....//....//setup.py",
        "/index.js%00.py",
        "/__init__.py",
        "/%252e%252e/setup.py",
        "/" + "a" * 5000 + ".js",
        "/.git/config",
        "/tests/conftest.py",
        "/..;/setup.py",
    ],
)
def test_static_traversal_is_404(client, path):
    response = client.get(PREFIX + path)
    assert response.status_code == 404
    assert b"import" not in response.get_data()


# -- 2. damaged event files -------------------------------------------------------------


def check_damaged_logdir(get):
    """The assertions shared by the in-process client and the real servers."""
    runs = _runs(get)
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
    # the epochs from it on.
    assert set(runs["corrupt"]["steps"]) >= {0, 1}
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
            _, counts, average_precision = _step_counts(step, num_classes)
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
    problems = [f for f in body["findings"] if "problems" in f["evidence"]]
    assert status == 200 and problems, body
    said = problems[0]["evidence"]["problems"]
    assert any("logs at step 1" in p and "expected a number" in p for p in said), said
    assert any("logs at step 2" in p and "not UTF-8" in p for p in said), said
    curves = get("/curves", {"run": "bad_logs"})[1]["curves"]
    assert curves == {"loss": {"steps": [0], "values": [0.5]}}, curves  # the readable point kept
    for run in ("train_only",):
        assert get("/confusion", {"run": run})[0] == 404  # no validation split
    for run in (
        list(GOOD) + sorted(UNREADABLE) + ["counts_mismatch", "huge_grid", "corrupt", "bad_payload"]
    ):
        assert get("/diagnostics", {"run": run})[0] in (200, 422)
        assert get("/curves", {"run": run})[0] in (200, 422)


def test_damaged_runs_are_isolated_and_reported(client):
    check_damaged_logdir(lambda route, params: _get(client, route, params))


# -- 4. hostile text --------------------------------------------------------------------


def check_hostile_text(get):
    runs = _runs(get)
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


def test_hostile_names_are_returned_verbatim(client):
    check_hostile_text(lambda route, params: _get(client, route, params))


def test_error_messages_carry_hostile_text_as_json_strings(client):
    status, body = _get(client, "/confusion", {"run": XSS + "\n\"'"})
    assert status == 404 and XSS in body["error"]
    response = client.get(PREFIX + "/confusion", query_string={"run": XSS})
    assert response.headers["Content-Type"].startswith("application/json")


# -- 2/3/4 through a real tensorboard ---------------------------------------------------


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http_get(base, route, params=None):
    url = base + PREFIX + route
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    assert status < 500, raw[:2000]
    return status, _strict(raw.decode("utf-8"))


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def server(request, zoo, tmp_path_factory):
    port = _free_port()
    log_path = str(tmp_path_factory.mktemp("tb_log") / "tensorboard.log")
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        zoo,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load_fast",
        request.param,
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
                        "tensorboard did not load the zoo:\n%s"
                        % handle.read()[-3000:].decode(errors="replace")
                    )
            try:
                runs = _runs(lambda route, params: _http_get(base, route, params))
                if all(
                    len(runs.get(run, {}).get("steps", [])) == len(steps)
                    for run, steps in GOOD.items()
                ):
                    break
            except (OSError, ValueError, AssertionError):
                pass
            time.sleep(0.3)
        yield base, zoo, "load_fast_" + request.param
    finally:
        process.kill()
        process.wait()


def test_real_server_damaged_runs(server):
    base, _, _ = server
    check_damaged_logdir(lambda route, params: _http_get(base, route, params))


def test_real_server_hostile_text(server):
    base, _, _ = server
    check_hostile_text(lambda route, params: _http_get(base, route, params))


def test_real_server_hostile_parameters(server):
    base, _, _ = server
    for route in JSON_ROUTES:
        for params in [
            {},
            {"run": XSS},
            {"run": "good", "step": "9" * 5000},
            {"run": "good", "step": "NaN"},
            {"run": "good", "class": "-1"},
            {"run": "good", "min_recall": "nan"},
            {"run": "../../etc/passwd"},
            {"run": "good", "split": "\x00"},
        ]:
            status, _ = _http_get(base, route, params)
            assert status in (200, 400, 404)
    for path in [
        "/../../setup.py",
        "/%2e%2e/%2e%2e/setup.py",
        "/..%2f..%2fsetup.py",
        "/%2fetc%2fpasswd",
    ]:
        try:
            with urllib.request.urlopen(base + PREFIX + path, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status in (400, 404), path


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_real_server_follows_a_run_being_written(server):
    """3. Live: the Rust server reads a run while it is written with tf.summary writers."""
    import tensorflow as tf

    from tb_metricsdiag import summary

    base, logdir, suffix = server  # each server writes runs of its own
    get = lambda route, params=None: _http_get(base, route, params)  # noqa: E731
    rng = np.random.default_rng(5)
    live, half = "live_" + suffix, "half_" + suffix
    live_dir = os.path.join(logdir, live)
    writer = tf.summary.create_file_writer(live_dir)

    def write_epochs(steps):
        with writer.as_default():
            for step in steps:
                labels = rng.integers(0, 3, size=50)
                scores = rng.dirichlet(np.ones(3), size=50).astype(np.float32)
                summary.write_evaluation(labels, scores, step=step, class_names=["a", "b", "c"])
                summary.write_logs({"loss": 1.0 / (step + 1), "val_loss": 1.2 / (step + 1)}, step)
        writer.flush()

    def live_steps():
        return _runs(get).get(live, {}).get("steps")

    write_epochs(range(2))
    assert _wait_for(lambda: live_steps() == [0, 1]), live_steps()
    assert get("/confusion", {"run": live})[1]["step"] == 1

    write_epochs(range(2, 4))
    assert _wait_for(lambda: live_steps() == [0, 1, 2, 3]), live_steps()
    status, body = get("/confusion", {"run": live})
    assert status == 200 and body["step"] == 3
    assert get("/curves", {"run": live})[1]["curves"]["val_loss"]["steps"] == [0, 1, 2, 3]
    writer.close()

    # A run whose writer has flushed half a record: the complete epochs are served, nothing
    # errors; once the record is complete the next epoch appears.
    step0, step1 = _step_records(0, 3, ["a", "b", "c"]), _step_records(1, 3, ["a", "b", "c"])
    cut = len(step1[0]) // 2
    path = _write_run(logdir, half, [_file_version()] + step0 + [step1[0][:cut]])
    assert _wait_for(lambda: _runs(get).get(half, {}).get("steps") == [0])
    time.sleep(2.5)  # at least two more reloads over the half record
    assert "error" not in _runs(get)[half]
    for route in JSON_ROUTES:
        assert get(route, {"run": half})[0] == 200
    with open(path, "ab") as handle:
        handle.write(b"".join([step1[0][cut:]] + step1[1:]))
    assert _wait_for(lambda: _runs(get)[half]["steps"] == [0, 1]), _runs(get)[half]
    status, body = get("/pr", {"run": half, "class": 2})
    assert status == 200 and body["step"] == 1


# -- 5. scale ---------------------------------------------------------------------------


def _many_runs(logdir, count):
    """``count`` tiny runs (two epochs of a 2x2 confusion matrix each), written fast."""
    md = _md(schema.KIND_CONFUSION, "validation", ["n", "p"])
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    head = _file_version()
    records = b"".join(
        _record(_tensor_event(step, tag, np.array([[step, 1], [2, 3]], np.int32), md))
        for step in range(2)
    )
    for i in range(count):
        _write_run(logdir, "group%02d/run%05d" % (i % 50, i), [head, records])


def _check_many_runs(tmp_path, count, budget_s):
    logdir = str(tmp_path)
    _many_runs(logdir, count)
    plugin = _make_plugin(logdir)
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]))
    started = time.monotonic()
    runs = _runs(lambda route, params: _get(client, route, params))
    elapsed = time.monotonic() - started
    assert len(runs) == count
    assert all(entry["steps"] == [0, 1] for entry in runs.values())
    assert elapsed < budget_s, "/runs over %d runs took %.1f s" % (count, elapsed)

    # Memory stays bounded: repeated requests over every run leave nothing behind.
    names = sorted(runs)
    state_before = {
        key: len(value) for key, value in vars(plugin).items() if hasattr(value, "__len__")
    }

    def sweep():
        _get(client, "/runs", {})
        for name in names[:: max(1, count // 20)]:
            _get(client, "/confusion", {"run": name})
            _get(client, "/diagnostics", {"run": name})

    sweep()
    gc.collect()
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        for _ in range(2):
            sweep()
        gc.collect()
        growth = sum(
            stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(first, "filename")
        )
    finally:
        tracemalloc.stop()
    assert growth < 512 * 1024, "memory grew by %d bytes over repeated sweeps" % growth
    assert state_before == {
        key: len(value) for key, value in vars(plugin).items() if hasattr(value, "__len__")
    }


def test_a_thousand_runs(tmp_path):
    _check_many_runs(tmp_path, 1000, budget_s=15)


@pytest.mark.skipif(
    not os.environ.get("TB_METRICSDIAG_HEAVY"), reason="heavy: set TB_METRICSDIAG_HEAVY=1"
)
def test_ten_thousand_runs(tmp_path):
    _check_many_runs(tmp_path, 10000, budget_s=120)


def test_no_module_level_caches():
    """No memoisation decorators or module-level containers that could grow per run."""
    import ast

    for module in (
        "backend/plugin",
        "backend/reader",
        "backend/views",
        "backend/static_files",
        "core/operating_points",
        "format/metadata",
        "format/codecs",
        "format/schema",
    ):
        path = os.path.join(WORKTREE, "tb_metricsdiag", module + ".py")
        source = open(path, encoding="utf-8").read()
        assert "lru_cache" not in source and "functools.cache" not in source, module
        for node in ast.parse(source).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(
                node.value, (ast.Dict, ast.List, ast.Set, ast.Call)
            ):
                call = node.value
                if isinstance(call, ast.Call):
                    name = getattr(call.func, "id", getattr(call.func, "attr", ""))
                    assert name not in ("dict", "list", "set", "defaultdict", "OrderedDict"), (
                        module,
                        ast.dump(node)[:200],
                    )

"""Crafted example records (format version 6) beside good ones, and the checks the in-process
plugin and real TensorBoard servers (both loaders) must pass on them: every damaged run a 422
on the routes that read what is damaged (or, for previews, its examples without them and the
problem said), within `ROUTE_BUDGET_S`, the good run 200.

Each crafted run is a genuine `MetricsDiagWriter` run whose records of one or two kinds are
replaced at every step (`example_runs.TamperingWriter`): written with the format modules' own
encoders where they accept the value, then corrupted, or packed by hand where they refuse it.
"""

import os
import struct
import time
import zlib

import example_runs
import numpy as np

from tb_metricsdiag.format import example_ids, packed, previews, slices
from tb_metricsdiag.writing import records

ROWS = 200
STEPS = 2
MILLION = 10**6
TEN_MB = 10 << 20

# A route's answer for a crafted run, in seconds, at most: generous, for a loaded 2-core
# machine (a million ids take 0.4 s on a quiet one); bench/hostile_examples.py measures the
# figures of docs/benchmarks.md.
ROUTE_BUDGET_S = 5.0

GOOD_RUN = "ex_good"

# A cell of every run (3 classes): its examples are kept at every step.
CELL = {"true": 0, "pred": 0}


def _string_table(texts, kind=example_ids.STRINGS):
    """An id table of ``texts`` packed by hand (`example_ids` layout 1), whatever they hold."""
    return (
        bytes([example_ids.LAYOUT])
        + struct.pack("<cI", kind, len(texts))
        + packed.encode_strings(texts)
    )


def _million_rows_examples(_payload):
    """A well-formed examples record of a million rows, none in a cell (a split of that size,
    whose id table is then decoded in full)."""
    header = struct.pack("<BBIIIII", 1, 0, 3, MILLION, 0, 1, 0)
    bits, codes = bytes((MILLION + 7) // 8), bytes(MILLION)
    return records.string_value(header + b"BBB" + bits + codes)


def _numbered_ids(count, wide=None):
    """An id table of ``count`` string ids ``e0000000``, ``e0000001``, ... packed directly (the
    encoder's list of a million strings takes seconds): the lengths as uint16, ``wide`` in
    place of the second id when given."""
    data = "".join("e%07d" % i for i in range(count)).encode()
    lengths = np.full(count, 8, "<u2")
    if wide is not None:
        wide = wide.encode("utf-8")
        data, lengths[1] = data[:8] + wide + data[16:], len(wide)
    header = bytes([example_ids.LAYOUT]) + struct.pack("<cI", example_ids.STRINGS, count)
    return header + b"H" + lengths.tobytes() + data


def _million_ids_repeated(_payload):
    """A million short string ids, the last one repeating the first."""
    table = _numbered_ids(MILLION)
    return records.string_value(table[:-8] + table[-8 * MILLION : -8 * MILLION + 8])


def _million_ids_one_wide(_payload):
    """A million distinct string ids, one of 128 four-byte characters: matching them by fixed
    width would take 520 MB."""
    return records.string_value(_numbered_ids(MILLION, wide="\U0001f642" * 128))


def _million_ids(_payload):
    """A million distinct string ids, for a split of 200 rows."""
    return records.string_value(_numbered_ids(MILLION))


def _ten_mb_id(payload):
    """The ids of the split with one of them 10 MB long."""
    ids = example_ids.decode_example_ids(payload)
    texts = ids.ids_at(np.arange(ids.size))
    texts[0] = "x" * TEN_MB
    return records.string_value(_string_table(texts))


def _invalid_utf8_ids(payload):
    """The ids of the split with one id's bytes turned into invalid UTF-8 (same length)."""
    ids = example_ids.decode_example_ids(payload)
    texts = ids.ids_at(np.arange(ids.size))
    table = bytearray(_string_table(texts))
    first = table.index(texts[0].encode("utf-8"))
    table[first : first + 2] = b"\xff\xfe"
    return records.string_value(bytes(table))


def _preview_of(payload, kind, data):
    """The previews point with its first preview replaced by (``kind``, ``data``)."""
    stored = previews.decode_previews(payload)
    kept = [(previews.TEXT, previews.text_preview(p["text"])) for p in stored.values()]
    return records.string_value(previews.encode_previews(list(stored), [(kind, data)] + kept[1:]))


def _png_bomb():
    """A PNG under the thumbnail's byte limit declaring 65,535 x 65,535 pixels, whose data
    inflates to 16 MB."""
    deflate = zlib.compressobj(9)
    compressed = b"".join(deflate.compress(bytes(1 << 20)) for _ in range(16)) + deflate.flush()
    header = struct.pack(">IIBBBBB", 65535, 65535, 8, 0, 0, 0, 0)
    return (
        previews.PNG_SIGNATURE
        + previews._chunk(b"IHDR", header)
        + previews._chunk(b"IDAT", compressed)
        + previews._chunk(b"IEND", b"")
    )


def _slices_with(payload, keys=None, example_groups=None):
    """The slices record of ``payload`` encoded again (`slices.encode_slices`) with ``keys``
    (``[(key, [value, ...])]``) or ``example_groups`` (``(positions, {key: codes})``) in place
    of its own."""
    stored = slices.decode_slices(payload)
    some = next(iter(stored.slices.values()))
    layout = {
        "num_classes": stored.num_classes,
        "multi_label": stored.multi_label,
        "thresholds": some.tp.shape[1],
        "bins": len(some.calibration[0]),
        "num_rows": stored.num_rows,
        "per_cell": some.examples.per_cell,
    }
    every = list(stored.slices.values())
    written = {
        "confusion": np.stack([one.confusion for one in every]),
        "tp": np.stack([one.tp for one in every]),
        "fp": np.stack([one.fp for one in every]),
        "calibration": np.stack([np.stack(one.calibration) for one in every]),
        "kept": {
            "slice": np.repeat(
                np.arange(len(every)), [one.examples.position.size for one in every]
            ),
            **{
                name: np.concatenate([getattr(one.examples, name) for one in every])
                for name in ("position", "score", "true_score")
            },
        },
    }
    return records.string_value(
        slices.encode_slices(
            layout,
            keys or [(key, list(values)) for key, values in stored.keys.items()],
            written,
            example_groups or (stored.example_positions, stored.example_codes),
        )
    )


def _million_group_values(payload):
    """The group values of a million examples, for a split of 200 rows."""
    million = np.arange(MILLION)
    return _slices_with(payload, example_groups=(million, {GROUP_KEY: million % 2}))


def _ten_mb_group_value(payload):
    """A group value 10 MB long."""
    return _slices_with(payload, keys=[(GROUP_KEY, ["x" * TEN_MB, GROUP_VALUES[1]])])


def _invalid_utf8_group_value(payload):
    """A group value whose bytes are not UTF-8 (same length)."""
    value = GROUP_VALUES[0].encode()
    return records.string_value(payload.replace(value, b"\xff\xfe" + value[2:], 1))


def _label_issues_longer_than_the_split(payload):
    """The label issues with a list of a million declared for the split's 200 rows."""
    crafted = bytearray(payload)
    struct.pack_into("<IIII", crafted, 5, ROWS, MILLION, MILLION, MILLION)  # n, N, F, M
    return records.string_value(bytes(crafted))


def _crossings_billion_samples(payload):
    """Crossing samples declaring a thousand million samples (bytes 31-34: ``S``)."""
    crafted = bytearray(payload)
    struct.pack_into("<I", crafted, 31, 10**9)
    return records.string_value(bytes(crafted))


def _crossings_outside_their_bins(payload):
    """Crossing samples whose last score is 2.0, beyond its bin."""
    return records.string_value(payload[:-4] + struct.pack("<f", 2.0))


# The routes that read the id table.
EXAMPLE_ROUTES = ("/examples", "/flips", "/label_issues", "/crossings")
ROUTES = EXAMPLE_ROUTES + ("/slices",)

# Every run's rows are in two groups of the key "g" (its slices: `schema.KIND_SLICES`).
GROUP_KEY, GROUP_VALUES = "g", ("north", "south")

# The parameters of the routes of example records (fuzzed by tests/test_hostile_requests.py
# and tests/test_examples_routes.py).
PARAMETERS = (
    "run",
    "split",
    "step",
    "true",
    "pred",
    "class",
    "limit",
    "other_run",
    "other_split",
    "other_step",
    "key",
    "slice",
    "from",
    "to",
)


def _refused(words, label_issues_words=None, routes=EXAMPLE_ROUTES):
    """``{route: (422, words)}`` for ``routes``: /label_issues and /crossings with
    ``label_issues_words`` when they differ (their records have 200 rows, not the million of
    the examples)."""
    return {
        route: (
            422,
            label_issues_words
            if route in ("/label_issues", "/crossings") and label_issues_words
            else words,
        )
        for route in routes
    }


# run -> ({kind: damage}, {route: (status, words of the answer)}): the routes not named answer
# 200. /examples, /flips and /label_issues read the id table, so a damaged one fails them all.
CRAFTED = {
    "ex_million_ids_repeated": (
        {"examples": _million_rows_examples, "example_ids": _million_ids_repeated},
        _refused("repeat an id", "ids for 200 rows"),
    ),
    "ex_million_ids_one_wide": (
        {"examples": _million_rows_examples, "example_ids": _million_ids_one_wide},
        _refused("to match", "ids for 200 rows"),
    ),
    "ex_million_ids": ({"example_ids": _million_ids}, _refused("1000000 ids for 200 rows")),
    "ex_ten_mb_id": ({"example_ids": _ten_mb_id}, _refused("expected 1 to 512")),
    "ex_invalid_utf8_ids": ({"example_ids": _invalid_utf8_ids}, _refused("not UTF-8")),
    "ex_ten_mb_text": (
        {"previews": lambda payload: _preview_of(payload, previews.TEXT, b"x" * TEN_MB)},
        {},
    ),
    "ex_invalid_utf8_text": (
        {"previews": lambda payload: _preview_of(payload, previews.TEXT, b"ok \xff\xfe")},
        {},
    ),
    "ex_png_bomb": (
        {"previews": lambda payload: _preview_of(payload, previews.IMAGE, _png_bomb())},
        {},
    ),
    "ex_label_issues_longer_than_the_split": (
        {"label_issues": _label_issues_longer_than_the_split},
        _refused("a list longer than the split", routes=["/label_issues"]),
    ),
    "ex_million_group_values": (
        {"slices": _million_group_values},
        _refused("1000000 examples with group values of 200 rows", routes=["/slices"]),
    ),
    "ex_ten_mb_group_value": (
        {"slices": _ten_mb_group_value},
        _refused("expected 1 to 512", routes=["/slices"]),
    ),
    "ex_invalid_utf8_group_value": (
        {"slices": _invalid_utf8_group_value},
        _refused("not UTF-8", routes=["/slices"]),
    ),
    "ex_crossings_billion_samples": (
        {"crossings": _crossings_billion_samples},
        _refused("1000000000 samples in", routes=["/crossings"]),
    ),
    "ex_crossings_outside_their_bins": (
        {"crossings": _crossings_outside_their_bins},
        _refused("a score outside its bin", routes=["/crossings"]),
    ),
    "ex_ten_mb_examples": (
        {"examples": lambda payload: records.string_value(b"\x01" * TEN_MB)},
        _refused("classes, expected 1 to", routes=["/examples", "/flips"]),
    ),
}

# Crafted runs whose previews are refused: their examples are served without previews, and
# the answer says why (`preview_problems`).
PREVIEW_PROBLEMS = {
    "ex_ten_mb_text": "over 1000 characters",
    "ex_invalid_utf8_text": "not UTF-8",
    "ex_png_bomb": "65535 x 65535 pixels, more than 64 a side",
}


class _FramedByTensorFlow(example_runs.TamperingWriter):
    """A `TamperingWriter` whose event file is framed by TensorFlow's record writer when it
    closes: TensorBoard's own computes the checksums in pure Python, a minute for the tens of
    MB of these runs."""

    def __init__(self, log_dir, damages, **kwargs):
        self._events = []
        super().__init__(log_dir, damages, **kwargs)

    def _write_event(self, event):
        self._events.append(event.SerializeToString())

    def close(self):
        import tensorflow as tf

        super().close()
        if self._events:
            with tf.io.TFRecordWriter(self.path) as records_out:
                for event in self._events:
                    records_out.write(event)
            self._events = []


def _write(logdir, run, damages, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=ROWS)
    ids = ["item-%03d" % i for i in range(ROWS)]
    texts = ["text of %s" % key for key in ids]
    with _FramedByTensorFlow(
        os.path.join(logdir, run), damages, class_names=["a", "b", "c"]
    ) as writer:
        for step in range(STEPS):
            scores = example_runs.probabilities(rng, truth, 3, 1.0 + step)
            writer.add_evaluation(
                truth,
                scores,
                step,
                from_logits=False,
                example_ids=ids,
                previews=texts,
                groups={GROUP_KEY: [GROUP_VALUES[i % 2] for i in range(ROWS)]},
            )
            writer.add_logs({"loss": 1.0 / (step + 1), "val_loss": 1.1 / (step + 1)}, step)


def build_hostile_example_runs(logdir):
    """The good run and every crafted run of `CRAFTED` under ``logdir``."""
    _write(logdir, GOOD_RUN, {}, 0)
    for seed, (run, (damages, _)) in enumerate(sorted(CRAFTED.items()), 1):
        _write(logdir, run, damages, seed)


def _timed(get, route, params):
    started = time.monotonic()
    status, body = get(route, params)
    elapsed = time.monotonic() - started
    assert elapsed < ROUTE_BUDGET_S, (route, params, elapsed)
    return status, body


def _params(run, route):
    if route == "/examples":
        return dict(CELL, run=run)
    if route == "/crossings":
        return {"run": run, "from": 0.3, "to": 0.7}
    return {"run": run, "key": GROUP_KEY} if route == "/slices" else {"run": run}


def check_hostile_example_runs(get):
    """Every route of every crafted run: the expected 422 (its message naming why) or 200,
    each within `ROUTE_BUDGET_S`; the good run's routes 200; the routes of the other records
    of a crafted run unaffected."""
    for route in ROUTES:
        status, body = _timed(get, route, _params(GOOD_RUN, route))
        assert status == 200 and not body.get("preview_problems"), (route, body)
    status, body = get("/examples", _params(GOOD_RUN, "/examples"))
    assert all(e["preview"]["text"] == "text of %s" % e["id"] for e in body["examples"]), body
    for run, (_, expected) in CRAFTED.items():
        for route in ROUTES:
            want, words = expected.get(route, (200, None))
            status, body = _timed(get, route, _params(run, route))
            assert status == want, (run, route, status, body)
            if words is not None:
                assert words in body["error"] and len(body["error"]) < 2000, (run, route, body)
        for route, params in (("/confusion", {}), ("/diagnostics", {}), ("/runs", {})):
            status, _ = _timed(get, route, dict(params, run=run))
            assert status == 200, (run, route)
    for run, words in PREVIEW_PROBLEMS.items():
        status, body = get("/examples", _params(run, "/examples"))
        assert body["examples"] and all(e["preview"] is None for e in body["examples"]), body
        assert any(words in problem for problem in body["preview_problems"]), (run, body)
        assert len(str(body["preview_problems"])) < 2000
    # What the diagnostics skip is said: the refused label issues and slices are the run's
    # error, and the rules that needed them say they are damaged.
    for run, rule, words in (
        ("ex_label_issues_longer_than_the_split", "label_issues", "a list longer than the split"),
        ("ex_million_group_values", "weak_slice", "1000000 examples with group values"),
    ):
        status, body = get("/diagnostics", {"run": run})
        [error] = [f for f in body["findings"] if f["severity"] == "error"]
        assert words in error["detail"], error
        [not_run] = [n for n in body["not_run"] if n["rule"] == rule]
        assert " damaged (tag metricsdiag/validation/" in not_run["reason"], not_run
    # The slices refused, the run's examples are still served (without group values, and
    # saying why), a slice of them is not.
    status, body = get("/examples", dict(CELL, run="ex_million_group_values"))
    assert status == 200 and body["examples"], body
    assert "1000000 examples with group values" in body["group_problems"][0], body
    assert all("groups" not in example for example in body["examples"]), body
    status, _ = get("/examples", dict(CELL, run="ex_million_group_values", slice="g=north"))
    assert status == 422
    status, body = get("/overview", {})
    assert status == 200
    entries = {entry["run"]: entry for entry in body["runs"]}
    assert {GOOD_RUN, "ex_million_group_values"} <= set(entries)
    assert "error" not in entries[GOOD_RUN]


def example_sweep(get):
    """Every route of the example records of every crafted run, once."""
    for run in sorted(CRAFTED):
        for route in ROUTES:
            get(route, _params(run, route))

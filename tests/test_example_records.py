"""Example records (format version 6): what `MetricsDiagWriter` stores per epoch and split (the
kept examples of every cell, the counts, correctness and confidence, the label issues, the id
table, the previews), decoded from real event files and checked against NumPy brute force,
cleanlab 2.x (the flagged set) and Pillow (the PNG thumbnails); bad input refused at the first
call with nothing written; hostile stored data refused fast, in bounded memory.

cleanlab (AGPL) and Pillow are test-only references (setup.py's "test" extra).
"""

import base64
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from conftest import read_events
from example_checks import (
    check_cells,
    cleanlab_flags,
    confidence_codes,
    png_pixels,
    stored,
)
from writer_checks import float32_softmax

from tb_metricsdiag import MetricsDiagWriter
from tb_metricsdiag.core import examples as examples_lib
from tb_metricsdiag.format import (
    crossings,
    example_ids,
    example_records,
    metadata,
    packed,
    previews,
    schema,
)
from tb_metricsdiag.format.schema import FormatError
from tb_metricsdiag.writing import example_recorder, inputs, thumbnails

# -- helpers ------------------------------------------------------------------------------


def noisy_logits(n=2000, classes=4, noise=0.1, seed=0, scale=3.0):
    """``(given labels, true labels, float32 logits)``: a model that learned the true labels,
    a share ``noise`` of the given labels replaced by another class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    logits = (rng.normal(size=(n, classes)) + scale * np.eye(classes)[truth]).astype(np.float32)
    flipped = rng.random(n) < noise
    given = np.where(flipped, (truth + rng.integers(1, classes, n)) % classes, truth)
    return given, truth, logits


# -- the writer's records against brute force ------------------------------------------------


@pytest.fixture(scope="module")
def multiclass_run(tmp_path_factory):
    """Three epochs of 2,000 examples x 4 classes, 10% of the labels wrong, string ids and
    28 x 28 image previews (uint8)."""
    log_dir = tmp_path_factory.mktemp("multiclass")
    given, _, logits = noisy_logits()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(given.size, 28, 28), dtype=np.uint8)
    ids = np.array(["row-%04d-é" % i for i in range(given.size)])
    epochs = [logits, logits * 1.3 + rng.normal(size=logits.shape).astype(np.float32), logits * 2]
    with MetricsDiagWriter(log_dir) as writer:
        for step, epoch_logits in enumerate(epochs):
            writer.add_evaluation(given, epoch_logits, step, example_ids=ids, previews=images)
    return log_dir, given, epochs, ids, images


def test_kept_examples_counts_and_correctness_equal_brute_force(multiclass_run):
    log_dir, given, epochs, _, _ = multiclass_run
    payloads = stored(log_dir, schema.KIND_EXAMPLES)
    confusion = read_events(str(log_dir))[schema.split_tag("validation", "confusion")]
    assert sorted(payloads) == [0, 1, 2]
    for step, logits in enumerate(epochs):
        scores = float32_softmax(logits)
        predicted = scores.argmax(axis=1)
        rows = np.arange(given.size)
        decoded = example_records.decode_examples(payloads[step])
        assert (decoded.num_classes, decoded.num_rows, decoded.multi_label) == (4, 2000, False)
        assert decoded.per_cell == examples_lib.DEFAULT_EXAMPLES_PER_CELL  # under the budget
        check_cells(decoded, given, predicted, scores[rows, predicted], scores[rows, given], 4)
        matrix = np.zeros((4, 4), np.int64)
        matrix.flat[decoded.cells] = decoded.counts
        np.testing.assert_array_equal(matrix, confusion[step][0])
        np.testing.assert_array_equal(decoded.correct, predicted == given)
        np.testing.assert_array_equal(decoded.confidence_codes, confidence_codes(scores.max(1)))
        listed = decoded.examples()
        assert listed["position"].size == sum(min(c, 25) for c in decoded.counts)


def test_flips_of_the_stored_records_equal_brute_force(multiclass_run):
    """The inputs /flips reads (ids, correctness, confidence) give, through `core.examples.flips`,
    the examples a brute force finds right at one step and wrong at the next."""
    log_dir, given, epochs, ids, _ = multiclass_run
    payloads = stored(log_dir, schema.KIND_EXAMPLES)
    (table_step,) = stored(log_dir, schema.KIND_EXAMPLE_IDS)
    table = example_ids.decode_example_ids(stored(log_dir, schema.KIND_EXAMPLE_IDS)[table_step])
    assert table_step == 0 and table.ids_at(np.arange(ids.size)) == ids.tolist()
    for before, after in ((0, 1), (1, 2)):
        old = example_records.decode_examples(payloads[before])
        new = example_records.decode_examples(payloads[after])
        result = examples_lib.flips(
            table.keys(), old.correct, table.keys(), new.correct, new.confidence
        )
        was = float32_softmax(epochs[before]).argmax(1) == given
        now = float32_softmax(epochs[after]).argmax(1) == given
        confidence = new.confidence
        for name, changed in (("became_wrong", was & ~now), ("became_right", ~was & now)):
            expected = np.flatnonzero(changed)
            expected = expected[np.lexsort((expected, -confidence[expected]))]
            assert result[name]["count"] == expected.size > 0
            np.testing.assert_array_equal(result[name]["after_index"], expected)
            assert table.ids_at(result[name]["after_index"][:3]) == ids[expected[:3]].tolist()


def test_label_issues_are_cleanlabs_on_the_same_probabilities(multiclass_run):
    log_dir, given, epochs, _, _ = multiclass_run
    payloads = stored(log_dir, schema.KIND_LABEL_ISSUES)
    assert sorted(payloads) == [0, 1, 2]
    for step, logits in enumerate(epochs):
        probabilities = float32_softmax(logits)
        issues = example_records.decode_label_issues(payloads[step])
        expected = cleanlab_flags(given, probabilities.astype(np.float64))
        assert issues.count == expected.size > 50
        assert issues.position.size == expected.size  # fewer than the 1,000 listed
        np.testing.assert_array_equal(np.sort(issues.position), expected)
        assert issues.share == pytest.approx(expected.size / given.size)
        assert (issues.num_rows, issues.examples) == (2000, 2000)
        np.testing.assert_array_equal(issues.given, given[issues.position])
        assert np.all(issues.suggested != issues.given)
        np.testing.assert_array_equal(
            issues.given_score, probabilities[issues.position, issues.given]
        )
        np.testing.assert_array_equal(
            issues.suggested_score, probabilities[issues.position, issues.suggested]
        )
        assert np.all(np.diff(issues.given_score) >= 0)  # the least likely given label first
        assert issues.bins["count"].sum() == given.size
        assert issues.bins["correct"].sum() == (probabilities.argmax(1) == given).sum()


def test_previews_are_stored_once_per_run_as_thumbnails(multiclass_run):
    log_dir, given, epochs, ids, images = multiclass_run
    payloads = stored(log_dir, schema.KIND_PREVIEWS)
    examples = stored(log_dir, schema.KIND_EXAMPLES)
    issues = stored(log_dir, schema.KIND_LABEL_ISSUES)
    samples = stored(log_dir, schema.KIND_CROSSINGS)
    seen = set()
    for step in sorted(examples):
        kept = set(example_records.decode_examples(examples[step]).position.tolist())
        kept |= set(example_records.decode_label_issues(issues[step]).position.tolist())
        # The crossing samples too, after them (all fit the run's caps here).
        kept |= set(crossings.decode_crossings(samples[step]).position.tolist())
        new = {ids[position] for position in kept} - seen
        assert new or step not in payloads
        found = previews.decode_previews(payloads[step]) if new else {}
        assert set(found) == new  # the new kept examples, none twice
        for key in list(found)[:50]:
            position = int(key[4:8])
            np.testing.assert_array_equal(png_pixels(found[key]["image"]), images[position])
        seen |= new


def test_multi_label_examples_per_label(tmp_path):
    rng = np.random.default_rng(3)
    labels = (rng.random((500, 3)) < 0.4).astype(np.int64)
    probabilities = np.clip(labels * 0.6 + rng.random((500, 3)) * 0.5, 0, 1).astype(np.float32)
    with MetricsDiagWriter(tmp_path, multi_label=True) as writer:
        writer.add_evaluation(labels, probabilities, 0, previews=["t%d" % i for i in range(500)])
    decoded = example_records.decode_examples(stored(tmp_path, schema.KIND_EXAMPLES)[0])
    assert decoded.multi_label and decoded.num_classes == 3
    decided = probabilities >= np.float32(0.5)
    one = np.float32(1)
    for label in range(3):
        p = probabilities[:, label]
        score = np.where(decided[:, label], p, one - p)
        true_score = np.where(labels[:, label] == 1, p, one - p)
        check_cells(
            decoded, labels[:, label], decided[:, label].astype(int), score, true_score, 2, label
        )
    np.testing.assert_array_equal(decoded.correct, (decided == labels).all(axis=1))
    worst = np.where(decided, probabilities, 1 - probabilities).min(axis=1)
    np.testing.assert_array_equal(decoded.confidence_codes, confidence_codes(worst))
    assert stored(tmp_path, schema.KIND_LABEL_ISSUES) == {}  # single-label tasks only
    texts = previews.decode_previews(stored(tmp_path, schema.KIND_PREVIEWS)[0])
    assert texts and all(texts[key] == {"text": "t%d" % key} for key in texts)


def test_binary_single_unit_and_nonfinite_rows(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.6 * y + rng.random(400) * 0.5, 0, 1).astype(np.float32)
    p[[3, 17]] = np.nan  # left out of every count
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_evaluation(y, p, 0, split="test")
    decoded = example_records.decode_examples(stored(tmp_path, schema.KIND_EXAMPLES, "test")[0])
    finite = np.isfinite(p)
    scores = np.stack([1 - p, p], axis=1)
    predicted = (p >= 0.5).astype(int)
    rows = np.arange(400)
    score, true_score = scores[rows, predicted], scores[rows, y]
    keep = np.flatnonzero(finite)
    actual = np.where(finite, y, -1)  # the left-out rows in no cell
    check_cells(decoded, actual, predicted, score, true_score, 2)
    assert decoded.counts.sum() == keep.size
    assert not decoded.correct[[3, 17]].any() and not decoded.confidence_codes[[3, 17]].any()
    issues = example_records.decode_label_issues(
        stored(tmp_path, schema.KIND_LABEL_ISSUES, "test")[0]
    )
    assert (issues.num_rows, issues.examples) == (400, 398)
    expected = keep[cleanlab_flags(y[keep], scores[keep].astype(np.float64))]
    np.testing.assert_array_equal(np.sort(issues.position), expected)


def test_the_id_table_is_written_where_it_changes(tmp_path):
    given, _, logits = noisy_logits(n=300)
    a = np.arange(300) * 7
    b = np.array(["x%d" % i for i in range(300)])
    with MetricsDiagWriter(tmp_path) as writer:
        for step, ids in enumerate([np.arange(300), a, a, b, b, None]):  # positions first
            writer.add_evaluation(given, logits, step, example_ids=ids)
        writer.add_evaluation(given, logits, 6, example_ids=False)  # no records at all
    tables = stored(tmp_path, schema.KIND_EXAMPLE_IDS)
    assert sorted(tables) == [1, 3, 5]
    decoded = {step: example_ids.decode_example_ids(payload) for step, payload in tables.items()}
    assert decoded[1].ids_at([0, 299]) == [0, 2093] and not decoded[1].are_strings
    assert decoded[3].ids_at([2, 299]) == ["x2", "x299"] and decoded[3].are_strings
    assert decoded[5].kind == example_ids.POSITIONS and decoded[5].size == 300
    assert sorted(stored(tmp_path, schema.KIND_EXAMPLES)) == [0, 1, 2, 3, 4, 5]


def test_any_valid_split_name(tmp_path):
    given, _, logits = noisy_logits(n=100)
    with MetricsDiagWriter(tmp_path) as writer:
        for split in ("test", "ood", "eval_short.v-2", "x" * 64):
            writer.add_evaluation(given, logits, 0, split=split)
        for split in ("", "a/b", "x" * 65, "é", "a b", None):
            with pytest.raises(ValueError, match="a split name is 1 to 64 characters"):
                writer.add_evaluation(given, logits, 1, split=split)
    events = read_events(str(tmp_path))
    for split in ("test", "ood", "eval_short.v-2", "x" * 64):
        for kind in (schema.KIND_CONFUSION, schema.KIND_EXAMPLES, schema.KIND_LABEL_ISSUES):
            assert sorted(events[schema.split_tag(split, kind)]) == [0]
    assert not any(step == 1 for series in events.values() for step in series)


def test_example_kinds_need_format_version_6(tmp_path, monkeypatch):
    given, _, logits = noisy_logits(n=100)
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_evaluation(
            given, logits, 0, example_ids=np.arange(100) + 5, previews=["a"] * 100
        )
    events = read_events(str(tmp_path), decode=False)
    for kind in schema.EXAMPLE_KINDS:
        _, content = events[schema.split_tag("validation", kind)][0]
        parsed = metadata.parse_plugin_content(content)
        assert (parsed["version"], parsed["kind"], parsed["split"]) == (6, kind, "validation")
    assert schema.FORMAT_VERSION >= 6
    monkeypatch.setattr(metadata, "FORMAT_VERSION", 5)
    with pytest.raises(FormatError, match="format version 6.*upgrade tb-metricsdiag"):
        metadata.parse_plugin_content(content)
    _, confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0]
    assert metadata.parse_plugin_content(confusion)["version"] == 5  # still read by version 5


# -- the writers' state: batches, budget, previews ------------------------------------------


def _epoch(layout_of, given, probabilities, batches, seed=0):
    """An `EpochExamples` fed the rows in ``batches`` random contiguous pieces."""
    epoch = example_recorder.EpochExamples(layout_of, given.size)
    cuts = np.sort(
        np.random.default_rng(seed).choice(np.arange(1, given.size), batches - 1, replace=False)
    )
    for piece in np.split(np.arange(given.size), cuts):
        epoch.update(piece, given[piece], probabilities[piece], probabilities[piece].argmax(1))
    return epoch


def test_the_bytes_do_not_depend_on_the_batches(monkeypatch):
    """The Keras callback feeds batches, the writer a whole epoch: the same records, byte for
    byte, also when confident learning's blocks are smaller than the epoch."""
    monkeypatch.setattr(example_recorder, "_BLOCK_VALUES", 4 * 300)
    monkeypatch.setattr(example_recorder, "_MIN_BLOCK_ROWS", 1)
    given, _, logits = noisy_logits(n=2000, noise=0.2)
    probabilities = float32_softmax(logits)
    layout = inputs.new_layout(4, "test")
    one = _epoch(layout, given, probabilities, 1)
    whole = one.finish(2500, 1000)
    assert len(whole[0]) > 1000 and len(whole[1]) > 1000
    for batches in (7, 40):
        epoch = _epoch(layout, given, probabilities, batches, seed=batches)
        assert epoch.finish(2500, 1000) == whole
        np.testing.assert_array_equal(epoch.preview_order(2500), one.preview_order(2500))


def test_the_epoch_budget_lowers_the_examples_per_cell():
    rng = np.random.default_rng(5)
    n, classes, budget = 3000, 30, 600
    given = rng.integers(0, classes, n)
    logits = (rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[given]).astype(np.float32)
    probabilities = float32_softmax(logits)
    recorder = example_recorder.ExampleRecorder(budget=budget)
    epoch = _epoch(inputs.new_layout(classes, "test"), given, probabilities, 3)
    decoded = example_records.decode_examples(recorder.records("validation", epoch)[0].value.item())
    counts = np.bincount(given * classes + probabilities.argmax(1), minlength=classes**2)
    counts = counts[counts > 0]
    fitting = [
        limit for limit in range(10, 26) if np.minimum(counts, min(limit, 25)).sum() <= budget
    ]
    expected = fitting[-1] if fitting else 10
    assert decoded.per_cell == expected < 25
    rows = np.arange(n)
    predicted = probabilities.argmax(1)
    check_cells(
        decoded,
        given,
        predicted,
        probabilities[rows, predicted],
        probabilities[rows, given],
        classes,
    )
    assert decoded.position.size <= max(budget, 10 * counts.size)


def test_previews_follow_the_documented_order_within_the_caps():
    given, _, logits = noisy_logits(n=1500, noise=0.15)
    probabilities = float32_softmax(logits)
    texts = np.array(["text %d" % i for i in range(given.size)], dtype=object)
    layout = inputs.new_layout(4, "test")
    limit = 90
    recorder = example_recorder.ExampleRecorder(preview_limit=limit)
    written = recorder.records("validation", _epoch(layout, given, probabilities, 2), None, texts)
    by_kind = {record.tag.rsplit("/", 1)[1]: record.value.item() for record in written}
    decoded = example_records.decode_examples(by_kind["examples"])
    issues = example_records.decode_label_issues(by_kind["label_issues"])
    # Brute force: every cell's first example, then every cell's second... then the listed
    # label issues of the same rank; a position once.
    kept = decoded.examples()
    order = sorted(
        [
            (rank, 0, index, position)
            for index, (rank, position) in enumerate(
                zip(kept["rank"].tolist(), kept["position"].tolist())
            )
        ]
        + [(rank, 1, rank, position) for rank, position in enumerate(issues.position.tolist())]
    )
    expected = []
    for *_, position in order:
        if position not in expected:
            expected.append(position)
    stored_previews = previews.decode_previews(by_kind["previews"])
    assert list(stored_previews) == expected[:limit]
    assert stored_previews[expected[0]] == {"text": "text %d" % expected[0]}
    assert recorder.previews_stored == limit
    # The cap is reached: a later epoch stores no preview at all.
    later = recorder.records(
        "validation", _epoch(layout, given, probabilities * 0.9 + 0.025, 2), None, texts
    )
    assert all(not record.tag.endswith("/previews") for record in later)
    # A byte cap stops at the first preview that would not fit.
    fitting = sum(len("text %d" % position) for position in expected[:10])
    small = example_recorder.ExampleRecorder(preview_bytes=fitting + 3)
    written = small.records("validation", _epoch(layout, given, probabilities, 2), None, texts)
    (payload,) = [r.value.item() for r in written if r.tag.endswith("/previews")]
    assert list(previews.decode_previews(payload)) == expected[:10]


def test_thumbnails_shrink_to_64_pixels_by_block_means():
    rng = np.random.default_rng(6)
    floats = rng.random((2, 130, 70, 3))
    small = thumbnails.thumbnails(floats)
    assert small.shape == (2, 44, 24, 3) and small.dtype == np.uint8  # factor 3
    padded = np.pad(floats, [(0, 0), (0, 2), (0, 2), (0, 0)], mode="edge")
    for i, j in [(0, 0), (43, 23), (20, 11)]:
        block = padded[:, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3].reshape(2, 9, 3)
        np.testing.assert_allclose(small[:, i, j], np.rint(block.mean(axis=1) * 255), atol=1)
    grey = rng.integers(0, 256, (1, 128, 64, 1), dtype=np.uint8)
    from PIL import Image

    expected = np.asarray(Image.fromarray(grey[0, :, :, 0]).reduce(2))
    np.testing.assert_allclose(thumbnails.thumbnails(grey)[0], expected, atol=1)
    assert thumbnails.thumbnail(grey[0]).shape == (64, 32)
    kind, png = thumbnails.stored_preview(floats[0])
    image = png_pixels("data:image/png;base64," + base64.b64encode(png).decode())
    assert kind == previews.IMAGE and image.shape == (44, 24, 3)
    kind, text = thumbnails.stored_preview("é" * 1500)
    assert kind == previews.TEXT and text.decode("utf-8") == "é" * 1000


# -- bad input: a clear ValueError at the first call, nothing written -------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"example_ids": [1, 2, 2, 3]}, "must be unique"),
        ({"example_ids": [1, 2, 3]}, "give one id per example, 4"),
        ({"example_ids": ["a", "b", "c", "x" * 129]}, "1 to 128 characters"),
        ({"example_ids": [0.5, 1, 2, 3]}, "integers or strings"),
        ({"previews": np.zeros((4, 5), np.uint8)}, r"images must be \[n, H, W\]"),
        ({"previews": np.zeros((4, 5, 5, 2), np.uint8)}, r"\[n, H, W, 1 \| 3\]"),
        ({"previews": np.zeros((3, 5, 5), np.uint8)}, "for 4 examples"),
        ({"previews": np.full((4, 5, 5), 2.0)}, r"lie in \[0, 1\]"),
        ({"previews": np.zeros((4, 5, 5), np.int32)}, "uint8 .0-255. or floats"),
        ({"previews": ["a", "b", 3, "d"]}, "must all be strings"),
        ({"groups": {"country": ["a"] * 3}}, r"groups\['country'\] has shape \(3,\)"),
        ({"example_ids": False, "previews": ["a"] * 4}, "example_ids=False turns off"),
    ],
)
def test_bad_per_example_input_writes_nothing(tmp_path, kwargs, message):
    with MetricsDiagWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=message):
            writer.add_evaluation([0, 1, 1, 0], np.array([0.2, 0.7, 0.9, 0.4]), 0, **kwargs)
        assert writer.layout is None  # the next call is still the first
    assert read_events(str(tmp_path)) == {}


def test_an_id_table_too_large_is_refused_at_the_first_call(tmp_path, monkeypatch):
    monkeypatch.setattr(example_ids, "MAX_ID_TABLE_BYTES", 1000)
    with MetricsDiagWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="give shorter ids"):
            writer.add_evaluation(
                [0, 1] * 50, np.full(100, 0.5), 0, example_ids=["%020d" % i for i in range(100)]
            )
    assert read_events(str(tmp_path)) == {}


# -- hostile stored data: refused fast, in bounded memory ---------------------------------


def _refused(decode, payload, match, memory=4 << 20):
    """Decoding ``payload`` raises FormatError(match) within 1 s, allocating under ``memory``
    bytes."""
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(FormatError, match=match):
            decode(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - began < 1.0
    assert peak < memory, peak


def _png(width, height, colour=0, data=None, crc_ok=True):
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)

    def chunk(kind, body, ok=True):
        crc = zlib.crc32(kind + body) ^ (0 if ok else 1)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    data = zlib.compress(b"\0" * (height * (1 + width))) if data is None else data
    return (
        previews.PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", data, crc_ok)
        + chunk(b"IEND", b"")
    )


def _preview_payload(kind, data, key=1):
    return previews.encode_previews(np.array([key]), [(kind, data)])


def test_hostile_id_tables_are_refused():
    decode = example_ids.decode_example_ids
    _refused(decode, bytes([1]) + struct.pack("<cI", b"q", 10**6) + b"\0" * 80, "truncated")
    _refused(decode, bytes([1]) + struct.pack("<cI", b"q", 2**31), "more than")
    # One string declared 10 MB long.
    ten_mb = bytes([1]) + struct.pack("<cI", b"s", 1) + b"i" + struct.pack("<i", 10 << 20)
    _refused(decode, ten_mb + b"a" * 100, r"expected 1 to 512")
    invalid = bytes([1]) + struct.pack("<cI", b"s", 1) + b"B" + bytes([2]) + b"\xff\xfe"
    _refused(decode, invalid, "not UTF-8")
    # "é" split across two ids: UTF-8 as a whole, not each on its own.
    straddling = bytes([1]) + struct.pack("<cI", b"s", 2) + b"B" + bytes([1, 1]) + "é".encode()
    _refused(decode, straddling, "each on their own")
    _refused(decode, example_ids.encode_example_ids(np.array([3, 4, 3])), "repeat an id")
    _refused(decode, example_ids.encode_example_ids(np.array(["a", "b", "a"])), "repeat an id")
    _refused(decode, example_ids.encode_example_ids(np.array([3])) + b"x", "follow")
    _refused(decode, "text", "expected bytes")
    too_long = bytes([1]) + struct.pack("<cI", b"s", 1) + b"B" + bytes([200]) + b"a" * 200
    _refused(decode, too_long, "more than 128")


def _string_table(texts):
    return bytes([1]) + struct.pack("<cI", b"s", len(texts)) + packed.encode_strings(texts)


def test_a_million_ids_are_checked_in_bounded_time_and_memory():
    """A table of another number of ids than the rows is refused from its header; a million
    ids are checked for repeats in tens of MB (not the 670 MB of one key per byte); ids whose
    matching keys would exceed MAX_ID_KEY_BYTES are refused on read and on write."""
    decode = example_ids.decode_example_ids
    texts = ["e%d" % i for i in range(10**6)]
    _refused(lambda p: decode(p, "ids", size_expected=200), _string_table(texts), "for 200 rows")
    texts[-1] = texts[0]
    repeated = _string_table(texts)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="repeat an id"):
            decode(repeated)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20, peak
    texts[-1], texts[1] = "last", "\U0001f642" * 128  # 512 bytes: keys of 520 MB
    # Refused from the lengths (8 MB as int64), before the bytes are read.
    _refused(decode, _string_table(texts), "would take 520000000 bytes to match", 12 << 20)
    with pytest.raises(ValueError, match="more similar lengths"):
        example_ids.encode_example_ids(np.array(texts, dtype=object))


def test_string_keys_match_exactly_when_the_ids_are_equal():
    rng = np.random.default_rng(4)
    alphabet = ["a", "b", "\0", "\u00e9", "\U0001f642"]

    def table(size):
        texts = {
            "".join(alphabet[k] for k in rng.integers(0, len(alphabet), rng.integers(1, 12)))
            for _ in range(size)
        }
        return sorted(texts), decode(
            example_ids.encode_example_ids(np.array(sorted(texts), object))
        )

    decode = example_ids.decode_example_ids
    (texts_a, ids_a), (texts_b, ids_b) = table(300), table(300)
    assert ids_a.ids_at(np.arange(ids_a.size)) == texts_a
    equal_texts = np.array([[a == b for b in texts_b] for a in texts_a])
    keys_a, keys_b = ids_a.keys(), ids_b.keys()
    np.testing.assert_array_equal(keys_a[:, None] == keys_b[None, :], equal_texts)
    assert equal_texts.any()


def test_hostile_previews_are_refused():
    decode = previews.decode_previews
    huge = _png(65535, 65535, data=zlib.compress(b"\0" * 1000))
    _refused(decode, _preview_payload(previews.IMAGE, huge), "65535 x 65535")
    bomb = zlib.compress(b"\0" * (4 << 20), 9)  # 4 MB of rows declared as 64 x 64
    _refused(
        decode,
        _preview_payload(previews.IMAGE, _png(64, 64, data=bomb[:30000])),
        "not a PNG of at most|does not hold|not zlib",
    )
    _refused(decode, _preview_payload(previews.IMAGE, _png(8, 8, crc_ok=False)), "checksum")
    _refused(decode, _preview_payload(previews.IMAGE, _png(8, 8, colour=6)), "grey or RGB")
    _refused(decode, _preview_payload(previews.IMAGE, b"GIF89a" + b"\0" * 40), "not a PNG")
    _refused(decode, _preview_payload(previews.TEXT, b"a" * (10 << 20)), "over 1000 characters")
    _refused(decode, _preview_payload(previews.TEXT, b"\xff\xfe"), "not UTF-8")
    unknown = b"\x01" + example_ids.encode_ids(np.array([1])) + b"x" + b"B\x03" + b"abc"
    _refused(decode, unknown, "unknown kind")
    _refused(decode, b"\x01" + struct.pack("<cI", b"q", 1 << 20) + b"\0" * 8, "truncated")
    _refused(decode, b"\x01" + struct.pack("<cI", b"p", 3), "unknown kind")  # never positions
    assert decode(_preview_payload(previews.IMAGE, _png(8, 8))) == {
        1: {"image": decode(_preview_payload(previews.IMAGE, _png(8, 8)))[1]["image"]}
    }


@pytest.fixture(scope="module")
def genuine():
    """A genuine examples payload and label-issues payload of 2,000 x 4 (10% noise)."""
    given, _, logits = noisy_logits()
    probabilities = float32_softmax(logits)
    epoch = _epoch(inputs.new_layout(4, "test"), given, probabilities, 1)
    return epoch.finish(2500, 1000)


def _examples_header(payload, **changes):
    fields = dict(
        zip(
            ["layout", "flags", "classes", "rows", "cells", "per_cell", "kept"],
            struct.unpack_from("<BBIIIII", payload),
        )
    )
    fields.update(changes)
    return struct.pack("<BBIIIII", *fields.values()) + payload[22:]


def test_hostile_example_records_are_refused(genuine):
    examples_payload, issues_payload = genuine
    decode = example_records.decode_examples
    assert decode(examples_payload).num_rows == 2000
    _refused(decode, examples_payload[:-1], "truncated")
    _refused(decode, examples_payload + b"\0", "follow")
    _refused(decode, _examples_header(examples_payload, rows=2**31), "rows")
    _refused(decode, _examples_header(examples_payload, rows=10**6), "truncated")
    _refused(decode, _examples_header(examples_payload, classes=1 << 20), "classes")
    _refused(decode, _examples_header(examples_payload, kept=1 << 21), "kept")
    _refused(decode, _examples_header(examples_payload, per_cell=3), "kept examples, but")
    _refused(decode, _examples_header(examples_payload, layout=2), "unknown layout")
    # The scores of the first kept example: NaN, then out of the contract's order.
    decoded = decode(examples_payload)
    offset = len(examples_payload) - 2000 - 250 - 2 * 4 * decoded.position.size
    nan = (
        examples_payload[:offset] + struct.pack("<f", float("nan")) + examples_payload[offset + 4 :]
    )
    _refused(decode, nan, r"outside \[0, 1\]")
    kept = decoded.examples()
    second = int(np.flatnonzero((kept["true"] != kept["pred"]) & (kept["rank"] == 1))[0])
    at = offset + 4 * second  # the second example of an error cell, made the most confident
    swapped = examples_payload[:at] + struct.pack("<f", 1.0) + examples_payload[at + 4 :]
    _refused(decode, swapped, "order")

    decode = example_records.decode_label_issues
    issues = decode(issues_payload)
    fields = list(struct.unpack_from("<BIIIIII", issues_payload))

    def header(**changes):
        values = dict(
            zip(["layout", "classes", "rows", "examples", "count", "listed", "bins"], fields)
        )
        values.update(changes)
        return struct.pack("<BIIIIII", *values.values()) + issues_payload[25:]

    # A list longer than the split, flagged more than seen, a 10^6-long list declared.
    _refused(decode, header(rows=issues.count - 1, examples=issues.count - 1), "longer than")
    _refused(decode, header(listed=issues.count + 1), "longer than")
    _refused(decode, header(rows=10**6, examples=10**6, count=10**6, listed=10**6), "truncated")
    _refused(decode, header(bins=2000), "bins")
    _refused(decode, issues_payload[:-8] + struct.pack("<d", float("nan")), "logit sums")

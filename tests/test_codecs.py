"""The stored encodings: threshold counts (format version 2) with their average precision
(version 3), and the Keras logs (version 3). Lossless, and refused clearly when damaged."""

import re
import zlib

import numpy as np
import pytest

from tb_metricsdiag.format import (
    confusion_counts,
    metadata,
    schema,
    stored_json,
    threshold_counts,
    threshold_grid,
)


def _cumulative(rng, shape, largest):
    """Counts at ascending thresholds: non-increasing along the last axis."""
    return np.sort(rng.integers(0, largest + 1, size=shape), axis=-1)[..., ::-1]


@pytest.mark.parametrize("shape", [(1, 2, 1), (2, 2, 5), (10, 2, 201), (100, 2, 11)])
@pytest.mark.parametrize("largest, code", [(3, b"B"), (300, b"H"), (70_000, b"H"), (2**40, b"q")])
def test_round_trip_is_exact_in_the_smallest_type(shape, largest, code):
    counts = _cumulative(np.random.default_rng(largest), shape, largest)
    payload = threshold_counts.encode_threshold_counts(counts)
    decoded, average_precision, roc_auc = threshold_counts.decode_threshold_counts(
        payload, shape[0]
    )
    assert average_precision is None and roc_auc is None
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, counts)
    # The type is that of the buckets (differences), not of the cumulative counts: 70,000
    # examples spread over buckets need only 16 bits.
    buckets = counts.copy()
    buckets[..., :-1] -= counts[..., 1:]
    assert payload[:1] == (b"B" if buckets.max() < 256 else b"H" if buckets.max() < 65536 else code)


def test_counts_that_are_not_cumulative_still_round_trip():
    rng = np.random.default_rng(0)
    for counts in (rng.integers(0, 50, size=(4, 2, 7)), rng.integers(-5, 50, size=(4, 2, 7))):
        np.testing.assert_array_equal(
            threshold_counts.decode_threshold_counts(
                threshold_counts.encode_threshold_counts(counts), 4
            )[0],
            counts,
        )


def test_typical_counts_are_several_times_smaller_than_the_integers():
    rng = np.random.default_rng(1)
    counts = _cumulative(rng, (10, 2, 201), 200)  # 200 examples: uint8 integers, 4,020 bytes
    assert len(threshold_counts.encode_threshold_counts(counts)) < 4020 / 3


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "malformed"),
        (b"H", "malformed"),
        (b"x" + zlib.compress(b"\0" * 8), "malformed"),  # an unknown type code
        ("H" + "text", "malformed"),  # not bytes
        (b"Hnot zlib", "not valid zlib"),
        (b"H" + zlib.compress(b"\0" * 40)[:-3], "truncated"),
        (b"H" + zlib.compress(b"\0" * 40) + b"tail", "followed"),
        (b"H" + zlib.compress(b"\0" * 6), "do not fit 2 classes"),  # 3 uint16: not [2, 2, T]
        (b"H" + zlib.compress(b""), "do not fit"),
    ],
)
def test_damaged_payloads_raise_format_errors(payload, message):
    with pytest.raises(schema.FormatError, match=message):
        threshold_counts.decode_threshold_counts(payload, 2)


def test_average_precision_travels_with_the_counts_bit_for_bit():
    rng = np.random.default_rng(5)
    counts = _cumulative(rng, (3, 2, 11), 40)
    average_precision = np.array([0.123456789012345, np.nan, 1.0])
    payload = threshold_counts.encode_threshold_counts(counts, average_precision)
    assert len(payload) == len(threshold_counts.encode_threshold_counts(counts)) + 3 * 8
    decoded, stored, _ = threshold_counts.decode_threshold_counts(
        payload, 3, with_average_precision=True
    )
    np.testing.assert_array_equal(decoded, counts)
    assert stored.dtype == np.float64 and stored.tobytes() == average_precision.tobytes()


@pytest.mark.parametrize(
    "with_ap_written, with_ap_read, tail, message",
    [
        (True, False, b"", "followed by 24 bytes, expected 0 (nothing)"),
        (False, True, b"", "followed by 0 bytes, expected 24 (3 average precisions)"),
        (True, True, b"x", "followed by 25 bytes, expected 24"),
    ],
)
def test_average_precision_that_does_not_fit_is_refused(
    with_ap_written, with_ap_read, tail, message
):
    counts = np.zeros((3, 2, 4), np.int64)
    payload = (
        threshold_counts.encode_threshold_counts(counts, np.zeros(3) if with_ap_written else None)
        + tail
    )
    with pytest.raises(schema.FormatError, match=re.escape(message)):
        threshold_counts.decode_threshold_counts(payload, 3, with_average_precision=with_ap_read)
    with pytest.raises(ValueError, match="does not fit 3 classes"):
        threshold_counts.encode_threshold_counts(counts, np.zeros(2))


def test_summaries_carry_the_lowest_version_that_reads_them():
    dense = metadata.parse_plugin_content(
        metadata.create_summary_metadata(schema.KIND_CONFUSION).plugin_data.content
    )
    encoded = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            thresholds=[0.5],
            encoding=schema.THRESHOLD_COUNTS_ENCODING,
        ).plugin_data.content
    )
    logs = metadata.parse_plugin_content(
        metadata.create_summary_metadata(schema.KIND_LOGS).plugin_data.content
    )
    with_ap = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            thresholds=[0.5],
            encoding=schema.THRESHOLD_COUNTS_ENCODING,
            average_precision="exact",
        ).plugin_data.content
    )
    assert with_ap["version"] == 3 and with_ap["average_precision"] == "exact"
    assert dense["version"] == 1 and "encoding" not in dense
    assert encoded["version"] == 2
    assert encoded["encoding"] == schema.THRESHOLD_COUNTS_ENCODING
    assert logs["version"] == 3
    with_auc = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            thresholds=[0.5],
            encoding=schema.THRESHOLD_COUNTS_ENCODING,
            average_precision="exact",
            roc_auc="exact",
        ).plugin_data.content
    )
    assert with_auc["version"] == 4 and with_auc["roc_auc"] == "exact"
    sparse = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_CONFUSION, encoding=schema.CONFUSION_ENCODING
        ).plugin_data.content
    )
    assert sparse["version"] == 5
    assert sparse["encoding"] == schema.CONFUSION_ENCODING
    multilabel = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_CONFUSION, task=schema.TASK_MULTILABEL
        ).plugin_data.content
    )
    exact_match = metadata.parse_plugin_content(
        metadata.create_summary_metadata(schema.KIND_EXACT_MATCH).plugin_data.content
    )
    assert multilabel["version"] == exact_match["version"] == 5
    assert confusion_counts.is_multilabel(multilabel) and not confusion_counts.is_multilabel(dense)


def test_multilabel_counts_are_checked_when_read():
    import collections

    datum = collections.namedtuple("Datum", "step numpy")
    good = np.array([[[3, 1], [0, 4]], [[5, 0], [2, 1]]])
    assert confusion_counts.multilabel_matrices([datum(2, good)])[2].tolist() == good.tolist()
    for bad, message in (
        (good[:, 0], r"expected \[K, 2, 2\]"),
        (good.astype(float), "expected integers"),
        (-good, "negative"),
        (np.array([[[3, 1], [0, 4]], [[5, 0], [2, 2]]]), "different numbers of rows"),
    ):
        with pytest.raises(schema.FormatError, match=message):
            confusion_counts.multilabel_matrices([datum(0, bad)])
    assert confusion_counts.exact_matches(np.array([3, 8]), 8) == 3
    for bad in (np.array([9, 8]), np.array([3, 7]), np.array([3.0, 8.0]), np.array([1])):
        with pytest.raises(schema.FormatError, match="exact-match"):
            confusion_counts.exact_matches(bad, 8)


@pytest.mark.parametrize(
    "logs, text",
    [
        ({"loss": 0.25, "val_loss": np.float32(0.5)}, '{"loss":0.25,"val_loss":0.5}'),
        (
            {"loss": float("nan"), "b": np.inf, "a": -np.inf},
            '{"a":"-Infinity","b":"Infinity","loss":"NaN"}',
        ),
        ({"loss": 1, "note": "text", "vector": np.ones(2), "none": None}, '{"loss":1.0}'),
        ({"note": "text"}, None),
        ({}, None),
    ],
)
def test_logs_are_strict_json_and_read_back(logs, text):
    assert stored_json.encode_logs(logs) == text
    if text is not None:
        decoded = stored_json.decode_logs(text)
        for key, value in decoded.items():
            np.testing.assert_equal(value, float(logs[key]))


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON list, expected an object"),
        ('{"loss": "1.5"}', "expected a number"),
        ('{"loss": true}', "expected a number"),
        ('{"loss": null}', "expected a number"),
        ('{"loss": {"nested": 1}}', "expected a number"),
    ],
)
def test_damaged_logs_raise_format_errors(text, message):
    with pytest.raises(schema.FormatError, match=message):
        stored_json.decode_logs(text)


def test_roc_auc_follows_the_average_precision_bit_for_bit():
    counts = _cumulative(np.random.default_rng(5), (3, 2, 11), 50)
    average_precision = np.array([0.5, np.nan, 0.25])
    roc_auc = np.array([0.75, np.nan, 1 / 3])
    payload = threshold_counts.encode_threshold_counts(counts, average_precision, roc_auc)
    assert len(payload) == len(threshold_counts.encode_threshold_counts(counts)) + 2 * 3 * 8
    decoded, ap, auc = threshold_counts.decode_threshold_counts(
        payload, 3, with_average_precision=True, with_roc_auc=True
    )
    np.testing.assert_array_equal(decoded, counts)
    assert ap.tobytes() == average_precision.tobytes() and auc.tobytes() == roc_auc.tobytes()
    with pytest.raises(schema.FormatError, match="followed by 48 bytes, expected 24"):
        threshold_counts.decode_threshold_counts(payload, 3, with_average_precision=True)
    with pytest.raises(ValueError, match="ROC AUC"):
        threshold_counts.encode_threshold_counts(counts, None, roc_auc)


def test_the_default_logit_grid_is_stored_as_its_parameters():
    from tb_metricsdiag.core import counting

    grid = counting.default_thresholds()
    encoded = threshold_grid.encode_thresholds(grid)
    assert encoded == {"logit_range": 9.0, "num": 201}
    assert np.array_equal(threshold_grid.decode_thresholds(encoded, 201), grid)
    content = metadata.parse_plugin_content(
        metadata.create_summary_metadata(
            schema.KIND_THRESHOLD_COUNTS,
            thresholds=grid,
            encoding=schema.THRESHOLD_COUNTS_ENCODING,
        ).plugin_data.content
    )
    assert content["version"] == 5  # a version-4 reader asks for an upgrade
    # Another grid spaced in logit, or one value off, is stored as its values.
    other = counting.logit_thresholds(51, 4.0)
    assert threshold_grid.encode_thresholds(other) == other.tolist()
    moved = grid.copy()
    moved[7] = np.nextafter(moved[7], 1)
    assert threshold_grid.encode_thresholds(moved) == moved.tolist()
    for bad in (
        {"logit_range": 9.0, "num": 10**9},
        {"logit_range": float("nan"), "num": 201},
        {"logit_range": 1e300, "num": 201},
        {"logit_range": "9", "num": 201},
        {"logit_range": 9.0, "num": 200},
    ):
        with pytest.raises(schema.FormatError):
            threshold_grid.decode_thresholds(bad, 201)

"""Checks shared by the example-record tests (tests/test_example_records.py, the writer's;
tests/test_keras_example_records.py, the Keras callback's): stored payloads read from real
event files, the kept examples of every cell against brute force, and the references (cleanlab's
flagged set, Pillow's PNG decoding)."""

import base64
import io
import warnings

import numpy as np
from conftest import read_events

from tb_metricsdiag.format import schema


def stored(log_dir, kind, split="validation"):
    """``{step: payload bytes}`` of one kind of example record."""
    events = read_events(str(log_dir), decode=False)
    series = events.get(schema.split_tag(split, kind), {})
    return {step: value.item() for step, (value, _) in series.items()}


def brute_force_cell(actual, predicted, score, true, pred, limit):
    """``(count, the first ``limit`` positions)`` of cell (true, pred): errors by score
    descending, right ones ascending, equal scores the lower position first."""
    rows = np.flatnonzero((actual == true) & (predicted == pred))
    key = score[rows].astype(np.float64)
    if true != pred:
        key = -key
    return rows.size, rows[np.lexsort((rows, key))][:limit]


def check_cells(stored_examples, actual, predicted, score, true_score, num_classes, label=None):
    """Every cell of a decoded `StoredExamples` against brute force on the written scores."""
    limit = stored_examples.per_cell
    for true in range(num_classes if label is None else 2):
        for pred in range(num_classes if label is None else 2):
            count, expected = brute_force_cell(actual, predicted, score, true, pred, limit)
            got = stored_examples.cell(true, pred, label)
            assert got["count"] == count, (label, true, pred)
            np.testing.assert_array_equal(got["position"], expected)
            np.testing.assert_array_equal(got["score"], score[expected].astype(np.float32))
            np.testing.assert_array_equal(
                got["true_score"], true_score[expected].astype(np.float32)
            )


def confidence_codes(probability):
    """The documented code of a probability, computed here: round((logit + 8) * 8), clipped."""
    p = np.asarray(probability, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logit = np.log(p / (1 - p))
    return np.clip(np.round((logit + 8) * 8), 0, 255).astype(np.uint8)


def cleanlab_flags(labels, probabilities):
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.flatnonzero(
            find_label_issues(labels, probabilities, filter_by="confident_learning", n_jobs=1)
        )


def png_pixels(data_uri):
    """The pixels of a stored image preview, decoded by Pillow."""
    from PIL import Image

    assert data_uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    image.load()
    return np.asarray(image)


def crossing_slots(scores, positives, thresholds, k, scanned=None):
    """``{(curve, bin, positive): [positions]}``: the first ``k`` positions of each slot, from
    float64 comparisons with the grid (no bucketing code).
    """
    n, curves = scores.shape
    rows = np.arange(n if scanned is None else min(n, scanned))
    expected = {}
    for curve in range(curves):
        bins = np.searchsorted(thresholds, scores[rows, curve], side="right") - 1
        for positive in (False, True):
            for j in np.unique(bins[bins >= 0]):
                chosen = rows[(bins == j) & (positives[rows, curve] == positive)]
                if chosen.size:
                    expected[(curve, int(j), positive)] = chosen[:k].tolist()
    return expected


def stored_slots(result):
    """The samples of `core.crossings.CrossingSamples.result` (or its stored arrays) as
    ``{(curve, bin, positive): [positions]}``."""
    slots = {}
    for curve, j, positive, position in zip(
        result["curve"].tolist(),
        result["bin"].tolist(),
        result["positive"].tolist(),
        result["position"].tolist(),
    ):
        slots.setdefault((curve, j, positive), []).append(position)
    return slots

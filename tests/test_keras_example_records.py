"""The Keras callback's example records: on by default (the session's trained runs, against
brute force and cleanlab on the model's own predictions), with ``example_ids`` and
``previews`` (arrays, ``"inputs"``, a tf.data Dataset), and the mistakes refused at train begin
with nothing written."""

import os

import numpy as np
import pytest
from conftest import EPOCHS, read_events, to_scores
from example_checks import (
    check_cells,
    cleanlab_flags,
    crossing_slots,
    png_pixels,
    stored,
    stored_slots,
)

from tb_metricsdiag.core import counting
from tb_metricsdiag.format import crossings, example_ids, example_records, previews, schema

RUNS = ["binary", "multiclass", "onehot"]


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_default_records_equal_brute_force_on_the_predictions(callback_runs, name, split):
    run = callback_runs[1][name]
    labels = run.y_val_ids if split == "validation" else run.y_train_sample_ids
    payloads = stored(run.log_dir, schema.KIND_EXAMPLES, split)
    issues = stored(run.log_dir, schema.KIND_LABEL_ISSUES, split)
    assert sorted(payloads) == sorted(issues) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        scores, predicted = to_scores(run.predictions[epoch][split], run.outputs_are_logits)
        scores = scores.astype(np.float32)
        rows = np.arange(labels.size)
        decoded = example_records.decode_examples(payloads[epoch])
        assert decoded.num_rows == labels.size
        check_cells(
            decoded,
            labels,
            predicted,
            scores[rows, predicted],
            scores[rows, labels],
            scores.shape[1],
        )
        np.testing.assert_array_equal(decoded.correct, predicted == labels)
        flagged = example_records.decode_label_issues(issues[epoch])
        expected = cleanlab_flags(labels, scores.astype(np.float64))
        np.testing.assert_array_equal(np.sort(flagged.position), expected)
    # Positions are the ids by default: no id table, and no previews without previews=.
    assert stored(run.log_dir, schema.KIND_EXAMPLE_IDS, split) == {}
    assert stored(run.log_dir, schema.KIND_PREVIEWS, split) == {}


@pytest.mark.parametrize("name", RUNS)
def test_default_crossing_samples_equal_brute_force(callback_runs, name):
    """The crossing samples the callback writes by default: per class, step of the grid and
    polarity, the first two rows of the validation data in each step, with their scores."""
    run = callback_runs[1][name]
    labels = run.y_val_ids
    payloads = stored(run.log_dir, schema.KIND_CROSSINGS)
    assert sorted(payloads) == list(range(EPOCHS))
    grid = counting.default_thresholds()
    for epoch in range(EPOCHS):
        scores, _ = to_scores(run.predictions[epoch]["validation"], run.outputs_are_logits)
        scores = scores.astype(np.float32)
        samples = crossings.decode_crossings(payloads[epoch])
        samples.check_grid(grid)
        assert samples.num_rows == labels.size
        positives = labels[:, None] == np.arange(scores.shape[1])
        expected = crossing_slots(scores, positives, grid, 2)
        low, high = samples.first_bin, samples.first_bin + samples.num_bins
        expected = {slot: rows for slot, rows in expected.items() if low <= slot[1] < high}
        assert stored_slots(vars(samples)) == expected
        np.testing.assert_array_equal(samples.score, scores[samples.position, samples.curve])


@pytest.fixture(scope="module")
def image_data():
    """Tiny 3-class 'images': 8 x 8 uint8, the class's row lit."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = rng.integers(0, 90, size=(240, 8, 8), dtype=np.uint8)
    x[np.arange(240), y * 2] += 120
    return x, y


def _model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(log_dir, x, y, validation, epochs=2, metric=False, **options):
    from tb_metricsdiag import MetricsDiagCallback

    callback = MetricsDiagCallback(str(log_dir), validation_data=validation, **options)
    model = _model()
    if metric:
        model.compile("adam", model.loss, metrics=[callback.metric()])
    # The metric mode counts what Keras validates on.
    fit_validation = validation if metric else None
    model.fit(
        x,
        y,
        validation_data=fit_validation,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[callback],
    )


@pytest.mark.parametrize("source", ["arrays", "dataset"])
def test_ids_and_input_previews(tmp_path, image_data, source):
    x, y = image_data
    x_val, y_val = x[:160], y[:160]
    validation = (x_val, y_val)
    if source == "dataset":
        import tensorflow as tf

        validation = tf.data.Dataset.from_tensor_slices(validation).batch(50)
    ids = ["img-%03d" % i for i in range(160)]
    _fit(tmp_path, x, y, validation, example_ids=ids, previews="inputs")
    tables = stored(tmp_path, schema.KIND_EXAMPLE_IDS)
    assert sorted(tables) == [0]  # the ids do not change: one table
    assert example_ids.decode_example_ids(tables[0]).ids_at(np.arange(160)) == ids
    seen = set()
    for _, payload in sorted(stored(tmp_path, schema.KIND_PREVIEWS).items()):
        found = previews.decode_previews(payload)
        assert not seen & set(found)  # stored once per run
        for key, preview in found.items():
            np.testing.assert_array_equal(png_pixels(preview["image"]), x_val[int(key[4:])])
        seen |= set(found)
    kept = example_records.decode_examples(stored(tmp_path, schema.KIND_EXAMPLES)[0]).position
    assert {ids[position] for position in kept.tolist()} <= seen


def test_text_previews_and_example_ids_false(tmp_path, image_data):
    x, y = image_data
    texts = ["row %d: %s" % (i, "é" * 1200) for i in range(100)]
    _fit(tmp_path / "texts", x, y, (x[:100], y[:100]), previews=texts, epochs=1)
    found = previews.decode_previews(stored(tmp_path / "texts", schema.KIND_PREVIEWS)[0])
    assert found and all(found[k] == {"text": texts[k][:1000]} for k in found)
    _fit(tmp_path / "off", x, y, (x[:100], y[:100]), example_ids=False, epochs=1)
    _fit(tmp_path / "metric", x, y, (x[:100], y[:100]), metric=True, epochs=1)
    for run in ("off", "metric"):
        events = read_events(str(tmp_path / run))
        assert schema.split_tag("validation", schema.KIND_CONFUSION) in events
        assert not any(tag.rsplit("/", 1)[1] in schema.EXAMPLE_KINDS for tag in events)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"example_ids": list(range(99)) + [0]}, "must be unique"),
        ({"example_ids": list(range(99))}, "give one id per example, 100"),
        ({"example_ids": ["x" * 129] * 100}, "1 to 128 characters"),
        ({"previews": np.zeros((100, 8), np.uint8)}, r"images must be \[n, H, W\]"),
        ({"previews": np.zeros((100, 8, 8), np.int16)}, "uint8"),
        ({"previews": "pixels"}, "'inputs'"),
        ({"previews": "inputs", "tabular": True}, "previews='inputs' takes the validation"),
        ({"groups": {"site": ["a"] * 99}}, r"groups\['site'\] has shape \(99,\)"),
        ({"groups": {"site": ["a"] * 100}, "metric": True}, "groups need the callback's own"),
        ({"example_ids": list(range(100)), "metric": True}, "callback.metric"),
        ({"previews": "inputs", "metric": True}, "callback.metric"),
        ({"example_ids": False, "previews": "inputs"}, "example_ids=False turns"),
    ],
)
def test_mistakes_are_refused_at_train_begin(tmp_path, image_data, options, message):
    x, y = image_data
    options = dict(options)
    validation = (x[:100], y[:100])
    if options.pop("tabular", False):
        validation = (x[:100].reshape(100, 64).astype(np.float32) - 40, y[:100])
        x = x.reshape(-1, 64).astype(np.float32)
    metric = options.pop("metric", False)
    with pytest.raises(ValueError, match=message):
        if validation[0].ndim == 2:
            _fit_tabular(tmp_path, x, y, validation, **options)
        else:
            _fit(tmp_path, x, y, validation, metric=metric, **options)
    assert not [name for name in os.listdir(tmp_path) if name.startswith("events")]


def _fit_tabular(log_dir, x, y, validation, **options):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = MetricsDiagCallback(str(log_dir), validation_data=validation, **options)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])

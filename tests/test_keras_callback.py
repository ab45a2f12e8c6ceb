"""The callback's event files, epoch by epoch, against scikit-learn on the model's own predictions."""

import json

import numpy as np
import pytest
from conftest import EPOCHS, documented_thresholds, read_events, stored_logs, to_scores
from sklearn import metrics as skm

from tb_metricsdiag.format import schema, threshold_grid

RUNS = ["binary", "multiclass", "onehot"]
SPLIT_REFERENCES = {"validation": ("y_val_ids",), "train": ("y_train_sample_ids",)}


def _content(events, tag, step):
    return json.loads(events[tag][step][1])


@pytest.fixture(scope="module")
def events(callback_runs):
    _, runs = callback_runs
    return {name: read_events(run.log_dir) for name, run in runs.items()}


def _labels(run, split):
    return run.y_val_ids if split == "validation" else run.y_train_sample_ids


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_confusion_matches_sklearn_every_epoch(callback_runs, events, name, split):
    run = callback_runs[1][name]
    tag = schema.split_tag(split, schema.KIND_CONFUSION)
    assert sorted(events[name][tag]) == list(range(EPOCHS))
    num_classes = len(run.class_names) if run.class_names else 4
    for epoch in range(EPOCHS):
        _, predicted = to_scores(run.predictions[epoch][split], run.outputs_are_logits)
        expected = skm.confusion_matrix(_labels(run, split), predicted, labels=range(num_classes))
        np.testing.assert_array_equal(events[name][tag][epoch][0], expected)
        content = _content(events[name], tag, epoch)
        assert content["kind"] == "confusion" and content["split"] == split
        # Stored encoded since format version 5 (docs/format.md), read by that version on.
        assert content["version"] == 5 and content["encoding"] == schema.CONFUSION_ENCODING
        assert content["class_names"] == (run.class_names or ["0", "1", "2", "3"])


@pytest.mark.parametrize("name", RUNS)
@pytest.mark.parametrize("split", ["validation", "train"])
def test_threshold_counts_are_exact_counts_of_score_at_or_above(callback_runs, events, name, split):
    run = callback_runs[1][name]
    tag = schema.split_tag(split, schema.KIND_THRESHOLD_COUNTS)
    labels = _labels(run, split)
    for epoch in range(EPOCHS):
        tensor, content = events[name][tag][epoch]
        thresholds = threshold_grid.decode_thresholds(json.loads(content)["thresholds"])
        np.testing.assert_array_equal(thresholds, documented_thresholds())
        scores, _ = to_scores(run.predictions[epoch][split], run.outputs_are_logits)
        num_classes = scores.shape[1]
        assert tensor.shape == (num_classes, 2, 201)
        for k in range(num_classes):
            reached = scores[:, k][:, None] >= thresholds[None, :]
            positive = (labels == k)[:, None]
            np.testing.assert_array_equal(tensor[k, 0], (reached & positive).sum(axis=0))
            np.testing.assert_array_equal(tensor[k, 1], (reached & ~positive).sum(axis=0))


@pytest.mark.parametrize("name", RUNS)
def test_average_precision_matches_sklearn(callback_runs, events, name):
    run = callback_runs[1][name]
    tag = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)
    for epoch in range(EPOCHS):
        scores, _ = to_scores(run.predictions[epoch]["validation"], run.outputs_are_logits)
        expected = [
            skm.average_precision_score(run.y_val_ids == k, scores[:, k])
            for k in range(scores.shape[1])
        ]
        np.testing.assert_allclose(events[name][tag][epoch][0], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", RUNS)
def test_logs_label_distribution_and_run_info(callback_runs, events, name):
    run = callback_runs[1][name]
    for epoch in range(EPOCHS):
        stored = stored_logs(events[name], epoch)
        assert set(stored) == set(run.logs[epoch])
        for key, value in run.logs[epoch].items():
            assert stored[key] == pytest.approx(value, rel=1e-6)
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(run.logs[0])
    for split in ("validation", "train"):
        dist = events[name][schema.split_tag(split, schema.KIND_LABEL_DISTRIBUTION)][0][0]
        num_classes = dist.shape[0]
        np.testing.assert_array_equal(dist, np.bincount(_labels(run, split), minlength=num_classes))
    info = json.loads(events[name][schema.RUN_INFO_TAG][0][0].item())
    expected = {
        "binary": ("binary", "sigmoid", 1, False, "binary_crossentropy"),
        "multiclass": ("sparse", "linear", 3, True, "sparse_categorical_crossentropy"),
        "onehot": ("one_hot", "softmax", 4, False, "categorical_crossentropy"),
    }[name]
    assert (
        info["labels"]["format"],
        info["model"]["output_activation"],
        info["model"]["output_width"],
        info["model"]["outputs_are_logits"],
        info["loss"]["name"],
    ) == expected
    assert info["metrics"] == ["accuracy"]
    assert info["splits"]["validation"]["examples"] == len(run.y_val_ids)


@pytest.mark.parametrize("name", RUNS)
def test_overlap_counts_copied_rows_exactly(callback_runs, events, name):
    run = callback_runs[1][name]
    overlap = json.loads(events[name][schema.OVERLAP_TAG][0][0].item())
    train_rows = {row.tobytes() for row in run.x_train_sample}
    expected = sum(row.tobytes() in train_rows for row in run.x_val)
    assert expected == run.duplicates
    assert overlap["duplicates"] == expected
    assert overlap["validation_examples"] == len(run.x_val)
    assert overlap["duplicate_share"] == pytest.approx(expected / len(run.x_val))


def test_coexists_with_keras_tensorboard(callback_runs):
    import os

    _, runs = callback_runs
    for run in runs.values():
        entries = set(os.listdir(run.log_dir))
        assert {"train", "validation"} <= entries
        assert any(e.startswith("events.out.tfevents") for e in entries)


@pytest.mark.parametrize("inputs", ["named_arrays", "strings", "sparse_dataset"])
def test_any_input_structure_is_predicted_like_keras(tmp_path, inputs):
    """Named arrays and strings go through the callback's concrete prediction function, sparse
    tensors through predict_on_batch; all must count exactly what ``model.predict`` gives."""
    import keras
    import tensorflow as tf

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    n, num_classes = 150, 3
    y = rng.integers(0, num_classes, size=n)
    if inputs == "named_arrays":
        a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
        model_inputs, hidden = {"a": a, "b": b}, keras.layers.Concatenate()([a, b])
        x = {
            "a": rng.normal(size=(n, 3)).astype("float32") + y[:, None],
            "b": rng.normal(size=(n, 2)),
        }
    elif inputs == "strings":
        words = np.array(["red", "green", "blue", "grey"])
        model_inputs = keras.Input((1,), dtype="string")
        hidden = keras.layers.StringLookup(vocabulary=list(words))(model_inputs)
        hidden = keras.layers.Flatten()(keras.layers.Embedding(6, 4)(hidden))
        x = tf.constant(words[(y + rng.integers(0, 2, size=n)) % 4][:, None])
    else:
        model_inputs = hidden = keras.Input((4,), sparse=True)
        dense = (rng.random((n, 4)) < 0.5) * (y[:, None] + 1.0)
        x = tf.data.Dataset.from_tensor_slices((tf.sparse.from_dense(dense.astype("float32")), y))
    model = keras.Model(model_inputs, keras.layers.Dense(num_classes, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    batched = x.batch(64) if inputs == "sparse_dataset" else None
    callback = MetricsDiagCallback(str(tmp_path), validation_data=batched or (x, y), batch_size=64)
    if batched:
        model.fit(batched, epochs=1, callbacks=[callback], verbose=0)
    else:
        model.fit(x, y, epochs=1, batch_size=32, callbacks=[callback], verbose=0)
    events = read_events(str(tmp_path))
    predicted = model.predict(batched or x, batch_size=64, verbose=0).argmax(axis=1)
    confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0]
    np.testing.assert_array_equal(
        confusion, skm.confusion_matrix(y, predicted, labels=range(num_classes))
    )


@pytest.mark.parametrize(
    "batch_seconds, batch_size, expected",
    [
        (0.02, None, 512),  # a slow model keeps the default
        (0.008, None, 1024),  # 1024 rows take 16 ms: within the 20 ms budget, 2048 would not be
        (0.004, None, 2048),
        (0.0001, None, 4096),  # a fast model grows to the cap
        (0.0001, 200, 200),  # a batch size given is kept as it is
    ],
)
@pytest.mark.parametrize("loaded", [False, True])
def test_automatic_batch_size_follows_the_timed_batch(
    tmp_path, monkeypatch, batch_seconds, batch_size, expected, loaded
):
    """The batch is judged by the smaller of its wall and CPU time: on a quiet machine the
    backend's two threads double the CPU time; on a loaded one other processes stretch the wall
    time to a second, and the batch size is the same."""
    import itertools
    import types

    import keras

    from tb_metricsdiag import MetricsDiagCallback
    from tb_metricsdiag.writing import keras_prediction

    assert keras_prediction.AUTOMATIC_BATCH_SECONDS == 0.02  # the budget the cases assume
    # Each clock reading is its step after the one before: the timed batch "took" that.
    own = itertools.count(step=batch_seconds)
    stretched = itertools.count(step=1.0 if loaded else 2 * batch_seconds)
    wall, cpu = (stretched, own) if loaded else (own, stretched)
    monkeypatch.setattr(
        keras_prediction,
        "time",
        types.SimpleNamespace(perf_counter=lambda: next(wall), process_time=lambda: next(cpu)),
    )
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=3000)
    x = (rng.normal(size=(3000, 4)) + y[:, None]).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = MetricsDiagCallback(str(tmp_path), validation_data=(x, y), batch_size=batch_size)
    model.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[callback])
    assert callback._predictor.batch_size == expected
    # However it is batched, the pass counts every example once, as Keras predicts them.
    events = read_events(str(tmp_path))
    confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0]
    predicted = model.predict(x, batch_size=expected, verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(confusion, skm.confusion_matrix(y, predicted, labels=range(3)))

"""The public writers in a custom tf.GradientTape loop, at arbitrary steps."""

import json
import struct
import zlib

import numpy as np
import pytest
from conftest import read_events, stored_logs
from sklearn import metrics as skm

from tb_metricsdiag.format import schema


def test_gradient_tape_loop_writes_the_same_data(tmp_path):
    import keras
    import tensorflow as tf

    from tb_metricsdiag import summary

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 5)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    writer = tf.summary.create_file_writer(str(tmp_path))
    thresholds = np.array([0.0, 0.25, 0.5, 0.75, 0.9])
    expected = {}
    with writer.as_default():
        for step in (10, 20, 30):  # steps need not be epochs
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            logits = model(x, training=False)
            assert summary.write_evaluation(
                y,
                logits,
                step=step,
                class_names=["a", "b", "c"],
                thresholds=thresholds,
                from_logits=True,
            )
            summary.write_logs(
                {
                    "loss": loss,
                    "note": "not a number",
                    "diverged": np.float32("nan"),
                    "grew": float("inf"),
                    "fell": -float("inf"),
                    "vector": np.ones(2),
                },
                step=step,
            )
            expected[step] = (tf.nn.softmax(logits).numpy(), float(loss))
    writer.flush()

    events = read_events(str(tmp_path))
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    counts_tag = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
    assert sorted(events[confusion_tag]) == [10, 20, 30]
    assert not any(tag.startswith(schema.scalar_tag("")) for tag in events)  # one logs series
    for step, (probabilities, loss) in expected.items():
        predicted = probabilities.argmax(axis=1)
        np.testing.assert_array_equal(
            events[confusion_tag][step][0], skm.confusion_matrix(y, predicted, labels=range(3))
        )
        stored, content = events[counts_tag][step]
        assert json.loads(content)["thresholds"] == thresholds.tolist()
        for k in range(3):
            reached = probabilities[:, k][:, None] >= thresholds[None, :]
            np.testing.assert_array_equal(stored[k, 0], (reached & (y == k)[:, None]).sum(0))
        logs = stored_logs(events, step)
        assert sorted(logs) == ["diverged", "fell", "grew", "loss"]  # numbers only, non-finite kept
        assert logs["loss"] == pytest.approx(loss, rel=1e-6)
        assert np.isnan(logs["diverged"]) and logs["grew"] == np.inf and logs["fell"] == -np.inf


def test_writers_reject_mismatched_class_names(tmp_path):
    import tensorflow as tf

    from tb_metricsdiag import summary

    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        with pytest.raises(
            ValueError, match="class_names has 2 names but the model predicts 3 classes"
        ):
            summary.write_evaluation([0, 1, 2], np.eye(3), step=0, class_names=["a", "b"])


def test_writers_without_default_writer_write_nothing():
    from tb_metricsdiag import summary

    assert not summary.write_confusion_matrix(np.eye(2, dtype=int), step=0)


def _smallest_type(largest):
    return next(t for t in (np.uint8, np.uint16, np.int32, np.int64) if largest <= np.iinfo(t).max)


@pytest.mark.parametrize("examples", [200, 3000, 200_000])
def test_counts_are_stored_compactly_and_exactly(tmp_path, examples):
    import tensorflow as tf

    from tb_metricsdiag import summary
    from tb_metricsdiag.core import counting as counts

    rng = np.random.default_rng(examples)
    y = rng.integers(0, 3, size=examples)
    scores = rng.dirichlet(np.ones(3), size=examples).astype(np.float32)
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        summary.write_evaluation(y, scores, step=0)
    raw = read_events(str(tmp_path), decode=False)
    # The confusion matrix (format version 5): C and K, the type codes, the diagonal, the gaps
    # between the row-major positions of the nonzero cells off it, their counts (docs/format.md).
    stored, content = raw[schema.split_tag("validation", schema.KIND_CONFUSION)][0]
    assert json.loads(content)["encoding"] == schema.CONFUSION_ENCODING
    assert json.loads(content)["version"] == 5
    expected = skm.confusion_matrix(y, scores.argmax(axis=1))
    off = expected * (1 - np.eye(3, dtype=np.int64))
    positions = np.flatnonzero(off)
    parts = [np.diag(expected), np.diff(positions, prepend=0), off.flat[positions]]
    types = [np.dtype(_smallest_type(part.max())).newbyteorder("<") for part in parts]
    codes = {1: b"B", 2: b"H", 4: b"i", 8: b"q"}
    assert stored.item() == struct.pack("<II", 3, positions.size) + b"".join(
        codes[t.itemsize] for t in types
    ) + b"".join(part.astype(t).tobytes() for part, t in zip(parts, types))
    # Threshold counts: bytes naming the smallest type of the bucket counts, then zlib, then
    # the average precision and then the ROC AUC of each class as float64.
    payload, content = raw[schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)][0]
    assert json.loads(content)["encoding"] == schema.THRESHOLD_COUNTS_ENCODING
    # Version 5: the default grid is stored as its two parameters.
    assert json.loads(content)["version"] == 5
    assert json.loads(content)["thresholds"] == {"logit_range": 9.0, "num": 201}
    assert json.loads(content)["average_precision"] == "exact"
    assert json.loads(content)["roc_auc"] == "exact"
    assert schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION) not in raw
    payload = payload.item()
    tp, fp = counts.threshold_counts(y, scores, counts.default_thresholds())
    expected = np.stack([tp, fp], axis=1)
    buckets = np.concatenate([expected[..., :-1] - expected[..., 1:], expected[..., -1:]], axis=-1)
    stored_type = np.dtype(_smallest_type(buckets.max())).newbyteorder("<")
    inflate = zlib.decompressobj()
    assert inflate.decompress(payload[1:]) == buckets.astype(stored_type).tobytes()
    trailing = np.frombuffer(inflate.unused_data, "<f8").reshape(2, 3)
    np.testing.assert_allclose(
        trailing[0],
        [skm.average_precision_score(y == k, scores[:, k]) for k in range(3)],
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        trailing[1],
        [skm.roc_auc_score(y == k, scores[:, k]) for k in range(3)],
        rtol=0,
        atol=1e-9,
    )
    assert len(payload) < expected.astype(_smallest_type(expected.max())).nbytes / 2 + 6 * 8
    decoded = read_events(str(tmp_path))[
        schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
    ][0][0]
    np.testing.assert_array_equal(decoded, expected)

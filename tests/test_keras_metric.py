"""The zero-extra-pass mode: counts made inside Keras's steps, against NumPy and scikit-learn."""

import json

import numpy as np
import pytest
from conftest import read_events
from sklearn import metrics as skm

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.format import schema

EPOCHS = 2
BATCH = 64
FEATURES = 8


def _adversarial_scores(thresholds, num_classes, seed=0):
    """float32 scores on, just below and just above every threshold, plus random ones."""
    edges = counts_lib.comparison_edges(thresholds, np.float32)
    near = np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf, dtype=np.float32),
            np.nextafter(edges, np.inf, dtype=np.float32),
            thresholds.astype(np.float32),
            np.float32([-0.0, -1.0, 2.0]),
        ]
    )
    rng = np.random.default_rng(seed)
    columns = [rng.permutation(near) for _ in range(num_classes)]
    return np.stack(columns, axis=1), rng.integers(0, num_classes, size=near.size)


@pytest.mark.parametrize(
    "thresholds",
    [
        counts_lib.default_thresholds(),  # evenly spaced in logit: many edges near 0 and 1
        np.linspace(0, 1, 201),
        np.array([0.1, 0.3, 1 / 3, 0.7, 0.9]),
        np.array([-0.5, -1e-30, 0.0, 0.25]),  # negative thresholds before a zero
        np.array([-1e-40, 0.0, 3e-45, 1e-39, 0.5]),  # subnormal thresholds: integer keys
    ],
)
def test_bucketing_matches_counts_bit_for_bit(thresholds):
    from tb_metricsdiag.writing.keras_metric import CountsMetric

    scores, ids = _adversarial_scores(thresholds, 3)
    metric = CountsMetric(thresholds=thresholds, from_logits=False)
    half = scores.shape[0] // 2
    metric.update_state(ids[:half], scores[:half])
    metric.update_state(ids[half:], scores[half:])
    result = metric.counts()
    tp, fp = counts_lib.threshold_counts(ids, scores, thresholds)
    np.testing.assert_array_equal(result.tp, tp)
    np.testing.assert_array_equal(result.fp, fp)
    # The predicted class is TensorFlow's argmax, which flushes subnormals to zero: rows where
    # that changes the argmax are left out of this comparison.
    flushed = np.where(np.abs(scores) < np.finfo(np.float32).tiny, 0, scores)
    valid = flushed.argmax(axis=1) == scores.argmax(axis=1)
    assert valid.mean() > 0.5
    reference = CountsMetric(thresholds=thresholds, from_logits=False)
    reference.update_state(ids[valid], scores[valid])
    np.testing.assert_array_equal(
        reference.counts().confusion,
        skm.confusion_matrix(ids[valid], scores[valid].argmax(axis=1), labels=range(3)),
    )
    assert metric.result() == {}


def test_nonfinite_rows_and_bad_labels_are_left_out():
    from tb_metricsdiag.writing.keras_metric import CountsMetric

    scores = np.float32([[0.2, 0.8], [np.nan, 0.5], [0.6, 0.4], [0.5, 0.5]])
    metric = CountsMetric(from_logits=False)
    metric.update_state(np.array([1, 0, 0, 7]), scores)
    result = metric.counts()
    assert result.invalid == 2
    np.testing.assert_array_equal(result.confusion, [[1, 0], [0, 1]])
    tp, fp = counts_lib.threshold_counts([1, 0], scores[[0, 2]], result.thresholds)
    np.testing.assert_array_equal(result.tp, tp)
    np.testing.assert_array_equal(result.fp, fp)


def _data(num_classes, seed, n_train=640, n_val=320):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(num_classes, FEATURES))

    def draw(n):
        ids = rng.integers(0, num_classes, size=n)
        return (centers[ids] + rng.normal(size=(n, FEATURES))).astype(np.float32), ids

    return draw(n_train) + draw(n_val)


def _model(kind):
    """(model, labels transform, NumPy scores of raw outputs) for each supported setup."""
    import keras

    keras.utils.set_random_seed(3)
    hidden = [keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu")]
    if kind == "binary":
        model = keras.Sequential(hidden + [keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy")

        def to_scores(out):
            return np.concatenate([1 - out, out], axis=1)

        return model, lambda ids: ids.astype(np.float32), to_scores
    if kind == "logits":
        model = keras.Sequential(hidden + [keras.layers.Dense(3)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        def to_scores(out):
            return np.asarray(keras.ops.softmax(out, axis=-1))

        return model, lambda ids: ids, to_scores
    model = keras.Sequential(hidden + [keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    return model, lambda ids: np.eye(4, dtype=np.float32)[ids], lambda out: out


@pytest.fixture(scope="module", params=["binary", "logits", "onehot"])
def metric_run(request, tmp_path_factory):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    kind = request.param
    num_classes = {"binary": 2, "logits": 3, "onehot": 4}[kind]
    x, ids, x_val, val_ids = _data(num_classes, seed=num_classes)
    model, to_labels, to_scores = _model(kind)
    log_dir = str(tmp_path_factory.mktemp(kind))
    callback = MetricsDiagCallback(log_dir, validation_data=(x_val, to_labels(val_ids)))
    model.compile(model.optimizer, model.loss, metrics=[callback.metric()])
    scores, logs = {}, {}

    class Reference(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, epoch_logs=None):
            outputs = self.model.predict(x_val, batch_size=BATCH, verbose=0)
            scores[epoch] = to_scores(outputs)
            logs[epoch] = dict(epoch_logs)

    model.fit(
        x,
        to_labels(ids),
        validation_data=(x_val, to_labels(val_ids)),
        epochs=EPOCHS,
        batch_size=BATCH,
        verbose=0,
        callbacks=[callback, Reference()],
    )
    return read_events(log_dir), ids, val_ids, scores, logs


def test_validation_counts_match_model_predictions(metric_run):
    events, _, val_ids, scores, _ = metric_run
    thresholds = counts_lib.default_thresholds()
    for epoch in range(EPOCHS):
        num_classes = scores[epoch].shape[1]
        confusion = events[schema.split_tag("validation", schema.KIND_CONFUSION)][epoch][0]
        expected = skm.confusion_matrix(
            val_ids, scores[epoch].argmax(axis=1), labels=range(num_classes)
        )
        if num_classes == 2:  # a single unit predicts class 1 at p >= 0.5
            expected = skm.confusion_matrix(val_ids, (scores[epoch][:, 1] >= 0.5).astype(int))
        np.testing.assert_array_equal(confusion, expected)
        tensor = events[schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)][epoch][0]
        for k in range(num_classes):
            reached = scores[epoch][:, k][:, None] >= thresholds[None, :]
            positive = (val_ids == k)[:, None]
            np.testing.assert_array_equal(tensor[k, 0], (reached & positive).sum(axis=0))
            np.testing.assert_array_equal(tensor[k, 1], (reached & ~positive).sum(axis=0))


def test_average_precision_is_the_grid_ap_and_says_so(metric_run):
    events, _, val_ids, scores, _ = metric_run
    thresholds = counts_lib.default_thresholds()
    tag = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)
    for epoch in range(EPOCHS):
        values, content = events[tag][epoch]  # stored inside the threshold counts
        assert json.loads(content)["average_precision"] == counts_lib.AP_THRESHOLD_GRID
        # The grid AP is the exact AP of the scores rounded down to the grid.
        buckets = counts_lib.threshold_bucket(scores[epoch], thresholds)
        floored = thresholds[np.maximum(buckets - 1, 0)]
        expected = [
            skm.average_precision_score(val_ids == k, floored[:, k])
            for k in range(floored.shape[1])
        ]
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9)


def test_train_counts_cover_every_training_example_once(metric_run):
    events, ids, _, _, _ = metric_run
    tag = schema.split_tag("train", schema.KIND_CONFUSION)
    assert sorted(events[tag]) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        confusion = events[tag][epoch][0]
        np.testing.assert_array_equal(
            confusion.sum(axis=1), np.bincount(ids, minlength=confusion.shape[0])
        )


def test_metric_stays_out_of_the_logs(metric_run):
    *_, logs = metric_run
    assert set(logs[0]) == {"loss", "val_loss"}

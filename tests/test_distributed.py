"""Distributed training: counts under MirroredStrategy equal the single-device counts, and only
the chief of a multi-worker cluster writes."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Two logical CPU devices must be configured before TensorFlow starts: a process of its own.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tb_metricsdiag import MetricsDiagCallback

    log_dir, mode = sys.argv[1], sys.argv[2]
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if mode == "mirrored"
                else tf.distribute.get_strategy())
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    # A zero learning rate keeps the weights where the seed put them, so both modes predict
    # with identical weights and must give identical counts.
    model.fit(x, y, epochs=2, batch_size=60, verbose=0,
              callbacks=[MetricsDiagCallback(log_dir, validation_data=(x, y), batch_size=100)])
    reference = model.predict(x, verbose=0)
    json.dump({"labels": y.tolist(), "reference": reference.tolist(),
               "replicas": strategy.num_replicas_in_sync}, sys.stdout)
    """
)


def _train(log_dir, mode):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(log_dir), mode],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_counts_equal_single_device(tmp_path):
    from conftest import read_events
    from sklearn.metrics import confusion_matrix

    from tb_metricsdiag.format import schema

    mirrored = _train(tmp_path / "mirrored", "mirrored")
    single = _train(tmp_path / "single", "single")
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    counts_tag = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
    events = {name: read_events(str(tmp_path / name)) for name in ("mirrored", "single")}
    expected = confusion_matrix(mirrored["labels"], np.argmax(mirrored["reference"], axis=1))
    for epoch in (0, 1):
        np.testing.assert_array_equal(events["mirrored"][tag][epoch][0], expected)
        np.testing.assert_array_equal(
            events["mirrored"][tag][epoch][0], events["single"][tag][epoch][0]
        )
        np.testing.assert_array_equal(
            events["mirrored"][counts_tag][epoch][0], events["single"][counts_tag][epoch][0]
        )
    assert schema.EVENTS_TAG not in events["mirrored"]  # no batch was refused


class _Resolver:
    def __init__(self, cluster, task_type, task_id):
        self._cluster, self.task_type, self.task_id = cluster, task_type, task_id

    def cluster_spec(self):
        class Spec:
            def __init__(self, cluster):
                self._cluster = cluster

            def as_dict(self):
                return self._cluster

        return Spec(self._cluster)


class _Strategy:
    def __init__(self, resolver):
        self.cluster_resolver = resolver


@pytest.mark.parametrize(
    "cluster, task_type, task_id, writes",
    [
        ({}, None, None, True),  # single machine
        ({"chief": ["a"], "worker": ["b", "c"]}, "chief", 0, True),
        ({"chief": ["a"], "worker": ["b", "c"]}, "worker", 0, False),
        ({"worker": ["b", "c"]}, "worker", 0, True),  # no chief: worker 0 writes
        ({"worker": ["b", "c"]}, "worker", 1, False),
    ],
)
def test_only_the_chief_writes(cluster, task_type, task_id, writes):
    from tb_metricsdiag.writing.keras_model import is_chief as _is_chief

    assert _is_chief(_Strategy(_Resolver(cluster, task_type, task_id))) is writes
    assert _is_chief(object()) is True  # strategies without a resolver (Mirrored, default)


def test_metric_names_from_compile_config():
    import keras

    from tb_metricsdiag.writing.keras_model import metric_names as _metric_names

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        "adam",
        "sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=1, name="top1")],
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="wacc")],
    )
    assert _metric_names(model.get_compile_config()) == ["accuracy", "top1", "wacc"]

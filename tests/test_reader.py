"""The reader's conversions of provider points: a run's confusion matrices (checked and
converted at once when they can be) and the Keras curves (a step written twice: the last wins)."""

import re

import numpy as np
import pytest
from tensorboard import errors
from tensorboard.data import provider as provider_lib

from tb_metricsdiag.backend import record_decoding
from tb_metricsdiag.format import confusion_counts, metadata, schema


def _tensors(values, steps=None):
    steps = range(len(values)) if steps is None else steps
    return [
        provider_lib.TensorDatum(step=step, wall_time=float(i), numpy=np.asarray(value))
        for i, (step, value) in enumerate(zip(steps, values))
    ]


def _one_by_one(data):
    """The reference: every point through `confusion_counts.confusion_matrix`, the last of a step kept."""
    return {datum.step: confusion_counts.confusion_matrix(datum.numpy, "matrix") for datum in data}


@pytest.mark.parametrize(
    "dtypes",
    [
        ["uint8"] * 5,
        ["uint8", "uint8", "uint16", "uint16", "int32"],  # counts outgrow a type as epochs pass
        ["uint64", "int8", "int64", "uint8", "uint32"],  # uint64 with signed types stacks as floats
    ],
)
def test_matrices_equal_a_conversion_one_by_one(dtypes):
    rng = np.random.default_rng(len(set(dtypes)))
    values = [rng.integers(0, 100, size=(4, 4)).astype(dtype) for dtype in dtypes]
    data = _tensors(values, steps=[0, 1, 2, 2, 3])  # step 2 written twice: the last one wins
    matrices = confusion_counts.confusion_matrices(data)
    expected = _one_by_one(data)
    assert list(matrices) == list(expected) == [0, 1, 2, 3]
    for step, matrix in matrices.items():
        assert matrix.dtype == np.int64
        np.testing.assert_array_equal(matrix, expected[step])
    np.testing.assert_array_equal(matrices[2], values[3])


def test_matrices_of_different_sizes_keep_their_own_shape():
    data = _tensors([np.eye(3, dtype=np.int32), np.eye(4, dtype=np.int32)])
    assert [m.shape for m in confusion_counts.confusion_matrices(data).values()] == [(3, 3), (4, 4)]
    assert confusion_counts.confusion_matrices([]) == {}


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones((3, 3), np.float32), "holds float32 values"),
        (np.ones((3, 2), np.int32), "has shape (3, 2)"),
        (np.ones(3, np.int32), "has shape (3,)"),
    ],
)
@pytest.mark.parametrize("count", [1, 3])
def test_a_bad_matrix_is_refused_with_its_step(bad, message, count):
    data = _tensors([bad] * count, steps=[7 + i for i in range(count)])
    with pytest.raises(schema.FormatError, match=re.escape("at step 7 " + message)):
        confusion_counts.confusion_matrices(data)
    good_then_bad = _tensors([np.eye(3, dtype=np.int32), bad], steps=[1, 2])
    with pytest.raises(schema.FormatError, match="at step 2"):
        confusion_counts.confusion_matrices(good_then_bad)


def test_curves_are_ascending_and_keep_the_last_value_of_a_step():
    rng = np.random.default_rng(0)
    steps = rng.integers(0, 20, size=60)  # out of order, most steps written several times
    values = rng.normal(size=60)
    points = [
        provider_lib.ScalarDatum(step=int(s), wall_time=0.0, value=float(v))
        for s, v in zip(steps, values)
    ]
    ordered = [provider_lib.ScalarDatum(step=s, wall_time=0.0, value=s / 10) for s in range(5)]
    curves, problems = record_decoding.scalar_curves(
        {"run": {"messy": points, "ordered": ordered}}, lambda run, tag: tag
    )
    last = {}
    for step, value in zip(steps.tolist(), values.tolist()):
        last[step] = value
    np.testing.assert_array_equal(curves["messy"][0], sorted(last))
    np.testing.assert_array_equal(curves["messy"][1], [last[s] for s in sorted(last)])
    assert curves["messy"][0].dtype == np.int64 and curves["messy"][1].dtype == np.float64
    np.testing.assert_array_equal(curves["ordered"][0], np.arange(5))
    np.testing.assert_array_equal(curves["ordered"][1], np.arange(5) / 10)
    assert problems == []
    empty, _ = record_decoding.scalar_curves({"run": {"empty": []}}, lambda run, tag: tag)
    assert empty["empty"][0].size == 0


def _listed(plugin_content=b""):
    return provider_lib.TensorTimeSeries(
        max_step=0,
        max_wall_time=0.0,
        plugin_content=plugin_content,
        description="",
        display_name="",
    )


def _confusion_content(names):
    return metadata.create_summary_metadata(
        schema.KIND_CONFUSION, "validation", names
    ).plugin_data.content


def test_listings_alone_give_training_runs_with_their_keras_subruns():
    confusion = schema.split_tag("validation", schema.KIND_CONFUSION)
    tensors = {"exp": {confusion: _listed(_confusion_content(["a", "b"]))}}
    scalars = {
        "exp/train": {"epoch_loss": _listed()},
        "exp/validation": {"epoch_loss": _listed(), "evaluation_loss_vs_iterations": _listed()},
        "train": {"epoch_accuracy": _listed()},  # Keras's callback alone, at the logdir's root
        "other/validation": {"loss": _listed()},  # no epoch scalars: not Keras's sub-run
        "other/test": {"epoch_loss": _listed()},  # not a split Keras's callback writes
    }
    indexes = record_decoding.run_indexes(tensors, scalars)
    assert sorted(indexes) == [".", "exp"]
    exp = indexes["exp"]
    assert (exp.splits, exp.class_names, exp.task) == (["validation"], ["a", "b"], "binary")
    assert exp.keras_subruns == {"train": "exp/train", "validation": "exp/validation"}
    root = indexes["."]
    assert (root.has_counts, root.task, root.keras_subruns) == (False, None, {"train": "train"})


def test_split_evaluation_of_hand_made_points():
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    content = metadata.parse_plugin_content(_confusion_content(["a", "b", "c"]))
    matrices = [np.arange(9, dtype=np.int32).reshape(3, 3), np.eye(3, dtype=np.int32) * 4]
    found = {tag: (content, _tensors(matrices, steps=[2, 5]))}
    latest = record_decoding.split_evaluation("r", "validation", None, found, counts_of=None)
    assert (latest.step, latest.class_names, latest.total) == (5, ["a", "b", "c"], 12)
    np.testing.assert_array_equal(latest.confusion, matrices[1])
    earlier = record_decoding.split_evaluation("r", "validation", 2, found, counts_of=None)
    np.testing.assert_array_equal(earlier.confusion, matrices[0])
    assert earlier.positives(2) == 6 + 7 + 8 and earlier.thresholds is None
    with pytest.raises(errors.NotFoundError, match="no 'validation' data at step 3"):
        record_decoding.split_evaluation("r", "validation", 3, found, counts_of=None)

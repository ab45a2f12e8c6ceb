"""`writing.inputs`: the one input path of every writer. Each mistake is one ValueError that
names the writer and the fix; what passes is counted as scikit-learn counts it."""

import dataclasses

import numpy as np
import pytest
from sklearn import metrics as skm

from tb_metricsdiag.core import counting
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import inputs

WHO = "SomeWriter.add"


def _check(y_true, y_score, **kwargs):
    return inputs.check_evaluation(y_true, y_score, WHO, **kwargs)


def test_first_evaluation_fixes_the_layout_and_counts_as_sklearn():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)).astype(np.float32) + 2 * np.eye(3, dtype=np.float32)[ids]
    evaluation = _check(ids, logits, class_names=["a", "b", "c"])
    layout = evaluation.layout
    assert (layout.output_width, layout.num_classes, layout.multi_label) == (3, 3, False)
    assert layout.from_logits and layout.label_format == labels_lib.SPARSE
    assert layout.class_names == ("a", "b", "c")
    counts = evaluation.counts(counting.default_thresholds())
    np.testing.assert_array_equal(
        counts.confusion, skm.confusion_matrix(ids, logits.argmax(1), labels=range(3))
    )
    # A later evaluation keeps the layout; one-hot labels of the same classes fit it.
    later = _check(np.eye(3)[ids], logits, layout=layout)
    np.testing.assert_array_equal(later.targets, ids)
    assert later.layout is layout


def test_binary_and_multilabel_layouts():
    binary = _check([0, 1, 1], np.array([0.2, 0.7, 0.4]))
    assert binary.layout.num_classes == 2 and binary.layout.label_format == labels_lib.BINARY
    assert binary.predicted.tolist() == [0, 1, 0] and not binary.layout.from_logits
    y = np.array([[1, 0, 1], [0, 0, 0]])
    multi = _check(y, np.array([[2.0, -1.0, 0.5], [-3.0, 0.1, -1.0]]), multi_label=True)
    assert multi.layout.label_format == labels_lib.MULTI_HOT and multi.layout.from_logits
    assert multi.predicted is None and multi.scores.shape == (2, 3)


@pytest.mark.parametrize(
    "y_true, y_score, kwargs, message",
    [
        (
            [0, 1, 2, 0],
            np.full((4, 3), 1 / 3),
            {"class_names": ["a", "b"]},
            "class_names has 2 names but the model predicts 3",
        ),
        ([0, 1], np.ones((2, 2, 2)), {}, r"expected the model's outputs \[n, C\]"),
        ([0, 1, 1], np.ones(2) / 2, {}, "y_true of shape \\(3,\\) does not match y_score"),
        ([0, 3], np.array([0.2, 0.9]), {}, r"class ids in \[0, 2\)"),
        (np.zeros((2, 3)), np.full((2, 2), 0.5), {}, "do not fit a model with 2 output"),
        ([], np.zeros((0, 2)), {}, "no examples"),
        ([[1, 0]], np.array([[0.5]]), {"multi_label": True}, r"both \[n, K\]"),
        ([[1], [0]], np.array([[0.5], [0.2]]), {"multi_label": True}, "one label is a binary"),
        ([0, 1], np.array([0.2, 0.9]), {"from_logits": "yes"}, "from_logits must be"),
        (["a", "b"], np.array([0.2, 0.9]), {}, "labels must be numeric"),
    ],
)
def test_mistakes_raise_one_error_naming_the_writer_and_the_fix(y_true, y_score, kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        _check(y_true, y_score, **kwargs)
    assert str(raised.value).startswith(WHO)


def test_later_evaluations_must_fit_the_first():
    layout = _check([0, 1], np.array([0.2, 0.9])).layout
    with pytest.raises(ValueError, match="1 at the first evaluation"):
        _check([0, 1], np.full((2, 3), 1 / 3), layout=layout)
    with pytest.raises(ValueError, match="pass from_logits=True"):
        _check([0, 1], np.array([-2.0, 3.0]), layout=layout)
    stated = _check([0, 1], np.array([-2.0, 3.0]), layout=layout, from_logits=True)
    assert stated.layout.from_logits and not layout.from_logits
    assert stated.predicted.tolist() == [0, 1]


class _ShapeOnly:
    """A tensor whose values cannot be read here (as one on an accelerator, unsynchronised)."""

    def __init__(self, *shape):
        self.shape = shape

    def __array__(self, *args, **kwargs):
        raise AssertionError("the values were read")


def test_layout_check_shapes_reads_only_shapes():
    layout = _check(np.eye(3)[[0, 1, 2]], np.full((3, 3), 1 / 3)).layout
    layout.check_shapes(_ShapeOnly(5, 3), _ShapeOnly(5, 3), WHO)  # one-hot rows
    layout.check_shapes(_ShapeOnly(5), _ShapeOnly(5, 3), WHO)  # class ids fit too
    for labels, outputs, message in [
        ((5,), (5, 4), r"4 output unit\(s\) per example, but 3 at the first"),
        ((5, 2), (5, 3), r"labels of shape \(5, 2\) do not fit a model with 3 output"),
        ((4,), (5, 3), "does not match"),
        ((5,), (5, 3, 1), "flatten extra dimensions"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            layout.check_shapes(_ShapeOnly(*labels), _ShapeOnly(*outputs), WHO)
        assert str(raised.value).startswith(WHO)
    multi = _check(np.array([[1, 1], [0, 0]]), np.full((2, 2), 0.5), multi_label=True).layout
    multi.check_shapes(_ShapeOnly(4, 2), _ShapeOnly(4, 2), WHO)
    with pytest.raises(ValueError, match=r"multi_label=True.*both \[n, K\]"):
        multi.check_shapes(_ShapeOnly(4), _ShapeOnly(4, 2), WHO)


def test_an_undecided_from_logits_is_decided_by_the_next_evaluation():
    """A layout fixed on a batch that is not counted (the Lightning callback's first one)
    leaves ``from_logits`` to the first evaluation counted, on all its rows.
    """
    probe = _check([0, 1], np.array([[0.3, 0.7], [0.6, 0.4]])).layout
    undecided = dataclasses.replace(probe, from_logits=None)
    logits = np.array([[0.3, 0.7], [2.0, -1.0]])
    decided = _check([0, 1], logits, layout=undecided)
    assert decided.layout.from_logits is True
    np.testing.assert_allclose(decided.scores, labels_lib.scores_and_predictions(logits, True)[0])
    # Once decided, outputs that can only be the other kind are refused, as for every writer.
    kept = _check([0, 1], np.array([[0.3, 0.7], [0.6, 0.4]]), layout=undecided).layout
    with pytest.raises(ValueError, match="pass from_logits=True"):
        _check([0, 1], logits, layout=kept)


def test_multi_hot_values_are_checked_at_the_boundary():
    layout = _check(np.array([[1, 1], [0, 0]]), np.full((2, 2), 0.5), multi_label=True).layout
    for labels in ([[0, 2], [1, 0]], [[np.nan, 1], [1, 0]]):
        with pytest.raises(ValueError, match="only 0 and 1") as raised:
            _check(np.array(labels), np.full((2, 2), 0.5), layout=layout)
        assert str(raised.value).startswith(WHO)
    targets = _check(np.array([[1, 0], [1, 1]]), np.full((2, 2), 0.5), layout=layout).targets
    assert targets.dtype == bool and targets.tolist() == [[True, False], [True, True]]


def test_the_names_in_messages_are_the_writers():
    with pytest.raises(ValueError, match="labels of shape \\(3,\\) does not match outputs"):
        _check([0, 1, 1], np.ones(2) / 2, names=("labels", "outputs"))


# -- per-example inputs ----------------------------------------------------------------------

SCORES = np.array([0.1, 0.8, 0.6])


def test_example_ids_integers_or_strings_unique():
    assert _check([0, 1, 1], SCORES, example_ids=[7, 3, 5]).example_ids.tolist() == [7, 3, 5]
    ids = _check([0, 1, 1], SCORES, example_ids=["a", "img_2", 3]).example_ids
    assert ids.tolist() == ["a", "img_2", "3"]
    assert _check([0, 1, 1], SCORES, example_ids=np.arange(3)).example_ids.dtype == np.int64


@pytest.mark.parametrize(
    "ids, message",
    [
        ([1, 2], "one id per example, 3 in all"),
        ([1, 2, 1], "unique within a split; 1 appears 2 times"),
        (["a", "b", "a"], "'a' appears 2 times"),
        (["a", "b", "x" * 129], "1 to 128 characters long, got 129"),
        (["a", "b", ""], "1 to 128 characters long, got 0"),
        ([0.5, 1.5, 2.5], "integers or strings, got dtype float64"),
        (np.array([b"a", None, "c"], dtype=object), "integers or strings, got None"),
    ],
)
def test_bad_example_ids(ids, message):
    with pytest.raises(ValueError, match=message) as raised:
        _check([0, 1, 1], SCORES, example_ids=ids)
    assert str(raised.value).startswith(WHO + ": example_ids") or "example" in str(raised.value)


def test_previews_text_and_images():
    text = _check([0, 1, 1], SCORES, previews=["a cat", "a dog", b"bytes"]).previews
    assert text.tolist() == ["a cat", "a dog", "bytes"]
    grey = np.zeros((3, 28, 28), np.uint8)
    assert _check([0, 1, 1], SCORES, previews=grey).previews.shape == (3, 28, 28)
    rgb = np.random.default_rng(0).random((3, 8, 8, 3)).astype(np.float32)
    assert _check([0, 1, 1], SCORES, previews=rgb).previews.dtype == np.float32


@pytest.mark.parametrize(
    "previews, message",
    [
        (["a", "b"], "2 previews for 3 examples"),
        (np.zeros((2, 8, 8)), r"previews of shape \(2, 8, 8\) for 3 examples"),
        (np.zeros((3, 8, 8, 2)), r"\[n, H, W, 1 \| 3\]"),
        (np.zeros((3, 8)), r"images must be \[n, H, W\]"),
        (np.full((3, 4, 4), 2.0), r"float image previews must lie in \[0, 1\]"),
        (np.zeros((3, 4, 4), np.int32), "uint8 .* or floats"),
        (["a", 1, "b"], "text previews must all be strings"),
    ],
)
def test_bad_previews(previews, message):
    with pytest.raises(ValueError, match=message) as raised:
        _check([0, 1, 1], SCORES, previews=previews)
    assert str(raised.value).startswith(WHO)


def test_groups():
    groups = _check(
        [0, 1, 1], SCORES, groups={"country": ["fr", "de", "fr"], "mobile": [True, False, True]}
    ).groups
    assert groups["country"].values == ("fr", "de")
    assert groups["country"].codes.tolist() == [0, 1, 0]
    assert groups["mobile"].values == ("True", "False")  # first appearance first
    assert groups["mobile"].codes.tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    "groups, message",
    [
        ([1, 2, 3], "groups must be a dict"),
        ({"k%d" % i: [1, 2, 3] for i in range(9)}, "9 group keys; at most 8"),
        ({"1abc": [1, 2, 3]}, "group key '1abc' must be a name"),
        ({"a-b": [1, 2, 3]}, "group key 'a-b'"),
        ({"x" * 65: [1, 2, 3]}, "1 to 64 characters"),
        ({"country": ["fr", "de"]}, r"groups\['country'\] has shape \(2,\)"),
        ({"score": [0.1, 0.2, 0.3]}, "strings, integers or booleans, got float"),
        ({"score": np.array([0.1, 0.2, 0.3])}, "strings, integers or booleans, got dtype float64"),
        ({"mixed": np.array(["a", 1.5, "b"], dtype=object)}, "strings, integers or booleans"),
    ],
)
def test_bad_groups(groups, message):
    with pytest.raises(ValueError, match=message) as raised:
        _check([0, 1, 1], SCORES, groups=groups)
    assert str(raised.value).startswith(WHO)

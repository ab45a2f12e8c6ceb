"""The Lightning callback's example records: ids, previews and groups from ``validation_step``'s
dict or from the ``example_ids`` / ``previews`` callables, the ``/examples`` answers against
NumPy brute force on the final module's own outputs, ``example_ids=False``, and the mistakes
that raise at the first validation batch or, later, leave an epoch's records out with an event.
"""

import json

import lightning_runs as runs
import numpy as np
import pytest
import torch
from conftest import read_events, to_scores
from example_checks import brute_force_cell
from sklearn import metrics as skm
from tensorboard import errors as tb_errors

from tb_metricsdiag.backend import example_views
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.format import schema
from tb_metricsdiag.lightning import MetricsDiagCallback

CLASSES = 3
EPOCHS = 2


def _fit(root, callback, module=None, validation=None, indexed=True, epochs=EPOCHS):
    torch.manual_seed(0)
    module = module or runs.Classifier(classes=CLASSES)
    train = runs.data(64, 1, CLASSES)
    validation = validation or runs.data(runs.VAL_SIZE, 2, CLASSES)
    trainer = runs.fit(
        str(root), module, train, validation, epochs, callback=callback, indexed=indexed
    )
    return trainer, module, validation


def _answers(log_dir):
    """``/examples`` of every cell at the last step, as the route builds them."""
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(log_dir))
    (run,) = list(reader.list_runs())
    records = reader.examples(run, "validation")
    previews = reader.previews(run, "validation")
    return {
        (true, pred): example_views.examples_view(run, records, true, pred, None, previews)
        for true in range(CLASSES)
        for pred in range(CLASSES)
    }


def _check_answers(answers, module, validation, ids, previews):
    """Each cell's count and listed ids (and previews) against NumPy on the module's outputs."""
    scores, predicted = to_scores(runs.outputs(module, validation[0]), from_logits=True)
    rows = np.arange(len(validation[1]))
    for (true, pred), answer in answers.items():
        score = scores[rows, predicted]
        count, expected = brute_force_cell(validation[1], predicted, score, true, pred, 10)
        assert answer["count"] == count
        listed = answer["examples"][: len(expected)]
        assert [example["id"] for example in listed] == [ids[i] for i in expected]
        np.testing.assert_allclose(
            [example["score"] for example in listed], score[expected], rtol=1e-6
        )
        if previews is not None:
            assert [example["preview"] for example in listed] == [
                {"text": previews[i]} for i in expected
            ]


@pytest.fixture(scope="module")
def from_validation_step(tmp_path_factory):
    """A fit whose ``validation_step`` returns ids, previews and groups with its scores."""
    root = tmp_path_factory.mktemp("from_validation_step")
    trainer, module, validation = _fit(root, MetricsDiagCallback())
    return trainer.logger.log_dir, module, validation


def test_ids_and_previews_from_validation_step_answer_examples(from_validation_step):
    log_dir, module, validation = from_validation_step
    given = runs.row_examples(torch.arange(len(validation[1])))
    _check_answers(_answers(log_dir), module, validation, given["ids"], given["previews"])
    info = json.loads(read_events(log_dir)[schema.RUN_INFO_TAG][0][0].item())
    assert info["counting"] == "lightning_validation_step_outputs"


def test_groups_from_validation_step_give_each_slice_its_confusion(from_validation_step):
    """Per slice (key, value) the stored confusion is scikit-learn's on that slice's rows."""
    log_dir, module, validation = from_validation_step
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(log_dir))
    (run,) = list(reader.list_runs())
    groups = runs.row_examples(torch.arange(len(validation[1])))["groups"]
    assert reader.slice_keys(run, "validation") == {
        "parity": ["0", "1"],
        "third": ["t0", "t1", "t2"],
    }
    _, predicted = to_scores(runs.outputs(module, validation[0]), from_logits=True)
    for key, values in groups.items():
        values = np.array([str(v) for v in values])
        for value in sorted(set(values)):
            rows = values == value
            stored = reader.evaluation(run, "validation", slice=(key, value), with_pr=False)
            expected = skm.confusion_matrix(
                validation[1][rows], predicted[rows], labels=range(CLASSES)
            )
            np.testing.assert_array_equal(stored.confusion, expected)


def test_example_ids_callable_names_the_rows(tmp_path):
    callback = MetricsDiagCallback(
        scores_and_labels=lambda module, batch, outputs: (module(batch[0]), batch[1]),
        example_ids=lambda module, batch, outputs: batch[2] * 10 + 3,  # a tensor of ints
        previews=lambda module, batch, outputs: ["row %d" % i for i in batch[2].tolist()],
    )
    module = runs.Classifier(classes=CLASSES)
    module.validation_step = lambda batch, batch_idx: None  # no dict: the callables give all
    trainer, module, validation = _fit(tmp_path, callback, module=module)
    rows = range(len(validation[1]))
    _check_answers(
        _answers(trainer.logger.log_dir),
        module,
        validation,
        [i * 10 + 3 for i in rows],
        ["row %d" % i for i in rows],
    )


def test_positions_are_the_default_ids_and_false_turns_records_off(tmp_path):
    trainer, module, validation = _fit(tmp_path / "default", MetricsDiagCallback(), indexed=False)
    _check_answers(
        _answers(trainer.logger.log_dir), module, validation, list(range(runs.VAL_SIZE)), None
    )
    trainer, *_ = _fit(tmp_path / "off", MetricsDiagCallback(example_ids=False))
    events = read_events(trainer.logger.log_dir)
    assert schema.split_tag("validation", schema.KIND_CONFUSION) in events
    assert not any(tag.endswith("/" + schema.KIND_EXAMPLES) for tag in events)
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(trainer.logger.log_dir))
    (run,) = list(reader.list_runs())
    with pytest.raises(tb_errors.NotFoundError):
        reader.examples(run, "validation")


class _Returns(runs.Classifier):
    """A module whose ``validation_step`` returns ``change(row_examples)`` beside its scores."""

    def __init__(self, change):
        super().__init__(classes=CLASSES)
        self.change = change

    def validation_step(self, batch, batch_idx):
        x, y, index = batch
        given = runs.row_examples(index)
        return {"scores": self(x), "labels": y, **self.change(given, batch_idx)}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda g, b: {"ids": g["ids"][:-1]}, r"'ids'.*give one id per example, 16"),
        (lambda g, b: {"ids": ["same"] * len(g["ids"])}, r"unique.*'same' appears 16 times"),
        (lambda g, b: {"ids": ["x" * 200] * len(g["ids"])}, r"1 to 128 characters"),
        (lambda g, b: {"previews": np.zeros((16, 4, 4, 2))}, r"'previews'.*\[n, H, W, 1 \| 3\]"),
        (lambda g, b: {"groups": {"bad key": g["groups"]["parity"]}}, r"'groups'.*group key"),
        (lambda g, b: {"groups": {"parity": [0.5] * 16}}, r"strings, integers or booleans"),
    ],
)
def test_mistakes_raise_at_the_first_validation_batch(tmp_path, change, message):
    with pytest.raises(ValueError, match="MetricsDiagCallback: .*" + message):
        _fit(tmp_path, MetricsDiagCallback(), module=_Returns(change))


def test_the_configuration_is_checked_at_setup(tmp_path):
    with pytest.raises(ValueError, match="example_ids must be None"):
        _fit(tmp_path, MetricsDiagCallback(example_ids="id"))
    with pytest.raises(ValueError, match="previews need example records"):
        _fit(tmp_path, MetricsDiagCallback(example_ids=False, previews=lambda *a: ["t"]))


def test_ids_repeated_across_batches_leave_the_records_out_with_an_event(tmp_path):
    # Each batch's ids are unique, but every batch repeats the first one's.
    module = _Returns(lambda g, b: {"ids": ["row %d" % i for i in range(16)][: len(g["ids"])]})
    trainer, *_ = _fit(tmp_path, MetricsDiagCallback(), module=module, epochs=1)
    events = read_events(trainer.logger.log_dir)
    assert events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0].sum() == 101
    assert not any(tag.endswith("/" + schema.KIND_EXAMPLES) for tag in events)
    (recorded,) = [json.loads(value.item()) for value, _ in events[schema.EVENTS_TAG].values()]
    assert "example records of epoch 0 were left out" in recorded[0]["message"]
    assert "'row 0' appears" in recorded[0]["message"]


def _later_batch(change):
    """``change`` applied to the groups of validation batch 2 only (the first batch, checked
    whole, is right)."""
    return lambda g, b: {"groups": change(g["groups"]) if b == 2 else g["groups"]}


def test_bad_group_values_in_a_later_batch_leave_the_epoch_s_records_out_with_an_event(tmp_path):
    """Groups' values are checked at the first batch and with each epoch's: a later batch of
    floats keeps its rows counted and leaves that epoch's example records out, saying why."""
    module = _Returns(_later_batch(lambda groups: {**groups, "parity": [0.5] * 16}))
    trainer, *_ = _fit(tmp_path, MetricsDiagCallback(), module=module, epochs=1)
    events = read_events(trainer.logger.log_dir)
    assert events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0].sum() == 101
    assert not any(tag.endswith("/" + schema.KIND_EXAMPLES) for tag in events)
    assert not any(tag.endswith("/" + schema.KIND_SLICES) for tag in events)
    (recorded,) = [json.loads(value.item()) for value, _ in events[schema.EVENTS_TAG].values()]
    assert "example records of epoch 0 were left out" in recorded[0]["message"]
    assert "groups['parity'] values must be strings, integers or booleans" in recorded[0]["message"]


def test_groups_of_another_row_count_in_a_later_batch_leave_that_batch_out(tmp_path):
    """Each batch's groups must have its rows, so that the epoch's rows line up: a batch
    whose groups have fewer is left out, with an event; the other rows and their records are
    written."""
    module = _Returns(_later_batch(lambda groups: {k: v[:-1] for k, v in groups.items()}))
    trainer, *_ = _fit(tmp_path, MetricsDiagCallback(), module=module, epochs=1)
    events = read_events(trainer.logger.log_dir)
    assert events[schema.split_tag("validation", schema.KIND_CONFUSION)][0][0].sum() == 101 - 16
    assert schema.split_tag("validation", schema.KIND_SLICES) in events
    (recorded,) = [json.loads(value.item()) for value, _ in events[schema.EVENTS_TAG].values()]
    assert "validation batch 2 was left out" in recorded[0]["message"]
    assert "groups['parity'] has shape (15,): give one value per row, 16" in recorded[0]["message"]

"""The Transformers callback's example records: ids, previews and groups read from the eval
dataset's columns (which the Trainer keeps from the model), the ``/examples`` answers and the
slices against NumPy and scikit-learn on ``trainer.predict`` of the final model, positions by
default, ``example_ids=False``, and the mistakes that raise at the first evaluation.
"""

import types

import numpy as np
import pytest
import transformers
import transformers_runs as runs
from example_checks import brute_force_cell
from sklearn import metrics as skm
from tensorboard import errors as tb_errors
from writer_checks import float32_softmax

from tb_metricsdiag.backend import example_views
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.transformers import MetricsDiagCallback

CLASSES = 3


def _trainer(output_dir, callback, data, **arguments):
    return transformers.Trainer(
        model=runs.tiny_bert(CLASSES),
        args=runs.arguments(output_dir, **arguments),
        train_dataset=runs.TokenData(48, 1, CLASSES),
        eval_dataset=data,
        compute_metrics=callback.compute_metrics(None),
        callbacks=[callback],
    )


def _reader(log_dir):
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(log_dir))
    (run,) = list(reader.list_runs())
    return reader, run


def _check_answers(log_dir, split, labels, probabilities, ids, previews):
    """Every cell's ``/examples`` against NumPy brute force on the final model's scores."""
    reader, run = _reader(log_dir)
    records, stored = reader.examples(run, split), reader.previews(run, split)
    predicted = probabilities.argmax(axis=1)
    score = probabilities[np.arange(len(labels)), predicted]
    for true in range(CLASSES):
        for pred in range(CLASSES):
            answer = example_views.examples_view(run, records, true, pred, None, stored)
            count, expected = brute_force_cell(labels, predicted, score, true, pred, 10)
            assert answer["count"] == count
            listed = answer["examples"][: len(expected)]
            assert [example["id"] for example in listed] == [ids[i] for i in expected]
            np.testing.assert_allclose([e["score"] for e in listed], score[expected], rtol=1e-5)
            expected_previews = [
                None if previews is None else {"text": previews[i]} for i in expected
            ]
            assert [example["preview"] for example in listed] == expected_previews


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """Two epochs evaluated on {"validation", "ood"}, whose rows carry id, text and lang."""
    output_dir = tmp_path_factory.mktemp("described")
    data = {
        "validation": runs.DescribedTokenData(41, 2, CLASSES),
        "ood": runs.DescribedTokenData(23, 3, CLASSES),
    }
    callback = MetricsDiagCallback(example_ids="id", previews="text", groups=["lang"])
    trainer = _trainer(output_dir, callback, data)
    trainer.train()
    predictions = {}
    for split, dataset in data.items():
        output = trainer.predict(dataset)
        predictions[split] = (output.label_ids, float32_softmax(output.predictions))
    return types.SimpleNamespace(log_dir=callback.run_dir, data=data, predictions=predictions)


@pytest.mark.parametrize("split", ["validation", "ood"])
def test_ids_and_previews_from_columns_answer_examples(described, split):
    labels, probabilities = described.predictions[split]
    rows = [runs.described(i) for i in range(len(labels))]
    ids, texts = [row["id"] for row in rows], [row["text"] for row in rows]
    _check_answers(described.log_dir, split, labels, probabilities, ids, texts)


@pytest.mark.parametrize("split", ["validation", "ood"])
def test_groups_from_a_column_give_each_slice_its_confusion(described, split):
    labels, probabilities = described.predictions[split]
    reader, run = _reader(described.log_dir)
    langs = np.array([runs.described(i)["lang"] for i in range(len(labels))])
    assert sorted(reader.slice_keys(run, split)["lang"]) == ["de", "en", "fr"]
    for lang in ("en", "de", "fr"):
        rows = langs == lang
        stored = reader.evaluation(run, split, slice=("lang", lang), with_pr=False)
        expected = skm.confusion_matrix(
            labels[rows], probabilities[rows].argmax(axis=1), labels=range(CLASSES)
        )
        np.testing.assert_array_equal(stored.confusion, expected)


def test_positions_by_default_and_false_turns_records_off(tmp_path):
    data = runs.TokenData(30, 2, CLASSES)
    callback = MetricsDiagCallback()
    trainer = _trainer(tmp_path / "default", callback, data, num_train_epochs=1)
    trainer.train()
    output = trainer.predict(data)
    labels, probabilities = output.label_ids, float32_softmax(output.predictions)
    _check_answers(callback.run_dir, "validation", labels, probabilities, list(range(30)), None)

    off = MetricsDiagCallback(example_ids=False)
    _trainer(tmp_path / "off", off, data, num_train_epochs=1).train()
    reader, run = _reader(off.run_dir)
    assert reader.evaluation(run, "validation").confusion.sum() == 30
    with pytest.raises(tb_errors.NotFoundError):
        reader.examples(run, "validation")


@pytest.mark.parametrize(
    "callback_args, data, message",
    [
        ({"example_ids": "doc"}, runs.DescribedTokenData(20, 2, CLASSES), r"no column 'doc'"),
        ({"example_ids": "lang"}, runs.DescribedTokenData(20, 2, CLASSES), r"unique.*appears"),
        ({"previews": "text"}, runs.TokenData(20, 2, CLASSES), r"no column 'text'"),
    ],
)
def test_column_mistakes_raise_at_the_first_evaluation(tmp_path, callback_args, data, message):
    trainer = _trainer(tmp_path, MetricsDiagCallback(**callback_args), data, num_train_epochs=1)
    with pytest.raises(ValueError, match="MetricsDiagCallback: .*" + message):
        trainer.train()


def test_rows_not_evaluated_in_order_are_refused(tmp_path):
    class Reversed(runs.DescribedTokenData):
        """Its columns read in reverse: they do not belong to the rows evaluated."""

        def __getitem__(self, index):
            row = super().__getitem__(index)
            if isinstance(index, int) and self.read_by_callback:
                row["labels"] = super().__getitem__(len(self) - 1 - index)["labels"]
            return row

    data = Reversed(20, 2, CLASSES)
    data.read_by_callback = False
    callback = MetricsDiagCallback(example_ids="id")
    trainer = _trainer(tmp_path, callback, data, num_train_epochs=1)
    original = callback._with_columns

    def reading(evaluation, split):
        data.read_by_callback = True
        return original(evaluation, split)

    callback._with_columns = reading
    with pytest.raises(ValueError, match="'labels' column differs from the evaluation's labels"):
        trainer.train()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"example_ids": 3}, "example_ids must be the name of an eval dataset column"),
        ({"previews": ["text"]}, "previews must be the name"),
        ({"example_ids": False, "previews": "text"}, "previews need example records"),
        ({"groups": "lang"}, "groups must be a list of eval dataset columns"),
        ({"groups": {"bad key": "lang"}}, "group key 'bad key'"),
    ],
)
def test_the_constructor_refuses_bad_columns(arguments, message):
    with pytest.raises(ValueError, match=message):
        MetricsDiagCallback(**arguments)


def test_batch_eval_metrics_with_columns_raises(tmp_path):
    callback = MetricsDiagCallback(example_ids="id")
    trainer = transformers.Trainer(
        model=runs.tiny_bert(CLASSES),
        args=runs.arguments(tmp_path, num_train_epochs=1, batch_eval_metrics=True),
        train_dataset=runs.TokenData(16, 1, CLASSES),
        eval_dataset=runs.DescribedTokenData(16, 2, CLASSES),
        compute_metrics=callback.compute_metrics(None),
        callbacks=[callback],
    )
    with pytest.raises(
        ValueError, match="batch_eval_metrics=True nothing of the evaluation is kept, so the"
    ):
        trainer.train()

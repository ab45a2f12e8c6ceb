"""`tb_metricsdiag.transformers.MetricsDiagCallback`: real Trainer runs of a one-layer BERT built
from its config (nothing downloaded), every number against scikit-learn on ``trainer.predict``
of the final model; a dict of eval datasets, multi-label, ``batch_eval_metrics``, the
directory rules of Transformers' TensorBoardCallback, configuration errors at the first
evaluation and events after it, a 2-process ``torchrun`` run (TensorFlow hidden) against a
1-process run, and the README's section as written.
"""

import glob
import json
import logging
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import transformers
import transformers_runs as runs
from conftest import read_events, stored_logs, to_scores
from example_checks import brute_force_cell
from headline_reference import check_through_tensorboard
from no_frameworks import TENSORFLOW, environment_without
from sklearn import metrics as skm
from writer_checks import (
    assert_counts_match_sklearn,
    float32_softmax,
    history_of,
    schema_thresholds,
)

from tb_metricsdiag import diagnostics
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.core import counting, events
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.format import schema
from tb_metricsdiag.transformers import MetricsDiagCallback
from tb_metricsdiag.writing import callback_writing, transformers_predictions, transformers_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = 3


def _accuracy(eval_prediction):
    predicted = eval_prediction.predictions.argmax(-1)
    return {"accuracy": float((predicted == eval_prediction.label_ids).mean())}


def _trainer(output_dir, model, eval_dataset, callback, fn=_accuracy, train=None, **arguments):
    return transformers.Trainer(
        model=model,
        args=runs.arguments(output_dir, **arguments),
        train_dataset=train if train is not None else runs.TokenData(48, 1, CLASSES),
        eval_dataset=eval_dataset,
        compute_metrics=callback.compute_metrics(fn),
        callbacks=[callback],
    )


def _predict(trainer, dataset):
    """``(labels, logits)`` of the final model, as ``trainer.predict`` gives them."""
    output = trainer.predict(dataset)
    return output.label_ids, output.predictions


def _eval_steps(trainer):
    """The steps the Trainer evaluated at (its evaluation logs: ``eval[_NAME]_runtime``)."""
    return sorted(
        {
            entry["step"]
            for entry in trainer.state.log_history
            if any(key.startswith("eval") and key.endswith("_runtime") for key in entry)
        }
    )


def _metricsdiag_files(log_dir):
    return glob.glob(os.path.join(log_dir, "events.out.tfevents.*.metricsdiag"))


# -- a training with a dict of eval datasets -------------------------------------------------


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory):
    """Two epochs of a 3-class BERT, evaluated on {"validation", "ood"} each epoch."""
    output_dir = tmp_path_factory.mktemp("two_splits")
    data = {"validation": runs.TokenData(41, 2, CLASSES), "ood": runs.TokenData(23, 3, CLASSES)}
    callback = MetricsDiagCallback()
    trainer = _trainer(output_dir, runs.tiny_bert(CLASSES), data, callback)
    trainer.train()
    return types.SimpleNamespace(
        trainer=trainer,
        callback=callback,
        data=data,
        output_dir=str(output_dir),
        log_dir=callback.run_dir,
        predictions={split: _predict(trainer, dataset) for split, dataset in data.items()},
    )


def test_counts_of_each_split_match_sklearn_on_the_final_model(two_splits):
    steps = _eval_steps(two_splits.trainer)
    assert len(steps) == 2 and steps[-1] == two_splits.trainer.state.global_step
    for split, (labels, logits) in two_splits.predictions.items():
        assert_counts_match_sklearn(
            two_splits.log_dir, steps[-1], labels, float32_softmax(logits), split=split
        )
    stored = read_events(two_splits.log_dir)
    for split, dataset in two_splits.data.items():
        confusion = stored[schema.split_tag(split, schema.KIND_CONFUSION)]
        assert sorted(confusion) == steps  # every evaluation, at state.global_step
        assert confusion[steps[0]][0].sum() == len(dataset)
        assert sorted(stored[schema.split_tag(split, schema.KIND_CALIBRATION)]) == steps
    info = json.loads(stored[schema.RUN_INFO_TAG][0][0].item())
    assert info["splits"] == {"validation": {"examples": 41}, "ood": {"examples": 23}}
    assert info["counting"] == transformers_predictions.COUNTING_WHOLE
    assert info["model"]["name"] == "BertForSequenceClassification"
    assert info["model"]["outputs_are_logits"] is True
    assert info["labels"]["class_names"] == ["0", "1", "2"]
    assert info["problem_type"] == "single_label_classification"
    assert schema.EVENTS_TAG not in stored


def test_headline_scalars_of_each_split_through_tensorboard(two_splits):
    """The last evaluation's headline scalars of both splits, read through TensorBoard's own
    scalars plugin with both loaders, against scikit-learn on the final model's outputs."""
    last = _eval_steps(two_splits.trainer)[-1]
    splits = {}
    for split, (labels, logits) in two_splits.predictions.items():
        probabilities, _ = to_scores(np.asarray(logits, dtype=np.float64), from_logits=True)
        splits[split] = {last: (labels, probabilities)}
    run = os.path.relpath(two_splits.log_dir, two_splits.output_dir)
    check_through_tensorboard(two_splits.output_dir, {run: (["0", "1", "2"], "multiclass", splits)})


def test_logs_are_the_trainers_values_under_keras_names(two_splits):
    stored = read_events(two_splits.log_dir)
    history = two_splits.trainer.state.log_history
    for step in _eval_steps(two_splits.trainer):
        trainer_logs = {}
        for entry in history:
            if entry.get("step") == step and "train_runtime" not in entry:
                trainer_logs.update(entry)
        logs = stored_logs(stored, step)
        assert logs == {
            "loss": trainer_logs["loss"],
            "grad_norm": trainer_logs["grad_norm"],
            "learning_rate": trainer_logs["learning_rate"],
            "val_loss": trainer_logs["eval_validation_loss"],
            "val_accuracy": trainer_logs["eval_validation_accuracy"],
            "ood_loss": trainer_logs["eval_ood_loss"],
            "ood_accuracy": trainer_logs["eval_ood_accuracy"],
        }
    info = json.loads(stored[schema.RUN_INFO_TAG][0][0].item())
    assert info["logs_from"]["val_loss"] == "eval_validation_loss"


def test_the_run_sits_in_the_trainers_tensorboard_directory(two_splits):
    (tensorboard,) = [
        c
        for c in two_splits.trainer.callback_handler.callbacks
        if isinstance(c, transformers.integrations.TensorBoardCallback)
    ]
    assert os.path.dirname(two_splits.log_dir) == os.path.join(two_splits.output_dir, "runs")
    logging_dir = getattr(tensorboard, "logging_dir", None)  # 5.x; 4.x: args.logging_dir
    assert os.path.samefile(two_splits.log_dir, logging_dir or two_splits.trainer.args.logging_dir)
    own = [
        path
        for path in glob.glob(os.path.join(two_splits.log_dir, "events.out.tfevents.*"))
        if not path.endswith(".metricsdiag")
    ]
    assert own  # the Trainer's own scalars, beside
    assert _metricsdiag_files(two_splits.log_dir)


def test_the_reader_and_the_diagnostics_read_the_run(two_splits):
    history = history_of(two_splits.log_dir)
    assert history.problems == [] and history.events == []
    steps = _eval_steps(two_splits.trainer)
    assert history.curves["val_loss"][0].tolist() == steps
    assert history.curves["loss"][0].tolist() == steps
    labels, logits = two_splits.predictions["validation"]
    latest = history.latest["validation"]
    np.testing.assert_array_equal(
        latest.confusion, skm.confusion_matrix(labels, logits.argmax(1), labels=range(CLASSES))
    )
    assert not [f for f in diagnostics.diagnose(history) if f["rule"] == "recording_problem"]


def test_tensorboards_rust_server_keeps_every_log_of_an_evaluation_step(two_splits):
    """The Rust data server keeps the last point a series has at a step: the training loss and
    the evaluation's values, logged apart at one step, are all served (each write of the logs
    at a step holds those before it), and so are the counts."""
    from tensorboard_server import get_json, serving, wait_for

    run = os.path.basename(two_splits.log_dir)
    steps = _eval_steps(two_splits.trainer)
    history = two_splits.trainer.state.log_history
    with serving(os.path.dirname(two_splits.log_dir), load_fast="true") as url:
        wait_for(
            url,
            "/data/plugin/metricsdiag/runs",
            lambda answer: [r.get("steps") for r in answer.get("runs", [])] == [steps],
        )
        curves = get_json(url, "/data/plugin/metricsdiag/curves?run=" + run)["curves"]
        confusion = get_json(
            url, "/data/plugin/metricsdiag/confusion?run=%s&step=%d" % (run, steps[-1])
        )
    for key, name in (
        ("loss", "loss"),
        ("val_loss", "eval_validation_loss"),
        ("ood_loss", "eval_ood_loss"),
    ):
        expected = [
            e[name] for step in steps for e in history if e.get("step") == step and name in e
        ]
        assert curves[key]["steps"] == steps and curves[key]["values"] == pytest.approx(expected)
    assert confusion["total"] == 41


def test_compute_metrics_returns_what_fn_returns():
    callback = MetricsDiagCallback()
    prediction = transformers.EvalPrediction(
        predictions=np.array([[2.0, -1.0], [0.5, 1.5]], np.float32), label_ids=np.array([0, 1])
    )
    returned = {"mine": [1, 2]}
    assert callback.compute_metrics(lambda p: returned)(prediction) is returned
    assert callback.compute_metrics(None)(prediction) == {}


# -- multi-label, batch by batch ---------------------------------------------------------------


def test_multi_label_counts_per_label_match_sklearn(tmp_path):
    data = runs.TokenData(41, 2, CLASSES, multi_label=True)
    callback = MetricsDiagCallback(class_names=["red", "green", "blue"])
    model = runs.tiny_bert(CLASSES, problem_type="multi_label_classification")
    trainer = _trainer(
        tmp_path,
        model,
        data,
        callback,
        fn=None,
        train=runs.TokenData(48, 1, CLASSES, multi_label=True),
        num_train_epochs=1,
    )
    trainer.train()
    labels, logits = _predict(trainer, data)
    probabilities = labels_lib.multilabel_scores(logits, from_logits=True)  # float32, as counted
    step = trainer.state.global_step
    stored = read_events(callback.run_dir)
    matrices, content = stored[schema.split_tag("validation", schema.KIND_CONFUSION)][step]
    assert json.loads(content)["task"] == schema.TASK_MULTILABEL
    assert json.loads(content)["class_names"] == ["red", "green", "blue"]
    np.testing.assert_array_equal(
        matrices, skm.multilabel_confusion_matrix(labels.astype(int), probabilities >= 0.5)
    )
    average_precision = stored[schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)]
    for k in range(CLASSES):
        assert average_precision[step][0][k] == pytest.approx(
            skm.average_precision_score(labels[:, k], probabilities[:, k]), rel=1e-9
        )
    exact = stored[schema.split_tag("validation", schema.KIND_EXACT_MATCH)][step][0]
    assert exact.tolist() == [int(((probabilities >= 0.5) == labels).all(1).sum()), 41]


def test_batch_eval_metrics_counts_batch_by_batch(tmp_path):
    data = runs.TokenData(41, 2, 2)
    calls = []

    def batch_accuracy(eval_prediction, compute_result):
        predicted = eval_prediction.predictions.argmax(-1)
        calls.append((predicted == eval_prediction.label_ids).float().sum().item())
        return {"accuracy": sum(calls) / len(data)} if compute_result else {}

    callback = MetricsDiagCallback(class_names=["no", "yes"])
    trainer = _trainer(
        tmp_path,
        runs.tiny_bert(2),
        data,
        callback,
        fn=batch_accuracy,
        train=runs.TokenData(48, 1, 2),
        num_train_epochs=1,
        batch_eval_metrics=True,
    )
    trainer.train()
    assert len(calls) == 3  # 41 examples in batches of 16
    calls.clear()
    labels, logits = _predict(trainer, data)
    step = trainer.state.global_step
    stored = read_events(callback.run_dir)
    scores = float32_softmax(logits)
    np.testing.assert_array_equal(
        stored[schema.split_tag("validation", schema.KIND_CONFUSION)][step][0],
        skm.confusion_matrix(labels, (scores[:, 1] >= 0.5).astype(int)),
    )
    counts, content = stored[schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)][step]
    grid = schema_thresholds(content)
    reached = scores[:, :, None] >= grid[None, None, :]
    actual = np.eye(2, dtype=bool)[labels][:, :, None]
    np.testing.assert_array_equal(counts[:, 0], (reached & actual).sum(0))
    np.testing.assert_array_equal(counts[:, 1], (reached & ~actual).sum(0))
    # Nothing kept: the AP is the threshold grid's, from those counts.
    assert json.loads(content)["average_precision"] == counting.AP_THRESHOLD_GRID
    expected = counting.average_precision_from_counts(
        counts[:, 0], counts[:, 1], np.bincount(labels)
    )
    average_precision = stored[schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)]
    np.testing.assert_allclose(average_precision[step][0], expected, rtol=1e-12)
    assert stored_logs(stored, step)["val_accuracy"] == pytest.approx(
        ((scores[:, 1] >= 0.5) == labels).mean()
    )
    info = json.loads(stored[schema.RUN_INFO_TAG][0][0].item())
    assert info["counting"] == transformers_predictions.COUNTING_BATCHES
    # The example records, batch by batch: each cell's first examples by position.
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(callback.run_dir))
    (run,) = list(reader.list_runs())
    records = reader.examples(run, "validation").examples
    predicted = (scores[:, 1] >= 0.5).astype(int)
    score = scores[np.arange(len(labels)), predicted]
    for true in (0, 1):
        for pred in (0, 1):
            count, expected = brute_force_cell(labels, predicted, score, true, pred, 10)
            cell = records.cell(true, pred)
            assert cell["count"] == count
            np.testing.assert_array_equal(cell["position"][: len(expected)], expected)
    assert schema.split_tag("validation", schema.KIND_LABEL_ISSUES) not in stored


# -- what the predictions may be ---------------------------------------------------------------


def test_a_tuple_from_preprocess_logits_for_metrics_counts_its_first_element(tmp_path):
    """Probabilities and class ids from ``preprocess_logits_for_metrics``: the probabilities
    (the tuple's first element) are counted as they are, and the ids reach ``fn``."""
    seen = {}

    def accuracy_of_ids(eval_prediction):
        probabilities, ids = eval_prediction.predictions
        seen.update(labels=eval_prediction.label_ids, probabilities=probabilities)
        return {"accuracy": float((ids == eval_prediction.label_ids).mean())}

    callback = MetricsDiagCallback()
    data = runs.TokenData(41, 2, CLASSES)
    trainer = _trainer(tmp_path, runs.tiny_bert(CLASSES), data, callback, fn=accuracy_of_ids)
    trainer.preprocess_logits_for_metrics = lambda logits, labels: (
        logits.softmax(-1),
        logits.argmax(-1),
    )
    metrics = trainer.evaluate()
    assert seen["probabilities"].dtype == np.float32
    assert_counts_match_sklearn(callback.run_dir, 0, seen["labels"], seen["probabilities"])
    stored = read_events(callback.run_dir)
    assert stored_logs(stored, 0)["val_accuracy"] == metrics["eval_accuracy"]
    info = json.loads(stored[schema.RUN_INFO_TAG][0][0].item())
    assert info["model"]["outputs_are_logits"] is False  # probabilities, detected


# -- the directory ----------------------------------------------------------------------------


def _evaluated_log_dir(tmp_path, callback=None, **arguments):
    callback = callback or MetricsDiagCallback()
    data = runs.TokenData(20, 2, CLASSES)
    _trainer(tmp_path, runs.tiny_bert(CLASSES), data, callback, **arguments).evaluate()
    assert len(_metricsdiag_files(callback.run_dir)) == 1
    return callback.run_dir


def test_the_directory_without_tensorboard_is_output_dir_runs(tmp_path):
    assert _evaluated_log_dir(tmp_path, report_to="none") == os.path.join(str(tmp_path), "runs")


@pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) < 5,
    reason="TENSORBOARD_LOGGING_DIR is Transformers 5's (4.x reads args.logging_dir)",
)
def test_the_directory_follows_tensorboard_logging_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    assert _evaluated_log_dir(tmp_path) == str(tmp_path / "tb")


def test_a_given_log_dir_wins(tmp_path):
    given = tmp_path / "mine"
    assert _evaluated_log_dir(tmp_path, MetricsDiagCallback(log_dir=given)) == str(given)


def test_the_directory_rules_of_transformers_4_and_5(tmp_path):
    tensorboard = transformers.integrations.TensorBoardCallback()
    args = types.SimpleNamespace(output_dir=str(tmp_path))
    tensorboard.logging_dir = str(tmp_path / "five")  # 5.x: set at its train begin
    assert transformers_trainer.trainer_log_dir(args, [tensorboard]) == str(tmp_path / "five")
    del tensorboard.logging_dir  # 4.x: the callback has none, args.logging_dir says
    args.logging_dir = str(tmp_path / "four")
    assert transformers_trainer.trainer_log_dir(args, [tensorboard]) == str(tmp_path / "four")
    tensorboard.tb_writer = types.SimpleNamespace(get_logdir=lambda: str(tmp_path / "writer"))
    assert transformers_trainer.trainer_log_dir(args, [tensorboard]) == str(tmp_path / "writer")
    assert transformers_trainer.trainer_log_dir(args, []) == str(tmp_path / "runs")


# -- mistakes: at the first evaluation a ValueError; after it, events ---------------------------


def _first_evaluation_error(tmp_path, model=None, data=None, callback=None, **changes):
    callback = callback or MetricsDiagCallback()
    trainer = _trainer(
        tmp_path,
        model or runs.tiny_bert(CLASSES),
        data or runs.TokenData(20, 2, CLASSES),
        callback,
        fn=changes.pop("fn", _accuracy),
        **changes.pop("arguments", {}),
    )
    for name, value in changes.items():
        setattr(trainer, name, value)
    with pytest.raises(ValueError) as raised:
        trainer.evaluate()
    return str(raised.value)


def test_a_regression_head_is_refused_at_the_first_evaluation(tmp_path):
    data = runs.TokenData(20, 2, 2)
    data.labels = data.labels.astype(np.float32) * 2.5
    message = _first_evaluation_error(tmp_path, runs.tiny_bert(1), data, fn=None)
    assert "regression head" in message and "num_labels >= 2" in message


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"preprocess_logits_for_metrics": lambda logits, labels: logits.argmax(-1)},
            "not scores",
        ),
        ({"compute_metrics": _accuracy}, "no predictions"),
        ({"arguments": {"batch_eval_metrics": True}}, "must take a\\s+compute_result"),
        ({"eval_dataset": {"my data": runs.TokenData(20, 2, CLASSES)}}, "rename the eval"),
        ({"callback": MetricsDiagCallback(class_names=["a", "b"])}, "class_names has 2 names"),
    ],
    ids=["class ids", "not wrapped", "batch fn", "split name", "names"],
)
def test_configuration_mistakes_raise_at_the_first_evaluation(tmp_path, changes, expected):
    message = _first_evaluation_error(tmp_path, **changes)
    assert message.startswith("MetricsDiagCallback") and re.search(expected, message)


@pytest.mark.parametrize(
    "reduce, batched, expected",
    [
        ("counts", False, r"TrainingArguments\(\.\.\., batch_eval_metrics=True\)"),
        ("rows", True, r"leave\s+batch_eval_metrics off, or use reduce='counts'"),
    ],
    ids=["counts without batches", "rows with batches"],
)
@pytest.mark.parametrize("added", [False, True], ids=["given", "added later"])
def test_a_reduce_that_does_not_fit_batch_eval_metrics_raises_before_training(
    tmp_path, reduce, batched, expected, added
):
    """Raised when the Trainer is made, or, for a callback added later, when training begins:
    before any step or evaluation."""
    callback = MetricsDiagCallback(reduce=reduce)
    with pytest.raises(ValueError, match=expected):
        trainer = transformers.Trainer(
            model=runs.tiny_bert(CLASSES),
            args=runs.arguments(tmp_path, batch_eval_metrics=batched),
            train_dataset=runs.TokenData(48, 1, CLASSES),
            eval_dataset=runs.TokenData(20, 2, CLASSES),
            compute_metrics=callback.compute_metrics(None),
            callbacks=[] if added else [callback],
        )
        trainer.add_callback(callback)
        trainer.train()
    if added:
        assert trainer.state.global_step == 0


def test_reduce_auto_says_once_when_a_whole_evaluation_is_large(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(callback_writing, "GATHER_LIMIT_VALUES", 20 * CLASSES - 1)
    callback = MetricsDiagCallback()
    trainer = _trainer(tmp_path, runs.tiny_bert(CLASSES), runs.TokenData(20, 2, 3), callback)
    with caplog.at_level(logging.WARNING, logger="tb_metricsdiag"):
        trainer.evaluate()
        trainer.evaluate()
    said = [r.getMessage() for r in caplog.records if "held whole on every process" in r.message]
    assert len(said) == 1 and "reduce='counts'" in said[0] and "60 scores" in said[0]
    caplog.clear()
    monkeypatch.setattr(callback_writing, "GATHER_LIMIT_VALUES", 20 * CLASSES)
    quiet = MetricsDiagCallback()
    _trainer(
        tmp_path / "quiet", runs.tiny_bert(CLASSES), runs.TokenData(20, 2, 3), quiet
    ).evaluate()
    assert not [r for r in caplog.records if "held whole" in r.getMessage()]


def test_a_wrapped_compute_metrics_without_the_callback_raises(tmp_path):
    callback = MetricsDiagCallback()
    trainer = _trainer(tmp_path, runs.tiny_bert(CLASSES), runs.TokenData(20, 2, 3), callback)
    trainer.remove_callback(callback)
    with pytest.raises(ValueError, match=r"pass callbacks=\[cb\] too"):
        trainer.evaluate()


def test_the_constructor_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="log_dir"):
        MetricsDiagCallback(log_dir="")
    with pytest.raises(ValueError, match="reduce must be 'auto'"):
        MetricsDiagCallback(reduce="sum")
    with pytest.raises(ValueError, match="reduce='counts' keeps no rows"):
        MetricsDiagCallback(reduce="counts", example_ids="id")
    with pytest.raises(ValueError, match="from_logits"):
        MetricsDiagCallback(from_logits="yes")
    with pytest.raises(ValueError, match="your compute_metrics"):
        MetricsDiagCallback().compute_metrics("accuracy")
    prediction = transformers.EvalPrediction(predictions=np.zeros((1, 2)), label_ids=[0])
    with pytest.raises(ValueError, match="called cb.compute_metrics itself"):
        MetricsDiagCallback().compute_metrics(prediction)


@pytest.mark.parametrize("batched", [False, True], ids=["whole", "batch_eval_metrics"])
def test_after_the_first_evaluation_a_problem_is_an_event(tmp_path, batched):
    """At the second epoch the predictions of both eval datasets (batch by batch: each one's
    first batch of 16) lose a class: they are left out with one event each at that step, the
    training ends normally, the rest is recorded."""
    calls = []

    def narrowing(logits, labels):
        calls.append(len(logits))
        narrowed = len(calls) in (5, 7) if batched else len(calls) > 4  # 2 batches a dataset
        return logits[:, :2] if narrowed else logits

    def nothing(eval_prediction, compute_result):
        return {}

    callback = MetricsDiagCallback()
    data = runs.TokenData(20, 2, CLASSES)  # batches of 16 and 4
    trainer = _trainer(
        tmp_path,
        runs.tiny_bert(CLASSES),
        {"validation": data, "ood": data},
        callback,
        fn=nothing if batched else None,
        train=runs.TokenData(16, 1, CLASSES),
        batch_eval_metrics=batched,
    )
    trainer.preprocess_logits_for_metrics = narrowing
    trainer.train()
    steps = _eval_steps(trainer)
    stored = read_events(callback.run_dir)
    problems = json.loads(stored[schema.EVENTS_TAG][steps[1]][0].item())  # the step's last
    assert sorted(problem["split"] for problem in problems) == ["ood", "validation"]
    for split in ("validation", "ood"):
        confusion = stored[schema.split_tag(split, schema.KIND_CONFUSION)]
        assert sorted(confusion) == (steps if batched else steps[:1])
        assert confusion[steps[0]][0].sum() == 20
        if batched:
            assert confusion[steps[1]][0].sum() == 4  # the batch of 16 left out
    for problem in problems:
        assert problem["kind"] == events.BAD_BATCH
        assert "2 output unit(s) per example, but 3" in problem["message"]
        if batched:
            assert "a batch of label_ids of shape (16,)" in problem["message"]
    assert {"val_loss", "ood_loss"} <= set(stored_logs(stored, steps[1]))  # logs still written


# -- DDP: 2 processes give the counts of 1 -----------------------------------------------------


def test_torchrun_two_processes_count_the_eval_set_once_without_tensorflow(tmp_path):
    """``torchrun --nproc_per_node 2`` on CPU (gloo) over 41 eval examples, which the samplers
    pad to 42, with TensorFlow hidden from every process: process zero alone writes, the counts
    are scikit-learn's on the gathered predictions and equal a 1-process run's."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformers_runs.py")
    with environment_without(TENSORFLOW) as env:
        env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            + ["--nproc_per_node", "2", script, str(tmp_path / "ddp")],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=str(tmp_path),
            env=env,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = json.loads(result.stdout.strip().splitlines()[-1])
    assert ddp["world_size"] == 2 and ddp["frameworks"] == []
    log_dir = os.path.join(str(tmp_path), ddp["log_dir"])
    files = _metricsdiag_files(log_dir)
    assert files and all(".%d." % ddp["pid"] in os.path.basename(path) for path in files)
    labels, predictions = np.asarray(ddp["labels"]), np.asarray(ddp["predictions"], np.float32)
    assert len(labels) == runs.DDP_EXAMPLES  # the padded repeats left out by the gather
    step = ddp["step"]
    assert_counts_match_sklearn(log_dir, step, labels, float32_softmax(predictions))

    single = MetricsDiagCallback()
    trainer = runs.ddp_trainer(tmp_path / "single", single, None)
    trainer.train()
    ddp_events, single_events = read_events(log_dir), read_events(single.run_dir)
    single_step = trainer.state.global_step  # twice the steps of two processes
    for kind in (schema.KIND_CONFUSION, schema.KIND_THRESHOLD_COUNTS):
        tag = schema.split_tag("validation", kind)
        np.testing.assert_array_equal(ddp_events[tag][step][0], single_events[tag][single_step][0])
    tag = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)
    np.testing.assert_allclose(
        ddp_events[tag][step][0], single_events[tag][single_step][0], rtol=1e-6
    )
    info = json.loads(ddp_events[schema.RUN_INFO_TAG][0][0].item())
    assert info["distributed"] == {"world_size": 2}
    assert info["splits"] == {"validation": {"examples": runs.DDP_EXAMPLES}}

    # reduce="counts" (batch_eval_metrics=True): each gathered batch counted as it comes gives
    # the counts of the whole gathered evaluation, the AP from the threshold grid.
    counted_dir = os.path.join(str(tmp_path), ddp["counts_log_dir"])
    counted_events, counted_step = read_events(counted_dir), ddp["counts_step"]
    assert counted_step == step
    for kind in (schema.KIND_CONFUSION, schema.KIND_THRESHOLD_COUNTS):
        tag = schema.split_tag("validation", kind)
        np.testing.assert_array_equal(counted_events[tag][step][0], ddp_events[tag][step][0])
    _, content = counted_events[schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)][step]
    assert json.loads(content)["average_precision"] == counting.AP_THRESHOLD_GRID
    info = json.loads(counted_events[schema.RUN_INFO_TAG][0][0].item())
    assert info["counting"] == transformers_predictions.COUNTING_BATCHES
    assert info["splits"] == {"validation": {"examples": runs.DDP_EXAMPLES}}


# -- the README --------------------------------------------------------------------------------


def _readme_section():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    return re.split(r"\n#+ ", readme.split("\n### Hugging Face Transformers\n", 1)[1])[0]


def test_the_readme_section_works_as_written(tmp_path, monkeypatch):
    """The README's code, as written, with a model and datasets of the user's (``model``,
    ``train``, ``val``: the names it uses); then its TensorBoard command's directory holds the
    run beside the Trainer's own scalars."""
    section = _readme_section()
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {
        "model": runs.tiny_bert(2, id2label={0: "negative", 1: "positive"}),
        "train": runs.TokenData(16, 1, 2),
        "val": runs.TokenData(24, 2, 2),
    }
    exec(compile(snippet, "README.md", "exec"), scope)
    trainer = scope["trainer"]
    command = re.search(r"tensorboard --logdir ([^`\s]+)", section).group(1)
    (log_dir,) = glob.glob(os.path.join(command, "*"))
    assert _metricsdiag_files(log_dir)
    labels, logits = _predict(trainer, scope["val"])
    assert_counts_match_sklearn(log_dir, trainer.state.global_step, labels, float32_softmax(logits))
    history = history_of(log_dir)
    assert history.class_names == ["negative", "positive"]
    assert history.problems == [] and history.events == []

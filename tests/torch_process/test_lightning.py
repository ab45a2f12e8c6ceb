"""`tb_metricsdiag.lightning.MetricsDiagCallback`: PyTorch Lightning runs, every number against
scikit-learn on the final module's own outputs, a 2-process DDP run (with TensorFlow hidden)
against a 1-process run, the reader and the diagnostics on what it wrote, and its errors.
"""

import json
import os
import re

import lightning.pytorch as pl
import lightning_runs as runs
import numpy as np
import pytest
import torch
from conftest import read_events, stored_logs, to_scores
from headline_reference import check_through_tensorboard
from no_frameworks import run_script_without
from sklearn import metrics as skm
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from tb_metricsdiag import diagnostics
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.format import schema, threshold_grid
from tb_metricsdiag.lightning import MetricsDiagCallback
from tb_metricsdiag.writing.lightning_distributed import sampler_padding, sampler_share
from tb_metricsdiag.writing.log_names import keras_logs

CONFUSION = schema.split_tag("validation", schema.KIND_CONFUSION)
COUNTS = schema.split_tag("validation", schema.KIND_THRESHOLD_COUNTS)
AP = schema.split_tag("validation", schema.KIND_AVERAGE_PRECISION)


class MetricsAtEpochEnd(pl.Callback):
    """Records ``trainer.callback_metrics`` at every training epoch's end."""

    def __init__(self):
        self.metrics = {}

    def on_train_epoch_end(self, trainer, pl_module):
        self.metrics[trainer.current_epoch] = {
            name: float(value) for name, value in trainer.callback_metrics.items()
        }


def _train(root, classes, epochs, **module_args):
    torch.manual_seed(0)
    module = runs.Classifier(classes=classes, **module_args)
    train, validation = runs.data(64, 1, classes), runs.data(runs.VAL_SIZE, 2, classes)
    recorder = MetricsAtEpochEnd()
    trainer = runs.fit(str(root), module, train, validation, epochs, extra_callbacks=[recorder])
    return {
        "trainer": trainer,
        "log_dir": trainer.logger.log_dir,
        "labels": validation[1],
        "outputs": runs.outputs(module, validation[0]),
        "metrics": recorder.metrics,
        "epochs": epochs,
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lightning")
    return {
        "multiclass": _train(root / "multiclass", classes=3, epochs=3),
        "binary": _train(root / "binary", classes=2, epochs=2),
    }


def _expected_counts(labels, outputs, thresholds):
    """Confusion, brute-force TP / FP of ``score >= t``, and scikit-learn's AP."""
    outputs = outputs[:, None] if outputs.ndim == 1 else outputs
    scores, predicted = to_scores(outputs, from_logits=True)
    classes = scores.shape[1]
    confusion = skm.confusion_matrix(labels, predicted, labels=range(classes))
    positive = labels[:, None] == np.arange(classes)
    above = scores[:, :, None] >= thresholds[None, None, :]  # [n, C, T]
    tp = (above & positive[:, :, None]).sum(axis=0)
    fp = (above & ~positive[:, :, None]).sum(axis=0)
    ap = [skm.average_precision_score(positive[:, k], scores[:, k]) for k in range(classes)]
    return confusion, tp, fp, np.array(ap)


def _thresholds(events):
    content = json.loads(next(iter(events[COUNTS].values()))[1])
    return threshold_grid.decode_thresholds(content["thresholds"])


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_last_epoch_counts_equal_scikit_learn(trained, name):
    run = trained[name]
    events = read_events(run["log_dir"])
    last = run["epochs"] - 1
    assert sorted(events[CONFUSION]) == list(range(run["epochs"]))  # the sanity check: unwritten
    confusion, tp, fp, ap = _expected_counts(run["labels"], run["outputs"], _thresholds(events))
    np.testing.assert_array_equal(events[CONFUSION][last][0], confusion)
    np.testing.assert_array_equal(events[COUNTS][last][0][:, 0], tp)
    np.testing.assert_array_equal(events[COUNTS][last][0][:, 1], fp)
    np.testing.assert_allclose(events[AP][last][0], ap, rtol=1e-12)


def test_headline_scalars_through_tensorboard_equal_scikit_learn(trained):
    """The last epoch's headline scalars, read through TensorBoard's own scalars plugin with
    both loaders, against scikit-learn on the final module's outputs."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(trained["multiclass"]["log_dir"])))
    expected = {}
    for run in trained.values():
        outputs = run["outputs"][:, None] if run["outputs"].ndim == 1 else run["outputs"]
        probabilities, _ = to_scores(outputs.astype(np.float64), from_logits=True)
        names = [str(k) for k in range(probabilities.shape[1])]
        task = "binary" if len(names) == 2 else "multiclass"
        last = {run["epochs"] - 1: (run["labels"], probabilities)}
        expected[os.path.relpath(run["log_dir"], root)] = (names, task, {"validation": last})
    check_through_tensorboard(root, expected)


def test_logs_take_keras_names_and_run_info_describes_the_run(trained):
    run = trained["multiclass"]
    events = read_events(run["log_dir"])
    for epoch in range(run["epochs"]):
        metrics = run["metrics"][epoch]
        expected = {
            "loss": metrics["train_loss_epoch"],  # the epoch mean, not the last step's
            "val_loss": metrics["val_loss"],
            "val_acc": metrics["val_acc"],
        }
        assert stored_logs(events, epoch) == pytest.approx(expected, rel=1e-6)
    info = json.loads(events[schema.RUN_INFO_TAG][0][0].item())
    assert info["model"]["output_width"] == 3
    assert info["model"]["outputs_are_logits"] is True
    assert info["labels"] == {"format": "sparse", "num_classes": 3, "class_names": ["0", "1", "2"]}
    assert info["splits"] == {"validation": {"examples": runs.VAL_SIZE}}
    assert info["logs_from"] == {"loss": "train_loss", "val_loss": "val_loss", "val_acc": "val_acc"}
    assert info["counting"] == "lightning_forward"
    assert set(info["versions"]) >= {"torch", "lightning", "python"}
    distribution = events[schema.split_tag("validation", schema.KIND_LABEL_DISTRIBUTION)][0][0]
    np.testing.assert_array_equal(distribution, np.bincount(run["labels"], minlength=3))


def test_run_lands_beside_the_tensorboard_logger_scalars(trained):
    run = trained["multiclass"]
    events = read_events(run["log_dir"])
    assert "val_loss" in events  # the logger's own scalar, in the same directory
    assert run["log_dir"] == run["trainer"].logger.log_dir


def test_reader_reads_curves_and_counts(trained):
    root = os.path.dirname(os.path.dirname(trained["multiclass"]["log_dir"]))
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(root))
    history = reader.history("run/version_0")
    steps, values = history.curves["val_loss"]
    np.testing.assert_array_equal(steps, [0, 1, 2])
    metrics = trained["multiclass"]["metrics"]
    np.testing.assert_allclose(values, [metrics[e]["val_loss"] for e in range(3)], rtol=1e-6)
    assert sorted(history.confusions["validation"]) == [0, 1, 2]
    diagnostics.diagnose(history)  # every rule runs on it


def test_diagnose_finds_overfitting(tmp_path):
    """Few training examples of a learnable task, a third of their labels wrong, and a wide MLP:
    training loss falls, validation loss rises while validation accuracy stays above chance
    (at chance the diagnosis is not overfitting)."""
    rng = np.random.default_rng(3)
    teacher = rng.normal(size=(runs.FEATURES, 3))
    x = rng.normal(size=(24, runs.FEATURES)).astype("float32")
    y = np.argmax(x @ teacher, axis=1)
    wrong = rng.random(24) < 1 / 3
    y[wrong] = (y[wrong] + rng.integers(1, 3, wrong.sum())) % 3
    x_val = rng.normal(size=(96, runs.FEATURES)).astype("float32")
    y_val = np.argmax(x_val @ teacher, axis=1)
    torch.manual_seed(0)
    module = runs.Classifier(classes=3, lr=0.03, hidden=128)
    runs.fit(str(tmp_path), module, (x, y), (x_val, y_val), epochs=25)
    history = reader_lib.Reader(logdir_lib.provider_for_logdir(str(tmp_path))).history(
        "run/version_0"
    )
    assert len(history.curves["val_loss"][0]) == 25
    rules = [f["rule"] for f in diagnostics.diagnose(history)]
    assert "overfitting" in rules, rules


# -- where the scores come from, and mistakes -------------------------------------------------


class DictBatches(runs.Classifier):
    """Validation batches as dicts: the callback cannot find x and y by itself."""

    def training_step(self, batch, batch_idx):
        return super().training_step((batch["x"], batch["y"]), batch_idx)

    def validation_step(self, batch, batch_idx):
        return super().validation_step((batch["x"], batch["y"]), batch_idx)


class ReturnsScores(runs.Classifier):
    """``validation_step`` returns its scores: the callback needs no forward of its own."""

    forwards = 0

    def forward(self, x):
        ReturnsScores.forwards += 1
        return super().forward(x)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"scores": self(x), "labels": y}


def _dict_loader(x, y):
    pairs = list(zip(torch.from_numpy(x), torch.from_numpy(y)))
    return DataLoader(
        pairs,
        batch_size=runs.BATCH_SIZE,
        collate_fn=lambda rows: {
            "x": torch.stack([r[0] for r in rows]),
            "y": torch.stack([r[1] for r in rows]),
        },
    )


def _fit_quietly(root, module, train_loader, val_loader, callback, epochs=1):
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        default_root_dir=str(root),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, train_loader, val_loader)
    return trainer


def test_batches_that_are_not_x_y_raise_naming_the_fix(tmp_path):
    x, y = runs.data(40, 1, 3)
    loader = _dict_loader(x, y)
    with pytest.raises(ValueError, match=r"not \(x, y\).*'scores'.*scores_and_labels"):
        _fit_quietly(tmp_path, DictBatches(), loader, loader, MetricsDiagCallback())


def test_scores_and_labels_reads_any_batch(tmp_path):
    x, y = runs.data(40, 1, 3)
    loader = _dict_loader(x, y)
    module = DictBatches()
    callback = MetricsDiagCallback(
        scores_and_labels=lambda module, batch, outputs: (module(batch["x"]), batch["y"])
    )
    _fit_quietly(tmp_path, module, loader, loader, callback)
    events = read_events(str(tmp_path))
    confusion, *_ = _expected_counts(y, runs.outputs(module, x), _thresholds(events))
    np.testing.assert_array_equal(events[CONFUSION][0][0], confusion)


def test_scores_returned_by_validation_step_need_no_extra_forward(tmp_path):
    train, validation = runs.data(32, 1, 3), runs.data(40, 2, 3)
    module = ReturnsScores()
    callback = MetricsDiagCallback()
    ReturnsScores.forwards = 0
    _fit_quietly(tmp_path, module, runs.loader(*train), runs.loader(*validation), callback)
    train_batches, val_batches = 2, 3
    sanity_batches = 2
    assert ReturnsScores.forwards == train_batches + val_batches + sanity_batches
    events = read_events(str(tmp_path))
    confusion, *_ = _expected_counts(
        validation[1], runs.outputs(module, validation[0]), _thresholds(events)
    )
    np.testing.assert_array_equal(events[CONFUSION][0][0], confusion)
    assert json.loads(events[schema.RUN_INFO_TAG][0][0].item())["counting"] == (
        "lightning_validation_step_outputs"
    )


def test_a_bad_batch_after_the_first_is_an_event_not_an_error(tmp_path):
    train, validation = runs.data(32, 1, 3), runs.data(40, 2, 3)  # batches of 16, 16 and 8

    def scores_and_labels(module, batch, outputs):
        x, y = batch
        return module(x), (y[:-1] if len(y) == 8 else y)  # the last batch loses a label

    callback = MetricsDiagCallback(scores_and_labels=scores_and_labels)
    _fit_quietly(
        tmp_path, runs.Classifier(), runs.loader(*train), runs.loader(*validation), callback
    )
    events = read_events(str(tmp_path))
    assert events[CONFUSION][0][0].sum() == 32  # the two good batches
    recorded = json.loads(events[schema.EVENTS_TAG][0][0].item())
    assert [e["kind"] for e in recorded] == ["bad_batch"]
    assert "validation batch 2 was left out" in recorded[0]["message"]


def test_later_batches_are_checked_by_their_shapes_against_the_first(tmp_path):
    """Batches of 16, 16 and 8 validation examples: labels as a column [n, 1] fit class ids
    [n] and are counted; one-hot labels after class ids (epoch 0), or scores of another width
    (epoch 1), leave their batch out as an event (the epoch's batches are put together)."""
    train, validation = runs.data(32, 1, 3), runs.data(40, 2, 3)
    second_batch = torch.from_numpy(validation[0][16:32])

    def scores_and_labels(module, batch, outputs):
        x, y = batch
        scores = module(x)
        if len(y) == 8:  # the last batch
            return (scores[:, :2], y) if module.current_epoch else (scores, torch.eye(3)[y])
        return scores, (y[:, None] if torch.equal(x, second_batch) else y)

    module = runs.Classifier()
    callback = MetricsDiagCallback(scores_and_labels=scores_and_labels)
    loaders = runs.loader(*train), runs.loader(*validation)
    _fit_quietly(tmp_path, module, *loaders, callback, epochs=2)
    events = read_events(str(tmp_path))
    for epoch, message in [
        (0, r"one_hot labels of shape \(8, 3\) after sparse labels in the first batch"),
        (1, r"scores of shape \(8, 2\) have 2 output unit\(s\) per example, but 3 at the first"),
    ]:
        (recorded,) = json.loads(events[schema.EVENTS_TAG][epoch][0].item())
        assert recorded["kind"] == "bad_batch", recorded
        assert recorded["message"].startswith("validation batch 2 was left out: "), recorded
        assert re.search(message, recorded["message"]), recorded
    # The two batches of 16 counted, the column of class ids with the others.
    confusion, *_ = _expected_counts(
        validation[1][:32], runs.outputs(module, validation[0][:32]), _thresholds(events)
    )
    np.testing.assert_array_equal(events[CONFUSION][1][0], confusion)


def test_from_logits_is_decided_by_the_first_epoch_not_the_sanity_check(tmp_path):
    """The sanity check's batches (of a model not trained yet) may look like probabilities;
    the first epoch counted decides, on all its rows."""
    train, validation = runs.data(32, 1, 3), runs.data(40, 2, 3)

    def scores_and_labels(module, batch, outputs):
        x, y = batch
        logits = module(x)
        return (logits.softmax(1) if module.trainer.sanity_checking else logits), y

    module = runs.Classifier()
    callback = MetricsDiagCallback(scores_and_labels=scores_and_labels)
    _fit_quietly(tmp_path, module, runs.loader(*train), runs.loader(*validation), callback)
    events = read_events(str(tmp_path))
    info = json.loads(events[schema.RUN_INFO_TAG][0][0].item())
    assert info["model"]["outputs_are_logits"] is True
    confusion, tp, fp, _ = _expected_counts(
        validation[1], runs.outputs(module, validation[0]), _thresholds(events)
    )
    np.testing.assert_array_equal(events[CONFUSION][0][0], confusion)
    np.testing.assert_array_equal(events[COUNTS][0][0][:, 0], tp)
    assert schema.EVENTS_TAG not in events


class NoValidationLoss(runs.Classifier):
    """A ``validation_step`` that computes nothing, so the callback is the first to see the
    outputs and the labels."""

    def validation_step(self, batch, batch_idx):
        return None


class ThreeDimensional(NoValidationLoss):
    def forward(self, x):
        return super().forward(x)[:, None, :]


@pytest.mark.parametrize(
    "module, labels, callback_args, message",
    [
        (
            ThreeDimensional(),
            None,
            {},
            r"scores of shape \(16, 1, 3\).*\[n, C\].*forward\(x\).*scores_and_labels",
        ),
        (NoValidationLoss(), 7, {}, r"labels of shape \(16,\).*class ids in \[0, 3\)"),
        (NoValidationLoss(), None, {"class_names": ["a", "b"]}, r"class_names has 2 names.*3"),
    ],
    ids=["rank", "labels", "class_names"],
)
def test_mistakes_raise_at_the_first_validation_batch(
    tmp_path, module, labels, callback_args, message
):
    x, y = runs.data(32, 1, 3)
    if labels is not None:
        y = np.full_like(y, labels)
    loader = runs.loader(x, y)
    with pytest.raises(ValueError, match=message):
        _fit_quietly(tmp_path, module, loader, loader, MetricsDiagCallback(**callback_args))


def test_validate_writes_the_counts_and_validation_logs(tmp_path):
    validation = runs.data(40, 2, 3)
    torch.manual_seed(0)
    module = runs.Classifier()
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[MetricsDiagCallback(str(tmp_path))],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, runs.loader(*validation), verbose=False)
    events = read_events(str(tmp_path))
    confusion, *_ = _expected_counts(
        validation[1], runs.outputs(module, validation[0]), _thresholds(events)
    )
    np.testing.assert_array_equal(events[CONFUSION][0][0], confusion)
    assert set(stored_logs(events, 0)) == {"val_loss", "val_acc"}


# -- Lightning's names -> Keras's, and DistributedSampler's padding ---------------------------


def test_keras_logs_maps_lightning_names():
    metrics = {
        "train_loss": torch.tensor(0.5),  # the epoch mean (there is a train_loss_epoch)
        "train_loss_step": torch.tensor(0.4),
        "train_loss_epoch": torch.tensor(0.5),
        "loss": torch.tensor(0.4),  # the last step's, loses to the epoch mean
        "valid/acc": torch.tensor(0.8),
        "f1/val": 0.7,
        "accuracy": torch.tensor(0.75),  # logged in validation_step
        "lr-Adam": 0.01,
        "val_old": 1.0,  # logged by an earlier validation only
        "vector": torch.ones(3),
    }
    logs, origin = keras_logs(metrics, {"valid/acc", "f1/val", "accuracy"}, {"val_old"})
    assert logs == pytest.approx(
        {"loss": 0.5, "val_acc": 0.8, "val_f1": 0.7, "val_accuracy": 0.75, "lr-Adam": 0.01}
    )
    assert origin["loss"] == "train_loss"
    # Without this epoch's validation, names of validation metrics are left out.
    assert set(keras_logs(metrics, set())[0]) == {"loss", "lr-Adam", "accuracy"}


def _shares(size, world, shuffle, rows=None):
    dataset = list(range(size))
    samplers = [
        DistributedSampler(dataset, num_replicas=world, rank=r, shuffle=shuffle, seed=5)
        for r in range(world)
    ]
    indices = [list(sampler) for sampler in samplers]
    if rows is not None:
        indices = [part[:rows] for part in indices]
    shares = [
        sampler_share(DataLoader(dataset, sampler=s, batch_size=4), len(part))
        for s, part in zip(samplers, indices)
    ]
    return shares, indices


@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_padding_leaves_each_example_once(shuffle):
    for world in range(1, 5):
        for size in range(1, 23):
            shares, indices = _shares(size, world, shuffle)
            drop, problem = sampler_padding(shares)
            assert problem is None
            kept = [i for part, d in zip(indices, drop) for i in part[: len(part) - d]]
            assert sorted(kept) == list(range(size)), (world, size, drop)


def test_sampler_padding_keeps_rows_of_an_incomplete_pass():
    shares, indices = _shares(11, 2, shuffle=True, rows=3)  # limit_val_batches: no padding seen
    drop, problem = sampler_padding(shares)
    assert (drop, problem) == ([0, 0], None)


def test_sampler_padding_reports_what_it_cannot_check():
    dataset = list(range(11))
    plain = [{"rows": 11}, {"rows": 11}]  # not a DistributedSampler: each may see everything
    drop, problem = sampler_padding(plain)
    assert drop == [0, 0] and "not a DistributedSampler" in problem
    shares, _ = _shares(11, 2, shuffle=False)
    shares[1]["rows"] = 9  # more rows than its share on rank 0, fewer on rank 1
    shares[0]["rows"] = 7
    assert sampler_padding(shares)[1] is not None
    loader = DataLoader(dataset, sampler=SequentialSampler(dataset))
    assert sampler_share(loader, 11) == {"rows": 11}


# -- DDP: 2 processes give the counts of 1 -----------------------------------------------------


def _ddp_run(out_dir, *args):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lightning_runs.py")
    result = run_script_without(script, out_dir, 2, 0, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = json.loads(result.stdout.strip().splitlines()[-1])
    assert ddp["world_size"] == 2 and ddp["frameworks"] == []
    return ddp


@pytest.fixture(scope="module")
def ddp_rows(tmp_path_factory):
    """Two gloo processes gathering their rows (ids, previews and groups given)."""
    return _ddp_run(tmp_path_factory.mktemp("ddp_rows"), "indexed", "rows")


def test_ddp_counts_equal_one_process_without_tensorflow(tmp_path, ddp_rows):
    """Two gloo processes over 101 validation examples (the sampler pads one), with TensorFlow
    hidden from every process: the counts of one process over the same examples and weights
    (learning rate 0), and scikit-learn's on the final module's outputs. ``validation_step``
    returns ids, previews and groups: they travel with their rows, so the example records
    (kept examples, correctness, id table, previews) are those of one process, byte for byte.
    """
    ddp = ddp_rows
    torch.manual_seed(0)
    module = runs.Classifier(classes=3, lr=0.0)
    train, validation = runs.data(64, 1, 3), runs.data(runs.VAL_SIZE, 2, 3)
    single = runs.fit(str(tmp_path / "single"), module, train, validation, 2, indexed=True)
    ddp_events, single_events = read_events(ddp["log_dir"]), read_events(single.logger.log_dir)
    example_tags = [
        schema.split_tag("validation", kind)
        for kind in (
            schema.KIND_EXAMPLES,
            schema.KIND_EXAMPLE_IDS,
            schema.KIND_PREVIEWS,
            schema.KIND_SLICES,
        )
    ]
    for tag in (CONFUSION, COUNTS, *example_tags):
        assert sorted(ddp_events[tag]) == sorted(single_events[tag]), tag
        for step in ddp_events[tag]:
            np.testing.assert_array_equal(ddp_events[tag][step][0], single_events[tag][step][0])
    np.testing.assert_allclose(ddp_events[AP][1][0], single_events[AP][1][0], rtol=1e-12)
    assert ddp_events[CONFUSION][1][0].sum() == runs.VAL_SIZE  # the padded duplicate left out
    confusion, tp, fp, ap = _expected_counts(
        np.asarray(ddp["labels"]), np.asarray(ddp["outputs"], np.float32), _thresholds(ddp_events)
    )
    np.testing.assert_array_equal(ddp_events[CONFUSION][1][0], confusion)
    np.testing.assert_array_equal(ddp_events[COUNTS][1][0][:, 0], tp)
    np.testing.assert_array_equal(ddp_events[COUNTS][1][0][:, 1], fp)
    np.testing.assert_allclose(ddp_events[AP][1][0], ap, rtol=1e-12)
    info = json.loads(ddp_events[schema.RUN_INFO_TAG][0][0].item())
    assert info["distributed"] == {
        "world_size": 2,
        "rows": [51, 51],
        "padding_removed": 1,
        "order": "dataset",
    }
    assert schema.EVENTS_TAG not in ddp_events


def test_ddp_counts_mode_sums_what_the_rows_mode_gathers(tmp_path, ddp_rows):
    """Two gloo processes with ``reduce="auto"`` below a limit the first epoch passes: that
    epoch's kept rows and the next epoch's streamed chunks are counted by each process and
    summed; the counts, the calibration bins and the kept examples (named by dataset index)
    equal those of the processes that gathered their rows, the padded repeat left out.
    ``validation_step`` returns nothing here: the scores are the module's own call in it,
    which Lightning runs through DDP's ``forward``, and no extra forward pass runs."""
    counted = _ddp_run(tmp_path / "counts", "plain", "auto:100")
    assert counted["eval_forward_calls"] == counted["validation_steps"] > 0
    counted_events, rows_events = read_events(counted["log_dir"]), read_events(ddp_rows["log_dir"])
    calibration = schema.split_tag("validation", schema.KIND_CALIBRATION)
    examples = schema.split_tag("validation", schema.KIND_EXAMPLES)
    for step in (0, 1):
        for tag in (CONFUSION, COUNTS, examples):
            np.testing.assert_array_equal(counted_events[tag][step][0], rows_events[tag][step][0])
        np.testing.assert_allclose(
            counted_events[calibration][step][0], rows_events[calibration][step][0], rtol=1e-12
        )
    assert counted_events[CONFUSION][1][0].sum() == runs.VAL_SIZE
    content = json.loads(counted_events[COUNTS][1][1])
    assert content["average_precision"] == "threshold_grid"
    info = json.loads(counted_events[schema.RUN_INFO_TAG][0][0].item())
    assert info["distributed"] == {
        "world_size": 2,
        "reduce": "counts",
        "rows": [51, 51],
        "padding_removed": 1,
    }
    assert schema.EVENTS_TAG not in counted_events


class MultiLabelTagger(pl.LightningModule):
    """Three sigmoid logits over multi-hot labels, trained with BCE-with-logits."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(runs.FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.binary_cross_entropy_with_logits(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.binary_cross_entropy_with_logits(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _multi_hot(x):
    """Labels of three tags from the inputs: rows with none, one or several set."""
    return np.stack([x[:, 0] > 0, x[:, 1] > 0.5, x[:, 0] + x[:, 2] > 1], axis=1).astype("float32")


@pytest.mark.parametrize("multi_label", [None, True])
def test_multilabel_counts_equal_scikit_learn(tmp_path, multi_label):
    x, _ = runs.data(200, 3, 3)
    x_val, _ = runs.data(101, 4, 3)
    y, y_val = _multi_hot(x), _multi_hot(x_val)
    torch.manual_seed(0)
    module = MultiLabelTagger()
    callback = MetricsDiagCallback(class_names=["a", "b", "c"], multi_label=multi_label)
    _fit_quietly(tmp_path, module, runs.loader(x, y), runs.loader(x_val, y_val), callback, 2)
    with torch.no_grad():
        p = torch.sigmoid(module(torch.from_numpy(x_val))).numpy()
    events = read_events(str(tmp_path))
    confusion_tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    last = max(events[confusion_tag])
    matrices, content = events[confusion_tag][last]
    assert json.loads(content)["task"] == "multilabel"
    # Decisions at probability >= 0.5; the module's logits near 0 could round either way.
    assert np.abs(p - 0.5).min() > 1e-6
    np.testing.assert_array_equal(matrices, skm.multilabel_confusion_matrix(y_val, p >= 0.5))


def test_multi_label_needs_labels_of_the_scores_shape(tmp_path):
    x, y = runs.data(32, 1, 3)
    with pytest.raises(ValueError, match=r"multi_label=True.*expected multi-hot labels"):
        _fit_quietly(
            tmp_path,
            NoValidationLoss(),
            runs.loader(x, y),
            runs.loader(x, y),
            MetricsDiagCallback(multi_label=True),
        )

"""The Lightning callback's train/validation duplicate check (``train_sample=``): tiny CPU runs
whose validation set holds copies of training rows, the duplicates counted against NumPy's
row-by-row comparison of the very examples hashed, the reader and the diagnostics on what was
written, a two-process DDP run against one process, its configuration errors at fit start, and
its problems recorded, never raised.
"""

import json
import os

import lightning.pytorch as pl
import lightning_runs as runs
import numpy as np
import pytest
import torch
from conftest import read_events
from no_frameworks import run_script_without
from overlap_runs import COPIED, FirstEpochInputs, duplicates_of, overlap_data

from tb_metricsdiag import diagnostics
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.diagnostics import leakage
from tb_metricsdiag.format import schema
from tb_metricsdiag.lightning import MetricsDiagCallback

HERE = os.path.dirname(os.path.abspath(__file__))


class TripleBatches(runs.Classifier):
    """Batches of ``(x, y, weight)``: the callback cannot tell the inputs by itself."""

    def training_step(self, batch, batch_idx):
        return super().training_step(batch[:2], batch_idx)

    def validation_step(self, batch, batch_idx):
        return super().validation_step(batch[:2], batch_idx)


def _fit(root, train_sample, module=None, loaders=None, **callback_args):
    """One 2-epoch fit with ``MetricsDiagCallback(train_sample=..., **callback_args)``;
    returns the run's overlap record, its diagnostics ``(findings, not_run)`` and the inputs
    of the first epoch's training batches.
    """
    recorder = FirstEpochInputs()
    torch.manual_seed(0)
    if train_sample is not None:
        callback_args["train_sample"] = train_sample
    if loaders is None:
        train, validation = overlap_data()
        trainer = runs.fit(
            str(root),
            runs.Classifier(classes=3),
            train,
            validation,
            epochs=2,
            callback=MetricsDiagCallback(**callback_args),
            extra_callbacks=[recorder],
        )
    else:
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=2,
            logger=pl.loggers.TensorBoardLogger(str(root), name="run", version=0),
            callbacks=[MetricsDiagCallback(**callback_args), recorder],
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        trainer.fit(module, *loaders)
    return _result(trainer.logger.log_dir, root), recorder.batches


def _result(log_dir, root):
    events = read_events(log_dir)
    # Whatever the check met, both epochs were trained and recorded.
    assert sorted(events[schema.split_tag("validation", schema.KIND_CONFUSION)]) == [0, 1]
    record = events.get(schema.OVERLAP_TAG)
    record = None if record is None else json.loads(record[0][0].item())
    history = reader_lib.Reader(logdir_lib.provider_for_logdir(str(root))).history("run/version_0")
    return record, diagnostics.evaluate(history)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap")
    (x, y), (x_val, y_val) = overlap_data()
    triple_loaders = [
        torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(
                torch.from_numpy(a), torch.from_numpy(b), torch.ones(len(a))
            ),
            batch_size=runs.BATCH_SIZE,
        )
        for a, b in ((x, y), (x_val, y_val))
    ]
    return {
        "whole": _fit(root / "whole", 1000),
        "sample": _fit(root / "sample", 20),
        "inputs": _fit(root / "inputs", (x, y)),
        "float64": _fit(root / "float64", x.astype(np.float64)),
        "triples": _fit(
            root / "triples",
            100,
            module=TripleBatches(classes=3),
            loaders=triple_loaders,
            scores_and_labels=lambda module, batch, outputs: (module(batch[0]), batch[1]),
        ),
        "off": _fit(root / "off", None),
    }


def test_the_premise():
    (x, _), (x_val, _) = overlap_data()
    assert duplicates_of(x, x_val) == COPIED  # the float32 step off is no duplicate
    assert not np.array_equal(x_val[COPIED], x[COPIED])


def test_a_sample_larger_than_the_epoch_checks_every_training_example(fits):
    (record, (findings, not_run)), batches = fits["whole"]
    (x, _), (x_val, _) = overlap_data()
    trained_on = np.concatenate(batches)
    assert len(trained_on) == len(x) and duplicates_of(trained_on, x_val) == COPIED
    assert record["train_examples"] == len(x)
    assert record["validation_examples"] == len(x_val)
    assert record["duplicates"] == COPIED
    assert record["duplicate_share"] == pytest.approx(COPIED / len(x_val))
    assert record["train_sample"] == {"source": "training batches", "requested": 1000}
    # The diagnostics read it: 20 % duplicated is an error, and the rule ran.
    found = [f for f in findings if f["rule"] == "train_val_overlap"]
    assert len(found) == 1 and found[0]["severity"] == "error", findings
    assert COPIED / len(x_val) >= leakage.OVERLAP_ERROR_SHARE
    assert found[0]["evidence"]["duplicates"] == COPIED
    assert "train_val_overlap" not in {n["rule"] for n in not_run}


def test_a_sample_hashes_the_first_examples_trained_on(fits):
    (record, (findings, _)), batches = fits["sample"]
    (_, _), (x_val, _) = overlap_data()
    # The shuffled loader's first 20 examples: a random sample of the training set.
    hashed = np.concatenate(batches)[:20]
    assert record["train_examples"] == 20
    assert record["duplicates"] == duplicates_of(hashed, x_val)
    assert 0 < record["duplicates"] < COPIED  # a sample finds some of the copies
    assert any(f["rule"] == "train_val_overlap" for f in findings)


def test_given_training_inputs_are_hashed_whole(fits):
    (record, _), _ = fits["inputs"]
    assert record["train_examples"] == 64 and record["duplicates"] == COPIED
    assert record["train_sample"] == {"source": "train_sample inputs"}


def test_inputs_laid_out_unlike_the_validation_inputs_are_a_finding_not_an_error(fits):
    (record, (findings, _)), _ = fits["float64"]
    assert set(record) == {"error"}
    assert "float64 [4]" in record["error"] and "float32 [4]" in record["error"]
    problem = [f for f in findings if f["rule"] == "recording_problem"]
    assert len(problem) == 1 and problem[0]["detail"] == record["error"]
    assert problem[0]["severity"] == "info"
    assert not any(f["rule"] == "train_val_overlap" for f in findings)


def test_batches_that_are_not_x_y_are_recorded_and_training_goes_on(fits):
    (record, (findings, _)), _ = fits["triples"]
    assert "training batches are a list, not (x, y)" in record["error"]
    assert any(f["rule"] == "recording_problem" for f in findings)


def test_without_train_sample_the_notice_says_how_to_check(fits):
    (record, (_, not_run)), _ = fits["off"]
    assert record is None
    entry = next(n for n in not_run if n["rule"] == "train_val_overlap")
    assert "train_sample=" in entry["how"]


@pytest.mark.parametrize(
    "train_sample",
    [0, -5, True, 2.5, "all", np.zeros((0, 4), np.float32), np.float32(3.0), {"x": 1}],
    ids=["zero", "negative", "bool", "float", "str", "no rows", "scalar", "dict of int"],
)
def test_a_bad_train_sample_fails_at_fit_start_with_the_forms_it_takes(tmp_path, train_sample):
    (x, y), validation = overlap_data()
    callback = MetricsDiagCallback(train_sample=train_sample)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with pytest.raises(ValueError, match=r"train_sample must be a number of training examples"):
        trainer.fit(runs.Classifier(classes=3), runs.loader(x, y), runs.loader(*validation))
    assert trainer.global_step == 0


def test_validate_alone_writes_no_overlap(tmp_path):
    _, validation = overlap_data()
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=pl.loggers.TensorBoardLogger(str(tmp_path), name="run", version=0),
        callbacks=[MetricsDiagCallback(train_sample=100)],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(runs.Classifier(classes=3), runs.loader(*validation))
    assert schema.OVERLAP_TAG not in read_events(trainer.logger.log_dir)


def test_ddp_counts_each_validation_example_once(tmp_path):
    """Two gloo processes over the 101 validation rows (the sampler pads one, a copy of a
    training row): the duplicates of one process, every validation row counted once.
    """
    script = os.path.join(HERE, "lightning_overlap_ddp.py")
    result = run_script_without(script, tmp_path / "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    record = json.loads(read_events(printed["log_dir"])[schema.OVERLAP_TAG][0][0].item())
    assert record["validation_examples"] == runs.VAL_SIZE  # the padded duplicate left out
    # Rank 0 hashes the training examples it trains on: its share, half of the 64.
    trained_on = np.asarray(printed["trained_on"], dtype=np.float32)
    assert record["train_examples"] == len(trained_on) == 32
    _, (x_val, _) = overlap_data()
    assert record["duplicates"] == duplicates_of(trained_on, x_val) > 0

"""`writing/log_names.py`: logged metric names as Keras's log keys, with no framework (the
Lightning callback's tensors: tests/torch_process/test_lightning.py).
"""

import math

import numpy as np
import pytest

from tb_metricsdiag.writing.log_names import keras_logs, split_of_name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("val_loss", ("loss", "validation")),
        ("valid/acc", ("acc", "validation")),
        ("Validation-F1", ("F1", "validation")),
        ("loss.val", ("loss", "validation")),
        ("train_loss", ("loss", "train")),
        ("acc/training", ("acc", "train")),
        ("interval", ("interval", None)),  # a split word inside a name is no split word
        ("val", ("val", None)),  # nothing joined to it
        ("lr-Adam", ("lr-Adam", None)),
    ],
)
def test_split_of_name(name, expected):
    assert split_of_name(name) == expected


def test_the_tie_rules_with_numbers_and_numpy_values():
    metrics = {
        "train_loss": np.float32(0.5),  # the epoch mean: train_loss_epoch exists
        "train_loss_step": 0.4,
        "train_loss_epoch": np.array(0.5),
        "loss": 0.4,  # already the key, but a step value: loses to the epoch mean
        "acc": 0.7,  # already the key: beats train_acc
        "train_acc": 0.6,
        "val/auc": np.array([0.9]),  # one element: kept
        "auc/val": 0.8,  # the same key: the first in sorted order of the names not the key
        "val_loss": math.nan,  # NaN is a value: kept, as Keras keeps it
    }
    logs, origin = keras_logs(metrics, {"val/auc", "auc/val", "val_loss"})
    assert set(logs) == {"loss", "acc", "val_auc", "val_loss"}
    assert logs["loss"] == pytest.approx(0.5) and origin["loss"] == "train_loss"
    assert logs["acc"] == 0.7 and origin["acc"] == "acc"
    assert logs["val_auc"] == pytest.approx(0.8) and origin["val_auc"] == "auc/val"
    assert math.isnan(logs["val_loss"])
    assert all(type(value) is float for value in logs.values())


def test_values_that_are_no_single_number_are_left_out():
    metrics = {
        "flag": True,
        "flags": np.bool_(False),
        "name": "resnet",
        "vector": np.ones(3),
        "empty": np.zeros(0),
        "nothing": None,
        "table": {"a": 1},
        "epoch": 3,
    }
    assert keras_logs(metrics, set()) == ({"epoch": 3.0}, {"epoch": "epoch"})


def test_stale_validation_names_are_left_out():
    metrics = {"val_loss": 0.3, "val_acc": 0.9, "loss": 0.2}
    # An epoch without validation: the last validation's values are still there.
    assert set(keras_logs(metrics, set())[0]) == {"loss"}
    # A validation that logged only val_loss: val_acc is an earlier one's.
    assert set(keras_logs(metrics, {"val_loss"}, {"val_acc"})[0]) == {"loss", "val_loss"}
    # Any name this epoch's validation logged is a validation metric.
    assert keras_logs({"f1": 0.5}, {"f1"})[0] == {"val_f1": 0.5}


def test_other_validation_words_map_the_trainers_eval_names():
    metrics = {"eval_loss": 0.25, "eval_accuracy": 0.75, "train_loss": 0.5, "grad_norm": 1.5}
    logs, origin = keras_logs(metrics, {"eval_loss", "eval_accuracy"}, validation_words=("eval",))
    assert logs == {"val_loss": 0.25, "val_accuracy": 0.75, "loss": 0.5, "grad_norm": 1.5}
    assert origin["val_loss"] == "eval_loss"
    assert split_of_name("EVAL/f1", ("eval",)) == ("f1", "validation")
    # Lightning's words are not the Trainer's: val_ is no split word there.
    assert split_of_name("val_loss", ("eval",)) == ("val_loss", None)

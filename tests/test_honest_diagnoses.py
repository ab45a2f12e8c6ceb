"""Diagnoses a user can trust, on real Keras trainings read back from their event files: a
learning rate far too high is divergence (never overfitting, never "check the learning rate is
not tiny"), and rules that could not run say why."""

import numpy as np
import pytest
from sklearn import datasets
from sklearn.metrics import balanced_accuracy_score

from tb_metricsdiag import diagnostics, run_records
from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.diagnostics import training

EPOCHS = 8


def _train(log_dir, learning_rate, validation_to_fit=True):
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    keras.utils.set_random_seed(3)
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, y_train, x_val, y_val = x[:1200], y[:1200], x[1200:], y[1200:]
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, "relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callback = MetricsDiagCallback(log_dir, validation_data=(x_val, y_val))
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val) if validation_to_fit else None,
        epochs=EPOCHS,
        batch_size=64,
        verbose=0,
        callbacks=[callback],
    )
    predicted = np.argmax(model.predict(x_val, verbose=0), axis=1)
    return history.history, balanced_accuracy_score(y_val, predicted)


def _evaluate(log_dir):
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(log_dir))
    return diagnostics.evaluate(reader.history("."))


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    log_dir = str(tmp_path_factory.mktemp("lr_1e4"))
    logs, balanced = _train(log_dir, 1e4)
    return logs, balanced, _evaluate(log_dir)


def test_a_huge_learning_rate_is_divergence(diverged):
    logs, balanced, (findings, _) = diverged
    chance = np.log(10)
    # The premise, from Keras's own logs and scikit-learn: a loss orders of magnitude above
    # chance level, and predictions no better than chance.
    assert logs["loss"][-1] > training.DIVERGENCE_CHANCE_FACTOR * chance, logs["loss"]
    assert balanced < 0.1 + training.NOT_LEARNING_CHANCE_MARGIN, balanced
    by_rule = {f["rule"]: f for f in findings}
    divergence = by_rule["divergence"]
    assert "loss_far_above_chance" in divergence["evidence"]["signs"], divergence
    assert divergence["evidence"]["chance_loss"] == pytest.approx(chance)
    np.testing.assert_allclose(divergence["evidence"]["latest_loss"], logs["loss"][-1], rtol=1e-5)
    assert "learning rate is most likely too high" in divergence["suggestion"]
    assert "overfitting" not in by_rule
    for finding in findings:
        assert "not 0, not tiny" not in (finding["suggestion"] or ""), finding


@pytest.fixture(scope="module")
def callback_only(tmp_path_factory):
    log_dir = str(tmp_path_factory.mktemp("callback_only"))
    _train(log_dir, 0.05, validation_to_fit=False)
    return _evaluate(log_dir)


def test_rules_without_their_data_say_why(callback_only):
    findings, not_run = callback_only
    reasons = {entry["rule"]: entry["reason"] for entry in not_run}
    assert "validation data went to the callback only" in reasons["overfitting"], reasons
    assert "no train split" in reasons["train_val_overlap"], reasons
    ran = {f["rule"] for f in findings}
    assert not ran & set(reasons)
    assert set(reasons) <= {rule for rule, _ in diagnostics.REQUIREMENTS.values()}


def test_overfitting_is_never_called_at_chance():
    """The rule itself: a rising val_loss with falling loss, but validation at chance."""
    history = run_records.RunHistory(run="r", class_names=["a", "b"])
    steps = np.arange(8)
    history.curves = {
        "loss": (steps, np.linspace(1.0, 0.1, 8)),
        "val_loss": (steps, np.array([1.0, 0.8, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7])),
    }
    history.confusions = {"validation": {7: np.array([[50, 0], [50, 0]])}}
    assert training.check_overfitting(history) == []
    history.confusions = {"validation": {7: np.array([[45, 5], [5, 45]])}}
    assert [f["rule"] for f in training.check_overfitting(history)] == ["overfitting"]

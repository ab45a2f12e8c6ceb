"""`MetricsDiagWriter` with PyTorch inputs (tensors of every float dtype, a plain PyTorch
training loop) and tensors it cannot read, against scikit-learn."""

import jax
import numpy as np
import pytest
import torch
from conftest import read_events, stored_logs
from writer_checks import (
    assert_counts_match_sklearn,
    blobs,
    float32_softmax,
    four_class_logits,
    history_of,
)

from tb_metricsdiag import MetricsDiagWriter, diagnostics


@pytest.fixture(scope="module")
def data():
    return four_class_logits()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_tensors(tmp_path, data, dtype):
    ids, logits = data
    outputs = torch.tensor(logits, requires_grad=True) * 1.0  # part of a graph
    outputs = outputs.to(getattr(torch, dtype))
    with MetricsDiagWriter(tmp_path) as writer:
        writer.add_evaluation(torch.tensor(ids), outputs, step=0)
        probabilities = torch.softmax(outputs.float(), 1)
        writer.add_evaluation(torch.tensor(ids), probabilities, step=1, from_logits=False)
        writer.add_logs({"loss": torch.tensor(0.5, requires_grad=True)}, step=1)
    widened = outputs.detach().float().numpy()  # float16 / bfloat16 values, exactly
    assert_counts_match_sklearn(str(tmp_path), 0, ids, float32_softmax(widened))
    probabilities = torch.softmax(outputs.float(), 1).detach().numpy()
    assert_counts_match_sklearn(str(tmp_path), 1, ids, probabilities)
    assert stored_logs(read_events(str(tmp_path)), 1) == {"loss": 0.5}


def test_unreadable_tensors_name_the_fix(tmp_path):
    writer = MetricsDiagWriter(tmp_path)
    with pytest.raises(ValueError, match="meta"):
        writer.add_evaluation([0, 1], torch.ones((2, 3), device="meta"), 0)

    @jax.jit
    def inside_jit(scores):
        writer.add_evaluation(np.array([0, 1]), scores, 0)
        return scores

    with pytest.raises(ValueError, match="outside jax.jit"):
        inside_jit(np.ones((2, 3), np.float32) / 3)
    with pytest.raises(ValueError, match="could not be read as an array of numbers"):
        writer.add_evaluation([0, 1], [object(), object()], 0)
    writer.close()
    assert list(read_events(str(tmp_path))) == []  # nothing written for a failed call


def test_pytorch_loop(tmp_path):
    torch.manual_seed(0)
    x, y = blobs(0)
    x_train, y_train = torch.tensor(x[:360]), torch.tensor(y[:360])
    x_val, y_val = torch.tensor(x[360:]), torch.tensor(y[360:])
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    predictions = {}
    with MetricsDiagWriter(tmp_path, class_names=["a", "b", "c"]) as writer:
        for epoch in range(4):
            loss = torch.nn.functional.cross_entropy(model(x_train), y_train)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = torch.nn.functional.cross_entropy(logits, y_val)
            writer.add_evaluation(y_val, logits, step=epoch)
            accuracy = (logits.argmax(1) == y_val).float().mean()
            writer.add_logs({"loss": loss, "val_loss": val_loss, "accuracy": accuracy}, epoch)
            predictions[epoch] = logits.numpy()
    for epoch, logits in predictions.items():
        assert_counts_match_sklearn(str(tmp_path), epoch, y[360:], float32_softmax(logits))
    history = history_of(str(tmp_path))
    assert history.curves["val_loss"][0].tolist() == [0, 1, 2, 3]
    findings = diagnostics.diagnose(history)
    assert all(f["rule"] != "unreadable_run" for f in findings)
    assert history.info["labels"]["class_names"] == ["a", "b", "c"]

"""The Lightning callback's counts mode (``reduce="counts"``): in one process against the rows
mode on the same module and examples (the counts equal, the AP from the threshold grid and
marked so, the kept examples equal), the padding rule against `sampler_padding` and
``DistributedSampler`` itself, and the settings it refuses. The two-process runs are in
test_lightning.py (`test_ddp_counts_mode_sums_what_the_rows_mode_gathers`).
"""

import json

import lightning_runs as runs
import numpy as np
import pytest
import torch
from conftest import read_events
from tensorboard import errors as tb_errors
from torch.utils.data import DistributedSampler

from tb_metricsdiag.backend import logdir as logdir_lib
from tb_metricsdiag.backend import reader as reader_lib
from tb_metricsdiag.core import counting
from tb_metricsdiag.format import schema
from tb_metricsdiag.lightning import MetricsDiagCallback
from tb_metricsdiag.writing import lightning_reduce
from tb_metricsdiag.writing.lightning_distributed import (
    dataset_indices,
    sampler_padding,
    sampler_share,
)

CLASSES = 3


def _tag(kind):
    return schema.split_tag("validation", kind)


def _fit(root, callback, lr=0.0):
    torch.manual_seed(0)
    module = runs.Classifier(classes=CLASSES, lr=lr)
    train, validation = runs.data(64, 1, CLASSES), runs.data(runs.VAL_SIZE, 2, CLASSES)
    return runs.fit(str(root), module, train, validation, 2, callback=callback)


def _content(events, tag, step):
    return json.loads(events[tag][step][1])


@pytest.mark.parametrize("buffer_values", [None, 40])  # one chunk, or a chunk every ~3 batches
def test_counts_mode_counts_what_the_rows_mode_counts(tmp_path, monkeypatch, buffer_values):
    if buffer_values:
        monkeypatch.setattr(lightning_reduce, "BUFFER_VALUES", buffer_values)
    rows = read_events(_fit(tmp_path / "rows", MetricsDiagCallback()).logger.log_dir)
    counted_dir = _fit(tmp_path / "counts", MetricsDiagCallback(reduce="counts")).logger.log_dir
    counted = read_events(counted_dir)
    for step in (0, 1):
        for kind in (schema.KIND_CONFUSION, schema.KIND_THRESHOLD_COUNTS):
            np.testing.assert_array_equal(counted[_tag(kind)][step][0], rows[_tag(kind)][step][0])
        bins = _tag(schema.KIND_CALIBRATION)
        np.testing.assert_allclose(counted[bins][step][0], rows[bins][step][0], rtol=1e-12)
        # The kept examples, correctness and confidence codes: the same bytes.
        examples = _tag(schema.KIND_EXAMPLES)
        np.testing.assert_array_equal(counted[examples][step][0], rows[examples][step][0])
    ap = _tag(schema.KIND_AVERAGE_PRECISION)
    counts_tag = _tag(schema.KIND_THRESHOLD_COUNTS)
    assert _content(counted, counts_tag, 1)["average_precision"] == counting.AP_THRESHOLD_GRID
    assert _content(rows, counts_tag, 1)["average_precision"] == counting.AP_EXACT
    tp_fp = counted[_tag(schema.KIND_THRESHOLD_COUNTS)][1][0]
    positives = counted[_tag(schema.KIND_CONFUSION)][1][0].sum(axis=1)
    expected = counting.average_precision_from_counts(tp_fp[:, 0], tp_fp[:, 1], positives)
    np.testing.assert_allclose(counted[ap][1][0], expected, rtol=1e-12)
    assert _tag(schema.KIND_LABEL_ISSUES) not in counted  # they need every row's scores
    reader = reader_lib.Reader(logdir_lib.provider_for_logdir(counted_dir))
    (run,) = list(reader.list_runs())
    with pytest.raises(
        tb_errors.NotFoundError,
        match="reduce='counts' and Transformers' batch_eval_metrics do not keep",
    ):
        reader.label_issues(run, "validation")
    info = json.loads(counted[schema.RUN_INFO_TAG][0][0].item())
    assert info["distributed"]["reduce"] == "counts"
    assert info["splits"] == {"validation": {"examples": runs.VAL_SIZE}}


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "size, world, drop_last",
    [(101, 2, False), (100, 3, False), (7, 4, False), (3, 8, False), (101, 2, True)],
)
def test_the_padding_rule_matches_the_sampler(size, world, drop_last, shuffle):
    """Each process's padded rows, told locally, are the rows `sampler_padding` drops, and
    with them left out every dataset index is counted once."""
    dataset = list(range(size))
    shares, kept = [], []  # each process ran over its whole share
    for rank in range(world):
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, drop_last=drop_last
        )
        loader = torch.utils.data.DataLoader(dataset, sampler=sampler)
        share = sampler_share(loader, len(sampler))
        indices = np.fromiter(iter(sampler), np.int64)
        np.testing.assert_array_equal(dataset_indices(loader)[0], indices)  # computed or listed
        padded = lightning_reduce.is_padding(share, np.arange(len(sampler)))
        shares.append(share)
        kept.append(indices[~padded])
    drop, problem = sampler_padding(shares)
    assert problem is None
    assert [int(lightning_reduce.is_padding(s, np.arange(s["rows"])).sum()) for s in shares] == drop
    counted = np.sort(np.concatenate(kept))
    if drop_last:
        assert np.unique(counted).size == counted.size
    else:
        np.testing.assert_array_equal(counted, np.arange(size))


def test_settings_counts_mode_cannot_keep_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reduce must be 'auto', 'rows'"):
        _fit(tmp_path, MetricsDiagCallback(reduce="gather"))
    with pytest.raises(ValueError, match="reduce='counts' .* no previews"):
        _fit(tmp_path, MetricsDiagCallback(reduce="counts", previews=lambda *a: ["t"]))
    torch.manual_seed(0)
    module = runs.Classifier(classes=CLASSES)
    train, validation = runs.data(64, 1, CLASSES), runs.data(40, 2, CLASSES)
    with pytest.raises(ValueError, match="leave ids, previews and groups out"):
        runs.fit(
            str(tmp_path),
            module,
            train,
            validation,
            1,
            callback=MetricsDiagCallback(reduce="counts"),
            indexed=True,
        )

"""Large logdirs: a thousand runs (ten thousand with ``TB_METRICSDIAG_HEAVY=1``) answered
fast with bounded memory, and no module-level caches that could grow per run.
"""

import gc
import os
import time
import tracemalloc

import numpy as np
import pytest
from tensorboard.backend import application
from werkzeug import test as werkzeug_test
from zoo import (
    WORKTREE,
    client_get,
    file_version,
    framed,
    make_plugin,
    plugin_md,
    runs_of,
    tensor_event,
    write_run,
)

from tb_metricsdiag.format import schema

# -- 5. scale ---------------------------------------------------------------------------


def _many_runs(logdir, count):
    """``count`` tiny runs (two epochs of a 2x2 confusion matrix each), written fast."""
    md = plugin_md(schema.KIND_CONFUSION, "validation", ["n", "p"])
    tag = schema.split_tag("validation", schema.KIND_CONFUSION)
    head = file_version()
    records = b"".join(
        framed(tensor_event(step, tag, np.array([[step, 1], [2, 3]], np.int32), md))
        for step in range(2)
    )
    for i in range(count):
        write_run(logdir, "group%02d/run%05d" % (i % 50, i), [head, records])


def _check_many_runs(tmp_path, count, budget_s):
    logdir = str(tmp_path)
    _many_runs(logdir, count)
    plugin = make_plugin(logdir)
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]))
    started = time.monotonic()
    runs = runs_of(lambda route, params: client_get(client, route, params))
    elapsed = time.monotonic() - started
    assert len(runs) == count
    assert all(entry["steps"] == [0, 1] for entry in runs.values())
    assert elapsed < budget_s, "/runs over %d runs took %.1f s" % (count, elapsed)

    # Memory stays bounded: repeated requests over every run leave nothing behind.
    names = sorted(runs)
    state_before = {
        key: len(value) for key, value in vars(plugin).items() if hasattr(value, "__len__")
    }

    def sweep():
        client_get(client, "/runs", {})
        for name in names[:: max(1, count // 20)]:
            client_get(client, "/confusion", {"run": name})
            client_get(client, "/diagnostics", {"run": name})

    sweep()
    gc.collect()
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        for _ in range(2):
            sweep()
        gc.collect()
        growth = sum(
            stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(first, "filename")
        )
    finally:
        tracemalloc.stop()
    assert growth < 512 * 1024, "memory grew by %d bytes over repeated sweeps" % growth
    assert state_before == {
        key: len(value) for key, value in vars(plugin).items() if hasattr(value, "__len__")
    }


def test_a_thousand_runs(tmp_path):
    _check_many_runs(tmp_path, 1000, budget_s=15)


@pytest.mark.skipif(
    not os.environ.get("TB_METRICSDIAG_HEAVY"), reason="heavy: set TB_METRICSDIAG_HEAVY=1"
)
def test_ten_thousand_runs(tmp_path):
    _check_many_runs(tmp_path, 10000, budget_s=120)


def test_no_module_level_caches():
    """No memoisation decorators or module-level containers that could grow per run."""
    import ast

    for module in (
        "backend/plugin",
        "backend/reader",
        "backend/views",
        "backend/static_files",
        "backend/tensor_guard",
        "core/operating_points",
        "format/metadata",
        "format/confusion_counts",
        "format/histograms",
        "format/integer_counts",
        "format/stored_json",
        "format/threshold_counts",
        "format/threshold_grid",
        "format/schema",
    ):
        path = os.path.join(WORKTREE, "tb_metricsdiag", module + ".py")
        source = open(path, encoding="utf-8").read()
        assert "lru_cache" not in source and "functools.cache" not in source, module
        for node in ast.parse(source).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(
                node.value, (ast.Dict, ast.List, ast.Set, ast.Call)
            ):
                call = node.value
                if isinstance(call, ast.Call):
                    name = getattr(call.func, "id", getattr(call.func, "attr", ""))
                    assert name not in ("dict", "list", "set", "defaultdict", "OrderedDict"), (
                        module,
                        ast.dump(node)[:200],
                    )

"""Damaged and crafted event files: every bad run isolated (a 4xx/422 for it, 200 for the
others), in-process and through real TensorBoard servers (``--load_fast=true`` and ``false``).
"""

import gc
import json
import os
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request

import hostile_examples
import numpy as np
import pytest
from tensorboard.backend import application
from werkzeug import test as werkzeug_test
from zoo import (
    DEEP,
    GOOD,
    JSON_ROUTES,
    PREFIX,
    XSS,
    check_crafted_runs,
    check_damaged_logdir,
    check_hostile_text,
    check_restarts_and_ap_methods,
    client_get,
    crafted_sweep,
    deep_json,
    file_version,
    http_get,
    make_plugin,
    runs_of,
    step_records,
    tensorboard_serving,
    write_run,
)


def test_damaged_runs_are_isolated_and_reported(client):
    check_damaged_logdir(lambda route, params: client_get(client, route, params))


def test_crafted_runs_are_refused_fast(client):
    check_crafted_runs(lambda route, params: client_get(client, route, params))


def test_restarts_and_ap_methods(client):
    check_restarts_and_ap_methods(lambda route, params: client_get(client, route, params))


def test_crafted_runs_take_little_memory(client):
    """Python allocations peak under `CRAFTED_MEMORY_BUDGET` over every route of every crafted
    run (a reader that trusted them would inflate hundreds of MB, or allocate 40 GB)."""
    get = lambda route, params: client_get(client, route, params)  # noqa: E731
    crafted_sweep(get)  # listings and series cached: what follows is what each request costs
    gc.collect()
    tracemalloc.start()
    try:
        crafted_sweep(get)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < CRAFTED_MEMORY_BUDGET, peak


def test_hostile_example_records(client):
    """Crafted example records (a million ids, 10 MB strings, invalid UTF-8, a PNG declaring
    65,535 x 65,535 pixels, a label-issue list longer than the split): a 422 for what is
    damaged, 200 for the good run, Python allocations under `CRAFTED_MEMORY_BUDGET`."""
    get = lambda route, params: client_get(client, route, params)  # noqa: E731
    hostile_examples.check_hostile_example_runs(get)
    gc.collect()
    tracemalloc.start()
    try:
        hostile_examples.example_sweep(get)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < CRAFTED_MEMORY_BUDGET, peak


def test_a_bad_counts_point_is_decoded_once(zoo, monkeypatch):
    """The refusal of a point of threshold counts is remembered: later requests do not decode
    it again (until the series changes)."""
    from tb_metricsdiag.format import threshold_counts

    calls = []
    original = threshold_counts.stored_threshold_counts

    def counting(*args):
        calls.append(args[1].step)
        return original(*args)

    monkeypatch.setattr(threshold_counts, "stored_threshold_counts", counting)
    fresh = werkzeug_test.Client(application.TensorBoardWSGI([make_plugin(zoo)]))
    for route in ("/pr", "/pr", "/diagnostics", "/pr"):
        client_get(fresh, route, {"run": "bomb"})
    assert calls == [0], calls


def test_json_depth_and_size_are_bounded_without_recursion():
    from tb_metricsdiag.format import schema, stored_json

    for text in (deep_json(), '{"a":' * DEEP + "1" + "}" * DEEP):
        with pytest.raises(schema.FormatError, match="nested %d levels" % DEEP):
            stored_json.decode_json(text, "stored JSON")
    # Brackets inside strings (escaped quotes included) are not nesting.
    assert (
        stored_json.decode_json(json.dumps(["[" * 50 + '\\"{'] * 3), "x") == ["[" * 50 + '\\"{'] * 3
    )
    nested = [[[[1]]]]
    assert stored_json.decode_json(json.dumps(nested), "x") == nested
    with pytest.raises(schema.FormatError, match="more than the 10 accepted"):
        stored_json.decode_json("[" + "1," * 10 + "1]", "x", max_bytes=10)


# -- the command line: a damaged run fails CI ------------------------------------------------

# What the report must say of each crafted run: (tag, steps, words of why).
DAMAGED_IN_REPORT = {
    "bomb": ("metricsdiag/validation/threshold_counts", [0], "inflate to more than"),
    "negative_counts": ("metricsdiag/validation/threshold_counts", [0], "negative"),
    "huge_shape": ("metricsdiag/validation/confusion", None, "declares shape [100000, 100000]"),
    "negative_confusion": ("metricsdiag/validation/confusion", None, "negative"),
    "deep_names": ("metricsdiag/validation/confusion", None, "metadata is nested"),
    "deep_json": ("metricsdiag/logs", [1], "nested 100000 levels"),
    "future": ("metricsdiag/validation/confusion", None, "newer tb-metricsdiag"),
}


def test_report_fails_on_damaged_runs_and_names_what_it_skipped(zoo, capsys):
    """``report`` over the zoo exits 1 under the default ``--fail-on error``: each damaged run
    is an error naming the tag, the steps and why; its rules that needed the refused data say
    "damaged"; the good runs (of the current format and of format version 1) have no error."""
    from tb_metricsdiag import cli

    status = cli.main(["report", zoo, "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 1 and "Traceback" not in err
    runs = {entry["run"]: entry for entry in json.loads(out)["runs"]}
    for run, (tag, steps, why) in DAMAGED_IN_REPORT.items():
        [error] = [f for f in runs[run]["findings"] if f["severity"] == "error"]
        assert error["rule"] == "recording_problem", (run, error)
        [damage] = [d for d in error["evidence"]["damaged"] if d["tag"] == tag]
        assert damage["steps"] == steps and why in damage["why"], (run, damage)
        assert "tag %s, " % tag in error["detail"]
    reasons = {n["rule"]: n["reason"] for n in runs["huge_shape"]["not_run"]}
    assert reasons["accuracy_paradox"].startswith(
        "the validation counts are damaged (tag metricsdiag/validation/confusion, every step:"
        " a stored tensor declares shape [100000, 100000]"
    ), reasons
    reasons = {n["rule"]: n["reason"] for n in runs["bomb"]["not_run"]}
    assert reasons["threshold_far_from_default"].startswith(
        "the validation threshold counts are damaged (tag metricsdiag/validation/threshold_counts,"
        " step 0: encoded threshold counts inflate"
    ), reasons
    reasons = {n["rule"]: n["reason"] for n in runs["bad_logs"]["not_run"]}
    assert reasons["overfitting"].startswith("the val_loss curve is damaged (tag metricsdiag/logs")
    for run in list(GOOD) + ["restarted", "grid_ap"]:
        if run in ("bad_logs",):
            continue
        assert not [f for f in runs[run]["findings"] if f["severity"] == "error"], runs[run]
        assert all("damaged" not in n["reason"] for n in runs[run]["not_run"]), runs[run]
    # The good runs alone (one of format version 1, one of the current format) pass.
    assert cli.main(["report", zoo, "--run", "good", "--run", "good3"]) == 0
    capsys.readouterr()
    # With --examples, refused example records and previews are errors too.
    status = cli.main(["report", zoo, "--run", "ex_*", "--examples", "3", "--format", "json"])
    runs = {entry["run"]: entry for entry in json.loads(capsys.readouterr().out)["runs"]}
    assert status == 1
    assert not [f for f in runs[hostile_examples.GOOD_RUN]["findings"] if f["severity"] == "error"]
    for run, words in (
        ("ex_million_ids", "holds 1000000 ids for 200 rows"),
        ("ex_png_bomb", "65535 x 65535 pixels"),
        ("ex_invalid_utf8_ids", "not UTF-8"),
    ):
        details = [f["detail"] for f in runs[run]["findings"] if f["severity"] == "error"]
        assert any(words in detail for detail in details), (run, runs[run]["findings"])


# -- through a real tensorboard ---------------------------------------------------------


def _zoo_loaded(get):
    """Every run of the zoo loaded: the good ones whole, the damaged and crafted ones listed."""
    runs = runs_of(get)
    example_runs = [hostile_examples.GOOD_RUN] + sorted(hostile_examples.CRAFTED)
    return (
        all(len(runs.get(run, {}).get("steps", [])) == len(steps) for run, steps in GOOD.items())
        and all(
            len(runs.get(run, {}).get("steps", [])) == hostile_examples.STEPS
            for run in example_runs
        )
        and {"corrupt", "many_names", "bomb"} <= set(runs)
        and (len(runs["corrupt"]["steps"]) >= 2 or "error" in runs["corrupt"])
    )


@pytest.fixture(scope="module", params=["true", "false"], ids=["rust_server", "python_loader"])
def server(request, zoo, tmp_path_factory):
    log_path = str(tmp_path_factory.mktemp("tb_log") / "tensorboard.log")
    with tensorboard_serving(zoo, request.param, log_path, _zoo_loaded) as (base, process):
        yield base, zoo, "load_fast_" + request.param, process


CRAFTED_MEMORY_BUDGET = 100 << 20


def resident_bytes(pid):
    """Resident memory of process ``pid`` (Linux), in bytes."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def test_real_server_crafted_runs(server):
    """Both loaders: the crafted runs refused within a second each, and the server's resident
    memory grows by less than `CRAFTED_MEMORY_BUDGET` over a sweep of every route of them."""
    base, _, suffix, process = server
    get = lambda route, params: http_get(base, route, params)  # noqa: E731
    check_crafted_runs(get)
    check_restarts_and_ap_methods(get, sees_restarts=suffix == "load_fast_false")
    before = resident_bytes(process.pid)
    for _ in range(3):
        crafted_sweep(get)
    assert resident_bytes(process.pid) - before < CRAFTED_MEMORY_BUDGET


def test_real_server_hostile_example_records(server):
    """Both loaders: each crafted example record a 422 (its previews: said, the examples
    served), the good run 200, every answer within `hostile_examples.ROUTE_BUDGET_S`, and the
    server's resident memory grows by less than `CRAFTED_MEMORY_BUDGET` over three sweeps."""
    base, _, _, process = server
    get = lambda route, params: http_get(base, route, params)  # noqa: E731
    hostile_examples.check_hostile_example_runs(get)
    before = resident_bytes(process.pid)
    for _ in range(3):
        hostile_examples.example_sweep(get)
    assert resident_bytes(process.pid) - before < CRAFTED_MEMORY_BUDGET


def test_real_server_damaged_runs(server):
    base, _, _, _ = server
    check_damaged_logdir(lambda route, params: http_get(base, route, params))


def test_real_server_hostile_text(server):
    base, _, _, _ = server
    check_hostile_text(lambda route, params: http_get(base, route, params))


def test_real_server_hostile_parameters(server):
    base, _, _, _ = server
    for route in JSON_ROUTES:
        for params in [
            {},
            {"run": XSS},
            {"run": "good", "step": "9" * 5000},
            {"run": "good", "step": "NaN"},
            {"run": "good", "class": "-1"},
            {"run": "good", "min_recall": "nan"},
            {"run": "../../etc/passwd"},
            {"run": "good", "split": "\x00"},
        ]:
            status, _ = http_get(base, route, params)
            assert status in (200, 400, 404)
    for path in [
        "/../../setup.py",
        "/%2e%2e/%2e%2e/setup.py",
        "/..%2f..%2fsetup.py",
        "/%2fetc%2fpasswd",
    ]:
        try:
            with urllib.request.urlopen(base + PREFIX + path, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status in (400, 404), path


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_real_server_follows_a_run_being_written(server):
    """3. Live: the Rust server reads a run while it is written with tf.summary writers."""
    import tensorflow as tf

    from tb_metricsdiag import summary

    base, logdir, suffix, _ = server  # each server writes runs of its own
    get = lambda route, params=None: http_get(base, route, params)  # noqa: E731
    rng = np.random.default_rng(5)
    live, half = "live_" + suffix, "half_" + suffix
    live_dir = os.path.join(logdir, live)
    writer = tf.summary.create_file_writer(live_dir)

    def write_epochs(steps):
        with writer.as_default():
            for step in steps:
                labels = rng.integers(0, 3, size=50)
                scores = rng.dirichlet(np.ones(3), size=50).astype(np.float32)
                summary.write_evaluation(labels, scores, step=step, class_names=["a", "b", "c"])
                summary.write_logs({"loss": 1.0 / (step + 1), "val_loss": 1.2 / (step + 1)}, step)
        writer.flush()

    def live_steps():
        return runs_of(get).get(live, {}).get("steps")

    write_epochs(range(2))
    assert _wait_for(lambda: live_steps() == [0, 1]), live_steps()
    assert get("/confusion", {"run": live})[1]["step"] == 1

    write_epochs(range(2, 4))
    assert _wait_for(lambda: live_steps() == [0, 1, 2, 3]), live_steps()
    status, body = get("/confusion", {"run": live})
    assert status == 200 and body["step"] == 3
    # The server may have read the evaluation of step 3 but not yet the logs written after it.
    val_loss_steps = lambda: get("/curves", {"run": live})[1]["curves"]["val_loss"]["steps"]  # noqa: E731
    assert _wait_for(lambda: val_loss_steps() == [0, 1, 2, 3]), val_loss_steps()
    writer.close()

    # A run whose writer has flushed half a record: the complete epochs are served, nothing
    # errors; once the record is complete the next epoch appears.
    step0, step1 = step_records(0, 3, ["a", "b", "c"]), step_records(1, 3, ["a", "b", "c"])
    cut = len(step1[0]) // 2
    path = write_run(logdir, half, [file_version()] + step0 + [step1[0][:cut]])
    assert _wait_for(lambda: runs_of(get).get(half, {}).get("steps") == [0])
    time.sleep(2.5)  # at least two more reloads over the half record
    assert "error" not in runs_of(get)[half]
    for route in JSON_ROUTES:
        assert get(route, {"run": half})[0] == 200
    with open(path, "ab") as handle:
        handle.write(b"".join([step1[0][cut:]] + step1[1:]))
    assert _wait_for(lambda: runs_of(get)[half]["steps"] == [0, 1]), runs_of(get)[half]
    status, body = get("/pr", {"run": half, "class": 2})
    assert status == 200 and body["step"] == 1

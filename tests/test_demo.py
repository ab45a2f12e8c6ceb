"""The demo, run as a user runs it (`--quick --no-serve`), writes every scenario with its finding."""

import glob
import json
import os
import subprocess
import sys

import background_commands
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "demo", "run_demo.py")

# scenario run -> rule id it must produce (None: no warning or error at all)
EXPECTED = {
    "healthy_breast_cancer": None,
    "fraud_accuracy_paradox": "accuracy_paradox",
    "overfitting_digits": "overfitting",
    "leaky_wine": "train_val_overlap",
    "wrong_loss": "loss_mismatch",
    "not_learning": "not_learning",
}


STALE = "events.out.tfevents.0.stale-from-an-earlier-run"


def _start_demo(root):
    logdir = os.path.join(root, "demo-runs")
    # A leftover from an earlier demo run: the demo must replace the run, not add to it.
    os.makedirs(os.path.join(logdir, "healthy_breast_cancer"))
    open(os.path.join(logdir, "healthy_breast_cancer", STALE), "wb").close()
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    run = background_commands.Command(
        [sys.executable, DEMO, "--quick", "--no-serve", "--logdir", logdir],
        cwd=REPO,
        env=env,
        timeout=600,
    )
    run.logdir = logdir
    return run


background_commands.register("quick_demo", __file__, _start_demo)


@pytest.fixture(scope="module")
def demo_logdir(request):
    run = background_commands.started_or_start(request.config, "quick_demo")
    returncode, stdout, stderr = run.result()
    assert returncode == 0, stdout + stderr
    return run.logdir, stdout


def metricsdiag_tags(run_dir):
    from tensorboard.backend.event_processing import event_file_loader

    tags = set()
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(path).Load():
            tags.update(v.tag for v in event.summary.value if v.tag.startswith("metricsdiag/"))
    return tags


def test_demo_prints_progress_and_the_tensorboard_command(demo_logdir):
    logdir, stdout = demo_logdir
    for run in EXPECTED:
        assert run in stdout
    assert "-m tensorboard.main --logdir %s" % logdir in stdout
    assert "#metricsdiag" in stdout


@pytest.mark.parametrize("run", sorted(EXPECTED))
def test_every_scenario_writes_metricsdiag_and_keras_events(demo_logdir, run):
    logdir, _ = demo_logdir
    run_dir = os.path.join(logdir, run)
    tags = metricsdiag_tags(run_dir)
    assert tags, "no metricsdiag/ tags in %s" % run_dir
    assert any("confusion" in tag for tag in tags), sorted(tags)
    # keras.callbacks.TensorBoard wrote its own curves beside it.
    assert glob.glob(os.path.join(run_dir, "train", "events.out.tfevents.*"))
    assert glob.glob(os.path.join(run_dir, "validation", "events.out.tfevents.*"))


def test_rerunning_replaces_runs_instead_of_piling_up(demo_logdir):
    logdir, _ = demo_logdir
    assert not os.path.exists(os.path.join(logdir, "healthy_breast_cancer", STALE))
    for run in EXPECTED:
        files = glob.glob(os.path.join(logdir, run, "events.out.tfevents.*"))
        assert len(files) == 1, files


def test_usage_error_exits_2():
    result = subprocess.run(
        [sys.executable, DEMO, "--port", "not-a-number"],
        env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2


@pytest.mark.parametrize("run", sorted(EXPECTED))
def test_every_scenario_gets_its_expected_finding(demo_logdir, run):
    from tb_metricsdiag import diagnostics
    from tb_metricsdiag.backend import logdir as logdir_lib
    from tb_metricsdiag.backend import reader

    logdir, _ = demo_logdir
    history = reader.Reader(logdir_lib.provider_for_logdir(logdir)).history(run)
    findings = diagnostics.diagnose(history)
    rules = {f["rule"] for f in findings}
    expected = EXPECTED[run]
    if expected is None:
        serious = [f for f in findings if f["severity"] in ("warning", "error")]
        assert not serious, serious
    else:
        assert expected in rules, findings


def test_serve_stops_tensorboard_on_sigterm(tmp_path):
    """SIGTERM to the demo stops its TensorBoard child (a stand-in that sleeps) before it exits."""
    import signal
    import time

    pid_file = tmp_path / "child.pid"
    child = "import os, time; open(%r, 'w').write(str(os.getpid())); time.sleep(600)" % str(
        pid_file
    )
    script = (
        "import sys; sys.path.insert(0, %r); import run_demo; "
        "sys.exit(run_demo.serve([sys.executable, '-c', %r]))" % (os.path.dirname(DEMO), child)
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 0
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(child_pid, 0)


def test_report_gates_the_demo_folder_on_a_class_some_runs_lack(demo_logdir, capsys):
    """The README's gate on the demo folder: the fraud run is checked, the others (which have no
    class 'fraud') are not applicable; the exit status is the fraud run's."""
    from tb_metricsdiag import cli
    from tb_metricsdiag.backend import logdir as logdir_lib
    from tb_metricsdiag.backend import reader

    logdir, _ = demo_logdir
    status = cli.main(["report", logdir, "--require", "recall[fraud] >= 0.9", "--format", "json"])
    out, err = capsys.readouterr()
    runs = {run["run"]: run["requirements"] for run in json.loads(out)["runs"]}
    assert set(runs) == set(EXPECTED), err
    (fraud,) = runs.pop("fraud_accuracy_paradox")
    evaluation = reader.Reader(logdir_lib.provider_for_logdir(logdir)).evaluation(
        "fraud_accuracy_paradox", "validation", with_pr=False
    )
    confusion = evaluation.confusion
    expected = confusion[1, 1] / confusion[1].sum()
    assert fraud["applicable"] and fraud["value"] == pytest.approx(expected)
    assert status == (0 if fraud["passed"] else 1) == 1  # the accuracy paradox: recall near 0
    for name, (result,) in runs.items():
        assert result["applicable"] is False and result["passed"] is None, name
        assert result["reason"] == "run has no class 'fraud'"


# What TensorFlow (2.21, as TensorBoard imports it) prints on a machine without a GPU, verbatim.
PROBE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796567763.402660    9131 cudart_stub.cc:31] Could not find cuda drivers on"
    " your machine, GPU will not be used.",
    "E0000 00:00:1796567771.523162    9131 cuda_platform.cc:52] failed call to cuInit:"
    " INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]


def serve_in_process(command):
    """A process running the demo's ``serve(command)``, its stdout and stderr piped."""
    script = (
        "import json, sys; sys.path.insert(0, %r); import run_demo; "
        "sys.exit(run_demo.serve(json.loads(sys.argv[1])))" % os.path.dirname(DEMO)
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(command)],
        env=dict(os.environ, PYTHONPATH=REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_probe_lines_are_dropped_and_every_other_line_kept():
    lines = PROBE_LINES[:1] + ["TensorBoard could not bind to port 6006"] + PROBE_LINES[1:]
    lines += ["ERROR: a real error", "last line without newline"]
    child_code = "import sys; sys.stderr.write(%r); sys.exit(3)" % "\n".join(lines)
    process = serve_in_process([sys.executable, "-c", child_code])
    out, err = process.communicate(timeout=60)
    assert process.returncode == 3  # the child's status
    assert err.decode().splitlines() == [
        "TensorBoard could not bind to port 6006",
        "ERROR: a real error",
        "last line without newline",
    ]


# The most bytes `report --format html` may take for the demo's logdir (issue 28).
MAX_HTML_REPORT_BYTES = 1_000_000


def test_the_html_report_of_the_demo_stays_under_a_megabyte(demo_logdir, tmp_path):
    logdir, _ = demo_logdir
    path = tmp_path / "report.html"
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", logdir, "--format", "html"]
        + ["--output", str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout == ""
    text = path.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= MAX_HTML_REPORT_BYTES
    for run in EXPECTED:
        assert json.dumps(run) in text

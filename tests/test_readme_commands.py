"""The README's two commands, exactly as written.

The demo command runs in a fresh copy of the repository, as a new user runs it (with
``--quick --no-serve`` added, so that it ends), and must write every demo run. The test command
is the last line of `.ci/run`, word for word: CI runs it on a clean clone, so this file only
checks that `.ci/run` runs it and installs nothing into the virtual environment besides.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_RUNS = (
    "healthy_breast_cancer",
    "fraud_accuracy_paradox",
    "overfitting_digits",
    "leaky_wine",
    "wrong_loss",
    "not_learning",
)
DEMO_TIMEOUT_S = 900  # a fresh virtual environment with TensorFlow, and the quick demo


def readme_command(heading):
    """The command of the first code block under the README heading that contains ``heading``."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"^#+ .*%s.*$" % re.escape(heading), text, re.M | re.I)
    assert match, "the README has no heading with %r" % heading
    block = re.search(r"```[a-z]*\n(.*?)```", text[match.end() :], re.S)
    lines = [line.rstrip("\\").strip() for line in block.group(1).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("#"))


def test_ci_runs_the_readme_test_command_verbatim_and_installs_nothing_else():
    command = readme_command("Run the tests")
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as handle:
        script = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert script[-1] == command
    installs = [line for line in script[:-1] if "pip install" in line or ".venv/" in line]
    assert installs == [], "CI must install into the venv only what the README's command does"


def _fresh_copy(destination):
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):
            os.makedirs(os.path.join(destination, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(source, os.path.join(destination, name))


def _as_a_new_user():
    """The environment of a shell without this test run's virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if os.path.abspath(p) != venv_bin
    )
    return env


@pytest.mark.skipif(not shutil.which("git"), reason="copying the checkout needs git")
def test_readme_demo_command_as_written_in_a_fresh_copy(tmp_path):
    command = readme_command("Try it")
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert command.endswith(".venv/bin/python demo/run_demo.py")
    checkout = tmp_path / "checkout"
    _fresh_copy(str(checkout))
    logdir = tmp_path / "demo-runs"
    result = subprocess.run(
        ["bash", "-c", "%s --quick --no-serve --logdir %s" % (command, logdir)],
        cwd=checkout,
        env=_as_a_new_user(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    for run in DEMO_RUNS:
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(logdir / run))
    assert "Traceback" not in output
    assert "cuInit" not in output  # TensorFlow's CUDA probe, noise on a CPU machine
    assert "-m tensorboard.main --logdir %s" % logdir in result.stdout

"""The README's two commands, exactly as written.

The demo command runs in a fresh copy of the repository, as a new user runs it (with
``--quick --no-serve`` added, so that it ends), and must write every demo run; it starts right
after collection and runs beside the other tests (`background_commands`). The test command
is the last line of `.ci/run`, word for word: CI runs it on a clean clone, so this file only
checks that `.ci/run` runs it and installs nothing into the virtual environment besides.
"""

import os
import shutil

import background_commands
import pytest
import readme_demo
from readme_demo import ROOT, readme_command

DEMO_RUNS = (
    "healthy_breast_cancer",
    "fraud_accuracy_paradox",
    "overfitting_digits",
    "leaky_wine",
    "wrong_loss",
    "not_learning",
)


if shutil.which("git"):  # the fresh copy lists the checkout's files with git
    background_commands.register(
        "readme_demo",
        __file__,
        readme_demo.start,
        test="test_readme_demo_command_as_written_in_a_fresh_copy",
    )


def test_ci_runs_the_readme_test_command_verbatim_and_installs_nothing_else():
    command = readme_command("Run the tests")
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as handle:
        script = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert script[-1] == command
    installs = [line for line in script[:-1] if "pip install" in line or ".venv/" in line]
    assert installs == [], "CI must install into the venv only what the README's command does"


@pytest.mark.skipif(not shutil.which("git"), reason="copying the checkout needs git")
def test_readme_demo_command_as_written_in_a_fresh_copy(request):
    demo = background_commands.started_or_start(request.config, "readme_demo")
    assert demo.command.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert demo.command.endswith(".venv/bin/python demo/run_demo.py")
    returncode, stdout, stderr = demo.result()
    output = stdout + stderr
    assert returncode == 0, output[-5000:]
    for run in DEMO_RUNS:
        listed = os.listdir(os.path.join(demo.logdir, run))
        assert any(name.startswith("events.out.tfevents") for name in listed)
    assert "Traceback" not in output
    assert "cuInit" not in output  # TensorFlow's CUDA probe, noise on a CPU machine
    assert "-m tensorboard.main --logdir %s" % demo.logdir in stdout

"""The README's demo command, run as a new user runs it, in a fresh copy of the checkout.

It installs a fresh virtual environment (minutes, mostly pip unpacking wheels), so the suite
starts it as soon as collection shows that its test will run (`start_if_collected`, from
``conftest.py``), and the test waits for it (`DemoRun.result`): it runs beside the other tests.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_NAME = "test_readme_demo_command_as_written_in_a_fresh_copy"
TIMEOUT_S = 900  # a fresh virtual environment with TensorFlow, and the quick demo

_started = pytest.StashKey["DemoRun"]()


def readme_command(heading):
    """The command of the first code block under the README heading that contains ``heading``."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"^#+ .*%s.*$" % re.escape(heading), text, re.M | re.I)
    assert match, "the README has no heading with %r" % heading
    block = re.search(r"```[a-z]*\n(.*?)```", text[match.end() :], re.S)
    lines = [line.rstrip("\\").strip() for line in block.group(1).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("#"))


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


class DemoRun:
    """The demo command (with ``--quick --no-serve``, so that it ends) running in ``root``."""

    def __init__(self, root):
        self.command = readme_command("Try it")
        self.logdir = os.path.join(root, "demo-runs")
        checkout = os.path.join(root, "checkout")
        _fresh_copy(checkout)
        self.output = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self.process = subprocess.Popen(
            ["bash", "-c", "%s --quick --no-serve --logdir %s" % (self.command, self.logdir)],
            cwd=checkout,
            env=_as_a_new_user(),
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def result(self):
        """``(exit status, output)`` once the command has ended (killed past `TIMEOUT_S`)."""
        try:
            self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.seek(0)
        return self.process.returncode, self.output.read()


def start_if_collected(session):
    """Starts the demo now when its test is among the tests about to run."""
    if any(item.name == TEST_NAME for item in session.items) and shutil.which("git"):
        factory = session.config._tmp_path_factory
        session.config.stash[_started] = DemoRun(str(factory.mktemp("readme-demo")))


def started_or_start(config):
    """The run `start_if_collected` started, or a new one (its test run on its own)."""
    if _started not in config.stash:
        config.stash[_started] = DemoRun(str(config._tmp_path_factory.mktemp("readme-demo")))
    return config.stash[_started]


def stop(config):
    """Ends the run if it is still going (the session stopped before its test ran)."""
    demo = config.stash.get(_started, None)
    if demo is not None and demo.process.poll() is None:
        demo.process.kill()
        demo.process.wait()

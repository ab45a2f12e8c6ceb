"""The README's demo command, run as a new user runs it, in a fresh copy of the checkout.

It installs a fresh virtual environment (minutes, mostly pip unpacking wheels), so its test
registers it as a `background_commands` command: it runs beside the other tests.
"""

import os
import re
import shutil
import subprocess
import sys

import background_commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 900  # a fresh virtual environment with TensorFlow, and the quick demo


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


def start(root):
    """The demo command (with ``--quick --no-serve``, so that it ends) in a fresh copy of the
    checkout under ``root``, its runs written to ``root``/demo-runs (`background_commands`)."""
    command = readme_command("Try it")
    logdir = os.path.join(root, "demo-runs")
    checkout = os.path.join(root, "checkout")
    _fresh_copy(checkout)
    run = background_commands.Command(
        ["bash", "-c", "%s --quick --no-serve --logdir %s" % (command, logdir)],
        cwd=checkout,
        env=_as_a_new_user(),
        timeout=TIMEOUT_S,
    )
    run.command, run.logdir = command, logdir
    return run

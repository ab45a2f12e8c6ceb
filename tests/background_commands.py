"""Commands that take minutes, started right after collection to run beside the other tests.

A test module registers a command by name (`register`) with the function that starts it; once
collection shows that a test of that module (or the one test named) will run,
`start_if_collected` (called from ``conftest.py``) starts it, and the test's fixture waits for
its end (`started_or_start`: it starts the command itself when run alone). The two commands of
the suite: the README's demo command, which installs a fresh virtual environment (minutes of
pip), and the quick demo, which trains its scenarios with TensorFlow.
"""

import os
import subprocess
import tempfile

import pytest

_registered = {}  # name -> (module file, test name or None, start(root) -> Command)
_started = pytest.StashKey[dict]()


class Command:
    """``argv`` running in ``cwd`` with ``env``, its stdout and stderr kept in temporary files."""

    def __init__(self, argv, cwd, env, timeout):
        self.timeout = timeout
        self.files = [tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")]
        self.files.append(tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self.files[0], stderr=self.files[1], text=True
        )

    def result(self):
        """``(exit status, stdout, stderr)`` once the command has ended (killed past its
        timeout)."""
        try:
            self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for file in self.files:
            file.seek(0)
        return (self.process.returncode, *(file.read() for file in self.files))

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def register(name, module_file, start, test=None):
    """``start(root)`` (``root``: a new temporary folder) gives the `Command` named ``name``,
    needed by the tests of ``module_file`` (only by ``test`` where given)."""
    _registered[name] = (os.path.abspath(module_file), test, start)


def _needed(item, module_file, test):
    return os.path.abspath(str(item.path)) == module_file and test in (None, item.originalname)


def start_if_collected(session):
    """Starts every registered command that a test about to run needs."""
    for name, (module_file, test, _) in _registered.items():
        if any(_needed(item, module_file, test) for item in session.items):
            started_or_start(session.config, name)


def started_or_start(config, name):
    """The command ``name``, started now unless it already was."""
    started = config.stash.setdefault(_started, {})
    if name not in started:
        root = config._tmp_path_factory.mktemp(name)
        started[name] = _registered[name][2](str(root))
    return started[name]


def stop_all(config):
    """Ends the commands still running (the session stopped before their tests ran)."""
    for command in config.stash.get(_started, {}).values():
        command.stop()

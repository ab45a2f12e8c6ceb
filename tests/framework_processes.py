"""One framework family per test process: TensorFlow here, PyTorch in ``tests/torch_process/``.

TensorFlow and the CUDA build of PyTorch, which brings triton, crash when both are imported into
one process (``import tensorflow; import triton`` is a segmentation fault). A plain
``pip install ".[test]"`` takes that build, so the suite keeps them apart:

- The main pytest process hides the PyTorch family (`PYTORCH_FAMILY`): importing one of them
  fails as if it were not installed. It runs every test outside ``tests/torch_process/``.
- The tests that need PyTorch, Lightning, TorchMetrics or Transformers live in
  ``tests/torch_process/``. This plugin runs them in a second pytest process that hides
  TensorFlow (`TENSORFLOW_FAMILY`), while the main process runs its own tests (the two use both
  cores of a small machine), and relays every report of that process here between the main
  process's tests, so one ``python -m pytest`` prints one progress line, one summary and one exit
  status, as if a single process had run everything.
- Tests that train with several frameworks already start a subprocess per framework.

``tests/test_framework_processes.py`` checks the rule on every test module's imports, and that
failures, skips and a crash of the second process reach the main summary.
"""

import json
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading

import pytest

TORCH_DIRECTORY = pathlib.Path(__file__).resolve().parent / "torch_process"

PYTORCH_FAMILY = (
    "torch",
    "triton",
    "torchmetrics",
    "torchvision",
    "lightning",
    "lightning_fabric",
    "pytorch_lightning",
    "transformers",
    "accelerate",
)
TENSORFLOW_FAMILY = ("tensorflow", "tf_keras")

# Set in the second process: the framework family it runs, and the pipe its reports go to.
PROCESS_VARIABLE = "TB_METRICSDIAG_TEST_PROCESS"
REPORTS_FD_VARIABLE = "TB_METRICSDIAG_TEST_REPORTS_FD"
TORCH_PROCESS = "torch"

# pytest exit codes of a second process that ran normally: all passed, some failed, none ran;
# and interrupted, which is normal after a collection error it reported.
_NORMAL_EXITS = (0, 1, 5)
_INTERRUPTED = 2
_OUTPUT_TAIL = 6000  # characters of a crashed process's output shown in the failure

_child_arguments = pytest.StashKey[list]()


def in_torch_process():
    return os.environ.get(PROCESS_VARIABLE) == TORCH_PROCESS


class _Hiding:
    """A meta-path finder that finds nothing of ``packages`` (and their submodules), else what
    ``finder`` finds: importing one raises ModuleNotFoundError and `importlib.util.find_spec`
    returns None, as when not installed (libraries probe for optional frameworks that way:
    PyTorch's compiler probes TensorFlow)."""

    def __init__(self, finder, packages):
        self._finder = finder
        self._packages = packages

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self._packages:
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return None if find_spec is None else find_spec(name, path, target)

    def __getattr__(self, attribute):  # invalidate_caches, find_distributions, ...
        return getattr(self._finder, attribute)


WHY_HIDDEN = (
    "TensorFlow and PyTorch never share a test process (tests/framework_processes.py); "
    "tests that need PyTorch, Lightning, TorchMetrics or Transformers belong in "
    "tests/torch_process/"
)


def hidden_packages():
    """The packages this process may not import."""
    return TENSORFLOW_FAMILY if in_torch_process() else PYTORCH_FAMILY


def pytest_configure(config):
    loaded = [name for name in hidden_packages() if name in sys.modules]
    if loaded:
        raise pytest.UsageError("%s imported before the test run: %s" % (loaded, WHY_HIDDEN))
    sys.meta_path[:] = [_Hiding(finder, hidden_packages()) for finder in sys.meta_path]
    if in_torch_process():
        config.pluginmanager.register(_Relay(config), "tb_metricsdiag_relay")
        return
    # The main process collects everything but tests/torch_process/; arguments that name
    # tests in it (or a folder above it) are handed to the second process.
    own, child = [], []
    for argument in config.args:
        path = pathlib.Path(argument.split("::")[0]).resolve()
        if path == TORCH_DIRECTORY or TORCH_DIRECTORY in path.parents:
            child.append(argument)
        else:
            own.append(argument)
            if TORCH_DIRECTORY.is_relative_to(path) and path.is_dir():
                child.append(str(TORCH_DIRECTORY))
    config.args[:] = own
    config.stash[_child_arguments] = child


def pytest_ignore_collect(collection_path, config):
    if not in_torch_process() and collection_path.resolve() == TORCH_DIRECTORY:
        return True
    return None


_second_process = pytest.StashKey["_SecondProcess"]()


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    config = session.config
    arguments = [] if in_torch_process() else config.stash.get(_child_arguments, [])
    collection_failed = session.testsfailed and not config.option.continue_on_collection_errors
    if not arguments or config.option.collectonly or collection_failed:
        return (yield)
    # Relayed only from the first test on: pytest's loop reads failures counted before it as
    # collection errors and stops.
    second = _SecondProcess(session, arguments)
    config.stash[_second_process] = second
    try:
        result = yield
    except BaseException:  # interrupted, or stopped by --maxfail: the second process too
        second.finish(stop=True)
        raise
    finally:
        del config.stash[_second_process]
    second.finish()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    result = yield
    second = item.config.stash.get(_second_process, None)
    if second is not None:
        second.relay_waiting()
    return result


def _forwarded_options(config):
    options = []
    if config.option.keyword:
        options += ["-k", config.option.keyword]
    if config.option.markexpr:
        options += ["-m", config.option.markexpr]
    if config.option.maxfail:
        options += ["--maxfail", str(config.option.maxfail)]
    return options


class _SecondProcess:
    """The pytest process without TensorFlow, running ``arguments`` beside this one.

    A thread only reads its report messages into a queue; they are relayed to pytest's hooks on
    the main thread (`relay_waiting`, after each of this process's tests, and `finish`), since
    the hooks and the terminal are not thread-safe.
    """

    def __init__(self, session, arguments):
        config = session.config
        self.session = session
        self.arguments = arguments
        self.collection_errors = 0
        self.messages = queue.SimpleQueue()
        self.done = False  # every message relayed
        basetemp = config._tmp_path_factory.getbasetemp() / "torch_process"
        read_end, write_end = os.pipe()
        env = dict(
            os.environ, **{PROCESS_VARIABLE: TORCH_PROCESS, REPORTS_FD_VARIABLE: str(write_end)}
        )
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        command += ["--basetemp", str(basetemp), *_forwarded_options(config), *arguments]
        self.output = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self.process = subprocess.Popen(
            command,
            cwd=str(config.invocation_params.dir),
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        self.reader = threading.Thread(target=self._read, args=(read_end,), daemon=True)
        self.reader.start()

    def _read(self, read_end):
        with os.fdopen(read_end, encoding="utf-8") as pipe:
            for line in pipe:
                self.messages.put(json.loads(line))
        self.messages.put(None)

    def relay_waiting(self):
        """Relays the messages that have arrived so far."""
        while not self.done:
            try:
                message = self.messages.get_nowait()
            except queue.Empty:
                return
            self._relay(message)

    def _relay(self, message):
        if message is None:  # the process closed its end of the pipe
            self.done = True
            return
        self.collection_errors += message["event"] == "collectreport"
        _relay(self.session, message)

    def finish(self, stop=False):
        """Relays every message left, waits for the process and reports a crash of it; with
        ``stop``, ends the process first and reports nothing more of it."""
        if stop:
            self.process.terminate()
        while not self.done:
            message = self.messages.get()
            if not stop or message is None:
                self._relay(message)
        returncode = self.process.wait()
        if (
            not stop
            and returncode not in _NORMAL_EXITS
            and not (self.collection_errors and returncode == _INTERRUPTED)
        ):
            self.output.seek(0)
            _report_crash(
                self.session, self.arguments, returncode, self.output.read()[-_OUTPUT_TAIL:]
            )
        self.output.close()


def _relay(session, message):
    hook = session.config.hook
    event = message["event"]
    if event == "collected":
        session.testscollected += message["count"]
    elif event == "logstart":
        hook.pytest_runtest_logstart(nodeid=message["nodeid"], location=message["location"])
    elif event == "logfinish":
        hook.pytest_runtest_logfinish(nodeid=message["nodeid"], location=message["location"])
    else:
        report = hook.pytest_report_from_serializable(config=session.config, data=message["report"])
        # JSON gives lists where pytest keeps tuples (a skip's location and reason).
        if isinstance(report.longrepr, list):
            report.longrepr = tuple(report.longrepr)
        if event == "collectreport":
            hook.pytest_collectreport(report=report)
        else:
            report.location = tuple(report.location)
            hook.pytest_runtest_logreport(report=report)


def _report_crash(session, arguments, returncode, output):
    report = pytest.CollectReport(
        nodeid=os.path.relpath(TORCH_DIRECTORY, session.config.rootpath),
        outcome="failed",
        longrepr="the PyTorch test process (pytest %s) exited with %d:\n%s"
        % (" ".join(arguments), returncode, output),
        result=[],
    )
    session.config.hook.pytest_collectreport(report=report)


class _Relay:
    """In the second process: every report, as JSON lines, to the main process's pipe."""

    def __init__(self, config):
        self.config = config
        fd = os.environ.get(REPORTS_FD_VARIABLE)
        self.stream = os.fdopen(int(fd), "w", encoding="utf-8", buffering=1) if fd else None

    def _send(self, message):
        if self.stream is not None:
            self.stream.write(json.dumps(message) + "\n")

    def _serialized(self, report):
        return self.config.hook.pytest_report_to_serializable(config=self.config, report=report)

    def pytest_collection_finish(self, session):
        self._send({"event": "collected", "count": len(session.items)})

    def pytest_collectreport(self, report):
        if not report.passed:
            self._send({"event": "collectreport", "report": self._serialized(report)})

    def pytest_runtest_logstart(self, nodeid, location):
        self._send({"event": "logstart", "nodeid": nodeid, "location": location})

    def pytest_runtest_logreport(self, report):
        self._send({"event": "logreport", "report": self._serialized(report)})

    def pytest_runtest_logfinish(self, nodeid, location):
        self._send({"event": "logfinish", "nodeid": nodeid, "location": location})

    def pytest_unconfigure(self):
        if self.stream is not None:
            self.stream.close()

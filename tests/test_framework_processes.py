"""TensorFlow and PyTorch never share a test process (tests/framework_processes.py).

Every test module's imports obey the rule; the guard hides the other family in this process; and
the second process's passes, failures, skips and crashes reach one pytest summary and exit
status, checked on a small suite of its own.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import framework_processes
import pytest

TESTS = pathlib.Path(__file__).resolve().parent


def _imported_packages(path):
    """Top-level names a module imports: import statements (lazy ones included) and the names
    given to `pytest.importorskip` and `importlib.import_module`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = getattr(function, "attr", getattr(function, "id", None))
            first = node.args[0]
            if called in ("importorskip", "import_module") and isinstance(first, ast.Constant):
                names.add(first.value)
    return {name.split(".")[0] for name in names}


def _modules(where):
    return sorted(p for p in where.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize(
    "path", _modules(TESTS), ids=lambda path: str(path.relative_to(TESTS)).replace(os.sep, "/")
)
def test_each_test_module_imports_one_framework_family(path):
    in_torch_directory = framework_processes.TORCH_DIRECTORY in path.parents
    forbidden = (
        framework_processes.TENSORFLOW_FAMILY
        if in_torch_directory
        else framework_processes.PYTORCH_FAMILY
    )
    wrong = _imported_packages(path) & set(forbidden)
    assert not wrong, "%s imports %s: %s" % (
        path.name,
        sorted(wrong),
        framework_processes.WHY_HIDDEN,
    )


def test_this_process_cannot_import_the_pytorch_family():
    for name in ("torch", "triton", "lightning", "torchmetrics"):
        assert importlib.metadata.version(name)  # installed, by the test extra
        assert importlib.util.find_spec(name) is None
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
        assert name not in sys.modules


# -- the relay, on a suite of its own --------------------------------------------------------

_SUITE = {
    "pytest.ini": "[pytest]\naddopts = -ra\n",
    "conftest.py": 'pytest_plugins = ("framework_processes",)\n',
    "test_main.py": """
        import importlib.metadata
        import importlib.util
        import os

        import pytest


        def test_main_process_hides_torch():
            assert "TB_METRICSDIAG_TEST_PROCESS" not in os.environ
            assert importlib.metadata.version("torch")
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module("torch")
        """,
    "torch_process/test_child.py": """
        import importlib.metadata
        import importlib.util
        import os

        import pytest


        def test_child_process_hides_tensorflow():
            assert os.environ["TB_METRICSDIAG_TEST_PROCESS"] == "torch"
            assert importlib.metadata.version("tensorflow")
            assert importlib.util.find_spec("tensorflow") is None


        def test_fails_in_the_child():
            assert 1 + 1 == 3


        def test_skips_in_the_child():
            pytest.skip("skipped on purpose")


        def test_crashes_when_asked():
            if os.environ.get("CRASH_THE_CHILD"):
                os.abort()
        """,
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_process_suite")
    for name, text in _SUITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    shutil.copy(framework_processes.__file__, root / "framework_processes.py")
    return root


def _pytest(root, *args, crash=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TB_METRICSDIAG_TEST_")}
    if crash:
        env["CRASH_THE_CHILD"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    return result.returncode, counts, result.stdout


def test_both_processes_report_in_one_summary_and_exit_status(suite):
    status, counts, output = _pytest(suite)
    assert status == 1, output
    assert counts == {"passed": 3, "failed": 1, "skipped": 1}, output
    assert "FAILED torch_process/test_child.py::test_fails_in_the_child" in output
    assert "skipped on purpose" in output


def test_tests_named_in_the_torch_directory_run_there_alone(suite):
    status, counts, output = _pytest(
        suite, "torch_process/test_child.py::test_child_process_hides_tensorflow"
    )
    assert (status, counts) == (0, {"passed": 1}), output
    status, counts, output = _pytest(suite, "test_main.py")
    assert (status, counts) == (0, {"passed": 1}), output
    status, counts, output = _pytest(suite, "-k", "hides")
    assert (status, counts["passed"]) == (0, 2), output


def test_a_crash_of_the_second_process_fails_the_run_with_its_output(suite):
    status, counts, output = _pytest(suite, crash=True)
    assert status == 1, output
    assert counts.get("error") == 1, output
    assert "the PyTorch test process" in output and "exited with" in output


def test_a_module_the_second_process_cannot_import_is_an_error_here(suite, tmp_path):
    broken = tmp_path / "suite"
    shutil.copytree(suite, broken)
    (broken / "torch_process" / "test_broken.py").write_text("import tensorflow\n")
    status, counts, output = _pytest(broken, "torch_process")
    assert status in (1, 2) and counts.get("error") == 1, output
    assert "torch_process/test_broken.py" in output and "No module named 'tensorflow'" in output


_MEETING = """
import os
import pathlib
import time


def test_meets_the_other_process():
    here = pathlib.Path(os.environ["MEETING_PLACE"])
    (here / "{mine}").touch()
    deadline = time.monotonic() + 60
    while not (here / "{theirs}").exists():
        assert time.monotonic() < deadline, "the other process's test never ran meanwhile"
        time.sleep(0.05)
"""


def test_the_two_processes_run_their_tests_at_the_same_time(suite, tmp_path, monkeypatch):
    """Each side's test waits for the other's: run one after the other, both would time out."""
    both = tmp_path / "suite"
    shutil.copytree(suite, both)
    (both / "test_meeting.py").write_text(_MEETING.format(mine="main", theirs="child"))
    (both / "torch_process" / "test_meeting.py").write_text(
        _MEETING.format(mine="child", theirs="main")
    )
    monkeypatch.setenv("MEETING_PLACE", str(tmp_path))
    status, counts, output = _pytest(both, "test_meeting.py", "torch_process/test_meeting.py")
    assert (status, counts) == (0, {"passed": 2}), output

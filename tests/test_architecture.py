"""The layers of the package, as `docs/architecture.md` draws them, and the linters.

Data walks one way: writers -> event files -> reader -> views / diagnostics -> routes / CLI.
Each layer may import only the layers below it, and only the writers may import a framework.
"""

import ast
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tb_metricsdiag"
FRAMEWORKS = {
    "tensorflow",
    "keras",
    "torch",
    "jax",
    "jaxlib",
    "flax",
    "lightning",
    "pytorch_lightning",
    "transformers",
}

# Layer -> the package's layers it may import (besides itself). `run_records` (what is read of
# a run) sits on `format` (the task of the counts) so that the diagnostics, which judge it, may
# import it without importing the backend that reads it.
ALLOWED = {
    "core": set(),
    "format": {"core"},
    "run_records": {"core", "format"},
    "diagnostics": {"core", "run_records"},
    "backend": {"core", "format", "run_records", "diagnostics"},
    "writing": {"core", "format"},
    "gates": {"core", "format", "diagnostics"},
    "report_formats": {"core", "diagnostics", "gates"},
    "cli_runs": {"backend", "report_formats"},
    "html_report": {"core", "format", "backend"},
    "cli_requirements": {"core", "format", "backend", "gates", "report_formats", "cli_runs"},
    "cli_examples": {"format", "diagnostics", "backend", "cli_runs"},
    "cli_report": {
        "core",
        "format",
        "diagnostics",
        "gates",
        "report_formats",
        "cli_runs",
        "cli_requirements",
        "cli_examples",
        "html_report",
    },
    "cli": {
        "core",
        "format",
        "run_records",
        "diagnostics",
        "backend",
        "gates",
        "report_formats",
        "cli_runs",
        "cli_requirements",
        "cli_examples",
        "cli_report",
        "html_report",
    },
}
# Backend module -> the backend modules it may import. The routes read through `reader` alone;
# below it the provider source decodes nothing, the decoding reads no provider and no cache,
# and the logdir walk is the command line's (no backend module imports it).
BACKEND = {
    "__init__": set(),
    "tensor_guard": set(),
    "cache": set(),
    "static_files": set(),
    "keras_subruns": set(),
    "logdir": set(),
    "record_decoding": {"keras_subruns"},
    "provider_source": {"cache", "tensor_guard"},
    "example_reader": {"cache", "provider_source", "record_decoding"},
    "history_reads": {"keras_subruns", "provider_source", "record_decoding"},
    "reader": {
        "cache",
        "example_reader",
        "history_reads",
        "keras_subruns",
        "provider_source",
        "record_decoding",
    },
    "views": set(),
    "curve_views": set(),
    "comparison_views": {"views"},
    "example_views": set(),
    "overview": set(),
    "plugin": {
        "cache",
        "comparison_views",
        "curve_views",
        "example_views",
        "overview",
        "reader",
        "static_files",
        "views",
    },
}
# Top-level modules anyone may import: the version, and the package itself (lazy exports).
SHARED = {"version", ""}


def _layer(path):
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path):
    """``(module, line)`` of every import in ``path``, at any depth (lazy imports count)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno
            if node.module.split(".")[0] == "tb_metricsdiag":  # a name may be a module
                for alias in node.names:
                    yield node.module + "." + alias.name, node.lineno


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if _layer(p) in ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_the_layers_below_it(path):
    layer = _layer(path)
    for module, line in _imports(path):
        parts = module.split(".")
        if parts[0] == "tb_metricsdiag":
            target = parts[1] if len(parts) > 1 else ""
            assert target in SHARED or target == layer or target in ALLOWED[layer], (
                "%s:%d: the %s layer imports %s" % (path.relative_to(ROOT), line, layer, module)
            )
        elif layer != "writing":
            assert parts[0] not in FRAMEWORKS, "%s:%d: %s imports %s; only writing/ may" % (
                path.relative_to(ROOT),
                line,
                layer,
                module,
            )


# The writing modules that MetricsDiagWriter and every callback share: no framework, and only
# each other from writing/ (arrays.to_numpy reads tensors without importing their framework).
FRAMEWORK_FREE_WRITING = {
    "arrays",
    "callback_writing",
    "inputs",
    "log_names",
    "records",
    "event_writer",
    "example_recorder",
    "record_framing",
    "thumbnails",
    "slice_recorder",
}


@pytest.mark.parametrize("name", sorted(FRAMEWORK_FREE_WRITING))
def test_the_shared_writing_path_imports_no_framework(name):
    path = PACKAGE / "writing" / (name + ".py")
    for module, line in _imports(path):
        parts = module.split(".")
        assert parts[0] not in FRAMEWORKS, "%s:%d imports %s" % (path.name, line, module)
        if parts[:2] == ["tb_metricsdiag", "writing"] and len(parts) > 2:
            assert parts[2] in FRAMEWORK_FREE_WRITING, "%s:%d imports %s" % (
                path.name,
                line,
                module,
            )


@pytest.mark.parametrize("path", sorted((PACKAGE / "backend").glob("*.py")), ids=lambda p: p.stem)
def test_each_backend_module_imports_only_the_backend_modules_below_it(path):
    assert path.stem in BACKEND, "%s: add it to BACKEND in this test" % path.relative_to(ROOT)
    for module, line in _imports(path):
        parts = module.split(".")
        if parts[:2] == ["tb_metricsdiag", "backend"] and len(parts) > 2:
            assert parts[2] in BACKEND[path.stem], "%s:%d imports %s" % (
                path.relative_to(ROOT),
                line,
                module,
            )


def test_core_is_pure_numpy():
    allowed = {"numpy", "concurrent", "functools", "os", "sys", "hashlib", "math", "tb_metricsdiag"}
    for path in (PACKAGE / "core").rglob("*.py"):
        for module, line in _imports(path):
            assert module.split(".")[0] in allowed, "%s:%d imports %s" % (path.name, line, module)


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, tb_metricsdiag, tb_metricsdiag.cli, tb_metricsdiag.backend.plugin\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & %r))" % FRAMEWORKS
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _ruff():
    found = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent)) or shutil.which(
        "ruff"
    )
    if found is None:
        pytest.fail("ruff is not installed: pip install '.[test]'")
    return found


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_python_passes_ruff(command):
    result = subprocess.run(
        [_ruff(), *command, "--no-cache", "tb_metricsdiag", "tests", "bench", "demo", "setup.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# A code span of docs/architecture.md names a path when it has a folder or a file extension.
_CODE_SPAN = re.compile(r"`([^`\s]+)`")
_PATH = re.compile(r"^[\w.*-]+(/[\w.*-]+)*/?$")
_FILE_SUFFIXES = (".py", ".md", ".js", ".json", ".toml", ".css", ".html")
_NOT_SOURCES = {"node_modules", "build", "dist", "__pycache__"}


def _named_paths(markdown):
    """The paths named in the code spans of ``markdown``, but for the first column of a table
    whose header starts with ``before`` (files renamed since, named to say where they went).
    """
    paths, in_renames = set(), False
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            in_renames = False
        elif cells[0] == "before":
            in_renames = True
        spans = _CODE_SPAN.findall("|".join(cells[1:]) if in_renames else line)
        paths.update(
            span
            for span in spans
            if _PATH.match(span) and ("/" in span or span.endswith(_FILE_SUFFIXES))
        )
    return paths


def _file_names():
    """The names of the repository's files, build outputs and hidden folders left out."""
    names = set()
    for _folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(".") and name not in _NOT_SOURCES and "egg-info" not in name
        ]
        names.update(files)
    return names


def _path_exists(path, file_names):
    """Whether ``path`` exists: a bare file name (``records.py``, in a folder's table) anywhere
    in the repository; a path relative to the repository root, or to the package
    (``core/counting.py``) when its first folder is one of the package's. None when its first
    folder is neither (``train/`` is a run's): not a path of the repository.
    """
    path = path.rstrip("/")
    if "/" not in path and path.endswith(_FILE_SUFFIXES):
        return path in file_names
    first = path.split("/")[0]
    for base in (ROOT, PACKAGE):
        if (base / first).is_dir():
            return any(base.glob(path))
    return None


def test_every_path_named_in_the_architecture_doc_exists():
    paths = _named_paths((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    # The parse finds the paths the doc names in each of its forms.
    assert {"tb_metricsdiag/format/schema.py", "core/counting.py", "records.py"} <= paths
    file_names = _file_names()
    missing = sorted(path for path in paths if _path_exists(path, file_names) is False)
    assert not missing, "docs/architecture.md names paths that do not exist: %s" % missing

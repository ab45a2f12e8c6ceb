"""The layers of the package, as `docs/architecture.md` draws them, and the linters.

Data walks one way: writers -> event files -> reader -> views / diagnostics -> routes / CLI.
Each layer may import only the layers below it, and only the writers may import a framework.
"""

import ast
import pathlib
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

# Layer -> the package's layers it may import (besides itself).
ALLOWED = {
    "core": set(),
    "format": {"core"},
    "diagnostics": {"core"},
    "backend": {"core", "format", "diagnostics"},
    "writing": {"core", "format"},
    "gates": {"core", "format", "diagnostics"},
    "report_formats": {"core", "diagnostics", "gates"},
    "cli": {"core", "format", "diagnostics", "backend", "gates", "report_formats"},
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
FRAMEWORK_FREE_WRITING = {"arrays", "inputs", "records", "event_writer"}


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

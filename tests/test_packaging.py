"""The README's two commands, CI's use of them, and what the installed package holds."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def _bash_blocks(text):
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_commands_and_ci_agree():
    blocks = _bash_blocks(_read("README.md"))
    demo = next(b for b in blocks if "demo/run_demo.py" in b)
    tests = next(b for b in blocks if "pytest" in b)
    assert demo.startswith("python3 -m venv .venv") and "\n" not in demo
    assert tests.startswith("python3 -m venv .venv") and "\n" not in tests
    assert tests in _read(".ci/run").splitlines()
    assert os.path.exists(os.path.join(ROOT, "demo", "run_demo.py"))


def test_backend_imports_without_tensorflow():
    code = (
        "import sys, tb_metricsdiag, tb_metricsdiag.plugin, tb_metricsdiag.reader, "
        "tb_metricsdiag.metrics, tb_metricsdiag.counts, tb_metricsdiag.cli\n"
        "bad = [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')"
        " or m == 'keras']\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    points = [p for p in entry_points(group="tensorboard_plugins") if p.name == "metricsdiag"]
    assert points and points[0].value == "tb_metricsdiag.plugin:MetricsDiagLoader"

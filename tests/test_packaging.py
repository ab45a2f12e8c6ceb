"""What the installed package holds: its entry point, the tab's files, no build step."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    points = [p for p in entry_points(group="tensorboard_plugins") if p.name == "metricsdiag"]
    assert points and points[0].value == "tb_metricsdiag.backend.plugin:MetricsDiagLoader"


def test_wheel_ships_the_frontend_and_entry_points(tmp_path):
    """`pip install .` must install the tab's files without any build step or Node.js."""
    import zipfile

    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), ROOT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("tb_metricsdiag-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "tb_metricsdiag/frontend/"
    frontend = {n[len(prefix) :] for n in names if n.startswith(prefix)}
    source = os.path.join(ROOT, "frontend")
    shipped = {
        os.path.relpath(os.path.join(folder, n), source).replace(os.sep, "/")
        for folder, _, files in os.walk(source)
        for n in files
        if not n.startswith("__") and "__pycache__" not in folder
    }
    assert shipped and shipped <= frontend
    assert "tb_metricsdiag/backend/plugin.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "metricsdiag = tb_metricsdiag.backend.plugin:MetricsDiagLoader" in text
    assert "tb-metricsdiag = tb_metricsdiag.cli:console_main" in text

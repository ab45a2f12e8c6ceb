"""ESLint and Prettier over the tab's source, as configured in the repository.

`eslint.config.js` (browser ES modules) and `.prettierrc.json` (100 columns) hold the rules;
`package.json` pins the tools (devDependencies only, installed with `npm ci`). The tab itself
needs no Node.js: these are development checks.
"""

import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_MODULES = os.path.join(ROOT, "node_modules")


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def test_package_json_holds_development_tools_only():
    package = json.loads(_read("package.json"))
    assert package["private"] is True
    assert "dependencies" not in package
    assert {"eslint", "prettier"} <= set(package["devDependencies"])
    assert os.path.exists(os.path.join(ROOT, "package-lock.json"))
    assert "node_modules/" in _read(".gitignore").splitlines()


def _cannot_run(reason):
    """Skip, saying why; in CI (``CI`` set, as `.ci/run` runs), where the linters are
    installed, fail instead: a lint check must never pass there by not running."""
    if os.environ.get("CI"):
        pytest.fail("in CI: " + reason)
    pytest.skip(reason)


def _npx(tool, *args):
    if not (shutil.which("node") and shutil.which("npx")):
        _cannot_run("the JS linters need Node.js and npm; install them, then run `npm ci`")
    if not os.path.isdir(os.path.join(NODE_MODULES, tool)):
        _cannot_run("%s is not installed: run `npm ci` in the repository root" % tool)
    return subprocess.run(
        ["npx", "--no-install", tool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_eslint():
    result = _npx("eslint", "--max-warnings", "0", "frontend")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prettier_formatting():
    result = _npx("prettier", "--check", "frontend")
    assert result.returncode == 0, (
        "run `npx prettier --write frontend`:\n" + result.stdout + result.stderr
    )

"""Run Python in a subprocess where some frameworks cannot be imported, as if not installed.

A ``sitecustomize`` module in a temporary directory put first on ``PYTHONPATH`` installs a
`sys.meta_path` finder that raises ModuleNotFoundError for the hidden packages and their
submodules. Python runs ``sitecustomize`` at start-up, so the block holds in the child and in
every Python process the child starts (a ``tensorboard`` or ``tb-metricsdiag`` command)::

    result = run_without("import tb_metricsdiag; print('ok')", hide=("tensorflow", "keras"))
    assert result.stdout.strip() == "ok"

    with environment_without(("tensorflow", "keras")) as env:
        subprocess.run([sys.executable, "-m", "tensorboard.main", ...], env=env)

Each finder of `sys.meta_path` is wrapped so that it finds nothing of a hidden package: an
import raises ModuleNotFoundError and `importlib.util.find_spec` returns None, as for a package
that is not installed (PyTorch probes optional packages with it at import). The package's
distribution metadata (`importlib.metadata`) is not hidden.
"""

import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

TENSORFLOW = ("tensorflow", "keras", "tf_keras")

EVERY_FRAMEWORK = TENSORFLOW + ("torch", "jax", "jaxlib", "flax", "lightning", "pytorch_lightning")

_VARIABLE = "TB_METRICSDIAG_TEST_HIDDEN_MODULES"

_SITECUSTOMIZE = '''\
import os
import sys

_HIDDEN = tuple(name for name in os.environ.get(%r, "").split(",") if name)


class _Hiding:
    """A meta-path finder that finds nothing of the hidden packages, else what ``finder`` finds."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _HIDDEN:
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return None if find_spec is None else find_spec(name, path, target)

    def __getattr__(self, attribute):  # invalidate_caches, find_distributions, ...
        return getattr(self._finder, attribute)


if _HIDDEN:
    sys.meta_path[:] = [_Hiding(finder) for finder in sys.meta_path]
''' % (_VARIABLE,)


@contextlib.contextmanager
def environment_without(hide=TENSORFLOW, env=None):
    """Yield an environment (a dict for `subprocess`) in which Python cannot import ``hide``.

    Args:
      hide: top-level package names to hide (their submodules are hidden with them).
      env: the environment to start from; default `os.environ`. The project root stays on
        ``PYTHONPATH`` after the blocker, so the package under test is the one imported.
    """
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="no_frameworks_") as directory:
        pathlib.Path(directory, "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        paths = [directory, str(ROOT)] + [
            p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p
        ]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env[_VARIABLE] = ",".join(hide)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        yield env


def run_script_without(script, *args, hide=TENSORFLOW, env=None, timeout=300):
    """Run ``python script *args`` from the project root where ``hide`` cannot be imported
    (nor in the processes it starts, such as Lightning's DDP workers, which run the script
    again); return the CompletedProcess, its output captured as text.
    """
    with environment_without(hide, env) as child_env:
        return subprocess.run(
            [sys.executable, str(script), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(ROOT),
            env=child_env,
        )


def run_without(code, hide=TENSORFLOW, cwd=None, env=None, timeout=300, check=True):
    """Run ``python -c code`` where ``hide`` cannot be imported; return the CompletedProcess.

    Before ``code``, the child checks that each hidden package really fails to import.

    Args:
      code: Python source to run.
      hide: top-level package names to hide.
      cwd: working directory of the child; default the project root.
      env: the environment to start from; default `os.environ`.
      timeout: seconds before the child is killed (`subprocess.TimeoutExpired`).
      check: raise AssertionError, with the child's output, when it exits with an error.
    """
    preamble = (
        "import importlib as _importlib\n"
        "for _name in %r:\n"
        "    try:\n"
        "        _importlib.import_module(_name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('the test failed to hide ' + _name)\n"
        "del _importlib, _name\n" % (tuple(hide),)
    )
    with environment_without(hide, env) as child_env:
        result = subprocess.run(
            [sys.executable, "-c", preamble + code],
            cwd=str(cwd or ROOT),
            env=child_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if check and result.returncode != 0:
        raise AssertionError(
            "the child without %s exited with %d\n--- stdout\n%s\n--- stderr\n%s"
            % (", ".join(hide), result.returncode, result.stdout, result.stderr)
        )
    return result

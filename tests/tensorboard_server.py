"""A real ``tensorboard`` process for a test, with TensorFlow hidden from it::

    with serving(logdir, load_fast="true") as url:
        runs = get_json(url, "/data/plugin/metricsdiag/runs")

``load_fast="true"`` is TensorBoard's Rust data server, ``"false"`` its Python loader.
"""

import contextlib
import json
import subprocess
import sys
import time
import urllib.request

from no_frameworks import TENSORFLOW, environment_without

STARTUP_TIMEOUT_S = 90


@contextlib.contextmanager
def serving(logdir, load_fast="true", hide=TENSORFLOW):
    """Yield the base URL of ``tensorboard --logdir logdir`` on a free port; stop it after."""
    with environment_without(hide) as env:
        process = subprocess.Popen(
            [sys.executable, "-c", "from tensorboard.main import run_main; run_main()"]
            + ["--logdir", str(logdir), "--port", "0", "--host=127.0.0.1"]
            + ["--load_fast=%s" % load_fast, "--reload_interval=1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = None
            deadline = time.time() + STARTUP_TIMEOUT_S
            while url is None and time.time() < deadline:
                line = process.stdout.readline()
                if "http://" in line:
                    url = line[line.index("http://") :].split()[0].rstrip("/")
                assert line or process.poll() is None, "tensorboard exited"
            assert url, "tensorboard did not start"
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def get_json(url, path):
    """The parsed JSON answer of a GET of ``path`` on the server at ``url``."""
    with urllib.request.urlopen(url + path, timeout=30) as response:
        return json.loads(response.read())


def wait_for(url, path, ready, timeout=STARTUP_TIMEOUT_S):
    """The answer of ``path`` once ``ready(answer)`` holds (the server loads files in the
    background); AssertionError with the last answer after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        answer = get_json(url, path)
        if ready(answer):
            return answer
        assert time.time() < deadline, "not ready in time: %s" % (answer,)
        time.sleep(0.5)

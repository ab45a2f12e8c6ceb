"""The demo's TensorBoard prints what TensorBoard says, without TensorFlow's CUDA probe lines
(``failed call to cuInit`` on a machine without a GPU)."""

import json
import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "demo", "run_demo.py")

# What TensorFlow (2.21, as TensorBoard imports it) prints on a machine without a GPU, verbatim.
PROBE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796567763.402660    9131 cudart_stub.cc:31] Could not find cuda drivers on"
    " your machine, GPU will not be used.",
    "E0000 00:00:1796567771.523162    9131 cuda_platform.cc:52] failed call to cuInit:"
    " INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]


def serve_in_process(command):
    """A process running the demo's ``serve(command)``, its stdout and stderr piped."""
    code = textwrap.dedent(
        """
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("run_demo", %r)
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        sys.exit(demo.serve(json.loads(sys.argv[1])))
        """
        % DEMO
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(command)],
        env=dict(os.environ, PYTHONPATH=REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_probe_lines_are_dropped_and_every_other_line_kept():
    lines = PROBE_LINES[:1] + ["TensorBoard could not bind to port 6006"] + PROBE_LINES[1:]
    lines += ["ERROR: a real error", "last line without newline"]
    child_code = "import sys; sys.stderr.write(%r); sys.exit(3)" % "\n".join(lines)
    process = serve_in_process([sys.executable, "-c", child_code])
    out, err = process.communicate(timeout=60)
    assert process.returncode == 3  # the child's status
    assert err.decode().splitlines() == [
        "TensorBoard could not bind to port 6006",
        "ERROR: a real error",
        "last line without newline",
    ]

"""`tb-metricsdiag report`: exit codes, JSON shape, text output, safe printing."""

import json
import os
import shutil
import subprocess
import sys

import keras_runs
import pytest

from tb_metricsdiag import cli, cli_runs, report_formats


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return keras_runs.train_all(tmp_path_factory)


def logdir_with(runs, names, tmp_path):
    """A new logdir holding copies of some of the trained runs."""
    for name in names:
        shutil.copytree(os.path.join(runs.logdir, name), tmp_path / name)
    return str(tmp_path)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text):
    def reject(constant):
        raise ValueError("not strict JSON: %s" % constant)

    return json.loads(text, parse_constant=reject)


# -- usage errors and unreadable logdirs: exit 2, one line, no traceback --------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["report"],
        ["frobnicate", "x"],
        ["report", "LOGDIR", "--format", "xml"],
        ["report", "LOGDIR", "--fail-on", "fatal"],
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, tmp_path, argv):
    argv = [str(tmp_path) if arg == "LOGDIR" else arg for arg in argv]
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_help_exits_0(capsys):
    status, out, _ = run_cli(capsys, "report", "--help")
    assert status == 0 and "--fail-on" in out


def test_missing_file_and_empty_logdirs_exit_2(capsys, tmp_path):
    (tmp_path / "a_file").write_text("not a logdir")
    (tmp_path / "empty").mkdir()
    for path, reason in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "a_file", "is not a directory"),
        (tmp_path / "empty", "holds no TensorBoard runs"),
    ]:
        status, out, err = run_cli(capsys, "report", str(path))
        assert status == 2 and out == "" and reason in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_logdir_exits_2(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        status, _, err = run_cli(capsys, "report", str(locked))
    finally:
        locked.chmod(0o700)
    assert status == 2 and "cannot read" in err


def test_console_entry_point_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


# -- reports on real runs ------------------------------------------------------------------


def test_json_report_shape_and_exit_status(runs, capsys):
    status, out, err = run_cli(capsys, "report", runs.logdir, "--format", "json")
    report = strict_json(out)
    assert set(report) == {"runs", "skipped"}
    names = [run["run"] for run in report["runs"]]
    assert names == sorted(runs.keras_histories)
    for run in report["runs"]:
        assert set(run) == {"run", "findings", "not_run"}
        for finding in run["findings"]:
            assert {"rule", "severity", "title", "detail", "step", "evidence"} <= set(finding)
    assert status == 1  # the diverging, leaky, ... runs have errors


def test_console_process_reads_without_tensorflow_and_agrees(runs, capsys):
    """The console script reads local files with TensorBoard's TF-free stub: same report."""
    _, in_process, _ = run_cli(capsys, "report", runs.logdir, "--format", "json")
    code = (
        "import sys; from tb_metricsdiag import cli; status = cli.console_main(); "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "report", runs.logdir, "--format", "json"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert strict_json(result.stdout) == strict_json(in_process)


def test_healthy_run_passes_even_on_warnings(runs, capsys, tmp_path):
    logdir = logdir_with(runs, ["healthy"], tmp_path)
    status, out, _ = run_cli(capsys, "report", logdir, "--format", "json", "--fail-on", "warning")
    assert status == 0
    assert strict_json(out)["runs"][0]["run"] == "healthy"


@pytest.mark.parametrize("fail_on, expected", [("error", 0), ("warning", 1), ("info", 1)])
def test_fail_on_threshold(runs, capsys, tmp_path, fail_on, expected):
    logdir = logdir_with(runs, ["fraud"], tmp_path)  # a warning and two infos
    status, _, _ = run_cli(capsys, "report", logdir, "--fail-on", fail_on)
    assert status == expected


def test_keras_tensorboard_only_logdir(runs, capsys, tmp_path):
    logdir = logdir_with(runs, ["keras_only_overfit"], tmp_path)
    status, out, _ = run_cli(capsys, "report", logdir, "--format", "json", "--fail-on", "warning")
    (run,) = strict_json(out)["runs"]
    assert run["run"] == "keras_only_overfit"
    assert [f["rule"] for f in run["findings"]] == ["overfitting"]
    assert status == 1


def test_logdir_that_is_itself_a_run_is_named_after_its_folder(runs, capsys):
    """Keras's train/ and validation/ sub-runs stay with it: one run, named "leaky", not "."."""
    status, out, _ = run_cli(
        capsys, "report", os.path.join(runs.logdir, "leaky"), "--format", "json"
    )
    (run,) = strict_json(out)["runs"]
    assert run["run"] == "leaky" and run["findings"][0]["rule"] == "train_val_overlap"
    assert status == 1
    # A folder with Keras's sub-runs alone (keras.callbacks.TensorBoard, no event file of its own).
    _, out, _ = run_cli(
        capsys, "report", os.path.join(runs.logdir, "keras_only_overfit"), "--format", "json"
    )
    (run,) = strict_json(out)["runs"]
    assert run["run"] == "keras_only_overfit"
    assert [f["rule"] for f in run["findings"]] == ["overfitting"]


def test_text_report_without_tty_has_no_colour(runs, capsys):
    status, out, _ = run_cli(capsys, "report", runs.logdir)
    assert status == 1 and "\033[" not in out
    assert "run healthy\n  no findings" in out
    assert "ERROR   divergence (epoch 0)" in out
    assert out.rstrip().splitlines()[-1].startswith("%d run(s): " % len(runs.keras_histories))


# -- text formatting -------------------------------------------------------------------------


def hostile_report():
    finding = {
        "rule": "accuracy_paradox",
        "severity": "warning",
        "step": 3,
        "title": "class 'evil\n\033[2J' is missed",
        "detail": "tab\there",
        "evidence": {},
        "suggestion": "fix\rit",
    }
    return [{"run": "run\nname\033]0;x\a", "findings": [finding]}]


def test_text_escapes_control_characters():
    text = report_formats.format_text(hostile_report())
    assert "\033" not in text and "\r" not in text and "\t" not in text and "\a" not in text
    assert "run run\\x0aname\\x1b]0;x\\x07" in text
    assert "class 'evil\\x0a\\x1b[2J' is missed" in text
    assert len(text.splitlines()) == 6  # run, 3 lines of finding, blank, summary


def test_safe_text_keeps_printable_unicode():
    assert report_formats.safe_text("Überweisung → fraud ✓") == "Überweisung → fraud ✓"
    assert report_formats.safe_text("a\u2028b\x7f") == "a\\u2028b\\x7f"


class _Tty:
    def isatty(self):
        return True


def test_colour_only_on_a_tty_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli_runs.use_color(_Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli_runs.use_color(_Tty())
    assert "\033[33m" in report_formats.format_text(hostile_report(), color=True)


def test_a_run_that_cannot_be_read_is_reported_not_raised(runs, capsys, tmp_path, monkeypatch):
    from tb_metricsdiag.backend import reader as reader_lib

    def broken_history(self, run, index=None):
        raise ValueError("corrupt\nevent file")

    monkeypatch.setattr(reader_lib.Reader, "history", broken_history)
    logdir = logdir_with(runs, ["healthy"], tmp_path)
    status, out, err = run_cli(capsys, "report", logdir, "--format", "json")
    (finding,) = strict_json(out)["runs"][0]["findings"]
    assert finding["rule"] == "recording_problem" and finding["severity"] == "error"
    assert "corrupt" in finding["detail"] and status == 1 and "Traceback" not in err

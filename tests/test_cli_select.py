"""`report` on a folder of mixed runs: `--run` selection, requirements that do not apply to some
runs, a run's own folder, `--format csv` against scikit-learn, the Markdown report rendered by a
CommonMark parser, progress on a terminal. Runs are written with `MetricsDiagWriter` from known
labels and scores (no framework), so every number has an independent reference.
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from markdown_tables import render_html, render_markdown_tables
from sklearn import metrics as skm

from tb_metricsdiag import MetricsDiagWriter, cli, report_formats

WORKTREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = (0, 1)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Run:
    """One run's labels and scores per split and step: the reference for every number."""

    def __init__(self, name, class_names, n, seed, multi_label=False, splits=("validation",)):
        self.name, self.class_names, self.multi_label = name, list(class_names), multi_label
        rng = np.random.default_rng(seed)
        width = len(class_names)
        self.y_true, self.scores = {}, {}
        for split in splits:
            if multi_label:
                y = (rng.random((n, width)) < 0.4).astype(int)
            else:
                y = rng.choice(
                    width, size=n, p=np.linspace(2, 1, width) / np.linspace(2, 1, width).sum()
                )
            self.y_true[split] = y
            for step in STEPS:
                noise = rng.normal(size=(n, width))
                signal = y if multi_label else np.eye(width)[y]
                logits = noise + (1.0 + step) * signal
                self.scores[split, step] = (
                    1 / (1 + np.exp(-logits)) if multi_label else _softmax(logits)
                )

    def predicted(self, split, step):
        scores = self.scores[split, step]
        return (scores >= 0.5).astype(int) if self.multi_label else scores.argmax(axis=1)

    def write(self, log_dir):
        with MetricsDiagWriter(
            log_dir, class_names=self.class_names, multi_label=self.multi_label
        ) as writer:
            for step in STEPS:
                for split, y in self.y_true.items():
                    writer.add_evaluation(y, self.scores[split, step], step, split=split)
                writer.add_logs({"loss": 1.0 / (step + 1), "val_loss": 1.1 / (step + 1)}, step)


RUNS = [
    Run("fraud_model", ["legit", "fraud"], 300, seed=1, splits=("validation", "train")),
    Run("animals", ["cat", "dog", "bird"], 240, seed=2),
    Run("sweep/lr_0.1", ["legit", "fraud"], 200, seed=3),
    Run("sweep/lr_0.01", ["legit", "fraud"], 200, seed=4),
    Run("tags", ["urgent", "billing", "spam"], 150, seed=5, multi_label=True),
]
BY_NAME = {run.name: run for run in RUNS}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    for run in RUNS:
        run.write(os.path.join(str(root), run.name))
    return str(root)


def run_cli(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def json_runs(capsys, *argv):
    status, out, err = run_cli(capsys, "report", *argv, "--format", "json")
    assert status in (0, 1), err
    return status, {run["run"]: run for run in json.loads(out)["runs"]}


def one_line_usage_error(status, out, err):
    assert status == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    return err


# -- --run --------------------------------------------------------------------------------


def test_without_run_every_run_is_reported(logdir, capsys):
    _, runs = json_runs(capsys, logdir)
    assert sorted(runs) == sorted(BY_NAME)


@pytest.mark.parametrize(
    "patterns, expected",
    [
        (["animals"], ["animals"]),
        (["sweep/*"], ["sweep/lr_0.01", "sweep/lr_0.1"]),
        (["*lr_0.1"], ["sweep/lr_0.1"]),  # * matches across "/"
        (["sweep/lr_0.0?", "tags"], ["sweep/lr_0.01", "tags"]),
        (["[ft]*"], ["fraud_model", "tags"]),
        (["*", "animals"], sorted(BY_NAME)),  # overlapping patterns: each run once
    ],
)
def test_run_selects_by_glob(logdir, capsys, patterns, expected):
    argv = [arg for pattern in patterns for arg in ("--run", pattern)]
    _, runs = json_runs(capsys, logdir, *argv)
    assert sorted(runs) == expected


def test_run_is_case_sensitive_everywhere(logdir, capsys):
    err = one_line_usage_error(*run_cli(capsys, "report", logdir, "--run", "ANIMALS"))
    assert "--run 'ANIMALS'" in err and "closest: animals" in err


def test_run_without_match_names_the_closest_runs(logdir, capsys):
    err = one_line_usage_error(*run_cli(capsys, "report", logdir, "--run", "animls*"))
    assert "--run 'animls*': no run matches; closest: animals" in err
    err = one_line_usage_error(*run_cli(capsys, "report", logdir, "--run", "swep/*"))
    assert "closest: sweep/lr_0.01" in err or "closest: sweep/lr_0.1" in err


def test_run_without_any_close_name_lists_the_runs(logdir, capsys):
    err = one_line_usage_error(
        *run_cli(capsys, "report", logdir, "--run", "animals", "--run", "qqqq")
    )
    assert "--run 'qqqq': no run matches; the runs are animals, fraud_model, sweep/lr_0.01" in err


def test_run_selection_applies_to_requirements_and_findings(logdir, capsys):
    status, runs = json_runs(capsys, logdir, "--run", "sweep/*", "--require", "recall[fraud] >= 0")
    assert sorted(runs) == ["sweep/lr_0.01", "sweep/lr_0.1"] and status == 0
    for run in runs.values():
        assert [r["passed"] for r in run["requirements"]] == [True]


def test_baseline_need_not_be_selected(logdir, capsys):
    status, out, err = run_cli(
        capsys,
        "report",
        logdir,
        "--run",
        "sweep/*",
        "--baseline",
        "fraud_model",
        "--require",
        "recall[fraud] >= baseline - 1",
        "--format",
        "json",
    )
    assert status == 0, err
    document = json.loads(out)
    assert document["baseline"]["run"] == "fraud_model"
    assert sorted(run["run"] for run in document["runs"]) == ["sweep/lr_0.01", "sweep/lr_0.1"]
    base = BY_NAME["fraud_model"]
    expected = skm.recall_score(base.y_true["validation"], base.predicted("validation", 1))
    for run in document["runs"]:
        assert run["requirements"][0]["baseline"] == pytest.approx(expected, abs=1e-12)


# -- requirements that do not apply to every run ------------------------------------------


def test_a_class_requirement_applies_to_the_runs_that_have_the_class(logdir, capsys):
    status, runs = json_runs(capsys, logdir, "--require", "recall[fraud] >= 0.5")
    binary = [name for name, run in BY_NAME.items() if "fraud" in run.class_names]
    for name, report in runs.items():
        (result,) = report["requirements"]
        if name in binary:
            run = BY_NAME[name]
            expected = skm.recall_score(
                run.y_true["validation"], run.predicted("validation", 1), pos_label=1
            )
            assert result["applicable"] is True
            assert result["value"] == pytest.approx(expected, abs=1e-12)
            assert result["passed"] is bool(expected >= 0.5)
        else:
            assert result["applicable"] is False and result["passed"] is None
            assert result["value"] is None and result["reason"] == "run has no class 'fraud'"
            assert result["class"] == "fraud" and result["bound"] == 0.5
    applicable = [runs[name]["requirements"][0] for name in binary]
    assert status == (0 if all(r["passed"] for r in applicable) else 1)


def test_not_applicable_never_fails(logdir, capsys):
    status, runs = json_runs(capsys, logdir, "--require", "recall[fraud] >= 0")
    assert status == 0
    assert [r["requirements"][0]["passed"] for r in runs.values()].count(None) == 2


def test_a_requirement_without_class_applies_to_binary_runs(logdir, capsys):
    _, runs = json_runs(capsys, logdir, "--require", "precision >= 0")
    assert runs["fraud_model"]["requirements"][0]["class"] == "fraud"
    result = runs["animals"]["requirements"][0]
    assert result["applicable"] is False and "3 classes" in result["reason"]


def test_not_applicable_in_text_markdown_and_junit(logdir, capsys):
    argv = ["report", logdir, "--require", "recall[fraud] >= 0", "--run", "animals"]
    argv += ["--run", "fraud_model"]
    status, text, _ = run_cli(capsys, *argv)
    assert status == 0
    assert "N/A  recall[fraud] >= 0: not applicable, run has no class 'fraud'" in text
    assert "requirements: 1 passed, 0 failed, 1 not applicable" in text

    status, markdown, _ = run_cli(capsys, *argv, "--format", "markdown")
    rows = {row["run"]: row for row in markdown_table_rows(markdown, "Requirements")}
    assert rows["animals"]["result"] == "n/a" and rows["fraud_model"]["result"] == "pass"
    assert rows["animals"]["value"] == "not applicable: run has no class 'fraud'"
    assert "1 not applicable" in markdown

    status, xml, _ = run_cli(capsys, *argv, "--format", "junit")
    root = ElementTree.fromstring(xml)
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    (case,) = suites["animals"].findall("testcase")
    assert case.find("skipped").get("message") == "not applicable: run has no class 'fraud'"
    assert case.find("failure") is None
    assert suites["animals"].get("skipped") == "1" and suites["animals"].get("failures") == "0"
    assert suites["fraud_model"].get("skipped") == "0" and root.get("skipped") == "1"


@pytest.mark.parametrize(
    "argv, quoted, hint",
    [
        (["--require", "recall[frod] >= 0.5"], "'recall[frod] >= 0.5'", "closest: 'fraud'"),
        (
            ["--require", "recall[fraud] >= 0.5", "--run", "animals"],
            "no run checked has a class 'fraud'",
            "the classes are 'bird', 'cat', 'dog'",
        ),
        (
            ["--require", "f1 >= 0.5", "--run", "animals", "--run", "tags"],
            "'f1 >= 0.5'",
            "no run checked is binary",
        ),
    ],
)
def test_usage_error_only_when_no_run_has_the_class(logdir, capsys, argv, quoted, hint):
    err = one_line_usage_error(*run_cli(capsys, "report", logdir, *argv))
    assert quoted in err and hint in err


# -- a run's own folder -------------------------------------------------------------------


def test_a_runs_own_folder_names_the_run(logdir, capsys, tmp_path, monkeypatch):
    own = os.path.join(logdir, "animals")
    _, runs = json_runs(capsys, own)
    assert list(runs) == ["animals"]
    status, out, _ = run_cli(capsys, "report", own, "--run", "anim*", "--format", "csv")
    assert status in (0, 1) and {row["run"] for row in csv.DictReader(io.StringIO(out))} == {
        "animals"
    }
    # Keras's sub-runs beside it belong to it, and a relative path names it too.
    copy = tmp_path / "fraud_model"
    shutil.copytree(os.path.join(logdir, "fraud_model"), copy)
    BY_NAME["animals"].write(str(copy / "train"))  # a run directory named like Keras's sub-run
    monkeypatch.chdir(copy)
    _, runs = json_runs(capsys, ".")
    assert "fraud_model" in runs and "." not in runs


def test_the_folder_name_stays_dot_where_another_run_has_it(capsys, tmp_path):
    folder = tmp_path / "fraud_model"
    BY_NAME["fraud_model"].write(str(folder))
    BY_NAME["animals"].write(str(folder / "fraud_model"))
    _, runs = json_runs(capsys, folder)
    assert sorted(runs) == [".", "fraud_model"]


# -- CSV ----------------------------------------------------------------------------------


def csv_rows(capsys, *argv):
    status, out, err = run_cli(capsys, "report", *argv, "--format", "csv")
    assert status in (0, 1), err
    assert out.splitlines()[0] == "run,split,step,class,precision,recall,f1,support"
    return list(csv.DictReader(io.StringIO(out)))


def reference_rows(run, split, step):
    """``{class name: (precision, recall, f1, support)}`` by scikit-learn; NaN where undefined."""
    y, predicted = run.y_true[split], run.predicted(split, step)
    labels = None if run.multi_label else list(range(len(run.class_names)))
    values = skm.precision_recall_fscore_support(y, predicted, labels=labels, zero_division=np.nan)
    return {name: tuple(v[k] for v in values) for k, name in enumerate(run.class_names)}


def assert_rows_match_sklearn(rows, step):
    seen = set()
    for row in rows:
        run = BY_NAME[row["run"]]
        expected = reference_rows(run, row["split"], step)[row["class"]]
        for column, value in zip(("precision", "recall", "f1"), expected):
            if np.isnan(value):
                assert row[column] == "", (row, column)
            else:
                assert float(row[column]) == pytest.approx(value, abs=1e-12), (row, column)
        assert int(row["support"]) == expected[3] and int(row["step"]) == step
        seen.add((row["run"], row["split"], row["class"]))
    assert seen == {
        (run.name, split, name) for run in RUNS for split in run.y_true for name in run.class_names
    }
    assert len(rows) == len(seen)


@pytest.mark.parametrize("step", [None, 0])
def test_csv_equals_sklearn_per_run_split_and_class(logdir, capsys, step):
    argv = [logdir] if step is None else [logdir, "--step", step]
    rows = csv_rows(capsys, *argv)
    assert_rows_match_sklearn(rows, STEPS[-1] if step is None else step)
    # Sorted by run, validation before train.
    assert [row["run"] for row in rows] == sorted(row["run"] for row in rows)
    fraud = [row["split"] for row in rows if row["run"] == "fraud_model"]
    assert fraud == ["validation", "validation", "train", "train"]


def test_csv_leaves_undefined_values_empty(capsys, tmp_path):
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.eye(3)[[0, 0, 1, 0, 1, 0]] * 0.8 + 0.2 / 3  # "c" never predicted
    with MetricsDiagWriter(str(tmp_path / "r"), class_names=["a", "b", "c"]) as writer:
        writer.add_evaluation(y, scores, 0)
    rows = {row["class"]: row for row in csv_rows(capsys, tmp_path)}
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, scores.argmax(axis=1), zero_division=np.nan
    )
    assert np.isnan(precision[2]) and rows["c"]["precision"] == "" and rows["c"]["recall"] == "0.0"
    assert float(rows["b"]["f1"]) == pytest.approx(f1[1])


def test_csv_quotes_and_defuses_hostile_names(capsys, tmp_path):
    names = ["a,b", 'say "hi"', "line\nbreak", '=HYPERLINK("http://x")', "-1", "@sum"]
    rng = np.random.default_rng(0)
    y = rng.integers(0, len(names), 60)
    with MetricsDiagWriter(str(tmp_path / "run,=1"), class_names=names) as writer:
        writer.add_evaluation(y, _softmax(rng.normal(size=(60, len(names)))), 0)
    rows = csv_rows(capsys, tmp_path)
    assert [row["class"] for row in rows] == [
        "a,b",
        'say "hi"',
        "line\\x0abreak",
        '\'=HYPERLINK("http://x")',
        "-1",
        "'@sum",
    ]
    assert {row["run"] for row in rows} == {"run,=1"}
    assert all(len(row) == 8 for row in rows)


def test_csv_step_that_a_run_lacks_is_a_usage_error(logdir, capsys):
    err = one_line_usage_error(*run_cli(capsys, "report", logdir, "--format", "csv", "--step", "7"))
    assert "--step 7" in err


def test_csv_keeps_the_exit_status_of_requirements(logdir, capsys):
    status, out, _ = run_cli(
        capsys, "report", logdir, "--format", "csv", "--require", "recall[fraud] > 1"
    )
    assert status == 1 and out.startswith("run,split,step,class,")


# -- Markdown -----------------------------------------------------------------------------


def markdown_table_rows(markdown, heading):
    """The rows of the table under ``### heading``, as CommonMark with GitHub's tables renders
    them (markdown-it-py): ``[{header: cell text}]``.
    """
    return render_markdown_tables(markdown)[heading]


HOSTILE = [
    "a|b",
    "*bold* and _it_ and ~~gone~~ and $x$",
    "<script>alert(1)</script>",
    "<b>",
    "[click](http://evil.example)",
    "![img](http://evil.example/x.png)",
    "<http://evil.example>",
    "`code`",
    "back\\slash\\|pipe",
    "&lt;not a tag&gt; &#65;",
    "tail\\",
]


def hostile_reports():
    findings = [
        {
            "rule": "accuracy_paradox",
            "severity": "warning",
            "step": 1,
            "title": text,
            "detail": "",
            "evidence": {},
            "suggestion": text,
        }
        for text in HOSTILE
    ]
    results = [
        {
            "expr": "recall[%s] >= 0.9" % text,
            "metric": "recall",
            "class": text,
            "op": ">=",
            "step": 1,
            "bound": 0.9,
            "value": 0.5,
            "passed": False,
            "applicable": True,
        }
        for text in HOSTILE
    ]
    return [
        {"run": text, "findings": [f], "requirements": [r]}
        for text, f, r in zip(HOSTILE, findings, results)
    ]


def test_markdown_hostile_text_renders_as_its_own_text():
    markdown = report_formats.format_markdown(hostile_reports())
    tables = render_markdown_tables(markdown)  # asserts no cell holds markup
    requirements, findings = tables["Requirements"], tables["Findings"]
    assert sorted(row["run"] for row in requirements) == sorted(HOSTILE)
    for row in requirements:
        assert row["class"] == row["run"] and row["requirement"] == "recall[%s] >= 0.9" % row["run"]
    for row in findings:
        assert row["title"] == row["fix"] == row["run"]
    html = render_html(markdown)
    for tag in ("<script", "<b>", "<a ", "<img", "<code", "<em", "<strong>bold"):
        assert tag not in html


@pytest.mark.parametrize(
    "text",
    [
        "balanced_accuracy >= 0.7",
        "f1[*] >= 0.6",
        "ap[macro] > 0.8",
        "ece < 0.05",
        "recall[fraud] <= baseline - 0.02",
        "precision[big cat] >= 0.9",
        "sweep/lr_0.01",
        "run-2024.05 (retry #2): +5% data!",
    ],
)
def test_markdown_keeps_ordinary_text_plain(text):
    assert report_formats.markdown_text(text) == text


# -- help and progress --------------------------------------------------------------------


def test_help_names_every_writer_not_keras_alone(capsys):
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0 and "Keras classifiers" not in out
    assert "MetricsDiagWriter" in out and "Lightning" in out and "Keras" in out


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_only(logdir, capsys, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status = cli.main(["report", logdir, "--format", "json"])
    shown = terminal.getvalue()
    out, _ = capsys.readouterr()
    assert status in (0, 1) and json.loads(out)["runs"]
    lines = shown.split("\r")
    assert "tb-metricsdiag: read %d of %d runs" % (len(RUNS), len(RUNS)) in shown
    assert "tb-metricsdiag: diagnosed %d of %d runs" % (len(RUNS), len(RUNS)) in shown
    assert lines[-1] == "" and lines[-2].strip() == ""  # cleared before the report is printed
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: nothing
    cli.main(["report", logdir, "--format", "json"])
    assert sys.stderr.getvalue() == ""


def _report_process(logdir, stderr):
    return subprocess.run(
        [sys.executable, "-m", "tb_metricsdiag.cli", "report", logdir, "--run", "sweep/*"],
        env=dict(os.environ, PYTHONPATH=WORKTREE),
        stdout=subprocess.PIPE,
        stderr=stderr,
        timeout=120,
    )


def test_progress_in_a_real_terminal_and_none_in_a_pipe(logdir):
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        result = _report_process(logdir, follower)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert result.returncode in (0, 1)
    assert b"tb-metricsdiag: read 2 of 2 runs" in shown, shown
    assert b"run sweep/lr_0.1" in result.stdout
    piped = _report_process(logdir, subprocess.PIPE)
    assert piped.stderr == b"" and piped.stdout == result.stdout

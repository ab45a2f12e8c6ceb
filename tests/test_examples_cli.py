"""`tb-metricsdiag report --examples N` and the gate ``label_issue_share``, on runs written
with example records by `MetricsDiagWriter`: the listed errors against NumPy brute force, the
label issues and their share against cleanlab, every output escaped.
"""

import json

import example_runs
import numpy as np
import pytest
from cleanlab.filter import find_label_issues
from statsmodels.stats.proportion import proportion_confint

from tb_metricsdiag import cli, report_formats

HOSTILE = "<b>bold</b> | pipe `tick` \x1b[31m red \n newline"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(logdir, {name: WrittenRun}) with a multi-class run with hostile text previews, a
    binary one with image previews, a multi-label one and one without example records."""
    logdir = str(tmp_path_factory.mktemp("examples_cli"))
    rng = np.random.default_rng(7)
    ids = ["row-%03d" % i for i in range(example_runs.ROWS)]
    texts = ["%s %s" % (HOSTILE, key) for key in ids]
    images = rng.integers(0, 256, size=(example_runs.ROWS, 8, 8, 3), dtype=np.uint8)
    runs = {
        "multiclass": example_runs.write_multiclass(
            logdir, "multiclass", ids, rng, previews=texts, splits=("validation",)
        ),
        "binary": example_runs.write_binary(logdir, "binary", rng, images),
        "multilabel": example_runs.write_multilabel(logdir, "multilabel", rng),
    }
    example_runs.write_without_examples(logdir, "plain", rng)
    return logdir, runs


def run_cli(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def json_report(capsys, logdir, *options):
    status, out, err = run_cli(capsys, "report", logdir, "--format", "json", *options)
    assert status in (0, 1), err
    return {report["run"]: report for report in json.loads(out)["runs"]}


def confident_errors(run, evaluation):
    """``[(id, true, pred, score)]`` of every error, the most confident first (equal scores in
    cell order, then row)."""
    rows = []
    if run.kind == "multilabel":
        for label in range(evaluation.labels.shape[1]):
            for true, pred in ((0, 1), (1, 0)):
                _, found, score, _ = example_runs.cell_reference(run, evaluation, true, pred, label)
                rows += [(evaluation.ids[r], true, pred, s, label) for r, s in zip(found, score)]
    else:
        classes = 2 if run.kind == "binary" else len(run.class_names)
        for true in range(classes):
            for pred in range(classes):
                if true != pred:
                    _, found, score, _ = example_runs.cell_reference(run, evaluation, true, pred)
                    rows += [(evaluation.ids[r], true, pred, s, None) for r, s in zip(found, score)]
    return sorted(rows, key=lambda row: -row[3])


@pytest.mark.parametrize("name", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("step", [None, 1])
def test_json_lists_the_most_confident_errors_and_the_label_issues(capsys, written, name, step):
    logdir, runs = written
    run = runs[name]
    options = ["--examples", 7] + ([] if step is None else ["--step", step])
    found = json_report(capsys, logdir, *options)[name]["examples"]
    at = example_runs.STEPS - 1 if step is None else step
    assert (found["split"], found["step"]) == ("validation", at)
    evaluation = run.evaluations[("validation", at)]
    expected = confident_errors(run, evaluation)
    errors = found["errors"]
    assert errors["count"] == len(expected)
    listed = errors["examples"]
    assert len(listed) == min(7, len(expected))
    np.testing.assert_allclose(
        [e["score"] for e in listed], [r[3] for r in expected[: len(listed)]], atol=1e-7
    )
    by_id = {(r[0], r[4]): r for r in expected}
    for entry in listed:
        key = (entry["id"], entry.get("class"))
        _, true, pred, score, _ = by_id[key]
        assert (entry["true"], entry["pred"]) == (true, pred)
        assert entry["score"] == pytest.approx(score, abs=1e-7)
    issues = found["label_issues"]
    if name == "multilabel":
        assert issues is None and "single-label" in found["label_issues_skipped"]
        return
    probs, _ = example_runs.class_scores(run, evaluation)
    flagged = find_label_issues(
        evaluation.labels, probs.astype(np.float64), filter_by="confident_learning"
    )
    assert issues["count"] == flagged.sum()
    assert issues["share"] == pytest.approx(flagged.mean(), abs=1e-12)
    assert len(issues["examples"]) == min(7, flagged.sum())
    flagged_ids = {evaluation.ids[r] for r in np.flatnonzero(flagged)}
    assert {e["id"] for e in issues["examples"]} <= flagged_ids
    row_of = {key: row for row, key in enumerate(evaluation.ids)}
    given = [probs[row_of[e["id"]], evaluation.labels[row_of[e["id"]]]] for e in issues["examples"]]
    # The least likely given labels of all flagged ones, in order.
    least = np.sort(probs[np.flatnonzero(flagged), evaluation.labels[flagged]])[: len(given)]
    np.testing.assert_allclose(given, least, atol=1e-7)


def test_text_and_markdown_list_them_escaped(capsys, written):
    logdir, runs = written
    status, text, _ = run_cli(capsys, "report", logdir, "--examples", 3)
    assert status in (0, 1)
    block = text.split("run multiclass\n")[1].split("\n\n")[0]
    assert "examples at epoch 2 (validation):" in block
    assert "the 3 most confident of" in block and "label issues among 600 examples" in block
    assert "\x1b" not in text and "\\x1b[31m" in block  # control characters escaped
    assert "[image]" in text.split("run binary\n")[1].split("\n\n")[0]
    assert "examples not listed" in text.split("run plain\n")[1].split("\n\n")[0]
    assert "without example records" in text
    status, markdown, _ = run_cli(capsys, "report", logdir, "--examples", 3, "--format", "markdown")
    section = markdown.split("### Examples")[1]
    assert "#### Run multiclass, epoch 2 (validation)" in section
    assert "\\<b>bold\\</b>" in section and "\\| pipe \\`tick\\`" in section
    assert "\x1b" not in markdown and "\n newline" not in section
    without, _ = run_cli(capsys, "report", logdir)[1], None
    assert "examples at epoch" not in without


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--examples", "0"], "--examples must be between 1 and 1000"),
        (["--examples", "1001"], "--examples must be between 1 and 1000"),
        (["--examples", "x"], "invalid int value"),
        (["--examples", "3", "--format", "csv"], "--examples is listed by --format"),
        (["--examples", "3", "--format", "junit"], "--examples is listed by --format"),
    ],
)
def test_usage_errors(capsys, written, argv, message):
    status, out, err = run_cli(capsys, "report", written[0], *argv)
    assert status == 2 and out == "" and message in err
    assert len(err.strip().splitlines()) == 1


def test_step_without_examples_or_requirements_is_still_a_usage_error(capsys, written):
    status, _, err = run_cli(capsys, "report", written[0], "--step", "1")
    assert status == 2 and "--examples" in err


# -- the gate label_issue_share -------------------------------------------------------------


def share_results(capsys, logdir, expr, *options):
    runs = json_report(
        capsys, logdir, "--require", expr, "--run", "multiclass", "--run", "binary", *options
    )
    return {name: report["requirements"][0] for name, report in runs.items()}


@pytest.mark.parametrize("step", [None, 0])
def test_label_issue_share_is_cleanlabs_share_with_its_wilson_interval(capsys, written, step):
    logdir, runs = written
    options = [] if step is None else ["--step", step]
    results = share_results(capsys, logdir, "label_issue_share <= 0.05", *options)
    for name, result in results.items():
        evaluation = runs[name].evaluations[
            ("validation", example_runs.STEPS - 1 if step is None else step)
        ]
        probs, _ = example_runs.class_scores(runs[name], evaluation)
        flagged = find_label_issues(
            evaluation.labels, probs.astype(np.float64), filter_by="confident_learning"
        )
        assert result["value"] == pytest.approx(flagged.mean(), abs=1e-12)
        lower, upper = proportion_confint(flagged.sum(), flagged.size, method="wilson")
        assert (result["lower"], result["upper"]) == pytest.approx((lower, upper), abs=1e-12)
        assert result["passed"] is bool(flagged.mean() <= 0.05)
        assert result["class"] is None and result["applicable"]


def test_label_issue_share_gates_the_exit_status(capsys, written):
    logdir = written[0]
    select = ["--run", "multiclass", "--run", "binary"]
    values = share_results(capsys, logdir, "label_issue_share <= 1")
    shares = sorted(result["value"] for result in values.values())
    assert shares[0] < shares[-1]
    without, _, _ = run_cli(capsys, "report", logdir, *select)
    met = "label_issue_share <= %r" % shares[-1]
    assert run_cli(capsys, "report", logdir, *select, "--require", met)[0] == without
    missed = "label_issue_share < %r" % shares[-1]
    status, out, _ = run_cli(capsys, "report", logdir, *select, "--require", missed)
    assert status == 1 and "FAIL label_issue_share < " in out


@pytest.mark.parametrize("run", ["multilabel", "plain"])
def test_label_issue_share_of_a_run_without_them_is_a_usage_error(capsys, written, run):
    status, out, err = run_cli(
        capsys, "report", written[0], "--run", run, "--require", "label_issue_share <= 0.02"
    )
    assert status == 2 and out == ""
    assert "label_issue_share cannot be checked" in err and repr("label_issue_share <= 0.02") in err


def test_label_issue_share_takes_no_class(capsys, written):
    status, _, err = run_cli(
        capsys, "report", written[0], "--require", "label_issue_share[cat] <= 0.02"
    )
    assert status == 2 and "takes no [class]" in err


def test_report_formats_without_examples_are_unchanged():
    reports = [{"run": "r", "findings": [], "not_run": []}]
    assert "examples" not in report_formats.format_text(reports)
    assert "Examples" not in report_formats.format_markdown(reports)

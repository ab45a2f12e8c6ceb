"""`report --require`: the gate language against runs whose metrics scikit-learn recomputes from
the model outputs, Wilson intervals against statsmodels, baselines, and every usage error.
"""

import json
import operator

import gate_runs
import numpy as np
import pytest
from gate_runs import requirement_results, run_cli
from markdown_tables import render_html, render_markdown_tables
from sklearn import metrics as skm

from tb_metricsdiag import gates
from tb_metricsdiag.core import metrics

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """The binary runs 'fraud' and 'production' (the baseline) under one logdir."""
    runs = {name: gate_runs.RUNS[name] for name in ("fraud", "production")}
    return gate_runs.write_gate_logdir(tmp_path_factory.mktemp("binary"), runs)


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    runs = {"animals": gate_runs.RUNS["animals"]}
    return gate_runs.write_gate_logdir(tmp_path_factory.mktemp("multiclass"), runs, seed=1)


def reference(run, step):
    """``{metric: {class name or "macro" or None: value}}`` by scikit-learn."""
    y, scores, predicted = run.y_true, run.scores[step], run.predicted(step)
    labels = list(range(len(run.class_names)))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=np.nan
    )
    ap = [skm.average_precision_score(y == k, scores[:, k]) for k in labels]
    result = {
        "accuracy": {None: skm.accuracy_score(y, predicted)},
        "balanced_accuracy": {None: skm.balanced_accuracy_score(y, predicted)},
    }
    for name, values, average in (
        ("precision", precision, skm.precision_score),
        ("recall", recall, skm.recall_score),
        ("f1", f1, skm.f1_score),
    ):
        result[name] = dict(zip(run.class_names, values))
        result[name]["macro"] = average(
            y, predicted, labels=labels, average="macro", zero_division=np.nan
        )
    result["ap"] = dict(zip(run.class_names, ap))
    result["ap"]["macro"] = float(np.mean(ap))
    return result


def forms(run):
    """Every class form of every metric, with the class each result must name."""
    named = run.class_names[1]
    out = [("accuracy", None, [None]), ("balanced_accuracy", None, [None])]
    for metric in ("precision", "recall", "f1", "ap"):
        out += [
            (metric, named, [named]),
            (metric, "*", list(run.class_names)),
            (metric, "macro", ["macro"]),
        ]
        if len(run.class_names) == 2:  # no class: the positive class of a binary run
            out.append((metric, None, [run.class_names[1]]))
    return out


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
@pytest.mark.parametrize("step", [None, 1])
def test_every_metric_class_form_and_operator_agrees_with_sklearn(request, capsys, fixture, step):
    logdir = request.getfixturevalue(fixture)
    run = logdir.runs["fraud" if fixture == "binary" else "animals"]
    expected = reference(run, gate_runs.STEPS[-1] if step is None else step)
    exprs, checks = [], []
    for metric, cls, classes in forms(run):
        for op in OPS:
            for bound in (0.5, 0.9):
                spaced = "%s [ %s ]  %s %s" if len(exprs) % 2 else "%s[%s]%s%s"
                expr = (
                    "%s %s %s" % (metric, op, bound)
                    if cls is None
                    else spaced % (metric, cls, op, bound)
                )
                exprs.append(expr)
                checks += [
                    (expr, name, bool(OPS[op](expected[metric][name], bound))) for name in classes
                ]
    options = [] if step is None else ["--step", step]
    status, reports = requirement_results(capsys, logdir.logdir, exprs, *options)
    results = reports[run.name]["requirements"]
    assert [(r["expr"], r["class"]) for r in results] == [(e, c) for e, c, _ in checks]
    for result, (_, name, passed) in zip(results, checks):
        assert result["value"] == pytest.approx(expected[result["metric"]][name], abs=1e-12)
        assert result["passed"] is passed
        assert result["step"] == (2 if step is None else step)
    assert status == (0 if all(r["passed"] for r in results) else 1)


def test_equality_separates_the_strict_operators(binary, capsys):
    run = binary.runs["fraud"]
    value = skm.accuracy_score(run.y_true, run.predicted(2))
    exprs = ["accuracy %s %r" % (op, value) for op in OPS]
    _, reports = requirement_results(capsys, binary.logdir, exprs)
    assert [r["passed"] for r in reports["fraud"]["requirements"]] == [True, False, True, False]


def test_wilson_intervals_in_json_equal_statsmodels(binary, capsys):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    run = binary.runs["fraud"]
    _, reports = requirement_results(
        capsys, binary.logdir, ["precision[*] >= 0", "recall[*] >= 0", "accuracy >= 0"]
    )
    confusion = skm.confusion_matrix(run.y_true, run.predicted(2))
    trials = {
        "precision": confusion.sum(axis=0),
        "recall": confusion.sum(axis=1),
    }
    for result in reports["fraud"]["requirements"]:
        if result["metric"] == "accuracy":
            successes, n = np.trace(confusion), confusion.sum()
        else:
            k = run.class_names.index(result["class"])
            successes, n = confusion[k, k], trials[result["metric"]][k]
        lower, upper = proportion.proportion_confint(successes, n, method="wilson")
        assert (result["lower"], result["upper"]) == pytest.approx((lower, upper), abs=1e-12)
        assert result["lower"] <= result["value"] <= result["upper"]


def test_wilson_interval_function_and_edge_cases():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    successes = np.array([0, 1, 5, 9, 10, 0, 17, 3, 999])
    trials = np.array([10, 10, 10, 10, 10, 1, 17, 1000, 1000])
    lower, upper = metrics.wilson_interval(successes, trials)
    expected = proportion.proportion_confint(successes, trials, method="wilson")
    np.testing.assert_allclose(lower, expected[0], atol=1e-12)
    np.testing.assert_allclose(upper, expected[1], atol=1e-12)
    assert lower[0] == 0.0 and upper[4] == 1.0 and upper[6] == 1.0
    # Hand-checked: 15 of 17, z = 1.96 -> [0.6566, 0.9671].
    assert metrics.wilson_interval(15, 17) == pytest.approx((0.65664, 0.96712), abs=1e-5)
    assert all(np.isnan(metrics.wilson_interval(0, 0)))


def test_by_interval_fails_only_when_the_whole_interval_misses(binary, capsys):
    run = binary.runs["fraud"]
    confusion = skm.confusion_matrix(run.y_true, run.predicted(2))
    lower, upper = metrics.wilson_interval(confusion[1, 1], confusion[1].sum())
    value = confusion[1, 1] / confusion[1].sum()
    above = round((value + upper) / 2, 6)  # above the value, inside the interval
    below = round((value + lower) / 2, 6)
    beyond = round(min(upper + 0.01, 1.0), 6)
    exprs = [
        "recall[fraud] >= %s" % above,
        "recall[fraud] <= %s" % below,
        "recall[fraud] >= %s" % beyond,
    ]
    status, plain = requirement_results(capsys, binary.logdir, exprs)
    assert [r["passed"] for r in plain["fraud"]["requirements"]] == [False, False, False]
    assert status == 1
    status, lenient = requirement_results(capsys, binary.logdir, exprs, "--by-interval")
    assert [r["passed"] for r in lenient["fraud"]["requirements"]] == [True, True, False]
    assert [r["judged_on"] for r in lenient["fraud"]["requirements"]] == ["upper", "lower", "upper"]
    assert all("judged_on" not in r for r in plain["fraud"]["requirements"])
    assert status == 1


def test_baseline_run_values_and_relative_bounds(binary, capsys):
    expected = reference(binary.runs["fraud"], 2)
    base = reference(binary.runs["production"], 2)
    exprs = [
        "recall[fraud] >= baseline - 0.02",
        "f1[*] > baseline",
        "precision[macro] <= baseline + 0.1",
        "accuracy >= 0.5",
    ]
    status, out, err = run_cli(
        capsys,
        "report",
        binary.logdir,
        "--format",
        "json",
        "--baseline",
        "production",
        *[arg for expr in exprs for arg in ("--require", expr)],
    )
    document = json.loads(out)
    assert document["baseline"] == {"run": "production", "step": 2}
    (report,) = document["runs"]  # the baseline is compared with, not checked
    assert report["run"] == "fraud"
    offsets = {exprs[0]: -0.02, exprs[1]: 0.0, exprs[2]: 0.1}
    for result in report["requirements"]:
        metric, name = result["metric"], result["class"]
        assert result["baseline"] == pytest.approx(base[metric][name], abs=1e-12)
        assert result["value"] == pytest.approx(expected[metric][name], abs=1e-12)
        bound = base[metric][name] + offsets[result["expr"]] if result["expr"] in offsets else 0.5
        assert result["bound"] == pytest.approx(bound, abs=1e-12)
        assert result["passed"] is bool(OPS[result["op"]](expected[metric][name], bound))
    failed = not all(r["passed"] for r in report["requirements"])
    assert status == int(failed)


def test_baseline_may_be_another_logdir(binary, multiclass, capsys, tmp_path):
    path = binary.logdir + "/production"
    status, reports = requirement_results(
        capsys, binary.logdir, ["recall >= baseline - 0.5"], "--baseline", path
    )
    assert set(reports) == {"fraud", "production"}
    expected = reference(binary.runs["production"], 2)["recall"]["fraud"]
    assert reports["fraud"]["requirements"][0]["baseline"] == pytest.approx(expected)


def test_baseline_errors_exit_2(binary, capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "report", binary.logdir, "--require", "f1 >= 0", "--baseline", binary.logdir
    )
    assert status == 2 and "must hold one run with validation counts, it holds 2" in err
    import shutil

    shutil.copytree(binary.logdir + "/production", tmp_path / "production")
    status, _, err = run_cli(
        capsys, "report", tmp_path, "--require", "f1 >= 0", "--baseline", "production"
    )
    assert status == 2 and "no run besides the baseline production" in err


def test_failed_requirement_exits_1_whatever_fail_on_says(binary, capsys):
    for fail_on in ("error", "warning", "info"):
        status, _, _ = run_cli(
            capsys, "report", binary.logdir, "--require", "recall[fraud] > 1", "--fail-on", fail_on
        )
        assert status == 1
    status, out, _ = run_cli(capsys, "report", binary.logdir, "--require", "recall[fraud] >= 0")
    assert status == 0 and "PASS recall[fraud] >= 0: " in out


@pytest.mark.parametrize(
    "args, quoted, hint",
    [
        (["--require", "recall[fraud] 0.9"], "recall[fraud] 0.9", "METRIC[CLASS] OP NUMBER"),
        (["--require", "recall[fraud >= 0.9"], "recall[fraud >= 0.9", "METRIC[CLASS]"),
        (["--require", "recall[fraud] >="], "recall[fraud] >=", "number is missing"),
        (["--require", "recall[fraud] >= high"], "recall[fraud] >= high", "not a number"),
        (["--require", "recall[fraud] >= nan"], "recall[fraud] >= nan", "finite"),
        (["--require", "recall[fraud] >= 90"], "recall[fraud] >= 90", "write 0.9, not 90"),
        (["--require", "recal[fraud] >= 0.9"], "recal[fraud] >= 0.9", "closest: recall"),
        (["--require", "F1 >= 0.9"], "F1 >= 0.9", "closest: f1"),
        (["--require", "recall[frod] >= 0.9"], "recall[frod] >= 0.9", "closest: 'fraud'"),
        (["--require", "recall[] >= 0.9"], "recall[] >= 0.9", "empty class"),
        (["--require", "accuracy[fraud] >= 0.9"], "accuracy[fraud] >= 0.9", "takes no [class]"),
        (["--require", "recall >= baseline"], "recall >= baseline", "--baseline RUN"),
        (["--require", "recall >= 0.5", "--step", "7"], "--step 7", "at step 7"),
        (
            ["--require", "f1 >= 0.5", "--baseline", "prod"],
            "--baseline prod",
            "closest: production",
        ),
        (["--step", "1"], "--step", "give at least one"),
    ],
)
def test_usage_errors_exit_2_quoting_the_expression(binary, capsys, args, quoted, hint):
    status, out, err = run_cli(capsys, "report", binary.logdir, *args)
    assert status == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert quoted in err and hint in err


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_ece_equals_torchmetrics_on_the_written_scores(request, capsys, torchmetrics, fixture):
    logdir = request.getfixturevalue(fixture)
    name = "fraud" if fixture == "binary" else "animals"
    run = logdir.runs[name]
    _, runs = requirement_results(capsys, logdir.logdir, ["ece < 0.5"], "--step", "1")
    (result,) = runs[name]["requirements"]
    scores = run.scores[1]
    target = run.y_true.astype(np.int64)
    if len(run.class_names) == 2:
        expected = torchmetrics("BinaryCalibrationError", (scores[:, 1], target), n_bins=15)
    else:
        expected = torchmetrics(
            "MulticlassCalibrationError", (scores, target), num_classes=3, n_bins=15
        )
    assert result["value"] == pytest.approx(expected, abs=1e-6)
    assert result["passed"] == (result["value"] < 0.5)


def test_ece_on_a_run_without_calibration_bins_is_a_usage_error(capsys, tmp_path):
    import tensorflow as tf

    from tb_metricsdiag import summary

    y = np.array([0, 1, 1, 0, 1])
    with tf.summary.create_file_writer(str(tmp_path / "old")).as_default():
        summary.write_confusion_matrix(skm.confusion_matrix(y, 1 - y), step=0)
    status, _, err = run_cli(capsys, "report", tmp_path, "--require", "ece < 0.05")
    assert status == 2 and "'ece < 0.05'" in err and "no calibration data" in err


def test_per_class_metric_without_class_on_more_classes_is_a_usage_error(multiclass, capsys):
    status, _, err = run_cli(capsys, "report", multiclass.logdir, "--require", "recall >= 0.5")
    assert status == 2 and "'recall >= 0.5'" in err and "recall[*] or recall[macro]" in err
    status, _, err = run_cli(capsys, "report", multiclass.logdir, "--require", "f1[dgo] > 0.5")
    assert status == 2 and "closest: 'dog'" in err


def test_a_run_without_validation_counts_is_skipped_and_said(binary, capsys, tmp_path):
    import shutil

    import tensorflow as tf

    shutil.copytree(binary.logdir + "/fraud", tmp_path / "fraud")
    with tf.summary.create_file_writer(str(tmp_path / "curves_only")).as_default():
        tf.summary.scalar("epoch_loss", 0.5, step=0)
    status, reports = requirement_results(capsys, str(tmp_path), ["accuracy >= 0"])
    assert status == 0
    assert "requirements" in reports["fraud"]
    if "curves_only" in reports:  # a run TensorBoard lists without metricsdiag data
        assert reports["curves_only"]["requirements_skipped"] == "no validation counts"


# -- the pure functions -------------------------------------------------------------------


def test_undefined_values_fail_and_are_null():
    confusion = np.array([[5, 0, 0], [2, 3, 0], [4, 0, 0]])  # class c never predicted
    inputs = gates.GateInputs("r", 3, ["a", "b", "c"], confusion)
    (result,) = gates.evaluate(gates.parse_requirement("precision[c] >= 0"), inputs)
    assert result["value"] is None and result["passed"] is False
    assert result["lower"] is None and result["upper"] is None
    (macro,) = gates.evaluate(gates.parse_requirement("precision[macro] >= 0"), inputs)
    expected = skm.precision_score(
        [0] * 5 + [1] * 5 + [2] * 4,
        [0] * 5 + [0, 0, 1, 1, 1] + [0] * 4,
        average="macro",
        zero_division=np.nan,
    )
    assert macro["value"] == pytest.approx(expected) and macro["passed"]


def test_ece_plugs_in_when_a_run_has_it():
    inputs = gates.GateInputs("r", 0, ["a", "b"], np.eye(2, dtype=int), ece=0.03)
    (result,) = gates.evaluate(gates.parse_requirement("ece < 0.05"), inputs)
    assert result["value"] == 0.03 and result["passed"] and result["class"] is None
    inputs.ece = None
    with pytest.raises(gates.GateError, match="no calibration data"):
        gates.evaluate(gates.parse_requirement("ece < 0.05"), inputs)


def test_ap_without_threshold_counts_is_a_usage_error():
    inputs = gates.GateInputs("r", 0, ["a", "b"], np.eye(2, dtype=int))
    with pytest.raises(gates.GateError, match="'ap >= 0.5'.*no average precision"):
        gates.evaluate(gates.parse_requirement("ap >= 0.5"), inputs)


def test_parse_accepts_spaces_and_relative_bounds():
    requirement = gates.parse_requirement("  recall [ big cat ]   >=   baseline   -   0.02 ")
    assert (requirement.metric, requirement.cls, requirement.op) == ("recall", "big cat", ">=")
    assert requirement.relative and requirement.number == pytest.approx(-0.02)
    assert gates.parse_requirement("f1[*]>=0.6").cls == gates.EVERY_CLASS
    assert not gates.parse_requirement("ap[macro] > 0.8").relative


# -- Markdown and JUnit --------------------------------------------------------------------


GATE_EXPRS = ["recall[*] >= 0.9", "f1[macro] > 0.5", "precision >= 0.99", "accuracy < 0.5"]


def test_markdown_tables_match_the_json_worst_first(binary, capsys):
    argv = ["report", binary.logdir, "--baseline", "production"]
    argv += [arg for expr in GATE_EXPRS for arg in ("--require", expr)]
    status_md, markdown, _ = run_cli(capsys, *argv, "--format", "markdown")
    status_json, out, _ = run_cli(capsys, *argv, "--format", "json")
    assert status_md == status_json == 1
    results = json.loads(out)["runs"][0]["requirements"]
    assert markdown.startswith("## tb-metricsdiag report\n")
    assert (
        "requirements: %d passed, %d failed"
        % (
            sum(r["passed"] for r in results),
            sum(not r["passed"] for r in results),
        )
        in markdown
    )
    rows = render_markdown_tables(markdown)["Requirements"]
    assert len(rows) == len(results)
    verdicts = [row["result"] for row in rows]
    assert verdicts == sorted(verdicts, key=lambda v: v != "**FAIL**")  # failures first
    failed = [r for r in results if not r["passed"]]
    worst = sorted(failed, key=gates.margin)
    assert [(row["requirement"], row["class"]) for row in rows[: len(failed)]] == [
        (r["expr"], r["class"] or "") for r in worst
    ]
    by_key = {(r["expr"], r["class"] or ""): r for r in results}
    for row in rows:
        result = by_key[(row["requirement"], row["class"])]
        assert row["run"] == "fraud" and row["step"] == "2"
        assert float(row["value"]) == pytest.approx(result["value"], abs=5e-4)
        assert float(row["baseline"]) == pytest.approx(result["baseline"], abs=5e-4)
        if "lower" in result:
            lower, upper = row["95% interval"].split("–")
            assert float(lower) == pytest.approx(result["lower"], abs=5e-4)
            assert float(upper) == pytest.approx(result["upper"], abs=5e-4)
    assert render_markdown_tables(markdown).get("Findings") is None and "No findings." in markdown


def hostile_reports():
    finding = {
        "rule": "accuracy_paradox",
        "step": 3,
        "title": "class 'a|b' is *missed* <script>",
        "detail": "line\nbreak",
        "evidence": {},
        "suggestion": "fix [it](http://x)",
    }
    findings = [
        dict(finding, severity="info"),
        dict(finding, severity="error", rule="divergence", step=None),
        dict(finding, severity="warning"),
    ]
    result = {
        "expr": "recall[a|b] >= 0.9",
        "metric": "recall",
        "class": "a|b",
        "op": ">=",
        "step": 3,
        "bound": 0.9,
        "value": 0.5,
        "passed": False,
        "applicable": True,
        "lower": 0.2,
        "upper": 0.8,
    }
    return [
        {"run": "run|one\n<b>", "findings": findings, "requirements": [result]},
        {"run": "other", "findings": [], "requirements_skipped": "no validation counts"},
    ]


def test_markdown_escapes_run_text_and_sorts_findings_by_severity():
    from tb_metricsdiag import report_formats

    markdown = report_formats.format_markdown(hostile_reports())
    html = render_html(markdown)
    assert "<script>" not in html and "<b>" not in html and "<a " not in html
    tables = render_markdown_tables(markdown)
    assert [row["severity"] for row in tables["Findings"]] == ["error", "warning", "info"]
    assert tables["Findings"][1]["title"] == "class 'a|b' is *missed* <script>"
    assert tables["Findings"][0]["epoch"] == "" and tables["Findings"][1]["epoch"] == "3"
    (row,) = tables["Requirements"]
    assert row["run"] == "run|one\\x0a<b>" and row["requirement"] == "recall[a|b] >= 0.9"
    assert "run other not checked: no validation counts" in markdown


def test_junit_has_one_case_per_requirement_and_error_finding():
    import xml.etree.ElementTree as ElementTree

    from tb_metricsdiag import report_formats

    for fail_on, finding_cases in (("error", 1), ("info", 3)):
        xml = report_formats.format_junit(hostile_reports(), fail_on)
        root = ElementTree.fromstring(xml.encode("utf-8"))
        assert root.tag == "testsuites"
        suites = root.findall("testsuite")
        assert [suite.get("name") for suite in suites] == ["run|one\\x0a<b>", "other"]
        for element in [root, *suites]:
            assert {"name", "tests", "failures", "errors", "time"} <= set(element.attrib)
        cases = suites[0].findall("testcase")
        assert len(cases) == 1 + finding_cases
        for case in root.iter("testcase"):
            assert {"name", "classname", "time"} <= set(case.attrib)
            (failure,) = case.findall("failure")
            assert failure.get("message") and failure.get("type")
        assert cases[0].get("name") == "recall[a|b] >= 0.9"
        assert cases[0].find("failure").get("type") == "requirement"
        assert suites[0].get("tests") == suites[0].get("failures") == str(1 + finding_cases)
        assert root.get("tests") == str(1 + finding_cases) and suites[1].get("tests") == "0"


def test_junit_of_a_real_gate(binary, capsys):
    import xml.etree.ElementTree as ElementTree

    argv = ["report", binary.logdir, "--format", "junit", "--require", "recall[*] >= 0.9"]
    status, out, _ = run_cli(capsys, *argv)
    _, reports = requirement_results(capsys, binary.logdir, ["recall[*] >= 0.9"])
    results = reports["fraud"]["requirements"] + reports["production"]["requirements"]
    cases = ElementTree.fromstring(out).findall("testsuite/testcase")
    assert len(cases) == len(results) == 4
    assert [case.find("failure") is None for case in cases] == [r["passed"] for r in results]
    assert status == (0 if all(r["passed"] for r in results) else 1)


def test_confusion_view_carries_the_per_class_wilson_intervals():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    from tb_metricsdiag import run_records
    from tb_metricsdiag.backend import views

    confusion = np.array([[50, 3, 0], [4, 15, 2], [0, 0, 0]])
    view = views.confusion_view(
        "r", run_records.SplitEvaluation("validation", 1, ["a", "b", "c"], confusion)
    )
    for k, entry in enumerate(view["per_class"][:2]):
        for key, n in (("precision", confusion[:, k].sum()), ("recall", confusion[k].sum())):
            expected = proportion.proportion_confint(confusion[k, k], n, method="wilson")
            assert entry[key + "_interval"] == pytest.approx(list(expected), abs=1e-12)
    # Class c: predicted twice, never right (precision 0 of 2); no example (recall undefined).
    assert view["per_class"][2]["precision_interval"][0] == 0.0
    assert view["per_class"][2]["recall_interval"] == [None, None]
    json.dumps(view, allow_nan=False)

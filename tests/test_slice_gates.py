"""``report --require METRIC[CLASS]@KEY=VALUE`` and ``@KEY=*`` end to end: runs written by
`MetricsDiagWriter` with ``groups=``, every slice figure recomputed by scikit-learn (AP on the
scores as the threshold grid sees them, ECE by TorchMetrics) on that slice's rows, Wilson
intervals against statsmodels; skipped slices, not applicable runs, usage errors, every
format; and the rule ``weak_slice`` on the same runs. The parser and the pure evaluation on
hand-built inputs are at the end.
"""

import operator
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from gate_runs import requirement_results, run_cli
from markdown_tables import render_html, render_markdown_tables
from sklearn import metrics as skm

from tb_metricsdiag import MetricsDiagWriter, gates, report_formats
from tb_metricsdiag.core import counting

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
CLASSES = ["cat", "dog", "bird"]
STEPS = 2
HOSTILE = "a|b `c` <b>*x*</b> &amp; [l](u)"  # a group value is user text
# country -> rows; "IN" is the weak slice (dog recalled far less), "XS" below 30 rows.
COUNTRIES = {"BR": 500, "DE": 400, "IN": 300, "XS": 18, HOSTILE: 80}


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def simulate(seed, weak=True):
    """``(y, probabilities, groups)``: a 3-class task; in country IN, dog's logit is not
    raised, so dog is recalled far less there.
    """
    rng = np.random.default_rng(seed)
    country = np.repeat(np.array(list(COUNTRIES), dtype=object), list(COUNTRIES.values()))
    n = len(country)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    boost = np.full(n, 2.5)
    if weak:
        boost[(country == "IN") & (y == 1)] = 0.0
    logits[np.arange(n), y] += boost
    device = rng.choice(np.array(["phone", "desktop"], dtype=object), size=n)
    return y, _softmax(logits).astype(np.float32), {"country": list(country), "device": device}


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    """Runs 'shop' and 'previous' (with groups), 'plain' (without); ``truth[run]`` holds the
    last step's ``(y, probabilities, groups)``.
    """
    logdir = str(tmp_path_factory.mktemp("slice_gates"))
    truth = {}
    for run, seed, groups_given in (
        ("shop", 0, True),
        ("previous", 10, True),
        ("plain", 20, False),
    ):
        with MetricsDiagWriter(os.path.join(logdir, run), class_names=CLASSES) as writer:
            for step in range(STEPS):
                y, p, groups = simulate(seed + step, weak=run == "shop")
                writer.add_evaluation(y, p, step, groups=groups if groups_given else None)
        truth[run] = (y, p, groups)
    return logdir, truth


def grid_scores(p):
    """The scores as the threshold counts see them: each lowered to the largest grid
    threshold at or under it (a score is above a threshold exactly when its lowered one is).
    """
    grid = counting.default_thresholds().astype(np.float32)
    return grid[np.searchsorted(grid, p, side="right") - 1]


def reference(truth, key, value, metric, cls):
    """scikit-learn's figure of ``metric`` (class ``cls``: a name, "macro" or None) on the
    rows of the slice ``key=value``.
    """
    y, p, groups = truth
    rows = np.array([str(v) for v in groups[key]], dtype=object) == value
    y, p = y[rows], p[rows]
    predicted = p.argmax(axis=1)
    labels = [0, 1, 2]
    if metric == "accuracy":
        return skm.accuracy_score(y, predicted)
    if metric == "balanced_accuracy":
        return skm.balanced_accuracy_score(y, predicted)
    if metric == "ap":
        scores = grid_scores(p)
        per_class = [skm.average_precision_score(y == k, scores[:, k]) for k in labels]
        return np.mean(per_class) if cls == "macro" else per_class[CLASSES.index(cls)]
    score = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    if cls == "macro":
        return score[metric](y, predicted, labels=labels, average="macro", zero_division=np.nan)
    per_class = score[metric](y, predicted, labels=labels, average=None, zero_division=np.nan)
    return per_class[CLASSES.index(cls)]


EXPRS = [
    "recall[*]@country=* >= 0.5",
    "accuracy@country=BR >= 0.6",
    "precision[dog] @ country = IN < 0.99",
    "f1[macro]@device=phone > 0.5",
    "balanced_accuracy@country=* >= 0.7",
    "ap[cat]@country=DE >= 0.5",
    "ap[macro]@device=desktop >= 0.5",
]


def test_slice_requirements_agree_with_sklearn_on_the_slice_rows(sliced, capsys):
    logdir, truth = sliced
    status, runs = requirement_results(capsys, logdir, EXPRS)
    results = runs["shop"]["requirements"]
    checked = [r for r in results if r["applicable"]]
    expected_count = 3 * 4 + 1 + 1 + 1 + 4 + 1 + 1  # recall[*] and balanced over 4 big slices
    assert len(checked) == expected_count
    for result in checked:
        where = result["slice"]
        value = reference(
            truth["shop"], where["key"], where["value"], result["metric"], result["class"]
        )
        assert result["value"] == pytest.approx(value, abs=1e-9), result
        assert result["passed"] is bool(OPS[result["op"]](value, result["bound"]))
        assert where["support"] == COUNTRIES.get(where["value"], where["support"])
        assert result["step"] == STEPS - 1
    # IN is the weak slice: its recall of dog fails while the others pass.
    recall = {(r["slice"]["value"], r["class"]): r for r in results if r["expr"] == EXPRS[0]}
    assert recall[("IN", "dog")]["passed"] is False
    assert recall[("BR", "dog")]["passed"] is True
    assert status == 1


def test_slice_intervals_equal_statsmodels(sliced, capsys):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    logdir, truth = sliced
    _, runs = requirement_results(
        capsys, logdir, ["recall[*]@country=IN >= 0", "precision[*]@device=* >= 0"]
    )
    y, p, groups = truth["shop"]
    predicted = p.argmax(axis=1)
    for result in runs["shop"]["requirements"]:
        key, value = result["slice"]["key"], result["slice"]["value"]
        rows = np.array([str(v) for v in groups[key]], dtype=object) == value
        k = CLASSES.index(result["class"])
        hits = ((y == k) & (predicted == k))[rows].sum()
        trials = ((y if result["metric"] == "recall" else predicted) == k)[rows].sum()
        lower, upper = proportion.proportion_confint(hits, trials, method="wilson")
        assert (result["lower"], result["upper"]) == pytest.approx((lower, upper), abs=1e-12)


def test_ece_of_a_slice_equals_torchmetrics(sliced, capsys, torchmetrics):
    logdir, truth = sliced
    _, runs = requirement_results(capsys, logdir, ["ece@country=BR < 0.5"])
    (result,) = runs["shop"]["requirements"]
    y, p, groups = truth["shop"]
    rows = np.array(groups["country"], dtype=object) == "BR"
    expected = torchmetrics(
        "MulticlassCalibrationError",
        (p[rows], y[rows].astype(np.int64)),
        num_classes=3,
        n_bins=15,
    )
    assert result["value"] == pytest.approx(expected, abs=1e-6)


def test_small_slices_are_skipped_and_min_slice_size_lowers_the_floor(sliced, capsys):
    logdir, _ = sliced
    status, runs = requirement_results(capsys, logdir, ["accuracy@country=* >= 0"])
    by_value = {r["slice"]["value"]: r for r in runs["shop"]["requirements"]}
    small = by_value["XS"]
    assert small["skipped"] is True and small["passed"] is None and small["applicable"] is False
    assert (
        small["slice"]["support"] == 18
        and "fewer than the minimum slice size 30" in small["reason"]
    )
    assert all(by_value[v]["passed"] for v in ("BR", "DE", "IN", HOSTILE))
    assert status == 0  # skipped is no failure
    _, runs = requirement_results(
        capsys, logdir, ["accuracy@country=* >= 0"], "--min-slice-size", "10"
    )
    assert all(r["passed"] for r in runs["shop"]["requirements"])
    # A named slice is checked whatever its size.
    _, runs = requirement_results(capsys, logdir, ["accuracy@country=XS >= 0"])
    assert runs["shop"]["requirements"][0]["passed"] is True


def test_a_run_without_slices_is_not_applicable(sliced, capsys):
    logdir, _ = sliced
    status, runs = requirement_results(capsys, logdir, ["accuracy@country=BR >= 0"])
    (result,) = runs["plain"]["requirements"]
    assert result["applicable"] is False and result["passed"] is None
    assert result["reason"] == "run has no slices at step 1"
    assert status == 0


def test_baseline_compares_the_same_slice(sliced, capsys):
    logdir, truth = sliced
    status, runs = requirement_results(
        capsys,
        logdir,
        ["recall[dog]@country=* >= baseline - 0.1"],
        "--baseline",
        "previous",
        "--run",
        "shop",
    )
    for result in runs["shop"]["requirements"]:
        if result.get("skipped"):
            continue
        value = result["slice"]["value"]
        base = reference(truth["previous"], "country", value, "recall", "dog")
        assert result["baseline"] == pytest.approx(base, abs=1e-9)
        assert result["bound"] == pytest.approx(base - 0.1, abs=1e-9)
    verdicts = {r["slice"]["value"]: r["passed"] for r in runs["shop"]["requirements"]}
    assert verdicts["IN"] is False and verdicts["BR"] is True and status == 1


@pytest.mark.parametrize(
    "args, quoted, hint",
    [
        (
            ["--require", "recall[dog]@contry=BR >= 0.5"],
            "recall[dog]@contry=BR >= 0.5",
            "closest: 'country'",
        ),
        (
            ["--require", "recall[dog]@country=BZ >= 0.5"],
            "recall[dog]@country=BZ >= 0.5",
            "closest: 'BR'",
        ),
        (
            ["--require", "recall[dog]@zzz=1 >= 0.5"],
            "recall[dog]@zzz=1 >= 0.5",
            "the keys are 'country', 'device'",
        ),
        (
            ["--require", "recall[dgo]@country=BR >= 0.5"],
            "recall[dgo]@country=BR >= 0.5",
            "closest: 'dog'",
        ),
        (
            ["--require", "recall[dog]@country >= 0.5"],
            "recall[dog]@country >= 0.5",
            "not KEY=VALUE",
        ),
        (["--require", "recall[dog]@country= >= 0.5"], "recall[dog]@country= >= 0.5", "@country=*"),
        (
            ["--require", "recall[dog]@country=BR 0.5"],
            "recall[dog]@country=BR 0.5",
            "METRIC[CLASS]@KEY=VALUE",
        ),
        (
            ["--require", "label_issue_share@country=BR <= 0.1"],
            "label_issue_share@country=BR <= 0.1",
            "not recorded per slice",
        ),
        (
            ["--require", "accuracy@country=* > 0", "--min-slice-size", "0"],
            "--min-slice-size",
            "at least 1",
        ),
        (
            ["--require", "accuracy@country=BR > 0", "--min-slice-size", "5"],
            "--min-slice-size",
            "@KEY=*",
        ),
        (
            ["--require", "accuracy@country=BR > baseline", "--baseline", "plain"],
            "accuracy@country=BR > baseline",
            "baseline run 'plain' has no slice country='BR'",
        ),
    ],
)
def test_slice_usage_errors_exit_2_quoting_the_expression(sliced, capsys, args, quoted, hint):
    logdir, _ = sliced
    status, out, err = run_cli(capsys, "report", logdir, *args)
    assert status == 2 and out == "" and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert quoted in err and hint in err, err


def test_text_markdown_and_junit_show_slices_and_skipped_ones(sliced, capsys):
    logdir, _ = sliced
    argv = ["report", logdir, "--run", "shop", "--require", "recall[dog]@country=* >= 0.5"]
    status, text, _ = run_cli(capsys, *argv)
    assert status == 1
    assert "FAIL recall[dog]@country=* >= 0.5 [country=IN]: " in text
    assert "on 300 rows" in text
    assert (
        "SKIP recall[dog]@country=* >= 0.5 [country=XS]: skipped, slice country=XS has 18 rows,"
        " fewer than the minimum slice size 30" in text
    )
    assert "requirements: 3 passed, 1 failed, 1 slices skipped" in text

    _, markdown, _ = run_cli(capsys, *argv, "--format", "markdown")
    html = render_html(markdown)
    assert "<b>" not in html and "<a " not in html and "<code>" not in html
    rows = render_markdown_tables(markdown)["Requirements"]
    by_slice = {row["slice"]: row for row in rows}
    assert by_slice["country=IN"]["result"] == "FAIL" and by_slice["country=IN"]["rows"] == "300"
    assert by_slice["country=" + HOSTILE]["result"] == "pass"  # the value shown as it is
    assert by_slice["country=XS"]["result"] == "skipped"
    assert by_slice["country=XS"]["value"].startswith("skipped: slice country=XS has 18 rows")

    _, xml, _ = run_cli(capsys, *argv, "--format", "junit")
    cases = {case.get("name"): case for case in ElementTree.fromstring(xml).iter("testcase")}
    failed = cases["recall[dog]@country=* >= 0.5 [country=IN]"]
    assert failed.find("failure") is not None
    skipped = cases["recall[dog]@country=* >= 0.5 [country=XS]"]
    assert skipped.find("skipped").get("message").startswith("skipped: slice country=XS")
    assert cases["recall[dog]@country=* >= 0.5 [country=%s]" % HOSTILE].find("failure") is None
    suite = ElementTree.fromstring(xml).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "1")


def test_weak_slice_fires_on_the_written_run(sliced, capsys):
    logdir, truth = sliced
    status, runs = requirement_results(capsys, logdir, [])
    [found] = [f for f in runs["shop"]["findings"] if f["rule"] == "weak_slice"]
    evidence = found["evidence"]
    assert (evidence["key"], evidence["value"], evidence["class"]) == ("country", "IN", "dog")
    assert evidence["slice"]["figure"] == pytest.approx(
        reference(truth["shop"], "country", "IN", evidence["metric"], "dog"), abs=1e-12
    )
    assert evidence["slice"]["rows"] == 300
    assert not [f for f in runs["previous"]["findings"] if f["rule"] == "weak_slice"]
    [not_run] = [n for n in runs["plain"]["not_run"] if n["rule"] == "weak_slice"]
    assert not_run["reason"] == "no validation slices recorded" and "groups=" in not_run["how"]


# -- the parser and the pure evaluation -----------------------------------------------------


@pytest.mark.parametrize(
    "expr, cls, key, value, op",
    [
        ("recall[a]@k=v >= 0.9", "a", "k", "v", ">="),
        ("recall @ k = a>b > 0.5", None, "k", "a>b", ">"),  # a value may hold an operator
        ("recall[a]@k=x] >= 0.9", "a", "k", "x]", ">="),
        ("recall[a]b]@k=v>=0.9", "a]b", "k", "v", ">="),
        ("recall[u@x=1] >= 0.5", "u@x=1", None, None, ">="),  # no slice: a class with "@"
        ("f1[*]@k=* < 0.5", "*", "k", "*", "<"),
        ("accuracy@k=x=y <= 1", None, "k", "x=y", "<="),  # split at the first "="
    ],
)
def test_parse_slices(expr, cls, key, value, op):
    requirement = gates.parse_requirement(expr)
    assert (requirement.cls, requirement.slice_key, requirement.slice_value, requirement.op) == (
        cls,
        key,
        value,
        op,
    )


def _inputs(confusion, slices=None):
    return gates.GateInputs("r", 3, ["a", "b"], np.asarray(confusion), slices=slices)


def test_evaluate_on_hand_built_slices():
    small = _inputs([[5, 1], [2, 4]])  # 12 rows
    large = _inputs([[40, 10], [5, 45]])
    run = _inputs([[45, 11], [7, 49]], {"k": {"small": small, "large": large}})
    results = gates.evaluate(gates.parse_requirement("recall[b]@k=* >= 0.8"), run)
    assert [r["slice"] for r in results] == [
        {"key": "k", "value": "large", "support": 100},
        {"key": "k", "value": "small", "support": 12},
    ]
    assert results[0]["value"] == pytest.approx(0.9) and results[0]["passed"] is True
    assert results[1]["skipped"] is True and results[1]["passed"] is None
    results = gates.evaluate(gates.parse_requirement("recall[b]@k=* >= 0.8"), run, min_slice_size=5)
    assert results[1]["value"] == pytest.approx(4 / 6) and results[1]["passed"] is False
    (missing,) = gates.evaluate(gates.parse_requirement("recall[b]@k=none >= 0.8"), run)
    assert missing["applicable"] is False and missing["reason"] == "run has no slice k='none'"
    (other,) = gates.evaluate(gates.parse_requirement("recall[b]@j=x >= 0.8"), run)
    assert other["reason"] == "run has no slices by key 'j'"
    with pytest.raises(gates.GateError, match="closest: 'small'"):
        gates.check_applicable(
            [gates.parse_requirement("recall[b]@k=smal >= 0.8")],
            [dict(missing, expr="recall[b]@k=smal >= 0.8")],
            {"a", "b"},
            {"k": {"small", "large"}},
        )


def test_report_formats_escape_slice_values():
    hostile = _inputs([[20, 5], [10, 10]])  # 45 rows; recall of a: 0.8
    run = _inputs([[60, 5], [10, 30]], {"k": {"x|y\n<i>": hostile}})
    (result,) = gates.evaluate(gates.parse_requirement("recall[a]@k=* >= 0.9"), run)
    assert result["passed"] is False and result["slice"]["support"] == 45
    reports = [{"run": "r", "findings": [], "requirements": [result]}]
    rows = render_markdown_tables(report_formats.format_markdown(reports))["Requirements"]
    assert rows[0]["slice"] == "k=x|y\\x0a<i>"
    text = report_formats.format_text(reports)
    assert "[k=x|y\\x0a<i>]" in text and "\n<i>" not in text
    xml = report_formats.format_junit(reports)
    (case,) = ElementTree.fromstring(xml).iter("testcase")
    assert case.get("name") == "recall[a]@k=* >= 0.9 [k=x|y\\x0a<i>]"


def test_step_reads_the_slices_of_that_step(sliced, capsys):
    logdir, _ = sliced
    _, runs = requirement_results(capsys, logdir, ["recall[dog]@country=DE >= 0"], "--step", "0")
    (result,) = runs["shop"]["requirements"]
    assert result["step"] == 0
    expected = reference(simulate(0), "country", "DE", "recall", "dog")  # shop's step 0
    assert result["value"] == pytest.approx(expected, abs=1e-12)


def test_multilabel_slices_count_rows_and_subset_accuracy():
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 1]])
    p = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [0, 1]])

    def inputs(rows, slices=None):
        matrices = skm.multilabel_confusion_matrix(y[rows], p[rows]).astype(np.int64)
        exact = int((y[rows] == p[rows]).all(axis=1).sum())
        return gates.GateInputs("r", 0, ["a", "b"], matrices, exact_matches=exact, slices=slices)

    run = inputs(slice(None), {"k": {"first": inputs(slice(0, 3)), "last": inputs(slice(3, 5))}})
    results = gates.evaluate(gates.parse_requirement("accuracy@k=* >= 0.5"), run, min_slice_size=1)
    assert [(r["slice"]["value"], r["slice"]["support"]) for r in results] == [
        ("first", 3),
        ("last", 2),
    ]
    assert [r["value"] for r in results] == pytest.approx(
        [skm.accuracy_score(y[:3], p[:3]), skm.accuracy_score(y[3:], p[3:])]
    )
    (recall,) = gates.evaluate(gates.parse_requirement("recall[b]@k=last >= 0.5"), run)
    assert recall["value"] == pytest.approx(skm.recall_score(y[3:, 1], p[3:, 1]))

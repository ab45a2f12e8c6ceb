"""Hostile HTTP input: malformed parameters, property-based query strings, static paths, and
hostile text returned verbatim, against the zoo (`zoo.py`) served in-process.
"""

import os
import urllib.error
import urllib.parse
import urllib.request

import hostile_examples
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoo import (
    JSON_ROUTES,
    PREFIX,
    XSS,
    check_hostile_text,
    client_get,
)

from tb_metricsdiag.backend import static_files

# -- 1. hostile HTTP parameters ---------------------------------------------------------

BAD_INTS = [
    "",
    "x",
    "1.5",
    "1e3",
    " 1",
    "1 ",
    "+1",
    "0x10",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "٣",
    "１",
    "9" * 5000,
    "-" + "9" * 40,
    "9" * 19,
    "99999999999999999999",
    "1,2",
    "[1]",
    "\x00",
    "%00",
    "../../etc/passwd",
    XSS,
    "🙂",
]
BAD_FRACTIONS = [
    "",
    "x",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-0.1",
    "1.0000001",
    "1e999",
    "0x1p-1",
    "1_0",
    "½",
    "9" * 5000,
    XSS,
]


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_missing_and_unknown_run(client, route):
    get = lambda r, p: client_get(client, r, p)  # noqa: E731
    if route == "/runs":
        assert get(route, {"run": "../../etc/passwd"})[0] == 200
        return
    assert get(route, {})[0] == 400
    assert get(route, {"run": ""})[0] == 400
    for run in [
        "nope",
        "../good",
        "good/..",
        "/etc/passwd",
        "good\x00",
        XSS + "?",
        "x" * 100000,
        "🙂",
        "good/train",
        ".",
    ]:
        status, body = get(route, {"run": run})
        assert status == 404, (run[:50], status, body)
        assert isinstance(body["error"], str)


@pytest.mark.parametrize("name", ["step", "class"])
@pytest.mark.parametrize("value", BAD_INTS, ids=lambda v: ascii(v)[:24])
def test_malformed_integers_are_400_or_404(client, name, value):
    route = "/pr" if name == "class" else "/confusion"
    status, body = client_get(client, route, {"run": "good", name: value})
    if value == "":
        assert status == 200  # an empty value means the default
    elif value in ("9" * 19, "99999999999999999999") or value.startswith("-9"):
        # Well-formed but out of range: no such step (404) or class (400).
        assert status in (400, 404), body
    else:
        assert status == 400, (value[:40], body)
        assert name in body["error"]


@pytest.mark.parametrize("value", BAD_FRACTIONS, ids=lambda v: ascii(v)[:24])
@pytest.mark.parametrize("name", ["min_recall", "min_precision"])
def test_malformed_fractions_are_400(client, name, value):
    status, body = client_get(client, "/pr", {"run": "good", name: value})
    assert status == (200 if value == "" else 400), (value[:40], body)


def test_negative_and_out_of_range_numbers(client):
    assert client_get(client, "/confusion", {"run": "good", "step": "-1"})[0] == 404
    assert client_get(client, "/confusion", {"run": "good", "step": "5"})[0] == 404
    assert client_get(client, "/confusion", {"run": "good", "step": "-0"})[0] == 200
    assert client_get(client, "/pr", {"run": "good", "class": "-1"})[0] == 400
    assert client_get(client, "/pr", {"run": "good", "class": "2"})[0] == 400
    assert client_get(client, "/pr", {"run": "good3", "class": "2"})[0] == 200
    for split in ["", "validation/../train", XSS, "train\x00", "t" * 65]:
        assert client_get(client, "/confusion", {"run": "good", "split": split})[0] == 400
    for split in ["VALIDATION", "test"]:  # split names the run does not have
        assert client_get(client, "/confusion", {"run": "good", "split": split})[0] == 404


def test_repeated_parameters_use_the_first(client):
    status, body = client_get(client, "/confusion", raw_query="run=good&run=nope&step=1&step=x")
    assert status == 200 and body["run"] == "good" and body["step"] == 1
    status, _ = client_get(client, "/confusion", raw_query="run=nope&run=good")
    assert status == 404


@pytest.mark.parametrize(
    "raw",
    [
        "run=%ff%fe&step=1",
        "run=good&step=%ff",
        "run=%00",
        "run",
        "=&&&==",
        "%",
        "%zz=1",
        "run=good;step=1",
        "run=good&step=1&" + "junk=" + "j" * 200000,
        "&".join("k%d=v" % i for i in range(5000)) + "&run=good",
        "run=good%26step%3D1",
        "run=good#fragment",
        "run[]=good",
        "run=%F0%9F%99%82",
    ],
    ids=lambda raw: raw[:30],
)
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_raw_malformed_query_strings(client, route, raw):
    status, _ = client_get(client, route, raw_query=raw)
    assert status in (200, 400, 404)


_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "good",
            "good3",
            "train_only",
            "validation",
            "train",
            "0",
            "1",
            "-1",
            "4",
            "0.5",
            "NaN",
            "inf",
            "1e308",
            "9" * 5000,
            "../..",
            XSS,
            "\x00",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_KEYS = st.sampled_from(
    ["run", "split", "step", "class", "min_recall", "min_precision", "experiment", "x", ""]
)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(JSON_ROUTES),
    pairs=st.lists(st.tuples(_KEYS, _VALUES), max_size=6),
    raw_suffix=st.text(alphabet="%&=#;+?/\\ab0", max_size=8),
)
def test_property_any_query_string_is_answered_without_5xx(client, route, pairs, raw_suffix):
    query = urllib.parse.urlencode(pairs) + ("&" if pairs else "") + raw_suffix
    status, body = client_get(client, route, raw_query=query)
    assert status in (200, 400, 404), (query[:200], status, body)
    if status != 200:
        assert isinstance(body["error"], str)


# The example routes' parameters, and values that mean something to them (the zoo's good and
# crafted example runs among them).
_EXAMPLE_KEYS = st.sampled_from(list(hostile_examples.PARAMETERS) + ["x", ""])
_EXAMPLE_VALUES = st.one_of(
    st.sampled_from(
        [
            hostile_examples.GOOD_RUN,
            hostile_examples.GOOD_RUN,
            "good",
            "train_only",
            "validation",
            "train",
            "0",
            "1",
            "2",
            "3",
        ]
        + sorted(hostile_examples.CRAFTED)
        + ["-1", "1000", "1001", "0.5", "NaN", "9" * 5000, "../..", XSS, "\x00", "x" * 70]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20),
)

# Requests the fuzzing of the example and slice routes makes, at least.
EXAMPLE_FUZZ_REQUESTS = 1500


@settings(
    max_examples=EXAMPLE_FUZZ_REQUESTS,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(hostile_examples.ROUTES + ("/overview",)),
    # Mostly a run with example records and a cell, so that most queries reach the records.
    base=st.fixed_dictionaries(
        {
            "run": st.one_of(
                *[st.sampled_from([hostile_examples.GOOD_RUN] + sorted(hostile_examples.CRAFTED))]
                * 3,
                _EXAMPLE_VALUES,
            )
        },
        optional={
            "true": st.sampled_from(["0", "1", "2", "3", "-1", "x"]),
            "pred": st.sampled_from(["0", "1", "2", "3", "-1", "x"]),
        },
    ),
    pairs=st.lists(st.tuples(_EXAMPLE_KEYS, _EXAMPLE_VALUES), max_size=4),
    raw_suffix=st.text(alphabet="%&=#;+?/\\ab0", max_size=6),
)
def test_property_example_routes_answer_any_query_without_5xx(
    client, route, base, pairs, raw_suffix
):
    """/examples, /flips, /label_issues, /slices and /overview over good and crafted example
    records and slices: every query answered 200, 400, 404 or 422 (`client_get` fails on a
    5xx), errors as JSON messages."""
    pairs = list(base.items()) + pairs  # a parameter given twice: the first counts
    query = urllib.parse.urlencode(pairs) + "&" + raw_suffix
    status, body = client_get(client, route, raw_query=query)
    assert status in (200, 400, 404, 422), (query[:200], status, body)
    if status != 200:
        assert isinstance(body["error"], str)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "..",
                    ".",
                    "",
                    "%2e%2e",
                    "%2f",
                    "..%2f",
                    "%5c",
                    "index.js",
                    "setup.py",
                    "etc",
                    "passwd",
                    "%00",
                    "~",
                    ".git",
                    "config",
                ]
            ),
            st.text(max_size=12),
        ),
        max_size=6,
    )
)
def test_property_static_paths_never_leave_the_static_folder(client, path):
    quoted = "/".join(urllib.parse.quote(p, safe="%~.") for p in path)
    response = client.get(PREFIX + "/" + quoted)
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        body = response.get_data()
        root = os.path.realpath(static_files.frontend_dir())
        served = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        assert any(open(f, "rb").read() == body for f in served)


@pytest.mark.parametrize(
    "path",
    [
        "/../../setup.py",
        "/%2e%2e/%2e%2e/setup.py",
        "/..%2f..%2fsetup.py",
        "/..%5c..%5csetup.py",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/....//....//setup.py",
        "/index.js%00.py",
        "/__init__.py",
        "/%252e%252e/setup.py",
        "/" + "a" * 5000 + ".js",
        "/.git/config",
        "/tests/conftest.py",
        "/..;/setup.py",
    ],
)
def test_static_traversal_is_404(client, path):
    response = client.get(PREFIX + path)
    assert response.status_code == 404
    assert b"import" not in response.get_data()


def test_hostile_names_are_returned_verbatim(client):
    check_hostile_text(lambda route, params: client_get(client, route, params))


def test_error_messages_carry_hostile_text_as_json_strings(client):
    status, body = client_get(client, "/confusion", {"run": XSS + "\n\"'"})
    assert status == 404 and XSS in body["error"]
    response = client.get(PREFIX + "/confusion", query_string={"run": XSS})
    assert response.headers["Content-Type"].startswith("application/json")

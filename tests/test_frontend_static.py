"""Static checks of the tab's source (no browser): safe DOM sinks, no CDN, imports resolve.

The browser tests (test_frontend_browser.py) check the behaviour; these guard against
regressions that a browser run might not exercise (a rarely shown panel using innerHTML).
"""

import os
import re

import pytest

FRONTEND = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "frontend")
SOURCES = sorted(
    name
    for name in os.listdir(FRONTEND)
    if os.path.splitext(name)[1] in (".js", ".css", ".html", ".svg")
)
SCRIPTS = [name for name in SOURCES if name.endswith(".js")]


def read(name):
    with open(os.path.join(FRONTEND, name), encoding="utf-8") as handle:
        return handle.read()


def test_the_entry_module_exports_render():
    assert "index.js" in SCRIPTS
    assert re.search(r"^export function render\(", read("index.js"), re.M)


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_html_sinks(name):
    source = read(name)
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "srcdoc",
        "createContextualFragment",
    ):
        assert sink not in source, "%s uses %s: insert user data as text only" % (name, sink)
    assert not re.search(r"\beval\s*\(|new Function\s*\(", source), name
    assert not re.search(r"""setAttribute\(\s*["']on""", source), (
        "%s sets an inline event handler" % name
    )


@pytest.mark.parametrize("name", SOURCES)
def test_no_remote_assets(name):
    # Everything ships in the package: TensorBoard's CSP forbids other origins anyway.
    urls = re.findall(r"https?://[^\s\"'`)]+", read(name))
    assert [u for u in urls if not u.startswith("http://www.w3.org/")] == [], name


@pytest.mark.parametrize("name", SCRIPTS)
def test_relative_imports_exist(name):
    for target in re.findall(
        r"""^\s*import\s[^;]*?from\s+["'](\.[^"']+)["']""", read(name), re.M | re.S
    ):
        assert os.path.isfile(os.path.normpath(os.path.join(FRONTEND, target))), "%s imports %s" % (
            name,
            target,
        )


def test_stylesheet_is_referenced_and_present():
    assert "style.css" in SOURCES
    assert "./style.css" in read("index.js")

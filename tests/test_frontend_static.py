"""Static checks of the tab's source (no browser): safe DOM sinks, no CDN, imports resolve.

The browser tests (test_frontend_browser.py) check the behaviour; these guard against
regressions that a browser run might not exercise (a rarely shown panel using innerHTML).
"""

import fnmatch
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRONTEND = os.path.join(ROOT, "frontend")
SOURCES = sorted(
    os.path.relpath(os.path.join(folder, name), FRONTEND).replace(os.sep, "/")
    for folder, _, names in os.walk(FRONTEND)
    for name in names
    if os.path.splitext(name)[1] in (".js", ".css", ".html", ".svg")
)
SCRIPTS = [name for name in SOURCES if name.endswith(".js")]
PANELS = [name for name in SCRIPTS if name.startswith("panels/")]


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
        path = os.path.join(FRONTEND, os.path.dirname(name), target)
        assert os.path.isfile(os.path.normpath(path)), "%s imports %s" % (name, target)


def _exported_names(source):
    names = set(
        re.findall(r"^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+(\w+)", source, re.M)
    )
    for block in re.findall(r"^export\s*\{([^}]*)\}", source, re.M):
        names.update(part.split(" as ")[-1].strip() for part in block.split(",") if part.strip())
    return names


@pytest.mark.parametrize("name", SCRIPTS)
def test_named_imports_are_exported(name):
    # A missing export fails the whole module graph at load time, so the tab would not draw.
    for block, target in re.findall(
        r"""^\s*import\s*\{([^}]*)\}\s*from\s+["'](\.[^"']+)["']""", read(name), re.M | re.S
    ):
        module = os.path.normpath(os.path.join(os.path.dirname(name), target)).replace(os.sep, "/")
        exported = _exported_names(read(module))
        wanted = {part.split(" as ")[0].strip() for part in block.split(",") if part.strip()}
        assert wanted <= exported, "%s imports %s from %s, which does not export them" % (
            name,
            sorted(wanted - exported),
            target,
        )


def test_stylesheet_is_referenced_and_present():
    assert "style.css" in SOURCES
    assert "./style.css" in read("index.js")


def test_every_panel_exports_create():
    # A panel is create(container, actions) -> {element, update(data)}: the app adds panels
    # without the others knowing.
    assert {"toolbar", "findings", "summary", "confusion", "per_class", "pr", "curves"} <= {
        os.path.splitext(os.path.basename(name))[0] for name in PANELS
    }
    for name in PANELS:
        if name == "panels/common.js":
            continue
        assert re.search(r"^export function create\(container(, actions)?\)", read(name), re.M), (
            name
        )


def test_only_the_api_module_fetches():
    # One place talks to the server, so that one mechanism drops stale answers.
    assert [name for name in SCRIPTS if re.search(r"\bfetch\(", read(name))] == ["api.js"]


def test_setup_ships_every_frontend_file():
    # setup.py's package_data patterns must cover each file, subfolders included.
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as handle:
        package_data = re.search(r"package_data=\{.*?\}", handle.read(), re.S).group(0)
    patterns = re.findall(r'"([^"]*[*][^"]*)"', package_data)
    assert patterns, "setup.py's package_data lists no file patterns"
    for name in SOURCES:
        assert any(
            fnmatch.fnmatchcase(name, p) and name.count("/") == p.count("/") for p in patterns
        ), "%s is not in setup.py's package_data" % name

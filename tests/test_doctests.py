"""The examples in the docstrings of the public API run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "tb_metricsdiag.core.counting",
    "tb_metricsdiag.core.crossings",
    "tb_metricsdiag.core.examples",
    "tb_metricsdiag.core.headline",
    "tb_metricsdiag.core.label_issues",
    "tb_metricsdiag.core.labels",
    "tb_metricsdiag.core.metrics",
    "tb_metricsdiag.core.operating_points",
    "tb_metricsdiag.writing.log_names",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "%s has no docstring example" % name
    assert result.failed == 0, "%d of %d examples failed in %s" % (
        result.failed,
        result.attempted,
        name,
    )

"""The gate language: a ``--require`` expression parsed into a `Requirement`, and what the
requirements name (metrics, slice keys). Pure: no I/O.
"""

import dataclasses
import difflib
import operator
import re

import numpy as np

# Comparison operators, longest first so that ">=" is not read as ">".
OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}

# The ``CLASS`` forms that are not class names.
EVERY_CLASS = "*"
MACRO = "macro"

# The ``VALUE`` of ``@KEY=VALUE`` that means every value of the key.
EVERY_VALUE = "*"

# The bound that refers to the baseline run: ``baseline``, ``baseline + X``, ``baseline - X``.
BASELINE = "baseline"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric the gate language knows: ``per_class`` (takes a class) and ``needs`` (the
    data it is computed from: ``"confusion"``, ``"average_precision"``, ``"calibration"`` or
    ``"label_issues"``).
    """

    name: str
    per_class: bool
    needs: str = "confusion"


METRICS = {
    metric.name: metric
    for metric in (
        Metric("accuracy", per_class=False),
        Metric("balanced_accuracy", per_class=False),
        Metric("precision", per_class=True),
        Metric("recall", per_class=True),
        Metric("f1", per_class=True),
        Metric("ap", per_class=True, needs="average_precision"),
        Metric("ece", per_class=False, needs="calibration"),
        Metric("label_issue_share", per_class=False, needs="label_issues"),
    )
}


_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\[(?P<cls>.*)\])?\s*"
    r"(?P<op>>=|<=|>|<)\s*"
    r"(?P<bound>.*?)\s*$",
    re.DOTALL,
)
# The same with ``@SLICE`` after the class (the class up to the first "]" followed by "@"):
# tried first, so that a slice value may hold "]"; the bound holds no comparison character,
# so that a value may.
_SLICE_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\[(?P<cls>.*?)\])?\s*"
    r"@(?P<slice>.*)"
    r"(?P<op>>=|<=|>|<)\s*"
    r"(?P<bound>[^<>=]*?)\s*$",
    re.DOTALL,
)
_RELATIVE_BOUND = re.compile(r"^%s\s*(?:(?P<sign>[+-])\s*(?P<offset>.+))?$" % BASELINE)


class GateError(ValueError):
    """A requirement that cannot be parsed or checked: a usage error (exit status 2)."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One parsed ``--require`` expression.

    ``cls`` is None (no class given), `EVERY_CLASS`, `MACRO` or a class name. The bound is
    ``number`` when ``relative`` is False, else the baseline's value plus ``number``.
    ``slice_key`` and ``slice_value`` (`EVERY_VALUE` or a value) scope it to slices, or are
    None.
    """

    expr: str
    metric: str
    cls: object
    op: str
    number: float
    relative: bool = False
    slice_key: str = None
    slice_value: str = None


def quoted(expr):
    return "--require %r" % (expr,)


def closest_names(name, names, limit=3):
    """Up to ``limit`` of ``names`` closest to ``name`` (difflib), possibly none."""
    return difflib.get_close_matches(name, names, n=limit, cutoff=0.5)


def no_such_name(name, names, what="classes"):
    """The end of a message about a class (or slice key, value: ``what``) ``name`` not among
    ``names``.
    """
    close = closest_names(name, names)
    if close:
        return "closest: %s" % ", ".join(repr(n) for n in close)
    shown = ", ".join(repr(n) for n in names[:10])
    return "the %s are %s%s" % (what, shown, ", ..." if len(names) > 10 else "")


def _number(text, expr, what):
    try:
        value = float(text)
    except ValueError:
        raise GateError("%s: %s %r is not a number" % (quoted(expr), what, text)) from None
    if not np.isfinite(value):
        raise GateError("%s: %s must be a finite number, got %r" % (quoted(expr), what, text))
    return value


def parse_requirement(expr):
    """The `Requirement` of ``expr``.

    Raises:
      GateError: malformed, an unknown metric, a class on a metric that takes none, or a bound
        outside [0, 1] (metrics are fractions: write 0.9, not 90).
    """
    match = _SLICE_EXPRESSION.match(expr) or _EXPRESSION.match(expr)
    if match is None:
        raise GateError(
            "%s: not of the form METRIC[CLASS] OP NUMBER, e.g. 'recall[fraud] >= 0.9', or"
            " METRIC[CLASS]@KEY=VALUE OP NUMBER for slices, e.g. 'recall[fraud]@country=BR >="
            " 0.9' (OP one of %s)" % (quoted(expr), ", ".join(OPERATORS))
        )
    name, cls, op, bound = match.group("metric", "cls", "op", "bound")
    slice_key, slice_value = (
        _parse_slice(match.group("slice"), expr) if match.re is _SLICE_EXPRESSION else (None, None)
    )
    metric = METRICS.get(name)
    if metric is None:
        close = closest_names(name.lower(), list(METRICS))
        raise GateError(
            "%s: unknown metric %r; the metrics are %s%s"
            % (
                quoted(expr),
                name,
                ", ".join(METRICS),
                " (closest: %s)" % ", ".join(close) if close else "",
            )
        )
    if cls is not None:
        cls = cls.strip()
        if not cls:
            raise GateError("%s: empty class name in []" % quoted(expr))
        if not metric.per_class:
            raise GateError(
                "%s: %s is one number per run and takes no [class]" % (quoted(expr), name)
            )
    if slice_key is not None and metric.needs == "label_issues":
        raise GateError(
            "%s: %s is not recorded per slice; check it on the whole run" % (quoted(expr), name)
        )
    if not bound:
        raise GateError("%s: a number is missing after %s" % (quoted(expr), op))
    relative = _RELATIVE_BOUND.match(bound)
    if relative:
        offset = relative.group("offset")
        number = 0.0 if offset is None else _number(offset, expr, "the offset")
        if not 0 <= number <= 1:
            raise GateError(
                "%s: the offset %s from the baseline is outside [0, 1]; metrics are fractions"
                " (write 0.02, not 2)" % (quoted(expr), offset)
            )
        if relative.group("sign") == "-":
            number = -number
    else:
        number = _number(bound, expr, "the bound")
        if not 0 <= number <= 1:
            raise GateError(
                "%s: the bound %s is outside [0, 1]; metrics are fractions (write 0.9, not 90)"
                % (quoted(expr), bound)
            )
    return Requirement(
        expr,
        name,
        cls,
        op,
        number,
        relative=bool(relative),
        slice_key=slice_key,
        slice_value=slice_value,
    )


def _parse_slice(text, expr):
    """``(key, value)`` of the ``KEY=VALUE`` after ``@`` (split at the first ``=``, each
    trimmed of spaces), value `EVERY_VALUE` for every value.
    """
    key, equals, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not equals:
        raise GateError(
            "%s: the slice %r is not KEY=VALUE, e.g. '@country=BR', or '@country=*' for every"
            " value" % (quoted(expr), text.strip())
        )
    if not key:
        raise GateError("%s: the slice key before '=' is empty" % quoted(expr))
    if not value:
        raise GateError(
            "%s: the slice value after '%s=' is empty (write @%s=* for every value)"
            % (quoted(expr), key, key)
        )
    return key, value


def parse_requirements(exprs):
    """`parse_requirement` of each expression, in order."""
    return [parse_requirement(expr) for expr in exprs]


def slice_keys(requirements):
    """The slice keys the requirements name, sorted."""
    return sorted({r.slice_key for r in requirements if r.slice_key is not None})


def needs_average_precision(requirements):
    """Whether any requirement reads the average precision (the largest series to read)."""
    return any(METRICS[r.metric].needs == "average_precision" for r in requirements)


def needs_label_issues(requirements):
    """Whether any requirement reads the label issues (example records, read only then)."""
    return any(METRICS[r.metric].needs == "label_issues" for r in requirements)

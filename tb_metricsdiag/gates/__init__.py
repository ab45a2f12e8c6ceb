"""The gate language of ``tb-metricsdiag report --require``: parse, then evaluate. Pure: no I/O.

A requirement is ``METRIC[CLASS] OP BOUND`` or ``METRIC OP BOUND`` (spaces allowed), either
optionally scoped to slices with ``@KEY=VALUE`` before ``OP``:

- ``METRIC``: one of `METRICS`. ``accuracy``, ``balanced_accuracy``, ``ece`` and
  ``label_issue_share`` (the share of examples whose given label confident learning flags, as
  ``/label_issues`` gives it) are one number per run and take no class; ``precision``,
  ``recall``, ``f1`` and ``ap`` are per class.
- ``CLASS``: a class name, ``*`` (every class must pass: one result per class) or ``macro``
  (the unweighted mean over the classes where the metric is defined, scikit-learn's
  ``average="macro", zero_division=np.nan``). A per-class metric without a class means the
  positive class of a binary run (scikit-learn's default ``average="binary"``); on a run of
  more classes it is a usage error asking for one.
- ``@KEY=VALUE``: the slice of the rows recorded with that group value (``groups=``), its
  metric computed from the slice's own counts as the run's is from the run's; ``@KEY=*``: every
  value of the key with at least ``min_slice_size`` rows (one result per value; smaller slices
  are *skipped*: listed, never failed). A named value is checked whatever its size.
- ``OP``: ``>=``, ``>``, ``<=`` or ``<``.
- ``BOUND``: a number in [0, 1], or ``baseline``, ``baseline + X``, ``baseline - X``: the same
  metric (and class) of the baseline run, shifted by ``X``.

A requirement that names a class applies to the runs that have that class; on the others it
is *not applicable* (``"passed": None``, ``"applicable": False``), which is no failure: a
folder may mix runs of different tasks. A per-class metric without a class applies likewise to
the binary runs only. It is a usage error only when it applies to none of the runs checked
(`check_applicable`). A requirement on a slice key or value a run lacks is not applicable there
likewise.

Every problem a user can fix (a malformed expression, an unknown metric, a class no run has,
data a run does not have) raises `GateError`, whose message quotes the expression: the command
line turns it into exit status 2. A value that is undefined (0/0, e.g. the precision of a class
that is never predicted) fails its requirement: nothing shows the bound is met.

The modules: `language` (an expression parsed into a `Requirement`; `GateError`), `run_values`
(what a run offers, `GateInputs`, and a metric's value on it), `slices` (requirements scoped to
slices) and `evaluation` (the results of the requirements on a run; `check_applicable`). This
package's names are the command line's and the tests' entry points.
"""

from tb_metricsdiag.gates.evaluation import check_applicable, evaluate, evaluate_all, margin
from tb_metricsdiag.gates.language import (
    BASELINE,
    EVERY_CLASS,
    EVERY_VALUE,
    MACRO,
    METRICS,
    OPERATORS,
    GateError,
    Metric,
    Requirement,
    closest_names,
    needs_average_precision,
    needs_label_issues,
    parse_requirement,
    parse_requirements,
    slice_keys,
)
from tb_metricsdiag.gates.run_values import MISSING_DATA, GateInputs, metric_value
from tb_metricsdiag.gates.slices import MIN_SLICE_SIZE

__all__ = [
    "BASELINE",
    "EVERY_CLASS",
    "EVERY_VALUE",
    "MACRO",
    "METRICS",
    "MIN_SLICE_SIZE",
    "MISSING_DATA",
    "OPERATORS",
    "GateError",
    "GateInputs",
    "Metric",
    "Requirement",
    "check_applicable",
    "closest_names",
    "evaluate",
    "evaluate_all",
    "margin",
    "metric_value",
    "needs_average_precision",
    "needs_label_issues",
    "parse_requirement",
    "parse_requirements",
    "slice_keys",
]

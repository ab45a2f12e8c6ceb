"""What the PyTorch-family callbacks (Lightning, Transformers) share around their
`MetricsDiagWriter`: the name in their messages, the check of the options they share, the
writer of a run opened for a `inputs.Layout`, the run description of that layout, and problems
logged and written as events. Imports no framework.
"""

import logging
import os

from tb_metricsdiag.writing import inputs, records
from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

logger = logging.getLogger(__name__)

# The name the callbacks' messages begin with: every adapter's class is `MetricsDiagCallback`.
WHO = "MetricsDiagCallback"

# How the processes' evaluation rows come together (the callbacks' ``reduce``): gathered whole
# (``"rows"``: exact AP, label issues, ids), or counted as they come and only the fixed-size
# counts brought together (``"counts"``), or ``"auto"``, each framework's default.
REDUCE_AUTO, REDUCE_ROWS, REDUCE_COUNTS = "auto", "rows", "counts"

GATHER_LIMIT_VALUES = 1 << 26
"""``reduce="auto"``: an evaluation whose scores (all processes together) hold more values than
this (64 Mi: 256 MB of float32, e.g. 670,000 rows x 100 classes) should not be held whole on one
process: the Lightning callback then counts it (and every later epoch) instead of gathering it;
the Transformers callback, which cannot change how the Trainer gathers, says so once."""


def checked_options(
    log_dir, default_dir, *, from_logits, multi_label, scalars, class_names, thresholds
):
    """The options the callbacks share, checked: ``(class_names, thresholds)`` as they keep
    them (`inputs.check_class_names`, `records.checked_thresholds`).

    Args:
      log_dir: the run's directory: None or a non-empty path.
      default_dir: which directory None stands for, said in the message.
      from_logits: True, False or None (detected).
      multi_label: True, False or None (detected).
      scalars: whether the headline scalars are written.
      class_names: one name per class, or None.
      thresholds: the PR thresholds, or None (the default grid).

    Raises:
      ValueError: an option of the wrong form, naming the forms it takes.
    """
    if log_dir is not None and (
        not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir)
    ):
        raise ValueError(
            "%s: log_dir must be a non-empty path or None (%s), got %r"
            % (WHO, default_dir, log_dir)
        )
    inputs.check_from_logits(from_logits, WHO)
    inputs.check_multi_label(multi_label, WHO, detect=True)
    inputs.check_scalars(scalars, WHO)
    return inputs.check_class_names(class_names, WHO), records.checked_thresholds(thresholds, WHO)


def layout_writer(log_dir, layout, thresholds, scalars):
    """A `MetricsDiagWriter` in ``log_dir`` for the classes, their names and the task of
    ``layout`` (an `inputs.Layout`; None before the first evaluation: the writer's defaults).
    """
    return MetricsDiagWriter(
        log_dir,
        class_names=None if layout is None else list(layout.class_names),
        thresholds=thresholds,
        multi_label=False if layout is None else layout.multi_label,
        scalars=scalars,
    )


def describe_layout(layout, **described):
    """`records.describe_run` of a run whose outputs, labels and classes ``layout`` fixed; the
    rest (``split_examples``, ``counting``, ...) as given.
    """
    return records.describe_run(
        output_width=layout.output_width,
        outputs_are_logits=layout.from_logits,
        label_format=layout.label_format,
        class_names=list(layout.class_names),
        **described,
    )


def write_problems(open_writer, problems, written, step, unit):
    """Log each of ``problems`` (events) and write ``written`` (the events to stand at
    ``step``: those problems, with any written there before) through ``open_writer()``;
    never raises. ``unit`` names the step in the messages (``"epoch"``, ``"step"``).
    """
    for problem in problems:
        logger.warning("%s, %s %d: %s", WHO, unit, step, problem["message"])
    try:
        open_writer().add_events(written, step)
    except Exception:
        logger.exception("%s: could not write the events of %s %d", WHO, unit, step)

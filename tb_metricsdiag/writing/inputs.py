"""The one input path of every writer: an evaluation's inputs, checked once at the boundary.

Every writer (`MetricsDiagWriter`, the Keras and Lightning callbacks) receives the same things
for an evaluation: labels, the model's outputs, whether those are logits, whether the model is
multi-label, the class names, and per example its id, preview and groups. `check_evaluation`
takes them as they come (NumPy arrays, lists, tensors of any framework) and returns one
`Evaluation`, or raises one ValueError whose message starts with the writer's name and names
the fix. The first evaluation of a run fixes its `Layout` (output width, label format, logits or
probabilities, class names); every later one is checked against it. No writer re-checks what
this module checked. A writer that keeps batches where they lie until it counts them (the
Lightning callback, on the accelerator) checks each batch's shapes with `Layout.check_shapes`,
which reads no values, and the values with `check_evaluation` when it counts.

Framework-free: NumPy, `core/` and `format/` only (`arrays.to_numpy` reads tensors without
importing their framework).
"""

import dataclasses
import re

import numpy as np

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.format import schema
from tb_metricsdiag.writing import arrays

# Row sums of probabilities in float32 (and in float16, widened) stay this close to 1; outputs
# whose rows all fall in [0, 1] and sum to 1 this closely are taken as probabilities.
ROW_SUM_TOLERANCE = 1e-2

MAX_EXAMPLE_ID_CHARS = schema.MAX_EXAMPLE_ID_CHARS  # a string id is 1 to this long
MAX_GROUP_KEYS = 8
GROUP_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
MAX_GROUP_VALUE_CHARS = schema.MAX_GROUP_VALUE_CHARS  # a value is shown in 1 to this many
OTHER_VALUE = schema.OTHER_SLICE  # the pool of the values past a key's cap: no value's name
IMAGE_CHANNELS = (1, 3)  # previews [n, H, W, c]: grey or RGB

# What the labels and the outputs are called in messages, as `MetricsDiagWriter` names them.
NAMES = ("y_true", "y_score")


def check_from_logits(from_logits, who):
    """ValueError naming ``who`` unless ``from_logits`` is True, False or None (detect)."""
    if from_logits not in (None, True, False):
        raise ValueError("%s: from_logits must be True, False or None (detect)" % who)


def check_multi_label(multi_label, who, detect=False):
    """ValueError naming ``who`` unless ``multi_label`` is True or False (or None where the
    writer can ``detect`` it).
    """
    allowed = (None, True, False) if detect else (True, False)
    if multi_label not in allowed:
        raise ValueError(
            "%s: multi_label must be %s"
            % (who, "True, False or None (detect)" if detect else "True or False")
        )


def check_scalars(scalars, who):
    """ValueError naming ``who`` unless ``scalars`` (write the headline scalars,
    `records.headline_scalars`) is True or False.
    """
    if not isinstance(scalars, bool):
        raise ValueError(
            "%s: scalars must be True (write the headline scalars under metricsdiag/<split>/) or"
            " False, got %r" % (who, scalars)
        )


def check_class_names(class_names, who):
    """``class_names`` as a list of strings (None stays None: the default names)."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise ValueError(
            "%s: class_names must be a list of names, one per class, got %r" % (who, class_names)
        )
    return [str(name) for name in class_names]


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a run's first evaluation fixes, and the conversions every later one goes through.

    Attributes:
      output_width: output units per example (1: one sigmoid unit, binary).
      multi_label: one sigmoid per label, multi-hot labels.
      from_logits: whether the outputs are logits; None while undecided (a layout fixed on a
        first batch that is not counted, as the Lightning callback's): the next
        `check_evaluation` detects it from its outputs.
      label_format: `labels.SPARSE`, `ONE_HOT`, `BINARY` or `MULTI_HOT` (None while no
        labels were seen: a Keras metric-mode run without validation data).
      class_names: one name per class (per label, multi-label).
    """

    output_width: int
    multi_label: bool
    from_logits: bool
    label_format: str
    class_names: tuple

    @property
    def num_classes(self):
        """Classes counted (labels, multi-label): a single sigmoid unit counts 2."""
        if self.multi_label:
            return self.output_width
        return labels_lib.num_classes_from_output_width(self.output_width)

    def new_counts(self, thresholds, keep_scores=True, num_groups=None):
        """An empty accumulator of this layout's counts (per group with ``num_groups``)."""
        if self.multi_label:
            return counts_lib.MultiLabelCounts(
                self.num_classes, thresholds, keep_scores, num_groups
            )
        return counts_lib.ClassificationCounts(
            self.num_classes, thresholds, keep_scores, num_groups
        )

    def format_of(self, labels):
        """The label format of ``labels`` for this model (`labels.detect_label_format`);
        ValueError for labels that fit none.
        """
        if self.multi_label:
            return labels_lib.MULTI_HOT
        return labels_lib.detect_label_format(labels, self.output_width)

    def check_shapes(self, labels, outputs, who, names=NAMES):
        """ValueError naming ``who`` unless ``labels`` and ``outputs`` have the shapes of an
        evaluation of this layout (rows, output width, a label format). Reads only their
        shapes: arrays or tensors on any device; their values are checked when counted.
        """
        check_shapes(labels, outputs, who, self.multi_label, names)
        try:
            self._check_width(np.shape(outputs), names[1])
            self.format_of(labels)
        except ValueError as error:
            raise ValueError("%s: %s" % (who, error)) from error

    def _check_width(self, output_shape, output_name="outputs"):
        width = _output_width(output_shape)
        if width != self.output_width:
            raise ValueError(
                "%s of shape %s have %d output unit(s) per example, but %d at the first"
                " evaluation: one run holds one model's outputs (use another log_dir for"
                " another model)" % (output_name, tuple(output_shape), width, self.output_width)
            )

    def targets(self, labels):
        """Class ids ``[n]`` of labels in this layout's format (multi-hot rows ``[n, K]`` of
        bools, multi-label). Raises ValueError for labels that do not fit.
        """
        labels = np.asarray(labels)
        if self.multi_label:
            if labels.ndim != 2 or labels.shape[1] != self.output_width:
                raise ValueError(
                    "multi-hot labels of shape %s do not fit %d labels: expected one 0/1 column"
                    " per label, [n, %d]" % (labels.shape, self.output_width, self.output_width)
                )
            return counts_lib.check_multi_hot(labels, self.output_width, "labels")
        return labels_lib.class_ids(labels, self.format_of(labels), self.num_classes)

    def scores(self, outputs, two_columns=None):
        """``(scores, predicted)`` of raw outputs (`labels.scores_and_predictions`, with their
        ``two_columns``; multi-label: per-label probabilities and None). Raises ValueError for
        another output width.
        """
        outputs = np.asarray(outputs)
        self._check_width(outputs.shape)
        if self.multi_label:
            return labels_lib.multilabel_scores(outputs, self.from_logits), None
        return labels_lib.scores_and_predictions(outputs, self.from_logits, two_columns)

    def converted(self, labels, outputs, two_columns=None):
        """``(targets, scores, predicted)`` of one batch of raw labels and outputs: class ids
        (multi-hot rows, multi-label), per-class scores and predicted ids (None, multi-label).
        ``two_columns``: `labels.two_column_scores` of these very outputs, or None.
        Raises ValueError for labels or outputs that do not fit.
        """
        targets = self.targets(labels)
        scores, predicted = self.scores(outputs, two_columns)
        if targets.shape[0] != scores.shape[0]:
            raise ValueError(
                "%d labels but %d rows of outputs: they must come from the same examples"
                % (targets.shape[0], scores.shape[0])
            )
        return targets, scores, predicted

    def count(self, counts, labels, outputs):
        """Add one batch of raw labels and outputs to ``counts`` (from `new_counts`); returns
        them converted (`converted`), for the example records.
        """
        converted = self.converted(labels, outputs)
        _update(counts, *converted)
        return converted


def _update(counts, targets, scores, predicted, two_columns=None):
    if predicted is None:
        counts.update(targets, scores)
    else:
        counts.update(targets, scores, predicted, two_columns=two_columns)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One checked evaluation.

    Attributes:
      layout: the run's `Layout` (with this evaluation's ``from_logits``).
      targets: class ids ``[n]`` (multi-hot rows ``[n, K]`` of bools, multi-label).
      scores: per-class scores ``[n, C]`` (per-label probabilities, multi-label).
      predicted: predicted class ids ``[n]``, or None (multi-label).
      example_ids: one id per row (NumPy array of str or int64), or None.
      previews: one preview per row (an array of images or strings), or None.
      groups: ``{key: GroupColumn}`` (`check_groups`), or None.
      two_columns: `labels.two_column_scores` of ``scores`` when they are a single-label
        model's two columns of probabilities, or None: what the checks found, not found again
        by the counts.
    """

    layout: Layout
    targets: np.ndarray
    scores: np.ndarray
    predicted: object = None
    example_ids: object = None
    previews: object = None
    groups: object = None
    two_columns: object = None

    @property
    def size(self):
        return int(self.scores.shape[0])

    def counts(self, thresholds, keep_scores=True):
        """The evaluation counted: a `counting.ClassificationCounts` (`MultiLabelCounts`)."""
        result = self.layout.new_counts(thresholds, keep_scores)
        _update(result, self.targets, self.scores, self.predicted, self.two_columns)
        return result


def _output_width(output_shape):
    return 1 if len(output_shape) == 1 else int(output_shape[1])


def check_shapes(labels, outputs, who, multi_label=False, names=NAMES):
    """ValueError naming ``who`` unless labels and outputs have shapes of one evaluation;
    ``names`` are what the writer calls them (`NAMES`). Reads only the shapes (arrays or
    tensors).
    """
    label_name, output_name = names
    labels, outputs = tuple(np.shape(labels)), tuple(np.shape(outputs))
    if multi_label and (len(outputs) != 2 or labels != outputs):
        raise ValueError(
            "%s (multi_label=True): %s of shape %s and %s of shape %s: expected multi-hot labels"
            " and one output per label, both [n, K]"
            % (who, label_name, labels, output_name, outputs)
        )
    if multi_label and outputs[1] < 2:
        raise ValueError(
            "%s (multi_label=True): %s of shape %s: one label is a binary task, give"
            " multi_label=False" % (who, output_name, outputs)
        )
    if len(outputs) not in (1, 2) or len(outputs) == 2 and outputs[1] < 1:
        raise ValueError(
            "%s: %s of shape %s: expected the model's outputs [n, C] (one row per example), or"
            " [n] / [n, 1] for one sigmoid unit; flatten extra dimensions first (e.g."
            " %s.reshape(n, C))" % (who, output_name, outputs, output_name)
        )
    if outputs[0] == 0:
        raise ValueError("%s: no examples (%s is empty)" % (who, output_name))
    if not labels or labels[0] != outputs[0]:
        raise ValueError(
            "%s: %s of shape %s does not match %s of shape %s: pass one label per row of"
            " outputs, from the same examples" % (who, label_name, labels, output_name, outputs)
        )


def new_layout(
    output_width, who, multi_label=False, from_logits=False, class_names=None, label_format=None
):
    """A run's `Layout` from what a writer knows of its model (a callback knows it before any
    evaluation); ValueError naming ``who`` when the class names do not fit.
    """
    num_classes = (
        output_width if multi_label else labels_lib.num_classes_from_output_width(output_width)
    )
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            "%s: class_names has %d names but the model predicts %d %s (%d output unit%s%s)"
            % (
                who,
                len(class_names),
                num_classes,
                "labels" if multi_label else "classes",
                output_width,
                "" if output_width == 1 else "s",
                ": one sigmoid unit, 2 classes" if output_width == 1 else "",
            )
        )
    names = class_names or labels_lib.default_class_names(num_classes)
    return Layout(output_width, bool(multi_label), bool(from_logits), label_format, tuple(names))


def first_layout(
    labels,
    outputs,
    who,
    multi_label=False,
    from_logits=None,
    class_names=None,
    names=NAMES,
    two_columns=None,
):
    """The `Layout` a run's first evaluation fixes; ValueError naming ``who`` and the fix.
    ``two_columns``: `labels.two_column_scores` of ``outputs``, or None.
    """
    labels, outputs = np.asarray(labels), np.asarray(outputs)
    check_shapes(labels, outputs, who, multi_label, names)
    if from_logits is None:
        from_logits = labels_lib.looks_like_logits(
            outputs, ROW_SUM_TOLERANCE, multi_label, two_columns
        )
    layout = new_layout(_output_width(outputs.shape), who, multi_label, from_logits, class_names)
    try:
        return dataclasses.replace(layout, label_format=layout.format_of(labels))
    except ValueError as error:
        raise ValueError("%s: %s" % (who, error)) from error


def _later_from_logits(layout, outputs, from_logits, who, two_columns=None):
    """The layout with this evaluation's ``from_logits``: stated, detected from these outputs
    while the layout leaves it undecided, or the earlier decision, which outputs that can only
    be logits contradict. ``two_columns``: `labels.two_column_scores` of ``outputs``, or None.
    """
    if from_logits is not None:
        return dataclasses.replace(layout, from_logits=bool(from_logits))
    if layout.from_logits is None:
        detected = labels_lib.looks_like_logits(
            outputs, ROW_SUM_TOLERANCE, layout.multi_label, two_columns
        )
        return dataclasses.replace(layout, from_logits=detected)
    if not layout.from_logits and labels_lib.looks_like_logits(
        outputs, ROW_SUM_TOLERANCE, layout.multi_label, two_columns
    ):
        raise ValueError(
            "%s: the outputs hold values outside [0, 1] or rows that do not sum to 1, but"
            " earlier outputs were taken as probabilities: pass from_logits=True (or False) to"
            " say what the model outputs" % who
        )
    return layout


def check_evaluation(
    y_true,
    y_score,
    who,
    layout=None,
    multi_label=False,
    from_logits=None,
    class_names=None,
    example_ids=None,
    previews=None,
    groups=None,
    names=NAMES,
):
    """Check one evaluation's inputs; the one boundary of every writer.

    Args:
      y_true: class ids ``[n]``, one-hot rows ``[n, C]``, 0/1 ``[n]`` for one sigmoid unit, or
        multi-hot rows ``[n, K]`` (``multi_label``). Any array-like or tensor.
      y_score: the model's outputs ``[n, C]`` or ``[n]`` / ``[n, 1]``: probabilities or logits.
      who: the writer's name, first in every message (``"MetricsDiagWriter.add_evaluation"``).
      layout: the run's `Layout` from its first evaluation; None for the first.
      multi_label: whether the model is multi-label (used for the first evaluation).
      from_logits: True / False as stated, None to detect (first evaluation, or a layout that
        leaves it undecided) or keep.
      class_names: the writer's class names, or None (used for the first evaluation).
      example_ids: one id per row (`check_example_ids`), or None.
      previews: one preview per row (`check_previews`), or None.
      groups: ``{key: one value per row}`` (`check_groups`), or None.
      names: what the writer calls the labels and the outputs in its messages (`NAMES`).

    Returns:
      An `Evaluation`; its layout is ``layout`` (with a stated or detected ``from_logits``) or
      the first.

    Raises:
      ValueError: the message starts with ``who`` and names the fix.
    """
    check_from_logits(from_logits, who)
    labels = arrays.to_numpy(y_true, "%s: %s" % (who, names[0]))
    outputs = arrays.to_numpy(y_score, "%s: %s" % (who, names[1]))
    two_columns = _two_columns(outputs, layout, multi_label, from_logits)
    if layout is None:
        layout = first_layout(
            labels, outputs, who, multi_label, from_logits, class_names, names, two_columns
        )
    else:
        check_shapes(labels, outputs, who, layout.multi_label, names)
        layout = _later_from_logits(layout, outputs, from_logits, who, two_columns)
    if layout.from_logits:
        two_columns = None  # of the logits, not of the probabilities counted
    try:
        converted = layout.converted(labels, outputs, two_columns)
    except ValueError as error:
        raise ValueError(
            "%s: %s of shape %s and %s of shape %s: %s"
            % (who, names[0], labels.shape, names[1], outputs.shape, error)
        ) from error
    n = outputs.shape[0]
    return Evaluation(
        layout,
        *converted,
        check_example_ids(example_ids, n, who),
        check_previews(previews, n, who),
        check_groups(groups, n, who),
        two_columns,
    )


def _two_columns(outputs, layout, multi_label, from_logits):
    """`labels.two_column_scores` of a single-label model's two columns of float outputs that
    may be probabilities (the logit check, the arg-max, the finiteness and the counts then
    share one pass over them), else None.
    """
    if layout is not None:
        multi_label = layout.multi_label
        if from_logits is None:
            from_logits = layout.from_logits
    if (
        multi_label is not False
        or from_logits
        or outputs.ndim != 2
        or outputs.shape[1] != 2
        or outputs.dtype.kind != "f"
    ):
        return None
    return labels_lib.two_column_scores(outputs, ROW_SUM_TOLERANCE)


def check_example_ids(example_ids, n, who):
    """One id per row, unique: integers, or strings of 1 to `MAX_EXAMPLE_ID_CHARS` characters.

    Returns an int64 array for integer ids, else an array of str; None stays None.
    """
    if example_ids is None:
        return None
    values = arrays.to_numpy(example_ids, "%s: example_ids" % who, objects=True)
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(
            "%s: example_ids of shape %s: give one id per example, %d in all"
            % (who, values.shape, n)
        )
    if values.dtype.kind in "iu":
        ids = values.astype(np.int64)
    elif values.dtype.kind in "US" or values.dtype == object:
        ids = _string_ids(values, who)
    else:
        raise ValueError(
            "%s: example_ids must be integers or strings, got dtype %s" % (who, values.dtype)
        )
    unique, counts = np.unique(ids, return_counts=True)
    if unique.shape[0] != n:
        raise ValueError(
            "%s: example_ids must be unique within a split; %r appears %d times"
            % (who, unique[counts > 1][0].item(), counts.max())
        )
    return ids


def _string_ids(values, who):
    ids = []
    for value in values.tolist():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("%s: example_ids must be integers or strings, got %r" % (who, value))
        value = str(value)
        if not 1 <= len(value) <= MAX_EXAMPLE_ID_CHARS:
            raise ValueError(
                "%s: an example id must be 1 to %d characters long, got %d: %r"
                % (who, MAX_EXAMPLE_ID_CHARS, len(value), value[:40])
            )
        ids.append(value)
    return np.array(ids, dtype=str)


def check_previews(previews, n, who):
    """One preview per row: strings (text), or images ``[n, H, W]`` / ``[n, H, W, 1 | 3]`` of
    uint8, or floats in [0, 1]. Returns a NumPy array (of str for text); None stays None.
    """
    if previews is None:
        return None
    if isinstance(previews, (list, tuple)) and previews and isinstance(previews[0], (str, bytes)):
        if len(previews) != n:
            raise ValueError(
                "%s: %d previews for %d examples: give one per example" % (who, len(previews), n)
            )
        if not all(isinstance(text, (str, bytes)) for text in previews):
            raise ValueError("%s: text previews must all be strings" % who)
        return np.array(
            [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in previews],
            dtype=object,
        )
    images = arrays.to_numpy(previews, "%s: previews" % who, objects=True)
    if images.ndim == 0 or images.shape[0] != n:
        raise ValueError(
            "%s: previews of shape %s for %d examples: give one per example"
            % (who, images.shape, n)
        )
    if images.dtype.kind in "USO":
        return _text_previews(images, who)
    shape_ok = images.ndim == 3 or images.ndim == 4 and images.shape[3] in IMAGE_CHANNELS
    if not shape_ok or min(images.shape[1:3]) < 1:
        raise ValueError(
            "%s: previews of shape %s: images must be [n, H, W] or [n, H, W, 1 | 3] (grey or"
            " RGB), text a list of strings" % (who, images.shape)
        )
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise ValueError(
            "%s: image previews must be uint8 (0-255) or floats in [0, 1], got dtype %s"
            % (who, images.dtype)
        )
    finite = np.isfinite(images)
    if not finite.all() or images.min() < 0 or images.max() > 1:
        raise ValueError(
            "%s: float image previews must lie in [0, 1] (scale them, e.g. x / 255)" % who
        )
    return images


def _text_previews(values, who):
    if values.ndim != 1:
        raise ValueError("%s: text previews must be one string per example" % who)
    texts = values.tolist()
    if not all(isinstance(text, (str, bytes)) for text in texts):
        raise ValueError("%s: text previews must all be strings" % who)
    return np.array(
        [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts], dtype=object
    )


@dataclasses.dataclass(frozen=True)
class GroupColumn:
    """One group key's values, checked: ``values`` the distinct values as shown (``str(v)``:
    ``"True"`` / ``"False"`` for booleans), in order of first appearance, and ``codes`` ``[n]``
    the index of each row's value in ``values``.
    """

    values: tuple
    codes: np.ndarray


def check_groups(groups, n, who):
    """``{key: one value per row}``: at most `MAX_GROUP_KEYS` keys matching
    `GROUP_KEY_PATTERN`; values strings (1 to `MAX_GROUP_VALUE_CHARS` characters, not
    `OTHER_VALUE`), integers or booleans, shown as strings. Returns ``{key: GroupColumn}``;
    None stays None.
    """
    if groups is None:
        return None
    if not isinstance(groups, dict):
        raise ValueError(
            "%s: groups must be a dict {key: one value per example}, got %s"
            % (who, type(groups).__name__)
        )
    if len(groups) > MAX_GROUP_KEYS:
        raise ValueError(
            "%s: %d group keys; at most %d are recorded: keep the ones you slice by"
            % (who, len(groups), MAX_GROUP_KEYS)
        )
    checked = {}
    for key, values in groups.items():
        if not isinstance(key, str) or not GROUP_KEY_PATTERN.match(key):
            raise ValueError(
                "%s: group key %r must be a name of letters, digits and _ (not starting with a"
                " digit), 1 to 64 characters" % (who, key if not isinstance(key, str) else key[:80])
            )
        try:
            array = _group_values(values, "%s: groups[%r]" % (who, key))
        except (TypeError, ValueError) as error:
            raise ValueError(
                "%s: groups[%r] must be one string, integer or boolean per example: %s"
                % (who, key, error)
            ) from error
        if array.ndim != 1 or array.shape[0] != n:
            raise ValueError(
                "%s: groups[%r] has shape %s: give one value per example, %d in all"
                % (who, key, array.shape, n)
            )
        checked[key] = _group_column(array, key, who)
    return checked


def _group_values(values, what):
    """``values`` as a 1-D array; a list or tuple as Python objects, so that one long string
    does not widen a fixed-width string array to its length for every row.
    """
    if isinstance(values, (list, tuple)):
        array = np.empty(len(values), dtype=object)
        array[:] = values  # nested sequences do not fit: ValueError
        return array
    return arrays.to_numpy(values, what, objects=True)


def _group_column(array, key, who):
    """The `GroupColumn` of one key's values ``array`` ``[n]``; ValueError naming the fix."""
    if array.dtype.kind in "iub":
        distinct, codes = np.unique(array, return_inverse=True)
        first = np.full(distinct.size, array.size, dtype=np.int64)
        np.minimum.at(first, codes, np.arange(array.size))
        order = np.argsort(first, kind="stable")  # first appearance first
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return GroupColumn(tuple(str(v) for v in distinct[order].tolist()), rank[codes])
    if not (array.dtype.kind == "U" or array.dtype == object):
        raise ValueError(
            "%s: groups[%r] values must be strings, integers or booleans, got dtype %s"
            % (who, key, array.dtype)
        )
    index, codes = {}, np.empty(array.size, dtype=np.int64)
    try:
        for row, value in enumerate(array.tolist()):
            code = index.get(value)
            if code is None:
                code = index[value] = len(index)
            codes[row] = code
    except TypeError as error:  # an unhashable value (a list, a dict)
        raise ValueError(
            "%s: groups[%r] values must be strings, integers or booleans: %s" % (who, key, error)
        ) from error
    shown = {}
    for value in index:
        if not isinstance(value, (str, int, bool, np.integer, np.bool_)):
            raise ValueError(
                "%s: groups[%r] values must be strings, integers or booleans, got %s"
                % (who, key, type(value).__name__)
            )
        text = str(value)
        if not 1 <= len(text) <= MAX_GROUP_VALUE_CHARS or text == OTHER_VALUE:
            raise ValueError(
                "%s: groups[%r]: a value is shown as a string of 1 to %d characters other than"
                " %r, got %d characters: %r"
                % (who, key, MAX_GROUP_VALUE_CHARS, OTHER_VALUE, len(text), text[:40])
            )
        shown.setdefault(text, len(shown))
    # Values shown alike (1 and "1") are one value.
    remap = np.array([shown[str(value)] for value in index], dtype=np.int64)
    return GroupColumn(tuple(shown), remap[codes])

"""The records of a training run as it is read back: what it holds (`RunIndex`), one split at
one step (`SplitEvaluation`), its example records at one step (`SplitExamples`,
`SplitLabelIssues`), everything the diagnostics read (`RunHistory`), and what of it could not
be read (`DamagedData`).

Plain data and NumPy arrays, built by the backend's reader (`backend/reader.py`) and read,
attribute by attribute, by the diagnostics, the views and the CLI. Their one dependency is
the format's task definition (`schema.task_of`), so they sit between `format/` and the layers
that read them (docs/architecture.md).
"""

import dataclasses

import numpy as np

from tb_metricsdiag.format import schema


@dataclasses.dataclass
class RunIndex:
    """What a training run holds, from tag metadata alone (no tensor data read)."""

    run: str
    splits: list  # splits with counts, "validation" first
    class_names: list
    keras_subruns: dict  # split -> TensorBoard run name of keras.callbacks.TensorBoard's data
    multilabel: bool = False  # the counts are per label (`confusion_counts.is_multilabel`)
    # split -> the group keys of its slices (format version 7), from the listing alone: those
    # of the split's first slices record
    slice_keys: dict = dataclasses.field(default_factory=dict)

    @property
    def task(self):
        """The task of the run's counts (`schema.task_of`); None without counts."""
        if not self.class_names:
            return None
        return schema.task_of(len(self.class_names), self.multilabel)

    @property
    def has_counts(self):
        return bool(self.splits)


@dataclasses.dataclass
class SplitEvaluation:
    """One split at one step: the confusion matrix (per-label matrices, multi-label) and, where
    stored, threshold counts and AP.
    """

    split: str
    step: int
    class_names: list
    confusion: np.ndarray  # [C, C] int64; row = actual, column = predicted; None multi-label
    thresholds: np.ndarray = None  # [T] ascending
    tp: np.ndarray = None  # [C, T] int64
    fp: np.ndarray = None  # [C, T] int64
    average_precision: np.ndarray = None  # [C] float64, NaN where undefined
    average_precision_method: str = None  # "exact" or "threshold_grid", with the AP
    roc_auc: np.ndarray = None  # [C] float64, one-vs-rest, NaN where undefined (format 4)
    roc_auc_method: str = None  # how it was computed, as the AP
    counts_problem: str = None  # why stored threshold counts could not be read, if they were not
    matrices: np.ndarray = None  # multi-label: [K, 2, 2] int64, [[tn, fp], [fn, tp]] per label
    exact_matches: int = None  # multi-label: rows whose label set is predicted exactly

    @property
    def multilabel(self):
        return self.matrices is not None

    @property
    def decision_counts(self):
        """The counts of the decisions, which the per-class metrics read: the confusion matrix
        ``[C, C]``, or a multi-label run's ``[K, 2, 2]`` per-label matrices.
        """
        return self.matrices if self.multilabel else self.confusion

    @property
    def num_classes(self):
        """Classes (labels, multi-label) of the counts."""
        return len(self.class_names)

    @property
    def task(self):
        """The task of the counts (`schema.task_of`)."""
        return schema.task_of(self.num_classes, self.multilabel)

    @property
    def total(self):
        """Examples counted."""
        return int(self.matrices[0].sum() if self.multilabel else self.confusion.sum())

    def positives(self, k):
        """Positives of class (label) k: its examples, or the rows with label k set."""
        return int(self.matrices[k, 1].sum() if self.multilabel else self.confusion[k].sum())


@dataclasses.dataclass
class SplitExamples:
    """One split's example records at one step (format version 6): which examples fall in each
    confusion cell, which were right, and their ids.

    ``examples`` holds positions (`format.example_records.StoredExamples`); ``ids`` turns them
    into the ids the writer was given (`format.example_ids.ExampleIds`, of as many rows).
    """

    split: str
    step: int
    class_names: list  # the split's classes (labels, multi-label)
    examples: object  # format.example_records.StoredExamples
    ids: object  # format.example_ids.ExampleIds

    @property
    def multilabel(self):
        return self.examples.multi_label

    @property
    def task(self):
        return schema.task_of(self.examples.num_classes, self.multilabel)


@dataclasses.dataclass
class SplitLabelIssues:
    """One split's label issues at one step (format version 6, single-label tasks):
    ``issues`` (`format.example_records.StoredLabelIssues`: the flagged count, the listed
    examples by position, the top-label bins) and the split's ``ids`` at that step.
    """

    split: str
    step: int
    class_names: list
    issues: object  # format.example_records.StoredLabelIssues
    ids: object  # format.example_ids.ExampleIds


@dataclasses.dataclass
class SplitCrossings:
    """One split's crossing samples at one step (`format.crossings.StoredCrossings`: per
    curve, bin between two thresholds and polarity, the first examples by position with their
    scores) and the split's ``ids`` at that step.
    """

    split: str
    step: int
    class_names: list
    crossings: object  # format.crossings.StoredCrossings
    ids: object  # format.example_ids.ExampleIds


@dataclasses.dataclass(frozen=True)
class LabelIssueFigures:
    """What the rule ``label_issues`` reads of one epoch: the flagged ``count`` among
    ``examples`` (those confident learning saw) and the `core.label_issues.top_label_bins` of
    those examples (``{"count", "correct", "logit_sum"}``).
    """

    count: int
    examples: int
    bins: dict

    @property
    def share(self):
        """``count / examples`` (None without examples)."""
        return self.count / self.examples if self.examples else None


class Part:
    """What a run records, as the diagnostics ask `RunHistory.damage_of` about it: the kinds of
    stored series (`schema`), named for readers that do not import the format.
    """

    CURVE = schema.KIND_SCALAR  # a Keras log curve (held by a logs series too)
    COUNTS = schema.KIND_CONFUSION
    THRESHOLD_COUNTS = schema.KIND_THRESHOLD_COUNTS
    RUN_INFO = schema.KIND_RUN_INFO
    OVERLAP = schema.KIND_OVERLAP
    EVENTS = schema.KIND_EVENTS
    LABEL_DISTRIBUTION = schema.KIND_LABEL_DISTRIBUTION
    LABEL_ISSUES = schema.KIND_LABEL_ISSUES
    SLICES = schema.KIND_SLICES


# Characters of a refusal's reason kept (a reason may quote stored text of megabytes).
MAX_DAMAGE_REASON_CHARS = 300

# Steps a `DamagedData` names one by one; more are said as a range and a count.
_STEPS_NAMED = 5


@dataclasses.dataclass
class DamagedData:
    """Stored data the reader refused, so that the diagnostics skipped it: the series
    (``tag``, of ``kind`` and ``split`` where known, ``key`` the Keras log key of a curve),
    the ``steps`` skipped (ascending; None: every step of the series) and ``why``.
    """

    tag: str
    steps: list  # None: every step of the series
    why: str
    kind: str = None  # schema.KIND_*, None where the series' metadata could not be read
    split: str = None
    key: str = None  # of a curve (`schema.KIND_SCALAR`, or Keras's epoch scalars)

    def __post_init__(self):
        if len(self.why) > MAX_DAMAGE_REASON_CHARS:
            self.why = self.why[: MAX_DAMAGE_REASON_CHARS - 3] + "..."

    def steps_text(self):
        """``every step``, ``step 3``, ``steps 1, 2`` or ``steps 0-99 (60 steps)``."""
        if self.steps is None:
            return "every step"
        if len(self.steps) == 1:
            return "step %d" % self.steps[0]
        if len(self.steps) <= _STEPS_NAMED:
            return "steps " + ", ".join(str(step) for step in self.steps)
        return "steps %d-%d (%d steps)" % (self.steps[0], self.steps[-1], len(self.steps))

    def describe(self):
        """``tag T, steps S: why``: what was skipped, in one line."""
        return "tag %s, %s: %s" % (self.tag, self.steps_text(), self.why)

    def as_evidence(self):
        return {"tag": self.tag, "steps": self.steps, "why": self.why}

    def holds(self, kind, split=None, key=None):
        """Whether the refused series may have held ``kind`` (of ``split``; a curve of ``key``):
        a series of unknown kind may have held anything, a logs series any curve.
        """
        if self.kind is None:
            return True
        if kind == schema.KIND_SCALAR:
            return self.kind == schema.KIND_LOGS or (
                self.kind == schema.KIND_SCALAR and self.key in (None, key)
            )
        return self.kind == kind and (split is None or self.split in (None, split))


@dataclasses.dataclass
class RunHistory:
    """Everything the diagnostics read for one training run."""

    run: str
    class_names: list
    info: dict = None  # the callback's run information (model, loss, labels), if written
    overlap: dict = None  # the train/validation duplicate check, if run
    label_distribution: dict = dataclasses.field(default_factory=dict)  # split -> [C]
    # Keras log key ("loss", "val_loss", "accuracy", ...) -> (steps, values), ascending steps
    curves: dict = dataclasses.field(default_factory=dict)
    # split -> {step: metrics.ConfusionTotals} (diagonal, row and column sums: O(C) per epoch,
    # `confusion_counts.decision_totals`), or {step: [K, 2, 2]} per label in a multi-label run;
    # the full matrix of the latest step is in `latest`
    confusions: dict = dataclasses.field(default_factory=dict)
    multilabel: bool = False
    # split -> {step: (count, confidence_sum, correct)}, see `calibration.calibration_bins`
    calibration: dict = dataclasses.field(default_factory=dict)
    latest: dict = dataclasses.field(default_factory=dict)  # split -> SplitEvaluation
    # split -> {step: LabelIssueFigures}: the label issues of every epoch (single-label runs
    # written with example records)
    label_issues: dict = dataclasses.field(default_factory=dict)
    # split -> {key: {value: SplitEvaluation}}: each slice's counts at the split's latest
    # slices record (format version 7; values as shown, the pool "(other)"); empty without
    slices: dict = dataclasses.field(default_factory=dict)
    events: list = dataclasses.field(default_factory=list)  # recorded problems, with "step"
    problems: list = dataclasses.field(default_factory=list)  # [DamagedData]: data refused
    # Trainings written into the run (`provider_source._latest_training`); only the latest
    # one's points are kept.
    trainings: int = 1
    restart: dict = None  # {"step", "previous_last_step"} where the latest training began

    def note_damage(self, damage):
        """Add ``damage`` (a `DamagedData`) to `problems`; more steps of the same series refused
        for the same reason as the last one added extend it.
        """
        last = self.problems[-1] if self.problems else None
        if (
            last is not None
            and (last.tag, last.why) == (damage.tag, damage.why)
            and last.steps is not None
            and damage.steps is not None
        ):
            last.steps = sorted(set(last.steps) | set(damage.steps))
            return
        self.problems.append(damage)

    def damage_of(self, kind, split=None, key=None):
        """The first `DamagedData` whose series may have held ``kind`` (a `Part`; of ``split``,
        a curve of ``key``: `DamagedData.holds`), or None.
        """
        for damage in self.problems:
            if damage.holds(kind, split, key):
                return damage
        return None

"""The predictions the Transformers ``Trainer`` hands the callback's ``compute_metrics``
wrapper: an ``EvalPrediction``'s labels and scores as NumPy (`labels_and_outputs`), the
model's layout fixed by the first evaluation (`first_evaluation`: its task, class names and
label format), and one evaluation kept until ``on_evaluate`` (`PendingEvaluation`: the whole
prediction, or, with ``batch_eval_metrics``, counts made batch by batch). Imports no framework.
"""

import inspect
import logging

import numpy as np

from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.writing import arrays, inputs
from tb_metricsdiag.writing.callback_writing import WHO

logger = logging.getLogger(__name__)

# What the callback calls the Trainer's labels and outputs in its messages (`inputs.NAMES`).
NAMES = ("label_ids", "predictions")

# With ``batch_eval_metrics``, batches are counted together once their outputs hold this many
# values (4 MB of float32), or at the evaluation's last batch: counting has a fixed cost per
# call that small batches would pay each, and memory stays bounded whatever the eval set.
BATCH_BUFFER_VALUES = 1 << 20

# `counting` of the run description: the two ways the Trainer hands over predictions.
COUNTING_WHOLE = "transformers_compute_metrics"
COUNTING_BATCHES = "transformers_batch_eval_metrics"


class PendingEvaluation:
    """One evaluation from the ``compute_metrics`` wrapper until ``on_evaluate`` counts (the
    whole evaluation) or writes (counted batch by batch) it.

    Args:
      batched: whether the Trainer hands it over batch by batch (``batch_eval_metrics``).
      first: whether it is the run's first evaluation, whose mistakes raise.
    """

    def __init__(self, batched, first):
        self.batched = batched
        self.first = first
        # The whole evaluation's EvalPrediction: ``Trainer.evaluate`` holds its arrays until
        # after ``on_evaluate`` anyway, and a ``trainer.predict`` is dropped uncounted.
        self.prediction = None
        self.counts = None  # `counting.ClassificationCounts` / `MultiLabelCounts`
        self.evaluation = None  # the whole evaluation's `inputs.Evaluation`, once checked
        self.records = False  # whether its example records are written
        self.batches = []  # batched: (labels, outputs) not counted yet (`BATCH_BUFFER_VALUES`)
        self.buffered = 0  # output values in ``batches``
        self.rows = 0  # batched: rows taken so far (the next batch's first position)
        # batched: the `example_recorder.EpochExamples` of the rows counted (positions in the
        # eval dataset; no label issues, which need every row's scores), or None.
        self.examples = None
        self.problems = []  # messages of batches left out
        self.error = None  # a mistake of the first evaluation's batches, raised at on_evaluate
        self.complete = False  # batched: the last batch (compute_result=True) was counted

    def add_batch(self, labels, outputs):
        """Buffer one batch (NumPy), its rows at the next positions."""
        self.batches.append((labels, outputs, self.rows))
        self.rows += len(outputs)
        self.buffered += outputs.size

    def left_out(self, error):
        """A batch that does not fit: raised at ``on_evaluate`` during the first evaluation,
        else an event.
        """
        if self.first:
            self.error = self.error or error
        else:
            logger.warning("%s: %s", WHO, error)
            self.problems.append(str(error))

    def failed(self, error):
        """A batch that could not be counted for another reason than its values: an event."""
        self.problems.append("%s: %s" % (type(error).__name__, error))

    def count_batches(self, layout, thresholds):
        """Count the buffered batches together with ``layout`` (`inputs.Layout`); when one
        does not fit, one by one, leaving that one out.
        """
        batches, self.batches, self.buffered = self.batches, [], 0
        if not batches:
            return
        if self.counts is None:
            self.counts = layout.new_counts(thresholds, keep_scores=False)
        try:
            labels = np.concatenate([labels for labels, _, _ in batches])
            outputs = np.concatenate([outputs for _, outputs, _ in batches])
            converted = layout.count(self.counts, labels, outputs)
            positions = np.concatenate(
                [np.arange(first, first + len(o)) for _, o, first in batches]
            )
            self._add_examples(positions, converted)
            return
        except ValueError:
            pass  # refused before anything was counted: find the batches that do not fit
        except Exception as error:  # recording never ends the training
            logger.exception("%s: %d batches could not be counted", WHO, len(batches))
            self.failed(error)
            return
        for labels, outputs, first in batches:
            try:
                converted = layout.count(self.counts, labels, outputs)
                self._add_examples(np.arange(first, first + len(outputs)), converted)
            except ValueError as error:
                self.left_out(
                    ValueError(
                        "%s: a batch of %s of shape %s and %s of shape %s was left out: %s"
                        % (WHO, NAMES[0], labels.shape, NAMES[1], outputs.shape, error)
                    )
                )
            except Exception as error:  # recording never ends the training
                logger.exception("%s: a batch could not be counted", WHO)
                self.failed(error)

    def _add_examples(self, positions, converted):
        """Give a counted chunk's rows to the evaluation's example records; rows beyond the
        dataset's end (it was not the dataset evaluated) give the records up, with a problem.
        """
        if self.examples is None:
            return
        try:
            self.examples.update(positions, *converted)
        except ValueError as error:
            self.examples = None
            self.problems.append("the example records were left out: %s" % (error,))


def labels_and_outputs(eval_prediction):
    """The labels and the scores (the first output) of an ``EvalPrediction``, as NumPy."""
    predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(predictions, list):
        raise ValueError(
            "%s: the predictions are a list of batches (eval_do_concat_batches=False): leave"
            " eval_do_concat_batches on, or count batch by batch with batch_eval_metrics=True" % WHO
        )
    while isinstance(predictions, tuple) and predictions:
        predictions = predictions[0]  # the model's first output: its logits
    if isinstance(labels, (tuple, list)):
        if len(labels) != 1:
            raise ValueError(
                "%s: the labels come as %d arrays (several label_names); the callback counts"
                " one label column: give the Trainer one" % (WHO, len(labels))
            )
        labels = labels[0]
    outputs = arrays.to_numpy(predictions, "%s: %s" % (WHO, NAMES[1]))
    if outputs.dtype.kind in "biu":
        raise ValueError(
            "%s: the predictions are integers (class ids?), not scores: the callback needs the"
            " logits or probabilities. Return them from preprocess_logits_for_metrics (e.g. a"
            " tuple (logits, logits.argmax(-1)): the first element is counted)" % WHO
        )
    return arrays.to_numpy(labels, "%s: %s" % (WHO, NAMES[0])), outputs


def takes_compute_result(fn):
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True  # not introspectable: let the call tell
    return "compute_result" in parameters or any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def first_evaluation(model, labels, outputs, *, class_names, multi_label, from_logits):
    """The checked `inputs.Evaluation` of the first evaluation (or batch) counted, whose
    layout the run keeps: the task, class names and ``multi_label`` given, else the model's
    (``config.problem_type``, ``config.id2label``), else told by the labels.

    Raises:
      ValueError: a regression head, or labels and outputs that do not fit, naming the fix.
    """
    config = getattr(model, "config", None)
    problem_type = getattr(config, "problem_type", None)
    if problem_type == "regression":
        raise ValueError(
            "%s: the model is a regression head (problem_type='regression', num_labels=%s):"
            " the callback records classifiers. Leave it out of a regression run; for a"
            " classifier give the model num_labels >= 2 (or one logit per label with"
            " problem_type='multi_label_classification')"
            % (WHO, getattr(config, "num_labels", "?"))
        )
    width = 1 if outputs.ndim == 1 else outputs.shape[1]
    if multi_label is None:
        if problem_type == "multi_label_classification":
            multi_label = width > 1  # one logit of one label: a binary task
        else:
            multi_label = bool(labels_lib.looks_multi_hot(labels, width))
    if class_names is None:
        # The model's ``id2label`` names, when they fit the outputs.
        names = _class_names_of(config)
        classes = width if multi_label else labels_lib.num_classes_from_output_width(width)
        class_names = names if names is not None and len(names) == classes else None
    return inputs.check_evaluation(
        labels,
        outputs,
        WHO,
        multi_label=multi_label,
        from_logits=from_logits,
        class_names=class_names,
        names=NAMES,
    )


def _class_names_of(config):
    """``config.id2label``'s names in label order, or None when they are Transformers'
    defaults (``LABEL_0``, ...) or not one per label id from 0.
    """
    id2label = getattr(config, "id2label", None) or {}
    try:
        names = [str(id2label[i]) for i in range(len(id2label))]
    except KeyError:
        return None
    if not names or names == ["LABEL_%d" % i for i in range(len(names))]:
        return None
    return names

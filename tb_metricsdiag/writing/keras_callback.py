"""`MetricsDiagCallback`: records what the diagnostics need, epoch by epoch, during `model.fit`.

Configuration is checked once, in ``on_train_begin``, and a mistake there raises a clear
``ValueError`` before any training time is spent. After that nothing the callback meets ends
the training: a problem (NaN predictions, a batch that cannot be read, a failing write) is
logged, written as an event the diagnostics report, and the epoch goes on.

It runs on every Keras 3 backend: it predicts through the model's own predict step
(`keras_prediction`), checks labels and outputs on the writers' one input path (`inputs`), and
writes with ``tf.summary`` on TensorFlow, with the TensorFlow-free `MetricsDiagWriter` on JAX and
PyTorch (`sinks`), so array data needs no TensorFlow there.
"""

import dataclasses
import logging
import os
import sys

import keras
import numpy as np

from tb_metricsdiag.core import counting as counts_lib
from tb_metricsdiag.core import events, losses
from tb_metricsdiag.core import labels as labels_lib
from tb_metricsdiag.core import overlap as overlap_lib
from tb_metricsdiag.core.json_values import to_json_value
from tb_metricsdiag.writing import (
    example_recorder,
    inputs,
    keras_data,
    keras_metric,
    keras_model,
    keras_output_reuse,
    keras_prediction,
    records,
    sinks,
    slice_recorder,
    thumbnails,
)

logger = logging.getLogger(__name__)

PREVIEW_INPUTS_BYTES = 256 << 20
"""Most bytes of thumbnails kept of a ``validation_data`` Dataset's inputs with
``previews="inputs"`` (made once at train begin: a Dataset cannot be indexed later); arrays are
indexed when an example is kept, nothing is copied."""

METRIC_MODE_EXAMPLES = (
    "example_ids and previews need the callback's own prediction pass, and callback.metric()"
    " counts inside Keras's own steps, which do not say which rows they count: remove"
    " callback.metric() from compile(metrics=[...]) (the default mode records which examples"
    " fall where), or leave example_ids and previews out"
)

VALIDATION_SPLIT_FIX = (
    "split the data yourself and hand the same arrays to both:\n"
    "    x_train, x_val, y_train, y_val = x[:-n], x[-n:], y[:-n], y[-n:]\n"
    "    model.fit(x_train, y_train, validation_data=(x_val, y_val),"
    " callbacks=[MetricsDiagCallback(log_dir, validation_data=(x_val, y_val))])\n"
    "(or add callback.metric() to model.compile(metrics=[...]): that mode counts what Keras"
    " validates on, validation_split included)"
)


class MetricsDiagCallback(keras.callbacks.Callback):
    """Writes per-epoch confusion matrices, PR threshold counts and training curves.

    Args:
      log_dir: directory of this run's event files (TensorBoard names the run after it).
      validation_data: ``(x_val, y_val)`` arrays or a ``tf.data.Dataset`` of ``(x, y)``
        batches; predicted once per epoch, unless ``fit`` validated on the same rows that
        epoch (below). Optional in the metric mode (below), which then counts what Keras
        validates on, ``validation_split`` included.
      train_data: optional ``(x, y)`` or Dataset, usually a sample of the training set:
        predicted once per epoch for the training-side confusion, and compared byte for
        byte with the validation inputs once at the start. Its size drives the extra cost.
      class_names: one name per class; default ``"0"``..``"C-1"``.
      thresholds: ascending score thresholds of the PR counts; default
        `counting.default_thresholds` (201 values spaced in logit).
      batch_size: batch size of the callback's own predictions on array data; by default
        (None) `keras_prediction.DEFAULT_BATCH_SIZE`, grown up to `MAX_AUTOMATIC_BATCH_SIZE` for
        a model fast enough that its per-batch cost is mostly call overhead, judged from the
        first batch of the first prediction pass (`keras_prediction.grown_batch_size`); kept
        on JAX, where each batch shape is compiled anew.
      from_logits: whether the model outputs logits; default detected from the loss's
        ``from_logits`` and the last layer's activation.
      validation_steps: read at most this many batches of a ``validation_data`` Dataset each
        time (needed for one that repeats forever); None reads it to its end.
      train_steps: the same for a ``train_data`` Dataset.
      example_ids: one id per row of ``validation_data`` (integers or strings of 1 to 128
        characters, unique; for a Dataset, a list in its iteration order, which must not
        change between epochs); None: the row's position; False: no example records.
      previews: one preview per row of ``validation_data``, stored for the examples kept
        (`MetricsDiagWriter.add_evaluation`): a list of strings, an array of images
        ``[n, H, W]`` / ``[n, H, W, 1 | 3]`` (uint8, or floats in [0, 1]), or ``"inputs"``:
        the validation inputs themselves, when they are such images or strings. None: none.
      groups: ``{key: one value per row of validation_data}`` (at most 8 keys; values
        strings, integers or booleans): per key and value, the validation split's counts,
        threshold counts, calibration bins and top examples of every cell of that slice
        (`slice_recorder`; the 256 most frequent values per key, the rest as ``"(other)"``).
        Needs the callback's own prediction pass (not ``callback.metric()``).
      scalars: whether each evaluation also writes its headline scalars (accuracy, balanced
        accuracy, macro F1, ECE, per-class recall and precision) under ``metricsdiag/<split>/``
        for TensorBoard's own Scalars and HParams dashboards (`records.headline_scalars`).

    Example records (the default mode): every epoch, for ``validation_data`` and
    ``train_data`` (whose rows are named by position), which examples fall in each confusion
    cell, which were right and the label issues confident learning flags (docs/format.md,
    "Example records"); ``example_ids=False`` turns them off. ``example_ids``, ``previews``
    and ``groups`` are checked at train begin.

    Keras's own validation outputs (the default mode, array ``validation_data``): when
    ``model.fit`` validates on the same rows (``fit(..., validation_data=(x_val, y_val))``), the
    callback takes the outputs Keras's validation pass computed instead of predicting the rows
    again (`keras_output_reuse`): each batch's inputs and labels are compared with the
    callback's rows, and an epoch whose pass did not cover them all, in order
    (``validation_freq``, other data, ``validation_steps``), is predicted as before, with the
    same figures. Not with ``steps_per_execution`` above 1, several replicas, a JAX
    distribution or ``torch.compile``; the model is put back at train end. The train-begin
    probe is then skipped where the model declares its output width and the loss or the last
    activation say whether it outputs logits.

    Zero-extra-pass mode: add ``callback.metric()`` to ``model.compile(metrics=[...])`` and the
    counts are made inside Keras's own train and validation steps (`keras_metric.CountsMetric`);
    the callback then predicts nothing. The train split is then every training batch of the
    epoch (training-mode outputs, as Keras's own metrics) and the average precision is the
    threshold-grid AP (`counts.average_precision_from_counts`) instead of the exact one.
    ``validation_data`` is still read once at the start (labels, overlap check), never predicted.
    This mode records no example records (Keras's steps do not say which rows they count):
    asking for ``example_ids`` or ``previews`` there is a ValueError at train begin.
    """

    def __init__(
        self,
        log_dir,
        validation_data=None,
        train_data=None,
        class_names=None,
        *,
        thresholds=None,
        batch_size=None,
        from_logits=None,
        validation_steps=None,
        train_steps=None,
        example_ids=None,
        previews=None,
        groups=None,
        scalars=True,
    ):
        super().__init__()
        self.log_dir = log_dir
        self.validation_data = validation_data
        self.train_data = train_data
        self.class_names = class_names
        self.thresholds = thresholds
        self.batch_size = batch_size
        self.from_logits = from_logits
        self.validation_steps = validation_steps
        self.train_steps = train_steps
        self.example_ids = example_ids
        self.previews = previews
        self.groups = groups
        self.scalars = scalars
        self._writer = None
        self._splits = {}
        self._layout = None  # inputs.Layout, fixed at train begin
        self._metric = None
        self._in_fit = False
        self._train_counts = None
        self._predictor = None  # keras_prediction.Predictor of this fit
        self._thresholds = None
        self._examples = None  # example_recorder.ExampleRecorder, in the default mode
        self._split_rows = {}  # split -> its rows
        self._validation_ids = None  # checked example_ids, or None (positions)
        self._preview_values = None  # one preview per validation row, or None
        self._slice_values = None  # slice_recorder.SliceValues of the validation rows
        self._slice_codes = None  # {key: slice index of each validation row}, or None
        self._reuse = None  # keras_output_reuse.OutputReuse of this fit, or None

    def metric(self, name="metricsdiag"):
        """The `keras_metric.CountsMetric` to add to ``model.compile(metrics=[...])``.

        With it, the callback reads the counts Keras accumulated during the epoch instead of
        predicting ``validation_data`` and ``train_data`` again (see the class docstring).
        """
        if self._metric is None:
            self._metric = keras_metric.CountsMetric(
                thresholds=self.thresholds, from_logits=self.from_logits, name=name
            )
        return self._metric

    # -- configuration, checked at train begin -------------------------------------------

    def _check_configuration(self):
        if not isinstance(self.log_dir, (str, os.PathLike)) or not os.fspath(self.log_dir):
            raise ValueError(
                "MetricsDiagCallback: log_dir must be a non-empty path, got %r" % (self.log_dir,)
            )
        if self.validation_data is None and self._metric is None:
            raise ValueError(
                "MetricsDiagCallback needs validation_data=(x_val, y_val) (or a tf.data.Dataset):"
                " Keras does not hand its own validation data (validation_split included) to"
                " callbacks; " + VALIDATION_SPLIT_FIX
            )
        for name in ("batch_size", "validation_steps", "train_steps"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(
                    "MetricsDiagCallback: %s must be a positive integer or None, got %r"
                    % (name, value)
                )
        inputs.check_from_logits(self.from_logits, "MetricsDiagCallback")
        inputs.check_scalars(self.scalars, "MetricsDiagCallback")
        self._check_example_options()
        self._thresholds = records.checked_thresholds(self.thresholds, "MetricsDiagCallback")
        splits = {}
        if self.validation_data is not None:
            splits["validation"] = keras_data.Examples(
                self.validation_data, "validation_data", self.validation_steps
            )
        if self.train_data is not None:
            splits["train"] = keras_data.Examples(self.train_data, "train_data", self.train_steps)
        return splits

    def _check_example_options(self):
        """The checks of ``example_ids``, ``previews`` and ``groups`` that need no data."""
        who = "MetricsDiagCallback"
        asked = self.example_ids not in (None, False) or self.previews is not None
        if self.groups is not None and self._metric is not None:
            raise ValueError(
                "%s: groups need the callback's own prediction pass (which rows fall in which"
                " slice), and callback.metric() makes none: drop one of them" % who
            )
        if self.groups is not None and self.validation_data is None:
            raise ValueError("%s: groups are of validation_data's rows: pass it" % who)
        if self._metric is not None and asked:
            raise ValueError("%s: %s" % (who, METRIC_MODE_EXAMPLES))
        if self.example_ids is False and self.previews is not None:
            raise ValueError(
                "%s: previews need example records, which example_ids=False turns off: drop"
                " one of them" % who
            )
        if self.previews is not None and self.validation_data is None:
            raise ValueError("%s: previews are of validation_data's rows: pass it" % who)
        if isinstance(self.previews, str) and self.previews != "inputs":
            raise ValueError(
                "%s: previews must be None, 'inputs' (the validation inputs themselves), or one"
                " preview per validation example, got %r" % (who, self.previews)
            )

    def _check_examples(self, splits, labels):
        """The example options against the split's rows (train begin): the ids and previews
        of the validation rows, checked once (`inputs.check_example_ids`, `check_previews`).
        """
        self._split_rows = {split: len(y) for split, y in labels.items()}
        self._slice_codes = None
        if self.groups is not None and "validation" in splits:
            groups = inputs.check_groups(
                self.groups, self._split_rows["validation"], "MetricsDiagCallback"
            )
            self._slice_values = slice_recorder.SliceValues()
            self._slice_codes = self._slice_values.slice_codes(groups)
        recording = self._metric is None and self.example_ids is not False
        self._examples = example_recorder.ExampleRecorder() if recording else None
        if not recording or "validation" not in splits:
            return
        rows = self._split_rows["validation"]
        self._validation_ids = inputs.check_example_ids(
            self.example_ids, rows, "MetricsDiagCallback"
        )
        if isinstance(self.previews, str):
            self._preview_values = self._input_previews(splits["validation"], rows)
        else:
            self._preview_values = inputs.check_previews(self.previews, rows, "MetricsDiagCallback")

    def _input_previews(self, examples, rows):
        """``previews="inputs"``: the validation inputs when they are images or strings (an
        array's rows, indexed when kept; a Dataset's as thumbnails and texts made now).
        """
        who = "MetricsDiagCallback (previews='inputs')"
        fix = (
            ": previews='inputs' takes the validation inputs as previews, which needs one input"
            " of images [n, H, W] / [n, H, W, 1 | 3] (uint8, or floats in [0, 1]) or of strings;"
            " pass previews= one preview per validation example instead"
        )
        if examples.dataset is None:
            x = keras.tree.flatten(examples.x)
            if len(x) != 1:
                raise ValueError("%s: the model has %d inputs%s" % (who, len(x), fix))
            try:
                return inputs.check_previews(x[0], rows, who)
            except ValueError as error:
                raise ValueError("%s%s" % (error, fix)) from error
        kept, size = [], 0
        for x, _ in examples.batches(self._predictor.batch_size, as_numpy=True):
            x = keras.tree.flatten(x)
            if len(x) != 1:
                raise ValueError("%s: the model has %d inputs%s" % (who, len(x), fix))
            try:
                batch = thumbnails.compact_previews(inputs.check_previews(x[0], len(x[0]), who))
            except ValueError as error:
                raise ValueError("%s%s" % (error, fix)) from error
            size += sum(len(value) if isinstance(value, str) else value.nbytes for value in batch)
            if size > PREVIEW_INPUTS_BYTES:
                raise ValueError(
                    "%s: the thumbnails of this Dataset's inputs would take more than %d MB:"
                    " pass previews= small thumbnails of your own (one per validation example),"
                    " or array validation_data" % (who, PREVIEW_INPUTS_BYTES >> 20)
                )
            kept.extend(batch)
        if len(kept) != rows:
            raise ValueError(
                "%s: the Dataset gave %d inputs for %d labels" % (who, len(kept), rows)
            )
        return kept

    def _declared_output_width(self):
        """Output width from the model's own output shape, or None when it does not declare
        one single output of shape ``[batch]`` or ``[batch, classes]``.
        """
        outputs = getattr(self.model, "outputs", None) or []
        if len(outputs) != 1 or len(outputs[0].shape) not in (1, 2):
            return None
        shape = outputs[0].shape
        if len(shape) == 1:
            return 1
        return None if shape[-1] is None else int(shape[-1])

    def _model_output_width(self):
        """Output width from the model's own output shape (metric mode without data)."""
        width = self._declared_output_width()
        if width is None:
            raise ValueError(
                "MetricsDiagCallback: the output width of this model is unknown before"
                " training; pass validation_data=(x_val, y_val)"
            )
        return width

    def _from_logits_needs_outputs(self, loss_from_logits, activation):
        """Whether `_detect_from_logits` must look at outputs (nothing else says)."""
        return not (
            self.from_logits is not None
            or loss_from_logits
            or activation in ("linear", "softmax", "sigmoid")
        )

    def _detect_from_logits(self, loss_from_logits, activation, sample_outputs):
        if self.from_logits is not None:
            return self.from_logits
        if loss_from_logits:
            return True
        if activation == "linear":
            return True
        if activation in ("softmax", "sigmoid"):
            return False
        # Unknown architecture: outputs outside [0, 1] can only be logits.
        finite = sample_outputs[np.isfinite(sample_outputs)]
        return bool(finite.size and (finite.min() < 0 or finite.max() > 1))

    def on_train_begin(self, logs=None):
        keras_output_reuse.remove_leftovers(self.model)  # of an earlier fit that raised
        self._reuse = None
        splits = self._check_configuration()
        self._predictor = keras_prediction.Predictor(
            self.model,
            self.batch_size or keras_prediction.DEFAULT_BATCH_SIZE,
            # judged at the first prediction pass; the metric mode predicts nothing
            automatic=self.batch_size is None and self._metric is None,
        )
        compile_config = self._compile_config()
        loss_name, loss_from_logits = keras_model.loss_config(compile_config)
        activation = keras_model.last_activation(self.model)
        reusable = self._reusable(splits)
        width, sample_outputs = None, np.zeros(0)
        if reusable and not self._from_logits_needs_outputs(loss_from_logits, activation):
            # No probe: the model declares its width, and Keras's validation pass (or, where
            # it cannot be used, the first prediction pass) traces what the probe would.
            width = self._declared_output_width()
        if width is None and "validation" in splits:
            width, sample_outputs = self._predictor.probe(splits["validation"])
        elif width is None:  # the metric mode, counting what Keras validates on
            width = self._model_output_width()
        self._splits = splits
        labels = {
            split: examples.all_labels(self._predictor.batch_size)
            for split, examples in splits.items()
        }
        layout = inputs.new_layout(
            width,
            "MetricsDiagCallback",
            multi_label=self._detect_multi_label(loss_name, labels, width),
            from_logits=self._detect_from_logits(
                loss_from_logits, activation, np.asarray(sample_outputs, dtype=np.float64)
            ),
            class_names=inputs.check_class_names(self.class_names, "MetricsDiagCallback"),
        )
        self._layout, label_counts = self._label_counts(layout, splits, labels, loss_name)
        self._check_examples(splits, labels)
        if self._metric is not None:
            # Read when Keras first traces its train step, which comes after this.
            self._metric.from_logits = self._layout.from_logits
            self._metric.multi_label = self._layout.multi_label
        self._in_fit = True
        self._writer = self._create_writer()
        split_examples = {split: len(y) for split, y in labels.items()}
        info = self._run_info(
            compile_config, loss_name, loss_from_logits, activation, split_examples
        )
        self._write_run_start(info, label_counts)
        if reusable:  # last: nothing after it can raise and leave the model patched
            self._install_reuse(splits["validation"])

    @staticmethod
    def _detect_multi_label(loss_name, labels, width):
        """Whether the model is multi-label: a binary loss on more than one output unit
        (`losses.is_multilabel_loss`), or multi-hot labels (`labels.looks_multi_hot`; the
        loss-mismatch rule then names a categorical loss on them).
        """
        if losses.is_multilabel_loss(loss_name, width):
            return True
        return any(labels_lib.looks_multi_hot(y, width) for y in labels.values())

    def _label_counts(self, layout, splits, labels, loss_name):
        """``(layout, {split: examples per class})``: every split's labels checked against
        the layout (rows per label, multi-label), which gets the label format they are in.
        """
        label_counts = {}
        for split, examples in splits.items():
            y = labels[split]
            try:
                targets = layout.targets(y)
                label_format = layout.format_of(y)
            except ValueError as error:
                raise ValueError(
                    "MetricsDiagCallback: %s labels: %s%s"
                    % (examples.name, error, self._regression_note(layout, loss_name))
                ) from error
            if layout.multi_label:
                label_counts[split] = counts_lib.label_positives(targets, layout.num_classes)
            else:
                label_counts[split] = counts_lib.label_distribution(targets, layout.num_classes)
            if layout.label_format is None:
                layout = dataclasses.replace(layout, label_format=label_format)
        return layout, label_counts

    @staticmethod
    def _regression_note(layout, loss_name):
        """What to add to a label error when the model is a regression model: one output unit
        trained with a regression loss (its labels are then rarely class ids).
        """
        if layout.output_width != 1 or losses.normalized_loss_name(loss_name) not in (
            losses.REGRESSION_LOSSES
        ):
            return ""
        return (
            ". This is a regression model (one output unit, loss %r): MetricsDiagCallback"
            " records classifiers. For C classes, give the model Dense(C, activation='softmax')"
            " and loss='sparse_categorical_crossentropy' with integer labels" % loss_name
        )

    def _create_writer(self):
        # Non-chief workers still predict (their replicas take part in the same steps) but
        # write nothing, so one multi-worker training gives one run.
        strategy = self._predictor.strategy()
        chief = strategy is None or keras_model.is_chief(strategy)
        return sinks.create_sink(self.log_dir, write=chief)

    def _run_info(self, compile_config, loss_name, loss_from_logits, activation, split_examples):
        info = records.describe_run(
            output_width=self._layout.output_width,
            outputs_are_logits=self._layout.from_logits,
            label_format=self._layout.label_format,
            class_names=list(self._layout.class_names),
            split_examples=split_examples,
            num_thresholds=self._thresholds.size,
            counting="keras_metric" if self._metric is not None else "prediction",
            model_name=getattr(self.model, "name", None),
            output_activation=activation,
            loss_name=loss_name,
            loss_from_logits=loss_from_logits,
            metrics=keras_model.metric_names(compile_config),
            versions=_versions(),
        )
        info["keras_backend"] = keras.backend.backend()
        return info

    def _write_run_start(self, info, label_counts):
        written = [records.run_info(to_json_value(info))]
        for split, distribution in label_counts.items():
            written.append(records.label_distribution(distribution, split, self._class_names))
        if "train" in self._splits and "validation" in self._splits:
            written.append(records.overlap(self._overlap(self._splits)))
        self._writer.write(written, 0)
        self._writer.flush()

    def _compile_config(self):
        try:
            return self.model.get_compile_config() or {}
        except Exception:  # A model compiled with unserializable objects: detect less.
            return {"loss": getattr(self.model, "loss", None)}

    def _overlap(self, splits):
        try:
            return overlap_lib.duplicate_overlap(
                splits["train"].digests(self._predictor.batch_size),
                splits["validation"].digests(self._predictor.batch_size),
            )
        except (ValueError, TypeError) as error:
            return {"error": "the overlap check could not hash the inputs: %s" % error}

    def _reusable(self, splits):
        """Whether Keras's own validation outputs may stand for the prediction pass of
        ``validation_data`` (`keras_output_reuse`): the default mode, array data, and a model
        the patch can see every batch of.
        """
        examples = splits.get("validation")
        if self._metric is not None or examples is None or examples.dataset is not None:
            return False
        reason = keras_output_reuse.blocked_reason(self.model)
        if reason is not None:
            logger.debug("MetricsDiagCallback predicts validation_data itself: %s", reason)
        return reason is None

    def _install_reuse(self, examples):
        reuse = keras_output_reuse.OutputReuse(
            self.model, examples.x, examples.y, lambda batch: self._take_validation_batch(batch)
        )
        try:
            reuse.install()
        except Exception:  # Then the callback predicts, as without the patch.
            logger.warning(
                "MetricsDiagCallback: Keras's validation outputs cannot be taken; predicting"
                " validation_data instead",
                exc_info=True,
            )
            return
        self._reuse = reuse

    def _take_validation_batch(self, batch):
        """One batch of Keras's validation pass (`OutputReuse.take`); never raises into it."""
        try:
            self._reuse.take(batch)
        except Exception:  # The epoch end then predicts the rows itself.
            logger.debug("MetricsDiagCallback: a validation batch was not taken", exc_info=True)
            self._reuse.abandon()

    # -- per epoch: never raises ----------------------------------------------------------

    @property
    def _class_names(self):
        return list(self._layout.class_names)

    def _evaluate(self, split, examples):
        """Predict ``examples`` batch by batch and count them; returns (counts, example
        records' `EpochExamples` or None, slices' `EpochSlices` or None, problems).
        """
        result = self._layout.new_counts(self._thresholds)
        epoch = slices = None
        if self._examples is not None:
            epoch = example_recorder.EpochExamples(
                self._layout, self._split_rows[split], thresholds=self._thresholds
            )
        if split == "validation" and self._slice_codes is not None:
            slices = slice_recorder.EpochSlices(
                self._layout,
                self._thresholds,
                self._slice_values,
                self._slice_codes,
                with_examples=self._examples is not None,
            )
        problems, position = [], 0
        for x, y, outputs in self._scored_batches(split, examples):
            rows = np.arange(position, position + len(y))
            position += len(y)
            try:
                if outputs is None:
                    outputs = self._predictor.predict(x)
                converted = self._layout.count(result, y, outputs)
                if epoch is not None:
                    epoch.update(rows, *converted)
                if slices is not None:
                    slices.update(rows, *converted)
            except ValueError as error:
                problems.append(events.bad_batch(examples.name, error))
        return result, (epoch, slices), problems

    def _scored_batches(self, split, examples):
        """``(x, y, outputs)`` batches of ``examples``: ``outputs`` Keras's own of this epoch's
        validation pass where they cover ``validation_data`` (`keras_output_reuse`, ``x``
        None), else None (to predict).
        """
        outputs = self._reuse.outputs() if split == "validation" and self._reuse else None
        if outputs is None:
            for x, y in self._predictor.batches(examples):
                yield x, y, None
            return
        step = keras_prediction.MAX_AUTOMATIC_BATCH_SIZE  # rows counted at a time
        for start in range(0, len(outputs), step):
            yield None, examples.y[start : start + step], outputs[start : start + step]

    def on_epoch_begin(self, epoch, logs=None):
        self._train_counts = None
        if self._reuse is not None:
            self._reuse.new_epoch()

    def on_test_begin(self, logs=None):
        # Inside fit, Keras resets its metrics right after this: the training counts go now.
        if self._in_fit and self._metric is not None:
            self._train_counts = self._metric.counts()
        if self._in_fit and self._reuse is not None:
            self._reuse.begin_pass()

    def on_test_end(self, logs=None):
        if self._reuse is not None:
            self._reuse.end_pass()

    def _metric_counts(self):
        """{split: counts} from the metric: training counts read at `on_test_begin`, and the
        validation counts now; without a validation pass this epoch, the state is training.
        """
        current = self._metric.counts()
        if current is None:
            raise ValueError(
                "the metric of MetricsDiagCallback.metric() counted nothing: add it to"
                " model.compile(metrics=[...])"
            )
        if self._train_counts is None:
            return {"train": current}
        return {"train": self._train_counts, "validation": current}

    def _epoch_counts(self):
        """({split: counts}, {split: EpochExamples}) of this epoch and the problems met making
        them.
        """
        if self._metric is not None:
            return self._metric_counts(), {}, []
        results, epochs, problems = {}, {}, []
        for split, examples in self._splits.items():
            results[split], epochs[split], split_problems = self._evaluate(split, examples)
            problems.extend(split_problems)
        return results, epochs, problems

    def _example_records(self, split, epochs):
        """The records of ``split``'s example records (`ExampleRecorder.records`) and slices
        (`slice_recorder.EpochSlices`) this epoch; ``epochs`` is ``(EpochExamples or None,
        EpochSlices or None)``.
        """
        epoch, slices = epochs
        written, overall = [], None
        if epoch is not None:
            ids, previews = None, None
            if split == "validation":
                ids, previews = self._validation_ids, self._preview_values
            written = self._examples.records(split, epoch, ids, previews)
            overall = epoch.cells.examples(self._examples.budget)["position"]
        if slices is not None:
            record = slices.record(split, self._class_names, overall)
            written += [] if record is None else [record]
        return written

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            return
        problems = []
        try:
            logs_record = records.logs(logs)
            if logs_record is not None:
                self._writer.write([logs_record], epoch)
            results, epochs, problems = self._epoch_counts()
            for split, result in results.items():
                if result.invalid:
                    problems.append(events.nonfinite_predictions(split, result.invalid))
                if result.count:
                    written = records.counts(result, split, self._class_names, self.scalars)
                    if epochs.get(split) is not None:
                        written += self._example_records(split, epochs[split])
                    self._writer.write(written, epoch)
        except Exception as error:  # Recording must never end a training run.
            logger.exception("MetricsDiagCallback: epoch %d could not be recorded", epoch)
            problems.append(events.callback_error(error))
        if problems:
            for problem in problems:
                logger.warning("MetricsDiagCallback, epoch %d: %s", epoch, problem["message"])
            try:
                self._writer.write([records.events(problems)], epoch)
            except Exception:
                logger.exception(
                    "MetricsDiagCallback: could not write the events of epoch %d", epoch
                )
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._in_fit = False
        if self._reuse is not None:
            self._reuse.remove()
            self._reuse = None
        if self._writer is not None:
            self._writer.flush()


def _versions():
    """Versions of Keras and of the frameworks this process has imported."""
    versions = {"keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", None)
    return versions

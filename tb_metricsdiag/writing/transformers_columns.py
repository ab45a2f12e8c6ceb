"""The eval dataset's columns that the Transformers callback reads for the example records:
ids, previews and groups (`DatasetColumns`). The Trainer drops such columns from the model's
batches (``remove_unused_columns``), so they are read from the dataset being evaluated, once
per dataset, and matched to the evaluation's rows by its label column. Imports no framework.
"""

import collections.abc
import dataclasses

import numpy as np

from tb_metricsdiag.writing import inputs
from tb_metricsdiag.writing.callback_writing import WHO

# The keys of `DatasetColumns.columns` that are not groups ("(" is no group key).
_IDS, _PREVIEWS = "(ids)", "(previews)"


def checked_columns(example_ids, previews, groups):
    """``{what: column}`` of the dataset columns the callback reads: `_IDS`, `_PREVIEWS` and
    each group key; ValueError naming the forms they take.
    """
    columns = {}
    if example_ids not in (None, False):
        if not isinstance(example_ids, str) or not example_ids:
            raise ValueError(
                "%s: example_ids must be the name of an eval dataset column of ids (e.g."
                " 'id'), None (the rows' positions) or False (no example records), got %r"
                % (WHO, example_ids)
            )
        columns[_IDS] = example_ids
    if previews is not None:
        if example_ids is False:
            raise ValueError(
                "%s: previews need example records, which example_ids=False turns off: drop"
                " one of them" % WHO
            )
        if not isinstance(previews, str) or not previews:
            raise ValueError(
                "%s: previews must be the name of an eval dataset column of texts (e.g."
                " 'text'), got %r" % (WHO, previews)
            )
        columns[_PREVIEWS] = previews
    if groups is not None:
        if isinstance(groups, (list, tuple)):
            groups = {column: column for column in groups}
        if (
            not isinstance(groups, collections.abc.Mapping)
            or not groups
            or not all(isinstance(c, str) and c for c in groups.values())
        ):
            raise ValueError(
                "%s: groups must be a list of eval dataset columns (e.g. ['language']) or"
                " {key: column}, got %r" % (WHO, groups)
            )
        inputs.check_groups({key: [] for key in groups}, 0, "%s: groups" % WHO)  # the keys
        columns.update(groups)
    return columns


def _label_column(dataset, label_names):
    """The dataset's label column (the Trainer's ``label_names``, else ``labels`` or
    ``label``), or None when it has none that can be read cheaply.
    """
    names = getattr(dataset, "column_names", None)
    if names is None:
        try:
            first = dataset[0] if len(dataset) else None
        except Exception:  # not indexable by position: no label check
            return None
        names = list(first) if isinstance(first, collections.abc.Mapping) else []
    for name in list(label_names or ()) + ["labels", "label"]:
        if name in names:
            return name
    return None


def dataset_columns(dataset, columns):
    """``{column: [value per row]}`` of an eval dataset: a ``datasets.Dataset`` (by its
    columns), or any dataset of ``len(dataset)`` rows that are dicts (read row by row;
    scalar tensors and NumPy scalars as Python values).

    Raises:
      ValueError: a column the dataset does not have, naming those it has.
    """
    names = getattr(dataset, "column_names", None)
    if names is not None:
        missing = [column for column in columns if column not in names]
        if missing:
            raise ValueError(
                "%s: the eval dataset has no column %r (its columns: %s)"
                % (WHO, missing[0], sorted(names))
            )
        return {column: list(dataset[column]) for column in columns}
    values = {column: [] for column in columns}
    for index in range(len(dataset)):
        row = dataset[index]
        if not isinstance(row, collections.abc.Mapping):
            raise ValueError(
                "%s: the eval dataset's rows are %s, not dicts, so it has no columns to read"
                " example_ids, previews or groups from" % (WHO, type(row).__name__)
            )
        for column in columns:
            if column not in row:
                raise ValueError(
                    "%s: the eval dataset has no column %r (row %d has %s)"
                    % (WHO, column, index, sorted(row))
                )
            value = row[column]
            if getattr(value, "ndim", None) == 0:
                value = value.item()  # a scalar tensor or NumPy scalar
            values[column].append(value)
    return values


def _check_same_rows(labels, evaluation, column):
    """ValueError unless the dataset's label column equals the evaluation's labels, row by
    row: the columns read belong to the rows evaluated, in their order.
    """
    given = np.asarray([np.asarray(label, dtype=np.float64) for label in labels])
    targets = np.asarray(evaluation.targets, dtype=np.float64)
    if given.shape[0] != targets.shape[0]:
        raise ValueError(
            "%s: the eval dataset has %d rows but the evaluation %d: its columns cannot be"
            " matched to the predictions" % (WHO, given.shape[0], targets.shape[0])
        )
    if given.size != targets.size or not np.array_equal(given.reshape(targets.shape), targets):
        raise ValueError(
            "%s: the eval dataset's %r column differs from the evaluation's labels, so its"
            " rows were not evaluated in order (a custom sampler or dataloader?): the columns"
            " cannot be matched to the predictions; leave example_ids, previews and groups"
            " out" % (WHO, column)
        )


class DatasetColumns:
    """The columns a callback reads of each eval dataset (`checked_columns`: `_IDS`,
    `_PREVIEWS`, group keys), and what it read of the latest dataset of each split.

    Args:
      example_ids, previews, groups: the callback's arguments of those names.

    Raises:
      ValueError: an argument of the wrong form, naming the forms it takes.
    """

    def __init__(self, example_ids, previews, groups):
        self.columns = checked_columns(example_ids, previews, groups)
        self._read = {}  # split -> (dataset, {column: values}, label column) read from it

    def __bool__(self):
        return bool(self.columns)

    def attach(self, evaluation, split, found):
        """``evaluation`` with the ids, previews and groups of the dataset being evaluated
        (``found``: `transformers_trainer.evaluated_dataset`'s ``(trainer, dataset)``, or
        None), checked as every writer checks them; ValueError naming the fix.
        """
        if found is None:
            raise ValueError(
                "%s: cannot find the eval dataset that Trainer.evaluate is evaluating, to read"
                " its columns %s: evaluate with Trainer.evaluate (or trainer.train's"
                " evaluations), or leave example_ids, previews and groups out"
                % (WHO, sorted(set(self.columns.values())))
            )
        trainer, dataset = found
        cached = self._read.get(split)
        if cached is None or cached[0] is not dataset:
            wanted = sorted(set(self.columns.values()))
            label_column = _label_column(dataset, getattr(trainer, "label_names", None))
            values = dataset_columns(dataset, wanted + ([label_column] if label_column else []))
            cached = self._read[split] = (dataset, values, label_column)
        _, values, label_column = cached
        n = evaluation.size
        if label_column is not None:
            _check_same_rows(values[label_column], evaluation, label_column)
        elif len(next(iter(values.values()))) != n:
            raise ValueError(
                "%s: the eval dataset has %d rows but the evaluation %d: the columns cannot be"
                " matched to the predictions" % (WHO, len(next(iter(values.values()))), n)
            )
        groups = {
            key: values[column]
            for key, column in self.columns.items()
            if key not in (_IDS, _PREVIEWS)
        }
        return dataclasses.replace(
            evaluation,
            example_ids=inputs.check_example_ids(
                values.get(self.columns.get(_IDS)), n, "%s: example_ids" % WHO
            ),
            previews=inputs.check_previews(
                values.get(self.columns.get(_PREVIEWS)), n, "%s: previews" % WHO
            ),
            groups=inputs.check_groups(groups or None, n, "%s: groups" % WHO),
        )

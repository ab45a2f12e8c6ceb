"""The counts stored under the confusion tag: a single-label run's ``[C, C]`` confusion matrices
(dense integers, or encoded as the diagonal and the nonzero cells off it), read as matrices,
steps or O(C) totals; a multi-label run's per-label ``[K, 2, 2]`` counts; and the exact-match
counts beside them.

Nothing here trusts what it decodes: every shape and size is checked, and a problem is a
`FormatError`. Pure NumPy.
"""

import numpy as np

from tb_metricsdiag.core import metrics
from tb_metricsdiag.format.integer_counts import (
    DTYPE_OF_CODE,
    check_non_negative,
    packed_segments,
)
from tb_metricsdiag.format.schema import (
    CONFUSION_ENCODING,
    MAX_CLASSES,
    TASK_MULTILABEL,
    FormatError,
)

# Bytes before the values of an encoded confusion matrix: C and K as little-endian uint32, then
# the type codes of the diagonal, the gaps and the counts.
_CONFUSION_HEADER = 11


def encode_confusion(matrix):
    """The stored bytes of a ``[C, C]`` confusion matrix of non-negative integers (format
    version 5, `CONFUSION_ENCODING`): its diagonal and its nonzero cells off the diagonal.

    Layout: ``C`` and ``K`` (the number of nonzero off-diagonal cells) as little-endian
    uint32; three type codes (as `encode_threshold_counts`'s first byte: ``B``, ``H``, ``i``
    or ``q``) of the three arrays that follow, each in the smallest of those types that holds
    it (`compact_ints`): the ``C`` diagonal counts; the ``K`` gaps between the row-major
    positions ``i * C + j`` of the off-diagonal nonzero cells in ascending order (the first
    gap is the first position itself); their ``K`` counts. A matrix is mostly zeros once
    classes are many (at most one nonzero cell per misclassified example), and the gaps are
    small numbers, so 1,000 classes take kilobytes where the dense integers took a megabyte.
    No compression: the size of everything is known from the header, so a decoder checks it
    before reading anything. Lossless: `decode_confusion_cells` inverts it.

    Raises:
      ValueError: ``matrix`` is not square, or holds negative or non-integer counts.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError("a confusion matrix must have shape [C, C], got %s" % (matrix.shape,))
    (payload,) = encode_each_confusion(matrix[None])
    return payload


def encode_each_confusion(matrices):
    """`encode_confusion` of each of ``matrices`` ``[S, C, C]`` (every slice's), a list of
    ``S`` payloads: the cells and their types found for all at once.

    Raises:
      ValueError: matrices that are not square, or hold negative or non-integer counts.
    """
    matrices = np.asarray(matrices)
    if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2] or matrices.shape[1] < 1:
        raise ValueError("confusion matrices must have shape [S, C, C], got %s" % (matrices.shape,))
    if matrices.dtype.kind not in "iu" or (matrices.size and matrices.min() < 0):
        raise ValueError("a confusion matrix holds non-negative integer counts")
    num_matrices, num_classes = matrices.shape[:2]
    flat = matrices.reshape(num_matrices, -1).astype(np.int64)
    diagonals = flat[:, :: num_classes + 1].copy()  # cell (i, i) is i * (C + 1)
    flat[:, :: num_classes + 1] = 0
    owners, positions = np.nonzero(flat)  # row-major: matrix by matrix, ascending within
    sizes = np.bincount(owners, minlength=num_matrices)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    gaps = positions.copy()  # np.diff within each matrix; its first gap is its first position
    gaps[1:] -= positions[:-1]
    firsts = bounds[:-1][sizes > 0]
    gaps[firsts] = positions[firsts]
    parts = (
        packed_segments(diagonals, np.arange(num_matrices + 1) * num_classes),
        packed_segments(gaps, bounds),
        packed_segments(flat[owners, positions], bounds),
    )
    headers = np.stack([np.full(num_matrices, num_classes), sizes], axis=1).astype("<u4")
    return [
        header.tobytes() + b"".join(code for code, _ in pieces) + b"".join(d for _, d in pieces)
        for header, pieces in zip(headers, zip(*parts))
    ]


def decode_confusion_cells(payload, what="confusion matrix"):
    """``(diagonal [C], rows [K], cols [K], counts [K])`` (int64) of `encode_confusion` bytes:
    the diagonal, and the off-diagonal nonzero cells in row-major order.

    The header's ``C`` and ``K`` are checked (``1 <= C <= MAX_CLASSES``, ``K <= C (C - 1)``)
    and the payload's length must be exactly what they and the type codes make, before any
    value is read; then every count must be non-negative (positive off the diagonal) and every
    position inside the matrix, off its diagonal and after the one before.

    Raises:
      FormatError: the payload is anything else.
    """
    if not isinstance(payload, bytes) or len(payload) < _CONFUSION_HEADER:
        raise FormatError("encoded %s is malformed" % what)
    num_classes, cells = (int(value) for value in np.frombuffer(payload[:8], dtype="<u4"))
    if not 1 <= num_classes <= MAX_CLASSES:
        raise FormatError(
            "encoded %s of %d classes, expected 1 to %d" % (what, num_classes, MAX_CLASSES)
        )
    if cells > num_classes * (num_classes - 1):
        raise FormatError(
            "encoded %s has %d cells off the diagonal, more than a %d-class matrix holds"
            % (what, cells, num_classes)
        )
    codes = [payload[8 + k : 9 + k] for k in range(3)]
    if any(code not in DTYPE_OF_CODE for code in codes):
        raise FormatError("encoded %s names an unknown integer type" % what)
    dtypes = [DTYPE_OF_CODE[code] for code in codes]
    sizes = (num_classes, cells, cells)
    expected = _CONFUSION_HEADER + sum(size * dtype.itemsize for size, dtype in zip(sizes, dtypes))
    if len(payload) != expected:
        raise FormatError(
            "encoded %s of %d bytes, expected %d for %d classes and %d cells"
            % (what, len(payload), expected, num_classes, cells)
        )
    parts, offset = [], _CONFUSION_HEADER
    for size, dtype in zip(sizes, dtypes):
        parts.append(
            np.frombuffer(payload, dtype=dtype, count=size, offset=offset).astype(np.int64)
        )
        offset += size * dtype.itemsize
    diagonal, gaps, counts = parts
    cells_in_matrix = num_classes * num_classes
    if diagonal.min() < 0 or (cells and counts.min() < 1):
        raise FormatError(
            "encoded %s holds negative counts, or zero counts off the diagonal" % what
        )
    if cells and (gaps[0] < 0 or gaps[1:].min(initial=1) < 1 or gaps.max() >= cells_in_matrix):
        raise FormatError("encoded %s lists its cells out of order or outside the matrix" % what)
    positions = np.cumsum(gaps)  # each gap below C^2: no overflow
    rows, cols = np.divmod(positions, num_classes)
    if cells and (positions[-1] >= cells_in_matrix or np.any(rows == cols)):
        raise FormatError("encoded %s lists a cell outside the matrix or on its diagonal" % what)
    return diagonal, rows, cols, counts


def confusion_from_cells(diagonal, rows, cols, counts):
    """The ``[C, C]`` int64 matrix of a diagonal and off-diagonal cells (as
    `decode_confusion_cells` gives them).
    """
    num_classes = len(diagonal)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix[np.arange(num_classes), np.arange(num_classes)] = diagonal
    matrix[rows, cols] = counts
    return matrix


def _encoded_payload(value, what):
    """The stored item of an encoded confusion datum's value, a string scalar: bytes, unless
    damaged (`decode_confusion_cells` refuses anything else).
    """
    if value.shape != ():
        raise FormatError("encoded %s of shape %s, expected a scalar" % (what, value.shape))
    return value.item()


def _check_confusion_content(content):
    encoding = (content or {}).get("encoding")
    if encoding is not None and encoding != CONFUSION_ENCODING:
        raise FormatError("confusion matrices in an unknown encoding %r" % (encoding,))


def confusion_matrix(value, what, content=None):
    """The ``[C, C]`` int64 confusion matrix of a stored value: `encode_confusion` bytes (format
    version 5), or the integers as a tensor (before). Each point says which by its value (a
    string scalar or an integer matrix), since a series keeps the plugin content of its first
    point only: a run continued by a newer writer holds both.

    Raises:
      FormatError: ``content`` names another encoding, or the value is neither of those.
    """
    _check_confusion_content(content)
    matrix = np.asarray(value)
    if matrix.dtype.kind in "OSV":
        return confusion_from_cells(*decode_confusion_cells(_encoded_payload(matrix, what), what))
    _check_confusion_shape(matrix, what)
    # Signed or unsigned integers (dtype kinds "i", "u"); checked for every stored matrix of a
    # run, so the cheapest test (np.issubdtype costs ten times more).
    if matrix.dtype.kind not in "iu":
        raise FormatError("%s holds %s values, expected integers" % (what, matrix.dtype))
    check_non_negative(matrix, what)
    return matrix.astype(np.int64)


def _check_confusion_shape(matrix, what):
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise FormatError("%s has shape %s, expected [C, C]" % (what, matrix.shape))
    if matrix.shape[0] > MAX_CLASSES:
        raise FormatError("%s has %d classes, more than %d" % (what, matrix.shape[0], MAX_CLASSES))


def confusion_matrices(data, content=None):
    """``{step: int64 [C, C]}`` of confusion data, each matrix checked as by `confusion_matrix`.

    A run holds hundreds of matrices and the diagnostics read them all: when they share one
    shape and integer type they are stacked, checked and converted at once (the matrices are
    views of one array), else one by one, which also names the step of a bad one.
    """
    _check_confusion_content(content)
    try:
        stacked = np.stack([np.asarray(datum.numpy) for datum in data])
    except ValueError:  # no data, or matrices of different shapes
        stacked = None
    if stacked is None or stacked.ndim != 3 or stacked.dtype.kind not in "iu":
        return {
            datum.step: confusion_matrix(datum.numpy, "confusion matrix at step %d" % datum.step)
            for datum in data
        }
    _check_confusion_shape(stacked[0], "confusion matrix at step %d" % data[0].step)
    if stacked.min() < 0:  # which step, only when one is bad
        for datum, matrix in zip(data, stacked):
            check_non_negative(matrix, "confusion matrix at step %d" % datum.step)
    return dict(zip((datum.step for datum in data), stacked.astype(np.int64)))


def confusion_steps(data, content=None):
    """Ascending distinct steps of confusion data, each point checked to hold a valid matrix
    (as by `confusion_matrices`); encoded points are checked without building their matrix.
    """
    _check_confusion_content(content)
    dense, steps = [], set()
    for datum in data:
        what = "confusion matrix at step %d" % datum.step
        value = np.asarray(datum.numpy)
        if value.dtype.kind in "OSV":
            decode_confusion_cells(_encoded_payload(value, what), what)
            steps.add(datum.step)
        else:
            dense.append(datum)
    return sorted(steps.union(confusion_matrices(dense)))


def totals_from_cells(diagonal, rows, cols, counts):
    """The `metrics.ConfusionTotals` of a diagonal and off-diagonal cells (as
    `decode_confusion_cells` gives them), without the matrix: each row and column sum is its
    diagonal count plus its cells' counts.
    """
    num_classes = len(diagonal)
    return metrics.ConfusionTotals(
        diagonal,
        diagonal + np.bincount(rows, weights=counts, minlength=num_classes).astype(np.int64),
        diagonal + np.bincount(cols, weights=counts, minlength=num_classes).astype(np.int64),
    )


def confusion_totals(data, content=None):
    """``{step: metrics.ConfusionTotals}`` of confusion data, each point checked as by
    `confusion_matrices`: an encoded point (format version 5) is reduced from its cells
    (`totals_from_cells`) without building its matrix; the dense points (before) are reduced
    after they are read, in one pass over their stack.

    Exact: the totals of ``confusion_matrices(data)[step]`` (`metrics.confusion_totals`).
    """
    _check_confusion_content(content)
    encoded, dense = {}, []
    for index, datum in enumerate(data):
        what = "confusion matrix at step %d" % datum.step
        value = np.asarray(datum.numpy)
        if value.dtype.kind in "OSV":
            cells = decode_confusion_cells(_encoded_payload(value, what), what)
            encoded[index] = totals_from_cells(*cells)
        else:
            dense.append(datum)
    matrices = confusion_matrices(dense) if dense else {}
    steps = list(matrices)
    try:
        reduced = metrics.stacked_confusion_totals([matrices[step] for step in steps])
    except ValueError:  # no matrix, or matrices of different sizes
        reduced = [metrics.confusion_totals(matrices[step]) for step in steps]
    by_step = dict(zip(steps, reduced))
    # A step written twice keeps its last point, as `confusion_matrices` does.
    return {
        datum.step: encoded[index] if index in encoded else by_step[datum.step]
        for index, datum in enumerate(data)
    }


def is_multilabel(content):
    """Whether confusion plugin content describes a multi-label run (`schema.TASK_MULTILABEL`)."""
    return content.get("task") == TASK_MULTILABEL


def multilabel_matrices(data):
    """``{step: int64 [K, 2, 2]}``: the per-label ``[[tn, fp], [fn, tp]]`` of a multi-label run's
    confusion data, each checked: integers, non-negative, at most `MAX_CLASSES` labels, and
    every label's four counts summing to the same number of rows.
    """
    result = {}
    for datum in data:
        what = "multi-label confusion counts at step %d" % datum.step
        matrices = np.asarray(datum.numpy)
        if matrices.ndim != 3 or matrices.shape[1:] != (2, 2) or matrices.shape[0] < 1:
            raise FormatError("%s have shape %s, expected [K, 2, 2]" % (what, matrices.shape))
        if matrices.shape[0] > MAX_CLASSES:
            raise FormatError(
                "%s have %d labels, more than %d" % (what, matrices.shape[0], MAX_CLASSES)
            )
        if matrices.dtype.kind not in "iu":
            raise FormatError("%s hold %s values, expected integers" % (what, matrices.dtype))
        check_non_negative(matrices, what)
        matrices = matrices.astype(np.int64)
        rows = matrices.sum(axis=(1, 2))
        if np.any(rows != rows[0]):
            raise FormatError("%s count different numbers of rows per label" % what)
        result[datum.step] = matrices
    return result


def decision_totals(content, data):
    """``{step: counts}`` of a confusion series as a run's history keeps them, at most O(C)
    each: `multilabel_matrices` for a multi-label run (``[K, 2, 2]`` already is), else
    `confusion_totals`.
    """
    if is_multilabel(content):
        return multilabel_matrices(data)
    return confusion_totals(data, content)


def decision_steps(content, data):
    """Ascending distinct steps of a confusion series, each point checked (as by
    `decision_totals`; `confusion_steps` for a single-label run).
    """
    if is_multilabel(content):
        return sorted(multilabel_matrices(data))
    return confusion_steps(data, content)


def exact_matches(value, rows):
    """The number of rows matched exactly, from an `schema.KIND_EXACT_MATCH` value, checked
    against ``rows`` (the rows of the run's multi-label counts at the same step).
    """
    value = np.asarray(value)
    if value.shape != (2,) or value.dtype.kind not in "iu":
        raise FormatError("exact-match counts of shape %s, expected [2] integers" % (value.shape,))
    matched, counted = int(value[0]), int(value[1])
    if counted != rows or not 0 <= matched <= counted:
        raise FormatError(
            "exact-match counts (%d of %d rows) do not fit the %d rows of the label counts"
            % (matched, counted, rows)
        )
    return matched

"""`tb_metricsdiag.core.examples`: per-cell top-k examples, correctness bits, the epoch budget
and flips, against NumPy brute force and scikit-learn's confusion matrices."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

from tb_metricsdiag.core import examples
from tb_metricsdiag.core.examples import (
    DEFAULT_EPOCH_BUDGET,
    MIN_EXAMPLES_PER_CELL,
    CellExamples,
    flips,
    pack_correctness,
    per_cell_limit,
    unpack_correctness,
)

# -- Brute force ------------------------------------------------------------------------------


def brute_force_cells(cells, keys, positions, k):
    """Every cell's rows sorted by (key, position), the first k: a plain loop over cells."""
    top = {}
    for cell in np.unique(cells):
        rows = np.flatnonzero(cells == cell)
        order = rows[np.lexsort((positions[rows], keys[rows]))]
        top[int(cell)] = (order[:k], rows.size)
    return top


def single_label_batch(rng, n, num_classes, dtype=np.float32, ties=False, accuracy=0.7):
    y_true = rng.integers(0, num_classes, n)
    y_pred = np.where(rng.random(n) < accuracy, y_true, rng.integers(0, num_classes, n))
    score = rng.random(n)
    if ties:
        score = np.round(score, 1)  # many equal scores, ties at every cut
    score = score.astype(dtype)
    true_score = np.where(y_true == y_pred, score, (rng.random(n) * (1 - score)).astype(dtype))
    return y_true, y_pred, score, true_score


def feed(acc, positions, arrays, rng, num_batches):
    """Feed the rows in ``num_batches`` random contiguous pieces of a shuffled order."""
    order = rng.permutation(positions.size)
    cuts = np.sort(rng.choice(np.arange(1, positions.size), num_batches - 1, replace=False))
    for piece in np.split(order, cuts):
        acc.update(positions[piece], *(a[piece] for a in arrays))


def check_against_brute_force(acc, y_true, y_pred, score, true_score, positions, num_classes):
    cells = y_true * num_classes + y_pred
    keys = np.where(y_true == y_pred, score.astype(np.float64), -score.astype(np.float64))
    expected = brute_force_cells(cells, keys, positions, acc.k)
    kept = acc.examples()
    assert kept["limit"] is None
    assert sum(min(size, acc.k) for _, size in expected.values()) == kept["position"].size
    for cell, (rows, size) in expected.items():
        true, pred = divmod(cell, num_classes)
        got = acc.cell_examples(true, pred)
        assert got["count"] == size
        # Ties broken by position: the exact rows, in order.
        np.testing.assert_array_equal(got["position"], positions[rows])
        np.testing.assert_array_equal(got["score"], score[rows].astype(np.float64))
        np.testing.assert_array_equal(got["true_score"], true_score[rows].astype(np.float64))
        # Ties in any order: the kept keys are the smallest ones of the cell.
        all_keys = np.sort(keys[cells == cell])
        np.testing.assert_array_equal(np.sort(keys[rows]), all_keys[: acc.k])
        in_cell = (kept["true"] == true) & (kept["pred"] == pred)
        np.testing.assert_array_equal(kept["position"][in_cell], positions[rows])
        np.testing.assert_array_equal(kept["rank"][in_cell], np.arange(rows.size))
    np.testing.assert_array_equal(
        acc.confusion_matrix(), confusion_matrix(y_true, y_pred, labels=range(num_classes))
    )


@pytest.mark.parametrize(
    "seed, n, num_classes, dtype, ties, num_batches",
    [
        (0, 500, 2, np.float32, False, 1),
        (1, 2000, 3, np.float64, True, 7),
        (2, 5000, 10, np.float32, True, 13),
        (3, 5000, 10, np.float64, False, 2),
        (4, 3000, 1000, np.float32, False, 5),
        (5, 20000, 50, np.float32, True, 40),
        (6, 30, 10, np.float64, True, 30),  # one row per batch
    ],
)
def test_top_k_per_cell_matches_brute_force(seed, n, num_classes, dtype, ties, num_batches):
    rng = np.random.default_rng(seed)
    arrays = single_label_batch(rng, n, num_classes, dtype, ties)
    positions = rng.permutation(n)  # ids in any order
    acc = CellExamples(num_classes, k=12)
    feed(acc, positions, arrays, rng, num_batches)
    check_against_brute_force(acc, *arrays, positions, num_classes)


@pytest.mark.parametrize("pending_rows", [1, 50])
def test_pending_batches_merged_at_any_size(monkeypatch, pending_rows):
    # Candidates wait until there are as many as kept examples; merging after every batch
    # or after a few gives the same.
    monkeypatch.setattr(examples, "_PENDING_ROWS", pending_rows)
    rng = np.random.default_rng(17)
    arrays = single_label_batch(rng, 6000, 20, np.float32, ties=True)
    positions = rng.permutation(6000)
    acc = CellExamples(20, k=11)
    feed(acc, positions, arrays, rng, 60)
    check_against_brute_force(acc, *arrays, positions, 20)


@pytest.mark.parametrize("ties", [False, True])
def test_a_large_batch_is_thinned_exactly(ties):
    # Above _THIN_MIN_ROWS rows the batch is sampled before sorting; the result is exact.
    rng = np.random.default_rng(7)
    n = examples._THIN_MIN_ROWS * 2 + 123
    arrays = single_label_batch(rng, n, 10, np.float32, ties, accuracy=0.9)
    positions = np.arange(n)
    acc = CellExamples(10)
    acc.update(positions, *arrays)
    check_against_brute_force(acc, *arrays, positions, 10)


def test_saturated_scores_keep_the_lowest_positions():
    # A saturated model: most scores exactly 1.0 in float32; ties at the cut are broken by
    # position whatever the batches.
    rng = np.random.default_rng(8)
    n = examples._THIN_MIN_ROWS + 5000
    y_true = rng.integers(0, 3, n)
    y_pred = np.where(rng.random(n) < 0.95, y_true, (y_true + 1) % 3)
    score = np.where(rng.random(n) < 0.99, 1.0, rng.random(n)).astype(np.float32)
    positions = np.arange(n)
    for num_batches in (1, 9):
        acc = CellExamples(3)
        feed(acc, positions, (y_true, y_pred, score, score), rng, num_batches)
        check_against_brute_force(acc, y_true, y_pred, score, score, positions, 3)


def test_float64_scores_are_ordered_exactly_where_float32_ties_them():
    # 0.5 and 0.5 + 1e-12 are equal in float32: the exact order still holds.
    base = np.array([0.5, 0.5 + 1e-12, 0.5 - 1e-12, 0.5 + 2e-12] * 10)
    n = base.size
    acc = CellExamples(2, k=10)
    acc.update(np.arange(n), np.zeros(n, int), np.ones(n, int), base, 1 - base)
    got = acc.cell_examples(0, 1)
    expected = np.lexsort((np.arange(n), -base))[:10]  # most confident errors first
    np.testing.assert_array_equal(got["position"], expected)
    acc = CellExamples(2, k=10)
    acc.update(np.arange(n), np.ones(n, int), np.ones(n, int), base, base)
    expected = np.lexsort((np.arange(n), base))[:10]  # least confident right ones first
    np.testing.assert_array_equal(acc.cell_examples(1, 1)["position"], expected)


def test_scores_beyond_float32_keep_their_order():
    score = np.array([1e300, 2e300, -1e300, 0.0, -0.0, 5e-324, 3.0])
    n = score.size
    acc = CellExamples(2, k=10)
    acc.update(np.arange(n), np.zeros(n, int), np.zeros(n, int), score, score)
    np.testing.assert_array_equal(
        acc.cell_examples(0, 0)["position"], np.lexsort((np.arange(n), score))
    )


def test_order_does_not_depend_on_batches_or_merges():
    rng = np.random.default_rng(9)
    n = 4000
    arrays = single_label_batch(rng, n, 7, np.float32, ties=True)
    positions = np.arange(n)
    whole = CellExamples(7)
    whole.update(positions, *arrays)
    first, second = CellExamples(7), CellExamples(7)
    half = rng.permutation(n)
    feed(first, positions[half[:1500]], [a[half[:1500]] for a in arrays], rng, 5)
    feed(second, positions[half[1500:]], [a[half[1500:]] for a in arrays], rng, 3)
    first.merge(second)
    for key, value in whole.examples().items():
        if value is None:
            assert first.examples()[key] is None
        else:
            np.testing.assert_array_equal(first.examples()[key], value)
    np.testing.assert_array_equal(first.confusion_matrix(), whole.confusion_matrix())
    np.testing.assert_array_equal(first.correctness_bits(), whole.correctness_bits())


def test_multi_label_cells_match_brute_force_and_scikit_learn():
    rng = np.random.default_rng(10)
    n, num_labels = 3000, 6
    probs = rng.random((n, num_labels))
    y_true = (rng.random((n, num_labels)) < probs).astype(int)
    y_pred = (probs >= 0.5).astype(int)
    score = np.where(y_pred == 1, probs, 1 - probs)
    true_score = np.where(y_true == 1, probs, 1 - probs)
    positions = rng.permutation(n)
    acc = CellExamples(num_labels, k=10, multi_label=True)
    feed(acc, positions, (y_true, y_pred, score, true_score), rng, 6)
    np.testing.assert_array_equal(
        acc.confusion_matrix(), multilabel_confusion_matrix(y_true, y_pred)
    )
    kept = acc.examples()
    for label in range(num_labels):
        cells = y_true[:, label] * 2 + y_pred[:, label]
        keys = np.where(cells % 3 == 0, score[:, label], -score[:, label])  # 0 and 3: right
        for cell, (rows, size) in brute_force_cells(cells, keys, positions, 10).items():
            true, pred = divmod(cell, 2)
            got = acc.cell_examples(true, pred, label=label)
            assert got["count"] == size
            np.testing.assert_array_equal(got["position"], positions[rows])
            np.testing.assert_array_equal(got["true_score"], true_score[rows, label])
            at = (kept["label"] == label) & (kept["true"] == true) & (kept["pred"] == pred)
            np.testing.assert_array_equal(kept["position"][at], positions[rows])
    right = unpack_correctness(acc.correctness_bits(), n)
    np.testing.assert_array_equal(right[positions], (y_true == y_pred).all(axis=1))


def test_empty_cell_and_empty_batch():
    acc = CellExamples(3)
    acc.update([], [], [], [], [])
    assert acc.num_rows == 0 and acc.correctness_bits().size == 0
    acc.update([0, 1], [0, 1], [0, 1], [0.9, 0.8], [0.9, 0.8])
    empty = acc.cell_examples(2, 0)
    assert empty["count"] == 0 and empty["position"].size == 0
    assert acc.examples(budget=0)["limit"] == MIN_EXAMPLES_PER_CELL


# -- Correctness bits --------------------------------------------------------------------------


def test_correctness_bits_in_position_order():
    rng = np.random.default_rng(11)
    n = 1003  # not a multiple of 8
    arrays = single_label_batch(rng, n, 4)
    positions = rng.permutation(n)
    acc = CellExamples(4)
    feed(acc, positions, arrays, rng, 4)
    bits = acc.correctness_bits()
    assert bits.dtype == np.uint8 and bits.size == (n + 7) // 8
    right = np.zeros(n, bool)
    right[positions] = arrays[0] == arrays[1]
    np.testing.assert_array_equal(unpack_correctness(bits, n), right)
    np.testing.assert_array_equal(bits, np.packbits(right))
    np.testing.assert_array_equal(unpack_correctness(pack_correctness(right), n), right)


def test_correctness_bits_need_every_position():
    acc = CellExamples(2)
    acc.update([0, 2], [0, 1], [0, 1], [0.9, 0.8], [0.9, 0.8])
    with pytest.raises(ValueError, match="positions 0..2.*the first: 1"):
        acc.correctness_bits()


def test_unpack_checks_its_input():
    with pytest.raises(ValueError, match="2 bytes of uint8"):
        unpack_correctness(np.zeros(3, np.uint8), 9)
    with pytest.raises(ValueError, match="1-D array of booleans"):
        pack_correctness([[True]])


# -- Budget ------------------------------------------------------------------------------------


def brute_force_limit(kept, budget, floor=MIN_EXAMPLES_PER_CELL):
    if sum(kept) <= budget:
        return None
    fitting = [L for L in range(floor, max(kept) + 1) if sum(min(k, L) for k in kept) <= budget]
    return max(fitting) if fitting else floor


def test_per_cell_limit_matches_brute_force():
    rng = np.random.default_rng(12)
    for _ in range(300):
        kept = rng.integers(1, 40, rng.integers(1, 30)).tolist()
        budget = int(rng.integers(0, sum(kept) + 20))
        assert per_cell_limit(kept, budget) == brute_force_limit(kept, budget), (kept, budget)
    with pytest.raises(ValueError, match="budget"):
        per_cell_limit([3], -1)


def test_budget_drops_the_deepest_ranks_of_the_fullest_cells_first():
    rng = np.random.default_rng(13)
    n, num_classes = 10_000, 10
    arrays = single_label_batch(rng, n, num_classes, accuracy=0.5)
    acc = CellExamples(num_classes, k=40)
    acc.update(np.arange(n), *arrays)
    full = acc.examples()
    cut = acc.examples(budget=1500)
    limit = cut["limit"]
    assert MIN_EXAMPLES_PER_CELL <= limit < 40 and cut["position"].size <= 1500
    cells = full["true"] * num_classes + full["pred"]
    kept_per_cell = np.bincount(cells, minlength=num_classes**2)
    cut_cells = cut["true"] * num_classes + cut["pred"]
    np.testing.assert_array_equal(
        np.bincount(cut_cells, minlength=num_classes**2), np.minimum(kept_per_cell, limit)
    )
    # What is left of each cell is the top of that cell.
    np.testing.assert_array_equal(cut["position"], full["position"][full["rank"] < limit])


def test_default_budget_at_ten_and_a_thousand_classes():
    rng = np.random.default_rng(14)
    n = 10_000
    for num_classes in (10, 1000):
        arrays = single_label_batch(rng, n, num_classes, accuracy=0.6)
        acc = CellExamples(num_classes)
        acc.update(np.arange(n), *arrays)
        cut = acc.examples(budget=DEFAULT_EPOCH_BUDGET)
        counts = acc.confusion_matrix()
        if num_classes == 10:
            assert cut["position"].size <= DEFAULT_EPOCH_BUDGET
        else:  # the floor of 10 per cell wins over the budget, and stays within n
            assert cut["limit"] == MIN_EXAMPLES_PER_CELL
            assert cut["position"].size <= n
        # Every non-empty cell keeps at least min(count, 10).
        listed = np.zeros_like(counts)
        np.add.at(listed, (cut["true"], cut["pred"]), 1)
        assert np.all(listed >= np.minimum(counts, MIN_EXAMPLES_PER_CELL))


# -- Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, message",
    [
        (([0, 0], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5]), "repeat within the batch"),
        (([-1, 0], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5]), ">= 0"),
        (([0.5, 1], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5]), "integers"),
        (([0, 1], [0, 3], [0, 1], [0.5, 0.5], [0.5, 0.5]), r"y_true holds values outside \[0, 3\)"),
        (([0, 1], [0, 1], [0, 1, 2], [0.5, 0.5], [0.5, 0.5]), "y_pred must have shape"),
        (([0, 1], [0, 1], [0, 1], [0.5, np.nan], [0.5, 0.5]), "score holds NaN"),
        (([0, 1], [0, 1], [0, 1], [0.5, 0.5], [np.inf, 0.5]), "true_score holds NaN or inf"),
        (([0, 1], [0, 1], [0, 1], ["a", "b"], [0.5, 0.5]), "score must hold numbers"),
    ],
)
def test_bad_batches_raise_and_add_nothing(arguments, message):
    acc = CellExamples(3)
    with pytest.raises(ValueError, match=message):
        acc.update(*arguments)
    assert acc.num_rows == 0 and acc.confusion_matrix().sum() == 0


def test_positions_given_twice_across_batches_or_merges():
    acc = CellExamples(2)
    acc.update([0, 1], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"positions given before: \[1\]"):
        acc.update([2, 1], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5])
    assert acc.confusion_matrix().sum() == 2
    other = CellExamples(2)
    other.update([1], [0], [0], [0.5], [0.5])
    with pytest.raises(ValueError, match="given before"):
        acc.merge(other)
    with pytest.raises(ValueError, match="same classes and k"):
        acc.merge(CellExamples(3))


def test_configuration_errors():
    with pytest.raises(ValueError, match="k must be at least 10"):
        CellExamples(3, k=9)
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        CellExamples(1)
    acc = CellExamples(3)
    with pytest.raises(ValueError, match="label is for multi-label"):
        acc.cell_examples(0, 0, label=1)
    with pytest.raises(ValueError, match=r"true must be in \[0, 3\)"):
        acc.cell_examples(3, 0)
    with pytest.raises(ValueError, match="label must be in"):
        CellExamples(3, multi_label=True).cell_examples(0, 1)


# -- Flips -------------------------------------------------------------------------------------


def brute_force_flips(before_ids, before_correct, after_ids, after_correct, after_score):
    before = {key: (i, ok) for i, (key, ok) in enumerate(zip(before_ids, before_correct))}
    result = {"became_wrong": [], "became_right": []}
    for index, (key, ok) in enumerate(zip(after_ids, after_correct)):
        if key in before and before[key][1] != ok:
            kind = "became_right" if ok else "became_wrong"
            result[kind].append((-after_score[index], index, before[key][0]))
    return {kind: sorted(rows) for kind, rows in result.items()}


@pytest.mark.parametrize("string_ids", [False, True])
def test_flips_match_brute_force(string_ids):
    rng = np.random.default_rng(15)
    for trial in range(20):
        universe = rng.permutation(3000)[: rng.integers(10, 2000)]
        before_ids = rng.permutation(universe)[: rng.integers(1, universe.size + 1)]
        after_ids = rng.permutation(universe)[: rng.integers(1, universe.size + 1)]
        if string_ids:
            before_ids = np.array(["img-%d" % i for i in before_ids])
            after_ids = np.array(["img-%d" % i for i in after_ids])
        before_correct = rng.random(before_ids.size) < 0.7
        after_correct = rng.random(after_ids.size) < 0.7
        after_score = np.round(rng.random(after_ids.size), 2)  # ties
        limit = None if trial % 2 else int(rng.integers(0, 30))
        got = flips(before_ids, before_correct, after_ids, after_correct, after_score, limit)
        expected = brute_force_flips(
            before_ids, before_correct, after_ids, after_correct, after_score
        )
        assert got["matched"] == np.intersect1d(before_ids, after_ids).size
        for kind, rows in expected.items():
            assert got[kind]["count"] == len(rows)
            rows = rows[:limit]
            np.testing.assert_array_equal(got[kind]["after_index"], [r[1] for r in rows])
            np.testing.assert_array_equal(got[kind]["before_index"], [r[2] for r in rows])
            np.testing.assert_array_equal(got[kind]["score"], [-r[0] for r in rows])
            np.testing.assert_array_equal(got[kind]["id"], after_ids[[r[1] for r in rows]])
            assert np.all(np.diff(got[kind]["score"]) <= 0)


def test_flips_from_correctness_bits_of_two_epochs():
    rng = np.random.default_rng(16)
    n = 500
    before, after = CellExamples(5), CellExamples(5)
    truth = rng.integers(0, 5, n)
    first = np.where(rng.random(n) < 0.7, truth, (truth + 1) % 5)
    second = np.where(rng.random(n) < 0.8, truth, (truth + 2) % 5)
    scores = rng.random(n)
    before.update(np.arange(n), truth, first, scores, scores)
    after.update(np.arange(n), truth, second, scores, scores)
    result = flips(
        np.arange(n),
        unpack_correctness(before.correctness_bits(), n),
        np.arange(n),
        unpack_correctness(after.correctness_bits(), n),
        scores,
    )
    assert result["became_wrong"]["count"] == np.sum((first == truth) & (second != truth))
    assert result["became_right"]["count"] == np.sum((first != truth) & (second == truth))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (([1, 1], [True, False], [1], [True], [0.5]), r"before_ids repeat: \[1\]"),
        (([1], [True], [2, 2], [True, False], [0.5, 0.5]), "after_ids repeat"),
        (([1], [True], ["1"], [True], [0.5]), "both be integers or both be strings"),
        (([1], [True, False], [1], [True], [0.5]), "before_correct must be 1 booleans"),
        (([1], [True], [1], [True], [np.nan]), "after_score holds NaN"),
        (([[1]], [True], [1], [True], [0.5]), "before_ids must be a 1-D array"),
        (([1.5], [True], [1], [True], [0.5]), "integers or strings"),
    ],
)
def test_flips_reject_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        flips(*arguments)


# -- Grouped: one accumulator for the cells of every group (the slices of a group key) -------


@pytest.mark.parametrize("multi_label", [False, True])
def test_grouped_examples_equal_one_accumulator_per_group(multi_label):
    rng = np.random.default_rng(4)
    n, classes, num_groups = 3000, 3, 6
    shape = (n, classes) if multi_label else (n,)
    bound = 2 if multi_label else classes
    y_true, y_pred = rng.integers(0, bound, shape), rng.integers(0, bound, shape)
    score = np.round(rng.random(shape), 2)  # ties, broken by position
    true_score = rng.random(shape)
    groups = rng.integers(0, num_groups, n)
    groups[groups == 4] = 1  # a group without rows
    grouped = CellExamples(classes, k=10, multi_label=multi_label, num_groups=num_groups)
    own = [CellExamples(classes, k=10, multi_label=multi_label) for _ in range(num_groups)]
    order = rng.permutation(n)
    for begin in range(0, n, 700):
        rows = order[begin : begin + 700]
        grouped.update(
            rows, y_true[rows], y_pred[rows], score[rows], true_score[rows], groups[rows]
        )
        for g in range(num_groups):
            mine = rows[groups[rows] == g]
            own[g].update(mine, y_true[mine], y_pred[mine], score[mine], true_score[mine])
    kept = grouped.examples()
    for g in range(num_groups):
        assert np.array_equal(grouped.confusion_matrix()[g], own[g].confusion_matrix())
        in_group = kept["group"] == g
        expected = own[g].examples()
        for name in ("true", "pred", "rank", "position", "score", "true_score"):
            assert np.array_equal(kept[name][in_group], expected[name]), name
        cell = (1, 1, 0) if multi_label else (1, 0, None)
        assert (
            grouped.cell_examples(*cell, group=g)["count"] == own[g].cell_examples(*cell)["count"]
        )
    if not multi_label:
        for g in (0, 1, 2, 3, 5):  # group 4 has no rows
            rows = groups == g
            assert np.array_equal(
                grouped.confusion_matrix()[g],
                confusion_matrix(y_true[rows], y_pred[rows], labels=range(classes)),
            )
    with pytest.raises(ValueError, match="group must be in"):
        grouped.cell_examples(0, 0, 0 if multi_label else None)
    with pytest.raises(ValueError, match="each row's group"):
        grouped.update([n], y_true[:1], y_pred[:1], score[:1], true_score[:1])

"""Label issues: which given labels are probably wrong, and whether a run has more of them
than its model's own uncertainty explains. Pure NumPy.

**Which examples (confident learning).** Northcutt, Jiang and Chuang (JAIR 2021), as cleanlab
2.x flags them with ``filter.find_label_issues(labels, pred_probs,
filter_by="confident_learning")``, written here from that definition. On out-of-sample
probabilities ``p`` ``[n, C]`` and given labels ``y``:

1. Each class has a threshold ``t_j``: the mean of ``p[:, j]`` over the examples labelled
   ``j`` (its average self-confidence); a class no example is labelled with gets
   `ABSENT_CLASS_THRESHOLD`, which no probability reaches; none is below `THRESHOLD_FLOOR`.
2. Class ``j`` is confident for an example when ``p_j >= t_j - CONFIDENCE_TOLERANCE``.
3. An example with a confident class is counted in the confident joint at (its label, its
   guess): the confident class when there is one, the argmax of ``p`` (the first of equal
   maxima) when there are several, even if that argmax is not confident itself.
4. It is flagged when its guess is not its label...
5. ...unless its label is the argmax of ``p`` once `CONFIDENCE_TOLERANCE` is added to the
   label's probability (first of equal maxima).

Steps 3 to 5 come down to: an example is flagged exactly when (a) its label is not the argmax
of step 5 and (b) a class other than its label is confident. (If (a) holds, the argmax ``a``
of ``p`` is not the label; with two or more confident classes the guess is ``a``, with one it
is that class; so the guess differs from the label unless the label is the only confident
class.) Condition (a) needs no threshold, so one pass over the rows finds the only examples
that can be flagged, the **candidates**, while it sums the thresholds; (b) is decided at the
end, on the candidates alone. `suggested` is the guess of step 3.

Thresholds and conditions are computed in float64, on the float64 values of the given
probabilities: the flagged set is cleanlab's on those float64 values. (The thresholds are sums
divided by counts, which may differ from NumPy's pairwise mean in the last bits; that changes
an example's flag only if a probability lies within those bits of ``t_j - 1e-6``.)

**Memory.** `LabelIssues` keeps ``O(C)`` sums and, of each candidate (an example whose label is
not the model's top class: at most the misclassified ones), its position, label and
probability row in the input's dtype. At 1M examples x 10 classes in float32: 16 bytes plus
10 x 4 bytes per candidate: 5.6 MB at a 10% error rate, 56 MB if every example were wrong. At
10,000 x 1,000 in float32: 4 KB per candidate, 12 MB at 30% errors, 40 MB at most. The working
memory is a few vectors of one number per example (8 MB each at 1M) and, at the end, blocks of
about `_BLOCK_VALUES` probabilities.

**Streaming.** The thresholds need every example before any flag is final. The writers hold an
epoch's validation probabilities at the epoch's end (the Keras callback's default mode, the
framework-free writer, Lightning): one `update` with all of them, then `result`. A writer that
cannot hold them feeds its batches to `update` as they come (one pass, the candidates kept as
above); reading the examples twice (thresholds first, flags second) would keep no candidates,
but no writer needs it.

**Whether they are more than uncertainty (`label_issue_test`).** Confident learning flags
the examples of a hard, cleanly labelled task too: a calibrated model unsure between
overlapping classes is wrong as often as its probabilities say, and those errors are flagged.
Random label errors leave a different trace: among the examples the model is sure of, its
accuracy (against the given labels) levels off below 1, at about ``1 - noise share``, however
sure it is. The test bins the examples by the logit of their top-label confidence
(`top_label_bins`, `TOP_LABEL_LOGIT_RANGE`, `TOP_LABEL_BIN_WIDTH`) and compares two models of
the accuracy ``P(right | logit x)`` by maximum likelihood:

- clean labels, a model miscalibrated at most by a recalibration ``sigmoid(a + b x)``
  (``|a| <= RECALIBRATION_MAX_INTERCEPT``, ``RECALIBRATION_MIN_SLOPE <= b <=
  RECALIBRATION_MAX_SLOPE``: over-confident up to a temperature of 4), so an over- or
  under-confident model is not taken for a noisy one;
- the same, with a share ``e`` of labels replaced by another class at random:
  ``(1 - e) h + e (1 - h) / (C - 1)``, ``h = sigmoid(a + b x)``, ``e`` up to
  `MAX_NOISE_SHARE` in steps of `NOISE_SHARE_STEP`.

The likelihood-ratio statistic has, for ``e`` on the boundary 0, a one-sided p-value of
``P(chi2_1 >= LR) / 2``. The verdict fires when all of these hold:

- material: the flagged share is at least `MIN_FLAGGED_SHARE` (and `MIN_FLAGGED_COUNT`
  examples), and the estimated noise share ``e`` at least `MIN_NOISE_SHARE`;
- beyond uncertainty: the p-value is at most `MAX_P_VALUE`;
- trusted model: it avoids at least `MIN_ERROR_REDUCTION` of the majority baseline's errors.

What it cannot see: a model that learned the noise itself (calibrated to the noisy labels,
never more confident than ``1 - e``) leaves no plateau to find; and a model confidently wrong on
a region it cannot represent (a linear model on classes that are not linearly separable)
looks, there, like mislabelled examples, to confident learning and to this test alike.
"""

import math

import numpy as np

from tb_metricsdiag.core import metrics
from tb_metricsdiag.core.examples import _positions

CONFIDENCE_TOLERANCE = 1e-6
"""cleanlab's ``FLOATING_POINT_COMPARISON``: a class is confident within this much below its
threshold, and a label within this much of the top probability is the model's own choice."""

THRESHOLD_FLOOR = 2e-6
"""cleanlab's ``CONFIDENT_THRESHOLDS_LOWER_BOUND``: twice the tolerance, so a threshold minus
the tolerance stays above 0."""

ABSENT_CLASS_THRESHOLD = 2.0
"""The threshold of a class no example is labelled with: above any probability, so no example
is confidently of that class."""

# Candidates are flagged in blocks of about this many probabilities: the [rows, C] boolean
# temporaries stay at a few MB.
_BLOCK_VALUES = 1 << 20

TOP_LABEL_LOGIT_RANGE = (-7.0, 16.0)
"""The logits of top-label confidences the bins span. The lower end is the logit of ``1/C`` for
about 1,100 classes (a top label is never less likely than ``1/C``); the upper one that of the
largest float32 below 1 (``1 - 6e-8``). Beyond, examples count in the end bins."""

TOP_LABEL_BIN_WIDTH = 0.25
"""Bins a quarter of a logit wide: 92 bins, fine enough that the accuracy barely changes within
one, few enough to store per epoch (three numbers each)."""

RECALIBRATION_MIN_SLOPE = 0.25
"""The smallest slope ``b`` of the clean model's recalibration: a model over-confident by a
temperature of up to 4 is explained as miscalibrated, not noisy. Were the slope free, a model
sure of every example (all in the top bin) would explain any error rate with a flat line."""

RECALIBRATION_MAX_SLOPE = 10.0
"""The largest slope: a model ten times under-confident, far beyond label smoothing's. Without
a bound the slope of a model right about every example it is sure of grows without end, and
the fit with it."""

RECALIBRATION_MAX_INTERCEPT = 1.0
"""The largest ``|a|`` of the recalibration: a shift of up to one logit (a confidence of 0.5
read as 0.27 to 0.73), which the top-label confidence of many classes needs even when each
class's probability is calibrated."""

NOISE_SHARE_STEP = 0.005
"""The noise shares ``e`` tried: 0, 0.005, ..., `MAX_NOISE_SHARE` (the estimate is the best)."""

MAX_NOISE_SHARE = 0.4
"""Beyond 40% of labels at random the model could not be trusted to tell which are wrong."""

MIN_FLAGGED_SHARE = 0.02
"""Material: at least 2% of the examples flagged. Benchmark test sets hold 3.3% label errors on
average (Northcutt et al. 2021); below 2% a review rarely pays."""

MIN_FLAGGED_COUNT = 10
"""Material: at least 10 examples flagged, so a small validation set needs several."""

MIN_NOISE_SHARE = 0.02
"""Material: the estimated share of labels at random is at least 2%, as `MIN_FLAGGED_SHARE`."""

MAX_P_VALUE = 1e-3
"""Beyond uncertainty: the likelihood-ratio test's p-value at most 0.001 (a statistic of at
least 9.55). The rule looks at one epoch, so no correction for several tests is needed; the
strict level keeps the rule quiet on a model whose miscalibration the recalibration fits
imperfectly."""

MIN_ERROR_REDUCTION = 0.5
"""A trusted model avoids at least half the errors of always predicting the majority class
(`metrics.error_reduction_vs_baseline`, on the given labels): a weaker model's confident
predictions say little about which labels are wrong."""


class LabelIssues:
    """Confident learning over an epoch's examples, fed in one or several batches.

    Args:
      num_classes: ``C >= 2`` (a binary task with one sigmoid output is 2 classes).

    >>> issues = LabelIssues(2)
    >>> probs = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.05, 0.95], [0.02, 0.98]]
    >>> issues.update([0, 1, 2, 3, 4], [0, 0, 1, 1, 0], probs)
    >>> result = issues.result()
    >>> result["position"].tolist(), result["suggested"].tolist()
    ([4], [1])
    """

    def __init__(self, num_classes):
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ValueError("num_classes must be at least 2, got %d" % self.num_classes)
        self._label_counts = np.zeros(self.num_classes, np.int64)
        self._given_sums = np.zeros(self.num_classes, np.float64)
        self._candidates = []  # (positions, labels, probability rows, candidate rows) per block
        self._bins = _empty_bins()

    @property
    def num_rows(self):
        """The examples given so far."""
        return int(self._label_counts.sum())

    def update(self, positions, labels, pred_probs):
        """Add one batch.

        Args:
          positions: ``[n]`` distinct integers ``>= 0`` naming the examples (their rows in
            the writer's id table); the result lists flagged examples by them.
          labels: given class ids ``[n]`` in ``[0, C)``.
          pred_probs: out-of-sample class probabilities ``[n, C]``, in ``[0, 1]`` (within
            `CONFIDENCE_TOLERANCE`, as cleanlab accepts).

        Raises:
          ValueError: shapes, class ids, positions or probabilities that do not fit; nothing
            is added then.
        """
        positions = _positions(positions)
        labels, pred_probs = _checked(labels, pred_probs, self.num_classes)
        if positions.size != labels.size:
            raise ValueError(
                "positions and labels differ in length: %d vs %d" % (positions.size, labels.size)
            )
        self._add(positions, labels, pred_probs)

    def merge(self, other):
        """Add everything ``other`` (another process's examples, say) accumulated."""
        if other.num_classes != self.num_classes:
            raise ValueError("only accumulators of the same classes can be merged")
        self._label_counts += other._label_counts
        self._given_sums += other._given_sums
        self._candidates.extend(other._candidates)
        for name in self._bins:
            self._bins[name] += other._bins[name]

    def thresholds(self):
        """The per-class thresholds ``t_j`` (float64 ``[C]``) of the examples so far."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self._given_sums / self._label_counts
        means = np.where(self._label_counts > 0, means, ABSENT_CLASS_THRESHOLD)
        return np.maximum(means, THRESHOLD_FLOOR)

    def top_label_bins(self):
        """The examples' `top_label_bins` (copies), the input of `label_issue_test`."""
        return {name: values.copy() for name, values in self._bins.items()}

    def result(self):
        """The flagged examples.

        Returns:
          A dict of ``count`` (flagged), ``num_rows``, ``share`` (``count / num_rows``, NaN
          without examples), ``thresholds`` and ``[count]`` arrays ``position``, ``given``
          (the label), ``suggested`` (the class confident learning assigns), ``given_score``
          and ``suggested_score`` (their probabilities), the least likely given label first
          (equal scores: the lower position first).
        """
        thresholds = self.thresholds()
        found = {name: [np.empty(0, np.int64)] for name in ("position", "given", "suggested")}
        found.update(given_score=[np.empty(0)], suggested_score=[np.empty(0)])
        rows = max(1, _BLOCK_VALUES // self.num_classes)
        for positions, labels, probs, chosen in self._candidates:
            for begin in range(0, chosen.size, rows):
                block = chosen[begin : begin + rows]
                _flag_candidates(positions[block], labels[block], probs[block], thresholds, found)
        columns = {name: np.concatenate(parts) for name, parts in found.items()}
        order = np.lexsort((columns["position"], columns["given_score"]))
        result = {name: values[order] for name, values in columns.items()}
        count, num_rows = int(order.size), self.num_rows
        result.update(
            count=count,
            num_rows=num_rows,
            share=count / num_rows if num_rows else float("nan"),
            thresholds=thresholds,
        )
        return result

    def _add(self, positions, labels, probs):
        # Per-row work only (no [n, C] temporary). Comparisons and the argmax are exact in the
        # input's dtype: only the gathered probabilities are converted to float64.
        rows = np.arange(labels.size)
        given = probs[rows, labels].astype(np.float64)
        self._label_counts += np.bincount(labels, minlength=self.num_classes)
        self._given_sums += np.bincount(labels, weights=given, minlength=self.num_classes)
        top = probs.argmax(axis=1)
        top_score = probs[rows, top].astype(np.float64)
        _add_top_label_bins(self._bins, top_score, top == labels)
        # Step 5: is the label the argmax once the tolerance is added to its probability?
        # Before the label a maximum must stay below it, after the label it may equal it.
        raised = given + CONFIDENCE_TOLERANCE
        candidate = (top != labels) & np.where(
            top < labels, top_score >= raised, top_score > raised
        )
        chosen = np.flatnonzero(candidate)
        if chosen.size * 2 >= labels.size:
            # Most rows are candidates (a model often wrong): keep the block itself, not a copy
            # of nearly all of it (the writer's block is a view of the scores it was given).
            self._candidates.append((positions, labels, probs, chosen))
        elif chosen.size:
            rows = np.arange(chosen.size)
            self._candidates.append((positions[chosen], labels[chosen], probs[chosen], rows))


def find_label_issues(labels, pred_probs):
    """Confident learning on one set of examples: `LabelIssues` fed them all at once.

    Returns:
      `LabelIssues.result`, with ``position`` the row indices into ``labels``.

    >>> find_label_issues([0, 0, 1, 1, 0],
    ...                   [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.05, 0.95], [0.02, 0.98]])["position"]
    array([4])
    """
    pred_probs = np.asarray(pred_probs)
    if pred_probs.ndim != 2:
        raise ValueError("pred_probs must have shape [n, C], got %s" % (pred_probs.shape,))
    issues = LabelIssues(pred_probs.shape[1])
    issues.update(np.arange(pred_probs.shape[0]), labels, pred_probs)
    return issues.result()


def _checked(labels, pred_probs, num_classes):
    labels = np.asarray(labels)
    pred_probs = np.asarray(pred_probs)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "biu"):
        raise ValueError("labels must be a 1-D array of integer class ids")
    if pred_probs.shape != (labels.size, num_classes):
        raise ValueError(
            "pred_probs must have shape [%d, %d] (one row per label), got %s"
            % (labels.size, num_classes, pred_probs.shape)
        )
    if pred_probs.size and pred_probs.dtype.kind not in "fiu":
        raise ValueError("pred_probs must hold numbers, got %s" % pred_probs.dtype)
    if pred_probs.dtype.kind != "f":
        pred_probs = pred_probs.astype(np.float64)
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            "labels hold class ids outside [0, %d): found %d..%d"
            % (num_classes, labels.min(), labels.max())
        )
    if pred_probs.size:
        low, high = pred_probs.min(), pred_probs.max()  # NaN makes both NaN
        if not (low >= -CONFIDENCE_TOLERANCE and high <= 1 + CONFIDENCE_TOLERANCE):
            raise ValueError(
                "pred_probs must be probabilities in [0, 1], found %r..%r (apply a softmax to "
                "logits first)" % (float(low), float(high))
            )
    return labels, pred_probs


def _flag_candidates(positions, labels, probs, thresholds, found):
    """Decide condition (b) for candidate rows; append the flagged ones to ``found``."""
    rows = np.arange(labels.size)
    # float32 against float64 thresholds compares the float64 values, as cleanlab does on them.
    confident = probs >= thresholds - CONFIDENCE_TOLERANCE
    others = confident.copy()
    others[rows, labels] = False
    flagged = others.any(axis=1)
    several = confident.sum(axis=1) >= 2
    suggested = np.where(several, probs.argmax(axis=1), confident.argmax(axis=1))
    rows, labels, suggested = rows[flagged], labels[flagged], suggested[flagged]
    found["position"].append(positions[flagged])
    found["given"].append(labels)
    found["suggested"].append(suggested)
    found["given_score"].append(probs[rows, labels].astype(np.float64))
    found["suggested_score"].append(probs[rows, suggested].astype(np.float64))


# -- The statistic: more label errors than the model's uncertainty explains? ----------------

_NUM_BINS = int(round((TOP_LABEL_LOGIT_RANGE[1] - TOP_LABEL_LOGIT_RANGE[0]) / TOP_LABEL_BIN_WIDTH))


def _empty_bins():
    return {
        "count": np.zeros(_NUM_BINS, np.int64),
        "correct": np.zeros(_NUM_BINS, np.int64),
        "logit_sum": np.zeros(_NUM_BINS, np.float64),
    }


def top_label_bins(labels, pred_probs):
    """Examples binned by the logit of their top-label confidence: per bin the number of
    examples, how many the model got right (its top class is the given label) and the sum of
    their logits (clipped to `TOP_LABEL_LOGIT_RANGE`). Additive over batches and processes.

    Returns:
      A dict of ``[B]`` arrays ``count``, ``correct`` (int64) and ``logit_sum`` (float64).

    >>> bins = top_label_bins([1, 1], [[0.5, 0.5], [0.1, 0.9]])
    >>> int(bins["count"].sum()), int(bins["correct"].sum())
    (2, 1)
    """
    pred_probs = np.asarray(pred_probs)
    if pred_probs.ndim != 2 or pred_probs.shape[1] < 2:
        raise ValueError("pred_probs must have shape [n, C >= 2], got %s" % (pred_probs.shape,))
    labels, pred_probs = _checked(labels, pred_probs, pred_probs.shape[1])
    bins = _empty_bins()
    top = pred_probs.argmax(axis=1)
    top_score = pred_probs[np.arange(top.size), top].astype(np.float64)
    _add_top_label_bins(bins, top_score, top == labels)
    return bins


def _add_top_label_bins(bins, top_score, right):
    low, high = TOP_LABEL_LOGIT_RANGE
    top_score = np.clip(top_score, 0.0, 1.0)  # within the tolerance of [0, 1]
    with np.errstate(divide="ignore"):
        logits = np.log(top_score) - np.log1p(-top_score)  # 0 and 1: -inf and +inf
    logits = np.clip(logits, low, high)
    index = np.minimum(((logits - low) / TOP_LABEL_BIN_WIDTH).astype(np.intp), _NUM_BINS - 1)
    bins["count"] += np.bincount(index, minlength=_NUM_BINS)
    bins["correct"] += np.bincount(index[right], minlength=_NUM_BINS)
    bins["logit_sum"] += np.bincount(index, weights=logits, minlength=_NUM_BINS)


def fit_label_noise(bins, num_classes):
    """The likelihood-ratio test of random label errors on `top_label_bins` (module
    docstring: the two models, their bounds, the p-value).

    Returns:
      A dict of ``noise_share`` (the estimated share ``e`` of labels at random),
      ``intercept`` and ``slope`` (the recalibration at that share), ``clean_intercept``
      and ``clean_slope`` (the recalibration without noise), ``log_likelihood_ratio``
      (``2 (best - clean)``, >= 0), ``p_value`` and ``examples``. Without examples, the
      share is 0 and the p-value 1.
    """
    count = np.asarray(bins["count"], np.float64)
    correct = np.asarray(bins["correct"], np.float64)
    filled = count > 0
    examples = int(count.sum())
    shares = np.arange(0.0, MAX_NOISE_SHARE + NOISE_SHARE_STEP / 2, NOISE_SHARE_STEP)
    if not filled.any():
        return {
            "noise_share": 0.0,
            "intercept": 0.0,
            "slope": 1.0,
            "clean_intercept": 0.0,
            "clean_slope": 1.0,
            "log_likelihood_ratio": 0.0,
            "p_value": 1.0,
            "examples": 0,
        }
    logit = np.asarray(bins["logit_sum"], np.float64)[filled] / count[filled]
    params, loglik = _fit_recalibration(
        count[filled], correct[filled], logit, shares, int(num_classes)
    )
    best = int(np.argmax(loglik))
    ratio = max(0.0, 2.0 * float(loglik[best] - loglik[0]))
    return {
        "noise_share": float(shares[best]),
        "intercept": float(params[best, 0]),
        "slope": float(params[best, 1]),
        "clean_intercept": float(params[0, 0]),
        "clean_slope": float(params[0, 1]),
        "log_likelihood_ratio": ratio,
        # The share lies on its boundary (0) under no noise: half a chi-square with 1 df.
        "p_value": 0.5 * math.erfc(math.sqrt(ratio / 2.0)),
        "examples": examples,
    }


# Newton's method stops for a share when a step gains at most this much log-likelihood, or
# after this many steps: the statistic is then within 1e-6 of its converged value on the
# tests' models, far finer than it is read.
_FIT_TOLERANCE = 1e-6
_FIT_MAX_STEPS = 50
_STEP_HALVINGS = 30


def _fit_recalibration(count, correct, logit, shares, num_classes):
    """Maximum likelihood ``(a, b)`` of ``P(right) = low + (high - low) sigmoid(a + b x)``
    for each noise share at once (``low = e / (C - 1)``, ``high = 1 - e``), within the bounds:
    Newton's method (Fisher scoring where the likelihood is not concave) with the bounds as
    an active set and step halving.

    Returns:
      ``(params [S, 2], loglik [S])``.
    """
    low = shares / (num_classes - 1)
    high = 1.0 - shares
    lower = np.array([-RECALIBRATION_MAX_INTERCEPT, RECALIBRATION_MIN_SLOPE])
    upper = np.array([RECALIBRATION_MAX_INTERCEPT, RECALIBRATION_MAX_SLOPE])
    tiny = np.finfo(np.float64).tiny

    def evaluate(theta, which):
        """Log-likelihood of shares ``which``, and its gradient and negated Hessian in eta."""
        eta = theta[:, :1] + theta[:, 1:] * logit
        right, wrong = _sigmoid(eta), _sigmoid(-eta)
        span = (high - low)[which, None]
        p_right = np.maximum(low[which, None] + span * right, tiny)
        p_wrong = np.maximum((1.0 - high)[which, None] + span * wrong, tiny)
        loglik = (correct * np.log(p_right) + (count - correct) * np.log(p_wrong)).sum(axis=1)
        slope = span * right * wrong  # dP(right)/d(eta)
        residual = correct / p_right - (count - correct) / p_wrong
        curvature = (correct / p_right**2 + (count - correct) / p_wrong**2) * slope**2
        curvature -= residual * slope * (wrong - right)  # d2P/d(eta)2 = slope (1 - 2 right)
        # Where the likelihood is not concave, the expected information (Fisher scoring).
        fisher = count * slope**2 / (p_right * p_wrong)
        return loglik, residual * slope, np.where(curvature > 0, curvature, fisher)

    params = np.tile([0.0, 1.0], (shares.size, 1))
    loglik = np.empty(shares.size)
    # The clean model first (share 0); every noisy one starts from its fit.
    for which in (np.arange(1), np.arange(1, shares.size)):
        params[which] = params[0]
        loglik[which] = evaluate(params[which], which)[0]
        _newton(evaluate, params, loglik, which, logit, lower, upper)
    return params, loglik


def _newton(evaluate, params, loglik, active, logit, lower, upper):
    """Improve ``params`` and ``loglik`` of the shares ``active`` in place."""
    for _ in range(_FIT_MAX_STEPS):
        if active.size == 0:
            break
        current, score, weight = evaluate(params[active], active)
        gradient = np.stack([score.sum(axis=1), (score * logit).sum(axis=1)], axis=1)
        hessian = (
            weight.sum(axis=1) + 1e-12,
            (weight * logit).sum(axis=1),
            (weight * logit**2).sum(axis=1) + 1e-12,
        )
        step = _bounded_newton_step(params[active], gradient, *hessian, lower, upper)
        # Halve the step of each share until its log-likelihood does not fall.
        trial = np.clip(params[active] + step, lower, upper)
        trial_loglik = evaluate(trial, active)[0]
        for _ in range(_STEP_HALVINGS):
            worse = np.flatnonzero(trial_loglik < current)
            if worse.size == 0:
                break
            step[worse] /= 2
            trial[worse] = np.clip(params[active[worse]] + step[worse], lower, upper)
            trial_loglik[worse] = evaluate(trial[worse], active[worse])[0]
        improved = trial_loglik > current
        params[active[improved]] = trial[improved]
        loglik[active[improved]] = trial_loglik[improved]
        active = active[improved & (trial_loglik - current > _FIT_TOLERANCE)]


def _bounded_newton_step(params, gradient, h_aa, h_ab, h_bb, lower, upper):
    """The Newton step of the 2 x 2 system in the coordinates that may move: one on a bound
    whose gradient points out of the box is held there, the other moves alone.
    """
    held = ((params <= lower) & (gradient < 0)) | ((params >= upper) & (gradient > 0))
    det = np.maximum(h_aa * h_bb - h_ab**2, np.finfo(np.float64).tiny)
    step = np.stack(
        [
            (h_bb * gradient[:, 0] - h_ab * gradient[:, 1]) / det,
            (h_aa * gradient[:, 1] - h_ab * gradient[:, 0]) / det,
        ],
        axis=1,
    )
    alone = np.stack([gradient[:, 0] / h_aa, gradient[:, 1] / h_bb], axis=1)
    one_held = held[:, ::-1] & ~held  # this coordinate moves, the other one is held
    step = np.where(one_held, alone, step)
    return np.where(held, 0.0, step)


def _sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow, and accurate far in the tails."""
    return np.exp(-np.logaddexp(0.0, -x))


def label_issue_test(flagged, bins, confusion):
    """Whether an epoch's flagged examples are label errors beyond the model's uncertainty,
    from a trusted model: the rule ``label_issues`` (module docstring: the test and its
    thresholds).

    Args:
      flagged: the number of examples confident learning flagged.
      bins: the epoch's `top_label_bins`.
      confusion: its ``[C, C]`` confusion matrix (or `metrics.ConfusionTotals`).

    Returns:
      A dict of ``fires`` (bool), ``material``, ``beyond_uncertainty``, ``trusted_model``
      (the three conditions) and the evidence: ``count``, ``share``, ``noise_share``,
      ``p_value``, ``log_likelihood_ratio``, ``error_reduction``, ``examples``.
    """
    totals = metrics.confusion_totals(confusion)
    fit = fit_label_noise(bins, totals.actual.size)
    examples = fit["examples"]
    share = flagged / examples if examples else 0.0
    error_reduction = metrics.error_reduction_vs_baseline(totals)
    material = bool(
        flagged >= MIN_FLAGGED_COUNT
        and share >= MIN_FLAGGED_SHARE
        and fit["noise_share"] >= MIN_NOISE_SHARE
    )
    beyond = bool(fit["p_value"] <= MAX_P_VALUE)
    trusted = bool(error_reduction >= MIN_ERROR_REDUCTION)
    return {
        "fires": material and beyond and trusted,
        "material": material,
        "beyond_uncertainty": beyond,
        "trusted_model": trusted,
        "count": int(flagged),
        "share": share,
        "noise_share": fit["noise_share"],
        "p_value": fit["p_value"],
        "log_likelihood_ratio": fit["log_likelihood_ratio"],
        "error_reduction": float(error_reduction),
        "examples": examples,
    }

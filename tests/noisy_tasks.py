"""Small classification tasks with clean or flipped labels, and scikit-learn models' out-of-sample
probabilities on them: the real trainings of the label-issue tests (`test_label_issues.py`,
`test_label_issues_rule.py`).
"""

import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler


def softmax(logits):
    """Row-wise softmax."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def calibrated_simulation(seed, num_classes, separation, n, temperature=1.0, flip=0.0):
    """Gaussian classes in 8 dimensions with the exact posterior as the model's probabilities
    (a calibrated model), labels drawn from that posterior (clean), then a share flipped to
    another class at random. ``temperature`` below 1 makes the model over-confident."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(num_classes, 8))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    x = means[rng.integers(0, num_classes, n)] + rng.normal(size=(n, 8))
    log_density = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=-1)
    posterior = softmax(log_density)
    labels = (posterior.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    flipped = rng.random(n) < flip
    labels[flipped] = (labels[flipped] + rng.integers(1, num_classes, flipped.sum())) % num_classes
    return labels, softmax(log_density / temperature)


def gaussian_classes(seed, num_classes, separation, n=1500):
    """Gaussian classes in 8 dimensions, their means ``separation`` from the origin."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(num_classes, 8))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    labels = rng.integers(0, num_classes, n)
    return means[labels] + rng.normal(size=(n, 8)), labels


def flipped(seed, labels, num_classes, share):
    """``labels`` with about ``share`` of them replaced by another class at random."""
    rng = np.random.default_rng(seed + 100)
    labels = labels.copy()
    chosen = rng.random(labels.size) < share
    labels[chosen] = (labels[chosen] + rng.integers(1, num_classes, chosen.sum())) % num_classes
    return labels


def linear():
    return LogisticRegression(max_iter=2000)


def quadratic():
    # make_classification gives each class its own covariance: a quadratic boundary.
    return make_pipeline(PolynomialFeatures(2), StandardScaler(), LogisticRegression(max_iter=2000))


def mlp():
    return MLPClassifier((32,), max_iter=300, random_state=0)


def out_of_sample(model, x, labels, folds=5):
    """Out-of-sample probabilities of ``model`` (`cross_val_predict`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_predict(model, x, labels, cv=folds, method="predict_proba")


def make_classes(seed, num_classes, class_sep, n=1500):
    """`make_classification` classes, one Gaussian cluster each (each its own covariance),
    without scikit-learn's own label noise."""
    return make_classification(
        n_samples=n,
        n_features=10,
        n_informative=6,
        n_redundant=0,
        n_classes=num_classes,
        n_clusters_per_class=1,
        class_sep=class_sep,
        flip_y=0,
        random_state=seed,
    )

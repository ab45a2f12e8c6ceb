"""What a threshold grid resolves: best F1 and the recall >= 0.9 operating point from the stored
counts, against the exact optimum over every distinct score (scikit-learn's PR curve).

Models (seeded, 3 seeds each): "clustered", a logistic model of a 2%-positive problem whose
scores cluster below 0.1 (one feature shifted by 2 for a positive, score ``sigmoid(-7 + 1.2 x)``,
100,000 examples), and "balanced", logistic regression trained on 8 Gaussian features (three
shifted by 1 for a positive), scored on 50,000 fresh examples. The grid's points are chosen as
the PR view chooses them (`operating_points.best_f1_index`, `min_recall_index`); the exact
optimum is the best F1 and the best precision at recall >= 0.9 over every distinct score. The
figures are the largest shortfall over the seeds. ``--sweep`` adds 201-value logit grids of
other ranges (the measurement behind `counting.DEFAULT_LOGIT_RANGE`).

Run: ``python bench/threshold_grid.py`` (about 10 s; ``--sweep`` about 30 s).
"""

import argparse
import os
import sys

import numpy as np
from _common import REPO_ROOT, describe_machine

from tb_metricsdiag.core import counting, operating_points

sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
from grid_models import (  # noqa: E402 (the models the tests judge the grid on)
    MIN_RECALL,
    balanced_model,
    clustered_model,
    exact_optimum,
    grid_operating_points,
)

SEEDS = 3
SWEEP_RANGES = (6, 7, 8, 10, 12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also logit grids of other ranges")
    args = parser.parse_args()
    print(describe_machine())
    grids = {
        "evenly spaced (201)": np.linspace(0, 1, 201),
        "default, logit (201)": counting.default_thresholds(),
    }
    if args.sweep:
        grids.update(
            ("logit [-%d, %d]" % (r, r), counting.logit_thresholds(201, r)) for r in SWEEP_RANGES
        )
    models = {"clustered": clustered_model, "balanced": balanced_model}
    cases = {
        (name, seed): (y, score, exact_optimum(y, score))
        for name, model in models.items()
        for seed in range(SEEDS)
        for y, score in [model(seed)]
    }
    print("largest shortfall against the exact optimum over %d seeds:" % SEEDS)
    for grid_name, grid in grids.items():
        for name in models:
            f1_gap = precision_gap = 0.0
            thresholds = []
            for seed in range(SEEDS):
                y, score, (best_f1, best_precision) = cases[(name, seed)]
                f1, precision, threshold = grid_operating_points(y, score, grid)
                f1_gap = max(f1_gap, best_f1 - f1)
                precision_gap = max(precision_gap, best_precision - precision)
                thresholds.append(threshold)
            print(
                "  %-22s %-9s best F1 %.4f, precision at recall >= %.1f %.4f"
                " (recall threshold %s)"
                % (
                    grid_name,
                    name,
                    f1_gap,
                    MIN_RECALL,
                    precision_gap,
                    ", ".join(operating_points.format_threshold(t) for t in thresholds),
                )
            )


if __name__ == "__main__":
    main()

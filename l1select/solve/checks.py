"""The checks and the measure choice every binomial solver makes (the logistic solver and the
reference): one function each, so both refuse the same data with the same message."""

from __future__ import annotations

import numpy as np

from l1select.errors import DataError, list_names, quoted
from l1select.solve.logistic import AUC_MIN_ROWS
from l1select.types import FitParams, Warn


def check_binomial(mem, params: FitParams, source: str) -> None:
    """What a logistic fit on the rows in memory needs: columns of extreme magnitude
    standardized (held × a power of two, their curvature would overflow in their own units),
    and both classes in every training fold."""
    unit = mem.units()
    if not params.standardize and np.any(unit != 1.0):
        huge = [f.column for f, u in zip(mem.recipe.features, unit, strict=True) if u != 1.0]
        raise DataError(
            f"{list_names(huge)} in {source} hold values of extreme magnitude; a logistic "
            "model without standardization cannot fit them in their own units (its curvature "
            "overflows): drop --no-standardize, or rescale those columns")
    for k, (train, _) in enumerate(mem.folds, start=1):
        if np.unique(mem.y[train]).size < 2:
            name = quoted(mem.fold_labels[k - 1]) if mem.fold_labels else \
                f"{k} of {mem.n_folds}"
            raise DataError(
                f"The training rows of CV fold {name} in {source} hold only one class of "
                f"target {quoted(params.target)}: a logistic model cannot be fitted there; use "
                "fewer folds (--cv) or, with --fold-column or --group-column, folds that mix "
                "both classes")


def binomial_measure(params: FitParams, folds) -> tuple[str, list[Warn]]:
    """The CV measure of a logistic fit: ``--measure`` (deviance by default), with AUC
    falling back to deviance, as glmnet's does, when a fold is too small for it."""
    measure = params.measure or "deviance"
    if measure == "auc" and folds and min(t.size for _, t in folds) < AUC_MIN_ROWS:
        return "deviance", [Warn("auc_small_folds", (
            f"A CV fold holds fewer than {AUC_MIN_ROWS} rows, too few for a per-fold AUC; "
            "the deviance is used instead, as glmnet does (use fewer folds or more rows)"))]
    return measure, []


SATURATED_PATH = Warn("saturated_path", (
    "The fit explains more than 99.9% of the deviance before the end of the alpha grid (the "
    "classes are (nearly) separable): the path stops there, as glmnet's does; coefficients "
    "grow without bound below it"))

"""The checks of the design every engine makes once its rows are counted: one function, so
that every engine refuses the same data with the same message."""

from __future__ import annotations

import numpy as np

from l1select.errors import DataError, list_names, quoted
from l1select.types import FitParams, Warn


def check_design(params: FitParams, source: str, n_train: float, n_test: float,
                 target_spread: float, target_value: float, n_folds: int, by_label: bool,
                 fold_sizes: np.ndarray | None, fold_trains: np.ndarray | None = None) -> None:
    """Raise :class:`DataError` when the rows cannot make the fit asked for.

    ``n_train`` and ``n_test`` count the rows with a target on each side of the test split;
    ``target_spread`` is any measure of the target's variation on the training rows (zero:
    constant at ``target_value``); ``n_folds`` is the number of CV folds (0: no CV, a fixed
    alpha); ``by_label`` says the folds come from a fold column; ``fold_sizes`` are the
    held-out rows of each fold, in fold order, and ``fold_trains`` its training rows (default:
    all the others; forward folds train on fewer).

    In this order: a test split with rows on both sides, some training rows, a target that
    varies, at least two folds from a fold column, and rows enough in every fold.
    """
    if params.test_size is not None and (n_test == 0 or n_train == 0):
        raise DataError(f"--test-size {params.test_size} leaves no rows on one side of the "
                        f"split of {n_train + n_test:.0f} rows; choose another fraction")
    if n_train == 0:
        raise DataError(f"{source} has no rows with a target value; nothing to fit")
    if not target_spread > 0:
        raise DataError(f"Target column {quoted(params.target)} in {source} is constant "
                        f"({target_value:g}); choose a target that varies")
    if by_label and n_folds < 2:
        raise DataError(f"Fold column {quoted(params.fold_column)} in {source} has a "
                        "single fold; CV needs at least two")
    if n_folds:
        check_folds(fold_sizes, int(n_train), n_folds, source, fold_trains)


def check_folds(sizes: np.ndarray, n_train: int, n_folds: int, source: str,
                trains: np.ndarray | None = None) -> None:
    """Every fold holds out rows (``sizes``) and trains on at least two (``trains``; default:
    all the others)."""
    trains = n_train - sizes if trains is None else trains
    if n_train < max(n_folds, 2):
        raise DataError(f"{source} has {n_train} usable rows, fewer than the {n_folds} CV folds;"
                        " use a smaller --cv or more data")
    if (sizes == 0).any() or (trains < 2).any():
        raise DataError(f"{source} has too few usable rows ({n_train}) for {n_folds} CV folds; "
                        "use a smaller --cv or more data")


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
    from l1select.solve.logistic import AUC_MIN_ROWS

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

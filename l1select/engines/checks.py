"""The checks of the design every engine makes once its rows are counted (and the dropping of
features constant on the fitting rows): one function each, so that every engine refuses the
same data with the same message."""

from __future__ import annotations

import numpy as np

from l1select.errors import DataError, list_names, quoted
from l1select.types import FitParams, Recipe, Warn


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


def constant_features(spread: np.ndarray, recipe: Recipe, source: str
                      ) -> tuple[Recipe, np.ndarray, list[Warn]]:
    """Drop features whose spread on the fitting rows is zero (or unknown: no values)."""
    constant = ~(spread > 0)
    if not constant.any():
        return recipe, ~constant, []
    names = [f.name for f, c in zip(recipe.features, constant, strict=True) if c]
    kept = tuple(f for f, c in zip(recipe.features, constant, strict=True) if not c)
    if not kept:
        raise DataError(f"Every feature column in {source} is constant on the rows used; "
                        f"nothing can be selected (constant: {list_names(names)})")
    recipe = Recipe(recipe.target, recipe.columns, kept, recipe.fold_column)
    return recipe, ~constant, [Warn("dropped_constant",
                                    f"Dropped constant columns: {list_names(names, 20)}")]

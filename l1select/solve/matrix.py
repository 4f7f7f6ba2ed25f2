"""What the in-memory solvers share: the all-rows scaling and grids, weighted means, the
checks of scales and weights, stability's half-sample rows and the test error, computed from an
``engines.memory.InMemory`` matrix."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from l1select.engines.base import InMemory
from l1select.errors import DataError, quoted
from l1select.folds import MICRO_GROUPS, micro_ids
from l1select.grouplasso import feature_groups, group_alpha_max
from l1select.path import adaptive_initial_data, alpha_max, grids_for, make_penalty
from l1select.solve.stability import check_groups, half_pairs
from l1select.types import AllRows, FitParams, Recipe, Scaling


def scaling_of(X: np.ndarray, y: np.ndarray, standardize: bool,
               unit: np.ndarray | None = None, w: np.ndarray | None = None) -> Scaling:
    """Means and scales after imputing each column's missing values with its mean.

    Imputed values sit at the mean, so they add nothing to the sum of squares; the standard
    deviation (ddof=0) is over all rows, imputed ones included. ``unit``: how the columns of
    ``X`` are held (see :class:`InMemory`); without standardization a column's scale is 1 in
    its own units. With observation weights ``w`` (n,) every mean and standard deviation is
    weighted (glmnet's convention).
    """
    return _scaling(X, y, standardize, unit, w)[0]


def _scaling(X: np.ndarray, y: np.ndarray, standardize: bool, unit: np.ndarray | None,
             w: np.ndarray | None) -> tuple[Scaling, np.ndarray]:
    """:func:`scaling_of`, and ``X`` centered with its missing values at the mean (0): a
    new array, the caller's to change."""
    n = X.shape[0]
    ones = None if standardize else (np.ones(X.shape[1]) if unit is None else unit)
    if w is not None:
        total = float(w.sum())
        observed = ~np.isnan(X)
        with np.errstate(invalid="ignore", divide="ignore"):
            x_mean = (w @ np.where(observed, X, 0.0)) / (w @ observed)
        # A column observed on weight-0 rows only is constant here: centre it at 0.
        x_mean = np.nan_to_num(x_mean, nan=0.0)
        centered = np.where(observed, X - x_mean, 0.0)
        x_std = np.sqrt((w @ centered ** 2) / total)
        x_scale = np.where(x_std > 0, x_std, 1.0) if standardize else ones
        y_mean = float(w @ y / total)
        return Scaling(x_mean=x_mean, x_scale=x_scale, x_std=x_std, y_mean=y_mean,
                       y_var=float(w @ (y - y_mean) ** 2 / total), n_samples=n), centered
    missing = np.isnan(X)
    x_mean = nanmean(X, missing)
    centered = X - x_mean
    if missing.any():  # else no pass to put the (missing) values at the mean
        centered[missing] = 0.0
    x_std = np.sqrt(np.einsum("ij,ij->j", centered, centered) / n)
    ones = np.ones_like(x_std) if unit is None else unit
    x_scale = np.where(x_std > 0, x_std, 1.0) if standardize else ones
    y_mean = float(np.mean(y))
    return Scaling(x_mean=x_mean, x_scale=x_scale, x_std=x_std, y_mean=y_mean,
                   y_var=float(np.mean((y - y_mean) ** 2)), n_samples=n), centered


def nanmean(X: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """``np.nanmean(X, axis=0)`` (the same sums), NaN for a column with no value and no
    warning about it. ``missing``: ``np.isnan(X)``, if known."""
    missing = np.isnan(X) if missing is None else missing
    count = X.shape[0] - missing.sum(axis=0)
    # Without missing values X is summed as it is: the copy with zeros would have its layout
    # (a contiguous one), so the same sums.
    full = not missing.any() and (X.flags.c_contiguous or X.flags.f_contiguous)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (X if full else np.where(missing, 0.0, X)).sum(axis=0) / count


def in_own_units(scaling: Scaling, unit: np.ndarray) -> Scaling:
    """``scaling`` of columns held × ``unit``, in the columns' own units (exact)."""
    return Scaling(x_mean=scaling.x_mean / unit, x_scale=scaling.x_scale / unit,
                   x_std=scaling.x_std / unit, y_mean=scaling.y_mean, y_var=scaling.y_var,
                   n_samples=scaling.n_samples)


def check_scaling(scaling: Scaling, recipe: Recipe, source: str) -> None:
    """Each feature's coefficient on its own scale must be a normal, finite number: its
    spread against the target's within 1e±305 (a column of subnormal values is not)."""
    std = scaling.x_std
    sy = np.sqrt(scaling.y_var)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = sy / std
        bad = (std > 0) & ~((ratio > 1e-305) & (ratio < 1e305) &
                            (std >= np.finfo(np.float64).tiny))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        f = recipe.features[j]
        if std[j] < np.finfo(np.float64).tiny:
            raise DataError(f"Column {quoted(f.column)} in {source} has a spread "
                            f"({std[j]:.3g}) below "
                            "the smallest normal double (2.2e-308): its values hold too few "
                            "digits to fit; multiply the column by a power of ten")
        what = "small" if not ratio[j] < 1e305 else "large"
        raise DataError(f"Column {quoted(f.column)} in {source} has a spread ({std[j]:.3g}) too "
                        f"{what} beside the target's ({sy:.3g}) for its coefficient to be a "
                        f"normal number; {'multiply' if what == 'small' else 'divide'} the "
                        "column by a power of ten")


def standardized(X: np.ndarray, scaling: Scaling) -> np.ndarray:
    """``(X - mean) / scale`` with missing values at the mean (0 after centering)."""
    Z = X - scaling.x_mean
    Z /= scaling.x_scale
    Z[np.isnan(Z)] = 0.0
    return Z


def row_factors(w: np.ndarray | None, n: int) -> np.ndarray | None:
    """``sqrt(w_i · n / sum(w))``: multiplying the centered rows by these turns the weighted
    least-squares objective ``1/(2n) Σ w_i r_i²`` (weights scaled to sum to n, glmnet's
    convention) into an unweighted one on the same n rows."""
    return None if w is None else np.sqrt(w * (n / w.sum()))


def weighted_mean(values: np.ndarray, w: np.ndarray | None, axis: int = 0):
    """The (weighted) mean of ``values`` along ``axis``."""
    if w is None:
        return np.mean(values, axis=axis)
    return np.tensordot(w, values, axes=([0], [axis])) / w.sum()


def check_weight_sums(fold_sums: np.ndarray, test_sum: float | None, name: str,
                      source: str) -> None:
    """Weighted statistics divide by sums of weights: the training rows, each fold's
    held-out rows and the rest of its training rows, and the test rows need some weight.
    ``fold_sums`` holds each fold's weight (one entry, the training rows, without CV)."""
    train = float(np.sum(fold_sums))
    if train <= 0:
        raise DataError(f"Weights column '{name}' in {source} is zero on every row used; "
                        "give some rows a positive weight")
    if test_sum is not None and test_sum <= 0:
        raise DataError(f"Weights column '{name}' in {source} is zero on every test row "
                        "(--test-size); give some of them a positive weight")
    if len(fold_sums) < 2:
        return
    for k, s in enumerate(fold_sums):
        if s <= 0 or train - s <= 0:
            raise DataError(f"Weights column '{name}' in {source} is zero on every row "
                            f"{'of' if s <= 0 else 'outside'} CV fold {k + 1}; give rows "
                            "of every fold a positive weight, or use fewer folds")


@dataclass(frozen=True)
class Prepared:
    """The all-rows scaling, the alpha grid of each l1_ratio and their ``alpha_max``, the
    penalty factors (None: all 1) and how adaptive weights were made, and the all-rows
    problem (Gram columns formed on demand)."""

    scaling: Scaling
    grids: list
    a_max: list[float]
    penalty: np.ndarray | None
    adaptive: dict | None
    problem: AllRows


# Columns of the standardized matrix formed at a time for the all-rows Gram's columns.
GRAM_BLOCK = 2048


def prepare_grids(mem: InMemory, params: FitParams) -> Prepared:
    """All-rows scaling, penalty factors, and the alpha grid of each l1_ratio."""
    scaling, centered = _scaling(mem.X, mem.y, params.standardize, mem.units(), mem.w)
    n = mem.y.size
    root = row_factors(mem.w, n)

    def rows_scaled(Z: np.ndarray) -> np.ndarray:
        # Weighted: rows times sqrt(w·n/Σw), so that plain products are weighted ones.
        return Z if root is None else Z * (root[:, None] if Z.ndim == 2 else root)

    # standardized(mem.X, scaling), from the centered copy the scaling made: the same
    # numbers (missing values are 0 either way), without another n x p pass and copy.
    centered /= scaling.x_scale
    Xs = rows_scaled(centered)
    yc = rows_scaled(mem.y - scaling.y_mean)
    xty = Xs.T @ yc / n
    penalty, adaptive = make_penalty(mem.recipe.features, params,
                                     lambda: initial_data(Xs, yc))
    unpen = None if penalty is None else Xs.T @ Xs[:, penalty == 0] / n
    if params.group_categoricals:
        groups = feature_groups(mem.recipe.features)
        a_max = [group_alpha_max(xty, groups, r) for r in params.l1_ratios]
    else:
        a_max = [alpha_max(xty, r, penalty, unpen) for r in params.l1_ratios]
    diag = np.einsum("ij,ij->j", Xs, Xs) / n

    def standardized_block(cols) -> np.ndarray:
        Z = (mem.X[:, cols] - scaling.x_mean[cols]) / scaling.x_scale[cols]
        Z[np.isnan(Z)] = 0.0
        return rows_scaled(Z)

    def gram_cols(idx) -> np.ndarray:
        # Formed again on demand, a block of columns at a time: wide data neither keeps
        # nor makes a second n×p matrix (with its temporaries, 100 MB at 500 × 20,000).
        # The blocks are independent: --threads threads (else a core each) share them
        # (numpy and the BLAS release the GIL; the same products, so the same numbers).
        # One BLAS thread, 500 × 20,000, 158 columns: 0.10 -> 0.06 s on two cores.
        p = mem.X.shape[1]
        Zi = standardized_block(np.asarray(idx))
        out = np.empty((p, Zi.shape[1]))

        def block(start: int) -> None:
            cols = slice(start, min(start + GRAM_BLOCK, p))
            out[cols] = standardized_block(cols).T @ Zi / n

        starts = range(0, p, GRAM_BLOCK)
        threads = min(len(starts), params.threads or os.cpu_count() or 1)
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(block, starts))
        else:
            for start in starts:
                block(start)
        return out

    return Prepared(scaling, grids_for(a_max, params, n, mem.X.shape[1]), a_max, penalty,
                    adaptive, AllRows(gram_cols=gram_cols, gram_diag=diag, xty=xty))


def initial_data(Xs: np.ndarray, yc: np.ndarray):
    """The adaptive lasso's initial fit on the columns that vary (the others get 0)."""
    usable = np.einsum("ij,ij->j", Xs, Xs) > 0
    beta = np.zeros(Xs.shape[1])
    b, method, lam = adaptive_initial_data(Xs[:, usable], yc)
    beta[usable] = b
    return beta, method, lam


def n_values(y: np.ndarray) -> int:
    """The number of distinct values of ``y``, counted up to 3 (NaN counts as one value, as
    in ``np.unique``; without it, whose first call imports ``numpy.ma``: 16 ms)."""
    count = 0
    rest = y.ravel()
    while rest.size and count < 3:
        first = rest[0]
        rest = rest[~np.isnan(rest)] if first != first else rest[rest != first]
        count += 1
    return count


def half_rows(mem: InMemory, params: FitParams) -> list[np.ndarray]:
    """The fitting rows (positions in ``mem.y``) of each half-sample, pair by pair: the same
    micro-groups and pairs as the statistics engine."""
    if mem.micro is not None:
        # Whole labels (fold or group column): the half-samples are unions of their cells.
        cells = np.unique(mem.micro)
        ids = np.searchsorted(cells, mem.micro)
        counts = np.bincount(ids, minlength=cells.size)
    else:
        ids = micro_ids(mem.rows, MICRO_GROUPS, params.seed)
        counts = np.bincount(ids, minlength=MICRO_GROUPS)
    check_groups(counts, "training rows" if mem.micro is None else "whole labels")
    return [np.flatnonzero(mask[ids]).astype(np.int64)
            for pair in half_pairs(counts, params.stability, params.seed) for mask in pair]


def n_micro(mem: InMemory) -> int:
    """How many micro-groups the half-samples are unions of."""
    return MICRO_GROUPS if mem.micro is None else int(np.unique(mem.micro).size)


def test_error_fn(mem: InMemory, x_mean: np.ndarray):
    """The test-set error of a model, with missing values imputed by the training means
    (``x_mean`` as the columns are held); the model's coefficients are on the own scale."""
    if mem.y_test.size == 0:
        return None

    def test_error(coef: np.ndarray, intercept: float) -> dict:
        # With weights: the weighted mean of the squared errors, and R² against the weighted
        # variance of the test target.
        w = mem.w_test
        X = np.where(np.isnan(mem.X_test), x_mean, mem.X_test)
        resid = mem.y_test - intercept - X @ (coef / mem.units())
        mse = float(weighted_mean(resid ** 2, w))
        sst = float(weighted_mean((mem.y_test - weighted_mean(mem.y_test, w)) ** 2, w))
        return {"n_rows": int(mem.y_test.size), "mse": mse,
                "r2": (1.0 - mse / sst) if sst > 0 else None}

    return test_error

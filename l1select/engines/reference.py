"""The reference engine: scikit-learn's ``enet_path`` on explicitly imputed and standardized data.

It materializes every training fold, so it is slow and memory-hungry; it stays as the independent
reference the fast engine is tested against, and runs when asked for with ``--engine reference``.
"""

from __future__ import annotations

import numpy as np

from l1select.types import PathFit, Scaling


def impute_and_scale(X: np.ndarray, y: np.ndarray, standardize: bool) -> Scaling:
    """Means and scales of the design after imputing each column's missing values with its mean.

    Imputed values sit at the mean, so they add nothing to the sum of squares; the standard
    deviation (ddof=0) is over all rows, imputed ones included.
    """
    n = X.shape[0]
    x_mean = np.nanmean(X, axis=0) if n else np.zeros(X.shape[1])
    centered = np.where(np.isnan(X), 0.0, X - x_mean)
    x_std = np.sqrt(np.einsum("ij,ij->j", centered, centered) / n)
    x_scale = np.where(x_std > 0, x_std, 1.0) if standardize else np.ones_like(x_std)
    y_mean = float(np.mean(y))
    return Scaling(x_mean=x_mean, x_scale=x_scale, x_std=x_std, y_mean=y_mean,
                   y_var=float(np.mean((y - y_mean) ** 2)), n_samples=n)


def standardized(X: np.ndarray, scaling: Scaling) -> np.ndarray:
    """``(X - mean) / scale`` with missing values at the mean (0 after centering)."""
    Z = (X - scaling.x_mean) / scaling.x_scale
    Z[np.isnan(Z)] = 0.0
    return Z


def _path(Xs: np.ndarray, yc: np.ndarray, l1_ratio: float, alphas: np.ndarray,
          tol: float, max_iter: int) -> np.ndarray:
    from sklearn.linear_model import enet_path

    # sklearn's tol is relative to ||y||²; ours to ||y||²/n on the 1/n objective: the same ratio.
    _, coefs, _ = enet_path(
        np.asfortranarray(Xs), yc, l1_ratio=l1_ratio, alphas=alphas, tol=tol,
        max_iter=max_iter, precompute=False, check_input=True,
    )
    return coefs


def fit_paths(X: np.ndarray, y: np.ndarray, folds: np.ndarray | None, n_folds: int,
              grids: list[tuple[float, np.ndarray]], standardize: bool, tol: float,
              max_iter: int) -> list[PathFit]:
    """The all-rows path and, with ``folds``, each fold's held-out MSE for every grid.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), NaN where missing
    y : ndarray of shape (n_samples,)
    folds : ndarray of shape (n_samples,) of fold ids in 0…n_folds-1, or None for no CV
    grids : list of (l1_ratio, alphas) with alphas descending
    """
    full = impute_and_scale(X, y, standardize)
    Xs = standardized(X, full)
    yc = y - full.y_mean
    fold_data = []
    if folds is not None:
        for k in range(n_folds):
            test = folds == k
            train = ~test
            sc = impute_and_scale(X[train], y[train], standardize)
            fold_data.append((sc, standardized(X[train], sc), standardized(X[test], sc), y[test]))
    fits = []
    for l1_ratio, alphas in grids:
        coefs = _path(Xs, yc, l1_ratio, alphas, tol, max_iter)
        mse_path = sizes = None
        fold_coefs = None
        if folds is not None:
            mse_path = np.empty((alphas.size, n_folds))
            sizes = np.empty(n_folds)
            fold_coefs = []
            for k, (sc, Xtr, Xte, yte) in enumerate(fold_data):
                ck = _path(Xtr, (y[folds != k] - sc.y_mean), l1_ratio, alphas, tol, max_iter)
                pred = sc.y_mean + Xte @ ck
                mse_path[:, k] = np.mean((yte[:, None] - pred) ** 2, axis=0)
                sizes[k] = yte.size
                fold_coefs.append(ck)
            fold_coefs = np.stack(fold_coefs)
        fits.append(PathFit(l1_ratio=l1_ratio, alphas=alphas, coefs=coefs, mse_path=mse_path,
                            fold_sizes=sizes, fold_coefs=fold_coefs))
    return fits


def all_rows_xty(X: np.ndarray, y: np.ndarray, standardize: bool) -> tuple[np.ndarray, Scaling]:
    """``Xs.T @ yc / n`` on all rows, which sets ``alpha_max``."""
    full = impute_and_scale(X, y, standardize)
    Xs = standardized(X, full)
    return Xs.T @ (y - full.y_mean) / X.shape[0], full

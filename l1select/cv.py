"""The CV error curve and the two alphas it defines (glmnet's ``cvm``, ``cvsd``, ``lambda.min``,
``lambda.1se``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CVCurve:
    """``mean`` and ``se`` have shape (n_alphas,); ``i_min``/``i_1se`` index the grid."""

    mean: np.ndarray
    se: np.ndarray
    i_min: int
    i_1se: int


def cv_curve(mse_path: np.ndarray, fold_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold-size weighted mean of the fold MSEs, and its standard error.

    Parameters
    ----------
    mse_path : ndarray of shape (n_alphas, n_folds)
    fold_sizes : ndarray of shape (n_folds,)

    Returns
    -------
    mean, se : ndarrays of shape (n_alphas,)
        ``se`` is the weighted standard deviation of the fold MSEs over sqrt(n_folds - 1).
    """
    w = np.asarray(fold_sizes, dtype=np.float64)
    w = w / w.sum()
    mean = mse_path @ w
    var = ((mse_path - mean[:, None]) ** 2) @ w
    k = mse_path.shape[1]
    se = np.sqrt(var / (k - 1)) if k > 1 else np.zeros_like(mean)
    return mean, se


def choose(alphas: np.ndarray, mean: np.ndarray, se: np.ndarray,
           maximize: bool = False) -> CVCurve:
    """``i_min`` is the best alpha (the least CV error; the largest AUC with ``maximize``; the
    largest alpha among ties); ``i_1se`` is the largest alpha within one SE of the best."""
    if maximize:
        i_min = int(np.argmax(mean))  # the first, i.e. the largest alpha, among ties
        ok = np.flatnonzero(mean >= mean[i_min] - se[i_min])
    else:
        i_min = int(np.argmin(mean))
        ok = np.flatnonzero(mean <= mean[i_min] + se[i_min])
    i_1se = int(ok[np.argmax(alphas[ok])])
    return CVCurve(mean=mean, se=se, i_min=i_min, i_1se=i_1se)


def heldout_sse(n: float, mean: np.ndarray, com: np.ndarray, value: np.ndarray,
                missing: np.ndarray, target: int, shift: np.ndarray, coef: np.ndarray,
                intercept: np.ndarray) -> np.ndarray:
    """Sum of squared errors on a held-out group, from that group's own statistics.

    A held-out missing value is imputed with the training mean: its slot value minus
    ``shift`` (fill - training mean) times the missing indicator. The residual is then linear
    in the slots, ``e = a·u - intercept``, and its sum of squares is
    ``aᵀ com a + n (a·mean - intercept)²``.

    Parameters
    ----------
    n, mean (n_slots,), com (n_slots, n_slots) : the held-out group's statistics
    value, missing (n_features,) : slot of each feature's value / missing indicator (-1: none)
    target : slot of y
    shift : (n_features,) fill minus the training mean
    coef : (n_features, n_alphas) coefficients on the original scale
    intercept : (n_alphas,)

    Returns
    -------
    sse : ndarray of shape (n_alphas,)
    """
    a = np.zeros((mean.shape[0], coef.shape[1]))
    a[target] = 1.0
    np.subtract.at(a, value, coef)
    has = missing >= 0
    if has.any():
        np.add.at(a, missing[has], shift[has, None] * coef[has])
    quad = np.einsum("ia,ia->a", a, com @ a)
    lin = a.T @ mean - intercept
    return np.maximum(quad, 0.0) + n * lin ** 2

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


def choose(alphas: np.ndarray, mean: np.ndarray, se: np.ndarray) -> CVCurve:
    """``i_min`` minimizes the CV error (the largest alpha among ties); ``i_1se`` is the largest
    alpha whose error is at most the minimum plus its SE."""
    i_min = int(np.argmin(mean))  # argmin takes the first, i.e. the largest alpha, among ties
    bound = mean[i_min] + se[i_min]
    ok = np.flatnonzero(mean <= bound)
    i_1se = int(ok[np.argmax(alphas[ok])])
    return CVCurve(mean=mean, se=se, i_min=i_min, i_1se=i_1se)

"""The alpha grid and the coefficient path on standardized statistics.

The objective, as scikit-learn writes it::

    1/(2n) ||y - Xw - b||² + alpha·l1_ratio·||w||₁ + alpha·(1 - l1_ratio)/2·||w||²
"""

from __future__ import annotations

import numpy as np

from l1select.errors import ConfigError


def alpha_max(xty: np.ndarray, l1_ratio: float) -> float:
    """The smallest alpha at which every coefficient is zero.

    Parameters
    ----------
    xty : ndarray of shape (n_features,)
        ``Xs.T @ (y - mean(y)) / n_samples`` on the (standardized) design.
    l1_ratio : float in (0, 1]
    """
    top = float(np.max(np.abs(xty))) if xty.size else 0.0
    return top / l1_ratio


def alpha_grid(a_max: float, n_alphas: int, eps: float) -> np.ndarray:
    """``n_alphas`` geometric points from ``a_max`` down to ``eps * a_max`` (descending)."""
    if a_max <= 0.0:
        # No feature correlates with the target at all: a one-point grid whose fit is empty.
        return np.array([np.finfo(np.float64).tiny])
    return np.geomspace(a_max, a_max * eps, num=n_alphas)


def explicit_grid(alphas: tuple[float, ...]) -> np.ndarray:
    grid = np.array(sorted(set(alphas), reverse=True), dtype=np.float64)
    if grid.size == 0 or np.any(grid <= 0) or not np.all(np.isfinite(grid)):
        raise ConfigError("--alphas must be positive, finite numbers, e.g. --alphas 1,0.1,0.01")
    return grid


def grids_for(a_max: list[float], params) -> list[tuple[float, np.ndarray]]:
    """(l1_ratio, alphas) for each l1_ratio: the fixed alpha, the explicit grid, or the
    geometric grid below that ratio's ``alpha_max``."""
    if params.alpha is not None:
        return [(params.l1_ratios[0], np.array([params.alpha]))]
    if params.alphas is not None:
        return [(r, explicit_grid(params.alphas)) for r in params.l1_ratios]
    return [(r, alpha_grid(m, params.n_alphas, params.eps))
            for r, m in zip(params.l1_ratios, a_max, strict=True)]


def solve_gram(gram: np.ndarray, xty: np.ndarray, yty: float, alphas: np.ndarray,
               l1_ratio: float, usable: np.ndarray, params) -> tuple[np.ndarray, bool]:
    """The coefficient path (n_features, n_alphas) on a standardized Gram problem, and whether
    every alpha converged within ``max_iter`` epochs.

    Features that do not vary on these rows (``usable`` False) stay at zero: they are left out
    of the problem the solver sees.
    """
    from l1select._kernels import cd_gram_path

    p = xty.shape[0]
    coefs = np.zeros((p, alphas.size))
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return coefs, True
    G = np.ascontiguousarray(gram[np.ix_(idx, idx)]) if idx.size < p else \
        np.ascontiguousarray(gram)
    c = np.ascontiguousarray(xty[idx])
    penalty = np.ones(idx.size)
    w0 = np.zeros(idx.size)
    sub, _, n_iter = cd_gram_path(G, c, float(yty), np.ascontiguousarray(alphas, dtype=np.float64),
                             float(l1_ratio), penalty, w0, float(params.tol),
                             int(params.max_iter))
    coefs[idx] = sub
    return coefs, bool(np.all(n_iter < params.max_iter))

"""The alpha grid and the coefficient path on standardized statistics.

The objective, as scikit-learn writes it::

    1/(2n) ||y - Xw - b||² + alpha·l1_ratio·||w||₁ + alpha·(1 - l1_ratio)/2·||w||²
"""

from __future__ import annotations

import numpy as np

from l1select.errors import ConfigError, quoted


def alpha_max(xty: np.ndarray, l1_ratio: float, penalty: np.ndarray | None = None,
              gram_unpen: np.ndarray | None = None) -> float:
    """The smallest alpha at which every penalized coefficient is zero.

    With penalty factors (glmnet's): ``max over pf_j > 0 of |c_j| / (l1_ratio * pf_j)``, where
    ``c`` is the correlation with the residual of the unpenalized features' least-squares
    fit (they are in the model at every alpha), as glmnet computes its ``lambda.max``.

    Parameters
    ----------
    xty : ndarray of shape (n_features,)
        ``Xs.T @ (y - mean(y)) / n_samples`` on the (standardized) design.
    l1_ratio : float in (0, 1]
    penalty : ndarray of shape (n_features,), optional
        Penalty factors ``pf_j >= 0``; None: all 1.
    gram_unpen : ndarray of shape (n_features, n_unpenalized), optional
        The Gram columns of the features with ``pf_j = 0`` (needed when there are any).
    """
    if penalty is None:
        top = float(np.max(np.abs(xty))) if xty.size else 0.0
        return top / l1_ratio
    c = residual_xty(xty, penalty, gram_unpen)
    pen = penalty > 0
    if not pen.any():
        return 0.0
    return float(np.max(np.abs(c[pen]) / penalty[pen])) / l1_ratio


def residual_xty(xty: np.ndarray, penalty: np.ndarray, gram_unpen: np.ndarray | None
                 ) -> np.ndarray:
    """``Xsᵀ r / n`` for the residual ``r`` of the least-squares fit on the unpenalized
    features (``xty`` itself when every feature is penalized)."""
    unpen = np.flatnonzero(penalty == 0)
    if unpen.size == 0:
        return xty
    assert gram_unpen is not None
    # lstsq: forcing every level of a categorical makes these columns dependent.
    w, *_ = np.linalg.lstsq(gram_unpen[unpen], xty[unpen], rcond=None)
    return xty - gram_unpen @ w


# The adaptive lasso's initial fit (Zou 2006): least squares when there are at least twice
# as many rows as features and the standardized Gram is this well conditioned, else ridge.
ADAPTIVE_MAX_COND = 1e6
# The ridge penalty of that fit, as a fraction of the mean diagonal of the Gram (1 when
# standardized): small enough to stay close to least squares, large enough to make the
# solution unique with collinear or more features than rows.
ADAPTIVE_RIDGE = 1e-2
# A weight 1/|beta_j| is capped at this multiple of the smallest weight: a coefficient of
# exactly zero would otherwise get an infinite weight and never enter.
ADAPTIVE_MAX_RATIO = 1e6


def adaptive_initial(gram: np.ndarray, xty: np.ndarray, n_samples: float
                     ) -> tuple[np.ndarray, str, float | None]:
    """The adaptive lasso's initial coefficients on a standardized Gram problem, the method
    (``ols`` or ``ridge``) and the ridge penalty (None for OLS).

    Ridge minimizes ``1/(2n)||yc - Xs b||² + lam/2 ||b||²``, i.e. ``(G + lam I) b = c``.
    """
    p = xty.shape[0]
    if n_samples >= 2 * p:
        cond = np.linalg.cond(gram) if p else 1.0
        if np.isfinite(cond) and cond <= ADAPTIVE_MAX_COND:
            return np.linalg.solve(gram, xty), "ols", None
    lam = ADAPTIVE_RIDGE * float(np.trace(gram)) / max(p, 1)
    return np.linalg.solve(gram + lam * np.eye(p), xty), "ridge", lam


def adaptive_initial_data(Xs: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, str,
                                                                   float | None]:
    """:func:`adaptive_initial` from the standardized data matrix (n, p): with more features
    than half the rows, ridge in its dual form ``b = Xsᵀ (Xs Xsᵀ / n + lam I)⁻¹ yc / n``, which
    never forms the p×p Gram."""
    n, p = Xs.shape
    if n >= 2 * p:
        return adaptive_initial(Xs.T @ Xs / n, Xs.T @ yc / n, n)
    lam = ADAPTIVE_RIDGE * float(np.einsum("ij,ij->", Xs, Xs)) / (n * max(p, 1))
    K = Xs @ Xs.T / n
    a = np.linalg.solve(K + lam * np.eye(n), yc / n)
    return Xs.T @ a, "ridge", lam


def adaptive_weights(beta: np.ndarray) -> np.ndarray:
    """``1 / |beta_j|`` (gamma = 1), capped at ``ADAPTIVE_MAX_RATIO`` times the smallest."""
    size = np.abs(beta)
    top = float(size.max()) if size.size else 0.0
    if top <= 0 or not np.isfinite(top):
        return np.ones_like(size)
    return 1.0 / np.maximum(size, top / ADAPTIVE_MAX_RATIO)


def rescale_penalty(pf: np.ndarray) -> np.ndarray:
    """Penalty factors rescaled to sum to the number of features, as glmnet does."""
    total = float(pf.sum())
    return pf * (pf.size / total) if total > 0 else pf


def ols_refit(gram_ss: np.ndarray, xty_s: np.ndarray) -> tuple[np.ndarray, bool]:
    """Least squares on a standardized Gram problem ``G_SS b = c_S``; and whether it is rank
    deficient (then the minimum-norm solution)."""
    if xty_s.size == 0:
        return np.zeros(0), False
    b, _, rank, _ = np.linalg.lstsq(gram_ss, xty_s, rcond=None)
    return b, bool(rank < xty_s.size)


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


# The default end of the grid, as a fraction of alpha_max. With fewer rows than features it
# is glmnet's lambda.min.ratio of 1e-2: below it the fit interpolates the training rows, and
# the path there is long, slow and uninformative. Otherwise scikit-learn's eps of 1e-3.
DEFAULT_EPS = 1e-3
WIDE_EPS = 1e-2
# glmnet's stops for a generated grid on wide data: a fraction of deviance explained above
# SATURATED_DEV, or a relative gain below SATURATED_GAIN from one alpha to the next, ends the
# path (the alpha that met the condition is kept), never before MIN_ALPHAS alphas (glmnet's
# rsqmax, sml and mnl).
SATURATED_DEV = 0.999
SATURATED_GAIN = 1e-5
MIN_ALPHAS = 5


def default_eps(params, n_samples: int, n_features: int) -> float:
    """``--eps`` when given, else 1e-3, or 1e-2 when there are fewer rows than features."""
    if params.eps is not None:
        return float(params.eps)
    return WIDE_EPS if n_samples < n_features else DEFAULT_EPS


def grids_for(a_max: list[float], params, n_samples: int, n_features: int
              ) -> list[tuple[float, np.ndarray]]:
    """(l1_ratio, alphas) for each l1_ratio: the fixed alpha, the explicit grid, or the
    geometric grid below that ratio's ``alpha_max`` down to :func:`default_eps`.

    ``n_samples``, ``n_features``: the rows and candidate features of the all-rows fit.
    """
    if params.alpha is not None:
        return [(params.l1_ratios[0], np.array([params.alpha]))]
    if params.alphas is not None:
        return [(r, explicit_grid(params.alphas)) for r in params.l1_ratios]
    eps = default_eps(params, n_samples, n_features)
    return [(r, alpha_grid(m, params.n_alphas, eps))
            for r, m in zip(params.l1_ratios, a_max, strict=True)]


def stops_early(params, n_samples: int, n_features: int) -> bool:
    """Whether a path may end before its last alpha once the all-rows fit saturates: on a
    generated grid (no ``--alphas``, no ``--alpha``) with fewer rows than features."""
    return params.alpha is None and params.alphas is None and n_samples < n_features


def saturated_length(dev: np.ndarray) -> int:
    """How many alphas of a path to keep, from the all-rows fit's fraction of deviance
    explained at each alpha (``1 - RSS / TSS``, in grid order): up to and including the first
    alpha (from the ``MIN_ALPHAS``-th on) where it passes ``SATURATED_DEV`` or gains less than
    ``SATURATED_GAIN`` of itself over the previous alpha.

    A path is solved from the top of the grid down and each alpha warm-starts from the one
    before, so the kept alphas have exactly the solutions a shorter grid would have given.
    """
    for k in range(MIN_ALPHAS - 1, dev.size):
        if dev[k] > SATURATED_DEV or dev[k] - dev[k - 1] < SATURATED_GAIN * dev[k]:
            return k + 1
    return int(dev.size)


def gram_deviance_explained(gram: np.ndarray, xty: np.ndarray, yty: float,
                            coefs: np.ndarray) -> np.ndarray:
    """``1 - RSS / TSS`` of each column of ``coefs`` (n_features, n_alphas) on a
    standardized Gram problem: ``RSS / n = yty - 2 cᵀw + wᵀGw``."""
    if yty <= 0:
        return np.zeros(coefs.shape[1])
    active = np.flatnonzero(np.any(coefs != 0.0, axis=1))
    w = coefs[active]
    rss = yty - 2.0 * (xty[active] @ w) + np.einsum("ik,ik->k", w,
                                                     gram[np.ix_(active, active)] @ w)
    return 1.0 - rss / yty


def data_deviance_explained(columns, yc: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """``1 - RSS / TSS`` of each column of ``coefs`` (n_features, n_alphas) on standardized
    data; ``columns(idx)`` gives the standardized columns ``idx`` (n_samples, len(idx)) and
    ``yc`` is the centered target."""
    tss = float(yc @ yc)
    if tss <= 0:
        return np.zeros(coefs.shape[1])
    active = np.flatnonzero(np.any(coefs != 0.0, axis=1))
    resid = yc[:, None] - columns(active) @ coefs[active]
    return 1.0 - np.einsum("ik,ik->k", resid, resid) / tss


def solve_gram(gram: np.ndarray, xty: np.ndarray, yty: float, alphas: np.ndarray,
               l1_ratio: float, usable: np.ndarray, params,
               penalty: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """The coefficient path (n_features, n_alphas) on a standardized Gram problem, and whether
    every alpha converged within ``max_iter`` epochs.

    Features that do not vary on these rows (``usable`` False) stay at zero: they are left out
    of the problem the solver sees. ``penalty`` (n_features,): the penalty factors (None: 1).
    """
    from l1select._aot import gram_path

    cd_gram_path = gram_path()
    p = xty.shape[0]
    coefs = np.zeros((p, alphas.size))
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return coefs, True
    G = np.ascontiguousarray(gram[np.ix_(idx, idx)]) if idx.size < p else \
        np.ascontiguousarray(gram)
    c = np.ascontiguousarray(xty[idx])
    pf = np.ones(idx.size) if penalty is None else np.ascontiguousarray(penalty[idx],
                                                                          dtype=np.float64)
    w0 = np.zeros(idx.size)
    sub, _, n_iter = cd_gram_path(G, c, float(yty), np.ascontiguousarray(alphas, dtype=np.float64),
                             float(l1_ratio), pf, w0, float(params.tol),
                             int(params.max_iter))
    coefs[idx] = sub
    return coefs, bool(np.all(n_iter < params.max_iter))


def _matches(pattern: str, feature) -> bool:
    import fnmatch

    return any(name == pattern or fnmatch.fnmatchcase(name, pattern)
               for name in (feature.column, feature.name))


def user_penalty(features, params) -> np.ndarray | None:
    """The penalty factor of each feature from ``--force`` and ``--penalty-factor`` (before
    any adaptive weights and the rescaling), or None when neither is given.

    A name (or glob) is a source column, which gives the factor to all its features (every
    level of a categorical), or a feature name (``column=level``).
    """
    if not params.force and not params.penalty_factors:
        return None
    pf = np.ones(len(features))
    names = [f.name for f in features]
    for option, pattern, weight in (
            [("--penalty-factor", n, w) for n, w in params.penalty_factors]
            + [("--force", n, 0.0) for n in params.force]):
        hit = np.array([_matches(pattern, f) for f in features], dtype=bool)
        if not hit.any():
            from l1select.errors import did_you_mean, list_names

            cols = list(dict.fromkeys(f.column for f in features))
            hint = did_you_mean(pattern, cols + names)
            raise ConfigError(
                f"{option} {quoted(pattern)} matches no feature{'; ' + hint if hint else ''} "
                f"(a column that is excluded, or dropped as constant, cannot be weighed; "
                f"features: {list_names(cols)})")
        pf[hit] = weight
    return pf


def make_penalty(features, params, initial) -> tuple[np.ndarray | None, dict | None]:
    """The penalty factors the paths are solved with, rescaled as glmnet does, and how the
    adaptive weights were made; (None, None) when every factor is 1.

    ``initial()`` gives the adaptive lasso's initial fit ``(beta, method, ridge_lambda)``
    (called only with ``--adaptive``). The factors are the user's factors times the adaptive
    weights ``1/|beta_j|`` (forced features stay at 0), then multiplied by ``p / sum``.
    """
    pf = user_penalty(features, params)
    info = None
    if params.adaptive:
        beta, method, lam = initial()
        weights = adaptive_weights(beta)
        pf = weights if pf is None else pf * weights
        info = {"initial": method, "ridge_lambda": lam, "gamma": 1.0,
                "max_weight_ratio": ADAPTIVE_MAX_RATIO}
    if pf is None:
        return None, None
    if not (pf > 0).any():
        raise ConfigError("--force covers every feature: nothing is left to select; force "
                          "fewer columns")
    return rescale_penalty(pf), info

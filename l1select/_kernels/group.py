"""The group lasso's hot loop: block coordinate descent on a standardized Gram.

The objective, on the standardized scale (groups ``g`` partition the features)::

    1/(2n)||y - Xw||² + alpha·l1_ratio·Σ_g s_g·||w_g||₂ + alpha·(1 - l1_ratio)/2·||w||²

with ``s_g = √|g|`` (grpreg/gglasso). A group of one is a lasso coordinate, and its update is
the lasso's coordinate-descent update exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _gap(c, q, w, yty, l1, l2, starts, scale):
    """The duality gap (divided by n) of ``w``, given ``q = c - G w``.

    The group form of scikit-learn's elastic-net gap: the dual norm of ``Xᵀr/n - l2·w`` is
    ``max_g ||·_g|| / s_g``, and the l1 norm becomes ``Σ_g s_g ||w_g||``.
    """
    cw = 0.0
    wq = 0.0
    ww = 0.0
    for j in range(w.shape[0]):
        cw += c[j] * w[j]
        wq += w[j] * q[j]
        ww += w[j] * w[j]
    r2 = max(yty - cw - wq, 0.0)  # ||y - Xw||²/n = yty - 2cᵀw + wᵀGw, with Gw = c - q
    dual = 0.0
    pen = 0.0
    for g in range(starts.shape[0] - 1):
        a = 0.0
        b = 0.0
        for j in range(starts[g], starts[g + 1]):
            t = q[j] - l2 * w[j]
            a += t * t
            b += w[j] * w[j]
        dual = max(dual, np.sqrt(a) / scale[g])
        pen += scale[g] * np.sqrt(b)
    if dual > l1:
        const = l1 / dual
        gap = 0.5 * (r2 + r2 * const * const)
    else:
        const = 1.0
        gap = r2
    gap += l1 * pen - const * (yty - cw) + 0.5 * l2 * (1.0 + const * const) * ww
    return gap


@njit(cache=True)
def group_cd_gram_path(G, c, yty, alphas, l1_ratio, starts, scale, lips, w, tol, max_iter):
    """Block coordinate descent along a descending alpha grid, warm-started.

    Each block step minimizes the majorizer ``L_g/2 ||w_g - v||²`` of the smooth part
    (``L_g`` the largest eigenvalue of ``G_gg``) plus the group penalty and the ridge part,
    in closed form (gglasso's groupwise majorization descent); it stops at a duality gap of
    ``tol · yty``.

    Parameters
    ----------
    G : (n_features, n_features) standardized Gram ``Xsᵀ Xs / n``, C-contiguous
    c : (n_features,) ``Xsᵀ yc / n``
    yty : float, ``ycᵀ yc / n``
    alphas : (n_alphas,) descending
    l1_ratio : float in (0, 1]
    starts : (n_groups + 1,) int64, group g is ``starts[g]:starts[g + 1]`` (contiguous)
    scale : (n_groups,) penalty weight of each group (``√|g|``)
    lips : (n_groups,) ``L_g > 0``
    w : (n_features,) the warm start; **mutated**: it ends at the last alpha's solution
    tol : float, max_iter : int (epochs per alpha)

    Returns
    -------
    coefs : (n_features, n_alphas), gaps : (n_alphas,), n_iter : (n_alphas,) epochs used
    """
    p = c.shape[0]
    n_groups = starts.shape[0] - 1
    n_alphas = alphas.shape[0]
    coefs = np.zeros((p, n_alphas))
    gaps = np.zeros(n_alphas)
    n_iter = np.zeros(n_alphas, dtype=np.int64)
    q = c - G @ w
    u = np.zeros(p)
    for k in range(n_alphas):
        l1 = alphas[k] * l1_ratio
        l2 = alphas[k] * (1.0 - l1_ratio)
        gap = _gap(c, q, w, yty, l1, l2, starts, scale)
        it = 0
        while gap > tol * yty and it < max_iter:
            it += 1
            for g in range(n_groups):
                s, e = starts[g], starts[g + 1]
                L = lips[g]
                nrm = 0.0
                for j in range(s, e):
                    u[j] = L * w[j] + q[j]
                    nrm += u[j] * u[j]
                nrm = np.sqrt(nrm)
                thr = l1 * scale[g]
                shrink = 0.0 if nrm <= thr else (1.0 - thr / nrm) / (L + l2)
                for j in range(s, e):
                    d = u[j] * shrink - w[j]
                    if d != 0.0:
                        w[j] += d
                        for i in range(p):  # G is symmetric: row j, contiguous
                            q[i] -= G[j, i] * d
            gap = _gap(c, q, w, yty, l1, l2, starts, scale)
        coefs[:, k] = w
        gaps[k] = gap
        n_iter[k] = it
    return coefs, gaps, n_iter

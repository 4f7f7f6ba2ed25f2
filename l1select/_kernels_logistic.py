"""Numba hot loops of the penalized logistic regression (``solve/logistic.py`` calls them).

The problem, on features standardized implicitly (``z_ij = (x_ij - mean_j) * inv_scale_j``,
0 where ``x_ij`` is missing) and weights ``w`` that sum to ``n``::

    min over (b0, beta) of
        1/n sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i]
        + alpha * sum_j pf_j * (l1_ratio |beta_j| + (1 - l1_ratio) / 2 beta_j^2),
    eta_i = b0 + z_i . beta

Proximal Newton, as glmnet: each outer (IRLS) step replaces the log-likelihood by its quadratic
model at the current ``eta`` (weights ``v_i = w_i p_i (1 - p_i)``) and solves that penalized
weighted least-squares problem by cyclic coordinate descent on the data matrix, keeping the
weighted residual ``r_i = w_i (y_i - p_i) - v_i (eta_new_i - eta_i)``. A step that does not
lower the objective is halved (it happens only far from the optimum, e.g. separable data).

Stopping rule: glmnet's. An inner sweep stops when ``max_j H_jj d_j^2 < tol`` (``H_jj`` the
Hessian diagonal, ``d_j`` the sweep's change; the intercept likewise), an outer loop when the
whole Newton step is that small. A duality gap is not used: with an unpenalized intercept and
forced features the natural dual point ``y - p`` is feasible only up to the solver's own error,
so the gap would measure that, not the distance to the optimum. Every alpha ends with a KKT
check over all features (a screened-out feature whose gradient exceeds its penalty joins the
working set and the alpha is solved again), and the tests check KKT at every alpha.

Screening: the sequential strong rule (Tibshirani et al. 2012) on the previous alpha's
gradient; features that were ever non-zero stay in the working set.

Every function here is valid Python (``NUMBA_DISABLE_JIT=1`` runs it) and mutates only the
arrays its docstring names.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Probabilities are kept this far from 0 and 1 in the IRLS weights, as glmnet does: a fitted
# probability of exactly 0 or 1 would give a zero curvature and a singular Newton step.
P_CLAMP = 1e-5
# Step halvings before a Newton step is taken as it is (it then only slows convergence).
MAX_HALVINGS = 30


@njit(cache=True, nogil=True)
def _z(X, r, j, mean, inv_scale):
    x = X[r, j]
    if x != x:
        return 0.0
    return (x - mean[j]) * inv_scale[j]


@njit(cache=True, nogil=True)
def _eta(X, rows, mean, inv_scale, b0, beta, active, n_active, eta):
    """Linear predictor of every row. Mutates ``eta``."""
    n = rows.size
    for i in range(n):
        eta[i] = b0
    for t in range(n_active):
        j = active[t]
        bj = beta[j]
        if bj == 0.0:
            continue
        for i in range(n):
            eta[i] += _z(X, rows[i], j, mean, inv_scale) * bj


@njit(cache=True, nogil=True)
def _loss(eta, y, w):
    """``1/n sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i]``, computed without overflow."""
    n = eta.size
    s = 0.0
    for i in range(n):
        e = eta[i]
        if e > 0:
            s += w[i] * (e + np.log1p(np.exp(-e)) - y[i] * e)
        else:
            s += w[i] * (np.log1p(np.exp(e)) - y[i] * e)
    return s / n


@njit(cache=True, nogil=True)
def _penalty(beta, pf, active, n_active, a, b):
    s = 0.0
    for t in range(n_active):
        j = active[t]
        s += pf[j] * (a * abs(beta[j]) + 0.5 * b * beta[j] * beta[j])
    return s


@njit(cache=True, nogil=True)
def _sigmoid(e):
    if e >= 0:
        return 1.0 / (1.0 + np.exp(-e))
    t = np.exp(e)
    return t / (1.0 + t)


@njit(cache=True, nogil=True)
def gradient(X, rows, y, w, mean, inv_scale, eta, grad):
    """``grad_j = 1/n sum_i w_i z_ij (y_i - p_i)`` for every feature (minus the gradient of the
    loss). Mutates ``grad``."""
    n = rows.size
    p = grad.size
    res = np.empty(n)
    for i in range(n):
        res[i] = w[i] * (y[i] - _sigmoid(eta[i]))
    for j in range(p):
        if inv_scale[j] == 0.0:
            grad[j] = 0.0
            continue
        s = 0.0
        for i in range(n):
            s += _z(X, rows[i], j, mean, inv_scale) * res[i]
        grad[j] = s / n


@njit(cache=True, nogil=True)
def _cd_sweep(X, rows, mean, inv_scale, v, sum_v, res, beta, b0, hess, pf, a, b, idx, n_idx):
    """One coordinate-descent sweep of the quadratic model over the intercept and ``idx``.
    Mutates ``res`` and ``beta``; returns the new intercept and ``max H d^2``."""
    n = rows.size
    dmax = 0.0
    s = 0.0
    for i in range(n):
        s += res[i]
    d = s / sum_v
    if d != 0.0:
        b0 += d
        for i in range(n):
            res[i] -= v[i] * d
        dmax = max(dmax, sum_v / n * d * d)
    for t in range(n_idx):
        j = idx[t]
        h = hess[j]
        if h <= 0.0:
            continue
        g = 0.0
        for i in range(n):
            g += _z(X, rows[i], j, mean, inv_scale) * res[i]
        old = beta[j]
        u = g / n + h * old
        thr = a * pf[j]
        if u > thr:
            new = (u - thr) / (h + b * pf[j])
        elif u < -thr:
            new = (u + thr) / (h + b * pf[j])
        else:
            new = 0.0
        if new != old:
            d = new - old
            beta[j] = new
            for i in range(n):
                res[i] -= v[i] * _z(X, rows[i], j, mean, inv_scale) * d
            dmax = max(dmax, h * d * d)
    return b0, dmax


@njit(cache=True, nogil=True)
def _solve_alpha(X, rows, y, w, mean, inv_scale, pf, a, b, beta, b0, eta, active, n_active,
                 tol, max_iter):
    """Proximal Newton on the working set ``active[:n_active]`` at one alpha (``a`` the l1,
    ``b`` the l2 weight). Mutates ``beta`` and ``eta``; returns (b0, sweeps)."""
    n = rows.size
    v = np.empty(n)
    res = np.empty(n)
    hess = np.zeros(beta.size)
    beta_old = beta.copy()
    eta_new = np.empty(n)
    nz = np.empty(n_active, dtype=np.int64)
    sweeps = 0
    obj = _loss(eta, y, w) + _penalty(beta, pf, active, n_active, a, b)
    while sweeps < max_iter:
        sum_v = 0.0
        for i in range(n):
            pr = min(max(_sigmoid(eta[i]), P_CLAMP), 1.0 - P_CLAMP)
            v[i] = w[i] * pr * (1.0 - pr)
            res[i] = w[i] * (y[i] - _sigmoid(eta[i]))
            sum_v += v[i]
        for t in range(n_active):
            j = active[t]
            s = 0.0
            for i in range(n):
                z = _z(X, rows[i], j, mean, inv_scale)
                s += v[i] * z * z
            hess[j] = s / n
            beta_old[j] = beta[j]
        b0_old = b0
        # Inner CD: a full sweep, then sweeps over the non-zero coefficients until they settle,
        # then a full sweep again, until a full sweep changes nothing (glmnet's active cycling).
        while sweeps < max_iter:
            b0, dmax = _cd_sweep(X, rows, mean, inv_scale, v, sum_v, res, beta, b0, hess, pf,
                                 a, b, active, n_active)
            sweeps += 1
            if dmax < tol:
                break
            m = 0
            for t in range(n_active):
                if beta[active[t]] != 0.0:
                    nz[m] = active[t]
                    m += 1
            while sweeps < max_iter:
                b0, dmax = _cd_sweep(X, rows, mean, inv_scale, v, sum_v, res, beta, b0, hess,
                                     pf, a, b, nz, m)
                sweeps += 1
                if dmax < tol:
                    break
        # The Newton step, halved while it does not lower the objective.
        step = 1.0
        for _ in range(MAX_HALVINGS):
            if step < 1.0:
                for t in range(n_active):
                    j = active[t]
                    beta[j] = beta_old[j] + 0.5 * (beta[j] - beta_old[j])
                b0 = b0_old + (b0 - b0_old) / 2.0
            _eta(X, rows, mean, inv_scale, b0, beta, active, n_active, eta_new)
            new_obj = _loss(eta_new, y, w) + _penalty(beta, pf, active, n_active, a, b)
            if new_obj <= obj + 1e-15 * abs(obj):
                break
            step *= 0.5
        obj = new_obj
        for i in range(n):
            eta[i] = eta_new[i]
        change = sum_v / n * (b0 - b0_old) ** 2
        for t in range(n_active):
            j = active[t]
            change = max(change, hess[j] * (beta[j] - beta_old[j]) ** 2)
        if change < tol:
            break
    return b0, sweeps


@njit(cache=True, nogil=True)
def logistic_path(X, rows, y, w, mean, inv_scale, alphas, l1_ratio, pf, tol, max_iter,
                  dev_stop):
    """The penalized logistic path over the descending ``alphas``, warm-started.

    Parameters
    ----------
    X : ndarray (n_total, n_features), float64, NaN where missing
    rows : int64 ndarray (n,) — the rows of ``X`` this fit uses
    y : ndarray (n,) — 0/1 targets of those rows; w : ndarray (n,) — their weights, sum n
    mean, inv_scale : ndarrays (n_features,) — the standardization; ``inv_scale_j = 0`` marks
        a feature that is constant on these rows (it stays 0)
    alphas : ndarray (n_alphas,), descending; l1_ratio : float in (0, 1]
    pf : ndarray (n_features,) — penalty factors (0: unpenalized)
    tol : float — the stopping threshold on ``max H_jj d_j^2`` (see the module docstring)
    max_iter : int — coordinate-descent sweeps allowed per alpha
    dev_stop : float — stop the path once the fraction of deviance explained exceeds it
        (0: never)

    Returns
    -------
    coefs : ndarray (n_features, n_alphas); intercepts : ndarray (n_alphas,)
    n_iter : int64 ndarray (n_alphas,) — sweeps used; dev_ratio : ndarray (n_alphas,)
    n_solved : int — alphas solved (the rest are left 0 after a saturation stop)

    Nothing passed in is mutated.
    """
    n = rows.size
    p = mean.size
    n_alphas = alphas.size
    coefs = np.zeros((p, n_alphas))
    intercepts = np.zeros(n_alphas)
    n_iter = np.zeros(n_alphas, dtype=np.int64)
    dev_ratio = np.zeros(n_alphas)
    ybar = 0.0
    for i in range(n):
        ybar += w[i] * y[i]
    ybar /= n
    ybar = min(max(ybar, P_CLAMP), 1.0 - P_CLAMP)
    b0 = np.log(ybar / (1.0 - ybar))
    beta = np.zeros(p)
    eta = np.full(n, b0)
    null_loss = _loss(eta, y, w)
    grad = np.zeros(p)
    gradient(X, rows, y, w, mean, inv_scale, eta, grad)
    in_set = np.zeros(p, dtype=np.bool_)
    for j in range(p):
        if pf[j] == 0.0 and inv_scale[j] != 0.0:
            in_set[j] = True
    active = np.empty(p, dtype=np.int64)
    alpha_prev = alphas[0]
    for k in range(n_alphas):
        alpha = alphas[k]
        a = alpha * l1_ratio
        b = alpha * (1.0 - l1_ratio)
        strong = l1_ratio * (2.0 * alpha - alpha_prev)
        for j in range(p):
            if inv_scale[j] != 0.0 and abs(grad[j]) >= strong * pf[j]:
                in_set[j] = True
        while True:
            m = 0
            for j in range(p):
                if in_set[j]:
                    active[m] = j
                    m += 1
            b0, sweeps = _solve_alpha(X, rows, y, w, mean, inv_scale, pf, a, b, beta, b0,
                                      eta, active, m, tol, max_iter - n_iter[k])
            n_iter[k] += sweeps
            gradient(X, rows, y, w, mean, inv_scale, eta, grad)
            added = False
            for j in range(p):
                # A relative slack: a gradient within rounding of its bound is at the bound.
                if not in_set[j] and inv_scale[j] != 0.0 and \
                        abs(grad[j]) > a * pf[j] * (1.0 + 1e-9):
                    in_set[j] = True
                    added = True
            if not added or n_iter[k] >= max_iter:
                break
        for j in range(p):
            coefs[j, k] = beta[j]
        intercepts[k] = b0
        loss = _loss(eta, y, w)
        dev_ratio[k] = 1.0 - loss / null_loss if null_loss > 0 else 0.0
        alpha_prev = alpha
        if dev_stop > 0.0 and dev_ratio[k] > dev_stop:
            return coefs, intercepts, n_iter, dev_ratio, k + 1
    return coefs, intercepts, n_iter, dev_ratio, n_alphas

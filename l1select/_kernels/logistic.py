"""Numba hot loops of the penalized logistic regression (``solve/logistic.py`` calls them;
``solve/newton.py`` calls :func:`gram_inner`, the same inner solve on a Gram).

The problem, on features standardized implicitly (``z_ij = (x_ij - mean_j) * inv_scale_j``,
0 where ``x_ij`` is missing) and weights ``w`` that sum to ``n`` (the fitting rows)::

    min over (b0, beta) of
        1/n sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i]
        + alpha * sum_j pf_j * (l1_ratio |beta_j| + (1 - l1_ratio) / 2 beta_j^2),
    eta_i = b0 + z_i . beta

Layout: every vector has one entry per row of the whole matrix, and a row outside the fit has
weight 0 (so it adds nothing). ``X0`` is the data with missing cells set to 0, and
``miss_idx[miss_ptr[j]:miss_ptr[j+1]]`` lists the rows where column j is missing; a column
product is then one contiguous pass over ``X0[:, j]`` plus a correction on the missing rows,
which the compiler vectorizes (no gather, no branch per cell).

Proximal Newton, as glmnet: each outer (IRLS) step replaces the log-likelihood by its quadratic
model at the current ``eta`` (weights ``v_i = w_i p_i (1 - p_i)``) and solves that penalized
weighted least-squares problem by cyclic coordinate descent on the data matrix, keeping the
weighted residual ``r_i = w_i (y_i - p_i) - v_i (eta_new_i - eta_i)``. A step that does not
lower the objective is halved (it happens only far from the optimum, e.g. separable data); the
change of the objective is summed row by row, so that rounding does not decide it.

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
# A zero coefficient whose gradient exceeds its bound by less than this (relative) stays at
# zero: reassociated sums differ in the last bits, and at alpha_max the gradient is the bound.
ENTRY_SLACK = 1e-12
# Step halvings before a Newton step is taken as it is (it then only slows convergence).
MAX_HALVINGS = 30


# Reductions may be reassociated (and multiply-adds fused), so that they run in SIMD lanes: a
# column product is several times faster, deterministic for a given input, and changes the
# results only in the last bits. No flag that assumes away NaN or infinities.
_FAST = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FAST)
def _zdot(X0, miss_ptr, miss_idx, j, m, inv, vec, vec_sum):
    """``sum_i vec_i z_ij`` (``vec_sum = sum_i vec_i``)."""
    s = 0.0
    col = X0[:, j]
    for i in range(col.size):
        s += vec[i] * col[i]
    miss = 0.0
    for t in range(miss_ptr[j], miss_ptr[j + 1]):
        miss += vec[miss_idx[t]]
    return inv * (s - m * (vec_sum - miss))


@njit(cache=True, nogil=True, fastmath=_FAST)
def _zaxpy(X0, miss_ptr, miss_idx, j, m, inv, c, scale, out):
    """``out_i += c * scale_i * z_ij`` (``scale`` None-like: pass ones). Mutates ``out``."""
    col = X0[:, j]
    cm = c * inv
    for i in range(col.size):
        out[i] += cm * scale[i] * (col[i] - m)
    for t in range(miss_ptr[j], miss_ptr[j + 1]):
        r = miss_idx[t]
        out[r] += cm * scale[r] * m  # z is 0 there, not -m * inv


@njit(cache=True, nogil=True, fastmath=_FAST)
def _zsq(X0, miss_ptr, miss_idx, j, m, inv, v):
    """``sum_i v_i z_ij^2``."""
    col = X0[:, j]
    s = 0.0
    for i in range(col.size):
        d = col[i] - m
        s += v[i] * d * d
    for t in range(miss_ptr[j], miss_ptr[j + 1]):
        s -= v[miss_idx[t]] * m * m
    return inv * inv * s


@njit(cache=True, nogil=True)
def _eta(X0, miss_ptr, miss_idx, mean, inv_scale, b0, beta, active, n_active, ones, eta):
    """Linear predictor of every row. Mutates ``eta``."""
    eta[:] = b0
    for t in range(n_active):
        j = active[t]
        if beta[j] != 0.0:
            _zaxpy(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], beta[j], ones, eta)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _loss(eta, y, w, n_fit):
    """``1/n sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i]``, computed without overflow."""
    s = 0.0
    for i in range(eta.size):
        e = eta[i]
        s += w[i] * (max(e, 0.0) + np.log1p(np.exp(-abs(e))) - y[i] * e)
    return s / n_fit


@njit(cache=True, nogil=True, fastmath=_FAST)
def _loss_change(eta, eta_new, y, w, n_fit):
    """``(loss at eta_new, loss at eta_new − loss at eta)``, the change summed row by row:
    accurate to the rounding of the change itself, where the difference of the two sums
    carries the rounding of the sums (about 1e-15 relative over 10⁴–10⁵ rows)."""
    s = 0.0
    d = 0.0
    for i in range(eta.size):
        e = eta[i]
        f = eta_new[i]
        new = max(f, 0.0) + np.log1p(np.exp(-abs(f))) - y[i] * f
        old = max(e, 0.0) + np.log1p(np.exp(-abs(e))) - y[i] * e
        s += w[i] * new
        d += w[i] * (new - old)
    return s / n_fit, d / n_fit


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


@njit(cache=True, nogil=True, fastmath=_FAST)
def gradient(X0, miss_ptr, miss_idx, y, w, n_fit, mean, inv_scale, eta, grad):
    """``grad_j = 1/n sum_i w_i z_ij (y_i - p_i)`` for every feature (minus the gradient of
    the loss). Mutates ``grad``."""
    res = np.empty(eta.size)
    total = 0.0
    for i in range(eta.size):
        res[i] = w[i] * (y[i] - _sigmoid(eta[i]))
        total += res[i]
    for j in range(grad.size):
        if inv_scale[j] == 0.0:
            grad[j] = 0.0
        else:
            grad[j] = _zdot(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], res,
                            total) / n_fit


@njit(cache=True, nogil=True, fastmath=_FAST)
def _cd_sweep(X0, miss_ptr, miss_idx, mean, inv_scale, n_fit, v, sum_v, res, beta, b0, hess,
              vz, pf, a, b, idx, n_idx):
    """One coordinate-descent sweep of the quadratic model over the intercept and ``idx``
    (``vz_j = sum_i v_i z_ij``). Mutates ``res`` and ``beta``; returns the new intercept and
    ``max H d^2``."""
    dmax = 0.0
    total = 0.0
    for i in range(res.size):
        total += res[i]
    d = total / sum_v
    if d != 0.0:
        b0 += d
        for i in range(res.size):
            res[i] -= v[i] * d
        total -= d * sum_v
        dmax = max(dmax, sum_v / n_fit * d * d)
    for t in range(n_idx):
        j = idx[t]
        h = hess[j]
        if h <= 0.0:
            continue
        g = _zdot(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], res, total)
        old = beta[j]
        u = g / n_fit + h * old
        thr = a * pf[j]
        if old == 0.0 and abs(u) <= thr * (1.0 + ENTRY_SLACK):
            continue  # at its bound within rounding: it stays out (exactly 0 at alpha_max)
        if u > thr:
            new = (u - thr) / (h + b * pf[j])
        elif u < -thr:
            new = (u + thr) / (h + b * pf[j])
        else:
            new = 0.0
        if new != old:
            d = new - old
            beta[j] = new
            _zaxpy(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], -d, v, res)
            total -= d * vz[j]
            dmax = max(dmax, h * d * d)
    return b0, dmax


@njit(cache=True, nogil=True)
def _solve_alpha(X0, miss_ptr, miss_idx, y, w, n_fit, mean, inv_scale, pf, a, b, beta, b0,
                 eta, active, n_active, tol, max_iter):
    """Proximal Newton on the working set ``active[:n_active]`` at one alpha (``a`` the l1,
    ``b`` the l2 weight). Mutates ``beta`` and ``eta``; returns (b0, sweeps)."""
    n = eta.size
    v = np.empty(n)
    res = np.empty(n)
    ones = np.ones(n)
    hess = np.zeros(beta.size)
    vz = np.zeros(beta.size)
    beta_old = beta.copy()
    eta_new = np.empty(n)
    nz = np.empty(n_active, dtype=np.int64)
    sweeps = 0
    obj = _loss(eta, y, w, n_fit) + _penalty(beta, pf, active, n_active, a, b)
    while sweeps < max_iter:
        sum_v = 0.0
        for i in range(n):
            pr = _sigmoid(eta[i])  # once per row: exp is the costly part
            pc = min(max(pr, P_CLAMP), 1.0 - P_CLAMP)
            v[i] = w[i] * pc * (1.0 - pc)
            res[i] = w[i] * (y[i] - pr)
            sum_v += v[i]
        for t in range(n_active):
            j = active[t]
            hess[j] = _zsq(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], v) / n_fit
            vz[j] = _zdot(X0, miss_ptr, miss_idx, j, mean[j], inv_scale[j], v, sum_v)
            beta_old[j] = beta[j]
        b0_old = b0
        # Inner CD: a full sweep, then sweeps over the non-zero coefficients until they settle,
        # then a full sweep again, until a full sweep changes nothing (glmnet's active cycling).
        while sweeps < max_iter:
            b0, dmax = _cd_sweep(X0, miss_ptr, miss_idx, mean, inv_scale, n_fit, v, sum_v, res,
                                 beta, b0, hess, vz, pf, a, b, active, n_active)
            sweeps += 1
            if dmax < tol:
                break
            m = 0
            for t in range(n_active):
                if beta[active[t]] != 0.0:
                    nz[m] = active[t]
                    m += 1
            while sweeps < max_iter:
                b0, dmax = _cd_sweep(X0, miss_ptr, miss_idx, mean, inv_scale, n_fit, v, sum_v,
                                     res, beta, b0, hess, vz, pf, a, b, nz, m)
                sweeps += 1
                if dmax < tol:
                    break
        # The Newton step, halved while it does not lower the objective.
        for _ in range(MAX_HALVINGS):
            _eta(X0, miss_ptr, miss_idx, mean, inv_scale, b0, beta, active, n_active, ones,
                 eta_new)
            loss, dloss = _loss_change(eta, eta_new, y, w, n_fit)
            pen = _penalty(beta, pf, active, n_active, a, b)
            new_obj = loss + pen
            # The change of the objective, not the difference of two rounded sums: near the
            # optimum the last step lowers it by less than their rounding, and comparing the
            # sums would halve such a step to nothing on noise.
            if dloss + pen - _penalty(beta_old, pf, active, n_active, a, b) <= \
                    1e-15 * abs(obj):
                break
            for t in range(n_active):
                j = active[t]
                beta[j] = beta_old[j] + 0.5 * (beta[j] - beta_old[j])
            b0 = b0_old + 0.5 * (b0 - b0_old)
        obj = new_obj
        eta[:] = eta_new
        change = sum_v / n_fit * (b0 - b0_old) ** 2
        for t in range(n_active):
            j = active[t]
            change = max(change, hess[j] * (beta[j] - beta_old[j]) ** 2)
        if change < tol:
            break
    return b0, sweeps


@njit(cache=True, nogil=True)
def logistic_path(X0, miss_ptr, miss_idx, y, w, mean, inv_scale, alphas, l1_ratio, pf, tol,
                  max_iter, dev_stop):
    """The penalized logistic path over the descending ``alphas``, warm-started.

    Parameters
    ----------
    X0 : ndarray (n_total, n_features), float64, Fortran order, 0 where missing
    miss_ptr : int64 ndarray (n_features + 1,); miss_idx : int64 ndarray — missing cells
    y : ndarray (n_total,) — 0/1 targets; w : ndarray (n_total,) — weights, 0 for the rows
        outside this fit, summing to the number of fitting rows ``n``
    mean, inv_scale : ndarrays (n_features,) — the standardization; ``inv_scale_j = 0`` marks
        a feature that is constant on these rows (it stays 0)
    alphas : ndarray (n_alphas,), descending; l1_ratio : float in [0, 1]
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
    n_total = y.size
    p = mean.size
    n_alphas = alphas.size
    coefs = np.zeros((p, n_alphas))
    intercepts = np.zeros(n_alphas)
    n_iter = np.zeros(n_alphas, dtype=np.int64)
    dev_ratio = np.zeros(n_alphas)
    n_fit = 0.0
    ybar = 0.0
    for i in range(n_total):
        n_fit += w[i]
        ybar += w[i] * y[i]
    ybar /= n_fit
    ybar = min(max(ybar, P_CLAMP), 1.0 - P_CLAMP)
    b0 = np.log(ybar / (1.0 - ybar))
    beta = np.zeros(p)
    eta = np.full(n_total, b0)
    null_loss = _loss(eta, y, w, n_fit)
    grad = np.zeros(p)
    gradient(X0, miss_ptr, miss_idx, y, w, n_fit, mean, inv_scale, eta, grad)
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
            b0, sweeps = _solve_alpha(X0, miss_ptr, miss_idx, y, w, n_fit, mean, inv_scale, pf,
                                      a, b, beta, b0, eta, active, m, tol, max_iter - n_iter[k])
            n_iter[k] += sweeps
            gradient(X0, miss_ptr, miss_idx, y, w, n_fit, mean, inv_scale, eta, grad)
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
        loss = _loss(eta, y, w, n_fit)
        dev_ratio[k] = 1.0 - loss / null_loss if null_loss > 0 else 0.0
        alpha_prev = alpha
        if dev_stop > 0.0 and dev_ratio[k] > dev_stop:
            return coefs, intercepts, n_iter, dev_ratio, k + 1
    return coefs, intercepts, n_iter, dev_ratio, n_alphas


# -- the same inner solve on the Gram of the working set (the Dask engine's client side) -------

@njit(cache=True, nogil=True)
def _gram_sweep(G, vz, sum_v, n_fit, gvec, total, beta, b0, hess, pf, a, b, idx, n_idx):
    """:func:`_cd_sweep` by covariance updates: ``gvec = Z_Sᵀ res`` and ``total = Σ res`` are
    updated instead of ``res`` (``G = Z_Sᵀ V Z_S``, ``vz = Z_Sᵀ v``; positions in the working
    set ``S``). Mutates ``gvec`` and ``beta``; returns (b0, total, max H d²)."""
    dmax = 0.0
    d = total / sum_v
    if d != 0.0:
        b0 += d
        for r in range(gvec.size):
            gvec[r] -= vz[r] * d
        total -= d * sum_v
        dmax = max(dmax, sum_v / n_fit * d * d)
    for s in range(n_idx):
        t = idx[s]
        h = hess[t]
        if h <= 0.0:
            continue
        old = beta[t]
        u = gvec[t] / n_fit + h * old
        thr = a * pf[t]
        if old == 0.0 and abs(u) <= thr * (1.0 + ENTRY_SLACK):
            continue
        if u > thr:
            new = (u - thr) / (h + b * pf[t])
        elif u < -thr:
            new = (u + thr) / (h + b * pf[t])
        else:
            new = 0.0
        if new != old:
            d = new - old
            beta[t] = new
            for r in range(gvec.size):
                gvec[r] -= G[r, t] * d
            total -= d * vz[t]
            dmax = max(dmax, h * d * d)
    return b0, total, dmax


@njit(cache=True, nogil=True)
def gram_inner(G, vz, sum_v, n_fit, gvec, total, beta, b0, pf, a, b, tol, max_sweeps):
    """The inner coordinate descent of one Newton step of :func:`_solve_alpha` (full sweeps,
    then sweeps over the non-zero coefficients until they settle, until a full sweep changes
    nothing), on the working set's weighted Gram instead of the data matrix: in exact
    arithmetic the same iterates.

    Parameters
    ----------
    G : ndarray (m, m) — ``Z_Sᵀ V Z_S`` at the step's point (``V`` the IRLS weights)
    vz : ndarray (m,) — ``Z_Sᵀ v``; sum_v : float — ``Σ v``; n_fit : float — ``Σ w``
    gvec : ndarray (m,) — ``Z_Sᵀ r`` with ``r_i = w_i (y_i − p_i)``; total : float — ``Σ r``
    beta : ndarray (m,) — the working set's coefficients; b0 : float — the intercept
    pf : ndarray (m,); a, b : the l1 and l2 weights of alpha; tol : the stopping threshold
    max_sweeps : int — sweeps allowed

    Mutates ``gvec`` and ``beta``; returns (b0, sweeps).
    """
    m = beta.size
    hess = np.empty(m)
    for t in range(m):
        hess[t] = G[t, t] / n_fit
    every = np.arange(m)
    nz = np.empty(m, dtype=np.int64)
    sweeps = 0
    while sweeps < max_sweeps:
        b0, total, dmax = _gram_sweep(G, vz, sum_v, n_fit, gvec, total, beta, b0, hess, pf,
                                      a, b, every, m)
        sweeps += 1
        if dmax < tol:
            break
        k = 0
        for t in range(m):
            if beta[t] != 0.0:
                nz[k] = t
                k += 1
        while sweeps < max_sweeps:
            b0, total, dmax = _gram_sweep(G, vz, sum_v, n_fit, gvec, total, beta, b0, hess,
                                          pf, a, b, nz, k)
            sweeps += 1
            if dmax < tol:
                break
    return b0, sweeps

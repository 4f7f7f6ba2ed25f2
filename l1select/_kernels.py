"""Numba hot loops: coordinate descent along an alpha path.

Both solvers minimize, in standardized coordinates and without intercept,

    1/(2 n) ||yc - Xs w||^2
        + alpha * sum_j pf_j * (l1_ratio * |w_j| + (1 - l1_ratio) / 2 * w_j^2)

where ``pf_j >= 0`` is the penalty factor of feature j (``pf_j = 0``: unpenalized).
With the Gram ``G = Xs^T Xs / n``, ``c = Xs^T yc / n`` and ``yty = yc^T yc / n`` this is
``1/2 w^T G w - c^T w + yty / 2 + penalty``.

``cd_gram_path`` works on (G, c, yty) and costs O(n_features) per coordinate update,
independently of ``n_samples``. ``cd_data_path`` works on the raw data matrix for wide
data (``n_features >> n_samples``), where the Gram would not fit: it standardizes and
mean-imputes implicitly and keeps the residual of length ``n_samples``.

Duality gap and stopping rule (both solvers): with ``a = alpha * l1_ratio``,
``b = alpha * (1 - l1_ratio)``, residual ``r = yc - Xs w`` and
``XtA_j = Xs_j^T r / n - b * pf_j * w_j``, the gap is scikit-learn's formulation A
(``enet_coordinate_descent_gram``) divided by ``n`` and generalized to penalty factors::

    primal = 1/2 (r^T r / n + b sum_j pf_j w_j^2) + a sum_j pf_j |w_j|
    nu     = max over pf_j > 0 of |XtA_j| / pf_j      (0 if no feature is penalized)
    s      = min(1, a / nu)                            (the dual point is s * r / n)
    dual   = -s^2 / 2 (r^T r / n + b sum_j pf_j w_j^2) + s r^T yc / n
    gap    = primal - dual

Unpenalized features take no part in ``nu``: the dual constraint for them
(``XtA_j = 0``) cannot be met by scaling, and coordinate descent leaves their partial
gradient at zero up to the current coordinate change. For ``alpha = 0`` (ordinary
least squares) the gap is ``sum_j XtA_j^2``, scikit-learn's first-order fallback. At
each alpha, iteration stops once ``gap <= tol * yty`` and no feature outside the working
set violates its KKT condition ``|Xs_j^T r / n| <= a * pf_j``, or after ``max_iter``
epochs (passes over the working set).
"""

import numpy as np
from numba import njit

# Epochs between two gap evaluations while coordinates still move by more than
# tol * max|w|: the gap costs about one epoch in cd_data_path, so checking every
# tenth epoch costs at most ~10% and stops at most 9 epochs late.
_GAP_EVERY = 10


# A threshold a * pf_j computed from alpha_max = |c_j| / (l1_ratio * pf_j) comes back
# up to ~2 eps (four roundings) below |c_j|; |z| that close to the threshold counts as
# on it, so the coefficients are exactly zero at alpha_max instead of ~1e-16. Treating
# such a coordinate as zero moves it by at most 8 eps * threshold / G_jj.
_THRESHOLD_RTOL = 8.0 * 2.220446049250313e-16


@njit(cache=True, fastmath=False)
def _soft_threshold(z, threshold):
    """Return ``sign(z) * max(|z| - threshold, 0)`` for a scalar ``z``.

    ``|z| <= threshold * (1 + _THRESHOLD_RTOL)`` gives exactly 0.
    """
    t = threshold * (1.0 + _THRESHOLD_RTOL)
    if z > t:
        return z - threshold
    if z < -t:
        return z + threshold
    return 0.0


@njit(cache=True, fastmath=False)
def _dual_gap(w, grad, penalty, idx, n_idx, alpha, l1_ratio, rr, ry):
    """Duality gap of the penalized least-squares objective (module docstring).

    Parameters
    ----------
    w : ndarray of shape (n_features,)
        Current coefficients; zero outside ``idx[:n_idx]``.
    grad : ndarray of shape (n_features,)
        ``Xs^T r / n`` at ``w``; only the entries in ``idx[:n_idx]`` are read.
    penalty : ndarray of shape (n_features,)
        Penalty factors ``pf_j >= 0``.
    idx : ndarray of shape (>= n_idx,), int64
        Features the gap is computed over; the gap of the full problem when this holds
        every feature, or every feature that is non-zero or might violate its KKT
        condition.
    n_idx : int
        Number of entries of ``idx`` in use.
    alpha, l1_ratio : float
        Penalty strength and mix.
    rr : float
        ``r^T r / n``.
    ry : float
        ``r^T yc / n``.

    Returns
    -------
    gap : float
        Primal minus dual objective; may be slightly negative from rounding.
    """
    a = alpha * l1_ratio
    b = alpha * (1.0 - l1_ratio)
    if a == 0.0:
        # No l1 term (alpha = 0 since l1_ratio > 0): least squares has no bounded dual
        # here, so fall back to the first-order condition, as scikit-learn does.
        gsq = 0.0
        for t in range(n_idx):
            j = idx[t]
            gsq += grad[j] * grad[j]
        return gsq
    l1_norm = 0.0
    l2_norm2 = 0.0
    dual_norm = 0.0
    for t in range(n_idx):
        j = idx[t]
        pj = penalty[j]
        wj = w[j]
        l1_norm += pj * abs(wj)
        l2_norm2 += pj * wj * wj
        if pj > 0.0:
            v = abs(grad[j] - b * pj * wj) / pj
            if v > dual_norm:
                dual_norm = v
    if dual_norm > a:
        scale = a / dual_norm
    else:
        scale = 1.0
    quad = rr + b * l2_norm2
    primal = 0.5 * quad + a * l1_norm
    dual = -0.5 * scale * scale * quad + scale * ry
    return primal - dual


@njit(cache=True, fastmath=False)
def _strong_working_set(grad, penalty, diag, ever_active, threshold, ws, in_ws):
    """Fill the working set for a new alpha by the sequential strong rule.

    Feature j enters when it has ever been non-zero on the path, is unpenalized, or
    ``|grad_j| >= threshold * pf_j`` (``threshold = l1_ratio * (2 alpha_k - alpha_{k-1})``,
    ``grad`` taken at the solution for ``alpha_{k-1}``). Features with ``diag_j = 0``
    (constant, zero-scale) never enter.

    Mutates ``ws`` (its first ``n_ws`` entries, in increasing feature order, which keeps
    column access monotone) and ``in_ws``. Returns ``n_ws``.
    """
    n_ws = 0
    for j in range(grad.shape[0]):
        keep = False
        if diag[j] > 0.0:
            if ever_active[j] or penalty[j] == 0.0:
                keep = True
            elif abs(grad[j]) >= threshold * penalty[j]:
                keep = True
        in_ws[j] = keep
        if keep:
            ws[n_ws] = j
            n_ws += 1
    return n_ws


@njit(cache=True, fastmath=False)
def _add_kkt_violators(grad, penalty, diag, a, ws, n_ws, in_ws):
    """Append to the working set every outside feature with ``|grad_j| > a * pf_j``.

    The comparison carries the soft threshold's ``_THRESHOLD_RTOL``. ``grad`` must be
    current for every feature outside the working set. Mutates ``ws`` and ``in_ws``.
    Returns the new ``n_ws``.
    """
    factor = a * (1.0 + _THRESHOLD_RTOL)
    for j in range(grad.shape[0]):
        if in_ws[j] or diag[j] == 0.0:
            continue
        if abs(grad[j]) > factor * penalty[j]:
            in_ws[j] = True
            ws[n_ws] = j
            n_ws += 1
    return n_ws


# Unpenalized features (pf_j = 0) have no l1 term, so the dual point built from the
# residual is feasible for them only if Xs_j^T r = 0. Before each gap evaluation their
# coefficients are therefore refitted jointly by least squares (an exact block
# minimization, which only lowers the objective); afterwards their gradient is zero up
# to rounding and the gap over the penalized features is a valid bound. Without this a
# point with every coefficient zero can show a gap of exactly 0.
# A pivot of the Cholesky factor below this fraction of the largest diagonal marks an
# unpenalized column as (numerically) a combination of the earlier ones; it is left out,
# which projects onto the same span.
_DEPENDENT_PIVOT = 1e-12


@njit(cache=True, fastmath=False)
def _cholesky_psd(A, L):
    """Lower Cholesky factor of the PSD matrix ``A``, skipping dependent columns.

    Mutates ``L`` (same shape as ``A``): ``L[j, j] = 0`` and column ``j`` zero for a
    column whose pivot is below ``_DEPENDENT_PIVOT`` times the largest diagonal entry.
    """
    m = A.shape[0]
    max_diag = 0.0
    for j in range(m):
        if A[j, j] > max_diag:
            max_diag = A[j, j]
    for j in range(m):
        for i in range(m):
            L[i, j] = 0.0
    for j in range(m):
        s = A[j, j]
        for q in range(j):
            s -= L[j, q] * L[j, q]
        if s <= _DEPENDENT_PIVOT * max_diag:
            continue
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, m):
            s = A[i, j]
            for q in range(j):
                s -= L[i, q] * L[j, q]
            L[i, j] = s / L[j, j]


@njit(cache=True, fastmath=False)
def _cholesky_solve(L, rhs, x):
    """Solve ``L L^T x = rhs`` with the factor of :func:`_cholesky_psd`.

    Skipped (dependent) columns get ``x_j = 0``. Mutates ``x``.
    """
    m = L.shape[0]
    for i in range(m):
        if L[i, i] == 0.0:
            x[i] = 0.0
            continue
        s = rhs[i]
        for q in range(i):
            s -= L[i, q] * x[q]
        x[i] = s / L[i, i]
    for i in range(m - 1, -1, -1):
        if L[i, i] == 0.0:
            x[i] = 0.0
            continue
        s = x[i]
        for q in range(i + 1, m):
            s -= L[q, i] * x[q]
        x[i] = s / L[i, i]


@njit(cache=True, fastmath=False)
def _unpenalized_features(penalty, diag):
    """Indices of the features with ``pf_j = 0`` and a non-zero column, int64."""
    n_unpen = 0
    for j in range(penalty.shape[0]):
        if penalty[j] == 0.0 and diag[j] > 0.0:
            n_unpen += 1
    unpen = np.empty(n_unpen, dtype=np.int64)
    t = 0
    for j in range(penalty.shape[0]):
        if penalty[j] == 0.0 and diag[j] > 0.0:
            unpen[t] = j
            t += 1
    return unpen


# ---------------------------------------------------------------------------------------
# Gram (covariance) solver


@njit(cache=True, fastmath=False)
def _gram_epoch(gram, xty, penalty, coef, gw, ws, n_ws, a, b):
    """One cyclic pass of coordinate descent over ``ws[:n_ws]``.

    Mutates ``coef`` and ``gw`` (kept equal to ``gram @ coef``: one row of the Gram per
    changed coordinate, read along its contiguous C-order row).

    Returns
    -------
    d_w_max : float
        Largest absolute coordinate change in the pass.
    w_max : float
        Largest absolute coefficient in the working set after the pass.
    """
    n_features = gram.shape[0]
    d_w_max = 0.0
    w_max = 0.0
    for t in range(n_ws):
        j = ws[t]
        g_jj = gram[j, j]
        w_j = coef[j]
        # Partial residual correlation with coordinate j taken out of the fit.
        z = xty[j] - gw[j] + g_jj * w_j
        w_new = _soft_threshold(z, a * penalty[j]) / (g_jj + b * penalty[j])
        if w_new != w_j:
            coef[j] = w_new
            delta = w_new - w_j
            # G is symmetric, so column j is row j, which is contiguous.
            for i in range(n_features):
                gw[i] += delta * gram[j, i]
            if abs(delta) > d_w_max:
                d_w_max = abs(delta)
        if abs(w_new) > w_max:
            w_max = abs(w_new)
    return d_w_max, w_max


@njit(cache=True, fastmath=False)
def _gram_state(gram, xty, yty, coef, gw, grad):
    """Refresh ``grad = xty - gw`` and return ``(r^T r / n, r^T yc / n)``.

    Mutates ``grad``. O(n_features), from ``gw = gram @ coef``.
    """
    cw = 0.0
    wgw = 0.0
    for j in range(xty.shape[0]):
        grad[j] = xty[j] - gw[j]
        cw += xty[j] * coef[j]
        wgw += coef[j] * gw[j]
    # ||yc - Xs w||^2 / n expanded in the Gram, as scikit-learn does; it loses digits
    # to cancellation only once the fit is nearly exact.
    return yty - 2.0 * cw + wgw, yty - cw


@njit(cache=True, fastmath=False)
def _gram_product(gram, coef, gw):
    """Set ``gw = gram @ coef`` from the rows of the non-zero coefficients.

    Mutates ``gw``. Done afresh at every alpha, as scikit-learn does per call, so that
    the rounding of the incremental updates does not accumulate along the path.
    """
    n_features = gram.shape[0]
    for i in range(n_features):
        gw[i] = 0.0
    for j in range(n_features):
        w_j = coef[j]
        if w_j != 0.0:
            for i in range(n_features):
                gw[i] += w_j * gram[j, i]


@njit(cache=True, fastmath=False)
def _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u, delta):
    """Refit the unpenalized coefficients by least squares, the others fixed.

    ``chol`` is the factor of ``gram[unpen][:, unpen]``. Mutates ``coef``, ``gw`` and the
    scratch arrays ``g_u`` and ``delta``.
    """
    n_features = gram.shape[0]
    n_unpen = unpen.shape[0]
    for t in range(n_unpen):
        g_u[t] = xty[unpen[t]] - gw[unpen[t]]
    _cholesky_solve(chol, g_u, delta)
    for t in range(n_unpen):
        d = delta[t]
        if d != 0.0:
            u = unpen[t]
            coef[u] += d
            for i in range(n_features):
                gw[i] += d * gram[u, i]


@njit(cache=True, fastmath=False)
def cd_gram_path(gram, xty, yty, alphas, l1_ratio, penalty, coef, tol, max_iter):
    """Elastic-net path by coordinate descent with covariance updates.

    Minimizes, for each ``alpha`` in ``alphas``,
    ``1/2 w^T G w - c^T w + yty/2 + alpha * sum_j pf_j (l1_ratio |w_j| + (1 - l1_ratio)/2 w_j^2)``,
    warm-started from the previous alpha. Each alpha solves on a working set (sequential
    strong rule, plus every feature ever non-zero, plus unpenalized features), then checks
    the KKT conditions of all features and re-solves with the violators until there are
    none. See the module docstring for the duality gap and the stopping rule.

    Parameters
    ----------
    gram : ndarray of shape (n_features, n_features), C-contiguous float64
        ``G = Xs^T Xs / n``, symmetric positive semi-definite.
    xty : ndarray of shape (n_features,)
        ``c = Xs^T yc / n``.
    yty : float
        ``yc^T yc / n``; also the scale of the tolerance.
    alphas : ndarray of shape (n_alphas,)
        Penalty strengths, descending, ``>= 0``.
    l1_ratio : float
        In (0, 1]; 1 is the lasso.
    penalty : ndarray of shape (n_features,)
        Penalty factors ``pf_j >= 0``.
    coef : ndarray of shape (n_features,)
        Warm start. Mutated in place: holds the solution at ``alphas[-1]`` on return.
        Entries of features with ``G_jj = 0`` are set to zero.
    tol : float
        Stop at an alpha once the duality gap is ``<= tol * yty``.
    max_iter : int
        Maximum number of epochs per alpha.

    Returns
    -------
    coefs : ndarray of shape (n_features, n_alphas)
    dual_gaps : ndarray of shape (n_alphas,)
        Duality gap of the returned coefficients at each alpha.
    n_iters : ndarray of shape (n_alphas,), int64
        Epochs used at each alpha; ``max_iter`` means the gap did not reach the tolerance.
    """
    n_features = gram.shape[0]
    n_alphas = alphas.shape[0]
    coefs = np.zeros((n_features, n_alphas))
    dual_gaps = np.zeros(n_alphas)
    n_iters = np.zeros(n_alphas, dtype=np.int64)

    diag = np.empty(n_features)
    for j in range(n_features):
        diag[j] = gram[j, j]
        if diag[j] <= 0.0:
            # A zero diagonal means a zero row in a PSD Gram: the feature cannot change
            # the fit, only the penalty, so its optimum is zero.
            coef[j] = 0.0
    gw = np.zeros(n_features)
    grad = np.empty(n_features)
    ever_active = coef != 0.0
    ws = np.empty(n_features, dtype=np.int64)
    in_ws = np.zeros(n_features, dtype=np.bool_)
    all_idx = np.arange(n_features)
    gap_tol = tol * yty

    unpen = _unpenalized_features(penalty, diag)
    n_unpen = unpen.shape[0]
    chol = np.zeros((n_unpen, n_unpen))
    if n_unpen > 0:
        g_uu = np.empty((n_unpen, n_unpen))
        for s in range(n_unpen):
            for t in range(n_unpen):
                g_uu[s, t] = gram[unpen[s], unpen[t]]
        _cholesky_psd(g_uu, chol)
    g_u = np.zeros(n_unpen)
    delta_u = np.zeros(n_unpen)

    alpha_prev = alphas[0] if n_alphas > 0 else 0.0
    for k in range(n_alphas):
        alpha = alphas[k]
        a = alpha * l1_ratio
        b = alpha * (1.0 - l1_ratio)
        _gram_product(gram, coef, gw)
        rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
        n_ws = _strong_working_set(
            grad, penalty, diag, ever_active,
            l1_ratio * (2.0 * alpha - alpha_prev), ws, in_ws,
        )
        n_iter = 0
        check = True
        while True:
            if check:
                if n_unpen > 0:
                    _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u,
                                            delta_u)
                rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                if gap <= gap_tol:
                    # Confirm on a fresh G w: thousands of incremental updates leave it
                    # ~1e-14 relative off, as large as the gap at a tight tol.
                    _gram_product(gram, coef, gw)
                    rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                    gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr,
                                    ry)
                if gap <= gap_tol:
                    n_before = n_ws
                    n_ws = _add_kkt_violators(grad, penalty, diag, a, ws, n_ws, in_ws)
                    if n_ws == n_before:
                        break
            if n_iter >= max_iter:
                if n_unpen > 0:
                    _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u,
                                            delta_u)
                _gram_product(gram, coef, gw)
                rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                break
            d_w_max, w_max = _gram_epoch(gram, xty, penalty, coef, gw, ws, n_ws, a, b)
            n_iter += 1
            check = (
                w_max == 0.0 or d_w_max <= tol * w_max or n_iter % _GAP_EVERY == 0
            )
        dual_gaps[k] = _dual_gap(
            coef, grad, penalty, all_idx, n_features, alpha, l1_ratio, rr, ry
        )
        n_iters[k] = n_iter
        for j in range(n_features):
            coefs[j, k] = coef[j]
            if coef[j] != 0.0:
                ever_active[j] = True
        alpha_prev = alpha
    return coefs, dual_gaps, n_iters


# ---------------------------------------------------------------------------------------
# Data-matrix solver (wide data)

# Screening a feature outside the working set first tries the bound
# |Xs_j^T r / n| <= |Xs_j^T r_ref / n| + sqrt(diag_j) * ||r - r_ref|| / sqrt(n)
# (Cauchy-Schwarz) against the gradients of the last full pass over the data, and
# computes the exact gradient only for features the bound cannot clear. When more than
# this fraction of all features would need it, one full pass is cheaper overall: it also
# resets r_ref, which makes the bounds tight again for the alphas that follow.
_REFRESH_FRACTION = 0.05

# Anderson extrapolation of the sweeps over the non-zero coefficients (Bertrand & Massias,
# "Anderson acceleration of coordinate descent", AISTATS 2021, as in skglm): every
# _ANDERSON_K + 1 sweeps, the affine combination of the last iterates that best cancels
# their differences is tried and kept if it lowers the objective. In the nearly
# interpolating tail of a wide path (hundreds of correlated non-zeros) plain coordinate
# descent needs thousands of sweeps; this cuts them several-fold.
_ANDERSON_K = 5


@njit(cache=True, fastmath=False)
def _col_dot(X, rows, j, mean_j, inv_scale_j, has_nan_j, r):
    """Return ``Xs[:, j]^T r`` over the training rows, standardizing on the fly.

    A NaN entry is the training mean, i.e. standardized 0, and is skipped. ``(x - mean)``
    is formed per entry rather than as ``x^T r - mean * sum(r)`` so that a large mean
    (timestamps, years) does not cancel away the digits.
    """
    n_samples = rows.shape[0]
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    acc3 = 0.0
    if has_nan_j:
        for i in range(n_samples):
            x = X[rows[i], j]
            if x == x:
                acc0 += (x - mean_j) * r[i]
    else:
        # Four independent running sums: without fastmath the compiler keeps the order of
        # additions, so a single sum would wait on each addition's latency. The order is
        # fixed, so results are reproducible, with or without the JIT.
        n4 = n_samples - n_samples % 4
        for i in range(0, n4, 4):
            acc0 += (X[rows[i], j] - mean_j) * r[i]
            acc1 += (X[rows[i + 1], j] - mean_j) * r[i + 1]
            acc2 += (X[rows[i + 2], j] - mean_j) * r[i + 2]
            acc3 += (X[rows[i + 3], j] - mean_j) * r[i + 3]
        for i in range(n4, n_samples):
            acc0 += (X[rows[i], j] - mean_j) * r[i]
    return ((acc0 + acc1) + (acc2 + acc3)) * inv_scale_j


@njit(cache=True, fastmath=False)
def _col_axpy(X, rows, j, mean_j, inv_scale_j, has_nan_j, delta, r):
    """``r -= delta * Xs[:, j]`` over the training rows. Mutates ``r``."""
    step = delta * inv_scale_j
    if has_nan_j:
        for i in range(rows.shape[0]):
            x = X[rows[i], j]
            if x == x:
                r[i] -= step * (x - mean_j)
    else:
        for i in range(rows.shape[0]):
            r[i] -= step * (X[rows[i], j] - mean_j)


@njit(cache=True, fastmath=False)
def _col_col_dot(X, rows, j, k, x_mean, inv_scale):
    """Return ``Xs[:, j]^T Xs[:, k] / n`` over the training rows (NaN counts as 0)."""
    acc = 0.0
    m_j = x_mean[j]
    m_k = x_mean[k]
    for i in range(rows.shape[0]):
        x_j = X[rows[i], j]
        x_k = X[rows[i], k]
        if x_j == x_j and x_k == x_k:
            acc += (x_j - m_j) * (x_k - m_k)
    return acc * inv_scale[j] * inv_scale[k] / rows.shape[0]


@njit(cache=True, fastmath=False)
def _data_residual(X, rows, x_mean, inv_scale, has_nan, yc, coef, r):
    """Set ``r = yc - Xs @ coef`` from the non-zero coefficients.

    Mutates ``r``. Done afresh at every alpha so that the rounding of the incremental
    updates does not accumulate along the path.
    """
    for i in range(r.shape[0]):
        r[i] = yc[i]
    for j in range(coef.shape[0]):
        if coef[j] != 0.0:
            _col_axpy(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], coef[j], r)


@njit(cache=True, fastmath=False)
def _data_refit_unpenalized(X, rows, x_mean, inv_scale, has_nan, coef, r, unpen, chol,
                            g_u, delta):
    """Refit the unpenalized coefficients by least squares, the others fixed.

    ``chol`` is the factor of their Gram. Mutates ``coef``, ``r`` and the scratch arrays
    ``g_u`` and ``delta``. Returns True if a coefficient changed.
    """
    n_samples = rows.shape[0]
    n_unpen = unpen.shape[0]
    for t in range(n_unpen):
        u = unpen[t]
        g_u[t] = _col_dot(X, rows, u, x_mean[u], inv_scale[u], has_nan[u], r) / n_samples
    _cholesky_solve(chol, g_u, delta)
    changed = False
    for t in range(n_unpen):
        d = delta[t]
        if d != 0.0:
            u = unpen[t]
            coef[u] += d
            _col_axpy(X, rows, u, x_mean[u], inv_scale[u], has_nan[u], d, r)
            changed = True
    return changed


@njit(cache=True, fastmath=False)
def _data_setup(X, rows, x_mean, inv_scale, has_nan, diag):
    """Fill ``has_nan`` and ``diag`` (``||Xs[:, j]||^2 / n``) in one pass over the rows.

    Mutates ``has_nan`` and ``diag``.
    """
    n_samples = rows.shape[0]
    for j in range(X.shape[1]):
        m = x_mean[j]
        s = inv_scale[j]
        acc = 0.0
        nan_seen = False
        for i in range(n_samples):
            x = X[rows[i], j]
            if x == x:
                d = (x - m) * s
                acc += d * d
            else:
                nan_seen = True
        has_nan[j] = nan_seen
        diag[j] = acc / n_samples


@njit(cache=True, fastmath=False)
def _data_epoch(X, rows, x_mean, inv_scale, has_nan, diag, penalty, coef, r, idx, n_idx,
                a, b):
    """One cyclic pass of coordinate descent over ``idx[:n_idx]`` on the data matrix.

    Mutates ``coef`` and ``r`` (kept equal to ``yc - Xs @ coef``).

    Returns
    -------
    d_w_max : float
        Largest absolute coordinate change in the pass.
    w_max : float
        Largest absolute coefficient among ``idx[:n_idx]`` after the pass.
    """
    n_samples = rows.shape[0]
    d_w_max = 0.0
    w_max = 0.0
    for t in range(n_idx):
        j = idx[t]
        w_j = coef[j]
        d_jj = diag[j]
        z = _col_dot(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r) / n_samples
        z += d_jj * w_j
        w_new = _soft_threshold(z, a * penalty[j]) / (d_jj + b * penalty[j])
        if w_new != w_j:
            coef[j] = w_new
            delta = w_new - w_j
            _col_axpy(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], delta, r)
            if abs(delta) > d_w_max:
                d_w_max = abs(delta)
        if abs(w_new) > w_max:
            w_max = abs(w_new)
    return d_w_max, w_max


@njit(cache=True, fastmath=False)
def _screen_outside(X, rows, x_mean, inv_scale, has_nan, diag, penalty, r, r_ref, grad,
                    grad_ref, stamp, version, in_ws, level, strict, found):
    """Find the features outside the working set with ``|grad_j| >= level * pf_j``.

    With ``strict`` the test is the KKT violation ``|grad_j| > level * pf_j`` (up to
    ``_THRESHOLD_RTOL``), otherwise the strong rule's ``>=``. ``grad_j = Xs_j^T r / n``
    at the current residual. Exact gradients are computed only where the bound on
    ``|grad_j|`` from ``(r_ref, grad_ref)`` does not settle the test, or for all
    features in one pass when too many need it (``_REFRESH_FRACTION``).

    Mutates ``grad`` and ``stamp`` (``stamp[j] == version`` marks ``grad[j]`` as exact at
    the current residual), ``r_ref`` and ``grad_ref`` when it does the full pass, and
    ``found`` (its first ``n_found`` entries). Features with ``diag_j = 0`` are skipped.

    Returns
    -------
    n_found : int
    """
    n_samples = rows.shape[0]
    n_features = X.shape[1]
    drift = 0.0
    for i in range(n_samples):
        d = r[i] - r_ref[i]
        drift += d * d
    drift = np.sqrt(drift / n_samples)
    if strict:
        factor = level * (1.0 + _THRESHOLD_RTOL)
    else:
        factor = level

    n_cand = 0
    for j in range(n_features):
        if in_ws[j] or diag[j] == 0.0 or stamp[j] == version:
            continue
        if abs(grad_ref[j]) + np.sqrt(diag[j]) * drift >= factor * penalty[j]:
            n_cand += 1
    if n_cand > _REFRESH_FRACTION * n_features:
        for j in range(n_features):
            if diag[j] == 0.0:
                grad[j] = 0.0
            else:
                grad[j] = _col_dot(
                    X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r
                ) / n_samples
            grad_ref[j] = grad[j]
            stamp[j] = version
        for i in range(n_samples):
            r_ref[i] = r[i]
    elif n_cand > 0:
        for j in range(n_features):
            if in_ws[j] or diag[j] == 0.0 or stamp[j] == version:
                continue
            if abs(grad_ref[j]) + np.sqrt(diag[j]) * drift >= factor * penalty[j]:
                grad[j] = _col_dot(
                    X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r
                ) / n_samples
                stamp[j] = version

    n_found = 0
    for j in range(n_features):
        # A feature without a current exact gradient was cleared by its bound.
        if in_ws[j] or diag[j] == 0.0 or stamp[j] != version:
            continue
        g = abs(grad[j])
        t = factor * penalty[j]
        if g > t or (not strict and g == t):
            found[n_found] = j
            n_found += 1
    return n_found


@njit(cache=True, fastmath=False)
def _solve_small(A, rhs):
    """Solve the small system ``A x = rhs`` by Gaussian elimination with pivoting.

    Mutates ``A`` and ``rhs`` (``rhs`` holds ``x`` on return). Returns False, leaving
    them meaningless, when a pivot is not clearly non-zero relative to ``A``'s largest
    entry (a (nearly) singular system: the caller skips the extrapolation).
    """
    m = A.shape[0]
    scale = 0.0
    for i in range(m):
        for jj in range(m):
            if abs(A[i, jj]) > scale:
                scale = abs(A[i, jj])
    if scale == 0.0:
        return False
    for col in range(m):
        piv = col
        for i in range(col + 1, m):
            if abs(A[i, col]) > abs(A[piv, col]):
                piv = i
        if abs(A[piv, col]) <= 1e-14 * scale:
            return False
        if piv != col:
            for jj in range(m):
                tmp = A[col, jj]
                A[col, jj] = A[piv, jj]
                A[piv, jj] = tmp
            tmp = rhs[col]
            rhs[col] = rhs[piv]
            rhs[piv] = tmp
        for i in range(col + 1, m):
            f = A[i, col] / A[col, col]
            for jj in range(col, m):
                A[i, jj] -= f * A[col, jj]
            rhs[i] -= f * rhs[col]
    for i in range(m - 1, -1, -1):
        acc = rhs[i]
        for jj in range(i + 1, m):
            acc -= A[i, jj] * rhs[jj]
        rhs[i] = acc / A[i, i]
    return True


@njit(cache=True, fastmath=False)
def _anderson_step(hist_w, hist_r, coef, r, penalty, act, n_act, a, b, trial_w, trial_r):
    """Try the Anderson extrapolation of the iterates stored in ``hist_w`` / ``hist_r``.

    Row ``s`` of ``hist_w`` holds ``coef[act[:n_act]]`` after sweep ``s`` and row ``s``
    of ``hist_r`` the matching residual; the last row is the current iterate. The
    residual of the combination is the same combination of the residuals, since it is
    affine in ``coef``.

    Mutates ``coef`` and ``r`` when the extrapolated point has a lower objective (and
    returns True), and the scratch arrays ``trial_w`` and ``trial_r`` either way.
    """
    n_hist = hist_w.shape[0]
    k = n_hist - 1
    n_samples = r.shape[0]
    # Gram of the successive differences U_s = x_{s+1} - x_s.
    uu = np.zeros((k, k))
    for s1 in range(k):
        for s2 in range(s1, k):
            acc = 0.0
            for t in range(n_act):
                acc += (hist_w[s1 + 1, t] - hist_w[s1, t]) * (hist_w[s2 + 1, t] - hist_w[s2, t])
            uu[s1, s2] = acc
            uu[s2, s1] = acc
    z = np.ones(k)
    if not _solve_small(uu, z):
        return False
    z_sum = 0.0
    for s in range(k):
        z_sum += z[s]
    if z_sum == 0.0 or not np.isfinite(z_sum):
        return False
    for t in range(n_act):
        acc = 0.0
        for s in range(k):
            acc += z[s] * hist_w[s + 1, t]
        trial_w[t] = acc / z_sum
    for i in range(n_samples):
        acc = 0.0
        for s in range(k):
            acc += z[s] * hist_r[s + 1, i]
        trial_r[i] = acc / z_sum
    # Objective of the current and the trial point, over the non-zero coordinates only:
    # the others are zero in both.
    cur_pen = 0.0
    trial_pen = 0.0
    for t in range(n_act):
        j = act[t]
        cur_pen += penalty[j] * (a * abs(coef[j]) + 0.5 * b * coef[j] * coef[j])
        trial_pen += penalty[j] * (a * abs(trial_w[t]) + 0.5 * b * trial_w[t] * trial_w[t])
    cur_rr = 0.0
    trial_rr = 0.0
    for i in range(n_samples):
        cur_rr += r[i] * r[i]
        trial_rr += trial_r[i] * trial_r[i]
    if 0.5 * trial_rr / n_samples + trial_pen >= 0.5 * cur_rr / n_samples + cur_pen:
        return False
    for t in range(n_act):
        coef[act[t]] = trial_w[t]
    for i in range(n_samples):
        r[i] = trial_r[i]
    return True


@njit(cache=True, fastmath=False)
def _ws_grads(X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version, ws, n_ws):
    """Make ``grad`` exact at the current residual on ``ws[:n_ws]``.

    Mutates ``grad`` and ``stamp``; entries already current are not recomputed.
    """
    n_samples = rows.shape[0]
    for t in range(n_ws):
        j = ws[t]
        if stamp[j] != version:
            grad[j] = _col_dot(
                X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r
            ) / n_samples
            stamp[j] = version


@njit(cache=True, fastmath=False)
def _rr_ry(r, yc):
    """Return ``(r^T r / n, r^T yc / n)``."""
    rr = 0.0
    ry = 0.0
    for i in range(r.shape[0]):
        rr += r[i] * r[i]
        ry += r[i] * yc[i]
    return rr / r.shape[0], ry / r.shape[0]


@njit(cache=True, fastmath=False)
def cd_data_path(X, y, rows, x_mean, x_scale, y_mean, alphas, l1_ratio, penalty, coef,
                 tol, max_iter):
    """Elastic-net path by coordinate descent on the raw data matrix (wide data).

    Same objective, outputs, warm start and stopping rule as :func:`cd_gram_path`, with
    ``Xs[i, j] = (X[rows[i], j] - x_mean[j]) / x_scale[j]`` (0 where ``X`` is NaN, that
    is, mean imputation), ``yc = y[rows] - y_mean`` and ``n = len(rows)``. The
    standardized matrix is never formed; the residual ``r = yc - Xs w`` (length ``n``)
    is kept up to date.

    Each alpha solves on a working set (sequential strong rule, plus features ever
    non-zero, plus unpenalized features), cycling over its non-zero coefficients and
    sweeping the whole working set only when those have settled (glmnet's active-set
    cycling). Once the gap on the working set is within tolerance, the features outside
    it are checked for KKT violations (bounded first, computed exactly only where the
    bound is not enough) and the violators are added, until there are none.

    Parameters
    ----------
    X : ndarray of shape (n_total, n_features), Fortran-ordered float64
        Raw feature values; may contain NaN.
    y : ndarray of shape (n_total,)
        Raw target.
    rows : ndarray of shape (n_samples,), int64
        Training rows of ``X`` and ``y``.
    x_mean, x_scale : ndarray of shape (n_features,)
        Training mean and scale of each column. A feature with ``x_scale = 0`` is treated
        as the constant 0 and never enters the model.
    y_mean : float
        Training mean of the target.
    alphas : ndarray of shape (n_alphas,)
        Penalty strengths, descending, ``>= 0``.
    l1_ratio : float
        In (0, 1]; 1 is the lasso.
    penalty : ndarray of shape (n_features,)
        Penalty factors ``pf_j >= 0``.
    coef : ndarray of shape (n_features,)
        Warm start. Mutated in place: holds the solution at ``alphas[-1]`` on return.
        Entries of features whose standardized column is all zero are set to zero.
    tol : float
        Stop at an alpha once the duality gap is ``<= tol * yty``, ``yty = yc^T yc / n``.
    max_iter : int
        Maximum number of epochs per alpha (a pass over the working set or over its
        non-zero part counts as one).

    Returns
    -------
    coefs : ndarray of shape (n_features, n_alphas)
    dual_gaps : ndarray of shape (n_alphas,)
        Duality gap of the returned coefficients at each alpha.
    n_iters : ndarray of shape (n_alphas,), int64
        Epochs used at each alpha; ``max_iter`` means the gap did not reach the tolerance.
    """
    n_samples = rows.shape[0]
    n_features = X.shape[1]
    n_alphas = alphas.shape[0]
    coefs = np.zeros((n_features, n_alphas))
    dual_gaps = np.zeros(n_alphas)
    n_iters = np.zeros(n_alphas, dtype=np.int64)

    inv_scale = np.zeros(n_features)
    for j in range(n_features):
        # A zero scale leaves inv_scale at 0, so the column reads as all zeros.
        if x_scale[j] > 0.0:
            inv_scale[j] = 1.0 / x_scale[j]
    has_nan = np.zeros(n_features, dtype=np.bool_)
    diag = np.zeros(n_features)
    _data_setup(X, rows, x_mean, inv_scale, has_nan, diag)

    yc = np.empty(n_samples)
    for i in range(n_samples):
        yc[i] = y[rows[i]] - y_mean
    r = yc.copy()
    for j in range(n_features):
        if diag[j] == 0.0:
            coef[j] = 0.0
        elif coef[j] != 0.0:
            _col_axpy(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], coef[j], r)
    yty = _rr_ry(yc, yc)[0]
    gap_tol = tol * yty

    # grad[j] is exact at the current residual where stamp[j] == version; version moves
    # on whenever r changes. r_ref / grad_ref: residual and gradients of the last full
    # pass over the data, the anchor of the screening bound.
    grad = np.zeros(n_features)
    for j in range(n_features):
        if diag[j] > 0.0:
            grad[j] = _col_dot(
                X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r
            ) / n_samples
    grad_ref = grad.copy()
    r_ref = r.copy()
    version = 0
    stamp = np.zeros(n_features, dtype=np.int64)
    ever_active = coef != 0.0
    in_ws = np.zeros(n_features, dtype=np.bool_)
    ws = np.empty(n_features, dtype=np.int64)
    act = np.empty(n_features, dtype=np.int64)
    found = np.empty(n_features, dtype=np.int64)
    unpen = _unpenalized_features(penalty, diag)
    n_unpen = unpen.shape[0]
    chol = np.zeros((n_unpen, n_unpen))
    if n_unpen > 0:
        g_uu = np.empty((n_unpen, n_unpen))
        for s in range(n_unpen):
            for t in range(s, n_unpen):
                g_uu[s, t] = _col_col_dot(X, rows, unpen[s], unpen[t], x_mean, inv_scale)
                g_uu[t, s] = g_uu[s, t]
        _cholesky_psd(g_uu, chol)
    g_u = np.zeros(n_unpen)
    delta_u = np.zeros(n_unpen)
    hist_w = np.zeros((_ANDERSON_K + 1, n_features))
    hist_r = np.zeros((_ANDERSON_K + 1, n_samples))
    trial_w = np.zeros(n_features)
    trial_r = np.zeros(n_samples)

    alpha_prev = alphas[0] if n_alphas > 0 else 0.0
    for k in range(n_alphas):
        alpha = alphas[k]
        a = alpha * l1_ratio
        b = alpha * (1.0 - l1_ratio)

        n_ws = 0
        for j in range(n_features):
            in_ws[j] = diag[j] > 0.0 and (ever_active[j] or penalty[j] == 0.0)
            if in_ws[j]:
                ws[n_ws] = j
                n_ws += 1
        # Sequential strong rule, at the solution for the previous alpha.
        n_found = _screen_outside(
            X, rows, x_mean, inv_scale, has_nan, diag, penalty, r, r_ref, grad,
            grad_ref, stamp, version, in_ws, l1_ratio * (2.0 * alpha - alpha_prev),
            False, found,
        )
        for t in range(n_found):
            in_ws[found[t]] = True
            ws[n_ws] = found[t]
            n_ws += 1

        n_iter = 0
        n_act = 0
        n_hist = 0
        check = True
        full_sweep = True
        small = False
        # Coordinate changes below d_w_tol * max|w| trigger a full sweep and a gap
        # check; tightened whenever such a check fails, so that a loose tol does not
        # make every epoch a full sweep.
        d_w_tol = tol
        gap = 0.0
        while True:
            if check:
                if n_unpen > 0 and _data_refit_unpenalized(
                    X, rows, x_mean, inv_scale, has_nan, coef, r, unpen, chol, g_u,
                    delta_u,
                ):
                    n_hist = 0
                # A fresh residual: thousands of incremental updates leave it ~1e-14
                # relative off, as large as the gap at a tight tol.
                _data_residual(X, rows, x_mean, inv_scale, has_nan, yc, coef, r)
                version += 1
                _ws_grads(X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version,
                          ws, n_ws)
                rr, ry = _rr_ry(r, yc)
                gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                if gap <= gap_tol:
                    n_found = _screen_outside(
                        X, rows, x_mean, inv_scale, has_nan, diag, penalty, r, r_ref,
                        grad, grad_ref, stamp, version, in_ws, a, True, found,
                    )
                    if n_found == 0:
                        # Every outside feature meets its KKT condition, so the gap on
                        # the working set is the gap of the full problem.
                        break
                    for t in range(n_found):
                        in_ws[found[t]] = True
                        ws[n_ws] = found[t]
                        n_ws += 1
                    full_sweep = True
                elif small:
                    d_w_tol *= 0.25
            if n_iter >= max_iter:
                # Not converged: the gap must still cover every feature, so bring in
                # the KKT violators (zero coefficients) before computing it.
                if n_unpen > 0:
                    _data_refit_unpenalized(X, rows, x_mean, inv_scale, has_nan, coef,
                                            r, unpen, chol, g_u, delta_u)
                _data_residual(X, rows, x_mean, inv_scale, has_nan, yc, coef, r)
                version += 1
                n_found = _screen_outside(
                    X, rows, x_mean, inv_scale, has_nan, diag, penalty, r, r_ref, grad,
                    grad_ref, stamp, version, in_ws, a, True, found,
                )
                for t in range(n_found):
                    in_ws[found[t]] = True
                    ws[n_ws] = found[t]
                    n_ws += 1
                _ws_grads(X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version,
                          ws, n_ws)
                rr, ry = _rr_ry(r, yc)
                gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                break
            if not full_sweep and n_act == 0:
                full_sweep = True
            if full_sweep:
                d_w_max, w_max = _data_epoch(
                    X, rows, x_mean, inv_scale, has_nan, diag, penalty, coef, r, ws,
                    n_ws, a, b,
                )
                n_act = 0
                for t in range(n_ws):
                    if coef[ws[t]] != 0.0:
                        act[n_act] = ws[t]
                        n_act += 1
                # The extrapolation needs iterates over one fixed set of coordinates.
                n_hist = 0
            else:
                d_w_max, w_max = _data_epoch(
                    X, rows, x_mean, inv_scale, has_nan, diag, penalty, coef, r, act,
                    n_act, a, b,
                )
                for t in range(n_act):
                    hist_w[n_hist, t] = coef[act[t]]
                for i in range(n_samples):
                    hist_r[n_hist, i] = r[i]
                n_hist += 1
            n_iter += 1
            if d_w_max > 0.0:
                version += 1
            if n_hist == _ANDERSON_K + 1:
                if _anderson_step(hist_w, hist_r, coef, r, penalty, act, n_act, a, b,
                                  trial_w, trial_r):
                    version += 1
                n_hist = 0
            small = w_max == 0.0 or d_w_max <= d_w_tol * w_max
            check = (full_sweep and small) or n_iter % _GAP_EVERY == 0
            # Settle the non-zero coefficients before sweeping the whole set again.
            full_sweep = small
        dual_gaps[k] = gap
        n_iters[k] = n_iter
        for j in range(n_features):
            coefs[j, k] = coef[j]
            if coef[j] != 0.0:
                ever_active[j] = True
        alpha_prev = alpha
    return coefs, dual_gaps, n_iters

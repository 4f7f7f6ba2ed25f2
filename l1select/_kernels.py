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

The dual point is feasible for an unpenalized feature (pf_j = 0) only if
``Xs_j^T r = 0``, which no scaling can arrange; so before every gap evaluation the
unpenalized coefficients are refitted jointly by least squares (an exact block
minimization, which only lowers the objective), after which ``gap >= P(w) - P*`` holds
again. For ``alpha = 0`` (least squares) the gap is ``sum_j XtA_j^2``, scikit-learn's
first-order fallback. At each alpha, iteration stops once ``gap <= tol * yty``
(confirmed on a freshly computed ``G w`` or residual) and no feature outside the working
set violates its KKT condition ``|Xs_j^T r / n| <= a * pf_j``, or after ``max_iter``
epochs. The gap is evaluated when the largest coordinate change of an epoch falls to
``tol * max|w|`` or every ``_GAP_EVERY`` epochs.
"""

import numpy as np
from numba import njit

# Epochs between two gap evaluations while coordinates still move by more than
# tol * max|w| (cd_gram_path, and cd_data_path's sweeps on the data): a gap costs about
# one epoch there, so checking every tenth costs at most ~10% and stops at most 9 late.
_GAP_EVERY = 10


# |z| within this relative distance above the threshold a * pf_j counts as on it. The
# caller computes alpha_max = |c_j| / (l1_ratio * pf_j) from its own statistics, and
# a * pf_j comes back a few ulps below the kernel's |c_j| (four roundings, plus, for
# cd_data_path, a different summation order of c_j: ~1e-14 relative); without the slack
# the top feature would get a coefficient of ~1e-16 at alpha_max instead of exactly
# zero. Setting such a coordinate to zero moves it by at most 1e-12 * threshold / G_jj.
_THRESHOLD_RTOL = 1e-12


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
def _row_dot(L, i, j, n):
    """``sum(L[i, :n] * L[j, :n])`` with four running sums (see ``_col_dot``)."""
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    acc3 = 0.0
    n4 = n - n % 4
    for q in range(0, n4, 4):
        acc0 += L[i, q] * L[j, q]
        acc1 += L[i, q + 1] * L[j, q + 1]
        acc2 += L[i, q + 2] * L[j, q + 2]
        acc3 += L[i, q + 3] * L[j, q + 3]
    for q in range(n4, n):
        acc0 += L[i, q] * L[j, q]
    return (acc0 + acc1) + (acc2 + acc3)


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
        s = A[j, j] - _row_dot(L, j, j, j)
        if s <= _DEPENDENT_PIVOT * max_diag:
            continue
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, m):
            L[i, j] = (A[i, j] - _row_dot(L, i, j, j)) / L[j, j]


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

    Mutates ``gw``. Done afresh at every alpha (as scikit-learn does per call) and before
    a gap is accepted, so that the rounding of the incremental updates cannot pass for
    convergence.
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


# Anderson extrapolation of the coordinate-descent sweeps (Bertrand & Massias, "Anderson
# acceleration of coordinate descent", AISTATS 2021; as in skglm): every _ANDERSON_K + 1
# sweeps, the affine combination of the last iterates that best cancels their
# differences is tried, and kept if it lowers the objective. In the nearly interpolating
# tail of a wide path (hundreds of correlated non-zeros) plain coordinate descent needs
# thousands of sweeps per alpha; this cuts them several-fold.
_ANDERSON_K = 5


@njit(cache=True, fastmath=False)
def _gram_objective(xty, yty, coef, gw, penalty, a, b):
    """``1/2 w^T G w - c^T w + yty/2 + penalty`` from ``gw = G w``."""
    quad = 0.0
    pen = 0.0
    for j in range(coef.shape[0]):
        w_j = coef[j]
        quad += w_j * gw[j] - 2.0 * xty[j] * w_j
        pen += penalty[j] * (a * abs(w_j) + 0.5 * b * w_j * w_j)
    return 0.5 * (yty + quad) + pen


@njit(cache=True, fastmath=False)
def _anderson_gram(hist_w, gram, xty, yty, coef, gw, penalty, a, b, trial_w, trial_gw):
    """Try the Anderson extrapolation of the iterates in ``hist_w`` (rows: sweeps).

    The last row is the current iterate. ``G w`` of the trial point is computed afresh:
    combining the stored ``G w`` instead would multiply their rounding by the size of the
    combination weights, which is large when the sweeps have nearly stalled. Mutates
    ``coef`` and ``gw`` when the trial point has a lower objective (and returns True),
    and the scratch arrays ``trial_w`` and ``trial_gw`` either way.
    """
    m = coef.shape[0]
    k = hist_w.shape[0] - 1
    # Gram of the successive differences U_s = x_{s+1} - x_s.
    uu = np.zeros((k, k))
    for s1 in range(k):
        for s2 in range(s1, k):
            acc = 0.0
            for t in range(m):
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
    for t in range(m):
        acc = 0.0
        for s in range(k):
            acc += z[s] * hist_w[s + 1, t]
        trial_w[t] = acc / z_sum
    _gram_product(gram, trial_w, trial_gw)
    current = _gram_objective(xty, yty, coef, gw, penalty, a, b)
    if _gram_objective(xty, yty, trial_w, trial_gw, penalty, a, b) >= current:
        return False
    for t in range(m):
        coef[t] = trial_w[t]
        gw[t] = trial_gw[t]
    return True


# In the tail of a wide path the non-zero coefficients are hundreds of nearly collinear
# features and coordinate descent needs thousands of sweeps per alpha even with Anderson
# extrapolation. Every _NEWTON_EVERY sweeps without convergence, the sweeps try the
# exact minimizer on the current support and signs (one Cholesky factorization, which
# costs about as much as this many sweeps at 400 non-zeros, so short solves never pay).
_NEWTON_EVERY = 200


@njit(cache=True, fastmath=False)
def _newton_step(
    gram, xty, yty, coef, gw, penalty, alpha, l1_ratio, n_unpen, idx, grad, trial_w, trial_gw
):
    """Try a step to the minimizer on the current support with the current signs.

    On the support S (non-zero or unpenalized coefficients, the latter being the first
    ``n_unpen``) with signs fixed, the objective is the quadratic with minimizer
    ``(G_SS + b diag(pf_S)) w_S = c_S - a pf_S sign(w_S)``. The step goes there, or,
    if a coefficient would change sign, only as far as the first one reaching zero
    (which is set to zero): along that segment the objective decreases. Kept if the
    objective or the duality gap is lower: near convergence on an ill-conditioned support
    the objective no longer resolves the improvement, but the gap does (the factorization
    leaves a residual near rounding where the sweeps leave ~1e-10), and a lower gap
    bounds the objective all the same (``P(w) <= P* + gap``).

    Mutates ``coef`` and ``gw`` when the step is kept (and returns True), and the
    scratch arrays ``trial_w``, ``trial_gw`` and ``grad`` either way.
    """
    m = coef.shape[0]
    a = alpha * l1_ratio
    b = alpha * (1.0 - l1_ratio)
    support = np.empty(m, dtype=np.int64)
    n_s = 0
    for j in range(m):
        if j < n_unpen or coef[j] != 0.0:
            support[n_s] = j
            n_s += 1
    if n_s == 0:
        return False
    hess = np.empty((n_s, n_s))
    rhs = np.empty(n_s)
    for t in range(n_s):
        j = support[t]
        rhs[t] = xty[j]
        if penalty[j] > 0.0:
            rhs[t] -= a * penalty[j] * np.sign(coef[j])
        for q in range(n_s):
            hess[t, q] = gram[j, support[q]]
        hess[t, t] += b * penalty[j]
    chol = np.empty((n_s, n_s))
    _cholesky_psd(hess, chol)
    target = np.empty(n_s)
    _cholesky_solve(chol, rhs, target)
    step = 1.0
    for t in range(n_s):
        j = support[t]
        if penalty[j] > 0.0 and coef[j] * target[t] <= 0.0:
            step = min(step, coef[j] / (coef[j] - target[t]))
    for j in range(m):
        trial_w[j] = coef[j]
    for t in range(n_s):
        j = support[t]
        w_new = coef[j] + step * (target[t] - coef[j])
        # The coefficients that reach zero at this step length, and any that would
        # cross it by rounding, stop at zero.
        if penalty[j] > 0.0 and (coef[j] * target[t] <= 0.0 or coef[j] * w_new <= 0.0):
            if coef[j] / (coef[j] - target[t]) <= step or coef[j] * w_new <= 0.0:
                w_new = 0.0
        trial_w[j] = w_new
    _gram_product(gram, trial_w, trial_gw)
    better = _gram_objective(xty, yty, trial_w, trial_gw, penalty, a, b) < _gram_objective(
        xty, yty, coef, gw, penalty, a, b
    )
    if not better:
        rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
        gap = _dual_gap(coef, grad, penalty, idx, m, alpha, l1_ratio, rr, ry)
        rr, ry = _gram_state(gram, xty, yty, trial_w, trial_gw, grad)
        better = _dual_gap(trial_w, grad, penalty, idx, m, alpha, l1_ratio, rr, ry) < gap
    if not better:
        return False
    for j in range(m):
        coef[j] = trial_w[j]
        gw[j] = trial_gw[j]
    return True


@njit(cache=True, fastmath=False)
def _gram_solve(
    gram, xty, yty, coef, gw, penalty, alpha, l1_ratio, gap_tol, max_epochs, n_unpen, chol
):
    """Coordinate descent on a small dense problem with every feature in play.

    Sweeps all features cyclically, with Anderson extrapolation, until the duality gap
    is ``<= gap_tol`` (confirmed on a fresh ``G w``) or ``max_epochs`` sweeps. The first
    ``n_unpen`` features are the unpenalized ones, ``chol`` the factor of their Gram;
    they are refitted before each gap evaluation.

    Mutates ``coef`` and ``gw`` (``= gram @ coef`` on entry, kept so). Returns the
    number of sweeps.
    """
    m = gram.shape[0]
    a = alpha * l1_ratio
    b = alpha * (1.0 - l1_ratio)
    idx = np.arange(m)
    unpen = np.arange(n_unpen)
    grad = np.empty(m)
    g_u = np.empty(n_unpen)
    delta_u = np.empty(n_unpen)
    hist_w = np.empty((_ANDERSON_K + 1, m))
    trial_w = np.empty(m)
    trial_gw = np.empty(m)
    n_epochs = 0
    n_hist = 0
    while True:
        if n_unpen > 0:
            _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u, delta_u)
        rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
        gap = _dual_gap(coef, grad, penalty, idx, m, alpha, l1_ratio, rr, ry)
        if gap <= gap_tol:
            _gram_product(gram, coef, gw)
            rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
            if _dual_gap(coef, grad, penalty, idx, m, alpha, l1_ratio, rr, ry) <= gap_tol:
                return n_epochs
        if n_epochs >= max_epochs:
            return n_epochs
        _gram_epoch(gram, xty, penalty, coef, gw, idx, m, a, b)
        n_epochs += 1
        for t in range(m):
            hist_w[n_hist, t] = coef[t]
        n_hist += 1
        if n_hist == _ANDERSON_K + 1:
            _anderson_gram(hist_w, gram, xty, yty, coef, gw, penalty, a, b, trial_w, trial_gw)
            n_hist = 0
        if n_epochs % _NEWTON_EVERY == 0:
            if _newton_step(
                gram,
                xty,
                yty,
                coef,
                gw,
                penalty,
                alpha,
                l1_ratio,
                n_unpen,
                idx,
                grad,
                trial_w,
                trial_gw,
            ):
                n_hist = 0


@njit(cache=True, fastmath=False, nogil=True)
def cd_gram_path(gram, xty, yty, alphas, l1_ratio, penalty, coef, tol, max_iter):
    """Elastic-net path by coordinate descent with covariance updates.

    Minimizes, for each ``alpha`` in ``alphas``, warm-started from the previous one::

        1/2 w^T G w - c^T w + yty / 2
            + alpha * sum_j pf_j (l1_ratio |w_j| + (1 - l1_ratio) / 2 w_j^2)

    Each alpha solves on a working set (sequential strong rule, plus every feature ever
    non-zero, plus unpenalized features), then checks the KKT conditions of all features
    and re-solves with the violators until there are none. Unpenalized coefficients are
    refitted jointly by least squares before each gap evaluation. See the module
    docstring for the duality gap and the stopping rule.

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
            grad,
            penalty,
            diag,
            ever_active,
            l1_ratio * (2.0 * alpha - alpha_prev),
            ws,
            in_ws,
        )
        n_iter = 0
        check = True
        while True:
            if check:
                if n_unpen > 0:
                    _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u, delta_u)
                rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                if gap <= gap_tol:
                    # Confirm on a fresh G w: thousands of incremental updates leave it
                    # ~1e-14 relative off, as large as the gap at a tight tol.
                    _gram_product(gram, coef, gw)
                    rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                    gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                if gap <= gap_tol:
                    n_before = n_ws
                    n_ws = _add_kkt_violators(grad, penalty, diag, a, ws, n_ws, in_ws)
                    if n_ws == n_before:
                        break
            if n_iter >= max_iter:
                if n_unpen > 0:
                    _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u, delta_u)
                _gram_product(gram, coef, gw)
                rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
                break
            d_w_max, w_max = _gram_epoch(gram, xty, penalty, coef, gw, ws, n_ws, a, b)
            n_iter += 1
            check = w_max == 0.0 or d_w_max <= tol * w_max or n_iter % _GAP_EVERY == 0
        dual_gaps[k] = _dual_gap(coef, grad, penalty, all_idx, n_features, alpha, l1_ratio, rr, ry)
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
# resets r_ref, which makes the bounds tight again for the alphas that follow. On the
# benchmark's wide case (500 x 20,000, 97 alphas) 0.2 makes 41 full passes instead of 70 at
# 0.05 and costs 15% less CPU per path (0.02: 80 passes; 0.5: 35, but no faster).
_REFRESH_FRACTION = 0.2

# Most epochs on a wide path are sweeps over the non-zero coefficients. They run on the
# Gram of those features (each entry computed from the data once and cached), where a
# coordinate update costs O(n_active) instead of two passes over the training rows. The
# cache holds at most this many features (8 bytes times its square: 128 MiB); a larger
# active set is swept on the data.
_GRAM_CACHE_MAX = 4096


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
def _col_col_dot(X, rows, j, k, x_mean, inv_scale, has_nan):
    """Return ``Xs[:, j]^T Xs[:, k] / n`` over the training rows (NaN counts as 0)."""
    n_samples = rows.shape[0]
    m_j = x_mean[j]
    m_k = x_mean[k]
    acc0 = 0.0
    acc1 = 0.0
    if has_nan[j] or has_nan[k]:
        for i in range(n_samples):
            x_j = X[rows[i], j]
            x_k = X[rows[i], k]
            if x_j == x_j and x_k == x_k:
                acc0 += (x_j - m_j) * (x_k - m_k)
    else:
        # Two running sums, as in _col_dot.
        n2 = n_samples - n_samples % 2
        for i in range(0, n2, 2):
            acc0 += (X[rows[i], j] - m_j) * (X[rows[i], k] - m_k)
            acc1 += (X[rows[i + 1], j] - m_j) * (X[rows[i + 1], k] - m_k)
        for i in range(n2, n_samples):
            acc0 += (X[rows[i], j] - m_j) * (X[rows[i], k] - m_k)
    return (acc0 + acc1) * inv_scale[j] * inv_scale[k] / n_samples


@njit(cache=True, fastmath=False)
def _data_residual(X, rows, x_mean, inv_scale, has_nan, yc, coef, r):
    """Set ``r = yc - Xs @ coef`` from the non-zero coefficients.

    Mutates ``r``. Done afresh before every gap evaluation, so that the rounding of the
    incremental updates cannot pass for convergence.
    """
    for i in range(r.shape[0]):
        r[i] = yc[i]
    for j in range(coef.shape[0]):
        if coef[j] != 0.0:
            _col_axpy(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], coef[j], r)


@njit(cache=True, fastmath=False)
def _data_refit_unpenalized(X, rows, x_mean, inv_scale, has_nan, coef, r, unpen, chol, g_u, delta):
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
def _data_epoch(X, rows, x_mean, inv_scale, has_nan, diag, penalty, coef, r, idx, n_idx, a, b):
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
def _screen_outside(
    X,
    rows,
    x_mean,
    inv_scale,
    has_nan,
    diag,
    penalty,
    r,
    r_ref,
    grad,
    grad_ref,
    stamp,
    version,
    in_ws,
    level,
    found,
):
    """Find the features outside the working set with ``|grad_j| > level * pf_j``.

    ``grad_j = Xs_j^T r / n`` at the current residual; ``level`` is ``a`` (times
    ``1 + _THRESHOLD_RTOL``) for the KKT check, or the strong rule's threshold. Exact
    gradients are computed only where the bound on ``|grad_j|`` from
    ``(r_ref, grad_ref)`` does not settle the test, or for all features in one pass when
    too many need it (``_REFRESH_FRACTION``).

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

    n_cand = 0
    for j in range(n_features):
        if in_ws[j] or diag[j] == 0.0 or stamp[j] == version:
            continue
        if abs(grad_ref[j]) + np.sqrt(diag[j]) * drift > level * penalty[j]:
            n_cand += 1
    if n_cand > _REFRESH_FRACTION * n_features:
        for j in range(n_features):
            if diag[j] == 0.0:
                grad[j] = 0.0
            else:
                grad[j] = _col_dot(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r) / n_samples
            grad_ref[j] = grad[j]
            stamp[j] = version
        for i in range(n_samples):
            r_ref[i] = r[i]
    elif n_cand > 0:
        for j in range(n_features):
            if in_ws[j] or diag[j] == 0.0 or stamp[j] == version:
                continue
            if abs(grad_ref[j]) + np.sqrt(diag[j]) * drift > level * penalty[j]:
                grad[j] = _col_dot(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r) / n_samples
                stamp[j] = version

    n_found = 0
    for j in range(n_features):
        # A feature without a current exact gradient was cleared by its bound.
        if in_ws[j] or diag[j] == 0.0 or stamp[j] != version:
            continue
        if abs(grad[j]) > level * penalty[j]:
            found[n_found] = j
            n_found += 1
    return n_found


@njit(cache=True, fastmath=False)
def _cache_add(
    X, rows, x_mean, inv_scale, has_nan, diag, yc, f, slot, cache_feat, cache_g, cache_c, n_cached
):
    """Put feature ``f`` into the Gram cache at slot ``n_cached`` (capacity permitting).

    Fills its row and column of ``cache_g`` against every cached feature and
    ``cache_c[slot] = Xs_f^T yc / n``. Mutates ``slot``, ``cache_feat``, ``cache_g`` and
    ``cache_c``. Returns the new ``n_cached``.
    """
    s = n_cached
    slot[f] = s
    cache_feat[s] = f
    for t in range(s):
        g = _col_col_dot(X, rows, f, cache_feat[t], x_mean, inv_scale, has_nan)
        cache_g[s, t] = g
        cache_g[t, s] = g
    cache_g[s, s] = diag[f]
    cache_c[s] = _col_dot(X, rows, f, x_mean[f], inv_scale[f], has_nan[f], yc) / rows.shape[0]
    return s + 1


@njit(cache=True, fastmath=False)
def _cache_resize(cache_feat, cache_g, cache_c, n_cached, capacity):
    """Return copies of the cache arrays with room for ``capacity`` features."""
    new_feat = np.empty(capacity, dtype=np.int64)
    new_g = np.empty((capacity, capacity))
    new_c = np.empty(capacity)
    for s in range(n_cached):
        new_feat[s] = cache_feat[s]
        new_c[s] = cache_c[s]
        for t in range(n_cached):
            new_g[s, t] = cache_g[s, t]
    return new_feat, new_g, new_c


@njit(cache=True, fastmath=False)
def _active_features(coef, ws, n_ws, unpen, in_unpen, act):
    """Fill ``act`` with the unpenalized features (first, in ``unpen`` order) and the
    non-zero coefficients of the working set. Mutates ``act``; returns its length."""
    n_act = 0
    for t in range(unpen.shape[0]):
        act[n_act] = unpen[t]
        n_act += 1
    for t in range(n_ws):
        j = ws[t]
        if coef[j] != 0.0 and not in_unpen[j]:
            act[n_act] = j
            n_act += 1
    return n_act


@njit(cache=True, fastmath=False)
def _solve_active_on_gram(
    X,
    rows,
    x_mean,
    inv_scale,
    has_nan,
    diag,
    yc,
    yty,
    coef,
    penalty,
    act,
    n_act,
    slot,
    cache_feat,
    cache_g,
    cache_c,
    n_cached,
    alpha,
    l1_ratio,
    gap_tol,
    max_epochs,
    n_unpen,
    chol,
):
    """Solve for the coefficients ``act[:n_act]`` alone, the others fixed at zero.

    Brings the features into the Gram cache (growing it, or starting it over when it
    would pass ``_GRAM_CACHE_MAX``), then runs :func:`_gram_solve` on their Gram to half
    of ``gap_tol``: the check on the data that follows sees the same point through other
    roundings, and must not bounce back for a hair. ``act`` starts with the ``n_unpen``
    unpenalized features, ``chol`` the factor of their Gram.

    Mutates ``coef`` (the residual is left behind), ``slot`` and the cache arrays.

    Returns
    -------
    n_epochs : int
    cache_feat, cache_g, cache_c : ndarray
        The cache arrays, reallocated if they had to grow.
    n_cached : int
    """
    n_new = 0
    for t in range(n_act):
        if slot[act[t]] < 0:
            n_new += 1
    if n_cached + n_new > _GRAM_CACHE_MAX:
        for s in range(n_cached):
            slot[cache_feat[s]] = -1
        n_cached = np.int64(0)
        n_new = n_act
    capacity = cache_feat.shape[0]
    if n_cached + n_new > capacity:
        capacity = min(max(2 * capacity, n_cached + n_new), _GRAM_CACHE_MAX)
        cache_feat, cache_g, cache_c = _cache_resize(
            cache_feat, cache_g, cache_c, n_cached, capacity
        )
    for t in range(n_act):
        if slot[act[t]] < 0:
            n_cached = _cache_add(
                X,
                rows,
                x_mean,
                inv_scale,
                has_nan,
                diag,
                yc,
                act[t],
                slot,
                cache_feat,
                cache_g,
                cache_c,
                n_cached,
            )
    g_act = np.empty((n_act, n_act))
    c_act = np.empty(n_act)
    w_act = np.empty(n_act)
    pf_act = np.empty(n_act)
    for t in range(n_act):
        s = slot[act[t]]
        c_act[t] = cache_c[s]
        w_act[t] = coef[act[t]]
        pf_act[t] = penalty[act[t]]
        for q in range(n_act):
            g_act[t, q] = cache_g[s, slot[act[q]]]
    gw_act = np.empty(n_act)
    _gram_product(g_act, w_act, gw_act)
    n_epochs = _gram_solve(
        g_act,
        c_act,
        yty,
        w_act,
        gw_act,
        pf_act,
        alpha,
        l1_ratio,
        0.5 * gap_tol,
        max_epochs,
        n_unpen,
        chol,
    )
    for t in range(n_act):
        coef[act[t]] = w_act[t]
    return n_epochs, cache_feat, cache_g, cache_c, n_cached


@njit(cache=True, fastmath=False)
def _ws_grads(X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version, ws, n_ws):
    """Make ``grad`` exact at the current residual on ``ws[:n_ws]``.

    Mutates ``grad`` and ``stamp``; entries already current are not recomputed.
    """
    n_samples = rows.shape[0]
    for t in range(n_ws):
        j = ws[t]
        if stamp[j] != version:
            grad[j] = _col_dot(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r) / n_samples
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


@njit(cache=True, fastmath=False, nogil=True)
def cd_data_path(
    X, y, rows, x_mean, x_scale, y_mean, alphas, l1_ratio, penalty, coef, tol, max_iter
):
    """Elastic-net path by coordinate descent on the raw data matrix (wide data).

    Same objective, outputs, warm start and stopping rule as :func:`cd_gram_path`, with
    ``Xs[i, j] = (X[rows[i], j] - x_mean[j]) / x_scale[j]`` (0 where ``X`` is NaN, that
    is, mean imputation), ``yc = y[rows] - y_mean`` and ``n = len(rows)``. The
    standardized matrix is never formed; the residual ``r = yc - Xs w`` (length ``n``)
    is kept up to date.

    Each alpha solves on a working set (sequential strong rule, plus features ever
    non-zero, plus unpenalized features). A sweep over the working set on the data lets
    coefficients enter; the non-zero ones are then solved alone on their Gram (computed
    from the data once per feature and cached), with Anderson extrapolation and, when
    the sweeps drag on, Newton steps on the support (glmnet's active-set cycling, with
    covariance updates). Once the gap on the working set is within tolerance, the
    features outside it are checked for KKT violations (bounded first, computed exactly
    only where the bound is not enough) and the violators are added, until there are
    none. Unpenalized coefficients are refitted jointly by least squares before each gap
    evaluation.

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
            grad[j] = _col_dot(X, rows, j, x_mean[j], inv_scale[j], has_nan[j], r) / n_samples
    grad_ref = grad.copy()
    r_ref = r.copy()
    # np.int64(0) rather than 0 here and below: a literal 0 passed on would compile the
    # helpers a second time, for the literal type.
    version = np.int64(0)
    stamp = np.zeros(n_features, dtype=np.int64)
    ever_active = coef != 0.0
    in_ws = np.zeros(n_features, dtype=np.bool_)
    ws = np.empty(n_features, dtype=np.int64)
    found = np.empty(n_features, dtype=np.int64)
    unpen = _unpenalized_features(penalty, diag)
    n_unpen = unpen.shape[0]
    in_unpen = np.zeros(n_features, dtype=np.bool_)
    chol = np.zeros((n_unpen, n_unpen))
    if n_unpen > 0:
        g_uu = np.empty((n_unpen, n_unpen))
        for s in range(n_unpen):
            in_unpen[unpen[s]] = True
            for t in range(s, n_unpen):
                g_uu[s, t] = _col_col_dot(X, rows, unpen[s], unpen[t], x_mean, inv_scale, has_nan)
                g_uu[t, s] = g_uu[s, t]
        _cholesky_psd(g_uu, chol)
    g_u = np.zeros(n_unpen)
    delta_u = np.zeros(n_unpen)

    act = np.empty(n_features, dtype=np.int64)
    slot = np.full(n_features, -1, dtype=np.int64)
    cache_feat = np.empty(min(n_features, 64), dtype=np.int64)
    cache_g = np.empty((cache_feat.shape[0], cache_feat.shape[0]))
    cache_c = np.empty(cache_feat.shape[0])
    n_cached = np.int64(0)

    alpha_prev = alphas[0] if n_alphas > 0 else 0.0
    for k in range(n_alphas):
        alpha = alphas[k]
        a = alpha * l1_ratio
        b = alpha * (1.0 - l1_ratio)

        n_ws = np.int64(0)
        for j in range(n_features):
            in_ws[j] = diag[j] > 0.0 and (ever_active[j] or penalty[j] == 0.0)
            if in_ws[j]:
                ws[n_ws] = j
                n_ws += 1
        # Sequential strong rule, at the solution for the previous alpha.
        level = l1_ratio * (2.0 * alpha - alpha_prev)
        n_found = _screen_outside(
            X,
            rows,
            x_mean,
            inv_scale,
            has_nan,
            diag,
            penalty,
            r,
            r_ref,
            grad,
            grad_ref,
            stamp,
            version,
            in_ws,
            level,
            found,
        )
        for t in range(n_found):
            in_ws[found[t]] = True
            ws[n_ws] = found[t]
            n_ws += 1

        n_iter = 0
        check = True
        gap = 0.0
        while True:
            if check or n_iter >= max_iter:
                # A fresh residual: the sweeps on the Gram leave it behind, and thousands
                # of incremental updates would make it ~1e-14 relative off, as large as
                # the gap at a tight tol.
                _data_residual(X, rows, x_mean, inv_scale, has_nan, yc, coef, r)
                if n_unpen > 0:
                    _data_refit_unpenalized(
                        X, rows, x_mean, inv_scale, has_nan, coef, r, unpen, chol, g_u, delta_u
                    )
                version += 1
                converged = False
                if n_iter < max_iter:
                    _ws_grads(
                        X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version, ws, n_ws
                    )
                    rr, ry = _rr_ry(r, yc)
                    gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                    converged = gap <= gap_tol
                if converged or n_iter >= max_iter:
                    # KKT check of the outside features. Converged and none violating: the
                    # gap on the working set is the gap of the full problem. Out of epochs:
                    # the violators (zero coefficients) join so that the gap covers them.
                    n_found = _screen_outside(
                        X,
                        rows,
                        x_mean,
                        inv_scale,
                        has_nan,
                        diag,
                        penalty,
                        r,
                        r_ref,
                        grad,
                        grad_ref,
                        stamp,
                        version,
                        in_ws,
                        a * (1.0 + _THRESHOLD_RTOL),
                        found,
                    )
                    for t in range(n_found):
                        in_ws[found[t]] = True
                        ws[n_ws] = found[t]
                        n_ws += 1
                    if n_iter >= max_iter:
                        _ws_grads(
                            X, rows, x_mean, inv_scale, has_nan, r, grad, stamp, version, ws, n_ws
                        )
                        rr, ry = _rr_ry(r, yc)
                        gap = _dual_gap(coef, grad, penalty, ws, n_ws, alpha, l1_ratio, rr, ry)
                        break
                    if n_found == 0:
                        break

            # A sweep over the whole working set on the data lets zero coefficients enter.
            d_w_max, w_max = _data_epoch(
                X, rows, x_mean, inv_scale, has_nan, diag, penalty, coef, r, ws, n_ws, a, b
            )
            n_iter += 1
            if d_w_max > 0.0:
                version += 1
            n_act = _active_features(coef, ws, n_ws, unpen, in_unpen, act)
            if n_act == 0 or n_act > _GRAM_CACHE_MAX or n_iter >= max_iter:
                check = w_max == 0.0 or d_w_max <= tol * w_max or n_iter % _GAP_EVERY == 0
                continue

            # Then sweeps over the non-zero coefficients alone, on their cached Gram.
            n_epochs, cache_feat, cache_g, cache_c, n_cached = _solve_active_on_gram(
                X,
                rows,
                x_mean,
                inv_scale,
                has_nan,
                diag,
                yc,
                yty,
                coef,
                penalty,
                act,
                n_act,
                slot,
                cache_feat,
                cache_g,
                cache_c,
                n_cached,
                alpha,
                l1_ratio,
                gap_tol,
                max_iter - n_iter,
                n_unpen,
                chol,
            )
            n_iter += n_epochs
            # r is now behind coef; the check recomputes it.
            check = True

        dual_gaps[k] = gap
        n_iters[k] = n_iter
        for j in range(n_features):
            coefs[j, k] = coef[j]
            if coef[j] != 0.0:
                ever_active[j] = True
        alpha_prev = alpha
    return coefs, dual_gaps, n_iters

"""What both coordinate-descent solvers share: the objective, the duality gap and its stopping
rule, the coordinate update, the working set (strong rule, KKT violators) and the small
Cholesky solves of the unpenalized block.

Both solvers (:mod:`~l1select._kernels.gram`, :mod:`~l1select._kernels.data`) minimize, in
standardized coordinates and without intercept,

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
def _cd_update(z, d_jj, pf_j, a, b):
    """The coordinate-descent update of one coefficient: the minimizer over ``w_j`` given
    ``z = Xs_j^T r_j / n`` (``r_j`` the residual without feature j's term) and
    ``d_jj = ||Xs_j||^2 / n``, with ``a = alpha l1_ratio`` and ``b = alpha (1 - l1_ratio)``."""
    return _soft_threshold(z, a * pf_j) / (d_jj + b * pf_j)


@njit(cache=True, fastmath=False)
def _gap_due(d_w_max, w_max, tol, n_iter):
    """Whether an epoch calls for a gap evaluation: the largest coordinate change fell to
    ``tol * max|w|`` (or nothing is non-zero), or ``_GAP_EVERY`` epochs have passed."""
    return w_max == 0.0 or d_w_max <= tol * w_max or n_iter % _GAP_EVERY == 0


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
def _strong_level(l1_ratio, alpha, alpha_prev):
    """The sequential strong rule's threshold at ``alpha`` after ``alpha_prev``: a feature
    whose ``|grad_j|`` at the previous solution reaches it times ``pf_j`` enters the
    working set."""
    return l1_ratio * (2.0 * alpha - alpha_prev)


@njit(cache=True, fastmath=False)
def _kkt_level(a):
    """The KKT threshold ``a`` with the soft threshold's ``_THRESHOLD_RTOL``: a feature
    outside the working set with ``|grad_j| > _kkt_level(a) * pf_j`` violates its
    condition."""
    return a * (1.0 + _THRESHOLD_RTOL)


@njit(cache=True, fastmath=False)
def _always_in(diag_j, ever_active_j, pf_j):
    """Whether a feature belongs to every working set: a non-zero column that has been
    non-zero on the path or is unpenalized."""
    return diag_j > 0.0 and (ever_active_j or pf_j == 0.0)


@njit(cache=True, fastmath=False)
def _base_working_set(diag, penalty, ever_active, ws, in_ws):
    """Start a working set with the features that are always in (:func:`_always_in`).

    Mutates ``ws`` (its first ``n_ws`` entries, in increasing feature order) and ``in_ws``.
    Returns ``n_ws``.
    """
    n_ws = np.int64(0)
    for j in range(diag.shape[0]):
        in_ws[j] = _always_in(diag[j], ever_active[j], penalty[j])
        if in_ws[j]:
            ws[n_ws] = j
            n_ws += 1
    return n_ws


@njit(cache=True, fastmath=False)
def _strong_working_set(grad, penalty, diag, ever_active, threshold, ws, in_ws):
    """Fill the working set for a new alpha by the sequential strong rule.

    Feature j enters when it is always in (:func:`_always_in`) or has a non-zero column
    and ``|grad_j| >= threshold * pf_j`` (``threshold`` from :func:`_strong_level`,
    ``grad`` taken at the solution for ``alpha_{k-1}``).

    Mutates ``ws`` (its first ``n_ws`` entries, in increasing feature order, which keeps
    column access monotone) and ``in_ws``. Returns ``n_ws``.
    """
    n_ws = 0
    for j in range(grad.shape[0]):
        keep = _always_in(diag[j], ever_active[j], penalty[j]) or (
            diag[j] > 0.0 and abs(grad[j]) >= threshold * penalty[j]
        )
        in_ws[j] = keep
        if keep:
            ws[n_ws] = j
            n_ws += 1
    return n_ws


@njit(cache=True, fastmath=False)
def _exceeds(grad_j, level, pf_j):
    """Whether ``|grad_j| > level * pf_j`` (``level`` from :func:`_kkt_level` or
    :func:`_strong_level`)."""
    return abs(grad_j) > level * pf_j


@njit(cache=True, fastmath=False)
def _ws_append(found, n_found, ws, n_ws, in_ws):
    """Append ``found[:n_found]`` to the working set ``ws[:n_ws]``.

    Mutates ``ws`` and ``in_ws``. Returns the new ``n_ws``.
    """
    for t in range(n_found):
        in_ws[found[t]] = True
        ws[n_ws] = found[t]
        n_ws += 1
    return n_ws


@njit(cache=True, fastmath=False)
def _add_kkt_violators(grad, penalty, diag, a, ws, n_ws, in_ws, found):
    """Append to the working set every outside feature that violates its KKT condition
    (:func:`_kkt_level`), in increasing feature order.

    ``grad`` must be current for every feature outside the working set. Mutates ``ws``,
    ``in_ws`` and the scratch array ``found``. Returns the new ``n_ws``.
    """
    level = _kkt_level(a)
    n_found = 0
    for j in range(grad.shape[0]):
        if in_ws[j] or diag[j] == 0.0:
            continue
        if _exceeds(grad[j], level, penalty[j]):
            found[n_found] = j
            n_found += 1
    return _ws_append(found, n_found, ws, n_ws, in_ws)


@njit(cache=True, fastmath=False)
def _path_outputs(n_features, n_alphas):
    """The arrays a path returns, zeroed: ``coefs`` (n_features, n_alphas), ``dual_gaps``
    and ``n_iters`` (n_alphas,)."""
    return (
        np.zeros((n_features, n_alphas)),
        np.zeros(n_alphas),
        np.zeros(n_alphas, dtype=np.int64),
    )


@njit(cache=True, fastmath=False)
def _record_alpha(coefs, dual_gaps, n_iters, k, coef, gap, n_iter, ever_active):
    """Store the solution at the k-th alpha and mark its non-zero features as ever active.

    Mutates ``coefs``, ``dual_gaps``, ``n_iters`` and ``ever_active``.
    """
    dual_gaps[k] = gap
    n_iters[k] = n_iter
    for j in range(coef.shape[0]):
        coefs[j, k] = coef[j]
        if coef[j] != 0.0:
            ever_active[j] = True


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

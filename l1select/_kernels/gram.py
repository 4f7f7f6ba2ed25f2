"""The Gram (covariance) solver: coordinate descent on ``(G, c, yty)``.

:func:`cd_gram_path` costs O(n_features) per coordinate update, independently of
``n_samples``; the objective, the duality gap and the stopping rule are in
:mod:`~l1select._kernels.common`. Also here, for the data path's active sets:
:func:`_gram_solve`, coordinate descent on a small dense Gram with Anderson extrapolation and
Newton steps on the support. ``l1select._aot`` compiles :func:`cd_gram_path` ahead of time
from this module and :mod:`~l1select._kernels.common` (the only modules it reads).
"""

import numpy as np
from numba import njit

from l1select._kernels.common import (
    _add_kkt_violators,
    _cd_update,
    _cholesky_psd,
    _cholesky_solve,
    _dual_gap,
    _gap_due,
    _path_outputs,
    _record_alpha,
    _strong_level,
    _strong_working_set,
    _unpenalized_features,
)


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
        w_new = _cd_update(z, g_jj, penalty[j], a, b)
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


@njit(cache=True, fastmath=False)
def _gram_unpenalized(gram, penalty, diag):
    """The unpenalized features (:func:`_unpenalized_features`) and the Cholesky factor of
    their Gram, which :func:`_gram_refit_unpenalized` solves with."""
    unpen = _unpenalized_features(penalty, diag)
    n_unpen = unpen.shape[0]
    chol = np.zeros((n_unpen, n_unpen))
    if n_unpen > 0:
        g_uu = np.empty((n_unpen, n_unpen))
        for s in range(n_unpen):
            for t in range(n_unpen):
                g_uu[s, t] = gram[unpen[s], unpen[t]]
        _cholesky_psd(g_uu, chol)
    return unpen, chol


@njit(cache=True, fastmath=False)
def _gram_alpha(
    gram,
    xty,
    yty,
    coef,
    gw,
    grad,
    penalty,
    diag,
    alpha,
    l1_ratio,
    tol,
    gap_tol,
    max_iter,
    ws,
    n_ws,
    in_ws,
    found,
    unpen,
    chol,
):
    """Solve at one alpha: epochs over the working set ``ws[:n_ws]`` until the gap on it is
    within ``gap_tol`` (confirmed on a fresh ``G w``) and no outside feature violates its KKT
    condition (violators join, and the epochs go on), or ``max_iter`` epochs.

    Mutates ``coef``, ``gw`` and ``grad`` (left current at the returned point), ``ws``,
    ``in_ws`` and the scratch array ``found``. Returns ``(n_iter, r^T r / n, r^T yc / n)``.
    """
    a = alpha * l1_ratio
    b = alpha * (1.0 - l1_ratio)
    n_unpen = unpen.shape[0]
    g_u = np.zeros(n_unpen)
    delta_u = np.zeros(n_unpen)
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
                n_ws = _add_kkt_violators(grad, penalty, diag, a, ws, n_ws, in_ws, found)
                if n_ws == n_before:
                    return n_iter, rr, ry
        if n_iter >= max_iter:
            if n_unpen > 0:
                _gram_refit_unpenalized(gram, xty, coef, gw, unpen, chol, g_u, delta_u)
            _gram_product(gram, coef, gw)
            rr, ry = _gram_state(gram, xty, yty, coef, gw, grad)
            return n_iter, rr, ry
        d_w_max, w_max = _gram_epoch(gram, xty, penalty, coef, gw, ws, n_ws, a, b)
        n_iter += 1
        check = _gap_due(d_w_max, w_max, tol, n_iter)


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
    coefs, dual_gaps, n_iters = _path_outputs(n_features, n_alphas)

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
    found = np.empty(n_features, dtype=np.int64)
    all_idx = np.arange(n_features)
    gap_tol = tol * yty
    unpen, chol = _gram_unpenalized(gram, penalty, diag)

    alpha_prev = alphas[0] if n_alphas > 0 else 0.0
    for k in range(n_alphas):
        alpha = alphas[k]
        _gram_product(gram, coef, gw)
        _gram_state(gram, xty, yty, coef, gw, grad)
        n_ws = _strong_working_set(
            grad,
            penalty,
            diag,
            ever_active,
            _strong_level(l1_ratio, alpha, alpha_prev),
            ws,
            in_ws,
        )
        n_iter, rr, ry = _gram_alpha(
            gram,
            xty,
            yty,
            coef,
            gw,
            grad,
            penalty,
            diag,
            alpha,
            l1_ratio,
            tol,
            gap_tol,
            max_iter,
            ws,
            n_ws,
            in_ws,
            found,
            unpen,
            chol,
        )
        gap = _dual_gap(coef, grad, penalty, all_idx, n_features, alpha, l1_ratio, rr, ry)
        _record_alpha(coefs, dual_gaps, n_iters, k, coef, gap, n_iter, ever_active)
        alpha_prev = alpha
    return coefs, dual_gaps, n_iters

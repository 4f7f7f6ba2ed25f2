"""Coordinate-descent kernels against scikit-learn and against reference-free invariants.

Objective of both kernels, in standardized coordinates (see ``l1select._kernels.common``)::

    1/(2n) ||yc - Xs w||^2 + alpha * sum_j pf_j (l1_ratio |w_j| + (1 - l1_ratio)/2 w_j^2)

Tolerances come from one bound. Both our solvers and scikit-learn stop at a duality gap
``<= tol * yty``, and ``P(w) - P* <= gap``. Where the objective is ``mu``-strongly
convex (``mu`` = smallest eigenvalue of the Gram on the support, plus the ridge part of
the penalty), ``P(w) - P* >= mu/2 ||w - w*||^2``, so two such solutions differ by at most
``2 sqrt(2 (tol + ROUNDING) yty / mu)`` in the 2-norm. ``ROUNDING`` covers that each
solver sees the problem through its own float64 inputs (Xs, or the Gram rounded from it).
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import enet_path

from l1select._kernels import cd_data_path, cd_gram_path
from tests.conftest import last_line

# Relative duality-gap tolerance for every solve here: an order above the floor (~1e-16
# on the residual, ~1e-15 through a Gram) where the gap of a float64 solution stops
# shrinking, so every solve converges, yet tight enough to make the bounds sharp.
SOLVER_TOL = 1e-14
# Relative error, in units of yty, of the objective as each solver evaluates it: float64
# inputs rounded to ~1e-16, summed over at most a few hundred terms.
ROUNDING = 1e-15
MAX_ITER = 100_000


# ---------------------------------------------------------------------------------------
# problems and references


def make_problem(seed, n_samples, n_features, rho=0.7, n_informative=5):
    """Raw data with AR(1)-correlated columns (neighbours correlate with ``rho``),
    arbitrary offsets and scales, and a target that depends on a few columns."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, n_features))
    X = np.empty_like(z)
    X[:, 0] = z[:, 0]
    for j in range(1, n_features):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1.0 - rho**2) * z[:, j]
    X = X * rng.uniform(0.5, 3.0, n_features) + rng.uniform(-5.0, 5.0, n_features)
    beta = np.zeros(n_features)
    informative = rng.choice(n_features, n_informative, replace=False)
    beta[informative] = rng.choice([-2.0, -1.0, 1.0, 2.0], n_informative)
    y = X @ beta + rng.standard_normal(n_samples) + 3.0
    return X, y


def standardize(X, y):
    """Explicit standardization (ddof=0) and centering, the kernels' implicit one."""
    x_mean = X.mean(axis=0)
    x_scale = X.std(axis=0)
    return (X - x_mean) / x_scale, y - y.mean(), x_mean, x_scale


def gram_inputs(Xs, yc):
    n = Xs.shape[0]
    return np.ascontiguousarray(Xs.T @ Xs / n), Xs.T @ yc / n, float(yc @ yc / n)


def alpha_max(xty, l1_ratio, penalty):
    """Smallest alpha at which every penalized coefficient is zero (none unpenalized)."""
    pen = penalty > 0
    return float(np.max(np.abs(xty[pen]) / (l1_ratio * penalty[pen])))


def alpha_grid(a_max, n_alphas=25, eps=1e-3):
    return a_max * np.geomspace(1.0, eps, n_alphas)


def run_gram(G, xty, yty, alphas, l1_ratio, penalty, tol=SOLVER_TOL, coef=None):
    coef = np.zeros(G.shape[0]) if coef is None else coef
    return cd_gram_path(G, xty, yty, alphas, l1_ratio, penalty, coef, tol, MAX_ITER)


def run_data(
    X, y, rows, x_mean, x_scale, y_mean, alphas, l1_ratio, penalty, tol=SOLVER_TOL, coef=None
):
    coef = np.zeros(X.shape[1]) if coef is None else coef
    return cd_data_path(
        np.asfortranarray(X),
        y,
        rows,
        x_mean,
        x_scale,
        float(y_mean),
        alphas,
        l1_ratio,
        penalty,
        coef,
        tol,
        MAX_ITER,
    )


def sklearn_path(Xs, yc, alphas, l1_ratio):
    with warnings.catch_warnings():
        # A reference that did not converge would make the comparison meaningless.
        warnings.simplefilter("error")
        _, coefs, _ = enet_path(
            Xs,
            yc,
            l1_ratio=l1_ratio,
            alphas=alphas,
            precompute=False,
            tol=SOLVER_TOL,
            max_iter=MAX_ITER,
            positive=False,
        )
    return coefs


def sklearn_weighted_path(Xs, yc, alphas, l1_ratio, penalty):
    """scikit-learn reference with penalty factors, which ``enet_path`` does not take.

    Per alpha: the ridge part ``b/2 sum_j pf_j w_j^2`` becomes ``n_features`` extra rows
    ``sqrt(n b pf_j) e_j``; the weighted l1 part becomes a plain one in ``v_j = pf_j w_j``
    (columns divided by ``pf_j``); unpenalized columns U are profiled out by projecting
    onto the orthogonal complement of ``X_U`` and refitted by least squares; and the
    lasso's ``1/(2 n_aug)`` scaling turns ``alpha * l1_ratio`` into
    ``alpha * l1_ratio * n / n_aug``.
    """
    n, p = Xs.shape
    pen = penalty > 0
    coefs = np.zeros((p, len(alphas)))
    for k, alpha in enumerate(alphas):
        a, b = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
        X_aug = np.vstack([Xs, np.diag(np.sqrt(n * b * penalty))])
        y_aug = np.concatenate([yc, np.zeros(p)])
        XP = X_aug[:, pen] / penalty[pen]
        if (~pen).any():
            Q, _ = np.linalg.qr(X_aug[:, ~pen])
            XP = XP - Q @ (Q.T @ XP)
            y_aug = y_aug - Q @ (Q.T @ y_aug)
        v = sklearn_path(XP, y_aug, np.array([a * n / (n + p)]), 1.0)[:, 0]
        coefs[pen, k] = v / penalty[pen]
        if (~pen).any():
            rest = yc - Xs[:, pen] @ coefs[pen, k]
            coefs[~pen, k] = np.linalg.lstsq(Xs[:, ~pen], rest, rcond=None)[0]
    return coefs


def distance_bound(G, alpha, l1_ratio, penalty, yty, support):
    """Bound on ``||w_a - w_b||_2`` for two solutions within ``SOLVER_TOL`` (module doc).

    ``mu`` is taken on ``support`` (the union of the two solutions' supports): with
    ``n_features > n_samples`` the lasso is only strongly convex on small supports.
    """
    if not support.any():
        return 2.0 * np.sqrt(2.0 * (SOLVER_TOL + ROUNDING) * yty)
    G_ss = G[np.ix_(support, support)]
    mu = np.linalg.eigvalsh(G_ss)[0] + alpha * (1.0 - l1_ratio) * penalty[support].min()
    assert mu > 0, "the comparison needs a strongly convex restricted problem"
    return 2.0 * np.sqrt(2.0 * (SOLVER_TOL + ROUNDING) * yty / mu)


def assert_paths_close(coefs_a, coefs_b, G, alphas, l1_ratio, penalty, yty):
    for k, alpha in enumerate(alphas):
        support = (coefs_a[:, k] != 0) | (coefs_b[:, k] != 0)
        bound = distance_bound(G, alpha, l1_ratio, penalty, yty, support)
        dist = np.linalg.norm(coefs_a[:, k] - coefs_b[:, k])
        assert dist <= bound, f"alpha[{k}]={alpha:.3g}: |dw| = {dist:.3g} > {bound:.3g}"


def numpy_gap(G, xty, yty, w, alpha, l1_ratio, penalty):
    """The duality gap of the module docstring, written again in numpy."""
    a, b = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
    grad = xty - G @ w
    rr = yty - 2.0 * xty @ w + w @ G @ w
    ry = yty - xty @ w
    quad = rr + b * np.sum(penalty * w**2)
    pen = penalty > 0
    nu = np.max(np.abs(grad[pen] - b * penalty[pen] * w[pen]) / penalty[pen])
    s = min(1.0, a / nu) if nu > 0 else 1.0
    primal = 0.5 * quad + a * np.sum(penalty * np.abs(w))
    dual = -0.5 * s**2 * quad + s * ry
    return primal - dual


# ---------------------------------------------------------------------------------------
# against scikit-learn


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.1])
def test_gram_path_matches_sklearn(l1_ratio):
    X, y = make_problem(0, 120, 40)
    Xs, yc, _, _ = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(40)
    alphas = alpha_grid(alpha_max(xty, l1_ratio, penalty))

    coefs, gaps, n_iters = run_gram(G, xty, yty, alphas, l1_ratio, penalty)

    assert (n_iters < MAX_ITER).all()
    assert_paths_close(
        coefs, sklearn_path(Xs, yc, alphas, l1_ratio), G, alphas, l1_ratio, penalty, yty
    )
    # The path must go somewhere: a test on an all-zero path would prove nothing.
    assert (coefs[:, -1] != 0).sum() >= 10


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("shape", [(150, 30), (60, 300)], ids=["n>p", "p>n"])
def test_data_path_matches_sklearn(l1_ratio, shape):
    X, y = make_problem(1, *shape)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(shape[1])
    # Stop at 1e-2 alpha_max with p > n: further down, the lasso interpolates and its
    # minimizer is no longer pinned down well enough to compare coefficients.
    eps = 1e-3 if shape[0] > shape[1] else 1e-2
    alphas = alpha_grid(alpha_max(xty, l1_ratio, penalty), eps=eps)
    rows = np.arange(shape[0], dtype=np.int64)

    coefs, _, n_iters = run_data(X, y, rows, x_mean, x_scale, y.mean(), alphas, l1_ratio, penalty)

    assert (n_iters < MAX_ITER).all()
    assert_paths_close(
        coefs, sklearn_path(Xs, yc, alphas, l1_ratio), G, alphas, l1_ratio, penalty, yty
    )
    assert (coefs[:, -1] != 0).sum() >= 10


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("with_unpenalized", [False, True])
def test_penalty_factors_match_transformed_sklearn(l1_ratio, with_unpenalized):
    X, y = make_problem(2, 100, 20)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.random.default_rng(3).uniform(0.3, 3.0, 20)
    if with_unpenalized:
        penalty[[2, 11]] = 0.0
    alphas = alpha_grid(alpha_max(xty, l1_ratio, penalty), n_alphas=12)
    rows = np.arange(100, dtype=np.int64)

    reference = sklearn_weighted_path(Xs, yc, alphas, l1_ratio, penalty)
    coefs_gram, _, _ = run_gram(G, xty, yty, alphas, l1_ratio, penalty)
    coefs_data, _, _ = run_data(X, y, rows, x_mean, x_scale, y.mean(), alphas, l1_ratio, penalty)

    assert_paths_close(coefs_gram, reference, G, alphas, l1_ratio, penalty, yty)
    assert_paths_close(coefs_data, reference, G, alphas, l1_ratio, penalty, yty)


# ---------------------------------------------------------------------------------------
# invariants that need no reference


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("solver", ["gram", "data"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.7, 0.1])
def test_all_zero_at_alpha_max_and_one_enters_below(solver, l1_ratio, warm):
    X, y = make_problem(4, 80, 25)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    # Draw penalty factors until the kernel's threshold alpha_max * l1_ratio * pf_j
    # rounds below |c_j|: the case where a coefficient of ~1e-16 could appear.
    rng = np.random.default_rng(5)
    for _ in range(1000):
        penalty = rng.uniform(0.5, 2.0, 25)
        a_max = alpha_max(xty, l1_ratio, penalty)
        first = np.argmax(np.abs(xty) / penalty)
        if (a_max * l1_ratio) * penalty[first] < abs(xty[first]):
            break
    else:
        pytest.fail("no penalty draw rounds the threshold below |c_j|")
    # Just below alpha_max only the feature attaining it may enter; 1e-6 below makes
    # its coefficient ~1e-6 * |c_j|, far from rounding yet before a second one enters.
    alphas = np.array([a_max, a_max * (1.0 - 1e-6)])

    # A warm start far from zero makes coordinate descent itself walk every coefficient
    # to zero, through thresholds compared with gradients that carry rounding.
    coef = rng.standard_normal(25) if warm else np.zeros(25)

    if solver == "gram":
        coefs, gaps, n_iters = run_gram(G, xty, yty, alphas, l1_ratio, penalty, coef=coef)
    else:
        coefs, gaps, n_iters = run_data(
            X,
            y,
            np.arange(80, dtype=np.int64),
            x_mean,
            x_scale,
            y.mean(),
            alphas,
            l1_ratio,
            penalty,
            coef=coef,
        )

    # Exactly zero, not ~1e-16.
    assert np.all(coefs[:, 0] == 0.0)
    assert (n_iters[0] > 0) == warm
    assert np.flatnonzero(coefs[:, 1]).tolist() == [first]
    assert np.sign(coefs[first, 1]) == np.sign(xty[first])


@pytest.mark.parametrize("solver", ["gram", "data"])
def test_unpenalized_feature_is_fitted_at_alpha_max(solver):
    X, y = make_problem(6, 90, 15)
    # Feature 0 drives y, and is unpenalized.
    y = y + 3.0 * (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(15)
    penalty[0] = 0.0
    # Far above alpha_max of the penalized features, whatever feature 0 explains.
    alphas = np.array([100.0, 10.0]) * alpha_max(xty, 1.0, penalty)

    if solver == "gram":
        coefs, _, _ = run_gram(G, xty, yty, alphas, 1.0, penalty)
    else:
        coefs, _, _ = run_data(
            X, y, np.arange(90, dtype=np.int64), x_mean, x_scale, y.mean(), alphas, 1.0, penalty
        )

    assert np.all(coefs[1:] == 0.0)
    # Alone in the model, feature 0 takes its least-squares coefficient c_0 / G_00; the
    # tolerance is the coordinate error allowed by a gap of (SOLVER_TOL + ROUNDING) yty
    # in a problem with curvature G_00 along it.
    expected = xty[0] / G[0, 0]
    np.testing.assert_allclose(
        coefs[0], expected, rtol=0, atol=np.sqrt(2 * (SOLVER_TOL + ROUNDING) * yty / G[0, 0])
    )
    assert abs(expected) > 1.0


@pytest.mark.parametrize("solver", ["gram", "data"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.3])
def test_kkt_conditions_and_dual_gap_along_the_path(solver, l1_ratio):
    X, y = make_problem(7, 70, 120 if solver == "data" else 40)
    n, p = X.shape
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.random.default_rng(8).uniform(0.2, 2.0, p)
    alphas = alpha_grid(alpha_max(xty, l1_ratio, penalty), n_alphas=40)

    if solver == "gram":
        coefs, gaps, n_iters = run_gram(G, xty, yty, alphas, l1_ratio, penalty)
    else:
        coefs, gaps, n_iters = run_data(
            X, y, np.arange(n, dtype=np.int64), x_mean, x_scale, y.mean(), alphas, l1_ratio, penalty
        )

    assert (n_iters < MAX_ITER).all()
    assert np.all(gaps <= SOLVER_TOL * yty)
    for k, alpha in enumerate(alphas):
        w = coefs[:, k]
        a, b = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
        # KKT, as the exact coordinate-descent step t_j from w: the objective along
        # coordinate j is (G_jj + b pf_j)-strongly convex and minimized at w_j + t_j, so
        # (G_jj + b pf_j) t_j^2 / 2 <= P(w) - P* <= gap (+ rounding).
        curvature = np.diag(G) + b * penalty
        z = xty - G @ w + np.diag(G) * w
        step = np.sign(z) * np.maximum(np.abs(z) - a * penalty, 0.0) / curvature - w
        allowed = np.sqrt(2.0 * (max(gaps[k], 0.0) + ROUNDING * yty) / curvature)
        assert np.all(np.abs(step) <= allowed), f"KKT violated at alpha[{k}]"
        # The returned gap is the gap of the returned coefficients, up to the rounding
        # of two evaluations of terms of size yty.
        assert (
            abs(gaps[k] - numpy_gap(G, xty, yty, w, alpha, l1_ratio, penalty))
            <= 10 * ROUNDING * yty
        )


@pytest.mark.parametrize("solver", ["gram", "data"])
def test_unconverged_alphas_report_max_iter_and_their_true_gap(solver):
    X, y = make_problem(9, 60, 30, rho=0.95)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(30)
    alphas = alpha_grid(alpha_max(xty, 1.0, penalty), n_alphas=10)
    coef = np.zeros(30)

    if solver == "gram":
        coefs, gaps, n_iters = cd_gram_path(G, xty, yty, alphas, 1.0, penalty, coef, SOLVER_TOL, 2)
    else:
        coefs, gaps, n_iters = cd_data_path(
            np.asfortranarray(X),
            y,
            np.arange(60, dtype=np.int64),
            x_mean,
            x_scale,
            float(y.mean()),
            alphas,
            1.0,
            penalty,
            coef,
            SOLVER_TOL,
            2,
        )

    stopped = n_iters == 2
    assert stopped.any()
    assert np.all(gaps[stopped] > SOLVER_TOL * yty)
    for k in np.flatnonzero(stopped):
        # Same rounding argument as in the KKT test; the gaps here are ~1e-3 yty, so
        # the relative part of this check dominates.
        np.testing.assert_allclose(
            gaps[k],
            numpy_gap(G, xty, yty, coefs[:, k], alphas[k], 1.0, penalty),
            rtol=1e-9,
            atol=10 * ROUNDING * yty,
        )


@pytest.mark.parametrize("solver", ["gram", "data"])
def test_warm_start_is_mutated_and_resumes_converged(solver):
    X, y = make_problem(10, 80, 20)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(20)
    alphas = alpha_grid(alpha_max(xty, 0.5, penalty), n_alphas=15)
    rows = np.arange(80, dtype=np.int64)
    coef = np.zeros(20)

    def run(alphas_, coef_):
        if solver == "gram":
            return run_gram(G, xty, yty, alphas_, 0.5, penalty, coef=coef_)
        return run_data(X, y, rows, x_mean, x_scale, y.mean(), alphas_, 0.5, penalty, coef=coef_)

    coefs, _, _ = run(alphas, coef)
    np.testing.assert_array_equal(coef, coefs[:, -1])
    again, _, n_iters = run(alphas[-1:], coef.copy())
    assert n_iters[0] == 0
    np.testing.assert_array_equal(again[:, 0], coefs[:, -1])


def test_data_path_equals_gram_path():
    X, y = make_problem(11, 200, 50)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.random.default_rng(12).uniform(0.5, 2.0, 50)
    penalty[7] = 0.0
    alphas = alpha_grid(alpha_max(xty, 0.8, penalty))

    coefs_gram, _, _ = run_gram(G, xty, yty, alphas, 0.8, penalty)
    coefs_data, _, _ = run_data(
        X, y, np.arange(200, dtype=np.int64), x_mean, x_scale, y.mean(), alphas, 0.8, penalty
    )

    assert_paths_close(coefs_data, coefs_gram, G, alphas, 0.8, penalty, yty)
    assert (coefs_gram[:, -1] != 0).sum() >= 10


def test_data_path_nan_is_mean_imputation_on_training_rows():
    rng = np.random.default_rng(13)
    X, y = make_problem(13, 160, 60)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 5] = 4.0  # constant: zero scale
    X[:, 9] = np.nan  # nothing observed
    # A fold: training rows in no particular order; NaN outside them must not matter.
    rows = rng.permutation(160)[:120].astype(np.int64)
    X_train = X[rows]
    observed = ~np.isnan(X_train)
    x_mean = np.where(observed, X_train, 0.0).sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
    X_imputed = np.where(np.isnan(X_train), x_mean, X_train)
    x_scale = X_imputed.std(axis=0)
    Xs = np.divide(X_imputed - x_mean, x_scale, out=np.zeros_like(X_imputed), where=x_scale > 0)
    y_mean = y[rows].mean()
    yc = y[rows] - y_mean
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(60)
    alphas = alpha_grid(alpha_max(xty, 0.9, penalty))
    coef = np.zeros(60)
    coef[[5, 9]] = 1.0  # a warm start on features that cannot enter is reset to zero

    coefs, gaps, n_iters = run_data(
        X, y, rows, x_mean, x_scale, y_mean, alphas, 0.9, penalty, coef=coef
    )

    assert np.all(np.isfinite(coefs)) and np.all(np.isfinite(gaps))
    assert np.all(coefs[[5, 9]] == 0.0)
    assert (n_iters < MAX_ITER).all()
    coefs_gram, _, _ = run_gram(G, xty, yty, alphas, 0.9, penalty)
    assert_paths_close(coefs, coefs_gram, G, alphas, 0.9, penalty, yty)
    coefs_imputed, _, _ = run_data(
        X_imputed,
        y[rows],
        np.arange(120, dtype=np.int64),
        x_mean,
        x_scale,
        y_mean,
        alphas,
        0.9,
        penalty,
    )
    assert_paths_close(coefs, coefs_imputed, G, alphas, 0.9, penalty, yty)
    assert (coefs[:, -1] != 0).sum() >= 10


_PLAIN_PYTHON_RUN = """
import sys
import numpy as np
from l1select._kernels import data as K, gram

# Shrunk so that a small problem reaches the rare branches: a Gram cache that fills up
# and starts over, active sets too large for it (sweeps on the data instead), frequent
# Newton steps, and full passes over the data at every screening. (Each constant is set in
# the module that reads it.)
K._GRAM_CACHE_MAX = int(sys.argv[2])
gram._NEWTON_EVERY = 2
K._REFRESH_FRACTION = 0.0
data = np.load(sys.argv[1])
out = K.cd_data_path(
    data["X"], data["y"], data["rows"], data["x_mean"], data["x_scale"], float(data["y_mean"]),
    data["alphas"], float(data["l1_ratio"]), data["penalty"], np.zeros(data["X"].shape[1]),
    float(data["tol"]), 100_000,
)
np.save(sys.argv[3], out[0])
"""


@pytest.mark.slow
@pytest.mark.parametrize("cache_max", [3, 4096])
def test_data_path_as_plain_python_through_its_rare_branches(tmp_path, cache_max):
    """``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (house style); there the
    module constants can be shrunk, which sends cd_data_path down the branches that
    realistic sizes reach only at thousands of features. Same path as the compiled run,
    within the distance bound."""
    X, y = make_problem(14, 30, 12)
    Xs, yc, x_mean, x_scale = standardize(X, y)
    G, xty, yty = gram_inputs(Xs, yc)
    penalty = np.ones(12)
    penalty[4] = 0.0
    l1_ratio = 0.7
    alphas = alpha_grid(alpha_max(xty, l1_ratio, penalty), n_alphas=6, eps=1e-2)
    rows = np.arange(30, dtype=np.int64)
    np.savez(
        tmp_path / "problem.npz",
        X=np.asfortranarray(X),
        y=y,
        rows=rows,
        x_mean=x_mean,
        x_scale=x_scale,
        y_mean=y.mean(),
        alphas=alphas,
        l1_ratio=l1_ratio,
        penalty=penalty,
        tol=SOLVER_TOL,
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(repo)}
    subprocess.run(
        [
            sys.executable,
            "-c",
            _PLAIN_PYTHON_RUN,
            str(tmp_path / "problem.npz"),
            str(cache_max),
            str(tmp_path / "coefs.npy"),
        ],
        check=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    coefs_python = np.load(tmp_path / "coefs.npy")

    coefs, _, _ = run_data(X, y, rows, x_mean, x_scale, y.mean(), alphas, l1_ratio, penalty)

    assert_paths_close(coefs_python, coefs, G, alphas, l1_ratio, penalty, yty)
    assert (coefs[:, -1] != 0).sum() >= 5


def test_the_ahead_of_time_gram_kernel_equals_numbas_bit_for_bit():
    """The AOT module is the same function compiled by the same compiler: identical bits.
    (Built on first use; where it cannot be built, gram_path is numba's dispatcher itself.)"""
    from l1select import _aot

    kernel = _aot.gram_path()
    rng = np.random.default_rng(21)
    n, p = 200, 30
    Z = rng.normal(size=(n, p))
    Z = (Z - Z.mean(0)) / Z.std(0)
    y = Z[:, :4] @ np.array([2.0, -1.0, 0.5, 0.25]) + rng.normal(size=n)
    y -= y.mean()
    gram, xty, yty = Z.T @ Z / n, Z.T @ y / n, float(y @ y) / n
    pf = np.ones(p)
    pf[3] = 0.0  # an unpenalized feature: the refit path too
    alphas = alpha_grid(alpha_max(xty, 0.7, pf), n_alphas=20)
    got = kernel(gram, xty, yty, alphas, 0.7, pf, np.zeros(p), 1e-10, 10000)
    want = cd_gram_path(gram, xty, yty, alphas, 0.7, pf, np.zeros(p), 1e-10, 10000)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("route", "n", "p"), [("gram", 200, 6), ("data", 40, 60)])
def test_a_plain_fit_does_not_start_numba(tmp_path, route, n, p):
    """Start-up: with the AOT modules in place a plain fit, narrow (the Gram route) or wide
    (the data-matrix route), imports neither numba nor scipy."""
    from l1select import _aot
    from l1select._kernels.data import cd_data_path

    kernel = _aot.gram_path() if route == "gram" else _aot.data_kernels()[1]
    if kernel in (cd_gram_path, cd_data_path):
        pytest.skip("the AOT module cannot be built here (no C compiler or numba.pycc)")
    from tests.conftest import make_regression, write_csv

    X, y, _ = make_regression(n=n, p=p, seed=3)
    path = write_csv(tmp_path / "d.csv", X, y)
    code = ("import sys\nfrom l1select.pipeline import select_features\n"
            "from l1select.types import FitParams\n"
            f"r = select_features({str(path)!r}, FitParams(target='y', n_alphas=10))\n"
            "print(r.engine, sorted(m for m in ('numba', 'scipy', 'sklearn', 'pandas', "
            "'matplotlib', 'dask', 'yaml') if m in sys.modules))\n")
    assert last_line(code) == f"{route} []"


def test_the_aot_module_name_follows_the_numba_install(monkeypatch):
    # The AOT module is rebuilt when numba changes: its name hashes numba's version file.
    from l1select import _aot

    name = _aot._module_name()
    assert name is not None and name.startswith("_gram_aot_")
    monkeypatch.setattr(_aot, "_numba_version", lambda: b"another numba")
    assert _aot._module_name() != name


def test_finding_the_aot_module_imports_neither_numba_nor_the_email_parser():
    # importlib.metadata imports the email parser (20-35 ms); numba's import is 0.4 s.
    code = ("import sys\nimport l1select._aot as a\nassert a._numba_version()\n"
            "print(sorted(m for m in ('numba', 'email.parser', 'importlib.metadata') "
            "if m in sys.modules))\n")
    assert last_line(code) == "[]"


def _wide_problem(seed: int, n: int = 120, p: int = 3000):
    rng = np.random.default_rng(seed)
    X = np.asfortranarray(rng.normal(size=(n, p)))
    X[rng.random(size=(n, p)) < 0.01] = np.nan  # missing values: the kernels' other branch
    beta = np.zeros(p)
    beta[:12] = rng.normal(size=12)
    y = np.nan_to_num(X) @ beta + rng.normal(size=n)
    rows = np.sort(rng.choice(n, size=n - n // 5, replace=False)).astype(np.int64)
    return X, y, rows


def test_the_ahead_of_time_data_kernels_equal_numbas_bit_for_bit():
    """The wide-data solver's AOT module: the same functions, the same compiler, the same
    bits (built on first use; where it cannot be built, data_kernels are numba's)."""
    from l1select import _aot
    from l1select._kernels.data import cd_data_path, data_moments

    moments, path = _aot.data_kernels()
    X, y, rows = _wide_problem(5)
    mean, std = moments(X, rows)
    want_mean, want_std = data_moments(X, rows)
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)
    p = X.shape[1]
    pf = np.ones(p)
    pf[7] = 0.0  # an unpenalized feature
    alphas = np.geomspace(1.0, 0.01, 25)
    y_mean = float(y[rows].mean())
    for l1_ratio in (1.0, 0.5):
        got = path(X, y, rows, mean, std, y_mean, alphas, l1_ratio, pf, np.zeros(p), 1e-10, 10000)
        want = cd_data_path(X, y, rows, mean, std, y_mean, alphas, l1_ratio, pf, np.zeros(p),
                            1e-10, 10000)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_the_data_kernel_lets_other_threads_run_while_it_solves():
    """The folds' paths run side by side on threads: the kernel (AOT or numba's) must release
    the GIL. While it solves on one thread, this thread keeps running Python: it records when
    it ran, and some of those moments fall inside the kernel's call."""
    import threading
    import time

    from l1select import _aot

    moments, path = _aot.data_kernels()
    X, y, rows = _wide_problem(9, n=300, p=20000)
    mean, std = moments(X, rows)
    p = X.shape[1]
    span = []

    def solve():
        start = time.perf_counter()
        path(X, y, rows, mean, std, float(y[rows].mean()), np.geomspace(1.0, 0.01, 40), 1.0,
             np.ones(p), np.zeros(p), 1e-10, 10000)
        span.extend([start, time.perf_counter()])

    worker = threading.Thread(target=solve)
    seen = []
    worker.start()
    while worker.is_alive():
        seen.append(time.perf_counter())
    worker.join()
    start, end = span
    moments_seen = [start, *(t for t in seen if start < t < end), end]
    longest_pause = max(b - a for a, b in zip(moments_seen[:-1], moments_seen[1:], strict=True))
    # Held GIL: this loop stops for the whole call (it runs only for an instant before the
    # call takes the GIL and after it gives it back: one pause as long as the call). Released:
    # it runs all along, its pauses only the operating system's.
    assert longest_pause < 0.5 * (end - start), (longest_pause, end - start)


def test_the_data_module_is_named_for_this_processor(monkeypatch):
    # Compiled for the host's instruction set: another processor must not load it.
    from l1select import _aot

    name = _aot._module_name(_aot.DATA)
    if name is None:
        pytest.skip("no /proc/cpuinfo here: the data kernels stay numba's")
    monkeypatch.setattr(_aot, "_processor", lambda: b"another processor")
    assert _aot._module_name(_aot.DATA) not in (None, name)
    monkeypatch.setattr(_aot, "_processor", lambda: None)
    assert _aot._module_name(_aot.DATA) is None
    assert _aot._module_name(_aot.GRAM) is not None  # the Gram module is generic x86-64


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_data_solvers_one_pass_set_up_is_the_three_passes(warm):
    """From a cold start the set-up takes each column's scale, shadow and gradient in one
    pass; the numbers are those of the separate passes a warm start makes, bit for bit
    (run as Python: the compiled functions are these, with the same order of operations)."""
    from l1select._kernels import data as D

    rng = np.random.default_rng(5)
    n, p = 60, 30
    X = rng.standard_normal((n, p)) * rng.uniform(0.1, 50.0, p) + rng.uniform(-1e3, 1e3, p)
    X[rng.random((n, p)) < 0.05] = np.nan
    X[:, 3] = 7.0  # constant: all zero once standardized
    X[:, 8] = np.nan
    X[::2, 11] = np.nan  # observed on half the rows only
    X = np.asfortranarray(X)
    y = rng.standard_normal(n) * 3.0 + 1.0
    rows = np.sort(rng.choice(n, 45, replace=False)).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-missing column
        mean = np.nan_to_num(np.nanmean(X[rows], axis=0))
        scale = np.nan_to_num(np.nanstd(X[rows], axis=0))
    y_mean = float(y[rows].mean())
    coef = rng.standard_normal(p) * (rng.random(p) < 0.3) if warm else np.zeros(p)
    inv, has_nan, diag, yc, r, grad, shadow = D._data_start.py_func(
        X, y, rows, mean, scale, y_mean, coef.copy())
    # The passes one by one.
    inv_want = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    nan_want, diag_want = np.zeros(p, dtype=bool), np.zeros(p)
    shadow_want = np.empty((p, rows.size), dtype=np.float32)
    D._data_setup.py_func(X, rows, mean, inv_want, nan_want, diag_want, shadow_want)
    r_want = y[rows] - y_mean
    for j in np.flatnonzero((coef != 0) & (diag_want > 0)):
        D._col_axpy.py_func(X, rows, j, mean[j], inv_want[j], nan_want[j], coef[j], r_want)
    grad_want = D._data_full_grads.py_func(X, rows, mean, inv_want, nan_want, diag_want,
                                           r_want)
    np.testing.assert_array_equal(inv, inv_want)
    np.testing.assert_array_equal(has_nan, nan_want)
    np.testing.assert_array_equal(diag, diag_want)
    np.testing.assert_array_equal(r, r_want)
    np.testing.assert_array_equal(grad, grad_want)
    np.testing.assert_array_equal(shadow, shadow_want)
    # The shadow is the standardized rows in float32, 0 where missing or constant.
    Z = (X[rows] - mean) * inv_want
    Z[np.isnan(Z)] = 0.0
    Z[:, diag_want == 0] = 0.0
    np.testing.assert_array_equal(shadow, Z.T.astype(np.float32))
    assert diag[3] == diag[8] == 0.0 and has_nan[8] and has_nan[11] and grad[3] == 0.0

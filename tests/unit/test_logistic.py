"""The binomial solver against scikit-learn's ``LogisticRegression`` (saga, an unrelated
stochastic solver) and against invariants that need no reference: KKT at every alpha, zero at
alpha_max, integer weights equal duplicated rows, flipping the positive class negates every
coefficient, separable data end the path cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from l1select.solve.logistic import (
    alpha_max,
    fit_path,
    fold_measure,
    make_design,
    standardize_rows,
    weighted_auc,
)

# The solver's own stopping threshold in these tests (max H_jj d_j² per sweep): far below the
# tolerances asserted, so what is compared is the optimum, not where a solver stopped.
TOL = 1e-18
MAX_ITER = 100_000


def make_binary(n=300, p=8, seed=0, missing=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 1.0
    X[:, 1] += X[:, 0]  # a correlated pair
    beta = np.zeros(p)
    beta[[0, 2, 4]] = [1.2, -0.8, 0.5]
    Z = (X - X.mean(0)) / X.std(0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(Z @ beta - 0.4)))).astype(float)
    if missing:
        X = np.where(rng.random(X.shape) < missing, np.nan, X)
    return make_design(X), y


def _path(X, y, alphas, l1_ratio=1.0, w=None, penalty=None, rows=None, **kw):
    rows = np.arange(y.size) if rows is None else rows
    return fit_path(X, y, w, rows, np.asarray(alphas, dtype=float), l1_ratio, penalty, True,
                    TOL, MAX_ITER, **kw)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_matches_sklearn_logistic_regression(l1_ratio):
    X, y = make_binary()
    n = y.size
    rows = np.arange(n)
    a_max = alpha_max(X, y, None, rows, l1_ratio, None, True)
    alphas = a_max * np.array([0.9, 0.3, 0.05, 0.005])
    fit = _path(X, y, alphas, l1_ratio)
    assert fit.converged and fit.n_solved == alphas.size
    X = X.dense()
    Z = (X - X.mean(0)) / X.std(0)
    for k, a in enumerate(alphas):
        ref = LogisticRegression(C=1.0 / (n * a), l1_ratio=l1_ratio, solver="saga",
                                 tol=1e-13, max_iter=1_000_000).fit(Z, y)
        # 1e-6 on the standardized scale: saga stops at tol=1e-13 on its coefficient change,
        # which leaves ~1e-8 of error; a wrong scaling, weight or penalty moves them by >1e-3.
        np.testing.assert_allclose(fit.coefs[:, k], ref.coef_[0], atol=1e-6)
        np.testing.assert_allclose(fit.intercepts[k], ref.intercept_[0], atol=1e-6)


def _kkt(X, y, w, fit, alphas, l1_ratio, pf):
    """Largest KKT violation at each alpha, relative to alpha (0 at an exact optimum)."""
    n = y.size
    wn = np.ones(n) if w is None else w * n / w.sum()
    Z = standardize_rows(X.dense(), None, fit.mean, fit.scale)
    out = []
    for k, a in enumerate(alphas):
        b = fit.coefs[:, k]
        p = 1.0 / (1.0 + np.exp(-(Z @ b + fit.intercepts[k])))
        g = Z.T @ (wn * (y - p)) / n - a * (1 - l1_ratio) * pf * b  # minus the smooth gradient
        viol = [abs(float(np.sum(wn * (y - p)) / n))]  # the intercept
        for j in range(b.size):
            if b[j] != 0:
                viol.append(abs(g[j] - a * l1_ratio * pf[j] * np.sign(b[j])))
            else:
                viol.append(max(abs(g[j]) - a * l1_ratio * pf[j], 0.0))
        out.append(max(viol) / a)
    return np.array(out)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
def test_kkt_at_every_alpha_with_weights_missing_values_and_penalty_factors(l1_ratio):
    X, y = make_binary(n=250, p=10, seed=3, missing=0.05)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.2, 3.0, size=y.size)
    pf = np.ones(10)
    pf[3] = 0.0  # forced: in the model at every alpha
    pf[5] = 2.5
    rows = np.arange(y.size)
    a_max = alpha_max(X, y, w, rows, l1_ratio, pf, True)
    alphas = np.geomspace(a_max, a_max * 1e-3, 30)
    fit = _path(X, y, alphas, l1_ratio, w=w, penalty=pf)
    assert fit.converged
    # At alpha_max only the forced feature is in; just below it a penalized one enters.
    assert np.flatnonzero(fit.coefs[:, 0]).tolist() == [3]
    below = _path(X, y, [a_max * 0.99], l1_ratio, w=w, penalty=pf)
    assert np.count_nonzero(below.coefs[:, 0]) > 1
    # With the solver run to 1e-18, the optimality conditions hold to ~1e-7 of alpha (the
    # change per sweep bounds the gradient error by about its square root).
    assert _kkt(X, y, w, fit, alphas, l1_ratio, pf).max() < 1e-6


def test_integer_weights_equal_duplicated_rows():
    X, y = make_binary(n=120, p=6, seed=5)
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 4, size=y.size)
    counts[:2] = 1
    rows = np.arange(y.size)
    a_max = alpha_max(X, y, counts.astype(float), rows, 1.0, None, True)
    alphas = a_max * np.array([0.5, 0.1, 0.02])
    weighted = _path(X, y, alphas, w=counts.astype(float))
    rep = np.repeat(rows, counts)
    Xd, yd = make_design(X.dense(rep)), y[rep]
    assert a_max == pytest.approx(alpha_max(Xd, yd, None, np.arange(yd.size), 1.0, None, True),
                                  rel=1e-12)
    dup = _path(Xd, yd, alphas)
    # Same optimum, two solvers' last digits: the weighted and duplicated problems are the
    # same function summed in a different order.
    np.testing.assert_allclose(weighted.coefs, dup.coefs, atol=1e-8)
    np.testing.assert_allclose(weighted.intercepts, dup.intercepts, atol=1e-8)
    np.testing.assert_allclose(weighted.mean, dup.mean, rtol=1e-12)
    np.testing.assert_allclose(weighted.std, dup.std, rtol=1e-12)


def test_flipping_the_positive_class_negates_every_coefficient():
    X, y = make_binary(seed=7)
    rows = np.arange(y.size)
    a = alpha_max(X, y, None, rows, 1.0, None, True)
    assert a == pytest.approx(alpha_max(X, 1 - y, None, rows, 1.0, None, True), rel=1e-12)
    alphas = a * np.array([0.5, 0.05])
    one, other = _path(X, y, alphas), _path(X, 1 - y, alphas)
    assert np.count_nonzero(one.coefs[:, -1]) >= 3
    np.testing.assert_allclose(one.coefs, -other.coefs, atol=1e-9)  # rounding of two solves
    np.testing.assert_allclose(one.intercepts, -other.intercepts, atol=1e-9)


def test_separable_data_stop_the_path_when_saturated():
    rng = np.random.default_rng(4)
    raw = rng.normal(size=(100, 4))
    y = (raw[:, 0] > 0).astype(float)
    X = make_design(raw)
    rows = np.arange(100)
    a = alpha_max(X, y, None, rows, 1.0, None, True)
    alphas = np.geomspace(a, a * 1e-6, 100)
    fit = fit_path(X, y, None, rows, alphas, 1.0, None, True, 1e-10, MAX_ITER,
                   stop_saturated=True)
    assert 1 < fit.n_solved < alphas.size
    assert fit.dev_ratio[fit.n_solved - 1] > 0.999
    assert np.all(np.isfinite(fit.coefs)) and fit.converged


def test_weighted_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.4).astype(float)
    score = np.round(rng.normal(size=200) + y, 1)  # rounded: many ties
    w = rng.uniform(0.1, 2.0, size=200)
    assert weighted_auc(y, w, score) == pytest.approx(roc_auc_score(y, score, sample_weight=w),
                                                      rel=1e-12)
    prob = 1.0 / (1.0 + np.exp(-score))[:, None]
    assert fold_measure("auc", y, w, prob, 0.5)[0] == pytest.approx(
        roc_auc_score(y, score, sample_weight=w), rel=1e-12)
    wrong = np.average((prob[:, 0] > 0.5) != (y == 1), weights=w)
    assert fold_measure("class", y, w, prob, 0.5)[0] == pytest.approx(wrong, rel=1e-12)


def test_roc_points_match_sklearn():
    from sklearn.metrics import roc_curve

    from l1select.solve.logistic import roc_points

    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.3).astype(float)
    prob = np.round(1.0 / (1.0 + np.exp(-(rng.normal(size=3000) + y))), 3)  # ties
    w = rng.uniform(0.5, 2.0, size=3000)
    roc = roc_points(y, w, prob)
    assert roc["auc"] == pytest.approx(roc_auc_score(y, prob, sample_weight=w), rel=1e-12)
    fpr, tpr, _ = roc_curve(y, prob, sample_weight=w, drop_intermediate=False)
    assert len(roc["fpr"]) == 201  # thinned from the ~1000 distinct scores
    # Every kept point lies on scikit-learn's curve (same cumulative weights, to rounding).
    on = {(round(a, 12), round(b, 12)) for a, b in zip(fpr, tpr, strict=True)}
    assert all((round(a, 12), round(b, 12)) in on
               for a, b in zip(roc["fpr"], roc["tpr"], strict=True))

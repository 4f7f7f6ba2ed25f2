"""The whole fit against an independent scikit-learn computation on the same folds and alphas.

The reference fits a fresh ``SimpleImputer → StandardScaler → ElasticNet`` pipeline per fold and
per alpha (no warm starts, no shared code with l1select), so agreement checks the per-fold
imputation and standardization, the CV weighting, the SE, alpha_max and the back-transform.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv

# Both sides solve to a duality gap of ~1e-12 relative; 1e-6 relative leaves room for the
# different solvers' last digits while catching any real difference (a wrong fold, weighting,
# ddof or imputation shifts the curve by far more than 1e-6).
RTOL = 1e-6


def _reference(X, y, folds, alphas, l1_ratio):
    K = folds.max() + 1
    mse = np.empty((alphas.size, K))
    sizes = np.bincount(folds)
    for k in range(K):
        tr, te = folds != k, folds == k
        for i, a in enumerate(alphas):
            model = make_pipeline(
                SimpleImputer(strategy="mean"), StandardScaler(),
                ElasticNet(alpha=a, l1_ratio=l1_ratio, tol=1e-14, max_iter=1_000_000),
            )
            model.fit(X[tr], y[tr])
            mse[i, k] = np.mean((y[te] - model.predict(X[te])) ** 2)
    w = sizes / sizes.sum()
    mean = mse @ w
    se = np.sqrt(((mse - mean[:, None]) ** 2) @ w / (K - 1))
    return mean, se


def _full_fit(X, y, alpha, l1_ratio):
    imp, sc = SimpleImputer(strategy="mean"), StandardScaler()
    Xs = sc.fit_transform(imp.fit_transform(X))
    enet = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=1_000_000)
    enet.fit(Xs, y)
    coef = enet.coef_ / sc.scale_
    return coef, enet.intercept_ - coef @ sc.mean_, Xs


@pytest.mark.parametrize(
    ("l1_ratio", "missing", "shift"),
    [(1.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 0.08, 0.0), (0.3, 0.05, 50.0)],
)
def test_cv_curve_alphas_and_coefs_match_sklearn(tmp_path, l1_ratio, missing, shift):
    X, y, _ = make_regression(n=120, p=6, seed=3, missing=missing, shift=shift)
    folds = np.arange(y.size) % 4
    path = write_csv(tmp_path / "d.csv", X, y, {"fold": folds})
    params = FitParams(target="y", model="lasso" if l1_ratio == 1.0 else "elasticnet",
                       l1_ratios=(l1_ratio,), fold_column="fold", n_alphas=12, eps=1e-2,
                       rule="min")
    res = select_features(str(path), params)

    alphas = np.array([r["alpha"] for r in res.cv["path"]])
    # alpha_max on all rows: the smallest alpha that zeroes every coefficient.
    Xs = StandardScaler().fit_transform(SimpleImputer().fit_transform(X))
    a_max = np.max(np.abs(Xs.T @ (y - y.mean()))) / (y.size * l1_ratio)
    np.testing.assert_allclose(alphas[0], a_max, rtol=1e-12)  # same formula, float rounding
    np.testing.assert_allclose(alphas[-1], a_max * 1e-2, rtol=1e-12)

    mean, se = _reference(X, y, folds, alphas, l1_ratio)
    np.testing.assert_allclose([r["mean"] for r in res.cv["path"]], mean, rtol=RTOL)
    np.testing.assert_allclose([r["se"] for r in res.cv["path"]], se, rtol=RTOL)
    assert res.alpha["min"] == pytest.approx(alphas[np.argmin(mean)], rel=1e-12)

    coef, intercept, _ = _full_fit(X, y, res.alpha["chosen"], l1_ratio)
    got = np.array([f.coef for f in res.features])
    np.testing.assert_allclose(got, coef, rtol=RTOL, atol=1e-9 * np.abs(coef).max())
    assert res.intercept == pytest.approx(intercept, rel=RTOL)


def test_kkt_conditions_at_the_chosen_alpha(tmp_path):
    X, y, _ = make_regression(n=150, p=10, seed=5)
    path = write_csv(tmp_path / "d.csv", X, y)
    for l1_ratio in (1.0, 0.4):
        params = FitParams(target="y", model="lasso" if l1_ratio == 1.0 else "elasticnet",
                           l1_ratios=(l1_ratio,))
        res = select_features(str(path), params)
        a = res.alpha["chosen"]
        w = np.array([f.coef_std for f in res.features])
        Xs = StandardScaler().fit_transform(X)
        grad = Xs.T @ (y - y.mean() - Xs @ w) / y.size
        active = w != 0
        # Stationarity on the active set, subgradient bound off it. The solver stops at a
        # duality gap of 1e-10·var(y); the gradient error that leaves is ~1e-5 relative.
        np.testing.assert_allclose(
            grad[active], a * l1_ratio * np.sign(w[active]) + a * (1 - l1_ratio) * w[active],
            rtol=1e-5, atol=1e-6 * a)
        assert np.all(np.abs(grad[~active]) <= a * l1_ratio * (1 + 1e-6))


def test_back_transform_predicts_what_the_standardized_fit_predicts(tmp_path):
    X, y, _ = make_regression(n=100, p=5, seed=9, shift=1e3)
    path = write_csv(tmp_path / "d.csv", X, y)
    res = select_features(str(path), FitParams(target="y"))
    coef = np.array([f.coef for f in res.features])
    coef_std = np.array([f.coef_std for f in res.features])
    sc = StandardScaler().fit(X)
    original = res.intercept + X @ coef
    standardized = y.mean() + sc.transform(X) @ coef_std
    # Both are sums of the same ~1e3-sized terms: agreement to ~1e-12 relative of the scale.
    np.testing.assert_allclose(original, standardized, rtol=1e-9, atol=1e-9 * np.abs(y).max())


def test_nothing_selected_at_alpha_max_and_something_just_below(tmp_path):
    X, y, _ = make_regression(n=100, p=5, seed=1)
    path = write_csv(tmp_path / "d.csv", X, y)
    res = select_features(str(path), FitParams(target="y", n_alphas=30))
    a_max = res.alpha["alpha_max"]
    at = select_features(str(path), FitParams(target="y", alpha=a_max))
    below = select_features(str(path), FitParams(target="y", alpha=a_max * 0.99))
    assert at.selected == ()
    assert len(below.selected) >= 1
    assert res.cv["path"][0]["n_nonzero"] == 0


def test_no_standardize_matches_sklearn_on_raw_features(tmp_path):
    X, y, _ = make_regression(n=120, p=6, seed=4)
    folds = np.arange(y.size) % 3
    path = write_csv(tmp_path / "d.csv", X, y, {"fold": folds})
    res = select_features(str(path), FitParams(target="y", fold_column="fold", n_alphas=8,
                                               standardize=False, rule="min"))
    alphas = np.array([r["alpha"] for r in res.cv["path"]])
    a_max = np.max(np.abs((X - X.mean(0)).T @ (y - y.mean()))) / y.size
    np.testing.assert_allclose(alphas[0], a_max, rtol=1e-12)
    K = 3
    mse = np.empty((alphas.size, K))
    for k in range(K):
        tr, te = folds != k, folds == k
        for i, a in enumerate(alphas):
            m = ElasticNet(alpha=a, l1_ratio=1.0, tol=1e-14, max_iter=10**6).fit(X[tr], y[tr])
            mse[i, k] = np.mean((y[te] - m.predict(X[te])) ** 2)
    w = np.bincount(folds) / y.size
    np.testing.assert_allclose([r["mean"] for r in res.cv["path"]], mse @ w, rtol=RTOL)


def test_coef_path_holds_the_chosen_fit(tmp_path):
    X, y, _ = make_regression(n=100, p=6, seed=12)
    path = write_csv(tmp_path / "d.csv", X, y)
    res = select_features(str(path), FitParams(target="y", n_alphas=20))
    cp = res.coef_path
    i = cp["alphas"].index(res.alpha["chosen"])
    for f in res.features:
        got = cp["coefs"][f.name][i] if f.name in cp["coefs"] else 0.0
        assert got == f.coef  # the same numbers, not recomputed
    assert cp["intercept"][i] == pytest.approx(res.intercept, rel=1e-12)
    assert all(v == 0.0 for vals in cp["coefs"].values() for v in vals[:1])  # at alpha_max

"""The reference engine's binomial family (scikit-learn ``LogisticRegression``, saga, on
explicitly standardized folds) against the logistic engine (proximal Newton on the data
matrix): the same folds, grid, CV measures, coefficients and trust features."""

from __future__ import annotations

import numpy as np
import pytest

from l1select.errors import ConfigError, DataError
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.unit.test_binomial import make_binary, write

# Both solvers run to a coefficient-change tolerance of 1e-14 here. saga converges linearly
# and slowly, yet on these 200 × 6 problems the two agree to 5e-9 or better in every CV
# measure and 1e-10 in the chosen coefficients (measured); the tolerances below leave room
# for other BLAS and platforms (two features correlated at r ≈ 0.9997 agreed to 8e-7 only).
# A wrong fold, scaling, weight or intercept moves them by more than 1e-3.
TOL = 1e-14
CV_ATOL = 1e-7
COEF_ATOL = 1e-6


def fit(path, engine, **kw):
    return select_features(path, FitParams(target="y", engine=engine, tol=TOL,
                                           max_iter=1_000_000, **kw))


def both(path, **kw):
    return fit(path, "data", **kw), fit(path, "reference", **kw)


def curve(result):
    return np.array([(r["alpha"], r["mean"], r["se"], r["n_nonzero"])
                     for r in result.cv["path"]])


def assert_parity(a, b):
    assert b.params["engine"] == "reference" and b.params["family"] == "binomial"
    assert a.cv["metric"] == b.cv["metric"]
    ca, cb = curve(a), curve(b)
    assert ca.shape == cb.shape
    np.testing.assert_allclose(cb[:, 0], ca[:, 0], rtol=1e-12)  # the same grid
    np.testing.assert_allclose(cb[:, 1:3], ca[:, 1:3], atol=CV_ATOL)
    np.testing.assert_array_equal(cb[:, 3], ca[:, 3])
    assert b.alpha == pytest.approx(a.alpha, rel=1e-12)
    np.testing.assert_allclose([f.coef_std for f in b.features],
                               [f.coef_std for f in a.features], atol=COEF_ATOL)
    assert b.intercept == pytest.approx(a.intercept, abs=COEF_ATOL)
    for key in ("auc", "misclassification", "deviance", "deviance_explained"):
        assert b.cv[key] == pytest.approx(a.cv[key], abs=CV_ATOL)
    assert b.selected == a.selected
    assert [f.fold_frequency for f in b.features] == [f.fold_frequency for f in a.features]


@pytest.mark.parametrize("measure", ["deviance", "auc", "mse", "mae"])
def test_reference_matches_the_logistic_engine(tmp_path, measure):
    X, y = make_binary(n=200, p=6, seed=1)
    path = write(tmp_path / "b.csv", X, y)
    assert_parity(*both(path, measure=measure, n_alphas=20))


def test_elastic_net_with_weights_and_missing_values(tmp_path):
    X, y = make_binary(n=200, p=6, seed=2)
    X[np.random.default_rng(5).random(X.shape) < 0.05] = np.nan  # imputed per fold
    w = np.random.default_rng(6).uniform(0.2, 3.0, size=y.size)
    path = write(tmp_path / "b.csv", X, y, w=w)
    a, b = both(path, model="elasticnet", l1_ratios=(0.5, 0.9), weights="w", n_alphas=15)
    assert_parity(a, b)
    assert b.params["weights"] == "w"


def test_auto_family_with_the_reference_engine_fits_the_logistic_model(tmp_path):
    X, y = make_binary(n=200, p=6, seed=3)
    path = write(tmp_path / "b.csv", X, np.where(y == 1, "yes", "no"))
    b = fit(path, "reference", n_alphas=10)
    assert b.params["family"] == "binomial" and b.params["positive_class"] == "yes"
    assert "binary_target" not in {w.code for w in b.warnings}
    # A numeric target with more values still gets the linear model.
    lin = fit(write(tmp_path / "g.csv", X, X[:, 0] * 2.0 + 1.0), "reference", n_alphas=10)
    assert lin.params["family"] == "gaussian"


def test_trust_features_and_the_test_split_match(tmp_path):
    X, y = make_binary(n=200, p=6, seed=4)
    # An alternate of x0 (r ≈ 0.96: the alternates list it at the default 0.9).
    X[:, 5] = X[:, 0] + 0.3 * X[:, 0].std() * np.random.default_rng(7).normal(size=y.size)
    path = write(tmp_path / "b.csv", X, y)
    a, b = both(path, n_alphas=15, stability=4, refit="ols", test_size=0.25)
    assert_parity(a, b)
    assert b.stability["stable"] == a.stability["stable"]
    np.testing.assert_array_equal([f.stability for f in b.features],
                                  [f.stability for f in a.features])
    assert [f.alternates for f in b.features] == [f.alternates for f in a.features]
    assert any(f.alternates for f in b.features)
    assert b.refit["method"] == "logistic"
    # The unpenalized refit: L-BFGS against proximal Newton, both to a tight tolerance.
    np.testing.assert_allclose([f.coef_ols or 0.0 for f in b.features],
                               [f.coef_ols or 0.0 for f in a.features], atol=1e-5)
    assert b.intercept_ols == pytest.approx(a.intercept_ols, abs=1e-5)
    assert set(b.test) == {"n_rows", "deviance", "auc", "accuracy"}
    assert b.test["n_rows"] == a.test["n_rows"]
    for key in ("deviance", "auc", "accuracy"):
        assert b.test[key] == pytest.approx(a.test[key], abs=1e-6)


def test_penalty_factors_stay_usage_errors(tmp_path):
    X, y = make_binary(n=60, p=3, seed=6)
    path = write(tmp_path / "b.csv", X, y)
    with pytest.raises(ConfigError, match="reference engine"):
        fit(path, "reference", force=("x0",))


def test_a_single_class_training_fold_is_a_data_error(tmp_path):
    X, y = make_binary(n=60, p=3, seed=7)
    folds = np.where(y == 1, "a", "b")  # fold a's training rows are all of class 0
    path = write(tmp_path / "b.csv", X, y, fold=folds)
    with pytest.raises(DataError, match="CV fold 'a'.*only one class"):
        fit(path, "reference", fold_column="fold")

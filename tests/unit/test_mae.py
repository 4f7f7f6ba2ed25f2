"""``--measure mae`` for a numeric target: the held-out mean absolute error of each fold, in
the engines that hold the rows (data, reference), against a brute-force scikit-learn
computation per fold; the engines that keep only statistics refuse it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNet

from l1select.errors import ConfigError
from l1select.pipeline import select_features
from l1select.types import FitParams


def make_data(n=150, p=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 1.0
    # Heavy-tailed noise: the MAE and the MSE curves differ in shape.
    y = 2.0 * X[:, 0] - 1.0 * X[:, 1] + 0.5 * X[:, 2] + rng.standard_t(2, size=n)
    return X, y


def write(path, X, y, **extra):
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y
    for k, v in extra.items():
        df[k] = v
    df.to_csv(path, index=False, float_format="%.17g")
    return str(path)


def fit(path, **kw):
    return select_features(path, FitParams(target="y", tol=1e-14, **kw))


def brute_force_mae(X, y, folds, alphas, l1_ratio=1.0, w=None):
    """Per fold: the training rows (weighted-)standardized on their own, scikit-learn's
    ElasticNet at each alpha from scratch, the weighted MAE of the held-out rows; then
    glmnet's cvm and cvsd with the folds weighed by their weight."""
    w = np.ones(y.size) if w is None else w
    K = folds.max() + 1
    mat = np.empty((alphas.size, K))
    sizes = np.empty(K)
    for k in range(K):
        tr, te = folds != k, folds == k
        wt = w[tr] * tr.sum() / w[tr].sum()  # scaled to sum to the training rows
        mu = wt @ X[tr] / tr.sum()
        sd = np.sqrt(wt @ (X[tr] - mu) ** 2 / tr.sum())
        ym = wt @ y[tr] / tr.sum()
        Ztr, Zte = (X[tr] - mu) / sd, (X[te] - mu) / sd
        for i, a in enumerate(alphas):
            m = ElasticNet(alpha=a, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14,
                           max_iter=1_000_000).fit(Ztr, y[tr] - ym, sample_weight=wt)
            err = np.abs(y[te] - ym - Zte @ m.coef_)
            mat[i, k] = w[te] @ err / w[te].sum()
        sizes[k] = w[te].sum()
    f = sizes / sizes.sum()
    mean = mat @ f
    se = np.sqrt(((mat - mean[:, None]) ** 2) @ f / (K - 1))
    return mean, se


ALPHAS = (0.5, 0.2, 0.1, 0.05, 0.01)


@pytest.mark.parametrize("engine", ["data", "reference"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_mae_matches_brute_force_scikit_learn_per_fold(tmp_path, engine, l1_ratio):
    X, y = make_data()
    folds = np.random.default_rng(1).permutation(np.arange(y.size) % 4)
    path = write(tmp_path / "d.csv", X, y, fold=folds)
    model = {} if l1_ratio == 1.0 else {"model": "elasticnet", "l1_ratios": (l1_ratio,)}
    result = fit(path, fold_column="fold", alphas=ALPHAS, measure="mae", engine=engine,
                 **model)
    assert result.cv["metric"] == "mae" and result.params["measure"] == "mae"
    assert result.cv["r2"] is None  # R² is of the MSE
    mean, se = brute_force_mae(X, y, folds, np.array(ALPHAS), l1_ratio)
    got = np.array([(r["mean"], r["se"]) for r in result.cv["path"]])
    # Both sides solve to a duality gap of ~1e-14 relative: the coefficients agree to ~1e-7,
    # the errors as much. A squared error, a wrong fold or scaling moves them by > 1e-2.
    np.testing.assert_allclose(got[:, 0], mean, rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], se, rtol=1e-5)
    assert result.alpha["min"] == pytest.approx(ALPHAS[int(np.argmin(mean))])


def test_weighted_mae_on_the_reference_engine_matches_brute_force(tmp_path):
    X, y = make_data(seed=2)
    w = np.random.default_rng(3).uniform(0.2, 3.0, size=y.size)
    folds = np.random.default_rng(4).permutation(np.arange(y.size) % 3)
    path = write(tmp_path / "d.csv", X, y, fold=folds, w=w)
    result = fit(path, fold_column="fold", alphas=ALPHAS, measure="mae", engine="reference",
                 weights="w")
    mean, se = brute_force_mae(X, y, folds, np.array(ALPHAS), w=w)
    got = np.array([(r["mean"], r["se"]) for r in result.cv["path"]])
    # As above; unweighted folds or errors would move them by > 1e-2.
    np.testing.assert_allclose(got[:, 0], mean, rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], se, rtol=1e-5)


def test_auto_picks_the_data_engine_for_mae_and_both_engines_agree(tmp_path):
    X, y = make_data(seed=5)
    path = write(tmp_path / "d.csv", X, y)
    auto = fit(path, measure="mae", n_alphas=20)
    ref = fit(path, measure="mae", n_alphas=20, engine="reference")
    assert auto.params["engine"] == "data" and auto.cv["metric"] == "mae"
    a = np.array([r["mean"] for r in auto.cv["path"]])
    b = np.array([r["mean"] for r in ref.cv["path"]])
    # Two solvers to the same duality gap: the held-out errors agree to ~1e-8 relative.
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert auto.alpha["chosen"] == ref.alpha["chosen"]
    mse = fit(path, n_alphas=20)
    assert mse.cv["metric"] == "mse"
    assert not np.allclose(a, [r["mean"] for r in mse.cv["path"]])


@pytest.mark.parametrize("engine", ["gram", "dask"])
def test_statistics_engines_refuse_mae(tmp_path, engine):
    X, y = make_data()
    path = write(tmp_path / "d.csv", X, y)
    with pytest.raises(ConfigError, match=f"--engine {engine} keeps only.*--engine data or "
                                          "--engine reference"):
        fit(path, measure="mae", engine=engine)


@pytest.mark.parametrize("extra, what", [({"weights": "w"}, "--weights"),
                                         ({"group_categoricals": True},
                                          "--group-categoricals")])
def test_auto_with_mae_names_the_reference_engine_where_data_cannot(tmp_path, extra, what):
    X, y = make_data()
    path = write(tmp_path / "d.csv", X, y, w=np.ones(y.size))
    with pytest.raises(ConfigError, match=f"--measure mae with {what}.*--engine reference"):
        fit(path, measure="mae", **extra)

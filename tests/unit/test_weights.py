"""Observation weights in the gaussian family (glmnet's ``weights``): against scikit-learn's
``ElasticNet(sample_weight=...)`` per fold, integer weights against duplicated rows, and every
gaussian engine against the others."""

from __future__ import annotations

import numpy as np
import pytest

from l1select.errors import ConfigError, DataError
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv

ALPHAS = (0.8, 0.4, 0.2, 0.1, 0.05, 0.02, 0.01)


def _fit(path, engine="gram", **kw):
    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(engine=engine, **kw))


def _data(n=160, p=6, seed=3, missing=0.0):
    X, y, _ = make_regression(n=n, p=p, seed=seed, missing=missing)
    rng = np.random.default_rng(seed + 100)
    w = rng.uniform(0.0, 3.0, size=n)
    w[rng.random(n) < 0.1] = 0.0  # weight-0 rows count nothing
    fold = rng.permutation(np.arange(n) % 4)
    return X, y, w, fold


def _weighted_standardize(X, w):
    mu = np.average(X, axis=0, weights=w)
    sd = np.sqrt(np.average((X - mu) ** 2, axis=0, weights=w))
    return mu, sd


def _sklearn_cv(X, y, w, fold, alphas, l1_ratio):
    """Per fold: weighted standardization of the training rows, ElasticNet with
    sample_weight from scratch at every alpha, the weighted held-out MSE; folds weighed by
    their weight sums (glmnet's cvm and cvsd)."""
    from sklearn.linear_model import ElasticNet

    K = fold.max() + 1
    mse = np.empty((len(alphas), K))
    sums = np.empty(K)
    for k in range(K):
        tr, te = fold != k, fold == k
        mu, sd = _weighted_standardize(X[tr], w[tr])
        for i, a in enumerate(alphas):
            m = ElasticNet(alpha=a, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000)
            m.fit((X[tr] - mu) / sd, y[tr], sample_weight=w[tr])
            pred = m.predict((X[te] - mu) / sd)
            mse[i, k] = np.average((y[te] - pred) ** 2, weights=w[te])
        sums[k] = w[te].sum()
    cvm = mse @ (sums / sums.sum())
    cvsd = np.sqrt(((mse - cvm[:, None]) ** 2) @ (sums / sums.sum()) / (K - 1))
    return cvm, cvsd


@pytest.mark.parametrize("engine", ["gram", "reference"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_weighted_cv_and_coefficients_match_sklearn_sample_weight(tmp_path, engine, l1_ratio):
    X, y, w, fold = _data()
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w, "fold": fold})
    ours = _fit(path, engine, weights="w", fold_column="fold", alphas=ALPHAS,
                l1_ratios=(l1_ratio,), model="lasso" if l1_ratio == 1 else "elasticnet",
                rule="min")
    cvm, cvsd = _sklearn_cv(X, y, w, fold, ALPHAS, l1_ratio)
    # Both solvers stop at a duality gap of ~1e-10·var(y) or tighter; that leaves ~1e-8
    # relative in the fold MSEs. Unweighted standardization or fold sizes in place of fold
    # weights would move them by far more than 1e-6.
    np.testing.assert_allclose([r["mean"] for r in ours.cv["path"]], cvm, rtol=1e-6)
    np.testing.assert_allclose([r["se"] for r in ours.cv["path"]], cvsd, rtol=1e-6)

    from sklearn.linear_model import ElasticNet

    mu, sd = _weighted_standardize(X, w)
    m = ElasticNet(alpha=ours.alpha["chosen"], l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000)
    m.fit((X - mu) / sd, y, sample_weight=w)
    coef_std = np.array([f.coef_std for f in ours.features])
    # Same gap-based stop as above: ~1e-8 of the largest coefficient.
    np.testing.assert_allclose(coef_std, m.coef_, atol=1e-6 * np.abs(m.coef_).max())
    assert ours.intercept == pytest.approx(m.intercept_ - (m.coef_ / sd) @ mu, rel=1e-6)
    # alpha_max is where every coefficient is zero on the weighted problem.
    top = ElasticNet(alpha=ours.alpha["alpha_max"] * (1 + 1e-9), l1_ratio=l1_ratio, tol=1e-12)
    assert not top.fit((X - mu) / sd, y, sample_weight=w).coef_.any()
    below = ElasticNet(alpha=ours.alpha["alpha_max"] * 0.99, l1_ratio=l1_ratio, tol=1e-12)
    assert below.fit((X - mu) / sd, y, sample_weight=w).coef_.any()


@pytest.mark.parametrize("engine", ["gram", "reference"])
def test_integer_weights_equal_duplicated_rows(tmp_path, engine):
    X, y, _ = make_regression(n=90, p=5, seed=8, missing=0.05)
    rng = np.random.default_rng(8)
    w = rng.integers(0, 4, size=y.size)
    fold = np.arange(y.size) % 3  # a fold column keeps the copies of a row in its fold
    city = rng.choice(["n", "s", "e"], size=y.size)
    weighted = write_csv(tmp_path / "w.csv", X, y, {"city": city, "w": w, "fold": fold})
    rep = np.repeat(np.arange(y.size), w)
    dup = write_csv(tmp_path / "dup.csv", X[rep], y[rep], {"city": city[rep], "fold": fold[rep]})
    kw = dict(fold_column="fold", n_alphas=25, stability=None)
    a = _fit(weighted, engine, weights="w", **kw)
    b = _fit(dup, engine, **kw)
    # The same sums in another order: only the last bits differ.
    rtol = 1e-10
    np.testing.assert_allclose([r["alpha"] for r in a.cv["path"]],
                               [r["alpha"] for r in b.cv["path"]], rtol=rtol)
    np.testing.assert_allclose([r["mean"] for r in a.cv["path"]],
                               [r["mean"] for r in b.cv["path"]], rtol=rtol)
    np.testing.assert_allclose([r["se"] for r in a.cv["path"]],
                               [r["se"] for r in b.cv["path"]], rtol=rtol)
    assert [r["n_nonzero"] for r in a.cv["path"]] == [r["n_nonzero"] for r in b.cv["path"]]
    ca, cb = np.array([f.coef for f in a.features]), np.array([f.coef for f in b.features])
    np.testing.assert_allclose(ca, cb, rtol=rtol, atol=rtol * np.abs(cb).max())
    assert a.intercept == pytest.approx(b.intercept, rel=rtol)
    assert a.selected == b.selected
    for key in ("impute", "scale"):  # weighted imputation means and standard deviations
        np.testing.assert_allclose([f[key] for f in a.recipe["features"]],
                                   [f[key] for f in b.recipe["features"]], rtol=rtol)
    assert a.input["n_rows_used"] == y.size and b.input["n_rows_used"] == rep.size


def test_unit_weights_change_nothing_and_zero_weights_drop_rows(tmp_path):
    X, y, _ = make_regression(n=120, p=5, seed=4, missing=0.05)
    fold = np.arange(y.size) % 4
    w = np.ones(y.size)
    w[::7] = 0.0
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w, "one": np.ones(y.size), "fold": fold})
    keep = w > 0
    fewer = write_csv(tmp_path / "k.csv", X[keep], y[keep], {"fold": fold[keep]})
    kw = dict(fold_column="fold", n_alphas=20, exclude=("w", "one"))
    plain = _fit(path, **kw)
    ones = _fit(path, weights="one", **kw)
    zeros = _fit(path, weights="w", **kw)
    kept = _fit(fewer, **kw)
    # Weights of 1 change sums of n ones into sums of n weights: the last bits at most.
    for a, b in ((ones, plain), (zeros, kept)):
        np.testing.assert_allclose([r["mean"] for r in a.cv["path"]],
                                   [r["mean"] for r in b.cv["path"]], rtol=1e-10)
        np.testing.assert_allclose([f.coef for f in a.features],
                                   [f.coef for f in b.features], rtol=1e-10, atol=1e-12)
    assert zeros.input["n_rows_used"] == y.size  # rows are counted, weights weigh them


@pytest.mark.parametrize("case", [dict(), dict(test_size=0.3), dict(stability=3),
                                  dict(model="elasticnet", l1_ratios=(0.3, 0.9))])
def test_gram_matches_reference_with_weights(tmp_path, case):
    X, y, w, _ = _data(n=200, p=6, seed=5, missing=0.05)
    city = np.random.default_rng(1).choice(["north", "south", "east"], size=y.size)
    path = write_csv(tmp_path / "d.csv", X, y + (city == "north") * 2.0,
                     {"city": city, "w": w})
    a = _fit(path, "gram", weights="w", n_alphas=30, **case)
    b = _fit(path, "reference", weights="w", n_alphas=30, **case)
    # Both stop at a duality gap of tol·var(y) (tol 1e-10): ~1e-9 relative in the CV errors,
    # ~1e-7 of the largest coefficient (as in test_engines).
    np.testing.assert_allclose([r["alpha"] for r in a.cv["path"]],
                               [r["alpha"] for r in b.cv["path"]], rtol=1e-9)
    np.testing.assert_allclose([r["mean"] for r in a.cv["path"]],
                               [r["mean"] for r in b.cv["path"]], rtol=1e-6)
    np.testing.assert_allclose([r["se"] for r in a.cv["path"]],
                               [r["se"] for r in b.cv["path"]], rtol=1e-6)
    ca, cb = np.array([f.coef_std for f in a.features]), np.array([f.coef_std for f in b.features])
    np.testing.assert_allclose(ca, cb, rtol=1e-6, atol=1e-6 * np.abs(cb).max())
    assert [f["impute"] for f in a.recipe["features"]] == pytest.approx(
        [f["impute"] for f in b.recipe["features"]], rel=1e-12)
    if "test_size" in case:
        # Weighted test MSE and R² (against the test rows' weighted variance).
        assert a.test["mse"] == pytest.approx(b.test["mse"], rel=1e-6)
        assert a.test["r2"] == pytest.approx(b.test["r2"], rel=1e-6)
        assert a.test["n_rows"] == b.test["n_rows"]
    if "stability" in case:
        pa_ = [f.stability for f in a.features]
        assert pa_ == [f.stability for f in b.features]


def test_weighted_test_error_is_the_weighted_mse(tmp_path):
    X, y, w, _ = _data(n=150, p=4, seed=9)
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w})
    r = _fit(path, "reference", weights="w", alpha=0.05, test_size=0.3, seed=2)
    a = _fit(path, "gram", weights="w", alpha=0.05, test_size=0.3, seed=2)
    # Rebuild the test rows from the fold rule: the rows the training fit did not count.
    from l1select.folds import Grouper

    groups = Grouper(0, 2, 0.3, "none").groups(np.arange(y.size), None)[0]
    te = groups == 0
    pred = a.intercept + X[te] @ np.array([f.coef for f in a.features])
    mse = np.average((y[te] - pred) ** 2, weights=w[te])
    var = np.average((y[te] - np.average(y[te], weights=w[te])) ** 2, weights=w[te])
    # The gram engine gets it from the test rows' co-moments: rounding only.
    assert a.test["mse"] == pytest.approx(mse, rel=1e-10)
    assert a.test["r2"] == pytest.approx(1 - mse / var, rel=1e-10)
    assert r.test["mse"] == pytest.approx(mse, rel=1e-6)


def test_weight_errors(tmp_path):
    X, y, w, fold = _data(n=80, p=3)
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w, "fold": fold})
    with pytest.raises(ConfigError, match="--engine data does not take --weights"):
        _fit(path, "data", weights="w")
    bad = w.copy()
    bad[41] = -2.0
    neg = write_csv(tmp_path / "n.csv", X, y, {"w": bad})
    with pytest.raises(DataError, match="negative weight at line 43"):
        _fit(neg, weights="w")
    bad = w.copy()
    bad[fold == 2] = 0.0
    empty = write_csv(tmp_path / "e.csv", X, y, {"w": bad, "fold": fold})
    for engine in ("gram", "reference"):
        with pytest.raises(DataError, match="zero on every row of CV fold 3"):
            _fit(empty, engine, weights="w", fold_column="fold")
    zero = write_csv(tmp_path / "z.csv", X, y, {"w": np.zeros(y.size)})
    with pytest.raises(DataError, match="zero on every row used"):
        _fit(zero, weights="w")


def test_dask_equals_gram_with_weights(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed")
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y, w, _ = _data(n=400, p=5, seed=12, missing=0.05)
    folder = tmp_path / "parts"
    folder.mkdir()
    cols = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    table = pa.table({**cols, "y": y, "w": w})
    for i, lo in enumerate(range(0, y.size, 70)):  # partitions of uneven weight
        pq.write_table(table.slice(lo, 70), folder / f"part-{i:02d}.parquet")
    kw = dict(weights="w", n_alphas=20, test_size=0.2, stability=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        a = _fit(folder, "dask", scheduler=cluster.scheduler_address, **kw)
    b = _fit(folder, "gram", **kw)
    # The same statistics merged in another order: the last bits only (as test_dask).
    rtol = 1e-10
    np.testing.assert_allclose([r["mean"] for r in a.cv["path"]],
                               [r["mean"] for r in b.cv["path"]], rtol=rtol)
    np.testing.assert_allclose([r["se"] for r in a.cv["path"]],
                               [r["se"] for r in b.cv["path"]], rtol=rtol)
    np.testing.assert_allclose([f.coef for f in a.features], [f.coef for f in b.features],
                               rtol=rtol, atol=1e-12)
    assert a.test["mse"] == pytest.approx(b.test["mse"], rel=rtol)
    assert [f.stability for f in a.features] == [f.stability for f in b.features]
    assert a.input["n_rows_used"] == b.input["n_rows_used"]


def test_weighted_ols_refit_and_adaptive(tmp_path):
    from sklearn.linear_model import LinearRegression

    X, y, w, _ = _data(n=150, p=5, seed=6)
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w})
    r = _fit(path, weights="w", n_alphas=30, refit="ols", adaptive=True)
    sel = [int(n[1:]) for n in r.selected]
    ols = LinearRegression().fit(X[:, sel], y, sample_weight=w)
    got = {f.name: f.coef_ols for f in r.features}
    # Solved from the weighted Gram of the selected features: rounding only.
    np.testing.assert_allclose([got[f"x{j}"] for j in sel], ols.coef_, rtol=1e-9)
    assert r.intercept_ols == pytest.approx(ols.intercept_, rel=1e-9)
    assert r.penalty["adaptive"]["initial"] == "ols"  # 150 rows >= 2·5 features


def test_auto_keeps_a_weighted_fit_on_the_gram(tmp_path):
    X, y, w, _ = _data(n=30, p=20, seed=2)  # fewer rows than twice the features
    path = write_csv(tmp_path / "d.csv", X, y, {"w": w})
    assert _fit(path, "auto", n_alphas=10).params["engine"] == "data"
    assert _fit(path, "auto", weights="w", n_alphas=10).params["engine"] == "gram"

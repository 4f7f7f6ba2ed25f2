"""Binary targets end to end through ``select_features``: the CV against a brute-force
scikit-learn computation on the same folds and alphas, the family and class rules, weights,
stratified folds and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from l1select.errors import ConfigError, DataError
from l1select.folds import stratified_fold_ids
from l1select.pipeline import select_features
from l1select.types import FitParams


def make_binary(n=240, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 2.0
    Z = (X - X.mean(0)) / X.std(0)
    eta = 1.2 * Z[:, 0] - 0.9 * Z[:, 1] + 0.4 * Z[:, 2] - 0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    return X, y


def write(path, X, y, **extra):
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y
    for k, v in extra.items():
        df[k] = v
    df.to_csv(path, index=False, float_format="%.17g")
    return str(path)


def fit(path, **kw):
    kw.setdefault("target", "y")
    return select_features(path, FitParams(tol=1e-16, **kw))


def _reference_cv(X, y, folds, alphas, threshold=0.5):
    """Per fold: StandardScaler on the training rows and LogisticRegression (saga) at
    C = 1/(n_train·alpha), fitted from scratch at every alpha; glmnet's cvm and cvsd."""
    K = folds.max() + 1
    out = {m: np.empty((alphas.size, K)) for m in ("deviance", "class", "auc")}
    sizes = np.bincount(folds)
    for k in range(K):
        tr, te = folds != k, folds == k
        mu, sd = X[tr].mean(0), X[tr].std(0)
        Ztr, Zte = (X[tr] - mu) / sd, (X[te] - mu) / sd
        for i, a in enumerate(alphas):
            m = LogisticRegression(C=1.0 / (tr.sum() * a), l1_ratio=1.0, solver="saga",
                                   tol=1e-12, max_iter=1_000_000).fit(Ztr, y[tr])
            p = m.predict_proba(Zte)[:, 1]
            pc = np.clip(p, 1e-5, 1 - 1e-5)
            yt = y[te]
            out["deviance"][i, k] = np.mean(-2 * (yt * np.log(pc) + (1 - yt) * np.log(1 - pc)))
            out["class"][i, k] = np.mean((p > threshold) != (yt == 1))
            out["auc"][i, k] = roc_auc_score(yt, p)
    w = sizes / sizes.sum()
    curves = {}
    for name, mat in out.items():
        mean = mat @ w
        se = np.sqrt(((mat - mean[:, None]) ** 2) @ w / (K - 1))
        curves[name] = (mean, se)
    return curves


@pytest.mark.parametrize("measure", ["deviance", "class", "auc"])
def test_cv_matches_brute_force_scikit_learn_per_fold(tmp_path, measure):
    X, y = make_binary()
    folds = np.arange(y.size) % 4
    np.random.default_rng(3).shuffle(folds)
    path = write(tmp_path / "b.csv", X, y, fold=folds)
    alphas = (0.1, 0.05, 0.02, 0.01, 0.003)
    result = fit(path, fold_column="fold", alphas=alphas, measure=measure)
    assert result.params["family"] == "binomial" and result.cv["metric"] == measure
    mean, se = _reference_cv(X, y, folds, np.array(alphas))[measure]
    got = np.array([(r["mean"], r["se"]) for r in result.cv["path"]])
    # Both sides solve to ~1e-8 in the coefficients; the measures move by about as much.
    # A wrong fold, scaling, clamp or weighting moves them by more than 1e-3.
    np.testing.assert_allclose(got[:, 0], mean, atol=1e-6)
    np.testing.assert_allclose(got[:, 1], se, atol=1e-6)
    best = np.argmax(mean) if measure == "auc" else np.argmin(mean)
    assert result.alpha["min"] == pytest.approx(alphas[best])


def test_all_rows_fit_matches_scikit_learn_on_the_original_scale(tmp_path):
    X, y = make_binary(seed=2)
    path = write(tmp_path / "b.csv", X, y)
    a = 0.02
    result = fit(path, alpha=a)
    mu, sd = X.mean(0), X.std(0)
    m = LogisticRegression(C=1.0 / (y.size * a), l1_ratio=1.0, solver="saga", tol=1e-12,
                           max_iter=1_000_000).fit((X - mu) / sd, y)
    coef = np.array([f.coef for f in result.features])
    # 1e-6 on the standardized scale (see test_logistic), divided by sd ≥ 0.5 here.
    np.testing.assert_allclose(coef, m.coef_[0] / sd, atol=3e-6)
    assert result.intercept == pytest.approx(m.intercept_[0] - (m.coef_[0] / sd) @ mu,
                                             abs=1e-5)


def test_alpha_max_is_the_weighted_gradient_at_the_null_model(tmp_path):
    X, y = make_binary(seed=4)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=y.size)
    path = write(tmp_path / "b.csv", X, y, w=w)
    result = fit(path, weights="w", n_alphas=5)
    wn = w * y.size / w.sum()
    mu = wn @ X / y.size
    sd = np.sqrt(wn @ (X - mu) ** 2 / y.size)
    ybar = wn @ y / y.size
    expected = np.max(np.abs(((X - mu) / sd).T @ (wn * (y - ybar)))) / y.size
    assert result.alpha["alpha_max"] == pytest.approx(expected, rel=1e-10)
    assert result.cv["path"][0]["n_nonzero"] == 0 and result.cv["path"][1]["n_nonzero"] > 0


def test_text_target_is_binomial_and_the_positive_class_can_flip(tmp_path):
    X, y = make_binary(seed=5)
    path = write(tmp_path / "b.csv", X, np.where(y == 1, "malignant", "benign"))
    one = fit(path, alpha=0.01)
    assert one.params["family"] == "binomial" and one.params["positive_class"] == "malignant"
    assert one.input["classes"]["counts"] == {"benign": int((y == 0).sum()),
                                              "malignant": int(y.sum())}
    other = fit(path, alpha=0.01, positive_class="benign")
    a = np.array([f.coef for f in one.features])
    b = np.array([f.coef for f in other.features])
    assert np.count_nonzero(a) >= 3
    np.testing.assert_allclose(a, -b, atol=1e-9)  # the same solve, mirrored
    assert one.intercept == pytest.approx(-other.intercept, abs=1e-9)


def test_a_numeric_two_valued_target_is_binomial_unless_gaussian_is_asked(tmp_path):
    X, y = make_binary(seed=6)
    path = write(tmp_path / "b.csv", X, y)
    assert fit(path, n_alphas=10).params["family"] == "binomial"
    linear = fit(path, n_alphas=10, family="gaussian")
    assert linear.params["family"] == "gaussian" and linear.cv["metric"] == "mse"
    assert "binary_target" in {w.code for w in linear.warnings}


def test_integer_weights_equal_duplicated_rows(tmp_path):
    X, y = make_binary(n=150, seed=7)
    counts = np.random.default_rng(1).integers(1, 4, size=y.size)
    weighted = fit(write(tmp_path / "w.csv", X, y, w=counts), weights="w", alpha=0.01)
    rep = np.repeat(np.arange(y.size), counts)
    dup = fit(write(tmp_path / "d.csv", X[rep], y[rep]), alpha=0.01)
    assert [f.name for f in weighted.features] == [f.name for f in dup.features]
    # The same optimum reached from differently ordered sums: rounding only.
    np.testing.assert_allclose([f.coef for f in weighted.features],
                               [f.coef for f in dup.features], atol=1e-8)
    assert weighted.intercept == pytest.approx(dup.intercept, abs=1e-8)


def test_stratified_folds_split_each_class_evenly():
    rng = np.random.default_rng(0)
    classes = (rng.random(1003) < 0.1).astype(np.int64)
    index = np.arange(1003) * 3 + 5  # global indices need not be contiguous
    folds = stratified_fold_ids(index, classes, 5, seed=11)
    for c in (0, 1):
        counts = np.bincount(folds[classes == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    # A function of (index, class, seed) only: the rows in another order get the same folds.
    perm = rng.permutation(1003)
    np.testing.assert_array_equal(stratified_fold_ids(index[perm], classes[perm], 5, 11),
                                  folds[perm])
    assert not np.array_equal(stratified_fold_ids(index, classes, 5, 12), folds)


def test_a_training_fold_with_one_class_is_a_data_error_naming_it(tmp_path):
    X, y = make_binary(seed=8)
    fold = np.where(y == 1, "b", "a")  # holding out 'a' leaves only positives to train on
    path = write(tmp_path / "b.csv", X, y, fold=fold)
    with pytest.raises(DataError, match="fold 'a'.*only one class"):
        fit(path, fold_column="fold")


def test_errors(tmp_path):
    X, y = make_binary(seed=9)
    w = np.ones(y.size)
    w[7] = np.nan
    path = write(tmp_path / "b.csv", X, y, w=w)
    with pytest.raises(DataError, match="missing weight at line 9"):
        fit(path, weights="w")
    w[7] = -1.0
    path = write(tmp_path / "b.csv", X, y, w=w)
    with pytest.raises(DataError, match="negative weight at line 9"):
        fit(path, weights="w")
    with pytest.raises(ConfigError, match="--engine gram cannot fit a logistic model"):
        fit(path, engine="gram", family="binomial")
    # auto with a gaussian-only engine: the linear model, and the warning says why.
    linear = fit(path, engine="gram", n_alphas=5)
    assert linear.params["family"] == "gaussian" and linear.params["engine"] == "gram"
    assert "binary_target" in {w.code for w in linear.warnings}
    with pytest.raises(ConfigError, match="--positive-class '2' is not a value"):
        fit(path, positive_class="2")
    three = write(tmp_path / "t.csv", X, y + (np.arange(y.size) % 7 == 0))
    with pytest.raises(DataError, match="exactly two values"):
        fit(three, family="binomial")
    with pytest.raises(ConfigError, match="--engine data does not take --weights"):
        fit(three, weights="x1", engine="data")
    with pytest.raises(ConfigError, match="--measure auc is for a binary target"):
        fit(three, measure="auc")
    with pytest.raises(ConfigError, match="--positive-class applies to a binary target"):
        fit(path, family="gaussian", positive_class="1")


def test_separable_data_end_cleanly_with_a_warning(tmp_path):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    result = fit(write(tmp_path / "s.csv", X, y), eps=1e-6)
    assert "saturated_path" in {w.code for w in result.warnings}
    assert len(result.cv["path"]) < 100
    assert result.selected[0] == "x0"


def test_auc_on_small_folds_falls_back_to_deviance(tmp_path):
    X, y = make_binary(n=45, seed=11)
    result = fit(write(tmp_path / "b.csv", X, y), measure="auc", n_alphas=10)
    assert result.cv["metric"] == "deviance"
    assert "auc_small_folds" in {w.code for w in result.warnings}


def test_trust_features_work_for_binomial(tmp_path):
    X, y = make_binary(n=200, seed=12)
    path = write(tmp_path / "b.csv", X, y)
    result = fit(path, n_alphas=20, force=("x5",), stability=3, refit="ols")
    by = {f.name: f for f in result.features}
    assert by["x5"].coef != 0 and by["x5"].penalty_factor == 0
    assert result.penalty["forced"] == ["x5"]
    assert result.stability["pairs"] == 3 and by["x0"].stability == 1.0
    assert result.refit["method"] == "logistic"
    # The refit is unpenalized: its coefficients are larger than the lasso's shrunk ones.
    assert abs(by["x0"].coef_ols) > abs(by["x0"].coef)
    adaptive = fit(path, n_alphas=20, adaptive=True)
    assert adaptive.penalty["adaptive"]["initial"] == "ridge_logistic"
    assert set(adaptive.selected[:2]) == {"x0", "x1"}


def test_refit_is_the_unpenalized_logistic_fit(tmp_path):
    X, y = make_binary(n=200, seed=13)
    result = fit(write(tmp_path / "b.csv", X, y), n_alphas=20, refit="ols")
    sel = [int(n[1:]) for n in result.selected]
    ref = LogisticRegression(C=np.inf, solver="lbfgs", tol=1e-12, max_iter=100_000) \
        .fit(X[:, sel], y)
    got = {f.name: f.coef_ols for f in result.features}
    # lbfgs stops at a gradient of ~1e-12; the coefficients then agree to ~1e-6.
    np.testing.assert_allclose([got[f"x{j}"] for j in sel], ref.coef_[0], rtol=1e-5)
    assert result.intercept_ols == pytest.approx(ref.intercept_[0], rel=1e-5, abs=1e-6)


def test_a_target_binary_only_in_its_first_rows_gets_a_linear_model(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(14)
    n = 70_000  # more than the first Parquet batch (65,536 rows)
    x = rng.normal(size=n)
    y = (rng.random(n) < 0.5).astype(float)
    y[-100:] = 2.0 + x[-100:]  # a count-like target: not binary after all
    path = tmp_path / "late.parquet"
    pq.write_table(pa.table({"x0": x, "x1": rng.normal(size=n), "y": y}), path,
                   row_group_size=n)
    result = fit(str(path), n_alphas=5)
    assert result.params["family"] == "gaussian" and result.cv["metric"] == "mse"


def test_a_huge_column_gives_the_same_model_in_its_own_units(tmp_path):
    # Columns of huge magnitude are held multiplied by a power of two (prepare's units); the
    # binomial fit must report them in their own units.
    X, y = make_binary(n=200, seed=15)
    big = X.copy()
    big[:, 0] *= 2.0 ** 600  # exact: a power of two
    a = fit(write(tmp_path / "a.csv", X, y), alpha=0.01)
    b = fit(write(tmp_path / "b.csv", big, y), alpha=0.01)
    ca = np.array([f.coef for f in a.features])
    cb = np.array([f.coef for f in b.features])
    assert np.count_nonzero(ca) >= 2
    np.testing.assert_allclose(cb[0] * 2.0 ** 600, ca[0], rtol=1e-9)  # rounding of two solves
    np.testing.assert_allclose(cb[1:], ca[1:], rtol=1e-9, atol=1e-12)
    assert b.intercept == pytest.approx(a.intercept, rel=1e-9)
    # Unstandardized, such a column's curvature overflows: a clear error, not a wrong model.
    with pytest.raises(DataError, match="extreme magnitude.*--no-standardize"):
        fit(str(tmp_path / "b.csv"), alpha=0.01, standardize=False)


def test_the_family_checks_count_of_float_values_agrees_with_arrows():
    # family._float64_distinct reads float64 buffers (no pyarrow.compute import); it must
    # count as distinct() does, over nulls, NaN, sliced arrays (offsets) and chunks.
    import pyarrow as pa

    from l1select.family import _float64_distinct, distinct

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(0, 40))
        pool = rng.choice([0.0, 1.0, -2.5, 3.0, np.nan], size=int(rng.integers(1, 5)))
        vals = rng.choice(pool, size=n)
        mask = rng.random(n) < 0.2
        arr = pa.array(vals, type=pa.float64(), mask=mask)
        start = int(rng.integers(0, n + 1))
        pieces = [arr.slice(start), arr.slice(0, start)]
        for a in (arr, arr.slice(start), pa.chunked_array(pieces, type=pa.float64())):
            want = min(len(distinct(a, "numeric")[0]), 3)
            assert _float64_distinct(a) == want, (vals, mask, start)

"""The fast engines against the scikit-learn reference engine, on the same folds and grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from l1select import io as l1io
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv

# The reference (sklearn) and our kernels both stop at a duality gap of tol·var(y) with
# tol=1e-10 (FitParams' default); the CV errors then agree to ~1e-9 relative, and the
# coefficients to ~1e-7 of the largest. 1e-6 is the bar.
RTOL = 1e-6


def _fit(path, engine, **kw):
    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(engine=engine, **kw))


def assert_same(a, b, compare_coefs=True):
    pa_, pb = a.cv["path"], b.cv["path"]
    # The grids come from alpha_max on the same data by different arithmetic; with a column
    # of mean 1e6 and sd 1, centering alone leaves ~1e-10 absolute noise in it.
    np.testing.assert_allclose([r["alpha"] for r in pa_], [r["alpha"] for r in pb], rtol=1e-9)
    np.testing.assert_allclose([r["mean"] for r in pa_], [r["mean"] for r in pb], rtol=RTOL)
    np.testing.assert_allclose([r["se"] for r in pa_], [r["se"] for r in pb], rtol=RTOL)
    assert a.alpha["min"] == pytest.approx(b.alpha["min"], rel=1e-9)
    assert a.alpha["one_se"] == pytest.approx(b.alpha["one_se"], rel=1e-9)
    if compare_coefs:
        ca = np.array([f.coef_std for f in a.features])
        cb = np.array([f.coef_std for f in b.features])
        np.testing.assert_allclose(ca, cb, rtol=RTOL, atol=RTOL * np.abs(cb).max())
        assert a.intercept == pytest.approx(b.intercept, rel=RTOL, abs=RTOL * abs(b.intercept))


CASES = {
    "lasso": dict(),
    "enet": dict(model="elasticnet", l1_ratios=(0.5,)),
    "enet-list": dict(model="elasticnet", l1_ratios=(0.2, 0.9)),
    "no-standardize": dict(standardize=False),
    "test-split": dict(test_size=0.3),
}


@pytest.mark.parametrize("engine", ["gram", "data"])
@pytest.mark.parametrize("case", list(CASES))
def test_engine_matches_reference(tmp_path, engine, case):
    X, y, _ = make_regression(n=150, p=7, seed=11, missing=0.05)
    city = np.random.default_rng(1).choice(["north", "south", "east"], size=y.size)
    city = np.where(np.random.default_rng(2).random(y.size) < 0.05, None, city)
    path = write_csv(tmp_path / "d.csv", X, y + (city == "north") * 2.0, {"city": city})
    a = _fit(path, engine, n_alphas=30, **CASES[case])
    b = _fit(path, "reference", n_alphas=30, **CASES[case])
    assert_same(a, b)
    if case == "test-split":
        assert a.test["mse"] == pytest.approx(b.test["mse"], rel=1e-9)


def test_large_mean_small_spread(tmp_path):
    """A column with mean 1e6 and sd 1: raw sums of products would lose every digit."""
    rng = np.random.default_rng(4)
    n = 300
    X = np.column_stack([1e6 + rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)])
    X[rng.random(n) < 0.05, 0] = np.nan
    y = 2.0 * (np.nan_to_num(X[:, 0], nan=1e6) - 1e6) + X[:, 1] + rng.normal(size=n) + 5e5
    path = write_csv(tmp_path / "d.csv", X, y)
    assert_same(_fit(path, "gram", n_alphas=25), _fit(path, "reference", n_alphas=25))


def test_near_collinear_twins_same_cv_curve(tmp_path):
    rng = np.random.default_rng(5)
    n = 200
    base = rng.normal(size=n)
    X = np.column_stack([base, base + 1e-3 * rng.normal(size=n), rng.normal(size=(n, 3))])
    y = 3 * base + X[:, 2] + rng.normal(size=n)
    path = write_csv(tmp_path / "d.csv", X, y)
    # The split of weight between the twins is arbitrary: compare the CV curve only.
    assert_same(_fit(path, "gram", n_alphas=20), _fit(path, "reference", n_alphas=20),
                compare_coefs=False)


def test_one_feature(tmp_path):
    X, y, _ = make_regression(n=60, p=1, seed=2)
    path = write_csv(tmp_path / "d.csv", X, y)
    assert_same(_fit(path, "gram", n_alphas=10), _fit(path, "reference", n_alphas=10))


@pytest.mark.parametrize("engine", ["gram", "data"])
def test_more_features_than_rows(tmp_path, engine):
    X, y, _ = make_regression(n=40, p=60, seed=8)
    path = write_csv(tmp_path / "d.csv", X, y)
    assert_same(_fit(path, engine, n_alphas=15, eps=0.05),
                _fit(path, "reference", n_alphas=15, eps=0.05))


def test_auto_picks_the_data_engine_for_wide_data(tmp_path):
    X, y, _ = make_regression(n=40, p=60, seed=8)
    path = write_csv(tmp_path / "d.csv", X, y)
    assert _fit(path, "auto", n_alphas=5).engine == "data"
    X, y, _ = make_regression(n=400, p=6, seed=8)
    path = write_csv(tmp_path / "e.csv", X, y)
    assert _fit(path, "auto", n_alphas=5).engine == "gram"


def test_results_do_not_depend_on_the_batch_size(tmp_path, monkeypatch):
    X, y, _ = make_regression(n=400, p=5, seed=3, missing=0.1)
    rng = np.random.default_rng(0)
    # A level that first appears late, and a column first missing late.
    cat = np.where(np.arange(400) < 300, rng.choice(["a", "b"], 400), rng.choice(["a", "c"], 400))
    late = rng.normal(size=400)
    late[350:360] = np.nan
    path = write_csv(tmp_path / "d.csv", X, y, {"cat": cat, "late": late})
    pd.read_csv(path).to_parquet(tmp_path / "d.parquet")
    whole = _fit(path, "gram", n_alphas=20)
    monkeypatch.setattr(l1io.csv, "CSV_BLOCK", 2048)
    monkeypatch.setattr(l1io.csv, "ROWS_PER_BLOCK", 1)
    monkeypatch.setattr(l1io.parquet, "PARQUET_BATCH_VALUES", 37 * 8)
    for p in (path, tmp_path / "d.parquet"):
        small = _fit(p, "gram", n_alphas=20)
        # Different merge orders change only the last bits.
        assert_same(small, whole)
        assert small.selected == whole.selected
    assert "cat=c" in [f.name for f in whole.features]


def test_a_numeric_column_that_turns_to_text_late_is_reread(tmp_path, monkeypatch):
    monkeypatch.setattr(l1io.csv, "CSV_BLOCK", 1024)
    monkeypatch.setattr(l1io.csv, "ROWS_PER_BLOCK", 1)
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=n)
    code = [str(i % 3) for i in range(n - 1)] + ["other"]
    y = 2 * x + rng.normal(size=n)
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": x, "code": code, "y": y}).to_csv(path, index=False)
    # The one late level is kept as its own feature (--min-level-count 1 pools nothing).
    res = _fit(path, "gram", n_alphas=10, min_level_count=1)
    assert "code=other" in [f.name for f in res.features]
    assert_same(res, _fit(path, "reference", n_alphas=10, min_level_count=1))


def test_a_column_missing_in_the_whole_first_batch(tmp_path, monkeypatch):
    """Rows read before a column's first value are filled later than the rest: exact still."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 400
    z = rng.normal(size=n) + 50.0
    x = rng.normal(size=n)
    y = 0.5 * z + x + rng.normal(size=n)
    z[:100] = np.nan
    path = tmp_path / "late.parquet"
    pq.write_table(pa.table({"x": x, "z": z, "y": y}), path, row_group_size=50)
    monkeypatch.setattr(l1io.parquet, "PARQUET_BATCH_VALUES", 50 * 3)
    assert_same(_fit(path, "gram", n_alphas=20), _fit(path, "reference", n_alphas=20))


def _design_case(tmp_path, case):
    """A small file with one problem of the design, the options that meet it, and the start
    of the one message every engine gives for it."""
    rng = np.random.default_rng(11)
    n = {"few_rows": 4}.get(case, 40)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "y": rng.normal(size=n)})
    kw: dict = {}
    if case == "constant":
        df["y"] = 3.25
        want = "Target column 'y' in {} is constant (3.25); choose a target that varies"
    elif case == "single_fold":
        df["fold"] = "only"
        kw["fold_column"] = "fold"
        want = "Fold column 'fold' in {} has a single fold; CV needs at least two"
    elif case == "few_rows":
        kw["cv"] = 5
        want = "{} has 4 usable rows, fewer than the 5 CV folds; use a smaller --cv"
    else:
        kw["test_size"] = 0.001
        want = "--test-size 0.001 leaves no rows on one side of the split of 40 rows"
    path = tmp_path / f"{case}.csv"
    df.to_csv(path, index=False)
    return path, kw, want.format(path)


@pytest.mark.parametrize("case", ["constant", "single_fold", "few_rows", "empty_test"])
def test_every_engine_refuses_a_bad_design_with_the_same_message(tmp_path, case):
    from l1select.errors import DataError

    path, kw, want = _design_case(tmp_path, case)
    for engine in ("gram", "data", "reference"):
        with pytest.raises(DataError) as err:
            _fit(path, engine, **kw)
        assert str(err.value).startswith(want), (engine, str(err.value))


def test_n_values_counts_as_np_unique_does_up_to_three():
    from l1select.solve.matrix import n_values

    rng = np.random.default_rng(7)
    pool = np.array([0.0, 1.0, -2.5, np.nan, 3.0, 1e300, -0.0])
    for _ in range(2000):
        y = rng.choice(pool[:rng.integers(1, pool.size + 1)], size=rng.integers(0, 12))
        assert n_values(y) == min(np.unique(y).size, 3), y

"""Folds that fit the data: --group-column, --cv-scheme forward and --repeats, against
scikit-learn fitted fold by fold, and across engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from l1select.errors import ConfigError, DataError
from l1select.folds import (
    GROUP_BUCKETS,
    Grouper,
    deal_buckets,
    forward_starts,
    label_bucket,
    repeat_seed,
)
from l1select.options import from_values, problems
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression
from tests.unit.test_engines import assert_same

ALPHAS = tuple(np.geomspace(1.0, 1e-3, 15))


def _data(tmp_path, n=240, n_groups=45, seed=7):
    """Rows in groups with a shared random effect (repeated measures), numeric features."""
    X, y, _ = make_regression(n=n, p=5, seed=seed)
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, size=n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y + rng.normal(scale=2.0, size=n_groups)[g]
    df["grp"] = [f"site-{v}" for v in g]
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    return path, df


def _fit(path, engine="gram", **kw):
    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(engine=engine, **kw))


def _sklearn_curve(X, y, splits, alphas):
    """The size-weighted mean of the held-out MSEs, each fold fitted by scikit-learn's Lasso
    on its training rows standardized with their own mean and sd (ddof=0)."""
    from sklearn.linear_model import Lasso

    mse = np.empty((len(alphas), len(splits)))
    sizes = np.array([te.size for _, te in splits], dtype=float)
    for k, (tr, te) in enumerate(splits):
        mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
        Ztr, Zte = (X[tr] - mu) / sd, (X[te] - mu) / sd
        for i, a in enumerate(alphas):
            # A tight tol: both solvers then sit within ~1e-10 of the optimum.
            m = Lasso(alpha=a, fit_intercept=True, tol=1e-13, max_iter=1_000_000)
            m.fit(Ztr, y[tr])
            mse[i, k] = np.mean((y[te] - m.predict(Zte)) ** 2)
    return mse @ (sizes / sizes.sum()), sizes


def _curve(result):
    return np.array([r["mean"] for r in result.cv["path"]])


# -- the fold rules themselves ------------------------------------------------------------------

def test_forward_blocks_are_timeseriessplit():
    from sklearn.model_selection import TimeSeriesSplit

    for n, k in [(240, 5), (101, 3), (10, 9), (1000, 2)]:
        starts = forward_starts(n, k)
        for j, (tr, te) in enumerate(TimeSeriesSplit(n_splits=k).split(np.zeros(n))):
            np.testing.assert_array_equal(tr, np.arange(0, starts[j + 1]))
            np.testing.assert_array_equal(te, np.arange(starts[j + 1], starts[j + 2]))


def test_dealt_buckets_balance_within_one_bucket():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 40, size=GROUP_BUCKETS)
    for seed in range(5):
        fold = deal_buckets(counts, 5, seed)
        assert set(fold[counts > 0]) == set(range(5)) and (fold[counts == 0] == -1).all()
        loads = np.bincount(fold[counts > 0], weights=counts[counts > 0], minlength=5)
        assert loads.max() - loads.min() <= counts.max()  # the greedy list-scheduling bound
        # ... and the moves and swaps after it bring 64 buckets of 0-39 rows to within 2.
        assert loads.max() - loads.min() <= 2
    assert not np.array_equal(deal_buckets(counts, 5, 0), deal_buckets(counts, 5, 1))


def test_group_cells_do_not_depend_on_batches_or_seed():
    labels = [f"c{i % 37}" for i in range(500)]
    rows = np.arange(500)
    a = Grouper(5, 0, None, "group")
    whole = a.groups(rows, labels)[0]
    b = Grouper(5, 3, None, "group")
    parts = np.concatenate([b.groups(rows[i:j], labels[i:j])[0]
                            for i, j in [(0, 7), (7, 300), (300, 500)]])
    np.testing.assert_array_equal(whole, parts)
    assert whole[0] == label_bucket("c0") + 1


def test_repeat_seeds():
    assert [repeat_seed(4, r) for r in range(3)] == [4, 5, 6]


def test_option_rules():
    def texts(**kw):
        return [p.for_cli() for p in problems(from_values({"target": "y", **kw}))]

    assert any("not both" in t for t in texts(fold_column="f", group_column="g"))
    assert any(t.startswith("--cv-scheme") for t in texts(cv_scheme="forward",
                                                          group_column="g"))
    assert any(t.startswith("--repeats") for t in texts(repeats=2, fold_column="f"))
    assert any(t.startswith("--repeats") for t in texts(repeats=2, cv_scheme="forward"))
    assert any(t.startswith("--repeats") for t in texts(repeats=2, alpha=0.1))
    assert any(t.startswith("--repeats must be in [1, 100]") for t in texts(repeats=101))
    assert texts(repeats=3, group_column="g") == []
    p = from_values({"target": "y", "repeats": 3, "group_column": "g"}).to_dict()
    assert p["cv"] == {"folds": 5, "group_column": "g", "repeats": 3}
    assert from_values({"target": "y"}).to_dict()["cv"] == {"folds": 5}


# -- scikit-learn, fitted fold by fold ----------------------------------------------------------

def test_group_folds_never_split_a_group_and_match_sklearn(tmp_path):
    path, df = _data(tmp_path)
    res = _fit(path, group_column="grp", alphas=ALPHAS, seed=2)
    X, y = df[[f"x{j}" for j in range(5)]].to_numpy(), df["y"].to_numpy()
    # The folds, brute force: each label's bucket, the buckets dealt by their row counts.
    bucket = np.array([label_bucket(g) for g in df["grp"]])
    fold = deal_buckets(np.bincount(bucket, minlength=GROUP_BUCKETS), 5, 2)[bucket]
    for _, rows in df.groupby("grp").indices.items():
        assert len(set(fold[rows])) == 1  # a group never straddles two folds
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(5)]
    want, sizes = _sklearn_curve(X, y, splits, np.array(ALPHAS))
    assert res.cv["fold_sizes"] == [int(s) for s in sizes]
    # Gram statistics vs explicit standardization: agreement to ~1e-10; 1e-6 is the bar.
    np.testing.assert_allclose(_curve(res), want, rtol=1e-6)
    assert res.params["cv"] == {"folds": 5, "group_column": "grp"}
    assert "grp" not in [f.column for f in res.features]


def test_forward_folds_match_sklearn_timeseriessplit(tmp_path):
    from sklearn.model_selection import TimeSeriesSplit

    path, df = _data(tmp_path, n=203)
    res = _fit(path, cv_scheme="forward", cv=4, alphas=ALPHAS)
    X, y = df[[f"x{j}" for j in range(5)]].to_numpy(), df["y"].to_numpy()
    splits = list(TimeSeriesSplit(n_splits=4).split(X))
    want, sizes = _sklearn_curve(X, y, splits, np.array(ALPHAS))
    assert res.cv["fold_sizes"] == [int(s) for s in sizes]
    np.testing.assert_allclose(_curve(res), want, rtol=1e-6)  # as above
    # stdin is held in memory: counted and read again, the same folds.
    assert res.params["cv"] == {"folds": 4, "scheme": "forward"}


def test_repeats_are_the_average_of_separate_runs(tmp_path):
    path, _ = _data(tmp_path)
    rep = _fit(path, repeats=3, seed=5, alphas=ALPHAS)
    runs = [_fit(path, seed=repeat_seed(5, r), alphas=ALPHAS) for r in range(3)]
    assert rep.cv["n_folds"] == 15
    # Every repeat holds out every row once, so the size-weighted mean over the 15 folds is
    # the mean of the three curves (up to summation order).
    np.testing.assert_allclose(_curve(rep), np.mean([_curve(r) for r in runs], axis=0),
                               rtol=1e-12)
    freq = np.mean([[f.fold_frequency for f in r.features] for r in runs], axis=0)
    np.testing.assert_allclose([f.fold_frequency for f in rep.features], freq, rtol=1e-12)
    # The SE is over the 15 fold MSEs (weighted SD / sqrt(15 - 1)), not the runs' average.
    assert rep.cv["se"] != pytest.approx(np.mean([r.cv["se"] for r in runs]), rel=1e-3)


def test_repeats_with_groups_are_the_average_of_separate_runs(tmp_path):
    path, _ = _data(tmp_path)
    rep = _fit(path, repeats=2, seed=1, group_column="grp", alphas=ALPHAS)
    runs = [_fit(path, seed=s, group_column="grp", alphas=ALPHAS) for s in (1, 2)]
    np.testing.assert_allclose(_curve(rep), np.mean([_curve(r) for r in runs], axis=0),
                               rtol=1e-12)  # summation order only


# -- every engine the same numbers --------------------------------------------------------------

CASES = {
    "group": dict(group_column="grp"),
    "group-test": dict(group_column="grp", test_size=0.2, seed=3),
    "forward": dict(cv_scheme="forward", cv=4),
    "repeats": dict(repeats=3),
    "group-repeats": dict(group_column="grp", repeats=2, model="elasticnet",
                          l1_ratios=(0.5,)),
}


@pytest.mark.parametrize("engine", ["gram", "data"])
@pytest.mark.parametrize("case", list(CASES))
def test_engines_match_reference(tmp_path, engine, case):
    path, df = _data(tmp_path)
    df.loc[np.random.default_rng(0).random(len(df)) < 0.05, "x1"] = np.nan  # imputed per fold
    df.to_csv(path, index=False, float_format="%.17g")
    a = _fit(path, engine, n_alphas=25, **CASES[case])
    b = _fit(path, "reference", n_alphas=25, **CASES[case])
    assert a.cv["fold_sizes"] == b.cv["fold_sizes"]
    assert_same(a, b)


@pytest.mark.parametrize("engine", ["gram", "data", "reference"])
@pytest.mark.parametrize("labels", ["group_column", "fold_column"])
def test_stability_half_samples_keep_labels_whole(tmp_path, engine, labels):
    path, df = _data(tmp_path)
    res = _fit(path, engine, n_alphas=20, stability=10, **{labels: "grp"})
    # The half-samples are unions of the label cells: the group buckets, or the fold labels.
    cells = (len({label_bucket(g) for g in df["grp"]}) if labels == "group_column"
             else df["grp"].nunique())
    assert res.stability["micro_groups"] == cells
    ref = _fit(path, "gram", n_alphas=20, stability=10, **{labels: "grp"})
    assert [f.stability for f in res.features] == [f.stability for f in ref.features]


def test_halves_hold_whole_groups(tmp_path):
    from l1select import io as l1io
    from l1select.engines.memory import load
    from l1select.prepare import needed_columns
    from l1select.solve.matrix import half_rows

    path, df = _data(tmp_path)
    params = FitParams(target="y", group_column="grp", stability=5)
    source, header, data = l1io.open_header(str(path))
    columns, _ = needed_columns(header.names, "y", (), (), None, source.display, "grp")
    mem = load(source, header, data, columns, params)
    labels = df["grp"].to_numpy()[mem.rows]
    for rows in half_rows(mem, params):
        inside = set(labels[rows])
        outside = set(np.delete(labels, rows))
        assert not inside & outside  # no group has rows on both sides of a half


# -- refusals -----------------------------------------------------------------------------------

def test_too_few_groups_for_the_folds(tmp_path):
    path, _ = _data(tmp_path, n_groups=3)
    for engine in ("gram", "data"):
        with pytest.raises(DataError, match="fewer than the 5 CV folds"):
            _fit(path, engine, group_column="grp")


def test_missing_group_label(tmp_path):
    path, df = _data(tmp_path)
    df.loc[5, "grp"] = None
    df.to_csv(path, index=False)
    for engine in ("gram", "data"):
        with pytest.raises(DataError, match="Group column 'grp'.*missing labels"):
            _fit(path, engine, group_column="grp")


def test_statistics_past_the_budget_are_refused(tmp_path, monkeypatch):
    from l1select.engines import streaming

    path, _ = _data(tmp_path)
    monkeypatch.setattr(streaming, "STATS_BYTES", 20_000)
    with pytest.raises(ConfigError, match=r"10 repeats × 5 folds .* budget"):
        _fit(path, repeats=10)

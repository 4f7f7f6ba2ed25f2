"""Selection you can trust: fold frequency, stability selection, alternates, penalty factors,
the adaptive lasso, the OLS refit and the diagnostics, each on seeded data with a known truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from l1select.errors import ConfigError
from l1select.folds import micro_ids
from l1select.moments import batch_moments, merge_groups, merge_sum
from l1select.pipeline import select_features, validate
from l1select.select import stability_summary
from l1select.solve.stability import half_pairs
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv


def _fit(path, **kw):
    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(**kw))


def _by_name(result):
    return {f.name: f for f in result.features}


def _codes(result):
    return [w.code for w in result.warnings]


def _write(tmp_path, name, columns: dict) -> str:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.17g")
    return str(path)


@pytest.fixture
def sparse_truth(tmp_path):
    """400 rows, 20 independent features; y depends on x0, x1, x2 only."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 20))
    y = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 1.0 * X[:, 2] + 1.5 * rng.normal(size=400)
    return write_csv(tmp_path / "sparse.csv", X, y)


TRUE = ["x0", "x1", "x2"]


# --------------------------------------------------------------------------------------------
# Fold frequency
# --------------------------------------------------------------------------------------------


def test_fold_frequency_is_the_share_of_training_folds_selecting_at_the_chosen_alpha(
        sparse_truth):
    from l1select import io as l1io
    from l1select.engines.base import Job
    from l1select.engines.streaming import StreamingEngine
    from l1select.prepare import needed_columns
    from l1select.solve.stage import solve

    params = FitParams(target="y", n_alphas=40)
    result = _fit(sparse_truth, n_alphas=40)
    # The same run, one stage lower: the fold fits themselves.
    source, header, data = l1io.open_header(str(sparse_truth))
    columns, _ = needed_columns(header.names, "y", (), (), None, source.display)
    job = Job(source, header, data, columns, params)
    out = solve(StreamingEngine().run(job), job)
    i = list(out.fits[0].alphas).index(result.alpha["chosen"])
    expected = (out.fits[0].fold_coefs[:, :, i] != 0).mean(axis=0)
    got = [f.fold_frequency for f in result.features]
    np.testing.assert_array_equal(got, expected)
    assert all(_by_name(result)[n].fold_frequency == 1.0 for n in TRUE)
    assert set(np.unique(np.array(got) * 5)) <= {0, 1, 2, 3, 4, 5}  # k of 5 folds


def test_no_fold_frequency_without_cv(sparse_truth):
    result = _fit(sparse_truth, alpha=0.1)
    assert all(f.fold_frequency is None for f in result.features)


# --------------------------------------------------------------------------------------------
# Stability selection
# --------------------------------------------------------------------------------------------


def test_stability_finds_the_truth_and_the_bound_matches_its_formula(sparse_truth):
    result = _fit(sparse_truth, stability=25, n_alphas=50)
    st = result.stability
    prob = {f.name: f.stability for f in result.features}
    # 50 half-sample fits of n=200 with |beta| >= 1 against noise sd 1.5: the true features
    # are in every one of them; no noise feature is near the threshold.
    assert all(prob[n] == 1.0 for n in TRUE)
    noise = [v for n, v in prob.items() if n not in TRUE]
    assert max(noise) < 0.5 and np.mean(noise) < 0.1
    assert st["stable"] == TRUE
    assert st["n_fits"] == 50 and st["pairs"] == 25 and st["micro_groups"] == 64
    assert st["threshold"] == 0.8 and st["n_features"] == 20
    assert st["bound"] == pytest.approx(st["q"] ** 2 / ((2 * 0.8 - 1) * 20), rel=1e-12)
    assert 3.0 <= st["q"] < 6.0  # the three true ones, plus a little noise above alpha_1se
    # Λ is the upper part of the path: from the top of the grid down to the chosen alpha.
    assert st["alphas"]["alpha_high"] == result.alpha["max"]
    assert st["alphas"]["alpha_low"] == result.alpha["chosen"]


def test_stability_is_deterministic_from_the_seed(sparse_truth):
    a = _fit(sparse_truth, stability=10, n_alphas=30)
    b = _fit(sparse_truth, stability=10, n_alphas=30)
    c = _fit(sparse_truth, stability=10, n_alphas=30, seed=7)
    assert a.stability == b.stability
    assert [f.stability for f in a.features] == [f.stability for f in b.features]
    assert [f.stability for f in a.features] != [f.stability for f in c.features]


@pytest.mark.parametrize("engine", ["data", "reference"])
def test_every_engine_gives_the_same_stability(tmp_path, engine):
    X, y, _ = make_regression(n=160, p=8, seed=5, missing=0.05)
    path = write_csv(tmp_path / "d.csv", X, y)
    a = _fit(path, stability=8, n_alphas=25, engine="gram", test_size=0.2)
    b = _fit(path, stability=8, n_alphas=25, engine=engine, test_size=0.2)
    # The same micro-groups and pairs, the same per-half imputation and standardization: the
    # selections agree unless a coefficient sits within the solver tolerance of zero.
    np.testing.assert_allclose([f.stability for f in a.features],
                               [f.stability for f in b.features], atol=1 / 16 + 1e-12)
    assert a.stability["q"] == pytest.approx(b.stability["q"], abs=0.2)


def test_complementary_pairs_are_disjoint_halves_of_equal_size():
    rows = np.arange(10_000)
    ids = micro_ids(rows, 64, seed=3)
    counts = np.bincount(ids, minlength=64)
    assert counts.min() >= 156 and counts.max() <= 157  # balanced blocks of 64 rows
    pairs = half_pairs(counts, 20, seed=3)
    assert len(pairs) == 20
    for a, b in pairs:
        assert not (a & b).any() and a.sum() == b.sum() == 32
    again = half_pairs(counts, 20, seed=3)
    assert all((a == a2).all() and (b == b2).all()
               for (a, b), (a2, b2) in zip(pairs, again, strict=True))
    # Empty micro-groups (fewer rows than groups) are never part of a half.
    few = np.bincount(micro_ids(np.arange(10), 64, 0), minlength=64)
    for a, b in half_pairs(few, 5, 0):
        assert few[a].sum() == few[b].sum() == 5


def test_merge_sum_equals_the_pairwise_merge():
    rng = np.random.default_rng(0)
    U = rng.normal(size=(500, 4)) * [1, 10, 1e3, 1e-2] + [1e6, 0, -5, 3]
    g = rng.integers(0, 9, size=500)
    n, mean, com = batch_moments(U, g, 9)
    which = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    a = merge_groups(n, mean, com, which)
    b = merge_sum(n, mean, com, which)
    assert a[0] == b[0]
    np.testing.assert_allclose(a[1], b[1], rtol=1e-13)
    # Both are exact up to rounding: compare each co-moment on the scale of its two columns'
    # spreads (a correlation), where rounding is ~1e-16 × the mean/spread ratio of 1e6.
    direct = U[which[g]]
    scale = np.sqrt(np.outer(np.diag(b[2]), np.diag(b[2])))
    for other in (a[2], np.cov(direct.T, bias=True) * direct.shape[0]):
        assert np.all(np.abs(other - b[2]) <= 1e-9 * scale)


def test_stability_summary_on_hand_made_selections():
    # 4 fits × 3 features × 2 alphas.
    chosen = np.zeros((4, 3, 2), dtype=bool)
    chosen[:, 0, :] = True                # feature 0 always
    chosen[:3, 1, 1] = True               # feature 1 in 3 of 4 fits at the lower alpha
    chosen[0, 2, 0] = chosen[1, 2, 1] = True  # feature 2 once at each alpha
    prob, q, bound, p = stability_summary(chosen, 0.9, np.ones(3, dtype=bool))
    np.testing.assert_array_equal(prob, [1.0, 0.75, 0.25])
    # Anywhere on Λ the fits select {0,1,2}, {0,1,2}, {0,1}, {0}: 9 / 4 on average.
    assert q == pytest.approx(2.25) and p == 3
    assert bound == pytest.approx(2.25 ** 2 / (0.8 * 3))
    # Feature 0 forced: {1,2}, {1,2}, {1}, {} among the penalized ones.
    prob, q, bound, p = stability_summary(chosen, 0.9, np.array([False, True, True]))
    assert q == pytest.approx(1.25) and p == 2
    assert bound == pytest.approx(1.25 ** 2 / (0.8 * 2))


@pytest.mark.parametrize("value", [0.5, 0.3, 1.01])
def test_stability_threshold_must_be_above_one_half(value):
    with pytest.raises(ConfigError, match="stability-threshold"):
        validate(FitParams(target="y", stability=10, stability_threshold=value))
    validate(FitParams(target="y", stability=10, stability_threshold=1.0))


# --------------------------------------------------------------------------------------------
# Alternates
# --------------------------------------------------------------------------------------------


def test_alternates_of_a_correlated_pair(tmp_path):
    rng = np.random.default_rng(8)
    n = 300
    a = rng.normal(size=n)
    twin = a + 0.15 * rng.normal(size=n)  # corr ≈ 0.99
    other = rng.normal(size=n)
    y = 2 * a + other + rng.normal(size=n)
    path = _write(tmp_path, "pair.csv", {"a": a, "twin": twin, "other": other, "y": y})
    result = _fit(path)
    f = _by_name(result)
    picked = [n for n in ("a", "twin") if f[n].selected]
    assert picked == ["a"]  # the lasso keeps one of the twins
    corr = float(np.corrcoef(a, twin)[0, 1])
    assert corr > 0.95
    assert f["a"].alternates == ("twin",)
    assert f["other"].alternates == ()
    assert f["twin"].alternates is None  # not selected
    warning = next(w for w in result.warnings if w.code == "correlated_alternates")
    assert "a ~ twin" in warning.message and f"({corr:+.2f})" in warning.message
    strict = _fit(path, corr_threshold=0.999)
    assert _by_name(strict)["a"].alternates == ()
    assert "correlated_alternates" not in _codes(strict)


# --------------------------------------------------------------------------------------------
# Penalty factors, --force
# --------------------------------------------------------------------------------------------


def _standardized_problem(path, result):
    """The all-rows standardized Gram problem, from the data and the result's recipe."""
    df = pd.read_csv(path)
    rec = result.recipe["features"]
    X = np.column_stack([df[f["name"]].to_numpy() for f in rec])
    Xs = (X - [f["center"] for f in rec]) / [f["scale"] for f in rec]
    yc = df["y"].to_numpy() - df["y"].mean()
    n = yc.size
    return Xs.T @ Xs / n, Xs.T @ yc / n


def test_penalty_factors_satisfy_the_weighted_kkt_conditions(sparse_truth):
    result = _fit(sparse_truth, n_alphas=30, force=("x5",),
                  penalty_factors=(("x0", 3.0), ("x7", 0.25)))
    f = _by_name(result)
    pf = np.array([x.penalty_factor for x in result.features])
    # glmnet's rescaling: the factors sum to the number of features.
    assert pf.sum() == pytest.approx(20.0)
    raw = np.ones(20)
    raw[0], raw[7], raw[5] = 3.0, 0.25, 0.0
    np.testing.assert_allclose(pf, raw * 20 / raw.sum(), rtol=1e-14)
    assert f["x5"].penalty_factor == 0.0 and f["x5"].selected
    assert result.penalty["forced"] == ["x5"] and result.penalty["rescaled_to"] == 20
    G, c = _standardized_problem(sparse_truth, result)
    # coef_std is on the standard-deviation scale of all rows: the solver's own scale.
    w = np.array([x.coef_std for x in result.features])
    grad = c - G @ w
    alpha = result.alpha["chosen"]
    # tol=1e-10 of var(y) on the duality gap leaves ~1e-6 relative slack in the gradient.
    slack = 1e-6 * np.abs(c).max()
    for j in range(20):
        if pf[j] == 0:
            assert abs(grad[j]) <= slack
        elif w[j] != 0:
            assert grad[j] == pytest.approx(alpha * pf[j] * np.sign(w[j]), abs=slack)
        else:
            assert abs(grad[j]) <= alpha * pf[j] + slack


def test_a_forced_feature_is_in_the_model_at_alpha_max(sparse_truth):
    result = _fit(sparse_truth, n_alphas=30, force=("x9",))
    a_max = result.alpha["alpha_max"]
    top = _fit(sparse_truth, alpha=a_max, force=("x9",))
    nz = [f.name for f in top.features if f.coef != 0]
    assert nz == ["x9"]  # only the forced feature at alpha_max …
    below = _fit(sparse_truth, alpha=a_max * 0.98, force=("x9",))
    assert len([f for f in below.features if f.coef != 0]) > 1  # … and something enters below
    # alpha_max accounts for the forced feature: it is computed on the residual of its fit,
    # so it differs from the plain alpha_max.
    plain = _fit(sparse_truth, n_alphas=30)
    assert a_max != plain.alpha["alpha_max"]


def test_a_categorical_columns_factor_applies_to_every_level(tmp_path):
    X, y, _ = make_regression(n=150, p=4, seed=2)
    city = np.random.default_rng(1).choice(["north", "south", "east"], size=y.size)
    path = write_csv(tmp_path / "c.csv", X, y + (city == "north") * 3.0, {"city": city})
    result = _fit(path, force=("city",))
    f = _by_name(result)
    levels = [n for n in f if n.startswith("city=")]
    assert len(levels) == 3 and all(f[n].penalty_factor == 0 for n in levels)
    assert all(f[n].selected for n in levels)


def test_gram_and_data_engines_agree_with_penalty_factors(sparse_truth):
    kw = dict(n_alphas=30, force=("x3",), penalty_factors=(("x1", 2.0),))
    a = _fit(sparse_truth, engine="gram", **kw)
    b = _fit(sparse_truth, engine="data", **kw)
    np.testing.assert_allclose([f.coef_std for f in a.features],
                               [f.coef_std for f in b.features], rtol=1e-6, atol=1e-8)
    assert a.alpha["alpha_max"] == pytest.approx(b.alpha["alpha_max"], rel=1e-9)


def test_penalty_options_are_checked(sparse_truth):
    with pytest.raises(ConfigError, match="--force 'nope' matches no feature"):
        _fit(sparse_truth, force=("nope",))
    with pytest.raises(ConfigError, match="every feature"):
        _fit(sparse_truth, force=("x*",))
    with pytest.raises(ConfigError, match="--engine gram or --engine data"):
        validate(FitParams(target="y", engine="reference", adaptive=True))
    with pytest.raises(ConfigError, match="at least 0"):
        validate(FitParams(target="y", penalty_factors=(("x1", -1.0),)))
    with pytest.raises(ConfigError, match="both name x1"):
        validate(FitParams(target="y", force=("x1",), penalty_factors=(("x1", 2.0),)))


# --------------------------------------------------------------------------------------------
# Adaptive lasso
# --------------------------------------------------------------------------------------------


@pytest.fixture
def irrepresentable(tmp_path):
    """y = x1 + x2; x3 is correlated with both (0.64 each), so |Σ31 Σ11⁻¹ sign β| = 1.27 > 1:
    the irrepresentable condition fails and the lasso picks x3 up (Zou 2006, section 2)."""
    rng = np.random.default_rng(2)
    n = 500
    x1, x2, e, x4, x5 = rng.normal(size=(5, n))
    x3 = 0.9 * (x1 + x2) / np.sqrt(2) + np.sqrt(1 - 0.81) * e
    y = x1 + x2 + 0.5 * rng.normal(size=n)
    return _write(tmp_path, "irr.csv", {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "x5": x5,
                                        "y": y})


def test_the_adaptive_lasso_recovers_the_support_where_the_lasso_does_not(irrepresentable):
    plain = _fit(irrepresentable)
    adaptive = _fit(irrepresentable, adaptive=True)
    assert sorted(plain.selected) == ["x1", "x2", "x3"]
    assert sorted(adaptive.selected) == ["x1", "x2"]
    assert adaptive.penalty["adaptive"]["initial"] == "ols"  # n = 500 ≥ 2p, well conditioned
    pf = _by_name(adaptive)
    # OLS gives x3 a coefficient near 0, so by far the largest weight.
    assert pf["x3"].penalty_factor > 5 * max(pf["x1"].penalty_factor, pf["x2"].penalty_factor)
    assert adaptive.params["adaptive"] is True


def test_adaptive_weights_use_ridge_when_wide(tmp_path):
    X, y, _ = make_regression(n=40, p=60, seed=4)
    path = write_csv(tmp_path / "wide.csv", X, y)
    result = _fit(path, adaptive=True, engine="data")
    assert result.penalty["adaptive"]["initial"] == "ridge"
    assert result.penalty["adaptive"]["ridge_lambda"] == pytest.approx(0.01)
    assert {"x0", "x1"} <= set(result.selected)


# --------------------------------------------------------------------------------------------
# The OLS refit
# --------------------------------------------------------------------------------------------


def test_refit_ols_is_least_squares_on_the_selected_columns(sparse_truth):
    result = _fit(sparse_truth, refit="ols")
    df = pd.read_csv(sparse_truth)
    sel = list(result.selected)
    A = np.column_stack([np.ones(len(df))] + [df[n] for n in sel])
    beta, *_ = np.linalg.lstsq(A, df["y"].to_numpy(), rcond=None)
    f = _by_name(result)
    np.testing.assert_allclose([f[n].coef_ols for n in sel], beta[1:], rtol=1e-9)
    assert result.intercept_ols == pytest.approx(beta[0], rel=1e-9, abs=1e-12)
    assert all(x.coef_ols is None for x in result.features if not x.selected)
    assert result.refit["method"] == "ols" and "post-selection" in result.refit["note"]
    # The lasso shrinks; least squares on the same columns does not.
    assert all(abs(f[n].coef_ols) > abs(f[n].coef) for n in TRUE)


def test_no_refit_unless_asked(sparse_truth):
    result = _fit(sparse_truth)
    assert result.refit is None and result.intercept_ols is None
    assert all(f.coef_ols is None for f in result.features)


# --------------------------------------------------------------------------------------------
# Diagnostics: each made to happen
# --------------------------------------------------------------------------------------------


def test_clean_data_has_no_diagnostics(sparse_truth):
    codes = set(_codes(_fit(sparse_truth)))
    assert not codes & {"alpha_at_grid_edge", "flat_cv_curve", "more_features_than_rows",
                        "binary_target", "not_converged", "correlated_alternates"}


def test_a_target_unrelated_to_the_features_gives_a_flat_curve_at_the_top(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    path = write_csv(tmp_path / "noise.csv", X, rng.normal(size=200))
    result = _fit(path)
    assert result.alpha["chosen"] == result.alpha["max"]
    edge = [w.message for w in result.warnings if w.code == "alpha_at_grid_edge"]
    assert len(edge) == 1 and "top of the grid" in edge[0] and "null model" in edge[0]
    assert "flat_cv_curve" in _codes(result)


def test_a_minimum_below_the_grid_says_lower_eps(tmp_path):
    X, _, _ = make_regression(n=200, p=6, seed=1)
    y = X[:, :4] @ [1.0, 1.0, 1.0, 0.5] + 1e-3 * np.random.default_rng(1).normal(size=200)
    path = write_csv(tmp_path / "exact.csv", X, y)
    result = _fit(path, eps=0.1, rule="min")
    assert result.alpha["chosen"] == pytest.approx(result.alpha["max"] * 0.1)
    edge = [w.message for w in result.warnings if w.code == "alpha_at_grid_edge"]
    assert len(edge) == 1 and "bottom of the grid" in edge[0] and "lower --eps" in edge[0]
    explicit = _fit(path, alphas=(1.0, 0.5, 0.2), rule="min")
    assert any("extend --alphas downward" in w.message for w in explicit.warnings)


def test_more_features_than_rows(tmp_path):
    X, y, _ = make_regression(n=30, p=40, seed=0)
    result = _fit(write_csv(tmp_path / "wide.csv", X, y))
    msg = next(w.message for w in result.warnings if w.code == "more_features_than_rows")
    assert "(40)" in msg and "(30)" in msg


def test_a_binary_target(tmp_path):
    X, y, _ = make_regression(n=200, p=5, seed=0)
    path = write_csv(tmp_path / "bin.csv", X, (y > np.median(y)).astype(float))
    for engine in ("gram", "data"):
        result = _fit(path, engine=engine, family="gaussian")
        msg = next(w.message for w in result.warnings if w.code == "binary_target")
        assert "linear probability model" in msg
    three = write_csv(tmp_path / "three.csv", X, np.round(y) % 3)
    assert "binary_target" not in _codes(_fit(three))


def test_a_solver_stopped_early_is_reported(tmp_path):
    # Near-duplicate columns make coordinate descent crawl; two epochs cannot converge.
    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    cols = {f"x{j}": a + 1e-3 * rng.normal(size=300) for j in range(4)}
    cols["y"] = a + 0.1 * rng.normal(size=300)
    path = _write(tmp_path, "slow.csv", cols)
    result = select_features(path, replace(FitParams(target="y"), max_iter=2))
    assert "not_converged" in _codes(result)


def test_half_sample_fits_report_progress(sparse_truth):
    calls = []
    select_features(str(sparse_truth), FitParams(target="y", stability=3, n_alphas=20),
                    lambda stage, done, total: calls.append((stage, done, total)))
    assert [c for c in calls if c[0] == "stability"] == [("stability", i, 6)
                                                         for i in range(1, 7)]

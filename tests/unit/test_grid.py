"""The default grid on wide data: its end (1e-2·alpha_max) and the stop once the fit saturates."""

from __future__ import annotations

import numpy as np
import pytest

from l1select.path import (
    MIN_ALPHAS,
    SATURATED_DEV,
    data_deviance_explained,
    gram_deviance_explained,
    saturated_length,
)
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv
from tests.unit.test_engines import assert_same


def _fit(path, **kw):
    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(**kw))


def _alphas(result):
    return np.array([r["alpha"] for r in result.cv["path"]])


def test_saturated_length_follows_glmnet_rules():
    rising = np.linspace(0.0, 0.9, 20)
    assert saturated_length(rising) == 20  # never saturates: the whole grid
    over = rising.copy()
    over[12:] = SATURATED_DEV + 1e-4
    assert saturated_length(over) == 13  # the first alpha past 0.999 is kept
    flat = rising.copy()
    flat[8:] = flat[7] * (1 + 1e-6)  # gains 1e-6 of itself: below 1e-5
    assert saturated_length(flat) == 9
    early = np.full(10, 0.9995)
    assert saturated_length(early) == MIN_ALPHAS  # never fewer than MIN_ALPHAS alphas


def test_deviance_explained_from_gram_equals_from_data():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(30, 6))
    Z = (Z - Z.mean(0)) / Z.std(0)
    yc = Z[:, 0] * 2 + rng.normal(size=30)
    yc -= yc.mean()
    coefs = np.zeros((6, 3))
    coefs[0] = [0.0, 1.0, 2.0]
    coefs[3] = [0.0, 0.0, -0.5]
    n = yc.size
    a = gram_deviance_explained(Z.T @ Z / n, Z.T @ yc / n, float(yc @ yc) / n, coefs)
    b = data_deviance_explained(lambda idx: Z[:, idx], yc, coefs)
    direct = [1 - np.sum((yc - Z @ coefs[:, k]) ** 2) / np.sum(yc ** 2) for k in range(3)]
    # Three summation orders of the same sums of squares on O(1) numbers.
    np.testing.assert_allclose(a, direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, direct, rtol=1e-12, atol=1e-12)
    assert a[0] == pytest.approx(0.0, abs=1e-14)


@pytest.fixture
def wide_csv(tmp_path):
    # 40 rows, 60 features, little noise: the fit explains 99.9% of the deviance well above
    # 1e-2·alpha_max, so the default path stops early.
    X, _, _ = make_regression(n=40, p=60, seed=8)
    rng = np.random.default_rng(8)
    y = 10.0 + X[:, :3] @ np.array([3.0, -2.0, 1.5]) + 0.01 * rng.normal(size=40)
    return write_csv(tmp_path / "wide.csv", X, y)


def test_wide_default_grid_ends_at_1e_2_and_stops_when_saturated(wide_csv):
    res = _fit(wide_csv, n_alphas=50)
    alphas = _alphas(res)
    assert res.params["alphas"] == {"n_alphas": 50, "eps": 0.01}  # the eps the default used
    assert MIN_ALPHAS <= alphas.size < 50  # stopped early
    full = np.geomspace(alphas[0], alphas[0] * 1e-2, 50)
    # The kept alphas are the top of the 1e-2 grid (same geomspace, same arithmetic).
    np.testing.assert_allclose(alphas, full[:alphas.size], rtol=1e-12)


def test_explicit_alphas_are_solved_whole_and_the_stop_changes_no_number(wide_csv):
    res = _fit(wide_csv, n_alphas=50)
    alphas = _alphas(res)
    full = np.geomspace(alphas[0], alphas[0] * 1e-2, 50)
    whole = _fit(wide_csv, alphas=tuple(full))
    assert _alphas(whole).size == 50
    # Each alpha warm-starts from the one before only, so the stopped path is exactly the
    # start of the whole one; the CV errors agree to the solver's tolerance (1e-10 gap).
    np.testing.assert_allclose([r["mean"] for r in res.cv["path"]],
                               [r["mean"] for r in whole.cv["path"][:alphas.size]], rtol=1e-8)


def test_explicit_eps_wins_on_wide_data(tmp_path):
    X, y, _ = make_regression(n=40, p=60, seed=8)
    path = write_csv(tmp_path / "w.csv", X, y)
    res = _fit(path, n_alphas=10, eps=0.2)
    alphas = _alphas(res)
    assert alphas.size == 10  # noisy target: far from saturated at 0.2·alpha_max
    assert alphas[-1] / alphas[0] == pytest.approx(0.2, rel=1e-12)
    default = _alphas(_fit(path, n_alphas=10))
    assert default[-1] / default[0] == pytest.approx(1e-2, rel=1e-12)


def test_tall_default_grid_still_ends_at_1e_3(regression_csv):
    alphas = _alphas(_fit(regression_csv, n_alphas=10))
    assert alphas.size == 10
    assert alphas[-1] / alphas[0] == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("engine", ["gram", "data"])
def test_every_engine_stops_at_the_same_alpha(wide_csv, engine):
    a = _fit(wide_csv, n_alphas=50, engine=engine)
    b = _fit(wide_csv, n_alphas=50, engine="reference")
    assert _alphas(a).size == _alphas(b).size < 50
    assert_same(a, b)

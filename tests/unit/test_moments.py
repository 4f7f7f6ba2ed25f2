"""The exactness core against plain numpy: Moments (batches, merges, late slots, shifts),
the imputed statistics, and the held-out SSE of cv.heldout_sse.

Every data set comes from a seeded ``numpy.random.default_rng``.
"""

from __future__ import annotations

import numpy as np
import pytest

from l1select.cv import heldout_sse
from l1select.moments import Layout, Moments, imputed, merge_groups, merge_sum

# Relative tolerance 1e-9 for data of moderate magnitude: exact formulas, up to the rounding
# of a few hundred operations.
RTOL = 1e-9
# Co-moments of columns with mean 1e8 and unit spread: each value carries an absolute rounding
# of ulp(1e8) ~ 1.5e-8, so even the two-pass reference is only good to ~1e-8 relative; 1e-6
# leaves room for that. Summing raw products instead (sum x² ~ 3e18, rounding ~ 700 against
# a co-moment ~ 100) would fail by many orders of magnitude.
STATS_RTOL = 1e-6


def _reference(U: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Count, mean and centered co-moment by two passes in numpy."""
    mean = U.mean(axis=0)
    centered = U - mean
    return float(len(U)), mean, centered.T @ centered


def _assert_stats(got: tuple, want: tuple) -> None:
    n, mean, com = got
    assert n == want[0]
    np.testing.assert_allclose(mean, want[1], rtol=RTOL, atol=0)
    # Co-moments near zero (independent columns) are compared on the scale of the diagonal.
    scale = np.sqrt(np.outer(np.diag(want[2]), np.diag(want[2])))
    err = np.abs(com - want[2]) / scale
    assert np.all(err <= STATS_RTOL), f"largest relative error {err.max():.2e}"


def _data(rng, n: int = 300, d: int = 4) -> np.ndarray:
    U = rng.normal(size=(n, d))
    U[:, 0] += 1e8  # a large mean against a unit spread: raw sums of products fail here
    U[:, 1] = 0.5 * U[:, 0] - 5e7 + rng.normal(size=n)  # correlated with the first
    return U


def test_batches_and_groups_match_numpy_per_group():
    rng = np.random.default_rng(1)
    U = _data(rng)
    groups = rng.integers(0, 3, size=len(U))
    keys = [("x", i) for i in range(U.shape[1])]
    m = Moments(3, list(keys))
    for lo, hi in [(0, 7), (7, 150), (150, 151), (151, 300)]:  # uneven batches, one a row
        m.add(keys, U[lo:hi], groups[lo:hi])
    for g in range(3):
        mine = (m.n[g], m.mean[g], m.com[g])
        _assert_stats(mine, _reference(U[groups == g]))
    _assert_stats(m.merged(np.array([True, False, True])), _reference(U[groups != 1]))


def test_merge_of_two_passes_with_late_columns():
    """Two parts of a distributed pass: slots one part never saw were 0 on its rows."""
    rng = np.random.default_rng(2)
    U = _data(rng, n=200, d=3)
    late = np.where(np.arange(200) >= 120, rng.normal(size=200) + 7.0, 0.0)  # a level seen late
    groups = rng.integers(0, 2, size=200)
    a_keys = [("x", 0), ("x", 1), ("y",)]
    b_keys = [("y",), ("late",), ("x", 1), ("x", 0)]  # another order, one more slot
    full = np.column_stack([U, late])
    a = Moments(2, list(a_keys))
    a.add(a_keys, full[:120, :3], groups[:120])
    b = Moments(2, list(b_keys))
    b.add(b_keys, full[120:][:, [2, 3, 1, 0]], groups[120:])
    a.merge(b)
    assert a.keys == [("x", 0), ("x", 1), ("y",), ("late",)]
    for g in range(2):
        _assert_stats((a.n[g], a.mean[g], a.com[g]), _reference(full[groups == g]))


def test_a_slot_added_late_at_its_init_value_and_a_shifted_slot():
    """``init``: a new slot was constant at that value on earlier rows; ``shift``: a slot that
    was constant on earlier rows moves by that much (a fill value that changes)."""
    rng = np.random.default_rng(3)
    n1, n2 = 80, 120
    x = rng.normal(size=n1 + n2) * 3 + 40
    level = np.concatenate([np.full(n1, 2.5), rng.normal(size=n2)])  # constant 2.5 at first
    fill = np.concatenate([np.full(n1, 1.0), rng.normal(size=n2) + 1])  # constant 1.0 at first
    groups = np.zeros(n1 + n2, dtype=np.int64)
    m = Moments(1, [("x",), ("fill",)])
    m.add([("x",), ("fill",)], np.column_stack([x[:n1], fill[:n1]]), groups[:n1])
    m.add([("x",), ("fill",), ("level",)],
          np.column_stack([x[n1:], fill[n1:] + 4.0, level[n1:]]), groups[n1:],
          init={("level",): 2.5}, shift={("fill",): 4.0})
    want = _reference(np.column_stack([x, fill + 4.0, level]))
    _assert_stats((m.n[0], m.mean[0], m.com[0]), want)


def test_merge_sum_is_the_pairwise_merge():
    rng = np.random.default_rng(4)
    U = _data(rng, n=400, d=3)
    groups = rng.integers(0, 16, size=400)
    keys = [("x", i) for i in range(3)]
    m = Moments(16, list(keys))
    m.add(keys, U, groups)
    which = rng.random(16) < 0.5
    pairwise = merge_groups(m.n, m.mean, m.com, which)
    _assert_stats(merge_sum(m.n, m.mean, m.com, which), pairwise)
    _assert_stats(pairwise, _reference(U[which[groups]]))


def _missing_design(rng, n: int):
    """Two features with missing values, one without, and y; the slot layout of moments.py."""
    X = rng.normal(size=(n, 3)) * [2.0, 0.5, 1.0] + [10.0, -3.0, 0.0]
    y = X @ [1.5, -2.0, 0.7] + rng.normal(size=n) + 4.0
    X[rng.random(n) < 0.2, 0] = np.nan
    X[rng.random(n) < 0.3, 1] = np.nan
    fill = np.array([9.0, -2.0, 0.0])  # any fixed value: the statistics must not depend on it
    missing = np.isnan(X)
    # slots: z0, z1, z2, r0, r1, y
    U = np.column_stack([np.where(missing, fill, X), missing[:, :2].astype(float), y])
    layout = Layout(value=np.array([0, 1, 2]), missing=np.array([3, 4, -1]), fill=fill,
                    target=5)
    return X, y, U, layout


def test_imputed_statistics_match_numpy_mean_imputation():
    rng = np.random.default_rng(5)
    X, y, U, layout = _missing_design(rng, 250)
    n, mean, com = _reference(U)
    got = imputed(n, mean, com, layout)
    col_mean = np.nanmean(X, axis=0)
    Xi = np.where(np.isnan(X), col_mean, X)
    Xc, yc = Xi - col_mean, y - y.mean()
    np.testing.assert_allclose(got.x_mean, col_mean, rtol=RTOL)
    np.testing.assert_allclose(got.xx, Xc.T @ Xc, rtol=RTOL, atol=RTOL * np.abs(Xc).max() ** 2)
    np.testing.assert_allclose(got.xy, Xc.T @ yc, rtol=RTOL)
    assert got.y_mean == pytest.approx(y.mean(), rel=RTOL)
    assert got.yy == pytest.approx(yc @ yc, rel=RTOL)
    # A feature that is never missing is never imputed: no shift.
    want_shift = np.where(layout.missing >= 0, layout.fill - col_mean, 0.0)
    np.testing.assert_allclose(got.shift, want_shift, rtol=RTOL, atol=0)


def test_heldout_sse_matches_the_residuals_of_the_imputed_rows():
    rng = np.random.default_rng(6)
    X, y, U, layout = _missing_design(rng, 90)
    train_mean = np.array([10.3, -2.8, 0.1])  # imputation uses the training rows' means
    coef = rng.normal(size=(3, 4))  # four models (alphas) on the original scale
    intercept = rng.normal(size=4) + 3.0
    n, mean, com = _reference(U)
    got = heldout_sse(n, mean, com, layout.value, layout.missing, layout.target,
                      layout.fill - train_mean, coef, intercept)
    Xi = np.where(np.isnan(X), train_mean, X)
    residual = y[:, None] - (Xi @ coef + intercept)
    np.testing.assert_allclose(got, (residual ** 2).sum(axis=0), rtol=RTOL)


def test_heldout_sse_of_a_perfect_model_is_zero():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 2)) + 100.0
    y = X @ [2.0, -1.0] + 5.0
    U = np.column_stack([X, y])
    n, mean, com = _reference(U)
    sse = heldout_sse(n, mean, com, np.array([0, 1]), np.array([-1, -1]), 2, np.zeros(2),
                      np.array([[2.0], [-1.0]]), np.array([5.0]))
    # Zero up to the rounding of y (values ~100): far below one unit of squared error.
    assert 0.0 <= sse[0] < 1e-16 * n * 100 ** 2

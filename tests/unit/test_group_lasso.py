"""The group lasso kernel against an independent proximal-gradient solution and its KKT
conditions; groups of one against scikit-learn's lasso."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from l1select.grouplasso import feature_groups, group_alpha_max, solve_group_gram
from l1select.types import FeatureSpec

PARAMS = SimpleNamespace(tol=1e-14, max_iter=200_000)


def _problem(seed=0, n=300):
    """Standardized design: a 5-level and a 3-level one-hot group, and 4 numeric columns."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n)
    b = rng.integers(0, 3, n)
    X = np.column_stack([(a[:, None] == np.arange(5)).astype(float),
                         rng.normal(size=(n, 2)),
                         (b[:, None] == np.arange(3)).astype(float),
                         rng.normal(size=(n, 2))])
    groups = np.array([0] * 5 + [1, 2] + [3] * 3 + [4, 5])
    y = np.array([1.0, -0.5, 0.0, 0.3, 0.8])[a] + X[:, 5] * 0.7 + rng.normal(size=n)
    Xs = (X - X.mean(0)) / X.std(0)
    yc = y - y.mean()
    return Xs, yc, groups


def _stats(Xs, yc):
    n = yc.size
    return Xs.T @ Xs / n, Xs.T @ yc / n, float(yc @ yc / n)


def _prox_grad(Xs, yc, groups, alpha, l1_ratio, n_iter=5_000):
    """FISTA on the objective, written from its definition (no code shared with the kernel)."""
    n, p = Xs.shape
    G, c, _ = _stats(Xs, yc)
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    step = 1.0 / (np.linalg.eigvalsh(G)[-1] + l2)
    sizes = np.bincount(groups)
    w = z = np.zeros(p)
    t = 1.0
    for _ in range(n_iter):
        v = z - step * (G @ z - c + l2 * z)
        nrm = np.sqrt(np.bincount(groups, weights=v * v))
        thr = step * l1 * np.sqrt(sizes)
        keep = np.where(nrm > thr, 1 - thr / np.where(nrm > 0, nrm, 1.0), 0.0)
        new = v * keep[groups]
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = new + (t - 1) / t_next * (new - w)
        w, t = new, t_next
    return w


def _objective(Xs, yc, groups, w, alpha, l1_ratio):
    n = yc.size
    sizes = np.bincount(groups)
    pen = sum(np.sqrt(sizes[g]) * np.linalg.norm(w[groups == g]) for g in range(sizes.size))
    return (np.sum((yc - Xs @ w) ** 2) / (2 * n) + alpha * l1_ratio * pen
            + alpha * (1 - l1_ratio) / 2 * w @ w)


def _solve(Xs, yc, groups, alphas, l1_ratio=1.0):
    G, c, yty = _stats(Xs, yc)
    coefs, ok = solve_group_gram(G, c, yty, np.asarray(alphas, float), l1_ratio,
                                 np.ones(c.size, bool), PARAMS, groups)
    assert ok
    return coefs


@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_matches_proximal_gradient_and_kkt(l1_ratio):
    Xs, yc, groups = _problem()
    G, c, _ = _stats(Xs, yc)
    a_max = group_alpha_max(c, groups, l1_ratio)
    alphas = a_max * np.array([0.5, 0.2, 0.05])
    coefs = _solve(Xs, yc, groups, alphas, l1_ratio)
    for k, alpha in enumerate(alphas):
        w = coefs[:, k]
        ref = _prox_grad(Xs, yc, groups, alpha, l1_ratio)
        # Both minimize the same strictly convex (in the fitted values) objective; the
        # objectives agree to ~1e-12, the coefficients to the square root of that at worst.
        obj, obj_ref = (_objective(Xs, yc, groups, v, alpha, l1_ratio) for v in (w, ref))
        assert obj <= obj_ref + 1e-12 * abs(obj_ref)
        np.testing.assert_allclose(w, ref, atol=1e-6)
        # KKT: grad_g = X_gᵀr/n - l2 w_g equals l1·√|g|·w_g/||w_g|| on an active group, and
        # has norm at most l1·√|g| on a zero group (1e-8: the gap stop at 1e-14·var(y)).
        l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
        grad = c - G @ w - l2 * w
        sizes = np.bincount(groups)
        active = 0
        for g in range(sizes.size):
            m = groups == g
            nrm = np.linalg.norm(w[m])
            if nrm > 0:
                active += 1
                np.testing.assert_allclose(grad[m], l1 * np.sqrt(sizes[g]) * w[m] / nrm,
                                           atol=1e-8)
            else:
                assert np.linalg.norm(grad[m]) <= l1 * np.sqrt(sizes[g]) * (1 + 1e-8)
        assert 0 < active


def test_all_zero_at_alpha_max_and_a_group_enters_just_below():
    Xs, yc, groups = _problem(seed=1)
    _, c, _ = _stats(Xs, yc)
    a_max = group_alpha_max(c, groups, 1.0)
    coefs = _solve(Xs, yc, groups, [a_max, a_max * 0.99])
    assert not coefs[:, 0].any()
    entered = np.unique(groups[coefs[:, 1] != 0])
    assert entered.size == 1
    # A group enters whole: every level of the entering group is non-zero.
    assert np.all(coefs[groups == entered[0], 1] != 0)


def test_groups_of_one_are_the_lasso():
    from sklearn.linear_model import enet_path

    Xs, yc, _ = _problem(seed=2)
    single = np.arange(Xs.shape[1])
    _, c, _ = _stats(Xs, yc)
    alphas = group_alpha_max(c, single, 0.7) * np.array([0.6, 0.3, 0.1, 0.02])
    ours = _solve(Xs, yc, single, alphas, 0.7)
    _, ref, _ = enet_path(Xs, yc, l1_ratio=0.7, alphas=alphas, tol=1e-14, max_iter=1_000_000)
    # Both solve to a duality gap of ~1e-14 relative: coefficients agree to ~1e-7.
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_feature_groups_one_per_categorical():
    feats = [FeatureSpec("x", "x", "numeric"), FeatureSpec("c=a", "c", "onehot", "a"),
             FeatureSpec("c=b", "c", "onehot", "b"), FeatureSpec("c=(other)", "c", "other"),
             FeatureSpec("f", "f", "bool"), FeatureSpec("d=u", "d", "onehot", "u"),
             FeatureSpec("z", "z", "numeric")]
    assert feature_groups(feats).tolist() == [0, 1, 1, 1, 2, 3, 4]

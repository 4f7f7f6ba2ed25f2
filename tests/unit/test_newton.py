"""The client-side proximal Newton path (``solve/newton.py``, the Dask engine's solver) against
the data-matrix kernel it mirrors, on rows held in memory: the same coefficients, intercepts
and sweeps; answers summed over chunks of rows (partitions) equal the answer on all rows; the
lockstep driver serves several fits with one pass per round."""

from __future__ import annotations

import numpy as np
import pytest

from l1select.solve.logistic import (
    fit_path,
    fit_weights,
    make_design,
    standardize_rows,
    weighted_scaling,
)
from l1select.solve.newton import PathState, Request, lockstep, path_steps, step_sums

# The kernel's default stopping threshold (FitParams.tol): both solvers take the same steps
# and stop at the same sweep, so only rounding separates them (the Gram route sums in another
# order): 1e-12 relative leaves three orders of magnitude for it and catches any different
# step (a sweep more or less moves the coefficients by ~1e-6 here).
TOL = 1e-10
RTOL = 1e-12


def _data(n=400, p=10, seed=0, missing=0.08):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 1.0
    X[:, 1] += X[:, 0]
    eta = 1.2 * X[:, 0] - 0.8 * X[:, 2] + 0.5 * X[:, 4] - 1.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    X[rng.random(X.shape) < missing] = np.nan
    w = rng.integers(0, 4, size=n).astype(float)
    return X, y, w


def _gram_path(X, y, w, rows, alphas, l1_ratio, pf, chunks=1):
    """The Newton path of ``rows`` with every answer summed over ``chunks`` blocks of rows."""
    design = make_design(X)
    wf = fit_weights(w, rows, y.size)
    mean, scale, _ = weighted_scaling(design, wf, True)
    inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    Z = standardize_rows(X[rows], None, mean, scale)
    blocks = np.array_split(np.arange(rows.size), chunks)

    def answer(req: Request):
        steps = [step_sums(Z[b], y[rows][b], wf[rows][b], req) for b in blocks]
        out = steps[0]
        for s in steps[1:]:
            out = out + s
        return out

    state = PathState.empty(X.shape[1], alphas.size)
    gen = path_steps(float(wf.sum()), float(wf @ y / wf.sum()), alphas, l1_ratio, pf, inv,
                     TOL, 100_000, 0.0, state)
    passes = lockstep(lambda reqs: {k: answer(r) for k, r in reqs.items()}, {0: gen})
    return state, passes


@pytest.mark.parametrize("l1_ratio,forced", [(1.0, False), (0.5, False), (1.0, True)],
                         ids=["lasso", "enet", "forced"])
def test_the_gram_route_takes_the_kernels_steps(l1_ratio, forced):
    X, y, w = _data()
    rows = np.flatnonzero(np.arange(y.size) % 5 != 2)  # a training fold
    pf = np.ones(X.shape[1])
    if forced:
        pf[3] = 0.0
    alphas = np.geomspace(0.2, 0.002, 25) / l1_ratio
    ref = fit_path(make_design(X), y, w, rows, alphas, l1_ratio, pf, True, TOL, 100_000)
    got, passes = _gram_path(X, y, w, rows, alphas, l1_ratio, pf, chunks=3)
    np.testing.assert_allclose(got.coefs, ref.coefs, rtol=RTOL,
                               atol=RTOL * np.abs(ref.coefs).max())
    np.testing.assert_allclose(got.intercepts, ref.intercepts, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(got.dev_ratio, ref.dev_ratio, rtol=RTOL)
    assert (got.coefs != 0).sum() == (ref.coefs != 0).sum()
    # A few passes per alpha (Newton steps, plus one when the working set grows).
    assert alphas.size < passes < 8 * alphas.size


def test_answers_of_chunks_add_up_to_the_whole():
    X, y, w = _data(n=200)
    Z = standardize_rows(X, None, np.nanmean(X, axis=0), np.nanstd(X, axis=0))
    req = Request(0.3, np.r_[0.5, 0.0, -0.2, np.zeros(7)], np.array([0, 2, 5]))
    whole = step_sums(Z, y, w, req)
    parts = step_sums(Z[:37], y[:37], w[:37], req) + step_sums(Z[37:], y[37:], w[37:], req)
    for name in ("loss", "total", "sum_v", "grad", "vz", "gram"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12,
                                   err_msg=name)
    assert whole.gram.shape == (3, 3)


def test_lockstep_serves_every_fit_in_one_pass_per_round():
    X, y, w = _data(n=300, seed=1)
    alphas = np.geomspace(0.1, 0.005, 12)
    pf = np.ones(X.shape[1])
    fits = {k: np.flatnonzero(np.arange(y.size) % 3 != k) for k in range(3)}
    alone = {k: _gram_path(X, y, w, rows, alphas, 1.0, pf) for k, rows in fits.items()}
    states, gens, answer = {}, {}, {}
    design = make_design(X)
    for k, rows in fits.items():
        wf = fit_weights(w, rows, y.size)
        mean, scale, _ = weighted_scaling(design, wf, True)
        inv = np.where(scale > 0, 1.0 / scale, 0.0)
        Z = standardize_rows(X[rows], None, mean, scale)
        answer[k] = (lambda req, Z=Z, yy=y[rows], ww=wf[rows]: step_sums(Z, yy, ww, req))
        states[k] = PathState.empty(X.shape[1], alphas.size)
        gens[k] = path_steps(float(wf.sum()), float(wf @ y / wf.sum()), alphas, 1.0, pf, inv,
                             TOL, 100_000, 0.0, states[k])
    passes = lockstep(lambda reqs: {k: answer[k](r) for k, r in reqs.items()}, gens)
    assert passes == max(p for _, p in alone.values())
    for k in fits:
        np.testing.assert_array_equal(states[k].coefs, alone[k][0].coefs)

"""The data-matrix solver for wide data: coordinate descent on the matrix in memory.

When there are more features than about half the rows, or too many for the Gram matrices to
fit, the per-fold Gram costs more than it saves; this solver keeps the design matrix (with NaN
where missing, ``engines.memory.InMemory``) and lets the kernel standardize and impute each
training fold implicitly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from l1select.engines.base import InMemory, Job
from l1select.path import data_deviance_explained, make_penalty, saturated_length, stops_early
from l1select.solve.matrix import (
    check_scaling,
    half_rows,
    in_own_units,
    initial_data,
    n_micro,
    n_values,
    prepare_grids,
    test_error_fn,
)
from l1select.types import FitParams, PathFit, Solved


def _fold_scaling(X: np.ndarray, rows: np.ndarray, standardize: bool, unit: np.ndarray):
    """Training means, scales and standard deviations over ``rows`` (missing at the mean);
    ``unit``: how the columns are held (see InMemory)."""
    from l1select._aot import data_kernels

    data_moments, _ = data_kernels()
    mean, std = data_moments(np.asfortranarray(X, dtype=np.float64), _int64(rows))
    # A zero scale tells the kernel the feature is constant here: it stays at zero.
    scale = std if standardize else np.where(std > 0, unit, 0.0)
    return mean, scale


def _float64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _int64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _standardized_columns(X: np.ndarray, idx: np.ndarray, mean: np.ndarray, scale: np.ndarray
                          ) -> np.ndarray:
    """Columns ``idx`` of the standardized matrix as the kernel sees it (missing: 0)."""
    safe = np.where(scale[idx] > 0, scale[idx], 1.0)
    Z = (X[:, idx] - mean[idx]) / safe
    Z[np.isnan(Z)] = 0.0
    Z[:, scale[idx] == 0] = 0.0
    return Z


def solve_threads(params: FitParams, n_jobs: int) -> int:
    """Threads for independent path fits: --threads, else every core (at most one a fit)."""
    import os

    return max(1, min(n_jobs, params.threads or os.cpu_count() or 1))


def _path(Xf, y, rows, mean, scale, y_mean, alphas, l1_ratio, params, penalty=None
          ) -> tuple[np.ndarray, bool]:
    from l1select._aot import data_kernels

    _, cd_data_path = data_kernels()
    p = Xf.shape[1]
    pf = np.ones(p) if penalty is None else penalty
    # The exact types of the kernel's signature (the AOT module has no dispatcher to convert
    # them); for the arrays solve() passes these are no copies.
    coefs, _, n_iter = cd_data_path(np.asfortranarray(Xf, dtype=np.float64), _float64(y),
                                    _int64(rows), _float64(mean), _float64(scale),
                                    float(y_mean), _float64(alphas), float(l1_ratio),
                                    _float64(pf), np.zeros(p), float(params.tol),
                                    int(params.max_iter))
    return coefs, bool(np.all(n_iter < params.max_iter))


def _in_threads(jobs: list[tuple], n_threads: int) -> list:
    """``_path(*job)`` for each job, on ``n_threads`` threads, the results in order.

    The caller waits on futures, which Ctrl-C interrupts at once (a kernel running on the
    calling thread would hold the interrupt until its path ends). Then the paths still running
    are not waited for (the command leaves without them, see cli.main) and the others never
    start.
    """
    pool = ThreadPoolExecutor(max_workers=n_threads)
    try:
        futures = [pool.submit(_path, *job) for job in jobs]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def solve(mem: InMemory, job: Job) -> Solved:
    """The paths on all rows and on every training fold, their held-out errors (any per-row
    measure: the rows are here), the test error and stability's half-samples."""
    source, params = job.source, job.params
    Xf = np.asfortranarray(mem.X)
    y = np.ascontiguousarray(mem.y)
    # The folds' means and scales: one pass over the training rows each, side by side (the
    # kernel releases the GIL; 0.1 s on one core at 20,000 features and five folds), and
    # beside the all-rows scaling and grids, which this thread makes meanwhile (numpy
    # releases the GIL too): the paths start 0.10 s after the stage does, not 0.13 s, at
    # 500 x 20,000 on two cores.
    unit = mem.units()
    with ThreadPoolExecutor(max_workers=solve_threads(params, len(mem.folds))) as pool:
        fold_scalings = pool.map(
            lambda rows: _fold_scaling(Xf, rows, params.standardize, unit),
            [rows for rows, _ in mem.folds])
        prep = prepare_grids(mem, params)
        scalings = list(fold_scalings)
    scaling, grids, a_max, penalty = prep.scaling, prep.grids, prep.a_max, prep.penalty
    all_rows = np.arange(y.size, dtype=np.int64)
    scale_all = np.where(scaling.x_std > 0, scaling.x_scale, 0.0)
    folds = [(rows, mean, scale, float(y[rows].mean()), test)
             for (rows, test), (mean, scale) in zip(mem.folds, scalings, strict=True)]
    own = in_own_units(scaling, mem.units())
    check_scaling(own, mem.recipe, source.display)
    fits = []
    early = stops_early(params, y.size, Xf.shape[1])
    # The rows are here, so the held-out error can be any per-row measure, not only the
    # quadratic form the statistics engines are limited to.
    mae = params.measure == "mae"
    for l1_ratio, alphas in grids:
        # The all-rows fit and the folds' are independent: the kernel releases the GIL, so
        # they run side by side on the machine's cores (the numbers do not depend on it).
        jobs = [(all_rows, scaling.x_mean, scale_all, scaling.y_mean)] + \
            [(rows, mean, scale, y_mean) for rows, mean, scale, y_mean, _ in folds]
        threads = solve_threads(params, len(jobs))

        def args(batch, grid, l1_ratio=l1_ratio):
            return [(Xf, y, rows, mean, scale, y_mean, grid, l1_ratio, params, penalty)
                    for rows, mean, scale, y_mean in batch]

        if early:
            # The all-rows fit decides where the path ends (it saturates); the folds that
            # run beside it solve the whole grid and are cut after, which gives the same
            # numbers (each alpha warm-starts from the one before, never from later ones).
            first = _in_threads(args(jobs[:threads], alphas), threads)
            m = saturated_length(data_deviance_explained(
                lambda idx: _standardized_columns(mem.X, idx, scaling.x_mean, scale_all),
                y - scaling.y_mean, first[0][0]))
            alphas = alphas[:m]
            done = [(w[:, :m], ok) for w, ok in first] + \
                _in_threads(args(jobs[threads:], alphas), threads)
        else:
            done = _in_threads(args(jobs, alphas), threads)
        coefs, converged = done[0]
        mse_path = sizes = fold_coefs = None
        if folds:
            mse_path = np.empty((alphas.size, len(folds)))
            sizes = np.empty(len(folds))
            fold_coefs = np.empty((len(folds), coefs.shape[0], alphas.size))
            for k, (_, mean, scale, y_mean, test) in enumerate(folds):
                # Dropped from done once copied: two copies of every fold's path would be
                # 0.4 GB at 100,000 features.
                (w, ok), done[k + 1] = done[k + 1], None
                converged &= ok
                # Only the columns with a coefficient somewhere on the path predict: wide
                # data has a few hundred of them among tens of thousands.
                act = np.flatnonzero(np.any(w != 0.0, axis=1))
                safe = np.where(scale[act] > 0, scale[act], 1.0)
                Z = (mem.X[np.ix_(test, act)] - mean[act]) / safe
                Z[np.isnan(Z)] = 0.0
                resid = y[test][:, None] - (y_mean + Z @ w[act])
                mse_path[:, k] = np.mean(np.abs(resid) if mae else resid ** 2, axis=0)
                sizes[k] = test.size
                fold_coefs[k] = w
        fits.append(PathFit(l1_ratio=l1_ratio, alphas=alphas, coefs=coefs, mse_path=mse_path,
                            fold_sizes=sizes, fold_coefs=fold_coefs, converged=converged))
    return Solved(
        engine="data", recipe=mem.recipe, warnings=mem.warnings, fits=tuple(fits),
        scaling=own, alpha_max=tuple(a_max), n_rows=mem.n_rows, n_used=int(y.size),
        n_test=int(mem.y_test.size), n_dropped=mem.n_dropped, sha256=mem.sha256,
        n_folds=mem.n_folds, fold_labels=mem.fold_labels,
        test_error=test_error_fn(mem, scaling.x_mean), penalty=penalty,
        adaptive=prep.adaptive, problem=prep.problem,
        halves=_halves(mem, Xf, y, params, penalty) if params.stability else None,
        n_target_values=n_values(y), measure="mae" if mae else "mse",
    )


def _halves(mem, Xf: np.ndarray, y: np.ndarray, params: FitParams, penalty):
    """The half-sample solver of stability selection on the data matrix: each half's rows,
    imputed and standardized with the half's own means and scales, as a training fold."""
    halves_rows = half_rows(mem, params)
    p = Xf.shape[1]

    def halves(l1_ratio: float, alphas: np.ndarray, progress=None):
        chosen = np.zeros((len(halves_rows), p, alphas.size), dtype=bool)
        converged = True
        for i, rows in enumerate(halves_rows):
            mean, scale = _fold_scaling(Xf, rows, params.standardize, mem.units())
            y_mean = float(y[rows].mean())
            pf = penalty
            if params.adaptive:
                safe = np.where(scale > 0, scale, 1.0)
                Z = (mem.X[rows] - mean) / safe
                Z[np.isnan(Z)] = 0.0
                Z[:, scale == 0] = 0.0
                pf, _ = make_penalty(mem.recipe.features, params,
                                     lambda Z=Z, yc=y[rows] - y_mean: initial_data(Z, yc))
            [(w, ok)] = _in_threads([(Xf, y, rows, mean, scale, y_mean, alphas, l1_ratio,
                                      params, pf)], 1)
            converged &= ok
            chosen[i] = w != 0.0
            if progress is not None:
                progress(i + 1, len(halves_rows))
        return chosen, converged, n_micro(mem)

    return halves

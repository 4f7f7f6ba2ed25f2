"""The binomial solver: penalized logistic regression on the data held in memory.

Logistic loss has no finite sufficient statistics, so the rows are loaded once (float64, NaN
where missing: 8 bytes a cell) and every path (all rows, each training fold, each half-sample)
is solved on that one matrix with its own weighted standardization. The paths of the folds
and of all rows run in parallel threads (the kernel releases the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from l1select.engines.base import InMemory, Job
from l1select.path import grids_for, make_penalty
from l1select.solve.checks import SATURATED_PATH, binomial_measure, check_binomial
from l1select.solve.data import solve_threads
from l1select.solve.logistic import (
    MEASURES,
    alpha_max,
    deviance,
    fit_path,
    fold_measure,
    make_design,
    normalized_weights,
    probabilities,
    roc_points,
    standardize_rows,
    weighted_auc,
    weighted_scaling,
)
from l1select.solve.matrix import half_rows, n_micro
from l1select.types import AllRows, FitParams, PathFit, Scaling, Solved, Warn

# The adaptive lasso's initial fit for binomial: ridge-penalized logistic regression at this
# alpha on the standardized scale (the gaussian initial ridge uses 1e-2 of the mean Gram
# diagonal, i.e. 1e-2 when standardized): close to the unpenalized fit, finite on separable
# data.
ADAPTIVE_RIDGE_ALPHA = 1e-2
# Sweeps allowed to the unpenalized refit: a converging refit needs a few dozen; with
# separated classes the estimates grow without end, and this many shows it.
REFIT_MAX_ITER = 2000


def solve(mem: InMemory, job: Job) -> Solved:
    """The logistic paths on all rows and every training fold (in threads), every CV measure,
    the ROC of the out-of-fold predictions, the test error, the refit and the half-samples."""
    source, params = job.source, job.params
    unit = mem.units()  # X holds each column × its unit (a power of two; 1 for most)
    check_binomial(mem, params, source.display)
    X = make_design(mem.X)  # the solver's copy; mem.X is no longer needed
    mem = replace(mem, X=np.empty((0, X.shape[1])))
    y = np.ascontiguousarray(mem.y)
    n, p = X.shape
    w = None if mem.w is None else np.ascontiguousarray(mem.w)
    wn = normalized_weights(w, n)
    all_rows = np.arange(n, dtype=np.int64)
    warnings: list[Warn] = []
    folds = list(mem.folds)

    mean, scale, std = weighted_scaling(X, wn, params.standardize, unit)
    # The result's scaling is in the columns' own units; the solver works in the held ones.
    scaling = Scaling(x_mean=mean / unit, x_scale=np.where(scale > 0, scale, unit) / unit,
                      x_std=std / unit,
                      y_mean=float(wn @ y / n), y_var=float(wn @ (y - wn @ y / n) ** 2 / n),
                      n_samples=n)

    def initial():
        fit = fit_path(X, y, w, all_rows, np.array([ADAPTIVE_RIDGE_ALPHA]), 0.0, None,
                       params.standardize, params.tol, params.max_iter, unit=unit)
        return fit.coefs[:, 0], "ridge_logistic", ADAPTIVE_RIDGE_ALPHA

    penalty, adaptive = make_penalty(mem.recipe.features, params, initial)
    a_max = [alpha_max(X, y, w, all_rows, r, penalty, params.standardize, unit)
             for r in params.l1_ratios]
    measure, more = binomial_measure(params, folds)
    warnings += more
    default_grid = params.alphas is None and params.alpha is None
    fits = []
    saturated = False
    for l1_ratio, alphas in grids_for(a_max, params, n, p):
        whole = fit_path(X, y, w, all_rows, alphas, l1_ratio, penalty, params.standardize,
                         params.tol, params.max_iter, stop_saturated=default_grid,
                         scaling=(mean, scale, std))
        if whole.n_solved < alphas.size:
            saturated = True
            alphas = alphas[:whole.n_solved]
        converged = whole.converged
        coefs = whole.coefs[:, :alphas.size]
        measures = fold_coefs = sizes = None
        if folds:
            with ThreadPoolExecutor(max_workers=solve_threads(params, len(folds))) as pool:
                done = list(pool.map(
                    lambda f, a=alphas, r=l1_ratio: fit_path(
                        X, y, w, f[0], a, r, penalty, params.standardize, params.tol,
                        params.max_iter, unit=unit), folds))
            measures = {m: np.empty((alphas.size, len(folds))) for m in MEASURES}
            sizes = np.empty(len(folds))
            fold_coefs = np.empty((len(folds), p, alphas.size))
            for k, ((_, test), fit) in enumerate(zip(folds, done, strict=True)):
                converged &= fit.converged
                Z = standardize_rows(X.dense(test), None, fit.mean, fit.scale)
                prob = probabilities(Z, fit.coefs, fit.intercepts)
                wt = np.ones(test.size) if w is None else w[test]
                for m in MEASURES:
                    measures[m][:, k] = fold_measure(m, y[test], wt, prob, params.threshold)
                sizes[k] = wt.sum()
                fold_coefs[k] = fit.coefs
        fits.append(PathFit(
            l1_ratio=l1_ratio, alphas=alphas, coefs=coefs,
            mse_path=None if measures is None else measures[measure], fold_sizes=sizes,
            converged=converged, fold_coefs=fold_coefs,
            intercepts=whole.intercepts[:alphas.size], measures=measures,
            dev_ratio=whole.dev_ratio[:alphas.size],
            roc=None if not folds else _roc(X, y, w, folds, done)))
    if saturated:
        warnings.append(SATURATED_PATH)

    problem = _all_rows_problem(X, y, wn, mean, scale, scaling.y_mean)
    return Solved(
        engine="data", recipe=mem.recipe, warnings=mem.warnings + tuple(warnings),
        fits=tuple(fits), scaling=scaling, alpha_max=tuple(a_max), n_rows=mem.n_rows,
        n_used=n, n_test=int(mem.y_test.size), n_dropped=mem.n_dropped, sha256=mem.sha256,
        n_folds=mem.n_folds, fold_labels=mem.fold_labels,
        test_error=_test_error(mem, scaling.x_mean, unit, params.threshold), penalty=penalty,
        adaptive=adaptive, problem=problem,
        halves=_halves(mem, X, y, w, params, penalty, unit) if params.stability else None,
        family="binomial", measure=measure,
        refit=lambda sel: _refit(X, y, w, all_rows, sel, (mean, scale, std), unit,
                                 scaling.y_mean, params),
        classes=mem.classes,
    )


# Columns standardized at a time for the all-rows correlations: never a second n×p matrix.
BLOCK = 64


def _all_rows_problem(X, y, wn, mean, scale, y_mean) -> AllRows:
    """The standardized all-rows Gram, column by column on demand (alternates use it), its
    diagonal, and ``Xsᵀ W (y − ȳ_w) / n``; formed in blocks of columns."""
    n, p = X.shape

    def blocks():
        for lo in range(0, p, BLOCK):
            hi = min(lo + BLOCK, p)
            cols = np.arange(lo, hi)
            yield lo, hi, standardize_rows(X.dense(cols=cols), None, mean[lo:hi], scale[lo:hi])

    diag = np.empty(p)
    xty = np.empty(p)
    for lo, hi, Z in blocks():
        diag[lo:hi] = np.einsum("ij,ij->j", Z, Z) / n
        xty[lo:hi] = Z.T @ (wn * (y - y_mean)) / n

    def gram_cols(idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        sel = standardize_rows(X.dense(cols=idx), None, mean[idx], scale[idx])
        out = np.empty((p, idx.size))
        for lo, hi, Z in blocks():
            out[lo:hi] = Z.T @ sel / n
        return out

    return AllRows(gram_cols=gram_cols, gram_diag=diag, xty=xty)


def _roc(X, y, w, folds, fits):
    """``roc(i)``: the ROC curve of the out-of-fold probabilities at the i-th alpha (each row
    predicted by the fit of the folds that did not hold it)."""

    def roc(i: int) -> dict:
        prob = np.empty(y.size)
        for (_, test), fit in zip(folds, fits, strict=True):
            Z = standardize_rows(X.dense(test), None, fit.mean, fit.scale)
            prob[test] = probabilities(Z, fit.coefs[:, i:i + 1], fit.intercepts[i:i + 1])[:, 0]
        held = np.concatenate([t for _, t in folds])
        return roc_points(y[held], np.ones(held.size) if w is None else w[held], prob[held])

    return roc


def _test_error(mem, x_mean: np.ndarray, unit: np.ndarray, threshold: float):
    """Held-out deviance, AUC and accuracy of a model on the original scale (``x_mean`` in
    the columns' own units, the imputation of a missing value)."""
    if mem.y_test.size == 0:
        return None

    def test_error(coef: np.ndarray, intercept: float) -> dict:
        own = mem.X_test / unit
        X = np.where(np.isnan(own), x_mean, own)
        prob = probabilities(X, coef[:, None], np.array([intercept]))[:, 0]
        y = mem.y_test
        wt = np.ones(y.size) if mem.w_test is None else mem.w_test
        wn = wt / wt.sum()
        auc = weighted_auc(y, wt, prob)
        return {"n_rows": int(y.size),
                "deviance": float(wn @ deviance(y, prob)),
                "auc": None if np.isnan(auc) else auc,
                "accuracy": float(wn @ ((prob > threshold) == (y == 1)))}

    return test_error


def _refit(X, y, w, rows, selected: np.ndarray, held, unit: np.ndarray, y_mean: float,
           params: FitParams) -> tuple[np.ndarray, float, bool]:
    """Unpenalized logistic regression on the ``selected`` features (indices): coefficients
    on the original scale (0 for the others), the intercept, and whether it failed to
    converge (separation: the estimates diverge). ``held``: the all-rows (mean, scale, std)
    in the units the columns are held in."""
    p = X.shape[1]
    coef = np.zeros(p)
    if selected.size == 0:
        b0 = np.log(y_mean / (1.0 - y_mean))
        return coef, float(b0), False
    mean, scale, std = (v[selected] for v in held)
    sub = make_design(X.dense(cols=selected))
    fit = fit_path(sub, y, w, rows, np.array([1.0]), 1.0, np.zeros(selected.size),
                   params.standardize, params.tol, min(params.max_iter, REFIT_MAX_ITER),
                   scaling=(mean, scale, std))
    beta = fit.coefs[:, 0] * np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    coef[selected] = beta * unit[selected]
    intercept = float(fit.intercepts[0] - beta @ mean)
    diverged = not fit.converged or fit.dev_ratio[0] > 0.999
    return coef, intercept, diverged


def _halves(mem, X, y, w, params: FitParams, penalty, unit):
    """The half-sample paths of stability selection: each half's rows as a training fold."""
    halves_rows = half_rows(mem, params)
    p = X.shape[1]

    def halves(l1_ratio: float, alphas: np.ndarray, progress=None):
        chosen = np.zeros((len(halves_rows), p, alphas.size), dtype=bool)
        converged = True
        for i, rows in enumerate(halves_rows):
            pf = penalty
            if params.adaptive:
                def initial(rows=rows):
                    fit = fit_path(X, y, w, rows, np.array([ADAPTIVE_RIDGE_ALPHA]), 0.0, None,
                                   params.standardize, params.tol, params.max_iter, unit=unit)
                    return fit.coefs[:, 0], "ridge_logistic", ADAPTIVE_RIDGE_ALPHA

                pf, _ = make_penalty(mem.recipe.features, params, initial)
            fit = fit_path(X, y, w, rows, alphas, l1_ratio, pf, params.standardize,
                           params.tol, params.max_iter, unit=unit)
            converged &= fit.converged
            chosen[i] = fit.coefs != 0.0
            if progress is not None:
                progress(i + 1, len(halves_rows))
        return chosen, converged, n_micro(mem)

    return halves

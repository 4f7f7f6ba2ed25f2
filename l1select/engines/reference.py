"""The reference engine: scikit-learn's ``enet_path`` on explicitly imputed and standardized data.

With observation weights, the data are centered and standardized with weighted means and
standard deviations, and each row is multiplied by ``sqrt(w_i·n/Σw)``: the unweighted objective
on those rows is the weighted one (the intercept, fixed by the weighted centering, drops out).

It materializes every training fold, so it is slow and memory-hungry; it stays as the independent
reference the fast engines are tested against, and runs when asked for (``--engine reference``).
"""

from __future__ import annotations

import numpy as np

from l1select.engines.memory import (
    check_scaling,
    check_weight_sums,
    half_rows,
    in_own_units,
    load,
    n_micro,
    n_values,
    prepare_grids,
    row_factors,
    scaling_of,
    standardized,
    test_error_fn,
    weighted_mean,
)
from l1select.grouplasso import feature_groups, solve_group_gram
from l1select.path import data_deviance_explained, saturated_length, stops_early
from l1select.types import EngineOutput, FitParams, PathFit


class _Tol:
    def __init__(self, tol: float, max_iter: int):
        self.tol, self.max_iter = tol, max_iter


def _path(Xs: np.ndarray, yc: np.ndarray, l1_ratio: float, alphas: np.ndarray,
          tol: float, max_iter: int, groups: np.ndarray | None = None) -> np.ndarray:
    from sklearn.linear_model import enet_path

    if groups is not None:
        # The group lasso: scikit-learn has none; the Gram of these explicitly imputed and
        # standardized rows, solved by the group kernel (so this checks the statistics).
        n = yc.size
        G = Xs.T @ Xs / n
        coefs, _ = solve_group_gram(G, Xs.T @ yc / n, float(yc @ yc) / n, alphas, l1_ratio,
                                    np.diag(G) > 0, _Tol(tol, max_iter), groups)
        return coefs

    # sklearn stops at a gap of tol·||y||² on its n-times-larger objective: the same ratio as
    # our tol·||y||²/n, so one tol means the same thing on both sides.
    _, coefs, _ = enet_path(
        np.asfortranarray(Xs), yc, l1_ratio=l1_ratio, alphas=alphas, tol=tol,
        max_iter=max_iter, precompute=False, check_input=True,
    )
    return coefs


def _weighted(Xs: np.ndarray, yc: np.ndarray, w: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Centered rows times ``sqrt(w_i·n/Σw)`` (unchanged without weights)."""
    root = row_factors(w, yc.size)
    return (Xs, yc) if root is None else (Xs * root[:, None], yc * root)


def _fit_data(mem, rows: np.ndarray | slice, standardize: bool):
    """The scaling of ``rows`` and their centered, standardized (and weighted) design."""
    w = None if mem.w is None else mem.w[rows]
    sc = scaling_of(mem.X[rows], mem.y[rows], standardize, mem.units(), w)
    Xs, yc = _weighted(standardized(mem.X[rows], sc), mem.y[rows] - sc.y_mean, w)
    return sc, Xs, yc


def run(source, header, data, columns, params: FitParams, progress=None) -> EngineOutput:
    mem = load(source, header, data, columns, params)
    if mem.w is not None:
        sums = ([mem.w[test].sum() for _, test in mem.folds] if mem.n_folds
                else [mem.w.sum()])
        check_weight_sums(sums, float(mem.w_test.sum()) if mem.y_test.size else None,
                          params.weights, source.display)
    prep = prepare_grids(mem, params)
    scaling, grids, a_max = prep.scaling, prep.grids, prep.a_max
    X, y = mem.X, mem.y
    groups = feature_groups(mem.recipe.features) if params.group_categoricals else None
    _, Xs, yc = _fit_data(mem, slice(None), params.standardize)
    folds = []
    for train, test in mem.folds:
        sc, Xtr, ytr = _fit_data(mem, train, params.standardize)
        folds.append((sc, Xtr, ytr, standardized(X[test], sc), y[test],
                      None if mem.w is None else mem.w[test]))
    own = in_own_units(scaling, mem.units())
    check_scaling(own, mem.recipe, source.display)
    mae = params.measure == "mae"
    fits = []
    for l1_ratio, alphas in grids:
        coefs = _path(Xs, yc, l1_ratio, alphas, params.tol, params.max_iter, groups)
        if stops_early(params, y.size, X.shape[1]):
            m = saturated_length(data_deviance_explained(lambda idx: Xs[:, idx], yc, coefs))
            alphas, coefs = alphas[:m], coefs[:, :m]
        mse_path = sizes = fold_coefs = None
        if folds:
            mse_path = np.empty((alphas.size, len(folds)))
            sizes = np.empty(len(folds))
            fold_coefs = np.empty((len(folds), coefs.shape[0], alphas.size))
            for k, (sc, Xtr, ytr, Xte, yte, wte) in enumerate(folds):
                ck = _path(Xtr, ytr, l1_ratio, alphas, params.tol, params.max_iter, groups)
                resid = yte[:, None] - (sc.y_mean + Xte @ ck)
                # Weighted: the fold's weighted MSE (or MAE), the fold weighed by its weight.
                mse_path[:, k] = weighted_mean(np.abs(resid) if mae else resid ** 2, wte)
                sizes[k] = yte.size if wte is None else wte.sum()
                fold_coefs[k] = ck
        fits.append(PathFit(l1_ratio=l1_ratio, alphas=alphas, coefs=coefs, mse_path=mse_path,
                            fold_sizes=sizes, fold_coefs=fold_coefs))
    return EngineOutput(
        engine="reference", recipe=mem.recipe, warnings=mem.warnings, fits=tuple(fits),
        scaling=own, alpha_max=tuple(a_max), n_rows=mem.n_rows, n_used=int(y.size),
        n_test=int(mem.y_test.size), n_dropped=mem.n_dropped, sha256=mem.sha256,
        n_folds=mem.n_folds, fold_labels=mem.fold_labels,
        test_error=test_error_fn(mem, scaling.x_mean), problem=prep.problem,
        halves=_halves(mem, params) if params.stability else None,
        n_target_values=n_values(y), measure="mae" if mae else "mse",
    )


def _halves(mem, params: FitParams):
    """Stability selection's half-sample fits on explicitly imputed and standardized halves
    (penalty factors are not available here: pipeline.validate refuses them)."""
    halves_rows = half_rows(mem, params)
    groups = feature_groups(mem.recipe.features) if params.group_categoricals else None

    def halves(l1_ratio: float, alphas: np.ndarray, progress=None):
        chosen = np.zeros((len(halves_rows), mem.X.shape[1], alphas.size), dtype=bool)
        for i, rows in enumerate(halves_rows):
            _, Xh, yh = _fit_data(mem, rows, params.standardize)
            coefs = _path(Xh, yh, l1_ratio, alphas, params.tol, params.max_iter, groups)
            chosen[i] = coefs != 0.0
            if progress is not None:
                progress(i + 1, len(halves_rows))
        return chosen, True, n_micro(mem)

    return halves

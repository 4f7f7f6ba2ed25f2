"""The reference solver: scikit-learn's ``enet_path`` on explicitly imputed and standardized data
(a binary target: ``LogisticRegression``, see :func:`solve_binomial`).

With observation weights, the data are centered and standardized with weighted means and
standard deviations, and each row is multiplied by ``sqrt(w_i·n/Σw)``: the unweighted objective
on those rows is the weighted one (the intercept, fixed by the weighted centering, drops out).

It materializes every training fold, so it is slow and memory-hungry; it stays as the independent
reference the fast engines are tested against, and runs when asked for (``--engine reference``).
"""

from __future__ import annotations

import numpy as np

from l1select.engines.base import InMemory, Job
from l1select.grouplasso import feature_groups, solve_group_gram
from l1select.path import data_deviance_explained, grids_for, saturated_length, stops_early
from l1select.solve.checks import SATURATED_PATH, binomial_measure, check_binomial
from l1select.solve.logistic import (
    MEASURES,
    SATURATION,
    deviance,
    fold_measure,
    probabilities,
    roc_points,
    weighted_auc,
)
from l1select.solve.matrix import (
    check_scaling,
    check_weight_sums,
    half_rows,
    in_own_units,
    n_micro,
    n_values,
    prepare_grids,
    row_factors,
    scaling_of,
    standardized,
    test_error_fn,
    weighted_mean,
)
from l1select.types import AllRows, FitParams, PathFit, Solved, Warn


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


def solve(mem: InMemory, job: Job) -> Solved:
    """The gaussian family; a binary target (the job has ``classes``) goes to
    :func:`solve_binomial`."""
    if job.classes is not None:
        return solve_binomial(mem, job)
    source, params = job.source, job.params
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
    return Solved(
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


# --------------------------------------------------------------------------------------------
# The binomial family: scikit-learn's LogisticRegression (saga) on explicit folds
# --------------------------------------------------------------------------------------------

# The unpenalized logistic refit (--refit ols) stops after this many L-BFGS iterations: a
# converging refit needs a few dozen; separated classes diverge, and this many shows it.
REFIT_MAX_ITER = 2000


def _logistic_rows(mem, rows: np.ndarray | slice, standardize: bool):
    """The (weighted) scaling of ``rows``, their standardized design (missing values at the
    mean) and their sample weights scaled to sum to their number."""
    w = None if mem.w is None else mem.w[rows]
    y = mem.y[rows]
    sc = scaling_of(mem.X[rows], y, standardize, mem.units(), w)
    sw = np.ones(y.size) if w is None else w * (y.size / w.sum())
    return sc, standardized(mem.X[rows], sc), y, sw


def _mean_loss(Z: np.ndarray, y: np.ndarray, sw: np.ndarray, coef: np.ndarray,
               intercept: float) -> float:
    """The mean weighted negative log-likelihood ``1/n Σ sw_i [log(1 + e^η) − y η]``."""
    eta = Z @ coef + intercept
    return float(sw @ (np.logaddexp(0.0, eta) - y * eta) / y.size)


def _logistic_path(Z: np.ndarray, y: np.ndarray, sw: np.ndarray, alphas: np.ndarray,
                   l1_ratio: float, tol: float, max_iter: int, stop_saturated: bool = False):
    """scikit-learn's ``LogisticRegression(solver="saga")`` at ``C = 1/(n·alpha)`` down the
    descending ``alphas``, each fit warm-started from the one before.

    ``sw`` (n,) sums to n, so ``C·Σ sw_i loss_i + l1_ratio‖β‖₁ + (1 − l1_ratio)/2‖β‖²`` is
    ``1/alpha`` times the glmnet objective. Returns coefs (n_features, n_solved), intercepts
    and deviance explained (n_solved,), and whether every fit converged; with
    ``stop_saturated`` the path ends at the first alpha whose fit explains more than
    ``SATURATION`` of the null deviance, as the logistic engine's does.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression


    n, p = Z.shape
    # saga visits the rows in a random order: a fixed seed makes the reference repeatable
    # (unseeded, a fit at alpha_max itself now and then kept one coefficient off zero).
    model = LogisticRegression(C=1.0, l1_ratio=l1_ratio, solver="saga", tol=tol,
                               max_iter=max_iter, fit_intercept=True, warm_start=True,
                               random_state=0)
    coefs = np.zeros((p, alphas.size))
    intercepts = np.zeros(alphas.size)
    dev = np.zeros(alphas.size)
    ybar = float(sw @ y / n)
    b0 = float(np.log(ybar / (1.0 - ybar)))
    null = _mean_loss(Z, y, sw, np.zeros(p), b0)
    # Start from the null model, the exact fit wherever every coefficient is zero: saga
    # stops on the coefficients' relative change alone, so while they stay at zero it would
    # stop after one epoch with the intercept far from its optimum.
    model.coef_, model.intercept_ = np.zeros((1, p)), np.array([b0])
    # The null model's gradient (descent direction) and curvature (p̄(1 − p̄) a unit-variance
    # column): where it fails the KKT condition, one proximal Newton step from it starts saga.
    g = Z.T @ (sw * (y - ybar)) / n
    curvature = ybar * (1.0 - ybar)
    converged = True
    for k, alpha in enumerate(alphas):
        model.set_params(C=1.0 / (n * alpha))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter_ tells it
            model.fit(Z, y, sample_weight=sw)
            if not model.coef_.any():
                # saga also stops once an epoch leaves every coefficient at zero, right or
                # not: check the null model's KKT condition (with a relative slack for
                # rounding), and where it fails, restart saga from off zero.
                a, b = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
                if np.all(np.abs(g) <= a * (1.0 + 1e-9)):
                    model.intercept_ = np.array([b0])  # exact: the intercept alone
                else:
                    start = np.sign(g) * np.maximum(np.abs(g) - a, 0.0) / (curvature + b)
                    model.coef_, model.intercept_ = start[None, :], np.array([b0])
                    model.fit(Z, y, sample_weight=sw)
        converged &= bool(model.n_iter_[0] < max_iter)
        coefs[:, k] = model.coef_[0]
        intercepts[k] = model.intercept_[0]
        dev[k] = 1.0 - _mean_loss(Z, y, sw, coefs[:, k], intercepts[k]) / null
        if stop_saturated and dev[k] > SATURATION:
            return coefs[:, :k + 1], intercepts[:k + 1], dev[:k + 1], converged
    return coefs, intercepts, dev, converged


def solve_binomial(mem: InMemory, job: Job) -> Solved:
    """Penalized logistic regression, solved by scikit-learn on explicitly standardized
    folds: the independent reference of the logistic solver (``solve/binomial.py``), with
    its folds (stratified), grid, measures and outputs, computed another way."""
    source, params = job.source, job.params
    unit = mem.units()
    check_binomial(mem, params, source.display)
    sc_all, Z, y, sw = _logistic_rows(mem, slice(None), params.standardize)
    n, p = Z.shape
    # alpha_max: the largest gradient of the null model (the intercept alone, ȳ_w).
    xty = Z.T @ (sw * (y - sw @ y / n)) / n
    a_max = [float(np.max(np.abs(xty))) / r for r in params.l1_ratios]
    folds = [(_logistic_rows(mem, train, params.standardize), test)
             for train, test in mem.folds]
    warnings: list[Warn] = []
    measure, more = binomial_measure(params, folds)
    warnings += more
    default_grid = params.alphas is None and params.alpha is None
    w_all = np.ones(n) if mem.w is None else mem.w
    fits, saturated = [], False
    for l1_ratio, alphas in grids_for(a_max, params, n, p):
        coefs, intercepts, dev, converged = _logistic_path(
            Z, y, sw, alphas, l1_ratio, params.tol, params.max_iter, default_grid)
        saturated |= coefs.shape[1] < alphas.size
        alphas = alphas[:coefs.shape[1]]
        measures = sizes = fold_coefs = oof = None
        if folds:
            measures = {m: np.empty((alphas.size, len(folds))) for m in MEASURES}
            sizes = np.empty(len(folds))
            fold_coefs = np.empty((len(folds), p, alphas.size))
            oof = np.zeros((n, alphas.size))  # each row's probability from its fold's fit
            for k, ((sc, Ztr, ytr, swtr), test) in enumerate(folds):
                ck, bk, _, ok = _logistic_path(Ztr, ytr, swtr, alphas, l1_ratio, params.tol,
                                               params.max_iter)
                converged &= ok
                oof[test] = probabilities(standardized(mem.X[test], sc), ck, bk)
                for m in MEASURES:
                    measures[m][:, k] = fold_measure(m, y[test], w_all[test], oof[test],
                                                     params.threshold)
                sizes[k] = w_all[test].sum()
                fold_coefs[k] = ck
        fits.append(PathFit(
            l1_ratio=l1_ratio, alphas=alphas, coefs=coefs,
            mse_path=None if measures is None else measures[measure], fold_sizes=sizes,
            converged=converged, fold_coefs=fold_coefs, intercepts=intercepts,
            measures=measures, dev_ratio=dev,
            roc=None if oof is None else _oof_roc(oof, y, w_all, mem.folds)))
    if saturated:
        warnings.append(SATURATED_PATH)
    own = in_own_units(sc_all, unit)
    return Solved(
        engine="reference", recipe=mem.recipe, warnings=mem.warnings + tuple(warnings),
        fits=tuple(fits), scaling=own, alpha_max=tuple(a_max), n_rows=mem.n_rows, n_used=n,
        n_test=int(mem.y_test.size), n_dropped=mem.n_dropped, sha256=mem.sha256,
        n_folds=mem.n_folds, fold_labels=mem.fold_labels,
        test_error=_binomial_test_error(mem, own.x_mean, params.threshold),
        # The logistic engine's alternates: the Gram of the weighted-standardized columns.
        problem=AllRows(gram_cols=lambda idx: Z.T @ Z[:, np.asarray(idx)] / n,
                        gram_diag=np.einsum("ij,ij->j", Z, Z) / n, xty=xty),
        halves=_binomial_halves(mem, params) if params.stability else None,
        family="binomial", measure=measure, classes=mem.classes,
        refit=lambda sel: _logistic_refit(Z, y, sw, sc_all, unit, sel))


def _oof_roc(oof: np.ndarray, y: np.ndarray, w: np.ndarray, folds):
    """``roc(i)``: the ROC curve of the out-of-fold probabilities at the i-th alpha."""
    held = np.concatenate([test for _, test in folds])
    return lambda i: roc_points(y[held], w[held], oof[held, i])


def _binomial_test_error(mem, x_mean: np.ndarray, threshold: float):
    """Held-out deviance, AUC and accuracy of a model on the original scale (a missing
    value imputed with ``x_mean``, in the columns' own units)."""
    if mem.y_test.size == 0:
        return None
    def test_error(coef: np.ndarray, intercept: float) -> dict:
        own = mem.X_test / mem.units()
        prob = probabilities(np.where(np.isnan(own), x_mean, own), coef[:, None],
                             np.array([intercept]))[:, 0]
        y = mem.y_test
        wt = np.ones(y.size) if mem.w_test is None else mem.w_test
        auc = weighted_auc(y, wt, prob)
        return {"n_rows": int(y.size), "deviance": float(wt @ deviance(y, prob) / wt.sum()),
                "auc": None if np.isnan(auc) else auc,
                "accuracy": float(wt @ ((prob > threshold) == (y == 1)) / wt.sum())}

    return test_error


def _logistic_refit(Z: np.ndarray, y: np.ndarray, sw: np.ndarray, sc, unit: np.ndarray,
                    selected: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Unpenalized logistic regression (scikit-learn, L-BFGS) on the ``selected`` columns of
    the all-rows design ``Z``: coefficients in the columns' own units (0 for the others), the
    intercept, and whether it diverged (not converged, or the classes separated)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression


    coef = np.zeros(Z.shape[1])
    ybar = float(sw @ y / y.size)
    if selected.size == 0:
        return coef, float(np.log(ybar / (1.0 - ybar))), False
    model = LogisticRegression(C=np.inf, solver="lbfgs", tol=1e-10, max_iter=REFIT_MAX_ITER,
                               fit_intercept=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter_ and the deviance tell it
        model.fit(Z[:, selected], y, sample_weight=sw)
    beta = model.coef_[0] / sc.x_scale[selected]  # as the columns are held
    coef[selected] = beta * unit[selected]
    intercept = float(model.intercept_[0] - beta @ sc.x_mean[selected])
    null = _mean_loss(Z, y, sw, np.zeros(Z.shape[1]), float(np.log(ybar / (1.0 - ybar))))
    dev = 1.0 - _mean_loss(Z[:, selected], y, sw, model.coef_[0], model.intercept_[0]) / null
    return coef, intercept, bool(model.n_iter_[0] >= REFIT_MAX_ITER or dev > SATURATION)


def _binomial_halves(mem, params: FitParams):
    """Stability selection's half-sample logistic paths, each half standardized on its own."""
    halves_rows = half_rows(mem, params)

    def halves(l1_ratio: float, alphas: np.ndarray, progress=None):
        chosen = np.zeros((len(halves_rows), mem.X.shape[1], alphas.size), dtype=bool)
        converged = True
        for i, rows in enumerate(halves_rows):
            _, Zh, yh, swh = _logistic_rows(mem, rows, params.standardize)
            coefs, _, _, ok = _logistic_path(Zh, yh, swh, alphas, l1_ratio, params.tol,
                                             params.max_iter)
            converged &= ok
            chosen[i] = coefs != 0.0
            if progress is not None:
                progress(i + 1, len(halves_rows))
        return chosen, converged, n_micro(mem)

    return halves

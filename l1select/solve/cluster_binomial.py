"""The binomial solver on a Dask cluster: the lockstep paths over the prepared partitions
that the Dask engine leaves in worker memory (``engines.base.OnCluster``).

Logistic loss has no finite sufficient statistics, so every Newton step is a map-reduce over
the rows (see :mod:`l1select.solve.newton`); this module sends the tasks of those passes
through the delivery's ``passes`` and solves the rest on the client:

1. the weighted means and scales of every fit (all rows and each training fold);
2. ``alpha_max`` and the grids (and the adaptive lasso's initial ridge fit), then the paths:
   all K+1 fits advance in lockstep, and one pass answers every fit's request (its loss, its
   gradient, and the IRLS Gram over its working set, summed per partition and merged pairwise
   on the workers). The inner problems are solved by coordinate descent on those Grams;
3. a last pass scores each fold's held-out rows at every alpha (deviance, misclassification,
   MSE, MAE) and forms the all-rows Gram that the correlated-alternates report reads.

The tasks (the functions below that take a prepared partition first) run on the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from l1select.engines.base import Job, OnCluster
from l1select.errors import DataError, list_names, quoted
from l1select.path import grids_for, make_penalty
from l1select.solve.checks import SATURATED_PATH, binomial_measure
from l1select.solve.logistic import (
    MEASURES,
    SATURATION,
    deviance,
    probabilities,
    standardize_rows,
)
from l1select.solve.newton import PathState, lockstep, path_steps, step_sums
from l1select.types import AllRows, FitParams, PathFit, Scaling, Solved

if TYPE_CHECKING:
    from l1select.engines.dask_binomial import Rows

# The adaptive lasso's initial ridge fit, as the local binomial solver makes it.
ADAPTIVE_RIDGE_ALPHA = 1e-2


def solve(delivered: OnCluster, job: Job) -> Solved:
    """Solve a binary target's paths on the partitions ``delivered`` holds on the cluster
    (which must stay open until this returns)."""
    return _Solver(delivered, job.params, job.display).solve()


@dataclass(frozen=True)
class _Fit:
    """What a task needs of one fit: its rows' index in ``Rows.fits``, its standardization
    and the factor that scales the raw weights of its rows to sum to their number."""

    index: int
    mean: np.ndarray
    scale: np.ndarray
    factor: float


# -- the tasks: the passes over the prepared partitions (on the workers) ---------------------

def _standardized(part: Rows, mask: np.ndarray, fit: _Fit) -> np.ndarray:
    return standardize_rows(part.X[mask], None, fit.mean, fit.scale)


def _moments1(part: Rows, n_fits: int) -> list:
    """Per fit: rows, Σw, Σwy, Σw x (observed), Σw over the observed cells, the observed
    minima and maxima (rows of positive weight), and the rows of each class."""
    out = []
    for f in range(n_fits):
        m = part.fits[f]
        X = part.X[m]
        w = np.ones(X.shape[0]) if part.w is None else part.w[m]
        obs = ~np.isnan(X)
        X0 = np.where(obs, X, 0.0)
        used = obs & (w > 0)[:, None]
        with np.errstate(all="ignore"):
            lo = np.where(used, X, np.inf).min(axis=0, initial=np.inf)
            hi = np.where(used, X, -np.inf).max(axis=0, initial=-np.inf)
        out.append({"n": float(m.sum()), "w": float(w.sum()), "wy": float(w @ part.y[m]),
                    "wx": w @ X0, "wobs": w @ obs, "lo": lo, "hi": hi,
                    "classes": np.bincount(part.y[m].astype(np.int64), minlength=2)})
    return out


def _merge_moments1(a: list, b: list) -> list:
    return [{"n": x["n"] + y["n"], "w": x["w"] + y["w"], "wy": x["wy"] + y["wy"],
             "wx": x["wx"] + y["wx"], "wobs": x["wobs"] + y["wobs"],
             "lo": np.minimum(x["lo"], y["lo"]), "hi": np.maximum(x["hi"], y["hi"]),
             "classes": x["classes"] + y["classes"]} for x, y in zip(a, b, strict=True)]


def _moments2(part: Rows, fits: list) -> list:
    """Per fit: Σ w (x − mean)² over the observed cells (``fits``: (index, mean, factor))."""
    out = []
    for f, mean, factor in fits:
        m = part.fits[f]
        X = part.X[m]
        w = factor * (np.ones(X.shape[0]) if part.w is None else part.w[m])
        d = np.where(np.isnan(X), 0.0, X - mean)
        out.append(w @ (d * d))
    return out


def _add_lists(a: list, b: list) -> list:
    return [x + y for x, y in zip(a, b, strict=True)]


def _newton(part: Rows, fits: dict, requests: dict) -> dict:
    """One Newton pass: the :class:`Step` of every pending request on this partition."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(limits=1):
        for key, req in requests.items():
            fit = fits[key]
            m = part.fits[fit.index]
            w = fit.factor * (np.ones(int(m.sum())) if part.w is None else part.w[m])
            out[key] = step_sums(_standardized(part, m, fit), part.y[m], w, req)
    return out


def _merge_steps(a: dict, b: dict) -> dict:
    return {k: a[k] + b[k] for k in a}


def _score(part: Rows, folds: list, whole: _Fit, y_mean: float, threshold: float) -> dict:
    """Each fold's held-out rows at every alpha: Σw, and Σw times the deviance, the
    misclassification, the squared and the absolute error of the probability; and the
    all-rows standardized Gram ``Zᵀ Z`` with ``Zᵀ w (y − ȳ)``."""
    out = {"folds": []}
    for k, (fit, coefs, intercepts) in enumerate(folds):
        t = part.tests[k]
        y = part.y[t]
        wt = np.ones(y.size) if part.w is None else part.w[t]
        prob = probabilities(_standardized(part, t, fit), coefs, intercepts)
        out["folds"].append({
            "w": float(wt.sum()), "n": int(t.sum()),
            "deviance": wt @ deviance(y, prob),
            "class": wt @ ((prob > threshold) != (y[:, None] == 1)),
            "mse": wt @ (y[:, None] - prob) ** 2,
            "mae": wt @ np.abs(y[:, None] - prob)})
    m = part.fits[0]
    Z = _standardized(part, m, whole)
    wn = whole.factor * (np.ones(Z.shape[0]) if part.w is None else part.w[m])
    out["gram"] = Z.T @ Z
    out["xty"] = Z.T @ (wn * (part.y[m] - y_mean))
    return out


def _merge_score(a: dict, b: dict) -> dict:
    return {"folds": [{key: x[key] + y[key] for key in x}
                      for x, y in zip(a["folds"], b["folds"], strict=True)],
            "gram": a["gram"] + b["gram"], "xty": a["xty"] + b["xty"]}


# -- the client side ------------------------------------------------------------------------------

@dataclass
class _Solver:
    """One solve of ``on``: the client side of every pass (``params`` may be swapped for a
    tighter tolerance while alpha_max is found)."""

    on: OnCluster
    params: FitParams
    source: str  # the source as messages name it

    def over_parts(self, task, merge, *args):
        return self.on.passes.over_parts(task, merge, *args)

    def _scalings(self, n_fits: int, unit: np.ndarray):
        """Every fit's weighted mean, scale and standard deviation (as
        :func:`l1select.solve.logistic.weighted_scaling`), row count, weight factor, mean
        target, and class counts."""
        m1 = self.over_parts(_moments1, _merge_moments1, n_fits)
        fits = []
        for f, s in enumerate(m1):
            factor = s["n"] / s["w"] if s["w"] > 0 else 0.0
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(s["wobs"] > 0, s["wx"] / np.where(s["wobs"] > 0, s["wobs"], 1.0),
                                0.0)
            fits.append((f, mean, factor))
        sq = self.over_parts(_moments2, _add_lists, fits)
        out = []
        for (f, mean, factor), s, q in zip(fits, m1, sq, strict=True):
            n_fit = s["n"]
            std = np.sqrt(np.maximum(q, 0.0) / n_fit) if n_fit > 0 else np.zeros_like(q)
            varies = s["hi"] > s["lo"]
            std = np.where(varies, std, 0.0)
            scale = np.where(varies, std if self.params.standardize else unit, 0.0)
            out.append({"fit": _Fit(f, mean, scale, factor), "std": std, "n": n_fit,
                        "ybar": factor * s["wy"] / n_fit if n_fit > 0 else 0.0,
                        "classes": s["classes"]})
        return out

    def _paths(self, fits: list, specs: dict, stop_early=None) -> dict:
        """Solve the paths ``specs`` (key → (fit index, alphas, l1_ratio, pf, dev_stop)) in
        lockstep; key → :class:`PathState`. ``stop_early(pending, states)``: the keys whose
        paths need no more alphas."""
        params = self.params
        states, gens, by_key = {}, {}, {}
        for key, (f, alphas, l1_ratio, pf, dev_stop) in specs.items():
            fit = fits[f]
            scale = fit["fit"].scale
            inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
            states[key] = PathState.empty(inv.size, alphas.size)
            gens[key] = path_steps(fit["n"], fit["ybar"], alphas, l1_ratio, pf, inv, params.tol,
                                   params.max_iter, dev_stop, states[key])
            by_key[key] = fit["fit"]

        def evaluate(requests: dict) -> dict:
            fits_now = {key: by_key[key] for key in requests}
            self.on.passes.count(path_passes=1)
            return self.over_parts(_newton, _merge_steps, fits_now, requests)

        prune = None if stop_early is None else (lambda pending: stop_early(pending, states))
        lockstep(evaluate, gens, prune)
        return states

    def _alpha_max(self, fits: list, pf: np.ndarray) -> list[float]:
        """As :func:`l1select.solve.logistic.alpha_max`: the gradient at the fit of the
        intercept and the unpenalized features alone, for each l1_ratio."""
        pen = pf > 0
        if not pen.any():
            return [0.0 for _ in self.params.l1_ratios]
        saved = self.params
        self.params = replace(saved, tol=1e-14, max_iter=10_000)
        try:
            st = self._paths(fits, {"all": (0, np.array([1e300]), 1.0, pf, 0.0)})["all"]
        finally:
            self.params = saved
        top = float(np.max(np.abs(st.grad[pen]) / pf[pen]))
        return [top / r for r in self.params.l1_ratios]

    def solve(self) -> Solved:
        """The grids, every path, the CV measures and the all-rows Gram, as a Solved."""
        params, on = self.params, self.on
        recipe, unit, plan = on.recipe, on.unit, on.plan
        n_folds = len(plan.folds)
        p = len(recipe.features)
        fits = self._scalings(1 + n_folds, unit)
        self._check_binomial(fits)
        whole = fits[0]
        n = int(round(whole["n"]))
        mean, scale, std = whole["fit"].mean, whole["fit"].scale, whole["std"]
        y_mean = whole["ybar"]
        scaling = Scaling(x_mean=mean / unit, x_scale=np.where(scale > 0, scale, unit) / unit,
                          x_std=std / unit, y_mean=y_mean, y_var=y_mean * (1.0 - y_mean),
                          n_samples=n)

        def initial():
            st = self._paths(fits, {"all": (0, np.array([ADAPTIVE_RIDGE_ALPHA]), 0.0,
                                            np.ones(p), 0.0)})["all"]
            return st.coefs[:, 0], "ridge_logistic", ADAPTIVE_RIDGE_ALPHA

        penalty, adaptive = make_penalty(recipe.features, params, initial)
        pf = np.ones(p) if penalty is None else np.ascontiguousarray(penalty, dtype=np.float64)
        a_max = self._alpha_max(fits, pf)
        # binomial_measure reads only the held-out row counts of the folds.
        held = [(None, np.broadcast_to(0.0, (int(s),))) for s in on.test_sizes]
        measure, more = binomial_measure(params, held)
        warnings = list(on.warnings) + more
        default_grid = params.alphas is None and params.alpha is None

        def stop_early(pending, states):
            # The folds need no alpha below the one the all-rows path saturated at.
            if "all" in pending:
                return []
            return [key for key in pending if states[key].k >= states["all"].n_solved]

        out_fits = []
        saturated = False
        for l1_ratio, alphas in grids_for(a_max, params, n, p):
            specs = {"all": (0, alphas, l1_ratio, pf, SATURATION if default_grid else 0.0)}
            for k in range(n_folds):
                specs[k] = (k + 1, alphas, l1_ratio, pf, 0.0)
            states = self._paths(fits, specs, stop_early)
            whole_st = states["all"]
            if whole_st.n_solved < alphas.size:
                saturated = True
                alphas = alphas[:whole_st.n_solved]
            self.on.passes.count(alphas=alphas.size)
            k_a = alphas.size
            converged = bool(np.all(whole_st.n_iter[:k_a] < params.max_iter))
            measures = fold_coefs = sizes = None
            if n_folds:
                fold_coefs = np.empty((n_folds, p, k_a))
                scored = []
                for k in range(n_folds):
                    st = states[k]
                    converged &= bool(np.all(st.n_iter[:k_a] < params.max_iter))
                    fold_coefs[k] = st.coefs[:, :k_a]
                    scored.append((fits[k + 1]["fit"], fold_coefs[k],
                                   st.intercepts[:k_a].copy()))
                got = self.over_parts(_score, _merge_score, scored, whole["fit"], y_mean,
                                      params.threshold)
                gram = got
                measures = {m: np.empty((k_a, n_folds)) for m in MEASURES}
                sizes = np.empty(n_folds)
                for k, sk in enumerate(got["folds"]):
                    for m in ("deviance", "class", "mse", "mae"):
                        measures[m][:, k] = sk[m] / sk["w"]
                    measures["auc"][:, k] = np.nan  # needs the held-out rows ranked
                    sizes[k] = sk["w"]
            out_fits.append(PathFit(
                l1_ratio=l1_ratio, alphas=alphas, coefs=whole_st.coefs[:, :k_a],
                mse_path=None if measures is None else measures[measure], fold_sizes=sizes,
                converged=converged, fold_coefs=fold_coefs,
                intercepts=whole_st.intercepts[:k_a], measures=measures,
                dev_ratio=whole_st.dev_ratio[:k_a], roc=None))
        if saturated:
            warnings.append(SATURATED_PATH)
        if not n_folds:
            gram = self.over_parts(_score, _merge_score, [], whole["fit"], y_mean,
                                   params.threshold)
        G = gram["gram"]
        problem = AllRows(gram_cols=lambda idx: G[:, np.asarray(idx, dtype=np.int64)] / n,
                          gram_diag=np.diag(G) / n, xty=gram["xty"] / n)
        return Solved(
            engine=on.engine, recipe=recipe, warnings=tuple(warnings), fits=tuple(out_fits),
            scaling=scaling, alpha_max=tuple(a_max), n_rows=on.n_rows, n_used=n, n_test=0,
            n_dropped=on.n_dropped, sha256=None, n_folds=n_folds, fold_labels=plan.labels,
            test_error=None, penalty=penalty, adaptive=adaptive, problem=problem,
            halves=None, family="binomial", measure=measure, refit=None, classes=on.classes)

    def _check_binomial(self, fits: list) -> None:
        """As :func:`l1select.solve.checks.check_binomial`, from the fits' class counts."""
        params, on, source = self.params, self.on, self.source
        recipe, unit, plan = on.recipe, on.unit, on.plan
        if not params.standardize and np.any(unit != 1.0):
            huge = [f.column for f, u in zip(recipe.features, unit, strict=True) if u != 1.0]
            raise DataError(
                f"{list_names(huge)} in {source} hold values of extreme magnitude; a "
                "logistic model without standardization cannot fit them in their own units "
                "(its curvature overflows): drop --no-standardize, or rescale those columns")
        for k in range(len(plan.folds)):
            if (fits[k + 1]["classes"] > 0).sum() < 2:
                name = quoted(plan.labels[k]) if plan.labels else f"{k + 1} of {len(plan.folds)}"
                raise DataError(
                    f"The training rows of CV fold {name} in {source} hold only one "
                    f"class of target {quoted(params.target)}: a logistic model cannot be "
                    "fitted there; use fewer folds (--cv) or, with --fold-column or "
                    "--group-column, folds that mix both classes")

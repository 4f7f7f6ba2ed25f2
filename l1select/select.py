"""Select: pick alpha by the rule, take the all-rows fit there, and back-transform it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from l1select.cv import CVCurve, choose, cv_curve
from l1select.errors import quoted
from l1select.path import ols_refit
from l1select.types import AllRows, FeatureResult, FeatureSpec, PathFit, Recipe, Scaling, Warn


@dataclass(frozen=True)
class Selection:
    alpha: dict[str, Any]
    cv: dict[str, Any] | None
    intercept: float
    features: tuple[FeatureResult, ...]
    selected: tuple[str, ...]
    coef: np.ndarray
    chosen: int  # index of the chosen l1_ratio's fit
    i_alpha: int
    coef_path: dict[str, Any] | None = None
    curve: CVCurve | None = None  # the chosen l1_ratio's CV curve


def back_transform(coef_std: np.ndarray, scaling: Scaling, intercept_std: float | None = None
                   ) -> tuple[np.ndarray, float]:
    """Coefficients on the original scale, and the intercept, of a standardized fit.

    ``y ≈ b + ((x - x_mean) / x_scale) @ coef_std = intercept + x @ coef`` with ``b`` the
    standardized fit's intercept: ``y_mean`` for squared loss, the fitted one (log-odds) for
    the binomial family.
    """
    coef = coef_std / scaling.x_scale
    b = scaling.y_mean if intercept_std is None else intercept_std
    intercept = b - float(coef @ scaling.x_mean)
    return coef, intercept


def _order(names: list[str], coef_std: np.ndarray) -> list[int]:
    """The indices of the non-zero coefficients, largest |coef_std| first, then by name."""
    nz = np.flatnonzero(coef_std).tolist()
    size = np.abs(coef_std).tolist()
    nz.sort(key=lambda i: (-size[i], names[i]))
    return nz


def select(fits: list[PathFit], scaling: Scaling, rule: str,
           features: list[FeatureSpec], alpha_max: list[float],
           penalty: np.ndarray | None = None, family: str = "gaussian",
           measure: str = "mse") -> Selection:
    """Choose the (l1_ratio, alpha) pair and report the all-rows fit there.

    Without CV (one fixed alpha) the single fit is taken as it is. Each feature's
    ``fold_frequency`` is the fraction of the CV training folds whose fit has it non-zero at
    the chosen alpha; ``penalty`` (n_features,) the penalty factors the paths were solved with.
    ``measure`` names the CV measure of the fits' ``mse_path`` (the best AUC is the largest).
    """
    maximize = measure == "auc"
    curves: list[CVCurve | None] = []
    for fit in fits:
        if fit.mse_path is None:
            curves.append(None)
        else:
            mean, se = cv_curve(fit.mse_path, fit.fold_sizes)
            curves.append(choose(fit.alphas, mean, se, maximize))
    if curves[0] is None:
        chosen, i_alpha = 0, 0
    else:
        best = [c.mean[c.i_min] for c in curves]  # type: ignore[union-attr]
        chosen = int(np.argmax(best) if maximize else np.argmin(best))
        curve = curves[chosen]
        i_alpha = curve.i_min if rule == "min" else curve.i_1se  # type: ignore[union-attr]
    fit = fits[chosen]
    curve = curves[chosen]
    coef_std_fit = fit.coefs[:, i_alpha]
    coef, intercept = back_transform(
        coef_std_fit, scaling,
        None if fit.intercepts is None else float(fit.intercepts[i_alpha]))
    # On the standardized scale whatever the fit's own scaling, so sizes compare across features.
    coef_std = coef * scaling.x_std
    names = [f.name for f in features]
    order = _order(names, coef_std)
    selected = [names[i] for i in order]
    is_selected = [False] * len(names)
    for i in order:
        is_selected[i] = True
    freq = None
    if fit.fold_coefs is not None and curve is not None:
        freq = np.mean(np.asarray(fit.fold_coefs)[:, :, i_alpha] != 0.0, axis=0)
    pf = np.ones(len(features)) if penalty is None else penalty
    # Python floats made in bulk (tolist), not one numpy scalar at a time: wide data has
    # tens of thousands of features.
    coefs, stds, pfs = coef.tolist(), coef_std.tolist(), np.asarray(pf, dtype=float).tolist()
    freqs = [None] * len(features) if freq is None else freq.tolist()
    odds = np.exp(coef_std).tolist() if family == "binomial" else [None] * len(features)
    results = FeatureResult.many(name=names, column=[f.column for f in features], coef=coefs,
                                 coef_std=stds, selected=is_selected, fold_frequency=freqs,
                                 penalty_factor=pfs, odds_ratio=odds)
    alpha = {
        "chosen": float(fit.alphas[i_alpha]),
        "min": None if curve is None else float(fit.alphas[curve.i_min]),
        "one_se": None if curve is None else float(fit.alphas[curve.i_1se]),
        "max": float(fit.alphas[0]),
        "l1_ratio": float(fit.l1_ratio),
        "alpha_max": float(alpha_max[chosen]),
    }
    cv = None
    if curve is not None:
        path_rows = []
        for f, c in zip(fits, curves, strict=True):
            nnz = np.count_nonzero(f.coefs, axis=0)
            for i, a in enumerate(f.alphas):
                path_rows.append({"alpha": float(a), "l1_ratio": float(f.l1_ratio),
                                  "mean": float(c.mean[i]), "se": float(c.se[i]),
                                  "n_nonzero": int(nnz[i])})
        mean = float(curve.mean[i_alpha])
        binomial = family == "binomial"
        cv = {
            "metric": measure,
            "mean": mean,
            "se": float(curve.se[i_alpha]),
            # R² = 1 − MSE / var(y): there is none of another measure.
            "r2": (1.0 - mean / scaling.y_var) if measure == "mse" and not binomial
            and scaling.y_var > 0 else None,
            "n_folds": int(fit.mse_path.shape[1]),
            # Binomial folds are weighed by their observation weights, which may be fractional.
            "fold_sizes": [int(s) if float(s).is_integer() else float(s)
                           for s in fit.fold_sizes],
            "path": path_rows,
        }
        if binomial and fit.measures is not None:
            at = {m: cv_curve(fit.measures[m], fit.fold_sizes)[0][i_alpha]
                  for m in ("auc", "class", "deviance")}
            cv.update({
                "auc": None if np.isnan(at["auc"]) else float(at["auc"]),
                "misclassification": float(at["class"]),
                "deviance": float(at["deviance"]),
                "deviance_explained": float(fit.dev_ratio[i_alpha]),
            })
    return Selection(alpha=alpha, cv=cv, intercept=intercept, features=results,
                     selected=tuple(selected), coef=coef, chosen=chosen, i_alpha=i_alpha,
                     coef_path=coef_path(fit, scaling, names), curve=curve)


def coef_path(fit: PathFit, scaling: Scaling, names: list[str]) -> dict[str, Any]:
    """The all-rows coefficient path of the chosen l1_ratio on the original scale, compactly:
    only the features that are non-zero somewhere on it."""
    coefs = fit.coefs / scaling.x_scale[:, None]
    b = scaling.y_mean if fit.intercepts is None else np.asarray(fit.intercepts)
    intercepts = b - scaling.x_mean @ coefs
    live = np.flatnonzero(np.any(fit.coefs != 0.0, axis=1))
    # tolist: Python floats in bulk, the same values as float() of each
    return {
        "l1_ratio": float(fit.l1_ratio),
        "alphas": np.asarray(fit.alphas, dtype=float).tolist(),
        "intercept": np.asarray(intercepts, dtype=float).tolist(),
        "coefs": dict(zip([names[j] for j in live], coefs[live].tolist(), strict=True)),
    }


def predict(X: np.ndarray, coef: np.ndarray, intercept: float, x_mean: np.ndarray) -> np.ndarray:
    """Predictions of the refit model; a missing value is imputed with its training mean."""
    filled = np.where(np.isnan(X), x_mean, X)
    return intercept + filled @ coef


# --------------------------------------------------------------------------------------------
# Selection you can trust: alternates, the OLS refit, stability, diagnostics
# --------------------------------------------------------------------------------------------


def alternates(features: list[FeatureSpec], selected: tuple[str, ...], problem: AllRows,
               threshold: float) -> dict[str, list[tuple[str, float]]]:
    """For each selected feature, the unselected features whose absolute correlation with it
    on all training rows is at least ``threshold``, with that correlation, largest first.

    The correlation is the all-rows Gram normalized by its diagonal (the standardized
    Gram itself when standardizing). Levels of the same categorical column are never each
    other's alternates: transform keeps or drops the column as a whole.
    """
    names = [f.name for f in features]
    index = {n: j for j, n in enumerate(names)}
    sel = np.array([index[n] for n in selected], dtype=np.int64)
    out: dict[str, list[tuple[str, float]]] = {n: [] for n in selected}
    if sel.size == 0:
        return out
    diag = np.asarray(problem.gram_diag, dtype=np.float64)
    cols = np.asarray(problem.gram_cols(sel), dtype=np.float64)
    # In place (p × |selected| each: 25 MB at 20,000 × 158): the same numbers as
    # cols / np.sqrt(np.outer(diag, diag[sel])).
    corr = np.multiply.outer(diag, diag[sel])
    np.sqrt(corr, out=corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(cols, corr, out=corr)
    if 0.0 < threshold <= 1.0:
        # Where |r| reaches the threshold is where it does after the clean-up below (NaN
        # never does, nor does clipping to ±1 change it): only those entries are cleaned.
        with np.errstate(invalid="ignore"):
            ks, ts = np.nonzero(np.abs(corr, out=cols) >= threshold)
        r_hits = np.clip(np.nan_to_num(corr[ks, ts], nan=0.0), -1.0, 1.0)
    else:
        corr = np.clip(np.nan_to_num(corr, nan=0.0), -1.0, 1.0)
        ks, ts = np.nonzero(np.abs(corr) >= threshold)
        r_hits = corr[ks, ts]
    chosen = np.zeros(len(names), dtype=bool)
    chosen[sel] = True
    keep = ~chosen[ks]
    found: dict[int, list[tuple[int, float]]] = {}
    for k, t, r in zip(ks[keep].tolist(), ts[keep].tolist(), r_hits[keep].tolist(),
                       strict=True):
        found.setdefault(t, []).append((k, r))
    for t, hits in found.items():
        j = int(sel[t])
        hits = [(k, r) for k, r in hits if features[k].column != features[j].column]
        hits.sort(key=lambda kr: (-abs(kr[1]), names[kr[0]]))
        out[names[j]] = [(names[k], r) for k, r in hits]
    return out


def refit_ols(features: list[FeatureSpec], selected: tuple[str, ...], problem: AllRows,
              scaling: Scaling) -> tuple[np.ndarray, float, bool]:
    """Unpenalized least squares on the selected features, from the all-rows statistics
    (the relaxed lasso's refit at phi = 0): coefficients on the original scale (0 for the
    others), the intercept, and whether the selected Gram was rank deficient (then the
    minimum-norm solution)."""
    index = {f.name: j for j, f in enumerate(features)}
    sel = np.array([index[n] for n in selected], dtype=np.int64)
    beta = np.zeros(len(features))
    deficient = False
    if sel.size:
        G = np.asarray(problem.gram_cols(sel), dtype=np.float64)[sel]
        b, deficient = ols_refit(G, np.asarray(problem.xty)[sel])
        beta[sel] = b
    coef, intercept = back_transform(beta, scaling)
    return coef, intercept, deficient


def stability_summary(chosen: np.ndarray, threshold: float, penalized: np.ndarray
                      ) -> tuple[np.ndarray, float, float, int]:
    """Stability selection from the half-sample fits (Meinshausen & Bühlmann 2010; with
    complementary pairs, Shah & Samworth 2013).

    Parameters
    ----------
    chosen : ndarray of shape (n_fits, n_features, n_alphas), bool
        Whether half-sample fit ``h`` selects feature ``k`` at alpha ``a`` of ``Λ``.
    threshold : float in (0.5, 1]
    penalized : ndarray of shape (n_features,), bool
        The features the bound is about (forced features are not a selection).

    Returns
    -------
    prob : (n_features,) ``max over Λ`` of the fraction of fits selecting the feature
    q : the mean over the fits of the number of penalized features selected anywhere on Λ
    bound : ``q² / ((2·threshold − 1)·p)``, the bound on the expected number of falsely
        selected features (p the number of penalized features)
    p : that number
    """
    prob = chosen.mean(axis=0).max(axis=1) if chosen.shape[2] else np.zeros(chosen.shape[1])
    ever = chosen.any(axis=2)[:, penalized]
    q = float(ever.sum(axis=1).mean()) if ever.size else 0.0
    p = int(penalized.sum())
    bound = q * q / ((2.0 * threshold - 1.0) * p) if p else 0.0
    return prob, q, bound, p


# The CV curve counts as flat when its range is within this fraction of its minimum.
FLAT_RTOL = 0.01


def diagnostics(sel: Selection, fit: PathFit, params, n_features: int, n_rows: int,
                n_target_values: int | None, forced: bool) -> list[Warn]:
    """Warnings about the choice itself: the chosen alpha at an edge of the grid, a flat CV
    curve, more features than rows, a binary target."""
    out: list[Warn] = []
    curve = sel.curve
    alphas = np.asarray(fit.alphas)
    explicit = params.alphas is not None
    if curve is not None and alphas.size > 1:
        last = alphas.size - 1
        base = "the model of the forced features alone" if forced else \
            "the null model (the mean of the target)"
        if sel.i_alpha == 0:
            todo = ("extend --alphas upward" if explicit else
                    "the features may not predict the target linearly: try other features, "
                    "more rows, or --rule min")
            out.append(Warn("alpha_at_grid_edge", (
                f"The chosen alpha ({alphas[0]:.4g}) is the top of the grid: nothing beats "
                f"{base} by more than the CV noise, so no feature is selected by the data; "
                f"{todo}")))
        if sel.i_alpha == last or curve.i_min == last:
            which = "chosen alpha" if sel.i_alpha == last else "CV minimum"
            todo = ("extend --alphas downward" if explicit else
                    f"lower --eps (the grid ends at {alphas[last] / alphas[0]:.3g} × "
                    "alpha_max) to extend the grid")
            out.append(Warn("alpha_at_grid_edge", (
                f"The {which} ({alphas[last]:.4g}) is the bottom of the grid: the best alpha "
                f"may lie below it; {todo}")))
        mean = curve.mean
        lo, hi = float(mean.min()), float(mean.max())
        spread = hi - lo
        within_se = spread <= float(curve.se[curve.i_min])
        if spread <= FLAT_RTOL * lo or within_se:
            out.append(Warn("flat_cv_curve", (
                f"The CV error curve is flat: from {lo:.4g} to {hi:.4g} over the grid "
                f"({spread / lo if lo > 0 else 0.0:.2%}), within "
                f"{'one standard error of its minimum' if within_se else '1%'}: the data "
                "barely prefer one alpha, so the selection is weakly determined; check "
                "fold_frequency, or run --stability")))
    if n_features > n_rows:
        out.append(Warn("more_features_than_rows", (
            f"There are more features ({n_features}) than rows ({n_rows}): the lasso selects "
            f"at most {n_rows} of them, and many selections fit about equally well; check "
            "fold_frequency, or run --stability")))
    if n_target_values == 2:
        out.append(Warn("binary_target", (
            f"The target {quoted(params.target)} takes only two values: a linear model of a 0/1 "
            "target is a linear probability model (its predictions can leave [0, 1]); the "
            "selection is still informative, but a logistic model (--family binomial with "
            "--engine auto or data; glmnet's family='binomial') is the usual choice")))
    return out


_COLUMN_KINDS = {"categorical": "categorical", "bool": "bool"}


def column_summary(recipe: Recipe, features: tuple[FeatureResult, ...]
                   ) -> tuple[dict[str, Any], ...]:
    """One answer per source column, in the recipe's column order: ``{column, kind
    (numeric | bool | categorical), n_features, n_selected, selected, features}``, where
    ``features`` lists the column's selected features (a categorical's levels) in the order
    of ``selected``, and ``selected`` is whether any of them is."""
    by_column: dict[str, list[FeatureResult]] = {}
    for f in features:
        group = by_column.get(f.column)
        if group is None:
            by_column[f.column] = [f]
        else:
            group.append(f)
    out = []
    for c in recipe.columns:
        feats = by_column.get(c.name)
        if not feats:
            continue
        if len(feats) == 1:  # most columns, all of them on numeric wide data: no sorting
            chosen = [feats[0]] if feats[0].selected else []
        else:
            chosen = [f for f in feats if f.selected]
            chosen.sort(key=lambda f: (-abs(f.coef_std), f.name))
        out.append({"column": c.name, "kind": _COLUMN_KINDS.get(c.kind, "numeric"),
                    "n_features": len(feats), "n_selected": len(chosen),
                    "selected": bool(chosen), "features": [f.name for f in chosen]})
    return tuple(out)

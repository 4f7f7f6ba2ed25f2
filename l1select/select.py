"""Select: pick alpha by the rule, take the all-rows fit there, and back-transform it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from l1select.cv import CVCurve, choose, cv_curve
from l1select.types import FeatureResult, FeatureSpec, PathFit, Scaling


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


def back_transform(coef_std: np.ndarray, scaling: Scaling) -> tuple[np.ndarray, float]:
    """Coefficients on the original scale, and the intercept, of a standardized fit.

    ``y ≈ y_mean + ((x - x_mean) / x_scale) @ coef_std = intercept + x @ coef``.
    """
    coef = coef_std / scaling.x_scale
    intercept = scaling.y_mean - float(coef @ scaling.x_mean)
    return coef, intercept


def _order(names: list[str], coef_std: np.ndarray) -> list[str]:
    nz = [i for i in range(len(names)) if coef_std[i] != 0.0]
    nz.sort(key=lambda i: (-abs(coef_std[i]), names[i]))
    return [names[i] for i in nz]


def select(fits: list[PathFit], scaling: Scaling, rule: str,
           features: list[FeatureSpec], alpha_max: list[float]) -> Selection:
    """Choose the (l1_ratio, alpha) pair and report the all-rows fit there.

    Without CV (one fixed alpha) the single fit is taken as it is.
    """
    curves: list[CVCurve | None] = []
    for fit in fits:
        if fit.mse_path is None:
            curves.append(None)
        else:
            mean, se = cv_curve(fit.mse_path, fit.fold_sizes)
            curves.append(choose(fit.alphas, mean, se))
    if curves[0] is None:
        chosen, i_alpha = 0, 0
    else:
        best = [c.mean[c.i_min] for c in curves]  # type: ignore[union-attr]
        chosen = int(np.argmin(best))
        curve = curves[chosen]
        i_alpha = curve.i_min if rule == "min" else curve.i_1se  # type: ignore[union-attr]
    fit = fits[chosen]
    curve = curves[chosen]
    coef_std_fit = fit.coefs[:, i_alpha]
    coef, intercept = back_transform(coef_std_fit, scaling)
    # On the standardized scale whatever the fit's own scaling, so sizes compare across features.
    coef_std = coef * scaling.x_std
    names = [f.name for f in features]
    selected = _order(names, coef_std)
    chosen_set = set(selected)
    results = tuple(
        FeatureResult(name=f.name, column=f.column, coef=float(coef[j]),
                      coef_std=float(coef_std[j]), selected=f.name in chosen_set)
        for j, f in enumerate(features)
    )
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
        cv = {
            "metric": "mse",
            "mean": mean,
            "se": float(curve.se[i_alpha]),
            "r2": (1.0 - mean / scaling.y_var) if scaling.y_var > 0 else None,
            "n_folds": int(fit.mse_path.shape[1]),
            "fold_sizes": [int(s) for s in fit.fold_sizes],
            "path": path_rows,
        }
    return Selection(alpha=alpha, cv=cv, intercept=intercept, features=results,
                     selected=tuple(selected), coef=coef, chosen=chosen, i_alpha=i_alpha,
                     coef_path=coef_path(fit, scaling, names))


def coef_path(fit: PathFit, scaling: Scaling, names: list[str]) -> dict[str, Any]:
    """The all-rows coefficient path of the chosen l1_ratio on the original scale, compactly:
    only the features that are non-zero somewhere on it."""
    coefs = fit.coefs / scaling.x_scale[:, None]
    intercepts = scaling.y_mean - scaling.x_mean @ coefs
    live = np.flatnonzero(np.any(fit.coefs != 0.0, axis=1))
    return {
        "l1_ratio": float(fit.l1_ratio),
        "alphas": [float(a) for a in fit.alphas],
        "intercept": [float(b) for b in intercepts],
        "coefs": {names[j]: [float(v) for v in coefs[j]] for j in live},
    }


def predict(X: np.ndarray, coef: np.ndarray, intercept: float, x_mean: np.ndarray) -> np.ndarray:
    """Predictions of the refit model; a missing value is imputed with its training mean."""
    filled = np.where(np.isnan(X), x_mean, X)
    return intercept + filled @ coef

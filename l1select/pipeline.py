"""Chain the stages: the library entry point ``select_features``."""

from __future__ import annotations

import numpy as np

from l1select import io as l1io
from l1select.errors import ConfigError
from l1select.path import explicit_grid
from l1select.prepare import needed_columns
from l1select.select import select
from l1select.types import FitParams, Recipe, SelectionResult, Warn


def validate(params: FitParams) -> FitParams:
    """Check the options once, at the entry; later stages trust them."""
    problems = []
    if params.model not in ("lasso", "elasticnet"):
        problems.append(f"--model must be lasso or elasticnet, not '{params.model}'")
    if params.model == "lasso" and tuple(params.l1_ratios) != (1.0,):
        problems.append("--l1-ratio applies to --model elasticnet; lasso has l1_ratio 1")
    if any(not (0.0 < r <= 1.0) for r in params.l1_ratios) or not params.l1_ratios:
        problems.append("--l1-ratio values must be in (0, 1], e.g. --l1-ratio 0.1,0.5,0.9")
    if params.fold_column is None and params.cv < 2:
        problems.append(f"--cv must be at least 2, not {params.cv}")
    if params.n_alphas < 1:
        problems.append("--n-alphas must be at least 1")
    if not (0.0 < params.eps < 1.0):
        problems.append(f"--eps must be between 0 and 1, not {params.eps}")
    if params.alpha is not None and not (params.alpha > 0 and np.isfinite(params.alpha)):
        problems.append(f"--alpha must be a positive number, not {params.alpha}")
    if params.alpha is not None and params.alphas is not None:
        problems.append("give either --alpha (one fit, no CV) or --alphas (a CV grid), not both")
    if params.alpha is not None and len(params.l1_ratios) > 1:
        problems.append("--alpha fits one model: give a single --l1-ratio")
    if params.test_size is not None and not (0.0 < params.test_size < 1.0):
        problems.append(f"--test-size must be between 0 and 1, not {params.test_size}")
    if params.max_levels < 1:
        problems.append("--max-levels must be at least 1")
    if params.rule not in ("1se", "min"):
        problems.append(f"--rule must be 1se or min, not '{params.rule}'")
    if params.missing not in ("mean", "drop", "error"):
        problems.append(f"--missing must be mean, drop or error, not '{params.missing}'")
    if params.alphas is not None:
        explicit_grid(params.alphas)
    if problems:
        raise ConfigError("; ".join(problems))
    return params


def select_features(path: str, params: FitParams, progress=None) -> SelectionResult:
    """Read ``path``, prepare, cross-validate the path, choose alpha and refit on all rows.

    ``progress(stage, done, total)``, if given, is called as rows are read (stage ``read``,
    total an estimate or None) and as the paths are solved (stage ``path``).
    """
    from threadpoolctl import threadpool_limits

    params = validate(params)
    source, header, data = l1io.open_header(path)
    columns, warnings = needed_columns(header.names, params.target, params.features,
                                       params.exclude, params.fold_column, source.display)
    n_rows = l1io.estimate_rows(source, data)
    engine = _engine(params.engine, len(columns), n_rows)
    # One BLAS thread unless asked: the pass is many small products, and on a busy 2-core
    # machine a second BLAS thread fighting Arrow's parser slows it down several times.
    with threadpool_limits(limits=params.threads or 1):
        out = engine.run(source, header, data, columns, params,
                         _Progress(progress, n_rows) if progress else None)
    chosen = select(list(out.fits), out.scaling, params.rule, list(out.recipe.features),
                    list(out.alpha_max))
    if not all(f.converged for f in out.fits):
        warnings.append(Warn(
            "not_converged", f"The solver stopped at {params.max_iter} epochs before reaching "
            f"the duality-gap tolerance {params.tol:g} at some alphas; the results there are "
            "approximate (highly correlated features slow it down: consider --exclude)"))
    test_report = None
    if out.test_error is not None:
        n_test, mse, r2 = out.test_error(chosen.coef, chosen.intercept)
        test_report = {"n_rows": n_test, "mse": mse, "r2": r2}
    cv = chosen.cv
    if cv is not None and out.fold_labels:
        cv = {**cv, "fold_labels": list(out.fold_labels)}
    return SelectionResult(
        input={
            "source": source.display,
            "format": source.format,
            "sha256": out.sha256,
            "n_rows": out.n_rows,
            "n_rows_used": out.n_used,
            "n_rows_test": out.n_test,
            "n_rows_dropped": out.n_dropped,
            "target": params.target,
        },
        params={**params.to_dict(), "engine": out.engine, "n_folds": out.n_folds},
        alpha=chosen.alpha,
        cv=cv,
        intercept=chosen.intercept,
        features=chosen.features,
        selected=chosen.selected,
        warnings=tuple(warnings) + out.warnings,
        recipe=_recipe_dict(out.recipe, out.scaling),
        test=test_report,
        engine=out.engine,
        coef_path=chosen.coef_path,
    )


# The Gram route keeps K+2 matrices of (p+1)² float64: past ~3,000 features they outgrow the
# memory budget, and below n ≈ 2p they cost more to build than the data matrix does to use.
GRAM_MAX_FEATURES = 3000


def _engine(name: str, n_columns: int, n_rows: int | None):
    """The engine to run. ``auto`` streams the Gram statistics unless the data is wide."""
    if name == "auto":
        wide = n_columns > GRAM_MAX_FEATURES or (n_rows is not None and n_rows < 2 * n_columns)
        name = "data" if wide else "gram"
    if name == "reference":
        from l1select.engines import reference

        return reference
    if name == "data":
        from l1select.engines import data

        return data
    from l1select.engines import gram

    return gram


def _recipe_dict(recipe: Recipe, scaling) -> dict:
    """The preparation recipe a result carries, so that transform and predict need no refit."""
    return {
        "target": recipe.target,
        "columns": [{"name": c.name, "kind": c.kind, "levels": list(c.levels) or None}
                    for c in recipe.columns],
        "features": [
            {"name": f.name, "column": f.column, "kind": f.kind, "level": f.level,
             "impute": float(m), "center": float(m), "scale": float(s)}
            for f, m, s in zip(recipe.features, scaling.x_mean, scaling.x_scale, strict=True)
        ],
        "y_mean": scaling.y_mean,
    }


class _Progress:
    """Adapts an engine's progress calls to ``progress(stage, done, total)``."""

    def __init__(self, callback, n_rows: int | None):
        self.callback = callback
        self.n_rows = n_rows
        self.rows = 0

    def read(self, n: int) -> None:
        self.rows += n
        self.callback("read", self.rows, self.n_rows)

    def path(self, done: int, total: int) -> None:
        self.callback("path", done, total)

"""Chain the stages: the library entry point ``select_features``."""

from __future__ import annotations

import numpy as np

from l1select import io as l1io
from l1select.errors import ConfigError, DataError, list_names
from l1select.folds import fold_ids, holdout_mask, label_folds
from l1select.path import alpha_grid, alpha_max, explicit_grid
from l1select.prepare import build_recipe, design_matrix, needed_columns
from l1select.select import predict, select
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


def _drop_rows(X: np.ndarray, y: np.ndarray, recipe: Recipe, params: FitParams, source: str,
               line_offset: int, row_label: str) -> tuple[np.ndarray, list[Warn]]:
    """The rows kept for fitting, as a boolean mask over the rows read."""
    warnings: list[Warn] = []
    keep = ~np.isnan(y)
    n_missing_y = int((~keep).sum())
    if n_missing_y == y.size:
        raise DataError(f"Target column '{recipe.target}' in {source} has no values; "
                        "choose a column with numeric values")
    if n_missing_y:
        warnings.append(Warn("dropped_missing_target",
                             f"Dropped {n_missing_y} rows with a missing target '{recipe.target}'"))
    missing = np.isnan(X) & keep[:, None]
    if params.missing == "error" and missing.any():
        row, col = (int(v[0]) for v in np.nonzero(missing))
        raise DataError(
            f"Column '{recipe.features[col].column}' in {source} has a missing value at "
            f"{row_label} {row + line_offset}; fill it, or use --missing mean or --missing drop"
        )
    if params.missing == "drop":
        rows = missing.any(axis=1)
        if rows.any():
            cols = sorted({recipe.features[j].column for j in np.flatnonzero(missing.any(0))})
            warnings.append(Warn("dropped_missing_features",
                                 f"Dropped {int(rows.sum())} rows with missing values in "
                                 f"{list_names(cols)} (--missing drop)"))
            keep &= ~rows
    elif params.missing == "mean":
        cols = sorted({recipe.features[j].column for j in np.flatnonzero(missing.any(0))})
        if cols:
            warnings.append(Warn("imputed_mean",
                                 f"Imputed missing values with the training mean in "
                                 f"{list_names(cols, 20)}"))
    return keep, warnings


def _drop_constant(X: np.ndarray, recipe: Recipe) -> tuple[Recipe, np.ndarray, list[Warn]]:
    """Drop features without variation on the fitting rows (or with no values there).

    Returns the reduced recipe and the boolean mask of the features kept.
    """
    with np.errstate(all="ignore"):
        lo = np.nanmin(X, axis=0) if X.shape[0] else np.full(X.shape[1], np.nan)
        hi = np.nanmax(X, axis=0) if X.shape[0] else np.full(X.shape[1], np.nan)
    constant = ~(hi > lo)
    if not constant.any():
        return recipe, ~constant, []
    names = [f.name for f, c in zip(recipe.features, constant, strict=True) if c]
    kept = tuple(f for f, c in zip(recipe.features, constant, strict=True) if not c)
    warnings = [Warn("dropped_constant", f"Dropped constant columns: {list_names(names, 20)}")]
    recipe = Recipe(recipe.target, recipe.columns, kept, recipe.fold_column)
    return recipe, ~constant, warnings


def select_features(path: str, params: FitParams) -> SelectionResult:
    """Read ``path``, prepare, cross-validate the path, choose alpha and refit on all rows."""
    params = validate(params)
    source, header, data = l1io.open_header(path)
    columns, warnings = needed_columns(header.names, params.target, params.features,
                                       params.exclude, params.fold_column, source.display)
    read = l1io.read(source, header, columns, data)
    table = read.table
    line_offset, row_label = (2, "line") if source.format == "csv" else (1, "row")
    recipe, more = build_recipe(table, params.target, params.fold_column, params.max_levels,
                                source.display)
    warnings += more
    design = design_matrix(table, recipe, source.display, line_offset, row_label)
    keep, more = _drop_rows(design.X, design.y, recipe, params, source.display,
                            line_offset, row_label)
    warnings += more
    index = np.arange(table.num_rows, dtype=np.int64)
    test = np.zeros(table.num_rows, dtype=bool)
    if params.test_size is not None:
        test = holdout_mask(index, params.test_size, params.seed) & keep
        if not test.any() or test.sum() == keep.sum():
            raise DataError(f"--test-size {params.test_size} leaves no rows on one side of the "
                            f"split of {int(keep.sum())} rows; choose another fraction")
    train = keep & ~test
    X, y = design.X[train], design.y[train]
    recipe, kept, more = _drop_constant(X, recipe)
    X = X[:, kept]
    warnings += more
    if not recipe.features:
        raise DataError(f"Every feature column in {source.display} is constant on the rows "
                        "used; nothing can be selected")
    if np.ptp(y) == 0:
        raise DataError(f"Target column '{recipe.target}' in {source.display} is constant "
                        f"({y[0]:g}); choose a target that varies")
    folds, n_folds = _folds(table, recipe, params, index[train], source.display, y.size)

    from l1select.engines import reference

    xty, scaling = reference.all_rows_xty(X, y, params.standardize)
    if params.alpha is not None:
        a_max = [alpha_max(xty, params.l1_ratios[0])]
        grids = [(params.l1_ratios[0], np.array([params.alpha]))]
        folds = None
    else:
        a_max = [alpha_max(xty, r) for r in params.l1_ratios]
        grids = [
            (r, explicit_grid(params.alphas) if params.alphas is not None
             else alpha_grid(m, params.n_alphas, params.eps))
            for r, m in zip(params.l1_ratios, a_max, strict=True)
        ]
    fits = reference.fit_paths(X, y, folds, n_folds, grids, params.standardize, params.tol,
                               params.max_iter)
    chosen = select(fits, scaling, params.rule, list(recipe.features), a_max)

    test_report = None
    if params.test_size is not None:
        yt = design.y[test]
        pred = predict(design.X[test][:, kept], chosen.coef, chosen.intercept, scaling.x_mean)
        mse = float(np.mean((yt - pred) ** 2))
        sst = float(np.mean((yt - yt.mean()) ** 2))
        test_report = {"n_rows": int(yt.size), "mse": mse,
                       "r2": (1.0 - mse / sst) if sst > 0 else None}
    return SelectionResult(
        input={
            "source": source.display,
            "format": source.format,
            "sha256": read.sha256,
            "n_rows": read.n_rows,
            "n_rows_used": int(y.size),
            "n_rows_test": int(test.sum()),
            "n_rows_dropped": int((~keep).sum()),
            "target": recipe.target,
        },
        params={**params.to_dict(), "engine": "reference", "n_folds": n_folds},
        alpha=chosen.alpha,
        cv=chosen.cv,
        intercept=chosen.intercept,
        features=chosen.features,
        selected=chosen.selected,
        warnings=tuple(warnings),
        recipe=_recipe_dict(recipe, scaling),
        test=test_report,
        engine="reference",
    )


def _folds(table, recipe: Recipe, params: FitParams, index: np.ndarray, source: str,
           n_rows: int) -> tuple[np.ndarray | None, int]:
    """Fold ids of the fitting rows: from the user's fold column, or hashed from the row index."""
    if params.alpha is not None:
        return None, 0
    if recipe.fold_column is not None:
        labels = table.column(recipe.fold_column).take(index)
        if labels.null_count:
            raise DataError(f"Fold column '{recipe.fold_column}' in {source} has missing "
                            "labels; give every row a fold")
        folds, uniq = label_folds(np.asarray(labels.to_pylist(), dtype=object).astype(str))
        if len(uniq) < 2:
            raise DataError(f"Fold column '{recipe.fold_column}' in {source} has a single fold "
                            f"({uniq[0]}); CV needs at least two")
        return folds, len(uniq)
    n_folds = params.cv
    if n_rows < n_folds:
        raise DataError(f"{source} has {n_rows} usable rows, fewer than the {n_folds} CV folds; "
                        "use a smaller --cv or more data")
    folds = fold_ids(index, n_folds, params.seed)
    sizes = np.bincount(folds, minlength=n_folds)
    if (sizes == 0).any() or (n_rows - sizes < 2).any():
        raise DataError(f"{source} has too few usable rows ({n_rows}) for {n_folds} CV folds; "
                        "use a smaller --cv or more data")
    return folds, n_folds


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

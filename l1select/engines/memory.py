"""In-memory data for the engines that need the design matrix itself (reference, wide data)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from l1select import io as l1io
from l1select.engines.checks import check_design
from l1select.engines.stability import MICRO_GROUPS, check_groups, half_pairs, micro_ids
from l1select.errors import DataError, list_names, quoted
from l1select.folds import make_grouper, row_labels
from l1select.grouplasso import feature_groups, group_alpha_max
from l1select.path import adaptive_initial_data, alpha_max, grids_for, make_penalty
from l1select.prepare import Profiler, design_matrix, pool_columns, pool_rare_levels
from l1select.types import AllRows, FitParams, Recipe, Scaling, Warn


@dataclass(frozen=True)
class InMemory:
    """The fitting rows: X (n, p) with NaN where missing, y (n,), ``folds``: the (training,
    held-out) row positions of each CV fold; and the test rows ``X_test``, ``y_test``.
    ``micro`` (n,): the label cell of each row when stability's half-samples are unions of
    whole labels (a fold or group column), else None."""

    X: np.ndarray
    y: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    n_folds: int
    fold_labels: tuple[str, ...]
    X_test: np.ndarray
    y_test: np.ndarray
    recipe: Recipe
    warnings: tuple[Warn, ...]
    n_rows: int
    n_dropped: int
    sha256: str | None
    rows: np.ndarray | None = None  # global row index of each fitting row (micro-groups)
    # X holds each column × its unit, a power of two (1 for most; see Profiler.units).
    unit: np.ndarray | None = None
    micro: np.ndarray | None = None

    def units(self) -> np.ndarray:
        return np.ones(self.X.shape[1]) if self.unit is None else self.unit

    w: np.ndarray | None = None  # observation weights of the fitting rows (None: all 1)
    w_test: np.ndarray | None = None
    classes: Any = None  # a binary target's family.Classes


def scaling_of(X: np.ndarray, y: np.ndarray, standardize: bool,
               unit: np.ndarray | None = None, w: np.ndarray | None = None) -> Scaling:
    """Means and scales after imputing each column's missing values with its mean.

    Imputed values sit at the mean, so they add nothing to the sum of squares; the standard
    deviation (ddof=0) is over all rows, imputed ones included. ``unit``: how the columns of
    ``X`` are held (see :class:`InMemory`); without standardization a column's scale is 1 in
    its own units. With observation weights ``w`` (n,) every mean and standard deviation is
    weighted (glmnet's convention).
    """
    n = X.shape[0]
    ones = None if standardize else (np.ones(X.shape[1]) if unit is None else unit)
    if w is not None:
        total = float(w.sum())
        observed = ~np.isnan(X)
        with np.errstate(invalid="ignore", divide="ignore"):
            x_mean = (w @ np.where(observed, X, 0.0)) / (w @ observed)
        # A column observed on weight-0 rows only is constant here: centre it at 0.
        x_mean = np.nan_to_num(x_mean, nan=0.0)
        centered = np.where(observed, X - x_mean, 0.0)
        x_std = np.sqrt((w @ centered ** 2) / total)
        x_scale = np.where(x_std > 0, x_std, 1.0) if standardize else ones
        y_mean = float(w @ y / total)
        return Scaling(x_mean=x_mean, x_scale=x_scale, x_std=x_std, y_mean=y_mean,
                       y_var=float(w @ (y - y_mean) ** 2 / total), n_samples=n)
    x_mean = nanmean(X)
    centered = np.where(np.isnan(X), 0.0, X - x_mean)
    x_std = np.sqrt(np.einsum("ij,ij->j", centered, centered) / n)
    ones = np.ones_like(x_std) if unit is None else unit
    x_scale = np.where(x_std > 0, x_std, 1.0) if standardize else ones
    y_mean = float(np.mean(y))
    return Scaling(x_mean=x_mean, x_scale=x_scale, x_std=x_std, y_mean=y_mean,
                   y_var=float(np.mean((y - y_mean) ** 2)), n_samples=n)


def nanmean(X: np.ndarray) -> np.ndarray:
    """``np.nanmean(X, axis=0)`` (the same sums), NaN for a column with no value and no
    warning about it."""
    count = X.shape[0] - np.isnan(X).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isnan(X), 0.0, X).sum(axis=0) / count


def in_own_units(scaling: Scaling, unit: np.ndarray) -> Scaling:
    """``scaling`` of columns held × ``unit``, in the columns' own units (exact)."""
    return Scaling(x_mean=scaling.x_mean / unit, x_scale=scaling.x_scale / unit,
                   x_std=scaling.x_std / unit, y_mean=scaling.y_mean, y_var=scaling.y_var,
                   n_samples=scaling.n_samples)


def check_scaling(scaling: Scaling, recipe: Recipe, source: str) -> None:
    """Each feature's coefficient on its own scale must be a normal, finite number: its
    spread against the target's within 1e±305 (a column of subnormal values is not)."""
    std = scaling.x_std
    sy = np.sqrt(scaling.y_var)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = sy / std
        bad = (std > 0) & ~((ratio > 1e-305) & (ratio < 1e305) &
                            (std >= np.finfo(np.float64).tiny))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        f = recipe.features[j]
        if std[j] < np.finfo(np.float64).tiny:
            raise DataError(f"Column {quoted(f.column)} in {source} has a spread "
                            f"({std[j]:.3g}) below "
                            "the smallest normal double (2.2e-308): its values hold too few "
                            "digits to fit; multiply the column by a power of ten")
        what = "small" if not ratio[j] < 1e305 else "large"
        raise DataError(f"Column {quoted(f.column)} in {source} has a spread ({std[j]:.3g}) too "
                        f"{what} beside the target's ({sy:.3g}) for its coefficient to be a "
                        f"normal number; {'multiply' if what == 'small' else 'divide'} the "
                        "column by a power of ten")


def standardized(X: np.ndarray, scaling: Scaling) -> np.ndarray:
    """``(X - mean) / scale`` with missing values at the mean (0 after centering)."""
    Z = (X - scaling.x_mean) / scaling.x_scale
    Z[np.isnan(Z)] = 0.0
    return Z


def row_factors(w: np.ndarray | None, n: int) -> np.ndarray | None:
    """``sqrt(w_i · n / sum(w))``: multiplying the centered rows by these turns the weighted
    least-squares objective ``1/(2n) Σ w_i r_i²`` (weights scaled to sum to n, glmnet's
    convention) into an unweighted one on the same n rows."""
    return None if w is None else np.sqrt(w * (n / w.sum()))


def weighted_mean(values: np.ndarray, w: np.ndarray | None, axis: int = 0):
    """The (weighted) mean of ``values`` along ``axis``."""
    if w is None:
        return np.mean(values, axis=axis)
    return np.tensordot(w, values, axes=([0], [axis])) / w.sum()


def check_weight_sums(fold_sums: np.ndarray, test_sum: float | None, name: str,
                      source: str) -> None:
    """Weighted statistics divide by sums of weights: the training rows, each fold's
    held-out rows and the rest of its training rows, and the test rows need some weight.
    ``fold_sums`` holds each fold's weight (one entry, the training rows, without CV)."""
    train = float(np.sum(fold_sums))
    if train <= 0:
        raise DataError(f"Weights column '{name}' in {source} is zero on every row used; "
                        "give some rows a positive weight")
    if test_sum is not None and test_sum <= 0:
        raise DataError(f"Weights column '{name}' in {source} is zero on every test row "
                        "(--test-size); give some of them a positive weight")
    if len(fold_sums) < 2:
        return
    for k, s in enumerate(fold_sums):
        if s <= 0 or train - s <= 0:
            raise DataError(f"Weights column '{name}' in {source} is zero on every row "
                            f"{'of' if s <= 0 else 'outside'} CV fold {k + 1}; give rows "
                            "of every fold a positive weight, or use fewer folds")


def constant_features(spread: np.ndarray, recipe: Recipe, source: str
                      ) -> tuple[Recipe, np.ndarray, list[Warn]]:
    """Drop features whose spread on the fitting rows is zero (or unknown: no values)."""
    constant = ~(spread > 0)
    if not constant.any():
        return recipe, ~constant, []
    names = [f.name for f, c in zip(recipe.features, constant, strict=True) if c]
    kept = tuple(f for f, c in zip(recipe.features, constant, strict=True) if not c)
    if not kept:
        raise DataError(f"Every feature column in {source} is constant on the rows used; "
                        f"nothing can be selected (constant: {list_names(names)})")
    recipe = Recipe(recipe.target, recipe.columns, kept, recipe.fold_column)
    return recipe, ~constant, [Warn("dropped_constant",
                                    f"Dropped constant columns: {list_names(names, 20)}")]


def load(source: l1io.Source, header: l1io.Header, data: bytes | None, columns: list[str],
         params: FitParams, classes=None) -> InMemory:
    """Read every needed column into memory, profile it as one batch and split the rows.

    With ``classes`` (a binary target: a function from the whole target column to its
    ``family.Classes``) the target becomes 0/1 and the folds are stratified by class;
    ``params.weights`` names a weights column (not a feature).
    """
    read = l1io.read(source, header, columns, data)
    table = read.table
    offset, label = (2, "line") if source.format == "csv" else (1, "row")
    weights_col = None
    if params.weights is not None:
        weights_col = table.column(params.weights)
        table = table.drop_columns([params.weights])
    if classes is not None:
        import pyarrow as pa

        i = table.schema.get_field_index(params.target)
        classes = classes(table.column(i))
        table = table.set_column(i, params.target,
                                 pa.array(classes.encode(table.column(i)), type=pa.float64()))
    prof = Profiler(table.schema, params.target, params.fold_column, params.max_levels,
                    params.missing, source.display, offset, label, source.decimal_comma,
                    explicit=params.features, group_column=params.group_column)
    batch = prof.update(table, 0)
    recipe, warnings, _ = prof.recipe()
    units = prof.units()
    unit = _feature_units(recipe, units)
    # Held × unit, as the statistics engines hold them: squares of huge or tiny values stay
    # normal floats (exact: a power of two; 1 for most columns).
    # Column-major: the data-matrix kernel reads columns (no second copy to reorder it).
    X_all = design_matrix(table, recipe, order="F")
    if batch.rows.size < X_all.shape[0]:  # rows were dropped (else: no copy of the matrix)
        X_all = X_all[batch.rows]
    if (unit != 1.0).any():
        X_all *= unit
    # A copy: a view would keep the profiler's whole (n, p + 1) block alive.
    y_all = batch.U[:, 0].copy()
    batch = replace(batch, U=batch.U[:0])
    grouper = make_grouper(params, read.n_rows)
    labels = None
    if grouper.needs_labels:
        labels = row_labels(table, batch.rows, params, source.display)
    strata = None if classes is None else y_all.astype(np.int64)
    layers = grouper.groups(batch.rows, labels, strata)
    w_all = None
    if weights_col is not None:
        from l1select.family import observation_weights

        w_all = observation_weights(weights_col, batch.rows, params.weights, source.display,
                                    offset, label)
    test = layers[0] == 0
    plan = grouper.plan(np.bincount(np.concatenate(
        [layers[0]] + [c[~test] for c in layers[1:]]), minlength=grouper.n_groups))
    fold_labels = plan.labels
    # Rare levels pool on the training rows (test rows excluded), the same for every fold.
    # Only the levels of categoricals are counted (a copy of all the columns would double
    # the memory of wide data).
    levels = np.flatnonzero([f.kind == "onehot" for f in recipe.features])
    train = np.nan_to_num(X_all[~test][:, levels], nan=0.0)
    counts = np.zeros(len(recipe.features))
    # With weights a level's count is its total weight (rounded), as in the statistics pass
    # and as duplicated rows would count it.
    counts[levels] = train.sum(axis=0) if w_all is None else np.rint(w_all[~test] @ train)
    recipe, sources, pooled = pool_rare_levels(recipe, counts, params.min_level_count)
    X_all = pool_columns(X_all, sources)
    unit = _feature_units(recipe, units)
    warnings += pooled
    X, y = (X_all[~test], y_all[~test]) if test.any() else (X_all, y_all)
    folds = []
    for fold in plan.folds:
        cells = layers[fold.layer][~test]
        folds.append((np.flatnonzero(fold.train[cells]).astype(np.int64),
                      np.flatnonzero(fold.test[cells]).astype(np.int64)))
    n_folds = len(plan.folds)
    if n_folds and params.group_column is not None:
        live = int((np.bincount(layers[0][~test], minlength=grouper.n_groups)[plan.full]
                    > 0).sum())
        if live < params.cv:
            raise DataError(f"Group column {quoted(params.group_column)} in "
                            f"{source.display} puts the rows in {live} bucket(s) of whole "
                            f"groups, fewer than the {params.cv} CV folds; use a smaller "
                            "--cv, or more groups")
    check_design(params, source.display, y.size, int(test.sum()),
                 float(np.ptp(y)) if y.size else 0.0, float(y[0]) if y.size else 0.0,
                 n_folds, grouper.scheme == "label",
                 np.array([t.size for _, t in folds]), np.array([r.size for r, _ in folds]))
    if not np.all(np.isfinite(X) | np.isnan(X)):
        j = int(np.flatnonzero(~np.all(np.isfinite(X) | np.isnan(X), axis=0))[0])
        raise DataError(f"Column {quoted(recipe.features[j].column)} in {source.display} holds "
                        "values too far apart in size to fit; rescale the column")
    with np.errstate(all="ignore"):  # fmax/fmin skip NaN, and warn of no all-NaN column
        spread = np.fmax.reduce(X, axis=0) - np.fmin.reduce(X, axis=0) if X.size else \
            np.zeros(X.shape[1])
    recipe, kept, more = constant_features(np.nan_to_num(spread, nan=0.0), recipe,
                                           source.display)
    warnings += more
    micro = layers[0][~test] if plan.micro is not None else None
    return InMemory(X=X if kept.all() else X[:, kept], y=y, folds=tuple(folds),
                    n_folds=n_folds, micro=micro,
                    fold_labels=tuple(fold_labels), X_test=X_all[test][:, kept],
                    y_test=y_all[test], recipe=recipe, warnings=tuple(warnings),
                    n_rows=read.n_rows, n_dropped=prof.n_missing_target + prof.n_missing_dropped,
                    sha256=read.sha256, rows=batch.rows[~test], unit=unit[kept],
                    w=None if w_all is None else w_all[~test],
                    w_test=None if w_all is None else w_all[test], classes=classes)


def _feature_units(recipe, units: dict[str, float]) -> np.ndarray:
    """Each feature's unit (see :meth:`Profiler.units`): indicators are held as they are."""
    return np.array([1.0 if f.kind in ("onehot", "other") else units[f.column]
                     for f in recipe.features])


@dataclass(frozen=True)
class Prepared:
    """The all-rows scaling, the alpha grid of each l1_ratio and their ``alpha_max``, the
    penalty factors (None: all 1) and how adaptive weights were made, and the all-rows
    problem (Gram columns formed on demand)."""

    scaling: Scaling
    grids: list
    a_max: list[float]
    penalty: np.ndarray | None
    adaptive: dict | None
    problem: AllRows


# Columns of the standardized matrix formed at a time for the all-rows Gram's columns.
GRAM_BLOCK = 2048


def prepare_grids(mem: InMemory, params: FitParams) -> Prepared:
    """All-rows scaling, penalty factors, and the alpha grid of each l1_ratio."""
    scaling = scaling_of(mem.X, mem.y, params.standardize, mem.units(), mem.w)
    n = mem.y.size
    root = row_factors(mem.w, n)

    def rows_scaled(Z: np.ndarray) -> np.ndarray:
        # Weighted: rows times sqrt(w·n/Σw), so that plain products are weighted ones.
        return Z if root is None else Z * (root[:, None] if Z.ndim == 2 else root)

    Xs = rows_scaled(standardized(mem.X, scaling))
    yc = rows_scaled(mem.y - scaling.y_mean)
    xty = Xs.T @ yc / n
    penalty, adaptive = make_penalty(mem.recipe.features, params,
                                     lambda: initial_data(Xs, yc))
    unpen = None if penalty is None else Xs.T @ Xs[:, penalty == 0] / n
    if params.group_categoricals:
        groups = feature_groups(mem.recipe.features)
        a_max = [group_alpha_max(xty, groups, r) for r in params.l1_ratios]
    else:
        a_max = [alpha_max(xty, r, penalty, unpen) for r in params.l1_ratios]
    diag = np.einsum("ij,ij->j", Xs, Xs) / n

    def standardized_block(cols) -> np.ndarray:
        Z = (mem.X[:, cols] - scaling.x_mean[cols]) / scaling.x_scale[cols]
        Z[np.isnan(Z)] = 0.0
        return rows_scaled(Z)

    def gram_cols(idx) -> np.ndarray:
        # Formed again on demand, a block of columns at a time: wide data neither keeps
        # nor makes a second n×p matrix (with its temporaries, 100 MB at 500 × 20,000).
        p = mem.X.shape[1]
        Zi = standardized_block(np.asarray(idx))
        out = np.empty((p, Zi.shape[1]))
        for start in range(0, p, GRAM_BLOCK):
            cols = slice(start, min(start + GRAM_BLOCK, p))
            out[cols] = standardized_block(cols).T @ Zi / n
        return out

    return Prepared(scaling, grids_for(a_max, params, n, mem.X.shape[1]), a_max, penalty,
                    adaptive, AllRows(gram_cols=gram_cols, gram_diag=diag, xty=xty))


def initial_data(Xs: np.ndarray, yc: np.ndarray):
    """The adaptive lasso's initial fit on the columns that vary (the others get 0)."""
    usable = np.einsum("ij,ij->j", Xs, Xs) > 0
    beta = np.zeros(Xs.shape[1])
    b, method, lam = adaptive_initial_data(Xs[:, usable], yc)
    beta[usable] = b
    return beta, method, lam


def n_values(y: np.ndarray) -> int:
    """The number of distinct values of ``y``, counted up to 3."""
    return int(min(np.unique(y).size, 3))


def half_rows(mem: InMemory, params: FitParams) -> list[np.ndarray]:
    """The fitting rows (positions in ``mem.y``) of each half-sample, pair by pair: the same
    micro-groups and pairs as the statistics engine."""
    if mem.micro is not None:
        # Whole labels (fold or group column): the half-samples are unions of their cells.
        cells = np.unique(mem.micro)
        ids = np.searchsorted(cells, mem.micro)
        counts = np.bincount(ids, minlength=cells.size)
    else:
        ids = micro_ids(mem.rows, MICRO_GROUPS, params.seed)
        counts = np.bincount(ids, minlength=MICRO_GROUPS)
    check_groups(counts, "training rows" if mem.micro is None else "whole labels")
    return [np.flatnonzero(mask[ids]).astype(np.int64)
            for pair in half_pairs(counts, params.stability, params.seed) for mask in pair]


def n_micro(mem: InMemory) -> int:
    """How many micro-groups the half-samples are unions of."""
    return MICRO_GROUPS if mem.micro is None else int(np.unique(mem.micro).size)


def test_error_fn(mem: InMemory, x_mean: np.ndarray):
    """The test-set error of a model, with missing values imputed by the training means
    (``x_mean`` as the columns are held); the model's coefficients are on the own scale."""
    if mem.y_test.size == 0:
        return None

    def test_error(coef: np.ndarray, intercept: float) -> tuple[int, float, float | None]:
        # With weights: the weighted mean of the squared errors, and R² against the weighted
        # variance of the test target.
        w = mem.w_test
        X = np.where(np.isnan(mem.X_test), x_mean, mem.X_test)
        resid = mem.y_test - intercept - X @ (coef / mem.units())
        mse = float(weighted_mean(resid ** 2, w))
        sst = float(weighted_mean((mem.y_test - weighted_mean(mem.y_test, w)) ** 2, w))
        return int(mem.y_test.size), mse, (1.0 - mse / sst) if sst > 0 else None

    return test_error

"""The Gram solver: the per-cell statistics of a pass (``engines.base.Statistics``, from the
streaming or the Dask engine) turned into the recipe, each training fold's standardized Gram
problem, the coefficient paths (coordinate descent on the Gram), the held-out errors (a
quadratic form in each fold's own statistics), the test error and stability's half-samples."""

from __future__ import annotations

import numpy as np

from l1select.cv import heldout_sse
from l1select.engines.base import Job, Statistics
from l1select.engines.checks import check_design, constant_features
from l1select.engines.streaming import pool_plan
from l1select.errors import DataError, quoted
from l1select.folds import FoldPlan
from l1select.grouplasso import feature_groups, group_alpha_max, solve_group_gram
from l1select.moments import Imputed, Layout, Moments, imputed, merge_sum
from l1select.path import (
    adaptive_initial,
    alpha_max,
    gram_deviance_explained,
    grids_for,
    make_penalty,
    saturated_length,
    solve_gram,
    stops_early,
)
from l1select.prepare import Y_SLOT, Profiler
from l1select.solve.matrix import check_scaling, check_weight_sums
from l1select.solve.stability import check_groups, half_pairs
from l1select.types import AllRows, FitParams, PathFit, Scaling, Solved


def _layout(stats: Moments, prof: Profiler, recipe, slots) -> Layout:
    fills = prof.fills()
    value, missing, fill = [], [], []
    for f in recipe.features:
        value.append(stats.index(slots[f.name]))
        key = ("miss", f.column)
        missing.append(stats.index(key) if key in stats.keys else -1)
        fill.append(0.0 if f.kind in ("onehot", "other") else fills[f.column])
    return Layout(value=np.array(value, dtype=np.int64), missing=np.array(missing, dtype=np.int64),
                  fill=np.array(fill), target=stats.index(Y_SLOT))


def _units(prof: Profiler, recipe) -> np.ndarray:
    """How each feature's values are held in the statistics: value × unit (see
    :meth:`Profiler.units`; a one-hot level or the pooled level is held as is)."""
    units = prof.units()
    return np.array([1.0 if f.kind in ("onehot", "other") else units[f.column]
                     for f in recipe.features])


def _pool(stats: Moments, micro: Moments | None, recipe, slots: dict, train_mask: np.ndarray,
          min_count: int):
    """Pool the rare levels (counted on all training rows) into ``column=(other)``: the sum of
    their indicator slots, in ``stats`` and ``micro`` alike (both mutated)."""
    pooled, sources, warnings = pool_plan(stats, recipe, slots, train_mask, min_count)
    slots = dict(slots)
    for f, src in zip(pooled.features, sources, strict=True):
        if f.kind == "other":
            key = ("other", f.column)
            keys = [slots[recipe.features[i].name] for i in src]
            for m in (stats, micro):
                if m is not None:
                    m.pool(key, keys)
            slots[f.name] = key
    return pooled, slots, warnings


def _problem(st: Imputed, standardize: bool, unit: np.ndarray, source: str = "",
             names=()):
    """The standardized Gram problem of some rows: (gram, xty, yty, scale, std, usable), in
    the units the statistics are held in (``unit``: see :func:`_units`)."""
    var = np.maximum(np.diag(st.xx), 0.0) / st.n
    std = np.sqrt(var)
    usable = std > 0
    scale = np.where(usable, std, 1.0) if standardize else unit
    with np.errstate(all="ignore"):
        gram = st.xx / (st.n * np.outer(scale, scale))
        xty = st.xy / (st.n * scale)
    if not (np.all(np.isfinite(gram)) and np.all(np.isfinite(xty))):
        # Only without standardization: the raw-scale Gram of huge values overflows.
        bad = ~(np.isfinite(np.diag(gram)) & np.isfinite(xty))
        which = [n for n, b in zip(names, bad, strict=False) if b][:3]
        raise DataError(f"Column(s) {', '.join(which) or '?'} in {source} hold values too "
                        "large to fit without standardization (their squares overflow); "
                        "drop --no-standardize, or rescale them")
    return gram, xty, st.yy / st.n, scale, std, usable


def solve(delivered: Statistics, job: Job) -> Solved:
    """Everything after the pass: the recipe, the folds' problems, the paths, the test error,
    from the whole data's profile and per-cell statistics (whichever engine made them)."""
    source, params, progress = job.source, job.params, job.progress
    prof, stats, grouper, micro = (delivered.prof, delivered.stats, delivered.grouper,
                                   delivered.micro)
    recipe, warnings, slots = prof.recipe()
    plan = grouper.plan(stats.rows)  # rows, not weights: as the in-memory engines deal them
    fold_labels = plan.labels
    n_folds = len(plan.folds)
    train_mask = plan.full
    recipe, slots, pooled = _pool(stats, micro, recipe, slots, train_mask,
                                  params.min_level_count)
    if plan.micro is not None and params.stability:
        # Half-samples of whole labels: the label cells are the micro-groups.
        micro = _cells(stats, plan.micro & (stats.n > 0))
    warnings += pooled
    layout = _layout(stats, prof, recipe, slots)
    unit = _units(prof, recipe)
    n_train, mean_all, com_all = stats.merged(train_mask)
    # With --weights, n_train and stats.n are sums of weights; stats.rows count rows.
    rows_train = int(stats.rows[train_mask].sum())
    n_test = int(stats.rows[0])
    t = layout.target
    y_unit = prof.units().get(params.target, 1.0)  # the target held as value × unit
    if params.weights is not None:
        check_weight_sums(np.array([stats.n[f.test].sum() for f in plan.folds])
                          if n_folds else [n_train],
                          float(stats.n[0]) if n_test else None, params.weights,
                          source.display)
    if n_folds:
        check_buckets(plan, stats.rows, params, source.display)
    check_design(params, source.display, rows_train, n_test, float(com_all[t, t]),
                 float(mean_all[t]) / y_unit, n_folds, grouper.by_label,
                 np.array([stats.rows[f.test].sum() for f in plan.folds]),
                 np.array([stats.rows[f.train].sum() for f in plan.folds]))
    full = imputed(n_train, mean_all, com_all, layout)
    names = [f.name for f in recipe.features]
    recipe, kept, more = constant_features(_spread(full), recipe, source.display)
    warnings += more
    unit, names = unit[kept], [n for n, k in zip(names, kept, strict=True) if k]
    if not kept.all():
        layout = Layout(layout.value[kept], layout.missing[kept], layout.fill[kept],
                        layout.target)
        full = imputed(n_train, mean_all, com_all, layout)
    gram, xty, yty, scale, std, usable = _problem(full, params.standardize, unit,
                                                  source.display, names)
    p = len(recipe.features)
    penalty, adaptive = make_penalty(recipe.features, params,
                                     lambda: _initial(gram, xty, rows_train, usable))
    unpen = None if penalty is None else gram[:, penalty == 0]
    groups = feature_groups(recipe.features) if params.group_categoricals else None
    solver = _solver(groups)
    a_max = [alpha_max(xty, r, penalty, unpen) if groups is None
             else group_alpha_max(xty, groups, r) for r in params.l1_ratios]
    grids = grids_for(a_max, params, rows_train, p)
    def fold_problems():
        # One fold at a time (memory: the cells' statistics, not R·K more Grams as well).
        for fold in plan.folds:
            n_k, mean_k, com_k = stats.merged(fold.train)
            st = imputed(n_k, mean_k, com_k, layout)
            yield stats.merged(fold.test), st, _problem(st, params.standardize, unit,
                                                        source.display, names)

    fits = []
    total = len(grids) * (1 + n_folds)
    for i, (l1_ratio, alphas) in enumerate(grids):
        coefs, converged = solver(gram, xty, yty, alphas, l1_ratio, usable, params,
                                      penalty)
        if stops_early(params, rows_train, p):
            m = saturated_length(gram_deviance_explained(gram, xty, yty, coefs))
            alphas, coefs = alphas[:m], coefs[:, :m]
        mse_path = sizes = fold_coefs = None
        if n_folds:
            mse_path = np.empty((alphas.size, n_folds))
            sizes = np.empty(n_folds)
            fold_coefs = np.empty((n_folds, p, alphas.size))
            for k, ((n_g, mean_g, com_g), st, (G, c, yy, sc, _, ok)) in enumerate(
                    fold_problems()):
                w, ok_k = solver(G, c, yy, alphas, l1_ratio, ok, params, penalty)
                converged &= ok_k
                beta = w / sc[:, None]
                b = st.y_mean - st.x_mean @ beta
                sse = heldout_sse(n_g, mean_g, com_g, layout.value, layout.missing,
                                  layout.target, st.shift, beta, b)
                mse_path[:, k] = sse / n_g
                sizes[k] = n_g
                fold_coefs[k] = w
                if progress is not None:
                    progress.path(i * (1 + n_folds) + k + 2, total)
        fits.append(PathFit(l1_ratio=l1_ratio, alphas=alphas, coefs=coefs, mse_path=mse_path,
                            fold_sizes=sizes, fold_coefs=fold_coefs, converged=converged))
    # Back to the columns' own units (exact: the units are powers of two).
    scaling = Scaling(x_mean=full.x_mean / unit, x_scale=scale / unit, x_std=std / unit,
                      y_mean=full.y_mean, y_var=yty, n_samples=rows_train)
    check_scaling(scaling, recipe, source.display)

    test_error = None
    if n_test:
        def test_error(coef: np.ndarray, intercept: float) -> dict:
            sse = heldout_sse(stats.n[0], stats.mean[0], stats.com[0], layout.value,
                              layout.missing, layout.target, full.shift, (coef / unit)[:, None],
                              np.array([intercept]))[0]
            mse = float(sse / stats.n[0])
            var = float(stats.com[0][layout.target, layout.target] / stats.n[0])
            return {"n_rows": n_test, "mse": mse, "r2": (1.0 - mse / var) if var > 0 else None}

    halves = None
    if params.stability:
        halves = _halves(micro, stats, layout, recipe, params, penalty, unit, solver,
                         plan.micro is not None)

    return Solved(
        engine=delivered.engine, recipe=recipe, warnings=tuple(warnings), fits=tuple(fits),
        scaling=scaling, alpha_max=tuple(a_max), n_rows=delivered.scan.n_rows,
        n_used=rows_train,
        n_test=n_test, n_dropped=prof.n_missing_target + prof.n_missing_dropped,
        sha256=delivered.scan.sha256, n_folds=n_folds, fold_labels=tuple(fold_labels),
        test_error=test_error, penalty=penalty, adaptive=adaptive,
        problem=AllRows(gram_cols=lambda idx: gram[:, idx], gram_diag=np.diag(gram).copy(),
                        xty=xty),
        halves=halves, n_target_values=delivered.n_target_values,
    )


def _cells(stats: Moments, which: np.ndarray) -> Moments:
    """The statistics of the cells in ``which`` as a Moments of their own (a copy)."""
    out = Moments(n_groups=int(which.sum()), keys=list(stats.keys))
    out.n, out.mean, out.com = stats.n[which].copy(), stats.mean[which], stats.com[which]
    out.rows = stats.rows[which].copy()
    return out


def check_buckets(plan: FoldPlan, counts: np.ndarray, params: FitParams, source: str) -> None:
    """With a group column, the buckets of whole groups that hold rows are enough for the
    folds."""
    if params.group_column is not None:
        live = int((counts[plan.full] > 0).sum())
        if live < params.cv:
            raise DataError(f"Group column {quoted(params.group_column)} in {source} puts the "
                            f"rows in {live} bucket(s) of whole groups, fewer than the "
                            f"{params.cv} CV folds; use a smaller --cv, or more groups")


def _spread(st: Imputed) -> np.ndarray:
    """Each feature's standard deviation on these rows, in the units it is held in."""
    return np.sqrt(np.maximum(np.diag(st.xx), 0.0) / st.n)


def _solver(groups: np.ndarray | None):
    """The path solver: the lasso (elastic net) on the Gram, or with ``--group-categoricals``
    the group lasso over ``groups`` (which has no penalty factors: validate refuses them)."""
    if groups is None:
        return solve_gram

    def solve(gram, xty, yty, alphas, l1_ratio, usable, params, penalty=None):
        return solve_group_gram(gram, xty, yty, alphas, l1_ratio, usable, params, groups)

    return solve


def _initial(gram: np.ndarray, xty: np.ndarray, n: float, usable: np.ndarray):
    """The adaptive lasso's initial fit on the features that vary on these rows (the others
    get a zero coefficient, hence the largest weight)."""
    beta = np.zeros(xty.shape[0])
    idx = np.flatnonzero(usable)
    b, method, lam = adaptive_initial(gram[np.ix_(idx, idx)], xty[idx], n)
    beta[idx] = b
    return beta, method, lam


def _halves(micro: Moments | None, stats: Moments, layout: Layout, recipe, params: FitParams,
            penalty: np.ndarray | None, unit: np.ndarray, solver, plan_micro: bool = False):
    """The half-sample solver of stability selection: each half's statistics are the merge
    of its micro-groups, imputed and standardized exactly as a training fold's."""
    assert micro is not None and micro.keys == stats.keys
    # Rows, not weights, decide which micro-groups are live: the in-memory engines agree.
    check_groups(micro.rows, "whole labels" if plan_micro else "training rows")
    pairs = half_pairs(micro.rows, params.stability, params.seed)
    p = len(recipe.features)

    def halves(l1_ratio: float, alphas: np.ndarray, progress=None):
        """Selection indicators (2B, n_features, n_alphas), whether every fit converged, and
        the number of micro-groups."""
        chosen = np.zeros((2 * len(pairs), p, alphas.size), dtype=bool)
        converged = True
        for i, mask in enumerate(m for pair in pairs for m in pair):
            n_h, mean_h, com_h = merge_sum(micro.n, micro.mean, micro.com, mask)
            st = imputed(n_h, mean_h, com_h, layout)
            G, c, yy, _, _, ok = _problem(st, params.standardize, unit)
            pf = penalty
            if params.adaptive:
                pf, _ = make_penalty(recipe.features, params,
                                     lambda G=G, c=c, n=n_h, ok=ok: _initial(G, c, n, ok))
            w, done = solver(G, c, yy, alphas, l1_ratio, ok, params, pf)
            converged &= done
            chosen[i] = w != 0.0
            if progress is not None:
                progress(i + 1, 2 * len(pairs))
        return chosen, converged, micro.n_groups

    return halves

"""The local engine: one streaming pass of per-fold statistics, then coordinate descent on the
standardized Gram of each training fold. Memory is set by the number of features, not rows."""

from __future__ import annotations

import numpy as np

from l1select import io as l1io
from l1select.cv import heldout_sse
from l1select.engines.checks import check_design
from l1select.engines.memory import check_scaling, check_weight_sums, constant_features
from l1select.engines.stability import check_groups, half_pairs, micro_count, micro_ids
from l1select.errors import ConfigError, DataError, quoted
from l1select.folds import FoldPlan, Grouper, make_grouper, row_labels, scheme_of
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
from l1select.prepare import Y_SLOT, Profiler, pool_rare_levels
from l1select.types import AllRows, EngineOutput, FitParams, PathFit, Scaling

# The statistics of the cells (the CV folds, R·K with --repeats, or the group buckets) must
# fit in this many bytes: (cells + 1) co-moment matrices of (slots)² float64.
STATS_BYTES = 4 << 30

# The Gram route keeps K+2 matrices of (p+1)² float64: past ~3,000 features they outgrow the
# memory budget, and below n ≈ 2p they cost more to build than the data matrix does to use.
GRAM_MAX_FEATURES = 3000


class TooWide(Exception):
    """With ``--engine auto``: the design, one-hot levels counted, is too wide for the Gram
    route (more than ``GRAM_MAX_FEATURES`` features, or fewer rows than twice the features);
    the pipeline runs the data engine instead."""


def split_weights(batch, params: FitParams):
    """The batch without the weights column (never a feature), and that column (None
    without ``--weights``)."""
    if params.weights is None:
        return batch, None
    i = batch.schema.get_field_index(params.weights)
    return batch.drop_columns([params.weights]), batch.column(i)


class Reduction:
    """The per-batch reduction of the statistics pass, shared by every statistics engine: a
    batch is profiled, its kept rows grouped into test/folds (and stability micro-groups), and
    their statistics merged into ``stats`` (and ``micro``)."""

    def __init__(self, prof: Profiler, grouper: Grouper, params: FitParams,
                 max_slots: int | None = None):
        self.prof = prof
        self.max_slots = max_slots
        self.grouper = grouper
        self.params = params
        self.stats = Moments(n_groups=grouper.n_groups)
        self.micro: Moments | None = None
        self.y_values: set[float] = set()

    def add(self, batch, start: int) -> None:
        """Reduce one record batch whose first row has global index ``start``."""
        params, prof, grouper, stats = self.params, self.prof, self.grouper, self.stats
        batch, weights = split_weights(batch, params)
        b = prof.update(batch, start)
        w = None
        if weights is not None:
            from l1select.family import observation_weights

            # Per batch, zero everywhere is allowed: the whole data's total is checked later.
            w = observation_weights(weights, b.rows - start, params.weights, prof.source,
                                    prof.line_offset + start, prof.row_label,
                                    require_positive=False)
        labels = None
        if grouper.needs_labels:
            labels = row_labels(batch, b.rows - start, params, prof.source)
        layers = grouper.groups(b.rows, labels)
        groups = layers[0]
        stats.ensure_groups(grouper.n_groups)
        slots = len(set(b.keys) | set(stats.keys))
        if self.max_slots is not None and slots > self.max_slots:
            raise TooWide
        check_budget(grouper, slots, params)
        stats.add(b.keys, b.U, groups, b.init, b.shift, w)
        if len(layers) > 1:
            # The other repeats' cells, training rows only (the test split is cell 0 once).
            train = groups != 0
            for cells in layers[1:]:
                stats.add(b.keys, b.U[train], cells[train],
                          w=None if w is None else w[train])
        if len(self.y_values) < 3 and b.U.shape[0]:
            self.y_values.update(np.unique(b.U[:, b.keys.index(Y_SLOT)])[:3].tolist())
        if params.stability and not grouper.needs_labels:
            # The half-samples' statistics, in the same pass: by micro-group, test
            # rows left out (with labels, the half-samples are unions of the label cells).
            if self.micro is None:
                self.micro = Moments(n_groups=micro_count(prof.first_width or len(b.keys)))
            train = groups != 0
            self.micro.add(b.keys, b.U[train],
                           micro_ids(b.rows[train], self.micro.n_groups, params.seed), b.init,
                           b.shift, None if w is None else w[train])
        dead = prof.dead_slots()
        if dead:
            stats.drop(dead)
            if self.micro is not None:
                self.micro.drop(dead)


def check_budget(grouper: Grouper, slots: int, params: FitParams) -> None:
    """Refuse statistics of more cells than :data:`STATS_BYTES` holds."""
    need = (grouper.n_groups + 1) * slots * slots * 8
    if need > STATS_BYTES:
        cells = (f"{grouper.repeats} repeats × {grouper.n_folds} folds"
                 if grouper.n_layers > 1 else f"{grouper.n_cells} cells")
        raise ConfigError(f"The CV statistics of {cells} with {slots} slots need "
                          f"{need / 2**30:.1f} GiB, more than the {STATS_BYTES >> 30} GiB "
                          "budget; use fewer --repeats or --cv, fewer columns, or --engine "
                          "data")


def count_rows(source, header, data, params: FitParams) -> int:
    """The data rows (a first pass reading the target column only): forward folds are cut by
    row count before the statistics pass."""
    def one_pass(overrides):
        scan = l1io.Scan()
        for _ in l1io.batches(source, header, [params.target], data, scan, overrides):
            pass
        return scan.n_rows

    return l1io.with_retypes(one_pass)


def accumulate(source, header, data, columns, params: FitParams, progress=None,
               max_slots: int | None = None):
    """The streaming pass: profile every batch and merge its per-group statistics.

    Returns the profiler, the statistics, the grouper, the scan record, the micro-group
    statistics (None without ``--stability``) and the number of distinct target values seen
    (counted up to 3). A CSV column whose type changes after its first block is read again as
    text (a fresh pass). Past ``max_slots`` slots it raises :class:`TooWide`.
    """
    offset, label = (2, "line") if source.format == "csv" else (1, "row")
    n_rows = None
    if scheme_of(params) == "forward":
        n_rows = count_rows(source, header, data, params)

    def one_pass(overrides):
        scan = l1io.Scan()
        red: Reduction | None = None
        grouper = make_grouper(params, n_rows)
        for batch, start in l1io.batches(source, header, columns, data, scan, overrides):
            if red is None:
                schema = split_weights(batch, params)[0].schema
                red = Reduction(Profiler(schema, params.target, params.fold_column,
                                         params.max_levels, params.missing, source.display,
                                         offset, label, source.decimal_comma,
                                         explicit=params.features,
                                         group_column=params.group_column),
                                grouper, params, max_slots)
            red.add(batch, start)
            if progress is not None:
                progress.read(batch.num_rows)
        if red is None or scan.n_rows == 0:
            raise DataError(f"{source.display} has no data rows; give a file with data")
        return (red.prof, red.stats, grouper, scan, red.micro,
                min(len(red.y_values), 3))

    return l1io.with_retypes(one_pass)


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


def _pool_plan(stats: Moments, recipe, slots: dict, train_mask: np.ndarray, min_count: int):
    """:func:`~l1select.prepare.pool_rare_levels` with the levels counted on all training
    rows (the groups in ``train_mask``) from the statistics."""
    levels = [j for j, f in enumerate(recipe.features) if f.kind == "onehot"]
    counts = np.zeros(len(recipe.features))
    if levels:
        idx = [stats.index(slots[recipe.features[j].name]) for j in levels]
        # n_g times the mean of an indicator is its count in group g: integral up to rounding.
        counts[levels] = np.rint(stats.n[train_mask] @ stats.mean[train_mask][:, idx])
    return pool_rare_levels(recipe, counts, min_count)


def _train_mask(stats: Moments, grouper: Grouper) -> np.ndarray:
    """The cells of all training rows (the first repeat's)."""
    return grouper.plan(stats.n).full


def _pool(stats: Moments, micro: Moments | None, recipe, slots: dict, train_mask: np.ndarray,
          min_count: int):
    """Pool the rare levels (counted on all training rows) into ``column=(other)``: the sum of
    their indicator slots, in ``stats`` and ``micro`` alike (both mutated)."""
    pooled, sources, warnings = _pool_plan(stats, recipe, slots, train_mask, min_count)
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


def run(source, header, data, columns, params: FitParams, progress=None) -> EngineOutput:
    # With --engine auto, the width counts the one-hot levels, which only the pass can see:
    # slots (features, missing indicators, levels of text not yet ruled out) past the limit
    # stop it early, and a design found wide after it goes to the data engine too.
    # The group lasso runs on the Gram only: it stays here, unless far too wide for it.
    auto = params.engine == "auto" and not params.group_categoricals
    prof, stats, grouper, scan, micro, n_y = accumulate(
        source, header, data, columns, params, progress,
        GRAM_MAX_FEATURES + 2 * len(columns) if auto else None)
    if auto or params.group_categoricals:
        recipe, _, slots = prof.recipe()
        p = len(_pool_plan(stats, recipe, slots, _train_mask(stats, grouper),
                           params.min_level_count)[0].features)
        if params.group_categoricals and p > GRAM_MAX_FEATURES:
            raise DataError(f"{source.display} has {p} features after one-hot encoding, more "
                            f"than the {GRAM_MAX_FEATURES} the Gram holds, which "
                            "--group-categoricals needs; exclude columns or raise "
                            "--min-level-count")
        # Weighted fits stay on the Gram (the data engine has no weights) unless too wide.
        few_rows = prof.n_rows - prof.n_missing_target < 2 * p and params.weights is None
        if auto and (p > GRAM_MAX_FEATURES or few_rows):
            raise TooWide
    return solve(source, params, prof, stats, grouper, scan, micro, n_y, progress)


def solve(source, params: FitParams, prof: Profiler, stats: Moments, grouper: Grouper,
          scan, micro: Moments | None, n_y: int, progress=None,
          engine: str = "gram") -> EngineOutput:
    """Everything after the pass: the recipe, the folds' problems, the paths, the test error,
    from the whole data's profile and per-group statistics (whichever engine made them)."""
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
        def test_error(coef: np.ndarray, intercept: float):
            sse = heldout_sse(stats.n[0], stats.mean[0], stats.com[0], layout.value,
                              layout.missing, layout.target, full.shift, (coef / unit)[:, None],
                              np.array([intercept]))[0]
            mse = float(sse / stats.n[0])
            var = float(stats.com[0][layout.target, layout.target] / stats.n[0])
            return n_test, mse, (1.0 - mse / var) if var > 0 else None

    halves = None
    if params.stability:
        halves = _halves(micro, stats, layout, recipe, params, penalty, unit, solver,
                         plan.micro is not None)

    return EngineOutput(
        engine=engine, recipe=recipe, warnings=tuple(warnings), fits=tuple(fits),
        scaling=scaling, alpha_max=tuple(a_max), n_rows=scan.n_rows, n_used=rows_train,
        n_test=n_test, n_dropped=prof.n_missing_target + prof.n_missing_dropped,
        sha256=scan.sha256, n_folds=n_folds, fold_labels=tuple(fold_labels),
        test_error=test_error, penalty=penalty, adaptive=adaptive,
        problem=AllRows(gram_cols=lambda idx: gram[:, idx], gram_diag=np.diag(gram).copy(),
                        xty=xty),
        halves=halves, n_target_values=n_y,
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

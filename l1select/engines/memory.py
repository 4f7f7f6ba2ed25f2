"""The memory engine: every needed column read into memory once and prepared as one batch
(the recipe, units, imputation left to the solvers: NaN where missing), its rows split into
the test split and the CV folds. For the solvers that need the design matrix itself: the data
matrix (wide data), the logistic family and the reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l1select import io as l1io
from l1select._gc import paused as gc_paused
from l1select.engines.base import InMemory, Job
from l1select.engines.checks import check_design, constant_features
from l1select.errors import DataError, quoted
from l1select.folds import make_grouper, row_labels
from l1select.prepare import Profiler, design_matrix, pool_columns, pool_rare_levels
from l1select.types import FitParams


class MemoryEngine:
    """Loads the job's rows into an :class:`InMemory` matrix (``--engine data``,
    ``reference``, and every binomial fit)."""

    name = "memory"

    def run(self, job: Job) -> InMemory:
        # The profile and the recipe of wide data are tens of thousands of small objects
        # each, none in a reference cycle: the cyclic collector would otherwise walk them,
        # and every other live object, several times over (0.2 s at 20,000 columns).
        with gc_paused():
            mem = load(job.source, job.header, job.data, job.columns, job.params, job.classes)
        # The table read is gone now, but Arrow's allocator keeps the pages it freed: handed
        # back, they are not held through the fits beside the matrix (a 4,000 x 10,000 fit
        # peaked at 1.22 GB with them, 0.88 GB without).
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
        return mem


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
    batch = prof.update(table, 0, design=True)
    recipe, warnings, _ = prof.recipe()
    units = prof.units()
    unit = _feature_units(recipe, units)
    # Held × unit, as the statistics engines hold them: squares of huge or tiny values stay
    # normal floats (exact: a power of two; 1 for most columns).
    # Column-major: the data-matrix kernel reads columns (no second copy to reorder it).
    # The number columns come as the profiler read them (not converted a second time).
    X_all = design_matrix(table, recipe, order="F", numbers=batch.numbers)
    y_all = batch.U[:, 0]
    batch = replace(batch, U=batch.U[:0], numbers=None)
    if batch.rows.size < X_all.shape[0]:  # rows were dropped (else: no copy of the matrix)
        X_all = X_all[batch.rows]
    if (unit != 1.0).any():
        X_all *= unit
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
    if levels.size:
        train = np.nan_to_num(X_all[~test][:, levels], nan=0.0)
        counts = np.zeros(len(recipe.features))
        # With weights a level's count is its total weight (rounded), as in the statistics
        # pass and as duplicated rows would count it.
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
    with np.errstate(all="ignore"):  # fmax/fmin skip NaN, and warn of no all-NaN column
        top, bottom = (np.fmax.reduce(X, axis=0), np.fmin.reduce(X, axis=0)) if X.size else \
            (np.zeros(X.shape[1]), np.zeros(X.shape[1]))
        # An infinite value is the column's largest or smallest (no pass of its own).
        infinite = np.isinf(top) | np.isinf(bottom)
        if infinite.any():
            j = int(np.flatnonzero(infinite)[0])
            raise DataError(f"Column {quoted(recipe.features[j].column)} in {source.display} "
                            "holds values too far apart in size to fit; rescale the column")
        spread = top - bottom
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



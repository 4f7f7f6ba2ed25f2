"""The streaming engine: one pass over the source that reduces every record batch to per-cell
sufficient statistics (the test split, the CV folds' cells, stability's micro-groups), merged
exactly. Memory is set by the number of features, not rows. ``solve/gram.py`` solves them."""

from __future__ import annotations

import numpy as np

from l1select import io as l1io
from l1select.engines.base import Job, Statistics, TooWide
from l1select.errors import ConfigError, DataError
from l1select.folds import (
    Grouper,
    distinct,
    make_grouper,
    micro_count,
    micro_ids,
    row_labels,
    scheme_of,
)
from l1select.moments import Moments
from l1select.prepare import Y_SLOT, Profiler, pool_rare_levels
from l1select.types import FitParams

# The statistics of the cells (the CV folds, R·K with --repeats, or the group buckets) must
# fit in this many bytes: (cells + 1) co-moment matrices of (slots)² float64.
STATS_BYTES = 4 << 30

# The Gram route keeps K+2 matrices of (p+1)² float64: past ~3,000 features they outgrow the
# memory budget, and below n ≈ 2p they cost more to build than the data matrix does to use.
GRAM_MAX_FEATURES = 3000


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
            self.y_values.update(distinct(b.U[:, b.keys.index(Y_SLOT)])[:3].tolist())
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


def pool_plan(stats: Moments, recipe, slots: dict, train: np.ndarray, min_count: int):
    """:func:`~l1select.prepare.pool_rare_levels` with the levels counted on all training
    rows (the cells in ``train``) from the statistics."""
    levels = [j for j, f in enumerate(recipe.features) if f.kind == "onehot"]
    counts = np.zeros(len(recipe.features))
    if levels:
        idx = [stats.index(slots[recipe.features[j].name]) for j in levels]
        # n_g times the mean of an indicator is its count in group g: integral up to rounding.
        counts[levels] = np.rint(stats.n[train] @ stats.mean[train][:, idx])
    return pool_rare_levels(recipe, counts, min_count)


def train_mask(stats: Moments, grouper: Grouper) -> np.ndarray:
    """The cells of all training rows (the first repeat's)."""
    return grouper.plan(stats.n).full



class StreamingEngine:
    """The local statistics engine (``--engine gram``, and ``auto`` on narrow data)."""

    name = "gram"

    def run(self, job: Job) -> Statistics:
        """One pass of ``job``'s source into per-cell statistics (see :func:`accumulate`).

        With ``--engine auto`` the width counts the one-hot levels, which only the pass can
        see: slots (features, missing indicators, levels of text not yet ruled out) past the
        limit stop it early, and a design found wide after it raises :class:`TooWide` too.
        The group lasso runs on the Gram only: it stays here, unless far too wide for it.
        """
        source, params = job.source, job.params
        auto = params.engine == "auto" and not params.group_categoricals
        prof, stats, grouper, scan, micro, n_y = accumulate(
            source, job.header, job.data, job.columns, params, job.progress,
            GRAM_MAX_FEATURES + 2 * len(job.columns) if auto else None)
        if auto or params.group_categoricals:
            recipe, _, slots = prof.recipe()
            p = len(pool_plan(stats, recipe, slots, train_mask(stats, grouper),
                              params.min_level_count)[0].features)
            if params.group_categoricals and p > GRAM_MAX_FEATURES:
                raise DataError(f"{source.display} has {p} features after one-hot encoding, "
                                f"more than the {GRAM_MAX_FEATURES} the Gram holds, which "
                                "--group-categoricals needs; exclude columns or raise "
                                "--min-level-count")
            # Weighted fits stay on the Gram (the data engine has no weights) unless too wide.
            few_rows = prof.n_rows - prof.n_missing_target < 2 * p and params.weights is None
            if auto and (p > GRAM_MAX_FEATURES or few_rows):
                raise TooWide
        return Statistics(engine=self.name, prof=prof, stats=stats, grouper=grouper,
                          scan=scan, micro=micro, n_target_values=n_y)

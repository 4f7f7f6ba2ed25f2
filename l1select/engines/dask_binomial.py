"""The binomial family on a Dask cluster, the engine's half: the partitions prepared and held
by the workers, delivered as an :class:`~l1select.engines.base.OnCluster` with the passes
that run tasks over them; the solving stage (:mod:`l1select.solve.cluster_binomial`) sends
the Newton passes through it.

Logistic loss has no finite sufficient statistics, so the rows stay on the cluster:

1. the target's classes (a pass over the target column) and the profile of the whole data
   (the gaussian Dask engine's first pass, on the 0/1 target);
2. each partition is prepared by a task, exactly as :func:`l1select.engines.memory.load`
   prepares the rows in memory (the same recipe, encodings, row indices, weights; stratified
   folds from the row's index within its class, which a partition learns from the class
   counts of the partitions before it; rare levels pooled on the training rows; constant
   features dropped), and the prepared partitions (:class:`Rows`) stay in worker memory as
   futures held by the client. Every one is built by tasks from the source, so the
   scheduler rebuilds a lost worker's partitions from there.

The delivery owns the cluster's client: it stays open while the solver runs, and the
pipeline closes it afterwards.

What needs the rows after the engine has returned, or a ranking of all of them, is a usage
error here (:func:`_refuse`): the test split, stability selection, the logistic refit, and
the AUC (as the measure; the ``auc`` of the CV summary and the ROC curve are left out).
"""

from __future__ import annotations

import copy
import pickle
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from l1select.engines.base import Job, OnCluster
from l1select.engines.checks import constant_features
from l1select.engines.dask import (
    RETRIES,
    Part,
    _batches,
    _import_distributed,
    _Job,
    _offsets,
    _tree,
    cluster_client,
    partitions,
    profile_pass,
)
from l1select.engines.memory import _feature_units
from l1select.engines.streaming import split_weights
from l1select.errors import ConfigError, DataError, quoted
from l1select.folds import make_grouper, row_labels
from l1select.prepare import design_matrix, pool_columns, pool_rare_levels
from l1select.types import FitParams


@dataclass
class Traffic:
    """What one run moved and how often it read the data (the benchmark reads
    :data:`LAST_RUN`): bytes sent to the cluster in task arguments, bytes received from it
    (pickled sizes), passes over the prepared partitions, and of those the Newton passes of
    the paths and the alphas they solved."""

    to_cluster: int = 0
    from_cluster: int = 0
    passes: int = 0
    path_passes: int = 0
    alphas: int = 0


# The traffic of the last run in this process (for benchmarks/dask_bench.py).
LAST_RUN = Traffic()


@dataclass
class Rows:
    """One prepared partition, held in worker memory: the kept rows' design ``X`` (n, p;
    NaN where missing; held × each column's unit), target ``y`` (0/1), weights ``w`` (None:
    all 1), global row indices, fold or group labels, and cells (``Grouper.groups``)."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    rows: np.ndarray
    labels: list | None = None
    layers: list | None = None
    fits: np.ndarray | None = None  # (n_fits, n) bool: the rows of each fit (0: all rows)
    tests: np.ndarray | None = None  # (n_folds, n) bool: each fold's held-out rows


# -- the refusals ---------------------------------------------------------------------------------

def _refuse(params: FitParams) -> None:
    """What the binomial Dask engine does not do: a usage error naming the way around."""
    asked = [(params.test_size is not None, "--test-size"),
             (params.stability is not None, "--stability"),
             (params.refit is not None, "--refit"),
             (params.measure == "auc", "--measure auc")]
    for given, name in asked:
        if given:
            raise ConfigError(f"{name} is not available with --engine dask for a binary target "
                              "(family binomial): it needs the rows after the fit, or all of "
                              "them ranked; use --engine auto (in memory), or leave it out")


# -- the tasks: preparing the partitions ----------------------------------------------------------

def _distinct(job: _Job, part: Part) -> tuple:
    """The target's type, its distinct values (sorted, the first 3) and their counts; or
    ("retype", type) when a CSV partition needs the column read as a wider type."""
    from l1select import io as l1io
    from l1select.family import _kind, distinct

    try:
        cols = [b.column(job.params.target) for b in _batches(job, part)]
    except l1io.Retype as exc:
        return "retype", exc.type, None
    if not cols:
        return None, [], []
    arr = pa.chunked_array(cols)
    kind = _kind(arr.type)
    if kind == "null":
        return arr.type, [], []
    vals, counts = distinct(arr, kind)
    return arr.type, vals[:3], counts[:3]


def _load(job: _Job, part: Part, start: int, seed, recipe, unit, labels: list) -> Rows:
    """Read and prepare one partition (rows from global index ``start``) with the whole
    data's profile ``seed``: as :func:`l1select.engines.memory.load` prepares the rows."""
    from threadpoolctl import threadpool_limits

    from l1select.family import observation_weights

    params = job.params
    prof = copy.deepcopy(seed)
    grouper = make_grouper(params, 1)
    Xs, ys, ws, rows, labs = [], [], [], [], []
    n = 0
    with threadpool_limits(limits=1):
        for batch in _batches(job, part):
            batch, weights = split_weights(batch, params)
            b = prof.update(batch, start + n)
            pos = b.rows - start - n
            Xs.append(design_matrix(pa.Table.from_batches([batch]), recipe)[pos] * unit)
            ys.append(b.U[:, 0])
            rows.append(b.rows)
            if weights is not None:
                ws.append(observation_weights(weights, pos, params.weights, prof.source,
                                              prof.line_offset + start + n, prof.row_label,
                                              require_positive=False))
            if grouper.needs_labels:
                labs.extend(row_labels(batch, pos, params, prof.source))
            n += batch.num_rows
    p = len(recipe.features)
    return Rows(X=np.concatenate(Xs) if Xs else np.empty((0, p)),
                 y=np.concatenate(ys) if ys else np.empty(0),
                 w=(np.concatenate(ws) if ws else np.empty(0)) if params.weights else None,
                 rows=np.concatenate(rows) if rows else np.empty(0, dtype=np.int64),
                 labels=labs if grouper.needs_labels else None)


def _class_counts(part: Rows) -> np.ndarray:
    return np.bincount(part.y.astype(np.int64), minlength=2)


def _cells(part: Rows, params: FitParams, n_rows: int, labels: list, offsets) -> Rows:
    """The partition with its cells (test split, folds), stratified by class as the local
    engine stratifies all rows at once (``offsets``: each class's rows before it)."""
    grouper = make_grouper(params, n_rows)
    grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
    layers = grouper.groups(part.rows, part.labels, part.y.astype(np.int64), offsets)
    return replace(part, layers=layers)


def _summary(part: Rows, n_groups: int) -> dict:
    """What the client needs to pool rare levels and plan the folds: the training rows'
    (weighted) column sums and the row count of every cell."""
    test = part.layers[0] == 0
    train = np.where(np.isnan(part.X[~test]), 0.0, part.X[~test])
    sums = train.sum(axis=0) if part.w is None else part.w[~test] @ train
    cells = np.bincount(np.concatenate([part.layers[0]] + [c[~test] for c in part.layers[1:]]),
                        minlength=n_groups)
    return {"sums": sums, "cells": cells, "n_test": int(test.sum()),
            "y": part.y[~test][:1], "y_min": part.y[~test].min(initial=np.inf),
            "y_max": part.y[~test].max(initial=-np.inf),
            "w_pos": bool(part.w is None or (part.w > 0).any())}


def _pool(part: Rows, sources: list) -> Rows:
    return replace(part, X=pool_columns(part.X, sources))


def _spread(part: Rows) -> dict:
    """The training rows' column maxima and minima (NaN skipped) and whether each column
    holds only finite values or NaN."""
    test = part.layers[0] == 0
    X = part.X[~test]
    with np.errstate(all="ignore"):
        return {"max": np.fmax.reduce(X, axis=0) if X.size else np.full(X.shape[1], np.nan),
                "min": np.fmin.reduce(X, axis=0) if X.size else np.full(X.shape[1], np.nan),
                "finite": np.all(np.isfinite(X) | np.isnan(X), axis=0)}


def _final(part: Rows, kept: np.ndarray, folds: list) -> Rows:
    """The fitting rows (the test split is refused) of the kept features, with the rows of
    every fit (all rows, then each fold's training rows) and each fold's held-out rows."""
    n = part.y.size
    fits = np.ones((1 + len(folds), n), dtype=bool)
    tests = np.zeros((len(folds), n), dtype=bool)
    for k, (layer, train, held) in enumerate(folds):
        cells = part.layers[layer]
        fits[k + 1] = train[cells]
        tests[k] = held[cells]
    return Rows(X=np.ascontiguousarray(part.X[:, kept]), y=part.y, w=part.w, rows=part.rows,
                 fits=fits, tests=tests)


# -- the engine -----------------------------------------------------------------------------------

class BinomialDaskEngine:
    """A binary target on a Dask cluster (``--engine dask``, family binomial): the rows are
    prepared where they are read and stay there, as an :class:`OnCluster` delivery."""

    name = "dask"

    def run(self, job: Job) -> OnCluster:
        """``job.classes(target_column)`` gives the two classes of a target column (see
        :func:`l1select.family.binary_classes`); here it is given the target's distinct values
        from every partition, and the counts come from the partitions. The delivery holds
        the cluster's client open: close it once solved."""
        _import_distributed()
        if job.source.is_stdin:
            raise ConfigError("--engine dask reads files, folders, globs or URLs, not stdin; "
                              "save the data to a file or use --engine auto")
        _refuse(job.params)
        # The delivery owns the client from here; on an error it is closed at once.
        stack = ExitStack()
        try:
            client = stack.enter_context(cluster_client(job.params.scheduler))
            return _Run(client, job.params).run(job.source, job.header, job.columns,
                                                job.classes, job.progress, stack)
        except BaseException:
            stack.close()
            raise


@dataclass
class _Run:
    """The preparation's passes, and then the delivery's :class:`~l1select.engines.base.Passes`
    over the prepared partitions ``parts`` (every pass counted in ``traffic``)."""

    client: object
    params: FitParams
    traffic: Traffic = field(default_factory=Traffic)
    parts: list = field(default_factory=list)

    # Every pass goes through these two, which count the bytes each way.
    def map(self, fn, futures: list, *args) -> list:
        self.traffic.to_cluster += len(futures) * len(pickle.dumps(args))
        return [self.client.submit(fn, f, *args, retries=RETRIES, pure=False) for f in futures]

    def gather(self, futures):
        out = self.client.gather(futures)
        self.traffic.from_cluster += len(pickle.dumps(out))
        return out

    def reduce(self, futures: list, merge):
        self.traffic.passes += 1
        return self.gather(_tree(self.client, futures, merge))

    def over_parts(self, task, merge, *args):
        return self.reduce(self.map(task, self.parts, *args), merge)

    def count(self, path_passes: int = 0, alphas: int = 0) -> None:
        self.traffic.path_passes += path_passes
        self.traffic.alphas += alphas

    def run(self, source, header, columns, classes_of, progress, closer: ExitStack
            ) -> OnCluster:
        global LAST_RUN
        params, client = self.params, self.client
        parts, known = partitions(source)
        classes = self._classes(source, header, columns, parts, classes_of)
        job, first = profile_pass(client, source, header, columns, params, parts, known,
                                  classes)
        prof = first.prof
        counts = [int(c) for c in first.counts]
        n_rows = sum(counts)
        if prof is None or n_rows == 0:
            raise DataError(f"{source.display} has no data rows; give a file with data")
        recipe, warnings, _ = prof.recipe()
        units = prof.units()
        unit = _feature_units(recipe, units)
        labels = list(first.labels)
        seed = prof.seeded()
        starts = _offsets(counts)
        loaded = [client.submit(_load, job, part, start, seed, recipe, unit, labels,
                                retries=RETRIES, pure=False)
                  for part, start in zip(parts, starts, strict=True)]
        self.traffic.to_cluster += len(parts) * len(pickle.dumps((job, seed, recipe, unit)))
        by_class = np.array(self.gather([client.submit(_class_counts, f, retries=RETRIES,
                                                       pure=False) for f in loaded]))
        if progress is not None:
            progress.read(n_rows)
        offsets = np.vstack([np.zeros((1, 2), dtype=np.int64),
                             np.cumsum(by_class, axis=0)[:-1]])
        cells = [client.submit(_cells, f, params, n_rows, labels, off, retries=RETRIES,
                               pure=False) for f, off in zip(loaded, offsets, strict=True)]
        grouper = make_grouper(params, n_rows)
        grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
        summ = self.gather([client.submit(_summary, f, grouper.n_groups, retries=RETRIES,
                                          pure=False) for f in cells])
        self.traffic.passes += 1
        if params.weights is not None and not any(s["w_pos"] for s in summ):
            raise DataError(f"Weights column {quoted(params.weights)} in {source.display} is "
                            "zero on every row used; give some rows a positive weight")
        sums = np.sum([s["sums"] for s in summ], axis=0)
        sums = sums if params.weights is None else np.rint(sums)
        plan = grouper.plan(np.sum([s["cells"] for s in summ], axis=0))
        recipe, sources, pooled = pool_rare_levels(recipe, sums, params.min_level_count)
        unit = _feature_units(recipe, units)
        warnings += pooled
        pooled_parts = self.map(_pool, cells, sources)
        n_test = sum(s["n_test"] for s in summ)
        cell_counts = np.sum([s["cells"] for s in summ], axis=0)
        self._check_design(source, plan, cell_counts, n_test, summ, grouper)
        spread = self.gather([client.submit(_spread, f, retries=RETRIES, pure=False)
                              for f in pooled_parts])
        self.traffic.passes += 1
        finite = np.all([s["finite"] for s in spread], axis=0)
        if not finite.all():
            j = int(np.flatnonzero(~finite)[0])
            raise DataError(f"Column {quoted(recipe.features[j].column)} in {source.display} "
                            "holds values too far apart in size to fit; rescale the column")
        with np.errstate(all="ignore"):
            spread = np.fmax.reduce([s["max"] for s in spread], axis=0) - \
                np.fmin.reduce([s["min"] for s in spread], axis=0)
        recipe, kept, more = constant_features(np.nan_to_num(spread, nan=0.0), recipe,
                                               source.display)
        warnings += more
        unit = unit[kept]
        folds = [(f.layer, f.train, f.test) for f in plan.folds]
        self.parts = self.map(_final, pooled_parts, kept, folds)
        # Only the final partitions stay in worker memory: once they exist, the earlier
        # stages are released (the scheduler keeps their recipe, to rebuild a lost one).
        _import_distributed().wait(self.parts)
        del loaded, cells, pooled_parts
        LAST_RUN = self.traffic  # the solver's passes are counted there too
        return OnCluster(engine="dask", passes=self, recipe=recipe, unit=unit, plan=plan,
                         test_sizes=self.test_sizes, classes=classes,
                         warnings=tuple(warnings), n_rows=n_rows,
                         n_dropped=prof.n_missing_target + prof.n_missing_dropped,
                         closer=closer)

    def _classes(self, source, header, columns, parts, classes_of):
        """The target's two classes from each partition's distinct values, with the whole
        column's counts (as :func:`l1select.family.binary_classes` makes them)."""
        from l1select.family import _key, _kind

        # The target column alone: CSV types as the profile pass reads them.
        target = [self.params.target]
        overrides: dict = {}
        while True:
            types = {}
            if source.format == "csv":
                from l1select.io import csv as csv_io

                types = {**csv_io.first_types(source, header, target, None), **overrides}
            job = _Job(source, header, target, self.params, types)
            got = self.gather(self.client.map(_distinct, [job] * len(parts), parts,
                                              retries=RETRIES, pure=False))
            wider = [t for kind, t, _ in got if isinstance(kind, str) and kind == "retype"]
            if not wider:
                break
            overrides[self.params.target] = wider[0]
        self.traffic.passes += 1
        types = [t for t, _, _ in got if t is not None]
        merged: dict = {}
        for _, vals, ns in got:
            for v, c in zip(vals, ns, strict=True):
                merged[v] = merged.get(v, 0) + c
        t = types[0] if types else pa.null()
        if pa.types.is_dictionary(t):
            t = t.value_type
        kind = _kind(t)
        values = sorted(merged)[:3]
        arr = pa.array(values, type=pa.float64() if kind == "numeric" else t)
        classes = classes_of(arr)
        return replace(classes, counts=tuple(int(merged[_key(v, kind)])
                                             for v in classes.values))

    def _check_design(self, source, plan, cells, n_test, summ, grouper) -> None:
        from l1select.engines.checks import check_design

        params = self.params
        n_train = float(cells[1:1 + grouper.n_cells].sum())
        ys = [s["y"] for s in summ if s["y"].size]
        lo = min(s["y_min"] for s in summ)
        hi = max(s["y_max"] for s in summ)
        sizes = np.array([cells[f.test].sum() for f in plan.folds])
        trains = np.array([cells[f.train].sum() for f in plan.folds])
        if plan.folds and params.group_column is not None:
            live = int((cells[:grouper.n_groups][plan.full] > 0).sum())
            if live < params.cv:
                raise DataError(f"Group column {quoted(params.group_column)} in "
                                f"{source.display} puts the rows in {live} bucket(s) of "
                                f"whole groups, fewer than the {params.cv} CV folds; use a "
                                "smaller --cv, or more groups")
        self.test_sizes = sizes
        check_design(params, source.display, n_train, n_test,
                     float(hi - lo) if ys else 0.0, float(ys[0][0]) if ys else 0.0,
                     len(plan.folds), grouper.scheme == "label", sizes, trains)

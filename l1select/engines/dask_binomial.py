"""The binomial family on a Dask cluster: prepared partitions held by the workers, the
proximal Newton steps solved on the client.

Logistic loss has no finite sufficient statistics, so the rows stay on the cluster and every
Newton step is a map-reduce over them (see :mod:`l1select.solve.newton`):

1. the target's classes (a pass over the target column) and the profile of the whole data
   (the gaussian Dask engine's first pass, on the 0/1 target);
2. each partition is prepared by a task, exactly as :func:`l1select.engines.memory.load`
   prepares the rows in memory (the same recipe, encodings, row indices, weights; stratified
   folds from the row's index within its class, which a partition learns from the class
   counts of the partitions before it; rare levels pooled on the training rows; constant
   features dropped), and the prepared partitions stay in worker memory as futures held by
   the client. Every one is built by tasks from the source, so the scheduler rebuilds a lost
   worker's partitions from there;
3. the weighted means and scales of every fit (all rows and each training fold), then the
   paths: all K+1 fits advance in lockstep, and one pass answers every fit's request (its
   loss, its gradient, and the IRLS Gram over its working set, summed per partition and
   merged pairwise on the workers). The client solves the inner problems by coordinate
   descent on those Grams;
4. a last pass scores each fold's held-out rows at every alpha (deviance, misclassification,
   MSE, MAE) and forms the all-rows Gram that the correlated-alternates report reads.

What needs the rows after the engine has returned, or a ranking of all of them, is a usage
error here (:data:`REFUSED`): the test split, stability selection, the logistic refit, and
the AUC (as the measure; the ``auc`` of the CV summary and the ROC curve are left out).
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

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
from l1select.path import grids_for, make_penalty
from l1select.prepare import design_matrix, pool_columns, pool_rare_levels
from l1select.solve.checks import SATURATED_PATH, binomial_measure
from l1select.solve.logistic import (
    MEASURES,
    deviance,
    probabilities,
    standardize_rows,
)
from l1select.solve.newton import PathState, lockstep, path_steps, step_sums
from l1select.types import AllRows, FitParams, PathFit, Scaling, Solved

# The adaptive lasso's initial ridge fit, as the local binomial engine makes it.
ADAPTIVE_RIDGE_ALPHA = 1e-2


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
class _Rows:
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


@dataclass(frozen=True)
class _Fit:
    """What a task needs of one fit: its rows' index in ``_Rows.fits``, its standardization
    and the factor that scales the raw weights of its rows to sum to their number."""

    index: int
    mean: np.ndarray
    scale: np.ndarray
    factor: float


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


def _load(job: _Job, part: Part, start: int, seed, recipe, unit, labels: list) -> _Rows:
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
    return _Rows(X=np.concatenate(Xs) if Xs else np.empty((0, p)),
                 y=np.concatenate(ys) if ys else np.empty(0),
                 w=(np.concatenate(ws) if ws else np.empty(0)) if params.weights else None,
                 rows=np.concatenate(rows) if rows else np.empty(0, dtype=np.int64),
                 labels=labs if grouper.needs_labels else None)


def _class_counts(part: _Rows) -> np.ndarray:
    return np.bincount(part.y.astype(np.int64), minlength=2)


def _cells(part: _Rows, params: FitParams, n_rows: int, labels: list, offsets) -> _Rows:
    """The partition with its cells (test split, folds), stratified by class as the local
    engine stratifies all rows at once (``offsets``: each class's rows before it)."""
    grouper = make_grouper(params, n_rows)
    grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
    layers = grouper.groups(part.rows, part.labels, part.y.astype(np.int64), offsets)
    return replace(part, layers=layers)


def _summary(part: _Rows, n_groups: int) -> dict:
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


def _pool(part: _Rows, sources: list) -> _Rows:
    return replace(part, X=pool_columns(part.X, sources))


def _spread(part: _Rows) -> dict:
    """The training rows' column maxima and minima (NaN skipped) and whether each column
    holds only finite values or NaN."""
    test = part.layers[0] == 0
    X = part.X[~test]
    with np.errstate(all="ignore"):
        return {"max": np.fmax.reduce(X, axis=0) if X.size else np.full(X.shape[1], np.nan),
                "min": np.fmin.reduce(X, axis=0) if X.size else np.full(X.shape[1], np.nan),
                "finite": np.all(np.isfinite(X) | np.isnan(X), axis=0)}


def _final(part: _Rows, kept: np.ndarray, folds: list) -> _Rows:
    """The fitting rows (the test split is refused) of the kept features, with the rows of
    every fit (all rows, then each fold's training rows) and each fold's held-out rows."""
    n = part.y.size
    fits = np.ones((1 + len(folds), n), dtype=bool)
    tests = np.zeros((len(folds), n), dtype=bool)
    for k, (layer, train, held) in enumerate(folds):
        cells = part.layers[layer]
        fits[k + 1] = train[cells]
        tests[k] = held[cells]
    return _Rows(X=np.ascontiguousarray(part.X[:, kept]), y=part.y, w=part.w, rows=part.rows,
                 fits=fits, tests=tests)


# -- the tasks: the passes over the prepared partitions -------------------------------------------

def _standardized(part: _Rows, mask: np.ndarray, fit: _Fit) -> np.ndarray:
    return standardize_rows(part.X[mask], None, fit.mean, fit.scale)


def _moments1(part: _Rows, n_fits: int) -> list:
    """Per fit: rows, Σw, Σwy, Σw x (observed), Σw over the observed cells, the observed
    minima and maxima (rows of positive weight), and the rows of each class."""
    out = []
    for f in range(n_fits):
        m = part.fits[f]
        X = part.X[m]
        w = np.ones(X.shape[0]) if part.w is None else part.w[m]
        obs = ~np.isnan(X)
        X0 = np.where(obs, X, 0.0)
        used = obs & (w > 0)[:, None]
        with np.errstate(all="ignore"):
            lo = np.where(used, X, np.inf).min(axis=0, initial=np.inf)
            hi = np.where(used, X, -np.inf).max(axis=0, initial=-np.inf)
        out.append({"n": float(m.sum()), "w": float(w.sum()), "wy": float(w @ part.y[m]),
                    "wx": w @ X0, "wobs": w @ obs, "lo": lo, "hi": hi,
                    "classes": np.bincount(part.y[m].astype(np.int64), minlength=2)})
    return out


def _merge_moments1(a: list, b: list) -> list:
    return [{"n": x["n"] + y["n"], "w": x["w"] + y["w"], "wy": x["wy"] + y["wy"],
             "wx": x["wx"] + y["wx"], "wobs": x["wobs"] + y["wobs"],
             "lo": np.minimum(x["lo"], y["lo"]), "hi": np.maximum(x["hi"], y["hi"]),
             "classes": x["classes"] + y["classes"]} for x, y in zip(a, b, strict=True)]


def _moments2(part: _Rows, fits: list) -> list:
    """Per fit: Σ w (x − mean)² over the observed cells (``fits``: (index, mean, factor))."""
    out = []
    for f, mean, factor in fits:
        m = part.fits[f]
        X = part.X[m]
        w = factor * (np.ones(X.shape[0]) if part.w is None else part.w[m])
        d = np.where(np.isnan(X), 0.0, X - mean)
        out.append(w @ (d * d))
    return out


def _add_lists(a: list, b: list) -> list:
    return [x + y for x, y in zip(a, b, strict=True)]


def _newton(part: _Rows, fits: dict, requests: dict) -> dict:
    """One Newton pass: the :class:`Step` of every pending request on this partition."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(limits=1):
        for key, req in requests.items():
            fit = fits[key]
            m = part.fits[fit.index]
            w = fit.factor * (np.ones(int(m.sum())) if part.w is None else part.w[m])
            out[key] = step_sums(_standardized(part, m, fit), part.y[m], w, req)
    return out


def _merge_steps(a: dict, b: dict) -> dict:
    return {k: a[k] + b[k] for k in a}


def _score(part: _Rows, folds: list, whole: _Fit, y_mean: float, threshold: float) -> dict:
    """Each fold's held-out rows at every alpha: Σw, and Σw times the deviance, the
    misclassification, the squared and the absolute error of the probability; and the
    all-rows standardized Gram ``Zᵀ Z`` with ``Zᵀ w (y − ȳ)``."""
    out = {"folds": []}
    for k, (fit, coefs, intercepts) in enumerate(folds):
        t = part.tests[k]
        y = part.y[t]
        wt = np.ones(y.size) if part.w is None else part.w[t]
        prob = probabilities(_standardized(part, t, fit), coefs, intercepts)
        out["folds"].append({
            "w": float(wt.sum()), "n": int(t.sum()),
            "deviance": wt @ deviance(y, prob),
            "class": wt @ ((prob > threshold) != (y[:, None] == 1)),
            "mse": wt @ (y[:, None] - prob) ** 2,
            "mae": wt @ np.abs(y[:, None] - prob)})
    m = part.fits[0]
    Z = _standardized(part, m, whole)
    wn = whole.factor * (np.ones(Z.shape[0]) if part.w is None else part.w[m])
    out["gram"] = Z.T @ Z
    out["xty"] = Z.T @ (wn * (part.y[m] - y_mean))
    return out


def _merge_score(a: dict, b: dict) -> dict:
    return {"folds": [{key: x[key] + y[key] for key in x}
                      for x, y in zip(a["folds"], b["folds"], strict=True)],
            "gram": a["gram"] + b["gram"], "xty": a["xty"] + b["xty"]}


# -- the engine -----------------------------------------------------------------------------------

def run(source, header, data, columns, params: FitParams, progress=None, classes=None
        ) -> Solved:
    """``classes(target_column)`` gives the two classes of a target column (see
    :func:`l1select.family.binary_classes`); here it is given the target's distinct values
    from every partition, and the counts come from the partitions."""
    _import_distributed()
    if source.is_stdin:
        raise ConfigError("--engine dask reads files, folders, globs or URLs, not stdin; "
                          "save the data to a file or use --engine auto")
    _refuse(params)
    with cluster_client(params.scheduler) as client:
        return _Run(client, params).run(source, header, columns, classes, progress)


@dataclass
class _Run:
    client: object
    params: FitParams
    traffic: Traffic = field(default_factory=Traffic)

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

    def run(self, source, header, columns, classes_of, progress) -> Solved:
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
        out = self._fit(source, recipe, unit, plan, n_rows, classes, warnings, progress)
        out = replace(out, n_dropped=prof.n_missing_target + prof.n_missing_dropped)
        LAST_RUN = self.traffic
        return out

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

    def _scalings(self, n_fits: int, unit: np.ndarray):
        """Every fit's weighted mean, scale and standard deviation (as
        :func:`l1select.solve.logistic.weighted_scaling`), row count, weight factor, mean
        target, and class counts."""
        m1 = self.reduce(self.map(_moments1, self.parts, n_fits), _merge_moments1)
        fits = []
        for f, s in enumerate(m1):
            factor = s["n"] / s["w"] if s["w"] > 0 else 0.0
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(s["wobs"] > 0, s["wx"] / np.where(s["wobs"] > 0, s["wobs"], 1.0),
                                0.0)
            fits.append((f, mean, factor))
        sq = self.reduce(self.map(_moments2, self.parts, fits), _add_lists)
        out = []
        for (f, mean, factor), s, q in zip(fits, m1, sq, strict=True):
            n_fit = s["n"]
            std = np.sqrt(np.maximum(q, 0.0) / n_fit) if n_fit > 0 else np.zeros_like(q)
            varies = s["hi"] > s["lo"]
            std = np.where(varies, std, 0.0)
            scale = np.where(varies, std if self.params.standardize else unit, 0.0)
            out.append({"fit": _Fit(f, mean, scale, factor), "std": std, "n": n_fit,
                        "ybar": factor * s["wy"] / n_fit if n_fit > 0 else 0.0,
                        "classes": s["classes"]})
        return out

    def _paths(self, fits: list, specs: dict, stop_early=None) -> dict:
        """Solve the paths ``specs`` (key → (fit index, alphas, l1_ratio, pf, dev_stop)) in
        lockstep; key → :class:`PathState`. ``stop_early(pending, states)``: the keys whose
        paths need no more alphas."""
        params = self.params
        states, gens, by_key = {}, {}, {}
        for key, (f, alphas, l1_ratio, pf, dev_stop) in specs.items():
            fit = fits[f]
            scale = fit["fit"].scale
            inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
            states[key] = PathState.empty(inv.size, alphas.size)
            gens[key] = path_steps(fit["n"], fit["ybar"], alphas, l1_ratio, pf, inv, params.tol,
                                   params.max_iter, dev_stop, states[key])
            by_key[key] = fit["fit"]

        def evaluate(requests: dict) -> dict:
            fits_now = {key: by_key[key] for key in requests}
            self.traffic.path_passes += 1
            return self.reduce(self.map(_newton, self.parts, fits_now, requests), _merge_steps)

        prune = None if stop_early is None else (lambda pending: stop_early(pending, states))
        lockstep(evaluate, gens, prune)
        return states

    def _alpha_max(self, fits: list, pf: np.ndarray) -> list[float]:
        """As :func:`l1select.solve.logistic.alpha_max`: the gradient at the fit of the
        intercept and the unpenalized features alone, for each l1_ratio."""
        pen = pf > 0
        if not pen.any():
            return [0.0 for _ in self.params.l1_ratios]
        saved = self.params
        self.params = replace(saved, tol=1e-14, max_iter=10_000)
        try:
            st = self._paths(fits, {"all": (0, np.array([1e300]), 1.0, pf, 0.0)})["all"]
        finally:
            self.params = saved
        top = float(np.max(np.abs(st.grad[pen]) / pf[pen]))
        return [top / r for r in self.params.l1_ratios]

    def _fit(self, source, recipe, unit, plan, n_rows, classes, warnings, progress
             ) -> Solved:
        from l1select.solve.logistic import SATURATION

        params = self.params
        n_folds = len(plan.folds)
        p = len(recipe.features)
        fits = self._scalings(1 + n_folds, unit)
        self._check_binomial(source, recipe, unit, plan, fits)
        whole = fits[0]
        n = int(round(whole["n"]))
        mean, scale, std = whole["fit"].mean, whole["fit"].scale, whole["std"]
        y_mean = whole["ybar"]
        scaling = Scaling(x_mean=mean / unit, x_scale=np.where(scale > 0, scale, unit) / unit,
                          x_std=std / unit, y_mean=y_mean, y_var=y_mean * (1.0 - y_mean),
                          n_samples=n)

        def initial():
            st = self._paths(fits, {"all": (0, np.array([ADAPTIVE_RIDGE_ALPHA]), 0.0,
                                            np.ones(p), 0.0)})["all"]
            return st.coefs[:, 0], "ridge_logistic", ADAPTIVE_RIDGE_ALPHA

        penalty, adaptive = make_penalty(recipe.features, params, initial)
        pf = np.ones(p) if penalty is None else np.ascontiguousarray(penalty, dtype=np.float64)
        a_max = self._alpha_max(fits, pf)
        # binomial_measure reads only the held-out row counts of the folds.
        held = [(None, np.broadcast_to(0.0, (int(s),))) for s in self.test_sizes]
        measure, more = binomial_measure(params, held)
        warnings = list(warnings) + more
        default_grid = params.alphas is None and params.alpha is None

        def stop_early(pending, states):
            # The folds need no alpha below the one the all-rows path saturated at.
            if "all" in pending:
                return []
            return [key for key in pending if states[key].k >= states["all"].n_solved]

        out_fits = []
        saturated = False
        for l1_ratio, alphas in grids_for(a_max, params, n, p):
            specs = {"all": (0, alphas, l1_ratio, pf, SATURATION if default_grid else 0.0)}
            for k in range(n_folds):
                specs[k] = (k + 1, alphas, l1_ratio, pf, 0.0)
            states = self._paths(fits, specs, stop_early)
            whole_st = states["all"]
            if whole_st.n_solved < alphas.size:
                saturated = True
                alphas = alphas[:whole_st.n_solved]
            self.traffic.alphas += alphas.size
            k_a = alphas.size
            converged = bool(np.all(whole_st.n_iter[:k_a] < params.max_iter))
            measures = fold_coefs = sizes = None
            if n_folds:
                fold_coefs = np.empty((n_folds, p, k_a))
                scored = []
                for k in range(n_folds):
                    st = states[k]
                    converged &= bool(np.all(st.n_iter[:k_a] < params.max_iter))
                    fold_coefs[k] = st.coefs[:, :k_a]
                    scored.append((fits[k + 1]["fit"], fold_coefs[k],
                                   st.intercepts[:k_a].copy()))
                got = self.reduce(self.map(_score, self.parts, scored, whole["fit"], y_mean,
                                           params.threshold), _merge_score)
                self.gram = got
                measures = {m: np.empty((k_a, n_folds)) for m in MEASURES}
                sizes = np.empty(n_folds)
                for k, sk in enumerate(got["folds"]):
                    for m in ("deviance", "class", "mse", "mae"):
                        measures[m][:, k] = sk[m] / sk["w"]
                    measures["auc"][:, k] = np.nan  # needs the held-out rows ranked
                    sizes[k] = sk["w"]
            out_fits.append(PathFit(
                l1_ratio=l1_ratio, alphas=alphas, coefs=whole_st.coefs[:, :k_a],
                mse_path=None if measures is None else measures[measure], fold_sizes=sizes,
                converged=converged, fold_coefs=fold_coefs,
                intercepts=whole_st.intercepts[:k_a], measures=measures,
                dev_ratio=whole_st.dev_ratio[:k_a], roc=None))
        if saturated:
            warnings.append(SATURATED_PATH)
        if not n_folds:
            self.gram = self.reduce(self.map(_score, self.parts, [], whole["fit"], y_mean,
                                             params.threshold), _merge_score)
        G = self.gram["gram"]
        problem = AllRows(gram_cols=lambda idx: G[:, np.asarray(idx, dtype=np.int64)] / n,
                          gram_diag=np.diag(G) / n, xty=self.gram["xty"] / n)
        return Solved(
            engine="dask", recipe=recipe, warnings=tuple(warnings), fits=tuple(out_fits),
            scaling=scaling, alpha_max=tuple(a_max), n_rows=n_rows, n_used=n, n_test=0,
            n_dropped=0, sha256=None, n_folds=n_folds, fold_labels=plan.labels,
            test_error=None, penalty=penalty, adaptive=adaptive, problem=problem,
            halves=None, family="binomial", measure=measure, refit=None, classes=classes)

    def _check_binomial(self, source, recipe, unit, plan, fits) -> None:
        """As :func:`l1select.engines.checks.check_binomial`, from the fits' class counts."""
        from l1select.errors import list_names

        params = self.params
        if not params.standardize and np.any(unit != 1.0):
            huge = [f.column for f, u in zip(recipe.features, unit, strict=True) if u != 1.0]
            raise DataError(
                f"{list_names(huge)} in {source.display} hold values of extreme magnitude; a "
                "logistic model without standardization cannot fit them in their own units "
                "(its curvature overflows): drop --no-standardize, or rescale those columns")
        for k in range(len(plan.folds)):
            if (fits[k + 1]["classes"] > 0).sum() < 2:
                name = quoted(plan.labels[k]) if plan.labels else f"{k + 1} of {len(plan.folds)}"
                raise DataError(
                    f"The training rows of CV fold {name} in {source.display} hold only one "
                    f"class of target {quoted(params.target)}: a logistic model cannot be "
                    "fitted there; use fewer folds (--cv) or, with --fold-column or "
                    "--group-column, folds that mix both classes")

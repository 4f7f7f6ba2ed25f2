"""The Dask engine: the statistics pass on a Dask cluster, the solve on the client.

The source is cut into partitions (a Parquet file's row groups; a CSV file's byte range, cut
at line ends), and every partition is read by the partition readers the local engines read
through (:func:`l1select.io.parquet.read_row_groups`, :func:`l1select.io.csv.read_range`, with
the CSV column types of the first block computed once on the client), so types and missing
values come out exactly as in the local engine. Two passes of Dask tasks
(futures, submitted with retries, so a lost worker's tasks are simply run again):

1. each partition is profiled (a :class:`~l1select.prepare.Profiler` per partition) and the
   profiles are merged in partition order, on the workers, into the state one pass over the
   whole data would have ended with; the client gets that one profile and the row count of
   every partition (hence each partition's first global row index, which the folds need);
2. each partition, with a profiler seeded by that state (every level, every missing
   indicator, the global fills), reduces its rows to per-group statistics with the very code
   of the streaming engine (:class:`~l1select.engines.streaming.Reduction`); the statistics
   are merged pairwise on the workers and the client gets one set: (groups × slots²) floats.

The client gets the same :class:`~l1select.engines.base.Statistics` the streaming engine
delivers, and the Gram solver (``solve/gram.py``) solves them. Only profiles and statistics
travel, never rows.
"""

from __future__ import annotations

import copy
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from l1select import io as l1io
from l1select.engines.base import Job, Statistics
from l1select.engines.streaming import Reduction, make_grouper, split_weights
from l1select.errors import ConfigError, DataError, L1SelectError, quoted
from l1select.io import csv as csv_io
from l1select.io import parquet as parquet_io
from l1select.io import sources
from l1select.moments import Moments
from l1select.prepare import Profiler
from l1select.types import FitParams

# A CSV partition is about this many bytes of one file (compressed CSV: the whole file).
CSV_PARTITION_BYTES = 64 << 20
# A Parquet partition is this many consecutive row groups of one file.
PARQUET_GROUPS_PER_PARTITION = 1
# Workers of the local cluster started without an address (None: one per core, 2 to 8).
LOCAL_WORKERS: int | None = None
# Retries of a failed task (a worker lost mid-task is rescheduled by the scheduler anyway).
RETRIES = 2


@dataclass(frozen=True)
class _Job:
    """What every task needs to read its partition (small; travels inside the task)."""

    source: l1io.Source
    header: l1io.Header
    columns: list[str]
    params: FitParams
    types: dict = field(default_factory=dict)  # CSV column types (first block, widened)
    classes: object = None  # a binary target's family.Classes: the target is read as 0/1


@dataclass(frozen=True)
class Part:
    """One partition: consecutive row groups of a Parquet file, or the lines of a CSV file
    that start in a byte range (the whole file where it cannot be cut)."""

    path: str
    kind: str  # "parquet" | "csv"
    groups: tuple[int, ...] = ()  # Parquet row groups
    begin: int = 0  # CSV byte range [begin, end); end None: the whole file
    end: int | None = None


@dataclass
class _Profile:
    """Pass 1 of consecutive partitions: their row counts, their merged profile, the fold
    labels in order of first appearance, and the first error met (partition index, what)."""

    counts: list
    prof: Profiler | None = None
    labels: dict = field(default_factory=dict)
    error: tuple | None = None


@dataclass
class _Stats:
    stats: Moments | None
    micro: Moments | None
    y_values: set


# -- partitions ---------------------------------------------------------------------------------

def partitions(source: l1io.Source) -> tuple[list[Part], list[int] | None]:
    """The partitions in reading order, and their row counts where known without reading
    (Parquet metadata)."""
    parts: list[Part] = []
    counts: list[int] = []
    for path in source.files:
        if source.format == "parquet":
            meta = parquet_io.open_file(path).metadata
            step = max(PARQUET_GROUPS_PER_PARTITION, 1)
            groups = list(range(meta.num_row_groups)) or [-1]
            for i in range(0, len(groups), step):
                chunk = tuple(g for g in groups[i:i + step] if g >= 0)
                parts.append(Part(path, "parquet", groups=chunk))
                counts.append(sum(meta.row_group(g).num_rows for g in chunk))
            continue
        size = None
        if source.compression is None and l1io.lf_splittable(path):
            size = sources.size_of(path)
        if size is None:
            parts.append(Part(path, "csv"))
            continue
        step = max(CSV_PARTITION_BYTES, 1)
        for begin in range(0, max(size, 1), step):
            parts.append(Part(path, "csv", begin=begin, end=min(begin + step, size)))
    return parts, (counts if source.format == "parquet" else None)


def _batches(job: _Job, part: Part):
    """The record batches of one partition, read by the local engines' own readers (with
    ``job.classes``, the target encoded 0/1 as the local binomial engine encodes it)."""
    if part.kind == "parquet":
        batches = parquet_io.read_row_groups(job.source, job.header, job.columns, part.path,
                                             part.groups, use_threads=False)
    else:
        batches = csv_io.read_range(job.source, job.header, job.columns, job.types, part.path,
                                    part.begin, part.end)
    if job.classes is None:
        return batches
    return (_encoded(b, job.params.target, job.classes) for b in batches)


def _encoded(batch, target: str, classes):
    i = batch.schema.get_field_index(target)
    return batch.set_column(i, target, pa.array(classes.encode(batch.column(i)),
                                                type=pa.float64()))


def _profiler(job: _Job, schema: pa.Schema) -> Profiler:
    offset, label = (2, "line") if job.source.format == "csv" else (1, "row")
    p = job.params
    return Profiler(schema, p.target, p.fold_column, p.max_levels, p.missing,
                    job.source.display, offset, label, job.source.decimal_comma,
                    explicit=p.features, group_column=p.group_column)


def _by_label(params: FitParams) -> bool:
    return params.fold_column is not None and params.alpha is None


# -- the tasks ----------------------------------------------------------------------------------

def _pass1(job: _Job, part: Part, index: int, start: int, strict: bool = False) -> _Profile:
    """Profile one partition (rows from global index ``start``; 0 where not yet known, which
    only changes the line numbers of errors: those are raised again with the right start)."""
    from threadpoolctl import threadpool_limits

    prof = None
    n = 0
    labels: dict = {}
    try:
        with threadpool_limits(limits=1):
            for batch in _batches(job, part):
                batch = split_weights(batch, job.params)[0]  # checked in the second pass
                if prof is None:
                    prof = _profiler(job, batch.schema)
                b = prof.update(batch, start + n)
                if _by_label(job.params):
                    col = batch.column(job.params.fold_column).take(b.rows - start - n)
                    if col.null_count:
                        raise DataError(f"Fold column {quoted(job.params.fold_column)} in "
                                        f"{job.source.display} has missing labels; give "
                                        "every row a fold")
                    for v in col.to_pylist():
                        labels.setdefault(str(v), None)
                n += batch.num_rows
    except l1io.Retype as exc:
        if strict:
            raise
        return _Profile(counts=[None], error=(index, "retype", exc.column, exc.type))
    except L1SelectError as exc:
        if strict:
            raise
        return _Profile(counts=[None], error=(index, "error", exc))
    return _Profile(counts=[n], prof=prof, labels=labels)


def _merge1(a: _Profile, b: _Profile) -> _Profile:
    """Merge the profiles of consecutive partitions (``a`` first). Inputs are not changed."""
    out = _Profile(counts=a.counts + b.counts, error=a.error or b.error,
                   labels=dict(a.labels))
    for k in b.labels:
        out.labels.setdefault(k, None)
    if out.error is not None:
        return out
    out.prof = copy.deepcopy(a.prof) if a.prof is not None else None
    if out.prof is None:
        out.prof = copy.deepcopy(b.prof)
    elif b.prof is not None:
        try:
            out.prof.merge(b.prof)
        except L1SelectError as exc:
            out.error = (-1, "error", exc)
    return out


def _pass2(job: _Job, part: Part, start: int, shared: tuple[Profiler, list, int]) -> _Stats:
    """Reduce one partition to per-group statistics, with the whole data's profile (and the
    fold labels in order of first appearance, and the data's row count for forward folds)."""
    seed, labels, n_rows = shared
    from threadpoolctl import threadpool_limits

    grouper = make_grouper(job.params, n_rows)
    grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
    red = Reduction(copy.deepcopy(seed), grouper, job.params)
    n = 0
    with threadpool_limits(limits=1):
        for batch in _batches(job, part):
            red.add(batch, start + n)
            n += batch.num_rows
    return _Stats(red.stats if n else None, red.micro, set(red.y_values))


def _merge_moments(a: Moments | None, b: Moments | None) -> Moments | None:
    if a is None or b is None:
        return copy.deepcopy(a if b is None else b)
    out = copy.deepcopy(a)
    out.merge(b)
    return out


def _merge2(a: _Stats, b: _Stats) -> _Stats:
    return _Stats(_merge_moments(a.stats, b.stats), _merge_moments(a.micro, b.micro),
                  a.y_values | b.y_values)


def _tree(client, futures: list, merge):
    """Merge futures pairwise, in order, on the workers; the one future left."""
    while len(futures) > 1:
        nxt = [client.submit(merge, futures[i], futures[i + 1], retries=RETRIES, pure=False)
               for i in range(0, len(futures) - 1, 2)]
        if len(futures) % 2:
            nxt.append(futures[-1])
        futures = nxt
    return futures[0]


# -- the cluster --------------------------------------------------------------------------------

def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError("--engine dask needs Dask: pip install 'l1select[dask]'") from None
    return distributed


@contextmanager
def cluster_client(address: str | None):
    """A client of the cluster at ``address`` (or ``DASK_SCHEDULER_ADDRESS``); without one, a
    local cluster of worker processes, closed at the end."""
    distributed = _import_distributed()
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if address:
        try:
            client = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"Cannot reach the Dask scheduler at {address} "
                              f"({sources.short_error(exc)}); check --scheduler or "
                              "DASK_SCHEDULER_ADDRESS") from None
        with client:
            yield client
        return
    workers = LOCAL_WORKERS or max(2, min(os.cpu_count() or 2, 8))
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as client:
        yield client


# -- the engine -----------------------------------------------------------------------------------

class DaskEngine:
    """The statistics pass on a Dask cluster (``--engine dask``)."""

    name = "dask"

    def run(self, job: Job) -> Statistics:
        _import_distributed()
        if job.source.is_stdin:
            raise ConfigError("--engine dask reads files, folders, globs or URLs, not stdin; "
                              "save the data to a file or use --engine gram")
        with cluster_client(job.params.scheduler) as client:
            return _run(client, job.source, job.header, job.columns, job.params, job.progress)


def profile_pass(client, source, header, columns, params: FitParams, parts: list[Part],
                 known: list[int] | None, classes=None) -> tuple[_Job, _Profile]:
    """Pass 1 over ``parts`` (see the module docstring): the job every later task reads its
    partition with (CSV types widened where a partition needed it) and the merged profile."""
    overrides: dict = {}
    while True:
        types = {}
        if source.format == "csv":
            types = csv_io.first_types(source, header, columns, None)
            types.update(overrides)
        job = _Job(source, header, list(columns), params, types, classes)
        starts = _offsets(known) if known is not None else [0] * len(parts)
        # The job travels inside every task (a few KB): a task that depended on one shared
        # future would draw every task to the worker holding it, and scattered data could not
        # be recomputed if its worker were lost.
        futs = client.map(_pass1, [job] * len(parts), parts, range(len(parts)), starts,
                          retries=RETRIES, pure=False)
        first = _tree(client, futs, _merge1).result()
        if first.error is None:
            return job, first
        index, what, *rest = first.error
        if what == "retype":
            overrides[rest[0]] = rest[1]
            continue
        if index >= 0:  # raise it again where the partition's first row index is known
            start = sum(first.counts[:index])
            client.submit(_pass1, job, parts[index], index, start, True, pure=False).result()
        raise rest[0]


def _run(client, source, header, columns, params: FitParams, progress) -> Statistics:
    parts, known = partitions(source)
    job, first = profile_pass(client, source, header, columns, params, parts, known)
    prof = first.prof
    counts = [int(c) for c in first.counts]
    if prof is None or sum(counts) == 0:
        raise DataError(f"{source.display} has no data rows; give a file with data")
    starts = _offsets(counts)
    labels = list(first.labels)
    seed = prof.seeded()
    futs = client.map(_pass2, [job] * len(parts), parts, starts,
                      [(seed, labels, sum(counts))] * len(parts), retries=RETRIES, pure=False)
    stats2 = _tree(client, futs, _merge2).result()
    if progress is not None:
        progress.read(sum(counts))
    grouper = make_grouper(params, sum(counts))
    grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
    stats = stats2.stats if stats2.stats is not None else Moments(n_groups=grouper.n_groups)
    stats.ensure_groups(grouper.n_groups)
    dead = prof.dead_slots()
    if dead:
        stats.drop(dead)
        if stats2.micro is not None:
            stats2.micro.drop(dead)
    return Statistics(engine="dask", prof=prof, stats=stats, grouper=grouper,
                      scan=l1io.Scan(sha256=None, n_rows=sum(counts)), micro=stats2.micro,
                      n_target_values=min(len(stats2.y_values), 3))


def _offsets(counts: list[int]) -> list[int]:
    out, total = [], 0
    for c in counts:
        out.append(total)
        total += c
    return out

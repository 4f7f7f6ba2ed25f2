"""The Dask engine: the statistics pass on a Dask cluster, the solve on the client.

The source is cut into partitions (a Parquet file's row groups; a CSV file's byte range, cut
at line ends), and every partition is parsed by l1select's own Arrow readers (the code of
``io``, with the CSV column types of the first block computed once on the client), so types
and missing values come out exactly as in the local engine. Two passes of Dask tasks
(futures, submitted with retries, so a lost worker's tasks are simply run again):

1. each partition is profiled (a :class:`~l1select.prepare.Profiler` per partition) and the
   profiles are merged in partition order, on the workers, into the state one pass over the
   whole data would have ended with; the client gets that one profile and the row count of
   every partition (hence each partition's first global row index, which the folds need);
2. each partition, with a profiler seeded by that state (every level, every missing
   indicator, the global fills), reduces its rows to per-group statistics with the very code
   of the gram engine (:class:`~l1select.engines.gram.Reduction`); the statistics are merged
   pairwise on the workers and the client gets one set: (groups × slots²) floats.

The client then runs the gram engine's solve. Only profiles and statistics travel, never rows.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from l1select import io as l1io
from l1select.engines.gram import Reduction, make_grouper, solve, split_weights
from l1select.errors import ConfigError, DataError, InputError, L1SelectError, quoted
from l1select.moments import Moments
from l1select.prepare import Profiler
from l1select.types import EngineOutput, FitParams

# A CSV partition is about this many bytes of one file (compressed CSV: the whole file).
CSV_PARTITION_BYTES = 64 << 20
# A Parquet partition is this many consecutive row groups of one file.
PARQUET_GROUPS_PER_PARTITION = 1
# Workers of the local cluster started without an address (None: one per core, 2 to 8).
LOCAL_WORKERS: int | None = None
# Retries of a failed task (a worker lost mid-task is rescheduled by the scheduler anyway).
RETRIES = 2
# Test hook: a file path; the first attempt of the second partition's pass-2 task creates it
# and kills its own worker process, so the tests can check that a lost worker changes nothing.
_KILL_ONCE: str | None = None
# What the last run sent to and received from the cluster (pickled bytes), for benchmarks.
last_transfer: dict = {}


@dataclass(frozen=True)
class _Job:
    """What every task needs to read its partition (small; travels inside the task)."""

    source: l1io.Source
    header: l1io.Header
    columns: list[str]
    params: FitParams
    types: dict = field(default_factory=dict)  # CSV column types (first block, widened)


@dataclass(frozen=True)
class _Part:
    path: str
    kind: str  # "parquet" | "csv"
    groups: tuple[int, ...] = ()  # Parquet row groups
    begin: int = 0  # CSV byte range [begin, end); end None: the whole file
    end: int | None = None
    first_of_file: bool = True


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

def _parquet_file(path: str) -> pq.ParquetFile:
    if l1io.is_url(path):
        fs, root = l1io._fsspec(path)
        return pq.ParquetFile(fs.open(root, "rb"))
    return pq.ParquetFile(path)


def _partitions(source: l1io.Source) -> tuple[list[_Part], list[int] | None]:
    """The partitions in reading order, and their row counts where known without reading
    (Parquet metadata)."""
    parts: list[_Part] = []
    counts: list[int] = []
    for path in source.files:
        if source.format == "parquet":
            try:
                meta = _parquet_file(path).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"{path} is not a readable Parquet file ({l1io._short(exc)}); "
                                 "check that the file is complete") from None
            step = max(PARQUET_GROUPS_PER_PARTITION, 1)
            groups = list(range(meta.num_row_groups)) or [-1]
            for i in range(0, len(groups), step):
                chunk = tuple(g for g in groups[i:i + step] if g >= 0)
                parts.append(_Part(path, "parquet", groups=chunk, first_of_file=i == 0))
                counts.append(sum(meta.row_group(g).num_rows for g in chunk))
            continue
        size = None
        if source.compression is None and l1io.lf_splittable(path):
            try:
                if l1io.is_url(path):
                    fs, root = l1io._fsspec(path)
                    size = int(fs.size(root))
                else:
                    size = os.path.getsize(path)
            except (OSError, TypeError, ValueError):
                size = None
        if size is None:
            parts.append(_Part(path, "csv"))
            continue
        step = max(CSV_PARTITION_BYTES, 1)
        for begin in range(0, max(size, 1), step):
            parts.append(_Part(path, "csv", begin=begin, end=min(begin + step, size),
                               first_of_file=begin == 0))
    return parts, (counts if source.format == "parquet" else None)


def _parquet_batches(job: _Job, part: _Part):
    header, source = job.header, job.source
    raw_to_clean = {raw: clean for clean, raw in header.renamed.items()}
    raw_columns = [header.renamed.get(c, c) for c in job.columns]
    rows = max(1024, l1io.PARQUET_BATCH_VALUES // max(len(raw_columns), 1))
    try:
        pf = _parquet_file(part.path)
        if part.first_of_file and part.path != source.files[0]:
            names = [raw_to_clean.get(n, n) for n in pf.schema_arrow.names]
            l1io._check_same_header(part.path, l1io._clean_names(names, part.path).names,
                                    header, source)
        for i in part.groups:
            group = pf.read_row_group(i, columns=raw_columns, use_threads=False)
            for batch in group.to_batches(max_chunksize=rows):
                if raw_to_clean:
                    batch = batch.rename_columns([raw_to_clean.get(n, n)
                                                  for n in batch.schema.names])
                yield batch
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InputError(f"{part.path} is not a readable Parquet file ({l1io._short(exc)}); "
                         "check that the file is complete") from None


def _range_bytes(path: str, begin: int, end: int) -> bytes:
    """The lines of a file that start in the byte range [begin, end), whole."""
    with l1io._open(path) as fh:
        pos = 0
        if begin > 0:
            fh.seek(begin - 1)
            pos = begin - 1 + len(fh.readline())  # past the line running into the range
        if pos >= end:
            return b""
        fh.seek(pos)
        body = fh.read(end - pos)
        if body and not body.endswith(b"\n"):
            body += fh.readline()
        return body


def _split_lines(body: bytes, size: int):
    """``body`` in pieces of about ``size`` bytes, cut at line ends."""
    i = 0
    while i < len(body):
        j = body.rfind(b"\n", i, i + size)
        j = len(body) if i + size >= len(body) or j < 0 else j + 1
        yield body[i:j]
        i = j


def _csv_batches(job: _Job, part: _Part):
    source, header = job.source, job.header
    ro, po, co, bad = l1io._csv_options(source, header, job.columns, job.types)
    wanted = set(job.columns)
    ordered = [n for n in header.names if n in wanted]
    size = max(l1io.CSV_BLOCK, 256 * sum(len(n) + 1 for n in header.names))

    def check(line: bytes) -> None:
        if part.path == source.files[0]:
            return
        raw = l1io._header_names(line, source.delimiter)
        l1io._check_same_header(part.path, l1io._clean_names(raw, part.path).names, header,
                                source)

    def chunks():
        if part.end is None:  # the whole file (compressed: no seeking)
            yield from l1io._line_chunks(
                l1io._raw_blocks(part.path, source.compression, None, None, size), check)
            return
        # A range starts and ends at a line end, where no UTF-8 sequence is cut: decoded on
        # its own, it reads as in the whole file (l1io._Decoder).
        body = l1io.utf8_text(_range_bytes(part.path, part.begin, part.end))
        if part.begin == 0:
            body = body.removeprefix(b"\xef\xbb\xbf")
        if part.begin == 0 and body.strip():
            nl = l1io._header_end(body)
            check(body if nl < 0 else body[:nl + 1])
            body = b"" if nl < 0 else body[nl + 1:]
        for piece in _split_lines(body, size):
            if piece.strip():
                yield piece

    try:
        for chunk in chunks():
            table = pacsv.read_csv(pa.BufferReader(chunk), ro, po, co)
            if table.num_columns != len(ordered):
                table = table.select(ordered)
            yield from table.combine_chunks().to_batches(max_chunksize=table.num_rows or 1)
    except pa.ArrowInvalid as exc:
        retype = l1io._retype_from(str(exc), header.names, job.types)
        if retype is not None:
            raise retype from None
        raise l1io._csv_error(source, part.path, exc, bad) from None
    except (OSError, EOFError, l1io.zlib.error) as exc:
        raise InputError(f"{part.path}: cannot read the file ({l1io._short(exc)})") from None


def _batches(job: _Job, part: _Part):
    return _parquet_batches(job, part) if part.kind == "parquet" else _csv_batches(job, part)


def _profiler(job: _Job, schema: pa.Schema) -> Profiler:
    offset, label = (2, "line") if job.source.format == "csv" else (1, "row")
    p = job.params
    return Profiler(schema, p.target, p.fold_column, p.max_levels, p.missing,
                    job.source.display, offset, label, job.source.decimal_comma,
                    explicit=p.features)


def _by_label(params: FitParams) -> bool:
    return params.fold_column is not None and params.alpha is None


# -- the tasks ----------------------------------------------------------------------------------

def _pass1(job: _Job, part: _Part, index: int, start: int, strict: bool = False) -> _Profile:
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


def _pass2(job: _Job, part: _Part, start: int, shared: tuple[Profiler, list],
           kill: str | None = None) -> _Stats:
    """Reduce one partition to per-group statistics, with the whole data's profile (and the
    fold labels in order of first appearance)."""
    seed, labels = shared
    if kill is not None and not os.path.exists(kill):
        with open(kill, "w") as fh:
            fh.write("killed\n")
        os._exit(1)
    from threadpoolctl import threadpool_limits

    grouper = make_grouper(job.params)
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
                              f"({l1io._short(exc)}); check --scheduler or "
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

def run(source, header, data, columns, params: FitParams, progress=None) -> EngineOutput:
    _import_distributed()
    if source.is_stdin:
        raise ConfigError("--engine dask reads files, folders, globs or URLs, not stdin; "
                          "save the data to a file or use --engine gram")
    with cluster_client(params.scheduler) as client:
        return _run(client, source, header, columns, params, progress)


def _run(client, source, header, columns, params: FitParams, progress) -> EngineOutput:
    parts, known = _partitions(source)
    last_transfer.clear()
    last_transfer["partitions"] = len(parts)
    sent = 0
    overrides: dict = {}
    while True:
        types = {}
        if source.format == "csv":
            types = l1io._first_types(source, header, columns, None)
            types.update(overrides)
        job = _Job(source, header, list(columns), params, types)
        starts = _offsets(known) if known is not None else [0] * len(parts)
        # The job travels inside every task (a few KB): a task that depended on one shared
        # future would draw every task to the worker holding it, and scattered data could not
        # be recomputed if its worker were lost.
        futs = client.map(_pass1, [job] * len(parts), parts, range(len(parts)), starts,
                          retries=RETRIES, pure=False)
        sent += len(parts) * len(pickle.dumps(job)) + len(pickle.dumps((parts, starts)))
        first = _tree(client, futs, _merge1).result()
        received = len(pickle.dumps(first))
        if first.error is None:
            break
        index, what, *rest = first.error
        if what == "retype":
            overrides[rest[0]] = rest[1]
            continue
        if index >= 0:  # raise it again where the partition's first row index is known
            start = sum(first.counts[:index])
            client.submit(_pass1, job, parts[index], index, start, True, pure=False).result()
        raise rest[0]
    prof = first.prof
    counts = [int(c) for c in first.counts]
    if prof is None or sum(counts) == 0:
        raise DataError(f"{source.display} has no data rows; give a file with data")
    starts = _offsets(counts)
    labels = list(first.labels)
    seed = prof.seeded()
    kill = [None] * len(parts)
    if _KILL_ONCE is not None:
        kill[min(1, len(parts) - 1)] = _KILL_ONCE
    futs = client.map(_pass2, [job] * len(parts), parts, starts,
                      [(seed, labels)] * len(parts), kill, retries=RETRIES, pure=False)
    sent += (len(parts) * len(pickle.dumps((job, seed, labels)))
             + len(pickle.dumps((parts, starts))))
    stats2 = _tree(client, futs, _merge2).result()
    received += len(pickle.dumps(stats2))
    last_transfer.update(partitions=len(parts), rows=sum(counts), client_sent_bytes=sent,
                         client_received_bytes=received)
    if progress is not None:
        progress.read(sum(counts))
    grouper = make_grouper(params)
    grouper.labels = {lab: i + 1 for i, lab in enumerate(labels)}
    stats = stats2.stats if stats2.stats is not None else Moments(n_groups=grouper.n_groups)
    stats.ensure_groups(grouper.n_groups)
    dead = prof.dead_slots()
    if dead:
        stats.drop(dead)
        if stats2.micro is not None:
            stats2.micro.drop(dead)
    scan = l1io.Scan(sha256=None, n_rows=sum(counts))
    return solve(source, params, prof, stats, grouper, scan, stats2.micro,
                 min(len(stats2.y_values), 3), progress, engine="dask")


def _offsets(counts: list[int]) -> list[int]:
    out, total = [], 0
    for c in counts:
        out.append(total)
        total += c
    return out

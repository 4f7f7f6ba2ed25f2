"""Parquet: the schema of a file, and its rows as record batches of the needed columns.

:func:`read_row_groups` is the one loop over a file's row groups: the local engines read a
source through :func:`read_batches` (every file, every group, in order, hashing the bytes),
and the Dask engine calls it on each partition (a file's consecutive row groups).
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import pyarrow as pa
import pyarrow.parquet as pq

from l1select.errors import InputError
from l1select.io import pages
from l1select.io.sources import (
    Header,
    Scan,
    Source,
    check_same_header,
    clean_names,
    is_url,
    open_binary,
    short_error,
)

# Parquet batches of 8,192 rows, fewer when that is more than about 2 million values (16 MiB
# of float64; at least 1,024 rows). They are decoded batch by batch (not row group by row
# group), so memory does not grow with the row groups a writer chose: pyarrow's default is a
# million rows to a group. The statistics pass copies each batch several times over, so its
# size multiplies: on a one-group 1M x 51 file 41,120-row batches (16 MiB) peaked at 383 MiB,
# 8,192-row ones at 267 MiB, for less CPU time. Fewer rows save little more memory and cost
# time: Arrow's batch reader has a cost per column and batch (200,000 x 201 read in batches of
# 1,304 rows took 0.48 s of CPU, of 8,192 rows 0.33 s).
PARQUET_BATCH_ROWS = 8192
PARQUET_BATCH_VALUES = 1 << 21
# Arrow's allocator keeps freed pages mapped; after every batch they are handed back to the
# system, rather than accumulating with the consumer's own temporaries (10-17 MB less peak on
# a one-group 1M x 51 file, for 0.1-0.2 s more of system time faulting pages in again). With
# the system allocator (ARROW_DEFAULT_MEMORY_POOL=system) that is a malloc_trim of about 4 ms:
# there every 8th batch.
RELEASE_EVERY = {"system": 8}
# A row group of at most this many values (16 MiB of float64), or of at most this many rows,
# is decoded whole and then cut into batches. A batch reader holds, for every column, a page
# and a dictionary of up to 1 MiB each and its buffers, which is more than a short column
# decoded whole (8 bytes a row): on a 5,000 x 101 group 9 MiB more peak; on a 4,000 x 10,001
# group (305 MiB decoded) it peaked at 1.45 GB. For long columns batches hold less (a 1M x 51
# group: 143 MiB of readers against 389 MiB decoded; 100,000 x 51 groups: whole, 13 MiB more
# peak for 0.2 s less): up to 32,768 rows (256 KiB a float64 column) a group is read whole.
PARQUET_WHOLE_GROUP_VALUES = 1 << 21
PARQUET_WHOLE_GROUP_ROWS = 1 << 15
# A row group read whole is read this many columns at a time: Arrow's reader keeps state for
# every column of a call until the call ends, outside its memory pool (about 25 KB a column);
# 500 x 20,000 read in one call peaked 250-300 MB higher than in calls of 1,000 columns, and
# took no less time.
READ_COLUMNS = 1000
# Bytes read from the file at a time per column: the reader then holds a window of each column
# chunk instead of the whole chunk (a million doubles is 8 MB a column, 400 MB for 50).
PARQUET_READ_BUFFER = 1 << 16


class _LazyPaths(Mapping):
    """pyarrow's map from column names to leaf column indices, made on first use (the file is
    held weakly: the map is the file's own attribute, and a cycle would keep the file and its
    reader open until the next garbage collection)."""

    def __init__(self, pf: pq.ParquetFile):
        self._pf, self._map = weakref.ref(pf), None

    def _paths(self) -> dict:
        if self._map is None:
            self._map = pq.ParquetFile._build_nested_paths(self._pf())
        return self._map

    def __getitem__(self, key):
        return self._paths()[key]

    def __contains__(self, key) -> bool:
        return key in self._paths()

    def __iter__(self):
        return iter(self._paths())

    def __len__(self) -> int:
        return len(self._paths())


class _File(pq.ParquetFile):
    """``pq.ParquetFile`` that maps column names to leaf columns only when asked: pyarrow
    maps them on every open, a Python loop over the columns (25-35 ms at 20,000 columns),
    and reading the footer or checking the target column never asks."""

    def _build_nested_paths(self):
        return _LazyPaths(self)


def _unreadable(path: str, exc: BaseException) -> InputError:
    return InputError(f"{path} is not a readable Parquet file ({short_error(exc)}); check that "
                      "the file is complete")


def read_schema(path: str) -> pa.Schema:
    """The Arrow schema of one Parquet file (local or a URL)."""
    try:
        if is_url(path):
            with open_binary(path) as fh:
                return pq.read_schema(fh)
        return _arrow_schema(*_version(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(path, exc) from None


def footer(path: str) -> pq.FileMetaData:
    """The footer (metadata) of a local Parquet file, parsed once per version of the file: a
    fit opens it for the schema, the row estimate, the family check and the read, and at
    20,000 columns each parse costs 0.1-0.2 s."""
    return _footer(*_version(path))


def _version(path: str) -> tuple[str, int, int]:
    """A local file's key for the caches below: its absolute path, mtime and size (a
    rewritten file is parsed again)."""
    st = os.stat(path)
    return os.path.abspath(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _footer(path: str, mtime_ns: int, size: int) -> pq.FileMetaData:
    with _File(path) as pf:
        return pf.metadata


@lru_cache(maxsize=8)
def _arrow_schema(path: str, mtime_ns: int, size: int) -> pa.Schema:
    """The footer's schema as Arrow's, made once per version of the file (20 ms at 20,000
    columns): the header and the read's column map both ask for it."""
    return _footer(path, mtime_ns, size).schema.to_arrow_schema()


def open_file(path: str, digest=None, hashing: list | None = None) -> pq.ParquetFile:
    """Open one Parquet file (local or a URL) for reading.

    With ``digest`` (a hashlib object) its bytes go into it: for a local file in a thread
    appended to ``hashing`` (hashlib releases the GIL, so hashing overlaps the decoding; the
    caller joins the threads; files are hashed in order, one digest over all of them); a
    remote file is then fetched whole, one transfer hashed as it comes.
    """
    try:
        if is_url(path):
            if digest is None:
                return _File(open_binary(path), buffer_size=PARQUET_READ_BUFFER,
                             pre_buffer=False)
            with open_binary(path) as fh:
                data = fh.read()
            digest.update(data)
            return _File(pa.BufferReader(data), buffer_size=PARQUET_READ_BUFFER,
                         pre_buffer=False)
        if digest is not None:
            def hash_file() -> None:
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 22):
                        digest.update(chunk)

            for t in hashing:
                t.join()
            thread = threading.Thread(target=hash_file, daemon=True)
            thread.start()
            hashing.append(thread)
        return _File(path, metadata=footer(path), buffer_size=PARQUET_READ_BUFFER,
                     pre_buffer=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise _unreadable(path, exc) from None


def _leaves(path: str, columns: list[str]) -> list[int] | None:
    """The leaf columns of ``columns`` in the local file ``path`` when it is flat (every field a
    leaf, no name twice), in order, a name the file lacks left out, as ``read_row_group``
    finds them by name; None for any other file. By name pyarrow maps every column's path on
    each open and looks each name up (0.1-0.15 s a fit at 20,000 columns); the flat file's
    map is made once per version of the file."""
    if is_url(path):
        return None
    index = _leaf_index(*_version(path))
    return None if index is None else [index[c] for c in columns if c in index]


@lru_cache(maxsize=8)
def _leaf_index(path: str, mtime_ns: int, size: int) -> dict[str, int] | None:
    names = _arrow_schema(path, mtime_ns, size).names
    index = {name: i for i, name in enumerate(names)}
    flat = len(index) == len(names) == _footer(path, mtime_ns, size).num_columns
    return index if flat else None


def _read_group(pf: pq.ParquetFile, i: int, columns: list[str], use_threads: bool, path: str
                ) -> pa.Table:
    """Row group ``i`` of ``columns`` of the file ``path`` (open as ``pf``), read whole,
    ``READ_COLUMNS`` columns at a time.

    A flat local file's parts are read on threads of our own, each with its own reader and
    Arrow's threads off: Arrow's per-column work is what a wide group costs, and its own
    threads split a part's columns with more overhead than gain (500 x 20,000: 0.52 s on
    one thread of ours, 0.31 s on two). As many threads as cores, at most Arrow's I/O
    thread count (``batch`` caps it per worker); not Arrow's CPU count, which follows
    ``OMP_NUM_THREADS``, a setting for the BLAS.
    """
    leaves = _leaves(path, columns)
    if leaves is None:
        return _joined([pf.read_row_group(i, columns=part, use_threads=use_threads)
                        for part in _in_parts(columns)])
    parts = _in_parts(leaves)
    threads = min(len(parts), os.cpu_count() or 1, pa.io_thread_count()) if use_threads else 1
    if threads == 1:
        return _joined([pf.reader.read_row_group(i, column_indices=part, use_threads=use_threads)
                        for part in parts])

    def every(k: int) -> list[pa.Table]:
        own = pf if k == 0 else open_file(path)
        return [own.reader.read_row_group(i, column_indices=part, use_threads=False)
                for part in parts[k::threads]]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        each = list(pool.map(every, range(threads)))
    return _joined([each[j % threads][j // threads] for j in range(len(parts))])


def _in_parts(items: list) -> list[list]:
    return [items[s:s + READ_COLUMNS] for s in range(0, len(items), READ_COLUMNS)] or [items]


def _joined(tables: list[pa.Table]) -> pa.Table:
    """The columns of ``tables`` (of one length) side by side, in order."""
    if len(tables) == 1:
        return tables[0]
    return pa.Table.from_arrays([c for part in tables for c in part.columns],
                                schema=pa.schema([f for part in tables for f in part.schema]))


def read_row_groups(source: Source, header: Header, columns: list[str], path: str,
                    groups: Sequence[int] | None = None, pf: pq.ParquetFile | None = None,
                    use_threads: bool = True) -> Iterator[pa.RecordBatch]:
    """The record batches of ``columns`` in row groups ``groups`` (all: None) of one file of
    ``source``, in order, named as in ``header``.

    When ``groups`` starts at the file's first group and the file is not the source's first,
    its columns are checked against the header. ``pf`` is the file, if already open.
    """
    raw_to_clean = {raw: clean for clean, raw in header.renamed.items()}
    raw_columns = [header.renamed.get(c, c) for c in columns]
    rows = max(1024, min(PARQUET_BATCH_ROWS, PARQUET_BATCH_VALUES // max(len(raw_columns), 1)))
    try:
        pf = pf if pf is not None else open_file(path)
        groups = range(pf.metadata.num_row_groups) if groups is None else groups
        if path != source.files[0] and (not groups or groups[0] == 0):
            names = [raw_to_clean.get(n, n) for n in pf.schema_arrow.names]
            check_same_header(path, clean_names(names, path).names, header, source)
        pool, decoded = pa.default_memory_pool(), 0
        every = RELEASE_EVERY.get(pool.backend_name, 1)
        for i in groups:
            # A large group of long columns is decoded batch by batch: by io/pages.py's
            # decoder where it decodes every column (a page per column, and a dictionary
            # only while the column's pages use it), else by Arrow's batch reader (a page, a
            # dictionary and a read window per column); a small one, or one of short columns,
            # is read whole, which holds less than a batch reader per column.
            group_rows = pf.metadata.row_group(i).num_rows
            if (group_rows > max(rows, PARQUET_WHOLE_GROUP_ROWS)
                    and group_rows * len(raw_columns) > PARQUET_WHOLE_GROUP_VALUES):
                plans = None if is_url(path) else pages.plan(pf, path, i, raw_columns)
                if plans is not None:
                    parts = pages.read_group(path, pf.schema_arrow, plans, group_rows, rows)
                else:
                    parts = pf.iter_batches(batch_size=rows, row_groups=[i],
                                            columns=raw_columns, use_threads=use_threads)
            else:
                parts = _read_group(pf, i, raw_columns, use_threads, path).to_batches(
                    max_chunksize=rows)
            for batch in parts:
                if raw_to_clean:
                    batch = batch.rename_columns([raw_to_clean.get(n, n)
                                                  for n in batch.schema.names])
                yield batch
                del batch
                decoded += 1
                if decoded % every == 0:
                    pool.release_unused()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, pages.PageError) as exc:
        raise _unreadable(path, exc) from None


def read_batches(source: Source, header: Header, columns: list[str], scan: Scan,
                 hashed: bool = True) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``(record_batch, first_row_index)`` over every file of ``source`` in order; fills
    ``scan`` (the sha256 of all the files' bytes, the row count) at the end. Without
    ``hashed`` no bytes are hashed (``scan.sha256`` stays None)."""
    digest = hashlib.sha256() if hashed else None
    start = 0
    hashing: list = []
    for path in source.files:
        pf = open_file(path, digest, hashing)
        for batch in read_row_groups(source, header, columns, path, pf=pf):
            yield batch, start
            start += batch.num_rows
    for t in hashing:
        t.join()
    scan.sha256 = digest.hexdigest() if digest is not None else None
    scan.n_rows = start

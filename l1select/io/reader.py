"""The ways in: a path becomes its :class:`~l1select.io.sources.Source` and column names
(:func:`open_header`), then a stream of Arrow record batches of the needed columns
(:func:`batches`) or one table (:func:`read`), whatever the format.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from l1select.errors import InputError
from l1select.io import csv as csv_io
from l1select.io.csv import Retype
from l1select.io.sources import Header, Scan, Source, clean_names, detect, is_url, stdin_bytes


@dataclass(frozen=True)
class ReadResult:
    table: pa.Table
    sha256: str | None
    n_rows: int


def open_header(path: str) -> tuple[Source, Header, bytes | None]:
    """Resolve ``path`` and read its column names. Stdin is read whole here."""
    source = detect(path)
    data = stdin_bytes() if source.is_stdin else None
    first = source.files[0]
    if source.format == "parquet":
        from l1select.io import parquet as parquet_io  # pyarrow.parquet: not for CSV

        return source, clean_names(list(parquet_io.read_schema(first).names), first), None
    sniff = not source.path.lower().endswith((".tsv", ".tsv.gz"))
    delimiter, raw, has_rows = csv_io.read_header(first, source, data, sniff)
    source = source.with_(delimiter=delimiter)
    header = clean_names(raw, source.display)
    if not has_rows and len(source.files) == 1:
        raise InputError(f"{source.display} has a header row but no data rows; give a file "
                         "with data")
    return source, header, data


def batches(source: Source, header: Header, columns: list[str], data: bytes | None,
            scan: Scan, overrides: dict[str, pa.DataType] | None = None,
            text: bool = False, hashed: bool = True) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Yield ``(record_batch, first_row_index)`` over the source, in order, in small blocks.

    CSV is cut at line ends into blocks that two threads parse while the caller works on the
    previous ones; every block is parsed with the column types of the first, widened (see
    :func:`l1select.io.csv.first_types`). Raises :class:`Retype` when a column meets a value
    of another type later on; the caller reads again with ``overrides`` extended (:func:`read`
    does). With ``text``, CSV cells come as the exact strings written (no types, no missing
    values). Without ``hashed`` the bytes are not hashed (``scan.sha256`` stays None): for a
    look at the first rows, which would otherwise start hashing the whole source.
    """
    if source.format == "parquet":
        from l1select.io import parquet as parquet_io

        yield from parquet_io.read_batches(source, header, columns, scan, hashed)
    else:
        yield from csv_io.read_batches(source, header, columns, data, scan, overrides or {},
                                       text, hashed)


def read(source: Source, header: Header, columns: list[str],
         data: bytes | None = None) -> ReadResult:
    """Read ``columns`` of the whole source into one in-memory table."""

    def one_pass(overrides):
        scan = Scan()
        parts = [b for b, _ in batches(source, header, columns, data, scan, overrides)]
        if len(parts) == 1:
            # One chunk a column already: combining would only cost (30 ms at 20,000 columns).
            table = pa.Table.from_batches(parts)
        elif parts:
            table = pa.Table.from_batches(parts).combine_chunks()
        else:
            table = pa.table({c: pa.array([], pa.string()) for c in columns})
        return ReadResult(table=table, sha256=scan.sha256, n_rows=scan.n_rows)

    return with_retypes(one_pass)


def with_retypes(one_pass, on_restart=None):
    """Run ``one_pass(overrides)``, a pass over :func:`batches`, again from the top each time
    a column needs another type; its result.

    ``on_restart()`` runs before each new pass, to undo what the interrupted one did.
    """
    overrides: dict[str, pa.DataType] = {}
    while True:
        try:
            return one_pass(overrides)
        except Retype as exc:
            overrides[exc.column] = exc.type
            if on_restart is not None:
                on_restart()


def estimate_rows(source: Source, data: bytes | None) -> int | None:
    """About how many data rows the source has, without reading it (None if unknown)."""
    try:
        if source.format == "parquet":
            if any(is_url(f) for f in source.files):
                return None
            from l1select.io import parquet as parquet_io

            return sum(parquet_io.footer(f).num_rows for f in source.files)
        if data is not None:
            return max(csv_io.line_ends(data) - 1, 0)
        if any(is_url(f) for f in source.files):
            return None
        total = 0
        for path in source.files:
            size = os.path.getsize(path)
            head, _ = csv_io.head_bytes(path, source.compression, None)
            if source.compression == "gzip":
                with open(path, "rb") as fh:
                    fh.seek(-4, os.SEEK_END)
                    size = int.from_bytes(fh.read(4), "little")  # uncompressed size mod 2**32
            lines = csv_io.line_ends(head)
            if lines < 2:
                continue
            total += int(size / (len(head) / lines)) - 1
        return total
    except (OSError, pa.ArrowInvalid):
        return None

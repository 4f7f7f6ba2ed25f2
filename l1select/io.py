"""Read: a source (CSV, TSV, gzip, Parquet or stdin) becomes an Arrow table of the needed columns.

Nothing here interprets values beyond what Arrow infers; ``prepare`` decides what a column means.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from l1select.errors import InputError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
UNSUPPORTED = {
    ".xlsx": "Excel workbooks",
    ".xls": "Excel workbooks",
    ".json": "JSON files",
    ".jsonl": "JSON lines files",
    ".feather": "Feather files",
    ".arrow": "Arrow IPC files",
    ".orc": "ORC files",
    ".avro": "Avro files",
    ".zip": "zip archives",
    ".sav": "SPSS files",
    ".dta": "Stata files",
}
SNIFF_BYTES = 1 << 16
DELIMITERS = (",", "\t", ";", "|")
# Extra spellings of "missing" seen in exported spreadsheets, beyond Arrow's defaults.
NULL_VALUES = [
    "", "NA", "N/A", "n/a", "na", "NaN", "nan", "-nan", "NULL", "null", "None", "none",
    "#N/A", "#NA", "<NA>", "-1.#IND", "1.#QNAN", "-NaN", "#NULL!", "?", "-", "--", ".",
    "n.a.", "missing", "MISSING", "nil", "#VALUE!", "#DIV/0!", "#REF!", "#NUM!",
]  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Where the data comes from. ``path`` is ``-`` for stdin."""

    path: str
    format: str  # "csv" | "parquet"
    delimiter: str = ","
    compression: str | None = None

    @property
    def display(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    @property
    def is_stdin(self) -> bool:
        return self.path == "-"


@dataclass(frozen=True)
class Header:
    """The column names of a source, and the bytes of a CSV read so far (stdin is read once)."""

    names: list[str]
    renamed: dict[str, str]


@dataclass(frozen=True)
class ReadResult:
    table: pa.Table
    sha256: str | None
    n_rows: int


def _stdin_bytes() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "stdin is a terminal, not data: pipe a CSV file in "
            "(cat data.csv | l1select fit - --target COL) or give a file path"
        )
    return sys.stdin.buffer.read()


def detect(path: str) -> Source:
    """Decide the format of ``path`` from its name (or its first bytes), without reading it all."""
    if path == "-":
        return Source(path="-", format="csv")
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; give a CSV or Parquet file")
    lower = path.lower()
    compression = "gzip" if lower.endswith(".gz") else None
    if lower.endswith(PARQUET_SUFFIXES):
        return Source(path=path, format="parquet")
    if lower.endswith(CSV_SUFFIXES):
        tab = lower.endswith((".tsv", ".tsv.gz"))
        return Source(path=path, format="csv", delimiter="\t" if tab else ",",
                      compression=compression)
    for suffix, what in UNSUPPORTED.items():
        if lower.endswith(suffix):
            raise InputError(
                f"{path}: {what} are not supported; export the data to CSV or Parquet"
            )
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return Source(path=path, format="parquet")
    if head[:2] == b"\x1f\x8b":
        return Source(path=path, format="csv", compression="gzip")
    suffix = os.path.splitext(path)[1] or "(none)"
    raise InputError(
        f"{path}: unsupported file type '{suffix}'; give a .csv, .tsv, .csv.gz or .parquet file"
    )


def _open_text_head(source: Source, data: bytes | None) -> bytes:
    if data is not None:
        return data[:SNIFF_BYTES]
    try:
        if source.compression == "gzip":
            with gzip.open(source.path, "rb") as fh:
                return fh.read(SNIFF_BYTES)
        with open(source.path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(f"{source.display}: cannot read the file ({exc})") from None


def _sniff_delimiter(lines: list[str], default: str) -> str:
    """The delimiter that splits the header and the first rows into the same number of fields."""
    best, best_count = default, 0
    for delim in DELIMITERS:
        rows = list(csv.reader(lines[:20], delimiter=delim))
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = all(len(r) == width for r in rows[1:] if r)
        if consistent and width > best_count:
            best, best_count = delim, width
    return best


def sniff(source: Source, data: bytes | None = None) -> tuple[Source, Header]:
    """Read the first bytes of a CSV source: check it is text, find the delimiter and the header."""
    head = _open_text_head(source, data)
    if not head.strip():
        raise InputError(f"{source.display} is empty; give a file with a header row and data")
    if b"\x00" in head:
        raise InputError(
            f"{source.display} looks like a binary file, not CSV text; "
            "give a CSV or Parquet file"
        )
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(head) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    delimiter = source.delimiter
    if not source.path.lower().endswith((".tsv", ".tsv.gz")):
        delimiter = _sniff_delimiter(lines, source.delimiter)
    source = Source(source.path, "csv", delimiter, source.compression)
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    names, renamed = _clean_names(header, source)
    body = [ln for ln in lines[1:] if ln.strip()]
    if not body:
        raise InputError(
            f"{source.display} has a header row but no data rows; give a file with data"
        )
    return source, Header(names, renamed)


def _clean_names(raw: list[str], source: Source) -> tuple[list[str], dict[str, str]]:
    names, renamed = [], {}
    for i, name in enumerate(raw):
        clean = name.strip().lstrip("\ufeff").strip()
        if not clean:
            clean = f"unnamed_{i + 1}"
            renamed[clean] = name
        names.append(clean)
    seen: dict[str, int] = {}
    dupes = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 2:
            dupes.append(name)
    if dupes:
        raise InputError(
            f"{source.display}: duplicate column names {', '.join(repr(d) for d in dupes)}; "
            "rename them so that every column has its own name"
        )
    return names, renamed


def parquet_header(source: Source) -> Header:
    try:
        schema = pq.read_schema(source.path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"{source.display} is not a readable Parquet file ({_short(exc)}); "
            "check that the file is complete"
        ) from None
    names, renamed = _clean_names(list(schema.names), source)
    return Header(names, renamed)


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


class _HashingReader(io.RawIOBase):
    """A file wrapper that feeds every byte read into a sha256, so hashing costs no extra pass."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        if n:
            self.hash.update(memoryview(buffer)[:n])
        return n or 0


def read_csv(source: Source, header: Header, columns: list[str],
             data: bytes | None = None, encoding: str = "utf8") -> ReadResult:
    """Read the named columns of a CSV source into one Arrow table.

    The sha256 covers the bytes of the file as stored (compressed bytes for ``.gz``), and is
    None for stdin.
    """
    bad_row: dict[str, object] = {}

    def on_invalid(row) -> str:
        bad_row.setdefault("row", row)
        return "error"

    read_options = pacsv.ReadOptions(
        column_names=header.names, skip_rows=1, encoding=encoding, use_threads=True,
        block_size=1 << 22,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=source.delimiter, invalid_row_handler=on_invalid, newlines_in_values=False,
    )
    convert_options = pacsv.ConvertOptions(
        include_columns=columns, null_values=NULL_VALUES, strings_can_be_null=True,
        true_values=["true", "True", "TRUE"], false_values=["false", "False", "FALSE"],
    )
    digest = None
    try:
        if data is not None:
            stream: object = pa.BufferReader(data.lstrip(b"\xef\xbb\xbf"))
            hasher = None
        else:
            raw = open(source.path, "rb")  # noqa: SIM115 - closed below
            hasher = _HashingReader(raw)
            buffered = io.BufferedReader(hasher, buffer_size=1 << 20)
            stream = (
                pa.CompressedInputStream(pa.PythonFile(buffered, mode="r"), "gzip")
                if source.compression == "gzip"
                else pa.PythonFile(buffered, mode="r")
            )
        try:
            table = pacsv.read_csv(stream, read_options, parse_options, convert_options)
        finally:
            if data is None:
                # Drain what Arrow did not need so the hash covers the whole file.
                while buffered.read(1 << 20):
                    pass
                raw.close()
        if hasher is not None:
            digest = hasher.hash.hexdigest()
    except pa.ArrowInvalid as exc:
        raise _csv_error(source, exc, bad_row, data) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{source.display}: cannot read the file ({_short(exc)})") from None
    if data is not None:
        digest = None
    if encoding == "utf8" and any(pa.types.is_binary(t) for t in table.schema.types):
        # Not UTF-8: most such files are Latin-1/Windows-1252 exports; decode as Latin-1.
        return read_csv(source, header, columns, data, encoding="latin1")
    return ReadResult(table=table, sha256=digest, n_rows=table.num_rows)


def _ragged_line(source: Source, data: bytes | None, expected: int) -> int | None:
    """The file line of the first row without ``expected`` fields (error path only)."""
    try:
        if data is not None:
            fh = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace",
                                  newline="")
        elif source.compression == "gzip":
            fh = io.TextIOWrapper(gzip.open(source.path, "rb"), encoding="utf-8",
                                  errors="replace", newline="")
        else:
            fh = open(source.path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        with fh:
            reader = csv.reader(fh, delimiter=source.delimiter)
            next(reader, None)
            for row in reader:
                if row and len(row) != expected:
                    return reader.line_num
    except (OSError, csv.Error, EOFError):
        return None
    return None


def _csv_error(source: Source, exc: pa.ArrowInvalid, bad_row: dict,
               data: bytes | None = None) -> InputError:
    row = bad_row.get("row")
    if row is not None:
        number = getattr(row, "number", None) or _ragged_line(source, data,
                                                              row.expected_columns)
        where = f"line {number}" if number else "a row"
        return InputError(
            f"{source.display}: {where} has {row.actual_columns} fields but the header has "
            f"{row.expected_columns}; fix the row or quote fields that contain "
            f"'{_printable(source.delimiter)}'"
        )
    msg = _short(exc)
    if "UTF8" in msg or "utf-8" in msg.lower():
        return InputError(f"{source.display}: not valid text ({msg}); save it as UTF-8 CSV")
    return InputError(f"{source.display}: cannot parse the CSV ({msg})")


def _printable(delim: str) -> str:
    return "\\t" if delim == "\t" else delim


def read_parquet(source: Source, columns: list[str]) -> ReadResult:
    try:
        with open(source.path, "rb") as raw:
            hasher = _HashingReader(raw)
            buffered = io.BufferedReader(hasher, buffer_size=1 << 20)
            data = buffered.read()
        table = pq.read_table(pa.BufferReader(data), columns=columns)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InputError(
            f"{source.display} is not a readable Parquet file ({_short(exc)}); "
            "check that the file is complete"
        ) from None
    return ReadResult(table=table, sha256=hasher.hash.hexdigest(), n_rows=table.num_rows)


def open_header(path: str) -> tuple[Source, Header, bytes | None]:
    """Detect the format of ``path`` and read its column names. Stdin is read whole here."""
    source = detect(path)
    data = _stdin_bytes() if source.is_stdin else None
    if source.format == "parquet":
        return source, parquet_header(source), None
    source, header = sniff(source, data)
    return source, header, data


def read(source: Source, header: Header, columns: list[str],
         data: bytes | None = None) -> ReadResult:
    """Read only ``columns`` of the source into memory."""
    if source.format == "parquet":
        result = read_parquet(source, [header.renamed.get(c, c) for c in columns])
        if header.renamed:
            raw_to_clean = {raw: clean for clean, raw in header.renamed.items()}
            names = [raw_to_clean.get(n, n) for n in result.table.schema.names]
            result = ReadResult(result.table.rename_columns(names), result.sha256, result.n_rows)
        return result
    return read_csv(source, header, columns, data)


# -- streaming ---------------------------------------------------------------------------------

# 1 MiB reads, re-cut at line ends: at most a few blocks are in flight, so memory stays small;
# larger blocks cost memory without parsing faster.
CSV_BLOCK = 1 << 20
# Parquet batches of about 16 MiB of float64 values whatever the width (but whole row groups
# are decoded by Arrow: files written with huge row groups cost more memory to read).
PARQUET_BATCH_VALUES = 1 << 21


class Retype(Exception):
    """A column's values changed type after the first block: read again with ``column`` as
    ``type`` (raised by :func:`batches`, handled by the caller)."""

    def __init__(self, column: str, type_: pa.DataType):
        super().__init__(column)
        self.column = column
        self.type = type_


@dataclass
class Scan:
    """Filled in while :func:`batches` runs: the hash of the bytes read, and the row count."""

    sha256: str | None = None
    n_rows: int = 0


def _csv_options(source: Source, header: Header, columns: list[str],
                 types: dict[str, pa.DataType], encoding: str):
    bad_row: dict[str, object] = {}

    def on_invalid(row) -> str:
        bad_row.setdefault("row", row)
        return "error"

    read_options = pacsv.ReadOptions(column_names=header.names, skip_rows=1, encoding=encoding,
                                     use_threads=True, block_size=CSV_BLOCK)
    parse_options = pacsv.ParseOptions(delimiter=source.delimiter,
                                       invalid_row_handler=on_invalid)
    convert_options = pacsv.ConvertOptions(
        include_columns=columns, column_types=types, null_values=NULL_VALUES,
        strings_can_be_null=True, true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
    )
    return read_options, parse_options, convert_options, bad_row


def _open_stream(source: Source, data: bytes | None):
    """An Arrow input stream over the source, and the hashing reader (None for stdin)."""
    if data is not None:
        return pa.BufferReader(data.lstrip(b"\xef\xbb\xbf")), None, None
    raw = open(source.path, "rb")  # noqa: SIM115 - closed by the caller
    hasher = _HashingReader(raw)
    buffered = io.BufferedReader(hasher, buffer_size=1 << 20)
    stream = pa.PythonFile(buffered, mode="r")
    if source.compression == "gzip":
        stream = pa.CompressedInputStream(stream, "gzip")
    return stream, hasher, (raw, buffered)


def _first_types(source: Source, header: Header, columns: list[str], data: bytes | None,
                 encoding: str) -> dict[str, pa.DataType]:
    """Types inferred from the first block, widened so that later blocks keep to them:
    integers are read as float64 and all-empty columns as text."""
    stream, _, handles = _open_stream(source, data)
    ro, po, co, bad = _csv_options(source, header, columns, {}, encoding)
    try:
        reader = pacsv.open_csv(stream, ro, po, co)
        schema = reader.schema
    except pa.ArrowInvalid as exc:
        raise _csv_error(source, exc, bad, data) from None
    finally:
        if handles:
            handles[0].close()
    types = {}
    for f in schema:
        if pa.types.is_integer(f.type):
            types[f.name] = pa.float64()
        elif pa.types.is_null(f.type):
            types[f.name] = pa.string()
    return types


def _raw_blocks(source: Source, data: bytes | None, scan_hash):
    """The decompressed bytes of the source in blocks, hashing the stored bytes on the way."""
    if data is not None:
        data = data.lstrip(b"\xef\xbb\xbf")
        for i in range(0, len(data), CSV_BLOCK):
            yield data[i:i + CSV_BLOCK]
        return
    import zlib

    inflate = zlib.decompressobj(wbits=47) if source.compression == "gzip" else None
    with open(source.path, "rb") as fh:
        while block := fh.read(CSV_BLOCK):
            scan_hash.update(block)
            if inflate is None:
                yield block
                continue
            out = inflate.decompress(block)
            while inflate.eof and inflate.unused_data:  # concatenated gzip members
                rest = inflate.unused_data
                inflate = zlib.decompressobj(wbits=47)
                out += inflate.decompress(rest)
            if out:
                yield out


def _line_chunks(blocks):
    """Re-cut blocks at line ends, and drop the header line."""
    carry = b""
    header_done = False
    for block in blocks:
        buf = carry + block if carry else block
        if not header_done:
            nl = buf.find(b"\n")
            if nl < 0:
                carry = buf
                continue
            buf = buf[nl + 1:]
            header_done = True
        cut = buf.rfind(b"\n")
        if cut < 0:
            carry = buf
            continue
        carry = buf[cut + 1:]
        if cut > 0:
            yield buf[:cut + 1]
    if header_done and carry.strip():
        yield carry


def batches(source: Source, header: Header, columns: list[str], data: bytes | None,
            scan: Scan, overrides: dict[str, pa.DataType] | None = None,
            encoding: str = "utf8"):
    """Yield ``(record_batch, start_row)`` over the source, in file order, in small blocks.

    CSV is cut at line ends into blocks that two threads parse while the caller works on the
    previous ones; every block is parsed with the column types of the first, widened (see
    :func:`_first_types`). Raises :class:`Retype` when a column meets a value of another type
    later on; the caller reads again with ``overrides`` extended.
    """
    if source.format == "parquet":
        yield from _parquet_batches(source, header, columns, scan)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    types = _first_types(source, header, columns, data, encoding)
    types.update(overrides or {})
    _, po, co, bad = _csv_options(source, header, columns, types, encoding)
    ro = pacsv.ReadOptions(column_names=header.names, encoding=encoding, use_threads=False,
                           block_size=4 * CSV_BLOCK)
    names = header.names  # Arrow numbers columns in the file's order, read or not

    def parse(chunk: bytes) -> pa.RecordBatch:
        table = pacsv.read_csv(pa.BufferReader(chunk), ro, po, co)
        return table.combine_chunks().to_batches(max_chunksize=table.num_rows or 1)

    digest = hashlib.sha256()
    start = 0
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="l1select-csv")
    try:
        try:
            chunks = _line_chunks(_raw_blocks(source, data, digest))
            for chunk in chunks:
                pending.append(pool.submit(parse, chunk))
                if len(pending) < 3:
                    continue
                for batch in pending.popleft().result():
                    yield _checked(batch, encoding), start
                    start += batch.num_rows
            while pending:
                for batch in pending.popleft().result():
                    yield _checked(batch, encoding), start
                    start += batch.num_rows
        except pa.ArrowInvalid as exc:
            retype = _retype_from(str(exc), names, types)
            if retype is not None:
                raise retype from None
            raise _csv_error(source, exc, bad, data) from None
        except (OSError, EOFError) as exc:
            raise InputError(f"{source.display}: cannot read the file ({_short(exc)})") from None
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    scan.sha256 = None if data is not None else digest.hexdigest()
    scan.n_rows = start


def _checked(batch: pa.RecordBatch, encoding: str) -> pa.RecordBatch:
    if encoding == "utf8" and any(pa.types.is_binary(t) for t in batch.schema.types):
        raise Retype("", pa.binary())
    return batch


def reader_columns(header: Header, columns: list[str]) -> list[str]:
    wanted = set(columns)
    return [n for n in header.names if n in wanted]


def _retype_from(message: str, names: list[str], types: dict[str, pa.DataType]) -> Retype | None:
    import re

    m = re.search(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+)",
                  message)
    if not m:
        return None
    idx = int(m.group(1))
    if idx >= len(names):
        return None
    name = names[idx]
    current = types.get(name)
    if current is not None and pa.types.is_string(current):
        return None
    return Retype(name, pa.string())


def _parquet_batches(source: Source, header: Header, columns: list[str], scan: Scan):
    import threading

    digest: dict[str, str] = {}

    def hash_file() -> None:
        h = hashlib.sha256()
        with open(source.path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        digest["sha"] = h.hexdigest()

    # hashlib releases the GIL on large chunks, so hashing overlaps the decoding.
    thread = threading.Thread(target=hash_file, daemon=True)
    thread.start()
    raw_to_clean = {raw: clean for clean, raw in header.renamed.items()}
    raw_columns = [header.renamed.get(c, c) for c in columns]
    start = 0
    try:
        pf = pq.ParquetFile(source.path)
        rows = max(1024, PARQUET_BATCH_VALUES // max(len(raw_columns), 1))
        for batch in pf.iter_batches(batch_size=rows, columns=raw_columns, use_threads=True):
            if raw_to_clean:
                batch = batch.rename_columns([raw_to_clean.get(n, n)
                                              for n in batch.schema.names])
            yield batch, start
            start += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InputError(
            f"{source.display} is not a readable Parquet file ({_short(exc)}); "
            "check that the file is complete"
        ) from None
    thread.join()
    scan.sha256 = digest.get("sha")
    scan.n_rows = start


def estimate_rows(source: Source, data: bytes | None) -> int | None:
    """About how many data rows the source has, without reading it (None if unknown)."""
    try:
        if source.format == "parquet":
            return pq.ParquetFile(source.path).metadata.num_rows
        if data is not None:
            return max(data.count(b"\n") - 1, 0)
        size = os.path.getsize(source.path)
        head = _open_text_head(source, None)
        if source.compression == "gzip":
            with open(source.path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                size = int.from_bytes(fh.read(4), "little")  # uncompressed size mod 2**32
        lines = head.count(b"\n")
        if lines < 2:
            return None
        return int(size / (len(head) / lines)) - 1
    except (OSError, pa.ArrowInvalid):
        return None

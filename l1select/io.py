"""Read: a source becomes a stream of Arrow record batches of the needed columns (and write
tables back out for ``transform`` and ``predict``).

A source is a CSV file (delimiter sniffed, ``.tsv``, ``.gz``), a Parquet file, ``-`` for CSV on
stdin, a folder or a glob of such files (read as one table, in sorted file-name order), or a
remote URL (``s3://``, ``gs://``, ``https://``…) read through fsspec. Nothing here interprets
values beyond what Arrow infers; ``prepare`` decides what a column means.
"""

from __future__ import annotations

import codecs
import csv
import glob as globlib
import hashlib
import io
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from l1select.errors import ConfigError, InputError, list_names, quoted
from l1select.files import PendingFile, check_folder

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
UNSUPPORTED = {
    ".xlsx": "Excel workbooks", ".xls": "Excel workbooks", ".json": "JSON files",
    ".jsonl": "JSON lines files", ".feather": "Feather files", ".arrow": "Arrow IPC files",
    ".orc": "ORC files", ".avro": "Avro files", ".zip": "zip archives", ".sav": "SPSS files",
    ".dta": "Stata files",
}
# The optional extra that brings the fsspec filesystem of each URL scheme.
REMOTE_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http",
                 "https": "http", "az": "azure", "abfs": "azure", "abfss": "azure"}
SNIFF_BYTES = 1 << 16
DELIMITERS = (",", "\t", ";", "|")
# Extra spellings of "missing" seen in exported spreadsheets, beyond Arrow's defaults.
NULL_VALUES = [
    "", "NA", "N/A", "n/a", "na", "NaN", "nan", "-nan", "NULL", "null", "None", "none",
    "#N/A", "#NA", "<NA>", "-1.#IND", "1.#QNAN", "-NaN", "#NULL!", "?", "-", "--", ".",
    "n.a.", "missing", "MISSING", "nil", "#VALUE!", "#DIV/0!", "#REF!", "#NUM!",
]  # fmt: skip
# CSV is read in blocks of at least 4 MiB and of about ROWS_PER_BLOCK rows (judged from the
# header's width), re-cut at line ends: a parse call has a cost per column, so blocks of a few
# hundred rows spend more on setup than on parsing; at most three blocks are in flight, so
# memory stays small whatever the file's length.
CSV_BLOCK = 1 << 22
ROWS_PER_BLOCK = 2048
# Parquet batches of about 16 MiB of float64 values whatever the width. They are decoded
# batch by batch (not row group by row group), so memory does not grow with the row groups a
# writer chose: pyarrow's default is a million rows to a group.
PARQUET_BATCH_VALUES = 1 << 21
# Bytes read from the file at a time per column: the reader then holds a window of each column
# chunk instead of the whole chunk (a million doubles is 8 MB a column, 400 MB for 50).
PARQUET_READ_BUFFER = 1 << 16


@dataclass(frozen=True)
class Source:
    """Where the data comes from. ``path`` is what the user gave (``-`` for stdin); ``files``
    the files it stands for, in reading order."""

    path: str
    format: str  # "csv" | "parquet"
    delimiter: str = ","
    compression: str | None = None
    files: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    @property
    def is_stdin(self) -> bool:
        return self.path == "-"

    @property
    def decimal_comma(self) -> bool:
        """Numbers in text may use a decimal comma: CSV whose delimiter is not a comma."""
        return self.format == "csv" and self.delimiter != ","

    def with_(self, **kw) -> Source:
        return Source(**{**self.__dict__, **kw})


@dataclass(frozen=True)
class Header:
    """The column names of a source (blank names become ``unnamed_N``: ``renamed`` maps them
    back to what the file says)."""

    names: list[str]
    renamed: dict[str, str] = field(default_factory=dict)


@dataclass
class Scan:
    """Filled in while :func:`batches` runs: the hash of the bytes read, and the row count."""

    sha256: str | None = None
    n_rows: int = 0


@dataclass(frozen=True)
class ReadResult:
    table: pa.Table
    sha256: str | None
    n_rows: int


class Retype(Exception):
    """A column's values changed type after the first block: read again with ``column`` as
    ``type`` (raised by :func:`batches`, handled by the caller)."""

    def __init__(self, column: str, type_: pa.DataType):
        super().__init__(column)
        self.column = column
        self.type = type_


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


# -- where the bytes are -----------------------------------------------------------------------

def is_url(path: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) is not None and \
        not path.startswith("file://")


def _fsspec(path: str):
    """The fsspec filesystem and path for a URL, or a clear error naming the extra to install."""
    scheme = path.split("://", 1)[0].lower()
    extra = REMOTE_EXTRAS.get(scheme, "remote")
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"Reading {scheme}:// URLs needs fsspec: pip install "
                          f"'l1select[{extra}]'") from None
    try:
        fs, root = fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"Reading {scheme}:// URLs needs the '{extra}' extra: pip install "
                          f"'l1select[{extra}]' ({_short(exc)})") from None
    return fs, root


def _open(path: str):
    """A binary file object for a local path or a URL."""
    if is_url(path):
        fs, root = _fsspec(path)
        return fs.open(root, "rb")
    return open(path.removeprefix("file://"), "rb")  # noqa: SIM115 - the caller closes it


def _format_of(path: str) -> tuple[str, str | None, str]:
    """(format, compression, delimiter) of one file from its name, or an error."""
    lower = path.lower().split("?", 1)[0]
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet", None, ","
    if lower.endswith(CSV_SUFFIXES):
        tab = lower.endswith((".tsv", ".tsv.gz"))
        return "csv", "gzip" if lower.endswith(".gz") else None, "\t" if tab else ","
    for suffix, what in UNSUPPORTED.items():
        if lower.endswith(suffix):
            raise InputError(f"{path}: {what} are not supported; export the data to CSV or "
                             "Parquet")
    try:
        with _open(path) as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({_short(exc)})") from None
    if head == b"PAR1":
        return "parquet", None, ","
    if head[:2] == b"\x1f\x8b":
        return "csv", "gzip", ","
    suffix = os.path.splitext(lower)[1] or "(none)"
    raise InputError(f"{path}: unsupported file type '{suffix}'; give a .csv, .tsv, .csv.gz or "
                     ".parquet file")


def _data_files(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)
                  and not os.path.basename(n).startswith(("_", ".")))


def _expand(path: str) -> list[str]:
    """The files a path stands for: itself, a folder's data files, or a glob's matches."""
    has_glob = any(ch in path for ch in "*?[")
    if is_url(path):
        fs, root = _fsspec(path)
        scheme = path.split("://", 1)[0]
        try:
            if has_glob:
                found = fs.glob(root)
            elif fs.isdir(root):
                found = [f for f in fs.find(root) if not fs.isdir(f)]
            elif fs.exists(root):
                return [path]
            else:
                raise InputError(f"{path}: no such file; check the URL")
        except OSError as exc:
            raise InputError(f"{path}: cannot list it ({_short(exc)})") from None
        files = _data_files([f if "://" in f else f"{scheme}://{f}" for f in found])
    elif has_glob:
        files = _data_files(globlib.glob(path, recursive=True))
    elif os.path.isdir(path):
        files = _data_files([os.path.join(dp, f) for dp, _, fs_ in os.walk(path) for f in fs_])
    elif os.path.exists(path):
        return [path]
    else:
        raise InputError(f"{path}: no such file; check the path")
    if not files:
        raise InputError(f"{path}: no CSV or Parquet files there; check the path or pattern")
    return files


def detect(path: str) -> Source:
    """Resolve ``path`` to its files and their format, without reading them."""
    if path == "-":
        return Source(path="-", format="csv", files=("-",))
    files = _expand(path)
    kinds = {_format_of(f) for f in files}
    formats = {k[0] for k in kinds}
    if len(formats) > 1:
        raise InputError(f"{path} mixes CSV and Parquet files; keep one format per source")
    fmt, compression, delimiter = _format_of(files[0])
    return Source(path=path, format=fmt, delimiter=delimiter, compression=compression,
                  files=tuple(files))


# -- headers -----------------------------------------------------------------------------------

def _stdin_bytes() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "stdin is a terminal, not data: pipe a CSV file in "
            "(cat data.csv | l1select fit - --target COL) or give a file path"
        )
    return sys.stdin.buffer.read()


def _head_bytes(path: str, compression: str | None, data: bytes | None) -> tuple[bytes, bool]:
    """The first bytes of a CSV file as UTF-8 (see :func:`_raw_blocks`), and whether they are
    the whole file: at least 64 KiB, and past the end of the header and a few rows however
    wide the file is (up to 64 MiB)."""
    out: list[bytes] = []
    size = lines = 0
    blocks = _raw_blocks(path, compression, data, None, SNIFF_BYTES)
    try:
        for block in blocks:
            out.append(block)
            size += len(block)
            lines += _line_ends(block)
            if size >= SNIFF_BYTES and lines > 6 or size >= 1 << 26:
                return b"".join(out), False
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read the file ({_short(exc)})") from None
    finally:
        blocks.close()
    return b"".join(out), True


def _line_ends(buf: bytes) -> int:
    """About how many lines ``buf`` holds, whichever of LF, CRLF or CR ends them."""
    return max(buf.count(b"\n"), buf.count(b"\r"))


def _records(text: str, delimiter: str, complete: bool, limit: int) -> list[list[str]]:
    """The first ``limit`` records of CSV text (a cell may hold line breaks; CR, LF and CRLF
    all end a line); without ``complete``, the text may stop inside its last record, which is
    left out."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            rows.append(row)
            if len(rows) > limit:
                return rows[:limit]
    except csv.Error:  # e.g. a whole wide line as one field: not this delimiter
        return rows[:-1] if rows and not complete else rows
    return rows if complete or len(rows) < 2 else rows[:-1]


def _sniff_delimiter(text: str, complete: bool, default: str) -> str:
    """The delimiter that splits the header and the first rows into the same number of fields."""
    best, best_count = default, 0
    for delim in DELIMITERS:
        rows = _records(text, delim, complete, 20)
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = all(len(r) == width for r in rows[1:] if r)
        if consistent and width > best_count:
            best, best_count = delim, width
    return best


def _csv_header(path: str, source: Source, data: bytes | None, sniff: bool
                ) -> tuple[str, list[str], bool]:
    """(delimiter, raw header names, has data rows) of one CSV file."""
    head, complete = _head_bytes(path, source.compression, data)
    shown = "<stdin>" if path == "-" else path
    if not head.strip():
        raise InputError(f"{shown} is empty; give a file with a header row and data")
    if b"\x00" in head:
        raise InputError(f"{shown} looks like a binary file, not CSV text; give a CSV or "
                         "Parquet file")
    text = head.decode("utf-8")
    delimiter = _sniff_delimiter(text, complete, source.delimiter) if sniff \
        else source.delimiter
    rows = _records(text, delimiter, complete, 6)
    raw = rows[0] if rows else []
    return delimiter, raw, any(any(cell.strip() for cell in r) for r in rows[1:])


def _header_names(line: bytes, delimiter: str) -> list[str]:
    """The raw names of a header record (as passed to ``on_header`` by :func:`_line_chunks`)."""
    return next(csv.reader(io.StringIO(line.decode("utf-8"), newline=""),
                           delimiter=delimiter), [])


def _clean_names(raw: list[str], where: str) -> Header:
    names, renamed = [], {}
    for i, name in enumerate(raw):
        clean = name.strip().lstrip("\ufeff").strip()
        if not clean:
            clean = f"unnamed_{i + 1}"
            renamed[clean] = name
        names.append(clean)
    seen: set[str] = set()
    dupes = []
    for name in names:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise InputError(f"{where}: duplicate column names {', '.join(map(quoted, dupes))}; "
                         "rename them so that every column has its own name")
    return Header(names, renamed)


def _parquet_schema(path: str) -> pa.Schema:
    try:
        if is_url(path):
            with _open(path) as fh:
                return pq.read_schema(fh)
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file ({_short(exc)}); check that "
                         "the file is complete") from None


def open_header(path: str) -> tuple[Source, Header, bytes | None]:
    """Resolve ``path`` and read its column names. Stdin is read whole here."""
    source = detect(path)
    data = _stdin_bytes() if source.is_stdin else None
    first = source.files[0]
    if source.format == "parquet":
        return source, _clean_names(list(_parquet_schema(first).names), first), None
    sniff = not source.path.lower().endswith((".tsv", ".tsv.gz"))
    delimiter, raw, has_rows = _csv_header(first, source, data, sniff)
    source = source.with_(delimiter=delimiter)
    header = _clean_names(raw, source.display)
    if not has_rows and len(source.files) == 1:
        raise InputError(f"{source.display} has a header row but no data rows; give a file "
                         "with data")
    return source, header, data


def _check_same_header(path: str, names: list[str], header: Header, source: Source) -> None:
    if names != header.names:
        have, expected = set(names), set(header.names)
        missing = [n for n in header.names if n not in have]
        extra = [n for n in names if n not in expected]
        what = (f"lacks {list_names(missing, 5)}" if missing else
                f"has extra {list_names(extra, 5)}" if extra else "orders them differently")
        raise InputError(f"{path}: its columns differ from {source.files[0]} ({what}); every "
                         f"file of {source.display} needs the same columns")


# -- CSV ---------------------------------------------------------------------------------------

def _csv_options(source: Source, header: Header, columns: list[str],
                 types: dict[str, pa.DataType], text: bool = False):
    bad_row: dict[str, object] = {}

    def on_invalid(row) -> str:
        bad_row.setdefault("row", row)
        return "error"

    # The text reaching Arrow is UTF-8 (_Decoder decides how the file's bytes become it).
    read_options = pacsv.ReadOptions(column_names=header.names, encoding="utf8",
                                     use_threads=False, block_size=1 << 30)
    # Each chunk is parsed as one Arrow block and ends at a record (_record_end), so quoted
    # line breaks parse without newlines_in_values, which only slows Arrow's block splitting.
    parse_options = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=False,
                                       invalid_row_handler=on_invalid)
    # Arrow matches include_columns against the header name by name (quadratic: minutes for
    # 20,000 columns); for wide files read every column and select afterwards instead.
    if len(header.names) > 1000 or len(columns) == len(header.names):
        columns = []
    if text:  # every cell exactly as written
        convert_options = pacsv.ConvertOptions(
            include_columns=columns, column_types={c: pa.string() for c in header.names},
            null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
        )
    else:
        convert_options = pacsv.ConvertOptions(
            include_columns=columns, column_types=types, null_values=NULL_VALUES,
            strings_can_be_null=True, true_values=["true", "True", "TRUE"],
            false_values=["false", "False", "FALSE"],
        )
    return read_options, parse_options, convert_options, bad_row


def _raw_blocks(path: str, compression: str | None, data: bytes | None, digest,
                size: int | None = None) -> Iterator[bytes]:
    """The text of one CSV file in blocks of UTF-8 (:class:`_Decoder`), hashing the stored
    bytes on the way."""
    shown = "<stdin>" if path == "-" else path
    stored = _stored_blocks(path, compression, data, digest, size or CSV_BLOCK)
    try:
        first = b""
        for block in stored:
            first += block
            if len(first) >= 4:
                break
        decoder = _Decoder(first, shown)
        if out := decoder.decode(first[decoder.bom:]):
            yield out
        for block in stored:
            if out := decoder.decode(block):
                yield out
        if out := decoder.decode(b"", final=True):
            yield out
    finally:
        stored.close()


def _stored_blocks(path: str, compression: str | None, data: bytes | None, digest,
                   size: int) -> Iterator[bytes]:
    """The decompressed bytes of one file in blocks, hashing the stored bytes on the way."""
    if data is not None:
        for i in range(0, len(data), size):
            yield data[i:i + size]
        return
    inflate = zlib.decompressobj(wbits=47) if compression == "gzip" else None
    with _open(path) as fh:
        while block := fh.read(size):
            if digest is not None:
                digest.update(block)
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


# The byte-order marks read, and the encoding each announces.
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# Windows-1252, the single-byte encoding of files that are not UTF-8 (a superset of Latin-1's
# printable characters: it has the euro sign and typographic quotes); its five unassigned
# bytes are read as Latin-1 reads them, as the WHATWG encoding standard does.
CP1252 = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
# Each byte as its part in UTF-8: L a lead byte of a multi-byte sequence, C a continuation
# byte, A anything else. A well-formed multi-byte sequence holds a lead byte followed by a
# continuation byte, so text without "LC" holds none (bytes.translate and find run at memory
# speed, where a regular expression for UTF-8 sequences takes 0.1 s per MiB).
_UTF8_ROLES = bytes(76 if 0xC2 <= b <= 0xF4 else 67 if 0x80 <= b <= 0xBF else 65
                    for b in range(256))


def _as_cp1252(exc: UnicodeDecodeError) -> tuple[str, int]:
    return "".join(CP1252[b] for b in exc.object[exc.start:exc.end]), exc.end


codecs.register_error("l1select-cp1252", _as_cp1252)


class _Decoder:
    """Turns the bytes of a CSV file into UTF-8, block by block: the one place where the
    encoding is decided.

    A byte-order mark decides it (UTF-8, UTF-16 LE or BE; the mark is dropped). Without one,
    text is read as UTF-8, and every byte that is not part of a well-formed UTF-8 sequence as
    Windows-1252: a Latin-1 or Windows-1252 file is read whole as such, wherever its first
    accented letter sits, and the result of a byte never depends on where blocks (or Dask
    partitions) are cut.
    """

    def __init__(self, head: bytes, shown: str):
        self.shown = shown
        self.encoding, self.bom = "utf-8", 0
        for mark, encoding in BOMS:
            if head.startswith(mark):
                self.encoding, self.bom = encoding, len(mark)
                break
        self._utf16 = (codecs.getincrementaldecoder(self.encoding)("strict")
                       if self.encoding.startswith("utf-16") else None)
        self._tail = b""
        self._done = 0  # stored bytes decoded so far, for the position of an error

    def decode(self, block: bytes, final: bool = False) -> bytes:
        if self._utf16 is not None:
            try:
                out = self._utf16.decode(block, final).encode("utf-8")
            except UnicodeError as exc:
                at = self._done + self.bom + getattr(exc, "start", 0)
                raise InputError(f"{self.shown}: not valid {self.encoding.upper()} text (near "
                                 f"byte {at:,}) although it starts with that byte-order mark; "
                                 "save it again as UTF-8 or UTF-16") from None
            self._done += len(block)
            return out
        buf = self._tail + block if self._tail else block
        cut = len(buf) if final else _complete(buf)
        buf, self._tail = buf[:cut], buf[cut:]
        return utf8_text(buf)


def utf8_text(buf: bytes) -> bytes:
    """``buf`` as UTF-8: unchanged when it is UTF-8, and each byte that is not part of a
    well-formed UTF-8 sequence read as Windows-1252. ``buf`` must not end inside a sequence
    (a piece of a file cut at a line end is fine)."""
    if buf.isascii():
        return buf
    try:
        buf.decode("utf-8")
        return buf
    except UnicodeDecodeError:
        pass
    if buf.translate(_UTF8_ROLES).find(b"LC") < 0:  # no UTF-8 at all: Windows-1252 (fast)
        return codecs.charmap_decode(buf, "strict", CP1252)[0].encode("utf-8")
    return buf.decode("utf-8", "l1select-cp1252").encode("utf-8")


def _complete(buf: bytes) -> int:
    """How much of ``buf`` to decode now: all of it, unless it ends with the start of a UTF-8
    sequence that the next block may complete."""
    for back in range(1, min(len(buf), 4) + 1):
        byte = buf[-back]
        if byte < 0x80:
            return len(buf)
        if byte >= 0xC0:  # a lead byte: is its sequence cut short?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(buf) - back if back < need else len(buf)
    return len(buf)


def _line_chunks(blocks, on_header=None):
    """Re-cut blocks at record ends, and drop the header record (passed to ``on_header``).

    CR, LF and CRLF all end a line; records end where the header's line ends do, outside a
    quoted cell. Chunks are memoryviews of the blocks (Arrow reads them without a copy).
    """
    carry = b""
    eol = b""  # the header's line end decides where records are cut
    for block in blocks:
        buf = carry + block if carry else block
        if not eol:
            end = _header_end(buf)
            if end < 0:
                carry = buf
                continue
            eol = b"\r" if buf[end:end + 1] == b"\r" else b"\n"
            if on_header is not None:
                on_header(bytes(buf[:end + 1]))
            buf = buf[end + 1:]
        cut = _record_end(buf, eol)
        if cut < 0:
            carry = buf
            continue
        carry = buf[cut + 1:]
        if cut > 0:
            yield memoryview(buf)[:cut + 1]
    if not eol and carry.strip() and on_header is not None:
        on_header(carry)
    elif eol and carry.strip():
        yield carry


def lf_splittable(path: str) -> bool:
    """Whether a CSV file can be read in byte ranges cut after a LF (as the Dask engine
    does): its lines end with LF or CRLF, it is not UTF-16, and its first 64 KiB have no
    quoted cell holding a line break (a range cannot tell such a break from a line end; one
    that shows up only later is still misread)."""
    try:
        with _open(path) as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False  # read whole, where the error is reported
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    end = _header_end(head)
    if end >= 0 and head[end:end + 1] == b"\r":
        return False
    quoted = False
    for m in _QUOTE_OR_EOL.finditer(head):
        if m.group() == b'"':
            quoted = not quoted
        elif quoted:
            return False
    return True


_QUOTE_OR_EOL = re.compile(rb'["\r\n]')


def _header_end(buf: bytes) -> int:
    """Where the header record's line end ends (its last byte), or -1 if ``buf`` does not
    hold all of it yet."""
    quoted = False
    for m in _QUOTE_OR_EOL.finditer(buf):
        i = m.start()
        ch = buf[i:i + 1]
        if ch == b'"':
            quoted = not quoted
        elif not quoted:
            if ch == b"\n":
                return i
            if i + 1 == len(buf):
                return -1  # a CR: a LF may follow in the next block
            return i + 1 if buf[i + 1:i + 2] == b"\n" else i
    return -1


def _record_end(buf: bytes, eol: bytes = b"\n") -> int:
    """The last line end of ``buf`` that closes a record: not one inside a quoted field (a
    text cell may hold line breaks). ``buf`` starts at a record; -1 when no record ends.

    ``eol`` is the file's line end: LF (also for CRLF) or CR. A CR is a record end only with
    the next byte known, so that CRLF is never cut in two.
    """
    if eol == b"\n":
        cut = buf.rfind(b"\n")
    else:
        cut = buf.rfind(b"\r", 0, len(buf) - 1)
        if cut >= 0 and buf[cut + 1:cut + 2] == b"\n":
            cut += 1
    if cut < 0 or b'"' not in buf:
        return cut
    # An odd number of quotes before a line end leaves a quoted field open there.
    quotes = buf.count(b'"', 0, cut)
    while cut >= 0 and quotes % 2:
        prev = buf.rfind(eol, 0, cut)
        quotes -= buf.count(b'"', prev + 1, cut)
        cut = prev
    return cut


def _first_types(source: Source, header: Header, columns: list[str], data: bytes | None,
                 ) -> dict[str, pa.DataType]:
    """Types inferred from the first block, widened so that later blocks keep to them:
    integers are read as float64 and all-empty columns as text."""
    head = next(_line_chunks(_raw_blocks(source.files[0], source.compression, data, None)), b"")
    ro, po, co, bad = _csv_options(source, header, columns, {})
    try:
        schema = pacsv.read_csv(pa.BufferReader(head), ro, po, co).schema if head else None
    except pa.ArrowInvalid as exc:
        raise _csv_error(source, source.files[0], exc, bad, data) from None
    # Every column gets an explicit type, so no later block can infer another one.
    types = {}
    for f in schema or []:
        if pa.types.is_integer(f.type):
            types[f.name] = pa.float64()
        elif pa.types.is_null(f.type):
            types[f.name] = pa.string()
        else:
            types[f.name] = f.type
    for name in columns:
        if name not in types:
            types[name] = pa.string()
    return types


def _ragged_line(path: str, source: Source, data: bytes | None, expected: int) -> int | None:
    """The file line of the first row without ``expected`` fields (on the error path only)."""
    try:
        blocks = _raw_blocks(path, source.compression, data, None)
        text = io.TextIOWrapper(io.BufferedReader(_IterReader(blocks)), encoding="utf-8",
                                errors="replace", newline="")
        reader = csv.reader(text, delimiter=source.delimiter)
        next(reader, None)
        for row in reader:
            if row and len(row) != expected:
                return reader.line_num
    except (OSError, csv.Error, EOFError, zlib.error, InputError):
        return None
    return None


class _IterReader(io.RawIOBase):
    """A readable file over an iterator of byte blocks."""

    def __init__(self, blocks):
        self._blocks = iter(blocks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._blocks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _csv_error(source: Source, path: str, exc: pa.ArrowInvalid, bad_row: dict,
               data: bytes | None = None) -> InputError:
    shown = "<stdin>" if path == "-" else path
    row = bad_row.get("row")
    if row is not None:
        number = _ragged_line(path, source, data, row.expected_columns)
        where = f"line {number}" if number else "a row"
        delim = "\\t" if source.delimiter == "\t" else source.delimiter
        return InputError(
            f"{shown}: {where} has {row.actual_columns} fields but the header has "
            f"{row.expected_columns}; fix the row or quote fields that contain '{delim}'"
        )
    return InputError(f"{shown}: cannot parse the CSV ({_short(exc)})")


def _retype_from(message: str, names: list[str], types: dict[str, pa.DataType]) -> Retype | None:
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


def _csv_batches(source: Source, header: Header, columns: list[str], data: bytes | None,
                 scan: Scan, overrides: dict[str, pa.DataType], text: bool):
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    types = {} if text else _first_types(source, header, columns, data)
    types.update(overrides)
    ro, po, co, bad = _csv_options(source, header, columns, types, text)
    names = header.names  # Arrow numbers columns in the file's order, read or not

    wanted = set(columns)
    ordered = [n for n in header.names if n in wanted]

    def parse(chunk: bytes) -> list[pa.RecordBatch]:
        table = pacsv.read_csv(pa.BufferReader(chunk), ro, po, co)
        if table.num_columns != len(ordered):
            table = table.select(ordered)
        return table.combine_chunks().to_batches(max_chunksize=table.num_rows or 1)

    digest = _ThreadedHash() if data is None else None
    start = 0
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="l1select-csv")

    def check_header(path: str):
        def check(line: bytes) -> None:
            if path == source.files[0]:
                return
            raw = _header_names(line, source.delimiter)
            _check_same_header(path, _clean_names(raw, path).names, header, source)
        return check

    path = source.files[0]
    try:
        try:
            # Each block should hold a few hundred rows at least, or the per-column cost of a
            # parse call dominates on wide files.
            size = max(CSV_BLOCK, ROWS_PER_BLOCK * sum(len(n) + 1 for n in header.names))
            for path in source.files:
                blocks = _raw_blocks(path, source.compression, data, digest, size)
                for chunk in _line_chunks(blocks, check_header(path)):
                    pending.append(pool.submit(parse, chunk))
                    if len(pending) < 3:
                        continue
                    for batch in pending.popleft().result():
                        yield batch, start
                        start += batch.num_rows
                while pending:  # finish this file before the next one's errors can show
                    for batch in pending.popleft().result():
                        yield batch, start
                        start += batch.num_rows
        except pa.ArrowInvalid as exc:
            retype = _retype_from(str(exc), names, types)
            if retype is not None:
                raise retype from None
            raise _csv_error(source, path, exc, bad, data) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: cannot read the file ({_short(exc)})") from None
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        if digest is not None:
            digest.close()
    scan.sha256 = digest.hexdigest() if digest is not None else None
    scan.n_rows = start


class _ThreadedHash:
    """A sha256 fed in order by one background thread (hashlib releases the GIL), so hashing
    the file overlaps the parsing instead of adding to it."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._hash = hashlib.sha256()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="l1select-hash")

    def update(self, block: bytes) -> None:
        self._pool.submit(self._hash.update, block)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


# -- Parquet -----------------------------------------------------------------------------------

def _parquet_file(path: str, digest, hashing: list) -> pq.ParquetFile:
    """Open one Parquet file; its bytes go into ``digest``, in a thread for a local file
    (hashlib releases the GIL, so hashing overlaps the decoding; joined by the caller)."""
    if is_url(path):
        with _open(path) as fh:
            data = fh.read()  # remote files are fetched whole: one transfer, hashed as it is
        digest.update(data)
        return pq.ParquetFile(pa.BufferReader(data), buffer_size=PARQUET_READ_BUFFER,
                          pre_buffer=False)
    import threading

    def hash_file() -> None:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)

    for t in hashing:  # files are hashed in order: one digest over all of them
        t.join()
    thread = threading.Thread(target=hash_file, daemon=True)
    thread.start()
    hashing.append(thread)
    return pq.ParquetFile(path, buffer_size=PARQUET_READ_BUFFER,
                          pre_buffer=False)


def _parquet_batches(source: Source, header: Header, columns: list[str], scan: Scan):
    digest = hashlib.sha256()
    raw_to_clean = {raw: clean for clean, raw in header.renamed.items()}
    raw_columns = [header.renamed.get(c, c) for c in columns]
    rows = max(1024, PARQUET_BATCH_VALUES // max(len(raw_columns), 1))
    start = 0
    hashing: list = []
    for path in source.files:
        try:
            pf = _parquet_file(path, digest, hashing)
            names = [raw_to_clean.get(n, n) for n in pf.schema_arrow.names]
            if path != source.files[0]:
                _check_same_header(path, _clean_names(names, path).names, header, source)
            for i in range(pf.metadata.num_row_groups):
                # A group larger than a batch is decoded batch by batch (only a batch and a
                # read window per column are held); a smaller one is read whole, which
                # spares a wide file one batch reader per column.
                if pf.metadata.row_group(i).num_rows > rows:
                    parts = pf.iter_batches(batch_size=rows, row_groups=[i],
                                            columns=raw_columns, use_threads=True)
                else:
                    parts = pf.read_row_group(i, columns=raw_columns,
                                              use_threads=True).to_batches(max_chunksize=rows)
                for batch in parts:
                    if raw_to_clean:
                        batch = batch.rename_columns([raw_to_clean.get(n, n)
                                                      for n in batch.schema.names])
                    yield batch, start
                    start += batch.num_rows
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise InputError(f"{path} is not a readable Parquet file ({_short(exc)}); check "
                             "that the file is complete") from None
    for t in hashing:
        t.join()
    scan.sha256 = digest.hexdigest()
    scan.n_rows = start


# -- the two ways in ---------------------------------------------------------------------------

def batches(source: Source, header: Header, columns: list[str], data: bytes | None,
            scan: Scan, overrides: dict[str, pa.DataType] | None = None,
            text: bool = False) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Yield ``(record_batch, first_row_index)`` over the source, in order, in small blocks.

    CSV is cut at line ends into blocks that two threads parse while the caller works on the
    previous ones; every block is parsed with the column types of the first, widened (see
    :func:`_first_types`). Raises :class:`Retype` when a column meets a value of another type
    later on; the caller reads again with ``overrides`` extended (:func:`read` does). With
    ``text``, CSV cells come as the exact strings written (no types, no missing values).
    """
    if source.format == "parquet":
        yield from _parquet_batches(source, header, columns, scan)
    else:
        yield from _csv_batches(source, header, columns, data, scan, overrides or {}, text)


def read(source: Source, header: Header, columns: list[str],
         data: bytes | None = None) -> ReadResult:
    """Read ``columns`` of the whole source into one in-memory table."""

    def one_pass(overrides):
        scan = Scan()
        parts = [b for b, _ in batches(source, header, columns, data, scan, overrides)]
        if parts:
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
            return sum(pq.ParquetFile(f).metadata.num_rows for f in source.files)
        if data is not None:
            return max(_line_ends(data) - 1, 0)
        if any(is_url(f) for f in source.files):
            return None
        total = 0
        for path in source.files:
            size = os.path.getsize(path)
            head, _ = _head_bytes(path, source.compression, None)
            if source.compression == "gzip":
                with open(path, "rb") as fh:
                    fh.seek(-4, os.SEEK_END)
                    size = int.from_bytes(fh.read(4), "little")  # uncompressed size mod 2**32
            lines = _line_ends(head)
            if lines < 2:
                continue
            total += int(size / (len(head) / lines)) - 1
        return total
    except (OSError, pa.ArrowInvalid):
        return None


# -- writing -----------------------------------------------------------------------------------

class TableWriter:
    """Writes record batches to CSV (a file or stdout) or Parquet, chosen by the file name.

    A file is written atomically (:class:`l1select.files.PendingFile`, as every output file):
    a failed or interrupted run never leaves a half-written file; :meth:`abort` removes it.
    CSV cells are written with Python's csv module: strings as they are (quoted only when they
    must be), floats at full precision.
    """

    def __init__(self, output: str | None):
        self.output = None if output in (None, "-") else output
        self.format = "csv"
        if self.output is not None:
            lower = self.output.lower()
            if lower.endswith(PARQUET_SUFFIXES):
                self.format = "parquet"
            elif not lower.endswith((".csv", ".tsv", ".txt")):
                raise ConfigError(f"--output {self.output}: give a .csv, .tsv or .parquet name")
            check_folder(self.output)
        self._file: PendingFile | None = None
        self._fh = None
        self._csv = None
        self._pq = None
        self.rows = 0

    def _open(self, schema: pa.Schema) -> None:
        if self.output is not None:
            self._file = PendingFile(self.output)
        if self.format == "parquet":
            self._pq = pq.ParquetWriter(self._file.tmp, schema)
            return
        if self._file is None:
            self._fh = sys.stdout
        else:
            self._fh = open(self._file.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        delim = "\t" if (self.output or "").lower().endswith(".tsv") else ","
        self._delim = delim
        self._csv = csv.writer(self._fh, delimiter=delim, lineterminator="\n")
        self._csv.writerow(schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._csv is None and self._pq is None:
            self._open(batch.schema)
        self.rows += batch.num_rows
        if self._pq is not None:
            self._pq.write_batch(batch)
            return
        cols = [_cells(c) for c in batch.columns]
        rows = zip(*cols, strict=True)
        if not any(_holds_cr(c) for c in batch.columns):
            self._csv.writerows(rows)
            return
        # Python 3.11's csv writer leaves a cell with a CR but no LF unquoted, and a reader
        # would end the record there: such rows are written here.
        for row in rows:
            if any(isinstance(v, str) and "\r" in v for v in row):
                self._fh.write(self._delim.join(_quoted(v, self._delim) for v in row) + "\n")
            else:
                self._csv.writerow(row)

    def close(self, schema: pa.Schema | None = None) -> None:
        """Finish the output (an empty one gets its header), and move it into place."""
        if self._csv is None and self._pq is None and schema is not None:
            self._open(schema)
        if self._pq is not None:
            self._pq.close()
        elif self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        elif self._fh is sys.stdout:
            sys.stdout.flush()
        if self._file is not None:
            self._file.commit()
            self._file = None

    def restart(self) -> None:
        """Throw away what was written (a column changed type mid-file): start again."""
        opened = self._csv is not None or self._pq is not None
        if opened and self.output is None:
            raise InputError("a column changed type after rows went to stdout; write to a "
                             "file with --output, or fix the column")
        self.abort()
        self._fh = self._csv = self._pq = None
        self.rows = 0

    def abort(self) -> None:
        try:
            if self._pq is not None:
                self._pq.close()
            if self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
        finally:
            if self._file is not None:
                self._file.discard()
            self._file = None


def _holds_cr(column: pa.Array) -> bool:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    import pyarrow.compute as pc

    return bool(pc.any(pc.match_substring(column, "\r")).as_py())


def _quoted(value, delim: str) -> str:
    """A CSV cell as the csv module writes it, quoted also when it holds a CR."""
    if value is None:
        return ""
    text = str(value)
    if any(ch in text for ch in (delim, '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def _cells(column: pa.Array) -> list:
    """A column as CSV cells: None for missing, repr for floats (shortest exact form)."""
    values = column.to_pylist()
    if pa.types.is_floating(column.type):
        return [None if v is None else ("" if v != v else repr(v)) for v in values]
    if pa.types.is_boolean(column.type):
        return [None if v is None else ("true" if v else "false") for v in values]
    return values

"""CSV: header sniffing, decoding to UTF-8, cutting into blocks at record ends, and parsing
them with Arrow into record batches of the needed columns.

:func:`read_range` is the one loop over a CSV file's rows: the local engines read a source
through :func:`read_batches` (every file whole, in order, two threads parsing, the bytes
hashed), and the Dask engine calls it on each partition (a byte range of a file, cut at line
ends, with the column types of the first block computed once by :func:`first_types`).
Nothing here interprets values beyond what Arrow infers; ``prepare`` decides what a column
means.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.csv as pacsv

from l1select.errors import InputError
from l1select.io.sources import (
    Header,
    Scan,
    Source,
    check_same_header,
    clean_names,
    open_binary,
    short_error,
)

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
INCLUDE_COMPARISONS = 1_000_000
ROWS_PER_BLOCK = 2048


class Retype(Exception):
    """A column's values changed type after the first block: read again with ``column`` as
    ``type`` (raised by :func:`read_range`, handled by the caller: see
    :func:`l1select.io.with_retypes`)."""

    def __init__(self, column: str, type_: pa.DataType):
        super().__init__(column)
        self.column = column
        self.type = type_


def head_bytes(path: str, compression: str | None, data: bytes | None) -> tuple[bytes, bool]:
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
            lines += line_ends(block)
            if size >= SNIFF_BYTES and lines > 6 or size >= 1 << 26:
                return b"".join(out), False
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read the file ({short_error(exc)})") from None
    finally:
        blocks.close()
    return b"".join(out), True


def line_ends(buf: bytes) -> int:
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


def read_header(path: str, source: Source, data: bytes | None, sniff: bool
                ) -> tuple[str, list[str], bool]:
    """(delimiter, raw header names, has data rows) of one CSV file."""
    head, complete = head_bytes(path, source.compression, data)
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
    # Arrow matches include_columns against the header name by name (columns x names
    # comparisons: minutes for 20,000 of 20,000); past a million comparisons every column is
    # read and the wanted ones selected afterwards instead. A few columns of a wide file (the
    # family check's target) are still named: converting only them is much cheaper (500 x
    # 20,000: 2.4 s -> 0.4 s).
    if len(columns) * len(header.names) > INCLUDE_COMPARISONS or \
            len(columns) == len(header.names):
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
    with open_binary(path) as fh:
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
        with open_binary(path) as fh:
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


def first_types(source: Source, header: Header, columns: list[str], data: bytes | None,
                 ) -> dict[str, pa.DataType]:
    """Types inferred from the first block, widened so that later blocks keep to them:
    integers are read as float64 and all-empty columns as text."""
    head = next(_line_chunks(_raw_blocks(source.files[0], source.compression, data, None)), b"")
    types = _numbers_first(source, header, columns, head) \
        if head and len(columns) > GUESS_NUMBERS_COLUMNS else None
    if types is None:
        ro, po, co, bad = _csv_options(source, header, columns, {})
        try:
            schema = pacsv.read_csv(pa.BufferReader(head), ro, po, co).schema if head else None
        except pa.ArrowInvalid as exc:
            raise _csv_error(source, source.files[0], exc, bad, data) from None
        types = {f.name: _widened(f.type) for f in schema or []}
    # Every column gets an explicit type, so no later block can infer another one.
    for name in columns:
        if name not in types:
            types[name] = pa.string()
    return types


def _widened(t: pa.DataType) -> pa.DataType:
    """An inferred type as every block reads it: integers as float64, all-empty as text."""
    if pa.types.is_integer(t):
        return pa.float64()
    if pa.types.is_null(t):
        return pa.string()
    return t


# Arrow's type inference costs about 50 us a column and block (a first block of 22 rows x
# 20,000 columns: 1.0 s; the same block parsed as float64: 0.27 s). A wide first block is
# therefore parsed with every column as float64 first; a column that is not all numbers fails
# that parse and is left to Arrow's inference, one parse each, at most GUESS_NUMBERS_TRIES
# times (then every column is inferred, as for a narrow file).
GUESS_NUMBERS_COLUMNS = 500
GUESS_NUMBERS_TRIES = 4


def _numbers_first(source: Source, header: Header, columns: list[str], head: bytes
                   ) -> dict[str, pa.DataType] | None:
    """The types :func:`first_types` infers, found by parsing ``head`` with every column as
    float64 and inferring only the columns that fail; None when more than
    ``GUESS_NUMBERS_TRIES`` do, or the head fails otherwise (the caller infers as usual, and
    reports what is wrong). Float64 reads exactly the cells inference reads as integers or
    floats (those end up float64 either way); a column with no value in the head is text,
    as inference's null type widens to."""
    inferred: set[str] = set()
    while True:
        guess = {n: pa.float64() for n in columns if n not in inferred}
        ro, po, co, _ = _csv_options(source, header, columns, guess)
        try:
            table = pacsv.read_csv(pa.BufferReader(head), ro, po, co)
            break
        except pa.ArrowInvalid as exc:
            retype = _retype_from(str(exc), header.names, guess)
            if retype is None or retype.column in inferred \
                    or len(inferred) == GUESS_NUMBERS_TRIES:
                return None
            inferred.add(retype.column)
    types = {}
    for name, field in zip(table.column_names, table.schema, strict=True):
        if name in inferred:
            types[name] = _widened(field.type)
        elif table.column(name).null_count == table.num_rows:
            types[name] = pa.string()
        else:
            types[name] = pa.float64()
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
    return InputError(f"{shown}: cannot parse the CSV ({short_error(exc)})")


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


def _block_size(header: Header) -> int:
    """Bytes per parsed block: at least CSV_BLOCK, and about ROWS_PER_BLOCK rows judged from
    the header's width (a parse call has a cost per column: on wide files blocks of a few rows
    would spend more on setup than on parsing)."""
    return max(CSV_BLOCK, ROWS_PER_BLOCK * sum(len(n) + 1 for n in header.names))


def _range_bytes(path: str, begin: int, end: int) -> bytes:
    """The lines of a file that start in the byte range [begin, end), whole."""
    with open_binary(path) as fh:
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


def _split_lines(body: bytes, size: int) -> Iterator[bytes]:
    """``body`` in pieces of about ``size`` bytes, cut at line ends."""
    i = 0
    while i < len(body):
        j = body.rfind(b"\n", i, i + size)
        j = len(body) if i + size >= len(body) or j < 0 else j + 1
        yield body[i:j]
        i = j


def _chunks(source: Source, header: Header, path: str, begin: int, end: int | None,
            data: bytes | None, digest, size: int) -> Iterator[bytes]:
    """The records of one file of ``source`` (``end`` None), or of those of its lines that
    start in the byte range [begin, end), in chunks of about ``size`` bytes cut at record ends;
    the header record is dropped, and checked against ``header`` in a later file."""

    def check(line: bytes) -> None:
        if path == source.files[0]:
            return
        raw = _header_names(line, source.delimiter)
        check_same_header(path, clean_names(raw, path).names, header, source)

    if end is None:  # the whole file (stdin, or compressed: no seeking)
        blocks = _raw_blocks(path, source.compression, data, digest, size)
        try:
            yield from _line_chunks(blocks, check)
        finally:
            blocks.close()
        return
    # A range starts and ends at a line end, where no UTF-8 sequence is cut: decoded on its
    # own, it reads as in the whole file (see _Decoder).
    body = utf8_text(_range_bytes(path, begin, end))
    if begin == 0:
        body = body.removeprefix(BOMS[0][0])
        if body.strip():
            nl = _header_end(body)
            check(body if nl < 0 else body[:nl + 1])
            body = b"" if nl < 0 else body[nl + 1:]
    for piece in _split_lines(body, size):
        if piece.strip():
            yield piece


def read_range(source: Source, header: Header, columns: list[str],
               types: dict[str, pa.DataType], path: str, begin: int = 0,
               end: int | None = None, data: bytes | None = None, digest=None,
               text: bool = False, threads: bool = False) -> Iterator[pa.RecordBatch]:
    """The record batches of ``columns`` of one CSV file of ``source``, in order: the whole
    file (``end`` None; ``data``: the bytes of stdin), or the lines that start in its byte
    range [begin, end) (for a file :func:`lf_splittable` allows).

    Every block is parsed with ``types`` (from :func:`first_types`, plus the overrides of
    earlier passes); a column that meets a value of another type raises :class:`Retype`.
    With ``text`` every cell comes as the exact string written (``types`` unused). With
    ``digest`` the stored bytes of a whole file go into it. With ``threads``, two threads
    parse the next blocks while the caller works on the previous ones.
    """
    ro, po, co, bad = _csv_options(source, header, columns, types, text)
    wanted = set(columns)
    ordered = [n for n in header.names if n in wanted]

    def parse(chunk: bytes) -> list[pa.RecordBatch]:
        table = pacsv.read_csv(pa.BufferReader(chunk), ro, po, co)
        if table.column_names != ordered:  # the header's order, whichever way Arrow read them
            table = table.select(ordered)
        return table.combine_chunks().to_batches(max_chunksize=table.num_rows or 1)

    chunks = _chunks(source, header, path, begin, end, data, digest, _block_size(header))
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="l1select-csv") \
        if threads else None
    try:
        try:
            for chunk in chunks:
                if pool is None:
                    yield from parse(chunk)
                    continue
                pending.append(pool.submit(parse, chunk))
                if len(pending) >= 3:  # at most three blocks in flight: memory stays small
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        except pa.ArrowInvalid as exc:
            # Arrow numbers columns in the file's order, read or not.
            retype = _retype_from(str(exc), header.names, types)
            if retype is not None:
                raise retype from None
            raise _csv_error(source, path, exc, bad, data) from None
        except (OSError, EOFError, zlib.error) as exc:
            shown = "<stdin>" if path == "-" else path
            raise InputError(f"{shown}: cannot read the file ({short_error(exc)})") from None
    finally:
        chunks.close()
        if pool is not None:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def read_batches(source: Source, header: Header, columns: list[str], data: bytes | None,
                 scan: Scan, overrides: dict[str, pa.DataType], text: bool,
                 hashed: bool = True) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``(record_batch, first_row_index)`` over every file of ``source`` in order (each file
    finished before the next one's errors can show); fills ``scan`` at the end (the sha256 of
    the stored bytes; None for stdin, or without ``hashed``)."""
    types = {} if text else first_types(source, header, columns, data)
    types.update(overrides)
    digest = _ThreadedHash() if data is None and hashed else None
    start = 0
    try:
        for path in source.files:
            for batch in read_range(source, header, columns, types, path, data=data,
                                    digest=digest, text=text, threads=True):
                yield batch, start
                start += batch.num_rows
    finally:
        if digest is not None:
            digest.close()
    scan.sha256 = digest.hexdigest() if digest is not None else None
    scan.n_rows = start


class _ThreadedHash:
    """A sha256 fed in order by one background thread (hashlib releases the GIL), so hashing
    the file overlaps the parsing instead of adding to it."""

    def __init__(self):
        self._hash = hashlib.sha256()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="l1select-hash")

    def update(self, block: bytes) -> None:
        self._pool.submit(self._hash.update, block)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()

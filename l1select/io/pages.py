"""Parquet column chunks decoded page by page, for row groups too long to read whole.

Arrow's batch reader holds, for every column it reads, the column chunk's dictionary decoded
(up to 1 MiB), a decompressed page and read buffers until the row group ends: on a one-group
1M x 51 file of doubles, 145 MiB before a batch exists. Here a column holds its dictionary only
while its pages are dictionary-encoded (Arrow's writer falls back to plain pages once the
dictionary reaches 1 MiB, and the dictionary is dropped at the first plain page; it is read
again should a dictionary-encoded page follow), and one page's values (a page is commonly
20,000 rows or 1 MiB). Each batch is copied out of the pages into arrays of its own, on a
thread one batch ahead of the caller (:func:`read_group`).

What is decoded here: flat columns (no nesting or repetition; required or optional) of
doubles, floats and 32/64-bit signed integers without another logical type, in pages of
format 1 or 2, plain, dictionary-encoded or byte-stream-split (``PLAIN``,
``PLAIN_DICTIONARY``, ``RLE_DICTIONARY``, ``BYTE_STREAM_SPLIT``; definition levels ``RLE``,
the absent repetition levels of parquet-mr's files listed as ``BIT_PACKED``), uncompressed
or compressed with a codec Arrow has (Snappy, gzip, zstd, Brotli, raw LZ4). :func:`plan`
answers None for any other column, for definition levels in the deprecated ``BIT_PACKED``
encoding and where there is no ``os.pread``; the caller then reads the group with Arrow's
reader.

The page headers are Thrift structs in the compact protocol (parquet-format's
``parquet.thrift``); levels and dictionary indices use the RLE/bit-packed hybrid encoding.
A page that does not decode as its header says raises :class:`PageError`.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Physical type -> (Arrow type, numpy dtype): a column is decoded here only when the file's
# Arrow schema gives it exactly this type (a logical type such as a date, a timestamp or a
# small or unsigned integer maps to another Arrow type, and is left to Arrow).
_TYPES = {
    "DOUBLE": (pa.float64(), np.dtype("<f8")),
    "FLOAT": (pa.float32(), np.dtype("<f4")),
    "INT32": (pa.int32(), np.dtype("<i4")),
    "INT64": (pa.int64(), np.dtype("<i8")),
}
# Column chunk codecs as pyarrow's metadata names them, and Arrow's codec for each (None:
# stored uncompressed). pyarrow calls Parquet's LZ4_RAW "LZ4"; Parquet's older LZ4, in
# Hadoop's framing ("LZ4_HADOOP"), is left to Arrow.
_CODECS = {"UNCOMPRESSED": None, "SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd",
           "BROTLI": "brotli", "LZ4": "lz4_raw", "LZ4_RAW": "lz4_raw"}
# BIT_PACKED: format-1 pages from parquet-mr (Spark, Hive) list it for their absent
# repetition levels. Definition levels in it (old writers) are left to Arrow: the format
# packs them most significant bit first, Arrow reads them least significant first
# (apache/arrow#42368), and l1select reads a file one way whatever its row groups.
_ENCODINGS = {"PLAIN", "RLE", "BIT_PACKED", "PLAIN_DICTIONARY", "RLE_DICTIONARY",
              "BYTE_STREAM_SPLIT"}

# parquet.thrift's enums.
_DATA_PAGE, _INDEX_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 1, 2, 3
_PLAIN, _PLAIN_DICTIONARY, _RLE, _BIT_PACKED, _RLE_DICTIONARY = 0, 2, 3, 4, 8
_BYTE_STREAM_SPLIT = 9

# Bytes read for a page header, more when it is longer (statistics of long values).
_HEADER_READ = 256
_HEADER_MAX = 16 << 20
# A page header's structs nest three deep (the header, a page kind's header, statistics): a
# damaged one is refused past this depth, before Python's recursion limit.
_NESTING = 16


class PageError(ValueError):
    """A column chunk that does not decode as its metadata and page headers say."""


@dataclass(frozen=True)
class ChunkPlan:
    """Where one column chunk of a row group lies in the file, and how to decode it."""

    name: str
    arrow_type: pa.DataType
    dtype: np.dtype
    optional: bool
    codec: str | None
    start: int
    end: int


def plan(pf: pq.ParquetFile, path: str, group: int,
         columns: Sequence[str]) -> list[ChunkPlan] | None:
    """How to decode ``columns`` of row group ``group`` of the local file ``path`` (open as
    ``pf``) here, or None when any of them is not a kind this module decodes (see the
    module's docstring)."""
    md, schema = pf.metadata, pf.schema_arrow
    if not hasattr(os, "pread"):
        return None  # Windows: the pages are read at offsets, without a shared position
    if md.num_columns != len(schema.names) or len(set(schema.names)) != len(schema.names):
        return None  # nested columns, or names that do not say which column is meant
    rg = md.row_group(group)
    plans = []
    for name in columns:
        j = schema.get_field_index(name)
        if j < 0:
            return None
        leaf, chunk = md.schema.column(j), rg.column(j)
        kind = _TYPES.get(leaf.physical_type)
        codec = _CODECS.get(chunk.compression, "-")
        if (kind is None or schema.field(j).type != kind[0] or leaf.max_repetition_level != 0
                or leaf.max_definition_level > 1 or codec == "-"
                or (codec is not None and not pa.Codec.is_available(codec))
                or not set(chunk.encodings) <= _ENCODINGS or chunk.file_path):
            return None
        start = chunk.data_page_offset
        if chunk.has_dictionary_page and 0 < (chunk.dictionary_page_offset or 0) < start:
            start = chunk.dictionary_page_offset
        plans.append(ChunkPlan(name, kind[0], kind[1], leaf.max_definition_level == 1, codec,
                               start, start + chunk.total_compressed_size))
    if any(p.optional for p in plans) and _levels_bit_packed(path, plans, rg.num_rows):
        return None
    return plans


def _levels_bit_packed(path: str, plans: list[ChunkPlan], n_rows: int) -> bool:
    """Whether any optional column's first data page has BIT_PACKED definition levels."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return any(_Chunk(fd, size, p, n_rows).levels_bit_packed()
                   for p in plans if p.optional)
    finally:
        os.close(fd)


def read_group(path: str, schema: pa.Schema, plans: list[ChunkPlan], n_rows: int,
               batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The row group's ``n_rows`` rows of the planned columns, ``batch_rows`` at a time,
    decoded on a thread one batch ahead of the caller."""
    return _ahead(_decode_group(path, schema, plans, n_rows, batch_rows))


def _ahead(items: Iterator) -> Iterator:
    """``items``, produced on a thread while the caller works on the one before (the thread
    stops when the caller does)."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def give(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not give((item, None)):
                    return
                del item
            give((None, None))
        except BaseException as exc:  # raised again in the caller's thread
            give((None, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="l1select-parquet-pages", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = handoff.get()
            if exc is not None:
                raise exc
            if item is None:
                return
            yield item
            del item
    finally:
        stop.set()
        thread.join()


def _decode_group(path: str, schema: pa.Schema, plans: list[ChunkPlan], n_rows: int,
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    fields = pa.schema([schema.field(p.name) for p in plans], metadata=schema.metadata)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks = [_Chunk(fd, size, p, n_rows) for p in plans]
        for first in range(0, n_rows, batch_rows):
            n = min(batch_rows, n_rows - first)
            yield pa.RecordBatch.from_arrays([c.take(n) for c in chunks], schema=fields)
        for c in chunks:
            c.finish()
    finally:
        os.close(fd)


class _Chunk:
    """One column chunk, read page by page as its rows are taken."""

    def __init__(self, fd: int, file_size: int, plan: ChunkPlan, n_rows: int):
        if not 0 <= plan.start <= plan.end <= file_size:
            raise PageError(f"column {plan.name!r} lies outside the file")
        self.fd, self.plan = fd, plan
        self.n_rows = n_rows
        self.unpaged = n_rows  # the group's rows in no page read yet
        self.codec = pa.Codec(plan.codec) if plan.codec else None
        self.pos = plan.start
        self.dictionary: np.ndarray | None = None
        self.dictionary_at: int | None = None  # where the dictionary page starts
        # The current page: its values one per row, or (a dictionary-encoded page without
        # nulls) its dictionary indices, one per row; its rows' validity (None: all valid).
        self.values: np.ndarray | None = None
        self.index: np.ndarray | None = None
        self.valid: np.ndarray | None = None
        self.rows = 0  # the current page's rows
        self.at = 0  # the next row of the current page

    def take(self, n: int) -> pa.Array:
        """The next ``n`` rows, as an Arrow array that owns its buffers."""
        out = np.empty(n, self.plan.dtype)
        valid = None
        filled = 0
        while filled < n:
            if self.at == self.rows:
                self._next_page()
                continue
            k = min(n - filled, self.rows - self.at)
            if self.index is not None:
                # The indices are checked against the dictionary's size: no need to clip.
                np.take(self.dictionary, self.index[self.at:self.at + k],
                        out=out[filled:filled + k], mode="clip")
            else:
                out[filled:filled + k] = self.values[self.at:self.at + k]
            if self.valid is not None:
                if valid is None:
                    valid = np.ones(n, bool)
                valid[filled:filled + k] = self.valid[self.at:self.at + k]
            filled += k
            self.at += k
        if valid is None:
            return pa.Array.from_buffers(self.plan.arrow_type, n, [None, pa.py_buffer(out)])
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.Array.from_buffers(self.plan.arrow_type, n, [bitmap, pa.py_buffer(out)],
                                     null_count=n - int(np.count_nonzero(valid)))

    def finish(self) -> None:
        """Check that the chunk holds no rows beyond the row group's."""
        more = PageError(f"column {self.plan.name!r} has more values than its row group's rows")
        if self.at < self.rows:
            raise more
        while self.pos < self.plan.end:
            header, _ = self._read_page()  # its size check refuses any page with rows left
            info = header.get(8 if header.get(1) == _DATA_PAGE_V2 else 5)
            if isinstance(info, dict) and info.get(1):
                raise more

    def _next_page(self) -> None:
        """Decode the next data page (reading a dictionary page first, if one comes)."""
        while True:
            if self.pos >= self.plan.end:
                raise PageError(f"column {self.plan.name!r} ends before its row group's rows")
            at = self.pos
            header, body = self._read_page()
            kind = header.get(1)
            if kind == _DICTIONARY_PAGE:
                self._dictionary(header, body, at)
            elif kind in (_DATA_PAGE, _DATA_PAGE_V2):
                self.values = self.index = self.valid = None
                self._data(header, body)
                self.at = 0
                if self.rows:
                    return
            elif kind != _INDEX_PAGE:
                raise PageError(f"column {self.plan.name!r} has a page of unknown type {kind}")

    def _read_page(self) -> tuple[dict, bytes]:
        """The page header at ``self.pos`` and the page's stored bytes; moves past them."""
        header, start = self._read_header()
        stored = self.pos - start
        body = os.pread(self.fd, stored, start)
        if len(body) != stored:
            raise PageError(f"column {self.plan.name!r} ends inside a page")
        return header, body

    def _read_header(self) -> tuple[dict, int]:
        """The page header at ``self.pos`` and where the page's stored bytes start; moves
        past the page."""
        want = _HEADER_READ
        while True:
            head = os.pread(self.fd, min(want, self.plan.end - self.pos), self.pos)
            try:
                header, used = _struct(head, 0)
                break
            except IndexError:
                if len(head) < want or want >= _HEADER_MAX:
                    raise PageError(f"column {self.plan.name!r} ends inside a page "
                                    "header") from None
                want *= 4
        stored = header.get(3)
        if not isinstance(stored, int) or stored < 0 or not isinstance(header.get(2), int):
            raise PageError(f"column {self.plan.name!r} has a page header without its sizes")
        self._check_size(header)
        start = self.pos + used
        if start + stored > self.plan.end:
            raise PageError(f"column {self.plan.name!r} has a page past the chunk's end")
        self.pos = start + stored
        return header, start

    def levels_bit_packed(self) -> bool:
        """Whether the chunk's first data page has definition levels in the deprecated
        BIT_PACKED encoding (read from the headers alone; moves past the pages read)."""
        while self.pos < self.plan.end:
            header, _ = self._read_header()
            if header.get(1) == _DATA_PAGE:
                return self.plan.optional and header[5].get(3, _RLE) == _BIT_PACKED
            if header.get(1) == _DATA_PAGE_V2:
                return False
        return False

    def _check_size(self, header: dict) -> None:
        """Refuse a page whose decoded size cannot be right, before allocating it: a data
        page holds at most the group's rows not yet read (values, levels and run headers
        take under 16 bytes a row), a dictionary page at most one entry a row of the group."""
        kind = header.get(1)
        info = header.get({_DICTIONARY_PAGE: 7, _DATA_PAGE: 5, _DATA_PAGE_V2: 8}.get(kind, 0))
        if not isinstance(info, dict):
            if kind == _INDEX_PAGE:
                return
            raise PageError(f"column {self.plan.name!r} has a page header without its kind's "
                            "details")
        count = info.get(1)
        most = max(self.n_rows if kind == _DICTIONARY_PAGE else self.unpaged, 1024)
        if not isinstance(count, int) or not 0 <= count <= most:
            raise PageError(f"column {self.plan.name!r} has a page of more values than its "
                            "row group's rows")
        per_row = self.plan.dtype.itemsize if kind == _DICTIONARY_PAGE else 16
        if not 0 <= header[2] <= 1024 + count * per_row:
            raise PageError(f"column {self.plan.name!r} has a page of an impossible size")

    def _decompress(self, data: bytes | memoryview, size: int):
        if self.codec is None:
            if len(data) != size:
                raise PageError(f"column {self.plan.name!r} has a page of the wrong size")
            return data
        try:
            return self.codec.decompress(data, decompressed_size=size)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise PageError(f"column {self.plan.name!r} has a page that does not decompress "
                            f"({exc})") from None

    def _dictionary(self, header: dict, body: bytes, at: int) -> None:
        info = header.get(7) or {}
        count = info.get(1)
        if info.get(2, _PLAIN) not in (_PLAIN, _PLAIN_DICTIONARY) or not isinstance(count, int):
            raise PageError(f"column {self.plan.name!r} has a dictionary page this reader "
                            "does not decode")
        raw = self._decompress(body, header[2])
        self.dictionary = self._plain(raw, count)
        self.dictionary_at = at

    def _plain(self, raw, count: int) -> np.ndarray:
        if count < 0 or len(raw) < count * self.plan.dtype.itemsize:
            raise PageError(f"column {self.plan.name!r} has a page shorter than its values")
        return np.frombuffer(raw, self.plan.dtype, count=count)

    def _data(self, header: dict, body: bytes) -> None:
        """Decode a data page: its values one per row (zero where null) or indices, and its
        validity."""
        name = self.plan.name
        v2 = header[1] == _DATA_PAGE_V2
        info = header.get(8 if v2 else 5)
        if not isinstance(info, dict) or not isinstance(info.get(1), int) or info[1] < 0:
            raise PageError(f"column {name!r} has a data page header without its row count")
        n = self.rows = info[1]
        if n > self.unpaged:
            raise PageError(f"column {name!r} has more values than its row group's rows")
        self.unpaged -= n
        encoding = info.get(4 if v2 else 2)
        if v2:
            def_len, rep_len = info.get(5, 0), info.get(6, 0)
            if rep_len or not 0 <= def_len <= len(body):
                raise PageError(f"column {name!r} has a data page with bad level sizes")
            levels_raw = memoryview(body)[:def_len]
            rest = memoryview(body)[def_len:]
            raw = (self._decompress(rest, header[2] - def_len) if info.get(7, True)
                   else rest)
            values_at = 0
        else:
            raw = self._decompress(body, header[2])
            if self.plan.optional:
                level_encoding = info.get(3, _RLE)
                if level_encoding != _RLE:
                    raise PageError(f"column {name!r} has levels in encoding {level_encoding}, "
                                    "which this reader does not decode")
                head = bytes(memoryview(raw)[:4])
                if len(head) < 4:
                    raise PageError(f"column {name!r} has a data page without its levels")
                def_len = int.from_bytes(head, "little")
                levels_raw = memoryview(raw)[4:4 + def_len]
                values_at = 4 + def_len
            else:
                values_at = 0
        valid = None
        n_valid = n
        if self.plan.optional:
            levels = hybrid(levels_raw, 1, n, 2, name)
            n_valid = int(np.count_nonzero(levels))
            if n_valid < n:
                valid = levels.astype(bool)
        values_raw = memoryview(raw)[values_at:]
        if encoding == _PLAIN:
            values = self._plain(values_raw, n_valid)
            self.dictionary = None  # a writer's fallback: no dictionary page follows
        elif encoding == _BYTE_STREAM_SPLIT:
            # The values' k-th bytes, then their (k+1)-th, ...: put back together.
            width = self.plan.dtype.itemsize
            streams = self._plain(values_raw, n_valid).view(np.uint8).reshape(width, n_valid)
            values = streams.T.copy().view(self.plan.dtype).ravel()
            self.dictionary = None
        elif encoding in (_PLAIN_DICTIONARY, _RLE_DICTIONARY):
            index = self._indices(values_raw, n_valid)
            if valid is None:
                self.index = index
                return
            values = self.dictionary[index]
        else:
            raise PageError(f"column {name!r} has a data page in encoding {encoding}, which "
                            "this reader does not decode")
        if valid is None:
            self.values = values
            return
        self.values = np.zeros(n, self.plan.dtype)
        self.values[valid] = values
        self.valid = valid

    def _indices(self, raw: memoryview, count: int) -> np.ndarray:
        """A dictionary-encoded page's ``count`` indices (the dictionary read, if dropped)."""
        name = self.plan.name
        if self.dictionary is None:
            if self.dictionary_at is None:
                raise PageError(f"column {name!r} has dictionary-encoded values and no "
                                "dictionary")
            # Dropped at a plain page: read again.
            pos, self.pos = self.pos, self.dictionary_at
            header, body = self._read_page()
            self.pos = pos
            self._dictionary(header, body, self.dictionary_at)
        if count == 0:
            return np.zeros(0, np.int32)
        if len(raw) < 1:
            raise PageError(f"column {name!r} has a data page without its values")
        return hybrid(raw[1:], raw[0], count, len(self.dictionary), name)


def hybrid(buf, bit_width: int, n: int, limit: int, name: str) -> np.ndarray:
    """The first ``n`` values of RLE/bit-packed hybrid data of ``bit_width`` bits, each below
    ``limit`` (levels: 2; indices: the dictionary's size), for column ``name``: by the
    compiled loop (:func:`l1select._kernels.pages.hybrid_decode`) where it is built, else
    by :func:`hybrid_numpy`."""
    global _decoder
    if _decoder is None:
        from l1select._aot import page_decoder

        _decoder = page_decoder() or hybrid_numpy
    if _decoder is hybrid_numpy:
        return hybrid_numpy(buf, bit_width, n, limit, name)
    if bit_width > 32:
        raise PageError(f"column {name!r} has levels or indices of {bit_width} bits")
    out = np.empty(n, np.int32)
    status = _decoder(np.frombuffer(buf, np.uint8), bit_width, n, limit, out)
    if status:
        raise PageError(f"column {name!r} has {_PROBLEMS.get(status, 'bad')} levels or "
                        "indices")
    return out


_decoder = None
# hybrid_decode's statuses.
_PROBLEMS = {-1: "cut-short", -2: "out-of-range", -3: "malformed"}


def hybrid_numpy(buf, bit_width: int, n: int, limit: int, name: str) -> np.ndarray:
    """:func:`hybrid` in numpy: the runs are parsed in Python (an RLE run is a count and a
    value, a bit-packed run some groups of eight values); the bit-packed runs' bytes, put
    together, are one bit stream unpacked at once."""
    if bit_width > 32:
        raise PageError(f"column {name!r} has levels or indices of {bit_width} bits")
    if n == 0:
        return np.zeros(0, np.int64)
    if bit_width == 0:
        return np.zeros(n, np.int64)
    data = bytes(buf)
    size, width = len(data), (bit_width + 7) // 8
    pos = total = 0
    counts: list[int] = []
    repeated: list[int] = []  # an RLE run's value, -1 for a bit-packed run
    packed: list[bytes] = []
    while total < n:
        try:
            header, pos = _varint(data, pos)
        except IndexError:
            raise PageError(f"column {name!r} has levels or indices cut short") from None
        if header & 1:
            nbytes = (header >> 1) * bit_width
            # The last run may stop short of its padding.
            run = data[pos:pos + nbytes]
            count = min((header >> 1) * 8, len(run) * 8 // bit_width)
            packed.append(run)
            repeated.append(-1)
            pos += nbytes
        else:
            count = header >> 1
            if pos + width > size:
                raise PageError(f"column {name!r} has levels or indices cut short")
            value = int.from_bytes(data[pos:pos + width], "little")
            if value >> bit_width or value >= limit:
                raise PageError(f"column {name!r} has out-of-range levels or indices")
            repeated.append(value)
            pos += width
        if count == 0:
            raise PageError(f"column {name!r} has an empty run in its levels or indices")
        counts.append(count)
        total += count
    runs = np.array(counts, np.int64)
    runs[-1] -= total - n
    values = np.array(repeated, np.int64)
    if not packed:
        return np.repeat(values, runs)
    unpacked = _unpack(b"".join(packed), bit_width)
    m = unpacked.size
    if len(packed) == len(counts):
        if n > m:
            raise PageError(f"column {name!r} has levels or indices cut short")
        return _below(unpacked[:n], limit, name)
    is_packed = np.repeat(values < 0, runs)
    out = np.empty(n, np.int64)
    n_packed = int(np.count_nonzero(is_packed))
    if n_packed > m:
        raise PageError(f"column {name!r} has levels or indices cut short")
    out[is_packed] = unpacked[:n_packed]
    rle = values >= 0
    out[~is_packed] = np.repeat(values[rle], runs[rle])
    return _below(out, limit, name)


def _below(values: np.ndarray, limit: int, name: str) -> np.ndarray:
    if values.size and int(values.max()) >= limit:
        raise PageError(f"column {name!r} has out-of-range levels or indices")
    return values


def _unpack(stream: bytes, bit_width: int) -> np.ndarray:
    """Bit-packed values of ``bit_width`` bits (least significant bit first), all of them."""
    m = len(stream) * 8 // bit_width
    if bit_width == 1:
        return np.unpackbits(np.frombuffer(stream, np.uint8), bitorder="little")
    if bit_width in (8, 16, 32):
        return np.frombuffer(stream, f"<u{bit_width // 8}", count=m)
    # Value i starts at bit i * bit_width: the (shift + bit_width) bits from its first byte
    # on, shifted and masked.
    padded = np.zeros(len(stream) + 8, np.uint8)
    padded[:len(stream)] = np.frombuffer(stream, np.uint8)
    at = np.arange(m, dtype=np.int64) * bit_width
    first = at >> 3
    word = padded[first].astype(np.uint64)
    for j in range(1, (7 + bit_width + 7) // 8):
        word |= padded[first + j].astype(np.uint64) << np.uint64(8 * j)
    word >>= (at & 7).astype(np.uint64)
    word &= np.uint64((1 << bit_width) - 1)
    return word


# ---- Thrift compact protocol: just enough to read a page header ----------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]  # IndexError past the end: the caller reads more
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise PageError("a page header has a bad integer")


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes, pos: int, kind: int, depth: int):
    """One value of compact type ``kind`` at ``pos``, ``depth`` structs and lists down:
    (value, next position)."""
    if depth > _NESTING:
        raise PageError("a page header is nested too deeply")
    if kind in (1, 2):  # a struct field's bool is its type; a list's is a byte
        return kind == 1, pos
    if kind == 3:
        return buf[pos], pos + 1
    if kind in (4, 5, 6):
        n, pos = _varint(buf, pos)
        return _zigzag(n), pos
    if kind == 7:
        if pos + 8 > len(buf):
            raise IndexError
        return buf[pos:pos + 8], pos + 8
    if kind == 8:
        n, pos = _varint(buf, pos)
        if pos + n > len(buf):
            raise IndexError
        return buf[pos:pos + n], pos + n
    if kind in (9, 10):
        head = buf[pos]
        pos += 1
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        items = []
        for _ in range(size):
            if elem in (1, 2):
                items.append(buf[pos] == 1)
                pos += 1
            else:
                item, pos = _value(buf, pos, elem, depth + 1)
                items.append(item)
        return items, pos
    if kind == 11:
        size, pos = _varint(buf, pos)
        if size == 0:
            return {}, pos
        types = buf[pos]
        pos += 1
        out = {}
        for _ in range(size):
            key, pos = _value(buf, pos, types >> 4, depth + 1)
            val, pos = _value(buf, pos, types & 0x0F, depth + 1)
            out[key] = val
        return out, pos
    if kind == 12:
        return _struct(buf, pos, depth + 1)
    raise PageError(f"a page header has a field of unknown type {kind}")


def _struct(buf: bytes, pos: int, depth: int = 0) -> tuple[dict, int]:
    """A compact-protocol struct at ``pos``: ({field id: value}, next position). Raises
    IndexError when ``buf`` ends inside it."""
    out: dict = {}
    field = 0
    while True:
        head = buf[pos]
        pos += 1
        if head == 0:
            return out, pos
        kind, delta = head & 0x0F, head >> 4
        if delta:
            field += delta
        else:
            raw, pos = _varint(buf, pos)
            field = _zigzag(raw)
        if kind == 5 or kind == 6 or kind == 4:  # the integers of a page header, inline
            b = buf[pos]
            if b < 0x80:
                out[field] = (b >> 1) ^ -(b & 1)
                pos += 1
                continue
        out[field], pos = _value(buf, pos, kind, depth)

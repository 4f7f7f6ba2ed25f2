"""The Parquet page decoder (``io/pages.py``) against Arrow's own reader: seeded files written
with every codec, page format, encoding mix and null pattern it decodes; the RLE/bit-packed
hybrid decoder (compiled and numpy) against an encoder written here from the format's spec;
the files it leaves to Arrow; and mutated files, which fail with a one-line error or decode."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from l1select._aot import page_decoder
from l1select.errors import InputError
from l1select.io import pages
from l1select.io import parquet as parquet_io
from l1select.io.pages import PageError, hybrid_numpy
from l1select.io.reader import open_header

CODECS = ["NONE", "SNAPPY", "GZIP", "ZSTD", "BROTLI", "LZ4"]
TYPES = [pa.float64(), pa.float32(), pa.int32(), pa.int64()]


def _column(rng, n: int, kind: pa.DataType) -> pa.Array:
    """Values of one of three kinds: few distinct (dictionary-encoded throughout), many
    (the writer falls back to plain pages), a mix; with or without nulls."""
    shape = rng.integers(3)
    if shape == 0:
        values = rng.integers(-3, 4, n).astype(float) * 1.5
    elif shape == 1:
        values = rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)
    else:
        values = np.where(np.arange(n) < n // 3, rng.integers(0, 5, n), rng.normal(size=n) * 1e4)
    if pa.types.is_integer(kind):
        values = np.round(values).astype(kind.to_pandas_dtype())
    else:
        values = values.astype(kind.to_pandas_dtype())
    nulls = [0.0, 0.0, 0.02, 0.5, 1.0][rng.integers(5)]
    mask = rng.random(n) < nulls
    return pa.array(values, type=kind, mask=mask)


def _write(path, rng, n: int, n_cols: int) -> pa.Table:
    table = pa.table({f"c{j}": _column(rng, n, TYPES[rng.integers(len(TYPES))])
                      for j in range(n_cols)})
    if rng.random() < 0.3:  # required (non-nullable) columns where there are no nulls
        table = table.cast(pa.schema([pa.field(f.name, f.type,
                                               nullable=table[f.name].null_count > 0)
                                      for f in table.schema]))
    # Some columns byte-stream-split (then not dictionary-encoded), the others plain or
    # dictionary-encoded.
    split = [name for name in table.column_names if rng.random() < 0.25]
    plain_or_dictionary = [name for name in table.column_names if name not in split]
    pq.write_table(
        table, path, row_group_size=int(rng.choice([n, max(1, n // 3)])),
        compression=CODECS[rng.integers(len(CODECS))],
        use_dictionary=plain_or_dictionary if rng.random() < 0.8 else False,
        column_encoding=dict.fromkeys(split, "BYTE_STREAM_SPLIT") or None,
        data_page_version=["1.0", "2.0"][rng.integers(2)],
        data_page_size=int(rng.choice([64, 1024, 1 << 14, 1 << 20])),
        dictionary_pagesize_limit=int(rng.choice([256, 4096, 1 << 20])),
        write_statistics=bool(rng.random() < 0.5),
        write_batch_size=int(rng.choice([7, 64, 1024])))
    return table


def _decoded(path, batch_rows: int) -> pa.Table:
    pf = pq.ParquetFile(path)
    parts = []
    for g in range(pf.metadata.num_row_groups):
        plans = pages.plan(pf, str(path), g, pf.schema_arrow.names)
        assert plans is not None
        rows = pf.metadata.row_group(g).num_rows
        parts.extend(pages.read_group(str(path), pf.schema_arrow, plans, rows, batch_rows))
    return pa.Table.from_batches(parts, schema=pf.schema_arrow)


@pytest.mark.parametrize("seed", range(48))
def test_pages_decode_as_arrow_does(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 9, 1000, 5000, 20_011]))
    path = tmp_path / "t.parquet"
    _write(path, rng, n, int(rng.integers(1, 6)))
    expected = pq.read_table(path)
    got = _decoded(path, int(rng.choice([1, 3, 1000, 8192])))
    assert got.equals(expected)


@pytest.mark.parametrize("numpy_only", [False, True])
def test_pages_decode_with_numpy_where_nothing_is_compiled(tmp_path, monkeypatch, numpy_only):
    """Both ways of decoding levels and indices (the compiled loop, numpy) give Arrow's
    table; the first is used whenever the AOT module is built."""
    if numpy_only:
        monkeypatch.setattr(pages, "_decoder", hybrid_numpy)
    elif page_decoder() is None:
        pytest.skip("the AOT module cannot be built here")
    rng = np.random.default_rng(7)
    path = tmp_path / "t.parquet"
    _write(path, rng, 30_000, 6)
    assert _decoded(path, 4096).equals(pq.read_table(path))


# ---- the RLE/bit-packed hybrid encoding ------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            return bytes(out + bytes([n]))
        out.append(n & 0x7F | 0x80)
        n >>= 7


def _encode(values: np.ndarray, bit_width: int, rng) -> bytes:
    """The hybrid encoding of ``values`` (parquet-format's Encodings.md), runs chosen at
    random: RLE runs of a repeated value, bit-packed runs of groups of eight (the last padded
    with zeros, and sometimes cut after its last value's byte)."""
    out = bytearray()
    i, n = 0, len(values)
    width = (bit_width + 7) // 8
    while i < n:
        same = 1
        while i + same < n and values[i + same] == values[i]:
            same += 1
        if same >= 2 and rng.random() < 0.7:
            out += _varint(same << 1) + int(values[i]).to_bytes(width, "little")
            i += same
            continue
        groups = int(rng.integers(1, 6))
        chunk = list(values[i:i + groups * 8])
        used = len(chunk)
        chunk += [0] * (groups * 8 - used)
        bits = 0
        for k, v in enumerate(chunk):
            bits |= int(v) << (k * bit_width)
        packed = bits.to_bytes(groups * bit_width, "little")
        if i + used == n and rng.random() < 0.5:
            packed = packed[:(used * bit_width + 7) // 8]
        out += _varint(groups << 1 | 1) + packed
        i += used
    return bytes(out)


def _decoders():
    found = [("numpy", hybrid_numpy)]
    compiled = page_decoder()
    if compiled is not None:
        found.append(("compiled", None))
    return found


@pytest.mark.parametrize("bit_width", [0, 1, 2, 3, 7, 8, 9, 13, 16, 17, 24, 25, 31, 32])
def test_hybrid_decoding_matches_the_encoding(monkeypatch, bit_width):
    rng = np.random.default_rng(bit_width)
    for name, decoder in _decoders():
        if decoder is not None:
            monkeypatch.setattr(pages, "_decoder", decoder)
        else:
            monkeypatch.setattr(pages, "_decoder", None)
        for trial in range(20):
            n = int(rng.integers(1, 3000))
            # Indices are below a dictionary's size (under 2**31 entries).
            high = min(1 << bit_width, 1 << 31)
            values = rng.integers(0, high, n, dtype=np.int64)
            if trial % 2:  # long repeats
                values = np.repeat(values[: n // 50 + 1], 50)[:n]
            data = _encode(values, bit_width, rng)
            got = pages.hybrid(memoryview(data), bit_width, n, high, "c")
            np.testing.assert_array_equal(got, values, err_msg=f"{name} decoder")


@pytest.mark.parametrize("use_numpy", [True, False])
def test_hybrid_decoding_refuses_bad_data(monkeypatch, use_numpy):
    if use_numpy:
        monkeypatch.setattr(pages, "_decoder", hybrid_numpy)
    elif page_decoder() is None:
        pytest.skip("the AOT module cannot be built here")
    else:
        monkeypatch.setattr(pages, "_decoder", None)
    rng = np.random.default_rng(0)
    values = rng.integers(0, 100, 500)
    data = _encode(values, 7, rng)
    with pytest.raises(PageError, match="cut-short|cut short"):
        pages.hybrid(memoryview(data[: len(data) // 2]), 7, 500, 128, "c")
    with pytest.raises(PageError, match="out-of-range"):
        pages.hybrid(memoryview(data), 7, 500, 50, "c")
    with pytest.raises(PageError):  # an empty run
        pages.hybrid(memoryview(b"\x00\x00\x00"), 7, 5, 128, "c")
    with pytest.raises(PageError, match="33 bits"):
        pages.hybrid(memoryview(data), 33, 5, 128, "c")


# ---- what is left to Arrow -------------------------------------------------------------------

@pytest.mark.parametrize("table, options", [
    (pa.table({"s": ["a", "b"] * 50}), {}),
    (pa.table({"b": [True, False] * 50}), {}),
    (pa.table({"i": pa.array(range(100), pa.int8())}), {}),
    (pa.table({"u": pa.array(range(100), pa.uint32())}), {}),
    (pa.table({"d": pa.array(range(100), pa.date32())}), {}),
    (pa.table({"t": pa.array(range(100), pa.timestamp("ms"))}), {}),
    (pa.table({"l": [[1.0], [2.0]] * 50}), {}),
    (pa.table({"x": np.arange(100)}), {"use_dictionary": False,
                                       "column_encoding": {"x": "DELTA_BINARY_PACKED"}}),
])
def test_other_columns_are_left_to_arrow(tmp_path, table, options):
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, **options)
    pf = pq.ParquetFile(path)
    assert pages.plan(pf, str(path), 0, pf.schema_arrow.names) is None


def test_a_long_row_group_is_read_by_pages_through_the_reader(tmp_path, monkeypatch):
    """The reader sends long row groups here (short ones Arrow reads whole) and gets the
    same batches; a column of a kind not decoded here sends the group to Arrow."""
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_VALUES", 60_000)
    rng = np.random.default_rng(3)
    table = pa.table({"x": rng.normal(size=50_000), "y": rng.integers(0, 9, 50_000),
                      "s": pa.array(rng.choice(["a", "b"], 50_000))})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=50_000)
    calls = []
    real = pages.read_group
    monkeypatch.setattr(pages, "read_group", lambda *a: calls.append(a) or real(*a))
    source, header, _ = open_header(str(path))
    for columns, decoded in ((["x", "y"], True), (["x", "s"], False)):
        calls.clear()
        got = pa.Table.from_batches(list(parquet_io.read_row_groups(source, header, columns,
                                                                    str(path))))
        assert got.equals(table.select(columns))
        assert bool(calls) == decoded


# ---- damaged files ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_a_damaged_file_decodes_or_fails_with_a_page_error(tmp_path, seed):
    """Bytes changed at random inside the column chunks: the decoder either raises PageError
    (which the reader turns into its one-line error; never another exception) or reads what
    Arrow reads (a changed value is not detectable without checksums, for either)."""
    rng = np.random.default_rng(1000 + seed)
    path = tmp_path / "t.parquet"
    _write(path, rng, 3000, 3)
    pf = pq.ParquetFile(path)
    md = pf.metadata
    data = bytearray(path.read_bytes())
    first = min(md.row_group(0).column(0).data_page_offset,
                md.row_group(0).column(0).dictionary_page_offset or 1 << 62)
    last = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    for _ in range(int(rng.integers(1, 6))):
        at = int(rng.integers(first, last))
        data[at] = int(rng.integers(256))
    path.write_bytes(bytes(data))
    try:
        got = _decoded(path, 1000)
    except PageError as exc:
        assert "\n" not in str(exc)
        return
    try:
        expected = pq.read_table(path)
    except (pa.ArrowException, OSError):
        return  # Arrow checks something this decoder does not (18 of 30 seeds both refuse)
    assert _bits(got).equals(_bits(expected))


def _bits(table: pa.Table) -> pa.Table:
    """``table`` with its float columns seen as integers of their bits: a damaged value may be
    a NaN, which ``equals`` never finds equal to itself."""
    ints = {pa.float64(): pa.int64(), pa.float32(): pa.int32()}
    return pa.table({name: pa.chunked_array([c.view(ints.get(c.type, c.type))
                                             for c in table[name].chunks],
                                            ints.get(table[name].type, table[name].type))
                     for name in table.column_names})


def test_the_reader_names_the_file_of_a_damaged_page(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_ROWS", 10)
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_VALUES", 10)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": np.arange(5000.0)}), path, compression="NONE",
                   use_dictionary=False)
    pf = pq.ParquetFile(path)
    data = bytearray(path.read_bytes())
    data[pf.metadata.row_group(0).column(0).data_page_offset] ^= 0xFF  # the page header
    path.write_bytes(bytes(data))
    source, header, _ = open_header(str(path))
    with pytest.raises(InputError, match="is not a readable Parquet file"):
        list(parquet_io.read_row_groups(source, header, ["x"], str(path)))


def test_page_headers_nested_past_reason_are_refused():
    """A damaged header of struct after struct (type 12, field delta 1) is a PageError, not a
    RecursionError; a header cut short asks for more bytes (IndexError)."""
    with pytest.raises(PageError, match="nested too deeply"):
        pages._struct(bytes([0x1C]) * 5000, 0)
    header = bytes([0x15, 0x00, 0x15, 0x10, 0x15, 0x10, 0x00])  # type 0, sizes 8 and 8
    assert pages._struct(header, 0) == ({1: 0, 2: 8, 3: 8}, len(header))
    with pytest.raises(IndexError):
        pages._struct(header[:4], 0)


def test_bit_packed_definition_levels_are_left_to_arrow(tmp_path, monkeypatch):
    """Format-1 pages whose definition levels use the deprecated BIT_PACKED encoding go to
    Arrow (which reads its bits least significant first, against the format's text), so that
    a file reads one way whatever its row groups. pyarrow does not write it: a page of 64
    rows (the first 12 null) is rewritten in place, its 8 bytes of RLE levels (length prefix,
    two runs) becoming 8 bytes of bits, and the header's level encoding RLE (3) BIT_PACKED (4)."""
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_ROWS", 10)
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_VALUES", 10)
    path = tmp_path / "t.parquet"
    x = pa.array(np.arange(64.0), mask=np.arange(64) < 12)
    pq.write_table(pa.table({"x": x}), path, compression="NONE", use_dictionary=False,
                   data_page_version="1.0", write_statistics=False)
    pf = pq.ParquetFile(path)
    assert pages.plan(pf, str(path), 0, ["x"]) is not None
    at = pf.metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    # num_values 64, encoding PLAIN, definition and repetition levels RLE (compact i32 fields).
    fields = b"\x15\x80\x01\x15\x00\x15\x06\x15\x06"
    where = data.index(fields, at)
    data[where + 6] = 0x08
    _, used = pages._struct(bytes(data[at:at + 256]), 0)
    levels = at + used
    assert bytes(data[levels:levels + 8]) == b"\x04\x00\x00\x00\x18\x00\x68\x01"
    data[levels:levels + 8] = bytes([0x00, 0x0F] + [0xFF] * 6)
    path.write_bytes(bytes(data))
    pf = pq.ParquetFile(path)
    assert pages.plan(pf, str(path), 0, ["x"]) is None
    source, header, _ = open_header(str(path))
    got = pa.Table.from_batches(list(parquet_io.read_row_groups(source, header, ["x"],
                                                                str(path))))
    assert got.equals(pq.read_table(path))


def test_a_dropped_dictionary_is_read_again(tmp_path):
    """The dictionary is dropped at a column's first plain page; should a dictionary-encoded
    page follow (no writer here does that), the dictionary page is read again, though it has
    more entries than the group has rows left. Simulated by dropping it after 25,000 of the
    30,000 rows of a column dictionary-encoded throughout (about 21,000 distinct values)."""
    rng = np.random.default_rng(11)
    path = tmp_path / "t.parquet"
    x = pa.array(rng.integers(0, 25_000, 30_000).astype(float), mask=rng.random(30_000) < 0.1)
    pq.write_table(pa.table({"x": x}), path, data_page_size=4096)
    pf = pq.ParquetFile(path)
    assert pf.metadata.row_group(0).column(0).encodings == ("PLAIN", "RLE", "RLE_DICTIONARY")
    [p] = pages.plan(pf, str(path), 0, ["x"])
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk = pages._Chunk(fd, os.fstat(fd).st_size, p, 30_000)
        first = chunk.take(25_000)
        assert chunk.dictionary is not None and chunk.unpaged < len(chunk.dictionary)
        chunk.dictionary = None
        rest = [chunk.take(5_000)]
        chunk.finish()
    finally:
        os.close(fd)
    assert pa.chunked_array([first, *rest]).equals(pq.read_table(path)["x"])


def test_without_positional_reads_groups_go_to_arrow(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": np.arange(100.0)}), path)
    pf = pq.ParquetFile(path)
    assert pages.plan(pf, str(path), 0, ["x"]) is not None
    monkeypatch.delattr(os, "pread")
    assert pages.plan(pf, str(path), 0, ["x"]) is None


@pytest.mark.parametrize("target_kind", ["number", "yes/no"])
def test_a_fit_reads_the_same_through_pages_as_through_arrow(tmp_path, monkeypatch, target_kind):
    """A whole fit (the statistics pass for a number, the in-memory matrix for yes/no) on a
    folder of two files with long row groups, nulls and a dictionary-encoded column: the same
    result through the page decoder as through Arrow's reader, the same digest of the bytes."""
    from l1select.pipeline import select_features
    from l1select.types import FitParams
    from tests.conftest import make_regression

    X, y, _ = make_regression(n=20_000, p=6, seed=4, missing=0.05)
    table = pa.table({f"x{j}": X[:, j] for j in range(6)} | {
        "level": np.round(np.nan_to_num(X[:, 0])).astype(np.int64),
        "y": y if target_kind == "number" else (y > np.median(y)).astype(np.float64)})
    table = table.set_column(2, "x2", pa.array(X[:, 2], from_pandas=True))  # NaN as null
    folder = tmp_path / "parts"
    folder.mkdir()
    # Groups longer than a batch (8,192 rows) are the ones decoded page by page.
    pq.write_table(table.slice(0, 9000), folder / "a.parquet", data_page_size=4096)
    pq.write_table(table.slice(9000), folder / "b.parquet", data_page_version="2.0",
                   compression="zstd")
    params = FitParams(target="y", n_alphas=20)
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_ROWS", 100)
    monkeypatch.setattr(parquet_io, "PARQUET_WHOLE_GROUP_VALUES", 100)
    calls = []
    real = pages.read_group
    monkeypatch.setattr(pages, "read_group", lambda *a: calls.append(a) or real(*a))
    through_pages = select_features(str(folder), params)
    assert calls
    monkeypatch.setattr(pages, "plan", lambda *a: None)
    through_arrow = select_features(str(folder), params)
    assert through_pages.input == through_arrow.input
    assert through_pages.selected and through_pages.selected == through_arrow.selected
    assert through_pages.coef_path is not None
    assert through_pages.coef_path == through_arrow.coef_path
    assert through_pages.cv == through_arrow.cv

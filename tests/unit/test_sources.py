"""Sources: folders and globs of files read as one table, remote URLs through fsspec."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from l1select.errors import ConfigError, InputError
from l1select.io import detect
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression


def _frame(n=300, seed=0):
    X, y, _ = make_regression(n=n, p=5, seed=seed, missing=0.03)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    df["y"] = y
    return df


def _fit(path, **kw):
    return select_features(str(path), FitParams(target="y", n_alphas=20, **kw))


def _same(a, b):
    np.testing.assert_allclose([r["mean"] for r in a.cv["path"]],
                               [r["mean"] for r in b.cv["path"]], rtol=1e-10)
    assert a.selected == b.selected
    assert a.input["n_rows"] == b.input["n_rows"]


def test_a_folder_of_parquet_parts_is_one_table_in_name_order(tmp_path):
    df = _frame()
    df.to_parquet(tmp_path / "whole.parquet", index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    # Written out of order: the name order, not the write order, decides the row order.
    for i, (a, b) in reversed(list(enumerate([(0, 100), (100, 250), (250, 300)]))):
        df.iloc[a:b].to_parquet(parts / f"part-{i:03d}.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    _same(_fit(parts), _fit(tmp_path / "whole.parquet"))
    files = sorted(parts.glob("*.parquet"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert _fit(parts).input["sha256"] == digest


def test_a_glob_of_csv_files(tmp_path):
    df = _frame()
    df.to_csv(tmp_path / "whole.csv", index=False)
    for i, (a, b) in enumerate([(0, 120), (120, 300)]):
        df.iloc[a:b].to_csv(tmp_path / f"day{i}.csv", index=False)
    _same(_fit(str(tmp_path / "day*.csv")), _fit(tmp_path / "whole.csv"))


def test_files_with_different_columns_are_an_error(tmp_path):
    df = _frame()
    df.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    df.iloc[100:].drop(columns="x3").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InputError, match=r"b\.csv.*lacks x3"):
        _fit(str(tmp_path / "*.csv"))


def test_a_glob_that_matches_nothing(tmp_path):
    with pytest.raises(InputError, match="no CSV or Parquet files"):
        detect(str(tmp_path / "*.csv"))


def test_mixed_formats_are_an_error(tmp_path):
    df = _frame(50)
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(InputError, match="mixes CSV and Parquet"):
        detect(str(tmp_path))


def test_memory_filesystem_urls(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    df = _frame()
    local = tmp_path / "d.csv"
    df.to_csv(local, index=False)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/d.csv", local.read_bytes())
    fs.pipe("/bucket/parts/p0.parquet", (tmp_path / "d.parquet").read_bytes())
    remote = _fit("memory://bucket/d.csv")
    _same(remote, _fit(local))
    assert remote.input["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    _same(_fit("memory://bucket/parts"), _fit(tmp_path / "d.parquet"))


def test_a_missing_filesystem_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_fsspec(name, *args, **kw):
        if name == "fsspec" or name.startswith("fsspec."):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    with pytest.raises(ConfigError, match=r"l1select\[s3\]"):
        detect("s3://bucket/data.parquet")


def test_quoted_line_breaks_across_blocks(tmp_path, monkeypatch):
    from l1select import io as l1io

    rng = np.random.default_rng(4)
    rows = ["note,x,y"]
    for i in range(300):
        x = rng.normal()
        note = f'"first line, {i}\nsecond ""quoted"" line"' if i % 7 == 0 else f"plain {i % 3}"
        rows.append(f"{note},{x:.6f},{2 * x + rng.normal():.6f}")
    path = tmp_path / "notes.csv"
    path.write_text("\n".join(rows) + "\n")
    whole = _fit(path)
    monkeypatch.setattr(l1io.csv, "CSV_BLOCK", 512)
    monkeypatch.setattr(l1io.csv, "ROWS_PER_BLOCK", 1)
    small = _fit(path)
    assert small.input["n_rows"] == whole.input["n_rows"] == 300
    _same(small, whole)


@pytest.mark.parametrize(("whole_group_values", "whole_group_rows"),
                         [(0, 0), (1 << 21, 0), (0, 1 << 15)],
                         ids=["batch_reader", "whole_few_values", "whole_short_columns"])
def test_one_big_row_group_is_read_in_bounded_batches_in_order(tmp_path, monkeypatch,
                                                                whole_group_values,
                                                                whole_group_rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from l1select import io as l1io

    n = 5000
    table = pa.table({"a b": np.arange(n, dtype=np.float64), "y": np.arange(n) * 2.0})
    path = tmp_path / "one_group.parquet"
    pq.write_table(table, path, row_group_size=n)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    # 2 columns and 1024 values a batch: batches of max(1024, 512) = 1024 rows, not the group.
    monkeypatch.setattr(l1io.parquet, "PARQUET_BATCH_VALUES", 1024)
    # Decoded batch by batch (0), or (a group of at most that many values) whole, then cut.
    monkeypatch.setattr(l1io.parquet, "PARQUET_WHOLE_GROUP_VALUES", whole_group_values)
    monkeypatch.setattr(l1io.parquet, "PARQUET_WHOLE_GROUP_ROWS", whole_group_rows)
    read_whole = []
    read_group = l1io.parquet._read_group
    monkeypatch.setattr(l1io.parquet, "_read_group",
                        lambda *a: read_whole.append(1) or read_group(*a))
    source, header, data = l1io.open_header(str(path))
    scan = l1io.Scan()
    got = list(l1io.batches(source, header, header.names, data, scan))
    assert max(b.num_rows for b, _ in got) == 1024
    assert [s for _, s in got] == list(range(0, n, 1024))
    a = np.concatenate([b.column(0).to_numpy() for b, _ in got])
    np.testing.assert_array_equal(a, np.arange(n))
    assert scan.n_rows == n
    assert scan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert bool(read_whole) == (whole_group_values > 0 or whole_group_rows > 0)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_a_group_read_whole_in_parts_of_its_columns_is_the_same_table(tmp_path, monkeypatch,
                                                                      threads):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from l1select import io as l1io

    rng = np.random.default_rng(3)
    columns = {f"c{j}": rng.standard_normal(40) for j in range(10)}
    columns["c4"] = pa.array(columns["c4"], mask=np.isin(np.arange(40), [1, 7]))
    columns["t"] = pa.array(["a", None, "b", "c"] * 10)
    columns["i"] = np.arange(40, dtype=np.int32)
    table = pa.table(columns)
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=25)
    monkeypatch.setattr(l1io.parquet, "READ_COLUMNS", 3)
    # The parts (four of them) are read on that many threads of ours, at most one a part.
    monkeypatch.setattr(pa, "io_thread_count", lambda: threads)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    source, header, data = l1io.open_header(str(path))
    scan = l1io.Scan()
    got = [b for b, _ in l1io.batches(source, header, header.names, data, scan)]
    assert pa.Table.from_batches(got).equals(pq.read_table(path))
    assert [b.num_rows for b in got] == [25, 15]


@pytest.mark.parametrize("kind", ["flat", "list", "struct", "map", "twice"])
def test_a_group_read_by_leaf_indices_is_what_pyarrow_reads_by_name(tmp_path, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from l1select.io import parquet as l1pq

    columns = {"a": [1.0, 2.0], "y": [3.0, 4.0], "b": pa.array([5, None], pa.int32())}
    if kind == "list":
        columns["l"] = pa.array([[1.0], [2.0, 3.0]])
    elif kind == "struct":
        columns["s"] = pa.array([{"u": 1, "v": 2.0}] * 2)
    elif kind == "map":
        columns["m"] = pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64()))
    table = pa.table(columns)
    if kind == "twice":  # a name twice: pyarrow reads both columns of that name
        table = pa.Table.from_arrays(table.columns + [pa.array([7.0, 8.0])],
                                     names=table.column_names + ["a"])
    path = str(tmp_path / f"{kind}.parquet")
    pq.write_table(table, path)
    # Each column of a flat file, even a list (one leaf), is one leaf; a struct, a map or a
    # name twice is found by name, the way pyarrow does.
    flat = kind in ("flat", "list")
    wanted = ["y", "nope", "a"] + [c for c in table.column_names if c not in "aby"]
    assert (l1pq._leaves(path, wanted) is not None) == flat
    if flat:
        assert l1pq._leaves(path, wanted) == [table.column_names.index(c)
                                              for c in wanted if c != "nope"]
    theirs = pq.ParquetFile(path)
    for names in (wanted, table.column_names, ["b"]):
        assert l1pq._read_group(l1pq.open_file(path), 0, names, True, path).equals(
            theirs.read_row_group(0, columns=names))
    # The map is made again for a new version of the file.
    pq.write_table(pa.table({"y": [1.0], "a": [2.0]}), path)
    assert l1pq._leaves(path, ["a", "y"]) == [1, 0]


def test_the_column_map_is_made_on_first_use_and_is_pyarrows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from l1select.io import parquet as l1pq

    table = pa.table({"a": [1.0, 2.0], "s": pa.array([{"u": 1, "v": {"w": 2.0}}] * 2),
                      "y": [3.0, 4.0]})
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    theirs = pq.ParquetFile(path)
    ours = l1pq.open_file(str(path))
    assert ours._nested_paths_by_prefix._map is None  # opening made no map
    assert dict(ours._nested_paths_by_prefix) == dict(theirs._nested_paths_by_prefix)
    for columns in (["y", "a"], ["s"], ["s.v"], ["s.v.w", "a"]):
        assert ours.read_row_group(0, columns=columns).equals(
            theirs.read_row_group(0, columns=columns))
    assert l1pq.footer(str(path)).equals(theirs.metadata)
    # No reference cycle: the file (and its open reader) goes as soon as it is dropped.
    import gc
    import weakref

    gone = weakref.ref(ours)
    was = gc.isenabled()
    gc.disable()
    try:
        del ours
        assert gone() is None
    finally:
        if was:
            gc.enable()


def test_the_io_package_exports_resolve_and_reading_a_result_needs_no_arrow():
    import subprocess
    import sys

    import l1select.io as l1io

    assert sorted(l1io.__all__) == sorted(l1io._EXPORTS)
    for name in l1io.__all__:
        assert getattr(l1io, name).__module__.startswith("l1select.io."), name
    # plot reads a result file only: the lazy package must not pull Arrow in for it.
    code = ("import sys; from l1select.io import load_result; "
            "print('pyarrow' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_reading_a_csv_does_not_import_the_parquet_reader(tmp_path):
    """Start-up: pyarrow.parquet (and the TLS stack its filesystems load) is only for Parquet."""
    import subprocess
    import sys

    from tests.conftest import write_csv

    X, y, _ = make_regression(n=50, p=3, seed=1)
    path = write_csv(tmp_path / "d.csv", X, y)
    code = ("import sys\nfrom l1select.pipeline import select_features\n"
            "from l1select.types import FitParams\n"
            f"select_features({str(path)!r}, FitParams(target='y', n_alphas=5))\n"
            "print('pyarrow.parquet' in sys.modules)\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("content, message", [
    (None, "no such result file"),
    ("folder", "is a folder, not a result file"),
    ("{not json", "is not a result file"),
    ('{"schema_version": 2}', "is not an l1select result"),
    ('[1, 2]', "is not an l1select result"),
])
def test_one_result_reader_for_plot_transform_and_predict(tmp_path, content, message):
    from l1select.apply import load_model
    from l1select.plots import load_result

    path = tmp_path / "result.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    seen = []
    for load in (load_model, load_result):
        with pytest.raises(InputError) as err:
            load(str(path))
        seen.append(str(err.value))
    for text in seen:
        assert message in text and "l1select fit … --format json" in text
    if content in (None, "folder", "{not json"):
        assert seen[0] == seen[1]  # one reader, one message


_CELLS = {
    "float": lambda r: f"{r.normal():.6g}",
    "int": lambda r: str(int(r.integers(-50, 50))),
    "exp": lambda r: f"{r.normal() * 1e-8:e}",
    "empty": lambda r: "",
    "na": lambda r: str(r.choice(["NA", "", "n/a", "null"])),
    "nan": lambda r: str(r.choice(["nan", "NaN", "1.5"])),
    "text": lambda r: str(r.choice(["red", "blue", "green"])),
    "bool": lambda r: str(r.choice(["true", "false"])),
    "date": lambda r: f"2024-0{r.integers(1, 10)}-1{r.integers(0, 10)}",
    "stamp": lambda r: f"2024-01-0{r.integers(1, 10)} 12:3{r.integers(0, 10)}:00",
    "quoted": lambda r: f'"{r.normal():.3f}"',
    "mixed": lambda r: str(r.choice(["1.5", "2", "x"])),
}


@pytest.mark.parametrize("seed", range(8))
def test_a_wide_first_block_parsed_as_numbers_first_gets_the_inferred_types(
        tmp_path, monkeypatch, seed):
    from l1select import io as l1io

    rng = np.random.default_rng(seed)
    kinds = list(_CELLS)
    # Few non-number columns (each costs a parse) or many (then every column is inferred).
    n_cols = int(rng.integers(5, 40))
    pool = ["float", "int", "exp", "empty", "na", "nan", "quoted"]
    col_kinds = [str(rng.choice(kinds if rng.random() < 0.15 else pool)) for _ in range(n_cols)]
    lines = [",".join(f"c{j}" for j in range(n_cols))]
    rows = [[_CELLS[k](rng) for k in col_kinds] for _ in range(int(rng.integers(1, 30)))]
    lines += [",".join(row) for row in rows]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    source, header, data = l1io.open_header(str(path))
    monkeypatch.setattr(l1io.csv, "GUESS_NUMBERS_COLUMNS", 10 ** 9)
    inferred = l1io.csv.first_types(source, header, header.names, data)
    monkeypatch.setattr(l1io.csv, "GUESS_NUMBERS_COLUMNS", 0)
    guessed = []
    guess = l1io.csv._numbers_first
    monkeypatch.setattr(l1io.csv, "_numbers_first", lambda *a: guessed.append(guess(*a)) or
                        guessed[-1])
    assert l1io.csv.first_types(source, header, header.names, data) == inferred, col_kinds
    # The numbers-first parse answered whenever few enough columns had to be inferred.
    def number(cell: str) -> bool:
        try:
            float(cell.strip('"'))
        except ValueError:
            return cell in ("", "NA", "n/a", "null")
        return True

    others = sum(not all(number(row[j]) for row in rows) for j in range(n_cols))
    assert (guessed[0] is not None) == (others <= l1io.csv.GUESS_NUMBERS_TRIES)


def test_a_few_columns_of_a_wide_csv_are_the_same_named_or_selected(tmp_path, monkeypatch):
    import pyarrow as pa

    from l1select import io as l1io

    rng = np.random.default_rng(5)
    n_cols, n_rows = 1200, 30
    values = rng.normal(size=(n_rows, n_cols)).round(4)
    names = [f"x{j}" for j in range(n_cols - 1)] + ["y"]
    lines = [",".join(names)] + [",".join(f"{v:g}" for v in row) for row in values]
    lines[3] = lines[3].rsplit(",", 1)[0] + ",NA"  # a missing target
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    source, header, data = l1io.open_header(str(path))

    def read(columns):
        scan = l1io.Scan()
        got = [b for b, _ in l1io.batches(source, header, columns, data, scan)]
        return pa.Table.from_batches(got)

    named = read(["y", "x7"])  # 2 x 1,200 comparisons: Arrow converts these two alone
    monkeypatch.setattr(l1io.csv, "INCLUDE_COMPARISONS", 0)  # every column, then selected
    assert named.equals(read(["y", "x7"]))
    assert named.column_names == ["x7", "y"]
    assert named.column("y").null_count == 1
    np.testing.assert_array_equal(named.column("x7").to_numpy(), values[:, 7])


@pytest.mark.parametrize("files", [1, 2])
def test_parquet_names_with_spaces_or_none_are_read_as_the_csv_reads_them(tmp_path, files):
    """A column whose name has surrounding spaces (or a byte-order mark, or none at all) is
    named as in CSV and still read: it was once left out of a Parquet fit without a word."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _frame(n=400)
    df.columns = [" x0 ", "\ufeffx1", "", "x3\t", "x4", "y "]
    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.Table.from_pandas(df, preserve_index=False)
    for k, part in enumerate(np.array_split(np.arange(len(df)), files)):
        pq.write_table(table.take(part), folder / f"part{k}.parquet")
    csv = tmp_path / "same.csv"
    df.to_csv(csv, index=False)
    source = folder if files > 1 else folder / "part0.parquet"
    a, b = _fit(source), _fit(csv)
    assert [f.name for f in a.features] == ["x0", "x1", "unnamed_3", "x3", "x4"]
    _same(a, b)
    assert set(a.selected) >= {"x0", "x1"}

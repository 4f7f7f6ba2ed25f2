"""Files as spreadsheet programs and old systems write them (issue 11): any encoding's bytes
become the same table, any line end ends a line, and whatever a header holds, an error stays
one line.

Each case writes the same data set twice, once as plain UTF-8 with LF line ends (the
reference) and once in the form under test, and asserts that ``fit``, ``transform`` and
``predict`` give the same result for both.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, assert_same_numbers, fit_json, invoke, ok

from l1select import io as l1io

CITIES = ["Zürich", "Genève", "Köln", "Malmö"]


def _table(n: int = 240, seed: int = 0, header: str = "city",
           accent_from: int = 0) -> list[list[str]]:
    """Rows of y = 3·x0 − 2·x1 + 2·[city is the first level] + noise; ``header`` names the
    text column, whose values have no accented letter before row ``accent_from``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    cities = [CITIES[i % len(CITIES)] for i in range(n)]
    y = 3 * X[:, 0] - 2 * X[:, 1] + 2.0 * np.array([c == CITIES[0] for c in cities])
    y = y + 0.3 * rng.normal(size=n)
    rows = [["x0", "x1", "x2", header, "y"]]
    for i in range(n):
        city = cities[i] if i >= accent_from else cities[i].replace("ü", "u").replace(
            "è", "e").replace("ö", "o")
        rows.append([repr(float(v)) for v in X[i]] + [city, repr(float(y[i]))])
    return rows


def _text(rows: list[list[str]], eol: str = "\n") -> str:
    return "".join(",".join(r) + eol for r in rows)


def _apply_both(path: Path, reference: Path, tmp_path: Path, keep: str = "city") -> None:
    """``transform`` and ``predict`` read ``path`` exactly as ``reference`` (UTF-8 output)."""
    result = tmp_path / "result.json"
    ok(invoke("fit", reference, "-t", "y", "--format", "json", "-o", result))
    for command, option in (("transform", "--selection"), ("predict", "--model")):
        want = ok(invoke(command, reference, option, result, "--keep", keep))
        got = ok(invoke(command, path, option, result, "--keep", keep))
        assert got.stdout == want.stdout, command
        assert "Zürich" in got.stdout


# -- encodings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["header", "first row", "late block"])
def test_latin1_is_read_wherever_its_first_accent_is(tmp_path, monkeypatch, where):
    header = "Größe" if where == "header" else "city"
    accent_from = 230 if where == "late block" else 0
    rows = _table(header=header, accent_from=accent_from)
    text = _text(rows)
    if where == "late block":
        # Blocks of about 1 KiB (about 12 rows each): the first accented letter (row 230) is
        # read long after the first block fixed the column types.
        monkeypatch.setattr(l1io, "CSV_BLOCK", 1024)
        monkeypatch.setattr(l1io, "ROWS_PER_BLOCK", 1)
        assert text.index("ü") > 10 * 1024
    reference = tmp_path / "utf8.csv"
    reference.write_bytes(text.encode("utf-8"))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(text.encode("latin-1"))
    # Every level its own feature (the accented ones may be rare): the point is how they read.
    want = fit_json(reference, "-t", "y", "--min-level-count", "1")
    got = fit_json(latin1, "-t", "y", "--min-level-count", "1")
    # The Latin-1 file is shorter (one byte per accented letter): other block cuts, so other
    # batches and merge order; the same rows and numbers up to rounding.
    assert got["input"]["n_rows_used"] == want["input"]["n_rows_used"] == 240
    assert_same_numbers(got, want)
    levels = {f["name"] for f in got["features"] if f["column"] == header}
    assert f"{header}=Zürich" in levels
    assert_same_numbers(fit_json("-", "-t", "y", "--min-level-count", "1",
                                 input=latin1.read_bytes()), want)  # stdin
    _apply_both(latin1, reference, tmp_path, keep=header)


def test_windows_1252_punctuation_and_utf8_in_one_file(tmp_path):
    """Bytes that are not UTF-8 are Windows-1252 (the euro sign is 0x80 there), and UTF-8 in
    the same file stays UTF-8: each byte is read the same way wherever the blocks are cut."""
    raw = "prix €,Zürich\n".encode("cp1252") + "Zürich,€\n".encode() + b"\x81\xe0\n"
    assert l1io.utf8_text(raw).decode("utf-8") == "prix €,Zürich\nZürich,€\n\x81à\n"
    rng = np.random.default_rng(5)
    # The fast paths (all UTF-8; no UTF-8 sequence at all) agree with the byte-by-byte rule.
    for _ in range(200):
        buf = bytes(rng.choice([0x41, 0x2C, 0x0A, 0x80, 0xA9, 0xBB, 0xC3, 0xE9, 0xF0, 0xFC],
                               size=int(rng.integers(1, 12))).astype(np.uint8))
        want = buf.decode("utf-8", "l1select-cp1252").encode("utf-8")
        assert l1io.utf8_text(buf) == want, buf
    for _ in range(20):
        cuts = sorted(rng.choice(np.arange(1, len(raw)), size=3, replace=False))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        decoder = l1io._Decoder(raw, "test")
        out = b"".join(decoder.decode(p) for p in pieces) + decoder.decode(b"", final=True)
        assert out == l1io.utf8_text(raw)


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"),
                                           ("utf-16-be", b"\xfe\xff"),
                                           ("utf-8", b"\xef\xbb\xbf")])
def test_a_byte_order_mark_decides_the_encoding(tmp_path, encoding, bom):
    text = _text(_table())
    reference = tmp_path / "utf8.csv"
    reference.write_bytes(text.encode("utf-8"))
    marked = tmp_path / "marked.csv"
    marked.write_bytes(bom + text.encode(encoding))
    want = fit_json(reference, "-t", "y")
    got = fit_json(marked, "-t", "y")
    assert got["input"]["n_rows_used"] == 240
    assert_same_numbers(got, want)
    assert [f["name"] for f in got["features"]][:3] == ["x0", "x1", "x2"]  # no BOM in a name
    # input.sha256 covers the bytes read, as they are stored.
    import hashlib

    assert got["input"]["sha256"] == hashlib.sha256(marked.read_bytes()).hexdigest()
    assert_same_numbers(fit_json("-", "-t", "y", input=marked.read_bytes()), want)
    _apply_both(marked, reference, tmp_path)


def test_utf16_across_blocks_and_gzip(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setattr(l1io, "CSV_BLOCK", 1001)  # odd: blocks cut UTF-16 code units in two
    monkeypatch.setattr(l1io, "ROWS_PER_BLOCK", 1)
    text = _text(_table())
    reference = tmp_path / "utf8.csv"
    reference.write_bytes(text.encode("utf-8"))
    packed = tmp_path / "utf16.csv.gz"
    packed.write_bytes(gzip.compress(b"\xff\xfe" + text.encode("utf-16-le")))
    assert_same_numbers(fit_json(packed, "-t", "y"), fit_json(reference, "-t", "y"))


@pytest.mark.parametrize("content", [
    bytes(np.random.default_rng(1).integers(0, 256, size=4000, dtype=np.uint8)),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
    "x0,y\n1,2\n3,4\n".encode("utf-16-le"),  # UTF-16 without its mark cannot be told apart
], ids=["random", "png", "utf16-without-bom"])
def test_binary_data_is_still_refused(tmp_path, content):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    assert_error(invoke("fit", path, "-t", "y"), 1, "binary file")


# -- line ends ---------------------------------------------------------------------------------

@pytest.mark.parametrize("eol", ["\r", "\r\n"])
def test_every_line_end_ends_a_line(tmp_path, monkeypatch, eol):
    rows = _table()
    for i in range(1, len(rows), 9):  # quoted cells holding each kind of line break
        rows[i][3] = f'"{rows[i][3]}{eol}{["", "n", "r"][i % 3]}"'
    reference = tmp_path / "lf.csv"
    reference.write_bytes(_text(rows, "\n").encode("utf-8"))
    other = tmp_path / "other.csv"
    other.write_bytes(_text(rows, eol).encode("utf-8"))
    want = fit_json(reference, "-t", "y")
    assert_same_numbers(fit_json(other, "-t", "y"), want)
    monkeypatch.setattr(l1io, "CSV_BLOCK", 700)  # records cut across many blocks
    monkeypatch.setattr(l1io, "ROWS_PER_BLOCK", 1)
    got = fit_json(other, "-t", "y")
    assert got["input"]["n_rows_used"] == 240
    assert_same_numbers(got, want)
    # transform writes a quoted cell's line break back quoted (Arrow reads a CRLF inside a
    # quoted cell as LF), so that the output has as many records as the input.
    result = tmp_path / "result.json"
    result.write_text(json.dumps(want))
    out = ok(invoke("transform", other, "--selection", result, "--keep", "city")).stdout
    assert f'"Zürich{eol if eol == chr(13) else chr(10)}n"' in out  # the first data row's
    assert len(list(csv.reader(io.StringIO(out, newline="")))) == 241


def test_a_header_with_a_quoted_line_break(tmp_path):
    rows = _table()
    rows[0][2] = '"x2\nsecond line"'
    path = tmp_path / "h.csv"
    path.write_bytes(_text(rows).encode("utf-8"))
    doc = fit_json(path, "-t", "y")
    assert doc["input"]["n_rows"] == 240
    assert "x2\nsecond line" in {f["name"] for f in doc["features"]}


# -- names from the data in messages -----------------------------------------------------------

NASTY = ["two\nlines", "carriage\rreturn", "bell\x07and\x1b[31mcolour", "sep\u2028arator",
         "tab\there"]


def test_escaped_keeps_a_name_on_one_line():
    from l1select.errors import escaped, quoted

    assert escaped("two\nlines") == "two\\nlines"
    assert quoted("a\r\tb\x07\x9b\u2029") == "'a\\r\\tb\\x07\\x9b\\u2029'"
    assert escaped("Zürich, ok") == "Zürich, ok"  # letters of any script stay as they are
    for name in NASTY:
        assert len(quoted(name).splitlines()) == 1 and quoted(name).isprintable()


def _nasty_csv(tmp_path: Path, name: str, infinite: bool = False) -> Path:
    rows = _table()
    rows[0][2] = '"' + name + '"'
    if infinite:
        rows[7][2] = "inf"
    path = tmp_path / "nasty.csv"
    path.write_bytes(_text(rows).encode("utf-8"))
    return path


@pytest.mark.parametrize("name", NASTY)
def test_errors_quoting_a_header_name_stay_one_line(tmp_path, name):
    path = _nasty_csv(tmp_path, name, infinite=True)
    # The bad cell of the column: "Column '…' in FILE has an infinite value at line 8".
    line = assert_error(invoke("fit", path, "-t", "y"), 1, "infinite value", "line 8")
    assert line.isprintable()
    # A misspelt target: the did-you-mean hint and the column list quote the name.
    line = assert_error(invoke("fit", path, "-t", name + "x"), 1, "not found", "did you mean")
    assert line.isprintable()
    # Duplicate names.
    rows = _table()
    rows[0][1] = rows[0][2] = '"' + name + '"'
    dup = tmp_path / "dup.csv"
    dup.write_bytes(_text(rows).encode("utf-8"))
    assert assert_error(invoke("fit", dup, "-t", "y"), 1, "duplicate column names").isprintable()


@pytest.mark.parametrize("name", NASTY[:2])
def test_warnings_and_apply_errors_quoting_a_name_stay_one_line(tmp_path, name):
    rows = _table()
    rows[0][3] = '"' + name + '"'
    for i, row in enumerate(rows[1:]):
        row[3] = f"id{i}"  # free text: excluded with a warning that names the column
    path = tmp_path / "w.csv"
    path.write_bytes(_text(rows).encode("utf-8"))
    result = ok(invoke("fit", path, "-t", "y", "--format", "json"))
    lines = result.stderr.strip("\n").split("\n")
    assert lines and all(ln.startswith("warning:") for ln in lines), result.stderr
    assert any(name.encode("unicode_escape").decode() in ln for ln in lines)
    # predict on data that lacks a column the model uses, named like that.
    model = tmp_path / "m.json"
    ok(invoke("fit", _nasty_csv(tmp_path, name), "-t", "y", "--format", "json", "-o", model))
    assert name in {f["name"] for f in json.loads(model.read_text())["features"]}
    doc = json.loads(model.read_text())
    for f in doc["features"]:  # make the model use that column
        f["coef"] = 1.0 if f["name"] == name else f["coef"]
    model.write_text(json.dumps(doc))
    other = tmp_path / "other.csv"
    other.write_bytes(_text(_table()).encode("utf-8"))
    line = assert_error(invoke("predict", other, "--model", model), 1, "lacks")
    assert line.isprintable()

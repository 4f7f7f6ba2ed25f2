"""A seeded fuzz test: mutated copies of a realistic CSV never crash ``l1select fit``.

Every case mutates the sample data's first 200 rows: cells replaced by infinities, huge, tiny
and subnormal numbers, NaN, garbage, 5,000-character strings, quotes and NUL bytes; ragged
rows; a column of one value; a file cut mid-line; CRLF line ends with a BOM; columns scaled by
1e300 or 1e-300. Whatever the input, the run ends with exit 0, 1 or 2, no traceback and no
Python warning; on success stdout is valid JSON without NaN, on failure stdout is empty and the
last line of stderr is l1select's one ``Error:`` line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cli_helpers import HOUSING_CSV, invoke, strict_loads

N_CASES = 40
CELLS = ["inf", "-inf", "Infinity", "1e308", "-1e308", "1e-320", "NaN", "nan", "", "x#@!",
         "A" * 5000, '"', '"a,""b"""', "\x00", "12\x003", "1" + "0" * 400, "0." + "0" * 400 + "1",
         "1e999", "-0", "  7  ", "1,234", "1," + "000," * 130 + "000", "$5", "2022-13-45",
         "true"]

# Each case also runs one of these: the in-memory engines, other missing-value and split paths.
OPTIONS = [[], ["--engine", "data"], ["--missing", "drop"], ["--test-size", "0.3"],
           ["--engine", "reference", "--no-standardize"]]


def _rows() -> list[list[str]]:
    import csv

    with open(HOUSING_CSV, newline="") as fh:
        return [row for _, row in zip(range(201), csv.reader(fh), strict=False)]


def _cell(value: str) -> str:
    if any(c in value for c in ',"\n\r') and not value.startswith('"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _mutate(rng: np.random.Generator, rows: list[list[str]]) -> tuple[bytes, str]:
    header, body = rows[0], [list(r) for r in rows[1:]]
    n_cols = len(header)
    done = []
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 9))
        j = int(rng.integers(0, n_cols))
        if kind <= 2:  # a few cells
            for _ in range(int(rng.integers(1, 6))):
                row = body[int(rng.integers(0, len(body)))] if body else []
                if j < len(row):  # (a ragged row may be short)
                    row[j] = str(rng.choice(CELLS))
            done.append(f"cells of {header[j]}")
        elif kind == 3 and body:  # a ragged row
            i = int(rng.integers(0, len(body)))
            body[i] = body[i][:-2] if rng.random() < 0.5 else body[i] + ["1", "2"]
            done.append("ragged")
        elif kind == 4:  # a column of one value
            value = str(rng.choice(["0", "1", "1e300", "x", ""]))
            for r in body:
                if j < len(r):
                    r[j] = value
            done.append(f"{header[j]} = {value!r}")
        elif kind == 5:  # a column scaled by 1e300 or 1e-300
            factor = float(rng.choice([1e300, 1e-300]))
            for r in body:
                try:
                    r[j] = repr(float(r[j]) * factor)
                except (ValueError, IndexError):
                    pass
            done.append(f"{header[j]} × {factor:g}")
        elif kind == 6:  # rows of the file's end dropped
            body = body[: int(rng.integers(0, 20))]
            done.append(f"{len(body)} rows")
        elif kind == 7:  # a whole column of huge, tiny or missing values
            value = str(rng.choice(["1e308", "1e-320", "NaN", "inf"]))
            for r in body:
                if j < len(r):
                    r[j] = value
            done.append(f"{header[j]} all {value}")
        elif body:  # a cell replaced in the target
            body[int(rng.integers(0, len(body)))][-1] = str(rng.choice(CELLS))
            done.append("target cell")
    text = "\n".join(",".join(_cell(c) for c in r) for r in [header] + body) + "\n"
    data = text.encode("utf-8")
    tail = rng.random()
    if tail < 0.15:  # cut mid-line
        data = data[: int(rng.integers(len(data) // 2, len(data)))]
        done.append("cut")
    elif tail < 0.3:
        data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
        done.append("CRLF+BOM")
    return data, "; ".join(done)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_a_mutated_file_never_crashes(tmp_path, seed):
    rng = np.random.default_rng([11, seed])
    data, what = _mutate(rng, _rows())
    path = tmp_path / "mutated.csv"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # pytest would hide a warning the CLI lets through
        result = invoke("fit", path, "-t", "price", "--format", "json", "--n-alphas", "20",
                        *OPTIONS[seed % len(OPTIONS)])
    where = f"case {seed} ({what}): exit {result.exit_code}\n{result.stderr[-2000:]}"
    assert result.exit_code in (0, 1, 2), where
    assert isinstance(result.exception, SystemExit | None), f"{where}\n{result.exception!r}"
    assert "Traceback" not in result.stderr, where
    assert shown == [], f"{where}\n{[str(w.message) for w in shown]}"
    lines = result.stderr.splitlines()
    assert all(line.startswith(("warning: ", "Error: ")) for line in lines), where
    if result.exit_code == 0:
        doc = strict_loads(result.stdout)  # fails on NaN and Infinity
        assert doc["input"]["target"] == "price", where
    else:
        assert result.stdout == "", where
        assert lines and lines[-1].startswith("Error: "), where
        assert sum(line.startswith("Error: ") for line in lines) == 1, where

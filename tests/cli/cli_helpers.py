"""Helpers for the end-to-end tests of the command line (imported by the tests and conftest).

Every data set is made here from a seeded ``numpy.random.default_rng`` (never global random
state), or is the bundled sample in ``sample_data/``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
from typer.testing import CliRunner, Result

from l1select.cli import app

REPO = Path(__file__).resolve().parents[2]
HOUSING_CSV = REPO / "sample_data" / "housing.csv"
HOUSING_PARQUET = REPO / "sample_data" / "housing.parquet"

# The sparse truth of ``sparse_columns``: y = 3·x0 − 2·x2 + noise; x1, x3, x4 are noise.
TRUE_SUPPORT = ["x0", "x2"]
FEATURES = ["x0", "x1", "x2", "x3", "x4"]

# The top-level keys of DESIGN.md's JSON contract (schema_version 1).
CONTRACT_KEYS = {"schema_version", "tool", "input", "params", "alpha", "cv", "intercept",
                 "features", "selected", "sparsity", "warnings"}


def sparse_columns(n: int = 200, seed: int = 0) -> dict[str, list]:
    """200 rows x 5 standard-normal features with a known sparse truth (see TRUE_SUPPORT)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    y = 3.0 * X[:, 0] - 2.0 * X[:, 2] + 0.5 * rng.normal(size=n)
    cols = {name: [float(v) for v in X[:, j]] for j, name in enumerate(FEATURES)}
    cols["y"] = [float(v) for v in y]
    return cols


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # full precision, so CSV and Parquet hold the same numbers
    return str(value)


def csv_text(columns: dict[str, list], delimiter: str = ",") -> str:
    """The columns as CSV text (header + rows, ``\\n`` line ends, minimal quoting)."""
    n = len(next(iter(columns.values())))
    rows = [list(columns)] + [[_cell(columns[c][i]) for c in columns] for i in range(n)]
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, columns: dict[str, list], delimiter: str = ",",
              prefix: bytes = b"", encoding: str = "utf-8") -> Path:
    path.write_bytes(prefix + csv_text(columns, delimiter).encode(encoding))
    return path


def write_parquet(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def invoke(*args, input: bytes | None = None) -> Result:
    """Run ``l1select ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def _no_constant(token: str):
    raise AssertionError(f"JSON output contains the non-standard token {token}")


def strict_loads(text: str):
    """json.loads that fails on NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_no_constant)


def ok(result: Result) -> Result:
    """Assert a successful run, with a readable message when it is not."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstderr: {result.stderr}\nexception: {result.exception!r}"
    )
    assert "Traceback" not in result.stderr
    return result


def fit_json(*args, input: bytes | None = None) -> dict:
    """``l1select fit ARGS --format json``, checked to succeed and parsed strictly."""
    result = ok(invoke("fit", *args, "--format", "json", input=input))
    return strict_loads(result.stdout)


def assert_error(result: Result, code: int, *needles: str) -> str:
    """An expected error: exit ``code``, one ``Error:`` line on stderr, nothing on stdout."""
    assert result.exit_code == code, (
        f"exit {result.exit_code} (wanted {code})\nstdout: {result.stdout[:500]}\n"
        f"stderr: {result.stderr}\nexception: {result.exception!r}"
    )
    # An unexpected exception would be caught by CliRunner and hide as exit 1.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"wanted one line on stderr, got: {result.stderr!r}"
    line = lines[0]
    assert line.startswith("Error:"), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def features_by_name(doc: dict) -> dict[str, dict]:
    return {f["name"]: f for f in doc["features"]}


def without_source(doc: dict) -> dict:
    """The document less input.source and input.sha256 (which differ between file and stdin)."""
    doc = json.loads(json.dumps(doc))
    doc["input"].pop("source")
    doc["input"].pop("sha256")
    return doc


def assert_same_numbers(a: dict, b: dict, rtol: float = 1e-9) -> None:
    """Same features, selection and coefficients; floats compared with ``allclose``.

    ``rtol`` 1e-9: the same floats go through two readers (CSV text and Parquet doubles, or two
    delimiters); the solver is deterministic, so anything beyond rounding is a real difference.
    """
    assert [f["name"] for f in a["features"]] == [f["name"] for f in b["features"]]
    assert a["selected"] == b["selected"]
    np.testing.assert_allclose([f["coef"] for f in a["features"]],
                               [f["coef"] for f in b["features"]], rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a["intercept"], b["intercept"], rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a["alpha"]["chosen"], b["alpha"]["chosen"], rtol=rtol)

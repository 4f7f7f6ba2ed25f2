"""transform, predict and the machine formats, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import HOUSING_CSV, assert_error, invoke, ok


@pytest.fixture(scope="module")
def result_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "result.json"
    r = invoke("fit", HOUSING_CSV, "-t", "price", "--format", "json", "-o", path, "-q")
    assert r.exit_code == 0, r.stderr
    return path


def _csv(text: str) -> pa.Table:
    return pacsv.read_csv(pa.BufferReader(text.encode()))


def test_transform_keeps_selected_columns_in_original_order_and_values(result_json):
    doc = json.loads(result_json.read_text())
    r = invoke("transform", HOUSING_CSV, "--selection", result_json, "--keep", "listing_id")
    assert r.exit_code == 0, r.stderr
    header = r.stdout.splitlines()[0].split(",")
    source_header = HOUSING_CSV.read_text().splitlines()[0].split(",")
    selected_columns = {f["column"] for f in doc["features"] if f["selected"]}
    expected = [c for c in source_header
                if c in selected_columns | {"price", "listing_id"}]
    assert header == expected
    # Values are the file's own text, cell for cell.
    src = [ln.split(",") for ln in HOUSING_CSV.read_text().splitlines()]
    idx = [source_header.index(c) for c in expected]
    want = "\n".join(",".join(row[i] for i in idx) for row in src) + "\n"
    assert r.stdout == want


def test_transform_then_fit_selects_the_same_features(tmp_path, result_json):
    doc = json.loads(result_json.read_text())
    reduced = tmp_path / "reduced.csv"
    assert invoke("transform", HOUSING_CSV, "-s", result_json, "-o", reduced).exit_code == 0
    again = invoke("fit", reduced, "-t", "price", "--format", "json", "-q")
    assert again.exit_code == 0, again.stderr
    new = json.loads(again.stdout)
    assert new["selected"] == doc["selected"]
    old = {f["name"]: f["coef"] for f in doc["features"] if f["selected"]}
    got = {f["name"]: f["coef"] for f in new["features"] if f["selected"]}
    for name, coef in old.items():
        # Solver tolerance (duality gap 1e-10 relative) on both fits.
        assert got[name] == pytest.approx(coef, rel=1e-6)


def test_transform_to_parquet_and_from_stdin(tmp_path, result_json):
    out = tmp_path / "reduced.parquet"
    r = invoke("transform", "-", "-s", result_json, "-o", out, input=HOUSING_CSV.read_bytes())
    assert r.exit_code == 0, r.stderr
    table = pq.read_table(out)
    assert table.num_rows == 3000 and "price" in table.column_names


def test_predict_reproduces_the_in_sample_predictions(tmp_path, result_json):
    from l1select.prepare import design_matrix
    from l1select.select import predict
    from l1select.types import ColumnSpec, FeatureSpec, Recipe

    doc = json.loads(result_json.read_text())
    r = invoke("predict", HOUSING_CSV, "--model", result_json, "--keep", "listing_id")
    assert r.exit_code == 0, r.stderr
    out = _csv(r.stdout)
    assert out.column_names == ["prediction", "listing_id"]
    assert out.num_rows == 3000  # every row, even those without a price
    rec = doc["recipe"]
    recipe = Recipe(
        target=rec["target"],
        columns=tuple(ColumnSpec(c["name"], c["kind"], tuple(c["levels"] or ()))
                      for c in rec["columns"]),
        features=tuple(FeatureSpec(f["name"], f["column"], f["kind"], f["level"])
                       for f in rec["features"]),
    )
    table = pacsv.read_csv(HOUSING_CSV)
    X = design_matrix(table, recipe)
    coef = np.array([f["coef"] for f in doc["features"]])
    impute = np.array([f["impute"] for f in rec["features"]])
    expected = predict(X, coef, doc["intercept"], impute)
    got = np.array(out.column("prediction").to_pylist())
    np.testing.assert_array_equal(got, expected)  # exactly: same design, same product


def test_predict_without_the_target_and_with_unseen_levels(tmp_path, result_json):
    lines = HOUSING_CSV.read_text().splitlines()
    header = lines[0].split(",")
    price = header.index("price")
    hood = header.index("neighborhood")
    rows = [ln.split(",") for ln in lines[1:6]]
    rows[0][hood] = "Atlantis"
    text = "\n".join(",".join(c for i, c in enumerate(r) if i != price)
                     for r in [header] + rows) + "\n"
    r = invoke("predict", "-", "-m", result_json, input=text.encode())
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 6
    assert "Atlantis" in r.stderr and "not seen at fit time" in r.stderr


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda h, r: (h, [x[:3] + x[4:] for x in r], 3), "lacks"),
    (lambda h, r: (h, [x[:3] + ["big"] + x[4:] for x in r], None), "held numbers at fit time"),
])
def test_predict_errors(tmp_path, result_json, edit, needle):
    lines = HOUSING_CSV.read_text().splitlines()
    header = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:20]]
    h, rows, drop = edit(header, rows)
    if drop is not None:
        h = h[:drop] + h[drop + 1:]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(",".join(x) for x in [h] + rows) + "\n")
    assert_error(invoke("predict", path, "-m", result_json, "-o", tmp_path / "p.csv"), 1, needle)
    assert not (tmp_path / "p.csv").exists()
    assert not list(tmp_path.glob(".p.csv*"))


def test_model_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for model in (bad, tmp_path / "missing.json"):
        assert_error(invoke("predict", HOUSING_CSV, "-m", model), 1, "result")


def test_names_and_ndjson(result_json):
    doc = json.loads(result_json.read_text())
    names = invoke("fit", HOUSING_CSV, "-t", "price", "--format", "names", "-q")
    assert names.stdout.splitlines() == doc["selected"]
    nd = invoke("fit", HOUSING_CSV, "-t", "price", "--format", "ndjson", "-q")
    rows = [json.loads(line) for line in nd.stdout.splitlines()]
    assert rows == doc["features"]


def test_names_with_brackets_stay_text_in_the_table(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    lines = ["[bold]x,size[m2],y"] + [
        f"{a:.6f},{b:.6f},{2 * a + rng.normal():.6f}"
        for a, b in zip(x, rng.normal(size=200), strict=True)]
    path = tmp_path / "brackets.csv"
    path.write_text("\n".join(lines) + "\n")
    r = invoke("fit", path, "-t", "y", "--features", "*x", "--features", "size*")
    assert r.exit_code == 0, r.stderr
    assert "[bold]x" in r.stdout


def test_predict_to_a_file_when_a_column_turns_to_text_late(tmp_path, monkeypatch):
    """The output is written again from the top, once, after the late type change."""
    from l1select import io as l1io

    monkeypatch.setattr(l1io, "CSV_BLOCK", 1024)
    monkeypatch.setattr(l1io, "ROWS_PER_BLOCK", 1)
    rng = np.random.default_rng(2)
    n = 400
    x = rng.normal(size=n)
    code = [str(i % 2) if i % 5 else "x" for i in range(n)]  # a category: 0, 1 and x
    train = tmp_path / "train.csv"
    train.write_text("x,code,y\n" + "".join(
        f"{a:.6f},{c},{2 * a + rng.normal():.6f}\n" for a, c in zip(x, code, strict=True)))
    result = tmp_path / "r.json"
    assert invoke("fit", train, "-t", "y", "--format", "json", "-o", result, "-q").exit_code == 0
    late = [str(i % 2) for i in range(n - 1)] + ["x"]  # numbers-only until the last row
    new = tmp_path / "new.csv"
    new.write_text("x,code\n" + "".join(f"{a:.6f},{c}\n" for a, c in zip(x, late, strict=True)))
    out = tmp_path / "p.csv"
    r = invoke("predict", new, "-m", result, "-o", out)
    assert r.exit_code == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == n + 1
    assert not list(tmp_path.glob(".p.csv*"))


# --------------------------------------------------------------------------------------------
# transform: error paths (one Error: line, exit 1 for bad input, 2 for usage; no output file)
# --------------------------------------------------------------------------------------------


def _without_column(tmp_path: Path, column: str) -> Path:
    table = pacsv.read_csv(HOUSING_CSV)
    path = tmp_path / "less.csv"
    pacsv.write_csv(table.drop_columns([column]).slice(0, 50), path)
    return path


def test_transform_data_without_a_selected_column(tmp_path, result_json):
    dropped = json.loads(result_json.read_text())["selected"][0]
    out = tmp_path / "out.csv"
    assert_error(invoke("transform", _without_column(tmp_path, dropped), "-s", result_json,
                        "-o", out), 1, "lacks selected columns", dropped)
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


def test_transform_keep_column_missing_suggests_a_name(tmp_path, result_json):
    out = tmp_path / "out.parquet"
    line = assert_error(invoke("transform", HOUSING_CSV, "-s", result_json, "--keep",
                               "listing_ids", "-o", out), 1, "lacks the --keep columns")
    assert "listing_id" in line.split("listing_ids", 1)[1]  # did you mean 'listing_id'
    assert not out.exists()


@pytest.mark.parametrize("content", [None, "{not json", '{"schema_version": 1}',
                                     '{"schema_version": 2, "recipe": {}}'],
                         ids=["missing", "not-json", "no-recipe", "other-version"])
def test_transform_selection_file_errors(tmp_path, content):
    selection = tmp_path / "selection.json"
    if content is not None:
        selection.write_text(content)
    assert_error(invoke("transform", HOUSING_CSV, "-s", selection), 1, str(selection),
                 "fit")


def test_transform_missing_data_file(tmp_path, result_json):
    assert_error(invoke("transform", tmp_path / "nope.csv", "-s", result_json), 1, "nope.csv")


def test_transform_without_selection_is_a_usage_error():
    assert_error(invoke("transform", HOUSING_CSV), 2, "--selection")


def test_transform_a_text_cell_in_a_numeric_selected_column(tmp_path, result_json):
    selected = json.loads(result_json.read_text())["selected"]
    numeric = next(c for c in selected if "=" not in c and c != "has_pool")
    table = pacsv.read_csv(HOUSING_CSV).slice(0, 30)
    values = table.column(numeric).to_pylist()
    values[7] = "n/a?"
    table = table.set_column(table.schema.get_field_index(numeric), numeric,
                             pa.array([str(v) for v in values]))
    path = tmp_path / "text.csv"
    pacsv.write_csv(table, path)
    # transform copies the values as they are: a text cell is passed through, not an error.
    r = ok(invoke("transform", path, "-s", result_json))
    assert "n/a?" in r.stdout

"""Categoricals end to end: pooled levels carried to predict, one line per column."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from typer.testing import CliRunner

from l1select.cli import app
from tests.unit.test_categoricals import _pooled_csv

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def _fit_json(tmp_path, *extra):
    data = _pooled_csv(tmp_path / "d.csv")
    out = tmp_path / "r.json"
    r = run("fit", data, "-t", "y", "--format", "json", "-o", out, "-q", *extra)
    assert r.exit_code == 0, r.stderr
    return data, out, json.loads(out.read_text())


def test_predict_applies_the_pooling_of_fit(tmp_path):
    from l1select.prepare import design_matrix
    from l1select.select import predict
    from l1select.types import ColumnSpec, FeatureSpec, Recipe

    data, out, doc = _fit_json(tmp_path)
    r = run("predict", data, "--model", out)
    assert r.exit_code == 0, r.stderr
    rec = doc["recipe"]
    recipe = Recipe(
        target=rec["target"],
        columns=tuple(ColumnSpec(c["name"], c["kind"], tuple(c["levels"] or ()),
                                 tuple(c.get("pooled") or ())) for c in rec["columns"]),
        features=tuple(FeatureSpec(f["name"], f["column"], f["kind"], f["level"])
                       for f in rec["features"]),
    )
    table = pacsv.read_csv(data, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    X = design_matrix(table, recipe)
    other = [f["name"] for f in rec["features"]].index("grade=(other)")
    rare = np.isin(np.array(table.column("grade").to_pylist(), dtype=object),
                   ["R0", "R1", "R2", "R3"])
    np.testing.assert_array_equal(X[:, other] == 1.0, rare)
    coef = np.array([f["coef"] for f in doc["features"]])
    impute = np.array([f["impute"] for f in rec["features"]])
    expected = predict(X, coef, doc["intercept"], impute)
    got = np.array(pacsv.read_csv(pa.BufferReader(r.stdout.encode()))
                   .column("prediction").to_pylist())
    np.testing.assert_array_equal(got, expected)  # exactly: same design, same product


def test_unseen_levels_go_to_other_without_a_warning(tmp_path):
    data, out, doc = _fit_json(tmp_path)
    table = pacsv.read_csv(data)
    grade = table.column("grade").to_pylist()
    rare = next(i for i, v in enumerate(grade) if v == "R0")
    rows = table.take([rare, rare])
    rows = rows.set_column(0, "grade", pa.array(["R0", "Atlantis"]))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink)
    r = run("predict", "-", "-m", out, input=sink.getvalue().to_pybytes())
    assert r.exit_code == 0, r.stderr
    pred = [float(v) for v in r.stdout.splitlines()[1:]]
    assert pred[0] == pred[1]  # a rare level and an unseen one are both (other)
    assert "not seen at fit time" not in r.stderr


def test_one_answer_per_column_in_json_table_and_report(tmp_path):
    data, out, doc = _fit_json(tmp_path)
    cols = {c["column"]: c for c in doc["columns"]}
    assert list(cols) == ["grade", "x0", "x1", "x2"]  # the source order
    grade = cols["grade"]
    levels = [f for f in doc["features"] if f["column"] == "grade"]
    chosen = [f["name"] for f in levels if f["selected"]]
    assert grade["kind"] == "categorical" and grade["n_features"] == len(levels) == 9
    assert grade["n_selected"] == len(chosen) > 0 and grade["selected"] is True
    assert grade["features"] == [n for n in doc["selected"] if n in chosen]
    assert cols["x0"]["kind"] == "numeric" and cols["x0"]["n_features"] == 1
    assert cols["x2"]["selected"] == ("x2" in doc["selected"])
    # The contract's keys are all still there.
    for key in ("features", "selected", "sparsity", "recipe", "warnings"):
        assert key in doc

    r = run("fit", data, "-t", "y", "-q", "--report", tmp_path / "r.html")
    assert r.exit_code == 0, r.stderr
    head = f"grade — {len(chosen)} of 9 levels"
    assert head in " ".join(r.stdout.split())
    lines = r.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if "grade —" in ln)
    level = chosen[0].split("=", 1)[1]
    assert any(f"│   {level} " in ln for ln in lines[start:start + 3 + len(chosen)])
    assert not any("grade=" in ln for ln in lines)  # levels are shown under their column
    html = (tmp_path / "r.html").read_text()
    assert f"<b>grade</b> — {len(chosen)} of 9 levels selected" in html
    n_cols = sum(c["selected"] for c in doc["columns"])
    assert f"4 source columns, {n_cols} selected" in html


def test_group_categoricals_on_the_command_line(tmp_path):
    data, out, doc = _fit_json(tmp_path, "--group-categoricals")
    grade = next(c for c in doc["columns"] if c["column"] == "grade")
    assert grade["n_selected"] in (0, grade["n_features"])
    assert doc["params"]["group_categoricals"] is True
    r = run("fit", data, "-t", "y", "--group-categoricals", "--engine", "data")
    assert r.exit_code == 2 and r.stdout == ""
    assert "--group-categoricals" in r.stderr and "--engine gram" in r.stderr

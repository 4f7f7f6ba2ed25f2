"""``--measure mae`` with a numeric target through the CLI: the JSON and the usage errors."""

from __future__ import annotations

from tests.cli.cli_helpers import assert_error, fit_json, invoke, sparse_columns, write_csv


def test_mae_runs_on_the_data_engine_under_auto(tmp_path):
    path = write_csv(tmp_path / "d.csv", sparse_columns())
    doc = fit_json(path, "-t", "y", "--measure", "mae", "-q")
    assert doc["params"]["engine"] == "data" and doc["params"]["measure"] == "mae"
    assert doc["cv"]["metric"] == "mae" and doc["cv"]["r2"] is None
    assert set(doc["selected"]) >= {"x0", "x2"}


def test_mae_on_the_gram_engine_is_a_usage_error(tmp_path):
    path = write_csv(tmp_path / "d.csv", sparse_columns())
    assert_error(invoke("fit", path, "-t", "y", "--measure", "mae", "--engine", "gram"), 2,
                 "--engine gram keeps only", "--engine data or --engine reference")

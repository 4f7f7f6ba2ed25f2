"""Observation weights with a numeric target through the CLI: fit, predict and the errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.cli_helpers import (
    TRUE_SUPPORT,
    assert_error,
    fit_json,
    invoke,
    ok,
    sparse_columns,
    write_csv,
)


def weighted_columns(n: int = 200, seed: int = 0) -> dict[str, list]:
    cols = sparse_columns(n, seed)
    cols["w"] = [float(v) for v in np.random.default_rng(seed + 1).integers(0, 4, size=n)]
    return cols


def test_a_weighted_gaussian_fit_and_predict(tmp_path):
    path = write_csv(tmp_path / "d.csv", weighted_columns())
    doc = fit_json(path, "-t", "y", "--weights", "w", "--test-size", "0.2", "-q")
    assert doc["params"]["weights"] == "w" and doc["params"]["family"] == "gaussian"
    assert doc["params"]["engine"] == "gram"
    assert "w" not in {f["name"] for f in doc["features"]}  # the weights are not a feature
    assert set(TRUE_SUPPORT) <= set(doc["selected"])
    assert doc["test"]["n_rows"] > 0 and 0.0 < doc["test"]["r2"] <= 1.0
    result = tmp_path / "r.json"
    ok(invoke("fit", path, "-t", "y", "--weights", "w", "--format", "json", "-o", str(result),
              "-q"))
    out = ok(invoke("predict", path, "-m", str(result))).stdout.splitlines()
    assert out[0] == "prediction" and len(out) == 201
    fitted = json.loads(result.read_text())
    cols = weighted_columns()
    first = fitted["intercept"] + sum(f["coef"] * cols[f["name"]][0]
                                      for f in fitted["features"])
    assert float(out[1]) == pytest.approx(first, rel=1e-12)  # printing rounds the last bits


def test_weights_with_the_data_engine_is_a_usage_error(tmp_path):
    path = write_csv(tmp_path / "d.csv", weighted_columns())
    assert_error(invoke("fit", path, "-t", "y", "--weights", "w", "--engine", "data"), 2,
                 "--engine data does not take --weights", "gram, dask or reference")


def test_a_bad_weight_in_a_late_batch_names_its_row(tmp_path):
    cols = weighted_columns(n=400)
    cols["w"][333] = -1.0
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(cols), path, row_group_size=50)  # several batches
    assert_error(invoke("fit", str(path), "-t", "y", "--weights", "w"), 1,
                 "negative weight at row 334")
    cols["w"] = ["heavy"] * 400
    text = write_csv(tmp_path / "t.csv", cols)
    assert_error(invoke("fit", text, "-t", "y", "--weights", "w"), 1, "is not numeric")

"""End to end: stability, alternates, penalty control, the OLS refit and the diagnostics
through ``l1select fit`` (and batch/config files)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from cli_helpers import (
    CONTRACT_KEYS,
    FEATURES,
    HOUSING_CSV,
    TRUE_SUPPORT,
    assert_error,
    features_by_name,
    fit_json,
    invoke,
    ok,
    strict_loads,
    write_csv,
)

NEW_FEATURE_KEYS = {"fold_frequency", "stability", "penalty_factor", "alternates", "coef_ols"}
NEW_TOP_KEYS = {"stability", "refit", "intercept_ols", "penalty"}


def test_a_plain_fit_keeps_the_contract_and_adds_the_new_keys(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y")
    assert CONTRACT_KEYS | NEW_TOP_KEYS <= set(doc)
    for f in doc["features"]:
        assert {"name", "column", "coef", "coef_std", "selected"} | NEW_FEATURE_KEYS <= set(f)
        assert f["penalty_factor"] == 1.0 and f["stability"] is None and f["coef_ols"] is None
        assert 0.0 <= f["fold_frequency"] <= 1.0
        if f["name"] in TRUE_SUPPORT:
            assert f["fold_frequency"] == 1.0
        assert (f["alternates"] == []) if f["selected"] else f["alternates"] is None
    assert doc["stability"] is doc["refit"] is doc["intercept_ols"] is doc["penalty"] is None
    assert doc["params"]["corr_threshold"] == 0.9 and doc["params"]["stability"] is None


def test_stability_in_json_table_and_csv(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--stability", "10", "--stability-threshold", "0.9")
    st = doc["stability"]
    assert st["pairs"] == 10 and st["threshold"] == 0.9 and st["stable"] == TRUE_SUPPORT
    assert st["bound"] == pytest.approx(st["q"] ** 2 / (0.8 * len(FEATURES)))
    assert doc["params"]["stability"] == {"pairs": 10, "threshold": 0.9}
    assert all(features_by_name(doc)[n]["stability"] == 1.0 for n in TRUE_SUPPORT)

    table = ok(invoke("fit", sparse_csv, "-t", "y", "--stability", "10")).stdout
    assert "stability" in table and "10 complementary pairs" in table
    assert "expected false selections ≤" in table

    out = ok(invoke("fit", sparse_csv, "-t", "y", "--stability", "10", "--format", "csv"))
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert out.stdout.splitlines()[0] == "name,column,coef,coef_std,selected,stability"
    assert {r["name"]: float(r["stability"]) for r in rows}["x0"] == 1.0


def test_refit_force_and_penalty_factor(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--refit", "ols", "--force", "x4",
                   "--penalty-factor", "x0=2", "--penalty-factor", "x1=0.5")
    f = features_by_name(doc)
    assert f["x4"]["selected"] and f["x4"]["penalty_factor"] == 0.0
    # glmnet rescaling: raw factors 2, 0.5, 1, 1, 0 (forced) sum to 4.5 over 5 features.
    assert f["x0"]["penalty_factor"] == pytest.approx(2 * 5 / 4.5)
    assert doc["penalty"]["forced"] == ["x4"]
    assert doc["params"]["force"] == ["x4"]
    assert doc["params"]["penalty_factor"] == {"x0": 2.0, "x1": 0.5}
    assert doc["refit"]["method"] == "ols" and "post-selection" in doc["refit"]["note"]
    assert all((x["coef_ols"] is None) != x["selected"] for x in doc["features"])
    assert isinstance(doc["intercept_ols"], float)
    table = ok(invoke("fit", sparse_csv, "-t", "y", "--refit", "ols", "--force", "x4")).stdout
    assert "coef (OLS)" in table and "forced" in table and "post-selection" in table


def test_adaptive_on_the_command_line(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--adaptive")
    assert doc["selected"] == TRUE_SUPPORT
    assert doc["penalty"]["adaptive"]["initial"] == "ols"


@pytest.mark.parametrize("args, code, needles", [
    (["--penalty-factor", "x0"], 2, ["--penalty-factor", "COL=WEIGHT"]),
    (["--penalty-factor", "x0=heavy"], 2, ["--penalty-factor"]),
    (["--force", "nope"], 2, ["--force 'nope' matches no feature"]),
    (["--stability-threshold", "0.5"], 2, ["--stability-threshold must be in (0.5, 1]"]),
    (["--stability", "0"], 2, ["--stability must be at least 1"]),
    (["--corr-threshold", "1.5"], 2, ["--corr-threshold"]),
    (["--refit", "ridge"], 2, ["--refit"]),
    (["--force", "x1", "--engine", "reference"], 2, ["--engine gram or --engine data"]),
])
def test_bad_options_are_one_line_errors(sparse_csv, args, code, needles):
    assert_error(invoke("fit", sparse_csv, "-t", "y", *args), code, *needles)


def test_warnings_reach_stderr_and_json(tmp_path):
    rng = np.random.default_rng(0)
    cols = {f"x{j}": [float(v) for v in rng.normal(size=60)] for j in range(3)}
    cols["y"] = [float(v) for v in (rng.random(60) < 0.5)]
    path = write_csv(tmp_path / "bin.csv", cols)
    result = ok(invoke("fit", path, "-t", "y", "--format", "json", "--family", "gaussian"))
    assert "two values" in result.stderr
    codes = {w["code"] for w in strict_loads(result.stdout)["warnings"]}
    assert "binary_target" in codes


def test_the_sample_data_names_the_decoy_as_an_alternate():
    doc = fit_json(HOUSING_CSV, "-t", "price", "-q")
    f = features_by_name(doc)
    assert f["sqft"]["selected"] and f["sqft"]["alternates"] == ["sqft_living_area"]
    assert any(w["code"] == "correlated_alternates" for w in doc["warnings"])


def test_batch_and_config_files_accept_the_new_keys(tmp_path, sparse_csv):
    job = tmp_path / "job.yaml"
    job.write_text(
        f"source: {sparse_csv}\ntarget: y\nstability: 5\nstability_threshold: 0.9\n"
        "corr_threshold: 0.95\nforce: x4\npenalty_factor: {x0: 2}\nadaptive: false\n"
        "refit: ols\n")
    doc = fit_json("--config", job)
    assert doc["stability"]["pairs"] == 5 and doc["stability"]["threshold"] == 0.9
    assert doc["params"]["corr_threshold"] == 0.95
    assert features_by_name(doc)["x4"]["penalty_factor"] == 0.0
    assert doc["params"]["penalty_factor"] == {"x0": 2.0}
    assert doc["refit"]["method"] == "ols"
    # The command line wins over the file.
    again = fit_json("--config", job, "--stability", "3", "--penalty-factor", "x1=3")
    assert again["stability"]["pairs"] == 3
    assert again["params"]["penalty_factor"] == {"x1": 3.0}


def test_config_problems_name_each_key(tmp_path, sparse_csv):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"source: {sparse_csv}\ntarget: y\nstability_threshold: 0.4\n"
                   "refit: lasso\npenalty_factor: [x0]\n")
    result = invoke("fit", "--config", bad)
    assert result.exit_code == 2 and result.stdout == ""
    err = result.stderr
    assert "has 3 problems" in err
    assert "stability_threshold (line 3)" in err
    assert "refit (line 4): must be one of ols" in err
    assert "penalty_factor (line 5)" in err

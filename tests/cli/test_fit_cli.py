"""``l1select fit`` end to end: sources, formats, options, the JSON contract, errors, pipes.

Everything runs in-process through ``typer.testing.CliRunner`` except what needs a real process:
``python -m l1select``, the import cost of ``--help``, ``--debug`` tracebacks and ``| head``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    CONTRACT_KEYS,
    FEATURES,
    HOUSING_CSV,
    HOUSING_PARQUET,
    TRUE_SUPPORT,
    assert_error,
    assert_same_numbers,
    csv_text,
    features_by_name,
    fit_json,
    invoke,
    is_int,
    is_number,
    ok,
    sparse_columns,
    strict_loads,
    without_source,
    write_csv,
    write_parquet,
)

from l1select import __version__
from tests.conftest import last_line

SOURCES = ["csv", "parquet", "stdin"]
FORMATS = ["table", "json", "csv"]
ANSI = "\x1b["


def _fit(source: str, fmt: str, sparse_csv: Path, sparse_parquet: Path, *extra: str):
    if source == "stdin":
        return invoke("fit", "-", "-t", "y", "--format", fmt, *extra,
                      input=sparse_csv.read_bytes())
    path = sparse_csv if source == "csv" else sparse_parquet
    return invoke("fit", path, "-t", "y", "--format", fmt, *extra)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _path_rows(doc: dict, l1_ratio: float | None = None) -> list[dict]:
    rows = doc["cv"]["path"]
    return [r for r in rows if l1_ratio is None or r["l1_ratio"] == l1_ratio]


# --------------------------------------------------------------------------------------------
# Every format on every source
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", SOURCES)
def test_every_format_on_every_source(source, fmt, sparse_csv, sparse_parquet):
    result = ok(_fit(source, fmt, sparse_csv, sparse_parquet))
    out = result.stdout
    assert result.stderr == ""  # clean data: nothing to warn about
    assert ANSI not in out  # stdout is not a terminal: no colour codes in the data
    if fmt == "json":
        doc = strict_loads(out)
        assert doc["selected"] == TRUE_SUPPORT
        assert doc["input"]["format"] == ("parquet" if source == "parquet" else "csv")
        assert doc["input"]["n_rows"] == 200
    elif fmt == "csv":
        rows = _csv_rows(out)
        assert [r["name"] for r in rows] == FEATURES
        assert sorted(r["name"] for r in rows if r["selected"] == "true") == TRUE_SUPPORT
    else:
        assert "Selected features for 'y'" in out
        assert "5 in, 2 selected" in out
        feature_lines = [ln for ln in out.splitlines() if ln.startswith("│")]
        assert [ln.split("│")[1].strip() for ln in feature_lines] == TRUE_SUPPORT
        assert "200 used, 0 dropped of 200 read" in out


def test_file_and_stdin_give_the_same_json(sparse_csv):
    from_file = fit_json(sparse_csv, "-t", "y")
    from_stdin = fit_json("-", "-t", "y", input=sparse_csv.read_bytes())
    assert from_file["input"]["source"] == str(sparse_csv)
    assert from_file["input"]["sha256"] == hashlib.sha256(sparse_csv.read_bytes()).hexdigest()
    assert from_stdin["input"]["source"] == "<stdin>"
    assert from_stdin["input"]["sha256"] is None
    assert without_source(from_file) == without_source(from_stdin)


def test_csv_and_parquet_give_the_same_numbers(sparse_csv, sparse_parquet):
    a = fit_json(sparse_csv, "-t", "y")
    b = fit_json(sparse_parquet, "-t", "y")
    assert b["input"]["format"] == "parquet"
    assert b["input"]["sha256"] == hashlib.sha256(sparse_parquet.read_bytes()).hexdigest()
    assert_same_numbers(a, b)


# --------------------------------------------------------------------------------------------
# The JSON contract
# --------------------------------------------------------------------------------------------


def _check_contract(doc: dict) -> None:
    """Every key of DESIGN.md's JSON contract, with its type, and the invariants between them."""
    assert CONTRACT_KEYS <= set(doc), CONTRACT_KEYS - set(doc)
    assert doc["schema_version"] == 1 and is_int(doc["schema_version"])
    assert doc["tool"] == {"name": "l1select", "version": __version__}

    inp = doc["input"]
    assert {"source", "format", "sha256", "n_rows", "n_rows_used", "target"} <= set(inp)
    assert isinstance(inp["source"], str)
    assert inp["format"] in ("csv", "parquet")
    assert inp["sha256"] is None or (
        isinstance(inp["sha256"], str) and len(inp["sha256"]) == 64
        and set(inp["sha256"]) <= set("0123456789abcdef"))
    assert is_int(inp["n_rows"]) and is_int(inp["n_rows_used"])
    assert 0 < inp["n_rows_used"] <= inp["n_rows"]
    assert isinstance(inp["target"], str)

    params = doc["params"]
    assert isinstance(params, dict)
    for key in ("model", "l1_ratio", "cv", "seed", "rule", "alphas", "standardize", "missing",
                "engine"):
        assert key in params, key
    assert params["model"] in ("lasso", "elasticnet")
    assert isinstance(params["l1_ratio"], list) and all(map(is_number, params["l1_ratio"]))
    assert is_int(params["seed"])
    assert params["rule"] in ("1se", "min")
    assert isinstance(params["standardize"], bool)
    assert params["missing"] in ("mean", "drop", "error")

    alpha = doc["alpha"]
    assert {"chosen", "min", "one_se", "max", "l1_ratio"} <= set(alpha)
    assert is_number(alpha["chosen"]) and alpha["chosen"] > 0
    assert is_number(alpha["max"]) and alpha["chosen"] <= alpha["max"]
    assert is_number(alpha["l1_ratio"]) and alpha["l1_ratio"] in params["l1_ratio"]

    cv = doc["cv"]
    if cv is None:
        assert alpha["min"] is None and alpha["one_se"] is None
    else:
        assert is_number(alpha["min"]) and is_number(alpha["one_se"])
        assert alpha["one_se"] >= alpha["min"]
        assert alpha["chosen"] in (alpha["min"], alpha["one_se"])
        assert cv["metric"] == "mse"
        assert is_number(cv["mean"]) and is_number(cv["se"]) and cv["se"] >= 0
        assert cv["r2"] is None or is_number(cv["r2"])
        assert isinstance(cv["path"], list) and cv["path"]
        for row in cv["path"]:
            assert {"alpha", "l1_ratio", "mean", "se", "n_nonzero"} <= set(row)
            assert is_number(row["alpha"]) and row["alpha"] > 0
            assert row["l1_ratio"] in params["l1_ratio"]
            assert is_number(row["mean"]) and is_number(row["se"])
            assert is_int(row["n_nonzero"]) and 0 <= row["n_nonzero"] <= len(doc["features"])
        # n_nonzero is the all-rows fit at that alpha: the refit reported at the chosen alpha.
        at_chosen = [r for r in cv["path"]
                     if r["alpha"] == alpha["chosen"] and r["l1_ratio"] == alpha["l1_ratio"]]
        assert len(at_chosen) == 1
        assert at_chosen[0]["n_nonzero"] == len(doc["selected"])

    assert is_number(doc["intercept"])

    features = doc["features"]
    assert isinstance(features, list) and features
    for f in features:
        assert {"name", "column", "coef", "coef_std", "selected"} <= set(f)
        assert isinstance(f["name"], str) and isinstance(f["column"], str)
        assert f["name"] == f["column"] or f["name"].startswith(f["column"] + "=")
        assert is_number(f["coef"]) and is_number(f["coef_std"])
        assert isinstance(f["selected"], bool)
        assert f["selected"] == (f["coef"] != 0.0)
    names = [f["name"] for f in features]
    assert len(set(names)) == len(names)
    assert inp["target"] not in {f["column"] for f in features}

    by_name = features_by_name(doc)
    assert isinstance(doc["selected"], list)
    assert set(doc["selected"]) == {f["name"] for f in features if f["selected"]}
    assert doc["selected"] == sorted(doc["selected"],
                                     key=lambda n: (-abs(by_name[n]["coef_std"]), n))

    sp = doc["sparsity"]
    assert sp["n_features"] == len(features) and is_int(sp["n_features"])
    assert sp["n_selected"] == len(doc["selected"]) and is_int(sp["n_selected"])
    assert is_number(sp["fraction_selected"])
    assert sp["fraction_selected"] == pytest.approx(sp["n_selected"] / sp["n_features"])

    assert isinstance(doc["warnings"], list)
    for w in doc["warnings"]:
        assert set(w) >= {"code", "message"}
        assert isinstance(w["code"], str) and w["code"]
        assert isinstance(w["message"], str) and w["message"]


def test_json_contract_on_sparse_data(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y")
    _check_contract(doc)
    assert doc["input"]["target"] == "y"
    assert doc["cv"]["n_folds"] == 5 and doc["params"]["cv"] == {"folds": 5}
    assert doc["cv"]["fold_sizes"] == [40] * 5  # 200 rows dealt in blocks of 5
    assert doc["warnings"] == []
    assert doc["test"] is None
    assert doc["params"]["rule"] == "1se"
    assert doc["alpha"]["chosen"] == doc["alpha"]["one_se"]


@pytest.mark.parametrize("path", [HOUSING_CSV, HOUSING_PARQUET], ids=["csv", "parquet"])
def test_json_contract_on_the_sample(path):
    doc = fit_json(path, "-t", "price")
    _check_contract(doc)
    assert doc["input"]["n_rows"] == 3000
    assert doc["input"]["n_rows_used"] == 2990  # 10 missing prices
    assert doc["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    codes = {w["code"] for w in doc["warnings"]}
    assert {"dropped_missing_target", "imputed_mean"} <= codes
    columns = {f["column"] for f in doc["features"]}
    assert "listing_id" not in columns and "sale_date" not in columns
    # The strong true effects are found (sample_data/README.md).
    assert {"sqft", "school_rating", "age_years", "distance_to_center_km"} <= set(doc["selected"])
    # neighborhood is one-hot encoded with every level kept.
    assert {f["name"] for f in doc["features"] if f["column"] == "neighborhood"} == {
        "neighborhood=Downtown", "neighborhood=Hillcrest", "neighborhood=Lakeview",
        "neighborhood=Oakwood", "neighborhood=Riverside"}


@pytest.mark.parametrize("extra", [[], ["--test-size", "0.3"], ["--cv", "10", "--rule", "min"],
                                   ["--no-standardize"]])
def test_json_has_no_nan_or_infinity_tokens(extra, tmp_path):
    # Features that are constant inside some training folds (a flag true on one row, a level
    # seen once, a column mostly missing): a division by a zero standard deviation would
    # show up as NaN or Infinity.
    cols = sparse_columns()
    cols["rare"] = [i == 17 for i in range(200)]
    cols["once"] = ["a" if i == 3 else "b" for i in range(200)]
    cols["sparse"] = [float(i) if i % 50 == 0 else None for i in range(200)]
    path = write_csv(tmp_path / "d.csv", cols)
    result = ok(invoke("fit", path, "-t", "y", "--format", "json", *extra))
    for token in ("NaN", "Infinity"):
        assert token not in result.stdout
    doc = strict_loads(result.stdout)
    _check_contract(doc)
    assert set(TRUE_SUPPORT) <= set(doc["selected"])


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_two_runs_give_identical_output(fmt):
    first = ok(invoke("fit", HOUSING_CSV, "-t", "price", "--format", fmt, "-q"))
    second = ok(invoke("fit", HOUSING_CSV, "-t", "price", "--format", fmt, "-q"))
    assert first.stdout == second.stdout


# --------------------------------------------------------------------------------------------
# --output
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_is_written_and_stdout_stays_empty(fmt, sparse_csv, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / f"result.{fmt}"
    target.write_text("stale content that must disappear\n" * 1000)
    # A second name for the old file: an atomic write (temp file + rename) leaves it intact,
    # a write in place would change it too.
    old = tmp_path / "old_link"
    os.link(target, old)
    result = ok(invoke("fit", sparse_csv, "-t", "y", "--format", fmt, "--output", target))
    assert result.stdout == ""
    assert sorted(os.listdir(out_dir)) == [target.name]  # no temporary file left behind
    assert old.read_text() == "stale content that must disappear\n" * 1000
    written = target.read_text(encoding="utf-8")
    assert "stale" not in written
    if fmt == "table":
        assert "Selected features for 'y'" in written and ANSI not in written
    else:
        on_stdout = ok(invoke("fit", sparse_csv, "-t", "y", "--format", fmt)).stdout
        assert written == on_stdout
        if fmt == "json":
            strict_loads(written)


def test_output_file_is_untouched_when_the_run_fails(sparse_csv, tmp_path):
    target = tmp_path / "result.json"
    target.write_text("previous result\n")
    result = invoke("fit", sparse_csv, "-t", "nope", "--format", "json", "-o", target)
    assert_error(result, 1, "'nope'")
    assert target.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([sparse_csv.name, target.name])


def test_output_into_a_missing_folder_is_an_error(sparse_csv, tmp_path):
    missing = tmp_path / "no_such_folder" / "r.json"
    result = invoke("fit", sparse_csv, "-t", "y", "--format", "json", "-o", missing)
    assert result.exit_code in (1, 2)
    assert_error(result, result.exit_code, "no_such_folder")
    assert not missing.parent.exists()


# --------------------------------------------------------------------------------------------
# --format csv
# --------------------------------------------------------------------------------------------


def test_csv_format_has_one_row_per_feature_matching_json():
    result = ok(invoke("fit", HOUSING_PARQUET, "-t", "price", "--format", "csv", "-q"))
    assert result.stdout.splitlines()[0] == "name,column,coef,coef_std,selected"
    rows = _csv_rows(result.stdout)
    doc = fit_json(HOUSING_PARQUET, "-t", "price", "-q")
    assert len(rows) == len(doc["features"])
    for row, f in zip(rows, doc["features"], strict=True):
        assert row["name"] == f["name"] and row["column"] == f["column"]
        # Full precision: the CSV text is the same double as the JSON one.
        assert float(row["coef"]) == f["coef"] and float(row["coef_std"]) == f["coef_std"]
        assert row["selected"] == ("true" if f["selected"] else "false")


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def test_elasticnet_cross_validates_every_l1_ratio(sparse_csv):
    ratios = [0.2, 0.5, 0.9]
    doc = fit_json(sparse_csv, "-t", "y", "--model", "elasticnet", "--l1-ratio", "0.2,0.5,0.9",
                   "--n-alphas", "30")
    _check_contract(doc)
    assert doc["params"]["model"] == "elasticnet"
    assert doc["params"]["l1_ratio"] == ratios
    for r in ratios:
        assert len(_path_rows(doc, r)) == 30
    assert len(doc["cv"]["path"]) == 3 * 30
    chosen = doc["alpha"]["l1_ratio"]
    assert chosen in ratios
    # The chosen ratio holds the lowest CV error of all pairs tried.
    best = min(doc["cv"]["path"], key=lambda r: r["mean"])
    assert best["l1_ratio"] == chosen
    # Each ratio has its own grid: alpha_max scales with 1/l1_ratio.
    tops = {r: max(row["alpha"] for row in _path_rows(doc, r)) for r in ratios}
    assert doc["alpha"]["max"] == pytest.approx(tops[chosen], rel=1e-12)
    assert tops[0.2] * 0.2 == pytest.approx(tops[0.9] * 0.9, rel=1e-9)


def test_elasticnet_default_l1_ratio_is_one_half(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--model", "elasticnet", "--n-alphas", "20")
    assert doc["params"]["l1_ratio"] == [0.5]
    assert doc["alpha"]["l1_ratio"] == 0.5
    assert {r["l1_ratio"] for r in doc["cv"]["path"]} == {0.5}


def test_rule_min_and_1se(sparse_csv):
    by_min = fit_json(sparse_csv, "-t", "y", "--rule", "min")
    by_1se = fit_json(sparse_csv, "-t", "y", "--rule", "1se")
    assert by_min["params"]["rule"] == "min" and by_1se["params"]["rule"] == "1se"
    assert by_min["alpha"]["chosen"] == by_min["alpha"]["min"]
    assert by_1se["alpha"]["chosen"] == by_1se["alpha"]["one_se"]
    # Both rules are reported whatever the choice, from the same curve.
    for key in ("min", "one_se", "max"):
        assert by_min["alpha"][key] == by_1se["alpha"][key]
    a = by_1se["alpha"]
    assert a["one_se"] >= a["min"]
    # The definitions, checked on the reported path.
    path = by_1se["cv"]["path"]
    best = min(path, key=lambda r: r["mean"])
    assert a["min"] == best["alpha"]
    within = [r["alpha"] for r in path if r["mean"] <= best["mean"] + best["se"]]
    assert a["one_se"] == max(within)
    # The larger alpha of 1se selects at most as many features as min on this data.
    assert len(by_1se["selected"]) <= len(by_min["selected"])


def test_fixed_alpha_skips_cross_validation(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--alpha", "0.1")
    _check_contract(doc)
    assert doc["cv"] is None
    assert doc["alpha"]["min"] is None and doc["alpha"]["one_se"] is None
    assert doc["alpha"]["chosen"] == 0.1
    assert doc["params"]["alphas"] == {"fixed": 0.1}
    assert doc["selected"] == TRUE_SUPPORT
    for fmt in ("table", "csv"):
        result = ok(invoke("fit", sparse_csv, "-t", "y", "--alpha", "0.1", "--format", fmt))
        assert "x0" in result.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_nothing_selected_is_a_result(fmt, sparse_csv):
    result = ok(invoke("fit", sparse_csv, "-t", "y", "--alpha", "1e6", "--format", fmt))
    if fmt == "json":
        doc = strict_loads(result.stdout)
        assert doc["selected"] == [] and doc["sparsity"]["n_selected"] == 0
        assert all(f["coef"] == 0.0 for f in doc["features"])
        assert doc["intercept"] == pytest.approx(np.mean(sparse_columns()["y"]), rel=1e-12)
    elif fmt == "csv":
        rows = _csv_rows(result.stdout)
        assert len(rows) == 5 and {r["selected"] for r in rows} == {"false"}
    else:
        assert "(none selected)" in result.stdout and "0 selected" in result.stdout


def test_explicit_alpha_grid(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--alphas", "0.01,1,0.1")
    grid = [1.0, 0.1, 0.01]
    assert [r["alpha"] for r in doc["cv"]["path"]] == grid  # descending, whatever the order
    assert doc["params"]["alphas"] == {"explicit": [0.01, 1.0, 0.1]}
    assert doc["alpha"]["chosen"] in grid
    assert doc["alpha"]["min"] in grid and doc["alpha"]["one_se"] in grid
    assert doc["alpha"]["max"] == 1.0


def test_fold_column_gives_the_folds(tmp_path):
    cols = sparse_columns()
    cols["fold"] = ["abcd"[i % 4] for i in range(200)]
    path = write_csv(tmp_path / "folds.csv", cols)
    doc = fit_json(path, "-t", "y", "--fold-column", "fold")
    assert doc["params"]["cv"] == {"fold_column": "fold"}
    assert doc["cv"]["n_folds"] == 4
    assert doc["cv"]["fold_sizes"] == [50, 50, 50, 50]
    assert "fold" not in {f["column"] for f in doc["features"]}
    assert doc["selected"] == TRUE_SUPPORT


def _named(tmp_path: Path) -> Path:
    cols = sparse_columns()
    renamed = dict(zip(FEATURES, ["sig_a", "noise_1", "sig_b", "noise_2", "noise_3"],
                       strict=True))
    return write_csv(tmp_path / "named.csv", {renamed.get(k, k): v for k, v in cols.items()})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--exclude", "noise_*"], ["sig_a", "sig_b"]),
        (["-x", "noise_*", "-x", "sig_b"], ["sig_a"]),
        (["--features", "noise_*", "-f", "sig_a"], ["sig_a", "noise_1", "noise_2", "noise_3"]),
        (["--features", "sig_*", "--exclude", "sig_b"], ["sig_a"]),
    ],
)
def test_features_and_exclude_globs(args, expected, tmp_path):
    doc = fit_json(_named(tmp_path), "-t", "y", *args)
    assert [f["name"] for f in doc["features"]] == expected


def test_exclude_matching_nothing_is_a_warning(tmp_path):
    result = ok(invoke("fit", _named(tmp_path), "-t", "y", "-x", "zzz*", "--format", "json"))
    assert "zzz*" in result.stderr and "Traceback" not in result.stderr
    doc = strict_loads(result.stdout)
    assert "unmatched_pattern" in {w["code"] for w in doc["warnings"]}
    assert len(doc["features"]) == 5


def test_features_matching_nothing_is_a_usage_error(tmp_path):
    result = invoke("fit", _named(tmp_path), "-t", "y", "-f", "sgi_*")
    assert_error(result, 2, "'sgi_*'", "--features")


def _with_missing(tmp_path: Path) -> Path:
    cols = sparse_columns()
    cols["x3"][7] = None  # line 9 (line 1 is the header)
    cols["x1"][20] = None  # line 22
    return write_csv(tmp_path / "missing.csv", cols)


def test_missing_mean_imputes(tmp_path):
    doc = fit_json(_with_missing(tmp_path), "-t", "y", "--missing", "mean")
    assert doc["params"]["missing"] == "mean"
    assert doc["input"]["n_rows_used"] == 200
    (warning,) = [w for w in doc["warnings"] if w["code"] == "imputed_mean"]
    assert "x1" in warning["message"] and "x3" in warning["message"]


def test_missing_drop_drops_rows(tmp_path):
    result = ok(invoke("fit", _with_missing(tmp_path), "-t", "y", "--missing", "drop",
                       "--format", "json"))
    doc = strict_loads(result.stdout)
    assert doc["input"]["n_rows_used"] == 198
    assert doc["input"]["n_rows_dropped"] == 2
    assert "dropped_missing_features" in {w["code"] for w in doc["warnings"]}
    assert "Dropped 2 rows" in result.stderr


def test_missing_error_names_the_line(tmp_path):
    cols = sparse_columns()
    cols["x3"][7] = None  # line 9 (line 1 is the header)
    path = write_csv(tmp_path / "missing.csv", cols)
    result = invoke("fit", path, "-t", "y", "--missing", "error")
    assert_error(result, 1, "'x3'", "line 9", path.name)


def test_missing_error_names_the_first_missing_line(tmp_path):
    # x3 is missing on line 9 and x1 on line 22: the first line of the file is the one to fix.
    path = _with_missing(tmp_path)
    result = invoke("fit", path, "-t", "y", "--missing", "error")
    assert_error(result, 1, "'x3'", "line 9", path.name)


def test_missing_target_rows_are_dropped(tmp_path):
    cols = sparse_columns()
    cols["y"][3] = None
    doc = fit_json(write_csv(tmp_path / "d.csv", cols), "-t", "y")
    assert doc["input"]["n_rows_used"] == 199
    assert "dropped_missing_target" in {w["code"] for w in doc["warnings"]}


def test_test_size_reports_the_held_out_error(sparse_csv):
    doc = fit_json(sparse_csv, "-t", "y", "--test-size", "0.25")
    test = doc["test"]
    assert set(test) >= {"n_rows", "mse", "r2"}
    assert is_int(test["n_rows"]) and 0 < test["n_rows"] < 200
    assert doc["input"]["n_rows_used"] + test["n_rows"] == 200
    assert is_number(test["mse"]) and test["mse"] > 0
    # y = 3·x0 − 2·x2 + N(0, 0.5²): signal variance 13, so the test R² is high.
    assert is_number(test["r2"]) and test["r2"] > 0.9
    assert doc["params"]["test_size"] == 0.25
    table = ok(invoke("fit", sparse_csv, "-t", "y", "--test-size", "0.25")).stdout
    assert "test MSE" in table and f"{test['n_rows']} rows held out" in table


def _alpha_max(X: np.ndarray, y: np.ndarray, standardize: bool) -> float:
    """max_j |x_j·(y − ȳ)| / n with x_j centered (and scaled, ddof=0, when standardizing)."""
    Xc = X - X.mean(axis=0)
    if standardize:
        Xc = Xc / X.std(axis=0)
    return float(np.max(np.abs(Xc.T @ (y - y.mean()))) / X.shape[0])


def test_no_standardize_changes_the_penalty_scale(tmp_path):
    cols = sparse_columns()
    cols["x1"] = [v * 1000 for v in cols["x1"]]  # a noise column on a large scale
    path = write_csv(tmp_path / "scaled.csv", cols)
    X = np.array([cols[c] for c in FEATURES]).T
    y = np.array(cols["y"])
    on = fit_json(path, "-t", "y")
    off = fit_json(path, "-t", "y", "--no-standardize")
    assert on["params"]["standardize"] is True and off["params"]["standardize"] is False
    # rtol 1e-9: a closed form of the same data; only summation order differs.
    assert on["alpha"]["max"] == pytest.approx(_alpha_max(X, y, True), rel=1e-9)
    assert off["alpha"]["max"] == pytest.approx(_alpha_max(X, y, False), rel=1e-9)
    assert off["alpha"]["max"] > 10 * on["alpha"]["max"]
    assert ok(invoke("fit", path, "-t", "y", "--no-standardize")).stdout


def test_no_standardize_orders_selected_by_standardized_coefficient(tmp_path):
    cols = sparse_columns()
    cols["x0"] = [v * 100 for v in cols["x0"]]  # raw coef 0.03, standardized coef ≈ 3
    doc = fit_json(write_csv(tmp_path / "scaled.csv", cols), "-t", "y", "--no-standardize")
    by_name = features_by_name(doc)
    assert abs(by_name["x0"]["coef_std"]) > abs(by_name["x2"]["coef_std"])
    assert doc["selected"] == ["x0", "x2"]


def _with_color(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    cols = sparse_columns()
    color = rng.choice(["red", "green", "blue"], size=200)
    cols["color"] = [str(c) for c in color]
    cols["y"] = [v + (2.0 if c == "red" else 0.0) for v, c in zip(cols["y"], color, strict=True)]
    return write_csv(tmp_path / "color.csv", cols)


def test_text_column_is_one_hot_encoded(tmp_path):
    doc = fit_json(_with_color(tmp_path), "-t", "y")
    onehot = [f for f in doc["features"] if f["column"] == "color"]
    assert [f["name"] for f in onehot] == ["color=blue", "color=green", "color=red"]
    assert "color=red" in doc["selected"]


def test_max_levels_excludes_text_with_more_levels(tmp_path):
    result = ok(invoke("fit", _with_color(tmp_path), "-t", "y", "--max-levels", "2",
                       "--format", "json"))
    doc = strict_loads(result.stdout)
    assert doc["params"]["max_levels"] == 2
    assert "color" not in {f["column"] for f in doc["features"]}
    (warning,) = [w for w in doc["warnings"] if "color" in w["message"]]
    assert warning["code"] == "excluded_column" and "--max-levels" in warning["message"]
    assert "color" in result.stderr


# --------------------------------------------------------------------------------------------
# File flavours
# --------------------------------------------------------------------------------------------


@pytest.fixture
def comma_doc(sparse_csv) -> dict:
    return fit_json(sparse_csv, "-t", "y")


def test_tsv(tmp_path, comma_doc):
    path = write_csv(tmp_path / "d.tsv", sparse_columns(), delimiter="\t")
    doc = fit_json(path, "-t", "y")
    assert doc["input"]["format"] == "csv"
    assert_same_numbers(doc, comma_doc)


def test_csv_gz(tmp_path, comma_doc):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(csv_text(sparse_columns()).encode(), mtime=0))
    doc = fit_json(path, "-t", "y")
    # sha256 of the bytes as stored (compressed).
    assert doc["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_same_numbers(doc, comma_doc)


def test_crlf_line_ends(tmp_path, comma_doc):
    data = csv_text(sparse_columns()).replace("\n", "\r\n").encode()
    path = tmp_path / "windows.csv"
    path.write_bytes(data)
    assert_same_numbers(fit_json(path, "-t", "y"), comma_doc)
    assert_same_numbers(fit_json("-", "-t", "y", input=data), comma_doc)


@pytest.mark.parametrize("delimiter", [";", "|"])
def test_sniffed_delimiter(delimiter, tmp_path, comma_doc):
    path = write_csv(tmp_path / "d.csv", sparse_columns(), delimiter=delimiter)
    assert_same_numbers(fit_json(path, "-t", "y"), comma_doc)
    stdin = fit_json("-", "-t", "y", input=path.read_bytes())
    assert_same_numbers(stdin, comma_doc)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_utf8_bom_never_reaches_a_column_name(via, tmp_path):
    cols = sparse_columns()
    cols = {"y": cols.pop("y"), **cols}  # the target is the first column: right behind the BOM
    path = write_csv(tmp_path / "bom.csv", cols, prefix=b"\xef\xbb\xbf")
    if via == "file":
        doc = fit_json(path, "-t", "y")
    else:
        doc = fit_json("-", "-t", "y", input=path.read_bytes())
    assert doc["input"]["target"] == "y"
    assert [f["name"] for f in doc["features"]] == FEATURES
    assert doc["selected"] == TRUE_SUPPORT


def test_thousands_separators_are_numbers(tmp_path):
    rng = np.random.default_rng(11)
    cols = sparse_columns()
    big = rng.integers(1_000, 2_000_000, size=200)
    cols["big"] = [f"{int(v):,}" for v in big]  # "1,234,567", quoted by the CSV writer
    cols["y"] = [v + 1e-6 * int(b) for v, b in zip(cols["y"], big, strict=True)]
    path = write_csv(tmp_path / "thousands.csv", cols)
    assert '"1,' in path.read_text() or '",' in path.read_text()
    doc = fit_json(path, "-t", "y", "--rule", "min")
    f = features_by_name(doc)["big"]
    assert f["selected"]
    # True slope 1e-6 per unit; noise sd 0.5 over a spread of ~6e5 units: a few % at most.
    assert f["coef"] == pytest.approx(1e-6, rel=0.1)
    assert not [w for w in doc["warnings"] if "big" in w["message"]]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_boolean_column_is_a_zero_one_feature(fmt, tmp_path):
    rng = np.random.default_rng(5)
    cols = sparse_columns()
    flag = rng.random(200) < 0.4
    cols["flag"] = [bool(b) for b in flag]
    cols["y"] = [v + 2.0 * float(b) for v, b in zip(cols["y"], flag, strict=True)]
    path = (write_csv(tmp_path / "b.csv", cols) if fmt == "csv"
            else write_parquet(tmp_path / "b.parquet", cols))
    doc = fit_json(path, "-t", "y", "--rule", "min")
    f = features_by_name(doc)["flag"]
    assert f["column"] == "flag" and f["selected"]
    # The coefficient of a 0/1 feature is the shift for true: 2 (noise sd 0.5, 200 rows).
    assert f["coef"] == pytest.approx(2.0, abs=0.25)


def test_latin1_file_is_read(tmp_path):
    rng = np.random.default_rng(9)
    cols = sparse_columns()
    cols["drink"] = [str(d) for d in rng.choice(["café", "thé"], size=200)]
    path = write_csv(tmp_path / "latin1.csv", cols, encoding="latin-1")
    doc = fit_json(path, "-t", "y")
    assert {f["name"] for f in doc["features"] if f["column"] == "drink"} == {
        "drink=café", "drink=thé"}


def test_thousands_separators_in_the_target(tmp_path):
    cols = sparse_columns()
    cols["price"] = [f"{round(1e6 + 1e5 * v):,}" for v in cols.pop("y")]  # "1,234,567"
    doc = fit_json(write_csv(tmp_path / "price.csv", cols), "-t", "price")
    assert doc["input"]["n_rows_used"] == 200
    assert doc["selected"] == TRUE_SUPPORT
    # price = 1e6 + 1e5·(3·x0 − 2·x2 + noise), rounded to whole units.
    assert features_by_name(doc)["x0"]["coef"] == pytest.approx(3e5, rel=0.1)


def test_missing_markers_in_a_numeric_column(tmp_path):
    cols = sparse_columns()
    cols["x2"] = ["?" if i % 10 == 0 else "-" if i % 10 == 5 else repr(v)
                  for i, v in enumerate(cols["x2"])]
    doc = fit_json(write_csv(tmp_path / "markers.csv", cols), "-t", "y")
    assert "x2" in {f["name"] for f in doc["features"]}
    assert doc["selected"] == TRUE_SUPPORT
    assert doc["input"]["n_rows_used"] == 200  # the markers are missing values, imputed


def test_id_and_date_columns_are_excluded(tmp_path):
    cols = sparse_columns()
    cols = {"row": list(range(1, 201)), "sold": [f"2023-01-{1 + i % 28:02d}" for i in range(200)],
            "customer_id": [int(v) for v in np.random.default_rng(2).permutation(200) * 7 + 1000],
            **cols}
    result = ok(invoke("fit", write_csv(tmp_path / "d.csv", cols), "-t", "y", "--format",
                       "json"))
    doc = strict_loads(result.stdout)
    assert [f["name"] for f in doc["features"]] == FEATURES
    messages = " ".join(w["message"] for w in doc["warnings"] if w["code"] == "excluded_column")
    for name in ("row", "sold", "customer_id"):
        assert name in messages and name in result.stderr


def test_all_missing_feature_column_is_dropped_with_a_warning(tmp_path):
    cols = sparse_columns()
    cols["empty"] = [None] * 200
    path = write_csv(tmp_path / "d.csv", cols)
    result = ok(invoke("fit", path, "-t", "y", "--format", "json"))
    doc = strict_loads(result.stdout)
    assert "empty" not in {f["column"] for f in doc["features"]}
    assert doc["selected"] == TRUE_SUPPORT
    assert any(w["code"] == "excluded_all_missing" and "empty" in w["message"]
               for w in doc["warnings"])
    assert "empty" in result.stderr and "warning" in result.stderr.lower()


def test_quiet_silences_warnings(tmp_path):
    result = ok(invoke("fit", _with_missing(tmp_path), "-t", "y", "-q", "--format", "json"))
    assert result.stderr == ""
    assert strict_loads(result.stdout)["warnings"]  # still in the result


# --------------------------------------------------------------------------------------------
# Version and help
# --------------------------------------------------------------------------------------------


def test_version():
    result = ok(invoke("--version"))
    assert result.stdout == f"l1select {__version__}\n"
    assert result.stderr == ""


def test_python_dash_m_help():
    proc = subprocess.run([sys.executable, "-m", "l1select", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout and "fit" in proc.stdout
    assert "Traceback" not in proc.stderr


_HELP_IMPORTS = """
import sys
from l1select.cli import app
try:
    app({args!r}, prog_name="l1select")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["fit", "--help"]], ids=["root", "fit"])
def test_help_does_not_import_numpy(args):
    # Also what Typer's help renderer imports but help does not use (markdown_it,
    # pygments: see cli._import_help_renderer) and pydantic (Typer's value conversion).
    heavy = ["numpy", "numba", "sklearn", "pandas", "pyarrow", "scipy", "pydantic",
             "markdown_it", "pygments"]
    code = _HELP_IMPORTS.format(args=args, heavy=heavy)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


def test_help_renderer_stand_ins_load_the_real_classes():
    # --help imports Typer's renderer with stand-ins for rich.markdown and rich.traceback;
    # whatever uses them afterwards must get rich's own classes.
    code = """
import sys
from l1select.cli import app
try:
    app(["--help"], prog_name="l1select")
except SystemExit:
    pass
import typer.rich_utils as ru
assert "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules
md = ru.Markdown("*a*")
try:
    raise ValueError("boom")
except ValueError as exc:
    tb = ru.Traceback.from_exception(type(exc), exc, exc.__traceback__)
import rich.markdown, rich.traceback
print(type(md) is rich.markdown.Markdown, type(tb) is rich.traceback.Traceback)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "True True"


# --------------------------------------------------------------------------------------------
# Errors: exit code, one "Error:" line naming the file/column/line, nothing on stdout
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert_error(invoke("fit", tmp_path / "nope.csv", "-t", "y"), 1, "nope.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert_error(invoke("fit", path, "-t", "y"), 1, "empty.csv", "empty")


def test_empty_stdin():
    assert_error(invoke("fit", "-", "-t", "y", input=b""), 1, "stdin", "empty")


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("x0,x1,y\n")
    assert_error(invoke("fit", path, "-t", "y"), 1, "header.csv", "no data")


def test_parquet_without_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "norows.parquet"
    pq.write_table(pa.table({k: pa.array([], pa.float64()) for k in ["x0", "x1", "y"]}), path)
    assert_error(invoke("fit", path, "-t", "y"), 1, "norows.parquet", "no data")


def test_folder_instead_of_a_file(tmp_path):
    assert_error(invoke("fit", tmp_path, "-t", "y"), 1, str(tmp_path), "folder")


def test_unknown_target_suggests_the_close_name():
    line = assert_error(invoke("fit", HOUSING_CSV, "-t", "prce"), 1, "'prce'", "housing.csv")
    assert "did you mean 'price'" in line


def test_non_numeric_target(tmp_path):
    cols = sparse_columns()
    # Two text values are a binary target (a logistic fit); three are neither kind.
    cols["label"] = ["good" if v > 1 else "bad" if v < -1 else "fair" for v in cols["y"]]
    path = write_csv(tmp_path / "d.csv", cols)
    assert_error(invoke("fit", path, "-t", "label"), 1, "'label'", "not numeric", "d.csv")


def test_constant_target(tmp_path):
    cols = sparse_columns()
    cols["y"] = [5.0] * 200
    path = write_csv(tmp_path / "d.csv", cols)
    assert_error(invoke("fit", path, "-t", "y"), 1, "'y'", "constant", "d.csv")


def test_only_the_target_column(tmp_path):
    path = write_csv(tmp_path / "only_y.csv", {"y": sparse_columns()["y"]})
    line = assert_error(invoke("fit", path, "-t", "y"), 1, "only_y.csv")
    assert "--features" not in line


def test_no_usable_feature_column(tmp_path):
    cols = {"code": [f"C{i:04d}" for i in range(200)], "y": sparse_columns()["y"]}
    path = write_csv(tmp_path / "codes.csv", cols)
    assert_error(invoke("fit", path, "-t", "y"), 1, "codes.csv", "code", "no usable feature")


def test_every_feature_constant(tmp_path):
    cols = {"c": [1.0] * 200, "d": [0.0] * 200, "y": sparse_columns()["y"]}
    path = write_csv(tmp_path / "flat.csv", cols)
    assert_error(invoke("fit", path, "-t", "y"), 1, "flat.csv", "constant")


def test_all_missing_target(tmp_path):
    cols = sparse_columns()
    cols["y"] = [None] * 200
    path = write_csv(tmp_path / "d.csv", cols)
    assert_error(invoke("fit", path, "-t", "y"), 1, "'y'", "no values", "d.csv")


def test_ragged_row_names_the_line(tmp_path):
    lines = csv_text(sparse_columns()).splitlines()
    lines[11] += ",9.5"  # line 12 of the file has one field too many
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    assert_error(invoke("fit", path, "-t", "y"), 1, "ragged.csv", "line 12")


def test_ragged_row_is_a_clean_error(tmp_path):
    lines = csv_text(sparse_columns()).splitlines()
    lines[11] += ",9.5"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    assert_error(invoke("fit", path, "-t", "y"), 1, "ragged.csv", "7 fields", "6")


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_binary_garbage(via, tmp_path):
    rng = np.random.default_rng(13)
    garbage = rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    assert b"\x00" in garbage
    path = tmp_path / "garbage.csv"
    path.write_bytes(garbage)
    if via == "file":
        assert_error(invoke("fit", path, "-t", "y"), 1, "garbage.csv", "binary")
    else:
        assert_error(invoke("fit", "-", "-t", "y", input=garbage), 1, "stdin", "binary")


def test_fewer_rows_than_folds(tmp_path):
    cols = {k: v[:4] for k, v in sparse_columns().items()}
    path = write_csv(tmp_path / "few.csv", cols)
    assert_error(invoke("fit", path, "-t", "y", "--cv", "5"), 1, "few.csv", "5", "--cv")


def test_corrupt_parquet(tmp_path, sparse_parquet):
    data = sparse_parquet.read_bytes()
    path = tmp_path / "truncated.parquet"
    path.write_bytes(data[: len(data) // 2])
    assert_error(invoke("fit", path, "-t", "y"), 1, "truncated.parquet", "Parquet")


def test_unsupported_format(tmp_path):
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    assert_error(invoke("fit", path, "-t", "y"), 1, "book.xlsx", "CSV or Parquet")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicate_column_names(fmt, tmp_path):
    cols = sparse_columns()
    names = ["x0", "x1", "x2", "x1", "x4", "y"]
    if fmt == "csv":
        lines = csv_text(cols).splitlines()
        lines[0] = ",".join(names)
        path = tmp_path / "dup.csv"
        path.write_text("\n".join(lines) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "dup.parquet"
        pq.write_table(pa.Table.from_arrays([pa.array(v) for v in cols.values()], names=names),
                       path)
    assert_error(invoke("fit", path, "-t", "y"), 1, path.name, "duplicate", "'x1'")


@pytest.mark.parametrize(("fmt", "where"), [("csv", "line 7"), ("parquet", "row 6")])
def test_infinite_value_names_column_and_line(fmt, where, tmp_path):
    cols = sparse_columns()
    cols["x1"][5] = float("inf")  # the sixth data row: line 7 of the CSV, row 6 of the Parquet
    path = (write_csv(tmp_path / "inf.csv", cols) if fmt == "csv"
            else write_parquet(tmp_path / "inf.parquet", cols))
    assert_error(invoke("fit", path, "-t", "y"), 1, "'x1'", where, path.name, "infinite")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cv", "1"], "--cv"),
        (["--model", "elasticnet", "--l1-ratio", "2"], "--l1-ratio"),
        (["--l1-ratio", "0.5,1.5", "--model", "elasticnet"], "--l1-ratio"),
        (["--test-size", "1.5"], "--test-size"),
        (["--test-size", "0"], "--test-size"),
        (["--eps", "2"], "--eps"),
        (["--alpha", "-1"], "--alpha"),
        (["--alpha", "0.1", "--alphas", "1,0.1"], "--alpha"),
        (["--alphas", "1,-0.1"], "--alphas"),
        (["--max-levels", "0"], "--max-levels"),
        (["--cv", "abc"], "--cv"),
        (["--format", "xml"], "--format"),
        (["--model", "ridge"], "--model"),
        (["--rule", "max"], "--rule"),
        (["--missing", "zero"], "--missing"),
        pytest.param(["--l1-ratio", "a,b", "--model", "elasticnet"], "--l1-ratio"),
        pytest.param(["--alphas", "1,x"], "--alphas"),
    ],
)
def test_bad_option_values_are_usage_errors(args, needle, sparse_csv):
    assert_error(invoke("fit", sparse_csv, "-t", "y", *args), 2, needle)


def test_missing_target_option_is_a_usage_error(sparse_csv):
    assert_error(invoke("fit", sparse_csv), 2, "--target")


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "l1select", "fit", str(tmp_path / "nope.csv"), "-t", "y",
         "--debug"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "Traceback" in proc.stderr
    assert "InputError" in proc.stderr and "nope.csv" in proc.stderr


@pytest.mark.slow
def test_without_debug_a_real_process_shows_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "l1select", "fit", str(tmp_path / "nope.csv"), "-t", "y"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error:") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------------
# A closed pipe ends quietly
# --------------------------------------------------------------------------------------------


def _pipeline(tmp_path: Path, args: list[str], reader: str) -> tuple[str, str, int]:
    """Run ``python -m l1select ARGS | READER`` in a shell; return (reader's stdout, l1select's
    stderr, l1select's exit status)."""
    err, rc = tmp_path / "stderr.txt", tmp_path / "rc.txt"
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "l1select", *args])
    shell = f"{{ {cmd} 2>{shlex.quote(str(err))}; echo $? >{shlex.quote(str(rc))}; }} | {reader}"
    proc = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=120)
    return proc.stdout, err.read_text(), int(rc.read_text())


_BIG = ["--model", "elasticnet", "--l1-ratio", "0.1,0.3,0.5,0.7,0.9,1", "--n-alphas", "300",
        "--format", "json"]


@pytest.mark.slow
def test_head_ends_quietly(sparse_csv, tmp_path):
    # More than a pipe buffer (64 KiB) of output, so head really closes the pipe mid-write.
    full = ok(invoke("fit", sparse_csv, "-t", "y", *_BIG)).stdout
    assert len(full.encode()) > 3 * 65536
    out, err, rc = _pipeline(tmp_path, ["fit", str(sparse_csv), "-t", "y", *_BIG], "head -1")
    assert out == full.splitlines(keepends=True)[0]
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err
    assert err == ""
    assert rc == 0


_closed_pipe_runs: dict[str, tuple[str, str, int]] = {}


def _closed_before_output(fmt: str, tmp_path_factory) -> tuple[str, str, int]:
    """``l1select fit … | true``: the reader is gone long before the first byte is written."""
    if fmt not in _closed_pipe_runs:
        tmp = tmp_path_factory.mktemp(f"pipe_{fmt}")
        data = write_csv(tmp / "d.csv", sparse_columns())
        _closed_pipe_runs[fmt] = _pipeline(
            tmp, ["fit", str(data), "-t", "y", "--format", fmt], "true")
    return _closed_pipe_runs[fmt]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_closed_pipe_is_quiet(fmt, tmp_path_factory):
    _, err, _ = _closed_before_output(fmt, tmp_path_factory)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err
    assert err == ""


@pytest.mark.parametrize("fmt", [
    "table",
    "json",
    "csv",
])
def test_closed_pipe_exit_status_is_zero(fmt, tmp_path_factory):
    _, _, rc = _closed_before_output(fmt, tmp_path_factory)
    assert rc == 0


def test_group_forward_and_repeats_from_the_command_line(tmp_path):
    cols = sparse_columns()
    cols["site"] = [f"s{(i * 7) % 23}" for i in range(200)]
    path = write_csv(tmp_path / "sites.csv", cols)
    doc = fit_json(path, "-t", "y", "--group-column", "site", "--repeats", "2")
    assert doc["params"]["cv"] == {"folds": 5, "group_column": "site", "repeats": 2}
    assert doc["cv"]["n_folds"] == 10 and sum(doc["cv"]["fold_sizes"]) == 400
    assert "site" not in {f["column"] for f in doc["features"]}
    doc = fit_json(path, "-t", "y", "--cv-scheme", "forward", "--cv", "3", "-x", "site")
    assert doc["params"]["cv"] == {"folds": 3, "scheme": "forward"}
    assert doc["cv"]["fold_sizes"] == [50, 50, 50]  # TimeSeriesSplit(3) of 200 rows
    # From stdin too (held in memory, so the rows are counted first).
    piped = fit_json("-", "-t", "y", "--cv-scheme", "forward", "--cv", "3", "-x", "site",
                     input=path.read_bytes())
    assert piped["cv"]["path"] == doc["cv"]["path"]


def test_fold_options_that_do_not_go_together(tmp_path):
    path = write_csv(tmp_path / "d.csv", sparse_columns())
    assert_error(invoke("fit", path, "-t", "y", "--repeats", "2", "--cv-scheme", "forward"),
                 2, "--repeats", "--cv-scheme forward")
    assert_error(invoke("fit", path, "-t", "y", "--group-column", "x0", "--fold-column", "x1"),
                 2, "not both")
    assert_error(invoke("fit", path, "-t", "y", "--group-column", "nope"), 1,
                 "Group column 'nope' not found")


def test_the_command_freezes_its_objects_before_the_interpreter_shuts_down():
    # Shutdown after a 20,000-feature fit took 0.24-0.34 s walking every object; frozen, 0.06 s.
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['l1select', '--help']\n"
            "from l1select.cli import main\nmain()\n")
    assert last_line(code) == "FROZEN True"

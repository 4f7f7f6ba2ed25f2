"""A yes/no target through the CLI: fit (table, JSON), predict, batch keys and the errors."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from tests.cli.cli_helpers import assert_error, fit_json, invoke, ok, write_csv


def churn_columns(n: int = 300, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    eta = 1.5 * X[:, 0] - X[:, 1]
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-eta))
    cols = {f"x{j}": [float(v) for v in X[:, j]] for j in range(4)}
    cols["churned"] = ["yes" if v else "no" for v in y]
    cols["w"] = [float(v) for v in rng.integers(1, 4, size=n)]
    return cols


@pytest.fixture
def churn(tmp_path):
    return write_csv(tmp_path / "churn.csv", churn_columns())


def test_a_yes_no_target_gets_a_logistic_selection(churn):
    doc = fit_json(churn, "-t", "churned", "--weights", "w", "--test-size", "0.2", "-q")
    assert doc["params"]["family"] == "binomial"
    assert doc["params"]["positive_class"] == "yes"
    assert doc["params"]["measure"] == "deviance" and doc["params"]["weights"] == "w"
    assert doc["cv"]["metric"] == "deviance" and doc["cv"]["r2"] is None
    for key in ("auc", "misclassification", "deviance_explained"):
        assert 0.0 < doc["cv"][key] < 1.0
    assert set(doc["test"]) == {"n_rows", "deviance", "auc", "accuracy"}
    assert doc["input"]["classes"]["positive"] == "yes"
    assert "w" not in {f["name"] for f in doc["features"]}
    assert doc["selected"][:2] == ["x0", "x1"]
    by = {f["name"]: f for f in doc["features"]}
    assert by["x0"]["odds_ratio"] == pytest.approx(np.exp(by["x0"]["coef_std"]))
    assert doc["recipe"]["family"] == "binomial" and doc["recipe"]["classes"] == ["no", "yes"]


def test_the_table_shows_log_odds_and_odds_ratios(churn):
    out = ok(invoke("fit", churn, "-t", "churned", "-q")).stdout
    for needle in ("log-odds", "OR/SD", "CV deviance", "AUC", "deviance explained",
                   "positive: yes"):
        assert needle in out


def test_predict_writes_probability_and_class(tmp_path, churn):
    result = tmp_path / "r.json"
    ok(invoke("fit", churn, "-t", "churned", "--format", "json", "-o", result, "-q"))
    out = ok(invoke("predict", churn, "--model", result)).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["probability", "prediction"] and len(rows) == 300
    prob = np.array([float(r["probability"]) for r in rows])
    assert np.all((prob > 0) & (prob < 1))
    labels = np.array([r["prediction"] for r in rows])
    np.testing.assert_array_equal(labels, np.where(prob > 0.5, "yes", "no"))
    strict = ok(invoke("predict", churn, "--model", result, "--threshold", "0.9")).stdout
    high = [r["prediction"] for r in csv.DictReader(io.StringIO(strict))]
    np.testing.assert_array_equal(high, np.where(prob > 0.9, "yes", "no"))


def test_config_keys(tmp_path, churn):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"source: {churn}\ntarget: churned\nfamily: binomial\nmeasure: auc\n"
                   "positive_class: 'no'\nthreshold: 0.4\nweights: w\n")
    doc = fit_json("--config", cfg, "-q")
    p = doc["params"]
    assert (p["family"], p["measure"], p["positive_class"], p["threshold"], p["weights"]) == \
        ("binomial", "auc", "no", 0.4, "w")
    assert doc["cv"]["metric"] == "auc"


@pytest.mark.parametrize("args, code, needles", [
    (("--engine", "gram", "--family", "binomial"), 2,
     ("--engine gram cannot fit a logistic model", "--engine data")),
    (("--positive-class", "maybe"), 2, ("'maybe' is not a value",)),
    (("--weights", "nope"), 1, ("Weights column 'nope' not found",)),
    (("--measure", "auc", "--family", "gaussian"), 2, ("--measure auc is for a binary",)),
    (("--threshold", "1.5"), 2, ("--threshold must be between 0 and 1",)),
])
def test_errors(churn, args, code, needles):
    assert_error(invoke("fit", churn, "-t", "churned", *args), code, *needles)


@pytest.mark.parametrize("args, what", [(("--test-size", "0.2"), "--test-size"),
                                        (("--measure", "auc"), "--measure auc")],
                         ids=["test-size", "auc"])
def test_what_dask_cannot_do_for_a_binary_target_is_a_usage_error(churn, args, what):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    # Refused before any cluster is reached (this address has none).
    result = invoke("fit", churn, "-t", "churned", "--engine", "dask", "--scheduler",
                    "tcp://127.0.0.1:1", *args)
    assert_error(result, 2, f"{what} is not available with --engine dask for a binary "
                 "target", "--engine auto")


def test_a_missing_weight_names_its_line(tmp_path):
    cols = churn_columns()
    cols["w"][4] = None
    path = write_csv(tmp_path / "c.csv", cols)
    assert_error(invoke("fit", path, "-t", "churned", "--weights", "w"), 1,
                 "missing weight at line 6")


def test_plots_and_report_show_the_roc_curve(tmp_path, churn):
    plots, report = tmp_path / "plots", tmp_path / "r.html"
    ok(invoke("fit", churn, "-t", "churned", "-q", "--plots", plots, "--report", report))
    assert sorted(p.name for p in plots.iterdir()) == ["coefficients.png", "cv.png",
                                                       "path.png", "roc.png"]
    html = report.read_text()
    assert 'id="fig-roc"' in html and "CV deviance" in html and "CV AUC" in html

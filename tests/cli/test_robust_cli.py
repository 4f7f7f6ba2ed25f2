"""Real data, no surprises: real features are kept, and bad data never crashes (issue 11)."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from cli_helpers import REPO, assert_error, fit_json, invoke, ok, strict_loads, write_csv

LONGLEY = REPO / "tests" / "data" / "longley.csv"
LONGLEY_FEATURES = ["GNP_deflator", "GNP", "Unemployed", "Armed_Forces", "Population", "Year"]
# NIST StRD certified values for Longley (intercept, then the six coefficients in file order).
NIST_INTERCEPT = -3482258.63459582
NIST_COEFS = [15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
              -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]


def test_longley_keeps_year_and_reproduces_nist_least_squares():
    # alpha 0.01 (alpha_max is about 3.3e3): small enough that all six are selected, large
    # enough that coordinate descent converges; --refit ols then solves least squares on them.
    result = ok(invoke("fit", LONGLEY, "-t", "Employed", "--alpha", "0.01", "--refit", "ols",
                       "--format", "json"))
    doc = strict_loads(result.stdout)
    assert "Year" not in result.stderr  # not excluded: a sorted year is a feature
    assert sorted(doc["selected"]) == sorted(LONGLEY_FEATURES)
    coef_ols = {f["name"]: f["coef_ols"] for f in doc["features"]}
    ours = np.array([doc["intercept_ols"]] + [coef_ols[n] for n in LONGLEY_FEATURES])
    data = np.loadtxt(LONGLEY, delimiter=",", skiprows=1)
    A = np.column_stack([np.ones(len(data)), data[:, 1:]])
    lstsq = np.linalg.lstsq(A, data[:, 0], rcond=None)[0]
    nist = np.array([NIST_INTERCEPT] + NIST_COEFS)
    # Longley is ill-conditioned on the raw scale (cond([1, X]) ≈ 5e9), but our refit solves
    # the normal equations of the standardized features, whose condition number is ≈ 1.2e4:
    # about cond·eps ≈ 3e-12 relative error, a digit more for the back-transformed intercept
    # (a difference of terms ~1e7). We measure ≈ 1e-11 against NIST, as numpy's lstsq does;
    # 1e-9 keeps a margin and still fails on any approximate (lasso) coefficient, ≥ 1e-4 off.
    np.testing.assert_allclose(ours, nist, rtol=1e-9)
    np.testing.assert_allclose(lstsq, nist, rtol=1e-9)


def test_an_id_column_is_kept_when_named_in_features(tmp_path):
    rng = np.random.default_rng(3)
    n = 60
    x = rng.normal(size=n)
    cols = {"id": list(range(n)), "order_id": [int(v) for v in rng.permutation(n)],
            "x": [float(v) for v in x], "y": [float(v) for v in 2 * x + rng.normal(size=n)]}
    path = write_csv(tmp_path / "ids.csv", cols)
    result = ok(invoke("fit", path, "-t", "y", "--format", "json"))
    assert [f["name"] for f in strict_loads(result.stdout)["features"]] == ["x"]
    assert "pass --features NAME to use one" in result.stderr
    doc = fit_json(path, "-t", "y", "-f", "order_id", "-f", "*")
    # order_id is named exactly: used; id only matches the glob: still excluded.
    assert [f["name"] for f in doc["features"]] == ["order_id", "x"]


def _boom(*args, **kwargs):
    raise ValueError("boom\nsecond line")


@pytest.mark.parametrize("command,target,args", [
    ("fit", "l1select.pipeline.select_features", ["{csv}", "-t", "y", "-o", "{out}"]),
    ("transform", "l1select.apply.transform", ["{csv}", "--selection", "{result}",
                                               "-o", "{out}"]),
    ("predict", "l1select.apply.predict", ["{csv}", "--model", "{result}", "-o", "{out}"]),
    ("batch", "l1select.batch.run_batch", ["{yaml}", "--output-dir", "{tmp}/runs"]),
    ("plot", "l1select.plots.write_plots", ["{result}", "-o", "{tmp}/plots"]),
    ("schema", "l1select.config.schema_text", []),
])
def test_an_unexpected_exception_is_one_internal_error_line(tmp_path, monkeypatch, sparse_csv,
                                                           command, target, args):
    result_file = tmp_path / "result.json"
    ok(invoke("fit", sparse_csv, "-t", "y", "--format", "json", "-o", result_file))
    (tmp_path / "b.yaml").write_text(f"jobs:\n  one:\n    source: {sparse_csv}\n"
                                     "    target: y\n")
    values = {"csv": sparse_csv, "out": tmp_path / "out.txt", "result": result_file,
              "yaml": tmp_path / "b.yaml", "tmp": tmp_path}
    argv = [command] + [a.format(**values) for a in args]
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module), name, _boom)
    line = assert_error(invoke(*argv), 1, "Error: internal error: ValueError: boom second line "
                                          "(run again with --debug for the traceback)")
    assert line
    assert not (tmp_path / "out.txt").exists()
    if command != "schema":  # --debug shows the real exception (schema has no --debug)
        result = invoke(*argv, "--debug")
        assert isinstance(result.exception, ValueError)


def test_no_python_warning_reaches_stderr(tmp_path, monkeypatch, sparse_csv):
    def warn_and_fail(*args, **kwargs):
        np.log(np.zeros(1))  # a numpy floating-point RuntimeWarning
        warnings.warn("some library's warning", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    import l1select.pipeline as pipeline

    real = pipeline.select_features
    monkeypatch.setattr(pipeline, "select_features", warn_and_fail)
    # pytest records warnings instead of printing them: record them here, as shown ones.
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = ok(invoke("fit", sparse_csv, "-t", "y", "--format", "json"))
    assert shown == [] and "warn" not in result.stderr.lower()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        ok(invoke("fit", sparse_csv, "-t", "y", "--format", "json", "--debug"))
    assert {w.category for w in shown} >= {RuntimeWarning, UserWarning}  # --debug shows them


def test_ctrl_c_during_a_wide_fit_exits_at_once(tmp_path):
    """SIGINT while the wide-data engine's threads are solving: exit 130 at once, no file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(4)
    n, p = 200, 6000  # wide: the data-matrix engine, one thread per fold path
    X = rng.normal(size=(n, p))
    cols = {f"x{j}": X[:, j] for j in range(p)}
    cols["y"] = X[:, :5] @ np.arange(1.0, 6.0) + rng.normal(size=n)
    data = tmp_path / "wide.parquet"
    pq.write_table(pa.table(cols), data)
    # An explicit grid deep below alpha_max is solved whole: each path takes many seconds
    # (uninterrupted, the fit takes about 20 s; 200 alphas to 1e-4 took only 2.3 s once the
    # solver was faster, and a loaded machine could finish it before the signal came).
    grid = ",".join(f"{a:.6g}" for a in np.geomspace(10.0, 1e-6, 2000))
    marker, out = tmp_path / "solving", tmp_path / "out.json"
    # The marker file says when the first path starts (reading a file takes a while).
    code = (
        "import l1select.solve.data as d\n"
        "real = d._path\n"
        "def traced(*a, **k):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    return real(*a, **k)\n"
        "d._path = traced\n"
        "from l1select.cli import main\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "fit", str(data), "-t", "y", "--alphas", grid,
         "--format", "json", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate()[1].decode()
        time.sleep(0.5)  # well inside the paths
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    assert stderr.decode().strip().splitlines()[-1] == "Interrupted"
    assert stdout == b"" and not out.exists()
    assert not list(tmp_path.glob(".*")) and sorted(p.name for p in tmp_path.iterdir()) == [
        "solving", "wide.parquet"]
    # A behaviour test, not a benchmark: the exit takes ~0.1 s; waiting for the paths instead
    # took ~20 s here. 5 s leaves room for a loaded CI machine.
    assert elapsed < 5.0, elapsed


def test_an_explicit_date_column_is_one_hot_encoded_and_predict_applies_it(tmp_path):
    rng = np.random.default_rng(5)
    n = 90
    day = rng.integers(1, 4, n)
    x = rng.normal(size=n)
    cols = {"sold": [f"2024-01-0{d}" for d in day], "x": [float(v) for v in x],
            "y": [float(v) for v in 2 * x + 3 * (day == 2) + 0.1 * rng.normal(size=n)]}
    path = write_csv(tmp_path / "d.csv", cols)
    result = ok(invoke("fit", path, "-t", "y", "--format", "json"))
    assert "pass --features sold to one-hot encode" in result.stderr
    model = tmp_path / "m.json"
    ok(invoke("fit", path, "-t", "y", "-f", "sold", "-f", "x", "--format", "json", "-o", model))
    doc = strict_loads(model.read_text())
    assert "sold=2024-01-02" in doc["selected"]
    pred = ok(invoke("predict", path, "--model", model)).stdout.splitlines()
    assert pred[0] == "prediction" and len(pred) == n + 1
    # The fit explains y closely (noise sd 0.1): predict applied the same encoding.
    np.testing.assert_allclose([float(v) for v in pred[1:]], cols["y"], atol=0.5)
    assert_error(invoke("fit", path, "-t", "y", "-f", "sold", "--max-levels", "2"), 1,
                 "named in --features", "more than 2 distinct values")

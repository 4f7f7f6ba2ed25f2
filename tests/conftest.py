"""Shared test helpers: seeded synthetic data written to files, and a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CSV = REPO / "sample_data" / "housing.csv"
SAMPLE_PARQUET = REPO / "sample_data" / "housing.parquet"


def last_line(code: str, timeout: float = 120) -> str:
    """The last line ``code`` prints in a fresh Python run from the repository (what a new
    process imports, or does at exit); the run must succeed."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def make_regression(n: int = 200, p: int = 8, seed: int = 0, missing: float = 0.0,
                    shift: float = 0.0):
    """Seeded data with a sparse truth: y depends on the first three features only."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + shift
    beta = np.zeros(p)
    beta[:3] = [3.0, -2.0, 1.5][:min(p, 3)]
    y = (X - shift) @ beta + rng.normal(scale=1.0, size=n) + 10.0
    if missing:
        mask = rng.random(size=X.shape) < missing
        X = np.where(mask, np.nan, X)
    return X, y, beta


def write_csv(path: Path, X: np.ndarray, y: np.ndarray, extra: dict | None = None) -> Path:
    import pandas as pd

    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y
    for k, v in (extra or {}).items():
        df[k] = v
    df.to_csv(path, index=False, float_format="%.17g")
    return path


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite the golden JSON files (tests/cli/golden/) from this run "
                          "instead of comparing with them.")


@pytest.fixture
def update_golden(request) -> bool:
    """True under ``pytest --update-golden``: the golden tests write their files."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def regression_csv(tmp_path):
    X, y, _ = make_regression()
    return write_csv(tmp_path / "reg.csv", X, y)

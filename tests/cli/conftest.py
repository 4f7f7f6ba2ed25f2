"""Fixtures for the end-to-end tests of the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import sparse_columns, write_csv, write_parquet


@pytest.fixture
def sparse_csv(tmp_path: Path) -> Path:
    """The sparse data set (y = 3·x0 − 2·x2 + noise) as a comma-separated file."""
    return write_csv(tmp_path / "sparse.csv", sparse_columns())


@pytest.fixture
def sparse_parquet(tmp_path: Path) -> Path:
    """The same data set as a Parquet file (float64 columns)."""
    return write_parquet(tmp_path / "sparse.parquet", sparse_columns())

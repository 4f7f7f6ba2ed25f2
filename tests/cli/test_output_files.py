"""Output files behave as every other tool's (issue 11): they get the permissions a new file
gets under the user's umask (one atomic writer for all of them), and an output path whose
folder does not exist is exit 1, one line, before any work and with nothing written."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest
from cli_helpers import assert_error, invoke, ok, sparse_columns, write_csv


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[Path, Path]:
    data = write_csv(tmp_path / "d.csv", sparse_columns())
    result = tmp_path / "result.json"
    ok(invoke("fit", data, "-t", "y", "--n-alphas", "20", "--format", "json", "-o", result))
    return data, result


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_output_file_gets_the_umask_mode(tmp_path, fitted, umask, mask, want):
    data, result = fitted
    umask(mask)
    out = tmp_path / "out"
    out.mkdir()
    ok(invoke("fit", data, "-t", "y", "--n-alphas", "20", "--format", "json",
              "-o", out / "r.json", "--report", out / "r.html", "--plots", out / "pics"))
    ok(invoke("fit", data, "-t", "y", "--n-alphas", "20", "-o", out / "table.txt"))
    ok(invoke("transform", data, "--selection", result, "-o", out / "t.csv"))
    ok(invoke("transform", data, "--selection", result, "-o", out / "t.parquet"))
    ok(invoke("predict", data, "--model", result, "-o", out / "p.tsv"))
    ok(invoke("predict", data, "--model", result, "-o", out / "p.parquet"))
    ok(invoke("plot", result, "-o", out / "plot", "--format", "svg"))
    batch = tmp_path / "batch.yaml"
    batch.write_text(textwrap.dedent(f"""
        jobs:
          - name: one
            source: {data}
            target: y
            n_alphas: 20
        """))
    ok(invoke("batch", batch, "--output-dir", out / "runs"))
    files = _files(out)
    names = {p.name for p in files}
    assert {"r.json", "r.html", "table.txt", "t.csv", "t.parquet", "p.tsv", "p.parquet",
            "summary.json"} <= names
    assert any(p.suffix == ".png" for p in files) and any(p.suffix == ".svg" for p in files)
    wrong = {str(p.relative_to(out)): oct(_mode(p)) for p in files if _mode(p) != want}
    assert not wrong, f"not {oct(want)}: {wrong}"
    assert not [p for p in files if p.name.endswith(".tmp")]


def test_an_existing_file_is_replaced_with_the_umask_mode(tmp_path, fitted, umask):
    data, result = fitted
    umask(0o022)
    target = tmp_path / "p.csv"
    target.write_text("old\n")
    target.chmod(0o600)
    ok(invoke("predict", data, "--model", result, "-o", target))
    assert target.read_text().startswith("prediction\n")
    assert _mode(target) == 0o644


@pytest.mark.parametrize("command", ["fit -o", "fit --report", "transform -o", "predict -o",
                                     "transform -o parquet", "predict -o parquet"])
def test_an_output_folder_that_does_not_exist_is_exit_1(tmp_path, fitted, command):
    data, result = fitted
    missing = tmp_path / "no" / "such"
    suffix = ".parquet" if command.endswith("parquet") else ".csv"
    args = {
        "fit -o": ["fit", data, "-t", "y", "--format", "json", "-o", missing / "r.json"],
        "fit --report": ["fit", data, "-t", "y", "--report", missing / "r.html"],
        "transform -o": ["transform", data, "--selection", result, "-o", missing / "t.csv"],
        "predict -o": ["predict", data, "--model", result, "-o", missing / "p.csv"],
    }[command.removesuffix(" parquet")]
    if suffix == ".parquet":
        args[-1] = args[-1].with_suffix(suffix)
    assert_error(invoke(*args), 1, f"Cannot write {args[-1]}", f"folder {missing} does not exist")
    assert not (tmp_path / "no").exists()


def test_folder_outputs_are_made_but_not_over_a_file(tmp_path, fitted):
    """--plots DIR, plot -o DIR and batch --output-dir are folders, made with their parents;
    an existing file in their place is exit 1."""
    data, result = fitted
    ok(invoke("plot", result, "-o", tmp_path / "a" / "b"))
    assert any((tmp_path / "a" / "b").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_error(invoke("plot", result, "-o", blocker), 1, str(blocker))
    assert_error(invoke("fit", data, "-t", "y", "--plots", blocker), 1, str(blocker))
    batch = tmp_path / "batch.yaml"
    batch.write_text(f"jobs:\n  - name: one\n    source: {data}\n    target: y\n")
    assert_error(invoke("batch", batch, "--output-dir", blocker), 1, str(blocker))

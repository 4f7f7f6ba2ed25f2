"""Imports point down the data flow only (STYLE.md): a module never imports a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "l1select"

# Lower rank = earlier in the flow. Modules of equal rank may not import each other.
RANK = {
    "errors": 0, "types": 0, "__init__": 0, "files": 0,
    # The option table is a declaration every stage may read, like types.
    "options": 0,
    # JSON text as json.dumps writes it, faster: a utility any stage may use.
    "jsontext": 0,
    # Pausing the garbage collector around a stage that makes many lasting objects.
    "_gc": 0,
    # io is a package: its parts have their own ranks (IO_RANK below).
    "io": 1, "prepare": 2, "family": 2.5, "folds": 3, "moments": 4,
    # _kernels is a package: its parts have their own ranks (KERNEL_RANK below). The compiled
    # loops (and _aot, which builds and loads them) import nothing of l1select's but _gc:
    # leaves every stage may call, io's Parquet page decoder as well as the solvers.
    "_kernels": 0.5, "_aot": 0.6,
    # engines deliver statistics or the matrix; the solving stage turns them into paths.
    "engines": 4.8,
    "path": 5, "grouplasso": 5, "cv": 6, "solve": 6.5,
    "select": 7, "pipeline": 9, "apply": 9, "report": 10, "plots": 10, "config": 10,
    # The HTML report renders only, like report and plots, and embeds the plots' pictures.
    "html_report": 10.5,
    "batch": 11, "cli_args": 12, "cli_coerce": 12, "cli": 13, "__main__": 14,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("l1select"):
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("l1select."):
                    out.add(a.name.split(".")[1])
    return out


def test_every_module_has_a_rank():
    names = {_module_name(p) for p in PKG.rglob("*.py")}
    assert names <= set(RANK), f"give these modules a rank: {sorted(names - set(RANK))}"


def test_imports_point_down_the_data_flow():
    wrong = []
    for path in PKG.rglob("*.py"):
        me = _module_name(path)
        if me == "__init__":
            continue  # the public API facade re-exports the entry points, lazily
        for dep in _imports(path):
            if dep in ("__version__",) or dep == me:
                continue
            if RANK[dep] >= RANK[me] and RANK[dep] != 0:
                wrong.append(f"{path.relative_to(PKG)} imports {dep}")
    assert not wrong, wrong


# Inside the packages, one way too. io: where the bytes are, then one reader per format, then
# the ways in. _kernels: the shared pieces, then the Gram solver, then the data-matrix solver
# (which solves its active sets on their Gram), so a Gram fit never loads the data-matrix one;
# the group lasso's and the logistic regression's kernels stand alone. engines: the boundary
# (base) and the shared checks, then the engines (Dask reuses the streaming reduction,
# and its binomial half the Dask partitions and passes).
# solve: the family's maths and stability's pairs, the shared checks, matrix helpers and the
# Newton steps, the solvers, then the stage that dispatches to them.
PART_RANKS = {
    "io": {"sources": 0, "result": 0, "pages": 0, "csv": 1, "parquet": 1, "write": 1,
           "reader": 2},
    "_kernels": {"common": 0, "pages": 0, "gram": 1, "data": 2, "group": 1, "logistic": 1},
    "engines": {"base": 0, "checks": 0, "memory": 1, "streaming": 1, "dask": 2,
                "dask_binomial": 3},
    "solve": {"logistic": 0, "stability": 0, "checks": 1, "matrix": 1, "newton": 1, "gram": 2,
              "data": 2, "binomial": 3, "cluster_binomial": 3, "reference": 3, "stage": 4},
}


@pytest.mark.parametrize("package", sorted(PART_RANKS))
def test_the_parts_of_a_package_import_one_way(package):
    rank = PART_RANKS[package]
    wrong = []
    for path in (PKG / package).glob("*.py"):
        me = path.stem
        if me == "__init__":
            continue  # re-exports the parts, lazily
        assert me in rank, f"give l1select/{package}/{me}.py a rank in PART_RANKS"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = node.module.split(".")
                if names[:2] != ["l1select", package]:
                    continue
                for dep in names[2:3] or [a.name for a in node.names]:
                    if dep in rank and rank[dep] >= rank[me] and dep != me:
                        wrong.append(f"{package}/{me}.py imports {package}/{dep}.py")
    assert not wrong, wrong

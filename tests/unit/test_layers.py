"""Imports point down the data flow only (STYLE.md): a module never imports a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "l1select"

# Lower rank = earlier in the flow. Modules of equal rank may not import each other.
RANK = {
    "errors": 0, "types": 0, "__init__": 0, "files": 0,
    # The option table is a declaration every stage may read, like types.
    "options": 0,
    "io": 1, "prepare": 2, "family": 2.5, "folds": 3, "moments": 4, "_kernels": 4,
    "_kernels_group": 4, "_kernels_logistic": 4, "_aot": 4.5,
    "path": 5, "grouplasso": 5, "cv": 6, "solve": 6.5,
    "select": 7, "engines": 8, "pipeline": 9, "apply": 9, "report": 10, "plots": 10, "config": 10,
    # The HTML report renders only, like report and plots, and embeds the plots' pictures.
    "html_report": 10.5,
    "batch": 11, "cli_args": 12, "cli": 13, "__main__": 14,
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

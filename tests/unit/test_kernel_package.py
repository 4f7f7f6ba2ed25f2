"""The ``_kernels`` package: what it re-exports, what a Gram fit loads, and what the AOT
module's hash covers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "l1select" / "_kernels"


def _kernel_imports(path: Path) -> set[str]:
    """The ``_kernels`` parts a part imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".")
            if names[:2] == ["l1select", "_kernels"] and len(names) > 2:
                out.add(names[2])
    return out


@pytest.mark.parametrize("name", ["GRAM", "DATA"])
def test_each_aot_module_hashes_every_source_of_its_kernels(name):
    """An edit to any module an AOT module's kernels are compiled from must rebuild it."""
    from l1select import _aot

    module = getattr(_aot, name)
    needed, todo = set(), [part for _, part, _ in module.exports]
    while todo:
        part = todo.pop()
        if part not in needed:
            needed.add(part)
            todo.extend(_kernel_imports(KERNELS / f"{part}.py"))
    hashed = {path.resolve() for path in module.sources}
    assert hashed == {(KERNELS / f"{part}.py").resolve() for part in needed}


def test_the_package_re_exports_both_solvers():
    from l1select import _kernels
    from l1select._kernels import cd_data_path, cd_gram_path, data, gram

    assert cd_gram_path is gram.cd_gram_path
    assert cd_data_path is data.cd_data_path
    with pytest.raises(AttributeError, match="no attribute 'cd_nothing'"):
        _kernels.cd_nothing  # noqa: B018 - the attribute access is the test


def test_the_gram_kernel_loads_without_the_data_kernels():
    """Start-up: a Gram fit on numba's dispatcher does not import the data-matrix solver."""
    code = ("import sys\nfrom l1select._kernels import cd_gram_path\n"
            "print(sorted(m for m in sys.modules if m.startswith('l1select._kernels')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "['l1select._kernels', 'l1select._kernels.common', " \
        "'l1select._kernels.gram']", out.stderr


def test_a_changed_shared_source_drops_the_caches_compiled_from_it(tmp_path):
    """numba's cache does not see an edit to a file compiled into another file's function:
    an edit to any linked part drops the cached code of all of them, and only then."""
    from l1select._kernels import _LINKED, _drop_stale_caches

    for part in _LINKED:
        (tmp_path / f"{part}.py").write_text(f"# {part}\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()

    def cached(part: str) -> Path:
        path = cache / f"{part}.cd_path-10.py311.nbi"
        path.write_text("index")
        return path

    _drop_stale_caches(tmp_path)  # the first run records the sources
    kept = [cached(part) for part in _LINKED]
    other = cache / "logistic.logistic_path-5.py311.nbi"
    other.write_text("index")
    _drop_stale_caches(tmp_path)
    assert all(path.exists() for path in kept)

    (tmp_path / "common.py").write_text("# common, edited\n")
    _drop_stale_caches(tmp_path)
    assert not any(path.exists() for path in kept)
    assert other.exists()  # a standalone part keeps its own (numba checks its file itself)


# A kernel call, then a numba function that calls BLAS (np.dot): it must still find scipy's
# BLAS, and the extension module is then a normal attribute of its package.
_BLAS_AFTER_A_KERNEL = """
import sys
import numpy as np
from l1select._kernels.data import data_moments
X = np.asfortranarray(np.arange(12.0).reshape(4, 3))
mean, std = data_moments(X, np.arange(4, dtype=np.int64))
print(mean.tolist(), 'scipy.linalg' in sys.modules, 'scipy.linalg.cython_blas' in sys.modules)
from numba import njit
dot = njit(lambda a, b: np.dot(a, b))
import scipy.linalg
print(dot(X[:, 0].copy(), X[:, 1].copy()) == X[:, 0] @ X[:, 1],
      scipy.linalg.cython_blas is sys.modules['scipy.linalg.cython_blas'])
"""


def test_a_kernel_call_does_not_import_scipy_linalg():
    """Start-up: numba's BLAS check finds scipy's BLAS module without the scipy.linalg
    package (half a second), and BLAS still works for numba code that needs it later."""
    out = subprocess.run([sys.executable, "-c", _BLAS_AFTER_A_KERNEL], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert out.stdout.splitlines() == ["[4.5, 5.5, 6.5] False False", "True True"], out.stderr


def test_a_failed_blas_shortcut_leaves_numba_its_usual_way():
    """If loading numba's registries early fails (here: the first time only), numba loads
    them itself at the first kernel call, importing scipy's BLAS module as it always did."""
    code = ("from numba.core.registry import cpu_target\n"
            "context = type(cpu_target.target_context)\n"
            "usual = context.refresh\n"
            "def refresh(self):\n"
            "    context.refresh = usual\n"
            "    raise RuntimeError('not this time')\n"
            "context.refresh = refresh\n"
            + _BLAS_AFTER_A_KERNEL)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.splitlines() == ["[4.5, 5.5, 6.5] True True", "True True"], out.stderr


def test_threads_asking_for_a_module_at_once_build_it_once(monkeypatch):
    """The fits' threads ask for the AOT module together on first use. A build swaps pycc's
    compiler flags while it runs; two side by side once left a module built without GIL
    release on disk (its fold paths then ran one at a time). One thread builds; the others
    wait for it and get the same module."""
    import threading
    import time
    from dataclasses import replace

    from l1select import _aot

    module = replace(_aot.DATA, prefix="_test_race_aot_")
    builds = []

    def slow_build(name, mod):
        builds.append(threading.get_ident())
        time.sleep(0.2)
        return None  # "cannot be built here": numba's dispatcher

    monkeypatch.setattr(_aot, "build", slow_build)
    monkeypatch.setattr(_aot, "_find", lambda name: None)
    monkeypatch.setattr(_aot, "_loaded", {})
    got = []
    threads = [threading.Thread(target=lambda: got.append(_aot._compiled(module)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and got == [None] * 4

"""Numba hot loops: coordinate descent along an alpha path, one module per solver.

- :mod:`~l1select._kernels.common`: what both solvers share (the objective, the duality gap
  and stopping rule, the coordinate update, the working set, the small Cholesky solves).
- :mod:`~l1select._kernels.gram`: :func:`cd_gram_path`, on the Gram ``(G, c, yty)``.
- :mod:`~l1select._kernels.data`: :func:`cd_data_path`, on the raw data matrix (wide data).
- :mod:`~l1select._kernels.group`: the group lasso's block coordinate descent on a Gram.
- :mod:`~l1select._kernels.logistic`: the penalized logistic regression (proximal Newton).

The solvers are imported on first use (PEP 562), so that a Gram fit does not load the
data-matrix kernels.

numba's on-disk cache (``cache=True``) checks only the source file of the function it compiled,
not the files of the functions compiled into it (numba's "Notes on Caching": changes in symbols
defined in another file are not detected). ``gram.py`` compiles in pieces of ``common.py``, and
``data.py`` of both; so when the three sources change together-or-apart (an edit, a ``git
pull`` on an editable install), their cached machine code is dropped on import here, and
recompiled on first use, rather than run stale.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from l1select._gc import paused as gc_paused

# The parts whose compiled code includes another part's: their caches stand or fall together.
_LINKED = ("common", "gram", "data")
_STAMP = "linked-sources.sha256"


def _drop_stale_caches(folder: Path) -> None:
    """Delete numba's cache files of the ``_LINKED`` parts in ``folder/__pycache__`` when
    their sources differ from those the stamp file there records, and record them."""
    try:
        sources = b"".join((folder / f"{part}.py").read_bytes() for part in _LINKED)
        digest = hashlib.sha256(sources).hexdigest()
        cache = folder / "__pycache__"
        stamp = cache / _STAMP
        if stamp.exists() and stamp.read_text() == digest:
            return
        for part in _LINKED:
            for path in cache.glob(f"{part}.*.nb[ic]"):
                path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f"{_STAMP}.{os.getpid()}"
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: numba caches elsewhere, and its sources never change
        pass


_drop_stale_caches(Path(__file__).resolve().parent)


# The BLAS module numba checks for; importing it the usual way runs all of scipy.linalg's
# package (half a second) first.
_CYTHON_BLAS = "scipy.linalg.cython_blas"


def _load_numba_registries() -> None:
    """Load numba's implementation registries now, with scipy's BLAS extension module loaded
    on its own rather than through the ``scipy.linalg`` package.

    At its first compile or cache load numba imports ``numba.np.arraymath``, which checks
    that BLAS is there by importing ``scipy.linalg.cython_blas``; that import runs
    ``scipy/linalg/__init__.py`` (≈0.5 s of the first kernel call), though no kernel here
    except the group lasso's calls BLAS. Here that check finds the extension module alone
    (loaded as the import system would, minus its package's ``__init__``); numba's own
    check of the BLAS integer width still runs. Afterwards the module is taken out of
    ``sys.modules`` again, so that a later import (a BLAS-using kernel, scipy.linalg
    itself) goes the usual way and gets a normal package attribute (the extension module
    object is the same either way). Anything unexpected leaves numba to do as it always
    did: the first kernel call then pays the package import, results are the same.
    """
    if os.environ.get("NUMBA_DISABLE_JIT") or "scipy.linalg" in sys.modules \
            or _CYTHON_BLAS in sys.modules or "numba.np.arraymath" in sys.modules:
        return  # nothing compiles, or the package is already paid for, or numba is loaded
    ours = None
    try:
        import importlib.machinery
        import importlib.util

        scipy_spec = importlib.util.find_spec("scipy")  # the top-level package is cheap
        if scipy_spec is None or not scipy_spec.submodule_search_locations:
            return
        folders = [str(Path(f) / "linalg") for f in scipy_spec.submodule_search_locations]
        spec = importlib.machinery.PathFinder.find_spec(_CYTHON_BLAS, folders)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return
        ours = importlib.util.module_from_spec(spec)
        sys.modules[_CYTHON_BLAS] = ours
        spec.loader.exec_module(ours)
        # numba and its registries are ~80,000 objects that live as long as the process:
        # the full garbage collection they would set off walks all of them (0.1 s).
        with gc_paused():
            from numba.core.registry import cpu_target

            # What numba's first dispatch or cache load does (BaseContext.refresh), done now.
            cpu_target.target_context.refresh()
    except Exception:  # any surprise: numba loads its registries itself, the usual way
        pass
    finally:
        if ours is not None and sys.modules.get(_CYTHON_BLAS) is ours:
            package = sys.modules.get("scipy.linalg")
            if package is None:
                del sys.modules[_CYTHON_BLAS]
            elif not hasattr(package, "cython_blas"):
                # Another thread imported the package meanwhile: bind the submodule to it,
                # as the import system does.
                package.cython_blas = ours


_load_numba_registries()

_EXPORTS = {"cd_gram_path": "gram", "cd_data_path": "data"}

__all__ = ["cd_data_path", "cd_gram_path"]

if TYPE_CHECKING:
    from l1select._kernels.data import cd_data_path
    from l1select._kernels.gram import cd_gram_path


def __getattr__(name: str):
    part = _EXPORTS.get(name)
    if part is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{part}"), name)

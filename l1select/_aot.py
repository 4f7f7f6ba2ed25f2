"""The Gram path kernel compiled ahead of time, so that a short run never starts numba.

Loading a kernel from numba's on-disk cache costs about half a second in every process: numba
itself, its type registries and, through them, scipy.linalg. Most runs are small files whose
whole fit takes less. So the Gram path (:func:`l1select._kernels.gram.cd_gram_path`, the same
Python function) is also compiled with ``numba.pycc`` into an ordinary extension module, which
imports in about a millisecond and gives bit-identical results. It is built once, on the first
Gram fit after installing (the set-up command in the README makes that run), next to the
package; its name carries a hash of the kernel source (every module the Gram kernel is compiled
from) and the numba and Python versions, so an edited or upgraded kernel is rebuilt. When it
cannot be built (no C compiler, a read-only install, a numba without ``pycc``) or
``NUMBA_DISABLE_JIT`` is set, numba's dispatcher is used as before: only the start-up time
differs. A failed build leaves a ``.failed`` marker beside it so that later runs do not retry
(delete it, or ``python -c "import l1select._aot as a; print(a.build())"``, after installing a
compiler).

The wide-data kernel stays a numba dispatcher: its fits run in parallel threads, which needs
numba's ``nogil``, and its own cost dwarfs the start-up.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# The sources cd_gram_path is compiled from: the Gram solver and the pieces it shares with the
# data-matrix solver. A new import in gram.py from another module belongs here too.
_KERNEL_SOURCES = (_HERE / "_kernels" / "common.py", _HERE / "_kernels" / "gram.py")
# cd_gram_path(gram, xty, yty, alphas, l1_ratio, penalty, coef, tol, max_iter)
#   -> (coefs, dual_gaps, n_iters)
# C-contiguous arrays, as path.solve_gram passes them (the types numba's dispatcher compiles).
_GRAM_SIGNATURE = ("Tuple((f8[:,::1], f8[::1], i8[::1]))"
                   "(f8[:,::1], f8[::1], f8, f8[::1], f8, f8[::1], f8[::1], f8, i8)")

_cached = None


def _numba_version() -> bytes | None:
    """What identifies the installed numba: its generated ``_version.py`` (the version and the
    revision), found without importing numba, or else its package metadata's version.
    ``importlib.metadata`` imports the email parser (20-35 ms), so it is only the fallback."""
    try:
        spec = importlib.util.find_spec("numba")
        if spec is not None and spec.origin is not None:
            return (Path(spec.origin).parent / "_version.py").read_bytes()
    except (ImportError, OSError, ValueError):
        pass
    try:
        from importlib.metadata import version

        return version("numba").encode()
    except Exception:  # no numba metadata: no AOT module to match it
        return None


def _module_name() -> str | None:
    numba_version = _numba_version()
    if numba_version is None:
        return None
    source = b"".join(path.read_bytes() for path in _KERNEL_SOURCES)
    key = hashlib.sha256(source + numba_version
                         + sys.version.encode() + _GRAM_SIGNATURE.encode()).hexdigest()[:16]
    return f"_gram_aot_{key}"


def _cache_dir() -> Path:
    return _HERE / "__pycache__"


def _load(path: Path):
    loader = importlib.machinery.ExtensionFileLoader(path.stem.split(".")[0], str(path))
    spec = importlib.util.spec_from_file_location(loader.name, str(path), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.cd_gram_path


def _find(name: str) -> Path | None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = _cache_dir() / f"{name}{suffix}"
    return path if path.exists() else None


def build(name: str | None = None) -> Path | None:
    """Compile the AOT module into the package's ``__pycache__`` (atomically: built in a
    temporary folder, then renamed into place). Returns its path, or None if it cannot be
    built here. Takes 5 to 20 seconds."""
    name = name or _module_name()
    if name is None:
        return None
    import warnings

    target = _cache_dir()
    try:
        target.mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
            from numba.pycc import CC

            from l1select._kernels.gram import cd_gram_path

            with tempfile.TemporaryDirectory(dir=target) as tmp:
                cc = CC(name)
                cc.output_dir = tmp
                cc.verbose = False
                cc.export("cd_gram_path", _GRAM_SIGNATURE)(cd_gram_path.py_func)
                cc.compile()
                built = next(Path(tmp).glob(f"{name}*"))
                final = target / built.name
                os.replace(built, final)
        for old in target.glob("_gram_aot_*"):
            if not old.name.startswith(name):
                old.unlink(missing_ok=True)
        return final
    except Exception:  # any failure to build leaves numba's dispatcher in charge
        try:  # and is not retried by every later run (a missing compiler costs seconds)
            (target / f"{name}.failed").touch()
        except OSError:
            pass
        return None


def gram_path():
    """The Gram path kernel: the AOT-compiled module (built on first use), or numba's
    dispatcher when it is not available."""
    global _cached
    if _cached is not None:
        return _cached
    kernel = None
    if not os.environ.get("NUMBA_DISABLE_JIT"):
        name = _module_name()
        if name is not None:
            failed = (_cache_dir() / f"{name}.failed").exists()
            path = _find(name) or (None if failed else build(name))
            if path is not None:
                try:
                    kernel = _load(path)
                except ImportError:
                    kernel = None
    if kernel is None:
        from l1select._kernels.gram import cd_gram_path as kernel
    _cached = kernel
    return kernel

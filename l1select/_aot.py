"""The solvers' kernels compiled ahead of time, so that a run never waits for numba to start.

Loading a kernel from numba's on-disk cache costs 0.5 to 0.7 s in every process: numba itself,
its type registries and, through them, parts of scipy. Most runs are small files whose whole
fit takes less, and on wide data it is a tenth of the run. So the kernels the two gaussian
solvers call are also compiled with ``numba.pycc`` (the same Python functions, the same
compiler) into ordinary extension modules, which import in about a millisecond and give
bit-identical results:

- ``gram``: :func:`l1select._kernels.gram.cd_gram_path`, the Gram path (built on the first
  Gram fit after installing; the set-up command in the README makes that run), and
  :func:`l1select._kernels.pages.hybrid_decode`, the Parquet page decoder's loop (the long
  row groups it reads are a Gram fit's);
- ``data``: :func:`l1select._kernels.data.data_moments` and
  :func:`~l1select._kernels.data.cd_data_path`, the data-matrix solver for wide data (built on
  the first fit that uses it). Its fits run side by side on threads, so its functions release
  the GIL as numba's ``nogil`` dispatcher does (pycc's wrapper is built with numba's
  ``release_gil`` flag).

Each module is built next to the package; its name carries a hash of the kernel sources (every
module the kernels are compiled from), the signatures and the numba and Python versions, so an
edited or upgraded kernel is rebuilt. When it cannot be built (no C compiler, a read-only
install, a numba without ``pycc``) or ``NUMBA_DISABLE_JIT`` is set, numba's dispatcher is used
as before: only the start-up time differs. A failed build leaves a ``.failed`` marker beside it
so that later runs do not retry (delete it, or ``python -c "import l1select._aot as a;
print(a.build())"``, after installing a compiler).

The exported functions take exactly the declared types (pycc has no dispatcher to convert or
reject others): callers pass contiguous float64/int64 arrays as the signatures below say.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_KERNELS = _HERE / "_kernels"


@dataclass(frozen=True)
class _Module:
    """One AOT module: its name's prefix, the kernel sources it is compiled from (a new import
    in one of them from another kernel module belongs here too), and its exports
    ``(function name, kernel module, signature)``."""

    prefix: str
    sources: tuple[Path, ...]
    exports: tuple[tuple[str, str, str], ...]
    release_gil: bool = False
    # Compiled for this machine's processor (its vector instructions), as numba's JIT does,
    # rather than for a generic x86-64: the data-matrix solver's passes over the data run
    # 6% slower on the generic target. The processor is then part of the module's name.
    host_cpu: bool = False


GRAM = _Module(
    "_gram_aot_", (_KERNELS / "common.py", _KERNELS / "gram.py", _KERNELS / "pages.py"),
    # cd_gram_path(gram, xty, yty, alphas, l1_ratio, penalty, coef, tol, max_iter)
    #   -> (coefs, dual_gaps, n_iters); C-contiguous arrays, as path.solve_gram passes them.
    (("cd_gram_path", "gram", "Tuple((f8[:,::1], f8[::1], i8[::1]))"
      "(f8[:,::1], f8[::1], f8, f8[::1], f8, f8[::1], f8[::1], f8, i8)"),
     # hybrid_decode(buf, bit_width, n, limit, out) -> status: the Parquet page decoder's
     # loop, which reads the long row groups the Gram path streams.
     ("hybrid_decode", "pages", "i8(u1[::1], i8, i8, i8, i4[::1])")),
    release_gil=True)
DATA = _Module(
    "_data_aot_", (_KERNELS / "common.py", _KERNELS / "gram.py", _KERNELS / "data.py"),
    # data_moments(X (Fortran order), rows) -> (mean, std)
    (("data_moments", "data", "UniTuple(f8[::1], 2)(f8[::1,:], i8[::1])"),
     # cd_data_path(X (Fortran), y, rows, mean, scale, y_mean, alphas, l1_ratio, penalty,
     #              coef, tol, max_iter) -> (coefs, dual_gaps, n_iters)
     ("cd_data_path", "data", "Tuple((f8[:,::1], f8[::1], i8[::1]))(f8[::1,:], f8[::1], "
      "i8[::1], f8[::1], f8[::1], f8, f8[::1], f8, f8[::1], f8[::1], f8, i8)")),
    release_gil=True, host_cpu=True)

_loaded: dict[str, object] = {}
_loading = threading.Lock()
_building = threading.Lock()


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


def _processor() -> bytes | None:
    """This machine's processor model and instruction-set flags (Linux), or None: a module
    compiled for the host is then not used on another processor sharing the install."""
    try:
        with open("/proc/cpuinfo", "rb") as fh:
            lines = fh.read(1 << 16).split(b"\n\n")[0].splitlines()
    except OSError:
        return None
    wanted = (b"vendor_id", b"model name", b"flags")
    found = [line for line in lines if line.split(b":")[0].strip() in wanted]
    return b"\n".join(found) if len(found) == len(wanted) else None


def _module_name(module: _Module = GRAM) -> str | None:
    numba_version = _numba_version()
    if numba_version is None:
        return None
    source = b"".join(path.read_bytes() for path in module.sources)
    signatures = "".join(f"{name}:{sig}" for name, _, sig in module.exports)
    processor = _processor() if module.host_cpu else b""
    if processor is None:
        return None  # no way to tell processors apart: numba's dispatcher, which can
    key = hashlib.sha256(source + numba_version + sys.version.encode() + signatures.encode()
                         + bytes([module.release_gil]) + processor).hexdigest()[:16]
    return f"{module.prefix}{key}"


def _cache_dir() -> Path:
    return _HERE / "__pycache__"


def _load(path: Path):
    loader = importlib.machinery.ExtensionFileLoader(path.stem.split(".")[0], str(path))
    spec = importlib.util.spec_from_file_location(loader.name, str(path), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _find(name: str) -> Path | None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = _cache_dir() / f"{name}{suffix}"
    return path if path.exists() else None


def _gil_free_flags(compiler_module):
    """numba's compiler ``Flags`` with ``release_gil`` on, for pycc's wrappers (pycc builds
    them from ``numba.pycc.compiler.Flags()``, which has it off)."""
    base = compiler_module.Flags

    class GilFreeFlags(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    return GilFreeFlags


def build(name: str | None = None, module: _Module = GRAM) -> Path | None:
    """Compile an AOT module (default: the Gram path's) into the package's ``__pycache__``
    (atomically: built in a temporary folder, then renamed into place). Returns its path, or
    None if it cannot be built here. Takes 5 to 20 seconds. One build at a time in a process
    (a build swaps pycc's compiler flags while it runs)."""
    with _building:
        return _build(name, module)


def _build(name: str | None, module: _Module) -> Path | None:
    name = name or _module_name(module)
    if name is None:
        return None
    import importlib
    import warnings

    target = _cache_dir()
    try:
        target.mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
            import numba.pycc.compiler as pycc_compiler
            from numba.pycc import CC

            flags = pycc_compiler.Flags
            if module.release_gil:
                if "flags = Flags()" not in Path(pycc_compiler.__file__).read_text():
                    raise RuntimeError("this numba's pycc builds its flags another way")
                pycc_compiler.Flags = _gil_free_flags(pycc_compiler)
            try:
                with tempfile.TemporaryDirectory(dir=target) as tmp:
                    cc = CC(name)
                    cc.output_dir = tmp
                    cc.verbose = False
                    if module.host_cpu:
                        cc.target_cpu = "host"
                    for export, part, signature in module.exports:
                        kernel = getattr(importlib.import_module(f"l1select._kernels.{part}"),
                                         export)
                        cc.export(export, signature)(kernel.py_func)
                    cc.compile()
                    built = next(Path(tmp).glob(f"{name}*"))
                    final = target / built.name
                    os.replace(built, final)
            finally:
                pycc_compiler.Flags = flags
        # An older build is stale (another kernel source or numba), unless it was built for
        # another processor sharing this install: those stay, or two machines would take
        # turns rebuilding.
        for old in () if module.host_cpu else target.glob(f"{module.prefix}*"):
            if not old.name.startswith(name):
                old.unlink(missing_ok=True)
        return final
    except Exception:  # any failure to build leaves numba's dispatcher in charge
        try:  # and is not retried by every later run (a missing compiler costs seconds)
            (target / f"{name}.failed").touch()
        except OSError:
            pass
        return None


def _compiled(module: _Module):
    """The AOT module (built on first use), or None where it is not available.

    One thread at a time finds, builds or loads a module: the fits' threads all ask for it
    at once, and :func:`build` swaps pycc's compiler flags for the time of a build, so two
    builds side by side could leave one compiled with the other's flags (a module that
    holds the GIL: its fold paths then run one at a time, and Ctrl-C waits for a path).
    """
    if module.prefix in _loaded:
        return _loaded[module.prefix]
    with _loading:
        if module.prefix in _loaded:
            return _loaded[module.prefix]
        compiled = _find_or_build(module)
        _loaded[module.prefix] = compiled
        return compiled


def _find_or_build(module: _Module):
    compiled = None
    if not os.environ.get("NUMBA_DISABLE_JIT"):
        name = _module_name(module)
        if name is not None:
            failed = (_cache_dir() / f"{name}.failed").exists()
            path = _find(name) or (None if failed else build(name, module))
            if path is not None:
                try:
                    compiled = _load(path)
                except ImportError:
                    compiled = None
    return compiled


def gram_path():
    """The Gram path kernel: the AOT-compiled module's (built on first use), or numba's
    dispatcher when it is not available."""
    compiled = _compiled(GRAM)
    if compiled is not None:
        return compiled.cd_gram_path
    from l1select._kernels.gram import cd_gram_path

    return cd_gram_path


def page_decoder():
    """The Parquet page decoder's compiled loop (:func:`l1select._kernels.pages.hybrid_decode`),
    or None where the AOT module is not available: the decoder then uses numpy, rather than
    load numba (half a second) for a read."""
    compiled = _compiled(GRAM)
    return compiled.hybrid_decode if compiled is not None else None


def data_kernels():
    """``(data_moments, cd_data_path)`` of the data-matrix solver: the AOT-compiled module's
    (built on first use), or numba's dispatchers when it is not available."""
    compiled = _compiled(DATA)
    if compiled is not None:
        return compiled.data_moments, compiled.cd_data_path
    from l1select._kernels.data import cd_data_path, data_moments

    return data_moments, cd_data_path

#!/usr/bin/env python
"""Benchmarks for l1select: speed against its read floors and scikit-learn, and peak memory.

    python benchmarks/run.py                          # every dataset (needs ~7 GB of disk)
    python benchmarks/run.py --only small,mid         # a subset
    python benchmarks/run.py --only tall --generate-only

Datasets are generated from ``--seed`` into benchmarks/data/ (skipped when the files exist with
the same spec), every measurement runs in this one invocation, and the medians, ratios and
targets are printed and written to benchmarks/results/latest.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
RESULTS_DIR = HERE / "results"
GENERATOR_VERSION = 1

# The environment of every child process: one BLAS/OpenMP thread, like the sklearn fit.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    name: str
    n_rows: int
    n_features: int
    seed: int = 0
    rho: float = 0.5           # AR(1) correlation: corr(x_i, x_j) = rho ** |i - j|
    n_nonzero: int = 10        # true non-zero coefficients
    noise_sd: float = 1.0
    intercept: float = 10.0
    sig_digits: int = 6        # every value is rounded to this many significant digits
    chunk_rows: int = 250_000  # rows generated (and written as one row group) at a time
    version: int = GENERATOR_VERSION
    dtype: str = "float64"     # the features' type on disk (float32 for "wider")
    csv: bool = True           # False: Parquet only
    one_row_group: bool = False  # the Parquet file as a single row group (pyarrow's default
    #                            # of up to 1M rows a group); written from the chunked file
    dictionary: bool = True    # False: that single row group without dictionary encoding


DATASETS = {
    "small": (5_000, 100),
    "mid": (200_000, 200),
    "tall": (1_000_000, 50),
    "tall1rg": (1_000_000, 50),
    "tall1rg_plain": (1_000_000, 50),
    "wide": (500, 20_000),
    "tall4m": (4_000_000, 50),
    "wider": (1_000, 100_000),
}
# Beyond the defaults of Spec: the issue's wide case has 50 true features; tall1rg is tall
# written as one row group (Parquet only: the memory case), tall1rg_plain the same without
# dictionary encoding (pyarrow's default encodes each column chunk's first 1 MiB of distinct
# values as a dictionary, which Arrow's reader holds, with a page, for every column it
# decodes: the part of the memory case that is the file's, not the batch's); wider is big
# (1,000 x 100,000 float32 Parquet, 400 MB on disk), so it runs only when named in --only.
EXTRA = {
    "wide": {"n_nonzero": 50},
    "tall1rg": {"csv": False, "one_row_group": True},
    "tall1rg_plain": {"csv": False, "one_row_group": True, "dictionary": False},
    "wider": {"n_nonzero": 50, "dtype": "float32", "csv": False},
}
# R glmnet runs on these (it reads the CSV export: the wide case).
GLMNET_CASES = ("wide",)
ORDER = ["small", "mid", "tall", "tall1rg", "tall1rg_plain", "wide", "tall4m", "wider"]
DEFAULT_RUN = ["small", "mid", "tall", "tall1rg", "tall1rg_plain", "wide", "tall4m"]


CHUNK_VALUES = 12_500_000  # values per generated chunk (100 MB of float64): 250k rows x 50


def spec_for(name: str, seed: int) -> Spec:
    n, p = DATASETS[name]
    return Spec(name=name, n_rows=n, n_features=p, seed=seed,
                chunk_rows=max(1, min(250_000, CHUNK_VALUES // p)), **EXTRA.get(name, {}))


def paths_for(spec: Spec, data_dir: Path) -> dict[str, Path]:
    stem = f"{spec.name}_s{spec.seed}"
    return {"csv": data_dir / f"{stem}.csv", "parquet": data_dir / f"{stem}.parquet",
            "meta": data_dir / f"{stem}.json"}


def round_sig(a, digits: int):
    """``a`` (1-D float64 array) rounded in place to ``digits`` significant digits.

    The result is the double nearest to a short decimal, so the CSV writer (shortest round-trip
    repr) prints at most ``digits`` significant digits, and CSV and Parquet hold the same values.
    """
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log10(np.abs(a)))
    e[~np.isfinite(e)] = 0.0
    k = (digits - 1) - e          # scale by 10**k; use exact powers of ten on both sides
    pos = k >= 0
    scale = np.power(10.0, np.abs(k))
    out = np.where(pos, np.round(a * scale) / scale, np.round(a / scale) * scale)
    a[...] = out
    return a


def true_model(spec: Spec):
    """The true support (sorted feature indices) and coefficients of a dataset."""
    import numpy as np

    rng = np.random.default_rng([spec.seed, zlib.crc32(_data_name(spec).encode()), 1])
    support = np.sort(rng.choice(spec.n_features, size=spec.n_nonzero, replace=False))
    signs = rng.choice([-1.0, 1.0], size=spec.n_nonzero)
    beta = signs * rng.uniform(0.5, 2.0, size=spec.n_nonzero)
    return support, beta


def _data_name(spec: Spec) -> str:
    """tall1rg and tall1rg_plain hold tall's numbers (only the Parquet layout differs)."""
    return "tall" if spec.name.startswith("tall1rg") else spec.name


def generate(spec: Spec, data_dir: Path, log) -> dict:
    """Writes the CSV and Parquet files of ``spec`` (chunk by chunk) unless they are current."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    paths = paths_for(spec, data_dir)
    meta_want = {"spec": asdict(spec)}
    if spec.dictionary:  # the default: sidecars written before the field existed still match
        del meta_want["spec"]["dictionary"]
    if paths["meta"].exists() and paths["parquet"].exists() and (
            paths["csv"].exists() or not spec.csv):
        try:
            meta = json.loads(paths["meta"].read_text())
        except ValueError:
            meta = {}
        if (meta.get("spec") == meta_want["spec"]
                and (not spec.csv
                     or meta.get("bytes", {}).get("csv") == paths["csv"].stat().st_size)
                and meta.get("bytes", {}).get("parquet") == paths["parquet"].stat().st_size):
            log(f"[data] {spec.name}: up to date ({_mb(meta['bytes']['csv'])} CSV, "
                f"{_mb(meta['bytes']['parquet'])} Parquet)")
            return meta

    data_dir.mkdir(parents=True, exist_ok=True)
    need = spec.n_rows * (spec.n_features + 1) * 19  # ~10 B/value CSV + ~8.5 B/value Parquet
    free = shutil.disk_usage(data_dir).free
    if free < need * 1.1:
        log(f"[data] WARNING: {spec.name} needs about {_mb(need)}, only {_mb(free)} free")

    log(f"[data] {spec.name}: generating {spec.n_rows:,} x {spec.n_features:,} ...")
    t0 = time.perf_counter()
    support, beta = true_model(spec)
    rng = np.random.default_rng([spec.seed, zlib.crc32(_data_name(spec).encode()), 2])
    p = spec.n_features
    names = [f"x{j}" for j in range(p)] + ["price"]
    ftype = pa.float32() if spec.dtype == "float32" else pa.float64()
    schema = pa.schema([(nm, ftype) for nm in names[:-1]] + [("price", pa.float64())])
    innov = float(np.sqrt(1.0 - spec.rho ** 2))

    tmp_csv = paths["csv"].with_suffix(".csv.tmp")
    tmp_pq = paths["parquet"].with_suffix(".parquet.tmp")
    with open(tmp_csv if spec.csv else os.devnull, "wb") as fcsv:
        fcsv.write((",".join(names) + "\n").encode())
        csv_writer = pacsv.CSVWriter(fcsv, schema,
                                     write_options=pacsv.WriteOptions(include_header=False))
        pq_writer = pq.ParquetWriter(tmp_pq, schema, compression="snappy")
        try:
            done = 0
            while done < spec.n_rows:
                m = min(spec.chunk_rows, spec.n_rows - done)
                # Features as (p, m): row j is feature j, so the AR(1) recurrence over the
                # features runs on contiguous rows. x_j = rho x_{j-1} + sqrt(1-rho²) e_j keeps
                # unit variance and gives corr(x_i, x_j) = rho^|i-j| (Toeplitz) without any
                # p x p factorisation.
                xt = rng.standard_normal((p, m))
                for j in range(1, p):
                    xt[j] *= innov
                    xt[j] += spec.rho * xt[j - 1]
                y = spec.intercept + beta @ xt[support] + spec.noise_sd * rng.standard_normal(m)
                for j in range(p):  # row by row: temporaries of one feature only
                    round_sig(xt[j], spec.sig_digits)
                round_sig(y, spec.sig_digits)
                table = pa.Table.from_arrays(
                    [pa.array(xt[j].astype(spec.dtype)) for j in range(p)] + [pa.array(y)],
                    schema=schema)
                if spec.csv:
                    csv_writer.write_table(table)
                pq_writer.write_table(table)
                done += m
                del xt, y, table
        finally:
            csv_writer.close()
            pq_writer.close()
    if spec.csv:
        os.replace(tmp_csv, paths["csv"])
    if spec.one_row_group:
        # Rewritten whole as one row group (about 0.9 GB of memory for tall1rg, once).
        whole = pq.read_table(tmp_pq)
        pq.write_table(whole, tmp_pq, row_group_size=whole.num_rows, compression="snappy",
                       use_dictionary=spec.dictionary)
        del whole
    os.replace(tmp_pq, paths["parquet"])
    secs = time.perf_counter() - t0
    meta = {
        **meta_want,
        "columns": {"target": "price", "features": f"x0..x{p - 1}"},
        "true_support": [f"x{j}" for j in support],
        "true_coef": {f"x{j}": float(b) for j, b in zip(support, beta, strict=True)},
        "bytes": {"csv": paths["csv"].stat().st_size if spec.csv else None,
                  "parquet": paths["parquet"].stat().st_size},
        "generate_seconds": round(secs, 2),
    }
    paths["meta"].write_text(json.dumps(meta, indent=2) + "\n")
    log(f"[data] {spec.name}: {secs:.1f} s, {_mb(meta['bytes']['csv'])} CSV, "
        f"{_mb(meta['bytes']['parquet'])} Parquet")
    return meta


# --------------------------------------------------------------------------------------------
# Child processes: wall time and peak RSS of exactly that child
# --------------------------------------------------------------------------------------------

def child_env() -> dict:
    env = {**os.environ, **SINGLE_THREAD_ENV}
    # A checkout without l1select installed: its children (the scikit-learn worker imports
    # l1select.folds) find the package in the repository.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent),
                                                    env.get("PYTHONPATH")) if p)
    return env


# The child is started by this tiny launcher, not by the harness itself. On Linux a child's
# ru_maxrss starts from the RSS high-water mark of the address space it was forked/vforked from,
# so a child spawned by the harness (numpy, pyarrow, generated chunks loaded: hundreds of MB)
# would report at least the harness's peak. The launcher is a bare interpreter (-S, ~10 MB), so
# the grandchild's ru_maxrss is its own peak. It times the child and writes the rusage to argv[1].
LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": wall, "rss_kb": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime,
               "rc": os.waitstatus_to_exitcode(status)}, f)
"""


def run_child(cmd: list[str], timeout: float | None = None) -> dict:
    """Runs ``cmd``; wall seconds, peak RSS (bytes), CPU seconds, exit code, stdout, stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(report), *cmd],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=child_env(), start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)  # the launcher's own session: it and the command
            proc.wait()
        outer_wall = time.perf_counter() - t0
        try:
            ru = json.loads(report.read_text())
        except (OSError, ValueError):
            ru = {"wall_s": outer_wall, "rss_kb": 0, "cpu_s": 0.0,
                  "rc": proc.returncode if proc.returncode else -9}
        out.seek(0)
        err.seek(0)
        return {
            "wall_s": ru["wall_s"],
            "rss_bytes": ru["rss_kb"] * 1024,  # ru_maxrss is in KB on Linux
            "cpu_s": ru["cpu_s"],
            "rc": ru["rc"],
            "timed_out": timed_out,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }


def l1select_cmd() -> tuple[list[str], str]:
    script = Path(sys.executable).parent / "l1select"
    if script.exists():
        return [str(script)], str(script)
    # From a checkout: byte-compile the package first, as pip does when it installs it. With
    # PYTHONDONTWRITEBYTECODE set (as in some dev shells) every run would otherwise compile its
    # modules from source again, which is start-up time no installed copy pays.
    import compileall

    compileall.compile_dir(str(HERE.parent / "l1select"), quiet=1)
    return [sys.executable, "-m", "l1select"], f"{sys.executable} -m l1select (byte-compiled)"


READ_SNIPPETS = {
    "pandas_read_csv": (
        "import pandas as pd\n"
        "t0 = time.perf_counter(); obj = pd.read_csv(PATH, engine='c'); "
        "dt = time.perf_counter() - t0; n = len(obj)\n"),
    "pyarrow_read_csv": (
        "import pyarrow.csv as pacsv\n"
        "t0 = time.perf_counter(); obj = pacsv.read_csv(PATH); "
        "dt = time.perf_counter() - t0; n = obj.num_rows\n"),
    "pyarrow_read_parquet": (
        "import pyarrow.dataset, pyarrow.parquet as pq\n"
        "t0 = time.perf_counter(); obj = pq.read_table(PATH); "
        "dt = time.perf_counter() - t0; n = obj.num_rows\n"),
}


def read_floor(kind: str, path: Path) -> dict:
    """One bare read in a fresh interpreter; only the read call is timed (not the imports)."""
    code = ("import json, time\nPATH = " + repr(str(path)) + "\n" + READ_SNIPPETS[kind]
            + "print(json.dumps({'seconds': dt, 'rows': n}))\n")
    r = run_child([sys.executable, "-c", code])
    if r["rc"] != 0:
        return {"error": _tail(r["stderr"]), "rss_bytes": r["rss_bytes"]}
    return {**json.loads(r["stdout"].strip().splitlines()[-1]), "rss_bytes": r["rss_bytes"]}


# --------------------------------------------------------------------------------------------
# scikit-learn worker (runs in its own process: `run.py _sklearn ...`)
# --------------------------------------------------------------------------------------------

def sklearn_worker(argv: list[str]) -> None:
    """Loads the Parquet file (not timed), then times LassoCV fits; one JSON line per fit."""
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("config")      # JSON file: alphas, n_folds, seed, tols, repeats
    a = ap.parse_args(argv)
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.linear_model import LassoCV
    from threadpoolctl import threadpool_limits

    from l1select.folds import fold_ids

    cfg = json.loads(Path(a.config).read_text())
    table = pq.read_table(a.parquet)
    names = [c for c in table.column_names if c != "price"]
    n = table.num_rows
    X = np.empty((n, len(names)), dtype=np.float64, order="F")
    for j, nm in enumerate(names):
        X[:, j] = table.column(nm).to_numpy()
    y = table.column("price").to_numpy().astype(np.float64)
    del table
    fold = fold_ids(np.arange(n), cfg["n_folds"], cfg["seed"])
    cv = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(cfg["n_folds"])]
    alphas = np.asarray(cfg["alphas"], dtype=np.float64)
    print(json.dumps({"event": "loaded", "n": n, "p": len(names)}), flush=True)
    for tol_name, tol in cfg["tols"]:
        for _ in range(cfg["repeats"]):
            kw = {} if tol is None else {"tol": tol}
            model = LassoCV(alphas=alphas, cv=cv, max_iter=10000, n_jobs=1, **kw)
            with threadpool_limits(1):
                t0 = time.perf_counter()
                model.fit(X, y)
                dt = time.perf_counter() - t0
            print(json.dumps({"event": "fit", "tol": tol_name, "seconds": dt,
                              "alpha": float(model.alpha_),
                              "n_nonzero": int(np.count_nonzero(model.coef_))}), flush=True)


def run_sklearn(parquet: Path, l1json: dict, tols: list, repeats: int,
                timeout: float | None, log) -> dict:
    """Times sklearn's LassoCV with l1select's folds and alpha grid; {tol_name: result}."""
    alphas = [row["alpha"] for row in l1json["cv"]["path"]]
    cfg = {"alphas": alphas, "n_folds": l1json["cv"]["n_folds"],
           "seed": l1json["params"]["seed"], "tols": tols, "repeats": repeats}
    if l1json["input"].get("n_rows_used") != l1json["input"].get("n_rows"):
        log("[sklearn] WARNING: l1select dropped rows; folds by file position may not match")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
        cfg_path = f.name
    try:
        r = run_child([sys.executable, str(Path(__file__).resolve()), "_sklearn", str(parquet),
                       cfg_path], timeout=timeout)
    finally:
        os.unlink(cfg_path)
    events = [json.loads(line) for line in r["stdout"].splitlines() if line.startswith("{")]
    out = {}
    for tol_name, tol in tols:
        fits = [e for e in events if e.get("event") == "fit" and e["tol"] == tol_name]
        res = {"tol": tol, "seconds": [e["seconds"] for e in fits],
               "median_s": statistics.median([e["seconds"] for e in fits]) if fits else None,
               "alpha": fits[0]["alpha"] if fits else None,
               "n_nonzero": fits[0]["n_nonzero"] if fits else None}
        if len(fits) < repeats:
            res["incomplete"] = ("timed out" if r["timed_out"] else f"exit {r['rc']}: "
                                 + _tail(r["stderr"]))
        out[tol_name] = res
    out["worker_rss_bytes"] = r["rss_bytes"]
    return out


# --------------------------------------------------------------------------------------------
# R glmnet (when Rscript and the glmnet package are installed)
# --------------------------------------------------------------------------------------------

GLMNET_SCRIPT = HERE / "glmnet_cv.R"


def glmnet_available() -> str | None:
    """None when Rscript with glmnet can run, else why not."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not on PATH"
    r = subprocess.run([rscript, "-e", "quit(status = !requireNamespace('glmnet', quietly = "
                        "TRUE))"], capture_output=True, timeout=60)
    return None if r.returncode == 0 else "the R package glmnet is not installed"


def run_glmnet(csv: Path, l1json: dict, repeats: int, timeout: float | None) -> dict:
    """Times R's cv.glmnet (fit only) on the CSV with l1select's folds; its seconds per fit."""
    sys.path.insert(0, str(HERE.parent))
    import numpy as np

    from l1select.folds import fold_ids

    n = l1json["input"]["n_rows"]
    fold = fold_ids(np.arange(n), l1json["cv"]["n_folds"], l1json["params"]["seed"])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(str(int(k) + 1) for k in fold) + "\n")
        folds_path = f.name
    try:
        r = run_child([shutil.which("Rscript") or "Rscript", str(GLMNET_SCRIPT), str(csv),
                       folds_path, "price", str(repeats)], timeout=timeout)
    finally:
        os.unlink(folds_path)
    events = [json.loads(line) for line in r["stdout"].splitlines() if line.startswith("{")]
    fits = [e for e in events if e.get("event") == "fit"]
    out = {"seconds": [e["seconds"] for e in fits],
           "median_s": statistics.median(e["seconds"] for e in fits) if fits else None,
           "lambda_min": fits[0]["lambda_min"] if fits else None,
           "n_lambda": fits[0]["n_lambda"] if fits else None,
           "n_nonzero": fits[0]["n_nonzero"] if fits else None,
           "versions": next((e for e in events if e.get("event") == "version"), None),
           "worker_rss_bytes": r["rss_bytes"]}
    if len(fits) < repeats:
        out["incomplete"] = ("timed out" if r["timed_out"] else f"exit {r['rc']}: "
                             + _tail(r["stderr"]))
    return out


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

def l1select_fit(launcher: list[str], path: Path, timeout: float | None) -> dict:
    r = run_child(launcher + ["fit", str(path), "--target", "price", "--format", "json", "-q"],
                  timeout=timeout)
    rec = {k: r[k] for k in ("wall_s", "rss_bytes", "cpu_s", "rc")}
    if r["rc"] != 0 or r["timed_out"]:
        rec["error"] = "timed out" if r["timed_out"] else _tail(r["stderr"])
        return rec
    if r["stderr"].strip():
        rec["stderr"] = _tail(r["stderr"])
    try:
        rec["json"] = json.loads(r["stdout"])
    except ValueError as exc:
        rec["error"] = f"stdout is not JSON: {exc}: {r['stdout'][:200]!r}"
    return rec


def summarize_fit(runs: list[dict], meta: dict) -> dict:
    ok = [r for r in runs if "json" in r]
    out = {
        "wall_s": [r["wall_s"] for r in runs],
        "rss_bytes": [r["rss_bytes"] for r in runs],
        "cpu_s": [r["cpu_s"] for r in runs],
        "median_s": statistics.median(r["wall_s"] for r in ok) if ok else None,
        "median_cpu_s": statistics.median(r["cpu_s"] for r in ok) if ok else None,
        "peak_rss_bytes": max(r["rss_bytes"] for r in ok) if ok else None,
        "errors": [r["error"] for r in runs if "error" in r],
    }
    stderr = [r["stderr"] for r in runs if r.get("stderr")]
    if stderr:
        out["stderr"] = stderr[0]
    if ok:
        j = ok[-1]["json"]
        sel = set(j.get("selected") or [])
        truth = set(meta.get("true_support", []))
        out.update({
            "engine": j["params"].get("engine"),
            "alpha_chosen": j["alpha"]["chosen"], "alpha_min": j["alpha"]["min"],
            "n_selected": len(sel), "true_found": len(sel & truth),
            "false_selected": len(sel - truth),
            "cv_r2": (j.get("cv") or {}).get("r2"),
            "warnings": [w.get("code") for w in j.get("warnings", [])],
            "n_rows_used": j["input"].get("n_rows_used"),
        })
        dets = {json.dumps(r["json"], sort_keys=True) for r in ok}
        out["deterministic"] = len(dets) == 1
    return out


def measure_dataset(name: str, spec: Spec, meta: dict, args, launcher, log) -> dict:
    paths = paths_for(spec, args.data_dir)
    is4m = name == "tall4m"
    repeats = args.tall4m_repeats if is4m else args.repeats
    res: dict = {"spec": asdict(spec), "bytes": meta["bytes"], "repeats": repeats}

    if args.warmup and not is4m:
        # Untimed: fills the page cache and (if missing) numba's on-disk kernel cache.
        w = l1select_fit(launcher, paths["parquet"], args.timeout)
        res["warmup_s"] = w["wall_s"]
        log(f"[{name}] warm-up l1select parquet: {w['wall_s']:.2f} s"
            + (f"  ERROR {w['error']}" if "error" in w else ""))

    formats = ("csv", "parquet") if spec.csv else ("parquet",)
    runs: dict[str, list] = {fmt: [] for fmt in formats}
    floors: dict[str, list] = {k: [] for k in READ_SNIPPETS
                               if spec.csv or k.endswith("parquet")}
    for i in range(repeats):
        for fmt in formats:
            r = l1select_fit(launcher, paths[fmt], args.timeout)
            runs[fmt].append(r)
            log(f"[{name}] l1select {fmt:7s} #{i + 1}: {r['wall_s']:.2f} s, "
                f"{_mb(r['rss_bytes'])} RSS, {r['cpu_s']:.2f} s CPU"
                + (f"  ERROR {r['error']}" if "error" in r else ""))
        if not is4m:
            for kind in floors:
                path = paths["parquet"] if kind.endswith("parquet") else paths["csv"]
                f = read_floor(kind, path)
                floors[kind].append(f)
                log(f"[{name}] {kind:20s} #{i + 1}: "
                    + (f"{f['seconds']:.2f} s" if "seconds" in f else f"ERROR {f['error']}"))

    res["l1select"] = {fmt: summarize_fit(runs[fmt], meta) for fmt in runs}
    if not is4m:
        res["floors"] = {}
        for kind, rs in floors.items():
            secs = [f["seconds"] for f in rs if "seconds" in f]
            res["floors"][kind] = {
                "seconds": secs, "median_s": statistics.median(secs) if secs else None,
                "peak_rss_bytes": max((f["rss_bytes"] for f in rs), default=None),
                "errors": [f["error"] for f in rs if "error" in f]}

    okjson = [r["json"] for r in runs["parquet"] if "json" in r]
    if (not is4m and not name.startswith("tall1rg") and not args.skip_sklearn and okjson
            and okjson[-1].get("cv")):
        sk_repeats = 1 if name in ("wide", "wider") else repeats
        runs_sk = [("default", None, args.sklearn_timeout)]
        if name in ("small", "mid") and not args.skip_tight_tol:
            runs_sk.append(("1e-10", 1e-10, args.tight_tol_timeout))
        res["sklearn"] = {}
        for t, tol, timeout in runs_sk:  # each in its own process, with its own time limit
            log(f"[{name}] sklearn LassoCV fit-only, tol={t}, repeats={sk_repeats} ...")
            sk = run_sklearn(paths["parquet"], okjson[-1], [[t, tol]], sk_repeats, timeout,
                             log)
            s = res["sklearn"][t] = {**sk[t], "worker_rss_bytes": sk["worker_rss_bytes"]}
            log(f"[{name}] sklearn tol={t}: "
                + (f"{s['median_s']:.2f} s (alpha_ {s['alpha']:.6g}, "
                   f"{s['n_nonzero']} non-zero)" if s["median_s"] is not None else "no result")
                + (f"  [{s['incomplete']}]" if "incomplete" in s else ""))
    if name in GLMNET_CASES and args.glmnet and okjson and okjson[-1].get("cv") and spec.csv:
        why = glmnet_available()
        if why is not None:
            res["glmnet"] = {"skipped": why}
            log(f"[{name}] R glmnet skipped: {why}")
        else:
            log(f"[{name}] R glmnet cv.glmnet fit-only, repeats={repeats} ...")
            g = res["glmnet"] = run_glmnet(paths["csv"], okjson[-1], repeats,
                                           args.sklearn_timeout)
            log(f"[{name}] glmnet: "
                + (f"{g['median_s']:.2f} s (lambda.min {g['lambda_min']:.6g}, "
                   f"{g['n_lambda']} lambdas, {g['n_nonzero']} non-zero)"
                   if g["median_s"] is not None else "no result")
                + (f"  [{g['incomplete']}]" if "incomplete" in g else ""))
    return res


def measure_help(launcher: list[str], n: int = 5) -> dict:
    times = []
    for _ in range(n):
        r = run_child(launcher + ["--help"])
        times.append(r["wall_s"])
    return {"seconds": times, "median_s": statistics.median(times), "rc": r["rc"]}


# --------------------------------------------------------------------------------------------
# Ratios and report
# --------------------------------------------------------------------------------------------

def _get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def compute_checks(results: dict, help_res: dict | None) -> list[dict]:
    ds = results
    checks = []

    def add(name, value, target, unit="x", note=""):
        status = "n/a" if value is None else ("pass" if value <= target else "MISS")
        checks.append({"check": name, "value": value, "target": target, "unit": unit,
                       "status": status, "note": note})

    for d in ("mid", "tall"):
        add(f"{d} parquet: l1select e2e / sklearn fit-only",
            _ratio(_get(ds, d, "l1select", "parquet", "median_s"),
                   _get(ds, d, "sklearn", "default", "median_s")), 0.25,
            note="sklearn default tol")
    for d in ("mid", "tall"):
        parse = [_get(ds, d, "floors", k, "median_s")
                 for k in ("pandas_read_csv", "pyarrow_read_csv")]
        parse = [x for x in parse if x is not None]
        add(f"{d} csv: l1select e2e / fastest bare parse",
            _ratio(_get(ds, d, "l1select", "csv", "median_s"), min(parse) if parse else None),
            1.3)
    # The wide target is R glmnet's cv.glmnet fit-only time (checked below when R runs); with
    # scikit-learn alone, 0.18 = glmnet/sklearn as measured in issue 14.
    for d in ("wide", "wider"):
        add(f"{d} parquet: l1select e2e / sklearn fit-only",
            _ratio(_get(ds, d, "l1select", "parquet", "median_s"),
                   _get(ds, d, "sklearn", "default", "median_s")), 0.18,
            note="sklearn default tol, 1 run; 0.18 = glmnet/sklearn in the issue")
    for d in GLMNET_CASES:
        add(f"{d} parquet: l1select e2e / glmnet cv.glmnet fit-only",
            _ratio(_get(ds, d, "l1select", "parquet", "median_s"),
                   _get(ds, d, "glmnet", "median_s")), 1.0,
            note="R glmnet, same folds, nlambda 100, same run")
    add("tall1rg parquet (1 row group): peak RSS / (1e6*51*8 B)",
        _ratio(_get(ds, "tall1rg", "l1select", "parquet", "peak_rss_bytes"), 1e6 * 51 * 8), 0.5)
    add("tall1rg_plain parquet (no dictionary): peak RSS / (1e6*51*8 B)",
        _ratio(_get(ds, "tall1rg_plain", "l1select", "parquet", "peak_rss_bytes"),
               1e6 * 51 * 8), 0.5)
    add("tall1rg / tall parquet: e2e time",
        _ratio(_get(ds, "tall1rg", "l1select", "parquet", "median_s"),
               _get(ds, "tall", "l1select", "parquet", "median_s")), 1.1)
    full = 4_000_000 * 51 * 8
    for fmt in ("parquet", "csv"):
        big = _get(ds, "tall4m", "l1select", fmt, "peak_rss_bytes")
        add(f"tall4m/tall {fmt}: peak RSS ratio",
            _ratio(big, _get(ds, "tall", "l1select", fmt, "peak_rss_bytes")), 1.10)
        add(f"tall4m {fmt}: peak RSS / (4e6*51*8 B)", _ratio(big, full), 0.25)
    add("small csv: l1select whole process", _get(ds, "small", "l1select", "csv", "median_s"),
        0.7, unit="s")
    add("l1select --help", _get(help_res, "median_s"), 0.2, unit="s", note="median of 5")
    return checks


def print_report(results: dict, help_res, checks, log) -> None:
    log("")
    hdr = (f"{'dataset':13s} {'fmt':7s} {'engine':9s} {'l1select':>9s} {'cpu':>7s} {'RSS':>9s} "
           f"{'pandas':>8s} {'pa.csv':>8s} {'pa.pq':>8s} {'sk fit':>9s} {'sk 1e-10':>9s} "
           f"{'sel':>4s} {'true':>5s}")
    log(hdr)
    log("-" * len(hdr))
    for d, r in results.items():
        for fmt in r.get("l1select", {}):
            l1 = _get(r, "l1select", fmt) or {}
            if fmt == "csv":
                fl = [_get(r, "floors", "pandas_read_csv", "median_s"),
                      _get(r, "floors", "pyarrow_read_csv", "median_s"), None]
                sk = [None, None]
            else:
                fl = [None, None, _get(r, "floors", "pyarrow_read_parquet", "median_s")]
                sk = [_get(r, "sklearn", "default", "median_s"),
                      _get(r, "sklearn", "1e-10", "median_s")]
                if _get(r, "sklearn", "1e-10", "incomplete") and sk[1] is None:
                    sk[1] = "timeout"
            true_n = r["spec"]["n_nonzero"]
            log(f"{d:13s} {fmt:7s} {str(l1.get('engine', '-')):9s} {_s(l1.get('median_s')):>9s} "
                f"{_s(l1.get('median_cpu_s')):>7s} {_mbs(l1.get('peak_rss_bytes')):>9s} "
                f"{_s(fl[0]):>8s} {_s(fl[1]):>8s} {_s(fl[2]):>8s} {_s(sk[0]):>9s} "
                f"{_s(sk[1]):>9s} {str(l1.get('n_selected', '-')):>4s} "
                f"{(str(l1['true_found']) + '/' + str(true_n)) if 'true_found' in l1 else '-':>5s}")
            for e in l1.get("errors", []):
                log(f"         ERROR: {e}")
    for d, r in results.items():
        g = r.get("glmnet") or {}
        if g.get("median_s") is not None:
            log(f"{d}: R glmnet cv.glmnet fit-only {g['median_s']:.3f} s (median of "
                f"{len(g['seconds'])}; {g['n_lambda']} lambdas, {g['n_nonzero']} non-zero)")
        elif g:
            log(f"{d}: R glmnet: {g.get('skipped') or g.get('incomplete')}")
    if help_res:
        log(f"\nl1select --help: {help_res['median_s']:.3f} s (median of 5)")
    log("\nTimes are medians in seconds (wall); RSS is the child's peak (ru_maxrss). sk = "
        "scikit-learn LassoCV fit only (data in memory), same folds and alpha grid, 1 BLAS "
        "thread; l1select solves each fit to a 1e-10 relative duality gap, sklearn's default "
        "tol is 1e-4 (the '1e-10' column uses tol=1e-10).")
    log("")
    w = max(len(c["check"]) for c in checks)
    log(f"{'check':{w}s} {'value':>9s} {'target':>9s}  status")
    log("-" * (w + 28))
    for c in checks:
        v = "-" if c["value"] is None else (f"{c['value']:.3f}" + ("s" if c["unit"] == "s" else ""))
        t = f"<= {c['target']:g}" + ("s" if c["unit"] == "s" else "")
        log(f"{c['check']:{w}s} {v:>9s} {t:>9s}  {c['status']}"
            + (f"   ({c['note']})" if c["note"] else ""))


def _s(x):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _mb(b):
    return f"{b / 2**20:,.1f} MiB" if b is not None else "-"


def _mbs(b):
    return f"{b / 2**20:,.0f}MiB" if b is not None else "-"


def _tail(s: str, n: int = 600) -> str:
    s = s.strip()
    return s if len(s) <= n else "…" + s[-n:]


def env_info(launcher_desc: str) -> dict:
    import importlib.metadata as md

    vers = {}
    for pkg in ("l1select", "numpy", "pandas", "pyarrow", "scikit-learn", "numba",
                "threadpoolctl"):
        try:
            vers[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            vers[pkg] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "launcher": launcher_desc,
            "child_env": SINGLE_THREAD_ENV, "versions": vers}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sklearn"]:
        sklearn_worker(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(DEFAULT_RUN),
                    help=f"comma-separated datasets of {','.join(ORDER)} (default: all but "
                         "wider)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--tall4m-repeats", type=int, default=1,
                    help="runs for tall4m (memory only; default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    ap.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn comparison")
    ap.add_argument("--skip-tight-tol", action="store_true",
                    help="skip the extra sklearn fit with tol=1e-10 (small, mid)")
    ap.add_argument("--sklearn-timeout", type=float, default=None,
                    help="seconds before the default-tol sklearn runs of one dataset are "
                         "killed (default: none)")
    ap.add_argument("--tight-tol-timeout", type=float, default=600,
                    help="seconds allowed for the tol=1e-10 sklearn runs of one dataset "
                         "(default: 600; reported as a timeout past that)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds before one l1select run is killed (default: none)")
    ap.add_argument("--skip-glmnet", dest="glmnet", action="store_false",
                    help="no R glmnet comparison (it runs on wide when Rscript and glmnet "
                         "are installed)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the untimed warm-up l1select run per dataset")
    ap.add_argument("--generate-only", action="store_true",
                    help="only generate the datasets, measure nothing")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--results", type=Path, default=RESULTS_DIR / "latest.json")
    args = ap.parse_args(argv)

    names = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in names if s not in DATASETS]
    if bad:
        ap.error(f"unknown dataset(s) {bad}; choose from {ORDER}")
    names = [n for n in ORDER if n in names]

    def log(msg=""):
        print(msg, flush=True)

    metas = {n: generate(spec_for(n, args.seed), args.data_dir, log) for n in names}
    if args.generate_only:
        return 0

    launcher, launcher_desc = l1select_cmd()
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    results = {}
    for n in names:
        results[n] = measure_dataset(n, spec_for(n, args.seed), metas[n], args, launcher, log)
    help_res = measure_help(launcher)
    checks = compute_checks(results, help_res)
    print_report(results, help_res, checks, log)

    report = {
        "started": started, "elapsed_s": time.perf_counter() - t0,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "env": {**env_info(launcher_desc), "loadavg_start": load_start,
                "loadavg_end": os.getloadavg()},
        "notes": ["times are wall-clock medians of --repeats runs in this one invocation",
                  "l1select solves to a 1e-10 relative duality gap; sklearn 'default' uses "
                  "tol=1e-4, '1e-10' uses tol=1e-10",
                  "sklearn fits raw features (unit variance by construction); l1select "
                  "standardizes per training fold",
                  "peak RSS is ru_maxrss of the child process"],
        "datasets": results, "help": help_res, "checks": checks,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=float) + "\n"
    args.results.write_text(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.results.parent / f"run-{stamp}.json").write_text(text)
    log(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

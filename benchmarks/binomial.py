#!/usr/bin/env python
"""Binary-target benchmark: l1select's logistic CV end to end against scikit-learn's
``LogisticRegressionCV`` (l1, saga, the same folds and alpha grid, fit only) and, when R is
installed, glmnet's ``cv.glmnet`` (fit only).

    python benchmarks/binomial.py                        # 200,000 x 100 (the issue's case)
    python benchmarks/binomial.py --rows 20000 --features 100 --skip-sklearn

The data are generated from ``--seed`` into benchmarks/data/ (a Parquet file: reading it is a
small part of the end-to-end time). Every tool runs in a child process with one BLAS thread;
the wall time and, for l1select, the peak memory are printed and written to
benchmarks/results/binomial.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}


def generate(path: Path, n: int, p: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:10] = rng.normal(size=10)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(np.int64)
    cols = {f"x{j}": X[:, j] for j in range(p)}
    cols["y"] = y
    pq.write_table(pa.table(cols), path)


def run_l1select(path: Path, out: Path) -> dict:
    cmd = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "l1select", "fit", str(path),
           "-t", "y", "-q", "--format", "json", "-o", str(out)]
    done = subprocess.run(cmd, env=ENV, cwd=HERE.parent, capture_output=True, text=True,
                          check=True)
    wall, kb = done.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(wall), "peak_mb": int(kb) / 1024}


SKLEARN = r"""
import json, sys, time
import numpy as np, pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import PredefinedSplit
from l1select.folds import stratified_fold_ids
t = pq.read_table(sys.argv[1]); res = json.load(open(sys.argv[2]))
y = t.column("y").to_numpy()
X = np.column_stack([t.column(c).to_numpy() for c in t.column_names if c != "y"])
X = (X - X.mean(0)) / X.std(0)
K = res["params"]["n_folds"]
folds = stratified_fold_ids(np.arange(y.size), y.astype(np.int64), K, res["params"]["seed"])
alphas = np.array([r["alpha"] for r in res["cv"]["path"]])
n_train = y.size * (K - 1) / K
start = time.perf_counter()
LogisticRegressionCV(Cs=1.0 / (n_train * alphas), cv=PredefinedSplit(folds), l1_ratios=(1.0,),
                     solver="saga", tol=1e-4, max_iter=1000, scoring="neg_log_loss",
                     use_legacy_attributes=False).fit(X, y)
print(time.perf_counter() - start)
"""

def run_sklearn(path: Path, result: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SKLEARN, str(path), str(result)], env=ENV,
                          cwd=HERE.parent, capture_output=True, text=True, check=True)
    return {"seconds": float(done.stdout.strip().splitlines()[-1])}


GLMNET_CSV = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); lambda <- as.numeric(strsplit(readLines(args[2]), ",")[[1]])
x <- as.matrix(d[, grep("^x", names(d))]); foldid <- d$fold + 1
start <- Sys.time()
fit <- cv.glmnet(x, d$y, family = "binomial", foldid = foldid, lambda = lambda)
cat(as.numeric(difftime(Sys.time(), start, units = "secs")))
"""


def run_glmnet(path: Path, result: Path) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    import numpy as np
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE.parent))  # l1select from this checkout
    from l1select.folds import stratified_fold_ids

    res = json.loads(result.read_text())
    t = pq.read_table(path).to_pandas()
    t["fold"] = stratified_fold_ids(np.arange(len(t)), t["y"].to_numpy().astype(np.int64),
                                    res["params"]["n_folds"], res["params"]["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        csv, grid, script = Path(tmp, "d.csv"), Path(tmp, "lambda.txt"), Path(tmp, "b.R")
        t.to_csv(csv, index=False)
        grid.write_text(",".join(f"{r['alpha']:.17g}" for r in res["cv"]["path"]))
        script.write_text(GLMNET_CSV)
        done = subprocess.run(["Rscript", str(script), str(csv), str(grid)], env=ENV,
                              capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return {"seconds": float(done.stdout.strip())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-glmnet", action="store_true")
    args = ap.parse_args()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"binary_{args.rows}x{args.features}_s{args.seed}.parquet"
    if not path.exists():
        generate(path, args.rows, args.features, args.seed)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    result_json = results / "binomial_fit.json"
    out = {"rows": args.rows, "features": args.features,
           "l1select": run_l1select(path, result_json)}
    print(f"l1select fit (end to end): {out['l1select']['seconds']:.1f} s, "
          f"peak {out['l1select']['peak_mb']:.0f} MB", flush=True)
    if not args.skip_sklearn:
        out["sklearn"] = run_sklearn(path, result_json)
        ratio = out["l1select"]["seconds"] / out["sklearn"]["seconds"]
        print(f"scikit-learn LogisticRegressionCV (saga, fit only): "
              f"{out['sklearn']['seconds']:.1f} s; l1select/sklearn = {ratio:.2f} "
              "(target <= 0.5)", flush=True)
    if not args.skip_glmnet:
        out["glmnet"] = run_glmnet(path, result_json)
        if out["glmnet"] and "seconds" in out["glmnet"]:
            print(f"glmnet cv.glmnet (fit only): {out['glmnet']['seconds']:.1f} s")
    (results / "binomial.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

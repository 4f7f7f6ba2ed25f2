"""l1select's binomial family against R's glmnet (``cv.glmnet(family="binomial")``) on the
same data, folds (``foldid``) and lambda grid. Skipped where R with glmnet is not installed
(Debian: ``apt-get install r-cran-glmnet``)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.rglmnet import glmnet_available

pytestmark = pytest.mark.skipif(not glmnet_available(), reason="R with glmnet not installed")

R_SCRIPT = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
lambda <- as.numeric(strsplit(args[2], ",")[[1]])
x <- as.matrix(d[, grep("^x", names(d))])
w <- d$w
fit <- cv.glmnet(x, d$y, family = "binomial", weights = w, foldid = d$fold + 1,
                 lambda = lambda, standardize = TRUE, thresh = 1e-14, maxit = 1e7,
                 type.measure = "deviance", alpha = as.numeric(args[3]))
co <- as.numeric(coef(fit$glmnet.fit, s = fit$lambda.min, exact = FALSE))
i <- which(fit$lambda == fit$lambda.min)
cat(sprintf('{"cvm": [%s], "cvsd": [%s], "lambda_min": %.17g, "lambda_1se": %.17g,
             "coef": [%s]}',
            paste(sprintf("%.17g", fit$cvm), collapse = ","),
            paste(sprintf("%.17g", fit$cvsd), collapse = ","),
            fit$lambda.min, fit$lambda.1se,
            paste(sprintf("%.17g", as.numeric(coef(fit$glmnet.fit)[, i])), collapse = ",")))
"""


def make_data(n=300, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 1.0
    Z = (X - X.mean(0)) / X.std(0)
    eta = 1.0 * Z[:, 0] - 0.8 * Z[:, 1] + 0.5 * Z[:, 2] + 0.2
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    w = rng.integers(1, 4, size=n).astype(float)
    fold = rng.permutation(np.arange(n) % 5)
    return X, y, w, fold


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_cv_glmnet_binomial_with_weights_and_foldid(tmp_path, l1_ratio):
    X, y, w, fold = make_data()
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"], df["w"], df["fold"] = y, w, fold
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    ours = select_features(str(path), FitParams(
        target="y", fold_column="fold", weights="w", alphas=(0.08, 0.04, 0.02, 0.01, 0.005,
                                                             0.002, 0.001),
        l1_ratios=(l1_ratio,), model="lasso" if l1_ratio == 1 else "elasticnet", tol=1e-16,
        rule="min"))
    grid = [r["alpha"] for r in ours.cv["path"]]
    script = tmp_path / "cv.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run(["Rscript", str(script), str(path), ",".join(f"{a:.17g}" for a in grid),
                          str(l1_ratio)], capture_output=True, text=True, check=True)
    ref = json.loads(out.stdout)
    # glmnet stops at thresh=1e-14 (relative change of the deviance), l1select at 1e-16 on
    # its Hessian-weighted coefficient change: both leave ~1e-7 in the coefficients, which
    # moves the CV deviance by far less than 1e-6. Weighting, the fold weights, the clamp, the
    # standardization (weighted, ddof=0) or the lambda scale would each move it by more.
    np.testing.assert_allclose([r["mean"] for r in ours.cv["path"]], ref["cvm"], rtol=1e-6)
    np.testing.assert_allclose([r["se"] for r in ours.cv["path"]], ref["cvsd"], rtol=1e-5)
    assert ours.alpha["min"] == pytest.approx(ref["lambda_min"], rel=1e-12)
    assert ours.alpha["one_se"] == pytest.approx(ref["lambda_1se"], rel=1e-12)
    coef = [ours.intercept] + [f.coef for f in ours.features]
    np.testing.assert_allclose(coef, ref["coef"], atol=1e-6)

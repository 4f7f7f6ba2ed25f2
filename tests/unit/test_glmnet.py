"""The gaussian family against R's glmnet, the field's reference implementation.

Skipped cleanly when ``Rscript`` or the glmnet package is missing (Debian: ``apt-get install
r-cran-glmnet``; ``.ci/run`` installs it). Each case runs ``cv.glmnet`` with an explicit lambda
grid (l1select's alphas), the same fold labels (``foldid``) and ``standardize=TRUE``, then
compares the CV curve (``cvm``, ``cvsd``) and the coefficient path on the original scale with
``l1select fit --format json``.

Data: scikit-learn's bundled copy of the diabetes data (Efron et al. 2004; 442 × 10, shipped
with scikit-learn, no download), and a seeded wide table (p > n).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cli.cli_helpers import invoke
from tests.rglmnet import glmnet_available

pytestmark = pytest.mark.skipif(shutil.which("Rscript") is None,
                                reason="R is not installed (apt-get install r-cran-glmnet)")

_R = r"""
suppressMessages(library(glmnet))
args <- commandArgs(TRUE)
d <- read.csv(args[1])
lam <- as.numeric(strsplit(args[2], ",")[[1]])
alpha <- as.numeric(args[3])
pf <- as.numeric(strsplit(args[4], ",")[[1]])
x <- as.matrix(d[, setdiff(names(d), c("y", "fold"))])
# thresh: glmnet stops when the largest weighted coefficient change falls below
# thresh x null deviance; 1e-20 runs it to machine precision.
cv <- cv.glmnet(x, d$y, lambda = lam, foldid = d$fold, alpha = alpha, standardize = TRUE,
                penalty.factor = pf, thresh = 1e-20, maxit = 1e8)
b <- as.matrix(coef(cv$glmnet.fit))
out <- data.frame(lambda = cv$lambda, cvm = cv$cvm, cvsd = cv$cvsd, t(b))
out[] <- lapply(out, function(v) sprintf("%.17g", v))  # every digit, not write.csv's 15
write.csv(out, args[5], row.names = FALSE, quote = FALSE)
"""


@pytest.fixture(scope="module")
def glmnet_ok():
    if not glmnet_available():
        pytest.skip("R's glmnet package is not installed (apt-get install r-cran-glmnet)")


def _diabetes(tmp_path: Path) -> tuple[Path, list[str]]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    names = list(data.feature_names)
    rng = np.random.default_rng(0)
    fold = rng.permutation(np.arange(data.data.shape[0]) % 5 + 1)
    return _write(tmp_path / "diabetes.csv", data.data, data.target, fold, names), names


def _write(path: Path, X: np.ndarray, y: np.ndarray, fold: np.ndarray, names: list[str]) -> Path:
    header = ",".join([*names, "y", "fold"])
    rows = [",".join([*(repr(float(v)) for v in X[i]), repr(float(y[i])), str(int(fold[i]))])
            for i in range(X.shape[0])]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _glmnet(tmp_path: Path, data: Path, alphas: list[float], l1_ratio: float,
            penalty: list[float]) -> dict[str, np.ndarray]:
    script = tmp_path / "cv.R"
    script.write_text(_R)
    out = tmp_path / "glmnet.csv"
    subprocess.run(["Rscript", str(script), str(data), ",".join(repr(a) for a in alphas),
                    repr(l1_ratio), ",".join(repr(w) for w in penalty), str(out)],
                   check=True, capture_output=True)
    lines = out.read_text().splitlines()
    header = lines[0].split(",")
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return {name: table[:, j] for j, name in enumerate(header)}


def _fit(data: Path, *args: str) -> dict:
    result = invoke("fit", str(data), "--target", "y", "--fold-column", "fold",
                    "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _compare(doc: dict, ref: dict[str, np.ndarray], names: list[str], y_scale: float,
             cv: bool = True) -> None:
    alphas = [row["alpha"] for row in doc["cv"]["path"]]
    np.testing.assert_allclose(ref["lambda"], alphas, rtol=1e-15)
    if cv:
        _compare_cv(doc, ref)
    _compare_path(doc, ref, names, y_scale)


def _compare_cv(doc: dict, ref: dict[str, np.ndarray]) -> None:
    # CV curve: both solve each fold to (near) machine precision — l1select to a duality gap
    # of 1e-10·var(y), glmnet to thresh 1e-20 — so the fold MSEs agree to ~1e-9 relative;
    # 1e-7 leaves room for the conditioning of the diabetes features.
    np.testing.assert_allclose([r["mean"] for r in doc["cv"]["path"]], ref["cvm"], rtol=1e-7)
    np.testing.assert_allclose([r["se"] for r in doc["cv"]["path"]], ref["cvsd"], rtol=1e-6)


def _compare_path(doc: dict, ref: dict[str, np.ndarray], names: list[str], y_scale: float
                  ) -> None:
    path = doc["coef_path"]
    # Coefficients on the original scale: relative to the target's scale over the
    # feature's scale, agreement to 1e-6 of that is far inside any statistical meaning.
    np.testing.assert_allclose(path["intercept"], ref["X.Intercept."], rtol=1e-7,
                               atol=1e-7 * y_scale)
    scales = {f["name"]: f["scale"] for f in doc["recipe"]["features"]}
    for name in names:
        # The JSON path lists only the features that are non-zero somewhere on it.
        ours = np.asarray(path["coefs"].get(name, np.zeros(len(path["alphas"])))) * scales[name]
        theirs = ref[name] * scales[name]
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7 * y_scale,
                                   err_msg=name)


def _grid(doc: dict, n: int, eps: float) -> list[float]:
    a_max = doc["alpha"]["alpha_max"]
    return [float(a) for a in np.geomspace(a_max, eps * a_max, n)]


def test_lasso_cv_and_path_equal_cv_glmnet_on_diabetes(tmp_path, glmnet_ok):
    data, names = _diabetes(tmp_path)
    first = _fit(data, "--alphas", "1")
    alphas = _grid(first, 30, 1e-3)
    doc = _fit(data, "--alphas", ",".join(repr(a) for a in alphas))
    ref = _glmnet(tmp_path, data, alphas, 1.0, [1.0] * len(names))
    _compare(doc, ref, names, float(np.std(np.loadtxt(data, delimiter=",", skiprows=1)[:, -2])))


def test_penalty_factors_equal_glmnet_penalty_factor(tmp_path, glmnet_ok):
    data, names = _diabetes(tmp_path)
    factors = {"bmi": 0.0, "s5": 2.0, "age": 0.5}
    flags = [arg for name, w in factors.items() for arg in ("--penalty-factor", f"{name}={w}")]
    first = _fit(data, "--alphas", "1", *flags)
    alphas = _grid(first, 25, 1e-3)
    doc = _fit(data, "--alphas", ",".join(repr(a) for a in alphas), *flags)
    pf = [factors.get(name, 1.0) for name in names]
    ref = _glmnet(tmp_path, data, alphas, 1.0, pf)
    _compare(doc, ref, names, float(np.std(np.loadtxt(data, delimiter=",", skiprows=1)[:, -2])))


def test_elastic_net_equals_glmnet_when_y_has_unit_variance(tmp_path, glmnet_ok):
    """glmnet fits the gaussian elastic net on y / sd(y); with sd(y) = 1 (ddof=0) the two
    objectives coincide (README, conventions) — on all rows. Each CV training fold has its
    own sd(y), so glmnet's fold fits differ from l1select's there, and only the all-rows path
    is compared."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    names = list(data.feature_names)
    y = (data.target - data.target.mean()) / data.target.std() + 3.0
    fold = np.random.default_rng(1).permutation(np.arange(y.size) % 4 + 1)
    path = _write(tmp_path / "unit.csv", data.data, y, fold, names)
    first = _fit(path, "--model", "elasticnet", "--l1-ratio", "0.5", "--alphas", "1")
    alphas = _grid(first, 20, 1e-3)
    doc = _fit(path, "--model", "elasticnet", "--l1-ratio", "0.5", "--alphas",
               ",".join(repr(a) for a in alphas))
    ref = _glmnet(tmp_path, path, alphas, 0.5, [1.0] * len(names))
    _compare(doc, ref, names, 1.0, cv=False)


def test_wide_lasso_equals_cv_glmnet(tmp_path, glmnet_ok):
    rng = np.random.default_rng(7)
    n, p = 60, 150
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 4.0, size=p)
    y = X[:, 0] * 2.0 - X[:, 3] + 0.5 * X[:, 10] + rng.normal(size=n)
    names = [f"x{j}" for j in range(p)]
    fold = rng.permutation(np.arange(n) % 5 + 1)
    path = _write(tmp_path / "wide.csv", X, y, fold, names)
    first = _fit(path, "--alphas", "1")
    alphas = _grid(first, 20, 5e-2)
    doc = _fit(path, "--alphas", ",".join(repr(a) for a in alphas))
    ref = _glmnet(tmp_path, path, alphas, 1.0, [1.0] * p)
    _compare(doc, ref, names, float(np.std(y)))


_R_WEIGHTS = r"""
suppressMessages(library(glmnet))
args <- commandArgs(TRUE)
d <- read.csv(args[1])
lam <- as.numeric(strsplit(args[2], ",")[[1]])
x <- as.matrix(d[, grep("^x", names(d))])
cv <- cv.glmnet(x, d$y, family = "gaussian", weights = d$w, foldid = d$fold, lambda = lam,
                standardize = TRUE, thresh = 1e-20, maxit = 1e8, type.measure = "mse")
i <- which(cv$lambda == cv$lambda.min)
cat(sprintf('{"cvm": [%s], "cvsd": [%s], "lambda_min": %.17g, "lambda_1se": %.17g,
             "coef": [%s]}',
            paste(sprintf("%.17g", cv$cvm), collapse = ","),
            paste(sprintf("%.17g", cv$cvsd), collapse = ","),
            cv$lambda.min, cv$lambda.1se,
            paste(sprintf("%.17g", as.numeric(coef(cv$glmnet.fit)[, i])), collapse = ",")))
"""


def test_weighted_lasso_equals_cv_glmnet_weights(tmp_path, glmnet_ok):
    rng = np.random.default_rng(4)
    n, p = 300, 6
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + 1.0
    y = 2.0 * X[:, 0] - 1.0 * X[:, 1] + 0.5 * X[:, 2] + rng.normal(size=n) + 3.0
    w = rng.integers(1, 4, size=n).astype(float)
    fold = rng.permutation(np.arange(n) % 5) + 1
    names = [f"x{j}" for j in range(p)]
    rows = [",".join([*(repr(float(v)) for v in X[i]), repr(float(y[i])), repr(float(w[i])),
                      str(int(fold[i]))]) for i in range(n)]
    data = tmp_path / "d.csv"
    data.write_text("\n".join([",".join([*names, "y", "w", "fold"]), *rows]) + "\n")
    alphas = ["1.0", "0.5", "0.2", "0.1", "0.05", "0.02", "0.01", "0.005"]
    doc = _fit(data, "--weights", "w", "--alphas", ",".join(alphas), "--rule", "min")
    grid = [r["alpha"] for r in doc["cv"]["path"]]
    script = tmp_path / "cvw.R"
    script.write_text(_R_WEIGHTS)
    out = subprocess.run(["Rscript", str(script), str(data), ",".join(repr(a) for a in grid)],
                         capture_output=True, text=True, check=True)
    ref = json.loads(out.stdout)
    # glmnet runs to thresh 1e-20, l1select to a duality gap of 1e-10·var(y) (as in
    # _compare_cv): the CV errors agree to ~1e-9, the coefficients to ~1e-7. Unweighted
    # standardization or fold sizes in place of fold weights would move them by more than 1e-4.
    np.testing.assert_allclose([r["mean"] for r in doc["cv"]["path"]], ref["cvm"], rtol=1e-7)
    np.testing.assert_allclose([r["se"] for r in doc["cv"]["path"]], ref["cvsd"], rtol=1e-6)
    assert doc["alpha"]["min"] == pytest.approx(ref["lambda_min"], rel=1e-12)
    assert doc["alpha"]["one_se"] == pytest.approx(ref["lambda_1se"], rel=1e-12)
    coef = [doc["intercept"]] + [f["coef"] for f in doc["features"]]
    np.testing.assert_allclose(coef, ref["coef"], rtol=1e-6, atol=1e-6)

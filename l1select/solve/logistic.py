"""The binomial family: penalized logistic regression paths and its CV measures.

The objective (glmnet ``family="binomial"`` at ``lambda = alpha``; scikit-learn
``LogisticRegression`` with ``C = 1/(n·alpha)`` on the standardized features)::

    1/n sum_i w_i [log(1 + exp(eta_i)) - y_i eta_i]
        + alpha * sum_j pf_j (l1_ratio |beta_j| + (1 - l1_ratio)/2 beta_j²)

with weights ``w`` scaled to sum to ``n``, features standardized by their weighted mean and
standard deviation (ddof=0) on the fitting rows, and an unpenalized intercept. The solver is
in ``_kernels/logistic.py``; this module prepares its inputs and reads its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# glmnet clamps probabilities to [1e-5, 1 - 1e-5] in the CV deviance (its ``pmin``/``pmax``).
DEVIANCE_CLAMP = 1e-5
# The path stops once the fit explains this fraction of the null deviance (glmnet's
# ``fdev``-style saturation, separable data): further alphas only inflate the coefficients.
SATURATION = 0.999
# glmnet computes no AUC on a fold of fewer rows than this and falls back to deviance.
AUC_MIN_ROWS = 10
MEASURES = ("deviance", "auc", "class", "mse", "mae")


def normalized_weights(w: np.ndarray | None, n: int) -> np.ndarray:
    """Observation weights scaled to sum to ``n`` (all 1 when ``w`` is None)."""
    if w is None:
        return np.ones(n)
    w = np.asarray(w, dtype=np.float64)
    return w * (n / float(w.sum()))


@dataclass(frozen=True)
class Design:
    """The data matrix as the solver reads it: ``X0`` (n_rows, n_features), Fortran order,
    with missing cells at 0, and the missing cells column by column
    (``miss_idx[miss_ptr[j]:miss_ptr[j+1]]`` the rows where column j is missing)."""

    X0: np.ndarray
    miss_ptr: np.ndarray
    miss_idx: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.X0.shape

    def dense(self, rows: np.ndarray | None = None, cols: np.ndarray | None = None
              ) -> np.ndarray:
        """``X[rows][:, cols]`` with NaN where missing (a copy)."""
        n, p = self.X0.shape
        cols = np.arange(p) if cols is None else np.asarray(cols, dtype=np.int64)
        sub = self.X0[:, cols] if rows is None else self.X0[np.asarray(rows)][:, cols]
        sub = np.array(sub, dtype=np.float64, order="F")
        pos = None
        if rows is not None:
            pos = np.full(n, -1, dtype=np.int64)
            pos[np.asarray(rows)] = np.arange(len(rows))
        for k, j in enumerate(cols):
            r = self.miss_idx[self.miss_ptr[j]:self.miss_ptr[j + 1]]
            if r.size:
                if pos is not None:
                    r = pos[r]
                    r = r[r >= 0]
                sub[r, k] = np.nan
        return sub


def make_design(X: np.ndarray) -> Design:
    """The solver's view of ``X`` (NaN where missing). ``X`` itself is left as it is."""
    X0 = np.array(X, dtype=np.float64, order="F")
    counts = np.zeros(X0.shape[1], dtype=np.int64)
    parts = []
    for j in range(X0.shape[1]):
        r = np.flatnonzero(np.isnan(X0[:, j]))
        if r.size:
            X0[r, j] = 0.0
        counts[j] = r.size
        parts.append(r.astype(np.int64))
    ptr = np.zeros(X0.shape[1] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return Design(X0=X0, miss_ptr=ptr, miss_idx=idx)


def _observed(design: Design, w_full: np.ndarray) -> np.ndarray:
    """``sum of w over the observed cells`` of each column."""
    total = float(w_full.sum())
    out = np.full(design.shape[1], total)
    for j in range(design.shape[1]):
        r = design.miss_idx[design.miss_ptr[j]:design.miss_ptr[j + 1]]
        if r.size:
            out[j] -= w_full[r].sum()
    return out


def weighted_scaling(design: Design, w_full: np.ndarray, standardize: bool,
                     unit: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means, scales and standard deviations (ddof=0) of the rows with weight.

    ``w_full`` (n_rows,) is 0 outside the fitting rows and sums to their number. A missing value
    sits at the mean (it adds nothing to the spread); the mean is over the observed values,
    weighted. The scale of a feature that does not vary there is 0 (the solver keeps it at
    zero), else its standard deviation, or when not standardizing its ``unit`` (the power of
    two the column is held multiplied by; 1 when None), so that it is fitted in its own units.
    """
    X0 = design.X0
    n_fit = float(w_full.sum())
    ws = _observed(design, w_full)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ws > 0, (w_full @ X0) / np.where(ws > 0, ws, 1.0), 0.0)
    # Observed cells only: sum w (x - m)^2 = sum_all w (x0 - m)^2 - sum_missing w m^2.
    sq = np.empty(X0.shape[1])
    lo = np.full(X0.shape[1], np.inf)
    hi = np.full(X0.shape[1], -np.inf)
    used = w_full > 0
    for j in range(X0.shape[1]):
        d = X0[:, j] - mean[j]
        r = design.miss_idx[design.miss_ptr[j]:design.miss_ptr[j + 1]]
        sq[j] = w_full @ (d * d) - (w_full[r].sum() * mean[j] ** 2 if r.size else 0.0)
        obs = used.copy()
        obs[r] = False
        if obs.any():
            col = X0[obs, j]
            lo[j], hi[j] = col.min(), col.max()
    std = np.sqrt(np.maximum(sq, 0.0) / n_fit) if n_fit > 0 else np.zeros_like(sq)
    varies = hi > lo
    std = np.where(varies, std, 0.0)
    own = 1.0 if unit is None else unit
    scale = np.where(varies, std if standardize else own, 0.0)
    return mean, scale, std


def fit_weights(w: np.ndarray | None, rows: np.ndarray, n_total: int) -> np.ndarray:
    """Weights of every row for a fit on ``rows``: 0 elsewhere, summing to ``len(rows)``."""
    full = np.zeros(n_total)
    full[rows] = normalized_weights(None if w is None else w[rows], len(rows))
    return full


@dataclass(frozen=True)
class LogisticPath:
    """A solved path: ``coefs`` (n_features, n_alphas) and ``intercepts`` (n_alphas,) on the
    standardized scale of ``mean``/``scale``; ``n_solved`` alphas were solved (a saturated
    path stops early); ``dev_ratio`` (n_alphas,) the fraction of deviance explained."""

    coefs: np.ndarray
    intercepts: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    std: np.ndarray
    dev_ratio: np.ndarray
    n_solved: int
    converged: bool


def _inv(scale: np.ndarray) -> np.ndarray:
    return np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)


def fit_path(design: Design, y: np.ndarray, w: np.ndarray | None, rows: np.ndarray,
             alphas: np.ndarray, l1_ratio: float, penalty: np.ndarray | None,
             standardize: bool, tol: float, max_iter: int, stop_saturated: bool = False,
             scaling: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
             unit: np.ndarray | None = None) -> LogisticPath:
    """The penalized logistic path on the ``rows`` of ``design`` over the descending ``alphas``.

    Parameters
    ----------
    design : :class:`Design` of the whole matrix (see :func:`make_design`)
    y : ndarray (n_rows,) of 0/1; w : ndarray (n_rows,) of weights >= 0, or None
    rows : int64 ndarray — the fitting rows (distinct)
    penalty : ndarray (n_features,) of penalty factors, or None (all 1)
    stop_saturated : stop once the deviance explained exceeds ``SATURATION``
    scaling : (mean, scale, std) to use instead of the rows' own weighted ones
    unit : how the columns are held (see :func:`weighted_scaling`)
    """
    from l1select._kernels.logistic import logistic_path

    n_total, p = design.shape
    w_full = fit_weights(w, np.asarray(rows, dtype=np.int64), n_total)
    mean, scale, std = scaling if scaling is not None else \
        weighted_scaling(design, w_full, standardize, unit)
    pf = np.ones(p) if penalty is None else np.ascontiguousarray(penalty, dtype=np.float64)
    coefs, intercepts, n_iter, dev_ratio, n_solved = logistic_path(
        design.X0, design.miss_ptr, design.miss_idx, np.ascontiguousarray(y, dtype=np.float64),
        w_full, np.ascontiguousarray(mean, dtype=np.float64), _inv(scale),
        np.ascontiguousarray(alphas, dtype=np.float64), float(l1_ratio), pf, float(tol),
        int(max_iter), SATURATION if stop_saturated else 0.0)
    return LogisticPath(coefs=coefs, intercepts=intercepts, mean=mean, scale=scale, std=std,
                        dev_ratio=dev_ratio, n_solved=int(n_solved),
                        converged=bool(np.all(n_iter[:n_solved] < max_iter)))


def alpha_max(design: Design, y: np.ndarray, w: np.ndarray | None, rows: np.ndarray,
              l1_ratio: float, penalty: np.ndarray | None, standardize: bool,
              unit: np.ndarray | None = None) -> float:
    """The smallest alpha at which every penalized coefficient is zero:
    ``max_j |x̃_jᵀ W (y − p₀)| / (n · l1_ratio · pf_j)``, with ``p₀`` the fit of the intercept
    and the unpenalized features alone (``ȳ_w`` when every feature is penalized)."""
    from l1select._kernels.logistic import gradient

    n_total, p = design.shape
    pf = np.ones(p) if penalty is None else np.asarray(penalty, dtype=np.float64)
    pen = pf > 0
    if not pen.any():
        return 0.0
    # At an alpha this large every penalized coefficient is zero and the unpenalized ones
    # (if any) are fitted: the solver itself gives p₀.
    fit = fit_path(design, y, w, rows, np.array([1e300]), 1.0, pf, standardize, 1e-14, 10_000,
                   unit=unit)
    w_full = fit_weights(w, np.asarray(rows, dtype=np.int64), n_total)
    beta = fit.coefs[:, 0]
    eta = np.full(n_total, fit.intercepts[0])
    nz = np.flatnonzero(beta)
    if nz.size:
        Z = standardize_rows(design.dense(cols=nz), None, fit.mean[nz], fit.scale[nz])
        eta += Z @ beta[nz]
    grad = np.zeros(p)
    gradient(design.X0, design.miss_ptr, design.miss_idx,
             np.ascontiguousarray(y, dtype=np.float64), w_full, float(len(rows)),
             np.ascontiguousarray(fit.mean), _inv(fit.scale), eta, grad)
    return float(np.max(np.abs(grad[pen]) / pf[pen])) / l1_ratio


def standardize_rows(X: np.ndarray, rows: np.ndarray | None, mean: np.ndarray,
                     scale: np.ndarray) -> np.ndarray:
    """``(X[rows] - mean) / scale`` with missing values (and constant features) at 0."""
    sub = X if rows is None else X[rows]
    Z = (sub - mean) * _inv(scale)
    Z[np.isnan(Z)] = 0.0
    return Z


def probabilities(Z: np.ndarray, coefs: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """P(y = 1) of standardized rows ``Z`` (n, p) under each fit: shape (n, n_alphas)."""
    eta = Z @ coefs + intercepts
    return 0.5 * (1.0 + np.tanh(0.5 * eta))  # the logistic function, without overflow


def deviance(y: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """glmnet's per-row binomial deviance ``−2[y log p + (1−y) log(1−p)]``, p clamped."""
    p = np.clip(prob, DEVIANCE_CLAMP, 1.0 - DEVIANCE_CLAMP)
    y = y.reshape(y.shape + (1,) * (p.ndim - y.ndim))
    return -2.0 * (y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def weighted_auc(y: np.ndarray, w: np.ndarray, score: np.ndarray) -> float:
    """The weighted area under the ROC curve: the weighted fraction of (positive, negative)
    pairs ranked correctly, ties counting one half (NaN without both classes)."""
    pos_w = float(w[y == 1].sum())
    neg_w = float(w[y == 0].sum())
    if pos_w <= 0 or neg_w <= 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    s, yy, ww = score[order], y[order], w[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(ww * (yy == 1), starts)
    neg = np.add.reduceat(ww * (yy == 0), starts)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos_w * neg_w))


def fold_measure(measure: str, y: np.ndarray, w: np.ndarray, prob: np.ndarray,
                 threshold: float) -> np.ndarray:
    """One held-out fold's measure at each alpha: the weighted mean of the per-row measure
    (AUC per fold). ``prob`` (n, n_alphas); returns (n_alphas,)."""
    wn = w / w.sum()
    if measure == "deviance":
        return wn @ deviance(y, prob)
    if measure == "class":
        return wn @ ((prob > threshold) != (y[:, None] == 1))
    if measure == "mse":
        return wn @ (y[:, None] - prob) ** 2
    if measure == "mae":
        return wn @ np.abs(y[:, None] - prob)
    if measure == "auc":
        return np.array([weighted_auc(y, w, prob[:, k]) for k in range(prob.shape[1])])
    raise ValueError(measure)


# The ROC curve of the out-of-fold predictions is kept to at most this many points: enough
# for a picture, small in the JSON whatever the number of rows.
ROC_POINTS = 201


def roc_points(y: np.ndarray, w: np.ndarray, prob: np.ndarray) -> dict:
    """The weighted ROC curve of ``prob`` (one point per distinct score, thinned to at most
    ``ROC_POINTS`` evenly spaced along the curve): ``{fpr, tpr, auc}``."""
    order = np.argsort(-prob, kind="stable")
    s, yy, ww = prob[order], y[order], w[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each group of equal scores
    tp = np.cumsum(ww * (yy == 1))[last]
    fp = np.cumsum(ww * (yy == 0))[last]
    tpr = np.r_[0.0, tp / tp[-1]] if tp[-1] > 0 else np.r_[0.0, tp * 0]
    fpr = np.r_[0.0, fp / fp[-1]] if fp[-1] > 0 else np.r_[0.0, fp * 0]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    if fpr.size > ROC_POINTS:
        keep = np.unique(np.linspace(0, fpr.size - 1, ROC_POINTS).round().astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr], "auc": auc}

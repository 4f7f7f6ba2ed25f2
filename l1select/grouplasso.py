"""The group lasso (``--group-categoricals``): the levels of a categorical enter or leave the
model together.

Objective, on the standardized scale, with ``s_g = √|g|`` (grpreg/gglasso)::

    1/(2n)||y - Xw - b||² + alpha·l1_ratio·Σ_g s_g·||w_g||₂ + alpha·(1 - l1_ratio)/2·||w||²

A categorical's features (its levels and ``column=(other)``) form one group; every other
feature is a group of one, so with no categorical this is the lasso (elastic net). Solved by
block coordinate descent on the same standardized Gram statistics as the lasso.
"""

from __future__ import annotations

import numpy as np


def feature_groups(features) -> np.ndarray:
    """The group of each feature (n_features,): one per categorical column, one per other
    feature, numbered in order (a categorical's features are contiguous)."""
    ids = np.empty(len(features), dtype=np.int64)
    g = -1
    last = None
    for j, f in enumerate(features):
        grouped = f.kind in ("onehot", "other")
        if not (grouped and last == f.column):
            g += 1
        last = f.column if grouped else None
        ids[j] = g
    return ids


def group_alpha_max(xty: np.ndarray, groups: np.ndarray, l1_ratio: float) -> float:
    """The smallest alpha at which every group is zero: ``max_g ||c_g|| / (√|g| l1_ratio)``."""
    if xty.size == 0:
        return 0.0
    sizes = np.bincount(groups)
    norms = np.sqrt(np.bincount(groups, weights=xty * xty))
    return float(np.max(norms / np.sqrt(sizes))) / l1_ratio


def solve_group_gram(gram: np.ndarray, xty: np.ndarray, yty: float, alphas: np.ndarray,
                     l1_ratio: float, usable: np.ndarray, params, groups: np.ndarray
                     ) -> tuple[np.ndarray, bool]:
    """The group-lasso path (n_features, n_alphas) on a standardized Gram problem, and whether
    every alpha converged within ``max_iter`` epochs (``path.solve_gram``'s contract).

    Features that do not vary on these rows stay at zero; a group's weight ``√|g|`` counts
    its features on all rows, so every fold has the same penalty.
    """
    from l1select._kernels.group import group_cd_gram_path

    p = xty.shape[0]
    coefs = np.zeros((p, alphas.size))
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return coefs, True
    G = np.ascontiguousarray(gram[np.ix_(idx, idx)])
    sub = groups[idx]
    starts = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1], True]).astype(np.int64)
    scale = np.sqrt(np.bincount(groups)[sub[starts[:-1]]].astype(np.float64))
    lips = np.array([np.linalg.eigvalsh(G[s:e, s:e])[-1]
                     for s, e in zip(starts[:-1], starts[1:], strict=True)])
    w, _, n_iter = group_cd_gram_path(G, np.ascontiguousarray(xty[idx]), float(yty),
                                      np.ascontiguousarray(alphas, dtype=np.float64),
                                      float(l1_ratio), starts, scale, lips, np.zeros(idx.size),
                                      float(params.tol), int(params.max_iter))
    coefs[idx] = w
    return coefs, bool(np.all(n_iter < params.max_iter))

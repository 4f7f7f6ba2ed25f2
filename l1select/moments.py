"""Per-fold sufficient statistics: row count, means and centered co-moments, merged exactly.

For squared loss, K-fold CV with per-fold imputation and standardization is exactly computable
from, per fold, the count, the means and the centered co-moment matrix of the row vector

    u = [z_1 … z_m, r_1 … r_q, y]

where ``z_j`` is a feature's value with a missing value replaced by a fixed *fill* ``c_j``, and
``r_s`` is 1 where source column ``s`` is missing. Imputing with any training mean ``m`` is then a
linear map of ``u`` (``x̃_j = z_j + (m_j - c_j) r_s``), so the statistics of the imputed,
standardized training design, and the held-out error of any model, follow exactly.

Statistics merge with the pairwise update of co-moments (Chan, Golub & LeVeque), never by summing
raw products, which loses every digit when a column's mean is large against its spread. The
reduction is engine-neutral: :func:`batch_moments` on a batch, :meth:`Moments.merge` to combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def batch_moments(U: np.ndarray, groups: np.ndarray, n_groups: int,
                  w: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count (or weight sum), mean and centered co-moment of the rows of ``U`` in each group.

    Parameters
    ----------
    U : ndarray of shape (n_rows, n_slots), float64, no NaN
    groups : ndarray of shape (n_rows,), ints in 0…n_groups-1
    n_groups : int
    w : ndarray of shape (n_rows,), optional
        Non-negative observation weights: then ``n`` is the sum of the weights, ``mean`` the
        weighted mean and the co-moment ``sum_i w_i (u_i - mean)(u_i - mean)ᵀ``; a group whose
        weights are all 0 stays empty (a weight-0 row counts nothing).

    Returns
    -------
    n : (n_groups,) float64, mean : (n_groups, n_slots), comoment : (n_groups, n_slots, n_slots)
    """
    d = U.shape[1]
    counts = np.bincount(groups, minlength=n_groups)
    n = counts.astype(np.float64) if w is None else \
        np.bincount(groups, weights=w, minlength=n_groups)
    mean = np.zeros((n_groups, d))
    com = np.zeros((n_groups, d, d))
    # A stable sort of small ints is a radix sort: several times faster than on int64.
    keys = groups.astype(np.int16) if n_groups <= np.iinfo(np.int16).max else groups
    order = np.argsort(keys, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    Us = U[order]
    ws = None if w is None else w[order]
    for g in range(n_groups):
        if n[g] == 0:
            continue
        block = Us[bounds[g]:bounds[g + 1]]
        if ws is None:
            mu = block.mean(axis=0)
            centered = block - mu
            com[g] = centered.T @ centered
        else:
            wb = ws[bounds[g]:bounds[g + 1]]
            mu = (wb @ block) / n[g]
            centered = block - mu
            com[g] = (centered * wb[:, None]).T @ centered
        mean[g] = mu
    return n, mean, com


def merge_into(n_a: np.ndarray, mean_a: np.ndarray, com_a: np.ndarray,
               n_b: np.ndarray, mean_b: np.ndarray, com_b: np.ndarray) -> None:
    """Merge statistics b into a, group by group (a is mutated).

    Shapes: n (G,), mean (G, d), comoment (G, d, d); a and b have the same slots.
    """
    for g in range(n_a.shape[0]):
        nb = n_b[g]
        if nb == 0:
            continue
        na = n_a[g]
        if na == 0:
            n_a[g] = nb
            mean_a[g] = mean_b[g]
            com_a[g] = com_b[g]
            continue
        n = na + nb
        delta = mean_b[g] - mean_a[g]
        mean_a[g] += delta * (nb / n)
        com_a[g] += com_b[g]
        com_a[g] += np.outer(delta, delta) * (na * nb / n)
        n_a[g] = n


def merge_groups(n: np.ndarray, mean: np.ndarray, com: np.ndarray, which: np.ndarray
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """The statistics of the union of the groups selected by the boolean mask ``which``."""
    tot_n = np.zeros(1)
    tot_mean = np.zeros((1, mean.shape[1]))
    tot_com = np.zeros((1, mean.shape[1], mean.shape[1]))
    for g in np.flatnonzero(which):
        merge_into(tot_n, tot_mean, tot_com, n[g:g + 1], mean[g:g + 1], com[g:g + 1])
    return float(tot_n[0]), tot_mean[0], tot_com[0]


def merge_sum(n: np.ndarray, mean: np.ndarray, com: np.ndarray, which: np.ndarray
              ) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`merge_groups` in one vectorized step (many groups at once, e.g. a half-sample's
    micro-groups): the co-moment of the union is the sum of the groups' co-moments plus
    ``sum_g n_g (mean_g - m)(mean_g - m)ᵀ`` about the union's mean ``m`` (the parallel-axis
    theorem). Deviations are taken from ``m``, never raw sums of products, so it is as exact
    as the pairwise merge.
    """
    idx = np.flatnonzero(which & (n > 0))
    if idx.size == 0:
        d = mean.shape[1]
        return 0.0, np.zeros(d), np.zeros((d, d))
    w = n[idx]
    total = float(w.sum())
    m = (w @ mean[idx]) / total
    dev = mean[idx] - m
    out = com[idx].sum(axis=0) + (dev * w[:, None]).T @ dev
    return total, m, out


@dataclass
class Moments:
    """Running statistics of named slots for ``n_groups`` groups (CV folds, plus a test group).

    ``n`` is each group's row count, or with observation weights its sum of weights (the
    pairwise merge takes weight sums in place of counts); ``rows`` always counts the rows.

    Slots can be added while accumulating: a slot that was 0 on every earlier row (a category
    level first seen now, the missing indicator of a column first missing now) extends the
    statistics with zeros exactly.
    """

    n_groups: int
    keys: list[tuple] = field(default_factory=list)
    n: np.ndarray = field(init=False)
    mean: np.ndarray = field(init=False)
    com: np.ndarray = field(init=False)
    rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        d = len(self.keys)
        self.n = np.zeros(self.n_groups)
        self.rows = np.zeros(self.n_groups, dtype=np.int64)
        self.mean = np.zeros((self.n_groups, d))
        self.com = np.zeros((self.n_groups, d, d))
        self._index = {k: i for i, k in enumerate(self.keys)}

    def index(self, key: tuple) -> int:
        return self._index[key]

    def _extend(self, new: list[tuple], init: dict[tuple, float]) -> None:
        """Add slots that were constant on every earlier row: ``init[key]`` (default 0)."""
        d0 = len(self.keys)
        d = d0 + len(new)
        mean = np.zeros((self.n_groups, d))
        com = np.zeros((self.n_groups, d, d))
        mean[:, :d0] = self.mean
        com[:, :d0, :d0] = self.com
        for i, k in enumerate(new):
            mean[:, d0 + i] = init.get(k, 0.0)
        self.mean, self.com = mean, com
        for k in new:
            self._index[k] = len(self.keys)
            self.keys.append(k)

    def ensure_groups(self, n_groups: int) -> None:
        """Room for ``n_groups`` groups (new ones empty)."""
        extra = n_groups - self.n_groups
        if extra <= 0:
            return
        d = len(self.keys)
        self.n = np.concatenate([self.n, np.zeros(extra)])
        self.rows = np.concatenate([self.rows, np.zeros(extra, dtype=np.int64)])
        self.mean = np.concatenate([self.mean, np.zeros((extra, d))])
        self.com = np.concatenate([self.com, np.zeros((extra, d, d))])
        self.n_groups = n_groups

    def add(self, keys: list[tuple], U: np.ndarray, groups: np.ndarray,
            init: dict[tuple, float] | None = None,
            shift: dict[tuple, float] | None = None, w: np.ndarray | None = None) -> None:
        """Accumulate the rows ``U`` (n_rows, len(keys)) whose slots are ``keys``, with
        observation weights ``w`` (n_rows,) if given.

        A key not seen before was constant on all earlier rows, at ``init[key]`` (default 0).
        ``shift[key]`` moves a slot that was constant on all earlier rows by that much (its
        co-moments are zero, so only its mean changes: exact).
        """
        for key, value in (shift or {}).items():
            if key in self._index:
                self.mean[:, self._index[key]] += value
        new = [k for k in keys if k not in self._index]
        if new:
            self._extend(new, init or {})
        idx = np.array([self._index[k] for k in keys], dtype=np.int64)
        n_b, mean_b, com_b = batch_moments(U, groups, self.n_groups, w)
        self.rows += np.bincount(groups, minlength=self.n_groups)
        d = len(self.keys)
        if idx.size == d and np.array_equal(idx, np.arange(d)):
            merge_into(self.n, self.mean, self.com, n_b, mean_b, com_b)
            return
        # Slots absent from this batch are 0 on its rows.
        full_mean = np.zeros((self.n_groups, d))
        full_com = np.zeros((self.n_groups, d, d))
        full_mean[:, idx] = mean_b
        full_com[:, idx[:, None], idx[None, :]] = com_b
        merge_into(self.n, self.mean, self.com, n_b, full_mean, full_com)

    def merge(self, other: Moments) -> None:
        """Merge the statistics of other rows (same groups), slots matched by key. A slot that
        ``other`` lacks was 0 on its rows, and one that this lacks was 0 on these rows (as for
        the empty parts of a distributed pass)."""
        self.ensure_groups(other.n_groups)
        new = [k for k in other.keys if k not in self._index]
        if new:
            self._extend(new, {})
        d = len(self.keys)
        idx = np.array([self._index[k] for k in other.keys], dtype=np.int64)
        n_b = np.zeros(self.n_groups)
        n_b[:other.n_groups] = other.n
        self.rows[:other.n_groups] += other.rows
        if idx.size == d and np.array_equal(idx, np.arange(d)) and \
                other.n_groups == self.n_groups:
            merge_into(self.n, self.mean, self.com, n_b, other.mean, other.com)
            return
        full_mean = np.zeros((self.n_groups, d))
        full_com = np.zeros((self.n_groups, d, d))
        full_mean[:other.n_groups, idx] = other.mean
        full_com[:other.n_groups, idx[:, None], idx[None, :]] = other.com
        merge_into(self.n, self.mean, self.com, n_b, full_mean, full_com)

    def drop(self, keys: list[tuple]) -> None:
        """Forget slots (a column found unusable); the others are unchanged."""
        gone = {self._index[k] for k in keys if k in self._index}
        if not gone:
            return
        keep = np.array([i for i in range(len(self.keys)) if i not in gone], dtype=np.int64)
        self.keys = [self.keys[i] for i in keep]
        self.mean = self.mean[:, keep]
        self.com = self.com[:, keep[:, None], keep[None, :]]
        self._index = {k: i for i, k in enumerate(self.keys)}

    def pool(self, new_key: tuple, keys: list[tuple]) -> None:
        """Replace the slots ``keys`` by one slot ``new_key`` holding their sum (rare category
        levels pooled into one indicator). A linear map of the rows, so exact: the new mean is
        the sum of the means, its co-moments the sums of the rows and columns of ``keys``."""
        idx = np.array([self._index[k] for k in keys], dtype=np.int64)
        mean = self.mean[:, idx].sum(axis=1)
        row = self.com[:, idx, :].sum(axis=1)  # (G, d): co-moments with every slot
        corner = row[:, idx].sum(axis=1)
        self._extend([new_key], {})
        d = len(self.keys)
        self.mean[:, d - 1] = mean
        self.com[:, d - 1, :d - 1] = row
        self.com[:, :d - 1, d - 1] = row
        self.com[:, d - 1, d - 1] = corner
        self.drop(list(keys))

    def merged(self, which: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Count, mean and co-moment of the union of the groups in the mask ``which``."""
        return merge_groups(self.n, self.mean, self.com, which)


@dataclass(frozen=True)
class Layout:
    """Where each feature lives in the slot vector.

    ``value`` (p,) the slot of each feature's value, ``missing`` (p,) the slot of its column's
    missing indicator (-1: never missing), ``fill`` (p,) the value a missing entry has in the
    value slot, ``target`` the slot of y.
    """

    value: np.ndarray
    missing: np.ndarray
    fill: np.ndarray
    target: int


@dataclass(frozen=True)
class Imputed:
    """Statistics of the imputed design on some rows: ``n``, feature means ``x_mean`` (p,), the
    centered co-moments ``xx`` (p, p) and ``xy`` (p,), ``y_mean`` and ``yy``."""

    n: float
    x_mean: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    y_mean: float
    yy: float
    shift: np.ndarray  # fill - x_mean: how far an imputed entry's slot value is from the mean


def imputed(n: float, mean: np.ndarray, com: np.ndarray, layout: Layout) -> Imputed:
    """The statistics of the design with each missing value replaced by these rows' mean.

    With ``d = fill - m`` the imputed, centered value of feature j is
    ``(z_j - mean(z_j)) - d_j (r_j - mean(r_j))``: a linear map of the centered slots, so its
    co-moments are a quadratic form in ``com``.
    """
    F, S, c = layout.value, layout.missing, layout.fill
    has = S >= 0
    Sg = np.where(has, S, 0)
    r_bar = np.where(has, mean[Sg], 0.0)
    observed = 1.0 - r_bar
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(has & (observed > 0), c + (mean[F] - c) / observed, mean[F])
    m = np.where(has & ~(observed > 0), c, m)  # never observed here: constant at the fill
    d = np.where(has, c - m, 0.0)
    Mff = com[np.ix_(F, F)]
    Mfs = com[np.ix_(F, Sg)] * d[None, :]
    Mss = com[np.ix_(Sg, Sg)] * d[:, None] * d[None, :]
    xx = Mff - Mfs - Mfs.T + Mss
    t = layout.target
    xy = com[F, t] - d * com[Sg, t]
    return Imputed(n=n, x_mean=m, xx=xx, xy=xy, y_mean=float(mean[t]), yy=float(com[t, t]),
                   shift=d)

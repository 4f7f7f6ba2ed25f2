"""Fold membership and the test split: pure functions of a row's global index (or its label)
and the seed.

None depends on how the rows are batched or partitioned, so every engine gets the same folds.

- ``kfold``: rows are taken in blocks of ``n_folds`` consecutive indices; inside a block the
  folds are a pseudo-random permutation (ranks of a hash of the index), so fold sizes differ by
  at most one. ``--repeats R``: repeat ``r`` draws its folds with seed ``seed + r``.
- a fold column: each distinct label is a fold (glmnet's ``foldid``).
- a group column: each label hashes (seed-free) into one of :data:`GROUP_BUCKETS` buckets;
  after the pass, the non-empty buckets are dealt to the folds in a seeded random order, each
  to the fold with the fewest rows so far. A group never straddles two folds, and each fold's
  row count is within one bucket's row count of every other's.
- ``forward``: the rows in file order are cut into ``n_folds + 1`` consecutive blocks by global
  row index, as scikit-learn's ``TimeSeriesSplit`` cuts them (needs the row count first).
- stability selection's micro-groups: every training row belongs to one of ``M`` micro-groups,
  a function of its global row index and the seed, like the folds (balanced: in every block of
  ``M`` consecutive indices each micro-group gets one row); its half-samples are unions of
  them (see ``solve/stability.py``), so a statistics pass keeps one set per micro-group.

The statistics engines keep one set of statistics per *cell* (group id): 0 is the test split,
then the cells of each layer (a layer per repeat). A :class:`FoldPlan` says, per fold, which
cells it holds out and which it trains on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from l1select.errors import DataError, quoted

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_TEST_SALT = np.uint64(0xD1B54A32D192ED03)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a well-mixed 64-bit hash of each element (uint64 in, out)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _keys(index: np.ndarray, seed: int, salt: np.uint64) -> np.ndarray:
    seed_key = _splitmix64(np.array([np.uint64(seed % (1 << 64))]) ^ salt)[0]
    return _splitmix64(index.astype(np.uint64) ^ seed_key)


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d array without NaN (``np.unique``'s result).

    Not ``np.unique`` itself: on the streaming path it would import ``numpy.ma`` (30 ms of a
    small fit's start-up) to ask whether the array is masked."""
    s = np.sort(values)
    if s.size < 2:
        return s
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def fold_ids(index: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (0 … n_folds-1) of each global row index (int64 array of shape (n,))."""
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return np.empty(0, dtype=np.int64)
    blocks = distinct(index // n_folds)
    members = (blocks[:, None] * n_folds + np.arange(n_folds)[None, :]).ravel()
    keys = _keys(members, seed, np.uint64(0)).reshape(len(blocks), n_folds)
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    block_pos = np.searchsorted(blocks, index // n_folds)
    return ranks[block_pos, index % n_folds].astype(np.int64)


def stratified_fold_ids(index: np.ndarray, strata: np.ndarray, n_folds: int, seed: int,
                        offsets: np.ndarray | None = None) -> np.ndarray:
    """Folds stratified by class: the rows of each stratum, in order of their global index,
    are dealt to the folds as :func:`fold_ids` deals rows, by their rank within the stratum
    (with a seed of its own per stratum). Each class is then split as evenly as possible, and
    the folds still depend only on the rows' indices, classes and the seed.

    ``strata`` (n,) holds small non-negative integers (the class of each row). ``offsets``
    (one per stratum value) count the rows of each stratum that come before these rows (a
    partition of the data: the rows of the earlier partitions); None: none do.
    """
    index = np.asarray(index, dtype=np.int64)
    out = np.empty(index.size, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    for s in np.unique(strata):
        members = order[strata[order] == s]
        rank = np.arange(members.size, dtype=np.int64)
        if offsets is not None:
            rank += int(offsets[int(s)])
        out[members] = fold_ids(rank, n_folds, seed + 7919 * (int(s) + 1))
    return out


def holdout_mask(index: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """True for the rows held out as the test set: each row independently with ``test_size``."""
    index = np.asarray(index, dtype=np.int64)
    u = (_keys(index, seed, _TEST_SALT) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return u < test_size


def label_folds(labels: np.ndarray) -> tuple[np.ndarray, list]:
    """Fold ids from user labels (glmnet's ``foldid``): the sorted distinct labels become 0…K-1."""
    uniq, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64), list(uniq)


# Buckets a group column's labels hash into: folds (and stability half-samples) are unions of
# whole buckets. 64 keeps the statistics at 64 matrices of (slots)² while dealing ~13 buckets
# to each of 5 folds.
GROUP_BUCKETS = 64
_BUCKET_SALT = 0x6A09E667F3BCC909
_DEAL_SALT = 0x3C6EF372


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat ``repeat`` (0 …): ``seed + repeat``, so repeat r is the run with
    ``--seed seed+r``."""
    return int(seed) + int(repeat)


def label_bucket(label: str) -> int:
    """The bucket (0 … GROUP_BUCKETS-1) of a group label: a hash of its text, seed-free (so a
    repeat with another seed deals the same buckets)."""
    digest = hashlib.blake2b(label.encode("utf-8", "surrogatepass"), digest_size=8,
                             salt=_BUCKET_SALT.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little") % GROUP_BUCKETS


def deal_buckets(counts: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (0 … n_folds-1) of each bucket, -1 for an empty one.

    The non-empty buckets, in a random order drawn from ``seed``, each go to the fold with the
    fewest rows so far (the lowest-numbered among ties): greedy list scheduling, so no fold has
    more rows than another plus the largest bucket's. Then, while it narrows the gap between the
    fullest and the emptiest fold, a bucket moves (or two swap) between them: no fold's row
    count leaves the range it had, so the bound holds, and the folds come closer to equal.
    """
    counts = np.asarray(counts, dtype=np.float64)
    rng = np.random.default_rng([int(seed) % (1 << 63), _DEAL_SALT])
    order = rng.permutation(counts.size)
    fold = np.full(counts.size, -1, dtype=np.int64)
    load = np.zeros(n_folds)
    for b in order:
        if counts[b] > 0:
            k = int(np.argmin(load))
            fold[b] = k
            load[k] += counts[b]
    for _ in range(4 * counts.size):
        if not _rebalance(fold, load, counts):
            break
    return fold


def _rebalance(fold: np.ndarray, load: np.ndarray, counts: np.ndarray) -> bool:
    """One move or swap of buckets between the fullest and the emptiest fold that narrows
    their gap the most (``fold`` and ``load`` mutated); False when none does."""
    hi, lo = int(np.argmax(load)), int(np.argmin(load))
    gap = load[hi] - load[lo]
    a = np.flatnonzero(fold == hi)
    b = np.concatenate([[-1], np.flatnonzero(fold == lo)])  # -1: move, no bucket back
    moved = counts[a][:, None] - np.where(b >= 0, counts[b], 0.0)[None, :]
    new_gap = np.abs(gap - 2.0 * moved)
    i, j = np.unravel_index(int(np.argmin(new_gap)), new_gap.shape)
    if not new_gap[i, j] < gap or not moved[i, j] > 0:
        return False
    fold[a[i]] = lo
    if b[j] >= 0:
        fold[b[j]] = hi
    load[hi] -= moved[i, j]
    load[lo] += moved[i, j]
    return True


def forward_starts(n_rows: int, n_folds: int) -> np.ndarray:
    """The first global row index of each of the ``n_folds + 1`` blocks, and ``n_rows``:
    scikit-learn's ``TimeSeriesSplit(n_splits=n_folds)`` (test blocks of ``n_rows // (n_folds
    + 1)`` rows at the end; the first block takes the remainder)."""
    size = n_rows // (n_folds + 1)
    first = n_rows - n_folds * size
    return np.array([0] + [first + k * size for k in range(n_folds)] + [n_rows],
                    dtype=np.int64)


@dataclass(frozen=True)
class Fold:
    """One CV fit: the cells it holds out (``test``) and trains on (``train``), boolean masks
    over the cells; ``layer`` is its repeat."""

    test: np.ndarray
    train: np.ndarray
    layer: int = 0


@dataclass(frozen=True)
class FoldPlan:
    """The CV folds over the cells, in report order, ``full``: the cells of all training rows
    (layer 0), ``labels``: the fold labels (a fold column), ``micro``: the cells stability's
    half-samples are unions of (None: row micro-groups)."""

    folds: tuple[Fold, ...]
    full: np.ndarray
    labels: tuple[str, ...] = ()
    micro: np.ndarray | None = None


class Grouper:
    """Puts each kept row in a cell: 0 for the test set, then the cells of each layer.

    ``scheme``: ``none`` (one fit, no CV), ``kfold``, ``label`` (a fold column: each distinct
    label becomes a cell, numbered in order of first appearance), ``group`` (a group column:
    its label's bucket) or ``forward`` (its block; ``n_rows`` must be known).
    """

    def __init__(self, n_folds: int, seed: int, test_size: float | None, scheme: str = "kfold",
                 repeats: int = 1, n_rows: int | None = None):
        self.n_folds = n_folds
        self.seed = seed
        self.test_size = test_size
        self.scheme = scheme
        self.repeats = repeats if scheme in ("kfold", "group") else 1
        # A layer of cells per repeat for K-fold; repeats of a group column deal the same
        # buckets again.
        self.n_layers = self.repeats if scheme == "kfold" else 1
        self.n_rows = n_rows
        self.labels: dict[str, int] = {}
        self._buckets: dict[str, int] = {}
        if scheme == "forward" and n_rows is None:
            raise ValueError("forward folds need the row count")

    @property
    def by_label(self) -> bool:
        return self.scheme == "label"

    @property
    def needs_labels(self) -> bool:
        return self.scheme in ("label", "group")

    @property
    def n_cells(self) -> int:
        """Cells per layer."""
        return {"none": 1, "kfold": self.n_folds, "label": len(self.labels),
                "group": GROUP_BUCKETS, "forward": self.n_folds + 1}[self.scheme]

    @property
    def n_groups(self) -> int:
        return 1 + self.n_layers * self.n_cells

    def groups(self, rows: np.ndarray, labels: list | None = None,
               strata: np.ndarray | None = None, offsets: np.ndarray | None = None
               ) -> list[np.ndarray]:
        """Cell ids (n,) of the rows with global indices ``rows`` (and their labels), one array
        per layer; test rows are 0 in layer 0 (and meaningless in the others). With ``strata``
        (the class of each row) k-fold folds are stratified by class: all rows at once, or a
        partition of them with ``offsets``, the rows of each class before it (see
        :func:`stratified_fold_ids`)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.scheme == "label":
            assert labels is not None
            out = np.empty(rows.size, dtype=np.int64)
            for i, lab in enumerate(labels):
                g = self.labels.get(lab)
                if g is None:
                    g = self.labels[lab] = len(self.labels) + 1
                out[i] = g
            layers = [out]
        elif self.scheme == "group":
            assert labels is not None
            out = np.empty(rows.size, dtype=np.int64)
            for i, lab in enumerate(labels):
                b = self._buckets.get(lab)
                if b is None:
                    b = self._buckets[lab] = label_bucket(lab)
                out[i] = b + 1
            layers = [out]
        elif self.scheme == "forward":
            starts = forward_starts(int(self.n_rows), self.n_folds)  # type: ignore[arg-type]
            block = np.searchsorted(starts, rows, side="right") - 1
            layers = [np.clip(block, 0, self.n_folds) + 1]
        elif self.scheme == "kfold" and strata is not None:
            layers = [stratified_fold_ids(rows, strata, self.n_folds, repeat_seed(self.seed, r),
                                          offsets) + 1 + r * self.n_folds
                      for r in range(self.repeats)]
        elif self.scheme == "kfold":
            layers = [fold_ids(rows, self.n_folds, repeat_seed(self.seed, r)) + 1
                      + r * self.n_folds for r in range(self.repeats)]
        else:
            layers = [np.ones(rows.size, dtype=np.int64)]
        if self.test_size is not None:
            layers[0] = layers[0].copy()
            layers[0][holdout_mask(rows, self.test_size, self.seed)] = 0
        return layers

    def plan(self, counts: np.ndarray) -> FoldPlan:
        """The folds, from the row count of each cell (``counts``, shape (n_groups,))."""
        n = self.n_groups
        counts = np.zeros(n) if counts is None else np.asarray(counts, dtype=np.float64)
        counts = np.concatenate([counts, np.zeros(max(n - counts.size, 0))])[:n]

        def mask(cells) -> np.ndarray:
            m = np.zeros(n, dtype=bool)
            m[np.asarray(list(cells), dtype=np.int64)] = True
            return m

        layer0 = mask(range(1, 1 + self.n_cells))
        folds: list[Fold] = []
        labels: tuple[str, ...] = ()
        micro = None
        if self.scheme == "kfold":
            for r in range(self.repeats):
                cells = range(1 + r * self.n_folds, 1 + (r + 1) * self.n_folds)
                for g in cells:
                    folds.append(Fold(mask([g]), mask(c for c in cells if c != g), r))
        elif self.scheme == "label":
            ordered = sorted(self.labels.items())
            labels = tuple(lab for lab, _ in ordered)
            for _, g in ordered:
                folds.append(Fold(mask([g]), layer0 & ~mask([g])))
            micro = layer0
        elif self.scheme == "group":
            for r in range(self.repeats):
                fold = deal_buckets(counts[1:], self.n_folds, repeat_seed(self.seed, r))
                for k in range(self.n_folds):
                    test = mask(np.flatnonzero(fold == k) + 1)
                    folds.append(Fold(test, layer0 & ~test))
            micro = layer0
        elif self.scheme == "forward":
            for k in range(1, self.n_folds + 1):
                folds.append(Fold(mask([k + 1]), mask(range(1, k + 1))))
        return FoldPlan(folds=tuple(folds), full=layer0, labels=labels, micro=micro)


def scheme_of(params) -> str:
    """The fold scheme of a run's :class:`~l1select.types.FitParams`."""
    if params.alpha is not None:
        return "none"
    if params.fold_column is not None:
        return "label"
    if params.group_column is not None:
        return "group"
    return params.cv_scheme


def make_grouper(params, n_rows: int | None = None) -> Grouper:
    """The grouper of a run (``n_rows``: the data rows, for forward folds)."""
    scheme = scheme_of(params)
    return Grouper(0 if scheme == "none" else params.cv, params.seed, params.test_size,
                   scheme, params.repeats, n_rows)


def label_column(params) -> str | None:
    """The column whose labels place the rows (a fold or group column), if any."""
    if params.alpha is not None:
        return None
    return params.fold_column or params.group_column


def row_labels(batch, positions: np.ndarray, params, source: str) -> list[str]:
    """The fold or group labels (as text) of the rows at ``positions`` of ``batch`` (an Arrow
    record batch or table)."""
    name = label_column(params)
    col = batch.column(name).take(positions)
    if col.null_count:
        what = "Fold" if name == params.fold_column else "Group"
        raise DataError(f"{what} column {quoted(name)} in {source} has missing labels; give "
                        f"every row a {what.lower()} label")
    return [str(v) for v in col.to_pylist()]


# -- stability selection's micro-groups --------------------------------------------------------

# Micro-groups per pass: half-samples are unions of 32 of them. 64 makes C(64, 32) ≈ 1.8e18
# possible halves, while the statistics stay small (64 matrices of (slots)²).
MICRO_GROUPS = 64
# ... unless 64 co-moment matrices would pass this many bytes; never fewer than 8 groups.
MICRO_BYTES = 1 << 30
MIN_MICRO_GROUPS = 8
# Keeps the micro-groups independent of the CV folds drawn from the same seed.
_MICRO_SEED_SHIFT = 0x632BE59BD9B4E019


def micro_count(n_slots: int) -> int:
    """How many micro-groups fit the memory budget for statistics of ``n_slots`` slots (even)."""
    fit = MICRO_BYTES // max(8 * n_slots * n_slots, 1)
    m = int(min(MICRO_GROUPS, max(MIN_MICRO_GROUPS, fit)))
    return m - (m % 2)


def micro_ids(rows: np.ndarray, n_groups: int, seed: int) -> np.ndarray:
    """The micro-group (0 … n_groups-1) of each global row index."""
    return fold_ids(rows, n_groups, (int(seed) + _MICRO_SEED_SHIFT) % (1 << 64))

"""Fold membership and the test split: pure functions of a row's global index and the seed.

Neither depends on how the rows are batched or partitioned, so every engine gets the same folds.
Rows are taken in blocks of ``n_folds`` consecutive indices; inside a block the folds are a
pseudo-random permutation (ranks of a hash of the index), so fold sizes differ by at most one.
"""

from __future__ import annotations

import numpy as np

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


def fold_ids(index: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (0 … n_folds-1) of each global row index (int64 array of shape (n,))."""
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return np.empty(0, dtype=np.int64)
    blocks = np.unique(index // n_folds)
    members = (blocks[:, None] * n_folds + np.arange(n_folds)[None, :]).ravel()
    keys = _keys(members, seed, np.uint64(0)).reshape(len(blocks), n_folds)
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    block_pos = np.searchsorted(blocks, index // n_folds)
    return ranks[block_pos, index % n_folds].astype(np.int64)


def stratified_fold_ids(index: np.ndarray, strata: np.ndarray, n_folds: int, seed: int
                        ) -> np.ndarray:
    """Folds stratified by class: the rows of each stratum, in order of their global index,
    are dealt to the folds as :func:`fold_ids` deals rows, by their rank within the stratum
    (with a seed of its own per stratum). Each class is then split as evenly as possible, and
    the folds still depend only on the rows' indices, classes and the seed.

    ``strata`` (n,) holds small non-negative integers (the class of each row).
    """
    index = np.asarray(index, dtype=np.int64)
    out = np.empty(index.size, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    for s in np.unique(strata):
        members = order[strata[order] == s]
        rank = np.arange(members.size, dtype=np.int64)
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


class Grouper:
    """Puts each kept row in a group: 0 for the test set, 1…K for the CV folds.

    With a fold column, each distinct label becomes a fold, numbered in order of first
    appearance; :meth:`label_order` gives the sorted order at the end.
    """

    def __init__(self, n_folds: int, seed: int, test_size: float | None, by_label: bool):
        self.n_folds = n_folds
        self.seed = seed
        self.test_size = test_size
        self.by_label = by_label
        self.labels: dict[str, int] = {}

    @property
    def n_groups(self) -> int:
        return 1 + (len(self.labels) if self.by_label else max(self.n_folds, 1))

    def groups(self, rows: np.ndarray, labels: list | None = None,
               strata: np.ndarray | None = None) -> np.ndarray:
        """Group ids (n,) of the rows with global indices ``rows`` (and fold labels); with
        ``strata`` (the class of each row, all rows at once) the folds are stratified."""
        if self.by_label:
            assert labels is not None
            out = np.empty(rows.size, dtype=np.int64)
            for i, lab in enumerate(labels):
                g = self.labels.get(lab)
                if g is None:
                    g = self.labels[lab] = len(self.labels) + 1
                out[i] = g
        elif self.n_folds and strata is not None:
            out = stratified_fold_ids(rows, strata, self.n_folds, self.seed) + 1
        elif self.n_folds:
            out = fold_ids(rows, self.n_folds, self.seed) + 1
        else:
            out = np.ones(rows.size, dtype=np.int64)
        if self.test_size is not None:
            out[holdout_mask(rows, self.test_size, self.seed)] = 0
        return out

    def label_order(self) -> tuple[list[int], list[str]]:
        """The fold groups sorted by label, and the sorted labels."""
        if not self.by_label:
            return list(range(1, max(self.n_folds, 1) + 1)), []
        ordered = sorted(self.labels.items())
        return [g for _, g in ordered], [lab for lab, _ in ordered]

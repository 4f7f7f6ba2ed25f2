"""Stability selection with complementary pairs, on micro-groups of rows.

With a fold or group column, the micro-groups are the label cells (each fold label, or each
bucket of whole groups), so a half-sample never splits a label. Otherwise they are the
micro-groups of :func:`l1select.folds.micro_ids` (a function of the row index and the seed). A
half-sample is a union of half the micro-groups, so the statistics engines get each half's
sufficient statistics by merging the micro-groups' statistics from their one pass; the
in-memory solvers take the same rows.

Pair ``b`` (of ``B``) splits the non-empty micro-groups at random into two disjoint halves of
equal count (Shah & Samworth's complementary pairs; with an odd count one group sits out).
The split is drawn from ``numpy.random.default_rng`` seeded with (seed, a fixed salt): the same
seed gives the same pairs in every engine.
"""

from __future__ import annotations

import numpy as np

from l1select.errors import DataError

# Keeps the pairs independent of the CV folds drawn from the same seed.
_SALT = 0x5DAB1E5


def half_pairs(counts: np.ndarray, n_pairs: int, seed: int) -> list[tuple[np.ndarray,
                                                                           np.ndarray]]:
    """``n_pairs`` complementary pairs of boolean masks over the micro-groups.

    Each pair splits the micro-groups that hold rows (``counts > 0``) into two disjoint halves
    of ``floor(m / 2)`` groups each.
    """
    rng = np.random.default_rng([int(seed) % (1 << 63), _SALT])
    live = np.flatnonzero(np.asarray(counts) > 0)
    half = live.size // 2
    pairs = []
    for _ in range(n_pairs):
        perm = rng.permutation(live)
        a = np.zeros(len(counts), dtype=bool)
        b = np.zeros(len(counts), dtype=bool)
        a[perm[:half]] = True
        b[perm[half:2 * half]] = True
        pairs.append((a, b))
    return pairs


def check_groups(counts: np.ndarray, what: str = "training rows") -> None:
    """At least 4 non-empty micro-groups (``what`` they are, for the message)."""
    if int((np.asarray(counts) > 0).sum()) < 4:
        raise DataError(f"--stability needs at least 4 {what} to split into "
                        "half-samples; use more data or leave out --stability")

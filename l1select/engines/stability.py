"""Stability selection with complementary pairs, on micro-groups of rows.

With a fold or group column, the micro-groups are the label cells (each fold label, or each
bucket of whole groups), so a half-sample never splits a label. Otherwise every training row
(the test split excluded) belongs to one of ``M`` micro-groups, a function
of its global row index and the seed, like the CV folds (balanced: in every block of ``M``
consecutive row indices each micro-group gets one row). A half-sample is a union of ``M/2``
micro-groups, so the statistics engine gets each half's sufficient statistics by merging the
micro-groups' statistics from its one streaming pass; the in-memory engines take the same rows.

Pair ``b`` (of ``B``) splits the non-empty micro-groups at random into two disjoint halves of
equal count (Shah & Samworth's complementary pairs; with an odd count one group sits out).
The split is drawn from ``numpy.random.default_rng`` seeded with (seed, a fixed salt): the same
seed gives the same pairs in every engine.
"""

from __future__ import annotations

import numpy as np

from l1select.folds import fold_ids

# Micro-groups per pass: half-samples are unions of 32 of them. 64 makes C(64, 32) ≈ 1.8e18
# possible halves, while the statistics stay small (64 matrices of (slots)²).
MICRO_GROUPS = 64
# ... unless 64 co-moment matrices would pass this many bytes; never fewer than 8 groups.
MICRO_BYTES = 1 << 30
MIN_MICRO_GROUPS = 8
# Keeps the micro-groups (and the pairs) independent of the CV folds drawn from the same seed.
_SALT = 0x5DAB1E5
_SEED_SHIFT = 0x632BE59BD9B4E019


def micro_count(n_slots: int) -> int:
    """How many micro-groups fit the memory budget for statistics of ``n_slots`` slots (even)."""
    fit = MICRO_BYTES // max(8 * n_slots * n_slots, 1)
    m = int(min(MICRO_GROUPS, max(MIN_MICRO_GROUPS, fit)))
    return m - (m % 2)


def micro_ids(rows: np.ndarray, n_groups: int, seed: int) -> np.ndarray:
    """The micro-group (0 … n_groups-1) of each global row index."""
    return fold_ids(rows, n_groups, (int(seed) + _SEED_SHIFT) % (1 << 64))


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
    from l1select.errors import DataError

    if int((np.asarray(counts) > 0).sum()) < 4:
        raise DataError(f"--stability needs at least 4 {what} to split into "
                        "half-samples; use more data or leave out --stability")

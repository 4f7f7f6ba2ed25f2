import numpy as np

from l1select.folds import fold_ids, holdout_mask, label_folds


def test_folds_are_balanced_and_cover_every_fold():
    f = fold_ids(np.arange(1003), 5, seed=0)
    sizes = np.bincount(f, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    assert set(f) == set(range(5))


def test_fold_of_a_row_depends_only_on_its_index_and_the_seed():
    full = fold_ids(np.arange(500), 7, seed=3)
    parts = np.concatenate([fold_ids(np.arange(a, b), 7, seed=3)
                            for a, b in [(0, 13), (13, 200), (200, 499), (499, 500)]])
    np.testing.assert_array_equal(full, parts)
    sparse = np.array([5, 77, 401])
    np.testing.assert_array_equal(fold_ids(sparse, 7, seed=3), full[sparse])


def test_seed_changes_the_folds():
    a, b = fold_ids(np.arange(200), 5, 0), fold_ids(np.arange(200), 5, 1)
    assert (a != b).mean() > 0.5


def test_test_mask_fraction_and_determinism():
    m = holdout_mask(np.arange(20000), 0.25, seed=2)
    assert abs(m.mean() - 0.25) < 0.02  # binomial sd is 0.003 here
    np.testing.assert_array_equal(m[100:200], holdout_mask(np.arange(100, 200), 0.25, seed=2))


def test_label_folds_maps_sorted_labels():
    f, labels = label_folds(np.array(["b", "a", "c", "a"]))
    assert labels == ["a", "b", "c"]
    np.testing.assert_array_equal(f, [1, 0, 2, 0])

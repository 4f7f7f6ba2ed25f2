import numpy as np

from l1select.cv import choose, cv_curve


def test_one_se_rule_on_a_hand_made_curve():
    alphas = np.array([10.0, 5.0, 2.0, 1.0, 0.5, 0.1])
    mean = np.array([9.0, 4.0, 3.05, 3.0, 2.9, 3.2])
    se = np.array([0.5, 0.3, 0.2, 0.2, 0.2, 0.3])
    c = choose(alphas, mean, se)
    assert c.i_min == 4  # 2.9 at alpha 0.5
    # min + se = 3.1: alphas 2.0 (3.05), 1.0, 0.5 qualify; the largest is 2.0.
    assert c.i_1se == 2


def test_one_se_equals_min_when_the_curve_is_sharp():
    alphas = np.array([3.0, 2.0, 1.0])
    c = choose(alphas, np.array([5.0, 1.0, 4.0]), np.array([0.1, 0.1, 0.1]))
    assert c.i_min == c.i_1se == 1


def test_ties_take_the_largest_alpha():
    alphas = np.array([3.0, 2.0, 1.0])
    c = choose(alphas, np.array([2.0, 1.0, 1.0]), np.zeros(3))
    assert c.i_min == 1


def test_cv_curve_weights_by_fold_size_and_uses_k_minus_one():
    mse = np.array([[1.0, 3.0], [2.0, 2.0]])
    sizes = np.array([1, 3])
    mean, se = cv_curve(mse, sizes)
    np.testing.assert_allclose(mean, [0.25 * 1 + 0.75 * 3, 2.0])
    var = 0.25 * (1 - 2.5) ** 2 + 0.75 * (3 - 2.5) ** 2
    np.testing.assert_allclose(se, [np.sqrt(var / 1), 0.0])

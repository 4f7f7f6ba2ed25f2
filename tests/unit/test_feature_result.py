"""FeatureResult.many: the objects FeatureResult(**row) makes, in bulk; and the garbage
collector paused while such objects are made."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from l1select.types import FeatureResult


def test_many_makes_what_the_constructor_makes():
    made = FeatureResult.many(name=["a", "b"], column=["a", "c"], coef=[1.5, 0.0],
                              coef_std=[2.0, 0.0], selected=[True, False],
                              fold_frequency=[0.8, None], odds_ratio=[None, 1.25])
    assert made == (
        FeatureResult(name="a", column="a", coef=1.5, coef_std=2.0, selected=True,
                      fold_frequency=0.8),
        FeatureResult(name="b", column="c", coef=0.0, coef_std=0.0, selected=False,
                      fold_frequency=None, odds_ratio=1.25))
    assert made[1].penalty_factor == 1.0 and made[1].alternates is None  # the defaults
    with pytest.raises(FrozenInstanceError):
        made[0].coef = 3.0  # type: ignore[misc]
    assert replace(made[0], coef_ols=0.5).coef_ols == 0.5


def test_the_recipes_specs_are_made_in_bulk_too():
    from l1select.types import ColumnSpec, FeatureSpec

    assert FeatureSpec.many(name=["a", "c=x"], column=["a", "c"], kind=["numeric", "onehot"],
                            level=[None, "x"]) == (FeatureSpec("a", "a", "numeric"),
                                                   FeatureSpec("c=x", "c", "onehot", "x"))
    assert ColumnSpec.many(name=["c"], kind=["categorical"], levels=[("x", "y")]) == (
        ColumnSpec("c", "categorical", ("x", "y")),)
    with pytest.raises(TypeError, match="FeatureSpec.many\\(\\) needs the field 'kind'"):
        FeatureSpec.many(name=["a"], column=["a"])


def test_many_refuses_unknown_missing_or_uneven_columns():
    with pytest.raises(TypeError, match="no field 'colour'"):
        FeatureResult.many(name=["a"], column=["a"], coef=[1.0], coef_std=[1.0],
                           selected=[True], colour=["red"])
    with pytest.raises(TypeError, match="needs the field 'coef_std'"):
        FeatureResult.many(name=["a"], column=["a"], coef=[1.0], selected=[True])
    with pytest.raises(ValueError, match="one length"):
        FeatureResult.many(name=["a", "b"], column=["a"], coef=[1.0], coef_std=[1.0],
                           selected=[True])


def test_the_garbage_collector_is_paused_in_the_block_and_restored_after():
    import gc

    from l1select._gc import paused

    was = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(RuntimeError), paused():
            assert not gc.isenabled()
            raise RuntimeError("a failing stage")
        assert gc.isenabled()
        gc.disable()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it stays as the caller had it
    finally:
        (gc.enable if was else gc.disable)()

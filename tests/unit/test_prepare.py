import numpy as np
import pyarrow as pa
import pytest

from l1select.errors import ConfigError, DataError
from l1select.prepare import build_recipe, design_matrix, needed_columns


def _recipe(table, target="y", max_levels=20):
    return build_recipe(table, target, None, max_levels, "t.csv")


def test_column_kinds_and_warnings():
    n = 30
    table = pa.table({
        "id": pa.array(range(n)),
        "num": pa.array(np.linspace(0, 1, n)),
        "flag": pa.array([i % 2 == 0 for i in range(n)]),
        "city": pa.array(["a", "b", "c"] * 10),
        "free": pa.array([f"text {i}" for i in range(n)]),
        "when": pa.array(np.arange(n).astype("datetime64[D]")),
        "amount": pa.array([f"{1000 + i:,}" for i in range(n)]),
        "nested": pa.array([[i] for i in range(n)]),
        "empty": pa.nulls(n),
        "y": pa.array(np.arange(n, dtype=float)),
    })
    recipe, warnings = _recipe(table)
    assert recipe.feature_names == ["num", "flag", "city=a", "city=b", "city=c", "amount"]
    text = " ".join(w.message for w in warnings)
    for name in ("id", "free", "when", "nested", "empty"):
        assert name in text
    d = design_matrix(table, recipe, "t.csv")
    np.testing.assert_array_equal(d.X[:3, 2:5], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert d.X[5, 5] == 1005.0
    assert d.X[0, 1] == 1.0 and d.X[1, 1] == 0.0


def test_missing_category_is_missing_in_every_level():
    table = pa.table({"c": ["a", None, "b"], "y": [1.0, 2.0, 3.0]})
    recipe, _ = _recipe(table)
    d = design_matrix(table, recipe, "t.csv")
    assert np.isnan(d.X[1]).all() and d.X[0].tolist() == [1.0, 0.0]


def test_numeric_text_with_missing_markers():
    table = pa.table({"v": ["1.5", "?", "2"], "y": [1.0, 2.0, 3.0]})
    recipe, warnings = _recipe(table)
    d = design_matrix(table, recipe, "t.csv")
    assert np.isnan(d.X[1, 0]) and d.X[0, 0] == 1.5
    assert any(w.code == "missing_markers" for w in warnings)


def test_target_errors():
    with pytest.raises(DataError, match="not numeric"):
        _recipe(pa.table({"x": [1.0, 2.0], "y": ["a", "b"]}))
    with pytest.raises(DataError, match="did you mean 'price'"):
        needed_columns(["price", "x"], "prce", (), (), None, "t.csv")


def test_infinite_value_names_column_and_line():
    table = pa.table({"x": [1.0, np.inf, 2.0], "y": [1.0, 2.0, 3.0]})
    recipe, _ = _recipe(table)
    with pytest.raises(DataError, match=r"'x'.*line 3"):
        design_matrix(table, recipe, "t.csv")


def test_feature_patterns():
    names = ["a1", "a2", "b", "y"]
    cols, _ = needed_columns(names, "y", ("a*",), ("a2",), None, "t.csv")
    assert cols == ["a1", "y"]
    with pytest.raises(ConfigError, match="matches no column"):
        needed_columns(names, "y", ("zz*",), (), None, "t.csv")

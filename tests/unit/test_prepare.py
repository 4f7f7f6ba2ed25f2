import numpy as np
import pyarrow as pa
import pytest

from l1select.errors import ConfigError, DataError
from l1select.prepare import Profiler, design_matrix, needed_columns


def _recipe(table, target="y", max_levels=20, batch_rows=None):
    prof = Profiler(table.schema, target, None, max_levels, "mean", "t.csv")
    step = batch_rows or max(table.num_rows, 1)
    for start in range(0, table.num_rows, step):
        prof.update(table.slice(start, step), start)
    recipe, warnings, _ = prof.recipe()
    return recipe, warnings


def _table(n=30):
    return pa.table({
        "id": pa.array(range(n)),
        "num": pa.array(np.linspace(0, 1, n)),
        "flag": pa.array([i % 2 == 0 for i in range(n)]),
        "city": pa.array(["a", "b", "c"] * (n // 3)),
        "free": pa.array([f"text {i}" for i in range(n)]),
        "when": pa.array(np.arange(n).astype("datetime64[D]")),
        "amount": pa.array([f"{1000 + i:,}" for i in range(n)]),
        "nested": pa.array([[i] for i in range(n)]),
        "empty": pa.nulls(n, pa.string()),
        "y": pa.array(np.arange(n, dtype=float)),
    })


def test_column_kinds_and_warnings():
    table = _table()
    recipe, warnings = _recipe(table)
    assert recipe.feature_names == ["num", "flag", "city=a", "city=b", "city=c", "amount"]
    text = " ".join(w.message for w in warnings)
    for name in ("id", "free", "when", "nested", "empty"):
        assert name in text
    X = design_matrix(table, recipe)
    np.testing.assert_array_equal(X[:3, 2:5], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert X[5, 5] == 1005.0
    assert X[0, 1] == 1.0 and X[1, 1] == 0.0


@pytest.mark.parametrize("batch_rows", [1, 4, 7])
def test_the_recipe_does_not_depend_on_the_batches(batch_rows):
    table = _table()
    assert _recipe(table, batch_rows=batch_rows) == _recipe(table)


def test_a_text_column_that_stops_being_numeric_late_is_categorical():
    vals = ["1", "2", "1", "2", "x", "1"]
    table = pa.table({"v": vals, "y": np.arange(6.0)})
    one, _ = _recipe(table, batch_rows=2)
    assert one.feature_names == ["v=1", "v=2", "v=x"]


def test_missing_category_is_missing_in_every_level():
    table = pa.table({"c": ["a", None, "b"], "y": [1.0, 2.0, 3.0]})
    recipe, _ = _recipe(table)
    X = design_matrix(table, recipe)
    assert np.isnan(X[1]).all() and X[0].tolist() == [1.0, 0.0]


def test_target_errors():
    with pytest.raises(DataError, match="not numeric"):
        _recipe(pa.table({"x": [1.0, 2.0], "y": ["a", "b"]}))
    with pytest.raises(DataError, match="did you mean 'price'"):
        needed_columns(["price", "x"], "prce", (), (), None, "t.csv")


def test_infinite_value_names_column_and_line():
    table = pa.table({"x": [1.0, np.inf, 2.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"'x'.*line 3"):
        _recipe(table)


def test_feature_patterns():
    names = ["a1", "a2", "b", "y"]
    cols, _ = needed_columns(names, "y", ("a*",), ("a2",), None, "t.csv")
    assert cols == ["a1", "y"]
    with pytest.raises(ConfigError, match="matches no column"):
        needed_columns(names, "y", ("zz*",), (), None, "t.csv")


def test_decimal_commas_in_a_semicolon_file(tmp_path):
    from l1select.pipeline import select_features
    from l1select.types import FitParams

    rng = np.random.default_rng(0)
    x = rng.normal(size=150)
    z = rng.normal(size=150) * 1000
    y = 2 * x + rng.normal(size=150)

    def eu(v):  # 1.234,5 style
        s = f"{v:,.3f}"
        return s.replace(",", "_").replace(".", ",").replace("_", ".")

    lines = ["x;z;y"] + [f"{eu(a)};{eu(b)};{eu(c)}" for a, b, c in zip(x, z, y, strict=True)]
    path = tmp_path / "euro.csv"
    path.write_text("\n".join(lines) + "\n")
    res = select_features(str(path), FitParams(target="y", alpha=0.01))
    coef = {f.name: f.coef for f in res.features}
    # Read as 2.0-ish on x: a thousands reading would have scaled x or y by 1000.
    assert 1.7 < coef["x"] < 2.3
    kinds = {c["name"]: c["kind"] for c in res.recipe["columns"]}
    assert kinds["x"] == "decimal_comma" and kinds["z"] == "decimal_comma"


def test_currency_and_thousands_in_a_target_and_a_feature():
    table = pa.table({"cost": ["$1,200.50", "$950", None, "-$3.25"],
                      "price": ["$1,000,000", "$2,500.75", "$3,000", "$10"]})
    recipe, _ = _recipe(table, target="price")
    X = design_matrix(table, recipe)
    np.testing.assert_array_equal(X[[0, 1, 3], 0], [1200.5, 950.0, -3.25])
    prof = Profiler(table.schema, "price", None, 20, "mean", "t.csv")
    b = prof.update(table, 0)
    np.testing.assert_array_equal(b.U[:, 0], [1_000_000.0, 2500.75, 3000.0, 10.0])


def _kinds(table, batch_rows=None, explicit=()):
    prof = Profiler(table.schema, "y", None, 20, "mean", "t.csv", explicit=explicit)
    step = batch_rows or max(table.num_rows, 1)
    for start in range(0, table.num_rows, step):
        prof.update(table.slice(start, step), start)
    recipe, warnings, _ = prof.recipe()
    return recipe.feature_names, " ".join(w.message for w in warnings)


@pytest.mark.parametrize("batch_rows", [None, 1, 4, 7])
def test_only_a_row_counter_or_an_id_name_makes_an_integer_column_an_id(batch_rows):
    n = 16
    rng = np.random.default_rng(0)
    table = pa.table({
        "Year": np.arange(1947, 1947 + n),          # sorted, steps of +1: a feature
        "count": np.sort(rng.integers(0, 50, n)),   # a sorted count: a feature
        "down": np.arange(n, 0, -1),                # n…1 does not count rows in file order
        "gappy": np.r_[np.arange(n - 1), n],        # 0…n−2 then n: not exactly the rows
        "rows0": np.arange(n),                      # 0…n−1: row numbers
        "rows1": np.arange(1, n + 1),               # 1…n: row numbers
        "paid": rng.integers(0, 9, n),              # ends in "id" but is no ID name
        "y": rng.normal(size=n),
    })
    names, text = _kinds(table, batch_rows)
    assert names == ["Year", "count", "down", "gappy", "paid"]
    assert "row numbers" in text and "rows0" in text and "rows1" in text


def test_a_row_counter_with_a_missing_value_is_a_feature():
    table = pa.table({"c": pa.array([0, 1, None, 3, 4, 5]), "y": np.arange(6.0) ** 2})
    names, _ = _kinds(table)
    assert names == ["c"]


@pytest.mark.parametrize("name", ["id", "ID", "Id", " id ", "customer_id", "Order ID", "index",
                                  "row", "RowNum", "unnamed_1", "Unnamed: 0"])
def test_id_names_exclude_integer_columns(name):
    rng = np.random.default_rng(1)
    table = pa.table({name: rng.permutation(40) * 3 + 7, "x": rng.normal(size=40),
                      "y": rng.normal(size=40)})
    names, text = _kinds(table)
    assert names == ["x"]
    assert f"ID-like (an ID name): {name}; pass --features {name} to use it" in text


def test_a_float_column_with_an_id_name_is_a_feature():
    rng = np.random.default_rng(2)
    table = pa.table({"id": rng.normal(size=20), "y": rng.normal(size=20)})
    assert _kinds(table)[0] == ["id"]


@pytest.mark.parametrize("batch_rows", [None, 3])
def test_an_explicit_feature_beats_the_guesses(batch_rows):
    n = 12
    table = pa.table({
        "id": np.arange(n),
        "when": pa.array(np.arange(n) % 3, type=pa.int64()).cast(pa.int32()).cast(
            pa.date32()),
        "day": [f"2024-01-0{1 + i % 3}" for i in range(n)],
        "x": np.linspace(0, 1, n),
        "y": np.arange(n, dtype=float) % 5,
    })
    names, text = _kinds(table, batch_rows)
    assert names == ["x"]
    # Each exclusion says which flag keeps the column.
    assert "ID-like (an ID name): id; pass --features id to use it" in text
    assert "date/time: when, day; pass --features NAME to one-hot encode its values" in text
    names, _ = _kinds(table, batch_rows, explicit=("id", "when", "day", "x"))
    assert names == ["id", "when=1970-01-01", "when=1970-01-02", "when=1970-01-03",
                     "day=2024-01-01", "day=2024-01-02", "day=2024-01-03", "x"]


def test_an_explicit_feature_that_cannot_be_used_is_an_error():
    n = 30
    table = pa.table({"free": [f"text {i}" for i in range(n)],
                      "empty": pa.nulls(n, pa.float64()),
                      "nested": pa.array([[i] for i in range(n)]),
                      "x": np.linspace(0, 1, n), "y": np.arange(n, dtype=float)})
    with pytest.raises(DataError, match=r"'free'.*named in --features.*more than 20 distinct "
                                        r"values; raise --max-levels"):
        _kinds(table, explicit=("free",))
    with pytest.raises(DataError, match=r"'empty'.*all values missing.*remove it from "
                                        "--features"):
        _kinds(table, explicit=("empty",))
    with pytest.raises(DataError, match=r"'nested'.*nested, which cannot be a feature"):
        _kinds(table, explicit=("nested",))


def test_float_columns_read_from_their_buffers_equal_arrows_cast_and_fill():
    # prepare._floats reads float64 columns from their buffers (missing values from the
    # validity bits, no pyarrow.compute); other types go through Arrow's cast and fill_null.
    import pyarrow.compute as pc

    from l1select.prepare import _floats

    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(0, 50))
        vals = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, size=n)
        vals[rng.random(n) < 0.1] = np.nan
        arr = pa.array(vals, type=pa.float64(), mask=rng.random(n) < 0.3)
        start = int(rng.integers(0, n + 1))
        for a in (arr, arr.slice(start), pa.chunked_array([arr.slice(start), arr.slice(0, start)],
                                                            type=pa.float64())):
            flat = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
            want = pc.fill_null(flat, np.nan).to_numpy(zero_copy_only=False)
            np.testing.assert_array_equal(_floats(a), want)
    ints = pa.array([1, None, 3], type=pa.int32())
    np.testing.assert_array_equal(_floats(ints), [1.0, np.nan, 3.0])

"""Huge, tiny and subnormal values: fitted exactly where the numbers allow, else one clear error.

The lasso on standardized features does not depend on a column's scale. Scaling a column by a
power of two is exact, so data scaled by 2^±996 must give the same fit, with coefficients scaled
by 2^∓996, on every engine.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from l1select.errors import DataError
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import make_regression, write_csv

ENGINES = ["gram", "data", "reference"]


def _fit(path, engine, **kw):
    params = dict(target="y", engine=engine, cv=3, n_alphas=20)
    params.update(kw)
    # No floating-point warning may be raised on the way (they would leak to stderr).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return select_features(str(path), FitParams(**params))


@pytest.fixture(scope="module")
def data():
    X, y, _ = make_regression(n=120, p=5, seed=7)
    return X, y


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("power", [996, -996, 300])
def test_a_column_scaled_by_a_power_of_two_fits_the_same(tmp_path, data, engine, power):
    X, y = data
    base = _fit(write_csv(tmp_path / "a.csv", X, y), engine)
    scaled = X.copy()
    scaled[:, :3] = np.ldexp(X[:, :3], power)  # three columns huge (or tiny), two as they were
    res = _fit(write_csv(tmp_path / "b.csv", scaled, y), engine)
    assert res.selected == base.selected
    assert res.alpha == base.alpha
    a = np.array([f.coef for f in base.features])
    b = np.array([f.coef for f in res.features])
    b[:3] = np.ldexp(b[:3], power)
    # Exact in exact arithmetic and in IEEE arithmetic too (power-of-two scaling commutes with
    # rounding); 1e-12 only leaves room for BLAS summing in another order on other shapes.
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=0)
    assert res.intercept == pytest.approx(base.intercept, rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_values_of_1e300_fit_like_their_mantissas(tmp_path, data, engine):
    X, y = data
    huge = X * 1e300  # not a power of two: the same fit within rounding of the data itself
    base = _fit(write_csv(tmp_path / "a.csv", X, y), engine)
    res = _fit(write_csv(tmp_path / "b.csv", huge, y), engine)
    assert res.selected == base.selected
    # The CSV holds 17 digits of X·1e300, not of X: agreement to ~1e-15 relative per value,
    # which the solver's duality-gap tolerance (1e-10) dwarfs.
    np.testing.assert_allclose([f.coef * 1e300 for f in res.features],
                               [f.coef for f in base.features], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_subnormal_values_are_a_clear_error(tmp_path, data, engine):
    X, y = data
    tiny = X.copy()
    tiny[:, 1] *= 1e-320
    with pytest.raises(DataError, match=r"Column 'x1'.*smallest normal double.*multiply the "
                                        "column"):
        _fit(write_csv(tmp_path / "a.csv", tiny, y), engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_huge_target_is_a_clear_error_with_its_line(tmp_path, data, engine):
    X, y = data
    big = y.copy()
    big[4] = 1e200
    with pytest.raises(DataError, match=r"Column 'y'.*too large.*line 6.*divide the target"):
        _fit(write_csv(tmp_path / "a.csv", X, big), engine)
    with pytest.raises(DataError, match=r"Target column 'y'.*smaller than 1e-150.*multiply"):
        _fit(write_csv(tmp_path / "b.csv", X, y * 1e-200), engine)


def test_a_value_far_beyond_a_columns_first_batch_is_a_clear_error():
    import pyarrow as pa

    from l1select.prepare import Profiler

    x = np.ones(120)
    x[::2] = -1.0
    x[100] = 1e300  # held like the first batch's values (about 1): its square overflows
    table = pa.table({"x": x, "y": np.arange(120.0)})
    prof = Profiler(table.schema, "y", None, 20, "mean", "t.csv")
    prof.update(table.slice(0, 50), 0)
    prof.update(table.slice(50, 50), 50)
    with pytest.raises(DataError, match=r"Column 'x'.*\(1e\+300\) too large beside.*line 102"):
        prof.update(table.slice(100, 20), 100)
    # One batch: the column is held scaled from the start, and fits.
    prof = Profiler(table.schema, "y", None, 20, "mean", "t.csv")
    prof.update(table, 0)
    assert prof.units()["x"] == 2.0 ** -997


def test_huge_values_without_standardization_are_a_clear_error(tmp_path, data):
    X, y = data
    with pytest.raises(DataError, match="without standardization"):
        _fit(write_csv(tmp_path / "a.csv", X * 1e300, y), "gram", standardize=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_over_long_number_written_as_text_is_a_clear_error(tmp_path, data, engine):
    X, y = data
    lines = ["a,b,y"] + [f'"{1000 * a:,.2f}",{b!r},{t!r}' for a, b, t in
                         zip(X[:, 0].tolist(), X[:, 1].tolist(), y.tolist(), strict=True)]
    lines[6] = '"1,' + "000," * 130 + '000",1,2'  # beyond 1.8e308: read as infinity
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"Column 'a'.*beyond ±1.8e308.*line 7"):
        _fit(path, engine)

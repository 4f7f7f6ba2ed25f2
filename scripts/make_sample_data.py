#!/usr/bin/env python
"""Generate the synthetic housing sample data set used to try out ``l1select``.

Run from the repository root::

    python scripts/make_sample_data.py

It writes ``sample_data/housing.csv`` and ``sample_data/housing.parquet``.
Everything is drawn from one ``numpy.random.default_rng(SEED)`` generator (no
global random state), and both files are written deterministically, so a
rerun reproduces them byte for byte (with the same numpy / pyarrow versions).

Generating model
----------------
3,000 sales, one row each, sorted by ``sale_date``; ``listing_id`` ("L00001",
...) follows that order.  Features are drawn first and rounded to the
precision stored in the files; the price is then computed from those *stored*
values, so the coefficients below hold exactly for the data as written::

    price = 40,000
            + 150     * sqft
            + 5,000   * bedrooms
            + 12,000  * bathrooms
            - 1,200   * age_years
            + 2       * lot_size
            + 9,000   * garage_spaces
            + 15,000  * has_pool
            - 6,000   * distance_to_center_km
            + 18,000  * school_rating
            + NEIGHBORHOOD_EFFECT[neighborhood]
            + eps,        eps ~ Normal(0, 65,000)

then rounded to whole dollars.  The noise level gives the true model an R^2
of about 0.8 on this sample.

True coefficients (dollars of price per unit of the column)::

    column                   true coef   notes
    sqft                       150       total floor area, integer sq ft
    sqft_living_area             0       ~0.9 correlated with sqft; NOT in model
    bedrooms                 5,000       correlated with sqft (~0.85)
    bathrooms               12,000       half-baths as .5
    age_years               -1,200
    lot_size                     2       sq ft; ~4% missing
    garage_spaces            9,000       0-3; ~5% missing
    has_pool                15,000       boolean (True adds 15,000)
    distance_to_center_km   -6,000       depends on neighborhood
    school_rating           18,000       1.0-10.0; ~3% missing
    neighborhood          (levels)       Oakwood 0 (reference),
                                         Downtown +60,000, Hillcrest +90,000,
                                         Lakeview +40,000, Riverside -25,000
    listing_views                0       pure noise
    days_on_market               0       pure noise
    photo_count                  0       pure noise
    zip_digit_sum                0       pure noise
    agent_experience_years       0       pure noise
    sale_date                    0       2022-01-01 .. 2023-12-31, no effect
    listing_id                   -       unique identifier, not a feature

Missing values are introduced completely at random *after* the price has been
computed from the full values: exactly 120 ``lot_size`` (4%), 90
``school_rating`` (3%) and 150 ``garage_spaces`` (5%) cells, and exactly 10
``price`` cells.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20240517
N_ROWS = 3000
NOISE_SD = 65_000.0

INTERCEPT = 40_000.0
COEFS = {
    "sqft": 150.0,
    "sqft_living_area": 0.0,
    "bedrooms": 5_000.0,
    "bathrooms": 12_000.0,
    "age_years": -1_200.0,
    "lot_size": 2.0,
    "garage_spaces": 9_000.0,
    "has_pool": 15_000.0,
    "distance_to_center_km": -6_000.0,
    "school_rating": 18_000.0,
    "listing_views": 0.0,
    "days_on_market": 0.0,
    "photo_count": 0.0,
    "zip_digit_sum": 0.0,
    "agent_experience_years": 0.0,
}
# Additive price offset per neighborhood (Oakwood is the reference level).
NEIGHBORHOODS = ["Downtown", "Hillcrest", "Lakeview", "Oakwood", "Riverside"]
NEIGHBORHOOD_PROBS = [0.15, 0.20, 0.15, 0.30, 0.20]
NEIGHBORHOOD_EFFECT = {
    "Downtown": 60_000.0,
    "Hillcrest": 90_000.0,
    "Lakeview": 40_000.0,
    "Oakwood": 0.0,
    "Riverside": -25_000.0,
}
# Typical distance from the city center (km) per neighborhood.
NEIGHBORHOOD_DISTANCE = {
    "Downtown": 2.0,
    "Hillcrest": 8.0,
    "Lakeview": 12.0,
    "Oakwood": 10.0,
    "Riverside": 6.0,
}
N_MISSING = {"lot_size": 120, "school_rating": 90, "garage_spaces": 150, "price": 10}

START_DATE = _dt.date(2022, 1, 1)
END_DATE = _dt.date(2023, 12, 31)

# Column order of the output files, with their Arrow types.
SCHEMA = pa.schema(
    [
        ("listing_id", pa.string()),
        ("sale_date", pa.date32()),
        ("neighborhood", pa.string()),
        ("sqft", pa.int64()),
        ("sqft_living_area", pa.int64()),
        ("bedrooms", pa.int64()),
        ("bathrooms", pa.float64()),
        ("age_years", pa.int64()),
        ("lot_size", pa.int64()),
        ("garage_spaces", pa.int64()),
        ("has_pool", pa.bool_()),
        ("distance_to_center_km", pa.float64()),
        ("school_rating", pa.float64()),
        ("listing_views", pa.int64()),
        ("days_on_market", pa.int64()),
        ("photo_count", pa.int64()),
        ("zip_digit_sum", pa.int64()),
        ("agent_experience_years", pa.int64()),
        ("price", pa.int64()),
    ]
)
# Decimal places used in the CSV for float columns.
FLOAT_DECIMALS = {"bathrooms": 1, "distance_to_center_km": 1, "school_rating": 1}


def generate(seed: int = SEED, n: int = N_ROWS) -> dict[str, np.ndarray]:
    """Return the columns as numpy arrays; NaN / masked entries mark missing."""
    rng = np.random.default_rng(seed)

    # Sale dates, sorted so that listing ids follow the calendar.
    n_days = (END_DATE - START_DATE).days + 1
    day_offsets = np.sort(rng.integers(0, n_days, size=n))
    sale_date = np.datetime64(START_DATE.isoformat(), "D") + day_offsets

    neighborhood = rng.choice(NEIGHBORHOODS, size=n, p=NEIGHBORHOOD_PROBS)

    sqft = np.clip(np.round(rng.lognormal(np.log(1800.0), 0.35, size=n)), 600, 6000)
    # ~0.9 correlated with sqft but not part of the price model.
    sqft_living_area = np.round(
        np.clip(0.85 * sqft + rng.normal(0.0, 0.85 * 0.48 * sqft.std(), size=n), 400, None)
    )
    bedrooms = np.clip(np.round(sqft / 600.0 + rng.normal(0.0, 0.6, size=n)), 1, 6)
    bathrooms = np.clip(
        np.round(2.0 * (0.6 * bedrooms + rng.normal(0.0, 0.45, size=n))) / 2.0, 1.0, 4.5
    )
    age_years = np.clip(np.round(rng.gamma(2.0, 15.0, size=n)), 0, 110)
    lot_size = np.clip(np.round(rng.lognormal(np.log(7000.0), 0.45, size=n), -1), 1000, 40000)
    garage_spaces = rng.choice([0, 1, 2, 3], size=n, p=[0.15, 0.30, 0.45, 0.10]).astype(float)
    has_pool = rng.random(size=n) < 0.12
    base_dist = np.array([NEIGHBORHOOD_DISTANCE[k] for k in neighborhood])
    distance = np.clip(np.round(base_dist * rng.lognormal(0.0, 0.35, size=n), 1), 0.3, 40.0)
    school_rating = np.clip(np.round(rng.normal(6.5, 1.6, size=n), 1), 1.0, 10.0)

    # Pure-noise columns.
    listing_views = np.round(rng.lognormal(np.log(350.0), 0.6, size=n))
    days_on_market = np.round(rng.gamma(1.5, 20.0, size=n))
    photo_count = rng.integers(5, 41, size=n).astype(float)
    zips = rng.integers(98001, 98200, size=n)
    zip_digit_sum = np.array([sum(int(c) for c in str(z)) for z in zips], dtype=float)
    agent_experience_years = np.clip(np.round(rng.gamma(2.0, 5.0, size=n)), 0, 45)

    cols: dict[str, np.ndarray] = {
        "sqft": sqft,
        "sqft_living_area": sqft_living_area,
        "bedrooms": bedrooms,
        "bathrooms": bathrooms,
        "age_years": age_years,
        "lot_size": lot_size,
        "garage_spaces": garage_spaces,
        "has_pool": has_pool,
        "distance_to_center_km": distance,
        "school_rating": school_rating,
        "listing_views": listing_views,
        "days_on_market": days_on_market,
        "photo_count": photo_count,
        "zip_digit_sum": zip_digit_sum,
        "agent_experience_years": agent_experience_years,
    }

    signal = np.full(n, INTERCEPT)
    for name, coef in COEFS.items():
        signal = signal + coef * cols[name].astype(float)
    signal = signal + np.array([NEIGHBORHOOD_EFFECT[k] for k in neighborhood])
    price = np.round(signal + rng.normal(0.0, NOISE_SD, size=n))

    cols["price"] = price
    cols["listing_id"] = np.array([f"L{i:05d}" for i in range(1, n + 1)])
    cols["sale_date"] = sale_date
    cols["neighborhood"] = neighborhood

    # Missing completely at random, after the price has been computed.
    for name, k in N_MISSING.items():
        idx = rng.choice(n, size=k, replace=False)
        vals = cols[name].astype(float)
        vals[idx] = np.nan
        cols[name] = vals

    return {field.name: cols[field.name] for field in SCHEMA}


def to_arrow(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays = []
    for field in SCHEMA:
        values = cols[field.name]
        if pa.types.is_string(field.type):
            arr = pa.array(values.tolist(), type=pa.string())
        elif pa.types.is_date32(field.type):
            arr = pa.array(values.astype("datetime64[D]"), type=pa.date32())
        elif pa.types.is_boolean(field.type):
            arr = pa.array(values.astype(bool), type=pa.bool_())
        else:
            v = values.astype(float)
            mask = np.isnan(v)
            if pa.types.is_integer(field.type):
                arr = pa.array(np.where(mask, 0, v).astype(np.int64), mask=mask, type=pa.int64())
            else:
                arr = pa.array(np.where(mask, 0.0, v), mask=mask, type=pa.float64())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _fmt(name: str, value) -> str:
    if name == "has_pool":
        return "true" if value else "false"
    if name == "sale_date":
        return str(np.datetime64(value, "D"))
    if isinstance(value, str):
        return value
    v = float(value)
    if np.isnan(v):
        return ""
    if name in FLOAT_DECIMALS:
        return f"{v:.{FLOAT_DECIMALS[name]}f}"
    return str(int(v))


def write_csv(cols: dict[str, np.ndarray], path: Path) -> None:
    names = [f.name for f in SCHEMA]
    lines = [",".join(names)]
    n = len(cols[names[0]])
    for i in range(n):
        lines.append(",".join(_fmt(name, cols[name][i]) for name in names))
    path.write_bytes(("\n".join(lines) + "\n").encode("ascii"))


def main() -> None:
    out_dir = Path(__file__).resolve().parent.parent / "sample_data"
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = generate()
    write_csv(cols, out_dir / "housing.csv")
    pq.write_table(to_arrow(cols), out_dir / "housing.parquet", compression="snappy")
    print(f"wrote {out_dir / 'housing.csv'} and {out_dir / 'housing.parquet'}")


if __name__ == "__main__":
    main()

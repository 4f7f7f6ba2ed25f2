"""Prepare: decide what each column means and build the numeric design.

A :class:`~l1select.types.Recipe` says which source columns are read and how each becomes
features; :func:`design_matrix` applies it to a table. Missing feature values stay NaN here:
imputation depends on the training fold and happens downstream.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from l1select.errors import ConfigError, DataError, did_you_mean, list_names
from l1select.types import ColumnSpec, FeatureSpec, Recipe, Warn

_THOUSANDS = re.compile(r"^\s*[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?\s*$")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?\s*$"
)
# Tokens that mean "missing" in a column that is otherwise numeric.
_MISSING_TOKENS = {"?", "-", "--", ".", "na", "n.a.", "missing", "none", "nil", "#value!",
                   "#div/0!", "#ref!", "#num!", "unknown"}
_ID_NAME = re.compile(
    r"(^|[_\s.-])(id|uuid|guid|key|index|idx)$|^(id|index|row|rownum|unnamed_\d+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Design:
    """The numeric design: ``X`` (n_samples, n_features) with NaN for missing values, ``y``."""

    X: np.ndarray
    y: np.ndarray


def _match(patterns: tuple[str, ...], names: list[str], option: str, strict: bool,
           warnings: list[Warn]) -> set[str]:
    chosen: set[str] = set()
    for pat in patterns:
        hits = [n for n in names if n == pat or fnmatch.fnmatchcase(n, pat)]
        if not hits:
            hint = did_you_mean(pat, names)
            msg = (f"{option} '{pat}' matches no column"
                   f"{'; ' + hint if hint else ''} (columns: {list_names(names)})")
            if strict:
                raise ConfigError(msg)
            warnings.append(Warn("unmatched_pattern", msg))
        chosen.update(hits)
    return chosen


def needed_columns(names: list[str], target: str, features: tuple[str, ...],
                   exclude: tuple[str, ...], fold_column: str | None,
                   source: str) -> tuple[list[str], list[Warn]]:
    """The source columns to read: the target, the fold column and the candidate features."""
    warnings: list[Warn] = []
    if target not in names:
        hint = did_you_mean(target, names)
        raise DataError(
            f"Target column '{target}' not found in {source}"
            f"{'; ' + hint if hint else ''} (columns: {list_names(names)})"
        )
    if fold_column is not None and fold_column not in names:
        hint = did_you_mean(fold_column, names)
        raise DataError(
            f"Fold column '{fold_column}' not found in {source}"
            f"{'; ' + hint if hint else ''} (columns: {list_names(names)})"
        )
    special = {target, fold_column}
    candidates = [n for n in names if n not in special]
    if features:
        keep = _match(features, candidates, "--features", True, warnings)
        candidates = [n for n in candidates if n in keep]
    if exclude:
        drop = _match(exclude, candidates, "--exclude", False, warnings)
        candidates = [n for n in candidates if n not in drop]
    if not candidates:
        raise ConfigError(
            f"No feature columns left in {source} after --features/--exclude; "
            "choose at least one column besides the target"
        )
    wanted = set(candidates) | {target} | ({fold_column} if fold_column else set())
    return [n for n in names if n in wanted], warnings


def _as_float(arr: pa.ChunkedArray) -> np.ndarray:
    if arr.num_chunks == 0:
        return np.empty(0, dtype=np.float64)
    return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _string_values(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    return arr


def _parse_numeric_text(values: list[str]) -> str | None:
    """``thousands`` or ``numeric`` if every non-missing value is such a number, else None."""
    real = [v for v in values if v.strip().lower() not in _MISSING_TOKENS]
    if not real:
        return None
    if all(_NUMBER.match(v) for v in real):
        return "numeric_text"
    if all(_THOUSANDS.match(v) for v in real):
        return "thousands"
    return None


def text_to_float(arr: pa.ChunkedArray, kind: str) -> np.ndarray:
    """Numbers written as text (with thousands separators, or with missing markers) as floats."""
    values = _string_values(arr)
    out = np.full(len(values), np.nan)
    pylist = values.to_pylist()
    for i, v in enumerate(pylist):
        if v is None:
            continue
        s = v.strip()
        if s.lower() in _MISSING_TOKENS:
            continue
        out[i] = float(s.replace(",", "")) if kind == "thousands" else float(s)
    return out


def _is_id_like(name: str, values: np.ndarray) -> bool:
    """An integer column of row numbers or of unique codes under an ID-like name."""
    obs = values[~np.isnan(values)]
    if obs.size < 3 or not np.all(obs == np.round(obs)):
        return False
    unique = np.unique(obs)
    if unique.size != obs.size:
        return False
    if _ID_NAME.search(name):
        return True
    diffs = np.diff(obs)
    return bool(np.all(diffs == 1) or np.all(diffs == -1))


def build_recipe(table: pa.Table, target: str, fold_column: str | None, max_levels: int,
                 source: str) -> tuple[Recipe, list[Warn]]:
    """Classify the columns of ``table`` and list the features they make."""
    warnings: list[Warn] = []
    columns: list[ColumnSpec] = []
    features: list[FeatureSpec] = []
    excluded: dict[str, list[str]] = {}

    for name in table.column_names:
        if name in (target, fold_column):
            continue
        arr = table.column(name)
        t = arr.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_null(t) or arr.null_count == len(arr):
            excluded.setdefault("all values missing", []).append(name)
        elif pa.types.is_boolean(t):
            columns.append(ColumnSpec(name, "bool"))
            features.append(FeatureSpec(name, name, "bool"))
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            values = _as_float(arr)
            if pa.types.is_integer(t) and _is_id_like(name, values):
                excluded.setdefault("ID-like (unique integers)", []).append(name)
                continue
            columns.append(ColumnSpec(name, "numeric"))
            features.append(FeatureSpec(name, name, "numeric"))
        elif pa.types.is_temporal(t):
            excluded.setdefault("date/time", []).append(name)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            distinct = pc.unique(_string_values(arr).drop_null()).to_pylist()
            kind = _parse_numeric_text(distinct)
            if kind is not None:
                columns.append(ColumnSpec(name, kind))
                features.append(FeatureSpec(name, name, "numeric"))
                if kind == "numeric_text":
                    markers = sorted({v for v in distinct if not _NUMBER.match(v)})
                    warnings.append(Warn(
                        "missing_markers",
                        f"Column '{name}' is numeric with {list_names(markers)} read as missing",
                    ))
            elif all(_DATE_LIKE.match(v) for v in distinct[:1000]):
                excluded.setdefault("date/time", []).append(name)
            elif len(distinct) > max_levels:
                what = "ID-like" if len(distinct) == arr.length() - arr.null_count else "free text"
                excluded.setdefault(
                    f"text with more than {max_levels} distinct values ({what}; "
                    "raise --max-levels to one-hot encode)", []).append(name)
            else:
                levels = tuple(sorted(distinct))
                columns.append(ColumnSpec(name, "categorical", levels))
                features.extend(
                    FeatureSpec(f"{name}={lv}", name, "onehot", lv) for lv in levels
                )
        else:
            excluded.setdefault(f"unsupported type {t}", []).append(name)

    for reason, names in excluded.items():
        code = "excluded_all_missing" if reason == "all values missing" else "excluded_column"
        warnings.append(Warn(code, f"Excluded {reason}: {list_names(names, 20)}"))
    target_kind = _target_kind(table.column(target), target, source)
    columns.append(ColumnSpec(target, target_kind))
    if fold_column is not None:
        columns.append(ColumnSpec(fold_column, "fold"))
    if not features:
        raise DataError(
            f"{source} has no usable feature columns besides the target '{target}' "
            f"({'; '.join(f'{k}: {list_names(v)}' for k, v in excluded.items()) or 'none'}); "
            "give numeric, boolean or low-cardinality text columns"
        )
    return Recipe(target=target, columns=tuple(columns), features=tuple(features),
                  fold_column=fold_column), warnings


def _target_kind(arr: pa.ChunkedArray, target: str, source: str) -> str:
    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_null(t):
        raise DataError(f"Target column '{target}' in {source} has no values; "
                        "choose a column with numeric values")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        distinct = pc.unique(_string_values(arr).drop_null()).to_pylist()
        kind = _parse_numeric_text(distinct)
        if kind is not None:
            return kind
        bad = [v for v in distinct if not _NUMBER.match(v) and not _THOUSANDS.match(v)][:3]
        raise DataError(
            f"Target column '{target}' in {source} is not numeric (values such as "
            f"{', '.join(repr(b) for b in bad)}); choose a numeric target column"
        )
    raise DataError(f"Target column '{target}' in {source} has type {t}, not numbers; "
                    "choose a numeric target column")


def column_values(arr: pa.ChunkedArray, spec: ColumnSpec) -> np.ndarray:
    """One source column as float64 (NaN for missing), read the way ``spec`` says."""
    if spec.kind in ("thousands", "numeric_text"):
        return text_to_float(arr, spec.kind)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return _as_float(arr)


def design_matrix(table: pa.Table, recipe: Recipe, source: str,
                  line_offset: int = 2, row_label: str = "line") -> Design:
    """Apply ``recipe`` to ``table``: X (n_samples, n_features) with NaN for missing, and y.

    Infinite values are a :class:`DataError` that names the column and the line
    (``line_offset`` is the number of the first row: line 2 below a CSV header, row 1 of a
    Parquet file).
    """
    n = table.num_rows
    specs = {c.name: c for c in recipe.columns}
    X = np.empty((n, len(recipe.features)), dtype=np.float64)
    j = 0
    for spec in recipe.columns:
        if spec.name in (recipe.target, recipe.fold_column):
            continue
        arr = table.column(spec.name)
        if spec.kind == "categorical":
            strings = _string_values(arr)
            codes = pc.index_in(strings, value_set=pa.array(spec.levels, pa.string()))
            codes_np = codes.to_numpy(zero_copy_only=False).astype(np.float64)
            missing = ~strings.is_valid().to_numpy(zero_copy_only=False)
            for k in range(len(spec.levels)):
                col = (codes_np == k).astype(np.float64)
                col[missing] = np.nan
                X[:, j] = col
                j += 1
        else:
            values = column_values(arr, spec)
            _check_finite(values, spec.name, source, line_offset, row_label)
            X[:, j] = values
            j += 1
    y = column_values(table.column(recipe.target), specs[recipe.target])
    _check_finite(y, recipe.target, source, line_offset, row_label)
    return Design(X=X, y=y)


def _check_finite(values: np.ndarray, name: str, source: str, line_offset: int,
                  row_label: str) -> None:
    bad = np.isinf(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Column '{name}' in {source} has an infinite value at "
            f"{row_label} {row + line_offset}; "
            "replace it with a finite number or leave the cell empty"
        )

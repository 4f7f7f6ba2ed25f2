"""The family of a fit and what it needs from the data: the two classes of a binary target
(glmnet's factor levels), their 0/1 coding, and the observation weights column.

``auto`` is ``binomial`` when the target has exactly two distinct non-missing values
(numbers, booleans or text), else ``gaussian``. The positive class is the second of the two
values in sorted order, unless ``--positive-class`` names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from l1select.errors import ConfigError, DataError, did_you_mean, list_names, quoted


@dataclass(frozen=True)
class Classes:
    """The two values of a binary target: ``values`` = (negative, positive), as the JSON
    result writes them (numbers, booleans or text); ``counts`` their row counts."""

    values: tuple[Any, Any]
    counts: tuple[int, int]
    kind: str  # numeric | bool | text

    @property
    def positive(self) -> Any:
        return self.values[1]

    def encode(self, arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """1.0 for the positive class, 0.0 for the negative, NaN where missing."""
        import pyarrow.compute as pc

        values = _values(arr, self.kind)
        out = np.full(len(values), np.nan)
        for code, v in enumerate(self.values):
            out[np.asarray(pc.equal(values, pa.scalar(_key(v, self.kind))).fill_null(False))] \
                = float(code)
        return out


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_null(t):
        return "null"
    return "text"


def _values(arr, kind: str):
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if kind == "numeric":
        return pc.cast(arr, pa.float64())
    if kind == "text":
        return pc.cast(arr, pa.string())
    return arr


def _key(v: Any, kind: str):
    return float(v) if kind == "numeric" else v


def _native(v: Any, kind: str) -> Any:
    if kind == "numeric":
        f = float(v)
        return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f
    return v


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def distinct(arr, kind: str) -> tuple[list[Any], list[int]]:
    """The distinct non-missing values of a target column (sorted, at most 3) and counts."""
    import pyarrow.compute as pc

    values = _values(arr, kind)
    if kind == "numeric":
        # and_kleene(valid, not NaN): False for a null, with no scalar to build (pa.scalar
        # would import pandas, ~0.2 s of start-up).
        values = pc.filter(values, pc.and_kleene(pc.is_valid(values),
                                                 pc.invert(pc.is_nan(values))))
    counts = pc.value_counts(values.drop_null())
    vals = counts.field("values").to_pylist()
    ns = counts.field("counts").to_pylist()
    order = sorted(range(len(vals)), key=lambda i: vals[i])
    return [vals[i] for i in order], [int(ns[i]) for i in order]


def resolve(arr, family: str, positive_class: str | None, target: str, source: str
            ) -> tuple[str, Classes | None]:
    """The family of the fit, and for ``binomial`` the two classes (positive second).

    ``arr`` is the whole target column as read.
    """
    kind = _kind(arr.type)
    if family == "gaussian":
        if positive_class is not None:
            raise ConfigError("--positive-class applies to a binary target (--family binomial "
                              "or auto); drop it with --family gaussian")
        return "gaussian", None
    if kind == "null":
        return "gaussian", None  # the gaussian path reports the empty target
    vals, counts = distinct(arr, kind)
    if len(vals) != 2:
        many = "more than two" if len(vals) > 2 else str(len(vals))
        if family == "auto":
            if positive_class is not None:
                raise ConfigError(f"--positive-class is for a binary target, and {quoted(target)} "
                                  f"in {source} has {many} distinct values")
            # Not binary: a linear model (a text target must then hold numbers).
            return "gaussian", None
        shown = ", ".join(quoted(_label(v)) for v in vals[:3])
        raise DataError(f"--family binomial needs a target with exactly two values, and "
                        f"{quoted(target)} in {source} has {many} ({shown}"
                        f"{', …' if len(vals) > 2 else ''}); choose a binary target or "
                        "--family gaussian")
    values = [_native(v, kind) for v in vals]
    if positive_class is not None:
        labels = [_label(v) for v in values]
        matches = [i for i, v in enumerate(values)
                   if labels[i] == positive_class or _same(v, positive_class, kind)]
        if not matches:
            raise ConfigError(f"--positive-class {quoted(positive_class)} is not a value of target "
                              f"{quoted(target)} in {source}; its values are "
                              f"{quoted(labels[0])} and {quoted(labels[1])}")
        if matches[0] == 0:
            values.reverse()
            counts.reverse()
    return "binomial", Classes(values=(values[0], values[1]),
                               counts=(counts[0], counts[1]), kind=kind)


def _same(v: Any, text: str, kind: str) -> bool:
    if kind == "numeric":
        try:
            return float(text) == float(v)
        except ValueError:
            return False
    if kind == "bool":
        return text.strip().lower() in (("true", "1", "yes") if v else ("false", "0", "no"))
    return False


class NotBinary(Exception):
    """``--family auto``: the whole target turned out not to be binary (a linear model)."""


def looks_binary(arr) -> bool:
    """Whether the first rows of a target column suggest a binary target: booleans, or at
    most two distinct numbers or texts (text with more may be numbers written with
    separators: the linear model's reader decides)."""
    kind = _kind(arr.type)
    if kind == "bool":
        return True
    if kind == "numeric" and pa.types.is_float64(arr.type):
        return _float64_distinct(arr) <= 2
    return kind in ("numeric", "text") and len(distinct(arr, kind)[0]) <= 2


def _float64_distinct(arr) -> int:
    """How many distinct non-missing numbers a float64 column holds (3 meaning three or
    more), read from its buffers (``prepare._floats``). Every ``auto`` fit asks this of its
    target's first rows, and Arrow's compute functions (``value_counts``) cost their import:
    45-90 ms."""
    from l1select.prepare import _floats

    values = _floats(arr)
    values = values[~np.isnan(values)]
    seen = 0
    while values.size and seen < 3:
        seen += 1
        values = values[values != values[0]]
    return seen


def binary_classes(arr, family: str, positive_class: str | None, target: str, source: str
                   ) -> Classes:
    """The two classes of the whole target column; :class:`NotBinary` when ``auto`` finds a
    numeric target with more (or fewer) than two values."""
    resolved, classes = resolve(arr, family, positive_class, target, source)
    if classes is None:
        raise NotBinary(target)
    return classes


def check_weights_column(name: str, names: list[str], target: str, fold_column: str | None,
                         source: str) -> None:
    """The weights column exists and is not the target or the fold column."""
    if name not in names:
        hint = did_you_mean(name, names)
        raise DataError(f"Weights column {quoted(name)} not found in {source}"
                        f"{'; ' + hint if hint else ''} (columns: {list_names(names)})")
    if name in (target, fold_column):
        what = "target" if name == target else "fold"
        raise ConfigError(f"--weights {quoted(name)} is the {what} column; give a column of "
                          "observation weights")


def observation_weights(arr, rows: np.ndarray, name: str, source: str, offset: int,
                        label: str, require_positive: bool = True) -> np.ndarray:
    """The weights of the used ``rows`` (positions in the column); a missing, negative or
    non-finite weight is a data error naming its line, and so (``require_positive``) are
    weights that are 0 on every used row."""
    kind = _kind(arr.type)
    if kind not in ("numeric", "null"):
        raise DataError(f"Weights column {quoted(name)} in {source} is not numeric (type "
                        f"{arr.type}); give non-negative numbers")
    values = np.asarray(_values(arr, "numeric").to_numpy(zero_copy_only=False),
                        dtype=np.float64)[rows] if kind == "numeric" else np.full(rows.size, np.nan)
    for bad, what in ((np.isnan(values), "a missing weight"),
                      (~np.isfinite(values) & ~np.isnan(values), "an infinite weight"),
                      (values < 0, "a negative weight")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"Weights column {quoted(name)} in {source} has {what} at {label} "
                            f"{int(rows[i]) + offset}; give every row a weight >= 0")
    if require_positive and not (values > 0).any():
        raise DataError(f"Weights column {quoted(name)} in {source} is zero on every row used; "
                        "give some rows a positive weight")
    return values

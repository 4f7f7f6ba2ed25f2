"""Prepare: decide what each column means and turn record batches into numeric rows.

A :class:`Profiler` sees the data batch by batch (a whole table is one batch) and, for each
batch, emits the rows of the *slot* vector that the statistics are built from (see
``moments``): one slot per numeric value, per category level, per numbers-as-text reading and per
missing-value indicator, plus the target. What a column finally means is decided from what was
seen in all batches, with rules that do not depend on where the batches break:

- numbers are features, unless every value is an integer and the column has an ID name
  (:data:`_ID_NAME`) or counts the rows exactly (0…n−1 or 1…n in file order, no value
  missing); booleans are 0/1;
- text is a number when every value is written as one (thousands separators allowed); else a
  date when every value looks like one (excluded); else one-hot encoded when its values repeat
  (:func:`is_categorical`); else excluded (IDs, names, free text);
- date/time, nested and binary columns, and columns with no values, are excluded.

A column named exactly in ``--features`` (``explicit``) beats every guess: it is used when it
can be read as a number or a category, and is an error (saying why) when it cannot.

:meth:`Profiler.recipe` gives the final :class:`~l1select.types.Recipe`; :func:`design_matrix`
applies a recipe to a table (NaN where a value is missing).
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from l1select.errors import ConfigError, DataError, did_you_mean, list_names, quoted
from l1select.types import ColumnSpec, FeatureSpec, Recipe, Warn

_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
# Grouped numbers may carry a currency sign ($1,234.50, 1.234,50 €), dropped when read.
_CUR = r"[$€£¥]?"
_THOUSANDS_RE = (rf"^\s*[-+]?{_CUR}\s*[-+]?(\d{{1,3}}(,\d{{3}})+|\d+)(\.\d+)?\s*{_CUR}\s*$")
# In files whose delimiter is not a comma (';' mostly), numbers are written the European way:
# a decimal comma, and dots (if any) between thousands: 12,5 or 1.234,5.
_DECIMAL_COMMA_RE = (rf"^\s*[-+]?{_CUR}\s*[-+]?(\d{{1,3}}(\.\d{{3}})+|\d+)(,\d+)?"
                     rf"([eE][-+]?\d+)?\s*{_CUR}\s*$")
_DATE_RE = (r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
            r"([ T]\d{1,2}:\d{2}.*)?\s*$")
# The names that make an integer column an ID (case-insensitive, surrounding blanks ignored):
# id, index, row, rownum, a name ending in _id (or " id", "-id", ".id"), an empty header (read
# as unnamed_N) or pandas' written index (Unnamed: 0).
_ID_NAME = re.compile(
    r"^(id|index|row|rownum|unnamed_\d+|unnamed: ?\d+)$|[_\s.-]id$", re.IGNORECASE,
)
Y_SLOT = ("y",)
# A column whose first values lie outside 2^±SCALE_AT in size is held in the statistics scaled by
# a power of two (exact): its squares and co-moments would overflow or underflow otherwise.
SCALE_AT = 256
# Values later in a column may exceed its first ones (scaled to about 1) by up to 2^LIMIT: its
# co-moments stay finite for any row count below 2^200.
LIMIT = 400
# The target's largest |value| must lie in here: squared errors of its size are normal floats.
TARGET_RANGE = (1e-150, 1e150)

# The default categorical rule: at most this many distinct values, and few against the rows.
MAX_LEVELS = 1000
MIN_MEAN_COUNT = 10
SMALL_LEVELS = 20


def is_categorical(n_levels: int, n_present: int, max_levels: int | None) -> bool:
    """Whether a text column with ``n_levels`` distinct values in ``n_present`` non-missing
    cells is a categorical (else an ID, names or free text, and excluded).

    By default its values must repeat: at most ``MAX_LEVELS`` (1,000) distinct values, and
    either each seen at least ``MIN_MEAN_COUNT`` (10) times on average (distinct values at
    most 10% of the non-missing cells: a 28-level column in 300 rows, a 50-level one in 500)
    or, for small tables, at most 20 levels each seen twice on average. IDs, names and free
    text are seen about once each. An explicit ``max_levels`` (``--max-levels N``) replaces
    the rule: at most N distinct values, however often they repeat.
    """
    if max_levels is not None:
        return n_levels <= max_levels
    return n_levels <= MAX_LEVELS and (
        MIN_MEAN_COUNT * n_levels <= n_present
        or (n_levels <= SMALL_LEVELS and 2 * n_levels <= n_present))


def _match(patterns: tuple[str, ...], names: list[str], option: str, strict: bool,
           warnings: list[Warn]) -> set[str]:
    chosen: set[str] = set()
    for pat in patterns:
        hits = [n for n in names if n == pat or fnmatch.fnmatchcase(n, pat)]
        if not hits:
            hint = did_you_mean(pat, names)
            msg = (f"{option} {quoted(pat)} matches no column"
                   f"{'; ' + hint if hint else ''} (columns: {list_names(names)})")
            if strict:
                raise ConfigError(msg)
            warnings.append(Warn("unmatched_pattern", msg))
        chosen.update(hits)
    return chosen


def needed_columns(names: list[str], target: str, features: tuple[str, ...],
                   exclude: tuple[str, ...], fold_column: str | None,
                   source: str, group_column: str | None = None
                   ) -> tuple[list[str], list[Warn]]:
    """The source columns to read: the target, the fold or group column and the candidate
    features."""
    warnings: list[Warn] = []
    for what, col in (("Target", target), ("Fold", fold_column), ("Group", group_column)):
        if col is not None and col not in names:
            hint = did_you_mean(col, names)
            raise DataError(
                f"{what} column {quoted(col)} not found in {source}"
                f"{'; ' + hint if hint else ''} (columns: {list_names(names)})"
            )
    special = {target, fold_column, group_column}
    candidates = [n for n in names if n not in special]
    if features:
        keep = _match(features, candidates, "--features", True, warnings)
        candidates = [n for n in candidates if n in keep]
    if exclude:
        drop = _match(exclude, candidates, "--exclude", False, warnings)
        candidates = [n for n in candidates if n not in drop]
    if not candidates:
        if not (features or exclude):
            raise DataError(f"{source} has no columns besides the target {quoted(target)} (and the "
                            "fold column); give a file with feature columns")
        raise ConfigError(
            f"No feature columns left in {source} after --features/--exclude; "
            "choose at least one column besides the target"
        )
    wanted = set(candidates) | {target} | {c for c in (fold_column, group_column) if c}
    return [n for n in names if n in wanted], warnings


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _text(arr) -> pa.Array:
    """A column as a plain ``string`` array (dictionary and large strings decoded)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def _floats(arr) -> np.ndarray:
    """A numeric or boolean column as float64, NaN where missing.

    Read from the Arrow buffer directly: ``to_numpy`` would import pandas (~0.2 s) on the way.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_float64(arr.type):
        # Numbers as the readers deliver them: no cast, and missing values set from the
        # validity bits, so a plain fit need not import pyarrow.compute (45-90 ms).
        out = np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr),
                            offset=arr.offset * 8).copy()
        if arr.null_count:
            bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8),
                                 bitorder="little")
            out[bits[arr.offset:arr.offset + len(arr)] == 0] = np.nan
        return out
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    arr = arr.cast(pa.float64())
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(np.nan, pa.float64()))
    return np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr),
                         offset=arr.offset * 8).copy()


def _bools(arr) -> np.ndarray:
    """A boolean Arrow array as a numpy bool array (missing counts as False)."""
    import pyarrow.compute as pc

    return _floats(pc.fill_null(arr, False)) != 0.0


def _matrix(batch, names: list[str]) -> np.ndarray:
    """Numeric columns of a batch as one (n, m) float64 array, NaN where missing."""
    sub = batch.select(names)
    if isinstance(sub, pa.Table):
        if not sub.num_rows:
            return np.empty((0, len(names)))
        # One record batch of the whole table, made in Arrow: a Python list of the
        # columns' chunks costs 0.2 s at 20,000 columns. A table read whole has one chunk
        # a column, and is one batch as it is (2 ms; combining first: 32 ms).
        batches = sub.to_batches()
        [sub] = batches if len(batches) == 1 else sub.combine_chunks().to_batches()
    # Checked once per distinct type (a wide batch has few).
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in set(sub.schema.types)):
        return np.asarray(sub.to_tensor(null_to_nan=True, row_major=False))
    return np.column_stack([_floats(sub.column(i)) for i in range(len(names))])


def parse_text_numbers(arr, mode: str) -> np.ndarray:
    """Numbers written as text as float64. ``mode``: ``plain``, ``thousands`` (1,234.5) or
    ``decimal_comma`` (1.234,5)."""
    import pyarrow.compute as pc

    s = pc.utf8_trim_whitespace(_text(arr))
    if mode != "plain":
        s = pc.replace_substring_regex(s, r"[$€£¥\s]", "")
        # A sign written before the currency ($-5 or -$5) ends up in front either way.
    if mode == "thousands":
        s = pc.replace_substring(s, ",", "")
    elif mode == "decimal_comma":
        s = pc.replace_substring(pc.replace_substring(s, ".", ""), ",", ".")
    return _floats(s.cast(pa.float64()))


@dataclass(slots=True)  # tens of thousands of them on wide data: no per-object dict
class _Column:
    name: str
    kind: str  # numeric | bool | text | excluded
    reason: str = ""
    observed: bool = False
    has_missing: bool = False
    fill: float = 0.0
    integral: bool = True
    step: float | None = None  # +1 while the values count rows (steps of +1), nan once not
    head: float | None = None  # the first value (a row counter starts at 0 or 1)
    exp: int | None = None  # values are held × 2^-exp (None: not yet known, as 0)
    last: float | None = None
    number_ok: bool = True
    thousands_ok: bool = True
    date_ok: bool = True
    levels: dict[str, None] | None = field(default_factory=dict)
    n_present: int = 0  # non-missing cells of a text column (the categorical rule)
    dropped_levels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Batch:
    """The rows of one batch that survive, as slot values.

    ``U`` (n_kept, len(keys)) float64; ``rows`` are the global indices of the kept rows; ``init``
    gives, for slots first seen in this batch, their constant value on all earlier rows.
    """

    keys: list[tuple]
    U: np.ndarray
    rows: np.ndarray
    init: dict[tuple, float]
    # Value slots whose column is observed for the first time in this batch after earlier
    # batches held only missing values there: those rows were filled with 0, and now count
    # at the fill; add this to the slot's mean over all earlier rows (it was constant there).
    shift: dict[tuple, float] = field(default_factory=dict)
    # With ``Profiler.update(..., design=True)``: the names of the numeric columns and their
    # values as read, (n, m) column-major, NaN where missing, on every row of the batch
    # (for :func:`design_matrix`, which then need not convert them again); ``U`` then holds
    # the target only.
    numbers: tuple[list[str], np.ndarray] | None = None


class Profiler:
    """Classifies the columns as batches arrive, and emits each batch's slot rows."""

    def __init__(self, schema: pa.Schema, target: str, fold_column: str | None,
                 max_levels: int | None, missing: str, source: str, line_offset: int = 2,
                 row_label: str = "line", decimal_comma: bool = False,
                 explicit: tuple[str, ...] = (), group_column: str | None = None):
        self.target = target
        # Rows' group labels (--group-column): never a feature.
        self.group_column = group_column
        # Columns named exactly in --features: used whatever the heuristics say.
        self.explicit = frozenset(explicit)
        # How grouped numbers are written: 1,234.5 in comma-delimited files, 1.234,5 else.
        self.grouped = "decimal_comma" if decimal_comma else "thousands"
        self._grouped_re = _DECIMAL_COMMA_RE if decimal_comma else _THOUSANDS_RE
        self.fold_column = fold_column
        self.max_levels = max_levels
        # Levels are tracked up to this many; past it the column cannot be a categorical.
        self.level_cap = MAX_LEVELS if max_levels is None else max_levels
        self.missing = missing
        self.source = source
        self.line_offset = line_offset
        self.row_label = row_label
        self.columns: list[_Column] = []
        self.target_kind = _target_kind(_value_type(schema.field(target).type), target, source)
        special = {target, fold_column, group_column}
        # A wide schema has few distinct types: each is classified once (per field, pyarrow's
        # type tests cost 0.1 s at 20,000 columns).
        kinds: dict[pa.DataType, tuple[str, str]] = {}
        for name, t in zip(schema.names, schema.types, strict=True):
            if name in special:
                continue
            kind = kinds.get(t)
            if kind is None:
                kind = kinds[t] = _column_kind(_value_type(t))
            if kind[1] == "date/time" and name in self.explicit:
                # An explicit date/time column is read as its text: levels, if few enough.
                kind = ("text", "")
            self.columns.append(_Column(name, *kind))
        # The kinds never change: the columns of each kind, listed once.
        self._numeric = [c for c in self.columns if c.kind == "numeric"]
        self._bool_text = [c for c in self.columns if c.kind in ("bool", "text")]
        self.n_missing_target = 0
        self.n_missing_dropped = 0
        self.missing_columns: set[str] = set()
        self.n_rows = 0
        self._seen_slots: set[tuple] = {Y_SLOT}
        self._shift: dict[tuple, float] = {}
        self.target_values_seen = False
        self.y_absmax = 0.0
        self.first_width: int | None = None  # slots emitted by the first batch

    # -- the target --------------------------------------------------------------------------
    def _target(self, arr) -> np.ndarray:
        if self.target_kind in ("numeric", "bool"):
            return _floats(arr)
        if self.target_kind == "null":
            return np.full(len(arr), np.nan)
        import pyarrow.compute as pc

        values = _text(arr)
        ok = pc.match_substring_regex(values, _NUMBER_RE)
        ok_th = pc.match_substring_regex(values, self._grouped_re)
        bad = pc.invert(pc.or_kleene(ok, ok_th)).fill_null(False)
        if pc.any(bad).as_py():
            sample = pc.unique(values.filter(bad)).to_pylist()[:3]
            raise DataError(
                f"Target column {quoted(self.target)} in {self.source} is not numeric (values such "
                f"as {', '.join(repr(s) for s in sample)}); choose a numeric target column"
            )
        plain = pc.all(ok.fill_null(True)).as_py()
        return parse_text_numbers(values, "plain" if plain else self.grouped)

    def _where(self, start: int, i: int) -> str:
        return f"{self.row_label} {start + i + self.line_offset}"

    def _check_finite(self, values: np.ndarray, name: str, start: int) -> None:
        bad = np.isinf(values)
        if bad.any():
            self._problem(int(np.flatnonzero(bad)[0]), name, start,
                          "an infinite value (or a number beyond ±1.8e308)",
                          "replace it with a finite number or leave it empty")

    def _check_target_size(self, y: np.ndarray, start: int) -> None:
        """Squared errors of the target's size must be normal floats (see TARGET_RANGE)."""
        with np.errstate(invalid="ignore"):
            big = np.abs(y) > TARGET_RANGE[1]
        if big.any():
            i = int(np.flatnonzero(big)[0])
            self._problem(i, self.target, start, f"a value too large to fit ({y[i]:.3g})",
                          "its squared errors overflow: divide the target by a power of ten")
        finite = np.abs(y[np.isfinite(y)])
        if finite.size:
            self.y_absmax = max(self.y_absmax, float(finite.max()))

    def _scaled(self, cols: list[_Column], M: np.ndarray, start: int,
                top: np.ndarray | None = None) -> np.ndarray:
        """The values ``M`` (n, len(cols)) of numeric columns as held: × 2^-exp.

        A column's exponent is fixed by its first batch with a non-zero value: 0 when its
        largest |value| there is within 2^±SCALE_AT (most data: nothing changes), else that
        value's binary exponent. Scaling by a power of two is exact, and the standardized
        lasso does not depend on a column's scale. ``top``: each column's largest |value|
        (NaN when all are missing), if known.
        """
        if M.shape[0] == 0:
            return M
        if top is None:
            top = np.fmax.reduce(np.abs(M), axis=0)  # NaN (missing) skipped; all missing: NaN
        top = np.where(np.isnan(top), 0.0, top)
        # Clamped so that the unit 2^-exp is a float (subnormal values: 2^1000); computed
        # for all columns at once (per column, numpy's scalar calls cost 0.3 s at 20,000).
        found = np.clip(np.frexp(top)[1], -1000, 1000).tolist()
        tops = top.tolist()
        for j, col in enumerate(cols):
            if col.exp is None and tops[j] > 0:
                e = found[j]
                col.exp = e if abs(e) > SCALE_AT else 0
        exps = np.array([c.exp or 0 for c in cols], dtype=np.int64)
        if exps.any():
            M = np.ldexp(M, -exps[None, :])
        for j in np.flatnonzero(np.ldexp(top, -exps) > 2.0 ** LIMIT):
            with np.errstate(invalid="ignore"):
                i = int(np.argmax(np.abs(M[:, j]) > 2.0 ** LIMIT))
            if np.isinf(M[i, j]):
                continue  # an infinite value: its own error
            self._problem(i, cols[j].name, start,
                          f"a value ({np.ldexp(M[i, j], int(exps[j])):.3g}) too large beside "
                          f"its earlier values (about {2.0 ** int(exps[j]):.3g}), so that the "
                          "squares of its spread overflow",
                          "rescale the column, or leave the value out")
        return M

    def _problem(self, i: int, name: str, start: int, what: str, todo: str) -> None:
        """Remember the earliest bad cell of the batch; :meth:`update` raises it at the end."""
        if self._first_problem is None or i < self._first_problem[0]:
            self._first_problem = (i, DataError(
                f"Column {quoted(name)} in {self.source} has {what} at "
                f"{self._where(start, i)}; {todo}"
            ))

    # -- one batch ---------------------------------------------------------------------------
    def update(self, batch: pa.RecordBatch | pa.Table, start: int,
               design: bool = False) -> Batch:
        """Profile ``batch`` (whose first row has global index ``start``) and emit its slots.

        With ``design`` (an engine that builds the design matrix rather than the slot
        statistics) the profile is the same, but the slot rows are not assembled: ``U`` holds
        the target alone, and ``numbers`` the numeric columns as read (see :class:`Batch`).
        """
        n = batch.num_rows
        if n == 0:
            return Batch(keys=[Y_SLOT], U=np.empty((0, 1)), rows=np.empty(0, dtype=np.int64),
                         init={})
        self.n_rows += n
        self._first_problem: tuple[int, DataError] | None = None
        y = self._target(batch.column(self.target))
        self._check_finite(y, self.target, start)
        self._check_target_size(y, start)
        keep = ~np.isnan(y)
        self.n_missing_target += int(n - keep.sum())
        keys: list[tuple] = [Y_SLOT]
        cols: list[np.ndarray] = [y[:, None]]
        init: dict[tuple, float] = {}
        missing_any = np.zeros(n, dtype=bool)
        miss_cols: list[tuple[_Column, np.ndarray]] = []

        numeric = self._numeric
        numbers = None
        if numeric:
            names = [c.name for c in numeric]
            M = _matrix(batch, names)
            keys.extend([("x", name) for name in names])
            cols.append(self._numeric_block(numeric, M, keep, start, missing_any, miss_cols,
                                            init, fill=not design))
            if design:
                numbers = (names, M)
        for col in self._bool_text:
            arr = batch.column(col.name)
            valid = _bools(arr.is_valid()) if arr.null_count else np.ones(n, dtype=bool)
            if not valid.all():
                miss = ~valid
                self._missing(col, miss, keep, start)
                missing_any |= miss
                miss_cols.append((col, miss))
            if col.kind == "bool":
                self._emit_number(col, ("x", col.name), _floats(arr), valid, keys, cols, init)
            else:
                self._emit_text(col, arr, valid, keys, cols, init, start)
        this_batch = {c.name: miss for c, miss in miss_cols}
        for col in self.columns:
            if col.has_missing:
                key = ("miss", col.name)
                keys.append(key)
                miss = this_batch.get(col.name)
                cols.append(np.zeros(n) if miss is None else miss.astype(np.float64))
                if key not in self._seen_slots:
                    init[key] = 0.0
        if self._first_problem is not None:
            raise self._first_problem[1]
        if self.missing == "drop":
            self.n_missing_dropped += int((missing_any & keep).sum())
            keep &= ~missing_any
        self._seen_slots.update(keys)
        if self.first_width is None:
            self.first_width = len(keys)
        if design:
            # The slot rows would be a second copy of the data (a transposing one, 0.1 s at
            # 500 x 20,000), of which the design needs only the target.
            keys, cols = [Y_SLOT], cols[:1]
        U = np.empty((n, len(keys)))
        j = 0
        for block in cols:
            w = block.shape[1] if block.ndim == 2 else 1
            U[:, j:j + w] = block if block.ndim == 2 else block[:, None]
            j += w
        if not keep.all():
            U = U[keep]
        rows = np.flatnonzero(keep).astype(np.int64) + start
        shift, self._shift = self._shift, {}
        return Batch(keys=keys, U=U, rows=rows, init=init, shift=shift, numbers=numbers)

    def _numeric_block(self, numeric: list[_Column], M: np.ndarray, keep: np.ndarray,
                       start: int, missing_any: np.ndarray, miss_cols: list,
                       init: dict, fill: bool = True) -> np.ndarray:
        """Track the numeric columns of a batch at once, and (with ``fill``) fill their
        missing values: ``M`` (n, m), NaN = missing.

        Whatever can be is computed for all the columns together: a wide batch has tens of
        thousands of them, and numpy's calls on one column cost microseconds each.
        """
        # Per column, from three reductions (no n x m temporaries): the largest and smallest
        # value (NaN skipped: an infinite value is one of them) and whether any is missing
        # (min propagates NaN).
        with np.errstate(invalid="ignore"):
            hi, lo = np.fmax.reduce(M, axis=0), np.fmin.reduce(M, axis=0)
            has_nan = np.isnan(M.min(axis=0))
        gaps = bool(has_nan.any())
        nan = np.isnan(M) if gaps else None
        inf = np.isinf(hi) | np.isinf(lo)
        if inf.any():
            for j in np.flatnonzero(inf):
                self._check_finite(M[:, j], numeric[j].name, start)
        for j in np.flatnonzero(has_nan):
            col = numeric[j]
            miss = nan[:, j]
            self._missing(col, miss, keep, start)
            missing_any |= miss
            miss_cols.append((col, miss))
        self._track_integers(numeric, M)
        M = self._scaled(numeric, M, start, np.fmax(hi, -lo))
        # Each column's first value (as held), the fill of its missing values.
        if gaps:
            first = np.argmax(~nan, axis=0)
            empty = nan.all(axis=0).tolist()
        else:
            first, empty = np.zeros(len(numeric), dtype=np.int64), [False] * len(numeric)
        firsts = M[first, np.arange(len(numeric))].tolist()
        seen = self._seen_slots
        for j, col in enumerate(numeric):
            key = ("x", col.name)
            if not col.observed and not empty[j]:
                col.observed = True
                col.fill = firsts[j]
                if key not in seen:
                    init[key] = col.fill
                else:
                    self._shift[key] = col.fill
            elif key not in seen:
                init[key] = col.fill
        if fill and gaps:
            fills = np.array([c.fill for c in numeric])
            M = np.where(nan, fills[None, :], M)
        return M

    def _track_integers(self, numeric: list[_Column], M: np.ndarray) -> None:
        """Whether each column holds only integers, and counts the rows (steps of +1)."""
        idx = [j for j, c in enumerate(numeric) if c.integral]
        if not idx:
            return
        head = M[:64, idx]
        # Infinite values are errors (raised at the end of the batch), not integers.
        ok = np.all(((head == np.floor(head)) & ~np.isinf(head)) | np.isnan(head), axis=0)
        for j, good in zip(idx, ok.tolist(), strict=True):
            if not good:
                numeric[j].integral = False
        idx = [j for j, good in zip(idx, ok.tolist(), strict=True) if good]
        if not idx:
            return
        V = M[:, idx]
        nan = np.isnan(V)
        whole = np.all(((V == np.floor(V)) & ~np.isinf(V)) | nan, axis=0).tolist()
        complete = (~nan.any(axis=0)).tolist()
        # The steps of the columns that may still count rows, all at once (a row counter
        # steps by +1 only).
        n = V.shape[0]
        live = [k for k, j in enumerate(idx)
                if numeric[j].step is None or not math.isnan(numeric[j].step)]
        ones = [False] * len(idx)
        for k, one in zip(live, np.all(np.diff(V[:, live], axis=0) == 1.0, axis=0).tolist(),
                          strict=True):
            ones[k] = one
        heads, tails = V[0].tolist(), V[-1].tolist()
        for k, j in enumerate(idx):
            col = numeric[j]
            if not whole[k]:
                col.integral = False
            elif not complete[k]:
                self._track_numbers(col, V[~nan[:, k], k])
            else:  # as _track_numbers on the whole column
                if col.head is None:
                    col.head = heads[k]
                if col.step is None or not math.isnan(col.step):
                    steps = n - 1 + (col.last is not None)
                    if steps and not (ones[k] and (col.last is None
                                                   or heads[k] - col.last == 1.0)):
                        col.step = np.nan
                    elif steps:
                        col.step = 1.0
                    col.last = tails[k]

    def _missing(self, col: _Column, miss: np.ndarray, keep: np.ndarray, start: int) -> None:
        if self.missing == "error":
            hit = miss & keep
            if hit.any():
                self._problem(int(np.flatnonzero(hit)[0]), col.name, start, "a missing value",
                              "fill it, or use --missing mean or --missing drop")
        col.has_missing = True
        if (miss & keep).any():
            self.missing_columns.add(col.name)

    def _track_numbers(self, col: _Column, obs: np.ndarray) -> None:
        """Follow the steps between consecutive values: a row counter steps by +1 only.

        Missing values are skipped here; a column with any is no row counter (see
        :meth:`_decide`), so this only has to be right for complete columns.
        """
        if obs.size == 0:
            return
        if col.head is None:
            col.head = float(obs[0])
        if col.step is None or not np.isnan(col.step):
            seq = obs if col.last is None else np.concatenate([[col.last], obs])
            diffs = np.diff(seq)
            if diffs.size and not np.all(diffs == 1.0):
                col.step = np.nan
            elif diffs.size:
                col.step = 1.0
            col.last = float(obs[-1])

    def _emit_number(self, col: _Column, key: tuple, values: np.ndarray, valid: np.ndarray,
                     keys: list, cols: list, init: dict) -> None:
        if not col.observed and valid.any():
            # The fill of a missing value is the first value seen: close to the column's mean
            # in scale, so the imputation algebra loses no digits to cancellation.
            col.observed = True
            col.fill = float(values[np.flatnonzero(valid)[0]])
            if key in self._seen_slots:
                self._shift[key] = col.fill
        keys.append(key)
        cols.append(np.where(valid, values, col.fill) if not valid.all() else values)
        if key not in self._seen_slots:
            init[key] = col.fill

    def _emit_text(self, col: _Column, arr, valid: np.ndarray, keys: list, cols: list,
                   init: dict, start: int) -> None:
        import pyarrow.compute as pc

        text = _text(arr)
        present = text.filter(pc.is_valid(text)) if text.null_count else text
        col.n_present += len(present)
        if len(present):
            if col.number_ok:
                col.number_ok = bool(pc.all(pc.match_substring_regex(present, _NUMBER_RE))
                                     .as_py())
            if col.thousands_ok:
                col.thousands_ok = bool(pc.all(pc.match_substring_regex(
                    present, f"{_NUMBER_RE}|{self._grouped_re}")).as_py())
            if col.date_ok:
                col.date_ok = bool(pc.all(pc.match_substring_regex(present, _DATE_RE)).as_py())
            if col.levels is not None:
                for v in pc.unique(present).to_pylist():
                    col.levels.setdefault(v, None)
                if len(col.levels) > self.level_cap:
                    col.dropped_levels = list(col.levels)
                    col.levels = None
        if col.number_ok or col.thousands_ok:
            values = np.full(len(text), np.nan)
            if len(present):
                values = parse_text_numbers(text, "plain" if col.number_ok else self.grouped)
                self._check_finite(values, col.name, start)
                values = self._scaled([col], values[:, None], start)[:, 0]
            self._emit_number(col, ("num", col.name), values, valid, keys, cols, init)
        if col.levels is not None and col.levels:
            names = list(col.levels)
            # One lookup for all levels, not one comparison per level (up to 1,000 of them).
            where = pc.index_in(text, value_set=pa.array(names, pa.string()))
            onehot = np.zeros((len(text), len(names)))
            hit = _bools(where.is_valid())
            onehot[np.flatnonzero(hit), _floats(where.filter(hit)).astype(np.int64)] = 1.0
            cols.append(onehot)
            for level in names:
                key = ("lvl", col.name, level)
                keys.append(key)
                if key not in self._seen_slots:
                    init[key] = 0.0

    # -- profiles of parts of the data, merged (distributed engines) --------------------------
    def merge(self, later: Profiler) -> None:
        """Fold in the profile of the rows that follow this profile's rows in file order, so
        that the result is the state one pass over both would have ended with.

        Column kinds come from the first part's schema (as in one pass); a part whose reading
        of a column differs is an error.
        """
        if later.target_kind != self.target_kind:
            raise DataError(f"Target column {quoted(self.target)} in {self.source} has different "
                            "types in different files; give every file the same types")
        self.n_rows += later.n_rows
        self.n_missing_target += later.n_missing_target
        self.n_missing_dropped += later.n_missing_dropped
        self.y_absmax = max(self.y_absmax, later.y_absmax)
        self.missing_columns |= later.missing_columns
        self._seen_slots |= later._seen_slots
        if self.first_width is None:
            self.first_width = later.first_width
        for a, b in zip(self.columns, later.columns, strict=True):
            if (a.name, a.kind) != (b.name, b.kind):
                raise DataError(f"Column {quoted(a.name)} in {self.source} has different types in "
                                "different files; give every file the same types")
            _merge_column(a, b, self.level_cap)

    def seeded(self) -> Profiler:
        """A copy of this (merged, whole-data) profile that emits, on any part of the data,
        exactly the slots and fills that one pass would have ended with: every level, every
        missing indicator, the global fills. Its counters start at zero."""
        import copy

        out = copy.deepcopy(self)
        out.n_rows = out.n_missing_target = out.n_missing_dropped = 0
        out.missing_columns = set()
        for col in out.columns:
            col.n_present = 0
        return out

    # -- the outcome -------------------------------------------------------------------------
    def dead_slots(self) -> list[tuple]:
        """Slots that can no longer become features (their column's reading was ruled out)."""
        dead = []
        for col in self.columns:
            if col.kind != "text":
                continue
            if not (col.number_ok or col.thousands_ok):
                dead.append(("num", col.name))
            dead.extend(("lvl", col.name, lv) for lv in col.dropped_levels)
        return [k for k in dead if k in self._seen_slots]

    def _counts_rows(self, col: _Column) -> bool:
        """The column is 0…n−1 or 1…n in file order, with no value missing."""
        return (col.integral and not col.has_missing and col.head in (0.0, 1.0)
                and (col.step == 1.0 or (self.n_rows == 1 and col.step is None)))

    def _decide(self, col: _Column) -> tuple[str, str]:
        """(kind, reason) of a column after all batches."""
        kind, reason = self._guess(col)
        if kind != "excluded" or col.name not in self.explicit:
            return kind, reason
        if col.kind == "numeric" and reason.startswith("ID-like"):  # used as asked
            return "numeric", ""
        if col.kind == "text" and col.levels:  # dates with few values: one level each
            return "categorical", ""
        if col.kind == "text" and col.levels is None:
            why = (f"more than {self.level_cap} distinct values; raise --max-levels to "
                   "one-hot encode it, or")
        else:
            why = f"{reason}, which cannot be a feature;"
        raise DataError(f"Column {quoted(col.name)} in {self.source}, named in --features, has "
                        f"{why} remove it from --features")

    def _guess(self, col: _Column) -> tuple[str, str]:
        """(kind, reason) of a column after all batches, by the heuristics alone."""
        if col.kind == "excluded":
            return "excluded", col.reason
        if not col.observed and col.kind != "text" or (col.kind == "text" and col.levels == {}):
            return "excluded", "all values missing"
        if col.kind == "bool":
            return "bool", ""
        if col.kind == "numeric":
            if col.integral and _ID_NAME.search(col.name.strip()):
                return "excluded", "ID-like (an ID name)"
            if self._counts_rows(col):
                return "excluded", "ID-like (row numbers)"
            return "numeric", ""
        if col.number_ok:
            return "numeric_text", ""
        if col.thousands_ok:
            return self.grouped, ""
        if col.date_ok:
            return "excluded", "date/time"
        if col.levels is not None and is_categorical(len(col.levels), col.n_present,
                                                     self.max_levels):
            return "categorical", ""
        if self.max_levels is not None:
            return "excluded", (f"text with more than {self.max_levels} distinct values (IDs "
                                "or free text; raise --max-levels to one-hot encode)")
        return "excluded", ("text whose values rarely repeat (IDs, names or free text; "
                            "--max-levels N one-hot encodes text with at most N distinct "
                            "values)")

    def recipe(self) -> tuple[Recipe, list[Warn], dict[str, tuple]]:
        """The final recipe, the warnings, and for each feature its value slot."""
        if self.n_rows == 0:
            raise DataError(f"{self.source} has no data rows; give a file with data")
        if self.n_missing_target == self.n_rows:
            raise DataError(f"Target column {quoted(self.target)} in {self.source} has no values; "
                            "choose a column with numeric values")
        if 0.0 < self.y_absmax < TARGET_RANGE[0]:
            raise DataError(f"Target column {quoted(self.target)} in {self.source} has only values "
                            f"smaller than {TARGET_RANGE[0]:g} in size, whose squared errors "
                            "underflow; multiply the target by a power of ten")
        # The specs' fields, column by column (made in bulk below: 20,000 columns).
        col_name, col_kind, col_levels = [], [], []
        f_name, f_column, f_kind, f_level = [], [], [], []
        slots: dict[str, tuple] = {}
        excluded: dict[str, list[str]] = {}
        for col in self.columns:
            kind, reason = self._decide(col)
            if kind == "excluded":
                excluded.setdefault(reason, []).append(col.name)
                continue
            col_name.append(col.name)
            col_kind.append(kind)
            if kind == "categorical":
                levels = tuple(sorted(col.levels or {}))
                col_levels.append(levels)
                for lv in levels:
                    name = f"{col.name}={lv}"
                    f_name.append(name)
                    f_column.append(col.name)
                    f_kind.append("onehot")
                    f_level.append(lv)
                    slots[name] = ("lvl", col.name, lv)
                continue
            col_levels.append(())
            f_name.append(col.name)
            f_column.append(col.name)
            f_kind.append("numeric" if kind != "bool" else "bool")
            f_level.append(None)
            slots[col.name] = ("x", col.name) if col.kind != "text" else ("num", col.name)
        columns = list(ColumnSpec.many(name=col_name, kind=col_kind, levels=col_levels))
        features = FeatureSpec.many(name=f_name, column=f_column, kind=f_kind, level=f_level)
        warnings = []
        for reason, names in excluded.items():
            code = "excluded_all_missing" if reason == "all values missing" else "excluded_column"
            hint = ""
            if reason.startswith("ID-like"):
                hint = (f"; pass --features {names[0]} to use it" if len(names) == 1
                        else "; pass --features NAME to use one")
            elif reason == "date/time":
                hint = (f"; pass --features {names[0] if len(names) == 1 else 'NAME'} to "
                        f"one-hot encode its values (at most {self.level_cap:,} of them)")
            warnings.append(Warn(code, f"Excluded {reason}: {list_names(names, 20)}{hint}"))
        if self.n_missing_target:
            warnings.append(Warn("dropped_missing_target",
                                 f"Dropped {self.n_missing_target} rows with a missing target "
                                 f"{quoted(self.target)}"))
        featured = set(f_column)
        used = sorted(c for c in self.missing_columns if c in featured)
        if used and self.missing == "mean":
            warnings.append(Warn("imputed_mean", "Imputed missing values with the training "
                                 f"mean in {list_names(used, 20)}"))
        if self.n_missing_dropped:
            cols = sorted(self.missing_columns)
            warnings.append(Warn("dropped_missing_features",
                                 f"Dropped {self.n_missing_dropped} rows with missing values "
                                 f"in {list_names(cols)} (--missing drop)"))
        columns.append(ColumnSpec(self.target, self.target_kind))
        if self.fold_column is not None:
            columns.append(ColumnSpec(self.fold_column, "fold"))
        if self.group_column is not None:
            columns.append(ColumnSpec(self.group_column, "group"))
        if not features:
            why = "; ".join(f"{k}: {list_names(v)}" for k, v in excluded.items())
            raise DataError(
                f"{self.source} has no usable feature columns besides the target "
                f"{quoted(self.target)} ({why}); give numeric, boolean or low-cardinality text "
                "columns"
            )
        recipe = Recipe(target=self.target, columns=tuple(columns), features=features,
                        fold_column=self.fold_column)
        return recipe, warnings, slots

    def fills(self) -> dict[str, float]:
        """The fill value of each column's missing values in the slot statistics (as held:
        scaled, see :meth:`units`)."""
        return {c.name: c.fill for c in self.columns}

    def units(self) -> dict[str, float]:
        """How each column's values are held in the slot statistics: value × unit (a power
        of two; 1 for most columns)."""
        units = np.ldexp(1.0, -np.array([c.exp or 0 for c in self.columns], dtype=np.int64))
        return dict(zip([c.name for c in self.columns], units.tolist(), strict=True))


def _merge_column(a: _Column, b: _Column, max_levels: int) -> None:
    """Merge column profile ``b`` (later rows) into ``a`` (earlier rows)."""
    if not a.observed and b.observed:
        a.observed, a.fill = True, b.fill
    if a.exp is None:
        a.exp = b.exp
    a.has_missing |= b.has_missing
    a.n_present += b.n_present
    a.number_ok &= b.number_ok
    a.thousands_ok &= b.thousands_ok
    a.date_ok &= b.date_ok
    if a.levels is not None and b.levels is not None:
        for v in b.levels:
            a.levels.setdefault(v, None)
        if len(a.levels) > max_levels:
            a.dropped_levels = list(a.levels)
            a.levels = None
    elif a.levels is not None:  # b overflowed: so does the union
        a.dropped_levels = list(a.levels) + [v for v in b.dropped_levels if v not in a.levels]
        a.levels = None
    elif b.levels is None:
        a.dropped_levels += [v for v in b.dropped_levels if v not in set(a.dropped_levels)]
    # Integers counting rows in steps of +1, across the boundary too.
    if not (a.integral and b.integral):
        a.integral = False
        return
    if b.last is None:
        return
    if a.last is None:
        a.step, a.head, a.last = b.step, b.head, b.last
        return
    steps = {s for s in (a.step, b.step) if s is not None}
    if any(np.isnan(s) for s in steps):
        a.step, a.last = np.nan, b.last
        return
    d = float(b.head) - float(a.last)
    steps.add(d)
    a.step = steps.pop() if len(steps) == 1 and d == 1 else np.nan
    a.last = b.last


def _column_kind(t: pa.DataType) -> tuple[str, str]:
    """(kind, reason) of a feature column of (value) type ``t``, before any value is seen."""
    if pa.types.is_boolean(t):
        return "bool", ""
    if _is_number(t):
        return "numeric", ""
    if _is_text(t) or pa.types.is_null(t):
        return "text", ""
    if pa.types.is_temporal(t):
        return "excluded", "date/time"
    if pa.types.is_nested(t):
        return "excluded", "nested"
    return "excluded", f"unsupported type {t}"


def _target_kind(t: pa.DataType, target: str, source: str) -> str:
    if _is_number(t):
        return "numeric"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_null(t):
        return "null"
    if _is_text(t):
        return "text"
    raise DataError(f"Target column {quoted(target)} in {source} has type {t}, not numbers; "
                    "choose a numeric target column")


def column_values(arr, spec: ColumnSpec) -> np.ndarray:
    """One source column as float64 (NaN for missing), read the way ``spec`` says."""
    if spec.kind in ("thousands", "decimal_comma"):
        return parse_text_numbers(arr, spec.kind)
    if spec.kind == "numeric_text":
        return parse_text_numbers(arr, "plain")
    if spec.kind == "text":  # a target written as text
        return parse_text_numbers(arr, "thousands")
    return _floats(arr)


OTHER = "(other)"


def pool_rare_levels(recipe: Recipe, counts: np.ndarray, min_count: int
                     ) -> tuple[Recipe, list[np.ndarray], list[Warn]]:
    """Pool the levels of each categorical seen on fewer than ``min_count`` training rows into
    one feature ``column=(other)`` (scikit-learn's ``OneHotEncoder(min_frequency=…)``: the
    pooled feature exists only when at least one level is pooled).

    ``counts`` (n_features,) are the training-row counts of each feature's level (ignored for
    other features). Returns the new recipe; for each of its features the indices of the old
    features whose sum it is (a linear map, so the statistics pool exactly); and a warning
    naming what was pooled.
    """
    specs = {c.name: c for c in recipe.columns}
    features: list[FeatureSpec] = []
    sources: list[np.ndarray] = []
    columns: dict[str, ColumnSpec] = {}
    pooled_names: list[str] = []
    done: set[str] = set()
    for j, f in enumerate(recipe.features):
        if f.kind != "onehot":
            features.append(f)
            sources.append(np.array([j]))
            continue
        if f.column in done:
            continue
        done.add(f.column)
        idx = [i for i, g in enumerate(recipe.features) if g.column == f.column]
        rare = [i for i in idx if counts[i] < min_count]
        keep = [i for i in idx if counts[i] >= min_count]
        for i in keep:
            features.append(recipe.features[i])
            sources.append(np.array([i]))
        if rare:
            features.append(FeatureSpec(f"{f.column}={OTHER}", f.column, "other"))
            sources.append(np.array(rare))
            pooled_names.append(f"{f.column} ({len(rare)} of {len(idx)})")
        columns[f.column] = ColumnSpec(
            f.column, specs[f.column].kind,
            tuple(recipe.features[i].level for i in keep),
            tuple(recipe.features[i].level for i in rare))
    warnings = []
    if pooled_names:
        warnings.append(Warn("pooled_levels", (
            f"Pooled the levels seen on fewer than {min_count} training rows into one feature "
            f"column={OTHER}: {list_names(pooled_names, 20)} (--min-level-count)")))
    new = Recipe(recipe.target, tuple(columns.get(c.name, c) for c in recipe.columns),
                 tuple(features), recipe.fold_column)
    return new, sources, warnings


def pool_columns(X: np.ndarray, sources: list[np.ndarray]) -> np.ndarray:
    """The design of the pooled recipe from that of the unpooled one (NaN stays NaN)."""
    if all(s.size == 1 for s in sources) and len(sources) == X.shape[1]:
        return X
    return np.column_stack([X[:, s[0]] if s.size == 1 else X[:, s].sum(axis=1)
                            for s in sources]) if sources else X[:, :0]


def _is_numbers(recipe: Recipe, names: list[str]) -> bool:
    """The recipe's features are exactly the number columns ``names``, in order."""
    if len(recipe.features) != len(names) or [f.column for f in recipe.features] != names:
        return False
    kinds = {c.name: c.kind for c in recipe.columns}
    return all(f.kind == "numeric" and kinds[f.column] == "numeric" for f in recipe.features)


def design_matrix(table: pa.Table, recipe: Recipe, order: str = "C",
                  numbers: tuple[list[str], np.ndarray] | None = None) -> np.ndarray:
    """Apply ``recipe`` to ``table``: X (n_samples, n_features), NaN where missing.

    ``order``: the memory layout, ``"F"`` for the solvers that read the matrix column by
    column (it is also written a column at a time). Runs of plain number columns are
    converted together (:func:`_matrix`), not one by one (a wide table has tens of
    thousands). ``numbers``: those columns already converted (``Batch.numbers`` of the same
    table); when the recipe is exactly them, in order, that matrix itself is returned.
    """
    n = table.num_rows
    if numbers is not None and _is_numbers(recipe, numbers[0]):
        M = numbers[1]
        if M.shape[0] == n and (M.flags.f_contiguous if order == "F" else M.flags.c_contiguous):
            return M
    specs = {c.name: c for c in recipe.columns}
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    # The plan: per source column, in feature order, whether it is a plain number column
    # (converted with the others of its run) or made on its own.
    plain: dict[pa.DataType, bool] = {}
    plan: list[tuple[str, bool]] = []
    done: set[str] = set()
    for f in recipe.features:
        if f.column in done:
            continue
        done.add(f.column)
        t = types[f.column]
        if t not in plain:
            plain[t] = pa.types.is_integer(t) or (pa.types.is_floating(t)
                                                  and not pa.types.is_float16(t))
        plan.append((f.column, specs[f.column].kind == "numeric" and plain[t]))
    pos = None
    if numbers is not None:
        names, M = numbers
        pos = {c: i for i, c in enumerate(names)}
    X = np.empty((n, len(recipe.features)), dtype=np.float64, order=order)
    run: list[str] = []  # plain number columns waiting to be converted together
    j = 0

    def flush() -> None:
        if not run:
            return
        if pos is None:
            X[:, j - len(run):j] = _matrix(table, run)
        else:
            idx = [pos[c] for c in run]
            whole = idx == list(range(idx[0], idx[0] + len(idx)))
            X[:, j - len(run):j] = M[:, idx[0]:idx[-1] + 1] if whole else M[:, idx]
        run.clear()

    for column, is_plain in plan:
        if is_plain:
            run.append(column)
            j += 1
            continue
        flush()
        spec = specs[column]
        arr = table.column(column)
        if spec.kind == "categorical":
            import pyarrow.compute as pc

            text = _text(arr)
            miss = _bools(pc.is_null(text))
            for g in recipe.features:
                if g.column == column:
                    if g.kind == "other":
                        known = pc.is_in(text, value_set=pa.array(list(spec.levels),
                                                                  pa.string()))
                        col = _floats(pc.invert(known).fill_null(False))
                    else:
                        col = _floats(pc.equal(text, g.level).fill_null(False))
                    col[miss] = np.nan
                    X[:, j] = col
                    j += 1
        else:
            X[:, j] = column_values(arr, spec)
            j += 1
    flush()
    return X

"""Apply a fitted result to data: ``transform`` (keep the selected columns) and ``predict``.

A result file (``fit --format json``) carries the whole preparation recipe: the source columns
and how each was read, the one-hot levels, the imputation values, and the coefficients. Nothing
is refitted, and the data is streamed: memory does not grow with the rows.

Rules for data that differs from the training data (documented in docs/pipelines.md):

- a column the model needs (a feature with a non-zero coefficient) that is missing from the
  data is an error; columns the model does not need may be absent;
- a missing value is imputed with the training mean, as ``fit`` did;
- a category level not seen at fit time goes to ``column=(other)`` when the column has one
  (rare levels were pooled at fit time); else it counts as none of the known levels (all its
  one-hot features 0), with a warning that counts the rows;
- a numeric column whose values are no longer numbers is an error naming the column and a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from l1select import io as l1io
from l1select.errors import DataError, InputError, did_you_mean, list_names, quoted
from l1select.prepare import column_values
from l1select.select import predict as predict_rows
from l1select.types import ColumnSpec, Warn


@dataclass(frozen=True)
class Model:
    """What ``transform`` and ``predict`` need from a result file."""

    path: str
    target: str
    columns: dict[str, ColumnSpec]
    feature_columns: tuple[str, ...]
    kinds: tuple[str, ...]
    levels: tuple[str | None, ...]
    coef: np.ndarray
    impute: np.ndarray
    intercept: float
    selected_columns: tuple[str, ...]
    family: str = "gaussian"
    classes: tuple | None = None  # binomial: (negative, positive) target values
    threshold: float = 0.5  # binomial: the fit's --threshold


def load_model(path: str) -> Model:
    """Read a result file written by ``l1select fit --format json``."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: no such result file; give the JSON written by "
                         "'l1select fit … --format json'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a result file ({exc}); give the JSON written by "
                         "'l1select fit … --format json'") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or "recipe" not in doc:
        raise InputError(f"{path} is not an l1select result (schema_version 1 with a recipe); "
                         "write one with 'l1select fit … --format json'")
    try:
        recipe = doc["recipe"]
        columns = {c["name"]: ColumnSpec(c["name"], c["kind"], tuple(c.get("levels") or ()),
                                         tuple(c.get("pooled") or ()))
                   for c in recipe["columns"]}
        coefs = {f["name"]: f for f in doc["features"]}
        feats = recipe["features"]
        model = Model(
            path=path,
            target=recipe["target"],
            columns=columns,
            feature_columns=tuple(f["column"] for f in feats),
            kinds=tuple(f["kind"] for f in feats),
            levels=tuple(f.get("level") for f in feats),
            coef=np.array([float(coefs[f["name"]]["coef"] or 0.0) for f in feats]),
            impute=np.array([float(f["impute"]) for f in feats]),
            intercept=float(doc["intercept"]),
            selected_columns=tuple(dict.fromkeys(
                f["column"] for f in doc["features"] if f.get("selected"))),
            family=recipe.get("family", "gaussian"),
            classes=tuple(recipe["classes"]) if recipe.get("classes") else None,
            threshold=float(doc.get("params", {}).get("threshold") or 0.5),
        )
        if model.family == "binomial" and (model.classes is None or len(model.classes) != 2):
            raise KeyError("recipe.classes")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: the result file is incomplete ({exc!r} is missing or "
                         "wrong); write it again with 'l1select fit … --format json'") from None
    return model


def _require(names: list[str], wanted: list[str], source: str, what: str) -> None:
    have = set(names)
    missing = [c for c in wanted if c not in have]
    if missing:
        hint = did_you_mean(missing[0], names)
        raise DataError(f"{source} lacks {what} {list_names(missing)}"
                        f"{'; ' + hint if hint else ''} (columns: {list_names(names)})")


def _stream(opened, columns: list[str], writer: l1io.TableWriter, make_batch, text: bool):
    """Read ``columns`` of the data batch by batch and write what ``make_batch`` returns."""
    source, header, data = opened
    wanted = set(columns)
    ordered = [c for c in header.names if c in wanted]
    text = text and source.format == "csv"

    def one_pass(overrides):
        schema = None
        for batch, start in l1io.batches(source, header, ordered, data, l1io.Scan(), overrides,
                                         text=text):
            out = make_batch(batch, start, source.display)
            schema = out.schema
            writer.write(out)
        return source, schema

    return l1io.with_retypes(one_pass, on_restart=writer.restart)


def transform(data_path: str, model: Model, keep: tuple[str, ...] = (),
              output: str | None = None) -> dict:
    """Write the data with only the selected source columns, the target when present, and the
    ``keep`` columns, in the original column order and values."""
    writer = l1io.TableWriter(output)
    try:
        opened = l1io.open_header(data_path)
        source, header, _ = opened
        _require(header.names, list(keep), source.display, "the --keep columns")
        wanted = set(model.selected_columns) | set(keep)
        if model.target in header.names:
            wanted.add(model.target)
        names = set(header.names)
        absent = [c for c in model.selected_columns if c not in names]
        if absent:
            _require(header.names, absent, source.display, "selected columns")
        columns = [c for c in header.names if c in wanted]

        def select(batch, start, shown):
            return batch

        _, schema = _stream(opened, columns, writer, select, text=True)
        writer.close(schema or pa.schema([(c, pa.string()) for c in columns]))
    except BaseException:
        writer.abort()
        raise
    return {"rows": writer.rows, "columns": columns}


def predict(data_path: str, model: Model, keep: tuple[str, ...] = (),
            output: str | None = None, threshold: float | None = None
            ) -> tuple[dict, list[Warn]]:
    """Write one prediction per input row, in input order (``prediction`` and the ``keep``
    columns). The target is not needed and is ignored.

    For a binomial model: ``probability`` (of the positive class) and ``prediction``, the
    class label at ``threshold`` (None: the fit's).
    """
    binomial = model.family == "binomial"
    cut = model.threshold if threshold is None else threshold
    if binomial and not (0.0 < cut < 1.0):
        from l1select.errors import ConfigError

        raise ConfigError(f"--threshold must be between 0 and 1, not {cut}")
    head = ["probability", "prediction"] if binomial else ["prediction"]
    needed = list(dict.fromkeys(model.feature_columns[j] for j in range(model.coef.size)
                                if model.coef[j] != 0.0))
    unseen: dict[str, dict] = {}
    writer = l1io.TableWriter(output)

    def make(batch, start, shown):
        # The full design, columns the model does not need at 0 (their coefficient is 0), and
        # the same product as fit's in-sample prediction (select.predict), so that predicting
        # the training file reproduces it exactly.
        n = batch.num_rows
        X = np.zeros((n, model.coef.size))
        names = set(batch.schema.names)
        done: dict[str, object] = {}
        for j, col in enumerate(model.feature_columns):
            if col not in names:
                continue
            if col not in done:
                done[col] = _column(batch.column(col), model.columns[col], shown, unseen)
            values = done[col]
            if model.kinds[j] in ("onehot", "other"):
                text, miss = values
                X[:, j] = _onehot(text, model.levels[j]) if model.kinds[j] == "onehot" else \
                    _other(text, model.columns[col])
                X[miss, j] = np.nan
            else:
                X[:, j] = values
        pred = predict_rows(X, model.coef, model.intercept, model.impute)
        if binomial:
            prob = 0.5 * (1.0 + np.tanh(0.5 * pred))  # the logistic function of the log-odds
            label = np.where(prob > cut, 1, 0)
            arrays = [pa.array(prob, pa.float64()),
                      pa.array([model.classes[k] for k in label])]
        else:
            arrays = [pa.array(pred, pa.float64())]
        arrays += [batch.column(k) for k in keep]
        return pa.record_batch(arrays, names=[*head, *keep])

    try:
        opened = l1io.open_header(data_path)
        source, header, _ = opened
        _require(header.names, needed, source.display, "columns the model uses:")
        _require(header.names, list(keep), source.display, "the --keep columns")
        names = set(header.names)
        present = [c for c in dict.fromkeys(model.feature_columns) if c in names]
        columns = list(dict.fromkeys(present + needed + list(keep)))
        _, schema = _stream(opened, columns, writer, make, text=False)
        empty = [("probability", pa.float64()), ("prediction", pa.string())] if binomial \
            else [("prediction", pa.float64())]
        writer.close(schema or pa.schema(empty))
    except BaseException:
        writer.abort()
        raise
    warnings = [
        Warn("unseen_level", f"{info['rows']} rows have values of {quoted(col)} not seen at fit "
             f"time ({list_names(sorted(info['values'])[:5])}); they count as none of the "
             "known levels")
        for col, info in unseen.items()
    ]
    return {"rows": writer.rows}, warnings


def _onehot(text: pa.Array, level: str | None) -> np.ndarray:
    from l1select.prepare import _floats

    return _floats(pc.equal(text, level).fill_null(False))


def _other(text: pa.Array, spec: ColumnSpec) -> np.ndarray:
    """``column=(other)``: 1 where the value is none of the levels with their own feature."""
    from l1select.prepare import _floats

    known = pc.is_in(text, value_set=pa.array(list(spec.levels), pa.string()))
    return _floats(pc.invert(known).fill_null(False))


def _column(arr, spec: ColumnSpec, shown: str, unseen: dict):
    """One source column read the way the recipe says; categorical: (text, missing mask)."""
    from l1select.prepare import _bools, _text

    if spec.kind == "categorical":
        text = _text(arr)
        miss = _bools(pc.is_null(text))
        if spec.pooled:  # an unseen level is one more rare level: it goes to (other)
            return text, miss
        known = pc.is_in(text, value_set=pa.array(list(spec.levels), pa.string()))
        new = pc.and_(pc.invert(known.fill_null(True)), pc.is_valid(text))
        if pc.any(new).as_py():
            info = unseen.setdefault(spec.name, {"rows": 0, "values": set()})
            info["rows"] += int(pc.sum(new).as_py())
            info["values"].update(pc.unique(text.filter(new)).to_pylist()[:5])
        return text, miss
    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    numeric_ok = (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                  or pa.types.is_boolean(t) or pa.types.is_null(t))
    if spec.kind in ("numeric", "bool") and not numeric_ok:
        sample = [v for v in pc.unique(arr.drop_null()).to_pylist()[:3]]
        raise DataError(f"Column {quoted(spec.name)} in {shown} held numbers at fit time but "
                        f"now has {t} values such as {', '.join(repr(v) for v in sample)}; fix "
                        "the column or refit")
    try:
        return column_values(arr, spec)
    except (pa.ArrowInvalid, ValueError):
        raise DataError(f"Column {quoted(spec.name)} in {shown} has values that are not numbers; "
                        "fix the column or refit") from None

"""Render a result: table | json | csv. Renders only; computes nothing."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from l1select import __version__, jsontext
from l1select._gc import paused as gc_paused
from l1select.types import SelectionResult

SCHEMA_VERSION = 1


def _clean(value: Any, path: str, bad: list[str]) -> Any:
    """Replace NaN and infinities by None (recording where), recursively."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        bad.append(path)
        return None
    if isinstance(value, dict):
        return {k: _clean(v, f"{path}.{k}" if path else k, bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    return value


def _document(result: SelectionResult) -> dict[str, Any]:
    """The JSON contract's keys and values as they are (NaN and infinities included)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "l1select", "version": __version__},
        "input": result.input,
        "params": result.params,
        "alpha": result.alpha,
        "cv": result.cv,
        "intercept": result.intercept,
        "features": [_feature(f) for f in result.features],
        # Read only here; to_dict's clean-up copies every object.
        "columns": list(result.columns),
        "selected": list(result.selected),
        "sparsity": result.sparsity,
        "test": result.test,
        "warnings": [w.to_dict() for w in result.warnings],
        "recipe": result.recipe,
        "coef_path": result.coef_path,
        "stability": result.stability,
        "refit": result.refit,
        "intercept_ols": result.intercept_ols,
        "penalty": result.penalty,
    }


def _feature(f) -> dict[str, Any]:
    """One feature's object; ``odds_ratio`` only where there is one (binomial)."""
    out = {"name": f.name, "column": f.column, "coef": f.coef, "coef_std": f.coef_std,
           "selected": f.selected, "fold_frequency": f.fold_frequency,
           "stability": f.stability, "penalty_factor": f.penalty_factor,
           "alternates": None if f.alternates is None else list(f.alternates),
           "coef_ols": f.coef_ols}
    if f.odds_ratio is not None:
        out["odds_ratio"] = f.odds_ratio
    return out


def to_dict(result: SelectionResult) -> dict[str, Any]:
    """The JSON contract (schema_version 1) as a plain dict, with no NaN or infinite values."""
    bad: list[str] = []
    doc = _clean(_document(result), "", bad)
    if bad:
        doc["warnings"].append({
            "code": "non_finite",
            "message": f"Non-finite values written as null: {', '.join(bad[:10])}",
        })
    return doc


# Past this many candidate features the document is written compactly: a file for programs,
# a fifth the size (the indented text of 20,000 features is 25 MB).
INDENT_MAX_FEATURES = 2000


def render_json(result: SelectionResult) -> str:
    """The JSON contract as text: ``json.dumps(to_dict(result), indent=2)``, compact past
    ``INDENT_MAX_FEATURES`` features (the same characters, written by :mod:`jsontext`)."""
    indent = 2 if len(result.features) <= INDENT_MAX_FEATURES else None
    with gc_paused():  # the document holds an object per feature and per column
        return _json_text(result, indent)


def _json_text(result: SelectionResult, indent: int | None) -> str:
    try:
        # Most results hold no NaN or infinity: the encoder then checks every float as it
        # writes it, where walking the document in Python to clean it took 1.2 s for 20,000
        # features (tuples and lists encode alike, so the text is the same).
        text = jsontext.dumps(_document(result), indent)
    except ValueError:  # some non-finite value: clean it and say where
        text = jsontext.dumps(to_dict(result), indent)
    return text + "\n"


def render_csv(result: SelectionResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # The five columns are a contract; the opt-in analyses add theirs after them.
    extra = [(key, get) for key, get, on in (
        ("stability", lambda f: f.stability, result.stability is not None),
        ("penalty_factor", lambda f: f.penalty_factor, result.penalty is not None),
        ("coef_ols", lambda f: f.coef_ols, result.refit is not None)) if on]
    writer.writerow(["name", "column", "coef", "coef_std", "selected", *(k for k, _ in extra)])
    for f in result.features:
        writer.writerow([f.name, f.column, repr(f.coef), repr(f.coef_std),
                         "true" if f.selected else "false", *(_cell(get(f)) for _, get in extra)])
    return buf.getvalue()


def _cell(value: float | None) -> str:
    """A CSV cell: full precision, empty for a missing or non-finite value."""
    return "" if value is None or not math.isfinite(value) else repr(value)


def render_names(result: SelectionResult) -> str:
    """The selected feature names, one per line (for xargs, cut and friends)."""
    return "".join(f"{name}\n" for name in result.selected)


def render_ndjson(result: SelectionResult) -> str:
    """One JSON object per candidate feature, one per line."""
    doc = to_dict(result)
    return "".join(json.dumps(f, allow_nan=False) + "\n" for f in doc["features"])


RENDERERS = {"json": render_json, "csv": render_csv, "names": render_names,
             "ndjson": render_ndjson}


def render(fmt: str, result: SelectionResult) -> str:
    """The result as text in one of the machine formats (``json``, ``csv``, ``names``,
    ``ndjson``)."""
    return RENDERERS[fmt](result)


def folds_text(spec: dict | None, n_folds: int) -> str:
    """How the CV folds were made, from the ``params.cv`` entry: ``5 folds``, ``10 folds: 2
    repeats × 5, groups: site``, ``4 forward folds``."""
    spec = spec or {}
    if spec.get("scheme") == "forward":
        return f"{n_folds} forward folds"
    text = f"{n_folds} folds"
    more = []
    if spec.get("repeats", 1) != 1:
        more.append(f"{spec['repeats']} repeats × {spec.get('folds')}")
    if spec.get("group_column"):
        more.append(f"groups: {spec['group_column']}")
    return text + (": " + ", ".join(more) if more else "")


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def render_table(result: SelectionResult, console) -> None:
    """Print the selected features and the sparsity report on a rich console.

    Names come from the data: they are escaped, so ``[brackets]`` in them stay text.
    """
    from rich.markup import escape
    from rich.table import Table

    by_name = {f.name: f for f in result.features}
    top = max((abs(by_name[n].coef_std) for n in result.selected), default=0.0)
    table = Table(title=f"Selected features for '{escape(result.input['target'])}'",
                  title_justify="left")
    table.add_column("feature")
    binomial = result.params.get("family") == "binomial"
    table.add_column("log-odds" if binomial else "coef", justify="right")
    table.add_column("coef (std)", justify="right")
    if binomial:
        table.add_column("OR/SD", justify="right")
    table.add_column("", no_wrap=True)
    folds = any(f.fold_frequency is not None for f in result.features)
    if folds:
        table.add_column("folds", justify="right")
    span = 12 if folds else 20  # leaves room for the folds column in 80 characters
    for column, names in _by_column(result):
        if column is not None:
            table.add_row(f"[bold]{escape(column['column'])}[/] — {column['n_selected']} of "
                          f"{column['n_features']} levels selected", "", "",
                          *([""] if binomial else []), "", *([""] if folds else []))
        for name in names:
            f = by_name[name]
            width = int(round(span * abs(f.coef_std) / top)) if top > 0 else 0
            bar = ("[green]" if f.coef_std > 0 else "[red]") + "█" * max(width, 1) + "[/]"
            shown = name if column is None else "  " + name[len(f.column) + 1:]
            table.add_row(escape(shown), _fmt(f.coef, 6), _fmt(f.coef_std, 4),
                          *([_fmt(f.odds_ratio, 4)] if binomial else []), bar,
                          *([_pct(f.fold_frequency)] if folds else []))
    if not result.selected:
        table.add_row("(none selected)", "", "", "", *([""] if binomial else []),
                      *([""] if folds else []))
    console.print(table)
    _trust_table(result, console)

    sp = result.sparsity
    a = result.alpha
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("features", f"{sp['n_features']} in, {sp['n_selected']} selected "
                                f"({sp['fraction_selected']:.0%})")
    if any(c["kind"] == "categorical" for c in result.columns):
        n_cols = sum(c["selected"] for c in result.columns)
        summary.add_row("columns", f"{len(result.columns)} in, {n_cols} selected")
    ratio = f" (l1_ratio {a['l1_ratio']:g})" if result.params.get("model") == "elasticnet" else ""
    summary.add_row("alpha", f"{_fmt(a['chosen'])} chosen by {result.params.get('rule')}{ratio}"
                    if a["min"] is not None else f"{_fmt(a['chosen'])} (fixed, no CV)")
    if a["min"] is not None:
        summary.add_row("", f"min {_fmt(a['min'])} · 1se {_fmt(a['one_se'])} · "
                            f"max {_fmt(a['max'])}")
    if result.cv is not None:
        cv = result.cv
        r2 = f" · R² {cv['r2']:.3f}" if cv.get("r2") is not None else ""
        label = {"mse": "MSE", "mae": "MAE", "auc": "AUC", "class": "misclass.",
                 "deviance": "deviance"}.get(cv.get("metric", "mse"), cv.get("metric"))
        summary.add_row(f"CV {label}", f"{_fmt(cv['mean'])} ± {_fmt(cv['se'], 3)}{r2} "
                                       f"({folds_text(result.params.get('cv'), cv['n_folds'])})")
        if binomial:
            auc = "—" if cv.get("auc") is None else f"{cv['auc']:.3f}"
            summary.add_row("", f"AUC {auc} · misclassified {cv['misclassification']:.1%} · "
                                f"deviance explained {cv['deviance_explained']:.1%}")
    if result.test is not None and binomial:
        t = result.test
        auc = "—" if t.get("auc") is None else f"{t['auc']:.3f}"
        summary.add_row("test", f"deviance {_fmt(t['deviance'])} · AUC {auc} · accuracy "
                                f"{t['accuracy']:.1%} ({t['n_rows']} rows held out)")
    elif result.test is not None:
        t = result.test
        r2 = f" · R² {t['r2']:.3f}" if t.get("r2") is not None else ""
        summary.add_row("test MSE", f"{_fmt(t['mse'])}{r2} ({t['n_rows']} rows held out)")
    inp = result.input
    summary.add_row("rows", f"{inp['n_rows_used']} used, {inp['n_rows_dropped']} dropped"
                    + (f", {inp['n_rows_test']} held out" if inp.get("n_rows_test") else "")
                    + f" of {inp['n_rows']} read")
    classes = inp.get("classes")
    if classes:
        counts = classes["counts"]
        summary.add_row("classes", " · ".join(
            f"{escape(str(k))} {v}" for k, v in counts.items())
            + f" (positive: {escape(str(classes['positive']))})")
    summary.add_row("intercept", _fmt(result.intercept, 6))
    _trust_summary(result, summary)
    console.print(summary)


def _by_column(result: SelectionResult) -> list[tuple[dict | None, list[str]]]:
    """The selected features in their order, a categorical's levels gathered under its
    column (at the place of its first level): (column summary or None, feature names)."""
    categorical = {c["column"]: c for c in result.columns if c["kind"] == "categorical"}
    column_of = {f.name: f.column for f in result.features}
    out: list[tuple[dict | None, list[str]]] = []
    seen: set[str] = set()
    for name in result.selected:
        col = categorical.get(column_of[name])
        if col is None:
            out.append((None, [name]))
        elif col["column"] not in seen:
            seen.add(col["column"])
            out.append((col, list(col["features"])))
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _trust_table(result: SelectionResult, console) -> None:
    """A second table when there is more to say per feature: stability, penalty factors, the
    OLS refit, alternates. With stability it lists the selected features and every other one
    that reaches 10%; with alternates alone, the features that have some."""
    from rich.markup import escape
    from rich.table import Table

    cols = _trust_columns(result)
    if not cols:
        return
    by_name = {f.name: f for f in result.features}
    names = list(result.selected)
    if [t for t, _ in cols] == ["alternates"]:
        names = [n for n in names if by_name[n].alternates]
    others = []
    if result.stability is not None:
        others = [f for f in result.features if f.name not in result.selected
                  and (f.stability or 0.0) >= 0.1]
        others.sort(key=lambda f: (-(f.stability or 0.0), f.name))
    if not names and not others:
        return
    only_alternates = [t for t, _ in cols] == ["alternates"]
    table = Table(title="Correlated alternates" if only_alternates else "More on the selection",
                  title_justify="left")
    table.add_column("feature")
    if others:
        table.add_column("selected")
    for title, _ in cols:
        table.add_column(title, justify="left" if title == "alternates" else "right")
    for f in [by_name[n] for n in names] + others:
        table.add_row(escape(f.name), *(["yes" if f.selected else "no"] if others else []),
                      *(escape(cell(f)) for _, cell in cols))
    console.print(table)


def _trust_columns(result: SelectionResult) -> list[tuple[str, Any]]:
    """The second table's columns: (title, cell of a feature), those that have values."""
    feats = result.features
    cols: list[tuple[str, Any]] = []
    if result.stability is not None:
        cols.append(("stability", lambda f: "—" if f.stability is None
                     else f"{f.stability:.2f}"))
    if result.penalty is not None:
        cols.append(("penalty", lambda f: "forced" if f.penalty_factor == 0
                     else _fmt(f.penalty_factor, 3)))
    if result.refit is not None:
        cols.append(("coef (OLS)", lambda f: _fmt(f.coef_ols, 6)))
    if any(f.alternates for f in feats):
        cols.append(("alternates", lambda f: ", ".join(f.alternates or ())))
    return cols


def _trust_summary(result: SelectionResult, summary) -> None:
    from rich.markup import escape

    st = result.stability
    if st is not None:
        stable = escape(", ".join(st["stable"])) or "(none)"
        summary.add_row("stability", f"{st['pairs']} complementary pairs · threshold "
                        f"{st['threshold']:g} · alphas {_fmt(st['alphas']['alpha_high'])}…"
                        f"{_fmt(st['alphas']['alpha_low'])}")
        summary.add_row("", f"stable: {stable}")
        summary.add_row("", f"expected false selections ≤ {_fmt(st['bound'], 3)} "
                            f"(q = {st['q']:.2f} of {st['n_features']} features)")
    if result.refit is not None:
        summary.add_row("OLS refit", f"intercept {_fmt(result.intercept_ols, 6)}; "
                                     f"{result.refit['note']}")

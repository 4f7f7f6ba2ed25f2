"""Render a result: table | json | csv. Renders only; computes nothing."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from l1select import __version__
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


def to_dict(result: SelectionResult) -> dict[str, Any]:
    """The JSON contract (schema_version 1) as a plain dict, with no NaN or infinite values."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "l1select", "version": __version__},
        "input": result.input,
        "params": result.params,
        "alpha": result.alpha,
        "cv": result.cv,
        "intercept": result.intercept,
        "features": [
            {"name": f.name, "column": f.column, "coef": f.coef, "coef_std": f.coef_std,
             "selected": f.selected}
            for f in result.features
        ],
        "selected": list(result.selected),
        "sparsity": result.sparsity,
        "test": result.test,
        "warnings": [w.to_dict() for w in result.warnings],
        "recipe": result.recipe,
        "coef_path": result.coef_path,
    }
    bad: list[str] = []
    doc = _clean(doc, "", bad)
    if bad:
        doc["warnings"].append({
            "code": "non_finite",
            "message": f"Non-finite values written as null: {', '.join(bad[:10])}",
        })
    return doc


def render_json(result: SelectionResult) -> str:
    return json.dumps(to_dict(result), indent=2, allow_nan=False) + "\n"


def render_csv(result: SelectionResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "column", "coef", "coef_std", "selected"])
    for f in result.features:
        writer.writerow([f.name, f.column, repr(f.coef), repr(f.coef_std),
                         "true" if f.selected else "false"])
    return buf.getvalue()


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


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def render_table(result: SelectionResult, console) -> None:
    """Print the selected features and the sparsity report on a rich console."""
    from rich.table import Table

    by_name = {f.name: f for f in result.features}
    top = max((abs(by_name[n].coef_std) for n in result.selected), default=0.0)
    table = Table(title=f"Selected features for '{result.input['target']}'", title_justify="left")
    table.add_column("feature")
    table.add_column("coef", justify="right")
    table.add_column("coef (std)", justify="right")
    table.add_column("", no_wrap=True)
    for name in result.selected:
        f = by_name[name]
        width = int(round(20 * abs(f.coef_std) / top)) if top > 0 else 0
        bar = ("[green]" if f.coef_std > 0 else "[red]") + "█" * max(width, 1) + "[/]"
        table.add_row(name, _fmt(f.coef, 6), _fmt(f.coef_std, 4), bar)
    if not result.selected:
        table.add_row("(none selected)", "", "", "")
    console.print(table)

    sp = result.sparsity
    a = result.alpha
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("features", f"{sp['n_features']} in, {sp['n_selected']} selected "
                                f"({sp['fraction_selected']:.0%})")
    ratio = f" (l1_ratio {a['l1_ratio']:g})" if result.params.get("model") == "elasticnet" else ""
    summary.add_row("alpha", f"{_fmt(a['chosen'])} chosen by {result.params.get('rule')}{ratio}"
                    if a["min"] is not None else f"{_fmt(a['chosen'])} (fixed, no CV)")
    if a["min"] is not None:
        summary.add_row("", f"min {_fmt(a['min'])} · 1se {_fmt(a['one_se'])} · "
                            f"max {_fmt(a['max'])}")
    if result.cv is not None:
        cv = result.cv
        r2 = f" · R² {cv['r2']:.3f}" if cv.get("r2") is not None else ""
        summary.add_row("CV MSE", f"{_fmt(cv['mean'])} ± {_fmt(cv['se'], 3)}{r2} "
                                  f"({cv['n_folds']} folds)")
    if result.test is not None:
        t = result.test
        r2 = f" · R² {t['r2']:.3f}" if t.get("r2") is not None else ""
        summary.add_row("test MSE", f"{_fmt(t['mse'])}{r2} ({t['n_rows']} rows held out)")
    inp = result.input
    summary.add_row("rows", f"{inp['n_rows_used']} used, {inp['n_rows_dropped']} dropped"
                    + (f", {inp['n_rows_test']} held out" if inp.get("n_rows_test") else "")
                    + f" of {inp['n_rows']} read")
    summary.add_row("intercept", _fmt(result.intercept, 6))
    console.print(summary)

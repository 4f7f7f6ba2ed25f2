"""A result as one self-contained HTML page, and the index page of a batch. Renders only.

The page holds everything in the one file: inline CSS, the pictures as PNG data URIs, no
script, font or link to anything outside it, so it opens offline and can be attached to a
ticket. A Content-Security-Policy that allows only inline styles and ``data:`` images makes a
browser refuse (and log) anything else. Every piece of text from the result is escaped.
"""

from __future__ import annotations

import base64
import json
import math
import os
import platform
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from l1select.files import write_atomic
from l1select.plots import figure_bytes, figures

# Nothing but inline styles and data: images; links may still be followed (they are
# navigation, not loads).
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_VERSIONED = ("l1select", "numpy", "scikit-learn", "pandas", "pyarrow", "numba", "matplotlib")

_CSS = """
:root { color-scheme: light; --line: #d8dbe0; --muted: #5f6672; --pos: #1f77b4; --neg: #d62728; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d2026; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 70rem; }
h1 { font-size: 1.5rem; margin: 0 0 .2rem; } h2 { font-size: 1.15rem; margin: 2rem 0 .6rem;
  border-bottom: 1px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1rem; }
.sub, .note, figcaption, footer { color: var(--muted); }
table { border-collapse: collapse; margin: .3rem 0; }
th, td { text-align: left; padding: .25rem .7rem .25rem 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { font-weight: 600; padding-right: 1.5rem; white-space: nowrap; }
code, pre, .hash { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .85rem; }
.hash { word-break: break-all; }
pre { background: #f5f6f8; padding: .7rem; overflow-x: auto; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid var(--line); }
.bar { display: inline-block; height: .7rem; min-width: 1px; }
.bar.pos { background: var(--pos); } .bar.neg { background: var(--neg); }
.status-ok { color: #1a7f37; } .status-failed { color: #cf222e; }
.status-skipped, .status-interrupted { color: #9a6700; }
ul.warnings li { margin: .2rem 0; } details summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 2.5rem; font-size: .85rem; }
""".strip()


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "—"
    return str(value)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="l1select">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already (escape before)."""
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{cells}</table>'


def versions(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The versions to reproduce with: the l1select that wrote the result (its ``tool`` key),
    then those installed where the page is rendered."""
    from importlib import metadata

    tool = doc.get("tool") or {}
    rows = [(f"{tool.get('name', 'l1select')} (wrote the result)", str(tool.get("version")))]
    for name in _VERSIONED:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    rows.append(("python", platform.python_version()))
    return rows


def _summary(doc: dict[str, Any]) -> list[tuple[str, str]]:
    inp = doc.get("input") or {}
    sp = doc.get("sparsity") or {}
    a = doc.get("alpha") or {}
    params = doc.get("params") or {}
    cv = doc.get("cv")
    test = doc.get("test")
    rows = [("target", f"<code>{_e(inp.get('target'))}</code>"),
            ("source", f"<code>{_e(inp.get('source'))}</code>")]
    rows_used = [f"{_fmt(inp.get('n_rows_used'))} used"]
    if inp.get("n_rows_dropped"):
        rows_used.append(f"{_fmt(inp['n_rows_dropped'])} dropped")
    if inp.get("n_rows_test"):
        rows_used.append(f"{_fmt(inp['n_rows_test'])} held out for the test")
    rows.append(("rows", _e(", ".join(rows_used) + f" of {_fmt(inp.get('n_rows'))} read")))
    if sp:
        frac = sp.get("fraction_selected")
        share = f" ({frac:.0%})" if isinstance(frac, (int, float)) else ""
        rows.append(("features", _e(f"{sp.get('n_features')} candidates, "
                                    f"{sp.get('n_selected')} selected{share}")))
    columns = doc.get("columns") or []
    if any(c.get("kind") == "categorical" for c in columns):
        n_cols = sum(bool(c.get("selected")) for c in columns)
        how = " (whole columns: --group-categoricals)" if params.get("group_categoricals") \
            else ""
        rows.append(("columns", _e(f"{len(columns)} source columns, {n_cols} selected{how}")))
    model = params.get("model", "lasso")
    ratio = a.get("l1_ratio")
    rows.append(("model", _e(model + (f", l1_ratio {ratio:g}" if model == "elasticnet"
                                      and isinstance(ratio, (int, float)) else ""))))
    if a.get("min") is None:
        rows.append(("alpha", _e(f"{_fmt(a.get('chosen'))} (fixed, no cross-validation)")))
    else:
        rows.append(("alpha", _e(f"{_fmt(a.get('chosen'))} chosen by the "
                                 f"{params.get('rule', '?')} rule")))
        rows.append(("", _e(f"min {_fmt(a.get('min'))} · 1se {_fmt(a.get('one_se'))} · "
                            f"max {_fmt(a.get('max'))}")))
    if cv:
        folds = f" ({cv.get('n_folds')} folds)" if cv.get("n_folds") else ""
        metric = str(cv.get("metric", "mse"))
        rows.append((f"CV {metric if metric == 'deviance' else metric.upper()}",
                     _e(f"{_fmt(cv.get('mean'))} ± {_fmt(cv.get('se'), 3)}{folds}")))
        if "deviance_explained" in cv:  # binomial
            rows.append(("CV AUC", _e(_fmt(cv.get("auc"), 3))))
            rows.append(("misclassified", _e(_fmt(cv.get("misclassification"), 3))))
            rows.append(("deviance explained", _e(_fmt(cv.get("deviance_explained"), 3))))
        else:
            rows.append(("CV R²", _e(_fmt(cv.get("r2"), 3))))
    stab = doc.get("stability")
    if isinstance(stab, dict) and isinstance(stab.get("stable"), list):
        threshold = stab.get("threshold")
        at = f" ≥ {threshold:g}" if isinstance(threshold, (int, float)) else ""
        fits = f" over {stab['n_fits']} half-sample fits" if stab.get("n_fits") else ""
        n = len(stab["stable"])
        rows.append(("stability", _e(f"{n} feature{'s' * (n != 1)} with selection "
                                     f"probability{at}{fits}")))
    if test and "auc" in test:
        rows.append(("test", _e(f"deviance {_fmt(test.get('deviance'))} · AUC "
                                f"{_fmt(test.get('auc'), 3)} · accuracy "
                                f"{_fmt(test.get('accuracy'), 3)} ({_fmt(test.get('n_rows'))} "
                                "rows held out)")))
    elif test:
        rows.append(("test MSE", _e(f"{_fmt(test.get('mse'))} · R² {_fmt(test.get('r2'), 3)} "
                                    f"({_fmt(test.get('n_rows'))} rows held out)")))
    rows.append(("intercept", _e(_fmt(doc.get("intercept"), 6))))
    return rows


def _pictures(doc: dict[str, Any]) -> list[str]:
    figs, skipped = figures(doc)
    captions = {
        "cv": "Mean CV error ± 1 SE against alpha; dashed: alpha_min, dotted: alpha_1se; "
              "top axis: non-zero coefficients.",
        "path": "Coefficients (original scale) along the alpha grid; dashed: the chosen "
                "alpha; the selected features are labelled.",
        "coefficients": "The selected features' standardized coefficients; on the right, "
                        "their stability and fold frequency when the result has them.",
        "roc": "ROC curve of the out-of-fold predictions at the chosen alpha (each row "
               "predicted by the fit that did not see it); dotted: chance.",
    }
    out = ['<div class="figs">']
    for name, fig in figs.items():
        data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
        width, height = (round(v * fig.dpi) for v in fig.get_size_inches())
        out.append(f'<figure id="fig-{_e(name)}"><img src="data:image/png;base64,{data}" '
                   f'width="{width}" height="{height}" alt="{_e(name)} plot">'
                   f"<figcaption>{_e(captions[name])}</figcaption></figure>")
    out.append("</div>")
    out += [f'<p class="note">No {_e(name)} plot: {_e(why)}.</p>' for name, why in skipped]
    return out


def _extra_columns(features: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """fold_frequency and stability, when the result carries them."""
    labels = {"fold_frequency": "selected in folds", "stability": "stability"}
    return [(k, v) for k, v in labels.items() if any(f.get(k) is not None for f in features)]


def _share(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return f"{value:.0%}"
    return _e(_fmt(value))


def _selected_table(doc: dict[str, Any]) -> str:
    by_name = {f["name"]: f for f in doc.get("features", [])}
    chosen = [by_name[n] for n in doc.get("selected", []) if n in by_name]
    if not chosen:
        return '<p class="note">No feature was selected (that is a result: no feature helps '\
               "more than it costs at the chosen alpha).</p>"
    extra = _extra_columns(chosen)
    sizes = [abs(f["coef_std"]) for f in chosen if isinstance(f.get("coef_std"), (int, float))]
    top = max(sizes, default=0.0)
    head = ('<tr><th class="num">#</th><th>feature</th><th>column</th><th class="num">coef</th>'
            '<th class="num">coef (std)</th><th></th>'
            + "".join(f'<th class="num">{_e(label)}</th>' for _, label in extra) + "</tr>")
    rows = []
    # A categorical's selected levels are gathered under one line for its column, at the
    # place of its first level (the order of ``selected``).
    groups = {c.get("column"): c for c in doc.get("columns") or []
              if c.get("kind") == "categorical"}
    ordered, seen = [], set()
    for f in chosen:
        col = groups.get(f.get("column"))
        if col is None:
            ordered.append(f)
        elif col["column"] not in seen:
            seen.add(col["column"])
            ordered.append(col)
            ordered += [by_name[n] for n in col.get("features", []) if n in by_name]
    i = 0
    for f in ordered:
        if "name" not in f:  # a categorical column's line
            rows.append(
                f'<tr class="group"><td></td><td colspan="{5 + len(extra)}"><b>'
                f'{_e(f["column"])}</b> — {_e(f.get("n_selected"))} of '
                f'{_e(f.get("n_features"))} levels selected</td></tr>')
            continue
        i += 1
        std = f.get("coef_std")
        bar = ""
        if isinstance(std, (int, float)) and top > 0:
            width = max(1, round(120 * abs(std) / top))
            bar = (f'<span class="bar {"pos" if std >= 0 else "neg"}" '
                   f'style="width:{width}px"></span>')
        rows.append(
            f'<tr><td class="num">{i}</td><td><code>{_e(f["name"])}</code></td>'
            f'<td>{_e(f.get("column"))}</td><td class="num">{_e(_fmt(f.get("coef"), 6))}</td>'
            f'<td class="num">{_e(_fmt(std))}</td><td>{bar}</td>'
            + "".join(f'<td class="num">{_share(f.get(k))}</td>' for k, _ in extra) + "</tr>")
    return f'<table class="selected">{head}{"".join(rows)}</table>'


def _all_table(doc: dict[str, Any]) -> str:
    feats = doc.get("features", [])
    extra = _extra_columns(feats)
    head = ('<tr><th>feature</th><th>column</th><th class="num">coef</th>'
            '<th class="num">coef (std)</th><th>selected</th>'
            + "".join(f'<th class="num">{_e(label)}</th>' for _, label in extra) + "</tr>")
    rows = "".join(
        f'<tr><td><code>{_e(f.get("name"))}</code></td><td>{_e(f.get("column"))}</td>'
        f'<td class="num">{_e(_fmt(f.get("coef"), 6))}</td>'
        f'<td class="num">{_e(_fmt(f.get("coef_std")))}</td>'
        f'<td>{"yes" if f.get("selected") else ""}</td>'
        + "".join(f'<td class="num">{_share(f.get(k))}</td>' for k, _ in extra) + "</tr>"
        for f in feats)
    return (f"<details><summary>All {len(feats)} candidate features</summary>"
            f'<table class="all">{head}{rows}</table></details>')


def render_report(doc: dict[str, Any]) -> str:
    """The result (the JSON contract's dict) as one self-contained HTML page."""
    inp = doc.get("input") or {}
    target = inp.get("target")
    warnings = doc.get("warnings") or []
    tool = doc.get("tool") or {}
    body = [
        "<header>",
        f"<h1>Features selected for <code>{_e(target)}</code></h1>",
        f'<p class="sub">{_e(inp.get("source"))} · l1select {_e(tool.get("version"))}</p>',
        "</header>",
        '<section id="summary"><h2>Summary</h2>', _kv(_summary(doc)), "</section>",
        '<section id="pictures"><h2>Pictures</h2>', *_pictures(doc), "</section>",
        f'<section id="selected"><h2>Selected features ({len(doc.get("selected", []))})</h2>',
        _selected_table(doc), "</section>",
        '<section id="features"><h2>All features</h2>', _all_table(doc), "</section>",
        f'<section id="warnings"><h2>Warnings ({len(warnings)})</h2>',
    ]
    if warnings:
        body.append('<ul class="warnings">' + "".join(
            f"<li><code>{_e(w.get('code'))}</code> {_e(w.get('message'))}</li>"
            for w in warnings) + "</ul>")
    else:
        body.append('<p class="note">None.</p>')
    body.append("</section>")
    reproduce = [("source", f"<code>{_e(inp.get('source'))}</code>"),
                 ("format", _e(inp.get("format"))),
                 ("sha256", f'<span class="hash">{_e(inp.get("sha256") or "— (stdin)")}</span>'),
                 ("rows read", _e(_fmt(inp.get("n_rows"))))]
    body += [
        '<section id="reproduce"><h2>Reproduce</h2>',
        '<p class="note">The same input (the same sha256) with these parameters and seed '
        "gives the same result with <code>l1select fit</code>.</p>",
        _kv(reproduce),
        "<h3>Parameters</h3>",
        f"<pre>{_e(json.dumps(doc.get('params'), indent=2, sort_keys=True))}</pre>",
        "<h3>Versions</h3>",
        _kv((k, _e(v)) for k, v in versions(doc)),
        "</section>",
        "<footer>Written by l1select. This page is self-contained: no scripts, and no fonts, "
        "images or styles loaded from anywhere else.</footer>",
    ]
    return _page(f"l1select: {target} — {inp.get('source')}", body)


def write_report(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report of a result to ``path``, atomically. Its folder must exist."""
    target = Path(path)
    write_atomic(target, render_report(doc))
    return target


def render_index(summary: dict[str, Any], report_name: str = "report.html") -> str:
    """The index page of a batch: every job with its status, linked to its report.

    ``summary`` is the dict of ``summary.json``; links are relative to its ``output_dir``.
    """
    base = summary.get("output_dir") or "."
    head = ('<tr><th>job</th><th>status</th><th class="num">seconds</th>'
            '<th class="num">selected</th><th class="num">warnings</th><th>source</th>'
            "<th>report / error</th></tr>")
    rows = []
    for job in summary.get("jobs", []):
        status = str(job.get("status"))
        if status == "ok":
            rel = Path(os.path.relpath(job.get("output") or job["name"], base)) / report_name
            where = f'<a href="{_e(quote(rel.as_posix()))}">{_e(rel.as_posix())}</a>'
        else:
            where = _e(job.get("error") or "")
        selected = ("" if job.get("n_selected") is None
                    else f"{job['n_selected']} of {job.get('n_features')}")
        seconds = job.get("seconds")
        rows.append(
            f"<tr><td><code>{_e(job.get('name'))}</code></td>"
            f'<td class="status-{_e(status)}">{_e(status)}</td>'
            f'<td class="num">{_e("" if seconds is None else f"{seconds:.2f}")}</td>'
            f'<td class="num">{_e(selected)}</td>'
            f'<td class="num">{_e("" if job.get("warnings") is None else job["warnings"])}</td>'
            f"<td><code>{_e(job.get('source'))}</code></td><td>{where}</td></tr>")
    counts = ", ".join(f"{summary.get('n_' + s, 0)} {s}"
                       for s in ("ok", "failed", "skipped", "interrupted")
                       if summary.get("n_" + s))
    body = [
        f"<h1>Batch <code>{_e(summary.get('config'))}</code></h1>",
        f'<p class="sub">{_e(summary.get("n_jobs"))} jobs: {_e(counts or "none run")}</p>',
        f'<table class="jobs">{head}{"".join(rows)}</table>',
        "<footer>Written by l1select; each job's folder also holds result.json, "
        "coefficients.csv, config.yaml and job.log.</footer>",
    ]
    return _page(f"l1select batch: {summary.get('config')}", body)


def write_index(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the batch index page to ``path``, atomically. Its folder must exist."""
    target = Path(path)
    write_atomic(target, render_index(summary))
    return target

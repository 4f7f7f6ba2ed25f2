"""Pictures of a result: the CV curve, the coefficient path and the selected coefficients.

Plots take the result as the JSON contract's dict (``report.to_dict`` or a ``result.json``
read back) and draw its numbers as they are: nothing is recomputed here. Each ``plot_*``
function returns a matplotlib :class:`~matplotlib.figure.Figure` (so tests can read the plotted
data back); :func:`write_plots` saves them, atomically, as PNG or SVG.

matplotlib is used through its object API with the Agg canvas, never through pyplot: no
display is needed, and no global backend is switched in a process that imports l1select.
Figures are drawn in matplotlib's default style (not the user's matplotlibrc), and SVG output
has a fixed hash salt and no date, so the same result gives the same bytes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l1select.errors import ConfigError, InputError, did_you_mean
from l1select.files import write_atomic
from l1select.io.result import load_result as read_result

PLOT_NAMES = ("cv", "path", "coefficients", "roc")
# Drawn by default only when the result has what they show.
_OPTIONAL = {"roc": lambda doc: bool((doc.get("cv") or {}).get("roc"))}
FORMATS = ("png", "svg")
FIGSIZE = (8.0, 5.0)  # inches; at DPI, 800 x 500 pixels
DPI = 100



class PlotSkipped(Exception):
    """A picture the result cannot give (no CV with a fixed alpha, a one-alpha path)."""


@dataclass
class PlotOutcome:
    """What :func:`write_plots` did: the files written and the pictures skipped, with why."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result file written by ``l1select fit --format json``, with what the pictures
    need (see :func:`l1select.io.result.load_result` for the errors)."""
    return read_result(path, ("alpha", "features", "selected", "cv", "input"))


# --------------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    """matplotlib's default style whatever the user's matplotlibrc says, and SVG ids that do
    not change from run to run."""
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(
            {"svg.hashsalt": "l1select", "svg.fonttype": "path", "axes.grid": True,
             "grid.alpha": 0.3}):
        yield


def _figure():
    """A figure on the Agg canvas (no pyplot, no display), 800 x 500 pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _num(value: Any) -> float:
    """A JSON number, or NaN for null (matplotlib leaves a gap there)."""
    return math.nan if value is None else float(value)


def _title(doc: dict[str, Any], what: str) -> str:
    target = doc.get("input", {}).get("target")
    return f"{what} for '{target}'" if target else what


def _rule_label(doc: dict[str, Any], which: str) -> str:
    """`` (chosen)`` for the alpha the result's rule (``1se`` or ``min``) picked."""
    return " (chosen)" if doc.get("params", {}).get("rule") == which else ""


def cv_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``cv.path`` for the chosen l1_ratio, in the order of the result."""
    cv = doc.get("cv")
    if not cv or not cv.get("path"):
        raise PlotSkipped("the result has no CV curve (a fixed --alpha runs no CV)")
    ratio = doc["alpha"].get("l1_ratio")
    rows = [r for r in cv["path"] if ratio is None or r.get("l1_ratio") == ratio]
    rows = [r for r in rows if r.get("alpha") is not None and r["alpha"] > 0]
    if not rows:
        raise PlotSkipped(f"cv.path has no row with l1_ratio {ratio}")
    return rows


def plot_cv(doc: dict[str, Any]):
    """Mean CV error with ±1 SE bars against alpha (log scale), as glmnet's ``plot.cv.glmnet``
    draws it: vertical lines at ``alpha_min`` and ``alpha_1se``, the number of non-zero
    coefficients along the top axis. With several l1_ratios, the chosen one's curve.

    Raises :class:`PlotSkipped` when the result has no CV curve.
    """
    rows = cv_rows(doc)
    alphas = [float(r["alpha"]) for r in rows]
    mean = [_num(r.get("mean")) for r in rows]
    se = [_num(r.get("se")) for r in rows]
    a = doc["alpha"]
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        ax.errorbar(alphas, mean, yerr=se, fmt="none", ecolor="0.6", elinewidth=1, capsize=2,
                    gid="cv-se")
        ax.plot(alphas, mean, "o", color="tab:red", markersize=4, label="mean CV error ± 1 SE",
                gid="cv-mean")
        for key, label, style in (("min", "alpha_min", "--"), ("one_se", "alpha_1se", ":")):
            if a.get(key) is not None:
                which = "min" if key == "min" else "1se"
                ax.axvline(a[key], color="0.25", linestyle=style, linewidth=1.2,
                           label=f"{label} = {a[key]:.4g}{_rule_label(doc, which)}",
                           gid=f"cv-{label}")
        ax.set_xscale("log")
        ax.set_xlabel("alpha (log scale)")
        metric = (doc.get("cv") or {}).get("metric", "mse").upper()
        folds = (doc.get("cv") or {}).get("n_folds")
        ax.set_ylabel(f"{metric} ({folds}-fold CV)" if folds else f"{metric} (CV)")
        ratio = a.get("l1_ratio")
        extra = f", l1_ratio {ratio:g}" if ratio is not None and ratio != 1 else ""
        ax.set_title(_title(doc, "Cross-validation error") + extra, fontsize=11)
        ax.legend(loc="best", fontsize=9)
        _nonzero_axis(ax, alphas, [r.get("n_nonzero") for r in rows])
    return fig


def _nonzero_axis(ax, alphas: list[float], counts: list[Any], n_ticks: int = 10) -> None:
    """The number of non-zero coefficients at (some of) the alphas, along the top axis."""
    from matplotlib.ticker import NullLocator

    top = ax.secondary_xaxis("top")
    step = max(1, math.ceil(len(alphas) / n_ticks))
    idx = list(range(0, len(alphas), step))
    top.set_xticks([alphas[i] for i in idx],
                   labels=["" if counts[i] is None else str(counts[i]) for i in idx])
    top.xaxis.set_minor_locator(NullLocator())
    top.set_xlabel("non-zero coefficients", fontsize=9)
    top.tick_params(labelsize=8)


def plot_path(doc: dict[str, Any]):
    """The coefficient paths (original scale) against alpha (log scale), the selected features
    labelled at the smallest alpha and the chosen alpha marked.

    Raises :class:`PlotSkipped` when the result has no path of more than one alpha.
    """
    path = doc.get("coef_path")
    if not path or len(path.get("alphas") or []) < 2:
        raise PlotSkipped("the result has no coefficient path over more than one alpha")
    alphas = [float(v) for v in path["alphas"]]
    coefs = path.get("coefs") or {}
    selected = [n for n in doc.get("selected", []) if n in coefs]
    chosen = set(selected)
    a = doc["alpha"]
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        colors = _colors(len(selected))
        # The other features first, thin and grey, so the selected ones are drawn on top.
        for name in sorted(coefs, key=lambda n: (n in chosen, n)):
            if name in chosen:
                continue
            ax.plot(alphas, [_num(v) for v in coefs[name]], color="0.7", linewidth=0.8,
                    gid=f"path:{name}", label=f"_{name}")
        for name, color in zip(selected, colors, strict=True):
            ax.plot(alphas, [_num(v) for v in coefs[name]], color=color, linewidth=1.6,
                    gid=f"path:{name}", label=f"_{name}")
        if a.get("chosen") is not None:
            rule = doc.get("params", {}).get("rule")
            how = f" ({rule})" if a.get("min") is not None and rule else ""
            ax.axvline(a["chosen"], color="0.2", linestyle="--", linewidth=1.2,
                       label=f"chosen alpha = {a['chosen']:.4g}{how}", gid="path-chosen")
        ax.axhline(0.0, color="0.4", linewidth=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("alpha (log scale)")
        ax.set_ylabel("coefficient (original scale)")
        ax.set_title(_title(doc, "Coefficient path"), fontsize=11)
        if a.get("chosen") is not None:
            ax.legend(loc="upper right", fontsize=9)
        _label_ends(ax, alphas, selected, coefs, colors)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _label_ends(ax, alphas: list[float], names: list[str], coefs: dict[str, list],
                colors: list) -> None:
    """Write each name just left of its curve's end at the smallest alpha, moved apart
    vertically so that the labels do not overlap."""
    if not names:
        return
    end = min(range(len(alphas)), key=lambda i: alphas[i])
    ax.set_xlim(left=alphas[end] / 10 ** (0.35 * math.log10(max(alphas) / alphas[end]) + 0.1))
    ax.autoscale_view()
    low, high = ax.get_ylim()
    gap = (high - low) * 0.045
    ends = sorted(((_num(coefs[n][end]), n, c) for n, c in zip(names, colors, strict=True)),
                  key=lambda t: (math.isnan(t[0]), t[0]))
    placed = _spread([0.0 if math.isnan(y) else y for y, _, _ in ends], gap)
    for (y, name, color), ty in zip(ends, placed, strict=True):
        ax.annotate(name, xy=(alphas[end], 0.0 if math.isnan(y) else y),
                    xytext=(alphas[end] / 1.05, ty), textcoords="data", ha="right",
                    va="center", fontsize=8, color=color, gid=f"label:{name}",
                    arrowprops={"arrowstyle": "-", "color": color, "linewidth": 0.5})


def _spread(ys: list[float], gap: float) -> list[float]:
    """Positions near the sorted ``ys`` that are at least ``gap`` apart: neighbours too close
    are pushed apart symmetrically, so a crowd of labels spreads around its middle."""
    out = list(ys)
    for _ in range(200):
        moved = False
        for i in range(len(out) - 1):
            short = gap - (out[i + 1] - out[i])
            if short > 1e-12 * max(gap, 1.0):
                out[i] -= short / 2
                out[i + 1] += short / 2
                moved = True
        if not moved:
            break
    return out


def _fraction(value: Any) -> float | None:
    """A fold frequency or stability as a number in [0, 1], or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def plot_coefficients(doc: dict[str, Any]):
    """The selected features' standardized coefficients as horizontal bars, largest first.

    When the features carry ``fold_frequency`` or ``stability`` (a fraction of folds or of
    resamples in which the feature was selected), the bar's opacity follows it (stability
    first) and the values are written on a right-hand axis, one per bar.
    """
    by_name = {f["name"]: f for f in doc.get("features", [])}
    names = [n for n in doc.get("selected", []) if n in by_name]
    values = [_num(by_name[n].get("coef_std")) for n in names]
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        ax.set_title(_title(doc, "Selected standardized coefficients"), fontsize=11)
        ax.set_xlabel("standardized coefficient")
        if not names:
            ax.text(0.5, 0.5, "no feature selected", ha="center", va="center",
                    transform=ax.transAxes, fontsize=12, color="0.4", gid="coef-none")
            ax.set_yticks([])
            return fig
        freq = {key: [_fraction(by_name[n].get(key)) for n in names]
                for key in ("stability", "fold_frequency")}
        shown = [k for k, v in freq.items() if any(x is not None for x in v)]
        bars = ax.barh(range(len(names)), values, height=0.7, gid="coef-bars",
                       color=["tab:blue" if v >= 0 else "tab:red" for v in values])
        for i, bar in enumerate(bars):
            bar.set_gid(f"bar:{names[i]}")
            level = next((freq[k][i] for k in shown if freq[k][i] is not None), None)
            if level is not None:
                bar.set_alpha(0.25 + 0.75 * level)
        ax.set_yticks(range(len(names)), labels=names, fontsize=8 if len(names) > 25 else 9)
        ax.invert_yaxis()  # the largest first, at the top
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        if shown:
            # The fractions on a right-hand axis, one per bar: aligned, never over a bar.
            words = {"stability": "stability", "fold_frequency": "selected in folds"}
            right = ax.secondary_yaxis("right")
            right.set_yticks(range(len(names)), labels=[
                " · ".join("—" if freq[k][i] is None else f"{freq[k][i]:.0%}" for k in shown)
                for i in range(len(names))], fontsize=8)
            right.set_ylabel(" · ".join(words[k] for k in shown)
                             + f" (bar opacity: {words[shown[0]]})", fontsize=9)
    return fig


def plot_roc(doc: dict[str, Any]):
    """The ROC curve of the out-of-fold predictions at the chosen alpha (binary targets):
    each row predicted by the fit of the CV folds that did not hold it.

    Raises :class:`PlotSkipped` when the result has none (not binomial, or no CV).
    """
    roc = (doc.get("cv") or {}).get("roc")
    if not roc:
        raise PlotSkipped("the result has no ROC curve (a binary target with CV has one)")
    with _style():
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, gid="roc-chance")
        ax.plot(roc["fpr"], roc["tpr"], color="tab:blue", linewidth=1.6, gid="roc-curve",
                label=f"out-of-fold, AUC {_num(roc.get('auc')):.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        positive = (doc.get("params") or {}).get("positive_class")
        what = f"ROC of the CV predictions (positive: {positive})" if positive is not None \
            else "ROC of the CV predictions"
        ax.set_title(_title(doc, what), fontsize=11)
        ax.legend(loc="lower right", fontsize=9)
    return fig


PLOTS = {"cv": plot_cv, "path": plot_path, "coefficients": plot_coefficients,
         "roc": plot_roc}


def choose(only: Iterable[str] | None) -> list[str]:
    """The pictures named in ``only`` (names or comma-separated lists), in the usual order.

    Raises :class:`ConfigError` for an unknown name.
    """
    if not only:
        return list(PLOT_NAMES)
    wanted = [n.strip() for item in only for n in item.split(",") if n.strip()]
    for name in wanted:
        if name not in PLOTS:
            hint = did_you_mean(name, list(PLOT_NAMES))
            raise ConfigError(f"--only: no picture named '{name}'"
                              f"{'; ' + hint if hint else ''} (pictures: "
                              f"{', '.join(PLOT_NAMES)})")
    return [n for n in PLOT_NAMES if n in wanted]


def figures(doc: dict[str, Any], only: Iterable[str] | None = None
            ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The figures of a result, by name, and the pictures skipped with the reason."""
    out: dict[str, Any] = {}
    skipped: list[tuple[str, str]] = []
    names = choose(only)
    if not only:
        names = [n for n in names if n not in _OPTIONAL or _OPTIONAL[n](doc)]
    for name in names:
        try:
            out[name] = PLOTS[name](doc)
        except PlotSkipped as why:
            skipped.append((name, str(why)))
    return out, skipped


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure as PNG or SVG bytes; the same figure gives the same bytes every time."""
    buf = io.BytesIO()
    # No creation date (SVG) and no software string that changes with the matplotlib version.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _style():
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def output_dir(path: str | Path) -> Path:
    """The folder ``path``, made if needed. Raises :class:`InputError` when it cannot be."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"Cannot write pictures into {folder}: it is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot make the folder {folder} for the pictures "
                         f"({exc.strerror or exc}); give a folder that can be written") from None
    return folder


def check_output_dir(path: str | Path) -> None:
    """Raise :class:`InputError` now if the folder ``path`` could not be made later (so a long
    fit is not lost to a typo); makes nothing."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"Cannot write pictures into {folder}: it is a file; give a folder")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"Cannot make the folder {folder} for the pictures: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"Cannot make the folder {folder} for the pictures: {probe} cannot "
                         "be written; give a folder that can be")


def write_plots(doc: dict[str, Any], output: str | Path, fmt: str = "png",
                only: Iterable[str] | None = None) -> PlotOutcome:
    """Draw the pictures of a result (``cv``, ``path``, ``coefficients``, ``roc`` for a binary
    target, or those in ``only``) into the folder ``output`` as ``NAME.png`` or ``NAME.svg``,
    atomically.

    A picture the result cannot give (no CV with a fixed alpha) is skipped and listed in the
    outcome with the reason. Raises :class:`ConfigError` for an unknown name or format and
    :class:`InputError` when the folder cannot be made or written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    names = choose(only)
    folder = output_dir(output)
    outcome = PlotOutcome()
    figs, outcome.skipped = figures(doc, names if only else None)
    for name, fig in figs.items():
        target = folder / f"{name}.{fmt}"
        try:
            write_atomic(target, figure_bytes(fig, fmt))
        except OSError as exc:
            raise InputError(f"Cannot write {target} ({exc.strerror or exc})") from None
        outcome.written.append(target)
    return outcome

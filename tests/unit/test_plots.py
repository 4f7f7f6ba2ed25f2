"""Pictures and the HTML report: the plotted data are the result's numbers, the files are
valid images, the page is self-contained and escaped. Renders only, so the inputs are result
dicts: hand-made ones (every branch, exact values) and one from a real fit."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from l1select import plots
from l1select.errors import ConfigError, InputError
from l1select.html_report import CSP, render_index, render_report, write_report

ALPHAS = [1.0, 0.5, 0.25, 0.125]


def hand_doc() -> dict:
    """A small result dict in the JSON contract, with two l1_ratios on the CV path."""
    path = [{"alpha": a, "l1_ratio": 1.0, "mean": m, "se": s, "n_nonzero": k}
            for a, m, s, k in zip(ALPHAS, [4.0, 2.0, 1.5, 1.6], [0.4, 0.2, 0.1, 0.12],
                                  [0, 1, 2, 3], strict=True)]
    # The other l1_ratio's curve: it must not be drawn (the chosen l1_ratio is 1.0).
    path += [{"alpha": 2 * a, "l1_ratio": 0.5, "mean": 9.0, "se": 1.0, "n_nonzero": 3}
             for a in ALPHAS]
    return {
        "schema_version": 1,
        "tool": {"name": "l1select", "version": "0.1.0"},
        "input": {"source": "hand.csv", "format": "csv", "sha256": "ab" * 32, "n_rows": 100,
                  "n_rows_used": 98, "n_rows_dropped": 2, "n_rows_test": 0, "target": "y"},
        "params": {"model": "elasticnet", "l1_ratio": [0.5, 1.0], "cv": {"folds": 5},
                   "seed": 0, "rule": "1se", "alphas": {"n_alphas": 4, "eps": 0.125},
                   "standardize": True, "missing": "mean", "engine": "gram"},
        "alpha": {"chosen": 0.5, "min": 0.25, "one_se": 0.5, "max": 1.0, "l1_ratio": 1.0,
                  "alpha_max": 1.0},
        "cv": {"metric": "mse", "mean": 2.0, "se": 0.2, "r2": 0.75, "n_folds": 5,
               "fold_sizes": [20, 20, 20, 19, 19], "path": path},
        "intercept": 10.0,
        "features": [
            {"name": "a", "column": "a", "coef": 2.0, "coef_std": 3.0, "selected": True},
            {"name": "b", "column": "b", "coef": -1.0, "coef_std": -1.5, "selected": True},
            {"name": "c", "column": "c", "coef": 0.0, "coef_std": 0.0, "selected": False},
        ],
        "selected": ["a", "b"],
        "sparsity": {"n_features": 3, "n_selected": 2, "fraction_selected": 2 / 3},
        "test": None,
        "warnings": [{"code": "imputed_mean", "message": "Imputed missing values in b"}],
        "recipe": {},
        "coef_path": {"l1_ratio": 1.0, "alphas": ALPHAS, "intercept": [10.0] * 4,
                      "coefs": {"a": [0.0, 2.0, 2.5, 2.7], "b": [0.0, 0.0, -1.0, -1.2],
                                "c": [0.0, 0.0, 0.0, 0.3]}},
    }


def fixed_alpha_doc() -> dict:
    """A result of ``--alpha``: no CV, a one-alpha path."""
    doc = hand_doc()
    doc["alpha"].update(min=None, one_se=None, chosen=0.5)
    doc["cv"] = None
    doc["params"]["cv"] = None
    doc["coef_path"] = {"l1_ratio": 1.0, "alphas": [0.5], "intercept": [10.0],
                        "coefs": {"a": [2.0], "b": [-1.0]}}
    return doc


def _by_gid(items, gid: str):
    found = [x for x in items if x.get_gid() == gid]
    assert len(found) == 1, f"{gid}: {len(found)} artists"
    return found[0]


# --------------------------------------------------------------------------------------------
# The CV curve
# --------------------------------------------------------------------------------------------


def test_cv_plot_draws_the_chosen_l1_ratios_curve_with_se_bars():
    doc = hand_doc()
    ax = plots.plot_cv(doc).axes[0]
    line = _by_gid(ax.lines, "cv-mean")
    np.testing.assert_array_equal(line.get_xdata(), ALPHAS)  # not the l1_ratio 0.5 rows
    np.testing.assert_array_equal(line.get_ydata(), [4.0, 2.0, 1.5, 1.6])
    bars = [c for c in ax.collections if len(c.get_segments()) == len(ALPHAS)]
    assert len(bars) == 1
    lows = [seg[0][1] for seg in bars[0].get_segments()]
    highs = [seg[1][1] for seg in bars[0].get_segments()]
    np.testing.assert_allclose(lows, [3.6, 1.8, 1.4, 1.48])
    np.testing.assert_allclose(highs, [4.4, 2.2, 1.6, 1.72])
    assert list(_by_gid(ax.lines, "cv-alpha_min").get_xdata()) == [0.25, 0.25]
    assert list(_by_gid(ax.lines, "cv-alpha_1se").get_xdata()) == [0.5, 0.5]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("alpha_1se" in t and "(chosen)" in t for t in labels), labels
    assert not any("alpha_min" in t and "(chosen)" in t for t in labels), labels


def test_cv_plot_shows_the_number_of_non_zero_coefficients_on_top():
    ax = plots.plot_cv(hand_doc()).axes[0]
    (top,) = ax.child_axes
    shown = dict(zip(top.get_xticks(), (t.get_text() for t in top.get_xticklabels()),
                     strict=True))
    assert shown == {1.0: "0", 0.5: "1", 0.25: "2", 0.125: "3"}


def test_no_cv_curve_with_a_fixed_alpha_skips_cv_and_a_one_alpha_path():
    figs, skipped = plots.figures(fixed_alpha_doc())
    assert list(figs) == ["coefficients"]
    assert [name for name, _ in skipped] == ["cv", "path"]
    assert "fixed --alpha" in dict(skipped)["cv"]


def test_fixed_alpha_with_a_longer_path_still_draws_the_path():
    doc = fixed_alpha_doc()
    doc["coef_path"] = hand_doc()["coef_path"]
    figs, skipped = plots.figures(doc)
    assert list(figs) == ["path", "coefficients"] and [n for n, _ in skipped] == ["cv"]


# --------------------------------------------------------------------------------------------
# The coefficient path and the coefficients
# --------------------------------------------------------------------------------------------


def test_path_plot_draws_every_path_and_labels_the_selected():
    doc = hand_doc()
    ax = plots.plot_path(doc).axes[0]
    for name, values in doc["coef_path"]["coefs"].items():
        line = _by_gid(ax.lines, f"path:{name}")
        np.testing.assert_array_equal(line.get_xdata(), ALPHAS)
        np.testing.assert_array_equal(line.get_ydata(), values)
    labels = {t.get_gid(): t.get_text() for t in ax.texts}
    assert labels == {"label:a": "a", "label:b": "b"}  # c is on the path but not selected
    assert list(_by_gid(ax.lines, "path-chosen").get_xdata()) == [0.5, 0.5]
    assert ax.get_xscale() == "log"


def test_coefficient_bars_are_the_selected_standardized_coefficients_in_order():
    ax = plots.plot_coefficients(hand_doc()).axes[0]
    bars = [_by_gid(ax.patches, f"bar:{n}") for n in ("a", "b")]
    assert [b.get_width() for b in bars] == [3.0, -1.5]
    assert bars[0].get_y() < bars[1].get_y() and ax.yaxis_inverted()  # largest on top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert all(b.get_alpha() is None for b in bars)  # no frequency: opaque
    assert not ax.child_axes  # and no column of fractions


def test_fold_frequency_and_stability_show_when_the_result_has_them():
    doc = hand_doc()
    doc["features"][0]["fold_frequency"] = 1.0
    doc["features"][1]["fold_frequency"] = 0.6
    doc["features"][1]["stability"] = 0.5
    ax = plots.plot_coefficients(doc).axes[0]
    a, b = (_by_gid(ax.patches, f"bar:{n}") for n in ("a", "b"))
    # Opacity follows stability where there is one, else the fold frequency.
    assert a.get_alpha() == pytest.approx(1.0)
    assert b.get_alpha() == pytest.approx(0.25 + 0.75 * 0.5)
    (right,) = ax.child_axes
    assert list(right.get_yticks()) == [0, 1]
    assert [t.get_text() for t in right.get_yticklabels()] == ["— · 100%", "50% · 60%"]
    assert right.get_ylabel().startswith("stability · selected in folds")


def test_nothing_selected_draws_a_note():
    doc = hand_doc()
    doc["selected"] = []
    ax = plots.plot_coefficients(doc).axes[0]
    assert not ax.patches
    assert _by_gid(ax.texts, "coef-none").get_text() == "no feature selected"


def test_plots_of_a_real_fit_are_its_numbers(regression_csv):
    from l1select.pipeline import select_features
    from l1select.report import to_dict
    from l1select.types import FitParams

    doc = json.loads(json.dumps(to_dict(select_features(
        str(regression_csv), FitParams(target="y", cv=3, n_alphas=15)))))
    rows = doc["cv"]["path"]
    ax = plots.plot_cv(doc).axes[0]
    line = _by_gid(ax.lines, "cv-mean")
    np.testing.assert_array_equal(line.get_xdata(), [r["alpha"] for r in rows])
    np.testing.assert_array_equal(line.get_ydata(), [r["mean"] for r in rows])
    ax = plots.plot_path(doc).axes[0]
    for name, values in doc["coef_path"]["coefs"].items():
        np.testing.assert_array_equal(_by_gid(ax.lines, f"path:{name}").get_ydata(), values)
    ax = plots.plot_coefficients(doc).axes[0]
    std = {f["name"]: f["coef_std"] for f in doc["features"]}
    assert [_by_gid(ax.patches, f"bar:{n}").get_width() for n in doc["selected"]] == [
        std[n] for n in doc["selected"]]
    assert {"x0", "x1", "x2"} <= set(doc["selected"])


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()  # a truncated or corrupt file raises
    with Image.open(path) as im:
        im.load()
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100, "a blank picture"
        return im.size


@pytest.mark.slow
def test_write_plots_writes_valid_pngs_of_a_sensible_size(tmp_path):
    out = plots.write_plots(hand_doc(), tmp_path / "new" / "pics")
    assert [p.name for p in out.written] == ["cv.png", "path.png", "coefficients.png"]
    assert out.skipped == []
    for path in out.written:
        assert _png_size(path) == (800, 500)
    assert not [p for p in (tmp_path / "new" / "pics").iterdir() if p.suffix == ".tmp"]


@pytest.mark.slow
def test_svg_output_is_svg_and_the_same_bytes_twice(tmp_path):
    first = plots.write_plots(hand_doc(), tmp_path / "one", "svg", only=["cv,path"])
    again = plots.write_plots(hand_doc(), tmp_path / "two", "svg", only=["path", "cv"])
    assert [p.name for p in first.written] == ["cv.svg", "path.svg"]
    for a, b in zip(first.written, again.written, strict=True):
        root = ET.fromstring(a.read_bytes())
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("width") == "576pt" and root.get("height") == "360pt"  # 8 x 5 in
        assert a.read_bytes() == b.read_bytes()


def test_png_output_is_the_same_bytes_twice(tmp_path):
    a = plots.write_plots(hand_doc(), tmp_path / "one", only=["path"]).written[0]
    b = plots.write_plots(hand_doc(), tmp_path / "two", only=["path"]).written[0]
    assert a.read_bytes() == b.read_bytes()


def test_a_users_matplotlibrc_does_not_change_the_pictures(tmp_path):
    import matplotlib

    before = plots.figure_bytes(plots.plot_coefficients(hand_doc()))
    with matplotlib.rc_context({"axes.facecolor": "black", "font.size": 20}):
        after = plots.figure_bytes(plots.plot_coefficients(hand_doc()))
    assert before == after


def test_unknown_picture_and_format_are_usage_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'path'"):
        plots.write_plots(hand_doc(), tmp_path, only=["paht"])
    with pytest.raises(ConfigError, match="png, svg"):
        plots.write_plots(hand_doc(), tmp_path, fmt="jpg")


def test_an_output_folder_that_is_a_file_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for folder in (blocker, blocker / "below"):
        with pytest.raises(InputError, match="file"):
            plots.check_output_dir(folder)
        with pytest.raises(InputError, match="file"):
            plots.write_plots(hand_doc(), folder)
    plots.check_output_dir(tmp_path / "new" / "deep")  # can be made: no error, nothing made
    assert not (tmp_path / "new").exists()


def test_load_result_rejects_what_is_not_a_result(tmp_path):
    with pytest.raises(InputError, match="no such result file"):
        plots.load_result(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(InputError, match="not a result file"):
        plots.load_result(bad)
    bad.write_text('{"schema_version": 1}')
    with pytest.raises(InputError, match="not an l1select result"):
        plots.load_result(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(hand_doc()))
    assert plots.load_result(good) == hand_doc()


# --------------------------------------------------------------------------------------------
# The HTML report
# --------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the tags with their attributes, and the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def _assert_self_contained(page: _Page) -> None:
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "action", "data"):
            value = attrs.get(name)
            if value is None:
                continue
            assert not value.startswith(("http:", "https:", "//", "file:", "ftp:")), (tag, value)
            if name == "src":
                assert value.startswith("data:"), (tag, value)
    (csp,) = [a for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp["content"] == CSP


@pytest.mark.slow
def test_report_is_self_contained_with_the_pictures_as_valid_pngs():
    text = render_report(hand_doc())
    page = _Page(text)
    _assert_self_contained(page)
    images = page.all("img")
    assert len(images) == 3
    for img in images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        with Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix):]))) as im:
            im.load()
            assert im.size == (int(img["width"]), int(img["height"])) == (800, 500)
    assert "url(" not in text and "@import" not in text and "@font-face" not in text


@pytest.mark.slow
def test_report_holds_the_summary_tables_warnings_and_how_to_reproduce():
    doc = hand_doc()
    html = render_report(doc)
    page = _Page(html)
    text = " ".join(page.text)
    for needle in ("0.5 chosen by the 1se rule", "min 0.25 · 1se 0.5 · max 1",
                   "2 ± 0.2 (5 folds)", "0.75", "98 used, 2 dropped of 100 read",
                   "Imputed missing values in b", "imputed_mean", "ab" * 32,
                   "All 3 candidate features"):
        assert needle in text, needle
    (pre,) = re.findall(r"<pre>(.*?)</pre>", html, re.S)
    assert json.loads(unescape(pre)) == doc["params"]
    for package in ("numpy", "scikit-learn"):
        assert metadata.version(package) in text
    assert "l1select (wrote the result)" in text
    assert len(page.all("details")) == 1


@pytest.mark.slow
def test_report_escapes_every_text():
    doc = hand_doc()
    evil = '<script>alert("x")</script>&'
    doc["features"][0]["name"] = evil
    doc["selected"][0] = evil
    doc["coef_path"]["coefs"][evil] = doc["coef_path"]["coefs"].pop("a")
    doc["warnings"][0]["message"] = evil
    doc["input"]["target"] = evil
    text = render_report(doc)
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in text
    assert evil in " ".join(_Page(text).text)  # and reads as written


def test_report_of_a_fixed_alpha_result_says_which_pictures_are_missing():
    page = _Page(render_report(fixed_alpha_doc()))
    assert len(page.all("img")) == 1
    text = " ".join(page.text)
    assert "No cv plot" in text and "No path plot" in text and "fixed, no cross-validation" in text


@pytest.mark.slow
def test_report_shows_fold_frequency_and_stability_when_present():
    doc = hand_doc()
    doc["features"][0]["fold_frequency"] = 0.8
    doc["stability"] = {"pairs": 10, "n_fits": 20, "threshold": 0.8, "stable": ["a"]}
    text = " ".join(_Page(render_report(doc)).text)
    assert "selected in folds" in text and "80%" in text
    assert "1 feature with selection probability ≥ 0.8 over 20 half-sample fits" in text


@pytest.mark.slow
def test_report_is_the_same_bytes_twice_and_written_atomically(tmp_path):
    doc = hand_doc()
    path = write_report(doc, tmp_path / "r.html")
    assert path.read_text(encoding="utf-8") == render_report(copy.deepcopy(doc))
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with pytest.raises(InputError, match="does not exist"):
        write_report(doc, tmp_path / "missing" / "r.html")


def test_index_links_each_ok_job_and_shows_the_errors():
    summary = {
        "config": "/x/batch.yaml", "output_dir": "runs", "n_jobs": 2, "n_ok": 1,
        "n_failed": 1,
        "jobs": [
            {"name": "first", "status": "ok", "error": None, "seconds": 1.5,
             "output": "runs/first", "source": "a.csv", "n_features": 5, "n_selected": 2,
             "warnings": 0},
            {"name": "broken", "status": "failed", "error": "b.csv: no such file <x>",
             "seconds": 0.1, "output": "runs/broken", "source": "b.csv", "n_features": None,
             "n_selected": None, "warnings": None},
        ],
    }
    page = _Page(render_index(summary))
    _assert_self_contained(page)
    assert [a["href"] for a in page.all("a")] == ["first/report.html"]
    text = " ".join(page.text)
    assert "b.csv: no such file <x>" in text and "2 of 5" in text and "1 ok, 1 failed" in text

"""``l1select plot``, ``fit --plots``, ``fit --report`` and the batch reports, end to end; and
the HTML report opened in headless Chromium (every picture loads, no console error)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import assert_error, fit_json, invoke, ok, sparse_columns, write_csv
from PIL import Image

from l1select.plots import load_result, plot_cv


@pytest.fixture(scope="module")
def result_json(tmp_path_factory) -> Path:
    """A result file of the sparse data set (3 folds, 20 alphas)."""
    folder = tmp_path_factory.mktemp("result")
    data = write_csv(folder / "sparse.csv", sparse_columns())
    out = folder / "result.json"
    ok(invoke("fit", data, "-t", "y", "--cv", 3, "--n-alphas", 20, "--format", "json",
              "-o", out))
    return out


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


# --------------------------------------------------------------------------------------------
# l1select plot
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_plot_writes_the_three_pictures(result_json, tmp_path):
    out = tmp_path / "pics"
    result = ok(invoke("plot", result_json, "--output", out))
    assert result.stdout == ""
    names = ["coefficients.png", "cv.png", "path.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert all(_image_size(out / n) == (800, 500) for n in names)
    assert "wrote" in result.stderr and str(out / "cv.png") in result.stderr
    # What is drawn is what the file says.
    doc = load_result(result_json)
    line = next(x for x in plot_cv(doc).axes[0].lines if x.get_gid() == "cv-mean")
    assert list(line.get_ydata()) == [r["mean"] for r in doc["cv"]["path"]]


@pytest.mark.slow
def test_plot_svg_and_only(result_json, tmp_path):
    out = tmp_path / "pics"
    ok(invoke("plot", result_json, "-o", out, "--format", "svg", "--only", "path,cv"))
    assert sorted(p.name for p in out.iterdir()) == ["cv.svg", "path.svg"]
    assert (out / "cv.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


@pytest.mark.slow
def test_plot_quiet_says_nothing(result_json, tmp_path):
    result = ok(invoke("plot", result_json, "-o", tmp_path / "p", "-q"))
    assert result.stdout == "" and result.stderr == ""


def test_plot_of_a_fixed_alpha_result_skips_the_cv_curve(tmp_path):
    data = write_csv(tmp_path / "d.csv", sparse_columns())
    res = tmp_path / "fixed.json"
    ok(invoke("fit", data, "-t", "y", "--alpha", "0.1", "--format", "json", "-o", res))
    result = ok(invoke("plot", res, "-o", tmp_path / "pics"))
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["coefficients.png"]
    assert "warning: no cv plot" in result.stderr and "fixed --alpha" in result.stderr
    assert "warning: no path plot" in result.stderr


def test_plot_errors(result_json, tmp_path):
    assert_error(invoke("plot", tmp_path / "nope.json", "-o", tmp_path / "p"), 1,
                 "nope.json", "no such result file")
    csv = write_csv(tmp_path / "d.csv", sparse_columns(n=5))
    assert_error(invoke("plot", csv, "-o", tmp_path / "p"), 1, "d.csv", "not a result")
    other = tmp_path / "other.json"
    other.write_text('{"schema_version": 1, "rows": []}')
    assert_error(invoke("plot", other, "-o", tmp_path / "p"), 1, "not an l1select result")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_error(invoke("plot", result_json, "-o", blocker), 1, "is a file")
    assert_error(invoke("plot", result_json, "-o", blocker / "sub"), 1, "Cannot make")
    assert_error(invoke("plot", result_json, "-o", tmp_path / "p", "--only", "cvv"), 2,
                 "did you mean 'cv'")
    assert_error(invoke("plot", result_json, "-o", tmp_path / "p", "--format", "jpg"), 2,
                 "--format")
    assert_error(invoke("plot", result_json), 2, "--output")
    assert not (tmp_path / "p").exists()


# --------------------------------------------------------------------------------------------
# fit --plots, fit --report
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fit_plots_and_report_leave_stdout_alone(tmp_path):
    data = write_csv(tmp_path / "d.csv", sparse_columns())
    args = (data, "-t", "y", "--cv", 3, "--n-alphas", 20)
    plain = fit_json(*args)
    doc = fit_json(*args, "--plots", tmp_path / "pics", "--report", tmp_path / "r.html")
    assert doc == plain
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == [
        "coefficients.png", "cv.png", "path.png"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count('src="data:image/png;base64,') == 3


def test_fit_checks_the_report_and_plots_destinations_before_fitting(tmp_path):
    data = write_csv(tmp_path / "d.csv", sparse_columns())
    assert_error(invoke("fit", data, "-t", "y", "--report", tmp_path / "no" / "r.html"), 1,
                 "does not exist")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_error(invoke("fit", data, "-t", "y", "--plots", blocker), 1, "is a file")


def test_help_does_not_import_matplotlib():
    code = textwrap.dedent("""
        import sys
        from l1select.cli import app
        for args in (["--help"], ["fit", "--help"], ["plot", "--help"]):
            try:
                app(args, prog_name="l1select")
            except SystemExit as exc:
                assert exc.code in (0, None), exc.code
        print("HEAVY=" + ",".join(m for m in ("matplotlib", "PIL") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


# --------------------------------------------------------------------------------------------
# Batch: a report per job, an index page
# --------------------------------------------------------------------------------------------


def _batch(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    write_csv(tmp_path / "data" / "a.csv", sparse_columns())
    path = tmp_path / "batch.yaml"
    path.write_text(textwrap.dedent("""
        defaults: {target: y, cv: 3, n_alphas: 15}
        jobs:
          - {name: good, source: data/a.csv}
          - {name: broken, source: data/missing.csv}
        """), encoding="utf-8")
    return path


@pytest.mark.slow
def test_batch_writes_a_report_per_job_and_an_index(tmp_path):
    out = tmp_path / "runs"
    result = invoke("batch", _batch(tmp_path), "--output-dir", out)
    assert result.exit_code == 1, result.stderr
    assert (out / "good" / "report.html").is_file()
    assert not (out / "broken" / "report.html").exists()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]*)"', index) == ["good/report.html"]
    assert "missing.csv" in index and "failed" in index
    doc = json.loads((out / "good" / "result.json").read_text())
    report = (out / "good" / "report.html").read_text(encoding="utf-8")
    assert doc["input"]["sha256"] in report


# --------------------------------------------------------------------------------------------
# The report in a browser
# --------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    return found


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4), with no
    package beyond the standard library: load a page, read the DOM's image state and collect
    every console or log error."""

    FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--remote-debugging-pipe")

    def __init__(self, binary: str, timeout: float = 20.0):
        self.deadline = time.monotonic() + timeout
        self.profile = tempfile.mkdtemp(prefix="l1select-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire() -> None:  # in the child: the protocol wants its pipes on fds 3 and 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *self.FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def _send(self, method: str, session: str | None, params: dict) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        return self.next_id

    def _until(self, done) -> dict:
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.events.append(message)
                if done(message):
                    return message
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe (it crashed or could not start)")
            self.buffer += chunk

    def call(self, method: str, session: str | None = None, **params) -> dict:
        sent = self._send(method, session, params)
        reply = self._until(lambda m: m.get("id") == sent)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def open(self, path: Path) -> dict:
        """Load the page; its images' state and the errors logged while it loaded."""
        start = len(self.events)
        self._send("Page.navigate", self.session, {"url": path.resolve().as_uri()})
        self._until(lambda m: m.get("method") == "Page.loadEventFired")
        state = json.loads(self.call("Runtime.evaluate", session=self.session,
                                     expression=_PAGE_STATE, awaitPromise=True,
                                     returnByValue=True)["result"]["value"])
        state["errors"] = [_error_text(m) for m in self.events[start:] if _is_error(m)]
        return state

    def close(self) -> None:
        try:
            self._send("Browser.close", None, {})
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.to_browser)
            os.close(self.from_browser)
            shutil.rmtree(self.profile, ignore_errors=True)


# The state of the loaded page, read by the test (the page itself has no script). An image
# counts as loaded when it decodes and its last rows are opaque: a truncated or corrupt PNG
# still reports its size from the header and decodes, but leaves the rows it lacks transparent
# (the pictures are drawn on an opaque background).
_PAGE_STATE = """(async () => {
  const images = [];
  for (const img of Array.from(document.images)) {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    let opaqueBottom = false;
    if (decoded && img.naturalWidth > 0 && img.naturalHeight > 0) {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const rows = Math.min(5, img.naturalHeight);
      const px = ctx.getImageData(0, img.naturalHeight - rows, img.naturalWidth, rows).data;
      opaqueBottom = true;
      for (let k = 3; k < px.length; k += 4) if (px[k] !== 255) { opaqueBottom = false; break; }
    }
    images.push({complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
                 decoded, opaqueBottom});
  }
  return JSON.stringify({images, title: document.title, scripts: document.scripts.length});
})()"""


def _is_error(message: dict) -> bool:
    method, params = message.get("method"), message.get("params", {})
    if method == "Log.entryAdded":
        return params["entry"]["level"] == "error"
    if method == "Runtime.consoleAPICalled":
        return params["type"] in ("error", "assert")
    return method == "Runtime.exceptionThrown"


def _error_text(message: dict) -> str:
    params = message["params"]
    if "entry" in params:
        return params["entry"].get("text", "")
    return json.dumps(params)[:300]


def _problems(state: dict, n_images: int) -> list[str]:
    """What is wrong with a loaded page: images missing or not decoded, console errors."""
    out = [f"console: {e}" for e in state["errors"]]
    if len(state["images"]) != n_images:
        out.append(f"{len(state['images'])} images, wanted {n_images}")
    out += [f"image {i} did not load: {img}" for i, img in enumerate(state["images"])
            if not (img["complete"] and img["decoded"] and img["width"] > 0
                    and img["height"] > 0 and img["opaqueBottom"])]
    if state["scripts"]:
        out.append(f"{state['scripts']} scripts")
    return out


@pytest.fixture(scope="module")
def chromium():
    binary = _chromium()
    if binary is None:
        if os.environ.get("L1SELECT_REQUIRE_CHROMIUM"):
            pytest.fail("L1SELECT_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run "
                    "installs it)")
    browser = Chromium(binary)
    try:
        yield browser
    finally:
        browser.close()


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_in_chromium_with_every_image_and_no_errors(chromium, tmp_path):
    data = write_csv(tmp_path / "d.csv", sparse_columns())
    report = tmp_path / "report.html"
    ok(invoke("fit", data, "-t", "y", "--cv", 3, "--n-alphas", 20, "--report", report, "-q"))
    state = chromium.open(report)
    assert _problems(state, 3) == []
    assert state["title"].startswith("l1select: y")

    # The check sees a broken picture: one data URI cut short, overwritten in the middle, or
    # not a PNG at all.
    text = report.read_text(encoding="utf-8")
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    end = text.index('"', start)
    middle = (start + end) // 2
    for i, bad in enumerate((text[:start + 200] + text[end:],
                             text[:middle] + "A" * 400 + text[middle + 400:],
                             text[:start] + "AAAA" + text[end:])):
        broken = tmp_path / f"broken{i}.html"
        broken.write_text(bad, encoding="utf-8")
        problems = _problems(chromium.open(broken), 3)
        assert [p.split(":")[0] for p in problems] == ["image 0 did not load"], problems

    # And an external load is refused by the page's policy, and logged.
    outside = tmp_path / "outside.html"
    outside.write_text(text.replace("</body>", '<img src="https://example.invalid/x.png">'
                                    "</body>"), encoding="utf-8")
    problems = _problems(chromium.open(outside), 4)
    assert any("Content Security Policy" in p for p in problems), problems


@pytest.mark.slow
@pytest.mark.browser
def test_batch_index_renders_in_chromium(chromium, tmp_path):
    out = tmp_path / "runs"
    invoke("batch", _batch(tmp_path), "--output-dir", out)
    assert _problems(chromium.open(out / "index.html"), 0) == []
    assert _problems(chromium.open(out / "good" / "report.html"), 3) == []

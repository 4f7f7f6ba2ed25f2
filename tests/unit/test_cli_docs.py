"""docs/cli.md is the --help of every command, as scripts/gen_cli_docs.py writes it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs",
                                                  REPO / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    gen = _generator()
    assert gen.DOC.read_text(encoding="utf-8") == gen.render(), (
        "docs/cli.md is stale; regenerate it with: python scripts/gen_cli_docs.py")


def test_cli_reference_does_not_depend_on_the_terminal(monkeypatch):
    gen = _generator()
    first = gen.render()
    monkeypatch.setenv("COLUMNS", "37")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert gen.render() == first
    assert "\x1b[" not in first


def test_help_has_panels_and_no_type_labels():
    text = _generator().DOC.read_text(encoding="utf-8")
    fit = text.split("## `l1select fit`")[1].split("## ")[0]
    panels = re.findall(r"╭─ (.+?) ─", fit)
    assert panels == ["Arguments", "Input", "Model", "Cross-validation", "Selection trust",
                      "Output", "Engine"]
    assert not re.search(r"<(bool|str|int|float|path|list\[str\])>", text)

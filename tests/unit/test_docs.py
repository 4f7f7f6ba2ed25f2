"""The README stays a five-minute read, and the links of the documentation lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"

# [text](target): a Markdown inline link; images and code spans hold none that matter here.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")


def _links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return _LINK.findall(text)


def _anchors(path: Path) -> set[str]:
    """The fragment GitHub gives each heading: lower case, punctuation dropped, blanks → '-'."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        out.add(slug)
    return out


def _local(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:", target)  # not https:, mailto:, …


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_starts_with_the_setup_commands_ci_runs():
    # .ci/run runs these two lines exactly; the README shows them first.
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == [
        "pip install . && l1select fit sample_data/housing.csv --target price",
        "pip install '.[test]' && pytest",
    ]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert command in ci


def test_readme_links_every_page_of_docs():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in _links(README) if _local(t)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md links no docs/ page for: {missing}"


def _broken(page: Path) -> list[str]:
    """The local links of ``page`` to a file that does not exist or a heading it lacks."""
    broken = []
    for target in _links(page):
        if not _local(target):
            continue
        file, _, fragment = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(target)
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_resolve(page: Path):
    broken = _broken(page)
    assert not broken, f"{page.relative_to(REPO)}: links that lead nowhere: {broken}"


def test_the_link_checker_finds_broken_links(tmp_path):
    # The checker itself: a missing file, a missing heading (here and in another page) are
    # caught; a heading with code and punctuation, a folder and a web address are not.
    (tmp_path / "other.md").write_text("# On a cluster: `--engine dask`\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [bad](#nowhere) [gone](missing.md)\n"
        "[there](other.md#on-a-cluster---engine-dask) [not there](other.md#title)\n"
        "[dir](folder/) [web](https://example.org/x.md) `[code](missing2.md)`\n",
        encoding="utf-8")
    assert _broken(page) == ["#nowhere", "missing.md", "other.md#title"]

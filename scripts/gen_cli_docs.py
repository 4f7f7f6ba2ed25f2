"""Write docs/cli.md, the command-line reference, from the ``--help`` of every command.

    python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check  # exit 1 when docs/cli.md is stale

The text does not depend on the terminal: the width is fixed and colour is off.
tests/unit/test_cli_docs.py fails when docs/cli.md is not what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "cli.md"
COMMANDS = ((), ("fit",), ("batch",), ("schema",), ("transform",), ("predict",), ("plot",))
WIDTH = 100
# A fixed width and no colour or terminal features, whatever the caller's terminal is.
ENV = {"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb",
       "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None}


def help_text(command: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    from l1select.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env=ENV, prog_name="l1select",
                                color=False)
    if result.exit_code != 0:
        raise RuntimeError(f"l1select {' '.join(command)} --help failed: {result.output}")
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def render() -> str:
    parts = ["# Command-line reference", "",
             "Generated from `--help` by `python scripts/gen_cli_docs.py`; do not edit by hand.",
             ""]
    for command in COMMANDS:
        name = " ".join(("l1select", *command))
        parts += [f"## `{name}`", "", "```text", help_text(command), "```", ""]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC.relative_to(REPO)} is stale; regenerate it with: "
                  "python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))

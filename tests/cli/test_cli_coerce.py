"""cli_coerce converts option values exactly as Typer's pydantic conversion does."""

from __future__ import annotations

import pytest
import typer.main
from typer._click.exceptions import ClickException
from typer._coercion import build_runtime_param

from l1select.cli import app
from l1select.cli_coerce import Coerce
from tests.conftest import last_line

# Values a user types (and defaults): plain ones take the fast route, the odd spellings, bad
# values and unknown choices must fall back to Typer's own conversion and its error message.
SAMPLES = [None, "", "price", "5", "-3", "0", "007", "+5", " 5", "1_000", "2.5", "-0.5",
           "1e-3", "5.", ".5", "inf", "nan", "1e400", "json", "JSON", "table", "lasso",
           "min", "1se", "gram", "kfold", "mean", "drop", "ols", "auc", "png",
           "/nonexistent/x.csv", "tests", "README.md", "-", ("a", "b"), (), ["x"], 5, 2.5,
           True]


def _commands():
    """The root and every subcommand, nested ones included."""
    out, stack = [], [typer.main.get_command(app)]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        out.append(cmd)
    return out


def _outcome(conversion, value, param, ctx):
    try:
        got = conversion.coerce(value, param=param, ctx=ctx)
    except ClickException as exc:
        return ("error", type(exc).__name__, exc.format_message())
    except Exception as exc:  # noqa: BLE001 - the same failure either way
        return ("raised", type(exc).__name__, str(exc))
    return ("value", type(got), repr(got))  # repr: nan equals nan


def _params():
    from typer._click.core import Context

    cases = []
    for cmd in _commands():
        ctx = Context(cmd)
        for param in cmd.params:
            desc = getattr(param, "type_descriptor", None)
            if desc is None or desc.file_annotation is not None:
                continue
            cases.append(pytest.param(cmd, ctx, param, id=f"{cmd.name}-{param.name}"))
    return cases


@pytest.mark.parametrize(("cmd", "ctx", "param"), _params())
def test_every_value_converts_as_typer_converts_it(cmd, ctx, param):
    ours = Coerce(param.type_descriptor)
    theirs = build_runtime_param(param.type_descriptor)
    for value in [*SAMPLES, param.default]:
        assert _outcome(ours, value, param, ctx) == _outcome(theirs, value, param, ctx), value


def test_a_plain_fit_imports_neither_pydantic_nor_arrows_compute_functions(tmp_path):
    # Start-up: pydantic (70-110 ms) is for YAML configs and unusual option values only;
    # pyarrow.compute (45-90 ms) for text, categorical and non-float64 columns.
    data = tmp_path / "d.csv"
    data.write_text("y,a,b\n" + "".join(f"{i % 7},{i},{(i * 3) % 5}\n" for i in range(60)))
    code = ("import sys\nfrom l1select.cli import app\n"
            "try:\n"
            f"    app(['fit', {str(data)!r}, '--target', 'y', '--cv', '3', '--format', 'json',"
            f" '-o', {str(tmp_path / 'out.json')!r}, '-q'], prog_name='l1select')\n"
            "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
            "print(sorted({'pydantic', 'pyarrow.compute'} & set(sys.modules)))\n")
    assert last_line(code) == "[]"
    assert (tmp_path / "out.json").exists()

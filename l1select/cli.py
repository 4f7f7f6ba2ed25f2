"""The command line: parse options, call one library function, render, set the exit code.

numpy, pyarrow and scikit-learn are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from l1select import __version__
from l1select.errors import EXIT_INTERRUPTED, L1SelectError
from l1select.options import (
    CV,
    Alpha,
    Alphas,
    Data,
    Debug,
    Engine,
    EngineOpt,
    Eps,
    Exclude,
    Features,
    FoldColumn,
    FormatOpt,
    L1Ratio,
    MaxLevels,
    MissingOpt,
    Model,
    ModelOpt,
    NAlphas,
    Output,
    OutputFormat,
    Quiet,
    RuleOpt,
    Seed,
    Standardize,
    Target,
    TestSize,
    Threads,
    _floats,
)


class _Group(TyperGroup):
    """Usage errors as one ``Error: …`` line (exit 2); an interrupt exits 130."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except ClickException as exc:
            hint = ""
            if exc.ctx is not None:  # type: ignore[attr-defined]
                hint = f" (see '{exc.ctx.command_path} --help')"  # type: ignore[attr-defined]
            sys.stderr.write(f"Error: {exc.format_message()}{hint}\n")
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_Group,
    name="l1select",
    help="Select the features that matter for a numeric target with cross-validated Lasso.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _StdoutConsole(Console):
    """stdout for the table: a closed pipe (``| head``) ends the output quietly, exit 0."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _err_console(quiet: bool) -> Console:
    return Console(stderr=True, quiet=quiet, highlight=False)


@contextmanager
def handle_errors(debug: bool) -> Iterator[None]:
    """Turn an :class:`L1SelectError` into one ``Error:`` line and its exit code."""
    try:
        yield
    except L1SelectError as exc:
        if debug:
            raise
        sys.stderr.write(f"Error: {exc}\n")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write("Interrupted\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def write_output(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` atomically (temp file + rename), or to stdout.

    A closed pipe on stdout (``| head``) ends quietly.
    """
    if output is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return
    target = Path(output)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise L1SelectError(f"Cannot write {target}: folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def _progress(console: Console):
    """A progress display on stderr, only when stderr is a terminal (and not --quiet)."""
    if console.quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,.0f}/{task.total:,.0f}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                label = "reading rows" if stage == "read" else "solving paths"
                tasks[stage] = bar.add_task(label, total=total)
            if total is not None and done > total:
                total = done
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _version(value: bool) -> None:
    if value:
        typer.echo(f"l1select {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Select the features that matter for a numeric target with cross-validated Lasso."""


@app.command()
def fit(
    data: Data,
    target: Target,
    features: Features = None,
    exclude: Exclude = None,
    model: ModelOpt = Model.lasso,
    l1_ratio: L1Ratio = None,
    cv: CV = 5,
    fold_column: FoldColumn = None,
    seed: Seed = 0,
    rule: RuleOpt = "1se",  # type: ignore[assignment]
    n_alphas: NAlphas = 100,
    eps: Eps = 1e-3,
    alphas: Alphas = None,
    alpha: Alpha = None,
    standardize: Standardize = True,
    missing: MissingOpt = "mean",  # type: ignore[assignment]
    max_levels: MaxLevels = 20,
    test_size: TestSize = None,
    format: FormatOpt = OutputFormat.table,
    output: Output = None,
    engine: EngineOpt = Engine.auto,
    threads: Threads = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Cross-validate Lasso/ElasticNet on DATA and report the selected features."""
    err = _err_console(quiet)
    with handle_errors(debug):
        from l1select.pipeline import select_features
        from l1select.report import render_csv, render_json, render_table
        from l1select.types import FitParams

        ratios = _floats(l1_ratio, "--l1-ratio")
        if ratios is None:
            ratios = [0.5] if model == Model.elasticnet else [1.0]
        grid = _floats(alphas, "--alphas")
        params = FitParams(
            target=target, model=model.value, l1_ratios=tuple(ratios), cv=cv,
            fold_column=fold_column, seed=seed, rule=getattr(rule, "value", rule),
            n_alphas=n_alphas, eps=eps, alphas=tuple(grid) if grid else None, alpha=alpha,
            standardize=standardize, missing=getattr(missing, "value", missing),
            max_levels=max_levels, features=tuple(features or ()),
            exclude=tuple(exclude or ()), test_size=test_size, engine=engine.value,
            threads=threads,
        )
        with _progress(err) as progress:
            result = select_features(data, params, progress)
        for w in result.warnings:
            err.print(f"[yellow]warning:[/] {w.message}", markup=True, highlight=False,
                      soft_wrap=True)
        if format == OutputFormat.json:
            write_output(render_json(result), output)
        elif format == OutputFormat.csv:
            write_output(render_csv(result), output)
        elif output is None:
            render_table(result, _StdoutConsole(highlight=False))
        else:
            import io as _io

            buf = _io.StringIO()
            render_table(result, Console(file=buf, width=100, no_color=True, highlight=False))
            write_output(buf.getvalue(), output)


def main() -> None:
    app()

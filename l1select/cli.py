"""The command line: parse options, call one library function, render, set the exit code.

numpy, pyarrow and scikit-learn are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
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
from l1select.files import write_atomic
from l1select.options import (
    CV,
    Adaptive,
    Alpha,
    Alphas,
    BatchFileArg,
    ConfigFile,
    CorrThreshold,
    Data,
    DataOut,
    Debug,
    DryRun,
    Engine,
    EngineOpt,
    Eps,
    Exclude,
    FailFast,
    FamilyOpt,
    Features,
    FoldColumn,
    Force,
    FormatOpt,
    Jobs,
    Keep,
    L1Ratio,
    MaxLevels,
    MeasureOpt,
    MissingOpt,
    Model,
    ModelFile,
    ModelOpt,
    NAlphas,
    Only,
    OptionalData,
    OptionalTarget,
    Output,
    OutputDir,
    OutputFormat,
    PenaltyFactor,
    PlotDir,
    PlotFormat,
    PlotFormatOpt,
    PlotOnly,
    PlotsOpt,
    PositiveClass,
    Quiet,
    RefitOpt,
    ReportOpt,
    ResultFile,
    RuleOpt,
    Scheduler,
    SchemaKind,
    SchemaKindOpt,
    Seed,
    Selection,
    Stability,
    StabilityThreshold,
    Standardize,
    TestSize,
    Threads,
    Threshold,
    Weights,
    _floats,
    _penalty_factors,
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


def _print_warnings(err: Console, warnings) -> None:
    from rich.markup import escape

    for w in warnings:  # messages quote column names, which may hold [brackets]
        err.print(f"[yellow]warning:[/] {escape(w.message)}", markup=True, highlight=False,
                  soft_wrap=True)


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
    write_atomic(target, text)


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
                label = {"read": "reading rows",
                         "stability": "half-sample fits"}.get(stage, "solving paths")
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
    ctx: typer.Context,
    data: OptionalData = None,
    target: OptionalTarget = None,
    config: ConfigFile = None,
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
    stability: Stability = None,
    stability_threshold: StabilityThreshold = 0.8,
    corr_threshold: CorrThreshold = 0.9,
    force: Force = None,
    penalty_factor: PenaltyFactor = None,
    adaptive: Adaptive = False,
    refit: RefitOpt = None,
    family: FamilyOpt = "auto",  # type: ignore[assignment]
    positive_class: PositiveClass = None,
    measure: MeasureOpt = None,
    threshold: Threshold = 0.5,
    weights: Weights = None,
    format: FormatOpt = OutputFormat.table,
    output: Output = None,
    engine: EngineOpt = Engine.auto,
    scheduler: Scheduler = None,
    threads: Threads = None,
    plots: PlotsOpt = None,
    report: ReportOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Cross-validate Lasso/ElasticNet on DATA and report the selected features."""
    err = _err_console(quiet)
    with handle_errors(debug):
        from l1select.pipeline import select_features
        from l1select.report import render, render_table
        from l1select.types import FitParams

        ratios = _floats(l1_ratio, "--l1-ratio")
        grid = _floats(alphas, "--alphas")
        factors = _penalty_factors(penalty_factor)
        if config is not None:
            from l1select.config import load_job

            given = _given_options(ctx, source=data, l1_ratio=ratios, alphas=grid,
                                   penalty_factor=dict(factors or ()))
            job = load_job(config, given)
            data, params = job.source, job.params
        else:
            _require(ctx, data=data, target=target)
            if ratios is None:
                ratios = [0.5] if model == Model.elasticnet else [1.0]
            params = FitParams(
                target=target, model=model.value, l1_ratios=tuple(ratios), cv=cv,
                fold_column=fold_column, seed=seed, rule=getattr(rule, "value", rule),
                n_alphas=n_alphas, eps=eps, alphas=tuple(grid) if grid else None, alpha=alpha,
                standardize=standardize, missing=getattr(missing, "value", missing),
                max_levels=max_levels, features=tuple(features or ()),
                exclude=tuple(exclude or ()), test_size=test_size, engine=engine.value,
                scheduler=scheduler, threads=threads, stability=stability,
                stability_threshold=stability_threshold,
                corr_threshold=corr_threshold, force=tuple(force or ()),
                penalty_factors=tuple(factors or ()), adaptive=adaptive,
                refit=getattr(refit, "value", refit),
                family=getattr(family, "value", family), positive_class=positive_class,
                measure=getattr(measure, "value", measure), threshold=threshold,
                weights=weights,
            )
        _check_destinations(plots, report)
        with _progress(err) as progress:
            result = select_features(data, params, progress)
        _print_warnings(err, result.warnings)
        if format != OutputFormat.table:
            write_output(render(format.value, result), output)
        elif output is None:
            render_table(result, _StdoutConsole(highlight=False))
        else:
            import io as _io

            buf = _io.StringIO()
            render_table(result, Console(file=buf, width=100, no_color=True, highlight=False))
            write_output(buf.getvalue(), output)
        if plots is not None or report is not None:
            _pictures(result, plots, report, err)


def _require(ctx: typer.Context, **values: object) -> None:
    """Without --config, DATA and --target are required: the usual usage error if missing."""
    from typer._click.exceptions import MissingParameter

    for name, value in values.items():
        if value is None:
            param = next(p for p in ctx.command.params if p.name == name)
            raise MissingParameter(ctx=ctx, param=param)


# fit's options that a job file may hold, under the same name (DATA is the job's source).
_CONFIG_KEYS = ("target", "features", "exclude", "model", "l1_ratio", "cv", "fold_column",
                "seed", "rule", "n_alphas", "eps", "alphas", "alpha", "standardize", "missing",
                "max_levels", "test_size", "engine", "scheduler", "threads", "stability",
                "stability_threshold", "corr_threshold", "force", "penalty_factor", "adaptive",
                "refit", "family", "positive_class", "measure", "threshold", "weights")


def _given_options(ctx: typer.Context, **parsed: object) -> dict[str, object]:
    """The options given on the command line (not defaults), as job-file keys and values;
    ``parsed`` holds the values already parsed from their text (``--l1-ratio 0.1,0.5``)."""
    given: dict[str, object] = {}
    for key in ("data", *_CONFIG_KEYS):
        source = ctx.get_parameter_source(key)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        value = ctx.params[key]
        name = "source" if key == "data" else key
        value = parsed.get(name, value)
        given[name] = getattr(value, "value", value)
    return given


def _check_destinations(plots: Path | None, report: Path | None) -> None:
    """Fail before the fit, not after it, when --plots or --report cannot be written."""
    if plots is not None:
        from l1select.plots import check_output_dir

        check_output_dir(plots)
    if report is not None:
        from l1select.html_report import check_destination

        check_destination(report)


def _pictures(result, plots: Path | None, report: Path | None, err: Console) -> None:
    """``fit --plots DIR`` and ``fit --report FILE``: one library call each."""
    from l1select.report import to_dict

    doc = to_dict(result)
    if plots is not None:
        from l1select.plots import write_plots

        _say_plots(write_plots(doc, plots), err)
    if report is not None:
        from l1select.html_report import write_report

        err.print(f"wrote {write_report(doc, report)}", highlight=False, markup=False)


def _say_plots(outcome, err: Console) -> None:
    from rich.markup import escape

    for name, why in outcome.skipped:
        err.print(f"[yellow]warning:[/] no {name} plot: {escape(why)}", markup=True,
                  highlight=False,
                  soft_wrap=True)
    if outcome.written:
        err.print(f"wrote {', '.join(str(p) for p in outcome.written)}", highlight=False,
                  markup=False,
                  soft_wrap=True)


@app.command()
def plot(
    result: ResultFile,
    output: PlotDir,
    format: PlotFormatOpt = PlotFormat.png,
    only: PlotOnly = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw a result's pictures: CV curve, coefficient path, selected coefficients."""
    err = _err_console(quiet)
    with handle_errors(debug):
        from l1select.plots import load_result, write_plots

        _say_plots(write_plots(load_result(result), output, format.value, only), err)


@app.command()
def batch(
    file: BatchFileArg,
    output_dir: OutputDir = Path("runs"),
    jobs: Jobs = 1,
    only: Only = None,
    fail_fast: FailFast = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Run the jobs of a YAML batch file, each into OUTPUT_DIR/NAME/ (see 'l1select schema')."""
    err = _err_console(quiet)
    with handle_errors(debug):
        from l1select.batch import render_plan, render_summary, run_batch

        with _batch_progress(err, dry_run) as progress:
            report = run_batch(file, output_dir=output_dir, only=only, jobs=jobs,
                               fail_fast=fail_fast, dry_run=dry_run, progress=progress)
        if dry_run:
            write_output(render_plan(report), None)
        else:
            render_summary(report, err)
        if report.failed:
            names = ", ".join(r.name for r in report.failed)
            what = "cannot run" if dry_run else "failed"
            where = "" if dry_run else f"; see {output_dir / 'summary.json'}"
            sys.stderr.write(f"Error: {len(report.failed)} of {len(report.records)} jobs "
                             f"{what} ({names}){where}\n")
    raise typer.Exit(report.exit_code)


@app.command()
def schema(kind: SchemaKindOpt = SchemaKind.batch) -> None:
    """Print the JSON Schema of batch files (or of job files for 'fit --config')."""
    from l1select.config import schema_text

    write_output(schema_text(kind.value), None)


@contextmanager
def _batch_progress(console: Console, dry_run: bool):
    """Each job's status on stderr as the batch runs, only when stderr is a terminal."""
    if dry_run or console.quiet or not console.is_terminal:
        yield None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        overall = bar.add_task("jobs", total=None)
        tasks: dict[str, int] = {}

        def update(record, done: int, total: int) -> None:
            bar.update(overall, completed=done, total=total)
            if record.status == "running":
                tasks[record.name] = bar.add_task(f"  {record.name}", total=None)
                return
            task = tasks.pop(record.name, None)
            if task is not None:
                bar.remove_task(task)
            mark = "[green]ok[/]" if record.status == "ok" else f"[red]{record.status}[/]"
            tail = f": {escape(record.error)}" if record.error else ""
            bar.console.print(f"{mark} {record.name} ({record.seconds or 0:.1f}s){tail}",
                              highlight=False, soft_wrap=True)

        yield update


@app.command()
def transform(
    data: Data,
    selection: Selection,
    keep: Keep = None,
    output: DataOut = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Write DATA with only the selected columns (plus the target and --keep columns)."""
    err = _err_console(quiet)
    with handle_errors(debug), _quiet_pipe():
        from l1select.apply import load_model
        from l1select.apply import transform as run_transform

        summary = run_transform(data, load_model(selection), tuple(keep or ()), output)
        if output not in (None, "-"):
            err.print(f"wrote {summary['rows']} rows × {len(summary['columns'])} columns to "
                      f"{output}", highlight=False, markup=False)


@app.command()
def predict(
    data: Data,
    model: ModelFile,
    keep: Keep = None,
    output: DataOut = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="Binary target: predict the positive class above this probability "
        "(default: the fit's).", show_default=False)] = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Write one prediction per row of DATA from a fitted result (plus --keep columns); for a
    binary target the probability of the positive class and the predicted class."""
    err = _err_console(quiet)
    with handle_errors(debug), _quiet_pipe():
        from l1select.apply import load_model
        from l1select.apply import predict as run_predict

        summary, warnings = run_predict(data, load_model(model), tuple(keep or ()), output,
                                        threshold)
        _print_warnings(err, warnings)
        if output not in (None, "-"):
            err.print(f"wrote {summary['rows']} predictions to {output}", highlight=False,
                      markup=False)


@contextmanager
def _quiet_pipe() -> Iterator[None]:
    """Data written to stdout: a closed pipe (``| head``) ends the program quietly."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    app()

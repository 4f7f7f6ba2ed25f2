"""The command line's own options and arguments (not ``fit``'s model options, which are
generated from the table in :mod:`l1select.options`), each declared once as an Annotated type.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from l1select.options import INPUT, OUTPUT


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    names = "names"
    ndjson = "ndjson"


Data = Annotated[str, typer.Argument(
    metavar="DATA", help="CSV, TSV, .csv.gz or Parquet file; '-' for CSV on stdin.")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.",
                                                 rich_help_panel=OUTPUT)]
Output = Annotated[Path | None, typer.Option(
    "--output", "-o", metavar="FILE", rich_help_panel=OUTPUT,
    help="Write the output to this file (atomically) instead of stdout.")]
# fit shows these two in its Output and Engine panels (see cli._fit_signature).
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


# ``fit --config`` and ``batch``
OptionalData = Annotated[str | None, typer.Argument(
    metavar="DATA", help="CSV, TSV, .csv.gz or Parquet file; '-' for CSV on stdin. "
    "Required unless --config gives a source.", show_default=False)]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Read the options from this YAML job file (the batch file schema, "
    "one job); options given on the command line override it.", show_default=False,
    metavar="FILE", rich_help_panel=INPUT)]
BatchFileArg = Annotated[Path, typer.Argument(
    metavar="FILE", help="The YAML batch file: defaults and a list of jobs.")]
OutputDir = Annotated[Path, typer.Option(
    "--output-dir", "-d", metavar="DIR",
    help="Each job writes into OUTPUT_DIR/NAME/; summary.json here.")]
Jobs = Annotated[int, typer.Option(
    "--jobs", "-j", metavar="N", min=1, help="Run this many jobs at a time, in worker processes.")]
Only = Annotated[list[str] | None, typer.Option(
    "--only", metavar="NAME", help="Run only this job (repeatable, or comma-separated names).",
    show_default=False)]
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed job.")]
DryRun = Annotated[bool, typer.Option(
    "--dry-run", help="Validate, resolve and print the plan (flagging sources that cannot be "
    "read); run and write nothing.")]


class SchemaKind(StrEnum):
    batch = "batch"
    job = "job"


SchemaKindOpt = Annotated[SchemaKind, typer.Option(
    "--kind", help="batch: a file for 'l1select batch'; job: a file for 'fit --config'.")]

Keep = Annotated[list[str] | None, typer.Option(
    "--keep", "-k", metavar="COL", help="Also write these columns (IDs, timestamps); repeatable.")]
Selection = Annotated[str, typer.Option(
    "--selection", "-s", metavar="FILE", help="The result JSON of 'l1select fit … --format json'.")]
ModelFile = Annotated[str, typer.Option(
    "--model", "-m", metavar="FILE", help="The result JSON of 'l1select fit … --format json'.")]
DataOut = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="FILE",
    help="Write to this .csv/.tsv/.parquet file (atomically); '-' or "
    "nothing: CSV on stdout.")]

# Pictures and the HTML report: ``plot``, ``fit --plots`` and ``fit --report``
class PlotFormat(StrEnum):
    png = "png"
    svg = "svg"


ResultFile = Annotated[str, typer.Argument(
    metavar="RESULT", help="The result JSON of 'l1select fit … --format json'.")]
PlotDir = Annotated[Path, typer.Option(
    "--output", "-o", metavar="DIR",
    help="Write the pictures into this folder (made if missing), as "
    "cv.png, path.png and coefficients.png.")]
PlotFormatOpt = Annotated[PlotFormat, typer.Option("--format", help="Image format.")]
PlotOnly = Annotated[list[str] | None, typer.Option(
    "--only", metavar="NAME", help="Only these pictures: cv, path, coefficients (repeatable, or "
    "comma-separated).", show_default=False)]
PlotsOpt = Annotated[Path | None, typer.Option(
    "--plots", help="Also draw the pictures (cv, path, coefficients) as PNG into this folder.",
    show_default=False, metavar="DIR", rich_help_panel=OUTPUT)]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Also write a self-contained HTML report (summary, tables, pictures, "
    "warnings, how to reproduce) to this file.", show_default=False, metavar="FILE",
    rich_help_panel=OUTPUT)]

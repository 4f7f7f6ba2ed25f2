"""Shared option types for the commands (Annotated Typer options, declared once)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    names = "names"
    ndjson = "ndjson"


class Model(StrEnum):
    lasso = "lasso"
    elasticnet = "elasticnet"


class Rule(StrEnum):
    one_se = "1se"
    min = "min"


class Missing(StrEnum):
    mean = "mean"
    drop = "drop"
    error = "error"


class Engine(StrEnum):
    auto = "auto"
    reference = "reference"
    gram = "gram"
    data = "data"
    dask = "dask"


def _floats(value: str | None, option: str) -> list[float] | None:
    """A comma-separated list of numbers, such as ``0.1,0.5,0.9``."""
    if value is None:
        return None
    try:
        out = [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a comma-separated list of numbers",
                                 param_hint=f"'{option}'") from None
    if not out:
        raise typer.BadParameter("give at least one number", param_hint=f"'{option}'")
    return out


Data = Annotated[str, typer.Argument(
    metavar="DATA", help="CSV, TSV, .csv.gz or Parquet file; '-' for CSV on stdin.")]
Target = Annotated[str, typer.Option("--target", "-t", help="The numeric column to explain.")]
Features = Annotated[list[str] | None, typer.Option(
    "--features", "-f", help="Only these columns as features (names or globs; repeatable).")]
Exclude = Annotated[list[str] | None, typer.Option(
    "--exclude", "-x", help="Never use these columns (names or globs; repeatable).")]
ModelOpt = Annotated[Model, typer.Option("--model", help="lasso, or elasticnet (L1 + L2).")]
L1Ratio = Annotated[str | None, typer.Option(
    "--l1-ratio", help="ElasticNet mixing, one value or a list: 0.1,0.5,0.9 (default 0.5).")]
CV = Annotated[int, typer.Option("--cv", help="Number of CV folds.")]
FoldColumn = Annotated[str | None, typer.Option(
    "--fold-column", help="Use this column's labels as the CV folds (glmnet's foldid).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the fold and test-split shuffles.")]
RuleOpt = Annotated[Rule, typer.Option("--rule", help="Pick alpha_1se (sparser) or alpha_min.")]
NAlphas = Annotated[int, typer.Option("--n-alphas", help="Number of alphas on the grid.")]
Eps = Annotated[float, typer.Option("--eps", help="Smallest alpha as a fraction of alpha_max.")]
Alphas = Annotated[str | None, typer.Option(
    "--alphas", help="An explicit alpha grid: 1,0.1,0.01.")]
Alpha = Annotated[float | None, typer.Option(
    "--alpha", help="Fit this one alpha on all rows, without CV.")]
Standardize = Annotated[bool, typer.Option(
    "--standardize/--no-standardize", help="Standardize features per training fold.")]
MissingOpt = Annotated[Missing, typer.Option(
    "--missing", help="Missing feature values: impute the training mean, drop rows, or fail.")]
MaxLevels = Annotated[int, typer.Option(
    "--max-levels", help="Text columns with at most this many values are one-hot encoded.")]
TestSize = Annotated[float | None, typer.Option(
    "--test-size", help="Hold out this fraction of rows and report the test MSE and R².")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
Output = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the output to this file (atomically) instead of stdout.")]
EngineOpt = Annotated[Engine, typer.Option(
    "--engine", help="gram: streaming statistics; data: the data matrix in memory (wide data); "
    "reference: scikit-learn; dask: the statistics on a Dask cluster; auto: gram unless the "
    "data is wide.")]
Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="--engine dask: the Dask scheduler's address (default: "
    "DASK_SCHEDULER_ADDRESS, else a local cluster).")]
Threads = Annotated[int | None, typer.Option(
    "--threads", help="Threads for the numeric libraries (default: 1 during the pass).")]


# Selection you can trust: stability, alternates, penalty control, refit
class Refit(StrEnum):
    ols = "ols"


def _penalty_factors(values: list[str] | None) -> list[tuple[str, float]] | None:
    """``COL=W`` pairs (the last ``=`` splits, so a column name may hold one)."""
    if not values:
        return None
    out = []
    for text in values:
        name, sep, weight = text.rpartition("=")
        try:
            if not (sep and name):
                raise ValueError
            out.append((name, float(weight)))
        except ValueError:
            raise typer.BadParameter(f"'{text}' is not COL=WEIGHT, e.g. sqft=0.5",
                                     param_hint="'--penalty-factor'") from None
    return out


Stability = Annotated[int | None, typer.Option(
    "--stability", help="Stability selection: fit this many complementary pairs of "
    "half-samples (e.g. 50) and report each feature's selection probability.",
    show_default=False)]
StabilityThreshold = Annotated[float, typer.Option(
    "--stability-threshold", help="Selection probability of the stable set, in (0.5, 1].")]
CorrThreshold = Annotated[float, typer.Option(
    "--corr-threshold", help="List unselected features correlated at least this much (|r|) "
    "with a selected one as its alternates.")]
Force = Annotated[list[str] | None, typer.Option(
    "--force", metavar="COL", help="Keep this column in the model, unpenalized (repeatable).",
    show_default=False)]
PenaltyFactor = Annotated[list[str] | None, typer.Option(
    "--penalty-factor", metavar="COL=W", help="Weigh COL's penalty by W (glmnet's "
    "penalty.factor; 0 = --force; repeatable).", show_default=False)]
Adaptive = Annotated[bool, typer.Option(
    "--adaptive", help="Adaptive lasso: penalty factors 1/|b| from an initial OLS (or ridge) "
    "fit on all training rows.")]
RefitOpt = Annotated[Refit | None, typer.Option(
    "--refit", help="ols: also report least-squares coefficients on the selected features "
    "(post-selection estimates).", show_default=False)]


# Binary targets (README "Binary targets: logistic regression")
class Family(StrEnum):
    auto = "auto"
    gaussian = "gaussian"
    binomial = "binomial"


class Measure(StrEnum):
    deviance = "deviance"
    auc = "auc"
    class_ = "class"
    mse = "mse"
    mae = "mae"


FamilyOpt = Annotated[Family, typer.Option(
    "--family", help="binomial: logistic regression of a two-valued target; gaussian: "
    "least squares; auto: binomial when the target has exactly two values.")]
PositiveClass = Annotated[str | None, typer.Option(
    "--positive-class", help="The target value modelled as 1 (default: the second of the two "
    "in sorted order).", show_default=False)]
MeasureOpt = Annotated[Measure | None, typer.Option(
    "--measure", help="CV measure: binomial deviance (default), auc, class "
    "(misclassification), mse or mae of the probability; gaussian mse.", show_default=False)]
Threshold = Annotated[float, typer.Option(
    "--threshold", help="binomial: predict the positive class above this probability (class "
    "measure, test accuracy, predict).")]
Weights = Annotated[str | None, typer.Option(
    "--weights", help="Column of non-negative observation weights (not a feature), glmnet's "
    "weights: both families; every engine but data for a numeric target.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


# ``fit --config`` and ``batch``
OptionalData = Annotated[str | None, typer.Argument(
    metavar="DATA", help="CSV, TSV, .csv.gz or Parquet file; '-' for CSV on stdin. "
    "Required unless --config gives a source.", show_default=False)]
OptionalTarget = Annotated[str | None, typer.Option(
    "--target", "-t", help="The numeric column to explain (required unless --config gives it).",
    show_default=False)]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Read the options from this YAML job file (the batch file schema, "
    "one job); options given on the command line override it.", show_default=False)]
BatchFileArg = Annotated[Path, typer.Argument(
    metavar="FILE", help="The YAML batch file: defaults and a list of jobs.")]
OutputDir = Annotated[Path, typer.Option(
    "--output-dir", "-d", help="Each job writes into OUTPUT_DIR/NAME/; summary.json here.")]
Jobs = Annotated[int, typer.Option(
    "--jobs", "-j", min=1, help="Run this many jobs at a time, in worker processes.")]
Only = Annotated[list[str] | None, typer.Option(
    "--only", help="Run only this job (repeatable, or comma-separated names).",
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
    "--keep", "-k", help="Also write these columns (IDs, timestamps); repeatable.")]
Selection = Annotated[str, typer.Option(
    "--selection", "-s", help="The result JSON of 'l1select fit … --format json'.")]
ModelFile = Annotated[str, typer.Option(
    "--model", "-m", help="The result JSON of 'l1select fit … --format json'.")]
DataOut = Annotated[str | None, typer.Option(
    "--output", "-o", help="Write to this .csv/.tsv/.parquet file (atomically); '-' or "
    "nothing: CSV on stdout.")]

# Pictures and the HTML report: ``plot``, ``fit --plots`` and ``fit --report``
class PlotFormat(StrEnum):
    png = "png"
    svg = "svg"


ResultFile = Annotated[str, typer.Argument(
    metavar="RESULT", help="The result JSON of 'l1select fit … --format json'.")]
PlotDir = Annotated[Path, typer.Option(
    "--output", "-o", help="Write the pictures into this folder (made if missing), as "
    "cv.png, path.png and coefficients.png.")]
PlotFormatOpt = Annotated[PlotFormat, typer.Option("--format", help="Image format.")]
PlotOnly = Annotated[list[str] | None, typer.Option(
    "--only", help="Only these pictures: cv, path, coefficients (repeatable, or "
    "comma-separated).", show_default=False)]
PlotsOpt = Annotated[Path | None, typer.Option(
    "--plots", help="Also draw the pictures (cv, path, coefficients) as PNG into this folder.",
    show_default=False)]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Also write a self-contained HTML report (summary, tables, pictures, "
    "warnings, how to reproduce) to this file.", show_default=False)]

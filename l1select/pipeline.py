"""Chain the stages: the library entry point ``select_features``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l1select import io as l1io
from l1select._gc import paused as gc_paused
from l1select.engines.base import Engine, Job, OnCluster, TooWide
from l1select.errors import ConfigError, escaped
from l1select.family import NotBinary, binary_classes, check_weights_column, looks_binary
from l1select.options import problems
from l1select.prepare import needed_columns
from l1select.select import (
    alternates,
    column_summary,
    diagnostics,
    refit_ols,
    select,
    stability_summary,
)
from l1select.types import FitParams, Recipe, SelectionResult, Solved, Warn


def validate(params: FitParams) -> FitParams:
    """Check the options once, at the entry; later stages trust them.

    Raises :class:`ConfigError` with every problem, phrased with flag names
    (``--cv must be at least 2, not 1``); the job-file loader phrases the same problems
    (:func:`l1select.options.problems`) with its keys and lines.
    """
    found = problems(params)
    if found:
        raise ConfigError("; ".join(p.for_cli() for p in found))
    return params


def select_features(path: str, params: FitParams, progress=None) -> SelectionResult:
    """Read ``path``, prepare, cross-validate the path, choose alpha and refit on all rows.

    ``progress(stage, done, total)``, if given, is called as rows are read (stage ``read``,
    total an estimate or None) and as the paths are solved (stage ``path``).
    """
    from threadpoolctl import threadpool_limits

    params = validate(params)
    source, header, data = l1io.open_header(path)
    exclude = params.exclude
    if params.weights is not None:
        check_weights_column(params.weights, header.names, params.target, params.fold_column,
                             source.display)
        exclude = (*exclude, params.weights)  # the weights column is never a feature
    columns, warnings = needed_columns(header.names, params.target, params.features,
                                       exclude, params.fold_column, source.display,
                                       params.group_column)
    if params.weights is not None:
        columns.append(params.weights)
    n_rows = l1io.estimate_rows(source, data)
    family = params.family
    if family == "auto":
        family = _likely_family(source, header, data, params)
    # One BLAS thread unless asked: the pass is many small products, and on a busy 2-core
    # machine a second BLAS thread fighting Arrow's parser slows it down several times.
    reporter = _Progress(progress, n_rows) if progress else None
    with threadpool_limits(limits=params.threads or 1):
        out = None
        if family == "binomial":
            if params.group_categoricals:
                raise ConfigError("--group-categoricals is not available for a binary target "
                                  "(family binomial) yet; leave it out, or use --family "
                                  "gaussian for a linear model")
            engine = _engine(params.engine, len(columns), n_rows, family="binomial")

            def classes_of(target):
                return binary_classes(target, params.family, params.positive_class,
                                      params.target, source.display)

            try:
                out = _run(engine, Job(source, header, data, columns, params, reporter,
                                       classes_of))
            except NotBinary:
                # The first rows looked binary, the whole target is not: a linear model.
                family = "gaussian"
                reporter = _Progress(progress, n_rows) if progress else None
        if out is None:
            _gaussian_only(params)
            engine = _engine(params.engine, len(columns), n_rows, params.group_categoricals,
                             weighted=params.weights is not None, measure=params.measure)
            out = _run(engine, Job(source, header, data, columns, params, reporter))
        classes = out.classes
        features = list(out.recipe.features)
        with gc_paused():  # it makes a FeatureResult per feature, kept in the result
            chosen = select(list(out.fits), out.scaling, params.rule, features,
                            list(out.alpha_max), out.penalty, out.family, out.measure)
        extra = _trust(out, chosen, params, reporter)
    halves_converged = extra.pop("converged")
    stop = "coefficient-change" if out.family == "binomial" else "duality-gap"
    if not (all(f.converged for f in out.fits) and halves_converged):
        warnings.append(Warn(
            "not_converged", f"The solver stopped at {params.max_iter} epochs before reaching "
            f"the {stop} tolerance {params.tol:g} at some alphas; the results there are "
            "approximate (highly correlated features slow it down: consider --exclude)"))
    warnings.extend(extra.pop("warnings"))
    test_report = None
    if out.test_error is not None:
        test_report = out.test_error(chosen.coef, chosen.intercept)
    results = extra.pop("features")
    cv = chosen.cv
    roc = out.fits[chosen.chosen].roc
    if cv is not None and roc is not None:
        cv = {**cv, "roc": roc(chosen.i_alpha)}
    if cv is not None and out.fold_labels:
        cv = {**cv, "fold_labels": list(out.fold_labels)}
    with gc_paused():  # an object per column and two per feature, kept in the result
        columns = column_summary(out.recipe, results)
        recipe = _recipe_dict(out.recipe, out.scaling)
    return SelectionResult(
        input={
            "source": source.display,
            "format": source.format,
            "sha256": out.sha256,
            "n_rows": out.n_rows,
            "n_rows_used": out.n_used,
            "n_rows_test": out.n_test,
            "n_rows_dropped": out.n_dropped,
            "target": params.target,
            **({} if classes is None else {"classes": {
                "negative": classes.values[0], "positive": classes.values[1],
                "counts": {str(v): c for v, c in zip(classes.values, classes.counts,
                                                     strict=True)}}}),
        },
        params={**_params_dict(params, out), "engine": out.engine, "n_folds": out.n_folds,
                "family": out.family, "measure": out.measure,
                "positive_class": None if classes is None else classes.positive},
        alpha=chosen.alpha,
        cv=cv,
        intercept=chosen.intercept,
        features=results,
        columns=columns,
        selected=chosen.selected,
        warnings=tuple(warnings) + out.warnings,
        recipe={**recipe, "family": out.family,
                **({} if classes is None else {"classes": list(classes.values)})},
        test=test_report,
        engine=out.engine,
        coef_path=chosen.coef_path,
        **extra,
    )


def _params_dict(params: FitParams, out) -> dict:
    """``params`` for the result, with the ``eps`` the default grid used (it depends on the
    rows and features), so the JSON says how to rerun exactly."""
    from l1select.path import default_eps

    found = params.to_dict()
    grid = found.get("alphas")
    if isinstance(grid, dict) and "eps" in grid:
        found["alphas"] = {**grid, "eps": default_eps(params, out.n_used,
                                                      len(out.recipe.features))}
    return found


def _trust(out, chosen, params: FitParams, progress) -> dict:
    """What tells the user how far to trust the selection: alternates, the OLS refit,
    stability selection and the diagnostics; the features with those filled in."""
    features = list(out.recipe.features)
    names = [f.name for f in features]
    results = {f.name: f for f in chosen.features}
    fit = out.fits[chosen.chosen]
    warnings: list[Warn] = []
    forced = out.penalty is not None and bool((out.penalty == 0).any())
    converged = True

    alts = alternates(features, chosen.selected, out.problem, params.corr_threshold)
    groups = [f"{escaped(n)} ~ " + ", ".join(f"{escaped(k)} ({r:+.2f})" for k, r in alts[n])
              for n in chosen.selected if alts[n]]
    if groups:
        warnings.append(Warn("correlated_alternates", (
            f"Some selected features have unselected alternates correlated at |r| >= "
            f"{params.corr_threshold:g}; the lasso's pick within each group is arbitrary, "
            f"another sample could pick the other: {'; '.join(groups)}. Keep the one you "
            "prefer with --force, or check --stability")))
    # Only the selected features have alternates: the others keep None (20,000 copies of
    # a frozen dataclass for nothing cost 0.3 s).
    for n in alts:
        results[n] = replace(results[n], alternates=tuple(k for k, _ in alts[n]))

    extra: dict = {"stability": None, "refit": None, "intercept_ols": None}
    if params.refit == "ols" and out.family == "binomial":
        index = {n: j for j, n in enumerate(names)}
        sel = np.array([index[n] for n in chosen.selected], dtype=np.int64)
        coef, intercept, diverged = out.refit(sel)
        # The others keep coef_ols None, as select made them.
        for j in sel.tolist():
            results[names[j]] = replace(results[names[j]], coef_ols=float(coef[j]))
        extra["intercept_ols"] = intercept
        extra["refit"] = {
            "method": "logistic",
            "note": ("post-selection estimates: unpenalized logistic regression on the "
                     "selected features, fitted on the same rows that selected them; their "
                     "standard errors and p-values would not be valid (the selection used "
                     "the data)"),
        }
        if diverged:
            warnings.append(Warn("refit_separation", (
                "The unpenalized logistic refit does not converge: the selected features "
                "separate the classes (nearly) perfectly, so its estimates grow without "
                "bound; coef_ols is where it stopped and is not meaningful")))
    elif params.refit == "ols":
        coef, intercept, deficient = refit_ols(features, chosen.selected, out.problem,
                                               out.scaling)
        index = {n: j for j, n in enumerate(names)}
        for n in chosen.selected:  # the others keep coef_ols None, as select made them
            results[n] = replace(results[n], coef_ols=float(coef[index[n]]))
        extra["intercept_ols"] = intercept
        extra["refit"] = {
            "method": "ols",
            "note": ("post-selection estimates: unpenalized least squares on the selected "
                     "features, fitted on the same rows that selected them; their standard "
                     "errors and p-values would not be valid (the selection used the data)"),
        }
        if deficient:
            warnings.append(Warn("refit_rank_deficient", (
                "The selected features are linearly dependent (e.g. every level of a "
                "categorical): coef_ols is the minimum-norm least-squares solution")))

    if params.stability:
        lam = np.asarray(fit.alphas)[:chosen.i_alpha + 1]
        report = progress.stability if progress is not None else None
        picks, converged, n_micro = out.halves(float(fit.l1_ratio), lam, report)
        penalized = np.ones(len(names), dtype=bool) if out.penalty is None else out.penalty > 0
        prob, q, bound, p = stability_summary(picks, params.stability_threshold, penalized)
        order = sorted(range(len(names)), key=lambda j: (-prob[j], names[j]))
        stable = [names[j] for j in order if prob[j] >= params.stability_threshold]
        for j, n in enumerate(names):
            results[n] = replace(results[n], stability=float(prob[j]))
        extra["stability"] = {
            "method": "complementary pairs stability selection (Shah & Samworth 2013)",
            "pairs": int(params.stability),
            "n_fits": int(picks.shape[0]),
            "threshold": float(params.stability_threshold),
            "l1_ratio": float(fit.l1_ratio),
            "alphas": {"alpha_high": float(lam[0]), "alpha_low": float(lam[-1]),
                       "n_alphas": int(lam.size)},
            "q": q,
            "n_features": p,
            "bound": bound,
            "stable": stable,
            "micro_groups": int(n_micro),
        }

    extra["penalty"] = None
    if out.penalty is not None:
        extra["penalty"] = {
            "rescaled_to": len(names),
            "forced": [n for n, w in zip(names, out.penalty, strict=True) if w == 0],
            "adaptive": out.adaptive,
        }
    warnings += diagnostics(chosen, fit, params, len(names), out.n_used, out.n_target_values,
                            forced)
    return {**extra, "features": tuple(results[n] for n in names), "warnings": warnings,
            "converged": converged}


def _likely_family(source, header, data, params: FitParams) -> str:
    """``--family auto``: binomial when the target's first block of rows looks binary (text,
    booleans, or at most two numbers), to be confirmed on the whole column when the data are
    loaded; else gaussian, without reading more than that block. With an engine that cannot
    fit the binomial family (``gram``) nothing is read here: the
    linear model, with a ``binary_target`` warning when the target has two values."""
    if params.engine not in BINOMIAL_ENGINES:
        return "gaussian"
    def one_pass(overrides):
        # Not hashed: only the first block is read, and the fit hashes the source anyway.
        blocks = l1io.batches(source, header, [params.target], data, l1io.Scan(), overrides,
                              hashed=False)
        try:
            first = next(blocks, None)
        finally:
            blocks.close()
        return None if first is None else first[0].column(0)

    first = l1io.with_retypes(one_pass)
    return "binomial" if first is not None and looks_binary(first) else "gaussian"


def _gaussian_only(params: FitParams) -> None:
    """What only the binomial family has, asked of a gaussian fit: a usage error."""
    if params.measure in ("deviance", "auc", "class"):
        raise ConfigError(f"--measure {params.measure} is for a binary target, and "
                          f"'{params.target}' is numeric (family gaussian); use mse or mae")


# The engines that fit the binomial family (the data held in memory, or on a Dask cluster).
BINOMIAL_ENGINES = ("auto", "data", "reference", "dask")


# The engines that take observation weights in the gaussian family.
WEIGHTED_GAUSSIAN_ENGINES = ("auto", "gram", "dask", "reference")

# The gaussian engines that hold the rows, so can score a fold by its mean absolute error
# (not a quadratic form of the fold's co-moments, which are all the others keep).
MAE_ENGINES = ("data", "reference")


def _engine(name: str, n_columns: int, n_rows: int | None, group: bool = False,
            family: str = "gaussian", weighted: bool = False, measure: str | None = None
            ) -> Engine:
    """The engine to run; the solving stage then picks the solver for what it delivers.

    ``auto`` streams the Gram statistics unless the data is wide (by its columns here; one-hot
    levels can make it wide later: the streaming engine then raises ``TooWide`` and
    :func:`_run` loads the data in memory instead). The binomial family is fitted in memory
    (or on a Dask cluster with ``--engine dask``).
    The data-matrix solver has no observation weights for the gaussian family: weighted fits
    take the Gram route. ``--measure mae`` needs the rows: ``auto`` loads them for it."""
    if family == "binomial":
        if name not in BINOMIAL_ENGINES:
            raise ConfigError(f"--engine {name} cannot fit a logistic model (binary target, "
                              "family binomial): it needs the rows in memory; use --engine "
                              "auto, --engine data, --engine reference or --engine dask, or "
                              "--family gaussian for a linear model")
        if name == "dask":
            from l1select.engines.dask_binomial import BinomialDaskEngine

            return BinomialDaskEngine()
        from l1select.engines.memory import MemoryEngine

        return MemoryEngine()
    if weighted and name not in WEIGHTED_GAUSSIAN_ENGINES:
        raise ConfigError(f"--engine {name} does not take --weights for a numeric target "
                          "(family gaussian); use --engine auto, gram, dask or reference")
    if measure == "mae":
        name = _mae_engine(name, group, weighted)
    if name == "auto" and group:
        name = "gram"  # the group lasso runs on the Gram statistics only
    if name == "auto":
        from l1select.engines.streaming import GRAM_MAX_FEATURES

        if weighted and n_columns > GRAM_MAX_FEATURES:
            raise _too_wide_for_weights(n_columns, GRAM_MAX_FEATURES)
        wide = n_columns > GRAM_MAX_FEATURES or (n_rows is not None and n_rows < 2 * n_columns)
        # Weighted gaussian fits stay on the Gram, whose statistics take weights.
        name = "data" if wide and not weighted else "gram"
    if name in ("reference", "data"):
        from l1select.engines.memory import MemoryEngine

        return MemoryEngine()
    if name == "dask":
        from l1select.engines.dask import DaskEngine

        return DaskEngine()
    from l1select.engines.streaming import StreamingEngine

    return StreamingEngine()


def _mae_engine(name: str, group: bool, weighted: bool) -> str:
    """The engine for ``--measure mae`` with a numeric target, or the usage error."""
    if name in MAE_ENGINES:
        return name
    if name != "auto":
        raise ConfigError(f"--measure mae with a numeric target (family gaussian) needs the "
                          f"held-out rows themselves, and --engine {name} keeps only their "
                          "sufficient statistics, of which a mean absolute error is no "
                          "function; use --engine data or --engine reference (or auto)")
    if group or weighted:
        what, lacks = (("--group-categoricals", "cannot solve the group lasso") if group else
                       ("--weights", "takes no observation weights"))
        raise ConfigError(f"--measure mae with {what} and a numeric target runs only on "
                          f"--engine reference (the data engine, which auto picks for mae, "
                          f"{lacks}); add --engine reference, or use --measure mse")
    return "data"


def _run(engine: Engine, job: Job) -> Solved:
    """The two stages in order: ``engine`` delivers, the solving stage solves (a delivery
    held on a cluster is closed after its solve). With
    ``--engine auto``, the design is loaded in memory for the data-matrix solver when the
    streaming pass finds it too wide once the categoricals are one-hot encoded."""
    from l1select.solve.stage import solve

    try:
        delivered = engine.run(job)
    except TooWide:
        if job.params.weights is not None:
            from l1select.engines.streaming import GRAM_MAX_FEATURES

            raise _too_wide_for_weights(None, GRAM_MAX_FEATURES) from None
        from l1select.engines.memory import MemoryEngine

        delivered = MemoryEngine().run(job)
    if isinstance(delivered, OnCluster):
        # The rows stay on the cluster while they are solved; then the client is closed.
        with delivered:
            return solve(delivered, job)
    return solve(delivered, job)


def _too_wide_for_weights(n_columns: int | None, limit: int) -> ConfigError:
    what = "columns" if n_columns is not None else "features after one-hot encoding"
    return ConfigError(f"--weights with a numeric target and more than {limit} {what}"
                       f"{f' ({n_columns})' if n_columns is not None else ''} is not supported: "
                       "the weighted Gram route would outgrow memory and the data-matrix "
                       "engine has no weights; select fewer columns (--features/--exclude) or "
                       "force it with --engine gram")


def _recipe_dict(recipe: Recipe, scaling) -> dict:
    """The preparation recipe a result carries, so that transform and predict need no refit."""
    columns = []
    for c in recipe.columns:
        column = {"name": c.name, "kind": c.kind, "levels": list(c.levels) or None}
        if c.pooled:
            column["pooled"] = list(c.pooled)
        columns.append(column)
    return {
        "target": recipe.target,
        "columns": columns,
        # tolist: Python floats in bulk (wide data has tens of thousands of features)
        "features": [
            {"name": f.name, "column": f.column, "kind": f.kind, "level": f.level,
             "impute": m, "center": m, "scale": s}
            for f, m, s in zip(recipe.features, np.asarray(scaling.x_mean, dtype=float).tolist(),
                               np.asarray(scaling.x_scale, dtype=float).tolist(), strict=True)
        ],
        "y_mean": scaling.y_mean,
    }


class _Progress:
    """Adapts an engine's progress calls to ``progress(stage, done, total)``."""

    def __init__(self, callback, n_rows: int | None):
        self.callback = callback
        self.n_rows = n_rows
        self.rows = 0

    def read(self, n: int) -> None:
        self.rows += n
        self.callback("read", self.rows, self.n_rows)

    def path(self, done: int, total: int) -> None:
        self.callback("path", done, total)

    def stability(self, done: int, total: int) -> None:
        self.callback("stability", done, total)

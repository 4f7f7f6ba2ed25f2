"""Chain the stages: the library entry point ``select_features``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l1select import io as l1io
from l1select.errors import ConfigError
from l1select.family import NotBinary, binary_classes, check_weights_column, looks_binary
from l1select.path import explicit_grid
from l1select.prepare import needed_columns
from l1select.select import alternates, diagnostics, refit_ols, select, stability_summary
from l1select.types import FitParams, Recipe, SelectionResult, Warn


def validate(params: FitParams) -> FitParams:
    """Check the options once, at the entry; later stages trust them."""
    problems = []
    if params.model not in ("lasso", "elasticnet"):
        problems.append(f"--model must be lasso or elasticnet, not '{params.model}'")
    if params.model == "lasso" and tuple(params.l1_ratios) != (1.0,):
        problems.append("--l1-ratio applies to --model elasticnet; lasso has l1_ratio 1")
    if any(not (0.0 < r <= 1.0) for r in params.l1_ratios) or not params.l1_ratios:
        problems.append("--l1-ratio values must be in (0, 1], e.g. --l1-ratio 0.1,0.5,0.9")
    if params.fold_column is None and params.cv < 2:
        problems.append(f"--cv must be at least 2, not {params.cv}")
    if params.n_alphas < 1:
        problems.append("--n-alphas must be at least 1")
    if not (0.0 < params.eps < 1.0):
        problems.append(f"--eps must be between 0 and 1, not {params.eps}")
    if params.alpha is not None and not (params.alpha > 0 and np.isfinite(params.alpha)):
        problems.append(f"--alpha must be a positive number, not {params.alpha}")
    if params.alpha is not None and params.alphas is not None:
        problems.append("give either --alpha (one fit, no CV) or --alphas (a CV grid), not both")
    if params.alpha is not None and len(params.l1_ratios) > 1:
        problems.append("--alpha fits one model: give a single --l1-ratio")
    if params.test_size is not None and not (0.0 < params.test_size < 1.0):
        problems.append(f"--test-size must be between 0 and 1, not {params.test_size}")
    if params.max_levels < 1:
        problems.append("--max-levels must be at least 1")
    if params.rule not in ("1se", "min"):
        problems.append(f"--rule must be 1se or min, not '{params.rule}'")
    if params.missing not in ("mean", "drop", "error"):
        problems.append(f"--missing must be mean, drop or error, not '{params.missing}'")
    if params.stability is not None and params.stability < 1:
        problems.append(f"--stability must be at least 1 (pairs of half-samples), not "
                        f"{params.stability}")
    if not (0.5 < params.stability_threshold <= 1.0):
        problems.append("--stability-threshold must be in (0.5, 1] (the bound on false "
                        f"selections needs more than 0.5), not {params.stability_threshold}")
    if not (0.0 < params.corr_threshold <= 1.0):
        problems.append(f"--corr-threshold must be in (0, 1], not {params.corr_threshold}")
    bad = [f"{n}={w}" for n, w in params.penalty_factors if not (w >= 0 and np.isfinite(w))]
    if bad:
        problems.append(f"--penalty-factor weights must be finite and at least 0, not "
                        f"{', '.join(bad)}")
    both = sorted({n for n, _ in params.penalty_factors} & set(params.force))
    if both:
        problems.append(f"--force and --penalty-factor both name {', '.join(both)}: "
                        "give one of them")
    if params.refit not in (None, "ols"):
        problems.append(f"--refit must be ols, not '{params.refit}'")
    if params.engine == "reference" and (params.force or params.penalty_factors
                                         or params.adaptive):
        problems.append("--force, --penalty-factor and --adaptive need penalty factors, which "
                        "the reference engine (scikit-learn) does not have; use --engine gram "
                        "or --engine data")
    if params.scheduler is not None and params.engine != "dask":
        problems.append("--scheduler applies to --engine dask; add --engine dask")
    if params.family not in ("auto", "gaussian", "binomial"):
        problems.append(f"--family must be auto, gaussian or binomial, not '{params.family}'")
    binomial_only = ("deviance", "auc", "class")
    if params.measure is not None and params.measure not in ("mse", "mae") + binomial_only:
        problems.append(f"--measure must be deviance, auc, class, mse or mae, not "
                        f"'{params.measure}'")
    elif params.family == "gaussian" and params.measure in binomial_only:
        problems.append(f"--measure {params.measure} is for a binary target; with --family "
                        "gaussian use mse or mae")
    if not (0.0 < params.threshold < 1.0):
        problems.append(f"--threshold must be between 0 and 1, not {params.threshold}")
    if params.alphas is not None:
        explicit_grid(params.alphas)
    if problems:
        raise ConfigError("; ".join(problems))
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
                                       exclude, params.fold_column, source.display)
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
            engine = _engine(params.engine, len(columns), n_rows, "binomial")

            def classes_of(target):
                return binary_classes(target, params.family, params.positive_class,
                                      params.target, source.display)

            try:
                out = engine.run(source, header, data, columns, params, reporter, classes_of)
            except NotBinary:
                # The first rows looked binary, the whole target is not: a linear model.
                family = "gaussian"
                reporter = _Progress(progress, n_rows) if progress else None
        if out is None:
            _gaussian_only(params)
            engine = _engine(params.engine, len(columns), n_rows,
                             weighted=params.weights is not None)
            out = engine.run(source, header, data, columns, params, reporter)
        classes = out.classes
        features = list(out.recipe.features)
        chosen = select(list(out.fits), out.scaling, params.rule, features,
                        list(out.alpha_max), out.penalty, out.family, out.measure)
        extra = _trust(out, chosen, params, reporter)
    halves_converged = extra.pop("converged")
    if not (all(f.converged for f in out.fits) and halves_converged):
        warnings.append(Warn(
            "not_converged", f"The solver stopped at {params.max_iter} epochs before reaching "
            f"the duality-gap tolerance {params.tol:g} at some alphas; the results there are "
            "approximate (highly correlated features slow it down: consider --exclude)"))
    warnings.extend(extra.pop("warnings"))
    test_report = None
    if out.test_error is not None and out.family == "binomial":
        test_report = out.test_error(chosen.coef, chosen.intercept)
    elif out.test_error is not None:
        n_test, mse, r2 = out.test_error(chosen.coef, chosen.intercept)
        test_report = {"n_rows": n_test, "mse": mse, "r2": r2}
    cv = chosen.cv
    roc = out.fits[chosen.chosen].roc
    if cv is not None and roc is not None:
        cv = {**cv, "roc": roc(chosen.i_alpha)}
    if cv is not None and out.fold_labels:
        cv = {**cv, "fold_labels": list(out.fold_labels)}
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
        params={**params.to_dict(), "engine": out.engine, "n_folds": out.n_folds,
                "family": out.family, "measure": out.measure,
                "positive_class": None if classes is None else classes.positive},
        alpha=chosen.alpha,
        cv=cv,
        intercept=chosen.intercept,
        features=extra.pop("features"),
        selected=chosen.selected,
        warnings=tuple(warnings) + out.warnings,
        recipe={**_recipe_dict(out.recipe, out.scaling), "family": out.family,
                **({} if classes is None else {"classes": list(classes.values)})},
        test=test_report,
        engine=out.engine,
        coef_path=chosen.coef_path,
        **extra,
    )


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
    groups = [f"{n} ~ " + ", ".join(f"{k} ({r:+.2f})" for k, r in alts[n])
              for n in chosen.selected if alts[n]]
    if groups:
        warnings.append(Warn("correlated_alternates", (
            f"Some selected features have unselected alternates correlated at |r| >= "
            f"{params.corr_threshold:g}; the lasso's pick within each group is arbitrary, "
            f"another sample could pick the other: {'; '.join(groups)}. Keep the one you "
            "prefer with --force, or check --stability")))
    for n in names:
        results[n] = replace(results[n], alternates=(
            tuple(k for k, _ in alts[n]) if n in alts else None))

    extra: dict = {"stability": None, "refit": None, "intercept_ols": None}
    if params.refit == "ols" and out.family == "binomial":
        index = {n: j for j, n in enumerate(names)}
        sel = np.array([index[n] for n in chosen.selected], dtype=np.int64)
        coef, intercept, diverged = out.refit(sel)
        for j, n in enumerate(names):
            results[n] = replace(results[n],
                                 coef_ols=float(coef[j]) if j in set(sel.tolist()) else None)
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
        chosen_set = set(chosen.selected)
        for j, n in enumerate(names):
            results[n] = replace(results[n],
                                 coef_ols=float(coef[j]) if n in chosen_set else None)
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


# The Gram route keeps K+2 matrices of (p+1)² float64: past ~3,000 features they outgrow the
# memory budget, and below n ≈ 2p they cost more to build than the data matrix does to use.
GRAM_MAX_FEATURES = 3000


def _likely_family(source, header, data, params: FitParams) -> str:
    """``--family auto``: binomial when the target's first block of rows looks binary (text,
    booleans, or at most two numbers), to be confirmed on the whole column when the data are
    loaded; else gaussian, without reading more than that block."""
    def one_pass(overrides, encoding):
        blocks = l1io.batches(source, header, [params.target], data, l1io.Scan(), overrides,
                              encoding)
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
    if params.measure == "mae":
        raise ConfigError("--measure mae is not supported yet for a numeric target (family "
                          "gaussian); the CV error is the mse")


# The engines that fit the binomial family (the data held in memory).
BINOMIAL_ENGINES = ("auto", "data")


# The engines that take observation weights in the gaussian family.
WEIGHTED_GAUSSIAN_ENGINES = ("auto", "gram", "dask", "reference")


def _engine(name: str, n_columns: int, n_rows: int | None, family: str = "gaussian",
            weighted: bool = False):
    """The engine to run. ``auto`` streams the Gram statistics unless the data is wide; the
    binomial family is fitted in memory. The data-matrix engine has no observation weights
    for the gaussian family: weighted fits take the Gram route."""
    if family == "binomial":
        if name not in BINOMIAL_ENGINES:
            raise ConfigError(f"--engine {name} cannot fit a logistic model (binary target, "
                              "family binomial): it needs the rows in memory; use --engine "
                              "auto or --engine data, or --family gaussian for a linear model")
        from l1select.engines import logistic

        return logistic
    if weighted and name not in WEIGHTED_GAUSSIAN_ENGINES:
        raise ConfigError(f"--engine {name} does not take --weights for a numeric target "
                          "(family gaussian); use --engine auto, gram, dask or reference")
    if weighted and name == "auto" and n_columns > GRAM_MAX_FEATURES:
        raise ConfigError(f"--weights with a numeric target and more than {GRAM_MAX_FEATURES} "
                          f"columns ({n_columns}) is not supported: the weighted Gram route "
                          "would outgrow memory and the data-matrix engine has no weights; "
                          "select fewer columns (--features/--exclude) or force it with "
                          "--engine gram")
    if name == "auto":
        wide = n_columns > GRAM_MAX_FEATURES or (n_rows is not None and n_rows < 2 * n_columns)
        # Weighted gaussian fits stay on the Gram, whose statistics take weights.
        name = "data" if wide and not weighted else "gram"
    if name == "reference":
        from l1select.engines import reference

        return reference
    if name == "data":
        from l1select.engines import data

        return data
    if name == "dask":
        from l1select.engines import dask

        return dask
    from l1select.engines import gram

    return gram


def _recipe_dict(recipe: Recipe, scaling) -> dict:
    """The preparation recipe a result carries, so that transform and predict need no refit."""
    return {
        "target": recipe.target,
        "columns": [{"name": c.name, "kind": c.kind, "levels": list(c.levels) or None}
                    for c in recipe.columns],
        "features": [
            {"name": f.name, "column": f.column, "kind": f.kind, "level": f.level,
             "impute": float(m), "center": float(m), "scale": float(s)}
            for f, m, s in zip(recipe.features, scaling.x_mean, scaling.x_scale, strict=True)
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

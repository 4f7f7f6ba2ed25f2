"""THE table of ``fit`` options: each option is declared once, in :data:`FIT_OPTIONS`.

Everything else is derived from a row of the table:

- the ``fit`` command's options (flag, metavar, help, default, ``--help`` panel), built in
  ``cli._fit_signature``;
- :class:`FitParams`, the frozen dataclass the library takes (one field per row);
- the YAML job-file schema (``config.Options``, a pydantic model made by
  ``pydantic.create_model`` from the rows), and with it ``l1select schema``;
- the ``params`` block of the result JSON (:meth:`FitParams.to_dict`, a contract: keys and
  shapes never change within ``schema_version`` 1);
- validation (:func:`problems`): structured ``(key, text)`` problems that the command line
  phrases with flag names (``--l1-ratio``) and the job-file loader with key paths and lines.

How to add an option
--------------------
Add one :class:`Option` row to :data:`FIT_OPTIONS` (name, kind, default, bounds or choices,
help, panel), for example::

    Option("min_level_count", "int", 1, "Levels seen fewer times are pooled.", INPUT, ge=1),

If its value should appear in the result's ``params``, leave ``to_params`` as it is (the value
under the option's name; rows are serialized in table order, so add it where its key should
appear); if it only says *where* something is computed (``threads``), set ``to_params=None``.
Rules that tie options together (``--scheduler`` needs ``--engine dask``) go in
:func:`_rules`. Then use ``params.NAME`` where it matters, test it, and add its doc line to
the docs/ page of its topic (and regenerate docs/cli.md). Nothing else spells the option again.

This module imports neither numpy nor typer: ``l1select --help`` stays fast, and the library
can use the table without the command line.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The --help panels of ``fit``, in the order they are shown.
INPUT, MODEL, CV, TRUST, OUTPUT, ENGINE = (
    "Input", "Model", "Cross-validation", "Selection trust", "Output", "Engine")
PANELS = (INPUT, MODEL, CV, TRUST, OUTPUT, ENGINE)

# Kinds of value: how an option is written on the command line and in a job file.
#   int, float, bool, str: one value;  choice: one of ``choices``;
#   floats: numbers, ``0.1,0.5`` on the command line, a number or a list in YAML
#           (``scalar_ok``) or a list only;
#   names:  column names or globs, a repeatable option, a name or a list in YAML;
#   factors: ``COL=W`` pairs, a repeatable option, a mapping ``{COL: W}`` in YAML.
#   label:  a value of the data (text on the command line; text, number or true/false in
#           YAML, kept as the text the data would hold: ``1``, ``true``, ``yes``).
KINDS = ("int", "float", "bool", "str", "choice", "floats", "names", "factors", "label")

_EXPECTS = {"int": "a whole number", "float": "a number", "bool": "true or false",
            "str": "text", "floats": "a list of numbers", "names": "a column name or a list",
            "factors": "a mapping of column: factor",
            "label": "a value of the target (text, a number or true/false)"}
_METAVARS = {"int": "N", "float": "X", "str": "TEXT", "floats": "X,Y,…", "names": "COL",
             "factors": "COL=W", "label": "VALUE"}


@dataclass(frozen=True)
class Option:
    """One option of ``fit``.

    ``name`` is the job-file key and, with ``-`` for ``_``, the flag (``--n-alphas``);
    ``attr`` the :class:`FitParams` field when it differs (``l1_ratio`` → ``l1_ratios``).
    ``help`` may name other options as ``{key}``: the command line shows ``--key``, the
    schema ``key``. Bounds (``ge``, ``gt``, ``le``, ``lt``) apply to the value, or to each
    item of a ``floats`` option; ``when`` limits them to some runs (``cv`` without a fold
    column). ``why`` is added to a bound's message. ``cli``/``config`` say whether the
    command line and job files have the option (``tol`` has neither). ``to_params``:
    ``"same"`` puts the value under ``name`` in the result's ``params``; a function
    ``(FitParams) -> value`` computes the entry; None leaves it out. ``plan``: shown in
    ``batch --dry-run``'s plan when given. ``flags``: a short flag (``-t``) next to the long
    one, or the whole declaration when it starts with ``--`` (``--standardize/
    --no-standardize``). ``metavar`` names the value in ``--help`` and ``expects`` says what
    a job file's value must be (both default by kind). ``scalar_ok``: a ``floats`` option
    takes one number in YAML too. ``hint``: an example the command line adds to a bad
    value's message. ``required``: a FitParams field without a default (``target``).
    """

    name: str
    kind: str
    default: Any
    help: str
    panel: str = MODEL
    attr: str | None = None
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    when: Callable[[Any], bool] | None = None
    why: str = ""
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    expects: str | None = None
    scalar_ok: bool = False
    hint: str = ""
    cli: bool = True
    config: bool = True
    to_params: Any = "same"
    plan: bool = False
    required: bool = False

    @property
    def field(self) -> str:
        return self.attr or self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def optional(self) -> bool:
        return self.default is None

    def describe_expected(self) -> str:
        """What the value must be, for a type error in a job file."""
        if self.expects:
            return self.expects
        if self.kind == "choice":
            return _one_of(self.choices)
        if self.kind == "floats" and self.scalar_ok:
            return "a number or a list of numbers"
        return _EXPECTS[self.kind]

    def bounds(self) -> dict[str, float]:
        """The bounds as JSON Schema keywords."""
        out: dict[str, float] = {}
        for mine, schema in (("ge", "minimum"), ("gt", "exclusiveMinimum"),
                             ("le", "maximum"), ("lt", "exclusiveMaximum")):
            value = getattr(self, mine)
            if value is not None:
                out[schema] = value
        return out

    def cli_metavar(self) -> str:
        if self.metavar is not None:
            return self.metavar
        if self.kind == "choice":
            return "|".join(self.choices)
        return "" if self.kind == "bool" else _METAVARS[self.kind]


def _one_of(choices: Iterable[str]) -> str:
    choices = list(choices)
    if len(choices) == 1:
        return choices[0]
    return "one of " + ", ".join(choices)


def _or(choices: Iterable[str]) -> str:
    choices = list(choices)
    return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]


# -- how composite entries of the result's ``params`` are made ------------------------------


def _cv_params(p: Any) -> Any:
    if p.alpha is not None:
        return None
    if p.fold_column:
        return {"fold_column": p.fold_column}
    out: dict[str, Any] = {"folds": p.cv}
    if p.group_column:
        out["group_column"] = p.group_column
    if p.cv_scheme != "kfold":
        out["scheme"] = p.cv_scheme
    if p.repeats != 1:
        out["repeats"] = p.repeats
    return out


def _grid_params(p: Any) -> Any:
    if p.alpha is not None:
        return {"fixed": p.alpha}
    if p.alphas is not None:
        return {"explicit": list(p.alphas)}
    return {"n_alphas": p.n_alphas, "eps": p.eps}


def _stability_params(p: Any) -> Any:
    if p.stability is None:
        return None
    return {"pairs": p.stability, "threshold": p.stability_threshold}


def _default_l1_ratio(values: Mapping[str, Any]) -> tuple[float, ...]:
    return (0.5,) if values.get("model") == "elasticnet" else (1.0,)


# The rows, in the order of the result's ``params`` (a contract: keep it). The --help shows
# them grouped by ``panel`` (PANELS order), in this order within a panel.
FIT_OPTIONS: tuple[Option, ...] = (
    Option("target", "str", None, "The column to explain: numbers, or two values (yes/no).",
           INPUT, flags=("-t",),
           metavar="COL", expects="a column name", required=True, to_params=None),
    Option("model", "choice", "lasso", "lasso, or elasticnet (L1 + L2).",
           choices=("lasso", "elasticnet"), plan=True),
    Option("l1_ratio", "floats", None, "ElasticNet mixing, one value or a list: 0.1,0.5,0.9 "
           "(default 0.5); a list is cross-validated.", attr="l1_ratios", gt=0, le=1,
           scalar_ok=True, hint="e.g. {l1_ratio} 0.1,0.5,0.9", plan=True,
           to_params=lambda p: list(p.l1_ratios)),
    Option("cv", "int", 5, "Number of CV folds.", CV, ge=2,
           when=lambda p: p.fold_column is None, to_params=_cv_params, plan=True),
    Option("fold_column", "str", None, "Use this column's labels as the CV folds (glmnet's "
           "foldid).", CV, metavar="COL", expects="a column name", to_params=None, plan=True),
    Option("group_column", "str", None, "Rows with the same label in this column stay in the "
           "same CV fold (scikit-learn's GroupKFold: repeated measures of a customer, "
           "patient, store).", CV, metavar="COL", expects="a column name", to_params=None,
           plan=True),
    Option("cv_scheme", "choice", "kfold", "kfold: shuffled folds; forward: the rows in "
           "file order are time order, fold k trains on blocks 1…k and tests on block k+1 "
           "(TimeSeriesSplit).", CV, choices=("kfold", "forward"), to_params=None, plan=True),
    Option("repeats", "int", 1, "Repeated K-fold: R fold assignments (repeat r uses seed + "
           "r), the CV curve averaged over all R·K folds.", CV, ge=1, le=100, to_params=None,
           plan=True),
    Option("seed", "int", 0, "Seed of the fold and test-split shuffles.", CV, ge=0,
           plan=True),
    Option("rule", "choice", "1se", "Pick alpha_1se (sparser) or alpha_min.", CV,
           choices=("1se", "min"), plan=True),
    Option("alphas", "floats", None, "An explicit alpha grid: 1,0.1,0.01.", gt=0,
           why="positive, finite numbers", hint="e.g. {alphas} 1,0.1,0.01", to_params=_grid_params,
           plan=True),
    Option("n_alphas", "int", 100, "Number of alphas on the grid.", ge=1, to_params=None,
           plan=True),
    Option("eps", "float", None, "Smallest alpha as a fraction of alpha_max (default 1e-3; "
           "1e-2 when there are fewer rows than features).", gt=0, lt=1, to_params=None,
           plan=True),
    Option("alpha", "float", None, "Fit this one alpha on all rows, without CV.", gt=0,
           to_params=None, plan=True),
    Option("standardize", "bool", True, "Standardize features per training fold.",
           flags=("--standardize/--no-standardize",)),
    Option("missing", "choice", "mean", "Missing feature values: impute the training mean, "
           "drop rows, or fail.", INPUT, choices=("mean", "drop", "error"), plan=True),
    Option("max_levels", "int", None, "One-hot encode text columns with at most N distinct "
           "values, however often they repeat (default: text whose values repeat, up to 1,000 "
           "levels).", INPUT, ge=1),
    Option("min_level_count", "int", 10, "Pool the levels of a categorical seen on fewer "
           "training rows into one feature column=(other).", INPUT, ge=1,
           why="1 pools nothing"),
    Option("group_categoricals", "bool", False, "The group lasso: the levels of a categorical "
           "enter or leave the model together (penalty weighted by √(number of levels)).",
           MODEL),
    Option("features", "names", (), "Only these columns as features (names or globs; "
           "repeatable).", INPUT, flags=("-f",), plan=True),
    Option("exclude", "names", (), "Never use these columns (names or globs; repeatable).",
           INPUT, flags=("-x",), plan=True),
    Option("test_size", "float", None, "Hold out this fraction of rows and report the test "
           "MSE and R².", CV, gt=0, lt=1, plan=True),
    Option("engine", "choice", "auto", "gram: streaming statistics; data: the data matrix in "
           "memory (wide data); reference: scikit-learn; dask: the statistics (a binary "
           "target: the rows) on a Dask cluster; auto: gram unless the data is wide.", ENGINE,
           choices=("auto", "gram", "data", "reference", "dask"), plan=True),
    Option("tol", "float", 1e-10, "Duality-gap tolerance of the solver.", ENGINE, cli=False,
           config=False),
    Option("max_iter", "int", 100_000, "Most epochs of coordinate descent per alpha.", ENGINE,
           cli=False, config=False),
    Option("stability", "int", None, "Stability selection: fit this many complementary pairs "
           "of half-samples (e.g. 50) and report each feature's selection probability.",
           TRUST, ge=1, why="pairs of half-samples", to_params=_stability_params),
    Option("stability_threshold", "float", 0.8, "Selection probability of the stable set, "
           "in (0.5, 1].", TRUST, gt=0.5, le=1,
           why="the bound on false selections needs more than 0.5", to_params=None),
    Option("corr_threshold", "float", 0.9, "List unselected features correlated at least "
           "this much (|r|) with a selected one as its alternates.", TRUST, gt=0, le=1),
    Option("force", "names", (), "Keep this column in the model, unpenalized (repeatable).",
           TRUST),
    Option("penalty_factor", "factors", (), "Weigh COL's penalty by W (glmnet's "
           "penalty.factor; 0 = {force}; repeatable).", TRUST, attr="penalty_factors", ge=0,
           to_params=lambda p: {name: w for name, w in p.penalty_factors}),
    Option("adaptive", "bool", False, "Adaptive lasso: penalty factors 1/|b| from an initial "
           "OLS (or ridge) fit on all training rows.", TRUST, flags=("--adaptive",)),
    Option("refit", "choice", None, "ols: also report least-squares coefficients on the "
           "selected features (post-selection estimates).", TRUST, choices=("ols",)),
    Option("family", "choice", "auto", "binomial: logistic regression of a two-valued target; "
           "gaussian: least squares; auto: binomial when the target has exactly two values.",
           choices=("auto", "gaussian", "binomial"), plan=True),
    Option("positive_class", "label", None, "The target value modelled as 1 (default: the "
           "second of the two in sorted order).", metavar="VALUE"),
    Option("measure", "choice", None, "CV measure: deviance (the binomial default), auc, "
           "class (misclassification), mse (the gaussian default) or mae (binomial: of the "
           "probability; gaussian: {engine} data or reference).", CV,
           choices=("deviance", "auc", "class", "mse", "mae")),
    Option("threshold", "float", 0.5, "Binary target: predict the positive class above this "
           "probability (class measure, test accuracy, predict).", CV, gt=0, lt=1),
    Option("weights", "str", None, "Column of non-negative observation weights (not a "
           "feature).", INPUT, metavar="COL", expects="a column name"),
    Option("scheduler", "str", None, "{engine} dask: the Dask scheduler's address, e.g. "
           "tcp://10.0.0.5:8786 (default: DASK_SCHEDULER_ADDRESS, else a local cluster).",
           ENGINE, metavar="ADDRESS", expects="an address such as tcp://host:8786",
           to_params=None),
    Option("threads", "int", None, "Threads for the numeric libraries (default: 1 during the "
           "pass).", ENGINE, ge=1, to_params=None),
)

OPTIONS: dict[str, Option] = {o.name: o for o in FIT_OPTIONS}
CONFIG_OPTIONS: tuple[Option, ...] = tuple(o for o in FIT_OPTIONS if o.config)
CLI_OPTIONS: tuple[Option, ...] = tuple(o for o in FIT_OPTIONS if o.cli)
PLAN_KEYS: tuple[str, ...] = tuple(o.name for o in FIT_OPTIONS if o.plan)
_DERIVED_DEFAULTS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "l1_ratio": _default_l1_ratio}


def cli_name(key: str) -> str:
    """``n_alphas`` → ``--n-alphas``."""
    return "--" + key.replace("_", "-")


def _key_name(key: str) -> str:
    return key


def phrase(text: str, name: Callable[[str], str] = cli_name) -> str:
    """``text`` with each ``{key}`` written by ``name`` (a flag, or a job-file key)."""
    return text.format_map(_Names(name))


class _Names(dict):
    def __init__(self, name: Callable[[str], str]):
        super().__init__()
        self.name = name

    def __missing__(self, key: str) -> str:
        return self.name(key)


def mentions(text: str) -> set[str]:
    """The option keys a text names as ``{key}``."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


# --------------------------------------------------------------------------------------------
# FitParams: one field per row
# --------------------------------------------------------------------------------------------

_ANNOTATIONS = {"int": "int", "float": "float", "bool": "bool", "str": "str", "choice": "str",
                "floats": "tuple[float, ...]", "names": "tuple[str, ...]",
                "factors": "tuple[tuple[str, float], ...]", "label": "str"}


def _field_default(option: Option) -> Any:
    if option.name in _DERIVED_DEFAULTS:
        return _DERIVED_DEFAULTS[option.name]({})
    return option.default


def _to_dict(self: Any) -> dict[str, Any]:
    """The result's ``params`` block (a contract: the keys and shapes of schema_version 1)."""
    out: dict[str, Any] = {}
    for option in FIT_OPTIONS:
        if option.to_params is None:
            continue
        if option.to_params == "same":
            value = getattr(self, option.field)
            out[option.name] = list(value) if isinstance(value, tuple) else value
        else:
            out[option.name] = option.to_params(self)
    return out


def _make_fit_params() -> type:
    fields: list[tuple[str, Any, Any]] = []
    for option in FIT_OPTIONS:
        annotation = _ANNOTATIONS[option.kind] + (" | None" if option.optional else "")
        if option.required:
            fields.append((option.field, annotation))  # type: ignore[arg-type]
        else:
            fields.append((option.field, annotation, dataclasses.field(
                default=_field_default(option))))
    cls = dataclasses.make_dataclass(
        "FitParams", fields, frozen=True, namespace={"to_dict": _to_dict})
    cls.__module__ = "l1select.types"
    cls.__doc__ = ("The validated options of one ``fit`` run: one field per row of "
                   "``l1select.options.FIT_OPTIONS``.")
    return cls


FitParams = _make_fit_params()


def from_values(values: Mapping[str, Any]) -> Any:
    """:class:`FitParams` from option values under their keys, as a job file holds them
    (lists, mappings) or the command line parsed them. An absent or null key takes its
    default. Values are converted, not checked: :func:`problems` checks them."""
    kwargs: dict[str, Any] = {}
    for option in FIT_OPTIONS:
        value = values.get(option.name)
        if value is None:
            if option.name in _DERIVED_DEFAULTS:
                kwargs[option.field] = _DERIVED_DEFAULTS[option.name](values)
            elif option.required:
                kwargs[option.field] = None
            continue
        kwargs[option.field] = _convert(option, value)
    return FitParams(**kwargs)


def _convert(option: Option, value: Any) -> Any:
    if option.kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if option.kind == "floats":
        items = [value] if isinstance(value, int | float) else value
        return tuple(float(v) for v in items)
    if option.kind == "names":
        return (value,) if isinstance(value, str) else tuple(value)
    if option.kind == "factors":
        items = value.items() if isinstance(value, Mapping) else value
        return tuple((str(k), float(w)) for k, w in items)
    if option.kind == "label":
        return label_text(value)
    return value


def label_text(value: Any) -> str:
    """A value of the data written in YAML (text, number or boolean) as the command line
    gives it: ``true``, ``1``, ``1.5``, ``yes``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_values(params: Any) -> dict[str, Any]:
    """Every job-file key of ``params`` with its value, in the job file's form."""
    out: dict[str, Any] = {}
    for option in CONFIG_OPTIONS:
        value = getattr(params, option.field)
        if option.kind == "factors":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[option.name] = value
    return out


# --------------------------------------------------------------------------------------------
# Validation: structured problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A value that cannot be used: the ``key`` it is about and a ``text`` in which other
    options appear as ``{key}`` (see :func:`phrase`). ``hint`` is an example for the command
    line (``e.g. --alphas 1,0.1``). ``key`` None: about the run as a whole."""

    key: str | None
    text: str
    hint: str = ""
    at: str | None = None

    @property
    def where(self) -> str | None:
        """The key whose place in a job file the problem is reported at."""
        return self.key or self.at

    @property
    def mentions(self) -> set[str]:
        return mentions(self.text) | ({self.key} if self.key else set())

    def for_cli(self) -> str:
        """``--cv must be at least 2, not 1``."""
        head = f"{cli_name(self.key)} " if self.key else ""
        tail = f", {self.hint}" if self.hint else ""
        return phrase(head + self.text + tail)

    def for_config(self) -> str:
        """The text in job-file keys, without the key itself (the loader gives its path)."""
        return phrase(self.text, _key_name)


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _bound_text(option: Option, value: Any) -> str | None:
    """Why ``value`` is out of ``option``'s bounds, or None when it is within them."""
    number = float(value)
    ok = math.isfinite(number) or option.kind == "int"
    ok = ok and (option.ge is None or number >= option.ge)
    ok = ok and (option.gt is None or number > option.gt)
    ok = ok and (option.le is None or number <= option.le)
    ok = ok and (option.lt is None or number < option.lt)
    if ok:
        return None
    low, high = option.ge if option.ge is not None else option.gt, (
        option.le if option.le is not None else option.lt)
    if option.why and option.ge is None and high is None:
        return option.why
    if high is None and option.ge is not None:
        text = f"at least {_num(option.ge)}"
    elif high is None:
        text = "a positive number" if option.gt == 0 else f"more than {_num(option.gt)}"
    elif option.gt is not None and option.lt is not None:
        text = f"between {_num(low)} and {_num(high)}"
    else:
        text = (("[" if option.ge is not None else "(") + f"{_num(low)}, {_num(high)}"
                + ("]" if option.le is not None else ")"))
        text = f"in {text}"
    if option.why:
        text += f" ({option.why})"
    return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def problems(params: Any) -> list[Problem]:
    """Every problem with ``params``, each about one option (or the run), in table order."""
    found: list[Problem] = []
    for option in FIT_OPTIONS:
        value = getattr(params, option.field)
        if value is None or (option.when is not None and not option.when(params)):
            continue
        if option.kind == "choice" and value not in option.choices:
            found.append(Problem(option.name, f"must be {_or(option.choices)}, not "
                                              f"{_show(value)}"))
        elif option.kind in ("int", "float") and not isinstance(value, bool):
            why = _bound_text(option, value)
            if why:
                found.append(Problem(option.name, f"must be {why}, not {_show(value)}"))
        elif option.kind == "floats":
            bad = not value or any(_bound_text(option, v) for v in value)
            if bad:
                within = option.why or _bound_text(option, math.nan)
                found.append(Problem(option.name, f"values must be {within}", option.hint))
        elif option.kind == "factors":
            bad = [f"{n}={w}" for n, w in value
                   if not (math.isfinite(w) and w >= (option.ge or 0))]
            if bad:
                found.append(Problem(option.name, "weights must be finite and at least 0, "
                                                  f"not {', '.join(bad)}"))
    found.extend(_rules(params))
    return found


def _rules(p: Any) -> Iterable[Problem]:
    """The rules that tie options together."""
    if p.model == "lasso" and tuple(p.l1_ratios) != (1.0,):
        yield Problem("l1_ratio", "applies to {model} elasticnet; lasso has l1_ratio 1")
    if p.alpha is not None and p.alphas is not None:
        yield Problem(None, "give either {alpha} (one fit, no CV) or {alphas} (a CV grid), "
                            "not both", at="alpha")
    if p.alpha is not None and len(p.l1_ratios) > 1:
        yield Problem("alpha", "fits one model: give a single {l1_ratio}")
    both = sorted({n for n, _ in p.penalty_factors} & set(p.force))
    if both:
        yield Problem("force", f"and {{penalty_factor}} both name {', '.join(both)}: give "
                               "one of them")
    if p.engine == "reference" and (p.force or p.penalty_factors or p.adaptive):
        given = [k for k, v in (("force", p.force), ("penalty_factor", p.penalty_factors),
                                ("adaptive", p.adaptive)) if v]
        yield Problem(None, "{force}, {penalty_factor} and {adaptive} need penalty factors, "
                            "which the reference engine (scikit-learn) does not have; use "
                            "{engine} gram or {engine} data", at=given[0])
    if p.family == "gaussian" and p.positive_class is not None:
        yield Problem("positive_class", "applies to a binary target ({family} binomial or "
                                        "auto); drop it with {family} gaussian")
    yield from _fold_rules(p)
    if p.scheduler is not None and p.engine != "dask":
        yield Problem("scheduler", "applies to {engine} dask; add {engine} dask")
    if p.family == "gaussian" and p.measure in ("deviance", "auc", "class"):
        yield Problem("measure", f"{p.measure} is for a binary target; with {{family}} "
                                 "gaussian use mse or mae")
    if p.group_categoricals and p.engine == "data":
        yield Problem("group_categoricals", "runs on the Gram statistics; {engine} data cannot "
                                            "solve it: use {engine} gram (or auto, dask or "
                                            "reference)")
    if p.group_categoricals and (p.force or p.penalty_factors or p.adaptive):
        yield Problem("group_categoricals", "weighs each column by √(its size) and takes no "
                                            "{force}, {penalty_factor} or {adaptive}; give one "
                                            "or the other")


def _fold_rules(p: Any) -> Iterable[Problem]:
    """How the CV folds are made: one way at a time, and only with CV."""
    if p.fold_column is not None and p.group_column is not None:
        yield Problem(None, "give either {fold_column} (the folds themselves) or "
                            "{group_column} (groups dealt to folds), not both", at="group_column")
    cv_only = [k for k, v in (("group_column", p.group_column is not None),
                              ("cv_scheme", p.cv_scheme != "kfold"), ("repeats", p.repeats != 1))
               if v]
    if p.alpha is not None and cv_only:
        yield Problem(cv_only[0], "shapes the CV folds, and {alpha} fits one model without "
                                  "CV: leave out one of them")
        return
    if p.cv_scheme == "forward" and (p.fold_column or p.group_column):
        yield Problem("cv_scheme", "forward cuts the rows into blocks in file order; it takes "
                                   "no {fold_column} or {group_column}")
    if p.repeats != 1 and p.fold_column is not None:
        yield Problem("repeats", "draws new folds; {fold_column} fixes them: leave out one")
    if p.repeats != 1 and p.cv_scheme == "forward":
        yield Problem("repeats", "draws new folds; {cv_scheme} forward has only one way to "
                                 "cut the rows: leave out one")


# --------------------------------------------------------------------------------------------
# The command line: what cli.py builds ``fit``'s options from (typer is imported there)
# --------------------------------------------------------------------------------------------


def cli_help(option: Option) -> str:
    return phrase(option.help)


def config_help(option: Option) -> str:
    """The description in the job-file schema: the help in key names, and the default."""
    text = phrase(option.help, _key_name)
    text = text.replace("; repeatable)", ")").replace(" (repeatable)", "")
    default = option.default
    if default not in (None, ()) and "default" not in text:
        shown = str(default).lower() if isinstance(default, bool) else default
        text = f"{text.rstrip('.')} (default {shown})."
    return text


def parse_floats(text: str | None) -> list[float] | None:
    """A comma-separated list of numbers, such as ``0.1,0.5,0.9``; ValueError says why not."""
    if text is None:
        return None
    try:
        out = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"'{text}' is not a comma-separated list of numbers") from None
    if not out:
        raise ValueError("give at least one number")
    return out


def parse_factors(texts: list[str] | None) -> dict[str, float] | None:
    """``COL=W`` pairs (the last ``=`` splits, so a column name may hold one)."""
    if not texts:
        return None
    out: dict[str, float] = {}
    for text in texts:
        name, sep, weight = text.rpartition("=")
        try:
            if not (sep and name):
                raise ValueError
            out[name] = float(weight)
        except ValueError:
            raise ValueError(f"'{text}' is not COL=WEIGHT, e.g. sqft=0.5") from None
    return out

"""The option table (l1select/options.py): what is derived from it agrees with it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from l1select.cli import app
from l1select.config import Options, json_schema
from l1select.options import (
    CLI_OPTIONS,
    CONFIG_OPTIONS,
    FIT_OPTIONS,
    KINDS,
    OPTIONS,
    PANELS,
    FitParams,
    Problem,
    from_values,
    problems,
    to_values,
)
from l1select.pipeline import validate
from l1select.types import FitParams as TypesFitParams


def test_rows_are_well_formed():
    assert len(OPTIONS) == len(FIT_OPTIONS), "two rows with one name"
    for option in FIT_OPTIONS:
        assert option.kind in KINDS, option.name
        assert option.panel in PANELS, option.name
        assert (option.kind == "choice") == bool(option.choices), option.name
        assert option.help.endswith("."), option.name


def test_fit_params_has_one_field_per_row_with_its_default():
    assert TypesFitParams is FitParams
    fields = {f.name: f for f in dataclasses.fields(FitParams)}
    assert list(fields) == [o.field for o in FIT_OPTIONS]
    params = FitParams(target="y")
    for option in FIT_OPTIONS:
        if option.name != "l1_ratio" and not option.required:
            assert getattr(params, option.field) == option.default, option.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.cv = 3  # type: ignore[misc]


def test_the_fit_command_has_every_cli_row_in_its_panel():
    import typer.main

    command = typer.main.get_command(app).commands["fit"]  # type: ignore[attr-defined]
    by_name = {p.name: p for p in command.params}
    for option in CLI_OPTIONS:
        param = by_name[option.name]
        assert option.flag in param.opts + param.secondary_opts or option.flags[0].startswith(
            option.flag), option.name
        assert param.rich_help_panel == option.panel, option.name
    assert not {o.name for o in FIT_OPTIONS if not o.cli} & set(by_name)


def test_the_job_schema_has_every_config_row():
    keys = set(Options.model_fields) - {"source"}
    assert keys == {o.name for o in CONFIG_OPTIONS}
    props = json_schema("job")["properties"]
    for option in CONFIG_OPTIONS:
        assert props[option.name]["description"], option.name


def test_values_round_trip_through_fit_params():
    params = FitParams(target="y", model="elasticnet", l1_ratios=(0.2, 0.8), cv=3,
                       alphas=(1.0, 0.1), force=("a",), penalty_factors=(("b", 2.0),),
                       exclude=("id",), stability=5)
    assert from_values(to_values(params)) == params


def test_default_l1_ratio_follows_the_model():
    assert from_values({"target": "y"}).l1_ratios == (1.0,)
    assert from_values({"target": "y", "model": "elasticnet"}).l1_ratios == (0.5,)
    assert from_values({"target": "y", "l1_ratio": 0.3}).l1_ratios == (0.3,)


def test_params_block_keys_are_the_contract():
    # The result JSON's `params` keys (schema_version 1), in their order; the golden files
    # pin their values.
    assert list(FitParams(target="y").to_dict()) == [
        "model", "l1_ratio", "cv", "seed", "rule", "alphas", "standardize", "missing",
        "max_levels", "min_level_count", "group_categoricals", "features", "exclude",
        "test_size", "engine", "tol", "max_iter", "stability", "corr_threshold", "force",
        "penalty_factor", "adaptive", "refit", "family", "positive_class", "measure",
        "threshold", "weights"]
    fixed = FitParams(target="y", alpha=0.5, stability=3, fold_column="f").to_dict()
    assert fixed["cv"] is None and fixed["alphas"] == {"fixed": 0.5}
    assert fixed["stability"] == {"pairs": 3, "threshold": 0.8}
    grid = FitParams(target="y", alphas=(1.0, 0.1), fold_column="f").to_dict()
    assert grid["cv"] == {"fold_column": "f"} and grid["alphas"] == {"explicit": [1.0, 0.1]}


def test_problems_are_structured_and_phrased_for_each_reader():
    found = problems(FitParams(target="y", cv=1, engine="reference", adaptive=True,
                               scheduler="tcp://h:1"))
    assert [(p.key, p.where) for p in found] == [
        ("cv", "cv"), (None, "adaptive"), ("scheduler", "scheduler")]
    cv, reference, scheduler = found
    assert cv.for_cli() == "--cv must be at least 2, not 1"
    assert cv.for_config() == "must be at least 2, not 1"
    assert scheduler.for_cli() == "--scheduler applies to --engine dask; add --engine dask"
    assert scheduler.for_config() == "applies to engine dask; add engine dask"
    assert reference.mentions == {"force", "penalty_factor", "adaptive", "engine"}


def test_a_hint_is_for_the_command_line_only():
    [problem] = problems(FitParams(target="y", model="elasticnet", l1_ratios=(0.0,)))
    assert problem == Problem("l1_ratio", "values must be in (0, 1]",
                              "e.g. {l1_ratio} 0.1,0.5,0.9")
    assert problem.for_cli().endswith(", e.g. --l1-ratio 0.1,0.5,0.9")
    assert "e.g." not in problem.for_config()


@pytest.mark.parametrize(("changes", "needle"), [
    ({"eps": float("nan")}, "--eps must be between 0 and 1"),
    ({"alpha": float("inf")}, "--alpha must be a positive number"),
    ({"alphas": ()}, "--alphas values must be positive, finite numbers"),
    ({"penalty_factors": (("a", float("nan")),)}, "not a=nan"),
    ({"threads": 0}, "--threads must be at least 1, not 0"),
    ({"rule": "max"}, "--rule must be 1se or min, not 'max'"),
    ({"refit": "ridge"}, "--refit must be ols, not 'ridge'"),
])
def test_validate_phrases_with_flags(changes, needle):
    from l1select.errors import ConfigError

    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        validate(dataclasses.replace(FitParams(target="y"), **changes))


def test_the_table_imports_neither_numpy_nor_typer():
    code = ("import sys, l1select.options; "
            "print(sorted({'numpy', 'typer', 'pydantic'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

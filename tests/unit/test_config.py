"""Job files (l1select/config.py): layout, types, values, lines, ${env:…}, paths, the schema."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from l1select.config import (
    dump_job,
    json_schema,
    load_batch,
    load_job,
)
from l1select.errors import ConfigError
from l1select.options import CONFIG_OPTIONS, OPTIONS
from l1select.pipeline import validate
from l1select.types import FitParams


def _write(tmp_path: Path, text: str, name: str = "batch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _problems(path: Path, env: dict | None = None, single: bool = False) -> list[str]:
    """The problem lines of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as info:
        if single:
            load_job(path, env=env or {})
        else:
            load_batch(path, env=env or {})
    lines = str(info.value).splitlines()
    if len(lines) == 1:  # one problem: "file: problem"
        return [lines[0].split(": ", 1)[1]]
    assert lines[0].endswith("nothing was run:"), lines[0]
    return [line.strip() for line in lines[1:]]


# --------------------------------------------------------------------------------------------
# A valid file: defaults, overrides, numbers, paths
# --------------------------------------------------------------------------------------------


def test_jobs_override_defaults(tmp_path):
    path = _write(tmp_path, """
        defaults:
          target: y
          cv: 3
          model: elasticnet
          l1_ratio: [0.2, 0.8]
          alpha: 0.5
        jobs:
          - name: plain
            source: a.csv
            alpha: null          # back to CV
          - name: own
            source: b.csv
            cv: 4
            model: lasso
            l1_ratio: null       # lasso has l1_ratio 1
            alpha: 0.5
            target: z
        """)
    plain, own = load_batch(path, env={}).jobs
    assert plain.params == FitParams(target="y", cv=3, model="elasticnet",
                                     l1_ratios=(0.2, 0.8))
    assert own.params == FitParams(target="z", cv=4, model="lasso", l1_ratios=(1.0,),
                                   alpha=0.5)
    assert "cv" in own.given and "seed" not in own.given


def test_elasticnet_without_l1_ratio_gets_fits_default(tmp_path):
    path = _write(tmp_path, """
        jobs:
          - {name: a, source: a.csv, target: y, model: elasticnet}
        """)
    assert load_batch(path, env={}).jobs[0].params.l1_ratios == (0.5,)


def test_scientific_notation_is_a_number(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as text; a job file reads it as YAML 1.2 does.
    path = _write(tmp_path, """
        defaults: {target: y, source: a.csv}
        jobs:
          - {name: a, eps: 1e-3, alphas: [1E1, 5e-2, 2.5e-3, 1.0e-4]}
          - {name: b, alpha: .5e-1, test_size: 2e-1}
        """)
    a, b = load_batch(path, env={}).jobs
    assert a.params.eps == 0.001 and isinstance(a.params.eps, float)
    assert a.params.alphas == (10.0, 0.05, 0.0025, 0.0001)
    assert b.params.alpha == 0.05 and b.params.test_size == 0.2


def test_integers_become_floats_where_fit_has_floats(tmp_path):
    # `alpha: 1` must give the same JSON (params.alphas.fixed 1.0) as `fit --alpha 1`.
    path = _write(tmp_path, "jobs: [{name: a, source: a.csv, target: y, alpha: 1}]\n")
    alpha = load_batch(path, env={}).jobs[0].params.alpha
    assert alpha == 1.0 and isinstance(alpha, float)


def test_relative_sources_are_relative_to_the_yaml_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    _write(tmp_path / "conf", """
        defaults: {target: y}
        jobs:
          - {name: rel, source: ../data/a.csv}
          - {name: here, source: b.parquet}
          - {name: abs, source: /srv/data/c.csv}
        """)
    monkeypatch.chdir(tmp_path / "conf")  # the working directory must not matter
    rel, here, absolute = load_batch("batch.yaml", env={}).jobs
    assert rel.source == str(tmp_path / "data" / "a.csv")
    assert here.source == str(tmp_path / "conf" / "b.parquet")
    assert absolute.source == "/srv/data/c.csv"


def test_env_substitution_with_and_without_default(tmp_path):
    path = _write(tmp_path, """
        defaults:
          source: ${env:DATA_DIR}/houses.csv
          target: ${env:TARGET,price}
          cv: ${env:FOLDS,5}
          seed: ${env:SEED,0}
          eps: ${env:EPS,1e-3}
          standardize: ${env:STD,true}
        jobs:
          - name: a
        """)
    job = load_batch(path, env={"DATA_DIR": "/data", "FOLDS": "7"}).jobs[0]
    assert job.source == "/data/houses.csv"
    assert job.params.target == "price"  # the default
    assert job.params.cv == 7 and isinstance(job.params.cv, int)  # a number, from the env
    assert job.params.seed == 0 and job.params.eps == 0.001 and job.params.standardize is True


def test_env_relative_path_is_relative_to_the_file(tmp_path):
    path = _write(tmp_path, "jobs: [{name: a, source: '${env:D,data}/a.csv', target: y}]\n")
    assert load_batch(path, env={}).jobs[0].source == str(tmp_path / "data" / "a.csv")


def test_unset_env_without_default_is_reported_with_its_line(tmp_path):
    path = _write(tmp_path, """
        jobs:
          - name: a
            target: y
            source: ${env:NOT_SET_ANYWHERE}
        """)
    (problem,) = _problems(path)
    assert problem.startswith("jobs[0].source (line 4): environment variable NOT_SET_ANYWHERE "
                              "is not set")
    assert "${env:NOT_SET_ANYWHERE,DEFAULT}" in problem


def test_merge_keys_and_anchors(tmp_path):
    path = _write(tmp_path, """
        common: &common
          target: y
          cv: 3
        jobs:
          - <<: *common
            name: a
            source: a.csv
        """)
    # `common` is not a key of the layout: the anchor must live in defaults or a job.
    (problem,) = _problems(path)
    assert problem.startswith("common (line 1): unknown key")
    path = _write(tmp_path, """
        defaults: &common
          target: y
        jobs:
          - <<: *common
            name: a
            source: a.csv
            cv: 3
        """)
    assert load_batch(path, env={}).jobs[0].params.cv == 3


# --------------------------------------------------------------------------------------------
# Problems: all at once, each with its path and line
# --------------------------------------------------------------------------------------------


def test_every_problem_at_once_with_paths_and_lines(tmp_path):
    path = _write(tmp_path, """
        defaults:
          target: price
          tagret: price
        jobs:
          - name: good
            source: a.csv
          - name: folds
            source: a.csv
            cv: 1
          - name: typed
            source: a.csv
            cv: five
            standardize: 1
            model: lass
            l1_ratio: [0.5, x]
          - name: eps
            source: a.csv
            eps: 2
            n-alphas: 10
            alpha: 0.1
            alphas: [1, 0.1]
        """)
    assert _problems(path) == [
        "defaults.tagret (line 3): unknown key; did you mean 'target'?",
        "jobs[1].cv (line 9): must be at least 2, not 1",
        "jobs[2].cv (line 12): must be a whole number, not 'five'",
        "jobs[2].standardize (line 13): must be true or false, not 1",
        "jobs[2].model (line 14): must be one of lasso, elasticnet, not 'lass'; "
        "did you mean 'lasso'?",
        "jobs[2].l1_ratio[1] (line 15): must be a number, not 'x'",
        "jobs[3].eps (line 18): must be between 0 and 1, not 2.0",
        "jobs[3].n-alphas (line 19): unknown key; did you mean 'n_alphas'? (keys use "
        "underscores)",
        "jobs[3].alpha (line 20): give either alpha (one fit, no CV) or alphas (a CV grid), "
        "not both",
    ]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("cv: '5'", "must be a whole number, not '5'"),  # quoted: text, even if it looks numeric
        ("cv: true", "must be a whole number, not true"),
        ("cv: 2.5", "must be a whole number, not 2.5"),
        ("eps: yes", "must be a number, not true"),
        ("fold_column: 2020", "must be a column name, not 2020 (quote it: '2020')"),
        ("alphas: 0.1", "must be a list of numbers, not 0.1"),
        ("rule: max", "must be one of 1se, min, not 'max'"),
        ("missing: zero", "must be one of mean, drop, error, not 'zero'; did you mean "
                          "'error'?"),
        ("seed: -1", "must be at least 0, not -1"),
        ("threads: 0", "must be at least 1, not 0"),
    ],
)
def test_wrong_types_are_reported(tmp_path, line, expected):
    key = line.split(":")[0]
    path = _write(tmp_path, f"""
        jobs:
          - name: a
            source: a.csv
            target: y
            {line}
        """)
    assert _problems(path) == [f"jobs[0].{key} (line 5): {expected}"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("n_alphas: 0", "must be at least 1, not 0"),
        ("eps: 0", "must be between 0 and 1, not 0.0"),
        ("alpha: -1", "must be a positive number, not -1.0"),
        ("test_size: 1.5", "must be between 0 and 1, not 1.5"),
        ("max_levels: 0", "must be at least 1, not 0"),
        ("l1_ratio: 0.5", "applies to model elasticnet; lasso has l1_ratio 1"),
        ("alphas: [1, -0.1]", "values must be positive, finite numbers"),
        ("alphas: []", "must not be empty"),
    ],
)
def test_impossible_values_are_reported(tmp_path, line, expected):
    key = line.split(":")[0]
    path = _write(tmp_path, f"""
        jobs:
          - name: a
            source: a.csv
            target: y
            {line}
        """)
    assert _problems(path) == [f"jobs[0].{key} (line 5): {expected}"]


def test_a_bad_default_is_reported_once_at_the_default(tmp_path):
    path = _write(tmp_path, """
        defaults:
          target: y
          l1_ratio: 0.5
          model: elasticnet
        jobs:
          - {name: a, source: a.csv}
          - {name: b, source: a.csv, model: lasso}
          - {name: c, source: a.csv, model: lasso}
        """)
    assert _problems(path) == [
        "defaults.l1_ratio (line 3): applies to model elasticnet; lasso has l1_ratio 1 "
        "(in job 'b', 'c'; the job can override it)"]


def test_missing_name_source_and_target(tmp_path):
    path = _write(tmp_path, """
        jobs:
          - source: a.csv
            target: y
          - name: nosource
            target: y
          - name: notarget
            source: a.csv
        """)
    assert _problems(path) == [
        "jobs[0].name (line 2): missing (every job needs a name)",
        "jobs[1] (line 4): no source: give 'source:' in the job or in defaults",
        "jobs[2] (line 6): no target: give 'target:' in the job or in defaults",
    ]


def test_names_are_unique_folder_names(tmp_path):
    path = _write(tmp_path, """
        defaults: {source: a.csv, target: y}
        jobs:
          - name: a
          - name: A
          - name: ../up
          - name: summary.json
        """)
    problems = _problems(path)
    assert problems[0] == "jobs[1].name (line 4): duplicate job name 'A' (also jobs[0])"
    assert problems[1].startswith("jobs[2].name (line 5): '../up' is not a usable folder name")
    assert problems[2].startswith("jobs[3].name (line 6): 'summary.json' is reserved")


def test_duplicate_keys_are_reported(tmp_path):
    path = _write(tmp_path, """
        jobs:
          - name: a
            source: a.csv
            target: y
            cv: 3
            cv: 4
        """)
    assert _problems(path) == ["jobs[0].cv (line 6): duplicate key (first given on line 5)"]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "is empty"),
        ("- a\n- b\n", "is not a mapping"),
        ("defaults: {target: y}\n", "jobs (line 1): missing (required)"),
        ("jobs: []\n", "jobs (line 1): must not be empty"),
        ("jobs: {name: a}\n", "jobs (line 1): must be a list of jobs"),
        ("jobs:\n  - 42\n", "jobs[0] (line 2): must be a mapping of options"),
        ("jobs: [a, b\n", "is not valid YAML (line 2, column 1)"),
    ],
)
def test_bad_layouts(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_batch(path, env={})
    assert needle in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: no such file"):
        load_batch(tmp_path / "nope.yaml")


def test_stdin_is_not_a_batch_source(tmp_path):
    path = _write(tmp_path, "jobs: [{name: a, source: '-', target: y}]\n")
    assert _problems(path) == ["jobs[0].source (line 1): '-' (stdin) cannot be a batch source; "
                               "give a file"]


# --------------------------------------------------------------------------------------------
# fit --config: one job, command-line overrides
# --------------------------------------------------------------------------------------------


def test_single_job_file_with_overrides(tmp_path, monkeypatch):
    path = _write(tmp_path, "source: a.csv\ntarget: y\ncv: 3\nrule: min\n", "job.yaml")
    monkeypatch.chdir(tmp_path.parent)
    job = load_job(path, {"cv": 4, "source": "other.csv"}, env={})
    assert job.name == "job"
    assert job.params == FitParams(target="y", cv=4, rule="min")
    assert job.source == str(tmp_path.parent / "other.csv")  # the command line's cwd


def test_overrides_are_checked_too(tmp_path):
    path = _write(tmp_path, "source: a.csv\ntarget: y\n", "job.yaml")
    with pytest.raises(ConfigError, match=r"--cv \(command line\): must be at least 2, not 1"):
        load_job(path, {"cv": 1}, env={})


def test_single_job_file_problems(tmp_path):
    path = _write(tmp_path, "source: a.csv\ntarget: y\nfeatures: [a, 1]\nnalphas: 3\n",
                  "job.yaml")
    assert _problems(path, single=True) == [
        "features[1] (line 3): must be text, not 1 (quote it: '1')",
        "nalphas (line 4): unknown key; did you mean 'n_alphas' or 'alphas' or 'alpha'?",
    ]


def test_batch_file_with_one_job_for_fit_config(tmp_path):
    path = _write(tmp_path, "defaults: {target: y}\njobs: [{name: a, source: a.csv}]\n")
    assert load_job(path, env={}).name == "a"
    path = _write(tmp_path, "defaults: {target: y}\njobs: [{name: a, source: a.csv}, "
                            "{name: b, source: b.csv}]\n")
    with pytest.raises(ConfigError, match="has 2 jobs; fit --config runs one job"):
        load_job(path, env={})


def test_resolved_config_reads_back_to_the_same_job(tmp_path):
    path = _write(tmp_path, """
        defaults: {target: y, cv: 4, eps: 1e-4}
        jobs:
          - {name: a, source: a.csv, model: elasticnet, l1_ratio: [0.3, 0.7], exclude: id,
             test_size: 0.25, missing: drop}
        """)
    job = load_batch(path, env={}).jobs[0]
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_job(job, path))
    again = load_job(dumped, env={})
    assert (again.name, again.source, again.params) == (job.name, job.source, job.params)


# --------------------------------------------------------------------------------------------
# The JSON Schema agrees with pipeline.validate and with the command's choices
# --------------------------------------------------------------------------------------------


def _ok(**changes) -> bool:
    try:
        validate(replace(FitParams(target="y"), **changes))
    except ConfigError:
        return False
    return True


_BOUNDED = sorted(o.name for o in CONFIG_OPTIONS if o.bounds() and o.kind in ("int", "float"))


@pytest.mark.parametrize("key", _BOUNDED)
def test_schema_bounds_agree_with_validate(key):
    option = OPTIONS[key]
    schema = json_schema("job")["properties"][key]
    assert {k: schema[k] for k in option.bounds()} == option.bounds()
    tiny = 1e-9
    field = option.field
    for kind, bound in option.bounds().items():
        value = float(bound) if option.kind == "float" else int(bound)
        step = tiny if isinstance(value, float) else 1
        if kind == "minimum":
            assert _ok(**{field: value}) and not _ok(**{field: value - step})
        elif kind == "exclusiveMinimum":
            assert not _ok(**{field: value}) and _ok(**{field: value + step})
        elif kind == "exclusiveMaximum":
            assert not _ok(**{field: value}) and _ok(**{field: value - step})
        elif kind == "maximum":
            assert _ok(**{field: value}) and not _ok(**{field: value + step})
        else:
            pytest.fail(f"unknown bound {kind}")


def test_schema_ratio_bounds_agree_with_validate():
    assert _ok(model="elasticnet", l1_ratios=(1.0,))
    assert not _ok(model="elasticnet", l1_ratios=(0.0,))
    assert not _ok(model="elasticnet", l1_ratios=(1.0 + 1e-9,))


@pytest.mark.parametrize("key", [o.name for o in CONFIG_OPTIONS if o.kind == "choice"])
def test_schema_choices_are_the_tables_choices(key):
    option = OPTIONS[key]
    enums = [alt.get("enum") or [alt.get("const")]
             for alt in json_schema("job")["properties"][key]["anyOf"]
             if "enum" in alt or "const" in alt]
    assert enums == [list(option.choices)]
    for choice in option.choices:
        assert _ok(**{option.field: choice})
    assert not _ok(**{option.field: "nonsense"})


def test_schema_is_a_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    for kind in ("batch", "job"):
        schema = json_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(json_schema("batch"))
    assert not list(validator.iter_errors({"jobs": [{"name": "a", "cv": "${env:K,3}"}]}))
    errors = {e.message for e in validator.iter_errors(
        {"jobs": [{"name": "a", "cv": 1, "tagret": "y"}]})}
    assert any("tagret" in e for e in errors) and any("minimum of 2" in e for e in errors)

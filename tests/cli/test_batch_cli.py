"""``l1select batch``, ``fit --config`` and ``l1select schema`` end to end, through CliRunner."""

from __future__ import annotations

import json
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from cli_helpers import (
    HOUSING_CSV,
    REPO,
    assert_error,
    invoke,
    ok,
    sparse_columns,
    strict_loads,
    write_csv,
)
from rich.console import Console

from l1select import cli as cli_module
from l1select import files as files_module

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
JOB_FILES = ("config.yaml", "job.log", "result.json", "coefficients.csv", "report.html")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two small CSV files (y = 3·x0 − 2·x2 + noise) in tmp_path/data."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(folder / "a.csv", sparse_columns(seed=0))
    write_csv(folder / "b.csv", sparse_columns(n=150, seed=1))
    return folder


def _batch_file(tmp_path: Path, text: str, name: str = "batch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


THREE_JOBS = """
    defaults:
      target: y
      cv: 3
      n_alphas: 20
    jobs:
      - name: first
        source: data/a.csv
      - name: broken
        source: data/missing.csv
      - name: third
        source: data/b.csv
        rule: min
    """


def _summary(out: Path) -> dict:
    return strict_loads((out / "summary.json").read_text())


def _no_temp_files(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


# --------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_others(tmp_path, data_dir):
    path = _batch_file(tmp_path, THREE_JOBS)
    out = tmp_path / "runs"
    result = invoke("batch", path, "--output-dir", out)
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: 1 of 3 jobs failed (broken); see {out / 'summary.json'}")
    for name in ("first", "broken", "third"):  # the summary table
        assert name in result.stderr

    summary = _summary(out)
    assert [(j["name"], j["status"]) for j in summary["jobs"]] == [
        ("first", "ok"), ("broken", "failed"), ("third", "ok")]
    assert (summary["n_ok"], summary["n_failed"]) == (2, 1)
    broken = summary["jobs"][1]
    assert "missing.csv" in broken["error"] and "no such file" in broken["error"]
    assert broken["output"] == str(out / "broken")
    assert all(isinstance(j["seconds"], float) for j in summary["jobs"])

    for name in ("first", "third"):
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(JOB_FILES)
        doc = strict_loads((out / name / "result.json").read_text())
        assert doc["schema_version"] == 1 and set(doc["selected"]) >= {"x0", "x2"}
    assert sorted(p.name for p in (out / "broken").iterdir()) == ["config.yaml", "job.log"]
    assert "no such file" in (out / "broken" / "job.log").read_text()
    assert strict_loads((out / "third" / "result.json").read_text())["params"]["rule"] == "min"
    _no_temp_files(out)


@pytest.mark.slow
def test_result_json_is_what_fit_prints(tmp_path, data_dir):
    path = _batch_file(tmp_path, """
        jobs:
          - {name: a, source: data/a.csv, target: y, cv: 4, n_alphas: 15, eps: 1e-2,
             model: elasticnet, l1_ratio: [0.5, 1], seed: 3}
        """)
    ok(invoke("batch", path, "-d", tmp_path / "runs"))
    fit = ok(invoke("fit", data_dir / "a.csv", "-t", "y", "--cv", "4", "--n-alphas", "15",
                    "--eps", "0.01", "--model", "elasticnet", "--l1-ratio", "0.5,1",
                    "--seed", "3", "--format", "json"))
    assert (tmp_path / "runs" / "a" / "result.json").read_text() == fit.stdout
    csv = ok(invoke("fit", data_dir / "a.csv", "-t", "y", "--cv", "4", "--n-alphas", "15",
                    "--eps", "0.01", "--model", "elasticnet", "--l1-ratio", "0.5,1",
                    "--seed", "3", "--format", "csv"))
    assert (tmp_path / "runs" / "a" / "coefficients.csv").read_text() == csv.stdout


@pytest.mark.slow
def test_fail_fast_stops_at_the_first_failure(tmp_path, data_dir):
    path = _batch_file(tmp_path, THREE_JOBS)
    out = tmp_path / "runs"
    result = invoke("batch", path, "-d", out, "--fail-fast")
    assert result.exit_code == 1 and result.stdout == ""
    assert [(j["name"], j["status"]) for j in _summary(out)["jobs"]] == [
        ("first", "ok"), ("broken", "failed"), ("third", "skipped")]
    assert not (out / "third").exists()


@pytest.mark.slow
def test_only_runs_a_subset(tmp_path, data_dir):
    path = _batch_file(tmp_path, THREE_JOBS)
    out = tmp_path / "runs"
    ok(invoke("batch", path, "-d", out, "--only", "third", "--only", "first"))
    assert [j["name"] for j in _summary(out)["jobs"]] == ["first", "third"]  # file order
    assert not (out / "broken").exists()

    result = invoke("batch", path, "-d", out, "--only", "thrid")
    assert_error(result, 2, "--only: no job named 'thrid'", "did you mean 'third'?")


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, data_dir):
    path = _batch_file(tmp_path, THREE_JOBS)
    out = tmp_path / "runs"
    result = invoke("batch", path, "-d", out, "--dry-run")
    assert result.exit_code == 1  # a source cannot be read
    assert not out.exists()
    plan = result.stdout
    assert plan.startswith(f"Plan: 3 jobs from {path}")
    lines = plan.splitlines()
    assert any(line.split()[:2] == ["ok", "first"] for line in lines)
    assert any(line.split()[:2] == ["FLAGGED", "broken"] for line in lines)
    assert "missing.csv: no such file" in plan and "rule=min" in plan
    assert result.stderr == "Error: 1 of 3 jobs cannot run (broken)\n"

    result = invoke("batch", path, "-d", out, "--dry-run", "--only", "first,third")
    assert result.exit_code == 0 and "FLAGGED" not in result.stdout
    assert result.stderr == ""
    assert not out.exists()


def test_dry_run_flags_a_missing_target_column(tmp_path, data_dir):
    path = _batch_file(tmp_path, "jobs: [{name: a, source: data/a.csv, target: why}]\n")
    result = invoke("batch", path, "--dry-run", "-d", tmp_path / "runs")
    assert result.exit_code == 1
    assert "Target column 'why' not found" in result.stdout


@pytest.mark.slow
def test_parallel_jobs_give_the_same_bytes(tmp_path, data_dir):
    path = _batch_file(tmp_path, """
        defaults: {target: y, n_alphas: 20, cv: 3}
        jobs:
          - {name: a, source: data/a.csv}
          - {name: b, source: data/b.csv, model: elasticnet, l1_ratio: [0.3, 0.9]}
          - {name: c, source: data/a.csv, rule: min, threads: 4}
        """)
    ok(invoke("batch", path, "-d", tmp_path / "one", "--jobs", "1"))
    ok(invoke("batch", path, "-d", tmp_path / "two", "--jobs", "2"))
    for name in ("a", "b", "c"):
        for file in ("result.json", "coefficients.csv"):
            one = (tmp_path / "one" / name / file).read_bytes()
            assert one == (tmp_path / "two" / name / file).read_bytes(), (name, file)
    assert [j["status"] for j in _summary(tmp_path / "two")["jobs"]] == ["ok"] * 3


def test_jobs_must_be_positive(tmp_path, data_dir):
    path = _batch_file(tmp_path, THREE_JOBS)
    assert_error(invoke("batch", path, "--jobs", "0"), 2, "--jobs")


def test_config_errors_are_all_listed_and_nothing_runs(tmp_path, data_dir):
    path = _batch_file(tmp_path, """
        defaults:
          target: y
          n_alpha: 10
        jobs:
          - name: a
            source: data/a.csv
            cv: 1
          - name: b
            source: data/a.csv
            eps: 1e-3
            seed: zero
        """)
    out = tmp_path / "runs"
    result = invoke("batch", path, "-d", out)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"Error: {path} has 3 problems; nothing was run:",
        "  defaults.n_alpha (line 3): unknown key; did you mean 'n_alphas' or 'alpha' or "
        "'alphas'?",
        "  jobs[0].cv (line 7): must be at least 2, not 1",
        "  jobs[1].seed (line 11): must be a whole number, not 'zero'",
    ]
    assert not out.exists()


@pytest.mark.slow
def test_an_interrupted_batch_leaves_whole_files_only(tmp_path, data_dir, monkeypatch):
    path = _batch_file(tmp_path, THREE_JOBS)
    out = tmp_path / "runs"
    real_replace = files_module.os.replace

    def replace(src, dst):
        if Path(dst) == out / "third" / "result.json":
            raise KeyboardInterrupt  # Ctrl-C between writing the temp file and renaming it
        real_replace(src, dst)

    monkeypatch.setattr(files_module.os, "replace", replace)
    result = invoke("batch", path, "-d", out)
    assert result.exit_code == 130
    assert result.stdout == "" and "Interrupted" in result.stderr
    _no_temp_files(out)
    assert not (out / "third" / "result.json").exists()
    assert strict_loads((out / "first" / "result.json").read_text())["schema_version"] == 1
    assert [j["status"] for j in _summary(out)["jobs"]] == ["ok", "failed", "interrupted"]


def test_progress_shows_each_job_on_a_terminal_only(tmp_path, data_dir):
    from l1select.batch import JobRecord

    quiet = Console(file=StringIO(), force_terminal=False)
    with cli_module._batch_progress(quiet, dry_run=False) as progress:
        assert progress is None  # not a terminal: silent

    buf = StringIO()
    tty = Console(file=buf, force_terminal=True, width=100)
    with cli_module._batch_progress(tty, dry_run=False) as progress:
        record = JobRecord(name="alpha-job", source="a.csv", output="runs/alpha-job",
                           status="running")
        progress(record, 0, 2)
        record.status, record.seconds = "ok", 0.5
        progress(record, 1, 2)
        failed = JobRecord(name="beta-job", source="b.csv", output="runs/beta-job",
                           status="failed", error="b.csv: no such file", seconds=0.1)
        progress(failed, 2, 2)
    shown = buf.getvalue()
    assert "alpha-job" in shown and "beta-job" in shown and "no such file" in shown


# --------------------------------------------------------------------------------------------
# fit --config
# --------------------------------------------------------------------------------------------


def test_fit_config_with_a_command_line_override(tmp_path, data_dir):
    job = _batch_file(tmp_path, """
        source: data/a.csv
        target: y
        cv: 3
        n_alphas: 20
        rule: 1se
        """, "job.yaml")
    by_config = ok(invoke("fit", "--config", job, "--rule", "min", "--format", "json"))
    by_flags = ok(invoke("fit", data_dir / "a.csv", "-t", "y", "--cv", "3", "--n-alphas",
                         "20", "--rule", "min", "--format", "json"))
    assert by_config.stdout == by_flags.stdout
    assert strict_loads(by_config.stdout)["params"]["rule"] == "min"

    # DATA on the command line replaces the file's source (relative to the working directory).
    other = ok(invoke("fit", data_dir / "b.csv", "--config", job, "--format", "json"))
    assert strict_loads(other.stdout)["input"]["source"] == str(data_dir / "b.csv")


@pytest.mark.slow
def test_fit_config_reruns_a_batch_jobs_resolved_config(tmp_path, data_dir):
    path = _batch_file(tmp_path, """
        defaults: {target: y, n_alphas: 20}
        jobs: [{name: a, source: data/b.csv, cv: 4, missing: drop}]
        """)
    out = tmp_path / "runs"
    ok(invoke("batch", path, "-d", out))
    again = ok(invoke("fit", "--config", out / "a" / "config.yaml", "--format", "json"))
    assert again.stdout == (out / "a" / "result.json").read_text()


def test_fit_config_errors(tmp_path, data_dir):
    job = _batch_file(tmp_path, "source: data/a.csv\ntarget: y\ncv: 3\n", "job.yaml")
    assert_error(invoke("fit", "--config", job, "--cv", "1"), 2,
                 "--cv (command line): must be at least 2, not 1")
    bad = _batch_file(tmp_path, "source: data/a.csv\ntagret: y\n", "bad.yaml")
    result = invoke("fit", "--config", bad)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {bad} has 2 problems; nothing was run:",
        "  no target: give 'target:' in the file or with -t",
        "  tagret (line 2): unknown key; did you mean 'target'?",
    ]
    assert_error(invoke("fit", "--config", tmp_path / "nope.yaml"), 2, "nope.yaml: no such file")


def test_fit_without_config_still_needs_data_and_target(sparse_csv):
    assert_error(invoke("fit", "-t", "y"), 2, "Missing argument 'DATA'")
    assert_error(invoke("fit", sparse_csv), 2, "--target")


# --------------------------------------------------------------------------------------------
# schema, and the example files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["batch", "job"])
def test_schema_prints_a_json_schema(kind):
    result = ok(invoke("schema", "--kind", kind))
    assert result.stderr == ""
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    if kind == "batch":
        assert set(schema["properties"]) == {"defaults", "jobs"}
        assert schema["required"] == ["jobs"]
    else:
        assert {"source", "target", "cv", "l1_ratio"} <= set(schema["properties"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_example_configs_match_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from l1select.config import _Loader, json_schema

    for path in CONFIGS:
        doc = yaml.load(path.read_text(), Loader=_Loader)
        kind = "batch" if "jobs" in doc else "job"
        errors = [e.message for e in
                  jsonschema.Draft202012Validator(json_schema(kind)).iter_errors(doc)]
        assert not errors, (path.name, errors)


def test_there_are_example_configs():
    names = {p.name for p in CONFIGS}
    assert {"example.yaml", "job.yaml"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_config_runs(path, tmp_path):
    assert HOUSING_CSV.exists()
    text = path.read_text()
    if "jobs:" in text:
        out = tmp_path / "runs"
        result = ok(invoke("batch", path, "--output-dir", out))
        assert result.stdout == ""
        summary = _summary(out)
        assert summary["n_jobs"] >= 1 and summary["n_ok"] == summary["n_jobs"]
        for job in summary["jobs"]:
            doc = strict_loads((Path(job["output"]) / "result.json").read_text())
            assert doc["input"]["target"] == "price" and doc["selected"]
    else:
        result = ok(invoke("fit", "--config", path, "--format", "json"))
        doc = strict_loads(result.stdout)
        assert doc["input"]["source"] == str(HOUSING_CSV)
        assert doc["selected"]

"""YAML job files → validated, resolved jobs, for ``l1select batch`` and ``fit --config``.

A batch file has a ``defaults`` block and a ``jobs`` list; a job has a ``name``, a ``source``
and any ``fit`` option under its name with underscores (``n_alphas``, ``l1_ratio``, …). Job keys
override defaults. A single-job file (``fit --config``) holds one job's keys at the top level,
or is a batch file with exactly one job.

Everything is checked before anything runs, and every problem is reported at once, each with its
key path and line (``jobs[2].cv (line 14): must be at least 2, not 1``):

- structure and types by pydantic (strict: ``cv: "5"`` or ``cv: true`` is not a number);
- values by :func:`l1select.options.problems`, the one place that knows the bounds of the
  options, so a batch file accepts exactly what ``fit`` accepts. Its problems come as
  (key, text) pairs: the loader adds the key path and line, and no message is parsed.

The schema itself (:data:`Options`) is made from the option table, :mod:`l1select.options`.

Scalars are read as YAML 1.1 (PyYAML), except that ``1e-3`` is a number as in YAML 1.2.
``${env:VAR}`` and ``${env:VAR,default}`` are substituted in values; a value that is nothing but
one such reference is then read as a YAML scalar, so ``cv: ${env:FOLDS,5}`` is a number.
Relative source paths are relative to the YAML file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from l1select import __version__
from l1select.errors import ConfigError, did_you_mean
from l1select.options import (
    CONFIG_OPTIONS,
    OPTIONS,
    Option,
    config_help,
    from_values,
    label_text,
    problems,
    to_values,
)
from l1select.types import FitParams

# --------------------------------------------------------------------------------------------
# Reading YAML with a line for every key
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2 floats: ``1e-3`` and ``2E5`` are numbers.

    YAML 1.1 wants a dot and a signed exponent (``1.0e-3``), so PyYAML reads ``1e-3`` as text.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TYPED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null")}
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")

Path_ = tuple[str | int, ...]


def _plain_scalar(text: str) -> Any:
    """``text`` read as an unquoted YAML scalar: a number, true/false, null, or the text."""
    loader = _Loader("")
    try:
        tag = loader.resolve(yaml.ScalarNode, text, (True, False))
        if tag not in _TYPED_TAGS:
            return text
        return loader.construct_object(yaml.ScalarNode(tag, text))
    finally:
        loader.dispose()


class _Document:
    """A YAML file as plain Python values, with the line of every key and list item."""

    def __init__(self, text: str, env: Mapping[str, str]):
        self.lines: dict[Path_, int] = {(): 1}
        self.problems: list[tuple[Path_, str]] = []
        self.env = env
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.value = None if node is None else self._build(loader, node, ())
        finally:
            loader.dispose()

    def _build(self, loader: _Loader, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    self.problems.append((path + (key_node.value,),
                                          f"duplicate key (first given on line "
                                          f"{seen[key_node.value]})"))
                seen.setdefault(key_node.value, line)
            loader.flatten_mapping(node)  # `<<: *anchor` merge keys
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append((path, "keys must be plain names, not lists or "
                                                "mappings"))
                    continue
                key = key_node.value
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = self._build(loader, value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                items.append(self._build(loader, item, path + (i,)))
            return items
        value = loader.construct_object(node)
        if isinstance(value, str) and "${" in value:
            value = self._substitute(value, path)
        return value

    def _substitute(self, text: str, path: Path_) -> Any:
        unset: list[str] = []

        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            unset.append(name)
            return m.group(0)

        out = _ENV.sub(repl, text)
        for name in unset:
            self.problems.append((path, f"environment variable {name} is not set; set it, "
                                        f"or give a default: ${{env:{name},DEFAULT}}"))
        if unset:
            return out
        if "${env:" in out:
            self.problems.append((path, f"cannot read the reference in {text!r}; write "
                                        "${env:NAME} or ${env:NAME,default}"))
            return out
        return _plain_scalar(out) if _ENV.fullmatch(text) else out


# --------------------------------------------------------------------------------------------
# The schema (pydantic): structure and types. Values are checked by pipeline.validate.
# --------------------------------------------------------------------------------------------

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _listify(value: Any, item: type) -> Any:
    """Accept one value where a list is expected (``l1_ratio: 0.5``, ``exclude: id``)."""
    if item is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if item is str and isinstance(value, str):
        return [value]
    return value


def _label(value: Any) -> Any:
    """A value of the data as YAML reads it (``1``, ``true``, ``yes``), as text."""
    return label_text(value) if isinstance(value, str | int | float | bool) else value


def _field(option: Option) -> tuple[Any, Any]:
    """The pydantic type and field of one row of the option table. Types only: the values
    are checked by options.problems, whose bounds the JSON Schema shows to editors."""
    bounds = option.bounds()
    extra: dict[str, Any] | None = None
    kind = option.kind
    if kind == "choice":
        annotation: Any = Literal[option.choices]  # type: ignore[valid-type]
    elif kind == "floats":
        item = {"type": "number", **bounds}
        many = {"type": "array", "items": item, "minItems": 1}
        if option.scalar_ok:
            annotation = Annotated[list[float], BeforeValidator(lambda v: _listify(v, float)),
                                   WithJsonSchema({"anyOf": [item, many]})]
        else:
            annotation = Annotated[list[float], Field(min_length=1)]
            extra = {"items": item}
    elif kind == "names":
        annotation = Annotated[list[str], BeforeValidator(lambda v: _listify(v, str)),
                               WithJsonSchema({"anyOf": [{"type": "string"}, {
                                   "type": "array", "items": {"type": "string"}}]})]
    elif kind == "factors":
        annotation = dict[str, float]
    elif kind == "label":
        annotation = Annotated[str, BeforeValidator(_label), WithJsonSchema(
            {"type": ["string", "number", "boolean"]})]
    else:
        annotation = {"int": int, "float": float, "bool": bool, "str": str}[kind]
        extra = bounds or None
    return annotation | None, Field(None, description=config_help(option),
                                     json_schema_extra=extra)


_SOURCE = ("CSV, TSV, .csv.gz or Parquet file. A relative path is relative to this YAML file.")

Options = create_model(
    "Options",
    __config__=ConfigDict(extra="forbid", strict=True),
    __doc__="The options of a job; every one may also be given under ``defaults``.",
    source=(str | None, Field(None, description=_SOURCE)),
    **{o.name: _field(o) for o in CONFIG_OPTIONS},
)


_JOB_NAME = ("A name for the job, unique in the file; its output goes to OUTPUT_DIR/NAME/. "
             "Letters, digits, '.', '_' and '-'.")


class Job(Options):
    """One job of a batch file: a name, a source, and options that override the defaults."""

    name: str = Field(description=_JOB_NAME, pattern=_NAME_PATTERN)


class SingleJob(Options):
    """A file for ``l1select fit --config``: one job's keys at the top level."""

    model_config = ConfigDict(extra="forbid", strict=True, title="l1select job file")

    name: str | None = Field(None, description=_JOB_NAME, pattern=_NAME_PATTERN)


class BatchFile(BaseModel):
    """A file for ``l1select batch``: defaults, and a list of jobs that override them."""

    model_config = ConfigDict(extra="forbid", strict=True, title="l1select batch file")

    defaults: Options | None = Field(None, description="Options for every job.")
    jobs: list[Job] = Field(description="The jobs, run in this order.", min_length=1)


OPTION_KEYS = tuple(o.name for o in CONFIG_OPTIONS)
JOB_KEYS = ("name", "source", *OPTION_KEYS)

# What a key expects, for type errors.
_EXPECTS = {
    **{o.name: o.describe_expected() for o in CONFIG_OPTIONS},
    "source": "a file path", "name": "a job name",
    "defaults": "a mapping of options (key: value)", "jobs": "a list of jobs (- name: …)",
}
_ITEM_EXPECTS = {"int_type": "a whole number", "float_type": "a number",
                 "string_type": "text", "bool_type": "true or false"}


_ENV_SCHEMA = {"type": "string", "pattern": r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*(,[^}]*)?\}$",
               "description": "${env:VAR} or ${env:VAR,default}, read as YAML once substituted"}


def json_schema(kind: str = "batch") -> dict[str, Any]:
    """The JSON Schema of a batch file (``kind="batch"``) or of a single-job file (``"job"``).

    A value that is only an ``${env:…}`` reference is accepted wherever a number, true/false or
    a choice is: it is substituted before the file is checked.
    """
    model = BatchFile if kind == "batch" else SingleJob
    schema = model.model_json_schema()
    models = [schema, *schema.get("$defs", {}).values()]
    for props in (m.get("properties", {}) for m in models):
        for key, prop in props.items():
            if key in OPTION_KEYS and "anyOf" in prop and not any(
                    alt.get("type") == "string" and "enum" not in alt for alt in prop["anyOf"]):
                prop["anyOf"].insert(-1, dict(_ENV_SCHEMA))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text(kind: str = "batch") -> str:
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# Resolved jobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One job, resolved: defaults merged, ``${env:…}`` substituted, the source absolute.

    ``given`` names the options set in the file (job or defaults) or on the command line.
    """

    name: str
    source: str
    params: FitParams
    given: tuple[str, ...] = ()
    line: int | None = None

    def to_config(self) -> dict[str, Any]:
        """Every key of the job with its value, in the file's schema (``fit --config`` reads
        it back)."""
        return {"name": self.name, "source": self.source, **to_values(self.params)}


@dataclass(frozen=True)
class BatchConfig:
    """A validated batch file: where it is and its jobs, in file order."""

    path: Path
    jobs: tuple[JobSpec, ...]


def dump_job(job: JobSpec, origin: str | Path | None = None) -> str:
    """The resolved job as YAML, with a comment saying where it came from."""
    head = f"# l1select {__version__}: job '{job.name}'"
    if origin is not None:
        head += f" of {origin}"
    head += ", resolved (defaults merged, ${env:…} substituted, source absolute).\n"
    return head + yaml.safe_dump(job.to_config(), sort_keys=False, allow_unicode=True,
                                 default_flow_style=None, width=100)


def load_batch(path: str | Path, env: Mapping[str, str] | None = None) -> BatchConfig:
    """Read and validate a batch file; raise :class:`ConfigError` listing every problem."""
    doc, shown = _read(path, env)
    checker = _Checker(doc, shown, Path(path))
    if not isinstance(doc.value, dict) or ("jobs" not in doc.value
                                           and "defaults" not in doc.value):
        found = ("is empty" if doc.value is None else
                 "is not a mapping" if not isinstance(doc.value, dict) else "has no 'jobs' list")
        raise ConfigError(f"{shown} {found}: a batch file has 'defaults:' (optional) and "
                          "'jobs:', a list of jobs each with a name and a source")
    jobs = checker.batch(stdin_ok=False)
    checker.raise_problems()
    return BatchConfig(path=Path(path), jobs=tuple(jobs))


def load_job(path: str | Path, overrides: Mapping[str, Any] | None = None,
             env: Mapping[str, str] | None = None) -> JobSpec:
    """Read a single-job file (or a batch file with one job) for ``fit --config``.

    ``overrides`` are options from the command line, in the file's keys (``source`` relative to
    the working directory); they win over the file. Raise :class:`ConfigError` listing every
    problem.
    """
    doc, shown = _read(path, env)
    checker = _Checker(doc, shown, Path(path), dict(overrides or {}))
    if doc.value is None:
        doc.value = {}
    if not isinstance(doc.value, dict):
        raise ConfigError(f"{shown} is not a mapping: give the job's options as 'key: value' "
                          "lines (source, target, cv, …)")
    if "jobs" in doc.value or "defaults" in doc.value:
        jobs = checker.batch(stdin_ok=True)
        n = len(doc.value.get("jobs") or []) if isinstance(doc.value.get("jobs"), list) else 0
        if n > 1:
            checker.problems.append(((), f"has {n} jobs; fit --config runs one job: run "
                                         f"'l1select batch {shown} --only NAME' instead"))
    else:
        jobs = checker.single()
    checker.raise_problems()
    return jobs[0]


def _read(path: str | Path, env: Mapping[str, str] | None) -> tuple[_Document, str]:
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such file; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown} is a folder; give a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{shown} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read it ({exc.strerror})") from None
    try:
        doc = _Document(text, os.environ if env is None else env)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{shown} is not valid YAML{where}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown} is not valid YAML: {exc}") from None
    return doc, shown


# --------------------------------------------------------------------------------------------
# Checking: every problem, with its key path and line
# --------------------------------------------------------------------------------------------


_CLI = "<command line>"


def _fmt_path(path: Path_) -> str:
    if path and path[0] == _CLI:
        return f"--{str(path[1]).replace('_', '-')} (command line)"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


class _Checker:
    """Collects the problems of one file; builds the jobs that have none."""

    def __init__(self, doc: _Document, shown: str, path: Path,
                 overrides: dict[str, Any] | None = None):
        self.doc = doc
        self.shown = shown
        self.base = path.resolve().parent
        self.overrides = overrides or {}
        self.problems: list[tuple[Path_, str]] = list(doc.problems)
        self.layout = "batch"
        self.from_defaults: dict[tuple[Path_, str], list[str]] = {}

    # -- the two layouts ---------------------------------------------------------------------

    def batch(self, stdin_ok: bool) -> list[JobSpec]:
        data = self.doc.value
        self._pydantic(BatchFile, data, ())
        defaults, bad_defaults = self._part(Options, data.get("defaults"))
        raw_jobs = data.get("jobs")
        jobs: list[JobSpec] = []
        if not isinstance(raw_jobs, list):
            return jobs
        names: dict[str, int] = {}
        for i, raw in enumerate(raw_jobs):
            job, bad = self._part(Job, raw)
            if job is None:
                continue
            name = job.name
            if "name" in bad:
                pass
            elif name.lower() in names:
                self.problems.append((("jobs", i, "name"), f"duplicate job name '{name}' "
                                      f"(also jobs[{names[name.lower()]}])"))
            elif name.lower() == "summary.json":
                self.problems.append((("jobs", i, "name"), "'summary.json' is reserved for "
                                                           "the batch summary"))
            names.setdefault(name.lower(), i)
            spec = self._resolve(name, ("jobs", i), defaults, bad_defaults, job, bad, stdin_ok)
            if spec is not None:
                jobs.append(spec)
        return jobs

    def single(self) -> list[JobSpec]:
        data = self.doc.value
        self.layout = "single"
        self._pydantic(SingleJob, data, ())
        job, bad = self._part(SingleJob, data)
        if job is None:
            return []
        name = job.name or Path(self.shown).stem
        spec = self._resolve(name, (), None, set(), job, bad, stdin_ok=True)
        return [spec] if spec is not None else []

    # -- pydantic ----------------------------------------------------------------------------

    def _pydantic(self, model: type[BaseModel], data: Any, prefix: Path_) -> None:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                self.problems.append(self._message(err, prefix))

    @staticmethod
    def _part(model: type[BaseModel], data: Any) -> tuple[Any, set[str]]:
        """The model of ``data`` less its bad keys (so values can still be checked), and those
        keys; None when it cannot be had."""
        if not isinstance(data, dict):
            return None, set()
        try:
            return model.model_validate(data), set()
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        rest = {k: v for k, v in data.items() if k not in bad}
        if "name" in model.model_fields and "name" not in rest:
            rest["name"] = "unnamed"  # so that the job's other values are still checked
        try:
            return model.model_validate(rest), bad
        except ValidationError:
            return None, bad

    def _message(self, err: dict[str, Any], prefix: Path_) -> tuple[Path_, str]:
        loc: Path_ = prefix + tuple(err["loc"])
        kind, value = err["type"], err.get("input")
        keys = [k for k in loc if isinstance(k, str)]
        key = keys[-1] if keys else ""
        item = bool(loc) and isinstance(loc[-1], int) and key not in ("jobs",)
        if kind == "extra_forbidden":
            allowed = self._allowed(loc[:-1])
            text = str(loc[-1])
            if text.replace("-", "_") in allowed:
                hint = f"did you mean '{text.replace('-', '_')}'? (keys use underscores)"
            else:
                hint = did_you_mean(text, list(allowed)) or (
                    "known keys: " + ", ".join(allowed))
            return loc, f"unknown key; {hint}"
        if kind == "missing":
            what = "every job needs a name" if key == "name" else "required"
            return loc, f"missing ({what})"
        if kind == "literal_error":
            options = list(OPTIONS[key].choices) if key in OPTIONS else []
            hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
            return loc, (f"must be one of {', '.join(options)}, not {_show(value)}"
                         + (f"; {hint}" if hint else ""))
        if kind == "string_pattern_mismatch":
            return loc, (f"{_show(value)} is not a usable folder name: use letters, digits, "
                         "'.', '_' and '-', starting with a letter or digit")
        if kind == "too_short":
            return loc, "must not be empty"
        if kind in ("greater_than_equal", "greater_than"):
            return loc, f"must be at least {err['ctx'].get('ge', err['ctx'].get('gt'))}, " \
                        f"not {_show(value)}"
        if kind.endswith("_type") or kind.endswith("_parsing") or kind == "int_from_float":
            if item and kind in _ITEM_EXPECTS:
                expects = _ITEM_EXPECTS[kind]
            elif kind in ("model_type", "dict_type") and key == "jobs":
                expects = "a mapping of options (name: …, source: …)"
            elif kind in ("model_type", "dict_type") and not keys:
                expects = "a mapping (key: value)"
            else:
                expects = _EXPECTS.get(key, _ITEM_EXPECTS.get(kind, "something else"))
            hint = ""
            if kind == "string_type" and isinstance(value, (int, float, bool, date)):
                hint = f" (quote it: '{value}')"
            return loc, f"must be {expects}, not {_show(value)}{hint}"
        return loc, err["msg"][:1].lower() + err["msg"][1:]

    def _allowed(self, loc: Path_) -> list[str]:
        if loc == ():
            return ["defaults", "jobs"] if self.layout == "batch" else list(JOB_KEYS)
        if loc == ("defaults",):
            return list(Options.model_fields)
        return list(JOB_KEYS)

    # -- one job -----------------------------------------------------------------------------

    def _resolve(self, name: str, at: Path_, defaults: Options | None, bad_defaults: set[str],
                 job: Options, bad_job: set[str], stdin_ok: bool) -> JobSpec | None:
        values: dict[str, Any] = {}
        origin: dict[str, Path_] = {}
        if defaults is not None:
            for k, v in defaults.model_dump(exclude_unset=True).items():
                values[k], origin[k] = v, ("defaults", k)
        for k, v in job.model_dump(exclude_unset=True).items():
            if k != "name":
                values[k], origin[k] = v, at + (k,)
        for k, v in self.overrides.items():
            values[k], origin[k] = v, (_CLI, k)
        bad = bad_job | bad_defaults
        before = len(self.problems)
        for key in ("source", "target"):
            if values.get(key) is None and key not in bad:
                hint = ("in the job or in defaults" if at else
                        "in the file" + (" or as DATA" if key == "source" else " or with -t"))
                self.problems.append((at, f"no {key}: give '{key}:' {hint}"))
        source = values.get("source")
        if isinstance(source, str):
            if source == "-" and not stdin_ok:
                self.problems.append((origin["source"], "'-' (stdin) cannot be a batch "
                                                        "source; give a file"))
            elif source != "-":
                base = Path.cwd() if origin["source"][0] == _CLI else self.base
                source = os.path.abspath(os.path.join(base, os.path.expanduser(source)))
        params = from_values(values)
        for problem in problems(params):
            if problem.mentions & bad:
                continue  # about a key whose type is already reported: its value is a guess
            key, text = problem.where, problem.for_config()
            path = origin.get(key, at) if key else at
            if path and path[0] == "defaults":
                # A value from defaults can be wrong for some jobs only (l1_ratio with a job's
                # model: lasso): say which, once.
                self.from_defaults.setdefault((path, text), []).append(name)
                continue
            self.problems.append((path, text))
        if len(self.problems) > before or any(name in n for n in self.from_defaults.values()):
            return None
        return JobSpec(name=name, source=source, params=params, given=tuple(origin),
                       line=self.doc.lines.get(at))

    # -- the report --------------------------------------------------------------------------

    def raise_problems(self) -> None:
        for (path, text), names in self.from_defaults.items():
            jobs = ", ".join(map(repr, names))
            self.problems.append((path, f"{text} (in job {jobs}; the job can override it)"))
        if not self.problems:
            return
        lines: list[tuple[int, str]] = []
        seen = set()
        for path, text in self.problems:
            line = self._line(path)
            where = _fmt_path(path)
            entry = (f"{where} (line {line}): {text}" if where and line else
                     f"{where}: {text}" if where else
                     f"line {line}: {text}" if line and path else text)
            if entry in seen:
                continue
            seen.add(entry)
            lines.append((line or 0, entry))
        lines.sort(key=lambda t: t[0])
        if len(lines) == 1:
            raise ConfigError(f"{self.shown}: {lines[0][1]}")
        body = "\n".join(f"  {entry}" for _, entry in lines)
        raise ConfigError(f"{self.shown} has {len(lines)} problems; nothing was run:\n{body}")

    def _line(self, path: Path_) -> int | None:
        if path and path[0] == _CLI:
            return None
        path = tuple(path)
        while path not in self.doc.lines and path:
            path = path[:-1]
        return self.doc.lines.get(path)

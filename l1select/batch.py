"""Batch runs: the jobs of a YAML file, each into its own folder, and a summary.

``run_batch`` validates the whole file first (nothing runs when it has a problem), then runs the
jobs in file order, or in ``jobs`` worker processes. A job that fails (a missing source, a bad
column) is recorded and the others go on, unless ``fail_fast``. Every file is written
atomically, so an interrupted batch leaves whole files only.

Each job writes into ``OUTPUT_DIR/NAME/``:

- ``result.json``: what ``fit --format json`` prints;
- ``coefficients.csv``: what ``fit --format csv`` prints;
- ``report.html``: the self-contained HTML report (what ``fit --report`` writes);
- ``config.yaml``: the job, resolved (``l1select fit --config`` reruns it);
- ``job.log``: source, timing, warnings, and the error if the job failed.

``OUTPUT_DIR/summary.json`` lists every job with its status, error, time and folder;
``OUTPUT_DIR/index.html`` shows the same, linked to each job's report.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from l1select import __version__
from l1select.config import BatchConfig, JobSpec, dump_job, load_batch
from l1select.errors import ConfigError, InputError, L1SelectError, did_you_mean, list_names
from l1select.files import write_atomic
from l1select.options import PLAN_KEYS

SUMMARY_VERSION = 1
RESULT_FILES = ("result.json", "coefficients.csv", "report.html")

# Job statuses: "ok" and "failed" after a run; "skipped" when --fail-fast stopped the batch
# first; "interrupted" when the batch was; "ready" and "flagged" in a dry run.
OK, FAILED, SKIPPED, INTERRUPTED = "ok", "failed", "skipped", "interrupted"
PENDING, RUNNING = "pending", "running"
READY, FLAGGED = "ready", "flagged"


@dataclass
class JobRecord:
    """What happened to one job (or, in a dry run, what would)."""

    name: str
    source: str
    output: str
    status: str
    error: str | None = None
    started: str | None = None
    seconds: float | None = None
    n_features: int | None = None
    n_selected: int | None = None
    warnings: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "error": self.error,
            "started": self.started, "seconds": self.seconds, "output": self.output,
            "source": self.source, "n_features": self.n_features,
            "n_selected": self.n_selected, "warnings": self.warnings,
        }


@dataclass(frozen=True)
class BatchReport:
    """What ``run_batch`` returns: the validated file and a record per job, in file order."""

    config: BatchConfig
    output_dir: Path
    records: tuple[JobRecord, ...]
    dry_run: bool = False

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if r.status in (FAILED, FLAGGED)]

    @property
    def exit_code(self) -> int:
        """0 when every job ran (or, in a dry run, every source can be read), else 1."""
        return 1 if self.failed else 0

    def summary(self) -> dict[str, Any]:
        counts = {s: sum(r.status == s for r in self.records)
                  for s in (OK, FAILED, SKIPPED, INTERRUPTED)}
        return {
            "schema_version": SUMMARY_VERSION,
            "tool": {"name": "l1select", "version": __version__},
            "config": str(self.config.path.resolve()),
            "output_dir": str(self.output_dir),
            "n_jobs": len(self.records),
            **{f"n_{s}": n for s, n in counts.items()},
            "jobs": [r.to_dict() for r in self.records],
        }


# progress(record, n_done, n_jobs): a job started (status running) or ended.
Progress = Callable[[JobRecord, int, int], None]


def run_batch(config: str | Path, *, output_dir: str | Path = "runs",
              only: Iterable[str] | None = None, jobs: int = 1, fail_fast: bool = False,
              dry_run: bool = False, progress: Progress | None = None) -> BatchReport:
    """Validate the batch file ``config`` and run its jobs (all, or those named in ``only``).

    ``jobs`` > 1 runs that many worker processes, each with its share of the CPUs for the
    numeric libraries; the results are the same as with ``jobs=1``. ``progress(record, done,
    total)``, if given, is called when a job starts (status ``running``) and when it ends. With
    ``dry_run`` nothing is run or written: each job's source is opened and its columns checked,
    and the records say ``ready`` or ``flagged``.

    Raises :class:`ConfigError` (listing every problem) before anything runs when the file,
    ``only`` or ``jobs`` is wrong. A job's own failure is recorded, not raised.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    batch = load_batch(config)
    chosen = _choose(batch, list(only or ()), str(config))
    out = Path(output_dir)
    records = [JobRecord(name=j.name, source=j.source, output=str(out / j.name),
                         status=PENDING, params=j.to_config()) for j in chosen]
    if dry_run:
        for job, record in zip(chosen, records, strict=True):
            problem = check_source(job)
            record.status, record.error = (FLAGGED, problem) if problem else (READY, None)
        return BatchReport(batch, out, tuple(records), dry_run=True)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {out} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot make the folder {out} ({exc.strerror or exc}); give an "
                         "--output-dir that can be written") from None
    report = BatchReport(batch, out, tuple(records))
    try:
        if jobs == 1 or len(chosen) == 1:
            _run_here(chosen, report, fail_fast, progress)
        else:
            _run_pool(chosen, report, min(jobs, len(chosen)), fail_fast, progress)
    except BaseException:
        for record in records:
            if record.status in (PENDING, RUNNING):
                record.status = INTERRUPTED
        raise
    else:
        for record in records:
            if record.status == PENDING:  # --fail-fast stopped the batch before it
                record.status = SKIPPED
    finally:
        _write_summary(report)
    return report


def _choose(batch: BatchConfig, only: list[str], shown: str) -> list[JobSpec]:
    if not only:
        return list(batch.jobs)
    names = [j.name for j in batch.jobs]
    wanted = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        hint = did_you_mean(unknown[0], names)
        raise ConfigError(f"--only: no job named '{unknown[0]}' in {shown}"
                          f"{'; ' + hint if hint else ''} (jobs: {list_names(names)})")
    return [j for j in batch.jobs if j.name in wanted]


def _write_summary(report: BatchReport) -> None:
    import json

    from l1select.html_report import render_index

    summary = report.summary()
    write_atomic(report.output_dir / "summary.json",
                 json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_atomic(report.output_dir / "index.html", render_index(summary))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _run_here(chosen: list[JobSpec], report: BatchReport, fail_fast: bool,
              progress: Progress | None) -> None:
    stop = False
    for job, record in zip(chosen, report.records, strict=True):
        if stop:
            continue
        record.status = RUNNING
        if progress:
            progress(record, _n_done(report), len(report.records))
        done = run_job(job, record.output, str(report.config.path))
        _update(record, done)
        if progress:
            progress(record, _n_done(report), len(report.records))
        stop = fail_fast and record.status == FAILED


def _run_pool(chosen: list[JobSpec], report: BatchReport, workers: int, fail_fast: bool,
              progress: Progress | None) -> None:
    """A sliding window of ``workers`` jobs: a job is submitted only when a worker is free, so
    --fail-fast has nothing queued to cancel and "running" means running."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # Each worker gets its share of the CPUs for BLAS and Arrow; --threads is capped to it.
    cap = max(1, (os.cpu_count() or 1) // workers)
    # spawn: a fresh interpreter, safe with the numeric libraries' threads (fork is not).
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(cap,),
                               mp_context=multiprocessing.get_context("spawn"))
    queue = list(zip(chosen, report.records, strict=True))
    running: dict[Any, JobRecord] = {}
    stop = False
    try:
        while queue or running:
            while queue and not stop and len(running) < workers:
                job, record = queue.pop(0)
                record.status = RUNNING
                if progress:
                    progress(record, _n_done(report), len(report.records))
                future = pool.submit(run_job, job, record.output, str(report.config.path), cap)
                running[future] = record
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                record = running.pop(future)
                try:
                    _update(record, future.result())
                except BrokenProcessPool:
                    record.status = FAILED
                    record.error = "its worker process died (out of memory?)"
                    stop = True
                if progress:
                    progress(record, _n_done(report), len(report.records))
                stop = stop or (fail_fast and record.status == FAILED)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _n_done(report: BatchReport) -> int:
    return sum(r.status not in (PENDING, RUNNING) for r in report.records)


def _init_worker(threads: int) -> None:
    """Cap the threads of the numeric libraries in a worker, before they are imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)
    import pyarrow

    pyarrow.set_cpu_count(threads)
    pyarrow.set_io_thread_count(max(threads, 1))


def _update(record: JobRecord, done: JobRecord) -> None:
    for name in ("status", "error", "started", "seconds", "n_features", "n_selected",
                 "warnings"):
        setattr(record, name, getattr(done, name))


def run_job(job: JobSpec, output: str | Path, origin: str | None = None,
            threads_cap: int | None = None) -> JobRecord:
    """Run one job into the folder ``output``; never raises for the job's own failure.

    An :class:`L1SelectError` is the job's failure, recorded with its message. Anything else
    is a bug: it fails this job only, and its traceback goes to ``job.log``.
    """
    from l1select.html_report import render_report
    from l1select.pipeline import select_features
    from l1select.report import render_csv, render_json, to_dict

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    record = JobRecord(name=job.name, source=job.source, output=str(folder), status=FAILED,
                       started=started)
    write_atomic(folder / "config.yaml", dump_job(job, origin))
    params = job.params
    if threads_cap is not None:
        params = replace(params, threads=min(params.threads or 1, threads_cap))
    log = [f"l1select {__version__} batch job '{job.name}'", f"source: {job.source}",
           f"started: {started}"]
    try:
        result = select_features(job.source, params)
        texts = {"result.json": render_json(result), "coefficients.csv": render_csv(result),
                 "report.html": render_report(to_dict(result))}
        for name, text in texts.items():
            write_atomic(folder / name, text)
    except L1SelectError as exc:
        record.error = str(exc)
        log.append(f"error: {exc}")
    except Exception as exc:  # a bug in one job must not stop the others: keep its traceback
        record.error = f"unexpected error {type(exc).__name__}: {exc} (traceback in job.log)"
        log.append(f"error: {record.error}")
        log.append(traceback.format_exc().rstrip())
    else:
        record.status = OK
        record.n_features = len(result.features)
        record.n_selected = len(result.selected)
        record.warnings = len(result.warnings)
        log += [f"warning: {w.message}" for w in result.warnings]
        log.append(f"selected {record.n_selected} of {record.n_features} features: "
                   f"{', '.join(result.selected) or '(none)'}")
    if record.status == FAILED:
        for name in RESULT_FILES:  # a stale result from an earlier run would be misleading
            (folder / name).unlink(missing_ok=True)
    record.seconds = round(time.perf_counter() - t0, 3)
    log.append(f"{record.status} in {record.seconds:.2f} s")
    write_atomic(folder / "job.log", "\n".join(log) + "\n")
    return record


# --------------------------------------------------------------------------------------------
# Dry run
# --------------------------------------------------------------------------------------------


def check_source(job: JobSpec) -> str | None:
    """Why the job's source cannot be used (cannot be read, target or columns not found), or
    None. Reads the header only."""
    from l1select import io as l1io
    from l1select.prepare import needed_columns

    p = job.params
    try:
        source, header, _ = l1io.open_header(job.source)
        needed_columns(header.names, p.target, p.features, p.exclude, p.fold_column,
                       source.display)
    except L1SelectError as exc:
        return str(exc)
    except OSError as exc:
        return f"{job.source}: cannot read it ({exc.strerror or exc})"
    return None


# --------------------------------------------------------------------------------------------
# Rendering (no computing)
# --------------------------------------------------------------------------------------------

def _short_path(path: str) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_plan(report: BatchReport) -> str:
    """The dry run's plan, as plain text: one block per job, flagged sources marked."""
    jobs = report.config.jobs
    shown = {j.name: j for j in jobs}
    lines = [f"Plan: {len(report.records)} job{'s' * (len(report.records) != 1)} from "
             f"{report.config.path}, written to {report.output_dir}/"]
    width = max((len(r.name) for r in report.records), default=0)
    for record in report.records:
        job = shown[record.name]
        opts = " ".join(f"{k}={_value(record.params[k])}" for k in PLAN_KEYS
                        if k in job.given and record.params.get(k) not in (None, []))
        mark = "ok     " if record.status == READY else "FLAGGED"
        lines.append(f"  {mark} {record.name:<{width}}  {_short_path(record.source)}"
                     f"  → {record.output}/")
        lines.append(f"          {'':<{width}}  target={record.params['target']}"
                     + (f" {opts}" if opts else ""))
        if record.error:
            lines.append(f"          {'':<{width}}  cannot run: {record.error}")
    flagged = [r.name for r in report.records if r.status == FLAGGED]
    if flagged:
        lines.append(f"{len(flagged)} job{'s' * (len(flagged) != 1)} flagged: "
                     f"{', '.join(flagged)}")
    else:
        lines.append("Every source can be read. Nothing was run or written.")
    return "\n".join(lines) + "\n"


def render_summary(report: BatchReport, console) -> None:
    """The table of jobs at the end of a batch, on a rich console (stderr)."""
    from rich.table import Table

    style = {OK: "green", FAILED: "red", SKIPPED: "yellow", INTERRUPTED: "yellow"}
    table = Table(title=f"Batch {report.config.path}", title_justify="left")
    table.add_column("job")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("selected", justify="right")
    table.add_column("output / error", overflow="fold")
    for r in report.records:
        status = f"[{style.get(r.status, '')}]{r.status}[/]" if r.status in style else r.status
        seconds = f"{r.seconds:.2f}s" if r.seconds is not None else ""
        selected = f"{r.n_selected}/{r.n_features}" if r.n_selected is not None else ""
        where = f"{r.output}/" if r.status == OK else "(not run)"
        table.add_row(r.name, status, seconds, selected, r.error or where)
    console.print(table)
    n_ok = sum(r.status == OK for r in report.records)
    console.print(f"{n_ok} of {len(report.records)} jobs ok; summary in "
                  f"{report.output_dir / 'summary.json'}", highlight=False)

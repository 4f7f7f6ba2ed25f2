"""The Dask engine: the same folds and the same numbers as the gram engine, whatever the
partitioning, on a local cluster of two worker processes (shared by the module: it is slow to
start), also when a worker is lost mid-job."""

from __future__ import annotations

import builtins
import os
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from l1select import io as l1io
from l1select.errors import ConfigError, DataError
from l1select.pipeline import select_features
from l1select.types import FitParams
from tests.conftest import SAMPLE_CSV, SAMPLE_PARQUET, make_regression, write_csv

distributed = pytest.importorskip(
    "distributed", reason="dask[distributed] is not installed (pip install 'l1select[dask]')")

from l1select.engines import dask as dask_engine  # noqa: E402

# The module starts a local cluster of worker processes: `pytest -m "not dask"` (or "not slow")
# leaves it out of the quick loop.
pytestmark = [pytest.mark.dask, pytest.mark.slow]

RTOL = 1e-10


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        yield cluster.scheduler_address


def _n_parts(path) -> int:
    """How many partitions the engine cuts ``path`` into (as it is configured now)."""
    return len(dask_engine.partitions(l1io.detect(str(path)))[0])


def _fit(path, engine, scheduler=None, **kw):
    kw.setdefault("target", "y")
    kw.setdefault("n_alphas", 20)
    params = FitParams(engine=engine, scheduler=scheduler if engine == "dask" else None, **kw)
    return select_features(str(path), params)


def assert_exact(a, b):
    """The same numbers within 1e-10 relative (merge order changes only the last bits)."""
    assert (a.cv is None) == (b.cv is None)
    pa_, pb = (a.cv or {"path": []})["path"], (b.cv or {"path": []})["path"]
    np.testing.assert_allclose([r["alpha"] for r in pa_], [r["alpha"] for r in pb], rtol=RTOL)
    np.testing.assert_allclose([r["mean"] for r in pa_], [r["mean"] for r in pb], rtol=RTOL)
    np.testing.assert_allclose([r["se"] for r in pa_], [r["se"] for r in pb], rtol=RTOL)
    assert [r["n_nonzero"] for r in pa_] == [r["n_nonzero"] for r in pb]
    assert [f.name for f in a.features] == [f.name for f in b.features]
    ca = np.array([f.coef for f in a.features])
    cb = np.array([f.coef for f in b.features])
    np.testing.assert_allclose(ca, cb, rtol=RTOL, atol=RTOL * np.abs(cb).max())
    assert a.intercept == pytest.approx(b.intercept, rel=RTOL)
    assert a.selected == b.selected
    assert a.alpha["chosen"] == pytest.approx(b.alpha["chosen"], rel=RTOL)
    assert [w.code for w in a.warnings] == [w.code for w in b.warnings]
    for key in ("n_rows", "n_rows_used", "n_rows_test", "n_rows_dropped"):
        assert a.input[key] == b.input[key], key
    assert (a.test is None) == (b.test is None)
    if a.test is not None:
        assert a.test["mse"] == pytest.approx(b.test["mse"], rel=RTOL)


def _tricky(n=600, seed=0, missing=0.05):
    """Missing values, a category level first seen late, a column first missing late, a
    row counter (1…n, excluded as ID-like whatever the partitions), a boolean and numbers as
    text."""
    X, y, _ = make_regression(n=n, p=4, seed=seed, missing=missing)
    rng = np.random.default_rng(seed)
    cat = np.where(np.arange(n) < n - 100, rng.choice(["a", "b"], n), rng.choice(["a", "c"], n))
    late = rng.normal(size=n)
    late[n - 50:n - 40] = np.nan
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y + (cat == "c") * 3.0
    df["cat"] = cat
    df["late"] = late
    df["counter"] = np.arange(n) + 1  # 1…n: row numbers
    df["flag"] = rng.random(n) < 0.3
    df["amount"] = [f"{v:,.2f}" for v in rng.uniform(500, 5000, n)]
    return df


@pytest.fixture(scope="module")
def parts_folder(tmp_path_factory):
    """A folder of Parquet parts with uneven row groups (sorted by name)."""
    return _uneven_parts(tmp_path_factory.mktemp("parts"), _tricky())


def _uneven_parts(root, df):
    """``df``'s 600 rows as four Parquet parts of 70, 180, 10 and 340 rows, in row groups of
    25, 64, 3 and 100: partitions of every size, a part of fewer rows than a group."""
    cuts = [0, 70, 250, 260, 600]
    sizes = [25, 64, 3, 100]
    for i, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        pq.write_table(pa.Table.from_pandas(df.iloc[lo:hi], preserve_index=False),
                       root / f"part-{i:02d}.parquet", row_group_size=sizes[i])
    return root


@pytest.fixture(scope="module")
def tricky_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    _tricky().to_csv(path, index=False, float_format="%.17g")
    return path


@pytest.mark.parametrize("sample", [SAMPLE_CSV, SAMPLE_PARQUET], ids=["csv", "parquet"])
def test_same_numbers_as_gram_on_the_sample(scheduler, monkeypatch, sample):
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 40_000)
    a = _fit(sample, "dask", scheduler, target="price")
    assert a.params["engine"] == "dask" and a.engine == "dask"
    assert _n_parts(sample) > 1 or sample == SAMPLE_PARQUET
    assert_exact(a, _fit(sample, "gram", target="price"))


def test_folder_of_parts_with_uneven_row_groups(scheduler, parts_folder):
    a = _fit(parts_folder, "dask", scheduler)
    b = _fit(parts_folder, "gram")
    assert_exact(a, b)
    names = [f.name for f in a.features]
    assert "cat=c" in names and "amount" in names and "counter" not in names
    # Row groups: 70 rows by 25, 180 by 64, 10 by 3, 340 by 100.
    assert _n_parts(parts_folder) == 3 + 3 + 4 + 4


@pytest.mark.parametrize("case", [dict(test_size=0.25), dict(missing="drop"),
                                  dict(model="elasticnet", l1_ratios=(0.3, 0.9)),
                                  dict(alpha=0.05)], ids=["test", "drop", "enet", "fixed"])
def test_options_on_csv(scheduler, monkeypatch, tricky_csv, case):
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 7_000)
    assert_exact(_fit(tricky_csv, "dask", scheduler, **case), _fit(tricky_csv, "gram", **case))


def test_fold_column(scheduler, tmp_path, monkeypatch):
    df = _tricky(n=400, seed=3)
    # Labels first seen in the order c, a, b: folds are numbered by sorted label anyway.
    df["fold"] = np.where(np.arange(400) < 150, "c", np.where(np.arange(400) % 2, "a", "b"))
    path = tmp_path / "f.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 6_000)
    a = _fit(path, "dask", scheduler, fold_column="fold")
    assert a.cv["fold_labels"] == ["a", "b", "c"]
    assert_exact(a, _fit(path, "gram", fold_column="fold"))


@pytest.mark.parametrize("case", [dict(group_column="grp", repeats=2, test_size=0.2),
                                  dict(cv_scheme="forward", cv=4), dict(repeats=3),
                                  dict(group_column="grp", stability=5)],
                         ids=["group-repeats", "forward", "repeats", "group-stability"])
def test_group_forward_and_repeated_folds(scheduler, tmp_path, monkeypatch, case):
    df = _tricky(n=400, seed=4)
    df["grp"] = [f"g{v}" for v in np.random.default_rng(4).integers(0, 50, size=400)]
    path = tmp_path / "g.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    # Partitions cut the groups and the forward blocks: the folds must not notice.
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 6_000)
    a = _fit(path, "dask", scheduler, **case)
    b = _fit(path, "gram", **case)
    assert _n_parts(path) > 2
    assert a.cv["fold_sizes"] == b.cv["fold_sizes"]
    assert_exact(a, b)
    if "stability" in case:
        assert [f.stability for f in a.features] == [f.stability for f in b.features]


def test_partitionings_give_the_same_numbers(scheduler, monkeypatch, tricky_csv, parts_folder):
    results = []
    for size in (3_000, 20_000, 1 << 30):
        monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", size)
        results.append(_fit(tricky_csv, "dask", scheduler))
    counts = [r.input["n_rows"] for r in results]
    assert counts == [600] * 3
    for r in results[1:]:
        assert_exact(r, results[0])
    monkeypatch.setattr(dask_engine, "PARQUET_GROUPS_PER_PARTITION", 3)
    coarse = _fit(parts_folder, "dask", scheduler)
    assert _n_parts(parts_folder) == 1 + 1 + 2 + 2
    assert_exact(coarse, results[0])  # the same rows, from CSV and from Parquet parts


def test_a_column_that_turns_to_text_in_a_late_partition_is_reread(scheduler, monkeypatch,
                                                                    tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=n)
    code = [str(i % 3) for i in range(n - 1)] + ["other"]
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": x, "code": code, "y": 2 * x + rng.normal(size=n)}).to_csv(path,
                                                                                 index=False)
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 2_000)
    monkeypatch.setattr(l1io.csv, "CSV_BLOCK", 1024)  # the first block's types say a number
    calls = []
    first_types = l1io.csv.first_types
    monkeypatch.setattr(l1io.csv, "first_types", lambda *a: calls.append(1) or first_types(*a))
    # The one late level is kept as its own feature (--min-level-count 1 pools nothing);
    # family gaussian: no look at the target's first block to guess the family.
    a = _fit(path, "dask", scheduler, n_alphas=10, min_level_count=1, family="gaussian")
    assert len(calls) == 2  # read again, with 'code' as text
    assert "code=other" in [f.name for f in a.features]
    assert_exact(a, _fit(path, "gram", n_alphas=10, min_level_count=1))


def test_a_folder_of_csv_files_and_gzip(scheduler, monkeypatch, tmp_path):
    df = _tricky(n=500, seed=7)
    folder = tmp_path / "csvs"
    folder.mkdir()
    for i, (lo, hi) in enumerate([(0, 120), (120, 130), (130, 500)]):
        df.iloc[lo:hi].to_csv(folder / f"p{i}.csv", index=False, float_format="%.17g")
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 4_000)
    assert_exact(_fit(folder, "dask", scheduler), _fit(folder, "gram"))
    gz = tmp_path / "d.csv.gz"
    df.to_csv(gz, index=False, float_format="%.17g", compression="gzip")
    a = _fit(gz, "dask", scheduler)
    assert _n_parts(gz) == 1  # no seeking in gzip: one partition
    assert_exact(a, _fit(gz, "gram"))


def test_encodings_and_line_ends_as_every_engine_reads_them(scheduler, monkeypatch, tmp_path):
    """Latin-1 first met in a late partition, a UTF-8 BOM, CR-only line ends, UTF-16 and quoted
    line breaks read as the gram engine reads them (the last three as one partition: cutting
    at a LF would be wrong there)."""
    df = _tricky(n=400, seed=3)
    df["cat"] = df["cat"].where(np.arange(400) < 350, "café")  # first accent in row 350
    text = df.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    df["note"] = np.where(np.arange(400) % 7 == 0, "two\nlines", "one line")
    quoted_breaks = df.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 5_000)
    for name, raw, whole in [("latin1.csv", text.encode("latin-1"), False),
                             ("bom.csv", b"\xef\xbb\xbf" + text.encode(), False),
                             ("cr.csv", text.replace("\n", "\r").encode("latin-1"), True),
                             ("utf16.csv", b"\xff\xfe" + text.encode("utf-16-le"), True),
                             ("breaks.csv", quoted_breaks.encode(), True)]:
        path = tmp_path / name
        path.write_bytes(raw)
        a = _fit(path, "dask", scheduler)
        n_parts = _n_parts(path)
        assert n_parts == 1 if whole else n_parts > 1, name
        assert "cat=café" in {f.name for f in a.features}, name
        assert_exact(a, _fit(path, "gram"))


def test_stability_halves(scheduler, monkeypatch, tricky_csv):
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 10_000)
    a = _fit(tricky_csv, "dask", scheduler, stability=3)
    b = _fit(tricky_csv, "gram", stability=3)
    assert_exact(a, b)
    assert a.stability["stable"] == b.stability["stable"]


def test_errors_name_the_same_line(scheduler, monkeypatch, tmp_path):
    df = _tricky(n=300, seed=5, missing=0.0)
    df.loc[:, "late"] = 1.0
    df.loc[250, "late"] = np.nan
    path = tmp_path / "e.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 5_000)
    with pytest.raises(DataError) as local:
        _fit(path, "gram", missing="error")
    with pytest.raises(DataError) as remote:
        _fit(path, "dask", scheduler, missing="error")
    assert str(remote.value) == str(local.value)
    assert "'late'" in str(remote.value) and "line 252" in str(remote.value)
    assert _n_parts(path) > 5  # from a late partition


class _KillOnce(distributed.WorkerPlugin):
    """Kills its worker's process once in the whole cluster: when the first partition's
    pass-2 statistics are done on that worker (so a finished result is lost with it, and
    every task still queued there). ``marker`` is created by the one worker that dies."""

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kw):
        name = key[0] if isinstance(key, tuple) else key
        if finish == "memory" and str(name).startswith("_pass2-"):
            _die_once(self.marker)


def _die_once(marker: str) -> None:
    """End this worker's process, unless another worker has already (``marker`` exists)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # another worker died already: once is enough
    os.close(fd)
    os._exit(1)


def test_a_worker_lost_mid_job_changes_nothing(scheduler, tmp_path, parts_folder):
    marker = tmp_path / "killed"
    with distributed.Client(scheduler) as client:
        before = set(client.scheduler_info()["workers"])
        client.register_plugin(_KillOnce(str(marker)), name="kill-once")
        try:
            a = _fit(parts_folder, "dask", scheduler)
        finally:
            client.unregister_worker_plugin("kill-once")
        assert marker.exists()
        # The scheduler lost that worker (its nanny starts a new one, at a new address).
        assert before - set(client.scheduler_info()["workers"])
    assert_exact(a, _fit(parts_folder, "gram"))


def test_the_address_from_the_environment(scheduler, monkeypatch, tricky_csv):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", scheduler)
    seen = []
    real = distributed.Client

    def client(*args, **kw):
        seen.append(args[0] if args else kw.get("address"))
        return real(*args, **kw)

    monkeypatch.setattr(distributed, "Client", client)
    a = _fit(tricky_csv, "dask")
    assert seen == [scheduler]
    assert_exact(a, _fit(tricky_csv, "gram"))


def test_without_an_address_a_local_cluster(monkeypatch, tricky_csv):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setattr(dask_engine, "LOCAL_WORKERS", 2)
    started = []
    real = distributed.LocalCluster

    def cluster(*args, **kw):
        started.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(distributed, "LocalCluster", cluster)
    a = _fit(tricky_csv, "dask")
    assert started and started[0]["n_workers"] == 2 and started[0]["processes"]
    assert_exact(a, _fit(tricky_csv, "gram"))


def test_without_dask_a_clear_message(monkeypatch, tmp_path):
    real = builtins.__import__

    def no_distributed(name, *args, **kw):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    X, y, _ = make_regression(n=50, p=3)
    path = write_csv(tmp_path / "d.csv", X, y)
    with pytest.raises(ConfigError, match=r"l1select\[dask\]"):
        _fit(path, "dask")


def test_scheduler_needs_the_dask_engine_and_batch_keys(tmp_path):
    X, y, _ = make_regression(n=50, p=3)
    path = write_csv(tmp_path / "d.csv", X, y)
    with pytest.raises(ConfigError, match="--scheduler applies to --engine dask"):
        select_features(str(path), FitParams(target="y", scheduler="tcp://127.0.0.1:1"))
    from l1select.config import load_batch

    (tmp_path / "b.yaml").write_text(textwrap.dedent("""
        defaults: {target: y, engine: dask, scheduler: "tcp://10.0.0.5:8786"}
        jobs:
          - name: one
            source: d.csv
        """))
    job = load_batch(tmp_path / "b.yaml", env={}).jobs[0]
    assert job.params == replace(FitParams(target="y"), engine="dask",
                                 scheduler="tcp://10.0.0.5:8786")


def test_cli_engine_dask_with_scheduler(scheduler, tmp_path):
    from tests.cli.cli_helpers import invoke

    X, y, _ = make_regression(n=200, p=4)
    path = write_csv(tmp_path / "d.csv", X, y)
    res = invoke("fit", path, "--target", "y", "--engine", "dask", "--scheduler", scheduler,
                 "--format", "json", "--n-alphas", "10")
    assert res.exit_code == 0, res.stderr
    import json

    assert json.loads(res.stdout)["params"]["engine"] == "dask"


def test_huge_and_tiny_columns_give_the_gram_engines_numbers(scheduler, tmp_path, monkeypatch):
    """Columns held scaled by a power of two (issue 11): the exponent is merged across the
    partitions' profiles, so every partition holds a column in the same units."""
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 4_000)
    X, y, _ = make_regression(n=300, p=4, seed=3)
    X[:, 0] *= 1e300
    X[:, 1] *= 1e-300
    path = write_csv(tmp_path / "extreme.csv", X, y)
    a = _fit(path, "dask", scheduler)
    assert _n_parts(path) > 1
    assert_exact(a, _fit(path, "gram"))


def test_pooled_rare_levels_same_numbers_as_gram(scheduler, monkeypatch, tmp_path):
    from tests.unit.test_categoricals import _pooled_csv

    path = _pooled_csv(tmp_path / "d.csv")
    # Small partitions: the rare levels are first seen in different partitions.
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 4_000)
    for case in (dict(), dict(test_size=0.3), dict(stability=3)):
        a, b = _fit(path, "dask", scheduler, **case), _fit(path, "gram", **case)
        assert "grade=(other)" in [f.name for f in a.features]
        assert_exact(a, b)
        assert [f.stability for f in a.features] == [f.stability for f in b.features]


def test_group_categoricals_same_numbers_as_gram(scheduler, monkeypatch, tmp_path):
    from tests.unit.test_categoricals import _pooled_csv

    path = _pooled_csv(tmp_path / "d.csv")
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 4_000)
    a = _fit(path, "dask", scheduler, group_categoricals=True, stability=3)
    b = _fit(path, "gram", group_categoricals=True, stability=3)
    assert_exact(a, b)
    assert [f.stability for f in a.features] == [f.stability for f in b.features]


# -- binary targets (family binomial) ---------------------------------------------------------

# The binomial Dask engine sums each Newton step's Gram and gradient per partition and solves
# the inner problem by covariance updates on the client: in exact arithmetic the local
# engine's iterates; in floating point they differ in the last bits (sums in another order),
# and every decision (sweeps, step halving on the objective's change summed row by row, KKT)
# comes out the same, leaving about 1e-15. 1e-8 is the contract; 1e-10 here keeps five orders
# of magnitude for rounding and still catches a different step (a Newton step, a halving or a
# sweep more or less moves a coefficient by 1e-8 or more on these data).
BINOMIAL_RTOL = 1e-10


def assert_same_binomial(a, b):
    """``a`` (dask) gives ``b``'s (the local binomial engine's) numbers (see above)."""
    assert a.engine == "dask" and b.engine == "data"
    tol = BINOMIAL_RTOL
    assert (a.cv is None) == (b.cv is None)
    pa_, pb = (a.cv or {"path": []})["path"], (b.cv or {"path": []})["path"]
    assert len(pa_) == len(pb)
    np.testing.assert_allclose([r["alpha"] for r in pa_], [r["alpha"] for r in pb], rtol=tol)
    np.testing.assert_allclose([r["mean"] for r in pa_], [r["mean"] for r in pb], rtol=tol)
    np.testing.assert_allclose([r["se"] for r in pa_], [r["se"] for r in pb], rtol=tol,
                               atol=tol * max([r["se"] for r in pb] + [0.0]))
    assert [r["n_nonzero"] for r in pa_] == [r["n_nonzero"] for r in pb]
    if a.cv is not None:
        assert a.cv["metric"] == b.cv["metric"]
        assert a.cv["fold_sizes"] == pytest.approx(b.cv["fold_sizes"], rel=1e-12)
        for key in ("deviance", "misclassification", "deviance_explained"):
            assert a.cv[key] == pytest.approx(b.cv[key], rel=tol), key
        assert a.cv["auc"] is None and "roc" not in a.cv  # they need all held-out rows ranked
    assert [f.name for f in a.features] == [f.name for f in b.features]
    ca = np.array([f.coef for f in a.features])
    cb = np.array([f.coef for f in b.features])
    np.testing.assert_allclose(ca, cb, rtol=tol, atol=tol * np.abs(cb).max())
    assert a.intercept == pytest.approx(b.intercept, rel=tol, abs=tol)
    assert a.selected == b.selected
    assert a.alpha["chosen"] == pytest.approx(b.alpha["chosen"], rel=tol)
    assert [w.code for w in a.warnings] == [w.code for w in b.warnings]
    for key in ("n_rows", "n_rows_used", "n_rows_test", "n_rows_dropped", "classes"):
        assert a.input.get(key) == b.input.get(key), key


def _binary(n=600, seed=0, missing=0.05) -> pd.DataFrame:
    """The tricky data with a two-valued text target (and weights and groups)."""
    df = _tricky(n=n, seed=seed, missing=missing)
    rng = np.random.default_rng(seed + 100)
    score = df["y"] + rng.logistic(size=n)
    df["y"] = np.where(score > np.median(score), "yes", "no")
    df["w"] = rng.integers(0, 4, size=n).astype(float) + 0.5 * (rng.random(n) < 0.3)
    df["grp"] = [f"g{v}" for v in rng.integers(0, 40, size=n)]
    df["fold"] = np.where(np.arange(n) < n // 3, "c", np.where(np.arange(n) % 2, "a", "b"))
    return df


@pytest.fixture(scope="module")
def binary_folder(tmp_path_factory):
    """A folder of Parquet parts with uneven row groups and a binary target."""
    return _uneven_parts(tmp_path_factory.mktemp("binparts"), _binary())


@pytest.fixture(scope="module")
def binary_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("bincsv") / "b.csv"
    _binary(n=500, seed=2).to_csv(path, index=False, float_format="%.17g")
    return path


def _binomial_fit(path, engine, scheduler=None, **kw):
    kw.setdefault("exclude", ("w", "grp", "fold"))
    return _fit(path, engine, scheduler, **kw)


def test_binomial_same_numbers_as_local_on_uneven_parts(scheduler, binary_folder):
    a = _binomial_fit(binary_folder, "dask", scheduler)
    b = _binomial_fit(binary_folder, "auto")
    assert a.params["family"] == "binomial" and a.input["classes"]["positive"] == "yes"
    assert "cat=c" in [f.name for f in a.features]  # a level first seen in a late part
    assert_same_binomial(a, b)


# Options in pairs (each is independent of its partner): every one is covered, with three fewer
# Dask fits than one case each (each fit is some 300 rounds of tasks).
@pytest.mark.parametrize("case", [
    dict(weights="w", measure="class"), dict(missing="drop", cv_scheme="forward", cv=3),
    dict(group_column="grp", repeats=2), dict(fold_column="fold", adaptive=True, weights="w"),
    dict(model="elasticnet", l1_ratios=(0.5, 1.0)), dict(alpha=0.01)],
    ids=["weights-class", "drop-forward", "group-repeats", "fold-column-adaptive", "enet",
         "fixed"])
def test_binomial_options_on_csv_partitions(scheduler, monkeypatch, binary_csv, case):
    monkeypatch.setattr(dask_engine, "CSV_PARTITION_BYTES", 9_000)
    assert _n_parts(binary_csv) > 5
    exclude = tuple(c for c in ("w", "grp", "fold") if c not in case.values())
    a = _binomial_fit(binary_csv, "dask", scheduler, exclude=exclude, **case)
    assert_same_binomial(a, _binomial_fit(binary_csv, "auto", exclude=exclude, **case))


@pytest.mark.parametrize("case", [dict(test_size=0.2), dict(stability=5), dict(refit="ols"),
                                  dict(measure="auc")],
                         ids=["test", "stability", "refit", "auc"])
def test_binomial_refuses_what_needs_the_rows_after_the_fit(binary_csv, case):
    flag = "--" + next(iter(case)).replace("_", "-")
    with pytest.raises(ConfigError, match=f"{flag}.* is not available with --engine dask for "
                                          "a binary target"):
        _binomial_fit(binary_csv, "dask", "tcp://127.0.0.1:1", family="binomial", **case)


def test_binomial_parts_without_rows(scheduler, tmp_path):
    """An empty file and a row group whose targets are all missing: partitions with no rows."""
    rng = np.random.default_rng(5)
    n = 900
    X = rng.normal(size=(n, 5))
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    df["y"] = np.where(X[:, 0] - X[:, 1] + rng.logistic(size=n) > 0, 1.0, 0.0)
    df.loc[300:399, "y"] = np.nan
    for name, (lo, hi), size in (("a", (0, 400), 100), ("b", (400, 400), None),
                                 ("c", (400, n), 123)):
        pq.write_table(pa.Table.from_pandas(df.iloc[lo:hi], preserve_index=False),
                       tmp_path / f"{name}.parquet", row_group_size=size)
    a = _fit(tmp_path, "dask", scheduler)
    assert a.input["n_rows_used"] == 800 and a.input["n_rows_dropped"] == 100
    assert_same_binomial(a, _fit(tmp_path, "auto"))


class _KillAtNewton(distributed.WorkerPlugin):
    """Kills its worker's process once in the whole cluster, when it has finished its
    ``after``-th Newton task: the prepared partitions it holds are lost mid-path, and the
    scheduler must rebuild them from the source."""

    def __init__(self, marker: str, after: int):
        self.marker = marker
        self.after = after
        self.seen = 0

    def transition(self, key, start, finish, **kw):
        name = key[0] if isinstance(key, tuple) else key
        if finish != "memory" or not str(name).startswith("_newton-"):
            return
        self.seen += 1
        if self.seen >= self.after:
            _die_once(self.marker)


def test_binomial_a_worker_lost_mid_fit_changes_nothing(scheduler, tmp_path, binary_folder):
    from l1select.engines import dask_binomial

    marker = tmp_path / "killed"
    with distributed.Client(scheduler) as client:
        before = set(client.scheduler_info()["workers"])
        client.register_plugin(_KillAtNewton(str(marker), after=40), name="kill-newton")
        try:
            a = _binomial_fit(binary_folder, "dask", scheduler, weights="w",
                              exclude=("grp", "fold"))
        finally:
            client.unregister_worker_plugin("kill-newton")
        assert marker.exists()
        assert before - set(client.scheduler_info()["workers"])
    assert dask_binomial.LAST_RUN.path_passes > 10  # it died mid-path, not at the end
    assert_same_binomial(a, _binomial_fit(binary_folder, "auto", weights="w",
                                          exclude=("grp", "fold")))


@pytest.mark.parametrize("fails", [False, True])
def test_a_delivery_on_the_cluster_is_solved_open_then_closed(monkeypatch, fails):
    # The pipeline's _run holds an OnCluster open while the solving stage runs, and closes it
    # after, also when the solve raises (no cluster: a stub engine and a stub solver).
    from contextlib import ExitStack

    from l1select import pipeline
    from l1select.engines.base import OnCluster
    from l1select.solve import cluster_binomial

    closed = []
    stack = ExitStack()
    stack.callback(lambda: closed.append(True))
    delivered = OnCluster(engine="dask", passes=None, recipe=None, unit=np.ones(1), plan=None,
                          test_sizes=np.zeros(0), classes=None, warnings=(), n_rows=0,
                          n_dropped=0, closer=stack)

    class Engine:
        name = "dask"

        def run(self, job):
            return delivered

    seen = []

    def solve(got, job):
        seen.append((got is delivered, bool(closed)))
        if fails:
            raise DataError("stub")
        return "solved"

    monkeypatch.setattr(cluster_binomial, "solve", solve)
    job = pipeline.Job(None, None, None, [], FitParams(target="y"))
    if fails:
        with pytest.raises(DataError):
            pipeline._run(Engine(), job)
    else:
        assert pipeline._run(Engine(), job) == "solved"
    assert seen == [(True, False)]  # solved while still open
    assert closed == [True]

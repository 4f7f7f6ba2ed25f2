#!/usr/bin/env python
"""The Dask engine against the local (gram) engine on ``tall``, and the bytes that travel.

    python benchmarks/dask_bench.py                 # tall (1,000,000 × 50), half, 2 groups
    python benchmarks/dask_bench.py --repeats 3
    python benchmarks/dask_bench.py --binomial      # a binary target: 100,000 × 30, 8 parts
    python benchmarks/dask_bench.py --binomial --rows 200000 --features 50

Runs the gram engine, then ``--engine dask`` on a 2-worker local cluster (started once, not
timed), on ``benchmarks/data/tall_s0.parquet`` (made by ``run.py --only tall
--generate-only`` when missing), on a copy of its first half with the same row-group size,
and on a copy of all of it in 2 row groups (as many partitions as the half).
Reports the wall times, whether the numbers agree (1e-10 relative), and the bytes moved:

- client → cluster: the pickled task arguments (job, partition specs, the seeded profile),
  counted here by wrapping the client's submit and map (the engine measures nothing);
- cluster → client: the pickled results the client fetches (one merged profile, one set of
  statistics);
- worker → worker: the serialized bytes distributed logged as sent between workers (the
  pairwise merges of partition results), and the bytes it logged as sent to the client.

Writes the numbers to benchmarks/results/dask_latest.json.

``--binomial`` runs a logistic fit instead (``benchmarks/binomial.py``'s data, written in
``--parts`` row groups): the local binomial engine (the rows in memory) against ``--engine
dask``, with the bytes moved each way (the wrapper above, and the engine's own count,
``dask_binomial.LAST_RUN``: task arguments and fetched results), the passes over the
prepared partitions (all of them, and those of the Newton steps), and the passes per alpha.
Writes benchmarks/results/dask_binomial_latest.json.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _worker_bytes(client) -> tuple[int, int]:
    """Bytes the workers have sent so far, on the wire: (to other workers, to the client).
    distributed logs each transfer; "compressed" is the serialized size ("total" is only
    its size estimate)."""
    def sent(dask_worker) -> tuple[int, int]:
        log = list(dask_worker.transfer_outgoing_log)
        peers = sum(int(d.get("compressed", d["total"])) for d in log if d.get("who"))
        client = sum(int(d.get("compressed", d["total"])) for d in log if not d.get("who"))
        return peers, client
    per = client.run(sent).values()
    return sum(p for p, _ in per), sum(c for _, c in per)


class _ClientBytes:
    """Counts what the client sends and fetches while active, measured here (the engine does
    not measure itself): the pickled arguments of every task it submits (futures among them
    excluded: they name data already on the cluster) and the pickled results it fetches."""

    def __init__(self):
        import distributed

        self._client, self._future = distributed.Client, distributed.Future
        self.sent = self.received = 0

    def _size(self, args) -> int:
        return len(pickle.dumps([a for a in args if not isinstance(a, self._future)]))

    def __enter__(self):
        client, future = self._client, self._future
        self._saved = client.map, client.submit, future.result
        real_map, real_submit, real_result = self._saved

        def map_(c, func, *iterables, **kw):
            self.sent += sum(self._size(args) for args in zip(*iterables, strict=True))
            return real_map(c, func, *iterables, **kw)

        def submit(c, func, *args, **kw):
            self.sent += self._size(args)
            return real_submit(c, func, *args, **kw)

        def result(f, *args, **kw):
            out = real_result(f, *args, **kw)
            self.received += len(pickle.dumps(out))
            return out

        client.map, client.submit, future.result = map_, submit, result
        return self

    def __exit__(self, *exc):
        self._client.map, self._client.submit, self._future.result = self._saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--binomial", action="store_true", help="a binary target (logistic fit)")
    ap.add_argument("--rows", type=int, default=100_000, help="--binomial: rows")
    ap.add_argument("--features", type=int, default=30, help="--binomial: features")
    ap.add_argument("--parts", type=int, default=8, help="--binomial: row groups")
    args = ap.parse_args(argv)
    if args.binomial:
        return binomial(args)

    import numpy as np
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster

    from l1select.engines import dask as dask_engine
    from l1select.io import detect
    from l1select.pipeline import select_features
    from l1select.types import FitParams

    tall = HERE / "data" / "tall_s0.parquet"
    if not tall.exists():
        subprocess.run([sys.executable, str(HERE / "run.py"), "--only", "tall",
                        "--generate-only"], check=True)
    half = HERE / "data" / "tall_half_s0.parquet"
    if not half.exists():
        pf = pq.ParquetFile(tall)
        rows = pf.metadata.row_group(0).num_rows
        table = pf.read_row_groups(list(range(pf.metadata.num_row_groups // 2)))
        pq.write_table(table, half, row_group_size=rows)

    # The same rows as tall in 2 partitions (row groups of 500,000): worker-to-worker bytes
    # follow the number of partitions, not the rows.
    tall2 = HERE / "data" / "tall_2groups_s0.parquet"
    if not tall2.exists():
        pf = pq.ParquetFile(tall)
        pq.write_table(pf.read(), tall2, row_group_size=pf.metadata.num_rows // 2)

    params = FitParams(target="price")
    out: dict = {"workers": args.workers, "datasets": {}}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as cluster, \
            Client(cluster) as client:
        dask_params = replace(params, engine="dask", scheduler=cluster.scheduler_address)
        for name, path in (("tall", tall), ("tall_half", half), ("tall_2groups", tall2)):
            times = {"gram": [], "dask": []}
            for _ in range(args.repeats):
                t = time.perf_counter()
                local = select_features(str(path), replace(params, engine="gram"))
                times["gram"].append(time.perf_counter() - t)
                before = _worker_bytes(client)
                t = time.perf_counter()
                with _ClientBytes() as moved:
                    remote = select_features(str(path), dask_params)
                times["dask"].append(time.perf_counter() - t)
                after = _worker_bytes(client)
                between, to_client = after[0] - before[0], after[1] - before[1]
            a = np.array([r["mean"] for r in local.cv["path"]])
            b = np.array([r["mean"] for r in remote.cv["path"]])
            ca = np.array([f.coef for f in local.features])
            cb = np.array([f.coef for f in remote.features])
            row = {
                "rows": local.input["n_rows"],
                "partitions": len(dask_engine.partitions(detect(str(path)))[0]),
                "gram_s": min(times["gram"]),
                "dask_s": min(times["dask"]),
                "client_sent_bytes": moved.sent,
                "client_received_bytes": moved.received,
                "worker_to_worker_bytes": between,
                "worker_to_client_wire_bytes": to_client,
                "cv_mean_max_rel_diff": float(np.max(np.abs(a - b) / np.abs(a))),
                "coef_max_abs_diff": float(np.max(np.abs(ca - cb))),
                "same_selected": local.selected == remote.selected,
            }
            out["datasets"][name] = row
            print(f"{name:12s} rows={row['rows']:>9,} partitions={row['partitions']:>3} "
                  f"gram={row['gram_s']:.2f}s dask={row['dask_s']:.2f}s "
                  f"client→cluster={row['client_sent_bytes']:,} B "
                  f"cluster→client={row['client_received_bytes']:,} B "
                  f"worker↔worker={row['worker_to_worker_bytes']:,} B "
                  f"(wire to client {row['worker_to_client_wire_bytes']:,} B) "
                  f"cv rel diff={row['cv_mean_max_rel_diff']:.1e} "
                  f"same selected={row['same_selected']}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dask_latest.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


def binomial(args) -> int:
    """The binomial case (see the module docstring)."""
    import numpy as np
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster

    from benchmarks.binomial import generate
    from l1select.engines import dask_binomial
    from l1select.pipeline import select_features
    from l1select.types import FitParams

    path = HERE / "data" / f"binomial_{args.rows}x{args.features}_{args.parts}parts.parquet"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        generate(path, args.rows, args.features, 0)
        table = pq.read_table(path)
        pq.write_table(table, path, row_group_size=-(-args.rows // args.parts))
    params = FitParams(target="y")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as cluster, \
            Client(cluster) as client:
        dask_params = replace(params, engine="dask", scheduler=cluster.scheduler_address)
        times = {"local": [], "dask": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            local = select_features(str(path), params)
            times["local"].append(time.perf_counter() - t)
            before = _worker_bytes(client)
            t = time.perf_counter()
            with _ClientBytes() as moved:
                remote = select_features(str(path), dask_params)
            times["dask"].append(time.perf_counter() - t)
            after = _worker_bytes(client)
        traffic = dask_binomial.LAST_RUN
    a = np.array([r["mean"] for r in local.cv["path"]])
    b = np.array([r["mean"] for r in remote.cv["path"]])
    ca = np.array([f.coef for f in local.features])
    cb = np.array([f.coef for f in remote.features])
    row = {
        "rows": local.input["n_rows"], "features": args.features, "partitions": args.parts,
        "workers": args.workers, "engine_local": local.engine,
        "local_s": min(times["local"]), "dask_s": min(times["dask"]),
        "alphas": traffic.alphas, "passes": traffic.passes,
        "newton_passes": traffic.path_passes,
        "newton_passes_per_alpha": traffic.path_passes / max(traffic.alphas, 1),
        "engine_sent_bytes": traffic.to_cluster, "engine_received_bytes": traffic.from_cluster,
        "client_sent_bytes": moved.sent, "client_received_bytes": moved.received,
        "worker_to_worker_bytes": after[0] - before[0],
        "worker_to_client_wire_bytes": after[1] - before[1],
        "data_bytes": args.rows * args.features * 8,
        "cv_mean_max_rel_diff": float(np.max(np.abs(a - b) / np.abs(a))),
        "coef_max_abs_diff": float(np.max(np.abs(ca - cb))),
        "same_selected": local.selected == remote.selected,
    }
    for key, value in row.items():
        print(f"{key:28s} {value:,.4g}" if isinstance(value, float) else
              f"{key:28s} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
              else f"{key:28s} {value}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dask_binomial_latest.json").write_text(json.dumps(row, indent=2)
                                                                + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

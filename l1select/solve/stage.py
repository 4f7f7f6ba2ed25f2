"""The solving stage: what an engine delivered, turned into paths, CV curves, the test
error, stability's half-samples and the refit (a :class:`~l1select.types.Solved`).

One entry for every engine: per-cell statistics (``engines.base.Statistics``, from the
streaming or the Dask engine) go to the Gram solver; a matrix in memory
(``engines.memory.InMemory``) to the logistic solver for a binary target, to scikit-learn with
``--engine reference``, and to the data-matrix solver otherwise; a binary target's partitions
held on a Dask cluster (``engines.base.OnCluster``) to the lockstep Newton solver that runs
its passes there (``solve/cluster_binomial.py``).
"""

from __future__ import annotations

from l1select.engines.base import InMemory, Job, OnCluster, Statistics
from l1select.types import Solved


def solve(delivered: Statistics | InMemory | OnCluster, job: Job) -> Solved:
    """Solve ``job`` on what its engine delivered (the solvers load lazily: each pulls in its
    own kernels)."""
    if isinstance(delivered, OnCluster):
        from l1select.solve import cluster_binomial

        return cluster_binomial.solve(delivered, job)
    if isinstance(delivered, Statistics):
        from l1select.solve import gram

        return gram.solve(delivered, job)
    if job.params.engine == "reference":
        from l1select.solve import reference

        return reference.solve(delivered, job)
    if job.classes is not None:
        from l1select.solve import binomial

        return binomial.solve(delivered, job)
    from l1select.solve import data

    return data.solve(delivered, job)

"""The engine boundary: what every engine is given (:class:`Job`), what it delivers (the
per-cell statistics of one pass, :class:`Statistics`; the prepared matrix in memory,
:class:`InMemory`; or a binary target's prepared partitions held on a Dask cluster,
:class:`OnCluster`), and the :class:`Engine` protocol between them.

An engine decides *where* the rows are turned into something a solver can use (this process,
streaming or in memory; Dask workers), never *what* is computed from it: the solving stage
(``l1select/solve``) turns each delivery into grids, paths, CV curves, stability fits and the
refit, and the pipeline calls the two in order.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from l1select.types import Recipe, Warn

if TYPE_CHECKING:
    from l1select import io as l1io
    from l1select.folds import FoldPlan, Grouper
    from l1select.moments import Moments
    from l1select.prepare import Profiler
    from l1select.types import FitParams


class Progress(Protocol):
    """Where an engine and a solver report how far they are (``pipeline._Progress``)."""

    def read(self, n: int) -> None: ...

    def path(self, done: int, total: int) -> None: ...

    def stability(self, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class Job:
    """One fit's input, as every engine and solver receive it.

    ``source``, ``header`` and ``data`` come from ``io.open_header`` (``data``: the bytes of
    stdin, read once, else None); ``columns`` are the columns to read (features, target, fold,
    group and weights columns); ``progress`` is None or a :class:`Progress`. ``classes`` is
    given for a binary target: a function from the whole target column to its two classes
    (``family.binary_classes``) that raises ``family.NotBinary`` when it is not binary.
    """

    source: l1io.Source
    header: l1io.Header
    data: bytes | None
    columns: list[str]
    params: FitParams
    progress: Progress | None = None
    classes: Callable[[Any], Any] | None = None

    @property
    def display(self) -> str:
        """The source as messages name it."""
        return self.source.display


@dataclass(frozen=True)
class Statistics:
    """What a statistics engine delivers after its pass: the whole data's profile (the
    recipe, fills and units to come), the per-cell co-moments ``stats`` (cell 0 the test
    split, then the folds' cells; see ``folds.FoldPlan``), the ``grouper`` that dealt the rows
    to cells, the scan record (rows read, sha256), the micro-group statistics of stability's
    half-samples (None without ``--stability``) and the number of distinct target values seen
    (counted up to 3). ``engine`` names the engine for the result."""

    engine: str
    prof: Profiler
    stats: Moments
    grouper: Grouper
    scan: l1io.Scan
    micro: Moments | None
    n_target_values: int


@dataclass(frozen=True)
class InMemory:
    """The fitting rows: X (n, p) with NaN where missing, y (n,), ``folds``: the (training,
    held-out) row positions of each CV fold; and the test rows ``X_test``, ``y_test``.
    ``micro`` (n,): the label cell of each row when stability's half-samples are unions of
    whole labels (a fold or group column), else None."""

    X: np.ndarray
    y: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    n_folds: int
    fold_labels: tuple[str, ...]
    X_test: np.ndarray
    y_test: np.ndarray
    recipe: Recipe
    warnings: tuple[Warn, ...]
    n_rows: int
    n_dropped: int
    sha256: str | None
    rows: np.ndarray | None = None  # global row index of each fitting row (micro-groups)
    # X holds each column × its unit, a power of two (1 for most; see Profiler.units).
    unit: np.ndarray | None = None
    micro: np.ndarray | None = None

    def units(self) -> np.ndarray:
        return np.ones(self.X.shape[1]) if self.unit is None else self.unit

    w: np.ndarray | None = None  # observation weights of the fitting rows (None: all 1)
    w_test: np.ndarray | None = None
    classes: Any = None  # a binary target's family.Classes


class Passes(Protocol):
    """Map-reduce passes over the partitions a cluster holds (``OnCluster.passes``)."""

    def over_parts(self, task: Callable[..., Any], merge: Callable[[Any, Any], Any],
                   *args: Any) -> Any:
        """``task(partition, *args)`` on every prepared partition, on the workers, the results
        merged pairwise there by ``merge(a, b)`` (in partition order); the one merged result.
        ``task`` and ``merge`` must be importable functions (they travel by name)."""
        ...

    def count(self, path_passes: int = 0, alphas: int = 0) -> None:
        """Record Newton passes of the paths and the alphas they solved (for benchmarks)."""
        ...


@dataclass(frozen=True)
class OnCluster:
    """What the Dask engine delivers for a binary target: the rows stay on the cluster.

    The prepared partitions (``engines.dask_binomial.Rows``: the fitting rows' design ``X``
    (n, p; NaN where missing; each column × its unit), the 0/1 target ``y``, the weights
    ``w`` (None: all 1), and the rows of each fit ``fits`` (n_fits, n) (0: all rows, then each
    fold's training rows) and each fold's held-out rows ``tests`` (n_folds, n)) are held in
    worker memory; ``passes`` runs tasks over them. Also the ``recipe``, the feature
    ``unit`` (p,), the fold ``plan`` (``folds.FoldPlan``), the held-out row count of every
    fold ``test_sizes``, the target's ``classes`` (``family.Classes``), the warnings so far,
    and the rows read and dropped.

    The delivery owns the cluster's client (``closer``): the solver runs while it is open,
    and the pipeline closes it after the solve (``with delivered: ...``).
    """

    engine: str
    passes: Passes
    recipe: Recipe
    unit: np.ndarray
    plan: FoldPlan
    test_sizes: np.ndarray
    classes: Any
    warnings: tuple[Warn, ...]
    n_rows: int
    n_dropped: int
    closer: ExitStack

    def close(self) -> None:
        """Release the partitions and close the client (a local cluster: shut it down)."""
        self.closer.close()

    def __enter__(self) -> OnCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TooWide(Exception):  # noqa: N818 — a signal, not an error: the pipeline reroutes
    """With ``--engine auto``: the design, one-hot levels counted, is too wide for the Gram
    route (more than ``streaming.GRAM_MAX_FEATURES`` features, or fewer rows than twice the
    features); the pipeline loads it in memory for the data-matrix solver instead."""


class Engine(Protocol):
    """Where the rows of a job become what the solving stage needs.

    ``name`` is the engine's name in the result (``params.engine``); ``run`` reads the job's
    source once (or as often as its delivery needs), checks the design, and returns
    :class:`Statistics` (streaming, Dask), an :class:`InMemory` matrix, or for a binary
    target on Dask the prepared partitions :class:`OnCluster` (which the caller closes once
    solved). It raises
    ``L1SelectError`` subclasses for bad input, and :class:`TooWide` when, under ``--engine
    auto``, the streaming route finds the design too wide.
    """

    name: str

    def run(self, job: Job) -> Statistics | InMemory | OnCluster: ...

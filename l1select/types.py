"""Frozen dataclasses passed between the stages."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from itertools import repeat
from typing import TYPE_CHECKING, Any, Protocol

from l1select import options as _options

if TYPE_CHECKING:  # numpy is imported by the stages that compute, never by --help
    from collections.abc import Callable

    from numpy.typing import NDArray


@dataclass(frozen=True)
class Warn:
    """A warning the result carries: a stable ``code`` and a message for the user."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class _Many:
    """``many``: the rows of a frozen dataclass made in bulk."""

    @classmethod
    def many(cls, **columns: list[Any]) -> tuple:
        """One object per row of ``columns`` (a field's name: its values, all of one
        length; a field left out takes its default): what ``cls(**row)`` makes for each row,
        made in bulk.

        A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
        0.1 s for 20,000 features of wide data; here each object's ``__dict__`` is filled
        at once.
        """
        what = cls.__name__
        names = [f.name for f in fields(cls)]
        unknown = set(columns) - set(names)
        if unknown:
            raise TypeError(f"{what} has no field {sorted(unknown)[0]!r}")
        if len({len(values) for values in columns.values()}) > 1:
            raise ValueError(f"{what}.many() needs columns of one length")
        given = []
        for f in fields(cls):
            if f.name in columns:
                given.append(columns[f.name])
            elif f.default is not MISSING:
                given.append(repeat(f.default))
            else:
                raise TypeError(f"{what}.many() needs the field {f.name!r}")
        make = object.__new__
        out = []
        for row in zip(*given, strict=False):  # the defaults repeat without end
            obj = make(cls)
            obj.__dict__.update(zip(names, row, strict=True))
            out.append(obj)
        return tuple(out)


@dataclass(frozen=True)
class FeatureSpec(_Many):
    """One model feature and how it is made from a source column.

    ``kind`` is ``numeric`` (the column's value), ``bool`` (0/1), ``onehot`` (1 where the
    column equals ``level``, else 0) or ``other`` (``column=(other)``: 1 where the column has
    a value that is none of its column's ``levels``: the pooled rare levels, and at
    ``predict`` levels never seen).
    """

    name: str
    column: str
    kind: str
    level: str | None = None


@dataclass(frozen=True)
class ColumnSpec(_Many):
    """How one source column is read: ``numeric``, ``bool``, ``thousands`` (a number written
    with thousands separators), or ``categorical`` with its ``levels`` (each its own feature)
    and the rare levels ``pooled`` into the one feature ``column=(other)``."""

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    pooled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """Everything needed to turn a table into the design matrix, in the same way every time."""

    target: str
    columns: tuple[ColumnSpec, ...]
    features: tuple[FeatureSpec, ...]
    fold_column: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def source_columns(self) -> list[str]:
        return [c.name for c in self.columns]


# One field per row of the option table (declared there, once).
FitParams = _options.FitParams


@dataclass(frozen=True)
class PathFit:
    """The coefficient path and CV errors for one l1_ratio.

    ``coefs`` (n_features, n_alphas) are on the standardized scale of the all-rows fit;
    ``mse_path`` (n_alphas, n_folds) holds the held-out MSE of each fold (None without CV).
    """

    l1_ratio: float
    alphas: NDArray
    coefs: NDArray
    mse_path: NDArray | None
    fold_sizes: NDArray | None
    converged: bool = True
    fold_coefs: NDArray | None = None
    # binomial: the all-rows intercepts (n_alphas,) on the standardized scale (gaussian: the
    # target mean), every CV measure by name (n_alphas, n_folds), the deviance explained
    intercepts: NDArray | None = None
    measures: dict[str, NDArray] | None = None
    dev_ratio: NDArray | None = None
    # binomial: the ROC curve of the out-of-fold predictions at an alpha
    roc: RocCurve | None = None


@dataclass(frozen=True)
class Scaling:
    """Column means and scales of the design on all training rows (after imputation)."""

    x_mean: NDArray
    x_scale: NDArray
    x_std: NDArray
    y_mean: float
    y_var: float
    n_samples: int


@dataclass(frozen=True)
class FeatureResult(_Many):
    """One candidate feature in the result.

    ``fold_frequency``: the fraction of CV training folds whose fit selects it at the chosen
    alpha (None without CV); ``stability``: its selection probability over the half-sample
    fits (None without ``--stability``); ``penalty_factor``: the factor its penalty was
    weighed by (rescaled to average 1; 0 when forced); ``alternates``: for a selected
    feature, the unselected features correlated with it at least ``--corr-threshold`` (None
    when not selected); ``coef_ols``: the post-selection least-squares coefficient (None
    unless ``--refit ols`` and selected).
    """

    name: str
    column: str
    coef: float
    coef_std: float
    selected: bool
    fold_frequency: float | None = None
    stability: float | None = None
    penalty_factor: float = 1.0
    alternates: tuple[str, ...] | None = None
    coef_ols: float | None = None
    odds_ratio: float | None = None  # binomial: exp(coef_std), the odds ratio per SD


@dataclass(frozen=True)
class SelectionResult:
    """What a ``fit`` returns: everything the reports render, nothing to compute there."""

    input: dict[str, Any]
    params: dict[str, Any]
    alpha: dict[str, Any]
    cv: dict[str, Any] | None
    intercept: float
    features: tuple[FeatureResult, ...]
    selected: tuple[str, ...]
    warnings: tuple[Warn, ...]
    recipe: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    engine: str = "reference"
    coef_path: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    refit: dict[str, Any] | None = None
    intercept_ols: float | None = None
    penalty: dict[str, Any] | None = None
    # One answer per source column (select.column_summary): {column, kind, n_features,
    # n_selected, selected, features}.
    columns: tuple[dict[str, Any], ...] = ()

    @property
    def sparsity(self) -> dict[str, Any]:
        n = len(self.features)
        k = len(self.selected)
        return {"n_features": n, "n_selected": k, "fraction_selected": (k / n) if n else 0.0}


class TestError(Protocol):
    """The held-out test split's measures of a model given on the original scale: gaussian
    ``{n_rows, mse, r2}``, binomial ``{n_rows, deviance, auc, accuracy, …}``."""

    def __call__(self, coef: NDArray, intercept: float) -> dict[str, Any]: ...


class HalfSampler(Protocol):
    """Stability selection's complementary half-sample paths at one l1_ratio over ``alphas``:
    the selection indicators (2B, n_features, n_alphas), whether every fit converged, and the
    number of micro-groups the halves are unions of. ``progress(done, total)`` as they go."""

    def __call__(self, l1_ratio: float, alphas: NDArray,
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[NDArray, bool, int]: ...


class Refit(Protocol):
    """The unpenalized refit on the selected feature indices (binomial): coefficients on the
    original scale (n_features,), the intercept, and whether it diverged."""

    def __call__(self, selected: NDArray) -> tuple[NDArray, float, bool]: ...


class RocCurve(Protocol):
    """The ROC curve (``{fpr, tpr, …}``) of the out-of-fold predictions at alpha ``i``."""

    def __call__(self, i: int) -> dict[str, Any]: ...


class GramColumns(Protocol):
    """Columns ``idx`` of the all-rows standardized Gram, shape (n_features, len(idx))."""

    def __call__(self, idx: NDArray) -> NDArray: ...


@dataclass(frozen=True)
class Solved:
    """What the solving stage hands to ``select``: the paths, and what the report and the
    trust checks need to know.

    ``test_error`` measures a model on the test split (None without one). ``penalty``
    (n_features,) holds the penalty factors the paths were solved with (None: all 1),
    ``adaptive`` how the adaptive weights were made. ``halves``, with ``--stability``, solves
    the complementary half-sample paths (see ``solve/stability.py``). ``n_target_values`` is
    the number of distinct target values, counted up to 3. ``refit`` and ``classes``: the
    binomial family's unpenalized refit and the target's two classes (``family.Classes``).
    """

    engine: str
    recipe: Recipe
    warnings: tuple[Warn, ...]
    fits: tuple[PathFit, ...]
    scaling: Scaling
    alpha_max: tuple[float, ...]
    n_rows: int
    n_used: int
    n_test: int
    n_dropped: int
    sha256: str | None
    n_folds: int
    fold_labels: tuple[str, ...] = ()
    test_error: TestError | None = None
    penalty: NDArray | None = None
    adaptive: dict[str, Any] | None = None
    problem: AllRows | None = None
    halves: HalfSampler | None = None
    n_target_values: int | None = None
    family: str = "gaussian"
    measure: str = "mse"  # the CV measure the curve is of
    refit: Refit | None = None
    classes: Any = None  # family.Classes: a later stage's type, not importable here


@dataclass(frozen=True)
class AllRows:
    """The all-rows problem on the scale the path was solved on (``Scaling.x_scale``).

    ``gram_cols(idx)`` gives the columns ``idx`` of ``G = Xsᵀ Xs / n`` (a new array, the
    caller's to change); ``gram_diag``
    (n_features,) its diagonal; ``xty`` (n_features,) ``Xsᵀ yc / n``. The full Gram is never
    required: the data engine forms columns on demand.
    """

    gram_cols: GramColumns
    gram_diag: NDArray
    xty: NDArray

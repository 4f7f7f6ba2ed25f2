"""l1select: pick the features that matter for a target (a number, or yes/no) with
cross-validated Lasso, ElasticNet or L1 logistic regression.

The public API: :func:`select_features`, :func:`run_batch` and :class:`SelectionResult`.
Heavy modules (numpy, scikit-learn) load only when a function is called, so ``import l1select``
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["SelectionResult", "FitParams", "select_features", "run_batch", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from l1select.batch import run_batch
    from l1select.pipeline import select_features
    from l1select.types import FitParams, SelectionResult


def __getattr__(name: str):
    if name == "select_features":
        from l1select.pipeline import select_features

        return select_features
    if name == "run_batch":
        from l1select.batch import run_batch

        return run_batch
    if name in ("SelectionResult", "FitParams"):
        from l1select import types

        return getattr(types, name)
    raise AttributeError(name)

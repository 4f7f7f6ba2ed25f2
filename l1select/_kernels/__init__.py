"""Numba hot loops: coordinate descent along an alpha path, one module per solver.

- :mod:`~l1select._kernels.common`: what both solvers share (the objective, the duality gap
  and stopping rule, the coordinate update, the working set, the small Cholesky solves).
- :mod:`~l1select._kernels.gram`: :func:`cd_gram_path`, on the Gram ``(G, c, yty)``.
- :mod:`~l1select._kernels.data`: :func:`cd_data_path`, on the raw data matrix (wide data).
- :mod:`~l1select._kernels.group`: the group lasso's block coordinate descent on a Gram.
- :mod:`~l1select._kernels.logistic`: the penalized logistic regression (proximal Newton).

The solvers are imported on first use (PEP 562), so that a Gram fit does not load the
data-matrix kernels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {"cd_gram_path": "gram", "cd_data_path": "data"}

__all__ = ["cd_data_path", "cd_gram_path"]

if TYPE_CHECKING:
    from l1select._kernels.data import cd_data_path
    from l1select._kernels.gram import cd_gram_path


def __getattr__(name: str):
    part = _EXPORTS.get(name)
    if part is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{part}"), name)

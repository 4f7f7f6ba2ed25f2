"""The penalized logistic path by proximal Newton with the data elsewhere: the client side.

:func:`_kernels.logistic.logistic_path` sweeps the data matrix; here the same algorithm
(glmnet's: IRLS outer loop, cyclic coordinate descent on the quadratic model, step halving,
the coefficient-change stopping rule, strong-rule screening, a working set, a KKT check over
every feature at the end of each alpha) asks for the data only through :class:`Request`\\ s.
A request names a point ``(b0, beta)`` and a working set ``S``; the answer (:class:`Step`,
sums over the fitting rows, mergeable by addition) holds at that point the loss, the
gradient of every feature, and the IRLS weights' Gram ``Z_Sᵀ V Z_S`` with ``Z_Sᵀ v`` and
``Σ v``. The inner problem is then solved by coordinate descent on that Gram (covariance
updates: in exact arithmetic the iterates of the data-matrix sweeps), and the candidate
point's loss, which the step-halving test needs, comes with the next step's Gram in one
answer: one pass over the data per Newton step (and one more when the working set grows).

A path is a generator (:func:`path_steps`): it yields requests and is sent the answers, so
that a driver (:func:`lockstep`) can serve every fit of a cross-validation (the K folds and
all rows) with one pass over the data per round. :func:`step_sums` computes an answer on
rows held in memory (one partition, or all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from l1select.solve.logistic import SATURATION

# As in the data-matrix kernel (``_kernels/logistic.py``): probabilities kept this far from 0
# and 1 in the IRLS weights, and the number of halvings of a Newton step.
P_CLAMP = 1e-5
MAX_HALVINGS = 30
# The KKT check's relative slack, as in the kernel: a gradient within rounding of its bound
# is at the bound.
KKT_SLACK = 1e-9


@dataclass(frozen=True)
class Request:
    """Evaluate a fit at the point ``(b0, beta)`` (beta (n_features,)), with the Gram over the
    working set ``cols`` (int64, ascending); with ``prev`` (a point ``(b0, beta)``), also the
    change of the loss from there, summed row by row (the step-halving test)."""

    b0: float
    beta: np.ndarray
    cols: np.ndarray
    prev: tuple | None = None


@dataclass
class Step:
    """Sums over a fit's rows at a point (``w`` the fit's weights, summing to its row count;
    ``z`` the standardized rows; ``p`` the probabilities; ``v = w p̃(1 − p̃)`` with ``p̃``
    clamped to ``[P_CLAMP, 1 − P_CLAMP]``; ``r = w (y − p)``):
    ``loss = Σ w [log(1 + e^η) − y η]``, ``grad = Zᵀ r`` (n_features,), ``total = Σ r``,
    ``sum_v = Σ v``, ``vz = Z_Sᵀ v`` and ``gram = Z_Sᵀ V Z_S`` over the request's ``cols``;
    ``dloss``: the change of ``loss`` from the request's ``prev`` point (0 without one)."""

    loss: float
    grad: np.ndarray
    total: float
    sum_v: float
    vz: np.ndarray
    gram: np.ndarray
    dloss: float = 0.0

    def __add__(self, other: Step) -> Step:
        return Step(self.loss + other.loss, self.grad + other.grad, self.total + other.total,
                    self.sum_v + other.sum_v, self.vz + other.vz, self.gram + other.gram,
                    self.dloss + other.dloss)


def _eta(Z: np.ndarray, b0: float, beta: np.ndarray) -> np.ndarray:
    nz = np.flatnonzero(beta)
    eta = np.full(Z.shape[0], float(b0))
    if nz.size:
        eta += Z[:, nz] @ beta[nz]
    return eta


def _row_loss(eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log(1 + e^η) − y η`` of each row, without overflow."""
    return np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta))) - y * eta


def step_sums(Z: np.ndarray, y: np.ndarray, w: np.ndarray, req: Request) -> Step:
    """The :class:`Step` of rows ``Z`` (n, n_features: standardized, 0 where missing or where
    a feature is constant), targets ``y`` (n,) and fit weights ``w`` (n,) at ``req``."""
    eta = _eta(Z, req.b0, req.beta)
    t = np.exp(-np.abs(eta))
    # p = σ(η) without overflow: the kernel's two-branch logistic.
    p = np.where(eta >= 0, 1.0 / (1.0 + t), t / (1.0 + t))
    pc = np.clip(p, P_CLAMP, 1.0 - P_CLAMP)
    v = w * pc * (1.0 - pc)
    r = w * (y - p)
    rows = _row_loss(eta, y)
    loss = float(w @ rows)
    dloss = 0.0
    if req.prev is not None:
        dloss = float(w @ (rows - _row_loss(_eta(Z, *req.prev), y)))
    ZS = Z[:, req.cols]
    return Step(loss=loss, grad=Z.T @ r, total=float(r.sum()), sum_v=float(v.sum()),
                vz=ZS.T @ v, gram=(ZS * v[:, None]).T @ ZS, dloss=dloss)


@dataclass
class PathState:
    """A path as far as it has been solved: ``coefs`` (n_features, n_alphas), ``intercepts``,
    ``n_iter`` (sweeps per alpha), ``dev_ratio``; ``k`` the alpha being solved, ``n_solved``
    the alphas done, ``grad`` the gradient ``Zᵀ r / n`` at the last point."""

    coefs: np.ndarray
    intercepts: np.ndarray
    n_iter: np.ndarray
    dev_ratio: np.ndarray
    k: int = 0
    n_solved: int = 0
    grad: np.ndarray | None = field(default=None)

    @classmethod
    def empty(cls, n_features: int, n_alphas: int) -> PathState:
        return cls(np.zeros((n_features, n_alphas)), np.zeros(n_alphas),
                   np.zeros(n_alphas, dtype=np.int64), np.zeros(n_alphas))


def _penalty(beta, pf, cols, a, b) -> float:
    bj = beta[cols]
    return float(np.sum(pf[cols] * (a * np.abs(bj) + 0.5 * b * bj * bj)))


def path_steps(n_fit: float, ybar: float, alphas: np.ndarray, l1_ratio: float, pf: np.ndarray,
               inv_scale: np.ndarray, tol: float, max_iter: int, dev_stop: float,
               state: PathState):
    """The penalized logistic path (see :func:`_kernels.logistic.logistic_path`, whose
    parameters these are) as a generator of :class:`Request`\\ s, sent a :class:`Step` for
    each. ``n_fit``: the fit's row count (the sum of its weights); ``ybar``: its weighted mean
    target. Fills ``state`` (alpha by alpha) and returns it."""
    p = inv_scale.size
    ybar = min(max(ybar, P_CLAMP), 1.0 - P_CLAMP)
    b0 = float(np.log(ybar / (1.0 - ybar)))
    beta = np.zeros(p)
    in_set = (pf == 0.0) & (inv_scale != 0.0)
    cols = np.flatnonzero(in_set)
    cur: Step = yield Request(b0, beta.copy(), cols)
    null_loss = cur.loss / n_fit
    grad = cur.grad / n_fit
    state.grad = grad
    alpha_prev = alphas[0]
    for k in range(alphas.size):
        state.k = k
        alpha = alphas[k]
        a = alpha * l1_ratio
        b = alpha * (1.0 - l1_ratio)
        strong = l1_ratio * (2.0 * alpha - alpha_prev)
        in_set |= (inv_scale != 0.0) & (np.abs(grad) >= strong * pf)
        while True:
            active = np.flatnonzero(in_set)
            if not np.array_equal(active, cols):
                cols = active
                cur = yield Request(b0, beta.copy(), cols)  # the same point, a wider Gram
            b0, sweeps, cur = yield from _solve_alpha(cur, n_fit, pf, a, b, beta, b0, cols,
                                                      tol, max_iter - int(state.n_iter[k]))
            state.n_iter[k] += sweeps
            grad = cur.grad / n_fit
            state.grad = grad
            added = (~in_set) & (inv_scale != 0.0) & (np.abs(grad) > a * pf * (1.0 + KKT_SLACK))
            in_set |= added
            if not added.any() or state.n_iter[k] >= max_iter:
                break
        state.coefs[:, k] = beta
        state.intercepts[k] = b0
        loss = cur.loss / n_fit
        state.dev_ratio[k] = 1.0 - loss / null_loss if null_loss > 0 else 0.0
        state.n_solved = k + 1
        alpha_prev = alpha
        if dev_stop > 0.0 and state.dev_ratio[k] > dev_stop:
            break
    return state


def _solve_alpha(cur: Step, n_fit, pf, a, b, beta, b0, cols, tol, max_iter):
    """Proximal Newton on the working set ``cols`` at one alpha, from the point ``cur`` was
    evaluated at (its Gram over ``cols``). Mutates ``beta``; returns (b0, sweeps, the step at
    the final point)."""
    from l1select._kernels.logistic import gram_inner

    sweeps = 0
    obj = cur.loss / n_fit + _penalty(beta, pf, cols, a, b)
    pf_s = np.ascontiguousarray(pf[cols])
    while sweeps < max_iter:
        beta_old = beta[cols].copy()
        b0_old = b0
        hess = np.diag(cur.gram) / n_fit
        bs = beta_old.copy()
        gvec = np.array(cur.grad[cols], dtype=np.float64)
        b0, used = gram_inner(np.ascontiguousarray(cur.gram), np.ascontiguousarray(cur.vz),
                              float(cur.sum_v), float(n_fit), gvec, float(cur.total), bs,
                              float(b0), pf_s, float(a), float(b), float(tol),
                              int(max_iter - sweeps))
        sweeps += used
        beta[cols] = bs
        # The Newton step, halved while it does not lower the objective (its change summed
        # row by row, as the kernel sums it: see _kernels/logistic.py::_loss_change).
        start = beta.copy()
        start[cols] = beta_old
        old_pen = _penalty(start, pf, cols, a, b)
        for _ in range(MAX_HALVINGS):
            nxt: Step = yield Request(b0, beta.copy(), cols, (b0_old, start))
            pen = _penalty(beta, pf, cols, a, b)
            new_obj = nxt.loss / n_fit + pen
            if nxt.dloss / n_fit + pen - old_pen <= 1e-15 * abs(obj):
                break
            beta[cols] = beta_old + 0.5 * (beta[cols] - beta_old)
            b0 = b0_old + 0.5 * (b0 - b0_old)
        obj = new_obj
        # glmnet's rule on the whole step, weighed by the curvature it was taken with.
        change = max(cur.sum_v / n_fit * (b0 - b0_old) ** 2,
                     float(np.max(hess * (beta[cols] - beta_old) ** 2, initial=0.0)))
        cur = nxt
        if change < tol:
            break
    return b0, sweeps, cur


def lockstep(evaluate, paths: dict, prune=None) -> int:
    """Drive the generators ``paths`` (key → :func:`path_steps` generator) together:
    ``evaluate({key: Request})`` answers every pending request with one pass over the data
    (``{key: Step}``). ``prune(pending)``, if given, returns the keys to stop early.
    Returns the number of passes made."""
    pending = {}
    for key, gen in paths.items():
        try:
            pending[key] = next(gen)
        except StopIteration:
            pass
    passes = 0
    while pending:
        if prune is not None:
            for key in prune(pending):
                paths[key].close()
                pending.pop(key)
            if not pending:
                break
        answers = evaluate(pending)
        passes += 1
        nxt = {}
        for key, step in answers.items():
            try:
                nxt[key] = paths[key].send(step)
            except StopIteration:
                pass
        pending = nxt
    return passes


__all__ = ["SATURATION", "PathState", "Request", "Step", "lockstep", "path_steps",
           "step_sums"]

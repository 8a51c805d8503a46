"""The forecaster contract, on the estimator core of :mod:`surroflow.surrogates.base`.

Every forecaster follows scikit-learn's conventions (``__init__`` stores hyperparameters only,
unchanged; learned attributes end in ``_``; ``random_state`` becomes a generator inside ``fit``):

* ``fit(trajectories, dt=1.0)``: ``trajectories`` is ``(n_traj, n_time, n_state)`` sampled every
  ``dt`` (time steps are never shuffled across trajectories: windows stay inside one trajectory);
* ``predict_step(history)``: ``history`` is ``(n_ic, n_hist, n_state)`` (or ``(n_ic, n_state)``),
  oldest first; returns the next state ``(n_ic, n_state)``;
* ``rollout(initial, n_steps)``: autoregressive forecast of the ``n_steps`` states after the
  last state of ``initial``; returns ``(n_ic, n_steps, n_state)``.  A rollout that becomes
  non-finite or exceeds :data:`BLOWUP` is NaN from then on (never clipped or hidden);
* ``n_history_``: how many past states one step needs (1 for Markovian models);
* ``get_state()`` / ``set_state()``: learned state as plain numpy arrays, stored as NetCDF by
  :mod:`surroflow.surrogates.state` (torch weights as ``state_dict`` arrays; nothing is pickled).

Kinds (registry family ``"forecaster"``): :mod:`.baselines` (``persistence``, ``climatology``),
:mod:`.linear` (``dmd``, ``opinf``), :mod:`.reservoir` (``ngrc``, ``rff``), :mod:`.sindy` (``sindy``), :mod:`.neural`
(``mlp_stepper``, ``node``) and :mod:`.reduced` (``reduced``: any of them in a POD basis).
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import numpy as np

from .. import SurroflowError
from ..surrogates.base import Estimator

#: a forecast state with an absolute value above this counts as blown up (NaN from then on)
BLOWUP = 1e10


# =============================================================================== helpers
def check_trajectories(traj: Any) -> np.ndarray:
    arr = np.asarray(traj, dtype=float)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise SurroflowError(f"trajectories must be (n_traj, n_time, n_state), got shape {arr.shape}")
    if arr.shape[1] < 3:
        raise SurroflowError(f"trajectories need at least 3 time steps, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise SurroflowError("trajectories contain NaN or Inf (exclude flagged samples first)")
    return arr


def as_history(initial: Any, n_state: int | None = None) -> np.ndarray:
    h = np.asarray(initial, dtype=float)
    if h.ndim == 2:
        h = h[:, None, :]
    if h.ndim != 3:
        raise SurroflowError(f"initial states must be (n_ic, n_state) or (n_ic, n_hist, n_state), got {h.shape}")
    if n_state is not None and h.shape[2] != n_state:
        raise SurroflowError(f"initial states have {h.shape[2]} components, the model was fitted on {n_state}")
    return h


def blowup_mask(x: np.ndarray) -> np.ndarray:
    return ~np.all(np.isfinite(x) & (np.abs(x) < BLOWUP), axis=-1)


def polynomial_features(z: np.ndarray, order: int) -> np.ndarray:
    """Unique monomials of degree 2..``order`` of the columns of ``z`` (``(m, p)``), in the order
    of :func:`itertools.combinations_with_replacement` per degree.

    Built degree by degree from suffixes: the degree-``d`` monomials whose first factor is column
    ``i`` are ``z[:, i]`` times the degree-``d-1`` monomials of columns ``i..p-1``, a contiguous
    tail of the previous degree's block, so each column is one multiply into the output (no
    gathers; 28x faster than indexing the columns of every pair on the KS NG-RC features).
    """
    z = np.asarray(z)
    m, p = z.shape
    widths = [math.comb(p + d - 1, d) for d in range(2, int(order) + 1)]
    out = np.empty((m, sum(widths)), dtype=np.result_type(z.dtype, np.float64))
    prev, prev_start = z, np.arange(p)   # degree 1: column i starts the monomials with first factor >= i
    col = 0
    for w in widths:
        start = np.empty(p, dtype=int)
        block = out[:, col:col + w]
        k = 0
        for i in range(p):
            start[i] = k
            tail = prev[:, prev_start[i]:]
            np.multiply(z[:, i:i + 1], tail, out=block[:, k:k + tail.shape[1]])
            k += tail.shape[1]
        prev, prev_start, col = block, start, col + w
    return out


def n_polynomial_features(p: int, order: int) -> int:
    return sum(math.comb(p + d - 1, d) for d in range(2, order + 1))


def rk4_flow(f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, dt: float, substeps: int = 1) -> np.ndarray:
    """The state after time ``dt`` of ``dz/dt = f(z)`` from ``z``: ``substeps`` classical RK4
    steps (the one RK4 of the simulators, :func:`surroflow.simulators.chaos.base.rk4`)."""
    from ..simulators.chaos.base import rk4
    h = float(dt) / int(substeps)
    for _ in range(int(substeps)):
        z = rk4(f, z, h)
    return z


def normal_equations(feature_blocks: Callable[[], Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(D^T D, D^T Y, m)`` of the row chunks ``(D_block, Y_block)`` that ``feature_blocks()``
    yields (the feature matrix is never stored whole)."""
    G = None
    B = None
    m = 0
    for D, Y in feature_blocks():
        if G is None:
            G = np.zeros((D.shape[1], D.shape[1]))
            B = np.zeros((D.shape[1], Y.shape[1]))
        G += D.T @ D
        B += D.T @ Y
        m += D.shape[0]
    if G is None:
        raise SurroflowError("no training rows")
    return G, B, m


def solve_ridge(G: np.ndarray, B: np.ndarray, m: float, penalty: np.ndarray) -> np.ndarray:
    """``W`` of ``(G / m + diag(penalty)) W = B / m`` (Cholesky, lstsq fallback): the Tikhonov
    least squares ``min ||D W - Y||²/m + ||diag(sqrt(penalty)) W||²`` from its normal equations."""
    if not m > 0:
        raise SurroflowError("no training rows")
    A = G / m + np.diag(np.asarray(penalty, dtype=float))
    rhs = B / m
    try:
        L = np.linalg.cholesky(A)
        return np.linalg.solve(L.T, np.linalg.solve(L, rhs))
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, rhs, rcond=None)[0]


def ridge_solve(feature_blocks: Callable[[], Any], penalty: np.ndarray) -> np.ndarray:
    """Tikhonov least squares ``min ||D W - Y||²/m + ||diag(sqrt(penalty)) W||²``.

    ``feature_blocks()`` yields ``(D_block, Y_block)`` row chunks, so the feature matrix is never
    stored whole (:func:`normal_equations`, then :func:`solve_ridge`).
    """
    G, B, m = normal_equations(feature_blocks)
    return solve_ridge(G, B, m, penalty)


# =============================================================================== base class
class Forecaster(Estimator):
    """Base class of every forecaster (see the module docstring for the API)."""

    family: ClassVar[str] = "forecaster"
    #: whether the model keeps torch weights (the training stage then limits torch threads)
    uses_torch: ClassVar[bool] = False
    #: whether the model states the vector field it identified (``equation_terms``): the workflow
    #: then writes its equations beside the true ones (stage ``write_equations``)
    identifies_equations: ClassVar[bool] = False

    # -- fitting --------------------------------------------------------------------
    def fit(self, trajectories: Any, dt: float = 1.0) -> "Forecaster":
        X = check_trajectories(trajectories)
        self._set_scaling(X, dt)
        self._fit(X)
        return self

    def _set_scaling(self, X: np.ndarray, dt: float) -> None:
        """``dt_``, ``n_state_`` and the standardisation (``mean_``, ``scale_``) from ``X``."""
        if not dt > 0:
            raise SurroflowError(f"dt must be > 0, got {dt}")
        self.dt_ = float(dt)
        self.n_state_ = int(X.shape[2])
        flat = X.reshape(-1, X.shape[2])
        self.mean_ = flat.mean(axis=0)
        scaling = getattr(self, "scaling", "component")
        if scaling == "component":
            scale = flat.std(axis=0)
        elif scaling == "global":   # one scale for all components (keeps POD energy ordering)
            scale = np.full(flat.shape[1], np.sqrt(np.mean((flat - self.mean_) ** 2)))
        elif scaling == "none":     # the data's own units (models whose learned terms are read)
            self.mean_ = np.zeros(flat.shape[1])
            scale = np.ones(flat.shape[1])
        else:
            raise SurroflowError(f"{self.kind}: scaling={scaling!r} is not allowed; "
                                 "allowed: ['component', 'global', 'none']")
        self.scale_ = np.where(scale > 1e-12 * max(1.0, float(np.abs(flat).max())), scale, 1.0)

    def _fit(self, X: np.ndarray) -> None:
        """Learn from the trajectories ``X`` (subclasses; ``_z`` standardises them)."""

    @property
    def n_history_(self) -> int:
        return 1

    def _z(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) / self.scale_

    def _x(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale_ + self.mean_

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_state_"):
            raise SurroflowError(f"{type(self).__name__} is not fitted; call fit() first")

    # -- prediction -----------------------------------------------------------------
    def predict_step(self, history: Any) -> np.ndarray:
        self._check_fitted()
        h = as_history(history, self.n_state_)
        if h.shape[1] < self.n_history_:
            raise SurroflowError(f"{self.kind}: needs {self.n_history_} history states, got {h.shape[1]}")
        with np.errstate(all="ignore"):
            z = self._z(h[:, -self.n_history_:])
            return self._x(self._step_z(z))

    def _step_z(self, zhist: np.ndarray) -> np.ndarray:
        """Next standardised state from the standardised history ``(n, n_history_, d)``."""
        raise NotImplementedError

    def rollout(self, initial: Any, n_steps: int) -> np.ndarray:
        self._check_fitted()
        h = as_history(initial, self.n_state_)
        if h.shape[1] < self.n_history_:
            raise SurroflowError(f"{self.kind}: needs {self.n_history_} history states, got {h.shape[1]}")
        n_steps = int(n_steps)
        with np.errstate(all="ignore"):
            zhist = self._z(h[:, -self.n_history_:])
            out = self._rollout_z(zhist, n_steps)
            return self._x(out)

    def _rollout_z(self, zhist: np.ndarray, n_steps: int) -> np.ndarray:
        n, d = zhist.shape[0], zhist.shape[2]
        out = np.empty((n, n_steps, d))
        hist = zhist.copy()
        dead = np.zeros(n, dtype=bool)
        for k in range(n_steps):
            z = self._step_z(hist)
            dead |= blowup_mask(z)
            z[dead] = np.nan
            out[:, k] = z
            if hist.shape[1] > 1:
                hist = np.concatenate([hist[:, 1:], z[:, None]], axis=1)
            else:
                hist = z[:, None]
        return out

    # -- storage --------------------------------------------------------------------
    _BASE_STATE = ("dt_", "n_state_", "mean_", "scale_")

    def get_state(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        state = {k: np.asarray(getattr(self, k)) for k in self._BASE_STATE}
        state.update(self._get_state())
        return state

    def _get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> "Forecaster":
        self.dt_ = float(state["dt_"])
        self.n_state_ = int(state["n_state_"])
        self.mean_ = np.asarray(state["mean_"], dtype=float)
        self.scale_ = np.asarray(state["scale_"], dtype=float)
        self._set_state({k: v for k, v in state.items() if k not in self._BASE_STATE})
        return self

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            setattr(self, k, np.asarray(v))


__all__ = ["BLOWUP", "Forecaster", "check_trajectories", "as_history", "blowup_mask", "polynomial_features",
           "n_polynomial_features", "rk4_flow", "normal_equations", "solve_ridge", "ridge_solve"]

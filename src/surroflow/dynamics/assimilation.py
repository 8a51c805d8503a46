"""Ensemble Kalman filters that cycle forecast and analysis on any ensemble stepper.

:func:`assimilate` runs a twin experiment's filter: the ensemble is advanced by a plain callable
``step(X)`` (one model step of the whole ``(n_members, n_state)`` ensemble, so the model is
called once per step, never once per member), and at the end of every cycle it is updated with
observations of selected state components (a linear observation operator that picks
``obs_index``; independent errors of one standard deviation ``obs_std``).  Two analyses:

``"letkf"``
    the local ensemble transform Kalman filter of Hunt, Kostelich & Szunyogh (2007, Physica D
    230, 112-126), with R-localisation: each grid point has its own analysis in ensemble space,
    in which an observation at distance ``d`` has its error variance divided by the
    Gaspari-Cohn weight ``gaspari_cohn(d, localisation)``; the symmetric square root keeps the
    analysis ensemble centred on the analysis mean.  All local analyses are done at once as one
    batched eigendecomposition (one ``(n_members, n_members)`` matrix per grid point).
``"stochastic"``
    the perturbed-observations EnKF (Burgers, van Leeuwen & Evensen 1998; Houtekamer & Mitchell
    1998) with Schur-product (Gaspari-Cohn) localisation of ``P H^T`` and ``H P H^T`` and
    centred observation perturbations.

Both inflate the prior multiplicatively: the forecast anomalies are multiplied by ``inflation``
(the covariance by ``inflation**2``; the convention of DAPPER's ``infl``, so tuned values
compare directly with its benchmark tables).  A biased (imperfect) model needs more inflation
than a perfect one.

Localisation distances are grid units on a ring (:func:`periodic_distance`) unless a distance
matrix is given.  Nothing here knows a simulator: a chaotic system's ``step`` method is a
valid ``step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable

import numpy as np

from .. import SurroflowError

METHODS = ("letkf", "stochastic")


def gaspari_cohn(distance: np.ndarray | float, radius: float) -> np.ndarray:
    """The Gaspari & Cohn (1999, QJRMS 125, eq. 4.10) fifth-order piecewise rational correlation.

    Compactly supported: 1 at distance 0, zero from ``2 * radius`` on, twice continuously
    differentiable; ``radius`` is the half-width ``c`` of the paper.  Vectorised over
    ``distance`` (any shape; the absolute value is used).
    """
    radius = _positive(radius, "radius")
    z = np.abs(np.asarray(distance, dtype=float)) / radius
    out = np.zeros_like(z)
    near = z <= 1.0
    far = (z > 1.0) & (z < 2.0)
    zn = z[near]
    out[near] = (((-0.25 * zn + 0.5) * zn + 0.625) * zn - 5.0 / 3.0) * zn ** 2 + 1.0
    zf = z[far]
    out[far] = ((((zf / 12.0 - 0.5) * zf + 0.625) * zf + 5.0 / 3.0) * zf - 5.0) * zf + 4.0 - 2.0 / (3.0 * zf)
    return out


def periodic_distance(n: int) -> np.ndarray:
    """``(n, n)`` distances, in grid units, between the ``n`` sites of a ring (periodic grid)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise SurroflowError(f"periodic_distance: n must be a positive integer, got {n!r}")
    i = np.arange(int(n))
    d = np.abs(i[:, None] - i[None, :])
    return np.minimum(d, int(n) - d).astype(float)


def rmse(a: np.ndarray, b: np.ndarray, axis: int | tuple[int, ...] | None = -1) -> np.ndarray:
    """Root-mean-square difference of ``a`` and ``b`` over ``axis`` (the state by default)."""
    return np.sqrt(np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2, axis=axis))


def observe(states: np.ndarray, obs_index: np.ndarray, obs_std: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic observations of a twin experiment: ``states[..., obs_index]`` plus independent
    Gaussian errors of standard deviation ``obs_std`` (drawn from ``rng``)."""
    y = np.asarray(states, dtype=float)[..., np.asarray(obs_index)]
    return y + _positive(obs_std, "obs_std") * rng.standard_normal(y.shape)


def climatological_ensemble(pool: np.ndarray, n_members: int, rng: np.random.Generator, where: str = "ensemble"
                            ) -> np.ndarray:
    """``n_members`` distinct states drawn from ``pool`` ``(n_states, n_state)`` (e.g. states of other
    trajectories on the attractor): the uninformed initial ensemble of a filter."""
    pool = np.asarray(pool, dtype=float).reshape(-1, np.shape(pool)[-1])
    if pool.shape[0] < int(n_members):
        raise SurroflowError(f"{where}: {n_members} members, but only {pool.shape[0]} states to draw them from")
    return pool[rng.choice(pool.shape[0], size=int(n_members), replace=False)]


@dataclass(frozen=True)
class AssimilationResult:
    """What a filter run leaves: the means and spreads of every cycle and the final ensemble.

    Cycle ``k`` ends ``(k + 1) * steps_per_cycle`` model steps after the initial ensemble:
    ``forecast_mean[k]`` is the ensemble mean just before the analysis with
    ``observations[k]`` (the prior), ``analysis_mean[k]`` just after it.  The spreads are the
    root of the state-averaged ensemble variance.  ``analysis_mean[k] - forecast_mean[k]`` is
    the analysis increment of cycle ``k``.
    """

    analysis_mean: np.ndarray     #: (n_cycles, n_state)
    forecast_mean: np.ndarray     #: (n_cycles, n_state)
    analysis_spread: np.ndarray   #: (n_cycles,)
    forecast_spread: np.ndarray   #: (n_cycles,) after inflation
    ensemble: np.ndarray          #: (n_members, n_state), the final analysis ensemble
    steps_per_cycle: int
    method: str

    @property
    def increments(self) -> np.ndarray:
        """Analysis increments ``analysis_mean - forecast_mean`` ``(n_cycles, n_state)``."""
        return self.analysis_mean - self.forecast_mean


def assimilate(step: Callable[[np.ndarray], np.ndarray], ensemble0: np.ndarray, observations: np.ndarray,
               obs_index: np.ndarray, obs_std: float, *, steps_per_cycle: int = 1, method: str = "letkf",
               inflation: float = 1.0, localisation: float | None = None,
               distances: np.ndarray | None = None,
               rng: np.random.Generator | int | None = None) -> AssimilationResult:
    """Cycle an ensemble Kalman filter through ``observations``.

    Parameters
    ----------
    step
        ``step(X) -> X_next``: one model step of the whole ensemble ``(n_members, n_state)``.
    ensemble0
        the initial ensemble ``(n_members, n_state)``, ``n_members >= 2``.
    observations
        ``(n_cycles, n_obs)``: cycle ``k`` observes ``state[obs_index]`` after
        ``(k + 1) * steps_per_cycle`` model steps.
    obs_index
        ``(n_obs,)`` distinct integer indices into the state (the observation operator).
    obs_std
        standard deviation of the (independent) observation errors, > 0.
    steps_per_cycle
        model steps between analyses (>= 1).
    method
        ``"letkf"`` or ``"stochastic"`` (see the module docstring).
    inflation
        multiplicative prior inflation of the forecast anomalies (>= 1; 1 is none).
    localisation
        Gaspari-Cohn half-width in the units of ``distances`` (grid units by default); the
        support is twice that.  ``None``: no localisation (a global ETKF or EnKF).
    distances
        ``(n_state, n_state)`` distances between state components; default
        :func:`periodic_distance` of ``n_state`` (a ring, one variable per site).
    rng
        generator or seed of the perturbed observations (only ``"stochastic"`` draws).
    """
    X = _check_ensemble(ensemble0)
    n_members, n_state = X.shape
    obs = np.asarray(observations, dtype=float)
    if obs.ndim != 2:
        raise SurroflowError(f"assimilate: observations must be a 2-D array (n_cycles, n_obs), got shape {obs.shape}")
    if not np.all(np.isfinite(obs)):
        raise SurroflowError("assimilate: observations must be finite (missing values are not supported)")
    idx = _check_index(obs_index, n_state, obs.shape[1])
    obs_std = _positive(obs_std, "obs_std")
    if isinstance(steps_per_cycle, bool) or not isinstance(steps_per_cycle, Integral) or steps_per_cycle < 1:
        raise SurroflowError(f"assimilate: steps_per_cycle must be an integer >= 1, got {steps_per_cycle!r}")
    if method not in METHODS:
        raise SurroflowError(f"assimilate: method must be one of {list(METHODS)}, got {method!r}")
    inflation = _positive(inflation, "inflation")
    if inflation < 1.0:
        raise SurroflowError(f"assimilate: inflation must be >= 1 (1 is none), got {inflation!r}")
    weights = None
    if localisation is not None:
        localisation = _positive(localisation, "localisation")
        if distances is None:
            dist = periodic_distance(n_state)
        else:
            dist = np.asarray(distances, dtype=float)
            if dist.shape != (n_state, n_state) or not np.all(np.isfinite(dist)) or np.any(dist < 0):
                raise SurroflowError(f"assimilate: distances must be a finite, non-negative (n_state, n_state) "
                                     f"= ({n_state}, {n_state}) array, got shape {dist.shape}")
        weights = gaspari_cohn(dist[:, idx], localisation)          # (n_state, n_obs)
    elif distances is not None:
        raise SurroflowError("assimilate: distances were given without localisation (a radius); give both or neither")
    local = None if weights is None else _local_observations(weights)
    gen = np.random.default_rng(rng)

    n_cycles = obs.shape[0]
    a_mean = np.empty((n_cycles, n_state))
    f_mean = np.empty((n_cycles, n_state))
    a_spread = np.empty(n_cycles)
    f_spread = np.empty(n_cycles)
    for k in range(n_cycles):
        for _ in range(int(steps_per_cycle)):
            X = _advance(step, X, k)
        mean = X.mean(axis=0)
        A = inflation * (X - mean)
        f_mean[k], f_spread[k] = mean, _spread(A)
        if method == "letkf":
            X = _letkf(mean, A, obs[k], idx, obs_std, local)
        else:
            X = _stochastic(mean, A, obs[k], idx, obs_std, weights, gen)
        a_mean[k] = X.mean(axis=0)
        a_spread[k] = _spread(X - a_mean[k])
    return AssimilationResult(a_mean, f_mean, a_spread, f_spread, X, int(steps_per_cycle), method)


def _local_observations(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every grid point the observations inside its taper: indices and weights ``(n_state, q)``.

    ``q`` is the largest number of observations any grid point sees; points that see fewer are
    padded with zero weights (which change nothing).  The local analyses then work on ``q``
    observations, not all of them.
    """
    q = max(1, int(np.max(np.count_nonzero(weights > 0, axis=1))))
    order = np.argsort(-weights, axis=1, kind="stable")[:, :q]
    return order, np.take_along_axis(weights, order, axis=1)


def _letkf(mean: np.ndarray, A: np.ndarray, y: np.ndarray, idx: np.ndarray, obs_std: float,
           local: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """LETKF analysis (Hunt et al. 2007, steps 4-8) of every grid point at once.

    ``A`` are the (inflated) forecast anomalies ``(m, n)``.  Without localisation there is one
    global transform (an ETKF); with it, one per grid point (:func:`_transforms`) on the
    observations inside its taper (``local``: :func:`_local_observations`).
    """
    Yb = A[:, idx]                                           # (m, p) observed anomalies
    d = y - mean[idx]                                        # (p,) innovation
    if local is None:
        W = _transforms(Yb[None], np.full((1, idx.size), 1.0 / obs_std ** 2), d[None])
        return mean + W[0].T @ A
    order, w = local                                         # (n, q)
    W = _transforms(np.moveaxis(Yb[:, order], 0, 1), w / obs_std ** 2, d[order])   # (n, m_old, m_new)
    return mean + np.einsum("in,nij->jn", A, W)


def _transforms(Yb: np.ndarray, rinv: np.ndarray, d: np.ndarray, space: str = "auto") -> np.ndarray:
    """The LETKF weights ``wbar_g + Wa_g`` ``(g, m, m)`` of ``g`` local analyses.

    ``Yb`` ``(g, m, p)`` are the observed anomalies, ``rinv`` ``(g, p)`` the (localised)
    inverse observation variances and ``d`` ``(g, p)`` the innovations of each analysis.

    In ensemble space (Hunt et al. 2007, eqs. 21-24): ``Pa = [(m-1) I + B B^T]^-1`` with
    ``B = Yb diag(sqrt(r_g))``, ``Wa = sqrt(m-1) Pa^(1/2)`` (symmetric), ``wbar = Pa B sqrt(r_g) d``:
    one ``(m, m)`` eigendecomposition per row.  With fewer observations than members the same
    matrices follow from the ``(p, p)`` eigendecomposition ``B^T B = Q diag(s) Q^T``
    (Sherman-Morrison-Woodbury): ``Wa = I + B Q diag(h(s)) Q^T B^T`` with
    ``h(s) = -1 / (sqrt(m-1+s) (sqrt(m-1) + sqrt(m-1+s)))`` (finite at ``s = 0``) and
    ``wbar = B Q diag(1 / (m-1+s)) Q^T sqrt(r_g) d``; ``space="auto"`` takes the smaller one.
    """
    m, p = Yb.shape[1:]
    sq = np.sqrt(rinv)                                       # (g, p)
    B = Yb * sq[:, None, :]                                  # (g, m, p)
    dt = sq * d                                              # (g, p)
    if space == "obs" or (space == "auto" and p < m):
        s, Q = np.linalg.eigh(np.swapaxes(B, 1, 2) @ B)      # (g, p), (g, p, p)
        s = np.maximum(s, 0.0)
        BQ = B @ Q                                           # (g, m, p)
        root = np.sqrt(m - 1.0 + s)
        h = -1.0 / (root * (np.sqrt(m - 1.0) + root))
        W = (BQ * h[:, None, :]) @ np.swapaxes(BQ, 1, 2)
        W[:, np.arange(m), np.arange(m)] += 1.0
        wbar = np.einsum("gip,gp->gi", BQ, np.einsum("gqp,gq->gp", Q, dt) / (m - 1.0 + s))
    else:
        C = B @ np.swapaxes(B, 1, 2)                         # (g, m, m)
        C[:, np.arange(m), np.arange(m)] += m - 1.0
        lam, V = np.linalg.eigh(C)
        Vt = np.swapaxes(V, 1, 2)
        W = (V * np.sqrt((m - 1.0) / lam)[:, None, :]) @ Vt
        t = np.einsum("gji,gj->gi", V, np.einsum("gip,gp->gi", B, dt)) / lam
        wbar = np.einsum("gij,gj->gi", V, t)
    W += wbar[:, :, None]
    return W


def _stochastic(mean: np.ndarray, A: np.ndarray, y: np.ndarray, idx: np.ndarray, obs_std: float,
                weights: np.ndarray | None, gen: np.random.Generator) -> np.ndarray:
    """Perturbed-observations analysis with Schur-product localisation of the gain's covariances."""
    m = A.shape[0]
    Yb = A[:, idx]
    PHt = A.T @ Yb / (m - 1.0)                               # (n, p)
    HPHt = Yb.T @ Yb / (m - 1.0)                             # (p, p)
    if weights is not None:
        PHt *= weights
        HPHt *= weights[idx]
    HPHt[np.diag_indices_from(HPHt)] += obs_std ** 2
    eps = gen.standard_normal((m, idx.size)) * obs_std
    eps -= eps.mean(axis=0)                                  # centred: no sampling error in the mean
    D = y + eps - (mean[idx] + Yb)                           # (m, p) perturbed innovations
    return mean + A + np.linalg.solve(HPHt, D.T).T @ PHt.T


def _advance(step: Callable[[np.ndarray], np.ndarray], X: np.ndarray, cycle: int) -> np.ndarray:
    out = np.asarray(step(X), dtype=float)
    if out.shape != X.shape:
        raise SurroflowError(f"assimilate: step(X) must return the ensemble's shape {X.shape}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise SurroflowError(f"assimilate: the ensemble became non-finite in the forecast of cycle {cycle} "
                             "(model blow-up; try more inflation, localisation or a smaller model step)")
    return out


def _spread(A: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(A ** 2, axis=0) / (A.shape[0] - 1))))


def _check_ensemble(ensemble0: np.ndarray) -> np.ndarray:
    X = np.array(ensemble0, dtype=float, copy=True)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise SurroflowError(f"assimilate: ensemble0 must be a 2-D array (n_members >= 2, n_state), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise SurroflowError("assimilate: ensemble0 must be finite")
    return X


def _check_index(obs_index: np.ndarray, n_state: int, n_obs: int) -> np.ndarray:
    idx = np.asarray(obs_index)
    if idx.ndim != 1 or idx.size != n_obs or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise SurroflowError(f"assimilate: obs_index must be a 1-D integer array with one index per observed "
                             f"component ({n_obs}, the columns of observations), got {obs_index!r}")
    if idx.size == 0:
        raise SurroflowError("assimilate: at least one component must be observed (obs_index is empty)")
    if np.any(idx < 0) or np.any(idx >= n_state) or np.unique(idx).size != idx.size:
        raise SurroflowError(f"assimilate: obs_index must hold distinct indices in [0, {n_state}), got {idx.tolist()}")
    return idx.astype(np.intp)


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise SurroflowError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


__all__ = ["AssimilationResult", "METHODS", "assimilate", "climatological_ensemble", "gaspari_cohn", "observe",
           "periodic_distance", "rmse"]

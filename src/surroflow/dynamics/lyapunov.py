"""Lyapunov exponents by the Benettin/QR method on the tangent dynamics.

The state ``x`` and ``p`` tangent vectors ``V`` are advanced together by the system's
:meth:`tangent_step` (the exact linearisation of its discrete time stepper: RK4 on the
variational equation for the Lorenz systems, tangent-linear ETDRK4 for Kuramoto–Sivashinsky;
no finite differences).  Every ``qr_every`` steps ``V = QR`` is re-orthonormalised and the logs of
``|diag R|`` are accumulated; their time averages are the ``p`` leading exponents (Benettin et
al. 1980; Shimada & Nagashima 1979).

An ensemble of ``n_traj`` independent trajectories is integrated at once (the same vectorised
steppers as data generation); the estimate is their mean and the spread gives a standard error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .. import SurroflowError


class TangentSystem(Protocol):
    """What :func:`lyapunov_spectrum` needs from a system (the chaos simulators provide it)."""

    dim: int

    def random_states(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def step(self, x: np.ndarray, dt: float | None = None) -> np.ndarray: ...

    def tangent_step(self, x: np.ndarray, V: np.ndarray, dt: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class LyapunovResult:
    """Estimated exponents (descending), per trajectory, and their running mean."""

    exponents: np.ndarray            # (p,)  mean over trajectories
    per_trajectory: np.ndarray       # (n_traj, p)
    stderr: np.ndarray               # (p,)  standard error of the mean over trajectories
    times: np.ndarray                # (n_records,) averaging time of each running estimate
    running: np.ndarray              # (n_records, p) running estimates (mean over trajectories)
    t_total: float
    dt: float

    @property
    def leading(self) -> float:
        return float(self.exponents[0])

    @property
    def lyapunov_time(self) -> float:
        return 1.0 / self.leading

    def kaplan_yorke_dimension(self) -> float:
        return kaplan_yorke_dimension(self.exponents)


def kaplan_yorke_dimension(exponents: np.ndarray) -> float:
    """``j + sum(λ_1..λ_j)/|λ_{j+1}|`` with ``j`` the largest index with a non-negative partial sum.

    Returns ``len(exponents)`` when every partial sum is non-negative (too few exponents).
    """
    lam = np.sort(np.asarray(exponents, dtype=float))[::-1]
    c = np.cumsum(lam)
    if c[0] < 0:
        return 0.0
    j = int(np.max(np.flatnonzero(c >= 0))) + 1
    if j >= lam.size:
        return float(lam.size)
    return float(j + c[j - 1] / abs(lam[j]))


def _as_system(system: Any) -> TangentSystem:
    for attr in ("random_states", "step", "tangent_step"):
        if not callable(getattr(system, attr, None)):
            raise SurroflowError(f"{type(system).__name__} has no {attr}(); it cannot be used for "
                                 "Lyapunov exponents (needs the TangentSystem protocol)")
    return system


def lyapunov_spectrum(system: Any, n_exponents: int = 1, t_total: float = 100.0,
                      dt: float | None = None, *, t_transient: float | None = None,
                      t_align: float | None = None, n_traj: int = 4, qr_every: int = 1,
                      seed: int = 0, x0: np.ndarray | None = None, n_records: int = 50) -> LyapunovResult:
    """The ``n_exponents`` leading Lyapunov exponents of ``system``.

    Parameters
    ----------
    system : anything with the :class:`TangentSystem` methods (e.g. a chaos simulator).
    n_exponents : how many exponents (tangent vectors); at most the state dimension.
    t_total : averaging time per trajectory (model time units).
    dt : time step (default: the system's ``dt``); the estimate is that of the discrete map.
    t_transient : time integrated before the tangent vectors are started (default: the
        system's ``transient`` setting, else 20).
    t_align : time the tangent vectors evolve before logs are accumulated (default 5% of
        ``t_total``), so they align with the leading Lyapunov vectors.
    n_traj : independent trajectories integrated at once (random initial states from ``seed``).
    qr_every : re-orthonormalise every this many steps.
    x0 : optional initial states ``(n_traj, dim)`` (replaces the random ones).
    """
    sysm = _as_system(system)
    dim = int(sysm.dim)
    p = int(n_exponents)
    if not 1 <= p <= dim:
        raise SurroflowError(f"n_exponents={n_exponents} must be between 1 and the state dimension {dim}")
    if t_total <= 0 or qr_every < 1 or n_traj < 1:
        raise SurroflowError("t_total must be > 0, qr_every >= 1 and n_traj >= 1")
    h = float(dt if dt is not None else sysm.dt)
    sys_settings = getattr(sysm, "settings", {}) or {}
    t_tr = float(t_transient if t_transient is not None else sys_settings.get("transient", 20.0))
    t_al = float(t_align if t_align is not None else 0.05 * t_total)
    rng = np.random.default_rng(seed)
    x = np.array(x0, dtype=float) if x0 is not None else sysm.random_states(n_traj, rng)
    if x.ndim != 2 or x.shape[1] != dim:
        raise SurroflowError(f"x0 must be (n_traj, {dim}), got {x.shape}")
    n_traj = x.shape[0]
    n_blocks = max(1, int(round(t_total / (h * qr_every))))
    n_align_blocks = int(round(t_al / (h * qr_every)))
    with np.errstate(all="ignore"):
        for _ in range(int(round(t_tr / h))):
            x = sysm.step(x, h)
        if not np.all(np.isfinite(x)):
            raise SurroflowError("trajectory diverged during the transient; reduce dt")
        V, _ = np.linalg.qr(rng.normal(size=(n_traj, dim, p)))
        logs = np.zeros((n_traj, p))
        record_every = max(1, n_blocks // max(1, n_records))
        times, running = [], []
        for b in range(n_align_blocks + n_blocks):
            for _ in range(qr_every):
                x, V = sysm.tangent_step(x, V, h)
            V, R = np.linalg.qr(V)
            if b >= n_align_blocks:
                logs += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
                done = b - n_align_blocks + 1
                if done % record_every == 0 or done == n_blocks:
                    t_avg = done * qr_every * h
                    times.append(t_avg)
                    running.append(logs.mean(axis=0) / t_avg)
    if not (np.all(np.isfinite(logs)) and np.all(np.isfinite(x))):
        raise SurroflowError("non-finite tangent growth: the trajectory diverged; reduce dt")
    t_avg = n_blocks * qr_every * h
    per = logs / t_avg
    mean = per.mean(axis=0)
    se = per.std(axis=0, ddof=1) / np.sqrt(n_traj) if n_traj > 1 else np.full(p, np.nan)
    return LyapunovResult(exponents=mean, per_trajectory=per, stderr=se, times=np.asarray(times),
                          running=np.asarray(running), t_total=t_avg, dt=h)


def leading_lyapunov_exponent(system: Any, t_total: float = 100.0, **kwargs: Any) -> float:
    """Shorthand for ``lyapunov_spectrum(system, 1, t_total, ...).leading``."""
    return lyapunov_spectrum(system, 1, t_total, **kwargs).leading

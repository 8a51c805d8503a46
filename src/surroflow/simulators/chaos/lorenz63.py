"""Lorenz-63: three coupled ODEs, classical fourth-order Runge–Kutta with a fixed step ``dt``.

With ``rho_end`` set, ρ drifts during the kept part of each trajectory: it holds its value ``rho``
through the transient and until ``drift_start`` (time after the first kept state), then moves
linearly to ``rho_end`` over ``drift_duration`` and stays there: a system whose parameter changes
while it is observed (the online-learning study).  The Lyapunov time stays that of ``rho``.
"""
from __future__ import annotations

import numpy as np

from ..base import Coordinate
from .base import ChaoticSystem, Setting, rk4, rk4_tangent


class Lorenz63(ChaoticSystem):
    """Lorenz (1963): x' = σ(y-x), y' = x(ρ-z) - y, z' = xy - βz."""

    name = "lorenz63"
    #: (t_total, qr_every) for a Benettin/QR estimate with ~1-2% standard error (8 trajectories)
    lyapunov_averaging = (100.0, 1)
    SETTINGS = {
        "sigma": Setting(10.0, float),
        "rho": Setting(28.0, float),
        "beta": Setting(8.0 / 3.0, float),
        "dt": Setting(0.01, float, doc="RK4 step"),
        "rho_end": Setting(None, float, nullable=True,
                           doc="rho at the end of a linear drift during the kept trajectory (null: no drift)"),
        "drift_start": Setting(0.0, float, positive=False, doc="time after the first kept state at which the drift starts"),
        "drift_duration": Setting(10.0, float, doc="duration of the linear drift from rho to rho_end"),
    }
    PHYSICS_KEYS = ("sigma", "rho", "beta")
    PUBLISHED = {(10.0, 28.0, round(8.0 / 3.0, 10)): (0.9056, "published (Sprott 2003: 0.9056)")}
    DEFAULT_TRANSIENT = 25.0
    SALT = 63

    @property
    def dim(self) -> int:
        return 3

    def _space_coordinate(self) -> Coordinate:
        return Coordinate(("component",), np.array(["x", "y", "z"]), "1", "state component")

    def random_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = np.array([-20.0, -25.0, 0.0]), np.array([20.0, 25.0, 50.0])
        return lo + (hi - lo) * rng.random((n, 3))

    @property
    def drifting(self) -> bool:
        return self.settings.get("rho_end") is not None

    def rho_at(self, t: np.ndarray | float) -> np.ndarray:
        """ρ at time ``t`` after the first kept state (the drift's ramp; ``rho`` without drift)."""
        t = np.asarray(t, dtype=float)
        if not self.drifting:
            return np.full(t.shape, float(self.rho))
        ramp = np.clip((t - float(self.drift_start)) / float(self.drift_duration), 0.0, 1.0)
        return float(self.rho) + (float(self.rho_end) - float(self.rho)) * ramp

    def rhs(self, x: np.ndarray, rho: float | None = None) -> np.ndarray:
        s, r, b = self.sigma, self.rho if rho is None else rho, self.beta
        X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
        return np.stack([s * (Y - X), X * (r - Z) - Y, X * Y - b * Z], axis=-1)

    def equation_terms(self) -> dict[str, dict[str, float]] | None:
        if self.drifting:
            return None          # the right-hand side changes in time
        s, r, b = float(self.sigma), float(self.rho), float(self.beta)
        return {"x": {"x": -s, "y": s}, "y": {"x": r, "y": -1.0, "x z": -1.0}, "z": {"z": -b, "x y": 1.0}}

    def jvp(self, x: np.ndarray, V: np.ndarray) -> np.ndarray:
        s, r, b = self.sigma, self.rho, self.beta
        X, Y, Z = (x[:, i, None] for i in range(3))
        dX, dY, dZ = V[:, 0], V[:, 1], V[:, 2]
        return np.stack([s * (dY - dX), (r - Z) * dX - dY - X * dZ, Y * dX + X * dY - b * dZ], axis=1)

    def compiled_kernel(self):
        if self.drifting:
            return None
        from .compiled import kernel
        return kernel("lorenz63"), (float(self.sigma), float(self.rho), float(self.beta), float(self.dt))

    def step(self, x: np.ndarray, dt: float | None = None) -> np.ndarray:
        return rk4(self.rhs, x, self.dt if dt is None else dt)

    def tangent_step(self, x, V, dt=None):
        return rk4_tangent(self.rhs, self.jvp, x, V, self.dt if dt is None else dt)

    def step_at(self, x: np.ndarray, t: float) -> np.ndarray:
        """With a drift, the RK4 step at the ρ of its start time (:meth:`rho_at`); the transient
        and an undrifted system step at ``rho``."""
        if not self.drifting:
            return self.step(x)
        rho = float(self.rho_at(t))
        return rk4(lambda y: self.rhs(y, rho), x, self.dt)

    def attrs(self):
        out = super().attrs()
        if self.drifting:
            out.update({"system_rho_end": float(self.rho_end), "drift_start": float(self.drift_start),
                        "drift_duration": float(self.drift_duration)})
        return out


__all__ = ["Lorenz63"]

"""Lorenz-96: ``N`` sites on a ring, classical fourth-order Runge–Kutta with a fixed step ``dt``."""
from __future__ import annotations

import functools

import numpy as np

from ... import SurroflowError
from .base import ChaoticSystem, Setting, rk4, rk4_tangent


class Lorenz96(ChaoticSystem):
    """Lorenz (1996): x_i' = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F, periodic in i."""

    name = "lorenz96"
    #: (t_total, qr_every) for a Benettin/QR estimate with ~1-2% standard error (8 trajectories)
    lyapunov_averaging = (50.0, 1)
    SETTINGS = {
        "N": Setting(40, int, doc="number of sites"),
        "F": Setting(8.0, float, doc="forcing"),
        "dt": Setting(0.01, float, doc="RK4 step"),
    }
    PHYSICS_KEYS = ("N", "F")
    # Karimi & Paul (2010), Chaos 20, 043105; also Pazó et al. (2008): lambda_1 ~ 1.68 for N=40, F=8
    PUBLISHED = {(40.0, 8.0): (1.68, "published (Karimi & Paul 2010: 1.68)")}
    DEFAULT_TRANSIENT = 20.0
    SALT = 96

    def _check_physics(self) -> None:
        if self.N < 4:
            raise SurroflowError(f"simulator.settings.N: expected an integer >= 4, got {self.N!r}")

    @property
    def dim(self) -> int:
        return int(self.N)

    @functools.cached_property
    def _idx(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(self.dim)
        return (i + 1) % self.dim, (i - 1) % self.dim, (i - 2) % self.dim

    def random_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.F + rng.normal(0.0, 1.0, (n, self.dim))

    def rhs(self, x: np.ndarray) -> np.ndarray:
        p1, m1, m2 = self._idx
        return (x[:, p1] - x[:, m2]) * x[:, m1] - x + self.F

    def jvp(self, x: np.ndarray, V: np.ndarray) -> np.ndarray:
        p1, m1, m2 = self._idx
        xe = x[:, :, None]
        return (V[:, p1] - V[:, m2]) * xe[:, m1] + (xe[:, p1] - xe[:, m2]) * V[:, m1] - V

    def compiled_kernel(self):
        from .compiled import kernel
        return kernel("lorenz96"), (float(self.F), float(self.dt))

    def step(self, x, dt=None):
        return rk4(self.rhs, x, self.dt if dt is None else dt)

    def tangent_step(self, x, V, dt=None):
        return rk4_tangent(self.rhs, self.jvp, x, V, self.dt if dt is None else dt)


__all__ = ["Lorenz96"]

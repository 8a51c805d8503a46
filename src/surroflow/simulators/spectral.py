"""Shared pieces of the pseudo-spectral solvers (Burgers, Kuramoto–Sivashinsky)."""
from __future__ import annotations

import numpy as np


def etdrk4_coefficients(lin: np.ndarray, dt: float, n_contour: int = 32) -> dict[str, np.ndarray]:
    """Kassam–Trefethen (2005) ETDRK4 coefficients for the diagonal linear operator ``lin``.

    The phi-functions are evaluated as the mean over ``n_contour`` points on a unit circle around
    each ``dt * lin`` (no cancellation error for small ``dt * lin``).  Returns ``E = exp(dt L)``,
    ``E2 = exp(dt L / 2)``, ``Q`` and the three stage weights ``f1, f2, f3``.
    """
    h = float(dt)
    r = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    lr = h * lin[:, None] + r[None, :]
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = h * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr ** 2)) / lr ** 3, axis=1))
    f2 = h * np.real(np.mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr ** 3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr ** 2 + np.exp(lr) * (4 - lr)) / lr ** 3, axis=1))
    return {"E": np.exp(h * lin), "E2": np.exp(h * lin / 2), "Q": q, "f1": f1, "f2": f2, "f3": f3}

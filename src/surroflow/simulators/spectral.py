"""Shared pieces of the pseudo-spectral solvers (Burgers, Kuramoto–Sivashinsky)."""
from __future__ import annotations

import numpy as np


def etdrk4_coefficients(lin: np.ndarray, dt: float | np.ndarray, n_contour: int = 32) -> dict[str, np.ndarray]:
    """Kassam–Trefethen (2005) ETDRK4 coefficients for the diagonal linear operator ``lin``.

    The phi-functions are evaluated as the mean over ``n_contour`` points on a unit circle around
    each ``dt * lin`` (no cancellation error for small ``dt * lin``).  Returns ``E = exp(dt L)``,
    ``E2 = exp(dt L / 2)``, ``Q`` and the three stage weights ``f1, f2, f3``, shaped like ``lin``.

    Vectorised over samples: ``lin`` may be ``(..., n_modes)`` (one operator per sample, e.g. a
    viscosity per sample) with ``dt`` a scalar or an array of shape ``lin.shape[:-1]`` (one step
    per sample); each row gets exactly the coefficients of its own 1-D call.
    """
    lin = np.asarray(lin, dtype=float)
    h = np.asarray(dt, dtype=float)[..., None]              # broadcasts against lin (..., n_modes)
    r = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    lr = h[..., None] * lin[..., None] + r
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=-1))
    f1 = h * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr ** 2)) / lr ** 3, axis=-1))
    f2 = h * np.real(np.mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr ** 3, axis=-1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr ** 2 + np.exp(lr) * (4 - lr)) / lr ** 3, axis=-1))
    return {"E": np.exp(h * lin), "E2": np.exp(h * lin / 2), "Q": q, "f1": f1, "f2": f2, "f3": f3}

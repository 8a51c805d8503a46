"""Proper orthogonal decomposition with a weighted inner product.

Snapshots are rows of ``X`` (``n_snapshots x n_space``).  With weights ``w`` (quadrature,
cell volume or lumped mass per spatial point), the POD solves the SVD of
``(X - mean) diag(sqrt(w))`` and returns modes orthonormal in the ``w`` inner product:
``modes @ diag(w) @ modes.T = I``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import SurroflowError

METHODS = ("exact", "tsqr", "randomized")


def choose_rank(singular_values: np.ndarray, energy: float | None, rank: int | None) -> int:
    """Rank from a fixed count or the smallest rank whose cumulative energy reaches ``energy``."""
    s2 = np.asarray(singular_values, dtype=float) ** 2
    if rank is not None:
        return int(min(rank, s2.size))
    if energy is None:
        return int(s2.size)
    cum = np.cumsum(s2) / max(s2.sum(), np.finfo(float).tiny)
    return int(min(np.searchsorted(cum, energy - 1e-15) + 1, s2.size))


def sign_fix(modes: np.ndarray) -> np.ndarray:
    """Deterministic signs: the largest-magnitude entry of every mode is positive."""
    idx = np.argmax(np.abs(modes), axis=1)
    signs = np.sign(modes[np.arange(modes.shape[0]), idx])
    signs[signs == 0] = 1.0
    return modes * signs[:, None]


class POD:
    """Mean-centred, weighted POD.

    Parameters
    ----------
    method : ``exact`` (SVD), ``tsqr`` or ``randomized`` (see :mod:`surroflow.reduction.backends`).
    rank : fixed number of modes, or ``None`` to use ``energy``.
    energy : cumulative energy fraction to retain (e.g. ``0.9999``).
    center : subtract the snapshot mean.
    oversampling, power_iterations, random_state : randomized SVD settings.
    """

    def __init__(self, method: str = "exact", rank: int | None = None, energy: float | None = 0.9999,
                 center: bool = True, oversampling: int = 10, power_iterations: int = 2,
                 random_state: int | None = 0) -> None:
        self.method = method
        self.rank = rank
        self.energy = energy
        self.center = center
        self.oversampling = oversampling
        self.power_iterations = power_iterations
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, weights: np.ndarray | None = None) -> "POD":
        if self.method not in METHODS:
            raise SurroflowError(f"reduction.method={self.method!r} is not allowed; allowed: {list(METHODS)}")
        n_space = X.shape[1]
        w = np.ones(n_space) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (n_space,) or np.any(w <= 0) or not np.all(np.isfinite(w)):
            raise SurroflowError("POD weights must be positive, finite, one per spatial point")
        sw = np.sqrt(w)
        if self.method == "exact":
            Xn = np.asarray(X, dtype=float)
            if not np.all(np.isfinite(Xn)):
                raise SurroflowError("POD input has non-finite snapshots; flagged samples must be excluded")
            mean = Xn.mean(axis=0) if self.center else np.zeros(n_space)
            _, s, vt = np.linalg.svd((Xn - mean) * sw, full_matrices=False)
        else:
            from . import backends
            mean, s, vt = backends.svd(X, sw, method=self.method, center=self.center,
                                       rank=self.rank, oversampling=self.oversampling,
                                       power_iterations=self.power_iterations,
                                       random_state=self.random_state)
        r = choose_rank(s, self.energy, self.rank)
        self.singular_values_ = np.asarray(s)
        self.n_modes_ = r
        self.modes_ = sign_fix(np.asarray(vt[:r]) / sw)   # w-orthonormal modes
        self.mean_ = np.asarray(mean)
        self.weights_ = w
        self.energy_ = np.cumsum(self.singular_values_ ** 2) / np.sum(self.singular_values_ ** 2)
        return self

    # ------------------------------------------------------------------ mapping
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Reduced coordinates (weighted projection)."""
        return ((np.asarray(X) - self.mean_) * self.weights_) @ self.modes_.T

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(Z) @ self.modes_ + self.mean_

    def project(self, X: np.ndarray) -> np.ndarray:
        return self.inverse_transform(self.transform(X))

    def norm(self, X: np.ndarray) -> np.ndarray:
        """Weighted L2 norm of each row."""
        return np.sqrt(np.sum(np.asarray(X) ** 2 * self.weights_, axis=-1))

    # ------------------------------------------------------------------ storage
    def to_dataset(self, space_dims: tuple[str, ...], space_coords: dict[str, Any],
                   space_shape: tuple[int, ...], attrs: dict[str, Any] | None = None) -> xr.Dataset:
        r = self.n_modes_
        shape = (r, *space_shape)
        ds = xr.Dataset(
            {
                "modes": (("mode", *space_dims), self.modes_.reshape(shape),
                          {"long_name": "POD modes, orthonormal in the weighted inner product"}),
                "singular_values": (("mode_all",), self.singular_values_,
                                    {"long_name": "singular values of the weighted, centred snapshot matrix"}),
                "energy": (("mode_all",), self.energy_,
                           {"long_name": "cumulative energy fraction", "units": "1"}),
                "mean": (space_dims, self.mean_.reshape(space_shape), {"long_name": "snapshot mean"}),
                "weights": (space_dims, self.weights_.reshape(space_shape),
                            {"long_name": "inner-product weights per spatial point"}),
            },
            coords={"mode": np.arange(r), "mode_all": np.arange(self.singular_values_.size),
                    **space_coords},
            attrs={"method": self.method, "n_modes": r,
                   "energy_threshold": -1.0 if self.energy is None else float(self.energy),
                   **(attrs or {})},
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "POD":
        pod = cls(method=str(ds.attrs.get("method", "exact")))
        r = ds.sizes["mode"]
        pod.modes_ = ds["modes"].values.reshape(r, -1)
        pod.singular_values_ = ds["singular_values"].values
        pod.energy_ = ds["energy"].values
        pod.mean_ = ds["mean"].values.reshape(-1)
        pod.weights_ = ds["weights"].values.reshape(-1)
        pod.n_modes_ = r
        return pod

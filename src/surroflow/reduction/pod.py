"""Proper orthogonal decomposition with a weighted inner product: one class, one fit path.

Snapshots are rows of ``X`` (``n_snapshots x n_space``).  With weights ``w`` (quadrature,
cell volume or lumped mass per spatial point), the POD factors ``A = (X - mean) diag(sqrt(w))``
and keeps modes orthonormal in the ``w`` inner product: ``modes @ diag(w) @ modes.T = I``.

* :meth:`POD.fit` takes a numpy or dask ``X`` and the backend ``method`` (``exact``, ``tsqr``,
  ``randomized``, :mod:`surroflow.reduction.linalg`);
* :meth:`POD.fit_streaming` reduces a NetCDF variable out of core under a memory budget
  (:mod:`surroflow.reduction.streaming`);
* :func:`surroflow.reduction.files.fit_pod_file` is the file-level entry point of the
  ``fit_pod`` stage, which picks one of the two by memory.

Whatever the path, ``energy_`` is the cumulative energy fraction relative to the full
``||A||_F^2`` (the randomized backend computes only part of the spectrum, so the total is
computed separately), and the stored basis records ``fit_mode`` (``in_memory``/``streaming``).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..snapshots import DEFAULT_CHUNK_ROWS, open_lazy, snapshot_layout, space_weights
from . import linalg
from .linalg import choose_rank, sign_fix
from .streaming import streaming_pod

#: ``reduction.method``: the in-memory backends of :mod:`~surroflow.reduction.linalg` and
#: ``streaming`` (out of core; on an array already in memory it is the same TSQR reduction)
METHODS = (*linalg.METHODS, "streaming")


class POD:
    """Mean-centred, weighted POD.

    Parameters (defaults are those of the config schema's ``reduction`` section)
    ----------
    method : ``exact``, ``tsqr``, ``randomized`` or ``streaming`` (``reduction.method``);
        :meth:`fit` runs ``streaming`` as ``tsqr`` (the array is in memory already),
        :meth:`fit_streaming` reduces a file out of core whatever the method.
    rank : fixed number of modes, or ``None`` to use ``energy`` (``reduction.rank``).
    energy : cumulative energy fraction of ``||A||_F^2`` to retain (``reduction.energy``).
    center : subtract the snapshot mean.
    oversampling, power_iterations : randomized SVD settings.
    random_state : seed of the randomized backend (``reduction.seed``).
    chunk_snapshots : block height (rows) of the TSQR tree (``reduction.chunk_snapshots``).

    Learned attributes: ``modes_`` ``(n_modes, n_space)``, ``singular_values_`` (every value the
    backend computed), ``energy_`` (cumulative, relative to ``||A||_F^2``), ``mean_``,
    ``weights_``, ``n_modes_``, ``fit_mode_``.
    """

    def __init__(self, method: str = "exact", rank: int | None = None, energy: float | None = 0.9999,
                 center: bool = True, oversampling: int = 10, power_iterations: int = 2,
                 random_state: int | None = 0, chunk_snapshots: int = DEFAULT_CHUNK_ROWS) -> None:
        self.method = method
        self.rank = rank
        self.energy = energy
        self.center = center
        self.oversampling = oversampling
        self.power_iterations = power_iterations
        self.random_state = random_state
        self.chunk_snapshots = chunk_snapshots

    # ------------------------------------------------------------------ fitting
    def _check(self, n_space: int, weights: Any) -> np.ndarray:
        if self.method not in METHODS:
            raise SurroflowError(f"reduction.method={self.method!r} is not allowed; allowed: {list(METHODS)}")
        if self.rank is not None and int(self.rank) < 1:
            raise SurroflowError(f"reduction.rank must be >= 1, got {self.rank}")
        w = np.ones(n_space) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        if w.shape != (n_space,) or np.any(~(w > 0)) or not np.all(np.isfinite(w)):
            raise SurroflowError(f"POD weights must be positive and finite, one per spatial point ({n_space}); "
                                 f"got {w.size} values")
        return w

    def fit(self, X: Any, weights: np.ndarray | None = None, *, n_workers: int | None = None) -> "POD":
        """Fit on the rows of a numpy or dask ``X`` with the backend ``method``.

        ``n_workers``: threads of the local dask scheduler of ``tsqr`` (default: all cores);
        ignored when a distributed client is active and ``X`` is a dask array."""
        if len(X.shape) != 2:
            raise SurroflowError(f"POD input must be 2-D (n_snapshots, n_space), got shape {X.shape}")
        w = self._check(int(X.shape[1]), weights)
        sw = np.sqrt(w)
        backend = "tsqr" if self.method == "streaming" else self.method
        mean, s, vt = linalg.svd(X, sw, method=backend, center=self.center, rank=self.rank,
                                 oversampling=int(self.oversampling), power_iterations=int(self.power_iterations),
                                 random_state=self.random_state, energy=self.energy,
                                 chunk_rows=self.chunk_snapshots, n_workers=n_workers)
        total = linalg.total_energy(X, mean, sw) if self.method == "randomized" else None
        return self._set_factors(mean, s, vt, w, total, "in_memory", int(X.shape[0]))

    def fit_streaming(self, path: str | os.PathLike[str], variable: str, weights: np.ndarray | str | None,
                      memory_budget_bytes: float, **plan: Any) -> "POD":
        """Fit on ``variable`` of the NetCDF file ``path`` out of core (TSQR in blocks sized to
        ``memory_budget_bytes``; ``plan``: ``mode``/``block`` overrides of
        :func:`~surroflow.reduction.streaming.streaming_pod`).  Samples not ok are skipped."""
        with open_lazy(path) as ds:
            lay = snapshot_layout(ds, variable)
            w = space_weights(ds, variable, weights) if isinstance(weights, str) else weights
        w = self._check(lay.n_space, w)
        mean, s, vt = streaming_pod(path, variable, w, self.rank, memory_budget_bytes, energy=self.energy,
                                    center=self.center, **plan)
        return self._set_factors(mean, s, vt, w, None, "streaming", lay.n_rows)

    def _set_factors(self, mean: np.ndarray, s: np.ndarray, vt: np.ndarray, w: np.ndarray,
                     total: float | None, fit_mode: str, n_rows: int) -> "POD":
        s = np.asarray(s, dtype=float)
        total = float(np.sum(s ** 2)) if total is None else float(total)
        r = min(choose_rank(s, self.energy, self.rank, total), np.asarray(vt).shape[0])
        self.singular_values_ = s
        self.n_modes_ = int(r)
        self.modes_ = sign_fix(np.asarray(vt[:r]) / np.sqrt(w))      # w-orthonormal modes
        self.mean_ = np.asarray(mean, dtype=float)
        self.weights_ = np.asarray(w, dtype=float)
        self.energy_ = np.cumsum(s ** 2) / max(total, np.finfo(float).tiny)
        self.fit_mode_ = fit_mode
        # relative projection error of the training snapshots (uncentred weighted norm)
        norm2 = total + n_rows * float(np.sum(self.mean_ ** 2 * self.weights_))
        resid = max(total * (1.0 - float(self.energy_[r - 1])), 0.0) if r > 0 else total
        self.train_projection_error_ = float(np.sqrt(resid / max(norm2, np.finfo(float).tiny)))
        return self

    @classmethod
    def identity(cls, X: Any, weights: np.ndarray | None = None) -> "POD":
        """The full-field "basis" of a model without reduction (a surrogate's ``basis: none``):
        one mode per spatial point, ``modes_ = diag(1 / sqrt(w))`` (orthonormal in the ``w``
        inner product, so the coefficients are the centred values scaled by ``sqrt(w)`` and the
        projection is exact), centred on the mean of the snapshot rows ``X``.  Method
        ``identity``; no singular values are computed (``singular_values_`` is NaN,
        ``energy_`` 1)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 1:
            raise SurroflowError(f"a full-field basis needs 2-D snapshots (n_snapshots, n_space), got shape {X.shape}")
        w = cls()._check(X.shape[1], weights)
        pod = cls(method="identity", rank=None, energy=None)
        pod.n_modes_ = int(X.shape[1])
        pod.modes_ = np.diag(1.0 / np.sqrt(w))
        pod.mean_ = X.mean(axis=0)
        pod.weights_ = w
        pod.singular_values_ = np.full(X.shape[1], np.nan)
        pod.energy_ = np.ones(X.shape[1])
        pod.fit_mode_ = "in_memory"
        pod.train_projection_error_ = 0.0
        return pod

    # ------------------------------------------------------------------ mapping
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Reduced coordinates (weighted projection)."""
        return ((np.asarray(X) - self.mean_) * self.weights_) @ self.modes_.T

    def inverse_transform(self, Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Fields ``Z @ modes + mean`` of the reduced coordinates ``Z``; with ``out`` (a
        ``(len(Z), n_space)`` float array) written there, without a temporary."""
        if out is None:
            return np.asarray(Z) @ self.modes_ + self.mean_
        np.matmul(np.asarray(Z), self.modes_, out=out)
        out += self.mean_
        return out

    def project(self, X: np.ndarray) -> np.ndarray:
        return self.inverse_transform(self.transform(X))

    def norm(self, X: np.ndarray) -> np.ndarray:
        """Weighted L2 norm of each row."""
        return np.sqrt(np.sum(np.asarray(X) ** 2 * self.weights_, axis=-1))

    # ------------------------------------------------------------------ storage
    def to_dataset(self, space_dims: tuple[str, ...], space_coords: Mapping[str, Any],
                   space_shape: tuple[int, ...], attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
        """``modes(mode, space...)``, ``singular_values(mode_all)``, ``energy(mode_all)``,
        ``mean(space...)``, ``weights(space...)``; attributes ``method``, ``n_modes``,
        ``energy_threshold``, ``fit_mode`` and ``attrs``."""
        r = self.n_modes_
        space_dims, space_shape = tuple(space_dims), tuple(int(n) for n in space_shape)
        return xr.Dataset(
            {
                "modes": (("mode", *space_dims), self.modes_.reshape(r, *space_shape),
                          {"long_name": "POD modes, orthonormal in the weighted inner product"}),
                "singular_values": (("mode_all",), self.singular_values_,
                                    {"long_name": "singular values of the weighted, centred snapshot matrix",
                                     "units": "1"}),
                "energy": (("mode_all",), self.energy_,
                           {"long_name": "cumulative energy fraction of the full snapshot matrix", "units": "1"}),
                "mean": (space_dims, self.mean_.reshape(space_shape), {"long_name": "snapshot mean"}),
                "weights": (space_dims, self.weights_.reshape(space_shape),
                            {"long_name": "inner-product weights per spatial point"}),
            },
            coords={"mode": np.arange(r), "mode_all": np.arange(self.singular_values_.size), **dict(space_coords)},
            attrs={"method": self.method, "n_modes": r,
                   "energy_threshold": -1.0 if self.energy is None else float(self.energy),
                   "fit_mode": getattr(self, "fit_mode_", "in_memory"), **dict(attrs or {})},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "POD":
        a = ds.attrs
        energy = float(a.get("energy_threshold", -1.0))
        pod = cls(method=str(a.get("method", "exact")), energy=None if energy < 0 else energy)
        r = ds.sizes["mode"]
        pod.modes_ = ds["modes"].values.reshape(r, -1)
        pod.singular_values_ = ds["singular_values"].values
        pod.energy_ = ds["energy"].values
        pod.mean_ = ds["mean"].values.reshape(-1)
        pod.weights_ = ds["weights"].values.reshape(-1)
        pod.n_modes_ = r
        pod.fit_mode_ = str(a.get("fit_mode", "in_memory"))
        return pod


__all__ = ["METHODS", "POD", "choose_rank", "sign_fix"]

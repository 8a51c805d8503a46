"""A reduced model: POD bases (one per output variable) composed with a regressor.

Inputs are the design parameters and, for transient problems, the time coordinate; outputs are
the concatenated POD coefficients of all reduced variables.  ``predict_fields`` reconstructs
full fields ``(n_samples, n_time, space...)``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..reduction.pod import POD
from ..reduction.stage import snapshot_matrix, time_dim_of
from .base import Surrogate


def inputs_for(design: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Rows ``(sample, time)`` in sample-major order: ``[parameters..., time]``."""
    design = np.atleast_2d(np.asarray(design, dtype=float))
    if times is None:
        return design
    n, nt = design.shape[0], len(times)
    return np.column_stack([np.repeat(design, nt, axis=0), np.tile(np.asarray(times, float), n)])


def training_arrays(train: xr.Dataset, bases: Mapping[str, POD]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, scaled coefficients and the per-variable scales.

    Each variable's block of coefficients is divided by its RMS norm, so that variables in
    different units (mm and MPa) weigh alike in a regressor's loss while the relative sizes of
    the modes within a variable are kept.
    """
    td = time_dim_of(train)
    times = train[td].values.astype(float) if td else None
    X = inputs_for(train["design"].values, times)
    blocks, scales = [], []
    for v in bases:
        Z = bases[v].transform(snapshot_matrix(train, v)[0])
        scale = float(np.sqrt(np.mean(np.sum(Z ** 2, axis=1)))) or 1.0
        blocks.append(Z / scale)
        scales.append(scale)
    return X, np.hstack(blocks), np.asarray(scales)


class ReducedModel:
    """Bases + regressor; ``split`` gives where each variable's coefficients sit in the output."""

    def __init__(self, bases: Mapping[str, POD], regressor: Surrogate,
                 scales: Sequence[float] | None = None) -> None:
        self.bases = dict(bases)
        self.regressor = regressor
        sizes = [b.n_modes_ for b in self.bases.values()]
        edges = np.cumsum([0, *sizes])
        self.split = {v: slice(int(a), int(b)) for v, a, b in zip(self.bases, edges[:-1], edges[1:])}
        self.scale_vector = np.repeat(np.ones(len(sizes)) if scales is None else np.asarray(scales, float), sizes)

    def predict_coefficients(self, X: np.ndarray) -> np.ndarray:
        return self.regressor.predict(X) * self.scale_vector

    def predict_fields(self, design: np.ndarray, times: np.ndarray | None,
                       space_shapes: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
        X = inputs_for(design, times)
        Z = self.predict_coefficients(X)
        n = np.atleast_2d(design).shape[0]
        nt = 1 if times is None else len(times)
        out = {}
        for v, b in self.bases.items():
            flat = b.inverse_transform(Z[:, self.split[v]])
            lead = (n, nt) if times is not None else (n,)
            out[v] = flat.reshape(*lead, *space_shapes[v])
        return out

"""Quantities of interest: a named scalar reduction of one output field per sample.

A QoI acts on a dataset of the prediction layout ``<variable>(sample, [time], space...)`` (what
:meth:`surroflow.api.ParametricModel.predict` returns, and what the generate stage writes): a
transient field is first taken at ``time`` (``last``, or the nearest stored time to a number),
then reduced over its space dimensions: ``max``, ``min``, ``mean`` (weighted by the inner-product
weights of the model's basis when given: quadrature or lumped mass), ``norm`` (the weighted L2
norm ``sqrt(sum w u^2)``, the norm of the evaluation's errors) or ``point`` (the value nearest to
the coordinates ``at: {dim: value}``, every space dimension named; a dimension without a
coordinate, such as mesh nodes, by index).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..snapshots import time_dim_of

REDUCTIONS = ("max", "min", "mean", "norm", "point")


@dataclass
class QoI:
    """One quantity of interest (a validated ``uq.qoi`` entry)."""

    name: str
    variable: str
    reduce: str
    at: dict[str, float] = field(default_factory=dict)
    time: str | float = "last"

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> "QoI":
        return cls(name, str(spec["variable"]), str(spec["reduce"]), dict(spec.get("at") or {}),
                   spec.get("time", "last"))

    def describe(self) -> str:
        where = f" at {self.at}" if self.reduce == "point" else ""
        return f"{self.reduce} of {self.variable}{where} (time: {self.time})"

    def __call__(self, ds: xr.Dataset, weights: Mapping[str, Any] | None = None) -> np.ndarray:
        """The QoI of every sample of ``ds``, ``(n_sample,)``; ``weights[variable]`` are the
        inner-product weights over the space dims (flat or shaped), uniform when absent."""
        if self.variable not in ds:
            raise SurroflowError(f"QoI {self.name!r}: no variable {self.variable!r} in the data; "
                                 f"present: {sorted(map(str, ds.data_vars))}")
        da = ds[self.variable]
        td = time_dim_of(ds, self.variable)
        if td is not None and td in da.dims:
            da = da.isel({td: -1}) if self.time == "last" else da.sel({td: float(self.time)}, method="nearest")
        space = [d for d in da.dims if d != "sample"]
        if self.reduce == "max":
            return np.asarray(da.max(space).values, dtype=float)
        if self.reduce == "min":
            return np.asarray(da.min(space).values, dtype=float)
        if self.reduce == "point":
            missing = [d for d in space if d not in self.at]
            if missing:
                raise SurroflowError(f"QoI {self.name!r}: 'at' must give every space dimension of "
                                     f"{self.variable} {space}; missing {missing}")
            # by coordinate (nearest); a dimension without a coordinate (mesh nodes) by index
            by_index = {d: int(self.at[d]) for d in space if d not in da.coords}
            by_value = {d: float(self.at[d]) for d in space if d in da.coords}
            da = da.isel(by_index) if by_index else da
            da = da.sel(by_value, method="nearest") if by_value else da
            return np.asarray(da.values, dtype=float).reshape(-1)
        a = np.asarray(da.transpose("sample", *space).values, dtype=float).reshape(da.sizes["sample"], -1)
        w = None if weights is None or self.variable not in weights else np.asarray(weights[self.variable],
                                                                                    dtype=float).reshape(-1)
        if w is None:
            w = np.ones(a.shape[1])
        if w.size != a.shape[1]:
            raise SurroflowError(f"QoI {self.name!r}: {w.size} weights for {a.shape[1]} values of {self.variable}")
        if self.reduce == "mean":
            return (a @ w) / float(np.sum(w))
        if self.reduce == "norm":
            return np.sqrt((a ** 2) @ w)
        raise SurroflowError(f"QoI {self.name!r}: reduce {self.reduce!r} is not allowed; allowed: {list(REDUCTIONS)}")


def qoi_problems(qois: Mapping[str, Mapping[str, Any]], outputs: Mapping[str, Sequence[str]],
                 time_dim: str | None, where: str = "uq") -> list[str]:
    """Problems of the ``uq.qoi`` entries against the simulator's outputs (``{name: dims}``,
    without ``sample``) and its time dimension, one line each."""
    out: list[str] = []
    if not qois:
        out.append(f"{where}.qoi: at least one quantity of interest is needed, e.g. "
                   "{u_max: {variable: u, reduce: max}}")
    for name, q in qois.items():
        key = f"{where}.qoi.{name}"
        var = q.get("variable")
        if var not in outputs:
            out.append(f"{key}.variable: {var!r} is not an output of the simulator; allowed: {sorted(outputs)}")
            continue
        dims = list(outputs[var])
        transient = time_dim is not None and time_dim in dims
        space = [d for d in dims if d != time_dim]
        t = q.get("time", "last")
        if t != "last" and not transient:
            out.append(f"{key}.time: {var} is steady (no {time_dim or 'time'} dimension); leave time at 'last'")
        if q.get("reduce") == "point":
            at = dict(q.get("at") or {})
            if sorted(at) != sorted(space):
                out.append(f"{key}.at: reduce point needs a coordinate for each space dimension of {var} "
                           f"{space}; got {sorted(at)}")
        elif q.get("at"):
            out.append(f"{key}.at: only reduce point takes 'at' (this QoI reduces by {q.get('reduce')})")
    return out


__all__ = ["REDUCTIONS", "QoI", "qoi_problems"]

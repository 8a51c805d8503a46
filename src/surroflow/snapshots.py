"""Snapshots: the one place that knows how generated data map onto matrices.

A generate dataset (``results/<study>/generate/<split>.nc``) holds, per sample, the outcome
``status(sample)`` and the output fields ``(sample, [time], space...)``.  Everything that
reads it for reduction, training, evaluation or forecasting goes through this module:

* **sample status**: :func:`ok_samples`, :func:`n_flagged` (flagged samples are excluded,
  counted, never dropped silently or zero-filled);
* **dimensions**: :func:`time_dim_of` (the dimension whose entries are extra surrogate inputs:
  ``time`` for transient problems, ``step`` for load steps, none for steady ones) and
  :func:`space_dims_of` (everything else but ``sample``);
* **the snapshot matrix**: :class:`SnapshotLayout`, :func:`snapshot_matrix` (rows are
  ``(sample, time)`` pairs in sample-major order, columns the flattened space),
  :func:`snapshot_dask` (the same, lazily, for out-of-core and distributed reductions),
  :func:`snapshot_groups` (the sample of every row: split by sample, never by time);
* **surrogate inputs**: :func:`surrogate_inputs` / :func:`snapshot_inputs`
  (``[parameters..., time]`` per row);
* **trajectories** for forecasting: :func:`trajectories`, :func:`forecast_variable`,
  :func:`sample_interval`, :func:`lyapunov_time`;
* **inner-product weights**: :func:`space_weights` (uniform, trapezoidal quadrature of grid
  coordinates, or the lumped mass ``mass(node)`` that mesh simulators write into the generate
  dataset, broadcast over vector components), :func:`resolve_weights`.

It sits at the bottom of the package next to :mod:`surroflow.io` and imports nothing else of
surroflow.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import xarray as xr

from . import SurroflowError
from .io import ENGINE, STATUS_FLAGS, STATUS_OK, open_dataset

#: the splits of a study's generate data (``<split>.nc``): the surrogates are fitted on ``train``,
#: their conformal bands calibrated on ``calibration`` (optional), and they are judged on ``test``
SPLITS = ("train", "test", "calibration")
#: names of the per-sample bookkeeping variables of a generate dataset (never model outputs)
BOOKKEEPING = ("design", "status", "status_reason", "wall_time")
#: data variables that hold inner-product weights of the spatial points (first match wins)
WEIGHT_VARIABLES = ("mass", "cell_volume")
#: default snapshot rows per dask chunk
DEFAULT_CHUNK_ROWS = 4096


# --------------------------------------------------------------------------- sample status
def ok_mask(ds: xr.Dataset) -> np.ndarray:
    """True for samples whose ``status`` is ok (all samples when there is no status)."""
    if "status" not in ds.variables:
        return np.ones(ds.sizes["sample"], dtype=bool)
    return np.asarray(ds["status"].values) == STATUS_OK


def ok_samples(ds: xr.Dataset) -> xr.Dataset:
    """The samples whose status is ok (the only ones used downstream)."""
    return ds.isel(sample=np.flatnonzero(ok_mask(ds)))


def n_flagged(ds: xr.Dataset) -> int:
    """How many samples are flagged (failed, diverged, timeout)."""
    return int((~ok_mask(ds)).sum())


def status_counts(ds: xr.Dataset) -> dict[str, int]:
    """How many samples have each status (``ok``, ``diverged``, ``failed``, ``timeout``)."""
    if "status" not in ds.variables:
        return {"ok": int(ds.sizes["sample"])}
    status = np.asarray(ds["status"].values)
    return {name: int((status == code).sum()) for name, code in STATUS_FLAGS.items()}


def no_ok_samples_message(ds: xr.Dataset, where: str | None = None, what: str = "samples",
                          consequence: str | None = None) -> str:
    """The sentence for a dataset none of whose samples is ok: ``<where>: all N <what> of the
    <split> split failed, diverged or timed out (status counts ...); <consequence>; ...``.

    ``where`` defaults to the file the dataset was read from.
    """
    where = where or str(ds.encoding.get("source") or "data")
    split = str(ds.attrs.get("split") or "")
    of_split = f" of the {split} split" if split and split not in what else ""
    counts = ", ".join(f"{k} {v}" for k, v in status_counts(ds).items())
    return (f"{where}: all {ds.sizes['sample']} {what}{of_split} failed, diverged or timed out "
            f"(status counts: {counts}); {consequence or 'nothing to use'}; see the generate logs and fix "
            "the simulator, its settings or its parameter ranges")


def require_ok_samples(ds: xr.Dataset, where: str | None = None, what: str = "samples",
                       consequence: str | None = None) -> xr.Dataset:
    """:func:`ok_samples`, or a :class:`SurroflowError` (:func:`no_ok_samples_message`, naming
    ``where``, the split and the status counts) when none is left.  The one check of every
    reader of generate data (reduction, training, evaluation, forecasting)."""
    if not ok_mask(ds).any():
        raise SurroflowError(no_ok_samples_message(ds, where, what, consequence))
    return ok_samples(ds)


# --------------------------------------------------------------------------- dimensions
def time_dim_of(ds: xr.Dataset, variable: str | None = None) -> str | None:
    """The snapshot dimension whose coordinate is a surrogate input (``None``: steady data)."""
    td = ds.attrs.get("time_dim")
    if td in (None, "", "none"):
        td = None
        if variable is not None:
            td = next((d for d in ("time", "step") if d in ds[variable].dims), None)
    return None if td is None else str(td)


def space_dims_of(ds: xr.Dataset, variable: str) -> tuple[str, ...]:
    td = time_dim_of(ds, variable)
    return tuple(str(d) for d in ds[variable].dims if d not in ("sample", td))


def output_variables(ds: xr.Dataset) -> list[str]:
    """The output fields of a generate dataset: per-sample float variables that are not
    bookkeeping, mesh description or weights."""
    skip = {*BOOKKEEPING, *WEIGHT_VARIABLES, "node_coordinates", "connectivity"}
    return [str(v) for v in ds.data_vars
            if str(v) not in skip and "sample" in ds[v].dims and ds[v].dtype.kind == "f" and ds[v].ndim >= 2]


@dataclass(frozen=True)
class SnapshotLayout:
    """How a variable ``(sample, [time], space...)`` maps onto the snapshot matrix."""

    variable: str
    time_dim: str | None
    space_dims: tuple[str, ...]
    space_shape: tuple[int, ...]
    samples: np.ndarray           # indices of the usable (status ok) samples
    n_time: int

    @property
    def n_space(self) -> int:
        return int(np.prod(self.space_shape)) if self.space_shape else 1

    @property
    def n_rows(self) -> int:
        return int(self.samples.size * self.n_time)

    @property
    def order(self) -> tuple[str, ...]:
        return ("sample", *((self.time_dim,) if self.time_dim else ()), *self.space_dims)


def snapshot_layout(ds: xr.Dataset, variable: str) -> SnapshotLayout:
    if variable not in ds.variables:
        raise SurroflowError(f"variable {variable!r} not in dataset; present: {sorted(map(str, ds.data_vars))}")
    if "sample" not in ds[variable].dims:
        raise SurroflowError(f"variable {variable!r} has no 'sample' dimension: {ds[variable].dims}")
    td = time_dim_of(ds, variable)
    space = space_dims_of(ds, variable)
    samples = np.flatnonzero(ok_mask(ds))
    if samples.size == 0:
        raise SurroflowError(no_ok_samples_message(ds, consequence=f"no snapshot of {variable!r}"))
    return SnapshotLayout(variable, td, space, tuple(int(ds.sizes[d]) for d in space), samples,
                          int(ds.sizes[td]) if td else 1)


# --------------------------------------------------------------------------- matrices
def snapshot_matrix(ds: xr.Dataset, variable: str) -> np.ndarray:
    """``(n_ok_samples * n_time, n_space)``, sample-major rows (loads the variable)."""
    lay = snapshot_layout(ds, variable)
    var = ds[variable]
    if lay.samples.size != ds.sizes["sample"]:       # (a slice reads without an extra copy)
        var = var.isel(sample=lay.samples)
    arr = var.transpose(*lay.order).values
    return np.asarray(arr, dtype=float).reshape(lay.n_rows, lay.n_space)


def open_lazy(path: str | os.PathLike[str]) -> xr.Dataset:
    """A complete, readable artifact opened without loading its arrays."""
    open_dataset(path, load=False).close()         # completeness and readability checks
    return xr.open_dataset(path, engine=ENGINE, cache=False)


def snapshot_dask(path: str | os.PathLike[str], variable: str, chunk_snapshots: int = DEFAULT_CHUNK_ROWS) -> Any:
    """The snapshot matrix of ``variable`` as a lazy dask array ``(n_rows, n_space)`` read from
    the NetCDF file in chunks of about ``chunk_snapshots`` rows (whole samples); flagged samples
    are left out.  With a distributed client active, the workers read their own chunks."""
    probe = open_lazy(path)
    try:
        lay = snapshot_layout(probe, variable)
    finally:
        probe.close()
    per = max(1, int(chunk_snapshots) // max(lay.n_time, 1))
    # open with the stored (HDF5) chunks, then merge them into tasks of ~chunk_snapshots rows
    ds = xr.open_dataset(path, engine=ENGINE, chunks={})
    var = ds[variable].chunk({"sample": per, **{d: -1 for d in lay.order[1:]}})
    if lay.samples.size != ds.sizes["sample"]:
        var = var.isel(sample=lay.samples)
    arr = var.transpose(*lay.order).data
    return arr.reshape(lay.n_rows, lay.n_space).astype(float, copy=False)


def snapshot_groups(ds: xr.Dataset, variable: str) -> np.ndarray:
    """Sample index of every snapshot row (to split by sample, never by time)."""
    lay = snapshot_layout(ds, variable)
    return np.repeat(lay.samples, lay.n_time)


def fields_from_rows(rows: np.ndarray, n_samples: int, n_time: int | None, space_shape: Sequence[int]) -> np.ndarray:
    """Inverse of the row layout: ``(n_samples * n_time, n_space)`` -> ``(n_samples, [n_time], space...)``."""
    lead = (n_samples,) if n_time is None else (n_samples, n_time)
    return np.asarray(rows).reshape(*lead, *space_shape)


# --------------------------------------------------------------------------- surrogate inputs
def surrogate_inputs(design: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Rows ``(sample, time)`` in sample-major order: ``[parameters..., time]``."""
    design = np.atleast_2d(np.asarray(design, dtype=float))
    if times is None:
        return design
    t = np.asarray(times, dtype=float)
    n = design.shape[0]
    return np.column_stack([np.repeat(design, t.size, axis=0), np.tile(t, n)])


def snapshot_times(ds: xr.Dataset, variable: str | None = None) -> np.ndarray | None:
    """The coordinate of the time dimension (``None`` for steady data)."""
    td = time_dim_of(ds, variable)
    return None if td is None else np.asarray(ds[td].values, dtype=float)


def input_names(ds: xr.Dataset, variable: str | None = None) -> list[str]:
    """Names of the surrogate inputs: the design parameters, then the time dimension."""
    td = time_dim_of(ds, variable)
    return [*map(str, ds["parameter"].values), *([td] if td else [])]


def snapshot_inputs(ds: xr.Dataset, variable: str) -> np.ndarray:
    """Surrogate inputs of every snapshot row of ``variable``: ``[parameters..., time]``."""
    lay = snapshot_layout(ds, variable)
    design = np.asarray(ds["design"].values, dtype=float)[lay.samples]
    return surrogate_inputs(design, snapshot_times(ds, variable))


# --------------------------------------------------------------------------- trajectories
def trajectories(ds: xr.Dataset, variable: str, where: str = "data") -> np.ndarray:
    """``(n_ok, n_time, n_state)`` trajectories of the ok samples (forecast task)."""
    ok = require_ok_samples(ds, where, "trajectories", "nothing to forecast")
    da = ok[variable]
    if "time" not in da.dims:
        raise SurroflowError(f"{where}: {variable!r} has no 'time' dimension: {da.dims}")
    space = [d for d in da.dims if d not in ("sample", "time")]
    arr = np.asarray(da.transpose("sample", "time", *space).values, dtype=float)
    arr = arr.reshape(ok.sizes["sample"], da.sizes["time"], -1)
    if not np.all(np.isfinite(arr)):
        raise SurroflowError(f"{where}: non-finite values in {variable!r} of samples flagged ok")
    return arr


def forecast_variable(ds: xr.Dataset, variable: str | None = None) -> str:
    """The state variable of a forecast study: ``variable`` (the configured one), else the
    simulator's ``forecast_variable`` attribute, else the only ``(sample, time, ...)`` variable."""
    if variable:
        if variable not in ds.data_vars:
            raise SurroflowError(f"forecast.variable={variable!r} is not in the data; present: "
                                 f"{sorted(map(str, ds.data_vars))}")
        return str(variable)
    attr = ds.attrs.get("forecast_variable")
    if attr and attr in ds.data_vars:
        return str(attr)
    cands = [str(v) for v in ds.data_vars if ds[v].dims[:2] == ("sample", "time") and ds[v].ndim >= 3]
    if len(cands) != 1:
        raise SurroflowError(f"cannot tell which variable to forecast among {cands}; set forecast.variable")
    return cands[0]


def sample_interval(ds: xr.Dataset) -> float:
    """Time between stored states: the ``dt_sample`` attribute, else the ``time`` spacing."""
    if "dt_sample" in ds.attrs:
        return float(ds.attrs["dt_sample"])
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size < 2:
        raise SurroflowError("the data have fewer than two time steps and no 'dt_sample' attribute")
    return float(t[1] - t[0])


def lyapunov_time(ds: xr.Dataset, where: str = "data") -> float:
    """The ``lyapunov_time`` attribute of chaotic-system data (a clear error when absent)."""
    lt = ds.attrs.get("lyapunov_time")
    if lt is None or not float(lt) > 0:
        raise SurroflowError(f"{where}: the data carry no positive 'lyapunov_time' attribute; the forecast task "
                             "needs a chaotic simulator (lorenz63, lorenz96, kuramoto_sivashinsky)")
    return float(lt)


# --------------------------------------------------------------------------- weights
WEIGHT_KINDS = ("uniform", "quadrature", "mass")


def grid_weights(coord: np.ndarray, periodic: bool = False) -> np.ndarray:
    """Trapezoidal quadrature weights of a 1-D grid (rectangle rule on a periodic grid)."""
    x = np.asarray(coord, dtype=float)
    if x.size == 1:
        return np.ones(1)
    dx = np.diff(x)
    if np.any(dx <= 0):
        raise SurroflowError("quadrature weights need a strictly increasing coordinate")
    w = np.empty_like(x)
    w[1:-1] = 0.5 * (dx[:-1] + dx[1:])
    if periodic:
        gap = dx.mean()            # a periodic grid omits the end point
        w[0], w[-1] = 0.5 * (dx[0] + gap), 0.5 * (dx[-1] + gap)
    else:
        w[0], w[-1] = 0.5 * dx[0], 0.5 * dx[-1]
    return w


def _weight_variable(ds: xr.Dataset, space: tuple[str, ...]) -> str | None:
    for name in WEIGHT_VARIABLES:
        if name in ds.variables and ds[name].ndim >= 1 and set(ds[name].dims) <= set(space):
            return name
    return None


def space_weights(ds: xr.Dataset, variable: str, kind: str = "quadrature") -> np.ndarray:
    """Inner-product weights per spatial point of ``variable``, flattened like the snapshots.

    ``uniform``: ones; ``quadrature``: tensor product of trapezoidal weights of the 1-D float
    coordinates (a coordinate with attribute ``periodic = 1`` gets the periodic rule), and on
    meshes (a ``node`` or ``cell`` dimension) the lumped mass; ``mass``: the data variable
    ``mass`` (lumped nodal mass, written by mesh simulators into the generate dataset) or
    ``cell_volume`` over some of the space dimensions, broadcast over the others (vector
    components repeat their node's weight).
    """
    if kind not in WEIGHT_KINDS:
        raise SurroflowError(f"reduction.weights={kind!r} is not allowed; allowed: {list(WEIGHT_KINDS)}")
    space = space_dims_of(ds, variable)
    shape = tuple(int(ds.sizes[d]) for d in space)
    size = int(np.prod(shape)) if shape else 1
    if kind == "uniform":
        return np.ones(size)
    on_mesh = any(d in ("node", "cell") for d in space)
    if kind == "mass" or on_mesh:
        name = _weight_variable(ds, space)
        if name is not None:
            w = ds[name].broadcast_like(xr.DataArray(np.empty(shape), dims=space)).transpose(*space)
            w = np.asarray(w.values, dtype=float).reshape(-1)
            if np.any(w <= 0) or not np.all(np.isfinite(w)):
                raise SurroflowError(f"'{name}' weights must be positive and finite")
            return w
        if kind == "mass":
            raise SurroflowError(f"reduction.weights=mass: the data have no 'mass' or 'cell_volume' variable over "
                                 f"the space dimensions {space} of {variable!r} (mesh simulators write "
                                 "mass(node)); allowed here: uniform, quadrature")
        return np.ones(size)
    w = np.ones(shape)
    for axis, d in enumerate(space):
        if d in ds.coords and ds[d].ndim == 1 and ds[d].dtype.kind == "f":
            periodic = bool(int(ds[d].attrs.get("periodic", 0)))
            wd = grid_weights(ds[d].values, periodic)
            w = w * wd.reshape([-1 if a == axis else 1 for a in range(len(space))])
    return w.reshape(-1)


def resolve_weights(ds: xr.Dataset, variable: str, weights: str | np.ndarray | None) -> np.ndarray:
    """Weights from a kind (see :func:`space_weights`), an array, or ``None`` (uniform);
    checked against the variable's spatial size."""
    if weights is None or isinstance(weights, str):
        return space_weights(ds, variable, weights or "uniform")
    w = np.asarray(weights, dtype=float).reshape(-1)
    n = snapshot_layout(ds, variable).n_space
    if w.size != n or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise SurroflowError(f"weights for {variable!r}: need {n} positive finite values, got {w.size}")
    return w


__all__ = ["SPLITS", "BOOKKEEPING", "WEIGHT_VARIABLES", "WEIGHT_KINDS", "SnapshotLayout", "ok_mask", "ok_samples",
           "n_flagged", "status_counts", "no_ok_samples_message", "require_ok_samples", "time_dim_of", "space_dims_of", "output_variables",
           "snapshot_layout", "snapshot_matrix", "open_lazy", "snapshot_dask", "snapshot_groups",
           "fields_from_rows", "surrogate_inputs", "snapshot_times", "input_names", "snapshot_inputs",
           "trajectories", "forecast_variable", "sample_interval", "lyapunov_time", "grid_weights",
           "space_weights", "resolve_weights"]

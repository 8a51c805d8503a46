"""NetCDF result files: every variable (the ``netcdf`` reader), or a mesh and its nodal fields.

A mesh file is in surroflow's layout: ``node_coordinates(node, space)``,
``connectivity(cell, vertex)`` and variables whose first dimension is ``node``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..mesh import Mesh, mesh_from_dataset

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")


def _open(path: Path) -> xr.Dataset:
    if not path.exists():
        raise SurroflowError(f"{path}: result file not found")
    try:
        return xr.open_dataset(path)
    except Exception as exc:  # engines raise many types for foreign or damaged files
        raise SurroflowError(f"{path}: not a readable NetCDF file ({type(exc).__name__}: {exc})") from None


def read_netcdf(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable (coordinates included) of the NetCDF file ``path`` as an array."""
    with _open(Path(path)) as ds:
        return {str(k): np.asarray(v.values) for k, v in ds.variables.items()}


def read_netcdf_mesh(path: str | Path, variables: Sequence[str]) -> tuple[Mesh, dict[str, np.ndarray]]:
    """The mesh and the nodal ``variables`` of a NetCDF file in surroflow's mesh layout."""
    path = Path(path)
    with _open(path) as ds:
        for v in ("node_coordinates", "connectivity"):
            if v not in ds.variables:
                raise SurroflowError(f"{path}: NetCDF result files need {v!r} "
                                     "(node_coordinates(node, space), connectivity(cell, vertex))")
        try:
            mesh = mesh_from_dataset(ds)
        except SurroflowError as exc:
            raise SurroflowError(f"{path}: {exc}") from None
        out = {}
        for name in variables:
            if name not in ds.variables:
                raise SurroflowError(f"{path}: no variable {name!r}; present: {sorted(map(str, ds.data_vars))}")
            da = ds[name]
            if da.dims[:1] != ("node",):
                raise SurroflowError(f"{path}: variable {name!r} has dims {da.dims}; the first must be 'node'")
            out[name] = np.asarray(da.values, dtype=float)
    return mesh, out


__all__ = ["NETCDF_SUFFIXES", "read_netcdf", "read_netcdf_mesh"]

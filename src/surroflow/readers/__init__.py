"""Readers of solvers' result files, and the one registry of them (parsers only; nothing runs here).

A *reader* is ``fn(workdir, jobname) -> {variable: array}``: it finds the results that a run
named ``jobname`` left in ``workdir`` and returns plain arrays.  Built in:

``frd``
    CalculiX ASCII results ``<jobname>.frd`` (:mod:`surroflow.readers.frd`).
``netcdf``
    ``<jobname>.nc``: every variable of the file (:mod:`surroflow.readers.netcdf`).
``meshio``
    ``<jobname>.vtu`` / ``.vtk`` / ``.xdmf`` / ``.xmf`` / ``.msh`` / ``.med``: the point data
    plus ``node_coordinates`` (:mod:`surroflow.readers.meshio_files`).

:func:`register_reader` adds your own; :func:`get_reader` also resolves
``python:module:function``.  The external-command runner
(:class:`surroflow.simulators.process.CommandRunner`) calls a reader after every successful
run; the ``files`` source reads whole result files with :func:`read_mesh_file` (mesh and nodal
fields of one NetCDF or meshio file).
"""
from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import SurroflowError
from ..mesh import Mesh
from ..safety import safe_mode_enabled
from .frd import FrdBlock, FrdError, FrdResult, frd_fields, read_frd, von_mises

ReaderFn = Callable[[Path, str], Mapping[str, np.ndarray]]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _read_frd(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    return frd_fields(Path(workdir) / f"{jobname}.frd")


def _read_netcdf(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    from .netcdf import read_netcdf
    return read_netcdf(Path(workdir) / f"{jobname}.nc")


def _read_meshio(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    from .meshio_files import MESHIO_SUFFIXES, read_meshio
    for ext in MESHIO_SUFFIXES:
        path = Path(workdir) / f"{jobname}{ext}"
        if path.exists():
            return read_meshio(path)
    raise SurroflowError(f"{workdir}: no result file {jobname}" + "/".join(MESHIO_SUFFIXES))


_READERS: dict[str, ReaderFn] = {"frd": _read_frd, "netcdf": _read_netcdf, "meshio": _read_meshio}


def register_reader(name: str, fn: ReaderFn) -> ReaderFn:
    """Register ``fn(workdir, jobname) -> {variable: array}`` under ``name``.

    Use a module-level function: the runner pickles it by reference into dask workers, so a
    reader registered only in the driver process must also be importable there (or name it
    ``python:module:function`` in the settings).
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise SurroflowError(f"reader name {name!r}: letters, digits and '_' only")
    if not callable(fn):
        raise SurroflowError(f"reader {name!r}: {fn!r} is not callable")
    _READERS[name] = fn
    return fn


def available_readers() -> list[str]:
    """Names of the registered readers."""
    return sorted(_READERS)


def get_reader(name: str) -> ReaderFn:
    """The reader registered as ``name``, or the function named ``python:module:function``
    (not in safe mode: :mod:`surroflow.safety`)."""
    if name in _READERS:
        return _READERS[name]
    if isinstance(name, str) and name.startswith("python:"):
        if safe_mode_enabled():
            raise SurroflowError(f"reader {name!r} imports code; safe mode allows only registered "
                                 f"readers: {available_readers()}")
        module, _, attr = name[len("python:"):].partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr, None)
        except ImportError as exc:
            raise SurroflowError(f"reader {name!r}: cannot import {module} ({exc})") from None
        if not callable(fn):
            raise SurroflowError(f"reader {name!r}: {module}.{attr} is not a function")
        return fn
    raise SurroflowError(f"unknown result reader {name!r}; allowed: {available_readers()} "
                         "or 'python:module:function'")


def read_mesh_file(path: str | os.PathLike[str], variables: Sequence[str]
                   ) -> tuple[Mesh, dict[str, np.ndarray]]:
    """The mesh and the nodal ``variables`` of one result file: NetCDF by suffix, else meshio."""
    from .netcdf import NETCDF_SUFFIXES, read_netcdf_mesh
    p = Path(path)
    if p.suffix.lower() in NETCDF_SUFFIXES:
        return read_netcdf_mesh(p, variables)
    from .meshio_files import read_meshio_mesh
    return read_meshio_mesh(p, variables)


__all__ = ["ReaderFn", "register_reader", "get_reader", "available_readers", "read_mesh_file",
           "FrdBlock", "FrdError", "FrdResult", "frd_fields", "read_frd", "von_mises"]

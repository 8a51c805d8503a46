"""Result files that meshio reads (VTU, VTK, XDMF, Gmsh, MED, ...), fields as ``point_data``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import SurroflowError
from ..mesh import Mesh, from_meshio

#: the suffixes the ``meshio`` reader looks for, in this order
MESHIO_SUFFIXES = (".vtu", ".vtk", ".xdmf", ".xmf", ".msh", ".med")


def _read(path: Path) -> Any:
    import meshio
    if not path.is_file():
        raise SurroflowError(f"{path}: result file not found")
    try:
        return meshio.read(path)
    except Exception as exc:  # meshio raises many types for foreign or damaged files
        raise SurroflowError(f"{path}: meshio cannot read it ({type(exc).__name__}: {exc})") from None


def read_meshio(path: str | Path) -> dict[str, np.ndarray]:
    """``node_coordinates`` and every point-data array of the file ``path``."""
    m = _read(Path(path))
    out = {str(k): np.asarray(v) for k, v in m.point_data.items()}
    return {"node_coordinates": np.asarray(m.points), **out}


def read_meshio_mesh(path: str | Path, variables: Sequence[str]) -> tuple[Mesh, dict[str, np.ndarray]]:
    """The mesh and the point variables ``variables`` of the file ``path``."""
    path = Path(path)
    m = _read(path)
    mesh = from_meshio(m, where=str(path))
    out = {}
    for name in variables:
        if name not in m.point_data:
            raise SurroflowError(f"{path}: no point variable {name!r}; present: {sorted(m.point_data)}")
        out[name] = np.asarray(m.point_data[name], dtype=float)
    return mesh, out


__all__ = ["MESHIO_SUFFIXES", "read_meshio", "read_meshio_mesh"]

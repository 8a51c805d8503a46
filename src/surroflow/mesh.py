"""Unstructured meshes for surrogate data: generation, weights and conversion.

A :class:`Mesh` holds one cell type (meshio's names: ``quad``, ``triangle``, ``hexahedron``,
``tetra``, ``line``), zero-based connectivity and named node and cell sets.  It is written into
datasets as ``node_coordinates(node, space)`` and ``connectivity(cell, vertex)`` (see
:func:`mesh_variables`) and read back with :func:`mesh_from_dataset`.

:func:`plate_with_hole` builds the structured quarter-plate mesh of the CalculiX study;
:func:`lumped_mass_weights` gives the row-sum lumped mass (nodal volume for unit density) per
node, the inner-product weights of a POD on the mesh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import SurroflowError

#: vertices per cell and topological dimension of the supported (linear) cell types
CELL_TYPES: dict[str, tuple[int, int]] = {
    "line": (2, 1),
    "triangle": (3, 2),
    "quad": (4, 2),
    "tetra": (4, 3),
    "hexahedron": (8, 3),
}


@dataclass
class Mesh:
    """A single-cell-type mesh with zero-based connectivity."""

    points: np.ndarray                      # (n_node, n_space)
    cells: np.ndarray                       # (n_cell, n_vertex), zero-based
    cell_type: str
    node_sets: dict[str, np.ndarray] = field(default_factory=dict)
    cell_sets: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=float)
        self.cells = np.ascontiguousarray(self.cells, dtype=np.int64)
        check_mesh(self.points, self.cells, self.cell_type)

    @property
    def n_nodes(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.cells.shape[0])


def check_mesh(points: np.ndarray, cells: np.ndarray, cell_type: str, where: str = "mesh") -> None:
    """Raise :class:`SurroflowError` unless ``points``/``cells`` form a valid mesh."""
    if cell_type not in CELL_TYPES:
        raise SurroflowError(f"{where}: cell type {cell_type!r} is not supported; "
                             f"allowed: {sorted(CELL_TYPES)}")
    if points.ndim != 2 or points.shape[1] not in (1, 2, 3) or points.shape[0] == 0:
        raise SurroflowError(f"{where}: points must be (n_node, 1|2|3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise SurroflowError(f"{where}: non-finite node coordinates")
    nv = CELL_TYPES[cell_type][0]
    if cells.ndim != 2 or cells.shape[1] != nv or cells.shape[0] == 0:
        raise SurroflowError(f"{where}: {cell_type} connectivity must be (n_cell, {nv}), got {cells.shape}")
    if cells.min() < 0 or cells.max() >= points.shape[0]:
        raise SurroflowError(f"{where}: connectivity refers to nodes outside 0..{points.shape[0] - 1}")


# --------------------------------------------------------------------------- generation
def _graded(n: int, ratio: float) -> np.ndarray:
    """``n + 1`` points in [0, 1], each interval ``ratio`` times the previous one."""
    if n < 1:
        raise SurroflowError(f"mesh: need at least one interval, got {n}")
    if ratio <= 0:
        raise SurroflowError(f"mesh: grading ratio must be > 0, got {ratio}")
    if abs(ratio - 1.0) < 1e-12:
        return np.linspace(0.0, 1.0, n + 1)
    steps = ratio ** np.arange(n)
    s = np.concatenate([[0.0], np.cumsum(steps)])
    return s / s[-1]


def plate_with_hole(width: float = 50.0, height: float = 50.0, radius: float = 10.0,
                    n_theta: int = 12, n_radial: int = 14, grading: float = 1.12) -> Mesh:
    """Structured quad mesh of a quarter plate ``[0, width] x [0, height]`` minus a hole of ``radius``.

    The quarter is mapped from the hole (inner edge) to the outer edges: hole angles
    ``0..45°`` go to the right edge ``x = width`` and ``45..90°`` to the top edge ``y = height``,
    with ``n_theta`` cells on each half and ``n_radial`` cells from the hole outward, growing by
    ``grading`` (cells are finest at the hole, where the stress concentrates).

    Node sets (zero-based): ``sym_x`` (on ``y = 0``, fix ``u_y``), ``sym_y`` (on ``x = 0``,
    fix ``u_x``), ``top`` (on ``y = height``), ``right`` (``x = width``), ``hole``; cell set
    ``top`` holds the cells whose face 2 (vertices 2-3, one-based) lies on ``y = height``.
    Cells are counter-clockwise.
    """
    if not (0 < radius < min(width, height)):
        raise SurroflowError(f"mesh: need 0 < radius ({radius}) < min(width, height) "
                             f"({min(width, height)})")
    if n_theta < 1 or n_radial < 1:
        raise SurroflowError("mesh: n_theta and n_radial must be >= 1")
    na = 2 * n_theta                       # angular intervals
    i = np.arange(na + 1)
    theta = 0.5 * np.pi * i / na
    hole = radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    t = i / n_theta
    outer = np.where((i <= n_theta)[:, None],
                     np.stack([np.full(i.shape, width), height * t], axis=1),
                     np.stack([width * (2.0 - t), np.full(i.shape, height)], axis=1))
    s = _graded(n_radial, grading)
    # node (i, j) -> i * (n_radial + 1) + j
    pts = hole[:, None, :] + s[None, :, None] * (outer - hole)[:, None, :]
    points = pts.reshape(-1, 2)
    nr = n_radial + 1
    ii, jj = np.meshgrid(np.arange(na), np.arange(n_radial), indexing="ij")
    n00 = (ii * nr + jj).ravel()
    cells = np.stack([n00, n00 + 1, n00 + nr + 1, n00 + nr], axis=1)
    idx = np.arange(points.shape[0]).reshape(na + 1, nr)
    node_sets = {
        "sym_x": idx[0, :].copy(),
        "sym_y": idx[na, :].copy(),
        "right": idx[: n_theta + 1, n_radial].copy(),
        "top": idx[n_theta:, n_radial].copy(),
        "hole": idx[:, 0].copy(),
    }
    cell_idx = np.arange(cells.shape[0]).reshape(na, n_radial)
    cell_sets = {"top": cell_idx[n_theta:, n_radial - 1].copy(),
                 "right": cell_idx[:n_theta, n_radial - 1].copy()}
    # exact coordinates on the symmetry lines and outer edges (no round-off from cos(pi/2))
    points[idx[na, :], 0] = 0.0
    points[idx[0, :], 1] = 0.0
    points[node_sets["top"], 1] = height
    points[node_sets["right"], 0] = width
    return Mesh(points, cells, "quad", node_sets, cell_sets)


def rectangle(length: float, height: float, nx: int, ny: int) -> Mesh:
    """Structured quad mesh of ``[0, length] x [0, height]``; node sets ``left``, ``right``,
    ``bottom``, ``top``, cell sets ``right`` (face 2 on ``x = length``) and ``top`` (face 3
    on ``y = height``)."""
    if nx < 1 or ny < 1 or length <= 0 or height <= 0:
        raise SurroflowError("mesh: rectangle needs positive sizes and nx, ny >= 1")
    x = np.linspace(0.0, length, nx + 1)
    y = np.linspace(0.0, height, ny + 1)
    X, Y = np.meshgrid(x, y, indexing="ij")            # node (i, j) -> i * (ny + 1) + j
    points = np.stack([X.ravel(), Y.ravel()], axis=1)
    nr = ny + 1
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    n00 = (ii * nr + jj).ravel()
    # counter-clockwise: (i,j) (i+1,j) (i+1,j+1) (i,j+1)
    cells = np.stack([n00, n00 + nr, n00 + nr + 1, n00 + 1], axis=1)
    idx = np.arange(points.shape[0]).reshape(nx + 1, nr)
    cidx = np.arange(cells.shape[0]).reshape(nx, ny)
    return Mesh(points, cells, "quad",
                {"left": idx[0, :].copy(), "right": idx[nx, :].copy(),
                 "bottom": idx[:, 0].copy(), "top": idx[:, ny].copy()},
                {"right": cidx[nx - 1, :].copy(), "top": cidx[:, ny - 1].copy()})


# --------------------------------------------------------------------------- weights
_GAUSS2 = np.array([-1.0, 1.0]) / np.sqrt(3.0)


def _quad_shape(xi: float, eta: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    n = 0.25 * (1 + r[:, 0] * xi) * (1 + r[:, 1] * eta)
    dn = 0.25 * np.stack([r[:, 0] * (1 + r[:, 1] * eta), r[:, 1] * (1 + r[:, 0] * xi)], axis=1)
    return n, dn                                      # (4,), (4, 2)


def _hex_shape(xi: float, eta: float, zeta: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                  [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=float)
    a, b, c = 1 + r[:, 0] * xi, 1 + r[:, 1] * eta, 1 + r[:, 2] * zeta
    n = 0.125 * a * b * c
    dn = 0.125 * np.stack([r[:, 0] * b * c, r[:, 1] * a * c, r[:, 2] * a * b], axis=1)
    return n, dn                                      # (8,), (8, 3)


def _measure(jac: np.ndarray) -> np.ndarray:
    """|det J| generalised to manifolds: sqrt(det(J^T J)) for (m, n_space, n_ref) Jacobians."""
    if jac.shape[1] == jac.shape[2]:
        return np.abs(np.linalg.det(jac))
    return np.sqrt(np.abs(np.linalg.det(np.einsum("mki,mkj->mij", jac, jac))))


def _cell_nodal_integrals(points: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """``∫ N_i dΩ`` per cell and vertex, shape ``(n_cell, n_vertex)``."""
    x = points[cells]                                  # (m, k, d)
    if cell_type in ("line", "triangle", "tetra"):
        # linear simplices: each vertex gets 1/k of the cell measure
        edges = x[:, 1:, :] - x[:, :1, :]              # (m, k-1, d)
        jac = np.transpose(edges, (0, 2, 1))           # (m, d, k-1)
        meas = _measure(jac) / {"line": 1.0, "triangle": 2.0, "tetra": 6.0}[cell_type]
        k = cells.shape[1]
        return np.repeat((meas / k)[:, None], k, axis=1)
    if cell_type == "quad":
        out = np.zeros(cells.shape, dtype=float)
        for xi in _GAUSS2:
            for eta in _GAUSS2:
                n, dn = _quad_shape(xi, eta)
                jac = np.einsum("mkd,kr->mdr", x, dn)
                out += _measure(jac)[:, None] * n[None, :]
        return out
    if cell_type == "hexahedron":
        out = np.zeros(cells.shape, dtype=float)
        for xi in _GAUSS2:
            for eta in _GAUSS2:
                for zeta in _GAUSS2:
                    n, dn = _hex_shape(xi, eta, zeta)
                    jac = np.einsum("mkd,kr->mdr", x, dn)
                    out += _measure(jac)[:, None] * n[None, :]
        return out
    raise SurroflowError(f"lumped mass: cell type {cell_type!r} not supported; allowed: {sorted(CELL_TYPES)}")


def _infer_cell_type(points: np.ndarray, cells: np.ndarray) -> str:
    k = cells.shape[1]
    if k == 2:
        return "line"
    if k == 3:
        return "triangle"
    if k == 8:
        return "hexahedron"
    if k == 4:
        if points.shape[1] == 2:
            return "quad"
        # 4 vertices in 3D: tetra unless the points are coplanar (quad)
        x = points[cells[: min(len(cells), 16)]]
        vol = np.abs(np.linalg.det(x[:, 1:, :] - x[:, :1, :]))
        scale = np.ptp(points, axis=0).max() ** 3
        return "quad" if np.all(vol <= 1e-12 * max(scale, 1e-300)) else "tetra"
    raise SurroflowError(f"lumped mass: cannot infer the cell type of {k}-vertex cells; pass cell_type")


def lumped_mass_weights(points: np.ndarray, cells: np.ndarray, cell_type: str | None = None,
                        density: float = 1.0, thickness: float = 1.0) -> np.ndarray:
    """Row-sum lumped mass per node: ``w_i = density * thickness * Σ_cells ∫ N_i dΩ``.

    With unit density and thickness this is the nodal volume (area in 2D); the weights sum to
    the measure of the domain, so the weighted norm of a field approximates its L2 norm.
    ``cells`` is ``(n_cell, n_vertex)`` zero-based; ``cell_type`` is inferred from the vertex
    count when omitted.  Every node must belong to a cell (a POD needs positive weights).
    """
    points = np.asarray(points, dtype=float)
    cells = np.asarray(cells, dtype=np.int64)
    ctype = cell_type or _infer_cell_type(points, cells)
    check_mesh(points, cells, ctype, where="lumped mass")
    local = _cell_nodal_integrals(points, cells, ctype)
    w = np.zeros(points.shape[0])
    np.add.at(w, cells.ravel(), local.ravel())
    w *= float(density) * float(thickness)
    orphans = np.flatnonzero(w <= 0)
    if orphans.size:
        raise SurroflowError(f"lumped mass: {orphans.size} node(s) belong to no cell of positive "
                             f"measure (first: {orphans[:5].tolist()}); remove unused nodes")
    return w


def nodal_volume_weights(points: np.ndarray, cells: np.ndarray, cell_type: str | None = None) -> np.ndarray:
    """Nodal volume (area in 2D, length in 1D): the lumped mass of a unit density."""
    return lumped_mass_weights(points, cells, cell_type)


def field_weights(node_weights: np.ndarray, n_components: int = 1) -> np.ndarray:
    """Weights of a flattened ``(node, component)`` field: each node weight repeated per component."""
    w = np.asarray(node_weights, dtype=float)
    return np.repeat(w, n_components) if n_components > 1 else w.copy()


# --------------------------------------------------------------------------- meshio and datasets
def to_meshio(mesh: Mesh, point_data: Mapping[str, np.ndarray] | None = None) -> Any:
    """A :class:`meshio.Mesh` (3D points, one cell block) with optional ``point_data``."""
    import meshio

    pts = mesh.points
    if pts.shape[1] < 3:
        pts = np.hstack([pts, np.zeros((pts.shape[0], 3 - pts.shape[1]))])
    return meshio.Mesh(pts, [(mesh.cell_type, mesh.cells)], point_data=dict(point_data or {}))


def from_meshio(m: Any, dim: int | None = None, where: str = "mesh") -> Mesh:
    """A :class:`Mesh` from a :class:`meshio.Mesh`.

    All cell blocks must share one supported type (blocks of lower dimension, such as boundary
    lines of a 2D mesh, are dropped).  ``dim`` keeps that many coordinates; by default a
    trailing coordinate that is zero everywhere is dropped (2D meshes stored in 3D).
    """
    blocks = [(b.type, np.asarray(b.data)) for b in m.cells]
    if not blocks:
        raise SurroflowError(f"{where}: no cells")
    tdim = max(CELL_TYPES.get(t, (0, -1))[1] for t, _ in blocks)
    keep = [(t, c) for t, c in blocks if CELL_TYPES.get(t, (0, -1))[1] == tdim]
    types = sorted({t for t, _ in keep})
    unsupported = sorted({t for t, _ in blocks if t not in CELL_TYPES})
    if len(types) != 1 or tdim < 1:
        raise SurroflowError(f"{where}: needs one linear cell type of the highest dimension; found "
                             f"{sorted({t for t, _ in blocks})} (supported: {sorted(CELL_TYPES)})"
                             + (f"; unsupported: {unsupported}" if unsupported else ""))
    cells = np.concatenate([c for _, c in keep], axis=0)
    pts = np.asarray(m.points, dtype=float)
    if dim is None:
        dim = pts.shape[1]
        while dim > max(tdim, 1) and np.all(pts[:, dim - 1] == 0.0):
            dim -= 1
    return Mesh(pts[:, :dim], cells, types[0])


def mesh_variables(mesh: Mesh, units: str = "m", thickness: float = 1.0
                   ) -> dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]]:
    """Dataset variables describing ``mesh``: ``{name: (dims, values, attrs)}``.

    ``node_coordinates(node, space)``, ``connectivity(cell, vertex)`` (zero-based, with the
    meshio cell type in the ``cell_type`` attribute) and ``mass(node)``, the row-sum lumped mass
    of unit density (nodal volume; ``thickness`` for 2-D meshes), which every POD on the mesh
    takes as its inner-product weights (:func:`surroflow.snapshots.space_weights`); ready for
    ``xr.Dataset(...)``.
    """
    space = mesh.points.shape[1]
    dim = CELL_TYPES[mesh.cell_type][1] if mesh.cell_type in CELL_TYPES else space
    volume_units = f"{units}{dim}" if dim > 1 else units
    return {
        "mass": (("node",), lumped_mass_weights(mesh.points, mesh.cells, mesh.cell_type, thickness=thickness),
                 {"units": volume_units, "long_name": "lumped nodal mass of unit density (POD weights)"}),
        "node_coordinates": (("node", "space"), mesh.points.copy(),
                             {"units": units, "long_name": "node coordinates",
                              "space_names": " ".join("xyz"[:space])}),
        "connectivity": (("cell", "vertex"), mesh.cells.astype(np.int64),
                         {"long_name": "cell to node connectivity (zero-based node index)",
                          "cell_type": mesh.cell_type, "start_index": 0}),
    }


def mesh_from_dataset(ds: Any) -> Mesh:
    """The :class:`Mesh` stored in a dataset by :func:`mesh_variables`."""
    for v in ("node_coordinates", "connectivity"):
        if v not in ds.variables:
            raise SurroflowError(f"dataset has no mesh: variable {v!r} missing")
    conn = ds["connectivity"]
    return Mesh(np.asarray(ds["node_coordinates"].values), np.asarray(conn.values),
                str(conn.attrs.get("cell_type", "")) or _infer_cell_type(
                    np.asarray(ds["node_coordinates"].values), np.asarray(conn.values)))

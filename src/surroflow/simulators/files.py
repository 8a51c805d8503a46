"""Import existing results: a parameter table plus one result file per sample.

For users who already ran their solver.  The table is a CSV file with a ``file`` column (paths
relative to the CSV's folder, or absolute), one column per parameter and optionally a
``split`` column (``train``/``test``).  Each result file is anything meshio reads (VTU, VTK,
XDMF, Gmsh, MED, ...) with the fields as ``point_data``, or a NetCDF file in surroflow's
layout (``node_coordinates(node, space)``, ``connectivity(cell, vertex)`` and variables with a
``node`` dimension).

All files must share one mesh (same node count, coordinates and connectivity) and hold every
requested variable with the same shape; errors name the offending file (and the table row).
:func:`import_files` writes the canonical dataset: ``design(sample, parameter)``, each
variable ``name(sample, node[, component])``, ``status(sample)`` (all ok),
``wall_time(sample)`` (NaN: not measured), ``node_coordinates``/``connectivity`` and a
``source_file(sample)`` coordinate.  :class:`FilesSource` (``name: files``) exposes the same
data through the simulator interface.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..mesh import Mesh, from_meshio, mesh_variables
from .base import Coordinate, OutputVariable, Parameter, SampleFailure, Simulator

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
RESERVED_COLUMNS = ("file", "split")
SPLITS = ("train", "test")
COMPONENT_NAMES = "xyz"


@dataclass
class Table:
    path: Path
    parameters: list[str]
    values: np.ndarray            # (n_sample, n_parameter)
    files: list[Path]
    splits: list[str] | None
    rows: list[int]               # 1-based line numbers in the CSV (header = line 1)


def read_table(table_csv: str | os.PathLike[str], split: str | None = None) -> Table:
    """Read and check the parameter table; ``split`` keeps only the rows of that split."""
    path = Path(table_csv)
    if not path.is_file():
        raise SurroflowError(f"{path}: parameter table not found")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise SurroflowError(f"{path}: empty table") from None
        body = [(k + 2, row) for k, row in enumerate(reader) if any(c.strip() for c in row)]
    if "file" not in header:
        raise SurroflowError(f"{path}: no 'file' column; columns: {header}")
    if len(set(header)) != len(header):
        raise SurroflowError(f"{path}: duplicate column names in {header}")
    params = [h for h in header if h not in RESERVED_COLUMNS]
    if not params:
        raise SurroflowError(f"{path}: no parameter columns besides {list(RESERVED_COLUMNS)}")
    for p in params:
        if not p.isidentifier():
            raise SurroflowError(f"{path}: parameter column {p!r} must be an identifier")
    if split is not None and split not in SPLITS:
        raise SurroflowError(f"split={split!r} is not allowed; allowed: {list(SPLITS)}")
    if split is not None and "split" not in header:
        raise SurroflowError(f"{path}: split={split!r} asked but the table has no 'split' column")
    values, files, splits, rows = [], [], [], []
    ifile = header.index("file")
    for line, row in body:
        if len(row) != len(header):
            raise SurroflowError(f"{path}:{line}: {len(row)} fields, expected {len(header)} ({header})")
        rec = dict(zip(header, (c.strip() for c in row)))
        if "split" in rec:
            if rec["split"] not in SPLITS:
                raise SurroflowError(f"{path}:{line}: split {rec['split']!r} is not allowed; "
                                     f"allowed: {list(SPLITS)}")
            if split is not None and rec["split"] != split:
                continue
        vals = []
        for p in params:
            try:
                v = float(rec[p])
            except ValueError:
                raise SurroflowError(f"{path}:{line}: {p}={rec[p]!r} is not a number") from None
            if not np.isfinite(v):
                raise SurroflowError(f"{path}:{line}: {p}={rec[p]!r} is not finite")
            vals.append(v)
        f = Path(row[ifile].strip())
        if not str(f):
            raise SurroflowError(f"{path}:{line}: empty 'file'")
        f = f if f.is_absolute() else path.parent / f
        if not f.is_file():
            raise SurroflowError(f"{path}:{line}: result file {f} not found")
        values.append(vals)
        files.append(f)
        splits.append(rec.get("split", ""))
        rows.append(line)
    if not files:
        raise SurroflowError(f"{path}: no samples" + (f" in split {split!r}" if split else ""))
    return Table(path, params, np.asarray(values, dtype=float), files,
                 splits if "split" in header else None, rows)


# --------------------------------------------------------------------------- one file
def read_result_file(path: Path, variables: Sequence[str]) -> tuple[Mesh, dict[str, np.ndarray]]:
    """The mesh and the requested nodal variables of one result file."""
    if path.suffix.lower() in NETCDF_SUFFIXES:
        return _read_netcdf(path, variables)
    import meshio
    try:
        m = meshio.read(path)
    except Exception as exc:  # meshio raises many types for foreign or damaged files
        raise SurroflowError(f"{path}: meshio cannot read it ({type(exc).__name__}: {exc})") from None
    mesh = from_meshio(m, where=str(path))
    out = {}
    for name in variables:
        if name not in m.point_data:
            raise SurroflowError(f"{path}: no point variable {name!r}; present: {sorted(m.point_data)}")
        out[name] = np.asarray(m.point_data[name], dtype=float)
    return mesh, out


def _read_netcdf(path: Path, variables: Sequence[str]) -> tuple[Mesh, dict[str, np.ndarray]]:
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise SurroflowError(f"{path}: not a readable NetCDF file ({type(exc).__name__}: {exc})") from None
    with ds:
        for v in ("node_coordinates", "connectivity"):
            if v not in ds.variables:
                raise SurroflowError(f"{path}: NetCDF result files need {v!r} "
                                     "(node_coordinates(node, space), connectivity(cell, vertex))")
        from ..mesh import mesh_from_dataset
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


def _same_mesh(ref: Mesh, ref_file: Path, mesh: Mesh, path: Path) -> None:
    if mesh.n_nodes != ref.n_nodes:
        raise SurroflowError(f"{path}: {mesh.n_nodes} nodes, but {ref_file} has {ref.n_nodes}; "
                             "all files must share one mesh")
    if mesh.points.shape != ref.points.shape:
        raise SurroflowError(f"{path}: coordinates of shape {mesh.points.shape}, but {ref_file} has "
                             f"{ref.points.shape}")
    scale = max(float(np.ptp(ref.points, axis=0).max()), 1e-300)
    dev = float(np.max(np.abs(mesh.points - ref.points)))
    if dev > 1e-9 * scale:
        raise SurroflowError(f"{path}: node coordinates differ from {ref_file} (max deviation "
                             f"{dev:.3g}); all files must share one mesh")
    if mesh.cell_type != ref.cell_type or mesh.cells.shape != ref.cells.shape or \
            not np.array_equal(mesh.cells, ref.cells):
        raise SurroflowError(f"{path}: connectivity ({mesh.cell_type}, {mesh.n_cells} cells) differs "
                             f"from {ref_file} ({ref.cell_type}, {ref.n_cells} cells)")


def _dims_for(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, ...]]:
    """Dataset dims per variable: ``(node,)``, ``(node, component)`` or ``(node, <name>_component)``."""
    dims: dict[str, tuple[str, ...]] = {}
    component_size: int | None = None
    for name, shape in shapes.items():
        if len(shape) == 1:
            dims[name] = ("node",)
        elif len(shape) == 2:
            k = shape[1]
            if k <= 3 and component_size in (None, k):
                component_size = k
                dims[name] = ("node", "component")
            else:
                dims[name] = ("node", f"{name}_component")
        else:
            raise SurroflowError(f"variable {name!r}: nodal values of shape {shape} are not supported "
                                 "(scalars or vectors per node only)")
    return dims


def _component_coords(shapes: Mapping[str, tuple[int, ...]], dims: Mapping[str, tuple[str, ...]]
                      ) -> dict[str, np.ndarray]:
    coords = {}
    for name, d in dims.items():
        if len(d) == 2:
            k = shapes[name][1]
            coords[d[1]] = (np.array(list(COMPONENT_NAMES[:k]), dtype=object) if d[1] == "component"
                            else np.arange(k))
    return coords


# --------------------------------------------------------------------------- the dataset
def load_files(table_csv: str | os.PathLike[str], variables: Sequence[str], split: str | None = None,
               ) -> tuple[Table, Mesh, dict[str, np.ndarray]]:
    """Read every file of the table; ``{variable: (n_sample, n_node[, k])}``."""
    variables = list(variables)
    if not variables or len(set(variables)) != len(variables):
        raise SurroflowError(f"variables: a non-empty list of distinct names is required, got {variables}")
    table = read_table(table_csv, split)
    ref_mesh: Mesh | None = None
    ref_file = table.files[0]
    ref_shapes: dict[str, tuple[int, ...]] = {}
    data: dict[str, list[np.ndarray]] = {v: [] for v in variables}
    for f, line in zip(table.files, table.rows):
        try:
            mesh, fields = read_result_file(f, variables)
        except SurroflowError as exc:
            raise SurroflowError(f"{exc} (table {table.path}:{line})") from None
        if ref_mesh is None:
            ref_mesh = mesh
            ref_shapes = {k: v.shape for k, v in fields.items()}
            for k, shape in ref_shapes.items():
                if not shape or shape[0] != mesh.n_nodes:
                    raise SurroflowError(f"{f}: variable {k!r} has shape {shape}; expected "
                                         f"{mesh.n_nodes} nodal values")
        else:
            _same_mesh(ref_mesh, ref_file, mesh, f)
            for k, v in fields.items():
                if v.shape != ref_shapes[k]:
                    raise SurroflowError(f"{f}: variable {k!r} has shape {v.shape}, but {ref_file} "
                                         f"has {ref_shapes[k]}")
        for k, v in fields.items():
            if not np.all(np.isfinite(v)):
                raise SurroflowError(f"{f}: variable {k!r} has non-finite values")
            data[k].append(v)
    assert ref_mesh is not None
    return table, ref_mesh, {k: np.stack(v) for k, v in data.items()}


def files_dataset(table_csv: str | os.PathLike[str], variables: Sequence[str], *,
                  split: str | None = None, units: Mapping[str, str] | None = None,
                  coordinate_units: str = "1", parameter_units: Mapping[str, str] | None = None,
                  ) -> xr.Dataset:
    """The canonical dataset of a table of result files (not written)."""
    table, mesh, data = load_files(table_csv, variables, split)
    units = dict(units or {})
    parameter_units = dict(parameter_units or {})
    unknown = sorted((set(units) - set(data)) | (set(parameter_units) - set(table.parameters)))
    if unknown:
        raise SurroflowError(f"units given for unknown variables or parameters: {unknown}")
    n = len(table.files)
    shapes = {k: v.shape[1:] for k, v in data.items()}
    dims = _dims_for(shapes)
    from ..io import status_attrs
    ds = xr.Dataset(
        {
            "design": (("sample", "parameter"), table.values,
                       {"long_name": "parameter values of each design point"}),
            "status": (("sample",), np.zeros(n, dtype="i1"), status_attrs()),
            "wall_time": (("sample",), np.full(n, np.nan),
                          {"units": "s", "long_name": "wall-clock time of the high-fidelity run",
                           "comment": "not measured: results imported from existing files"}),
        },
        coords={
            "sample": ("sample", np.arange(n), {"long_name": "sample index"}),
            "parameter": ("parameter", np.array(table.parameters, dtype=object)),
            "parameter_units": ("parameter", np.array([parameter_units.get(p, "1") for p in table.parameters],
                                                      dtype=object)),
            "parameter_low": ("parameter", table.values.min(axis=0)),
            "parameter_high": ("parameter", table.values.max(axis=0)),
            "source_file": ("sample", np.array([str(f) for f in table.files], dtype=object),
                            {"long_name": "result file of the sample"}),
            "node": ("node", np.arange(mesh.n_nodes), {"long_name": "mesh node index"}),
            **{d: (d, v) for d, v in _component_coords(shapes, dims).items()},
        },
        attrs={"source": "files", "table": str(table.path),
               "split": split if split is not None else "all"},
    )
    if table.splits is not None:
        ds = ds.assign_coords(sample_split=("sample", np.array(table.splits, dtype=object)))
    for name, values in data.items():
        ds[name] = (("sample", *dims[name]), values,
                    {"units": units.get(name, "1"), "long_name": name})
    for name, (vdims, values, attrs) in mesh_variables(mesh, units=coordinate_units).items():
        ds[name] = (vdims, values, attrs)
    return ds


def import_files(table_csv: str | os.PathLike[str], variables: Sequence[str],
                 out_nc: str | os.PathLike[str], *, split: str | None = None,
                 units: Mapping[str, str] | None = None, coordinate_units: str = "1",
                 parameter_units: Mapping[str, str] | None = None,
                 study: str | None = None, config_section: Mapping[str, Any] | None = None) -> Path:
    """Convert a table of result files into the canonical ``generate`` dataset at ``out_nc``.

    Written atomically with :func:`surroflow.io.write_dataset`, with provenance attributes.
    """
    from ..io import provenance, write_dataset
    ds = files_dataset(table_csv, variables, split=split, units=units,
                       coordinate_units=coordinate_units, parameter_units=parameter_units)
    section = dict(config_section) if config_section is not None else {
        "table": str(table_csv), "variables": list(variables), "split": split}
    ds.attrs.update(provenance("generate", section, study))
    return write_dataset(ds, out_nc)


# --------------------------------------------------------------------------- the simulator
_SETTINGS = {"table", "variables", "units", "coordinate_units", "parameter_units"}


class FilesSource(Simulator):
    """Existing results as a data source (``name: files``).

    Settings: ``table`` (CSV), ``variables`` (nodal variables to read), ``units`` (variable ->
    units), ``coordinate_units`` (of the node coordinates), ``parameter_units``.
    :meth:`run_sample` returns the fields of the table row whose parameters match (no solver
    runs); :meth:`dataset` and :func:`import_files` convert the whole table at once.
    """

    name = "files"
    time_dim = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise SurroflowError(f"simulator.settings: unknown key(s) {unknown} for files; "
                                 f"allowed: {sorted(_SETTINGS)}")
        for key in ("table", "variables"):
            if key not in settings:
                raise SurroflowError(f"simulator.settings.{key}: required for the files source")
        variables = settings["variables"]
        if isinstance(variables, str) or not isinstance(variables, Sequence) or not variables:
            raise SurroflowError("simulator.settings.variables: a non-empty list of names")
        self.variables = [str(v) for v in variables]
        self.units = dict(settings.get("units") or {})
        self.coordinate_units = str(settings.get("coordinate_units", "1"))
        self.parameter_units = dict(settings.get("parameter_units") or {})
        self.table = read_table(settings["table"])
        self.mesh, first = read_result_file(self.table.files[0], self.variables)
        self._shapes = {k: v.shape for k, v in first.items()}     # (n_node[, k])
        self._dims = _dims_for(self._shapes)

    def parameters(self) -> list[Parameter]:
        out = []
        for j, name in enumerate(self.table.parameters):
            lo, hi = float(self.table.values[:, j].min()), float(self.table.values[:, j].max())
            if not lo < hi:                       # a constant column: a nominal, non-empty range
                hi = lo + max(abs(lo), 1.0) * 1e-9
            out.append(Parameter(name, lo, hi, self.parameter_units.get(name, "1"), name))
        return out

    def outputs(self) -> list[OutputVariable]:
        return [OutputVariable(k, self._dims[k], self.units.get(k, "1"), k) for k in self.variables]

    def coordinates(self) -> dict[str, Coordinate]:
        coords = {"node": Coordinate(("node",), np.arange(self.mesh.n_nodes), "1", "mesh node index")}
        for d, v in _component_coords(self._shapes, self._dims).items():
            coords[d] = Coordinate((d,), v, "1", "vector component")
        return coords

    def attrs(self) -> dict[str, Any]:
        return {"source": "files", "table": str(self.table.path)}

    def mesh_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]]:
        return mesh_variables(self.mesh, units=self.coordinate_units)

    def run_sample(self, params: Mapping[str, Any], sample_id: str | None = None) -> dict[str, np.ndarray]:
        names = self.table.parameters
        try:
            x = np.array([float(params[n]) for n in names])
        except (KeyError, TypeError, ValueError):
            raise SampleFailure(f"files: parameters {sorted(map(str, params))} do not match the "
                                f"table columns {names}", "failed") from None
        scale = np.maximum(np.abs(self.table.values).max(axis=0), 1e-300)
        hit = np.flatnonzero(np.all(np.abs(self.table.values - x) <= 1e-12 * scale, axis=1))
        if hit.size == 0:
            raise SampleFailure(f"files: no row of {self.table.path} has parameters {dict(zip(names, x))}",
                                "failed")
        f = self.table.files[int(hit[0])]
        mesh, fields = read_result_file(f, self.variables)
        _same_mesh(self.mesh, self.table.files[0], mesh, f)
        return fields

    def dataset(self, split: str | None = None) -> xr.Dataset:
        return files_dataset(self.table.path, self.variables, split=split, units=self.units,
                             coordinate_units=self.coordinate_units, parameter_units=self.parameter_units)


__all__ = ["FilesSource", "import_files", "files_dataset", "load_files", "read_table", "read_result_file"]


def import_files_for_study(table_csv: str, out_nc: str, *, split: str, settings: Mapping[str, Any],
                           study: str, config_section: Mapping[str, Any], log_file: str | None = None) -> Path:
    """The ``import_files`` rule: one split of a ``files`` study's table into ``out_nc``."""
    from ..logging_utils import stage_logger
    FilesSource(**settings)  # validates the settings with named-key errors
    with stage_logger("import_files", log_file) as logger:
        table = read_table(table_csv)
        if table.splits is None:
            raise SurroflowError(f"{table_csv}: a 'split' column (train/test per row) is required for a "
                                 "files study; test rows never touch the reduction or training")
        path = import_files(table_csv, settings["variables"], out_nc, split=split,
                            units=settings.get("units"), coordinate_units=settings.get("coordinate_units", "1"),
                            parameter_units=settings.get("parameter_units"), study=study,
                            config_section=config_section)
        logger.info("%s: imported the %s rows of %s", out_nc, split, table_csv)
        return path

"""Import existing results: a parameter table plus one result file per sample (``name: files``).

For users who already ran their solver.  Settings (unknown keys are refused):

``table`` (required)
    a CSV file with a ``file`` column (paths relative to the CSV's folder, or absolute), one
    column per declared parameter and optionally a ``split`` column (``train``/``test``).  Any
    other column (a solver's own ``sample`` index, a comment) is an error naming it: only the
    declared parameters become model inputs.
``parameters`` (required)
    the list of parameter columns, in the order of the model inputs.
``variables`` (required)
    the nodal variables to read from every file.
``units``, ``parameter_units``
    units of the variables and of the parameters (default ``"1"``).
``coordinate_units``
    units of the node coordinates (default ``"1"``).

Each result file is anything meshio reads (VTU, VTK, XDMF, Gmsh, MED, ...) with the fields as
``point_data``, or a NetCDF file in surroflow's layout (``node_coordinates(node, space)``,
``connectivity(cell, vertex)`` and variables with a ``node`` dimension); see
:func:`surroflow.readers.read_mesh_file`.  All files must share one mesh (same node count,
coordinates and connectivity) and hold every requested variable with the same shape; errors
name the offending file and table line.

Which rows form the ``train``, ``test`` and (optional) ``calibration`` splits
(``design.n_train``/``n_test``/``n_calibration`` are honoured):

* with a ``split`` column: the first ``n_train`` rows marked ``train``, the first ``n_test``
  rows marked ``test`` and the first ``n_calibration`` marked ``calibration``, in table order
  (fewer rows than asked is an error);
* without one: a split by sample (table row) with the seeded permutation
  ``numpy.random.default_rng(design.seed).permutation(n_rows)``: its first ``n_train`` rows
  train, the next ``n_test`` test, the next ``n_calibration`` calibration (together they may not
  exceed the rows).

:func:`files_split_dataset` builds the generate dataset of one split: ``design(sample,
parameter)``, each variable ``name(sample, node[, component])``, ``status(sample)`` (all ok),
``status_reason(sample)``, ``wall_time(sample)`` (NaN: no solver timings),
``node_coordinates``/``connectivity``/``mass(node)``, and ``source_file(sample)`` and
``table_line(sample)`` coordinates; no provenance attributes (the ``import_files`` stage adds
them).  :meth:`FilesSource.check` finds every mistake that can be found before any job.
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
from ..io import status_attrs
from ..mesh import Mesh, mesh_variables
from ..readers import read_mesh_file
from ..snapshots import SPLITS
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting,
                   setting_error)

RESERVED_COLUMNS = ("file", "split")
COMPONENT_NAMES = "xyz"
SETTINGS = ("table", "parameters", "variables", "units", "coordinate_units", "parameter_units")
REQUIRED = ("table", "parameters", "variables")


@dataclass
class Table:
    """The rows of a parameter table (every row, both splits)."""

    path: Path
    parameters: list[str]
    values: np.ndarray            # (n_row, n_parameter)
    files: list[Path]
    splits: list[str] | None      # per row, when the table has a ``split`` column
    lines: list[int]              # 1-based line numbers in the CSV (header = line 1)

    @property
    def n_rows(self) -> int:
        return len(self.files)


def _names(value: Any, key: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise SurroflowError(f"simulator.settings.{key}: a non-empty list of names is required")
    names = [str(v) for v in value]
    if len(set(names)) != len(names):
        raise SurroflowError(f"simulator.settings.{key}: duplicate names in {names}")
    return names


def read_table(table_csv: str | os.PathLike[str], parameters: Sequence[str], *,
               check_files: bool = True) -> Table:
    """Read and check the parameter table: declared parameter columns, ``file``, optional ``split``."""
    path = Path(table_csv)
    if not path.is_file():
        raise SurroflowError(f"simulator.settings.table: {path} not found")
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
    params = list(parameters)
    reserved = [p for p in params if p in RESERVED_COLUMNS]
    if reserved:
        raise SurroflowError(f"simulator.settings.parameters: {reserved} are reserved column names, "
                             "not parameters")
    bad_names = [p for p in params if not p.isidentifier()]
    if bad_names:
        raise SurroflowError(f"simulator.settings.parameters: {bad_names} must be identifiers")
    missing = [p for p in params if p not in header]
    if missing:
        raise SurroflowError(f"{path}: declared parameter(s) {missing} have no column; columns: {header}")
    unknown = [h for h in header if h not in params and h not in RESERVED_COLUMNS]
    if unknown:
        raise SurroflowError(f"{path}: column(s) {unknown} are neither declared parameters "
                             f"(simulator.settings.parameters: {params}) nor 'file'/'split'; "
                             "declare them or remove them from the table")
    values, files, splits, lines = [], [], [], []
    for line, row in body:
        if len(row) != len(header):
            raise SurroflowError(f"{path}:{line}: {len(row)} fields, expected {len(header)} ({header})")
        rec = dict(zip(header, (c.strip() for c in row)))
        if "split" in rec and rec["split"] not in SPLITS:
            raise SurroflowError(f"{path}:{line}: split {rec['split']!r} is not allowed; "
                                 f"allowed: {list(SPLITS)}")
        vals = []
        for p in params:
            try:
                v = float(rec[p])
            except ValueError:
                raise SurroflowError(f"{path}:{line}: {p}={rec[p]!r} is not a number") from None
            if not np.isfinite(v):
                raise SurroflowError(f"{path}:{line}: {p}={rec[p]!r} is not finite")
            vals.append(v)
        if not rec["file"]:
            raise SurroflowError(f"{path}:{line}: empty 'file'")
        f = Path(rec["file"])
        f = f if f.is_absolute() else path.parent / f
        if check_files and not f.is_file():
            raise SurroflowError(f"{path}:{line}: result file {f} not found")
        values.append(vals)
        files.append(f)
        splits.append(rec.get("split", ""))
        lines.append(line)
    if not files:
        raise SurroflowError(f"{path}: no samples (no data rows)")
    return Table(path, params, np.asarray(values, dtype=float), files,
                 splits if "split" in header else None, lines)


def split_rows(table: Table, design: Mapping[str, Any], split: str) -> np.ndarray:
    """Row indices of ``split`` (see the module docstring), honouring ``n_train``/``n_test``/
    ``n_calibration``/``seed``."""
    if split not in SPLITS:
        raise SurroflowError(f"split={split!r} is not allowed; allowed: {list(SPLITS)}")
    n = {s: int(design.get(f"n_{s}", 0)) for s in SPLITS}
    if table.splits is not None:
        for s in SPLITS:
            have = sum(1 for v in table.splits if v == s)
            if n[s] > have:
                raise SurroflowError(f"design.n_{s}={n[s]}, but {table.path} has only {have} rows with "
                                     f"split {s!r}")
        rows = [i for i, v in enumerate(table.splits) if v == split]
        return np.asarray(rows[:n[split]], dtype=int)
    if sum(n.values()) > table.n_rows:
        keys = " + ".join(f"design.n_{s}" for s in SPLITS if n[s])
        raise SurroflowError(f"{keys} = {sum(n.values())} exceeds the {table.n_rows} rows of {table.path}")
    perm = np.random.default_rng(int(design["seed"])).permutation(table.n_rows)
    start = sum(n[s] for s in SPLITS[:SPLITS.index(split)])
    return np.sort(perm[start:start + n[split]])


# --------------------------------------------------------------------------- one file
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


def _read_row(table: Table, i: int, variables: Sequence[str]) -> tuple[Mesh, dict[str, np.ndarray]]:
    try:
        mesh, fields = read_mesh_file(table.files[i], variables)
    except SurroflowError as exc:
        raise SurroflowError(f"{exc} (table {table.path}:{table.lines[i]})") from None
    for k, v in fields.items():
        if not v.shape or v.shape[0] != mesh.n_nodes:
            raise SurroflowError(f"{table.files[i]}: variable {k!r} has shape {v.shape}; expected "
                                 f"{mesh.n_nodes} nodal values")
    return mesh, fields


def load_files(table: Table, rows: Sequence[int], variables: Sequence[str]
               ) -> tuple[Mesh, dict[str, np.ndarray]]:
    """Read the files of ``rows``: the shared mesh and ``{variable: (n_row, n_node[, k])}``.

    The mesh and shapes are those of the table's first row, so that both splits agree.
    """
    ref_mesh, first = _read_row(table, 0, variables)
    ref_file = table.files[0]
    ref_shapes = {k: v.shape for k, v in first.items()}
    data: dict[str, list[np.ndarray]] = {v: [] for v in variables}
    for i in rows:
        mesh, fields = (ref_mesh, first) if i == 0 else _read_row(table, int(i), variables)
        f = table.files[int(i)]
        _same_mesh(ref_mesh, ref_file, mesh, f)
        for k, v in fields.items():
            if v.shape != ref_shapes[k]:
                raise SurroflowError(f"{f}: variable {k!r} has shape {v.shape}, but {ref_file} "
                                     f"has {ref_shapes[k]}")
            if not np.all(np.isfinite(v)):
                raise SurroflowError(f"{f}: variable {k!r} has non-finite values")
            data[k].append(v)
    return ref_mesh, {k: np.stack(v) if v else np.empty((0, *ref_shapes[k])) for k, v in data.items()}


# --------------------------------------------------------------------------- the source
class FilesSource(Simulator):
    """Existing results as a data source (``name: files``); settings in the module docstring.

    :meth:`run_sample` returns the fields of the table row whose parameters match (no solver
    runs); :meth:`split_dataset` builds the generate dataset of one split at once.
    """

    name = "files"
    time_dim = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise SurroflowError(f"simulator.settings: unknown key(s) {unknown} for files; "
                                 f"allowed: {list(SETTINGS)}")
        for key in REQUIRED:
            if key not in settings:
                raise SurroflowError(f"simulator.settings.{key}: required for the files source")
        self.table_path = Path(check_setting("table", settings["table"], "path"))
        for key in ("units", "parameter_units"):
            if not isinstance(settings.get(key) or {}, Mapping):
                raise setting_error(key, "a mapping name -> units", settings[key])
        self.parameter_names = _names(settings["parameters"], "parameters")
        self.variables = _names(settings["variables"], "variables")
        self.units = dict(settings.get("units") or {})
        self.coordinate_units = str(settings.get("coordinate_units") or "1")
        self.parameter_units = dict(settings.get("parameter_units") or {})
        unknown_units = sorted((set(self.units) - set(self.variables))
                               | (set(self.parameter_units) - set(self.parameter_names)))
        if unknown_units:
            raise SurroflowError(f"simulator.settings: units given for unknown variables or parameters: "
                                 f"{unknown_units}")
        self._table: Table | None = None
        self._first: tuple[Mesh, dict[str, tuple[int, ...]]] | None = None

    # ------------------------------------------------------------------ lazy reads
    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = read_table(self.table_path, self.parameter_names)
        return self._table

    def _first_file(self) -> tuple[Mesh, dict[str, tuple[int, ...]]]:
        if self._first is None:
            mesh, fields = _read_row(self.table, 0, self.variables)
            self._first = (mesh, {k: v.shape for k, v in fields.items()})
        return self._first

    @property
    def mesh(self) -> Mesh:
        return self._first_file()[0]

    def check(self, design: Mapping[str, Any]) -> None:
        """Raise :class:`SurroflowError` for every mistake findable before any job.

        The table (exists, columns, numbers, split values), every result file exists, the
        splits hold ``design.n_train``/``n_test`` rows, and the first file holds the variables
        on a supported mesh.
        """
        for key in ("n_train", "n_test"):
            if key not in design:
                raise SurroflowError(f"design.{key}: required for a files study")
        table = self.table
        for split in SPLITS:
            split_rows(table, {"seed": 0, **design}, split)
        _dims_for(self._first_file()[1])

    # ------------------------------------------------------------------ declarations
    def parameters(self) -> list[Parameter]:
        out = []
        for j, name in enumerate(self.parameter_names):
            lo, hi = float(self.table.values[:, j].min()), float(self.table.values[:, j].max())
            if not lo < hi:                       # a constant column: a nominal, non-empty range
                hi = lo + max(abs(lo), 1.0) * 1e-9
            out.append(Parameter(name, lo, hi, self.parameter_units.get(name, "1"), name))
        return out

    def outputs(self) -> list[OutputVariable]:
        dims = _dims_for(self._first_file()[1])
        return [OutputVariable(k, dims[k], self.units.get(k, "1"), k) for k in self.variables]

    def coordinates(self) -> dict[str, Coordinate]:
        shapes = self._first_file()[1]
        coords = {"node": Coordinate(("node",), np.arange(self.mesh.n_nodes), "1", "mesh node index")}
        for d, v in _component_coords(shapes, _dims_for(shapes)).items():
            coords[d] = Coordinate((d,), v, "1", "vector component")
        return coords

    def attrs(self) -> dict[str, Any]:
        return {"source": "files", "table": str(self.table_path)}

    def mesh_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]]:
        return mesh_variables(self.mesh, units=self.coordinate_units)

    # ------------------------------------------------------------------ data
    def run_sample(self, params: Mapping[str, Any], sample_id: str | None = None) -> dict[str, np.ndarray]:
        names = self.parameter_names
        try:
            x = np.array([float(params[n]) for n in names])
        except (KeyError, TypeError, ValueError):
            raise SampleFailure(f"files: parameters {sorted(map(str, params))} do not match the "
                                f"declared parameters {names}", "failed") from None
        values = self.table.values
        scale = np.maximum(np.abs(values).max(axis=0), 1e-300)
        hit = np.flatnonzero(np.all(np.abs(values - x) <= 1e-12 * scale, axis=1))
        if hit.size == 0:
            raise SampleFailure(f"files: no row of {self.table.path} has parameters {dict(zip(names, x))}",
                                "failed")
        mesh, fields = load_files(self.table, [int(hit[0])], self.variables)
        return {k: v[0] for k, v in fields.items()}

    def split_dataset(self, design: Mapping[str, Any], split: str) -> xr.Dataset:
        """The generate dataset of ``split`` (see the module docstring), without provenance."""
        table = self.table
        rows = split_rows(table, design, split)
        mesh, data = load_files(table, rows, self.variables)
        n = len(rows)
        shapes = {k: v.shape[1:] for k, v in data.items()}
        dims = _dims_for(shapes)
        params = self.parameters()
        ds = xr.Dataset(
            {
                "design": (("sample", "parameter"), table.values[rows].reshape(n, len(params)),
                           {"long_name": "parameter values of each design point"}),
                "status": (("sample",), np.zeros(n, dtype="i1"), status_attrs()),
                "status_reason": (("sample",), np.full(n, "", dtype=object).astype(str),
                                  {"long_name": "why the sample is not ok (empty when ok)"}),
                "wall_time": (("sample",), np.full(n, np.nan),
                              {"units": "s", "long_name": "high-fidelity wall time per sample",
                               "comment": "not measured: results imported from existing files"}),
            },
            coords={
                "sample": ("sample", np.arange(n), {"long_name": "sample index within the split"}),
                "parameter": ("parameter", np.array([p.name for p in params], dtype=object)),
                "parameter_units": ("parameter", np.array([p.units for p in params], dtype=object)),
                "parameter_low": ("parameter", np.array([p.low for p in params])),
                "parameter_high": ("parameter", np.array([p.high for p in params])),
                "source_file": ("sample", np.array([str(table.files[i]) for i in rows], dtype=object),
                                {"long_name": "result file of the sample"}),
                "table_line": ("sample", np.array([table.lines[i] for i in rows], dtype=np.int64),
                               {"long_name": "line of the sample in the parameter table (header = 1)"}),
                "node": ("node", np.arange(mesh.n_nodes), {"long_name": "mesh node index"}),
                **{d: (d, v) for d, v in _component_coords(shapes, dims).items()},
            },
            attrs={**self.attrs(), "split": split, "time_dim": "none", "simulator": self.name},
        )
        for name, values in data.items():
            ds[name] = (("sample", *dims[name]), values,
                        {"units": self.units.get(name, "1"), "long_name": name})
        for name, (vdims, values, attrs) in mesh_variables(mesh, units=self.coordinate_units).items():
            ds[name] = (vdims, values, attrs)
        return ds


def files_split_dataset(settings: Mapping[str, Any], design: Mapping[str, Any], split: str) -> xr.Dataset:
    """The generate dataset of ``split`` of a ``files`` study (``simulator.settings``, ``design``)."""
    return FilesSource(**dict(settings)).split_dataset(design, split)


__all__ = ["FilesSource", "Table", "files_split_dataset", "load_files", "read_table", "split_rows"]

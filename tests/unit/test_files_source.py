"""The `files` source: declared parameter columns only, optional split column, seeded split, checks."""
from __future__ import annotations

import csv
from pathlib import Path

import meshio
import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.snapshots import space_weights
from surroflow.io import STATUS_OK
from surroflow.mesh import (from_meshio, lumped_mass_weights, mesh_from_dataset, mesh_variables,
                            rectangle, to_meshio)
from surroflow.simulators import get_simulator
from surroflow.simulators.files import FilesSource, files_split_dataset

MESH = rectangle(4.0, 2.0, 4, 2)                   # 15 nodes, 8 quads


def fields(a: float, b: float, mesh=MESH) -> dict[str, np.ndarray]:
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    return {"displacement": np.stack([a * x, -b * y], axis=1), "temperature": a + b * x * y}


def write_case(folder: Path, n: int = 5, ext: str = ".vtu", split: bool = False,
               extra: dict | None = None) -> Path:
    """``n`` result files written by meshio itself and a table ``design.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        a, b = 1.0 + 0.5 * i, 0.1 * (i + 1)
        name = f"run_{i:03d}{ext}"
        meshio.write(folder / name, to_meshio(MESH, fields(a, b)))
        rows.append({"file": name, "a": a, "b": b, **({"split": "test" if i % 3 == 2 else "train"}
                                                         if split else {}),
                     **{k: v(i) for k, v in (extra or {}).items()}})
    table = folder / "design.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return table


VARS = ["displacement", "temperature"]
DESIGN = {"n_train": 3, "n_test": 2, "seed": 0}


def settings(table: Path, **over) -> dict:
    s = {"table": str(table), "parameters": ["a", "b"], "variables": VARS, "coordinate_units": "mm",
         **over}
    units = {"displacement": "mm", "temperature": "K"}
    s.setdefault("units", {k: v for k, v in units.items() if k in s["variables"]})
    return s


def test_split_dataset_from_vtu_written_by_meshio(tmp_path):
    table = write_case(tmp_path / "runs")
    ds = files_split_dataset(settings(table), DESIGN, "train")
    assert ds["design"].dims == ("sample", "parameter")
    assert ds["parameter"].values.tolist() == ["a", "b"]
    assert ds.sizes["sample"] == 3
    assert ds["displacement"].dims == ("sample", "node", "component")
    assert ds["displacement"].attrs["units"] == "mm"
    assert ds["component"].values.tolist() == ["x", "y"]
    assert ds["temperature"].dims == ("sample", "node")
    for i in range(3):                     # every sample holds the fields of its own row
        a, b = ds["design"].values[i]
        ref = fields(a, b)
        np.testing.assert_allclose(ds["displacement"][i], ref["displacement"])
        np.testing.assert_allclose(ds["temperature"][i], ref["temperature"])
        k = int(ds["table_line"].values[i]) - 2
        assert ds["source_file"].values[i].endswith(f"run_{k:03d}.vtu")
    assert (ds["status"] == STATUS_OK).all() and ds["status"].attrs["flag_meanings"].startswith("ok")
    assert (ds["status_reason"] == "").all()
    assert np.isnan(ds["wall_time"]).all() and "not measured" in ds["wall_time"].attrs["comment"]
    mesh = mesh_from_dataset(ds)
    np.testing.assert_allclose(mesh.points, MESH.points)
    np.testing.assert_array_equal(mesh.cells, MESH.cells)
    assert mesh.cell_type == "quad" and ds["node_coordinates"].attrs["units"] == "mm"
    np.testing.assert_allclose(ds["mass"].values, lumped_mass_weights(MESH.points, MESH.cells))
    np.testing.assert_allclose(space_weights(ds, "temperature", "mass").sum(), 8.0)
    for key in ("surroflow_version", "git_commit", "config_sha256", "created", "stage"):
        assert key not in ds.attrs         # provenance is the import_files stage's job
    assert ds.attrs["split"] == "train" and ds.attrs["simulator"] == "files"


def test_same_contract_from_netcdf_and_xdmf(tmp_path):
    """NetCDF and XDMF result files give the same dataset as VTU files."""
    ref = files_split_dataset(settings(write_case(tmp_path / "vtu")), DESIGN, "test")
    other = files_split_dataset(settings(write_case(tmp_path / "xdmf", ext=".xdmf")), DESIGN, "test")
    nc_dir = tmp_path / "nc"
    table = write_case(nc_dir)
    for i, f in enumerate(sorted(nc_dir.glob("*.vtu"))):
        a, b = 1.0 + 0.5 * i, 0.1 * (i + 1)
        ds = xr.Dataset({k: (("node", "component")[:v.ndim], v) for k, v in fields(a, b).items()})
        for k, (dims, val, attrs) in mesh_variables(MESH).items():
            ds[k] = (dims, val, attrs)
        ds.to_netcdf(f.with_suffix(".nc"), engine="h5netcdf")
    table.write_text(table.read_text().replace(".vtu", ".nc"))
    third = files_split_dataset(settings(table), DESIGN, "test")
    for ds in (other, third):
        for v in ("design", "displacement", "temperature", "node_coordinates", "connectivity", "mass"):
            xr.testing.assert_allclose(ds[v].drop_vars("source_file", errors="ignore"),
                                       ref[v].drop_vars("source_file", errors="ignore"))


def test_only_declared_parameters_become_inputs(tmp_path):
    """A solver's own `sample` index in the table is an error naming it, never a model input."""
    table = write_case(tmp_path / "runs", extra={"sample": lambda i: i})
    with pytest.raises(SurroflowError, match=r"design\.csv: column\(s\) \['sample'\] are neither declared"):
        files_split_dataset(settings(table), DESIGN, "train")
    with pytest.raises(SurroflowError, match=r"column\(s\) \['sample'\]"):
        FilesSource(**settings(table)).check(DESIGN)
    ds = files_split_dataset(settings(table, parameters=["a", "b", "sample"]), DESIGN, "train")
    assert ds["parameter"].values.tolist() == ["a", "b", "sample"]      # declared: an input
    ds = files_split_dataset(settings(table, parameters=["b", "a", "sample"]), DESIGN, "train")
    assert ds["parameter"].values.tolist() == ["b", "a", "sample"]      # in the declared order
    np.testing.assert_allclose(ds["design"].sel(parameter="a") - 1.0, 5 * ds["design"].sel(parameter="b") - 0.5)
    with pytest.raises(SurroflowError, match=r"declared parameter\(s\) \['c'\] have no column"):
        FilesSource(**settings(table, parameters=["a", "c"])).check(DESIGN)
    with pytest.raises(SurroflowError, match="simulator.settings.parameters: required"):
        FilesSource(table=str(table), variables=VARS)
    with pytest.raises(SurroflowError, match="reserved"):
        FilesSource(**settings(table, parameters=["a", "split"])).check(DESIGN)


def test_without_split_column_a_seeded_split_by_sample(tmp_path):
    table = write_case(tmp_path / "runs", n=10)
    design = {"n_train": 6, "n_test": 3, "seed": 4}
    train = files_split_dataset(settings(table), design, "train")
    test = files_split_dataset(settings(table), design, "test")
    assert train.sizes["sample"] == 6 and test.sizes["sample"] == 3       # n_train/n_test honoured
    rows_tr, rows_te = set(train["table_line"].values), set(test["table_line"].values)
    assert not rows_tr & rows_te                                          # disjoint, by sample
    perm = np.random.default_rng(4).permutation(10)
    assert rows_tr == set(perm[:6] + 2) and rows_te == set(perm[6:9] + 2)
    again = files_split_dataset(settings(table), design, "train")
    xr.testing.assert_identical(train, again)                             # reproducible
    # a calibration split takes the next rows of the same permutation, leaving train and test be
    with_cal = {**design, "n_calibration": 1}
    cal = files_split_dataset(settings(table), with_cal, "calibration")
    assert set(cal["table_line"].values) == set(perm[9:10] + 2)
    assert set(files_split_dataset(settings(table), with_cal, "test")["table_line"].values) == rows_te
    with pytest.raises(SurroflowError, match=r"n_train \+ design.n_test \+ design.n_calibration = 11 exceeds"):
        FilesSource(**settings(table)).check({**design, "n_calibration": 2})
    other = files_split_dataset(settings(table), {**design, "seed": 5}, "train")
    assert set(other["table_line"].values) != rows_tr                     # the seed matters
    # each sample keeps its whole field: the split is by row, never by time or node
    for i in range(3):
        a, b = test["design"].values[i]
        np.testing.assert_allclose(test["temperature"][i], fields(a, b)["temperature"])


def test_split_column(tmp_path):
    table = write_case(tmp_path / "runs", n=6, split=True)      # rows 2 and 5 are test
    ds = files_split_dataset(settings(table, variables=["temperature"]), DESIGN, "test")
    assert ds.sizes["sample"] == 2
    np.testing.assert_allclose(ds["design"].sel(parameter="a"), [2.0, 3.5])
    ds = files_split_dataset(settings(table, variables=["temperature"]), {**DESIGN, "n_train": 2}, "train")
    np.testing.assert_allclose(ds["design"].sel(parameter="a"), [1.0, 1.5])   # the first two train rows
    with pytest.raises(SurroflowError, match=r"design.n_train=5, but .*design\.csv has only 4 rows with split 'train'"):
        FilesSource(**settings(table)).check({**DESIGN, "n_train": 5})
    text = table.read_text().replace(",test", ",validation", 1)
    table.write_text(text)
    with pytest.raises(SurroflowError, match=r"design\.csv:4: split 'validation' is not allowed"):
        FilesSource(**settings(table)).check(DESIGN)


def test_check_finds_mistakes_before_any_job(tmp_path):
    table = write_case(tmp_path / "runs")
    FilesSource(**settings(table)).check(DESIGN)                      # a good study passes
    with pytest.raises(SurroflowError, match=r"simulator.settings.table: .*nowhere\.csv not found"):
        FilesSource(**settings(tmp_path / "nowhere.csv")).check(DESIGN)
    with pytest.raises(SurroflowError, match=r"n_train \+ design.n_test = 6 exceeds the 5 rows"):
        FilesSource(**settings(table)).check({**DESIGN, "n_train": 4})
    with pytest.raises(SurroflowError, match="no point variable 'pressure'"):
        FilesSource(**settings(table, variables=["pressure"])).check(DESIGN)
    with pytest.raises(SurroflowError, match="unknown key"):
        FilesSource(**settings(table, pattern="*.vtu"))
    with pytest.raises(SurroflowError, match="units given for unknown"):
        FilesSource(**settings(table, units={"pressure": "Pa"}))
    (tmp_path / "runs" / "run_004.vtu").unlink()
    with pytest.raises(SurroflowError, match=r"design\.csv:6: result file .*run_004\.vtu not found"):
        FilesSource(**settings(table)).check(DESIGN)


def test_different_mesh_names_the_file(tmp_path):
    table = write_case(tmp_path / "runs")
    design = {"n_train": 5, "n_test": 0, "seed": 0}
    other = rectangle(4.0, 2.0, 5, 2)
    meshio.write(tmp_path / "runs" / "run_003.vtu", to_meshio(other, fields(1.0, 1.0, other)))
    with pytest.raises(SurroflowError, match=r"run_003\.vtu: 18 nodes, but .*run_000\.vtu has 15"):
        files_split_dataset(settings(table), design, "train")
    moved = rectangle(4.0, 2.5, 4, 2)                 # same count, other coordinates
    meshio.write(tmp_path / "runs" / "run_003.vtu", to_meshio(moved, fields(1.0, 1.0, moved)))
    with pytest.raises(SurroflowError, match=r"run_003\.vtu: node coordinates differ"):
        files_split_dataset(settings(table), design, "train")


def test_missing_variable_names_the_file(tmp_path):
    table = write_case(tmp_path / "runs")
    f = fields(1.0, 1.0)
    del f["temperature"]
    meshio.write(tmp_path / "runs" / "run_002.vtu", to_meshio(MESH, f))
    with pytest.raises(SurroflowError, match=r"run_002\.vtu: no point variable 'temperature'.*design\.csv:4"):
        files_split_dataset(settings(table), {"n_train": 5, "n_test": 0, "seed": 0}, "train")


def test_table_errors(tmp_path):
    table = write_case(tmp_path / "runs")
    text = table.read_text().splitlines()
    text[2] = text[2].replace("1.5", "abc", 1)
    table.write_text("\n".join(text) + "\n")
    with pytest.raises(SurroflowError, match=r"design\.csv:3: a='abc' is not a number"):
        FilesSource(**settings(table)).check(DESIGN)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,a\nx.vtu,1\n")
    with pytest.raises(SurroflowError, match="no 'file' column"):
        FilesSource(**settings(bad, parameters=["a"])).check(DESIGN)


def test_files_simulator(tmp_path):
    table = write_case(tmp_path / "runs")
    sim = get_simulator("files", **settings(table, units={"displacement": "mm"}))
    assert [(p.name, p.low, p.high) for p in sim.parameters()] == [("a", 1.0, 3.0), ("b", 0.1, 0.5)]
    assert {v.name: v.dims for v in sim.outputs()} == {"displacement": ("node", "component"),
                                                       "temperature": ("node",)}
    out = sim.run_sample({"a": 2.0, "b": 0.3})
    np.testing.assert_allclose(out["temperature"], fields(2.0, 0.3)["temperature"])
    ds = xr.Dataset({k: (d, v, a) for k, (d, v, a) in sim.mesh_variables().items()})
    ds["displacement"] = (("sample", "node", "component"), out["displacement"][None])
    ds["temperature"] = (("sample", "node"), out["temperature"][None])
    w = space_weights(ds, "displacement", "mass")
    assert w.shape == (2 * MESH.n_nodes,)
    np.testing.assert_allclose(space_weights(ds, "temperature", "mass").sum(), 8.0)
    assert sim.mesh_variables()["connectivity"][2]["cell_type"] == "quad"


def test_weights_and_meshio_round_trip():
    m = from_meshio(to_meshio(MESH))
    assert m.points.shape == (15, 2)                  # the zero z column of meshio is dropped
    w = lumped_mass_weights(m.points, m.cells)
    np.testing.assert_allclose(w.sum(), 8.0)
    np.testing.assert_allclose(w[0], 0.25)            # a corner node: a quarter of a 1 x 1 cell
    tri = np.array([[0, 1, 2]])
    np.testing.assert_allclose(lumped_mass_weights(np.array([[0, 0], [2, 0], [0, 3.0]]), tri), [1, 1, 1])
    hexa = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                     [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float) * 2.0
    np.testing.assert_allclose(lumped_mass_weights(hexa, np.arange(8)[None, :], "hexahedron"), 1.0)
    with pytest.raises(SurroflowError, match="belong to no cell"):
        lumped_mass_weights(np.vstack([MESH.points, [[9.0, 9.0]]]), MESH.cells)

"""Importing existing results: VTU files written by meshio, NetCDF files, and the errors."""
from __future__ import annotations

import csv
from pathlib import Path

import meshio
import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.snapshots import space_weights
from surroflow.io import STATUS_OK, open_dataset
from surroflow.mesh import (from_meshio, lumped_mass_weights, mesh_from_dataset, mesh_variables,
                            rectangle, to_meshio)
from surroflow.simulators import get_simulator
from surroflow.simulators.files import import_files

MESH = rectangle(4.0, 2.0, 4, 2)                   # 15 nodes, 8 quads


def fields(a: float, b: float, mesh=MESH) -> dict[str, np.ndarray]:
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    return {"displacement": np.stack([a * x, -b * y], axis=1), "temperature": a + b * x * y}


def write_case(folder: Path, n: int = 5, ext: str = ".vtu", split: bool = False) -> Path:
    """``n`` result files written by meshio itself and a table ``design.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        a, b = 1.0 + 0.5 * i, 0.1 * (i + 1)
        name = f"run_{i:03d}{ext}"
        meshio.write(folder / name, to_meshio(MESH, fields(a, b)))
        rows.append({"file": name, "a": a, "b": b, **({"split": "test" if i % 3 == 2 else "train"}
                                                         if split else {})})
    table = folder / "design.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return table


def test_import_vtu_folder_written_by_meshio(tmp_path):
    table = write_case(tmp_path / "runs")
    out = import_files(table, ["displacement", "temperature"], tmp_path / "train.nc",
                       units={"displacement": "mm", "temperature": "K"}, coordinate_units="mm",
                       study="demo")
    ds = open_dataset(out, stage="generate", required=("design", "status", "wall_time",
                                                        "node_coordinates", "connectivity"))
    assert ds["design"].dims == ("sample", "parameter")
    assert ds["parameter"].values.tolist() == ["a", "b"]
    np.testing.assert_allclose(ds["design"].sel(parameter="a"), 1.0 + 0.5 * np.arange(5))
    assert ds["displacement"].dims == ("sample", "node", "component")
    assert ds["displacement"].attrs["units"] == "mm"
    assert ds["component"].values.tolist() == ["x", "y"]
    assert ds["temperature"].dims == ("sample", "node")
    for i in range(5):
        a, b = 1.0 + 0.5 * i, 0.1 * (i + 1)
        ref = fields(a, b)
        np.testing.assert_allclose(ds["displacement"][i], ref["displacement"])
        np.testing.assert_allclose(ds["temperature"][i], ref["temperature"])
    assert (ds["status"] == STATUS_OK).all() and ds["status"].attrs["flag_meanings"].startswith("ok")
    assert np.isnan(ds["wall_time"]).all() and "not measured" in ds["wall_time"].attrs["comment"]
    mesh = mesh_from_dataset(ds)
    np.testing.assert_allclose(mesh.points, MESH.points)
    np.testing.assert_array_equal(mesh.cells, MESH.cells)
    assert mesh.cell_type == "quad" and ds["node_coordinates"].attrs["units"] == "mm"
    for key in ("surroflow_version", "git_commit", "config_sha256", "created"):
        assert key in ds.attrs
    assert ds.attrs["stage"] == "generate" and ds.attrs["study"] == "demo"
    assert ds["source_file"].values[0].endswith("run_000.vtu")


def test_same_contract_from_netcdf_and_xdmf(tmp_path):
    """NetCDF and XDMF result files give the same dataset as VTU files."""
    ref = import_files(write_case(tmp_path / "vtu"), ["displacement", "temperature"], tmp_path / "a.nc")
    other = import_files(write_case(tmp_path / "xdmf", ext=".xdmf"), ["displacement", "temperature"],
                         tmp_path / "b.nc")
    nc_dir = tmp_path / "nc"
    table = write_case(nc_dir)
    for i, f in enumerate(sorted(nc_dir.glob("*.vtu"))):
        a, b = 1.0 + 0.5 * i, 0.1 * (i + 1)
        ds = xr.Dataset({k: (("node", "component")[:v.ndim], v) for k, v in fields(a, b).items()})
        for k, (dims, val, attrs) in mesh_variables(MESH).items():
            ds[k] = (dims, val, attrs)
        ds.to_netcdf(f.with_suffix(".nc"), engine="h5netcdf")
    table.write_text(table.read_text().replace(".vtu", ".nc"))
    third = import_files(table, ["displacement", "temperature"], tmp_path / "c.nc")
    base = open_dataset(ref)
    for path in (other, third):
        ds = open_dataset(path)
        for v in ("design", "displacement", "temperature", "node_coordinates", "connectivity"):
            xr.testing.assert_allclose(ds[v].drop_vars("source_file", errors="ignore"),
                                       base[v].drop_vars("source_file", errors="ignore"))


def test_split_column(tmp_path):
    table = write_case(tmp_path / "runs", n=6, split=True)
    out = import_files(table, ["temperature"], tmp_path / "test.nc", split="test")
    ds = open_dataset(out)
    assert ds.sizes["sample"] == 2 and set(ds["sample_split"].values) == {"test"}
    np.testing.assert_allclose(ds["design"].sel(parameter="a"), [2.0, 3.5])


def test_different_mesh_names_the_file(tmp_path):
    table = write_case(tmp_path / "runs")
    other = rectangle(4.0, 2.0, 5, 2)
    meshio.write(tmp_path / "runs" / "run_003.vtu", to_meshio(other, fields(1.0, 1.0, other)))
    with pytest.raises(SurroflowError, match=r"run_003\.vtu: 18 nodes, but .*run_000\.vtu has 15"):
        import_files(table, ["displacement"], tmp_path / "x.nc")
    moved = rectangle(4.0, 2.5, 4, 2)                 # same count, other coordinates
    meshio.write(tmp_path / "runs" / "run_003.vtu", to_meshio(moved, fields(1.0, 1.0, moved)))
    with pytest.raises(SurroflowError, match=r"run_003\.vtu: node coordinates differ"):
        import_files(table, ["displacement"], tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


def test_missing_variable_names_the_file(tmp_path):
    table = write_case(tmp_path / "runs")
    f = fields(1.0, 1.0)
    del f["temperature"]
    meshio.write(tmp_path / "runs" / "run_002.vtu", to_meshio(MESH, f))
    with pytest.raises(SurroflowError, match=r"run_002\.vtu: no point variable 'temperature'.*design\.csv:4"):
        import_files(table, ["displacement", "temperature"], tmp_path / "x.nc")


def test_table_errors(tmp_path):
    table = write_case(tmp_path / "runs")
    text = table.read_text().splitlines()
    text[2] = text[2].replace("1.5", "abc", 1)
    table.write_text("\n".join(text) + "\n")
    with pytest.raises(SurroflowError, match=r"design\.csv:3: a='abc' is not a number"):
        import_files(table, ["temperature"], tmp_path / "x.nc")
    (tmp_path / "runs" / "run_001.vtu").unlink()
    text[2] = text[2].replace("abc", "1.5")
    table.write_text("\n".join(text) + "\n")
    with pytest.raises(SurroflowError, match=r"design\.csv:3: result file .*run_001\.vtu not found"):
        import_files(table, ["temperature"], tmp_path / "x.nc")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,a\nx.vtu,1\n")
    with pytest.raises(SurroflowError, match="no 'file' column"):
        import_files(bad, ["temperature"], tmp_path / "x.nc")


def test_files_simulator(tmp_path):
    table = write_case(tmp_path / "runs")
    sim = get_simulator("files", table=str(table), variables=["displacement", "temperature"],
                        units={"displacement": "mm"})
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
    with pytest.raises(SurroflowError, match="unknown key"):
        get_simulator("files", table=str(table), variables=["temperature"], pattern="*.vtu")


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

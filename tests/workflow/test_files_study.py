"""A `files` study: results written by an independent tool (meshio) run through the pipeline."""
from __future__ import annotations

import subprocess
import sys

import meshio
import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset
from surroflow.mesh import rectangle

from ..snakemake_runner import snakemake

pytestmark = pytest.mark.slow


def _write_case(folder, rng, split_column=True, extra_column=False):
    mesh = rectangle(2.0, 1.0, 16, 8)
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    rows = []
    for i, (split, n) in enumerate([("train", 24), ("test", 6)]):
        for k in range(n):
            a, b = rng.uniform(0.5, 2.0), rng.uniform(0.5, 1.5)
            T = a * np.sin(np.pi * x / 2.0) * np.cosh(b * y) / np.cosh(b)      # steady heat-like field
            d = np.column_stack([0.01 * a * x, -0.005 * b * y * x, np.zeros_like(x)])
            name = f"{split}_{k:03d}.vtu"
            meshio.write(folder / name, meshio.Mesh(np.column_stack([mesh.points, np.zeros_like(x)]),
                                                    [("quad", mesh.cells)],
                                                    point_data={"T": T, "displacement": d}))
            rows.append({"file": name, "a": a, "b": b, **({"split": split} if split_column else {}),
                         **({"sample": i * 100 + k} if extra_column else {})})
    pd.DataFrame(rows).to_csv(folder / "table.csv", index=False)


def _config(data, **design):
    return {"studies": {"imported": {
        "simulator": {"name": "files", "settings": {"table": str(data / "table.csv"), "parameters": ["a", "b"],
                                                    "variables": ["T"], "units": {"T": "K"}, "coordinate_units": "m"}},
        "design": {"n_train": 24, "n_test": 6, **design},
        "reduction": {"weights": "mass", "energy": 0.999999},
        "surrogates": {"rbf": {"kind": "rbf", "params": {"kernel": "quintic"}}},
        "evaluation": {"n_plot_samples": 2, "timing_repeats": 2}}}}


def test_files_study_end_to_end(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_case(data, np.random.default_rng(0))
    res = snakemake(tmp_path / "work", _config(data))
    assert res.returncode == 0, res.stderr[-4000:]
    r = tmp_path / "work" / "results" / "imported"
    train = open_dataset(r / "generate" / "train.nc", stage="import_files")
    assert train.sizes["sample"] == 24 and train["T"].dims == ("sample", "node")
    assert "node_coordinates" in train and "connectivity" in train
    assert list(train["parameter"].values) == ["a", "b"]
    assert np.isnan(train["wall_time"].values).all()   # no solver ran: no timings, never 0
    s = pd.read_csv(r / "evaluation" / "summary.csv").set_index("surrogate")
    assert s.loc["rbf", "rel_l2_mean"] < 1e-2
    # the linear baseline is there too: T = a sin(..) cosh(b y)/cosh(b) is not linear in b
    assert s.loc["linear", "role"] == "baseline" and s.loc["rbf", "skill_vs_linear"] > 0.5
    assert s["speedup"].isna().all()                # no solver timings for imported results
    assert (r / "evaluation" / "figures" / "fields.png").exists()
    assert not (r / "design").exists()              # no design of experiments was run


def test_files_study_without_split_column_honours_n_train_and_n_test(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_case(data, np.random.default_rng(1), split_column=False)
    work = tmp_path / "work"
    res = snakemake(work, _config(data, n_train=20, n_test=10, seed=3), "--until", "import_files")
    assert res.returncode == 0, res.stderr[-4000:]
    r = work / "results" / "imported" / "generate"
    train, test = open_dataset(r / "train.nc"), open_dataset(r / "test.nc")
    assert train.sizes["sample"] == 20 and test.sizes["sample"] == 10
    rows = {tuple(x) for x in train["design"].values} | {tuple(x) for x in test["design"].values}
    assert len(rows) == 30                           # a split of the 30 rows, no row in both


def test_files_study_mistakes_are_caught_before_any_job(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_case(data, np.random.default_rng(2), extra_column=True)     # a solver's own 'sample' index
    work = tmp_path / "work"
    res = snakemake(work, _config(data))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "studies.imported" in out and "'sample'" in out, out[-3000:]
    assert not (work / "results").exists()
    check = subprocess.run([sys.executable, "-m", "surroflow", "validate", str(work / "config.yaml")],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 2 and "'sample'" in check.stderr and "Traceback" not in check.stderr

"""A `files` study: results written by an independent tool (meshio) run through the pipeline."""
from __future__ import annotations

import meshio
import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset
from surroflow.mesh import rectangle

from .helpers import snakemake

pytestmark = pytest.mark.slow


def _write_case(folder, rng):
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
            rows.append({"file": name, "a": a, "b": b, "split": split})
    pd.DataFrame(rows).to_csv(folder / "table.csv", index=False)


def test_files_study_end_to_end(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_case(data, np.random.default_rng(0))
    cfg = {"studies": {"imported": {
        "simulator": {"name": "files", "settings": {"table": str(data / "table.csv"), "variables": ["T"],
                                                    "units": {"T": "K"}, "coordinate_units": "m"}},
        "design": {"n_train": 24, "n_test": 6},
        "reduction": {"weights": "mass", "energy": 0.999999},
        "surrogates": {"rbf": {"kind": "rbf", "params": {"kernel": "quintic"}}},
        "evaluation": {"n_plot_samples": 2, "timing_repeats": 2}}}}
    res = snakemake(tmp_path / "work", cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    r = tmp_path / "work" / "results" / "imported"
    train = open_dataset(r / "generate" / "train.nc", stage="generate")
    assert train.sizes["sample"] == 24 and train["T"].dims == ("sample", "node")
    assert "node_coordinates" in train and "connectivity" in train
    s = pd.read_csv(r / "evaluation" / "summary.csv")
    assert s["rel_l2_mean"].iloc[0] < 1e-2
    assert np.isnan(s["speedup"].iloc[0])           # no solver timings for imported results
    assert (r / "figures" / "fields.png").exists()
    assert not (r / "design").exists()              # no design of experiments was run

"""CalculiX through the whole pipeline on a coarse mesh, with solver failures flagged."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from surroflow.io import STATUS_OK, open_dataset

from ..snakemake_runner import snakemake

pytestmark = [pytest.mark.slow, pytest.mark.calculix,
              pytest.mark.skipif(shutil.which("ccx") is None, reason="ccx not installed (apt-get install calculix-ccx)")]


def test_plate_with_failing_samples(tmp_path):
    runs = tmp_path / "runs"
    cfg = {"studies": {"plate": {
        "simulator": {
            "name": "calculix_plate",
            "settings": {"n_theta": 4, "n_radial": 5, "increments_per_ramp": 5, "timeout_s": 60,
                         "retries": 0, "keep_workdirs": "failed", "workdir_root": str(runs)},
            # without hardening, a traction well above the yield stress has no equilibrium:
            # ccx stops ("increment size smaller than minimum") and the sample is flagged
            "parameters": {"traction": [60.0, 320.0], "yield_stress": [200.0, 201.0],
                           "hardening_modulus": [0.0, 1.0]},
            "max_failure_fraction": 0.6},
        "design": {"method": "sobol", "n_train": 16, "n_test": 6, "seed": 0, "batch_size": 8},
        "reduction": {"weights": "mass", "variables": ["displacement"]},
        "surrogates": {"rbf": {"kind": "rbf"}},
        "evaluation": {"n_plot_samples": 1, "timing_repeats": 2}}}}
    res = snakemake(tmp_path / "work", cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    r = tmp_path / "work" / "results" / "plate"
    train = open_dataset(r / "generate" / "train.nc", stage="collect_batches")
    assert train["mass"].dims == ("node",) and (train["mass"].values > 0).all()   # lumped nodal mass
    status = train["status"].values
    traction = train["design"].sel(parameter="traction").values
    bad = status != STATUS_OK
    assert bad.any() and (~bad).any()
    assert traction[bad].min() > traction[~bad].min()      # the failures are the overloaded plates
    for reason in train["status_reason"].values[bad]:
        assert "solver.log" in str(reason)
        log_path = str(reason).split("log: ")[-1].strip()
        assert (runs / log_path).exists() or os.path.exists(log_path)
    assert train["displacement"].dims == ("sample", "step", "node", "component")
    s = pd.read_csv(r / "evaluation" / "summary.csv")
    assert int(s["n_train_flagged"].iloc[0]) == int(bad.sum())
    assert np.isfinite(s["speedup"].iloc[0]) and s["speedup"].iloc[0] > 1

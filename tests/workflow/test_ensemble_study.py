"""Internal variability through the workflow (issue 15, item 2): a stochastic simulator run with
8 members per design point (tests/config/ensemble.yaml); the evaluation scores every model
against single members and against the ensemble means, beside the noise floor."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset

from ..snakemake_runner import run_test_config

pytestmark = pytest.mark.slow


def test_models_are_scored_against_members_and_ensemble_means(tmp_path):
    r = run_test_config(tmp_path, "ensemble")
    test = open_dataset(r / "generate" / "test.nc", stage="collect_batches")
    assert test.sizes["sample"] == 6 * 8 and len(set(test["noise_seed"].values)) == 48
    # the members of one point share its parameters and differ in their fields
    T = test["T"].values.reshape(6, 8, *test["T"].shape[1:])
    assert np.all(test["design"].values.reshape(6, 8, 2) == test["design"].values.reshape(6, 8, 2)[:, :1])
    assert np.min(np.abs(T[:, 1] - T[:, 0]).max(axis=(1, 2))) > 0.05
    s = pd.read_csv(r / "evaluation" / "summary.csv").set_index("surrogate")
    assert list(s.index) == ["linear", "gp", "mlp"]
    for col in ("rel_l2_ensemble_mean", "skill_vs_linear_ensemble", "noise_floor", "ensemble_mean_noise"):
        assert s[col].notna().all(), col
    assert (s["members"] == 8).all() and s["noise_floor"].nunique() == 1
    # no calibration design: cross-conformal, with folds that hold out whole points
    assert (s["calibration_method"] == "cross_conformal").all() and s["coverage_95"].notna().all()
    floor, sampling = s["noise_floor"].iloc[0], s["ensemble_mean_noise"].iloc[0]
    assert 0 < sampling < floor
    # against single members no model beats the noise floor by much; against the means they can
    assert (s["rel_l2_mean"] > 0.9 * floor).all()
    assert (s["rel_l2_ensemble_mean"] < s["rel_l2_mean"]).all()
    # the mean response is linear in the forcings: the linear baseline is near the sampling error
    assert s.loc["linear", "rel_l2_ensemble_mean"] < 2.0 * sampling
    m = open_dataset(r / "evaluation" / "metrics.nc", stage="evaluate_surrogates")
    assert m["rel_l2_ensemble"].dims == ("surrogate", "test_point") and m.sizes["test_point"] == 6
    assert m["point"].dims == ("sample",)                     # which samples realise which point
    np.testing.assert_allclose(m["rel_l2_ensemble"].mean("test_point").values, s["rel_l2_ensemble_mean"].values, rtol=1e-5)
    assert (r / "evaluation" / "figures" / "ensemble_errors.png").stat().st_size > 1000

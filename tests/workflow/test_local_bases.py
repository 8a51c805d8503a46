"""Local reduced bases through the workflow: criterion, projection study, local surrogate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset

from .helpers import ROOT, load_yaml, snakemake

pytestmark = pytest.mark.slow


def test_local_bases_end_to_end(tmp_path):
    cfg = load_yaml(ROOT / "tests" / "config" / "local.yaml")
    res = snakemake(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    r = tmp_path / "results" / "pulse"
    s = pd.read_csv(r / "evaluation" / "summary.csv").set_index("surrogate")
    assert s.loc["rbf_local", "basis"] == "local" and s.loc["rbf", "basis"] == "global"
    assert s.loc["rbf", "selection_error_mean"] == 0
    assert s.loc["rbf_local", "selection_error_mean"] >= 0
    m = open_dataset(r / "evaluation" / "metrics.nc")
    tot = m["rel_l2"].values ** 2
    parts = m["projection_error"].values ** 2 + m["selection_error"].values ** 2 + m["regression_error"].values ** 2
    np.testing.assert_allclose(tot, parts, rtol=1e-6)
    basis = open_dataset(r / "reduce" / "local" / "u.nc")
    assert basis.sizes["cluster"] >= 1 and "centroids" in basis
    crit = open_dataset(r / "reduce" / "criterion" / "u.nc")
    assert crit.sizes  # the a-priori criterion is stored
    for fig in ("criterion_u", "projection_error_u"):
        assert (r / "figures" / f"{fig}.png").stat().st_size > 1000
    # the local model evaluates fewer modes online than the global basis holds
    assert s.loc["rbf_local", "online_modes"] < s.loc["rbf", "online_modes"]

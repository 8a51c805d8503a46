"""Local reduced bases through the workflow: criterion, projection study, local surrogate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset

from ..snakemake_runner import run_test_config

pytestmark = pytest.mark.slow


def test_local_bases_end_to_end(tmp_path):
    r = run_test_config(tmp_path, "local")
    s = pd.read_csv(r / "evaluation" / "summary.csv").set_index("surrogate")
    assert s.loc["rbf_local", "basis"] == "local" and s.loc["rbf", "basis"] == "global"

    # the error split, per surrogate and test sample: total^2 = projection^2 + selection^2 + regression^2
    m = open_dataset(r / "evaluation" / "metrics.nc", stage="evaluate_surrogates")
    parts = {k: m[k].sel(variable="u") for k in ("rel_l2", "projection_error", "selection_error", "regression_error")}
    for k, v in parts.items():
        assert np.all(np.isfinite(v.values)) and np.all(v.values >= 0), k
    np.testing.assert_allclose(parts["rel_l2"] ** 2, parts["projection_error"] ** 2 + parts["selection_error"] ** 2
                               + parts["regression_error"] ** 2, rtol=1e-6)
    # selection error: exactly 0 for the global basis only; computed (not zero-filled) for the local one
    sel = parts["selection_error"]
    assert np.all(sel.sel(surrogate="rbf").values == 0)
    assert float(m["selection_accuracy"].sel(surrogate="rbf")) == 1.0
    acc = float(m["selection_accuracy"].sel(surrogate="rbf_local"))
    assert 0 < acc <= 1
    if acc < 1:                      # a wrong local basis was picked for some snapshot: it costs error
        assert sel.sel(surrogate="rbf_local").values.max() > 0
    assert s.loc["rbf_local", "selection_error_mean"] == pytest.approx(
        float(sel.sel(surrogate="rbf_local").mean()), rel=1e-4, abs=1e-12)
    # the local model evaluates fewer modes online than the global basis holds
    assert s.loc["rbf_local", "online_modes"] < s.loc["rbf", "online_modes"]

    # local bases: one basis per cluster, its centroid, and the cluster count the criterion chose
    basis = open_dataset(r / "reduce" / "local" / "u.nc")
    crit = open_dataset(r / "reduce" / "criterion" / "u.nc")
    candidates = [int(c) for c in crit["candidate"].values]
    assert candidates == [1, 2, 4]                           # tests/config/local.yaml
    for name in ("mean_rank", "max_rank", "efficiency"):
        assert crit[name].dims == ("candidate",) and crit.sizes["candidate"] == len(candidates)
    chosen = int(crit.attrs["chosen_n_clusters"])
    assert chosen in candidates
    assert basis.sizes["cluster"] == chosen and basis["centroids"].sizes["cluster"] == chosen
    # one cluster is a global basis: its efficiency is 1 by definition
    assert float(crit["efficiency"].sel(candidate=1)) == pytest.approx(1.0)
    for fig in ("criterion_u", "projection_error_u"):
        assert (r / "figures" / f"{fig}.png").stat().st_size > 1000
    for fig in ("singular_values", "fields", "error_parameters", "error_split"):
        assert (r / "evaluation" / "figures" / f"{fig}.png").stat().st_size > 1000

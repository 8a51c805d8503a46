"""A model-error study through the workflow (issue 14): Kuramoto-Sivashinsky with the u_xx
coefficient halved (tests/config/model_error.yaml), sparse noisy observations of two training
trajectories, two passes of LETKF + sparse regression, and the three models scored on the test
design."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset

from ..snakemake_runner import run_test_config

pytestmark = pytest.mark.slow


def test_ks_missing_term_is_discovered_and_the_corrected_model_forecasts_like_the_truth(tmp_path):
    r = run_test_config(tmp_path, "model_error")

    # the discovered correction: -0.5 u_xx within 10%, nothing else above 10% of it
    c = pd.read_csv(r / "model_error" / "correction.csv").set_index("term")
    assert c.loc["u_xx", "true"] == -0.5 and c.loc["u_xx", "status"] == "found"
    assert c.loc["u_xx", "coefficient"] == pytest.approx(-0.5, rel=0.10)
    others = c.drop(index="u_xx")
    assert (others["coefficient"].abs() <= 0.1 * abs(c.loc["u_xx", "coefficient"])).all(), others
    assert 0 < c.loc["u_xx", "std"] < 0.05 and c.loc["u_xx", "inclusion"] == 1.0
    cds = open_dataset(r / "model_error" / "correction.nc", stage="discover_model_error")
    assert cds.attrs["split"] == "train" and cds.attrs["passes"] == 2
    assert json.loads(cds.attrs["true_correction"]) == {"u_xx": -0.5}

    # the filter: sparse observations (every 4th point), one run per training trajectory, and the
    # corrected model's pass filters better than the imperfect one's
    a = open_dataset(r / "model_error" / "analysis.nc", stage="discover_model_error")
    assert a.sizes["trajectory"] == 2 and a.sizes["observed"] == 16
    rmse = a["pass_rmse"].values
    assert rmse[1] < rmse[0] < 0.2, rmse

    # the three models forecast from their own analyses of the observed test windows: the
    # corrected one within 20% of the true model's median VPT, the imperfect one far below
    s = pd.read_csv(r / "evaluation" / "summary.csv").set_index("model")
    assert {"imperfect", "corrected", "true", "persistence", "climatology"} <= set(s.index)
    assert s.loc["true", "vpt_over_true"] == 1.0
    assert 0 < s.loc["true", "vpt_median"] < 2.0        # from an analysis, not the exact state (capped at 2)
    assert abs(s.loc["corrected", "vpt_over_true"] - 1.0) <= 0.2, s["vpt_over_true"]
    assert s.loc["imperfect", "vpt_over_true"] < 0.5, s["vpt_over_true"]
    assert s.loc["imperfect", "equation"].startswith("du/dt = -0.5 u_xx")
    assert np.isfinite(s.loc["corrected", "vpt_median"])
    assert (r / "model_error" / "coefficients.png").stat().st_size > 0
    assert "ks_me" in (tmp_path / "results" / "overview" / "overview.html").read_text()

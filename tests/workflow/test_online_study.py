"""Online learning through the workflow (issue 15, item 4): Lorenz-63 whose rho drifts from 28
to 35 (tests/config/online.yaml); the random-feature model fitted once before the drift loses the
system, the copy that keeps learning each test trajectory recovers."""
from __future__ import annotations

import pandas as pd
import pytest

from ..snakemake_runner import run_test_config

pytestmark = pytest.mark.slow


def test_the_online_model_tracks_the_drift_and_the_batch_model_does_not(tmp_path):
    r = run_test_config(tmp_path, "online") / "evaluation"
    s = pd.read_csv(r / "online" / "summary.csv").set_index(["model", "phase"])["vpt_median"]
    # before the drift the two are the same model (the online one has read little yet)
    assert s["online", "before drift"] == pytest.approx(s["batch", "before drift"], rel=0.25)
    assert s["batch", "before drift"] > 2.0
    # after it the batch model forecasts no better than persistence would; the online one recovers
    assert s["batch", "after drift"] < 0.5
    assert s["online", "after drift"] > 4 * s["batch", "after drift"] and s["online", "after drift"] > 1.5
    curve = pd.read_csv(r / "online" / "vpt_over_time.csv")
    assert set(curve["model"]) == {"batch", "online"}
    assert curve["parameter"].min() == 28.0 and curve["parameter"].max() == 35.0
    assert (r / "online" / "figures" / "vpt_over_time.png").is_file()
    assert (r / "summary.csv").is_file()             # the study's ordinary forecast evaluation too

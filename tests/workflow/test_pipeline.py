"""End-to-end: snakemake on tests/config/tiny.yaml in a temporary directory."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from surroflow.io import STATUS_OK, open_dataset

from .helpers import ROOT, load_yaml, snakemake

pytestmark = pytest.mark.slow

TINY = load_yaml(ROOT / "tests" / "config" / "tiny.yaml")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    res = snakemake(work, TINY)
    assert res.returncode == 0, res.stderr[-4000:]
    rep = snakemake(work, TINY, "--report", "results/report.html", cores=1)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return work


def test_artifacts_have_named_dimensions_and_provenance(tiny_run):
    r = tiny_run / "results" / "tiny"
    train = open_dataset(r / "generate" / "train.nc", stage="generate")
    assert train["u"].dims == ("sample", "time", "x")
    assert train["design"].dims == ("sample", "parameter")
    assert list(train["parameter"].values) == ["nu", "amplitude"]
    assert train["u"].attrs["units"] == "m s-1"
    assert train["wall_time"].attrs["units"] == "s"
    assert set(train["status"].attrs["flag_meanings"].split()) == {"ok", "diverged", "failed", "timeout"}
    for path in [r / "generate" / "train.nc", r / "reduce" / "u.nc", r / "train" / "rbf.nc",
                 r / "evaluation" / "metrics.nc"]:
        attrs = open_dataset(path).attrs
        for key in ("surroflow_version", "git_commit", "config_sha256", "created", "stage"):
            assert key in attrs, (path, key)
    basis = open_dataset(r / "reduce" / "u.nc", stage="reduce")
    assert basis["modes"].dims == ("mode", "x")
    assert "test_projection_error" in basis
    # the train/test designs do not share samples
    test = open_dataset(r / "generate" / "test.nc")
    d_tr, d_te = train["design"].values, test["design"].values
    assert min(np.min(np.abs(d_tr - row).sum(axis=1)) for row in d_te) > 0


def test_summary_errors_and_speedup(tiny_run):
    s = pd.read_csv(tiny_run / "results" / "tiny" / "evaluation" / "summary.csv")
    for col in ("surrogate", "rel_l2_mean", "rel_l2_max", "projection_error_mean", "speedup", "offline_seconds"):
        assert col in s.columns
    assert set(s["surrogate"]) == {"rbf", "linear"}
    assert s["rel_l2_mean"].min() < TINY["studies"]["tiny"]["evaluation"]["error_bound"]
    assert (s["projection_error_mean"] <= s["rel_l2_mean"] + 1e-12).all()
    # total^2 = projection^2 + selection^2 + regression^2 (Pythagoras in the weighted norm)
    m = open_dataset(tiny_run / "results" / "tiny" / "evaluation" / "metrics.nc")
    tot = m["rel_l2"].values ** 2
    parts = (m["projection_error"].values ** 2 + m["selection_error"].values ** 2
             + m["regression_error"].values ** 2)
    np.testing.assert_allclose(tot, parts, rtol=1e-6)
    assert (s["speedup"] > 0).all() and (s["offline_seconds"] > 0).all()


def test_report_and_figures_exist(tiny_run):
    assert (tiny_run / "results" / "report.html").stat().st_size > 10_000
    figs = tiny_run / "results" / "tiny" / "figures"
    for name in ("singular_values", "fields", "error_parameters", "error_split"):
        assert (figs / f"{name}.png").stat().st_size > 1000
        assert (figs / f"{name}.pdf").exists()
    assert any((tiny_run / "logs" / "generate_batch").iterdir())


def test_bad_config_fails_before_any_job(tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["studies"]["tiny"]["design"]["methd"] = "sobol"
    cfg["studies"]["tiny"]["reduction"]["method"] = "qr"
    res = snakemake(tmp_path, cfg)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "studies.tiny.design" in out and "methd" in out
    assert "studies.tiny.reduction.method" in out and "'qr' is not allowed" in out and "tsqr" in out
    assert not (tmp_path / "results").exists()


def test_diverged_and_failed_samples_are_flagged_and_excluded(tmp_path):
    cfg = copy.deepcopy(TINY)
    study = cfg["studies"]["tiny"]
    study["simulator"]["name"] = "flaky_burgers"
    study["simulator"]["settings"].update({"nan_above_amplitude": 0.93, "fail_above_amplitude": 0.97})
    study["simulator"]["max_failure_fraction"] = 0.5
    study["surrogates"] = {"linear": {"kind": "linear", "params": {"degree": 2}}}
    res = snakemake(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    r = tmp_path / "results" / "tiny"
    train = open_dataset(r / "generate" / "train.nc")
    amp = train["design"].sel(parameter="amplitude").values
    status = train["status"].values
    assert np.all(status[(amp > 0.93) & (amp <= 0.97)] == 1)   # diverged
    assert np.all(status[amp > 0.97] == 2)                       # failed
    assert np.all(status[amp <= 0.93] == STATUS_OK)
    n_bad = int((status != STATUS_OK).sum())
    assert n_bad > 0
    # NaN, never zero-filled; the reason is kept
    assert np.all(np.isnan(train["u"].values[status != STATUS_OK]))
    assert all("injected" in str(r_) or "non-finite" in str(r_)
               for r_ in train["status_reason"].values[status != STATUS_OK])
    s = pd.read_csv(r / "evaluation" / "summary.csv")
    assert int(s["n_train_flagged"].iloc[0]) == n_bad
    log = (tmp_path / "logs" / "fit_pod" / "tiny_u.log").read_text()
    assert f"({n_bad} excluded)" in log
    assert np.isfinite(s["rel_l2_mean"]).all()


def test_failure_fraction_above_limit_stops_loudly(tmp_path):
    cfg = copy.deepcopy(TINY)
    study = cfg["studies"]["tiny"]
    study["simulator"]["name"] = "flaky_burgers"
    study["simulator"]["settings"]["fail_above_amplitude"] = 0.6
    study["simulator"]["max_failure_fraction"] = 0.1
    res = snakemake(tmp_path, cfg, "--until", "collect_batches")
    assert res.returncode != 0
    assert "max_failure_fraction=0.1" in res.stdout + res.stderr

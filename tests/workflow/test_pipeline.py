"""End-to-end: snakemake on tests/config/tiny.yaml (parametric) and tests/config/forecast.yaml
(forecast) in a temporary directory; the report, provenance, --configfile and --lint."""
from __future__ import annotations

import copy
from pathlib import Path
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from surroflow.io import STATUS_OK, open_dataset

from ..snakemake_runner import ROOT, job_counts, load_yaml, snakemake, write_config

pytestmark = pytest.mark.slow

TINY = load_yaml(ROOT / "tests" / "config" / "tiny.yaml")
FORECAST = load_yaml(ROOT / "tests" / "config" / "forecast.yaml")
#: one run with a parametric and a forecast study: both must reach the report
BOTH = {**TINY, "studies": {**TINY["studies"], **FORECAST["studies"]}}
GENERATED = ("collect_batches", "import_files")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    res = snakemake(work, BOTH)
    assert res.returncode == 0, res.stderr[-4000:]
    rep = snakemake(work, BOTH, "--report", "results/report.html", cores=1)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return work


def test_artifacts_have_named_dimensions_and_provenance(tiny_run):
    r = tiny_run / "results" / "tiny"
    train = open_dataset(r / "generate" / "train.nc", stage="collect_batches")
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
    basis = open_dataset(r / "reduce" / "u.nc", stage="fit_pod")
    assert basis["modes"].dims == ("mode", "x")
    assert open_dataset(r / "train" / "rbf.nc", stage="train_surrogate").attrs["model_name"] == "rbf"
    # the train, test and calibration designs do not share samples
    test = open_dataset(r / "generate" / "test.nc")
    cal = open_dataset(r / "generate" / "calibration.nc", stage="collect_batches")
    assert cal.attrs["split"] == "calibration" and cal.sizes["sample"] == TINY["studies"]["tiny"]["design"]["n_calibration"]
    d_tr, d_te, d_cal = train["design"].values, test["design"].values, cal["design"].values
    for a, b in ((d_tr, d_te), (d_tr, d_cal), (d_te, d_cal)):
        assert min(np.min(np.abs(a - row).sum(axis=1)) for row in b) > 0
    # every model is calibrated split-conformally on the calibration split, which it was not trained on
    model = open_dataset(r / "train" / "rbf.nc", stage="train_surrogate")
    assert model.attrs["calibration"] == "split_conformal"
    assert model["calibration_sample"].size == cal.sizes["sample"]
    roles = __import__("json").loads(model.attrs["lineage"])["inputs"]
    assert [i["split"] for i in roles["calibration"]] == ["calibration"] and "test" not in roles


def test_summary_errors_and_speedup(tiny_run):
    s = pd.read_csv(tiny_run / "results" / "tiny" / "evaluation" / "summary.csv")
    for col in ("surrogate", "rel_l2_mean", "rel_l2_max", "projection_error_mean", "speedup", "offline_seconds"):
        assert col in s.columns
    assert list(s["surrogate"]) == ["linear", "rbf", "poly", "fno"]        # the linear baseline first, added
    assert list(s["role"]) == ["baseline", "candidate", "candidate", "candidate"] and s["skill_vs_linear"].iloc[0] == 0.0
    # the full-field FNO (basis none): no POD, so no projection error and no reduction cost
    fno = s.set_index("surrogate").loc["fno"]
    assert fno["basis"] == "none" and fno["online_modes"] == 128
    assert fno["projection_error_mean"] < 1e-12 and fno["reduction_seconds"] == 0.0
    assert np.isclose(fno["regression_error_mean"], fno["rel_l2_mean"]) and fno["rel_l2_mean"] < 0.5
    fno_file = open_dataset(tiny_run / "results" / "tiny" / "train" / "fno.nc", stage="train_surrogate")
    assert "bases" not in __import__("json").loads(fno_file.attrs["lineage"])["inputs"]
    assert s["rel_l2_mean"].min() < TINY["studies"]["tiny"]["evaluation"]["error_bound"]
    assert (s["projection_error_mean"] <= s["rel_l2_mean"] + 1e-12).all()
    # total^2 = projection^2 + selection^2 + regression^2 (Pythagoras in the weighted norm)
    m = open_dataset(tiny_run / "results" / "tiny" / "evaluation" / "metrics.nc")
    tot = m["rel_l2"].values ** 2
    parts = (m["projection_error"].values ** 2 + m["selection_error"].values ** 2
             + m["regression_error"].values ** 2)
    np.testing.assert_allclose(tot, parts, rtol=1e-6)
    assert (s["speedup"] > 0).all() and (s["offline_seconds"] > 0).all()
    assert (s["calibration_method"] == "split_conformal").all() and (s["n_calibration"] == 20).all()
    assert s["coverage_95"].between(0, 1).all() and (s["calibration_seconds"] > 0).all()


def test_report_and_figures_exist(tiny_run):
    report = tiny_run / "results" / "report.html"
    assert report.stat().st_size > 10_000
    figs = tiny_run / "results" / "tiny" / "evaluation" / "figures"
    for name in ("singular_values", "fields", "error_parameters", "error_split"):
        assert (figs / f"{name}.png").stat().st_size > 1000
    assert any((tiny_run / "logs" / "generate_batch").iterdir())


def test_uq_propagation_runs_with_its_high_fidelity_check(tiny_run):
    r = tiny_run / "results" / "tiny" / "uq"
    ds = open_dataset(r / "statistics.nc", stage="propagate_uq")
    uq = TINY["studies"]["tiny"]["uq"]
    assert ds["qoi_surrogate"].shape == (uq["n_samples"], len(uq["qoi"]))
    assert ds["qoi_high_fidelity"].sizes["hf_sample"] == uq["n_hf_check"]
    assert ds.attrs["model_name"] == uq["surrogate"] and ds.attrs["cost_ratio"] > 0
    for key in ("surroflow_version", "git_commit", "config_sha256", "created"):
        assert key in ds.attrs
    assert ds["u_mean"].dims == ("time", "x") and list(ds["input"].values) == ["nu", "amplitude"]
    s = pd.read_csv(r / "summary.csv")
    assert set(s["qoi"]) == set(uq["qoi"]) and set(s["source"]) == {"surrogate", "high_fidelity"}
    assert s.loc[s["source"] == "surrogate", "mean_agrees"].all()
    for name in ("qoi_distributions", "sobol_indices"):
        assert (r / "figures" / f"{name}.png").stat().st_size > 1000


def test_forecast_study_runs(tiny_run):
    r = tiny_run / "results" / "l63"
    s = pd.read_csv(r / "evaluation" / "summary.csv")
    assert {"persistence", "climatology", "dmd"} <= set(s.iloc[:, 0])
    for name in ("persistence", "climatology", "dmd"):
        m = open_dataset(r / "train" / f"{name}.nc", stage="train_forecaster")
        assert m.attrs["model_name"] == name
    assert any(p.suffix == ".png" for p in (r / "evaluation" / "figures").iterdir())
    # SINDy's equations beside Lorenz-63's own: all seven terms found, nothing spurious
    eq = pd.read_csv(r / "forecast" / "equations_sindy.csv")
    assert sorted(eq["status"].unique()) == ["found"] and len(eq) == 7, eq
    assert eq["rel_error"].max() < 0.01
    assert "dy/dt = 28" in (r / "forecast" / "equations_sindy.txt").read_text()
    html = (tiny_run / "results" / "report.html").read_text(errors="replace")
    assert "l63/forecast/equations_sindy.html" in html


def test_report_holds_every_study_with_figures_and_summary(tiny_run):
    """results/report.html lists each study (its category) with its summary table and every
    figure of its evaluation folder, parametric and forecast alike."""
    html = (tiny_run / "results" / "report.html").read_text(errors="replace")
    for study in ("tiny", "l63"):
        assert f"{study}/evaluation/summary.csv" in html, study
        assert f"{study}/evaluation/summary.html" in html, study     # the table shown on the page
        pngs = sorted((tiny_run / "results" / study / "evaluation" / "figures").glob("*.png"))
        assert pngs, study
        for png in pngs:
            assert f"{study}/evaluation/figures/{png.name}" in html, png


def _chromium() -> str:
    import os
    import shutil
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs the Debian package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


def _dom(page, profile) -> str:
    """The page's DOM after its JavaScript ran in headless Chromium."""
    res = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                          "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


COLUMNS = {"parametric": ("rel_l2_mean", "coverage_95", "speedup"), "forecast": ("vpt_median", "vpt_over_persistence"),
           # a model-error study is scored like a forecast one, its models against the true model
           "model_error": ("vpt_median", "vpt_over_true")}


def check_report_in_a_browser(results, studies, profile) -> None:
    """Headless Chromium runs the report's JavaScript: the page it opens on lists every study of
    ``studies`` (name -> its validated config section) with its best model; the report's overview
    page holds, per study, its name, description, summary table and headline figures."""
    dom = _dom(results / "report.html", profile / "a")
    assert "Studies at a glance" in dom
    for study in studies:
        assert f'id="sf-glance-{study}"' in dom, study
    html = (results / "report.html").read_text(errors="replace")
    assert "overview/overview.html" in html                     # the overview page is in the report
    page = _dom(results / "overview" / "overview.html", profile / "b")
    for study, cfg in studies.items():
        task = cfg.get("task", "parametric")
        assert f'id="sf-study-{study}"' in page and f"{study} ({task})" in page, study
        section = page.split(f'id="sf-study-{study}"', 1)[1].split('id="sf-study-', 1)[0]
        assert f"{study}: summary" in section and all(f"<th>{c}</th>" in section for c in COLUMNS[task]), study
        assert section.count("data:image/png;base64,") >= 2, study
        if cfg.get("description"):
            assert " ".join(cfg["description"].split())[:40] in section, study


def test_report_front_page_in_a_browser(tiny_run, tmp_path):
    check_report_in_a_browser(tiny_run / "results", BOTH["studies"], tmp_path)
    dom = _dom(tiny_run / "results" / "report.html", tmp_path / "c")
    assert "baseline linear" in dom.split('id="sf-glance-tiny"', 1)[1].split("</li>", 1)[0]


def test_make_run_report_in_a_browser(tmp_path):
    """The same checks on the report of `make run` (the default studies), when there is one:
    `results/` of this checkout, or the folder SURROFLOW_MAKE_RUN_RESULTS names."""
    import os
    results = Path(os.environ.get("SURROFLOW_MAKE_RUN_RESULTS", ROOT / "results"))
    if not (results / "report.html").is_file() or not (results / "overview" / "overview.html").is_file():
        pytest.skip(f"no make run report in {results} (run `make run` first)")
    studies = load_yaml(ROOT / "config" / "config.yaml")["studies"]
    ran = {s: c for s, c in studies.items() if (results / s / "evaluation" / "summary.csv").is_file()}
    assert ran, f"{results}: no study of config/config.yaml has a summary"
    check_report_in_a_browser(results, ran, tmp_path)


def test_provenance_reports_nothing_stale_after_a_clean_run(tiny_run):
    cfg = tiny_run / "config.yaml"
    res = subprocess.run([sys.executable, "-m", "surroflow", "provenance", "results", "--config", str(cfg)],
                         cwd=tiny_run, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert ", 0 stale or unreadable" in res.stdout
    for stage in ("make_design", "generate_batch", "collect_batches", "fit_pod", "train_surrogate",
                  "evaluate_surrogates", "train_forecaster", "evaluate_forecast"):
        assert f"stage={stage} " in res.stdout, stage


def test_changed_model_makes_only_its_artifacts_stale(tiny_run, tmp_path):
    cfg = copy.deepcopy(BOTH)
    cfg["studies"]["tiny"]["surrogates"]["poly"]["params"]["degree"] = 2
    path = write_config(tmp_path, cfg)
    res = subprocess.run([sys.executable, "-m", "surroflow", "provenance", "results", "--config", str(path)],
                         cwd=tiny_run, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    stale = sorted(line.split("stale: ")[1] for line in res.stdout.splitlines() if line.startswith("  stale: "))
    assert stale == ["results/tiny/evaluation/metrics.nc", "results/tiny/train/poly.nc"], res.stdout[-3000:]


def test_configfile_runs_exactly_its_studies(tmp_path):
    """--configfile replaces the built-in config/config.yaml (it is not merged into it)."""
    res = snakemake(tmp_path, ROOT / "tests" / "config" / "tiny.yaml", "-n", cores=1)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    # batches of 8: 16 train (2), 4 test (1), 20 calibration (3)
    assert job_counts(out) == {"make_design": 1, "generate_batch": 6, "collect_batches": 3, "fit_pod": 1,
                              "train_surrogate": 4, "evaluate_surrogates": 1, "propagate_uq": 1, "overview": 1,
                              "all": 1}
    for builtin in ("burgers", "lorenz63_forecast", "ks22_forecast", "pulse_local", "plate"):
        assert f"results/{builtin}/" not in out, builtin
    assert "results/tiny/evaluation/summary.csv" in out


def test_builtin_config_applies_without_configfile(tmp_path):
    res = snakemake(tmp_path, None, "-n", "--config", "results=elsewhere", cores=1)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    for builtin in ("burgers", "lorenz63_forecast", "pulse_local"):
        assert f"elsewhere/{builtin}/evaluation/summary.csv" in out, builtin


def test_lint_is_clean(tmp_path):
    res = snakemake(tmp_path, ROOT / "tests" / "config" / "tiny.yaml", "--lint", cores=None)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Congratulations, your workflow is in a good condition!" in res.stdout + res.stderr


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
    study["surrogates"] = {"linear": {"kind": "linear", "params": {"degree": 1}}}
    study.pop("uq")
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


def test_study_whose_simulator_cannot_run_here_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "h3_unavailable_sim.py").write_text(
        "from surroflow.simulators import SimulatorUnavailable\n"
        "from surroflow.simulators.burgers import Burgers1D\n\n\n"
        "class Gone(Burgers1D):\n"
        "    def __init__(self, **settings):\n"
        "        raise SimulatorUnavailable(\"solver 'gone' is not installed\")\n")
    cfg = copy.deepcopy(TINY)
    cfg["studies"]["gone"] = {**copy.deepcopy(cfg["studies"]["tiny"]),
                              "simulator": {"name": "python:h3_unavailable_sim:Gone"}}
    res = snakemake(tmp_path / "work", cfg, "-n", cores=1, env={"PYTHONPATH": str(tmp_path)})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "surroflow: study 'gone' skipped: solver 'gone' is not installed" in out
    assert "results/gone/" not in out and job_counts(out)["evaluate_surrogates"] == 1

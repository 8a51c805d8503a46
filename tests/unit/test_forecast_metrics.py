"""Forecast metrics (VPT in Lyapunov times, RMSE vs lead time, long-horizon statistics) and the
forecast stage end to end on a tiny Lorenz-63 study."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from surroflow import SurroflowError
from surroflow.forecast import metrics as M

# ----------------------------------------------------------------------------- metrics


def test_normalised_error_and_normalisers():
    truth = np.zeros((1, 3, 2)) + np.array([3.0, 4.0])
    pred = truth.copy()
    pred[0, 1] += [3.0, 4.0]
    pred[0, 2, 0] = np.nan
    assert M.error_normaliser(truth, "rms") == pytest.approx(5.0)
    with pytest.raises(SurroflowError, match="zero norm"):
        M.error_normaliser(truth, "std")
    e = M.normalised_error(truth, pred, 5.0)
    np.testing.assert_allclose(e[0, :2], [0.0, 1.0])
    assert e[0, 2] == np.inf
    with pytest.raises(SurroflowError, match="not allowed"):
        M.error_normaliser(truth, "max")


def test_valid_prediction_time():
    err = np.array([np.arange(1, 101) * 0.01,            # exceeds 0.4 first at index 40 (0.41)
                    np.full(100, 0.1),                    # never: censored at the horizon
                    np.r_[np.full(10, 0.1), np.nan, np.zeros(89)]])   # blow-up at index 10
    vpt, cens = M.valid_prediction_time(err, dt=0.5, lyapunov_time=2.0, threshold=0.4)
    np.testing.assert_allclose(vpt, [41 * 0.25, 100 * 0.25, 11 * 0.25])
    np.testing.assert_array_equal(cens, [False, True, False])


def test_divergence_and_rmse():
    truth = np.zeros((3, 4, 2))
    pred = np.ones((3, 4, 2))
    pred[1, 2:] = np.nan
    pred[2, 3, 1] = 1e9
    div, step = M.divergence(pred, limit=1e3)
    np.testing.assert_array_equal(div, [False, True, True])
    np.testing.assert_array_equal(step, [-1, 2, 3])
    rmse, nf = M.rmse_vs_lead(truth, pred)
    np.testing.assert_allclose(rmse[:2], 1.0)
    np.testing.assert_allclose(nf, [0, 0, 1 / 3, 1 / 3])


def test_power_spectrum_peak_and_errors():
    t = np.arange(512) * 0.1
    x = np.sin(2 * np.pi * 0.5 * t)[None, :, None] * np.ones((2, 1, 3))
    psd = M.power_spectrum(x, "time")
    f = np.fft.rfftfreq(512, 0.1)
    assert f[np.argmax(psd)] == pytest.approx(0.5, abs=0.02)
    assert M.spectrum_error(psd, psd) == 0.0
    assert M.spectrum_error(psd, 4 * psd) == pytest.approx(np.log10(4))
    assert M.spectrum_error(psd, np.full_like(psd, np.nan)) == np.inf
    assert np.all(np.isnan(M.power_spectrum(np.full((1, 8, 2), np.nan), "time")))
    u = np.cos(2 * np.pi * 3 * np.arange(32) / 32)[None, None, :] * np.ones((1, 5, 1))
    assert np.argmax(M.power_spectrum(u, "space")) == 3


def test_histogram_distances_and_collapse():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 2000, 2))
    b = rng.normal(size=(4, 2000, 2))
    w1, hel = M.histogram_distances(a, b)
    assert w1 < 0.05 and hel < 0.1
    w1s, hels = M.histogram_distances(a, b + 1.0)
    assert w1s == pytest.approx(1.0, abs=0.05) and hels > hel
    assert M.histogram_distances(a, np.full_like(a, np.nan)) == (np.inf, 1.0)
    flat = np.zeros_like(a) + 0.3
    np.testing.assert_array_equal(M.collapsed(a, flat), True)
    np.testing.assert_array_equal(M.collapsed(a, b), False)
    st = M.long_horizon_statistics(a, flat, limit=100.0)
    assert st["collapsed_fraction"] == 1.0 and st["spectrum_error_time"] > 5
    div = b.copy()
    div[0, 100:] = np.inf
    st = M.long_horizon_statistics(a, div, limit=100.0)
    assert st["stats_diverged_fraction"] == 0.25 and np.isfinite(st["spectrum_error_time"])


def test_score_summary():
    truth = np.ones((2, 10, 1))
    pred = truth.copy()
    pred[1, 5:] = 3.0
    sc = M.score_forecasts(truth, pred, dt=1.0, lyapunov_time=2.0, normaliser=1.0, threshold=0.5, limit=100.0)
    s = sc.summary()
    assert s["vpt_max"] == 5.0 and s["vpt_min"] == 3.0 and s["n_censored"] == 1 and s["n_diverged"] == 0


# ----------------------------------------------------------------------------- stage, end to end
def _generate(path: Path, split: str, n: int, seed: int, bad: int | None = None) -> None:
    from surroflow.design import design_records, make_design
    from surroflow.generate import batch_dataset
    from surroflow.io import provenance, write_dataset
    from surroflow.simulators import SampleFailure
    from surroflow.simulators.chaos import Lorenz63
    sim = Lorenz63(dt=0.01, dt_sample=0.02, n_steps=500, transient=10.0)
    design = make_design(sim.parameters(), "sobol", n, seed, split)
    res = sim.run_batch(design_records(design))
    if bad is not None:
        res[bad] = SampleFailure("blew up", "diverged")
    ds = batch_dataset(sim, design, [(r, 0.01) for r in res])
    ds.attrs.update(provenance("generate", {}, "tiny"))
    write_dataset(ds, path)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    _generate(root / "generate" / "train.nc", "train", 4, 0)
    _generate(root / "generate" / "test.nc", "test", 6, 7, bad=2)
    return root


def test_forecast_stage_end_to_end(tiny_study, caplog):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from surroflow.forecast.models import forecaster_to_dataset, make_forecaster
    from surroflow.forecast.pipeline import evaluate_forecast_file, load_forecaster, train_forecaster_file
    from surroflow.io import open_dataset, write_dataset
    root = tiny_study
    cfg = {"horizon_lyapunov": 3.0, "stats_horizon_lyapunov": 6.0, "warmup": 3, "starts_per_trajectory": 2,
           "start_spacing_lyapunov": 1.0, "n_plot": 1}
    models = {"persistence": ("persistence", {}, None), "climatology": ("climatology", {}, None),
              "ngrc": ("ngrc", {"alpha": 1e-8}, None),
              "pod_mlp": ("mlp_stepper", {"hidden": [16], "n_iterations": 20, "rollout_steps": 2}, "pod")}
    files = []
    for name, (kind, params, state) in models.items():
        out = root / "forecast" / "models" / f"{name}.nc"
        train_forecaster_file(str(root / "generate" / "train.nc"), str(out), kind, params, {**cfg, "rank": 2},
                              str(root / f"train_{name}.log"), name=name, state=state, study="tiny")
        files.append(str(out))
    name, m, attrs = load_forecaster(files[3])
    assert m.kind == "reduced" and attrs["state"] == "pod" and attrs["lyapunov_time"] == pytest.approx(1 / 0.9056)
    # a model that blows up: DMD with an unstable operator
    _, good, _ = load_forecaster(files[2])
    unstable = make_forecaster("dmd", alpha=1e-12).fit(np.cumprod(np.full((1, 20, 3), 1.3), axis=1), dt=0.02)
    write_dataset(forecaster_to_dataset(unstable, {"stage": "train_forecaster", "forecaster_name": "unstable",
                                                   "dt_sample": 0.02, "fit_seconds": 0.0}),
                  root / "forecast" / "models" / "unstable.nc")
    files.append(str(root / "forecast" / "models" / "unstable.nc"))
    out_nc, out_csv, figs = root / "forecast" / "metrics.nc", root / "evaluation" / "summary.csv", root / "figures"
    evaluate_forecast_file(str(root / "generate" / "test.nc"), files, str(out_nc), str(out_csv), str(figs), cfg,
                           str(root / "evaluate.log"), study="tiny")
    log = (root / "evaluate.log").read_text()
    assert "1 of 6 samples excluded" in log and "unstable: 10 of 10 rollouts diverged" in log
    ds = open_dataset(out_nc, stage="evaluate_forecast")
    assert list(ds["model"].values) == ["persistence", "climatology", "ngrc", "pod_mlp", "unstable"]
    assert ds.sizes["forecast"] == 10                     # 5 ok trajectories x 2 starts
    assert ds.attrs["horizon_steps"] == int(np.ceil(3.0 / 0.9056 / 0.02))
    vpt = ds["vpt"].to_pandas().median(axis=1)
    assert vpt["ngrc"] > 2.0 > vpt["persistence"]
    assert ds["diverged"].sel(model="unstable").values.all()
    assert np.all(ds["vpt"].sel(model="unstable").values > 0)     # VPT up to the blow-up, not dropped
    df = pd.read_csv(out_csv).set_index("model")
    assert df.loc["unstable", "status"] == "diverged (10/10)" and df.loc["ngrc", "status"] == "ok"
    assert bool(df.loc["ngrc", "beats_persistence"]) and df.loc["persistence", "vpt_over_persistence"] == 1.0
    for col in ("vpt_median", "vpt_q25", "vpt_q75", "spectrum_error_time", "wasserstein", "hellinger",
                "rmse_at_1_lyapunov_time", "n_diverged"):
        assert col in df.columns
    for stem in ("vpt", "error_growth", "spectra", "rollout_0", "invariant_measure"):
        assert (figs / f"{stem}.png").stat().st_size > 1000 and (figs / f"{stem}.pdf").exists()


def test_stage_errors(tiny_study, tmp_path):
    from surroflow.forecast.pipeline import forecast_settings, train_forecaster_file
    with pytest.raises(SurroflowError, match=r"unknown key\(s\) \['horizon'\]"):
        forecast_settings({"horizon": 3})
    with pytest.raises(SurroflowError, match="unknown hyperparameter"):
        train_forecaster_file(str(tiny_study / "generate" / "train.nc"), str(tmp_path / "m.nc"), "ngrc",
                              {"alhpa": 1}, {}, None)
    with pytest.raises(SurroflowError, match="forecast.variable='u'"):
        train_forecaster_file(str(tiny_study / "generate" / "train.nc"), str(tmp_path / "m.nc"), "ngrc",
                              {}, {"variable": "u"}, None)


def test_pipeline_defaults_match_the_schema():
    from surroflow.config import load_schema, validate_config
    from surroflow.forecast.pipeline import DEFAULTS
    props = load_schema()["$defs"]["forecast"]["properties"]
    assert set(props) == set(DEFAULTS)
    assert {k: v["default"] for k, v in props.items() if k != "models"} == \
        {k: v for k, v in DEFAULTS.items() if k != "models"}
    kinds = set(load_schema()["$defs"]["forecast_model"]["properties"]["kind"]["enum"])
    from surroflow.forecast.models import kinds as model_kinds
    assert kinds == set(model_kinds()) - {"reduced"}
    cfg = validate_config({"studies": {"k": {"task": "forecast", "simulator": {"name": "kuramoto_sivashinsky"},
                                             "design": {"n_train": 2, "n_test": 2},
                                             "forecast": {"models": {"m": {"kind": "rff"}}}}}})
    assert cfg["studies"]["k"]["forecast"]["models"]["m"] == {"kind": "rff", "params": {}, "state": "inherit"}

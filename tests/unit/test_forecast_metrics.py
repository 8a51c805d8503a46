"""Forecast metrics (VPT in Lyapunov times, RMSE vs lead time, long-horizon statistics).

The forecast evaluation end to end (baselines, diverging models, figures) is tested in
``test_evaluation.py``."""
from __future__ import annotations

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.evaluation import forecast_metrics as M

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


def test_histogram_distances_match_scipy_and_numpy():
    """The sorted-sample W1 and searchsorted histograms give scipy's and numpy's numbers, with as
    many predicted as true values and with fewer (a non-finite forecast excluded)."""
    from scipy.stats import wasserstein_distance
    rng = np.random.default_rng(3)
    t = rng.normal(size=(3, 400, 3)) * [1.0, 2.0, 0.5]
    p = rng.standard_t(5, size=(3, 400, 3)) + 0.2
    p_bad = p.copy()
    p_bad[1, 7, 0] = np.nan

    def reference(truth, pred, bins=50):
        tt = truth.reshape(-1, truth.shape[-1])
        pp = pred[np.all(np.isfinite(pred), axis=(1, 2))].reshape(-1, pred.shape[-1])
        w1, hel = [], []
        for j in range(tt.shape[1]):
            w1.append(wasserstein_distance(tt[:, j], pp[:, j]) / tt[:, j].std())
            edges = np.linspace(min(tt[:, j].min(), pp[:, j].min()), max(tt[:, j].max(), pp[:, j].max()), bins + 1)
            ht = np.histogram(tt[:, j], edges)[0] / len(tt)
            hp = np.histogram(pp[:, j], edges)[0] / len(pp)
            hel.append(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(ht * hp)))))
        return np.mean(w1), np.mean(hel)

    for pred in (p, p_bad):
        np.testing.assert_allclose(M.histogram_distances(t, pred), reference(t, pred), rtol=1e-12)


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


# ----------------------------------------------------------------------------- config
def test_schema_lists_every_forecaster_kind():
    from surroflow.config import load_schema
    from surroflow.surrogates.registry import kinds
    schema = load_schema()["$defs"]
    assert set(schema["forecast_model"]["properties"]["kind"]["enum"]) == set(kinds("forecaster")) - {"reduced"}
    # every setting the forecast evaluation reads has a default in the schema (none in code)
    props = schema["forecast"]["properties"]
    assert all("default" in v for v in props.values())
    assert {"vpt_threshold", "vpt_normalisation", "horizon_lyapunov", "stats_horizon_lyapunov", "warmup",
            "starts_per_trajectory", "start_spacing_lyapunov", "divergence_factor", "n_plot", "variable"} <= set(props)


# ----------------------------------------------------------------------------- literature metrics
def test_smape_and_its_vpt_follow_the_dysts_definition():
    truth = np.array([[[1.0, -2.0], [1.0, -2.0], [1.0, -2.0]]])            # (1 forecast, 3 leads, 2)
    pred = np.array([[[1.0, -2.0], [3.0, -2.0], [np.nan, -2.0]]])
    s = M.smape(truth, pred)
    # lead 2: component 0 |1-3|/(1+3) = 0.5, component 1 0 -> 200 * 0.25 = 50; non-finite counts as 200
    np.testing.assert_allclose(s, [[0.0, 50.0, 100.0]])
    assert M.smape(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)))[0, 0] == 0.0
    sc = M.score_forecasts(truth, pred, dt=1.0, lyapunov_time=1.0, normaliser=1.0, threshold=10.0, limit=1e9,
                           smape_threshold=30.0)
    assert sc.vpt_smape[0] == 2.0 and sc.summary()["vpt_smape_median"] == 2.0


def test_default_normaliser_removes_the_mean():
    truth = np.zeros((1, 4, 1)) + np.array([3.0, 5.0, 3.0, 5.0])[None, :, None]     # mean 4, std 1
    assert M.error_normaliser(truth) == pytest.approx(1.0)
    assert M.error_normaliser(truth, "rms") == pytest.approx(np.sqrt(17.0))


def test_reference_check_refuses_a_too_coarse_dt():
    """Lorenz-63 RK4 with dt = 0.01: the dt and dt/2 trajectories are 0.5 apart at 12 Lyapunov
    times (far above 0.1 x 0.4), but under 0.01 at 6; dt = 0.005 holds to 12."""
    from surroflow.simulators import get_simulator
    coarse = get_simulator("lorenz63", dt=0.01, transient=10.0)
    lt = 1.0 / coarse.published_exponent()[0]
    msg = M.reference_problem(coarse, lyapunov_time=lt, horizon_lyapunov=12, vpt_threshold=0.4, tolerance=0.1,
                              where="studies.s")
    assert msg is not None and msg.startswith("studies.s: the simulator's reference trajectories are not accurate")
    assert "make simulator.settings.dt smaller (e.g. 0.005)" in msg
    assert M.reference_problem(coarse, lyapunov_time=lt, horizon_lyapunov=6, vpt_threshold=0.4, tolerance=0.1,
                               where="s") is None
    fine = get_simulator("lorenz63", dt=0.005, dt_sample=0.01, transient=10.0)
    assert M.reference_problem(fine, lyapunov_time=lt, horizon_lyapunov=12, vpt_threshold=0.4, tolerance=0.1,
                               where="s") is None
    times, err = M.reference_error(coarse, 12 * lt)
    assert err[-1] > 100 * err[len(err) // 4] and np.all(np.isfinite(err))       # it grows with the chaos


def test_config_refuses_a_forecast_study_with_an_inaccurate_reference():
    from surroflow import SurroflowError
    from surroflow.config import validate_config
    cfg = {"studies": {"f": {"task": "forecast", "simulator": {"name": "lorenz63", "settings": {"dt": 0.01}},
                             "design": {"n_train": 2, "n_test": 1},
                             "forecast": {"horizon_lyapunov": 12, "models": {"dmd": {"kind": "dmd"}}}}}}
    with pytest.raises(SurroflowError, match=r"studies.f: the simulator's reference trajectories are not accurate"):
        validate_config(cfg)
    cfg["studies"]["f"]["forecast"]["horizon_lyapunov"] = 6
    validate_config(cfg)


def test_contains_true_equations_names_the_models_whose_class_holds_the_vector_field():
    from surroflow.evaluation.forecast import ForecastModel, contains_true_equations, polynomial_degree
    from surroflow.forecast import make_forecaster
    from surroflow.simulators import get_simulator
    assert polynomial_degree(get_simulator("lorenz63").equation_terms()) == 2
    assert polynomial_degree(get_simulator("kuramoto_sivashinsky").equation_terms()) is None
    assert polynomial_degree(None) is None

    def fm(kind, state="full", **params):
        return ForecastModel(kind, make_forecaster(kind, **params), kind, state, 0.0, 0.01)
    assert contains_true_equations(fm("opinf", time="continuous"), 2)
    assert not contains_true_equations(fm("opinf", time="discrete"), 2)
    assert not contains_true_equations(fm("opinf", state="pod", time="continuous"), 2)
    assert contains_true_equations(fm("sindy", degree=2), 2) and not contains_true_equations(fm("sindy", degree=2), 3)
    assert not contains_true_equations(fm("sindy", library="fourier"), 2)
    assert not contains_true_equations(fm("ngrc"), 2) and not contains_true_equations(fm("opinf", time="continuous"), None)

"""Burgers1D against its exact (Cole-Hopf) solution, its temporal order, declarations and faults."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.simulators import SampleFailure, get_simulator
from surroflow.simulators.burgers import Burgers1D, cole_hopf, cole_hopf_series, solve_burgers
from surroflow.simulators.testing import FlakyBurgers

HALF_PI = 0.5 * math.pi


def rel_l2(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def errors_vs_exact(sim: Burgers1D, params: dict[str, float]) -> np.ndarray:
    """Relative L2 error in x of ``sim`` against Cole-Hopf at every output time."""
    u = sim.run_sample(params)["u"]
    coords = sim.coordinates()
    x, times = coords["x"].values, coords["time"].values
    return np.array([rel_l2(u[i], cole_hopf(x, t, params["nu"], params["amplitude"], params["shift"]))
                     for i, t in enumerate(times)])


# --------------------------------------------------------------------------- reference
@pytest.mark.parametrize("amplitude", [0.5, 1.0])
def test_cole_hopf_matches_bessel_series(amplitude: float) -> None:
    # at nu = 0.1 the series loses < 4 digits, so it checks the quadrature independently
    x = np.linspace(0.0, 2 * math.pi, 97)
    for t in (0.01, 0.3, 1.0):
        np.testing.assert_allclose(cole_hopf(x, t, 0.1, amplitude, 0.4),
                                   cole_hopf_series(x, t, 0.1, amplitude, 0.4), rtol=0, atol=1e-9)


def test_cole_hopf_initial_condition_and_shape() -> None:
    x = np.linspace(0.0, 2 * math.pi, 12).reshape(3, 4)
    np.testing.assert_allclose(cole_hopf(x, 0.0, 0.01, 1.5, 0.3), 1.5 * np.sin(x - 0.3))
    # just after t = 0 the quadrature form (no overflow even for A/(2 nu) = 75) agrees with u0
    np.testing.assert_allclose(cole_hopf(x, 1e-6, 0.01, 1.5, 0.3), 1.5 * np.sin(x - 0.3), atol=1e-5)
    assert cole_hopf(x, 1.0, 0.01, 1.5, 0.3).shape == x.shape


# --------------------------------------------------------------------------- (a) accuracy
@pytest.mark.parametrize("params", [
    {"nu": 0.01, "amplitude": 1.5, "shift": 0.0},       # steepest shock: the hardest corner
    {"nu": 0.01, "amplitude": 0.5, "shift": HALF_PI},
    {"nu": 0.1, "amplitude": 1.5, "shift": HALF_PI},
    {"nu": 0.1, "amplitude": 0.5, "shift": 0.0},
    {"nu": 0.0316, "amplitude": 1.0, "shift": 0.7},
])
def test_default_resolution_matches_cole_hopf(params: dict[str, float]) -> None:
    errors = errors_vs_exact(Burgers1D(), params)
    assert errors.shape == (51,)
    assert errors.max() <= 1e-4, f"max relative L2 error {errors.max():.2e} at time index {errors.argmax()}"


def test_ifrk4_default_resolution_matches_cole_hopf() -> None:
    errors = errors_vs_exact(Burgers1D(scheme="ifrk4"), {"nu": 0.01, "amplitude": 1.5, "shift": 1.0})
    assert errors.max() <= 1e-4


def test_too_coarse_grid_is_not_enough_at_small_viscosity() -> None:
    # why the solver grid defaults to >= 2048 points: 256 dealiased Fourier points miss 1e-4 by far
    errors = errors_vs_exact(Burgers1D(n_x=256, n_grid=256, n_time=3),
                             {"nu": 0.01, "amplitude": 1.5, "shift": 0.0})
    assert errors[-1] > 1e-2


# --------------------------------------------------------------------------- (b) temporal order
@pytest.mark.parametrize("scheme", ["etdrk4", "ifrk4"])
def test_observed_temporal_order_is_four(scheme: str) -> None:
    # nu = 0.1 on 256 points: spatial error < 1e-9, far below the time error at these steps
    nu, amplitude, shift = 0.1, 1.0, 0.5
    x = 2 * math.pi * np.arange(256) / 256
    exact = cole_hopf(x, 1.0, nu, amplitude, shift)
    steps = np.array([0.1, 0.05, 0.025])
    errors = np.array([rel_l2(solve_burgers(nu, amplitude, shift, 256, 1.0, 2, dt, scheme)[-1], exact)
                       for dt in steps])
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(order - 4.0) <= 0.5, f"observed order {order:.2f}, errors {errors}"


# --------------------------------------------------------------------------- (c) declarations
def test_declarations_match_output_shapes() -> None:
    sim = get_simulator("burgers", n_x=32, n_grid=64, n_time=5, t_end=0.1)
    assert isinstance(sim, Burgers1D) and sim.name == "burgers" and sim.time_dim == "time"
    params = {p.name: p for p in sim.parameters()}
    assert set(params) == {"nu", "amplitude", "shift"} == set(Burgers1D.defaults)
    assert params["nu"].log_scale and (params["nu"].low, params["nu"].high) == (0.01, 0.1)
    assert (params["amplitude"].low, params["amplitude"].high) == (0.5, 1.5)
    assert all(p.units and p.long_name for p in params.values())
    coords = sim.coordinates()
    x, t = coords["x"], coords["time"]
    assert (x.units, x.long_name, x.extra_attrs["periodic"]) == ("m", "position", 1)
    np.testing.assert_allclose(x.values, 2 * math.pi * np.arange(32) / 32)
    assert t.units == "s" and t.values[0] == 0.0 and t.values[-1] == pytest.approx(0.1)
    out = sim.run_sample({"nu": 0.05, "amplitude": 1.0, "shift": 0.2})
    (var,) = sim.outputs()
    assert (var.name, var.dims, var.units, var.long_name) == ("u", ("time", "x"), "m s-1", "velocity")
    assert set(out) == {"u"} and out["u"].shape == sim.output_shape(var) == (5, 32)
    np.testing.assert_allclose(out["u"][0], np.sin(x.values - 0.2))
    assert all(isinstance(v, (str, int, float)) for v in sim.attrs().values())


def test_undeclared_parameters_take_defaults_and_unknown_ones_fail() -> None:
    sim = Burgers1D(n_x=16, n_grid=32, n_time=2, t_end=0.05)
    u = sim.run_sample({"nu": 0.05})["u"]
    np.testing.assert_allclose(u[0], np.sin(sim.coordinates()["x"].values))  # amplitude 1, shift 0
    with pytest.raises(SurroflowError, match="phase"):
        sim.run_sample({"nu": 0.05, "phase": 1.0})


def test_run_batch_returns_failures_in_place() -> None:
    sim = Burgers1D(n_x=16, n_grid=64, n_time=2, t_end=1.0, dt=1.0)  # one huge step: unstable
    ok, bad = sim.run_batch([{"nu": 0.1, "amplitude": 0.01}, {"nu": 0.01, "amplitude": 1.5}])
    assert ok["u"].shape == (2, 16) and np.all(np.isfinite(ok["u"]))
    assert isinstance(bad, SampleFailure) and bad.status == "diverged"


# --------------------------------------------------------------------------- (d) bad settings
@pytest.mark.parametrize(("settings", "key"), [
    ({"nx": 64}, "nx"),
    ({"n_x": 0}, "n_x"),
    ({"n_x": 64.0}, "n_x"),
    ({"n_x": True}, "n_x"),
    ({"n_x": 64, "n_grid": 100}, "n_grid"),
    ({"n_x": 64, "n_grid": 32}, "n_grid"),
    ({"t_end": 0.0}, "t_end"),
    ({"t_end": "1"}, "t_end"),
    ({"n_time": 1}, "n_time"),
    ({"dt": -1e-3}, "dt"),
    ({"dt": float("nan")}, "dt"),
    ({"scheme": "euler"}, "scheme"),
])
def test_bad_settings_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(SurroflowError, match=rf"simulator\.settings\.{key}:.*(allowed|expected)"):
        get_simulator("burgers", **settings)


def test_flaky_settings_are_not_burgers_settings() -> None:
    with pytest.raises(SurroflowError, match="fail_above_amplitude"):
        Burgers1D(fail_above_amplitude=1.0)
    with pytest.raises(SurroflowError, match="nan_above_amplitude"):
        FlakyBurgers(nan_above_amplitude="high")
    with pytest.raises(SurroflowError, match="sleep_s"):
        FlakyBurgers(sleep_s=-1)


# --------------------------------------------------------------------------- (e) fault injection
SMALL = {"n_x": 16, "n_grid": 32, "n_time": 3, "t_end": 0.1}


def test_flaky_fails_above_threshold() -> None:
    sim = get_simulator("flaky_burgers", fail_above_amplitude=1.0, **SMALL)
    assert isinstance(sim, FlakyBurgers)
    assert np.all(np.isfinite(sim.run_sample({"nu": 0.05, "amplitude": 0.9})["u"]))
    with pytest.raises(SampleFailure, match="injected failure") as exc:
        sim.run_sample({"nu": 0.05, "amplitude": 1.1})
    assert exc.value.status == "failed"


def test_flaky_returns_nan_above_threshold() -> None:
    sim = FlakyBurgers(nan_above_amplitude=1.0, **SMALL)
    good = sim.run_sample({"nu": 0.05, "amplitude": 0.9})["u"]
    bad = sim.run_sample({"nu": 0.05, "amplitude": 1.1})["u"]
    assert np.all(np.isfinite(good))
    assert bad.shape == good.shape and np.isnan(bad).any() and np.isfinite(bad[0]).all()


def test_flaky_sleeps_above_threshold() -> None:
    sim = FlakyBurgers(sleep_above_amplitude=1.0, sleep_s=0.2, **SMALL)
    t0 = time.perf_counter()
    sim.run_sample({"nu": 0.05, "amplitude": 0.9})
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.run_sample({"nu": 0.05, "amplitude": 1.1})
    slow = time.perf_counter() - t0
    assert slow >= 0.2 and fast < 0.2

"""The advection-diffusion simulator: spectral solution against the closed-form image sum,
spectral convergence, conservation, settings validation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.simulators import get_simulator
from surroflow.simulators.advection import AdvectionDiffusion1D, exact_solution, solve_spectral

PARAMS = [{"velocity": 0.5, "nu": 1e-4, "amplitude": 1.0},
          {"velocity": 1.37, "nu": 1e-3, "amplitude": 0.6},
          {"velocity": 1.5, "nu": 2.5e-4, "amplitude": 1.5}]


@pytest.mark.parametrize("params", PARAMS)
def test_solver_matches_the_exact_solution(params):
    sim = get_simulator("advection_diffusion", n_x=128, n_grid=256, n_time=11)
    assert isinstance(sim, AdvectionDiffusion1D)
    u = sim.run_sample(params)["u"]
    assert u.shape == (11, 128)
    ref = sim.exact(params)
    assert np.max(np.abs(u - ref)) < 1e-13 * params["amplitude"]
    # the pulse has moved by velocity * t_end (mod 1) and spread
    peak = sim.coordinates()["x"].values[np.argmax(u[-1])]
    assert math.remainder(peak - (0.25 + params["velocity"]), 1.0) == pytest.approx(0.0, abs=1.0 / 128)


def test_spectral_convergence():
    t = np.array([0.0, 0.4, 1.0])
    errors = []
    grids = [24, 32, 48, 64, 96, 128]
    for n in grids:
        x = np.arange(n) / n
        u = solve_spectral(1.2, 2e-4, 1.0, t, n, width=0.02)
        ref = np.stack([exact_solution(x, ti, 1.2, 2e-4, 1.0, width=0.02) for ti in t])
        errors.append(np.max(np.abs(u - ref)))
    errors = np.array(errors)
    g = np.array(grids[:-1])
    orders = np.log(errors[:-2] / errors[1:-1]) / np.log(g[1:] / g[:-1])
    # faster than any fixed algebraic order: the observed order keeps growing
    assert np.all(np.diff(orders) > 0) and orders[-1] > 30, orders
    assert errors[-1] < 1e-14            # n = 128: machine precision


def test_mass_is_conserved_and_the_pulse_spreads():
    sim = get_simulator("advection_diffusion", n_x=256, n_time=21)
    u = sim.run_sample({"velocity": 1.0, "nu": 1e-3, "amplitude": 2.0})["u"]
    dx = 1.0 / 256
    mass = u.sum(axis=1) * dx
    np.testing.assert_allclose(mass, 2.0 * 0.02 * math.sqrt(2 * math.pi), rtol=1e-12)
    assert u[-1].max() == pytest.approx(2.0 * 0.02 / math.sqrt(0.02 ** 2 + 2e-3), rel=1e-3)


def test_settings_are_validated():
    with pytest.raises(SurroflowError, match="too coarse"):
        get_simulator("advection_diffusion", n_x=32, width=0.01)
    with pytest.raises(SurroflowError, match="unknown setting"):
        get_simulator("advection_diffusion", dx=0.1)
    with pytest.raises(SurroflowError, match="multiple of n_x"):
        get_simulator("advection_diffusion", n_x=128, n_grid=200)
    with pytest.raises(SurroflowError, match="no parameter"):
        get_simulator("advection_diffusion").run_sample({"speed": 1.0})
    failures = get_simulator("advection_diffusion").run_batch([{"nu": -1.0}, {"nu": 1e-4}])
    assert failures[0].status == "failed" and failures[1]["u"].shape == (51, 256)

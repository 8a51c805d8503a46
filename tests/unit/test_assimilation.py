"""Ensemble Kalman filters (surroflow.dynamics.assimilation): the Gaspari-Cohn taper, exact
Kalman updates of one analysis, input checks, and the Lorenz-96 benchmarks of the literature.

Lorenz-96 references (N = 40, F = 8, RK4 with dt = 0.05, one analysis every 0.05 time units,
observation error std 1, time-mean analysis RMSE after a spin-up), all as tabulated in DAPPER's
reproduction of the papers (``dapper/mods/Lorenz96/sakov2008.py``, "Suggested tuning"):

* Sakov & Oke (2008, Tellus A 60, 361-371), Table 1, all 40 variables observed:
  perturbed-observations EnKF, 40 members, inflation 1.06: **0.22**;
  ensemble square-root filter (ETKF), 24 members, inflation 1.013: **0.18**.
* Bocquet (2011, Nonlin. Processes Geophys. 18, 735-750), Fig. 6, as reproduced by DAPPER:
  LETKF, 7 members, inflation 1.04, localisation radius 4: **0.22**.  DAPPER scales its radius
  so that the taper is exp(-1/2) at that distance; for Gaspari-Cohn that is a half-width
  c = 1.74 x 4 = 7 grid units, the ``localisation`` used here.

The issue's own setting, every other variable observed, has no published table we could find
for exactly this configuration (R = I, dt_obs = 0.05, 20 observations): its bound below is our
own measurement (0.30-0.32 for a 20-member LETKF over 1,200 cycles, seeds 0-7), a regression
guard and not a literature value.

Every run starts from 20-40 climatological states (the attractor, far from the truth), spins
up for 200 cycles at inflation 1.3 (from climatology a filter with the tuned inflation can
stay lost for a thousand cycles: its spread collapses before its error does), then runs the
tuned filter, and averages the last 1,200 cycles (the papers use 10^4-10^5 cycles: a sampling
error of a few percent here; seeds 0-7 stay within 10% of the published values).
"""
from __future__ import annotations

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.dynamics import assimilate, gaspari_cohn, periodic_distance, rmse
from surroflow.dynamics.assimilation import _transforms
from surroflow.simulators.chaos.lorenz96 import Lorenz96

#: cycles in all; spin-up cycles at inflation SPIN_UP_INFLATION; further cycles left out of the mean
N_CYCLES, SPIN_UP, SETTLE, SPIN_UP_INFLATION = 1500, 200, 100, 1.3


# -- the taper and the distances ---------------------------------------------------------------
def test_gaspari_cohn_values_support_and_continuity():
    c = 3.0
    assert gaspari_cohn(0.0, c) == pytest.approx(1.0)
    assert gaspari_cohn(c, c) == pytest.approx(5.0 / 24.0)          # both branches give 5/24 at z = 1
    d = np.array([2 * c, 2 * c + 1e-9, 7.0, 100.0])
    np.testing.assert_array_equal(gaspari_cohn(d, c), 0.0)
    eps = 1e-7
    for z in (c, 2 * c):                                             # continuous at both joins
        assert abs(gaspari_cohn(z - eps, c) - gaspari_cohn(z + eps, c)) < 1e-6
    x = np.linspace(0.0, 2 * c, 2001)
    w = gaspari_cohn(x, c)
    assert np.all(np.diff(w) <= 1e-15) and np.all(w >= 0)            # decreasing, non-negative
    np.testing.assert_array_equal(gaspari_cohn(-x, c), w)             # even
    assert gaspari_cohn(np.ones((2, 3)), c).shape == (2, 3)
    with pytest.raises(SurroflowError, match="radius must be a finite number > 0"):
        gaspari_cohn(1.0, 0.0)


def test_periodic_distance_is_the_ring_distance():
    d = periodic_distance(5)
    np.testing.assert_array_equal(d[0], [0, 1, 2, 2, 1])
    np.testing.assert_array_equal(d, d.T)
    with pytest.raises(SurroflowError, match="positive integer"):
        periodic_distance(0)


# -- one analysis against the Kalman formulas ----------------------------------------------------
def _one_analysis(method, localisation=None, obs_std=0.7, m=12, n=10, seed=0):
    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(m, n)) + np.linspace(0, 1, n)
    idx = np.array([0, 3, 4, 8])
    y = rng.normal(size=(1, idx.size))
    res = assimilate(lambda X: X, X0, y, idx, obs_std, method=method, localisation=localisation, rng=1)
    return X0, idx, y[0], res


@pytest.mark.parametrize("method", ["letkf", "stochastic"])
def test_global_analysis_mean_is_the_kalman_update(method):
    """Without localisation both analyses move the mean by P H^T (H P H^T + R)^-1 (y - H x):
    the LETKF exactly, the stochastic EnKF too because its observation perturbations are centred."""
    X0, idx, y, res = _one_analysis(method)
    xm = X0.mean(axis=0)
    A = X0 - xm
    P = A.T @ A / (len(X0) - 1)
    K = P[:, idx] @ np.linalg.inv(P[np.ix_(idx, idx)] + 0.49 * np.eye(idx.size))
    np.testing.assert_allclose(res.analysis_mean[0], xm + K @ (y - xm[idx]), atol=1e-12)
    np.testing.assert_allclose(res.forecast_mean[0], xm, atol=1e-14)
    if method == "letkf":   # and the square-root analysis has the Kalman covariance (I - KH) P
        Aa = res.ensemble - res.ensemble.mean(axis=0)
        Pa = Aa.T @ Aa / (len(X0) - 1)
        H = np.eye(X0.shape[1])[idx]
        np.testing.assert_allclose(Pa, (np.eye(X0.shape[1]) - K @ H) @ P, atol=1e-12)


def test_letkf_with_a_huge_radius_is_the_global_analysis():
    _, _, _, loc = _one_analysis("letkf", localisation=1e9)
    _, _, _, glob = _one_analysis("letkf")
    np.testing.assert_allclose(loc.ensemble, glob.ensemble, atol=1e-12)


def test_ensemble_and_observation_space_transforms_agree():
    """The (m, m) and (p, p) forms of the LETKF weights are one formula (Woodbury)."""
    rng = np.random.default_rng(4)
    for m, p in ((30, 12), (8, 20)):
        Yb = rng.normal(size=(m, p))
        Yb -= Yb.mean(axis=0)
        rinv = rng.uniform(0.0, 2.0, size=(6, p))
        rinv[:, :3] = 0.0                                        # observations outside the taper
        d = rng.normal(size=p)
        Yg, dg = np.broadcast_to(Yb, (6, m, p)), np.broadcast_to(d, (6, p))
        np.testing.assert_allclose(_transforms(Yg, rinv, dg, "obs"), _transforms(Yg, rinv, dg, "ens"), atol=1e-12)


@pytest.mark.parametrize("method", ["letkf", "stochastic"])
def test_uninformative_observations_leave_the_forecast(method):
    rng = np.random.default_rng(2)
    X0 = rng.normal(size=(10, 16))
    idx = np.arange(0, 16, 2)
    res = assimilate(lambda X: 0.9 * X + 0.1, X0, rng.normal(size=(3, 8)), idx, 1e8, steps_per_cycle=2,
                     method=method, localisation=3.0, rng=0)
    np.testing.assert_allclose(res.analysis_mean, res.forecast_mean, atol=1e-7)
    np.testing.assert_allclose(res.analysis_spread, res.forecast_spread, rtol=1e-6)
    X = X0
    for _ in range(6):
        X = 0.9 * X + 0.1
    np.testing.assert_allclose(res.ensemble, X, atol=1e-7)


def test_stochastic_filter_is_reproducible_by_seed():
    a = _one_analysis("stochastic", localisation=2.0)[3]
    b = _one_analysis("stochastic", localisation=2.0)[3]
    np.testing.assert_array_equal(a.ensemble, b.ensemble)


def test_bad_input_is_refused_in_one_sentence():
    X0 = np.zeros((5, 8))
    X0[:, 0] = np.arange(5)
    y = np.zeros((2, 3))
    idx = np.array([0, 2, 4])
    step = lambda X: X  # noqa: E731
    cases = [
        (dict(ensemble0=np.zeros(8)), "ensemble0 must be a 2-D array"),
        (dict(ensemble0=np.zeros((1, 8))), "n_members >= 2"),
        (dict(observations=np.zeros(3)), "observations must be a 2-D array"),
        (dict(obs_index=np.array([0, 2])), "one index per observed component"),
        (dict(obs_index=np.array([0, 2, 8])), r"distinct indices in \[0, 8\)"),
        (dict(obs_index=np.array([0, 2, 2])), "distinct indices"),
        (dict(obs_index=np.array([0.0, 2.0, 4.0])), "integer array"),
        (dict(obs_std=0.0), "obs_std must be a finite number > 0"),
        (dict(method="enkf"), r"method must be one of \['letkf', 'stochastic'\]"),
        (dict(inflation=0.9), "inflation must be >= 1"),
        (dict(localisation=-1.0), "localisation must be a finite number > 0"),
        (dict(steps_per_cycle=0), "steps_per_cycle must be an integer >= 1"),
        (dict(distances=np.zeros((8, 8))), "distances were given without localisation"),
        (dict(distances=np.zeros((3, 3)), localisation=2.0), r"distances must be a finite, non-negative \(n_state"),
        (dict(step=lambda X: X[:, :4]), r"step\(X\) must return the ensemble's shape"),
        (dict(step=lambda X: X * np.nan), "became non-finite in the forecast of cycle 0"),
    ]
    for change, message in cases:
        kw = dict(step=step, ensemble0=X0, observations=y, obs_index=idx, obs_std=1.0)
        kw.update(change)
        with pytest.raises(SurroflowError, match=message):
            assimilate(kw.pop("step"), kw.pop("ensemble0"), kw.pop("observations"), kw.pop("obs_index"),
                       kw.pop("obs_std"), **kw)


# -- Lorenz-96 benchmarks ------------------------------------------------------------------------
def _l96_twin(every: int, members: int, seed: int = 0):
    """Truth, observations and a climatological initial ensemble of the standard L96 twin."""
    sim = Lorenz96(N=40, F=8.0, dt=0.05, n_steps=2, transient=0.0)
    rng = np.random.default_rng(seed)
    x = sim.F + rng.normal(size=(1, 40))
    for _ in range(1000):                                       # 50 time units onto the attractor
        x = sim.step(x)
    pool = np.empty((1000, 40))
    for k in range(1000):                                       # climatological states
        x = sim.step(x)
        pool[k] = x[0]
    truth = np.empty((N_CYCLES, 40))
    for k in range(N_CYCLES):
        x = sim.step(x)
        truth[k] = x[0]
    idx = np.arange(0, 40, every)
    obs = truth[:, idx] + rng.normal(size=(N_CYCLES, idx.size))
    return sim, truth, obs, idx, pool[rng.choice(1000, members, replace=False)]


def _l96_rmse(every, members, seed=0, **kw):
    sim, truth, obs, idx, ens0 = _l96_twin(every, members, seed)
    spin = assimilate(sim.step, ens0, obs[:SPIN_UP], idx, 1.0, rng=seed,
                      **{**kw, "inflation": SPIN_UP_INFLATION})
    res = assimilate(sim.step, spin.ensemble, obs[SPIN_UP:], idx, 1.0, rng=seed + 1, **kw)
    return float(rmse(res.analysis_mean, truth[SPIN_UP:])[SETTLE:].mean())


@pytest.mark.parametrize("published, members, kw", [
    (0.22, 40, dict(method="stochastic", inflation=1.06)),              # Sakov & Oke 2008, Table 1
    (0.18, 24, dict(method="letkf", inflation=1.013)),                  # Sakov & Oke 2008, Table 1 (ETKF)
    (0.22, 7, dict(method="letkf", inflation=1.04, localisation=7.0)),  # Bocquet 2011, Fig. 6
], ids=["enkf-40", "etkf-24", "letkf-7"])
def test_lorenz96_fully_observed_matches_the_literature(published, members, kw):
    """All 40 variables observed: within 20% of the published analysis RMSE (module docstring).
    Measured here (seed 0): 0.208, 0.169 and 0.206; seeds 1-3 stay within 10%."""
    err = _l96_rmse(1, members, **kw)
    assert abs(err - published) <= 0.2 * published, err


def test_lorenz96_every_other_variable_observed():
    """The issue's setting (20 of 40 observed): a tuned 20-member LETKF reaches 0.30-0.31 here; no
    published value for exactly this configuration was found (module docstring), so the bound is a
    regression guard of our own measurement, and the filter must beat the fully observed
    optimal-interpolation baseline (0.95 in DAPPER's table) by far."""
    err = _l96_rmse(2, 20, method="letkf", inflation=1.02, localisation=7.0)
    assert 0.2 < err < 0.36, err


def test_localisation_is_needed_with_ten_members():
    """10 members are fewer than the ~13 unstable directions of L96 (N=40, F=8): the global ETKF
    loses the truth (RMSE near climatology, ~4), the localised LETKF tracks it."""
    glob = _l96_rmse(1, 10, method="letkf", inflation=1.04)
    loc = _l96_rmse(1, 10, method="letkf", inflation=1.04, localisation=5.0)
    assert loc < 0.3 and glob > 1.5, (loc, glob)
    stoch = _l96_rmse(1, 10, method="stochastic", inflation=1.04, localisation=5.0)
    assert stoch < 0.4, stoch

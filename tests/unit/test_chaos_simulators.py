"""Chaotic simulators: settings, batched generation, determinism, divergence flags, the KS
solver's temporal order, and the Lyapunov time in the generated data."""
from __future__ import annotations

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.dynamics import lyapunov_attrs, lyapunov_spectrum
from surroflow.simulators import SampleFailure, get_simulator
from surroflow.simulators.chaos import KuramotoSivashinsky, Lorenz63, Lorenz96, etdrk4_coefficients

SMALL = {
    "lorenz63": {"n_steps": 50, "transient": 5.0},
    "lorenz96": {"N": 10, "n_steps": 40, "transient": 2.0, "dt_sample": 0.05},
    "kuramoto_sivashinsky": {"n_steps": 30, "transient": 20.0, "n_x": 32},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_declarations_and_batch_shapes(name):
    sim = get_simulator(name, **SMALL[name])
    # a system that states its equations term by term can be the truth of a model-error study
    assert sim.tasks == (("forecast", "model_error") if name == "kuramoto_sivashinsky" else ("forecast",))
    assert sim.time_dim == "time"
    assert [p.name for p in sim.parameters()] == ["ic"]
    (var,) = sim.outputs()
    shape = sim.output_shape(var)
    res = sim.run_batch([{"ic": 0.1}, {"ic": 0.7}, {"ic": 0.1}])
    assert all(isinstance(r, dict) for r in res)
    a, b, c = (np.asarray(r[var.name]) for r in res)
    assert a.shape == shape and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, c)                 # same ic, same trajectory
    assert np.max(np.abs(a - b)) > 1e-3                 # different ic, different trajectory
    np.testing.assert_array_equal(sim.run_sample({"ic": 0.7})[var.name], b)
    t = sim.coordinates()["time"].values
    np.testing.assert_allclose(np.diff(t), sim.dt_sample)


def test_batch_equals_single_runs():
    sim = Lorenz96(N=8, n_steps=20, transient=1.0)
    batch = sim.run_batch([{"ic": x} for x in (0.2, 0.4, 0.6)])
    for x, r in zip((0.2, 0.4, 0.6), batch):
        np.testing.assert_allclose(sim.run_sample({"ic": x})["state"], r["state"], rtol=0, atol=1e-12)


def test_lorenz63_coordinates_and_attractor():
    sim = Lorenz63(n_steps=400, dt_sample=0.02)
    assert list(sim.coordinates()["component"].values) == ["x", "y", "z"]
    traj = sim.integrate(sim.initial_states([{"ic": 0.3}, {"ic": 0.9}]))
    assert traj.shape == (2, 400, 3)
    # on the attractor after the transient: z in (0, 50), |x| < 25
    assert np.all((traj[..., 2] > 0) & (traj[..., 2] < 50)) and np.all(np.abs(traj[..., 0]) < 25)


def test_settings_are_validated():
    with pytest.raises(SurroflowError, match="simulator.settings.sgima: unknown setting of simulator 'lorenz63'"):
        Lorenz63(sgima=10)
    with pytest.raises(SurroflowError, match="dt_sample"):
        Lorenz63(dt=0.01, dt_sample=0.015)
    with pytest.raises(SurroflowError, match="n_steps"):
        Lorenz96(n_steps=2.5)
    with pytest.raises(SurroflowError, match="n_x"):
        KuramotoSivashinsky(n_x=63)
    with pytest.raises(SurroflowError, match="rho"):
        Lorenz63(rho=-1)


def test_diverged_sample_is_flagged_not_hidden(monkeypatch):
    sim = Lorenz63(n_steps=20, transient=1.0)
    orig = sim.initial_states

    def states(params):
        x = orig(params)
        x[1] = [1e7, 1e7, 1e7]       # this sample blows up within the transient
        return x

    monkeypatch.setattr(sim, "initial_states", states)
    res = sim.run_batch([{"ic": 0.1}, {"ic": 0.2}, {"ic": 0.3}])
    assert isinstance(res[1], SampleFailure) and res[1].status == "diverged"
    assert isinstance(res[0], dict) and isinstance(res[2], dict)
    assert np.all(np.isfinite(res[0]["state"])) and np.all(np.isfinite(res[2]["state"]))
    with pytest.raises(SampleFailure):
        monkeypatch.setattr(sim, "initial_states", lambda p: np.full((1, 3), 1e9))
        sim.run_sample({"ic": 0.5})


#: averaging of the independent estimate: (t_total, n_traj, qr_every); ~2-4% standard error
AVERAGING = {Lorenz63: (60.0, 8, 1), Lorenz96: (50.0, 4, 1), KuramotoSivashinsky: (1000.0, 8, 4)}


@pytest.mark.parametrize("cls", [Lorenz63, Lorenz96, KuramotoSivashinsky], ids=lambda c: c.name)
def test_published_exponent_agrees_with_benettin_qr(cls):
    """The exponent each system publishes (and the data carry) is checked against an
    independent Benettin/QR estimate of this very solver, not against a copy of the table."""
    sim = cls()
    lam, source = sim.published_exponent()
    assert source.startswith("published")
    t_total, n_traj, qr_every = AVERAGING[cls]
    res = lyapunov_spectrum(sim, 1, t_total=t_total, n_traj=n_traj, qr_every=qr_every, seed=11)
    assert res.leading == pytest.approx(lam, rel=0.10), (res.leading, res.stderr)
    attrs = lyapunov_attrs(sim)
    assert attrs["lyapunov_exponent"] == lam and attrs["lyapunov_source"] == source
    assert attrs["lyapunov_time"] * res.leading == pytest.approx(1.0, rel=0.10)


def test_lyapunov_time_is_attached_outside_the_simulator():
    sim = Lorenz63(lyapunov_exponent=2.0)
    assert lyapunov_attrs(sim) == {"lyapunov_exponent": 2.0, "lyapunov_time": 0.5,
                                   "lyapunov_source": "setting lyapunov_exponent"}
    own = sim.attrs()
    assert not any(k.startswith("lyapunov") for k in own)        # the simulator knows no dynamics
    assert own["forecast_variable"] == "state" and own["dt_sample"] == sim.dt_sample
    assert Lorenz63(rho=35.0).published_exponent() is None         # not tabulated: computed by dynamics


def test_generated_data_carry_the_lyapunov_time():
    """The generate stage attaches 1/lambda_1 (forecast stages read ``lyapunov_time``)."""
    from surroflow.design import design_records, make_design
    from surroflow.stages.generate_batch import batch_dataset
    for sim in (Lorenz63(n_steps=20, transient=1.0), Lorenz96(N=40, n_steps=5, transient=0.5)):
        design = make_design(sim.parameters(), "sobol", 2, 0, "train")
        ds = batch_dataset(sim, design, [(r, 0.0) for r in sim.run_batch(design_records(design))])
        lam = sim.published_exponent()[0]
        assert ds.attrs["lyapunov_time"] == pytest.approx(1.0 / lam)
        assert ds.attrs["lyapunov_exponent"] == lam and ds.attrs["forecast_variable"] == "state"


def test_etdrk4_coefficients_match_closed_form():
    lin = np.array([-20.0, -5.0, -1.0, 2.0])     # dt*lin away from 0: the closed form is accurate
    h = 0.2
    c = etdrk4_coefficients(lin, h)
    z = h * lin
    ez = np.exp(z)
    f1 = h * (-4 - z + ez * (4 - 3 * z + z ** 2)) / z ** 3
    np.testing.assert_allclose(c["f1"], f1, rtol=1e-10)
    np.testing.assert_allclose(c["Q"], h * (np.exp(z / 2) - 1) / z, rtol=1e-12)
    # the zero mode (lin = 0) is finite thanks to the contour integral: f1 = h/6, Q = h/2
    c0 = etdrk4_coefficients(np.array([0.0]), h)
    np.testing.assert_allclose([c0["f1"][0], c0["Q"][0], c0["f2"][0], c0["f3"][0]], [h / 6, h / 2, h / 6, h / 6],
                               rtol=1e-12)


def test_ks_solver_is_fourth_order_in_time():
    """Step refinement from a state on the attractor.  ETDRK4 shows the known stiff order
    reduction at coarse steps (observed ~2.5 at dt=0.5 -> 0.25) and approaches order 4 as dt
    shrinks (Hochbruck & Ostermann 2005); the error at the production step dt=0.25 is small."""
    sim = KuramotoSivashinsky(L=22.0, n_x=64)
    x0 = sim.random_states(2, np.random.default_rng(3))
    x0 = sim.integrate(x0, n_steps=1, n_transient=200)[:, 0]   # a state on the attractor
    T = 1.0

    def solve(dt):
        v = np.fft.rfft(x0, axis=-1)
        for _ in range(int(round(T / dt))):
            v = sim.spectral_step(v, dt)
        return np.fft.irfft(v, n=64, axis=-1)

    ref = solve(1 / 1024)
    dts = [0.25, 0.125, 1 / 16, 1 / 32, 1 / 64]
    errs = np.array([np.sqrt(np.mean((solve(h) - ref) ** 2)) for h in dts])
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.diff(orders) > 0), orders          # the order rises towards 4 ...
    assert orders[-1] > 3.4 and orders[-2] > 3.2, orders
    assert np.all(orders < 4.3), orders                 # ... and does not exceed it
    assert errs[0] < 1e-4 * np.sqrt(np.mean(ref ** 2))  # dt = 0.25 is accurate


def test_ks_conserves_mean_and_stays_bounded():
    sim = KuramotoSivashinsky(n_steps=200, transient=50.0)
    traj = sim.integrate(sim.initial_states([{"ic": 0.25}, {"ic": 0.5}]))
    assert np.all(np.abs(traj.mean(axis=2)) < 1e-10)
    assert 0.5 < np.sqrt(np.mean(traj ** 2)) < 3.0      # turbulent, not decayed
    assert sim.coordinates()["x"].values[-1] == pytest.approx(22.0 * 63 / 64)


def test_lorenz63_drift_holds_rho_then_follows_the_ramp():
    """Before drift_start the drifting system is the undrifted one, state for state; after the
    ramp its trajectory solves the equations with rho_end (centred differences against the
    right-hand side: the difference's own O(h^2) error is 1%, the wrong rho's 10 times more)."""
    from surroflow.simulators import get_simulator
    kw = {"dt": 0.005, "dt_sample": 0.01, "n_steps": 3000, "transient": 5.0}
    drift = get_simulator("lorenz63", rho_end=35.0, drift_start=10.0, drift_duration=5.0, **kw)
    plain = get_simulator("lorenz63", **kw)
    x0 = plain.random_states(2, np.random.default_rng(3))
    a, b = drift.integrate(x0), plain.integrate(x0, compiled=False)
    np.testing.assert_array_equal(a[:, :1001], b[:, :1001])
    assert np.abs(a[:, 1100] - b[:, 1100]).max() > 1e-3
    np.testing.assert_allclose(drift.rho_at([0.0, 10.0, 12.5, 15.0, 29.0]), [28.0, 28.0, 31.5, 35.0, 35.0])
    end = get_simulator("lorenz63", rho=35.0, **kw)
    late = a[:, 2000:2999]
    deriv = (a[:, 2001:3000] - a[:, 1999:2998]) / 0.02
    err = np.abs(deriv - end.rhs(late)).max() / np.abs(deriv).max()
    old = np.abs(deriv - plain.rhs(late)).max() / np.abs(deriv).max()
    assert err < 0.02 and old > 10 * err
    assert drift.equation_terms() is None and drift.compiled_kernel() is None
    assert drift.attrs()["system_rho_end"] == 35.0

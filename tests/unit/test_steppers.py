"""Batched steppers: the compiled (numba) Lorenz integrators and the stacked Burgers solver give
the per-sample results, flag failures per sample, and are the paths actually taken."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from surroflow.simulators import SampleFailure, Simulator, get_simulator
from surroflow.simulators.burgers import Burgers1D, solve_burgers
from surroflow.simulators.chaos import KuramotoSivashinsky, Lorenz63, Lorenz96, base, compiled
from surroflow.simulators.spectral import etdrk4_coefficients
from surroflow.simulators.testing import FlakyBurgers

LORENZ = [Lorenz63(n_steps=60, transient=2.0, dt_sample=0.02),
          Lorenz96(N=12, n_steps=40, transient=1.0, dt_sample=0.05)]
IC = [{"ic": v} for v in (0.11, 0.42, 0.73, 0.99)]


def test_the_compiled_backend_is_numba_or_the_fallback_is_named():
    if compiled.kernel("lorenz63") is None:
        assert compiled.BACKEND.startswith("numpy (numba not importable")
    else:
        assert compiled.BACKEND.startswith("numba (")
        assert compiled.kernel("lorenz96") is not None


@pytest.mark.parametrize("sim", LORENZ, ids=lambda s: s.name)
def test_compiled_integration_equals_the_numpy_steps(sim):
    x0 = sim.initial_states(IC)
    fast, slow = sim.integrate(x0, compiled=True), sim.integrate(x0, compiled=False)
    assert fast.shape == (4, sim.n_steps, sim.dim) and np.all(np.isfinite(fast))
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sim", LORENZ, ids=lambda s: s.name)
def test_compiled_path_is_taken_and_flags_per_row(sim, monkeypatch):
    if compiled.kernel(sim.name) is None:
        pytest.skip(f"compiled backend unavailable: {compiled.BACKEND}")
    calls = []
    orig = type(sim).compiled_kernel
    monkeypatch.setattr(type(sim), "compiled_kernel", lambda self: calls.append(1) or orig(self))
    monkeypatch.setattr(base, "COMPILED_MIN_WORK", 0)
    x0 = sim.initial_states(IC)
    x0[2, 0] = np.inf                            # this row turns non-finite in the transient
    traj = sim.integrate(x0)
    assert calls, "the compiled kernel was not used"
    assert np.all(np.isnan(traj[2])) and np.all(np.isfinite(traj[[0, 1, 3]]))
    np.testing.assert_array_equal(traj, sim.integrate(x0, compiled=False))


def test_run_batch_flags_a_diverged_sample_on_the_compiled_path(monkeypatch):
    monkeypatch.setattr(base, "COMPILED_MIN_WORK", 0)
    sim = Lorenz63(n_steps=20, transient=1.0)
    orig = sim.initial_states

    def states(params):
        x = orig(params)
        x[1] = 1e7
        return x

    monkeypatch.setattr(sim, "initial_states", states)
    used = []
    orig_kernel = Lorenz63.compiled_kernel
    monkeypatch.setattr(Lorenz63, "compiled_kernel", lambda self: used.append(1) or orig_kernel(self))
    ok0, bad, ok2 = sim.run_batch(IC[:3])
    assert used
    assert isinstance(bad, SampleFailure) and bad.status == "diverged"
    assert np.all(np.isfinite(ok0["state"])) and np.all(np.isfinite(ok2["state"]))


def test_auto_skips_numba_for_small_jobs_in_a_fresh_process(monkeypatch):
    sim = LORENZ[0]
    calls = []
    monkeypatch.setattr(Lorenz63, "compiled_kernel", lambda self: calls.append(1) or None)
    monkeypatch.delitem(sys.modules, "surroflow.simulators.chaos.compiled", raising=False)
    sim.integrate(sim.initial_states(IC))        # 4 x 3 x ~260 steps: far below the threshold
    assert calls == []
    monkeypatch.setattr(base, "COMPILED_MIN_WORK", 1)
    sim.integrate(sim.initial_states(IC))
    assert calls == [1]


def test_unwritable_cache_falls_back_to_uncached_compilation(monkeypatch):
    if compiled.kernel("lorenz63") is None:
        pytest.skip(f"compiled backend unavailable: {compiled.BACKEND}")
    real = compiled._numba.njit

    def njit(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(*args, **kw)

    monkeypatch.setattr(compiled._numba, "njit", njit)
    monkeypatch.setattr(compiled, "BACKEND", None)

    def twice(a):
        return 2.0 * a

    f = compiled._jit(twice)
    assert f(1.5) == 3.0 and compiled.BACKEND.startswith("numba (no cache: cannot cache")


def test_ks_batch_equals_single_runs():
    sim = KuramotoSivashinsky(n_x=32, n_steps=20, transient=10.0)
    batch = sim.run_batch(IC[:3])
    for p, r in zip(IC[:3], batch):
        np.testing.assert_allclose(sim.run_sample(p)["u"], r["u"], rtol=1e-12, atol=1e-12)


def test_etdrk4_coefficients_per_sample_rows_equal_one_dimensional_calls():
    k = np.arange(65, dtype=float)
    nus, hs = np.array([0.01, 0.05, 0.1]), np.array([1e-3, 2e-3, 5e-4])
    rows = etdrk4_coefficients(-nus[:, None] * k ** 2, hs)
    for i in range(3):
        one = etdrk4_coefficients(-nus[i] * k ** 2, hs[i])
        for key in one:
            np.testing.assert_allclose(rows[key][i], one[key], rtol=1e-14, atol=1e-300)


PARAMS = [{"nu": 0.02, "amplitude": 1.4, "shift": 0.3}, {"nu": 0.08, "amplitude": 0.6, "shift": 1.0},
          {"nu": 0.05, "amplitude": 1.0, "shift": 0.0}]


@pytest.mark.parametrize("scheme", ["etdrk4", "ifrk4"])
def test_burgers_batch_equals_per_sample_runs(scheme):
    sim = Burgers1D(n_x=32, n_grid=256, n_time=6, t_end=0.5, scheme=scheme)
    assert sim.vectorised
    batch = sim.run_batch(PARAMS)
    loop = Simulator.run_batch(sim, PARAMS)      # one solve per sample
    for a, b, p in zip(batch, loop, PARAMS):
        np.testing.assert_allclose(a["u"], b["u"], rtol=1e-12, atol=1e-12 * np.max(np.abs(b["u"])))
        step = sim.step_size(p["amplitude"])
        full = solve_burgers(p["nu"], p["amplitude"], p["shift"], 256, 0.5, 6, step, scheme)
        np.testing.assert_array_equal(a["u"], full[:, ::8])


def test_burgers_batch_flags_failures_per_sample():
    sim = Burgers1D(n_x=16, n_grid=64, n_time=2, t_end=1.0, dt=1.0)   # one huge step: unstable at small nu
    params = [{"nu": 0.1, "amplitude": 0.01}, {"nu": 0.01, "amplitude": 1.5}, {"nu": -1.0},
              {"nu": 0.1, "amplitude": 0.02}]
    ok0, bad, neg, ok3 = sim.run_batch(params)
    assert isinstance(bad, SampleFailure) and bad.status == "diverged"
    assert isinstance(neg, SampleFailure) and neg.status == "failed" and "nu must be > 0" in neg.reason
    for got, p in ((ok0, params[0]), (ok3, params[3])):
        np.testing.assert_allclose(got["u"], sim.run_sample(p)["u"], rtol=1e-12, atol=1e-15)
    with pytest.raises(SampleFailure, match="diverged|exceeds|non-finite"):
        sim.run_sample(params[1])


def test_generate_stage_hands_burgers_one_batch(monkeypatch):
    from surroflow.stages.generate_batch import run_samples
    calls = []
    orig = Burgers1D.run_batch
    monkeypatch.setattr(Burgers1D, "run_batch", lambda self, ps: calls.append(len(ps)) or orig(self, ps))
    out = run_samples("burgers", {"n_x": 16, "n_grid": 64, "n_time": 3, "t_end": 0.1}, PARAMS, None)
    assert calls == [3] and all(isinstance(r, dict) for r, _ in out)


def test_flaky_burgers_keeps_its_per_sample_faults():
    sim = get_simulator("flaky_burgers", n_x=16, n_grid=64, n_time=2, t_end=0.1, fail_above_amplitude=1.0)
    assert isinstance(sim, FlakyBurgers) and not sim.vectorised
    ok, bad = sim.run_batch([{"amplitude": 0.5}, {"amplitude": 1.2}])
    assert isinstance(ok, dict) and isinstance(bad, SampleFailure) and "injected failure" in bad.reason

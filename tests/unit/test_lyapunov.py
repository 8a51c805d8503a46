"""Lyapunov exponents (Benettin/QR on the tangent dynamics) against published values.

Published leading exponents: Lorenz-63 (10, 28, 8/3) 0.9056 (Sprott 2003); Lorenz-96 (N=40,
F=8) 1.68 (Karimi & Paul 2010); Kuramoto-Sivashinsky L=22, 0.043 (Vlachas et al. 2020) to
0.048 (Cvitanovic et al. 2010).  Each estimate must lie within 10%.
"""
from __future__ import annotations

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.dynamics import kaplan_yorke_dimension, lyapunov_attrs, lyapunov_spectrum
from surroflow.simulators.chaos import KuramotoSivashinsky, Lorenz63, Lorenz96


def _fd_jacobian(sim, x, h=1e-6):
    d = x.shape[1]
    J = np.empty((d, d))
    for j in range(d):
        e = np.zeros_like(x)
        e[0, j] = h
        J[:, j] = (sim.step(x + e)[0] - sim.step(x - e)[0]) / (2 * h)
    return J


@pytest.mark.parametrize("sim", [Lorenz63(), Lorenz96(N=12), KuramotoSivashinsky(n_x=32)],
                         ids=["lorenz63", "lorenz96", "ks"])
def test_tangent_step_is_the_jacobian_of_the_step(sim):
    rng = np.random.default_rng(0)
    x = sim.integrate(sim.random_states(1, rng), n_steps=1, n_transient=200)[:, 0]
    V = rng.normal(size=(1, sim.dim, 3))
    x1, V1 = sim.tangent_step(x, V)
    np.testing.assert_allclose(x1, sim.step(x), rtol=1e-12, atol=1e-12)
    J = _fd_jacobian(sim, x)
    np.testing.assert_allclose(V1[0], J @ V[0], rtol=1e-5, atol=1e-6 * np.abs(J @ V[0]).max())


def test_lorenz63_spectrum():
    res = lyapunov_spectrum(Lorenz63(), n_exponents=3, t_total=60.0, n_traj=8, seed=1)
    l1, l2, l3 = res.exponents
    assert l1 == pytest.approx(0.9056, rel=0.10)
    assert abs(l2) < 0.05                                      # the neutral (flow) direction
    # sum of the spectrum = trace of the Jacobian = -(sigma + 1 + beta)
    assert res.exponents.sum() == pytest.approx(-(10 + 1 + 8 / 3), rel=0.01)
    assert 2.0 < res.kaplan_yorke_dimension() < 2.1            # ~2.06
    assert res.running.shape == (res.times.size, 3) and res.stderr[0] < 0.05


def test_lorenz96_leading_exponent():
    res = lyapunov_spectrum(Lorenz96(N=40, F=8.0), n_exponents=1, t_total=50.0, n_traj=4, seed=2)
    assert res.leading == pytest.approx(1.68, rel=0.10)


def test_kuramoto_sivashinsky_leading_exponent():
    res = lyapunov_spectrum(KuramotoSivashinsky(L=22.0, n_x=64), n_exponents=1, t_total=1000.0,
                            n_traj=8, qr_every=4, seed=3)
    assert 0.043 * 0.9 <= res.leading <= 0.048 * 1.1
    assert res.lyapunov_time == pytest.approx(1 / res.leading)


def test_errors():
    with pytest.raises(SurroflowError, match="TangentSystem"):
        lyapunov_spectrum("lorenz63")                  # dynamics resolves no simulator names
    with pytest.raises(SurroflowError, match="n_exponents"):
        lyapunov_spectrum(Lorenz63(), n_exponents=4)
    with pytest.raises(SurroflowError, match="TangentSystem"):
        lyapunov_spectrum(object())


def test_kaplan_yorke():
    assert kaplan_yorke_dimension([0.9, 0.0, -14.6]) == pytest.approx(2 + 0.9 / 14.6)
    assert kaplan_yorke_dimension([-1.0, -2.0]) == 0.0
    assert kaplan_yorke_dimension([1.0, 0.5]) == 2.0


def test_computed_exponent_for_untabulated_settings():
    sim = Lorenz96(N=10, F=8.0)          # not tabulated: computed once by Benettin/QR, then cached
    assert sim.published_exponent() is None
    attrs = lyapunov_attrs(sim)
    lam = attrs["lyapunov_exponent"]
    assert "computed" in attrs["lyapunov_source"] and attrs["lyapunov_time"] == pytest.approx(1 / lam)
    independent = lyapunov_spectrum(Lorenz96(N=10, F=8.0), 1, t_total=50.0, n_traj=8, seed=99).leading
    assert lam == pytest.approx(independent, rel=0.10)
    assert lyapunov_attrs(Lorenz96(N=10, F=8.0)) == attrs          # cached per class and settings


def test_lyapunov_attrs_of_a_non_chaotic_simulator_are_empty():
    from surroflow.simulators.burgers import Burgers1D
    assert lyapunov_attrs(Burgers1D()) == {}
    assert lyapunov_attrs(object()) == {}


def test_a_non_chaotic_tangent_system_is_refused():
    class Decay:                         # x' = -x: exponent -1 < 0, no Lyapunov time
        name, dim, dt, settings = "decay", 1, 0.01, {}

        def random_states(self, n, rng):
            return rng.normal(size=(n, 1))

        def step(self, x, dt=None):
            return x * (1 - (dt or self.dt))

        def tangent_step(self, x, V, dt=None):
            return self.step(x, dt), V * (1 - (dt or self.dt))

        def published_exponent(self):
            return None

    with pytest.raises(SurroflowError, match="not positive"):
        lyapunov_attrs(Decay())

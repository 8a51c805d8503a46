"""Forecast surrogates: one API, exact recovery where the model class contains the truth,
storage round trips without pickles, honest blow-ups."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.forecast import BLOWUP, Climatology, Persistence, kinds, make_forecaster, polynomial_features
from surroflow.surrogates.state import from_dataset, to_dataset
from surroflow.io import open_dataset, write_dataset
from surroflow.simulators.chaos import Lorenz63

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

FAST = {
    "persistence": {}, "climatology": {}, "dmd": {}, "opinf": {}, "ngrc": {},
    "rff": {"n_features": 50}, "sindy": {},
    "mlp_stepper": {"hidden": [16], "n_iterations": 15, "rollout_steps": 3, "batch_size": 16},
    "node": {"hidden": [16], "n_iterations": 10, "rollout_steps": 2, "batch_size": 16},
    "reduced": {"inner_kind": "ngrc", "rank": 2},
}


@pytest.fixture(scope="module")
def l63():
    sim = Lorenz63(dt=0.01, dt_sample=0.02, n_steps=300, transient=10.0)
    return sim.integrate(sim.initial_states([{"ic": x} for x in (0.11, 0.37, 0.52, 0.83)]))


def test_registry_and_hyperparameter_errors():
    assert set(FAST) == set(kinds())
    with pytest.raises(SurroflowError, match="unknown forecaster kind 'lstm'"):
        make_forecaster("lstm")
    with pytest.raises(SurroflowError, match=r"unknown hyperparameter\(s\) \['n_delay'\].*n_delays"):
        make_forecaster("ngrc", n_delay=2)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_common_api_and_netcdf_round_trip(kind, l63, tmp_path):
    model = make_forecaster(kind, **FAST[kind])
    assert model.fit(l63[:3], dt=0.02) is model
    assert all(k.endswith("_") for k in model.get_state())
    hist = l63[3:, 50:50 + max(3, model.n_history_)]
    hist = np.concatenate([hist, l63[2:3, 60:60 + hist.shape[1]]])       # 2 initial conditions
    roll = model.rollout(hist, 25)
    assert roll.shape == (2, 25, 3) and np.all(np.isfinite(roll))
    np.testing.assert_allclose(model.predict_step(hist), roll[:, 0], rtol=1e-5, atol=1e-6)
    path = write_dataset(to_dataset(model, {"stage": "train_forecaster"}), tmp_path / "m.nc")
    back = from_dataset(open_dataset(path))
    assert type(back) is type(model) and back.get_params() == model.get_params()
    np.testing.assert_allclose(back.rollout(hist, 25), roll, rtol=1e-6, atol=1e-6)


def test_baselines(l63):
    p = Persistence().fit(l63, dt=0.02)
    np.testing.assert_array_equal(p.rollout(l63[:, :5], 4), np.repeat(l63[:, 4:5], 4, axis=1))
    c = Climatology().fit(l63, dt=0.02)
    np.testing.assert_allclose(c.rollout(l63[:, :1], 3), np.broadcast_to(l63.reshape(-1, 3).mean(0), (4, 3, 3)))


def test_opinf_recovers_the_lorenz63_equations(l63):
    model = make_forecaster("opinf", time="continuous", reg_linear=1e-12, reg_quadratic=1e-12).fit(l63, dt=0.02)
    sim = Lorenz63()
    x = l63[:, ::17].reshape(-1, 3)
    z = model._z(x)
    f = model._f(z) * model.scale_                     # learned dx/dt in physical units
    true = sim.rhs(x)
    assert np.max(np.abs(f - true)) < 2e-3 * np.max(np.abs(true))


def test_dmd_and_ngrc_recover_a_linear_map():
    th = 0.3
    A = 0.98 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    rng = np.random.default_rng(0)
    X = np.empty((5, 60, 2))
    X[:, 0] = rng.normal(size=(5, 2))
    for k in range(59):
        X[:, k + 1] = X[:, k] @ A.T + np.array([0.5, -0.2]) * (1 - 0.98)
    for kind, params in (("dmd", {"alpha": 1e-14}), ("ngrc", {"n_delays": 1, "alpha": 1e-14})):
        m = make_forecaster(kind, **params).fit(X[:4], dt=1.0)
        np.testing.assert_allclose(m.rollout(X[4:, :1], 59), X[4:, 1:], atol=1e-6)
    ev = make_forecaster("dmd", alpha=1e-14).fit(X, dt=1.0)
    mod = np.hypot(ev.eigenvalues_real_, ev.eigenvalues_imag_)
    np.testing.assert_allclose(np.sort(mod), [0.98, 0.98], atol=1e-6)


def test_blow_up_is_nan_from_then_on_and_silent():
    X = np.cumprod(np.full((2, 30, 2), 1.5), axis=1) * np.array([[[1.0, -1.0]], [[2.0, 0.5]]])  # x_{k+1} = 1.5 x_k
    m = make_forecaster("dmd", alpha=1e-14, affine=False).fit(X, dt=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roll = m.rollout(X[:, :1], 120)
    bad = ~np.isfinite(roll).all(axis=2)
    first = np.argmax(bad, axis=1)
    assert bad.any(axis=1).all()
    for i, k in enumerate(first):
        assert k > 10 and bad[i, k:].all() and np.all(np.isfinite(roll[i, :k]))
        assert np.all(np.abs(m._z(roll[i, :k])) < BLOWUP)    # stopped at BLOWUP standard deviations


def test_history_and_input_validation(l63):
    m = make_forecaster("ngrc", n_delays=3, delay_stride=2).fit(l63, dt=0.02)
    assert m.n_history_ == 5
    with pytest.raises(SurroflowError, match="needs 5 history states"):
        m.rollout(l63[:, :3], 2)
    bad = l63.copy()
    bad[0, 5, 1] = np.nan
    with pytest.raises(SurroflowError, match="NaN"):
        make_forecaster("dmd").fit(bad)
    with pytest.raises(SurroflowError, match="n_traj, n_time, n_state"):
        make_forecaster("dmd").fit(np.zeros(5))
    with pytest.raises(SurroflowError, match="not fitted"):
        make_forecaster("dmd").rollout(l63[:, :1], 2)
    with pytest.raises(SurroflowError, match="components"):
        m.rollout(np.zeros((1, 5, 4)), 2)


def test_reduced_forecasts_lie_in_the_pod_span(l63):
    m = make_forecaster("reduced", inner_kind="ngrc", inner_params={"n_delays": 2}, rank=2).fit(l63, dt=0.02)
    assert m.n_history_ == 2
    roll = m.rollout(l63[:, 10:12], 20)
    resid = (roll - m.pod_.mean_) - ((roll - m.pod_.mean_) @ m.pod_.modes_.T) @ m.pod_.modes_
    assert np.max(np.abs(resid)) < 1e-9
    full = make_forecaster("reduced", inner_kind="dmd", inner_params={"alpha": 1e-12}, rank=3).fit(l63, dt=0.02)
    plain = make_forecaster("dmd", alpha=1e-12).fit(l63, dt=0.02)
    np.testing.assert_allclose(full.rollout(l63[:, :1], 5), plain.rollout(l63[:, :1], 5), rtol=1e-6, atol=1e-6)


def test_torch_stepper_learns_and_is_seeded(l63):
    kw = dict(hidden=[32, 32], n_iterations=150, rollout_steps=4, batch_size=32, lr=3e-3)
    a = make_forecaster("mlp_stepper", random_state=1, **kw).fit(l63, dt=0.02)
    b = make_forecaster("mlp_stepper", random_state=1, **kw).fit(l63, dt=0.02)
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    assert a.loss_history_[-20:].mean() < 0.2 * a.loss_history_[:5].mean()
    conv = make_forecaster("mlp_stepper", architecture="conv", channels=4, n_layers=2, n_iterations=5,
                           rollout_steps=2, batch_size=8).fit(np.random.default_rng(0).normal(size=(2, 20, 16)))
    assert conv.rollout(np.zeros((3, 16)), 4).shape == (3, 4, 16)
    local = make_forecaster("mlp_stepper", architecture="local", kernel_size=5, hidden=[8], n_iterations=5,
                            rollout_steps=2, batch_size=8, augment="shift_reflect")
    field = np.random.default_rng(1).normal(size=(2, 20, 16))
    out = local.fit(field).rollout(field[:, :1], 3)
    assert out.shape == (2, 3, 16)
    # translation equivariance of the local model: shifting the input shifts the forecast
    np.testing.assert_allclose(local.rollout(np.roll(field[:, :1], 3, axis=2), 3), np.roll(out, 3, axis=2),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(SurroflowError, match="architecture"):
        make_forecaster("mlp_stepper", architecture="transformer", n_iterations=1).fit(l63)


def test_polynomial_features():
    z = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(polynomial_features(z, 2), [[1, 2, 3, 4, 6, 9]])
    assert polynomial_features(z, 3).shape == (1, 6 + 10)


@pytest.mark.parametrize("p,order", [(1, 3), (4, 2), (5, 3), (3, 4)])
def test_polynomial_features_are_the_monomials_in_combination_order(p, order):
    from itertools import combinations_with_replacement
    z = np.random.default_rng(p).standard_normal((7, p))
    expected = np.column_stack([np.prod(z[:, list(c)], axis=1) for d in range(2, order + 1)
                                for c in combinations_with_replacement(range(p), d)])
    np.testing.assert_allclose(polynomial_features(z, order), expected, rtol=1e-13)
    assert polynomial_features(z, 1).shape == (7, 0)


def test_torch_stepper_early_stopping_stops_and_restores_the_best_weights(l63, monkeypatch):
    from surroflow.forecast import neural
    seen = []

    class Recording(neural._Validation):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(self)

    monkeypatch.setattr(neural, "_Validation", Recording)
    # a learning rate far too large: the held-out loss stops improving, training must stop early
    kw = dict(hidden=[32, 32], n_iterations=2000, rollout_steps=3, batch_size=32, lr=0.05, random_state=0,
              val_fraction=0.25, patience=2, eval_every=10)
    m = make_forecaster("mlp_stepper", **kw).fit(l63, dt=0.02)
    val, = seen
    hist = m.val_loss_history_
    assert m.n_iterations_run_ < 2000 and m.loss_history_.size == m.n_iterations_run_
    assert hist.shape[1] == 2 and hist[-1, 0] == m.n_iterations_run_
    best = int(np.argmin(hist[:, 1]))
    assert m.best_iteration_ == hist[best, 0] and len(hist) - 1 - best == 2      # stopped after `patience`
    assert hist[-1, 1] > hist[best, 1]
    # the fitted network is the best one, not the last one
    assert val.net is m.net_
    assert val.loss() == pytest.approx(hist[best, 1], rel=1e-6)
    # the validation trajectories are held out of training, the option is stored and checked
    back = from_dataset(to_dataset(m, {"stage": "train_forecaster"}))
    assert back.best_iteration_ == m.best_iteration_ and back.get_params()["val_fraction"] == 0.25
    np.testing.assert_allclose(back.val_loss_history_, hist)
    with pytest.raises(SurroflowError, match="val_fraction"):
        make_forecaster("mlp_stepper", n_iterations=5, val_fraction=1.0).fit(l63)
    # off by default: every iteration runs
    plain = make_forecaster("mlp_stepper", hidden=[8], n_iterations=30, rollout_steps=2).fit(l63, dt=0.02)
    assert plain.n_iterations_run_ == 30 and not hasattr(plain, "best_iteration_")


# --------------------------------------------------------------------------- SINDy
def _coefficient_errors(found, true):
    """Largest relative error over the true terms, and the largest spurious coefficient."""
    rel = max(abs(found[v].get(t, 0.0) - c) / abs(c) for v in true for t, c in true[v].items())
    spurious = max([abs(c) for v in found for t, c in found[v].items() if t not in true[v]], default=0.0)
    return rel, spurious


@pytest.mark.parametrize("noise, tolerance", [(0.0, 0.01), (0.01, 0.05)])
def test_sindy_recovers_the_seven_lorenz63_coefficients(noise, tolerance):
    """Clean data: all seven non-zero coefficients within 1%; 1% observation noise (the
    simulator's own setting, relative to each component's std): within 5%; no spurious term
    survives STLSQ's threshold (0.1) in either case."""
    sim = Lorenz63(dt=0.01, dt_sample=0.01, n_steps=3000, transient=25.0, observation_noise=noise)
    data = sim.run_batch([{"ic": x} for x in np.linspace(0.05, 0.95, 16)])
    X = np.stack([d["state"] for d in data])
    model = make_forecaster("sindy", threshold=0.1).fit(X, dt=0.01)
    rel, spurious = _coefficient_errors(model.equation_terms(["x", "y", "z"]), sim.equation_terms())
    assert rel < tolerance and spurious == 0.0, (rel, spurious)
    assert model.n_active_terms_ == 7


def test_sindy_weak_form_and_fourier_library_and_bad_input(l63):
    sim = Lorenz63()
    weak = make_forecaster("sindy", differentiation="weak", weak_test_functions=100).fit(l63, dt=0.02)
    rel, spurious = _coefficient_errors(weak.equation_terms(["x", "y", "z"]), sim.equation_terms())
    assert rel < 0.01 and spurious == 0.0
    # the pendulum x0' = x1, x1' = -sin(x0): the Fourier library holds it exactly
    from surroflow.forecast.base import rk4_flow

    def pendulum(z):
        return np.column_stack([z[:, 1], -np.sin(z[:, 0])])
    z = np.array([[0.5, 0.0], [1.5, 0.0], [2.5, 0.0]])
    X = np.empty((3, 600, 2))
    for k in range(600):
        X[:, k] = z
        z = rk4_flow(pendulum, z, 0.01, 4)
    model = make_forecaster("sindy", library="polynomial+fourier", degree=1, threshold=0.05).fit(X, dt=0.01)
    eq = model.equation_terms(["q", "p"])
    assert set(eq["q"]) == {"p"} and set(eq["p"]) == {"sin(1 q)"}, eq
    assert abs(eq["q"]["p"] - 1.0) < 1e-4 and abs(eq["p"]["sin(1 q)"] + 1.0) < 1e-4
    np.testing.assert_allclose(model.rollout(X[:, 0], 50), X[:, 1:51], atol=1e-4)
    with pytest.raises(SurroflowError, match="differentiation: 'spline' is not allowed"):
        make_forecaster("sindy", differentiation="spline").fit(l63, dt=0.02)


# ----------------------------------------------------------------------------- online learning
def test_rff_partial_fit_in_chunks_equals_one_fit_and_round_trips(l63, tmp_path):
    """Without forgetting, learning a trajectory chunk by chunk gives the coefficients of one
    fit on all of it (the same standardisation: the first chunk's)."""
    params = {"n_features": 80, "alpha": 1e-8}
    once = make_forecaster("rff", **params)
    once._set_scaling(l63[:, :60], 0.02)
    once._draw_features(3)
    once._accumulate(l63)
    chunks = make_forecaster("rff", **params)
    for k in range(0, l63.shape[1] - 1, 59):
        chunks.partial_fit(l63[:, k:k + 60], dt=0.02)
    np.testing.assert_allclose(chunks.coef_, once.coef_, rtol=1e-6, atol=1e-7 * np.abs(once.coef_).max())
    # the normal equations are stored: a loaded model goes on learning where it stopped
    write_dataset(to_dataset(chunks), tmp_path / "m.nc")
    loaded = from_dataset(open_dataset(tmp_path / "m.nc"))
    more = l63[:, -40:] * 1.01
    np.testing.assert_allclose(loaded.partial_fit(more, dt=0.02).coef_, chunks.partial_fit(more, dt=0.02).coef_)
    with pytest.raises(SurroflowError, match="partial_fit got dt=0.01"):
        loaded.partial_fit(more, dt=0.01)
    with pytest.raises(SurroflowError, match="partial_fit got 2 state components"):
        loaded.partial_fit(more[:, :, :2], dt=0.02)


def test_rff_forgetting_is_exponentially_weighted_ridge(l63):
    """With forgetting g, each row weighs g^(its age in rows): the coefficients are those of
    scikit-learn's ridge with these sample weights on the same features."""
    from sklearn.linear_model import Ridge
    g, alpha = 0.97, 1e-6
    m = make_forecaster("rff", n_features=40, alpha=alpha, forgetting=g)
    x = l63[:1]
    m.partial_fit(x[:, :120], dt=0.02).partial_fit(x[:, 119:200], dt=0.02)
    lin, cur, nxt = m._delay_windows(m._z(x[:, :200]))
    phi = m._phi(lin)
    w = g ** np.arange(len(phi) - 1, -1, -1.0)
    ref = Ridge(alpha=alpha * w.sum(), fit_intercept=False, solver="cholesky").fit(phi, nxt - cur, sample_weight=w)
    np.testing.assert_allclose(m.coef_, ref.coef_.T, rtol=1e-5, atol=1e-8)
    with pytest.raises(SurroflowError, match=r"forgetting: 0.2 is not allowed .* in \[0.5, 1\]"):
        make_forecaster("rff", forgetting=0.2)

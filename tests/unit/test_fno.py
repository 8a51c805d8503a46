"""The compact Fourier neural operator (surroflow.surrogates.fno): its spectral layer against an
explicit discrete Fourier transform, shift equivariance, grid-size independence, and the FNO
stepper on a periodic field (a linear advection it must learn)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from surroflow import SurroflowError  # noqa: E402
from surroflow.surrogates.fno import FNO1d, SpectralConv1d  # noqa: E402


def test_spectral_layer_is_the_truncated_fourier_multiplier():
    torch.manual_seed(0)
    layer = SpectralConv1d(2, 3, 5).double()
    v = torch.randn(4, 2, 16, dtype=torch.float64)
    out = layer(v).detach().numpy()
    N, n, k = 16, np.arange(16), np.arange(5)
    fx = np.einsum("kn,bin->bik", np.exp(-2j * np.pi * np.outer(k, n) / N), v.numpy())
    g = np.einsum("bik,iok->bok", fx, (layer.weight_re + 1j * layer.weight_im).detach().numpy())
    # the real inverse transform of a spectrum with modes 0..4 (the imaginary part of mode 0 dropped)
    ref = (g[:, :, :1].real + 2 * np.real(np.einsum("bok,kn->bon", g[:, :, 1:],
                                                     np.exp(2j * np.pi * np.outer(k[1:], n) / N)))) / N
    np.testing.assert_allclose(out, ref, atol=1e-13)
    with pytest.raises(SurroflowError, match="a grid of 6 points has 4 Fourier modes, fewer than modes=5"):
        layer(torch.randn(1, 2, 6, dtype=torch.float64))


def test_fno_is_shift_equivariant_on_any_grid():
    torch.manual_seed(1)
    net = FNO1d(modes=8, width=12, n_layers=3).double()
    z = torch.randn(3, 64, dtype=torch.float64)
    np.testing.assert_allclose(net(torch.roll(z, 5, 1)).detach().numpy(), torch.roll(net(z), 5, 1).detach().numpy(),
                               atol=1e-12)
    assert net(torch.randn(2, 32, dtype=torch.float64)).shape == (2, 32)


def test_fno_stepper_learns_an_advection_step():
    """u(x, t + dt) = u(x - c dt, t) on a periodic grid, a Fourier multiplier: trained on four
    trajectories, the FNO stepper's one-step error on two others is a quarter of persistence's,
    and its 59-step rollout stays closer to the truth than persistence."""
    from surroflow.forecast import make_forecaster
    rng = np.random.default_rng(0)
    n, T, N = 6, 60, 32
    x = np.arange(N) / N
    k = np.arange(1, 5)
    amp = rng.normal(size=(n, k.size)) / k
    phase = rng.uniform(0, 2 * np.pi, (n, k.size))
    t = np.arange(T)[:, None, None] * 0.01
    X = np.einsum("nk,tnkx->ntx", amp, np.sin(2 * np.pi * k[None, None, :, None] * (x - 0.8 * t[..., None])
                                              + phase[None, :, :, None]))
    m = make_forecaster("mlp_stepper", architecture="fno", modes=6, channels=8, n_layers=2, n_iterations=400,
                        rollout_steps=2, batch_size=32, lr=3e-3, scaling="global")
    m.fit(X[:4], dt=0.01)
    test = X[4:]
    one = m.predict_step(test[:, :-1].reshape(-1, 1, N)).reshape(2, T - 1, N)
    assert np.sqrt(np.mean((one - test[:, 1:]) ** 2)) < 0.35 * np.sqrt(np.mean((test[:, :-1] - test[:, 1:]) ** 2))
    pred = m.rollout(test[:, :1], T - 1)
    assert np.sqrt(np.mean((pred - test[:, 1:]) ** 2)) < 0.8 * np.sqrt(np.mean((test[:, :1] - test[:, 1:]) ** 2))
    with pytest.raises(SurroflowError, match="a state of 32 points has 17 Fourier modes, fewer than modes=20"):
        make_forecaster("mlp_stepper", architecture="fno", modes=20, n_iterations=1).fit(X[:1, :5], dt=0.01)


def test_fno_stepper_state_round_trips_without_pickles(tmp_path):
    from surroflow.forecast import make_forecaster
    from surroflow.io import open_dataset, write_dataset
    from surroflow.surrogates.state import from_dataset, to_dataset
    X = np.sin(2 * np.pi * (np.arange(16)[None, None, :] / 16 - 0.1 * np.arange(8)[None, :, None])) \
        * np.arange(1, 4)[:, None, None]
    m = make_forecaster("mlp_stepper", architecture="fno", modes=4, channels=4, n_layers=2, n_iterations=5,
                        batch_size=8, rollout_steps=1).fit(X, dt=0.1)
    write_dataset(to_dataset(m), tmp_path / "fno.nc")
    back = from_dataset(open_dataset(tmp_path / "fno.nc"))
    assert back.architecture == "fno" and back.modes == 4
    np.testing.assert_allclose(back.rollout(X[:, :1], 5), m.rollout(X[:, :1], 5), rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- parametric full-field FNO
def _waves(n: int, N: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``u(x; a, c) = a sin(2 pi x - c) + 0.3 a^2 cos(4 pi x)`` on a periodic grid: parameters -> field."""
    rng = np.random.default_rng(seed)
    P = np.column_stack([rng.uniform(0.5, 1.5, n), rng.uniform(0, np.pi, n)])
    x = np.arange(N) / N
    U = P[:, :1] * np.sin(2 * np.pi * x - P[:, 1:]) + 0.3 * P[:, :1] ** 2 * np.cos(4 * np.pi * x)
    return P, U


def test_parametric_fno_learns_a_parameter_to_field_map_and_round_trips(tmp_path):
    """The MLP surrogate with architecture fno (inputs as constant channels over the grid) learns
    a smooth parameters -> field map to a tenth of the field's spread, and its state (grid buffer
    included) round-trips through NetCDF to the same predictions; a dense state does not load."""
    from surroflow.io import open_dataset, write_dataset
    from surroflow.surrogates import make_surrogate
    from surroflow.surrogates.state import from_dataset, to_dataset
    P, U = _waves(300)
    Pt, Ut = _waves(50, seed=1)
    m = make_surrogate("mlp", architecture="fno", modes=4, channels=8, n_layers=2, max_epochs=150,
                       activation="gelu", random_state=0).fit(P, U)
    err = np.sqrt(np.mean((m.predict(Pt) - Ut) ** 2)) / np.sqrt(np.mean((Ut - Ut.mean(axis=0)) ** 2))
    assert err < 0.1, err
    write_dataset(to_dataset(m), tmp_path / "fno.nc")
    back = from_dataset(open_dataset(tmp_path / "fno.nc"))
    assert back.architecture == "fno"
    np.testing.assert_allclose(back.predict(Pt), m.predict(Pt), rtol=1e-6, atol=1e-7)
    with pytest.raises(SurroflowError, match="does not match the hyperparameters architecture='dense'"):
        make_surrogate("mlp").set_state(m.get_state())
    with pytest.raises(SurroflowError, match="a field of 6 points has 4 Fourier modes, fewer than modes=5"):
        make_surrogate("mlp", architecture="fno", modes=5, max_epochs=1).fit(P[:4], U[:4, :6])


def test_full_field_basis_is_exact_and_leaves_all_error_to_the_regressor():
    """POD.identity: w-orthonormal modes, exact projection; a reduced model on it has zero
    projection error, so its regression error is its whole error."""
    from surroflow.reduction.pod import POD
    from surroflow.surrogates import make_surrogate
    from surroflow.surrogates.reduced import ReducedModel
    P, U = _waves(40)
    w = np.full(U.shape[1], 1.0 / U.shape[1])
    b = POD.identity(U, w)
    np.testing.assert_allclose(b.modes_ @ np.diag(w) @ b.modes_.T, np.eye(U.shape[1]), atol=1e-12)
    np.testing.assert_allclose(b.project(U[:5] + 1.0), U[:5] + 1.0, atol=1e-12)
    model = ReducedModel({"u": b}, make_surrogate("linear", degree=2)).fit(P, {"u": U})
    assert model.basis == "none" and model.n_online_modes == U.shape[1]
    split = model.error_split(*_waves(10, seed=2)[:1], {"u": _waves(10, seed=2)[1]})["u"]
    assert split["projection"] < 1e-12 and np.isclose(split["regression"], split["total"]) and split["total"] > 0
    back = ReducedModel.from_dataset(model.to_dataset())
    assert back.basis == "none"
    np.testing.assert_allclose(back.predict(P[:3])["u"], model.predict(P[:3])["u"], atol=1e-12)
    with pytest.raises(SurroflowError, match="positive and finite"):
        POD.identity(U, -w)

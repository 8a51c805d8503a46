"""POD backends (reduction.linalg, reduction.streaming): exact/TSQR agreement with numpy's
SVD, randomized accuracy and seeding, weighted inner products on non-uniform grids,
deterministic signs, streaming (out-of-core) POD equal to the in-memory one, and the
file-level entry point with its choice of in-memory or streaming fit."""
from __future__ import annotations

import tracemalloc

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.linalg import subspace_angles

from surroflow import SurroflowError, snapshots
from surroflow.io import open_dataset, write_dataset
from surroflow.reduction import linalg, streaming
from surroflow.reduction.files import choose_fit_mode, fit_pod_file
from surroflow.reduction.pod import POD
from surroflow.simulators.advection import solve_spectral
from tests.artifacts import context, stamp


def reference(X: np.ndarray, sw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd((X - mean) * sw, full_matrices=False)
    return mean, s, vt


def advection_snapshots(n_samples: int = 12, n_time: int = 21, n_x: int = 128, seed: int = 0) -> np.ndarray:
    """Simulation data: travelling, spreading pulses (slowly decaying spectrum)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_time)
    rows = [solve_spectral(c, nu, a, t, n_x, width=0.05)
            for c, nu, a in zip(rng.uniform(0.5, 1.5, n_samples), rng.uniform(1e-4, 1e-3, n_samples),
                                rng.uniform(0.5, 1.5, n_samples))]
    return np.concatenate(rows, axis=0)


def leading_k(s: np.ndarray, floor: float = 1e-4) -> int:
    """Modes well above the rounding floor and separated from the next one."""
    k = int(np.sum(s >= floor * s[0]))
    while k > 1 and s[k - 1] - s[k] < 1e-3 * s[k - 1]:
        k -= 1
    return k


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# ------------------------------------------------------------------ exact and TSQR
@pytest.mark.parametrize("shape", [(1500, 60), (60, 1500), (300, 300)])
@pytest.mark.parametrize("method", ["exact", "tsqr"])
def test_agrees_with_numpy_svd_on_random_data(rng, shape, method):
    X = rng.standard_normal(shape) + 3.0
    sw = np.sqrt(rng.uniform(0.5, 2.0, shape[1]))
    mean0, s0, vt0 = reference(X, sw)
    mean, s, vt = linalg.svd(X, sw, method=method, chunk_rows=128)
    np.testing.assert_allclose(mean, mean0, rtol=0, atol=1e-13)
    k = min(shape) - (shape[0] <= shape[1])   # a centred wide matrix has rank m - 1
    assert np.max(np.abs(s[:k] - s0[:k]) / s0[:k]) < 1e-10
    if k < min(shape):
        assert abs(s[k]) < 1e-10 * s0[0]
    assert np.max(subspace_angles(vt[:k].T, vt0[:k].T)) < 1e-10


@pytest.mark.parametrize("shape", [(1344, 128), (64, 2050), (300, 300), (3, 40), (40, 3)])
def test_exact_equals_scipy_svd_values_and_projector(rng, shape):
    """The exact backend (QR + small SVD, ``ormqr`` for wide matrices) gives the singular values
    and the projector onto the leading right singular vectors of ``scipy.linalg.svd``."""
    import scipy.linalg as sla
    X = rng.standard_normal(shape) @ np.diag(0.8 ** np.arange(shape[1])) + 2.0
    sw = np.sqrt(rng.uniform(0.1, 3.0, shape[1]))
    A = (X - X.mean(axis=0)) * sw
    _, s0, vt0 = sla.svd(A, full_matrices=False)
    X0 = X.copy()
    mean, s, vt = linalg.svd(X, sw, method="exact")
    np.testing.assert_array_equal(X, X0)                 # the input is left alone
    assert s.shape == s0.shape and vt.shape == vt0.shape
    np.testing.assert_allclose(s, s0, rtol=1e-10, atol=1e-12 * s0[0])
    k = int(np.sum(s0 > 1e-8 * s0[0]))                   # a centred wide matrix has rank m - 1
    np.testing.assert_allclose(vt[:k].T @ vt[:k], vt0[:k].T @ vt0[:k], atol=1e-10)
    np.testing.assert_allclose(vt @ vt.T, np.eye(vt.shape[0]), atol=1e-12)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("method", ["exact", "tsqr"])
def test_agrees_with_numpy_svd_on_simulation_data(method, transpose):
    X = advection_snapshots()
    X = X[:, ::1] if not transpose else X[:60].repeat(4, axis=1)   # tall 252x128 / wide 60x512
    sw = np.sqrt(np.full(X.shape[1], 1.0 / X.shape[1]))
    _, s0, vt0 = reference(X, sw)
    _, s, vt = linalg.svd(X, sw, method=method, chunk_rows=64)
    big = s0 >= 1e-5 * s0[0]
    assert np.max(np.abs(s[:s0.size][big] - s0[big]) / s0[big]) < 1e-10
    assert np.max(np.abs(s[:s0.size] - s0)) < 1e-10 * s0[0]
    k = leading_k(s0)
    assert k >= 5
    assert np.max(subspace_angles(vt[:k].T, vt0[:k].T)) < 1e-10


def test_tsqr_accepts_lazy_dask_arrays(rng):
    X = rng.standard_normal((800, 40))
    sw = np.ones(40)
    ref = linalg.svd(X, sw, method="tsqr", chunk_rows=100)
    lazy = linalg.svd(da.from_array(X, chunks=(100, 20)), sw, method="tsqr")
    for a, b in zip(ref[:2], lazy[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    wide = linalg.svd(da.from_array(X.T.copy(), chunks=(20, 100)), sw[:1].repeat(800), method="tsqr")
    np.testing.assert_allclose(wide[1][:39], reference(X.T, np.ones(800))[1][:39], rtol=1e-11)


def test_pod_class_uses_backends(rng):
    X = rng.standard_normal((400, 30)) @ np.diag(0.7 ** np.arange(30))
    w = rng.uniform(0.5, 2.0, 30)
    exact = POD(method="exact", energy=None).fit(X, w)
    tsqr = POD(method="tsqr", energy=None).fit(da.from_array(X, chunks=(64, 30)), w)
    np.testing.assert_allclose(tsqr.singular_values_, exact.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(tsqr.modes_, exact.modes_, atol=1e-9)


# ------------------------------------------------------------------ randomized
def low_rank(rng: np.random.Generator, m: int, n: int, r: int = 30, noise: float = 1e-8) -> np.ndarray:
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return (U * 2.0 ** -np.arange(r, dtype=float) * 1e3) @ V.T + noise * rng.standard_normal((m, n))


@pytest.mark.parametrize("shape", [(2000, 150), (150, 2000)])
def test_randomized_matches_exact_on_decaying_spectrum(rng, shape):
    X = low_rank(rng, *shape)
    sw = np.ones(shape[1])
    _, s0, vt0 = reference(X, sw)
    _, s, vt = linalg.svd(X, sw, method="randomized", rank=10, oversampling=10, power_iterations=2,
                            random_state=0)
    assert s.shape == (10,) and vt.shape == (10, shape[1])
    np.testing.assert_allclose(s, s0[:10], rtol=1e-9)
    assert np.max(subspace_angles(vt.T, vt0[:10].T)) < 1e-8


def test_randomized_captured_energy_matches_scikit_learn(rng):
    from sklearn.utils.extmath import randomized_svd
    X = low_rank(rng, 3000, 200, r=60, noise=1e-4)
    total = float(np.sum(X ** 2))
    _, s_sk, _ = randomized_svd(X, 20, n_oversamples=10, n_iter=4, random_state=0)
    _, s, _ = linalg.svd(X, np.ones(200), method="randomized", center=False, rank=20,
                           oversampling=10, power_iterations=4, random_state=0)
    assert abs(np.sum(s ** 2) / total - np.sum(s_sk ** 2) / total) < 1e-6


def test_randomized_is_seeded(rng):
    X = low_rank(rng, 500, 80, noise=1e-2)
    a = linalg.svd(X, np.ones(80), method="randomized", rank=8, random_state=7)
    b = linalg.svd(X, np.ones(80), method="randomized", rank=8, random_state=7)
    c = linalg.svd(X, np.ones(80), method="randomized", rank=8, random_state=8, power_iterations=0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])


def test_randomized_without_rank_reaches_energy_of_the_full_spectrum(rng):
    X = low_rank(rng, 600, 300, r=60, noise=1e-3)
    pod = POD(method="randomized", rank=None, energy=0.999, random_state=0).fit(X)
    exact = POD(method="exact", rank=None, energy=0.999).fit(X)
    assert pod.n_modes_ == exact.n_modes_
    # energy is relative to the whole ||A||_F^2, not to the computed part of the spectrum
    np.testing.assert_allclose(pod.energy_[pod.n_modes_ - 1], exact.energy_[exact.n_modes_ - 1], rtol=1e-8)


def test_randomized_dask_input(rng):
    X = low_rank(rng, 1200, 60)
    _, s0, _ = reference(X, np.ones(60))
    _, s, vt = linalg.svd(da.from_array(X, chunks=(300, 60)), np.ones(60), method="randomized",
                            rank=8, random_state=0)
    np.testing.assert_allclose(s, s0[:8], rtol=1e-8)


# ------------------------------------------------------------------ weights
def continuous_modes(x: np.ndarray, weights: np.ndarray, n_modes: int = 3) -> np.ndarray:
    """Leading POD modes of the family f(x; a, b) = exp(-(x - a)^2 / b) on the grid x."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.3, 0.7, 200), rng.uniform(0.02, 0.08, 200)
    X = np.exp(-(x[None, :] - a[:, None]) ** 2 / b[:, None])
    return POD(method="tsqr", rank=n_modes, energy=None).fit(X, weights).modes_


def test_quadrature_weights_on_a_nonuniform_grid_give_the_continuous_modes():
    xi = np.linspace(0.0, 1.0, 301)
    x_nu = 0.5 * (1.0 - np.cos(np.pi * xi))          # clustered at both ends
    x_fine = np.linspace(0.0, 1.0, 4001)
    w_nu = snapshots.grid_weights(x_nu)
    pod_nu = POD(method="tsqr", rank=3, energy=None).fit(
        np.exp(-(x_nu[None, :] - 0.5) ** 2 / 0.05) * np.ones((3, 1)) + np.arange(3)[:, None] * x_nu, w_nu)
    # orthonormal in the weighted inner product
    G = pod_nu.modes_ @ np.diag(w_nu) @ pod_nu.modes_.T
    np.testing.assert_allclose(G, np.eye(pod_nu.n_modes_), atol=1e-12)
    fine = continuous_modes(x_fine, snapshots.grid_weights(x_fine))
    weighted = continuous_modes(x_nu, w_nu)
    uniform = continuous_modes(x_nu, np.ones_like(x_nu))
    for k in range(3):
        ref = np.interp(x_nu, x_fine, fine[k])
        err_w = np.sqrt(np.sum((weighted[k] - ref) ** 2 * w_nu))
        # the unweighted POD's modes (rescaled to unit L2 norm) are not the continuous ones
        u = uniform[k] / np.sqrt(np.sum(uniform[k] ** 2 * w_nu))
        err_u = min(np.sqrt(np.sum((s * u - ref) ** 2 * w_nu)) for s in (1, -1))
        assert err_w < 2e-3, (k, err_w)
        assert err_u > 10 * err_w, (k, err_u, err_w)


def test_grid_weights_integrate_exactly():
    x = np.sort(np.random.default_rng(0).uniform(0, 2, 50))
    assert snapshots.grid_weights(x) @ (3 * x + 1) == pytest.approx(1.5 * (x[-1] ** 2 - x[0] ** 2) + x[-1] - x[0])
    xp = np.arange(16) / 16 * 2 * np.pi
    np.testing.assert_allclose(snapshots.grid_weights(xp, periodic=True), np.full(16, 2 * np.pi / 16))
    with pytest.raises(SurroflowError):
        snapshots.grid_weights(x[::-1])


# ------------------------------------------------------------------ signs
@pytest.mark.parametrize("method", ["exact", "tsqr", "randomized"])
def test_signs_are_deterministic(rng, method):
    X = low_rank(rng, 300, 40, r=10, noise=1e-3)
    perm = rng.permutation(300)
    a = POD(method=method, rank=5, energy=None).fit(X)
    b = POD(method=method, rank=5, energy=None).fit(X[perm])
    np.testing.assert_allclose(a.modes_, b.modes_, atol=1e-8)
    big = np.abs(a.modes_) >= 0.5 * np.abs(a.modes_).max(axis=1, keepdims=True)
    first = a.modes_[np.arange(5), np.argmax(big, axis=1)]
    assert np.all(first > 0)


def test_signs_survive_equal_and_opposite_peaks():
    x = np.arange(64) / 64
    mode = np.sin(2 * np.pi * x)                    # peaks +1 and -1 of equal magnitude
    for eps in (1e-13, -1e-13):
        m = mode.copy()
        m[48] -= eps                                # rounding decides which peak is larger
        np.testing.assert_allclose(linalg.sign_fix(m[None]), mode[None], atol=1e-12)
        np.testing.assert_allclose(linalg.sign_fix(-m[None]), mode[None], atol=1e-12)


def test_bad_inputs_are_reported(rng):
    X = rng.standard_normal((20, 5))
    X[3, 2] = np.nan
    for method in ("exact", "tsqr", "randomized"):
        with pytest.raises(SurroflowError, match="non-finite"):
            linalg.svd(X, np.ones(5), method=method, rank=2)
    with pytest.raises(SurroflowError, match="not allowed"):
        linalg.svd(X, np.ones(5), method="lanczos")
    with pytest.raises(SurroflowError, match="sqrt-weights"):
        linalg.svd(np.ones((4, 5)), -np.ones(5))


# ------------------------------------------------------------------ streaming
def snapshot_file(path, n_samples=30, n_time=20, n_x=150, flagged=(4,), seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 1.0, n_x))
    t = np.linspace(0.0, 1.0, n_time)
    c = rng.uniform(0.2, 0.6, n_samples)
    u = np.exp(-(x[None, None, :] - 0.2 - c[:, None, None] * t[None, :, None]) ** 2 / 0.01)
    u += 1e-3 * rng.standard_normal(u.shape) + 2.0
    status = np.zeros(n_samples, dtype="i1")
    status[list(flagged)] = 2
    u[list(flagged)] = np.nan                       # a failed sample must never be read as data
    ds = xr.Dataset({"u": (("sample", "time", "x"), u, {"units": "K"}), "status": ("sample", status),
                     "design": (("sample", "parameter"), c[:, None])},
                    coords={"x": x, "time": t, "parameter": ["c"]},
                    attrs=stamp({"time_dim": "time", "split": "train"}, "collect_batches", path, study="s"))
    write_dataset(ds, path)
    return ds


@pytest.mark.parametrize("mode,block", [("rows", 3), ("columns", 11)])
def test_streaming_equals_in_memory(tmp_path, mode, block):
    path = tmp_path / "snap.nc"
    ds = snapshot_file(path)
    X = snapshots.snapshot_matrix(ds, "u")
    assert X.shape == (29 * 20, 150)
    w = snapshots.space_weights(ds, "u", "quadrature")
    mean0, s0, vt0 = reference(X, np.sqrt(w))
    mean, s, vt, plan = streaming.streaming_pod(path, "u", "quadrature", rank=12, memory_budget_bytes=2 ** 31,
                                               mode=mode, block=block, return_plan=True)
    assert plan.mode == mode and plan.n_blocks > 3
    np.testing.assert_allclose(mean, mean0, atol=1e-12)
    np.testing.assert_allclose(s[:12], s0[:12], rtol=1e-10)
    assert np.max(subspace_angles(vt[:12].T, vt0[:12].T)) < 1e-9


def test_streaming_wide_data_and_memory(tmp_path):
    path = tmp_path / "wide.nc"
    snapshot_file(path, n_samples=12, n_time=10, n_x=20000, flagged=(), seed=1)   # 120 x 20000, 19 MB
    ds = open_dataset(path)
    X = snapshots.snapshot_matrix(ds, "u")
    mean0, s0, vt0 = reference(X, np.ones(20000))
    del ds
    tracemalloc.start()
    try:
        mean, s, vt = streaming.streaming_pod(path, "u", None, rank=5, memory_budget_bytes=2 ** 31, block=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.3 * X.nbytes, peak            # never the whole matrix (blocks of 1000 columns)
    np.testing.assert_allclose(s[:10], s0[:10], rtol=1e-10)
    assert vt.shape == (5, 20000)
    assert np.max(subspace_angles(vt.T, vt0[:5].T)) < 1e-9


def test_plan_respects_the_budget_and_refuses_impossible_ones():
    plan = streaming.plan_blocks(n_rows=200_000, n_space=2000, n_time=100, n_samples=2000, space_shape=(2000,),
                                budget_bytes=1.0e9, baseline_bytes=2.0e8)
    assert plan.mode == "rows" and plan.estimated_peak_bytes <= 1.0e9 and plan.n_blocks > 1
    wide = streaming.plan_blocks(n_rows=2000, n_space=200_000, n_time=100, n_samples=20, space_shape=(200_000,),
                                budget_bytes=1.0e9, baseline_bytes=2.0e8, rank=50)
    assert wide.mode == "columns" and wide.estimated_peak_bytes <= 1.0e9
    with pytest.raises(SurroflowError, match="too small"):
        streaming.plan_blocks(n_rows=200_000, n_space=20_000, n_time=100, n_samples=2000,
                             space_shape=(20_000,), budget_bytes=1.0e9, mode="rows")


def test_pod_file_in_memory_and_streaming_agree(tmp_path):
    path = tmp_path / "snap.nc"
    snapshot_file(path, n_samples=40, n_time=50, n_x=400)     # 6.2 MB: in memory needs ~3x that
    a = fit_pod_file(path, tmp_path / "a.nc", "u", POD(method="tsqr", rank=6))
    budget_mb = (streaming.rss_bytes() + 58 * 2 ** 20) / 2 ** 20           # forces streaming
    b = fit_pod_file(path, tmp_path / "b.nc", "u", POD(method="exact", rank=6), memory_budget_mb=budget_mb)
    da_, db = open_dataset(a), open_dataset(b)
    assert da_.attrs["fit_mode"] == "in_memory" and db.attrs["fit_mode"] == "streaming"
    assert da_.sizes["mode"] == 6 and da_["modes"].dims == ("mode", "x")
    xr.testing.assert_allclose(da_[["modes", "mean", "weights"]], db[["modes", "mean", "weights"]], atol=1e-8)
    np.testing.assert_allclose(da_["singular_values"].values, db["singular_values"].values, rtol=1e-10)
    np.testing.assert_allclose(da_["energy"].values, db["energy"].values, rtol=1e-12)
    assert float(da_["train_projection_error"]) == pytest.approx(float(db["train_projection_error"]), rel=1e-8)
    pod = POD.from_dataset(db)
    assert pod.fit_mode_ == "streaming"
    Y = pod.mean_ + np.array([[1.0, -2.0, 0.5, 0.0, 3.0, 1.0]]) @ pod.modes_
    np.testing.assert_allclose(pod.project(Y), Y, atol=1e-10)


def test_train_projection_error_matches_the_projection(tmp_path):
    path = tmp_path / "snap.nc"
    ds = snapshot_file(path, n_samples=10, n_time=8, n_x=60)
    out = open_dataset(fit_pod_file(path, tmp_path / "b.nc", "u", POD(rank=4, energy=None)))
    pod = POD.from_dataset(out)
    X = snapshots.snapshot_matrix(ds, "u")
    ref = np.sqrt(np.sum(pod.norm(X - pod.project(X)) ** 2) / np.sum(pod.norm(X) ** 2))
    assert float(out["train_projection_error"]) == pytest.approx(ref, rel=1e-8)


def test_fit_mode_follows_the_budget_and_the_job_memory():
    n_rows, n_space = 10_000, 1_000                       # 76 MiB
    assert choose_fit_mode(n_rows, n_space, "exact", None, None) == ("in_memory", None)
    assert choose_fit_mode(n_rows, n_space, "exact", 1000, None)[0] == "in_memory"
    # 3 x 76 MiB + 48 MiB margin > 250 MiB > 2 x 76 MiB + 48 MiB
    assert choose_fit_mode(n_rows, n_space, "exact", 250, None)[0] == "streaming"
    assert choose_fit_mode(n_rows, n_space, "tsqr", 250, None)[0] == "in_memory"
    assert choose_fit_mode(n_rows, n_space, "exact", None, 200) == ("streaming", 200 * 2 ** 20)   # the job's memory
    assert choose_fit_mode(n_rows, n_space, "exact", 1000, 200)[0] == "streaming"     # the smaller limit
    assert choose_fit_mode(10, 10, "streaming", 1000, None)[0] == "streaming"
    with pytest.raises(SurroflowError, match="memory_budget_mb"):
        choose_fit_mode(10, 10, "streaming", None, None)


def test_streaming_method_in_memory_is_tsqr(rng):
    X = rng.standard_normal((300, 40))
    a = POD(method="streaming", rank=5).fit(X)
    b = POD(method="tsqr", rank=5).fit(X)
    np.testing.assert_allclose(a.modes_, b.modes_, atol=1e-12)


@pytest.mark.parametrize("method", ["tsqr", "randomized"])
def test_lazy_dask_array_from_netcdf(tmp_path, method):
    path = tmp_path / "snap.nc"
    ds = snapshot_file(path)
    X = snapshots.snapshot_dask(path, "u", chunk_snapshots=100)
    assert isinstance(X, da.Array) and X.shape == (29 * 20, 150) and X.numblocks[0] > 4
    w = snapshots.space_weights(ds, "u", "quadrature")
    _, s0, vt0 = reference(snapshots.snapshot_matrix(ds, "u"), np.sqrt(w))
    _, s, vt = linalg.svd(X, np.sqrt(w), method=method, rank=8, power_iterations=4)
    np.testing.assert_allclose(s[:8], s0[:8], rtol=1e-9 if method == "tsqr" else 1e-3)
    pod = POD(method=method, rank=8, power_iterations=4).fit(X, w)
    np.testing.assert_allclose(pod.singular_values_[:8], s0[:8], rtol=1e-9 if method == "tsqr" else 1e-3)


def test_fit_pod_stage_streams_under_a_small_memory_budget(tmp_path):
    from surroflow.config import fill_defaults, load_schema
    from surroflow.stages import fit_pod

    path = tmp_path / "train.nc"
    ds = snapshot_file(path, n_samples=40, n_time=100, n_x=400)     # 12 MiB of snapshots
    schema = load_schema()

    def ctx(**reduction):
        red = fill_defaults({"rank": 6, **reduction}, schema["$defs"]["reduction"], schema)
        return context("fit_pod", "s", {"variable": "u"}, reduction=red)

    # in memory needs ~3 x 12 + 48 MiB on top of the process, streaming ~58 MiB
    budget_mb = (streaming.rss_bytes() + 72 * 2 ** 20) / 2 ** 20
    fit_pod.run({"train": str(path)}, {"basis": str(tmp_path / "stream.nc")}, ctx(memory_budget_mb=budget_mb))
    fit_pod.run({"train": str(path)}, {"basis": str(tmp_path / "memory.nc")}, ctx())
    s, m = open_dataset(tmp_path / "stream.nc", stage="fit_pod"), open_dataset(tmp_path / "memory.nc", stage="fit_pod")
    assert s.attrs["fit_mode"] == "streaming" and m.attrs["fit_mode"] == "in_memory"
    assert s.attrs["memory_budget_mb"] == pytest.approx(budget_mb) and s.attrs["study"] == "s"
    xr.testing.assert_allclose(s[["modes", "mean", "weights", "energy"]], m[["modes", "mean", "weights", "energy"]],
                               atol=1e-9)
    np.testing.assert_allclose(s["singular_values"].values, m["singular_values"].values, rtol=1e-10)
    # the weights are those of the snapshots module (quadrature of the x coordinate)
    np.testing.assert_allclose(s["weights"].values, snapshots.space_weights(ds, "u", "quadrature"))
    # the job's memory alone also sends the fit out of core
    auto = ctx()
    auto.mem_mb = int(budget_mb)
    fit_pod.run({"train": str(path)}, {"basis": str(tmp_path / "auto.nc")}, auto)
    assert open_dataset(tmp_path / "auto.nc").attrs["fit_mode"] == "streaming"

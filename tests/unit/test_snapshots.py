"""The snapshot view of generate datasets: row layout and its inverse, flagged samples,
surrogate inputs, lazy (dask) matrices, and inner-product weights (quadrature, lumped mass
broadcast over vector components, the error without a mass variable)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow import snapshots as sn
from surroflow.io import write_dataset


def grid_dataset(n_samples: int = 5, n_time: int = 4, n_x: int = 6, n_y: int = 3, flagged=(1,)) -> xr.Dataset:
    rng = np.random.default_rng(0)
    u = rng.standard_normal((n_samples, n_time, n_x, n_y))
    status = np.zeros(n_samples, dtype="i1")
    status[list(flagged)] = 1
    u[list(flagged)] = np.nan                                  # flagged samples must never be read
    x = np.sort(rng.uniform(0, 1, n_x))
    return xr.Dataset({"u": (("sample", "time", "x", "y"), u, {"units": "K"}),
                       "status": ("sample", status),
                       "design": (("sample", "parameter"), rng.uniform(0, 1, (n_samples, 2)))},
                      coords={"x": x, "y": np.linspace(0, 2, n_y), "time": np.linspace(0, 1, n_time),
                              "parameter": ["a", "b"]},
                      attrs={"time_dim": "time", "stage": "collect_batches"})


def test_matrix_layout_round_trips_with_fields_from_rows():
    ds = grid_dataset()
    lay = sn.snapshot_layout(ds, "u")
    assert lay.order == ("sample", "time", "x", "y") and lay.space_shape == (6, 3)
    assert lay.samples.tolist() == [0, 2, 3, 4] and lay.n_rows == 16 and lay.n_space == 18
    X = sn.snapshot_matrix(ds, "u")
    assert X.shape == (16, 18) and np.all(np.isfinite(X))
    fields = sn.fields_from_rows(X, lay.samples.size, lay.n_time, lay.space_shape)
    np.testing.assert_array_equal(fields, ds["u"].values[lay.samples])
    # rows are (sample, time) pairs in sample-major order
    np.testing.assert_array_equal(X[1 * 4 + 2], ds["u"].values[2, 2].reshape(-1))
    np.testing.assert_array_equal(sn.snapshot_groups(ds, "u"), np.repeat([0, 2, 3, 4], 4))
    steady = ds.isel(time=0).drop_vars("time")
    steady.attrs["time_dim"] = "none"
    Xs = sn.snapshot_matrix(steady, "u")
    np.testing.assert_array_equal(sn.fields_from_rows(Xs, 4, None, (6, 3)), steady["u"].values[lay.samples])


def test_flagged_samples_are_excluded_and_counted():
    ds = grid_dataset(flagged=(0, 3))
    assert sn.n_flagged(ds) == 2
    assert sn.ok_samples(ds)["sample"].size == 3
    assert sn.snapshot_matrix(ds, "u").shape == (12, 18)
    with pytest.raises(SurroflowError, match="train.nc: all 5 samples failed, diverged or timed out"):
        sn.require_ok_samples(grid_dataset(flagged=range(5)), "train.nc")


def test_all_samples_flagged_is_one_sentence(tmp_path):
    """Every reader's check names the file, the split, the status counts and the consequence;
    the snapshot layout (POD, streaming, surrogates) says the same, naming the file it was read from."""
    ds = grid_dataset(flagged=range(5))
    ds["status"][:3] = 2
    ds.attrs["split"] = "train"
    with pytest.raises(SurroflowError) as err:
        sn.require_ok_samples(ds, "results/s/generate/train.nc", "samples", "nothing to reduce")
    assert str(err.value) == (
        "results/s/generate/train.nc: all 5 samples of the train split failed, diverged or timed out (status "
        "counts: ok 0, diverged 2, failed 3, timeout 0); nothing to reduce; see the generate logs and fix the "
        "simulator, its settings or its parameter ranges")
    assert sn.status_counts(ds) == {"ok": 0, "diverged": 2, "failed": 3, "timeout": 0}
    with pytest.raises(SurroflowError, match=r"^t.nc: all 5 training samples failed"):    # no "of the train split"
        sn.require_ok_samples(ds, "t.nc", "training samples")
    write_dataset(ds, tmp_path / "train.nc")
    lazy = sn.open_lazy(tmp_path / "train.nc")
    try:
        with pytest.raises(SurroflowError, match=rf"^{tmp_path / 'train.nc'}: all 5 samples of the train split "
                                                 r"failed.*; no snapshot of 'u'; "):
            sn.snapshot_matrix(lazy, "u")
    finally:
        lazy.close()


def test_surrogate_inputs_follow_the_rows():
    ds = grid_dataset()
    inputs = sn.snapshot_inputs(ds, "u")
    design = ds["design"].values
    assert inputs.shape == (16, 3) and sn.input_names(ds, "u") == ["a", "b", "time"]
    np.testing.assert_array_equal(inputs[5], [*design[2], ds["time"].values[1]])
    np.testing.assert_array_equal(sn.surrogate_inputs(design[:2], None), design[:2])


def test_lazy_matrix_equals_the_loaded_one(tmp_path):
    ds = grid_dataset(n_samples=9, flagged=(4,))
    write_dataset(ds, tmp_path / "train.nc")
    X = sn.snapshot_dask(tmp_path / "train.nc", "u", chunk_snapshots=8)
    assert X.numblocks[0] > 1
    np.testing.assert_array_equal(X.compute(), sn.snapshot_matrix(ds, "u"))


def test_quadrature_weights_are_the_tensor_product_of_trapezoidal_rules():
    ds = grid_dataset()
    w = sn.space_weights(ds, "u", "quadrature")
    ref = np.outer(sn.grid_weights(ds["x"].values), sn.grid_weights(ds["y"].values)).reshape(-1)
    np.testing.assert_allclose(w, ref)
    assert w.sum() == pytest.approx((ds["x"][-1] - ds["x"][0]) * 2.0)       # the area
    np.testing.assert_array_equal(sn.space_weights(ds, "u", "uniform"), np.ones(18))
    with pytest.raises(SurroflowError, match="reduction.weights='lumped' is not allowed"):
        sn.space_weights(ds, "u", "lumped")


def mesh_dataset() -> xr.Dataset:
    mass = np.array([0.1, 0.2, 0.3, 0.4])
    d = np.arange(2 * 2 * 4 * 3, dtype=float).reshape(2, 2, 4, 3)
    return xr.Dataset({"d": (("sample", "step", "node", "component"), d),
                       "p": (("sample", "step", "node"), d[..., 0]),
                       "mass": (("node",), mass)},
                      coords={"step": [1.0, 2.0], "component": ["x", "y", "z"]},
                      attrs={"time_dim": "step"})


def test_mass_weights_broadcast_over_components():
    ds = mesh_dataset()
    mass = ds["mass"].values
    np.testing.assert_array_equal(sn.space_weights(ds, "d", "mass"), np.repeat(mass, 3))   # node-major
    np.testing.assert_array_equal(sn.space_weights(ds, "p", "mass"), mass)
    # on a mesh, quadrature means the lumped mass
    np.testing.assert_array_equal(sn.space_weights(ds, "d", "quadrature"), np.repeat(mass, 3))
    assert "mass" not in sn.output_variables(ds) and sorted(sn.output_variables(ds)) == ["d", "p"]


def test_mass_weights_without_a_mass_variable_name_the_fix():
    ds = mesh_dataset().drop_vars("mass")
    with pytest.raises(SurroflowError, match=r"reduction.weights=mass: the data have no 'mass' or 'cell_volume'"
                                             r".*allowed here: uniform, quadrature"):
        sn.space_weights(ds, "d", "mass")
    bad = mesh_dataset()
    bad["mass"][0] = 0.0
    with pytest.raises(SurroflowError, match="'mass' weights must be positive"):
        sn.space_weights(bad, "d", "mass")

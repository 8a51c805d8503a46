"""The reduced model: bases (global or local) + regressor, its file and its error split."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.io import STATUS_OK, open_dataset, write_dataset
from surroflow.reduction.local import LocalPOD
from surroflow.reduction.pod import POD
from surroflow.surrogates import make_surrogate
from surroflow.surrogates.reduced import ReducedModel

X_GRID = np.linspace(0.0, 1.0, 40)


def fields(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = np.sin(np.pi * X_GRID[None] * (1 + P[:, :1])) + P[:, 1:] * X_GRID[None]
    v = 100.0 * np.cos(np.pi * X_GRID[None] * P[:, :1])        # other units, other size
    return u, v


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (80, 2))
    Xt = rng.uniform(0.1, 0.9, (12, 2))
    return X, fields(X), Xt, fields(Xt)


def generate_dataset(n: int, seed: int) -> xr.Dataset:
    """A small transient generate dataset ``u(sample, time, x)`` with one flagged sample."""
    rng = np.random.default_rng(seed)
    design = rng.uniform(0, 1, (n, 2))
    t = np.linspace(0.0, 1.0, 5)
    u = np.sin(np.pi * (X_GRID[None, None] - design[:, None, :1] * t[None, :, None])) * (1 + design[:, None, 1:])
    status = np.full(n, STATUS_OK, dtype="i1")
    status[1] = 1
    return xr.Dataset(
        {"design": (("sample", "parameter"), design), "u": (("sample", "time", "x"), u, {"units": "m/s"}),
         "status": (("sample",), status)},
        coords={"sample": np.arange(n), "time": t, "x": ("x", X_GRID, {"units": "m"}),
                "parameter": np.array(["a", "b"], dtype=object),
                "parameter_units": ("parameter", np.array(["1", "s"], dtype=object)),
                "parameter_low": ("parameter", [0.0, 0.0]), "parameter_high": ("parameter", [1.0, 1.0])},
        attrs={"time_dim": "time"})


def identity_gap(e: dict) -> float:
    return abs(e["total"] ** 2 - (e["projection"] ** 2 + e["selection"] ** 2 + e["regression"] ** 2))


def test_global_multi_variable_round_trip_predicts_identically(rows, tmp_path):
    X, (u, v), Xt, _ = rows
    model = ReducedModel({"u": POD(rank=6, energy=None), "v": POD(rank=3, energy=None)},
                         make_surrogate("rbf")).fit(X, {"u": u, "v": v})
    assert model.variables == ["u", "v"] and model.n_online_modes == 9
    assert model.predict_coefficients(Xt).shape == (12, 9)
    # each variable's coefficient block is scaled by its RMS: v (100x larger) gets a larger scale
    assert model.scales_[1] > 10 * model.scales_[0]
    write_dataset(model.to_dataset({"model_name": "m"}), tmp_path / "m.nc")
    back = ReducedModel.from_dataset(open_dataset(tmp_path / "m.nc"))
    a, b = model.predict(Xt), back.predict(Xt)
    for k in ("u", "v"):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(model.predict_coefficients(Xt), back.predict_coefficients(Xt))


def test_local_round_trip_predicts_identically(tmp_path):
    X, (u, _), _, _ = two_regimes()
    lp = LocalPOD(n_clusters=2, rank=3, energy=None, selector="knn")
    model = ReducedModel({"u": lp}, make_surrogate("linear", degree=2)).fit(X, {"u": u})
    write_dataset(model.to_dataset(), tmp_path / "local.nc")
    back = ReducedModel.from_dataset(open_dataset(tmp_path / "local.nc"))
    assert back.local and len(back.regressors_) == 2 and back.n_online_modes == 3
    np.testing.assert_array_equal(model.predict(X)["u"], back.predict(X)["u"])
    np.testing.assert_array_equal(model.predict_coefficients(X), back.predict_coefficients(X))


def test_error_split_identity_and_no_selection_error_for_global(rows):
    X, (u, v), Xt, (ut, vt) = rows
    model = ReducedModel({"u": POD(rank=4, energy=None), "v": POD(rank=2, energy=None)},
                         make_surrogate("linear", degree=2)).fit(X, {"u": u, "v": v})
    groups = np.repeat(np.arange(6), 2)
    split = model.error_split(Xt, {"u": ut, "v": vt}, groups=groups)
    for var, e in split.items():
        assert identity_gap(e) < 1e-12 * e["total"] ** 2 + 1e-15
        assert e["selection"] == 0.0 and e["selection_accuracy"] == 1.0
        assert e["regression"] > 0 and e["projection"] > 0
        pg = e["per_group"]
        assert pg["total"].shape == (6,)
        np.testing.assert_allclose(pg["total"] ** 2, pg["projection"] ** 2 + pg["regression"] ** 2, rtol=1e-10)
        # the total really is the error of the prediction (not a sum of the parts)
        pred = model.predict(Xt)[var]
        truth = {"u": ut, "v": vt}[var]
        w = model.bases[var].weights_
        direct = np.sqrt(np.sum((truth - pred) ** 2 * w) / np.sum(truth ** 2 * w))
        assert e["total"] == pytest.approx(direct, rel=1e-12)


def two_regimes():
    """Two well-separated regimes: inputs near 0 give a sine, inputs near 5 a shifted bump."""
    rng = np.random.default_rng(1)
    Xa = rng.uniform(0, 1, (40, 2))
    Xb = rng.uniform(5, 6, (40, 2))
    ua = np.sin(np.pi * X_GRID[None] * (1 + 0.2 * Xa[:, :1]))
    ub = 3.0 + np.exp(-((X_GRID[None] - 0.1 * Xb[:, :1]) ** 2) / 0.05)
    X = np.concatenate([Xa, Xb])
    truth = np.repeat([0, 1], 40)
    return X, (np.concatenate([ua, ub]), None), truth, None


def test_local_selection_picks_the_right_cluster_and_splits_exactly():
    X, (u, _), regime, _ = two_regimes()
    lp = LocalPOD(n_clusters=2, rank=3, energy=None, overlap=0.0, selector="knn")
    model = ReducedModel({"u": lp}, make_surrogate("rbf")).fit(X, {"u": u})
    # every cluster holds one regime only
    for c in range(2):
        assert np.unique(regime[lp.labels_ == c]).size == 1
    Xq = np.array([[0.5, 0.5], [5.5, 5.5], [0.2, 0.8], [5.9, 5.1]])
    chosen = model.select(Xq)
    expect = [lp.labels_[np.flatnonzero(regime == r)[0]] for r in (0, 1, 0, 1)]
    np.testing.assert_array_equal(chosen, expect)
    e = model.error_split(X, {"u": u})["u"]
    assert e["selection_accuracy"] == 1.0
    assert e["selection"] == pytest.approx(0.0, abs=1e-12)
    assert identity_gap(e) < 1e-12 * e["total"] ** 2 + 1e-15


def test_local_split_with_a_wrong_selection_is_still_exact():
    X, (u, _), _, _ = two_regimes()
    lp = LocalPOD(n_clusters=2, rank=2, energy=None, overlap=0.2, selector="knn",
                  selector_params={"n_neighbors": 25, "weights": "uniform"})
    model = ReducedModel({"u": lp}, make_surrogate("linear", degree=1)).fit(X, {"u": u})
    Xs = X.copy()
    Xs[:5] += 5.0                    # inputs of the other regime: the selector picks the wrong basis
    e = model.error_split(Xs, {"u": u})["u"]
    assert e["selection"] > 1e-3 and e["selection_accuracy"] < 1.0
    assert identity_gap(e) < 1e-12 * e["total"] ** 2


def test_fit_dataset_predict_fields_and_self_contained_file(tmp_path):
    train, test = generate_dataset(12, 0), generate_dataset(4, 1)
    model = ReducedModel({"u": POD(rank=5, energy=None)}, make_surrogate("rbf"),
                         formulation="pointwise").fit_dataset(train)
    assert model.input_names == ["a", "b", "time"] and model.formulation_ == "pointwise"
    write_dataset(model.to_dataset({"model_name": "rbf"}), tmp_path / "m.nc")
    ds = open_dataset(tmp_path / "m.nc")
    assert ds["x"].attrs["units"] == "m" and list(ds["parameter_units"].values) == ["1", "s"]
    back = ReducedModel.from_dataset(ds)
    out = back.predict_fields(test["design"].values)            # the stored time coordinate
    assert out["u"].shape == (4, 5, 40)
    np.testing.assert_array_equal(out["u"], model.predict_fields(test["design"].values, test["time"].values)["u"])
    assert back.space_["u"]["attrs"]["units"] == "m/s"
    np.testing.assert_array_equal(back.times_, train["time"].values)
    # the flagged training sample was left out: 11 ok samples x 5 times
    assert model.regressor_.X_train_.shape == (55, 3) and model.n_regressor_rows_ == 55
    assert ds.attrs["formulation"] == "pointwise" and back.formulation_ == "pointwise"


def test_mismatched_rows_and_missing_variables_are_clear_errors(rows):
    X, (u, v), _, _ = rows
    model = ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("rbf"))
    with pytest.raises(SurroflowError, match="snapshot rows"):
        model.fit(X[:10], {"u": u})
    with pytest.raises(SurroflowError, match="missing"):
        model.fit(X, {"v": v})
    with pytest.raises(SurroflowError, match="not fitted"):
        model.predict(X)


# --------------------------------------------------------------------------- trajectory formulation
def test_auto_picks_trajectory_for_transient_data_and_the_file_round_trips(tmp_path):
    train, test = generate_dataset(12, 0), generate_dataset(4, 1)
    model = ReducedModel({"u": POD(rank=5, energy=None)}, make_surrogate("rbf")).fit_dataset(train)
    assert model.formulation == "auto" and model.formulation_ == "trajectory"
    # one regressor row per ok sample (11), outputs = 5 times x 5 modes
    assert model.regressor_.X_train_.shape == (11, 2) and model.regressor_.n_outputs_ == 25
    assert model.n_regressor_rows_ == 11
    write_dataset(model.to_dataset({"model_name": "rbf"}), tmp_path / "m.nc")
    ds = open_dataset(tmp_path / "m.nc")
    assert ds.attrs["formulation"] == "trajectory"
    back = ReducedModel.from_dataset(ds)
    assert back.formulation_ == "trajectory"
    D = test["design"].values
    out = back.predict_fields(D)
    assert out["u"].shape == (4, 5, 40)
    np.testing.assert_array_equal(out["u"], model.predict_fields(D)["u"])
    # the fast path and the (parameters, time) rows path agree exactly at the training times
    rows = model.predict(np.column_stack([np.repeat(D, 5, axis=0), np.tile(train["time"].values, 4)]))["u"]
    np.testing.assert_array_equal(rows.reshape(4, 5, 40), out["u"])


def test_trajectory_between_training_times_is_linear_and_outside_is_an_error():
    train = generate_dataset(12, 0)
    model = ReducedModel({"u": POD(rank=5, energy=None)}, make_surrogate("linear", degree=2),
                         formulation="trajectory").fit_dataset(train)
    t = train["time"].values
    p = np.array([[0.3, 0.6]])
    on = model.predict_coefficients(np.column_stack([np.repeat(p, 5, axis=0), t]))
    np.testing.assert_array_equal(on, model.predict_trajectories(p)[0])
    mid = 0.25 * t[1] + 0.75 * t[2]
    between = model.predict_coefficients([[0.3, 0.6, mid]])[0]
    np.testing.assert_allclose(between, 0.25 * on[1] + 0.75 * on[2], rtol=1e-12, atol=1e-14)
    with pytest.raises(SurroflowError, match="training time axis"):
        model.predict([[0.3, 0.6, t[-1] + 0.1]])
    # predict_fields at other times goes through the rows
    assert model.predict_fields(p, [mid])["u"].shape == (1, 1, 40)


def test_trajectory_error_split_is_exact_and_as_accurate_as_pointwise():
    train, test = generate_dataset(40, 0), generate_dataset(10, 1)
    ok = test.isel(sample=test["status"].values == STATUS_OK)
    from surroflow import snapshots as snap
    X, S = snap.snapshot_inputs(ok, "u"), {"u": snap.snapshot_matrix(ok, "u")}
    groups = np.repeat(np.arange(ok.sizes["sample"]), ok.sizes["time"])
    errors = {}
    for form in ("pointwise", "trajectory"):
        model = ReducedModel({"u": POD(rank=6, energy=None)}, make_surrogate("gaussian_process", random_state=0),
                             formulation=form).fit_dataset(train)
        e = model.error_split(X, S, groups=groups)["u"]
        assert identity_gap(e) < 1e-12 * e["total"] ** 2 + 1e-15
        assert e["selection"] == 0.0 and e["regression"] > 0
        pred = model.predict(X)["u"]
        w = model.bases["u"].weights_
        direct = np.sqrt(np.sum((S["u"] - pred) ** 2 * w) / np.sum(S["u"] ** 2 * w))
        assert e["total"] == pytest.approx(direct, rel=1e-12)
        errors[form] = e["total"]
    print(errors)
    assert errors["trajectory"] < 2.0 * errors["pointwise"] and errors["trajectory"] < 0.05


def test_formulation_rules_and_errors(rows):
    X, (u, _), _, _ = rows
    # steady rows (no time axis recorded): auto is pointwise, trajectory is refused
    steady = ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("linear", degree=2)).fit(X, {"u": u})
    assert steady.formulation_ == "pointwise"
    with pytest.raises(SurroflowError, match="trajectory"):
        steady.predict_trajectories(X[:2])
    with pytest.raises(SurroflowError, match="not valid"):
        ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("linear"), formulation="trajectory").fit(X, {"u": u})
    with pytest.raises(SurroflowError, match="formulation must be"):
        ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("linear"), formulation="rows")
    # local bases select per snapshot: trajectory refused, auto stays pointwise on transient data
    with pytest.raises(SurroflowError, match="global bases"):
        ReducedModel({"u": LocalPOD(n_clusters=2, rank=2, energy=None)}, make_surrogate("linear"),
                     formulation="trajectory")
    train = generate_dataset(20, 0)
    local = ReducedModel({"u": LocalPOD(n_clusters=2, rank=2, energy=None, selector="knn")},
                         make_surrogate("linear", degree=1)).fit_dataset(train)
    assert local.formulation_ == "pointwise"
    # the MLP's epoch budget would shrink with the rows: auto keeps it pointwise, trajectory is allowed
    mlp = {"hidden": [8], "max_epochs": 2, "random_state": 0}
    assert ReducedModel({"u": POD(rank=2, energy=None)}, make_surrogate("mlp", **mlp)).fit_dataset(
        train).formulation_ == "pointwise"
    assert ReducedModel({"u": POD(rank=2, energy=None)}, make_surrogate("mlp", **mlp),
                        formulation="trajectory").fit_dataset(train).formulation_ == "trajectory"
    # transient rows that are not whole trajectories: auto falls back to pointwise, trajectory refuses
    from surroflow import snapshots as snap
    ok = train.isel(sample=train["status"].values == STATUS_OK)
    Xr, Sr = snap.snapshot_inputs(ok, "u")[:-1], snap.snapshot_matrix(ok, "u")[:-1]
    auto = ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("linear", degree=1)).describe(ok)
    assert auto.fit(Xr, {"u": Sr}).formulation_ == "pointwise"
    strict = ReducedModel({"u": POD(rank=3, energy=None)}, make_surrogate("linear", degree=1),
                          formulation="trajectory").describe(ok)
    with pytest.raises(SurroflowError, match="whole trajectories"):
        strict.fit(Xr, {"u": Sr})


def test_model_files_without_a_formulation_load_as_pointwise(tmp_path):
    train = generate_dataset(12, 0)
    model = ReducedModel({"u": POD(rank=4, energy=None)}, make_surrogate("linear", degree=2),
                         formulation="pointwise").fit_dataset(train)
    ds = model.to_dataset()
    del ds.attrs["formulation"]                 # a file written before the trajectory formulation
    write_dataset(ds, tmp_path / "old.nc")
    back = ReducedModel.from_dataset(open_dataset(tmp_path / "old.nc"))
    assert back.formulation_ == "pointwise"
    D = train["design"].values[:3]
    np.testing.assert_array_equal(back.predict_fields(D)["u"], model.predict_fields(D)["u"])

"""The estimator core shared by surrogates and forecasters: scikit-learn compatibility, the one
registry, the one state codec, the one device policy, the training stages."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from surroflow import SurroflowError
from surroflow.config import load_schema
from surroflow.forecast import BASELINES, make_forecaster
from surroflow.io import STATUS_OK, open_dataset, write_dataset
from surroflow.reduction.pod import POD
from surroflow.surrogates import make_surrogate
from surroflow.surrogates.reduced import ReducedModel
from surroflow.surrogates.registry import (
    check_estimator_params,
    estimator_class,
    hyperparameter_names,
    kinds,
    make_estimator,
)
from surroflow.surrogates.state import from_dataset, load, save, to_dataset
from tests.artifacts import context, stamp

torch.set_num_threads(1)


def regression_data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    return X, np.column_stack([X[:, 0] ** 3 - X[:, 1], np.sin(2 * X[:, 0]) * X[:, 1]])


def lorenz_like(n_traj: int = 3, n_time: int = 200) -> np.ndarray:
    t = np.linspace(0, 20, n_time)
    ph = np.linspace(0, 2, n_traj)[:, None]
    return np.stack([np.sin(t + ph), np.cos(1.3 * t + ph), np.sin(0.7 * t + 2 * ph) * np.cos(t)], axis=-1)


# --------------------------------------------------------------------------- scikit-learn
def test_clone_gives_an_unfitted_copy_with_the_same_hyperparameters():
    X, Y = regression_data()
    model = make_surrogate("linear", degree=3, alpha=1e-4).fit(X, Y)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert not hasattr(copy, "coef_")
    copy.set_params(degree=1)
    assert copy.degree == 1 and model.degree == 3
    # forecasters too (nested hyperparameters untouched)
    red = make_forecaster("reduced", inner_kind="ngrc", inner_params={"n_delays": 2}, rank=3)
    assert clone(red).get_params() == red.get_params()


def test_grid_search_on_a_surrogate_picks_the_right_degree():
    X, Y = regression_data(120)
    search = GridSearchCV(make_surrogate("linear", alpha=1e-10), {"degree": [1, 2, 3]}, cv=3).fit(X, Y[:, :1])
    assert search.best_params_ == {"degree": 3}          # y = x0^3 - x1 is a cubic
    assert search.best_score_ > 0.999
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[2]
    pred = search.best_estimator_.predict(X[:5])
    np.testing.assert_allclose(pred[:, 0], Y[:5, 0], atol=1e-6)


# --------------------------------------------------------------------------- registry
@pytest.mark.parametrize("family,kind", [("surrogate", "kriging"), ("forecaster", "lstm")])
def test_registry_rejects_an_unknown_kind_by_name(family, kind):
    with pytest.raises(SurroflowError, match=rf"studies\.s\.x: unknown {family} kind '{kind}'; allowed: \[") as exc:
        check_estimator_params(kind, {}, family, "studies.s.x")
    for allowed in kinds(family):
        assert allowed in str(exc.value)
    with pytest.raises(SurroflowError, match=f"unknown {family} kind '{kind}'"):
        make_estimator(kind, {}, family)


@pytest.mark.parametrize("family,kind,bad,good", [("surrogate", "gaussian_process", "kernal", "kernel"),
                                                  ("surrogate", "mlp", "epochs", "max_epochs"),
                                                  ("forecaster", "ngrc", "n_delay", "n_delays"),
                                                  ("forecaster", "mlp_stepper", "iterations", "n_iterations")])
def test_registry_rejects_an_unknown_hyperparameter_by_name(family, kind, bad, good):
    where = "studies.s.models.m.params"
    with pytest.raises(SurroflowError, match=rf"{where}: unknown hyperparameter\(s\) \['{bad}'\] of {family} "
                                             rf"kind '{kind}'; allowed: \[.*'{good}'"):
        check_estimator_params(kind, {bad: 1, good: 2}, family, where)
    check_estimator_params(kind, {good: "rbf" if good == "kernel" else 2}, family, where)  # the right name passes


def test_registry_knows_both_families_and_the_schema_kinds():
    schema = load_schema()["$defs"]
    assert kinds("surrogate") == sorted(schema["surrogate"]["properties"]["kind"]["enum"])
    assert set(schema["forecast_model"]["properties"]["kind"]["enum"]) == set(kinds("forecaster")) - {"reduced"}
    assert set(kinds()) == set(kinds("surrogate")) | set(kinds("forecaster"))
    assert estimator_class("rbf").family == "surrogate" and estimator_class("dmd").family == "forecaster"
    with pytest.raises(SurroflowError, match="family"):
        make_estimator("rbf", {}, "regressor")


def test_the_seeding_rule_lives_in_make_estimator():
    assert make_estimator("gaussian_process", {}, "surrogate").random_state == 0      # class default: None
    assert make_estimator("gaussian_process", {}, "surrogate", seed=7).random_state == 7
    assert make_estimator("gaussian_process", {"random_state": 3}, "surrogate", seed=7).random_state == 3
    assert make_estimator("rff", {}, "forecaster", seed=5).random_state == 5
    assert "random_state" not in make_estimator("rbf", {}, "surrogate").get_params()


def test_checking_params_imports_no_heavy_module_and_building_imports_it_before_fit():
    code = ("import sys\n"
            "from surroflow.surrogates.registry import check_estimator_params, make_estimator, hyperparameter_names\n"
            "check_estimator_params('mlp', {'hidden': [4]}, 'surrogate', 'w')\n"
            "check_estimator_params('node', {'substeps': 2}, 'forecaster', 'w')\n"
            "assert 'substeps' in hyperparameter_names('node', 'forecaster')\n"
            "assert 'torch' not in sys.modules, 'checking hyperparameters imported torch'\n"
            "assert 'sklearn.gaussian_process' not in sys.modules\n"
            "make_estimator('gaussian_process', {}, 'surrogate')\n"
            "assert 'sklearn.gaussian_process' in sys.modules, 'the GP module must be imported when built'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_hyperparameter_names_from_source_match_the_signatures():
    import inspect
    for family in ("surrogate", "forecaster"):
        for kind in kinds(family):
            sig = [p for p in inspect.signature(estimator_class(kind, family).__init__).parameters if p != "self"]
            assert hyperparameter_names(kind, family) == sig


# --------------------------------------------------------------------------- state codec
def test_one_codec_round_trips_a_surrogate_and_a_nested_forecaster(tmp_path):
    X, Y = regression_data()
    gp = make_surrogate("gaussian_process", max_optimize=40).fit(X, Y)
    save(gp, tmp_path / "gp.nc", {"model_name": "gp"})
    back = load(tmp_path / "gp.nc")
    assert type(back) is type(gp) and back.get_params() == gp.get_params()
    np.testing.assert_array_equal(back.predict(X, return_std=True)[1], gp.predict(X, return_std=True)[1])

    traj = lorenz_like()
    fc = make_forecaster("reduced", inner_kind="rff", inner_params={"n_features": 30}, rank=2).fit(traj, dt=0.1)
    ds = to_dataset(fc, {"model_name": "pod_rff"})
    assert ds.attrs["estimator_family"] == "forecaster" and ds.attrs["estimator_kind"] == "reduced"
    assert ds.attrs["inner___estimator_kind"] == "rff"                    # nested, by prefix
    write_dataset(ds, tmp_path / "fc.nc")
    again = from_dataset(open_dataset(tmp_path / "fc.nc"))
    np.testing.assert_array_equal(again.rollout(traj[:, :3], 20), fc.rollout(traj[:, :3], 20))
    assert again.inner_.get_params() == fc.inner_.get_params()
    # two estimators side by side in one dataset, under their own prefixes
    both = xr.merge([to_dataset(gp, prefix="a__"), to_dataset(fc, prefix="b__")], combine_attrs="no_conflicts")
    np.testing.assert_array_equal(from_dataset(both, prefix="a__").predict(X), gp.predict(X))
    assert from_dataset(both, prefix="b__").kind == "reduced"
    with pytest.raises(SurroflowError, match="holds no estimator"):
        from_dataset(both)


# --------------------------------------------------------------------------- devices
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
@pytest.mark.parametrize("kind,params", [("mlp", {"max_epochs": 2}), ("mlp_stepper", {"n_iterations": 2, "hidden": [4]})])
def test_cuda_requested_without_cuda_is_a_clear_error(kind, params):
    model = make_estimator(kind, {**params, "device": "cuda"})
    with pytest.raises(SurroflowError, match=rf"{kind}: device 'cuda' was requested but CUDA is not available"):
        if kind == "mlp":
            model.fit(*regression_data(20))
        else:
            model.fit(lorenz_like(2, 30))
    auto = make_estimator(kind, {**params, "device": "auto"})
    auto.fit(*regression_data(20)) if kind == "mlp" else auto.fit(lorenz_like(2, 30))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_a_model_saved_for_cuda_loads_and_predicts_on_cpu():
    traj = lorenz_like(2, 40)
    fc = make_forecaster("mlp_stepper", hidden=[4], n_iterations=3, rollout_steps=2).fit(traj)
    ds = to_dataset(fc)
    ds.attrs["estimator_params"] = ds.attrs["estimator_params"].replace('"device": "cpu"', '"device": "cuda"')
    back = from_dataset(ds)
    assert back.device == "cuda"
    np.testing.assert_allclose(back.rollout(traj[:, :2], 5), fc.rollout(traj[:, :2], 5), rtol=1e-6)


def test_an_unknown_device_is_refused():
    with pytest.raises(SurroflowError, match=r"params.device: 'tpu' is not allowed .*\['cpu', 'cuda', 'auto'\]"):
        make_forecaster("node", device="tpu", n_iterations=1).fit(lorenz_like(2, 30))


# --------------------------------------------------------------------------- schema defaults
def test_forecaster_defaults_equal_the_schema_defaults():
    fc = load_schema()["$defs"]["forecast"]["properties"]
    assert estimator_class("reduced").__init__.__defaults__[-1] == fc["rank"]["default"]
    assert make_forecaster("reduced").rank == fc["rank"]["default"]
    for kind in kinds("forecaster"):
        params = make_forecaster(kind).get_params()
        if "random_state" in params:
            assert params["random_state"] == fc["seed"]["default"], kind
        if "scaling" in params:   # sindy's equations are read: they stay in the data's own units
            assert params["scaling"] == ("none" if kind == "sindy" else "component"), kind
    assert fc["state"]["default"] == "full"
    assert set(BASELINES) <= set(kinds("forecaster"))


# --------------------------------------------------------------------------- training stages
def _generate_file(path, n: int, seed: int):
    rng = np.random.default_rng(seed)
    design = rng.uniform(0, 1, (n, 2))
    x = np.linspace(0, 1, 25)
    t = np.linspace(0, 1, 4)
    u = np.sin(np.pi * (x[None, None] - design[:, None, :1] * t[None, :, None])) * (1 + design[:, None, 1:])
    status = np.full(n, STATUS_OK, dtype="i1")
    status[0] = 2
    ds = xr.Dataset({"design": (("sample", "parameter"), design), "u": (("sample", "time", "x"), u),
                     "status": (("sample",), status)},
                    coords={"time": t, "x": x, "parameter": np.array(["a", "b"], dtype=object)},
                    attrs=stamp({"time_dim": "time", "split": "train"}, "collect_batches", path, study="s"))
    write_dataset(ds, path)
    return ds


def test_train_surrogate_stage_writes_a_self_contained_model(tmp_path):
    from surroflow.snapshots import ok_samples, snapshot_matrix
    from surroflow.stages import StageContext, train_surrogate
    ds = _generate_file(tmp_path / "train.nc", 10, 0)
    pod = POD(rank=4, energy=None).fit(snapshot_matrix(ok_samples(ds), "u"))
    write_dataset(pod.to_dataset(("x",), {"x": ds["x"]}, (25,), stamp({"variable": "u"}, "fit_pod", tmp_path / "u.nc",
                                                                     study="s")), tmp_path / "u.nc")
    section = {"surrogate": {"r": {"kind": "rbf", "params": {}, "basis": "global", "formulation": "auto",
                                         "calibration_folds": 0}}}
    ctx = context("train_surrogate", "s", {"surrogate": "r"}, **section)
    train_surrogate.run({"train": str(tmp_path / "train.nc"), "bases": [str(tmp_path / "u.nc")]},
                        {"model": str(tmp_path / "model.nc")}, ctx)
    mds = open_dataset(tmp_path / "model.nc", stage="train_surrogate")
    assert mds.attrs["model_name"] == "r" and mds.attrs["model_kind"] == "rbf" and mds.attrs["fit_seconds"] > 0
    assert mds.attrs["n_excluded_samples"] == 1 and mds.attrs["n_train_rows"] == 36
    model = ReducedModel.from_dataset(mds)
    assert model.input_names == ["a", "b", "time"]
    # calibration_folds 0: no band, the reason stored, every sample's score NaN
    assert "calibration_folds is 0" in mds.attrs["calibration_reason"]
    assert np.isnan(model.calibration_.quantile()) and mds["calibration_scores"].isnull().all()
    out = model.predict_fields(ds["design"].values[1:3])
    np.testing.assert_allclose(out["u"], pod.project(ds["u"].values[1:3].reshape(8, 25)).reshape(2, 4, 25),
                               atol=1e-8)                     # rbf interpolates its training rows
    bad = {**section, "surrogate": {"r": {**section["surrogate"]["r"], "params": {"smooth": 1}}}}
    with pytest.raises(SurroflowError, match=r"studies\.s\.surrogates\.r\.params: unknown hyperparameter"):
        train_surrogate.run({"train": str(tmp_path / "train.nc"), "bases": [str(tmp_path / "u.nc")]},
                            {"model": str(tmp_path / "bad.nc")}, context("train_surrogate", "s", {"surrogate": "r"},
                                                                         **bad))


@pytest.mark.parametrize("name,kind,state", [("persistence", "persistence", "full"), ("pod_ngrc", "ngrc", "pod")])
def test_train_forecaster_stage_writes_the_model_and_its_attributes(tmp_path, name, kind, state):
    from surroflow.stages import StageContext, train_forecaster
    traj = lorenz_like(4, 120)
    status = np.full(4, STATUS_OK, dtype="i1")
    status[3] = 1
    ds = xr.Dataset({"state": (("sample", "time", "component"), traj), "status": (("sample",), status)},
                    coords={"time": np.arange(120) * 0.1, "component": ["x", "y", "z"]},
                    attrs=stamp({"lyapunov_time": 1.1, "dt_sample": 0.1, "split": "train"}, "collect_batches",
                                tmp_path / "train.nc", study="f", task="forecast"))
    write_dataset(ds, tmp_path / "train.nc")
    forecast = {"variable": None, "state": "full", "rank": 2, "seed": 0}
    section = {"task": "forecast", "forecast": forecast,
               "model": {name: {"kind": kind, "params": {}, "state": "inherit" if kind in BASELINES else state}}}
    ctx = context("train_forecaster", "f", {"model": name}, **section)
    train_forecaster.run({"train": str(tmp_path / "train.nc")}, {"model": str(tmp_path / "m.nc")}, ctx)
    mds = open_dataset(tmp_path / "m.nc", stage="train_forecaster")
    a = mds.attrs
    assert (a["model_name"], a["model_kind"], a["state"], a["variable"]) == (name, kind, state, "state")
    assert a["dt_sample"] == 0.1 and a["lyapunov_time"] == 1.1 and a["n_train_trajectories"] == 3
    assert a["n_excluded_samples"] == 1 and a["fit_seconds"] >= 0
    model = from_dataset(mds)
    assert model.kind == ("reduced" if state == "pod" else kind)
    assert model.rollout(traj[:1, :5], 3).shape == (1, 3, 3)


def test_a_registered_class_of_ones_own_is_built_checked_and_stored(tmp_path):
    from surroflow.surrogates import registry
    from surroflow.surrogates.base import Surrogate

    @registry.register("surrogate", "mean_value")
    class MeanValue(Surrogate):
        def __init__(self, shift: float = 0.0) -> None:
            self.shift = shift

        def fit(self, X, Y):
            X, Y = self._check_xy(X, Y)
            self.mean_ = Y.mean(axis=0) + self.shift
            return self

        def predict(self, X, return_std=False):
            X = self._check_predict_input(X, "mean_")
            return np.tile(self.mean_, (X.shape[0], 1))

        def get_state(self):
            return {"mean": self.mean_}

        def set_state(self, state):
            self.mean_ = np.asarray(state["mean"], dtype=float)
            return self

    try:
        assert "mean_value" in kinds("surrogate")
        with pytest.raises(SurroflowError, match=r"unknown hyperparameter\(s\) \['offset'\].*'shift'"):
            make_estimator("mean_value", {"offset": 1.0})
        X, Y = regression_data(10)
        model = make_estimator("mean_value", {"shift": 1.0}).fit(X, Y)
        back = load(save(model, tmp_path / "mv.nc"))
        np.testing.assert_array_equal(back.predict(X[:2]), model.predict(X[:2]))
        assert back.shift == 1.0
    finally:
        registry._CLASSES.pop(("surrogate", "mean_value"))

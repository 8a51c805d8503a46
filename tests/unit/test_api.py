"""The Python API (surroflow.api): the README example as written, on model files made by the
stages' own writers; predictions equal the reduced model's; inputs checked by name and range;
std fields; forecasters; batched prediction faster per query than single calls."""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import surroflow as sf
from surroflow import SurroflowError, SurroflowWarning
from surroflow.io import write_dataset

from tests.artifacts import stamp

ROOT = Path(__file__).resolve().parents[2]
RANGES = {"nu": [0.02, 0.1], "amplitude": [0.5, 1.5]}


def _burgers_generate(n: int, seed: int, split: str) -> xr.Dataset:
    from surroflow.design import make_design, resolve_parameters
    from surroflow.design import design_records
    from surroflow.simulators import get_simulator
    from surroflow.stages.generate_batch import batch_dataset, run_samples
    settings = {"n_x": 64, "n_time": 11, "t_end": 0.5}
    sim = get_simulator("burgers", **settings)
    design = make_design(resolve_parameters(sim.parameters(), RANGES), "sobol", n, seed, split)
    results = run_samples("burgers", settings, design_records(design), None)
    return batch_dataset(sim, design, results), design


def _study(root: Path) -> Path:
    """``results/burgers`` (a GP and an RBF model on global bases, a GP on local bases) and
    ``results/lorenz63_forecast`` (opinf), written as the stages write them."""
    from surroflow.forecast import make_forecaster
    from surroflow.reduction import POD
    from surroflow.reduction.local import LocalPOD
    from surroflow.snapshots import snapshot_inputs, snapshot_matrix
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator
    from surroflow.surrogates.state import to_dataset
    from surroflow.snapshots import snapshot_groups
    from surroflow.surrogates.conformal import split_conformal
    study = root / "results" / "burgers"
    train, _ = _burgers_generate(24, 0, "train")
    _, test_design = _burgers_generate(8, 1, "test")
    cal, _ = _burgers_generate(20, 2, "calibration")
    write_dataset(test_design.assign_attrs(stamp({}, "make_design", study / "design" / "test.nc")),
                  study / "design" / "test.nc")
    for name, kind, basis in (("gp", "gaussian_process", "global"), ("rbf", "rbf", "global"),
                              ("gp_local", "gaussian_process", "local")):
        b = (POD(method="exact", energy=0.99999) if basis == "global" else
             LocalPOD(n_clusters=2, rank=4, random_state=0))
        rm = ReducedModel({"u": b}, make_estimator(kind, {}, "surrogate"))
        if basis == "local":
            b.fit(snapshot_matrix(train, "u"), inputs=snapshot_inputs(train, "u"))
        rm.fit_dataset(train)
        if name != "gp_local":              # the local GP is left uncalibrated (an error asked for a band)
            rm.calibration_ = split_conformal(rm, snapshot_inputs(cal, "u"), {"u": snapshot_matrix(cal, "u")},
                                              snapshot_groups(cal, "u"))
        path = study / "train" / f"{name}.nc"
        write_dataset(rm.to_dataset(stamp({"model_name": name, "model_kind": kind}, "train_surrogate", path)), path)
    from surroflow.simulators import get_simulator
    sim = get_simulator("lorenz63", dt=0.01, dt_sample=0.01, n_steps=400, transient=5.0)
    traj = np.stack([np.asarray(r[sim.variable]) for r in sim.run_batch([{"ic": 0.1}, {"ic": 0.7}])])
    fc = make_forecaster("opinf").fit(traj, dt=0.01)
    path = root / "results" / "lorenz63_forecast" / "train" / "opinf.nc"
    write_dataset(to_dataset(fc).assign_attrs(stamp({"model_name": "opinf", "model_kind": "opinf", "state": "full",
                                                     "dt_sample": 0.01}, "train_forecaster", path)), path)
    return study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("api"))


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"## Use a trained model.*?```python\n(.*?)```", text, re.S)
    assert m, "README.md has no '## Use a trained model' section with a python example"
    return m.group(1)


def test_readme_example_runs_as_written(study, monkeypatch):
    monkeypatch.chdir(study.parents[1])
    scope: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)      # noqa: S102 - our own README
    ds, traj, band = scope["ds"], scope["traj"], scope["band"]
    assert set(ds.data_vars) >= {"u", "u_std", "design"} and ds["u"].attrs["units"]
    assert ds.sizes["sample"] == 8 and np.all(ds["u_std"].values >= 0)
    assert np.all(band["u_lower"].values < band["u"].values) and np.all(band["u"].values < band["u_upper"].values)
    assert traj.dims == ("sample", "lead", "component") and traj.sizes["lead"] == 500


def test_predictions_equal_the_reduced_model_for_every_input_form(study):
    from surroflow.surrogates.reduced import ReducedModel
    model = sf.load_model(study, "gp")
    rm = ReducedModel.from_dataset(xr.open_dataset(study / "train" / "gp.nc"))
    X = np.array([[0.05, 1.0], [0.03, 0.7], [0.09, 1.4]])
    expected = rm.predict_fields(X)["u"]
    forms = [{"nu": X[:, 0], "amplitude": X[:, 1]}, {"amplitude": X[:, 1], "nu": X[:, 0]}, X,
             xr.DataArray(X[:, ::-1], dims=("sample", "parameter"), coords={"parameter": ["amplitude", "nu"]})]
    import pandas as pd
    forms.append(pd.DataFrame({"amplitude": X[:, 1], "nu": X[:, 0]}))
    first = model.predict(forms[0])["u"].values
    np.testing.assert_allclose(first, expected, rtol=1e-7, atol=1e-12)
    for f in forms:
        ds = model.predict(f)
        np.testing.assert_array_equal(ds["u"].values, first)
        assert ds["u"].dims == ("sample", "time", "x") and ds["x"].attrs.get("units")
        np.testing.assert_array_equal(ds["design"].values, X)
    one = model.predict({"nu": 0.05, "amplitude": 1.0})
    np.testing.assert_allclose(one["u"].values[0], first[0], rtol=1e-9, atol=1e-12)


def test_design_file_input_keeps_its_sample_ids(study):
    model = sf.load_model(study, "rbf")
    design = xr.open_dataset(study / "design" / "test.nc")
    ds = model.predict(design)
    np.testing.assert_array_equal(ds["sample"].values, design["sample"].values)


def test_names_and_ranges_are_checked(study):
    model = sf.load_model(study, "gp")
    with pytest.raises(SurroflowError, match=r"missing \['amplitude'\]"):
        model.predict({"nu": 0.05})
    with pytest.raises(SurroflowError, match=r"unknown \['viscosity'\]"):
        model.predict({"nu": 0.05, "amplitude": 1.0, "viscosity": 1.0})
    with pytest.raises(SurroflowError, match="parameter 'nu' of input row 1 is nan"):
        model.predict({"nu": [0.05, np.nan], "amplitude": [1.0, 1.0]})
    with pytest.raises(SurroflowError, match=r"'nu': 1 of 2 input rows outside the training range \[0.02, 0.1\]"):
        model.predict({"nu": [0.05, 0.5], "amplitude": [1.0, 1.0]}, extrapolate=False)
    with pytest.warns(SurroflowWarning, match="'amplitude'.*outside the training range"):
        ds = model.predict({"nu": 0.05, "amplitude": 2.0})
    assert np.all(np.isfinite(ds["u"].values))
    with pytest.raises(SurroflowError, match="no model 'mlp'.*trained models there: \\['gp', 'gp_local', 'rbf'\\]"):
        sf.load_model(study, "mlp")
    with pytest.raises(SurroflowError, match="gives no predictive std"):
        sf.load_model(study, "rbf").predict({"nu": 0.05, "amplitude": 1.0}, return_std=True)


def test_std_fields_are_the_coefficient_std_through_the_modes(study):
    """Global and local bases: the field std is sqrt(sum_k (s_k std_k)^2 phi_k^2), small at a
    training point and larger away from the data."""
    from surroflow.surrogates.reduced import ReducedModel
    for name in ("gp", "gp_local"):
        model = sf.load_model(study, name)
        rm = model.reduced_model
        X = np.array([[0.06, 1.1]])
        ds = model.predict(X, return_std=True)
        rows = np.column_stack([np.repeat(X, len(rm.times_), axis=0), rm.times_])
        if name == "gp":
            mean, std = rm.regressor_.predict(X, return_std=True)
            S = std.reshape(len(rm.times_), -1) * rm._coefficient_scales()
            expected = np.sqrt(S ** 2 @ rm.bases["u"].modes_ ** 2)
        else:
            labels = rm.select(rows)
            expected = np.empty((len(rows), rm.bases["u"].weights_.size))
            for c, pod in enumerate(rm.bases["u"].pods_):
                sel = labels == c
                if sel.any():
                    _, s = rm.regressors_[c].predict(rows[sel], return_std=True)
                    expected[sel] = np.sqrt(s ** 2 @ pod.modes_ ** 2)
        np.testing.assert_allclose(ds["u_std"].values[0], expected, rtol=1e-10, atol=1e-14)
        assert isinstance(rm, ReducedModel)


def test_interval_is_the_stored_conformal_band_and_refused_where_it_does_not_exist(study):
    model = sf.load_model(study, "rbf")
    cal = model.reduced_model.calibration_
    X = np.array([[0.06, 1.1], [0.03, 0.7]])
    ds = model.predict(X, interval=0.9)
    q = cal.quantile(0.9)
    half = q * cal.scale["u"].reshape(ds["u"].shape[1:])
    np.testing.assert_allclose(ds["u_upper"].values - ds["u"].values, np.broadcast_to(half, ds["u"].shape), rtol=1e-12)
    np.testing.assert_allclose(ds["u"].values - ds["u_lower"].values, np.broadcast_to(half, ds["u"].shape), rtol=1e-12)
    assert ds["u_upper"].dims == ds["u"].dims and ds["u_upper"].attrs["units"] == ds["u"].attrs["units"]
    assert ds.attrs["interval_calibration"] == "split_conformal" and ds.attrs["interval_n_calibration"] == 20
    assert np.all(model.predict(X, interval=0.95)["u_upper"].values >= ds["u_upper"].values)   # wider at 95%
    with pytest.raises(SurroflowError, match=r"no conformal interval at level 0.99: 20 calibration samples: .* needs at least 99"):
        model.predict(X, interval=0.99)
    with pytest.raises(SurroflowError, match="must lie in"):
        model.predict(X, interval=1.5)
    with pytest.raises(SurroflowError, match="training times only"):
        model.predict(X, interval=0.9, times=[0.0, 0.1])
    with pytest.raises(SurroflowError, match="'gp_local': no conformal interval .* no conformal band"):
        sf.load_model(study, "gp_local").predict(X, interval=0.9)


def test_forecaster_rollout(study):
    fc = sf.load_model(study.parent / "lorenz63_forecast", "opinf")
    one = fc.rollout([1.0, 1.0, 20.0], 10)
    batch = fc.rollout(np.array([[[1.0, 1.0, 20.0]], [[-3.0, 2.0, 25.0]]]), 10)
    np.testing.assert_allclose(one.values[0], batch.values[0], rtol=1e-12)
    np.testing.assert_allclose(batch["lead"].values, 0.01 * np.arange(1, 11))
    with pytest.raises(SurroflowError, match="steps states of 3 components"):
        fc.rollout([1.0, 2.0], 5)


def test_batched_prediction_is_faster_per_query(study):
    model = sf.load_model(study, "gp")
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0.02, 0.1, 1000), rng.uniform(0.5, 1.5, 1000)])
    model.predict(X[:2])
    t0 = time.perf_counter()
    model.predict(X)
    batched = (time.perf_counter() - t0) / len(X)
    t0 = time.perf_counter()
    for row in X[:100]:
        model.predict(row[None])
    single = (time.perf_counter() - t0) / 100
    assert single > 5 * batched, (single, batched)

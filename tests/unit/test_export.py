"""Export (surroflow.export): every supported regressor kind, trained on a small Burgers study and
exported to ONNX, runs in onnxruntime and reproduces ``ReducedModel.predict_fields``; the plain
NetCDF layout of kernel surrogates runs in the numpy reference predictor (no surroflow) and
reproduces it to rounding; unsupported models are refused in one sentence; the CLI works."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.cli import main
from surroflow.export import export_model, onnx_inputs, to_onnx
from surroflow.io import write_dataset

from tests.artifacts import stamp
from tests.unit.test_api import _burgers_generate

ROOT = Path(__file__).resolve().parents[2]
#: (name, kind, hyperparameters, formulation, tolerance of the ONNX export relative to the field's
#: largest magnitude).  1e-10 wherever the graph's operations are numpy's; onnxruntime's exp differs
#: from numpy's by an ulp, which the GP's large cancelling weights amplify to ~2e-9 (its NetCDF
#: export matches exactly); an MLP in float32 computes in float32 (measured ~3e-8).
MODELS = [
    ("gp", "gaussian_process", {"random_state": 0}, "auto", 1e-7),
    ("gp_matern", "gaussian_process", {"kernel": "matern", "nu": 2.5, "random_state": 0}, "pointwise", 1e-7),
    ("rbf", "rbf", {}, "auto", 1e-10),
    ("rbf_gauss", "rbf", {"kernel": "gaussian", "epsilon": 3.0, "degree": 1}, "pointwise", 1e-10),
    ("linear", "linear", {"degree": 2}, "auto", 1e-10),
    ("mlp64", "mlp", {"hidden": [16, 16], "max_epochs": 20, "dtype": "float64", "random_state": 0}, "auto", 1e-10),
    ("mlp_silu64", "mlp", {"hidden": [8], "activation": "silu", "max_epochs": 10, "dtype": "float64",
                           "random_state": 0}, "trajectory", 1e-10),
    ("mlp32", "mlp", {"hidden": [16], "activation": "gelu", "max_epochs": 10, "random_state": 0}, "auto", 1e-5),
]
DESIGN = np.array([[0.05, 1.0], [0.031, 0.62], [0.088, 1.43], [0.07, 0.9]])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    from surroflow.reduction import POD
    from surroflow.reduction.local import LocalPOD
    from surroflow.snapshots import snapshot_inputs, snapshot_matrix
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator
    root = tmp_path_factory.mktemp("export") / "results" / "burgers"
    train, _ = _burgers_generate(16, 0, "train")
    for name, kind, params, formulation, _ in MODELS + [("local", "linear", {"degree": 1}, "auto", 0)]:
        local = name == "local"
        b = LocalPOD(n_clusters=2, rank=3, random_state=0) if local else POD(method="exact", rank=6)
        if local:
            b.fit(snapshot_matrix(train, "u"), inputs=snapshot_inputs(train, "u"))
        rm = ReducedModel({"u": b}, make_estimator(kind, params, "surrogate"), formulation=formulation)
        rm.fit_dataset(train)
        path = root / "train" / f"{name}.nc"
        write_dataset(rm.to_dataset(stamp({"model_name": name, "model_kind": kind}, "train_surrogate", path)), path)
    return root


def _reduced(study: Path, name: str):
    from surroflow.surrogates.reduced import ReducedModel
    return ReducedModel.from_dataset(xr.open_dataset(study / "train" / f"{name}.nc"))


def _assert_close(got: np.ndarray, expected: np.ndarray, rtol: float) -> float:
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale * 1e-2)
    return float(np.max(np.abs(got - expected))) / scale


@pytest.mark.parametrize("name,tol", [(m[0], m[4]) for m in MODELS])
def test_onnx_export_reproduces_predict(study, tmp_path, name, tol):
    out = export_model(study, name, tmp_path / f"{name}.onnx")
    rm = _reduced(study, name)
    onx = onnx.load(str(out))
    meta = {p.key: p.value for p in onx.metadata_props}
    assert meta["model_name"] == name and meta["formulation"] == rm.formulation_
    assert json.loads(meta["space"])["u"]["shape"] == [64]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    X = onnx_inputs(rm, DESIGN)
    assert [i.name for i in sess.get_inputs()] == ["inputs"] and X.shape[1] == len(json.loads(meta["input_names"]))
    (u,) = sess.run(["u"], {"inputs": X})
    expected = rm.predict_fields(DESIGN)["u"]                     # (sample, time, x)
    _assert_close(u.reshape(expected.shape), expected, tol)


@pytest.mark.parametrize("name", ["gp", "gp_matern", "rbf", "rbf_gauss"])
def test_netcdf_reference_reproduces_predict_without_surroflow(study, tmp_path, name):
    """The numpy reference predictor, loaded from its file in a Python without surroflow."""
    out = export_model(study, name, tmp_path / f"{name}.nc", format="netcdf")
    rm = _reduced(study, name)
    np.save(tmp_path / "x.npy", onnx_inputs(rm, DESIGN))
    script = f"""
import importlib.util, sys, numpy as np, xarray as xr
spec = importlib.util.spec_from_file_location("ref", {str(ROOT / 'src/surroflow/export_reference.py')!r})
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
np.save({str(tmp_path / 'u.npy')!r}, ref.predict(xr.open_dataset({str(out)!r}), np.load({str(tmp_path / 'x.npy')!r}))["u"])
assert not any(m.startswith("surroflow") for m in sys.modules)
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True)
    expected = rm.predict_fields(DESIGN)["u"]
    _assert_close(np.load(tmp_path / "u.npy").reshape(expected.shape), expected, 1e-10)


def test_two_variables_steady_model():
    """Two variables (one slice of the coefficients each) and no time: inputs are the parameters."""
    from surroflow.export import run_export
    from surroflow.reduction import POD
    from surroflow.surrogates.linear import PolynomialRidgeSurrogate
    from surroflow.surrogates.reduced import ReducedModel
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    grid = np.linspace(0, 1, 30)
    a = np.sin(np.outer(X[:, 0] + X[:, 1], grid * 3)) + X[:, 2:3]
    b = 100 * np.cos(np.outer(X[:, 1], grid)) * X[:, :1]
    rm = ReducedModel({"a": POD(method="exact", rank=4), "b": POD(method="exact", rank=3)},
                      PolynomialRidgeSurrogate(degree=3)).fit(X, {"a": a, "b": b})
    Xq = rng.random((5, 3))
    got = run_export(to_onnx(rm), Xq)
    for v, e in rm.predict(Xq).items():
        _assert_close(got[v], e, 1e-10)


def test_unsupported_models_are_refused_in_one_sentence(study, tmp_path):
    from surroflow.surrogates.rbf import RBFSurrogate
    with pytest.raises(SurroflowError, match="local bases has no ONNX export"):
        export_model(study, "local", tmp_path / "local.onnx")
    with pytest.raises(SurroflowError, match="netcdf export holds kernel surrogates.*'mlp' exports to onnx"):
        export_model(study, "mlp64", tmp_path / "m.nc", format="netcdf")
    with pytest.raises(SurroflowError, match="export format must be one of"):
        export_model(study, "gp", tmp_path / "m.x", format="pickle")
    rm = _reduced(study, "mlp64")
    rm.regressor_.activation = "gelu"
    with pytest.raises(SurroflowError, match="'gelu' and dtype 'float64' has no ONNX export"):
        to_onnx(rm)
    rm = _reduced(study, "rbf")
    rm.regressor_ = RBFSurrogate(neighbors=8).fit(rm.regressor_.X_train_, rm.regressor_.Y_train_)
    with pytest.raises(SurroflowError, match="neighbors=8 has no ONNX export"):
        to_onnx(rm)
    assert not list(tmp_path.iterdir())


def test_cli_export(study, tmp_path, capsys):
    out = tmp_path / "gp.onnx"
    assert main(["export", str(study), "gp", "-o", str(out)]) == 0
    assert out.is_file() and "onnx export" in capsys.readouterr().out
    assert main(["export", str(study / "train" / "rbf.nc"), "-o", str(tmp_path / "rbf.nc"), "--format", "netcdf"]) == 0
    assert (tmp_path / "rbf.nc").is_file()
    assert main(["export", str(study), "nope", "-o", str(tmp_path / "nope.onnx")]) == 2
    err = capsys.readouterr().err
    assert "no model 'nope'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["export", str(study), "local", "-o", str(tmp_path / "l.onnx")]) == 2
    assert "local bases" in capsys.readouterr().err
    assert not (tmp_path / "nope.onnx").exists() and not (tmp_path / "l.onnx").exists()

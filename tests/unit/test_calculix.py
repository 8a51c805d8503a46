"""The CalculiX plate study: settings, mesh, weights, and (with ccx) one elastic and one plastic run."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.snapshots import space_weights
from surroflow.mesh import lumped_mass_weights, plate_with_hole
from surroflow.simulators import SampleFailure, get_simulator, simulator_class
from surroflow.simulators.calculix import load_history

HAS_CCX = shutil.which("ccx") is not None
needs_ccx = pytest.mark.skipif(not HAS_CCX, reason="ccx not installed (apt-get install calculix-ccx)")
SMALL = {"n_theta": 4, "n_radial": 5, "grading": 1.2, "timeout_s": 60, "retries": 0}


# --------------------------------------------------------------------------- without ccx
def test_missing_ccx_gives_an_install_hint():
    with pytest.raises(SurroflowError, match="apt-get install calculix-ccx"):
        get_simulator("calculix_plate", ccx="surroflow-no-such-ccx")


@pytest.mark.parametrize("bad, match", [
    ({"meshsize": 3}, r"simulator.settings.meshsize: unknown setting of simulator .calculix_plate.; allowed: \["),
    ({"element": "C3D20"}, "not allowed"),
    ({"hardening": "nonlinear"}, "not allowed"),
    ({"n_theta": 2.5}, "integer"),
    ({"radius": 60.0}, "radius"),
    ({"poisson_ratio": 0.5}, "poisson_ratio"),
])
def test_settings_are_validated(bad, match):
    with pytest.raises(SurroflowError, match=match):
        get_simulator("calculix_plate", **{**SMALL, **bad, "ccx": "surroflow-no-such-ccx"})


def test_declarations_without_running():
    cls = simulator_class("calculix_plate")
    assert cls.time_dim == "step"
    assert cls.name == "calculix_plate"


def test_plate_mesh_and_lumped_mass():
    m = plate_with_hole(50.0, 40.0, 10.0, n_theta=8, n_radial=10, grading=1.1)
    assert m.cell_type == "quad" and m.n_nodes == 17 * 11 and m.n_cells == 16 * 10
    w = lumped_mass_weights(m.points, m.cells, thickness=2.0)
    assert np.all(w > 0)
    # polygonal hole: area between the exact one and that of the inscribed polygon
    exact = 2.0 * (50.0 * 40.0 - np.pi * 100.0 / 4)
    assert exact <= w.sum() <= exact + 2.0 * 100.0 * (np.pi / 4 - 16 * np.sin(np.pi / 32) / 2)
    np.testing.assert_allclose(m.points[m.node_sets["top"], 1], 40.0)
    np.testing.assert_allclose(m.points[m.node_sets["sym_y"], 0], 0.0)
    np.testing.assert_allclose(np.hypot(*m.points[m.node_sets["hole"]].T), 10.0)
    x = m.points[m.cells]                                     # counter-clockwise cells
    a, b = x[:, 1] - x[:, 0], x[:, 3] - x[:, 0]
    assert np.all(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] > 0)


def test_load_histories():
    t, a, out = load_history("monotonic", 1, 10)
    np.testing.assert_allclose(out, np.arange(1, 11) / 10)
    t, a, out = load_history("cyclic", 2, 4)
    assert out.size == 32 and out[-1] == 8.0
    np.testing.assert_allclose(np.interp([1, 3, 4, 5], t, a), [1, -1, 0, 1])


# --------------------------------------------------------------------------- with ccx
@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    if not HAS_CCX:
        pytest.skip("ccx not installed")
    root = tmp_path_factory.mktemp("ccx_runs")
    return get_simulator("calculix_plate", **SMALL, workdir_root=str(root))


@pytest.mark.calculix
@needs_ccx
def test_one_elastic_sample(plate):
    sim = plate
    out = sim.run_sample({"traction": 50.0, "yield_stress": 400.0, "hardening_modulus": 1000.0})
    n = sim.mesh.n_nodes
    shapes = {v.name: sim.output_shape(v) for v in sim.outputs()}
    assert shapes == {"displacement": (10, n, 2), "von_mises": (10, n), "peeq": (10, n)}
    assert {v.name: v.units for v in sim.outputs()} == {"displacement": "mm", "von_mises": "MPa",
                                                        "peeq": "1"}
    for name, shape in shapes.items():
        assert out[name].shape == shape and np.all(np.isfinite(out[name]))
    np.testing.assert_array_equal(out["peeq"], 0.0)            # far below yield
    u = out["displacement"]
    top = sim.mesh.node_sets["top"]
    assert np.all(u[-1, top, 1] > 0)                           # the plate stretches in y
    # elastic: proportional to the load factor
    steps = sim.coordinates()["step"].values
    np.testing.assert_allclose(u, u[-1][None] * steps[:, None, None], rtol=1e-3, atol=1e-7)
    # stress concentration at the hole (x = radius, y = 0): about 3x the remote traction
    k = sim.mesh.node_sets["hole"][0]
    assert 2.5 < out["von_mises"][-1, k] / 50.0 < 4.0
    assert list(sim.runner.workdir_root.iterdir()) == []       # successful runs are cleaned up


@pytest.mark.calculix
@needs_ccx
def test_plastic_sample_and_mesh_variables(plate):
    sim = pickle.loads(pickle.dumps(plate))                   # as shipped to a dask worker
    out = sim.run_sample({"traction": 150.0, "yield_stress": 200.0, "hardening_modulus": 1000.0})
    peeq = out["peeq"]
    assert peeq[-1].max() > 1e-4 and np.all(peeq >= 0)
    # the hole edge yields once sigma_vm reaches sigma_y: zero at the first steps
    assert peeq[0].max() == 0.0
    assert np.all(np.diff(peeq.max(axis=1)) >= 0)              # monotonic loading
    mv = sim.mesh_variables()
    dims, coords, attrs = mv["node_coordinates"]
    assert dims == ("node", "space") and coords.shape == (sim.mesh.n_nodes, 2) and attrs["units"] == "mm"
    dims, conn, attrs = mv["connectivity"]
    assert dims == ("cell", "vertex") and attrs["cell_type"] == "quad" and conn.max() == sim.mesh.n_nodes - 1
    ds = xr.Dataset({k: (d, v, a) for k, (d, v, a) in mv.items()})
    ds["displacement"] = (("sample", "step", "node", "component"), out["displacement"][None])
    ds["peeq"] = (("sample", "step", "node"), peeq[None])
    ds.attrs["time_dim"] = "step"
    w = space_weights(ds, "displacement", "mass")          # mass(node) broadcast over components
    assert w.shape == (2 * sim.mesh.n_nodes,)
    np.testing.assert_allclose(w[0::2], w[1::2])
    np.testing.assert_allclose(w[0::2], mv["mass"][1])
    np.testing.assert_allclose(space_weights(ds, "peeq", "quadrature").sum(), 50.0 * 50.0 - np.pi * 25.0, rtol=5e-3)


@pytest.mark.calculix
@needs_ccx
def test_hostile_value_never_reaches_ccx(plate):
    with pytest.raises(SampleFailure, match="not a number"):
        plate.run_sample({"traction": "1; rm -rf /", "yield_stress": 300.0, "hardening_modulus": 1e3})
    with pytest.raises(SampleFailure, match="not finite"):
        plate.run_sample({"traction": float("nan")})

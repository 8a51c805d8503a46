"""Local bases: seeded clustering, the angle dissimilarity, overlap, the selector, the a-priori
criterion, NetCDF round trips, the file-level functions and stages, and the weights of local
and global bases on a mesh (both the lumped mass).  The reduced models built on these bases
are tested in test_reduced_model.py."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError
from surroflow.config import fill_defaults, load_schema
from surroflow.io import open_dataset, write_dataset
from surroflow.reduction.criterion import efficiency_criterion, projection_error_curves
from surroflow.reduction.files import fit_local_pod_file, projection_study_file
from surroflow.reduction.local import LocalPOD
from surroflow.reduction.pod import POD
from surroflow.simulators.advection import solve_spectral
from surroflow.stages import StageContext, fit_local_pod, fit_pod
from tests.artifacts import context, stamp

N_X = 128
X_GRID = np.arange(N_X) / N_X


def travelling(n_samples: int = 24, n_time: int = 21, seed: int = 0, width: float = 0.04):
    """Pulses advected around a periodic domain: inputs (velocity, nu, t), snapshots, groups."""
    rng = np.random.default_rng(seed)
    c, nu = rng.uniform(0.5, 1.5, n_samples), rng.uniform(1e-4, 1e-3, n_samples)
    t = np.linspace(0.0, 1.0, n_time)
    X = np.concatenate([solve_spectral(ci, ni, 1.0, t, N_X, width=width) for ci, ni in zip(c, nu)])
    inputs = np.column_stack([np.repeat(c, n_time), np.repeat(nu, n_time), np.tile(t, n_samples)])
    return inputs, X, np.repeat(np.arange(n_samples), n_time)


def three_shapes(n_per: int = 60, seed: int = 0):
    """Well-separated clusters: three different shapes, random amplitudes; input p picks the shape."""
    rng = np.random.default_rng(seed)
    shapes = [np.sin(2 * np.pi * X_GRID), np.exp(-(X_GRID - 0.5) ** 2 / 0.005), np.sign(X_GRID - 0.3)]
    p = rng.uniform(0.0, 3.0, 3 * n_per)
    which = np.minimum(p.astype(int), 2)
    amp = rng.uniform(0.5, 2.0, p.size)
    X = amp[:, None] * np.stack([shapes[j] for j in which]) + 0.01 * rng.standard_normal((p.size, N_X))
    inputs = np.column_stack([p, amp])
    return inputs, X, which


W = np.full(N_X, 1.0 / N_X)
NC = "nearest_centroid"


def section(name: str, **values):
    """A config section as validation leaves it (the schema's defaults filled in)."""
    schema = load_schema()
    return fill_defaults(dict(values), schema["$defs"][name], schema)


# ------------------------------------------------------------------ clustering
@pytest.mark.parametrize("dissimilarity", ["euclidean", "angle"])
@pytest.mark.parametrize("threshold", [20000, 100])        # KMeans and MiniBatchKMeans
def test_clustering_is_seeded(dissimilarity, threshold):
    _, X, _ = travelling()
    a = LocalPOD(n_clusters=4, dissimilarity=dissimilarity, rank=5, random_state=3, selector=NC,
                 minibatch_threshold=threshold).fit(X, W)
    b = LocalPOD(n_clusters=4, dissimilarity=dissimilarity, rank=5, random_state=3, selector=NC,
                 minibatch_threshold=threshold).fit(X, W)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    for p, q in zip(a.pods_, b.pods_):
        np.testing.assert_array_equal(p.modes_, q.modes_)
    assert sorted(np.unique(a.labels_)) == [0, 1, 2, 3]
    assert a.labels_[0] == 0                        # canonical numbering: by first snapshot


def test_angle_dissimilarity_ignores_amplitude():
    _, X, _ = travelling()
    scale = np.random.default_rng(1).uniform(0.2, 5.0, X.shape[0])[:, None]
    a = LocalPOD(n_clusters=4, dissimilarity="angle", rank=3, selector=NC).fit(X, W)
    b = LocalPOD(n_clusters=4, dissimilarity="angle", rank=3, selector=NC).fit(X * scale, W)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.select_by_state(3.7 * X[::7]), a.labels_[::7])


def test_overlap_enlarges_clusters_across_their_boundary():
    _, X, _ = travelling()
    plain = LocalPOD(n_clusters=4, rank=3, overlap=0.0, selector=NC).fit(X, W)
    wide = LocalPOD(n_clusters=4, rank=3, overlap=0.25, selector=NC).fit(X, W)
    assert all(plain.members_[c].size == np.sum(plain.labels_ == c) for c in range(4))
    np.testing.assert_array_equal(plain.labels_, wide.labels_)
    for c in range(4):
        own = np.flatnonzero(wide.labels_ == c)
        assert np.all(np.isin(own, wide.members_[c]))
        assert wide.members_[c].size == own.size + int(np.ceil(0.25 * own.size))


def test_local_bases_beat_the_global_basis_on_travelling_pulses():
    _, X, _ = travelling()
    _, Xt, _ = travelling(n_samples=6, seed=9)
    curves = projection_error_curves(X, Xt, W, (1, 4), max_rank=24, dissimilarity="angle", overlap=0.0)
    r_global = 20
    target = curves[1][r_global]
    r_local = int(np.flatnonzero(curves[4] <= target)[0])
    assert r_local <= r_global // 2, (r_local, target)


# ------------------------------------------------------------------ selector
@pytest.mark.parametrize("selector", ["knn", "random_forest", "sklearn.tree.DecisionTreeClassifier"])
def test_classifier_selector_picks_the_right_cluster(selector):
    inputs, X, which = three_shapes()
    lp = LocalPOD(n_clusters=3, dissimilarity="angle", rank=2, selector=selector).fit(X, W, inputs=inputs)
    # the clusters are the shapes, up to numbering
    for j in range(3):
        assert np.unique(lp.labels_[which == j]).size == 1
    q_inputs, q_X, q_which = three_shapes(n_per=20, seed=5)
    away = np.abs(q_inputs[:, 0] - np.round(q_inputs[:, 0])) > 0.05     # not on a class boundary
    truth = lp.select_by_state(q_X)
    np.testing.assert_array_equal(lp.select(inputs=q_inputs)[away], truth[away])
    mapping = {j: lp.labels_[which == j][0] for j in range(3)}
    np.testing.assert_array_equal(truth, [mapping[j] for j in q_which])


def test_nearest_centroid_selector_needs_a_state():
    inputs, X, _ = three_shapes()
    lp = LocalPOD(n_clusters=3, rank=2, selector=NC).fit(X, W)
    with pytest.raises(SurroflowError, match="needs the state"):
        lp.select_by_inputs(inputs)
    np.testing.assert_array_equal(lp.select(states=X), lp.labels_)
    with pytest.raises(SurroflowError, match="pass inputs"):
        LocalPOD(n_clusters=3, selector="knn").fit(X, W)


# ------------------------------------------------------------------ criterion
def test_criterion_picks_several_clusters_for_travelling_fronts():
    _, X, groups = travelling()
    res = efficiency_criterion(X, W, candidates=[1, 2, 4, 8], tol=1e-2, dissimilarity="angle",
                               groups=groups, random_state=0)
    assert res.chosen > 1
    assert res.mean_rank[0] > 2 * res.mean_rank[list(res.candidates).index(res.chosen)]
    assert res.error_curves.shape[0] == 4 and np.all(np.diff(res.error_curves[0]) <= 1e-12)
    ds = res.to_dataset()
    assert int(ds.attrs["chosen_n_clusters"]) == res.chosen


def test_criterion_picks_one_cluster_for_low_rank_data():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (400, 3))
    X = a @ np.stack([np.sin(2 * np.pi * X_GRID), np.cos(2 * np.pi * X_GRID), X_GRID ** 2]) + 2.0
    X += 1e-5 * rng.standard_normal(X.shape)
    res = efficiency_criterion(X, W, candidates=[1, 2, 4, 8], tol=1e-3, groups=np.arange(400) // 10)
    assert res.chosen == 1
    assert res.mean_rank[0] <= 3


# ------------------------------------------------------------------ storage
def test_dataset_round_trip(tmp_path):
    inputs, X, _ = travelling()
    lp = LocalPOD(n_clusters=4, dissimilarity="angle", overlap=0.1, tolerance=1e-2, selector="knn",
                  random_state=2).fit(X, W, inputs=inputs)
    # every local rank is the smallest reaching the tolerance on its cluster's snapshots
    for c, pod in enumerate(lp.pods_):
        Xc = X[lp.members_[c]]
        norm2 = np.sum(Xc ** 2 * W)

        d = Xc - pod.mean_
        err = [np.sqrt(np.sum((d - ((d * W) @ pod.modes_[:r].T) @ pod.modes_[:r]) ** 2 * W) / norm2)
               for r in range(pod.n_modes_ + 1)]
        r = int(lp.n_modes_[c])
        assert err[r] <= 1e-2 + 1e-12 and (r == 1 or err[r - 1] > 1e-2), (c, r, err[r])
    ds = lp.to_dataset(("x",), {"x": X_GRID}, (N_X,), attrs={"variable": "u"})
    assert ds["modes"].dims == ("cluster", "mode", "x") and ds.sizes["cluster"] == 4
    write_dataset(ds, tmp_path / "local.nc")
    back = LocalPOD.from_dataset(open_dataset(tmp_path / "local.nc"))
    q_inputs, q_X, _ = travelling(n_samples=4, seed=5)
    np.testing.assert_array_equal(back.select(inputs=q_inputs), lp.select(inputs=q_inputs))
    np.testing.assert_array_equal(back.select_by_state(q_X), lp.select_by_state(q_X))
    np.testing.assert_allclose(back.project(q_X), lp.project(q_X), atol=1e-12)
    np.testing.assert_array_equal(back.n_modes_, lp.n_modes_)
    xr.testing.assert_allclose(back.to_dataset(("x",), {"x": X_GRID}, (N_X,), attrs={"variable": "u"}), ds)


def generate_like(path, inputs: np.ndarray, X: np.ndarray, n_time: int) -> None:
    n = X.shape[0] // n_time
    ds = xr.Dataset({"u": (("sample", "time", "x"), X.reshape(n, n_time, N_X)),
                     "status": ("sample", np.zeros(n, dtype="i1")),
                     "design": (("sample", "parameter"), inputs[::n_time, :2])},
                    coords={"x": ("x", X_GRID, {"periodic": 1}), "time": inputs[:n_time, 2],
                            "parameter": ["velocity", "nu"]},
                    attrs={"time_dim": "time", "stage": "collect_batches"})
    write_dataset(ds, path)


def test_file_level_functions(tmp_path):
    inputs, X, _ = travelling(n_samples=20)
    q_inputs, q_X, _ = travelling(n_samples=4, seed=3)
    generate_like(tmp_path / "train.nc", inputs, X, 21)
    generate_like(tmp_path / "test.nc", q_inputs, q_X, 21)
    clustering = section("clustering", n_clusters="auto", candidates=[1, 2, 4], dissimilarity="angle",
                         selector="knn", tolerance=0.02)
    out = fit_local_pod_file(tmp_path / "train.nc", "u", tmp_path / "local.nc", clustering, method="exact",
                             rank=None, energy=0.9999, weights="quadrature", criterion_nc=tmp_path / "criterion.nc",
                             criterion_figure=tmp_path / "criterion.png")
    ds = open_dataset(out)
    assert ds.sizes["cluster"] > 1 and ds.attrs["variable"] == "u"
    assert ds.attrs["overlap"] == pytest.approx(0.1)               # the schema's default reached the basis
    assert (tmp_path / "criterion.png").exists() and (tmp_path / "criterion.pdf").exists()
    assert int(open_dataset(tmp_path / "criterion.nc").attrs["chosen_n_clusters"]) == ds.sizes["cluster"]
    summary = projection_study_file(tmp_path / "train.nc", tmp_path / "test.nc", "u", tmp_path / "proj.png",
                                    tmp_path / "proj.nc", section("clustering", dissimilarity="angle"),
                                    weights="quadrature", max_rank=20, n_clusters=(2, 4))
    assert (tmp_path / "proj.pdf").exists() and len(summary["global"]) == 21
    curves = open_dataset(tmp_path / "proj.nc")
    assert curves["n_clusters"].values.tolist() == [1, 2, 4]
    # the global curve is the test projection error of the global POD of the training set
    Xtr, Xte = X, q_X
    pod = POD(rank=10, energy=None).fit(Xtr, W)
    err10 = np.sqrt(np.sum(pod.norm(Xte - pod.project(Xte)) ** 2) / np.sum(pod.norm(Xte) ** 2))
    assert summary["global"][10] == pytest.approx(err10, rel=1e-6)
    # a fixed number of clusters still writes the criterion, and the generate stage is checked
    fixed = section("clustering", n_clusters=2, selector=NC)
    fit_local_pod_file(tmp_path / "train.nc", "u", tmp_path / "fixed.nc", fixed, method="exact", rank=None,
                       energy=0.9999, weights="quadrature", criterion_nc=tmp_path / "crit2.nc")
    assert open_dataset(tmp_path / "fixed.nc").sizes["cluster"] == 2 and (tmp_path / "crit2.nc").exists()
    with pytest.raises(SurroflowError, match="reduction.clustering is null"):
        fit_local_pod_file(tmp_path / "train.nc", "u", tmp_path / "x.nc", None, method="exact", rank=None,
                           energy=0.9999, weights="quadrature")
    with pytest.raises(SurroflowError, match="expected a"):
        fit_local_pod_file(tmp_path / "local.nc", "u", tmp_path / "x.nc", fixed, method="exact", rank=None,
                           energy=0.9999, weights="quadrature")


# ------------------------------------------------------------------ mesh: local and global weights
def mesh_dataset(path, n_samples: int = 12, n_step: int = 3, n_node: int = 40, seed: int = 0) -> np.ndarray:
    """A generate-like mesh dataset: ``mass(node)`` (lumped, non-uniform), fields
    ``u(sample, step, node)`` and ``d(sample, step, node, component)``; returns the mass."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1, (n_node, 2))
    mass = rng.uniform(0.5, 2.0, n_node) / n_node
    p = rng.uniform(0.5, 1.5, (n_samples, 2))
    step = np.arange(1, n_step + 1, dtype=float)
    u = (p[:, None, None, 0] * step[None, :, None] * np.sin(3 * xy[None, None, :, 0])
         + p[:, None, None, 1] * np.cos(2 * xy[None, None, :, 1] * step[None, :, None]))
    d = np.stack([u, 0.5 * u ** 2], axis=-1)
    ds = xr.Dataset({"u": (("sample", "step", "node"), u, {"units": "m"}),
                     "d": (("sample", "step", "node", "component"), d, {"units": "m"}),
                     "mass": (("node",), mass, {"long_name": "lumped nodal mass"}),
                     "node_coordinates": (("node", "coordinate"), xy),
                     "status": ("sample", np.zeros(n_samples, dtype="i1")),
                     "design": (("sample", "parameter"), p)},
                    coords={"step": step, "parameter": ["load", "stiffness"], "component": ["x", "y"]},
                    attrs=stamp({"time_dim": "step", "split": "train"}, "collect_batches", path, study="mesh"))
    write_dataset(ds, path)
    return mass


def stage_context(stage: str, variable: str, **reduction) -> StageContext:
    red = section("reduction", **reduction)
    return context(stage, "mesh", {"variable": variable}, reduction=red)


@pytest.mark.parametrize("weights", ["mass", "quadrature"])
def test_local_and_global_bases_on_a_mesh_use_the_lumped_mass(tmp_path, weights):
    mass = mesh_dataset(tmp_path / "train.nc")
    clustering = {"n_clusters": 2, "selector": "knn", "candidates": [1, 2]}
    for variable, w_expected in (("u", mass), ("d", np.repeat(mass, 2))):
        fit_pod.run({"train": str(tmp_path / "train.nc")}, {"basis": str(tmp_path / f"g_{variable}.nc")},
                    stage_context("fit_pod", variable, weights=weights))
        outs = {k: str(tmp_path / f"{k}_{variable}{ext}") for k, ext in
                (("basis", ".nc"), ("criterion", ".nc"), ("figure", ".png"))}
        fit_local_pod.run({"train": str(tmp_path / "train.nc")}, outs,
                          stage_context("fit_local_pod", variable, weights=weights, clustering=clustering))
        glob = open_dataset(tmp_path / f"g_{variable}.nc", stage="fit_pod")
        loc = open_dataset(outs["basis"], stage="fit_local_pod")
        for basis in (glob, loc):
            assert basis["weights"].dims == glob["modes"].dims[1:]
            np.testing.assert_allclose(basis["weights"].values.reshape(-1), w_expected, rtol=0, atol=0)
        assert glob.attrs["fit_mode"] == "in_memory" and loc.attrs["basis"] == "local"
        # the global modes are orthonormal in the mass inner product
        modes = glob["modes"].values.reshape(glob.sizes["mode"], -1)
        np.testing.assert_allclose(modes @ np.diag(w_expected) @ modes.T, np.eye(modes.shape[0]), atol=1e-10)

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from surroflow import SurroflowError
from surroflow.reduction.pod import POD, choose_rank
from surroflow.snapshots import grid_weights


def _data(n=60, m=40, seed=0):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(n, 8)))[0]
    V = np.linalg.qr(rng.normal(size=(m, 8)))[0]
    return (U * (10.0 ** -np.arange(8))) @ V.T + 3.0


def test_round_trip_full_rank():
    X = _data()
    pod = POD(rank=8).fit(X)
    np.testing.assert_allclose(pod.inverse_transform(pod.transform(X)), X, atol=1e-10)


def test_inverse_transform_into_a_given_array():
    """``out=`` writes the same fields in place (the blocked reconstruction of a batched query)."""
    X = _data()
    pod = POD(rank=5).fit(X)
    Z = pod.transform(X)
    out = np.full_like(X, np.nan)
    got = pod.inverse_transform(Z[3:10], out=out[3:10])
    np.testing.assert_allclose(out[3:10], pod.inverse_transform(Z[3:10]), rtol=1e-13, atol=1e-13)
    assert np.shares_memory(got, out) and np.isnan(out[:3]).all() and np.isnan(out[10:]).all()


def test_matches_numpy_svd():
    X = _data()
    pod = POD(rank=5).fit(X)
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    np.testing.assert_allclose(pod.singular_values_[:8], s[:8], rtol=1e-10)
    assert np.max(subspace_angles(pod.modes_.T, vt[:5].T)) < 1e-8


def test_weighted_modes_are_orthonormal_in_weighted_inner_product():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 1, 50))
    w = grid_weights(x, periodic=False)
    X = np.array([np.sin(np.pi * k * x) * a for k in (1, 2, 3) for a in rng.uniform(0.5, 2, 5)])
    pod = POD(rank=3).fit(X, weights=w)
    G = pod.modes_ @ np.diag(w) @ pod.modes_.T
    np.testing.assert_allclose(G, np.eye(3), atol=1e-10)


def test_energy_rank_selection_and_signs():
    s = np.array([10.0, 1.0, 0.1, 0.01])
    assert choose_rank(s, 0.99, None) == 1  # 100/101.0101 = 0.98999..+
    assert choose_rank(s, 0.995, None) == 2
    assert choose_rank(s, None, 3) == 3
    X = _data()
    a = POD(rank=4).fit(X).modes_
    b = POD(rank=4).fit(X[::-1]).modes_
    np.testing.assert_allclose(a, b, atol=1e-8)  # deterministic signs


def test_energy_is_relative_to_the_full_spectrum_for_every_method():
    X = _data(200, 120) + 1e-6 * np.random.default_rng(3).standard_normal((200, 120))
    exact = POD(method="exact", energy=None).fit(X)
    total = np.sum((X - X.mean(axis=0)) ** 2)
    for method in ("exact", "tsqr", "randomized"):
        pod = POD(method=method, rank=5, energy=None).fit(X)
        np.testing.assert_allclose(pod.energy_[:5], exact.energy_[:5], rtol=1e-8)
        np.testing.assert_allclose(pod.energy_[4], np.sum(exact.singular_values_[:5] ** 2) / total, rtol=1e-8)


def test_constructor_defaults_equal_the_schema_defaults():
    import inspect

    from surroflow.config import load_schema
    from surroflow.reduction.local import LocalPOD
    schema = load_schema()
    red = schema["$defs"]["reduction"]["properties"]
    clus = schema["$defs"]["clustering"]["properties"]

    def defaults(cls):
        return {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}

    pod = defaults(POD)
    pod_keys = {"method": "method", "rank": "rank", "energy": "energy", "oversampling": "oversampling",
                "power_iterations": "power_iterations", "random_state": "seed", "chunk_snapshots": "chunk_snapshots"}
    for arg, key in pod_keys.items():
        assert pod[arg] == red[key]["default"], (arg, key)
    local = defaults(LocalPOD)
    local_keys = {"dissimilarity": clus["dissimilarity"], "overlap": clus["overlap"], "rank": clus["local_rank"],
                  "tolerance": clus["tolerance"], "selector": clus["selector"], "random_state": clus["seed"],
                  "minibatch_threshold": clus["minibatch_threshold"], "energy": red["energy"],
                  "method": red["method"]}
    for arg, sub in local_keys.items():
        assert local[arg] == sub["default"], arg
    assert "n_clusters" not in local           # required: 'auto' is resolved by the criterion


def test_non_finite_snapshots_are_refused():
    X = _data()
    X[3, 4] = np.nan
    with pytest.raises(SurroflowError, match="non-finite"):
        POD().fit(X)


def test_bad_method_and_weights_are_named():
    X = _data()
    with pytest.raises(SurroflowError, match="reduction.method='qr' is not allowed"):
        POD(method="qr").fit(X)
    with pytest.raises(SurroflowError, match="weights must be positive"):
        POD().fit(X, weights=-np.ones(X.shape[1]))

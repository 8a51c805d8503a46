import numpy as np
import pytest
from scipy.linalg import subspace_angles

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


def test_non_finite_snapshots_are_refused():
    X = _data()
    X[3, 4] = np.nan
    with pytest.raises(Exception, match="non-finite"):
        POD().fit(X)

"""Snapshot clustering for local bases: the feature map (reduced coordinates), seeded k-means
with the ``euclidean`` or ``angle`` dissimilarity, overlap across cluster boundaries, and the
selector classifiers.

* ``euclidean``: distance between the weighted-L2 projections of the snapshots (coordinates in
  a global POD basis: the Euclidean distance of coordinates *is* the weighted L2 distance);
* ``angle``: the snapshots are first normalised to unit weighted norm and clustered on the unit
  sphere (spherical k-means, cosine assignment), so two snapshots with the same shape and
  different amplitude (a decaying pulse) fall in the same cluster.

``overlap`` enlarges each cluster by the snapshots of other clusters nearest to its boundary
(smallest margin ``d(x, c) - d(x, own)``).  The selector picks the local basis online:
``nearest_centroid`` on the reduced state, or a scikit-learn classifier on the surrogate inputs
(``knn``, ``random_forest``, or any classifier given by its import path), stored as its
training data and refit deterministically on load (no pickles).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .. import SurroflowError
from .linalg import choose_rank
from .pod import POD

DISSIMILARITIES = ("euclidean", "angle")
SELECTORS = ("nearest_centroid", "knn", "random_forest")
#: scikit-learn classifiers the selector may name by import path (refit on load)
_CLASSIFIER_ALIASES = {
    "knn": "sklearn.neighbors.KNeighborsClassifier",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
}
_TINY = np.finfo(float).tiny


# =========================================================================== features
@dataclass
class FeatureMap:
    """Reduced coordinates used for clustering and nearest-centroid selection.

    ``euclidean``: coordinates of ``x - mean`` in a POD basis (weighted).  ``angle``: coordinates
    of ``x / ||x||_w`` in an uncentred POD basis of the normalised snapshots.
    """

    dissimilarity: str
    modes: np.ndarray          # (r, n_space), w-orthonormal
    mean: np.ndarray           # (n_space,) zeros for angle
    weights: np.ndarray        # (n_space,)

    @classmethod
    def fit(cls, X: np.ndarray, weights: np.ndarray, dissimilarity: str, energy: float = 0.9999,
            max_rank: int = 100, random_state: int = 0) -> "FeatureMap":
        if dissimilarity not in DISSIMILARITIES:
            raise SurroflowError(f"clustering.dissimilarity={dissimilarity!r} is not allowed; "
                                 f"allowed: {list(DISSIMILARITIES)}")
        Xf = normalise(X, weights) if dissimilarity == "angle" else X
        big = Xf.shape[0] * Xf.shape[1] > 2e7 and min(Xf.shape) > 4 * max_rank
        pod = POD(method="randomized" if big else "exact", rank=max_rank if big else None, energy=None,
                  center=dissimilarity == "euclidean", random_state=random_state).fit(Xf, weights)
        r = choose_rank(pod.singular_values_, energy, None)
        r = int(max(1, min(r, max_rank, pod.modes_.shape[0])))
        return cls(dissimilarity, pod.modes_[:r].copy(), pod.mean_.copy(), pod.weights_.copy())

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.dissimilarity == "angle":
            X = normalise(X, self.weights)
        return ((X - self.mean) * self.weights) @ self.modes.T


def normalise(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij,j->i", X, X, weights))
    return X / np.maximum(norms, _TINY)[:, None]


def unit_rows(C: np.ndarray) -> np.ndarray:
    return C / np.maximum(np.linalg.norm(C, axis=1), _TINY)[:, None]


def distances(F: np.ndarray, centroids: np.ndarray, dissimilarity: str) -> np.ndarray:
    """Dissimilarity of every row of ``F`` to every centroid (smaller = closer)."""
    if dissimilarity == "angle":
        return 1.0 - F @ unit_rows(centroids).T        # 1 - cos(angle); F rows ~ unit norm
    d2 = (np.sum(F ** 2, axis=1)[:, None] - 2.0 * F @ centroids.T + np.sum(centroids ** 2, axis=1)[None, :])
    return np.sqrt(np.maximum(d2, 0.0))


def kmeans(F: np.ndarray, k: int, dissimilarity: str, random_state: int, minibatch_threshold: int,
            n_init: int = 4, max_spherical_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centroids; seeded, deterministic. Spherical refinement for ``angle``."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    n = F.shape[0]
    if k > n:
        raise SurroflowError(f"clustering.n_clusters={k} exceeds the number of snapshots ({n})")
    if k == 1:
        c = F.mean(axis=0, keepdims=True)
        return np.zeros(n, dtype=int), (unit_rows(c) if dissimilarity == "angle" else c)
    if n > minibatch_threshold:
        km = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=min(n_init, 3),
                             batch_size=min(n, max(1024, 20 * k)))
    else:
        km = KMeans(n_clusters=k, random_state=random_state, n_init=n_init)
    labels = km.fit_predict(F)
    centroids = km.cluster_centers_
    if dissimilarity == "angle":
        centroids = unit_rows(centroids)
        for _ in range(max_spherical_iter):
            new = np.argmin(distances(F, centroids, "angle"), axis=1)
            for j in range(k):                       # keep every cluster non-empty
                if not np.any(new == j):
                    far = np.argmax(np.min(distances(F, centroids, "angle"), axis=1))
                    new[far] = j
            c_new = unit_rows(np.stack([F[new == j].mean(axis=0) for j in range(k)]))
            done = np.array_equal(new, labels)
            labels, centroids = new, c_new
            if done:
                break
    labels = np.argmin(distances(F, centroids, dissimilarity), axis=1)
    return canonical(labels, centroids)


def canonical(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by their first snapshot, so labels do not depend on k-means' order."""
    order = []
    for lab in labels:
        if lab not in order:
            order.append(int(lab))
    order += [j for j in range(centroids.shape[0]) if j not in order]
    remap = np.empty(centroids.shape[0], dtype=int)
    remap[order] = np.arange(len(order))
    return remap[labels], centroids[order]


def overlap_members(D: np.ndarray, labels: np.ndarray, overlap: float) -> list[np.ndarray]:
    """Members of each cluster enlarged by the ``overlap`` fraction of outside snapshots with
    the smallest margin ``d(x, c) - d(x, own cluster)`` (nearest across the boundary)."""
    k = D.shape[1]
    own = D[np.arange(D.shape[0]), labels]
    members = []
    for c in range(k):
        inside = np.flatnonzero(labels == c)
        extra = int(math.ceil(overlap * inside.size)) if overlap > 0 else 0
        if extra:
            outside = np.flatnonzero(labels != c)
            margin = D[outside, c] - own[outside]
            pick = outside[np.argsort(margin, kind="stable")[:extra]]
            inside = np.sort(np.concatenate([inside, pick]))
        members.append(inside)
    return members


# =========================================================================== classifiers
def make_classifier(selector: str, params: Mapping[str, Any], random_state: int) -> Any:
    """A scikit-learn classifier (inputs standardised first) from a name or an import path."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    path = _CLASSIFIER_ALIASES.get(selector, selector)
    if not path.startswith("sklearn."):
        raise SurroflowError(f"clustering.selector={selector!r} is not allowed; allowed: "
                             f"{list(SELECTORS)} or a scikit-learn classifier path 'sklearn.module.Class'")
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    p = dict(params)
    if selector == "knn":
        p.setdefault("n_neighbors", 5)
        p.setdefault("weights", "distance")
    if selector == "random_forest":
        p.setdefault("n_estimators", 100)
    if "random_state" in cls().get_params() and "random_state" not in p:
        p["random_state"] = random_state
    return make_pipeline(StandardScaler(), cls(**p))

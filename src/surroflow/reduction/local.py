"""Local reduced-order bases: snapshot clustering, one POD per cluster, an online selector, an
a-priori criterion for the number of clusters, and local reduced models.

Why
---
Advection-dominated problems (moving fronts, shocks, pulses) have a slowly decaying Kolmogorov
n-width: one global linear basis needs many modes.  Snapshots that look alike (a front in the
same region) span a low-dimensional space, so clustering the snapshots and fitting one POD per
cluster gives bases of much lower dimension (Amsallem, Zahr & Farhat 2012; Washabaugh et al.).

Pieces
------
* :class:`LocalPOD` clusters the snapshots with k-means (``MiniBatchKMeans`` above
  ``minibatch_threshold`` snapshots) in reduced coordinates, with one of two dissimilarities:

  - ``euclidean``: distance between the weighted-L2 projections of the snapshots (coordinates in
    a global POD basis: the Euclidean distance of coordinates *is* the weighted L2 distance);
  - ``angle``: the snapshots are first normalised to unit weighted norm and clustered on the unit
    sphere (spherical k-means, cosine assignment), so two snapshots with the same shape and
    different amplitude (a decaying pulse) fall in the same cluster.

  ``overlap`` enlarges each cluster by the snapshots of other clusters nearest to its boundary
  (smallest margin ``d(x, c) - d(x, own)``), so a basis also covers its neighbourhood.  One POD
  per cluster follows (centred on the cluster mean, same weights).
* The selector picks the local basis online: ``nearest_centroid`` on the reduced state (needs a
  state: forecasts, or a state predicted in a global basis), or a scikit-learn classifier on the
  surrogate inputs (parameters + time: ``knn``, ``random_forest``, or any classifier given by
  its import path), which is what a parametric surrogate has online.  Classifiers are stored as
  their training data and refit deterministically on load (no pickles).
* :func:`efficiency_criterion` is computed from the snapshots alone, before any surrogate: for
  each candidate number of clusters it fits the local bases on part of the samples and measures,
  on the held-out samples, the local rank needed to reach a projection tolerance (the online
  cost) and the projection error against the basis dimension; it accepts more clusters only
  while every doubling of their number cuts the mean local rank by at least ``min_gain``.
* :class:`LocalReducedModel` is a selector plus one regressor per cluster (any surroflow
  surrogate); :class:`GlobalReducedModel` is the same API on one basis.  Both provide
  ``predict_field(inputs)``, ``project(fields)`` and ``error_split(inputs, fields)``, where in
  the weighted norm ``total^2 = projection^2 + selection^2 + regression^2`` exactly:
  projection onto the best local basis, the extra projection error of the basis actually
  selected, and the regression error within the selected basis.
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .. import snapshots
from . import backends
from .pod import POD

logger = logging.getLogger("surroflow.reduce")

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
        Xf = _normalise(X, weights) if dissimilarity == "angle" else X
        big = Xf.shape[0] * Xf.shape[1] > 2e7 and min(Xf.shape) > 4 * max_rank
        pod = backends.fit_pod(Xf, weights, method="randomized" if big else "exact",
                               rank=max_rank if big else None, energy=None,
                               center=dissimilarity == "euclidean", random_state=random_state)
        r = backends.rank_for(pod.singular_values_, energy, None)
        r = int(max(1, min(r, max_rank, pod.modes_.shape[0])))
        return cls(dissimilarity, pod.modes_[:r].copy(), pod.mean_.copy(), pod.weights_.copy())

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.dissimilarity == "angle":
            X = _normalise(X, self.weights)
        return ((X - self.mean) * self.weights) @ self.modes.T


def _normalise(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij,j->i", X, X, weights))
    return X / np.maximum(norms, _TINY)[:, None]


def _unit_rows(C: np.ndarray) -> np.ndarray:
    return C / np.maximum(np.linalg.norm(C, axis=1), _TINY)[:, None]


def _distances(F: np.ndarray, centroids: np.ndarray, dissimilarity: str) -> np.ndarray:
    """Dissimilarity of every row of ``F`` to every centroid (smaller = closer)."""
    if dissimilarity == "angle":
        return 1.0 - F @ _unit_rows(centroids).T        # 1 - cos(angle); F rows ~ unit norm
    d2 = (np.sum(F ** 2, axis=1)[:, None] - 2.0 * F @ centroids.T + np.sum(centroids ** 2, axis=1)[None, :])
    return np.sqrt(np.maximum(d2, 0.0))


def _kmeans(F: np.ndarray, k: int, dissimilarity: str, random_state: int, minibatch_threshold: int,
            n_init: int = 4, max_spherical_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centroids; seeded, deterministic. Spherical refinement for ``angle``."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    n = F.shape[0]
    if k > n:
        raise SurroflowError(f"clustering.n_clusters={k} exceeds the number of snapshots ({n})")
    if k == 1:
        c = F.mean(axis=0, keepdims=True)
        return np.zeros(n, dtype=int), (_unit_rows(c) if dissimilarity == "angle" else c)
    if n > minibatch_threshold:
        km = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=min(n_init, 3),
                             batch_size=min(n, max(1024, 20 * k)))
    else:
        km = KMeans(n_clusters=k, random_state=random_state, n_init=n_init)
    labels = km.fit_predict(F)
    centroids = km.cluster_centers_
    if dissimilarity == "angle":
        centroids = _unit_rows(centroids)
        for _ in range(max_spherical_iter):
            new = np.argmin(_distances(F, centroids, "angle"), axis=1)
            for j in range(k):                       # keep every cluster non-empty
                if not np.any(new == j):
                    far = np.argmax(np.min(_distances(F, centroids, "angle"), axis=1))
                    new[far] = j
            c_new = _unit_rows(np.stack([F[new == j].mean(axis=0) for j in range(k)]))
            done = np.array_equal(new, labels)
            labels, centroids = new, c_new
            if done:
                break
    labels = np.argmin(_distances(F, centroids, dissimilarity), axis=1)
    return _canonical(labels, centroids)


def _canonical(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by their first snapshot, so labels do not depend on k-means' order."""
    order = []
    for lab in labels:
        if lab not in order:
            order.append(int(lab))
    order += [j for j in range(centroids.shape[0]) if j not in order]
    remap = np.empty(centroids.shape[0], dtype=int)
    remap[order] = np.arange(len(order))
    return remap[labels], centroids[order]


def _overlap_members(D: np.ndarray, labels: np.ndarray, overlap: float) -> list[np.ndarray]:
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
def _classifier(selector: str, params: Mapping[str, Any], random_state: int) -> Any:
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


# =========================================================================== LocalPOD
class LocalPOD:
    """Snapshot clustering into local POD bases with an online selector.

    Parameters
    ----------
    n_clusters : number of clusters (see :func:`efficiency_criterion` to choose it).
    dissimilarity : ``euclidean`` or ``angle`` (amplitude-insensitive).
    overlap : fraction of each cluster's size added from across its boundary (0 = none).
    rank, energy, tolerance : modes per cluster: a fixed ``rank``; else the smallest rank whose
        relative projection error of the cluster's own snapshots (weighted, relative to their
        uncentred norm) is below ``tolerance``; else the ``energy`` fraction.
    method : POD backend of the local bases (``exact``, ``tsqr``, ``randomized``).
    selector : ``nearest_centroid`` (on the state), ``knn`` or ``random_forest`` (on the
        inputs), or a scikit-learn classifier path; ``selector_params`` go to its ``__init__``.
    feature_energy, max_feature_rank : truncation of the reduced coordinates used to cluster.
    minibatch_threshold : above this many snapshots, ``MiniBatchKMeans``.
    n_init : k-means restarts (k-means++ seeding); the best inertia is kept.
    random_state : seed of k-means, the feature basis and the classifier.

    Learned attributes: ``labels_`` (primary cluster of each training snapshot), ``members_``
    (indices per cluster, with overlap), ``centroids_`` (in feature coordinates), ``features_``
    (:class:`FeatureMap`), ``pods_`` (one :class:`POD` per cluster), ``classifier_``.
    """

    def __init__(self, n_clusters: int = 4, dissimilarity: str = "euclidean", overlap: float = 0.0,
                 rank: int | None = None, energy: float | None = 0.9999, tolerance: float | None = None,
                 method: str = "exact", selector: str = "nearest_centroid",
                 selector_params: Mapping[str, Any] | None = None, feature_energy: float = 0.9999,
                 max_feature_rank: int = 100, minibatch_threshold: int = 20000, n_init: int = 4,
                 random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.dissimilarity = dissimilarity
        self.overlap = overlap
        self.rank = rank
        self.energy = energy
        self.tolerance = tolerance
        self.method = method
        self.selector = selector
        self.selector_params = selector_params
        self.feature_energy = feature_energy
        self.max_feature_rank = max_feature_rank
        self.minibatch_threshold = minibatch_threshold
        self.n_init = n_init
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate(self, X: np.ndarray) -> None:
        if self.dissimilarity not in DISSIMILARITIES:
            raise SurroflowError(f"clustering.dissimilarity={self.dissimilarity!r} is not allowed; "
                                 f"allowed: {list(DISSIMILARITIES)}")
        if not (isinstance(self.n_clusters, (int, np.integer)) and self.n_clusters >= 1):
            raise SurroflowError(f"clustering.n_clusters must be an integer >= 1, got {self.n_clusters!r}")
        if not 0.0 <= float(self.overlap) <= 1.0:
            raise SurroflowError(f"clustering.overlap must be in [0, 1], got {self.overlap}")
        if X.ndim != 2:
            raise SurroflowError(f"snapshots must be 2-D (n_snapshots, n_space), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise SurroflowError("snapshots contain NaN or Inf; flagged samples must be excluded")

    def fit(self, X: Any, weights: np.ndarray | None = None, inputs: np.ndarray | None = None,
            features: FeatureMap | None = None) -> "LocalPOD":
        """Cluster the rows of ``X`` and fit one POD per cluster.

        ``inputs`` (``(n, n_inputs)``: parameters and time of each snapshot) are required for
        a classifier selector.  ``features`` reuses a fitted :class:`FeatureMap`.
        """
        X = np.asarray(X, dtype=float)
        self._validate(X)
        n, n_space = X.shape
        w = np.ones(n_space) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        if w.shape != (n_space,) or np.any(w <= 0):
            raise SurroflowError("weights must be positive, one per spatial point")
        self.weights_ = w
        self.features_ = features if features is not None else FeatureMap.fit(
            X, w, self.dissimilarity, self.feature_energy, self.max_feature_rank, self.random_state)
        F = self.features_.transform(X)
        k = int(self.n_clusters)
        self.labels_, self.centroids_ = _kmeans(F, k, self.dissimilarity, int(self.random_state),
                                                int(self.minibatch_threshold), int(self.n_init))
        D = _distances(F, self.centroids_, self.dissimilarity)
        self.members_ = _overlap_members(D, self.labels_, float(self.overlap))
        self.pods_ = [self._fit_local(X[idx], w) for idx in self.members_]
        self.n_modes_ = np.array([p.n_modes_ for p in self.pods_])
        self.classifier_ = None
        self.selector_inputs_ = None
        if self.selector != "nearest_centroid":
            if inputs is None:
                raise SurroflowError(f"clustering.selector={self.selector!r} classifies the surrogate "
                                     "inputs: pass inputs (parameters and time of every snapshot)")
            inputs = np.asarray(inputs, dtype=float)
            if inputs.ndim != 2 or inputs.shape[0] != n:
                raise SurroflowError(f"inputs must be (n_snapshots={n}, n_inputs), got {inputs.shape}")
            self.selector_inputs_ = inputs.copy()
            self.classifier_ = self._fit_classifier(inputs, self.labels_)
        return self

    def _fit_local(self, Xc: np.ndarray, w: np.ndarray) -> POD:
        method = self.method if Xc.shape[0] > 1 else "exact"
        if self.rank is not None:
            return backends.fit_pod(Xc, w, method=method, rank=int(self.rank), energy=None,
                                    random_state=self.random_state)
        if self.tolerance is None:
            return backends.fit_pod(Xc, w, method=method, energy=self.energy,
                                    random_state=self.random_state)
        pod = backends.fit_pod(Xc, w, method="exact" if method == "randomized" else method,
                               rank=None, energy=None, random_state=self.random_state)
        norm2 = float(np.sum(Xc ** 2 * w))
        s2 = pod.singular_values_ ** 2
        resid = np.maximum(float(s2.sum()) - np.concatenate([[0.0], np.cumsum(s2)]), 0.0)
        ok = np.flatnonzero(np.sqrt(resid / max(norm2, _TINY)) <= float(self.tolerance))
        r = int(ok[0]) if ok.size else s2.size
        return _truncate(pod, max(r, 1))

    def _fit_classifier(self, inputs: np.ndarray, labels: np.ndarray) -> Any:
        if np.unique(labels).size == 1:
            return None              # one cluster: nothing to classify
        clf = _classifier(self.selector, dict(self.selector_params or {}), int(self.random_state))
        return clf.fit(inputs, labels)

    # ------------------------------------------------------------------ selection
    def select_by_state(self, states: np.ndarray) -> np.ndarray:
        """Nearest centroid (in the clustering dissimilarity) of each state."""
        F = self.features_.transform(np.atleast_2d(states))
        return np.argmin(_distances(F, self.centroids_, self.dissimilarity), axis=1)

    def select_by_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Cluster predicted by the classifier from the surrogate inputs."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        if self.selector == "nearest_centroid":
            raise SurroflowError("selector 'nearest_centroid' needs the state, not the inputs; "
                                 "use a classifier selector (knn, random_forest) for (parameters, time)")
        if self.classifier_ is None:
            return np.zeros(inputs.shape[0], dtype=int)
        return np.asarray(self.classifier_.predict(inputs), dtype=int)

    def select(self, inputs: np.ndarray | None = None, states: np.ndarray | None = None) -> np.ndarray:
        """The local basis for each query: classifier on ``inputs`` for a classifier selector,
        nearest centroid on ``states`` otherwise."""
        if self.selector != "nearest_centroid" and inputs is not None:
            return self.select_by_inputs(inputs)
        if states is None:
            raise SurroflowError(f"selector {self.selector!r} needs "
                                 f"{'inputs' if self.selector != 'nearest_centroid' else 'states'}")
        return self.select_by_state(states)

    def best_labels(self, X: np.ndarray) -> np.ndarray:
        """The cluster whose basis projects each row best (the oracle choice)."""
        return np.argmin(self.projection_errors(X), axis=1)

    def projection_errors(self, X: np.ndarray) -> np.ndarray:
        """Squared weighted projection error of every row onto every local basis ``(n, k)``."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        out = np.empty((X.shape[0], len(self.pods_)))
        for c, pod in enumerate(self.pods_):
            d = X - pod.mean_
            z = (d * pod.weights_) @ pod.modes_.T
            out[:, c] = np.maximum(np.einsum("ij,ij,j->i", d, d, pod.weights_) - np.sum(z ** 2, axis=1), 0.0)
        return out

    # ------------------------------------------------------------------ mapping
    def transform(self, X: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """Local coordinates: one array per cluster, for the rows with that label."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return [self.pods_[c].transform(X[labels == c]) for c in range(len(self.pods_))]

    def project(self, X: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Projection of each row onto its local basis (``labels``; default: the best one)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        labels = self.best_labels(X) if labels is None else np.asarray(labels, dtype=int)
        out = np.empty_like(X)
        for c, pod in enumerate(self.pods_):
            sel = labels == c
            if np.any(sel):
                out[sel] = pod.project(X[sel])
        return out

    # ------------------------------------------------------------------ storage
    def to_dataset(self, space_dims: Sequence[str], space_coords: Mapping[str, Any],
                   space_shape: Sequence[int], attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
        """All local bases in one dataset with a ``cluster`` dimension (no pickles).

        ``modes(cluster, mode, space...)`` are zero-padded to the largest rank;
        ``n_modes(cluster)`` says how many are real.  The selector is stored as data:
        ``centroids(cluster, feature)`` with the feature basis, and for a classifier its
        training ``selector_inputs(snapshot, input)`` and ``labels(snapshot)``.
        """
        space_dims = tuple(space_dims)
        space_shape = tuple(int(s) for s in space_shape)
        k = len(self.pods_)
        rmax = int(max(self.n_modes_))
        nsv = max(p.singular_values_.size for p in self.pods_)
        n_space = int(np.prod(space_shape))
        modes = np.zeros((k, rmax, n_space))
        sv = np.full((k, nsv), np.nan)
        en = np.full((k, nsv), np.nan)
        means = np.empty((k, n_space))
        for c, p in enumerate(self.pods_):
            modes[c, :p.n_modes_] = p.modes_
            sv[c, :p.singular_values_.size] = p.singular_values_
            en[c, :p.energy_.size] = p.energy_
            means[c] = p.mean_
        n = self.labels_.size
        membership = np.zeros((k, n), dtype="i1")
        for c, idx in enumerate(self.members_):
            membership[c, idx] = 1
        fm = self.features_
        data = {
            "modes": (("cluster", "mode", *space_dims), modes.reshape(k, rmax, *space_shape),
                      {"long_name": "local POD modes, orthonormal in the weighted inner product (zero-padded)"}),
            "n_modes": (("cluster",), self.n_modes_.astype("i4"), {"long_name": "modes of each local basis"}),
            "singular_values": (("cluster", "mode_all"), sv, {"long_name": "singular values of each cluster (NaN-padded)"}),
            "energy": (("cluster", "mode_all"), en, {"long_name": "cumulative energy fraction per cluster", "units": "1"}),
            "mean": (("cluster", *space_dims), means.reshape(k, *space_shape), {"long_name": "cluster mean"}),
            "weights": (space_dims, self.weights_.reshape(space_shape), {"long_name": "inner-product weights per spatial point"}),
            "centroids": (("cluster", "feature"), self.centroids_, {"long_name": "cluster centroids in feature coordinates"}),
            "feature_modes": (("feature", *space_dims), fm.modes.reshape(-1, *space_shape),
                              {"long_name": "basis of the clustering features"}),
            "feature_mean": (space_dims, fm.mean.reshape(space_shape), {"long_name": "mean of the clustering features"}),
            "labels": (("snapshot",), self.labels_.astype("i4"), {"long_name": "primary cluster of each training snapshot"}),
            "membership": (("cluster", "snapshot"), membership,
                           {"long_name": "1 where a training snapshot belongs to a cluster (overlap included)"}),
        }
        if self.selector_inputs_ is not None:
            data["selector_inputs"] = (("snapshot", "input"), self.selector_inputs_,
                                       {"long_name": "classifier training inputs (parameters, time)"})
        ds = xr.Dataset(data, coords={"cluster": np.arange(k), "mode": np.arange(rmax),
                                      "mode_all": np.arange(nsv), "feature": np.arange(fm.modes.shape[0]),
                                      **dict(space_coords)})
        ds.attrs = {"basis": "local", "method": self.method, "n_clusters": k,
                    "dissimilarity": self.dissimilarity, "overlap": float(self.overlap),
                    "rank": -1 if self.rank is None else int(self.rank),
                    "energy_threshold": -1.0 if self.energy is None else float(self.energy),
                    "tolerance": -1.0 if self.tolerance is None else float(self.tolerance),
                    "selector": self.selector, "selector_params": json.dumps(dict(self.selector_params or {})),
                    "random_state": int(self.random_state), "minibatch_threshold": int(self.minibatch_threshold),
                    "n_init": int(self.n_init),
                    "feature_energy": float(self.feature_energy), "max_feature_rank": int(self.max_feature_rank),
                    "n_modes_max": rmax, **dict(attrs or {})}
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "LocalPOD":
        a = ds.attrs
        opt = lambda v, f: None if float(v) < 0 else f(v)  # noqa: E731
        lp = cls(n_clusters=int(a["n_clusters"]), dissimilarity=str(a["dissimilarity"]),
                 overlap=float(a["overlap"]), rank=opt(a.get("rank", -1), int),
                 energy=opt(a.get("energy_threshold", -1), float), tolerance=opt(a.get("tolerance", -1), float),
                 method=str(a.get("method", "exact")), selector=str(a["selector"]),
                 selector_params=json.loads(a.get("selector_params", "{}")),
                 feature_energy=float(a.get("feature_energy", 0.9999)),
                 max_feature_rank=int(a.get("max_feature_rank", 100)),
                 minibatch_threshold=int(a.get("minibatch_threshold", 20000)),
                 n_init=int(a.get("n_init", 4)), random_state=int(a.get("random_state", 0)))
        k = ds.sizes["cluster"]
        w = ds["weights"].values.reshape(-1)
        n_space = w.size
        modes = ds["modes"].values.reshape(k, ds.sizes["mode"], n_space)
        sv, en = ds["singular_values"].values, ds["energy"].values
        means = ds["mean"].values.reshape(k, n_space)
        lp.pods_ = []
        for c in range(k):
            p = POD(method=lp.method, rank=lp.rank, energy=lp.energy)
            r = int(ds["n_modes"].values[c])
            p.modes_ = modes[c, :r].copy()
            good = ~np.isnan(sv[c])
            p.singular_values_ = sv[c][good]
            p.energy_ = en[c][good]
            p.mean_ = means[c].copy()
            p.weights_ = w.copy()
            p.n_modes_ = r
            lp.pods_.append(p)
        lp.n_modes_ = ds["n_modes"].values.astype(int)
        lp.weights_ = w.copy()
        lp.centroids_ = ds["centroids"].values.copy()
        lp.features_ = FeatureMap(lp.dissimilarity, ds["feature_modes"].values.reshape(ds.sizes["feature"], n_space),
                                  ds["feature_mean"].values.reshape(-1), w.copy())
        lp.labels_ = ds["labels"].values.astype(int)
        mem = ds["membership"].values
        lp.members_ = [np.flatnonzero(mem[c]) for c in range(k)]
        lp.selector_inputs_ = None
        lp.classifier_ = None
        if "selector_inputs" in ds.variables:
            lp.selector_inputs_ = ds["selector_inputs"].values.copy()
            lp.classifier_ = lp._fit_classifier(lp.selector_inputs_, lp.labels_)
        return lp


def _truncate(pod: POD, r: int) -> POD:
    r = int(min(r, pod.modes_.shape[0]))
    pod.modes_ = pod.modes_[:r]
    pod.n_modes_ = r
    return pod


# =========================================================================== criterion
@dataclass
class CriterionResult:
    """Outcome of :func:`efficiency_criterion`.

    ``mean_rank[i]``: mean local rank (weighted by held-out snapshots per cluster) needed for a
    held-out projection error below ``tolerance`` with ``candidates[i]`` clusters (inf when some
    cluster cannot reach it); ``efficiency[i] = mean_rank(1 cluster) / mean_rank[i]`` (online
    speed-up of the reconstruction); ``error_curves[i, r]``: held-out relative projection error
    with ``r`` modes in every local basis.
    """

    candidates: np.ndarray
    tolerance: float
    mean_rank: np.ndarray
    max_rank: np.ndarray
    efficiency: np.ndarray
    error_curves: np.ndarray
    chosen: int
    min_gain: float
    dissimilarity: str
    overlap: float
    cluster_ranks: list[np.ndarray] = field(default_factory=list)

    def to_dataset(self) -> xr.Dataset:
        return xr.Dataset(
            {"mean_rank": (("candidate",), self.mean_rank, {"long_name": "mean local rank reaching the tolerance on held-out snapshots"}),
             "max_rank": (("candidate",), self.max_rank, {"long_name": "largest local rank reaching the tolerance"}),
             "efficiency": (("candidate",), self.efficiency, {"long_name": "rank of one global basis / mean local rank", "units": "1"}),
             "projection_error": (("candidate", "basis_dimension"), self.error_curves,
                                  {"long_name": "held-out relative projection error with that many modes per local basis", "units": "1"})},
            coords={"candidate": ("candidate", self.candidates, {"long_name": "number of clusters"}),
                    "basis_dimension": np.arange(self.error_curves.shape[1])},
            attrs={"tolerance": self.tolerance, "chosen_n_clusters": int(self.chosen), "min_gain": self.min_gain,
                   "dissimilarity": self.dissimilarity, "overlap": self.overlap})


def _cluster_residuals(lp: "LocalPOD", X: np.ndarray, labels: np.ndarray, rmax: int) -> np.ndarray:
    """``resid[c, r]``: summed squared weighted error of the rows labelled ``c`` projected onto
    the first ``r`` modes of basis ``c`` (``r = 0..rmax``; flat beyond a basis' rank)."""
    resid = np.zeros((len(lp.pods_), rmax + 1))
    for c, pod in enumerate(lp.pods_):
        sel = labels == c
        if not np.any(sel):
            continue
        d = X[sel] - pod.mean_
        phi = pod.modes_[:rmax]
        z = (d * pod.weights_) @ phi.T
        # the error with all the basis' modes explicitly, then add back the dropped coefficients
        # (sums of positive terms: no cancellation, accurate far below sqrt(eps))
        e = d - z @ phi
        floor = float(np.einsum("ij,ij,j->", e, e, pod.weights_))
        z2 = np.sum(z ** 2, axis=0)
        r = floor + np.concatenate([np.cumsum(z2[::-1])[::-1], [0.0]])
        resid[c] = np.concatenate([r, np.full(rmax + 1 - r.size, r[-1])])
    return resid


def projection_error_curves(X_train: Any, X_test: Any, weights: np.ndarray | None = None,
                            n_clusters: Sequence[int] = (1, 4, 8), max_rank: int = 40, *,
                            dissimilarity: str = "euclidean", overlap: float = 0.0,
                            random_state: int = 0, minibatch_threshold: int = 20000
                            ) -> dict[int, np.ndarray]:
    """Relative test projection error against basis dimension ``r = 0..max_rank`` for a global
    basis (``1`` cluster) and local bases (each test snapshot projected onto the basis of its
    nearest centroid): ``{n_clusters: errors}``."""
    Xtr = np.asarray(X_train, dtype=float)
    Xte = np.asarray(X_test, dtype=float)
    w = np.ones(Xtr.shape[1]) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    feats = FeatureMap.fit(Xtr, w, dissimilarity, random_state=random_state)
    ref = max(float(np.einsum("ij,ij,j->", Xte, Xte, w)), _TINY)
    out = {}
    for k in n_clusters:
        lp = LocalPOD(n_clusters=int(k), dissimilarity=dissimilarity, overlap=overlap, rank=max_rank,
                      energy=None, random_state=random_state,
                      minibatch_threshold=minibatch_threshold).fit(Xtr, w, features=feats)
        resid = _cluster_residuals(lp, Xte, lp.select_by_state(Xte), max_rank)
        out[int(k)] = np.sqrt(resid.sum(axis=0) / ref)
    return out


def dimension_to_reach(errors: np.ndarray, target: float) -> int | None:
    """Smallest basis dimension whose error is at most ``target`` (None if never)."""
    ok = np.flatnonzero(np.asarray(errors) <= target * (1 + 1e-12))
    return int(ok[0]) if ok.size else None


def _choose(cands: np.ndarray, mean_rank: np.ndarray, min_gain: float, curves: np.ndarray) -> int:
    finite = np.flatnonzero(np.isfinite(mean_rank))
    if finite.size == 0:                  # no candidate reaches the tolerance: smallest final error
        return int(cands[np.argmin(curves[:, -1])])
    cur = int(finite[0])
    for i in finite[1:]:
        doublings = math.log2(cands[i] / cands[cur])
        gain = 1.0 - (mean_rank[i] / max(mean_rank[cur], _TINY)) ** (1.0 / doublings)
        if gain >= min_gain:
            cur = int(i)
    return int(cands[cur])


def _split_validation(n: int, groups: np.ndarray | None, fraction: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    if groups is None:
        perm = rng.permutation(n)
        n_val = max(1, int(round(fraction * n)))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    if uniq.size < 2:
        raise SurroflowError("efficiency criterion: need at least two groups (samples) to hold some out")
    n_val = min(uniq.size - 1, max(1, int(round(fraction * uniq.size))))
    val_groups = rng.choice(uniq, size=n_val, replace=False)
    is_val = np.isin(groups, val_groups)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def efficiency_criterion(X: Any, weights: np.ndarray | None = None,
                         candidates: Sequence[int] = (1, 2, 4, 8, 16), tol: float = 1e-2, *,
                         dissimilarity: str = "euclidean", overlap: float = 0.0,
                         groups: np.ndarray | None = None, validation_fraction: float = 0.25,
                         min_gain: float = 0.3, max_rank: int | None = None, random_state: int = 0,
                         minibatch_threshold: int = 20000) -> CriterionResult:
    """A-priori choice of the number of clusters from the snapshots alone.

    For each candidate ``k``: cluster the fitting snapshots (samples not held out, split by
    ``groups`` = sample of each snapshot, never by time), fit one POD per cluster, assign each
    held-out snapshot to its nearest centroid and compute, per cluster, the held-out projection
    error against the local rank.  The online cost of a local model is the rank of the basis
    it evaluates, so the estimate is the mean local rank reaching ``tol`` (relative weighted L2
    projection error); more clusters lower it until the clusters hold too few snapshots to
    generalise.  Each extra cluster costs storage, training data per regressor and selection
    errors, so more clusters are accepted only where they pay: scanning the candidates upwards,
    ``k`` replaces the current choice ``k0`` when the mean rank falls by at least ``min_gain``
    per doubling, ``1 - (rank(k) / rank(k0)) ** (1 / log2(k / k0)) >= min_gain``.
    """
    X = np.asarray(X, dtype=float)
    n, n_space = X.shape
    w = np.ones(n_space) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    rng = np.random.default_rng(random_state)
    fit_idx, val_idx = _split_validation(n, groups, validation_fraction, rng)
    Xf, Xv = X[fit_idx], X[val_idx]
    cands = np.array(sorted({int(c) for c in candidates if 1 <= int(c) <= fit_idx.size}))
    if cands.size == 0:
        raise SurroflowError(f"efficiency criterion: no usable candidate in {list(candidates)}")
    feats = FeatureMap.fit(Xf, w, dissimilarity, random_state=random_state)
    rmax = int(min(max_rank or min(Xf.shape), min(Xf.shape)))
    norm_v = np.einsum("ij,ij,j->i", Xv, Xv, w)
    curves = np.empty((cands.size, rmax + 1))
    mean_rank = np.empty(cands.size)
    max_rank_k = np.empty(cands.size)
    cluster_ranks = []
    for i, k in enumerate(cands):
        lp = LocalPOD(n_clusters=int(k), dissimilarity=dissimilarity, overlap=overlap, rank=rmax,
                      energy=None, random_state=random_state,
                      minibatch_threshold=minibatch_threshold).fit(Xf, w, features=feats)
        lab = lp.select_by_state(Xv)
        resid = _cluster_residuals(lp, Xv, lab, rmax)
        err2 = resid.sum(axis=0)              # summed squared error with r modes in each basis
        ranks = np.zeros(int(k))
        for c in range(int(k)):
            sel = lab == c
            if not np.any(sel):
                continue
            rel = np.sqrt(resid[c] / max(float(norm_v[sel].sum()), _TINY))
            ok = np.flatnonzero(rel <= tol)
            ranks[c] = ok[0] if ok.size else np.inf
        counts = np.bincount(lab, minlength=int(k)).astype(float)
        curves[i] = np.sqrt(err2 / max(float(norm_v.sum()), _TINY))
        used = counts > 0
        mean_rank[i] = float(np.sum(ranks[used] * counts[used]) / counts.sum()) if np.all(np.isfinite(ranks[used])) else np.inf
        max_rank_k[i] = float(np.max(ranks[used]))
        cluster_ranks.append(ranks)
    chosen = _choose(cands, mean_rank, float(min_gain), curves)
    ref = mean_rank[0] if cands[0] == 1 else np.nan
    eff = ref / mean_rank
    return CriterionResult(cands, float(tol), mean_rank, max_rank_k, eff, curves, chosen, float(min_gain),
                           dissimilarity, float(overlap), cluster_ranks)


# =========================================================================== file level
def clustering_options(clustering: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``clustering`` config section with its schema defaults filled in."""
    c = dict(clustering or {})
    return {
        "n_clusters": c.get("n_clusters", "auto"),
        "candidates": list(c.get("candidates", [1, 2, 4, 8, 16])),
        "dissimilarity": c.get("dissimilarity", "euclidean"),
        "overlap": float(c.get("overlap", 0.1)),
        "selector": c.get("selector", "random_forest"),
        "tolerance": float(c.get("tolerance", 0.01)),
        "min_gain": float(c.get("min_gain", 0.3)),
        "seed": int(c.get("seed", 0)),
        "minibatch_threshold": int(c.get("minibatch_threshold", 20000)),
        "local_rank": c.get("local_rank"),
    }


def local_pod_file(snapshots_nc: str | os.PathLike[str], variable: str, out_nc: str | os.PathLike[str],
                   clustering: Mapping[str, Any] | None = None, *, method: str = "exact",
                   rank: int | None = None, energy: float | None = 0.9999,
                   weights: str | np.ndarray = "quadrature", criterion_nc: str | os.PathLike[str] | None = None,
                   criterion_figure: str | os.PathLike[str] | None = None,
                   attrs: Mapping[str, Any] | None = None, **_ignored: Any) -> Path:
    """Fit local bases of ``variable`` and write them (one NetCDF, ``cluster`` dimension).

    ``clustering`` is the config section (see ``workflow/schemas/clustering.schema.yaml``).
    With ``n_clusters: auto`` the number comes from :func:`efficiency_criterion` (held-out
    samples, ``tolerance``); its table goes to ``criterion_nc`` and its curve to
    ``criterion_figure`` (PNG, and PDF beside it) when given.  Local ranks: ``local_rank`` if set,
    else ``rank``, else the ``tolerance`` (projection error per cluster).  Extra keys of the
    reduction section are accepted and ignored.
    """
    from ..io import open_dataset, write_dataset
    t0 = time.perf_counter()
    opts = clustering_options(clustering)
    ds = open_dataset(snapshots_nc, required=(variable,))
    X = snapshots.snapshot_matrix(ds, variable)
    inputs = snapshots.snapshot_inputs(ds, variable) if "design" in ds.variables else None
    groups = snapshots.snapshot_groups(ds, variable)
    w = snapshots.resolve_weights(ds, variable, weights)
    lay = snapshots.snapshot_layout(ds, variable)
    crit = None
    k = opts["n_clusters"]
    if k == "auto":
        crit = efficiency_criterion(X, w, opts["candidates"], opts["tolerance"],
                                    dissimilarity=opts["dissimilarity"], overlap=opts["overlap"],
                                    groups=groups, min_gain=opts["min_gain"], random_state=opts["seed"],
                                    minibatch_threshold=opts["minibatch_threshold"])
        k = crit.chosen
        logger.info("%s: efficiency criterion: mean local rank %s for %s clusters -> %d",
                    variable, np.round(crit.mean_rank, 1).tolist(), crit.candidates.tolist(), k)
        if criterion_nc is not None:
            cds = crit.to_dataset()
            cds.attrs.update({"variable": variable, **dict(attrs or {})})
            write_dataset(cds, criterion_nc)
        if criterion_figure is not None:
            from .figures import plot_criterion
            plot_criterion(crit, criterion_figure)
    local_rank = opts["local_rank"] if opts["local_rank"] is not None else rank
    selector = opts["selector"]
    if selector != "nearest_centroid" and inputs is None:
        raise SurroflowError(f"{snapshots_nc}: selector {selector!r} needs the design (inputs); "
                             "the file has no 'design' variable")
    lp = LocalPOD(n_clusters=int(k), dissimilarity=opts["dissimilarity"], overlap=opts["overlap"],
                  rank=local_rank, energy=energy, tolerance=None if local_rank is not None else opts["tolerance"],
                  method=method, selector=selector, minibatch_threshold=opts["minibatch_threshold"],
                  random_state=opts["seed"]).fit(X, w, inputs=inputs)
    fit_seconds = time.perf_counter() - t0
    logger.info("%s: %d clusters, local ranks %s in %.2f s", variable, k, lp.n_modes_.tolist(), fit_seconds)
    coords = {d: ds[d] for d in lay.space_dims if d in ds.coords}
    out = lp.to_dataset(lay.space_dims, coords, lay.space_shape, attrs={
        "variable": variable, "units": ds[variable].attrs.get("units", "1"),
        "weights_kind": weights if isinstance(weights, str) else "custom",
        "fit_seconds": fit_seconds, "n_train_snapshots": int(X.shape[0]), **dict(attrs or {})})
    if crit is not None:
        out.attrs["criterion_mean_rank"] = np.asarray(crit.mean_rank, dtype=float)
        out.attrs["criterion_candidates"] = np.asarray(crit.candidates, dtype=int)
    write_dataset(out, out_nc)
    return Path(out_nc)


def load_local_pod(path: str | os.PathLike[str]) -> LocalPOD:
    from ..io import open_dataset
    return LocalPOD.from_dataset(open_dataset(path, required=("modes", "n_modes", "centroids")))


def projection_study_file(train_nc: str | os.PathLike[str], test_nc: str | os.PathLike[str], variable: str,
                          out_png: str | os.PathLike[str], out_nc: str | os.PathLike[str] | None = None, *,
                          n_clusters: Sequence[int] = (1, 2, 4, 8), max_rank: int = 40,
                          clustering: Mapping[str, Any] | None = None, weights: str | np.ndarray = "quadrature",
                          attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The figure "projection error against basis dimension, global versus local" on the test
    set, and the dimension each local basis needs to reach the global basis' error.

    For each local curve and each global dimension ``r_g`` it records the smallest local
    dimension reaching the global error at ``r_g`` (``dimension_ratio`` = local / global
    dimension; the issue's target is <= 0.5).  Returns that summary; writes the curves to
    ``out_nc`` when given.
    """
    from ..io import open_dataset, write_dataset
    from .figures import plot_projection_error
    opts = clustering_options(clustering)
    tr = open_dataset(train_nc, required=(variable,))
    te = open_dataset(test_nc, required=(variable,))
    Xtr, Xte = snapshots.snapshot_matrix(tr, variable), snapshots.snapshot_matrix(te, variable)
    w = snapshots.resolve_weights(tr, variable, weights)
    ks = sorted({1, *map(int, n_clusters)})
    max_rank = int(min(max_rank, min(Xtr.shape)))
    curves = projection_error_curves(Xtr, Xte, w, ks, max_rank, dissimilarity=opts["dissimilarity"],
                                     overlap=opts["overlap"], random_state=opts["seed"],
                                     minibatch_threshold=opts["minibatch_threshold"])
    dims = np.arange(max_rank + 1)
    summary: dict[str, Any] = {"global": curves[1].tolist(), "ratio": {}}
    ratio = np.full((len(ks), max_rank + 1), np.nan)
    for i, k in enumerate(ks):
        for rg in range(1, max_rank + 1):
            rl = dimension_to_reach(curves[k], curves[1][rg])
            ratio[i, rg] = np.nan if rl is None else rl / rg
        summary["ratio"][k] = ratio[i].tolist()
    marks = {}
    rg_mark = dimension_to_reach(curves[1], 1e-2)
    if rg_mark:
        for k in ks[1:]:
            rl = dimension_to_reach(curves[k], curves[1][rg_mark])
            if rl is not None:
                marks[f"{k} clusters: {rl} modes reach the error of {rg_mark} global modes"] = (rl, curves[k][rl])
    plot_projection_error({("global basis" if k == 1 else f"local, {k} clusters"): (dims[1:], curves[k][1:])
                           for k in ks}, out_png, title=f"{variable}: test projection error",
                          marks=marks)
    if out_nc is not None:
        ds = xr.Dataset({
            "projection_error": (("n_clusters", "basis_dimension"), np.stack([curves[k] for k in ks]),
                                 {"long_name": "relative test projection error (nearest-centroid basis)", "units": "1"}),
            "dimension_ratio": (("n_clusters", "basis_dimension"), ratio,
                                {"long_name": "local dimension reaching the global error at this global dimension, divided by it",
                                 "units": "1"})},
            coords={"n_clusters": ks, "basis_dimension": dims},
            attrs={"variable": variable, "dissimilarity": opts["dissimilarity"], "overlap": opts["overlap"],
                   **dict(attrs or {})})
        write_dataset(ds, out_nc)
    return summary

"""Local reduced-order bases: snapshot clustering into local POD bases with an online selector.

Advection-dominated problems (moving fronts, shocks, pulses) have a slowly decaying Kolmogorov
n-width: one global linear basis needs many modes.  Snapshots that look alike (a front in the
same region) span a low-dimensional space, so clustering the snapshots and fitting one POD per
cluster gives bases of much lower dimension (Amsallem, Zahr & Farhat 2012; Washabaugh et al.).

:class:`LocalPOD` clusters the snapshots (:mod:`surroflow.reduction.clustering`), fits one
:class:`~surroflow.reduction.pod.POD` per cluster (centred on the cluster mean, same weights)
and selects a basis online.  The number of clusters comes from the a-priori criterion
(:mod:`surroflow.reduction.criterion`) when the config says ``n_clusters: auto``.  Constructor
defaults are those of the config schema's ``reduction.clustering`` section.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .clustering import (
    DISSIMILARITIES,
    FeatureMap,
    distances,
    kmeans,
    make_classifier,
    overlap_members,
)
from .pod import POD

_TINY = np.finfo(float).tiny


class LocalPOD:
    """Snapshot clustering into local POD bases with an online selector.

    Parameters (in brackets the config key whose schema default is the default here)
    ----------
    n_clusters : number of clusters (:func:`~surroflow.reduction.criterion.efficiency_criterion`
        chooses it for ``clustering.n_clusters: auto``).
    dissimilarity : ``euclidean`` or ``angle``, amplitude-insensitive (``clustering.dissimilarity``).
    overlap : fraction of each cluster's size added from across its boundary (``clustering.overlap``).
    rank, energy, tolerance : modes per cluster: a fixed ``rank`` (``clustering.local_rank``);
        else the smallest rank whose relative projection error of the cluster's own snapshots
        (weighted, relative to their uncentred norm) is below ``tolerance``
        (``clustering.tolerance``); else the ``energy`` fraction (``reduction.energy``).
    method : POD backend of the local bases (``reduction.method``).
    selector : ``nearest_centroid`` (on the state), ``knn`` or ``random_forest`` (on the
        inputs), or a scikit-learn classifier path (``clustering.selector``);
        ``selector_params`` go to its ``__init__``.
    feature_energy, max_feature_rank : truncation of the reduced coordinates used to cluster.
    minibatch_threshold : above this many snapshots, ``MiniBatchKMeans``
        (``clustering.minibatch_threshold``).
    n_init : k-means restarts (k-means++ seeding); the best inertia is kept.
    random_state : seed of k-means, the feature basis and the classifier (``clustering.seed``).

    Learned attributes: ``labels_`` (primary cluster of each training snapshot), ``members_``
    (indices per cluster, with overlap), ``centroids_`` (in feature coordinates), ``features_``
    (:class:`FeatureMap`), ``pods_`` (one :class:`POD` per cluster), ``classifier_``.
    """

    def __init__(self, n_clusters: int, dissimilarity: str = "euclidean", overlap: float = 0.1,
                 rank: int | None = None, energy: float | None = 0.9999, tolerance: float | None = 0.01,
                 method: str = "exact", selector: str = "random_forest",
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
        self.labels_, self.centroids_ = kmeans(F, k, self.dissimilarity, int(self.random_state),
                                                int(self.minibatch_threshold), int(self.n_init))
        D = distances(F, self.centroids_, self.dissimilarity)
        self.members_ = overlap_members(D, self.labels_, float(self.overlap))
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
            return POD(method=method, rank=int(self.rank), energy=None, random_state=self.random_state).fit(Xc, w)
        if self.tolerance is None:
            return POD(method=method, energy=self.energy, random_state=self.random_state).fit(Xc, w)
        pod = POD(method="exact" if method == "randomized" else method, rank=None, energy=None,
                  random_state=self.random_state).fit(Xc, w)
        norm2 = float(np.sum(Xc ** 2 * w))
        s2 = pod.singular_values_ ** 2
        resid = np.maximum(float(s2.sum()) - np.concatenate([[0.0], np.cumsum(s2)]), 0.0)
        ok = np.flatnonzero(np.sqrt(resid / max(norm2, _TINY)) <= float(self.tolerance))
        r = int(ok[0]) if ok.size else s2.size
        return _truncate(pod, max(r, 1))

    def _fit_classifier(self, inputs: np.ndarray, labels: np.ndarray) -> Any:
        if np.unique(labels).size == 1:
            return None              # one cluster: nothing to classify
        clf = make_classifier(self.selector, dict(self.selector_params or {}), int(self.random_state))
        return clf.fit(inputs, labels)

    # ------------------------------------------------------------------ selection
    def select_by_state(self, states: np.ndarray) -> np.ndarray:
        """Nearest centroid (in the clustering dissimilarity) of each state."""
        F = self.features_.transform(np.atleast_2d(states))
        return np.argmin(distances(F, self.centroids_, self.dissimilarity), axis=1)

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

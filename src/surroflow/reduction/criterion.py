"""The a-priori efficiency criterion for the number of clusters, projection-error curves of
global against local bases, and :func:`dimension_to_reach`.

:func:`efficiency_criterion` is computed from the snapshots alone, before any surrogate: for
each candidate number of clusters it fits the local bases on part of the samples and measures,
on the held-out samples, the local rank needed to reach a projection tolerance (the online
cost) and the projection error against the basis dimension; it accepts more clusters only
while every doubling of their number cuts the mean local rank by at least ``min_gain``.
Defaults are those of the config schema's ``reduction.clustering`` section.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .clustering import FeatureMap
from .local import LocalPOD

_TINY = np.finfo(float).tiny


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
                            dissimilarity: str = "euclidean", overlap: float = 0.1,
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
                      energy=None, selector="nearest_centroid", random_state=random_state,
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
                         dissimilarity: str = "euclidean", overlap: float = 0.1,
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
                      energy=None, selector="nearest_centroid", random_state=random_state,
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

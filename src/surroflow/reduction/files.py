"""File-level functions of the reduction stages: generate dataset in, basis file out.

* :func:`fit_pod_file` (stage ``fit_pod``): the global POD basis of one variable, in memory or
  out of core (:func:`choose_fit_mode`: by ``reduction.memory_budget_mb`` and the job's memory);
* :func:`fit_local_pod_file` (stage ``fit_local_pod``): local bases and the a-priori criterion;
* :func:`projection_study_file` (stage ``plot_projection_study``): test projection error
  against basis dimension, global against local bases.

The weights of every basis (global, streaming, local) are :func:`surroflow.snapshots.space_weights`
of the generate dataset (on meshes its lumped mass ``mass(node)``).  The settings are the
validated config sections, taken as they are (the schema fills every default).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import open_dataset, write_dataset
from ..snapshots import (
    n_flagged,
    open_lazy,
    require_ok_samples,
    snapshot_groups,
    snapshot_inputs,
    snapshot_layout,
    snapshot_matrix,
    space_weights,
)
from .criterion import dimension_to_reach, efficiency_criterion, projection_error_curves
from .local import LocalPOD
from .pod import METHODS, POD
from .streaming import BUDGET_MARGIN, F8, rss_bytes

logger = logging.getLogger(__name__)

FIT_MODES = ("in_memory", "streaming")
#: the rules whose output is a generate dataset (the input of every reduction stage)
GENERATE_STAGES = ("collect_batches", "import_files")
#: working memory of the in-memory factorisation, in units of the snapshot matrix (on top of it)
WORKING_MEMORY = {"exact": 2.0, "tsqr": 1.0, "randomized": 1.0, "streaming": 1.0}


# =========================================================================== global basis
def make_pod(reduction: Mapping[str, Any]) -> POD:
    """An unfitted :class:`POD` with the settings of the validated ``reduction`` section (the
    one place a config section becomes a POD: ``fit_pod`` and the adaptive rounds)."""
    return POD(method=reduction["method"], rank=reduction["rank"], energy=reduction["energy"],
               oversampling=reduction["oversampling"], power_iterations=reduction["power_iterations"],
               random_state=reduction["seed"], chunk_snapshots=reduction["chunk_snapshots"])


def choose_fit_mode(n_rows: int, n_space: int, method: str, memory_budget_mb: float | None,
                    mem_mb: float | None, baseline_bytes: float = 0.0) -> tuple[str, float | None]:
    """``(fit_mode, budget_bytes)``: ``streaming`` when the snapshot matrix plus the working
    memory of ``method`` (2x it for ``exact``, 1x for ``tsqr``/``randomized``) plus what the
    process holds would exceed the memory limit, the smaller of ``memory_budget_mb``
    (``reduction.memory_budget_mb``) and the job's ``mem_mb`` where given; ``in_memory``
    otherwise (and always when neither is known).  ``budget_bytes`` is that limit.  Method
    ``streaming`` is always out of core (it needs a limit)."""
    limits = [float(v) for v in (memory_budget_mb, mem_mb) if v is not None]
    if not limits:
        if method == "streaming":
            raise SurroflowError("reduction.method=streaming needs a memory limit: set reduction.memory_budget_mb "
                                 "(or run it as a workflow job, whose mem_mb is the limit)")
        return "in_memory", None
    limit = min(limits)
    budget = float(limit) * 2 ** 20
    need = baseline_bytes + (1.0 + WORKING_MEMORY[method]) * n_rows * n_space * F8 + BUDGET_MARGIN
    return ("in_memory" if need <= budget and method != "streaming" else "streaming"), budget


def fit_pod_file(train_nc: str | os.PathLike[str], out_nc: str | os.PathLike[str], variable: str,
                 pod: POD, *, weights: str = "quadrature", memory_budget_mb: float | None = None,
                 mem_mb: float | None = None, n_workers: int | None = None,
                 client: Callable[[], ContextManager[Any]] | None = None,
                 attrs: Mapping[str, Any] | None = None) -> Path:
    """Fit ``pod`` (unfitted, its settings from ``reduction``) on ``variable`` of the generate
    dataset ``train_nc`` and write the basis to ``out_nc``.

    ``weights`` is a kind for :func:`surroflow.snapshots.space_weights` (on meshes the lumped
    mass ``mass(node)`` of the dataset).  The fit is out of core (:meth:`POD.fit_streaming`)
    when :func:`choose_fit_mode` says so, else in memory; ``client`` (a context-manager
    factory, e.g. a dask cluster) wraps an in-memory ``tsqr``/``randomized`` fit, which then
    computes on it.  Attributes: ``variable``, ``units``, ``weights_kind``, ``fit_mode``,
    ``memory_budget_mb`` (-1: none), ``fit_seconds``, ``n_train_snapshots``,
    ``train_projection_error`` and ``attrs`` (provenance).
    """
    t0 = time.perf_counter()
    if pod.method not in METHODS:
        raise SurroflowError(f"reduction.method={pod.method!r} is not allowed; allowed: {list(METHODS)}")
    open_dataset(train_nc, stage=GENERATE_STAGES, required=(variable,), load=False).close()
    baseline = rss_bytes()
    ds = open_lazy(train_nc)
    try:
        require_ok_samples(ds, str(train_nc), "samples", "nothing to reduce")
        lay = snapshot_layout(ds, variable)
        w = space_weights(ds, variable, weights)
        logger.info("%s: %d of %d training samples ok (%d excluded)", variable, lay.samples.size,
                    ds.sizes["sample"], n_flagged(ds))
        fit_mode, budget = choose_fit_mode(lay.n_rows, lay.n_space, pod.method, memory_budget_mb, mem_mb, baseline)
        need = (1.0 + WORKING_MEMORY[pod.method]) * lay.n_rows * lay.n_space * F8 + BUDGET_MARGIN
        logger.info("%s: memory: process %.1f MiB, an in-memory fit needs %.1f MiB more, limit %s -> %s", variable,
                    baseline / 2 ** 20, need / 2 ** 20, "none" if budget is None else f"{budget / 2 ** 20:.1f} MiB",
                    fit_mode)
        coords = {d: ds[d].load() for d in lay.space_dims if d in ds.coords}
        units = ds[variable].attrs.get("units", "1")
        if fit_mode == "in_memory":
            X = snapshot_matrix(ds, variable)
            if pod.method in ("tsqr", "randomized") and client is not None:
                import dask.array as da
                Xd = da.from_array(X, chunks=(min(int(pod.chunk_snapshots), X.shape[0]), X.shape[1]))
                with client():
                    pod.fit(Xd, w, n_workers=n_workers)
            else:
                pod.fit(X, w, n_workers=n_workers)
            del X
    finally:
        ds.close()
    if fit_mode == "streaming":
        assert budget is not None
        logger.info("%s: streaming POD of the %d x %d snapshot matrix (%.0f MiB; method %s, memory limit "
                    "%.0f MiB)", variable, lay.n_rows, lay.n_space, lay.n_rows * lay.n_space * F8 / 2 ** 20,
                    pod.method, budget / 2 ** 20)
        pod.fit_streaming(train_nc, variable, w, budget)
    fit_seconds = time.perf_counter() - t0
    logger.info("%s: %d snapshots x %d points -> %d modes (%s, %s, energy %.6f) in %.2f s", variable,
                lay.n_rows, lay.n_space, pod.n_modes_, pod.method, fit_mode, pod.energy_[pod.n_modes_ - 1],
                fit_seconds)
    out = pod.to_dataset(lay.space_dims, coords, lay.space_shape, attrs={
        "variable": variable, "units": units, "weights_kind": weights,
        "memory_budget_mb": -1.0 if memory_budget_mb is None else float(memory_budget_mb),
        "fit_seconds": fit_seconds, "n_train_snapshots": lay.n_rows, **dict(attrs or {})})
    out["train_projection_error"] = ((), pod.train_projection_error_,
                                     {"long_name": "relative projection error of all training snapshots",
                                      "units": "1"})
    write_dataset(out, out_nc)
    return Path(out_nc)


# =========================================================================== local bases
def _generate(path: str | os.PathLike[str], variable: str, consequence: str = "nothing to reduce") -> xr.Dataset:
    ds = open_dataset(path, stage=GENERATE_STAGES, required=(variable,))
    require_ok_samples(ds, str(path), "samples", consequence)
    logger.info("%s: %d of %d samples of %s ok (%d excluded)", variable, ds.sizes["sample"] - n_flagged(ds),
                ds.sizes["sample"], Path(path).name, n_flagged(ds))
    return ds


def _criterion(X: np.ndarray, w: np.ndarray, groups: np.ndarray, clustering: Mapping[str, Any]) -> Any:
    c = clustering
    return efficiency_criterion(X, w, c["candidates"], float(c["tolerance"]), dissimilarity=c["dissimilarity"],
                                overlap=float(c["overlap"]), groups=groups, min_gain=float(c["min_gain"]),
                                random_state=int(c["seed"]), minibatch_threshold=int(c["minibatch_threshold"]))


def make_local_pod(X: np.ndarray, w: np.ndarray, groups: np.ndarray, inputs: np.ndarray | None,
                   clustering: Mapping[str, Any], *, method: str, rank: int | None, energy: float | None,
                   criterion: bool = False, label: str = "snapshots") -> tuple[LocalPOD, Any]:
    """``(local bases, criterion or None)`` of the snapshot rows ``X`` (weights ``w``, sample of
    each row ``groups``, surrogate ``inputs`` of each row for a classifier selector): the one
    place a validated ``reduction.clustering`` section becomes a :class:`LocalPOD`.  The a-priori
    criterion picks the number of clusters for ``n_clusters: auto`` (computed too when
    ``criterion``); local ranks: ``local_rank``, else ``rank``, else ``tolerance`` per cluster."""
    k = clustering["n_clusters"]
    crit = None
    if k == "auto" or criterion:
        crit = _criterion(X, w, groups, clustering)
        logger.info("%s: efficiency criterion: mean local rank %s for %s clusters -> %d", label,
                    np.round(crit.mean_rank, 1).tolist(), crit.candidates.tolist(), crit.chosen)
        if k == "auto":
            k = crit.chosen
    selector = clustering["selector"]
    local_rank = clustering["local_rank"] if clustering["local_rank"] is not None else rank
    lp = LocalPOD(n_clusters=int(k), dissimilarity=clustering["dissimilarity"], overlap=float(clustering["overlap"]),
                  rank=local_rank, energy=energy,
                  tolerance=None if local_rank is not None else float(clustering["tolerance"]),
                  method=method, selector=selector, minibatch_threshold=int(clustering["minibatch_threshold"]),
                  random_state=int(clustering["seed"])).fit(X, w, inputs=None if selector == "nearest_centroid"
                                                            else inputs)
    return lp, crit


def fit_local_pod_file(train_nc: str | os.PathLike[str], variable: str, out_nc: str | os.PathLike[str],
                       clustering: Mapping[str, Any] | None, *, method: str, rank: int | None,
                       energy: float | None, weights: str, criterion_nc: str | os.PathLike[str] | None = None,
                       criterion_figure: str | os.PathLike[str] | None = None,
                       attrs: Mapping[str, Any] | None = None) -> Path:
    """Fit local bases of ``variable`` and write them (one NetCDF, ``cluster`` dimension).

    ``clustering`` is the validated ``reduction.clustering`` section; ``method``, ``rank``,
    ``energy`` and ``weights`` come from ``reduction``.  The a-priori criterion (held-out
    samples, ``tolerance``) picks the number of clusters when ``n_clusters`` is ``auto``; it is
    computed from the training snapshots in any case when ``criterion_nc``/``criterion_figure``
    are given (table and PNG+PDF curve), so the report shows it also for a fixed number.
    Local ranks: ``local_rank`` if set, else ``rank``, else the ``tolerance`` per cluster.
    """
    from .figures import plot_criterion
    if not clustering:
        raise SurroflowError(f"fit_local_pod of {variable!r}: reduction.clustering is null; set it to fit local bases")
    t0 = time.perf_counter()
    ds = _generate(train_nc, variable)
    X = snapshot_matrix(ds, variable)
    w = space_weights(ds, variable, weights)
    lay = snapshot_layout(ds, variable)
    if clustering["selector"] != "nearest_centroid" and "design" not in ds.variables:
        raise SurroflowError(f"{train_nc}: selector {clustering['selector']!r} needs the design (inputs); "
                             "the file has no 'design' variable")
    inputs = snapshot_inputs(ds, variable) if "design" in ds.variables else None
    lp, crit = make_local_pod(X, w, snapshot_groups(ds, variable), inputs, clustering,
                              method=method, rank=rank, energy=energy,
                              criterion=criterion_nc is not None or criterion_figure is not None, label=variable)
    fit_seconds = time.perf_counter() - t0
    k = len(lp.pods_)
    logger.info("%s: %d clusters, local ranks %s in %.2f s", variable, k, lp.n_modes_.tolist(), fit_seconds)
    coords = {d: ds[d] for d in lay.space_dims if d in ds.coords}
    out = lp.to_dataset(lay.space_dims, coords, lay.space_shape, attrs={
        "variable": variable, "units": ds[variable].attrs.get("units", "1"), "weights_kind": weights,
        "fit_seconds": fit_seconds, "n_train_snapshots": int(X.shape[0]), **dict(attrs or {})})
    if crit is not None:
        out.attrs["criterion_mean_rank"] = np.asarray(crit.mean_rank, dtype=float)
        out.attrs["criterion_candidates"] = np.asarray(crit.candidates, dtype=int)
        if criterion_nc is not None:
            cds = crit.to_dataset()
            cds.attrs.update({"variable": variable, **dict(attrs or {})})
            write_dataset(cds, criterion_nc)
        if criterion_figure is not None:
            plot_criterion(crit, criterion_figure)
    write_dataset(out, out_nc)
    return Path(out_nc)


# =========================================================================== projection study
def projection_study_file(train_nc: str | os.PathLike[str], test_nc: str | os.PathLike[str], variable: str,
                          out_png: str | os.PathLike[str], out_nc: str | os.PathLike[str] | None,
                          clustering: Mapping[str, Any], *, weights: str, max_rank: int = 40,
                          n_clusters: Sequence[int] | None = None,
                          attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The figure "projection error against basis dimension, global versus local" on the test
    set (bases fitted on the training set only), and the dimension each local basis needs to
    reach the global basis' error.

    ``clustering``: the validated ``reduction.clustering`` section; the local curves are for
    ``n_clusters`` (default: its ``candidates``).  For each local curve and each global
    dimension ``r_g`` it records the smallest local dimension reaching the global error at
    ``r_g`` (``dimension_ratio`` = local / global dimension).  Returns that summary
    (``global``: the global curve, ``ratio``: per number of clusters); writes the curves to
    ``out_nc`` when given.
    """
    from .figures import plot_projection_error
    tr, te = _generate(train_nc, variable), _generate(test_nc, variable, "no test projection error to compute")
    Xtr, Xte = snapshot_matrix(tr, variable), snapshot_matrix(te, variable)
    w = space_weights(tr, variable, weights)
    ks = sorted({1, *map(int, clustering["candidates"] if n_clusters is None else n_clusters)})
    max_rank = int(min(max_rank, min(Xtr.shape)))
    curves = projection_error_curves(Xtr, Xte, w, ks, max_rank, dissimilarity=clustering["dissimilarity"],
                                     overlap=float(clustering["overlap"]), random_state=int(clustering["seed"]),
                                     minibatch_threshold=int(clustering["minibatch_threshold"]))
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
                           for k in ks}, out_png, title=f"{variable}: test projection error", marks=marks)
    for k in ks[1:]:
        r = np.asarray(summary["ratio"][k], dtype=float)[1:]
        if np.isfinite(r).any():
            logger.info("%s: %d clusters reach the global test projection error with at most %.2f of its "
                        "dimension (median %.2f over global dimensions)", variable, k, float(np.nanmax(r)),
                        float(np.nanmedian(r)))
    if out_nc is not None:
        ds = xr.Dataset({
            "projection_error": (("n_clusters", "basis_dimension"), np.stack([curves[k] for k in ks]),
                                 {"long_name": "relative test projection error (nearest-centroid basis)", "units": "1"}),
            "dimension_ratio": (("n_clusters", "basis_dimension"), ratio,
                                {"long_name": "local dimension reaching the global error at this global dimension, "
                                              "divided by it", "units": "1"})},
            coords={"n_clusters": ks, "basis_dimension": dims},
            attrs={"variable": variable, "dissimilarity": clustering["dissimilarity"],
                   "overlap": float(clustering["overlap"]), **dict(attrs or {})})
        write_dataset(ds, out_nc)
    return summary


__all__ = [
    "FIT_MODES",
    "GENERATE_STAGES",
    "WORKING_MEMORY",
    "choose_fit_mode",
    "fit_local_pod_file",
    "fit_pod_file",
    "make_pod",
    "projection_study_file",
]

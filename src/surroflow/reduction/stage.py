"""Reduce stage: the POD basis of one output variable from the training snapshots.

A snapshot is the field of one (sample, time) pair (or one sample for steady problems);
everything else is space.  Test data are projected only after the basis is fixed, to record
the test projection error; they never influence the basis.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..generate import ok_samples
from ..io import open_dataset, provenance, write_dataset
from ..logging_utils import stage_logger
from .pod import POD


def time_dim_of(ds: xr.Dataset) -> str | None:
    td = ds.attrs.get("time_dim", "none")
    return None if td in ("none", "", None) else str(td)


def space_dims_of(ds: xr.Dataset, variable: str) -> tuple[str, ...]:
    td = time_dim_of(ds)
    return tuple(d for d in ds[variable].dims if d not in ("sample", td))


def snapshot_matrix(ds: xr.Dataset, variable: str) -> tuple[np.ndarray, tuple[str, ...], tuple[int, ...]]:
    """``(n_sample * n_time, n_space)`` rows ordered sample-major, plus space dims and shape."""
    if variable not in ds:
        raise SurroflowError(f"variable {variable!r} not in dataset; present: {sorted(map(str, ds.data_vars))}")
    td = time_dim_of(ds)
    space = space_dims_of(ds, variable)
    order = ("sample", td, *space) if td else ("sample", *space)
    arr = ds[variable].transpose(*order).values
    space_shape = tuple(ds.sizes[d] for d in space)
    return arr.reshape(-1, int(np.prod(space_shape))), space, space_shape


def grid_weights(coord: np.ndarray, periodic: bool) -> np.ndarray:
    """Trapezoidal quadrature weights of a 1-D grid (rectangle rule on a periodic grid)."""
    x = np.asarray(coord, dtype=float)
    if x.size == 1:
        return np.ones(1)
    dx = np.diff(x)
    w = np.empty_like(x)
    if periodic:
        period_gap = dx.mean()  # periodic grids exclude the end point
        w[0] = 0.5 * (dx[0] + period_gap)
        w[-1] = 0.5 * (dx[-1] + period_gap)
    else:
        w[0], w[-1] = 0.5 * dx[0], 0.5 * dx[-1]
    w[1:-1] = 0.5 * (dx[:-1] + dx[1:])
    return w


def space_weights(ds: xr.Dataset, variable: str, kind: str, simulator: Any = None) -> np.ndarray:
    """Inner-product weights per spatial point of ``variable`` (flattened like the snapshots)."""
    space = space_dims_of(ds, variable)
    shape = tuple(ds.sizes[d] for d in space)
    if kind == "uniform":
        return np.ones(int(np.prod(shape)))
    if kind == "mass" or (kind == "quadrature" and any(d == "node" for d in space)):
        fn = getattr(simulator, "space_weights", None)
        if fn is None:
            if kind == "mass":
                raise SurroflowError(f"reduction.weights=mass: simulator provides no mass weights for {variable!r}; "
                                     "allowed here: uniform, quadrature")
            return np.ones(int(np.prod(shape)))
        w = np.asarray(fn(variable), dtype=float).reshape(-1)
        if w.size != int(np.prod(shape)):
            raise SurroflowError(f"simulator weights for {variable!r} have {w.size} entries, expected {np.prod(shape)}")
        return w
    w = np.ones(shape)
    for axis, d in enumerate(space):
        if d in ds.coords and ds[d].dtype.kind == "f" and ds[d].ndim == 1:
            periodic = bool(int(ds[d].attrs.get("periodic", 0)))
            wd = grid_weights(ds[d].values, periodic)
            w = w * wd.reshape([-1 if a == axis else 1 for a in range(len(space))])
    return w.reshape(-1)


def fit_pod_file(train_nc: str, test_nc: str | None, out_nc: str, variable: str,
                 reduction_cfg: Mapping[str, Any], simulator_cfg: Mapping[str, Any], study: str,
                 config_section: Mapping[str, Any], memory_mb: int | None = None,
                 log_file: str | None = None, dask_cfg: Mapping[str, Any] | None = None,
                 n_workers: int = 1) -> Path:
    """Fit the POD basis of ``variable`` and write ``modes(mode, space...)`` etc. to ``out_nc``."""
    from ..simulators import get_simulator

    with stage_logger("reduce", log_file) as logger:
        t0 = time.perf_counter()
        train = open_dataset(train_nc, stage="generate", required=(variable, "status"))
        n_all = train.sizes["sample"]
        train = ok_samples(train)
        logger.info("%s: %d of %d training samples ok (%d excluded)", variable, train.sizes["sample"],
                    n_all, n_all - train.sizes["sample"])
        sim = get_simulator(simulator_cfg["name"], **simulator_cfg.get("settings", {}))
        X, space, shape = snapshot_matrix(train, variable)
        w = space_weights(train, variable, reduction_cfg.get("weights", "quadrature"), sim)
        pod = POD(method=reduction_cfg.get("method", "exact"), rank=reduction_cfg.get("rank"),
                  energy=reduction_cfg.get("energy", 0.9999),
                  oversampling=reduction_cfg.get("oversampling", 10),
                  power_iterations=reduction_cfg.get("power_iterations", 2),
                  random_state=reduction_cfg.get("seed", 0))
        if pod.method != "exact":
            import dask.array as da
            chunk = int(reduction_cfg.get("chunk_snapshots", 4096))
            X = da.from_array(X, chunks=(min(chunk, X.shape[0]), X.shape[1]))
            from ..distributed import dask_client
            with dask_client(dask_cfg, n_workers=n_workers, memory_mb=memory_mb):
                pod.fit(X, weights=w)   # the backends compute on the active client
        else:
            pod.fit(X, weights=w)
        fit_seconds = time.perf_counter() - t0
        logger.info("%s: %d snapshots x %d points -> %d modes (energy %.6f) in %.2f s", variable,
                    X.shape[0], X.shape[1], pod.n_modes_, pod.energy_[pod.n_modes_ - 1], fit_seconds)
        coords = {d: train[d] for d in space if d in train.coords}
        ds = pod.to_dataset(space, coords, shape, attrs={
            "variable": variable, "units": train[variable].attrs.get("units", "1"),
            "weights_kind": reduction_cfg.get("weights", "quadrature"),
            "fit_seconds": fit_seconds, "n_train_snapshots": int(X.shape[0]),
        })
        ds["train_projection_error"] = ((), _rel_projection_error(pod, np.asarray(X)),
                                        {"long_name": "relative projection error of all training snapshots"})
        if test_nc:
            test = ok_samples(open_dataset(test_nc, stage="generate", required=(variable,)))
            Xt, _, _ = snapshot_matrix(test, variable)
            n_t = test.sizes.get(time_dim_of(test) or "", 1)
            err = [_rel_projection_error(pod, Xt[i * n_t:(i + 1) * n_t]) for i in range(test.sizes["sample"])]
            ds["test_projection_error"] = (("test_sample",), np.asarray(err),
                                           {"long_name": "relative projection error per test sample (basis fixed)",
                                            "units": "1"})
            ds = ds.assign_coords(test_sample=test["sample"].values)
            logger.info("%s: test projection error mean %.3e max %.3e", variable, np.mean(err), np.max(err))
        ds.attrs.update(provenance("reduce", config_section, study))
        write_dataset(ds, out_nc)
        return Path(out_nc)


def _rel_projection_error(pod: POD, X: np.ndarray) -> float:
    X = np.asarray(X)
    num = np.sum(pod.norm(X - pod.project(X)) ** 2)
    den = np.sum(pod.norm(X) ** 2)
    return float(np.sqrt(num / max(den, np.finfo(float).tiny)))


def fit_local_pod_stage(train_nc: str, out_basis: str, out_criterion: str, out_figure: str,
                        variable: str, reduction_cfg: Mapping[str, Any], study: str,
                        config_section: Mapping[str, Any], log_file: str | None = None) -> Path:
    """The ``fit_local_pod`` rule: local bases of ``variable`` plus the a-priori criterion.

    The criterion (mean local rank reaching the tolerance against the number of clusters) is
    computed from the training snapshots alone and always written, so its curve is in the report
    also when ``n_clusters`` is fixed.
    """
    from . import backends
    from .figures import plot_criterion
    from .local import clustering_options, efficiency_criterion, local_pod_file

    with stage_logger("reduce", log_file) as logger:
        clustering = reduction_cfg.get("clustering") or {}
        opts = clustering_options(clustering)
        attrs = {**provenance("reduce", config_section, study), "basis": "local"}
        local_pod_file(train_nc, variable, out_basis, clustering, method="exact",
                       rank=reduction_cfg.get("rank"), energy=reduction_cfg.get("energy", 0.9999),
                       weights=reduction_cfg.get("weights", "quadrature"), criterion_nc=out_criterion,
                       criterion_figure=out_figure, attrs=attrs)
        if not Path(out_criterion).exists():     # fixed n_clusters: the criterion is still shown
            ds = open_dataset(train_nc, required=(variable,))
            X = backends.snapshot_matrix(ds, variable)
            w = backends.resolve_weights(ds, variable, reduction_cfg.get("weights", "quadrature"))
            crit = efficiency_criterion(X, w, opts["candidates"], opts["tolerance"],
                                        dissimilarity=opts["dissimilarity"], overlap=opts["overlap"],
                                        groups=backends.snapshot_groups(ds, variable), min_gain=opts["min_gain"],
                                        random_state=opts["seed"], minibatch_threshold=opts["minibatch_threshold"])
            cds = crit.to_dataset()
            cds.attrs.update({"variable": variable, **attrs})
            write_dataset(cds, out_criterion)
            plot_criterion(crit, out_figure)
        logger.info("%s: local bases written to %s", variable, out_basis)
        return Path(out_basis)


def plot_projection_study_stage(train_nc: str, test_nc: str, out_curves: str, out_figure: str, variable: str,
                                reduction_cfg: Mapping[str, Any], study: str, config_section: Mapping[str, Any],
                                log_file: str | None = None) -> dict[str, Any]:
    """The ``plot_projection_study`` rule: test projection error against basis dimension, global
    versus local bases (the bases are fitted on the training set only)."""
    from .local import clustering_options, projection_study_file

    with stage_logger("reduce", log_file) as logger:
        clustering = reduction_cfg.get("clustering") or {}
        cands = [int(k) for k in clustering_options(clustering)["candidates"]]
        summary = projection_study_file(train_nc, test_nc, variable, out_figure, out_curves,
                                        n_clusters=cands, clustering=clustering,
                                        weights=reduction_cfg.get("weights", "quadrature"),
                                        attrs=provenance("reduce", config_section, study))
        for k, ratios in summary["ratio"].items():
            r = np.asarray(ratios, dtype=float)
            if np.isfinite(r).any():
                logger.info("%s: %s clusters reach the global test projection error with at most %.2f of "
                            "its dimension (median %.2f over global dimensions)", variable, k,
                            float(np.nanmax(r[1:])) if r.size > 1 else float("nan"), float(np.nanmedian(r[1:])))
        return summary

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

from ..io import open_dataset, provenance, write_dataset
from ..snapshots import ok_samples, snapshot_groups, snapshot_layout, snapshot_matrix, space_weights
from ..logging_utils import stage_logger
from .pod import POD


def fit_pod_file(train_nc: str, test_nc: str | None, out_nc: str, variable: str,
                 reduction_cfg: Mapping[str, Any], simulator_cfg: Mapping[str, Any], study: str,
                 config_section: Mapping[str, Any], memory_mb: int | None = None,
                 log_file: str | None = None, dask_cfg: Mapping[str, Any] | None = None,
                 n_workers: int = 1) -> Path:
    """Fit the POD basis of ``variable`` and write ``modes(mode, space...)`` etc. to ``out_nc``."""
    with stage_logger("reduce", log_file) as logger:
        t0 = time.perf_counter()
        train = open_dataset(train_nc, stage="generate", required=(variable, "status"))
        n_all = train.sizes["sample"]
        train = ok_samples(train)
        logger.info("%s: %d of %d training samples ok (%d excluded)", variable, train.sizes["sample"],
                    n_all, n_all - train.sizes["sample"])
        X = snapshot_matrix(train, variable)
        lay = snapshot_layout(train, variable)
        space, shape = lay.space_dims, lay.space_shape
        w = space_weights(train, variable, reduction_cfg.get("weights", "quadrature"))
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
            Xt = snapshot_matrix(test, variable)
            n_t = snapshot_layout(test, variable).n_time
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
            X = snapshot_matrix(ds, variable)
            w = space_weights(ds, variable, reduction_cfg.get("weights", "quadrature"))
            crit = efficiency_criterion(X, w, opts["candidates"], opts["tolerance"],
                                        dissimilarity=opts["dissimilarity"], overlap=opts["overlap"],
                                        groups=snapshot_groups(ds, variable), min_gain=opts["min_gain"],
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

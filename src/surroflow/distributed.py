"""The dask cluster of a stage, built from the ``dask`` config section.

``kind: local`` (default) starts a LocalCluster sized to the rule's threads and memory, with one
thread per worker and single-threaded BLAS in the workers; ``kind: address`` joins a running
scheduler; ``kind: slurm`` starts dask-jobqueue's SLURMCluster.  Rules never build clusters
themselves: they call :func:`dask_client`.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator, Mapping

from . import SurroflowError

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_env() -> dict[str, str]:
    return {v: "1" for v in _BLAS_VARS}


@contextlib.contextmanager
def dask_client(cfg: Mapping[str, Any] | None = None, n_workers: int = 1,
                memory_mb: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for the configured cluster; closed (and the cluster shut down) on exit."""
    from distributed import Client, LocalCluster

    cfg = dict(cfg or {})
    kind = cfg.get("kind", "local")
    if kind == "local":
        n = max(1, int(n_workers))
        mem = f"{max(256, int(memory_mb) // n)}MiB" if memory_mb else "auto"
        for k, v in _single_threaded_env().items():   # inherited by nanny-spawned workers
            os.environ.setdefault(k, v)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=bool(cfg.get("processes", True)),
                               memory_limit=mem, dashboard_address=None, silence_logs=logging.ERROR,
                               worker_dashboard_address=None)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    elif kind == "address":
        address = cfg.get("address")
        if not address:
            raise SurroflowError("dask.address: required when dask.kind is 'address'")
        client = Client(address, timeout=cfg.get("timeout", "30s"))
        try:
            yield client
        finally:
            client.close()
    elif kind == "slurm":
        from dask_jobqueue import SLURMCluster
        s = dict(cfg.get("slurm") or {})
        cluster = SLURMCluster(
            cores=int(s.get("cores", 1)), processes=int(s.get("processes", s.get("cores", 1))),
            memory=str(s.get("memory", "2GB")), walltime=str(s.get("walltime", "00:30:00")),
            queue=s.get("partition"), account=s.get("account"),
            job_script_prologue=list(s.get("prologue", [])) + [f"export {k}={v}" for k, v in _single_threaded_env().items()],
            local_directory=s.get("local_directory"), log_directory=s.get("log_directory"),
            job_extra_directives=list(s.get("extra_directives", [])),
            scheduler_options={"dashboard_address": None},
        )
        if s.get("adaptive", False):
            cluster.adapt(minimum_jobs=int(s.get("minimum_jobs", 0)), maximum_jobs=int(s.get("jobs", 1)))
        else:
            cluster.scale(jobs=int(s.get("jobs", 1)))
        client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=float(s.get("start_timeout", 300)))
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        raise SurroflowError(f"dask.kind={kind!r} is not allowed; allowed: ['local', 'address', 'slurm']")

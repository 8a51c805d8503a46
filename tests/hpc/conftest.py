"""Fixtures of the HPC tests: the SLURM cluster (or a skip) and the local reference run."""
from __future__ import annotations

import pytest

from .helpers import local_config, slurm_unavailable, snakemake


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (with the reason) unless `sinfo` reaches a cluster with a usable node."""
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def local_reference(tmp_path_factory):
    """The whole workflow on tests/config/slurm.yaml, run locally (LocalCluster, 2 workers)."""
    work = tmp_path_factory.mktemp("hpc_local")
    res = snakemake(work, local_config(), timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    return work

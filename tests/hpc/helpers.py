"""The HPC tests' study and SLURM test cluster, and comparing two runs' artifacts (snakemake
itself runs through tests/snakemake_runner.py)."""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Mapping

import xarray as xr
import yaml

from ..snakemake_runner import ROOT, job_counts, load_yaml, snakemake, snakemake_cmd, write_config

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"

#: variables that hold measured times, not results: they differ between any two runs
TIMING_VARIABLES = ("wall_time", "latency_seconds", "throughput_seconds", "speedup", "speedup_throughput",
                    "hf_seconds", "hf_seconds_generate", "offline_seconds")


def site_partition_account() -> tuple[str | None, str | None]:
    """Partition and account for the tests on a real site cluster (unset for the local one):
    environment variables SURROFLOW_TEST_SLURM_PARTITION and SURROFLOW_TEST_SLURM_ACCOUNT."""
    return (os.environ.get("SURROFLOW_TEST_SLURM_PARTITION") or None,
            os.environ.get("SURROFLOW_TEST_SLURM_ACCOUNT") or None)


#: the study of the HPC tests, with its dask SLURMCluster (tests/config/slurm.yaml)
SLURM_CONFIG = load_yaml(ROOT / "tests" / "config" / "slurm.yaml")
STUDY = "hpc"
_partition, _account = site_partition_account()
SLURM_CONFIG["dask"]["slurm"].update({k: v for k, v in (("partition", _partition), ("account", _account)) if v})


def local_config() -> dict:
    """tests/config/slurm.yaml with the default local dask cluster."""
    cfg = copy.deepcopy(SLURM_CONFIG)
    cfg["dask"] = {"kind": "local"}
    return cfg


# --------------------------------------------------------------------------- SLURM
def slurm_unavailable() -> str | None:
    """Why no SLURM cluster can be used here (None when `sinfo` answers with a usable node)."""
    if shutil.which("sinfo") is None:
        return "no SLURM client (sinfo) on PATH: run `bash tests/hpc/local_slurm.sh start`"
    try:
        res = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed ({exc}): run `bash tests/hpc/local_slurm.sh start`"
    states = res.stdout.split()
    if res.returncode != 0 or not states:
        why = (res.stderr.strip().splitlines() or ["no nodes"])[-1]
        return f"no SLURM cluster reachable ({why}): run `bash tests/hpc/local_slurm.sh start`"
    if not any(s.rstrip("*~#!%$@^-").startswith(("idle", "mix", "alloc", "completing")) for s in states):
        return f"no usable SLURM node (states: {states})"
    return None


def slurm_test_profile(folder: Path, overrides: Mapping | None = None) -> Path:
    """The project's SLURM profile with its requests as shipped (the workflow fits them to the
    nodes that sinfo lists: docs/hpc.md), plus what a test cluster needs.

    No account and status from squeue (the two slurm-* flags any cluster without accounting
    needs), faster status polling, no retries, and the first failure stops the run.
    """
    p = load_yaml(SLURM_PROFILE)
    p.update({"slurm-no-account": True, "slurm-status-command": "squeue",
              "slurm-init-seconds-before-status-checks": 10, "retries": 0, "latency-wait": 10,
              "keep-going": False})
    partition, account = site_partition_account()
    if partition:
        p["default-resources"]["slurm_partition"] = partition
    if account:
        p["default-resources"]["slurm_account"] = account
        del p["slurm-no-account"]
    p.update(overrides or {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return folder


# --------------------------------------------------------------------------- comparisons
def open_artifact(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.drop_vars([v for v in TIMING_VARIABLES if v in ds.variables]).load()


def assert_artifacts_allclose(a: Path, b: Path, files: Iterable[str], rtol: float = 1e-9,
                              atol: float = 1e-12) -> None:
    """``xarray.testing.assert_allclose`` on each ``file`` of two results folders (times dropped)."""
    for f in files:
        da, db = open_artifact(a / f), open_artifact(b / f)
        try:
            xr.testing.assert_allclose(da, db, rtol=rtol, atol=atol)
        except AssertionError as exc:
            raise AssertionError(f"{f} differs between {a} and {b}:\n{exc}") from None


__all__ = ["ROOT", "SLURM_CONFIG", "STUDY", "job_counts", "load_yaml", "local_config", "snakemake",
           "snakemake_cmd", "write_config", "slurm_unavailable", "slurm_test_profile", "assert_artifacts_allclose",
           "result_files"]


def result_files(results: Path, study: str) -> list[str]:
    """Every artifact of a study relative to ``results`` (batches, bases, models, metrics)."""
    base = results / study
    return sorted(str(p.relative_to(results)) for p in base.rglob("*.nc"))

"""The workflow on a real SLURM cluster (tests/hpc/local_slurm.sh starts one on this machine).

(a) every job submitted with `snakemake --executor slurm` (the project's SLURM profile);
(b) local jobs whose dask cluster is dask-jobqueue's SLURMCluster (config dask.kind: slurm).
Both must give the artifacts of the local run (`local_reference`), to floating tolerance.
"""
from __future__ import annotations

import os
import re
import subprocess
import time

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.distributed import dask_client
from surroflow.stages.generate_batch import run_samples
from surroflow.io import open_dataset

from surroflow.stages.plan import SINFO_FORMAT, parse_sinfo

from .helpers import (SLURM_CONFIG, STUDY, assert_artifacts_allclose, job_counts, local_config,
                      result_files, site_partition_account, slurm_test_profile, snakemake)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _largest_default_node():
    out = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    return parse_sinfo(out).largest(site_partition_account()[0])[1]


def test_snakemake_slurm_executor_matches_local_run(slurm_cluster, local_reference, tmp_path):
    work = tmp_path / "work"
    # the profile's requests as shipped: on a node with fewer CPUs than generate_batch asks for
    # (4), its jobs get the node's CPUs, with a line saying so
    profile = slurm_test_profile(tmp_path / "profile")
    res = snakemake(work, local_config(), "--profile", str(profile), "--jobs", "4",
                    cores=None, timeout=420)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    node = _largest_default_node()
    clamped = "SLURM: generate_batch asks for 4 CPUs, but the largest node of partition"
    assert (clamped in out) == (node.cpus < 4), out[-5000:]
    if node.cpus < 4:
        assert f"--cpus-per-task={node.cpus}" in out or f"cpus_per_task={node.cpus}" in out
    counts = job_counts(out)
    submitted = out.count("has been submitted with SLURM jobid")
    assert submitted == sum(n for rule, n in counts.items() if rule != "all"), out[-3000:]
    files = result_files(local_reference / "results", STUDY)
    assert f"{STUDY}/evaluation/metrics.nc" in files and f"{STUDY}/train/linear.nc" in files
    assert_artifacts_allclose(local_reference / "results", work / "results", files)


def test_request_larger_than_every_node_stops_the_run_before_any_submission(slurm_cluster, tmp_path):
    work = tmp_path / "work"
    profile = slurm_test_profile(tmp_path / "profile")
    t0 = time.monotonic()
    res = snakemake(work, local_config(), "--profile", str(profile),
                    "--set-resources", "generate_batch:mem_mb=10000000", cores=None, timeout=240)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-5000:]
    node = _largest_default_node()
    assert (f"surroflow: error: SLURM: rule generate_batch asks for 1 CPU and mem_mb=10000000 per job, but "
            f"the largest node of partition ") in out, out[-5000:]
    assert f"is {node.name} with " in out and f"--set-resources generate_batch:mem_mb={node.memory_mb}" in out
    assert "surroflow: nothing was submitted" in out
    assert "has been submitted with SLURM jobid" not in out
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)   # the name of every job of the run
    assert not subprocess.run(["squeue", "-h", "-n", run_id], capture_output=True, text=True,
                              timeout=20).stdout.strip()
    assert time.monotonic() - t0 < 120


def test_dask_slurmcluster_matches_local_run(slurm_cluster, local_reference, tmp_path):
    work = tmp_path / "work"
    assert SLURM_CONFIG["dask"]["kind"] == "slurm"
    # both splits generated and collected (fit_pod reads only the training split), and the basis
    res = snakemake(work, SLURM_CONFIG, f"results/{STUDY}/generate/test.nc", f"results/{STUDY}/reduce/u.nc",
                    timeout=420)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    log = (work / "logs" / "generate_batch" / f"{STUDY}_train_0000.log").read_text()
    assert "SLURMCluster: 2 job(s) x 1 cores" in log
    # the workers ran as SLURM jobs: dask-jobqueue's job logs
    assert list((work / "logs" / "dask_slurm").glob("surroflow-dask-*.err"))
    files = [f for f in result_files(local_reference / "results", STUDY)
             if f.split("/")[1] in ("design", "generate", "reduce")]
    assert len(files) == 8   # 3 designs (the calibration one empty), 2 batches, 2 collected, 1 basis
    assert_artifacts_allclose(local_reference / "results", work / "results", files)
    train = open_dataset(work / "results" / STUDY / "generate" / "train.nc")
    assert int((train["status"] != 0).sum()) == 0


def _our_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", "surroflow-dask", "-o", "%i %T"], capture_output=True,
                         text=True, timeout=20).stdout
    return out.split("\n") if out.strip() else []


def test_adaptive_slurmcluster_scales_up_and_cancels_its_jobs(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # the worker logs go to logs/dask_slurm here
    cfg = {"kind": "slurm", "slurm": {**SLURM_CONFIG["dask"]["slurm"], "adaptive": True,
                                      "minimum_jobs": 0, "jobs": 2}}
    settings = SLURM_CONFIG["studies"][STUDY]["simulator"]["settings"]
    records = [{"nu": 0.05 + 0.01 * i, "amplitude": 0.8} for i in range(4)]
    with dask_client(cfg) as client:
        assert not client.scheduler_info()["workers"]   # adaptive from zero: no job yet
        futures = client.map(run_samples, ["burgers"] * 4, [settings] * 4, [[r] for r in records],
                             [None] * 4, pure=False)
        results = [res for f in futures for res in f.result()]
        assert all(isinstance(out, dict) and np.isfinite(out["u"]).all() for out, _ in results)
        jobs = client.run(os.getenv, "SLURM_JOB_ID")   # every worker is a SLURM job
        assert jobs and all(jobs.values()), jobs
    deadline = time.monotonic() + 30
    while _our_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [j for j in _our_jobs() if "RUNNING" in j or "PENDING" in j]


def test_slurmcluster_refused_by_slurm_fails_at_once_with_the_reason(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {"kind": "slurm", "slurm": {"cores": 1, "memory": "100TB", "jobs": 1, "start_timeout": 300}}
    t0 = time.monotonic()
    with pytest.raises(SurroflowError, match="SLURM refuses the worker job"):
        with dask_client(cfg):
            pass
    assert time.monotonic() - t0 < 60

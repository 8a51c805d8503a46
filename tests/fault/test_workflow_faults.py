"""Faults of a whole workflow run: snakemake killed mid-generation, a corrupted NetCDF input,
samples that time out.  Each test injects the fault and checks what the run does about it."""
from __future__ import annotations

import copy
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from surroflow.config import validate_config
from surroflow.io import STATUS_FLAGS, STATUS_OK, open_dataset
from surroflow.stages import StageContext, collect_batches, generate_batch

from ..snakemake_runner import ROOT, fingerprint, job_counts, load_yaml, snakemake, snakemake_background

pytestmark = pytest.mark.slow

CONFIG = load_yaml(ROOT / "tests" / "config" / "fault.yaml")
STUDY = "fault"
N_BATCHES = {"train": 4, "test": 1}


def _batch_files(work: Path) -> list[Path]:
    return sorted((work / "results" / STUDY / "generate").glob("*/batch_*.nc"))


def _undisturbed(work: Path, out: Path, split: str) -> xr.Dataset:
    """The split generated from the run's own design, in this process, without interruption
    (the same stage functions the rules call)."""
    cfg = {**validate_config(CONFIG), "dask": {"kind": "local", "processes": False}}
    batches = []
    for b in range(N_BATCHES[split]):
        path = out / f"{split}_batch_{b:04d}.nc"
        ctx = StageContext.for_study(cfg, STUDY, "generate_batch", threads=2, split=split, batch=f"{b:04d}")
        generate_batch.run({"design": str(work / "results" / STUDY / "design" / f"{split}.nc")},
                           {"batch": str(path)}, ctx)
        batches.append(str(path))
    ctx = StageContext.for_study(cfg, STUDY, "collect_batches", split=split)
    ctx.section["simulator"]["max_failure_fraction"] = 0.0
    collect_batches.run({"design": str(work / "results" / STUDY / "design" / f"{split}.nc"), "batches": batches},
                        {"data": str(out / f"{split}.nc")}, ctx)
    return open_dataset(out / f"{split}.nc").drop_vars("wall_time")


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Run generation one job at a time, SIGKILL snakemake and everything under it while the
    third batch job runs (two finished before it), then recover as docs/hpc.md says: --unlock,
    then --rerun-incomplete."""
    base = tmp_path_factory.mktemp("killed")
    work = base / "work"
    targets = [f"results/{STUDY}/generate/{s}.nc" for s in N_BATCHES]
    proc = snakemake_background(work, CONFIG, *targets, "--set-threads", "generate_batch=1", cores=1)
    deadline = time.monotonic() + 240
    try:
        # one job at a time: a third job's log means two jobs are complete
        while len(list((work / "logs" / "generate_batch").glob("*.log"))) < 3:
            assert proc.poll() is None, (base / "work.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two batches within 240 s"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # snakemake, the running job and its dask workers
        proc.wait(timeout=60)
    finished = {p: fingerprint(p) for p in _batch_files(work)}
    # a writer killed between writing its temporary file and renaming it leaves one behind
    leftover = work / "results" / STUDY / "generate" / "train" / ".batch_0003.nc.killed.tmp.nc"
    leftover.write_bytes(b"\x89HDF\r\n\x1a\n truncated")

    locked = snakemake(work, CONFIG, *targets, "--rerun-incomplete", cores=2)
    unlock = snakemake(work, CONFIG, "--unlock", cores=1)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    resumed = snakemake(work, CONFIG, *targets, f"results/{STUDY}/reduce/u.nc", "--rerun-incomplete", cores=2)
    return {"work": work, "finished": finished, "locked": locked, "resumed": resumed,
            "leftover": leftover, "base": base}


def test_killed_run_recomputes_only_unfinished_batches(killed_and_resumed, tmp_path):
    k = killed_and_resumed
    work, finished, resumed = k["work"], k["finished"], k["resumed"]
    assert len(finished) == 2
    # SIGKILL leaves the lock: even with --rerun-incomplete the rerun refuses to start
    assert k["locked"].returncode != 0
    assert "LockException" in k["locked"].stderr and "--unlock" in k["locked"].stderr
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-4000:]
    assert job_counts(out)["generate_batch"] == sum(N_BATCHES.values()) - len(finished), out[:3000]
    for path, before in finished.items():
        assert fingerprint(path) == before, f"{path} was rewritten"
    assert len(_batch_files(work)) == sum(N_BATCHES.values())
    assert not k["leftover"].exists(), "the killed writer's temporary file was not removed"
    for split in N_BATCHES:
        got = open_dataset(work / "results" / STUDY / "generate" / f"{split}.nc").drop_vars("wall_time")
        xr.testing.assert_allclose(got, _undisturbed(work, tmp_path, split))


def test_corrupted_netcdf_input_is_named_without_traceback(killed_and_resumed, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(killed_and_resumed["work"], work, symlinks=True)
    data = work / "results" / STUDY / "generate" / "train.nc"
    blob = data.read_bytes()
    data.write_bytes(blob[: len(blob) // 2])      # truncated, as by a full disk or a killed copy
    os.utime(data)                                # newer than the basis: fit_pod reruns
    res = snakemake(work, CONFIG, f"results/{STUDY}/reduce/u.nc", cores=2)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "fit_pod" in out
    log = (work / "logs" / "fit_pod" / f"{STUDY}_u.log").read_text()
    for text in (out, log):
        assert f"results/{STUDY}/generate/train.nc: not a readable NetCDF4/HDF5 file" in text
        assert "truncated or corrupted" in text
    # the log and the terminal have the one-line reason and no Python traceback
    assert "Traceback" not in log
    assert "Traceback" not in out


def test_timed_out_samples_are_flagged_excluded_and_counted(tmp_path):
    cfg = copy.deepcopy(CONFIG)
    study = cfg["studies"][STUDY]
    # a sample solves in ~0.2 s; 3 s leaves room for a loaded machine
    study["simulator"].update(name="flaky_burgers", timeout_s=3.0, max_failure_fraction=0.5)
    study["simulator"]["settings"].update(sleep_above_amplitude=0.8, sleep_s=30.0)
    study["design"].update(n_train=8, n_test=3, batch_size=8)
    res = snakemake(tmp_path, cfg, cores=2)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    r = tmp_path / "results" / STUDY
    train = open_dataset(r / "generate" / "train.nc")
    amp = train["design"].sel(parameter="amplitude").values
    status = train["status"].values
    slow = amp > 0.8
    assert slow.any() and not slow.all()
    assert np.all(status[slow] == STATUS_FLAGS["timeout"])
    assert np.all(status[~slow] == STATUS_OK)
    assert all("exceeded timeout of 3 s" in str(s) for s in train["status_reason"].values[slow])
    assert np.all(np.isnan(train["u"].values[slow]))
    n_bad = int(slow.sum())
    log = (tmp_path / "logs" / "fit_pod" / f"{STUDY}_u.log").read_text()
    assert f"({n_bad} excluded)" in log
    summary = pd.read_csv(r / "evaluation" / "summary.csv")
    assert int(summary["n_train_flagged"].iloc[0]) == n_bad
    assert np.isfinite(summary["rel_l2_mean"]).all()

"""Swapped files, as an unlucky user or an attacker makes them, on a finished tiny run: each is
refused by the stage that reads it with a sentence naming the file (no traceback), or named
stale by ``python -m surroflow provenance`` when Snakemake sees nothing to rerun; two runs
cannot write one results folder."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..snakemake_runner import ROOT, load_yaml, snakemake

pytestmark = pytest.mark.slow

TINY = load_yaml(ROOT / "tests" / "config" / "tiny.yaml")
STUDY = "tiny"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("lineage") / "run"
    res = snakemake(work, TINY)
    assert res.returncode == 0, res.stderr[-4000:]
    return work


@pytest.fixture
def run(finished, tmp_path):
    """A private copy of the finished run (files, metadata and timestamps)."""
    work = tmp_path / "run"
    shutil.copytree(finished, work, symlinks=True)
    return work


def _res(work: Path) -> Path:
    return work / "results" / STUDY


def _refused(work: Path, *expected: str) -> str:
    res = snakemake(work, TINY)
    assert res.returncode != 0, "the swapped file was accepted"
    text = res.stdout + res.stderr
    logs = "".join(p.read_text() for p in (work / "logs").rglob("*.log"))
    for e in expected:
        assert e in text, text[-3000:]
    assert "Traceback" not in res.stderr and "Traceback" not in logs
    return text


def _provenance(work: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surroflow", "provenance", "results", "--config", "config.yaml"],
                          capture_output=True, text=True, cwd=work, timeout=120)


def test_a_finished_run_is_current_and_gives_its_lock_back(finished):
    res = _provenance(finished)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "0 stale" in res.stdout
    assert not (finished / "results" / ".surroflow.lock").exists()


def test_test_split_copied_over_train_split_is_refused_and_named_stale(run):
    gen = _res(run) / "generate"
    shutil.copy2(gen / "test.nc", gen / "train.nc")       # timestamps kept: snakemake sees nothing new
    prov = _provenance(run)
    assert prov.returncode == 1
    out = prov.stdout
    assert "STALE: it holds the 'test' split but is named train.nc" in out
    for f in ("reduce/u.nc", "train/rbf.nc", "train/linear.nc", "evaluation/metrics.nc"):
        block = out.split(f"results/{STUDY}/{f}\n", 1)[1].split("\n")[1]
        assert "its train input" in block and "changed after it was made" in block, (f, block)
    (gen / "train.nc").touch()                            # now newer: snakemake reruns the reduction
    _refused(run, "generate/train.nc: holds the 'test' split, but the train input of fit_pod must be the "
                  "'train' split")


def test_a_batch_copied_over_another_is_refused(run):
    batches = _res(run) / "generate" / "train"
    shutil.copy(batches / "batch_0000.nc", batches / "batch_0001.nc")
    _refused(run, "batch_0001.nc: sample 0 is also in", "batch_0000.nc")


def test_a_batch_computed_with_other_settings_is_refused(run, tmp_path):
    other_cfg = copy.deepcopy(TINY)
    other_cfg["studies"][STUDY]["simulator"]["settings"]["n_time"] = 31
    other = tmp_path / "other"
    target = f"results/{STUDY}/generate/train/batch_0001.nc"
    res = snakemake(other, other_cfg, target)
    assert res.returncode == 0, res.stderr[-3000:]
    shutil.copy(other / target, run / target)
    _refused(run, "batch_0001.nc: made with other simulator or design settings")


def test_a_model_file_replaced_by_another_kind_is_refused(run):
    models = _res(run) / "train"
    shutil.copy(models / "linear.nc", models / "rbf.nc")
    _refused(run, "train/rbf.nc: holds model 'linear' (kind 'linear'), but the file is named for model 'rbf'")


def test_two_runs_sharing_an_absolute_results_folder(run, tmp_path):
    """A second run, from another folder, whose results: is the first run's: refused while the
    first holds the lock (a live process), with a sentence saying what to do."""
    results = (run / "results").resolve()
    (results / ".surroflow.lock").write_text(json.dumps(
        {"host": os.uname().nodename, "pid": os.getpid(), "workdir": str(run.resolve()), "started": "now"}))
    (_res(run) / "evaluation" / "summary.csv").unlink()   # the second run has a job to do
    second = tmp_path / "second"
    cfg = {**copy.deepcopy(TINY), "results": str(results)}
    res = snakemake(second, cfg)
    assert res.returncode != 0
    assert f"{results}: results folder in use by the run in {run.resolve()}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (_res(run) / "evaluation" / "summary.csv").exists()
    # once the first run is gone (its lock removed), the second runs and gives the lock back
    (results / ".surroflow.lock").unlink()
    res = snakemake(second, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (_res(run) / "evaluation" / "summary.csv").exists() and not (results / ".surroflow.lock").exists()


def test_temporaries_of_killed_writers_are_cleaned_when_the_stage_reruns(run):
    """What a SIGKILL between write and rename leaves beside reduce/, train/ and evaluation/
    outputs is removed by the next run of the job that owns the output."""
    r = _res(run)
    planted = [r / "reduce" / ".u.nc.k1l2.tmp.nc", r / "train" / ".rbf.nc.x9.tmp.nc",
               r / "evaluation" / ".metrics.nc.q0.tmp.nc", r / "evaluation" / ".summary.csv.z3.tmp"]
    for p in planted:
        p.write_bytes(b"\0" * 4096)
    res = snakemake(run, TINY, "--forcerun", "fit_pod")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p for p in planted if p.exists()] == []
    logs = "".join(p.read_text() for p in (run / "logs").rglob("*.log"))
    assert all(f"removed {p.relative_to(run)}" in logs for p in planted), logs[-2000:]

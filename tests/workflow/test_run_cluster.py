"""dask.run_cluster: one LocalCluster for the whole run, joined by every generation job of
per-sample tasks, stopped when the run ends; with run_cluster false each job starts its own."""
from __future__ import annotations

import subprocess

import pytest

from ..snakemake_runner import snakemake

pytestmark = pytest.mark.slow

CONFIG = {"results": "results", "studies": {"adv": {
    "task": "parametric", "simulator": {"name": "advection_diffusion"},
    "design": {"method": "sobol", "n_train": 8, "n_test": 4, "seed": 0, "batch_size": 4},
    "reduction": {"method": "exact", "energy": 0.9999}, "surrogates": {"rbf": {"kind": "rbf"}},
    "evaluation": {"n_plot_samples": 1, "timing_repeats": 1}}}}
TARGETS = ("results/adv/generate/train.nc", "results/adv/generate/test.nc")


def _generate_logs(work):
    return {p.name: p.read_text() for p in (work / "logs" / "generate_batch").glob("*.log")}


def _cluster_processes() -> int:
    out = subprocess.run(["pgrep", "-f", "surroflow cluster --address-file"], capture_output=True, text=True)
    return len(out.stdout.split())


def test_batches_join_the_runs_cluster_and_it_stops_with_the_run(tmp_path):
    res = snakemake(tmp_path, CONFIG, *TARGETS)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "one dask LocalCluster with 2 worker(s) for this run (adv)" in res.stderr
    logs = _generate_logs(tmp_path)
    assert len(logs) == 3
    for name, text in logs.items():
        assert "dask: the run's LocalCluster at tcp://" in text, name
    addresses = {t.split("the run's LocalCluster at ")[1].split()[0] for t in logs.values()}
    assert len(addresses) == 1                              # one cluster for all the batches
    assert not list((tmp_path / "results" / ".dask").glob("run-*.json"))
    assert _cluster_processes() == 0


def test_without_run_cluster_each_batch_starts_its_own(tmp_path):
    cfg = {**CONFIG, "dask": {"kind": "local", "run_cluster": False}}
    res = snakemake(tmp_path, cfg, *TARGETS)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "for this run" not in res.stderr
    for name, text in _generate_logs(tmp_path).items():
        assert "dask: LocalCluster with 2 single-threaded worker processes" in text, name

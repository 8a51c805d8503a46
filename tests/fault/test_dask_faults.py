"""Faults inside a generation job's dask cluster: a worker killed mid-batch, worker counts.

Library level (the generate_batch stage with the LocalCluster that surroflow.distributed builds),
so each case costs one cluster start-up, not a workflow run.
"""
from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest
import xarray as xr

from surroflow import SurroflowError

from surroflow.config import validate_config
from surroflow.io import STATUS_OK, open_dataset
from surroflow.stages import StageContext, generate_batch, make_design

from .surroflow_fault_sims import killed_pid

HERE = Path(__file__).resolve().parent
SETTINGS = {"n_x": 64, "n_time": 11, "t_end": 0.5}
SIMULATOR = {"name": "burgers", "settings": SETTINGS,
             "parameters": {"nu": [0.05, 0.1], "amplitude": [0.5, 1.0]}}
BATCH = 6


def _config(simulator: dict, processes: bool = True) -> dict:
    return validate_config({"dask": {"kind": "local", "processes": processes}, "studies": {"fault": {
        "simulator": simulator, "design": {"method": "sobol", "n_train": BATCH, "n_test": 2, "seed": 3,
                                           "batch_size": BATCH},
        "surrogates": {"rbf": {"kind": "rbf"}}}}})


def _design(folder: Path, simulator: dict) -> Path:
    """The train design of the study run with ``simulator`` (a batch is generated only from a
    design made with its own simulator settings: the lineage check refuses any other)."""
    make_design.run({}, {"train": str(folder / "train.nc"), "test": str(folder / "test.nc")},
                    StageContext.for_study(_config(simulator), "fault", "make_design"))
    return folder / "train.nc"


def _generate(out: Path, simulator: dict, n_workers: int, processes: bool = True) -> xr.Dataset:
    design_nc = _design(out.parent / "design", simulator)
    ctx = StageContext.for_study(_config(simulator, processes), "fault", "generate_batch", threads=n_workers,
                                 mem_mb=2000, split="train", batch="0000")
    generate_batch.run({"design": str(design_nc)}, {"batch": str(out)}, ctx)
    return open_dataset(out, stage="generate_batch").drop_vars("wall_time")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> xr.Dataset:
    """One worker process, nothing disturbed."""
    return _generate(tmp_path_factory.mktemp("ref") / "batch_0000.nc", SIMULATOR, n_workers=1)


@pytest.fixture
def fault_sims(monkeypatch) -> str:
    """The test simulators, importable here and in the (spawned) worker processes."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    return "python:surroflow_fault_sims:KillOnceBurgers"


def test_killed_worker_is_replaced_and_data_equal_undisturbed_run(reference, tmp_path, fault_sims):
    marker = tmp_path / "killed"
    sim = {**SIMULATOR, "name": fault_sims, "settings": {**SETTINGS, "kill_marker": str(marker)}}
    ds = _generate(tmp_path / "batch_0000.nc", sim, n_workers=2)
    assert marker.exists(), "no worker was killed"
    assert killed_pid(marker) != os.getpid()   # a worker process died, not this one
    assert (ds["status"] == STATUS_OK).all()
    xr.testing.assert_allclose(ds, reference)


@pytest.mark.parametrize("processes", [True, False], ids=["2-processes", "2-threads"])
def test_same_data_with_one_or_two_workers(reference, tmp_path, processes):
    ds = _generate(tmp_path / "batch_0000.nc", SIMULATOR, n_workers=2, processes=processes)
    xr.testing.assert_allclose(ds, reference)


def test_simulator_that_always_kills_its_worker_stops_the_batch_clearly(tmp_path, fault_sims):
    sim = {**SIMULATOR, "name": fault_sims, "settings": {**SETTINGS, "kill_always": True}}
    out = tmp_path / "batch_0000.nc"
    # the LocalCluster's scheduler runs in this process and reads this setting
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with pytest.raises(SurroflowError, match=r"samples 0\.\.0: every dask worker that ran them died"):
            _generate(out, sim, n_workers=2)
    assert not out.exists()

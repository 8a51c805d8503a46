"""End-to-end: the workflow's fit_pod goes out of core when reduction.memory_budget_mb is too
small for the in-memory factorisation, and the streamed basis equals the in-memory one.

The budget counts the whole job's memory, so the test calibrates it: a first run (no budget)
logs the process' memory and what an in-memory fit would need on top; the budget of the second
run lies between the streaming floor and that need.  The snapshot matrix (24 samples x 401
times x 128 points, 9.9 MB) makes the gap between the two about 28 MiB.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import xarray as xr

from surroflow.io import open_dataset

from ..snakemake_runner import ROOT, load_yaml, snakemake

pytestmark = pytest.mark.slow

TINY = load_yaml(ROOT / "tests" / "config" / "tiny.yaml")
MEMORY = re.compile(r"u: memory: process ([0-9.]+) MiB, an in-memory fit needs ([0-9.]+) MiB more, "
                    r"limit (\S+).* -> (in_memory|streaming)")


def config(budget_mb: float | None) -> dict:
    cfg = copy.deepcopy(TINY)
    study = cfg["studies"]["tiny"]
    study["simulator"]["settings"].update(n_x=128, n_time=401, t_end=0.5)
    study["design"].update(n_train=24, n_test=2, batch_size=12)
    study["reduction"].update(method="exact", rank=8, memory_budget_mb=budget_mb)
    return cfg


def test_fit_pod_streams_under_a_small_budget(tmp_path):
    work = tmp_path / "run"
    target = "results/tiny/reduce/u.nc"
    res = snakemake(work, config(None), target)
    assert res.returncode == 0, res.stderr[-4000:]
    log = (work / "logs" / "fit_pod" / "tiny_u.log").read_text()
    process_mib, need_mib, _, mode = MEMORY.search(log).groups()
    assert mode == "in_memory"
    memory = open_dataset(work / target, stage="fit_pod")
    assert memory.attrs["fit_mode"] == "in_memory"
    memory = memory.load()

    # between the streaming floor (~50 MiB over the process) and the in-memory need (~78 MiB)
    budget = float(process_mib) + 0.8 * float(need_mib)
    res = snakemake(work, config(budget), target)
    assert res.returncode == 0, res.stderr[-4000:]
    log = (work / "logs" / "fit_pod" / "tiny_u.log").read_text()
    assert MEMORY.search(log).group(4) == "streaming", log
    stream = open_dataset(work / target, stage="fit_pod")
    assert stream.attrs["fit_mode"] == "streaming"
    assert stream.attrs["memory_budget_mb"] == pytest.approx(budget)
    assert stream.sizes["mode"] == 8
    xr.testing.assert_allclose(stream[["modes", "mean", "weights"]], memory[["modes", "mean", "weights"]],
                               atol=1e-8)
    np.testing.assert_allclose(stream["singular_values"].values, memory["singular_values"].values,
                               rtol=1e-9, atol=1e-12 * float(memory["singular_values"][0]))

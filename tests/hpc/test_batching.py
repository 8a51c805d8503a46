"""Batching: one generation job per batch, so the DAG of a 10^4-sample design stays small."""
from __future__ import annotations

import copy
import math
import time

import pytest

from .helpers import STUDY, job_counts, local_config, snakemake

pytestmark = pytest.mark.slow

N_TRAIN, N_TEST = 10_000, 1_000


def _dry_run(tmp_path, batch_size: int) -> tuple[dict[str, int], float]:
    cfg = copy.deepcopy(local_config())
    cfg["studies"][STUDY]["design"].update(n_train=N_TRAIN, n_test=N_TEST, batch_size=batch_size)
    work = tmp_path / f"bs{batch_size}"
    t0 = time.perf_counter()
    res = snakemake(work, cfg, "-n", "--quiet", "rules", timeout=120)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    return job_counts(res.stdout + res.stderr), elapsed


def test_dry_run_of_ten_thousand_samples_is_fast_and_scales_with_batches(tmp_path):
    counts_100, seconds = _dry_run(tmp_path, batch_size=100)
    # the whole `snakemake -n` process, Python start-up included
    assert seconds < 10, f"snakemake -n on {N_TRAIN + N_TEST} samples took {seconds:.1f} s"
    assert counts_100["generate_batch"] == math.ceil(N_TRAIN / 100) + math.ceil(N_TEST / 100)
    counts_1000, _ = _dry_run(tmp_path, batch_size=1000)
    assert counts_1000["generate_batch"] == math.ceil(N_TRAIN / 1000) + math.ceil(N_TEST / 1000)
    # every other rule is independent of the design size
    others = {r: n for r, n in counts_100.items() if r != "generate_batch"}
    assert others == {r: n for r, n in counts_1000.items() if r != "generate_batch"}
    assert others["collect_batches"] == 2 and others["make_design"] == 1

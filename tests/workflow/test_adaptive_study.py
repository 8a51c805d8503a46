"""Adaptive sampling through the workflow (issue 11): rounds as files, a run killed after a
round resumes with the finished rounds kept, the one-shot baseline of the same budget, the
curve, summary and figures (tests/config/adaptive.yaml)."""
from __future__ import annotations

import copy
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from surroflow.io import open_dataset
from surroflow.lineage import fingerprint

from ..snakemake_runner import ROOT, load_yaml, snakemake, snakemake_background

pytestmark = pytest.mark.slow

CONFIG = load_yaml(ROOT / "tests" / "config" / "adaptive.yaml")


def test_killed_rounds_resume_and_adaptive_is_set_against_one_shot(tmp_path):
    work = tmp_path / "work"
    rounds = work / "results" / "adapt" / "rounds"
    proc = snakemake_background(work, CONFIG, cores=2)
    try:
        deadline = time.monotonic() + 300
        while not (rounds / "1" / "selected.nc").exists():
            assert proc.poll() is None, (tmp_path / "work.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "round 1 did not finish within 300 s"
            time.sleep(0.1)
        time.sleep(0.5)     # round 2 under way (or queued): the kill lands mid-run
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    done = {p: fingerprint(p) for r in ("0", "1") for p in sorted((rounds / r).glob("*.nc"))}
    assert len(done) == 4 + 3   # round 0: model, indicator, selected; round 1: its runs too
    assert snakemake(work, CONFIG, "--unlock", cores=1).returncode == 0
    res = snakemake(work, CONFIG, "--rerun-incomplete", cores=2)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    for path, before in done.items():
        assert fingerprint(path) == before, f"{path} was rewritten on resume"

    ev = work / "results" / "adapt" / "evaluation"
    curve = pd.read_csv(ev / "adaptive_curve.csv")
    ad = curve[curve.strategy == "adaptive"]
    # 4 initial runs, then rounds of 2; the target (1e-6) is out of reach, and max_rounds (3)
    # stops it before the budget (12)
    assert list(ad["round"]) == [0, 1, 2, 3] and list(ad["n_hf"]) == [4, 6, 8, 10]
    last = open_dataset(rounds / "3" / "indicator.nc", stage="adapt_round")
    assert last.attrs["stop"] == "max_rounds" and not (rounds / "4").exists()
    assert open_dataset(rounds / "3" / "selected.nc", stage="adapt_round").sizes["sample"] == 0
    one = curve[curve.strategy == "oneshot"]
    # the one-shot curve: the same sizes as the adaptive rounds, the budget, on to n_train
    assert set(ad["n_hf"]) <= set(one["n_hf"]) and 12 in set(one["n_hf"]) and one["n_hf"].max() == 16
    # round 0 is the first 4 one-shot runs: the same model, the same errors
    first = curve[curve.n_hf == 4].set_index("strategy")
    assert first.loc["adaptive", "rel_l2_mean"] == pytest.approx(first.loc["oneshot", "rel_l2_mean"], rel=1e-9)
    s = pd.read_csv(ev / "adaptive_summary.csv").iloc[0]
    assert s["budget"] == 12 and s["stop_reason"] == "max_rounds" and s["n_hf_stop"] == 10
    assert s["estimate_at_stop"] > 0 and s["test_error_at_stop"] > 0
    for fig in ("error_vs_runs", "chosen_points", "estimate_vs_test"):
        assert (ev / "adaptive_figures" / f"{fig}.png").stat().st_size > 1000
    # the rounds never read the test design
    for r in ad["round"]:
        lin = open_dataset(rounds / str(r) / "indicator.nc", stage="adapt_round").attrs["lineage"]
        assert "test.nc" not in lin
    # the usual evaluation of the study ran beside the rounds
    assert (ev / "summary.csv").exists()

    # one round more: rounds 0-2 and every run are kept, round 3 (which stopped) reruns and
    # selects, round 4 spends the rest of the budget
    kept = {p: fingerprint(p) for r in ("0", "1", "2") for p in sorted((rounds / r).glob("*.nc"))}
    kept[rounds / "3" / "generate.nc"] = fingerprint(rounds / "3" / "generate.nc")
    more = copy.deepcopy(CONFIG)
    more["studies"]["adapt"]["design"]["adaptive"]["max_rounds"] = 4
    res = snakemake(work, more, cores=2)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    for path, before in kept.items():
        assert fingerprint(path) == before, f"{path} was rewritten after max_rounds was raised"
    assert open_dataset(rounds / "3" / "indicator.nc", stage="adapt_round").attrs["stop"] == ""
    assert open_dataset(rounds / "4" / "indicator.nc", stage="adapt_round").attrs["stop"] == "budget"
    curve = pd.read_csv(ev / "adaptive_curve.csv")
    assert list(curve[curve.strategy == "adaptive"]["n_hf"]) == [4, 6, 8, 10, 12]


def test_rounds_with_local_bases_score_the_cluster_residual(tmp_path):
    """A local-basis surrogate through the rounds: each round refits the clustered bases on its
    own runs, the local_residual indicator scores the candidates, the one-shot curve refits the
    same configuration (tests/config/adaptive_local.yaml)."""
    cfg = load_yaml(ROOT / "tests" / "config" / "adaptive_local.yaml")
    work = tmp_path / "work"
    res = snakemake(work, cfg, cores=2)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    rounds = work / "results" / "adapt_local" / "rounds"
    curve = pd.read_csv(work / "results" / "adapt_local" / "evaluation" / "adaptive_curve.csv")
    ad = curve[curve.strategy == "adaptive"]
    assert list(ad["n_hf"]) == [12, 16, 20]
    for r in (0, 1):
        ind = open_dataset(rounds / str(r) / "indicator.nc", stage="adapt_round")
        assert ind.attrs["indicator"] == "local_residual"
        score = ind["score"].values
        assert np.all(np.isfinite(score)) and score.max() > 0
        assert ind["chosen"].values.sum() == 4
    model = open_dataset(rounds / "2" / "model.nc", stage="adapt_round")
    assert model.attrs["n_hf"] == 20
    assert (curve[curve.strategy == "oneshot"]["n_hf"].max()) == 24

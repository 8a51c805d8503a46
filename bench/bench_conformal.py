"""Conformal bands on a parametric study: split-conformal (a calibration design) against
cross-conformal (K refits on the training design), judged on a large independent test design.

For every trained surrogate of a study's results folder (``train/<name>.nc`` from the
workflow, calibrated split-conformally on ``generate/calibration.nc``), this

* draws ``--n-test`` new design points (i.i.d. uniform in the study's parameter box, a seed no
  split of the study uses) and runs the study's simulator on them;
* measures the coverage of the model's bands at several nominal levels on those runs, and the
  band's relative width at 95 % (:func:`surroflow.evaluation.calibration.evaluate_uncertainty`,
  as the evaluation stage does), for three calibrations of the *same* fitted model:
  the stored split-conformal one (all calibration samples), split-conformal on the first half of
  the calibration samples, and cross-conformal with ``--folds`` refits on the training samples
  (:func:`surroflow.surrogates.conformal.cross_conformal`, the fallback without a calibration
  design).

Usage (after ``make run``; the study needs ``design.n_calibration``)::

    python bench/bench_conformal.py --results results/burgers --config config/config.yaml --study burgers

It writes the block ``bench_conformal_<study>`` of ``bench/RESULTS_conformal.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_table import write_block  # noqa: E402

#: the blocks of bench/RESULTS_conformal.md this script writes (one per study)
TABLES = ("bench_conformal_burgers",)
#: nominal levels of the table
LEVELS = (0.8, 0.9, 0.95, 0.99)
#: seed of the benchmark's own test design (no split of a study uses it)
TEST_SEED = 20261202


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the study's results folder (results/burgers)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--study", default="burgers")
    ap.add_argument("--n-test", type=int, default=512)
    ap.add_argument("--folds", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "RESULTS_conformal.md"))
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from surroflow import snapshots as snap
    from surroflow.config import load_config
    from surroflow.design import design_records, make_design, resolve_parameters
    from surroflow.evaluation.calibration import LEVELS as EVAL_LEVELS, evaluate_uncertainty
    from surroflow.io import open_dataset
    from surroflow.simulators import get_simulator
    from surroflow.stages.generate_batch import batch_dataset, run_samples
    from surroflow.surrogates.conformal import cross_conformal, split_conformal
    from surroflow.surrogates.reduced import ReducedModel

    study = load_config(args.config)["studies"][args.study]
    sim_cfg = study["simulator"]
    res = Path(args.results)
    cal_path = res / "generate" / "calibration.nc"
    if not cal_path.exists():
        sys.exit(f"{cal_path}: not found; the study needs design.n_calibration and a finished run")
    train = snap.require_ok_samples(open_dataset(res / "generate" / "train.nc"), "train", "training samples")
    cal = snap.require_ok_samples(open_dataset(cal_path), "calibration", "calibration samples")

    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    params = resolve_parameters(sim.parameters(), sim_cfg["parameters"])
    design = make_design(params, "random", args.n_test, TEST_SEED, "bench_test")
    t0 = time.perf_counter()
    runs = run_samples(sim_cfg["name"], sim_cfg["settings"], design_records(design), sim_cfg["timeout_s"])
    hf_s = time.perf_counter() - t0
    test = snap.require_ok_samples(batch_dataset(sim, design, runs), "bench test", "test samples")
    print(f"{test.sizes['sample']} test runs in {hf_s:.1f} s", flush=True)

    rows = []
    with threadpool_limits(1):
        for path in sorted((res / "train").glob("*.nc")):
            model = ReducedModel.from_dataset(open_dataset(path, stage="train_surrogate"))
            if model.calibration_ is None or model.calibration_.method != "split_conformal":
                print(f"{path}: not calibrated split-conformally, skipped", flush=True)
                continue
            v0 = model.variables[0]
            times = snap.snapshot_times(test, v0)
            P = np.asarray(test["design"].values, dtype=float)
            truth = {v: snap.snapshot_matrix(test, v) for v in model.variables}
            pred = model.predict_fields(P, times)
            stored = model.calibration_
            Xc = snap.snapshot_inputs(cal, v0)
            gc = snap.snapshot_groups(cal, v0)
            half = np.isin(gc, np.unique(gc)[: np.unique(gc).size // 2])
            half_cal = split_conformal(model, Xc[half], {v: snap.snapshot_matrix(cal, v)[half] for v in model.variables},
                                       gc[half])
            X, S = snap.snapshot_inputs(train, v0), {v: snap.snapshot_matrix(train, v) for v in model.variables}
            t0 = time.perf_counter()
            cross = cross_conformal(model, X, S, snap.snapshot_groups(train, v0), args.folds)
            cross_s = time.perf_counter() - t0
            for label, c, cost in (("split-conformal", stored, stored.seconds + stored.generation_seconds),
                                   ("split-conformal, first half", half_cal,
                                    half_cal.seconds + float(np.sum(cal["wall_time"].values[np.unique(gc[half])]))),
                                   (f"cross-conformal, K={args.folds}", cross, cross_s)):
                model.calibration_ = c
                u = evaluate_uncertainty(model, P, times, truth, pred, where=f"{path.stem} {label}")
                cov = dict(zip(EVAL_LEVELS, u.conformal_coverage))
                rows.append({"surrogate": path.stem, "method": label, "n": c.n, "cost": cost,
                             "cov": [cov.get(p, np.nan) for p in LEVELS],
                             "width": u.summary()["interval_width_mean"]})
                print(rows[-1], flush=True)

    load = os.getloadavg()
    head = ("| surrogate | calibration | samples | " + " | ".join(f"coverage at {p:g}" for p in LEVELS)
            + " | relative width at 0.95 | cost (s) |\n|" + " --- |" * (5 + len(LEVELS)))
    lines = [head] + [
        f"| {r['surrogate']} | {r['method']} | {r['n']} | " + " | ".join(
            "n/a" if not np.isfinite(c) else f"{c:.3f}" for c in r["cov"])
        + f" | {r['width']:.4g} | {r['cost']:.1f} |" for r in rows]
    n_ok = int(test.sizes["sample"])
    note = (f"\nStudy `{args.study}` of `{args.config}` ({train.sizes['sample']} training samples, "
            f"{cal.sizes['sample']} calibration samples); coverage = fraction of {n_ok} new i.i.d. uniform "
            f"test runs (seed {TEST_SEED}) whose whole field lies in the band; one fraction scatters by "
            f"about sqrt(p(1-p)/{n_ok}) around its expectation, and the expectation of a split-conformal "
            "band with n samples is ceil((n+1)p)/(n+1) (n/a: too few samples for the level). Cost: the "
            "calibration's compute seconds plus, for split-conformal, the wall time of its high-fidelity runs; "
            "cross-conformal needs no runs but K refits. "
            f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, load average at "
            f"the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; measured {time.strftime('%Y-%m-%d %H:%M')}. "
            f"Command: `python bench/bench_conformal.py --results {args.results} --config {args.config} "
            f"--study {args.study}`.")
    write_block(args.out, f"bench_conformal_{args.study}", "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()

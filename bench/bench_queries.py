"""Surrogate queries on the Burgers study: both formulations, accuracy, latency and throughput.

For every surrogate kind (gaussian_process, rbf, mlp, linear) and formulation (pointwise:
``(parameters, time) -> coefficients``; trajectory: ``parameters -> all coefficients``) this fits
a :class:`~surroflow.surrogates.reduced.ReducedModel` on the study's training data and global
basis (default hyperparameters, seed 0, as the workflow) and measures

* the test error as the evaluation reports it (mean over test samples of the relative L2 error,
  :meth:`ReducedModel.error_split`);
* single-query latency: the median over test samples of the median time of one
  ``predict_fields`` call for one sample (all times, fields reconstructed), as the evaluate stage
  times it (:func:`surroflow.evaluation.timing.query_seconds`);
* batched time per query: one ``predict_fields`` call on ``--batch`` design points drawn in the
  parameter box, divided by ``--batch``, against ``--batch`` single calls that keep their results
  (the same fields produced either way: a batch of 1,000 Burgers samples is 100 MB of fields, and
  writing fresh memory costs the same in both), interleaved, best of the repeats;
* the same for the regressor alone (coefficients only, one query = one sample's rows);
  these comparisons are interleaved and take the best of the repeats.

Usage (the data of ``results/burgers`` from the workflow: generate/train.nc, generate/test.nc
and reduce/u.nc)::

    python bench/bench_queries.py --results /path/to/results/burgers [--batch 1000]

It writes the block ``bench_queries`` of ``bench/RESULTS_queries.md`` (say in the text whether
the machine was loaded: the script records the load average).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_table import write_block  # noqa: E402

#: the blocks of bench/RESULTS_queries.md this script writes (see bench/results_table.py)
TABLES = ("bench_queries",)

KINDS = ("gaussian_process", "rbf", "mlp", "linear")
FORMULATIONS = ("pointwise", "trajectory")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the study's results folder (results/burgers)")
    ap.add_argument("--batch", type=int, default=1000, help="design points in the batched query")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--out", default=str(HERE / "RESULTS_queries.md"))
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from surroflow import snapshots as snap
    from surroflow.evaluation.timing import median_seconds, query_seconds
    from surroflow.io import open_dataset
    from surroflow.reduction.pod import POD
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator

    res = Path(args.results)
    train = snap.require_ok_samples(open_dataset(res / "generate" / "train.nc"), "train", "training samples")
    test = snap.require_ok_samples(open_dataset(res / "generate" / "test.nc"), "test", "test samples")
    basis_ds = open_dataset(res / "reduce" / "u.nc")
    v = str(basis_ds.attrs["variable"])
    X, S = snap.snapshot_inputs(train, v), {v: snap.snapshot_matrix(train, v)}
    design_test = np.asarray(test["design"].values, dtype=float)
    times = snap.snapshot_times(test, v)
    Xt, St = snap.surrogate_inputs(design_test, times), {v: snap.snapshot_matrix(test, v)}
    groups = np.repeat(np.arange(design_test.shape[0]), len(times))
    lo, hi = np.asarray(train["parameter_low"].values), np.asarray(train["parameter_high"].values)
    big = np.random.default_rng(0).uniform(lo, hi, (args.batch, lo.size))

    rows = []
    with threadpool_limits(1):
        for kind in args.kinds:
            for form in FORMULATIONS:
                model = ReducedModel({v: POD.from_dataset(basis_ds)}, make_estimator(kind, {}, "surrogate"),
                                     formulation=form).describe(train)
                t0 = time.perf_counter()
                model.fit(X, S)
                fit_s = time.perf_counter() - t0
                e = model.error_split(Xt, St, groups=groups)[v]
                single = query_seconds(lambda s: model.predict_fields(design_test[s:s + 1], times),
                                       range(min(4, design_test.shape[0])), args.repeats)
                # the same queries as one batched call and as --batch single calls keeping their
                # results (the same fields either way), then the regressor alone (coefficients: one
                # row per query in the trajectory formulation, n_time rows in the pointwise one);
                # interleaved, best of the repeats (the least disturbed run on a loaded machine)
                rX = big if form == "trajectory" else snap.surrogate_inputs(big, times)
                per = 1 if form == "trajectory" else len(times)
                best = dict.fromkeys(("loop", "batched", "reg_loop", "reg_batched"), np.inf)
                for _ in range(max(2, args.repeats // 2)):
                    for key, fn in (
                            ("loop", lambda: [model.predict_fields(big[i:i + 1], times) for i in range(args.batch)]),
                            ("batched", lambda: model.predict_fields(big, times)),
                            ("reg_loop", lambda: [model.regressor_.predict(rX[i * per:(i + 1) * per])
                                                  for i in range(args.batch)]),
                            ("reg_batched", lambda: model.regressor_.predict(rX))):
                        t0 = time.perf_counter()
                        kept = fn()
                        best[key] = min(best[key], time.perf_counter() - t0)
                        del kept
                loop, batched = best["loop"] / args.batch, best["batched"] / args.batch
                reg_single, reg_batched = best["reg_loop"] / args.batch, best["reg_batched"] / args.batch
                rows.append({"kind": kind, "formulation": form, "regressor_rows": X.shape[0] if form == "pointwise" else X.shape[0] // len(times),
                             "rel_l2_mean_pct": 100 * float(np.mean(e["per_group"]["total"])),
                             "regression_pct": 100 * float(e["regression"]), "fit_s": fit_s,
                             "single_ms": 1e3 * single, "loop_ms": 1e3 * loop, "batched_ms": 1e3 * batched,
                             "loop_over_batched": loop / batched, "regressor_single_ms": 1e3 * reg_single,
                             "regressor_batched_ms": 1e3 * reg_batched,
                             "regressor_single_over_batched": reg_single / reg_batched})
                print(rows[-1], flush=True)

    load = os.getloadavg()
    head = ("| surrogate | formulation | regressor rows | test rel L2 mean | fit | single query (latency) | "
            f"{args.batch} single calls, per query | one call of {args.batch}, per query | loop / batch | "
            "regressor alone: single calls | regressor alone: one call | regressor loop / batch |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [head] + [
        f"| {r['kind']} | {r['formulation']} | {r['regressor_rows']} | {r['rel_l2_mean_pct']:.4f}% | "
        f"{r['fit_s']:.2f} s | {r['single_ms']:.3f} ms | {r['loop_ms']:.3f} ms | {r['batched_ms']:.4f} ms | "
        f"{r['loop_over_batched']:.1f}x | {r['regressor_single_ms']:.3f} ms | {r['regressor_batched_ms']:.4f} ms | "
        f"{r['regressor_single_over_batched']:.1f}x |" for r in rows]
    note = (f"\nBurgers study data ({X.shape[0] // len(times)} training samples x {len(times)} times, "
            f"{design_test.shape[0]} test samples, {model.n_online_modes} modes); one query = one sample's "
            f"fields at all times; batch = {args.batch} design points in one call; 1 BLAS thread; "
            f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores. "
            f"Command: `python bench/bench_queries.py --results {args.results} --batch {args.batch}`.")
    write_block(args.out, "bench_queries", "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()

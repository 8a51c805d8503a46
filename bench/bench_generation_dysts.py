"""Ensemble generation throughput: surroflow's batched integrators against dysts, at matched accuracy.

Task (identical for both): integrate ``M`` initial conditions on the Lorenz-63 attractor
(sigma=10, rho=28, beta=2.667, dysts' parameters) over ``T`` time units and return the states
every ``dt_sample``.  Accuracy: RMS error over all trajectories and samples in the first
``T_acc`` time units against a reference (scipy DOP853, rtol = atol = 1e-13), relative to the
RMS of the state; over a few Lyapunov times so that the error measures the integrator, not
chaos.  For each surroflow step ``dt`` we find the loosest dysts tolerance (rtol = atol, on a
ladder of powers of ten, for each of dysts' solve_ivp methods) whose error is no larger, and
compare the wall time per trajectory at that tolerance: the ratio is dysts / surroflow.

dysts is installed only for this benchmark, in its own environment (it pulls gluonts):

    python -m venv .venv-dysts && .venv-dysts/bin/pip install dysts==0.96
    .venv-dysts/bin/pip install --no-deps -e .     # surroflow.simulators.chaos needs numpy only
    OMP_NUM_THREADS=1 .venv-dysts/bin/python bench/bench_generation_dysts.py --out bench/out/dysts.json

Without dysts (``--no-dysts`` or when it cannot be imported) the peer is a per-trajectory
``scipy.integrate.solve_ivp`` loop, which is what dysts runs inside ``make_trajectory``.

The matched-accuracy table goes into the ``bench_generation_dysts`` block of
``bench/RESULTS_forecast.md`` when the peer is dysts (``--results FILE`` writes it anywhere,
whatever the peer; the peer's name heads its columns).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from surroflow.simulators.chaos import Lorenz63

SIGMA, RHO, BETA = 10.0, 28.0, 2.667
HERE = Path(__file__).resolve().parent
#: the blocks of bench/RESULTS_forecast.md this script writes (see bench/results_table.py)
TABLES = ("bench_generation_dysts",)


def l63_rhs(t, X):
    x, y, z = X
    return [SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z]


def attractor_ics(m: int, seed: int = 0) -> np.ndarray:
    sim = Lorenz63(sigma=SIGMA, rho=RHO, beta=BETA, dt=0.005, transient=30.0)
    return sim.integrate(sim.random_states(m, np.random.default_rng(seed)), n_steps=1)[:, 0]


def reference(ics: np.ndarray, t_eval: np.ndarray) -> np.ndarray:
    out = np.empty((len(ics), len(t_eval), 3))
    for i, x0 in enumerate(ics):
        s = solve_ivp(l63_rhs, (0.0, t_eval[-1]), x0, method="DOP853", t_eval=t_eval, rtol=1e-13, atol=1e-13)
        out[i] = s.y.T
    return out


def rel_error(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - ref) ** 2) / np.mean(ref ** 2)))


def surroflow_run(ics: np.ndarray, dt: float, dt_sample: float, n: int) -> np.ndarray:
    sim = Lorenz63(sigma=SIGMA, rho=RHO, beta=BETA, dt=dt, dt_sample=dt_sample, n_steps=n, transient=0.0)
    return sim.integrate(ics)


def dysts_run(model, ics: np.ndarray, dt_sample: float, n: int, method: str, tol: float) -> np.ndarray:
    model.dt = dt_sample       # dysts samples every model.dt when resample=False
    out = model.make_trajectory(n, init_cond=ics, resample=False, method=method, rtol=tol, atol=tol)
    return np.asarray(out).reshape(len(ics), n, 3)


def scipy_run(ics: np.ndarray, dt_sample: float, n: int, method: str, tol: float) -> np.ndarray:
    t = np.arange(n) * dt_sample
    out = np.empty((len(ics), n, 3))
    for i, x0 in enumerate(ics):
        out[i] = solve_ivp(l63_rhs, (0.0, t[-1]), x0, method=method, t_eval=t, rtol=tol, atol=tol).y.T
    return out


def timed(fn, repeats: int = 3) -> tuple[float, np.ndarray]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--m-batch", type=int, default=1024, help="trajectories in surroflow's batch")
    ap.add_argument("--m-peer", type=int, default=8, help="trajectories timed for the peer (per-trajectory cost)")
    ap.add_argument("--t-total", type=float, default=20.0, help="time span of each trajectory")
    ap.add_argument("--t-acc", type=float, default=4.0, help="accuracy horizon (time units)")
    ap.add_argument("--dt-sample", type=float, default=0.01)
    ap.add_argument("--dts", type=float, nargs="+", default=[0.01, 0.005, 0.0025])
    ap.add_argument("--methods", nargs="+", default=["RK45", "DOP853", "LSODA", "Radau"])
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12])
    ap.add_argument("--no-dysts", action="store_true")
    ap.add_argument("--out", default="bench/out/dysts.json")
    ap.add_argument("--results", default=None,
                    help="markdown file whose bench_generation_dysts block receives the table (default: "
                         "bench/RESULTS_forecast.md when the peer is dysts)")
    args = ap.parse_args()

    peer = "scipy.solve_ivp loop"
    model = None
    if not args.no_dysts:
        try:
            import dysts
            from dysts.flows import Lorenz
            model = Lorenz()
            model.params = {"beta": BETA, "rho": RHO, "sigma": SIGMA}
            peer = f"dysts {getattr(dysts, '__version__', '0.96')} (Lorenz.make_trajectory)"
        except ImportError as exc:
            print(f"dysts not importable ({exc}); falling back to a per-trajectory solve_ivp loop")
    n = int(round(args.t_total / args.dt_sample)) + 1
    n_acc = int(round(args.t_acc / args.dt_sample)) + 1
    ics = attractor_ics(max(args.m_batch, args.m_peer))
    t_eval = np.arange(n_acc) * args.dt_sample
    ref = reference(ics[:args.m_peer], t_eval)

    ours = []
    for dt in args.dts:
        err = rel_error(surroflow_run(ics[:args.m_peer], dt, args.dt_sample, n_acc), ref)
        sec, _ = timed(lambda: surroflow_run(ics[:args.m_batch], dt, args.dt_sample, n))
        ours.append({"dt": dt, "rel_error": err, "seconds_batch": sec, "per_trajectory_s": sec / args.m_batch})
        print(f"surroflow RK4 dt={dt:g}: error {err:.2e}, {sec:.3f} s for {args.m_batch} -> "
              f"{sec / args.m_batch * 1e3:.3f} ms/trajectory", flush=True)

    peer_rows = []
    for method in args.methods:
        for tol in args.tols:
            run = ((lambda m=method, tl=tol, k=n_acc: dysts_run(model, ics[:args.m_peer], args.dt_sample, k, m, tl))
                   if model is not None else
                   (lambda m=method, tl=tol, k=n_acc: scipy_run(ics[:args.m_peer], args.dt_sample, k, m, tl)))
            err = rel_error(run(), ref)
            full = ((lambda m=method, tl=tol: dysts_run(model, ics[:args.m_peer], args.dt_sample, n, m, tl))
                    if model is not None else
                    (lambda m=method, tl=tol: scipy_run(ics[:args.m_peer], args.dt_sample, n, m, tl)))
            sec, _ = timed(full, repeats=1)
            peer_rows.append({"method": method, "tol": tol, "rel_error": err, "per_trajectory_s": sec / args.m_peer})
            print(f"{peer} {method} tol={tol:g}: error {err:.2e}, {sec / args.m_peer * 1e3:.1f} ms/trajectory",
                  flush=True)
            if sec / args.m_peer > 20:      # Radau at tight tolerances: enough evidence
                break

    matches = []
    for o in ours:
        ok = [p for p in peer_rows if p["rel_error"] <= o["rel_error"]]
        if not ok:
            continue
        best = min(ok, key=lambda p: p["per_trajectory_s"])   # the peer's fastest method at that accuracy
        matches.append({"surroflow_dt": o["dt"], "surroflow_error": o["rel_error"],
                        "peer_method": best["method"], "peer_tol": best["tol"], "peer_error": best["rel_error"],
                        "surroflow_ms": o["per_trajectory_s"] * 1e3, "peer_ms": best["per_trajectory_s"] * 1e3,
                        "ratio": best["per_trajectory_s"] / o["per_trajectory_s"]})
    for mt in matches:
        print(f"matched: surroflow dt={mt['surroflow_dt']:g} (err {mt['surroflow_error']:.1e}, "
              f"{mt['surroflow_ms']:.3f} ms) vs {mt['peer_method']} tol={mt['peer_tol']:g} "
              f"(err {mt['peer_error']:.1e}, {mt['peer_ms']:.1f} ms): {mt['ratio']:.0f}x")
    result = {"peer": peer, "task": {"system": "lorenz63", "t_total": args.t_total, "dt_sample": args.dt_sample,
                                     "n_samples": n, "m_batch": args.m_batch, "m_peer": args.m_peer,
                                     "t_acc": args.t_acc},
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
              "surroflow": ours, "peer_runs": peer_rows, "matched": matches}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"written {args.out}")
    table = markdown(matches, "dysts" if model is not None else "scipy solve_ivp loop")
    print("\n" + table)
    results = args.results or (str(HERE / "RESULTS_forecast.md") if model is not None else None)
    if results and matches:
        from results_table import write_block
        write_block(results, "bench_generation_dysts", table)


def markdown(matches: list[dict], peer: str) -> str:
    """The matched-accuracy table of RESULTS_forecast.md."""
    lines = [f"| surroflow RK4 step | its error | surroflow per trajectory | {peer} at no larger error (fastest "
             f"method, tolerance) | {peer} error | {peer} per trajectory | **ratio** |",
             "|---|---|---|---|---|---|---|"]
    for m in matches:
        lines.append(f"| dt = {m['surroflow_dt']:g} | {m['surroflow_error']:.1e} | {m['surroflow_ms']:.3f} ms | "
                     f"{m['peer_method']}, {m['peer_tol']:.0e} | {m['peer_error']:.1e} | {m['peer_ms']:.1f} ms | "
                     f"**{m['ratio']:.0f}×** |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Ensemble generation against the strongest baselines, at matched accuracy (Lorenz-63), and
Burgers' batched solver against its per-sample loop.

Task: integrate ``M`` initial conditions on the Lorenz-63 attractor (sigma=10, rho=28,
beta=2.667, dysts' parameters) over ``T`` time units, keeping the state every ``dt_sample``.
Accuracy: relative RMS error over the first ``T_acc`` time units of the first ``m_ref``
trajectories against scipy DOP853 at rtol = atol = 1e-13 (a few Lyapunov times, so that the error
measures the integrator, not chaos).  Contenders, all on the same initial conditions:

* **built-in**: ``Lorenz63.integrate`` (compiled path, ``compiled=True``; the numpy path is
  timed beside it), classical RK4 at step ``dt``;
* **numba RK4**: this file's own ~30-line compiled batched RK4 (the issue's yardstick), same
  step, hence the same error;
* **stacked solve_ivp**: one ``scipy.integrate.solve_ivp`` call on all ``M`` trajectories
  stacked into one ``3M`` state (vectorised right-hand side), explicit methods only (an
  implicit method's dense ``3M x 3M`` Jacobian is out of reach); per step ``dt`` the loosest
  tolerance on a ladder of powers of ten whose error is no larger than the built-in's;
* **dysts** (when importable): ``Lorenz(parameters=...).make_trajectory`` per trajectory on
  ``m_peer`` trajectories, matched the same way (dysts 0.96 takes the parameters in the
  constructor; assigning ``model.params`` afterwards has no effect on its right-hand side).

Times are best of ``--repeats`` per contender (contenders interleaved), after one warm-up call
(so the JIT is not in them); the JIT and cache-load cost of the built-in kernels is measured
separately in fresh processes, together with the default Lorenz-63 study job (16 trajectories,
3,000 kept states after a 25-unit transient) with ``compiled="auto"`` and ``compiled=True``.

Burgers: 16 samples of the default study settings (random ``nu``, ``amplitude``, ``shift`` in
the declared ranges), one stacked ``run_batch`` against the per-sample loop, and the largest
relative difference between the two.

dysts lives in its own environment (it pulls gluonts); surroflow comes from ``src``:

    python -m venv .venv-dysts && .venv-dysts/bin/pip install dysts==0.96 numba
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv-dysts/bin/python bench/bench_generation_dysts.py

Writes the ``bench_generation_dysts`` block of ``bench/RESULTS_forecast.md`` (``--results`` to
write elsewhere) and ``bench/out/generation.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from surroflow.simulators import Simulator
from surroflow.simulators.burgers import Burgers1D
from surroflow.simulators.chaos import Lorenz63

SIGMA, RHO, BETA = 10.0, 28.0, 2.667
HERE = Path(__file__).resolve().parent
#: the blocks of bench/RESULTS_forecast.md this script writes (see bench/results_table.py)
TABLES = ("bench_generation_dysts",)


def l63_rhs(t, X):
    x, y, z = X
    return [SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z]


def l63_rhs_stacked(t, X):
    x, y, z = X.reshape(3, -1)
    return np.concatenate([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])


def numba_rk4():
    """The yardstick: a plain compiled batched RK4 (all trajectories in one call)."""
    import numba

    @numba.njit(cache=False)
    def run(x0, dt, stride, n, out):
        for i in range(x0.shape[0]):
            x, y, z = x0[i, 0], x0[i, 1], x0[i, 2]
            for k in range(n):
                if k > 0:
                    for _ in range(stride):
                        a1, b1, c1 = SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z
                        xa, ya, za = x + 0.5 * dt * a1, y + 0.5 * dt * b1, z + 0.5 * dt * c1
                        a2, b2, c2 = SIGMA * (ya - xa), xa * (RHO - za) - ya, xa * ya - BETA * za
                        xb, yb, zb = x + 0.5 * dt * a2, y + 0.5 * dt * b2, z + 0.5 * dt * c2
                        a3, b3, c3 = SIGMA * (yb - xb), xb * (RHO - zb) - yb, xb * yb - BETA * zb
                        xc, yc, zc = x + dt * a3, y + dt * b3, z + dt * c3
                        a4, b4, c4 = SIGMA * (yc - xc), xc * (RHO - zc) - yc, xc * yc - BETA * zc
                        x += dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
                        y += dt / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
                        z += dt / 6.0 * (c1 + 2.0 * c2 + 2.0 * c3 + c4)
                out[i, k, 0], out[i, k, 1], out[i, k, 2] = x, y, z
        return out
    return run


def attractor_ics(m: int, seed: int = 0) -> np.ndarray:
    sim = Lorenz63(sigma=SIGMA, rho=RHO, beta=BETA, dt=0.005, transient=30.0)
    return sim.integrate(sim.random_states(m, np.random.default_rng(seed)), n_steps=1)[:, 0]


def reference(ics: np.ndarray, t_eval: np.ndarray) -> np.ndarray:
    out = np.empty((len(ics), len(t_eval), 3))
    for i, x0 in enumerate(ics):
        out[i] = solve_ivp(l63_rhs, (0.0, t_eval[-1]), x0, method="DOP853", t_eval=t_eval,
                           rtol=1e-13, atol=1e-13).y.T
    return out


def rel_error(a: np.ndarray, ref: np.ndarray) -> float:
    a = a[:ref.shape[0], :ref.shape[1]]
    return float(np.sqrt(np.mean((a - ref) ** 2) / np.mean(ref ** 2)))


def builtin_run(ics, dt, dt_sample, n, compiled):
    sim = Lorenz63(sigma=SIGMA, rho=RHO, beta=BETA, dt=dt, dt_sample=dt_sample, n_steps=n, transient=0.0)
    return sim.integrate(ics, compiled=compiled)


def stacked_run(ics, dt_sample, n, method, tol):
    t = np.arange(n) * dt_sample
    s = solve_ivp(l63_rhs_stacked, (0.0, t[-1]), ics.T.reshape(-1), method=method, t_eval=t,
                  rtol=tol, atol=tol, vectorized=False)
    return s.y.reshape(3, len(ics), n).transpose(1, 2, 0)


def dysts_run(model, ics, n, method, tol):
    out = [np.asarray(model.make_trajectory(n, init_cond=x0, resample=False, method=method, rtol=tol, atol=tol))
           for x0 in ics]
    return np.stack(out)


def best_of(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def fresh_process(code: str, env: dict | None = None) -> float:
    """Run ``code`` in a fresh interpreter; it prints one number (seconds)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return float(res.stdout.strip().splitlines()[-1])


JIT_CODE = """
import time
from surroflow.simulators.chaos import Lorenz63, Lorenz96
t0 = time.perf_counter()
for sim in (Lorenz63(n_steps=2, transient=0.01), Lorenz96(n_steps=2, transient=0.01)):
    sim.integrate(sim.initial_states([{"ic": 0.5}]), compiled=True)
print(time.perf_counter() - t0)
"""
JOB_CODE = """
import time
from surroflow.simulators.chaos import Lorenz63
sim = Lorenz63(dt=0.01, dt_sample=0.01, n_steps=3000, transient=25.0)
x0 = sim.initial_states([{"ic": (i + 0.5) / 16} for i in range(16)])
t0 = time.perf_counter()
sim.integrate(x0, compiled=COMPILED)
print(time.perf_counter() - t0)
"""


def jit_costs(repeats: int) -> dict:
    """First-call costs in fresh processes: cold compile, cache load, and the study job."""
    with tempfile.TemporaryDirectory() as cold:
        compile_s = [fresh_process(JIT_CODE, {"NUMBA_CACHE_DIR": os.path.join(cold, str(i))})
                     for i in range(repeats)]
    fresh_process(JIT_CODE)                      # make sure the in-tree cache exists
    rows: dict[str, list[float]] = {"cache_load": [], "job_auto": [], "job_compiled": []}
    for _ in range(repeats):                     # interleaved
        rows["cache_load"].append(fresh_process(JIT_CODE))
        rows["job_auto"].append(fresh_process(JOB_CODE.replace("COMPILED", "'auto'")))
        rows["job_compiled"].append(fresh_process(JOB_CODE.replace("COMPILED", "True")))
    return {"compile_s": min(compile_s), **{k: min(v) for k, v in rows.items()}}


def burgers_rows(n_samples: int, repeats: int, seed: int = 0) -> dict:
    sim = Burgers1D()
    rng = np.random.default_rng(seed)
    params = []
    for _ in range(n_samples):
        p = {}
        for par in sim.parameters():
            lo, hi = par.low, par.high
            p[par.name] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) if par.log_scale else rng.uniform(lo, hi))
        params.append(p)
    t_batch, t_loop, a, b = np.inf, np.inf, None, None
    for _ in range(repeats):                     # interleaved
        t0 = time.perf_counter()
        a = sim.run_batch(params)
        t1 = time.perf_counter()
        b = Simulator.run_batch(sim, params)     # the per-sample loop (one solve per sample)
        t2 = time.perf_counter()
        t_batch, t_loop = min(t_batch, t1 - t0), min(t_loop, t2 - t1)
    diff = max(float(np.max(np.abs(x["u"] - y["u"])) / np.max(np.abs(y["u"]))) for x, y in zip(a, b))
    return {"n_samples": n_samples, "batched_s": t_batch, "per_sample_s": t_loop, "max_rel_diff": diff,
            "n_grid": sim.n_grid, "n_time": sim.n_time}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--m-batch", type=int, default=1024, help="trajectories of the batched contenders")
    ap.add_argument("--m-peer", type=int, default=4, help="trajectories timed for dysts (per-trajectory cost)")
    ap.add_argument("--m-ref", type=int, default=8, help="trajectories whose error is measured")
    ap.add_argument("--t-total", type=float, default=20.0, help="time span of each trajectory")
    ap.add_argument("--t-acc", type=float, default=4.0, help="accuracy horizon (time units)")
    ap.add_argument("--dt-sample", type=float, default=0.01)
    ap.add_argument("--dts", type=float, nargs="+", default=[0.01, 0.005, 0.0025])
    ap.add_argument("--stacked-methods", nargs="+", default=["RK45", "DOP853"])
    ap.add_argument("--dysts-methods", nargs="+", default=["RK45", "DOP853", "LSODA"])
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--burgers-samples", type=int, default=16)
    ap.add_argument("--no-dysts", action="store_true")
    ap.add_argument("--out", default=str(HERE / "out" / "generation.json"))
    ap.add_argument("--results", default=str(HERE / "RESULTS_forecast.md"))
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="only rewrite the block from a results file this script wrote")
    args = ap.parse_args()
    if args.render:
        result = json.loads(Path(args.render).read_text())
        result.setdefault("software", software())
        write_results(result, args.out if args.out != args.render else None, args.results)
        return

    from surroflow.simulators.chaos import compiled as compiled_mod
    model, peer = None, None
    if not args.no_dysts:
        try:
            import dysts  # noqa: F401
            from importlib.metadata import version
            from dysts.flows import Lorenz
            model = Lorenz(parameters={"beta": BETA, "rho": RHO, "sigma": SIGMA})
            model.dt = args.dt_sample          # dysts samples every model.dt when resample=False
            peer = f"dysts {version('dysts')}"
        except ImportError as exc:
            print(f"dysts not importable ({exc}): no dysts column")
    n = int(round(args.t_total / args.dt_sample)) + 1
    n_acc = int(round(args.t_acc / args.dt_sample)) + 1
    ics = attractor_ics(args.m_batch)
    ref = reference(ics[:args.m_ref], np.arange(n_acc) * args.dt_sample)
    rk4 = numba_rk4()
    M = args.m_batch

    rows = []
    for dt in args.dts:
        stride = int(round(args.dt_sample / dt))
        contenders = {
            "builtin": lambda: builtin_run(ics, dt, args.dt_sample, n, True),
            "builtin_numpy": lambda: builtin_run(ics, dt, args.dt_sample, n, False),
            "numba_rk4": lambda: rk4(ics, dt, stride, n, np.empty((M, n, 3))),
        }
        for fn in contenders.values():
            fn()                                 # warm-up (JIT)
        times = {k: np.inf for k in contenders}
        outs = {}
        for _ in range(args.repeats):
            for k, fn in contenders.items():
                t0 = time.perf_counter()
                outs[k] = fn()
                times[k] = min(times[k], time.perf_counter() - t0)
        err = rel_error(outs["builtin"], ref)
        row = {"dt": dt, "error": err, "numba_error": rel_error(outs["numba_rk4"], ref),
               "builtin_same_as_numpy_path": bool(np.array_equal(outs["builtin"], outs["builtin_numpy"])),
               **{f"{k}_ms": t / M * 1e3 for k, t in times.items()}}
        print(f"dt={dt:g}: error {err:.2e}; per trajectory built-in {row['builtin_ms']:.4f} ms, numpy path "
              f"{row['builtin_numpy_ms']:.4f} ms, numba RK4 {row['numba_rk4_ms']:.4f} ms", flush=True)
        rows.append(row)

    def match(run, methods, m, label):
        """Per dt, the fastest (method, loosest tol) whose error is <= the built-in's."""
        runs = []
        for method in methods:
            for tol in args.tols:
                sec, out = best_of(run(method, tol), 1 if label == "dysts" else args.repeats)
                e = rel_error(out, ref)
                runs.append({"method": method, "tol": tol, "error": e, "ms": sec / m * 1e3})
                print(f"{label} {method} tol={tol:g}: error {e:.2e}, {sec / m * 1e3:.3f} ms/trajectory", flush=True)
                if e <= min(r["error"] for r in rows) or sec / m > 20:
                    break                        # tight enough for every row (or too slow)
        for row in rows:
            ok = [r for r in runs if r["error"] <= row["error"]]
            row[label] = min(ok, key=lambda r: r["ms"]) if ok else None
        return runs

    stacked_runs = match(lambda me, tl: (lambda: stacked_run(ics, args.dt_sample, n, me, tl)),
                         args.stacked_methods, M, "stacked")
    dysts_runs = (match(lambda me, tl: (lambda: dysts_run(model, ics[:max(args.m_peer, args.m_ref)], n, me, tl)),
                        args.dysts_methods, max(args.m_peer, args.m_ref), "dysts") if model is not None else [])
    print("fresh-process JIT costs ...", flush=True)
    jit = jit_costs(args.repeats)
    print(jit, flush=True)
    burgers = burgers_rows(args.burgers_samples, args.repeats)
    print(burgers, flush=True)

    result = {"peer": peer, "backend": compiled_mod.BACKEND,
              "task": {"system": "lorenz63", "t_total": args.t_total, "dt_sample": args.dt_sample, "n_samples": n,
                       "m_batch": M, "m_peer": args.m_peer, "m_ref": args.m_ref, "t_acc": args.t_acc},
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "load_average": os.getloadavg(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
              "rows": rows, "stacked_runs": stacked_runs, "dysts_runs": dysts_runs, "jit": jit, "burgers": burgers,
              "software": software()}
    write_results(result, args.out, args.results)


def software() -> str:
    from importlib.metadata import PackageNotFoundError, version
    parts = [f"Python {platform.python_version()}"]
    for pkg in ("numpy", "scipy", "numba", "dysts"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def write_results(result: dict, out: str | None, results: str) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    table = markdown(result)
    print("\n" + table)
    sys.path.insert(0, str(HERE))
    from results_table import write_block
    write_block(results, "bench_generation_dysts", table)
    print(f"written {out or '(no json)'} and the bench_generation_dysts block of {results}")


def markdown(res: dict) -> str:
    """The tables of the bench_generation_dysts block (generation, JIT, Burgers)."""
    t, j, b = res["task"], res["jit"], res["burgers"]
    load = ", ".join(f"{x:.1f}" for x in res["machine"]["load_average"])
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `bench/bench_generation_dysts.py` on "
             f"{res['machine']['cpu_count']} CPUs (`{res['machine']['platform']}`), load average {load}; "
             f"{res.get('software', '')}; "
             f"compiled backend: {res['backend']}. Lorenz-63, {t['m_batch']} trajectories x {t['n_samples']} states "
             f"every {t['dt_sample']:g}; error: relative RMS over the first {t['t_acc']:g} time units against "
             f"DOP853 at 1e-13; times per trajectory, best of the interleaved repeats, JIT excluded.", "",
             "| RK4 step | error | **built-in** | built-in numpy path | numba RK4 | **built-in / numba** | "
             "stacked solve_ivp at no larger error (method, tol, error) | stacked per trajectory | "
             "**stacked / built-in** | dysts at no larger error | dysts per trajectory | dysts / built-in |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        s, d = r.get("stacked"), r.get("dysts")
        cells = [f"dt = {r['dt']:g}", f"{r['error']:.1e}", f"**{r['builtin_ms']:.4f} ms**",
                 f"{r['builtin_numpy_ms']:.4f} ms", f"{r['numba_rk4_ms']:.4f} ms",
                 f"**{r['builtin_ms'] / r['numba_rk4_ms']:.2f}×**"]
        cells += ([f"{s['method']}, {s['tol']:.0e}, {s['error']:.1e}", f"{s['ms']:.4f} ms",
                   f"**{s['ms'] / r['builtin_ms']:.0f}×**"] if s else ["none reached it", "", ""])
        if res["peer"] is None:
            cells += ["not installed", "", ""]
        else:
            cells += ([f"{d['method']}, {d['tol']:.0e}, {d['error']:.1e}", f"{d['ms']:.1f} ms",
                       f"{d['ms'] / r['builtin_ms']:.0f}×"] if d else ["none reached it", "", ""])
        lines.append("| " + " | ".join(cells) + " |")
    same = all(r["builtin_same_as_numpy_path"] for r in res["rows"])
    lines += ["", f"Built-in compiled and numpy paths give {'bit-identical' if same else 'different'} states.", "",
              "| first call in a fresh process (best of the repeats) | seconds |", "|---|---|",
              f"| compile both Lorenz kernels (empty numba cache) | {j['compile_s']:.2f} |",
              f"| import numba + load both kernels from the cache | {j['cache_load']:.2f} |",
              f"| Lorenz-63 study job (16 x 3,000 states), `compiled=\"auto\"` (numpy path at this size) | "
              f"{j['job_auto']:.2f} |",
              f"| the same job, `compiled=True` (numba import and cache load included) | {j['job_compiled']:.2f} |",
              "", f"| Burgers, {b['n_samples']} samples (n_grid {b['n_grid']}, {b['n_time']} times) | seconds |",
              "|---|---|",
              f"| per-sample loop (one solve per sample) | {b['per_sample_s']:.2f} |",
              f"| batched `run_batch` (samples x modes arrays) | {b['batched_s']:.2f} |",
              f"| **speed-up** | **{b['per_sample_s'] / b['batched_s']:.2f}×** (largest relative difference "
              f"{b['max_rel_diff']:.1e}) |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

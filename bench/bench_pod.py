"""Benchmark of surroflow's POD backends against numpy/scipy SVD and scikit-learn's randomized
SVD / PCA, plus the out-of-core (streaming) POD of a file three times larger than its budget.

Usage::

    python bench/bench_pod.py            # full: 1e4 x 500 ... 2e5 x 2000, out-of-core 3 GB
    python bench/bench_pod.py --quick    # small sizes, a few seconds per case
    python bench/bench_pod.py --exact-vs-scipy   # only: surroflow exact vs scipy.linalg.svd

The tables go into ``bench/RESULTS.md`` itself, between the marker comments of the blocks
``bench_pod``, ``bench_pod_ooc`` and ``bench_pod_exact`` (``--exact-vs-scipy``: the exact
backend against ``scipy.linalg.svd(full_matrices=False)`` on the study shapes, in one process,
interleaved, fastest of several runs) (``--results FILE`` for another file; ``--quick`` writes
only when ``--results`` is given, so a smoke test never replaces the measured tables).

Every (size, method) runs in a fresh child process, so its peak resident memory is its own:
a monitor process samples the child's RSS every 2 ms during the call (``peak RSS``; an
in-process thread would miss LAPACK calls that hold the GIL), and the input size is recorded; the out-of-core child reports its whole-life ``ru_maxrss``.  Matrices are "space x
snapshots" sizes from the issue (e.g. 2e5 x 2000 = 2e5 spatial points, 2000 snapshots) stored
as surroflow does, snapshots as rows (``X`` is 2000 x 2e5, float64, C order), with a decaying
spectrum (200 terms, ``sigma_j ~ j^-1.5``, plus 1e-6 noise) like simulation data.

Timings are wall-clock on a machine shared with other jobs: the randomized methods run
alternately in one child, three times each, and the minimum is taken, so the ratio is robust to
load from elsewhere.  Methods whose estimated memory would pass ``--mem-limit-gb`` are skipped
and shown as such.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
GIB = 2 ** 30
#: the blocks of bench/RESULTS.md this script writes (see bench/results_table.py)
TABLES = ("bench_pod", "bench_pod_ooc", "bench_pod_exact")


# =========================================================================== machine
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    import dask
    import numpy
    import scipy
    import sklearn
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = f"{info[0].get('internal_api')} {info[0].get('version')} ({info[0].get('num_threads')} threads)"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem, 1), "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "dask": dask.__version__, "blas": blas, "os": platform.platform()}


# =========================================================================== child side
def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process' RSS every ``interval`` seconds while active."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> "PeakRSS":
        self.start = rss()
        self.peak = self.start
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss())


_MONITOR = r"""
import os, sys, time
pid, out, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
page = os.sysconf("SC_PAGE_SIZE")
with open(out, "w") as f:
    while True:
        try:
            with open(f"/proc/{pid}/statm") as s:
                r = int(s.read().split()[1]) * page
        except (OSError, ValueError):
            break
        f.write(f"{time.monotonic():.6f} {r}\n")
        time.sleep(interval)
"""


class ExternalPeakRSS:
    """RSS of this process sampled by a separate monitor process (every 2 ms).

    A thread cannot do it: some LAPACK wrappers (scipy's ``gesdd``) hold the GIL for the whole
    factorisation, so an in-process sampler would miss their peak."""

    def __init__(self, interval: float = 0.002) -> None:
        import tempfile
        fd, self.path = tempfile.mkstemp(suffix=".rss")
        os.close(fd)
        self.proc = subprocess.Popen([sys.executable, "-c", _MONITOR, str(os.getpid()), self.path, str(interval)])
        time.sleep(0.2)

    def peak(self, t0: float, t1: float) -> int:
        best = 0
        with open(self.path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and t0 <= float(parts[0]) <= t1:
                    best = max(best, int(parts[1]))
        return best

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        os.remove(self.path)


def make_matrix(n_snap: int, n_space: int, seed: int = 0, terms: int = 200):
    """Simulation-like data: a decaying spectrum, generated in row blocks (no temporaries of the
    size of the matrix)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    terms = min(terms, n_snap, n_space)
    sigma = (1.0 + np.arange(terms)) ** -1.5
    C = rng.standard_normal((n_snap, terms)) * sigma
    Phi = rng.standard_normal((terms, n_space)) / np.sqrt(n_space)
    X = np.empty((n_snap, n_space))
    for i in range(0, n_snap, 128):
        X[i:i + 128] = C[i:i + 128] @ Phi
        X[i:i + 128] += 1e-6 * rng.standard_normal((min(128, n_snap - i), n_space))
    return X


def _energy(s, total: float, r: int) -> float:
    import numpy as np
    s = np.asarray(s)[:r]
    return float(np.sum(s ** 2) / total)


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    out: dict[str, Any] = {"spec": spec, "results": []}
    if spec["kind"] == "ooc_write":
        return write_ooc(spec)
    if spec["kind"] == "ooc_run":
        return run_ooc(spec)
    X = make_matrix(spec["n_snap"], spec["n_space"])
    r = spec["rank"]
    total_raw = float(np.einsum("ij,ij->", X, X))
    mean = X.mean(axis=0)
    total_c = total_raw - X.shape[0] * float(mean @ mean)
    out["input_bytes"] = X.nbytes
    methods = build_methods(X, spec)
    order = spec["methods"] * spec.get("repeats", 1)
    times: dict[str, list[float]] = {m: [] for m in spec["methods"]}
    peaks: dict[str, int] = {}
    energies: dict[str, float] = {}
    monitor = ExternalPeakRSS()
    out["baseline_rss"] = rss()
    try:
        for name in order:
            with PeakRSS() as pk:
                m0 = time.monotonic()
                t0 = time.perf_counter()
                s = methods[name]()
                dt = time.perf_counter() - t0
                m1 = time.monotonic()
            time.sleep(0.01)                          # let the monitor write its last sample
            times[name].append(dt)
            peaks[name] = max(peaks.get(name, 0), pk.peak, monitor.peak(m0, m1 + 0.005))
            energies[name] = _energy(s, total_c if "centred" in name or "PCA" in name else total_raw, r)
    finally:
        monitor.close()
    for name in spec["methods"]:
        out["results"].append({"method": name, "seconds": min(times[name]), "all_seconds": times[name],
                               "peak_rss": peaks[name], "energy": energies[name]})
    return out


def q_auto(rank: int, shape: tuple[int, int]) -> int:
    """scikit-learn's ``n_iter='auto'``: 7 power iterations for small ranks, else 4."""
    return 7 if rank < 0.1 * min(shape) else 4


def build_methods(X, spec: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    import numpy as np
    import scipy.linalg as sla
    from sklearn.decomposition import PCA
    from sklearn.utils.extmath import randomized_svd

    from surroflow.reduction import linalg
    r, p, q = spec["rank"], spec["oversampling"], spec["power_iterations"]
    qa = q_auto(r, X.shape)
    ones = np.ones(X.shape[1])

    def ours(center: bool, iters: int) -> Callable[[], Any]:
        return lambda: linalg.svd(X, ones, method="randomized", center=center, rank=r, oversampling=p,
                                    power_iterations=iters, random_state=0)[1]

    return {
        "numpy.linalg.svd": lambda: np.linalg.svd(X, full_matrices=False)[1],
        # X.T is Fortran-ordered: LAPACK works in place, no copy of the input (run once: it
        # destroys X)
        "scipy.linalg.svd (in place)": lambda: sla.svd(X.T, full_matrices=False, overwrite_a=True,
                                                       check_finite=False, lapack_driver="gesdd")[1],
        "surroflow exact": lambda: linalg.svd(X, ones, method="exact", center=False)[1],
        "surroflow tsqr (all modes)": lambda: linalg.svd(X, ones, method="tsqr", center=False)[1],
        f"surroflow tsqr (rank {r})": lambda: linalg.svd(X, ones, method="tsqr", center=False, rank=r)[1],
        "surroflow randomized (q=auto)": ours(False, qa),
        "sklearn randomized_svd (n_iter=auto)": lambda: randomized_svd(X, r, n_oversamples=p, random_state=0)[1],
        f"surroflow randomized (q={q})": ours(False, q),
        f"sklearn randomized_svd (n_iter={q})": lambda: randomized_svd(X, r, n_oversamples=p, n_iter=q,
                                                                      random_state=0)[1],
        "surroflow randomized (centred, q=auto)": ours(True, qa),
        "sklearn PCA (randomized)": lambda: PCA(n_components=r, svd_solver="randomized", n_oversamples=p,
                                                random_state=0).fit(X).singular_values_,
    }


#: memory estimate of each method in units of the input size (on top of the input)
MEMORY_FACTOR = {
    "numpy.linalg.svd": 2.1, "scipy.linalg.svd (in place)": 1.05, "surroflow exact": 2.1,
    "surroflow tsqr (all modes)": 2.1, "sklearn PCA (randomized)": 1.1,
}


# --------------------------------------------------------------------------- out-of-core
def write_ooc(spec: dict[str, Any]) -> dict[str, Any]:
    """A generate-stage-like NetCDF ``u(sample, time, x)`` written sample by sample."""
    import h5netcdf
    import numpy as np
    path = Path(spec["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    n_s, n_t, n_x = spec["n_samples"], spec["n_time"], spec["n_space"]
    rng = np.random.default_rng(0)
    x = np.arange(n_x) / n_x
    t = np.linspace(0.0, 1.0, n_t)
    modes = np.stack([np.sin(2 * np.pi * (j + 1) * x + j) / (j + 1) ** 1.5 for j in range(60)])
    tmp = path.with_suffix(".tmp.nc")
    with h5netcdf.File(tmp, "w") as f:
        f.dimensions = {"sample": n_s, "time": n_t, "x": n_x, "parameter": 1}
        v = f.create_variable("u", ("sample", "time", "x"), "f8", chunks=(1, min(n_t, 256), n_x))
        v.attrs["units"] = "1"
        f.create_variable("x", ("x",), "f8", data=x).attrs["periodic"] = 1
        f.create_variable("time", ("time",), "f8", data=t)
        f.create_variable("status", ("sample",), "i1", data=np.zeros(n_s, dtype="i1"))
        f.create_variable("design", ("sample", "parameter"), "f8", data=rng.uniform(0, 1, (n_s, 1)))
        for i in range(n_s):
            coef = np.cos(np.outer(t, rng.uniform(1, 20, 60)) + rng.uniform(0, 6, 60))
            v[i] = coef @ modes + 1e-6 * rng.standard_normal((n_t, n_x))
        f.attrs.update({"time_dim": "time", "stage": "collect_batches", "complete": 1})
    os.replace(tmp, path)
    return {"spec": spec, "file_bytes": path.stat().st_size, "data_bytes": n_s * n_t * n_x * 8}


def run_ooc(spec: dict[str, Any]) -> dict[str, Any]:
    import logging
    import resource

    import numpy as np

    from surroflow.io import open_dataset
    from surroflow.reduction.files import fit_pod_file
    from surroflow.reduction.pod import POD
    plans: list[str] = []

    class Plan(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            plans.append(record.getMessage())

    log = logging.getLogger("surroflow.reduction.streaming")
    log.addHandler(Plan())
    log.setLevel(logging.INFO)
    out_nc = Path(spec["out"])
    t0 = time.perf_counter()
    fit_pod_file(spec["path"], out_nc, "u", POD(method="tsqr", rank=spec["rank"]), weights="uniform",
                 memory_budget_mb=spec["budget_mb"])
    dt = time.perf_counter() - t0
    ds = open_dataset(out_nc)
    return {"spec": spec, "seconds": dt, "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "fit_mode": ds.attrs["fit_mode"], "plan": plans[-1] if plans else "",
            "singular_values": np.asarray(ds["singular_values"].values[:20]).tolist()}


# =========================================================================== parent side
def child(spec: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return {"spec": spec, "error": (proc.stderr or proc.stdout)[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_mib(b: float) -> str:
    return f"{b / 2 ** 20:,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="POD backends benchmark")
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    ap.add_argument("--sizes", default=None, help="comma-separated SPACExSNAPSHOTS, e.g. 10000x500,200000x2000")
    ap.add_argument("--rank", type=int, default=100, help="rank of the truncated methods")
    ap.add_argument("--oversampling", type=int, default=10)
    ap.add_argument("--power-iterations", type=int, default=2)
    ap.add_argument("--mem-limit-gb", type=float, default=8.0, help="skip methods estimated above this")
    ap.add_argument("--ooc-budget-mb", type=float, default=None, help="memory budget of the out-of-core case")
    ap.add_argument("--ooc-shape", default=None,
                    help="SAMPLESxTIMESxPOINTS of the out-of-core file (default 200x1000x2000; quick 100x1000x1000)")
    ap.add_argument("--no-ooc", action="store_true", help="skip the out-of-core case")
    ap.add_argument("--only-ooc", action="store_true", help="run the out-of-core case only")
    ap.add_argument("--groups", default="reference,tsqr,randomized",
                    help="method groups to run: reference (numpy, scipy, surroflow exact), tsqr, randomized")
    ap.add_argument("--merge", default=None,
                    help="earlier results JSON: keep its rows for the groups not run now (and its out-of-core "
                         "result with --no-ooc), print and save the merged table")
    ap.add_argument("--work", default="/tmp/surroflow_bench", help="scratch folder for the out-of-core file")
    ap.add_argument("--out", default=str(HERE / "out" / "pod_results.json"), help="results JSON")
    ap.add_argument("--results", default=None,
                    help="markdown file whose bench_pod / bench_pod_ooc blocks receive the tables (default "
                         "bench/RESULTS.md; with --quick none unless given)")
    ap.add_argument("--exact-vs-scipy", action="store_true",
                    help="only time the exact backend against scipy.linalg.svd on the study shapes")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="--exact-vs-scipy: BLAS threads of both (default: the machine's); 1 is steadier on a loaded machine")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    if args.exact_vs_scipy:
        import numpy  # noqa: F401  (loads BLAS, so that threadpoolctl sees it)
        from threadpoolctl import threadpool_info, threadpool_limits
        with threadpool_limits(args.blas_threads, user_api="blas"):
            threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
            rows = exact_vs_scipy(EXACT_SHAPES if not args.quick else EXACT_SHAPES[:2])
        table = exact_markdown(rows, threads)
        print("\n" + table)
        results = args.results or (None if args.quick else str(HERE / "RESULTS.md"))
        if results:
            from results_table import write_block
            write_block(results, "bench_pod_exact", table)
        return 0

    if args.sizes:
        sizes = [tuple(int(float(v)) for v in s.split("x")) for s in args.sizes.split(",")]
    elif args.quick:
        sizes = [(10_000, 500), (20_000, 500)]
    else:
        sizes = [(10_000, 500), (50_000, 1000), (100_000, 1000), (200_000, 2000)]
    rank = min(args.rank, 50) if args.quick else args.rank
    mach = machine()
    print(f"machine: {mach['nproc']} cores, {mach['cpu']}, {mach['ram_gib']} GiB RAM; BLAS {mach['blas']}")
    exact_methods = ["numpy.linalg.svd", "scipy.linalg.svd (in place)", "surroflow exact",
                     "surroflow tsqr (all modes)", f"surroflow tsqr (rank {rank})"]
    rows: list[dict[str, Any]] = []
    for n_space, n_snap in ([] if args.only_ooc else sizes):
        data = n_space * n_snap * 8
        base = {"n_space": n_space, "n_snap": n_snap, "rank": rank, "oversampling": args.oversampling,
                "power_iterations": args.power_iterations}
        print(f"\n== {n_space:,} x {n_snap:,} (space x snapshots, {data / GIB:.2f} GiB), rank {rank}", flush=True)
        q = args.power_iterations
        wanted = set(args.groups.split(","))
        groups: list[list[str]] = [[m] for m in exact_methods
                                   if ("tsqr" in m and "tsqr" in wanted) or ("tsqr" not in m and "reference" in wanted)]
        if "randomized" in wanted:
            groups.append(["surroflow randomized (q=auto)", "sklearn randomized_svd (n_iter=auto)"])
            groups.append([f"surroflow randomized (q={q})", f"sklearn randomized_svd (n_iter={q})"])
            groups.append(["surroflow randomized (centred, q=auto)", "sklearn PCA (randomized)"])
        for group in groups:
            est = data * (1.0 + max(MEMORY_FACTOR.get(m, 0.35) for m in group)) + 0.3 * GIB
            if est > args.mem_limit_gb * GIB:
                for m in group:
                    rows.append({**base, "method": m, "skipped": f"needs ~{est / GIB:.1f} GiB"})
                    print(f"  {m:40s} skipped (needs ~{est / GIB:.1f} GiB > {args.mem_limit_gb} GiB)", flush=True)
                continue
            if len(group) > 1:        # the randomized pairs, alternately: min of 5 (3 when large)
                repeats = 5 if data < GIB else 3
            else:
                repeats = 2 if data < 0.5 * GIB and "in place" not in group[0] else 1
            res = child({**base, "kind": "matrix", "methods": group, "repeats": repeats})
            if "error" in res:
                for m in group:
                    rows.append({**base, "method": m, "skipped": "error"})
                print(f"  {group}: ERROR {res['error']}", flush=True)
                continue
            for r in res["results"]:
                row = {**base, **r, "input_bytes": res["input_bytes"], "baseline_rss": res["baseline_rss"]}
                rows.append(row)
                print(f"  {r['method']:40s} {r['seconds']:8.2f} s  peak RSS {fmt_mib(r['peak_rss']):>7s} MiB "
                      f"(input {fmt_mib(res['input_bytes'])})  energy({rank}) {r['energy']:.10f}", flush=True)
    ooc = None
    if not args.no_ooc:
        if args.quick:
            n_samples, n_time, n_space_o, budget = 100, 1000, 1000, args.ooc_budget_mb or 260.0
        else:
            n_samples, n_time, n_space_o, budget = 200, 1000, 2000, args.ooc_budget_mb or 1000.0
        if args.ooc_shape:
            n_samples, n_time, n_space_o = (int(v) for v in args.ooc_shape.split("x"))
        path = Path(args.work) / f"ooc_{n_samples}x{n_time}x{n_space_o}_v2.nc"    # v2: stage collect_batches
        data = n_samples * n_time * n_space_o * 8
        print(f"\n== out-of-core: {n_samples * n_time:,} snapshots x {n_space_o:,} points = "
              f"{fmt_mib(data)} MiB, budget {budget:,.0f} MiB ({data / 2 ** 20 / budget:.2f}x)", flush=True)
        if not path.exists():
            w = child({"kind": "ooc_write", "path": str(path), "n_samples": n_samples, "n_time": n_time,
                       "n_space": n_space_o})
            if "error" in w:
                print("write failed:", w["error"])
        run = child({"kind": "ooc_run", "path": str(path), "out": str(path.with_name("pod_budget.nc")),
                     "rank": 50, "budget_mb": budget})
        ref = child({"kind": "ooc_run", "path": str(path), "out": str(path.with_name("pod_memory.nc")),
                     "rank": 50, "budget_mb": None})
        ooc = {"data_bytes": data, "budget_mb": budget, "streaming": run, "in_memory": ref}
        if "error" not in run:
            agree = None
            if "error" not in ref:
                import numpy as np
                a, b = np.array(run["singular_values"]), np.array(ref["singular_values"])
                agree = float(np.max(np.abs(a - b) / b))
                ooc["max_rel_diff_singular_values"] = agree
            print(f"  streaming  ({run['fit_mode']}): {run['seconds']:.1f} s, peak RSS "
                  f"{fmt_mib(run['ru_maxrss'])} MiB (budget {budget:,.0f} MiB): "
                  f"{'UNDER' if run['ru_maxrss'] < budget * 2 ** 20 else 'OVER'} budget")
            if "error" not in ref:
                print(f"  in memory  ({ref['fit_mode']}): {ref['seconds']:.1f} s, peak RSS {fmt_mib(ref['ru_maxrss'])} MiB; "
                      f"leading 20 singular values agree to {agree:.1e}")
        else:
            print("  streaming failed:", run["error"])
    if args.merge:
        old = json.loads(Path(args.merge).read_text())
        done = {(r["n_space"], r["n_snap"], r["method"]) for r in rows}
        rows = [r for r in old["rows"] if (r["n_space"], r["n_snap"], r["method"]) not in done] + rows
        order = {m: i for i, m in enumerate(exact_methods + [
            "surroflow randomized (q=auto)", "sklearn randomized_svd (n_iter=auto)",
            f"surroflow randomized (q={args.power_iterations})",
            f"sklearn randomized_svd (n_iter={args.power_iterations})",
            "surroflow randomized (centred, q=auto)", "sklearn PCA (randomized)"])}
        rows.sort(key=lambda r: (r["n_space"], r["n_snap"], order.get(r["method"], 99)))
        if ooc is None:
            ooc = old.get("ooc")
    table = markdown(rows, rank) if rows else None
    ooc_table = ooc_markdown(ooc) if ooc else None
    for t in (table, ooc_table):
        if t:
            print("\n" + t)
    results = args.results or (None if args.quick else str(HERE / "RESULTS.md"))
    if results:
        from results_table import write_block
        if table:
            write_block(results, "bench_pod", table)
        if ooc_table:
            write_block(results, "bench_pod_ooc", ooc_table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": mach, "rows": rows, "ooc": ooc,
                               "settings": vars(args)}, indent=1, default=str))
    print(f"\nresults: {out}")
    return 0


def markdown(rows: list[dict[str, Any]], rank: int) -> str:
    """The table with ratios: exact methods against scipy's in-place SVD, surroflow randomized
    against scikit-learn at the same rank, oversampling and power iterations (with the
    difference in captured energy)."""
    lines = ["| space x snapshots | method | wall time (s) | ratio to reference | peak RSS (MiB) | input (MiB) | "
             f"energy captured by {rank} modes |",
             "|---|---|---:|---:|---:|---:|---:|"]
    by_size: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in rows:
        by_size.setdefault((r["n_space"], r["n_snap"]), []).append(r)
    for (ns, nm), rs in by_size.items():
        t = {r["method"]: r.get("seconds") for r in rs}
        for r in rs:
            m = r["method"]
            if "skipped" in r:
                lines.append(f"| {ns:,} x {nm:,} | {m} | skipped ({r['skipped']}) | | | | |")
                continue
            if m.startswith("sklearn"):
                ref = None
            elif m.startswith("surroflow randomized (centred"):
                ref = "sklearn PCA (randomized)"
            elif m.startswith("surroflow randomized (q="):
                ref = "sklearn randomized_svd (n_iter=" + m.split("q=")[1]
            elif m == "scipy.linalg.svd (in place)":
                ref = None
            else:
                ref = "scipy.linalg.svd (in place)"
            ratio = ""
            if ref and t.get(ref):
                ratio = f"{r['seconds'] / t[ref]:.2f}"
                e_ref = next(x.get("energy") for x in rs if x["method"] == ref)
                if m.startswith("surroflow randomized"):
                    ratio += f" (energy {r['energy'] - e_ref:+.1e})"
            lines.append(f"| {ns:,} x {nm:,} | {m} | {r['seconds']:.2f} | {ratio} | {fmt_mib(r['peak_rss'])} | "
                         f"{fmt_mib(r['input_bytes'])} | {r['energy']:.10f} |")
    return "\n".join(lines)


def ooc_markdown(ooc: dict[str, Any]) -> str | None:
    """The out-of-core table: the streaming run under its budget and the in-memory reference."""
    import re
    run, ref = ooc.get("streaming") or {}, ooc.get("in_memory") or {}
    if "seconds" not in run:
        return None
    budget = float(ooc["budget_mb"])
    m = re.search(r"(rows|columns) mode, (\d+) blocks of (\d+) (\w+)", run.get("plan", ""))
    how = (f"{m.group(2)} {'row' if m.group(1) == 'rows' else 'column'} blocks of {m.group(3)} {m.group(4)}, "
           f"{'one pass' if m.group(1) == 'rows' else 'two passes'}") if m else run.get("fit_mode", "")
    under = "under" if run["ru_maxrss"] < budget * 2 ** 20 else "OVER"
    agree = ooc.get("max_rel_diff_singular_values")
    lines = ["| run | budget | data / budget | wall time | peak RSS (whole process, `ru_maxrss`) | "
             "leading 20 singular values |", "|---|---:|---:|---:|---:|---|",
             f"| streaming ({how}) | {budget:.0f} MiB | {ooc['data_bytes'] / 2 ** 20 / budget:.2f} | "
             f"{run['seconds']:.1f} s | **{run['ru_maxrss'] / 2 ** 20:.0f} MiB** ({under} budget) | "
             + (f"agree with in-memory to {agree:.1e} |" if agree is not None else "no reference |")]
    if "seconds" in ref:
        lines.append(f"| in memory (no budget), for comparison | - | - | {ref['seconds']:.1f} s | "
                     f"{ref['ru_maxrss'] / 2 ** 20:.0f} MiB | reference |")
    return "\n".join(lines)


# =========================================================================== exact vs scipy
#: (snapshots, space, what): the shapes of the studies' exact POD and a tall / wide / square case
EXACT_SHAPES = [(1344, 128, "Burgers (64 x 21 snapshots, 128 points)"),
                (640, 2050, "plate (64 x 10 snapshots, 2 x 1025 nodes)"),
                (20_000, 200, "tall"), (200, 20_000, "wide"), (2000, 2000, "square")]


def exact_vs_scipy(shapes: list[tuple[int, int, str]], seed: int = 0) -> list[dict[str, Any]]:
    """Wall time of ``linalg.svd(X, sw, method="exact")`` (centring and weighting included)
    against ``scipy.linalg.svd(A, full_matrices=False)`` on the already centred, weighted ``A``;
    the two alternate, and the fastest of ``repeats`` runs of each is kept."""
    import numpy as np
    import scipy.linalg as sla
    from surroflow.reduction import linalg
    rows = []
    for m, n, what in shapes:
        X = make_matrix(m, n, seed)
        sw = np.sqrt(np.random.default_rng(seed + 1).uniform(0.5, 2.0, n))
        A = (X - X.mean(axis=0)) * sw
        size = m * n * min(m, n)
        repeats = 9 if size < 1e9 else (5 if size < 1e10 else 3)
        t_ref, t_ex = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _, s0, vt0 = sla.svd(A, full_matrices=False)
            t_ref.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _, s, vt = linalg.svd(X, sw, method="exact")
            t_ex.append(time.perf_counter() - t0)
        k = int(np.sum(s0 > 1e-6 * s0[0]))
        rows.append({"n_snap": m, "n_space": n, "what": what, "scipy_s": min(t_ref), "exact_s": min(t_ex),
                     "repeats": repeats, "max_rel_diff_s": float(np.max(np.abs(s[:k] - s0[:k]) / s0[:k])),
                     "projector_diff": float(np.max(np.abs(vt[:k].T @ vt[:k] - vt0[:k].T @ vt0[:k])))})
        r = rows[-1]
        print(f"  {m:>6} x {n:<6} scipy {r['scipy_s']:.4f} s  exact {r['exact_s']:.4f} s  "
              f"ratio {r['exact_s'] / r['scipy_s']:.2f}", flush=True)
    return rows


def exact_markdown(rows: list[dict[str, Any]], blas_threads: int) -> str:
    """The exact-backend table: shape, both times, their ratio and the agreement."""
    lines = [f"BLAS threads: {blas_threads}; fastest of {'/'.join(str(r['repeats']) for r in rows)} "
             "alternating runs; same weighted matrix (scipy gets it centred and weighted, surroflow's "
             "time includes centring and weighting).", "","| matrix (snapshots x space) | case | scipy.linalg.svd (s) | surroflow exact (s) | ratio | "
             "singular values (max rel. diff) | projector (max abs. diff) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n_snap']:,} x {r['n_space']:,} | {r['what']} | {r['scipy_s']:.4f} | "
                     f"{r['exact_s']:.4f} | {r['exact_s'] / r['scipy_s']:.2f} | {r['max_rel_diff_s']:.1e} | "
                     f"{r['projector_diff']:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

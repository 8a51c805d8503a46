"""Showcase: global versus local POD bases on an advection-dominated problem.

A Gaussian pulse advected around a periodic domain at speed ``velocity`` and diffused by ``nu``
(Péclet 500-15000; ``surroflow.simulators.advection``, verified against the closed form).
Runs the library's file-level functions on generate-like NetCDF files, then checks the issue's
targets:

1. local bases reach the global basis' test projection error with at most half its dimension
   per cluster;
2. the local surrogate's total test error is no worse than the global one's at equal online
   cost (the same number of modes per online evaluation).

Usage::

    python bench/showcase_local_bases.py [--out bench/out/showcase] [--quick]

Writes the figures (projection error against basis dimension; criterion) as PNG+PDF and
``summary.json`` into ``--out``, and its two tables into the blocks
``showcase_local_bases_projection`` and ``showcase_local_bases_surrogates`` of
``bench/RESULTS.md`` (``--results FILE`` for another file; ``--quick`` writes only when
``--results`` is given).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from surroflow import snapshots  # noqa: E402
from surroflow.config import fill_defaults, load_schema  # noqa: E402
from surroflow.design import make_design, resolve_parameters  # noqa: E402
from surroflow.io import open_dataset, write_dataset  # noqa: E402
from surroflow.reduction.files import fit_local_pod_file, fit_pod_file, projection_study_file  # noqa: E402
from surroflow.reduction.local import LocalPOD  # noqa: E402
from surroflow.reduction.pod import POD  # noqa: E402
from surroflow.simulators import get_simulator  # noqa: E402
from surroflow.surrogates.reduced import ReducedModel  # noqa: E402
from surroflow.surrogates.registry import make_estimator  # noqa: E402

HERE = Path(__file__).resolve().parent
#: the blocks of bench/RESULTS.md this script writes (see bench/results_table.py)
TABLES = ("showcase_local_bases_projection", "showcase_local_bases_surrogates")
SETTINGS = {"n_x": 256, "n_time": 51, "t_end": 1.0, "width": 0.04}
PARAMETERS = {"velocity": [0.5, 1.5], "nu": [1e-4, 1e-3]}


def generate(path: Path, n: int, method: str, seed: int) -> xr.Dataset:
    """A generate-stage-like file: ``u(sample, time, x)``, ``status``, ``design``."""
    sim = get_simulator("advection_diffusion", **SETTINGS)
    params = resolve_parameters(sim.parameters(), PARAMETERS)
    design = make_design(params, method, n, seed)
    names = [str(p) for p in design["parameter"].values]
    u = np.stack([sim.run_sample(dict(zip(names, row)))["u"] for row in design["design"].values])
    coords = sim.coordinates()
    ds = xr.Dataset(
        {"u": (("sample", "time", "x"), u, {"units": "1", "long_name": "transported scalar"}),
         "status": ("sample", np.zeros(n, dtype="i1")),
         "design": design["design"]},
        coords={"x": ("x", coords["x"].values, {"units": "m", "periodic": 1}),
                "time": ("time", coords["time"].values, {"units": "s"}),
                "parameter": design["parameter"].values},
        attrs={"time_dim": "time", **sim.attrs(), "stage": "collect_batches"})
    write_dataset(ds, path)
    return ds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench/out/showcase")
    ap.add_argument("--quick", action="store_true", help="64 training samples (smoke test)")
    ap.add_argument("--results", default=None,
                    help="markdown file whose showcase blocks receive the tables (default bench/RESULTS.md; "
                         "with --quick none unless given)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_test = (64, 8) if args.quick else (256, 32)
    t0 = time.perf_counter()
    train = generate(out / "train.nc", n_train, "sobol", 1)
    test = generate(out / "test.nc", n_test, "random", 7)
    print(f"data: {n_train} train / {n_test} test samples x 51 times x 256 points "
          f"({time.perf_counter() - t0:.1f} s)")

    schema = load_schema()
    clustering = fill_defaults({"n_clusters": "auto", "candidates": [1, 2, 4, 8, 16, 32], "dissimilarity": "angle",
                                "overlap": 0.1, "selector": "random_forest", "tolerance": 0.01, "seed": 0},
                               schema["$defs"]["clustering"], schema)
    t0 = time.perf_counter()
    fit_local_pod_file(out / "train.nc", "u", out / "local.nc", clustering, method="exact", rank=8, energy=0.9999,
                       weights="quadrature", criterion_nc=out / "criterion.nc", criterion_figure=out / "criterion.png")
    crit = open_dataset(out / "criterion.nc")
    k = int(crit.attrs["chosen_n_clusters"])
    print(f"criterion ({time.perf_counter() - t0:.1f} s): candidates {crit['candidate'].values.tolist()}, "
          f"mean local rank at 1e-2 {np.round(crit['mean_rank'].values, 1).tolist()} -> {k} clusters")
    fit_pod_file(out / "train.nc", out / "global.nc", "u", POD(method="tsqr", energy=0.99999))

    summary = projection_study_file(out / "train.nc", out / "test.nc", "u", out / "projection_error.png",
                                    out / "projection_error.nc", clustering, weights="quadrature", max_rank=60,
                                    n_clusters=sorted({4, k, 16}))
    g = np.asarray(summary["global"])
    proj = open_dataset(out / "projection_error.nc")
    rows = []
    for tol in (1e-1, 3e-2, 1e-2, 1e-3):
        rg = int(np.flatnonzero(g <= tol)[0]) if np.any(g <= tol) else None
        if rg is None:
            continue
        row = {"target_error": tol, "global_dim": rg, "global_error": float(g[rg])}
        for kk in proj["n_clusters"].values[1:]:
            e = proj["projection_error"].sel(n_clusters=kk).values
            rl = int(np.flatnonzero(e <= g[rg])[0]) if np.any(e <= g[rg]) else None
            row[f"local{kk}_dim"] = rl
        rows.append(row)
    print("\ntest projection error: dimension needed by the global basis and by local bases")
    print("  target | global dim (error) | " + " | ".join(f"{kk} clusters" for kk in proj["n_clusters"].values[1:]))
    for row in rows:
        cells = " | ".join(f"{row[f'local{kk}_dim']} ({row[f'local{kk}_dim'] / row['global_dim']:.2f}x)"
                           for kk in proj["n_clusters"].values[1:])
        print(f"  {row['target_error']:6.0e} | {row['global_dim']:3d} ({row['global_error']:.2e})    | {cells}")

    # surrogates at equal online cost
    X = snapshots.snapshot_matrix(train, "u")
    inputs = snapshots.snapshot_inputs(train, "u")
    Xt = snapshots.snapshot_matrix(test, "u")
    inputs_t = snapshots.snapshot_inputs(test, "u")
    groups_t = snapshots.snapshot_groups(test, "u")
    w = snapshots.space_weights(train, "u", "quadrature")
    reg_name = "surroflow rbf surrogate (default hyperparameters)"
    print(f"\nsurrogates ({reg_name}); errors are relative weighted L2 over all test snapshots")
    print("  model                     | modes online | total  | projection | selection | regression | select. acc.")
    results = []
    for r in (4, 8, 16):
        gm = ReducedModel({"u": POD(method="tsqr", rank=r, energy=None).fit(X, w)}, make_estimator("rbf", {}))
        models = [("global", gm.fit(inputs, {"u": X}))]
        for kk in sorted({4, k, 16}):
            lp = LocalPOD(n_clusters=kk, dissimilarity="angle", overlap=0.1, rank=r, energy=None,
                          selector="random_forest", random_state=0).fit(X, w, inputs=inputs)
            models.append((f"local, {kk} clusters",
                           ReducedModel({"u": lp}, make_estimator("rbf", {})).fit(inputs, {"u": X})))
        for name, m in models:
            e = m.error_split(inputs_t, {"u": Xt}, groups=groups_t)["u"]
            results.append({"model": name, "modes": m.n_online_modes,
                            **{key: e[key] for key in ("total", "projection", "selection", "regression",
                                                        "selection_accuracy")}})
            print(f"  {name:25s} | {m.n_online_modes:12d} | {e['total']:.4f} | {e['projection']:.4f}     | "
                  f"{e['selection']:.4f}    | {e['regression']:.4f}     | {e['selection_accuracy']:.3f}")
    ok_half = all(row.get(f"local{k}_dim") is not None and row[f"local{k}_dim"] <= row["global_dim"] / 2
                  for row in rows)
    by = {(x["model"], x["modes"]): x["total"] for x in results}
    ok_cost = all(by[(f"local, {k} clusters", r)] <= by[("global", r)] for r in (4, 8, 16))
    print(f"\nlocal ({k} clusters) reaches the global test projection error with <= half the dimension: {ok_half}")
    print(f"local ({k} clusters) total error <= global at equal online cost (4, 8, 16 modes): {ok_cost}")
    (out / "summary.json").write_text(json.dumps({
        "n_train": n_train, "n_test": n_test, "settings": SETTINGS, "parameters": PARAMETERS,
        "clustering": clustering, "chosen_n_clusters": k,
        "criterion_mean_rank": crit["mean_rank"].values.tolist(),
        "criterion_candidates": crit["candidate"].values.tolist(),
        "projection_dimensions": rows, "surrogates": results, "regressor": reg_name,
        "half_dimension_target_met": ok_half, "equal_cost_target_met": ok_cost}, indent=1, default=float))
    print(f"figures: {out / 'projection_error.png'}, {out / 'criterion.png'} (and .pdf)")
    target = args.results or (None if args.quick else str(HERE / "RESULTS.md"))
    if target:
        from results_table import write_block
        ks = [int(kk) for kk in proj["n_clusters"].values[1:]]
        write_block(target, "showcase_local_bases_projection", projection_table(rows, ks))
        write_block(target, "showcase_local_bases_surrogates", surrogate_table(results, k))
    return 0 if (ok_half and ok_cost) else 1


def sci(x: float, digits: int) -> str:
    """``8.1e-2`` rather than ``8.1e-02``."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:.{digits}e}").replace("e+", "e")


def projection_table(rows: list[dict], ks: list[int]) -> str:
    """Modes the global basis and the local bases need to reach each test projection error."""
    lines = ["| target | global basis | " + " | ".join(f"{kk} clusters" for kk in ks) + " |",
             "|---|---:|" + "---:|" * len(ks)]
    for row in rows:
        cells = []
        for kk in ks:
            rl = row[f"local{kk}_dim"]
            cells.append("-" if rl is None else f"{rl} ({rl / row['global_dim']:.2f}x)")
        lines.append(f"| {sci(row['target_error'], 0)} | {row['global_dim']} ({sci(row['global_error'], 1)}) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def surrogate_table(results: list[dict], chosen: int) -> str:
    """Error split of every model at equal online cost (the chosen local model in bold)."""
    lines = ["| modes | model | total | projection | selection | regression | selector accuracy |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for x in results:
        glob = x["model"] == "global"
        total = f"{x['total']:.3g}"
        if x["model"] == f"local, {chosen} clusters":
            total = f"**{total}**"
        lines.append(f"| {x['modes']} | {x['model']} | {total} | {x['projection']:.2g} | "
                     f"{'0' if glob else format(x['selection'], '.2g')} | {x['regression']:.2g} | "
                     f"{'-' if glob else format(x['selection_accuracy'], '.3f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

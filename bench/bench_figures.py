"""Time of the parametric evaluation's figures, vector PDF (before) against rasterized
image-like artists (after), on the Burgers study's fields, and write ``bench/RESULTS_figures.md``.

The data are the Burgers study's (default settings of ``config/config.yaml``: 256 x 51 x-t
grid): 16 test samples solved by the built-in simulator; the "prediction" is the truth plus a
small perturbation (the figure's cost does not depend on the surrogate).  Figures are those of
``evaluate_surrogates``: ``fields`` (3 x 3 x-t pcolormesh) and ``error_parameters``; each is saved
as PNG + PDF through :func:`surroflow.evaluation.figures.save`.  "before" disables the
rasterization (:func:`~surroflow.evaluation.figures.rasterize_images` and the PDF dpi), as the
code was; variants alternate, the median of ``--repeats`` is reported.

    python bench/bench_figures.py [--repeats 3] [--out bench/RESULTS_figures.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import write_block  # noqa: E402


def burgers_test_data(n: int = 16, seed: int = 1):
    from surroflow.simulators import get_simulator
    sim = get_simulator("burgers")
    rng = np.random.default_rng(seed)
    design = np.column_stack([rng.uniform(0.02, 0.1, n), rng.uniform(0.5, 1.5, n)])
    fields = np.stack([np.asarray(sim.run_sample({"nu": nu, "amplitude": a})["u"]) for nu, a in design])
    coords = sim.coordinates()
    return design, fields, np.asarray(coords["x"].values), np.asarray(coords["time"].values)


@contextmanager
def vector_pdf():
    """The figures as they were saved before: no artist rasterized, PDF at the default dpi."""
    from surroflow.evaluation import figures
    old = figures.rasterize_images, figures.PDF_DPI
    figures.rasterize_images, figures.PDF_DPI = (lambda fig: 0), None
    try:
        yield
    finally:
        figures.rasterize_images, figures.PDF_DPI = old


def draw(folder: Path, design, truth, pred, x, t) -> dict[str, float]:
    from surroflow.evaluation import parametric_figures as F
    err = np.sqrt(np.sum((pred - truth) ** 2, axis=(1, 2)) / np.sum(truth ** 2, axis=(1, 2)))
    out = {}
    t0 = time.perf_counter()
    pick = [int(i) for i in np.argsort(err)[[0, len(err) // 2, -1]]]
    F.plot_fields_xt(x, t, [truth[i] for i in pick], [pred[i] for i in pick], [f"sample {i}" for i in pick],
                     folder / "fields.png", units="m/s", x_units="m", t_units="s", title="u (m/s)")
    out["fields"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    F.plot_error_parameters(design, ["nu", "amplitude"], ["m^2/s", "m/s"], {"gp": err, "rbf": err, "mlp": err},
                            folder / "error_parameters.png", train_design=design)
    out["error_parameters"] = time.perf_counter() - t0
    out["pdf_bytes"] = (folder / "fields.pdf").stat().st_size
    return out


#: the block of bench/RESULTS_figures.md this script writes (see bench/results_table.py)
TABLES = ("bench_figures",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_figures.md")))
    args = ap.parse_args()
    from surroflow.evaluation.figures import pyplot
    pyplot()
    design, truth, x, t = burgers_test_data()
    pred = truth + 1e-3 * np.random.default_rng(0).standard_normal(truth.shape)
    res: dict[str, list[dict[str, float]]] = {"before (vector PDF)": [], "after (rasterized)": []}
    with tempfile.TemporaryDirectory() as tmp:
        with vector_pdf():
            draw(Path(tmp), design, truth, pred, x, t)                 # warm-up (font cache, imports)
        for _ in range(args.repeats):
            for name in res:                                             # variants alternate
                if name.startswith("before"):
                    with vector_pdf():
                        res[name].append(draw(Path(tmp), design, truth, pred, x, t))
                else:
                    res[name].append(draw(Path(tmp), design, truth, pred, x, t))
    load = os.getloadavg()
    lines = ["# Parametric evaluation figures: vector PDF against rasterized images", "",
             f"Written by `python bench/bench_figures.py --repeats {args.repeats}` on {platform.node()} "
             f"({os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end: "
             "timings under that load). Burgers study fields (x-t grid "
             f"{x.size} x {t.size}, 3 samples x 3 panels); median of {args.repeats} alternating runs, "
             "PNG + PDF each.", "",
             "| variant | fields (s) | error_parameters (s) | total (s) | fields.pdf (kB) |",
             "|---|---:|---:|---:|---:|"]
    for name, runs in res.items():
        f = float(np.median([r["fields"] for r in runs]))
        e = float(np.median([r["error_parameters"] for r in runs]))
        tot = float(np.median([r["fields"] + r["error_parameters"] for r in runs]))
        kb = float(np.median([r["pdf_bytes"] for r in runs])) / 1e3
        lines.append(f"| {name} | {f:.2f} | {e:.2f} | {tot:.2f} | {kb:.0f} |")
    out = Path(args.out)
    if not out.exists():
        out.write_text(lines[0] + "\n")
    write_block(out, TABLES[0], "\n".join(lines[2:]))


if __name__ == "__main__":
    main()

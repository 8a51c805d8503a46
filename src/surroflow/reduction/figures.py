"""Figures of the reduction stage: projection error against basis dimension (global versus
local bases) and the a-priori efficiency criterion for the number of clusters.

Every figure is written as PNG and as PDF beside it, with labelled axes and units.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: Any, png: str | Path) -> Path:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(png.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return png


def plot_projection_error(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], png: str | Path,
                          *, title: str = "test projection error", tolerance: float | None = None,
                          marks: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """Relative projection error against basis dimension, one line per basis.

    ``curves``: label -> (basis dimensions, relative errors); a label starting with ``global``
    is drawn as a thick black line.  ``tolerance`` draws a horizontal line; ``marks``: label ->
    (dimension, error) points to highlight (e.g. where local bases reach the global error).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    cmap = plt.get_cmap("viridis")
    local = [k for k in curves if not k.startswith("global")]
    for i, (label, (dims, err)) in enumerate(curves.items()):
        err = np.maximum(np.asarray(err, dtype=float), 1e-16)
        if label.startswith("global"):
            ax.semilogy(dims, err, color="black", lw=2.2, label=label)
        else:
            j = local.index(label)
            ax.semilogy(dims, err, color=cmap(0.15 + 0.7 * j / max(1, len(local) - 1)), lw=1.5,
                        marker="o", ms=2.5, label=label)
    if tolerance is not None:
        ax.axhline(tolerance, ls="--", color="grey", lw=1, label=f"tolerance {tolerance:g}")
    star_colours = plt.get_cmap("autumn")
    for i, (label, (d, e)) in enumerate((marks or {}).items()):
        ax.plot([d], [e], marker="*", ms=13, color=star_colours(0.8 * i / max(1, len(marks or {}) - 1)),
                markeredgecolor="black", markeredgewidth=0.5, ls="none", label=label)
    ax.set(xlabel="basis dimension (modes per basis)", ylabel="relative projection error (1)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, png)


def plot_criterion(result: Any, png: str | Path) -> Path:
    """The a-priori efficiency criterion: mean local rank (online cost) needed to reach the
    projection tolerance against the number of clusters, with the chosen number marked, and the
    held-out projection error against basis dimension for every candidate.

    ``result``: a :class:`surroflow.reduction.criterion.CriterionResult` (or its ``to_dataset()``).
    """
    if hasattr(result, "mean_rank") and not hasattr(result, "data_vars"):
        cands = np.asarray(result.candidates)
        mean_rank = np.asarray(result.mean_rank, dtype=float)
        max_rank = np.asarray(result.max_rank, dtype=float)
        curves = np.asarray(result.error_curves)
        tol, chosen = float(result.tolerance), int(result.chosen)
    else:
        ds = result
        cands = ds["candidate"].values
        mean_rank, max_rank = ds["mean_rank"].values, ds["max_rank"].values
        curves = ds["projection_error"].values
        tol, chosen = float(ds.attrs["tolerance"]), int(ds.attrs["chosen_n_clusters"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    finite = np.isfinite(mean_rank)
    ax1.plot(cands[finite], mean_rank[finite], "o-", color="tab:blue", label="mean local rank")
    ax1.plot(cands[np.isfinite(max_rank)], max_rank[np.isfinite(max_rank)], "s--", color="tab:grey",
             ms=4, label="largest local rank")
    if chosen in cands and np.isfinite(mean_rank[list(cands).index(chosen)]):
        ax1.plot([chosen], [mean_rank[list(cands).index(chosen)]], marker="*", ms=16, color="crimson",
                 ls="none", label=f"chosen: {chosen} clusters")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(cands)
    ax1.set_xticklabels([str(c) for c in cands])
    ax1.set(xlabel="number of clusters (1)", ylabel="modes per online evaluation (1)",
            title=f"online cost at held-out projection error {tol:g}")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    cmap = plt.get_cmap("viridis")
    dims = np.arange(curves.shape[1])
    for i, k in enumerate(cands):
        ax2.semilogy(dims[1:], np.maximum(curves[i, 1:], 1e-16),
                     color="black" if k == 1 else cmap(0.15 + 0.7 * i / max(1, len(cands) - 1)),
                     lw=2.2 if k == 1 else 1.4, label=f"{k} cluster{'s' if k > 1 else ''}")
    ax2.axhline(tol, ls="--", color="grey", lw=1)
    last = np.max(np.where(np.isfinite(mean_rank), mean_rank, 0.0))
    ax2.set_xlim(0, max(10.0, min(dims[-1], 2.5 * (last if last > 0 else dims[-1]))))
    ax2.set(xlabel="basis dimension (modes per basis)", ylabel="held-out relative projection error (1)",
            title="projection error against basis dimension")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    return _save(fig, png)

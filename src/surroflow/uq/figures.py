"""Figures of an uncertainty study (PNG + PDF through :func:`surroflow.evaluation.figures.save`):
``qoi_distributions`` (surrogate histogram, high-fidelity check draws, both means with their
intervals) and ``sobol_indices`` (first-order and total indices with confidence whiskers)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..evaluation.figures import pyplot, save


def plot_qoi_distributions(ds: xr.Dataset, png: str | Path) -> list[Path]:
    plt = pyplot()
    qnames = [str(q) for q in ds["qoi"].values]
    fig, axes = plt.subplots(1, len(qnames), figsize=(4.2 * len(qnames), 3.4), squeeze=False)
    for k, (ax, q) in enumerate(zip(axes[0], qnames)):
        sur = np.asarray(ds["qoi_surrogate"].values[:, k])
        hf = np.asarray(ds["qoi_high_fidelity"].values[:, k]) if ds.sizes.get("hf_sample", 0) else np.empty(0)
        sur, hf = sur[np.isfinite(sur)], hf[np.isfinite(hf)]
        edges = np.histogram_bin_edges(np.concatenate([sur, hf]), bins=60)
        ax.hist(sur, bins=edges, density=True, color="tab:blue", alpha=0.55, label=f"surrogate ({sur.size} draws)")
        if hf.size:
            coarse = np.linspace(edges[0], edges[-1], max(6, int(math.sqrt(hf.size)) + 1))   # few draws: few bins
            ax.hist(hf, bins=coarse, density=True, histtype="step", color="tab:red", lw=1.5,
                    label=f"high fidelity ({hf.size} draws)")
        for s, color in (("surrogate", "tab:blue"), ("high_fidelity", "tab:red")):
            m = float(ds["mean"].sel(qoi=q, source=s))
            if np.isfinite(m):
                lo, hi = float(ds["mean_lower"].sel(qoi=q, source=s)), float(ds["mean_upper"].sel(qoi=q, source=s))
                ax.axvline(m, color=color, lw=1)
                ax.axvspan(lo, hi, color=color, alpha=0.15)
        agree = bool(ds["mean_agrees"].sel(qoi=q)) and bool(ds["std_agrees"].sel(qoi=q))
        ax.set_title(f"{q}: {str(ds['qoi_description'].sel(qoi=q).values)}\nagree within the check's CI: "
                     f"{'yes' if agree else 'no'}", fontsize=8)
        ax.set_xlabel(q)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, png)


def plot_sobol(ds: xr.Dataset, png: str | Path) -> list[Path]:
    plt = pyplot()
    qnames = [str(q) for q in ds["qoi"].values]
    inputs = [str(p) for p in ds["input"].values]
    fig, axes = plt.subplots(1, len(qnames), figsize=(max(3.5, 1.1 * len(inputs) + 1.5) * len(qnames), 3.2),
                             squeeze=False)
    x = np.arange(len(inputs))
    for ax, q in zip(axes[0], qnames):
        for off, key, label, color in ((-0.2, "sobol_first", "first order", "tab:blue"),
                                       (0.2, "sobol_total", "total", "tab:orange")):
            v = ds[key].sel(qoi=q).values
            err = ds[f"{key}_conf"].sel(qoi=q).values
            ax.bar(x + off, v, width=0.4, yerr=err, capsize=3, color=color, label=label)
        ax.set_xticks(x, inputs)
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(ds["sobol_first"].values)) - 0.05))
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(q, fontsize=9)
        ax.set_ylabel("Sobol index")
        ax.legend(fontsize=7)
    note = str(ds.attrs.get("sobol_note", ""))
    if note:
        fig.suptitle(note, fontsize=7)
    fig.tight_layout()
    return save(fig, png)


def plot_figures(ds: xr.Dataset, folder: str | Path) -> list[Any]:
    """Every figure of the study into ``folder`` (Sobol only when computed)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_qoi_distributions(ds, out / "qoi_distributions.png")
    if "sobol_first" in ds:
        paths += plot_sobol(ds, out / "sobol_indices.png")
    return paths


__all__ = ["plot_qoi_distributions", "plot_sobol", "plot_figures"]

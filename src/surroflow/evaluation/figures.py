"""Figures of the evaluation stage (PNG and PDF, labelled axes with units)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig: "plt.Figure", png: str | Path) -> None:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(png.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)


def plot_singular_values(bases: Mapping[str, object], png: str | Path) -> None:
    """Singular-value decay (normalised) and cumulative energy, one line per variable."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for var, b in bases.items():
        s = np.asarray(b.singular_values_)
        k = np.arange(1, s.size + 1)
        ax1.semilogy(k, s / s[0], label=var)
        ax1.axvline(b.n_modes_, ls=":", color="grey")
        ax2.semilogy(k, np.maximum(1 - b.energy_, 1e-16), label=var)
        ax2.axvline(b.n_modes_, ls=":", color="grey")
    ax1.set(xlabel="mode index", ylabel=r"$\sigma_k/\sigma_1$ (1)", title="singular-value decay")
    ax2.set(xlabel="number of modes", ylabel="1 - captured energy (1)", title="energy not captured")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.grid(alpha=0.3)
    save(fig, png)


def plot_fields_xt(x: np.ndarray, t: np.ndarray, truth: Sequence[np.ndarray], pred: Sequence[np.ndarray],
                   labels: Sequence[str], png: str | Path, units: str = "", x_units: str = "m",
                   t_units: str = "s", title: str = "") -> None:
    """True / predicted / error x–t diagrams, one row per sample."""
    n = max(1, len(truth))
    fig, axes = plt.subplots(n, 3, figsize=(12, 2.8 * n), squeeze=False)
    for i, (u, v, lab) in enumerate(zip(truth, pred, labels)):
        lim = np.max(np.abs(u))
        for j, (data, name, cmap, vr) in enumerate(((u, "high fidelity", "RdBu_r", (-lim, lim)),
                                                     (v, "surrogate", "RdBu_r", (-lim, lim)),
                                                     (v - u, "error", "PuOr", None))):
            ax = axes[i, j]
            if vr is None:
                e = np.max(np.abs(data)) or 1.0
                vr = (-e, e)
            im = ax.pcolormesh(x, t, data, cmap=cmap, vmin=vr[0], vmax=vr[1], shading="auto")
            fig.colorbar(im, ax=ax, label=units)
            ax.set(xlabel=f"x ({x_units})", ylabel=f"t ({t_units})")
            ax.set_title(f"{name}: {lab}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png)


def plot_error_parameters(design: np.ndarray, names: Sequence[str], units: Sequence[str],
                          errors: Mapping[str, np.ndarray], png: str | Path,
                          train_design: np.ndarray | None = None) -> None:
    """Relative error of each test sample over the first two parameters, one panel per surrogate."""
    m = max(1, len(errors))
    fig, axes = plt.subplots(1, m, figsize=(4.2 * m, 3.6), squeeze=False)
    j = 1 if design.shape[1] > 1 else 0
    allerr = np.concatenate([np.asarray(e) for e in errors.values()]) if errors else np.ones(1)
    vmin, vmax = max(allerr.min(), 1e-8), max(allerr.max(), 1e-7)
    for ax, (name, err) in zip(axes[0], errors.items()):
        if train_design is not None:
            ax.scatter(train_design[:, 0], train_design[:, j], marker="x", s=12, c="lightgrey", label="train")
        sc = ax.scatter(design[:, 0], design[:, j], c=err, cmap="viridis", s=40, edgecolors="k",
                        norm=matplotlib.colors.LogNorm(vmin=vmin, vmax=vmax), label="test")
        fig.colorbar(sc, ax=ax, label="relative L2 error (1)")
        ax.set(xlabel=f"{names[0]} ({units[0]})", ylabel=f"{names[j]} ({units[j]})", title=name)
    axes[0, 0].legend(loc="best", fontsize=7)
    fig.tight_layout()
    save(fig, png)


def plot_error_bars(summary_rows: Sequence[Mapping[str, float]], png: str | Path) -> None:
    """Mean relative error split into projection and regression parts, per surrogate."""
    names = [r["surrogate"] for r in summary_rows]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 3, 3.6))
    x = np.arange(len(names))
    ax.bar(x - 0.25, [r["rel_l2_mean"] for r in summary_rows], 0.25, label="total")
    ax.bar(x, [r["projection_error_mean"] for r in summary_rows], 0.25, label="projection")
    ax.bar(x + 0.25, [r["regression_error_mean"] for r in summary_rows], 0.25, label="regression")
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set(ylabel="mean relative L2 error (1)", title="error split on the test design")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save(fig, png)


def _triangles(cells: np.ndarray) -> np.ndarray:
    cells = np.asarray(cells)
    if cells.shape[1] == 3:
        return cells
    if cells.shape[1] == 4:   # split quads along a diagonal
        return np.vstack([cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]])
    raise ValueError(f"cannot plot cells with {cells.shape[1]} vertices")


def plot_mesh_fields(points: np.ndarray, cells: np.ndarray, truth: Sequence[np.ndarray],
                     pred: Sequence[np.ndarray], labels: Sequence[str], png: str | Path,
                     units: str = "", coord_units: str = "", title: str = "") -> None:
    """True / predicted / error nodal fields on a 2-D mesh (one row per sample).

    Each field is one value per node (vector fields: pass the magnitude).
    """
    import matplotlib.tri as mtri
    tri = mtri.Triangulation(points[:, 0], points[:, 1], _triangles(cells))
    n = max(1, len(truth))
    fig, axes = plt.subplots(n, 3, figsize=(12, 3.4 * n), squeeze=False)
    for i, (u, v, lab) in enumerate(zip(truth, pred, labels)):
        lo, hi = float(np.min(u)), float(np.max(u))
        e = float(np.max(np.abs(v - u))) or 1.0
        for j, (data, name, cmap, vr) in enumerate(((u, "high fidelity", "viridis", (lo, hi)),
                                                     (v, "surrogate", "viridis", (lo, hi)),
                                                     (v - u, "error", "PuOr", (-e, e)))):
            ax = axes[i, j]
            im = ax.tripcolor(tri, data, cmap=cmap, vmin=vr[0], vmax=vr[1], shading="gouraud")
            fig.colorbar(im, ax=ax, label=units)
            ax.set_aspect("equal")
            ax.set(xlabel=f"x ({coord_units})", ylabel=f"y ({coord_units})")
            ax.set_title(f"{name}: {lab}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png)

"""Figures of the forecast evaluation (PNG and PDF, labelled axes with units).

* ``vpt``: valid prediction time per model (box plot with every forecast as a dot; diverged
  models marked);
* ``error_growth``: median normalised error against lead time (with inter-quartile band) and
  the VPT threshold; ``rmse``: RMSE against lead time;
* ``rollout_<i>``: rollout against truth, one panel per component (ODE systems);
* ``xt_<model>``: x–t diagrams of truth, prediction and error (fields on a 1-D grid);
* ``spectra``: temporal (and spatial) power spectra of long rollouts against the truth;
* ``invariant_measure``: histograms of the state over long rollouts against the truth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from .figures import colors as _colors, pyplot as _plt, save as _save

TIME_LABEL = "lead time [Lyapunov times]"


def save(fig, folder: str | Path, stem: str) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` in ``folder``; close it."""
    return _save(fig, Path(folder) / f"{stem}.png")


def plot_vpt(metrics: xr.Dataset, folder: str | Path) -> list[Path]:
    plt = _plt()
    names = [str(n) for n in metrics["model"].values]
    vpt = metrics["vpt"].values
    div = metrics["diverged"].values.astype(bool)
    order = np.argsort([np.median(v) for v in vpt])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4.0))
    ax.boxplot([vpt[i] for i in order], showfliers=False, widths=0.6)
    rng = np.random.default_rng(0)
    labels = []
    for pos, i in enumerate(order, start=1):
        x = pos + rng.uniform(-0.18, 0.18, vpt.shape[1])
        ax.scatter(x[~div[i]], vpt[i][~div[i]], s=8, alpha=0.6, color="C0", zorder=3)
        if div[i].any():
            ax.scatter(x[div[i]], vpt[i][div[i]], s=14, marker="x", color="C3", zorder=4)
        note = f"\n(diverged {div[i].sum()}/{div.shape[1]})" if div[i].any() else ""
        if not note and "stats_diverged_fraction" in metrics and metrics["stats_diverged_fraction"].values[i] > 0:
            note = "\n(diverged in long rollouts)"
        labels.append(names[i] + note)
    if "persistence" in names:
        ax.axhline(np.median(vpt[names.index("persistence")]), color="0.5", ls="--", lw=1, label="persistence (median)")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xticks(range(1, len(names) + 1), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("valid prediction time [Lyapunov times]")
    ax.set_title(f"VPT (normalised error > {metrics.attrs.get('vpt_threshold', '?')}), "
                 f"{vpt.shape[1]} forecasts; x = diverged")
    ax.grid(axis="y", alpha=0.3)
    return save(fig, folder, "vpt")


def plot_error_growth(metrics: xr.Dataset, folder: str | Path) -> list[Path]:
    plt = _plt()
    names = [str(n) for n in metrics["model"].values]
    col = _colors(names)
    lead = metrics["lead_lyapunov"].values
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    e = metrics["normalised_error"].values.astype(float)
    e[~np.isfinite(e)] = 1e6          # blown-up forecasts: off the top of the axis, not dropped
    for i, n in enumerate(names):
        med = np.median(e[i], axis=0)
        q1, q3 = np.quantile(e[i], 0.25, axis=0), np.quantile(e[i], 0.75, axis=0)
        axes[0].plot(lead, med, color=col[n], label=n, lw=1.3)
        axes[0].fill_between(lead, q1, np.minimum(q3, 1e3), color=col[n], alpha=0.12)
        axes[1].plot(lead, metrics["rmse"].values[i], color=col[n], label=n, lw=1.3)
    axes[0].axhline(float(metrics.attrs.get("vpt_threshold", 0.4)), color="k", ls=":", lw=1, label="threshold")
    axes[0].set_yscale("log")
    axes[0].set_ylim(1e-4, 3)
    axes[0].set_ylabel(f"normalised error [1] ({metrics.attrs.get('vpt_normalisation', 'rms')})")
    axes[1].set_ylabel("RMSE [state units] (finite forecasts)")
    for ax in axes:
        ax.set_xlabel(TIME_LABEL)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title("median and inter-quartile range")
    axes[1].set_title("RMSE against lead time")
    return save(fig, folder, "error_growth")


def plot_rollouts(truth: np.ndarray, preds: Mapping[str, np.ndarray], lead_lt: np.ndarray, folder: str | Path,
                  component_names: Sequence[str] | None = None, max_components: int = 3) -> list[Path]:
    """Rollout against truth for each plotted forecast (components as rows)."""
    plt = _plt()
    out: list[Path] = []
    names = list(preds)
    col = _colors(names)
    n_c = min(truth.shape[2], max_components)
    for i in range(truth.shape[0]):
        fig, axes = plt.subplots(n_c, 1, figsize=(10, 2.2 * n_c), sharex=True, squeeze=False)
        for c in range(n_c):
            ax = axes[c, 0]
            ax.plot(lead_lt, truth[i, :, c], color="k", lw=1.6, label="truth")
            for n in names:
                if n == "climatology":
                    continue
                ax.plot(lead_lt, preds[n][i, :, c], color=col[n], lw=1.0, alpha=0.85, label=n)
            lab = component_names[c] if component_names is not None else f"component {c}"
            ax.set_ylabel(f"{lab} [1]")
            lo, hi = float(np.nanmin(truth[:, :, c])), float(np.nanmax(truth[:, :, c]))
            pad = 0.2 * max(hi - lo, 1e-12)
            ax.set_ylim(lo - pad, hi + pad)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7, ncol=4, loc="upper left")
        axes[-1, 0].set_xlabel(TIME_LABEL)
        axes[0, 0].set_title(f"forecast {i}: rollout against truth")
        out += save(fig, folder, f"rollout_{i}")
    return out


def plot_xt(truth: np.ndarray, preds: Mapping[str, np.ndarray], lead_lt: np.ndarray, x: np.ndarray,
            folder: str | Path, index: int = 0) -> list[Path]:
    """x–t diagrams (truth, prediction, error) of forecast ``index`` for every model."""
    plt = _plt()
    out: list[Path] = []
    vmax = float(np.nanmax(np.abs(truth)))
    ext = [float(lead_lt[0]), float(lead_lt[-1]), float(x[0]), float(x[-1])]
    for n, p in preds.items():
        fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
        with np.errstate(all="ignore"):
            err = p[index] - truth[index]
        for ax, data, title in zip(axes, (truth[index], p[index], err), ("truth", n, f"error ({n} - truth)")):
            im = ax.imshow(data.T, aspect="auto", origin="lower", extent=ext, cmap="RdBu_r",
                           vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_ylabel("x [length]")
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, label="u [1]", pad=0.01)
        axes[-1].set_xlabel(TIME_LABEL)
        out += save(fig, folder, f"xt_{n}")
    return out


def _spectrum_panel(ax, x: np.ndarray, truth: np.ndarray, preds: np.ndarray, names: Sequence[str],
                    col: Mapping[str, str], loglog: bool) -> None:
    """Truth (black) and every model's finite, non-zero spectrum on one axis."""
    plot = ax.loglog if loglog else ax.semilogy
    plot(x, truth, color="k", lw=2, label="truth")
    for i, n in enumerate(names):
        y = preds[i]
        if np.all(np.isfinite(y)) and np.any(y > 0):
            plot(x, y, color=col[n], lw=1, label=n)
    ax.set_ylim(bottom=1e-12 * float(np.nanmax(truth)))
    ax.grid(alpha=0.3, which="both")


def plot_spectra(metrics: xr.Dataset, folder: str | Path) -> list[Path]:
    plt = _plt()
    names = [str(n) for n in metrics["model"].values]
    col = _colors(names)
    spatial = "psd_space" in metrics
    fig, axes = plt.subplots(1, 2 if spatial else 1, figsize=(11 if spatial else 6, 4), squeeze=False)
    ax = axes[0, 0]
    _spectrum_panel(ax, metrics["frequency"].values[1:], metrics["psd_time_true"].values[1:],
                    metrics["psd_time"].values[:, 1:], names, col, loglog=True)
    ax.set_xlabel("frequency [1/time unit]")
    ax.set_ylabel("temporal power spectral density [state² · time]")
    ax.set_title("long rollouts: temporal spectrum (constant forecasts off the axis)")
    ax.legend(fontsize=7)
    if spatial:
        ax = axes[0, 1]
        _spectrum_panel(ax, metrics["wavenumber"].values[1:], metrics["psd_space_true"].values[1:],
                        metrics["psd_space"].values[:, 1:], names, col, loglog=False)
        ax.set_xlabel("wavenumber k [1/length]")
        ax.set_ylabel("spatial power spectrum [state²]")
        ax.set_title("long rollouts: spatial spectrum")
    return save(fig, folder, "spectra")


def plot_invariant_measure(truth_stats: np.ndarray, stats_pred: Mapping[str, np.ndarray], folder: str | Path,
                           component_names: Sequence[str] | None = None, pooled: bool = False) -> list[Path]:
    plt = _plt()
    names = list(stats_pred)
    col = _colors(names)
    comps = [None] if pooled else list(range(min(3, truth_stats.shape[2])))
    fig, axes = plt.subplots(1, len(comps), figsize=(4 * len(comps), 3.5), squeeze=False)
    for ax, c in zip(axes[0], comps):
        t = truth_stats.reshape(-1) if c is None else truth_stats[:, :, c].reshape(-1)
        edges = np.linspace(t.min() - 0.2 * t.std(), t.max() + 0.2 * t.std(), 60)
        ax.hist(t, edges, density=True, color="k", histtype="step", lw=2, label="truth")
        for n in names:
            p = stats_pred[n]
            ok = np.all(np.isfinite(p), axis=(1, 2))
            if not ok.any():
                continue
            v = p[ok].reshape(-1) if c is None else p[ok][:, :, c].reshape(-1)
            ax.hist(np.clip(v, edges[0], edges[-1]), edges, density=True, color=col[n], histtype="step", lw=1, label=n)
        lab = "u (all points)" if c is None else (component_names[c] if component_names else f"component {c}")
        ax.set_xlabel(f"{lab} [1]")
        ax.set_ylabel("probability density [1/state]")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("invariant measure over long rollouts (diverged rollouts excluded; clipped at the edges)", fontsize=9)
    return save(fig, folder, "invariant_measure")


def make_all_figures(metrics: xr.Dataset, truth: np.ndarray, preds: Mapping[str, np.ndarray], folder: str | Path,
                     space: np.ndarray | None = None, component_names: Sequence[str] | None = None,
                     truth_stats: np.ndarray | None = None,
                     stats_pred: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Every figure of one forecast evaluation; returns the written paths."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    lead = metrics["lead_lyapunov"].values
    out = plot_vpt(metrics, folder) + plot_error_growth(metrics, folder) + plot_spectra(metrics, folder)
    if space is None:
        out += plot_rollouts(truth, preds, lead, folder, component_names)
    else:
        out += plot_xt(truth, preds, lead, np.asarray(space), folder)
    if truth_stats is not None and stats_pred:
        out += plot_invariant_measure(truth_stats, stats_pred, folder, component_names, pooled=space is not None)
    return out


__all__ = ["save", "plot_vpt", "plot_error_growth", "plot_rollouts", "plot_xt", "plot_spectra",
           "plot_invariant_measure", "make_all_figures"]

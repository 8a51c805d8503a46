"""Figures of the parametric evaluation (PNG and PDF, labelled axes with units):
``singular_values``, ``calibration``, ``fields``, ``error_parameters`` and ``error_split``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..snapshots import space_dims_of, time_dim_of
from .figures import colors, pyplot, save


def plot_singular_values(bases: Mapping[str, object], png: str | Path) -> None:
    """Singular-value decay (normalised) and cumulative energy, one line per variable."""
    plt = pyplot()
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


def plot_calibration(results: Mapping[str, Any], png: str | Path) -> None:
    """Empirical against nominal coverage on the test design: per surrogate its conformal band
    (fraction of test samples wholly inside; solid, circles) and, for Gaussian processes, the
    pointwise coverage of their own intervals (dashed, squares).  ``results``: name ->
    :class:`~surroflow.evaluation.calibration.UncertaintyResult`.  The grey band is the 95 %
    binomial range of an exactly calibrated band with this many test samples."""
    from scipy.stats import binom
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    col = colors(list(results))
    n_test = 0
    for name, res in results.items():
        lv = np.asarray(res.levels)
        cov = np.asarray(res.conformal_coverage)
        n_test = max(n_test, int(res.scores.size))
        if np.any(np.isfinite(cov)):
            ax.plot(lv, cov, "-o", color=col[name], label=f"{name}: {res.calibration_method.replace('_', '-') or 'conformal'} band "
                                                          f"(n_cal={res.n_calibration})")
        gp = np.asarray(res.gp_coverage)
        if np.any(np.isfinite(gp)):
            ax.plot(lv, gp, "--s", color=col[name], label=f"{name}: own GP intervals, pointwise")
    grid = np.linspace(0.45, 1.0, 111)
    if n_test:
        lo, hi = binom.ppf(0.025, n_test, grid) / n_test, binom.ppf(0.975, n_test, grid) / n_test
        ax.fill_between(grid, lo, hi, color="lightgrey", alpha=0.6, lw=0,
                        label=f"95% range of an exact band, {n_test} test samples")
    ax.plot([0.45, 1.0], [0.45, 1.0], ":", color="k", lw=1, label="ideal")
    ax.set(xlabel="nominal coverage (1)", ylabel="empirical coverage on the test design (1)",
           xlim=(0.45, 1.0), ylim=(0.0, 1.02), title="calibration of the uncertainty")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    save(fig, png)


def plot_fields_xt(x: np.ndarray, t: np.ndarray, truth: Sequence[np.ndarray], pred: Sequence[np.ndarray],
                   labels: Sequence[str], png: str | Path, units: str = "", x_units: str = "m",
                   t_units: str = "s", title: str = "") -> None:
    """True / predicted / error x–t diagrams, one row per sample."""
    plt = pyplot()
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
            ax.set_title(f"{name}\n{lab}" if j == 0 else name, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png)


def plot_error_parameters(design: np.ndarray, names: Sequence[str], units: Sequence[str],
                          errors: Mapping[str, np.ndarray], png: str | Path,
                          train_design: np.ndarray | None = None) -> None:
    """Relative error of each test sample over the first two parameters, one panel per surrogate."""
    from matplotlib.colors import LogNorm
    plt = pyplot()
    m = max(1, len(errors))
    fig, axes = plt.subplots(1, m, figsize=(4.2 * m, 3.6), squeeze=False)
    j = 1 if design.shape[1] > 1 else 0
    allerr = np.concatenate([np.asarray(e) for e in errors.values()]) if errors else np.ones(1)
    vmin, vmax = max(allerr.min(), 1e-8), max(allerr.max(), 1e-7)
    for ax, (name, err) in zip(axes[0], errors.items()):
        if train_design is not None:
            ax.scatter(train_design[:, 0], train_design[:, j], marker="x", s=12, c="lightgrey", label="train")
        sc = ax.scatter(design[:, 0], design[:, j], c=err, cmap="viridis", s=40, edgecolors="k",
                        norm=LogNorm(vmin=vmin, vmax=vmax), label="test")
        fig.colorbar(sc, ax=ax, label="relative L2 error (1)")
        ax.set(xlabel=f"{names[0]} ({units[0]})", ylabel=f"{names[j]} ({units[j]})", title=name)
    axes[0, 0].legend(loc="best", fontsize=7)
    fig.tight_layout()
    save(fig, png)


def plot_error_bars(summary_rows: Sequence[Mapping[str, Any]], png: str | Path) -> None:
    """Mean relative error per surrogate split into projection, selection (local bases) and
    regression parts."""
    plt = pyplot()
    names = [str(r["surrogate"]) for r in summary_rows]
    parts = [("rel_l2_mean", "total"), ("projection_error_mean", "projection"),
             ("selection_error_mean", "selection"), ("regression_error_mean", "regression")]
    fig, ax = plt.subplots(figsize=(1.9 * len(names) + 3, 3.6))
    x = np.arange(len(names))
    width = 0.2
    for j, (key, label) in enumerate(parts):
        vals = np.array([float(r[key]) for r in summary_rows])
        # a zero (the selection part of a global basis) has no bar on a log axis: mark it instead
        ax.bar(x + (j - 1.5) * width, np.where(vals > 0, vals, np.nan), width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set(ylabel="mean relative L2 error (1)",
           title="error split on the test design (selection: local bases only)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    save(fig, png)


def plot_ensemble_errors(summary_rows: Sequence[Mapping[str, Any]], png: str | Path) -> None:
    """Per surrogate: the mean relative error against single members and against the members'
    ensemble mean, with the noise floor (a perfect model of the mean against single members)
    and the sampling error of the ensemble mean as horizontal lines."""
    plt = pyplot()
    names = [str(r["surrogate"]) for r in summary_rows]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 3, 3.6))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [float(r["rel_l2_mean"]) for r in summary_rows], 0.4, label="against single members")
    ax.bar(x + 0.2, [float(r["rel_l2_ensemble_mean"]) for r in summary_rows], 0.4, label="against the ensemble mean")
    r0 = summary_rows[0]
    ax.axhline(float(r0["noise_floor"]), color="k", ls="--", lw=1, label="noise floor (members about their mean)")
    ax.axhline(float(r0["ensemble_mean_noise"]), color="grey", ls=":", lw=1,
               label=f"sampling error of a {int(r0['members'])}-member mean")
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set(ylabel="mean relative L2 error (1)", title="internal variability: which target is the error measured on?")
    ax.legend(fontsize=7)
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
    plt = pyplot()
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
            ax.set_title(f"{name}\n{lab}" if j == 0 else name, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png)


def sample_parameters(ds: xr.Dataset, i: int) -> str:
    """The parameter values of sample ``i`` as ``nu=0.05 m2 s-1, amplitude=1 m s-1`` (figure labels)."""
    units = ds["parameter_units"].values if "parameter_units" in ds.coords else [""] * ds.sizes["parameter"]
    return ", ".join(f"{p}={float(v):.3g}" + (f" {u}" if str(u) else "")
                     for p, v, u in zip(ds["parameter"].values, ds["design"].values[i], units))


def plot_fields(test: xr.Dataset, var: str, pred: np.ndarray, model_name: str, n_plot: int,
                png: str | Path, errors: np.ndarray) -> None:
    """High fidelity / surrogate / error for the best, the median and the worst test sample of
    ``errors`` (x–t diagrams on 1-D grids, the last snapshot on 2-D meshes, else line plots)."""
    td = time_dim_of(test, var)
    space = space_dims_of(test, var)
    order = np.argsort(errors)
    pick = sorted({int(order[0]), int(order[len(order) // 2]), int(order[-1])})[:max(1, n_plot)]
    truth = test[var].transpose("sample", *(([td] if td else []) + list(space))).values
    labels = [f"sample {int(test['sample'][s])}, {sample_parameters(test, s)} (err {errors[s]:.1e})" for s in pick]
    units = test[var].attrs.get("units", "")
    if td and len(space) == 1 and test[space[0]].dtype.kind == "f":
        plot_fields_xt(test[space[0]].values, test[td].values, [truth[s] for s in pick],
                       [pred[s] for s in pick], labels, png, units=units,
                       x_units=test[space[0]].attrs.get("units", ""), t_units=test[td].attrs.get("units", ""),
                       title=f"{var} ({units}), surrogate: {model_name}")
        return
    if "node" in space and "node_coordinates" in test and "connectivity" in test:
        def last(a: np.ndarray) -> np.ndarray:          # vector fields shown as their magnitude
            a = a[-1] if td else a
            return np.linalg.norm(a, axis=-1) if a.ndim == 2 else a
        extra = " magnitude" if len(space) == 2 else ""
        plot_mesh_fields(test["node_coordinates"].values, test["connectivity"].values,
                         [last(truth[s]) for s in pick], [last(pred[s]) for s in pick], labels, png,
                         units=units, coord_units=test["node_coordinates"].attrs.get("units", ""),
                         title=f"{var}{extra} ({units}) at the last {td or 'state'}, surrogate: {model_name}")
        return
    plt = pyplot()                                     # generic: final time slice, flattened space
    fig, axes = plt.subplots(len(pick), 1, figsize=(8, 2.6 * len(pick)), squeeze=False)
    for ax, s, lab in zip(axes[:, 0], pick, labels):
        ax.plot(truth[s].reshape(truth[s].shape[0], -1)[-1] if td else truth[s].ravel(), label="high fidelity")
        ax.plot(pred[s].reshape(pred[s].shape[0], -1)[-1] if td else pred[s].ravel(), "--", label="surrogate")
        ax.set(xlabel="spatial index (1)", ylabel=f"{var} ({units})", title=lab)
        ax.legend()
    save(fig, png)


__all__ = ["plot_singular_values", "plot_calibration", "plot_fields_xt", "sample_parameters", "plot_error_parameters", "plot_error_bars",
           "plot_mesh_fields", "plot_fields"]

"""Out-of-core (streaming) POD: a NetCDF snapshot variable reduced block by block under a
memory budget, so the snapshot matrix is never held in memory.

:func:`streaming_pod` reads the variable ``(sample, [time], space...)`` in blocks sized by
:func:`plan_blocks` from the budget minus what the process already holds, and runs the TSQR
reduction of :mod:`surroflow.reduction.linalg` sequentially: tall data (``n_snapshots >=
n_space``) in blocks of samples, one pass, the mean merged on the way (Chan's update); wide data
in blocks of spatial points holding every snapshot, two passes (``R`` of ``A^T``, then
``Y = A^T V_r`` and the modes from ``svd(Y)``).  Samples whose ``status`` is not ok are skipped.
:meth:`surroflow.reduction.pod.POD.fit_streaming` turns the factors into a basis.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import scipy.linalg as sla
import xarray as xr

from .. import SurroflowError
from ..snapshots import SnapshotLayout, open_lazy, snapshot_layout, space_weights
from .linalg import (
    _check_sw,
    _leaf_cols,
    _leaf_rows,
    _merge_rows,
    _modes_from_y,
    _sqrt_weights,
    _stack_r,
    choose_rank,
)

logger = logging.getLogger(__name__)

#: bytes per float64 entry
F8 = 8
#: memory held back from the budget for the interpreter's own growth, h5py buffers, xarray
BUDGET_MARGIN = 48 * 2 ** 20


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):   # pragma: no cover - not Linux
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass(frozen=True)
class BlockPlan:
    """How :func:`streaming_pod` walks the file."""

    mode: str            # "rows" (snapshot blocks, one pass) or "columns" (space blocks, two passes)
    block: int           # samples per block (rows) or first-space-dim slices per block (columns)
    n_blocks: int
    estimated_peak_bytes: int


def plan_blocks(n_rows: int, n_space: int, n_time: int, n_samples: int, space_shape: Sequence[int],
                budget_bytes: float, baseline_bytes: float = 0.0, rank: int | None = None,
                mode: str = "auto") -> BlockPlan:
    """Block sizes whose working set fits ``budget_bytes - baseline_bytes``.

    Row mode (``n_rows >= n_space``): per block the read buffer and its decoded copy (2 b n),
    the stacked factor (n + b) n and the running R (n^2); at the end svd(R) (~6 n^2).
    Column mode: pass 1 holds a block of all snapshots (2 m s), its centred transpose (s m), the
    stacked factor (m + s) m and R (m^2); pass 2 adds Y (n r); svd(Y) needs ~3 n r.
    """
    avail = (budget_bytes - baseline_bytes - BUDGET_MARGIN) / F8   # in float64 entries
    if mode == "auto":
        mode = "rows" if n_rows >= n_space else "columns"
    if mode == "rows":
        n = n_space
        fixed = max(3 * n * n, 7 * n * n)          # loop: R + stacked R part; end: svd(R) + modes
        per_row = 3 * n                             # read + decoded copy + stacked
        b_rows = (avail - 3 * n * n) / per_row
        if avail < fixed or b_rows < n_time:
            need = (fixed + per_row * n_time) * F8 + baseline_bytes + BUDGET_MARGIN
            raise SurroflowError(
                f"memory budget {budget_bytes / 2**20:.0f} MiB is too small for a streaming POD with "
                f"{n_space} spatial points (row blocks); it needs at least {need / 2**20:.0f} MiB")
        b = int(max(1, min(n_samples, b_rows // n_time)))
        peak = baseline_bytes + F8 * (3 * n * n + per_row * b * n_time)
        return BlockPlan("rows", b, math.ceil(n_samples / b), int(peak))
    m = n_rows
    r = m if rank is None else min(rank, m)
    stride = int(np.prod(space_shape[1:])) if len(space_shape) > 1 else 1
    n_first = int(space_shape[0]) if space_shape else 1
    fixed = 2 * m * m + 4 * n_space * r          # R, svd(R) | Y, svd(Y), modes
    per_col = 4 * m + r                         # read + decoded + transpose + stacked, Y block
    s_cols = (avail - fixed) / per_col
    if s_cols < stride:
        need = (fixed + per_col * stride) * F8 + baseline_bytes + BUDGET_MARGIN
        raise SurroflowError(
            f"memory budget {budget_bytes / 2**20:.0f} MiB is too small for a streaming POD of "
            f"{m} snapshots x {n_space} points with {r} modes (column blocks); it needs at least "
            f"{need / 2**20:.0f} MiB: lower reduction.rank or raise the budget")
    b = int(max(1, min(n_first, s_cols // stride)))
    peak = baseline_bytes + F8 * (fixed + per_col * b * stride)
    return BlockPlan("columns", b, math.ceil(n_first / b), int(peak))


def streaming_pod(path: str | os.PathLike[str], variable: str, weights: np.ndarray | str | None = None,
                  rank: int | None = None, memory_budget_bytes: float = 2 * 2 ** 30, *,
                  energy: float | None = None, center: bool = True, mode: str = "auto",
                  block: int | None = None, return_plan: bool = False) -> Any:
    """Out-of-core POD of ``variable`` in a NetCDF file, within a memory budget.

    The variable ``(sample, [time], space...)`` is read in blocks sized so that the working set
    stays under ``memory_budget_bytes`` minus what the process already holds.  Tall data
    (``n_snapshots >= n_space``): blocks of samples, one pass, TSQR with the mean merged on the
    way.  Wide data: blocks of spatial points holding every snapshot; pass 1 gives the mean and
    ``R`` of ``A^T``, pass 2 forms ``Y = A^T V_r`` (``r`` from ``rank``/``energy``, known after
    pass 1) and the modes from ``svd(Y)``.  Samples whose ``status`` is not ok are skipped.

    ``weights``: an array, a kind (``uniform``/``quadrature``/``mass``) or ``None`` (uniform).
    ``mode`` (``auto``/``rows``/``columns``) and ``block`` (samples or first-space-dimension
    slices per block) override the plan, e.g. to test many small blocks.
    Returns ``(mean, s, vt)`` like :func:`surroflow.reduction.linalg.svd` (``s`` complete), and
    the :class:`BlockPlan` as a fourth item when ``return_plan``.
    """
    baseline = rss_bytes()
    ds = open_lazy(path)
    try:
        lay = snapshot_layout(ds, variable)
        if isinstance(weights, str):
            w = space_weights(ds, variable, weights)
        else:
            w = np.ones(lay.n_space) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        sw = _check_sw(_sqrt_weights(w), lay.n_space)
        plan = plan_blocks(lay.n_rows, lay.n_space, lay.n_time, lay.samples.size, lay.space_shape,
                           memory_budget_bytes, baseline, rank, mode)
        if block is not None:
            total = lay.samples.size if plan.mode == "rows" else (lay.space_shape or (1,))[0]
            plan = BlockPlan(plan.mode, int(block), math.ceil(total / int(block)), plan.estimated_peak_bytes)
        logger.info("streaming POD of %s: %d snapshots x %d points, %s mode, %d blocks of %d %s, "
                    "estimated peak %.0f MiB of %.0f MiB", variable, lay.n_rows, lay.n_space,
                    plan.mode, plan.n_blocks, plan.block, "samples" if plan.mode == "rows" else "slices",
                    plan.estimated_peak_bytes / 2 ** 20, memory_budget_bytes / 2 ** 20)
        var = ds[variable].transpose(*lay.order).variable
        if plan.mode == "rows":
            out = _stream_rows(var, lay, sw, center, plan)
        else:
            out = _stream_cols(var, lay, sw, center, plan, rank, energy)
    finally:
        ds.close()
    return (*out, plan) if return_plan else out


def _read(var: xr.Variable, key: tuple[Any, ...]) -> np.ndarray:
    a = var[key].values
    return a if a.dtype == np.float64 else a.astype(np.float64)


def _stream_rows(var: xr.Variable, lay: SnapshotLayout, sw: np.ndarray, center: bool,
                 plan: BlockPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    node: tuple[int, np.ndarray, np.ndarray] | None = None
    samples = lay.samples
    start = 0
    all_samples = var.shape[0]
    while start < samples.size:
        # read a contiguous range of the file covering the next `block` usable samples
        chunk = samples[start:start + plan.block]
        lo, hi = int(chunk[0]), int(chunk[-1]) + 1
        raw = _read(var, (slice(lo, min(hi, all_samples)),))
        if hi - lo != chunk.size:
            raw = raw[chunk - lo]
        block = raw.reshape(-1, lay.n_space)
        del raw
        leaf = _leaf_rows(block, sw, center)
        del block
        node = leaf if node is None else _merge_rows([node, leaf], sw, center)
        start += plan.block
    assert node is not None
    _, mean, R = node
    _, s, vt = sla.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    full = min(lay.n_rows, lay.n_space)
    if s.size < full:
        s = np.concatenate([s, np.zeros(full - s.size)])
    return mean, s, vt


def _col_blocks(lay: SnapshotLayout, plan: BlockPlan) -> Iterator[tuple[slice, slice]]:
    stride = int(np.prod(lay.space_shape[1:])) if len(lay.space_shape) > 1 else 1
    n_first = lay.space_shape[0] if lay.space_shape else 1
    for a in range(0, n_first, plan.block):
        b = min(a + plan.block, n_first)
        yield slice(a, b), slice(a * stride, b * stride)


def _read_cols(var: xr.Variable, lay: SnapshotLayout, first: slice) -> np.ndarray:
    lead = (slice(None),) * (2 if lay.time_dim else 1)
    raw = _read(var, (*lead, first))
    if lay.samples.size != var.shape[0]:
        raw = raw[lay.samples]
    return raw.reshape(lay.n_rows, -1)


def _stream_cols(var: xr.Variable, lay: SnapshotLayout, sw: np.ndarray, center: bool,
                 plan: BlockPlan, rank: int | None, energy: float | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = np.zeros(lay.n_space)
    R: np.ndarray | None = None
    for first, flat in _col_blocks(lay, plan):
        block = _read_cols(var, lay, first)
        mu, r_block = _leaf_cols(block, sw[flat], center)
        del block
        mean[flat] = mu
        R = r_block if R is None else _stack_r([R, r_block])
    assert R is not None
    _, s, vrt = sla.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    r = choose_rank(s, energy, rank) if (rank is not None or energy is not None) else s.size
    V = np.ascontiguousarray(vrt[:r].T)
    Y = np.empty((lay.n_space, r), order="F")
    for first, flat in _col_blocks(lay, plan):
        block = _read_cols(var, lay, first)
        block -= mean[flat]
        block *= sw[flat]
        Y[flat] = block.T @ V
        del block
    vt = _modes_from_y(Y)
    full = min(lay.n_rows, lay.n_space)
    if s.size < full:
        s = np.concatenate([s, np.zeros(full - s.size)])
    return mean, s, vt

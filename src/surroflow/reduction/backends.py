"""POD backends: exact SVD, TSQR and randomized SVD on numpy or dask arrays, and a streaming
(out-of-core) POD of snapshot files larger than memory.

Conventions
-----------
``X`` is ``(n_snapshots, n_space)``: snapshots are rows.  ``sw = sqrt(weights)`` holds one
positive entry per spatial point (quadrature, cell-volume or lumped-mass weights).  Every
backend factors the centred, weighted matrix

    A = (X - 1 mean^T) diag(sw) = U diag(s) vt

and returns ``(mean, s, vt)`` as numpy arrays; :class:`~surroflow.reduction.pod.POD` turns the
rows of ``vt`` into modes orthonormal in the weighted inner product (``vt / sw``).

Methods
-------
``exact``
    LAPACK ``gesdd`` on the centred, weighted copy (small sets); a tall matrix is first reduced
    to its ``R`` factor, so the left singular vectors are never formed.
``tsqr``
    Tall-skinny QR as a dask task tree: every row block (or, for short-wide matrices, every
    block of spatial points of ``A^T``) is reduced to its ``R`` factor, ``R`` factors are stacked
    and reduced again up the tree; the mean is merged on the way (Chan's pairwise update adds
    one row ``sqrt(n_a n_b / (n_a + n_b)) (m_a - m_b)`` per merge), so centring costs no extra
    pass.  Only ``R`` is formed (no ``Q`` blocks are kept: ``dask.array.linalg.tsqr`` forms and
    keeps them, which costs 1.6x the time here and memory of the size of the data).  For a tall
    ``A`` the right singular vectors are those of ``R``; for a wide ``A`` a second pass forms
    ``Y = A^T V_r`` and takes ``svd(Y)``, which is backward stable (unlike ``A^T V S^-1`` or the
    method of snapshots, which square the condition number).
``randomized``
    Halko-Martinsson-Tropp range finder with QR-normalised power iterations, seeded, with the
    centring and weighting applied implicitly (no copy of ``X``); the range is sampled in the
    smaller dimension so every QR is small.  For dask inputs it uses
    :func:`dask.array.linalg.svd_compressed` on the lazily centred array.

Streaming
---------
:func:`streaming_pod` reads a NetCDF variable block by block with a block size derived from a
memory budget and runs the same TSQR reduction sequentially (one pass for tall data; two for
wide data), so the snapshot matrix is never held in memory.  :func:`pod_file` is the
file-level entry point of the reduce stage: it chooses in-memory or streaming by the budget and
writes the basis with :meth:`POD.to_dataset`.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import scipy.linalg as sla
import xarray as xr

from .. import SurroflowError
from ..snapshots import (DEFAULT_CHUNK_ROWS, SnapshotLayout, open_lazy, resolve_weights, snapshot_dask,
                         snapshot_layout, snapshot_matrix, space_weights)
from .pod import METHODS, POD, sign_fix

logger = logging.getLogger("surroflow.reduce")

#: bytes per float64 entry
_F8 = 8
#: memory held back from the budget for the interpreter's own growth, h5py buffers, xarray
_BUDGET_MARGIN = 48 * 2 ** 20
#: default number of R factors merged per tree node
FAN_IN = 4
#: default block height (rows) of the in-memory TSQR


# =========================================================================== helpers
def _check_sw(sw: Any, n_space: int) -> np.ndarray:
    sw = np.asarray(sw, dtype=float).reshape(-1)
    if sw.shape != (n_space,) or np.any(sw <= 0) or not np.all(np.isfinite(sw)):
        raise SurroflowError(f"POD: sqrt-weights must be positive and finite, one per spatial point "
                             f"({n_space}); got shape {sw.shape}")
    return sw


def _sqrt_weights(w: np.ndarray) -> np.ndarray:
    """``sqrt(w)``; non-positive weights become NaN so that :func:`_check_sw` rejects them."""
    w = np.asarray(w, dtype=float)
    return np.sqrt(np.where(w > 0, w, np.nan))


def _assert_finite(X: np.ndarray) -> None:
    """Reject NaN/Inf; the sum is a fast first test (as scikit-learn does), the full check
    runs only when it fails."""
    with np.errstate(over="ignore", invalid="ignore"):
        ok = bool(np.isfinite(np.sum(X)))
    if not ok and not np.all(np.isfinite(X)):
        raise SurroflowError("POD input has non-finite snapshots; flagged samples must be excluded")


def _is_dask(X: Any) -> bool:
    return hasattr(X, "dask") and hasattr(X, "chunks")


def rank_for(singular_values: np.ndarray, energy: float | None, rank: int | None,
             total_energy: float | None = None) -> int:
    """Number of modes: ``rank`` if given, else the smallest rank whose captured energy fraction
    (relative to ``total_energy``, default the sum of ``s**2``) reaches ``energy``."""
    s2 = np.asarray(singular_values, dtype=float) ** 2
    if rank is not None:
        return int(max(1, min(int(rank), s2.size)))
    if energy is None:
        return int(s2.size)
    total = float(s2.sum()) if total_energy is None else float(total_energy)
    cum = np.cumsum(s2) / max(total, np.finfo(float).tiny)
    return int(min(np.searchsorted(cum, energy - 1e-15) + 1, s2.size))


def _qr_r(a: np.ndarray) -> np.ndarray:
    """Upper-triangular (trapezoidal) ``R`` of ``a``; at most ``min(a.shape)`` rows.

    LAPACK ``geqrf`` in place on a Fortran-ordered ``a`` (``scipy.linalg.qr(mode="r")`` would
    return a full ``m x n`` triangle, a second copy of the block)."""
    a = np.asfortranarray(a, dtype=float)
    geqrf, geqrf_lwork = sla.get_lapack_funcs(("geqrf", "geqrf_lwork"), (a,))
    work, info = geqrf_lwork(m=a.shape[0], n=a.shape[1])
    qr, _, _, info = geqrf(a, lwork=max(1, int(work)), overwrite_a=True)
    if info != 0:
        raise SurroflowError(f"QR factorisation failed (LAPACK geqrf info={info})")
    k = min(a.shape)
    return np.triu(qr[:k])


@contextlib.contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS threads (dask threads times BLAS threads oversubscribe the cores)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def _n_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _distributed_client_active() -> bool:
    try:
        from distributed import default_client
        default_client()
        return True
    except (ImportError, ValueError):
        return False


def _compute(*objs: Any, numpy_input: bool, n_workers: int | None) -> tuple[Any, ...]:
    """Compute dask objects: a numpy input stays on a local thread pool with 1-thread BLAS."""
    import dask
    if numpy_input or not _distributed_client_active():
        n = n_workers or _n_cores()
        if n == 1:
            return dask.compute(*objs, scheduler="synchronous")
        with _blas_threads(1):
            return dask.compute(*objs, scheduler="threads", num_workers=n)
    return dask.compute(*objs)


# =========================================================================== TSQR tree
# A node of the reduction is (count, mean, R): the number of rows below it, their mean and the
# R factor of those rows centred at that mean (weighted).
def _leaf_rows(block: np.ndarray, sw: np.ndarray, center: bool) -> tuple[int, np.ndarray, np.ndarray]:
    block = np.asarray(block, dtype=float)
    if not np.all(np.isfinite(block)):
        raise SurroflowError("POD input has non-finite snapshots; flagged samples must be excluded")
    n = block.shape[0]
    mean = block.mean(axis=0) if center else np.zeros(block.shape[1])
    a = np.empty(block.shape, order="F")
    np.subtract(block, mean, out=a)
    a *= sw
    return n, mean, _qr_r(a)


def _merge_rows(nodes: Sequence[tuple[int, np.ndarray, np.ndarray]], sw: np.ndarray,
                center: bool) -> tuple[int, np.ndarray, np.ndarray]:
    counts = np.array([c for c, _, _ in nodes], dtype=float)
    total = float(counts.sum())
    mean = sum(c * m for c, m, _ in nodes) / total if center else nodes[0][1]
    parts = [r for _, _, r in nodes]
    if center:
        # scatter about the joint mean = sum of scatters + sum_i n_i (m_i - m)(m_i - m)^T
        parts += [(math.sqrt(c) * (m - mean) * sw)[None, :] for c, m, _ in nodes]
    n_cols = parts[0].shape[1]
    a = np.empty((sum(p.shape[0] for p in parts), n_cols), order="F")
    i = 0
    for p in parts:
        a[i:i + p.shape[0]] = p
        i += p.shape[0]
    return int(total), mean, _qr_r(a)


def _leaf_cols(block: np.ndarray, sw: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """A block of spatial points (all snapshots): its mean and the R of ``A^T`` restricted to it."""
    block = np.asarray(block, dtype=float)
    if not np.all(np.isfinite(block)):
        raise SurroflowError("POD input has non-finite snapshots; flagged samples must be excluded")
    mean = block.mean(axis=0) if center else np.zeros(block.shape[1])
    at = np.empty(block.shape[::-1], order="F")
    np.subtract(block, mean, out=at.T)
    at *= sw[:, None]
    return mean, _qr_r(at)


def _stack_r(rs: Sequence[np.ndarray]) -> np.ndarray:
    a = np.empty((sum(r.shape[0] for r in rs), rs[0].shape[1]), order="F")
    i = 0
    for r in rs:
        a[i:i + r.shape[0]] = r
        i += r.shape[0]
    return _qr_r(a)


def _tree(nodes: list[Any], merge: Any, fan_in: int) -> Any:
    import dask
    while len(nodes) > 1:
        nodes = [dask.delayed(merge)(nodes[i:i + fan_in]) for i in range(0, len(nodes), fan_in)]
    return nodes[0]


def _modes_from_y(Y: np.ndarray) -> np.ndarray:
    """Rows of ``vt``: the left singular vectors of ``Y = A^T V_r`` (``= U_r S_r`` exactly, so
    they come in the order of ``s``; signs are fixed later by :func:`sign_fix`).  ``Y`` is
    overwritten; pass it Fortran-ordered to avoid a copy."""
    u, _, _ = sla.svd(Y, full_matrices=False, overwrite_a=True, check_finite=False, lapack_driver="gesdd")
    return u.T


def _tsqr(X: Any, sw: np.ndarray, center: bool, rank: int | None, energy: float | None,
          chunk_rows: int | None, n_workers: int | None,
          fan_in: int = FAN_IN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import dask

    numpy_input = not _is_dask(X)
    m, n = X.shape
    if m >= n:  # tall: row blocks, R is n x n, vt from svd(R)
        rows = max(int(chunk_rows or DEFAULT_CHUNK_ROWS), min(2 * n, m), 1)
        if numpy_input:
            # views of X as task arguments: dask.array.from_array would copy the whole input
            X = np.asarray(X)
            blocks = [X[i:i + rows] for i in range(0, m, rows)]
        else:
            blocks = list((X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X).to_delayed().ravel())
        leaves = [dask.delayed(_leaf_rows)(b, sw, center) for b in blocks]
        root = _tree(leaves, lambda nodes: _merge_rows(nodes, sw, center), fan_in)
        (count, mean, R), = _compute(root, numpy_input=numpy_input, n_workers=n_workers)
        _, s, vt = sla.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        r = rank_for(s, energy, rank) if (rank is not None or energy is not None) else s.size
        if s.size < n:
            s = np.concatenate([s, np.zeros(min(m, n) - s.size)])
        return mean, s, vt[:r]
    # wide: blocks of spatial points of A^T (all snapshots), R is m x m
    cols = max(int(chunk_rows or DEFAULT_CHUNK_ROWS), min(2 * m, n), 1)
    cols = max(cols, int(min(n, 2 ** 23 // max(m, 1))))   # blocks of ~64 MiB (or 2 m columns)
    if numpy_input:
        X = np.asarray(X)
        offsets = np.array([*range(0, n, cols), n])
        blocks = [X[:, offsets[i]:offsets[i + 1]] for i in range(offsets.size - 1)]
    else:
        Xd = X.rechunk({0: -1, 1: cols})
        blocks = list(Xd.to_delayed().ravel())
        offsets = np.concatenate([[0], np.cumsum(Xd.chunks[1])])
    sws = [sw[offsets[i]:offsets[i + 1]] for i in range(len(blocks))]
    leaves = [dask.delayed(_leaf_cols)(b, w, center) for b, w in zip(blocks, sws)]
    means = [lf[0] for lf in leaves]
    root = _tree([lf[1] for lf in leaves], _stack_r, fan_in)
    R, means = _compute(root, means, numpy_input=numpy_input, n_workers=n_workers)
    mean = np.concatenate(means)
    _, s, vrt = sla.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    r = rank_for(s, energy, rank) if (rank is not None or energy is not None) else s.size
    V = np.ascontiguousarray(vrt[:r].T)

    def y_block(block: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        b = np.subtract(block, mu, dtype=float)
        b *= w
        return b.T @ V

    ys = [dask.delayed(y_block)(b, mu, w) for b, mu, w in zip(blocks, means, sws)]
    ys = list(_compute(*ys, numpy_input=numpy_input, n_workers=n_workers))
    Y = np.empty((n, r), order="F")
    for i in range(len(ys)):
        Y[offsets[i]:offsets[i + 1]] = ys[i]
        ys[i] = None
    vt = _modes_from_y(Y)
    return mean, s, vt


# =========================================================================== randomized
class _CenteredOperator:
    """``A = (X - 1 mean^T) diag(sw)`` applied without forming it."""

    def __init__(self, X: np.ndarray, mean: np.ndarray, sw: np.ndarray) -> None:
        self.X, self.mean, self.sw = X, mean, sw
        self.shape = X.shape
        self.centred = bool(np.any(mean != 0))
        self.weighted = bool(np.any(sw != 1))

    # Both products return Fortran-ordered (tall) arrays, ready for LAPACK without a copy.
    def matmat(self, Z: np.ndarray) -> np.ndarray:          # A @ Z, Z: (n, l) -> (m, l)
        Zw = Z * self.sw[:, None] if self.weighted else Z
        out = (Zw.T @ self.X.T).T
        if self.centred:
            out -= (self.mean @ Zw)[None, :]
        return out

    def rmatmat(self, Y: np.ndarray) -> np.ndarray:         # A^T @ Y, Y: (m, l) -> (n, l)
        out = (Y.T @ self.X).T
        if self.centred:
            out -= np.outer(self.mean, Y.sum(axis=0))
        if self.weighted:
            out *= self.sw[:, None]
        return out

    def frobenius2(self, block_rows: int = 4096) -> float:
        tot = 0.0
        for i in range(0, self.shape[0], block_rows):
            b = (self.X[i:i + block_rows] - self.mean) * self.sw
            tot += float(np.einsum("ij,ij->", b, b))
        return tot


_CONTROLLER: Any = None


def _single_blas_thread() -> Any:
    """Context: one BLAS thread.  Small factorisations (a few hundred columns) spend more time
    in thread synchronisation than in arithmetic (12 ms vs 1.3 ms for a 500 x 110 QR here)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _qr_q(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of a small (``min(m, n) x l``) matrix."""
    with _single_blas_thread():
        return sla.qr(a, mode="economic", overwrite_a=True, check_finite=False)[0]


def randomized_svd_op(op: _CenteredOperator, k: int, oversampling: int, power_iterations: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``k`` ``(s, vt)`` of the operator by a randomized range finder with QR-normalised
    power (subspace) iterations (Halko, Martinsson & Tropp 2011, Alg. 4.4).

    The range is sampled in the *smaller* dimension ``d = min(m, n)``: every QR is of a
    ``d x l`` matrix (``l = k + oversampling``), cheap next to the products with ``A``; the
    basis is re-orthonormalised after every application of ``A A^T`` (or ``A^T A``), which
    keeps directions down to ``sigma_l / sigma_1 ~ 1e-8`` resolved.  The products with ``A``
    (``2 q + 2`` of them) are the same as scikit-learn's.
    """
    m, n = op.shape
    l = int(min(k + oversampling, m, n))
    if m <= n:           # range of A: Q is m x l (snapshot space), B = Q^T A gives vt directly
        Q = _qr_q(op.matmat(rng.standard_normal((n, l))))
        for _ in range(power_iterations):
            Q = _qr_q(op.matmat(op.rmatmat(Q)))
        # B = Q^T A (l x n); its SVD via the tall B^T = A^T Q (LAPACK's tall path is QR-based
        # and several times faster than its wide, LQ-based path)
        u, s, _ = sla.svd(op.rmatmat(Q), full_matrices=False, overwrite_a=True, check_finite=False,
                          lapack_driver="gesdd")
        return s[:k], u[:, :k].T
    # range of A^T: Q is n x l (spatial directions)
    Q = _qr_q(op.rmatmat(rng.standard_normal((m, l))))
    for _ in range(power_iterations):
        Q = _qr_q(op.rmatmat(op.matmat(Q)))
    B = op.matmat(Q)                                         # A Q = (Q^T A^T)^T  (m x l)
    _, s, wt = sla.svd(B, full_matrices=False, overwrite_a=True, check_finite=False,
                       lapack_driver="gesdd")
    vt = (Q @ wt.T).T                                        # A ~ U s (Q W)^T
    return s[:k], vt[:k]


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2 ** 31 - 1))
    return np.random.default_rng(random_state)


def _randomized(X: Any, sw: np.ndarray, center: bool, rank: int | None, energy: float | None,
                oversampling: int, power_iterations: int, random_state: Any,
                n_workers: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, n = X.shape
    full = min(m, n)
    if _is_dask(X):
        import dask.array as da
        mean = (X.mean(axis=0).compute() if center else np.zeros(n))
        A = (X - mean) * sw
        total = float((A ** 2).sum().compute()) if rank is None else None
        seed = int(_rng(random_state).integers(2 ** 31 - 1))
        if len(A.chunks[1]) > 1:
            A = A.rechunk({1: -1})

        def run(k: int) -> tuple[np.ndarray, np.ndarray]:
            _, s, vt = da.linalg.svd_compressed(A, k, n_power_iter=power_iterations,
                                                n_oversamples=oversampling, seed=seed,
                                                compute=True, coerce_signs=False)
            return da.compute(s, vt)
    else:
        X = np.asarray(X)
        if X.dtype != np.float64:
            X = X.astype(np.float64)
        _assert_finite(X)
        mean = X.mean(axis=0) if center else np.zeros(n)
        op = _CenteredOperator(X, mean, sw)
        total = op.frobenius2() if rank is None else None
        rng = _rng(random_state)

        def run(k: int) -> tuple[np.ndarray, np.ndarray]:
            return randomized_svd_op(op, k, oversampling, power_iterations, rng)

    if rank is not None:
        s, vt = run(int(min(rank, full)))
        return mean, np.asarray(s), np.asarray(vt)
    # no rank given: double the rank until the captured energy reaches `energy`
    target = 0.9999 if energy is None else float(energy)
    k = int(min(32, full))
    while True:
        s, vt = run(k)
        s = np.asarray(s)
        captured = float(np.sum(s ** 2)) / max(total or 0.0, np.finfo(float).tiny)
        if captured >= target or k >= full:
            return mean, s, np.asarray(vt)
        if 2 * k >= full // 2:     # the randomized method no longer pays: use TSQR
            return _tsqr(X, sw, center, None, energy, None, n_workers)
        k *= 2


# =========================================================================== public: svd
def svd(X: Any, sw: Any, method: str = "tsqr", center: bool = True, rank: int | None = None,
        oversampling: int = 10, power_iterations: int = 2, random_state: Any = 0,
        energy: float | None = None, chunk_rows: int | None = None,
        n_workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, s, vt)`` of ``A = (X - 1 mean^T) diag(sw)``.

    Parameters
    ----------
    X : numpy or dask array ``(n_snapshots, n_space)``.
    sw : square roots of the inner-product weights, ``(n_space,)``.
    method : ``exact``, ``tsqr`` or ``randomized``.
    center : subtract the snapshot mean (``mean`` is zeros otherwise).
    rank : modes to compute; ``None`` = all (exact, tsqr) or enough for ``energy`` (randomized,
        by doubling; ``energy`` defaults to 0.9999 there).
    oversampling, power_iterations, random_state : randomized settings (seeded).
    energy : optional; lets ``tsqr`` on wide matrices and ``randomized`` stop at the rank that
        reaches this energy fraction instead of computing every mode.
    chunk_rows : block height of the TSQR tree (default 4096, at least twice the width).
    n_workers : threads of the local dask scheduler (default: all cores; BLAS is single-threaded
        inside the tasks).  Ignored when a distributed client is active and ``X`` is a dask array.

    Returns
    -------
    mean ``(n_space,)``, s ``(k,)`` descending, vt ``(r, n_space)`` with orthonormal rows.
    ``s`` holds every singular value the method computed (all ``min(m, n)`` for exact and
    tsqr), ``vt`` at least the rows selected by ``rank``/``energy``.
    """
    if method not in METHODS:
        raise SurroflowError(f"reduction.method={method!r} is not allowed; allowed: {list(METHODS)}")
    if len(X.shape) != 2:
        raise SurroflowError(f"POD input must be 2-D (n_snapshots, n_space), got shape {X.shape}")
    m, n = X.shape
    if m < 1 or n < 1:
        raise SurroflowError(f"POD input is empty: shape {X.shape}")
    sw = _check_sw(sw, n)
    if rank is not None and rank < 1:
        raise SurroflowError(f"reduction.rank must be >= 1, got {rank}")
    if method == "exact":
        Xn = np.asarray(X.compute() if _is_dask(X) else X, dtype=float)
        if not np.all(np.isfinite(Xn)):
            raise SurroflowError("POD input has non-finite snapshots; flagged samples must be excluded")
        mean = Xn.mean(axis=0) if center else np.zeros(n)
        if m > n:   # tall: R first, the left singular vectors are never needed
            A = np.empty(Xn.shape, order="F")
            np.subtract(Xn, mean, out=A)
            A *= sw
            _, s, vt = sla.svd(_qr_r(A), full_matrices=False, overwrite_a=True, check_finite=False,
                               lapack_driver="gesdd")
            return mean, s, vt
        # wide: factor the tall A^T (a Fortran-ordered view of the C-ordered copy), in place:
        # LAPACK's tall (QR-based) path is ~2x faster than its wide (LQ-based) one
        A = np.subtract(Xn, mean)
        A *= sw
        u, s, _ = sla.svd(A.T, full_matrices=False, overwrite_a=True, check_finite=False,
                          lapack_driver="gesdd")
        return mean, s, u.T
    if method == "tsqr":
        return _tsqr(X, sw, center, rank, energy, chunk_rows, n_workers)
    return _randomized(X, sw, center, rank, energy, int(oversampling), int(power_iterations),
                       random_state, n_workers)


# =========================================================================== POD assembly
def pod_from_factors(mean: np.ndarray, s: np.ndarray, vt: np.ndarray, weights: np.ndarray, *,
                     method: str, rank: int | None, energy: float | None,
                     total_energy: float | None = None, center: bool = True,
                     oversampling: int = 10, power_iterations: int = 2,
                     random_state: Any = 0) -> POD:
    """A fitted :class:`POD` from backend factors, with the energy fraction taken relative to
    ``total_energy`` (``||A||_F^2``) when the backend computed only part of the spectrum."""
    w = np.asarray(weights, dtype=float).reshape(-1)
    sw = np.sqrt(w)
    s = np.asarray(s, dtype=float)
    total = float(np.sum(s ** 2)) if total_energy is None else float(total_energy)
    r = rank_for(s, energy, rank, total)
    r = min(r, vt.shape[0])
    pod = POD(method=method, rank=rank, energy=energy, center=center, oversampling=oversampling,
              power_iterations=power_iterations,
              random_state=random_state if isinstance(random_state, (int, type(None))) else None)
    pod.singular_values_ = s
    pod.n_modes_ = int(r)
    pod.modes_ = sign_fix(np.asarray(vt[:r]) / sw)
    pod.mean_ = np.asarray(mean, dtype=float)
    pod.weights_ = w
    pod.energy_ = np.cumsum(s ** 2) / max(total, np.finfo(float).tiny)
    return pod


def fit_pod(X: Any, weights: np.ndarray | None = None, *, method: str = "exact",
            rank: int | None = None, energy: float | None = 0.9999, center: bool = True,
            oversampling: int = 10, power_iterations: int = 2, random_state: Any = 0,
            chunk_rows: int | None = None, n_workers: int | None = None) -> POD:
    """Fit a POD with any backend; the energy fraction is relative to the full ``||A||_F^2``
    even when the randomized backend computes only the leading part of the spectrum."""
    n = X.shape[1]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    sw = _check_sw(_sqrt_weights(w), n)
    mean, s, vt = svd(X, sw, method=method, center=center, rank=rank, oversampling=oversampling,
                      power_iterations=power_iterations, random_state=random_state,
                      energy=energy, chunk_rows=chunk_rows, n_workers=n_workers)
    total = None
    if method == "randomized":
        if _is_dask(X):
            total = float((((X - mean) * sw) ** 2).sum().compute())
        else:
            total = _CenteredOperator(np.asarray(X, dtype=float), mean, sw).frobenius2()
    return pod_from_factors(mean, s, vt, w, method=method, rank=rank, energy=energy,
                            total_energy=total, center=center, oversampling=oversampling,
                            power_iterations=power_iterations, random_state=random_state)


# =========================================================================== streaming
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
    avail = (budget_bytes - baseline_bytes - _BUDGET_MARGIN) / _F8   # in float64 entries
    if mode == "auto":
        mode = "rows" if n_rows >= n_space else "columns"
    if mode == "rows":
        n = n_space
        fixed = max(3 * n * n, 7 * n * n)          # loop: R + stacked R part; end: svd(R) + modes
        per_row = 3 * n                             # read + decoded copy + stacked
        b_rows = (avail - 3 * n * n) / per_row
        if avail < fixed or b_rows < n_time:
            need = (fixed + per_row * n_time) * _F8 + baseline_bytes + _BUDGET_MARGIN
            raise SurroflowError(
                f"memory budget {budget_bytes / 2**20:.0f} MiB is too small for a streaming POD with "
                f"{n_space} spatial points (row blocks); it needs at least {need / 2**20:.0f} MiB")
        b = int(max(1, min(n_samples, b_rows // n_time)))
        peak = baseline_bytes + _F8 * (3 * n * n + per_row * b * n_time)
        return BlockPlan("rows", b, math.ceil(n_samples / b), int(peak))
    m = n_rows
    r = m if rank is None else min(rank, m)
    stride = int(np.prod(space_shape[1:])) if len(space_shape) > 1 else 1
    n_first = int(space_shape[0]) if space_shape else 1
    fixed = 2 * m * m + 4 * n_space * r          # R, svd(R) | Y, svd(Y), modes
    per_col = 4 * m + r                         # read + decoded + transpose + stacked, Y block
    s_cols = (avail - fixed) / per_col
    if s_cols < stride:
        need = (fixed + per_col * stride) * _F8 + baseline_bytes + _BUDGET_MARGIN
        raise SurroflowError(
            f"memory budget {budget_bytes / 2**20:.0f} MiB is too small for a streaming POD of "
            f"{m} snapshots x {n_space} points with {r} modes (column blocks); it needs at least "
            f"{need / 2**20:.0f} MiB: lower reduction.rank or raise the budget")
    b = int(max(1, min(n_first, s_cols // stride)))
    peak = baseline_bytes + _F8 * (fixed + per_col * b * stride)
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
    Returns ``(mean, s, vt)`` like :func:`svd` (``s`` complete), and the :class:`BlockPlan`
    as a fourth item when ``return_plan``.
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
        logger.info("streaming POD of %s: %d snapshots x %d points, %s mode, %d blocks, "
                    "estimated peak %.0f MiB of %.0f MiB", variable, lay.n_rows, lay.n_space,
                    plan.mode, plan.n_blocks, plan.estimated_peak_bytes / 2 ** 20,
                    memory_budget_bytes / 2 ** 20)
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
    r = rank_for(s, energy, rank) if (rank is not None or energy is not None) else s.size
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


# =========================================================================== file level
def pod_file(snapshots_nc: str | os.PathLike[str], variable: str | None, out_nc: str | os.PathLike[str],
             method: str = "exact", rank: int | None = None, energy: float | None = 0.9999,
             weights: str | np.ndarray = "quadrature", memory_budget_mb: float | None = None, *,
             oversampling: int = 10, power_iterations: int = 2, seed: int = 0,
             chunk_snapshots: int = DEFAULT_CHUNK_ROWS, n_workers: int | None = None, lazy: bool = False,
             attrs: Mapping[str, Any] | None = None, **_ignored: Any) -> Path:
    """Fit the POD basis of ``variable`` in ``snapshots_nc`` and write it to ``out_nc``.

    In memory when the snapshot matrix fits the budget with room for the factorisation
    (about 3x its size for ``exact``, 2x for ``tsqr``/``randomized``); otherwise
    :func:`streaming_pod` (TSQR, blocks sized to the budget).  ``memory_budget_mb=None`` means
    no budget (in memory).  ``lazy=True`` (``tsqr``/``randomized``) reads the file as a chunked
    dask array (:func:`snapshot_dask`) instead of loading it, so a distributed client's
    workers (``surroflow.distributed.dask_client``) share the reading and the factorisation.  Extra keys of the reduction config section (``variables``,
    ``clustering``...) are accepted and ignored, so a rule can pass the whole section.

    The basis holds ``modes(mode, space...)``, ``singular_values``, ``energy`` (relative to the
    full ``||A||_F^2``), ``mean``, ``weights`` and attributes ``fit_mode`` (in_memory/streaming),
    ``memory_budget_mb``, ``fit_seconds``, ``n_train_snapshots``.  ``weights`` is a kind
    (``uniform``, ``quadrature``, ``mass``) or an array (e.g. a simulator's mesh weights).
    """
    from ..io import write_dataset
    t0 = time.perf_counter()
    if method not in METHODS:
        raise SurroflowError(f"reduction.method={method!r} is not allowed; allowed: {list(METHODS)}")
    baseline = rss_bytes()
    ds = open_lazy(snapshots_nc)
    try:
        if variable is None:
            cands = [str(v) for v in ds.data_vars if "sample" in ds[v].dims and v not in ("design", "status", "wall_time")
                     and ds[v].dtype.kind == "f" and ds[v].ndim >= 2]
            if len(cands) != 1:
                raise SurroflowError(f"{snapshots_nc}: name the variable to reduce; candidates: {cands}")
            variable = cands[0]
        lay = snapshot_layout(ds, variable)
        w = resolve_weights(ds, variable, weights)
        data_bytes = lay.n_rows * lay.n_space * _F8
        factor = 3.0 if method == "exact" else 2.0
        budget = None if memory_budget_mb is None else float(memory_budget_mb) * 2 ** 20
        in_memory = budget is None or baseline + factor * data_bytes + _BUDGET_MARGIN <= budget
        coords = {d: ds[d].load() for d in lay.space_dims if d in ds.coords}
        units = ds[variable].attrs.get("units", "1")
        if in_memory:
            X = (snapshot_dask(snapshots_nc, variable, chunk_snapshots) if lazy and method != "exact"
                 else snapshot_matrix(ds, variable))
            pod = fit_pod(X, w, method=method, rank=rank, energy=energy, oversampling=oversampling,
                          power_iterations=power_iterations, random_state=seed,
                          chunk_rows=chunk_snapshots, n_workers=n_workers)
            del X
            fit_mode = "lazy_dask" if lazy and method != "exact" else "in_memory"
        else:
            ds.close()
            mean, s, vt = streaming_pod(snapshots_nc, variable, w, rank, budget, energy=energy)
            pod = pod_from_factors(mean, s, vt, w, method="tsqr", rank=rank, energy=energy)
            fit_mode = "streaming"
    finally:
        ds.close()
    fit_seconds = time.perf_counter() - t0
    logger.info("%s: %d snapshots x %d points -> %d modes (%s, %s) in %.2f s", variable, lay.n_rows,
                lay.n_space, pod.n_modes_, method if fit_mode == "in_memory" else "tsqr", fit_mode,
                fit_seconds)
    out = pod.to_dataset(lay.space_dims, coords, lay.space_shape, attrs={
        "variable": variable, "units": units,
        "weights_kind": weights if isinstance(weights, str) else "custom", "fit_mode": fit_mode,
        "memory_budget_mb": -1.0 if memory_budget_mb is None else float(memory_budget_mb),
        "fit_seconds": fit_seconds, "n_train_snapshots": lay.n_rows, **(attrs or {})})
    out["singular_values"].attrs["units"] = "1"
    write_dataset(out, out_nc)
    return Path(out_nc)

"""Linear algebra of the POD: exact SVD, TSQR and randomized SVD of the centred, weighted
snapshot matrix, on numpy or dask arrays; rank choice and sign convention.

Conventions
-----------
``X`` is ``(n_snapshots, n_space)``: snapshots are rows.  ``sw = sqrt(weights)`` holds one
positive entry per spatial point (quadrature, cell-volume or lumped-mass weights).  Every
method factors the centred, weighted matrix

    A = (X - 1 mean^T) diag(sw) = U diag(s) vt

and returns ``(mean, s, vt)`` as numpy arrays; :class:`~surroflow.reduction.pod.POD` turns the
rows of ``vt`` into modes orthonormal in the weighted inner product (``vt / sw``).

Methods
-------
``exact``
    One centred, weighted copy, factored in place by LAPACK: ``geqrf`` of ``A`` (tall) or of
    ``A^T`` (wide), ``gesdd`` of the small ``R``, and for a wide ``A`` ``ormqr`` to apply ``Q``;
    the left singular vectors are never formed (:func:`_exact`; at or below the time of
    ``scipy.linalg.svd(full_matrices=False)``, ``bench/bench_pod.py --exact-vs-scipy``).
``tsqr``
    Tall-skinny QR as a dask task tree: every row block (or, for short-wide matrices, every
    block of spatial points of ``A^T``) is reduced to its ``R`` factor, ``R`` factors are stacked
    and reduced again up the tree; the mean is merged on the way (Chan's pairwise update adds
    one row ``sqrt(n_a n_b / (n_a + n_b)) (m_a - m_b)`` per merge), so centring costs no extra
    pass.  Only ``R`` is formed (``dask.array.linalg.tsqr`` forms and keeps the ``Q`` blocks,
    1.6x the time here and memory of the size of the data).  For a tall ``A`` the right
    singular vectors are those of ``R``; for a wide ``A`` a second pass forms ``Y = A^T V_r``
    and takes ``svd(Y)``, which is backward stable (unlike ``A^T V S^-1`` or the method of
    snapshots, which square the condition number).
``randomized``
    Halko-Martinsson-Tropp range finder with QR-normalised power iterations, seeded, with the
    centring and weighting applied implicitly (no copy of ``X``); the range is sampled in the
    smaller dimension so every QR is small.  For dask inputs it uses
    :func:`dask.array.linalg.svd_compressed` on the lazily centred array.

The TSQR leaves and merges are reused by :mod:`surroflow.reduction.streaming` (out of core).
This module imports nothing else of :mod:`surroflow.reduction`.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Iterator, Sequence

import numpy as np
import scipy.linalg as sla

from .. import SurroflowError
from ..snapshots import DEFAULT_CHUNK_ROWS

METHODS = ("exact", "tsqr", "randomized")
#: default number of R factors merged per tree node
FAN_IN = 4


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


def choose_rank(singular_values: np.ndarray, energy: float | None, rank: int | None,
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
        r = choose_rank(s, energy, rank) if (rank is not None or energy is not None) else s.size
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
    r = choose_rank(s, energy, rank) if (rank is not None or energy is not None) else s.size
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


# =========================================================================== exact
def _svd_small(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SVD of a small square factor: ``gesdd`` (divide and conquer, the fastest with vectors),
    ``gesvd`` only if ``gesdd`` does not converge (``a`` is kept for that retry)."""
    try:
        return sla.svd(a, full_matrices=False, overwrite_a=False, check_finite=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # pragma: no cover - rare convergence failure of gesdd
        return sla.svd(a, full_matrices=False, overwrite_a=True, check_finite=False, lapack_driver="gesvd")


#: aspect ratio from which the exact backend reduces to ``R`` first (LAPACK gesdd's ``mnthr``)
_QR_FIRST = 11 / 6


def _exact(X: Any, sw: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ``(mean, s, vt)`` with one centred, weighted copy of ``X`` and no left singular
    vectors.  The copy is laid out so that LAPACK factors it in place (``geqrf``, no further copy):

    * tall (``m >= n``): ``A = Q R`` (Fortran copy), then ``svd(R)`` (``n x n``): ``vt`` of ``R``
      is that of ``A``; ``Q`` and ``U`` are never formed (``scipy.linalg.svd`` forms both);
    * wide: ``A^T = Q R`` (the C-ordered copy of ``A`` is a Fortran ``A^T``), ``R = W S Z^T``
      (``m x m``), so ``A = Z S (Q W)^T`` and ``vt = (Q W)^T``, with ``Q`` applied to ``W`` by
      ``ormqr`` (cheaper than forming ``Q`` and multiplying, as ``gesdd``'s own QR path does).

    A nearly square ``A`` (aspect ratio below 11/6) goes to ``gesdd`` in place directly.
    All are backward stable (unlike the method of snapshots, ``eig(A A^T)``, which squares the
    condition number and loses the trailing modes' accuracy)."""
    Xn = X.compute() if _is_dask(X) else X
    Xn = np.asarray(Xn, dtype=np.float64)
    _assert_finite(Xn)
    m, n = Xn.shape
    mean = Xn.mean(axis=0) if center else np.zeros(n)
    # nearly square: the QR first does not pay (LAPACK's own crossover, 11/6): gesdd in place
    square = max(m, n) < _QR_FIRST * min(m, n)
    if m >= n:
        A = np.empty((m, n), order="F")
        np.subtract(Xn, mean, out=A)
        A *= sw
        if square:
            _, s, vt = sla.svd(A, full_matrices=False, overwrite_a=True, check_finite=False, lapack_driver="gesdd")
        else:
            _, s, vt = _svd_small(_qr_r(A))
        return mean, s, vt
    A = np.empty((m, n), order="C")
    np.subtract(Xn, mean, out=A)
    A *= sw
    at = A.T                                                   # (n, m), Fortran-ordered view
    if square:
        u, s, _ = sla.svd(at, full_matrices=False, overwrite_a=True, check_finite=False, lapack_driver="gesdd")
        return mean, s, u.T
    geqrf, ormqr = sla.get_lapack_funcs(("geqrf", "ormqr"), (at,))
    work = geqrf(at, lwork=-1)[2]
    qr, tau, _, info = geqrf(at, lwork=max(1, int(np.real(work).ravel()[0])), overwrite_a=True)
    if info != 0:
        raise SurroflowError(f"QR factorisation failed (LAPACK geqrf info={info})")
    w, s, _ = _svd_small(np.triu(qr[:m]))
    c = np.zeros((n, m), order="F")
    c[:m] = w
    work = ormqr("L", "N", qr, tau, c, lwork=-1)[1]
    qw, _, info = ormqr("L", "N", qr, tau, c, lwork=max(1, int(np.real(work).ravel()[0])), overwrite_c=True)
    if info != 0:
        raise SurroflowError(f"applying Q failed (LAPACK ormqr info={info})")
    return mean, s, qw.T


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
        return _exact(X, sw, center)
    if method == "tsqr":
        return _tsqr(X, sw, center, rank, energy, chunk_rows, n_workers)
    return _randomized(X, sw, center, rank, energy, int(oversampling), int(power_iterations),
                       random_state, n_workers)



# =========================================================================== energy and signs
def total_energy(X: Any, mean: np.ndarray, sw: np.ndarray) -> float:
    """``||A||_F^2`` of ``A = (X - 1 mean^T) diag(sw)`` (blockwise for numpy, lazily for dask)."""
    if _is_dask(X):
        return float((((X - mean) * sw) ** 2).sum().compute())
    return _CenteredOperator(np.asarray(X, dtype=float), mean, sw).frobenius2()


def sign_fix(modes: np.ndarray) -> np.ndarray:
    """Deterministic signs: the first entry (in index order) of every mode whose magnitude is at
    least half the mode's largest is positive.  (Not the largest entry itself: modes with two
    peaks of equal size and opposite sign, e.g. sines, would flip with rounding.)"""
    modes = np.asarray(modes)
    if modes.shape[0] == 0:
        return modes
    a = np.abs(modes)
    idx = np.argmax(a >= 0.5 * a.max(axis=1, keepdims=True), axis=1)
    signs = np.sign(modes[np.arange(modes.shape[0]), idx])
    signs[signs == 0] = 1.0
    return modes * signs[:, None]

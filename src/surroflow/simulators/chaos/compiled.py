"""Compiled (numba) batched RK4 integrators of the Lorenz systems.

:meth:`ChaoticSystem.integrate` hands a whole ensemble to one of these kernels when numba is
importable: all trajectories are stacked in one ``(n, dim)`` array and the kernel loops over
trajectories and steps in machine code, with the same classical RK4 step, the same step ``dt``
and the same order of floating-point operations as the numpy :func:`~.base.rk4` (no fastmath,
so no reassociation or fused multiply-adds: the results agree with the numpy path to rounding,
bit for bit on x86-64).  A row that is non-finite or exceeds ``blowup`` at a kept state is NaN
from then on, as in the numpy path.

Compilation happens on a kernel's first call (seconds); with numba's on-disk cache
(``cache=True``: the ``__pycache__`` folder next to this file, which an editable install and the
workflow's jobs can write, or ``NUMBA_CACHE_DIR``) later processes load the machine code
instead.  The costs (cold compile, numba import plus cache load, the Lorenz-63 study job) are
measured in fresh processes by ``bench/bench_generation_dysts.py``.  When no cache location is
writable the kernels are compiled without caching; when numba cannot be imported at all
:func:`kernel` returns ``None`` and the numpy path runs (``BACKEND`` says which:
``"numba (cached)"``, ``"numba (no cache: <reason>)"`` or ``"numpy (<reason>)"``).  This module
is imported on the first compiled integration, not with :mod:`surroflow.simulators`, so jobs
that never compile never import numba.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

#: which integrator :meth:`ChaoticSystem.integrate` uses (set when this module is imported)
BACKEND: str | None = None


def _l63(x0, sigma, rho, beta, dt, n_transient, stride, n_steps, blowup, out):
    n = x0.shape[0]
    h6 = dt / 6.0
    for i in range(n):
        X, Y, Z = x0[i, 0], x0[i, 1], x0[i, 2]
        dead = False
        for k in range(n_steps):
            if dead:
                out[i, k, 0] = np.nan
                out[i, k, 1] = np.nan
                out[i, k, 2] = np.nan
                continue
            m = n_transient if k == 0 else stride
            for _ in range(m):
                a1 = sigma * (Y - X)
                b1 = X * (rho - Z) - Y
                c1 = X * Y - beta * Z
                x2, y2, z2 = X + 0.5 * dt * a1, Y + 0.5 * dt * b1, Z + 0.5 * dt * c1
                a2 = sigma * (y2 - x2)
                b2 = x2 * (rho - z2) - y2
                c2 = x2 * y2 - beta * z2
                x3, y3, z3 = X + 0.5 * dt * a2, Y + 0.5 * dt * b2, Z + 0.5 * dt * c2
                a3 = sigma * (y3 - x3)
                b3 = x3 * (rho - z3) - y3
                c3 = x3 * y3 - beta * z3
                x4, y4, z4 = X + dt * a3, Y + dt * b3, Z + dt * c3
                a4 = sigma * (y4 - x4)
                b4 = x4 * (rho - z4) - y4
                c4 = x4 * y4 - beta * z4
                X = X + h6 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
                Y = Y + h6 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
                Z = Z + h6 * (c1 + 2.0 * c2 + 2.0 * c3 + c4)
            if not (abs(X) < blowup and abs(Y) < blowup and abs(Z) < blowup):   # also NaN
                dead = True
                out[i, k, 0] = np.nan
                out[i, k, 1] = np.nan
                out[i, k, 2] = np.nan
            else:
                out[i, k, 0] = X
                out[i, k, 1] = Y
                out[i, k, 2] = Z


def _l96(x0, F, dt, n_transient, stride, n_steps, blowup, out):
    n, N = x0.shape
    h6 = dt / 6.0
    x = np.empty(N)
    y = np.empty(N)
    K = np.empty((4, N))
    for i in range(n):
        for j in range(N):
            x[j] = x0[i, j]
        dead = False
        for k in range(n_steps):
            if not dead:
                m = n_transient if k == 0 else stride
                for _ in range(m):
                    for st in range(4):                  # the four RK4 stages
                        if st == 0:
                            for j in range(N):
                                y[j] = x[j]
                        else:
                            c = dt if st == 3 else 0.5 * dt
                            for j in range(N):
                                y[j] = x[j] + c * K[st - 1, j]
                        for j in range(N):               # (x_{j+1} - x_{j-2}) x_{j-1} - x_j + F
                            jp1 = j + 1 if j + 1 < N else j + 1 - N
                            jm1 = j - 1 if j >= 1 else j - 1 + N
                            jm2 = j - 2 if j >= 2 else j - 2 + N
                            K[st, j] = (y[jp1] - y[jm2]) * y[jm1] - y[j] + F
                    for j in range(N):
                        x[j] = x[j] + h6 * (K[0, j] + 2.0 * K[1, j] + 2.0 * K[2, j] + K[3, j])
                for j in range(N):
                    if not abs(x[j]) < blowup:           # also NaN
                        dead = True
            for j in range(N):
                out[i, k, j] = np.nan if dead else x[j]


def _jit(fn: Callable) -> Callable:
    """``numba.njit(cache=True)(fn)``, or without the cache when no cache folder is writable."""
    global BACKEND
    try:
        out = _numba.njit(cache=True)(fn)
        BACKEND = BACKEND or "numba (cached)"
    except RuntimeError as exc:   # "cannot cache function ...: no locator available for file ..."
        out = _numba.njit(fn)
        BACKEND = f"numba (no cache: {exc})"
    return out


try:
    import numba as _numba
except Exception as exc:  # noqa: BLE001  (not installed or broken: the numpy path runs)
    BACKEND = f"numpy (numba not importable: {type(exc).__name__}: {exc})"
    _KERNELS = {}
else:
    _KERNELS = {"lorenz63": _jit(_l63), "lorenz96": _jit(_l96)}


def kernel(name: str) -> Callable | None:
    """The compiled integrator of system ``name`` (``lorenz63``, ``lorenz96``), or ``None``."""
    return _KERNELS.get(name)


__all__ = ["BACKEND", "kernel"]

"""Chaotic dynamical systems for the forecast task, one small file per system.

* :class:`Lorenz63` and :class:`Lorenz96`: classical fourth-order Runge–Kutta, fixed step ``dt``;
  large ensembles go through a compiled numba kernel (:mod:`.compiled`, same numbers).
* :class:`KuramotoSivashinsky`: Fourier pseudo-spectral, ETDRK4 (Kassam & Trefethen 2005).

:class:`~surroflow.simulators.chaos.base.ChaoticSystem` holds the common machinery (settings,
vectorised ensemble integration, divergence flags).  A new system is one subclass in one file,
registered in :mod:`surroflow.simulators`.
"""
from __future__ import annotations

from ..spectral import etdrk4_coefficients
from .base import BLOWUP, ChaoticSystem
from .kuramoto_sivashinsky import KuramotoSivashinsky
from .lorenz63 import Lorenz63
from .lorenz96 import Lorenz96

__all__ = ["BLOWUP", "ChaoticSystem", "Lorenz63", "Lorenz96", "KuramotoSivashinsky", "etdrk4_coefficients"]

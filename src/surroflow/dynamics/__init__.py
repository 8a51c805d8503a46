"""Dynamical-systems diagnostics: Lyapunov exponents (Benettin/QR on the tangent dynamics).

:func:`lyapunov_attrs` gives the Lyapunov attributes that the generate stage attaches to the
data of a chaotic simulator.  Nothing here imports :mod:`surroflow.simulators`.
"""
from __future__ import annotations

from .attrs import is_chaotic, lyapunov_attrs, lyapunov_exponent
from .lyapunov import (LyapunovResult, TangentSystem, kaplan_yorke_dimension,
                       leading_lyapunov_exponent, lyapunov_spectrum)

__all__ = ["LyapunovResult", "TangentSystem", "is_chaotic", "kaplan_yorke_dimension",
           "leading_lyapunov_exponent", "lyapunov_attrs", "lyapunov_exponent", "lyapunov_spectrum"]

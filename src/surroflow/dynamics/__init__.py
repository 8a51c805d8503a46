"""Dynamical-systems diagnostics: Lyapunov exponents (Benettin/QR on the tangent dynamics)."""
from __future__ import annotations

from .lyapunov import (LyapunovResult, TangentSystem, kaplan_yorke_dimension,
                       leading_lyapunov_exponent, lyapunov_spectrum)

__all__ = ["LyapunovResult", "TangentSystem", "kaplan_yorke_dimension", "leading_lyapunov_exponent",
           "lyapunov_spectrum"]

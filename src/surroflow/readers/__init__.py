"""Readers of external solvers' result files (parsers only; no solver is run here).

``frd``: CalculiX ASCII results.  Readers that an external-command simulator uses per sample
are registered in :mod:`surroflow.simulators.external` (``register_reader``).
"""
from __future__ import annotations

from .frd import FrdBlock, FrdError, FrdResult, frd_fields, read_frd, von_mises

__all__ = ["FrdBlock", "FrdError", "FrdResult", "frd_fields", "read_frd", "von_mises"]

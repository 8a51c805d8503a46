"""Reduction: POD bases (global and local) with fit/transform/inverse_transform."""
from __future__ import annotations

from .pod import POD

__all__ = ["POD"]

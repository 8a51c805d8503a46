"""Reduction: POD bases (global and local) with fit/transform/inverse_transform.

``linalg`` (SVD backends) and ``streaming`` (out of core) sit behind :class:`POD`;
``clustering``, ``local`` (:class:`LocalPOD`) and ``criterion`` make local bases; ``files``
holds the file-level functions of the reduction stages; ``figures`` their figures.
"""
from __future__ import annotations

from .local import LocalPOD
from .pod import POD

__all__ = ["POD", "LocalPOD"]

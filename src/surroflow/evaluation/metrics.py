"""Error measures in the weighted inner product of the POD.

For a test sample with field ``u`` (all times), projection ``P u`` onto the basis and surrogate
prediction ``û`` (which lies in the basis' affine span), the Pythagorean split holds in the
weighted norm:  ``||u - û||² = ||u - P u||² + ||P u - û||²``  (total² = projection² + regression²).
"""
from __future__ import annotations

import numpy as np


def weighted_norm(a: np.ndarray, w: np.ndarray) -> float:
    """Weighted L2 norm over all entries; the last axis is space, matched by ``w``."""
    a2 = np.asarray(a).reshape(-1, w.size)
    return float(np.sqrt(np.sum(a2 ** 2 * w)))


def error_split(u: np.ndarray, u_proj: np.ndarray, u_pred: np.ndarray, w: np.ndarray) -> dict[str, float]:
    ref = max(weighted_norm(u, w), np.finfo(float).tiny)
    return {
        "rel_l2": weighted_norm(u - u_pred, w) / ref,
        "projection": weighted_norm(u - u_proj, w) / ref,
        "regression": weighted_norm(u_proj - u_pred, w) / ref,
    }

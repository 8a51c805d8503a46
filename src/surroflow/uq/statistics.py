"""Monte Carlo statistics with confidence intervals, streaming moments of fields, and the
agreement test of the surrogate against the high-fidelity check.

* mean: Student t interval (:func:`scipy.stats.ttest_1samp`'s ``confidence_interval``);
* std: chi-square interval ``s sqrt((n-1)/chi2_{(1+c)/2}) .. s sqrt((n-1)/chi2_{(1-c)/2})``
  (exact for normal data, approximate otherwise);
* quantiles 0.05 / 0.5 / 0.95: distribution-free intervals from order statistics
  (:func:`scipy.stats.quantile_test`).

:class:`StreamingMoments` accumulates the mean and variance of arrays batch by batch (Chan,
Golub and LeVeque's pairwise update of Welford's algorithm), so the mean and std *fields* of
10^5 predicted fields never sit in memory together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: the quantiles reported with their order-statistic intervals
QUANTILES = (0.05, 0.5, 0.95)


class StreamingMoments:
    """Running count, mean and sum of squared deviations of arrays stacked along axis 0."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, batch: Any) -> "StreamingMoments":
        """Add the rows of ``batch`` ``(b, ...)``: the batch's own mean and M2, then the pairwise
        combination ``M2 = M2_a + M2_b + delta^2 n_a n_b / n`` (stable for any batch sizes)."""
        b = np.asarray(batch, dtype=float)
        nb = b.shape[0]
        if nb == 0:
            return self
        mb = b.mean(axis=0)
        d = (b - mb).reshape(nb, -1)
        m2b = np.einsum("ij,ij->j", d, d).reshape(mb.shape)     # one temporary, not three
        if self.mean is None or self.m2 is None:
            self.n, self.mean, self.m2 = nb, mb, m2b
            return self
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta ** 2 * (self.n * nb / n)
        self.n = n
        return self

    def variance(self, ddof: int = 1) -> np.ndarray:
        if self.m2 is None or self.n - ddof <= 0:
            raise ValueError(f"variance of {self.n} rows with ddof={ddof} is undefined")
        return self.m2 / (self.n - ddof)

    def std(self, ddof: int = 1) -> np.ndarray:
        return np.sqrt(self.variance(ddof))


@dataclass
class Stats:
    """Statistics of one QoI sample with their confidence intervals (``lower``/``upper``)."""

    n: int
    mean: float
    mean_lower: float
    mean_upper: float
    std: float
    std_lower: float
    std_upper: float
    #: ``(len(QUANTILES),)`` each
    quantile: np.ndarray
    quantile_lower: np.ndarray
    quantile_upper: np.ndarray

    def row(self, prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {f"{prefix}n": self.n}
        for k in ("mean", "mean_lower", "mean_upper", "std", "std_lower", "std_upper"):
            out[prefix + k] = float(getattr(self, k))
        for p, q, lo, hi in zip(QUANTILES, self.quantile, self.quantile_lower, self.quantile_upper):
            tag = f"q{int(round(100 * p)):02d}"
            out.update({prefix + tag: float(q), f"{prefix}{tag}_lower": float(lo), f"{prefix}{tag}_upper": float(hi)})
        return out


def _nan_stats(n: int) -> Stats:
    nq = np.full(len(QUANTILES), np.nan)
    return Stats(n, *(math.nan,) * 6, nq, nq.copy(), nq.copy())


def sample_statistics(x: Any, confidence: float = 0.95) -> Stats:
    """Mean, std and :data:`QUANTILES` of the finite values of ``x`` with ``confidence`` intervals
    (NaN when fewer than 2 values)."""
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    n = a.size
    if n < 2:
        return _nan_stats(n)
    mean = float(a.mean())
    s = float(a.std(ddof=1))
    if s > 0:
        ci = stats.ttest_1samp(a, 0.0).confidence_interval(confidence)
        m_lo, m_hi = float(ci.low), float(ci.high)
    else:
        m_lo = m_hi = mean
    alpha = 1.0 - confidence
    s_lo = s * math.sqrt((n - 1) / stats.chi2.ppf(1 - alpha / 2, n - 1))
    s_hi = s * math.sqrt((n - 1) / stats.chi2.ppf(alpha / 2, n - 1))
    q = np.quantile(a, QUANTILES)
    q_lo, q_hi = np.full(len(QUANTILES), np.nan), np.full(len(QUANTILES), np.nan)
    for k, p in enumerate(QUANTILES):
        # too few values for an order-statistic interval of this level: NaN bound(s)
        ci = stats.quantile_test(a, q=q[k], p=p).confidence_interval(confidence)
        q_lo[k], q_hi[k] = float(ci.low), float(ci.high)
    q_lo[~np.isfinite(q_lo)] = np.nan
    q_hi[~np.isfinite(q_hi)] = np.nan
    return Stats(n, mean, m_lo, m_hi, s, s_lo, s_hi, q, q_lo, q_hi)


@dataclass
class Agreement:
    """Surrogate statistics inside the high-fidelity check's confidence intervals."""

    mean: bool
    std: bool

    @property
    def both(self) -> bool:
        return self.mean and self.std


def agreement(surrogate: Stats, reference: Stats) -> Agreement:
    """Does the surrogate's mean lie in the reference's mean interval, and its std in the
    reference's std interval?  (NaN intervals: no.)"""
    return Agreement(bool(reference.mean_lower <= surrogate.mean <= reference.mean_upper),
                     bool(reference.std_lower <= surrogate.std <= reference.std_upper))


__all__ = ["QUANTILES", "StreamingMoments", "Stats", "sample_statistics", "Agreement", "agreement"]

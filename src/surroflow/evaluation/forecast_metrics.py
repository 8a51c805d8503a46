"""Forecast skill of chaotic systems, in Lyapunov times, with honest accounting of blow-ups.

Arrays are ``(n_ic, n_lead, n_state)``: ``truth[i, k]`` and ``pred[i, k]`` are the state at lead
time ``(k + 1) * dt`` after forecast start ``i``.

* Normalised error (Pathak et al. 2018; Vlachas et al. 2020):
  ``E(t) = ||u(t) - û(t)|| / sqrt(<||u - ū||²>)`` with the true state's mean removed in the
  denominator (``normalisation = "std"``, the default), or ``sqrt(<||u||²>)`` (``"rms"``, the
  time/ensemble mean of the true squared norm, which counts an off-centre attractor's mean, e.g.
  Lorenz-63's z, as variability and so lengthens every VPT).
* Valid prediction time: the first lead time at which ``E`` exceeds ``threshold`` (a non-finite
  prediction exceeds every threshold), in Lyapunov times; forecasts that never exceed it within
  the horizon are *censored* at the horizon and flagged.
* sMAPE valid prediction time, the definition of the dysts benchmark (Gilpin 2021, 2023): the
  first lead time at which ``sMAPE(t) = 200/d Σ_j |u_j - û_j| / (|u_j| + |û_j|)`` (in percent,
  over the ``d`` components; 0 where both are 0, 200 where the prediction is not finite)
  exceeds a threshold (30 there), so numbers can be set beside published ones.
* Divergence: the first step at which a prediction is non-finite or larger in magnitude than
  ``limit``; a diverged rollout keeps its VPT up to the blow-up and is reported, never dropped.
* Long-horizon statistics (the "climate" of a model): power-spectrum error (mean absolute
  difference of log10 spectra), Wasserstein-1 distance between per-component invariant-measure
  histograms (in units of the true standard deviation) and the Hellinger distance between them;
  a rollout that collapses to a fixed point is flagged ``collapsed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import SurroflowError


def _check(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(truth, dtype=float)
    p = np.asarray(pred, dtype=float)
    if t.shape != p.shape or t.ndim != 3:
        raise SurroflowError(f"truth and prediction must both be (n_ic, n_lead, n_state); got {t.shape} and {p.shape}")
    return t, p


def error_normaliser(truth: np.ndarray, normalisation: str = "std") -> float:
    """``sqrt(<||u||²>)`` (``rms``) or ``sqrt(<||u - ū||²>)`` (``std``) over all true states."""
    u = np.asarray(truth, dtype=float).reshape(-1, np.shape(truth)[-1])
    u = u[np.all(np.isfinite(u), axis=1)]
    if normalisation == "rms":
        val = np.sqrt(np.mean(np.sum(u ** 2, axis=1)))
    elif normalisation == "std":
        val = np.sqrt(np.mean(np.sum((u - u.mean(axis=0)) ** 2, axis=1)))
    else:
        raise SurroflowError(f"normalisation={normalisation!r} is not allowed; allowed: ['rms', 'std']")
    if not val > 0:
        raise SurroflowError("the true states have zero norm; the normalised error is undefined")
    return float(val)


#: (class, settings, horizon) -> reference_error's result: validation runs it once per process
_REFERENCE_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def reference_error(sim: Any, horizon_time: float, n_ic: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """How far a chaotic simulator's own reference trajectories are from the exact flow:
    ``(times, error)``, the median over ``n_ic`` states on the attractor of the normalised
    distance (:func:`error_normaliser`, ``std``) between the trajectory with the simulator's
    step ``dt`` and with ``dt / 2``, at every sampled time up to ``horizon_time``.

    For a method of order ``p`` the ``dt`` trajectory's own error is ``2^p / (2^p - 1)`` times this
    distance (a Richardson estimate): the distance is the error's measurable part.  ``sim`` is
    duck-typed: ``settings`` (with ``dt`` and ``dt_sample``), ``random_states``, ``integrate``; the
    fine simulator is ``type(sim)(**settings, dt=dt/2)``.  Non-finite trajectories give ``inf``."""
    settings = dict(sim.settings)
    key = (type(sim).__module__, type(sim).__qualname__, tuple(sorted((k, repr(v)) for k, v in settings.items())),
           float(horizon_time), int(n_ic), int(seed))
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    fine = type(sim)(**{**settings, "dt": float(settings["dt"]) / 2})
    n = int(math.ceil(float(horizon_time) / float(settings["dt_sample"]))) + 1
    with np.errstate(all="ignore"):
        x0 = sim.integrate(sim.random_states(int(n_ic), np.random.default_rng(seed)), n_steps=1)[:, 0]
        coarse = sim.integrate(x0, n_steps=n, n_transient=0)
        ref = fine.integrate(x0, n_steps=n, n_transient=0)
    times = np.arange(n) * float(settings["dt_sample"])
    if not (np.all(np.isfinite(coarse)) and np.all(np.isfinite(ref))):
        out = (times, np.full(n, np.inf))
    else:
        err = np.sqrt(np.sum((coarse - ref) ** 2, axis=2)) / error_normaliser(ref, "std")
        out = (times, np.median(err, axis=0))
    _REFERENCE_CACHE[key] = out
    return out


def known_lyapunov_time(sim: Any) -> float | None:
    """The Lyapunov time of a chaotic simulator known without computing it (its
    ``lyapunov_exponent`` setting or a published value: ``published_exponent()``), else ``None``."""
    known = getattr(sim, "published_exponent", None)
    found = known() if callable(known) else None
    return None if found is None else 1.0 / float(found[0])


def reference_problem(sim: Any, *, lyapunov_time: float, horizon_lyapunov: float, vpt_threshold: float,
                      tolerance: float, where: str) -> str | None:
    """The sentence that refuses a forecast study whose reference trajectories are not accurate
    to ``tolerance * vpt_threshold`` over its horizon (:func:`reference_error`), else ``None``."""
    horizon = float(horizon_lyapunov) * float(lyapunov_time)
    times, err = reference_error(sim, horizon)
    limit = float(tolerance) * float(vpt_threshold)
    bad = ~(err <= limit)
    if not bad.any():
        return None
    t_bad = float(times[int(np.argmax(bad))]) / float(lyapunov_time)
    dt = float(sim.settings["dt"])
    return (f"{where}: the simulator's reference trajectories are not accurate over the forecast horizon: "
            f"integrated with dt={dt:g} and dt/2 from the same states they are {float(np.max(err)):.3g} apart "
            f"(normalised error) within {float(horizon_lyapunov):g} Lyapunov times, more than reference_tolerance "
            f"x vpt_threshold = {limit:.3g} from {t_bad:.3g} Lyapunov times on, so a VPT beyond that measures the "
            f"reference's error, not the model's; make simulator.settings.dt smaller (e.g. {dt / 2:g}) or "
            f"forecast.horizon_lyapunov shorter (< {t_bad:.3g})")


def normalised_error(truth: np.ndarray, pred: np.ndarray, normaliser: float) -> np.ndarray:
    """``(n_ic, n_lead)`` normalised error; ``inf`` where the prediction is not finite."""
    t, p = _check(truth, pred)
    with np.errstate(all="ignore"):
        e = np.sqrt(np.sum((t - p) ** 2, axis=2)) / float(normaliser)
    e[~np.isfinite(e)] = np.inf
    return e


def smape(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(n_ic, n_lead)`` symmetric mean absolute percentage error over the components, in
    percent (0..200): 0 where truth and prediction are both 0, 200 where the prediction is not
    finite."""
    t, p = _check(truth, pred)
    with np.errstate(all="ignore"):
        den = np.abs(t) + np.abs(p)
        r = np.where(den > 0, np.abs(t - p) / np.where(den > 0, den, 1.0), 0.0)
        r = np.where(np.isfinite(p), r, 1.0)
    return 200.0 * r.mean(axis=2)


def valid_prediction_time(err: np.ndarray, dt: float, lyapunov_time: float, threshold: float = 0.4
                          ) -> tuple[np.ndarray, np.ndarray]:
    """VPT per forecast in Lyapunov times and whether it is censored at the horizon.

    ``err[i, k]`` is the error at lead time ``(k + 1) * dt``; the VPT is the first lead time at
    which ``err > threshold`` (non-finite counts as exceeding).
    """
    e = np.asarray(err, dtype=float)
    if e.ndim != 2:
        raise SurroflowError(f"err must be (n_ic, n_lead), got {e.shape}")
    exceed = ~(e <= threshold)          # NaN/inf exceed
    any_exceed = exceed.any(axis=1)
    first = np.where(any_exceed, np.argmax(exceed, axis=1), e.shape[1] - 1)
    vpt = (first + 1) * float(dt) / float(lyapunov_time)
    return vpt, ~any_exceed


def divergence(pred: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """``(diverged, step)``: whether each rollout blew up (non-finite or ``|x| > limit``) and the
    first such lead index (``-1`` when it did not)."""
    p = np.asarray(pred, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.all(np.isfinite(p) & (np.abs(p) <= limit), axis=2)
    div = bad.any(axis=1)
    step = np.where(div, np.argmax(bad, axis=1), -1)
    return div, step


def rmse_vs_lead(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMSE over forecasts and components at each lead time, over the forecasts still finite, and
    the fraction of forecasts that are not finite at that lead time (reported beside it)."""
    t, p = _check(truth, pred)
    finite = np.all(np.isfinite(p), axis=2)                  # (n_ic, n_lead)
    with np.errstate(all="ignore"):
        se = np.where(finite[..., None], (t - p) ** 2, 0.0)
        cnt = finite.sum(axis=0) * t.shape[2]
        rmse = np.sqrt(se.sum(axis=(0, 2)) / np.maximum(cnt, 1))
    rmse[cnt == 0] = np.nan
    return rmse, 1.0 - finite.mean(axis=0)


def power_spectrum(x: np.ndarray, axis: str = "time") -> np.ndarray:
    """Mean power spectrum of ``x`` ``(n_ic, n_time, n_state)`` along ``time`` (Hann-windowed
    periodogram of each component, temporal mean removed) or along ``space`` (the state axis of
    a periodic field, averaged over time).  Non-finite forecasts are excluded (all NaN if none)."""
    a = np.asarray(x, dtype=float)
    ok = np.all(np.isfinite(a), axis=(1, 2))
    if not ok.any():
        n = a.shape[1] // 2 + 1 if axis == "time" else a.shape[2] // 2 + 1
        return np.full(n, np.nan)
    a = a[ok]
    if axis == "time":
        w = np.hanning(a.shape[1])[None, :, None]
        f = np.fft.rfft((a - a.mean(axis=1, keepdims=True)) * w, axis=1)
        return np.mean(np.abs(f) ** 2, axis=(0, 2)) / np.sum(w ** 2)
    if axis == "space":
        f = np.fft.rfft(a, axis=2)
        return np.mean(np.abs(f) ** 2, axis=(0, 1)) / a.shape[2]
    raise SurroflowError(f"axis={axis!r} is not allowed; allowed: ['time', 'space']")


def spectrum_error(psd_true: np.ndarray, psd_pred: np.ndarray, floor: float = 1e-10) -> float:
    """Mean ``|log10 P_pred - log10 P_true|`` (decades) over bins where the true power exceeds
    ``floor * max``; the predicted power is floored there too, so a constant forecast scores
    about ``-log10(floor)`` rather than round-off noise; ``inf`` when it has no finite spectrum."""
    pt, pp = np.asarray(psd_true, float), np.asarray(psd_pred, float)
    if not np.all(np.isfinite(pp)):
        return float("inf")
    lo = floor * np.max(pt)
    keep = pt > lo
    return float(np.mean(np.abs(np.log10(np.maximum(pp[keep], lo)) - np.log10(pt[keep]))))


def histogram_distances(truth: np.ndarray, pred: np.ndarray, bins: int = 50) -> tuple[float, float]:
    """Mean over components of (Wasserstein-1 / true std, Hellinger distance) between the
    distributions of each component pooled over forecasts and time (the invariant measure).
    Non-finite forecasts are excluded; ``(inf, 1)`` when none is finite.

    Each component is sorted once: with as many predicted as true values, W1 is the mean absolute
    difference of the sorted samples (the quantile form, the same number as
    ``scipy.stats.wasserstein_distance``), otherwise scipy's; the histogram counts are read off
    the sorted samples with ``searchsorted`` (the bins of ``numpy.histogram``)."""
    t = np.asarray(truth, float).reshape(-1, np.shape(truth)[-1])
    pa = np.asarray(pred, float)
    ok = np.all(np.isfinite(pa), axis=(1, 2))
    if not ok.any():
        return float("inf"), 1.0
    ts = np.sort(t[np.all(np.isfinite(t), axis=1)], axis=0)
    ps = np.sort(pa[ok].reshape(-1, pa.shape[-1]), axis=0)
    n, m = len(ts), len(ps)
    from scipy.stats import wasserstein_distance     # (lazy: scipy.stats costs seconds to import)
    sd = np.maximum(ts.std(axis=0), 1e-12)
    if n == m:
        w1 = np.mean(np.abs(ts - ps), axis=0) / sd
    else:
        w1 = np.array([wasserstein_distance(ts[:, j], ps[:, j]) for j in range(ts.shape[1])]) / sd
    hel = []
    for j in range(ts.shape[1]):
        lo, hi = min(ts[0, j], ps[0, j]), max(ts[-1, j], ps[-1, j])
        if hi <= lo:
            hel.append(0.0)
            continue
        edges = np.linspace(lo, hi, bins + 1)
        ht, hp = (np.diff(np.concatenate([np.searchsorted(x, edges[:-1], "left"), [len(x)]])) / len(x)
                  for x in (ts[:, j], ps[:, j]))
        hel.append(float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(ht * hp))))))
    return float(np.mean(w1)), float(np.mean(hel))


def collapsed(truth: np.ndarray, pred: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Per forecast: the temporal standard deviation over the second half of the rollout is
    below ``fraction`` of the true one (a fixed point or a frozen state)."""
    t, p = _check(truth, pred)
    half = t.shape[1] // 2
    with np.errstate(all="ignore"):
        sd_p = np.sqrt(np.mean(np.var(p[:, half:], axis=1), axis=1))
    sd_t = np.sqrt(np.mean(np.var(t[:, half:], axis=1)))
    return np.isfinite(sd_p) & (sd_p < fraction * sd_t)


@dataclass
class ForecastScores:
    """Short-horizon and long-horizon scores of one model."""

    vpt: np.ndarray
    vpt_censored: np.ndarray
    vpt_smape: np.ndarray
    diverged: np.ndarray
    divergence_step: np.ndarray
    nerr: np.ndarray
    rmse: np.ndarray
    nonfinite_fraction: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        v = self.vpt
        out = {
            "vpt_median": float(np.median(v)), "vpt_mean": float(np.mean(v)),
            "vpt_q25": float(np.quantile(v, 0.25)), "vpt_q75": float(np.quantile(v, 0.75)),
            "vpt_min": float(np.min(v)), "vpt_max": float(np.max(v)),
            "vpt_smape_median": float(np.median(self.vpt_smape)),
            "n_forecasts": int(v.size), "n_censored": int(self.vpt_censored.sum()),
            "n_diverged": int(self.diverged.sum()),
        }
        out.update({k: v for k, v in self.stats.items() if np.ndim(v) == 0})
        return out


def score_forecasts(truth: np.ndarray, pred: np.ndarray, *, dt: float, lyapunov_time: float,
                    normaliser: float, threshold: float, limit: float, smape_threshold: float = 30.0
                    ) -> ForecastScores:
    """All short-horizon scores of one model's forecasts."""
    nerr = normalised_error(truth, pred, normaliser)
    vpt, cens = valid_prediction_time(nerr, dt, lyapunov_time, threshold)
    vpt_smape, _ = valid_prediction_time(smape(truth, pred), dt, lyapunov_time, smape_threshold)
    div, step = divergence(pred, limit)
    rmse, nf = rmse_vs_lead(truth, pred)
    return ForecastScores(vpt=vpt, vpt_censored=cens, vpt_smape=vpt_smape, diverged=div, divergence_step=step, nerr=nerr,
                          rmse=rmse, nonfinite_fraction=nf)


def long_horizon_statistics(truth: np.ndarray, pred: np.ndarray, *, limit: float,
                            spatial: bool = False, bins: int = 50) -> dict[str, Any]:
    """Climate scores of long rollouts: spectra, histogram distances, divergence and collapse."""
    t, p = _check(truth, pred)
    div, _ = divergence(p, limit)
    pc = np.where(div[:, None, None], np.nan, p)
    psd_t, psd_p = power_spectrum(t, "time"), power_spectrum(pc, "time")
    out: dict[str, Any] = {
        "psd_time_true": psd_t, "psd_time_pred": psd_p,
        "spectrum_error_time": spectrum_error(psd_t, psd_p),
        "stats_diverged_fraction": float(div.mean()),
    }
    col = collapsed(t, pc)
    out["collapsed_fraction"] = float(col.mean())
    if spatial:
        ps_t, ps_p = power_spectrum(t, "space"), power_spectrum(pc, "space")
        out.update({"psd_space_true": ps_t, "psd_space_pred": ps_p,
                    "spectrum_error_space": spectrum_error(ps_t, ps_p)})
    w1, hel = histogram_distances(t, pc, bins)
    out["wasserstein"] = w1
    out["hellinger"] = hel
    return out


__all__ = ["error_normaliser", "normalised_error", "smape", "reference_error", "known_lyapunov_time", "reference_problem",
           "valid_prediction_time", "divergence",
           "rmse_vs_lead", "power_spectrum", "spectrum_error", "histogram_distances", "collapsed",
           "ForecastScores", "score_forecasts", "long_horizon_statistics"]

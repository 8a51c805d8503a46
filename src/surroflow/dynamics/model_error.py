"""Discovery of a model's structural error: a library of candidate terms, sparse regression with
bootstrap uncertainty, and the corrected model's right-hand side.

The setting (issue 14) is a 1-D periodic field ``u(x, t)`` observed sparsely and noisily, an
imperfect model ``u_t = f(u)`` whose right-hand side is known as ``{term: coefficient}``
(e.g. :meth:`KuramotoSivashinsky.equation_terms`), and an ensemble Kalman filter
(:mod:`surroflow.dynamics.assimilation`) run with that model.  The filter's analyses carry the
information the model lacks; the missing tendency ``m(u) = u_t - f(u)`` is written as a sparse
combination of candidate terms (SINDy, Brunton, Proctor & Kutz 2016; PDE-FIND, Rudy et al.
2017), found by sequentially thresholded ridge regression, with the uncertainty of every
coefficient and the probability that the term is in the model from a bootstrap over blocks of
analysis cycles.

Two targets of the regression (:func:`model_error_data`):

``"increment"`` (what the stage should use)
    the analysis increment per unit time, ``(x_a(t_k) - x_f(t_k)) / dt_cycle``: the correction
    the observations make to a one-cycle forecast (as in Brajard et al. 2021, Phil. Trans. R.
    Soc. A 379, and Farchi et al. 2021, QJRMS 147), regressed on the terms averaged over the
    cycle's two ends (the previous analysis and this forecast).  The model's right-hand side is
    never evaluated, so it needs no ``model_terms`` and the fourth derivative of the analysis
    error is never taken.
``"residual"``
    the tendency residual, a centred difference of the analysis means minus the imperfect
    model's right-hand side at the middle analysis.  Exact on an accurate trajectory (the truth
    of a twin experiment gives -0.500 u_xx below), but on filter analyses of a stiff model it
    fails: ``-u_xxxx`` of the small-scale analysis error is large and correlated with the same
    error in the features, and on the KS prototype's analyses (every 2nd point, RMSE 0.07) it
    returns roughly minus the model itself (u_xx +0.52, u_xxxx +0.99, u*u_x +0.91).  Kept for
    accurate trajectories (reanalyses, validation against a truth).

One pass of increments sees only part of the error: the analysis corrects a fraction (the gain)
of each forecast error, strongly damped scales do not accumulate the error between analyses,
and increments lie in the span of the localised ensemble.  :func:`refine_model_error` therefore
corrects the model (:func:`corrected_step`) and filters again, regressing what the increments
still hold, until the correction stops changing (a fixed point).

Measured on issue 14's twin (KS L=22, 64 points, dt=0.25; truth the standard equation, model
``c_xx=0.5``, i.e. missing ``-0.5 u_xx``; observation noise 0.118 = 0.1 x the attractor's std
1.18; LETKF, 30 members, inflation 3, Gaspari-Cohn half-width 2 grid points; every 4th point
observed every 2 model steps; 800 cycles, 100 of spin-up; 11-term library; threshold 10%):
one pass gives u_xx -0.384; two -0.507 +- 0.003 (bootstrap std; seeds 0-2 agree to 0.001);
three -0.533; the fixed point (6 passes) -0.541 +- 0.004, u_xxxx -0.013 the only other term
(2% of u_xx), analysis RMSE 0.113 -> 0.096.  The same with 10-20 members and 200 cycles:
-0.53 to -0.54.  Every 2nd point observed every model step, localisation 3: one pass gives
-0.473, u_xxxx -0.040.  The perfect model (c_xx=1) gets no term above 0.015.  The bootstrap
std measures sampling noise only; the estimator's systematic error (the fixed point's 8%,
from the analysis errors in the features) is larger: two passes land nearest -0.5 because
the one-pass attenuation and that overshoot partly cancel, not because they have converged.

The terms are evaluated spectrally (:func:`derivatives`): FFT derivatives, exact for resolved
Fourier modes, with the Nyquist mode zeroed for odd derivatives.  Nothing here knows a
simulator: a model's terms are a plain dict with the names of :data:`TERMS`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import SurroflowError
from .assimilation import AssimilationResult, assimilate, rmse

logger = logging.getLogger(__name__)

#: candidate terms: name -> derivative orders of the factors (0 is ``u`` itself; () the constant)
TERMS: dict[str, tuple[int, ...]] = {
    "1": (),
    "u": (0,),
    "u_x": (1,),
    "u_xx": (2,),
    "u_xxx": (3,),
    "u_xxxx": (4,),
    "u^2": (0, 0),
    "u*u_x": (0, 1),
    "u*u_xx": (0, 2),
    "u*u_xxx": (0, 3),
    "u*u_xxxx": (0, 4),
    "u_x^2": (1, 1),
    "u_x*u_xx": (1, 2),
    "u^3": (0, 0, 0),
    "u^2*u_x": (0, 0, 1),
}
#: the default library: linear terms up to the fourth derivative and the quadratic ones of issue 14
DEFAULT_TERMS: tuple[str, ...] = ("u", "u_x", "u_xx", "u_xxx", "u_xxxx", "u^2", "u*u_x", "u*u_xx",
                                  "u*u_xxx", "u*u_xxxx", "u_x^2")
ESTIMATORS = ("increment", "residual")


# -- the library ---------------------------------------------------------------------------
def derivatives(u: np.ndarray, L: float, max_order: int = 4) -> np.ndarray:
    """Spectral x-derivatives ``(max_order + 1, ..., n_x)`` of ``u`` ``(..., n_x)`` on [0, L).

    Order 0 is ``u``.  With an even ``n_x`` the Nyquist mode is dropped from odd derivatives
    (its derivative is not a real field); even derivatives keep it.
    """
    u = np.asarray(u, dtype=float)
    L = _positive(L, "L")
    if u.ndim < 1 or u.shape[-1] < 4:
        raise SurroflowError(f"derivatives: u must have a last (x) axis of at least 4 points, got shape {u.shape}")
    if isinstance(max_order, bool) or not isinstance(max_order, Integral) or max_order < 0:
        raise SurroflowError(f"derivatives: max_order must be an integer >= 0, got {max_order!r}")
    n = u.shape[-1]
    ik = 1j * 2.0 * np.pi / L * np.arange(n // 2 + 1)
    v = np.fft.rfft(u, axis=-1)
    out = np.empty((max_order + 1, *u.shape))
    out[0] = u
    for p in range(1, max_order + 1):
        mult = ik ** p
        if p % 2 and n % 2 == 0:
            mult[-1] = 0.0
        out[p] = np.fft.irfft(v * mult, n=n, axis=-1)
    return out


def term_library(u: np.ndarray, L: float, names: Sequence[str] | None = None
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
    """The candidate terms at ``u`` ``(..., n_x)``: ``features (..., n_x, n_terms)`` and their names.

    ``names`` picks terms of :data:`TERMS` (default :data:`DEFAULT_TERMS`), in that order.
    """
    names = _check_names(names)
    orders = [TERMS[nm] for nm in names]
    top = max((max(o) for o in orders if o), default=0)
    D = derivatives(u, L, top)
    u = np.asarray(u, dtype=float)
    feats = np.empty((*u.shape, len(names)))
    for j, o in enumerate(orders):
        col = np.ones(u.shape)
        for p in o:
            col = col * D[p]
        feats[..., j] = col
    return feats, names


def evaluate_terms(u: np.ndarray, L: float, terms: Mapping[str, float]) -> np.ndarray:
    """``sum(coefficient * term(u))`` ``(..., n_x)``: a right-hand side given as ``{term: coefficient}``."""
    terms = _check_terms(terms, "terms")
    if not terms:
        return np.zeros(np.shape(u))
    feats, names = term_library(u, L, list(terms))
    return feats @ np.array([terms[nm] for nm in names])


def corrected_terms(model_terms: Mapping[str, float], correction: Mapping[str, float], *,
                    tol: float = 0.0) -> dict[str, float]:
    """The corrected model's right-hand side: ``model_terms`` plus the discovered ``correction``.

    Coefficients of the same term add; a term whose sum is within ``tol`` of zero is dropped
    (the correction removed it; with ``tol=0`` only exact zeros).  Terms are ordered as in :data:`TERMS`.
    """
    a, b = _check_terms(model_terms, "model_terms"), _check_terms(correction, "correction")
    if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0:
        raise SurroflowError(f"corrected_terms: tol must be a number >= 0, got {tol!r}")
    out = {}
    for nm in TERMS:
        if nm in a or nm in b:
            c = a.get(nm, 0.0) + b.get(nm, 0.0)
            if abs(c) > tol:
                out[nm] = c
    return out


def corrected_step(step: Callable[[np.ndarray], np.ndarray], correction: Mapping[str, float], L: float,
                   dt: float) -> Callable[[np.ndarray], np.ndarray]:
    """A stepper of the corrected model ``u_t = f(u) + sum(coefficient * term)`` for a model
    ``f`` known only as its stepper ``step`` (step ``dt``), by operator splitting.

    Linear terms with constant coefficients (``u``, ``u_x`` ... ``u_xxxx``) are integrated
    exactly in Fourier space, so a stiff correction (a fourth derivative) stays stable; nonlinear
    terms and the constant by explicit Euler, stable only for small, non-stiff coefficients (a
    large coefficient on ``u*u_xxxx`` is not).  The sequence is symmetric (Strang): half a step
    of the linear terms, half an Euler step of the others, ``step``, and the two halves again
    in reverse order; half the Euler step before ``step`` lets the model's own damping act on
    what the nonlinear terms add at small scales.  Works on ``(..., n_x)`` arrays.
    """
    corr = _check_terms(correction, "correction")
    L, dt = _positive(L, "L"), _positive(dt, "dt")
    linear = {nm: c for nm, c in corr.items() if len(TERMS[nm]) == 1}
    other = {nm: c for nm, c in corr.items() if len(TERMS[nm]) != 1 and c != 0.0}
    cache: dict[int, np.ndarray] = {}

    def propagator(n: int) -> np.ndarray:
        if n not in cache:
            ik = 1j * 2.0 * np.pi / L * np.arange(n // 2 + 1)
            lam = np.zeros(n // 2 + 1, dtype=complex)
            for nm, c in linear.items():
                (p,) = TERMS[nm]
                mult = ik ** p
                if p % 2 and n % 2 == 0:
                    mult[-1] = 0.0
                lam += c * mult
            cache[n] = np.exp(0.5 * dt * lam)
        return cache[n]

    def outer(X: np.ndarray) -> np.ndarray:      # half of the linear terms' exact propagator
        n = X.shape[-1]
        return np.fft.irfft(propagator(n) * np.fft.rfft(X, axis=-1), n=n, axis=-1)

    def inner(X: np.ndarray) -> np.ndarray:      # half an Euler step of the other terms
        with np.errstate(all="ignore"):          # a blow-up is the caller's to detect (non-finite)
            return X + 0.5 * dt * evaluate_terms(X, L, other)

    def stepped(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if linear:
            X = outer(X)
        if other:
            X = inner(X)
        X = np.asarray(step(X), dtype=float)
        if other:
            X = inner(X)
        return outer(X) if linear else X

    return stepped


# -- the regression targets ----------------------------------------------------------------
def model_error_data(analysis_mean: np.ndarray, forecast_mean: np.ndarray, dt_cycle: float, L: float, *,
                     estimator: str = "increment", model_terms: Mapping[str, float] | None = None,
                     names: Sequence[str] | None = None, skip: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Features ``(n_rows, n_x, n_terms)``, target ``(n_rows, n_x)`` and term names of one filter run.

    ``analysis_mean`` and ``forecast_mean`` are ``(n_cycles, n_x)`` as in
    :class:`~surroflow.dynamics.assimilation.AssimilationResult`, ``dt_cycle`` the time between
    analyses; the first ``skip`` cycles (the filter's spin-up) are left out.  One row per cycle:

    * ``"increment"``: ``(x_a[k] - x_f[k]) / dt_cycle`` on the mean of the terms at
      ``x_a[k-1]`` and ``x_f[k]`` (``k`` from ``skip + 1``);
    * ``"residual"``: ``(x_a[k+1] - x_a[k-1]) / (2 dt_cycle) - f(x_a[k])`` on the terms at
      ``x_a[k]``, with ``f`` the imperfect model's ``model_terms``.
    """
    xa = np.asarray(analysis_mean, dtype=float)
    xf = np.asarray(forecast_mean, dtype=float)
    if xa.ndim != 2 or xf.shape != xa.shape:
        raise SurroflowError(f"model_error_data: analysis_mean and forecast_mean must be 2-D arrays "
                             f"(n_cycles, n_x) of one shape, got {xa.shape} and {xf.shape}")
    dt_cycle = _positive(dt_cycle, "dt_cycle")
    if estimator not in ESTIMATORS:
        raise SurroflowError(f"model_error_data: estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    if isinstance(skip, bool) or not isinstance(skip, Integral) or skip < 0:
        raise SurroflowError(f"model_error_data: skip must be an integer >= 0, got {skip!r}")
    need = 2 if estimator == "increment" else 3
    if xa.shape[0] - skip < need:
        raise SurroflowError(f"model_error_data: {xa.shape[0]} cycles after skipping {skip} leave fewer than "
                             f"{need}, too few for the {estimator!r} estimator")
    xa, xf = xa[skip:], xf[skip:]
    if estimator == "increment":
        target = (xa[1:] - xf[1:]) / dt_cycle
        start, names_ = term_library(xa[:-1], L, names)
        end, _ = term_library(xf[1:], L, names_)
        return 0.5 * (start + end), target, names_
    if model_terms is None:
        raise SurroflowError("model_error_data: the 'residual' estimator needs model_terms (the imperfect "
                             "model's right-hand side as {term: coefficient})")
    mid = xa[1:-1]
    target = (xa[2:] - xa[:-2]) / (2.0 * dt_cycle) - evaluate_terms(mid, L, model_terms)
    feats, names_ = term_library(mid, L, names)
    return feats, target, names_


# -- sparse regression -----------------------------------------------------------------------
@dataclass(frozen=True)
class SparseFit:
    """A sparse regression ``target ~ features @ coef`` and its bootstrap.

    ``coef`` is the fit on all rows (in the units of the features); ``normalised`` the same in
    units of the target's RMS per unit-RMS feature, on which the threshold acts.  Over the
    ``n_bootstrap`` replicates: ``coef_mean``, ``coef_std`` (zeros of excluded terms included)
    and ``inclusion``, the fraction of replicates with the term in the model.
    """

    names: tuple[str, ...]
    coef: np.ndarray
    normalised: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    inclusion: np.ndarray
    bootstrap: np.ndarray        #: (n_bootstrap, n_terms)
    column_scale: np.ndarray     #: RMS of every feature column
    target_scale: float          #: RMS of the target
    threshold: float
    relative: bool

    def terms(self) -> dict[str, float]:
        """The selected terms of the full-data fit, ``{name: coefficient}``."""
        return {nm: float(c) for nm, c in zip(self.names, self.coef) if c != 0.0}

    def summary(self) -> list[dict[str, float | str]]:
        """One row per term: name, coefficient, bootstrap mean and std, inclusion probability."""
        return [{"term": nm, "coef": float(c), "normalised": float(z), "mean": float(mu), "std": float(sd),
                 "inclusion": float(p)}
                for nm, c, z, mu, sd, p in zip(self.names, self.coef, self.normalised, self.coef_mean,
                                                 self.coef_std, self.inclusion)]


def stlsq(features: np.ndarray, target: np.ndarray, *, threshold: float = 0.1, relative: bool = True,
          alpha: float = 1e-6, max_iter: int = 20) -> np.ndarray:
    """Sequentially thresholded ridge regression (STLSQ) of ``target`` ``(n_rows,)`` on ``features``
    ``(n_rows, n_terms)``; returns the coefficients ``(n_terms,)`` in the features' units.

    Columns are scaled to unit RMS and the target to unit RMS before the fit; ``alpha`` is the
    ridge penalty in those units and ``threshold`` is compared with the normalised
    coefficients, relative to the largest one when ``relative`` (else absolute).
    """
    Theta, y = _rows(features, target)
    G, h, yy = Theta.T @ Theta, Theta.T @ y, float(y @ y)
    scale, yscale = _scales(G, yy, Theta.shape[0])
    coef = _stlsq_gram(*_normalise(G[None], h[None], np.array([Theta.shape[0]]), scale, yscale),
                       _threshold(threshold), bool(relative), _alpha(alpha), _max_iter(max_iter), scale > 0)
    return _unnormalise(coef[0], scale, yscale)


def fit_sparse(features: np.ndarray, target: np.ndarray, names: Sequence[str] | None = None, *,
               threshold: float = 0.1, relative: bool = True, alpha: float = 1e-6, max_iter: int = 20,
               n_bootstrap: int = 200, block_length: int = 1,
               rng: np.random.Generator | int | None = None) -> SparseFit:
    """STLSQ (:func:`stlsq`) on all rows plus a block bootstrap over the leading axis.

    ``features`` ``(n_cycles, ..., n_terms)`` and ``target`` ``(n_cycles, ...)``: every entry
    of the leading axis (an analysis cycle) is a group of rows.  A bootstrap replicate draws
    ``n_cycles // block_length`` blocks of ``block_length`` consecutive cycles with replacement
    (choose blocks longer than the increments' correlation time for honest errors) and refits;
    the whole bootstrap works on per-block Gram matrices, so a replicate costs a few small
    linear solves, whatever the number of rows.  Cycles of several trajectories may be
    concatenated; a block that straddles two of them is still a fair draw.  ``n_bootstrap=0``
    skips the bootstrap (``coef_mean``, ``coef_std`` and ``inclusion`` are NaN).
    """
    F = np.asarray(features, dtype=float)
    y = np.asarray(target, dtype=float)
    if F.ndim < 2 or y.shape != F.shape[:-1]:
        raise SurroflowError(f"fit_sparse: features must be (n_cycles, ..., n_terms) and target (n_cycles, ...) "
                             f"with the same leading shape, got {F.shape} and {y.shape}")
    n_terms = F.shape[-1]
    if names is None:
        names = tuple(f"term{j}" for j in range(n_terms))
    names = tuple(str(nm) for nm in names)
    if len(names) != n_terms:
        raise SurroflowError(f"fit_sparse: {len(names)} names for {n_terms} feature columns")
    if not (np.all(np.isfinite(F)) and np.all(np.isfinite(y))):
        raise SurroflowError("fit_sparse: features and target must be finite")
    threshold, alpha, max_iter = _threshold(threshold), _alpha(alpha), _max_iter(max_iter)
    for key, v, low in (("n_bootstrap", n_bootstrap, 0), ("block_length", block_length, 1)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < low:
            raise SurroflowError(f"fit_sparse: {key} must be an integer >= {low}, got {v!r}")
    n_cycles = F.shape[0]
    n_blocks = n_cycles // int(block_length)
    if n_blocks < (2 if n_bootstrap else 1):
        raise SurroflowError(f"fit_sparse: {n_cycles} cycles make {n_blocks} block(s) of block_length="
                             f"{block_length}; the bootstrap needs at least 2")
    # per-block sufficient statistics (the rows of cycles past the last whole block are left out)
    Fb = F[:n_blocks * block_length].reshape(n_blocks, -1, n_terms)
    yb = y[:n_blocks * block_length].reshape(n_blocks, -1)
    Gb = np.einsum("bri,brj->bij", Fb, Fb)
    hb = np.einsum("bri,br->bi", Fb, yb)
    yyb = np.einsum("br,br->b", yb, yb)
    rows_per_block = Fb.shape[1]
    n_rows = n_blocks * rows_per_block
    scale, yscale = _scales(Gb.sum(axis=0), float(yyb.sum()), n_rows)
    usable = scale > 0
    rel = bool(relative)

    def solve(counts: np.ndarray) -> np.ndarray:           # counts (B, n_blocks): times each block is drawn
        G = np.tensordot(counts, Gb, axes=1)
        h = counts @ hb
        return _stlsq_gram(*_normalise(G, h, counts.sum(axis=1) * rows_per_block, scale, yscale),
                           threshold, rel, alpha, max_iter, usable)

    z_full = solve(np.ones((1, n_blocks)))[0]
    if n_bootstrap:
        gen = np.random.default_rng(rng)
        counts = gen.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=int(n_bootstrap)).astype(float)
        boot = _unnormalise(solve(counts), scale, yscale)                   # (n_bootstrap, n_terms)
        mean, incl = boot.mean(axis=0), np.mean(boot != 0.0, axis=0)
        std = boot.std(axis=0, ddof=1) if n_bootstrap > 1 else np.zeros(n_terms)
    else:
        boot = np.empty((0, n_terms))
        mean = std = incl = np.full(n_terms, np.nan)
    return SparseFit(names, _unnormalise(z_full, scale, yscale), z_full, mean, std, incl, boot, scale, yscale,
                     threshold, rel)


def discover_model_error(analysis_mean: np.ndarray, forecast_mean: np.ndarray, dt_cycle: float, L: float, *,
                         estimator: str = "increment", model_terms: Mapping[str, float] | None = None,
                         names: Sequence[str] | None = None, skip: int = 0, threshold: float = 0.1,
                         relative: bool = True, alpha: float = 1e-6, n_bootstrap: int = 200,
                         block_length: int = 1, rng: np.random.Generator | int | None = None) -> SparseFit:
    """:func:`model_error_data` then :func:`fit_sparse`: the missing tendency as sparse terms."""
    F, y, names_ = model_error_data(analysis_mean, forecast_mean, dt_cycle, L, estimator=estimator,
                                    model_terms=model_terms, names=names, skip=skip)
    return fit_sparse(F, y, names_, threshold=threshold, relative=relative, alpha=alpha,
                      n_bootstrap=n_bootstrap, block_length=block_length, rng=rng)


@dataclass(frozen=True)
class Refinement:
    """The outcome of :func:`refine_model_error`: the correction and every pass behind it.

    ``correction`` is the sum of the passes' selected terms, pruned by the threshold relative
    to its largest term (in the first pass's normalised units).  Its uncertainty comes from the
    last pass's bootstrap: every replicate's coefficients added to the correction of the earlier
    passes and pruned the same way give ``coef_mean``, ``coef_std`` and ``inclusion`` (the
    fraction of replicates that keep the term), for every term of the library.  ``fits[i]`` is
    pass ``i``'s regression and ``results[i]`` its filter runs, one per trajectory.
    """

    correction: dict[str, float]
    coef_mean: dict[str, float]
    coef_std: dict[str, float]
    inclusion: dict[str, float]
    fits: list[SparseFit]
    results: list[list[AssimilationResult]]


def refine_model_error(step: Callable[[np.ndarray], np.ndarray], ensemble0: np.ndarray, observations: np.ndarray,
                       obs_index: np.ndarray, obs_std: float, L: float, dt: float, *, steps_per_cycle: int = 1,
                       n_passes: int = 3, skip: int = 0, names: Sequence[str] | None = None,
                       threshold: float = 0.1, alpha: float = 1e-6, n_bootstrap: int = 200, block_length: int = 1,
                       rng: np.random.Generator | int | None = None, **filter_settings) -> Refinement:
    """Discover the correction by passes: filter, regress the increments, correct the model, repeat.

    The increments of one pass see only part of the model error: the analysis corrects a
    fraction of each forecast error (the gain), strongly damped scales do not accumulate the
    error between analyses, and the increments lie in the span of the (localised) ensemble.
    Running the filter again with the corrected model (:func:`corrected_step`, model step
    ``dt``) and regressing what is left converges towards the correction at which the
    increments hold no structural error any more (a fixed point of the pass).  ``step`` is the
    imperfect model's ensemble stepper; ``filter_settings`` go to
    :func:`~surroflow.dynamics.assimilation.assimilate` (``method``, ``inflation``,
    ``localisation``, ``distances``); the regression settings to :func:`fit_sparse` with
    relative thresholds.

    Several trajectories: ``ensemble0`` ``(n_traj, n_members, n_x)`` and ``observations``
    ``(n_traj, n_cycles, n_obs)``; every pass filters each of them and regresses the
    increments of all together (the first ``skip`` cycles of each left out).
    """
    if isinstance(n_passes, bool) or not isinstance(n_passes, Integral) or n_passes < 1:
        raise SurroflowError(f"refine_model_error: n_passes must be an integer >= 1, got {n_passes!r}")
    obs = np.asarray(observations, dtype=float)
    ens = np.asarray(ensemble0, dtype=float)
    if obs.ndim == 2 and ens.ndim == 2:
        obs, ens = obs[None], ens[None]
    if obs.ndim != 3 or ens.ndim != 3 or obs.shape[0] != ens.shape[0]:
        raise SurroflowError(f"refine_model_error: ensemble0 (n_members, n_x) with observations (n_cycles, n_obs), "
                             f"or both with a leading trajectory axis of one length; got {ens.shape} and {obs.shape}")
    gen = np.random.default_rng(rng)
    total: dict[str, float] = {}
    fits: list[SparseFit] = []
    results: list[list[AssimilationResult]] = []
    for i in range(int(n_passes)):
        stepper = corrected_step(step, total, L, dt) if total else step
        runs = [assimilate(stepper, e0, y, obs_index, obs_std, steps_per_cycle=steps_per_cycle, rng=gen,
                           **filter_settings) for e0, y in zip(ens, obs)]
        data = [model_error_data(r.analysis_mean, r.forecast_mean, steps_per_cycle * dt, L, names=names, skip=skip)
                for r in runs]
        fit = fit_sparse(np.concatenate([d[0] for d in data]), np.concatenate([d[1] for d in data]), data[0][2],
                         threshold=threshold, alpha=alpha, n_bootstrap=n_bootstrap, block_length=block_length,
                         rng=gen)
        total = corrected_terms(total, fit.terms())
        logger.info("model-error pass %d/%d: analysis RMSE against the observations %.4g; correction so far %s",
                    i + 1, n_passes, float(np.mean([rmse(r.analysis_mean[skip:, obs_index], y[skip:], axis=None)
                                                     for r, y in zip(runs, obs)])),
                    {k: round(v, 5) for k, v in total.items()})
        fits.append(fit)
        results.append(runs)
    first, last = fits[0], fits[-1]
    weight = first.column_scale / first.target_scale          # coefficient -> normalised size, per term

    def pruned(coef: np.ndarray) -> np.ndarray:               # (..., n_terms): the relative threshold
        size = np.abs(coef) * weight
        return np.where(size >= threshold * size.max(axis=-1, keepdims=True), coef, 0.0)

    names_ = first.names
    kept_vec = pruned(np.array([total.get(nm, 0.0) for nm in names_]))
    kept = {nm: float(c) for nm, c in zip(names_, kept_vec) if c != 0.0}
    before = np.array([total.get(nm, 0.0) for nm in names_]) - last.coef    # the earlier passes' sum
    if last.bootstrap.shape[0]:
        boot = pruned(before + last.bootstrap)
        mean, incl = boot.mean(axis=0), np.mean(boot != 0.0, axis=0)
        std = boot.std(axis=0, ddof=1) if boot.shape[0] > 1 else np.zeros(len(names_))
    else:
        mean = std = incl = np.full(len(names_), np.nan)
    as_dict = lambda v: {nm: float(x) for nm, x in zip(names_, v)}  # noqa: E731
    return Refinement(kept, as_dict(mean), as_dict(std), as_dict(incl), fits, results)


# -- helpers ---------------------------------------------------------------------------------
def _stlsq_gram(G: np.ndarray, h: np.ndarray, threshold: float, relative: bool, alpha: float,
                max_iter: int, usable: np.ndarray) -> np.ndarray:
    """Batched STLSQ on normalised normal equations ``G`` ``(B, p, p)``, ``h`` ``(B, p)``."""
    B, p = h.shape
    active = np.broadcast_to(usable, (B, p)).copy()
    eye = np.eye(p, dtype=bool)

    def ridge(active: np.ndarray) -> np.ndarray:
        both = active[:, :, None] & active[:, None, :]
        M = np.where(both, G + alpha * eye, eye.astype(float))
        return np.linalg.solve(M, np.where(active, h, 0.0)[..., None])[..., 0]

    z = ridge(active)
    for _ in range(max_iter):
        size = np.abs(z)
        cut = threshold * size.max(axis=1, keepdims=True) if relative else threshold
        keep = active & (size >= cut)
        if np.array_equal(keep, active):
            break
        active = keep
        z = ridge(active)
    return np.where(active, z, 0.0)


def _rows(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Theta = np.asarray(features, dtype=float)
    y = np.asarray(target, dtype=float)
    if Theta.ndim != 2 or y.shape != (Theta.shape[0],) or Theta.shape[0] < 1:
        raise SurroflowError(f"stlsq: features must be (n_rows, n_terms) and target (n_rows,), got "
                             f"{Theta.shape} and {y.shape}")
    if not (np.all(np.isfinite(Theta)) and np.all(np.isfinite(y))):
        raise SurroflowError("stlsq: features and target must be finite")
    return Theta, y


def _scales(G: np.ndarray, yy: float, n_rows: float) -> tuple[np.ndarray, float]:
    scale = np.sqrt(np.maximum(np.diag(G), 0.0) / n_rows)
    yscale = float(np.sqrt(yy / n_rows))
    if not yscale > 0:
        raise SurroflowError("sparse regression: the target is identically zero (nothing to explain)")
    return scale, yscale


def _normalise(G: np.ndarray, h: np.ndarray, n_rows: np.ndarray, scale: np.ndarray, yscale: float
               ) -> tuple[np.ndarray, np.ndarray]:
    s = np.where(scale > 0, scale, 1.0)
    n = np.asarray(n_rows, dtype=float)
    return G / (s[:, None] * s[None, :] * n[:, None, None]), h / (s * yscale * n[:, None])


def _unnormalise(z: np.ndarray, scale: np.ndarray, yscale: float) -> np.ndarray:
    return np.where(scale > 0, z * yscale / np.where(scale > 0, scale, 1.0), 0.0)


def _threshold(v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or v < 0:
        raise SurroflowError(f"sparse regression: threshold must be a finite number >= 0, got {v!r}")
    return float(v)


def _alpha(v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or v < 0:
        raise SurroflowError(f"sparse regression: alpha (the ridge penalty) must be a finite number >= 0, got {v!r}")
    return float(v)


def _max_iter(v: int) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
        raise SurroflowError(f"sparse regression: max_iter must be an integer >= 1, got {v!r}")
    return int(v)


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise SurroflowError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_names(names: Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return DEFAULT_TERMS
    if isinstance(names, str):
        names = [names]
    names = tuple(names)
    unknown = [nm for nm in names if nm not in TERMS]
    if unknown or not names or len(set(names)) != len(names):
        raise SurroflowError(f"term names must be distinct names of the library, one of {list(TERMS)}; "
                             f"got {list(names)}" + (f" (unknown: {unknown})" if unknown else ""))
    return names


def _check_terms(terms: Mapping[str, float], what: str) -> dict[str, float]:
    if not isinstance(terms, Mapping):
        raise SurroflowError(f"{what} must be a mapping {{term: coefficient}}, got {type(terms).__name__}")
    unknown = [nm for nm in terms if nm not in TERMS]
    if unknown:
        raise SurroflowError(f"{what}: unknown term(s) {unknown}; the library's terms are {list(TERMS)}")
    out = {}
    for nm, c in terms.items():
        if isinstance(c, bool) or not isinstance(c, Real) or not np.isfinite(c):
            raise SurroflowError(f"{what}[{nm!r}] must be a finite number, got {c!r}")
        out[nm] = float(c)
    return out


__all__ = ["DEFAULT_TERMS", "ESTIMATORS", "Refinement", "SparseFit", "TERMS", "corrected_step", "corrected_terms",
           "derivatives", "discover_model_error", "evaluate_terms", "fit_sparse", "model_error_data",
           "refine_model_error", "stlsq", "term_library"]

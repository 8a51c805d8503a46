"""The Lyapunov attributes of generated data: ``lyapunov_exponent``, ``lyapunov_time``, ``lyapunov_source``.

:func:`lyapunov_attrs` is duck-typed: a simulator with ``step``, ``tangent_step`` and
``random_states`` (the :class:`~surroflow.dynamics.lyapunov.TangentSystem` protocol) is treated
as chaotic.  Its ``published_exponent()`` (a fact of the system: a published value or the
user's ``lyapunov_exponent`` setting) is used when known; otherwise the leading exponent is
computed here by Benettin/QR, once per process and settings.  Anything else gets ``{}``.
Nothing here imports a simulator: the generate stage passes the simulator in.
"""
from __future__ import annotations

from typing import Any

from .. import SurroflowError
from .lyapunov import lyapunov_spectrum

#: averaging (t_total, qr_every) of a system without a ``lyapunov_averaging`` attribute; a system
#: declares its own (the pair that gives ~1-2% standard error with 8 trajectories)
DEFAULT_AVERAGING = (100.0, 1)
COMPUTED_SOURCE = "computed (Benettin/QR, surroflow.dynamics)"

_CACHE: dict[tuple, float] = {}


def is_chaotic(sim: Any) -> bool:
    """Whether ``sim`` provides the tangent dynamics (``step``, ``tangent_step``, ``random_states``)."""
    return all(callable(getattr(sim, a, None)) for a in ("step", "tangent_step", "random_states"))


def _key(sim: Any) -> tuple:
    settings = getattr(sim, "settings", None) or {}
    items = tuple(sorted((str(k), repr(v)) for k, v in settings.items()))
    return (type(sim).__module__, type(sim).__qualname__, items)


def computed_exponent(sim: Any) -> float:
    """The leading Lyapunov exponent of ``sim`` by Benettin/QR (cached per class and settings)."""
    key = _key(sim)
    if key not in _CACHE:
        t_total, qr_every = getattr(sim, "lyapunov_averaging", DEFAULT_AVERAGING)
        res = lyapunov_spectrum(sim, n_exponents=1, t_total=t_total, n_traj=8, qr_every=qr_every,
                                seed=12345)
        lam = float(res.exponents[0])
        if not lam > 0:
            settings = dict(getattr(sim, "settings", None) or {})
            raise SurroflowError(f"simulator {getattr(sim, 'name', type(sim).__name__)!r} with {settings}: "
                                 f"computed leading Lyapunov exponent {lam:.3g} is not positive "
                                 "(not chaotic); set 'lyapunov_exponent' explicitly")
        _CACHE[key] = lam
    return _CACHE[key]


def lyapunov_exponent(sim: Any) -> tuple[float, str]:
    """Leading exponent of a chaotic ``sim`` and its source (setting, published or computed)."""
    known = getattr(sim, "published_exponent", None)
    pub = known() if callable(known) else None
    if pub is not None:
        lam, source = pub
        return float(lam), str(source)
    return computed_exponent(sim), COMPUTED_SOURCE


def lyapunov_attrs(sim: Any) -> dict[str, Any]:
    """``{lyapunov_exponent, lyapunov_time, lyapunov_source}`` for a chaotic simulator, else ``{}``."""
    if not is_chaotic(sim):
        return {}
    lam, source = lyapunov_exponent(sim)
    return {"lyapunov_exponent": lam, "lyapunov_time": 1.0 / lam, "lyapunov_source": source}


__all__ = ["lyapunov_attrs", "lyapunov_exponent", "computed_exponent", "is_chaotic", "DEFAULT_AVERAGING"]

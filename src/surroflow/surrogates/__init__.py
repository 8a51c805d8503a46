"""Surrogate regressors and the estimator core shared with the forecasters.

* :mod:`.base`: the contract (:class:`Estimator`, :class:`Surrogate`; scikit-learn compatible);
* :mod:`.registry`: one registry for both families (``make_estimator``, ``check_estimator_params``,
  ``kinds``, the seeding rule);
* :mod:`.state`: one pickle-free NetCDF codec (``to_dataset``, ``from_dataset``, ``save``, ``load``);
* :mod:`.torch_utils`: network builder, seeding, device policy;
* regressors: :mod:`.gaussian_process`, :mod:`.rbf`, :mod:`.linear`, :mod:`.mlp` (each imports
  its heavy library at import, so that a timed ``fit`` never pays for it; the registry imports
  a model's module only when that kind is asked for);
* :mod:`.reduced`: :class:`~surroflow.surrogates.reduced.ReducedModel` (bases + regressor).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registry import check_estimator_params, estimator_class, make_estimator, register
from .registry import kinds as _kinds

if TYPE_CHECKING:
    from .base import Estimator, Surrogate


def __getattr__(name: str) -> Any:
    # the contract classes import scikit-learn (1-2 s): only code that uses them pays for it,
    # not the config validation that asks the registry about kinds and hyperparameters
    if name in ("Estimator", "Surrogate"):
        from . import base
        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_surrogate(kind: str, **hyperparameters: Any) -> "Surrogate":
    """A surrogate of ``kind`` (the registry's seeding rule applies: unset ``random_state`` = 0)."""
    return make_estimator(kind, hyperparameters, "surrogate")


def surrogate_class(kind: str) -> "type[Surrogate]":
    return estimator_class(kind, "surrogate")


def kinds() -> list[str]:
    """The surrogate kinds."""
    return _kinds("surrogate")


__all__ = ["Estimator", "Surrogate", "make_surrogate", "surrogate_class", "kinds", "make_estimator",
           "check_estimator_params", "register"]

"""One registry for every estimator family (surrogates and forecasters).

Built-in kinds are listed by import path and imported only when asked for (torch only for a
torch model); :func:`register` adds a class of one's own.  :func:`check_estimator_params`
names an unknown kind or hyperparameter and lists what is allowed, without importing heavy
modules (the config validation calls it before any job).  :func:`make_estimator` holds the one
seeding rule: a ``random_state`` the config leaves unset gets the study's seed (0 by default).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from typing import Any, Callable, Mapping, TypeVar

from .. import SurroflowError

FAMILIES = ("surrogate", "forecaster")

#: (family, kind) -> "module:Class"; imported on first use
_BUILTIN: dict[tuple[str, str], str] = {
    ("surrogate", "gaussian_process"): "surroflow.surrogates.gaussian_process:GaussianProcessSurrogate",
    ("surrogate", "rbf"): "surroflow.surrogates.rbf:RBFSurrogate",
    ("surrogate", "linear"): "surroflow.surrogates.linear:PolynomialRidgeSurrogate",
    ("surrogate", "mlp"): "surroflow.surrogates.mlp:MLPSurrogate",
    ("forecaster", "persistence"): "surroflow.forecast.baselines:Persistence",
    ("forecaster", "climatology"): "surroflow.forecast.baselines:Climatology",
    ("forecaster", "dmd"): "surroflow.forecast.linear:DMD",
    ("forecaster", "opinf"): "surroflow.forecast.linear:OpInf",
    ("forecaster", "ngrc"): "surroflow.forecast.reservoir:NGRC",
    ("forecaster", "rff"): "surroflow.forecast.reservoir:RandomFeatures",
    ("forecaster", "mlp_stepper"): "surroflow.forecast.neural:MLPStepper",
    ("forecaster", "node"): "surroflow.forecast.neural:NeuralODE",
    ("forecaster", "reduced"): "surroflow.forecast.reduced:Reduced",
}
_CLASSES: dict[tuple[str, str], type] = {}

T = TypeVar("T", bound=type)


def register(family: str, kind: str) -> Callable[[T], T]:
    """Class decorator: register an estimator class as ``kind`` of ``family``."""
    if family not in FAMILIES:
        raise SurroflowError(f"estimator family {family!r} is not allowed; allowed: {list(FAMILIES)}")

    def deco(cls: T) -> T:
        cls.family = family  # type: ignore[attr-defined]
        cls.kind = kind      # type: ignore[attr-defined]
        _CLASSES[(family, kind)] = cls
        return cls
    return deco


def kinds(family: str | None = None) -> list[str]:
    """Registered kinds of ``family`` (all families: ``None``), sorted."""
    keys = set(_BUILTIN) | set(_CLASSES)
    return sorted({k for f, k in keys if family is None or f == family})


def _key(kind: str, family: str | None, where: str | None) -> tuple[str, str]:
    if family is not None and family not in FAMILIES:
        raise SurroflowError(f"estimator family {family!r} is not allowed; allowed: {list(FAMILIES)}")
    keys = set(_BUILTIN) | set(_CLASSES)
    found = [(f, k) for f, k in keys if k == kind and (family is None or f == family)]
    if not found:
        what = f"{family} kind" if family else "estimator kind"
        prefix = f"{where}: " if where else ""
        raise SurroflowError(f"{prefix}unknown {what} {kind!r}; allowed: {kinds(family)}")
    if len(found) > 1:
        raise SurroflowError(f"estimator kind {kind!r} exists in several families {sorted(f for f, _ in found)}; "
                             "name the family")
    return found[0]


def estimator_class(kind: str, family: str | None = None) -> type:
    """The class registered as ``kind`` (imports its module)."""
    key = _key(kind, family, None)
    if key not in _CLASSES:
        module, _, attr = _BUILTIN[key].partition(":")
        cls = getattr(importlib.import_module(module), attr)
        _CLASSES.setdefault(key, cls)
    return _CLASSES[key]


def _init_names_from_source(path: str) -> list[str] | None:
    """``__init__`` argument names of ``module:Class`` read from its source (no import)."""
    module, _, attr = path.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    return [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)][1:]
    return None


def hyperparameter_names(kind: str, family: str | None = None) -> list[str]:
    """The hyperparameters (``__init__`` arguments) of ``kind``."""
    key = _key(kind, family, None)
    names = None
    if key not in _CLASSES and _BUILTIN[key].partition(":")[0] not in sys.modules:
        names = _init_names_from_source(_BUILTIN[key])
    if names is None:
        sig = inspect.signature(estimator_class(kind, key[0]).__init__)
        names = [p for p, v in sig.parameters.items()
                 if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
    return names


def check_estimator_params(kind: str, params: Mapping[str, Any] | None, family: str | None,
                           where: str) -> None:
    """A :class:`SurroflowError` naming ``where`` and the unknown kind or hyperparameter(s)."""
    key = _key(kind, family, where)
    allowed = hyperparameter_names(kind, key[0])
    unknown = sorted(set(params or {}) - set(allowed))
    if unknown:
        raise SurroflowError(f"{where}: unknown hyperparameter(s) {unknown} of {key[0]} kind {kind!r}; "
                             f"allowed: {sorted(allowed)}")


def make_estimator(kind: str, params: Mapping[str, Any] | None = None, family: str | None = None, *,
                   seed: int | None = 0, where: str | None = None) -> Any:
    """An (unfitted) estimator of ``kind`` with hyperparameters ``params``.

    The seeding rule: when the class takes a ``random_state`` and ``params`` leaves it unset,
    it gets ``seed`` (``None``: the class default).  Unknown kinds and hyperparameters are a
    :class:`SurroflowError` naming ``where`` (default: the family and kind).
    """
    key = _key(kind, family, where)
    where = where or f"{key[0]} {kind!r}"
    check_estimator_params(kind, params, key[0], where)
    p = dict(params or {})
    if seed is not None and "random_state" in hyperparameter_names(kind, key[0]) and "random_state" not in p:
        p["random_state"] = int(seed)
    return estimator_class(kind, key[0])(**p)


__all__ = ["FAMILIES", "register", "kinds", "estimator_class", "hyperparameter_names",
           "check_estimator_params", "make_estimator"]

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
import math
import re
import sys
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from .. import SurroflowError

FAMILIES = ("surrogate", "forecaster")

#: the surrogate every parametric study reports as its baseline (``config.add_linear_baselines``
#: adds it: kind ``linear``, degree 1, i.e. ridge regression of the reduced coefficients on the inputs)
LINEAR_BASELINE = "linear"

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
    ("forecaster", "sindy"): "surroflow.forecast.sindy:SINDy",
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
    node = _class_node(path)
    for item in (node.body if node is not None else []):
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


def _class_node(path: str) -> ast.ClassDef | None:
    """The ``class`` statement of ``module:Class`` read from its source (no import)."""
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
            return node
    return None


def _specs_from_source(path: str) -> dict[str, Any] | None:
    """The literal ``hyperparameter_specs`` of ``module:Class`` read from its source (no import)."""
    node = _class_node(path)
    if node is None:
        return None
    for item in node.body:
        target = None
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            target, value = item.target.id, item.value
        elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
            target, value = item.targets[0].id, item.value
        if target == "hyperparameter_specs" and value is not None:
            return dict(ast.literal_eval(value))
    return {}


def hyperparameter_specs(kind: str, family: str | None = None) -> dict[str, Any]:
    """The declared value spec of each hyperparameter of ``kind`` (its class's literal
    ``hyperparameter_specs``; see :func:`check_value`), read without importing its module."""
    key = _key(kind, family, None)
    if key not in _CLASSES and _BUILTIN[key].partition(":")[0] not in sys.modules:
        specs = _specs_from_source(_BUILTIN[key])
        if specs is not None:
            return specs
    return dict(getattr(estimator_class(kind, key[0]), "hyperparameter_specs", {}) or {})


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            and math.isfinite(float(v)))


_BOUND = re.compile(r"^(int|float|ints)(?:(>=|>|<=|<)(-?[0-9.e+-]+))?(?:\[([^,]+),([^)\]]+)([)\]]))?$")


def check_value(spec: Any, value: Any) -> bool:
    """Whether ``value`` satisfies ``spec``: a list of allowed values, or a string of
    ``|``-separated alternatives, each ``None``, ``bool``, ``str``, ``mapping``, ``int``/``float``
    with an optional bound (``int>=1``, ``float>0``) or interval (``float[0,1)``), or ``ints>=1``
    (a non-empty list of such integers)."""
    if isinstance(spec, (list, tuple)):
        return any(value == v and type(value) is type(v) for v in spec)
    for alt in str(spec).split("|"):
        alt = alt.strip()
        if alt == "None":
            if value is None:
                return True
            continue
        if alt == "bool":
            if isinstance(value, (bool, np.bool_)):
                return True
            continue
        if alt == "str":
            if isinstance(value, str) and value:
                return True
            continue
        if alt == "mapping":
            if isinstance(value, Mapping):
                return True
            continue
        m = _BOUND.match(alt)
        if m is None:
            raise ValueError(f"hyperparameter spec {spec!r}: cannot read {alt!r}")
        base, op, bound, lo, hi, close = m.groups()
        items = value if base == "ints" else [value]
        if base == "ints" and (not isinstance(value, (list, tuple)) or not value):
            continue
        ok_type = _is_int if base in ("int", "ints") else _is_number
        if not all(ok_type(v) for v in items):
            continue
        ok = True
        for v in map(float, items):
            if op is not None:
                b = float(bound)
                ok &= {">=": v >= b, ">": v > b, "<=": v <= b, "<": v < b}[op]
            if lo is not None:
                ok &= float(lo) <= v and (v <= float(hi) if close == "]" else v < float(hi))
        if ok:
            return True
    return False


def describe_spec(spec: Any) -> str:
    """``spec`` in words, for an error message."""
    if isinstance(spec, (list, tuple)):
        return f"one of {list(spec)}"
    words = {"None": "null", "bool": "true or false", "str": "a non-empty string", "mapping": "a mapping"}
    out = []
    for alt in str(spec).split("|"):
        alt = alt.strip()
        if alt in words:
            out.append(words[alt])
            continue
        m = _BOUND.match(alt)
        base, op, bound, lo, hi, close = m.groups() if m else (alt, None, None, None, None, None)
        noun = {"int": "an integer", "float": "a finite number",
                "ints": "a non-empty list of integers"}.get(base, base)
        if op is not None:
            noun += f" {op} {bound}"
        if lo is not None:
            noun += f" in [{lo}, {hi}{close}"
        out.append(noun)
    return " or ".join(out)


def estimator_param_problems(kind: str, params: Mapping[str, Any] | None, family: str | None,
                             where: str) -> list[str]:
    """Every problem of ``params`` for ``kind``, one sentence each naming ``where``: an unknown
    kind, unknown hyperparameters, or values that break the class's ``hyperparameter_specs``.
    Imports no heavy module (the config validation calls it before any job)."""
    try:
        key = _key(kind, family, where)
    except SurroflowError as exc:
        return [str(exc)]
    allowed = hyperparameter_names(kind, key[0])
    unknown = sorted(set(params or {}) - set(allowed))
    if unknown:
        return [f"{where}: unknown hyperparameter(s) {unknown} of {key[0]} kind {kind!r}; "
                f"allowed: {sorted(allowed)}"]
    specs = hyperparameter_specs(kind, key[0])
    return [f"{where}.params.{name}: {value!r} is not allowed for {key[0]} kind {kind!r}; "
            f"expected {describe_spec(specs[name])}"
            for name, value in (params or {}).items() if name in specs and not check_value(specs[name], value)]


def check_estimator_params(kind: str, params: Mapping[str, Any] | None, family: str | None,
                           where: str) -> None:
    """A :class:`SurroflowError` with the :func:`estimator_param_problems` of ``params`` (the
    same check the config validation runs before any job, run again when a model is built)."""
    problems = estimator_param_problems(kind, params, family, where)
    if problems:
        raise SurroflowError("; ".join(problems))


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


__all__ = ["FAMILIES", "LINEAR_BASELINE", "register", "kinds", "estimator_class", "hyperparameter_names",
           "hyperparameter_specs", "check_value", "describe_spec", "estimator_param_problems",
           "check_estimator_params", "make_estimator"]

"""Registry of high-fidelity simulators.

A simulator name resolves, in this order, to

1. a class registered in this process with :func:`register` (a :class:`Simulator` subclass) or
   :func:`register_function` (a plain Python function);
2. a built-in simulator (registered lazily by ``"module:Class"`` so that importing the registry
   does not import torch, meshio or a solver adapter);
3. ``python:package.module:Class``: imported from ``sys.path`` (``PYTHONPATH``) and run;
4. a *plugged-in* simulator: an installed distribution that declares an entry point in the
   group :data:`ENTRY_POINT_GROUP` (``surroflow.simulators``), entry-point name = simulator
   name, value = ``module:Class``.  Entry points are listed from the installed metadata; the
   module is imported only when that simulator is used.  A built-in name cannot be taken over:
   asking for it while an entry point of the same name is installed is an error naming both.

``python:`` and plugged-in simulators import code (a config is code, see docs/security.md):
safe mode (:mod:`surroflow.safety`) refuses both, before importing anything.

:func:`describe` reads what a simulator declares (parameters, outputs and settings, the latter
from ``__init__``'s signature, ``setting_defaults`` and the checks its constructor makes) for
``python -m surroflow simulators``.

Layout: ``base.py`` (the interface), one module per simulator family (``burgers``,
``advection``, ``calculix``, ``files``, ``chaos/`` with one file per system), ``process.py``
(the process runner behind external programs) and ``external.py`` (the ``external``
simulator).  Result-file readers live in :mod:`surroflow.readers`.  Simulators import nothing
from the layers above them (reduction, dynamics, surrogates, evaluation, stages).
"""
from __future__ import annotations

import importlib
import inspect
import math
from importlib import metadata
from typing import Any, Callable, Mapping

from .. import SurroflowError
from ..safety import safe_mode_enabled
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, SimulatorUnavailable,
                   recording_settings)

#: the entry-point group through which installed packages plug in simulators
ENTRY_POINT_GROUP = "surroflow.simulators"

_BUILTIN: dict[str, str] = {
    "burgers": "surroflow.simulators.burgers:Burgers1D",
    "advection_diffusion": "surroflow.simulators.advection:AdvectionDiffusion1D",
    "ishigami": "surroflow.simulators.ishigami:Ishigami",
    "lorenz63": "surroflow.simulators.chaos.lorenz63:Lorenz63",
    "lorenz96": "surroflow.simulators.chaos.lorenz96:Lorenz96",
    "kuramoto_sivashinsky": "surroflow.simulators.chaos.kuramoto_sivashinsky:KuramotoSivashinsky",
    "calculix_plate": "surroflow.simulators.calculix:CalculixPlate",
    "external": "surroflow.simulators.external:ExternalCommand",
    "files": "surroflow.simulators.files:FilesSource",
    "stochastic_ebm": "surroflow.simulators.energy_balance:StochasticEnergyBalance",
    "flaky_burgers": "surroflow.simulators.testing:FlakyBurgers",
}
_REGISTRY: dict[str, type[Simulator]] = {}


class UnknownSimulator(KeyError):
    """No simulator of that name (a ``KeyError`` whose text is the plain sentence)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register(cls: type[Simulator]) -> type[Simulator]:
    """Register a simulator class under ``cls.name`` (usable as a decorator).

    The registry lives in this process: a workflow job finds the class only if its module is
    imported there too (name it ``python:module:Class`` or plug it in by entry point)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no 'name'")
    _REGISTRY[cls.name] = cls
    return cls


def _load(spec: str) -> type[Simulator]:
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise TypeError(f"{spec} is not a surroflow Simulator subclass")
    return cls


# --------------------------------------------------------------------------- entry points
def _entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """The installed entry points of :data:`ENTRY_POINT_GROUP` by name (read from the
    distributions' metadata; nothing is imported)."""
    out: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, []).append(ep)
    return out


def _describe_entry_point(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f" of distribution {dist.metadata['Name']!r}" if dist is not None else ""
    return f"entry point '{ep.name} = {ep.value}'{where} (group {ENTRY_POINT_GROUP!r})"


def _load_entry_point(name: str, eps: list[metadata.EntryPoint]) -> type[Simulator]:
    if len(eps) > 1:
        raise SurroflowError(f"simulator {name!r} is plugged in twice: "
                             f"{'; '.join(_describe_entry_point(e) for e in eps)}; uninstall one")
    [ep] = eps
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import error of a plug-in is one sentence
        raise SurroflowError(f"simulator {name!r}: the {_describe_entry_point(ep)} cannot be loaded "
                             f"({type(exc).__name__}: {exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise SurroflowError(f"simulator {name!r}: the {_describe_entry_point(ep)} names {cls!r}, "
                             "not a subclass of surroflow.simulators.base.Simulator")
    if cls.name != name:
        raise SurroflowError(f"simulator {name!r}: the {_describe_entry_point(ep)} names class "
                             f"{cls.__qualname__}, whose 'name' is {cls.name!r}; make the two equal")
    return cls


# --------------------------------------------------------------------------- look-up
def _trusted() -> list[str]:
    """The names safe mode allows: built-in and registered in this process."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def available() -> list[str]:
    """Every simulator name: registered, built in and plugged in (entry points, not imported)."""
    return sorted(set(_trusted()) | set(_entry_points()))


def simulator_class(name: str) -> type[Simulator]:
    """The class of ``name`` (see the module docstring for the order of look-up).

    ``python:`` and plugged-in simulators are imported on first use; safe mode refuses them
    with a :class:`SurroflowError` before importing anything.  A plug-in that fails to load,
    or whose name is a built-in one, is a :class:`SurroflowError` naming its distribution and
    entry point.  Unknown names raise :class:`UnknownSimulator` (a ``KeyError``)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    safe = safe_mode_enabled()
    if name in _BUILTIN:
        clash = [] if safe else _entry_points().get(name, [])
        if clash:
            raise SurroflowError(f"simulator {name!r} is built in, and the "
                                 f"{'; '.join(_describe_entry_point(e) for e in clash)} plugs in "
                                 "another one under the same name; a built-in name cannot be taken "
                                 "over: rename the entry point (or uninstall its distribution)")
        return _load(_BUILTIN[name])
    if name.startswith("python:"):
        if safe:
            raise SurroflowError(f"simulator {name!r} imports code; safe mode allows only registered "
                                 f"simulators: {_trusted()}")
        return _load(name[len("python:"):])
    eps = _entry_points().get(name)
    if eps:
        if safe:
            raise SurroflowError(f"simulator {name!r} is plugged in by the "
                                 f"{'; '.join(_describe_entry_point(e) for e in eps)} and imports "
                                 "code; safe mode allows only registered simulators (no python: or "
                                 f"entry-point plug-ins): {_trusted()}")
        return _load_entry_point(name, eps)
    raise UnknownSimulator(f"unknown simulator {name!r}; allowed: {available()}, "
                           "'python:package.module:Class' (a Simulator subclass importable from "
                           "PYTHONPATH) or the name of an installed plug-in (an entry point in the "
                           f"group {ENTRY_POINT_GROUP!r})")


def get_simulator(name: str, **settings: Any) -> Simulator:
    """Instantiate the simulator ``name`` with its fixed ``settings``."""
    return simulator_class(name)(**settings)


def register_function(name: str, fn: Callable[..., dict], parameters: list[Parameter],
                      outputs: list[OutputVariable], coordinates: dict[str, Coordinate],
                      time_dim: str | None = "time") -> type[Simulator]:
    """Wrap a plain function ``fn(**params) -> {variable: array}`` as a registered simulator."""

    class _FunctionSimulator(Simulator):
        def parameters(self):  # type: ignore[override]
            return parameters

        def outputs(self):  # type: ignore[override]
            return outputs

        def coordinates(self):  # type: ignore[override]
            return coordinates

        def run_sample(self, params):  # type: ignore[override]
            return fn(**params, **self.settings)

    _FunctionSimulator.name = name
    _FunctionSimulator.time_dim = time_dim
    _FunctionSimulator.__qualname__ = f"FunctionSimulator[{name}]"
    return register(_FunctionSimulator)


# --------------------------------------------------------------------------- describing
class _Probe:
    """A value no setting accepts: passed once for a setting whose default (null) skips its
    check, so that the constructor's :func:`check_setting` call says the setting's type."""

    def __repr__(self) -> str:
        return "<probe>"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)          # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _first_line(text: str) -> str:
    return " ".join(str(text).strip().splitlines()[0].split()) if str(text).strip() else ""


def _type_name(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


_VALUE_TYPES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (Mapping, "mapping"),
                (list, "list"), (tuple, "list"))


def _origin(name: str, cls: type[Simulator]) -> dict[str, Any]:
    spec = f"{cls.__module__}:{cls.__qualname__}"
    if name in _REGISTRY:
        return {"origin": "registered", "class": spec}
    if name in _BUILTIN:
        return {"origin": "built-in", "class": spec}
    if name.startswith("python:"):
        return {"origin": "python", "class": spec}
    out: dict[str, Any] = {"origin": "entry-point", "class": spec}
    for ep in _entry_points().get(name, [])[:1]:
        dist = getattr(ep, "dist", None)
        out["entry_point"] = f"{ep.name} = {ep.value}"
        if dist is not None:
            out["distribution"] = f"{dist.metadata['Name']} {dist.version}"
    return out


def _construct(cls: type[Simulator], **settings: Any) -> tuple[Simulator | None, Any, str | None]:
    """``(instance or None, the settings record, why it failed)``."""
    with recording_settings() as record:
        try:
            return cls(**settings), record, None
        except SimulatorUnavailable as exc:
            return None, record, f"cannot run on this machine: {_first_line(str(exc))}"
        except Exception as exc:  # noqa: BLE001 - describing never stops at one simulator
            return None, record, f"cannot be built without settings: {_first_line(str(exc))}"


def _declarations(cls: type[Simulator], sim: Simulator | None, why: str | None
                  ) -> tuple[list[dict] | None, list[dict] | None, list[str]]:
    """Parameters and outputs as declared by ``sim``; without an instance, by the class on its
    own (declarations that do not read the settings), else None with the reason in the notes."""
    notes: list[str] = []

    def declared(method: str) -> Any:
        target: Any = sim if sim is not None else object.__new__(cls)
        return getattr(target, method)()

    try:
        params = [{"name": p.name, "low": _jsonable(p.low), "high": _jsonable(p.high), "units": p.units,
                   "log_scale": bool(p.log_scale), "long_name": p.long_name} for p in declared("parameters")]
    except Exception as exc:  # noqa: BLE001 - e.g. an attribute that only the settings set
        params = None
        if why is None:              # else the reason it could not be built says why
            notes.append(f"parameters: not declared ({type(exc).__name__}: {exc})")
    try:
        outputs = [{"name": v.name, "dims": list(v.dims), "units": v.units, "long_name": v.long_name}
                   for v in declared("outputs")]
    except Exception as exc:  # noqa: BLE001
        outputs = None
        if why is None:
            notes.append(f"outputs: not declared ({type(exc).__name__}: {exc})")
    return params, outputs, notes


def _settings(cls: type[Simulator], sim: Simulator | None, record: Any, why: str | None
              ) -> tuple[list[dict] | None, list[str]]:
    """Every setting ``{name, type, nullable, allowed, default, required}`` that the class
    declares: keyword arguments of ``__init__`` (with annotations), ``setting_defaults``,
    ``SETTINGS`` (objects with ``default``/``kind``), the names given to
    ``check_unknown_settings``, and the :func:`~surroflow.simulators.base.check_setting` calls
    of a construction with no settings (their values are the defaults)."""
    notes: list[str] = []
    names: list[str] = []
    complete = False
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    types: dict[str, str] = {}
    nullable: dict[str, bool] = {}

    def add(key: str) -> None:
        if key not in names:
            names.append(key)

    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        params = list(sig.parameters.values())[1:]           # without self
        complete = not any(p.kind is p.VAR_KEYWORD for p in params)
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                continue
            add(p.name)
            if p.default is p.empty:
                required.add(p.name)
            else:
                defaults[p.name] = p.default
            t = _type_name(p.annotation)
            if t:
                types[p.name] = t
    declared = getattr(cls, "setting_defaults", None)
    if isinstance(declared, Mapping):
        complete = True
        for key, value in declared.items():
            add(str(key))
            defaults.setdefault(str(key), value)
    spec = getattr(cls, "SETTINGS", None)
    if isinstance(spec, Mapping):
        for key, s in spec.items():
            add(str(key))
            if getattr(s, "default", None) is not None:
                defaults.setdefault(str(key), s.default)
            if isinstance(getattr(s, "kind", None), type):
                types.setdefault(str(key), s.kind.__name__)
            if isinstance(getattr(s, "nullable", None), bool):
                nullable.setdefault(str(key), s.nullable)
    if sim is not None and isinstance(getattr(sim, "settings", None), Mapping):
        for key, value in sim.settings.items():
            add(str(key))
            defaults.setdefault(str(key), value)
    if record.allowed is not None:
        complete = True
        for key in record.allowed:
            add(key)
    checks = {k: c for k, c in record.checks.items() if k.isidentifier()}
    for key, c in list(checks.items()):
        # a checked key outside the declared list is no setting (e.g. a helper's own argument);
        # without a declared list, it is one if the constructor accepts it (the same outcome)
        if key not in names and (complete or _construct(cls, **{key: c["value"]})[2] != why):
            del checks[key]
            continue
        add(key)
        defaults.setdefault(key, c["value"])
    # a setting whose default (null) skipped its check: construct once more with a probe value
    if sim is not None:
        for key in names:
            if key not in checks and key not in types and key in defaults and defaults[key] is None:
                _, rec, _ = _construct(cls, **{key: _Probe()})
                if key in rec.checks:
                    checks[key] = {**rec.checks[key], "value": None}
    out = []
    for key in names:
        c = checks.get(key)
        if c is not None:
            kind, allowed, null = c["kind"], c["allowed"], bool(c["nullable"])
        else:
            kind, allowed, null = types.get(key), None, nullable.get(key)
            if kind is None and defaults.get(key) is not None:
                kind = next((t for base, t in _VALUE_TYPES if isinstance(defaults[key], base)), None)
        if key in defaults and defaults[key] is None and not null:
            null = True if kind is not None else None   # a null default is accepted
        known = key in defaults or key in required
        out.append({"name": key, "type": kind, "nullable": null, "allowed": allowed,
                    "default": _jsonable(defaults.get(key)),
                    "required": (key in required) if known else None})
    def which(keys: list[str]) -> str:
        return "all settings" if len(keys) == len(out) else str(keys)

    unknown = [s["name"] for s in out if s["type"] is None]
    if unknown:
        notes.append(f"settings: the type of {which(unknown)} is not declared (no annotation, no "
                     "check_setting call when built without settings); see the class docstring")
    nodefault = [s["name"] for s in out if s["required"] is None]
    if nodefault:
        notes.append(f"settings: the default of {which(nodefault)} is not declared; see the class docstring")
    if not complete:
        notes.append(("settings: the list may be incomplete" if out else "settings: not declared")
                     + ": the class names them neither as keyword arguments of __init__, nor in "
                     "setting_defaults, nor through check_unknown_settings; see the class docstring")
    return (out if out or complete else None), notes


def describe(name: str) -> dict[str, Any]:
    """What simulator ``name`` declares, as JSON-ready data: ``name``, ``origin`` (built-in,
    registered, python, entry-point), ``class``, ``summary``, ``tasks``, ``time_dim``,
    ``parameters`` (name, low, high, units, log_scale, long_name), ``outputs`` (name, dims,
    units, long_name), ``settings`` (name, type, nullable, allowed, default, required; None for
    what the class does not say) and ``notes`` (why a part is unknown).  The simulator is built
    once with no settings; one that needs settings, or cannot run here, is still described.  A
    simulator that cannot be loaded gives ``{name, error}``.  Never raises."""
    try:
        cls = simulator_class(name)
    except Exception as exc:  # noqa: BLE001 - a listing must not stop at one broken plug-in
        return {"name": name, "error": str(exc)}
    sim, record, why = _construct(cls)
    params, outputs, notes = _declarations(cls, sim, why)
    settings, more = _settings(cls, sim, record, why)
    if why:
        notes.insert(0, why)
    return {"name": name, **_origin(name, cls), "summary": _first_line(cls.__doc__ or ""),
            "tasks": list(cls.tasks), "time_dim": getattr(sim, "time_dim", cls.time_dim),
            "parameters": params, "outputs": outputs, "settings": settings, "notes": notes + more}


__all__ = ["ENTRY_POINT_GROUP", "SimulatorUnavailable", "UnknownSimulator", "Coordinate", "OutputVariable",
           "Parameter", "SampleFailure", "Simulator", "register", "register_function", "get_simulator",
           "simulator_class", "available", "describe"]

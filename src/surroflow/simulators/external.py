"""The ``external`` simulator: any program that reads a text input and writes result files.

:class:`ExternalCommand` turns its settings into declarations (parameters, outputs,
coordinates) and runs each sample through :class:`~surroflow.simulators.process.CommandRunner`
(render the template with numbers only, run the program with an argument list in its own
working directory with a timeout and retries, keep the log) and a registered reader
(:mod:`surroflow.readers`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import SurroflowError
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, collect_outputs)
from .process import CommandRunner, check_names, default_workdir_root, format_value

_SETTINGS = {"command", "template", "input_name", "reader", "parameters", "outputs", "coordinates",
             "constants", "files", "workdir_root", "timeout_s", "retries", "keep_workdirs", "env",
             "time_dim"}


class ExternalCommand(Simulator):
    """Any program that reads a text input and writes result files (``name: external``).

    Settings (unknown keys are refused):

    ``command``
        list of strings, e.g. ``[ccx, -i, "{jobname}"]``.
    ``template``
        path of the input template (``$name`` placeholders: parameters and ``constants``).
    ``input_name``
        file name of the rendered input (default: the template's file name).
    ``reader``
        a registered result reader (``frd``, ``netcdf``, ``meshio`` or your own).
    ``parameters``
        ``{name: {low, high, units, long_name, log_scale, default}}``; ``default`` is used when a
        design does not vary the parameter.
    ``outputs``
        ``{name: {dims: [...], units, long_name}}``; dims exclude ``sample``.
    ``coordinates``
        ``{dim: {values: [...]} | {size: n}}`` plus ``units``/``long_name``, for every output dim.
    ``constants``
        fixed numbers for the template.
    ``files``
        static files copied into every working directory.
    ``workdir_root``, ``timeout_s`` (600), ``retries`` (0), ``keep_workdirs`` (failed), ``env``,
    ``time_dim`` (null)
        see :class:`CommandRunner`.
    """

    name = "external"
    time_dim = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise SurroflowError(f"simulator.settings: unknown key(s) {unknown}; allowed: {sorted(_SETTINGS)}")
        for key in ("command", "template", "reader", "parameters", "outputs"):
            if key not in settings:
                raise SurroflowError(f"simulator.settings.{key}: required for the external simulator")
        template = Path(settings["template"])
        if not template.is_file():
            raise SurroflowError(f"simulator.settings.template: {template} not found")
        self._parameters, self.parameter_defaults = _parse_parameters(settings["parameters"])
        self._outputs = _parse_outputs(settings["outputs"])
        self._coordinates = _parse_coordinates(settings.get("coordinates") or {})
        for var in self._outputs:
            for d in var.dims:
                if d not in self._coordinates:
                    raise SurroflowError(f"simulator.settings.coordinates: no entry for dimension "
                                         f"{d!r} of output {var.name!r}")
        self.constants = dict(settings.get("constants") or {})
        check_names(list(self.constants), "simulator.settings.constants")
        for k, v in self.constants.items():
            try:
                format_value(k, v)
            except SampleFailure as exc:
                raise SurroflowError(f"simulator.settings.constants.{k}: {exc.reason}") from None
        clash = sorted(set(self.constants) & {p.name for p in self._parameters})
        if clash:
            raise SurroflowError(f"simulator.settings.constants: {clash} are also parameters")
        td = settings.get("time_dim")
        if td is not None and not any(td in v.dims for v in self._outputs):
            raise SurroflowError(f"simulator.settings.time_dim={td!r}: not a dimension of any output")
        self.time_dim = td  # type: ignore[misc]
        files = {Path(f).name: Path(f) for f in settings.get("files") or []}
        self.runner = CommandRunner(
            settings["command"], template.read_text(),
            settings.get("input_name") or template.name, settings["reader"],
            settings.get("workdir_root") or default_workdir_root(),
            timeout_s=settings.get("timeout_s", 600.0), retries=settings.get("retries", 0),
            keep_workdirs=settings.get("keep_workdirs", "failed"), files=files,
            env=settings.get("env"),
            install_hint="install it, or give its absolute path as the first item of "
                         "simulator.settings.command")
        unknown_ph = sorted(set(self.runner.placeholders) - {p.name for p in self._parameters}
                            - set(self.constants))
        if unknown_ph:
            raise SurroflowError(f"{template}: placeholders {unknown_ph} are neither parameters "
                                 "nor constants")

    def parameters(self) -> list[Parameter]:
        return list(self._parameters)

    def outputs(self) -> list[OutputVariable]:
        return list(self._outputs)

    def coordinates(self) -> dict[str, Coordinate]:
        return dict(self._coordinates)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Template values of a design point; parameters not varied take their ``default``."""
        names = [p.name for p in self._parameters]
        full = {**self.parameter_defaults, **params}
        extra = sorted(map(str, set(params) - set(names)))
        missing = [n for n in names if n not in full]
        if extra or missing:
            raise SampleFailure(f"parameters: unknown {extra}, missing {missing} (no default); "
                                f"expected {names}", "failed")
        return {**self.constants, **{n: full[n] for n in names}}

    def run_sample(self, params: Mapping[str, Any], sample_id: str | None = None) -> dict[str, np.ndarray]:
        raw = self.runner.run(self.check_params(params), sample_id)
        return collect_outputs(raw, self._outputs, {v.name: self.output_shape(v) for v in self._outputs},
                               where=f"reader {self.runner.reader_name!r}")


def _parse_parameters(spec: Any) -> tuple[list[Parameter], dict[str, float]]:
    if not isinstance(spec, Mapping) or not spec:
        raise SurroflowError("simulator.settings.parameters: a non-empty mapping name -> {low, high, ...}")
    check_names(list(spec), "simulator.settings.parameters")
    out, defaults = [], {}
    for name, p in spec.items():
        p = dict(p or {})
        bad = sorted(set(p) - {"low", "high", "units", "long_name", "log_scale", "default"})
        if bad or "low" not in p or "high" not in p:
            raise SurroflowError(f"simulator.settings.parameters.{name}: needs low and high; "
                                 f"unknown keys {bad}")
        try:
            out.append(Parameter(name, float(p["low"]), float(p["high"]), str(p.get("units", "1")),
                                 str(p.get("long_name", name)), bool(p.get("log_scale", False))))
        except (TypeError, ValueError) as exc:
            raise SurroflowError(f"simulator.settings.parameters.{name}: {exc}") from None
        if "default" in p:
            try:
                format_value(name, p["default"])
            except SampleFailure as exc:
                raise SurroflowError(f"simulator.settings.parameters.{name}.default: {exc.reason}") from None
            defaults[name] = float(p["default"])
    return out, defaults


def _parse_outputs(spec: Any) -> list[OutputVariable]:
    if not isinstance(spec, Mapping) or not spec:
        raise SurroflowError("simulator.settings.outputs: a non-empty mapping name -> {dims, units, long_name}")
    check_names(list(spec), "simulator.settings.outputs")
    out = []
    for name, o in spec.items():
        o = dict(o or {})
        bad = sorted(set(o) - {"dims", "units", "long_name"})
        if bad or not isinstance(o.get("dims"), (list, tuple)):
            raise SurroflowError(f"simulator.settings.outputs.{name}: needs dims (a list); unknown keys {bad}")
        out.append(OutputVariable(name, tuple(map(str, o["dims"])), str(o.get("units", "1")),
                                  str(o.get("long_name", name))))
    return out


def _parse_coordinates(spec: Mapping[str, Any]) -> dict[str, Coordinate]:
    out = {}
    for dim, c in spec.items():
        c = dict(c or {})
        bad = sorted(set(c) - {"values", "size", "units", "long_name"})
        if bad or (("values" in c) == ("size" in c)):
            raise SurroflowError(f"simulator.settings.coordinates.{dim}: give exactly one of values "
                                 f"or size; unknown keys {bad}")
        values = np.asarray(c["values"]) if "values" in c else np.arange(int(c["size"]))
        if values.ndim != 1 or values.size == 0:
            raise SurroflowError(f"simulator.settings.coordinates.{dim}: a non-empty 1D list is required")
        out[str(dim)] = Coordinate((str(dim),), values, str(c.get("units", "1")),
                                   str(c.get("long_name", dim)))
    return out


__all__ = ["ExternalCommand"]

"""The ``external`` simulator: any program that reads a text input and writes result files.

:class:`ExternalCommand` turns its settings into declarations (parameters, outputs,
coordinates) and runs each sample through :class:`~surroflow.simulators.process.CommandRunner`
(render the template with numbers only, run the program with an argument list in its own
working directory with a timeout and retries, keep the log) and a registered reader
(:mod:`surroflow.readers`).
"""
from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any, Mapping

import numpy as np

from .. import SurroflowError
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting,
                   check_unknown_settings, collect_outputs, setting_error)
from .process import KEEP_CHOICES, CommandRunner, check_names

_SETTINGS = {"command", "template", "input_name", "reader", "parameters", "outputs", "coordinates",
             "constants", "files", "workdir_root", "timeout_s", "retries", "keep_workdirs", "env",
             "time_dim"}


class ExternalCommand(Simulator):
    """Any program that reads a text input and writes result files (``name: external``).

    Settings (unknown keys are refused):

    ``command``
        list of strings, e.g. ``[ccx, -i, "{jobname}"]``; any program (a config is code: see
        docs/security.md); in safe mode only an allow-listed one.
    ``template``
        path of the input template (``$name`` placeholders: parameters and ``constants``).
    ``input_name``
        file name of the rendered input (default: the template's file name).
    ``reader``
        a registered result reader (``frd``, ``netcdf``, ``meshio`` or your own), or
        ``python:module:function`` (refused in safe mode).
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
        # every setting is checked here, before the program is looked for, so that `validate`
        # (which constructs the simulator) and the run refuse the same things with the same
        # sentence: `simulator.settings.<key>: expected ..., got ...`
        check_unknown_settings(self.name, settings, _SETTINGS)
        for key in ("command", "template", "reader", "parameters", "outputs"):
            if key not in settings:
                raise SurroflowError(f"simulator.settings.{key}: required for the external simulator")
        template = Path(check_setting("template", settings["template"], "path"))
        input_name = check_setting("input_name", settings.get("input_name"), "str", nullable=True)
        reader = check_setting("reader", settings["reader"], "str")
        workdir_root = check_setting("workdir_root", settings.get("workdir_root"), "path", nullable=True)
        timeout_s = check_setting("timeout_s", settings.get("timeout_s", 600.0), "float",
                                  exclusive_minimum=0, nullable=True)
        retries = check_setting("retries", settings.get("retries", 0), "int", minimum=0)
        keep = check_setting("keep_workdirs", settings.get("keep_workdirs", "failed"), "choice",
                             choices=KEEP_CHOICES)
        env = settings.get("env")
        if env is not None and not isinstance(env, Mapping):
            raise setting_error("env", "a mapping of environment variable names to strings", env)
        td = check_setting("time_dim", settings.get("time_dim"), "str", nullable=True)
        files_spec = settings.get("files")
        if files_spec is not None and (isinstance(files_spec, str) or not isinstance(files_spec, (list, tuple))):
            raise setting_error("files", "a list of paths of static files", files_spec)
        files: dict[str, Path] = {}
        for k, f in enumerate(files_spec or []):
            path = Path(check_setting(f"files[{k}]", f, "path"))
            if path.name in files:
                raise SurroflowError(f"simulator.settings.files[{k}]: {f!r} has the file name {path.name!r} "
                                     "of an earlier entry; the names in a working folder must differ")
            if not path.is_file():
                raise SurroflowError(f"simulator.settings.files[{k}]: {f!r} is not a file")
            files[path.name] = path
        constants = settings.get("constants")
        if constants is not None and not isinstance(constants, Mapping):
            raise setting_error("constants", "a mapping of names to numbers", constants)
        coordinates = settings.get("coordinates")
        if coordinates is not None and not isinstance(coordinates, Mapping):
            raise setting_error("coordinates", "a mapping dim -> {values: [...]} or {size: n}", coordinates)
        if not template.is_file():
            raise SurroflowError(f"simulator.settings.template: {str(template)!r} not found")
        self._parameters, self.parameter_defaults = _parse_parameters(settings["parameters"])
        self._outputs = _parse_outputs(settings["outputs"])
        self._coordinates = _parse_coordinates(coordinates or {})
        for var in self._outputs:
            for d in var.dims:
                if d not in self._coordinates:
                    raise SurroflowError(f"simulator.settings.coordinates: no entry for dimension "
                                         f"{d!r} of output {var.name!r}")
        self.constants = dict(constants or {})
        check_names(list(self.constants), "simulator.settings.constants")
        for k, v in self.constants.items():
            check_setting(f"constants.{k}", v, "float")     # numbers only reach the input file
        clash = sorted(set(self.constants) & {p.name for p in self._parameters})
        if clash:
            raise SurroflowError(f"simulator.settings.constants: {clash} are also parameters")
        if td is not None and not any(td in v.dims for v in self._outputs):
            raise SurroflowError(f"simulator.settings.time_dim: {td!r} is not a dimension of any output; "
                                 f"allowed: {sorted({d for v in self._outputs for d in v.dims})} or null")
        self.time_dim = td  # type: ignore[misc]
        try:
            template_text = template.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SurroflowError(f"simulator.settings.template: cannot read {str(template)!r} ({exc})") from None
        tpl = Template(template_text)       # (an invalid one: the runner's sentence below)
        unknown_ph = sorted(set(tpl.get_identifiers()) - {p.name for p in self._parameters}
                            - set(self.constants)) if tpl.is_valid() else []
        if unknown_ph:                      # before the program's look-up, like every check
            raise SurroflowError(f"simulator.settings.template: {str(template)!r} has placeholders "
                                 f"{unknown_ph} that are neither parameters nor constants")
        self.runner = CommandRunner(
            settings["command"], template_text, input_name or template.name, reader,
            workdir_root,                             # None: the private per-user default
            timeout_s=timeout_s, retries=retries, keep_workdirs=keep, files=files, env=env,
            install_hint="install it, or give its absolute path as the first item of "
                         "simulator.settings.command")

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


def _entry(spec: Any, key: str, allowed: str) -> dict[str, Any]:
    """One entry of ``parameters``/``outputs``/``coordinates``: a mapping (null: empty)."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise setting_error(key, allowed, spec)
    return dict(spec)


def _text(key: str, value: Any, default: str) -> str:
    """An optional ``units``/``long_name`` string."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise setting_error(key, "a string", value)
    return value


def _parse_parameters(spec: Any) -> tuple[list[Parameter], dict[str, float]]:
    if not isinstance(spec, Mapping) or not spec:
        raise setting_error("parameters", "a non-empty mapping name -> {low, high, ...}", spec)
    check_names(list(spec), "simulator.settings.parameters")
    out, defaults = [], {}
    allowed = ["default", "high", "log_scale", "long_name", "low", "units"]
    for name, p in spec.items():
        key = f"parameters.{name}"
        p = _entry(p, key, "a mapping {low, high, units, long_name, log_scale, default}")
        bad = sorted(set(p) - set(allowed))
        if bad:
            raise SurroflowError(f"simulator.settings.{key}.{bad[0]}: unknown key; allowed: {allowed}")
        for bound in ("low", "high"):
            if bound not in p:
                raise SurroflowError(f"simulator.settings.{key}.{bound}: required (a finite number)")
        low = check_setting(f"{key}.low", p["low"], "float")
        high = check_setting(f"{key}.high", p["high"], "float")
        log_scale = p.get("log_scale", False)
        if not isinstance(log_scale, bool):
            raise setting_error(f"{key}.log_scale", "true or false", log_scale)
        try:
            out.append(Parameter(name, low, high, _text(f"{key}.units", p.get("units"), "1"),
                                 _text(f"{key}.long_name", p.get("long_name"), name), log_scale))
        except ValueError as exc:
            raise SurroflowError(f"simulator.settings.{key}: {exc}") from None
        if "default" in p:
            defaults[name] = check_setting(f"{key}.default", p["default"], "float")
    return out, defaults


def _parse_outputs(spec: Any) -> list[OutputVariable]:
    if not isinstance(spec, Mapping) or not spec:
        raise setting_error("outputs", "a non-empty mapping name -> {dims, units, long_name}", spec)
    check_names(list(spec), "simulator.settings.outputs")
    out = []
    allowed = ["dims", "long_name", "units"]
    for name, o in spec.items():
        key = f"outputs.{name}"
        o = _entry(o, key, "a mapping {dims, units, long_name}")
        bad = sorted(set(o) - set(allowed))
        if bad:
            raise SurroflowError(f"simulator.settings.{key}.{bad[0]}: unknown key; allowed: {allowed}")
        dims = o.get("dims")
        if (not isinstance(dims, (list, tuple)) or not all(isinstance(d, str) and d for d in dims)
                or len(set(dims)) != len(dims)):
            raise setting_error(f"{key}.dims", "a list of distinct dimension names (strings; [] for a "
                                "scalar)", dims)
        out.append(OutputVariable(name, tuple(dims), _text(f"{key}.units", o.get("units"), "1"),
                                  _text(f"{key}.long_name", o.get("long_name"), name)))
    return out


def _parse_coordinates(spec: Mapping[str, Any]) -> dict[str, Coordinate]:
    out = {}
    allowed = ["long_name", "size", "units", "values"]
    for dim, c in spec.items():
        key = f"coordinates.{dim}"
        c = _entry(c, key, "a mapping {values: [...]} or {size: n}, with units and long_name")
        bad = sorted(set(c) - set(allowed))
        if bad:
            raise SurroflowError(f"simulator.settings.{key}.{bad[0]}: unknown key; allowed: {allowed}")
        if ("values" in c) == ("size" in c):
            raise SurroflowError(f"simulator.settings.{key}: give exactly one of values or size")
        if "size" in c:
            values = np.arange(check_setting(f"{key}.size", c["size"], "int", minimum=1))
        else:
            raw = c["values"]
            values = np.asarray(raw) if isinstance(raw, (list, tuple)) else np.asarray([])
            if (values.ndim != 1 or values.size == 0
                    or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in raw)):
                raise setting_error(f"{key}.values", "a non-empty list of numbers or strings", raw)
        out[str(dim)] = Coordinate((str(dim),), values, _text(f"{key}.units", c.get("units"), "1"),
                                   _text(f"{key}.long_name", c.get("long_name"), str(dim)))
    return out


__all__ = ["ExternalCommand"]

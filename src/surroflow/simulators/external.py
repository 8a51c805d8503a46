"""Non-intrusive external solvers: render an input, run a program, read its results.

For each design point, :class:`CommandRunner`

1. checks every value: only finite real numbers are accepted (a string such as
   ``"1; rm -rf /"`` or ``"../../etc/passwd"``, a bool, NaN or inf is refused before anything
   is created or run);
2. makes a fresh working directory under ``workdir_root``, named by a safe sample id (never
   from parameter values), copies the static files into it and renders the input from a
   :class:`string.Template` (``$name`` placeholders, numbers written as ``repr(float)``, the
   shortest text that reads back exactly, or with 13 significant digits where that is longer
   than the 20 characters a Fortran-style reader takes);
3. runs the program with an argument list (``shell=False``; ``{input}`` and ``{jobname}`` may
   appear only as whole arguments), ``stdin`` closed, its own process group, a timeout and a
   bounded number of retries, output and errors appended to ``solver.log``;
4. converts the results with a registered reader (:func:`register_reader`).

A non-zero exit, a timeout or unreadable results raise :class:`SampleFailure` (status
``failed``, ``timeout`` or what the failure classifier says, e.g. ``diverged``) with the reason
and the path of the kept log.  :class:`ExternalCommand` exposes this as a configurable
simulator (``name: external``).  The runner holds plain data and module-level functions only,
so it pickles into dask worker processes (one task per sample).
"""
from __future__ import annotations

import importlib
import math
import numbers
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from string import Template
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import SurroflowError
from .base import Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, SimulatorUnavailable

ReaderFn = Callable[[Path, str], Mapping[str, np.ndarray]]
ClassifyFn = Callable[[str, "int | None"], str]

KEEP_CHOICES = ("failed", "all", "none")
PLACEHOLDERS = ("{input}", "{jobname}")
LOG_NAME = "solver.log"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_TAIL = 2000


# --------------------------------------------------------------------------- readers
def _read_frd(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    from ..readers.frd import frd_fields
    return frd_fields(workdir / f"{jobname}.frd")


def _read_netcdf(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    import xarray as xr
    path = workdir / f"{jobname}.nc"
    if not path.exists():
        raise SurroflowError(f"{path}: result file not found")
    with xr.open_dataset(path) as ds:
        return {str(k): np.asarray(v.values) for k, v in ds.variables.items()}


def _read_meshio(workdir: Path, jobname: str) -> Mapping[str, np.ndarray]:
    import meshio
    for ext in (".vtu", ".vtk", ".xdmf", ".xmf", ".msh", ".med"):
        path = workdir / f"{jobname}{ext}"
        if path.exists():
            m = meshio.read(path)
            out = {str(k): np.asarray(v) for k, v in m.point_data.items()}
            return {"node_coordinates": np.asarray(m.points), **out}
    raise SurroflowError(f"{workdir}: no result file {jobname}.vtu/.vtk/.xdmf/.msh/.med")


_READERS: dict[str, ReaderFn] = {"frd": _read_frd, "netcdf": _read_netcdf, "meshio": _read_meshio}


def register_reader(name: str, fn: ReaderFn) -> ReaderFn:
    """Register ``fn(workdir, jobname) -> {variable: array}`` under ``name``.

    Use a module-level function: the runner pickles it by reference into dask workers, so a
    reader registered only in the driver process must also be importable there (or name it
    ``python:module:function`` in the settings).
    """
    if not _IDENTIFIER.match(name):
        raise SurroflowError(f"reader name {name!r}: letters, digits and '_' only")
    _READERS[name] = fn
    return fn


def available_readers() -> list[str]:
    return sorted(_READERS)


def get_reader(name: str) -> ReaderFn:
    if name in _READERS:
        return _READERS[name]
    if name.startswith("python:"):
        module, _, attr = name[len("python:"):].partition(":")
        fn = getattr(importlib.import_module(module), attr, None)
        if not callable(fn):
            raise SurroflowError(f"reader {name!r}: {module}.{attr} is not a function")
        return fn
    raise SurroflowError(f"unknown result reader {name!r}; allowed: {available_readers()} "
                         "or 'python:module:function'")


# --------------------------------------------------------------------------- validation
def format_value(name: str, value: Any) -> str:
    """``value`` as input-file text, after checking it is a finite real number.

    Only ints and floats (Python or NumPy) pass; strings, even numeric ones, are refused so
    that no text from a design can reach a file or a command line.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise SampleFailure(f"parameter {name}={value!r}: not a number "
                            f"({type(value).__name__}); only finite real numbers are allowed", "failed")
    x = float(value)
    if not math.isfinite(x):
        raise SampleFailure(f"parameter {name}={value!r}: not finite; only finite real numbers are allowed",
                            "failed")
    text = repr(x)
    # Fortran-style readers (CalculiX among them) cut fields at 20 characters
    return text if len(text) <= 20 else format(x, ".13g")


def check_names(names: Sequence[str], what: str) -> None:
    for n in names:
        if not isinstance(n, str) or not _IDENTIFIER.match(n):
            raise SurroflowError(f"{what} {n!r}: names must be identifiers (letters, digits, '_')")


def safe_id(sample_id: str) -> str:
    if (not isinstance(sample_id, str) or not _SAFE_ID.match(sample_id) or ".." in sample_id):
        raise SurroflowError(f"sample id {sample_id!r}: letters, digits, '_', '-', '.' only "
                             "(no path separators, no '..')")
    return sample_id


def _safe_file_name(name: str, what: str) -> str:
    if not _SAFE_ID.match(name) or ".." in name:
        raise SurroflowError(f"{what} {name!r}: a plain file name is required (letters, digits, "
                             "'_', '-', '.'; no folders)")
    return name


def resolve_program(program: str, install_hint: str = "") -> str:
    """Absolute path of ``program`` (on PATH or given as a path) or a :class:`SurroflowError`."""
    found = shutil.which(program)
    if found is None:
        hint = f"; {install_hint}" if install_hint else ""
        raise SimulatorUnavailable(f"solver program {program!r} not found on PATH or not executable"
                                   f"{hint}")
    return found


def default_classify(log_text: str, returncode: int | None) -> str:
    """Status of a failed run from its log: ``failed`` unless a subclass knows better."""
    return "failed"


# --------------------------------------------------------------------------- the runner
class CommandRunner:
    """Runs one external program per sample in its own working directory.

    Parameters
    ----------
    command : program and arguments; ``{input}``/``{jobname}`` allowed only as whole arguments.
    template_text : the input file with ``$name`` placeholders for the values of a sample.
    input_name : file name of the rendered input (``jobname`` is its stem).
    reader : registered reader name (or ``python:module:function``).
    workdir_root : parent of the per-sample working directories (created if needed).
    timeout_s : wall-clock limit of one attempt (``None``: no limit).
    retries : extra attempts after a failure (timeouts included).
    keep_workdirs : ``failed`` (default: keep failed samples' folders), ``all``, or ``none``
        (delete every folder, but keep ``solver.log`` of a failed sample).
    files : static files to place in every working directory, ``{name: bytes | path}``.
    env : extra environment variables (strings); ``OMP_NUM_THREADS=1`` unless set.
    classify_failure : ``fn(log_text, returncode) -> status`` for non-zero exits.
    install_hint : appended to the error when the program is not found.
    """

    def __init__(self, command: Sequence[str], template_text: str, input_name: str, reader: str,
                 workdir_root: str | os.PathLike[str], timeout_s: float | None = 600.0,
                 retries: int = 0, keep_workdirs: str = "failed",
                 files: Mapping[str, bytes | str | os.PathLike[str]] | None = None,
                 env: Mapping[str, str] | None = None,
                 classify_failure: ClassifyFn | None = None, install_hint: str = "") -> None:
        if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
            raise SurroflowError("command: a non-empty list of strings (program, then arguments) "
                                 "is required; a shell string is not accepted")
        for a in command:
            if ("{" in a or "}" in a) and a not in PLACEHOLDERS:
                raise SurroflowError(f"command argument {a!r}: placeholders {list(PLACEHOLDERS)} "
                                     "are allowed only as whole arguments")
        if command[0] in PLACEHOLDERS:
            raise SurroflowError("command: the program cannot be a placeholder")
        self.program = resolve_program(command[0], install_hint)
        self.command = [self.program, *command[1:]]
        self.input_name = _safe_file_name(input_name, "input_name")
        self.jobname = Path(self.input_name).stem
        self.template = Template(template_text)
        if not self.template.is_valid():
            raise SurroflowError("template: invalid '$' placeholder (write '$$' for a literal '$')")
        self.placeholders = sorted(set(self.template.get_identifiers()))
        self.reader_name = reader
        self.reader = get_reader(reader)
        self.workdir_root = Path(workdir_root).absolute()
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or not timeout_s > 0):
            raise SurroflowError(f"timeout_s={timeout_s!r}: a number > 0 is required (or null for no limit)")
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise SurroflowError(f"retries={retries!r}: an integer >= 0 is required")
        self.retries = retries
        if keep_workdirs not in KEEP_CHOICES:
            raise SurroflowError(f"keep_workdirs={keep_workdirs!r} is not allowed; "
                                 f"allowed: {list(KEEP_CHOICES)}")
        self.keep_workdirs = keep_workdirs
        self.files: dict[str, bytes] = {}
        for name, content in (files or {}).items():
            _safe_file_name(name, "static file")
            if name in (self.input_name, LOG_NAME):
                raise SurroflowError(f"static file {name!r} clashes with the input or the log")
            if isinstance(content, bytes):
                self.files[name] = content
            else:
                p = Path(content)
                if not p.is_file():
                    raise SurroflowError(f"static file {p}: not found")
                self.files[name] = p.read_bytes()
        self.env = {"OMP_NUM_THREADS": "1"}
        for k, v in (env or {}).items():
            if not (isinstance(k, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k) and isinstance(v, str)):
                raise SurroflowError(f"env: {k!r}={v!r}: names must be identifiers and values strings")
            self.env[k] = v
        self.classify_failure = classify_failure or default_classify

    # ------------------------------------------------------------------ pieces
    def render(self, values: Mapping[str, Any]) -> str:
        """The input text for ``values`` (validated; every placeholder needs a value)."""
        text_values = {str(k): format_value(str(k), v) for k, v in values.items()}
        missing = [p for p in self.placeholders if p not in text_values]
        if missing:
            raise SurroflowError(f"template placeholders without a value: {missing}; "
                                 f"values given: {sorted(text_values)}")
        return self.template.substitute(text_values)

    def argv(self) -> list[str]:
        sub = {"{input}": self.input_name, "{jobname}": self.jobname}
        return [sub.get(a, a) for a in self.command]

    def _new_workdir(self, sample_id: str | None) -> Path:
        self.workdir_root.mkdir(parents=True, exist_ok=True)
        if sample_id is None:
            return Path(tempfile.mkdtemp(prefix="sample-", dir=self.workdir_root))
        wd = self.workdir_root / safe_id(sample_id)
        if wd.exists():                  # a rerun (e.g. a retried dask task) starts afresh
            shutil.rmtree(wd)
        wd.mkdir()
        return wd

    def _prepare(self, wd: Path, text: str) -> None:
        for entry in wd.iterdir():       # fresh for every attempt, the log excepted
            if entry.name == LOG_NAME:
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for name, content in self.files.items():
            (wd / name).write_bytes(content)
        (wd / self.input_name).write_text(text)

    def _execute(self, wd: Path, attempt: int) -> tuple[int | None, bool, float]:
        """Run once; ``(returncode, timed_out, seconds)``."""
        log = wd / LOG_NAME
        argv = self.argv()
        env = {**os.environ, **self.env}
        with open(log, "ab") as fh:
            fh.write(f"### surroflow attempt {attempt + 1}/{self.retries + 1}: {argv!r} in {wd}\n"
                     .encode())
            fh.flush()
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=wd, stdin=subprocess.DEVNULL, stdout=fh,
                                    stderr=subprocess.STDOUT, env=env, shell=False,
                                    start_new_session=True)
            try:
                rc: int | None = proc.wait(timeout=self.timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc, timed_out = None, True
            dt = time.perf_counter() - t0
            status = "timed out" if timed_out else f"exit code {rc}"
            fh.write(f"\n### surroflow attempt {attempt + 1}: {status} after {dt:.2f} s\n".encode())
        return rc, timed_out, dt

    def _finish(self, wd: Path, failed: bool) -> None:
        keep = self.keep_workdirs
        if keep == "all" or (keep == "failed" and failed):
            return
        if failed:                       # keep_workdirs none: the log stays
            for entry in wd.iterdir():
                if entry.name != LOG_NAME:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            return
        shutil.rmtree(wd, ignore_errors=True)

    # ------------------------------------------------------------------ the run
    def run(self, values: Mapping[str, Any], sample_id: str | None = None) -> dict[str, np.ndarray]:
        """Render, run and read one sample; raises :class:`SampleFailure` on failure."""
        text = self.render(values)       # validates every value before anything is created
        wd = self._new_workdir(sample_id)
        log = wd / LOG_NAME
        reason, status = "", "failed"
        for attempt in range(self.retries + 1):
            self._prepare(wd, text)
            try:
                rc, timed_out, dt = self._execute(wd, attempt)
            except OSError as exc:
                reason, status = f"cannot start {self.command[0]}: {exc}", "failed"
                _append(log, f"### surroflow: {reason}\n")
                continue
            if timed_out:
                reason, status = f"timed out after {self.timeout_s:g} s", "timeout"
                continue
            if rc != 0:
                status = self.classify_failure(_tail(log), rc)
                reason = f"exit code {rc}"
                continue
            try:
                out = {k: np.asarray(v) for k, v in self.reader(wd, self.jobname).items()}
            except Exception as exc:     # any reader error means unreadable results
                reason = f"unreadable results ({type(exc).__name__}: {exc})"
                status = self.classify_failure(_tail(log), rc)
                _append(log, f"### surroflow: {reason}\n")
                continue
            self._finish(wd, failed=False)
            return out
        self._finish(wd, failed=True)
        n = self.retries + 1
        raise SampleFailure(f"{Path(self.command[0]).name} {reason} "
                            f"({n} attempt{'s' if n > 1 else ''}); log: {log}", status)


def _append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def _tail(path: Path, n: int = _LOG_TAIL) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 20 * n))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


# --------------------------------------------------------------------------- the simulator
_SETTINGS = {"command", "template", "input_name", "reader", "parameters", "outputs", "coordinates",
             "constants", "files", "workdir_root", "timeout_s", "retries", "keep_workdirs", "env",
             "time_dim"}


def default_workdir_root() -> Path:
    return Path(tempfile.gettempdir()) / "surroflow-runs"


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


def collect_outputs(raw: Mapping[str, np.ndarray], outputs: Sequence[OutputVariable],
                    shapes: Mapping[str, tuple[int, ...]], where: str) -> dict[str, np.ndarray]:
    """Pick the declared outputs from a reader's arrays, checking shape and finiteness."""
    out: dict[str, np.ndarray] = {}
    for var in outputs:
        if var.name not in raw:
            raise SampleFailure(f"{where}: no variable {var.name!r} in the results; found {sorted(raw)}",
                                "failed")
        a = np.asarray(raw[var.name], dtype=float)
        if a.shape != tuple(shapes[var.name]):
            raise SampleFailure(f"{where}: {var.name} has shape {a.shape}, expected "
                                f"{tuple(shapes[var.name])} {var.dims}", "failed")
        if not np.all(np.isfinite(a)):
            raise SampleFailure(f"{where}: {var.name} has non-finite values", "diverged")
        out[var.name] = a
    return out


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


__all__ = ["CommandRunner", "ExternalCommand", "register_reader", "get_reader", "available_readers",
           "format_value", "resolve_program", "collect_outputs", "default_workdir_root"]

"""Run one external program per sample: the process runner behind every solver adapter.

For each design point, :class:`CommandRunner`

1. checks every value: only finite real numbers are accepted (a string such as
   ``"1; rm -rf /"`` or ``"../../etc/passwd"``, a bool, NaN or inf is refused before anything
   is created or run);
2. makes a fresh working directory under ``workdir_root``, named by a safe sample id (never
   from parameter values) and created exclusively (mode 0700; a symbolic link or anything else
   already at that name is never followed: :func:`surroflow.safety.exclusive_directory`; the
   default root is a private per-user folder), copies the static files into it and renders
   the input from a :class:`string.Template` (``$name`` placeholders, numbers written as ``repr(float)``, the
   shortest text that reads back exactly, or with 13 significant digits where that is longer
   than the 20 characters a Fortran-style reader takes);
3. runs the program with an argument list (``shell=False``; ``{input}`` and ``{jobname}`` may
   appear only as whole arguments), ``stdin`` closed, its own process group (killed as a whole
   on timeout), a timeout and a bounded number of retries, output and errors appended to
   ``solver.log``;
4. converts the results with a registered reader (:mod:`surroflow.readers`).

A non-zero exit, a timeout or unreadable results raise :class:`SampleFailure` (status
``failed``, ``timeout`` or what the failure classifier says, e.g. ``diverged``) with the reason
and the path of the kept log.  The runner holds plain data and module-level functions only,
so it pickles into dask worker processes (one task per sample).
"""
from __future__ import annotations

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
from ..readers import get_reader
from ..safety import (check_command, check_path, env_problem, exclusive_directory, private_directory,
                      safe_mode_enabled)
from .base import SampleFailure, SimulatorUnavailable, check_setting, setting_error

ClassifyFn = Callable[[str, "int | None"], str]

KEEP_CHOICES = ("failed", "all", "none")
PLACEHOLDERS = ("{input}", "{jobname}")
LOG_NAME = "solver.log"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_TAIL = 2000


def default_workdir_root() -> Path:
    """``<tmp>/surroflow-runs-<uid>``: the parent of the per-sample working directories by
    default, a per-user folder (created with mode 0700 by the runner, checked to be a real
    folder of this user's that nobody else may write: :func:`surroflow.safety.private_directory`)."""
    user = str(os.getuid()) if hasattr(os, "getuid") else re.sub(r"[^A-Za-z0-9_.-]", "_",
                                                                   os.environ.get("USERNAME", "user"))
    return Path(tempfile.gettempdir()) / f"surroflow-runs-{user}"

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
            raise SurroflowError(f"{what}: the name {n!r} is not allowed; names must be identifiers "
                                 "(letters, digits, '_')")


def safe_id(sample_id: str) -> str:
    if (not isinstance(sample_id, str) or not _SAFE_ID.match(sample_id) or ".." in sample_id):
        raise SurroflowError(f"sample id {sample_id!r}: letters, digits, '_', '-', '.' only "
                             "(no path separators, no '..')")
    return sample_id


def _safe_file_name(name: Any, key: str, what: str = "") -> str:
    """``name`` if it is a plain file name; else ``<key>: <what>'name' is not allowed; ...``."""
    if not isinstance(name, str) or not _SAFE_ID.match(name) or ".." in name:
        raise SurroflowError(f"{key}: {what}{name!r} is not allowed; a plain file name is required "
                             "(letters, digits, '_', '-', '.'; no folders)")
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
    reader : registered reader name (or ``python:module:function``, refused in safe mode).
    workdir_root : parent of the per-sample working directories (created if needed); ``None``
        or :func:`default_workdir_root`: the private per-user folder under the temp folder.
    timeout_s : wall-clock limit of one attempt (``None``: no limit).
    retries : extra attempts after a failure (timeouts included).
    keep_workdirs : ``failed`` (default: keep failed samples' folders), ``all``, or ``none``
        (delete every folder, but keep ``solver.log`` of a failed sample).
    files : static files to place in every working directory, ``{name: bytes | path}``.
    env : extra environment variables (strings); ``OMP_NUM_THREADS=1`` unless set.
    classify_failure : ``fn(log_text, returncode) -> status`` for non-zero exits.
    install_hint : appended to the error when the program is not found.
    program_key : the setting that names the program (``command[0]``; ``ccx`` for CalculiX).

    Every value is checked in the constructor, each error a :class:`SurroflowError` naming
    ``simulator.settings.<key>`` (the settings of the simulator that builds the runner), the
    values first and the program's look-up last.
    """

    def __init__(self, command: Sequence[str], template_text: str, input_name: str, reader: str,
                 workdir_root: str | os.PathLike[str] | None, timeout_s: float | None = 600.0,
                 retries: int = 0, keep_workdirs: str = "failed",
                 files: Mapping[str, bytes | str | os.PathLike[str]] | None = None,
                 env: Mapping[str, str] | None = None,
                 classify_failure: ClassifyFn | None = None, install_hint: str = "",
                 program_key: str = "command[0]") -> None:
        # every plain value is checked first (the same sentences as the simulators' settings
        # checks, so `validate` reports them even where the program is missing), the program last
        if (isinstance(command, str) or not isinstance(command, Sequence) or not command
                or not all(isinstance(a, str) for a in command)):
            raise setting_error("command", "a non-empty list of strings (program, then arguments; a "
                                "shell string is not accepted)", command)
        for a in command:
            if ("{" in a or "}" in a) and a not in PLACEHOLDERS:
                raise SurroflowError(f"simulator.settings.command: argument {a!r} is not allowed; the "
                                     f"placeholders {list(PLACEHOLDERS)} may appear only as whole arguments")
        if command[0] in PLACEHOLDERS or not command[0]:
            raise setting_error(program_key, "a program name or path (not empty, not a placeholder)",
                                command[0])
        check_setting("input_name", input_name, "str")
        self.input_name = _safe_file_name(input_name, "simulator.settings.input_name")
        self.jobname = Path(self.input_name).stem
        if not isinstance(template_text, str):
            raise setting_error("template", "the text of the input template", template_text)
        self.template = Template(template_text)
        if not self.template.is_valid():
            raise SurroflowError("simulator.settings.template: invalid '$' placeholder (write '$$' for a "
                                 "literal '$')")
        self.placeholders = sorted(set(self.template.get_identifiers()))
        check_setting("reader", reader, "str")
        if workdir_root is not None and not isinstance(workdir_root, os.PathLike):
            check_setting("workdir_root", workdir_root, "path", nullable=True)
        self.timeout_s = check_setting("timeout_s", timeout_s, "float", exclusive_minimum=0, nullable=True)
        self.retries = check_setting("retries", retries, "int", minimum=0)
        self.keep_workdirs = check_setting("keep_workdirs", keep_workdirs, "choice", choices=KEEP_CHOICES)
        if files is not None and not isinstance(files, Mapping):
            raise setting_error("files", "a mapping of file names to contents", files)
        self.files: dict[str, bytes] = {}
        for name, content in (files or {}).items():
            _safe_file_name(name, "simulator.settings.files", "static file ")
            if name in (self.input_name, LOG_NAME):
                raise SurroflowError(f"simulator.settings.files: static file {name!r} clashes with the "
                                     f"input {self.input_name!r} or the log {LOG_NAME!r}")
            if isinstance(content, bytes):
                self.files[name] = content
            else:
                p = Path(content)
                if not p.is_file():
                    raise SurroflowError(f"simulator.settings.files: static file {str(p)!r} not found")
                self.files[name] = p.read_bytes()
        if env is not None and not isinstance(env, Mapping):
            raise setting_error("env", "a mapping of environment variable names to strings", env)
        self.env = {"OMP_NUM_THREADS": "1"}
        for k, v in (env or {}).items():
            if not (isinstance(k, str) and _IDENTIFIER.match(k)):
                raise setting_error("env", "environment variable names that are identifiers", k)
            if not isinstance(v, str):
                raise setting_error(f"env.{k}", "a string", v)
            if safe_mode_enabled() and env_problem(k, "simulator.settings.env"):
                raise SurroflowError(str(env_problem(k, "simulator.settings.env")))
            self.env[k] = v
        # the program and the folders: safe mode's allow-lists, then the look-up
        check_command(command[0], f"simulator.settings.{program_key}")   # safe mode: allow-listed only
        default_root = default_workdir_root()
        self.private_root = workdir_root is None or Path(workdir_root).absolute() == default_root
        if self.private_root:
            self.workdir_root = default_root
        else:
            check_path(workdir_root, "simulator.settings.workdir_root")   # safe mode: inside the project
            self.workdir_root = Path(workdir_root).absolute()
        self.reader_name = reader
        try:
            self.reader = get_reader(reader)
        except SurroflowError as exc:
            raise SurroflowError(f"simulator.settings.reader: {exc}") from None
        self.program = resolve_program(command[0], install_hint)
        self.command = [self.program, *command[1:]]
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
        """A new folder of this sample, created exclusively (never a pre-existing symlink)."""
        if self.private_root:
            private_directory(self.workdir_root)
        else:
            self.workdir_root.mkdir(parents=True, exist_ok=True)
        if sample_id is None:
            return Path(tempfile.mkdtemp(prefix="sample-", dir=self.workdir_root))
        wd = self.workdir_root / safe_id(sample_id)
        if os.path.islink(wd):
            raise SurroflowError(f"{wd}: the working folder of sample {sample_id!r} is a symbolic "
                                 "link (planted by someone else?); refusing to follow it")
        if os.path.isdir(wd):            # a rerun (e.g. a retried dask task) starts afresh
            shutil.rmtree(wd)            # (rmtree never follows symlinks inside)
        return exclusive_directory(wd)

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


__all__ = ["CommandRunner", "format_value", "check_names", "safe_id", "resolve_program",
           "default_classify", "default_workdir_root", "KEEP_CHOICES", "LOG_NAME"]

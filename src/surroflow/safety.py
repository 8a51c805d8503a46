"""Safe mode, and working folders that cannot be hijacked (see docs/security.md).

A config is code: it can name ``python:module:Class`` simulators and ``python:module:function``
readers, run any program as an external solver, start shell lines on SLURM workers and put
results and working folders anywhere the user may write.  That is fine for a trusted file.
*Safe mode* (``SURROFLOW_SAFE_MODE=1``, ``validate --safe``, :func:`set_safe_mode` or
``with safe_mode():``) is for configs you did not write: it allows only

* built-in and registered simulators and readers (no ``python:`` references, no simulators
  plugged in through the ``surroflow.simulators`` entry points: the simulator registry refuses
  those before importing them);
* external programs from an allow-list: ``ccx`` (CalculiX), extended only from outside the
  config with ``SURROFLOW_ALLOWED_COMMANDS`` (``:``-separated program names or absolute paths);
* environment variables for the solver that cannot load code (``OMP_*``, ``MKL_*``, ...);
* ``results:``, every ``workdir_root`` and the dask folders inside the project folder (the
  working directory, symlinks resolved, no ``..`` escape);
* a LocalCluster or a SLURMCluster without ``prologue`` shell lines (no remote scheduler).

:func:`config_problems` reports every violation of a config before any job; the simulator and
reader registries and the process runner refuse the same things again at run time.

:func:`private_directory` and :func:`exclusive_directory` make working folders that never follow
a symbolic link planted beforehand.  This module imports only the package root and the stdlib.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from surroflow import SurroflowError

ENV_SAFE_MODE = "SURROFLOW_SAFE_MODE"
ENV_ALLOWED_COMMANDS = "SURROFLOW_ALLOWED_COMMANDS"
#: programs an untrusted config may run: the CalculiX solver
BUILTIN_COMMANDS: tuple[str, ...] = ("ccx",)
#: solver environment variables allowed in safe mode (none of them loads code)
ALLOWED_ENV = re.compile(r"^(OMP_[A-Z0-9_]+|MKL_[A-Z0-9_]+|OPENBLAS_[A-Z0-9_]+|CCX_[A-Z0-9_]+"
                         r"|NUMBER_OF_PROCESSORS)$")
#: simulators whose settings name an external program / reader / working folder
_COMMAND_KEY = {"external": "command", "calculix_plate": "ccx"}
_TRUE = {"1", "true", "yes"}


# --------------------------------------------------------------------------- the switch
def safe_mode_enabled() -> bool:
    """True when ``SURROFLOW_SAFE_MODE`` is 1, true or yes (any case)."""
    return os.environ.get(ENV_SAFE_MODE, "").strip().lower() in _TRUE


def set_safe_mode(on: bool = True) -> None:
    """Turn safe mode on or off in this process and every process it starts (an env var, so
    Snakemake jobs and dask workers inherit it)."""
    if on:
        os.environ[ENV_SAFE_MODE] = "1"
    else:
        os.environ.pop(ENV_SAFE_MODE, None)


@contextlib.contextmanager
def safe_mode(on: bool = True) -> Iterator[None]:
    """``with safe_mode(): ...``: safe mode inside the block, the previous state after it."""
    before = os.environ.get(ENV_SAFE_MODE)
    set_safe_mode(on)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_SAFE_MODE, None)
        else:
            os.environ[ENV_SAFE_MODE] = before


# --------------------------------------------------------------------------- allow-lists
def allowed_commands() -> list[str]:
    """The programs safe mode lets a config run: :data:`BUILTIN_COMMANDS` plus the entries of
    ``SURROFLOW_ALLOWED_COMMANDS`` (never from the config itself)."""
    extra = [e.strip() for e in os.environ.get(ENV_ALLOWED_COMMANDS, "").split(":")]
    out = list(BUILTIN_COMMANDS)
    out += [e for e in extra if e and e not in out]
    return out


def command_allowed(program: str) -> bool:
    """Whether ``program`` (the first item of a command, as written) is on the allow-list.

    A bare name on the list (``ccx``) allows only that bare name, found on ``PATH``; a path on
    the list allows the program at that path (symlinks resolved).  ``/tmp/x/ccx`` is not
    ``ccx``.
    """
    if not isinstance(program, str) or not program:
        return False
    is_path = os.sep in program or (os.altsep is not None and os.altsep in program)
    for entry in allowed_commands():
        if os.sep not in entry:
            if not is_path and program == entry:
                return True
        elif is_path and os.path.isabs(entry):
            if os.path.realpath(program) == os.path.realpath(entry):
                return True
    return False


def check_command(program: str, where: str = "command") -> None:
    """In safe mode, a :class:`SurroflowError` unless ``program`` is allow-listed."""
    if safe_mode_enabled() and not command_allowed(program):
        raise SurroflowError(_command_sentence(where, program))


def _command_sentence(where: str, program: Any) -> str:
    return (f"{where}: program {program!r} is not on the safe-mode allow-list {allowed_commands()}; "
            f"extend it outside the config with {ENV_ALLOWED_COMMANDS}=name:/abs/path")


def env_problem(name: str, where: str = "env") -> str | None:
    """Why safe mode refuses the solver environment variable ``name`` (None if allowed)."""
    if isinstance(name, str) and ALLOWED_ENV.match(name):
        return None
    return (f"{where}.{name}: safe mode refuses this environment variable (it could load code, "
            "e.g. LD_PRELOAD or PATH); allowed: OMP_*, MKL_*, OPENBLAS_*, CCX_*, NUMBER_OF_PROCESSORS")


# --------------------------------------------------------------------------- paths
def project_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The project folder (``root`` or the working directory), symlinks resolved."""
    return Path(root if root is not None else os.getcwd()).resolve()


def path_problem(path: Any, where: str, root: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``path`` (relative paths are taken from ``root``) is not inside the project folder,
    after resolving symlinks and ``..`` (None when it is)."""
    base = project_root(root)
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        return f"{where}: {path!r} is not a path"
    p = Path(path)
    resolved = (p if p.is_absolute() else base / p).resolve()
    if resolved == base or base in resolved.parents:
        return None
    return (f"{where}: {str(path)!r} resolves to {resolved}, outside the project folder {base}; "
            "safe mode allows only folders inside it")


def check_path(path: Any, where: str, root: str | os.PathLike[str] | None = None) -> None:
    """In safe mode, a :class:`SurroflowError` unless ``path`` lies inside the project folder."""
    if safe_mode_enabled():
        problem = path_problem(path, where, root)
        if problem:
            raise SurroflowError(problem)


# --------------------------------------------------------------------------- the config
def config_problems(cfg: Mapping, root: str | os.PathLike[str] | None = None) -> list[str]:
    """What safe mode refuses in ``cfg``, each line starting with its key path; ``[]`` when
    safe mode is off.  ``root`` is the project folder (default: the working directory)."""
    if not safe_mode_enabled() or not isinstance(cfg, Mapping):
        return []
    problems: list[str] = []
    if "__use_yte__" in cfg:
        problems.append("__use_yte__: the file is a YTE template, whose '?' expressions Snakemake runs "
                        "as Python while reading it; safe mode allows plain YAML only")

    def path(value: Any, where: str) -> None:
        if value is not None:
            p = path_problem(value, where, root)
            if p:
                problems.append(p)

    path(cfg.get("results", "results"), "results")
    dask = cfg.get("dask") or {}
    if isinstance(dask, Mapping):
        if dask.get("kind") == "address":
            problems.append("dask.kind: 'address' joins a scheduler the config names, whose results "
                            "are unpickled here (running its code); safe mode allows local or slurm")
        slurm = dask.get("slurm") or {}
        if isinstance(slurm, Mapping):
            if slurm.get("prologue"):
                problems.append("dask.slurm.prologue: shell lines run on every worker; safe mode "
                                "allows none")
            for k, d in enumerate(slurm.get("extra_directives") or []):
                if not isinstance(d, str) or "\n" in d or "\r" in d:
                    problems.append(f"dask.slurm.extra_directives[{k}]: {d!r} spans several lines "
                                    "(a shell line in the job script); safe mode allows one-line directives")
            path(slurm.get("log_directory"), "dask.slurm.log_directory")
            path(slurm.get("local_directory"), "dask.slurm.local_directory")
    studies = cfg.get("studies") or {}
    if isinstance(studies, Mapping):
        for study, sc in studies.items():
            if isinstance(sc, Mapping):
                problems += _study_problems(f"studies.{study}", sc, root)
    return problems


def _study_problems(key: str, sc: Mapping, root: str | os.PathLike[str] | None) -> list[str]:
    problems: list[str] = []
    sim = sc.get("simulator") or {}
    if not isinstance(sim, Mapping):
        return problems
    name = sim.get("name")
    if isinstance(name, str) and name.startswith("python:"):
        problems.append(f"{key}.simulator.name: {name!r} imports code; safe mode allows only "
                        "registered simulators (built in or registered in this process; no python: "
                        "or entry-point plug-ins)")
    settings = sim.get("settings") or {}
    if not isinstance(settings, Mapping):
        return problems
    skey = f"{key}.simulator.settings"
    reader = settings.get("reader")
    if isinstance(reader, str) and reader.startswith("python:"):
        problems.append(f"{skey}.reader: {reader!r} imports code; safe mode allows only registered "
                        "readers (see surroflow.readers.available_readers())")
    elif reader is not None and not isinstance(reader, str):
        problems.append(f"{skey}.reader: {reader!r}; safe mode allows only the name of a registered reader")
    ckey = _COMMAND_KEY.get(name) if isinstance(name, str) else None
    if ckey == "command":
        command = settings.get("command")
        if isinstance(command, (list, tuple)) and command:
            if not command_allowed(command[0]):
                problems.append(_command_sentence(f"{skey}.command[0]", command[0]))
        elif command is not None:
            problems.append(f"{skey}.command: {command!r}; safe mode needs a list whose first item is "
                            f"an allow-listed program {allowed_commands()}")
    elif ckey == "ccx":
        program = settings.get("ccx", "ccx")
        if not command_allowed(program):
            problems.append(_command_sentence(f"{skey}.ccx", program))
    env = settings.get("env")
    if isinstance(env, Mapping):
        problems += [p for p in (env_problem(str(n), f"{skey}.env") for n in env) if p]
    wr = settings.get("workdir_root")
    if wr is not None:
        p = path_problem(wr, f"{skey}.workdir_root", root)
        if p:
            problems.append(p)
    return problems


# --------------------------------------------------------------------------- folders
def private_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder only this user can enter: created with mode 0700 if missing (its
    parents as usual); an existing one must be a real folder (not a symlink), owned by this
    user and not writable by group or others, else a :class:`SurroflowError`."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)  # the temp folder itself (e.g. on a new node)
        os.mkdir(p, 0o700)
        return p
    except FileExistsError:
        pass
    except OSError as exc:
        raise SurroflowError(f"{p}: cannot create the private working folder ({exc.strerror})") from None
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        raise SurroflowError(f"{p}: the working folder is a symbolic link (planted by someone else?); "
                             "remove it, or set simulator.settings.workdir_root to a folder of yours")
    if not stat.S_ISDIR(st.st_mode):
        raise SurroflowError(f"{p}: not a folder; remove it, or set simulator.settings.workdir_root")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise SurroflowError(f"{p}: the working folder belongs to user id {st.st_uid}, not to you "
                             f"({os.getuid()}); remove it, or set simulator.settings.workdir_root")
    if os.name == "posix" and st.st_mode & 0o022:
        raise SurroflowError(f"{p}: the working folder is writable by group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):o}); chmod 700 it, or set "
                             "simulator.settings.workdir_root")
    return p


def exclusive_directory(path: str | os.PathLike[str], mode: int = 0o700) -> Path:
    """Create the new folder ``path`` (it must not exist: nothing pre-existing, a symlink least
    of all, is followed or reused); a :class:`SurroflowError` naming it otherwise."""
    p = Path(path)
    try:
        os.mkdir(p, mode)
    except FileExistsError:
        what = "a symbolic link" if os.path.islink(p) else "already there"
        raise SurroflowError(f"{p}: the new working folder is {what}; refusing to reuse it") from None
    st = os.lstat(p)
    if not stat.S_ISDIR(st.st_mode):     # cannot happen after a successful mkdir; belt and braces
        raise SurroflowError(f"{p}: not a folder after creating it; refusing to use it")
    return p


__all__ = ["ENV_SAFE_MODE", "ENV_ALLOWED_COMMANDS", "BUILTIN_COMMANDS", "allowed_commands",
           "check_command", "check_path", "command_allowed", "config_problems", "env_problem",
           "exclusive_directory", "path_problem", "private_directory", "project_root",
           "safe_mode", "safe_mode_enabled", "set_safe_mode"]

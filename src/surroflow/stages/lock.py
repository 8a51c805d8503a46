"""The results-folder lock: one workflow run writes a results folder at a time.

Snakemake locks its working directory, not the output folders: two runs started in different
folders whose configs share an absolute ``results:`` path would write the same batches and
models side by side.  The workflow takes this lock when it starts executing jobs
(``onstart``) and gives it back when it ends (``onsuccess`` / ``onerror``); dry runs take none.

The lock is the file ``<results>/.surroflow.lock`` created exclusively (``O_CREAT|O_EXCL``),
holding the host, process id, working directory and start time of the run that holds it.
A run from the *same* working directory takes it over (Snakemake's own lock already stops two
runs there, and a killed run must be able to resume); a run from another folder is refused
with a sentence, unless the holder is a process on this host that no longer exists (a stale
lock, reported and replaced).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from .. import SurroflowError
from ..distributed import pid_alive

log = logging.getLogger("surroflow.lock")

LOCK_NAME = ".surroflow.lock"


def _me(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "workdir": str(Path(workdir).resolve()),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def acquire(results: str | os.PathLike[str], workdir: str | os.PathLike[str] = ".") -> Path:
    """Take the lock of ``results`` for the run in ``workdir``; raise when another run holds it."""
    folder = Path(results)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = _me(workdir)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder.get("workdir") == me["workdir"]:
                log.info("%s: taking over the lock of an earlier run from this folder", path)
            elif holder.get("host") == me["host"] and not pid_alive(int(holder.get("pid", -1))):
                log.warning("%s: replacing the stale lock of run pid %s (%s), which no longer exists",
                            path, holder.get("pid"), holder.get("workdir"))
            else:
                raise SurroflowError(
                    f"{folder.resolve()}: results folder in use by the run in {holder.get('workdir')} (pid "
                    f"{holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); two runs "
                    f"writing one results folder overwrite each other's files: wait for it, give this "
                    f"config another 'results:' folder, or delete {path} if that run is gone") from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return path
    raise SurroflowError(f"{path}: could not take the results lock (another run took it meanwhile)")


def release(results: str | os.PathLike[str], workdir: str | os.PathLike[str] = ".") -> None:
    """Give the lock back if this run (same working directory and process) holds it."""
    path = Path(results) / LOCK_NAME
    holder = _read(path)
    me = _me(workdir)
    if holder.get("workdir") == me["workdir"] and holder.get("pid") == me["pid"]:
        path.unlink(missing_ok=True)


__all__ = ["LOCK_NAME", "acquire", "release"]

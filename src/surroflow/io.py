"""Reading and writing stage datasets: NetCDF, atomic writes, provenance, status flags.

Every stage boundary in surroflow is an xarray Dataset stored as NetCDF (h5netcdf engine).
Writes go to a temporary file in the target folder, are closed, reopened and checked, then
moved into place with :func:`os.replace`, so a killed writer never leaves a half-written file
under the final name.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr

from . import SurroflowError, __version__

ENGINE = "h5netcdf"

#: CF flag values for the per-sample outcome ``status(sample)``.
STATUS_OK = 0
STATUS_DIVERGED = 1
STATUS_FAILED = 2
STATUS_TIMEOUT = 3
STATUS_FLAGS = {"ok": STATUS_OK, "diverged": STATUS_DIVERGED, "failed": STATUS_FAILED,
                "timeout": STATUS_TIMEOUT}
STATUS_MEANINGS = " ".join(STATUS_FLAGS)


def status_attrs() -> dict[str, Any]:
    """CF attributes of a ``status(sample)`` variable."""
    return {
        "long_name": "outcome of the high-fidelity run",
        "flag_values": np.array(list(STATUS_FLAGS.values()), dtype="i1"),
        "flag_meanings": STATUS_MEANINGS,
    }


def status_name(code: int) -> str:
    for name, value in STATUS_FLAGS.items():
        if value == int(code):
            return name
    raise ValueError(f"unknown status code {code}; allowed: {STATUS_FLAGS}")


# --------------------------------------------------------------------------- provenance
def config_sha256(section: Mapping[str, Any] | None) -> str:
    """SHA-256 of a config section, independent of key order."""
    blob = json.dumps(section if section is not None else {}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


_GIT_COMMIT: str | None = None


def git_commit() -> str:
    """The commit of the surroflow source tree (``unknown`` outside a git checkout)."""
    global _GIT_COMMIT
    if _GIT_COMMIT is None:
        here = Path(__file__).resolve().parent
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                 text=True, timeout=10, check=True)
            commit = out.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            _GIT_COMMIT = commit + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT = "unknown"
    return _GIT_COMMIT


def provenance(stage: str, config_section: Mapping[str, Any] | None = None,
               study: str | None = None) -> dict[str, str]:
    """Global attributes recorded on every artifact."""
    attrs = {
        "surroflow_version": __version__,
        "git_commit": git_commit(),
        "config_sha256": config_sha256(config_section),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "stage": stage,
        "Conventions": "CF-1.10",
    }
    if study is not None:
        attrs["study"] = study
    return attrs


# --------------------------------------------------------------------------- writing
def _encoding(ds: xr.Dataset, checksum: bool) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {}
        if var.dtype.kind in "fiu" and var.ndim > 0:
            if checksum:
                e["fletcher32"] = True  # h5py picks chunk shapes itself
        enc[str(name)] = e
    return enc


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            v = int(v)
        elif isinstance(v, (dict, list, tuple)) and not isinstance(v, np.ndarray):
            if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and len(v):
                v = np.asarray(v)
            else:
                v = json.dumps(v, default=str)
        elif v is None:
            v = "none"
        out[k] = v
    return out


def write_dataset(ds: xr.Dataset, path: str | os.PathLike[str], *, checksum: bool = True) -> Path:
    """Write ``ds`` atomically to ``path`` (temporary file, close, reopen and check, rename).

    The dataset is marked complete with the global attribute ``complete = 1``; readers refuse
    files without it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = ds.copy()
    ds.attrs = _clean_attrs({**ds.attrs, "complete": 1})
    for name in ds.variables:
        ds[name].attrs = _clean_attrs(ds[name].attrs)
    with atomic_path(path, suffix=".tmp.nc") as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=_encoding(ds, checksum), invalid_netcdf=False)
        with xr.open_dataset(tmp, engine=ENGINE) as check:
            if int(check.attrs.get("complete", 0)) != 1 or set(check.variables) != set(ds.variables):
                raise SurroflowError(f"{path}: verification after write failed")
    return path


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file beside ``path`` to write; renamed onto ``path`` when the block succeeds,
    removed when it fails, so a killed or failing writer never leaves a partial ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; artifacts are ordinary files
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------- reading
def open_dataset(path: str | os.PathLike[str], *, stage: str | tuple[str, ...] | None = None,
                 required: tuple[str, ...] = (), load: bool = True,
                 chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """Open a surroflow artifact with a clear error for missing, truncated or foreign files.

    ``stage`` (one rule name, or a tuple of the rules that may have made it, e.g.
    ``("collect_batches", "import_files")`` for generate data) and ``required`` check that the
    file is the artifact the caller expects.
    """
    path = Path(path)
    if not path.exists():
        raise SurroflowError(f"{path}: file not found")
    try:
        ds = xr.open_dataset(path, engine=ENGINE, chunks=chunks)
    except Exception as exc:  # h5py/h5netcdf raise many types for damaged files
        raise SurroflowError(
            f"{path}: not a readable NetCDF4/HDF5 file ({type(exc).__name__}: {exc}); "
            "it may be truncated or corrupted: delete it and rerun the stage that makes it"
        ) from None
    try:
        if int(ds.attrs.get("complete", 0)) != 1:
            raise SurroflowError(f"{path}: incomplete artifact (no 'complete' attribute); "
                                 "delete it and rerun the stage that makes it")
        stages = (stage,) if isinstance(stage, str) else tuple(stage or ())
        if stages and ds.attrs.get("stage") not in stages:
            expected = " or ".join(f"'{s}'" for s in stages)
            raise SurroflowError(f"{path}: expected a {expected} artifact, found stage "
                                 f"'{ds.attrs.get('stage')}'")
        missing = [v for v in required if v not in ds.variables]
        if missing:
            raise SurroflowError(f"{path}: missing variables {missing}; present: "
                                 f"{sorted(map(str, ds.variables))}")
        if load and chunks is None:
            try:
                ds.load()
            except Exception as exc:
                raise SurroflowError(f"{path}: data cannot be read ({type(exc).__name__}: "
                                     f"{exc}); the file is corrupted: delete it and rerun") from None
    except BaseException:
        ds.close()
        raise
    if load and chunks is None:
        ds.close()
    return ds


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a finished, readable artifact (used to resume batches)."""
    try:
        open_dataset(path, load=False).close()
        return True
    except SurroflowError:
        return False


# --------------------------------------------------------------------------- tables
def table_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    """``columns`` first, then any other key in the order the rows first use it."""
    cols = list(columns or [])
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def write_table(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str],
                columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a CSV table atomically (temporary file in the same folder, then rename).

    The one writer of summary tables (``evaluation/summary.csv`` of every task).  Columns are
    ``columns`` first, then any other key in the order the rows first use it; floats are written
    with 6 significant digits, missing cells are empty.
    """
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = table_columns(rows, columns)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, (float, np.floating)) else v) for k, v in r.items()})
        fh.flush()
        os.fsync(fh.fileno())
    return path

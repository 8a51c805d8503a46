"""Reading and writing stage datasets: NetCDF, atomic writes, provenance, status flags.

Every stage boundary in surroflow is an xarray Dataset stored as NetCDF (h5netcdf engine).
Writes go to a temporary file in the target folder, are closed, reopened and checked, flushed
to disk (``fsync``), then moved into place with :func:`os.replace` and the folder is flushed too,
so a killed writer never leaves a half-written file under the final name and a finished write
survives a power loss.  A full disk (checked before writing, and ``ENOSPC``/``EDQUOT`` while
writing) and a folder that cannot be written are :class:`~surroflow.SurroflowError` sentences
naming the file; the temporary file is removed.  :func:`remove_stale_temporaries` removes the
temporaries that a killed writer left.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import shutil
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


@contextlib.contextmanager
def _quiet_hdf5_destructors() -> Iterator[None]:
    """While a NetCDF file is written: the out-of-space errors that h5py's destructors raise
    (Cython prints them with a traceback through ``sys.excepthook``, then "Exception ignored in"
    through ``sys.unraisablehook``) are dropped; the write's own error says it in one sentence.
    Any other error goes to the usual hooks."""
    import sys
    unraisable_hook, except_hook = sys.unraisablehook, sys.excepthook

    def on_unraisable(unraisable: Any) -> None:
        if unraisable.exc_value is not None and _is_no_space(unraisable.exc_value):
            return
        unraisable_hook(unraisable)

    def on_except(kind: Any, value: BaseException, tb: Any) -> None:
        if value is not None and _is_no_space(value):
            return
        except_hook(kind, value, tb)

    sys.unraisablehook, sys.excepthook = on_unraisable, on_except
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook


def write_dataset(ds: xr.Dataset, path: str | os.PathLike[str], *, checksum: bool = True) -> Path:
    """Write ``ds`` atomically and durably to ``path`` (:func:`atomic_path`: temporary file,
    close, reopen and check, fsync, rename, fsync of the folder).  Too little free space for
    :func:`dataset_bytes` is refused before writing, and a full disk while writing is the same
    sentence (``<path>: not enough disk space ...``), the temporary file removed.

    The dataset is marked complete with the global attribute ``complete = 1``; readers refuse
    files without it.
    """
    path = Path(path)
    ds = ds.copy()
    ds.attrs = _clean_attrs({**ds.attrs, "complete": 1})
    for name in ds.variables:
        ds[name].attrs = _clean_attrs(ds[name].attrs)
    with atomic_path(path, suffix=".tmp.nc", need_bytes=dataset_bytes(ds)) as tmp:
        with _quiet_hdf5_destructors():
            ds.to_netcdf(tmp, engine=ENGINE, encoding=_encoding(ds, checksum), invalid_netcdf=False)
        with xr.open_dataset(tmp, engine=ENGINE) as check:
            if int(check.attrs.get("complete", 0)) != 1 or set(check.variables) != set(ds.variables):
                raise SurroflowError(f"{path}: verification after write failed")
    return path


#: extra bytes a NetCDF4/HDF5 file needs besides its arrays (headers, chunk index, attributes)
FILE_OVERHEAD_BYTES = 1 << 20
#: fraction added to the arrays' bytes (chunk padding, checksums)
SPACE_MARGIN = 0.05
#: errno values of a full disk or an exhausted quota
_NO_SPACE_ERRNOS = {errno.ENOSPC, *((errno.EDQUOT,) if hasattr(errno, "EDQUOT") else ())}
#: errno values of a folder that cannot be written
_NOT_WRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
#: errno values of a directory fsync that the filesystem does not support
_NO_DIR_FSYNC_ERRNOS = {errno.EINVAL, errno.EBADF, errno.EISDIR, errno.EACCES, errno.EPERM,
                        getattr(errno, "ENOTSUP", errno.EINVAL), getattr(errno, "EOPNOTSUPP", errno.EINVAL),
                        getattr(errno, "ENOSYS", errno.EINVAL)}


def dataset_bytes(ds: xr.Dataset) -> int:
    """An estimate of the size of ``ds`` as a file: its arrays' bytes plus a margin."""
    return int(ds.nbytes * (1.0 + SPACE_MARGIN)) + FILE_OVERHEAD_BYTES


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _existing_folder(folder: Path) -> Path:
    """``folder`` or the nearest folder above it that exists (for free-space queries)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _free_bytes(folder: Path) -> int | None:
    try:
        return int(shutil.disk_usage(_existing_folder(folder)).free)
    except OSError:
        return None


def no_space_error(path: Path, need_bytes: int | None = None, reason: str | None = None) -> SurroflowError:
    """``<path>: not enough disk space: about X MB needed, Y MB free on <folder>; ...``."""
    folder = Path(path).parent
    free = _free_bytes(folder)
    need = f"about {_mb(need_bytes)} needed, " if need_bytes else ""
    have = f"{_mb(free)} free" if free is not None else "free space unknown"
    why = f" ({reason})" if reason else ""
    return SurroflowError(f"{path}: not enough disk space{why}: {need}{have} on {folder}; free space or "
                          "set results: elsewhere")


def not_writable_error(path: Path, folder: Path, reason: str) -> SurroflowError:
    """``<path>: cannot write it: the folder <folder> is not writable (...)``."""
    return SurroflowError(f"{path}: cannot write it: the folder {folder} is not writable ({reason}); make it "
                          "writable or set results: elsewhere")


def _is_no_space(exc: BaseException) -> bool:
    """True for the error of a full disk or quota, also when h5py/h5netcdf wrap it in their own
    exception types (their message then carries the C library's text)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE_ERRNOS:
            return True
        text = str(e).lower()
        if "no space left" in text or "disk quota exceeded" in text or "errno = 28" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def _from_hdf5(exc: BaseException) -> bool:
    """True when the HDF5 library itself failed to write (its driver's message, or an h5py type)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__module__.startswith("h5py") or "file write failed" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _no_space_reason(exc: BaseException) -> str:
    return "disk quota exceeded" if "quota" in str(exc).lower() or getattr(exc, "errno", None) == getattr(
        errno, "EDQUOT", None) else "no space left on device"


def os_error_message(exc: BaseException) -> str | None:
    """One sentence for an operating-system error of a file (a full disk, a folder that cannot be
    written, a missing or unreadable file), naming the file; ``None`` for any other error."""
    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    if _is_no_space(exc):
        target = Path(filename) if filename else None
        if target is None:
            return (f"not enough disk space ({_no_space_reason(exc)}); free space or set results: elsewhere")
        return str(no_space_error(target, None, _no_space_reason(exc)))
    if not isinstance(exc, OSError) or not filename:
        return None
    reason = exc.strerror or str(exc)
    if isinstance(exc, PermissionError) or exc.errno in _NOT_WRITABLE_ERRNOS:
        return (f"{filename}: {reason}: it (or its folder) is not writable or readable by this user; fix the "
                "permissions or set results: elsewhere")
    return f"{filename}: {reason}"


def check_free_space(path: str | os.PathLike[str], need_bytes: int) -> None:
    """A :func:`no_space_error` when the folder of ``path`` has less than ``need_bytes`` free
    (a full disk is refused before writing: HDF5 may crash the process when it runs out)."""
    path = Path(path)
    free = _free_bytes(path.parent)
    if free is not None and free < need_bytes:
        raise no_space_error(path, need_bytes)


def _make_folder(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in _NOT_WRITABLE_ERRNOS:
            raise not_writable_error(path, _existing_folder(folder), exc.strerror or str(exc)) from None
        if _is_no_space(exc):
            raise no_space_error(path, None, _no_space_reason(exc)) from None
        raise SurroflowError(f"{path}: cannot create its folder {folder} ({exc.strerror or exc})") from None


#: the errors of NetCDF writes that ran out of space.  After a failed flush the HDF5 library's
#: state is damaged: freeing its objects (the garbage collector, interpreter exit) crashes the
#: process with SIGSEGV.  They are kept alive here and rule scripts end with ``os._exit``
#: (:func:`hdf5_damaged`, :func:`surroflow.logging_utils.exit_on_error`).
_DAMAGED_HDF5: list[BaseException] = []


def hdf5_damaged() -> bool:
    """True after a NetCDF write ran out of disk space in this process: HDF5 may crash when its
    objects are freed, so the process should end with ``os._exit`` once it has reported."""
    return bool(_DAMAGED_HDF5)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush the contents of the file ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush the entries of ``folder`` (a rename in it) to disk; a no-op where the platform or
    filesystem cannot fsync a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_FSYNC_ERRNOS:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp", *,
                need_bytes: int | None = None) -> Iterator[str]:
    """A temporary file beside ``path`` to write; when the block succeeds it is flushed to disk,
    renamed onto ``path`` and the folder flushed; when it fails it is removed, so a killed or
    failing writer never leaves a partial ``path``, and a finished one survives a power loss.

    The folder is created.  ``need_bytes`` (an estimate of the file's size) is checked against
    the free space first; a full disk or quota while writing and a folder that is not writable
    are :class:`~surroflow.SurroflowError` sentences naming ``path``.
    """
    path = Path(path)
    _make_folder(path)
    if need_bytes is not None:
        check_free_space(path, need_bytes)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in _NOT_WRITABLE_ERRNOS:
            raise not_writable_error(path, path.parent, exc.strerror or str(exc)) from None
        if _is_no_space(exc):
            raise no_space_error(path, need_bytes, _no_space_reason(exc)) from None
        raise
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; artifacts are ordinary files
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            if os.path.exists(tmp):
                os.remove(tmp)
        if not isinstance(exc, SurroflowError) and _is_no_space(exc):
            if _from_hdf5(exc):
                _DAMAGED_HDF5.append(exc)    # keep HDF5's half-flushed objects alive (_DAMAGED_HDF5)
            raise no_space_error(path, need_bytes, _no_space_reason(exc)) from None
        if (isinstance(exc, OSError) and (isinstance(exc, PermissionError) or exc.errno == errno.EROFS)
                and exc.filename in (tmp, str(path))):      # the rename or the temporary, not another file
            raise not_writable_error(path, path.parent, exc.strerror or str(exc)) from None
        raise


def remove_stale_temporaries(out: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that a killed writer of ``out`` left beside it.

    :func:`atomic_path` (so :func:`write_dataset` and :func:`write_table`) writes
    ``.<name>.<random>.tmp.nc`` or ``.<name>.<random>.tmp`` and renames it onto ``out``; a
    SIGKILL between the two leaves the temporary behind.  One writer per file: only the job that
    makes ``out`` calls this, before it writes.  Returns the removed paths.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return []
    removed = []
    for pattern in (f".{out.name}.*.tmp.nc", f".{out.name}.*.tmp"):
        for tmp in sorted(out.parent.glob(pattern)):
            if tmp in removed or not tmp.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


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


def read_table(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a table written by :func:`write_table`: numbers as floats, empty cells as
    NaN, ``True``/``False`` as booleans, other cells as strings."""
    import csv

    def cell(v: str) -> Any:
        if v == "":
            return math.nan
        if v in ("True", "False"):
            return v == "True"
        try:
            return float(v)
        except ValueError:
            return v
    with open(path, newline="") as fh:
        return [{k: cell(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def write_table(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str],
                columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a CSV table atomically (temporary file in the same folder, then rename).

    The one writer of summary tables (``evaluation/summary.csv`` of every task).  Columns are
    ``columns`` first, then any other key in the order the rows first use it; floats are written
    with 6 significant digits, missing cells are empty.
    """
    import csv

    path = Path(path)
    cols = table_columns(rows, columns)
    need = 4096 + 32 * (len(rows) + 1) * max(1, len(cols))    # generous: 32 bytes a cell
    with atomic_path(path, need_bytes=need) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, (float, np.floating)) else v) for k, v in r.items()})
    return path

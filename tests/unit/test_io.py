import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import xarray.testing as xrt

from surroflow import SurroflowError
from surroflow.io import config_sha256, is_complete, open_dataset, provenance, write_dataset


def _ds():
    return xr.Dataset({"u": (("sample", "x"), np.random.default_rng(0).normal(size=(4, 8)), {"units": "m"})},
                      coords={"x": np.linspace(0, 1, 8)}, attrs=provenance("test", {"a": 1}, "s"))


def test_round_trip_and_attributes(tmp_path):
    p = write_dataset(_ds(), tmp_path / "a.nc")
    back = open_dataset(p, stage="test", required=("u",))
    xrt.assert_allclose(back["u"], _ds()["u"])
    assert back.attrs["complete"] == 1
    for key in ("surroflow_version", "git_commit", "config_sha256", "created", "stage"):
        assert key in back.attrs
    assert back["u"].attrs["units"] == "m"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp.nc")]


def test_truncated_file_gives_named_error(tmp_path):
    p = write_dataset(_ds(), tmp_path / "a.nc")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SurroflowError, match="a.nc"):
        open_dataset(p)
    assert not is_complete(p)


def test_garbage_and_missing_file(tmp_path):
    g = tmp_path / "g.nc"
    g.write_bytes(b"not a netcdf file at all")
    with pytest.raises(SurroflowError, match="g.nc.*not a readable"):
        open_dataset(g)
    with pytest.raises(SurroflowError, match="not found"):
        open_dataset(tmp_path / "missing.nc")


def test_wrong_stage_and_missing_variable(tmp_path):
    p = write_dataset(_ds(), tmp_path / "a.nc")
    with pytest.raises(SurroflowError, match="expected a 'fit_pod' artifact, found stage 'test'"):
        open_dataset(p, stage="fit_pod")


def test_one_of_several_stages(tmp_path):
    """Generate data come from collect_batches or import_files: either is accepted."""
    p = write_dataset(_ds(), tmp_path / "a.nc")     # stage 'test'
    assert open_dataset(p, stage=("collect_batches", "test"))["u"].shape == _ds()["u"].shape
    with pytest.raises(SurroflowError, match="expected a 'collect_batches' or 'import_files' artifact, found stage 'test'"):
        open_dataset(p, stage=("collect_batches", "import_files"))
    with pytest.raises(SurroflowError, match="missing variables.*'v'"):
        open_dataset(p, required=("v",))


def test_failed_write_keeps_previous_file(tmp_path):
    p = write_dataset(_ds(), tmp_path / "a.nc")
    before = p.read_bytes()
    bad = _ds().assign(obj=(("sample",), np.array([object(), object(), object(), object()])))
    with pytest.raises(Exception):
        write_dataset(bad, p)
    assert p.read_bytes() == before
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp.nc")]


def test_config_hash_is_order_independent():
    assert config_sha256({"a": 1, "b": [1, 2]}) == config_sha256({"b": [1, 2], "a": 1})
    assert config_sha256({"a": 1}) != config_sha256({"a": 2})


# --------------------------------------------------------------------------- durability and failures
import errno  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections import namedtuple  # noqa: E402

import surroflow.io as sio  # noqa: E402
from surroflow.io import remove_stale_temporaries, write_table  # noqa: E402

_Usage = namedtuple("_Usage", "total used free")


def _count_fsyncs(monkeypatch):
    """Record, for each os.fsync, whether its descriptor is a folder or a file."""
    import stat
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_write_dataset_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    write_dataset(_ds(), tmp_path / "a.nc")
    assert calls.count("file") >= 1 and calls.count("folder") == 1
    assert calls.index("file") < calls.index("folder")        # the data before the rename


def test_write_table_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    write_table([{"a": 1.0, "b": "x"}], tmp_path / "t.csv")
    assert calls == ["file", "folder"]
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "1,x"]


def test_folder_fsync_unsupported_is_tolerated(tmp_path, monkeypatch):
    import stat
    real = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert open_dataset(write_dataset(_ds(), tmp_path / "a.nc"))["u"].shape == (4, 8)


def _no_temporaries(folder):
    return not [f for f in os.listdir(folder) if ".tmp" in f]


def test_disk_full_before_writing_is_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _Usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(SurroflowError) as err:
        write_dataset(_ds(), tmp_path / "a.nc")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'a.nc'}: not enough disk space: about ")
    assert f"MB needed, 0.0 MB free on {tmp_path}; free space or set results: elsewhere" in msg
    assert "\n" not in msg and not (tmp_path / "a.nc").exists() and _no_temporaries(tmp_path)
    with pytest.raises(SurroflowError, match="t.csv: not enough disk space"):
        write_table([{"a": 1}], tmp_path / "t.csv")


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left on device"),
                                          (errno.EDQUOT, "disk quota exceeded")])
def test_disk_full_while_writing_is_a_sentence(tmp_path, monkeypatch, code, reason):
    """ENOSPC/EDQUOT from the NetCDF writer: a sentence naming the file and the free space; the
    temporary file is removed and the previous file kept."""
    monkeypatch.setattr(sio, "_DAMAGED_HDF5", [])
    p = write_dataset(_ds(), tmp_path / "a.nc")
    before = p.read_bytes()

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"\x89HDF partial")
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(SurroflowError) as err:
        write_dataset(_ds(), p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: not enough disk space ({reason}): about ")
    assert " MB free on " in msg and str(tmp_path) in msg
    assert p.read_bytes() == before and _no_temporaries(tmp_path)
    assert not sio.hdf5_damaged()       # not an HDF5 error: the process may end normally


def test_h5py_no_space_error_is_recognised(tmp_path, monkeypatch):
    """h5py reports a full disk as its own error, with the C library's text; HDF5 is then marked
    damaged (rule scripts end with os._exit, see tests/fault/test_failures.py)."""
    monkeypatch.setattr(sio, "_DAMAGED_HDF5", [])

    def full(self, path, *a, **k):
        raise RuntimeError("Can't write data (file write failed: time = ..., filename = 'x', "
                           "file descriptor = 5, errno = 28, error message = 'No space left on device')")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(SurroflowError, match=r"a.nc: not enough disk space \(no space left on device\)"):
        write_dataset(_ds(), tmp_path / "a.nc")
    assert _no_temporaries(tmp_path)
    assert sio.hdf5_damaged()


def test_folder_that_cannot_be_written_is_a_sentence(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(SurroflowError) as err:
        write_dataset(_ds(), tmp_path / "a.nc")
    assert str(err.value) == (f"{tmp_path / 'a.nc'}: cannot write it: the folder {tmp_path} is not writable "
                              "(Permission denied); make it writable or set results: elsewhere")
    with pytest.raises(SurroflowError, match="t.csv: cannot write it: the folder .* is not writable"):
        write_table([{"a": 1}], tmp_path / "t.csv")


def test_read_only_filesystem_at_mkdir_is_a_sentence(tmp_path, monkeypatch):
    def refuse(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(SurroflowError, match=r"sub/a.nc: cannot write it: the folder .* is not writable "
                                             r"\(Read-only file system\)"):
        write_dataset(_ds(), tmp_path / "sub" / "a.nc")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o555 folder")
def test_read_only_folder_by_mode_is_a_sentence(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(SurroflowError, match="is not writable"):
            write_dataset(_ds(), ro / "a.nc")
    finally:
        ro.chmod(0o755)


def test_remove_stale_temporaries(tmp_path):
    out = tmp_path / "u.nc"
    stale = [tmp_path / ".u.nc.abc123.tmp.nc", tmp_path / ".u.nc.k1ll3d.tmp"]
    keep = [tmp_path / ".v.nc.abc123.tmp.nc", tmp_path / "u.nc.tmp", tmp_path / ".u.nc.x.tmp.bak"]
    for f in [*stale, *keep]:
        f.write_bytes(b"partial")
    write_dataset(_ds(), out)
    assert sorted(remove_stale_temporaries(out)) == sorted(stale)
    assert not any(f.exists() for f in stale) and all(f.exists() for f in keep) and out.exists()
    assert remove_stale_temporaries(out) == []
    assert remove_stale_temporaries(tmp_path / "missing" / "x.nc") == []


def test_os_error_message_names_the_file():
    assert sio.os_error_message(ValueError("x")) is None
    msg = sio.os_error_message(PermissionError(errno.EACCES, "Permission denied", "/r/logs/a.log"))
    assert msg.startswith("/r/logs/a.log: Permission denied: ")
    msg = sio.os_error_message(OSError(errno.ENOSPC, "No space left on device", "/tmp/x/a.nc"))
    assert msg.startswith("/tmp/x/a.nc: not enough disk space (no space left on device): ") and " MB free on " in msg


def test_rename_refused_is_a_sentence(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", src, None, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SurroflowError, match=r"a.nc: cannot write it: the folder .* is not writable \(Permission"):
        write_dataset(_ds(), tmp_path / "a.nc")
    assert _no_temporaries(tmp_path)


@pytest.mark.parametrize("suffix", [".tmp.nc", ".tmp"])
def test_remove_stale_temporaries_finds_what_atomic_path_writes(tmp_path, suffix):
    """The temporaries a writer killed inside atomic_path would leave are the ones removed."""
    out = tmp_path / "summary.csv"
    with pytest.raises(KeyboardInterrupt):
        with sio.atomic_path(out, suffix=suffix) as tmp:
            Path(tmp).write_text("partial")
            assert remove_stale_temporaries(out) == [Path(tmp)]      # as after a SIGKILL here
            raise KeyboardInterrupt
    assert _no_temporaries(tmp_path) and not out.exists()

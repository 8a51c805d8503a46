import os

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

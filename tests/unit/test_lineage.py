"""Lineage: fingerprints, recorded inputs, the checks a stage runs on what it reads, the batch
consistency checks of collect_batches, and the results-folder lock."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import xarray as xr

from surroflow import SurroflowError, lineage
from surroflow.io import write_dataset
from surroflow.lineage import Expect, changed_inputs, check_inputs, fingerprint, read_attrs
from surroflow.stages import lock
from surroflow.stages.collect_batches import check_batches
from tests.artifacts import context, stamp


def _nc(path, stage="collect_batches", inputs=None, **attrs):
    ctx = context(stage)
    a = {**ctx.provenance(inputs=inputs or {}, output=str(path)), "design_sha256": "d0", **attrs}
    write_dataset(xr.Dataset({"x": (("i",), np.arange(4.0))}, attrs=a), path)
    return str(path)


GEN = context("fit_pod").generation_sha256


# --------------------------------------------------------------------------- fingerprints
def test_fingerprint_is_content_based_and_samples_large_files(tmp_path, monkeypatch):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    assert fingerprint(a) == fingerprint(b) and fingerprint(a).startswith("sha256:")
    b.write_bytes(b"x" * 999 + b"y")
    assert fingerprint(a) != fingerprint(b)
    monkeypatch.setattr(lineage, "FULL_HASH_BYTES", 100)
    monkeypatch.setattr(lineage, "BLOCK_BYTES", 10)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20)
    fp = fingerprint(big)
    assert fp.startswith("sampled:5120:")
    data = bytearray(big.read_bytes())
    data[0] ^= 1                                    # the first block is always sampled
    big.write_bytes(bytes(data))
    assert fingerprint(big) != fp


def test_recorded_input_changed_or_missing_makes_the_artifact_stale(tmp_path):
    train = _nc(tmp_path / "train.nc", split="train")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    basis = _nc(tmp_path / "basis.nc", "fit_pod", inputs={"train": train, "table": str(table)})
    attrs = read_attrs(basis)
    assert changed_inputs(attrs, basis) == []
    rec = {r: p.name for r, p, _ in lineage.recorded_inputs(attrs, basis)}
    assert rec == {"train": "train.nc", "table": "table.csv"}
    table.write_text("a,b\n1,3\n")
    assert changed_inputs(attrs, basis) == [f"its table input {table} changed after it was made"]
    _nc(tmp_path / "train.nc", split="train")          # rewritten: new content and id
    why = changed_inputs(attrs, basis, thorough=False)
    assert any("train input" in w and "was replaced" in w for w in why)
    os.remove(table)
    assert f"its table input {table} no longer exists" in changed_inputs(attrs, basis)


# --------------------------------------------------------------------------- stage checks
def _check(inputs, expected, **kw):
    return check_inputs(inputs, expected, study=kw.pop("study", "tiny"), generation=kw.pop("generation", GEN),
                        reader="fit_pod", **kw)


def test_a_test_split_where_the_train_split_belongs_is_refused(tmp_path):
    test = _nc(tmp_path / "train.nc", split="test")
    with pytest.raises(SurroflowError, match=r"train\.nc: holds the 'test' split, but the train input of "
                                             r"fit_pod must be the 'train' split"):
        _check({"train": test}, {"train": Expect(("collect_batches",), "train")})
    ok = _nc(tmp_path / "ok.nc", split="train")
    assert ok in _check({"train": ok}, {"train": Expect(("collect_batches",), "train")})


@pytest.mark.parametrize("case,attrs,match", [
    ("study", {"study": "other"}, "belongs to study 'other', not 'tiny'"),
    ("stage", {"stage": "fit_pod"}, "expected a 'collect_batches' artifact as the train input of fit_pod"),
    ("generation", {"generation_sha256": "0" * 64}, "made with other simulator or design settings"),
    ("lineage", {"lineage": None}, "has no lineage record"),
])
def test_inputs_of_another_study_stage_or_settings_are_refused(tmp_path, case, attrs, match):
    p = tmp_path / "train.nc"
    a = {**context("collect_batches").provenance(inputs={}, output=str(p)), "split": "train", **attrs}
    a = {k: v for k, v in a.items() if v is not None}
    write_dataset(xr.Dataset({"x": (("i",), np.arange(2.0))}, attrs=a), p)
    with pytest.raises(SurroflowError, match=match):
        _check({"train": str(p)}, {"train": Expect(("collect_batches",), "train")})


def test_inputs_from_two_designs_are_refused(tmp_path):
    train = _nc(tmp_path / "train.nc", split="train", design_sha256="aaaa")
    test = _nc(tmp_path / "test.nc", split="test", design_sha256="bbbb")
    with pytest.raises(SurroflowError, match="come from different designs of experiments"):
        _check({"train": train, "test": test}, {"train": Expect(("collect_batches",), "train"),
                                                 "test": Expect(("collect_batches",), "test")})


def test_a_basis_made_from_another_train_file_is_refused(tmp_path):
    train = _nc(tmp_path / "train.nc", split="train")
    basis = _nc(tmp_path / "u.nc", "fit_pod", inputs={"train": train})
    expected = {"train": Expect(("collect_batches",), "train"), "bases": Expect(("fit_pod",))}
    _check({"train": train, "bases": [basis]}, expected)
    _nc(tmp_path / "train.nc", split="train")          # the train file replaced after the basis was made
    with pytest.raises(SurroflowError, match=r"u\.nc was made from another .*train\.nc than the one there now"):
        _check({"train": train, "bases": [basis]}, expected)


def test_a_model_file_holding_another_model_is_refused(tmp_path):
    exp = {"models": Expect(("train_surrogate",), model=True)}
    rbf = _nc(tmp_path / "rbf.nc", "train_surrogate", model_name="linear", model_kind="linear")
    with pytest.raises(SurroflowError, match=r"rbf\.nc: holds model 'linear' \(kind 'linear'\), but the file "
                                             r"is named for model 'rbf'"):
        _check({"models": [rbf]}, exp, model_kinds={"rbf": "rbf", "linear": "linear"})
    gp = _nc(tmp_path / "gp.nc", "train_surrogate", model_name="gp", model_kind="rbf")
    with pytest.raises(SurroflowError, match="model 'gp' is of kind 'rbf', but the config says 'gaussian_process'"):
        _check({"models": [gp]}, exp, model_kinds={"gp": "gaussian_process"})


# --------------------------------------------------------------------------- collect_batches
def _batch(samples, design_rows, time=np.linspace(0, 1, 3)):
    n = len(samples)
    return xr.Dataset({"u": (("sample", "time"), np.zeros((n, len(time)))),
                       "design": (("sample", "parameter"), design_rows), "status": (("sample",), np.zeros(n, "i1"))},
                      coords={"sample": samples, "time": time, "parameter": ["a"]})


@pytest.fixture
def design():
    return xr.Dataset({"design": (("sample", "parameter"), np.arange(8.0)[:, None])},
                      coords={"sample": np.arange(8), "parameter": ["a"]})


def test_collect_accepts_exactly_the_designs_samples(design):
    parts = [_batch(np.arange(4), design["design"].values[:4]), _batch(np.arange(4, 8), design["design"].values[4:])]
    check_batches(design, "design.nc", parts, ["b0.nc", "b1.nc"])


def test_collect_refuses_a_batch_copied_over_another(design):
    parts = [_batch(np.arange(4), design["design"].values[:4])] * 2
    with pytest.raises(SurroflowError, match=r"b1\.nc: sample 0 is also in b0\.nc"):
        check_batches(design, "design.nc", parts, ["b0.nc", "b1.nc"])


def test_collect_refuses_missing_samples_other_rows_and_other_coordinates(design):
    rows = design["design"].values
    with pytest.raises(SurroflowError, match=r"lack samples \[4, 5, 6, 7\]"):
        check_batches(design, "design.nc", [_batch(np.arange(4), rows[:4])], ["b0.nc"])
    with pytest.raises(SurroflowError, match=r"b1\.nc: its design rows differ from design\.nc"):
        check_batches(design, "design.nc", [_batch(np.arange(4), rows[:4]), _batch(np.arange(4, 8), rows[4:] + 1)],
                      ["b0.nc", "b1.nc"])
    with pytest.raises(SurroflowError, match=r"b1\.nc: coordinate 'time' differs from b0\.nc"):
        check_batches(design, "design.nc", [_batch(np.arange(4), rows[:4]),
                                            _batch(np.arange(4, 8), rows[4:], np.linspace(0, 2, 3))],
                      ["b0.nc", "b1.nc"])


# --------------------------------------------------------------------------- results lock
def test_results_lock_refuses_a_second_run_from_another_folder(tmp_path):
    results = tmp_path / "results"
    path = lock.acquire(results, tmp_path / "run_a")
    holder = json.loads(path.read_text())
    assert holder["pid"] == os.getpid() and holder["workdir"] == str((tmp_path / "run_a").resolve())
    with pytest.raises(SurroflowError, match=r"results folder in use by the run in .*run_a .*delete .*\.surroflow\.lock"):
        lock.acquire(results, tmp_path / "run_b")
    lock.acquire(results, tmp_path / "run_a")         # the same folder resumes (snakemake locks it)
    lock.release(results, tmp_path / "run_b")         # not the holder: nothing happens
    assert path.exists()
    lock.release(results, tmp_path / "run_a")
    assert not path.exists()
    lock.acquire(results, tmp_path / "run_b")


def test_a_stale_lock_of_a_dead_process_is_replaced(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    dead = 2 ** 22 + 12345                              # above the kernel's pid_max default
    (results / lock.LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead,
                                                      "workdir": "/elsewhere", "started": "x"}))
    lock.acquire(results, tmp_path)
    assert json.loads((results / lock.LOCK_NAME).read_text())["pid"] == os.getpid()


def test_stamp_helper_matches_what_a_stage_checks(tmp_path):
    p = tmp_path / "train.nc"
    write_dataset(xr.Dataset({"x": (("i",), np.arange(2.0))}, attrs=stamp({"split": "train"}, "collect_batches", p)), p)
    assert str(p) in _check({"train": str(p)}, {"train": Expect(("collect_batches",), "train")})

"""Every failure is a sentence: all training samples failed, all test samples failed (both through
snakemake, as a user runs them), a dask cluster whose worker dies while it starts (retried once,
then a sentence), and operating-system errors that escape a stage (a full disk, a log file that
cannot be written).  None of them ends in a traceback."""
from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

import pytest

from surroflow import SurroflowError
from surroflow import distributed as dist
from surroflow.logging_utils import exit_on_error, stage_logger

from ..snakemake_runner import snakemake

HERE = Path(__file__).resolve().parent


def _study(simulator: dict) -> dict:
    """A tiny parametric study (4 train, 2 test samples, one batch each) whose failures are all
    allowed through collect_batches (max_failure_fraction 1), so that the next stage meets them."""
    return {"results": "results", "dask": {"kind": "local", "processes": False}, "studies": {"allfail": {
        "task": "parametric",
        "simulator": {**simulator, "parameters": {"nu": [0.05, 0.1], "amplitude": [0.5, 1.0]},
                      "max_failure_fraction": 1.0},
        "design": {"method": "sobol", "n_train": 4, "n_test": 2, "seed": 0, "batch_size": 4},
        "reduction": {"method": "exact", "energy": 0.99999},
        "surrogates": {"linear": {"kind": "linear", "params": {"degree": 1}}},
        "evaluation": {"n_plot_samples": 1, "timing_repeats": 1}}}}


SETTINGS = {"n_x": 32, "n_time": 6, "t_end": 0.2}


def _sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("surroflow: error: ")]
    assert len(lines) == 1, stderr[-4000:]
    return lines[0][len("surroflow: error: "):]


@pytest.mark.slow
def test_all_training_samples_failed_is_the_reduce_stage_sentence(tmp_path):
    work = tmp_path / "work"
    cfg = _study({"name": "flaky_burgers", "settings": {**SETTINGS, "fail_above_amplitude": 0.0}})
    res = snakemake(work, cfg, "results/allfail/reduce/u.nc", timeout=120)
    assert res.returncode != 0
    msg = _sentence(res.stderr)
    assert msg == ("results/allfail/generate/train.nc: all 4 samples of the train split failed, diverged or timed "
                   "out (status counts: ok 0, diverged 0, failed 4, timeout 0); nothing to reduce; see the generate "
                   "logs and fix the simulator, its settings or its parameter ranges")
    log = (work / "logs" / "fit_pod" / "allfail_u.log").read_text()
    assert msg in log
    assert "Traceback" not in res.stderr and "Traceback" not in log
    assert not (work / "results" / "allfail" / "reduce" / "u.nc").exists()
    assert not list((work / "results" / "allfail" / "reduce").glob(".*.tmp*"))


@pytest.mark.slow
def test_all_test_samples_failed_is_the_evaluation_sentence(tmp_path, monkeypatch):
    """Only the test samples fail (the simulator fails the points of the test design): the
    reduction and training run, the evaluation stops with the sentence."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    work = tmp_path / "work"
    cfg = _study({"name": "python:surroflow_failure_sims:FailListedBurgers",
                  "settings": {**SETTINGS, "fail_design": "results/allfail/design/test.nc"}})
    res = snakemake(work, cfg, timeout=180)
    assert res.returncode != 0
    msg = _sentence(res.stderr)
    assert re.fullmatch(r"results/allfail/generate/test\.nc: all 2 test samples failed, diverged or timed out "
                        r"\(status counts: ok 0, diverged 0, failed 2, timeout 0\); nothing to evaluate; .*", msg), msg
    assert (work / "results" / "allfail" / "train" / "linear.nc").exists()     # training ran
    log = (work / "logs" / "evaluate_surrogates" / "allfail.log").read_text()
    assert msg in log
    assert "Traceback" not in res.stderr and "Traceback" not in log


# --------------------------------------------------------------------------- dask cluster start
class _Dying:
    """Stands in for distributed.LocalCluster: its first ``failures`` constructions fail as a
    worker that dies while the cluster starts."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        from distributed import LocalCluster
        self.real = LocalCluster

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("Nanny failed to start.\nworker process exited with status -9")
        return self.real(*args, **kwargs)


CLUSTER = {"kind": "local", "processes": False}


def test_a_worker_dying_at_cluster_start_is_retried_once(monkeypatch, caplog):
    import distributed
    dying = _Dying(failures=1)
    monkeypatch.setattr(distributed, "LocalCluster", dying)
    with caplog.at_level(logging.WARNING, logger="surroflow.distributed"):
        with dist.dask_client(CLUSTER, n_workers=1) as client:
            assert client.submit(lambda x: x + 1, 1).result() == 2
    assert dying.calls == 2
    assert "failed (RuntimeError: Nanny failed to start. worker process exited with status -9); retrying once" \
        in caplog.text


def test_a_cluster_that_fails_twice_is_a_sentence(monkeypatch, capsys):
    import distributed
    dying = _Dying(failures=2)
    monkeypatch.setattr(distributed, "LocalCluster", dying)
    with pytest.raises(SurroflowError) as err:
        with dist.dask_client(CLUSTER, n_workers=2):
            pytest.fail("the body must not run")
    assert dying.calls == dist.START_ATTEMPTS == 2
    msg = str(err.value)
    assert msg.startswith("dask.kind=local: the dask cluster (LocalCluster with 2 single-threaded worker threads) "
                          "failed to start twice (last error RuntimeError: Nanny failed to start. worker process "
                          "exited with status -9); check the job's memory")
    assert "\n" not in msg
    dying.calls = 0
    with pytest.raises(SystemExit):           # as a rule script: one line, no traceback
        with exit_on_error():
            with dist.dask_client(CLUSTER, n_workers=2):
                pass
    assert capsys.readouterr().err == f"surroflow: error: {msg}\n"


def test_an_unreachable_scheduler_is_retried_then_a_sentence(monkeypatch):
    import distributed
    calls = []

    def refuse(address, timeout=None):
        calls.append(address)
        raise OSError(f"Timed out trying to connect to {address} after 30 s")

    monkeypatch.setattr(distributed, "Client", refuse)
    with pytest.raises(SurroflowError, match=r"^dask.kind=address: the dask cluster \(scheduler at "
                                             r"tcp://10.0.0.1:8786\) failed to start twice .*check that the "
                                             r"scheduler at tcp://10.0.0.1:8786 is running"):
        with dist.dask_client({"kind": "address", "address": "tcp://10.0.0.1:8786"}):
            pass
    assert calls == ["tcp://10.0.0.1:8786"] * 2


def test_a_settings_error_is_not_retried(monkeypatch):
    import distributed
    dying = _Dying(failures=0)
    monkeypatch.setattr(distributed, "LocalCluster", dying)
    with pytest.raises(SurroflowError, match="dask.address: required"):
        with dist.dask_client({"kind": "address", "address": None}):
            pass
    assert dying.calls == 0


# --------------------------------------------------------------------------- rule scripts
def _run_as_rule(capsys, body, log_file=None) -> str:
    with pytest.raises(SystemExit) as stop:
        with exit_on_error(), stage_logger(None, log_file):
            body()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_rule_script_errors_are_one_line(tmp_path, capsys):
    def fail():
        raise SurroflowError("x.nc: broken")

    err = _run_as_rule(capsys, fail, str(tmp_path / "a.log"))
    assert err.splitlines()[-1] == "surroflow: error: x.nc: broken"
    assert "x.nc: broken" in (tmp_path / "a.log").read_text()


def test_disk_full_outside_io_is_one_line_naming_the_file(tmp_path, capsys):
    target = tmp_path / "figure.png"

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    err = _run_as_rule(capsys, full, str(tmp_path / "a.log"))
    last = err.splitlines()[-1]
    assert last.startswith(f"surroflow: error: {target}: not enough disk space (no space left on device): ")
    assert f" MB free on {tmp_path}; free space or set results: elsewhere" in last


def test_log_file_that_cannot_be_opened_is_one_line(tmp_path, capsys, monkeypatch):
    """A rule's log in a folder that is read-only (as root, chmod does not stop writes: the
    refusal is injected where the log file is opened)."""
    log_file = tmp_path / "logs" / "fit_pod.log"

    def refuse(self):
        raise PermissionError(errno.EROFS, "Read-only file system", self.baseFilename)

    monkeypatch.setattr(logging.FileHandler, "_open", refuse)
    err = _run_as_rule(capsys, lambda: None, str(log_file))
    assert err == (f"surroflow: error: {log_file}: Read-only file system: it (or its folder) is not writable or "
                   "readable by this user; fix the permissions or set results: elsewhere\n")


def test_log_file_on_a_full_disk_warns_once(tmp_path, capsys):
    """Records that cannot reach the log file: one warning, no '--- Logging error ---' traceback."""
    log_file = tmp_path / "a.log"
    with stage_logger(None, str(log_file)) as logger:
        handler = next(h for h in logger.handlers if isinstance(h, logging.FileHandler))

        class Full:
            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device", str(log_file))

            def flush(self):
                raise OSError(errno.ENOSPC, "No space left on device", str(log_file))

            def close(self):
                pass

        handler.stream = Full()
        logger.info("one")
        logger.info("two")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Logging error" not in err
    assert err.count(f"surroflow: warning: cannot write the log file {log_file}") == 1
    assert "one" in err and "two" in err


# --------------------------------------------------------------------------- a really full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only, where mounting is allowed; skipped elsewhere)."""
    import shutil
    import subprocess
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small filesystem needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


_WRITE_ON_SMALL_DISK = """
import sys
import numpy as np, xarray as xr
import surroflow.io as sio
from surroflow.logging_utils import exit_on_error, stage_logger
if sys.argv[2] == "mid-write":          # the disk fills while HDF5 writes (another writer took it)
    sio.check_free_space = lambda *a, **k: None
ds = xr.Dataset({"u": (("sample", "x"), np.random.default_rng(0).normal(size=(50, 10000)))})
with exit_on_error(), stage_logger(None, None):
    sio.write_dataset(ds, sys.argv[1])
"""


@pytest.mark.parametrize("when", ["before", "mid-write"])
def test_a_really_full_disk_is_one_sentence_not_a_crash(small_disk, when):
    """4 MB into a 2 MiB filesystem: refused before writing; and when the space goes while HDF5
    writes, h5py's failed flush (which used to crash the process with SIGSEGV and print
    destructor tracebacks) is one sentence and exit status 1, the temporary gone."""
    import subprocess
    import sys
    out = small_disk / "reduce" / "u.nc"
    res = subprocess.run([sys.executable, "-c", _WRITE_ON_SMALL_DISK, str(out), when], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr[-3000:]
    reason = "" if when == "before" else " (no space left on device)"
    assert res.stderr.splitlines()[-1].startswith(
        f"surroflow: error: {out}: not enough disk space{reason}: about 5.2 MB needed, ")   # 4 MB + 5 % + 1 MiB
    assert f"MB free on {out.parent}; free space or set results: elsewhere" in res.stderr
    assert os.listdir(out.parent) == []


def test_a_slurm_cluster_that_fails_twice_is_a_sentence(monkeypatch, tmp_path):
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    monkeypatch.chdir(tmp_path)
    calls = []

    def dying(**kwargs):
        calls.append(kwargs)
        raise OSError("scheduler: address already in use")

    monkeypatch.setattr(dask_jobqueue, "SLURMCluster", dying)
    with pytest.raises(SurroflowError, match=r"^dask.kind=slurm: the dask cluster \(SLURMCluster: 1 job\(s\) .*\) "
                                             r"failed to start twice \(last error OSError: scheduler: address already "
                                             r"in use\); check dask.slurm .*worker logs in .*logs/dask_slurm$"):
        with dist.dask_client({"kind": "slurm", "slurm": {"cores": 1, "jobs": 1}}):
            pass
    assert len(calls) == 2

"""Progress lines: the reporter's text, rate, ETA and rate limit (an injected clock, no sleeps);
a real generation batch on dask logging per-sample progress; the cluster's dashboard line;
the torch training loop's lines, which leave training bit-identical."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from surroflow import distributed as dist
from surroflow.config import validate_config
from surroflow.io import open_dataset
from surroflow.logging_utils import Progress, format_duration, format_rate
from surroflow.stages import StageContext, generate_batch, make_design

LOGGER = "surroflow.test_progress"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def logger(caplog) -> logging.Logger:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return logging.getLogger(LOGGER)


def _lines(caplog, logger_name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger_name]


# --------------------------------------------------------------------------- the reporter
def test_durations_and_rates_are_short_words():
    assert [format_duration(s) for s in (0, 4.6, 59.4, 60, 125, 3599, 3600, 3725, -3)] == \
        ["0 s", "5 s", "59 s", "1 min 00 s", "2 min 05 s", "59 min 59 s", "1 h 00 min", "1 h 02 min", "0 s"]
    assert [format_rate(r) for r in (0.8, 0.0123, 1.0, 12.34, 99.96, 512.4)] == \
        ["0.8", "0.012", "1.0", "12.3", "100.0", "512"]


def test_line_rate_and_eta_from_the_clock(logger):
    clock = Clock()
    p = Progress(16, "burgers train batch 0002", unit="samples", logger=logger, clock=clock, every_s=None,
                 every_fraction=None)
    assert p.rate is None and p.eta is None
    assert p.line() == "burgers train batch 0002: 0/16 samples (0%), ? samples/s, ETA ?"
    clock.t += 15.0
    p.update(12, "1 flagged")
    assert p.rate == pytest.approx(12 / 15) and p.eta == pytest.approx(4 / 0.8)
    assert p.line("1 flagged") == "burgers train batch 0002: 12/16 samples (75%), 0.8 samples/s, ETA 5 s, 1 flagged"
    # percent floors (never 100% before the end); a slower rate gives a longer ETA in minutes
    clock.t += 585.0
    p.update(3)
    assert p.line() == "burgers train batch 0002: 15/16 samples (93%), 0.025 samples/s, ETA 40 s"
    p.update(5)                         # never past the total
    assert p.done == 16 and p.eta == 0.0
    assert p.line().startswith("burgers train batch 0002: 16/16 samples (100%), 0.027 samples/s, ETA 0 s")


def test_no_time_passed_gives_an_unknown_rate_not_a_division_by_zero(logger):
    p = Progress(4, "x", logger=logger, clock=Clock())
    p.update(1)
    assert p.rate is None and p.eta is None and "? steps/s, ETA ?" in p.line()


def test_lines_every_tenth_of_the_total_and_always_the_last(logger, caplog):
    clock = Clock()
    p = Progress(50, "job", unit="items", logger=logger, clock=clock, every_s=None, every_fraction=0.1)
    emitted = []
    for _ in range(50):
        clock.t += 0.01
        emitted.append(p.update())
    counts = [int(re.search(r": (\d+)/50 items", line).group(1)) for line in emitted if line]
    assert counts == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert _lines(caplog, LOGGER) == [line for line in emitted if line]
    # an odd total: every ceil(10%) = 2 steps, and the last one though only 1 step after the previous
    p = Progress(11, "job", logger=logger, clock=clock, every_s=None)
    counts = [p.done for _ in range(11) if p.update()]
    assert counts == [2, 4, 6, 8, 10, 11]
    assert p.update() is None           # the last line only once


def test_lines_every_two_seconds_between_the_tenths(logger):
    clock = Clock()
    p = Progress(1000, "job", logger=logger, clock=clock, every_s=2.0, every_fraction=0.1)
    at = []
    for i in range(1, 1001):
        clock.t += 0.5                  # 2 steps per second: 2 s = 4 steps, 10% = 100 steps
        if p.update():
            at.append(i)
    assert at[:3] == [4, 8, 12] and at[-1] == 1000
    assert np.all(np.diff(at) == 4)
    # only the time trigger, and no line without a new step however long the wait
    p = Progress(10, "job", logger=logger, clock=clock, every_s=2.0, every_fraction=None)
    clock.t += 1.0
    assert p.update() is None           # 1 s: not yet
    clock.t += 5.0
    assert p.update().startswith("job: 2/10 steps (20%), 0.33 steps/s, ETA 24 s")
    clock.t += 5.0
    assert p.update(0) is None          # 5 s later, but no new step
    assert p.update().startswith("job: 3/10 steps (30%), ")
    assert p.update() is None           # a new step, but no time has passed since the last line


def test_below_the_level_it_only_counts(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    p = Progress(3, "quiet", logger=logging.getLogger(LOGGER), clock=Clock())
    assert [p.update() for _ in range(3)] == [None, None, None]
    assert p.done == 3 and not _lines(caplog, LOGGER)


# --------------------------------------------------------------------------- dashboard
class _Has:
    def __init__(self, link):
        self._link = link

    @property
    def dashboard_link(self):
        if isinstance(self._link, Exception):
            raise self._link
        return self._link


def test_dashboard_link_or_none():
    assert dist.dashboard_link(_Has("http://127.0.0.1:40123/status")) == "http://127.0.0.1:40123/status"
    assert dist.dashboard_link(_Has("")) is None                 # a cluster without a dashboard
    assert dist.dashboard_link(_Has(KeyError("dashboard"))) is None   # a client without one
    assert dist.dashboard_link(object()) is None


# --------------------------------------------------------------------------- a real batch
N = 8
SETTINGS = {"n_x": 32, "n_time": 6, "t_end": 0.2}
PARAMETERS = {"nu": [0.05, 0.1], "amplitude": [0.5, 1.0]}
FAIL_ABOVE = 0.8


def _config(simulator: dict) -> dict:
    # worker processes, as generation jobs run by default: thread workers inside this pytest
    # process were seen to leave every task pending after earlier tests had run here
    return validate_config({"dask": {"kind": "local", "processes": True, "run_cluster": False},
                            "studies": {"prog": {
                                "simulator": simulator,
                                "design": {"method": "sobol", "n_train": N, "n_test": 2, "seed": 5, "batch_size": N},
                                "surrogates": {"rbf": {"kind": "rbf"}}}}})


def _run_batch(tmp: Path, simulator: dict) -> tuple[Path, Path]:
    cfg = _config(simulator)
    make_design.run({}, {"train": str(tmp / "train.nc"), "test": str(tmp / "test.nc")},
                    StageContext.for_study(cfg, "prog", "make_design"))
    ctx = StageContext.for_study(cfg, "prog", "generate_batch", threads=2, mem_mb=2000, split="train", batch="0000")
    out = tmp / "batch_0000.nc"
    generate_batch.run({"design": str(tmp / "train.nc")}, {"batch": str(out)}, ctx)
    return tmp / "train.nc", out


PROGRESS = re.compile(r"^prog train batch 0000: (\d+)/(\d+) samples \((\d+)%\), ([0-9.e+-]+) samples/s, "
                      r"ETA (\d+ s|\d+ min \d\d s), (\d+) flagged$")


def test_a_dask_batch_logs_per_sample_progress_and_one_summary(tmp_path, caplog, monkeypatch):
    import distributed
    monkeypatch.delenv(dist.RUN_CLUSTER_ENV, raising=False)
    # the dashboard serves on a free port: a fixed link, to check the line word for word
    monkeypatch.setattr(distributed.Client, "dashboard_link",
                        property(lambda self: "http://127.0.0.1:40123/status"))
    caplog.set_level(logging.INFO, logger="surroflow")
    # faults keyed on amplitude: per-sample dask tasks (not vectorised), some samples flagged
    sim = {"name": "flaky_burgers", "settings": {**SETTINGS, "fail_above_amplitude": FAIL_ABOVE},
           "parameters": PARAMETERS}
    design_nc, out = _run_batch(tmp_path, sim)
    amplitude = open_dataset(design_nc, stage="make_design")["design"].sel(parameter="amplitude").values
    n_bad = int(np.sum(amplitude > FAIL_ABOVE))
    assert 0 < n_bad < N, "the design should flag some samples, not all"
    ds = open_dataset(out, stage="generate_batch")
    assert int((ds["status"] != 0).sum()) == n_bad

    dask_lines = [m for m in _lines(caplog, "surroflow.distributed") if m.startswith("dask: ")]
    assert dask_lines == ["dask: LocalCluster with 2 single-threaded worker processes, "
                          "dashboard http://127.0.0.1:40123/status"]
    messages = _lines(caplog, "surroflow.generate_batch")
    progress = [PROGRESS.match(m) for m in messages if "samples/s, ETA" in m]
    assert all(progress), [m for m in messages if "samples/s, ETA" in m]
    done = [int(m.group(1)) for m in progress]
    # 8 samples: 10% of the batch is under one sample, so every completed sample has its line
    assert done == list(range(1, N + 1))
    assert all(int(m.group(2)) == N for m in progress)
    assert [int(m.group(3)) for m in progress] == [100 * k // N for k in done]
    flagged = [int(m.group(6)) for m in progress]
    assert flagged == sorted(flagged) and flagged[-1] == n_bad
    last = progress[-1].group(0)
    assert last.startswith(f"prog train batch 0000: {N}/{N} samples (100%), ") and ", ETA 0 s, " in last
    summaries = [m for m in messages if " done in " in m]
    assert len(summaries) == 1
    assert re.fullmatch(rf"prog train batch 0000 done in [0-9.]+ s \([0-9.]+ samples/s\): "
                        rf"{N - n_bad} ok, {n_bad} flagged", summaries[0]), summaries[0]
    assert messages.index(summaries[0]) == len(messages) - 1     # after every progress line


def test_a_vectorised_batch_says_it_is_one_step(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="surroflow")
    _run_batch(tmp_path, {"name": "burgers", "settings": SETTINGS, "parameters": PARAMETERS})
    messages = _lines(caplog, "surroflow.generate_batch")
    assert f"prog train batch 0000: {N} samples in one vectorised call in this job's process " \
           "(one step: no per-sample progress)" in messages
    assert not [m for m in messages if "samples/s, ETA" in m]
    assert len([m for m in messages if " done in " in m]) == 1
    assert not _lines(caplog, "surroflow.distributed")           # no cluster started


# --------------------------------------------------------------------------- torch training
def test_torch_training_logs_every_tenth_and_trains_bit_identically(caplog):
    pytest.importorskip("torch")
    from surroflow.forecast import make_forecaster

    traj = np.random.default_rng(0).normal(size=(3, 30, 4))
    kw = dict(hidden=[8], n_iterations=20, rollout_steps=2, batch_size=8, random_state=0)
    caplog.set_level(logging.WARNING, logger="surroflow")
    quiet = make_forecaster("mlp_stepper", **kw).fit(traj, dt=0.1)
    assert not _lines(caplog, "surroflow.forecast.neural")
    caplog.set_level(logging.INFO, logger="surroflow")
    loud = make_forecaster("mlp_stepper", **kw).fit(traj, dt=0.1)
    lines = _lines(caplog, "surroflow.forecast.neural")
    counts = [int(re.match(r"mlp_stepper training: (\d+)/20 iterations \(\d+%\), ", m).group(1)) for m in lines]
    assert counts == list(range(2, 21, 2))
    assert all(re.search(r", ETA (\d+ s|\d+ min \d\d s|\?), loss [0-9.e+-]+$", m) for m in lines), lines
    assert lines[-1].startswith("mlp_stepper training: 20/20 iterations (100%)")
    np.testing.assert_array_equal(loud.loss_history_, quiet.loss_history_)
    for (k, a), (_, b) in zip(loud.net_.state_dict().items(), quiet.net_.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), k
